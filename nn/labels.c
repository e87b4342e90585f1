// YOLO label files: the checks of the official verify_image_label (label parsing, polygon -> box,
// duplicate removal, corrupt rows) and the loading of one dataset split with them (see dataset.h).
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


#include "dataset.h"
#include "log.h"

// ---- label text ---------------------------------------------------------------------------------

struct row {
	float v[5]; // class, cx, cy, w, h (float32 as np.array(lb, dtype=np.float32))
};

static int cmp_row(const void *pa, const void *pb)
{
	const struct row *a = pa, *b = pb;
	for (int i = 0; i < 5; i++)
		if (a->v[i] != b->v[i])
			return a->v[i] < b->v[i] ? -1 : 1;
	return 0;
}

// Splits one line into numbers (as Python float() then float32). Returns the count, -1 on a token
// that is not a number. *vals grows as needed.
static long parse_line(const char *s, const char *end, float **vals, size_t *cap)
{
	long n = 0;
	while (s < end) {
		while (s < end && (*s == ' ' || *s == '\t' || *s == '\v' || *s == '\f'))
			s++;
		if (s >= end)
			break;
		char tok[64];
		size_t t = 0;
		while (s < end && !(*s == ' ' || *s == '\t' || *s == '\v' || *s == '\f')) {
			if (t + 1 >= sizeof(tok))
				return -1;
			tok[t++] = *s++;
		}
		tok[t] = '\0';
		char *e = NULL;
		double d = strtod(tok, &e);
		if (*e || e == tok)
			return -1;
		if ((size_t)n == *cap) {
			size_t c = *cap ? *cap * 2 : 16;
			float *v = realloc(*vals, c * sizeof(*v));
			if (!v)
				return -2;
			*vals = v;
			*cap = c;
		}
		(*vals)[n++] = (float)d;
	}
	return n;
}

// One row from a polygon line: class then x y pairs; box = min/max envelope as xywh (float32).
static bool polygon_row(const float *v, long n, struct row *r)
{
	if (n < 3 || (n - 1) % 2)
		return false;
	float x1 = v[1], y1 = v[2], x2 = v[1], y2 = v[2];
	for (long i = 1; i + 1 < n; i += 2) {
		x1 = fminf(x1, v[i]);
		x2 = fmaxf(x2, v[i]);
		y1 = fminf(y1, v[i + 1]);
		y2 = fmaxf(y2, v[i + 1]);
	}
	*r = (struct row){{v[0], (x1 + x2) / 2.0f, (y1 + y2) / 2.0f, x2 - x1, y2 - y1}};
	return true;
}

static int check_rows(const struct row *rows, size_t n, int nc, const char *what)
{
	for (size_t i = 0; i < n; i++) {
		const float *v = rows[i].v;
		for (int k = 0; k < 5; k++) {
			if (!(v[k] >= 0.0f)) {
				LOGW("labels %s: row %zu: negative label value %g", what, i + 1, v[k]);
				return -EINVAL;
			}
			if (k > 0 && !(v[k] <= 1.0f)) {
				LOGW("labels %s: row %zu: non-normalized or out of bounds coordinate %g",
				     what, i + 1, v[k]);
				return -EINVAL;
			}
		}
		if (v[0] != floorf(v[0]) || (nc > 0 && v[0] >= (float)nc)) {
			LOGW("labels %s: row %zu: class %g is not an index in 0..%d", what, i + 1, v[0],
			     nc - 1);
			return -EINVAL;
		}
	}
	return 0;
}

int nn_labels_parse(const char *text, size_t len, int nc, const char *what, struct nn_label **out,
		    size_t *count, size_t *dups)
{
	int rc = -ENOMEM;
	float *vals = NULL;
	size_t vcap = 0, nrows = 0, rcap = 0;
	struct row *rows = NULL;
	bool seg = false;
	struct row *sorted = NULL;
	*out = NULL;
	*count = 0;
	*dups = 0;
	// text.strip().splitlines(), empty lines dropped; two passes: the polygon decision needs
	// every line's field count first.
	const char *b = text, *e = text + len;
	while (b < e && (*b == ' ' || *b == '\t' || *b == '\n' || *b == '\r' || *b == '\v' || *b == '\f'))
		b++;
	while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r' ||
			 e[-1] == '\v' || e[-1] == '\f'))
		e--;
	for (int pass = 0; pass < 2; pass++) {
		size_t lineno = 0;
		for (const char *s = b; s < e;) {
			const char *nl = s;
			while (nl < e && *nl != '\n' && *nl != '\r')
				nl++;
			lineno++;
			if (nl > s) {
				long n = parse_line(s, nl, &vals, &vcap);
				if (n == -2)
					goto fail;
				if (n < 0) {
					LOGW("labels %s: line %zu: not a number", what, lineno);
					rc = -EINVAL;
					goto fail;
				}
				if (pass == 0) {
					seg |= n > 6;
					nrows++;
				} else {
					struct row r = {{0}};
					if (seg ? !polygon_row(vals, n, &r) : n != 5) {
						LOGW("labels %s: line %zu: %ld fields, need %s", what,
						     lineno, n,
						     seg ? "a class and x y pairs" : "5 columns");
						rc = -EINVAL;
						goto fail;
					}
					if (!seg)
						memcpy(r.v, vals, sizeof(r.v));
					rows[rcap++] = r;
				}
			}
			s = nl;
			if (s < e && *s == '\r' && s + 1 < e && s[1] == '\n')
				s++;
			if (s < e)
				s++;
		}
		if (pass == 0 && nrows && !(rows = malloc(nrows * sizeof(*rows))))
			goto fail;
	}
	if ((rc = check_rows(rows, nrows, nc, what)))
		goto fail;
	// Duplicate rows: np.unique(lb, axis=0) (only applied when there are duplicates, so the file
	// order is kept otherwise).
	if (nrows > 1) {
		sorted = malloc(nrows * sizeof(*sorted));
		if (!sorted) {
			rc = -ENOMEM;
			goto fail;
		}
		memcpy(sorted, rows, nrows * sizeof(*rows));
		qsort(sorted, nrows, sizeof(*sorted), cmp_row);
		size_t k = 1;
		for (size_t i = 1; i < nrows; i++)
			if (cmp_row(&sorted[i], &sorted[k - 1]))
				sorted[k++] = sorted[i];
		if (k < nrows) {
			*dups = nrows - k;
			LOGW("labels %s: %zu duplicate labels removed", what, *dups);
			free(rows);
			rows = sorted;
			nrows = k;
		} else {
			free(sorted);
		}
	}
	if (nrows) {
		*out = malloc(nrows * sizeof(**out));
		if (!*out) {
			rc = -ENOMEM;
			goto fail;
		}
		for (size_t i = 0; i < nrows; i++)
			(*out)[i] = (struct nn_label){(int)rows[i].v[0], rows[i].v[1], rows[i].v[2],
						      rows[i].v[3], rows[i].v[4]};
	}
	*count = nrows;
	rc = 0;
