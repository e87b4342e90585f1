// Letterbox and OpenCV-compatible bilinear resize. The resize mirrors OpenCV 4.x resizeGeneric_ for
// CV_8U (HResizeLinear with 11-bit weights, VResizeLinearVec_32s8u rounding) so inputs match the
// official pipeline pixel for pixel when the decoded images agree.
#include "letterbox.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define COEF_BITS 11
#define COEF_SCALE (1 << COEF_BITS)

int nn_letterbox_plan(uint32_t src_w, uint32_t src_h, const struct nn_letterbox_params *p,
                      struct nn_letterbox *lb)
{
	memset(lb, 0, sizeof(*lb));
	if (!src_w || !src_h || !p->new_w || !p->new_h) {
		LOGE("letterbox: bad sizes %ux%u -> %ux%u", src_w, src_h, p->new_w, p->new_h);
		return -EINVAL;
	}
	uint32_t stride = p->stride ? p->stride : 32;
	// Python float arithmetic; round() is round-half-even, as nearbyint in the default mode.
	double r = fmin((double)p->new_h / src_h, (double)p->new_w / src_w);
	if (!p->scaleup)
		r = fmin(r, 1.0);
	double rx = r, ry = r;
	long uw = (long)nearbyint(src_w * r), uh = (long)nearbyint(src_h * r);
	double dw = (double)p->new_w - uw, dh = (double)p->new_h - uh;
	if (p->auto_pad) {
		dw = fmod(dw, stride); // np.mod: dw >= 0 here, so same as fmod
		dh = fmod(dh, stride);
		if (dw < 0)
			dw += stride;
		if (dh < 0)
			dh += stride;
	} else if (p->scale_fill) {
		dw = dh = 0;
		uw = p->new_w;
		uh = p->new_h;
		rx = (double)p->new_w / src_w;
		ry = (double)p->new_h / src_h;
	}
	if (uw < 1)
		uw = 1;
	if (uh < 1)
		uh = 1;
	dw /= 2;
	dh /= 2;
	long top = (long)nearbyint(dh - 0.1), bottom = (long)nearbyint(dh + 0.1);
	long left = (long)nearbyint(dw - 0.1), right = (long)nearbyint(dw + 0.1);
	if (top < 0 || bottom < 0 || left < 0 || right < 0) {
		// Only reachable with scaleup and an image larger than new_shape in auto mode: never.
		LOGE("letterbox: negative padding for %ux%u -> %ux%u", src_w, src_h, p->new_w, p->new_h);
		return -EINVAL;
	}
	lb->src_w = src_w;
	lb->src_h = src_h;
	lb->unpad_w = (uint32_t)uw;
	lb->unpad_h = (uint32_t)uh;
	lb->left = (uint32_t)left;
	lb->right = (uint32_t)right;
	lb->top = (uint32_t)top;
	lb->bottom = (uint32_t)bottom;
	lb->out_w = (uint32_t)(uw + left + right);
	lb->out_h = (uint32_t)(uh + top + bottom);
	lb->ratio_x = rx;
	lb->ratio_y = ry;
	lb->pad_x = dw;
	lb->pad_y = dh;
	return 0;
}

// Source index pairs and weights along one axis, as OpenCV computes them in float from a double
// scale. clamp_edge: the x axis moves out-of-range taps to the border with weight (1, 0); the y axis
// keeps the unclamped weights and clamps only the row indices.
static void axis_coeffs(uint32_t sn, uint32_t dn, bool clamp_edge, int32_t *i0, int32_t *i1, int16_t *w0,
                        int16_t *w1)
{
	double scale = 1.0 / ((double)dn / sn);
	for (uint32_t d = 0; d < dn; d++) {
		float f = (float)((d + 0.5) * scale - 0.5);
		int s = (int)floorf(f);
		f -= (float)s;
		int s1 = s + 1;
		if (clamp_edge) {
			if (s < 0) {
				f = 0;
				s = 0;
			}
			if (s >= (int)sn - 1) {
				f = 0;
				s = (int)sn - 1;
			}
			s1 = s + 1 < (int)sn ? s + 1 : s;
		} else {
			s = s < 0 ? 0 : s >= (int)sn ? (int)sn - 1 : s;
			s1 = s1 < 0 ? 0 : s1 >= (int)sn ? (int)sn - 1 : s1;
		}
		i0[d] = s;
		i1[d] = s1;
		// saturate_cast<short>(float) rounds half to even, like lrintf.
		w0[d] = (int16_t)lrintf((1.f - f) * COEF_SCALE);
		w1[d] = (int16_t)lrintf(f * COEF_SCALE);
	}
}

