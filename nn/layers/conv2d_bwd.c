// Records the convolution's training kernels: the GPU weight packing (shaders/conv2d_pack.comp,
// the same layout as nn_conv2d_pack), the data gradient (shaders/conv2d_bwd_data.comp, gather form;
// conv2d_bwd_data_sg.comp on 8-lane CPU devices, which shares the weights with subgroup shuffles)
// and the weight/bias gradient as a deterministic split-K (shaders/conv2d_bwd_weight.comp partials
// per fixed chunk of output rows, or conv2d_bwd_weight_sg.comp on 8-lane CPU devices, which shares
// the x values with subgroup shuffles; then shaders/conv2d_bwd_weight_reduce.comp sums them in order).
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "layers_train.h"

#define BWD_WG 64
#define SG_LANES 8 // conv2d_fwd_sg.comp row padding (nn/layers/conv2d.c)
// Split-K of the weight gradient: aim for this many invocations in the partial pass, with the
// partials capped at this many bytes.
#define WGRAD_TARGET_LANES 65536u
// On CPU devices (lavapipe: a few threads, and every partial store and reduce load runs per SIMD
// lane) 1x1 convolutions take far fewer chunks: 64>64 at 80x80, batch 8 went from 640 one-row
// chunks to 64 and its weight gradient (partials + reduce) from 1.30x to 0.55x the forward's time
// (medians of 3 interleaved runs). 3x3 convolutions gained nothing, and their longer per-chunk sums
// lost precision in cancelling elements (3e-5 absolute on a 16>32 s2 case), so they keep the
// GPU count.
#define WGRAD_TARGET_LANES_CPU_1X1 4096u
#define WGRAD_MAX_CHUNKS 65535u // the grid's y (Vulkan's guaranteed minimum)
#define WGRAD_MAX_SCRATCH (32u << 20)
// ... and each chunk at least this many output pixels: on small maps (10x10 at the head, batch 4)
// one row per chunk made dozens of tiny chunks whose partial writes and reduce cost more than the
// products themselves.
#define WGRAD_MIN_CHUNK_PIXELS 64u

// Register tiles sized for CPU devices (lavapipe: every load costs a loop over the SIMD lanes, so
// bigger tiles load less per FMA) or for GPUs. VKYOLO_CONV_BWD_TILE=cpu|gpu forces one (tests and
// benchmarks). The results do not depend on the tiles.
static bool cpu_tiles(struct gpu_device *dev)
{
	const char *e = getenv("VKYOLO_CONV_BWD_TILE");
	if (e && (!strcmp(e, "cpu") || !strcmp(e, "gpu")))
		return !strcmp(e, "cpu");
	return gpu_device_info(dev)->type == GPU_DEVICE_TYPE_CPU;
}

// The subgroup kernels need CPU tiles on a device with 8-lane subgroups and shuffles (lavapipe).
static bool use_sg(struct gpu_device *dev, bool cpu)
{
	const struct gpu_device_info *info = gpu_device_info(dev);
	return cpu && info->subgroup_size == SG_LANES && info->subgroup_shuffle;
}

// Same shape checks as nn_conv2d_record.
static int check_shape(const struct nn_conv2d_desc *d, const char *what, const char *label)
{
	if (!d->groups || d->c_in % d->groups || d->c_out % d->groups || !d->k_h || !d->k_w || !d->stride ||
	    (d->avgpool_before && (d->h_in < 2 || d->w_in < 2)) || !nn_conv2d_out_h(d) || !nn_conv2d_out_w(d)) {
		LOGE("%s %s: bad shape (c_in %u, c_out %u, groups %u, in %ux%u, k %ux%u, s %u)", what,
		     label ? label : "", d->c_in, d->c_out, d->groups, d->h_in, d->w_in, d->k_h, d->k_w, d->stride);
		return -EINVAL;
	}
	return 0;
}

