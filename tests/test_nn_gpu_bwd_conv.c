// The convolution's GPU training kernels (nn/layers_train.h, "convolution") against the CPU
// references: GPU weight packing bit-equal to nn_conv2d_pack for every tile variant; the data
// gradient against nn_conv2d_backward_data_ref and the weight/bias gradient against
// nn_conv2d_backward_weight_ref on odd shapes (batch 3, H != W, stride 2, groups, depthwise, 1x1,
// 5x3 kernels, avg pool before, x/dx as channel slices at non-zero offsets, dx pre-filled with noise
// so += and writes outside the slice are checked, dw/db accumulate on and off); the weight gradient
// run twice must repeat bit for bit, and the two tile sets give the same bits. Includes gelan-t's
// shapes whose backward was once slow. Prints a timing on a realistic shape (not asserted);
// VKYOLO_BWD_BENCH="n,c_in,h,w,c_out,k,stride,avg[,runs]" times only that shape (benchmarks).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "layers_train.h"

// The GPU sums in fp32 in another order than the references (data: float scatter; weight: double),
// over up to ~1000 products of O(1) values: a few ulp of the partial sums, far below 1e-5 absolute
// + 1e-4 relative, which any indexing error exceeds by orders of magnitude.
#define BWD_ATOL 1e-5f
#define BWD_RTOL 1e-4f

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

static struct gpu_binding B(struct gpu_buf *b)
{
	return (struct gpu_binding){ .buf = b };
}
#define BP(b) (&(struct gpu_binding){ .buf = (b) })

static void describe(const struct nn_conv2d_desc *d, char *s, size_t n)
{
	snprintf(s, n, "n%u c%u->%u %ux%u k%ux%u s%u p%u g%u avg%d x_slice %u+%u", d->n, d->c_in, d->c_out, d->h_in,
	         d->w_in, d->k_h, d->k_w, d->stride, d->pad, d->groups, d->avgpool_before, d->x_c_total, d->x_c_off);
}

