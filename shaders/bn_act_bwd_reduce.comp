#version 450
// BN + activation backward, pass 1 of 3: per-channel partial sums S1 = sum du and S2 = sum du * xhat
// over one chunk of one plane (du = dy * act'(u), u recomputed from z, the batch statistics, gamma,
// beta and r). Fixed-order shared-memory tree: deterministic, no atomics.
// Bindings: 0 z dense [n, c, h, w], 1 gamma, 2 beta, 3 mean, 4 var [c], 5 r (residual slice; any
// buffer unless RES == before and ACT != none), 6 dy (y slice) (all read), 7 scratch (write: pair
// ((ch * n + b) * gx + chunk index) of (S1, S2)). Push: include/bn_act_bwd.glsl.
// Spec: 0 workgroup size (power of two), 1 ACT (enum nn_act), 2 RES (0 none, 1 before, 2 after).
// Grid: gx = ceil(hw / chunk) x n x c.
// CPU reference: nn_conv2d_act_backward_ref + nn_bn_backward_ref (sg, sgx) (nn/ref/).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int ACT = 0;
layout(constant_id = 2) const int RES = 0;
#include "bn_act.glsl"
#include "bn_act_bwd.glsl"
layout(std430, binding = 7) writeonly buffer S { vec2 part[]; };

shared vec2 s_sum[gl_WorkGroupSize.x];

void main()
{
	uint lid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
	uint b = gl_WorkGroupID.y, ch = gl_WorkGroupID.z;
	uint p0 = gl_WorkGroupID.x * pc.chunk, p1 = min(p0 + pc.chunk, pc.hw);
	vec2 acc = vec2(0.0);
	for (uint p = p0 + lid; p < p1; p += wg) {
		float g, xhat, du;
		bn_act_grad_at(b, ch, p, g, xhat, du);
		acc += vec2(du, du * xhat);
	}
	s_sum[lid] = acc;
	barrier();
	for (uint s = wg / 2; s > 0; s >>= 1) {
		if (lid < s)
			s_sum[lid] += s_sum[lid + s];
		barrier();
	}
	if (lid == 0)
		part[(ch * gl_NumWorkGroups.y + b) * gl_NumWorkGroups.x + gl_WorkGroupID.x] = s_sum[0];
}
