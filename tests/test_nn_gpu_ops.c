// Each GPU forward layer (nn/layers.h) against its nn/ref.h reference on awkward shapes: channel
// counts 1/3/13/127, batch 2, H != W, odd sizes, stride 2, groups, slices at non-zero offsets,
// residuals before/after the activation, avg-pool on load. The whole output tensor is compared
// (pre-filled with noise), so a write outside the destination slice fails too.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "layers.h"

// Conv: fp32 sums of up to ~1200 products, weights scaled by 1/sqrt(fan_in) so outputs are O(1);
// the GPU sums in a different order (and may contract to FMA), which costs a few ulp of the
// partial sums: 1e-5 absolute + 1e-5 relative is ~100x that and far below any indexing error.
#define CONV_ATOL 1e-5f
#define CONV_RTOL 1e-5f
// Pools, resize and input conversion move values or sum <= 25 of them: near-exact.
#define EW_ATOL 1e-6f
#define EW_RTOL 1e-6f
// Decode: exp/division in the DFL softmax (GLSL exp is allowed 3 + 2|x| ulp) times strides up to
// 32 on coordinates up to ~1000 px.
#define DEC_ATOL 1e-4f
#define DEC_RTOL 1e-5f

static struct test_gpu g;
static struct gpu_pool *pool;

static float *rnd(size_t n, unsigned seed, float scale)
{
	return test_random_floats(n, seed, scale, 0.0f);
}

static int upload(const void *data, size_t bytes, struct gpu_buf **out)
{
	return test_upload(pool, data, bytes, out);
}

// Runs the recorded seq and downloads `floats` from yb into got.
static int run_seq(struct gpu_seq *seq, struct gpu_buf *yb, float *got, size_t floats)
{
	int ret = gpu_seq_end(seq);
	if (!ret)
		ret = gpu_seq_run(seq);
	if (!ret)
		ret = gpu_buf_download(yb, 0, got, floats * 4);
	return ret;
}

struct conv_case {
	struct nn_conv2d_desc d;
	bool residual, bias;
};

static int conv_one(const struct conv_case *c, const struct nn_conv2d_tile *tile, unsigned seed)
{
	const struct nn_conv2d_desc *d = &c->d;
	uint32_t ho = nn_conv2d_out_h(d), wo = nn_conv2d_out_w(d);
	uint32_t xct = d->x_c_total ? d->x_c_total : d->c_in, yct = d->y_c_total ? d->y_c_total : d->c_out;
	uint32_t rct = d->r_c_total ? d->r_c_total : d->c_out, cig = d->c_in / d->groups;
	size_t nx = (size_t)d->n * xct * d->h_in * d->w_in, ny = (size_t)d->n * yct * ho * wo;
	size_t nr = (size_t)d->n * rct * ho * wo, nw = (size_t)d->c_out * cig * d->k_h * d->k_w;
	float *x = rnd(nx, seed, 1), *w = rnd(nw, seed + 1, 1.0f / sqrtf((float)(cig * d->k_h * d->k_w)));
	float *b = rnd(d->c_out, seed + 2, 0.5f), *r = rnd(nr, seed + 3, 1), *want = rnd(ny, seed + 4, 1);
	float *got = malloc(ny * 4);
	struct nn_conv2d_tile t = *tile;
	size_t nwp = nn_conv2d_packed_weight_floats(d, &t), nbp = nn_conv2d_packed_bias_floats(d, &t);
	float *wp = malloc(nwp * 4), *bp = malloc(nbp * 4);
	nn_conv2d_pack(d, &t, w, c->bias ? b : NULL, wp, bp);
	struct gpu_buf *bx = NULL, *bw = NULL, *bb = NULL, *br = NULL, *by = NULL;
	struct gpu_seq *seq = NULL;
	int ret = upload(x, nx * 4, &bx);
	if (!ret)
		ret = upload(wp, nwp * 4, &bw);
	if (!ret)
		ret = upload(bp, nbp * 4, &bb);
	if (!ret)
		ret = upload(r, nr * 4, &br);
	if (!ret)
		ret = upload(want, ny * 4, &by);
	if (!ret)
		ret = gpu_seq_create(g.dev, &seq);
	if (!ret)
		ret = gpu_seq_begin(seq, false);
	if (!ret)
		ret = nn_conv2d_record(g.dev, seq, d, &t, c->residual, &(struct gpu_binding){ .buf = bx },
		                       &(struct gpu_binding){ .buf = bw }, &(struct gpu_binding){ .buf = bb },
		                       &(struct gpu_binding){ .buf = br }, &(struct gpu_binding){ .buf = by }, "conv");
	if (!ret)
		ret = run_seq(seq, by, got, ny);
	int fail = ret != 0;
	if (!ret) {
		nn_conv2d_forward_ref(d, x, w, c->bias ? b : NULL, c->residual ? r : NULL, want);
		char what[160];
		snprintf(what, sizeof(what), "conv n%u c%u->%u %ux%u k%ux%u s%u p%u g%u act%d avg%d res%d/%d tile %ux%u v%d",
		         d->n, d->c_in, d->c_out, d->h_in, d->w_in, d->k_h, d->k_w, d->stride, d->pad, d->groups,
		         d->act, d->avgpool_before, c->residual, d->res_before_act, t.ocb, t.px, t.variant);
		fail = !test_close_f32(what, got, want, ny, CONV_ATOL, CONV_RTOL);
	}
	gpu_seq_destroy(&seq);
	gpu_buf_destroy(&bx), gpu_buf_destroy(&bw), gpu_buf_destroy(&bb), gpu_buf_destroy(&br), gpu_buf_destroy(&by);
	free(x), free(w), free(b), free(r), free(want), free(got), free(wp), free(bp);
	return fail;
}

