// The two backends of nn/trainer.h: trainer.c checks arguments and forwards every call through this
// table to trainer_ref.c (CPU references) or trainer_gpu.c (Vulkan).
#pragma once
#include "trainer.h"

struct nn_trainer_backend {
	int (*zero_grad)(struct nn_trainer *t);
	int (*set_batch)(struct nn_trainer *t, uint32_t n); // t->n is still the old size
	int (*forward_backward)(struct nn_trainer *t, const uint8_t *input_u8, const float *targets,
	                        uint32_t n_targets, struct nn_loss_out *lo);
	int (*step)(struct nn_trainer *t, const struct nn_trainer_step_params *p, double *grad_norm);
	int (*ema_update)(struct nn_trainer *t, double decay);
	int (*read_state)(struct nn_trainer *t, enum nn_trainer_state which, struct nn_model *dst);
	int (*load_state)(struct nn_trainer *t, enum nn_trainer_state which, const struct nn_model *src);
	int (*export_grads)(struct nn_trainer *t, const char *prefix, struct nn_tensor_map *out);
	int (*export_momentum)(struct nn_trainer *t, const char *prefix, struct nn_tensor_map *out);
	int (*import_momentum)(struct nn_trainer *t, const char *prefix, const struct nn_tensor_map *in);
	void (*timing)(const struct nn_trainer *t, struct nn_trainer_timing *out);
	int (*timings)(struct nn_trainer *t, enum nn_trainer_phase phase, struct gpu_timing *out, uint32_t cap,
	               uint32_t *count); // NULL: none
	void (*destroy)(struct nn_trainer *t); // frees impl only
};

struct nn_trainer {
	const struct nn_trainer_backend *be;
	const struct nn_model *m;
	struct nn_trainer_params p; // bn_momentum resolved (0.03 when given 0)
	uint32_t n;                 // the batch size of the next forward_backward (nn_trainer_set_batch)
	void *impl;                 // the backend's state
};

// Each fills t->be and t->impl (t->m and t->p already set); errors logged.
int nn_trainer_ref_init(struct nn_trainer *t);
int nn_trainer_gpu_init(struct nn_trainer *t, struct gpu_device *dev);
