// nn_model_create: the parse_model rules of models/yolo.py (rows, `from` resolution, channel
// bookkeeping, make_divisible) plus the graph plumbing that makes Concat free: a layer whose output
// feeds exactly one Concat is written straight into its slice of the concat tensor.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "model_internal.h"

#define MAX_FROM 8

struct row_info {
	const struct nn_value *args;
	const char *module;
	uint32_t n_from;
	int32_t from[MAX_FROM]; // absolute, -1 = input image
	uint32_t c1, c2;        // input channels (first input), output channels (sum of pieces)
	struct nn_slice place;  // pre-assigned destination inside a Concat tensor, or none
};

int nn_builder_tensor(struct nn_builder *b, uint32_t c, uint32_t *id)
{
	struct nn_model *m = b->m;
	if (m->n_tensors == b->tensors_cap) {
		uint32_t cap = b->tensors_cap ? 2 * b->tensors_cap : 64;
		void *p = realloc(m->tensors, cap * sizeof(*m->tensors));
		if (!p)
			return -ENOMEM;
		m->tensors = p, b->tensors_cap = cap;
	}
	m->tensors[m->n_tensors] = (struct nn_model_tensor){.c = c, .layer = (int32_t)b->layer};
	*id = m->n_tensors++;
	return 0;
}

int nn_builder_op(struct nn_builder *b, enum nn_op_kind kind, const char *name, struct nn_op **out)
{
	struct nn_model *m = b->m;
	if (m->n_ops == b->ops_cap) {
		uint32_t cap = b->ops_cap ? 2 * b->ops_cap : 128;
		void *p = realloc(m->ops, cap * sizeof(*m->ops));
		if (!p)
			return -ENOMEM;
		m->ops = p, b->ops_cap = cap;
	}
	struct nn_op *op = &m->ops[m->n_ops++];
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->layer = b->layer;
	op->groups = 1;
	op->r = nn_slice_none();
	snprintf(op->name, sizeof(op->name), "%s", name);
	*out = op;
	return 0;
}

struct nn_slice nn_slice_sub(struct nn_slice s, uint32_t off, uint32_t c)
{
	return (struct nn_slice){s.tensor, s.c_off + off, c};
}

int nn_emit_pool(struct nn_builder *b, enum nn_op_kind kind, struct nn_slice x, struct nn_slice y, uint32_t k,
                 uint32_t s, uint32_t pad)
{
	char name[64];
	struct nn_op *op;
	snprintf(name, sizeof(name), "model.%u %s%ux%u/s%u", b->layer, kind == NN_OP_MAXPOOL ? "maxpool" : "avgpool",
	         k, k, s);
	int ret = nn_builder_op(b, kind, name, &op);
	if (ret)
		return ret;
	op->x = x, op->y = y, op->k = k, op->stride = s, op->pad = pad;
	return 0;
}

int nn_emit_resize(struct nn_builder *b, struct nn_slice x, struct nn_slice y, uint32_t scale, bool accumulate)
{
	char name[64];
	struct nn_op *op;
	snprintf(name, sizeof(name), "model.%u %s", b->layer, accumulate ? "resize-add" : scale == 1 ? "copy" : "upsample");
	int ret = nn_builder_op(b, NN_OP_RESIZE, name, &op);
	if (ret)
		return ret;
	op->x = x, op->y = y, op->scale = scale, op->accumulate = accumulate;
	return 0;
}

static uint32_t make_divisible(double x, uint32_t d)
{
	return (uint32_t)ceil(x / d) * d;
}

static bool is_detect(const char *m)
{
	return !strcmp(m, "DDetect") || !strcmp(m, "DualDDetect");
}

// Modules whose single output may be written into a Concat's tensor.
static bool can_place(const char *m)
{
	static const char *const ok[] = {"Conv", "AConv", "ADown", "ELAN1", "RepNCSPELAN4", "SPPELAN",
	                                 "nn.Upsample", "Upsample", "CBFuse"};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!strcmp(m, ok[i]))
			return true;
	return false;
}

// from (int or list) -> absolute indices; -1 = previous layer (or the image for row 0).
static int resolve_from(uint32_t i, const struct nn_value *f, struct row_info *r)
{
	size_t n = f->kind == NN_VALUE_LIST ? nn_value_len(f) : 1;
	if (n == 0 || n > MAX_FROM) {
		LOGE("model layer %u (%s): `from` must have 1..%d entries", i, r->module, MAX_FROM);
		return -EINVAL;
	}
	r->n_from = (uint32_t)n;
	for (size_t k = 0; k < n; k++) {
		const struct nn_value *v = f->kind == NN_VALUE_LIST ? nn_value_list_at(f, k) : f;
		int64_t j;
		if (v->kind != NN_VALUE_INT || !nn_value_as_int(v, &j) || j < -1 || j >= (int64_t)i) {
			LOGE("model layer %u (%s): bad `from` entry %zu (must be -1 or an earlier layer index 0..%d)", i,
			     r->module, k, (int)i - 1);
			return -EINVAL;
		}
		r->from[k] = j == -1 ? (int32_t)i - 1 : (int32_t)j;
	}
	return 0;
}

