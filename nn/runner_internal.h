// Private to nn/runner*.c.
#pragma once
#include "runner.h"

// Offsets (aligned to `align`) in one arena for tensors of `bytes` each; UINT64_MAX for tensors no
// op touches. keep_all: no reuse. No tensor crosses a multiple of `chunk` (a multiple of align): the
// arena is allocated as one buffer per chunk. *total: the arena size. -ENOMEM (logged) when a tensor is
// larger than a chunk or host memory runs out.
int nn_runner_plan(const struct nn_model *m, const uint64_t *bytes, bool keep_all, bool keep_heads, uint64_t align,
                   uint64_t chunk,
                   uint64_t *offset, uint64_t *total);
