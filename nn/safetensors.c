// safetensors reader and atomic writer, with every header field checked against the file size so
// that a damaged or hostile file fails with a message instead of reading out of bounds.
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

// The reference implementation refuses headers above 100 MB; so do we.
#define ST_MAX_HEADER (100u * 1024 * 1024)

struct st_entry {
	const char *name; // borrowed from the parsed header
	enum nn_dtype dtype;
	uint32_t ndim;
	int64_t shape[NN_MAX_DIMS];
	uint64_t begin, end;
};

static int read_full(int fd, void *buf, size_t n, uint64_t off)
{
	uint8_t *p = buf;
	while (n) {
		ssize_t r = pread(fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int parse_entry(const char *path, const char *name, const struct nn_value *v, uint64_t data_len,
                       struct st_entry *e)
{
	const struct nn_value *dt = nn_value_dict_get(v, "dtype");
	const struct nn_value *sh = nn_value_dict_get(v, "shape");
	const struct nn_value *off = nn_value_dict_get(v, "data_offsets");
	e->name = name;
	if (!dt || dt->kind != NN_VALUE_STR || !sh || sh->kind != NN_VALUE_LIST || !off ||
	    off->kind != NN_VALUE_LIST || nn_value_len(off) != 2) {
		LOGE("safetensors %s: tensor %s: needs dtype, shape and data_offsets [begin, end]", path, name);
		return -EINVAL;
	}
	if (nn_dtype_from_name(dt->u.s, &e->dtype) < 0) {
		LOGE("safetensors %s: tensor %s: unsupported dtype %s", path, name, dt->u.s);
		return -EINVAL;
	}
	if (nn_value_len(sh) > NN_MAX_DIMS) {
		LOGE("safetensors %s: tensor %s: %zu dims, at most %d", path, name, nn_value_len(sh), NN_MAX_DIMS);
		return -EINVAL;
	}
	e->ndim = (uint32_t)nn_value_len(sh);
	uint64_t numel = 1;
	for (uint32_t i = 0; i < e->ndim; i++) {
		const struct nn_value *d = nn_value_list_at(sh, i);
		if (d->kind != NN_VALUE_INT || d->u.i < 0 ||
		    (d->u.i && numel > data_len / (uint64_t)d->u.i)) {
			LOGE("safetensors %s: tensor %s: bad or too large dim %u", path, name, i);
			return -EINVAL;
		}
		e->shape[i] = d->u.i;
		numel *= (uint64_t)d->u.i;
	}
	const struct nn_value *b = nn_value_list_at(off, 0), *en = nn_value_list_at(off, 1);
	if (b->kind != NN_VALUE_INT || en->kind != NN_VALUE_INT || b->u.i < 0 || en->u.i < b->u.i ||
	    (uint64_t)en->u.i > data_len) {
		LOGE("safetensors %s: tensor %s: data_offsets out of range (data has %llu bytes)", path, name,
		     (unsigned long long)data_len);
		return -EINVAL;
	}
	e->begin = (uint64_t)b->u.i;
	e->end = (uint64_t)en->u.i;
	if (e->end - e->begin != numel * nn_dtype_size(e->dtype)) {
		LOGE("safetensors %s: tensor %s: %llu bytes in file, shape and dtype need %llu", path, name,
		     (unsigned long long)(e->end - e->begin),
		     (unsigned long long)(numel * nn_dtype_size(e->dtype)));
		return -EINVAL;
	}
	return 0;
}

static int cmp_begin(const void *a, const void *b)
{
	const struct st_entry *x = *(const struct st_entry *const *)a, *y = *(const struct st_entry *const *)b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

static int check_overlaps(const char *path, struct st_entry *e, size_t n)
{
	struct st_entry **order = malloc((n ? n : 1) * sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		order[i] = &e[i];
	qsort(order, n, sizeof(*order), cmp_begin);
	int rc = 0;
	for (size_t i = 1; i < n; i++) {
		// Empty tensors occupy no bytes and cannot overlap anything.
		if (order[i]->begin < order[i - 1]->end && order[i]->begin != order[i]->end) {
			LOGE("safetensors %s: tensor %s overlaps tensor %s", path, order[i]->name, order[i - 1]->name);
			rc = -EINVAL;
			break;
		}
	}
	free(order);
	return rc;
}

static int parse_metadata(const char *path, const struct nn_value *md, struct nn_value **out)
{
	if (md->kind != NN_VALUE_DICT) {
		LOGE("safetensors %s: __metadata__ is not a dict", path);
		return -EINVAL;
	}
	for (size_t i = 0; i < md->u.dict.count; i++) {
		if (md->u.dict.vals[i]->kind != NN_VALUE_STR) {
			LOGE("safetensors %s: __metadata__ value %s is not a string", path, md->u.dict.keys[i]->u.s);
			return -EINVAL;
		}
	}
	*out = nn_value_clone(md);
	return *out ? 0 : -ENOMEM;
}

int nn_safetensors_read(const char *path, struct nn_tensor_map **out)
{
	struct nn_tensor_map *map = NULL;
	struct nn_value *hdr = NULL;
	struct st_entry *ents = NULL;
	char *text = NULL;
	int rc;
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		LOGE("safetensors %s: open: %s", path, strerror(errno));
		return rc;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		LOGE("safetensors %s: stat: %s", path, strerror(errno));
		goto fail;
	}
	uint64_t size = (uint64_t)st.st_size;
	uint8_t lenb[8];
	if (size < 8 || read_full(fd, lenb, 8, 0) < 0) {
		LOGE("safetensors %s: file of %llu bytes has no 8-byte header length", path,
		     (unsigned long long)size);
		rc = -EINVAL;
		goto fail;
	}
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = (hlen << 8) | lenb[i];
	if (hlen < 2 || hlen > ST_MAX_HEADER || hlen > size - 8) {
		LOGE("safetensors %s: header length %llu invalid for a file of %llu bytes", path,
		     (unsigned long long)hlen, (unsigned long long)size);
		rc = -EINVAL;
		goto fail;
	}
	uint64_t data_off = 8 + hlen, data_len = size - data_off;
	rc = -ENOMEM;
	if (!(text = malloc(hlen)))
		goto fail;
	if ((rc = read_full(fd, text, hlen, 8)) < 0) {
		LOGE("safetensors %s: read header: %s", path, strerror(-rc));
		goto fail;
	}
	if (nn_value_from_json(text, hlen, &hdr) < 0 || hdr->kind != NN_VALUE_DICT) {
		LOGE("safetensors %s: header is not a JSON object", path);
		rc = -EINVAL;
		goto fail;
	}
	rc = -ENOMEM;
	if (nn_tensor_map_create(&map) < 0 || !(ents = calloc(hdr->u.dict.count + 1, sizeof(*ents))))
		goto fail;
	size_t n = 0;
	for (size_t i = 0; i < hdr->u.dict.count; i++) {
		const struct nn_value *k = hdr->u.dict.keys[i], *v = hdr->u.dict.vals[i];
		if (strcmp(k->u.s, "__metadata__") == 0) {
			if ((rc = parse_metadata(path, v, &map->metadata)) < 0)
				goto fail;
			continue;
		}
		if (v->kind != NN_VALUE_DICT) {
			LOGE("safetensors %s: tensor %s: entry is not an object", path, k->u.s);
			rc = -EINVAL;
			goto fail;
		}
		if ((rc = parse_entry(path, k->u.s, v, data_len, &ents[n])) < 0)
			goto fail;
		n++;
	}
	if ((rc = check_overlaps(path, ents, n)) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if ((rc = nn_tensor_map_add(map, ents[i].name, ents[i].dtype, ents[i].ndim, ents[i].shape, NULL)) < 0)
			goto fail;
		struct nn_tensor *t = &map->items[map->count - 1];
		if ((rc = read_full(fd, t->data, t->nbytes, data_off + ents[i].begin)) < 0) {
			LOGE("safetensors %s: tensor %s: read: %s", path, t->name, strerror(-rc));
			goto fail;
		}
	}
	close(fd);
	free(text);
	free(ents);
	nn_value_destroy(&hdr);
	*out = map;
	return 0;
fail:
	close(fd);
	free(text);
	free(ents);
	nn_value_destroy(&hdr);
	nn_tensor_map_destroy(&map);
	return rc;
}

static struct nn_value *int_list(const int64_t *v, size_t n)
{
	struct nn_value *l = nn_value_list();
	for (size_t i = 0; l && i < n; i++)
		if (nn_value_list_append(l, nn_value_int(v[i])) < 0)
			nn_value_destroy(&l);
	return l;
}

// The header JSON, padded with spaces to a multiple of 8 so that the data starts aligned.
static char *build_header(const struct nn_tensor_map *map, size_t *len)
{
	struct nn_value *h = nn_value_dict(), *md = NULL;
	char *text = NULL;
	if (!h)
		return NULL;
	if (map->metadata && map->metadata->kind == NN_VALUE_DICT && map->metadata->u.dict.count) {
		if (!(md = nn_value_dict()))
			goto done;
		for (size_t i = 0; i < map->metadata->u.dict.count; i++) {
			const struct nn_value *k = map->metadata->u.dict.keys[i], *v = map->metadata->u.dict.vals[i];
			char *ks = k->kind == NN_VALUE_STR ? strdup(k->u.s) : nn_value_to_json(k);
			char *vs = v->kind == NN_VALUE_STR ? strdup(v->u.s) : nn_value_to_json(v);
			struct nn_value *kv = ks ? nn_value_str(ks) : NULL, *vv = vs ? nn_value_str(vs) : NULL;
			free(ks);
			free(vs);
			if (!kv || !vv) {
				nn_value_destroy(&kv);
				nn_value_destroy(&vv);
				goto done;
			}
			if (nn_value_dict_set(md, kv, vv) < 0)
				goto done;
		}
		int rc = nn_value_dict_set(h, nn_value_str("__metadata__"), md);
		md = NULL;
		if (rc < 0)
			goto done;
	}
	int64_t off = 0;
	for (size_t i = 0; i < map->count; i++) {
		const struct nn_tensor *t = &map->items[i];
		struct nn_value *e = nn_value_dict();
		int64_t range[2] = { off, off + (int64_t)t->nbytes };
		off = range[1];
		if (!e || nn_value_dict_set(e, nn_value_str("dtype"), nn_value_str(nn_dtype_name(t->dtype))) < 0 ||
		    nn_value_dict_set(e, nn_value_str("shape"), int_list(t->shape, t->ndim)) < 0 ||
		    nn_value_dict_set(e, nn_value_str("data_offsets"), int_list(range, 2)) < 0) {
			nn_value_destroy(&e);
			goto done;
		}
		if (nn_value_dict_set(h, nn_value_str(t->name), e) < 0)
			goto done;
	}
	char *json = nn_value_to_json(h);
	if (!json)
		goto done;
	size_t n = strlen(json), padded = (n + 7) & ~(size_t)7;
	text = realloc(json, padded + 1);
	if (!text) {
		free(json);
		goto done;
	}
	memset(text + n, ' ', padded - n);
	text[padded] = '\0';
	*len = padded;
done:
	nn_value_destroy(&md);
	nn_value_destroy(&h);
	return text;
}

static int write_full(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int nn_safetensors_write(const char *path, const struct nn_tensor_map *map)
{
	char *tmp = NULL, *hdr = NULL;
	size_t hlen = 0;
	int fd = -1, rc = -ENOMEM;
	if (asprintf(&tmp, "%s.tmp", path) < 0) {
		tmp = NULL;
		goto fail;
	}
	if (!(hdr = build_header(map, &hlen)))
		goto fail;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		LOGE("safetensors %s: create: %s", tmp, strerror(errno));
		goto fail;
	}
	uint8_t lenb[8];
	for (int i = 0; i < 8; i++)
		lenb[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
	if ((rc = write_full(fd, lenb, 8)) < 0 || (rc = write_full(fd, hdr, hlen)) < 0)
		goto io_fail;
	for (size_t i = 0; i < map->count; i++)
		if ((rc = write_full(fd, map->items[i].data, map->items[i].nbytes)) < 0)
			goto io_fail;
	if (fsync(fd) < 0) {
		rc = -errno;
		goto io_fail;
	}
	rc = close(fd);
	fd = -1;
	if (rc < 0) {
		rc = -errno;
		goto io_fail;
	}
	if (rename(tmp, path) < 0) {
		rc = -errno;
		LOGE("safetensors %s: rename from %s: %s", path, tmp, strerror(errno));
		unlink(tmp);
		goto fail;
	}
	free(tmp);
	free(hdr);
	return 0;
io_fail:
	LOGE("safetensors %s: write: %s", tmp, strerror(-rc));
	if (fd >= 0)
		close(fd);
	fd = -1;
	unlink(tmp);
fail:
	if (fd >= 0)
		close(fd);
	free(tmp);
	free(hdr);
	return rc;
}
