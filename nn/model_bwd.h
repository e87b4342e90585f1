// CPU reference backward pass of a whole model (the ground truth for GPU training): parameter
// gradients from d loss / d raw head maps through the op list in reverse, with official names, and
// the BatchNorm running-statistics update of a training forward.
#pragma once
#include "loss.h"
#include "model.h"

// Parameter gradients, aligned with the ops' own arrays: w[i] like m->ops[i].w, b[i] like ops[i].b,
// gamma[i] / beta[i] like ops[i].bn.gamma / .beta; NULL where op i has no such parameter. Owned.
// The fixed DFL weights have no gradient (they are not op parameters).
struct nn_model_grads {
	uint32_t n_ops;
	float **w, **b, **gamma, **beta;
};
// Zeroed gradients for every parameter of m. -ENOMEM.
int nn_model_grads_create(const struct nn_model *m, struct nn_model_grads **out);
void nn_model_grads_destroy(struct nn_model_grads **g);

// fw: the result of nn_model_forward_ref with keep_train (and, for training, train_bn) set, on the
// same model and batch. d_heads[set * m->nl + l]: d loss / d head map [N, 4 * reg_max + nc, H_l, W_l]
// of set `set` and level l (the order of nn_loss_tal / nn_loss_tal_dual's grad), borrowed.
// Overwrites g with d loss / d every parameter: conv weights, conv biases (fused and bare convs),
// BatchNorm gamma and beta (through the batch statistics when fw->train_bn).
// -EINVAL (fw lacks keep_train or is from another model), -ENOMEM (logged).
int nn_model_backward_ref(const struct nn_model *m, const struct nn_ref_outputs *fw, const float *const *d_heads,
                          struct nn_model_grads *g);

// Adds g to out under the official state_dict names of the parameters (nn_model_export_state's
// names: <op>.conv.weight, <op>.bn.weight, <op>.bn.bias, bare <op>.weight / <op>.bias), each prefixed
// by prefix ("" or e.g. "grad."). -ENOMEM, -EEXIST.
int nn_model_grads_export(const struct nn_model *m, const struct nn_model_grads *g, const char *prefix,
                          struct nn_tensor_map *out);

// Applies the running-statistics update of the training forward fw (fw->train_bn and keep_train set)
// to every BatchNorm of m: running = (1 - momentum) * running + momentum * batch statistic, unbiased
// batch variance (the official momentum is 0.03). -EINVAL when fw has no batch statistics.
int nn_model_bn_update_ref(struct nn_model *m, const struct nn_ref_outputs *fw, float momentum);

// One training pass as the official train.py computes it: training-mode forward (BatchNorm on batch
// statistics) of x [n, 3, h, w], official TAL loss (nn_loss_tal, or nn_loss_tal_dual for a dual head)
// on targets (n_targets rows: image, class, cx, cy, w, h), and the backward pass into g. fw receives
// the forward's saved values (caller calls nn_ref_outputs_finish; e.g. nn_model_bn_update_ref reads
// them), lo the loss (lo->grad is used internally and left NULL). -EINVAL, -ENOMEM (logged).
int nn_model_loss_grads_ref(const struct nn_model *m, uint32_t n, uint32_t h, uint32_t w, const float *x,
                            const float *targets, uint32_t n_targets, struct nn_ref_outputs *fw,
                            struct nn_loss_out *lo, struct nn_model_grads *g);
