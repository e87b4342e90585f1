#version 450
// BatchNorm batch statistics, pass 2 of 2: per channel, the (mean, M2) partials of bn_stats merged
// in index order (batch, then chunk; deterministic) into the mean and the biased variance M2 / m.
// Bindings: 0 part vec2 (read), 1 mean [c] f32 (write), 2 var [c] f32 (write).
// Push: struct Push (include/bn_stats.glsl). Spec: 0 workgroup size. Grid: ceil(c / wg) x 1 x 1.
// CPU reference: nn_bn_stats_ref (nn/ref/bn.c).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
#include "bn_stats.glsl"
layout(std430, binding = 0) readonly buffer P { vec2 part[]; };
layout(std430, binding = 1) writeonly buffer M { float mean_out[]; };
layout(std430, binding = 2) writeonly buffer V { float var_out[]; };

void main()
{
	uint ch = gl_GlobalInvocationID.x;
	if (ch >= pc.c)
		return;
	float cnt = 0.0, mu = 0.0, m2 = 0.0;
	uint at = ch * pc.n * pc.cpp, last = pc.hw - (pc.cpp - 1) * pc.chunk;
	for (uint b = 0; b < pc.n; b++)
		for (uint j = 0; j < pc.cpp; j++, at++) {
			vec2 q = part[at];
			bn_merge(cnt, mu, m2, float(j + 1 < pc.cpp ? pc.chunk : last), q.x, q.y);
		}
	mean_out[ch] = mu;
	var_out[ch] = cnt > 0.0 ? m2 / cnt : 0.0;
}
