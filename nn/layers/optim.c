// Records the optimizer kernels of training (layers_train.h, "optimizer"): the deterministic sum of
// squares behind gradient-norm clipping, the fused clip + SGD update and the EMA of the weights.
#include <math.h>

#include "dispatch.h"
#include "layers_train.h"

// Sum of squares: every workgroup of pass 1 reduces a fixed chunk of SUMSQ_CHUNK floats; later
// passes (reduce_sum_f32) reduce SUMSQ_CHUNK partials each, until one value is left. The chunk is
// fixed (not the device's workgroup size) so that the scratch layout depends on the count alone.
#define SUMSQ_CHUNK 4096u
// Each level of partials starts at a multiple of the largest storage-offset alignment Vulkan allows.
#define LEVEL_ALIGN 256u
// Element-wise kernels (sgd, ema): one invocation per float.
#define OPT_WG 256u

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

// Bytes a binding covers (0 when it is unusable: no buffer, offset past the end).
static size_t binding_bytes(const struct gpu_binding *b)
{
	if (!b || !b->buf)
		return 0;
	size_t total = gpu_buf_size(b->buf);
	if (b->offset > total)
		return 0;
	return b->size ? b->size : total - b->offset;
}

// -EINVAL (logged) unless binding `name` of kernel `what` has a buffer and holds at least `bytes`.
static int check_binding(const char *what, const char *label, const char *name, const struct gpu_binding *b,
                         uint64_t bytes)
{
	if (!b || !b->buf) {
		LOGE("%s %s: binding %s has no buffer", what, label ? label : "", name);
		return -EINVAL;
	}
	size_t have = binding_bytes(b);
	if (have < bytes || !have) {
		LOGE("%s %s: binding %s holds %zu bytes, %llu needed", what, label ? label : "", name, have,
		     (unsigned long long)bytes);
		return -EINVAL;
	}
	return 0;
}

// Counts are indexed with 32-bit integers in the shaders (a buffer holds at most 4 GiB anyway).
static int check_count(const char *what, const char *label, uint64_t count)
{
	if (count > UINT32_MAX - SUMSQ_CHUNK) {
		LOGE("%s %s: %llu floats exceed the 32-bit index range", what, label ? label : "",
		     (unsigned long long)count);
		return -EINVAL;
	}
	return 0;
}

static uint32_t reduce_wg(const struct gpu_device_info *info)
{
	return info->max_workgroup_invocations >= 256 && info->max_workgroup_size[0] >= 256 ? 256 : 128;
}

size_t nn_sumsq_scratch_bytes(uint64_t count)
{
	size_t bytes = 0;
	for (uint64_t n = count, groups; (groups = div_up(n, SUMSQ_CHUNK)) > 1; n = groups)
		bytes += (size_t)div_up(groups * 4, LEVEL_ALIGN) * LEVEL_ALIGN;
	return bytes;
}

int nn_sumsq_record(struct gpu_device *dev, struct gpu_seq *seq, uint64_t count, const struct gpu_binding *x,
                    const struct gpu_binding *scratch, const struct gpu_binding *out, const char *label)
{
	size_t need = nn_sumsq_scratch_bytes(count);
	int ret = check_count("sumsq", label, count);
	if (!ret)
		ret = check_binding("sumsq", label, "x", x, count * 4);
	if (!ret && need)
		ret = check_binding("sumsq", label, "scratch", scratch, need);
	if (!ret)
		ret = check_binding("sumsq", label, "out", out, 4);
	if (ret)
		return ret;
	uint32_t wg = reduce_wg(gpu_device_info(dev));
	struct gpu_binding in = *x, b[2];
	in.write = false;
	if (count)
		in.size = count * 4;
	size_t level_off = 0;
	uint64_t n = count;
	for (int pass = 0;; pass++) {
		uint64_t groups = div_up(n, SUMSQ_CHUNK);
		b[0] = in;
		if (groups <= 1) {
			b[1] = *out;
			b[1].size = 4;
		} else {
			b[1] = *scratch;
			b[1].offset += level_off;
			b[1].size = groups * 4;
			level_off += (size_t)div_up(groups * 4, LEVEL_ALIGN) * LEVEL_ALIGN;
		}
		b[1].write = true;
		struct gpu_kernel *k = NULL;
		struct gpu_kernel_params kp = { .id = pass ? GPU_KERNEL_REDUCE_SUM_F32 : GPU_KERNEL_SUMSQ_F32,
		                                .binding_count = 2, .push_size = 8, .spec_count = 1, .spec = { wg } };
		ret = gpu_kernel_get(dev, &kp, &k);
		if (ret)
			return ret;
		uint32_t push[2] = { (uint32_t)n, SUMSQ_CHUNK };
		struct gpu_dispatch d = { .kernel = k, .bindings = b, .push = push, .label = label };
		// reduce_sum_f32 has no folded grid; from pass 1 on there are few groups (count / 4096^2)
		nn_grid_1d(dev, groups ? groups : 1, 1, d.groups);
		if (pass && d.groups[1] > 1) {
			LOGE("sumsq %s: %llu partials exceed one grid row", label ? label : "", (unsigned long long)groups);
			return -EINVAL;
		}
		ret = gpu_seq_dispatch(seq, &d);
		if (ret || groups <= 1)
			return ret;
		in = b[1];
		in.write = false;
		n = groups;
	}
}

