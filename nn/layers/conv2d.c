// Records the fused convolutions (shaders/conv2d_fwd*.comp) and packs their weights. All kernels
// read one packed layout: [groups * bpg][cig][k_h][row] weights with row = [k_w][ocb] (padded to
// 4 * SG_LANES floats for conv2d_fwd_sg.comp), [groups * bpg][ocb] bias.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"

#define CONV_WG 64
#define SG_LANES 8 // conv2d_fwd_sg.comp: one subgroup of 8 per workgroup (lavapipe)

struct conv_push {
	uint32_t lanes, tiles_w, cig, cog, bpg, h_in, w_in, h_out, w_out, pad;
	uint32_t x_c_total, x_c_off, y_c_total, y_c_off, r_c_total, r_c_off;
};
_Static_assert(sizeof(struct conv_push) == 64, "conv2d_fwd.comp push block");

void nn_conv2d_choose_tile(const struct gpu_device_info *info, const struct nn_conv2d_desc *d,
                           struct nn_conv2d_tile *t)
{
	uint32_t cog = d->c_out / d->groups, hw = nn_conv2d_out_h(d) * nn_conv2d_out_w(d);
	// Tuning override "variant,ocb,px" (benchmarks only; ignored when malformed).
	const char *e = getenv("VKYOLO_CONV_TILE");
	unsigned v, ocb, px;
	if (e && sscanf(e, "%u,%u,%u", &v, &ocb, &px) == 3 && v <= NN_CONV2D_SG && ocb && ocb % 4 == 0 && px &&
	    (v != NN_CONV2D_1X1 || px % 4 == 0)) {
		*t = (struct nn_conv2d_tile){ (enum nn_conv2d_variant)v, ocb, px };
		return;
	}
	if (info->type == GPU_DEVICE_TYPE_CPU && info->subgroup_size == SG_LANES && info->subgroup_shuffle) {
		// lavapipe: activations and weights come through texel buffers (one vector gather per load),
		// so the accumulators' register spills are what is left to balance against the loads: channel
		// blocks of up to 40 (split evenly: 80 channels = 2 x 40) and as many pixels per lane as an
		// accumulator budget of 200 allows (40 x 5, 16 x 10). Measured GELAN-T 640 bs1 median latency:
		// cap/budget 32/320 825 ms, 32/192 667, 32/128 713, 16/160 688, 48/240 652, 40/200 627.
		// px depends on the block size only, never on the input size, so every input size shares
		// the same pipelines.
		// 1x1 convolutions do KW = 1 times fewer FMAs per weight shuffle and per x load, so they
		// want bigger tiles: channel blocks of up to 64 and 320 accumulators (64 x 5, 32 x 10).
		// Blocks of 80 or more channels gave wrong outputs for a few pixels of a 13>127 1x1 case
		// on lavapipe (LLVM 15) whatever the pixels per lane (2 to 5) or channels per trip; 76 and
		// 64 (also with 10 pixels) are right, so 1x1 blocks stay at 64 or fewer.
		// Measured on lavapipe, batch 8, forward ms (min / median of 4-6 interleaved runs) against
		// the 40 / 200 rule: 64>64 at 80x80 22.8 / 36.4 (64 x 10) and 26.7 / 40.2 (64 x 5) vs
		// 34.3 / 48.0 (32 x 5); 128>128 at 40x40 22.7 / 26.7 vs 24.2 / 36.6; 32>32 at 160x160
		// 38.2 / 54.1 (32 x 10) vs 48.5 / 63.8.
		bool one = d->k_h == 1 && d->k_w == 1;
		const char *ec = getenv(one ? "VKYOLO_SG_CAP_1X1" : "VKYOLO_SG_CAP");
		const char *ea = getenv(one ? "VKYOLO_SG_MAXACC_1X1" : "VKYOLO_SG_MAXACC");
		uint32_t cap = ec ? (uint32_t)atoi(ec) : one ? 64 : 40, maxacc = ea ? (uint32_t)atoi(ea) : one ? 320 : 200;
		cap = cap ? cap : 64;
		uint32_t blocks = (cog + cap - 1) / cap;
		t->variant = NN_CONV2D_SG;
		t->ocb = ((cog + blocks - 1) / blocks + 3) / 4 * 4;
		// A multiple of 5 (5, 10, 15 or 20) divides every output width of a 640 input (20 to 320).
		t->px = maxacc / t->ocb / 5 * 5;
		t->px = t->px < 5 ? 5 : t->px > 20 ? 20 : t->px;
		return;
	}
	if (d->k_h == 1 && d->k_w == 1 && d->stride == 1 && d->pad == 0 && !d->avgpool_before && hw % 4 == 0) {
		t->variant = NN_CONV2D_1X1;
		t->ocb = cog >= 16 ? 16 : cog >= 8 ? 8 : 4;
		t->px = 4 * 4;
		return;
	}
	t->variant = NN_CONV2D_DIRECT;
	t->ocb = cog >= 16 ? 16 : cog >= 8 ? 8 : 4;
	t->px = 8;
}