static int check_conv(void)
{
	const struct conv_case cases[] = {
		// stem-like: 3 -> 13, 3x3 s1, SiLU, batch 2, H != W
		{ { .n = 2, .c_in = 3, .h_in = 7, .w_in = 11, .c_out = 13, .k_h = 3, .k_w = 3, .stride = 1, .pad = 1,
		    .groups = 1, .act = NN_ACT_SILU }, false, true },
		// 1x1 GEMM path, slices in and out at odd offsets, no bias, no act
		{ { .n = 2, .c_in = 13, .h_in = 5, .w_in = 9, .c_out = 127, .k_h = 1, .k_w = 1, .stride = 1,
		    .groups = 1, .x_c_total = 20, .x_c_off = 5, .y_c_total = 130, .y_c_off = 2 }, false, false },
		// 3x3 s2 with residual slice after SiLU, odd sizes
		{ { .n = 1, .c_in = 16, .h_in = 13, .w_in = 10, .c_out = 24, .k_h = 3, .k_w = 3, .stride = 2, .pad = 1,
		    .groups = 1, .act = NN_ACT_SILU, .r_c_total = 30, .r_c_off = 3 }, true, true },
		// grouped (head box branch style), sigmoid, residual before the activation
		{ { .n = 2, .c_in = 16, .h_in = 6, .w_in = 7, .c_out = 8, .k_h = 3, .k_w = 3, .stride = 1, .pad = 1,
		    .groups = 4, .act = NN_ACT_SIGMOID, .res_before_act = true }, true, true },
		// AConv: avg pool 2x2 s1 on load, then 3x3 s2, input slice
		{ { .n = 2, .c_in = 8, .h_in = 12, .w_in = 9, .c_out = 12, .k_h = 3, .k_w = 3, .stride = 2, .pad = 1,
		    .groups = 1, .act = NN_ACT_SILU, .avgpool_before = true, .x_c_total = 16, .x_c_off = 8 }, false, true },
		// avg pool on load with a 1x1
		{ { .n = 1, .c_in = 5, .h_in = 6, .w_in = 13, .c_out = 7, .k_h = 1, .k_w = 1, .stride = 1,
		    .groups = 1, .act = NN_ACT_SILU, .avgpool_before = true }, false, true },
		// single channel, 5x5 (non-square kernel support via k_h != k_w too)
		{ { .n = 2, .c_in = 1, .h_in = 9, .w_in = 4, .c_out = 1, .k_h = 5, .k_w = 3, .stride = 1, .pad = 2,
		    .groups = 1 }, true, true },
		// depthwise-style groups == channels
		{ { .n = 1, .c_in = 6, .h_in = 5, .w_in = 8, .c_out = 6, .k_h = 3, .k_w = 3, .stride = 2, .pad = 1,
		    .groups = 6, .act = NN_ACT_SILU }, false, true },
		// a mid-size RepNCSP-like conv: 64 -> 64 3x3 with residual slice, wide row (many W tiles)
		{ { .n = 1, .c_in = 64, .h_in = 10, .w_in = 37, .c_out = 64, .k_h = 3, .k_w = 3, .stride = 1, .pad = 1,
		    .groups = 1, .act = NN_ACT_SILU, .y_c_total = 128, .y_c_off = 64, .r_c_total = 128, .r_c_off = 0 },
		  true, true },
		// 127 -> 3, 1x1, stride 2 (odd)
		{ { .n = 2, .c_in = 127, .h_in = 7, .w_in = 5, .c_out = 3, .k_h = 1, .k_w = 1, .stride = 2,
		    .groups = 1, .act = NN_ACT_SIGMOID }, false, true },
	};
	const struct gpu_device_info *info = gpu_device_info(g.dev);
	int fails = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct nn_conv2d_desc *d = &cases[i].d;
		// The device's choice, then every kernel that can run this conv here, at two tile sizes.
		struct nn_conv2d_tile tiles[8];
		int nt = 0;
		nn_conv2d_choose_tile(info, d, &tiles[nt++]);
		tiles[nt++] = (struct nn_conv2d_tile){ NN_CONV2D_DIRECT, 16, 8 };
		tiles[nt++] = (struct nn_conv2d_tile){ NN_CONV2D_DIRECT, 4, 3 };
		bool is_1x1 = d->k_h == 1 && d->k_w == 1 && d->stride == 1 && !d->pad && !d->avgpool_before &&
		              nn_conv2d_out_h(d) * nn_conv2d_out_w(d) % 4 == 0;
		if (is_1x1) {
			tiles[nt++] = (struct nn_conv2d_tile){ NN_CONV2D_1X1, 16, 16 };
			tiles[nt++] = (struct nn_conv2d_tile){ NN_CONV2D_1X1, 4, 4 };
		}
		if (info->subgroup_size == 8 && info->subgroup_shuffle) {
			tiles[nt++] = (struct nn_conv2d_tile){ NN_CONV2D_SG, 32, 3 };
			tiles[nt++] = (struct nn_conv2d_tile){ NN_CONV2D_SG, 4, 1 };
		}
		for (int k = 0; k < nt; k++)
			fails += conv_one(&cases[i], &tiles[k], 10 + 7 * (unsigned)i);
	}
	return fails;
}

