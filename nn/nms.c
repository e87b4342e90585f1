// non_max_suppression and scale_boxes with the official float32 arithmetic: class offsets added in
// float (they change IoU rounding), torchvision's IoU formula and strict comparisons, torch's
// (unstable, but deterministic) descending sort so tied scores come out in the same order. Classes are processed in separate buckets when offsets make them disjoint, which
// gives the same result as torchvision's single greedy pass, much faster.
#include "nms.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "torch_sort.h"

#define MAX_WH 7680.0f
#define MAX_NMS_DEFAULT 30000u

struct cand {
	float b[4]; // x1 y1 x2 y2, input pixels
	float conf;
	int32_t cls;
};

static bool class_wanted(const struct nn_nms_params *p, int32_t c)
{
	if (!p->classes)
		return true;
	for (uint32_t i = 0; i < p->n_classes; i++)
		if (p->classes[i] == c)
			return true;
	return false;
}

// Candidate rows in the official order: anchors ascending, then classes ascending (multi-label).
static int gather(const float *pred, uint32_t nc, uint32_t A, const struct nn_nms_params *p, bool multi,
                  struct cand **out, size_t *n_out)
{
	size_t n = 0, cap = 1024;
	struct cand *c = malloc(cap * sizeof(*c));
	if (!c)
		return -ENOMEM;
	const float thr = p->conf_thres;
	for (uint32_t a = 0; a < A; a++) {
		const float *s = pred + (size_t)4 * A + a;
		float best = s[0];
		uint32_t bj = 0;
		for (uint32_t k = 1; k < nc; k++)
			if (s[(size_t)k * A] > best) { // first maximum wins, as torch.max
				best = s[(size_t)k * A];
				bj = k;
			}
		if (!(best > thr))
			continue;
		float cx = pred[a], cy = pred[(size_t)A + a], w = pred[(size_t)2 * A + a],
		      h = pred[(size_t)3 * A + a];
		float box[4] = { cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2 };
		for (uint32_t k = multi ? 0 : bj; k < (multi ? nc : bj + 1); k++) {
			float sc = s[(size_t)k * A];
			if (!(sc > thr) || !class_wanted(p, (int32_t)k))
				continue;
			if (n == cap) {
				cap *= 2;
				struct cand *t = realloc(c, cap * sizeof(*c));
				if (!t) {
					free(c);
					return -ENOMEM;
				}
				c = t;
			}
			c[n] = (struct cand){ { box[0], box[1], box[2], box[3] }, sc, (int32_t)k };
			n++;
		}
	}
	*out = c;
	*n_out = n;
	return 0;
}

// torchvision.ops.nms (CPU kernel) over members idx[0..m) of one bucket, already in score order.
static void greedy(const float (*ob)[4], const float *area, const uint32_t *idx, size_t m, double thr,
                   uint8_t *suppressed, uint8_t *keep)
{
	for (size_t ii = 0; ii < m; ii++) {
		uint32_t i = idx[ii];
		if (suppressed[i])
			continue;
		keep[i] = 1;
		for (size_t jj = ii + 1; jj < m; jj++) {
			uint32_t j = idx[jj];
			if (suppressed[j])
				continue;
			float xx1 = fmaxf(ob[i][0], ob[j][0]), yy1 = fmaxf(ob[i][1], ob[j][1]);
			float xx2 = fminf(ob[i][2], ob[j][2]), yy2 = fminf(ob[i][3], ob[j][3]);
			float w = fmaxf(0.0f, xx2 - xx1), h = fmaxf(0.0f, yy2 - yy1);
			float inter = w * h;
			float ovr = inter / (area[i] + area[j] - inter);
			if ((double)ovr > thr)
				suppressed[j] = 1;
		}
	}
}

