#version 450
// BatchNorm batch statistics, pass 1 of 2: per chunk of one plane (b, ch) of dense z [n, c, h, w],
// the (mean, M2) of its values minus the channel's first value z[0, ch, 0, 0] (the shift keeps the
// mean's rounding relative to the spread, not to the mean; M2: sum of squared deviations), folded
// sequentially 4 values at a time with Chan's pairwise update (no sum-of-squares cancellation). One invocation per chunk, no shared
// memory, no barriers; bn_stats_merge combines the chunks of a channel in a fixed order.
// Bindings: 0 z f32 (read; a texel buffer of vec4 texels when VEC4, floats otherwise), 1 part vec2 (write: (mean, M2) of chunk j of
// plane (b, ch) at (ch * n + b) * cpp + j). Push: struct Push (include/bn_stats.glsl).
// Spec: 0 workgroup size, 1 VEC4 (hw % 4 == 0, chunk % 4 == 0 and z 16-byte aligned).
// Grid: ceil(n * c * cpp / wg) x 1 x 1, folded into y past the x limit (gx = groups_x).
// CPU reference: nn_bn_stats_ref (nn/ref/bn.c).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const bool VEC4 = false;
#include "bn_stats.glsl"
#include "reads.glsl"
READONLY_F32(0, z_t) // R32G32B32A32 texels when VEC4, else R32 (storage buffer with SSBO_READS)
#define Z1(i) (VEC4 ? FETCH_F32_OF4(z_t, i) : FETCH_F32(z_t, i))
layout(std430, binding = 1) writeonly buffer P { vec2 part[]; };

void main()
{
	uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	if (i >= pc.n * pc.c * pc.cpp)
		return;
	uint plane = i / pc.cpp, j = i - plane * pc.cpp;
	uint b = plane / pc.c, ch = plane - b * pc.c;
	uint p = j * pc.chunk, p1 = min(p + pc.chunk, pc.hw), base = plane * pc.hw;
	float shift = Z1(ch * pc.hw), cnt = 0.0, mu = 0.0, m2 = 0.0;
	for (; p + 4 <= p1; p += 4) {
		vec4 a = VEC4 ? FETCH_VEC4(z_t, (base + p) >> 2) : vec4(Z1(base + p), Z1(base + p + 1), Z1(base + p + 2), Z1(base + p + 3));
		a -= shift;
		float mb = (a.x + a.y + a.z + a.w) * 0.25;
		vec4 d = a - mb;
		bn_merge(cnt, mu, m2, 4.0, mb, d.x * d.x + d.y * d.y + d.z * d.z + d.w * d.w);
	}
	for (; p < p1; p++)
		bn_merge(cnt, mu, m2, 1.0, Z1(base + p) - shift, 0.0);
	part[(ch * pc.n + b) * pc.cpp + j] = vec2(mu, m2);
}
