// CPU reference backward pass over the model's op list (model_bwd.h): one reverse sweep that turns
// d loss / d head maps into d loss / d every parameter, with per-tensor gradient buffers that mirror
// the activation tensors (slices accumulate, so concat / chunk / residual fan-out cost nothing).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "model_bwd.h"
#include "ref_bwd.h"

static size_t bn_count(const struct nn_op *op)
{
	return op->kind == NN_OP_CONV && op->bn.gamma ? op->y.c : 0;
}

void nn_model_grads_destroy(struct nn_model_grads **pg)
{
	struct nn_model_grads *g = pg ? *pg : NULL;
	if (!g)
		return;
	for (uint32_t i = 0; g->w && i < g->n_ops; i++)
		free(g->w[i]), free(g->b[i]), free(g->gamma[i]), free(g->beta[i]);
	free(g->w), free(g->b), free(g->gamma), free(g->beta);
	free(g);
	*pg = NULL;
}

int nn_model_grads_create(const struct nn_model *m, struct nn_model_grads **out)
{
	struct nn_model_grads *g = calloc(1, sizeof(*g));
	*out = NULL;
	if (!g)
		goto fail;
	g->n_ops = m->n_ops;
	g->w = calloc(m->n_ops, sizeof(float *)), g->b = calloc(m->n_ops, sizeof(float *));
	g->gamma = calloc(m->n_ops, sizeof(float *)), g->beta = calloc(m->n_ops, sizeof(float *));
	if (!g->w || !g->b || !g->gamma || !g->beta)
		goto fail;
	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct nn_op *op = &m->ops[i];
		if (op->kind != NN_OP_CONV)
			continue;
		size_t nw = (size_t)op->y.c * (op->x.c / op->groups) * op->k * op->k;
		if (!(g->w[i] = calloc(nw, sizeof(float))))
			goto fail;
		if (op->b && !(g->b[i] = calloc(op->y.c, sizeof(float))))
			goto fail;
		if (bn_count(op) && (!(g->gamma[i] = calloc(op->y.c, sizeof(float))) ||
		                     !(g->beta[i] = calloc(op->y.c, sizeof(float)))))
			goto fail;
	}
	*out = g;
	return 0;
fail:
	LOGE("model grads: out of memory");
	nn_model_grads_destroy(&g);
	return -ENOMEM;
}

// Gradient of one conv op: dy (its y slice of grad[y]) -> parameters and grad[x], grad[r].
static int conv_backward(const struct nn_model *m, uint32_t i, const struct nn_ref_outputs *fw, float **grad,
                         struct nn_model_grads *g)
{
	const struct nn_op *op = &m->ops[i];
	struct nn_conv2d_desc d;
	nn_op_conv_desc(op, fw->shape, fw->n, &d);
	uint32_t ho = nn_conv2d_out_h(&d), wo = nn_conv2d_out_w(&d);
	size_t cnt = (size_t)d.n * d.c_out * ho * wo;
	float *dz = malloc(cnt * sizeof(float)); // [n, c_out, ho, wo]: d pre-activation, then d conv output
	if (!dz)
		return -ENOMEM;
	if (op->act != NN_ACT_NONE && !fw->conv_u[i]) {
		free(dz);
		LOGE("model backward ref: op %u (%s): no saved pre-activation", i, op->name);
		return -EINVAL;
	}
	nn_conv2d_act_backward_ref(&d, op->act != NN_ACT_NONE ? fw->conv_u[i] : NULL, grad[op->y.tensor], dz,
	                           op->r.tensor == NN_NO_TENSOR ? NULL : grad[op->r.tensor]);
	if (op->bn.gamma) {
		struct nn_bn_desc bd = {d.n, d.c_out, ho, wo, op->bn.eps, fw->train_bn};
		nn_bn_backward_ref(&bd, fw->conv_z[i], dz, op->bn.gamma, fw->bn_mean[i], fw->bn_var[i], dz, g->gamma[i],
		                   g->beta[i]);
	}
	// the conv sees a dense dz: descriptor with y = [n, c_out, ho, wo]
	d.y_c_total = d.c_out, d.y_c_off = 0;
	nn_conv2d_backward_weight_ref(&d, fw->act[op->x.tensor], dz, g->w[i], g->b[i]);
	if (op->x.tensor != 0) // no gradient for the input image
		nn_conv2d_backward_data_ref(&d, dz, op->w, grad[op->x.tensor]);
	free(dz);
	return 0;
}

