// Small kernels against CPU references on awkward sizes, sequence replay, barrier placement,
// timestamps, deterministic reductions, and pipeline-cache reuse across devices.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

// fp32 element-wise a*x+b*y is exact to the last ulp on any IEEE device except for FMA
// contraction: allow 2 ulp-ish relative error.
#define EW_RTOL 3e-7f
#define EW_ATOL 1e-30f

static struct test_gpu g;

struct scale_add_push {
	uint32_t n;
	float alpha, beta;
};
_Static_assert(sizeof(struct scale_add_push) == 12, "scale_add_f32.comp");

struct reduce_push {
	uint32_t n, chunk;
};
_Static_assert(sizeof(struct reduce_push) == 8, "reduce_sum_f32.comp");

static void scale_add_ref(size_t n, float alpha, const float *x, float beta, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = alpha * x[i] + beta * y[i];
}

static int record_scale_add(struct gpu_seq *seq, struct gpu_buf *x, struct gpu_buf *y, uint32_t n,
                            float alpha, float beta)
{
	struct gpu_kernel *k = NULL;
	int ret = gpu_kernel_get(g.dev, &(struct gpu_kernel_params){ .id = GPU_KERNEL_SCALE_ADD_F32,
	                         .binding_count = 2, .push_size = 12, .spec_count = 1, .spec = { 64 } }, &k);
	if (ret)
		return ret;
	uint32_t groups = (n + 63) / 64, gx = groups, gy = 1;
	uint32_t maxx = gpu_device_info(g.dev)->max_workgroup_count[0];
	if (gx > maxx) {
		gy = (groups + maxx - 1) / maxx;
		gx = (groups + gy - 1) / gy;
	}
	struct gpu_binding b[2] = { { .buf = x }, { .buf = y, .write = true } };
	struct scale_add_push push = { n, alpha, beta };
	return gpu_seq_dispatch(seq, &(struct gpu_dispatch){ .kernel = k, .bindings = b, .push = &push,
	                                                     .groups = { gx, gy, 1 }, .label = "scale_add" });
}

static int check_scale_add(void)
{
	const size_t sizes[] = { 1, 7, 1000003 };
	struct gpu_pool *pool = NULL;
	struct gpu_seq *seq = NULL;
	int fails = 0;
	if (gpu_pool_create(g.dev, &(struct gpu_pool_params){ .kind = GPU_POOL_DEVICE, .name = "ew" }, &pool) ||
	    gpu_seq_create(g.dev, &seq))
		return 1;
	for (size_t s = 0; s < 3; s++) {
		size_t n = sizes[s];
		float *x = malloc(n * 4), *y = malloc(n * 4), *want = malloc(n * 4), *got = malloc(n * 4);
		struct gpu_buf *bx = NULL, *by = NULL;
		test_fill_random(x, n, 1 + s);
		test_fill_random(y, n, 100 + s);
		memcpy(want, y, n * 4);
		scale_add_ref(n, 1.5f, x, -0.25f, want);
		if (gpu_buf_create(pool, n * 4, &bx) || gpu_buf_create(pool, n * 4, &by) ||
		    gpu_buf_upload(bx, 0, x, n * 4) || gpu_buf_upload(by, 0, y, n * 4) ||
		    gpu_seq_begin(seq, false) || record_scale_add(seq, bx, by, n, 1.5f, -0.25f) ||
		    gpu_seq_end(seq) || gpu_seq_run(seq) || gpu_buf_download(by, 0, got, n * 4)) {
			fails++;
		} else {
			char what[64];
			snprintf(what, sizeof(what), "scale_add n=%zu", n);
			fails += !test_close_f32(what, got, want, n, EW_ATOL, EW_RTOL);
			// Replay without re-recording: y <- 1.5x - 0.25y again.
			scale_add_ref(n, 1.5f, x, -0.25f, want);
			if (gpu_seq_run(seq) || gpu_buf_download(by, 0, got, n * 4))
				fails++;
			else
				fails += !test_close_f32("scale_add replay", got, want, n, EW_ATOL, EW_RTOL);
		}
		gpu_buf_destroy(&bx);
		gpu_buf_destroy(&by);
		free(x), free(y), free(want), free(got);
	}
	gpu_seq_destroy(&seq);
	gpu_pool_destroy(&pool);
	return fails;
}

