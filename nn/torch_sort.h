// torch.argsort(descending=True) on CPU, reproduced exactly including the order of ties.
// PyTorch 1.13's CPU sort with stable=False is libstdc++ std::sort (introsort: median-of-3 quicksort,
// heapsort fallback, final insertion sort) over (value, index) pairs compared by value only, so the
// order of equal scores is deterministic but not the input order. The official NMS sorts this way,
// and with saturated (tied) scores the kept boxes depend on it.
#pragma once
#include <stddef.h>
#include <stdint.h>

// Fills idx[0..n) with the permutation torch.argsort(key, descending=True) returns (NaN first).
// key is borrowed and not modified. -ENOMEM.
int nn_torch_argsort_desc(const float *key, uint32_t *idx, size_t n);