// Channel rule of parse_model for row i (ch[j] = output channels of layer j; -1 = image).
static int row_channels(uint32_t i, struct row_info *rows, uint32_t ch_in, double gw)
{
	struct row_info *r = &rows[i];
	const char *m = r->module;
#define CH(j) ((j) < 0 ? ch_in : rows[(j)].c2)
	r->c1 = CH(r->from[0]);
	if (!strcmp(m, "Concat")) {
		r->c2 = 0;
		for (uint32_t k = 0; k < r->n_from; k++)
			r->c2 += CH(r->from[k]);
	} else if (!strcmp(m, "CBLinear")) {
		const struct nn_value *l = nn_value_list_at(r->args, 0);
		r->c2 = 0;
		for (size_t k = 0; l && l->kind == NN_VALUE_LIST && k < nn_value_len(l); k++) {
			int64_t c;
			if (!nn_value_as_int(nn_value_list_at(l, k), &c) || c <= 0)
				goto bad_args;
			r->c2 += (uint32_t)c;
		}
		if (!l || l->kind != NN_VALUE_LIST || nn_value_len(l) == 0 || nn_value_len(l) > NN_LAYER_MAX_OUTS)
			goto bad_args;
	} else if (!strcmp(m, "CBFuse")) {
		r->c2 = CH(r->from[r->n_from - 1]);
	} else if (!strcmp(m, "Conv") || !strcmp(m, "AConv") || !strcmp(m, "ADown") || !strcmp(m, "ELAN1") ||
	           !strcmp(m, "RepNCSPELAN4") || !strcmp(m, "SPPELAN")) {
		int64_t c2;
		const struct nn_value *a0 = nn_value_list_at(r->args, 0);
		if (!a0 || a0->kind != NN_VALUE_INT || !nn_value_as_int(a0, &c2) || c2 <= 0)
			goto bad_args;
		r->c2 = c2 == 255 ? 255 : make_divisible((double)c2 * gw, 8); // 255 = anchors*(nc+5) escapes scaling
	} else {
		r->c2 = r->c1; // Upsample, Silence, heads (unused)
	}
	for (uint32_t k = 0; k < r->n_from; k++) {
		int32_t j = r->from[k];
		if (j >= 0 && !strcmp(rows[j].module, "CBLinear") && strcmp(m, "CBFuse")) {
			LOGE("model layer %u (%s): input layer %d is a CBLinear (only CBFuse can read it)", i, m, j);
			return -EINVAL;
		}
	}
#undef CH
	return 0;
bad_args:
	LOGE("model layer %u (%s): bad args (first argument must be the output channels)", i, m);
	return -EINVAL;
}

// Pre-assigns the destinations of Concat inputs (each layer into at most one concat).
static int plan_concats(struct nn_builder *b, struct row_info *rows, uint32_t n)
{
	bool *placed = calloc(n, sizeof(bool));
	if (!placed)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		if (strcmp(rows[i].module, "Concat"))
			continue;
		uint32_t t, off = 0;
		b->layer = i;
		int ret = nn_builder_tensor(b, rows[i].c2, &t);
		if (ret) {
			free(placed);
			return ret;
		}
		rows[i].place = (struct nn_slice){t, 0, rows[i].c2};
		for (uint32_t k = 0; k < rows[i].n_from; k++) {
			int32_t j = rows[i].from[k];
			bool dup = false;
			for (uint32_t q = 0; q < rows[i].n_from; q++)
				dup |= q != k && rows[i].from[q] == j;
			if (j >= 0 && !placed[j] && !dup && can_place(rows[j].module)) {
				placed[j] = true;
				rows[j].place = (struct nn_slice){t, off, rows[j].c2};
			}
			off += j < 0 ? b->m->tensors[0].c : rows[j].c2;
		}
	}
	free(placed);
	return 0;
}

