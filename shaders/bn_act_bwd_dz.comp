#version 450
// BN + activation backward, pass 3 of 3, element-wise over one chunk of one plane per invocation:
// du = dy * act'(u) recomputed, then dz = gamma / sqrt(var + eps) * (du - S1 / m - xhat * S2 / m)
// (dense, overwritten) with the channel sums of bn_act_bwd_finalize, and the residual's gradient
// dr += du (RES == before) or dy (after).
// Bindings: 0..6 as bn_act_bwd_reduce (read), 7 scratch (read: pairs at stats_off), 8 dz dense
// (write), 9 dr (residual slice, read-write; any buffer when !HAS_DR); dz and dr aliased as vec4 when
// VEC4. Push: include/bn_act_bwd.glsl. Spec: 0 workgroup size, 1 ACT, 2 RES, 3 VEC4, 4 HAS_DR.
// Grid: ceil(work / wg) x 1 x 1, folded into y past the x limit (gx = groups_x).
// CPU reference: nn_conv2d_act_backward_ref + nn_bn_backward_ref (train) (nn/ref/).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int ACT = 0;
layout(constant_id = 2) const int RES = 0;
layout(constant_id = 3) const bool VEC4 = false;
layout(constant_id = 4) const bool HAS_DR = false;
#include "bn_act.glsl"
#include "bn_act_bwd.glsl"
layout(std430, binding = 7) readonly buffer S { float scratch[]; };
layout(std430, binding = 8) writeonly buffer DZ { float dz[]; };
layout(std430, binding = 8) writeonly buffer DZ4 { vec4 dz4[]; };
layout(std430, binding = 9) buffer DR { float dr[]; };
layout(std430, binding = 9) buffer DR4 { vec4 dr4[]; };

void main()
{
	uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	if (i >= pc.work)
		return;
	bn_chunk k = bn_chunk_of(i);
	bn_chan q = bn_chan_of(k.ch);
	float s1 = scratch[pc.stats_off + 2 * k.ch] * pc.inv_m, s2 = scratch[pc.stats_off + 2 * k.ch + 1] * pc.inv_m;
	float a = gamma[k.ch] * q.inv;
	uint zb = (k.b * pc.c + k.ch) * pc.hw, rb = (k.b * pc.r_c_total + pc.r_c_off + k.ch) * pc.hw;
	for (uint p = k.p0; p < k.p1; p += 4) {
		uint left = k.p1 - p;
		vec4 g, xhat, du;
		bn_act_grad4(q, k.b, k.ch, p, left, g, xhat, du);
		vec4 v = a * (du - s1 - xhat * s2);
		BN_STORE4(dz, dz4, zb + p, left, v)
		if (HAS_DR && RES != RES_NONE) {
			vec4 o = BN_LOAD4(dr, dr4, rb + p, left) + (RES == RES_BEFORE ? du : g);
			BN_STORE4(dr, dr4, rb + p, left, o)
		}
	}
}
