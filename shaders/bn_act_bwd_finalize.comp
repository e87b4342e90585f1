#version 450
// BN + activation backward, pass 2 of 3: per channel, the partial (S1, S2) pairs of
// bn_act_bwd_reduce summed in index order, in blocks of 16 (deterministic) into the scratch pair at stats_off + 2 ch,
// and dbeta = S1, dgamma = S2 (added to the old values when ACCUMULATE).
// Bindings: 0 scratch (read-write), 1 dgamma [c], 2 dbeta [c] (write; read when ACCUMULATE).
// Push: c, parts (pairs per channel), stats_off (float index). Spec: 0 workgroup size, 1 ACCUMULATE.
// Grid: ceil(c / wg) x 1 x 1.
// CPU reference: nn_bn_backward_ref's dgamma / dbeta (nn/ref/bn.c).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const bool ACCUMULATE = false;
layout(std430, binding = 0) buffer S { float scratch[]; };
layout(std430, binding = 1) buffer DG { float dgamma[]; };
layout(std430, binding = 2) buffer DB { float dbeta[]; };
layout(push_constant) uniform Push {
	uint c, parts, stats_off;
} pc;

void main()
{
	uint ch = gl_GlobalInvocationID.x;
	if (ch >= pc.c)
		return;
	float s1 = 0.0, s2 = 0.0;
	for (uint j0 = 0; j0 < pc.parts; j0 += 16) { // blocks of 16: shorter rounding chains than one long sum
		float b1 = 0.0, b2 = 0.0;
		for (uint j = j0; j < min(j0 + 16, pc.parts); j++) {
			uint at = (ch * pc.parts + j) * 2;
			b1 += scratch[at];
			b2 += scratch[at + 1];
		}
		s1 += b1;
		s2 += b2;
	}
	scratch[pc.stats_off + 2 * ch] = s1;
	scratch[pc.stats_off + 2 * ch + 1] = s2;
	dgamma[ch] = ACCUMULATE ? dgamma[ch] + s2 : s2;
	dbeta[ch] = ACCUMULATE ? dbeta[ch] + s1 : s1;
}
