// Records the backward of max / average pooling and of the nearest resize (layers_train.h). Gather
// kernels: one invocation per input element sums what reaches it and adds it to dx (no atomics).
#include "dispatch.h"
#include "layers_train.h"

#define PB_WG 128

struct pool_bwd_push {
	uint32_t count, c, h_in, w_in, h_out, w_out, k, s, p, x_c_total, x_c_off, y_c_total, y_c_off;
};

struct argmax_push {
	uint32_t count, c, h_in, w_in, h_out, w_out, k, s, p, x_c_total, x_c_off;
};

size_t nn_maxpool2d_bwd_scratch_bytes(const struct nn_pool2d_desc *d)
{
	uint32_t h_out = nn_pool_out_size(d->h_in, d->k, d->stride, d->pad);
	uint32_t w_out = nn_pool_out_size(d->w_in, d->k, d->stride, d->pad);
	return (size_t)d->n * d->c * h_out * w_out * sizeof(float);
}

static int pool_bwd(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_pool2d_desc *d, bool is_max,
                    const struct gpu_binding *x, const struct gpu_binding *dy, const struct gpu_binding *scratch,
                    const struct gpu_binding *dx, const char *label)
{
	uint32_t h_out = nn_pool_out_size(d->h_in, d->k, d->stride, d->pad);
	uint32_t w_out = nn_pool_out_size(d->w_in, d->k, d->stride, d->pad);
	uint32_t xct = d->x_c_total ? d->x_c_total : d->c, yct = d->y_c_total ? d->y_c_total : d->c;
	uint64_t count = (uint64_t)d->n * d->c * d->h_in * d->w_in;
	if (!count || !h_out || !w_out || !d->stride || 2 * d->pad > d->k || d->x_c_off + d->c > xct ||
	    d->y_c_off + d->c > yct || (uint64_t)d->n * xct * d->h_in * d->w_in > UINT32_MAX) {
		LOGE("%s pool bwd %s: bad shape (c %u in %ux%u, k %u, s %u, p %u, x slice %u of %u, y slice %u of %u)",
		     is_max ? "max" : "avg", label ? label : "", d->c, d->h_in, d->w_in, d->k, d->stride, d->pad,
		     d->x_c_off, xct, d->y_c_off, yct);
		return -EINVAL;
	}
	bool tex = nn_texel_reads(dev);
	struct gpu_binding idx = { 0 };
	if (is_max) { // pass 1: every window's maximum position
		size_t need = nn_maxpool2d_bwd_scratch_bytes(d);
		size_t have = !scratch ? 0 : scratch->size ? scratch->size : gpu_buf_size(scratch->buf) - scratch->offset;
		if (have < need || (uint64_t)d->h_in * d->w_in >= (1u << 24)) {
			LOGE("max pool bwd %s: %s", label ? label : "",
			     have < need ? "scratch too small for the window indices" : "planes of 2^24 elements or more");
			return -EINVAL;
		}
		idx = (struct gpu_binding){ scratch->buf, scratch->offset, need, true };
		struct argmax_push ap = { (uint32_t)(need / 4), d->c, d->h_in, d->w_in, h_out, w_out, d->k, d->stride, d->pad,
		                          xct, d->x_c_off };
		struct gpu_binding ab[2] = { *x, idx };
		ab[0].write = false;
		struct gpu_kernel_params akp = { .id = tex ? GPU_KERNEL_MAXPOOL2D_ARGMAX : GPU_KERNEL_MAXPOOL2D_ARGMAX_SSBO,
		                                 .binding_count = 2, .texel_bindings = tex ? 1 : 0, .push_size = sizeof(ap),
		                                 .spec_count = 1, .spec = { PB_WG } };
		uint32_t ag[3];
		nn_grid_1d(dev, ap.count, PB_WG, ag);
		int ret = nn_dispatch(dev, seq, &akp, ab, &ap, ag, label);
		if (ret)
			return ret;
		idx.write = false;
	}
	struct pool_bwd_push p = { (uint32_t)count, d->c, d->h_in, d->w_in, h_out, w_out, d->k, d->stride, d->pad,
	                           xct, d->x_c_off, yct, d->y_c_off };
	struct gpu_binding b[3] = { is_max ? idx : *dy, *dy, *dx };
	b[0].write = b[1].write = false;
	b[2].write = true;
	struct gpu_kernel_params kp = { .id = tex ? GPU_KERNEL_POOL2D_BWD : GPU_KERNEL_POOL2D_BWD_SSBO, .binding_count = 3,
	                                .texel_bindings = tex ? 3 : 0, .push_size = sizeof(p),
	                                .spec_count = 2, .spec = { PB_WG, is_max } };
	uint32_t groups[3];
	nn_grid_1d(dev, count, PB_WG, groups);
	return nn_dispatch(dev, seq, &kp, b, &p, groups, label);
}

int nn_maxpool2d_bwd_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_pool2d_desc *d,
                            const struct gpu_binding *x, const struct gpu_binding *dy, const struct gpu_binding *scratch,
                            const struct gpu_binding *dx, const char *label)
{
	return pool_bwd(dev, seq, d, true, x, dy, scratch, dx, label);
}

int nn_avgpool2d_bwd_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_pool2d_desc *d,
                            const struct gpu_binding *dy, const struct gpu_binding *dx, const char *label)
{
	return pool_bwd(dev, seq, d, false, NULL, dy, NULL, dx, label);
}

struct resize_bwd_push {
	uint32_t count, c, h_in, w_in, h_out, w_out, x_c_total, x_c_off, y_c_total, y_c_off;
};

int nn_resize_nearest_bwd_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_resize_desc *d,
                                 const struct gpu_binding *dy, const struct gpu_binding *dx, const char *label)
{
	uint32_t xct = d->x_c_total ? d->x_c_total : d->c, yct = d->y_c_total ? d->y_c_total : d->c;
	uint64_t count = (uint64_t)d->n * d->c * d->h_in * d->w_in;
	uint64_t ny = (uint64_t)d->n * yct * d->h_out * d->w_out, nx = (uint64_t)d->n * xct * d->h_in * d->w_in;
	if (!count || !d->h_out || !d->w_out || d->x_c_off + d->c > xct || d->y_c_off + d->c > yct ||
	    nx > UINT32_MAX || ny > UINT32_MAX || (uint64_t)(d->h_in + 1) * d->h_out > UINT32_MAX ||
	    (uint64_t)(d->w_in + 1) * d->w_out > UINT32_MAX) {
		LOGE("resize bwd %s: bad shape (c %u, %ux%u -> %ux%u, x slice %u of %u, y slice %u of %u)",
		     label ? label : "", d->c, d->h_in, d->w_in, d->h_out, d->w_out, d->x_c_off, xct, d->y_c_off, yct);
		return -EINVAL;
	}
	struct resize_bwd_push p = { (uint32_t)count, d->c, d->h_in, d->w_in, d->h_out, d->w_out,
	                             xct, d->x_c_off, yct, d->y_c_off };
	struct gpu_binding b[2] = { *dy, *dx };
	b[0].write = false;
	b[1].write = true;
	struct gpu_kernel_params kp = { .id = GPU_KERNEL_RESIZE_NEAREST_BWD, .binding_count = 2,
	                                .push_size = sizeof(p), .spec_count = 1, .spec = { PB_WG } };
	uint32_t groups[3];
	nn_grid_1d(dev, count, PB_WG, groups);
	return nn_dispatch(dev, seq, &kp, b, &p, groups, label);
}