static const struct nn_conv2d_desc cases[] = {
	// the brief's odd shape: 5 -> 7, 3x3 s2 p1 on 9x11, batch 3
	{ .n = 3, .c_in = 5, .h_in = 9, .w_in = 11, .c_out = 7, .k_h = 3, .k_w = 3, .stride = 2, .pad = 1, .groups = 1 },
	// 1x1 s1, x as a slice at an odd offset, many input channels (several channel blocks)
	{ .n = 2, .c_in = 19, .h_in = 5, .w_in = 7, .c_out = 12, .k_h = 1, .k_w = 1, .stride = 1, .groups = 1,
	  .x_c_total = 30, .x_c_off = 7 },
	// groups 2, 3x3 s1, non-square
	{ .n = 2, .c_in = 6, .h_in = 6, .w_in = 10, .c_out = 10, .k_h = 3, .k_w = 3, .stride = 1, .pad = 1, .groups = 2 },
	// depthwise, s2
	{ .n = 1, .c_in = 6, .h_in = 7, .w_in = 8, .c_out = 6, .k_h = 3, .k_w = 3, .stride = 2, .pad = 1, .groups = 6 },
	// ADown/AConv: avg pool 2x2 s1 before a 3x3 s2, x slice
	{ .n = 3, .c_in = 5, .h_in = 12, .w_in = 9, .c_out = 7, .k_h = 3, .k_w = 3, .stride = 2, .pad = 1, .groups = 1,
	  .avgpool_before = true, .x_c_total = 9, .x_c_off = 3 },
	// avg pool before a 1x1 s1
	{ .n = 2, .c_in = 9, .h_in = 6, .w_in = 13, .c_out = 4, .k_h = 1, .k_w = 1, .stride = 1, .groups = 1,
	  .avgpool_before = true },
	// avg pool before a 3x3 s1 with groups
	{ .n = 1, .c_in = 4, .h_in = 8, .w_in = 7, .c_out = 6, .k_h = 3, .k_w = 3, .stride = 1, .pad = 1, .groups = 2,
	  .avgpool_before = true },
	// stem: 3 -> 16, 3x3 s2 on an odd image
	{ .n = 2, .c_in = 3, .h_in = 13, .w_in = 17, .c_out = 16, .k_h = 3, .k_w = 3, .stride = 2, .pad = 1, .groups = 1 },
	// 5x3 kernel, pad 2, single channels, wider than the tiles
	{ .n = 2, .c_in = 1, .h_in = 9, .w_in = 21, .c_out = 1, .k_h = 5, .k_w = 3, .stride = 1, .pad = 2, .groups = 1 },
	// 1x1 s2 (odd), no padding
	{ .n = 2, .c_in = 17, .h_in = 7, .w_in = 5, .c_out = 3, .k_h = 1, .k_w = 1, .stride = 2, .groups = 1 },
	// 3x3 s2 p0 (taps near the border unused), stride 3
	{ .n = 1, .c_in = 2, .h_in = 11, .w_in = 10, .c_out = 5, .k_h = 3, .k_w = 3, .stride = 3, .pad = 0, .groups = 1 },
	// wide rows: several column tiles of every tile set, with the pool (s2 and s1) and without
	{ .n = 2, .c_in = 3, .h_in = 6, .w_in = 37, .c_out = 4, .k_h = 3, .k_w = 3, .stride = 2, .pad = 1, .groups = 1,
	  .avgpool_before = true },
	{ .n = 1, .c_in = 2, .h_in = 5, .w_in = 35, .c_out = 3, .k_h = 3, .k_w = 3, .stride = 1, .pad = 1, .groups = 1,
	  .avgpool_before = true },
	// pad 2 > k/2 with stride 2; 1x1 with pad 1; an even 2x2 s2 kernel
	{ .n = 1, .c_in = 4, .h_in = 7, .w_in = 30, .c_out = 4, .k_h = 3, .k_w = 3, .stride = 2, .pad = 2, .groups = 1 },
	{ .n = 1, .c_in = 3, .h_in = 5, .w_in = 6, .c_out = 2, .k_h = 1, .k_w = 1, .stride = 1, .pad = 1, .groups = 1 },
	{ .n = 2, .c_in = 3, .h_in = 8, .w_in = 9, .c_out = 5, .k_h = 2, .k_w = 2, .stride = 2, .pad = 0, .groups = 1 },
	// mid-size RepNCSP-like conv: 40 -> 36, 3x3, x slice
	{ .n = 2, .c_in = 40, .h_in = 8, .w_in = 9, .c_out = 36, .k_h = 3, .k_w = 3, .stride = 1, .pad = 1, .groups = 1,
	  .x_c_total = 80, .x_c_off = 40 },
	// gelan-t at 320 whose backward was once far slower than its forward (see check_weight_long):
	// AConv model.19.cv1 (avg pool, 96 -> 64 3x3 s2 at 20x20), model.1 (16 -> 32 3x3 s2 at
	// 160x160), the head's class conv model.22.cv3.2.2 (1x1 80 -> 80 at 10x10)
	{ .n = 2, .c_in = 96, .h_in = 20, .w_in = 20, .c_out = 64, .k_h = 3, .k_w = 3, .stride = 2, .pad = 1, .groups = 1,
	  .avgpool_before = true },
	{ .n = 1, .c_in = 16, .h_in = 160, .w_in = 160, .c_out = 32, .k_h = 3, .k_w = 3, .stride = 2, .pad = 1,
	  .groups = 1 },
	{ .n = 2, .c_in = 80, .h_in = 10, .w_in = 10, .c_out = 80, .k_h = 1, .k_w = 1, .stride = 1, .groups = 1 },
};
#define NREAL 3 // the last NREAL cases
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static size_t x_floats(const struct nn_conv2d_desc *d)
{
	return (size_t)d->n * (d->x_c_total ? d->x_c_total : d->c_in) * d->h_in * d->w_in;
}

static size_t dz_floats(const struct nn_conv2d_desc *d)
{
	return (size_t)d->n * d->c_out * nn_conv2d_out_h(d) * nn_conv2d_out_w(d);
}

static size_t w_floats(const struct nn_conv2d_desc *d)
{
	return (size_t)d->c_out * (d->c_in / d->groups) * d->k_h * d->k_w;
}

// ---- packing -----------------------------------------------------------------------------------

