#version 450
// BN + activation backward, pass 3 of 3, element-wise: du = dy * act'(u) recomputed, then
// dz = gamma / sqrt(var + eps) * (du - S1 / m - xhat * S2 / m) (dense, overwritten) with the channel
// sums of bn_act_bwd_finalize, and the residual's gradient dr += du (RES == before) or dy (after).
// Bindings: 0..6 as bn_act_bwd_reduce (read), 7 scratch (read: pairs at stats_off), 8 dz dense
// (write), 9 dr (residual slice, read-write; any buffer when !HAS_DR).
// Push: include/bn_act_bwd.glsl. Spec: 0 workgroup size, 1 ACT, 2 RES, 3 HAS_DR.
// Grid: ceil(count / wg) x 1 x 1, folded into y past the x limit (gx = groups_x).
// CPU reference: nn_conv2d_act_backward_ref + nn_bn_backward_ref (train) (nn/ref/).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int ACT = 0;
layout(constant_id = 2) const int RES = 0;
layout(constant_id = 3) const bool HAS_DR = false;
#include "bn_act.glsl"
#include "bn_act_bwd.glsl"
layout(std430, binding = 7) readonly buffer S { float scratch[]; };
layout(std430, binding = 8) writeonly buffer DZ { float dz[]; };
layout(std430, binding = 9) buffer DR { float dr[]; };

void main()
{
	uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	if (i >= pc.count)
		return;
	uint p = i % pc.hw, t = i / pc.hw;
	uint ch = t % pc.c, n = t / pc.c;
	float g, xhat, du;
	bn_act_grad_at(n, ch, p, g, xhat, du);
	float s1 = scratch[pc.stats_off + 2 * ch], s2 = scratch[pc.stats_off + 2 * ch + 1];
	float a = gamma[ch] / sqrt(var[ch] + pc.eps);
	dz[i] = a * (du - s1 * pc.inv_m - xhat * (s2 * pc.inv_m));
	if (HAS_DR && RES != RES_NONE)
		dr[(n * pc.r_c_total + pc.r_c_off + ch) * pc.hw + p] += RES == RES_BEFORE ? du : g;
}
