// The official validation dataloader: batch plan, per-image load/resize/letterbox, label round trip.
#include "valdata.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "log.h"

struct ar_key {
	double ar;
	size_t i;
};

static int cmp_ar(const void *pa, const void *pb)
{
	const struct ar_key *a = pa, *b = pb;
	if (a->ar != b->ar)
		return a->ar < b->ar ? -1 : 1;
	return (a->i > b->i) - (a->i < b->i); // stable: equal ratios keep file order
}

int nn_val_plan_create(const struct nn_dataset_split *sp, uint32_t imgsz, uint32_t batch,
		       uint32_t stride, double pad, struct nn_val_plan **out)
{
	*out = NULL;
	if (!sp->count || !batch || !stride || !imgsz) {
		LOGE("val plan: %zu images, batch %u, stride %u, imgsz %u", sp->count, batch, stride,
		     imgsz);
		return -EINVAL;
	}
	size_t n = sp->count;
	uint32_t nb = (uint32_t)((n + batch - 1) / batch);
	struct nn_val_plan *p = calloc(1, sizeof(*p));
	struct ar_key *keys = malloc(n * sizeof(*keys));
	if (!p || !keys || !(p->order = malloc(n * sizeof(size_t))) ||
	    !(p->shape_h = malloc(nb * sizeof(uint32_t))) ||
	    !(p->shape_w = malloc(nb * sizeof(uint32_t)))) {
		LOGE("val plan: out of memory (%zu images)", n);
		free(keys);
		nn_val_plan_destroy(&p);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		keys[i] = (struct ar_key){(double)sp->images[i].height / sp->images[i].width, i};
	qsort(keys, n, sizeof(*keys), cmp_ar);
	for (size_t i = 0; i < n; i++)
		p->order[i] = keys[i].i;
	p->n = n;
	p->batch = batch;
	p->nbatches = nb;
	for (uint32_t b = 0; b < nb; b++) {
		size_t lo = (size_t)b * batch, hi = lo + batch < n ? lo + batch : n;
		double mini = keys[lo].ar, maxi = keys[hi - 1].ar; // sorted: ends of the range
		double s[2] = {1, 1};				   // (h, w) factors
		if (maxi < 1)
			s[0] = maxi;
		else if (mini > 1)
			s[1] = 1 / mini;
		p->shape_h[b] = (uint32_t)ceil(s[0] * imgsz / stride + pad) * stride;
		p->shape_w[b] = (uint32_t)ceil(s[1] * imgsz / stride + pad) * stride;
	}
	free(keys);
	*out = p;
	return 0;
}

void nn_val_plan_destroy(struct nn_val_plan **p)
{
	if (!p || !*p)
		return;
	free((*p)->order);
	free((*p)->shape_h);
	free((*p)->shape_w);
	free(*p);
	*p = NULL;
}

void nn_val_resized_size(uint32_t w0, uint32_t h0, uint32_t imgsz, uint32_t *w, uint32_t *h)
{
	double r = (double)imgsz / (w0 > h0 ? w0 : h0);
	*w = w0, *h = h0;
	if (r != 1) {
		double fw = floor(w0 * r), fh = floor(h0 * r); // int() truncation
		*w = fw < 1 ? 1 : (uint32_t)fw;
		*h = fh < 1 ? 1 : (uint32_t)fh;
	}
}

int nn_val_load_image(const char *path, uint32_t imgsz, uint32_t shape_h, uint32_t shape_w,
		      uint8_t *dst, struct nn_val_geom *g)
{
	struct nn_image *img = NULL, *rs = NULL;
	memset(g, 0, sizeof(*g));
	int rc = nn_image_load(path, &img);
	if (rc)
		return rc;
	g->w0 = img->w;
	g->h0 = img->h;
	nn_val_resized_size(img->w, img->h, imgsz, &g->w, &g->h);
	const struct nn_image *use = img;
	if (g->w != img->w || g->h != img->h) {
		if ((rc = nn_image_create(g->w, g->h, img->c, &rs)))
			goto fail;
		// INTER_AREA when shrinking (validation), INTER_LINEAR when enlarging.
		if (g->w < img->w)
			rc = nn_resize_area_u8(img->data, img->w, img->h, img->c, rs->data, g->w, g->h);
		else
			rc = nn_resize_linear_u8(img->data, img->w, img->h, img->c, rs->data, g->w,
						 g->h);
		if (rc)
			goto fail;
		use = rs;
	}
	struct nn_letterbox_params lp = {.new_w = shape_w, .new_h = shape_h, .scaleup = false,
					 .stride = 32, .color = 114};
	if (!(rc = nn_letterbox_plan(use->w, use->h, &lp, &g->lb)) &&
	    (g->lb.out_w != shape_w || g->lb.out_h != shape_h)) {
		LOGE("val: %s: letterbox gave %ux%u, batch shape is %ux%u", path, g->lb.out_w,
		     g->lb.out_h, shape_w, shape_h);
		rc = -EINVAL;
	}
	if (!rc)
		rc = nn_letterbox_chw(use, &g->lb, lp.color, dst);
fail:
	nn_image_destroy(&rs);
	nn_image_destroy(&img);
	return rc;
}

// xywhn -> letterbox xyxy in batch-input pixels, clipped like xyxy2xywhn(clip=True, eps=1e-3).
static void letterbox_xyxy(const struct nn_label *l, const struct nn_val_geom *g, float b[4])
{
	const struct nn_letterbox *lb = &g->lb;
	float sw = (float)(lb->ratio_x * g->w), sh = (float)(lb->ratio_y * g->h);
	float px = (float)lb->pad_x, py = (float)lb->pad_y;
	float cw = (float)(lb->out_w - 1e-3), ch = (float)(lb->out_h - 1e-3);
	float hw = l->w / 2, hh = l->h / 2;
	b[0] = sw * (l->cx - hw) + px, b[1] = sh * (l->cy - hh) + py;
	b[2] = sw * (l->cx + hw) + px, b[3] = sh * (l->cy + hh) + py;
	for (int k = 0; k < 4; k++) {
		float hi = k % 2 ? ch : cw;
		b[k] = b[k] < 0 ? 0 : b[k] > hi ? hi : b[k];
	}
}

void nn_val_labels_to_targets(const struct nn_label *labels, size_t n, const struct nn_val_geom *g, uint32_t image,
			      float *out)
{
	float W = (float)g->lb.out_w, H = (float)g->lb.out_h;
	for (size_t i = 0; i < n; i++) {
		float b[4];
		letterbox_xyxy(&labels[i], g, b);
		float *o = out + 6 * i;
		o[0] = (float)image, o[1] = (float)labels[i].cls;
		o[2] = (b[0] + b[2]) / 2 / W, o[3] = (b[1] + b[3]) / 2 / H;
		o[4] = (b[2] - b[0]) / W, o[5] = (b[3] - b[1]) / H;
	}
}

void nn_val_labels_to_gt(const struct nn_label *labels, size_t n, const struct nn_val_geom *g,
			 struct nn_gt *out)
{
	// Dataset side (numpy float32): xywhn2xyxy with w = ratio * w, pads as floats.
	float W = (float)g->lb.out_w, H = (float)g->lb.out_h;
	for (size_t i = 0; i < n; i++) {
		const struct nn_label *l = &labels[i];
		float b[4];
		letterbox_xyxy(l, g, b);
		// xyxy2xywhn by the letterboxed size, then val.py: times (W, H) and xywh2xyxy.
		float cx = (b[0] + b[2]) / 2 / W, cy = (b[1] + b[3]) / 2 / H;
		float w = (b[2] - b[0]) / W, h = (b[3] - b[1]) / H;
		cx *= W, cy *= H, w *= W, h *= H;
		struct nn_det d = {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, 0, l->cls};
		nn_val_scale_dets(g, &d, 1);
		out[i] = (struct nn_gt){l->cls, d.x1, d.y1, d.x2, d.y2};
	}
}

void nn_val_scale_dets(const struct nn_val_geom *g, struct nn_det *d, uint32_t n)
{
	nn_scale_boxes_ratio_pad((double)g->h / g->h0, g->lb.pad_x, g->lb.pad_y, g->w0, g->h0, d, n);
}