static int pack_one(const struct nn_conv2d_desc *d, struct nn_conv2d_tile t, bool has_bias, unsigned seed)
{
	size_t nw = w_floats(d), nwp = nn_conv2d_packed_weight_floats(d, &t), nbp = nn_conv2d_packed_bias_floats(d, &t);
	float *w = rnd(nw, seed, 1), *b = rnd(d->c_out, seed + 1, 1);
	float *wp = malloc(nwp * 4), *bp = malloc(nbp * 4);
	float *gwp = rnd(nwp, seed + 2, 1), *gbp = rnd(nbp, seed + 3, 1); // noise: every float must be written
	nn_conv2d_pack(d, &t, w, has_bias ? b : NULL, wp, bp);
	struct gpu_buf *bw = NULL, *bb = NULL, *bwp = NULL, *bbp = NULL;
	struct gpu_seq *seq = NULL;
	int ret = upload(w, nw * 4, &bw);
	if (!ret)
		ret = upload(b, d->c_out * 4, &bb);
	if (!ret)
		ret = upload(gwp, nwp * 4, &bwp);
	if (!ret)
		ret = upload(gbp, nbp * 4, &bbp);
	if (!ret)
		ret = gpu_seq_create(g.dev, &seq);
	if (!ret)
		ret = gpu_seq_begin(seq, false);
	struct gpu_binding xw = B(bw), xb = B(bb), xwp = B(bwp), xbp = B(bbp);
	if (!ret)
		ret = nn_conv2d_pack_record(g.dev, seq, d, &t, &xw, has_bias ? &xb : NULL, &xwp, &xbp, "pack");
	if (!ret)
		ret = gpu_seq_end(seq);
	if (!ret)
		ret = gpu_seq_run(seq);
	if (!ret)
		ret = gpu_buf_download(bwp, 0, gwp, nwp * 4);
	if (!ret)
		ret = gpu_buf_download(bbp, 0, gbp, nbp * 4);
	int fail = ret != 0;
	if (!ret && (memcmp(gwp, wp, nwp * 4) || memcmp(gbp, bp, nbp * 4))) {
		char s[160];
		describe(d, s, sizeof(s));
		size_t i = 0;
		while (i < nwp && !memcmp(&gwp[i], &wp[i], 4))
			i++;
		printf("pack %s tile v%d %ux%u bias %d: first differing weight float %zu of %zu (%g vs %g)\n", s,
		       t.variant, t.ocb, t.px, has_bias, i, nwp, i < nwp ? gwp[i] : 0.0, i < nwp ? wp[i] : 0.0);
		fail = 1;
	}
	gpu_seq_destroy(&seq);
	gpu_buf_destroy(&bw), gpu_buf_destroy(&bb), gpu_buf_destroy(&bwp), gpu_buf_destroy(&bbp);
	free(w), free(b), free(wp), free(bp), free(gwp), free(gbp);
	return fail;
}

static int check_pack(void)
{
	const struct gpu_device_info *info = gpu_device_info(g.dev);
	int fails = 0;
	for (size_t i = 0; i < NCASES; i++) {
		struct nn_conv2d_tile tiles[8] = {
			{ NN_CONV2D_DIRECT, 16, 8 }, { NN_CONV2D_DIRECT, 4, 3 }, { NN_CONV2D_1X1, 16, 16 },
			{ NN_CONV2D_1X1, 8, 4 },     { NN_CONV2D_SG, 32, 3 },    { NN_CONV2D_SG, 4, 1 },
			{ NN_CONV2D_SG, 12, 5 },
		};
		nn_conv2d_choose_tile(info, &cases[i], &tiles[7]);
		for (int k = 0; k < 8; k++)
			fails += pack_one(&cases[i], tiles[k], (k + i) % 2 == 0, 100 + 11 * (unsigned)i + (unsigned)k);
	}
	return fails;
}

// ---- data gradient ------------------------------------------------------------------------------

// One data-gradient run: dz, w and dx (pre-set to init) on the device and a sequence begun; the
// caller records into r.seq, then data_run_finish ends, runs, downloads dx into got and frees.
struct data_run {
	struct gpu_buf *bz, *bw, *bx;
	struct gpu_seq *seq;
};

