// Sample composition as the official LoadImagesAndLabels: long-side image loading, mosaic-4,
// the letterbox path, and __getitem__'s order of augmentations.
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "letterbox.h"
#include "log.h"

int nn_aug_load_image(const char *path, uint32_t imgsz, struct nn_image **out)
{
	struct nn_image *img = NULL, *res = NULL;
	int rc = nn_image_load(path, &img);
	if (rc)
		return rc;
	uint32_t w0 = img->w, h0 = img->h;
	double r = (double)imgsz / (double)(w0 > h0 ? w0 : h0);
	if (r == 1.0) {
		*out = img;
		return 0;
	}
	uint32_t w = (uint32_t)(w0 * r), h = (uint32_t)(h0 * r); // int() truncation as official
	w = w ? w : 1;
	h = h ? h : 1;
	rc = nn_image_create(w, h, img->c, &res);
	if (rc)
		goto fail;
	rc = nn_resize_linear_u8(img->data, w0, h0, img->c, res->data, w, h);
	if (rc)
		goto fail;
	nn_image_destroy(&img);
	*out = res;
	return 0;
fail:
	LOGE("augment: %s: resize %ux%u -> %ux%u failed", path, w0, h0, w, h);
	nn_image_destroy(&img);
	nn_image_destroy(&res);
	return rc;
}

int nn_aug_source_image(const struct nn_aug_source *src, size_t i, const struct nn_image **img,
			struct nn_image **owned)
{
	*owned = NULL;
	if (i >= src->split->count) {
		LOGE("augment: image index %zu of %zu", i, src->split->count);
		return -EINVAL;
	}
	if (src->cache && src->cache[i]) {
		*img = src->cache[i];
		return 0;
	}
	int rc = nn_aug_load_image(src->split->images[i].path, src->imgsz, owned);
	*img = *owned;
	return rc;
}

// Labels of image i (normalised cx cy w h) to pixel corners for a w x h placement at (padw, padh)
// (official xywhn2xyxy).
static int push_labels(const struct nn_dataset_image *im, double w, double h, double padw,
		       double padh, struct nn_aug_boxes *boxes)
{
	for (size_t k = 0; k < im->count; k++) {
		const struct nn_label *l = &im->labels[k];
		struct nn_aug_box b = {
			.cls = (float)l->cls,
			.x1 = (float)(w * (l->cx - l->w / 2) + padw),
			.y1 = (float)(h * (l->cy - l->h / 2) + padh),
			.x2 = (float)(w * (l->cx + l->w / 2) + padw),
			.y2 = (float)(h * (l->cy + l->h / 2) + padh),
		};
		int rc = nn_aug_boxes_push(boxes, &b);
		if (rc)
			return rc;
	}
	return 0;
}

static int imin(int a, int b)
{
	return a < b ? a : b;
}

static int imax(int a, int b)
{
	return a > b ? a : b;
}

// Copies the tile of `img` into quadrant q of the 2s x 2s canvas around (xc, yc) and pushes its
// shifted labels (official load_mosaic placement).
static int mosaic_place(struct nn_image *canvas, const struct nn_image *img,
			const struct nn_dataset_image *im, int q, int xc, int yc,
			struct nn_aug_boxes *boxes)
{
	int s2 = (int)canvas->w, w = (int)img->w, h = (int)img->h;
	int x1a, y1a, x2a, y2a, x1b, y1b, x2b, y2b;
	if (q == 0) { // top left
		x1a = imax(xc - w, 0), y1a = imax(yc - h, 0), x2a = xc, y2a = yc;
		x1b = w - (x2a - x1a), y1b = h - (y2a - y1a), x2b = w, y2b = h;
	} else if (q == 1) { // top right
		x1a = xc, y1a = imax(yc - h, 0), x2a = imin(xc + w, s2), y2a = yc;
		x1b = 0, y1b = h - (y2a - y1a), x2b = imin(w, x2a - x1a), y2b = h;
	} else if (q == 2) { // bottom left
		x1a = imax(xc - w, 0), y1a = yc, x2a = xc, y2a = imin(s2, yc + h);
		x1b = w - (x2a - x1a), y1b = 0, x2b = w, y2b = imin(y2a - y1a, h);
	} else { // bottom right
		x1a = xc, y1a = yc, x2a = imin(xc + w, s2), y2a = imin(s2, yc + h);
		x1b = 0, y1b = 0, x2b = imin(w, x2a - x1a), y2b = imin(y2a - y1a, h);
	}
	int cw = imin(x2a - x1a, x2b - x1b), ch = imin(y2a - y1a, y2b - y1b);
	size_t c = canvas->c;
	for (int y = 0; y < ch; y++)
		memcpy(canvas->data + ((size_t)(y1a + y) * s2 + x1a) * c,
		       img->data + ((size_t)(y1b + y) * w + x1b) * c, (size_t)cw * c);
	return push_labels(im, w, h, x1a - x1b, y1a - y1b, boxes);
}

