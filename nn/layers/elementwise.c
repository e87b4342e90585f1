// Records the memory-bound layers: max/average pooling, nearest resize (with accumulate), the
// uint8 input conversion and the detection-head decode. One invocation per output element.
#include <stdlib.h>

#include "layers.h"
#include "dispatch.h"

#define EW_WG 64

// spec1 < 0: the kernel has no spec constant 1.
// texel: mask of the bindings read as texel buffers (see gpu_kernel_params); ids[0] is the texel
// kernel, ids[1] its storage-buffer twin, chosen by nn_texel_reads.
static int record(struct gpu_device *dev, struct gpu_seq *seq, const enum gpu_kernel_id ids[2], uint32_t nbind,
                  uint32_t texel, int spec1, const void *push, uint32_t push_size, uint64_t count,
                  const struct gpu_binding *b, const char *label)
{
	struct gpu_kernel *k = NULL;
	bool tex = texel && nn_texel_reads(dev);
	struct gpu_kernel_params kp = { .id = ids[!tex], .binding_count = nbind, .texel_bindings = tex ? texel : 0,
	                                .push_size = push_size,
	                                .spec_count = spec1 < 0 ? 1 : 2, .spec = { EW_WG, (uint32_t)spec1 } };
	int ret = gpu_kernel_get(dev, &kp, &k);
	if (ret)
		return ret;
	struct gpu_dispatch disp = { .kernel = k, .bindings = b, .push = push, .label = label };
	nn_grid_1d(dev, count, EW_WG, disp.groups);
	return gpu_seq_dispatch(seq, &disp);
}

static void in_out(const struct gpu_binding *x, const struct gpu_binding *y, struct gpu_binding b[2])
{
	b[0] = *x;
	b[0].write = false;
	b[1] = *y;
	b[1].write = true;
}

struct pool_push {
	uint32_t count, c, h_in, w_in, h_out, w_out, k, s, p, x_c_total, x_c_off, y_c_total, y_c_off;
};

static int pool(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_pool2d_desc *d, bool is_max,
                const struct gpu_binding *x, const struct gpu_binding *y, const char *label)
{
	uint32_t h_out = nn_pool_out_size(d->h_in, d->k, d->stride, d->pad);
	uint32_t w_out = nn_pool_out_size(d->w_in, d->k, d->stride, d->pad);
	if (!h_out || !w_out || 2 * d->pad > d->k) {
		LOGE("pool2d %s: bad shape (in %ux%u, k %u, s %u, p %u)", label ? label : "", d->h_in, d->w_in,
		     d->k, d->stride, d->pad);
		return -EINVAL;
	}
	struct pool_push p = { d->n * d->c * h_out * w_out, d->c, d->h_in, d->w_in, h_out, w_out, d->k,
	                       d->stride, d->pad, d->x_c_total ? d->x_c_total : d->c, d->x_c_off,
	                       d->y_c_total ? d->y_c_total : d->c, d->y_c_off };
	struct gpu_binding b[2];
	in_out(x, y, b);
	return record(dev, seq, (enum gpu_kernel_id[]){ GPU_KERNEL_POOL2D_FWD, GPU_KERNEL_POOL2D_FWD_SSBO }, 2, 1, is_max,
	              &p, sizeof(p), p.count, b, label);
}

int nn_maxpool2d_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_pool2d_desc *d,
                        const struct gpu_binding *x, const struct gpu_binding *y, const char *label)
{
	return pool(dev, seq, d, true, x, y, label);
}

int nn_avgpool2d_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_pool2d_desc *d,
                        const struct gpu_binding *x, const struct gpu_binding *y, const char *label)
{
	return pool(dev, seq, d, false, x, y, label);
}

struct resize_push {
	uint32_t count, c, h_in, w_in, h_out, w_out, x_c_total, x_c_off, y_c_total, y_c_off;
};

int nn_resize_nearest_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_resize_desc *d,
                             const struct gpu_binding *x, const struct gpu_binding *y, const char *label)
{
	struct resize_push p = { d->n * d->c * d->h_out * d->w_out, d->c, d->h_in, d->w_in, d->h_out, d->w_out,
	                         d->x_c_total ? d->x_c_total : d->c, d->x_c_off,
	                         d->y_c_total ? d->y_c_total : d->c, d->y_c_off };
	struct gpu_binding b[2];
	in_out(x, y, b);
	return record(dev, seq, (enum gpu_kernel_id[]){ GPU_KERNEL_RESIZE_NEAREST_FWD, GPU_KERNEL_RESIZE_NEAREST_FWD_SSBO }, 2, 1,
	              d->accumulate, &p, sizeof(p), p.count, b, label);
}

int nn_input_u8_record(struct gpu_device *dev, struct gpu_seq *seq, uint64_t count, const struct gpu_binding *x,
                       const struct gpu_binding *y, const char *label)
{
	if (count % 4) {
		LOGE("input_u8 %s: %llu bytes is not a multiple of 4", label ? label : "", (unsigned long long)count);
		return -EINVAL;
	}
	uint32_t count4 = (uint32_t)(count / 4);
	struct gpu_binding b[2];
	in_out(x, y, b);
	return record(dev, seq, (enum gpu_kernel_id[]){ GPU_KERNEL_INPUT_U8_TO_F32, GPU_KERNEL_INPUT_U8_TO_F32 }, 2, 0, -1, &count4, 4, count4, b, label);
}

struct decode_push {
	uint32_t n, nc, reg_max, a_total;
	uint32_t h, w, a_start, c_total, c_off;
	float stride;
};

int nn_detect_decode_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_decode_desc *d,
                            const struct nn_decode_level_slice *slices, const struct gpu_binding *levels,
                            const struct gpu_binding *y, const char *label)
{
	if (d->nl < 1 || d->nl > NN_DETECT_MAX_LEVELS || d->reg_max < 1) {
		LOGE("decode %s: bad levels %u / reg_max %u", label ? label : "", d->nl, d->reg_max);
		return -EINVAL;
	}
	struct gpu_kernel *k = NULL;
	bool tex = nn_texel_reads(dev);
	int ret = gpu_kernel_get(dev, &(struct gpu_kernel_params){
	                         .id = tex ? GPU_KERNEL_DETECT_DECODE_FWD : GPU_KERNEL_DETECT_DECODE_FWD_SSBO,
	                         .binding_count = 2, .texel_bindings = tex, .push_size = sizeof(struct decode_push),
	                         .spec_count = 1, .spec = { EW_WG } }, &k);
	uint32_t a = 0, a_total = nn_decode_anchors(d);
	for (uint32_t l = 0; !ret && l < d->nl; l++) {
		struct decode_push p = { d->n, d->nc, d->reg_max, a_total, d->h[l], d->w[l], a, slices[l].c_total,
		                         slices[l].c_off, d->stride[l] };
		struct gpu_binding b[2];
		in_out(&levels[l], y, b);
		uint64_t count = (uint64_t)d->n * d->h[l] * d->w[l];
		ret = gpu_seq_dispatch(seq, &(struct gpu_dispatch){ .kernel = k, .bindings = b, .push = &p,
		                       .groups = { (uint32_t)((count + EW_WG - 1) / EW_WG), 1, 1 }, .label = label });
		a += d->h[l] * d->w[l];
	}
	return ret;
}
