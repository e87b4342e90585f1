// GPU training layers: each function records the dispatches of one training-time operation into a
// gpu_seq (like layers.h for the forward). Every one has a plain-C reference in ref_bwd.h / ref.h /
// optim_ref.h and a test against it on odd shapes, batch > 1 and non-square inputs.
//
// Conventions (as ref_bwd.h): a gradient has the layout of the value it belongs to; gradients of
// activation slices are ADDED (+=) to their buffers (several consumers of a tensor accumulate);
// parameter gradients are added when `accumulate`, else overwritten. Dense [n, c, h, w] tensors are
// whole buffers; slices use the c_total/c_off fields of the descriptors. All reductions are
// deterministic: fixed-order partial sums, never float atomics, so a run repeats bit for bit.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gpu.h"
#include "layers.h"
#include "ref.h"
#include "ref_bwd.h"

// ---- convolution (nn/layers/conv2d_bwd.c) ---------------------------------------------------------

// Packs raw weights w [c_out, c_in/groups, k_h, k_w] and bias [c_out] (bias NULL: zeros) on the GPU
// into exactly what nn_conv2d_pack writes for (d, t): wp (nn_conv2d_packed_weight_floats) and bp
// (nn_conv2d_packed_bias_floats). Training re-packs every step after the optimizer.
int nn_conv2d_pack_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_conv2d_desc *d,
                          const struct nn_conv2d_tile *t, const struct gpu_binding *w, const struct gpu_binding *bias,
                          const struct gpu_binding *wp, const struct gpu_binding *bp, const char *label);

// The data gradient of a stride-1, same-size convolution (2*pad == k-1, square kernel, no average
// pool) is itself a forward convolution of dz with the weights transposed (c_in <-> c_out) and
// rotated 180 degrees, which the fast forward kernels compute. Where that applies and the device
// prefers it (CPU devices with the subgroup kernel: lavapipe's dgrad ran at half the forward
// kernel's GFLOP/s), fills *t: the forward descriptor reading dz (dense) and writing d's x slice
// with the residual add (the += of the gradient), act none; the caller chooses its tile with
// nn_conv2d_choose_tile, packs the weights with nn_conv2d_pack_transposed_record and records it
// with nn_conv2d_record(t, has_residual = true, r = y = dx). Returns false otherwise (use
// nn_conv2d_bwd_data_record).
bool nn_conv2d_bwd_data_as_conv(const struct gpu_device_info *info, const struct nn_conv2d_desc *d,
                                struct nn_conv2d_desc *t);
// As nn_conv2d_pack_record for the transposed descriptor t of nn_conv2d_bwd_data_as_conv: w is the
// original raw weights [c_out, c_in/groups, k_h, k_w]; the bias is zero.
int nn_conv2d_pack_transposed_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_conv2d_desc *t,
                                     const struct nn_conv2d_tile *tile, const struct gpu_binding *w,
                                     const struct gpu_binding *wp, const struct gpu_binding *bp, const char *label);

// dx (x slice of d, +=) from dz: dense [n, c_out, h_out, w_out] (d's y_c_total / y_c_off ignored),
// through the transposed convolution with raw weights w and the adjoint of the 2x2/s1 average pool
// when d->avgpool_before. Reference: nn_conv2d_backward_data_ref.
int nn_conv2d_bwd_data_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_conv2d_desc *d,
                              const struct gpu_binding *dz, const struct gpu_binding *w, const struct gpu_binding *dx,
                              const char *label);

// The data gradient of a convolution with the 2x2/s1 average pool before it (ADown, AConv) in two
// passes: the plain convolution's data gradient on the pooled plane into a dense scratch (zeroed
// first), then the pool's adjoint added into d's x slice. Each pooled-plane value is computed once
// instead of twice (the one-pass kernel's rows): on lavapipe the pass pair takes about 0.6x the
// one-pass kernel's time. Same math, other summation order. Scratch bytes: 0 when d has no pool.
size_t nn_conv2d_bwd_data_pooled_scratch_bytes(const struct nn_conv2d_desc *d);
int nn_conv2d_bwd_data_pooled_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_conv2d_desc *d,
                                     const struct gpu_binding *dz, const struct gpu_binding *w,
                                     const struct gpu_binding *scratch, const struct gpu_binding *dx, const char *label);

// Bytes of scratch nn_conv2d_bwd_weight_record needs for d (may be 0).
size_t nn_conv2d_bwd_weight_scratch_bytes(const struct gpu_device_info *info, const struct nn_conv2d_desc *d);
// dw [c_out, c_in/groups, k_h, k_w] and db [c_out] (db NULL: none) from x (x slice of d, the stored
// tensor before the optional average pool) and dz (dense, as above); added to dw/db when accumulate,
// else written. scratch: at least nn_conv2d_bwd_weight_scratch_bytes. Reference:
// nn_conv2d_backward_weight_ref.
int nn_conv2d_bwd_weight_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_conv2d_desc *d,
                                const struct gpu_binding *x, const struct gpu_binding *dz,
                                const struct gpu_binding *scratch, const struct gpu_binding *dw,
                                const struct gpu_binding *db, bool accumulate, const char *label);

// ---- BatchNorm, activation, pools, resize (nn/layers/bn.c, nn/layers/pool_bwd.c) ------------------

// Batch mean and biased variance per channel of dense z [n, c, h, w] -> mean[c], var[c]: two
// barrier-free passes (per-chunk (mean, M2) partials into scratch, then a fixed-order merge per
// channel). scratch: at least nn_bn_stats_scratch_bytes. Reference: nn_bn_stats_ref.
size_t nn_bn_stats_scratch_bytes(const struct gpu_device_info *info, const struct nn_bn_desc *d);
int nn_bn_stats_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_bn_desc *d,
                       const struct gpu_binding *z, const struct gpu_binding *scratch, const struct gpu_binding *mean,
                       const struct gpu_binding *var, const char *label);
