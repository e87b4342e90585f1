// nn_resize_area_u8 (OpenCV 8-bit INTER_AREA) against an independent reference: the exact area
// average in double precision (each destination pixel = mean of the source over its cell
// [d * s, (d + 1) * s) per axis, s = src / dst), on odd sizes, 1 and 3 channels.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "letterbox.h"

// Overlap of source pixel [s, s + 1) with [a, b).
static double overlap(double s, double a, double b)
{
	double lo = fmax(s, a), hi = fmin(s + 1, b);
	return hi > lo ? hi - lo : 0;
}

// Exact area mean of one output value.
static double ref_value(const uint8_t *src, uint32_t sw, uint32_t sh, uint32_t c, uint32_t dw,
			uint32_t dh, uint32_t x, uint32_t y, uint32_t ch)
{
	double kx = (double)sw / dw, ky = (double)sh / dh, acc = 0;
	double ax = x * kx, bx = ax + kx, ay = y * ky, by = ay + ky;
	for (uint32_t j = (uint32_t)floor(ay); j < sh && j < by; j++)
		for (uint32_t i = (uint32_t)floor(ax); i < sw && i < bx; i++)
			acc += overlap(i, ax, bx) * overlap(j, ay, by) * src[((size_t)j * sw + i) * c + ch];
	return acc / (kx * ky);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	// Smooth gradient plus noise: exercises every byte value and half-way cases.
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)((i * 7 + (seed >> 16) % 64) & 255);
	}
}

// Non-integer factors: OpenCV accumulates float weights (and drops overlaps <= 1e-3), so a value
// may round the other way than the exact mean: |got - round(ref)| <= 1 everywhere, and such
// disagreements are rare (< 3 % of values) and only where ref is near a rounding boundary
// (|frac(ref) - 0.5| < 0.3: float error is ~1e-5 relative, a dropped overlap moves ref by < 0.3).
static int check_generic(uint32_t sw, uint32_t sh, uint32_t c, uint32_t dw, uint32_t dh)
{
	size_t ns = (size_t)sw * sh * c, nd = (size_t)dw * dh * c;
	uint8_t *src = malloc(ns), *dst = malloc(nd);
	CHECK(src && dst);
	fill(src, ns, sw * 31 + sh);
	CHECK(nn_resize_area_u8(src, sw, sh, c, dst, dw, dh) == 0);
	size_t off = 0, worst_i = 0;
	double worst = 0, sum_err = 0;
	for (uint32_t y = 0; y < dh; y++)
		for (uint32_t x = 0; x < dw; x++)
			for (uint32_t ch = 0; ch < c; ch++) {
				size_t i = ((size_t)y * dw + x) * c + ch;
				double r = ref_value(src, sw, sh, c, dw, dh, x, y, ch);
				double d = fabs(dst[i] - r);
				sum_err += d;
				if (dst[i] != (int)lrint(r)) {
					off++;
					if (fabs(r - floor(r) - 0.5) >= 0.3 || d > 1.0)
						worst = fmax(worst, d), worst_i = i;
				}
			}
	printf("area %ux%u -> %ux%u c%u: %zu/%zu values off by one, mean |got-ref| %.3f\n", sw, sh, dw,
	       dh, c, off, nd, sum_err / nd);
	if (worst > 0)
		printf("  worst index %zu: got %u, ref %.4f\n", worst_i, dst[worst_i],
		       ref_value(src, sw, sh, c, dw, dh, (uint32_t)(worst_i / c % dw),
				 (uint32_t)(worst_i / c / dw), (uint32_t)(worst_i % c)));
	CHECK(worst == 0);
	CHECK(off * 100 < nd * 3);
	CHECK(sum_err / nd < 0.3);
	free(src);
	free(dst);
	return 0;
}

// Integer factors are exact in OpenCV: 2x2 rounds (sum + 2) >> 2 (halves up); others round the
// float mean half to even (sum / area is never exactly .5 for odd areas, so plain rounding).
static int check_integer(uint32_t dw, uint32_t dh, uint32_t k, uint32_t c)
{
	uint32_t sw = dw * k, sh = dh * k;
	size_t ns = (size_t)sw * sh * c, nd = (size_t)dw * dh * c;
	uint8_t *src = malloc(ns), *dst = malloc(nd);
	CHECK(src && dst);
	fill(src, ns, 7 + k);
	CHECK(nn_resize_area_u8(src, sw, sh, c, dst, dw, dh) == 0);
	for (uint32_t y = 0; y < dh; y++)
		for (uint32_t x = 0; x < dw; x++)
			for (uint32_t ch = 0; ch < c; ch++) {
				size_t i = ((size_t)y * dw + x) * c + ch;
				double r = ref_value(src, sw, sh, c, dw, dh, x, y, ch);
				int want = k == 2 ? (int)floor(r + 0.5) : (int)lrint(r);
				if (dst[i] != want) {
					printf("integer x%u: index %zu got %u want %d (ref %.4f)\n", k, i,
					       dst[i], want, r);
					return 1;
				}
			}
	printf("area x%u %ux%u c%u: exact\n", k, dw, dh, c);
	free(src);
	free(dst);
	return 0;
}

int main(void)
{
	int fails = 0;
	fails += check_generic(37, 23, 3, 17, 11);
	fails += check_generic(101, 67, 3, 64, 42);
	fails += check_generic(481, 640, 3, 240, 319);
	fails += check_generic(500, 381, 3, 320, 243);
	fails += check_generic(333, 17, 1, 100, 16);
	fails += check_generic(9, 200, 1, 9, 7); // one axis unchanged
	fails += check_integer(33, 21, 2, 3);
	fails += check_integer(13, 7, 3, 3);
	fails += check_integer(5, 9, 4, 1);
	// Enlarging is not INTER_AREA's job here.
	uint8_t px[4] = {0};
	CHECK(nn_resize_area_u8(px, 1, 1, 1, px + 1, 2, 1) != 0);
	printf("%s\n", fails ? "FAIL" : "ok");
	return fails ? 1 : 0;
}
