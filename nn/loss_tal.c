// The training loss driver (utils/loss_tal.py, utils/loss_tal_dual.py ComputeLoss): target tables,
// anchors, per-set assignment and the three loss terms with their gradients w.r.t. the raw maps.
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loss_internal.h"

#define GAIN_BOX 7.5
#define GAIN_CLS 0.5
#define GAIN_DFL 1.5
#define AUX_WEIGHT 0.25

static int check_desc(const struct nn_loss_desc *d, uint32_t sets, const float *const *maps)
{
	if (!d || d->n == 0 || d->nc == 0 || d->reg_max < 2 || d->reg_max > 64 || d->nl == 0 ||
	    d->nl > NN_DETECT_MAX_LEVELS || !maps) {
		LOGE("loss: bad description (n %u, nc %u, reg_max %u, nl %u)", d ? d->n : 0, d ? d->nc : 0,
		     d ? d->reg_max : 0, d ? d->nl : 0);
		return -EINVAL;
	}
	for (uint32_t l = 0; l < d->nl; l++)
		if (d->h[l] == 0 || d->w[l] == 0 || !(d->stride[l] > 0.0f)) {
			LOGE("loss: level %u: bad size %ux%u or stride %g", l, d->h[l], d->w[l], d->stride[l]);
			return -EINVAL;
		}
	for (uint32_t i = 0; i < sets * d->nl; i++)
		if (!maps[i]) {
			LOGE("loss: map %u is NULL", i);
			return -EINVAL;
		}
	return 0;
}

static void ctx_free(struct nn_loss_ctx *c)
{
	free(c->anc), free(c->gt_box), free(c->gt_cls), free(c->gt_valid);
	memset(c, 0, sizeof(*c));
}

// Anchors (level, row, column order; centres at grid + 0.5) and the padded gt table: targets grouped
// by image in their order, scaled to input pixels, xywh -> xyxy (official preprocess).
static int ctx_init(struct nn_loss_ctx *c, const struct nn_loss_desc *d, const float *targets, uint32_t n_targets)
{
	memset(c, 0, sizeof(*c));
	c->d = d;
	c->no = 4 * d->reg_max + d->nc;
	for (uint32_t l = 0; l < d->nl; l++)
		c->a += d->h[l] * d->w[l];
	if (!(c->anc = malloc(c->a * sizeof(*c->anc))))
		goto nomem;
	uint32_t a = 0;
	for (uint32_t l = 0; l < d->nl; l++)
		for (uint32_t y = 0; y < d->h[l]; y++)
			for (uint32_t x = 0; x < d->w[l]; x++, a++)
				c->anc[a] = (struct nn_loss_anchor){(float)x + 0.5f, (float)y + 0.5f, d->stride[l], l,
				                                    (size_t)y * d->w[l] + x, (size_t)d->h[l] * d->w[l]};

	// M = the most rows of any image index present (also indices outside the batch, like the official
	// unique/counts), so padded rows match the official tensor.
	for (uint32_t i = 0; i < n_targets; i++) {
		uint32_t cnt = 0;
		for (uint32_t k = 0; k < n_targets; k++)
			cnt += targets[6 * k] == targets[6 * i];
		c->m = cnt > c->m ? cnt : c->m;
	}
	size_t rows = (size_t)d->n * (c->m ? c->m : 1);
	c->gt_box = calloc(rows * 4, sizeof(float));
	c->gt_cls = calloc(rows, sizeof(int32_t));
	c->gt_valid = calloc(rows, 1);
	if (!c->gt_box || !c->gt_cls || !c->gt_valid)
		goto nomem;
	float img_w = (float)d->w[0] * d->stride[0], img_h = (float)d->h[0] * d->stride[0];
	for (uint32_t img = 0; img < d->n; img++) {
		uint32_t j = 0;
		for (uint32_t i = 0; i < n_targets; i++) {
			const float *t = targets + 6 * i;
			if (t[0] != (float)img)
				continue;
			if (!(t[1] >= 0.0f && t[1] < (float)d->nc)) {
				LOGE("loss: target %u: class %g outside [0, %u)", i, t[1], d->nc);
				ctx_free(c);
				return -EINVAL;
			}
			size_t r = (size_t)img * c->m + j++;
			float cx = t[2] * img_w, cy = t[3] * img_h, w = t[4] * img_w, h = t[5] * img_h;
			float *b = c->gt_box + 4 * r;
			b[0] = cx - w / 2.0f, b[1] = cy - h / 2.0f, b[2] = cx + w / 2.0f, b[3] = cy + h / 2.0f;
			c->gt_cls[r] = (int32_t)t[1];
			c->gt_valid[r] = b[0] + b[1] + b[2] + b[3] > 0.0f;
		}
	}
	return 0;
nomem:
	LOGE("loss: out of memory (%u anchors, %u targets)", c->a, n_targets);
	ctx_free(c);
	return -ENOMEM;
}

