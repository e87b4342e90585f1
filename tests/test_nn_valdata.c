// The validation dataloader (nn/valdata.h): rectangular batch shapes of coco128 at imgsz 640,
// batch 32 (worked out independently from the JPEG headers: ratios h/w sorted, pad 0.5, stride
// 32), one image's load/resize/letterbox geometry and pixels, and the label round trip.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "image.h"
#include "valdata.h"

static const char *base(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

// coco128 (128 images), imgsz 640, batch 32. Ratios h/w sorted: batch 0 spans 0.3406..0.6672
// -> [0.6672, 1] -> h = ceil(0.6672 * 20 + 0.5) * 32 = 448, w = ceil(20.5) * 32 = 672; batch 1
// ends at 0.75 (640x480 images) -> ceil(15.5) = 16 -> 512 x 672 (the spec's 4:3 quirk); batch 2
// straddles 1 -> 672 x 672; batch 3 starts at 1.0829 -> w = ceil(20 / 1.0829 + 0.5) * 32 = 608.
static int check_coco128_plan(void)
{
	char yaml[1024];
	snprintf(yaml, sizeof(yaml), "%s/data/coco128/coco128.yaml", test_shared_dir());
	struct nn_dataset *ds = NULL;
	struct nn_dataset_split *sp = NULL;
	struct nn_val_plan *p = NULL;
	CHECK(nn_dataset_open(yaml, &ds) == 0);
	CHECK(nn_dataset_split_load(ds, NN_SPLIT_VAL, &sp) == 0);
	CHECK(sp->count == 128);
	CHECK(nn_val_plan_create(sp, 640, 32, 32, 0.5, &p) == 0);
	static const uint32_t want_h[4] = {448, 512, 672, 672}, want_w[4] = {672, 672, 672, 608};
	CHECK(p->nbatches == 4);
	for (int b = 0; b < 4; b++) {
		printf("batch %d: %ux%u (want %ux%u)\n", b, p->shape_h[b], p->shape_w[b], want_h[b],
		       want_w[b]);
		CHECK(p->shape_h[b] == want_h[b] && p->shape_w[b] == want_w[b]);
	}
	// Extremes of the ordering: the widest image first, the tallest last.
	CHECK(!strcmp(base(sp->images[p->order[0]].path), "000000000357.jpg"));
	CHECK(!strcmp(base(sp->images[p->order[127]].path), "000000000415.jpg"));
	for (size_t i = 1; i < p->n; i++) {
		const struct nn_dataset_image *a = &sp->images[p->order[i - 1]], *b = &sp->images[p->order[i]];
		CHECK((double)a->height / a->width <= (double)b->height / b->width);
	}
	// Batch 40: 128 = 3 * 40 + 8; the last 8 (ratios 1.4988..1.7827) -> w = ceil(20 / 1.4988
	// + 0.5) * 32 = 448; batch 0 (0.3406..0.7469) -> 512 x 672, batch 2 straddles 1 -> 672 x 672.
	nn_val_plan_destroy(&p);
	CHECK(nn_val_plan_create(sp, 640, 40, 32, 0.5, &p) == 0);
	CHECK(p->nbatches == 4 && p->shape_h[3] == 672 && p->shape_w[3] == 448);
	CHECK(p->shape_h[0] == 512 && p->shape_w[0] == 672 && p->shape_h[2] == 672 && p->shape_w[2] == 672);
	nn_val_plan_destroy(&p);
	nn_val_plan_destroy(&p); // &NULL is fine
	nn_dataset_split_destroy(&sp);
	nn_dataset_destroy(&ds);
	return 0;
}

// coco8 val 000000000036.jpg is 481 x 640 (w x h). At imgsz 320: r = 0.5 -> 240 x 320 (int()),
// letterboxed into a 352 x 256 batch shape (h x w): dw = 16 -> pads 8 / 8, dh = 32 -> 16 / 16.
static int check_one_image(void)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/data/coco8/images/val/000000000036.jpg", test_shared_dir());
	uint32_t H = 352, W = 256;
	uint8_t *chw = malloc((size_t)3 * H * W), *small = malloc((size_t)240 * 320 * 3);
	struct nn_image *img = NULL;
	struct nn_val_geom g;
	CHECK(chw && small);
	CHECK(nn_val_load_image(path, 320, H, W, chw, &g) == 0);
	printf("geom: %ux%u -> %ux%u, pad %g %g (left %u top %u)\n", g.w0, g.h0, g.w, g.h, g.lb.pad_x,
	       g.lb.pad_y, g.lb.left, g.lb.top);
	CHECK(g.w0 == 481 && g.h0 == 640 && g.w == 240 && g.h == 320);
	CHECK(g.lb.left == 8 && g.lb.top == 16 && g.lb.pad_x == 8 && g.lb.pad_y == 16);
	// Pixels: the INTER_AREA shrink placed at (8, 16), 114 around it.
	CHECK(nn_image_load(path, &img) == 0);
	CHECK(nn_resize_area_u8(img->data, img->w, img->h, 3, small, 240, 320) == 0);
	for (uint32_t k = 0; k < 3; k++)
		for (uint32_t y = 0; y < H; y++)
			for (uint32_t x = 0; x < W; x++) {
				bool in = x >= 8 && x < 248 && y >= 16 && y < 336;
				uint8_t want = in ? small[((size_t)(y - 16) * 240 + x - 8) * 3 + k] : 114;
				if (chw[((size_t)k * H + y) * W + x] != want) {
					printf("pixel c%u y%u x%u: got %u want %u\n", k, y, x,
					       chw[((size_t)k * H + y) * W + x], want);
					return 1;
				}
			}
	// Labels: val.py scales them to the resized image (240 x 320) and back by the single gain
	// h / h0 = 0.5, so x lands at x_n * 240 / 0.5 (not x_n * 481: the int() truncation shows),
	// y at y_n * 640, clipped to 481 x 640. The float32 round trip must land within 1e-3 px of
	// that (float32 ulp at 640 is 6e-5, a few ops).
	struct nn_label lab[3] = {{0, 0.5f, 0.5f, 0.2f, 0.4f}, {5, 0.01f, 0.99f, 0.05f, 0.05f},
				  {7, 0.3f, 0.7f, 0.6f, 0.6f}};
	struct nn_gt got[3];
	nn_val_labels_to_gt(lab, 3, &g, got);
	for (int i = 0; i < 3; i++) {
		const struct nn_label *l = &lab[i];
		double wv[4] = {(l->cx - l->w / 2.0) * 480, (l->cy - l->h / 2.0) * 640,
				(l->cx + l->w / 2.0) * 480, (l->cy + l->h / 2.0) * 640};
		for (int k = 0; k < 4; k++)
			wv[k] = fmin(fmax(wv[k], 0), k % 2 ? 640 : 481);
		float gv[4] = {got[i].x1, got[i].y1, got[i].x2, got[i].y2};
		CHECK(got[i].cls == l->cls);
		for (int k = 0; k < 4; k++)
			if (fabs(gv[k] - wv[k]) > 1e-3 + 1e-6 * fabs(wv[k])) {
				printf("label %d coord %d: got %.6f want %.6f\n", i, k, gv[k], wv[k]);
				return 1;
			}
	}
	// The loss's targets (image 3): the 240 x 320 image sits at (8, 16) of the 256 x 352 batch
	// input; xyxy there, clipped to (W - 1e-3, H - 1e-3), then xywh / (W, H).
	float t[3 * 6];
	nn_val_labels_to_targets(lab, 3, &g, 3, t);
	for (int i = 0; i < 3; i++) {
		const struct nn_label *l = &lab[i];
		double b[4] = {(l->cx - l->w / 2.0) * 240 + 8, (l->cy - l->h / 2.0) * 320 + 16,
			       (l->cx + l->w / 2.0) * 240 + 8, (l->cy + l->h / 2.0) * 320 + 16};
		for (int k = 0; k < 4; k++)
			b[k] = fmin(fmax(b[k], 0), (k % 2 ? H : W) - 1e-3);
		double want[6] = {3, l->cls, (b[0] + b[2]) / 2 / W, (b[1] + b[3]) / 2 / H, (b[2] - b[0]) / W,
				  (b[3] - b[1]) / H};
		for (int k = 0; k < 6; k++)
			if (fabs(t[6 * i + k] - want[k]) > 1e-6) {
				printf("target %d field %d: got %.7f want %.7f\n", i, k, t[6 * i + k], want[k]);
				return 1;
			}
	}
	// Predictions map back with gain h / h0 = 0.5 and the float pads.
	struct nn_det d = {8 + 10, 16 + 20, 8 + 30, 16 + 40, 0.5f, 1};
	nn_val_scale_dets(&g, &d, 1);
	CHECK(d.x1 == 20 && d.y1 == 40 && d.x2 == 60 && d.y2 == 80);
	nn_image_destroy(&img);
	free(chw);
	free(small);
	return 0;
}

