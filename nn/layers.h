// GPU forward layers: each function records one dispatch of a shader from shaders/ into a gpu_seq
// (bindings, push constants, grid, kernel with its spec constants). No math here beyond packing the
// convolution weights on the host into the order the kernel reads.
//
// Buffers are passed as gpu_binding ranges holding whole NCHW tensors (offset aligned for storage
// binding); channel slices are selected by the c_total/c_off fields of the nn/ref.h descriptors, so
// a layer can read a slice of one tensor and write a slice of another (free concat and chunk).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gpu.h"
#include "ref.h"

// Which convolution kernel runs a conv, and its register tile: ocb output channels x px output
// pixels per invocation.
enum nn_conv2d_variant {
	NN_CONV2D_DIRECT, // conv2d_fwd.comp: any shape; ocb a multiple of 4, px pixels of one row
	NN_CONV2D_1X1,    // conv2d_fwd_1x1.comp: 1x1 s1 p0, no avgpool, h*w % 4 == 0; px a multiple of 4
	NN_CONV2D_SG,     // conv2d_fwd_sg.comp (CPU devices, subgroup 8): any shape; px pixels per invocation
};
struct nn_conv2d_tile {
	enum nn_conv2d_variant variant;
	uint32_t ocb, px;
};

// The tile the kernel uses for this convolution on this device (a pure function of both).
void nn_conv2d_choose_tile(const struct gpu_device_info *info, const struct nn_conv2d_desc *d,
                           struct nn_conv2d_tile *t);
// Floats of the packed weights and packed bias for (d, t).
size_t nn_conv2d_packed_weight_floats(const struct nn_conv2d_desc *d, const struct nn_conv2d_tile *t);
size_t nn_conv2d_packed_bias_floats(const struct nn_conv2d_desc *d, const struct nn_conv2d_tile *t);
// w: [c_out, c_in/groups, k_h, k_w]; bias: [c_out] or NULL (zeros). Writes wp and bp (sizes above).
void nn_conv2d_pack(const struct nn_conv2d_desc *d, const struct nn_conv2d_tile *t, const float *w,
                    const float *bias, float *wp, float *bp);
// Records y = conv(x) as described by d (residual r may be NULL when d has none: see has_residual).
int nn_conv2d_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_conv2d_desc *d,
                     const struct nn_conv2d_tile *t, bool has_residual, const struct gpu_binding *x,
                     const struct gpu_binding *wp, const struct gpu_binding *bp, const struct gpu_binding *r,
                     const struct gpu_binding *y, const char *label);

int nn_maxpool2d_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_pool2d_desc *d,
                        const struct gpu_binding *x, const struct gpu_binding *y, const char *label);
int nn_avgpool2d_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_pool2d_desc *d,
                        const struct gpu_binding *x, const struct gpu_binding *y, const char *label);
int nn_resize_nearest_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_resize_desc *d,
                             const struct gpu_binding *x, const struct gpu_binding *y, const char *label);
// y[i] = x_u8[i] / 255 for count bytes (count a multiple of 4; x holds the packed bytes).
int nn_input_u8_record(struct gpu_device *dev, struct gpu_seq *seq, uint64_t count, const struct gpu_binding *x,
                       const struct gpu_binding *y, const char *label);

// One level map of the decode: channels [c_off, c_off + 4*reg_max + nc) of a c_total tensor.
struct nn_decode_level_slice {
	uint32_t c_total, c_off;
};
// levels[0..d->nl) bound as given; y: [n, 4 + nc, A].
int nn_detect_decode_record(struct gpu_device *dev, struct gpu_seq *seq, const struct nn_decode_desc *d,
                            const struct nn_decode_level_slice *slices, const struct gpu_binding *levels,
                            const struct gpu_binding *y, const char *label);