static int data_run_begin(const struct nn_conv2d_desc *d, const float *dz, const float *w, const float *init,
                          struct data_run *r)
{
	*r = (struct data_run){ 0 };
	int ret = upload(dz, dz_floats(d) * 4, &r->bz);
	if (!ret)
		ret = upload(w, w_floats(d) * 4, &r->bw);
	if (!ret)
		ret = upload(init, x_floats(d) * 4, &r->bx);
	if (!ret)
		ret = gpu_seq_create(g.dev, &r->seq);
	return ret ? ret : gpu_seq_begin(r->seq, false);
}

static int data_run_finish(struct data_run *r, int ret, const struct nn_conv2d_desc *d, float *got)
{
	if (!ret)
		ret = gpu_seq_end(r->seq);
	if (!ret)
		ret = gpu_seq_run(r->seq);
	if (!ret)
		ret = gpu_buf_download(r->bx, 0, got, x_floats(d) * 4);
	gpu_seq_destroy(&r->seq);
	gpu_buf_destroy(&r->bz), gpu_buf_destroy(&r->bw), gpu_buf_destroy(&r->bx);
	return ret;
}

// The data gradient through the forward convolution of the transposed, rotated weights
// (nn_conv2d_bwd_data_as_conv), dx pre-set to init; 1 when the device does not take that path.
static int as_conv_checked; // data-gradient cases checked through the forward convolution

static int data_as_conv(const struct nn_conv2d_desc *d, const float *dz, const float *w, const float *init,
                        float *got)
{
	struct nn_conv2d_desc t;
	struct nn_conv2d_tile tile;
	if (!nn_conv2d_bwd_data_as_conv(gpu_device_info(g.dev), d, &t))
		return 1;
	nn_conv2d_choose_tile(gpu_device_info(g.dev), &t, &tile);
	size_t wp_bytes = nn_conv2d_packed_weight_floats(&t, &tile) * 4, bp_bytes = nn_conv2d_packed_bias_floats(&t, &tile) * 4;
	struct gpu_buf *bwp = NULL, *bbp = NULL;
	struct data_run r;
	int ret = data_run_begin(d, dz, w, init, &r);
	if (!ret)
		ret = gpu_buf_create(pool, wp_bytes, &bwp);
	if (!ret)
		ret = gpu_buf_create(pool, bp_bytes, &bbp);
	if (!ret)
		ret = nn_conv2d_pack_transposed_record(g.dev, r.seq, &t, &tile, BP(r.bw), BP(bwp), BP(bbp), "pack_t");
	if (!ret)
		ret = nn_conv2d_record(g.dev, r.seq, &t, &tile, true, BP(r.bz), BP(bwp), BP(bbp), BP(r.bx), BP(r.bx),
		                       "dgrad_conv");
	ret = data_run_finish(&r, ret, d, got);
	gpu_buf_destroy(&bwp), gpu_buf_destroy(&bbp);
	return ret ? -1 : 0;
}

// The two-pass data gradient of a pooled convolution (nn_conv2d_bwd_data_pooled_record), dx pre-set
// to init, the scratch holding garbage; 1 when d has no pool.
static int pooled_checked;

static int data_pooled(const struct nn_conv2d_desc *d, const float *dz, const float *w, const float *init,
                       float *got)
{
	size_t scratch = nn_conv2d_bwd_data_pooled_scratch_bytes(d);
	if (!scratch)
		return 1;
	float *junk = rnd(scratch / 4, 99, 1);
	struct gpu_buf *bs = NULL;
	struct data_run r;
	int ret = junk ? data_run_begin(d, dz, w, init, &r) : -1;
	if (!ret)
		ret = upload(junk, scratch, &bs);
	if (!ret)
		ret = nn_conv2d_bwd_data_pooled_record(g.dev, r.seq, d, BP(r.bz), BP(r.bw), BP(bs), BP(r.bx), "dgrad_pooled");
	ret = data_run_finish(&r, ret, d, got);
	gpu_buf_destroy(&bs);
	free(junk);
	return ret ? -1 : 0;
}

