// Training-time data augmentation as the official YOLOv9 recipe (utils/dataloaders.py
// LoadImagesAndLabels.__getitem__, utils/augmentations.py): long-side load, mosaic-4,
// random_perspective, mixup, HSV, flips, and the letterbox path used when mosaic is off.
// Images are nn_image HWC RGB u8 (the official code works in BGR; every step here is
// channel-order symmetric, HSV uses the RGB form of the same OpenCV formulas).
// Randomness comes only from the explicit nn_rng passed in, so a sample is a pure function of
// (dataset, index, rng state, hyp). Not implemented: copy-paste (needs polygon segments, which the
// dataset reduces to boxes) and Albumentations' CLAHE (p = 0.01).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "hyp.h"
#include "image.h"
#include "rng.h"

// One object in image pixels, corners (the official (cls, x1, y1, x2, y2) label rows).
struct nn_aug_box {
	float cls, x1, y1, x2, y2;
};

// A growable box list. Zero-initialise; v is owned, release with nn_aug_boxes_finish.
struct nn_aug_boxes {
	struct nn_aug_box *v;
	size_t n, cap;
};
int nn_aug_boxes_push(struct nn_aug_boxes *b, const struct nn_aug_box *x); // -ENOMEM
void nn_aug_boxes_finish(struct nn_aug_boxes *b);

// Where samples come from: a loaded split, the training size, and optionally the images already
// loaded at long side imgsz (cache[i] borrowed, NULL entries read from disk).
struct nn_aug_source {
	const struct nn_dataset_split *split; // borrowed
	uint32_t imgsz;
	struct nn_image *const *cache; // [split->count] or NULL
};

// official load_image: decode, then resize so the long side is imgsz, new size truncated
// ((int)(w0 * r), (int)(h0 * r)), with OpenCV INTER_LINEAR. (The official uses INTER_AREA only
// when shrinking without augmentation, i.e. validation, which has its own path; training always
// uses INTER_LINEAR.) -ENOENT/-EIO/-EINVAL from decoding, -ENOMEM.
int nn_aug_load_image(const char *path, uint32_t imgsz, struct nn_image **out);
// The image of source index i at long side imgsz: the cached one (borrowed, *owned = NULL) or a
// fresh load (*owned set, the caller destroys it).
int nn_aug_source_image(const struct nn_aug_source *src, size_t i, const struct nn_image **img,
			struct nn_image **owned);

// ---- geometry (aug_warp.c) ----

// The random_perspective matrix M = T * S * R * P * C (row-major 3x3) for an input of w x h and
// `border` (negative crops: -s/2 for mosaic), drawing in the official order: perspective x, y,
// angle, scale, shear x, y, translate x, y. *scale receives the drawn scale s.
void nn_aug_perspective_matrix(uint32_t w, uint32_t h, int32_t border, const struct nn_hyp *hyp,
			       struct nn_rng *rng, double m[9], double *scale);
// dst (ow x oh, same channels, caller-allocated, not overlapping src) = src warped by the forward
// matrix m (OpenCV warpAffine / warpPerspective semantics: dst(x, y) = src(M^-1 (x, y)), bilinear
// with 1/32-pixel coordinates and 15-bit integer weights as OpenCV's 8-bit remap, constant border
// `fill` for taps outside src). perspective false uses only the first two rows.
// -EINVAL (channel mismatch or singular matrix).
int nn_aug_warp(const struct nn_image *src, const double m[9], bool perspective, uint8_t fill,
		struct nn_image *dst);
// Transforms boxes by m through their 4 corners, clips to w x h and keeps the official
// box_candidates (new w > 2 and h > 2 px, new area / (old area * s^2) > 0.10, aspect < 100).
void nn_aug_boxes_warp(struct nn_aug_boxes *b, const double m[9], bool perspective, uint32_t w,
		       uint32_t h, double s);
// official random_perspective: replaces *img by the warped image (size + 2 * border each side)
// and updates boxes. -ENOMEM, -EINVAL.
int nn_aug_random_perspective(struct nn_image **img, int32_t border, const struct nn_hyp *hyp,
			      struct nn_rng *rng, struct nn_aug_boxes *boxes);

// ---- colour and flips (aug_color.c) ----

