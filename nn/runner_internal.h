// Private to nn/runner*.c.
#pragma once
#include "runner.h"

// Offsets (aligned to `align`) in one arena for tensors of `bytes` each; UINT64_MAX for tensors no
// op touches. keep_all: no reuse. *total: the arena size.
int nn_runner_plan(const struct nn_model *m, const uint64_t *bytes, bool keep_all, uint64_t align,
                   uint64_t *offset, uint64_t *total);
