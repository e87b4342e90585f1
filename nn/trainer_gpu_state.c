// The GPU training backend's state buffer: one region per optimizer group (biases | conv weights |
// BN weights) then the BN running statistics, each tensor aligned for binding; the official names of
// its entries; host <-> device copies for read/load/export/import.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer_gpu.h"

// Places a tensor of count floats at the end of group g's region (regions are laid out later).
static uint64_t place(struct nn_tg *g, uint64_t *cursor, uint64_t count)
{
	uint64_t at = *cursor, af = g->align / 4;
	*cursor = tg_align_up(at + count, af);
	return at;
}

void nn_tg_layout_state(struct nn_tg *g)
{
	const struct nn_model *m = g->m;
	uint64_t cur[NN_GROUP_COUNT + 1] = { 0 }; // relative offsets per region; [COUNT] = BN buffers
	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct nn_op *op = &m->ops[i];
		struct nn_tg_param *p = &g->par[i];
		*p = (struct nn_tg_param){ NO_OFF, NO_OFF, NO_OFF, NO_OFF, NO_OFF, NO_OFF };
		if (op->kind != NN_OP_CONV)
			continue;
		p->w = place(g, &cur[NN_GROUP_WEIGHTS], tg_w_count(op));
		if (op->b)
			p->b = place(g, &cur[NN_GROUP_BIASES], op->y.c);
		if (op->bn.gamma) {
			p->beta = place(g, &cur[NN_GROUP_BIASES], op->y.c);
			p->gamma = place(g, &cur[NN_GROUP_BN], op->y.c);
			p->mean = place(g, &cur[NN_GROUP_COUNT], op->y.c);
			p->var = place(g, &cur[NN_GROUP_COUNT], op->y.c);
		}
	}
	uint64_t base[NN_GROUP_COUNT + 1], total = 0;
	for (int r = 0; r <= NN_GROUP_COUNT; r++) {
		base[r] = total;
		total += cur[r];
		if (r < NN_GROUP_COUNT)
			g->group_off[r] = base[r], g->group_len[r] = cur[r];
	}
	g->n_params = base[NN_GROUP_COUNT];
	g->n_state = total;
	for (uint32_t i = 0; i < m->n_ops; i++) {
		struct nn_tg_param *p = &g->par[i];
		if (m->ops[i].kind != NN_OP_CONV)
			continue;
		p->w += base[NN_GROUP_WEIGHTS];
		if (p->b != NO_OFF)
			p->b += base[NN_GROUP_BIASES];
		if (p->gamma != NO_OFF) {
			p->beta += base[NN_GROUP_BIASES];
			p->gamma += base[NN_GROUP_BN];
			p->mean += base[NN_GROUP_COUNT];
			p->var += base[NN_GROUP_COUNT];
		}
	}
}

// One parameter or buffer of an op: where it lives in the state and in the model's arrays.
struct tg_entry {
	const char *suffix;
	uint64_t off, count;
	float *host; // the model's array
	bool param;  // false: BN running statistic
};

static uint32_t op_entries(const struct nn_op *op, const struct nn_tg_param *p, struct tg_entry e[6])
{
	uint32_t k = 0;
	if (op->kind != NN_OP_CONV)
		return 0;
	e[k++] = (struct tg_entry){ op->bare ? ".weight" : ".conv.weight", p->w, tg_w_count(op), op->w, true };
	if (op->b)
		e[k++] = (struct tg_entry){ op->bare ? ".bias" : ".conv.bias", p->b, op->y.c, op->b, true };
	if (op->bn.gamma) {
		e[k++] = (struct tg_entry){ ".bn.weight", p->gamma, op->y.c, op->bn.gamma, true };
		e[k++] = (struct tg_entry){ ".bn.bias", p->beta, op->y.c, op->bn.beta, true };
		e[k++] = (struct tg_entry){ ".bn.running_mean", p->mean, op->y.c, op->bn.mean, false };
		e[k++] = (struct tg_entry){ ".bn.running_var", p->var, op->y.c, op->bn.var, false };
	}
	return k;
}

// Whether dst has the trainer model's structure (same ops and parameter shapes).
static bool same_structure(const struct nn_model *a, const struct nn_model *b)
{
	if (a->n_ops != b->n_ops)
		return false;
	for (uint32_t i = 0; i < a->n_ops; i++) {
		const struct nn_op *x = &a->ops[i], *y = &b->ops[i];
		if (x->kind != y->kind || (x->kind == NN_OP_CONV &&
		    (x->x.c != y->x.c || x->y.c != y->y.c || x->k != y->k || x->groups != y->groups ||
		     !x->b != !y->b || !x->bn.gamma != !y->bn.gamma)))
			return false;
	}
	return true;
}

// Host image of the state (params + BN buffers) from a model's arrays, or the reverse.
static void state_image(const struct nn_tg *g, const struct nn_model *m, float *img, bool to_model)
{
	for (uint32_t i = 0; i < m->n_ops; i++) {
		struct tg_entry e[6];
		uint32_t k = op_entries(&m->ops[i], &g->par[i], e);
		for (uint32_t j = 0; j < k; j++) {
			if (to_model)
				memcpy(e[j].host, img + e[j].off, e[j].count * sizeof(float));
			else
				memcpy(img + e[j].off, e[j].host, e[j].count * sizeof(float));
		}
	}
}

