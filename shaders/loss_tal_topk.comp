#version 450
// TAL loss, step 2: one workgroup per (gt j, image). Metric of every anchor = align metric
// sqrt(sigmoid(class logit)) * max(CIoU(gt, pred), 0)^6 when the anchor centre lies inside the gt,
// else 0; the 10 largest (ties: lower anchor index, as torch.topk gives on CPU) that lie inside the
// gt are its positives: each adds 1 to W_CNT of the anchor and lowers W_FIRST to j (integer atomics,
// order-independent). Padded rows and invalid gts (box sum <= 0) take none.
// Bindings, push, layouts: shaders/include/loss_tal.glsl. Spec 0: workgroup size (power of two).
// Grid: MT x n x 1. CPU reference: the metric and top_k loops of nn_loss_assign (nn/loss_assign.c).
layout(local_size_x_id = 0) in;
#include "loss_tal.glsl"

#define K 10
shared float sm[gl_WorkGroupSize.x];
shared uint si[gl_WorkGroupSize.x];
shared uint sel[K];

vec2 anchor_centre(uint a)
{
	uint l = anchor_level(a), pix = a - P_LA(l);
	float st = P_LS(l);
	return vec2((float(pix % P_LW(l)) + 0.5) * st, (float(pix / P_LW(l)) + 0.5) * st);
}

void main()
{
	uint j = gl_WorkGroupID.x, img = gl_WorkGroupID.y, lid = gl_LocalInvocationID.x;
	uint row = GT_ROW(img, j);
	if (j >= P_COUNT(img) || T[row + 5] == 0u) // uniform over the workgroup
		return;
	vec4 g = gt_box(row);
	uint cls = T[row + 4], A = P_A;
	float km[K];
	uint ki[K], cnt = 0;
	for (uint a = lid; a < A; a += gl_WorkGroupSize.x) {
		float m = 0.0;
		if (inside_gt(anchor_centre(a), g)) {
			uint l = anchor_level(a), hw = P_LH(l) * P_LW(l), pix = a - P_LA(l);
			float z = map_load(l, (img * P_NO + 4 * P_REG + cls) * hw + pix);
			m = align_metric(g, pred_box(pc.base, img * A + a), z).y;
		}
		if (cnt < K)
			cnt++;
		else if (!(m > km[K - 1]))
			continue;
		uint p = cnt - 1;
		while (p > 0 && m > km[p - 1]) {
			km[p] = km[p - 1];
			ki[p] = ki[p - 1];
			p--;
		}
		km[p] = m;
		ki[p] = a;
	}
	// K rounds of a workgroup arg-max over each invocation's next candidate
	uint ptr = 0, k_total = min(uint(K), A);
	for (uint r = 0; r < k_total; r++) {
		sm[lid] = ptr < cnt ? km[ptr] : -1.0;
		si[lid] = ptr < cnt ? ki[ptr] : 0xffffffffu;
		barrier();
		for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
			if (lid < s) {
				float mo = sm[lid + s];
				uint io = si[lid + s];
				if (mo > sm[lid] || (mo == sm[lid] && io < si[lid])) {
					sm[lid] = mo;
					si[lid] = io;
				}
			}
			barrier();
		}
		uint win = si[0];
		if (ptr < cnt && ki[ptr] == win)
			ptr++;
		if (lid == 0)
			sel[r] = win;
		barrier();
	}
	if (lid < k_total) {
		uint a = sel[lid];
		if (inside_gt(anchor_centre(a), g)) {
			atomicAdd(W[W_CNT(pc.base) + img * A + a], 1u);
			atomicMin(W[W_FIRST(pc.base) + img * A + a], j);
		}
	}
}
