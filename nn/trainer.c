// nn/trainer.h front end: argument checks, then every call goes through the backend table
// (trainer_ref.c: CPU references; trainer_gpu.c: Vulkan).
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "log.h"
#include "trainer_internal.h"

#define DEFAULT_BN_MOMENTUM 0.03f // official BatchNorm momentum of these models

int nn_trainer_create(struct gpu_device *dev, const struct nn_model *m, const struct nn_trainer_params *p,
                      struct nn_trainer **out)
{
	if (out)
		*out = NULL;
	if (!m || !p || !out) {
		LOGE("trainer create: NULL model, params or out");
		return -EINVAL;
	}
	if (m->fused) {
		LOGE("trainer create: the model is fused (BatchNorm folded); training needs the unfused model");
		return -EINVAL;
	}
	float smax = 0.0f;
	for (uint32_t l = 0; l < m->nl; l++)
		smax = fmaxf(smax, m->stride[l]);
	uint32_t s = smax > 0.0f ? (uint32_t)smax : 32;
	if (!p->n || !p->h || !p->w || p->h % s || p->w % s) {
		LOGE("trainer create: batch %u x %u x %u: need n > 0 and h, w multiples of the stride %u", p->n, p->h, p->w,
		     s);
		return -EINVAL;
	}
	if (!(p->bn_momentum >= 0.0f && p->bn_momentum <= 1.0f)) {
		LOGE("trainer create: bn_momentum %g outside [0, 1]", p->bn_momentum);
		return -EINVAL;
	}
	if (!p->cpu_reference && !dev) {
		LOGE("trainer create: no GPU device (set cpu_reference for the CPU backend)");
		return -EINVAL;
	}
	struct nn_trainer *t = calloc(1, sizeof(*t));
	if (!t) {
		LOGE("trainer create: out of memory");
		return -ENOMEM;
	}
	t->m = m;
	t->p = *p;
	t->n = p->n;
	if (t->p.bn_momentum == 0.0f)
		t->p.bn_momentum = DEFAULT_BN_MOMENTUM;
	int ret = p->cpu_reference ? nn_trainer_ref_init(t) : nn_trainer_gpu_init(t, dev);
	if (ret) {
		free(t);
		return ret;
	}
	*out = t;
	return 0;
}

void nn_trainer_destroy(struct nn_trainer **pt)
{
	struct nn_trainer *t = pt ? *pt : NULL;
	if (!t)
		return;
	if (t->be && t->be->destroy)
		t->be->destroy(t);
	free(t);
	*pt = NULL;
}

static bool bad(const struct nn_trainer *t, const char *what)
{
	if (t && t->be)
		return false;
	LOGE("trainer %s: NULL trainer", what);
	return true;
}

int nn_trainer_zero_grad(struct nn_trainer *t)
{
	return bad(t, "zero_grad") ? -EINVAL : t->be->zero_grad(t);
}

int nn_trainer_forward_backward(struct nn_trainer *t, const uint8_t *input_u8, const float *targets,
                                uint32_t n_targets, struct nn_loss_out *lo)
{
	if (bad(t, "forward_backward"))
		return -EINVAL;
	if (!input_u8 || (n_targets && !targets) || !lo) {
		LOGE("trainer forward_backward: NULL input, targets (%u rows) or loss out", n_targets);
		return -EINVAL;
	}
	return t->be->forward_backward(t, input_u8, targets, n_targets, lo);
}

int nn_trainer_set_batch(struct nn_trainer *t, uint32_t n)
{
	if (bad(t, "set_batch"))
		return -EINVAL;
	if (!n || n > t->p.n) {
		LOGE("trainer set_batch: batch %u outside 1..%u (the size the trainer was created for)", n, t->p.n);
		return -EINVAL;
	}
	if (n == t->n)
		return 0;
	int ret = t->be->set_batch(t, n);
	if (!ret)
		t->n = n;
	return ret;
}

int nn_trainer_step(struct nn_trainer *t, const struct nn_trainer_step_params *p, double *grad_norm)
{
	if (bad(t, "step"))
		return -EINVAL;
	if (!p) {
		LOGE("trainer step: NULL params");
		return -EINVAL;
	}
	for (int k = 0; k < NN_GROUP_COUNT; k++)
		if (!isfinite(p->lr[k]) || p->lr[k] < 0.0f) {
			LOGE("trainer step: lr[%d] = %g", k, p->lr[k]);
			return -EINVAL;
		}
	if (!isfinite(p->momentum) || !isfinite(p->weight_decay) || !isfinite(p->max_grad_norm) || p->max_grad_norm < 0) {
		LOGE("trainer step: momentum %g, weight decay %g, max grad norm %g", p->momentum, p->weight_decay,
		     p->max_grad_norm);
		return -EINVAL;
	}
	return t->be->step(t, p, grad_norm);
}

int nn_trainer_ema_update(struct nn_trainer *t, double decay)
{
	if (bad(t, "ema_update"))
		return -EINVAL;
	if (!(decay >= 0.0 && decay <= 1.0)) {
		LOGE("trainer ema_update: decay %g outside [0, 1]", decay);
		return -EINVAL;
	}
	return t->be->ema_update(t, decay);
}

static bool bad_which(enum nn_trainer_state which, const void *model, const char *what)
{
	if ((which == NN_TRAINER_CURRENT || which == NN_TRAINER_EMA) && model)
		return false;
	LOGE("trainer %s: bad state %d or NULL model", what, (int)which);
	return true;
}

int nn_trainer_read_state(struct nn_trainer *t, enum nn_trainer_state which, struct nn_model *dst)
{
	if (bad(t, "read_state") || bad_which(which, dst, "read_state"))
		return -EINVAL;
	return t->be->read_state(t, which, dst);
}

int nn_trainer_load_state(struct nn_trainer *t, enum nn_trainer_state which, const struct nn_model *src)
{
	if (bad(t, "load_state") || bad_which(which, src, "load_state"))
		return -EINVAL;
	return t->be->load_state(t, which, src);
}

int nn_trainer_export_grads(struct nn_trainer *t, const char *prefix, struct nn_tensor_map *out)
{
	if (bad(t, "export_grads") || !out)
		return -EINVAL;
	return t->be->export_grads(t, prefix ? prefix : "", out);
}

int nn_trainer_export_momentum(struct nn_trainer *t, const char *prefix, struct nn_tensor_map *out)
{
	if (bad(t, "export_momentum") || !out)
		return -EINVAL;
	return t->be->export_momentum(t, prefix ? prefix : "", out);
}

int nn_trainer_import_momentum(struct nn_trainer *t, const char *prefix, const struct nn_tensor_map *in)
{
	if (bad(t, "import_momentum") || !in)
		return -EINVAL;
	return t->be->import_momentum(t, prefix ? prefix : "", in);
}

void nn_trainer_timing(const struct nn_trainer *t, struct nn_trainer_timing *out)
{
	if (!out)
		return;
	*out = (struct nn_trainer_timing){0};
	if (t && t->be && t->be->timing)
		t->be->timing(t, out);
}

int nn_trainer_timings(struct nn_trainer *t, enum nn_trainer_phase phase, struct gpu_timing *out, uint32_t cap,
                       uint32_t *count)
{
	*count = 0;
	return t->be->timings ? t->be->timings(t, phase, out, cap, count) : 0;
}
