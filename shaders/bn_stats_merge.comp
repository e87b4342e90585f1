#version 450
// BatchNorm batch statistics, pass 2 of 2: per channel, the (mean, M2) partials of bn_stats merged
// in index order (batch, then chunk; blocks of 16 merged first, then the blocks: shorter rounding
// chains; deterministic) into the mean (plus the shift z[0, ch, 0, 0]) and the biased variance M2 / m.
// Bindings: 0 part vec2 (read), 1 mean [c] f32 (write), 2 var [c] f32 (write), 3 z (read).
// Push: struct Push (include/bn_stats.glsl). Spec: 0 workgroup size. Grid: ceil(c / wg) x 1 x 1.
// CPU reference: nn_bn_stats_ref (nn/ref/bn.c).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
#include "bn_stats.glsl"
layout(std430, binding = 0) readonly buffer P { vec2 part[]; };
layout(std430, binding = 1) writeonly buffer M { float mean_out[]; };
layout(std430, binding = 2) writeonly buffer V { float var_out[]; };
layout(std430, binding = 3) readonly buffer Z { float z[]; };

void main()
{
	uint ch = gl_GlobalInvocationID.x;
	if (ch >= pc.c)
		return;
	float cnt = 0.0, mu = 0.0, m2 = 0.0;
	uint at = ch * pc.n * pc.cpp, end = at + pc.n * pc.cpp, last = pc.hw - (pc.cpp - 1) * pc.chunk;
	for (uint j = 0; at < end;) {
		float bc = 0.0, bm = 0.0, b2 = 0.0;
		for (uint k = 0; k < 16 && at < end; k++, at++) {
			vec2 q = part[at];
			bn_merge(bc, bm, b2, float(j + 1 < pc.cpp ? pc.chunk : last), q.x, q.y);
			j = j + 1 < pc.cpp ? j + 1 : 0;
		}
		bn_merge(cnt, mu, m2, bc, bm, b2);
	}
	mean_out[ch] = mu + z[ch * pc.hw];
	var_out[ch] = cnt > 0.0 ? m2 / cnt : 0.0;
}
