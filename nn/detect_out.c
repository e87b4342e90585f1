// Label txt, COCO JSON and run-folder naming, matching detect.py / val.py output byte for byte:
// float32 box arithmetic as the tensors do it, "%g" for txt, Python's round()+repr for JSON.
#include "detect_out.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

int nn_yolo_txt_line(const struct nn_det *d, uint32_t img_w, uint32_t img_h, bool save_conf, char *buf,
                     size_t cap)
{
	// xyxy2xywh in float32, then divided by gn = (w, h, w, h) (int64 tensor promoted to float).
	float gw = (float)img_w, gh = (float)img_h;
	float cx = (d->x1 + d->x2) / 2, cy = (d->y1 + d->y2) / 2, w = d->x2 - d->x1, h = d->y2 - d->y1;
	int n;
	if (save_conf)
		n = snprintf(buf, cap, "%g %g %g %g %g %g", (double)(float)d->cls, (double)(cx / gw),
		             (double)(cy / gh), (double)(w / gw), (double)(h / gh), (double)d->conf);
	else
		n = snprintf(buf, cap, "%g %g %g %g %g", (double)(float)d->cls, (double)(cx / gw),
		             (double)(cy / gh), (double)(w / gw), (double)(h / gh));
	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

int nn_yolo_txt_append(const char *path, const struct nn_det *d, uint32_t n, uint32_t img_w,
                       uint32_t img_h, bool save_conf)
{
	FILE *f = fopen(path, "a");
	if (!f) {
		int rc = -errno;
		LOGE("labels %s: cannot open: %s", path, strerror(errno));
		return rc;
	}
	char line[256];
	for (uint32_t k = n; k-- > 0;) {
		int len = nn_yolo_txt_line(&d[k], img_w, img_h, save_conf, line, sizeof(line));
		if (len > 0)
			fprintf(f, "%s\n", line);
	}
	if (ferror(f) | fclose(f)) {
		LOGE("labels %s: write error", path);
		return -EIO;
	}
	return 0;
}

int nn_coco80_to_91(int32_t cls)
{
	static const uint8_t map[80] = { 1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 13, 14, 15, 16, 17,
		                             18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36,
		                             37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53,
		                             54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73,
		                             74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90 };
	return cls >= 0 && cls < 80 ? map[cls] : -1;
}

struct nn_coco_json {
	char *buf; // "[" entries "]", always terminated
	size_t len, cap;
	size_t count;
	bool coco91;
};

static int put(struct nn_coco_json *js, const char *s, size_t n)
{
	if (js->len + n + 2 > js->cap) {
		size_t cap = js->cap ? js->cap : 4096;
		while (js->len + n + 2 > cap)
			cap *= 2;
		char *b = realloc(js->buf, cap);
		if (!b) {
			LOGE("coco json: out of memory");
			return -ENOMEM;
		}
		js->buf = b;
		js->cap = cap;
	}
	memcpy(js->buf + js->len, s, n);
	js->len += n;
	js->buf[js->len] = 0;
	return 0;
}

static int puts_(struct nn_coco_json *js, const char *s)
{
	return put(js, s, strlen(s));
}

int nn_coco_json_create(bool coco91, struct nn_coco_json **out)
{
	*out = NULL;
	struct nn_coco_json *js = calloc(1, sizeof(*js));
	if (!js || puts_(js, "[]")) {
		free(js);
		return -ENOMEM;
	}
	js->coco91 = coco91;
	*out = js;
	return 0;
}

void nn_coco_json_destroy(struct nn_coco_json **js)
{
	if (!js || !*js)
		return;
	free((*js)->buf);
	free(*js);
	*js = NULL;
}

// repr(round(v, nd)) in Python: correctly rounded decimal, shortest form, at least one digit after
// the point, exponent form below 1e-4.
static void py_round_repr(double v, int nd, char *out, size_t cap)
{
	char s[64];
	snprintf(s, sizeof(s), "%.*f", nd, v);
	double r = strtod(s, NULL);
	if (r != 0 && fabs(r) < 1e-4) {
		for (int p = 0; p < 17; p++) {
			snprintf(out, cap, "%.*e", p, r);
			if (strtod(out, NULL) == r)
				return;
		}
		return;
	}
	char *dot = strchr(s, '.');
	if (dot) {
		char *e = s + strlen(s) - 1;
		while (e > dot + 1 && *e == '0')
			*e-- = 0;
	}
	snprintf(out, cap, "%s", s);
}

// json.dumps(str) with ensure_ascii: escapes quotes, backslash, controls and non-ASCII (\uXXXX).
static int put_json_string(struct nn_coco_json *js, const char *s)
{
	int rc = put(js, "\"", 1);
	const unsigned char *p = (const unsigned char *)s;
	while (!rc && *p) {
		char e[16];
		unsigned cp = *p++;
		if (cp >= 0x80) { // decode UTF-8 (invalid bytes are passed as their own code point)
			int extra = cp >= 0xF0 ? 3 : cp >= 0xE0 ? 2 : cp >= 0xC0 ? 1 : 0;
			unsigned v = cp & (0x3F >> extra);
			int k = 0;
			for (; k < extra && (p[k] & 0xC0) == 0x80; k++)
				v = v << 6 | (p[k] & 0x3F);
			if (k == extra && extra) {
				cp = v;
				p += extra;
			}
		}
		if (cp == '"' || cp == '\\')
			snprintf(e, sizeof(e), "\\%c", (char)cp);
		else if (cp == '\n')
			snprintf(e, sizeof(e), "\\n");
		else if (cp == '\t')
			snprintf(e, sizeof(e), "\\t");
		else if (cp == '\r')
			snprintf(e, sizeof(e), "\\r");
		else if (cp >= 0x10000)
			snprintf(e, sizeof(e), "\\u%04x\\u%04x", 0xD800 + ((cp - 0x10000) >> 10),
			         0xDC00 + ((cp - 0x10000) & 0x3FF));
		else if (cp < 0x20 || cp >= 0x7F)
			snprintf(e, sizeof(e), "\\u%04x", cp);
		else
			snprintf(e, sizeof(e), "%c", (char)cp);
		rc = puts_(js, e);
	}
	return rc ? rc : put(js, "\"", 1);
}

// Path(path).stem written as image_id: int(stem) when stem.isnumeric(), else the string.
static int put_image_id(struct nn_coco_json *js, const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	char stem[512];
	snprintf(stem, sizeof(stem), "%s", base);
	char *dot = strrchr(stem, '.');
	if (dot && dot != stem)
		*dot = 0;
	bool numeric = stem[0] != 0;
	for (const char *q = stem; *q; q++)
		numeric &= *q >= '0' && *q <= '9';
	if (!numeric)
		return put_json_string(js, stem);
	const char *q = stem;
	while (q[0] == '0' && q[1])
		q++;
	return puts_(js, q);
}

int nn_coco_json_add(struct nn_coco_json *js, const char *image_path, const struct nn_det *d,
                     uint32_t n)
{
	js->len--; // drop the closing ']'
	int rc = 0;
	for (uint32_t i = 0; i < n && !rc; i++) {
		// xyxy2xywh then xy -= wh / 2, all float32 as the tensor ops
		float cx = (d[i].x1 + d[i].x2) / 2, cy = (d[i].y1 + d[i].y2) / 2;
		float w = d[i].x2 - d[i].x1, h = d[i].y2 - d[i].y1;
		float b[4] = { cx - w / 2, cy - h / 2, w, h };
		int cat = js->coco91 ? nn_coco80_to_91(d[i].cls) : d[i].cls;
		char t[96];
		rc = puts_(js, js->count++ ? ", {\"image_id\": " : "{\"image_id\": ");
		rc = rc ? rc : put_image_id(js, image_path);
		snprintf(t, sizeof(t), ", \"category_id\": %d, \"bbox\": [", cat);
		rc = rc ? rc : puts_(js, t);
		for (int k = 0; k < 4 && !rc; k++) {
			py_round_repr(b[k], 3, t, sizeof(t));
			rc = puts_(js, t);
			rc = rc ? rc : puts_(js, k < 3 ? ", " : "], \"score\": ");
		}
		py_round_repr(d[i].conf, 5, t, sizeof(t));
		rc = rc ? rc : puts_(js, t);
		rc = rc ? rc : puts_(js, "}");
	}
	int rc2 = puts_(js, "]");
	return rc ? rc : rc2;
}

const char *nn_coco_json_text(struct nn_coco_json *js)
{
	return js->buf;
}

int nn_coco_json_write(struct nn_coco_json *js, const char *path)
{
	size_t n = strlen(path) + 8;
	char *tmp = malloc(n);
	if (!tmp)
		return -ENOMEM;
	snprintf(tmp, n, "%s.tmp", path);
	FILE *f = fopen(tmp, "wb");
	int rc = 0;
	if (!f || fwrite(js->buf, 1, js->len, f) != js->len)
		rc = -EIO;
	if (f && fclose(f))
		rc = -EIO;
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc) {
		LOGE("coco json %s: write failed", path);
		unlink(tmp);
	}
	free(tmp);
	return rc;
}

