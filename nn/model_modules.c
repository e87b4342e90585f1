// Lowering of the GELAN building blocks (models/common.py: Conv, AConv, ADown, ELAN1, RepNCSPELAN4,
// RepNCSP, RepNBottleneck, RepConvN, SPPELAN, Upsample) into conv / pool / resize ops. Each writes
// its output into row->dst, a slice that may belong to a later Concat's tensor.
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "model_internal.h"

// args[i] as an integer; `def` when absent or None.
static int arg_int(struct nn_builder *b, const struct nn_row *row, size_t i, int64_t def, int64_t *out)
{
	const struct nn_value *v = nn_value_list_at(row->args, i);
	*out = def;
	if (!v || v->kind == NN_VALUE_NONE || (v->kind == NN_VALUE_STR && !strcmp(v->u.s, "None")))
		return 0;
	if (v->kind == NN_VALUE_BOOL || !nn_value_as_int(v, out) || *out < 0) {
		LOGE("model layer %u (%s): argument %zu must be a non-negative integer", row->index, row->module, i);
		return -EINVAL;
	}
	return 0;
}

// args[i] as a bool (Python True/False); `def` when absent.
static int arg_bool(const struct nn_row *row, size_t i, bool def, bool *out)
{
	const struct nn_value *v = nn_value_list_at(row->args, i);
	*out = def;
	if (!v)
		return 0;
	if (v->kind == NN_VALUE_BOOL) {
		*out = v->u.b;
		return 0;
	}
	if (v->kind == NN_VALUE_STR && (!strcmp(v->u.s, "True") || !strcmp(v->u.s, "False"))) {
		*out = !strcmp(v->u.s, "True");
		return 0;
	}
	LOGE("model layer %u (%s): argument %zu must be True or False", row->index, row->module, i);
	return -EINVAL;
}

static int new_slice(struct nn_builder *b, uint32_t c, struct nn_slice *out)
{
	uint32_t id;
	int ret = nn_builder_tensor(b, c, &id);
	*out = (struct nn_slice){id, 0, c};
	return ret;
}

static int need_even(const struct nn_row *row, const char *what, uint32_t c)
{
	if (c % 2 == 0)
		return 0;
	LOGE("model layer %u (%s): %s = %u must be even (it is split in halves)", row->index, row->module, what, c);
	return -EINVAL;
}

// Conv(c1, c2, k=1, s=1, p=None, g=1, d=1, act=True)
static int lower_conv(struct nn_builder *b, const struct nn_row *row)
{
	int64_t k, s, p, g, d;
	bool act;
	int ret;
	if ((ret = arg_int(b, row, 1, 1, &k)) || (ret = arg_int(b, row, 2, 1, &s)) ||
	    (ret = arg_int(b, row, 4, 1, &g)) || (ret = arg_int(b, row, 5, 1, &d)) ||
	    (ret = arg_int(b, row, 3, k / 2, &p)) || (ret = arg_bool(row, 6, true, &act)))
		return ret;
	if (d != 1 || k < 1 || s < 1 || g < 1) {
		LOGE("model layer %u (%s): unsupported k=%lld s=%lld g=%lld dilation=%lld", row->index, row->module,
		     (long long)k, (long long)s, (long long)g, (long long)d);
		return -ENOTSUP;
	}
	return nn_emit_conv_block(b, row->prefix, row->in[0], row->dst, (uint32_t)k, (uint32_t)s, (uint32_t)p,
	                          (uint32_t)g, act ? NN_ACT_SILU : NN_ACT_NONE, false, nn_slice_none());
}

// AConv: avg_pool2d(2, 1, 0) then Conv(c1, c2, 3, 2, 1); the pool happens inside the conv's load.
static int lower_aconv(struct nn_builder *b, const struct nn_row *row)
{
	char p[128];
	snprintf(p, sizeof(p), "%s.cv1", row->prefix);
	return nn_emit_conv_block(b, p, row->in[0], row->dst, 3, 2, 1, 1, NN_ACT_SILU, true, nn_slice_none());
}