static struct gpu_binding bind(const struct gpu_binding *b, bool write)
{
	struct gpu_binding r = *b;
	r.write = write;
	return r;
}

struct pack_push {
	uint32_t nwp, nbp, cig, cog, ocb, bpg, k_h, k_w, row, has_bias, transpose;
};

static int pack_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_conv2d_desc *d,
                       const struct nn_conv2d_tile *t, const struct gpu_binding *w, const struct gpu_binding *bias,
                       bool transpose, const struct gpu_binding *wp, const struct gpu_binding *bp, const char *label)
{
	int ret = check_shape(d, "conv2d_pack", label);
	if (ret)
		return ret;
	if (!t->ocb) {
		LOGE("conv2d_pack %s: tile with 0 output channels", label ? label : "");
		return -EINVAL;
	}
	uint32_t cog = d->c_out / d->groups, row = d->k_w * t->ocb, chunk = 4 * SG_LANES;
	if (t->variant == NN_CONV2D_SG)
		row = (row + chunk - 1) / chunk * chunk; // as packed_row() in conv2d.c
	struct pack_push p = {
		.nwp = (uint32_t)nn_conv2d_packed_weight_floats(d, t), .nbp = (uint32_t)nn_conv2d_packed_bias_floats(d, t),
		.cig = d->c_in / d->groups, .cog = cog, .ocb = t->ocb, .bpg = (cog + t->ocb - 1) / t->ocb,
		.k_h = d->k_h, .k_w = d->k_w, .row = row, .has_bias = bias != NULL, .transpose = transpose,
	};
	struct gpu_binding b[4] = { bind(w, false), bind(bias ? bias : w, false), bind(wp, true), bind(bp, true) };
	struct gpu_kernel *k = NULL;
	bool tex = nn_texel_reads(dev);
	struct gpu_kernel_params kp = { .id = tex ? GPU_KERNEL_CONV2D_PACK : GPU_KERNEL_CONV2D_PACK_SSBO, .binding_count = 4,
	                                .texel_bindings = tex ? 3 : 0,
	                                .push_size = sizeof(p), .spec_count = 1, .spec = { BWD_WG } };
	ret = gpu_kernel_get(dev, &kp, &k);
	if (ret)
		return ret;
	struct gpu_dispatch disp = { .kernel = k, .bindings = b, .push = &p, .label = label };
	nn_grid_1d(dev, (uint64_t)p.nwp + p.nbp, BWD_WG, disp.groups);
	return gpu_seq_dispatch(seq, &disp);
}

int nn_conv2d_pack_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_conv2d_desc *d,
                          const struct nn_conv2d_tile *t, const struct gpu_binding *w, const struct gpu_binding *bias,
                          const struct gpu_binding *wp, const struct gpu_binding *bp, const char *label)
{
	return pack_record(dev, seq, d, t, w, bias, false, wp, bp, label);
}

int nn_conv2d_pack_transposed_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_conv2d_desc *t,
                                     const struct nn_conv2d_tile *tile, const struct gpu_binding *w,
                                     const struct gpu_binding *wp, const struct gpu_binding *bp, const char *label)
{
	return pack_record(dev, seq, t, tile, w, NULL, true, wp, bp, label);
}

bool nn_conv2d_bwd_data_as_conv(const struct gpu_device_info *info, const struct nn_conv2d_desc *d,
                                struct nn_conv2d_desc *t)
{
	const char *e = getenv("VKYOLO_DGRAD_AS_CONV"); // "0": always the dgrad kernels (comparisons)
	if ((e && !strcmp(e, "0")) || d->stride != 1 || d->avgpool_before || d->k_h != d->k_w ||
	    2 * d->pad + 1 != d->k_h || !d->groups || d->c_in % d->groups || d->c_out % d->groups)
		return false;
	*t = (struct nn_conv2d_desc){
		.n = d->n, .c_in = d->c_out, .h_in = nn_conv2d_out_h(d), .w_in = nn_conv2d_out_w(d), .c_out = d->c_in,
		.k_h = d->k_h, .k_w = d->k_w, .stride = 1, .pad = d->pad, .groups = d->groups, .act = NN_ACT_NONE,
		.x_c_total = d->c_out, .x_c_off = 0,
		.y_c_total = d->x_c_total ? d->x_c_total : d->c_in, .y_c_off = d->x_c_off,
		.r_c_total = d->x_c_total ? d->x_c_total : d->c_in, .r_c_off = d->x_c_off,
	};
	struct nn_conv2d_tile tile;
	nn_conv2d_choose_tile(info, t, &tile);
	return tile.variant == NN_CONV2D_SG;
}