int nn_mkdir_p(const char *path)
{
	char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	int rc = 0;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s)
			continue;
		char c = *s;
		*s = 0;
		struct stat st;
		if (mkdir(p, 0755) && errno != EEXIST) {
			rc = -errno;
			LOGE("mkdir %s: %s", p, strerror(errno));
			break;
		}
		if (!c) {
			if (stat(p, &st) || !S_ISDIR(st.st_mode)) {
				LOGE("mkdir %s: exists and is not a directory", p);
				rc = -ENOTDIR;
			}
			break;
		}
		*s = c;
	}
	free(p);
	return rc;
}

int nn_increment_path(const char *path, bool exist_ok, bool mkdir_, char **out)
{
	*out = NULL;
	size_t n = strlen(path) + 16;
	char *res = malloc(n);
	if (!res)
		return -ENOMEM;
	struct stat st;
	snprintf(res, n, "%s", path);
	if (!exist_ok && stat(path, &st) == 0) {
		// For a file, the number goes between stem and suffix (Path.with_suffix('')).
		const char *base = strrchr(path, '/');
		base = base ? base + 1 : path;
		const char *dot = S_ISREG(st.st_mode) ? strrchr(base, '.') : NULL;
		if (dot == base)
			dot = NULL;
		size_t stem_len = dot ? (size_t)(dot - path) : strlen(path);
		int k;
		for (k = 2; k < 9999; k++) {
			snprintf(res, n, "%.*s%d%s", (int)stem_len, path, k, dot ? dot : "");
			if (stat(res, &st) != 0)
				break;
		}
		if (k == 9999) {
			LOGE("run folder %s: 2..9998 all taken", path);
			free(res);
			return -EEXIST;
		}
	}
	if (mkdir_) {
		int rc = nn_mkdir_p(res);
		if (rc) {
			free(res);
			return rc;
		}
	}
	*out = res;
	return 0;
}