static int data_one(const struct nn_conv2d_desc *d, unsigned seed)
{
	size_t nx = x_floats(d), nz = dz_floats(d), nw = w_floats(d);
	float *dz = rnd(nz, seed, 1), *w = rnd(nw, seed + 1, 1.0f / sqrtf((float)(nw / d->c_out)));
	float *want = rnd(nx, seed + 2, 1), *got = malloc(nx * 4); // dx pre-filled with noise: += is checked
	float *init = rnd(nx, seed + 2, 1);
	struct data_run r;
	int ret = data_run_begin(d, dz, w, init, &r);
	if (!ret)
		ret = nn_conv2d_bwd_data_record(g.dev, r.seq, d, BP(r.bz), BP(r.bw), BP(r.bx), "bwd_data");
	ret = data_run_finish(&r, ret, d, got);
	int fail = ret != 0;
	if (!ret) {
		nn_conv2d_backward_data_ref(d, dz, w, want);
		char s[160] = "bwd_data ";
		describe(d, s + 9, sizeof(s) - 9);
		fail = !test_close_f32(s, got, want, nx, BWD_ATOL, BWD_RTOL);
		int as_conv = data_as_conv(d, dz, w, init, got);
		if (as_conv == 0) {
			memcpy(s, "as conv ", 8);
			fail |= !test_close_f32(s, got, want, nx, BWD_ATOL, BWD_RTOL);
			as_conv_checked++;
		}
		fail |= as_conv < 0;
		int pooled = data_pooled(d, dz, w, init, got);
		if (pooled == 0) {
			memcpy(s, "2 passes ", 9);
			fail |= !test_close_f32(s, got, want, nx, BWD_ATOL, BWD_RTOL);
			pooled_checked++;
		}
		fail |= pooled < 0;
	}
	free(dz), free(w), free(want), free(got), free(init);
	return fail;
}

static int check_data(void)
{
	int fails = 0;
	for (size_t i = 0; i < NCASES; i++)
		fails += data_one(&cases[i], 200 + 13 * (unsigned)i);
	// on CPU devices with the subgroup kernel the stride-1 same-size cases also go through the
	// forward convolution: 1x1 with an x slice, 3x3 with groups, 3x3 with a slice, 1x1 80 -> 80
	const struct gpu_device_info *info = gpu_device_info(g.dev);
	if (info->type == GPU_DEVICE_TYPE_CPU && info->subgroup_size == 8 && info->subgroup_shuffle && as_conv_checked < 4) {
		printf("bwd_data as conv: only %d cases took that path\n", as_conv_checked);
		fails++;
	}
	if (pooled_checked < 6) { // the pooled cases: s2 with a slice, 1x1, groups, wide rows (2), AConv
		printf("bwd_data in 2 passes: only %d cases\n", pooled_checked);
		fails++;
	}
	return fails;
}

// ---- weight gradient ----------------------------------------------------------------------------

// Runs the weight gradient with dw/db pre-set to init_w/init_b; returns them in got_w/got_b (db
// skipped when init_b is NULL).
static int wgrad_run(const struct nn_conv2d_desc *d, const float *x, const float *dz, const float *init_w,
                     const float *init_b, bool accumulate, float *got_w, float *got_b)
{
	size_t nx = x_floats(d), nz = dz_floats(d), nw = w_floats(d);
	size_t scratch = nn_conv2d_bwd_weight_scratch_bytes(gpu_device_info(g.dev), d);
	struct gpu_buf *bx = NULL, *bz = NULL, *bs = NULL, *bw = NULL, *bb = NULL;
	struct gpu_seq *seq = NULL;
	int ret = upload(x, nx * 4, &bx);
	if (!ret)
		ret = upload(dz, nz * 4, &bz);
	if (!ret)
		ret = gpu_buf_create(pool, scratch ? scratch : 4, &bs);
	if (!ret)
		ret = upload(init_w, nw * 4, &bw);
	if (!ret && init_b)
		ret = upload(init_b, d->c_out * 4, &bb);
	if (!ret)
		ret = gpu_seq_create(g.dev, &seq);
	if (!ret)
		ret = gpu_seq_begin(seq, false);
	struct gpu_binding xb = B(bb);
	if (!ret)
		ret = nn_conv2d_bwd_weight_record(g.dev, seq, d, BP(bx), BP(bz), BP(bs), BP(bw), init_b ? &xb : NULL,
		                                  accumulate, "bwd_weight");
	if (!ret)
		ret = gpu_seq_end(seq);
	if (!ret)
		ret = gpu_seq_run(seq);
	if (!ret)
		ret = gpu_buf_download(bw, 0, got_w, nw * 4);
	if (!ret && init_b)
		ret = gpu_buf_download(bb, 0, got_b, d->c_out * 4);
	gpu_seq_destroy(&seq);
	gpu_buf_destroy(&bx), gpu_buf_destroy(&bz), gpu_buf_destroy(&bs), gpu_buf_destroy(&bw), gpu_buf_destroy(&bb);
	return ret;
}

