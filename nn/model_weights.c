// Binding state_dict tensors to conv ops: shape checks with messages that name the layer and the
// tensor, BatchNorm folding and RepConvN merging (fuse), or deterministic random weights for
// structure tests when no state is given.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "model_internal.h"

#define BN_EPS 1e-3f // every BatchNorm2d of these models (initialize_weights), not PyTorch's 1e-5

enum init_kind { INIT_UNIFORM_FAN, INIT_BN_GAMMA, INIT_BN_BETA, INIT_BN_MEAN, INIT_BN_VAR };

static double rng_uniform(struct nn_builder *b) // [0, 1)
{
	b->rng ^= b->rng << 13;
	b->rng ^= b->rng >> 7;
	b->rng ^= b->rng << 17;
	return (double)(b->rng >> 11) / 9007199254740992.0;
}

static void random_fill(struct nn_builder *b, float *v, size_t n, enum init_kind kind, uint32_t fan_in)
{
	for (size_t i = 0; i < n; i++) {
		double u = rng_uniform(b);
		switch (kind) {
		case INIT_UNIFORM_FAN: // PyTorch's default conv init: U(+-1/sqrt(fan_in))
			v[i] = (float)((2 * u - 1) / sqrt((double)fan_in));
			break;
		case INIT_BN_GAMMA:
			v[i] = (float)(0.6 + 0.8 * u);
			break;
		case INIT_BN_BETA:
		case INIT_BN_MEAN:
			v[i] = (float)(0.4 * u - 0.2);
			break;
		case INIT_BN_VAR:
			v[i] = (float)(0.5 + 1.5 * u);
			break;
		}
	}
}

static bool state_has(struct nn_builder *b, const char *name)
{
	return b->state && nn_tensor_map_find(b->state, name) != NULL;
}

// *out = f32 copy [shape] of state tensor `name` (or random values of `kind`).
static int get_param(struct nn_builder *b, const char *name, uint32_t ndim, const int64_t *shape,
                     enum init_kind kind, uint32_t fan_in, float **out)
{
	size_t numel = 1;
	for (uint32_t i = 0; i < ndim; i++)
		numel *= (size_t)shape[i];
	*out = NULL;
	if (!b->state) {
		float *v = malloc(numel * sizeof(float));
		if (!v)
			return -ENOMEM;
		random_fill(b, v, numel, kind, fan_in);
		*out = v;
		return 0;
	}
	const struct nn_tensor *t = nn_tensor_map_find(b->state, name);
	if (!t) {
		LOGE("model layer %u (%s): missing tensor %s", b->layer, b->module, name);
		return -EINVAL;
	}
	bool ok = t->ndim == ndim;
	for (uint32_t i = 0; ok && i < ndim; i++)
		ok = t->shape[i] == shape[i];
	if (!ok) {
		char want[96] = "", got[96] = "";
		for (uint32_t i = 0; i < ndim; i++)
			snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%lld", i ? "," : "", (long long)shape[i]);
		for (uint32_t i = 0; i < t->ndim; i++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%lld", i ? "," : "", (long long)t->shape[i]);
		LOGE("model layer %u (%s): tensor %s has shape [%s], expected [%s]", b->layer, b->module, name, got, want);
		return -EINVAL;
	}
	b->state_used[t - b->state->items] = true;
	*out = nn_tensor_to_f32(t);
	return *out ? 0 : -ENOMEM;
}

static void bn_free(struct nn_bn *bn)
{
	free(bn->gamma), free(bn->beta), free(bn->mean), free(bn->var);
	memset(bn, 0, sizeof(*bn));
}

static int get_bn(struct nn_builder *b, const char *prefix, uint32_t c, struct nn_bn *bn)
{
	static const char *const suffix[4] = {"weight", "bias", "running_mean", "running_var"};
	static const enum init_kind kinds[4] = {INIT_BN_GAMMA, INIT_BN_BETA, INIT_BN_MEAN, INIT_BN_VAR};
	float **dst[4] = {&bn->gamma, &bn->beta, &bn->mean, &bn->var};
	int64_t shape[1] = {c};
	char name[192];
	bn->eps = BN_EPS;
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "%s.%s", prefix, suffix[i]);
		int ret = get_param(b, name, 1, shape, kinds[i], 1, dst[i]);
		if (ret) {
			bn_free(bn);
			return ret;
		}
	}
	return 0;
}

// w [c_out, per_out], *bias [c_out] (allocated if NULL): fold BN in place (fuse_conv_and_bn).
static int fold_bn(struct nn_bn *bn, float *w, float **bias, uint32_t c_out, size_t per_out)
{
	if (!*bias && !(*bias = calloc(c_out, sizeof(float))))
		return -ENOMEM;
	for (uint32_t o = 0; o < c_out; o++) {
		float scale = bn->gamma[o] / sqrtf(bn->var[o] + bn->eps);
		for (size_t i = 0; i < per_out; i++)
			w[o * per_out + i] *= scale;
		(*bias)[o] = bn->beta[o] - bn->mean[o] * scale + (*bias)[o] * scale;
	}
	bn_free(bn);
	return 0;
}

