// safetensors files: the format of our converted weights and of every oracle file.
// Layout: u64 little-endian header length N, N bytes of JSON header, then the raw tensor bytes.
#pragma once
#include "tensor.h"

// Reads the whole file into a new map (*out owned by the caller, free with nn_tensor_map_destroy).
// Tensors keep the header's order. __metadata__ becomes map->metadata, a dict of strings (NULL
// when absent). -ENOENT/-EIO for I/O errors, -EINVAL for a malformed file (header length, JSON,
// dtype, shape, offsets out of range or overlapping: the message names the file and the tensor),
// -ENOMEM.
int nn_safetensors_read(const char *path, struct nn_tensor_map **out);

// Writes map (borrowed) to path: tensors in map order, map->metadata (dict; string values are
// written as they are, other values as their JSON text) as __metadata__. Atomic: the data goes to
// "<path>.tmp", is fsync'ed, then renamed over path. -EIO, -ENOMEM, -EINVAL.
int nn_safetensors_write(const char *path, const struct nn_tensor_map *map);
