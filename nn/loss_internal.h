// Shared between the loss files (loss_tal.c driver, loss_assign.c TaskAlignedAssigner, loss_box.c
// CIoU and DFL). Not part of the nn API.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "loss.h"

#define NN_LOSS_TOPK 10
#define NN_LOSS_ALPHA 0.5f // align metric = score^alpha * overlap^beta
#define NN_LOSS_BETA 6.0f
#define NN_LOSS_ASSIGN_EPS 1e-9f
#define NN_LOSS_IOU_EPS 1e-7f

// Anchor a: centre (x, y) in grid units of its level (grid + 0.5), the level's stride, and where its
// values sit in the level map (pixel index pix of an h x w map of hw pixels).
struct nn_loss_anchor {
	float x, y, stride;
	uint32_t level;
	size_t pix, hw;
};

struct nn_loss_ctx {
	const struct nn_loss_desc *d;
	uint32_t no;                 // 4 * reg_max + nc channels per map
	uint32_t a;                  // anchors over all levels
	struct nn_loss_anchor *anc;  // [a]
	uint32_t m;                  // gt rows per image (the most targets of any image; padded)
	float *gt_box;               // [n][m][4] xyxy input pixels (padded rows 0)
	int32_t *gt_cls;             // [n][m] (padded rows 0)
	uint8_t *gt_valid;           // [n][m] mask_gt: x1 + y1 + x2 + y2 > 0
};

// Value of channel ch of anchor an in image img of the level maps.
static inline float nn_loss_map(const struct nn_loss_ctx *c, const float *const *maps,
                                const struct nn_loss_anchor *an, uint32_t img, uint32_t ch)
{
	return maps[an->level][((size_t)img * c->no + ch) * an->hw + an->pix];
}

// Assignment of one image: fg[a], assigned gt index gt[a] (0 for background like the official
// argmax), soft target value score[a] of the assigned class. Scratch buffers of m * a entries.
struct nn_loss_assign {
	uint8_t *fg;
	uint32_t *gt;
	float *score;
	float *overlap, *align; // [m][a]
	uint8_t *pos;           // [m][a]
	float *pd_box;          // [a][4] decoded predictions, input pixels (fp32 like the official)
	float *pd_score;        // [a] scratch
};

// TaskAlignedAssigner for image img of one set (no gradient; fp32 in the official operation order).
void nn_loss_assign(const struct nn_loss_ctx *c, const float *const *maps, uint32_t img, struct nn_loss_assign *as);

// bbox_iou(b1, b2, xywh=False, CIoU=True) in fp32 with the official operation order.
float nn_loss_ciou_f(const float b1[4], const float b2[4]);
// CIoU(p, t) in double and its gradient g = d CIoU / d p (xyxy), the aspect term's alpha held
// constant like the official no_grad block: alpha = *alpha_in, or computed from p when NULL. With
// g == NULL it returns that alpha instead (for the detached predictions).
double nn_loss_ciou_grad(const double p[4], const double t[4], const double *alpha_in, double g[4]);

// DFL expectation of reg bins z[k * pitch] in fp32 (softmax then dot with 0..reg-1, the official
// bbox_decode order).
float nn_loss_dfl_expect_f(const float *z, size_t pitch, uint32_t reg);
// Softmax of the bins in double: fills p[reg], returns the expectation; *lse = log-sum-exp.
double nn_loss_dfl_softmax(const float *z, size_t pitch, uint32_t reg, double *p, double *lse);
