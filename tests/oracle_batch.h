// Shared by the training tests: the batch of an oracle training file (shared/oracle/<file>):
// input_u8 [n, 3, h, w] as the network input (/ 255) and the official targets.
#pragma once
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "safetensors.h"

struct oracle_batch {
	struct nn_tensor_map *ref;       // the whole file (owned)
	const struct nn_tensor *targets; // [count, 6] f32: image, class, cx, cy, w, h (in ref)
	float *x;                        // [n, 3, h, w] (owned)
	uint32_t n, h, w;
};

static inline void oracle_batch_free(struct oracle_batch *b)
{
	nn_tensor_map_destroy(&b->ref);
	free(b->x);
	b->x = NULL;
}

// shared/oracle/<model><suffix>. 0; 77 (message printed) when the file is missing; 1 when malformed.
static inline int oracle_batch_load(const char *model, const char *suffix, struct oracle_batch *b)
{
	char path[1024];
	*b = (struct oracle_batch){0};
	snprintf(path, sizeof(path), "%s/oracle/%s%s", test_shared_dir(), model, suffix);
	FILE *f = fopen(path, "rb");
	if (!f) {
		printf("skip: %s not found (set VKYOLO_SHARED)\n", path);
		return 77;
	}
	fclose(f);
	CHECK(nn_safetensors_read(path, &b->ref) == 0);
	const struct nn_tensor *in = nn_tensor_map_find(b->ref, "input_u8");
	b->targets = nn_tensor_map_find(b->ref, "targets");
	CHECK(in && in->ndim == 4 && in->dtype == NN_DTYPE_U8 && in->shape[1] == 3);
	CHECK(b->targets && b->targets->ndim == 2 && b->targets->shape[1] == 6 && b->targets->dtype == NN_DTYPE_F32);
	b->n = (uint32_t)in->shape[0], b->h = (uint32_t)in->shape[2], b->w = (uint32_t)in->shape[3];
	size_t cnt = (size_t)nn_tensor_numel(in);
	CHECK((b->x = malloc(cnt * sizeof(float))));
	for (size_t i = 0; i < cnt; i++)
		b->x[i] = (float)((const uint8_t *)in->data)[i] / 255.0f;
	return 0;
}
