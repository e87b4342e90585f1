// Training augmentation: boxes stay on their objects through mosaic / perspective / flips
// (synthetic images with filled rectangles of class-coded colours), the warp matches a float
// bilinear reference, OpenCV HSV conversions and the HSV / flip / mixup effects, hyp YAML reading.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "check.h"

#ifndef VKYOLO_SOURCE_ROOT
#define VKYOLO_SOURCE_ROOT "."
#endif


enum { S = 320, NIMG = 6, NRECT = 3, NCLS = 8 };
static const uint8_t palette[NCLS][3] = { { 255, 0, 0 },   { 0, 255, 0 },   { 0, 0, 255 },
					  { 255, 255, 0 }, { 255, 0, 255 }, { 0, 255, 255 },
					  { 255, 255, 255 }, { 255, 128, 0 } };
static const uint8_t bg[3] = { 60, 60, 60 };

struct synth {
	struct nn_dataset_split split;
	struct nn_dataset_image images[NIMG];
	struct nn_label labels[NIMG][NRECT];
	struct nn_image *cache[NIMG];
	char names[NIMG][32];
};

// Six images at long side S with three non-overlapping rectangles each (class = colour index).
static int synth_make(struct synth *sy)
{
	static const uint32_t sizes[NIMG][2] = { { 320, 240 }, { 240, 320 }, { 320, 320 },
						 { 320, 180 }, { 200, 320 }, { 320, 280 } };
	struct nn_rng rng;
	nn_rng_seed(&rng, 7);
	memset(sy, 0, sizeof(*sy));
	for (int i = 0; i < NIMG; i++) {
		uint32_t w = sizes[i][0], h = sizes[i][1];
		if (nn_image_create(w, h, 3, &sy->cache[i]))
			return 1;
		struct nn_image *im = sy->cache[i];
		for (size_t p = 0; p < (size_t)w * h; p++)
			memcpy(im->data + 3 * p, bg, 3);
		int rx[NRECT][4];
		for (int r = 0; r < NRECT; r++) {
			int x1, y1, x2, y2, ok;
			do { // non-overlapping with a 6 px gap so edges are unambiguous
				int rw = 30 + (int)nn_rng_below(&rng, 70), rh = 30 + (int)nn_rng_below(&rng, 70);
				x1 = (int)nn_rng_below(&rng, w - rw), y1 = (int)nn_rng_below(&rng, h - rh);
				x2 = x1 + rw, y2 = y1 + rh;
				ok = 1;
				for (int q = 0; q < r; q++)
					if (x1 < rx[q][2] + 6 && rx[q][0] < x2 + 6 && y1 < rx[q][3] + 6 &&
					    rx[q][1] < y2 + 6)
						ok = 0;
			} while (!ok);
			rx[r][0] = x1, rx[r][1] = y1, rx[r][2] = x2, rx[r][3] = y2;
			int cls = (i + 3 * r) % NCLS; // distinct within an image
			for (int y = y1; y < y2; y++)
				for (int x = x1; x < x2; x++)
					memcpy(im->data + 3 * ((size_t)y * w + x), palette[cls], 3);
			sy->labels[i][r] = (struct nn_label){ cls, (x1 + x2) / 2.f / w, (y1 + y2) / 2.f / h,
							      (float)(x2 - x1) / w, (float)(y2 - y1) / h };
		}
		snprintf(sy->names[i], sizeof(sy->names[i]), "synthetic-%d", i);
		sy->images[i] = (struct nn_dataset_image){ sy->names[i], (int)w, (int)h, sy->labels[i],
							   NRECT };
	}
	sy->split.images = sy->images;
	sy->split.count = NIMG;
	return 0;
}

static void synth_free(struct synth *sy)
{
	for (int i = 0; i < NIMG; i++)
		nn_image_destroy(&sy->cache[i]);
}

