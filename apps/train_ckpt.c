// `vkyolo train` checkpoints: one safetensors file holding the EMA weights (official names, what
// inference loads), the weights being trained ("train."), the SGD momentum ("momentum.") and the
// run's state in the metadata, so --resume continues exactly where the file was written.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "log.h"
#include "safetensors.h"
#include "train.h"

#define TRAIN_PREFIX "train."

// Adds the trainer's `which` weights to out, each name prefixed.
static int add_state(struct nn_trainer *t, struct nn_model *host, enum nn_trainer_state which, const char *prefix,
                     struct nn_tensor_map *out)
{
	struct nn_tensor_map *tmp = NULL;
	int rc = nn_trainer_read_state(t, which, host);
	if (!rc)
		rc = nn_tensor_map_create(&tmp);
	if (!rc)
		rc = nn_model_export_state(host, tmp);
	for (size_t i = 0; !rc && tmp && i < tmp->count; i++) {
		const struct nn_tensor *x = &tmp->items[i];
		char name[512];
		snprintf(name, sizeof(name), "%s%s", prefix, x->name);
		rc = nn_tensor_map_add(out, name, x->dtype, x->ndim, x->shape, x->data);
	}
	nn_tensor_map_destroy(&tmp);
	return rc;
}

static int meta_set(struct nn_value *md, const char *key, struct nn_value *v)
{
	return v ? nn_value_dict_set(md, nn_value_str(key), v) : -ENOMEM;
}

int train_ckpt_save(const char *path, struct nn_trainer *t, struct nn_model *host, const struct train_meta *m)
{
	struct nn_tensor_map *map = NULL;
	struct nn_value *strides = nn_value_list();
	int rc = strides ? nn_tensor_map_create(&map) : -ENOMEM;
	if (!rc)
		rc = add_state(t, host, NN_TRAINER_EMA, "", map);
	if (!rc)
		rc = add_state(t, host, NN_TRAINER_CURRENT, TRAIN_PREFIX, map);
	if (!rc)
		rc = nn_trainer_export_momentum(t, "momentum.", map);
	for (uint32_t l = 0; !rc && l < host->nl; l++)
		rc = nn_value_list_append(strides, nn_value_float(host->stride[l]));
	if (!rc && !(map->metadata = nn_value_dict()))
		rc = -ENOMEM;
	if (!rc) {
		struct nn_value *md = map->metadata;
		char num[64];
		snprintf(num, sizeof(num), "%.17g", m->best_fitness);
		if (meta_set(md, "format", nn_value_str("vkyolo-1")) || meta_set(md, "arch", nn_value_clone(m->arch)) ||
		    meta_set(md, "names", nn_value_clone(m->names)) || meta_set(md, "strides", strides) ||
		    meta_set(md, "nc", nn_value_int(host->nc)) || meta_set(md, "epoch", nn_value_int(m->epoch)) ||
		    meta_set(md, "best_fitness", nn_value_str(num)) ||
		    meta_set(md, "updates", nn_value_int((int64_t)m->updates)) ||
		    meta_set(md, "train_args", nn_value_clone(m->args)))
			rc = -ENOMEM;
		strides = NULL; // owned by the metadata now (or freed on failure)
	}
	if (!rc)
		rc = nn_safetensors_write(path, map);
	if (rc)
		LOGE("train: cannot write checkpoint %s: %d", path, rc);
	nn_value_destroy(&strides);
	nn_tensor_map_destroy(&map);
	return rc;
}

void train_resume_finish(struct train_resume *r)
{
	nn_value_destroy(&r->arch);
	nn_value_destroy(&r->names);
	nn_value_destroy(&r->args);
	nn_tensor_map_destroy(&r->all);
	nn_tensor_map_destroy(&r->train);
	memset(r, 0, sizeof(*r));
}

