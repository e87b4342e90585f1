// The YOLOv9 / GELAN model graph, built from the official YAML description (parse_model rules) and
// lowered to a flat list of primitive ops over activation tensors. A GPU executor records one
// dispatch per op in list order; a CPU reference executor (nn_model_forward_ref) runs the same list.
//
// Activation tensors are [N, C, H, W] f32. Ops read and write channel slices (struct nn_slice), so a
// Concat costs nothing: the producers of its inputs write straight into their slice of the concat
// tensor, and ELAN chunk splits are slices. C is fixed at build time; H and W follow from the input
// size (nn_model_shapes). Weights are host f32 arrays owned by the model.
//
// Op semantics (every op writes only its y slice; ops must run in list order):
//   NN_OP_CONV    y = act(conv(x', w) + b [+ r if res_before_act]) [+ r otherwise], x' = x or
//                 avg_pool2d(x, 2, 1, 0) when avgpool_before; when bn.gamma != NULL (unfused model)
//                 conv(x', w) is followed by y = (y - mean) / sqrt(var + eps) * gamma + beta before
//                 the bias/residual/act (b is then NULL). Square k x k kernel, zero padding.
//                 r may be a slice of any tensor with y's H x W. Reference: nn_conv2d_forward_ref.
//   NN_OP_MAXPOOL max_pool2d(k, stride, pad), -inf padding. Reference: nn_maxpool2d_forward_ref.
//   NN_OP_AVGPOOL avg_pool2d(k, stride, pad), zero padding counted. nn_avgpool2d_forward_ref.
//   NN_OP_RESIZE  nearest resize of x to y's H x W (floor(dst * in / out)); y = that, or y += that
//                 when accumulate. With scale > 0 the op defines y's size as x's size * scale;
//                 with scale == 0 y's tensor must already be sized by an earlier op.
//                 Reference: nn_resize_nearest_forward_ref.
//   NN_OP_DECODE  detection-head decode of nl raw level maps (whole tensors [N, 64 + nc, H_l, W_l])
//                 into y = whole tensor [N, 4 + nc, 1, A]. Reference: nn_decode_forward_ref.
//
// Executor notes: an op's x (and r) may be other channels of the very tensor it writes (ELAN stages
// read cv1's half and write the next slice), never overlapping ones; RepNBottleneck's residual r is its
// input x. Ops depend on earlier ops only through tensors, in list order (RESIZE with accumulate
// reads y back). Every tensor other than 0 is written by ops of exactly one layer (or, for a concat
// tensor, by the producers of its inputs); memory can be shared between tensors by liveness.
// With fuse, every conv op has b != NULL and bn.gamma == NULL.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "ref.h"
#include "tensor.h"
#include "value.h"

#define NN_NO_TENSOR UINT32_MAX
#define NN_LAYER_MAX_OUTS 8

// Channels [c_off, c_off + c) of activation tensor `tensor`.
struct nn_slice {
	uint32_t tensor, c_off, c;
};

struct nn_model_tensor {
	uint32_t c;
	int32_t layer; // the layer whose lowering created it; -1 for the input image (tensor 0)
	bool is_layer_output; // holds (part of) some layer's output, not only layer-internal values
};

enum nn_op_kind {
	NN_OP_CONV,
	NN_OP_MAXPOOL,
	NN_OP_AVGPOOL,
	NN_OP_RESIZE,
	NN_OP_DECODE,
};

// Batch-norm parameters of an unfused conv, [c_out] each (owned); gamma == NULL when folded.
struct nn_bn {
	float *gamma, *beta, *mean, *var;
	float eps; // 1e-3 for every BatchNorm in these models
};

struct nn_op {
	enum nn_op_kind kind;
	uint32_t layer;  // index of the YAML row it comes from
	char name[96];   // state_dict prefix of its weights ("model.4.cv2.0.m.0.cv1"), or a description
	struct nn_slice x, y, r; // r.tensor == NN_NO_TENSOR when there is no residual

