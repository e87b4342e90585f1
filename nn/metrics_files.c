// Scoring saved prediction files (the `--save-txt --save-conf` format) against a dataset split
// with the official metrics (see metrics.h).
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset.h"
#include "log.h"
#include "confusion.h"
#include "metrics.h"

static float clampf(float v, float hi)
{
	return v < 0.0f ? 0.0f : v > hi ? hi : v;
}

// xywhn -> xyxy pixels (float32 as the official xywhn2xyxy), optionally clipped to the image
// (clip_boxes).
static void xywhn_to_xyxy(float cx, float cy, float w, float h, int width, int height, bool clip,
			  float o[4])
{
	float W = (float)width, H = (float)height;
	o[0] = W * (cx - w / 2.0f);
	o[1] = H * (cy - h / 2.0f);
	o[2] = W * (cx + w / 2.0f);
	o[3] = H * (cy + h / 2.0f);
	if (clip) {
		o[0] = clampf(o[0], W);
		o[1] = clampf(o[1], H);
		o[2] = clampf(o[2], W);
		o[3] = clampf(o[3], H);
	}
}

void nn_metrics_labels_to_gt(const struct nn_label *labels, size_t n, int width, int height,
			     struct nn_gt *out)
{
	for (size_t i = 0; i < n; i++) {
		float b[4];
		xywhn_to_xyxy(labels[i].cx, labels[i].cy, labels[i].w, labels[i].h, width, height,
			      true, b);
		out[i] = (struct nn_gt){labels[i].cls, b[0], b[1], b[2], b[3]};
	}
}

static int cmp_det(const void *pa, const void *pb)
{
	const struct nn_det *a = pa, *b = pb;
	return (a->conf < b->conf) - (a->conf > b->conf);
}

int nn_metrics_read_predictions(const char *path, int width, int height, struct nn_det **out,
				size_t *count)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, n = 0, dcap = 0, lineno = 0;
	struct nn_det *d = NULL;
	int rc = 0;
	*out = NULL;
	*count = 0;
	if (!f) {
		if (errno == ENOENT)
			return 0;
		LOGE("predictions %s: %s", path, strerror(errno));
		return -EIO;
	}
	while (getline(&line, &cap, f) >= 0) {
		lineno++;
		double v[6];
		int used = 0;
		char extra[2];
		if (sscanf(line, " %c", extra) != 1)
			continue; // blank line
		if (sscanf(line, "%lf %lf %lf %lf %lf %lf %n", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
			   &used) != 6 ||
		    line[used] != '\0' || v[0] < 0 || v[0] != (double)(int)v[0]) {
			LOGE("predictions %s: line %zu: need `class cx cy w h conf`", path, lineno);
			rc = -EINVAL;
			goto fail;
		}
		if (n == dcap) {
			dcap = dcap ? dcap * 2 : 64;
			struct nn_det *nd = realloc(d, dcap * sizeof(*d));
			if (!nd) {
				LOGE("predictions %s: out of memory", path);
				rc = -ENOMEM;
				goto fail;
			}
			d = nd;
		}
		float b[4];
		xywhn_to_xyxy((float)v[1], (float)v[2], (float)v[3], (float)v[4], width, height,
			      false, b);
		d[n++] = (struct nn_det){b[0], b[1], b[2], b[3], (float)v[5], (int)v[0]};
	}
	// NMS hands val.py its detections by descending confidence and the matching depends on the
	// order. Insertion sort: stable (equal confidences keep file order); files are short.
	for (size_t i = 1; i < n; i++) {
		struct nn_det t = d[i];
		size_t j = i;
		while (j > 0 && cmp_det(&d[j - 1], &t) > 0) {
			d[j] = d[j - 1];
			j--;
		}
		d[j] = t;
	}
	*out = d;
	*count = n;
	d = NULL;
fail:
	free(d);
	free(line);
	fclose(f);
	return rc;
}

// <dir>/<stem of image>.txt
static char *pred_path(const char *dir, const char *image)
{
	const char *base = strrchr(image, '/');
	base = base ? base + 1 : image;
	const char *dot = strrchr(base, '.');
	int stem = dot ? (int)(dot - base) : (int)strlen(base);
	char *p = NULL;
	if (asprintf(&p, "%s/%.*s.txt", dir, stem, base) < 0)
		return NULL;
	return p;
}

int nn_metrics_score_dir(const struct nn_dataset_split *split, const char *pred_dir,
			 struct nn_metrics_result *out, struct nn_confusion *cm)
{
	struct nn_metrics *m = NULL;
	struct nn_gt *gt = NULL;
	struct nn_det *dets = NULL;
	size_t gcap = 0, nfiles = 0;
	struct stat st;
	memset(out, 0, sizeof(*out));
	if (stat(pred_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		int e = errno;
		LOGE("metrics: predictions folder %s: %s", pred_dir,
		     stat(pred_dir, &st) != 0 ? strerror(e) : "not a folder");
		return -ENOENT;
	}
	int rc = nn_metrics_create(&m);
	for (size_t i = 0; !rc && i < split->count; i++) {
		const struct nn_dataset_image *im = &split->images[i];
		char *pp = pred_path(pred_dir, im->path);
		size_t nd = 0;
		if (!pp) {
			rc = -ENOMEM;
			break;
		}
		nfiles += stat(pp, &st) == 0;
		rc = nn_metrics_read_predictions(pp, im->width, im->height, &dets, &nd);
		free(pp);
		if (!rc && im->count > gcap) {
			struct nn_gt *g = realloc(gt, im->count * sizeof(*g));
			if (!g)
				rc = -ENOMEM;
			else
				gt = g, gcap = im->count;
		}
		if (!rc) {
			nn_metrics_labels_to_gt(im->labels, im->count, im->width, im->height, gt);
			rc = nn_metrics_add_image(m, dets, nd, gt, im->count);
		}
		if (!rc && cm)
			rc = nn_confusion_add_image(cm, dets, nd, gt, im->count);
		free(dets);
		dets = NULL;
	}
	if (!rc && nfiles == 0)
		LOGW("metrics: no prediction file in %s matches an image of the split", pred_dir);
	if (!rc)
		rc = nn_metrics_compute(m, out);
	if (rc == -ENOMEM)
		LOGE("metrics: scoring %s: out of memory", pred_dir);
	free(gt);
	nn_metrics_destroy(&m);
	return rc;
}