static void assign_free(struct nn_loss_assign *as)
{
	free(as->fg), free(as->gt), free(as->score), free(as->overlap), free(as->align), free(as->pos);
	free(as->pd_box), free(as->pd_score);
}

// Unscaled terms of one set: sums over the batch before the division by S.
struct set_terms {
	double cls, box, dfl, s;
	uint32_t n_fg;
};

// Gradient of the box (CIoU through the DFL expectation) and DFL terms of foreground anchor a.
// gb, gd: d total / d box term, d total / d dfl term (already divided by S and weighted).
// Predicted box of the anchor in grid units (double), the softmax of each side in p.
static void pred_box(const struct nn_loss_anchor *an, const float *z, uint32_t reg, double p[4][64], double ev[4],
                     double lse[4], double pb[4])
{
	for (uint32_t s = 0; s < 4; s++)
		ev[s] = nn_loss_dfl_softmax(z + (size_t)s * reg * an->hw, an->hw, reg, p[s], &lse[s]);
	pb[0] = an->x - ev[0], pb[1] = an->y - ev[1], pb[2] = an->x + ev[2], pb[3] = an->y + ev[3];
}

static void fg_anchor(const struct nn_loss_ctx *c, const float *const *maps, const float *const *amaps,
                      float *const *grad, uint32_t img, uint32_t a, const float *tbox_px, double wgt,
                      struct set_terms *st, double gb, double gd)
{
	const struct nn_loss_anchor *an = &c->anc[a];
	uint32_t reg = c->d->reg_max;
	size_t base = (size_t)img * c->no * an->hw + an->pix;
	const float *z = maps[an->level] + base;
	double p[4][64], ev[4], lse[4], pb[4];
	pred_box(an, z, reg, p, ev, lse, pb);
	float tf[4]; // target in grid units (fp32 division by the stride, exact for powers of two)
	for (int k = 0; k < 4; k++)
		tf[k] = tbox_px[k] / an->stride;
	double tb[4] = {tf[0], tf[1], tf[2], tf[3]}, g[4], alpha;
	if (amaps != maps) { // the no_grad alpha comes from the detached predictions
		double pa[4][64], eva[4], lsea[4], pba[4];
		pred_box(an, amaps[an->level] + base, reg, pa, eva, lsea, pba);
		alpha = nn_loss_ciou_grad(pba, tb, NULL, NULL);
	} else {
		alpha = nn_loss_ciou_grad(pb, tb, NULL, NULL);
	}
	double ciou = nn_loss_ciou_grad(pb, tb, &alpha, g);
	st->box += (1.0 - ciou) * wgt;

