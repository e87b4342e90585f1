// Private to nn/model_*.c: the builder state shared by the row parser (model_build.c), the module
// lowerings (model_modules.c) and the weight binding (model_weights.c).
#pragma once
#include "model.h"

struct nn_builder {
	struct nn_model *m;
	const struct nn_tensor_map *state; // NULL = random weights
	bool *state_used;                  // [state->count]
	const struct nn_model_params *p;
	uint64_t rng;
	uint32_t ops_cap, tensors_cap;
	// current row, for messages
	uint32_t layer;
	const char *module;
};

// Graph construction (model_build.c). Both return -ENOMEM or the new index through *id.
int nn_builder_tensor(struct nn_builder *b, uint32_t c, uint32_t *id);
int nn_builder_op(struct nn_builder *b, enum nn_op_kind kind, const char *name, struct nn_op **out);
struct nn_slice nn_slice_sub(struct nn_slice s, uint32_t off, uint32_t c);
static inline struct nn_slice nn_slice_none(void)
{
	return (struct nn_slice){.tensor = NN_NO_TENSOR};
}

// Conv-family emitters (model_weights.c): read the weights under `prefix`, check their shapes,
// fold or keep BN, append the op(s). y receives act(...) [+ r]. r may be nn_slice_none().
// "Conv" block: prefix.conv.weight + prefix.bn.* (or an already fused prefix.conv.bias).
int nn_emit_conv_block(struct nn_builder *b, const char *prefix, struct nn_slice x, struct nn_slice y,
                       uint32_t k, uint32_t s, uint32_t pad, uint32_t g, enum nn_act act, bool avgpool_before,
                       struct nn_slice r);
// RepConvN: prefix.conv1 (3x3) + prefix.conv2 (1x1) -> act(sum); one op fused, two unfused.
int nn_emit_repconvn(struct nn_builder *b, const char *prefix, struct nn_slice x, struct nn_slice y,
                     uint32_t s, enum nn_act act);
// Bare conv2d with bias: prefix.weight + prefix.bias (head final 1x1, CBLinear's prefix.conv).
int nn_emit_conv_bias(struct nn_builder *b, const char *prefix, struct nn_slice x, struct nn_slice y,
                      uint32_t k, uint32_t s, uint32_t g);
// Checks prefix.conv.weight of DFL: shape [1, reg_max, 1, 1] with values 0..reg_max-1.
int nn_check_dfl(struct nn_builder *b, const char *prefix, uint32_t reg_max);
// Pools and resize (no weights).
int nn_emit_pool(struct nn_builder *b, enum nn_op_kind kind, struct nn_slice x, struct nn_slice y, uint32_t k,
                 uint32_t s, uint32_t pad);
int nn_emit_resize(struct nn_builder *b, struct nn_slice x, struct nn_slice y, uint32_t scale, bool accumulate);

// Module lowerings (model_modules.c, model_head.c): a row with its resolved inputs, c1 (input
// channels), c2 (output channels after make_divisible) and the raw YAML args list.
struct nn_row {
	uint32_t index;
	const char *module;
	const char *prefix;  // "model.<i>"
	uint32_t n_in;
	struct nn_slice in[8]; // inputs in `from` order (a CBLinear input: its first piece)
	const struct nn_value *args;
	uint32_t c1, c2;
	struct nn_slice dst;   // where the single output goes (pre-allocated, c == c2)
};
int nn_lower_module(struct nn_builder *b, const struct nn_row *row);
int nn_lower_detect(struct nn_builder *b, const struct nn_row *row, struct nn_model_layer *layer);
int nn_model_build_graph(struct nn_builder *b, const struct nn_value *arch);
