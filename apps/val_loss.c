// The validation loss of one batch, as the official val.py adds compute_loss(train_out, targets)
// per batch during training: the raw head maps of the real images of the batch (kept by the GPU
// runner with keep_heads, or by the CPU reference forward with keep_heads), the labels as the val
// dataloader's targets, the CPU TAL loss (dual for PGI models). The loss items (box, cls, dfl after
// the gains) are added to items[].
#include <stdlib.h>

#include "loss.h"
#include "val_loss.h"

// maps[k * d->nl + l]: head set k, level l of the whole (padded) batch; the loss takes the first
// s->nb images, whose labels become the targets.
static int loss_of_maps(const struct nn_loss_desc *d, uint32_t sets, const float *const *maps,
                        const struct nn_dataset_split *sp, const struct nn_val_plan *plan, const struct val_slot *s,
                        double items[3])
{
	size_t nt = 0, at = 0;
	for (uint32_t i = 0; i < s->nb; i++)
		nt += sp->images[plan->order[(size_t)s->index * plan->batch + i]].count;
	float *targets = malloc((nt ? nt : 1) * 6 * sizeof(float));
	if (!targets)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->nb; i++) {
		const struct nn_dataset_image *im = &sp->images[plan->order[(size_t)s->index * plan->batch + i]];
		nn_val_labels_to_targets(im->labels, im->count, &s->geom[i], i, targets + 6 * at);
		at += im->count;
	}
	struct nn_loss_out out = { 0 };
	int rc = sets == 2 ? nn_loss_tal_dual(d, maps, targets, (uint32_t)nt, &out)
	                   : nn_loss_tal(d, maps, targets, (uint32_t)nt, &out);
	for (int k = 0; k < 3 && !rc; k++)
		items[k] += out.items[k];
	free(targets);
	return rc;
}

int val_batch_loss(struct nn_runner *r, const struct nn_dataset_split *sp, const struct nn_val_plan *plan,
                   const struct val_slot *s, uint32_t nc, double items[3])
{
	uint32_t sets = 1;
	struct nn_shape sh;
	float stride;
	struct nn_loss_desc d = { .n = s->nb, .nc = nc, .nl = 0 };
	float *maps[2 * NN_DETECT_MAX_LEVELS] = { 0 };
	int rc = 0;
	for (uint32_t l = 0; l < NN_DETECT_MAX_LEVELS; l++) {
		if (nn_runner_head_info(r, 0, l, &sets, &sh, &stride))
			break; // past the last level
		d.h[l] = sh.h, d.w[l] = sh.w, d.stride[l] = stride, d.nl = l + 1;
		d.reg_max = (sh.c - nc) / 4;
	}
	if (!d.nl)
		return -EINVAL;
	for (uint32_t k = 0; k < sets && !rc; k++)
		for (uint32_t l = 0; l < d.nl && !rc; l++) {
			if ((rc = nn_runner_head_info(r, k, l, &sets, &sh, &stride)))
				break;
			float *m = malloc((size_t)plan->batch * sh.c * sh.h * sh.w * sizeof(float));
			maps[k * d.nl + l] = m;
			rc = m ? nn_runner_read_head(r, k, l, m) : -ENOMEM;
		}
	if (!rc)
		rc = loss_of_maps(&d, sets, (const float *const *)maps, sp, plan, s, items);
	for (uint32_t k = 0; k < 2 * NN_DETECT_MAX_LEVELS; k++)
		free(maps[k]);
	return rc;
}

int val_batch_loss_ref(const struct nn_ref_outputs *out, const struct nn_dataset_split *sp,
                       const struct nn_val_plan *plan, const struct val_slot *s, uint32_t nc, double items[3])
{
	struct nn_loss_desc d = { .n = s->nb, .nc = nc, .nl = 0 };
	const float *maps[2 * NN_DETECT_MAX_LEVELS] = { 0 };
	uint32_t sets = out->head[1][0] ? 2 : 1;
	for (uint32_t l = 0; l < NN_DETECT_MAX_LEVELS && out->head[0][l]; l++) {
		const struct nn_shape *sh = &out->head_shape[0][l];
		d.h[l] = sh->h, d.w[l] = sh->w, d.stride[l] = (float)s->h / (float)sh->h, d.nl = l + 1;
		d.reg_max = (sh->c - nc) / 4;
	}
	if (!d.nl)
		return -EINVAL;
	for (uint32_t k = 0; k < sets; k++)
		for (uint32_t l = 0; l < d.nl; l++)
			if (!(maps[k * d.nl + l] = out->head[k][l]))
				return -EINVAL;
	return loss_of_maps(&d, sets, maps, sp, plan, s, items);
}