struct sgd_push {
	uint32_t n;
	float lr, momentum, wd, max_norm;
};

int nn_sgd_record(struct gpu_device *dev, struct gpu_seq *seq, uint64_t count, const struct nn_sgd_record_params *p,
                  const struct gpu_binding *sumsq, const struct gpu_binding *param, const struct gpu_binding *grad,
                  const struct gpu_binding *buf, const char *label)
{
	int ret = check_count("sgd", label, count);
	bool clip = p->max_norm > 0.0f;
	if (!ret && clip)
		ret = check_binding("sgd", label, "sumsq", sumsq, 4);
	if (!ret)
		ret = check_binding("sgd", label, "param", param, count * 4);
	if (!ret)
		ret = check_binding("sgd", label, "grad", grad, count * 4);
	if (!ret)
		ret = check_binding("sgd", label, "buf", buf, count * 4);
	if (ret || !count)
		return ret;
	// without clipping the shader never reads binding 0: any readable range will do
	struct gpu_binding b[4] = { clip ? *sumsq : *grad, *param, *grad, *buf };
	b[0].size = 4;
	b[0].write = false, b[1].write = true, b[2].write = false, b[3].write = true;
	for (int i = 1; i < 4; i++)
		b[i].size = count * 4;
	struct gpu_kernel *k = NULL;
	struct gpu_kernel_params kp = { .id = GPU_KERNEL_SGD_F32, .binding_count = 4, .push_size = sizeof(struct sgd_push),
	                                .spec_count = 3, .spec = { OPT_WG, p->nesterov, p->first } };
	ret = gpu_kernel_get(dev, &kp, &k);
	if (ret)
		return ret;
	struct sgd_push push = { (uint32_t)count, p->lr, p->momentum, p->weight_decay, clip ? p->max_norm : 0.0f };
	struct gpu_dispatch d = { .kernel = k, .bindings = b, .push = &push, .label = label };
	nn_grid_1d(dev, count, OPT_WG, d.groups);
	return gpu_seq_dispatch(seq, &d);
}

int nn_ema_record(struct gpu_device *dev, struct gpu_seq *seq, uint64_t count, double decay,
                  const struct gpu_binding *ema, const struct gpu_binding *cur, const char *label)
{
	int ret = check_count("ema", label, count);
	if (!ret && !(decay >= 0.0 && decay <= 1.0)) {
		LOGE("ema %s: decay %g outside [0, 1]", label ? label : "", decay);
		ret = -EINVAL;
	}
	if (!ret)
		ret = check_binding("ema", label, "ema", ema, count * 4);
	if (!ret)
		ret = check_binding("ema", label, "cur", cur, count * 4);
	if (ret || !count)
		return ret;
	struct gpu_binding b[2] = { *ema, *cur };
	b[0].write = true, b[1].write = false;
	b[0].size = b[1].size = count * 4;
	struct gpu_kernel *k = NULL;
	struct gpu_kernel_params kp = { .id = GPU_KERNEL_EMA_F32, .binding_count = 2, .push_size = 12,
	                                .spec_count = 1, .spec = { OPT_WG } };
	ret = gpu_kernel_get(dev, &kp, &k);
	if (ret)
		return ret;
	// as torch: `v *= d; v += (1 - d) * model`, 1 - d formed in double and rounded once
	struct {
		uint32_t n;
		float d, omd;
	} push = { (uint32_t)count, (float)decay, (float)(1.0 - decay) };
	struct gpu_dispatch d = { .kernel = k, .bindings = b, .push = &push, .label = label };
	nn_grid_1d(dev, count, OPT_WG, d.groups);
	return gpu_seq_dispatch(seq, &d);
}
