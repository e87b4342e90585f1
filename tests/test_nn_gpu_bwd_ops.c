// The GPU training kernels of layers_train.h's "BatchNorm, activation, pools, resize" section against
// their C references (ref_bwd.h / ref.h) on awkward shapes: 5 and 7 channels, 7x9 and other
// non-square planes, batch 3, channel slices at non-zero offsets inside bigger tensors, residuals
// before / after the activation, act none / SiLU / sigmoid, accumulate on and off. Outputs that are
// added to (dx, dr, dgamma/dbeta with accumulate) are pre-filled with noise, and whole buffers are
// compared, so a write outside a slice or a '=' instead of '+=' fails. Reductions are run twice and
// must repeat bit for bit.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "layers_train.h"

// Element-wise results (BN apply, activation and its derivative, dz, pool / resize gathers): fp32
// with sqrt, exp and sums of <= 25 terms in another order than the references (which use double
// for the BN sums): a few ulp of O(1) values, so 1e-5 + 1e-4*|want| is > 10x margin, while any
// indexing, tie-breaking or formula error moves values by O(0.01..1).
#define TOL_ATOL 1e-5f
#define TOL_RTOL 1e-4f
// dgamma / dbeta: fp32 tree sums of m <= 200 O(1) terms; the rounding bound eps * sum|t| is ~1e-5
// and sums can cancel to ~0, so the absolute part is 1e-4.
#define SUM_ATOL 1e-4f
// Batch mean / variance: fp32 Chan/Welford merging is accurate to ~1e-6 relative even for
// m = 8*320*320 and a mean 10x the deviation; 1e-5 relative is what training needs.
#define STAT_ATOL 1e-6f
#define STAT_RTOL 1e-5f

static struct test_gpu g;
static struct gpu_pool *pool;

static float *rnd(size_t n, unsigned seed, float scale, float offset)
{
	return test_random_floats(n, seed, scale, offset);
}

static float *dup(const float *p, size_t n)
{
	float *q = malloc((n ? n : 1) * sizeof(float));
	memcpy(q, p, n * sizeof(float));
	return q;
}

// New buffer holding n floats of p (p NULL: uninitialised); skipped when *ret is already an error.
static struct gpu_buf *up(const float *p, size_t n, int *ret)
{
	struct gpu_buf *b = NULL;
	if (!*ret)
		*ret = gpu_buf_create(pool, n ? n * 4 : 4, &b);
	if (!*ret && p && n)
		*ret = gpu_buf_upload(b, 0, p, n * 4);
	return b;
}

static void down(struct gpu_buf *b, float *p, size_t n, int *ret)
{
	if (!*ret)
		*ret = gpu_buf_download(b, 0, p, n * 4);
}

static bool same_bits(const char *what, const float *a, const float *b, size_t n)
{
	if (!memcmp(a, b, n * sizeof(float)))
		return true;
	for (size_t i = 0; i < n; i++)
		if (memcmp(&a[i], &b[i], sizeof(float))) {
			printf("  %s: run 2 differs at %zu: %.9g vs %.9g\n", what, i, (double)a[i], (double)b[i]);
			break;
		}
	return false;
}

// test_close_f32, plus one line with the worst |got - want| and its share of the tolerance.
static bool close_f32(const char *what, const float *got, const float *want, size_t n, float atol, float rtol)
{
	double max_abs = 0, max_share = 0;
	for (size_t i = 0; i < n; i++) {
		double e = fabs((double)got[i] - want[i]), share = e / (atol + rtol * fabs(want[i]));
		max_abs = e > max_abs ? e : max_abs;
		max_share = share > max_share ? share : max_share;
	}
	printf("  %-58s max err %.2e (%.1f%% of tol)\n", what, max_abs, 100 * max_share);
	return test_close_f32(what, got, want, n, atol, rtol);
}

#define BIND(b) (&(struct gpu_binding){ .buf = (b) })

static int seq_new(struct gpu_seq **seq, int ret)
{
	if (!ret)
		ret = gpu_seq_create(g.dev, seq);
	if (!ret)
		ret = gpu_seq_begin(*seq, false);
	return ret;
}

