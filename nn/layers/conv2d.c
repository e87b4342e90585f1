// Records the fused direct convolution (shaders/conv2d_fwd.comp) and packs its weights.
#include <string.h>

#include "layers.h"

#define CONV_WG 64

struct conv_push {
	uint32_t lanes, tiles_w, cig, cog, bpg, h_in, w_in, h_out, w_out, pad;
	uint32_t x_c_total, x_c_off, y_c_total, y_c_off, r_c_total, r_c_off;
};
_Static_assert(sizeof(struct conv_push) == 64, "conv2d_fwd.comp push block");

void nn_conv2d_choose_tile(const struct gpu_device_info *info, const struct nn_conv2d_desc *d,
                           struct nn_conv2d_tile *t)
{
	(void)info;
	uint32_t cog = d->c_out / d->groups;
	t->ocv = cog >= 16 ? 4 : cog >= 8 ? 2 : 1;
	t->pw = d->k_w == 1 && d->stride == 1 ? 8 : 8;
}

static uint32_t blocks_per_group(const struct nn_conv2d_desc *d, const struct nn_conv2d_tile *t)
{
	uint32_t cog = d->c_out / d->groups, ocb = 4 * t->ocv;
	return (cog + ocb - 1) / ocb;
}

size_t nn_conv2d_packed_weight_floats(const struct nn_conv2d_desc *d, const struct nn_conv2d_tile *t)
{
	return (size_t)d->groups * blocks_per_group(d, t) * (d->c_in / d->groups) * d->k_h * d->k_w * 4 * t->ocv;
}

size_t nn_conv2d_packed_bias_floats(const struct nn_conv2d_desc *d, const struct nn_conv2d_tile *t)
{
	return (size_t)d->groups * blocks_per_group(d, t) * 4 * t->ocv;
}

void nn_conv2d_pack(const struct nn_conv2d_desc *d, const struct nn_conv2d_tile *t, const float *w,
                    const float *bias, float *wp, float *bp)
{
	uint32_t cig = d->c_in / d->groups, cog = d->c_out / d->groups, ocb = 4 * t->ocv;
	uint32_t bpg = blocks_per_group(d, t), kk = d->k_h * d->k_w;
	memset(wp, 0, nn_conv2d_packed_weight_floats(d, t) * sizeof(float));
	memset(bp, 0, nn_conv2d_packed_bias_floats(d, t) * sizeof(float));
	// wp: [groups*bpg][cig][k_h*k_w][ocb], bp: [groups*bpg][ocb]
	for (uint32_t g = 0; g < d->groups; g++) {
		for (uint32_t b = 0; b < bpg; b++) {
			size_t blk = (size_t)g * bpg + b;
			for (uint32_t j = 0; j < ocb; j++) {
				uint32_t ocg = b * ocb + j;
				if (ocg >= cog)
					break;
				size_t oc = (size_t)g * cog + ocg;
				bp[blk * ocb + j] = bias ? bias[oc] : 0.0f;
				for (uint32_t ci = 0; ci < cig; ci++)
					for (uint32_t k = 0; k < kk; k++)
						wp[((blk * cig + ci) * kk + k) * ocb + j] = w[(oc * cig + ci) * kk + k];
			}
		}
	}
}

int nn_conv2d_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_conv2d_desc *d,
                     const struct nn_conv2d_tile *t, bool has_residual, const struct gpu_binding *x,
                     const struct gpu_binding *wp, const struct gpu_binding *bp, const struct gpu_binding *r,
                     const struct gpu_binding *y, const char *label)
{
	uint32_t h_out = nn_conv2d_out_h(d), w_out = nn_conv2d_out_w(d);
	if (!d->groups || d->c_in % d->groups || d->c_out % d->groups || !h_out || !w_out ||
	    (d->avgpool_before && (d->h_in < 2 || d->w_in < 2))) {
		LOGE("conv2d %s: bad shape (c_in %u, c_out %u, groups %u, in %ux%u, k %ux%u)", label ? label : "",
		     d->c_in, d->c_out, d->groups, d->h_in, d->w_in, d->k_h, d->k_w);
		return -EINVAL;
	}
	struct gpu_kernel *k = NULL;
	uint32_t res = has_residual ? (d->res_before_act ? 2 : 1) : 0;
	struct gpu_kernel_params kp = { .id = GPU_KERNEL_CONV2D_FWD, .binding_count = 5,
	                                .push_size = sizeof(struct conv_push), .spec_count = 9,
	                                .spec = { CONV_WG, t->ocv, t->pw, d->k_h, d->k_w, d->stride,
	                                          (uint32_t)d->act, d->avgpool_before, res } };
	int ret = gpu_kernel_get(dev, &kp, &k);
	if (ret)
		return ret;
	uint32_t tiles_w = (w_out + t->pw - 1) / t->pw, bpg = blocks_per_group(d, t);
	struct conv_push p = {
		.lanes = d->n * h_out * tiles_w, .tiles_w = tiles_w, .cig = d->c_in / d->groups,
		.cog = d->c_out / d->groups, .bpg = bpg, .h_in = d->h_in, .w_in = d->w_in,
		.h_out = h_out, .w_out = w_out, .pad = d->pad,
		.x_c_total = d->x_c_total ? d->x_c_total : d->c_in, .x_c_off = d->x_c_off,
		.y_c_total = d->y_c_total ? d->y_c_total : d->c_out, .y_c_off = d->y_c_off,
		.r_c_total = d->r_c_total ? d->r_c_total : d->c_out, .r_c_off = d->r_c_off,
	};
	struct gpu_binding b[5] = { *x, *wp, *bp, has_residual ? *r : *x, *y };
	b[0].write = b[1].write = b[2].write = b[3].write = false;
	b[4].write = true;
	return gpu_seq_dispatch(seq, &(struct gpu_dispatch){ .kernel = k, .bindings = b, .push = &p,
	                        .groups = { (p.lanes + CONV_WG - 1) / CONV_WG, d->groups * bpg, 1 }, .label = label });
}
