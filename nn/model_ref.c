// The CPU reference executor: shape inference over the op list and a forward pass that runs every
// op with the nn/ref operators. It is the numerical reference for the GPU executor.
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "model.h"
#include "ref_bwd.h"

static int set_size(const struct nn_model *m, const struct nn_op *op, struct nn_shape *s, uint32_t t, uint32_t h,
                    uint32_t w)
{
	if (h == 0 || w == 0) {
		LOGE("model layer %u: op %s: input too small (empty output)", op->layer, op->name);
		return -EINVAL;
	}
	if (s[t].h && (s[t].h != h || s[t].w != w)) {
		LOGE("model layer %u: op %s: writes %ux%u into tensor %u of size %ux%u (concat/fuse of mismatched "
		     "sizes; input size not a multiple of the largest stride?)", op->layer, op->name, h, w, t, s[t].h,
		     s[t].w);
		return -EINVAL;
	}
	s[t].h = h, s[t].w = w;
	(void)m;
	return 0;
}

static int need_sized(const struct nn_op *op, const struct nn_shape *s, uint32_t t)
{
	if (t != NN_NO_TENSOR && s[t].h == 0) {
		LOGE("model layer %u: op %s: reads tensor %u before any op writes it", op->layer, op->name, t);
		return -EINVAL;
	}
	return 0;
}

void nn_op_conv_desc(const struct nn_op *op, const struct nn_shape *s, uint32_t n, struct nn_conv2d_desc *d)
{
	*d = (struct nn_conv2d_desc){
		.n = n, .c_in = op->x.c, .h_in = s[op->x.tensor].h, .w_in = s[op->x.tensor].w, .c_out = op->y.c,
		.k_h = op->k, .k_w = op->k, .stride = op->stride, .pad = op->pad, .groups = op->groups,
		.act = op->act, .avgpool_before = op->avgpool_before, .res_before_act = op->res_before_act,
		.x_c_total = s[op->x.tensor].c, .x_c_off = op->x.c_off,
		.y_c_total = s[op->y.tensor].c, .y_c_off = op->y.c_off,
	};
	if (op->r.tensor != NN_NO_TENSOR)
		d->r_c_total = s[op->r.tensor].c, d->r_c_off = op->r.c_off;
}

void nn_op_pool_desc(const struct nn_op *op, const struct nn_shape *s, uint32_t n, struct nn_pool2d_desc *d)
{
	*d = (struct nn_pool2d_desc){
		.n = n, .c = op->x.c, .h_in = s[op->x.tensor].h, .w_in = s[op->x.tensor].w, .k = op->k,
		.stride = op->stride, .pad = op->pad, .x_c_total = s[op->x.tensor].c, .x_c_off = op->x.c_off,
		.y_c_total = s[op->y.tensor].c, .y_c_off = op->y.c_off,
	};
}

void nn_op_resize_desc(const struct nn_op *op, const struct nn_shape *s, uint32_t n, struct nn_resize_desc *d)
{
	*d = (struct nn_resize_desc){
		.n = n, .c = op->x.c, .h_in = s[op->x.tensor].h, .w_in = s[op->x.tensor].w,
		.h_out = s[op->y.tensor].h, .w_out = s[op->y.tensor].w, .accumulate = op->accumulate,
		.x_c_total = s[op->x.tensor].c, .x_c_off = op->x.c_off,
		.y_c_total = s[op->y.tensor].c, .y_c_off = op->y.c_off,
	};
}

void nn_op_decode_desc(const struct nn_op *op, const struct nn_shape *s, uint32_t n, struct nn_decode_desc *d)
{
	*d = (struct nn_decode_desc){.n = n, .nc = op->nc, .reg_max = op->reg_max, .nl = op->nl};
	for (uint32_t l = 0; l < op->nl; l++)
		d->h[l] = s[op->level[l]].h, d->w[l] = s[op->level[l]].w, d->stride[l] = op->level_stride[l];
}