static int weight_one(const struct nn_conv2d_desc *d, unsigned seed, bool accumulate, bool with_db)
{
	size_t nx = x_floats(d), nz = dz_floats(d), nw = w_floats(d);
	float *x = rnd(nx, seed, 1), *dz = rnd(nz, seed + 1, 1);
	float *init_w = rnd(nw, seed + 2, 1), *init_b = rnd(d->c_out, seed + 3, 1);
	float *want_w = malloc(nw * 4), *want_b = malloc(d->c_out * 4);
	float *got_w = malloc(nw * 4), *got_b = malloc(d->c_out * 4), *again_w = malloc(nw * 4);
	float *again_b = malloc(d->c_out * 4);
	int ret = wgrad_run(d, x, dz, init_w, with_db ? init_b : NULL, accumulate, got_w, got_b);
	int fail = ret != 0;
	char s[200];
	int len = snprintf(s, sizeof(s), "bwd_weight acc%d db%d ", accumulate, with_db);
	describe(d, s + len, sizeof(s) - (size_t)len);
	if (!ret) {
		nn_conv2d_backward_weight_ref(d, x, dz, want_w, want_b);
		for (size_t i = 0; accumulate && i < nw; i++)
			want_w[i] += init_w[i];
		for (uint32_t i = 0; accumulate && i < d->c_out; i++)
			want_b[i] += init_b[i];
		fail = !test_close_f32(s, got_w, want_w, nw, BWD_ATOL, BWD_RTOL);
		if (with_db)
			fail |= !test_close_f32(s, got_b, want_b, d->c_out, BWD_ATOL, BWD_RTOL);
	}
	// determinism: a second run from the same inputs repeats bit for bit
	if (!fail && !accumulate) {
		ret = wgrad_run(d, x, dz, init_w, with_db ? init_b : NULL, accumulate, again_w, again_b);
		if (ret || memcmp(again_w, got_w, nw * 4) || (with_db && memcmp(again_b, got_b, d->c_out * 4))) {
			printf("%s: second run differs (ret %d)\n", s, ret);
			fail = 1;
		}
	}
	free(x), free(dz), free(init_w), free(init_b), free(want_w), free(want_b), free(got_w), free(got_b);
	free(again_w), free(again_b);
	return fail;
}

static int check_weight(void)
{
	int fails = 0;
	for (size_t i = 0; i < NCASES; i++) {
		fails += weight_one(&cases[i], 300 + 17 * (unsigned)i, false, true);
		fails += weight_one(&cases[i], 400 + 17 * (unsigned)i, true, i % 2 == 0);
	}
	return fails;
}

// The two tile sets (this device class's and the other's) must give the same bits: the chunks
// alone fix the summation order. On a long reduction, 8 x 64 x 64 outputs per weight into a
// 16x3x3x3 tensor (the stem's shape: many chunks, also checked against the reference), and on the
// real shapes at the end of cases[] (multi-row chunks, the pooled path).
static int same_bits(const struct nn_conv2d_desc *d, unsigned seed)
{
	size_t nx = x_floats(d), nz = dz_floats(d), nw = w_floats(d), nb = d->c_out;
	float *x = rnd(nx, seed, 1), *dz = rnd(nz, seed + 1, 1), *init = rnd(nw, seed + 2, 1), *b = rnd(nb, seed + 3, 1);
	float *w1 = malloc(nw * 4), *w2 = malloc(nw * 4), *b1 = malloc(nb * 4), *b2 = malloc(nb * 4);
	bool cpu = gpu_device_info(g.dev)->type == GPU_DEVICE_TYPE_CPU;
	int fail = 0, ret = wgrad_run(d, x, dz, init, b, false, w1, b1);
	setenv("VKYOLO_CONV_BWD_TILE", cpu ? "gpu" : "cpu", 1);
	if (!ret)
		ret = wgrad_run(d, x, dz, init, b, false, w2, b2);
	unsetenv("VKYOLO_CONV_BWD_TILE");
	if (ret || memcmp(w1, w2, nw * 4) || memcmp(b1, b2, nb * 4)) {
		char s[160];
		describe(d, s, sizeof(s));
		printf("bwd_weight %s: the two tile sets differ (ret %d)\n", s, ret);
		fail = 1;
	}
	free(x), free(dz), free(init), free(b), free(w1), free(w2), free(b1), free(b2);
	return fail;
}