// Appends a conv op that takes ownership of w, bias and bn (freed on failure).
static int push_conv(struct nn_builder *b, const char *name, struct nn_slice x, struct nn_slice y, uint32_t k,
                     uint32_t s, uint32_t pad, uint32_t g, enum nn_act act, bool avgpool_before,
                     struct nn_slice r, bool res_before_act, float *w, float *bias, struct nn_bn *bn)
{
	struct nn_op *op;
	int ret = nn_builder_op(b, NN_OP_CONV, name, &op);
	if (ret) {
		free(w), free(bias);
		if (bn)
			bn_free(bn);
		return ret;
	}
	op->x = x, op->y = y, op->r = r;
	op->k = k, op->stride = s, op->pad = pad, op->groups = g, op->act = act;
	op->avgpool_before = avgpool_before, op->res_before_act = res_before_act;
	op->w = w, op->b = bias;
	if (bn)
		op->bn = *bn;
	return 0;
}

// Loads prefix.conv.weight and either prefix.bn.* (-> *bn, or folded into w/bias when fusing) or an
// already fused prefix.conv.bias.
static int load_conv_bn(struct nn_builder *b, const char *prefix, uint32_t c_in, uint32_t c_out, uint32_t k,
                        uint32_t g, float **w, float **bias, struct nn_bn *bn)
{
	char name[160], bnp[160];
	int64_t shape[4] = {c_out, c_in / g, k, k};
	uint32_t fan_in = c_in / g * k * k;
	int ret;
	*w = *bias = NULL;
	memset(bn, 0, sizeof(*bn));
	if (c_in % g || c_out % g) {
		LOGE("model layer %u (%s): %s: channels %u -> %u not divisible by groups %u", b->layer, b->module,
		     prefix, c_in, c_out, g);
		return -EINVAL;
	}
	snprintf(name, sizeof(name), "%s.conv.weight", prefix);
	if ((ret = get_param(b, name, 4, shape, INIT_UNIFORM_FAN, fan_in, w)))
		return ret;
	snprintf(bnp, sizeof(bnp), "%s.bn", prefix);
	snprintf(name, sizeof(name), "%s.bn.weight", prefix);
	if (b->state && !state_has(b, name)) {
		snprintf(name, sizeof(name), "%s.conv.bias", prefix);
		if (!state_has(b, name)) {
			LOGE("model layer %u (%s): missing tensor %s.bn.weight (nor a fused %s)", b->layer, b->module,
			     prefix, name);
			free(*w), *w = NULL;
			return -EINVAL;
		}
		int64_t bshape[1] = {c_out};
		ret = get_param(b, name, 1, bshape, INIT_UNIFORM_FAN, fan_in, bias);
		goto done;
	}
	if ((ret = get_bn(b, bnp, c_out, bn)))
		goto done;
	if (b->p->fuse)
		ret = fold_bn(bn, *w, bias, c_out, (size_t)shape[1] * k * k);
done:
	if (ret) {
		free(*w), free(*bias);
		*w = *bias = NULL;
		bn_free(bn);
	}
	return ret;
}

int nn_emit_conv_block(struct nn_builder *b, const char *prefix, struct nn_slice x, struct nn_slice y,
                       uint32_t k, uint32_t s, uint32_t pad, uint32_t g, enum nn_act act, bool avgpool_before,
                       struct nn_slice r)
{
	float *w, *bias;
	struct nn_bn bn;
	int ret = load_conv_bn(b, prefix, x.c, y.c, k, g, &w, &bias, &bn);
	if (ret)
		return ret;
	return push_conv(b, prefix, x, y, k, s, pad, g, act, avgpool_before, r, false, w, bias, &bn);
}

int nn_emit_repconvn(struct nn_builder *b, const char *prefix, struct nn_slice x, struct nn_slice y, uint32_t s,
                     enum nn_act act)
{
	char p1[160], p2[160];
	float *w1 = NULL, *b1 = NULL, *w2 = NULL, *b2 = NULL;
	struct nn_bn bn1, bn2;
	uint32_t ci = x.c, co = y.c, tmp;
	int ret;
	snprintf(p1, sizeof(p1), "%s.conv1.conv.weight", prefix);
	snprintf(p2, sizeof(p2), "%s.conv.weight", prefix);
	if (b->state && !state_has(b, p1) && state_has(b, p2)) // saved after fuse_convs: one 3x3 conv + bias
		return nn_emit_conv_block(b, prefix, x, y, 3, s, 1, 1, act, false, nn_slice_none());
	snprintf(p1, sizeof(p1), "%s.conv1", prefix);
	snprintf(p2, sizeof(p2), "%s.conv2", prefix);
	if ((ret = load_conv_bn(b, p1, ci, co, 3, 1, &w1, &b1, &bn1)))
		return ret;
	if ((ret = load_conv_bn(b, p2, ci, co, 1, 1, &w2, &b2, &bn2))) {
		free(w1), free(b1), bn_free(&bn1);
		return ret;
	}
	if (b->p->fuse) {
		// both folded (or fused in the file): add the 1x1 kernel at the 3x3 centre tap, add biases
		for (size_t oi = 0; oi < (size_t)co * ci; oi++)
			w1[oi * 9 + 4] += w2[oi];
		for (uint32_t o = 0; o < co; o++)
			b1[o] += b2[o];
		free(w2), free(b2);
		return push_conv(b, prefix, x, y, 3, s, 1, 1, act, false, nn_slice_none(), false, w1, b1, NULL);
	}
	// unfused: t = bn2(conv2(x)); y = act(bn1(conv1(x)) + t)
	if ((ret = nn_builder_tensor(b, co, &tmp))) {
		free(w1), free(b1), bn_free(&bn1), free(w2), free(b2), bn_free(&bn2);
		return ret;
	}
	struct nn_slice t = {tmp, 0, co};
	ret = push_conv(b, p2, x, t, 1, s, 0, 1, NN_ACT_NONE, false, nn_slice_none(), false, w2, b2, &bn2);
	if (ret) {
		free(w1), free(b1), bn_free(&bn1);
		return ret;
	}
	return push_conv(b, p1, x, y, 3, s, 1, 1, act, false, t, true, w1, b1, &bn1);
}