struct data_push {
	uint32_t lanes, tiles_w, cig, cog, cbpg, h_in, w_in, h_out, w_out, c_out, x_c_total, x_c_off;
};

int nn_conv2d_bwd_data_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_conv2d_desc *d,
                              const struct gpu_binding *dz, const struct gpu_binding *w, const struct gpu_binding *dx,
                              const char *label)
{
	int ret = check_shape(d, "conv2d_bwd_data", label);
	if (ret)
		return ret;
	uint32_t cig = d->c_in / d->groups, avg = d->avgpool_before, s = d->stride;
	// Tile: CIB input channels x S*PW dx' columns (x 2 rows with the pool): 64 accumulators on
	// GPUs; on CPU devices 256, or 512 on rows of 64+ pixels (lavapipe, 64->64 3x3 at 80x80: 16 x 32
	// took 0.6-0.8x the time of 16 x 16).
	bool cpu = cpu_tiles(dev);
	uint32_t span = cpu ? (d->w_in >= 64 ? 32 : 16) : 8, pw = s >= span / 2 ? 2 : span / s;
	uint32_t cib = (cpu ? 16 : 8) >> avg;
	cib = cig < cib ? cig : cib;
	uint32_t tl = s * (pw - avg); // dx columns per invocation
	uint32_t tiles_w = (d->w_in + tl - 1) / tl, cbpg = (cig + cib - 1) / cib;
	struct data_push p = {
		.lanes = d->h_in * tiles_w, .tiles_w = tiles_w, .cig = cig, .cog = d->c_out / d->groups,
		.cbpg = cbpg, .h_in = d->h_in, .w_in = d->w_in, .h_out = nn_conv2d_out_h(d), .w_out = nn_conv2d_out_w(d),
		.c_out = d->c_out, .x_c_total = d->x_c_total ? d->x_c_total : d->c_in, .x_c_off = d->x_c_off,
	};
	// CPU tiles on a device with 8-lane subgroups and shuffles (lavapipe): the subgroup kernel
	// loads each weight once per subgroup instead of once per lane (same results).
	bool sg = use_sg(dev, cpu);
	uint32_t wg = sg ? SG_LANES : BWD_WG;
	struct gpu_binding b[3] = { bind(dz, false), bind(w, false), bind(dx, true) };
	struct gpu_kernel *k = NULL;
	struct gpu_kernel_params kp = { .id = sg ? GPU_KERNEL_CONV2D_BWD_DATA_SG : GPU_KERNEL_CONV2D_BWD_DATA,
	                                .binding_count = 3, .texel_bindings = sg ? 3 : 0, .push_size = sizeof(p), .spec_count = 8,
	                                .spec = { wg, cib, pw, d->k_h, d->k_w, s, avg, d->pad } };
	ret = gpu_kernel_get(dev, &kp, &k);
	if (ret)
		return ret;
	return gpu_seq_dispatch(seq, &(struct gpu_dispatch){ .kernel = k, .bindings = b, .push = &p,
	                        .groups = { (p.lanes + wg - 1) / wg, d->groups * cbpg, d->n }, .label = label });
}

