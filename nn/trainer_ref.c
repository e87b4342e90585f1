// CPU reference backend of nn/trainer.h: the plain-C training pieces (model_bwd.h, optim_ref.h) on
// the trainer's own host copies of the model (current weights and EMA; the caller's model is only
// read at create). Slow; for tests and for checking the GPU backend.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "optim_ref.h"
#include "trainer_internal.h"

struct ref_impl {
	struct nn_model *cur, *ema;
	struct nn_model_grads *acc, *tmp; // accumulated gradients; one batch's (loss_grads overwrites)
	struct nn_sgd *sgd;
	float *x; // [n, 3, h, w] network input
};

static struct ref_impl *impl(struct nn_trainer *t)
{
	return t->impl;
}

static size_t weight_count(const struct nn_op *op)
{
	return (size_t)op->y.c * (op->x.c / op->groups) * op->k * op->k;
}

// Calls fn(a, b, count) for every parameter array of op i in a and the matching array in b (g and g,
// or model and grads); model arrays when the grads pointer is NULL.
typedef void (*pair_fn)(float *a, const float *b, size_t count, void *ctx);

static void grads_for_each(const struct nn_model *m, struct nn_model_grads *a, const struct nn_model_grads *b,
                           pair_fn fn, void *ctx)
{
	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct nn_op *op = &m->ops[i];
		if (op->kind != NN_OP_CONV)
			continue;
		fn(a->w[i], b->w[i], weight_count(op), ctx);
		if (a->b[i])
			fn(a->b[i], b->b[i], op->y.c, ctx);
		if (a->gamma[i]) {
			fn(a->gamma[i], b->gamma[i], op->y.c, ctx);
			fn(a->beta[i], b->beta[i], op->y.c, ctx);
		}
	}
}

static void add_to(float *a, const float *b, size_t count, void *ctx)
{
	for (size_t k = 0; k < count; k++)
		a[k] += b[k];
	(void)ctx;
}

static void set_zero(float *a, const float *b, size_t count, void *ctx)
{
	memset(a, 0, count * sizeof(float));
	(void)b, (void)ctx;
}

static int ref_zero_grad(struct nn_trainer *t)
{
	struct ref_impl *r = impl(t);
	grads_for_each(r->cur, r->acc, r->acc, set_zero, NULL);
	return 0;
}

// The references size everything per call from t->n: nothing to redo.
static int ref_set_batch(struct nn_trainer *t, uint32_t n)
{
	(void)t, (void)n;
	return 0;
}

static int ref_forward_backward(struct nn_trainer *t, const uint8_t *input_u8, const float *targets,
                                uint32_t n_targets, struct nn_loss_out *lo)
{
	struct ref_impl *r = impl(t);
	const struct nn_trainer_params *p = &t->p;
	size_t cnt = (size_t)t->n * 3 * p->h * p->w;
	for (size_t k = 0; k < cnt; k++)
		r->x[k] = input_u8[k] / 255.0f;
	struct nn_ref_outputs fw = {0};
	int ret = nn_model_loss_grads_ref(r->cur, t->n, p->h, p->w, r->x, targets, n_targets, &fw, lo, r->tmp);
	if (!ret)
		ret = nn_model_bn_update_ref(r->cur, &fw, p->bn_momentum);
	if (!ret)
		grads_for_each(r->cur, r->acc, r->tmp, add_to, NULL);
	nn_ref_outputs_finish(&fw);
	return ret;
}

static int ref_step(struct nn_trainer *t, const struct nn_trainer_step_params *p, double *grad_norm)
{
	struct ref_impl *r = impl(t);
	double norm = p->max_grad_norm > 0.0f ? nn_model_grads_clip_ref(r->acc, r->cur, p->max_grad_norm)
	                                      : nn_model_grads_norm(r->acc, r->cur);
	if (grad_norm)
		*grad_norm = norm;
	struct nn_sgd_params sp = {.momentum = p->momentum, .weight_decay = p->weight_decay, .nesterov = p->nesterov};
	return nn_sgd_step_groups_ref(r->sgd, r->cur, r->acc, &sp, p->lr);
}

// ModelEMA.update over every parameter and BN running statistic (nn_ema_update_ref, fp32 as torch)
static void ema_mix(float *e, const float *c, size_t count, double decay)
{
	if (e && c)
		nn_ema_update_ref(e, c, count, decay);
}

static int ref_ema_update(struct nn_trainer *t, double decay)
{
	struct ref_impl *r = impl(t);
	for (uint32_t i = 0; i < r->cur->n_ops; i++) {
		struct nn_op *e = &r->ema->ops[i];
		const struct nn_op *c = &r->cur->ops[i];
		if (c->kind != NN_OP_CONV)
			continue;
		ema_mix(e->w, c->w, weight_count(c), decay);
		ema_mix(e->b, c->b, c->y.c, decay);
		ema_mix(e->bn.gamma, c->bn.gamma, c->y.c, decay);
		ema_mix(e->bn.beta, c->bn.beta, c->y.c, decay);
		ema_mix(e->bn.mean, c->bn.mean, c->y.c, decay);
		ema_mix(e->bn.var, c->bn.var, c->y.c, decay);
	}
	return 0;
}

