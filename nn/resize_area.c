// OpenCV-compatible 8-bit INTER_AREA downscale (cv::resize for CV_8U, scale >= 1 on both axes), as
// the official validation loader uses it to shrink images to the model size. Two regimes, as in
// OpenCV 4.x: integer scale factors average the k x k block in integer arithmetic; any other
// factor splits each destination cell into per-source-pixel float weights (cell overlap / cell
// width), accumulates a row in float, then rows in float, and rounds half to even.
#include "letterbox.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

// One contribution of source index si to destination index di with weight alpha.
struct area_tap {
	uint32_t di, si;
	float alpha;
};

// The taps of one axis; returns their count (at most 2 * sn). Weights are computed in double and
// stored in float, as OpenCV's computeResizeAreaTab does; a partial source pixel counts only
// when its overlap exceeds 1e-3.
static uint32_t area_taps(uint32_t sn, uint32_t dn, double scale, struct area_tap *tab)
{
	uint32_t k = 0;
	for (uint32_t d = 0; d < dn; d++) {
		double f1 = d * scale, f2 = f1 + scale;
		double cell = fmin(scale, sn - f1);
		long s1 = (long)ceil(f1), s2 = (long)floor(f2);
		if (s2 > (long)sn - 1)
			s2 = (long)sn - 1;
		if (s1 > s2)
			s1 = s2;
		if (s1 - f1 > 1e-3)
			tab[k++] = (struct area_tap){d, (uint32_t)(s1 - 1), (float)((s1 - f1) / cell)};
		for (long s = s1; s < s2; s++)
			tab[k++] = (struct area_tap){d, (uint32_t)s, (float)(1.0 / cell)};
		if (f2 - s2 > 1e-3)
			tab[k++] = (struct area_tap){d, (uint32_t)s2,
						     (float)(fmin(fmin(f2 - s2, 1.0), cell) / cell)};
	}
	return k;
}

static uint8_t round_u8(float v)
{
	long r = lrintf(v); // cvRound: nearest, ties to even
	return (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
}

// Integer factors kx x ky. 2x2 rounds (sum + 2) >> 2 (OpenCV's dedicated path); other factors
// multiply the integer sum by the float 1/area and round half to even.
static void area_integer(const uint8_t *src, uint32_t sw, uint32_t c, uint8_t *dst, uint32_t dw,
			 uint32_t dh, uint32_t kx, uint32_t ky)
{
	size_t ss = (size_t)sw * c;
	float inv = 1.f / (float)(kx * ky);
	for (uint32_t y = 0; y < dh; y++) {
		const uint8_t *row = src + (size_t)y * ky * ss;
		uint8_t *o = dst + (size_t)y * dw * c;
		for (uint32_t x = 0; x < dw; x++)
			for (uint32_t ch = 0; ch < c; ch++) {
				const uint8_t *s = row + (size_t)x * kx * c + ch;
				int sum = 0;
				for (uint32_t j = 0; j < ky; j++)
					for (uint32_t i = 0; i < kx; i++)
						sum += s[(size_t)j * ss + (size_t)i * c];
				o[x * c + ch] = kx == 2 && ky == 2 ? (uint8_t)((sum + 2) >> 2)
								   : round_u8((float)sum * inv);
			}
	}
}

static int area_generic(const uint8_t *src, uint32_t sw, uint32_t sh, uint32_t c, uint8_t *dst,
			uint32_t dw, uint32_t dh, double sx, double sy)
{
	int rc = -ENOMEM;
	size_t n = (size_t)dw * c;
	struct area_tap *xt = malloc(sizeof(*xt) * 2 * ((size_t)sw + sh));
	float *buf = malloc(sizeof(float) * 2 * n);
	if (!xt || !buf) {
		LOGE("resize area: out of memory (%ux%u -> %ux%u)", sw, sh, dw, dh);
		goto fail;
	}
	struct area_tap *yt = xt + 2 * (size_t)sw;
	uint32_t nx = area_taps(sw, dw, sx, xt), ny = area_taps(sh, dh, sy, yt);
	float *sum = buf + n;
	for (size_t i = 0; i < n; i++)
		sum[i] = 0;
	uint32_t cur = ny ? yt[0].di : 0;
	for (uint32_t j = 0; j < ny; j++) {
		const uint8_t *s = src + (size_t)yt[j].si * sw * c;
		float beta = yt[j].alpha;
		for (size_t i = 0; i < n; i++)
			buf[i] = 0;
		for (uint32_t k = 0; k < nx; k++) {
			const uint8_t *p = s + (size_t)xt[k].si * c;
			float *b = buf + (size_t)xt[k].di * c;
			for (uint32_t ch = 0; ch < c; ch++)
				b[ch] = b[ch] + (float)p[ch] * xt[k].alpha;
		}
		if (yt[j].di != cur) { // row `cur` is complete: store it, start the next one
			uint8_t *o = dst + (size_t)cur * n;
			for (size_t i = 0; i < n; i++) {
				o[i] = round_u8(sum[i]);
				sum[i] = beta * buf[i];
			}
			cur = yt[j].di;
		} else {
			for (size_t i = 0; i < n; i++)
				sum[i] += beta * buf[i];
		}
	}
	uint8_t *o = dst + (size_t)cur * n;
	for (size_t i = 0; i < n; i++)
		o[i] = round_u8(sum[i]);
	rc = 0;
fail:
	free(xt);
	free(buf);
	return rc;
}

int nn_resize_area_u8(const uint8_t *src, uint32_t sw, uint32_t sh, uint32_t c, uint8_t *dst,
		      uint32_t dw, uint32_t dh)
{
	if (!sw || !sh || !dw || !dh || !c || c > 4 || dw > sw || dh > sh) {
		LOGE("resize area: unsupported %ux%u -> %ux%u (c %u): shrinking only, 1..4 channels", sw,
		     sh, dw, dh, c);
		return -EINVAL;
	}
	if (sw == dw && sh == dh) {
		memcpy(dst, src, (size_t)sw * sh * c);
		return 0;
	}
	// OpenCV's scale: the inverse of the double dst/src ratio.
	double sx = 1.0 / ((double)dw / sw), sy = 1.0 / ((double)dh / sh);
	double kx = nearbyint(sx), ky = nearbyint(sy);
	if (fabs(sx - kx) < DBL_EPSILON && fabs(sy - ky) < DBL_EPSILON) {
		area_integer(src, sw, c, dst, dw, dh, (uint32_t)kx, (uint32_t)ky);
		return 0;
	}
	return area_generic(src, sw, sh, c, dst, dw, dh, sx, sy);
}
