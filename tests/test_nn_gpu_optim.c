// The GPU optimizer kernels (layers_train.h, "optimizer") against independent CPU references:
// the sum of squares on odd counts (1 .. past two reduction passes) against a double sum, and its
// run-to-run bit equality; three fused clip + SGD steps per configuration (clipping active,
// inactive and off; Nesterov on/off; weight decay on/off) against a double-precision replica of
// torch.nn.utils.clip_grad_norm_ + torch.optim.SGD (as tests/test_nn_optim.c checks
// nn_sgd_step_ref); the EMA update against nn_ema_update_ref.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "layers_train.h"
#include "optim_ref.h"

// fp32 sum of up to 17M squares of values in [-1, 1): 16 sequential adds per invocation, then a
// tree of depth ~8 per level and up to 3 levels; the rounding error bound is ~40 ulp of the total
// (2.4e-6 relative) and typically ~100x smaller. 1e-5 relative catches any missing or doubled chunk
// (one chunk of 4096 is >= 2.4e-4 of a 17M total).
#define SUMSQ_RTOL 1e-5
// SGD: a few fp32 roundings per step (clip coefficient through an fp32 sqrt/division, decay,
// momentum, update) on values of order 1 over three steps; a wrong term (momentum 0.9 x buf,
// Nesterov, lr 0.1 x wd 0.05 x p) moves p by >= 1e-3 on typical elements.
#define SGD_ATOL 1e-6
#define SGD_RTOL 1e-5
// EMA: the kernel evaluates the same two products and one add as the reference, without FMA
// contraction: equal up to a last-bit difference at most.
#define EMA_ATOL 1e-7f
#define EMA_RTOL 1e-6f

static struct test_gpu g;
static struct gpu_pool *pool;

static int upload(const void *data, size_t bytes, struct gpu_buf **out)
{
	return test_upload(pool, data, bytes, out);
}

static int end_run(struct gpu_seq *seq)
{
	int ret = gpu_seq_end(seq);
	return ret ? ret : gpu_seq_run(seq);
}

// ---- sum of squares ------------------------------------------------------------------------------

// Sum of squares of x[0..count) on the GPU (x bound at byte offset 256 of its buffer to exercise
// offsets); result in *got, and a second run of the same recorded sequence in *again.
static int gpu_sumsq(const float *x, uint64_t count, float *got, float *again)
{
	struct gpu_buf *bx = NULL, *bs = NULL, *bo = NULL;
	struct gpu_seq *seq = NULL;
	size_t sb = nn_sumsq_scratch_bytes(count);
	int ret = upload(NULL, 256 + count * 4, &bx);
	if (!ret && count)
		ret = gpu_buf_upload(bx, 256, x, count * 4);
	if (!ret)
		ret = upload(NULL, sb, &bs);
	if (!ret)
		ret = upload((float[2]){ -1.0f, -2.0f }, 8, &bo);
	if (!ret)
		ret = gpu_seq_create(g.dev, &seq);
	if (!ret)
		ret = gpu_seq_begin(seq, false);
	if (!ret)
		ret = nn_sumsq_record(g.dev, seq, count, &(struct gpu_binding){ .buf = bx, .offset = 256 },
		                      &(struct gpu_binding){ .buf = bs }, &(struct gpu_binding){ .buf = bo }, "sumsq");
	if (!ret)
		ret = end_run(seq);
	float out[2] = { 0 };
	if (!ret)
		ret = gpu_buf_download(bo, 0, out, 8);
	*got = out[0];
	if (!ret && out[1] != -2.0f) {
		printf("FAIL sumsq n=%llu wrote past out[0] (%g)\n", (unsigned long long)count, out[1]);
		ret = -1;
	}
	if (!ret)
		ret = gpu_seq_run(seq);
	if (!ret)
		ret = gpu_buf_download(bo, 0, again, 4);
	gpu_seq_destroy(&seq);
	gpu_buf_destroy(&bx), gpu_buf_destroy(&bs), gpu_buf_destroy(&bo);
	return ret;
}

static int check_sumsq(void)
{
	// 1 and 63: one partial workgroup; 1000003: two passes (245 partials); 4096^2 + 5: three passes
	const uint64_t counts[] = { 1, 63, 1000003, 4096ull * 4096 + 5 };
	int fails = 0;
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		uint64_t n = counts[c];
		float *x = malloc(n * 4);
		if (!x)
			return 1;
		test_fill_random(x, n, 7 + (unsigned)c);
		double want = 0.0;
		for (uint64_t i = 0; i < n; i++)
			want += (double)x[i] * x[i];
		float got = 0.0f, again = 0.0f;
		int ret = gpu_sumsq(x, n, &got, &again);
		double rel = fabs(got - want) / want;
		bool ok = !ret && rel <= SUMSQ_RTOL, same = !ret && !memcmp(&got, &again, 4);
		printf("%s sumsq n=%llu (scratch %zu B): gpu %.9g, double %.9g, rel err %.2e\n", ok ? "ok  " : "FAIL",
		       (unsigned long long)n, nn_sumsq_scratch_bytes(n), got, want, rel);
		printf("%s sumsq n=%llu run twice: %a vs %a\n", same ? "ok  " : "FAIL", (unsigned long long)n, got, again);
		fails += !ok + !same;
		free(x);
	}
	return fails;
}

