// Minimal zip reader for PyTorch checkpoints. Every field read from the file is bounds-checked:
// the fuzz test feeds this damaged archives.
#include "zip.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_EOCD64_LOC 0x07064b50u
#define ZIP_MAX_ENTRIES (1u << 20)

struct zip_entry {
	char *name;
	uint16_t method;
	uint64_t csize, usize, local_off;
};

struct nn_zip {
	char *path;
	const uint8_t *base;
	size_t size;
	struct zip_entry *ents;
	size_t count;
	struct zip_entry **sorted; // by name, for bsearch
};

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

// True when [off, off+n) lies inside the file.
static bool in_file(const struct nn_zip *z, uint64_t off, uint64_t n)
{
	return off <= z->size && n <= z->size - off;
}

int nn_zip_probe(const char *path)
{
	uint8_t sig[4];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, sig, 4);
	close(fd);
	return n == 4 && rd32(sig) == SIG_LOCAL;
}

// Zip64 extended information: the 64-bit values replace, in this order, the fields that were 0xFFFFFFFF.
static int read_zip64_extra(const uint8_t *extra, size_t len, struct zip_entry *e, bool need_u, bool need_c,
                            bool need_o)
{
	size_t pos = 0;
	while (pos + 4 <= len) {
		uint16_t id = rd16(extra + pos), sz = rd16(extra + pos + 2);
		if (pos + 4 + sz > len)
			return -EINVAL;
		if (id == 1) {
			const uint8_t *p = extra + pos + 4, *end = p + sz;
			if (need_u) {
				if (p + 8 > end)
					return -EINVAL;
				e->usize = rd64(p);
				p += 8;
			}
			if (need_c) {
				if (p + 8 > end)
					return -EINVAL;
				e->csize = rd64(p);
				p += 8;
			}
			if (need_o) {
				if (p + 8 > end)
					return -EINVAL;
				e->local_off = rd64(p);
			}
			return 0;
		}
		pos += 4 + (size_t)sz;
	}
	return (need_u || need_c || need_o) ? -EINVAL : 0;
}

static int find_directory(struct nn_zip *z, uint64_t *cd_off, uint64_t *cd_size, uint64_t *count)
{
	if (z->size < 22)
		return -EINVAL;
	size_t lo = z->size > 22 + 65535 ? z->size - 22 - 65535 : 0;
	for (size_t p = z->size - 22 + 1; p-- > lo;) {
		if (rd32(z->base + p) != SIG_EOCD)
			continue;
		const uint8_t *e = z->base + p;
		*count = rd16(e + 10);
		*cd_size = rd32(e + 12);
		*cd_off = rd32(e + 16);
		if ((*count == 0xFFFF || *cd_size == 0xFFFFFFFFu || *cd_off == 0xFFFFFFFFu) && p >= 20 &&
		    rd32(e - 20) == SIG_EOCD64_LOC) {
			uint64_t off64 = rd64(e - 20 + 8);
			if (!in_file(z, off64, 56) || rd32(z->base + off64) != SIG_EOCD64)
				return -EINVAL;
			const uint8_t *e64 = z->base + off64;
			*count = rd64(e64 + 32);
			*cd_size = rd64(e64 + 40);
			*cd_off = rd64(e64 + 48);
		}
		return in_file(z, *cd_off, *cd_size) ? 0 : -EINVAL;
	}
	return -EINVAL;
}