// Concat: inputs not already written in place are copied into their slice.
static int lower_concat(struct nn_builder *b, const struct nn_row *row, const struct row_info *rows,
                        const struct row_info *r, struct nn_model_layer *layer)
{
	int64_t dim = 1;
	const struct nn_value *a0 = nn_value_list_at(row->args, 0);
	if (a0 && (!nn_value_as_int(a0, &dim) || dim != 1)) {
		LOGE("model layer %u (Concat): only dimension 1 (channels) is supported", row->index);
		return -ENOTSUP;
	}
	uint32_t off = 0;
	for (uint32_t k = 0; k < row->n_in; k++) {
		int32_t j = r->from[k];
		bool in_place = j >= 0 && rows[j].place.tensor == r->place.tensor && rows[j].place.c_off == off;
		if (!in_place) {
			int ret = nn_emit_resize(b, row->in[k], nn_slice_sub(r->place, off, row->in[k].c), 1, false);
			if (ret)
				return ret;
		}
		off += row->in[k].c;
	}
	layer->n_out = 1;
	layer->out[0] = r->place;
	return 0;
}

// CBLinear(c1, c2s, k=1, s=1, p=None, g=1): one biased conv, output split into pieces.
static int lower_cblinear(struct nn_builder *b, const struct nn_row *row, struct nn_model_layer *layer)
{
	const struct nn_value *l = nn_value_list_at(row->args, 0);
	int64_t k = 1, s = 1, g = 1;
	const struct nn_value *v;
	if ((v = nn_value_list_at(row->args, 1)))
		nn_value_as_int(v, &k);
	if ((v = nn_value_list_at(row->args, 2)))
		nn_value_as_int(v, &s);
	if ((v = nn_value_list_at(row->args, 4)))
		nn_value_as_int(v, &g);
	if (k != 1 || s != 1 || g != 1) {
		LOGE("model layer %u (CBLinear): only k=1 s=1 g=1 is supported", row->index);
		return -ENOTSUP;
	}
	uint32_t t;
	char p[64];
	int ret = nn_builder_tensor(b, row->c2, &t);
	if (ret)
		return ret;
	snprintf(p, sizeof(p), "%s.conv", row->prefix);
	if ((ret = nn_emit_conv_bias(b, p, row->in[0], (struct nn_slice){t, 0, row->c2}, 1, 1, 1)))
		return ret;
	uint32_t off = 0;
	layer->n_out = (uint32_t)nn_value_len(l);
	for (uint32_t i = 0; i < layer->n_out; i++) {
		int64_t c = 0;
		nn_value_as_int(nn_value_list_at(l, i), &c);
		layer->out[i] = (struct nn_slice){t, off, (uint32_t)c};
		off += (uint32_t)c;
	}
	return 0;
}

// CBFuse(idx): dst = last + sum_k nearest_resize(piece idx[k] of CBLinear input k).
static int lower_cbfuse(struct nn_builder *b, const struct nn_row *row, const struct nn_model *m,
                        const struct row_info *r)
{
	const struct nn_value *idx = nn_value_list_at(row->args, 0);
	uint32_t n = row->n_in - 1;
	if (!idx || idx->kind != NN_VALUE_LIST || nn_value_len(idx) != n) {
		LOGE("model layer %u (CBFuse): needs [[idx...]] with one index per CBLinear input (%u)", row->index, n);
		return -EINVAL;
	}
	int ret = nn_emit_resize(b, row->in[n], row->dst, 1, false);
	for (uint32_t k = 0; !ret && k < n; k++) {
		int32_t j = r->from[k];
		const struct nn_model_layer *src = j >= 0 ? &m->layers[j] : NULL;
		int64_t pi = -1;
		nn_value_as_int(nn_value_list_at(idx, k), &pi);
		if (!src || strcmp(src->module, "CBLinear") || pi < 0 || pi >= (int64_t)src->n_out) {
			LOGE("model layer %u (CBFuse): input %u (layer %d) must be a CBLinear with a piece %lld", row->index, k,
			     j, (long long)pi);
			return -EINVAL;
		}
		if (src->out[pi].c != row->dst.c) {
			LOGE("model layer %u (CBFuse): piece %lld of layer %d has %u channels, the fused input has %u",
			     row->index, (long long)pi, j, src->out[pi].c, row->dst.c);
			return -EINVAL;
		}
		ret = nn_emit_resize(b, src->out[pi], row->dst, 0, true);
	}
	return ret;
}