// ADown: x' = avg_pool2d(x, 2, 1, 0); first half -> Conv 3x3 s2 -> dst[0:c2/2];
// second half -> max_pool2d(3, 2, 1) -> Conv 1x1 -> dst[c2/2:c2].
static int lower_adown(struct nn_builder *b, const struct nn_row *row)
{
	uint32_t h1 = row->c1 / 2, h2 = row->c2 / 2;
	struct nn_slice x = row->in[0], pooled, maxed;
	char p[128];
	int ret;
	if ((ret = need_even(row, "c1", row->c1)) || (ret = need_even(row, "c2", row->c2)))
		return ret;
	snprintf(p, sizeof(p), "%s.cv1", row->prefix);
	ret = nn_emit_conv_block(b, p, nn_slice_sub(x, 0, h1), nn_slice_sub(row->dst, 0, h2), 3, 2, 1, 1, NN_ACT_SILU,
	                         true, nn_slice_none());
	if (ret || (ret = new_slice(b, h1, &pooled)) || (ret = new_slice(b, h1, &maxed)))
		return ret;
	if ((ret = nn_emit_pool(b, NN_OP_AVGPOOL, nn_slice_sub(x, h1, h1), pooled, 2, 1, 0)) ||
	    (ret = nn_emit_pool(b, NN_OP_MAXPOOL, pooled, maxed, 3, 2, 1)))
		return ret;
	snprintf(p, sizeof(p), "%s.cv2", row->prefix);
	return nn_emit_conv_block(b, p, maxed, nn_slice_sub(row->dst, h2, h2), 1, 1, 0, 1, NN_ACT_SILU, false,
	                          nn_slice_none());
}

// RepNBottleneck(c, c, shortcut, e=1): y = x + Conv3x3(RepConvN(x)) (as built inside RepNCSP).
static int lower_bottleneck(struct nn_builder *b, const char *prefix, struct nn_slice x, struct nn_slice y,
                            bool shortcut)
{
	char p[192];
	struct nn_slice t;
	int ret = new_slice(b, y.c, &t);
	if (ret)
		return ret;
	snprintf(p, sizeof(p), "%s.cv1", prefix);
	if ((ret = nn_emit_repconvn(b, p, x, t, 1, NN_ACT_SILU)))
		return ret;
	snprintf(p, sizeof(p), "%s.cv2", prefix);
	return nn_emit_conv_block(b, p, t, y, 3, 1, 1, 1, NN_ACT_SILU, false,
	                          shortcut && x.c == y.c ? x : nn_slice_none());
}

// RepNCSP(c1, c2, n): c_ = c2/2; y = cv3(concat(m(cv1(x)), cv2(x))).
static int lower_repncsp(struct nn_builder *b, const char *prefix, struct nn_slice x, struct nn_slice y, uint32_t n)
{
	uint32_t c_ = y.c / 2;
	struct nn_slice cat, cur, next;
	char p[160];
	int ret;
	if ((ret = new_slice(b, 2 * c_, &cat)))
		return ret;
	cur = cat;
	cur.c = c_;
	if (n > 0 && (ret = new_slice(b, c_, &cur)))
		return ret;
	snprintf(p, sizeof(p), "%s.cv1", prefix);
	if ((ret = nn_emit_conv_block(b, p, x, cur, 1, 1, 0, 1, NN_ACT_SILU, false, nn_slice_none())))
		return ret;
	for (uint32_t j = 0; j < n; j++) {
		next = nn_slice_sub(cat, 0, c_);
		if (j + 1 < n && (ret = new_slice(b, c_, &next)))
			return ret;
		snprintf(p, sizeof(p), "%s.m.%u", prefix, j);
		if ((ret = lower_bottleneck(b, p, cur, next, true)))
			return ret;
		cur = next;
	}
	snprintf(p, sizeof(p), "%s.cv2", prefix);
	if ((ret = nn_emit_conv_block(b, p, x, nn_slice_sub(cat, c_, c_), 1, 1, 0, 1, NN_ACT_SILU, false,
	                              nn_slice_none())))
		return ret;
	snprintf(p, sizeof(p), "%s.cv3", prefix);
	return nn_emit_conv_block(b, p, cat, y, 1, 1, 0, 1, NN_ACT_SILU, false, nn_slice_none());
}