static int check_weight_long(void)
{
	const struct nn_conv2d_desc d = { .n = 8, .c_in = 3, .h_in = 128, .w_in = 128, .c_out = 16, .k_h = 3, .k_w = 3,
	                                  .stride = 2, .pad = 1, .groups = 1 };
	int fails = weight_one(&d, 555, false, true) + same_bits(&d, 555);
	for (size_t i = NCASES - NREAL; i < NCASES; i++)
		fails += same_bits(&cases[i], 600 + 7 * (unsigned)i);
	return fails;
}

// The same checks with the other device class's register tiles forced (VKYOLO_CONV_BWD_TILE), so
// both tile sets are tested whatever the device.
static int check_other_tiles(void)
{
	bool cpu = gpu_device_info(g.dev)->type == GPU_DEVICE_TYPE_CPU;
	setenv("VKYOLO_CONV_BWD_TILE", cpu ? "gpu" : "cpu", 1);
	int fails = check_data() + check_weight();
	unsetenv("VKYOLO_CONV_BWD_TILE");
	return fails;
}

// ---- timing (printed, not asserted) ---------------------------------------------------------------

// Times pack, forward, data, weight partials and reduce on d; the sequence runs `runs` times (the
// first run on lavapipe includes the JIT compile of each new kernel variant), the last is printed.
static int timing_one(const struct nn_conv2d_desc d, int runs)
{
	size_t nx = x_floats(&d), nz = dz_floats(&d), nw = w_floats(&d);
	size_t scratch = nn_conv2d_bwd_weight_scratch_bytes(gpu_device_info(g.dev), &d);
	float *x = rnd(nx, 1, 1), *dz = rnd(nz, 2, 1), *w = rnd(nw, 3, 0.05f);
	struct gpu_buf *bx = NULL, *bdx = NULL, *bz = NULL, *bw = NULL, *bdw = NULL, *bdb = NULL, *bs = NULL;
	struct gpu_seq *seq = NULL;
	int ret = upload(x, nx * 4, &bx);
	if (!ret)
		ret = upload(x, nx * 4, &bdx);
	if (!ret)
		ret = upload(dz, nz * 4, &bz);
	if (!ret)
		ret = upload(w, nw * 4, &bw);
	if (!ret)
		ret = gpu_buf_create(pool, nw * 4, &bdw);
	if (!ret)
		ret = gpu_buf_create(pool, d.c_out * 4, &bdb);
	if (!ret)
		ret = gpu_buf_create(pool, scratch, &bs);
	if (!ret)
		ret = gpu_seq_create(g.dev, &seq);
	if (!ret)
		ret = gpu_seq_begin(seq, true);
	// the forward of the same conv on the device's own tile, for scale
	struct nn_conv2d_tile t;
	nn_conv2d_choose_tile(gpu_device_info(g.dev), &d, &t);
	struct gpu_buf *bwp = NULL, *bbp = NULL, *by = NULL;
	if (!ret)
		ret = gpu_buf_create(pool, nn_conv2d_packed_weight_floats(&d, &t) * 4, &bwp);
	if (!ret)
		ret = gpu_buf_create(pool, nn_conv2d_packed_bias_floats(&d, &t) * 4, &bbp);
	if (!ret)
		ret = gpu_buf_create(pool, nz * 4, &by);
	if (!ret)
		ret = nn_conv2d_pack_record(g.dev, seq, &d, &t, BP(bw), NULL, BP(bwp), BP(bbp), "pack");
	if (!ret)
		ret = nn_conv2d_record(g.dev, seq, &d, &t, false, BP(bx), BP(bwp), BP(bbp), NULL, BP(by), "forward");
	struct gpu_binding xdb = B(bdb);
	if (!ret)
		ret = nn_conv2d_bwd_data_record(g.dev, seq, &d, BP(bz), BP(bw), BP(bdx), "data");
	if (!ret)
		ret = nn_conv2d_bwd_weight_record(g.dev, seq, &d, BP(bx), BP(bz), BP(bs), BP(bdw), &xdb, false, "weight");
	if (!ret)
		ret = gpu_seq_end(seq);
	for (int r = 0; r < runs && !ret; r++)
		ret = gpu_seq_run(seq);
	struct gpu_timing tm[8];
	uint32_t nt = 0;
	if (!ret && gpu_device_info(g.dev)->timestamps)
		ret = gpu_seq_timings(seq, tm, 8, &nt);
	double gflop = 2.0 * d.n * d.c_out * nn_conv2d_out_h(&d) * nn_conv2d_out_w(&d) * (d.c_in / d.groups) * d.k_h *
	               d.k_w * 1e-9; // of one conv pass
	char s[160];
	describe(&d, s, sizeof(s));
	printf("timing on %s, %s (%.3f GFLOP per conv pass), weight scratch %zu bytes, run %d:\n",
	       gpu_device_info(g.dev)->name, s, gflop, scratch, runs);
	// dispatches: pack, forward, data, weight partials, weight reduce
	static const char *const what[5] = { "pack", "forward", "data", "weight", "w-reduce" };
	for (uint32_t i = 0; i < nt && i < 5; i++) {
		printf("  %-8s %9.3f ms", what[i], tm[i].ms);
		if (i >= 1 && i <= 3)
			printf("  %7.1f GFLOP/s", gflop / (tm[i].ms * 1e-3));
		printf("\n");
	}
	gpu_buf_destroy(&bwp), gpu_buf_destroy(&bbp), gpu_buf_destroy(&by);
	gpu_seq_destroy(&seq);
	gpu_buf_destroy(&bx), gpu_buf_destroy(&bdx), gpu_buf_destroy(&bz), gpu_buf_destroy(&bw);
	gpu_buf_destroy(&bdw), gpu_buf_destroy(&bdb), gpu_buf_destroy(&bs);
	free(x), free(dz), free(w);
	return ret != 0;
}