int nn_model_shapes(const struct nn_model *m, uint32_t h, uint32_t w, struct nn_shape *s)
{
	for (uint32_t t = 0; t < m->n_tensors; t++)
		s[t] = (struct nn_shape){m->tensors[t].c, 0, 0};
	s[0].h = h, s[0].w = w;
	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct nn_op *op = &m->ops[i];
		int ret = need_sized(op, s, op->x.tensor);
		if (!ret)
			ret = need_sized(op, s, op->r.tensor);
		if (ret)
			return ret;
		switch (op->kind) {
		case NN_OP_CONV: {
			struct nn_conv2d_desc d;
			nn_op_conv_desc(op, s, 1, &d);
			uint32_t oh = nn_conv2d_out_h(&d), ow = nn_conv2d_out_w(&d);
			ret = set_size(m, op, s, op->y.tensor, oh, ow);
			if (!ret && op->r.tensor != NN_NO_TENSOR && (s[op->r.tensor].h != oh || s[op->r.tensor].w != ow)) {
				LOGE("model layer %u: op %s: residual size differs from the output", op->layer, op->name);
				ret = -EINVAL;
			}
			break;
		}
		case NN_OP_MAXPOOL:
		case NN_OP_AVGPOOL:
			ret = set_size(m, op, s, op->y.tensor, nn_pool_out_size(s[op->x.tensor].h, op->k, op->stride, op->pad),
			               nn_pool_out_size(s[op->x.tensor].w, op->k, op->stride, op->pad));
			break;
		case NN_OP_RESIZE:
			if (op->scale)
				ret = set_size(m, op, s, op->y.tensor, s[op->x.tensor].h * op->scale, s[op->x.tensor].w * op->scale);
			else
				ret = need_sized(op, s, op->y.tensor);
			break;
		case NN_OP_DECODE: {
			uint32_t a = 0;
			for (uint32_t l = 0; l < op->nl && !ret; l++) {
				ret = need_sized(op, s, op->level[l]);
				a += s[op->level[l]].h * s[op->level[l]].w;
			}
			if (!ret)
				ret = set_size(m, op, s, op->y.tensor, 1, a);
			break;
		}
		}
		if (ret)
			return ret;
	}
	return 0;
}

// Training-mode BatchNorm statistics of channel c of the conv output (PyTorch normalises with the
// batch mean and the biased variance over N, H, W), accumulated in double.
static void batch_stats(const float *y0, size_t n_stride, uint32_t n, size_t hw, float *mean, float *var)
{
	double s = 0.0, ss = 0.0;
	for (uint32_t i = 0; i < n; i++)
		for (size_t j = 0; j < hw; j++)
			s += y0[i * n_stride + j];
	double mu = s / ((double)n * hw);
	for (uint32_t i = 0; i < n; i++)
		for (size_t j = 0; j < hw; j++) {
			double dv = y0[i * n_stride + j] - mu;
			ss += dv * dv;
		}
	*mean = (float)mu;
	*var = (float)(ss / ((double)n * hw));
}

// y[:, slice] = bn(y[:, slice]) before the activation: the unfused Conv -> BN -> act order. Runs the
// conv without activation/residual, applies BN (running or, with train_bn, batch statistics), then
// the activation and residual.
static void run_conv_bn(const struct nn_op *op, const struct nn_conv2d_desc *d0, bool train_bn, float *const *buf)
{
	struct nn_conv2d_desc d = *d0;
	d.act = NN_ACT_NONE;
	nn_conv2d_forward_ref(&d, buf[op->x.tensor], op->w, op->b, NULL, buf[op->y.tensor]);
	size_t hw = (size_t)nn_conv2d_out_h(&d) * nn_conv2d_out_w(&d);
	uint32_t yct = d.y_c_total, rct = d.r_c_total;
	for (uint32_t c = 0; c < d.c_out; c++) {
		float mean = op->bn.mean[c], var = op->bn.var[c];
		if (train_bn)
			batch_stats(buf[op->y.tensor] + (d.y_c_off + c) * hw, (size_t)yct * hw, d.n, hw, &mean, &var);
		float inv = 1.0f / sqrtf(var + op->bn.eps);
		for (uint32_t n = 0; n < d.n; n++) {
			float *y = buf[op->y.tensor] + ((size_t)n * yct + d.y_c_off + c) * hw;
			const float *r = op->r.tensor == NN_NO_TENSOR ? NULL
			                 : buf[op->r.tensor] + ((size_t)n * rct + d.r_c_off + c) * hw;
			for (size_t i = 0; i < hw; i++) {
				float v = (y[i] - mean) * inv * op->bn.gamma[c] + op->bn.beta[c];
				if (r && op->res_before_act)
					v += r[i];
				v = nn_act_apply(op->act, v);
				if (r && !op->res_before_act)
					v += r[i];
				y[i] = v;
			}
		}
	}
}

