// Plain-C reference operators (NCHW, f32): the numbers every GPU kernel and the model executor are
// checked against. No engine dependency, no allocation, no failure paths: callers pass valid shapes.
//
// Channel slices: every operator reads its input from channels [x_c_off, x_c_off + C) of a tensor with
// x_c_total channels and writes channels [y_c_off, y_c_off + C) of a tensor with y_c_total channels,
// so concatenation is free (producers write into their slice) and chunk splits are views.
// A *_c_total of 0 means "the tensor has exactly the operator's channel count" (offset must be 0).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum nn_act {
	NN_ACT_NONE,
	NN_ACT_SILU,    // x * sigmoid(x)
	NN_ACT_SIGMOID, // 1 / (1 + exp(-x))
};

float nn_act_apply(enum nn_act act, float x);

// y = act(conv(x', w) + bias [+ r if res_before_act]) [+ r otherwise]
// x' = x, or avg_pool2d(x, kernel 2, stride 1, pad 0) when avgpool_before (AConv/ADown): then the
// conv sees an (h_in-1) x (w_in-1) image.
struct nn_conv2d_desc {
	uint32_t n;            // batch
	uint32_t c_in, h_in, w_in; // h_in, w_in: the stored x tensor (before the optional avg pool)
	uint32_t c_out;
	uint32_t k_h, k_w, stride, pad, groups; // zero padding, dilation 1
	enum nn_act act;
	bool avgpool_before;
	bool res_before_act;   // residual added to the pre-activation sum instead of after act
	uint32_t x_c_total, x_c_off; // x: [n, x_c_total, h_in, w_in]
	uint32_t y_c_total, y_c_off; // y: [n, y_c_total, h_out, w_out]
	uint32_t r_c_total, r_c_off; // residual: [n, r_c_total, h_out, w_out]
};

// Output size of a conv described by d.
uint32_t nn_conv2d_out_h(const struct nn_conv2d_desc *d);
uint32_t nn_conv2d_out_w(const struct nn_conv2d_desc *d);
// Generic pooling / conv arithmetic: floor((in + 2*pad - k) / stride) + 1.
uint32_t nn_pool_out_size(uint32_t in, uint32_t k, uint32_t stride, uint32_t pad);

// w: [c_out, c_in/groups, k_h, k_w]; bias: [c_out] or NULL; residual may be NULL.
void nn_conv2d_forward_ref(const struct nn_conv2d_desc *d, const float *x, const float *w,
                           const float *bias, const float *residual, float *y);

// Max pool (implicit -inf padding) and average pool (zero padding counted, PyTorch
// count_include_pad=True), square kernel k, stride s, pad p.
struct nn_pool2d_desc {
	uint32_t n, c, h_in, w_in;
	uint32_t k, stride, pad;
	uint32_t x_c_total, x_c_off;
	uint32_t y_c_total, y_c_off;
};
void nn_maxpool2d_forward_ref(const struct nn_pool2d_desc *d, const float *x, float *y);
void nn_avgpool2d_forward_ref(const struct nn_pool2d_desc *d, const float *x, float *y);

// Nearest resize to h_out x w_out (source index floor(dst * in / out), PyTorch legacy 'nearest'):
// covers nn.Upsample(x2) and CBFuse's interpolate, and a plain channel-slice copy when the sizes
// are equal. accumulate: y += resized x (CBFuse's sum) instead of y = resized x.
struct nn_resize_desc {
	uint32_t n, c, h_in, w_in, h_out, w_out;
	bool accumulate;
	uint32_t x_c_total, x_c_off;
	uint32_t y_c_total, y_c_off;
};
void nn_resize_nearest_forward_ref(const struct nn_resize_desc *d, const float *x, float *y);

// Element-wise y[i] = a[i] + b[i], count elements (y may alias a or b).
void nn_add_forward_ref(uint64_t count, const float *a, const float *b, float *y);

// Detection-head decode (DDetect eval path). Level l's raw map is [n, 4*reg_max + nc, h_l, w_l]
// (box logits side-major l,t,r,b x reg_max bins, then class logits). Output y: [n, 4 + nc, A] with
// A = sum h_l*w_l, anchors level by level, row-major; rows cx, cy, w, h in input pixels
// (DFL expectation, anchors at grid + 0.5, times the level stride), then sigmoid class scores.
#define NN_DETECT_MAX_LEVELS 4
struct nn_decode_desc {
	uint32_t n, nc, reg_max, nl;
	uint32_t h[NN_DETECT_MAX_LEVELS], w[NN_DETECT_MAX_LEVELS];
	float stride[NN_DETECT_MAX_LEVELS];
};
uint32_t nn_decode_anchors(const struct nn_decode_desc *d);
void nn_decode_forward_ref(const struct nn_decode_desc *d, const float *const *levels, float *y);
