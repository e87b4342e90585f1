// One training sample in the official __getitem__ order: mosaic (+ mixup) or letterbox
// (+ perspective), normalised labels, Albumentations, HSV, flips, HWC -> CHW.
#include <errno.h>
#include <stdlib.h>

#include "augment.h"
#include "log.h"

// Mosaic, then mixup with a second mosaic of a random index (drawn before that mosaic, as the
// official argument evaluation order).
static int mosaic_mixup(const struct nn_aug_source *src, size_t index, const struct nn_hyp *hyp,
			struct nn_rng *rng, struct nn_image **img, struct nn_aug_boxes *boxes)
{
	struct nn_image *img2 = NULL;
	int rc = nn_aug_mosaic4(src, index, hyp, rng, img, boxes);
	if (rc)
		return rc;
	if (!(nn_rng_unit(rng) < hyp->mixup))
		return 0;
	size_t j = nn_rng_below(rng, (uint32_t)src->split->count);
	rc = nn_aug_mosaic4(src, j, hyp, rng, &img2, boxes); // labels concatenated
	if (rc)
		return rc;
	rc = nn_aug_mixup(*img, img2, nn_rng_beta(rng, 32.0, 32.0));
	nn_image_destroy(&img2);
	return rc;
}

static float clampf(float v, float lo, float hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

// official xyxy2xywhn(clip=True, eps=1e-3): corners clipped to [0, w - eps] x [0, h - eps].
static int to_labels(const struct nn_aug_boxes *b, uint32_t w, uint32_t h, struct nn_label **out)
{
	*out = NULL;
	if (!b->n)
		return 0;
	struct nn_label *l = malloc(b->n * sizeof(*l));
	if (!l) {
		LOGE("augment: %zu labels: out of memory", b->n);
		return -ENOMEM;
	}
	const float eps = 1e-3f, fw = (float)w, fh = (float)h;
	for (size_t i = 0; i < b->n; i++) {
		float x1 = clampf(b->v[i].x1, 0, fw - eps), x2 = clampf(b->v[i].x2, 0, fw - eps);
		float y1 = clampf(b->v[i].y1, 0, fh - eps), y2 = clampf(b->v[i].y2, 0, fh - eps);
		l[i] = (struct nn_label){ .cls = (int)b->v[i].cls, .cx = (x1 + x2) / 2 / fw,
					  .cy = (y1 + y2) / 2 / fh, .w = (x2 - x1) / fw,
					  .h = (y2 - y1) / fh };
	}
	*out = l;
	return 0;
}

int nn_aug_sample(const struct nn_aug_source *src, size_t index,
		  const struct nn_aug_sample_params *p, const struct nn_hyp *hyp,
		  struct nn_rng *rng, uint8_t *chw, struct nn_label **labels, size_t *count)
{
	struct nn_image *img = NULL;
	struct nn_aug_boxes boxes = { 0 };
	struct nn_label *l = NULL;
	int rc;
	*labels = NULL;
	*count = 0;
	bool mosaic = p->augment && p->mosaic && nn_rng_unit(rng) < hyp->mosaic;
	if (mosaic) {
		rc = mosaic_mixup(src, index, hyp, rng, &img, &boxes);
	} else {
		uint32_t ow = p->out_w ? p->out_w : src->imgsz, oh = p->out_h ? p->out_h : src->imgsz;
		rc = nn_aug_letterboxed(src, index, ow, oh, p->augment, hyp, rng, &img, &boxes);
	}
	if (rc)
		goto fail;
	rc = to_labels(&boxes, img->w, img->h, &l);
	if (rc)
		goto fail;
	if (p->augment) {
		rc = p->albumentations ? nn_aug_albumentations(img, rng) : 0;
		if (rc)
			goto fail;
		if (hyp->hsv_h != 0 || hyp->hsv_s != 0 || hyp->hsv_v != 0) {
			double g[3];
			nn_aug_hsv_gains(hyp, rng, g);
			nn_aug_hsv_apply(img, g);
		}
		if (nn_rng_unit(rng) < hyp->flipud) {
			nn_aug_flip_ud(img);
			for (size_t i = 0; i < boxes.n; i++)
				l[i].cy = 1 - l[i].cy;
		}
		if (nn_rng_unit(rng) < hyp->fliplr) {
			nn_aug_flip_lr(img);
			for (size_t i = 0; i < boxes.n; i++)
				l[i].cx = 1 - l[i].cx;
		}
	}
	size_t plane = (size_t)img->w * img->h;
	for (size_t i = 0; i < plane; i++)
		for (int k = 0; k < 3; k++)
			chw[k * plane + i] = img->data[3 * i + k];
	*labels = l;
	*count = boxes.n;
	l = NULL;
fail:
	free(l);
	nn_aug_boxes_finish(&boxes);
	nn_image_destroy(&img);
	return rc;
}
