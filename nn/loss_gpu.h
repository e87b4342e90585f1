// The official YOLOv9 training loss (nn/loss.h, nn_loss_tal / nn_loss_tal_dual with exact_bce false)
// on the GPU: the TaskAlignedAssigner in fp32 in the official operation order, the three loss terms
// and d loss / d map, recorded once into a sequence and replayed each step, so that a training step
// never downloads the head maps. Deterministic: integer atomics only, fixed-order float reductions
// (two runs give the same bits).
//
// Per head set, six kernels (shaders/loss_tal_*.comp): decode the predicted boxes, top-k per gt,
// resolve anchors chosen by several gts, soft targets, S = sum of soft targets (reduce_sum_f32),
// then per anchor the terms and the gradient; a last kernel combines the sets into the loss values.
#pragma once
#include <stdint.h>

#include "gpu.h"
#include "loss.h"

struct nn_loss_gpu;

// d: level sizes and strides like nn_loss_tal (h[0] * stride[0] = input height). n_sets: 1 (DDetect)
// or 2 (DualDDetect: set 0 auxiliary with weight 0.25, set 1 main). max_targets: the most target
// rows any batch will have. Needs reg_max <= 64. -EINVAL (bad description, logged), -ENOMEM.
int nn_loss_gpu_create(struct gpu_device *dev, const struct nn_loss_desc *d, uint32_t n_sets, uint32_t max_targets,
                       struct nn_loss_gpu **out);
void nn_loss_gpu_destroy(struct nn_loss_gpu **l);

// Records the loss over maps[set * nl + l] (each a whole [n, 4 * reg_max + nc, h_l, w_l] f32 tensor,
// read) into seq (between the caller's gpu_seq_begin and gpu_seq_end): dmaps[set * nl + l] (same
// layout, written entirely) receive d loss / d map; the loss values go to an internal buffer. The
// recorded work reads the targets buffer, so it replays with whatever nn_loss_gpu_set_targets
// uploaded last.
int nn_loss_gpu_record(struct nn_loss_gpu *l, struct gpu_seq *seq, const struct gpu_binding *maps,
                       const struct gpu_binding *dmaps);

// Before a run (queue idle): the batch's targets, rows (image, class, cx, cy, w, h) normalised to the
// input, grouped per image in their order and padded like the official preprocess; rows whose image
// index is outside [0, n) are ignored. -EINVAL when n_targets > max_targets or a class is outside
// [0, nc) (logged).
int nn_loss_gpu_set_targets(struct nn_loss_gpu *l, const float *targets, uint32_t n_targets);

// After the run: loss, items, n_fg and target_sum into out (its grad, assign_maps and exact_bce
// fields are left alone).
int nn_loss_gpu_read(struct nn_loss_gpu *l, struct nn_loss_out *out);