static int seq_run(struct gpu_seq *seq, int ret)
{
	if (!ret)
		ret = gpu_seq_end(seq);
	if (!ret)
		ret = gpu_seq_run(seq);
	return ret;
}

// ---- batch statistics -----------------------------------------------------------------------

static int stats_one(const struct nn_bn_desc *d, float offset, unsigned seed)
{
	size_t nz = (size_t)d->n * d->c * d->h * d->w;
	float *z = rnd(nz, seed, 1, offset), *mean = malloc(d->c * 4), *var = malloc(d->c * 4);
	float *wm = malloc(d->c * 4), *wv = malloc(d->c * 4), *m2 = malloc(d->c * 4), *v2 = malloc(d->c * 4);
	int ret = 0;
	size_t ns = nn_bn_stats_scratch_bytes(gpu_device_info(g.dev), d) / 4;
	struct gpu_buf *bz = up(z, nz, &ret), *bm = up(NULL, d->c, &ret), *bv = up(NULL, d->c, &ret);
	struct gpu_buf *bs = up(NULL, ns, &ret);
	struct gpu_seq *seq = NULL;
	ret = seq_new(&seq, ret);
	if (!ret)
		ret = nn_bn_stats_record(g.dev, seq, d, BIND(bz), BIND(bs), BIND(bm), BIND(bv), "stats");
	ret = seq_run(seq, ret);
	down(bm, mean, d->c, &ret), down(bv, var, d->c, &ret);
	if (!ret)
		ret = gpu_seq_run(seq);
	down(bm, m2, d->c, &ret), down(bv, v2, d->c, &ret);
	nn_bn_stats_ref(d, z, wm, wv);
	char what[96];
	snprintf(what, sizeof(what), "bn_stats n%u c%u %ux%u offset %g", d->n, d->c, d->h, d->w, (double)offset);
	int fail = ret != 0;
	if (!ret) {
		char w2[120];
		snprintf(w2, sizeof(w2), "%s mean", what);
		fail |= !close_f32(w2, mean, wm, d->c, STAT_ATOL, STAT_RTOL);
		snprintf(w2, sizeof(w2), "%s var", what);
		fail |= !close_f32(w2, var, wv, d->c, STAT_ATOL, STAT_RTOL);
		fail |= !same_bits("bn_stats mean", mean, m2, d->c) || !same_bits("bn_stats var", var, v2, d->c);
	}
	gpu_seq_destroy(&seq);
	gpu_buf_destroy(&bz), gpu_buf_destroy(&bm), gpu_buf_destroy(&bv), gpu_buf_destroy(&bs);
	free(z), free(mean), free(var), free(wm), free(wv), free(m2), free(v2);
	return fail;
}

static int check_bn_stats(void)
{
	int fails = 0;
	fails += stats_one(&(struct nn_bn_desc){ .n = 3, .c = 5, .h = 7, .w = 9 }, 0.2f, 1);
	fails += stats_one(&(struct nn_bn_desc){ .n = 1, .c = 3, .h = 1, .w = 1 }, 0, 2);   // m = 1: var 0
	fails += stats_one(&(struct nn_bn_desc){ .n = 2, .c = 7, .h = 1, .w = 5 }, -3, 3);  // fewer values than lanes
	fails += stats_one(&(struct nn_bn_desc){ .n = 3, .c = 2, .h = 40, .w = 37 }, 0, 4); // tails of the 4-way loop
	fails += stats_one(&(struct nn_bn_desc){ .n = 2, .c = 3, .h = 24, .w = 30 }, 1, 6); // vec4 path, short last chunk
	// the largest training plane (gelan at 640, batch 8): m = 819200, mean 10x the deviation
	fails += stats_one(&(struct nn_bn_desc){ .n = 8, .c = 2, .h = 320, .w = 320 }, 10, 5);
	return fails;
}

// ---- BN + activation forward and backward ---------------------------------------------------

struct bn_case {
	uint32_t n, c, h, w;
	enum nn_act act;
	bool res, res_before;
	uint32_t y_c_total, y_c_off, r_c_total, r_c_off;
};