static int lower_row(struct nn_builder *b, uint32_t i, struct row_info *rows)
{
	struct nn_model *m = b->m;
	struct row_info *r = &rows[i];
	struct nn_model_layer *layer = &m->layers[i];
	char prefix[32];
	snprintf(prefix, sizeof(prefix), "model.%u", i);
	struct nn_row row = {.index = i, .module = r->module, .prefix = prefix, .n_in = r->n_from,
	                     .args = r->args, .c1 = r->c1, .c2 = r->c2};
	snprintf(layer->module, sizeof(layer->module), "%s", r->module);
	layer->n_from = r->n_from;
	memcpy(layer->from, r->from, sizeof(layer->from));
	layer->op_begin = m->n_ops;
	b->layer = i;
	b->module = r->module;
	for (uint32_t k = 0; k < r->n_from; k++)
		row.in[k] = r->from[k] < 0 ? (struct nn_slice){0, 0, m->tensors[0].c} : m->layers[r->from[k]].out[0];
	int ret = 0;
	if (!strcmp(r->module, "Silence")) {
		layer->n_out = 1;
		layer->out[0] = row.in[0];
	} else if (!strcmp(r->module, "Concat")) {
		ret = lower_concat(b, &row, rows, r, layer);
	} else if (!strcmp(r->module, "CBLinear")) {
		ret = lower_cblinear(b, &row, layer);
	} else if (is_detect(r->module)) {
		ret = nn_lower_detect(b, &row, layer);
	} else {
		if (r->place.tensor != NN_NO_TENSOR) {
			row.dst = r->place;
		} else {
			uint32_t t;
			if ((ret = nn_builder_tensor(b, r->c2, &t)))
				return ret;
			row.dst = (struct nn_slice){t, 0, r->c2};
		}
		layer->n_out = 1;
		layer->out[0] = row.dst;
		ret = !strcmp(r->module, "CBFuse") ? lower_cbfuse(b, &row, m, r) : nn_lower_module(b, &row);
	}
	layer->op_end = m->n_ops;
	return ret;
}

// Reads rows (backbone + head) into infos, resolving `from` and channels.
static int parse_rows(struct nn_builder *b, const struct nn_value *arch, struct row_info **out, uint32_t *out_n)
{
	const struct nn_value *parts[2] = {nn_value_dict_get(arch, "backbone"), nn_value_dict_get(arch, "head")};
	double gd = 1.0, gw = 1.0;
	nn_value_as_double(nn_value_dict_get(arch, "depth_multiple"), &gd);
	nn_value_as_double(nn_value_dict_get(arch, "width_multiple"), &gw);
	size_t n = 0;
	for (int p = 0; p < 2; p++) {
		if (!parts[p] || parts[p]->kind != NN_VALUE_LIST) {
			LOGE("model description: `%s` must be a list of rows", p ? "head" : "backbone");
			return -EINVAL;
		}
		n += nn_value_len(parts[p]);
	}
	struct row_info *rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	int ret = 0;
	for (uint32_t i = 0; i < n && !ret; i++) {
		size_t nb = nn_value_len(parts[0]);
		const struct nn_value *rv = i < nb ? nn_value_list_at(parts[0], i) : nn_value_list_at(parts[1], i - nb);
		const struct nn_value *f = nn_value_list_at(rv, 0), *num = nn_value_list_at(rv, 1);
		const struct nn_value *mod = nn_value_list_at(rv, 2), *args = nn_value_list_at(rv, 3);
		struct row_info *r = &rows[i];
		int64_t number;
		r->place = nn_slice_none();
		if (!rv || rv->kind != NN_VALUE_LIST || nn_value_len(rv) != 4 || !mod || mod->kind != NN_VALUE_STR ||
		    !args || args->kind != NN_VALUE_LIST || !nn_value_as_int(num, &number)) {
			LOGE("model layer %u: row must be [from, number, module, args]", i);
			ret = -EINVAL;
			break;
		}
		r->module = mod->u.s;
		r->args = args;
		if (number > 1)
			number = (int64_t)fmax(nearbyint((double)number * gd), 1.0); // banker's rounding like Python
		if (number != 1) {
			LOGE("model layer %u (%s): repeated modules (number %lld) are not supported", i, r->module,
			     (long long)number);
			ret = -ENOTSUP;
			break;
		}
		b->layer = i;
		b->module = r->module;
		if (!(ret = resolve_from(i, f, r)))
			ret = row_channels(i, rows, b->m->tensors[0].c, gw);
	}
	if (ret) {
		free(rows);
		return ret;
	}
	*out = rows;
	*out_n = (uint32_t)n;
	return 0;
}

int nn_model_build_graph(struct nn_builder *b, const struct nn_value *arch)
{
	struct row_info *rows = NULL;
	uint32_t n = 0;
	int ret = parse_rows(b, arch, &rows, &n);
	if (ret)
		return ret;
	b->m->layers = calloc(n ? n : 1, sizeof(*b->m->layers));
	if (!b->m->layers) {
		free(rows);
		return -ENOMEM;
	}
	b->m->n_layers = n;
	ret = plan_concats(b, rows, n);
	for (uint32_t i = 0; i < n && !ret; i++)
		ret = lower_row(b, i, rows);
	if (!ret && !b->m->n_head_sets) {
		LOGE("model description: no DDetect/DualDDetect layer");
		ret = -EINVAL;
	}
	free(rows);
	return ret;
}
