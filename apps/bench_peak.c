// Measures the device's fp32 multiply-add throughput with the peak_fma_f32 kernel, so bench
// results can be given as a share of what the device can do.
#include <stdlib.h>

#include "app.h"

struct peak_push {
	uint32_t iters;
	float seed;
};
_Static_assert(sizeof(struct peak_push) == 8, "peak_fma_f32.comp");

int app_measure_peak_gflops(struct gpu_device *dev, double *gflops)
{
	const uint32_t wg = 64, groups = 4096, iters = 64;
	struct gpu_pool *pool = NULL;
	struct gpu_buf *buf = NULL;
	struct gpu_seq *seq = NULL;
	struct gpu_kernel *k = NULL;
	struct peak_push push = { iters, 1.0f };
	int ret;

	*gflops = 0;
	if (!gpu_device_info(dev)->timestamps)
		return -ENOTSUP;
	if ((ret = gpu_pool_create(dev, &(struct gpu_pool_params){ .kind = GPU_POOL_DEVICE, .name = "peak" }, &pool)) ||
	    (ret = gpu_buf_create(pool, (size_t)wg * groups * 4, &buf)) ||
	    (ret = gpu_kernel_get(dev, &(struct gpu_kernel_params){ .id = GPU_KERNEL_PEAK_FMA_F32, .binding_count = 1,
	                          .push_size = 8, .spec_count = 1, .spec = { wg } }, &k)) ||
	    (ret = gpu_seq_create(dev, &seq)) || (ret = gpu_seq_begin(seq, true)))
		goto done;
	struct gpu_binding b = { .buf = buf, .write = true };
	if ((ret = gpu_seq_dispatch(seq, &(struct gpu_dispatch){ .kernel = k, .bindings = &b, .push = &push,
	                                                          .groups = { groups, 1, 1 }, .label = "peak" })) ||
	    (ret = gpu_seq_end(seq)))
		goto done;
	double best = 0;
	for (int rep = 0; rep < 4 && !ret; rep++) {
		struct gpu_timing t;
		uint32_t n = 0;
		if ((ret = gpu_seq_run(seq)) || (ret = gpu_seq_timings(seq, &t, 1, &n)))
			break;
		double g = (double)groups * wg * iters * 1024 / (t.ms * 1e6);
		if (n == 1 && t.ms > 0 && g > best)
			best = g;
	}
	*gflops = best;
done:
	gpu_seq_destroy(&seq);
	gpu_buf_destroy(&buf);
	gpu_pool_destroy(&pool);
	return ret;
}