static uint32_t blocks_per_group(const struct nn_conv2d_desc *d, const struct nn_conv2d_tile *t)
{
	uint32_t cog = d->c_out / d->groups;
	return (cog + t->ocb - 1) / t->ocb;
}

// Floats of one kernel row (k_w taps x ocb channels) in the packed weights: conv2d_fwd_sg.comp
// loads whole rows cooperatively, 4 * SG_LANES floats at a time.
static uint32_t packed_row(const struct nn_conv2d_desc *d, const struct nn_conv2d_tile *t)
{
	uint32_t row = d->k_w * t->ocb, chunk = 4 * SG_LANES;
	return t->variant == NN_CONV2D_SG ? (row + chunk - 1) / chunk * chunk : row;
}

size_t nn_conv2d_packed_weight_floats(const struct nn_conv2d_desc *d, const struct nn_conv2d_tile *t)
{
	return (size_t)d->groups * blocks_per_group(d, t) * (d->c_in / d->groups) * d->k_h * packed_row(d, t);
}

size_t nn_conv2d_packed_bias_floats(const struct nn_conv2d_desc *d, const struct nn_conv2d_tile *t)
{
	return (size_t)d->groups * blocks_per_group(d, t) * t->ocb;
}

void nn_conv2d_pack(const struct nn_conv2d_desc *d, const struct nn_conv2d_tile *t, const float *w,
                    const float *bias, float *wp, float *bp)
{
	uint32_t cig = d->c_in / d->groups, cog = d->c_out / d->groups, ocb = t->ocb;
	uint32_t bpg = blocks_per_group(d, t), kk = d->k_h * d->k_w, row = packed_row(d, t);
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
					for (uint32_t kh = 0; kh < d->k_h; kh++)
						for (uint32_t kw = 0; kw < d->k_w; kw++)
							wp[((blk * cig + ci) * d->k_h + kh) * row + kw * ocb + j] =
								w[(oc * cig + ci) * kk + kh * d->k_w + kw];
			}
		}
	}
}

struct conv1x1_push {
	uint32_t lanes, tiles, cig, cog, bpg, hw4;
	uint32_t x_c_total, x_c_off, y_c_total, y_c_off, r_c_total, r_c_off;
};
_Static_assert(sizeof(struct conv1x1_push) == 48, "conv2d_fwd_1x1.comp push block");

static int record_1x1(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_conv2d_desc *d,
                      const struct nn_conv2d_tile *t, bool has_residual, const struct gpu_binding *b,
                      const char *label)
{
	uint32_t hw = d->h_in * d->w_in, pv = t->px / 4, bpg = blocks_per_group(d, t);
	if (hw % 4 || t->px % 4 || d->k_h != 1 || d->k_w != 1 || d->stride != 1 || d->pad || d->avgpool_before) {
		LOGE("conv2d %s: not a 1x1 s1 conv over a plane of 4k pixels", label ? label : "");
		return -EINVAL;
	}
	struct gpu_kernel *k = NULL;
	uint32_t res = has_residual ? (d->res_before_act ? 2 : 1) : 0;
	struct gpu_kernel_params kp = { .id = GPU_KERNEL_CONV2D_FWD_1X1, .binding_count = 5,
	                                .push_size = sizeof(struct conv1x1_push), .spec_count = 5,
	                                .spec = { CONV_WG, t->ocb, pv, (uint32_t)d->act, res } };
	int ret = gpu_kernel_get(dev, &kp, &k);
	if (ret)
		return ret;
	uint32_t tiles = (hw / 4 + pv - 1) / pv;
	struct conv1x1_push p = {
		.lanes = d->n * tiles, .tiles = tiles, .cig = d->c_in / d->groups, .cog = d->c_out / d->groups,
		.bpg = bpg, .hw4 = hw / 4,
		.x_c_total = d->x_c_total ? d->x_c_total : d->c_in, .x_c_off = d->x_c_off,
		.y_c_total = d->y_c_total ? d->y_c_total : d->c_out, .y_c_off = d->y_c_off,
		.r_c_total = d->r_c_total ? d->r_c_total : d->c_out, .r_c_off = d->r_c_off,
	};
	return gpu_seq_dispatch(seq, &(struct gpu_dispatch){ .kernel = k, .bindings = b, .push = &p,
	                        .groups = { (p.lanes + CONV_WG - 1) / CONV_WG, d->groups * bpg, 1 }, .label = label });
}

struct sg_push {
	uint32_t tiles_w, cig, cog, bpg, h_in, w_in, h_out, w_out, pad;
	uint32_t x_c_total, x_c_off, y_c_total, y_c_off, r_c_total, r_c_off;
};
_Static_assert(sizeof(struct sg_push) == 60, "conv2d_fwd_sg.comp push block");