static float *dense_alloc(size_t count)
{
	return malloc((count ? count : 1) * sizeof(float));
}

// Copies the y slice [n, c, hw] of a tensor with ct channels to or from a dense buffer.
static void slice_copy(float *dense, float *t, uint32_t n, uint32_t ct, uint32_t c_off, uint32_t c, size_t hw,
                       bool to_dense)
{
	for (uint32_t i = 0; i < n; i++) {
		float *a = dense + (size_t)i * c * hw, *b = t + ((size_t)i * ct + c_off) * hw;
		memcpy(to_dense ? a : b, to_dense ? b : a, (size_t)c * hw * sizeof(float));
	}
}

// The conv op of run_conv_bn / nn_conv2d_forward_ref, keeping what the backward pass needs (op index
// i): the conv output before BN, the batch statistics and the pre-activation values. Same numbers.
static int run_conv_train(const struct nn_op *op, uint32_t i, const struct nn_conv2d_desc *d0,
                          struct nn_ref_outputs *out, float *const *buf)
{
	struct nn_conv2d_desc d = *d0;
	d.act = NN_ACT_NONE;
	nn_conv2d_forward_ref(&d, buf[op->x.tensor], op->w, op->b, NULL, buf[op->y.tensor]);
	size_t hw = (size_t)nn_conv2d_out_h(&d) * nn_conv2d_out_w(&d), cnt = (size_t)d.n * d.c_out * hw;
	float *u = dense_alloc(cnt); // [n, c_out, h, w]
	if (!u)
		return -ENOMEM;
	slice_copy(u, buf[op->y.tensor], d.n, d.y_c_total, d.y_c_off, d.c_out, hw, true);
	if (op->bn.gamma) {
		struct nn_bn_desc bd = {d.n, d.c_out, nn_conv2d_out_h(&d), nn_conv2d_out_w(&d), op->bn.eps, out->train_bn};
		float *z = dense_alloc(cnt), *mean = dense_alloc(d.c_out), *var = dense_alloc(d.c_out);
		out->conv_z[i] = z, out->bn_mean[i] = mean, out->bn_var[i] = var;
		if (!z || !mean || !var) {
			free(u);
			return -ENOMEM;
		}
		memcpy(z, u, cnt * sizeof(float));
		if (out->train_bn)
			nn_bn_stats_ref(&bd, z, mean, var);
		else
			memcpy(mean, op->bn.mean, d.c_out * sizeof(float)), memcpy(var, op->bn.var, d.c_out * sizeof(float));
		nn_bn_forward_ref(&bd, z, op->bn.gamma, op->bn.beta, mean, var, u);
	}
	const float *r = op->r.tensor == NN_NO_TENSOR ? NULL : buf[op->r.tensor];
	for (uint32_t n = 0; n < d.n; n++)
		for (uint32_t c = 0; c < d.c_out; c++) {
			float *up = u + ((size_t)n * d.c_out + c) * hw;
			float *yp = buf[op->y.tensor] + ((size_t)n * d.y_c_total + d.y_c_off + c) * hw;
			const float *rp = r ? r + ((size_t)n * d.r_c_total + d.r_c_off + c) * hw : NULL;
			for (size_t k = 0; k < hw; k++) {
				if (rp && op->res_before_act)
					up[k] += rp[k];
				float v = nn_act_apply(op->act, up[k]);
				yp[k] = rp && !op->res_before_act ? v + rp[k] : v;
			}
		}
	if (op->act != NN_ACT_NONE)
		out->conv_u[i] = u;
	else
		free(u);
	return 0;
}