static int timing(void)
{
	// VKYOLO_BWD_BENCH="n,c_in,h,w,c_out,k,stride,avg[,runs]" times that shape instead (benchmarks).
	const char *e = getenv("VKYOLO_BWD_BENCH");
	unsigned v[9] = { 0, 0, 0, 0, 0, 0, 0, 0, 2 };
	if (e && sscanf(e, "%u,%u,%u,%u,%u,%u,%u,%u,%u", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8]) >= 8)
		return timing_one((struct nn_conv2d_desc){ .n = v[0], .c_in = v[1], .h_in = v[2], .w_in = v[3], .c_out = v[4],
		                                           .k_h = v[5], .k_w = v[5], .stride = v[6], .pad = v[5] / 2,
		                                           .groups = 1, .avgpool_before = v[7] != 0 },
		                  (int)v[8]);
	return timing_one((struct nn_conv2d_desc){ .n = 2, .c_in = 64, .h_in = 80, .w_in = 80, .c_out = 64, .k_h = 3,
	                                           .k_w = 3, .stride = 1, .pad = 1, .groups = 1 },
	                  1);
}

int main(void)
{
	if (getenv("VKYOLO_BWD_BENCH")) { // benchmark only
		int ret = test_gpu_open(&g);
		if (ret)
			return ret;
		ret = gpu_pool_create(g.dev, &(struct gpu_pool_params){ .kind = GPU_POOL_DEVICE, .name = "bwd" }, &pool);
		if (!ret)
			ret = timing();
		gpu_pool_destroy(&pool);
		test_gpu_close(&g);
		return ret ? 1 : 0;
	}

	int fails = 0, ret = test_gpu_open(&g);
	if (ret)
		return ret;
	if (gpu_pool_create(g.dev, &(struct gpu_pool_params){ .kind = GPU_POOL_DEVICE, .name = "bwd" }, &pool)) {
		test_gpu_close(&g);
		return 1;
	}
	TEST_RUN(fails, check_pack);
	TEST_RUN(fails, check_data);
	TEST_RUN(fails, check_weight);
	TEST_RUN(fails, check_weight_long);
	TEST_RUN(fails, check_other_tiles);
	TEST_RUN(fails, timing);
	gpu_pool_destroy(&pool);
	fails += test_gpu_close(&g);
	return fails ? 1 : 0;
}