	// DFL targets: distances from the anchor to the target sides, clamped to [0, reg_max - 1 - 0.01]
	float lim = (float)((double)(reg - 1) - 0.01);
	float td[4] = {an->x - tf[0], an->y - tf[1], tf[2] - an->x, tf[3] - an->y};
	double dfl = 0.0, wl[4], wr[4];
	int32_t tl[4];
	for (int s = 0; s < 4; s++) {
		float t = fminf(fmaxf(td[s], 0.0f), lim);
		tl[s] = (int32_t)t;
		float wlf = (float)(tl[s] + 1) - t;
		wl[s] = wlf, wr[s] = 1.0f - wlf;
		const float *zs = z + (size_t)s * reg * an->hw;
		dfl += (lse[s] - zs[(size_t)tl[s] * an->hw]) * wl[s] + (lse[s] - zs[(size_t)(tl[s] + 1) * an->hw]) * wr[s];
	}
	st->dfl += dfl / 4.0 * wgt;
	if (!grad)
		return;
	// d(1 - ciou)/d box = -g; box x1 = ax - l, y1 = ay - t, x2 = ax + r, y2 = ay + b
	double d_ev[4] = {g[0] * gb * wgt, g[1] * gb * wgt, -g[2] * gb * wgt, -g[3] * gb * wgt};
	float *gz = grad[an->level] + base;
	for (uint32_t s = 0; s < 4; s++)
		for (uint32_t k = 0; k < reg; k++) {
			double v = d_ev[s] * p[s][k] * ((double)k - ev[s]);
			double ce = (wl[s] + wr[s]) * p[s][k] - (k == (uint32_t)tl[s] ? wl[s] : 0.0) -
			            (k == (uint32_t)tl[s] + 1 ? wr[s] : 0.0);
			v += gd * wgt / 4.0 * ce;
			gz[(size_t)(s * reg + k) * an->hw] += (float)v;
		}
}

// PyTorch's fp32 binary_cross_entropy_with_logits with pos_weight 1, in its operation order:
// (1 - t) * x + (log(exp(-m) + exp(-x - m)) + m), m = max(-x, 0). Near the initial class logits
// (about -10) the + m and the log of a value near 1 round with a bias that moves the summed class
// loss by ~1e-4 relative, so the official value needs this exact formula.
static float bce_f(float x, float t)
{
	float m = fmaxf(-x, 0.0f);
	return (1.0f - t) * x + (logf(expf(-m) + expf(-x - m)) + m);
}

// One head set: assignment per image, then the terms; gradients scaled by `scale` (batch size times
// the set weight) times the gains. Returns 0 or -ENOMEM.
static int run_set(const struct nn_loss_ctx *c, const float *const *maps, const float *const *amaps,
                   float *const *grad, bool exact, double scale, struct set_terms *st)
{
	const struct nn_loss_desc *d = c->d;
	uint32_t A = c->a, M = c->m ? c->m : 1, reg = d->reg_max;
	struct nn_loss_assign as[1] = {{0}};
	uint8_t *fg = malloc((size_t)d->n * A);
	uint32_t *gt = malloc((size_t)d->n * A * sizeof(uint32_t));
	float *score = malloc((size_t)d->n * A * sizeof(float));
	as->fg = malloc(A), as->gt = malloc(A * sizeof(uint32_t)), as->score = malloc(A * sizeof(float));
	as->overlap = malloc((size_t)M * A * sizeof(float)), as->align = malloc((size_t)M * A * sizeof(float));
	as->pos = malloc((size_t)M * A), as->pd_box = malloc((size_t)A * 4 * sizeof(float));
	as->pd_score = malloc(A * sizeof(float));
	int ret = -ENOMEM;
	if (!fg || !gt || !score || !as->fg || !as->gt || !as->score || !as->overlap || !as->align || !as->pos ||
	    !as->pd_box || !as->pd_score) {
		LOGE("loss: out of memory (assigner, %u anchors x %u gts)", A, M);
		goto fail;
	}
	memset(st, 0, sizeof(*st));
	double tsum = 0.0;
	for (uint32_t img = 0; img < d->n; img++) {
		nn_loss_assign(c, amaps, img, as);
		memcpy(fg + (size_t)img * A, as->fg, A);
		memcpy(gt + (size_t)img * A, as->gt, A * sizeof(uint32_t));
		memcpy(score + (size_t)img * A, as->score, A * sizeof(float));
		for (uint32_t a = 0; a < A; a++)
			if (as->fg[a]) {
				tsum += as->score[a];
				st->n_fg++;
			}
	}
	st->s = tsum;
	double S = tsum > 1.0 ? tsum : 1.0;
	double gc = scale * GAIN_CLS / S, gb = scale * GAIN_BOX / S, gd = scale * GAIN_DFL / S;
	for (uint32_t l = 0; grad && l < d->nl; l++)
		memset(grad[l], 0, (size_t)d->n * c->no * d->h[l] * d->w[l] * sizeof(float));

	// class BCE with logits on every anchor and class (targets: the soft score on the assigned class)
	for (uint32_t img = 0; img < d->n; img++)
		for (uint32_t a = 0; a < A; a++) {
			const struct nn_loss_anchor *an = &c->anc[a];
			size_t i = (size_t)img * A + a;
			int32_t lab = fg[i] ? c->gt_cls[(size_t)img * c->m + gt[i]] : -1;
			for (uint32_t k = 0; k < d->nc; k++) {
				double x = nn_loss_map(c, maps, an, img, 4 * reg + k);
				double t = (int32_t)k == lab ? score[i] : 0.0;
				st->cls += exact ? (1.0 - t) * x + fmax(-x, 0.0) + log1p(exp(-fabs(x))) : bce_f((float)x, (float)t);
				if (grad)
					grad[an->level][((size_t)img * c->no + 4 * reg + k) * an->hw + an->pix] =
						(float)(gc * (1.0 / (1.0 + exp(-x)) - t));
			}
		}

	for (uint32_t img = 0; img < d->n; img++)
		for (uint32_t a = 0; a < A; a++) {
			size_t i = (size_t)img * A + a;
			if (fg[i])
				fg_anchor(c, maps, amaps, grad, img, a, c->gt_box + ((size_t)img * c->m + gt[i]) * 4, score[i], st, gb, gd);
		}
	st->cls /= S, st->box /= S, st->dfl /= S;
	ret = 0;
fail:
	assign_free(as);
	free(fg), free(gt), free(score);
	return ret;
}