static int run_op(const struct nn_model *m, uint32_t i, const struct nn_shape *s, uint32_t n,
                  struct nn_ref_outputs *out, float *const *buf)
{
	const struct nn_op *op = &m->ops[i];
	bool train_bn = out->train_bn;
	switch (op->kind) {
	case NN_OP_CONV: {
		struct nn_conv2d_desc d;
		nn_op_conv_desc(op, s, n, &d);
		if (out->keep_train)
			return run_conv_train(op, i, &d, out, buf);
		if (op->bn.gamma)
			run_conv_bn(op, &d, train_bn, buf);
		else
			nn_conv2d_forward_ref(&d, buf[op->x.tensor], op->w, op->b,
			                      op->r.tensor == NN_NO_TENSOR ? NULL : buf[op->r.tensor], buf[op->y.tensor]);
		break;
	}
	case NN_OP_MAXPOOL:
	case NN_OP_AVGPOOL: {
		struct nn_pool2d_desc d;
		nn_op_pool_desc(op, s, n, &d);
		if (op->kind == NN_OP_MAXPOOL)
			nn_maxpool2d_forward_ref(&d, buf[op->x.tensor], buf[op->y.tensor]);
		else
			nn_avgpool2d_forward_ref(&d, buf[op->x.tensor], buf[op->y.tensor]);
		break;
	}
	case NN_OP_RESIZE: {
		struct nn_resize_desc d;
		nn_op_resize_desc(op, s, n, &d);
		nn_resize_nearest_forward_ref(&d, buf[op->x.tensor], buf[op->y.tensor]);
		break;
	}
	case NN_OP_DECODE: {
		struct nn_decode_desc d;
		const float *levels[NN_DETECT_MAX_LEVELS];
		nn_op_decode_desc(op, s, n, &d);
		for (uint32_t l = 0; l < op->nl; l++)
			levels[l] = buf[op->level[l]];
		nn_decode_forward_ref(&d, levels, buf[op->y.tensor]);
		break;
	}
	}
	return 0;
}

// Dense copy [n, slice.c, h, w] of a slice.
static float *copy_slice(struct nn_slice sl, const struct nn_shape *s, uint32_t n, const float *src)
{
	size_t hw = (size_t)s[sl.tensor].h * s[sl.tensor].w, per = (size_t)sl.c * hw;
	float *d = malloc((size_t)n * per * sizeof(float) + 1);
	if (!d)
		return NULL;
	for (uint32_t i = 0; i < n; i++)
		memcpy(d + i * per, src + ((size_t)i * s[sl.tensor].c + sl.c_off) * hw, per * sizeof(float));
	return d;
}

static int keep_layers(const struct nn_model *m, const struct nn_shape *s, uint32_t n, float *const *buf,
                       struct nn_ref_outputs *out)
{
	size_t cnt = (size_t)m->n_layers * NN_LAYER_MAX_OUTS;
	out->n_layers = m->n_layers;
	out->layer = calloc(cnt, sizeof(float *));
	out->layer_shape = calloc(cnt, sizeof(struct nn_shape));
	if (!out->layer || !out->layer_shape)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->n_layers; i++)
		for (uint32_t k = 0; k < m->layers[i].n_out; k++) {
			struct nn_slice sl = m->layers[i].out[k];
			size_t j = (size_t)i * NN_LAYER_MAX_OUTS + k;
			out->layer_shape[j] = (struct nn_shape){sl.c, s[sl.tensor].h, s[sl.tensor].w};
			if (!(out->layer[j] = copy_slice(sl, s, n, buf[sl.tensor])))
				return -ENOMEM;
		}
	return 0;
}

// Clears out but keeps the flags the caller set before the call.
static void reset_outputs(struct nn_ref_outputs *out)
{
	bool keep = out->keep_layers, train_bn = out->train_bn, heads = out->keep_heads, train = out->keep_train;
	memset(out, 0, sizeof(*out));
	out->keep_layers = keep, out->train_bn = train_bn, out->keep_heads = heads, out->keep_train = train;
}