static bool is_colour(const uint8_t *chw, size_t plane, size_t i, int cls)
{
	for (int k = 0; k < 3; k++)
		if (abs((int)chw[k * plane + i] - palette[cls][k]) > 48)
			return false;
	return true;
}

// Fraction of pixels of colour cls in [x1, x2) x [y1, y2) (clipped), or -1 when empty.
static double frac(const uint8_t *chw, int w, int h, int cls, int x1, int y1, int x2, int y2)
{
	x1 = x1 < 0 ? 0 : x1, y1 = y1 < 0 ? 0 : y1, x2 = x2 > w ? w : x2, y2 = y2 > h ? h : y2;
	size_t n = 0, hit = 0;
	for (int y = y1; y < y2; y++)
		for (int x = x1; x < x2; x++, n++)
			hit += is_colour(chw, (size_t)w * h, (size_t)y * w + x, cls);
	return n ? (double)hit / n : -1;
}

struct geo_stats {
	size_t boxes, checked, small, bad_inside, bad_edge_in, bad_edge_out, sides;
	double min_inside;
};

// For every label: interior (2 px in) mostly its colour; 2 px inside each side mostly its colour
// (skipped when rotated), 3 px outside each side (not at the image border) mostly not.
static void geo_check(const uint8_t *chw, int w, int h, const struct nn_label *l, size_t n,
		      double inside_min, bool edges_in, struct geo_stats *st)
{
	for (size_t i = 0; i < n; i++) {
		st->boxes++;
		double x1 = (l[i].cx - l[i].w / 2) * w, x2 = (l[i].cx + l[i].w / 2) * w;
		double y1 = (l[i].cy - l[i].h / 2) * h, y2 = (l[i].cy + l[i].h / 2) * h;
		if (x2 - x1 < 12 || y2 - y1 < 12) {
			st->small++;
			continue;
		}
		st->checked++;
		int X1 = (int)ceil(x1), X2 = (int)floor(x2), Y1 = (int)ceil(y1), Y2 = (int)floor(y2);
		double f = frac(chw, w, h, l[i].cls, X1 + 2, Y1 + 2, X2 - 2, Y2 - 2);
		st->min_inside = f < st->min_inside ? f : st->min_inside;
		st->bad_inside += f < inside_min;
		// side bands: {x1, y1, x2, y2} of a 1 px line inside and outside each side
		int in[4][4] = { { X1 + 2, Y1 + 3, X1 + 3, Y2 - 3 }, { X2 - 3, Y1 + 3, X2 - 2, Y2 - 3 },
				 { X1 + 3, Y1 + 2, X2 - 3, Y1 + 3 }, { X1 + 3, Y2 - 3, X2 - 3, Y2 - 2 } };
		int out[4][4] = { { X1 - 4, Y1 + 3, X1 - 3, Y2 - 3 }, { X2 + 3, Y1 + 3, X2 + 4, Y2 - 3 },
				  { X1 + 3, Y1 - 4, X2 - 3, Y1 - 3 }, { X1 + 3, Y2 + 3, X2 - 3, Y2 + 4 } };
		bool at_border[4] = { x1 < 5, x2 > w - 5, y1 < 5, y2 > h - 5 };
		for (int k = 0; k < 4; k++) {
			if (at_border[k])
				continue;
			st->sides++;
			if (edges_in && frac(chw, w, h, l[i].cls, in[k][0], in[k][1], in[k][2], in[k][3]) < 0.8)
				st->bad_edge_in++;
			if (frac(chw, w, h, l[i].cls, out[k][0], out[k][1], out[k][2], out[k][3]) > 0.2)
				st->bad_edge_out++;
		}
	}
}

