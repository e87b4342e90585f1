// TaskAlignedAssigner (utils/tal/assigner.py) for one image of one head set, in fp32 following the
// official operation order, because its top-k choice is discontinuous in the predictions.
//
// For gt j and anchor a: overlap o = max(CIoU(gt, pred), 0), align t = sqrt(score of gt's class) *
// o^6; candidates are anchors whose centre lies strictly inside the gt (margin > 1e-9); each real gt
// takes its 10 largest t * inside (ties: lower anchor index first); positives = top-k and inside. An
// anchor positive for several gts goes to the gt of largest overlap over all gts (first on ties).
// Soft target of a positive = t * O_j / (T_j + 1e-9) with T_j, O_j the gt's largest t and o over its
// positives.
#include <math.h>
#include <string.h>

#include "loss_internal.h"

// Predictions of every anchor: xyxy boxes in input pixels, as the official (pred_bboxes * stride).
static void decode_preds(const struct nn_loss_ctx *c, const float *const *maps, uint32_t img, float *box)
{
	uint32_t reg = c->d->reg_max;
	for (uint32_t a = 0; a < c->a; a++) {
		const struct nn_loss_anchor *an = &c->anc[a];
		const float *z = &maps[an->level][(size_t)img * c->no * an->hw + an->pix];
		float dist[4];
		for (uint32_t s = 0; s < 4; s++)
			dist[s] = nn_loss_dfl_expect_f(z + (size_t)s * reg * an->hw, an->hw, reg);
		box[4 * a + 0] = (an->x - dist[0]) * an->stride;
		box[4 * a + 1] = (an->y - dist[1]) * an->stride;
		box[4 * a + 2] = (an->x + dist[2]) * an->stride;
		box[4 * a + 3] = (an->y + dist[3]) * an->stride;
	}
}

static int inside_gt(const struct nn_loss_anchor *an, const float *g)
{
	float ax = an->x * an->stride, ay = an->y * an->stride;
	float d = fminf(fminf(ax - g[0], ay - g[1]), fminf(g[2] - ax, g[3] - ay));
	return d > NN_LOSS_ASSIGN_EPS;
}

// Marks the k anchors of largest metric[a] (ties: lower index first) in sel[a] (sel cleared before).
static void top_k(const float *metric, uint32_t a_total, uint32_t k, uint8_t *sel)
{
	if (k > a_total)
		k = a_total;
	for (uint32_t i = 0; i < k; i++) {
		uint32_t best = UINT32_MAX;
		for (uint32_t a = 0; a < a_total; a++)
			if (!sel[a] && (best == UINT32_MAX || metric[a] > metric[best]))
				best = a;
		sel[best] = 1;
	}
}

void nn_loss_assign(const struct nn_loss_ctx *c, const float *const *maps, uint32_t img, struct nn_loss_assign *as)
{
	uint32_t A = c->a, M = c->m, reg = c->d->reg_max;
	const float *gbox = c->gt_box + (size_t)img * M * 4;
	const int32_t *gcls = c->gt_cls + (size_t)img * M;
	const uint8_t *gvalid = c->gt_valid + (size_t)img * M;
	memset(as->fg, 0, A);
	memset(as->gt, 0, A * sizeof(uint32_t));
	memset(as->score, 0, A * sizeof(float));
	if (M == 0)
		return;
	decode_preds(c, maps, img, as->pd_box);

	// metrics, candidates, top-k
	for (uint32_t j = 0; j < M; j++) {
		float *ov = as->overlap + (size_t)j * A, *al = as->align + (size_t)j * A;
		uint8_t *pos = as->pos + (size_t)j * A;
		for (uint32_t a = 0; a < A; a++) {
			float z = nn_loss_map(c, maps, &c->anc[a], img, 4 * reg + (uint32_t)gcls[j]);
			float s = 1.0f / (1.0f + expf(-z));
			float o = fmaxf(nn_loss_ciou_f(gbox + 4 * j, as->pd_box + 4 * a), 0.0f);
			ov[a] = o;
			al[a] = sqrtf(s) * powf(o, NN_LOSS_BETA);
			as->pd_score[a] = inside_gt(&c->anc[a], gbox + 4 * j) ? al[a] : 0.0f; // metric for top-k
		}
		memset(pos, 0, A);
		if (!gvalid[j])
			continue;
		top_k(as->pd_score, A, NN_LOSS_TOPK, pos);
		for (uint32_t a = 0; a < A; a++)
			pos[a] = pos[a] && inside_gt(&c->anc[a], gbox + 4 * j);
	}

	// conflicts: the gt of largest overlap over all gts wins
	for (uint32_t a = 0; a < A; a++) {
		uint32_t cnt = 0, first = 0;
		for (uint32_t j = 0; j < M; j++)
			if (as->pos[(size_t)j * A + a] && !cnt++)
				first = j;
		if (cnt > 1) {
			uint32_t best = 0;
			for (uint32_t j = 1; j < M; j++)
				if (as->overlap[(size_t)j * A + a] > as->overlap[(size_t)best * A + a])
					best = j;
			for (uint32_t j = 0; j < M; j++)
				as->pos[(size_t)j * A + a] = j == best;
			first = best;
		}
		as->fg[a] = cnt > 0;
		as->gt[a] = first;
	}

	// soft targets: per gt the largest align metric and overlap over its positives
	for (uint32_t j = 0; j < M; j++) {
		const float *ov = as->overlap + (size_t)j * A, *al = as->align + (size_t)j * A;
		const uint8_t *pos = as->pos + (size_t)j * A;
		float t_max = 0.0f, o_max = 0.0f;
		for (uint32_t a = 0; a < A; a++)
			if (pos[a]) {
				t_max = fmaxf(t_max, al[a]);
				o_max = fmaxf(o_max, ov[a]);
			}
		for (uint32_t a = 0; a < A; a++)
			if (pos[a])
				as->score[a] = al[a] * o_max / (t_max + NN_LOSS_ASSIGN_EPS);
	}
}
