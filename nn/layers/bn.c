// Records the BatchNorm training kernels (layers_train.h): batch statistics, the normalise +
// activation (+ residual) forward, the running-statistics update and the backward through the
// batch statistics (three passes: partial channel sums, their fixed-order total, the element-wise dz).
// Every reduction has a fixed order, so a run repeats bit for bit on one device.
#include "dispatch.h"
#include "layers_train.h"

#define BN_WG 64          // every pass: no shared memory, so the size only groups invocations
#define BN_EW_CHUNK 64    // element-wise passes: elements of one plane per invocation (amortises the
                          // per-channel loads: 64 rather than 16 measured ~10% faster on lavapipe)
#define BN_RED_CHUNK 256  // reductions: the least elements of one plane per invocation
#define BN_RED_PARTS 128  // reductions: the most chunks per plane (bounds the merge passes' serial loop)

static struct gpu_binding rd(const struct gpu_binding *b)
{
	struct gpu_binding o = *b;
	o.write = false;
	return o;
}

static struct gpu_binding wr(const struct gpu_binding *b)
{
	struct gpu_binding o = *b;
	o.write = true;
	return o;
}

static const char *lbl(const char *label)
{
	return label ? label : "";
}

// Elements of one plane per invocation of a reduction over planes of hw: at least BN_RED_CHUNK, a
// multiple of 4, and at most BN_RED_PARTS chunks per plane.
static uint32_t red_chunk(uint64_t hw)
{
	uint64_t c = (hw + BN_RED_PARTS - 1) / BN_RED_PARTS;
	c = (c + 3) & ~(uint64_t)3;
	return (uint32_t)(c > BN_RED_CHUNK ? c : BN_RED_CHUNK);
}

// Whether every binding starts on a 16-byte boundary (so planes of hw % 4 == 0 floats load as vec4).
static bool aligned16(const struct gpu_binding *const *b, int count)
{
	for (int i = 0; i < count; i++)
		if (b[i] && b[i]->offset % 16)
			return false;
	return true;
}

static size_t bind_size(const struct gpu_binding *b)
{
	return b->size ? b->size : gpu_buf_size(b->buf) - b->offset;
}

size_t nn_bn_stats_scratch_bytes(const struct gpu_device_info *info, const struct nn_bn_desc *d)
{
	(void)info;
	uint64_t hw = (uint64_t)d->h * d->w, chunk = red_chunk(hw);
	return (size_t)((uint64_t)d->n * d->c * ((hw + chunk - 1) / chunk) * 2 * sizeof(float));
}

int nn_bn_stats_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_bn_desc *d,
                       const struct gpu_binding *z, const struct gpu_binding *scratch, const struct gpu_binding *mean,
                       const struct gpu_binding *var, const char *label)
{
	uint64_t hw = (uint64_t)d->h * d->w, total = (uint64_t)d->n * d->c * hw;
	if (!total || total > UINT32_MAX) {
		LOGE("bn_stats %s: bad shape n %u c %u %ux%u", lbl(label), d->n, d->c, d->h, d->w);
		return -EINVAL;
	}
	size_t need = nn_bn_stats_scratch_bytes(gpu_device_info(dev), d), have = bind_size(scratch);
	if (have < need) {
		LOGE("bn_stats %s: scratch has %zu bytes, needs %zu", lbl(label), have, need);
		return -EINVAL;
	}
	uint32_t chunk = red_chunk(hw);
	struct {
		uint32_t n, c, hw, chunk, cpp;
	} p = { d->n, d->c, (uint32_t)hw, chunk, (uint32_t)((hw + chunk - 1) / chunk) };
	bool vec4 = hw % 4 == 0 && aligned16((const struct gpu_binding *[]){ z }, 1);
	struct gpu_binding b[4] = { rd(z), wr(scratch) };
	bool tex = nn_texel_reads(dev);
	struct gpu_kernel_params kp = { .id = tex ? GPU_KERNEL_BN_STATS : GPU_KERNEL_BN_STATS_SSBO, .binding_count = 2,
	                                .push_size = sizeof(p), .texel_bindings = tex && !vec4 ? 1 : 0,
	                                .texel4_bindings = tex && vec4 ? 1 : 0,
	                                .spec_count = 2, .spec = { BN_WG, vec4 } };
	uint32_t groups[3];
	nn_grid_1d(dev, (uint64_t)d->n * d->c * p.cpp, BN_WG, groups);
	int ret = nn_dispatch(dev, seq, &kp, b, &p, groups, label);
	if (ret)
		return ret;
	b[0] = rd(scratch), b[1] = wr(mean), b[2] = wr(var), b[3] = rd(z);
	struct gpu_kernel_params km = { .id = GPU_KERNEL_BN_STATS_MERGE, .binding_count = 4, .push_size = sizeof(p),
	                                .spec_count = 1, .spec = { BN_WG } };
	return nn_dispatch(dev, seq, &km, b, &p, (uint32_t[3]){ (d->c + BN_WG - 1) / BN_WG, 1, 1 }, label);
}