static const struct bn_case bn_cases[] = {
	{ 3, 5, 7, 9, NN_ACT_SILU, false, false, 9, 2, 0, 0 },
	{ 2, 5, 7, 9, NN_ACT_NONE, true, false, 0, 0, 8, 1 },
	{ 3, 7, 5, 11, NN_ACT_SILU, true, true, 12, 3, 11, 4 },
	{ 1, 3, 9, 7, NN_ACT_SIGMOID, true, false, 0, 0, 0, 0 },
	{ 2, 4, 6, 6, NN_ACT_NONE, true, true, 6, 1, 0, 0 },
	{ 3, 5, 7, 9, NN_ACT_SILU, true, false, 6, 1, 5, 0 },
	{ 2, 3, 24, 20, NN_ACT_SILU, true, true, 5, 2, 4, 1 }, // hw % 4 == 0 (vec4 path), 2 reduce chunks per plane
};

// The conv op whose epilogue the case describes (the conv part itself is not used).
static struct nn_conv2d_desc bn_conv(const struct bn_case *c)
{
	return (struct nn_conv2d_desc){ .n = c->n, .c_in = c->c, .h_in = c->h, .w_in = c->w, .c_out = c->c,
	                                .k_h = 1, .k_w = 1, .stride = 1, .groups = 1, .act = c->act,
	                                .res_before_act = c->res_before, .y_c_total = c->y_c_total,
	                                .y_c_off = c->y_c_off, .r_c_total = c->r_c_total, .r_c_off = c->r_c_off };
}

// Reference epilogue: an identity depthwise 1x1 conv (weights 1, no bias: the output is u exactly)
// through nn_conv2d_forward_ref applies act and the residual with d's slices.
static void epilogue_ref(const struct nn_conv2d_desc *d, const float *u, const float *r, float *y)
{
	struct nn_conv2d_desc id = *d;
	id.groups = d->c_out;
	float *ones = rnd(d->c_out, 0, 0, 1);
	nn_conv2d_forward_ref(&id, u, ones, NULL, r, y);
	free(ones);
}

struct bn_data {
	size_t nz, ny, nr;
	float *z, *gamma, *beta, *mean, *var, *r;
};

static void bn_data_init(const struct bn_case *c, unsigned seed, struct bn_data *b)
{
	uint32_t yct = c->y_c_total ? c->y_c_total : c->c, rct = c->r_c_total ? c->r_c_total : c->c;
	size_t hw = (size_t)c->h * c->w;
	b->nz = c->n * c->c * hw, b->ny = c->n * yct * hw, b->nr = c->n * rct * hw;
	b->z = rnd(b->nz, seed, 2, 0.3f), b->r = rnd(b->nr, seed + 1, 1, 0);
	b->gamma = rnd(c->c, seed + 2, 0.5f, 1), b->beta = rnd(c->c, seed + 3, 0.5f, 0);
	b->mean = malloc(c->c * 4), b->var = malloc(c->c * 4);
	nn_bn_stats_ref(&(struct nn_bn_desc){ .n = c->n, .c = c->c, .h = c->h, .w = c->w }, b->z, b->mean, b->var);
}

static void bn_data_free(struct bn_data *b)
{
	free(b->z), free(b->gamma), free(b->beta), free(b->mean), free(b->var), free(b->r);
}

static const float bn_eps = 1e-3f;

