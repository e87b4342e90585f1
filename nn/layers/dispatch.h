// Internal to nn/layers: the workgroup grid of an element-wise kernel and a one-call "get the kernel,
// record the dispatch" helper. Static inline, no exported symbols.
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "gpu.h"

// Whether kernels with a storage-buffer twin (shaders/include/reads.glsl) read through texel
// buffers: on CPU devices, where that is one gather instead of a loop over the lanes. GPUs read
// storage buffers (their texel buffers may hold as few as 65536 floats). VKYOLO_TEXEL_READS=0/1
// overrides (the tests run both kinds on lavapipe).
static inline bool nn_texel_reads(struct gpu_device *dev)
{
	const char *e = getenv("VKYOLO_TEXEL_READS");
	if (e && (*e == '0' || *e == '1'))
		return *e == '1';
	return gpu_device_info(dev)->type == GPU_DEVICE_TYPE_CPU;
}

// Workgroup grid for `count` invocations of wg each, folded into y when x would exceed the device
// limit (shaders index gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * groups_x * wg).
static inline void nn_grid_1d(const struct gpu_device *dev, uint64_t count, uint32_t wg, uint32_t groups[3])
{
	uint64_t g = (count + wg - 1) / wg, maxx = gpu_device_info(dev)->max_workgroup_count[0];
	uint64_t gy = (g + maxx - 1) / maxx;
	groups[0] = (uint32_t)((g + gy - 1) / gy);
	groups[1] = (uint32_t)gy;
	groups[2] = 1;
}

// Gets the kernel for kp (push_size, binding_count and spec filled by the caller) and records one
// dispatch of it over groups.
static inline int nn_dispatch(struct gpu_device *dev, struct gpu_seq *seq, const struct gpu_kernel_params *kp,
                              const struct gpu_binding *b, const void *push, const uint32_t groups[3],
                              const char *label)
{
	struct gpu_kernel *k = NULL;
	int ret = gpu_kernel_get(dev, kp, &k);
	if (ret)
		return ret;
	struct gpu_dispatch disp = { .kernel = k, .bindings = b, .push = push,
	                             .groups = { groups[0], groups[1], groups[2] }, .label = label };
	return gpu_seq_dispatch(seq, &disp);
}
