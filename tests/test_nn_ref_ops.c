// Unit tests of the CPU reference operators (nn/ref/*.c): tiny hand-computed cases plus random odd
// shapes against independent naive formulas (double accumulation, explicit padding checks,
// materialised pooled inputs, explicit slice placement).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"

// Reference and naive code only differ in float summation order: a few ulps of the magnitude.
#define ATOL 1e-5
#define RTOL 1e-5

static uint32_t rng_state = 12345;
static float frand(void)
{
	rng_state = rng_state * 1664525u + 1013904223u;
	return (float)((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static float *rand_buf(size_t n)
{
	float *p = malloc(n * sizeof(float));
	for (size_t i = 0; i < n; i++)
		p[i] = frand();
	return p;
}

static int compare(const char *what, const float *got, const float *want, size_t n)
{
	size_t worst = 0;
	double max_abs = 0, max_rel = 0, worst_excess = -1;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - want[i]);
		double excess = d - (ATOL + RTOL * fabs(want[i]));
		if (d > max_abs)
			max_abs = d;
		if (want[i] != 0 && d / fabs(want[i]) > max_rel)
			max_rel = d / fabs(want[i]);
		if (excess > worst_excess) {
			worst_excess = excess;
			worst = i;
		}
		if (isnan(got[i]) != isnan(want[i]))
			worst_excess = 1e30, worst = i;
	}
	if (worst_excess > 0) {
		printf("FAIL %s: index %zu got %.8g want %.8g (max abs %.3g, max rel %.3g)\n", what, worst,
		       got[worst], want[worst], max_abs, max_rel);
		return 1;
	}
	printf("ok   %s: %zu values, max abs %.3g, max rel %.3g\n", what, n, max_abs, max_rel);
	return 0;
}

static double act_d(enum nn_act a, double v)
{
	if (a == NN_ACT_SILU)
		return v / (1.0 + exp(-v));
	if (a == NN_ACT_SIGMOID)
		return 1.0 / (1.0 + exp(-v));
	return v;
}

// Naive conv on a dense pre-pooled input xin [n, c_in, hi, wi]; y dense [n, c_out, ho, wo].
static void naive_conv(const struct nn_conv2d_desc *d, const float *xin, uint32_t hi, uint32_t wi,
                       const float *w, const float *b, const float *r, float *y)
{
	uint32_t ho = (hi + 2 * d->pad - d->k_h) / d->stride + 1, wo = (wi + 2 * d->pad - d->k_w) / d->stride + 1;
	uint32_t cig = d->c_in / d->groups, cog = d->c_out / d->groups;
	for (uint32_t n = 0; n < d->n; n++)
		for (uint32_t oc = 0; oc < d->c_out; oc++)
			for (uint32_t oh = 0; oh < ho; oh++)
				for (uint32_t ow = 0; ow < wo; ow++) {
					double acc = b ? b[oc] : 0;
					for (uint32_t ci = 0; ci < cig; ci++)
						for (uint32_t kh = 0; kh < d->k_h; kh++)
							for (uint32_t kw = 0; kw < d->k_w; kw++) {
								long ih = (long)(oh * d->stride + kh) - d->pad;
								long iw = (long)(ow * d->stride + kw) - d->pad;
								if (ih < 0 || iw < 0 || ih >= hi || iw >= wi)
									continue;
								uint32_t c = (oc / cog) * cig + ci;
								acc += (double)w[((oc * cig + ci) * d->k_h + kh) * d->k_w + kw] *
								       xin[((n * d->c_in + c) * hi + ih) * wi + iw];
							}
					size_t o = ((n * d->c_out + oc) * ho + oh) * wo + ow;
					if (r && d->res_before_act)
						acc += r[o];
					acc = act_d(d->act, acc);
					if (r && !d->res_before_act)
						acc += r[o];
					y[o] = (float)acc;
				}
}

// Hand case: 1x1 input channel 3x3 image, 2x2 kernel of ones, stride 1, pad 0, bias 1.
static int check_conv_hand(void)
{
	float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[4] = {1, 1, 1, 1}, b[1] = {1}, y[4];
	float want[4] = {13, 17, 25, 29}; // 1+2+4+5+1, 2+3+5+6+1, 4+5+7+8+1, 5+6+8+9+1
	struct nn_conv2d_desc d = {.n = 1, .c_in = 1, .h_in = 3, .w_in = 3, .c_out = 1, .k_h = 2, .k_w = 2,
	                           .stride = 1, .groups = 1};
	nn_conv2d_forward_ref(&d, x, w, b, NULL, y);
	int fails = compare("conv hand 2x2", y, want, 4);
	// avgpool_before: pooled image is [[3,4],[6,7]]; 1x1 kernel weight 2, no bias -> doubled.
	float w1 = 2, want2[4] = {6, 8, 12, 14};
	struct nn_conv2d_desc d2 = {.n = 1, .c_in = 1, .h_in = 3, .w_in = 3, .c_out = 1, .k_h = 1, .k_w = 1,
	                            .stride = 1, .groups = 1, .avgpool_before = true};
	nn_conv2d_forward_ref(&d2, x, &w1, NULL, NULL, y);
	fails += compare("conv hand avgpool_before", y, want2, 4);
	return fails;
}

// Random case with slices, groups, stride, residual, and the avg pool inside the load.
static int check_conv_random(uint32_t c_in, uint32_t c_out, uint32_t k, uint32_t s, uint32_t g,
                             bool pool, enum nn_act act, bool res, bool res_before)
{
	uint32_t n = 2, h = 11, wdt = 8, xct = c_in + 3, xoff = 2, yct = c_out + 5, yoff = 4, rct = c_out + 1;
	struct nn_conv2d_desc d = {.n = n, .c_in = c_in, .h_in = h, .w_in = wdt, .c_out = c_out, .k_h = k,
	                           .k_w = k, .stride = s, .pad = k / 2, .groups = g, .act = act,
	                           .avgpool_before = pool, .res_before_act = res_before, .x_c_total = xct,
	                           .x_c_off = xoff, .y_c_total = yct, .y_c_off = yoff, .r_c_total = rct,
	                           .r_c_off = 1};
	uint32_t hi = pool ? h - 1 : h, wi = pool ? wdt - 1 : wdt;
	uint32_t ho = nn_conv2d_out_h(&d), wo = nn_conv2d_out_w(&d);
	float *x = rand_buf((size_t)n * xct * h * wdt), *w = rand_buf((size_t)c_out * (c_in / g) * k * k);
	float *b = rand_buf(c_out), *r = rand_buf((size_t)n * rct * ho * wo);
	float *y = rand_buf((size_t)n * yct * ho * wo), *y0 = malloc((size_t)n * yct * ho * wo * sizeof(float));
	memcpy(y0, y, (size_t)n * yct * ho * wo * sizeof(float));
	// dense pooled input and dense residual for the naive path
	float *xin = malloc((size_t)n * c_in * hi * wi * sizeof(float));
	float *rd = malloc((size_t)n * c_out * ho * wo * sizeof(float));
	float *yd = malloc((size_t)n * c_out * ho * wo * sizeof(float));
	float *yg = malloc((size_t)n * c_out * ho * wo * sizeof(float));
	for (uint32_t in = 0; in < n; in++)
		for (uint32_t c = 0; c < c_in; c++)
			for (uint32_t i = 0; i < hi; i++)
				for (uint32_t j = 0; j < wi; j++) {
					const float *p = x + ((size_t)(in * xct + xoff + c) * h) * wdt;
					float v = p[i * wdt + j];
					if (pool)
						v = (p[i * wdt + j] + p[i * wdt + j + 1] + p[(i + 1) * wdt + j] +
						     p[(i + 1) * wdt + j + 1]) / 4;
					xin[((in * c_in + c) * hi + i) * wi + j] = v;
				}
	for (uint32_t in = 0; in < n; in++)
		for (uint32_t c = 0; c < c_out; c++)
			memcpy(rd + (size_t)(in * c_out + c) * ho * wo, r + (size_t)(in * rct + 1 + c) * ho * wo,
			       (size_t)ho * wo * sizeof(float));
	naive_conv(&d, xin, hi, wi, w, b, res ? rd : NULL, yd);
	nn_conv2d_forward_ref(&d, x, w, b, res ? r : NULL, y);
	int fails = 0;
	// untouched channels outside the slice must keep their values
	for (uint32_t in = 0; in < n; in++)
		for (uint32_t c = 0; c < yct; c++) {
			float *src = y + (size_t)(in * yct + c) * ho * wo;
			if (c >= yoff && c < yoff + c_out)
				memcpy(yg + (size_t)(in * c_out + c - yoff) * ho * wo, src, (size_t)ho * wo * sizeof(float));
			else if (memcmp(src, y0 + (src - y), (size_t)ho * wo * sizeof(float)) != 0) {
				printf("FAIL conv wrote outside its slice (channel %u)\n", c);
				fails++;
			}
		}
	char name[128];
	snprintf(name, sizeof(name), "conv c%u->%u k%u s%u g%u pool%d act%d res%d/%d", c_in, c_out, k, s, g,
	         pool, act, res, res_before);
	fails += compare(name, yg, yd, (size_t)n * c_out * ho * wo);
	free(x), free(w), free(b), free(r), free(y), free(y0), free(xin), free(rd), free(yd), free(yg);
	return fails;
}

static int check_pools(void)
{
	// max pool 3x3 s2 p1 on a 4x4 ramp: windows clip at the border (implicit -inf padding).
	float x[16], y[4], want[4] = {5, 7, 13, 15};
	for (int i = 0; i < 16; i++)
		x[i] = (float)i;
	struct nn_pool2d_desc d = {.n = 1, .c = 1, .h_in = 4, .w_in = 4, .k = 3, .stride = 2, .pad = 1};
	nn_maxpool2d_forward_ref(&d, x, y);
	int fails = compare("maxpool 3x3 s2 p1", y, want, 4);
	// 5x5 s1 p2 on a 2x3 image with negative values: every output is the global max (-1).
	float xn[6] = {-6, -5, -4, -3, -2, -1}, yn[6], wn[6] = {-1, -1, -1, -1, -1, -1};
	struct nn_pool2d_desc d5 = {.n = 1, .c = 1, .h_in = 2, .w_in = 3, .k = 5, .stride = 1, .pad = 2};
	nn_maxpool2d_forward_ref(&d5, xn, yn);
	fails += compare("maxpool 5x5 s1 p2 negative", yn, wn, 6);
	// avg pool 2x2 s1 p0 on the ramp
	float ya[9], wa[9];
	struct nn_pool2d_desc da = {.n = 1, .c = 1, .h_in = 4, .w_in = 4, .k = 2, .stride = 1};
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			wa[i * 3 + j] = (x[i * 4 + j] + x[i * 4 + j + 1] + x[i * 4 + 4 + j] + x[i * 4 + 5 + j]) / 4;
	nn_avgpool2d_forward_ref(&da, x, ya);
	fails += compare("avgpool 2x2 s1", ya, wa, 9);
	// slices: pool channel 1 of a 3-channel tensor into channel 2 of a 4-channel tensor
	float xs[3 * 16], ys[4 * 4] = {0};
	for (int i = 0; i < 48; i++)
		xs[i] = (float)(i % 16) + (i / 16) * 100.0f;
	struct nn_pool2d_desc dsl = {.n = 1, .c = 1, .h_in = 4, .w_in = 4, .k = 3, .stride = 2, .pad = 1,
	                             .x_c_total = 3, .x_c_off = 1, .y_c_total = 4, .y_c_off = 2};
	nn_maxpool2d_forward_ref(&dsl, xs, ys);
	float wsl[4 * 4] = {0};
	for (int i = 0; i < 4; i++)
		wsl[8 + i] = want[i] + 100;
	fails += compare("maxpool slices", ys, wsl, 16);
	return fails;
}

static int check_resize(void)
{
	float x[6] = {1, 2, 3, 4, 5, 6}, y[24];
	float want[24] = {1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6};
	struct nn_resize_desc d = {.n = 1, .c = 1, .h_in = 2, .w_in = 3, .h_out = 4, .w_out = 6};
	nn_resize_nearest_forward_ref(&d, x, y);
	int fails = compare("upsample x2", y, want, 24);
	d.accumulate = true; // y += up(x) -> doubles
	nn_resize_nearest_forward_ref(&d, x, y);
	for (int i = 0; i < 24; i++)
		want[i] *= 2;
	fails += compare("upsample x2 accumulate", y, want, 24);
	// x4 (CBFuse P5 -> P3): 1x1 -> 4x4 is a broadcast
	float one = 7, y4[16], w4[16];
	for (int i = 0; i < 16; i++)
		w4[i] = 7;
	struct nn_resize_desc d4 = {.n = 1, .c = 1, .h_in = 1, .w_in = 1, .h_out = 4, .w_out = 4};
	nn_resize_nearest_forward_ref(&d4, &one, y4);
	fails += compare("resize x4", y4, w4, 16);
	float a[3] = {1, 2, 3}, b[3] = {10, 20, 30}, s[3], ws[3] = {11, 22, 33};
	nn_add_forward_ref(3, a, b, s);
	fails += compare("add", s, ws, 3);
	return fails;
}

// Decode: one level 1x2, nc 1, reg_max 16, stride 8. Anchor 0: all bins equal -> distance 7.5 per
// side; anchor 1: a one-hot-ish logit at bin 3 for every side -> ~3.
static int check_decode(void)
{
	uint32_t rm = 16, nc = 1, no = 4 * rm + nc;
	float lv[65 * 2];
	for (uint32_t c = 0; c < no; c++) {
		lv[c * 2 + 0] = 0.0f;
		lv[c * 2 + 1] = (c < 4 * rm && c % rm == 3) ? 100.0f : 0.0f;
	}
	lv[64 * 2 + 0] = 0.0f;    // class logit -> 0.5
	lv[64 * 2 + 1] = logf(3); // sigmoid(ln 3) = 0.75
	struct nn_decode_desc d = {.n = 1, .nc = nc, .reg_max = rm, .nl = 1, .h = {1}, .w = {2}, .stride = {8}};
	float y[5 * 2];
	const float *levels[1] = {lv};
	nn_decode_forward_ref(&d, levels, y);
	// anchor 0 at (0.5, 0.5): x1 = -7, x2 = 8 -> cx 0.5*8 = 4, w = 15*8 = 120
	// anchor 1 at (1.5, 0.5): d = 3 each -> cx 1.5*8 = 12, cy 4, w = h = 6*8 = 48
	float want[10] = {4, 12, 4, 4, 120, 48, 120, 48, 0.5f, 0.75f};
	return compare("decode", y, want, 10);
}

int main(void)
{
	int fails = check_conv_hand();
	fails += check_conv_random(3, 5, 3, 1, 1, false, NN_ACT_SILU, false, false);
	fails += check_conv_random(8, 8, 3, 2, 4, false, NN_ACT_SILU, true, false);
	fails += check_conv_random(6, 4, 3, 2, 1, true, NN_ACT_SILU, false, false);
	fails += check_conv_random(5, 7, 1, 1, 1, false, NN_ACT_NONE, true, true);
	fails += check_conv_random(4, 6, 3, 1, 2, false, NN_ACT_SIGMOID, true, true);
	fails += check_conv_random(7, 3, 1, 1, 1, true, NN_ACT_SILU, true, false);
	fails += check_conv_random(13, 9, 5, 1, 1, false, NN_ACT_SILU, false, false);
	fails += check_pools();
	fails += check_resize();
	fails += check_decode();
	printf("%s\n", fails ? "FAILED" : "all passed");
	return fails ? 1 : 0;
}