static int read_directory(struct nn_zip *z)
{
	uint64_t cd_off, cd_size, count;
	if (find_directory(z, &cd_off, &cd_size, &count) < 0) {
		LOGE("zip %s: no valid end of central directory", z->path);
		return -EINVAL;
	}
	// Each central record is at least 46 bytes, which bounds the count a damaged file can claim.
	if (count > ZIP_MAX_ENTRIES || count > cd_size / 46) {
		LOGE("zip %s: %llu entries do not fit a %llu-byte directory", z->path, (unsigned long long)count,
		     (unsigned long long)cd_size);
		return -EINVAL;
	}
	z->ents = calloc(count ? count : 1, sizeof(*z->ents));
	if (!z->ents)
		return -ENOMEM;
	uint64_t pos = cd_off, end = cd_off + cd_size;
	for (uint64_t i = 0; i < count; i++) {
		if (pos + 46 > end || rd32(z->base + pos) != SIG_CENTRAL) {
			LOGE("zip %s: central record %llu damaged at byte %llu", z->path, (unsigned long long)i,
			     (unsigned long long)pos);
			return -EINVAL;
		}
		const uint8_t *c = z->base + pos;
		struct zip_entry *e = &z->ents[z->count];
		uint16_t nlen = rd16(c + 28), xlen = rd16(c + 30), klen = rd16(c + 32);
		if (pos + 46 + (uint64_t)nlen + xlen + klen > end) {
			LOGE("zip %s: central record %llu runs past the directory", z->path, (unsigned long long)i);
			return -EINVAL;
		}
		e->method = rd16(c + 10);
		e->csize = rd32(c + 20);
		e->usize = rd32(c + 24);
		e->local_off = rd32(c + 42);
		if (read_zip64_extra(c + 46 + nlen, xlen, e, e->usize == 0xFFFFFFFFu, e->csize == 0xFFFFFFFFu,
		                     e->local_off == 0xFFFFFFFFu) < 0) {
			LOGE("zip %s: central record %llu: bad zip64 extra field", z->path, (unsigned long long)i);
			return -EINVAL;
		}
		if (!(e->name = malloc((size_t)nlen + 1)))
			return -ENOMEM;
		memcpy(e->name, c + 46, nlen);
		e->name[nlen] = '\0';
		z->count++;
		pos += 46 + (uint64_t)nlen + xlen + klen;
	}
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp((*(struct zip_entry *const *)a)->name, (*(struct zip_entry *const *)b)->name);
}

int nn_zip_open(const char *path, struct nn_zip **out)
{
	struct nn_zip *z = calloc(1, sizeof(*z));
	int rc = -ENOMEM, fd = -1;
	*out = NULL;
	if (!z || !(z->path = strdup(path)))
		goto fail;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		LOGE("zip %s: open: %s", path, strerror(errno));
		goto fail;
	}
	z->size = (size_t)st.st_size;
	if (z->size < 22) {
		LOGE("zip %s: %zu bytes is too short for a zip archive", path, z->size);
		rc = -EINVAL;
		goto fail;
	}
	void *m = mmap(NULL, z->size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED) {
		rc = -errno;
		LOGE("zip %s: mmap: %s", path, strerror(errno));
		goto fail;
	}
	z->base = m;
	close(fd);
	fd = -1;
	if ((rc = read_directory(z)) < 0)
		goto fail;
	rc = -ENOMEM;
	if (!(z->sorted = malloc((z->count ? z->count : 1) * sizeof(*z->sorted))))
		goto fail;
	for (size_t i = 0; i < z->count; i++)
		z->sorted[i] = &z->ents[i];
	qsort(z->sorted, z->count, sizeof(*z->sorted), cmp_entry);
	*out = z;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	nn_zip_close(&z);
	return rc;
}

void nn_zip_close(struct nn_zip **pz)
{
	if (!pz || !*pz)
		return;
	struct nn_zip *z = *pz;
	for (size_t i = 0; i < z->count; i++)
		free(z->ents[i].name);
	free(z->ents);
	free(z->sorted);
	if (z->base)
		munmap((void *)z->base, z->size);
	free(z->path);
	free(z);
	*pz = NULL;
}

size_t nn_zip_count(const struct nn_zip *z) { return z->count; }

const char *nn_zip_name(const struct nn_zip *z, size_t i)
{
	return i < z->count ? z->ents[i].name : NULL;
}

int nn_zip_find(const struct nn_zip *z, const char *name, const void **data, size_t *len)
{
	struct zip_entry key = { .name = (char *)name }, *kp = &key;
	struct zip_entry **found = bsearch(&kp, z->sorted, z->count, sizeof(*z->sorted), cmp_entry);
	if (!found)
		return -ENOENT;
	const struct zip_entry *e = *found;
	if (e->method != 0) {
		LOGE("zip %s: entry %s is compressed (method %u); only stored entries are supported", z->path, name,
		     e->method);
		return -ENOTSUP;
	}
	if (e->csize != e->usize || !in_file(z, e->local_off, 30) || rd32(z->base + e->local_off) != SIG_LOCAL) {
		LOGE("zip %s: entry %s: local header damaged at byte %llu", z->path, name,
		     (unsigned long long)e->local_off);
		return -EINVAL;
	}
	const uint8_t *l = z->base + e->local_off;
	uint64_t start = e->local_off + 30 + rd16(l + 26) + rd16(l + 28);
	if (!in_file(z, start, e->csize)) {
		LOGE("zip %s: entry %s: %llu bytes at byte %llu run past the end of the file", z->path, name,
		     (unsigned long long)e->csize, (unsigned long long)start);
		return -EINVAL;
	}
	*data = z->base + start;
	*len = (size_t)e->csize;
	return 0;
}