	// NN_OP_CONV (k, stride, pad also for the pools)
	uint32_t k, stride, pad, groups;
	enum nn_act act;
	bool avgpool_before, res_before_act;
	float *w;         // [y.c, x.c / groups, k, k] (owned)
	float *b;         // [y.c] or NULL (owned)
	struct nn_bn bn;  // unfused models only
	bool bare;        // weights named <name>.weight/.bias (plain nn.Conv2d: head 1x1, CBLinear), else
	                  // <name>.conv.weight + <name>.bn.* (unfused) or <name>.conv.bias (fused)
	// NN_OP_RESIZE
	uint32_t scale;
	bool accumulate;
	// NN_OP_DECODE
	uint32_t nl, nc, reg_max;
	uint32_t level[NN_DETECT_MAX_LEVELS]; // tensor ids of the raw level maps
	float level_stride[NN_DETECT_MAX_LEVELS];
};

// One YAML row. Its output is n_out slices: one for most modules, the pieces of a CBLinear, the
// decoded predictions of a detect layer (DualDDetect: out[0] = auxiliary set cv2/cv3, out[1] =
// main set cv4/cv5, the one used for inference).
struct nn_model_layer {
	char module[32];
	uint32_t n_from;
	int32_t from[8]; // resolved absolute layer indices, -1 = the input image
	uint32_t n_out;
	struct nn_slice out[NN_LAYER_MAX_OUTS];
	uint32_t op_begin, op_end; // ops [op_begin, op_end) implement this layer
};

struct nn_model {
	uint32_t nc, reg_max, nl; // classes, 16 DFL bins, 3 levels
	char **names;             // nc class names (owned)
	float stride[NN_DETECT_MAX_LEVELS]; // 8, 16, 32 (computed like the official 256x256 probe)
	bool fused;               // BN folded and RepConvN merged
	uint32_t n_tensors;
	struct nn_model_tensor *tensors; // tensor 0 = input image [N, 3, H, W]
	uint32_t n_ops;
	struct nn_op *ops;
	uint32_t n_layers;
	struct nn_model_layer *layers;
	uint32_t output;     // [N, 4 + nc, 1, A] main prediction (tensor id)
	uint32_t output_aux; // auxiliary prediction of dual models, else NN_NO_TENSOR
	uint32_t n_head_sets; // 1, or 2 for DualDDetect
	uint32_t head_map[2][NN_DETECT_MAX_LEVELS]; // raw [N, 64 + nc, H_l, W_l] maps per set (training)
};

struct nn_model_params {
	uint32_t nc;                    // 0 = from the description
	bool fuse;                      // fold BN into convs and merge RepConvN branches
	const struct nn_value *names;   // optional class names: list of strings or dict int -> string
	uint64_t random_seed;           // used only when state == NULL: random weights (tests)
};

// arch: the model description (YAML read by nn_yaml_read_*, or the checkpoint's `yaml` dict).
// state: state_dict tensors (official names, any float dtype), borrowed; NULL = random weights.
// Errors (one LOGE naming layer, module and tensor): -EINVAL (bad description, from index,
// channel mismatch, missing or mis-shaped weight), -ENOTSUP (unknown module, unsupported option),
// -ENOMEM.
int nn_model_create(const struct nn_value *arch, const struct nn_tensor_map *state,
                    const struct nn_model_params *p, struct nn_model **out);
void nn_model_destroy(struct nn_model **m);
// A deep copy of m (graph, names, weights, BN statistics): training keeps its own copies. -ENOMEM.
int nn_model_clone(const struct nn_model *m, struct nn_model **out);
// Copies the weights and BN statistics of src into dst (w, b, bn.*). -EINVAL (logged) when the
// two do not have the same op structure (count, kinds, shapes, which parameters exist).
int nn_model_copy_weights(struct nn_model *dst, const struct nn_model *src);

struct nn_shape {
	uint32_t c, h, w;
};
// Shapes of every tensor for an input of h x w (shapes[m->n_tensors], caller-provided).
// -EINVAL (logged) when the input size does not fit the graph (e.g. concat of mismatched sizes).
int nn_model_shapes(const struct nn_model *m, uint32_t h, uint32_t w, struct nn_shape *shapes);