// ---- SGD -----------------------------------------------------------------------------------------

#define SGD_N 1003
// p, g and buf live in one buffer at these byte offsets (aligned for any device), sumsq in another
// at offset 256: as a trainer lays out its parameter groups.
#define OFF_P 0
#define OFF_G 4096
#define OFF_B 8192

struct sgd_case {
	bool nesterov;
	float wd, max_norm;
	const char *name;
};

// Double replica of torch.nn.utils.clip_grad_norm_ followed by torch.optim.SGD (dampening 0).
static void sgd_replica(const struct sgd_case *c, float lr, float momentum, bool first, const float *grad, double *p,
                        double *buf)
{
	double ss = 0.0;
	for (int i = 0; i < SGD_N; i++)
		ss += (double)grad[i] * grad[i];
	double coef = c->max_norm / (sqrt(ss) + 1e-6), clip = c->max_norm > 0 && coef < 1.0 ? coef : 1.0;
	for (int i = 0; i < SGD_N; i++) {
		double d = grad[i] * clip + c->wd * p[i];
		buf[i] = first ? d : momentum * buf[i] + d;
		p[i] -= lr * (c->nesterov ? d + momentum * buf[i] : buf[i]);
	}
}

static double max_abs_err; // over the steps of one configuration, for the report line

static bool compare(const char *what, const float *got, const double *want, size_t n)
{
	double worst = -1.0;
	size_t wi = 0;
	for (size_t i = 0; i < n; i++) {
		max_abs_err = fmax(max_abs_err, fabs(got[i] - want[i]));
		double excess = fabs(got[i] - want[i]) - (SGD_ATOL + SGD_RTOL * fabs(want[i]));
		if (excess > worst || i == 0)
			worst = excess, wi = i;
	}
	if (worst > 0.0 || isnan(got[wi]))
		printf("FAIL %s: worst [%zu] gpu %.9g want %.9g\n", what, wi, got[wi], want[wi]);
	return worst <= 0.0;
}

static int sgd_one(const struct sgd_case *c)
{
	const float lr = 0.1f, momentum = 0.9f;
	float *p0 = malloc(SGD_N * 4), *grad = malloc(SGD_N * 4), *got = malloc(SGD_N * 4);
	double *p = malloc(SGD_N * 8), *buf = calloc(SGD_N, 8);
	struct gpu_buf *bt = NULL, *bs = NULL, *scratch = NULL;
	struct gpu_seq *seq = NULL;
	int fails = 0;
	if (!p0 || !grad || !got || !p || !buf)
		goto fail;
	test_fill_random(p0, SGD_N, 11);
	for (int i = 0; i < SGD_N; i++)
		p[i] = p0[i];
	int ret = upload(NULL, OFF_B + SGD_N * 4, &bt);
	if (!ret)
		ret = gpu_buf_upload(bt, OFF_P, p0, SGD_N * 4);
	if (!ret) // momentum buffer full of noise: the first step must overwrite it, not add to it
		ret = gpu_buf_upload(bt, OFF_B, p0, SGD_N * 4);
	if (!ret)
		ret = upload(NULL, 260, &bs);
	if (!ret)
		ret = upload(NULL, nn_sumsq_scratch_bytes(SGD_N), &scratch);
	if (!ret)
		ret = gpu_seq_create(g.dev, &seq);
	for (int step = 0; step < 3 && !ret; step++) {
		// gradient norms ~ 2 * sqrt(1003 / 3) = 37: clipped at max_norm 10, not at 1000
		test_fill_random(grad, SGD_N, 100 + (unsigned)step);
		for (int i = 0; i < SGD_N; i++)
			grad[i] *= 2.0f;
		struct nn_sgd_record_params sp = { lr, momentum, c->wd, c->max_norm, c->nesterov, step == 0 };
		struct gpu_binding bg = { .buf = bt, .offset = OFF_G, .size = SGD_N * 4 };
		struct gpu_binding bsum = { .buf = bs, .offset = 256, .size = 4 };
		ret = gpu_buf_upload(bt, OFF_G, grad, SGD_N * 4);
		if (!ret)
			ret = gpu_seq_begin(seq, false);
		if (!ret)
			ret = nn_sumsq_record(g.dev, seq, SGD_N, &bg, &(struct gpu_binding){ .buf = scratch }, &bsum, "sumsq");
		if (!ret)
			ret = nn_sgd_record(g.dev, seq, SGD_N, &sp, c->max_norm > 0.0f ? &bsum : NULL, &(struct gpu_binding){ .buf = bt, .offset = OFF_P },
			                    &bg, &(struct gpu_binding){ .buf = bt, .offset = OFF_B }, "sgd");
		if (!ret)
			ret = end_run(seq);
		if (ret)
			break;
		sgd_replica(c, lr, momentum, step == 0, grad, p, buf);
		char what[128];
		snprintf(what, sizeof(what), "sgd %s step %d param", c->name, step);
		ret = gpu_buf_download(bt, OFF_P, got, SGD_N * 4);
		fails += !ret && !compare(what, got, p, SGD_N);
		snprintf(what, sizeof(what), "sgd %s step %d momentum", c->name, step);
		if (!ret)
			ret = gpu_buf_download(bt, OFF_B, got, SGD_N * 4);
		fails += !ret && !compare(what, got, buf, SGD_N);
		if (!ret)
			ret = gpu_buf_download(bt, OFF_G, got, SGD_N * 4);
		if (!ret && memcmp(got, grad, SGD_N * 4)) {
			printf("FAIL sgd %s step %d changed the gradient\n", c->name, step);
			fails++;
		}
	}
	fails += ret != 0;
fail:
	fails += !p0 || !grad || !got || !p || !buf;
	gpu_seq_destroy(&seq);
	gpu_buf_destroy(&bt), gpu_buf_destroy(&bs), gpu_buf_destroy(&scratch);
	free(p0), free(grad), free(got), free(p), free(buf);
	return fails;
}

