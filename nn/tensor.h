// Host-side tensors: what weights files, oracle files and test data hold before they reach the GPU.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "value.h"

enum nn_dtype {
	NN_DTYPE_F32,
	NN_DTYPE_F16,
	NN_DTYPE_BF16,
	NN_DTYPE_F64,
	NN_DTYPE_U8,
	NN_DTYPE_I8,
	NN_DTYPE_I16,
	NN_DTYPE_I32,
	NN_DTYPE_I64,
	NN_DTYPE_BOOL,
};

#define NN_MAX_DIMS 8

struct nn_tensor {
	char *name; // owned
	enum nn_dtype dtype;
	uint32_t ndim;
	int64_t shape[NN_MAX_DIMS];
	void *data;    // owned, contiguous row-major, nbytes long
	size_t nbytes;
};

size_t nn_dtype_size(enum nn_dtype t);
const char *nn_dtype_name(enum nn_dtype t); // safetensors spelling: "F32", "F16", "U8", ...
// Inverse of nn_dtype_name: 0, or -EINVAL for a name that is not one of ours (no log).
int nn_dtype_from_name(const char *name, enum nn_dtype *out);
int64_t nn_tensor_numel(const struct nn_tensor *t);
// Element i converted to float (any dtype). No bounds check.
float nn_tensor_get_f32(const struct nn_tensor *t, int64_t i);
// A float32 copy of t's data (caller frees), NULL on -ENOMEM.
float *nn_tensor_to_f32(const struct nn_tensor *t);
float nn_half_to_float(uint16_t h);
uint16_t nn_float_to_half(float f);

// An ordered name -> tensor collection plus optional metadata (string pairs in safetensors).
struct nn_tensor_index;

struct nn_tensor_map {
	struct nn_tensor *items; // owned
	size_t count, cap;
	struct nn_value *metadata; // owned dict of strings, may be NULL
	// Private name hash kept by nn_tensor_map_add (may be NULL). Code that removes, renames or
	// reorders items directly must free it and set it to NULL.
	struct nn_tensor_index *index;
};

int nn_tensor_map_create(struct nn_tensor_map **out);
void nn_tensor_map_destroy(struct nn_tensor_map **map);
// Borrowed pointer, NULL when absent.
const struct nn_tensor *nn_tensor_map_find(const struct nn_tensor_map *map, const char *name);
// Copies name, shape and data (data NULL: the new tensor is zero-filled). -ENOMEM, -EEXIST for a
// duplicate name, -EINVAL for a bad shape.
int nn_tensor_map_add(struct nn_tensor_map *map, const char *name, enum nn_dtype dtype, uint32_t ndim,
                      const int64_t *shape, const void *data);