// d's convolution on the pooled plane, reading a dense scratch: pd; the pool's adjoint: pool.
static void pooled_descs(const struct nn_conv2d_desc *d, struct nn_conv2d_desc *pd, struct nn_pool2d_desc *pool)
{
	*pd = *d;
	pd->avgpool_before = false;
	pd->h_in = d->h_in - 1, pd->w_in = d->w_in - 1;
	pd->x_c_total = d->c_in, pd->x_c_off = 0;
	*pool = (struct nn_pool2d_desc){ .n = d->n, .c = d->c_in, .h_in = d->h_in, .w_in = d->w_in, .k = 2, .stride = 1,
		                             .pad = 0, .x_c_total = d->x_c_total ? d->x_c_total : d->c_in,
		                             .x_c_off = d->x_c_off, .y_c_total = d->c_in, .y_c_off = 0 };
}

size_t nn_conv2d_bwd_data_pooled_scratch_bytes(const struct nn_conv2d_desc *d)
{
	if (!d->avgpool_before || d->h_in < 2 || d->w_in < 2)
		return 0;
	return (size_t)d->n * d->c_in * (d->h_in - 1) * (d->w_in - 1) * sizeof(float);
}

int nn_conv2d_bwd_data_pooled_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_conv2d_desc *d,
                                     const struct gpu_binding *dz, const struct gpu_binding *w,
                                     const struct gpu_binding *scratch, const struct gpu_binding *dx, const char *label)
{
	size_t need = nn_conv2d_bwd_data_pooled_scratch_bytes(d);
	size_t have = scratch->size ? scratch->size : gpu_buf_size(scratch->buf) - scratch->offset;
	if (!need || have < need) {
		LOGE("conv2d_bwd_data %s: %s", label ? label : "",
		     need ? "scratch too small for the pooled plane" : "no average pool before the convolution");
		return -EINVAL;
	}
	struct nn_conv2d_desc pd;
	struct nn_pool2d_desc pool;
	pooled_descs(d, &pd, &pool);
	struct gpu_binding s = { scratch->buf, scratch->offset, need, true };
	int ret = gpu_seq_fill(seq, &s, 0);
	if (!ret)
		ret = nn_conv2d_bwd_data_record(dev, seq, &pd, dz, w, &s, label);
	s.write = false;
	return ret ? ret : nn_avgpool2d_bwd_record(dev, seq, &pool, &s, dx, label);
}

// The split-K plan of the weight gradient: register tile, chunk count, rows per chunk; sg: the
// subgroup kernel (conv2d_bwd_weight_sg.comp), groups_x its workgroups along x.
struct wgrad_plan {
	uint32_t ocb, cib, pw, obpg, cbpg, tiles, rows, rpc, chunks, wcount, stride, groups_x;
	bool sg;
};


// OCB x CIB x taps accumulators. GPUs: 8 x 8 for 1x1, 4 x 2 (4 x 3 for 3 input channels) up to
// 3x3; CPU devices without the subgroup kernel: 16 x 16 for 1x1, 8 x 8 (8 x 3) up to 3x3 (lavapipe,
// 64->64 3x3 at 80x80: 8 x 8 took 0.55x the time of 8 x 4). Returns the tile count.
static uint32_t wgrad_tile(const struct nn_conv2d_desc *d, bool cpu, uint32_t *ocb, uint32_t *cib)
{
	uint32_t cig = d->c_in / d->groups, cog = d->c_out / d->groups, kk = d->k_h * d->k_w;
	uint32_t o = (kk == 1 ? 8 : 4) << cpu, c = kk == 1 ? 8 << cpu : kk <= 9 ? (cig == 3 ? 3 : 2 << (2 * cpu)) : 1;
	*ocb = cog < o ? cog : o;
	*cib = cig < c ? cig : c;
	return d->groups * ((cog + *ocb - 1) / *ocb) * ((cig + *cib - 1) / *cib);
}

