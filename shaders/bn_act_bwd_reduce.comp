#version 450
// BN + activation backward, pass 1 of 3: per-channel partial sums S1 = sum du and S2 = sum du * xhat
// over one chunk of one plane (du = dy * act'(u), u recomputed from z, the batch statistics, gamma,
// beta and r). One invocation per chunk, summing its elements in order into four interleaved sums
// (no shared memory, no barriers; deterministic).
// Bindings (0, 5 and 6 are texel buffers, vec4 texels when VEC4): 0 z dense [n, c, h, w], 1 gamma, 2 beta, 3 mean, 4 var [c], 5 r (residual slice; any
// buffer unless RES == before and ACT != none), 6 dy (y slice) (all read; z, r, dy aliased as vec4
// when VEC4), 7 scratch (write: pair (ch * n + b) * cpp + j of (S1, S2) for chunk j of plane (b, ch)).
// Push: include/bn_act_bwd.glsl. Spec: 0 workgroup size, 1 ACT (enum nn_act), 2 RES (0 none,
// 1 before, 2 after), 3 VEC4 (hw % 4 == 0 and the slices 16-byte aligned).
// Grid: ceil(work / wg) x 1 x 1, folded into y past the x limit (gx = groups_x).
// CPU reference: nn_conv2d_act_backward_ref + nn_bn_backward_ref (sg, sgx) (nn/ref/).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int ACT = 0;
layout(constant_id = 2) const int RES = 0;
layout(constant_id = 3) const bool VEC4 = false;
#include "bn_act.glsl"
#include "bn_act_bwd.glsl"
layout(std430, binding = 7) writeonly buffer S { vec2 part[]; };

void main()
{
	uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	if (i >= pc.work)
		return;
	bn_chunk k = bn_chunk_of(i);
	bn_chan q = bn_chan_of(k.ch);
	vec4 s1 = vec4(0.0), s2 = vec4(0.0); // four interleaved running sums each (shorter chains)
	for (uint p = k.p0; p < k.p1; p += 4) {
		vec4 g, xhat, du;
		bn_act_grad4(q, k.b, k.ch, p, k.p1 - p, g, xhat, du);
		s1 += du;
		s2 += du * xhat;
	}
	vec2 acc = vec2((s1.x + s1.y) + (s1.z + s1.w), (s2.x + s2.y) + (s2.z + s2.w));
	part[(k.ch * (pc.work / (pc.c * pc.cpp)) + k.b) * pc.cpp + k.j] = acc;
}
