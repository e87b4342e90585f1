#version 450
// TAL loss, step 1 of each head set: the detached predicted boxes of every (image, anchor) for the
// assigner: DFL expectation per side (softmax over reg_max bins, then the dot with 0..reg_max-1 in
// the official order), xyxy around the anchor centre (grid + 0.5), times the level stride.
// Bindings, push, layouts: shaders/include/loss_tal.glsl; writes W_PD. Spec 0: workgroup size.
// Grid: ceil(n*A / wg) x 1 x 1. CPU reference: decode_preds in nn/loss_assign.c.
layout(local_size_x_id = 0) in;
#include "loss_tal.glsl"

void main()
{
	uint i = gl_GlobalInvocationID.x;
	if (i >= P_N * P_A)
		return;
	uint img = i / P_A, a = i % P_A, l = anchor_level(a);
	uint hw = P_LH(l) * P_LW(l), pix = a - P_LA(l), reg = P_REG;
	uint base = img * P_NO * hw + pix;
	float dist[4];
	for (uint s = 0; s < 4; s++) {
		uint b = base + s * reg * hw;
		float m = map_load(l, b);
		for (uint k = 1; k < reg; k++)
			m = max(m, map_load(l, b + k * hw));
		float sum = 0.0;
		for (uint k = 0; k < reg; k++)
			sum += exp(map_load(l, b + k * hw) - m);
		float ev = 0.0;
		for (uint k = 0; k < reg; k++)
			ev += exp(map_load(l, b + k * hw) - m) / sum * float(k);
		dist[s] = ev;
	}
	float ax = float(pix % P_LW(l)) + 0.5, ay = float(pix / P_LW(l)) + 0.5, st = P_LS(l);
	uint o = W_PD(pc.base) + 4 * i;
	W[o] = floatBitsToUint((ax - dist[0]) * st);
	W[o + 1] = floatBitsToUint((ay - dist[1]) * st);
	W[o + 2] = floatBitsToUint((ax + dist[2]) * st);
	W[o + 3] = floatBitsToUint((ay + dist[3]) * st);
}