// Runs one element-wise layer: x (nx floats), y pre-filled with noise (ny floats); `rec` records it.
typedef int (*record_fn)(struct gpu_seq *seq, struct gpu_buf *bx, struct gpu_buf *by, const void *desc);

static int ew_run(record_fn rec, const void *desc, const float *x, size_t nx, float *y, size_t ny)
{
	struct gpu_buf *bx = NULL, *by = NULL;
	struct gpu_seq *seq = NULL;
	int ret = upload(x, nx * 4, &bx);
	if (!ret)
		ret = upload(y, ny * 4, &by);
	if (!ret)
		ret = gpu_seq_create(g.dev, &seq);
	if (!ret)
		ret = gpu_seq_begin(seq, false);
	if (!ret)
		ret = rec(seq, bx, by, desc);
	if (!ret)
		ret = run_seq(seq, by, y, ny);
	gpu_seq_destroy(&seq);
	gpu_buf_destroy(&bx), gpu_buf_destroy(&by);
	return ret;
}

static int rec_max(struct gpu_seq *s, struct gpu_buf *x, struct gpu_buf *y, const void *d)
{
	return nn_maxpool2d_record(g.dev, s, d, &(struct gpu_binding){ .buf = x }, &(struct gpu_binding){ .buf = y }, "max");
}

static int rec_avg(struct gpu_seq *s, struct gpu_buf *x, struct gpu_buf *y, const void *d)
{
	return nn_avgpool2d_record(g.dev, s, d, &(struct gpu_binding){ .buf = x }, &(struct gpu_binding){ .buf = y }, "avg");
}

static int rec_resize(struct gpu_seq *s, struct gpu_buf *x, struct gpu_buf *y, const void *d)
{
	return nn_resize_nearest_record(g.dev, s, d, &(struct gpu_binding){ .buf = x }, &(struct gpu_binding){ .buf = y },
	                                "resize");
}