// Sums n floats on the GPU in two deterministic passes; returns the sum through *out.
static int gpu_sum(struct gpu_pool *pool, const float *x, uint32_t n, float *out, uint32_t *barriers)
{
	const uint32_t wg = 64, chunk = 4096;
	uint32_t groups = (n + chunk - 1) / chunk;
	struct gpu_buf *bx = NULL, *bp = NULL, *bs = NULL;
	struct gpu_seq *seq = NULL;
	struct gpu_kernel *k = NULL;
	int ret = gpu_kernel_get(g.dev, &(struct gpu_kernel_params){ .id = GPU_KERNEL_REDUCE_SUM_F32,
	                         .binding_count = 2, .push_size = 8, .spec_count = 1, .spec = { wg } }, &k);
	if (!ret)
		ret = gpu_buf_create(pool, (size_t)n * 4, &bx);
	if (!ret)
		ret = gpu_buf_create(pool, (size_t)groups * 4, &bp);
	if (!ret)
		ret = gpu_buf_create(pool, 4, &bs);
	if (!ret)
		ret = gpu_buf_upload(bx, 0, x, (size_t)n * 4);
	if (!ret)
		ret = gpu_seq_create(g.dev, &seq);
	if (!ret)
		ret = gpu_seq_begin(seq, false);
	struct gpu_binding b1[2] = { { .buf = bx }, { .buf = bp, .write = true } };
	struct gpu_binding b2[2] = { { .buf = bp }, { .buf = bs, .write = true } };
	struct reduce_push p1 = { n, chunk }, p2 = { groups, ((groups + wg - 1) / wg) * wg };
	if (!ret)
		ret = gpu_seq_dispatch(seq, &(struct gpu_dispatch){ .kernel = k, .bindings = b1, .push = &p1,
		                                                    .groups = { groups, 1, 1 } });
	if (!ret)
		ret = gpu_seq_dispatch(seq, &(struct gpu_dispatch){ .kernel = k, .bindings = b2, .push = &p2,
		                                                    .groups = { 1, 1, 1 } });
	if (!ret)
		ret = gpu_seq_end(seq);
	if (!ret)
		ret = gpu_seq_run(seq);
	if (!ret)
		ret = gpu_buf_download(bs, 0, out, 4);
	if (barriers)
		*barriers = seq ? gpu_seq_barrier_count(seq) : 0;
	gpu_seq_destroy(&seq);
	gpu_buf_destroy(&bx);
	gpu_buf_destroy(&bp);
	gpu_buf_destroy(&bs);
	return ret;
}

static int check_reduce(void)
{
	const uint32_t sizes[] = { 1, 7, 1000003 };
	struct gpu_pool *pool = NULL;
	int fails = 0;
	if (gpu_pool_create(g.dev, &(struct gpu_pool_params){ .kind = GPU_POOL_DEVICE, .name = "red" }, &pool))
		return 1;
	for (int s = 0; s < 3; s++) {
		uint32_t n = sizes[s], barriers = 0;
		float *x = malloc(n * 4), got = 0, again = 0;
		double want = 0, mag = 0;
		test_fill_random(x, n, 7 + s);
		for (uint32_t i = 0; i < n; i++) {
			want += x[i];
			mag += fabs(x[i]);
		}
		// fp32 pairwise-ish summation: error bounded by ~n_levels * eps * sum|x|.
		float atol = (float)(mag * 64 * 1.2e-7);
		if (gpu_sum(pool, x, n, &got, &barriers) || gpu_sum(pool, x, n, &again, NULL)) {
			fails++;
		} else {
			float w = (float)want;
			char what[64];
			snprintf(what, sizeof(what), "sum n=%u", n);
			fails += !test_close_f32(what, &got, &w, 1, atol, 0);
			if (memcmp(&got, &again, 4)) {
				printf("sum n=%u is not deterministic: %.9g vs %.9g\n", n, got, again);
				fails++;
			}
			// The second pass reads what the first wrote: exactly one barrier between them.
			if (barriers != 1) {
				printf("sum: %u barriers recorded, want 1\n", barriers);
				fails++;
			}
		}
		free(x);
	}
	gpu_pool_destroy(&pool);
	return fails;
}