// Runs nsamples full samples and checks the boxes. Returns 0/1.
static int run_geometry(const char *what, struct synth *sy, const struct nn_hyp *hyp, bool mosaic,
			int nsamples, double inside_min, bool edges_in)
{
	struct nn_aug_source src = { &sy->split, S, sy->cache };
	struct nn_aug_sample_params p = { .augment = true, .mosaic = mosaic };
	uint8_t *chw = malloc(3 * S * S);
	struct geo_stats st = { .min_inside = 1 };
	size_t flips = 0;
	for (int i = 0; i < nsamples; i++) {
		struct nn_rng rng;
		nn_rng_seed(&rng, nn_rng_mix(11, i, 0));
		struct nn_label *l = NULL;
		size_t n = 0;
		int rc = nn_aug_sample(&src, (size_t)i % NIMG, &p, hyp, &rng, chw, &l, &n);
		CHECKF(rc == 0, "%s: sample %d rc %d", what, i, rc);
		for (size_t k = 0; k < n; k++)
			CHECKF(l[k].cx >= 0 && l[k].cx <= 1 && l[k].w > 0 && l[k].w <= 1 && l[k].h > 0 &&
				      l[k].cls >= 0 && l[k].cls < NCLS,
			      "%s: sample %d label %zu out of range", what, i, k);
		geo_check(chw, S, S, l, n, inside_min, edges_in, &st);
		free(l);
		(void)flips;
	}
	free(chw);
	printf("%s: %d samples, %zu boxes (%zu checked, %zu small), min interior fraction %.3f, "
	       "bad interiors %zu, bad inner edges %zu / outer edges %zu of %zu sides\n",
	       what, nsamples, st.boxes, st.checked, st.small, st.min_inside, st.bad_inside,
	       st.bad_edge_in, st.bad_edge_out, st.sides);
	// Rationale: a correct transform puts every checked box on its rectangle; the only allowed
	// misses are sides where another rectangle of the same colour (the same image drawn twice in
	// one mosaic) lies within 3 px, which is rare: <= 2% of sides.
	CHECKF(st.checked >= (size_t)nsamples, "%s: only %zu boxes checked", what, st.checked);
	CHECKF(st.bad_inside == 0, "%s: %zu boxes with interior fraction < %.2f (min %.3f)", what,
	      st.bad_inside, inside_min, st.min_inside);
	CHECKF(st.bad_edge_in + st.bad_edge_out <= st.sides / 50, "%s: %zu + %zu bad sides of %zu",
	      what, st.bad_edge_in, st.bad_edge_out, st.sides);
	return 0;
}

static int check_geometry(void)
{
	struct synth sy;
	CHECKF(synth_make(&sy) == 0, "synth: out of memory");
	struct nn_hyp hyp;
	nn_hyp_defaults(&hyp);
	hyp.hsv_h = hyp.hsv_s = hyp.hsv_v = 0; // keep colours exact
	hyp.mixup = 0;
	int rc = run_geometry("mosaic+perspective+fliplr", &sy, &hyp, true, 60, 0.97, true);
	if (!rc)
		rc = run_geometry("letterbox+perspective+fliplr", &sy, &hyp, false, 30, 0.97, true);
	hyp.flipud = 0.5;
	hyp.degrees = 15;
	hyp.shear = 5;
	// A rotated rectangle fills >= 1 / (cos + sin)^2 ~ 0.6 of its enclosing box at 15 deg (less
	// with shear): interior threshold 0.45, inner edges not checked.
	if (!rc)
		rc = run_geometry("rotate+shear+flipud", &sy, &hyp, true, 40, 0.45, false);
	hyp.degrees = hyp.shear = 0;
	hyp.perspective = 0.0005;
	if (!rc)
		rc = run_geometry("perspective", &sy, &hyp, true, 30, 0.6, false);
	synth_free(&sy);
	return rc;
}