static float clampf(float v, float lo, float hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

int nn_aug_mosaic4(const struct nn_aug_source *src, size_t index, const struct nn_hyp *hyp,
		   struct nn_rng *rng, struct nn_image **out, struct nn_aug_boxes *boxes)
{
	int s = (int)src->imgsz, half = s / 2; // mosaic_border = -s // 2
	struct nn_image *canvas = NULL, *owned = NULL;
	size_t first = boxes->n;
	int yc = (int)nn_rng_uniform(rng, half, 2 * s - half); // official draws y first
	int xc = (int)nn_rng_uniform(rng, half, 2 * s - half);
	size_t idx[4] = { index };
	for (int k = 1; k < 4; k++)
		idx[k] = nn_rng_below(rng, (uint32_t)src->split->count);
	for (int k = 3; k > 0; k--) { // random.shuffle: Fisher-Yates from the end
		uint32_t j = nn_rng_below(rng, (uint32_t)k + 1);
		size_t t = idx[k];
		idx[k] = idx[j];
		idx[j] = t;
	}
	int rc = nn_image_create(2 * (uint32_t)s, 2 * (uint32_t)s, 3, &canvas);
	if (rc)
		return rc;
	memset(canvas->data, 114, (size_t)canvas->w * canvas->h * 3);
	for (int q = 0; q < 4; q++) {
		const struct nn_image *img;
		rc = nn_aug_source_image(src, idx[q], &img, &owned);
		if (rc)
			goto fail;
		rc = mosaic_place(canvas, img, &src->split->images[idx[q]], q, xc, yc, boxes);
		nn_image_destroy(&owned);
		if (rc)
			goto fail;
	}
	for (size_t k = first; k < boxes->n; k++) { // clip for random_perspective
		struct nn_aug_box *b = &boxes->v[k];
		b->x1 = clampf(b->x1, 0, 2.f * s), b->x2 = clampf(b->x2, 0, 2.f * s);
		b->y1 = clampf(b->y1, 0, 2.f * s), b->y2 = clampf(b->y2, 0, 2.f * s);
	}
	// copy_paste needs polygon segments: with box labels it is a no-op, as officially.
	struct nn_aug_boxes mine = { boxes->v + first, boxes->n - first, boxes->n - first };
	rc = nn_aug_random_perspective(&canvas, -half, hyp, rng, &mine);
	if (rc)
		goto fail;
	boxes->n = first + mine.n; // kept boxes were compacted in place
	*out = canvas;
	return 0;
fail:
	nn_image_destroy(&owned);
	nn_image_destroy(&canvas);
	boxes->n = first;
	return rc;
}

int nn_aug_letterboxed(const struct nn_aug_source *src, size_t index, uint32_t out_w,
		       uint32_t out_h, bool augment, const struct nn_hyp *hyp, struct nn_rng *rng,
		       struct nn_image **out, struct nn_aug_boxes *boxes)
{
	const struct nn_image *img;
	struct nn_image *owned = NULL, *dst = NULL;
	uint8_t *tmp = NULL;
	size_t first = boxes->n;
	int rc = nn_aug_source_image(src, index, &img, &owned);
	if (rc)
		return rc;
	struct nn_letterbox lb;
	struct nn_letterbox_params lp = { .new_w = out_w, .new_h = out_h, .scaleup = augment,
					  .stride = 32, .color = 114 };
	rc = nn_letterbox_plan(img->w, img->h, &lp, &lb);
	if (rc)
		goto fail;
	rc = nn_image_create(lb.out_w, lb.out_h, 3, &dst);
	if (rc)
		goto fail;
	memset(dst->data, 114, (size_t)dst->w * dst->h * 3);
	const uint8_t *rs = img->data;
	if (lb.unpad_w != img->w || lb.unpad_h != img->h) {
		rc = -ENOMEM;
		tmp = malloc((size_t)lb.unpad_w * lb.unpad_h * 3);
		if (!tmp) {
			LOGE("augment: letterbox %s: out of memory", src->split->images[index].path);
			goto fail;
		}
		rc = nn_resize_linear_u8(img->data, img->w, img->h, 3, tmp, lb.unpad_w, lb.unpad_h);
		if (rc)
			goto fail;
		rs = tmp;
	}
	for (uint32_t y = 0; y < lb.unpad_h; y++)
		memcpy(dst->data + ((size_t)(lb.top + y) * dst->w + lb.left) * 3,
		       rs + (size_t)y * lb.unpad_w * 3, (size_t)lb.unpad_w * 3);
	// official: xywhn2xyxy(labels, ratio_w * w, ratio_h * h, padw = dw / 2, padh = dh / 2)
	rc = push_labels(&src->split->images[index], lb.ratio_x * img->w, lb.ratio_y * img->h,
			 lb.pad_x, lb.pad_y, boxes);
	if (rc)
		goto fail;
	if (augment) {
		struct nn_aug_boxes mine = { boxes->v + first, boxes->n - first, boxes->n - first };
		rc = nn_aug_random_perspective(&dst, 0, hyp, rng, &mine);
		if (rc)
			goto fail;
		boxes->n = first + mine.n;
	}
	free(tmp);
	nn_image_destroy(&owned);
	*out = dst;
	return 0;
fail:
	free(tmp);
	nn_image_destroy(&owned);
	nn_image_destroy(&dst);
	boxes->n = first;
	return rc;
}