// A metadata string (safetensors metadata values are strings) parsed as JSON.
static int meta_json(const struct nn_value *md, const char *key, const char *path, struct nn_value **out)
{
	const struct nn_value *v = nn_value_dict_get(md, key);
	if (!v || v->kind != NN_VALUE_STR) {
		LOGE("train resume: %s has no '%s' metadata: not a checkpoint of vkyolo train", path, key);
		return -EINVAL;
	}
	int rc = nn_value_from_json(v->u.s, strlen(v->u.s), out);
	if (rc)
		LOGE("train resume: %s: metadata '%s' is not valid JSON", path, key);
	return rc;
}

static int meta_number(const struct nn_value *md, const char *key, const char *path, double *out)
{
	struct nn_value *v = NULL;
	int rc = meta_json(md, key, path, &v);
	if (!rc && !nn_value_as_double(v, out)) {
		LOGE("train resume: %s: metadata '%s' is not a number", path, key);
		rc = -EINVAL;
	}
	nn_value_destroy(&v);
	return rc;
}

int train_resume_read(const char *path, struct train_resume *r)
{
	memset(r, 0, sizeof(*r));
	double epoch = 0, updates = 0;
	int rc = nn_safetensors_read(path, &r->all);
	const struct nn_value *md = rc ? NULL : r->all->metadata;
	if (!rc && !md) {
		LOGE("train resume: %s has no metadata", path);
		rc = -EINVAL;
	}
	if (!rc)
		rc = meta_json(md, "arch", path, &r->arch);
	if (!rc)
		rc = meta_json(md, "names", path, &r->names);
	if (!rc)
		rc = meta_json(md, "train_args", path, &r->args);
	if (!rc)
		rc = meta_number(md, "epoch", path, &epoch);
	if (!rc)
		rc = meta_number(md, "updates", path, &updates);
	if (!rc)
		rc = meta_number(md, "best_fitness", path, &r->best_fitness);
	if (!rc)
		rc = nn_tensor_map_create(&r->train);
	size_t pl = strlen(TRAIN_PREFIX);
	for (size_t i = 0; !rc && i < r->all->count; i++) {
		const struct nn_tensor *x = &r->all->items[i];
		if (!strncmp(x->name, TRAIN_PREFIX, pl))
			rc = nn_tensor_map_add(r->train, x->name + pl, x->dtype, x->ndim, x->shape, x->data);
	}
	if (!rc && r->train->count == 0) {
		LOGE("train resume: %s holds no '" TRAIN_PREFIX "' weights", path);
		rc = -EINVAL;
	}
	r->epoch = (int32_t)epoch;
	r->updates = (uint64_t)updates;
	if (rc)
		train_resume_finish(r);
	return rc;
}

int train_ckpt_ema_tensors(const struct nn_tensor_map *all, struct nn_tensor_map **out)
{
	int rc = nn_tensor_map_create(out);
	for (size_t i = 0; !rc && i < all->count; i++) {
		const struct nn_tensor *x = &all->items[i];
		if (strncmp(x->name, TRAIN_PREFIX, strlen(TRAIN_PREFIX)) && strncmp(x->name, "momentum.", 9))
			rc = nn_tensor_map_add(*out, x->name, x->dtype, x->ndim, x->shape, x->data);
	}
	if (rc)
		nn_tensor_map_destroy(out);
	return rc;
}

int train_ckpt_strip(const char *path)
{
	struct nn_tensor_map *all = NULL, *ema = NULL;
	int rc = nn_safetensors_read(path, &all);
	if (!rc)
		rc = train_ckpt_ema_tensors(all, &ema);
	if (!rc) {
		ema->metadata = all->metadata;
		all->metadata = NULL;
		rc = nn_safetensors_write(path, ema);
	}
	if (rc)
		LOGE("train: cannot strip %s: %d", path, rc);
	nn_tensor_map_destroy(&ema);
	nn_tensor_map_destroy(&all);
	return rc;
}