static void hresize_row(const uint8_t *s, uint32_t c, uint32_t dw, const int32_t *x0, const int32_t *x1,
                        const int16_t *a0, const int16_t *a1, int32_t *d)
{
	for (uint32_t x = 0; x < dw; x++)
		for (uint32_t k = 0; k < c; k++)
			d[x * c + k] = s[x0[x] * c + k] * a0[x] + s[x1[x] * c + k] * a1[x];
}

// VResizeLinearVec_32s8u: ((S0 >> 4) * b0 >> 16) + ((S1 >> 4) * b1 >> 16), then (v + 2) >> 2.
// OpenCV's scalar tail rounds (S0*b0 + S1*b1 + 2^21) >> 22 instead; the two differ by at most 1 and
// the vector form covers all but a few trailing bytes of each row, so it is used throughout.
static uint8_t vcombine(int32_t s0, int32_t s1, int16_t b0, int16_t b1)
{
	int32_t t0 = s0 >> 4, t1 = s1 >> 4;
	t0 = t0 > 32767 ? 32767 : t0;
	t1 = t1 > 32767 ? 32767 : t1;
	int32_t v = ((t0 * b0) >> 16) + ((t1 * b1) >> 16);
	v = (int16_t)v;
	v = (v + 2) >> 2;
	return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static void resize_area2x(const uint8_t *src, uint32_t sw, uint32_t c, uint8_t *dst, uint32_t dw,
                          uint32_t dh)
{
	size_t ss = (size_t)sw * c;
	for (uint32_t y = 0; y < dh; y++) {
		const uint8_t *r0 = src + (size_t)2 * y * ss, *r1 = r0 + ss;
		uint8_t *o = dst + (size_t)y * dw * c;
		for (uint32_t x = 0; x < dw; x++)
			for (uint32_t k = 0; k < c; k++) {
				size_t i = (size_t)2 * x * c + k;
				o[x * c + k] = (uint8_t)((r0[i] + r0[i + c] + r1[i] + r1[i + c] + 2) >> 2);
			}
	}
}

int nn_resize_linear_u8(const uint8_t *src, uint32_t sw, uint32_t sh, uint32_t c, uint8_t *dst,
                        uint32_t dw, uint32_t dh)
{
	if (!sw || !sh || !dw || !dh || !c) {
		LOGE("resize: bad sizes %ux%u -> %ux%u (c %u)", sw, sh, dw, dh, c);
		return -EINVAL;
	}
	if (sw == dw && sh == dh) {
		memcpy(dst, src, (size_t)sw * sh * c);
		return 0;
	}
	double sx = 1.0 / ((double)dw / sw), sy = 1.0 / ((double)dh / sh);
	if (fabs(sx - 2) < DBL_EPSILON && fabs(sy - 2) < DBL_EPSILON) {
		resize_area2x(src, sw, c, dst, dw, dh); // OpenCV switches to INTER_AREA for exact 2x
		return 0;
	}
	int rc = -ENOMEM;
	int32_t *xi = malloc(sizeof(int32_t) * 2 * (dw + dh));
	int16_t *xw = malloc(sizeof(int16_t) * 2 * (dw + dh));
	int32_t *rows = malloc(sizeof(int32_t) * 2 * dw * c);
	if (!xi || !xw || !rows) {
		LOGE("resize: out of memory");
		goto fail;
	}
	int32_t *x0 = xi, *x1 = xi + dw, *y0 = xi + 2 * dw, *y1 = y0 + dh;
	int16_t *a0 = xw, *a1 = xw + dw, *b0 = xw + 2 * dw, *b1 = b0 + dh;
	axis_coeffs(sw, dw, true, x0, x1, a0, a1);
	axis_coeffs(sh, dh, false, y0, y1, b0, b1);
	int32_t *r0 = rows, *r1 = rows + (size_t)dw * c;
	int32_t have0 = -1, have1 = -1; // source rows currently in r0 / r1
	size_t ss = (size_t)sw * c, n = (size_t)dw * c;
	for (uint32_t y = 0; y < dh; y++) {
		if (y0[y] == have1) { // reuse the previous bottom row as top row
			int32_t *t = r0;
			r0 = r1;
			r1 = t;
			have0 = have1;
			have1 = -1;
		}
		if (y0[y] != have0) {
			hresize_row(src + y0[y] * ss, c, dw, x0, x1, a0, a1, r0);
			have0 = y0[y];
		}
		if (y1[y] != have1) {
			if (y1[y] == have0)
				memcpy(r1, r0, n * sizeof(int32_t));
			else
				hresize_row(src + y1[y] * ss, c, dw, x0, x1, a0, a1, r1);
			have1 = y1[y];
		}
		uint8_t *o = dst + (size_t)y * n;
		for (size_t i = 0; i < n; i++)
			o[i] = vcombine(r0[i], r1[i], b0[y], b1[y]);
	}
	rc = 0;
fail:
	free(xi);
	free(xw);
	free(rows);
	return rc;
}

int nn_letterbox_chw(const struct nn_image *img, const struct nn_letterbox *lb, uint8_t color,
                     uint8_t *dst)
{
	if (img->w != lb->src_w || img->h != lb->src_h) {
		LOGE("letterbox: image is %ux%u, plan was made for %ux%u", img->w, img->h, lb->src_w,
		     lb->src_h);
		return -EINVAL;
	}
	uint32_t c = img->c, uw = lb->unpad_w, uh = lb->unpad_h;
	uint8_t *tmp = malloc((size_t)uw * uh * c);
	if (!tmp) {
		LOGE("letterbox: out of memory");
		return -ENOMEM;
	}
	int rc = nn_resize_linear_u8(img->data, img->w, img->h, c, tmp, uw, uh);
	if (rc) {
		free(tmp);
		return rc;
	}
	size_t plane = (size_t)lb->out_w * lb->out_h;
	memset(dst, color, plane * c);
	for (uint32_t k = 0; k < c; k++) {
		uint8_t *p = dst + k * plane;
		for (uint32_t y = 0; y < uh; y++) {
			uint8_t *o = p + (size_t)(y + lb->top) * lb->out_w + lb->left;
			const uint8_t *s = tmp + (size_t)y * uw * c + k;
			for (uint32_t x = 0; x < uw; x++)
				o[x] = s[(size_t)x * c];
		}
	}
	free(tmp);
	return 0;
}

int nn_letterbox_image(const struct nn_image *img, const struct nn_letterbox_params *p,
                       struct nn_letterbox *lb, uint8_t **chw_out)
{
	*chw_out = NULL;
	int rc = nn_letterbox_plan(img->w, img->h, p, lb);
	if (rc)
		return rc;
	uint8_t *buf = malloc((size_t)lb->out_w * lb->out_h * img->c);
	if (!buf) {
		LOGE("letterbox: out of memory");
		return -ENOMEM;
	}
	rc = nn_letterbox_chw(img, lb, p->color, buf);
	if (rc) {
		free(buf);
		return rc;
	}
	*chw_out = buf;
	return 0;
}

void nn_u8_to_unit_f32(const uint8_t *src, size_t n, float *dst)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = (float)src[i] / 255.0f;
}
