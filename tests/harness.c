#include "harness.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int test_gpu_open(struct test_gpu *t)
{
	uint32_t index;
	*t = (struct test_gpu){ 0 };
	gpu_log_init(GPU_LOG_WARN, NULL, NULL);
	int ret = gpu_instance_create(&(struct gpu_instance_params){ 0 }, &t->inst);
	if (ret == -ENODEV) {
		printf("skip: no Vulkan loader\n");
		return TEST_SKIP;
	}
	if (ret) {
		printf("FAIL: cannot create a Vulkan instance (%d)\n", ret);
		return 1;
	}
	if (gpu_instance_device_count(t->inst) == 0) {
		printf("skip: no Vulkan device\n");
		gpu_instance_destroy(&t->inst);
		return TEST_SKIP;
	}
	ret = gpu_instance_pick(t->inst, NULL, &index);
	if (!ret)
		ret = gpu_device_create(t->inst, index, &t->dev);
	if (ret) {
		printf("FAIL: cannot open device (%d)\n", ret);
		gpu_instance_destroy(&t->inst);
		return 1;
	}
	printf("device: %s\n", gpu_device_info(t->dev)->name);
	return 0;
}

int test_gpu_close(struct test_gpu *t)
{
	gpu_device_destroy(&t->dev);
	uint32_t msgs = t->inst ? gpu_instance_validation_messages(t->inst) : 0;
	gpu_instance_destroy(&t->inst);
	if (msgs) {
		printf("FAIL: %u Vulkan validation messages\n", msgs);
		return 1;
	}
	return 0;
}

bool test_close_f32(const char *what, const float *got, const float *want, size_t n, float atol, float rtol)
{
	size_t worst = 0, bad = 0;
	double worst_excess = -1, max_abs = 0, max_rel = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - want[i]);
		double lim = atol + rtol * fabs(want[i]);
		if (d > max_abs)
			max_abs = d;
		if (want[i] != 0 && d / fabs(want[i]) > max_rel)
			max_rel = d / fabs(want[i]);
		if (!(d <= lim)) { // NaN fails too
			bad++;
			if (d - lim > worst_excess || isnan(d)) {
				worst_excess = d - lim;
				worst = i;
			}
		}
	}
	if (bad) {
		printf("%s: %zu of %zu elements out of tolerance (atol %g, rtol %g); worst [%zu] got %.9g want %.9g; "
		       "max abs %.3g, max rel %.3g\n", what, bad, n, atol, rtol, worst, got[worst], want[worst],
		       max_abs, max_rel);
		return false;
	}
	return true;
}

void test_fill_random(float *x, size_t n, unsigned seed)
{
	uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
	for (size_t i = 0; i < n; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		x[i] = (float)((s >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
	}
}

float *test_random_floats(size_t n, unsigned seed, float scale, float offset)
{
	float *p = malloc((n ? n : 1) * sizeof(float));
	if (!p)
		return NULL;
	test_fill_random(p, n, seed);
	for (size_t i = 0; i < n; i++)
		p[i] = p[i] * scale + offset;
	return p;
}

int test_upload(struct gpu_pool *pool, const void *data, size_t bytes, struct gpu_buf **out)
{
	int ret = gpu_buf_create(pool, bytes ? bytes : 4, out);
	if (!ret && bytes && data)
		ret = gpu_buf_upload(*out, 0, data, bytes);
	return ret;
}
