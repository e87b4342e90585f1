// Plain-C reference BACKWARD operators (NCHW, f32): the gradients every GPU backward kernel is
// checked against. They take the forward descriptors of ref.h unchanged; no engine dependency, no
// allocation, no failure paths (callers pass valid shapes).
//
// Conventions: a gradient has the layout of the value it belongs to, so dy is read from the y slice
// (y_c_total, y_c_off) and dx / dr are ADDED to the x / r slices (several consumers of a tensor
// accumulate; callers zero them first). Parameter gradients (dw, db, dgamma, dbeta) are overwritten.
// Intermediate gradients between the pieces of one conv op (du, dz) are dense [n, c_out, h_out, w_out].
//
// A conv op y = act(bn(conv(x', w)) + b [+ r]) [+ r] differentiates as:
//   nn_conv2d_act_backward_ref   dy -> du (d pre-activation) and dr
//   nn_bn_backward_ref           du -> dz, dgamma, dbeta   (when the op has BatchNorm)
//   nn_conv2d_backward_data_ref  dz -> dx   (through the optional 2x2/s1 average pool on x)
//   nn_conv2d_backward_weight_ref  x, dz -> dw, db
#pragma once
#include "ref.h"

// Derivative of the activation at pre-activation value u.
float nn_act_grad(enum nn_act act, float u);
// du[i] = dy[i] * act'(u[i]), count elements (du may alias dy).
void nn_act_backward_ref(enum nn_act act, uint64_t count, const float *u, const float *dy, float *du);

// Gradient through the activation and residual of the conv op d. pre: [n, c_out, h_out, w_out] the
// pre-activation values (conv + bias [+ r if res_before_act], after BN for BN ops; may be NULL when
// act is NN_ACT_NONE); dy: y slice;
// du: dense [n, c_out, h_out, w_out] output; dr: r slice (+=), may be NULL when there is no residual.
void nn_conv2d_act_backward_ref(const struct nn_conv2d_desc *d, const float *pre, const float *dy, float *du,
                                float *dr);

// dx (x slice, +=) from dz (dense [n, c_out, h_out, w_out], d loss / d conv output): the transposed
// convolution, then the adjoint of the average pool when avgpool_before.
void nn_conv2d_backward_data_ref(const struct nn_conv2d_desc *d, const float *dz, const float *w, float *dx);
// dw [c_out, c_in/groups, k_h, k_w] = sum over n, h, w of dz * x' (x' = pooled x when avgpool_before);
// db [c_out] = sum of dz (db may be NULL). Sums in double.
void nn_conv2d_backward_weight_ref(const struct nn_conv2d_desc *d, const float *x, const float *dz, float *dw,
                                   float *db);

// BatchNorm over dense [n, c, h, w] tensors. Training mode (train): statistics of the batch (mean and
// biased variance over n, h, w; the gradient flows through them, PyTorch's training BatchNorm);
// otherwise the given running statistics are constants.
struct nn_bn_desc {
	uint32_t n, c, h, w;
	float eps;
	bool train;
};
// Batch mean and biased variance per channel, accumulated in double.
void nn_bn_stats_ref(const struct nn_bn_desc *d, const float *z, float *mean, float *var);
// y = (z - mean) / sqrt(var + eps) * gamma + beta (z and y may alias).
void nn_bn_forward_ref(const struct nn_bn_desc *d, const float *z, const float *gamma, const float *beta,
                       const float *mean, const float *var, float *y);
// dz (overwritten, may alias dy), dgamma, dbeta [c] from dy = d loss / d BN output; mean/var are the
// statistics the forward used.
void nn_bn_backward_ref(const struct nn_bn_desc *d, const float *z, const float *dy, const float *gamma,
                        const float *mean, const float *var, float *dz, float *dgamma, float *dbeta);
// Running statistics after one training forward: running = (1 - momentum) * running + momentum * batch
// with the unbiased batch variance (var * m / (m - 1), m = n * h * w) like PyTorch.
void nn_bn_running_update_ref(const struct nn_bn_desc *d, float momentum, const float *mean, const float *var,
                              float *running_mean, float *running_var);

// Pools: dy from the y slice, dx (+=) into the x slice. Max pool sends each output's gradient to its
// arg-max (x is the forward input; ties go to the first maximum in scan order, as PyTorch).
void nn_maxpool2d_backward_ref(const struct nn_pool2d_desc *d, const float *x, const float *dy, float *dx);
void nn_avgpool2d_backward_ref(const struct nn_pool2d_desc *d, const float *dy, float *dx);

// Nearest resize: dx[src] += sum of dy over the outputs that copy src (accumulate makes no difference:
// the y slice's own gradient passes through unchanged).
void nn_resize_nearest_backward_ref(const struct nn_resize_desc *d, const float *dy, float *dx);