int nn_emit_conv_bias(struct nn_builder *b, const char *prefix, struct nn_slice x, struct nn_slice y,
                      uint32_t k, uint32_t s, uint32_t g)
{
	char name[160];
	int64_t wshape[4] = {y.c, x.c / g, k, k}, bshape[1] = {y.c};
	uint32_t fan_in = x.c / g * k * k;
	float *w = NULL, *bias = NULL;
	int ret;
	snprintf(name, sizeof(name), "%s.weight", prefix);
	if ((ret = get_param(b, name, 4, wshape, INIT_UNIFORM_FAN, fan_in, &w)))
		return ret;
	snprintf(name, sizeof(name), "%s.bias", prefix);
	if ((ret = get_param(b, name, 1, bshape, INIT_UNIFORM_FAN, fan_in, &bias))) {
		free(w);
		return ret;
	}
	if ((ret = push_conv(b, prefix, x, y, k, s, k / 2, g, NN_ACT_NONE, false, nn_slice_none(), false, w, bias, NULL)))
		return ret;
	b->m->ops[b->m->n_ops - 1].bare = true;
	return 0;
}

int nn_check_dfl(struct nn_builder *b, const char *prefix, uint32_t reg_max)
{
	char name[160];
	int64_t shape[4] = {1, reg_max, 1, 1};
	float *w;
	if (!b->state)
		return 0;
	snprintf(name, sizeof(name), "%s.conv.weight", prefix);
	int ret = get_param(b, name, 4, shape, INIT_UNIFORM_FAN, 1, &w);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < reg_max; i++) {
		if (w[i] != (float)i) {
			LOGE("model layer %u (%s): tensor %s[%u] = %g, expected the fixed bin value %u", b->layer, b->module,
			     name, i, w[i], i);
			ret = -EINVAL;
			break;
		}
	}
	free(w);
	return ret;
}

static int export_one(struct nn_tensor_map *out, const char *prefix, const char *suffix, uint32_t ndim,
                      const int64_t *shape, const float *data)
{
	char name[192];
	snprintf(name, sizeof(name), "%s%s", prefix, suffix);
	return nn_tensor_map_add(out, name, NN_DTYPE_F32, ndim, shape, data);
}

int nn_model_export_state(const struct nn_model *m, struct nn_tensor_map *out)
{
	int ret = 0;
	for (uint32_t i = 0; i < m->n_ops && !ret; i++) {
		const struct nn_op *op = &m->ops[i];
		int64_t ws[4] = {op->y.c, op->x.c / op->groups, op->k, op->k}, cs[1] = {op->y.c};
		if (op->kind == NN_OP_DECODE) {
			float bins[64];
			int64_t ds[4] = {1, op->reg_max, 1, 1};
			for (uint32_t k = 0; k < op->reg_max && k < 64; k++)
				bins[k] = (float)k;
			ret = export_one(out, op->name, ".conv.weight", 4, ds, bins);
			continue;
		}
		if (op->kind != NN_OP_CONV)
			continue;
		ret = export_one(out, op->name, op->bare ? ".weight" : ".conv.weight", 4, ws, op->w);
		if (!ret && op->b)
			ret = export_one(out, op->name, op->bare ? ".bias" : ".conv.bias", 1, cs, op->b);
		if (!ret && op->bn.gamma) {
			if (!(ret = export_one(out, op->name, ".bn.weight", 1, cs, op->bn.gamma)) &&
			    !(ret = export_one(out, op->name, ".bn.bias", 1, cs, op->bn.beta)) &&
			    !(ret = export_one(out, op->name, ".bn.running_mean", 1, cs, op->bn.mean)))
				ret = export_one(out, op->name, ".bn.running_var", 1, cs, op->bn.var);
		}
	}
	if (ret)
		LOGE("model export state: %d", ret);
	return ret;
}
