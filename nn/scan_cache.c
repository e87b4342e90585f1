// The dataset scan cache (see dataset.h, nn_scan_cache_*): what the scan of a split found, stored
// beside its labels so the next run opens no image and no label file. Binary, this machine's byte
// order, versioned; anything unexpected in it means "no cache", never an error.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset.h"
#include "log.h"

#define MAGIC "VKYOLO-SCAN\n"
#define VERSION 1u

bool nn_scan_cache_enabled(void)
{
	const char *e = getenv("VKYOLO_SCAN_CACHE"); // "0": never read or write one
	return !(e && !strcmp(e, "0"));
}

int nn_scan_cache_path(const char *first_image, char **out)
{
	char *lp = NULL;
	*out = NULL;
	int rc = nn_label_path(first_image, &lp);
	if (rc)
		return rc;
	char *slash = strrchr(lp, '/');
	if (slash)
		*slash = '\0';
	size_t n = strlen(lp) + sizeof(".vkyolo.cache");
	*out = malloc(n);
	if (*out)
		snprintf(*out, n, "%s.vkyolo.cache", slash ? lp : ".");
	free(lp);
	return *out ? 0 : -ENOMEM;
}

static void fnv(uint64_t *h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		*h = (*h ^ b[i]) * 0x100000001b3ull;
}

static void fnv_stat(uint64_t *h, const struct stat *st)
{
	int64_t v[3] = { (int64_t)st->st_size, (int64_t)st->st_mtim.tv_sec, (int64_t)st->st_mtim.tv_nsec };
	fnv(h, v, sizeof(v));
}

int nn_scan_cache_key(char *const *paths, size_t n, int nc, uint64_t *key)
{
	uint64_t h = 0xcbf29ce484222325ull;
	uint32_t head[2] = { VERSION, (uint32_t)nc };
	fnv(&h, head, sizeof(head));
	fnv(&h, &n, sizeof(n));
	*key = 0;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		char *lp = NULL;
		if (stat(paths[i], &st) != 0)
			return 0; // the scan reports it; nothing to key on
		fnv(&h, paths[i], strlen(paths[i]) + 1);
		fnv_stat(&h, &st);
		int rc = nn_label_path(paths[i], &lp);
		if (rc)
			return rc;
		if (stat(lp, &st) == 0 && S_ISREG(st.st_mode))
			fnv_stat(&h, &st);
		else
			fnv(&h, "-", 1);
		free(lp);
	}
	*key = h ? h : 1;
	return 0;
}

struct header {
	char magic[12];
	uint32_t version;
	uint64_t key, n;
	uint64_t found, missing, empty, corrupt, duplicates, nboxes;
};

struct entry { // one listed image; labels follow when kept
	int32_t kept, width, height;
	uint32_t count;
};

int nn_scan_cache_read(const char *path, uint64_t key, char **paths, size_t n, struct nn_dataset_split *s)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -ENOENT;
	struct header h;
	size_t *src = malloc((n ? n : 1) * sizeof(*src)); // listing index of each kept image
	int rc = -EINVAL;
	long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1; // bounds the label counts of a damaged file
	rewind(f);
	if (!src) {
		rc = -ENOMEM;
		goto done;
	}
	if (fread(&h, sizeof(h), 1, f) != 1 || memcmp(h.magic, MAGIC, sizeof(h.magic)) || h.version != VERSION ||
	    h.key != key || h.n != n)
		goto done;
	for (size_t i = 0; i < n; i++) {
		struct entry e;
		long at = ftell(f);
		if (fread(&e, sizeof(e), 1, f) != 1 || (e.kept && (e.width < 1 || e.height < 1)) || size < at ||
		    e.count > (uint64_t)(size - at) / sizeof(struct nn_label))
			goto done;
		if (!e.kept)
			continue;
		struct nn_dataset_image *im = &s->images[s->count];
		im->width = e.width, im->height = e.height, im->count = e.count;
		if (e.count && !(im->labels = malloc(e.count * sizeof(*im->labels)))) {
			rc = -ENOMEM;
			goto done;
		}
		src[s->count++] = i;
		if (e.count && fread(im->labels, sizeof(*im->labels), e.count, f) != e.count)
			goto done;
	}
	if (fgetc(f) != EOF || n - s->count != h.corrupt)
		goto done;
	// the file is whole: the kept paths move into the split, the corrupt ones are reported
	for (size_t k = 0, i = 0; i < n; i++) {
		if (k < s->count && src[k] == i) {
			s->images[k++].path = paths[i];
			paths[i] = NULL;
		} else {
			LOGW("image %s: ignoring corrupt image/label (cached scan %s; delete it to scan again)", paths[i],
			     path);
		}
	}
	s->found = h.found, s->missing = h.missing, s->empty = h.empty, s->corrupt = h.corrupt;
	s->duplicates = h.duplicates, s->nboxes = h.nboxes;
	rc = 0;
done:
	fclose(f);
	free(src);
	if (rc) {
		for (size_t k = 0; k < s->count; k++) {
			free(s->images[k].labels);
			memset(&s->images[k], 0, sizeof(s->images[k]));
		}
		s->count = 0;
	}
	return rc;
}

int nn_scan_cache_write(const char *path, uint64_t key, size_t n, const bool *kept, const struct nn_dataset_split *s)
{
	size_t tn = strlen(path) + 32;
	char *tmp = malloc(tn);
	if (!tmp)
		return -ENOMEM;
	snprintf(tmp, tn, "%s.tmp.%ld", path, (long)getpid());
	FILE *f = fopen(tmp, "wb");
	if (!f) {
		LOGW("dataset: cannot write the scan cache %s (%s); the next run scans again", path, strerror(errno));
		free(tmp);
		return -EIO;
	}
	struct header h = { .version = VERSION, .key = key, .n = n, .found = s->found, .missing = s->missing,
		                .empty = s->empty, .corrupt = s->corrupt, .duplicates = s->duplicates, .nboxes = s->nboxes };
	memcpy(h.magic, MAGIC, sizeof(h.magic));
	bool ok = fwrite(&h, sizeof(h), 1, f) == 1;
	for (size_t i = 0, k = 0; ok && i < n; i++) {
		struct entry e = { 0 };
		const struct nn_dataset_image *im = kept[i] ? &s->images[k++] : NULL;
		if (im)
			e = (struct entry){ 1, im->width, im->height, (uint32_t)im->count };
		ok = fwrite(&e, sizeof(e), 1, f) == 1 &&
		     (!im || !im->count || fwrite(im->labels, sizeof(*im->labels), im->count, f) == im->count);
	}
	ok = fclose(f) == 0 && ok;
	if (ok && rename(tmp, path) != 0)
		ok = false;
	if (!ok) {
		LOGW("dataset: cannot write the scan cache %s (%s); the next run scans again", path, strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	return ok ? 0 : -EIO;
}