// The rest of a BN conv op's training forward: u = (z - mean) / sqrt(var + eps) * gamma + beta
// [+ r when d->res_before_act]; y slice = act(u) [+ r otherwise]. z dense [n, c_out, h_out, w_out];
// r: the residual slice of d, or NULL. Reference: nn_bn_forward_ref + nn_conv2d_forward_ref's epilogue.
int nn_bn_act_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_conv2d_desc *d, float eps,
                     const struct gpu_binding *z, const struct gpu_binding *gamma, const struct gpu_binding *beta,
                     const struct gpu_binding *mean, const struct gpu_binding *var, const struct gpu_binding *r,
                     const struct gpu_binding *y, const char *label);
// running = (1 - momentum) * running + momentum * batch statistic (unbiased variance: var * m / (m - 1),
// m = n * h * w). Reference: nn_bn_running_update_ref.
int nn_bn_running_update_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_bn_desc *d,
                                float momentum, const struct gpu_binding *mean, const struct gpu_binding *var,
                                const struct gpu_binding *running_mean, const struct gpu_binding *running_var,
                                const char *label);
// Backward of nn_bn_act_record (training-mode BN, gradient through the batch statistics): from dy (the
// y slice of d), recomputing u from z, the statistics, gamma, beta and r: dz dense (overwritten),
// dgamma / dbeta [c_out] (+= when accumulate, else =), dr (residual slice, +=; NULL when none).
// scratch: at least nn_bn_act_bwd_scratch_bytes. Reference: nn_conv2d_act_backward_ref +
// nn_bn_backward_ref.
size_t nn_bn_act_bwd_scratch_bytes(const struct gpu_device_info *info, const struct nn_conv2d_desc *d);
int nn_bn_act_bwd_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_conv2d_desc *d, float eps,
                         const struct gpu_binding *z, const struct gpu_binding *gamma, const struct gpu_binding *beta,
                         const struct gpu_binding *mean, const struct gpu_binding *var, const struct gpu_binding *r,
                         const struct gpu_binding *dy, const struct gpu_binding *scratch, const struct gpu_binding *dz,
                         const struct gpu_binding *dgamma, const struct gpu_binding *dbeta,
                         const struct gpu_binding *dr, bool accumulate, const char *label);

// dx (x slice, +=) from dy (y slice); max pool routes each output's gradient to the first maximum of
// its window in scan order (x: the forward input). Gather formulation: each input element sums the
// outputs that chose it, so no atomics. Max pool: a first pass writes each window's maximum position
// into scratch (nn_maxpool2d_bwd_scratch_bytes), so the gather reads one value per window instead of
// rescanning it (SPPELAN's 5x5 pools: 625 reads per element before). References:
// nn_maxpool2d_backward_ref, nn_avgpool2d_backward_ref.
size_t nn_maxpool2d_bwd_scratch_bytes(const struct nn_pool2d_desc *d);
int nn_maxpool2d_bwd_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_pool2d_desc *d,
                            const struct gpu_binding *x, const struct gpu_binding *dy, const struct gpu_binding *scratch,
                            const struct gpu_binding *dx, const char *label);
int nn_avgpool2d_bwd_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_pool2d_desc *d,
                            const struct gpu_binding *dy, const struct gpu_binding *dx, const char *label);
// dx (x slice, +=) = sum of dy over the outputs that copy each source element.
// Reference: nn_resize_nearest_backward_ref.
int nn_resize_nearest_bwd_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_resize_desc *d,
                                 const struct gpu_binding *dy, const struct gpu_binding *dx, const char *label);

// ---- optimizer (nn/layers/optim.c) ---------------------------------------------------------------

// out[0] = sum of x[i]^2 over count floats (fp32, fixed-order tree). scratch: at least
// nn_sumsq_scratch_bytes(count).
size_t nn_sumsq_scratch_bytes(uint64_t count);
int nn_sumsq_record(struct gpu_device *dev, struct gpu_seq *seq, uint64_t count, const struct gpu_binding *x,
                    const struct gpu_binding *scratch, const struct gpu_binding *out, const char *label);

// One SGD update of count parameters p with gradients g and momentum buffer buf, PyTorch semantics:
// g' = g * clip, clip = max_norm / (sqrt(sumsq[0]) + 1e-6) when max_norm > 0 and sqrt(sumsq[0]) >
// max_norm, else 1 (sumsq: the buffer nn_sumsq_record wrote, read on the GPU: no host round trip);
// d = g' + weight_decay * p; buf = first ? d : momentum * buf + d; p -= lr * (nesterov ? d + momentum * buf : buf).
// g is left unchanged. Reference: nn_model_grads_clip_ref + nn_sgd_step_ref. sumsq may be NULL when
// max_norm <= 0 (no clipping). Shader: sgd_f32.comp; nesterov and first are specialization constants.
struct nn_sgd_record_params {
	float lr, momentum, weight_decay, max_norm;
	bool nesterov, first;
};
int nn_sgd_record(struct gpu_device *dev, struct gpu_seq *seq, uint64_t count, const struct nn_sgd_record_params *p,
                  const struct gpu_binding *sumsq, const struct gpu_binding *param, const struct gpu_binding *grad,
                  const struct gpu_binding *buf, const char *label);
// ema = decay * ema + (1 - decay) * cur over count floats, in torch's fp32 order (nn_ema_update_ref;
// decay: nn_ema_decay(updates) of optim_ref.h).
int nn_ema_record(struct gpu_device *dev, struct gpu_seq *seq, uint64_t count, double decay,
                  const struct gpu_binding *ema, const struct gpu_binding *cur, const char *label);