// Push block of bn_act_fwd.comp (its first ten words) and include/bn_act_bwd.glsl.
struct bn_push {
	uint32_t work, c, hw, y_c_total, y_c_off, r_c_total, r_c_off;
	float eps;
	uint32_t chunk, cpp;
	float inv_m;
	uint32_t stats_off;
};

// Fills the push block from the conv op d for chunks of `chunk` elements per invocation; -EINVAL
// (logged) when a slice does not fit.
static int bn_push_init(const struct nn_conv2d_desc *d, float eps, bool has_res, uint32_t chunk, const char *what,
                        const char *label, struct bn_push *p)
{
	uint64_t hw = (uint64_t)nn_conv2d_out_h(d) * nn_conv2d_out_w(d), count = (uint64_t)d->n * d->c_out * hw;
	uint32_t yct = d->y_c_total ? d->y_c_total : d->c_out, rct = d->r_c_total ? d->r_c_total : d->c_out;
	if (!count || (uint64_t)d->n * (yct > rct ? yct : rct) * hw > UINT32_MAX || d->y_c_off + d->c_out > yct ||
	    (has_res && d->r_c_off + d->c_out > rct)) {
		LOGE("%s %s: bad shape n %u c_out %u out %llu px, y slice %u+%u of %u, r slice %u+%u of %u", what,
		     lbl(label), d->n, d->c_out, (unsigned long long)hw, d->y_c_off, d->c_out, yct, d->r_c_off, d->c_out,
		     rct);
		return -EINVAL;
	}
	uint32_t cpp = (uint32_t)((hw + chunk - 1) / chunk);
	*p = (struct bn_push){ .work = d->n * d->c_out * cpp, .c = d->c_out, .hw = (uint32_t)hw, .y_c_total = yct,
	                       .y_c_off = d->y_c_off, .r_c_total = rct, .r_c_off = d->r_c_off, .eps = eps,
	                       .chunk = chunk, .cpp = cpp, .inv_m = 1.0f / (float)((uint64_t)d->n * hw) };
	return 0;
}

int nn_bn_act_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_conv2d_desc *d, float eps,
                     const struct gpu_binding *z, const struct gpu_binding *gamma, const struct gpu_binding *beta,
                     const struct gpu_binding *mean, const struct gpu_binding *var, const struct gpu_binding *r,
                     const struct gpu_binding *y, const char *label)
{
	struct bn_push p;
	int ret = bn_push_init(d, eps, r != NULL, BN_EW_CHUNK, "bn_act", label, &p);
	if (ret)
		return ret;
	uint32_t res = r ? (d->res_before_act ? 1 : 2) : 0;
	bool vec4 = p.hw % 4 == 0 && aligned16((const struct gpu_binding *[]){ z, r, y }, 3);
	struct gpu_binding b[7] = { rd(z), rd(gamma), rd(beta), rd(mean), rd(var), rd(r ? r : z), wr(y) };
	bool tex = nn_texel_reads(dev);
	struct gpu_kernel_params kp = { .id = tex ? GPU_KERNEL_BN_ACT_FWD : GPU_KERNEL_BN_ACT_FWD_SSBO, .binding_count = 7,
	                                .push_size = 40, .texel_bindings = tex && !vec4 ? 0x21 : 0,
	                                .texel4_bindings = tex && vec4 ? 0x21 : 0,
	                                .spec_count = 4, .spec = { BN_WG, (uint32_t)d->act, res, vec4 } };
	uint32_t groups[3];
	nn_grid_1d(dev, p.work, BN_WG, groups);
	return nn_dispatch(dev, seq, &kp, b, &p, groups, label);
}

int nn_bn_running_update_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_bn_desc *d,
                                float momentum, const struct gpu_binding *mean, const struct gpu_binding *var,
                                const struct gpu_binding *running_mean, const struct gpu_binding *running_var,
                                const char *label)
{
	double m = (double)d->n * d->h * d->w;
	if (!d->c || m < 1) {
		LOGE("bn_running_update %s: bad shape n %u c %u %ux%u", lbl(label), d->n, d->c, d->h, d->w);
		return -EINVAL;
	}
	struct {
		uint32_t c;
		float momentum, unbias;
	} p = { d->c, momentum, (float)(m > 1 ? m / (m - 1) : 1.0) };
	struct gpu_binding b[4] = { rd(mean), rd(var), wr(running_mean), wr(running_var) };
	struct gpu_kernel_params kp = { .id = GPU_KERNEL_BN_RUNNING_UPDATE, .binding_count = 4,
	                                .push_size = sizeof(p), .spec_count = 1, .spec = { BN_WG } };
	return nn_dispatch(dev, seq, &kp, b, &p, (uint32_t[3]){ (d->c + BN_WG - 1) / BN_WG, 1, 1 }, label);
}

