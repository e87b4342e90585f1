// The validation loss of one batch, as the official val.py adds compute_loss(train_out, targets)
// per batch during training: the raw head maps of the real images of the batch (the runner keeps
// them with keep_heads), the labels as the val dataloader's targets, the CPU TAL loss (dual for
// PGI models). The loss items (box, cls, dfl after the gains) are added to items[].
#include <stdlib.h>

#include "loss.h"
#include "val_loss.h"

int val_batch_loss(struct nn_runner *r, const struct nn_dataset_split *sp, const struct nn_val_plan *plan,
                   const struct val_slot *s, uint32_t nc, double items[3])
{
	uint32_t sets = 1;
	struct nn_shape sh;
	float stride;
	struct nn_loss_desc d = { .n = s->nb, .nc = nc, .nl = 0 };
	float *maps[2 * NN_DETECT_MAX_LEVELS] = { 0 }, *targets = NULL;
	int rc = 0;
	for (uint32_t l = 0; l < NN_DETECT_MAX_LEVELS && !rc; l++) {
		if (nn_runner_head_info(r, 0, l, &sets, &sh, &stride))
			break; // past the last level
		d.h[l] = sh.h, d.w[l] = sh.w, d.stride[l] = stride, d.nl = l + 1;
		d.reg_max = (sh.c - nc) / 4;
	}
	size_t nt = 0;
	for (uint32_t i = 0; i < s->nb; i++)
		nt += sp->images[plan->order[(size_t)s->index * plan->batch + i]].count;
	if (!d.nl || !(targets = malloc((nt ? nt : 1) * 6 * sizeof(float))))
		rc = d.nl ? -ENOMEM : -EINVAL;
	// the maps of the whole (padded) batch are read; the loss takes the first nb images
	for (uint32_t k = 0; k < sets && !rc; k++)
		for (uint32_t l = 0; l < d.nl && !rc; l++) {
			if ((rc = nn_runner_head_info(r, k, l, &sets, &sh, &stride)))
				break;
			float *m = malloc((size_t)plan->batch * sh.c * sh.h * sh.w * sizeof(float));
			maps[k * d.nl + l] = m;
			rc = m ? nn_runner_read_head(r, k, l, m) : -ENOMEM;
		}
	size_t at = 0;
	for (uint32_t i = 0; i < s->nb && !rc; i++) {
		const struct nn_dataset_image *im = &sp->images[plan->order[(size_t)s->index * plan->batch + i]];
		nn_val_labels_to_targets(im->labels, im->count, &s->geom[i], i, targets + 6 * at);
		at += im->count;
	}
	struct nn_loss_out out = { 0 };
	if (!rc)
		rc = sets == 2 ? nn_loss_tal_dual(&d, (const float *const *)maps, targets, (uint32_t)nt, &out)
		               : nn_loss_tal(&d, (const float *const *)maps, targets, (uint32_t)nt, &out);
	for (int k = 0; k < 3 && !rc; k++)
		items[k] += out.items[k];
	for (uint32_t k = 0; k < 2 * NN_DETECT_MAX_LEVELS; k++)
		free(maps[k]);
	free(targets);
	return rc;
}