static void wgrad_plan(const struct nn_conv2d_desc *d, bool cpu, bool sg, bool cpu_device, struct wgrad_plan *pl)
{
	uint32_t cig = d->c_in / d->groups, cog = d->c_out / d->groups, kk = d->k_h * d->k_w;
	pl->tiles = wgrad_tile(d, cpu, &pl->ocb, &pl->cib);
	pl->sg = sg;
	if (sg) {
		// x is shared by the lanes, so big input-channel blocks cost little; small output-channel
		// blocks keep the 8 lanes busy: 1x1 8 x 32, else 4 x 16 (2 or 1 x 16 under 32 / 16
		// output channels), at most 576 accumulators
		uint32_t o = kk == 1 ? 8 : cog >= 32 ? 4 : cog >= 16 ? 2 : 1, c = kk == 1 ? 32 : kk <= 9 ? 16 : 4;
		pl->ocb = cog < o ? cog : o;
		pl->cib = cig < c ? cig : c;
	}
	// PW stays fixed per device class: every new spec-constant variant costs lavapipe a one-time
	// LLVM compile of 10-25 s at its first dispatch (then the Mesa disk cache has it).
	uint32_t w_out = nn_conv2d_out_w(d);
	pl->pw = cpu ? 8 : 4;
	pl->obpg = (cog + pl->ocb - 1) / pl->ocb;
	pl->cbpg = (cig + pl->cib - 1) / pl->cib;
	pl->tiles = d->groups * pl->obpg * pl->cbpg;
	pl->groups_x = sg ? d->groups * pl->cbpg * ((pl->obpg + SG_LANES - 1) / SG_LANES) : (pl->tiles + BWD_WG - 1) / BWD_WG;
	pl->wcount = d->c_out * cig * kk;
	pl->stride = pl->wcount + d->c_out;
	pl->rows = d->n * nn_conv2d_out_h(d);
	// Chunks: enough invocations of the GPU tile to fill the device (a GPU, or a CPU's threads),
	// whole output rows of at least WGRAD_MIN_CHUNK_PIXELS pixels each, partials under the cap. A
	// function of d and the device class (the chunks fix the summation order): every GPU sums in
	// one order and every CPU device in another, each the same on every run.
	uint32_t ocb, cib, gpu_tiles = wgrad_tile(d, false, &ocb, &cib);
	uint32_t lanes = cpu_device && kk == 1 ? WGRAD_TARGET_LANES_CPU_1X1 : WGRAD_TARGET_LANES;
	uint32_t want = (lanes + gpu_tiles - 1) / gpu_tiles;
	uint32_t cap = WGRAD_MAX_SCRATCH / 4 / pl->stride;
	want = want < cap ? want : cap;
	uint32_t min_rows = (WGRAD_MIN_CHUNK_PIXELS + w_out - 1) / w_out;
	uint32_t most = (pl->rows + min_rows - 1) / min_rows;
	want = want < most ? want : most;
	want = want < WGRAD_MAX_CHUNKS ? want : WGRAD_MAX_CHUNKS;
	want = want ? want : 1;
	pl->rpc = (pl->rows + want - 1) / want;
	pl->chunks = (pl->rows + pl->rpc - 1) / pl->rpc;
}

size_t nn_conv2d_bwd_weight_scratch_bytes(const struct gpu_device_info *info, const struct nn_conv2d_desc *d)
{
	(void)info;
	if (!d->groups || d->c_in % d->groups || d->c_out % d->groups || !nn_conv2d_out_h(d) || !nn_conv2d_out_w(d))
		return 0;
	struct wgrad_plan pl;
	wgrad_plan(d, false, false, false, &pl); // the most chunks: enough for either device class
	return (size_t)pl.chunks * pl.stride * sizeof(float);
}

struct wgrad_push {
	uint32_t tiles, obpg, cbpg, cig, cog, c_out, h_in, w_in, h_out, w_out, pad, x_c_total, x_c_off;
	uint32_t rows, rpc, stride, wcount;
};

struct wreduce_push {
	uint32_t count, wcount, chunks, stride, accumulate;
};

