// random_perspective: the official matrix composition, an OpenCV-style bilinear warp (1/32-pixel
// coordinates, 15-bit weights, constant border) and the box transform + candidate filter.
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "log.h"

int nn_aug_boxes_push(struct nn_aug_boxes *b, const struct nn_aug_box *x)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 16;
		struct nn_aug_box *v = realloc(b->v, cap * sizeof(*v));
		if (!v) {
			LOGE("augment: box list of %zu: out of memory", cap);
			return -ENOMEM;
		}
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n++] = *x;
	return 0;
}

void nn_aug_boxes_finish(struct nn_aug_boxes *b)
{
	free(b->v);
	*b = (struct nn_aug_boxes){ 0 };
}

static void mat3_mul(const double a[9], const double b[9], double out[9])
{
	double t[9];
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			t[3 * i + j] = a[3 * i] * b[j] + a[3 * i + 1] * b[3 + j] + a[3 * i + 2] * b[6 + j];
	memcpy(out, t, sizeof(t));
}

static void mat3_eye(double m[9])
{
	static const double eye[9] = { 1, 0, 0, 0, 1, 0, 0, 0, 1 };
	memcpy(m, eye, sizeof(eye));
}

void nn_aug_perspective_matrix(uint32_t w, uint32_t h, int32_t border, const struct nn_hyp *hyp,
			       struct nn_rng *rng, double m[9], double *scale)
{
	double width = (double)w + 2.0 * border, height = (double)h + 2.0 * border;
	double C[9], P[9], R[9], S[9], T[9];
	mat3_eye(C);
	C[2] = -(double)w / 2; // move the input centre to the origin
	C[5] = -(double)h / 2;
	mat3_eye(P);
	P[6] = nn_rng_uniform(rng, -hyp->perspective, hyp->perspective);
	P[7] = nn_rng_uniform(rng, -hyp->perspective, hyp->perspective);
	double a = nn_rng_uniform(rng, -hyp->degrees, hyp->degrees) * M_PI / 180.0;
	double s = nn_rng_uniform(rng, 1.0 - hyp->scale, 1.0 + hyp->scale);
	// cv2.getRotationMatrix2D(centre (0, 0), angle a, scale s): counter-clockwise for a > 0
	mat3_eye(R);
	R[0] = s * cos(a);
	R[1] = s * sin(a);
	R[3] = -s * sin(a);
	R[4] = s * cos(a);
	mat3_eye(S);
	S[1] = tan(nn_rng_uniform(rng, -hyp->shear, hyp->shear) * M_PI / 180.0);
	S[3] = tan(nn_rng_uniform(rng, -hyp->shear, hyp->shear) * M_PI / 180.0);
	mat3_eye(T);
	T[2] = nn_rng_uniform(rng, 0.5 - hyp->translate, 0.5 + hyp->translate) * width;
	T[5] = nn_rng_uniform(rng, 0.5 - hyp->translate, 0.5 + hyp->translate) * height;
	// M = T S R P C, applied right to left (the official order)
	mat3_mul(P, C, m);
	mat3_mul(R, m, m);
	mat3_mul(S, m, m);
	mat3_mul(T, m, m);
	*scale = s;
}

