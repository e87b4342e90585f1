// Private to nn/trainer_gpu*.c: the GPU training backend's state (see trainer_gpu.c for the memory
// layout) and the helpers its two files share.
#pragma once
#include "gpu.h"
#include "layers.h"
#include "loss.h"
#include "loss_gpu.h"
#include "model_bwd.h"
#include "trainer_internal.h"

#define NO_OFF UINT64_MAX
#define TG_LABEL_LEN 128
#define TG_LABELS_PER_OP 10 // dispatch kinds recorded per op (forward + backward: at most 8)

// Offsets in floats into the state buffer (NO_OFF: the op has no such tensor).
struct nn_tg_param {
	uint64_t w, b, gamma, beta, mean, var;
};

struct nn_tg_conv {
	struct nn_conv2d_desc d;   // forward descriptor for the trainer's shapes
	struct nn_conv2d_desc dz;  // BN ops: the bare convolution into the dense z buffer
	struct nn_conv2d_tile tile;
	uint64_t wp, bp, wp_bytes, bp_bytes; // bytes into packed
	bool dgrad_pooled;                   // the data gradient runs in two passes through pscratch
	                                     // (nn_conv2d_bwd_data_pooled_record)
	bool dgrad_conv;                     // the data gradient runs as the forward conv dt
	struct nn_conv2d_desc dt;            // (nn_conv2d_bwd_data_as_conv) with tile_t and the
	struct nn_conv2d_tile tile_t;        // transposed weights packed at wpt / bpt
	uint64_t wpt, bpt, wpt_bytes, bpt_bytes;
	struct gpu_buf *zbuf;                // BN ops: the conv output before BatchNorm
	uint64_t z_bytes;
	uint64_t stat;                       // bytes into stats: mean[c_out] then var at + stat_var
	uint64_t stat_var;
};

struct nn_tg {
	struct gpu_device *dev;
	const struct nn_model *m;
	uint32_t n, h, w; // n: the current batch size (nn_trainer_set_batch); buffers hold t->p.n images
	uint64_t align; // bytes
	struct nn_shape *shapes;
	uint64_t *t_bytes;               // per tensor
	struct gpu_buf **acts, **dacts;  // per tensor: its value and d loss / d it (lavapipe binds <= 128 MiB,
	                                 // so one buffer each rather than one arena)
	struct nn_tg_param *par;       // per op
	struct nn_tg_conv *conv;       // per op
	uint64_t group_off[NN_GROUP_COUNT], group_len[NN_GROUP_COUNT]; // floats into state
	uint64_t n_params, n_state; // floats: parameter part, whole state
	struct gpu_pool *pool;
	struct gpu_buf *state, *grads, *momentum, *ema, *packed, *stats, *dz, *wscratch,
		*bnscratch, *sqscratch, *sumsq, *input_u8,
		*pscratch; // pooled-plane data gradients of AConv/ADown, window maxima of the max-pool backward
	struct gpu_seq *fwd, *bwd, *opt, *emaseq, *zero;

	bool stepped;
	float bn_momentum;
	bool timestamps;
	// loss: on the GPU (loss, its sequence, its target capacity) or, with cpu_loss, on the host
	struct nn_loss_gpu *loss;
	struct gpu_seq *lossseq;
	uint32_t loss_cap;
	bool cpu_loss;
	struct nn_loss_desc ld;
	float *maps[2 * NN_DETECT_MAX_LEVELS], *dmaps[2 * NN_DETECT_MAX_LEVELS];
	uint32_t map_tensor[2 * NN_DETECT_MAX_LEVELS], n_maps;
	struct nn_trainer_timing timing;
	char *labels; // dispatch labels, TG_LABEL_LEN each, TG_LABELS_PER_OP per op
	uint32_t label_next;
};


static inline struct gpu_binding tg_bind(struct gpu_buf *b, uint64_t off, uint64_t bytes, bool write)
{
	return (struct gpu_binding){ .buf = b, .offset = off, .size = bytes, .write = write };
}

// state binding of count floats at float offset off
static inline struct gpu_binding tg_sbind(struct gpu_buf *b, uint64_t off, uint64_t count, bool write)
{
	return tg_bind(b, off * 4, count * 4, write);
}

static inline uint64_t tg_w_count(const struct nn_op *op)
{
	return (uint64_t)op->y.c * (op->x.c / op->groups) * op->k * op->k;
}


// ---- recording ------------------------------------------------------------------------------------

static inline uint64_t tg_align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

// trainer_gpu_state.c: where every parameter and BN buffer lives in the state buffer, host images of
// it, and the backend calls that move state between host and device.
void nn_tg_layout_state(struct nn_tg *g);
int nn_tg_upload_initial(struct nn_tg *g);
int nn_tg_read_state(struct nn_trainer *t, enum nn_trainer_state which, struct nn_model *dst);
int nn_tg_load_state(struct nn_trainer *t, enum nn_trainer_state which, const struct nn_model *src);
int nn_tg_export_grads(struct nn_trainer *t, const char *prefix, struct nn_tensor_map *out);
int nn_tg_export_momentum(struct nn_trainer *t, const char *prefix, struct nn_tensor_map *out);
int nn_tg_import_momentum(struct nn_trainer *t, const char *prefix, const struct nn_tensor_map *in);
