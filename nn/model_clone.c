// nn_model_clone / nn_model_copy_weights: deep copies of a model's graph and weights (the training
// executor keeps its own current and EMA copies; read/load of trainer state copies weights only).
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "model.h"

static size_t weight_count(const struct nn_op *op)
{
	return (size_t)op->y.c * (op->x.c / op->groups) * op->k * op->k;
}

static float *dup_floats(const float *src, size_t n, bool *oom)
{
	if (!src)
		return NULL;
	float *p = malloc(n * sizeof(float));
	if (!p) {
		*oom = true;
		return NULL;
	}
	memcpy(p, src, n * sizeof(float));
	return p;
}

static void *dup_bytes(const void *src, size_t n, bool *oom)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		*oom = true;
	else if (n)
		memcpy(p, src, n);
	return p;
}

int nn_model_clone(const struct nn_model *m, struct nn_model **out)
{
	bool oom = false;
	struct nn_model *c = malloc(sizeof(*c));
	*out = NULL;
	if (!c)
		goto fail;
	*c = *m;
	c->names = NULL, c->ops = NULL, c->tensors = NULL, c->layers = NULL;
	c->tensors = dup_bytes(m->tensors, m->n_tensors * sizeof(*m->tensors), &oom);
	c->layers = dup_bytes(m->layers, m->n_layers * sizeof(*m->layers), &oom);
	c->names = calloc(m->nc ? m->nc : 1, sizeof(char *));
	c->ops = calloc(m->n_ops ? m->n_ops : 1, sizeof(*c->ops));
	if (oom || !c->names || !c->ops)
		goto fail;
	for (uint32_t i = 0; i < m->nc; i++)
		if (m->names && !(c->names[i] = strdup(m->names[i])))
			goto fail;
	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct nn_op *s = &m->ops[i];
		struct nn_op *d = &c->ops[i];
		*d = *s;
		d->w = d->b = NULL;
		d->bn.gamma = d->bn.beta = d->bn.mean = d->bn.var = NULL;
		if (s->kind != NN_OP_CONV)
			continue;
		d->w = dup_floats(s->w, weight_count(s), &oom);
		d->b = dup_floats(s->b, s->y.c, &oom);
		d->bn.gamma = dup_floats(s->bn.gamma, s->y.c, &oom);
		d->bn.beta = dup_floats(s->bn.beta, s->y.c, &oom);
		d->bn.mean = dup_floats(s->bn.mean, s->y.c, &oom);
		d->bn.var = dup_floats(s->bn.var, s->y.c, &oom);
		if (oom)
			goto fail;
	}
	*out = c;
	return 0;
fail:
	LOGE("model clone: out of memory");
	if (c && !c->names) // nothing else to free past the arrays
		c->nc = 0;
	if (c && !c->ops)
		c->n_ops = 0;
	nn_model_destroy(&c);
	return -ENOMEM;
}

static bool same_op(const struct nn_op *a, const struct nn_op *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind != NN_OP_CONV)
		return true;
	return a->x.c == b->x.c && a->y.c == b->y.c && a->k == b->k && a->groups == b->groups && !a->b == !b->b &&
	       !a->bn.gamma == !b->bn.gamma;
}

static void copy_floats(float *dst, const float *src, size_t n)
{
	if (dst && src)
		memcpy(dst, src, n * sizeof(float));
}

int nn_model_copy_weights(struct nn_model *dst, const struct nn_model *src)
{
	if (dst->n_ops != src->n_ops) {
		LOGE("model copy weights: %u ops vs %u", dst->n_ops, src->n_ops);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < src->n_ops; i++)
		if (!same_op(&dst->ops[i], &src->ops[i])) {
			LOGE("model copy weights: op %u (%s) differs in structure", i, src->ops[i].name);
			return -EINVAL;
		}
	for (uint32_t i = 0; i < src->n_ops; i++) {
		struct nn_op *d = &dst->ops[i];
		const struct nn_op *s = &src->ops[i];
		if (s->kind != NN_OP_CONV)
			continue;
		copy_floats(d->w, s->w, weight_count(s));
		copy_floats(d->b, s->b, s->y.c);
		copy_floats(d->bn.gamma, s->bn.gamma, s->y.c);
		copy_floats(d->bn.beta, s->bn.beta, s->y.c);
		copy_floats(d->bn.mean, s->bn.mean, s->y.c);
		copy_floats(d->bn.var, s->bn.var, s->y.c);
	}
	return 0;
}