static int bn_act_one(const struct bn_case *c, unsigned seed)
{
	struct nn_conv2d_desc d = bn_conv(c);
	struct bn_data b;
	bn_data_init(c, seed, &b);
	float *got = rnd(b.ny, seed + 5, 1, 0), *want = dup(got, b.ny), *u = malloc(b.nz * 4);
	int ret = 0;
	struct gpu_buf *bz = up(b.z, b.nz, &ret), *bg = up(b.gamma, c->c, &ret), *bb = up(b.beta, c->c, &ret);
	struct gpu_buf *bm = up(b.mean, c->c, &ret), *bv = up(b.var, c->c, &ret), *br = up(b.r, b.nr, &ret);
	struct gpu_buf *by = up(got, b.ny, &ret);
	struct gpu_seq *seq = NULL;
	ret = seq_new(&seq, ret);
	if (!ret)
		ret = nn_bn_act_record(g.dev, seq, &d, bn_eps, BIND(bz), BIND(bg), BIND(bb), BIND(bm), BIND(bv),
		                       c->res ? BIND(br) : NULL, BIND(by), "bn_act");
	ret = seq_run(seq, ret);
	down(by, got, b.ny, &ret);
	nn_bn_forward_ref(&(struct nn_bn_desc){ .n = c->n, .c = c->c, .h = c->h, .w = c->w, .eps = bn_eps }, b.z,
	                  b.gamma, b.beta, b.mean, b.var, u);
	epilogue_ref(&d, u, c->res ? b.r : NULL, want);
	char what[128];
	snprintf(what, sizeof(what), "bn_act n%u c%u %ux%u act%d res%d before%d", c->n, c->c, c->h, c->w, c->act,
	         c->res, c->res_before);
	int fail = ret || !close_f32(what, got, want, b.ny, TOL_ATOL, TOL_RTOL);
	gpu_seq_destroy(&seq);
	gpu_buf_destroy(&bz), gpu_buf_destroy(&bg), gpu_buf_destroy(&bb), gpu_buf_destroy(&bm);
	gpu_buf_destroy(&bv), gpu_buf_destroy(&br), gpu_buf_destroy(&by);
	bn_data_free(&b);
	free(got), free(want), free(u);
	return fail;
}

static int check_bn_act(void)
{
	int fails = 0;
	for (size_t i = 0; i < sizeof(bn_cases) / sizeof(bn_cases[0]); i++)
		fails += bn_act_one(&bn_cases[i], 100 + 10 * (unsigned)i);
	return fails;
}

static int check_bn_running(void)
{
	struct nn_bn_desc d = { .n = 3, .c = 5, .h = 7, .w = 9 };
	float *mean = rnd(5, 1, 1, 0), *var = rnd(5, 2, 0.5f, 1), *rm = rnd(5, 3, 1, 0), *rv = rnd(5, 4, 0.5f, 1);
	float *wm = dup(rm, 5), *wv = dup(rv, 5), got[10];
	int ret = 0;
	struct gpu_buf *bm = up(mean, 5, &ret), *bv = up(var, 5, &ret), *brm = up(rm, 5, &ret), *brv = up(rv, 5, &ret);
	struct gpu_seq *seq = NULL;
	ret = seq_new(&seq, ret);
	if (!ret)
		ret = nn_bn_running_update_record(g.dev, seq, &d, 0.03f, BIND(bm), BIND(bv), BIND(brm), BIND(brv), "run");
	ret = seq_run(seq, ret);
	down(brm, got, 5, &ret), down(brv, got + 5, 5, &ret);
	nn_bn_running_update_ref(&d, 0.03f, mean, var, wm, wv);
	// one multiply-add per value; the unbiasing factor is rounded to float once (1 ulp)
	int fail = ret || !close_f32("bn running mean", got, wm, 5, 1e-6f, 1e-6f) ||
	           !close_f32("bn running var", got + 5, wv, 5, 1e-6f, 1e-6f);
	gpu_seq_destroy(&seq);
	gpu_buf_destroy(&bm), gpu_buf_destroy(&bv), gpu_buf_destroy(&brm), gpu_buf_destroy(&brv);
	free(mean), free(var), free(rm), free(rv), free(wm), free(wv);
	return fail;
}