static int check_pools(void)
{
	const struct nn_pool2d_desc cases[] = {
		{ .n = 2, .c = 13, .h_in = 9, .w_in = 14, .k = 5, .stride = 1, .pad = 2, .x_c_total = 20, .x_c_off = 3,
		  .y_c_total = 52, .y_c_off = 26 }, // SPPELAN 5x5 into a concat slice
		{ .n = 1, .c = 3, .h_in = 11, .w_in = 6, .k = 3, .stride = 2, .pad = 1 }, // ADown's max pool
		{ .n = 2, .c = 1, .h_in = 5, .w_in = 8, .k = 2, .stride = 1, .pad = 0 },  // ADown's avg pool
		{ .n = 1, .c = 127, .h_in = 4, .w_in = 3, .k = 3, .stride = 2, .pad = 1, .y_c_total = 130, .y_c_off = 1 },
	};
	int fails = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct nn_pool2d_desc *d = &cases[i];
		uint32_t ho = nn_pool_out_size(d->h_in, d->k, d->stride, d->pad);
		uint32_t wo = nn_pool_out_size(d->w_in, d->k, d->stride, d->pad);
		size_t nx = (size_t)d->n * (d->x_c_total ? d->x_c_total : d->c) * d->h_in * d->w_in;
		size_t ny = (size_t)d->n * (d->y_c_total ? d->y_c_total : d->c) * ho * wo;
		for (int is_max = 0; is_max < 2; is_max++) {
			float *x = rnd(nx, 50 + (unsigned)i, 1), *got = rnd(ny, 60 + (unsigned)i, 1);
			float *want = rnd(ny, 60 + (unsigned)i, 1);
			int ret = ew_run(is_max ? rec_max : rec_avg, d, x, nx, got, ny);
			if (is_max)
				nn_maxpool2d_forward_ref(d, x, want);
			else
				nn_avgpool2d_forward_ref(d, x, want);
			char what[96];
			snprintf(what, sizeof(what), "%s pool c%u %ux%u k%u s%u p%u", is_max ? "max" : "avg", d->c, d->h_in,
			         d->w_in, d->k, d->stride, d->pad);
			fails += ret || !test_close_f32(what, got, want, ny, EW_ATOL, EW_RTOL);
			free(x), free(got), free(want);
		}
	}
	return fails;
}

static int check_resize(void)
{
	const struct nn_resize_desc cases[] = {
		{ .n = 2, .c = 3, .h_in = 5, .w_in = 7, .h_out = 10, .w_out = 14, .y_c_total = 8, .y_c_off = 4 }, // Upsample
		{ .n = 1, .c = 13, .h_in = 13, .w_in = 9, .h_out = 5, .w_out = 4, .accumulate = true,
		  .x_c_total = 16, .x_c_off = 2 },                                                             // CBFuse down
		{ .n = 2, .c = 1, .h_in = 6, .w_in = 3, .h_out = 6, .w_out = 3, .accumulate = true },          // add
	};
	int fails = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct nn_resize_desc *d = &cases[i];
		size_t nx = (size_t)d->n * (d->x_c_total ? d->x_c_total : d->c) * d->h_in * d->w_in;
		size_t ny = (size_t)d->n * (d->y_c_total ? d->y_c_total : d->c) * d->h_out * d->w_out;
		float *x = rnd(nx, 70 + (unsigned)i, 1), *got = rnd(ny, 80 + (unsigned)i, 1);
		float *want = rnd(ny, 80 + (unsigned)i, 1);
		int ret = ew_run(rec_resize, d, x, nx, got, ny);
		nn_resize_nearest_forward_ref(d, x, want);
		char what[96];
		snprintf(what, sizeof(what), "resize c%u %ux%u -> %ux%u acc%d", d->c, d->h_in, d->w_in, d->h_out, d->w_out,
		         d->accumulate);
		fails += ret || !test_close_f32(what, got, want, ny, EW_ATOL, EW_RTOL);
		free(x), free(got), free(want);
	}
	return fails;
}