static int op_backward(const struct nn_model *m, uint32_t i, const struct nn_ref_outputs *fw, float **grad,
                       struct nn_model_grads *g)
{
	const struct nn_op *op = &m->ops[i];
	if (op->kind == NN_OP_CONV)
		return conv_backward(m, i, fw, grad, g);
	if (op->x.tensor == 0 || op->kind == NN_OP_DECODE) // decoded outputs are not trained
		return 0;
	if (op->kind == NN_OP_RESIZE) {
		struct nn_resize_desc d;
		nn_op_resize_desc(op, fw->shape, fw->n, &d);
		nn_resize_nearest_backward_ref(&d, grad[op->y.tensor], grad[op->x.tensor]);
		return 0;
	}
	struct nn_pool2d_desc d;
	nn_op_pool_desc(op, fw->shape, fw->n, &d);
	if (op->kind == NN_OP_MAXPOOL)
		nn_maxpool2d_backward_ref(&d, fw->act[op->x.tensor], grad[op->y.tensor], grad[op->x.tensor]);
	else
		nn_avgpool2d_backward_ref(&d, grad[op->y.tensor], grad[op->x.tensor]);
	return 0;
}

int nn_model_backward_ref(const struct nn_model *m, const struct nn_ref_outputs *fw, const float *const *d_heads,
                          struct nn_model_grads *g)
{
	if (!fw->keep_train || !fw->act || fw->n_tensors != m->n_tensors || fw->n_ops != m->n_ops ||
	    g->n_ops != m->n_ops) {
		LOGE("model backward ref: the forward was not run with keep_train on this model");
		return -EINVAL;
	}
	int ret = -ENOMEM;
	float **grad = calloc(m->n_tensors, sizeof(float *)); // grad[t]: d loss / d tensor t, like act[t]
	if (!grad)
		goto fail;
	for (uint32_t t = 1; t < m->n_tensors; t++) {
		size_t cnt = (size_t)fw->n * fw->shape[t].c * fw->shape[t].h * fw->shape[t].w;
		if (!(grad[t] = calloc(cnt ? cnt : 1, sizeof(float)))) {
			LOGE("model backward ref: tensor %u: out of memory (%zu floats)", t, cnt);
			goto fail;
		}
	}
	for (uint32_t set = 0; set < m->n_head_sets; set++)
		for (uint32_t l = 0; l < m->nl; l++) {
			uint32_t t = m->head_map[set][l];
			size_t cnt = (size_t)fw->n * fw->shape[t].c * fw->shape[t].h * fw->shape[t].w;
			memcpy(grad[t], d_heads[set * m->nl + l], cnt * sizeof(float));
		}
	for (uint32_t i = m->n_ops; i-- > 0;)
		if ((ret = op_backward(m, i, fw, grad, g))) {
			if (ret == -ENOMEM)
				LOGE("model backward ref: op %u (%s): out of memory", i, m->ops[i].name);
			goto fail;
		}
	ret = 0;
fail:
	for (uint32_t t = 0; grad && t < m->n_tensors; t++)
		free(grad[t]);
	free(grad);
	return ret;
}

static int export_one(struct nn_tensor_map *out, const char *prefix, const char *name, const char *suffix,
                      uint32_t ndim, const int64_t *shape, const float *data)
{
	char full[256];
	snprintf(full, sizeof(full), "%s%s%s", prefix, name, suffix);
	return nn_tensor_map_add(out, full, NN_DTYPE_F32, ndim, shape, data);
}

