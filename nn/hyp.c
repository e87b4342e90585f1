// Hyper-parameter YAML reading with the official scratch-high values as defaults.
#include "hyp.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "log.h"
#include "value.h"
#include "yaml_read.h"

#define HYP_FIELD(name) { #name, offsetof(struct nn_hyp, name) }
static const struct {
	const char *name;
	size_t off;
} hyp_fields[] = {
	HYP_FIELD(lr0), HYP_FIELD(lrf), HYP_FIELD(momentum), HYP_FIELD(weight_decay),
	HYP_FIELD(warmup_epochs), HYP_FIELD(warmup_momentum), HYP_FIELD(warmup_bias_lr),
	HYP_FIELD(box), HYP_FIELD(cls), HYP_FIELD(cls_pw), HYP_FIELD(obj), HYP_FIELD(obj_pw),
	HYP_FIELD(dfl), HYP_FIELD(iou_t), HYP_FIELD(anchor_t), HYP_FIELD(fl_gamma),
	HYP_FIELD(hsv_h), HYP_FIELD(hsv_s), HYP_FIELD(hsv_v), HYP_FIELD(degrees),
	HYP_FIELD(translate), HYP_FIELD(scale), HYP_FIELD(shear), HYP_FIELD(perspective),
	HYP_FIELD(flipud), HYP_FIELD(fliplr), HYP_FIELD(mosaic), HYP_FIELD(mixup),
	HYP_FIELD(copy_paste),
};
#define NFIELDS (sizeof(hyp_fields) / sizeof(hyp_fields[0]))

void nn_hyp_defaults(struct nn_hyp *h)
{
	*h = (struct nn_hyp){
		.lr0 = 0.01, .lrf = 0.01, .momentum = 0.937, .weight_decay = 0.0005,
		.warmup_epochs = 3.0, .warmup_momentum = 0.8, .warmup_bias_lr = 0.1,
		.box = 7.5, .cls = 0.5, .cls_pw = 1.0, .obj = 0.7, .obj_pw = 1.0, .dfl = 1.5,
		.iou_t = 0.20, .anchor_t = 5.0, .fl_gamma = 0.0,
		.hsv_h = 0.015, .hsv_s = 0.7, .hsv_v = 0.4,
		.degrees = 0.0, .translate = 0.1, .scale = 0.9, .shear = 0.0, .perspective = 0.0,
		.flipud = 0.0, .fliplr = 0.5, .mosaic = 1.0, .mixup = 0.15, .copy_paste = 0.3,
	};
}

static double *hyp_slot(struct nn_hyp *h, size_t i)
{
	return (double *)((char *)h + hyp_fields[i].off);
}

static bool is_probability(const char *name)
{
	static const char *const probs[] = { "flipud", "fliplr", "mosaic", "mixup", "copy_paste" };
	for (size_t i = 0; i < sizeof(probs) / sizeof(probs[0]); i++)
		if (!strcmp(name, probs[i]))
			return true;
	return false;
}

int nn_hyp_load(const char *path, struct nn_hyp *h)
{
	struct nn_value *root = NULL;
	bool seen[NFIELDS] = { false };
	int rc = nn_yaml_read_file(path, &root);
	if (rc)
		return rc;
	nn_hyp_defaults(h);
	rc = -EINVAL;
	if (root->kind != NN_VALUE_DICT) {
		LOGE("hyp %s: not a mapping", path);
		goto fail;
	}
	for (size_t k = 0; k < nn_value_len(root); k++) {
		const struct nn_value *key = root->u.dict.keys[k], *val = root->u.dict.vals[k];
		if (key->kind != NN_VALUE_STR) {
			LOGE("hyp %s: key %zu is not a name", path, k);
			goto fail;
		}
		size_t i = 0;
		while (i < NFIELDS && strcmp(hyp_fields[i].name, key->u.s))
			i++;
		if (i == NFIELDS) {
			LOGW("hyp %s: unknown key %s ignored", path, key->u.s);
			continue;
		}
		double x;
		if (!nn_value_as_double(val, &x)) {
			LOGE("hyp %s: %s is not a number", path, key->u.s);
			goto fail;
		}
		if (x < 0 || (is_probability(key->u.s) && x > 1)) {
			LOGE("hyp %s: %s = %g out of range", path, key->u.s, x);
			goto fail;
		}
		*hyp_slot(h, i) = x;
		seen[i] = true;
	}
	for (size_t i = 0; i < NFIELDS; i++)
		if (!seen[i])
			LOGW("hyp %s: %s missing, default %g used", path, hyp_fields[i].name,
			     *hyp_slot(h, i));
	rc = 0;
fail:
	nn_value_destroy(&root);
	return rc;
}