fail:
	if (rc == -ENOMEM)
		LOGE("labels %s: out of memory", what);
	free(rows);
	free(vals);
	return rc;
}

// ---- one split ----------------------------------------------------------------------------------

static int read_text(const char *path, char **text, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;
	if (!f) {
		LOGW("labels %s: %s", path, strerror(errno));
		return -EIO;
	}
	for (;;) {
		if (cap - n < 4096) {
			cap = cap ? cap * 2 : 8192;
			char *b = realloc(buf, cap);
			if (!b) {
				free(buf);
				fclose(f);
				LOGE("labels %s: out of memory", path);
				return -ENOMEM;
			}
			buf = b;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	*text = buf;
	*len = n;
	return 0;
}

// Loads the labels of one image into *im. Returns 0 (kept), 1 (skipped as corrupt), -ENOMEM.
static int load_one(struct nn_dataset_split *s, int nc, const char *path,
		    struct nn_dataset_image *im)
{
	char *lp = NULL, *text = NULL;
	size_t len = 0, dups = 0;
	struct stat st;
	int rc = nn_image_size(path, &im->width, &im->height);
	if (rc)
		return 1;
	if (im->width < 10 || im->height < 10) {
		LOGW("image %s: size %dx%d < 10 pixels: ignored", path, im->width, im->height);
		return 1;
	}
	if ((rc = nn_label_path(path, &lp)))
		return rc;
	if (stat(lp, &st) != 0 || !S_ISREG(st.st_mode)) {
		s->missing++;
		free(lp);
		return 0;
	}
	s->found++;
	rc = read_text(lp, &text, &len);
	if (!rc)
		rc = nn_labels_parse(text, len, nc, lp, &im->labels, &im->count, &dups);
	free(text);
	free(lp);
	if (rc == -ENOMEM)
		return rc;
	if (rc)
		return 1;
	s->duplicates += dups;
	s->empty += im->count == 0;
	return 0;
}

int nn_dataset_split_load(const struct nn_dataset *d, enum nn_split split,
			  struct nn_dataset_split **out)
{
	char **paths = NULL;
	size_t n = 0;
	struct nn_dataset_split *s = NULL;
	int rc = nn_dataset_images(d, split, &paths, &n);
	*out = NULL;
	if (rc)
		return rc;
	rc = -ENOMEM;
	char *cache = NULL;
	uint64_t key = 0;
	bool *kept = NULL;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->images = calloc(n ? n : 1, sizeof(*s->images))) || !(kept = calloc(n ? n : 1, sizeof(bool)))) {
		LOGE("dataset %s: %zu images: out of memory", d->yaml_path, n);
		goto fail;
	}
	if (n && nn_scan_cache_enabled() && ((rc = nn_scan_cache_path(paths[0], &cache)) ||
	                                     (rc = nn_scan_cache_key(paths, n, d->nc, &key))))
		goto fail;
	if (key && (rc = nn_scan_cache_read(cache, key, paths, n, s)) != -ENOENT && rc != -EINVAL) {
		if (rc)
			goto fail;
		LOGI("dataset %s %s: %zu images from the scan cache %s", d->yaml_path, nn_split_name(split), n, cache);
		s->from_cache = true;
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		struct nn_dataset_image *im = &s->images[s->count];
		int r = load_one(s, d->nc, paths[i], im);
		if (r < 0) {
			rc = r;
			goto fail;
		}
		if (r > 0) {
			LOGW("image %s: ignoring corrupt image/label", paths[i]);
			s->corrupt++;
			free(im->labels);
			memset(im, 0, sizeof(*im));
			free(paths[i]);
		} else {
			im->path = paths[i];
			s->nboxes += im->count;
			s->count++;
			kept[i] = true;
		}
		paths[i] = NULL;
	}
	if (key)
		nn_scan_cache_write(cache, key, n, kept, s); // a failure is only a warning
done:
	nn_strv_free(paths, n);
	free(cache);
	free(kept);
	*out = s;
	return 0;
fail:
	nn_strv_free(paths, n);
	free(cache);
	free(kept);
	nn_dataset_split_destroy(&s);
	return rc;
}

void nn_dataset_split_destroy(struct nn_dataset_split **ps)
{
	if (!ps || !*ps)
		return;
	struct nn_dataset_split *s = *ps;
	for (size_t i = 0; s->images && i < s->count; i++) {
		free(s->images[i].path);
		free(s->images[i].labels);
	}
	free(s->images);
	free(s);
	*ps = NULL;
}