// OpenCV's 8-bit bilinear remap of one destination pixel from a source coordinate in 1/32 px.
static void remap_px(const struct nn_image *src, int X, int Y, uint8_t fill, uint8_t *d)
{
	// arithmetic shifts = floor division by 32, as OpenCV's >> INTER_BITS
	int sx = X >> 5, sy = Y >> 5, fx = X & 31, fy = Y & 31;
	int W = (int)src->w, H = (int)src->h, c = (int)src->c;
	// (1 - ax)(1 - ay) * 2^15 with ax = fx / 32 is exact: products of 1/32 steps times 32
	int w00 = (32 - fx) * (32 - fy) * 32, w01 = fx * (32 - fy) * 32;
	int w10 = (32 - fx) * fy * 32, w11 = fx * fy * 32;
	if ((unsigned)sx < (unsigned)(W - 1) && (unsigned)sy < (unsigned)(H - 1)) {
		// all four taps inside (OpenCV's fast path, same arithmetic)
		const uint8_t *p0 = src->data + ((size_t)sy * W + sx) * c, *p1 = p0 + (size_t)W * c;
		for (int k = 0; k < c; k++)
			d[k] = (uint8_t)((p0[k] * w00 + p0[c + k] * w01 + p1[k] * w10 + p1[c + k] * w11 +
					  (1 << 14)) >> 15);
		return;
	}
	if (sx >= W || sx + 1 < 0 || sy >= H || sy + 1 < 0) {
		memset(d, fill, (size_t)c);
		return;
	}
	bool x0in = sx >= 0, x1in = sx + 1 < W, y0in = sy >= 0, y1in = sy + 1 < H;
	const uint8_t *r0 = src->data + ((size_t)(y0in ? sy : 0) * W) * c;
	const uint8_t *r1 = src->data + ((size_t)(y1in ? sy + 1 : 0) * W) * c;
	for (int k = 0; k < c; k++) {
		int v00 = x0in && y0in ? r0[(size_t)sx * c + k] : fill;
		int v01 = x1in && y0in ? r0[(size_t)(sx + 1) * c + k] : fill;
		int v10 = x0in && y1in ? r1[(size_t)sx * c + k] : fill;
		int v11 = x1in && y1in ? r1[(size_t)(sx + 1) * c + k] : fill;
		int v = (v00 * w00 + v01 * w01 + v10 * w10 + v11 * w11 + (1 << 14)) >> 15;
		d[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
	}
}

static int sat_int(double v)
{
	if (!(v > INT_MIN))
		return INT_MIN;
	if (v >= INT_MAX)
		return INT_MAX;
	return (int)lrint(v); // cvRound: nearest, ties to even
}

static int clamp_short(int v)
{
	return v < -32768 ? -32768 : v > 32767 ? 32767 : v;
}

// Inverse of the affine part as cv::invertAffineTransform / warpAffine do it.
static int invert_affine(const double m[9], double inv[6])
{
	double D = m[0] * m[4] - m[1] * m[3];
	if (D == 0)
		return -EINVAL;
	D = 1.0 / D;
	inv[0] = m[4] * D;
	inv[1] = -m[1] * D;
	inv[3] = -m[3] * D;
	inv[4] = m[0] * D;
	inv[2] = -inv[0] * m[2] - inv[1] * m[5];
	inv[5] = -inv[3] * m[2] - inv[4] * m[5];
	return 0;
}

static int invert3(const double m[9], double inv[9])
{
	double c0 = m[4] * m[8] - m[5] * m[7], c1 = m[5] * m[6] - m[3] * m[8];
	double c2 = m[3] * m[7] - m[4] * m[6];
	double det = m[0] * c0 + m[1] * c1 + m[2] * c2;
	if (det == 0)
		return -EINVAL;
	double d = 1.0 / det;
	inv[0] = c0 * d;
	inv[1] = (m[2] * m[7] - m[1] * m[8]) * d;
	inv[2] = (m[1] * m[5] - m[2] * m[4]) * d;
	inv[3] = c1 * d;
	inv[4] = (m[0] * m[8] - m[2] * m[6]) * d;
	inv[5] = (m[2] * m[3] - m[0] * m[5]) * d;
	inv[6] = c2 * d;
	inv[7] = (m[1] * m[6] - m[0] * m[7]) * d;
	inv[8] = (m[0] * m[4] - m[1] * m[3]) * d;
	return 0;
}

static void warp_affine(const struct nn_image *src, const double a[6], uint8_t fill,
			struct nn_image *dst, int *adelta, int *bdelta)
{
	const int AB = 1024, round_delta = 16; // AB_BITS 10, INTER_BITS 5: 1024 / 32 / 2
	for (uint32_t x = 0; x < dst->w; x++) {
		adelta[x] = sat_int(a[0] * x * AB);
		bdelta[x] = sat_int(a[3] * x * AB);
	}
	for (uint32_t y = 0; y < dst->h; y++) {
		int X0 = sat_int((a[1] * y + a[2]) * AB) + round_delta;
		int Y0 = sat_int((a[4] * y + a[5]) * AB) + round_delta;
		uint8_t *d = dst->data + (size_t)y * dst->w * dst->c;
		for (uint32_t x = 0; x < dst->w; x++) {
			int X = (X0 + adelta[x]) >> 5, Y = (Y0 + bdelta[x]) >> 5;
			int Xs = clamp_short(X >> 5) * 32 + (X & 31);
			int Ys = clamp_short(Y >> 5) * 32 + (Y & 31);
			remap_px(src, Xs, Ys, fill, d + (size_t)x * dst->c);
		}
	}
}

static void warp_perspective(const struct nn_image *src, const double m[9], uint8_t fill,
			     struct nn_image *dst)
{
	for (uint32_t y = 0; y < dst->h; y++) {
		double X0 = m[1] * y + m[2], Y0 = m[4] * y + m[5], W0 = m[7] * y + m[8];
		uint8_t *d = dst->data + (size_t)y * dst->w * dst->c;
		for (uint32_t x = 0; x < dst->w; x++) {
			double W = W0 + m[6] * x;
			W = W != 0 ? 32.0 / W : 0;
			int X = sat_int((X0 + m[0] * x) * W), Y = sat_int((Y0 + m[3] * x) * W);
			int Xs = clamp_short(X >> 5) * 32 + (X & 31);
			int Ys = clamp_short(Y >> 5) * 32 + (Y & 31);
			remap_px(src, Xs, Ys, fill, d + (size_t)x * dst->c);
		}
	}
}

int nn_aug_warp(const struct nn_image *src, const double m[9], bool perspective, uint8_t fill,
		struct nn_image *dst)
{
	if (src->c != dst->c) {
		LOGE("augment: warp: %u channels into %u", src->c, dst->c);
		return -EINVAL;
	}
	if (perspective) {
		double inv[9];
		if (invert3(m, inv)) {
			LOGE("augment: warp: singular perspective matrix");
			return -EINVAL;
		}
		warp_perspective(src, inv, fill, dst);
		return 0;
	}
	double inv[6];
	if (invert_affine(m, inv)) {
		LOGE("augment: warp: singular affine matrix");
		return -EINVAL;
	}
	int *delta = malloc(2 * (size_t)dst->w * sizeof(int) + 1);
	if (!delta) {
		LOGE("augment: warp: out of memory for %u columns", dst->w);
		return -ENOMEM;
	}
	warp_affine(src, inv, fill, dst, delta, delta + dst->w);
	free(delta);
	return 0;
}

static void apply(const double m[9], bool perspective, double x, double y, double *ox, double *oy)
{
	double X = m[0] * x + m[1] * y + m[2], Y = m[3] * x + m[4] * y + m[5];
	if (perspective) {
		double Z = m[6] * x + m[7] * y + m[8];
		X /= Z;
		Y /= Z;
	}
	*ox = X;
	*oy = Y;
}

static double clampd(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

void nn_aug_boxes_warp(struct nn_aug_boxes *b, const double m[9], bool perspective, uint32_t w,
		       uint32_t h, double s)
{
	const double eps = 1e-16;
	size_t kept = 0;
	for (size_t i = 0; i < b->n; i++) {
		struct nn_aug_box o = b->v[i];
		double cx[4] = { o.x1, o.x2, o.x1, o.x2 }, cy[4] = { o.y1, o.y2, o.y2, o.y1 };
		double x1 = INFINITY, y1 = INFINITY, x2 = -INFINITY, y2 = -INFINITY;
		for (int k = 0; k < 4; k++) {
			double X, Y;
			apply(m, perspective, cx[k], cy[k], &X, &Y);
			x1 = fmin(x1, X), x2 = fmax(x2, X), y1 = fmin(y1, Y), y2 = fmax(y2, Y);
		}
		x1 = clampd(x1, 0, w), x2 = clampd(x2, 0, w);
		y1 = clampd(y1, 0, h), y2 = clampd(y2, 0, h);
		// official box_candidates(box1 = old * s, box2 = new): wh_thr 2, ar_thr 100, area_thr 0.1
		double w1 = (o.x2 - o.x1) * s, h1 = (o.y2 - o.y1) * s, w2 = x2 - x1, h2 = y2 - y1;
		double ar = fmax(w2 / (h2 + eps), h2 / (w2 + eps));
		if (w2 > 2 && h2 > 2 && w2 * h2 / (w1 * h1 + eps) > 0.1 && ar < 100)
			b->v[kept++] = (struct nn_aug_box){ o.cls, (float)x1, (float)y1, (float)x2,
							    (float)y2 };
	}
	b->n = kept;
}

int nn_aug_random_perspective(struct nn_image **img, int32_t border, const struct nn_hyp *hyp,
			      struct nn_rng *rng, struct nn_aug_boxes *boxes)
{
	struct nn_image *src = *img, *dst = NULL;
	int64_t ow = (int64_t)src->w + 2 * (int64_t)border, oh = (int64_t)src->h + 2 * (int64_t)border;
	if (ow <= 0 || oh <= 0) {
		LOGE("augment: perspective: border %d leaves no %ux%u image", border, src->w, src->h);
		return -EINVAL;
	}
	double m[9], s;
	nn_aug_perspective_matrix(src->w, src->h, border, hyp, rng, m, &s);
	bool persp = hyp->perspective != 0;
	static const double eye[9] = { 1, 0, 0, 0, 1, 0, 0, 0, 1 };
	if (border == 0 && !memcmp(m, eye, sizeof(eye))) {
		// the official skips the warp when nothing changes; boxes still go through the filter
		nn_aug_boxes_warp(boxes, m, persp, src->w, src->h, s);
		return 0;
	}
	int rc = nn_image_create((uint32_t)ow, (uint32_t)oh, src->c, &dst);
	if (rc)
		return rc;
	rc = nn_aug_warp(src, m, persp, 114, dst);
	if (rc) {
		nn_image_destroy(&dst);
		return rc;
	}
	nn_aug_boxes_warp(boxes, m, persp, (uint32_t)ow, (uint32_t)oh, s);
	nn_image_destroy(img);
	*img = dst;
	return 0;
}
