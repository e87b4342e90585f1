// nn_model_create / nn_model_destroy: top-level checks of the description, weight bookkeeping,
// strides (the official 256x256 probe, done on shapes only) and class names.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "model_internal.h"

void nn_model_destroy(struct nn_model **pm)
{
	struct nn_model *m = pm ? *pm : NULL;
	if (!m)
		return;
	for (uint32_t i = 0; i < m->n_ops; i++) {
		struct nn_op *op = &m->ops[i];
		free(op->w), free(op->b);
		free(op->bn.gamma), free(op->bn.beta), free(op->bn.mean), free(op->bn.var);
	}
	for (uint32_t i = 0; m->names && i < m->nc; i++)
		free(m->names[i]);
	free(m->names);
	free(m->ops);
	free(m->tensors);
	free(m->layers);
	free(m);
	*pm = NULL;
}

static int set_names(struct nn_model *m, const struct nn_value *names)
{
	if (!(m->names = calloc(m->nc ? m->nc : 1, sizeof(char *))))
		return -ENOMEM;
	for (uint32_t i = 0; i < m->nc; i++) {
		const struct nn_value *v = NULL;
		char buf[16];
		if (names && names->kind == NN_VALUE_LIST) {
			v = nn_value_list_at(names, i);
		} else if (names && names->kind == NN_VALUE_DICT) {
			for (size_t k = 0; k < names->u.dict.count; k++) {
				int64_t key;
				if (nn_value_as_int(names->u.dict.keys[k], &key) && key == i)
					v = names->u.dict.vals[k];
			}
		}
		snprintf(buf, sizeof(buf), "%u", i); // the official default names are "0", "1", ...
		m->names[i] = strdup(v && v->kind == NN_VALUE_STR ? v->u.s : buf);
		if (!m->names[i])
			return -ENOMEM;
	}
	return 0;
}

// The official code measures strides with a 256x256 forward: stride_l = 256 / H_l.
static int set_strides(struct nn_model *m)
{
	struct nn_shape *sh = calloc(m->n_tensors, sizeof(*sh));
	if (!sh)
		return -ENOMEM;
	int ret = nn_model_shapes(m, 256, 256, sh);
	for (uint32_t l = 0; !ret && l < m->nl; l++) {
		uint32_t h = sh[m->head_map[0][l]].h;
		m->stride[l] = h ? 256.0f / (float)h : 0.0f;
	}
	for (uint32_t i = 0; !ret && i < m->n_ops; i++)
		if (m->ops[i].kind == NN_OP_DECODE)
			memcpy(m->ops[i].level_stride, m->stride, sizeof(m->stride));
	free(sh);
	return ret;
}

static void warn_unused(const struct nn_builder *b)
{
	size_t unused = 0;
	const char *first = NULL;
	for (size_t i = 0; i < b->state->count; i++) {
		const char *name = b->state->items[i].name;
		if (b->state_used[i] || strstr(name, "num_batches_tracked"))
			continue;
		if (!unused++)
			first = name;
	}
	if (unused)
		LOGW("model: %zu state tensors unused by the architecture (first: %s)", unused, first);
}

int nn_model_create(const struct nn_value *arch, const struct nn_tensor_map *state,
                    const struct nn_model_params *p, struct nn_model **out)
{
	struct nn_model_params defaults = {0};
	struct nn_builder b = {.state = state, .p = p ? p : &defaults};
	struct nn_model *m = NULL;
	int64_t nc = 0, ch = 3;
	int ret = -EINVAL;
	*out = NULL;
	if (!arch || arch->kind != NN_VALUE_DICT) {
		LOGE("model description: not a mapping");
		return -EINVAL;
	}
	const struct nn_value *act = nn_value_dict_get(arch, "activation");
	if (act && !(act->kind == NN_VALUE_STR && !strcmp(act->u.s, "nn.SiLU()"))) {
		LOGE("model description: activation %s is not supported (only the default SiLU)",
		     act->kind == NN_VALUE_STR ? act->u.s : "?");
		return -ENOTSUP;
	}
	if (!nn_value_as_int(nn_value_dict_get(arch, "nc"), &nc) && !b.p->nc) {
		LOGE("model description: missing integer `nc`");
		return -EINVAL;
	}
	if (b.p->nc)
		nc = b.p->nc;
	nn_value_as_int(nn_value_dict_get(arch, "ch"), &ch);
	if (nc <= 0 || nc > 100000 || ch <= 0 || ch > 64) {
		LOGE("model description: bad nc %lld or ch %lld", (long long)nc, (long long)ch);
		return -EINVAL;
	}
	if (!(m = calloc(1, sizeof(*m))))
		return -ENOMEM;
	b.m = m;
	b.rng = b.p->random_seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
	m->nc = (uint32_t)nc;
	m->reg_max = 16;
	m->fused = b.p->fuse;
	m->output = m->output_aux = NN_NO_TENSOR;
	if (state && !(b.state_used = calloc(state->count ? state->count : 1, sizeof(bool)))) {
		ret = -ENOMEM;
		goto fail;
	}
	uint32_t img;
	b.layer = 0;
	if ((ret = nn_builder_tensor(&b, (uint32_t)ch, &img)))
		goto fail;
	m->tensors[img].layer = -1;
	if ((ret = nn_model_build_graph(&b, arch)) || (ret = set_strides(m)) ||
	    (ret = set_names(m, b.p->names)))
		goto fail;
	for (uint32_t i = 0; i < m->n_layers; i++)
		for (uint32_t k = 0; k < m->layers[i].n_out; k++)
			m->tensors[m->layers[i].out[k].tensor].is_layer_output = true;
	if (state)
		warn_unused(&b);
	free(b.state_used);
	*out = m;
	return 0;
fail:
	free(b.state_used);
	nn_model_destroy(&m);
	return ret;
}

uint64_t nn_model_param_count(const struct nn_model *m)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct nn_op *op = &m->ops[i];
		if (op->kind != NN_OP_CONV)
			continue;
		n += (uint64_t)op->y.c * (op->x.c / op->groups) * op->k * op->k;
		if (op->b)
			n += op->y.c;
		if (op->bn.gamma)
			n += 2ull * op->y.c;
	}
	return n;
}
