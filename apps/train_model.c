// `vkyolo train`: the model to train (a YAML description from scratch with the official
// initialisation, or a checkpoint to fine-tune, its tensors transferred where name and shape
// match, as train.py's intersect_dicts) and the per-epoch validation of the EMA weights through
// the code of `vkyolo val --model` (apps/val_model.c).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "log.h"
#include "metrics.h"
#include "train.h"
#include "train_run.h"
#include "val_model.h"
#include "yaml_read.h"

static bool is_yaml(const char *path)
{
	const char *dot = strrchr(path, '.');
	return dot && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml"));
}

// A copy of arch with nc set to the dataset's (owned by *out).
static int arch_with_nc(const struct nn_value *arch, int nc, struct nn_value **out)
{
	*out = nn_value_clone(arch);
	if (!*out || (*out)->kind != NN_VALUE_DICT ||
	    nn_value_dict_set(*out, nn_value_str("nc"), nn_value_int(nc))) {
		LOGE("train: model description is not a mapping (or out of memory)");
		nn_value_destroy(out);
		return -EINVAL;
	}
	return 0;
}

// A fresh model of arch with the official initialisation.
static int model_scratch(struct train_run *r, struct nn_model **out)
{
	struct nn_model_params mp = {.names = r->names, .random_seed = r->o.seed + 1};
	int rc = nn_model_create(r->arch, NULL, &mp, out);
	if (!rc)
		train_init_official(*out);
	return rc;
}

// Fine-tuning: the scratch model's state with every checkpoint tensor of the same name and size.
static int model_transfer(struct train_run *r, const struct nn_tensor_map *ck_state, struct nn_model **out)
{
	struct nn_model *init = NULL;
	struct nn_tensor_map *s = NULL, *merged = NULL;
	size_t taken = 0;
	int rc = model_scratch(r, &init);
	if (!rc && !(rc = nn_tensor_map_create(&s)))
		rc = nn_model_export_state(init, s);
	if (!rc)
		rc = nn_tensor_map_create(&merged);
	for (size_t i = 0; !rc && i < s->count; i++) {
		const struct nn_tensor *a = &s->items[i], *b = nn_tensor_map_find(ck_state, a->name);
		float *conv = NULL;
		if (b && nn_tensor_numel(b) == nn_tensor_numel(a) && (conv = nn_tensor_to_f32(b)))
			taken++;
		rc = nn_tensor_map_add(merged, a->name, NN_DTYPE_F32, a->ndim, a->shape, conv ? conv : a->data);
		free(conv);
	}
	if (!rc) {
		LOGI("train: transferred %zu/%zu items from %s", taken, s->count, r->o.model);
		struct nn_model_params mp = {.names = r->names};
		rc = nn_model_create(r->arch, merged, &mp, out);
	}
	nn_tensor_map_destroy(&merged);
	nn_tensor_map_destroy(&s);
	nn_model_destroy(&init);
	return rc;
}

int train_model_build(struct train_run *r)
{
	int rc = 0;
	if (r->resumed) {
		if (!(r->arch = nn_value_clone(r->res.arch)))
			return -ENOMEM;
		struct nn_model_params mp = {.names = r->names};
		return nn_model_create(r->arch, r->res.train, &mp, &r->model);
	}
	if (is_yaml(r->o.model)) {
		struct nn_value *desc = NULL;
		rc = nn_yaml_read_file(r->o.model, &desc);
		if (!rc)
			rc = arch_with_nc(desc, r->ds->nc, &r->arch);
		nn_value_destroy(&desc);
		if (!rc)
			rc = model_scratch(r, &r->model);
		return rc;
	}
	struct nn_checkpoint *ck = NULL;
	rc = nn_checkpoint_load(r->o.model, &ck);
	if (!rc && !ck->arch) {
		LOGE("train: %s carries no model description", r->o.model);
		rc = -EINVAL;
	}
	if (!rc)
		rc = arch_with_nc(ck->arch, r->ds->nc, &r->arch);
	if (!rc)
		rc = model_transfer(r, ck->state, &r->model);
	nn_checkpoint_destroy(&ck);
	return rc;
}

int train_validate(struct train_run *r, struct nn_metrics_result *res, double val_loss[3], struct nn_confusion *cm)
{
	struct nn_tensor_map *state = NULL;
	struct nn_model *fused = NULL;
	struct val_model_stats st;
	int rc = nn_trainer_read_state(r->t, NN_TRAINER_EMA, r->model);
	if (!rc)
		rc = nn_tensor_map_create(&state);
	if (!rc)
		rc = nn_model_export_state(r->model, state);
	if (!rc) {
		struct nn_model_params mp = {.fuse = true, .names = r->names};
		rc = nn_model_create(r->arch, state, &mp, &fused);
	}
	if (!rc) { // official: batch 2 x bs, conf 0.001, IoU 0.7, max_det 300, rect, pad 0.5
		struct val_model_opts vo = {.model = "EMA weights", .imgsz = r->o.imgsz, .batch = 2 * r->o.batch,
		                            .workers = r->o.workers, .max_det = 300, .conf = 0.001f, .iou = 0.7f,
		                            .net = fused, .dev = r->dev, .cpu_reference = r->o.cpu, .loss = true,
		                            .confusion = cm};
		rc = val_model_run(&vo, r->ds, r->va, res, &st);
		for (int k = 0; k < 3; k++)
			val_loss[k] = st.loss[k];
	}
	nn_model_destroy(&fused);
	nn_tensor_map_destroy(&state);
	return rc;
}
