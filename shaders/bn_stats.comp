#version 450
// BatchNorm batch statistics: per channel c of dense z [n, c, h, w], the mean and the biased
// variance over the m = n*h*w values. One workgroup per channel: each invocation folds its values
// (4 at a time) into a running (count, mean, M2) with Chan's pairwise update, then a shared-memory
// tree merges the invocations in a fixed order (deterministic, no atomics; no sum-of-squares
// cancellation).
// Bindings: 0 z f32 (read), 1 mean [c] f32 (write), 2 var [c] f32 (write). Push: struct Push.
// Spec: 0 workgroup size (power of two). Grid: c x 1 x 1.
// CPU reference: nn_bn_stats_ref (nn/ref/bn.c).
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer Z { float z[]; };
layout(std430, binding = 1) writeonly buffer M { float mean_out[]; };
layout(std430, binding = 2) writeonly buffer V { float var_out[]; };
layout(push_constant) uniform Push {
	uint n, c, hw;
} pc;

shared float s_cnt[gl_WorkGroupSize.x], s_mean[gl_WorkGroupSize.x], s_m2[gl_WorkGroupSize.x];

// (na, ma, m2a) <- merge with (nb, mb, m2b): count, mean, sum of squared deviations.
void merge(inout float na, inout float ma, inout float m2a, float nb, float mb, float m2b)
{
	if (nb == 0.0)
		return;
	float nt = na + nb, f = nb / nt, delta = mb - ma;
	ma += delta * f;
	m2a += m2b + delta * delta * na * f;
	na = nt;
}

void main()
{
	uint lid = gl_LocalInvocationID.x, ch = gl_WorkGroupID.x, wg = gl_WorkGroupSize.x;
	float cnt = 0.0, mu = 0.0, m2 = 0.0;
	for (uint b = 0; b < pc.n; b++) {
		uint base = (b * pc.c + ch) * pc.hw, i = lid;
		for (; i + 3 * wg < pc.hw; i += 4 * wg) {
			float a0 = z[base + i], a1 = z[base + i + wg], a2 = z[base + i + 2 * wg], a3 = z[base + i + 3 * wg];
			float mb = (a0 + a1 + a2 + a3) * 0.25;
			float d0 = a0 - mb, d1 = a1 - mb, d2 = a2 - mb, d3 = a3 - mb;
			merge(cnt, mu, m2, 4.0, mb, d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3);
		}
		for (; i < pc.hw; i += wg)
			merge(cnt, mu, m2, 1.0, z[base + i], 0.0);
	}
	s_cnt[lid] = cnt, s_mean[lid] = mu, s_m2[lid] = m2;
	barrier();
	for (uint s = wg / 2; s > 0; s >>= 1) {
		if (lid < s) {
			merge(cnt, mu, m2, s_cnt[lid + s], s_mean[lid + s], s_m2[lid + s]);
			s_cnt[lid] = cnt, s_mean[lid] = mu, s_m2[lid] = m2;
		}
		barrier();
	}
	if (lid == 0) {
		mean_out[ch] = mu;
		var_out[ch] = cnt > 0.0 ? m2 / cnt : 0.0;
	}
}