int nn_conv2d_bwd_weight_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_conv2d_desc *d,
                                const struct gpu_binding *x, const struct gpu_binding *dz,
                                const struct gpu_binding *scratch, const struct gpu_binding *dw,
                                const struct gpu_binding *db, bool accumulate, const char *label)
{
	int ret = check_shape(d, "conv2d_bwd_weight", label);
	if (ret)
		return ret;
	struct wgrad_plan pl;
	bool cpu = cpu_tiles(dev);
	wgrad_plan(d, cpu, use_sg(dev, cpu), gpu_device_info(dev)->type == GPU_DEVICE_TYPE_CPU, &pl);
	size_t need = (size_t)pl.chunks * pl.stride * sizeof(float);
	size_t have = scratch->size ? scratch->size : gpu_buf_size(scratch->buf) - scratch->offset;
	if (have < need) {
		LOGE("conv2d_bwd_weight %s: scratch of %zu bytes, needs %zu", label ? label : "", have, need);
		return -EINVAL;
	}
	struct gpu_kernel *k1 = NULL, *k2 = NULL;
	struct gpu_kernel_params kp1 = { .id = pl.sg ? GPU_KERNEL_CONV2D_BWD_WEIGHT_SG : GPU_KERNEL_CONV2D_BWD_WEIGHT,
	                                 .binding_count = 3, .texel_bindings = pl.sg ? 3 : 0, .push_size = sizeof(struct wgrad_push),
	                                 .spec_count = 8,
	                                 .spec = { pl.sg ? SG_LANES : BWD_WG, pl.ocb, pl.cib, pl.pw, d->k_h, d->k_w, d->stride,
	                                           d->avgpool_before } };
	bool tex = nn_texel_reads(dev);
	struct gpu_kernel_params kp2 = { .id = tex ? GPU_KERNEL_CONV2D_BWD_WEIGHT_REDUCE : GPU_KERNEL_CONV2D_BWD_WEIGHT_REDUCE_SSBO,
	                                 .binding_count = 3, .texel_bindings = tex ? 1 : 0,
	                                 .push_size = sizeof(struct wreduce_push), .spec_count = 1,
	                                 .spec = { BWD_WG } };
	ret = gpu_kernel_get(dev, &kp1, &k1);
	if (!ret)
		ret = gpu_kernel_get(dev, &kp2, &k2);
	if (ret)
		return ret;
	struct wgrad_push p1 = {
		.tiles = pl.tiles, .obpg = pl.obpg, .cbpg = pl.cbpg, .cig = d->c_in / d->groups,
		.cog = d->c_out / d->groups, .c_out = d->c_out, .h_in = d->h_in, .w_in = d->w_in,
		.h_out = nn_conv2d_out_h(d), .w_out = nn_conv2d_out_w(d), .pad = d->pad,
		.x_c_total = d->x_c_total ? d->x_c_total : d->c_in, .x_c_off = d->x_c_off,
		.rows = pl.rows, .rpc = pl.rpc, .stride = pl.stride, .wcount = pl.wcount,
	};
	struct gpu_binding b1[3] = { bind(x, false), bind(dz, false), bind(scratch, true) };
	ret = gpu_seq_dispatch(seq, &(struct gpu_dispatch){ .kernel = k1, .bindings = b1, .push = &p1,
	                       .groups = { pl.groups_x, pl.chunks, 1 }, .label = label });
	if (ret)
		return ret;
	struct wreduce_push p2 = { pl.wcount + (db ? d->c_out : 0), pl.wcount, pl.chunks, pl.stride, accumulate };
	struct gpu_binding b2[3] = { bind(scratch, false), bind(dw, true), db ? bind(db, true) : bind(scratch, false) };
	struct gpu_dispatch disp = { .kernel = k2, .bindings = b2, .push = &p2, .label = label };
	nn_grid_1d(dev, p2.count, BWD_WG, disp.groups);
	return gpu_seq_dispatch(seq, &disp);
}