static int check_input_u8(void)
{
	const size_t n = 2 * 3 * 5 * 32;
	uint8_t *x = malloc(n);
	float *got = malloc(n * 4), *want = malloc(n * 4);
	for (size_t i = 0; i < n; i++) {
		x[i] = (uint8_t)(i * 37 + (i >> 3));
		want[i] = (float)x[i] / 255.0f;
	}
	struct gpu_buf *bx = NULL, *by = NULL;
	struct gpu_seq *seq = NULL;
	int ret = upload(x, n, &bx);
	if (!ret)
		ret = gpu_buf_create(pool, n * 4, &by);
	if (!ret)
		ret = gpu_seq_create(g.dev, &seq);
	if (!ret)
		ret = gpu_seq_begin(seq, false);
	if (!ret)
		ret = nn_input_u8_record(g.dev, seq, n, &(struct gpu_binding){ .buf = bx }, &(struct gpu_binding){ .buf = by },
		                         "input");
	if (!ret)
		ret = run_seq(seq, by, got, n);
	// x/255 with a correctly rounded or 2.5-ulp division: relative 1e-6 covers it, and a wrong
	// byte order moves values by >= 1/255.
	int fail = ret || !test_close_f32("input u8", got, want, n, 0, 1e-6f);
	gpu_seq_destroy(&seq);
	gpu_buf_destroy(&bx), gpu_buf_destroy(&by);
	free(x), free(got), free(want);
	return fail;
}

static int check_decode(void)
{
	struct nn_decode_desc d = { .n = 2, .nc = 3, .reg_max = 16, .nl = 3, .h = { 8, 4, 2 }, .w = { 12, 6, 3 },
	                            .stride = { 8, 16, 32 } };
	const struct nn_decode_level_slice sl[3] = { { 67, 0 }, { 67, 0 }, { 75, 5 } };
	uint32_t no = 4 * d.reg_max + d.nc, a = nn_decode_anchors(&d);
	float *lv[3], *packed[3];
	struct gpu_buf *bl[3] = { 0 }, *by = NULL;
	struct gpu_seq *seq = NULL;
	size_t ny = (size_t)d.n * (4 + d.nc) * a;
	float *got = malloc(ny * 4), *want = malloc(ny * 4);
	int ret = 0;
	for (uint32_t l = 0; l < 3; l++) {
		size_t hw = (size_t)d.h[l] * d.w[l], nf = (size_t)d.n * sl[l].c_total * hw;
		lv[l] = rnd(nf, 90 + l, 6); // logits of a few units, like a trained head
		packed[l] = malloc((size_t)d.n * no * hw * 4);
		for (uint32_t n = 0; n < d.n; n++)
			memcpy(packed[l] + (size_t)n * no * hw, lv[l] + ((size_t)n * sl[l].c_total + sl[l].c_off) * hw,
			       no * hw * 4);
		if (!ret)
			ret = upload(lv[l], nf * 4, &bl[l]);
	}
	if (!ret)
		ret = gpu_buf_create(pool, ny * 4, &by);
	if (!ret)
		ret = gpu_seq_create(g.dev, &seq);
	if (!ret)
		ret = gpu_seq_begin(seq, false);
	struct gpu_binding b[3] = { { .buf = bl[0] }, { .buf = bl[1] }, { .buf = bl[2] } };
	if (!ret)
		ret = nn_detect_decode_record(g.dev, seq, &d, sl, b, &(struct gpu_binding){ .buf = by }, "decode");
	if (!ret)
		ret = run_seq(seq, by, got, ny);
	nn_decode_forward_ref(&d, (const float *const *)packed, want);
	int fail = ret || !test_close_f32("decode", got, want, ny, DEC_ATOL, DEC_RTOL);
	gpu_seq_destroy(&seq);
	for (int l = 0; l < 3; l++) {
		gpu_buf_destroy(&bl[l]);
		free(lv[l]), free(packed[l]);
	}
	gpu_buf_destroy(&by);
	free(got), free(want);
	return fail;
}

int main(void)
{
	int fails = 0, ret = test_gpu_open(&g);
	if (ret)
		return ret;
	if (gpu_pool_create(g.dev, &(struct gpu_pool_params){ .kind = GPU_POOL_DEVICE, .name = "ops" }, &pool)) {
		test_gpu_close(&g);
		return 1;
	}
	TEST_RUN(fails, check_conv);
	TEST_RUN(fails, check_pools);
	TEST_RUN(fails, check_resize);
	TEST_RUN(fails, check_input_u8);
	TEST_RUN(fails, check_decode);
	gpu_pool_destroy(&pool);
	fails += test_gpu_close(&g);
	return fails ? 1 : 0;
}