static int check_sgd(void)
{
	const struct sgd_case cases[] = {
		{ true, 0.05f, 10.0f, "nesterov wd clipped" },
		{ true, 0.05f, 1000.0f, "nesterov wd unclipped" },
		{ true, 0.0f, 10.0f, "nesterov clipped" },
		{ false, 0.05f, 10.0f, "plain wd clipped" },
		{ false, 0.0f, 1000.0f, "plain unclipped" },
		{ false, 0.05f, 0.0f, "plain wd no-clip" },
		{ true, 0.0f, 0.0f, "nesterov no-clip" },
	};
	int fails = 0; // (no-clip cases pass no sumsq binding)
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		max_abs_err = 0.0;
		int f = sgd_one(&cases[i]);
		printf("%s sgd %s: 3 steps, param + momentum vs double replica, max abs err %.2e\n", f ? "FAIL" : "ok  ",
		       cases[i].name, max_abs_err);
		fails += f;
	}
	return fails;
}

// ---- EMA -----------------------------------------------------------------------------------------

static int check_ema(void)
{
	enum { N = 1001 };
	const uint64_t updates[] = { 1, 2000, 100000 };
	float *ema = malloc(N * 4), *cur = malloc(N * 4), *got = malloc(N * 4);
	int fails = 0;
	if (!ema || !cur || !got)
		fails++;
	for (size_t u = 0; !fails && u < sizeof(updates) / sizeof(updates[0]); u++) {
		test_fill_random(ema, N, 31 + (unsigned)u);
		test_fill_random(cur, N, 41 + (unsigned)u);
		double decay = nn_ema_decay(updates[u]);
		struct gpu_buf *be = NULL, *bc = NULL;
		struct gpu_seq *seq = NULL;
		int ret = upload(ema, N * 4, &be);
		if (!ret)
			ret = upload(cur, N * 4, &bc);
		if (!ret)
			ret = gpu_seq_create(g.dev, &seq);
		if (!ret)
			ret = gpu_seq_begin(seq, false);
		if (!ret)
			ret = nn_ema_record(g.dev, seq, N, decay, &(struct gpu_binding){ .buf = be },
			                    &(struct gpu_binding){ .buf = bc }, "ema");
		if (!ret)
			ret = end_run(seq);
		if (!ret)
			ret = gpu_buf_download(be, 0, got, N * 4);
		nn_ema_update_ref(ema, cur, N, decay);
		int bits = 0;
		for (int i = 0; i < N; i++)
			bits += memcmp(&got[i], &ema[i], 4) != 0;
		char what[96];
		snprintf(what, sizeof(what), "ema updates=%llu decay %.9g", (unsigned long long)updates[u], decay);
		bool ok = !ret && test_close_f32(what, got, ema, N, EMA_ATOL, EMA_RTOL);
		printf("%s %s: %d of %d floats differ in bits from nn_ema_update_ref\n", ok ? "ok  " : "FAIL", what, bits, N);
		fails += !ok;
		gpu_seq_destroy(&seq);
		gpu_buf_destroy(&be), gpu_buf_destroy(&bc);
	}
	free(ema), free(cur), free(got);
	return fails;
}

int main(void)
{
	int fails = 0, ret = test_gpu_open(&g);
	if (ret)
		return ret;
	if (gpu_pool_create(g.dev, &(struct gpu_pool_params){ .kind = GPU_POOL_DEVICE, .name = "optim" }, &pool)) {
		test_gpu_close(&g);
		return 1;
	}
	TEST_RUN(fails, check_sumsq);
	TEST_RUN(fails, check_sgd);
	TEST_RUN(fails, check_ema);
	gpu_pool_destroy(&pool);
	fails += test_gpu_close(&g);
	return fails ? 1 : 0;
}