static int ref_read_state(struct nn_trainer *t, enum nn_trainer_state which, struct nn_model *dst)
{
	struct ref_impl *r = impl(t);
	return nn_model_copy_weights(dst, which == NN_TRAINER_EMA ? r->ema : r->cur);
}

static int ref_load_state(struct nn_trainer *t, enum nn_trainer_state which, const struct nn_model *src)
{
	struct ref_impl *r = impl(t);
	int ret = nn_model_copy_weights(which == NN_TRAINER_EMA ? r->ema : r->cur, src);
	if (!ret && which == NN_TRAINER_CURRENT) // new weights: the momentum starts over unless imported
		nn_sgd_set_started(r->sgd, false);
	return ret;
}

static int ref_export_grads(struct nn_trainer *t, const char *prefix, struct nn_tensor_map *out)
{
	struct ref_impl *r = impl(t);
	return nn_model_grads_export(r->cur, r->acc, prefix, out);
}

static int ref_export_momentum(struct nn_trainer *t, const char *prefix, struct nn_tensor_map *out)
{
	struct ref_impl *r = impl(t);
	bool started;
	struct nn_model_grads *buf = nn_sgd_buffers(r->sgd, &started);
	return started ? nn_model_grads_export(r->cur, buf, prefix, out) : 0;
}

// The tensor prefix + <op name> + suffix of in, with count floats; NULL (logged) when absent or wrong.
static const struct nn_tensor *find_param(const struct nn_tensor_map *in, const char *prefix, const char *op,
                                          const char *suffix, size_t count)
{
	char name[256];
	snprintf(name, sizeof(name), "%s%s%s", prefix, op, suffix);
	const struct nn_tensor *tn = nn_tensor_map_find(in, name);
	if (!tn || tn->dtype != NN_DTYPE_F32 || (size_t)nn_tensor_numel(tn) != count) {
		LOGE("trainer import momentum: %s %s", name, tn ? "has the wrong size or dtype" : "missing");
		return NULL;
	}
	return tn;
}

// Pass 0 checks every name, pass 1 copies: all or none.
static int ref_import_momentum(struct nn_trainer *t, const char *prefix, const struct nn_tensor_map *in)
{
	struct ref_impl *r = impl(t);
	struct nn_model_grads *buf = nn_sgd_buffers(r->sgd, NULL);
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t i = 0; i < r->cur->n_ops; i++) {
			const struct nn_op *op = &r->cur->ops[i];
			if (op->kind != NN_OP_CONV)
				continue;
			const char *sfx[4] = {op->bare ? ".weight" : ".conv.weight", op->bare ? ".bias" : ".conv.bias",
			                      ".bn.weight", ".bn.bias"};
			float *dst[4] = {buf->w[i], buf->b[i], buf->gamma[i], buf->beta[i]};
			for (int k = 0; k < 4; k++) {
				if (!dst[k])
					continue;
				size_t cnt = k == 0 ? weight_count(op) : op->y.c;
				const struct nn_tensor *tn = find_param(in, prefix, op->name, sfx[k], cnt);
				if (!tn)
					return -EINVAL;
				if (pass == 1)
					memcpy(dst[k], tn->data, cnt * sizeof(float));
			}
		}
	nn_sgd_set_started(r->sgd, true);
	return 0;
}

static void ref_timing(const struct nn_trainer *t, struct nn_trainer_timing *out)
{
	(void)t;
	*out = (struct nn_trainer_timing){0};
}

static void ref_destroy(struct nn_trainer *t)
{
	struct ref_impl *r = impl(t);
	if (!r)
		return;
	nn_model_destroy(&r->cur);
	nn_model_destroy(&r->ema);
	nn_model_grads_destroy(&r->acc);
	nn_model_grads_destroy(&r->tmp);
	nn_sgd_destroy(&r->sgd);
	free(r->x);
	free(r);
	t->impl = NULL;
}

static const struct nn_trainer_backend ref_backend = {
	.zero_grad = ref_zero_grad,
	.set_batch = ref_set_batch,
	.forward_backward = ref_forward_backward,
	.step = ref_step,
	.ema_update = ref_ema_update,
	.read_state = ref_read_state,
	.load_state = ref_load_state,
	.export_grads = ref_export_grads,
	.export_momentum = ref_export_momentum,
	.import_momentum = ref_import_momentum,
	.timing = ref_timing,
	.destroy = ref_destroy,
};

int nn_trainer_ref_init(struct nn_trainer *t)
{
	struct ref_impl *r = calloc(1, sizeof(*r));
	int ret = -ENOMEM;
	if (!r)
		goto fail;
	t->impl = r;
	t->be = &ref_backend;
	if ((ret = nn_model_clone(t->m, &r->cur)) || (ret = nn_model_clone(t->m, &r->ema)) ||
	    (ret = nn_model_grads_create(t->m, &r->acc)) || (ret = nn_model_grads_create(t->m, &r->tmp)) ||
	    (ret = nn_sgd_create(t->m, &r->sgd)))
		goto fail;
	if (!(r->x = malloc((size_t)t->p.n * 3 * t->p.h * t->p.w * sizeof(float)))) {
		ret = -ENOMEM;
		goto fail;
	}
	return 0;
fail:
	LOGE("trainer (CPU reference): setup failed: %d", ret);
	ref_destroy(t);
	t->be = NULL;
	return ret;
}