static int bn_bwd_one(const struct bn_case *c, bool accumulate, unsigned seed)
{
	struct nn_conv2d_desc d = bn_conv(c);
	struct bn_data b;
	bn_data_init(c, seed, &b);
	float *dy = rnd(b.ny, seed + 5, 1, 0), *dz = rnd(b.nz, seed + 6, 1, 0), *dr = rnd(b.nr, seed + 7, 1, 0);
	float *dg = rnd(c->c, seed + 8, 1, 0), *db = rnd(c->c, seed + 9, 1, 0);
	float *w_dr = dup(dr, b.nr), *w_dz = malloc(b.nz * 4), *w_dg = malloc(c->c * 4), *w_db = malloc(c->c * 4);
	float *u = malloc(b.nz * 4), *pre = malloc(b.nz * 4), *du = malloc(b.nz * 4);
	float *dz2 = malloc(b.nz * 4), *dg2 = malloc(c->c * 4), *db2 = malloc(c->c * 4);
	size_t ns = nn_bn_act_bwd_scratch_bytes(gpu_device_info(g.dev), &d) / 4;
	int ret = 0;
	struct gpu_buf *bz = up(b.z, b.nz, &ret), *bg = up(b.gamma, c->c, &ret), *bb = up(b.beta, c->c, &ret);
	struct gpu_buf *bm = up(b.mean, c->c, &ret), *bv = up(b.var, c->c, &ret), *br = up(b.r, b.nr, &ret);
	struct gpu_buf *bdy = up(dy, b.ny, &ret), *bs = up(NULL, ns, &ret), *bdz = up(dz, b.nz, &ret);
	struct gpu_buf *bdg = up(dg, c->c, &ret), *bdb = up(db, c->c, &ret), *bdr = up(dr, b.nr, &ret);
	struct gpu_seq *seq = NULL;
	ret = seq_new(&seq, ret);
	if (!ret)
		ret = nn_bn_act_bwd_record(g.dev, seq, &d, bn_eps, BIND(bz), BIND(bg), BIND(bb), BIND(bm), BIND(bv),
		                           c->res ? BIND(br) : NULL, BIND(bdy), BIND(bs), BIND(bdz), BIND(bdg),
		                           BIND(bdb), c->res ? BIND(bdr) : NULL, accumulate, "bn_act_bwd");
	ret = seq_run(seq, ret);
	down(bdz, dz, b.nz, &ret), down(bdg, dg2, c->c, &ret), down(bdb, db2, c->c, &ret), down(bdr, dr, b.nr, &ret);
	// second run: dz, and dgamma / dbeta when overwritten, must repeat bit for bit
	if (!ret)
		ret = gpu_seq_run(seq);
	down(bdz, dz2, b.nz, &ret);
	// reference: pre-activation u [+ r], then act/residual backward, then BN backward (train)
	struct nn_bn_desc bd = { .n = c->n, .c = c->c, .h = c->h, .w = c->w, .eps = bn_eps, .train = true };
	nn_bn_forward_ref(&bd, b.z, b.gamma, b.beta, b.mean, b.var, u);
	struct nn_conv2d_desc pd = d;
	pd.act = NN_ACT_NONE, pd.y_c_total = 0, pd.y_c_off = 0;
	epilogue_ref(&pd, u, c->res && c->res_before ? b.r : NULL, pre);
	nn_conv2d_act_backward_ref(&d, pre, dy, du, c->res ? w_dr : NULL);
	nn_bn_backward_ref(&bd, b.z, du, b.gamma, b.mean, b.var, w_dz, w_dg, w_db);
	for (uint32_t i = 0; accumulate && i < c->c; i++)
		w_dg[i] += dg[i], w_db[i] += db[i];
	char what[160];
	snprintf(what, sizeof(what), "bn_act_bwd n%u c%u %ux%u act%d res%d before%d acc%d", c->n, c->c, c->h, c->w,
	         c->act, c->res, c->res_before, accumulate);
	int fail = ret != 0;
	if (!ret) {
		printf("  %s\n", what);
		fail |= !close_f32("dz", dz, w_dz, b.nz, TOL_ATOL, TOL_RTOL);
		fail |= !close_f32("dgamma", dg2, w_dg, c->c, SUM_ATOL, TOL_RTOL);
		fail |= !close_f32("dbeta", db2, w_db, c->c, SUM_ATOL, TOL_RTOL);
		fail |= !close_f32("dr", dr, w_dr, b.nr, TOL_ATOL, TOL_RTOL);
		fail |= !same_bits("dz", dz, dz2, b.nz);
	}
	if (!ret && !accumulate) {
		down(bdg, dg, c->c, &ret), down(bdb, db, c->c, &ret);
		fail |= ret || !same_bits("dgamma", dg, dg2, c->c) || !same_bits("dbeta", db, db2, c->c);
	}
	gpu_seq_destroy(&seq);
	struct gpu_buf **bufs[] = { &bz, &bg, &bb, &bm, &bv, &br, &bdy, &bs, &bdz, &bdg, &bdb, &bdr };
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		gpu_buf_destroy(bufs[i]);
	bn_data_free(&b);
	free(dy), free(dz), free(dr), free(dg), free(db), free(w_dr), free(w_dz), free(w_dg), free(w_db);
	free(u), free(pre), free(du), free(dz2), free(dg2), free(db2);
	return fail;
}

