#version 450
// The rest of a BN conv op's training forward, element-wise over dense z [n, c, h, w], one chunk of
// one plane per invocation (the channel's parameters loaded once):
// u = (z - mean) / sqrt(var + eps) * gamma + beta [+ r when RES == before]; y = act(u) [+ r when
// RES == after], y and r channel slices of bigger tensors.
// Bindings (0 and 5 are texel buffers, vec4 texels when VEC4): 0 z (read), 1 gamma [c], 2 beta [c], 3 mean [c], 4 var [c] (read), 5 r (read; any buffer
// when RES == none), 6 y (write); z, r, y aliased as vec4 when VEC4. Push: struct Push (the first
// twelve words of include/bn_act_bwd.glsl's). Spec: 0 workgroup size, 1 ACT (enum nn_act), 2 RES
// (0 none, 1 before the activation, 2 after), 3 VEC4 (hw % 4 == 0 and the slices 16-byte aligned).
// Grid: ceil(work / wg) x 1 x 1, folded into y past the x limit (gx = groups_x).
// CPU reference: nn_bn_forward_ref (nn/ref/bn.c) + the epilogue of nn_conv2d_forward_ref.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int ACT = 0;
layout(constant_id = 2) const int RES = 0;
layout(constant_id = 3) const bool VEC4 = false;
#include "bn_act.glsl"
READONLY_F32(0, z_t) // texel buffers unless SSBO_READS (include/reads.glsl)
layout(std430, binding = 1) readonly buffer G { float gamma[]; };
layout(std430, binding = 2) readonly buffer B { float beta[]; };
layout(std430, binding = 3) readonly buffer M { float mean[]; };
layout(std430, binding = 4) readonly buffer V { float var[]; };
READONLY_F32(5, r_t)
layout(std430, binding = 6) writeonly buffer Y { float y[]; };
layout(std430, binding = 6) writeonly buffer Y4 { vec4 y4[]; };
layout(push_constant) uniform Push {
	uint work; // invocations: n * c * cpp
	uint c, hw;
	uint y_c_total, y_c_off, r_c_total, r_c_off;
	float eps;
	uint chunk; // elements of one plane per invocation (a multiple of 4)
	uint cpp;   // chunks per plane: ceil(hw / chunk)
} pc;

void main()
{
	uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	if (i >= pc.work)
		return;
	uint plane = i / pc.cpp, j = i - plane * pc.cpp;
	uint n = plane / pc.c, ch = plane - n * pc.c;
	uint p0 = j * pc.chunk, p1 = min(p0 + pc.chunk, pc.hw);
	float mu = mean[ch], inv = 1.0 / sqrt(var[ch] + pc.eps), gm = gamma[ch], bt = beta[ch];
	uint zb = plane * pc.hw, yb = (n * pc.y_c_total + pc.y_c_off + ch) * pc.hw;
	uint rb = (n * pc.r_c_total + pc.r_c_off + ch) * pc.hw;
	for (uint p = p0; p < p1; p += 4) {
		uint left = p1 - p;
		vec4 u = (BN_TLOAD4(z_t, zb + p, left) - mu) * inv * gm + bt;
		vec4 rv = RES != RES_NONE ? BN_TLOAD4(r_t, rb + p, left) : vec4(0.0);
		if (RES == RES_BEFORE)
			u += rv;
		vec4 v = act_apply(ACT, u);
		if (RES == RES_AFTER)
			v += rv;
		BN_STORE4(y, y4, yb + p, left, v)
	}
}