static int loss_sets(const struct nn_loss_desc *d, uint32_t sets, const float *const *maps, const float *targets,
                     uint32_t n_targets, struct nn_loss_out *out)
{
	int ret = check_desc(d, sets, maps);
	if (ret)
		return ret;
	if (n_targets && !targets) {
		LOGE("loss: %u targets but no target array", n_targets);
		return -EINVAL;
	}
	struct nn_loss_ctx c;
	if ((ret = ctx_init(&c, d, targets, n_targets)))
		return ret;
	double items[3] = {0};
	for (uint32_t s = 0; s < sets; s++) {
		double w = sets == 2 && s == 0 ? AUX_WEIGHT : 1.0;
		struct set_terms st;
		const float *const *amaps = (out->assign_maps ? out->assign_maps : maps) + s * d->nl;
		if ((ret = run_set(&c, maps + s * d->nl, amaps, out->grad ? out->grad + s * d->nl : NULL, out->exact_bce,
		                   d->n * w, &st)))
			goto fail;
		items[0] += w * st.box, items[1] += w * st.cls, items[2] += w * st.dfl;
		out->n_fg[s] = st.n_fg;
		out->target_sum[s] = (float)st.s;
	}
	items[0] *= GAIN_BOX, items[1] *= GAIN_CLS, items[2] *= GAIN_DFL;
	for (int k = 0; k < 3; k++)
		out->items[k] = items[k];
	out->loss = (items[0] + items[1] + items[2]) * d->n;
fail:
	ctx_free(&c);
	return ret;
}

int nn_loss_tal(const struct nn_loss_desc *d, const float *const *maps, const float *targets, uint32_t n_targets,
                struct nn_loss_out *out)
{
	return loss_sets(d, 1, maps, targets, n_targets, out);
}

int nn_loss_tal_dual(const struct nn_loss_desc *d, const float *const *maps, const float *targets,
                     uint32_t n_targets, struct nn_loss_out *out)
{
	return loss_sets(d, 2, maps, targets, n_targets, out);
}
