// Activation memory plan of the GPU executor: every tensor's live range in op order (first write ..
// last read; the outputs live to the end), then first-fit offsets in one arena so a range is reused
// once its tensor is dead. keep_layers disables reuse. The arena is cut into chunks of at most the
// device's binding range, one buffer each; no tensor crosses a chunk boundary.
#include <stdlib.h>

#include "runner_internal.h"

static void touch(uint32_t *first, uint32_t *last, uint32_t t, uint32_t step)
{
	if (t == NN_NO_TENSOR)
		return;
	if (first[t] == UINT32_MAX || step < first[t])
		first[t] = step;
	if (last[t] == UINT32_MAX || step > last[t])
		last[t] = step;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

int nn_runner_plan(const struct nn_model *m, const uint64_t *bytes, bool keep_all, bool keep_heads, uint64_t align,
                   uint64_t chunk, uint64_t *offset, uint64_t *total)
{
	uint32_t nt = m->n_tensors, end = m->n_ops + 1;
	uint32_t *first = malloc(nt * sizeof(uint32_t)), *last = malloc(nt * sizeof(uint32_t));
	uint32_t *order = malloc(nt * sizeof(uint32_t));
	int ret = -ENOMEM;
	if (!first || !last || !order) {
		LOGE("runner: out of host memory planning %u tensors", nt);
		goto fail;
	}
	for (uint32_t t = 0; t < nt; t++)
		first[t] = last[t] = UINT32_MAX;
	touch(first, last, 0, 0); // step 0: the input conversion; op i is step i + 1
	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct nn_op *op = &m->ops[i];
		touch(first, last, op->x.tensor, i + 1);
		touch(first, last, op->y.tensor, i + 1);
		touch(first, last, op->r.tensor, i + 1);
		for (uint32_t l = 0; op->kind == NN_OP_DECODE && l < op->nl; l++)
			touch(first, last, op->level[l], i + 1);
	}
	for (uint32_t t = 0; t < nt; t++)
		if (keep_all || t == m->output || t == m->output_aux)
			if (first[t] != UINT32_MAX)
				last[t] = end;
	for (uint32_t i = 0; keep_heads && i < m->n_ops; i++)
		for (uint32_t l = 0; m->ops[i].kind == NN_OP_DECODE && l < m->ops[i].nl; l++)
			if (first[m->ops[i].level[l]] != UINT32_MAX)
				last[m->ops[i].level[l]] = end;
	// Tensors in order of first use (insertion sort: a few hundred).
	uint32_t n = 0;
	for (uint32_t t = 0; t < nt; t++) {
		offset[t] = UINT64_MAX;
		if (first[t] == UINT32_MAX)
			continue;
		uint32_t j = n++;
		while (j > 0 && first[order[j - 1]] > first[t]) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = t;
	}
	*total = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t t = order[i];
		uint64_t size = align_up(bytes[t], align), at = 0;
		if (size > chunk) {
			LOGE("runner: tensor %u needs %.1f MiB, more than the device binds at once (%.1f MiB): use a smaller "
			     "batch or input", t, size / 1048576.0, chunk / 1048576.0);
			ret = -ENOMEM;
			goto fail;
		}
		// Lowest offset not overlapping any earlier-placed tensor whose live range meets t's, and not
		// crossing a chunk boundary (each chunk is its own buffer).
		for (bool moved = true; moved;) {
			moved = false;
			if (size && at / chunk != (at + size - 1) / chunk)
				at = (at / chunk + 1) * chunk;
			for (uint32_t j = 0; j < i; j++) {
				uint32_t u = order[j];
				if (last[u] < first[t] || first[u] > last[t])
					continue;
				uint64_t ue = offset[u] + align_up(bytes[u], align);
				if (at < ue && offset[u] < at + size) {
					at = ue;
					moved = true;
				}
			}
		}
		offset[t] = at;
		if (at + size > *total)
			*total = at + size;
	}
	ret = 0;
fail:
	free(first), free(last), free(order);
	return ret;
}
