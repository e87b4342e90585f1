#version 450
// TAL loss, step 3: per (image, anchor), the assigned gt: none (no top-k positive), the one gt that
// chose it, or, when several did, the gt of largest overlap max(CIoU, 0) over all the image's gts
// (first on ties, like argmax). Stores the gt index, its overlap and align metric, and raises the
// gt's largest metric and overlap over its positives (W_TMAX, W_OMAX: atomicMax on the bits of
// non-negative floats, order-independent).
// Bindings, push, layouts: shaders/include/loss_tal.glsl. Spec 0: workgroup size.
// Grid: ceil(n*A / wg) x 1 x 1. CPU reference: the conflict loop of nn_loss_assign.
layout(local_size_x_id = 0) in;
#include "loss_tal.glsl"

void main()
{
	uint i = gl_GlobalInvocationID.x;
	if (i >= P_N * P_A)
		return;
	uint img = i / P_A, a = i % P_A, b = pc.base;
	uint c = W[W_CNT(b) + i];
	if (c == 0u) {
		W[W_GT(b) + i] = NO_GT;
		return;
	}
	vec4 p = pred_box(b, i);
	uint j = W[W_FIRST(b) + i];
	if (c > 1u) {
		j = 0;
		float best = max(ciou_f(gt_box(GT_ROW(img, 0)), p), 0.0);
		for (uint k = 1; k < P_COUNT(img); k++) {
			float o = max(ciou_f(gt_box(GT_ROW(img, k)), p), 0.0);
			if (o > best) {
				best = o;
				j = k;
			}
		}
	}
	uint row = GT_ROW(img, j), l = anchor_level(a), hw = P_LH(l) * P_LW(l);
	float z = map_load(l, (img * P_NO + 4 * P_REG + T[row + 4]) * hw + (a - P_LA(l)));
	vec2 oa = align_metric(gt_box(row), p, z);
	W[W_GT(b) + i] = j;
	W[W_OV(b) + i] = floatBitsToUint(oa.x);
	W[W_AL(b) + i] = floatBitsToUint(oa.y);
	atomicMax(W[W_TMAX(b) + img * P_MT + j], floatBitsToUint(oa.y));
	atomicMax(W[W_OMAX(b) + img * P_MT + j], floatBitsToUint(oa.x));
}
