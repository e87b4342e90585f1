// The official letterbox (yolov9 utils/augmentations.py letterbox): aspect-preserving resize with
// OpenCV's 8-bit INTER_LINEAR arithmetic, then constant padding, producing the network input.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"

struct nn_letterbox_params {
	uint32_t new_w, new_h; // target shape (new_shape), e.g. 640 x 640
	bool auto_pad;         // minimal padding to a multiple of stride (detect.py with PyTorch weights)
	bool scale_fill;       // stretch to new_shape, no padding (per-axis ratios)
	bool scaleup;          // allow r > 1 (training/detect); false for validation
	uint32_t stride;       // 32; 0 means 32
	uint8_t color;         // padding value, 114 officially
};

// The geometry of one letterbox call. ratio/pad are what the official function returns and what
// nn_scale_boxes_ratio_pad expects; left/top/right/bottom are the integer paddings really applied.
struct nn_letterbox {
	uint32_t src_w, src_h;
	uint32_t unpad_w, unpad_h; // size after resize, before padding
	uint32_t left, top, right, bottom;
	uint32_t out_w, out_h;     // network input size
	double ratio_x, ratio_y;   // (w ratio, h ratio)
	double pad_x, pad_y;       // float half paddings dw/2, dh/2
};

// Computes the geometry for a src_w x src_h image. -EINVAL for zero sizes.
int nn_letterbox_plan(uint32_t src_w, uint32_t src_h, const struct nn_letterbox_params *p,
                      struct nn_letterbox *lb);

// Resizes interleaved u8 (c channels) like cv2.resize(..., INTER_LINEAR): half-pixel centres,
// 11-bit fixed-point weights, OpenCV's SIMD rounding of the vertical pass; exact 2x downscales use
// the 2x2 box average as OpenCV does. src and dst must not overlap. -EINVAL, -ENOMEM.
int nn_resize_linear_u8(const uint8_t *src, uint32_t sw, uint32_t sh, uint32_t c, uint8_t *dst,
                        uint32_t dw, uint32_t dh);

// Shrinks interleaved u8 (c = 1..4 channels) like cv2.resize(..., INTER_AREA) for dw <= sw and
// dh <= sh (nn/resize_area.c): integer factors average the block (2x2: (sum + 2) >> 2, else
// float 1/area, rounded half to even); other factors use OpenCV's float area weights and float
// accumulation. -EINVAL (enlarging, bad sizes), -ENOMEM.
int nn_resize_area_u8(const uint8_t *src, uint32_t sw, uint32_t sh, uint32_t c, uint8_t *dst,
                      uint32_t dw, uint32_t dh);

// Letterboxes img (HWC RGB) into dst, planar CHW u8 [img->c, lb->out_h, lb->out_w] (caller-owned,
// out_w*out_h*c bytes). lb comes from nn_letterbox_plan for this image's size. -EINVAL, -ENOMEM.
int nn_letterbox_chw(const struct nn_image *img, const struct nn_letterbox *lb, uint8_t color,
                     uint8_t *dst);

// Plans and letterboxes in one call; *chw_out is malloc'ed (caller frees). -EINVAL, -ENOMEM.
int nn_letterbox_image(const struct nn_image *img, const struct nn_letterbox_params *p,
                       struct nn_letterbox *lb, uint8_t **chw_out);

// The network input: dst[i] = src[i] / 255 (float division, as the official float(x) / 255).
void nn_u8_to_unit_f32(const uint8_t *src, size_t n, float *dst);
