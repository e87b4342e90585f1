// The GPU executor of a whole model (nn/model.h) for one input shape: weights packed and uploaded
// once, activation memory planned once (a tensor's range is reused after its last reader), the
// forward (uint8 input conversion -> every op in list order -> decoded outputs) recorded once into
// gpu_seqs and replayed per run. One dispatch per op.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "gpu.h"
#include "model.h"

struct nn_runner;

struct nn_runner_params {
	uint32_t n, h, w;  // batch and input size (h, w multiples of the largest stride; non-square ok)
	bool timestamps;   // time every dispatch (nn_runner_timings)
	bool keep_layers;  // never reuse activation memory, so nn_runner_read_layer works for any layer
	bool keep_heads;   // keep the raw head maps (the decode inputs) for nn_runner_read_head
	// Bytes per activation buffer: the planned arena is cut into buffers of at most this size, no tensor
	// straddling two (devices bind a limited range: lavapipe 128 MiB). 0 = the device's binding range
	// (at most 1 GiB); tests set it small. Rounded down to the binding alignment.
	uint64_t arena_chunk;
};

// The model is borrowed and must outlive the runner (op names label the dispatches).
// -EINVAL (shapes), -ENOMEM, or an engine error.
int nn_runner_create(struct gpu_device *dev, const struct nn_model *m, const struct nn_runner_params *p,
                     struct nn_runner **out);
void nn_runner_destroy(struct nn_runner **r);

// input_u8: [n, 3, h, w] bytes (RGB planes, like the official pre-processing before /255).
// Uploads, converts on the GPU and runs the forward; returns when it is done.
int nn_runner_run(struct nn_runner *r, const uint8_t *input_u8);
// Same with an already normalised f32 input [n, 3, h, w].
int nn_runner_run_f32(struct nn_runner *r, const float *input);

// Anchors of the output (A) and its rows (4 + nc).
uint32_t nn_runner_anchors(const struct nn_runner *r);
uint32_t nn_runner_rows(const struct nn_runner *r);
bool nn_runner_has_aux(const struct nn_runner *r);
// out: [n, 4 + nc, A]; aux selects output_aux of dual models (-EINVAL when there is none).
int nn_runner_read_output(struct nn_runner *r, bool aux, float *out);
// Output slice k of YAML layer `layer` as a dense [n, c, h, w] (nn_runner_layer_shape). Needs
// keep_layers unless the tensor is still live at the end (the outputs); -EINVAL otherwise.
int nn_runner_layer_shape(const struct nn_runner *r, uint32_t layer, uint32_t k, struct nn_shape *shape);
int nn_runner_read_layer(struct nn_runner *r, uint32_t layer, uint32_t k, float *out);

struct nn_runner_stats {
	uint32_t dispatches;      // per forward (input conversion included)
	uint32_t barriers;
	uint64_t weight_bytes;    // packed weights on the device
	uint64_t activation_bytes; // planned activation arena
	uint64_t activation_naive_bytes; // what one buffer per tensor would take
	uint32_t activation_buffers;     // the arena's buffers (see arena_chunk)
	double gflop;             // 2 * multiply-adds of the convolutions per forward
};
void nn_runner_stats(const struct nn_runner *r, struct nn_runner_stats *s);
// The work of the op named `name` (a dispatch label): for a convolution its FLOP count (2 x
// multiply-adds, batch included) and "cin>cout kKsS HxW[ gG][ avg]" in desc; 0 FLOP and an empty
// desc for other ops. -ENOENT when no op has that name.
int nn_runner_op_work(const struct nn_runner *r, const char *name, double *gflop, char *desc, size_t desc_size);
// The raw level maps the detect layer decodes (the training loss's input): head set `set` (0 for
// single-head models; dual: 0 = auxiliary cv2/cv3, 1 = main cv4/cv5), level l. *sets: how many
// sets the model has. shape: (4 * reg_max + nc, h_l, w_l), read as [n, c, h, w] with the runner's
// batch n; stride: the level's stride. Reading needs keep_heads (or keep_layers). head_info: -ENOENT
// (not logged) for a level past the last, -EINVAL for a bad set; read_head: -EINVAL for a bad set or
// level or when not kept.
int nn_runner_head_info(const struct nn_runner *r, uint32_t set, uint32_t l, uint32_t *sets, struct nn_shape *shape,
                        float *stride);
int nn_runner_read_head(struct nn_runner *r, uint32_t set, uint32_t l, float *out);
// After a run with timestamps: per-dispatch timings (labels = op names, "input").
int nn_runner_timings(const struct nn_runner *r, struct gpu_timing *out, uint32_t cap, uint32_t *count);
