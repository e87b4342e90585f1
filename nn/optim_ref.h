// CPU reference of the official optimizer step (train.py with hyp.scratch-high.yaml): gradient-norm
// clipping over all parameters, then PyTorch SGD with Nesterov momentum over three parameter groups:
// conv weights (with weight decay), BatchNorm weights and all biases (without).
#pragma once
#include "model_bwd.h"

struct nn_sgd_params {
	float lr;           // 0.01
	float momentum;     // 0.937
	float weight_decay; // on conv weights only (official group 1), e.g. 5e-4
	bool nesterov;      // true (official)
};

// Momentum buffers, one per parameter, aligned with nn_model_grads. Owned; not thread-safe.
struct nn_sgd;
int nn_sgd_create(const struct nn_model *m, struct nn_sgd **out); // -ENOMEM
void nn_sgd_destroy(struct nn_sgd **s);

// Global L2 norm of all gradients (double accumulation).
double nn_model_grads_norm(const struct nn_model_grads *g, const struct nn_model *m);
// torch.nn.utils.clip_grad_norm_: when the global norm exceeds max_norm, scales every gradient by
// max_norm / (norm + 1e-6). Returns the norm before clipping.
double nn_model_grads_clip_ref(struct nn_model_grads *g, const struct nn_model *m, double max_norm);

// One step on the model's parameters (ops' w, b, bn.gamma, bn.beta, in place), PyTorch semantics:
// d = grad (+ wd * p for conv weights); buf = d on the first step, else momentum * buf + d;
// p -= lr * (d + momentum * buf) with nesterov, else lr * buf. -EINVAL when s belongs to another model.
int nn_sgd_step_ref(struct nn_sgd *s, struct nn_model *m, const struct nn_model_grads *g,
                    const struct nn_sgd_params *p);

// nn_sgd_step_ref with one learning rate per official parameter group: lr[0] for every bias (conv
// biases and BatchNorm betas), lr[1] for conv weights (the only group with weight decay), lr[2] for
// BatchNorm weights (the order of enum nn_param_group, trainer.h). p->lr is ignored. -EINVAL as above.
int nn_sgd_step_groups_ref(struct nn_sgd *s, struct nn_model *m, const struct nn_model_grads *g,
                           const struct nn_sgd_params *p, const float lr[3]);
// The momentum buffers (layout of nn_model_grads) and whether a step has filled them yet (before the
// first step they hold zeros and the next step sets buf = d). Resume writes the buffers back and then
// calls nn_sgd_set_started(s, true); false makes the next step start over (buf = d).
struct nn_model_grads *nn_sgd_buffers(struct nn_sgd *s, bool *started);
void nn_sgd_set_started(struct nn_sgd *s, bool started);
// The official ModelEMA decay ramp: d = 0.9999 * (1 - exp(-updates / 2000)), where `updates` counts
// the EMA updates including the current one (ModelEMA increments it before computing d: the first
// update uses updates = 1).
double nn_ema_decay(uint64_t updates);
// ema = d * ema + (1 - d) * cur over count floats, rounded as torch does in fp32: `v *= d` then
// `v += (1 - d) * model` with d and 1 - d each rounded once to float.
void nn_ema_update_ref(float *ema, const float *cur, size_t count, double decay);