static int check_bn_act_bwd(void)
{
	int fails = 0;
	for (size_t i = 0; i < sizeof(bn_cases) / sizeof(bn_cases[0]); i++)
		fails += bn_bwd_one(&bn_cases[i], i % 2 == 1, 200 + 10 * (unsigned)i);
	// a plane bigger than one reduce chunk (several partials per plane)
	const struct bn_case big = { 2, 3, 70, 61, NN_ACT_SILU, true, false, 5, 2, 0, 0 };
	fails += bn_bwd_one(&big, false, 300);
	fails += bn_bwd_one(&big, true, 310);
	return fails;
}

// ---- pools and resize -------------------------------------------------------------------------

// x_kind: 0 random, 1 quantised to 7 levels (many ties inside windows), 2 all equal (ties everywhere).
static int pool_one(const struct nn_pool2d_desc *d, bool is_max, int x_kind, unsigned seed)
{
	uint32_t ho = nn_pool_out_size(d->h_in, d->k, d->stride, d->pad);
	uint32_t wo = nn_pool_out_size(d->w_in, d->k, d->stride, d->pad);
	size_t nx = (size_t)d->n * (d->x_c_total ? d->x_c_total : d->c) * d->h_in * d->w_in;
	size_t ny = (size_t)d->n * (d->y_c_total ? d->y_c_total : d->c) * ho * wo;
	float *x = rnd(nx, seed, 1, 0), *dy = rnd(ny, seed + 1, 1, 0), *got = rnd(nx, seed + 2, 1, 0);
	for (size_t i = 0; i < nx; i++)
		x[i] = x_kind == 1 ? roundf(x[i] * 3) / 3 : x_kind == 2 ? 0.5f : x[i];
	float *want = dup(got, nx);
	int ret = 0;
	struct gpu_buf *bx = up(x, nx, &ret), *bdy = up(dy, ny, &ret), *bdx = up(got, nx, &ret);
	// the window-maxima scratch starts as garbage: the first pass must fill all of it
	size_t ns = nn_maxpool2d_bwd_scratch_bytes(d) / 4;
	float *junk = rnd(ns, seed + 3, 100, 0);
	struct gpu_buf *bs = up(junk, ns, &ret);
	struct gpu_seq *seq = NULL;
	ret = seq_new(&seq, ret);
	if (!ret)
		ret = is_max ? nn_maxpool2d_bwd_record(g.dev, seq, d, BIND(bx), BIND(bdy), BIND(bs), BIND(bdx), "maxpool_bwd")
		             : nn_avgpool2d_bwd_record(g.dev, seq, d, BIND(bdy), BIND(bdx), "avgpool_bwd");
	ret = seq_run(seq, ret);
	down(bdx, got, nx, &ret);
	if (is_max)
		nn_maxpool2d_backward_ref(d, x, dy, want);
	else
		nn_avgpool2d_backward_ref(d, dy, want);
	char what[128];
	snprintf(what, sizeof(what), "%s pool bwd n%u c%u %ux%u k%u s%u p%u x%d", is_max ? "max" : "avg", d->n, d->c,
	         d->h_in, d->w_in, d->k, d->stride, d->pad, x_kind);
	int fail = ret || !close_f32(what, got, want, nx, TOL_ATOL, TOL_RTOL);
	gpu_seq_destroy(&seq);
	gpu_buf_destroy(&bx), gpu_buf_destroy(&bdy), gpu_buf_destroy(&bdx), gpu_buf_destroy(&bs);
	free(x), free(dy), free(got), free(want), free(junk);
	return fail;
}