void nn_ref_outputs_finish(struct nn_ref_outputs *out)
{
	free(out->output), free(out->output_aux);
	for (size_t i = 0; out->layer && i < (size_t)out->n_layers * NN_LAYER_MAX_OUTS; i++)
		free(out->layer[i]);
	free(out->layer), free(out->layer_shape);
	for (uint32_t set = 0; set < 2; set++)
		for (uint32_t l = 0; l < NN_DETECT_MAX_LEVELS; l++)
			free(out->head[set][l]);
	for (uint32_t t = 0; out->act && t < out->n_tensors; t++)
		free(out->act[t]);
	for (uint32_t i = 0; out->conv_z && i < out->n_ops; i++)
		free(out->conv_z[i]), free(out->conv_u[i]), free(out->bn_mean[i]), free(out->bn_var[i]);
	free(out->act), free(out->shape), free(out->conv_z), free(out->conv_u), free(out->bn_mean), free(out->bn_var);
	reset_outputs(out);
}

int nn_model_forward_ref(const struct nn_model *m, uint32_t n, uint32_t h, uint32_t w, const float *input,
                         struct nn_ref_outputs *out)
{
	bool keep = out->keep_layers;
	reset_outputs(out);
	struct nn_shape *s = calloc(m->n_tensors, sizeof(*s));
	float **buf = calloc(m->n_tensors, sizeof(float *));
	int ret = -ENOMEM;
	if (!s || !buf)
		goto fail;
	if ((ret = nn_model_shapes(m, h, w, s)))
		goto fail;
	ret = -ENOMEM;
	buf[0] = (float *)input; // read-only: no op writes tensor 0
	for (uint32_t t = 1; t < m->n_tensors; t++) {
		size_t cnt = (size_t)n * s[t].c * s[t].h * s[t].w;
		if (!(buf[t] = calloc(cnt ? cnt : 1, sizeof(float)))) {
			LOGE("model forward ref: tensor %u: out of memory (%zu floats)", t, cnt);
			goto fail;
		}
	}
	if (out->keep_train) {
		out->n_ops = m->n_ops;
		out->conv_z = calloc(m->n_ops, sizeof(float *)), out->conv_u = calloc(m->n_ops, sizeof(float *));
		out->bn_mean = calloc(m->n_ops, sizeof(float *)), out->bn_var = calloc(m->n_ops, sizeof(float *));
		if (!out->conv_z || !out->conv_u || !out->bn_mean || !out->bn_var)
			goto fail;
	}
	for (uint32_t i = 0; i < m->n_ops; i++)
		if ((ret = run_op(m, i, s, n, out, buf))) {
			LOGE("model forward ref: op %u (%s): out of memory", i, m->ops[i].name);
			goto fail;
		}
	ret = -ENOMEM;
	out->n = n;
	out->rows = 4 + m->nc;
	out->a = s[m->output].w;
	if (keep && (ret = keep_layers(m, s, n, buf, out)))
		goto fail;
	for (uint32_t set = 0; out->keep_heads && set < m->n_head_sets; set++)
		for (uint32_t l = 0; l < m->nl; l++) {
			uint32_t t = m->head_map[set][l];
			out->head_shape[set][l] = s[t];
			if (!out->keep_train)
				out->head[set][l] = buf[t], buf[t] = NULL;
			else if ((out->head[set][l] = dense_alloc((size_t)n * s[t].c * s[t].h * s[t].w)))
				memcpy(out->head[set][l], buf[t], (size_t)n * s[t].c * s[t].h * s[t].w * sizeof(float));
			else {
				ret = -ENOMEM;
				goto fail;
			}
		}
	out->output = buf[m->output], buf[m->output] = NULL;
	if (m->output_aux != NN_NO_TENSOR)
		out->output_aux = buf[m->output_aux], buf[m->output_aux] = NULL;
	if (out->keep_train) {
		size_t cnt = (size_t)n * s[0].c * h * w;
		if (!(buf[0] = dense_alloc(cnt))) {
			ret = -ENOMEM;
			goto fail;
		}
		memcpy(buf[0], input, cnt * sizeof(float));
		out->n_tensors = m->n_tensors, out->act = buf, out->shape = s;
		buf = NULL, s = NULL;
	}
	ret = 0;
fail:
	for (uint32_t t = 1; buf && t < m->n_tensors; t++)
		free(buf[t]);
	free(buf);
	free(s);
	if (ret)
		nn_ref_outputs_finish(out);
	return ret;
}