// ELAN1(c1, c2, c3, c4) and RepNCSPELAN4(c1, c2, c3, c4, c5): cv1 -> cat[0:c3] (halves a, b);
// b -> stage cv2 -> u = cat[c3:c3+c4]; u -> stage cv3 -> v = cat[c3+c4:]; cv4(cat) -> dst.
// A stage is Conv3x3 (ELAN1) or RepNCSP(n) -> Conv3x3 (RepNCSPELAN4).
static int lower_elan(struct nn_builder *b, const struct nn_row *row, bool rep)
{
	int64_t c3, c4, c5;
	struct nn_slice cat, t;
	char p[128];
	int ret;
	if ((ret = arg_int(b, row, 1, 0, &c3)) || (ret = arg_int(b, row, 2, 0, &c4)) ||
	    (ret = arg_int(b, row, 3, 1, &c5)))
		return ret;
	if (c3 == 0 || c4 == 0 || (ret = need_even(row, "c3", (uint32_t)c3)))
		return ret ? ret : (LOGE("model layer %u (%s): needs [c2, c3, c4]", row->index, row->module), -EINVAL);
	if ((ret = new_slice(b, (uint32_t)(c3 + 2 * c4), &cat)))
		return ret;
	snprintf(p, sizeof(p), "%s.cv1", row->prefix);
	if ((ret = nn_emit_conv_block(b, p, row->in[0], nn_slice_sub(cat, 0, (uint32_t)c3), 1, 1, 0, 1, NN_ACT_SILU,
	                              false, nn_slice_none())))
		return ret;
	struct nn_slice stage_in = nn_slice_sub(cat, (uint32_t)c3 / 2, (uint32_t)c3 / 2);
	for (int st = 0; st < 2; st++) {
		struct nn_slice stage_out = nn_slice_sub(cat, (uint32_t)(c3 + st * c4), (uint32_t)c4);
		if (!rep) {
			snprintf(p, sizeof(p), "%s.cv%d", row->prefix, st + 2);
			ret = nn_emit_conv_block(b, p, stage_in, stage_out, 3, 1, 1, 1, NN_ACT_SILU, false, nn_slice_none());
		} else {
			snprintf(p, sizeof(p), "%s.cv%d.0", row->prefix, st + 2);
			if ((ret = new_slice(b, (uint32_t)c4, &t)) || (ret = lower_repncsp(b, p, stage_in, t, (uint32_t)c5)))
				return ret;
			snprintf(p, sizeof(p), "%s.cv%d.1", row->prefix, st + 2);
			ret = nn_emit_conv_block(b, p, t, stage_out, 3, 1, 1, 1, NN_ACT_SILU, false, nn_slice_none());
		}
		if (ret)
			return ret;
		stage_in = stage_out;
	}
	snprintf(p, sizeof(p), "%s.cv4", row->prefix);
	return nn_emit_conv_block(b, p, cat, row->dst, 1, 1, 0, 1, NN_ACT_SILU, false, nn_slice_none());
}

// SPPELAN(c1, c2, c3): y0 = cv1(x); y1..y3 = cascaded max_pool2d(5, 1, 2); cv5(concat(y0..y3)).
static int lower_sppelan(struct nn_builder *b, const struct nn_row *row)
{
	int64_t c3;
	struct nn_slice cat;
	char p[128];
	int ret;
	if ((ret = arg_int(b, row, 1, 0, &c3)))
		return ret;
	if (c3 == 0) {
		LOGE("model layer %u (%s): needs [c2, c3]", row->index, row->module);
		return -EINVAL;
	}
	uint32_t c = (uint32_t)c3;
	if ((ret = new_slice(b, 4 * c, &cat)))
		return ret;
	snprintf(p, sizeof(p), "%s.cv1", row->prefix);
	if ((ret = nn_emit_conv_block(b, p, row->in[0], nn_slice_sub(cat, 0, c), 1, 1, 0, 1, NN_ACT_SILU, false,
	                              nn_slice_none())))
		return ret;
	for (uint32_t i = 0; i < 3; i++)
		if ((ret = nn_emit_pool(b, NN_OP_MAXPOOL, nn_slice_sub(cat, i * c, c), nn_slice_sub(cat, (i + 1) * c, c),
		                        5, 1, 2)))
			return ret;
	snprintf(p, sizeof(p), "%s.cv5", row->prefix);
	return nn_emit_conv_block(b, p, cat, row->dst, 1, 1, 0, 1, NN_ACT_SILU, false, nn_slice_none());
}

// nn.Upsample(None, 2, 'nearest')
static int lower_upsample(struct nn_builder *b, const struct nn_row *row)
{
	int64_t scale;
	const struct nn_value *mode = nn_value_list_at(row->args, 2);
	int ret = arg_int(b, row, 1, 0, &scale);
	if (ret)
		return ret;
	if (scale < 1 || (mode && (mode->kind != NN_VALUE_STR || strcmp(mode->u.s, "nearest")))) {
		LOGE("model layer %u (%s): only integer scale factors with mode 'nearest' are supported", row->index,
		     row->module);
		return -ENOTSUP;
	}
	return nn_emit_resize(b, row->in[0], row->dst, (uint32_t)scale, false);
}

int nn_lower_module(struct nn_builder *b, const struct nn_row *row)
{
	const char *m = row->module;
	if (!strcmp(m, "Conv"))
		return lower_conv(b, row);
	if (!strcmp(m, "AConv"))
		return lower_aconv(b, row);
	if (!strcmp(m, "ADown"))
		return lower_adown(b, row);
	if (!strcmp(m, "ELAN1"))
		return lower_elan(b, row, false);
	if (!strcmp(m, "RepNCSPELAN4"))
		return lower_elan(b, row, true);
	if (!strcmp(m, "SPPELAN"))
		return lower_sppelan(b, row);
	if (!strcmp(m, "nn.Upsample") || !strcmp(m, "Upsample"))
		return lower_upsample(b, row);
	LOGE("model layer %u (%s): unknown module", row->index, m);
	return -ENOTSUP;
}