static int check_pools(void)
{
	const struct nn_pool2d_desc cases[] = {
		// SPPELAN 5x5 s1 p2, x and y slices inside bigger tensors
		{ .n = 3, .c = 5, .h_in = 7, .w_in = 9, .k = 5, .stride = 1, .pad = 2, .x_c_total = 9, .x_c_off = 2,
		  .y_c_total = 11, .y_c_off = 4 },
		{ .n = 2, .c = 5, .h_in = 9, .w_in = 7, .k = 3, .stride = 2, .pad = 1, .x_c_total = 7, .x_c_off = 1 }, // ADown
		{ .n = 3, .c = 5, .h_in = 7, .w_in = 9, .k = 2, .stride = 1, .pad = 0, .y_c_total = 6, .y_c_off = 1 }, // ADown avg
		{ .n = 1, .c = 7, .h_in = 8, .w_in = 5, .k = 3, .stride = 1, .pad = 1 },
		{ .n = 2, .c = 3, .h_in = 11, .w_in = 6, .k = 2, .stride = 2, .pad = 0 },
		{ .n = 1, .c = 2, .h_in = 13, .w_in = 10, .k = 5, .stride = 3, .pad = 2 },
	};
	int fails = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned seed = 400 + 10 * (unsigned)i;
		fails += pool_one(&cases[i], false, 0, seed);
		for (int kind = 0; kind < 3; kind++)
			fails += pool_one(&cases[i], true, kind, seed + 3 + (unsigned)kind);
	}
	return fails;
}

static int check_resize(void)
{
	const struct nn_resize_desc cases[] = {
		{ .n = 2, .c = 3, .h_in = 5, .w_in = 7, .h_out = 10, .w_out = 14, .x_c_total = 5, .x_c_off = 1,
		  .y_c_total = 8, .y_c_off = 4 },                                                   // Upsample x2
		{ .n = 1, .c = 5, .h_in = 7, .w_in = 9, .h_out = 11, .w_out = 20 },                // general up
		{ .n = 2, .c = 5, .h_in = 13, .w_in = 9, .h_out = 5, .w_out = 4, .accumulate = true,
		  .x_c_total = 16, .x_c_off = 2 },                                                  // CBFuse down
		{ .n = 3, .c = 5, .h_in = 7, .w_in = 9, .h_out = 7, .w_out = 9, .y_c_total = 7, .y_c_off = 2 }, // copy
		{ .n = 1, .c = 4, .h_in = 6, .w_in = 10, .h_out = 9, .w_out = 4 },                 // up one way, down the other
	};
	int fails = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct nn_resize_desc *d = &cases[i];
		size_t nx = (size_t)d->n * (d->x_c_total ? d->x_c_total : d->c) * d->h_in * d->w_in;
		size_t ny = (size_t)d->n * (d->y_c_total ? d->y_c_total : d->c) * d->h_out * d->w_out;
		float *dy = rnd(ny, 500 + (unsigned)i, 1, 0), *got = rnd(nx, 510 + (unsigned)i, 1, 0), *want = dup(got, nx);
		int ret = 0;
		struct gpu_buf *bdy = up(dy, ny, &ret), *bdx = up(got, nx, &ret);
		struct gpu_seq *seq = NULL;
		ret = seq_new(&seq, ret);
		if (!ret)
			ret = nn_resize_nearest_bwd_record(g.dev, seq, d, BIND(bdy), BIND(bdx), "resize_bwd");
		ret = seq_run(seq, ret);
		down(bdx, got, nx, &ret);
		nn_resize_nearest_backward_ref(d, dy, want);
		char what[96];
		snprintf(what, sizeof(what), "resize bwd n%u c%u %ux%u -> %ux%u", d->n, d->c, d->h_in, d->w_in, d->h_out,
		         d->w_out);
		fails += ret || !close_f32(what, got, want, nx, TOL_ATOL, TOL_RTOL);
		gpu_seq_destroy(&seq);
		gpu_buf_destroy(&bdy), gpu_buf_destroy(&bdx);
		free(dy), free(got), free(want);
	}
	return fails;
}