int nn_model_grads_export(const struct nn_model *m, const struct nn_model_grads *g, const char *prefix,
                          struct nn_tensor_map *out)
{
	int ret = 0;
	for (uint32_t i = 0; i < m->n_ops && !ret; i++) {
		const struct nn_op *op = &m->ops[i];
		if (op->kind != NN_OP_CONV)
			continue;
		int64_t ws[4] = {op->y.c, op->x.c / op->groups, op->k, op->k}, cs[1] = {op->y.c};
		ret = export_one(out, prefix, op->name, op->bare ? ".weight" : ".conv.weight", 4, ws, g->w[i]);
		if (!ret && g->b[i])
			ret = export_one(out, prefix, op->name, op->bare ? ".bias" : ".conv.bias", 1, cs, g->b[i]);
		if (!ret && g->gamma[i] && !(ret = export_one(out, prefix, op->name, ".bn.weight", 1, cs, g->gamma[i])))
			ret = export_one(out, prefix, op->name, ".bn.bias", 1, cs, g->beta[i]);
	}
	if (ret)
		LOGE("model grads export: %d", ret);
	return ret;
}

int nn_model_bn_update_ref(struct nn_model *m, const struct nn_ref_outputs *fw, float momentum)
{
	if (!fw->keep_train || !fw->train_bn || fw->n_ops != m->n_ops) {
		LOGE("model bn update: the forward was not a training forward with keep_train on this model");
		return -EINVAL;
	}
	for (uint32_t i = 0; i < m->n_ops; i++) {
		struct nn_op *op = &m->ops[i];
		if (!bn_count(op))
			continue;
		struct nn_conv2d_desc d;
		nn_op_conv_desc(op, fw->shape, fw->n, &d);
		struct nn_bn_desc bd = {d.n, d.c_out, nn_conv2d_out_h(&d), nn_conv2d_out_w(&d), op->bn.eps, true};
		nn_bn_running_update_ref(&bd, momentum, fw->bn_mean[i], fw->bn_var[i], op->bn.mean, op->bn.var);
	}
	return 0;
}

int nn_model_loss_grads_ref(const struct nn_model *m, uint32_t n, uint32_t h, uint32_t w, const float *x,
                            const float *targets, uint32_t n_targets, struct nn_ref_outputs *fw,
                            struct nn_loss_out *lo, struct nn_model_grads *g)
{
	float *dmaps[2 * NN_DETECT_MAX_LEVELS] = {0}; // d loss / d head maps, like the maps
	const float *maps[2 * NN_DETECT_MAX_LEVELS];
	struct nn_loss_desc d = {.n = n, .nc = m->nc, .reg_max = m->reg_max, .nl = m->nl};
	fw->train_bn = fw->keep_heads = fw->keep_train = true;
	*lo = (struct nn_loss_out){0};
	int ret = nn_model_forward_ref(m, n, h, w, x, fw);
	for (uint32_t s = 0; !ret && s < m->n_head_sets; s++)
		for (uint32_t l = 0; l < m->nl && !ret; l++) {
			struct nn_shape hs = fw->head_shape[s][l];
			d.h[l] = hs.h, d.w[l] = hs.w, d.stride[l] = m->stride[l];
			maps[s * m->nl + l] = fw->head[s][l];
			if (!(dmaps[s * m->nl + l] = malloc((size_t)n * hs.c * hs.h * hs.w * sizeof(float)))) {
				LOGE("model loss grads: out of memory");
				ret = -ENOMEM;
			}
		}
	lo->grad = dmaps;
	if (!ret)
		ret = m->n_head_sets == 2 ? nn_loss_tal_dual(&d, maps, targets, n_targets, lo)
		                          : nn_loss_tal(&d, maps, targets, n_targets, lo);
	lo->grad = NULL;
	if (!ret)
		ret = nn_model_backward_ref(m, fw, (const float *const *)dmaps, g);
	for (uint32_t i = 0; i < 2 * NN_DETECT_MAX_LEVELS; i++)
		free(dmaps[i]);
	return ret;
}