static int check_barriers_and_timestamps(void)
{
	struct gpu_pool *pool = NULL;
	struct gpu_seq *seq = NULL;
	struct gpu_buf *b[4] = { 0 };
	int fails = 0;
	const uint32_t n = 4096;
	if (gpu_pool_create(g.dev, &(struct gpu_pool_params){ .kind = GPU_POOL_DEVICE, .name = "bar" }, &pool) ||
	    gpu_seq_create(g.dev, &seq))
		return 1;
	for (int i = 0; i < 4; i++)
		if (gpu_buf_create(pool, n * 4, &b[i]))
			fails++;
	bool ts = gpu_device_info(g.dev)->timestamps;
	// b1 += b0 and b3 += b2 are independent (no barrier); b3 += b1 depends on both (one barrier);
	// b1 += b0 afterwards is a write after the read of b1 (another barrier).
	if (fails || gpu_seq_begin(seq, ts) || record_scale_add(seq, b[0], b[1], n, 1, 1) ||
	    record_scale_add(seq, b[2], b[3], n, 1, 1) || record_scale_add(seq, b[1], b[3], n, 1, 1) ||
	    record_scale_add(seq, b[0], b[1], n, 1, 1) || gpu_seq_end(seq) || gpu_seq_run(seq))
		fails++;
	if (gpu_seq_dispatch_count(seq) != 4 || gpu_seq_barrier_count(seq) != 2) {
		printf("dispatches %u (want 4), barriers %u (want 2)\n", gpu_seq_dispatch_count(seq),
		       gpu_seq_barrier_count(seq));
		fails++;
	}
	if (ts) {
		struct gpu_timing t[8];
		uint32_t count = 0;
		if (gpu_seq_timings(seq, t, 8, &count) || count != 4) {
			printf("timings: got %u entries, want 4\n", count);
			fails++;
		}
		for (uint32_t i = 0; i < count; i++) {
			if (t[i].ms < 0 || (i && t[i].start_ms < t[i - 1].start_ms) || strcmp(t[i].label, "scale_add")) {
				printf("timing %u not monotonic: start %.6f ms, %.6f ms\n", i, t[i].start_ms, t[i].ms);
				fails++;
			}
		}
	} else {
		printf("note: device has no timestamps\n");
	}
	for (int i = 0; i < 4; i++)
		gpu_buf_destroy(&b[i]);
	gpu_seq_destroy(&seq);
	gpu_pool_destroy(&pool);
	return fails;
}

static int check_pipeline_cache(void)
{
	char dir[] = "/tmp/vkyolo-pcache-XXXXXX";
	int fails = 0;
	if (!mkdtemp(dir))
		return 1;
	setenv("VKYOLO_PIPELINE_CACHE_DIR", dir, 1);
	struct gpu_kernel_params p = { .id = GPU_KERNEL_FILL_F32, .binding_count = 1, .push_size = 8,
	                               .spec_count = 1, .spec = { 32 } };
	for (int round = 0; round < 2; round++) {
		struct gpu_instance *inst = NULL;
		struct gpu_device *dev = NULL;
		struct gpu_kernel *k1 = NULL, *k2 = NULL;
		struct gpu_kernel_stats st;
		uint32_t index;
		if (gpu_instance_create(&(struct gpu_instance_params){ 0 }, &inst) ||
		    gpu_instance_pick(inst, NULL, &index) || gpu_device_create(inst, index, &dev) ||
		    gpu_kernel_get(dev, &p, &k1) || gpu_kernel_get(dev, &p, &k2)) {
			fails++;
		} else {
			gpu_device_kernel_stats(dev, &st);
			// The same (shader, spec) is one pipeline, created once per device.
			if (k1 != k2 || st.created != 1) {
				printf("kernel cache: %u pipelines created for one key\n", st.created);
				fails++;
			}
			// The second device starts from the file the first one wrote.
			if (round == 1 && st.cache_loaded_bytes == 0) {
				printf("pipeline cache file was not reused\n");
				fails++;
			}
			printf("round %d: pipeline cache loaded %zu bytes, %u hits\n", round, st.cache_loaded_bytes,
			       st.cache_hits);
		}
		gpu_device_destroy(&dev);
		if (inst && gpu_instance_validation_messages(inst))
			fails++;
		gpu_instance_destroy(&inst);
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fails++;
	return fails;
}

int main(void)
{
	int fails = 0, ret = test_gpu_open(&g);
	if (ret)
		return ret;
	TEST_RUN(fails, check_scale_add);
	TEST_RUN(fails, check_reduce);
	TEST_RUN(fails, check_barriers_and_timestamps);
	TEST_RUN(fails, check_pipeline_cache);
	fails += test_gpu_close(&g);
	return fails ? 1 : 0;
}