// Bad arguments are refused with -EINVAL before anything is recorded.
static int check_errors(void)
{
	int ret = 0, fails = 0;
	struct gpu_buf *b = up(NULL, 64, &ret);
	struct gpu_seq *seq = NULL;
	ret = seq_new(&seq, ret);
	if (ret)
		return 1;
	struct nn_conv2d_desc d = bn_conv(&bn_cases[2]); // SiLU, residual before the activation
	struct gpu_binding *x = BIND(b);
	// scratch of 4 floats is too small for n3 c7 5x11; the residual needed to recompute u is missing
	struct gpu_binding *small = &(struct gpu_binding){ .buf = b, .size = 16 };
	int r[7];
	r[0] = nn_bn_act_bwd_record(g.dev, seq, &d, bn_eps, x, x, x, x, x, x, x, small, x, x, x, x, false, "e0");
	r[1] = nn_bn_act_bwd_record(g.dev, seq, &(struct nn_conv2d_desc){ .n = 1, .c_in = 2, .h_in = 1, .w_in = 1,
	                            .c_out = 2, .k_h = 1, .k_w = 1, .stride = 1, .groups = 1, .act = NN_ACT_SILU,
	                            .res_before_act = true }, bn_eps, x, x, x, x, x, NULL, x, x, x, x, x, x, false, "e1");
	r[2] = nn_bn_act_record(g.dev, seq, &(struct nn_conv2d_desc){ .n = 1, .c_in = 4, .h_in = 2, .w_in = 2,
	                        .c_out = 4, .k_h = 1, .k_w = 1, .stride = 1, .groups = 1, .y_c_total = 5, .y_c_off = 2 },
	                        bn_eps, x, x, x, x, x, NULL, x, "e2"); // y slice past the tensor
	r[3] = nn_maxpool2d_bwd_record(g.dev, seq, &(struct nn_pool2d_desc){ .n = 1, .c = 1, .h_in = 4, .w_in = 4,
	                               .k = 3, .stride = 1, .pad = 2 }, x, x, x, x, "e3"); // pad > k/2
	r[6] = nn_maxpool2d_bwd_record(g.dev, seq, &(struct nn_pool2d_desc){ .n = 3, .c = 7, .h_in = 5, .w_in = 11,
	                               .k = 3, .stride = 1, .pad = 1 }, x, x, small, x, "e6"); // window scratch too small
	r[4] = nn_resize_nearest_bwd_record(g.dev, seq, &(struct nn_resize_desc){ .n = 1, .c = 2, .h_in = 2,
	                                    .w_in = 2, .h_out = 0, .w_out = 4 }, x, x, "e4");
	r[5] = nn_bn_stats_record(g.dev, seq, &(struct nn_bn_desc){ .n = 1, .c = 0, .h = 2, .w = 2 }, x, x, x, x, "e5");
	for (int i = 0; i < 7; i++)
		if (r[i] != -EINVAL)
			printf("  bad call e%d returned %d, not -EINVAL\n", i, r[i]), fails++;
	fails += gpu_seq_dispatch_count(seq) != 0;
	gpu_seq_destroy(&seq);
	gpu_buf_destroy(&b);
	return fails;
}

int main(void)
{
	int fails = 0, ret = test_gpu_open(&g);
	if (ret)
		return ret;
	if (gpu_pool_create(g.dev, &(struct gpu_pool_params){ .kind = GPU_POOL_DEVICE, .name = "bwd_ops" }, &pool)) {
		test_gpu_close(&g);
		return 1;
	}
	TEST_RUN(fails, check_bn_stats);
	TEST_RUN(fails, check_bn_act);
	TEST_RUN(fails, check_bn_running);
	TEST_RUN(fails, check_bn_act_bwd);
	TEST_RUN(fails, check_pools);
	TEST_RUN(fails, check_resize);
	TEST_RUN(fails, check_errors);
	gpu_pool_destroy(&pool);
	fails += test_gpu_close(&g);
	return fails ? 1 : 0;
}
