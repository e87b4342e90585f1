#version 450
// The rest of a BN conv op's training forward, element-wise over dense z [n, c, h, w]:
// u = (z - mean) / sqrt(var + eps) * gamma + beta [+ r when RES == before]; y = act(u) [+ r when
// RES == after], y and r channel slices of bigger tensors.
// Bindings: 0 z (read), 1 gamma [c], 2 beta [c], 3 mean [c], 4 var [c] (read), 5 r (read; any buffer
// when RES == none), 6 y (write). Push: struct Push. Spec: 0 workgroup size, 1 ACT (enum nn_act),
// 2 RES (0 none, 1 before the activation, 2 after).
// Grid: ceil(count / wg) x 1 x 1, folded into y past the x limit (gx = groups_x).
// CPU reference: nn_bn_forward_ref (nn/ref/bn.c) + the epilogue of nn_conv2d_forward_ref.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int ACT = 0;
layout(constant_id = 2) const int RES = 0;
#include "bn_act.glsl"
layout(std430, binding = 0) readonly buffer Z { float z[]; };
layout(std430, binding = 1) readonly buffer G { float gamma[]; };
layout(std430, binding = 2) readonly buffer B { float beta[]; };
layout(std430, binding = 3) readonly buffer M { float mean[]; };
layout(std430, binding = 4) readonly buffer V { float var[]; };
layout(std430, binding = 5) readonly buffer R { float r[]; };
layout(std430, binding = 6) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push {
	uint count; // n * c * hw
	uint c, hw;
	uint y_c_total, y_c_off, r_c_total, r_c_off;
	float eps;
} pc;

void main()
{
	uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	if (i >= pc.count)
		return;
	uint p = i % pc.hw, t = i / pc.hw;
	uint ch = t % pc.c, n = t / pc.c;
	float inv = 1.0 / sqrt(var[ch] + pc.eps);
	float u = (z[i] - mean[ch]) * inv * gamma[ch] + beta[ch];
	float rv = RES != RES_NONE ? r[(n * pc.r_c_total + pc.r_c_off + ch) * pc.hw + p] : 0.0;
	if (RES == RES_BEFORE)
		u += rv;
	float v = act_apply(ACT, u);
	if (RES == RES_AFTER)
		v += rv;
	y[(n * pc.y_c_total + pc.y_c_off + ch) * pc.hw + p] = v;
}