// Mixup with a forced mosaic and HSV off: pixels are the truncated blend of two mosaics, labels
// the concatenation (checked through the per-sample box count against the two mosaics alone).
static int check_mixup(void)
{
	struct nn_image *a = NULL, *b = NULL;
	CHECKF(!nn_image_create(5, 4, 3, &a) && !nn_image_create(5, 4, 3, &b), "mixup: alloc");
	for (size_t i = 0; i < 60; i++)
		a->data[i] = (uint8_t)(200 + i % 50), b->data[i] = (uint8_t)(3 * i);
	uint8_t want[60];
	double r = 0.53125;
	for (size_t i = 0; i < 60; i++)
		want[i] = (uint8_t)(a->data[i] * r + b->data[i] * (1 - r));
	CHECKF(nn_aug_mixup(a, b, r) == 0, "mixup: rc");
	for (size_t i = 0; i < 60; i++)
		CHECKF(a->data[i] == want[i], "mixup: byte %zu got %u want %u", i, a->data[i], want[i]);
	nn_image_destroy(&a);
	nn_image_destroy(&b);
	// Beta(32, 32): mean 0.5, sd sqrt(32*32 / (64^2 * 65)) = 0.0620. 4000 draws: the mean's sd is
	// 0.001, so |mean - 0.5| < 0.005 and |sd - 0.062| < 0.004 are > 4 sigma.
	struct nn_rng rng;
	nn_rng_seed(&rng, 3);
	double s1 = 0, s2 = 0;
	for (int i = 0; i < 4000; i++) {
		double x = nn_rng_beta(&rng, 32, 32);
		s1 += x, s2 += x * x;
	}
	double mean = s1 / 4000, sd = sqrt(s2 / 4000 - mean * mean);
	printf("beta(32,32): mean %.4f sd %.4f (want 0.5, 0.0620)\n", mean, sd);
	CHECKF(fabs(mean - 0.5) < 0.005 && fabs(sd - 0.0620) < 0.004, "beta: mean %.4f sd %.4f", mean, sd);
	// Full sample with mixup forced: more boxes than the same sample without it (two mosaics).
	struct synth sy;
	CHECKF(synth_make(&sy) == 0, "synth");
	struct nn_hyp hyp;
	nn_hyp_defaults(&hyp);
	struct nn_aug_source src = { &sy.split, S, sy.cache };
	struct nn_aug_sample_params p = { .augment = true, .mosaic = true };
	uint8_t *chw = malloc(3 * S * S);
	size_t with = 0, without = 0;
	for (int i = 0; i < 20; i++) {
		struct nn_label *l = NULL;
		size_t n;
		hyp.mixup = 1;
		nn_rng_seed(&rng, nn_rng_mix(5, i, 0));
		CHECKF(nn_aug_sample(&src, i % NIMG, &p, &hyp, &rng, chw, &l, &n) == 0, "mixup sample");
		free(l);
		with += n;
		hyp.mixup = 0;
		nn_rng_seed(&rng, nn_rng_mix(5, i, 0));
		CHECKF(nn_aug_sample(&src, i % NIMG, &p, &hyp, &rng, chw, &l, &n) == 0, "sample");
		free(l);
		without += n;
	}
	free(chw);
	synth_free(&sy);
	printf("mixup: %zu boxes over 20 samples with mixup, %zu without\n", with, without);
	CHECKF(with > without * 3 / 2, "mixup: %zu boxes with, %zu without", with, without);
	return 0;
}

static double mean_channel_stat(const struct nn_image *im, int which)
{
	double s = 0;
	for (size_t i = 0; i < (size_t)im->w * im->h; i++) {
		uint8_t hsv[3];
		nn_rgb_to_hsv_u8(im->data + 3 * i, hsv);
		s += hsv[which];
	}
	return s / ((double)im->w * im->h);
}