int nn_nms(const float *pred, uint32_t nc, uint32_t n_anchors, const struct nn_nms_params *p,
           struct nn_det **out, uint32_t *n_out)
{
	*out = NULL;
	*n_out = 0;
	if (!nc) {
		LOGE("nms: no classes");
		return -EINVAL;
	}
	struct cand *c = NULL, *sorted = NULL;
	float (*ob)[4] = NULL;
	float *area = NULL;
	uint32_t *idx = NULL, *start = NULL;
	uint8_t *flags = NULL;
	struct nn_det *dets = NULL;
	size_t n = 0;
	int rc = gather(pred, nc, n_anchors, p, p->multi_label && nc > 1, &c, &n);
	if (rc)
		goto fail;
	size_t max_det = p->max_det ? p->max_det : 300;
	rc = -ENOMEM;
	ob = malloc((n + 1) * sizeof(*ob));
	area = calloc(n + 1, sizeof(*area)); // first used as the sort keys
	idx = malloc((n + 1) * sizeof(*idx));
	sorted = malloc((n + 1) * sizeof(*sorted));
	if (!ob || !area || !idx || !sorted)
		goto fail;
	for (size_t i = 0; i < n; i++)
		area[i] = c[i].conf;
	if (nn_torch_argsort_desc(area, idx, n))
		goto fail;
	for (size_t i = 0; i < n; i++)
		sorted[i] = c[idx[i]];
	free(c);
	c = sorted;
	sorted = NULL;
	size_t max_nms = p->max_nms ? p->max_nms : MAX_NMS_DEFAULT;
	if (n > max_nms)
		n = max_nms;
	start = calloc((size_t)nc + 2, sizeof(*start));
	flags = calloc(2 * (n + 1), 1);
	dets = malloc((n < max_det ? n + 1 : max_det) * sizeof(*dets));
	if (!start || !flags || !dets)
		goto fail;
	// Offset boxes exactly as the official float32 tensor ops do: box + cls * max_wh.
	float lo = INFINITY, hi = -INFINITY;
	for (size_t i = 0; i < n; i++) {
		float off = p->agnostic ? 0.0f : (float)c[i].cls * MAX_WH;
		for (int k = 0; k < 4; k++) {
			ob[i][k] = c[i].b[k] + off;
			lo = fminf(lo, c[i].b[k]);
			hi = fmaxf(hi, c[i].b[k]);
		}
		area[i] = (ob[i][2] - ob[i][0]) * (ob[i][3] - ob[i][1]);
	}
	// Boxes of different classes cannot intersect when all coordinates span less than max_wh
	// (a margin of 2 px absorbs the rounding of the offset sums): NMS per class is then exact.
	bool split = !p->agnostic && hi - lo < MAX_WH - 2.0f;
	if (split) {
		for (size_t i = 0; i < n; i++)
			start[c[i].cls + 1]++;
		for (uint32_t k = 0; k < nc; k++)
			start[k + 1] += start[k];
		for (size_t i = 0; i < n; i++) // stable counting sort keeps score order inside a class
			idx[start[c[i].cls]++] = (uint32_t)i;
		for (uint32_t k = nc; k > 0; k--)
			start[k] = start[k - 1];
		start[0] = 0;
	} else {
		for (size_t i = 0; i < n; i++)
			idx[i] = (uint32_t)i;
	}
	uint8_t *suppressed = flags, *keep = flags + n + 1;
	uint32_t buckets = split ? nc : 1;
	for (uint32_t k = 0; k < buckets; k++) {
		size_t b0 = split ? start[k] : 0, b1 = split ? start[k + 1] : n;
		greedy((const float(*)[4])ob, area, idx + b0, b1 - b0, (double)p->iou_thres, suppressed, keep);
	}
	size_t m = 0;
	for (size_t i = 0; i < n && m < max_det; i++)
		if (keep[i])
			dets[m++] = (struct nn_det){ c[i].b[0], c[i].b[1], c[i].b[2], c[i].b[3], c[i].conf, c[i].cls };
	if (m) {
		*out = dets;
		dets = NULL;
	}
	*n_out = (uint32_t)m;
	rc = 0;
fail:
	if (rc)
		LOGE("nms: out of memory (%zu candidates)", n);
	free(c);
	free(sorted);
	free(ob);
	free(area);
	free(idx);
	free(start);
	free(flags);
	free(dets);
	return rc;
}

void nn_clip_boxes(uint32_t w, uint32_t h, struct nn_det *d, uint32_t n)
{
	float fw = (float)w, fh = (float)h;
	for (uint32_t i = 0; i < n; i++) {
		d[i].x1 = fminf(fmaxf(d[i].x1, 0.0f), fw);
		d[i].y1 = fminf(fmaxf(d[i].y1, 0.0f), fh);
		d[i].x2 = fminf(fmaxf(d[i].x2, 0.0f), fw);
		d[i].y2 = fminf(fmaxf(d[i].y2, 0.0f), fh);
	}
}

// The official code subtracts a Python float from a float32 tensor and divides by another: torch
// computes both in float32 with the scalars rounded to float.
void nn_scale_boxes_ratio_pad(double gain, double pad_x, double pad_y, uint32_t img_w, uint32_t img_h,
                              struct nn_det *d, uint32_t n)
{
	float g = (float)gain, px = (float)pad_x, py = (float)pad_y;
	for (uint32_t i = 0; i < n; i++) {
		d[i].x1 = (d[i].x1 - px) / g;
		d[i].x2 = (d[i].x2 - px) / g;
		d[i].y1 = (d[i].y1 - py) / g;
		d[i].y2 = (d[i].y2 - py) / g;
	}
	nn_clip_boxes(img_w, img_h, d, n);
}

void nn_scale_boxes(uint32_t in_w, uint32_t in_h, uint32_t img_w, uint32_t img_h, struct nn_det *d,
                    uint32_t n)
{
	double gain = fmin((double)in_h / img_h, (double)in_w / img_w);
	double px = (in_w - img_w * gain) / 2, py = (in_h - img_h * gain) / 2;
	nn_scale_boxes_ratio_pad(gain, px, py, img_w, img_h, d, n);
}

void nn_round_boxes(struct nn_det *d, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		d[i].x1 = nearbyintf(d[i].x1);
		d[i].y1 = nearbyintf(d[i].y1);
		d[i].x2 = nearbyintf(d[i].x2);
		d[i].y2 = nearbyintf(d[i].y2);
	}
}