// Partial (S1, S2) pairs per channel of the backward's reduce pass: n planes x chunks per plane.
static uint64_t bwd_parts(const struct nn_conv2d_desc *d)
{
	uint64_t hw = (uint64_t)nn_conv2d_out_h(d) * nn_conv2d_out_w(d), chunk = red_chunk(hw);
	return (uint64_t)d->n * ((hw + chunk - 1) / chunk);
}

size_t nn_bn_act_bwd_scratch_bytes(const struct gpu_device_info *info, const struct nn_conv2d_desc *d)
{
	(void)info;
	return (size_t)(bwd_parts(d) + 1) * d->c_out * 2 * sizeof(float);
}

int nn_bn_act_bwd_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_conv2d_desc *d, float eps,
                         const struct gpu_binding *z, const struct gpu_binding *gamma, const struct gpu_binding *beta,
                         const struct gpu_binding *mean, const struct gpu_binding *var, const struct gpu_binding *r,
                         const struct gpu_binding *dy, const struct gpu_binding *scratch, const struct gpu_binding *dz,
                         const struct gpu_binding *dgamma, const struct gpu_binding *dbeta,
                         const struct gpu_binding *dr, bool accumulate, const char *label)
{
	bool has_res = r || dr;
	uint64_t hw = (uint64_t)nn_conv2d_out_h(d) * nn_conv2d_out_w(d);
	struct bn_push p;
	int ret = bn_push_init(d, eps, has_res, red_chunk(hw), "bn_act_bwd", label, &p);
	if (ret)
		return ret;
	size_t need = nn_bn_act_bwd_scratch_bytes(gpu_device_info(dev), d), have = bind_size(scratch);
	if (have < need) {
		LOGE("bn_act_bwd %s: scratch has %zu bytes, needs %zu", lbl(label), have, need);
		return -EINVAL;
	}
	if (has_res && d->res_before_act && d->act != NN_ACT_NONE && !r) {
		LOGE("bn_act_bwd %s: the residual r is needed to recompute the activation's input", lbl(label));
		return -EINVAL;
	}
	uint32_t parts = (uint32_t)bwd_parts(d);
	p.stats_off = parts * d->c_out * 2;
	uint32_t res = has_res ? (d->res_before_act ? 1 : 2) : 0;
	const struct gpu_binding *rr = r ? r : z;
	bool vec4 = p.hw % 4 == 0 && aligned16((const struct gpu_binding *[]){ z, rr, dy, dz, dr }, 5);
	struct gpu_binding b[10] = { rd(z), rd(gamma), rd(beta), rd(mean), rd(var), rd(rr), rd(dy), wr(scratch) };
	bool tex = nn_texel_reads(dev);
	struct gpu_kernel_params kp = { .id = tex ? GPU_KERNEL_BN_ACT_BWD_REDUCE : GPU_KERNEL_BN_ACT_BWD_REDUCE_SSBO,
	                                .binding_count = 8, .push_size = sizeof(p), .texel_bindings = tex && !vec4 ? 0x61 : 0,
	                                .texel4_bindings = tex && vec4 ? 0x61 : 0,
	                                .spec_count = 4, .spec = { BN_WG, (uint32_t)d->act, res, vec4 } };
	uint32_t groups[3];
	nn_grid_1d(dev, p.work, BN_WG, groups);
	ret = nn_dispatch(dev, seq, &kp, b, &p, groups, label);
	if (ret)
		return ret;

	struct gpu_binding bf[3] = { wr(scratch), wr(dgamma), wr(dbeta) };
	struct {
		uint32_t c, parts, stats_off;
	} pf = { d->c_out, parts, p.stats_off };
	struct gpu_kernel_params kf = { .id = GPU_KERNEL_BN_ACT_BWD_FINALIZE, .binding_count = 3,
	                                .push_size = sizeof(pf), .spec_count = 2, .spec = { BN_WG, accumulate } };
	ret = nn_dispatch(dev, seq, &kf, bf, &pf, (uint32_t[3]){ (d->c_out + BN_WG - 1) / BN_WG, 1, 1 }, label);
	if (ret)
		return ret;

	// the element-wise pass: shorter chunks, the same push block otherwise
	p.chunk = BN_EW_CHUNK;
	p.cpp = (p.hw + BN_EW_CHUNK - 1) / BN_EW_CHUNK;
	p.work = d->n * d->c_out * p.cpp;
	b[7] = rd(scratch);
	b[8] = wr(dz);
	b[9] = dr ? wr(dr) : rd(z);
	struct gpu_kernel_params kd = { .id = tex ? GPU_KERNEL_BN_ACT_BWD_DZ : GPU_KERNEL_BN_ACT_BWD_DZ_SSBO,
	                                .binding_count = 10, .push_size = sizeof(p), .texel_bindings = tex && !vec4 ? 0x61 : 0,
	                                .texel4_bindings = tex && vec4 ? 0x61 : 0,
	                                .spec_count = 5, .spec = { BN_WG, (uint32_t)d->act, res, vec4, dr != NULL } };
	nn_grid_1d(dev, p.work, BN_WG, groups);
	return nn_dispatch(dev, seq, &kd, b, &p, groups, label);
}