static int check_hsv(void)
{
	// OpenCV reference values (cv2.cvtColor on single pixels, 8-bit, hue range 180).
	static const uint8_t cases[][6] = {
		{ 255, 0, 0, 0, 255, 255 },     { 0, 255, 0, 60, 255, 255 },
		{ 0, 0, 255, 120, 255, 255 },   { 128, 128, 128, 0, 0, 128 },
		{ 255, 128, 0, 15, 255, 255 },  { 10, 20, 30, 105, 170, 30 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t hsv[3];
		nn_rgb_to_hsv_u8(cases[i], hsv);
		CHECKF(!memcmp(hsv, cases[i] + 3, 3), "rgb2hsv case %zu: got %u %u %u want %u %u %u", i,
		      hsv[0], hsv[1], hsv[2], cases[i][3], cases[i][4], cases[i][5]);
	}
	uint8_t rgb[3];
	nn_hsv_to_rgb_u8((const uint8_t[]){ 60, 255, 255 }, rgb);
	CHECKF(rgb[0] == 0 && rgb[1] == 255 && rgb[2] == 0, "hsv2rgb green: %u %u %u", rgb[0], rgb[1], rgb[2]);
	nn_hsv_to_rgb_u8((const uint8_t[]){ 15, 255, 255 }, rgb);
	CHECKF(rgb[0] == 255 && rgb[1] == 128 && rgb[2] == 0, "hsv2rgb orange: %u %u %u", rgb[0], rgb[1], rgb[2]);

	struct nn_image *im = NULL, *orig = NULL;
	CHECKF(!nn_image_create(64, 64, 3, &im) && !nn_image_create(64, 64, 3, &orig), "hsv alloc");
	struct nn_rng rng;
	nn_rng_seed(&rng, 9);
	for (size_t i = 0; i < 64 * 64 * 3; i++)
		orig->data[i] = (uint8_t)(30 + nn_rng_below(&rng, 180));
	// Identity gains: only the 8-bit HSV round trip error remains (OpenCV loses < 1 level on
	// average, a few levels for dark saturated colours).
	memcpy(im->data, orig->data, 64 * 64 * 3);
	nn_aug_hsv_apply(im, (const double[]){ 1, 1, 1 });
	double mad = 0;
	int maxd = 0;
	for (size_t i = 0; i < 64 * 64 * 3; i++) {
		int d = abs((int)im->data[i] - orig->data[i]);
		mad += d, maxd = d > maxd ? d : maxd;
	}
	mad /= 64 * 64 * 3;
	double v0 = mean_channel_stat(orig, 2), s0 = mean_channel_stat(orig, 1);
	memcpy(im->data, orig->data, 64 * 64 * 3);
	nn_aug_hsv_apply(im, (const double[]){ 1, 1, 1.3 });
	double v1 = mean_channel_stat(im, 2);
	memcpy(im->data, orig->data, 64 * 64 * 3);
	nn_aug_hsv_apply(im, (const double[]){ 1, 0.5, 1 });
	double s1 = mean_channel_stat(im, 1), v2 = mean_channel_stat(im, 2);
	// hue: per pixel, the re-measured hue is the LUT value trunc((h * 1.015) mod 180) within the
	// round-trip error (2 levels, circular) for well-saturated, bright pixels
	memcpy(im->data, orig->data, 64 * 64 * 3);
	nn_aug_hsv_apply(im, (const double[]){ 1.015, 1, 1 });
	int hworst = 0;
	size_t hn = 0;
	for (size_t i = 0; i < 64 * 64; i++) {
		uint8_t a[3], b[3];
		nn_rgb_to_hsv_u8(orig->data + 3 * i, a);
		nn_rgb_to_hsv_u8(im->data + 3 * i, b);
		if (a[1] < 100 || a[2] < 100)
			continue;
		int want = (int)fmod(a[0] * 1.015, 180.0), d = abs(b[0] - want);
		d = d > 90 ? 180 - d : d;
		hworst = d > hworst ? d : hworst;
		hn++;
	}
	printf("hsv: identity round trip mean |d| %.3f max %d; V x1.3: %.1f -> %.1f; S x0.5: %.1f -> "
	       "%.1f (V %.1f); H x1.015: worst hue error %d over %zu pixels\n", mad, maxd, v0, v1, s0,
	       s1, v2, hworst, hn);
	CHECKF(mad < 1.0 && maxd <= 8, "hsv identity: mean %.3f max %d", mad, maxd);
	// V x1.3 with clipping at 255: the mean grows by 15..30%; S x0.5 halves saturation within
	// truncation (-0.5 level) and rounding of the round trip; V unchanged within 1 level.
	CHECKF(v1 > 1.15 * v0 && v1 < 1.3 * v0 + 1, "hsv V gain: %.2f -> %.2f", v0, v1);
	CHECKF(fabs(s1 - 0.5 * s0) < 2.0 && fabs(v2 - v0) < 1.0, "hsv S gain: %.2f -> %.2f", s0, s1);
	CHECKF(hn > 500 && hworst <= 2, "hsv H gain: worst hue error %d over %zu pixels", hworst, hn);
	nn_image_destroy(&im);
	nn_image_destroy(&orig);
	return 0;
}

static int check_flip(void)
{
	struct nn_image *im = NULL, *orig = NULL;
	CHECKF(!nn_image_create(7, 5, 3, &im) && !nn_image_create(7, 5, 3, &orig), "flip alloc");
	for (size_t i = 0; i < 7 * 5 * 3; i++)
		orig->data[i] = im->data[i] = (uint8_t)(i * 37 + 11);
	nn_aug_flip_lr(im);
	for (uint32_t y = 0; y < 5; y++)
		for (uint32_t x = 0; x < 7; x++)
			CHECKF(!memcmp(im->data + 3 * (y * 7 + x), orig->data + 3 * (y * 7 + 6 - x), 3),
			      "fliplr: pixel (%u, %u)", x, y);
	memcpy(im->data, orig->data, 7 * 5 * 3);
	nn_aug_flip_ud(im);
	for (uint32_t y = 0; y < 5; y++)
		CHECKF(!memcmp(im->data + 3 * y * 7, orig->data + 3 * (4 - y) * 7, 21), "flipud: row %u", y);
	nn_image_destroy(&im);
	nn_image_destroy(&orig);
	return 0;
}

// Float bilinear reference with constant border for each tap.
static double ref_px(const struct nn_image *s, double X, double Y, int k)
{
	int x0 = (int)floor(X), y0 = (int)floor(Y);
	double ax = X - x0, ay = Y - y0, v = 0;
	for (int dy = 0; dy < 2; dy++)
		for (int dx = 0; dx < 2; dx++) {
			int x = x0 + dx, y = y0 + dy;
			double t = (x >= 0 && y >= 0 && x < (int)s->w && y < (int)s->h)
					   ? s->data[3 * ((size_t)y * s->w + x) + k]
					   : 114;
			v += t * (dx ? ax : 1 - ax) * (dy ? ay : 1 - ay);
		}
	return v;
}

static int check_warp(void)
{
	struct nn_image *src = NULL, *dst = NULL;
	CHECKF(!nn_image_create(97, 83, 3, &src) && !nn_image_create(90, 70, 3, &dst), "warp alloc");
	// smooth content (gradient <= 3 levels / px) so the 1/32 px coordinate grid costs < 0.1 level
	for (uint32_t y = 0; y < 83; y++)
		for (uint32_t x = 0; x < 97; x++)
			for (int k = 0; k < 3; k++)
				src->data[3 * (y * 97 + x) + k] =
					(uint8_t)(128 + 100 * sin(0.03 * x * (k + 1) + 0.02 * y));
	// integer translation: exact copy, 114 outside
	double t[9] = { 1, 0, 5, 0, 1, -3, 0, 0, 1 };
	CHECKF(nn_aug_warp(src, t, false, 114, dst) == 0, "warp translate");
	for (uint32_t y = 0; y < 70; y++)
		for (uint32_t x = 0; x < 90; x++) {
			int sx = (int)x - 5, sy = (int)y + 3;
			for (int k = 0; k < 3; k++) {
				int want = sx >= 0 && sy < 83 ? src->data[3 * (sy * 97 + sx) + k] : 114;
				CHECKF(dst->data[3 * (y * 90 + x) + k] == want, "translate (%u,%u,%d): %u vs %d",
				      x, y, k, dst->data[3 * (y * 90 + x) + k], want);
			}
		}
	// rotation 20 deg, scale 1.3, shift: float reference; |got - want| <= 1 (15-bit weights and
	// the final rounding give <= 0.5, the 1/32 px grid < 0.1 on this smooth image)
	for (int persp = 0; persp < 2; persp++) {
		double a = 20 * M_PI / 180, s = 1.3;
		double m[9] = { s * cos(a), s * sin(a), -20, -s * sin(a), s * cos(a), 30, 0, 0, 1 };
		if (persp)
			m[6] = 0.001, m[7] = -0.0007;
		CHECKF(nn_aug_warp(src, m, persp, 114, dst) == 0, "warp affine");
		double inv[9];
		{ // general inverse for the reference (independent of the warp's own inversion)
			double c0 = m[4] * m[8] - m[5] * m[7], c1 = m[5] * m[6] - m[3] * m[8];
			double c2 = m[3] * m[7] - m[4] * m[6], det = m[0] * c0 + m[1] * c1 + m[2] * c2;
			double r[9] = { c0, m[2] * m[7] - m[1] * m[8], m[1] * m[5] - m[2] * m[4],
					c1, m[0] * m[8] - m[2] * m[6], m[2] * m[3] - m[0] * m[5],
					c2, m[1] * m[6] - m[0] * m[7], m[0] * m[4] - m[1] * m[3] };
			for (int i = 0; i < 9; i++)
				inv[i] = r[i] / det;
		}
		double worst = 0;
		size_t wi = 0;
		for (uint32_t y = 0; y < 70; y++)
			for (uint32_t x = 0; x < 90; x++) {
				double Z = inv[6] * x + inv[7] * y + inv[8];
				double X = (inv[0] * x + inv[1] * y + inv[2]) / Z;
				double Y = (inv[3] * x + inv[4] * y + inv[5]) / Z;
				// pixels whose 2x2 support straddles the border mix 114 and content on the
				// quantised grid: compare only fully-inside or fully-outside samples
				bool in = X >= 0 && Y >= 0 && X <= 95 && Y <= 81;
				bool out = X < -1.1 || Y < -1.1 || X > 97.1 || Y > 83.1;
				if (!in && !out)
					continue;
				for (int k = 0; k < 3; k++) {
					double want = ref_px(src, X, Y, k);
					double d = fabs(dst->data[3 * (y * 90 + x) + k] - want);
					if (d > worst)
						worst = d, wi = 3 * (y * 90 + x) + k;
				}
			}
		printf("warp %s vs float bilinear: max |d| %.3f at %zu\n", persp ? "perspective" : "affine",
		       worst, wi);
		CHECKF(worst <= 1.0, "warp %d: max |d| %.3f at %zu", persp, worst, wi);
	}
	nn_image_destroy(&src);
	nn_image_destroy(&dst);

	// boxes: scale 2 + shift; tiny (w 1 px after), thin (aspect > 100) and mostly clipped boxes go
	struct nn_aug_boxes b = { 0 };
	struct nn_aug_box in[] = { { 1, 10, 10, 20, 30 }, { 2, 50, 50, 50.7f, 60 },
				   { 3, 0, 0, 200, 1.5f },  { 4, 190, 10, 230, 30 },
				   { 5, 195, 10, 235, 30 } };
	for (size_t i = 0; i < 5; i++)
		CHECKF(nn_aug_boxes_push(&b, &in[i]) == 0, "push");
	double m[9] = { 2, 0, 4, 0, 2, -6, 0, 0, 1 };
	nn_aug_boxes_warp(&b, m, false, 400, 300, 2.0);
	// box 4: x 384..464 clipped to 400: 16 / 80 = 0.2 of the area kept (> 0.1); box 5: 394..474
	// -> 6 / 80 = 0.075 (dropped)
	CHECKF(b.n == 2 && b.v[0].cls == 1 && b.v[1].cls == 4, "boxes kept %zu", b.n);
	CHECKF(b.v[0].x1 == 24 && b.v[0].y1 == 14 && b.v[0].x2 == 44 && b.v[0].y2 == 54 &&
		      b.v[1].x1 == 384 && b.v[1].x2 == 400,
	      "box coords %g %g %g %g / %g %g", b.v[0].x1, b.v[0].y1, b.v[0].x2, b.v[0].y2, b.v[1].x1,
	      b.v[1].x2);
	nn_aug_boxes_finish(&b);
	return 0;
}

static int check_albumentations(void)
{
	struct nn_image *im = NULL;
	CHECKF(!nn_image_create(5, 4, 3, &im), "albu alloc");
	// box blur 3x3 of a spike of 90 at (0, 0): REFLECT_101 borders count it once in every window
	// that reaches it, so pixels (0..1, 0..1) are 10, the rest 0
	im->data[0] = 90;
	CHECKF(nn_aug_blur(im, 3) == 0, "blur");
	for (uint32_t y = 0; y < 4; y++)
		for (uint32_t x = 0; x < 5; x++) {
			int want = x <= 1 && y <= 1 ? 10 : 0, got = im->data[3 * (y * 5 + x)];
			CHECKF(got == want && im->data[3 * (y * 5 + x) + 1] == 0, "blur (%u,%u): %d want %d",
			       x, y, got, want);
		}
	// median 3x3: the spikes vanish; a 3x3 ramp 1..9 has median 5 at its centre
	memset(im->data, 0, 60);
	im->data[3 * 7] = 200;
	for (int i = 0; i < 9; i++)
		im->data[3 * ((1 + i / 3) * 5 + 2 + i % 3) + 1] = (uint8_t)(1 + i);
	CHECKF(nn_aug_median(im, 3) == 0, "median");
	CHECKF(im->data[3 * 7] == 0 && im->data[3 * (2 * 5 + 3) + 1] == 5, "median: %u %u",
	       im->data[3 * 7], im->data[3 * (2 * 5 + 3) + 1]);
	// ToGray on the official BGR bytes: (1868 R + 9617 G + 4899 B + 2^13) >> 14 in our RGB order
	im->data[0] = 10, im->data[1] = 20, im->data[2] = 30;
	nn_aug_to_gray(im);
	CHECKF(im->data[0] == 22 && im->data[1] == 22 && im->data[2] == 22, "gray: %u", im->data[0]);
	nn_image_destroy(&im);
	return 0;
}

static int check_hyp(void)
{
	struct nn_hyp def, got;
	nn_hyp_defaults(&def);
	CHECKF(nn_hyp_load(VKYOLO_SOURCE_ROOT "/assets/hyp/hyp.scratch-high.yaml", &got) == 0, "hyp load");
	CHECKF(!memcmp(&def, &got, sizeof(def)), "hyp: the asset differs from the built-in defaults");
	CHECKF(def.mixup == 0.15 && def.scale == 0.9 && def.hsv_s == 0.7 && def.fliplr == 0.5,
	      "hyp defaults");
	return 0;
}

int main(void)
{
	int rc = check_hyp();
	if (!rc)
		rc = check_flip();
	if (!rc)
		rc = check_albumentations();
	if (!rc)
		rc = check_hsv();
	if (!rc)
		rc = check_warp();
	if (!rc)
		rc = check_mixup();
	if (!rc)
		rc = check_geometry();
	if (!rc)
		printf("ok\n");
	return rc;
}
