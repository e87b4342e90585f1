// Training executor of a model (nn/model.h, unfused: BatchNorm present) for one batch shape: the
// official training step (train.py + utils/loss_tal[_dual].py, hyp.scratch-high.yaml) split into the
// calls a training loop makes. Two backends behind one API:
//   - GPU (default): parameters, gradients, momentum and EMA live in device buffers; the training
//     forward, the backward, the optimizer and the EMA run as recorded gpu_seqs.
//   - CPU reference (params.cpu_reference): the plain-C references (model_bwd.h, optim_ref.h), for
//     tests and `vkyolo step --cpu`. Same semantics, same numbers up to rounding.
//
// Semantics (both backends):
//   forward_backward: training-mode forward (BatchNorm normalises with the batch mean and biased
//     variance; every BN's running statistics are updated with momentum 0.03 and the unbiased
//     variance, as PyTorch does on each training forward), the official TAL loss (dual models: both
//     head sets, auxiliary weighted 0.25), the backward pass; the parameter gradients are ADDED to the
//     gradient accumulators (gradient accumulation over several batches, like loss.backward()).
//   zero_grad: the accumulators become 0 (create starts with zeros).
//   step: global L2 norm of all accumulated gradients; when max_grad_norm > 0 and the norm exceeds
//     it, every gradient is scaled by max_grad_norm / (norm + 1e-6) (torch clip_grad_norm_); then
//     PyTorch SGD (momentum, optional Nesterov) per parameter group with its own lr; weight decay on
//     group NN_GROUP_WEIGHTS only (conv weights: d = g + wd * p). The first step after create (or
//     after a load without momentum) sets buf = d, later ones buf = momentum * buf + d. step does
//     not zero the gradients.
//   ema_update: ema = decay * ema + (1 - decay) * current, over every parameter and every BN running
//     statistic (the official ModelEMA over the floating state_dict). create sets ema = current.
//
// Parameter groups as the official smart_optimizer: biases (conv biases and BN betas, no decay),
// conv weights (with decay), BN weights (gammas, no decay).
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "gpu.h"
#include "loss.h"
#include "model.h"
#include "tensor.h"

enum nn_param_group {
	NN_GROUP_BIASES,  // official param_groups[0]: warmup starts its lr at warmup_bias_lr
	NN_GROUP_WEIGHTS, // official param_groups[1]: conv weights, weight decay
	NN_GROUP_BN,      // official param_groups[2]: BatchNorm weights
	NN_GROUP_COUNT,
};

struct nn_trainer_params {
	uint32_t n, h, w;    // batch size and input size (multiples of the largest stride)
	bool cpu_reference;  // run the CPU references instead of the GPU (dev may then be NULL)
	bool timestamps;     // GPU: time every dispatch (nn_trainer_timings gives per-phase totals)
	float bn_momentum;   // 0 = 0.03 (official)
};

// m: an unfused model (BatchNorm present; -EINVAL for a fused one), borrowed; it must outlive the
// trainer. Its current weights and BN buffers are the initial state (copied), and also the initial
// EMA. The trainer never writes m (see nn_trainer_read_state). -EINVAL, -ENOMEM, engine errors.
struct nn_trainer;
int nn_trainer_create(struct gpu_device *dev, const struct nn_model *m, const struct nn_trainer_params *p,
                      struct nn_trainer **out);
void nn_trainer_destroy(struct nn_trainer **t);

int nn_trainer_zero_grad(struct nn_trainer *t);

// input_u8: [n, 3, h, w] RGB planes (n: the batch size set by nn_trainer_set_batch) (pixel / 255 is the network input, like the official loader).
// targets: n_targets rows (image index, class, cx, cy, w, h) normalised to the input. lo receives the
// loss and loss items (lo->grad and lo->assign_maps are ignored). -EINVAL (bad class index, logged),
// -ENOMEM, engine errors (-ENODEV when the device is lost).
int nn_trainer_forward_backward(struct nn_trainer *t, const uint8_t *input_u8, const float *targets,
                                uint32_t n_targets, struct nn_loss_out *lo);

// The batch size of the next forward_backward calls: 1 to params.n (create starts at params.n). An
// epoch's last, incomplete batch (the official loader keeps it) trains with the same buffers: its
// BatchNorm statistics and its loss (times its own batch size) cover only its n images, as PyTorch's
// would. The GPU backend re-records its sequences when n changes (tens of ms). -EINVAL out of range.
int nn_trainer_set_batch(struct nn_trainer *t, uint32_t n);

struct nn_trainer_step_params {
	float lr[NN_GROUP_COUNT]; // per group
	float momentum;           // 0.937
	float weight_decay;       // on NN_GROUP_WEIGHTS (official: 5e-4 scaled by batch * accumulate / 64)
	float max_grad_norm;      // 10 (official); 0 = no clipping
	bool nesterov;            // true (official)
};
// grad_norm (may be NULL): the global norm before clipping.
int nn_trainer_step(struct nn_trainer *t, const struct nn_trainer_step_params *p, double *grad_norm);

int nn_trainer_ema_update(struct nn_trainer *t, double decay);

// Which copy of the weights a read / load addresses.
enum nn_trainer_state {
	NN_TRAINER_CURRENT, // the weights being trained (and their BN running statistics)
	NN_TRAINER_EMA,     // the exponential moving average
};
// Writes the chosen weights and BN running statistics into dst's op arrays (w, b, bn.*): dst must
// have the structure of the trainer's model (e.g. the same model, or one created from the same
// description and class count). -EINVAL when it does not match.
int nn_trainer_read_state(struct nn_trainer *t, enum nn_trainer_state which, struct nn_model *dst);
// Replaces the chosen weights and BN statistics by src's (same structure). Loading CURRENT also forgets
// the momentum (the next step sets buf = d): to resume, load_state first, then import_momentum.
int nn_trainer_load_state(struct nn_trainer *t, enum nn_trainer_state which, const struct nn_model *src);

// The accumulated gradients under official names (nn_model_grads_export's names), prefixed.
int nn_trainer_export_grads(struct nn_trainer *t, const char *prefix, struct nn_tensor_map *out);
// The SGD momentum buffers under official parameter names, prefixed (e.g. "momentum."); nothing
// before the first step. import takes the same names back (all or none; resume).
int nn_trainer_export_momentum(struct nn_trainer *t, const char *prefix, struct nn_tensor_map *out);
int nn_trainer_import_momentum(struct nn_trainer *t, const char *prefix, const struct nn_tensor_map *in);

// Milliseconds of the last forward_backward split into its phases, the last step and ema update,
// and the device memory held (GPU backend; 0 for the CPU reference).
struct nn_trainer_timing {
	double forward_ms, loss_ms, backward_ms, optimizer_ms, ema_ms;
	uint64_t device_bytes, device_peak_bytes;
};
void nn_trainer_timing(const struct nn_trainer *t, struct nn_trainer_timing *out);

// Per-dispatch GPU times of the last forward_backward of a trainer created with timestamps, per phase;
// labels are "<op name>/<kernel>" (e.g. "model.2.cv1/wgrad"). *count = 0 for the CPU reference.
enum nn_trainer_phase {
	NN_TRAINER_PHASE_FORWARD,
	NN_TRAINER_PHASE_LOSS,
	NN_TRAINER_PHASE_BACKWARD,
};
int nn_trainer_timings(struct nn_trainer *t, enum nn_trainer_phase phase, struct gpu_timing *out, uint32_t cap,
                       uint32_t *count);