// coco8 val 000000000049.jpg is 381 x 500: at imgsz 640 it is enlarged (r = 1.28, INTER_LINEAR)
// to int(487.68) x 640 and letterboxed into 672 x 512 (h x w): dw = 25 -> float pad 12.5, left
// round(12.4) = 12, right 13; dh = 32 -> 16 / 16.
static int check_enlarged(void)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/data/coco8/images/val/000000000049.jpg", test_shared_dir());
	uint32_t H = 672, W = 512;
	uint8_t *chw = malloc((size_t)3 * H * W), *big = malloc((size_t)487 * 640 * 3);
	struct nn_image *img = NULL;
	struct nn_val_geom g;
	CHECK(chw && big);
	CHECK(nn_val_load_image(path, 640, H, W, chw, &g) == 0);
	printf("geom: %ux%u -> %ux%u, pad %g %g (left %u top %u)\n", g.w0, g.h0, g.w, g.h, g.lb.pad_x,
	       g.lb.pad_y, g.lb.left, g.lb.top);
	CHECK(g.w0 == 381 && g.h0 == 500 && g.w == 487 && g.h == 640);
	CHECK(g.lb.left == 12 && g.lb.right == 13 && g.lb.top == 16 && g.lb.pad_x == 12.5);
	CHECK(nn_image_load(path, &img) == 0);
	CHECK(nn_resize_linear_u8(img->data, img->w, img->h, 3, big, 487, 640) == 0);
	for (uint32_t k = 0; k < 3; k++)
		for (uint32_t y = 16; y < 656; y++)
			for (uint32_t x = 12; x < 499; x++)
				CHECK(chw[((size_t)k * H + y) * W + x] ==
				      big[((size_t)(y - 16) * 487 + x - 12) * 3 + k]);
	CHECK(chw[0] == 114 && chw[(size_t)H * W - 1] == 114);
	nn_image_destroy(&img);
	free(chw);
	free(big);
	return 0;
}

int main(void)
{
	char probe[1024];
	snprintf(probe, sizeof(probe), "%s/data/coco128/coco128.yaml", test_shared_dir());
	FILE *f = fopen(probe, "r");
	if (!f) {
		printf("shared data not found (%s): skip\n", probe);
		return 77;
	}
	fclose(f);
	int fails = check_coco128_plan();
	fails += check_one_image();
	fails += check_enlarged();
	printf("%s\n", fails ? "FAIL" : "ok");
	return fails ? 1 : 0;
}
