// The official YOLOv9 training loss (utils/loss_tal.py ComputeLoss for DDetect models,
// utils/loss_tal_dual.py for DualDDetect) on the CPU, with its analytic gradient with respect to the
// raw head maps. It is the reference for a GPU loss.
//
// Per head set: TaskAlignedAssigner (top-k 10, alpha 0.5, beta 6, CIoU overlaps, no gradient) on the
// detached predictions; class loss = sum BCE-with-logits(class logits, soft targets) / S; box loss =
// sum over foreground anchors (1 - CIoU(pred, target)) * weight / S; DFL loss = the same weights on the
// two-bin cross-entropy of each side; S = max(sum of soft targets, 1). Gains box 7.5, cls 0.5, dfl 1.5.
// Total = (box + cls + dfl) * batch size. Dual: each set has its own assignment and S; every term is
// 0.25 * (auxiliary set 0) + (main set 1) before the gains.
//
// The assigner runs in fp32 in the official operation order (its top-k choice is discontinuous); the
// loss terms and gradients are evaluated in double from the fp32 maps.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "ref.h"

struct nn_loss_desc {
	uint32_t n;       // batch size
	uint32_t nc;      // classes
	uint32_t reg_max; // DFL bins (16)
	uint32_t nl;      // levels
	uint32_t h[NN_DETECT_MAX_LEVELS], w[NN_DETECT_MAX_LEVELS]; // level map sizes
	float stride[NN_DETECT_MAX_LEVELS];                        // 8, 16, 32
	// The input image is (h[0] * stride[0]) x (w[0] * stride[0]) like the official imgsz.
};

struct nn_loss_out {
	double loss;     // (box + cls + dfl) * n: the official first return value
	double items[3]; // box, cls, dfl after the gains (the official loss_items)
	// Set by the caller: NULL, or one [n, 4 * reg_max + nc, h_l, w_l] buffer per map (the maps'
	// layout and order) that receives d loss / d map (overwritten).
	float *const *grad;
	// Set by the caller: NULL, or maps (same layout) standing for the detached predictions: the
	// assigner and the CIoU aspect weight alpha (official no_grad values) read these instead of the
	// loss's maps. NULL = the maps themselves (official). A finite-difference check of grad holds
	// the no-gradient quantities fixed this way.
	const float *const *assign_maps;
	// Set by the caller: false (official) = class BCE in PyTorch's fp32 formula, whose rounding at
	// the initial logits shifts the class loss by ~1e-4 relative; true = the same function in double
	// (smooth: for finite-difference checks of grad, which is analytic either way).
	bool exact_bce;
	uint32_t n_fg[2];        // foreground anchors per set (diagnostics)
	float target_sum[2];     // S per set before the max(., 1) (diagnostics)
};

// maps: nl raw level maps [n, 4 * reg_max + nc, h_l, w_l] (box logits side-major l, t, r, b x reg_max
// bins, then class logits). targets: n_targets rows (image index, class, cx, cy, w, h) normalised to
// the input image; rows whose image index is not in [0, n) are ignored like the official code.
// -EINVAL (bad description or class index, logged), -ENOMEM.
int nn_loss_tal(const struct nn_loss_desc *d, const float *const *maps, const float *targets, uint32_t n_targets,
                struct nn_loss_out *out);

// DualDDetect: maps[set * nl + l], set 0 = auxiliary (cv2/cv3, weight 0.25), set 1 = main (cv4/cv5);
// out->grad (when set) has 2 * nl buffers in the same order.
int nn_loss_tal_dual(const struct nn_loss_desc *d, const float *const *maps, const float *targets,
                     uint32_t n_targets, struct nn_loss_out *out);
