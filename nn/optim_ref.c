// CPU reference of gradient clipping and SGD (optim_ref.h), mirroring torch.optim.SGD's update
// order and torch.nn.utils.clip_grad_norm_.
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "log.h"
#include "optim_ref.h"

struct nn_sgd {
	struct nn_model_grads *buf; // momentum buffers, same layout as the gradients
	bool started;
};

int nn_sgd_create(const struct nn_model *m, struct nn_sgd **out)
{
	struct nn_sgd *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s) {
		LOGE("sgd: out of memory");
		return -ENOMEM;
	}
	int ret = nn_model_grads_create(m, &s->buf);
	if (ret) {
		free(s);
		return ret;
	}
	*out = s;
	return 0;
}

void nn_sgd_destroy(struct nn_sgd **ps)
{
	if (!ps || !*ps)
		return;
	nn_model_grads_destroy(&(*ps)->buf);
	free(*ps);
	*ps = NULL;
}

// Visits every parameter tensor of op i: (param, grad, momentum buffer or NULL, count, decays).
typedef void (*param_fn)(float *p, float *g, float *buf, size_t count, bool decay, void *ctx);

static void for_each_param(struct nn_model *m, struct nn_model_grads *g, struct nn_model_grads *buf, param_fn fn,
                           void *ctx)
{
	for (uint32_t i = 0; i < m->n_ops; i++) {
		struct nn_op *op = &m->ops[i];
		if (op->kind != NN_OP_CONV)
			continue;
		size_t nw = (size_t)op->y.c * (op->x.c / op->groups) * op->k * op->k;
		fn(op->w, g->w[i], buf ? buf->w[i] : NULL, nw, true, ctx);
		if (op->b)
			fn(op->b, g->b[i], buf ? buf->b[i] : NULL, op->y.c, false, ctx);
		if (op->bn.gamma) {
			fn(op->bn.gamma, g->gamma[i], buf ? buf->gamma[i] : NULL, op->y.c, false, ctx);
			fn(op->bn.beta, g->beta[i], buf ? buf->beta[i] : NULL, op->y.c, false, ctx);
		}
	}
}

static void add_square(float *p, float *g, float *buf, size_t count, bool decay, void *ctx)
{
	double *acc = ctx;
	for (size_t k = 0; k < count; k++)
		*acc += (double)g[k] * g[k];
	(void)p, (void)buf, (void)decay;
}

double nn_model_grads_norm(const struct nn_model_grads *g, const struct nn_model *m)
{
	double acc = 0.0;
	// the visitor only reads: the casts do not lead to writes
	for_each_param((struct nn_model *)m, (struct nn_model_grads *)g, NULL, add_square, &acc);
	return sqrt(acc);
}

static void scale(float *p, float *g, float *buf, size_t count, bool decay, void *ctx)
{
	float f = *(const float *)ctx;
	for (size_t k = 0; k < count; k++)
		g[k] *= f;
	(void)p, (void)buf, (void)decay;
}

double nn_model_grads_clip_ref(struct nn_model_grads *g, const struct nn_model *m, double max_norm)
{
	double norm = nn_model_grads_norm(g, m);
	float coef = (float)(max_norm / (norm + 1e-6));
	if (coef < 1.0f)
		for_each_param((struct nn_model *)m, g, NULL, scale, &coef);
	return norm;
}

struct step_ctx {
	const struct nn_sgd_params *p;
	bool first;
};

static void sgd_update(float *p, float *g, float *buf, size_t count, bool decay, void *vctx)
{
	const struct step_ctx *c = vctx;
	float wd = decay ? c->p->weight_decay : 0.0f, mom = c->p->momentum, lr = c->p->lr;
	for (size_t k = 0; k < count; k++) {
		float d = wd != 0.0f ? g[k] + wd * p[k] : g[k];
		buf[k] = c->first ? d : mom * buf[k] + d;
		p[k] -= lr * (c->p->nesterov ? d + mom * buf[k] : buf[k]);
	}
}

int nn_sgd_step_ref(struct nn_sgd *s, struct nn_model *m, const struct nn_model_grads *g,
                    const struct nn_sgd_params *p)
{
	if (s->buf->n_ops != m->n_ops || g->n_ops != m->n_ops) {
		LOGE("sgd step: optimizer state or gradients belong to another model");
		return -EINVAL;
	}
	struct step_ctx c = {p, !s->started};
	for_each_param(m, (struct nn_model_grads *)g, s->buf, sgd_update, &c);
	s->started = true;
	return 0;
}

struct nn_model_grads *nn_sgd_buffers(struct nn_sgd *s, bool *started)
{
	if (started)
		*started = s->started;
	return s->buf;
}

void nn_sgd_set_started(struct nn_sgd *s, bool started)
{
	s->started = started;
}

int nn_sgd_step_groups_ref(struct nn_sgd *s, struct nn_model *m, const struct nn_model_grads *g,
                           const struct nn_sgd_params *p, const float lr[3])
{
	if (s->buf->n_ops != m->n_ops || g->n_ops != m->n_ops) {
		LOGE("sgd step: optimizer state or gradients belong to another model");
		return -EINVAL;
	}
	// one context per group: biases (no decay), conv weights (decay), BN weights (no decay)
	struct nn_sgd_params gp[3] = {*p, *p, *p};
	struct step_ctx c[3];
	for (int k = 0; k < 3; k++) {
		gp[k].lr = lr[k];
		gp[k].weight_decay = k == 1 ? p->weight_decay : 0.0f;
		c[k] = (struct step_ctx){&gp[k], !s->started};
	}
	struct nn_model_grads *buf = s->buf;
	for (uint32_t i = 0; i < m->n_ops; i++) {
		struct nn_op *op = &m->ops[i];
		if (op->kind != NN_OP_CONV)
			continue;
		size_t nw = (size_t)op->y.c * (op->x.c / op->groups) * op->k * op->k;
		sgd_update(op->w, g->w[i], buf->w[i], nw, true, &c[1]);
		if (op->b)
			sgd_update(op->b, g->b[i], buf->b[i], op->y.c, false, &c[0]);
		if (op->bn.gamma) {
			sgd_update(op->bn.gamma, g->gamma[i], buf->gamma[i], op->y.c, false, &c[2]);
			sgd_update(op->bn.beta, g->beta[i], buf->beta[i], op->y.c, false, &c[0]);
		}
	}
	s->started = true;
	return 0;
}

double nn_ema_decay(uint64_t updates)
{
	return 0.9999 * (1.0 - exp(-(double)updates / 2000.0));
}

void nn_ema_update_ref(float *ema, const float *cur, size_t count, double decay)
{
	float d = (float)decay, omd = (float)(1.0 - decay);
	for (size_t k = 0; k < count; k++) {
		float a = ema[k] * d; // separate statements: no contraction into an FMA
		float b = omd * cur[k];
		ema[k] = a + b;
	}
}
