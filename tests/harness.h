// Shared test scaffolding: a device on lavapipe (or whatever is present) with validation on,
// float comparison with |got - want| <= atol + rtol*|want|, and the 0/1/77 exit convention.
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "gpu.h"

#define TEST_SKIP 77

struct test_gpu {
	struct gpu_instance *inst;
	struct gpu_device *dev;
};

// Opens the device named by VKYOLO_DEVICE or the default one, with validation when
// VKYOLO_VALIDATION=1 (meson sets it). Returns 0, or TEST_SKIP when no Vulkan device exists.
int test_gpu_open(struct test_gpu *t);
// Closes it; returns 1 when the validation layer reported anything (a failure), else 0.
int test_gpu_close(struct test_gpu *t);

// Compares n floats; prints the worst element and the max abs/rel error on failure.
bool test_close_f32(const char *what, const float *got, const float *want, size_t n, float atol, float rtol);

// Runs a named check, printing "ok"/"FAIL"; accumulates failures.
#define TEST_RUN(fails, fn)                                               \
	do {                                                              \
		int r_ = fn();                                            \
		printf("%s %s\n", r_ ? "FAIL" : "ok  ", #fn);             \
		fails += r_ != 0;                                         \
	} while (0)

// Fills a deterministic pseudo-random sequence in [-1, 1).
void test_fill_random(float *x, size_t n, unsigned seed);
// A malloc'd array of n values test_fill_random(seed) * scale + offset (NULL when out of memory).
float *test_random_floats(size_t n, unsigned seed, float scale, float offset);
// A buffer of `bytes` (at least 4) from pool, holding data when data != NULL. 0 or an engine error.
int test_upload(struct gpu_pool *pool, const void *data, size_t bytes, struct gpu_buf **out);