// The reference-operator descriptor of an op for batch n and the shapes of nn_model_shapes, with the
// channel totals/offsets of its slices filled in: what a GPU kernel's push constants must mirror.
void nn_op_conv_desc(const struct nn_op *op, const struct nn_shape *shapes, uint32_t n, struct nn_conv2d_desc *d);
void nn_op_pool_desc(const struct nn_op *op, const struct nn_shape *shapes, uint32_t n, struct nn_pool2d_desc *d);
void nn_op_resize_desc(const struct nn_op *op, const struct nn_shape *shapes, uint32_t n, struct nn_resize_desc *d);
void nn_op_decode_desc(const struct nn_op *op, const struct nn_shape *shapes, uint32_t n, struct nn_decode_desc *d);

// Adds every op's weights to out (f32, official state_dict names; fused models give the fused
// names, i.e. <conv>.conv.weight/.conv.bias and merged RepConvN), plus the fixed DFL weights.
// nn_model_create accepts the result. -ENOMEM, -EEXIST (name already in out).
int nn_model_export_state(const struct nn_model *m, struct nn_tensor_map *out);

// Parameter count of the ops' weights (w, b and BN gamma/beta), excluding the fixed DFL weights.
uint64_t nn_model_param_count(const struct nn_model *m);

// CPU reference forward.
struct nn_ref_outputs {
	uint32_t n, a, rows;  // batch, anchors, 4 + nc
	float *output;        // [n, 4 + nc, A] (owned)
	float *output_aux;    // dual models only, else NULL (owned)
	bool keep_layers;     // set by the caller before the call: also return every layer's output
	uint32_t n_layers;
	// With keep_layers: layer[i * NN_LAYER_MAX_OUTS + k] = dense copy of out[k] of layer i,
	// [N, C, H, W] with C, H, W in layer_shape[same index]; NULL past the layer's n_out (owned).
	float **layer;
	struct nn_shape *layer_shape;
	// Set by the caller before the call: BatchNorm normalises with the batch's own statistics (mean
	// and biased variance over N, H, W: PyTorch training mode) instead of the running statistics.
	// Only meaningful for unfused models (fused ones have no BN left).
	bool train_bn;
	// Set by the caller before the call: also return the raw head maps (the training-mode outputs):
	// head[set][l] = [N, 4 * reg_max + nc, H_l, W_l] of level l, set < m->n_head_sets (DualDDetect:
	// set 0 = auxiliary cv2/cv3, set 1 = main cv4/cv5), shape in head_shape (owned).
	bool keep_heads;
	float *head[2][NN_DETECT_MAX_LEVELS];
	struct nn_shape head_shape[2][NN_DETECT_MAX_LEVELS];
	// Set by the caller before the call: also keep what the backward pass (nn_model_backward_ref,
	// model_bwd.h) needs, all owned: every activation tensor act[t] = [N, C, H, W] with C, H, W in
	// shape[t] (act[0] is a copy of the input; the decoded outputs are NULL: they moved to output),
	// and per conv op i: conv_z[i] = its conv output before BatchNorm [N, y.c, H, W] (BN ops), conv_u[i]
	// = its pre-activation value [N, y.c, H, W] (ops with an activation), bn_mean[i] / bn_var[i] = the
	// statistics BN normalised with (batch mean and biased variance with train_bn) [y.c]; else NULL.
	bool keep_train;
	uint32_t n_tensors, n_ops;
	struct nn_shape *shape;
	float **act;
	float **conv_z, **conv_u, **bn_mean, **bn_var;
};
// input: [n, 3, h, w] f32. -ENOMEM, -EINVAL (shapes).
int nn_model_forward_ref(const struct nn_model *m, uint32_t n, uint32_t h, uint32_t w, const float *input,
                         struct nn_ref_outputs *out);
// Frees what nn_model_forward_ref allocated in out (keeps the caller's flags).
void nn_ref_outputs_finish(struct nn_ref_outputs *out);