// OpenCV's 8-bit RGB <-> HSV (H in [0, 180), S and V in [0, 255]; cvtColor COLOR_RGB2HSV /
// COLOR_HSV2RGB integer and float paths).
void nn_rgb_to_hsv_u8(const uint8_t rgb[3], uint8_t hsv[3]);
void nn_hsv_to_rgb_u8(const uint8_t hsv[3], uint8_t rgb[3]);
// official augment_hsv gains: 1 + uniform(-1, 1) * (hsv_h, hsv_s, hsv_v), three draws.
void nn_aug_hsv_gains(const struct nn_hyp *hyp, struct nn_rng *rng, double gains[3]);
// Applies gains in place through the official lookup tables: hue (x * g) mod 180, saturation
// and value clip(x * g, 0, 255), each truncated to u8. img->c must be 3.
void nn_aug_hsv_apply(struct nn_image *img, const double gains[3]);
// Mirror in place (left-right: columns reversed; up-down: rows reversed).
void nn_aug_flip_lr(struct nn_image *img);
void nn_aug_flip_ud(struct nn_image *img);
// official mixup pixels: a = (u8)(a * r + b * (1 - r)), truncating. Same sizes required: -EINVAL.
int nn_aug_mixup(struct nn_image *a, const struct nn_image *b, double r);

// ---- Albumentations, pixel-level only (aug_albu.c) ----

// cv2.blur with a k x k box (BORDER_REFLECT_101), rounded. -ENOMEM.
int nn_aug_blur(struct nn_image *img, int k);
// cv2.medianBlur with a k x k window (border replicated). -ENOMEM.
int nn_aug_median(struct nn_image *img, int k);
// Albumentations ToGray on the official's BGR bytes (so the weights apply channel-swapped).
void nn_aug_to_gray(struct nn_image *img);
// The official Compose: Blur, MedianBlur, ToGray each with p = 0.01 (kernel odd in [3, 7]).
int nn_aug_albumentations(struct nn_image *img, struct nn_rng *rng);

// ---- composition (aug_mosaic.c) ----

// official load_mosaic: 2s x 2s canvas of 114, centre (int)uniform(s/2, 3s/2) per axis, the
// sample plus 3 uniform draws (with replacement) shuffled into the four quadrants, labels shifted
// and clipped to [0, 2s], then random_perspective with border -s/2 -> s x s. *out owned.
int nn_aug_mosaic4(const struct nn_aug_source *src, size_t index, const struct nn_hyp *hyp,
		   struct nn_rng *rng, struct nn_image **out, struct nn_aug_boxes *boxes);
// The non-mosaic path: load, letterbox to out_w x out_h (auto off, scale-up on, pad 114), boxes
// through the letterbox; with augment, random_perspective with no border. *out owned.
int nn_aug_letterboxed(const struct nn_aug_source *src, size_t index, uint32_t out_w,
		       uint32_t out_h, bool augment, const struct nn_hyp *hyp, struct nn_rng *rng,
		       struct nn_image **out, struct nn_aug_boxes *boxes);

struct nn_aug_sample_params {
	bool augment;	 // training augmentations (false: letterbox only)
	bool mosaic;	 // dataset.mosaic (false after close_mosaic); drawn with p = hyp->mosaic
	uint32_t out_w, out_h; // non-mosaic output shape (rect batches); 0 = imgsz square
	bool albumentations;   // with augment: Blur / MedianBlur / ToGray at p = 0.01 (official when
			       // the package is installed, as its requirements ask)
};
// One training sample, the whole official __getitem__: mosaic (+ mixup) or letterbox (+
// perspective), boxes to normalised cx cy w h clipped with eps 1e-3, then Albumentations, HSV, flip up-down,
// flip left-right. chw receives [3, H, W] RGB u8 (caller-owned; H, W = imgsz for mosaic, else
// out_h/out_w); *labels malloc'ed (caller frees, NULL when *count is 0).
int nn_aug_sample(const struct nn_aug_source *src, size_t index,
		  const struct nn_aug_sample_params *p, const struct nn_hyp *hyp,
		  struct nn_rng *rng, uint8_t *chw, struct nn_label **labels, size_t *count);
