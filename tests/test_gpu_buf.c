// Buffers: staged upload/download round trips on awkward sizes, suballocation from shared blocks,
// reuse of freed ranges, host-visible mapping.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct test_gpu g;

static int check_round_trip(void)
{
	// 1, 7 and 1000003 floats; 5M floats (20 MB) crosses the 16 MiB staging chunk.
	const size_t sizes[] = { 1, 7, 1000003, 5000011 };
	struct gpu_pool *pool = NULL;
	int fails = 0;
	if (gpu_pool_create(g.dev, &(struct gpu_pool_params){ .kind = GPU_POOL_DEVICE, .name = "test" }, &pool))
		return 1;
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s];
		float *src = malloc(n * sizeof(float)), *dst = calloc(n, sizeof(float));
		struct gpu_buf *buf = NULL;
		test_fill_random(src, n, (unsigned)n);
		if (!src || !dst || gpu_buf_create(pool, n * sizeof(float), &buf) ||
		    gpu_buf_upload(buf, 0, src, n * sizeof(float)) || gpu_buf_download(buf, 0, dst, n * sizeof(float)) ||
		    memcmp(src, dst, n * sizeof(float)) != 0) {
			printf("round trip of %zu floats differs\n", n);
			fails++;
		}
		// A partial download at an odd offset.
		if (n > 3) {
			float part[3];
			if (gpu_buf_download(buf, 4, part, sizeof(part)) || memcmp(part, src + 1, sizeof(part))) {
				printf("partial download of %zu floats differs\n", n);
				fails++;
			}
		}
		gpu_buf_destroy(&buf);
		free(src);
		free(dst);
	}
	gpu_pool_destroy(&pool);
	return fails;
}

static int check_suballocation(void)
{
	struct gpu_pool *pool = NULL;
	struct gpu_buf *bufs[100] = { 0 };
	int fails = 0;
	const size_t block = 4u << 20;
	if (gpu_pool_create(g.dev, &(struct gpu_pool_params){ .kind = GPU_POOL_DEVICE, .block_size = block,
	                                                        .name = "sub" }, &pool))
		return 1;
	uint64_t before = gpu_device_memory_used(g.dev);
	for (int i = 0; i < 100; i++)
		if (gpu_buf_create(pool, 1000 + 37 * i, &bufs[i]))
			fails++;
	// 100 small tensors fit one 4 MiB block: exactly one device allocation.
	if (gpu_pool_reserved(pool) != block || gpu_device_memory_used(g.dev) - before != block) {
		printf("100 small buffers reserved %llu bytes, want one block of %zu\n",
		       (unsigned long long)gpu_pool_reserved(pool), block);
		fails++;
	}
	// Each buffer keeps its own contents.
	for (int i = 0; i < 100 && !fails; i++) {
		uint32_t v = 0xabc00000u + i;
		if (gpu_buf_upload(bufs[i], 996, &v, 4))
			fails++;
	}
	for (int i = 0; i < 100 && !fails; i++) {
		uint32_t back = 0;
		if (gpu_buf_download(bufs[i], 996, &back, 4) || back != 0xabc00000u + i) {
			printf("buffer %d: got 0x%x\n", i, back);
			fails++;
		}
	}
	for (int i = 0; i < 100; i += 2)
		gpu_buf_destroy(&bufs[i]);
	// Freed ranges are reused: more buffers still fit the one block.
	for (int i = 0; i < 100; i += 2)
		if (gpu_buf_create(pool, 900, &bufs[i]))
			fails++;
	if (gpu_pool_reserved(pool) != block) {
		printf("freed ranges were not reused (%llu bytes reserved)\n", (unsigned long long)gpu_pool_reserved(pool));
		fails++;
	}
	// A request above the block size gets a block of its own.
	struct gpu_buf *big = NULL;
	if (gpu_buf_create(pool, 2 * block + 5, &big) || gpu_pool_reserved(pool) < 3 * block) {
		printf("large buffer did not get its own block\n");
		fails++;
	}
	gpu_buf_destroy(&big);
	for (int i = 0; i < 100; i++)
		gpu_buf_destroy(&bufs[i]);
	gpu_pool_destroy(&pool);
	if (gpu_device_memory_used(g.dev) != before) {
		printf("device memory not returned: %llu vs %llu\n", (unsigned long long)gpu_device_memory_used(g.dev),
		       (unsigned long long)before);
		fails++;
	}
	return fails;
}

static int check_host_map(void)
{
	struct gpu_pool *pool = NULL;
	struct gpu_buf *buf = NULL;
	int fails = 0;
	float v[5] = { 1, 2, 3, 4, 5 }, back[5] = { 0 };
	if (gpu_pool_create(g.dev, &(struct gpu_pool_params){ .kind = GPU_POOL_HOST, .name = "host" }, &pool) ||
	    gpu_buf_create(pool, sizeof(v), &buf))
		return 1;
	float *p = gpu_buf_map(buf);
	if (!p)
		fails++;
	else
		memcpy(p, v, sizeof(v));
	if (gpu_buf_download(buf, 0, back, sizeof(back)) || memcmp(back, v, sizeof(v)))
		fails++;
	gpu_buf_destroy(&buf);
	gpu_pool_destroy(&pool);
	return fails;
}

int main(void)
{
	int fails = 0, ret = test_gpu_open(&g);
	if (ret)
		return ret;
	TEST_RUN(fails, check_round_trip);
	TEST_RUN(fails, check_suballocation);
	TEST_RUN(fails, check_host_map);
	fails += test_gpu_close(&g);
	return fails ? 1 : 0;
}