int nn_tg_upload_initial(struct nn_tg *g)
{
	float *img = calloc(g->n_state ? g->n_state : 1, sizeof(float));
	if (!img) {
		LOGE("trainer: out of host memory (%llu floats of state)", (unsigned long long)g->n_state);
		return -ENOMEM;
	}
	state_image(g, g->m, img, false);
	int ret = gpu_buf_upload(g->state, 0, img, g->n_state * 4);
	if (!ret)
		ret = gpu_buf_upload(g->ema, 0, img, g->n_state * 4);
	free(img);
	return ret;
}

int nn_tg_read_state(struct nn_trainer *t, enum nn_trainer_state which, struct nn_model *dst)
{
	struct nn_tg *g = t->impl;
	if (!same_structure(g->m, dst)) {
		LOGE("trainer: read_state: the destination model has another structure");
		return -EINVAL;
	}
	float *img = malloc((g->n_state ? g->n_state : 1) * sizeof(float));
	if (!img)
		return -ENOMEM;
	int ret = gpu_buf_download(which == NN_TRAINER_EMA ? g->ema : g->state, 0, img, g->n_state * 4);
	if (!ret)
		state_image(g, dst, img, true);
	free(img);
	return ret;
}

int nn_tg_load_state(struct nn_trainer *t, enum nn_trainer_state which, const struct nn_model *src)
{
	struct nn_tg *g = t->impl;
	if (!same_structure(g->m, src)) {
		LOGE("trainer: load_state: the source model has another structure");
		return -EINVAL;
	}
	float *img = calloc(g->n_state ? g->n_state : 1, sizeof(float));
	if (!img)
		return -ENOMEM;
	state_image(g, src, img, false);
	int ret = gpu_buf_upload(which == NN_TRAINER_EMA ? g->ema : g->state, 0, img, g->n_state * 4);
	free(img);
	if (!ret && which == NN_TRAINER_CURRENT)
		g->stepped = false; // new weights: the next step starts the momentum over (buf = d)
	return ret;
}

// Downloads a parameter-layout buffer into host grads (nn_model_grads' arrays).
static int download_params(struct nn_tg *g, struct gpu_buf *buf, struct nn_model_grads *h)
{
	float *img = malloc((g->n_params ? g->n_params : 1) * sizeof(float));
	if (!img)
		return -ENOMEM;
	int ret = gpu_buf_download(buf, 0, img, g->n_params * 4);
	for (uint32_t i = 0; !ret && i < g->m->n_ops; i++) {
		const struct nn_op *op = &g->m->ops[i];
		const struct nn_tg_param *p = &g->par[i];
		if (op->kind != NN_OP_CONV)
			continue;
		memcpy(h->w[i], img + p->w, tg_w_count(op) * 4);
		if (op->b)
			memcpy(h->b[i], img + p->b, op->y.c * 4);
		if (op->bn.gamma)
			memcpy(h->gamma[i], img + p->gamma, op->y.c * 4), memcpy(h->beta[i], img + p->beta, op->y.c * 4);
	}
	free(img);
	return ret;
}

static int export_params(struct nn_tg *g, struct gpu_buf *buf, const char *prefix, struct nn_tensor_map *out)
{
	struct nn_model_grads *h = NULL;
	int ret = nn_model_grads_create(g->m, &h);
	if (!ret)
		ret = download_params(g, buf, h);
	if (!ret)
		ret = nn_model_grads_export(g->m, h, prefix, out);
	nn_model_grads_destroy(&h);
	return ret;
}

int nn_tg_export_grads(struct nn_trainer *t, const char *prefix, struct nn_tensor_map *out)
{
	return export_params(t->impl, ((struct nn_tg *)t->impl)->grads, prefix, out);
}

int nn_tg_export_momentum(struct nn_trainer *t, const char *prefix, struct nn_tensor_map *out)
{
	struct nn_tg *g = t->impl;
	return g->stepped ? export_params(g, g->momentum, prefix, out) : 0;
}

int nn_tg_import_momentum(struct nn_trainer *t, const char *prefix, const struct nn_tensor_map *in)
{
	struct nn_tg *g = t->impl;
	float *img = calloc(g->n_params ? g->n_params : 1, sizeof(float));
	if (!img)
		return -ENOMEM;
	uint32_t found = 0, total = 0;
	int ret = 0;
	for (uint32_t i = 0; !ret && i < g->m->n_ops; i++) {
		struct tg_entry e[6];
		uint32_t k = op_entries(&g->m->ops[i], &g->par[i], e);
		for (uint32_t j = 0; j < k && !ret; j++) {
			if (!e[j].param)
				continue;
			char name[256];
			snprintf(name, sizeof(name), "%s%s%s", prefix, g->m->ops[i].name, e[j].suffix);
			const struct nn_tensor *tt = nn_tensor_map_find(in, name);
			total++;
			if (!tt)
				continue;
			if (tt->dtype != NN_DTYPE_F32 || (uint64_t)nn_tensor_numel(tt) != e[j].count) {
				LOGE("trainer: momentum %s: expected %llu f32 values", name, (unsigned long long)e[j].count);
				ret = -EINVAL;
				break;
			}
			memcpy(img + e[j].off, tt->data, e[j].count * 4);
			found++;
		}
	}
	if (!ret && found && found != total) {
		LOGE("trainer: momentum: %u of %u buffers present (prefix '%s')", found, total, prefix);
		ret = -EINVAL;
	}
	if (!ret && found) {
		ret = gpu_buf_upload(g->momentum, 0, img, g->n_params * 4);
		if (!ret)
			g->stepped = true;
	}
	free(img);
	return ret;
}
