// ConfusionMatrix.process_batch of the official utils/metrics.py, number for number (see
// confusion.h).
#include "confusion.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "log.h"

struct nn_confusion {
	int nc;
	float conf, iou;
	double *m; // [(nc + 1) rows: predicted][(nc + 1) columns: true]
};

int nn_confusion_create(int nc, float conf, float iou, struct nn_confusion **out)
{
	*out = NULL;
	if (nc < 1) {
		LOGE("confusion matrix: %d classes", nc);
		return -EINVAL;
	}
	struct nn_confusion *cm = calloc(1, sizeof(*cm));
	if (cm)
		cm->m = calloc((size_t)(nc + 1) * (nc + 1), sizeof(*cm->m));
	if (!cm || !cm->m) {
		free(cm);
		LOGE("confusion matrix: out of memory for %d classes", nc);
		return -ENOMEM;
	}
	cm->nc = nc, cm->conf = conf, cm->iou = iou;
	*out = cm;
	return 0;
}

void nn_confusion_destroy(struct nn_confusion **cm)
{
	if (!cm || !*cm)
		return;
	free((*cm)->m);
	free(*cm);
	*cm = NULL;
}

int nn_confusion_classes(const struct nn_confusion *cm)
{
	return cm->nc;
}

double nn_confusion_at(const struct nn_confusion *cm, int pred, int truth)
{
	if (pred < 0 || pred > cm->nc || truth < 0 || truth > cm->nc)
		return 0.0;
	return cm->m[(size_t)pred * (cm->nc + 1) + truth];
}

static void bump(struct nn_confusion *cm, int pred, int truth)
{
	cm->m[(size_t)pred * (cm->nc + 1) + truth] += 1.0;
}

struct match {
	size_t gt, det;
	float iou;
};

// Descending IoU; ties keep the order the candidates were listed in (numpy's argsort()[::-1] of a
// stable sort reverses tied runs, so among equal IoUs the later candidate comes first).
static int cmp_iou_desc(const void *pa, const void *pb)
{
	const struct match *a = pa, *b = pb;
	if (a->iou != b->iou)
		return a->iou < b->iou ? 1 : -1;
	uint64_t ka = ((uint64_t)a->gt << 32) + a->det, kb = ((uint64_t)b->gt << 32) + b->det;
	return ka < kb ? 1 : ka > kb ? -1 : 0;
}

int nn_confusion_add_image(struct nn_confusion *cm, const struct nn_det *dets, size_t ndet, const struct nn_gt *gts,
                           size_t ngt)
{
	for (size_t i = 0; i < ngt; i++)
		if (gts[i].cls < 0 || gts[i].cls >= cm->nc) {
			LOGE("confusion matrix: label class %d outside 0..%d", gts[i].cls, cm->nc - 1);
			return -EINVAL;
		}
	for (size_t i = 0; i < ndet; i++)
		if (dets[i].cls < 0 || dets[i].cls >= cm->nc) {
			LOGE("confusion matrix: detection class %d outside 0..%d", dets[i].cls, cm->nc - 1);
			return -EINVAL;
		}
	// the detections above the confidence threshold, in the given order
	size_t *keep = malloc((ndet ? ndet : 1) * sizeof(*keep));
	size_t pairs = ndet * ngt;
	struct match *mt = malloc((pairs ? pairs : 1) * sizeof(*mt));
	bool *gt_used = calloc(ngt ? ngt : 1, sizeof(bool)), *det_used = calloc(ndet ? ndet : 1, sizeof(bool));
	int *gt_det = malloc((ngt ? ngt : 1) * sizeof(int));
	if (!keep || !mt || !gt_used || !det_used || !gt_det) {
		free(keep), free(mt), free(gt_used), free(det_used), free(gt_det);
		LOGE("confusion matrix: out of memory (%zu detections, %zu labels)", ndet, ngt);
		return -ENOMEM;
	}
	size_t nk = 0, nm = 0;
	for (size_t i = 0; i < ndet; i++)
		if (dets[i].conf > cm->conf)
			keep[nk++] = i;
	// candidate pairs (label, kept detection) with IoU > iou, in torch.where's row-major order
	for (size_t g = 0; g < ngt; g++)
		for (size_t k = 0; k < nk; k++) {
			const struct nn_det *d = &dets[keep[k]];
			float a[4] = { gts[g].x1, gts[g].y1, gts[g].x2, gts[g].y2 }, b[4] = { d->x1, d->y1, d->x2, d->y2 };
			float v = nn_box_iou(a, b);
			if (v > cm->iou)
				mt[nm++] = (struct match){ g, k, v };
		}
	// official: sort by IoU descending, keep the first (best) pair per detection, then re-sort and
	// keep the best pair per label. Greedy best-first over both sides is not the same thing, so
	// the two passes are done as written.
	qsort(mt, nm, sizeof(*mt), cmp_iou_desc);
	size_t n1 = 0;
	for (size_t i = 0; i < nm; i++)
		if (!det_used[mt[i].det])
			det_used[mt[i].det] = true, mt[n1++] = mt[i];
	// (n1 entries, still by IoU descending) best per label
	for (size_t g = 0; g < ngt; g++)
		gt_det[g] = -1;
	for (size_t i = 0; i < n1; i++)
		if (!gt_used[mt[i].gt])
			gt_used[mt[i].gt] = true, gt_det[mt[i].gt] = (int)mt[i].det;
	for (size_t i = 0; i < nk; i++)
		det_used[i] = false;
	for (size_t g = 0; g < ngt; g++) {
		if (gt_det[g] >= 0) {
			bump(cm, dets[keep[gt_det[g]]].cls, gts[g].cls); // matched: predicted class vs true class
			det_used[gt_det[g]] = true;
		} else {
			bump(cm, cm->nc, gts[g].cls); // missed label: background row
		}
	}
	if (n1) // official: unmatched detections count only when the image had any match
		for (size_t k = 0; k < nk; k++)
			if (!det_used[k])
				bump(cm, dets[keep[k]].cls, cm->nc); // detection of nothing: background column
	free(keep), free(mt), free(gt_used), free(det_used), free(gt_det);
	return 0;
}