// Input channels per loop trip of conv2d_fwd_sg.comp (VKYOLO_SG_CIU_1X1 / VKYOLO_SG_CIU for tuning).
// Measured on GELAN-T 640 (GPU time summed over the convs, two runs each): 1 / 1: 613 and 637 ms,
// 4 for 1x1 and 2 otherwise: 579 and 598 ms.
static uint32_t sg_channels_per_trip(const struct nn_conv2d_desc *d)
{
	bool one = d->k_h * d->k_w == 1;
	const char *e = getenv(one ? "VKYOLO_SG_CIU_1X1" : "VKYOLO_SG_CIU");
	uint32_t v = e ? (uint32_t)atoi(e) : one ? 4 : 2;
	return v ? v : 1;
}

static int record_sg(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_conv2d_desc *d,
                     const struct nn_conv2d_tile *t, bool has_residual, const struct gpu_binding *b,
                     const char *label)
{
	uint32_t h_out = nn_conv2d_out_h(d), w_out = nn_conv2d_out_w(d), bpg = blocks_per_group(d, t);
	uint32_t tiles_w = (w_out + t->px - 1) / t->px;
	struct gpu_kernel *k = NULL;
	uint32_t res = has_residual ? (d->res_before_act ? 2 : 1) : 0;
	struct gpu_kernel_params kp = { .id = GPU_KERNEL_CONV2D_FWD_SG, .binding_count = 5, .texel_bindings = 1, .texel4_bindings = 2,
	                                .push_size = sizeof(struct sg_push), .spec_count = 10,
	                                .spec = { SG_LANES, t->ocb, t->px, d->k_h, d->k_w, d->stride,
	                                          (uint32_t)d->act, d->avgpool_before, res, sg_channels_per_trip(d) } };
	int ret = gpu_kernel_get(dev, &kp, &k);
	if (ret)
		return ret;
	struct sg_push p = {
		.tiles_w = tiles_w, .cig = d->c_in / d->groups, .cog = d->c_out / d->groups, .bpg = bpg,
		.h_in = d->h_in, .w_in = d->w_in, .h_out = h_out, .w_out = w_out, .pad = d->pad,
		.x_c_total = d->x_c_total ? d->x_c_total : d->c_in, .x_c_off = d->x_c_off,
		.y_c_total = d->y_c_total ? d->y_c_total : d->c_out, .y_c_off = d->y_c_off,
		.r_c_total = d->r_c_total ? d->r_c_total : d->c_out, .r_c_off = d->r_c_off,
	};
	return gpu_seq_dispatch(seq, &(struct gpu_dispatch){ .kernel = k, .bindings = b, .push = &p,
	                        .groups = { (h_out * tiles_w + SG_LANES - 1) / SG_LANES, d->groups * bpg, d->n },
	                        .label = label });
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
	struct gpu_binding b[5] = { *x, *wp, *bp, has_residual ? *r : *x, *y };
	b[0].write = b[1].write = b[2].write = b[3].write = false;
	b[4].write = true;
	if (t->variant == NN_CONV2D_1X1)
		return record_1x1(dev, seq, d, t, has_residual, b, label);
	if (t->variant == NN_CONV2D_SG)
		return record_sg(dev, seq, d, t, has_residual, b, label);
	struct gpu_kernel *k = NULL;
	uint32_t res = has_residual ? (d->res_before_act ? 2 : 1) : 0;
	struct gpu_kernel_params kp = { .id = GPU_KERNEL_CONV2D_FWD, .binding_count = 5,
	                                .push_size = sizeof(struct conv_push), .spec_count = 9,
	                                .spec = { CONV_WG, t->ocb / 4, t->px, d->k_h, d->k_w, d->stride,
	                                          (uint32_t)d->act, d->avgpool_before, res } };
	int ret = gpu_kernel_get(dev, &kp, &k);
	if (ret)
		return ret;
	uint32_t tiles_w = (w_out + t->px - 1) / t->px, bpg = blocks_per_group(d, t);
	struct conv_push p = {
		.lanes = d->n * h_out * tiles_w, .tiles_w = tiles_w, .cig = d->c_in / d->groups,
		.cog = d->c_out / d->groups, .bpg = bpg, .h_in = d->h_in, .w_in = d->w_in,
		.h_out = h_out, .w_out = w_out, .pad = d->pad,
		.x_c_total = d->x_c_total ? d->x_c_total : d->c_in, .x_c_off = d->x_c_off,
		.y_c_total = d->y_c_total ? d->y_c_total : d->c_out, .y_c_off = d->y_c_off,
		.r_c_total = d->r_c_total ? d->r_c_total : d->c_out, .r_c_off = d->r_c_off,
	};
	return gpu_seq_dispatch(seq, &(struct gpu_dispatch){ .kernel = k, .bindings = b, .push = &p,
	                        .groups = { (p.lanes + CONV_WG - 1) / CONV_WG, d->groups * bpg, 1 }, .label = label });
}
