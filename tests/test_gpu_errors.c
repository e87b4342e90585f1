// Error paths: each bad request gets a clean negative errno, no crash, no validation message.
#include <stdio.h>
#include <string.h>

#include "harness.h"

static struct test_gpu g;

#define EXPECT(call, want)                                                                   \
	do {                                                                                 \
		int got_ = (call);                                                           \
		if (got_ != (want)) {                                                        \
			printf("%s: got %d, want %d (%s)\n", #call, got_, want, #want);       \
			fails++;                                                             \
		}                                                                            \
	} while (0)

static int check_absurd_allocation(void)
{
	struct gpu_pool *pool = NULL;
	struct gpu_buf *buf = NULL;
	int fails = 0;
	if (gpu_pool_create(g.dev, &(struct gpu_pool_params){ .kind = GPU_POOL_DEVICE, .name = "absurd" }, &pool))
		return 1;
	EXPECT(gpu_buf_create(pool, (size_t)1 << 44, &buf), -ENOMEM); // 16 TiB
	if (buf)
		fails++;
	// The pool still works afterwards.
	EXPECT(gpu_buf_create(pool, 1024, &buf), 0);
	gpu_buf_destroy(&buf);
	gpu_pool_destroy(&pool);
	return fails;
}

static int check_bad_ranges(void)
{
	struct gpu_pool *pool = NULL;
	struct gpu_buf *buf = NULL;
	struct gpu_seq *seq = NULL;
	struct gpu_kernel *k = NULL;
	char tmp[64] = { 0 };
	int fails = 0;
	if (gpu_pool_create(g.dev, &(struct gpu_pool_params){ .kind = GPU_POOL_DEVICE, .name = "r" }, &pool) ||
	    gpu_buf_create(pool, 16, &buf) || gpu_seq_create(g.dev, &seq))
		return 1;
	EXPECT(gpu_buf_upload(buf, 8, tmp, 16), -EINVAL);
	EXPECT(gpu_buf_download(buf, 17, tmp, 1), -EINVAL);
	EXPECT(gpu_kernel_get(g.dev, &(struct gpu_kernel_params){ .id = GPU_KERNEL_FILL_F32, .binding_count = 1,
	                      .push_size = 6 }, &k), -EINVAL);
	EXPECT(gpu_kernel_get(g.dev, &(struct gpu_kernel_params){ .id = GPU_KERNEL_COUNT }, &k), -EINVAL);
	EXPECT(gpu_kernel_get(g.dev, &(struct gpu_kernel_params){ .id = GPU_KERNEL_FILL_F32, .binding_count = 1,
	                      .push_size = 8, .spec_count = 1, .spec = { 1u << 20 } }, &k), -EINVAL);
	EXPECT(gpu_kernel_get(g.dev, &(struct gpu_kernel_params){ .id = GPU_KERNEL_FILL_F32, .binding_count = 1,
	                      .push_size = 8, .spec_count = 1, .spec = { 64 } }, &k), 0);
	struct gpu_binding b = { .buf = buf, .offset = 8, .size = 16, .write = true };
	uint32_t push[2] = { 4, 0 };
	struct gpu_dispatch d = { .kernel = k, .bindings = &b, .push = push, .groups = { 1, 1, 1 } };
	EXPECT(gpu_seq_dispatch(seq, &d), -EINVAL); // not recording
	EXPECT(gpu_seq_submit(seq), -EINVAL);       // nothing recorded
	EXPECT(gpu_seq_begin(seq, false), 0);
	EXPECT(gpu_seq_dispatch(seq, &d), -EINVAL); // range outside the buffer
	d.groups[0] = 1u << 31;
	b.offset = 0;
	EXPECT(gpu_seq_dispatch(seq, &d), -EINVAL); // too many workgroups
	EXPECT(gpu_seq_end(seq), 0);
	gpu_seq_destroy(&seq);
	gpu_buf_destroy(&buf);
	gpu_pool_destroy(&pool);
	return fails;
}

// Texel-buffer bindings: a mask past the kernel's bindings, and a bound offset the device cannot
// view, are clean errors.
static int check_texel_bindings(void)
{
	struct gpu_pool *pool = NULL;
	struct gpu_buf *buf = NULL;
	struct gpu_seq *seq = NULL;
	struct gpu_kernel *k = NULL;
	int fails = 0;
	if (gpu_pool_create(g.dev, &(struct gpu_pool_params){ .kind = GPU_POOL_DEVICE, .name = "t" }, &pool) ||
	    gpu_buf_create(pool, 4096, &buf) || gpu_seq_create(g.dev, &seq))
		return 1;
	struct gpu_kernel_params kp = { .id = GPU_KERNEL_POOL2D_FWD, .binding_count = 2, .texel_bindings = 4,
	                                .push_size = 52, .spec_count = 2, .spec = { 64, 1 } };
	EXPECT(gpu_kernel_get(g.dev, &kp, &k), -EINVAL); // binding 2 does not exist
	kp.texel_bindings = 1, kp.texel4_bindings = 1;
	EXPECT(gpu_kernel_get(g.dev, &kp, &k), -EINVAL); // both formats at once
	kp.texel4_bindings = 0;
	EXPECT(gpu_kernel_get(g.dev, &kp, &k), 0);
	// a 1x1 max pool of 4 floats
	uint32_t push[13] = { 4, 1, 2, 2, 2, 2, 1, 1, 0, 1, 0, 1, 0 };
	struct gpu_binding b[2] = { { .buf = buf, .offset = 4, .size = 16 }, { .buf = buf, .offset = 1024, .size = 16, .write = true } };
	struct gpu_dispatch d = { .kernel = k, .bindings = b, .push = push, .groups = { 1, 1, 1 } };
	EXPECT(gpu_seq_begin(seq, false), 0);
	if (gpu_device_info(g.dev)->min_texel_offset_align > 4)
		EXPECT(gpu_seq_dispatch(seq, &d), -EINVAL); // offset 4 not viewable
	b[0].offset = 256;
	EXPECT(gpu_seq_dispatch(seq, &d), 0);
	EXPECT(gpu_seq_end(seq), 0);
	EXPECT(gpu_seq_run(seq), 0);
	gpu_seq_destroy(&seq);
	gpu_buf_destroy(&buf);
	gpu_pool_destroy(&pool);
	return fails;
}

static int check_device_choice(void)
{
	uint32_t index = 99;
	int fails = 0;
	EXPECT(gpu_instance_pick(g.inst, "no-such-gpu-name", &index), -ENODEV);
	EXPECT(gpu_instance_pick(g.inst, "4096", &index), -ENODEV);
	EXPECT(gpu_instance_pick(g.inst, "0", &index), 0);
	if (index != 0)
		fails++;
	// Name substrings match case-insensitively.
	const char *name = gpu_instance_device_info(g.inst, 0)->name;
	char upper[8] = { 0 };
	for (int i = 0; i < 4 && name[i]; i++)
		upper[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
	EXPECT(gpu_instance_pick(g.inst, upper, &index), 0);
	EXPECT(gpu_device_status(g.dev), 0);
	return fails;
}

int main(void)
{
	int fails = 0, ret = test_gpu_open(&g);
	if (ret)
		return ret;
	gpu_log_init(GPU_LOG_ERROR, NULL, NULL); // the expected errors are logged; keep them visible
	TEST_RUN(fails, check_absurd_allocation);
	TEST_RUN(fails, check_bad_ranges);
	TEST_RUN(fails, check_texel_bindings);
	TEST_RUN(fails, check_device_choice);
	fails += test_gpu_close(&g);
	return fails ? 1 : 0;
}
