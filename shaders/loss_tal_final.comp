#version 450
// TAL loss, last step: one invocation combines the reduced sums of the sets (W_SUM: S, cls, box,
// dfl, foreground count) into out = [loss, box, cls, dfl, n_fg set 0, n_fg set 1, S set 0, S set 1]:
// each term divided by max(S, 1), weighted 0.25 (auxiliary set of two) or 1, times the gains
// (box 7.5, cls 0.5, dfl 1.5); loss = (box + cls + dfl) * n.
// Bindings: loss_tal.glsl's 0..5 (maps unused), 6 out [8] f32 (write). Push: base = set 0, base1 =
// set 1, n_sets. Spec 0: workgroup size (1). Grid: 1 x 1 x 1. CPU reference: loss_sets (nn/loss_tal.c).
layout(local_size_x_id = 0) in;
#include "loss_tal.glsl"
layout(std430, binding = 6) writeonly buffer O { float o[]; };

float wsum(uint b, uint k)
{
	return uintBitsToFloat(W[W_SUM(b, k)]);
}

void main()
{
	if (gl_GlobalInvocationID.x != 0)
		return;
	vec3 items = vec3(0.0);
	o[4] = 0.0, o[5] = 0.0, o[6] = 0.0, o[7] = 0.0;
	for (uint s = 0; s < pc.n_sets; s++) {
		uint b = s == 0 ? pc.base : pc.base1;
		float w = pc.n_sets == 2 && s == 0 ? 0.25 : 1.0, S = max(wsum(b, 0), 1.0);
		items += w * vec3(wsum(b, 2), wsum(b, 1), wsum(b, 3)) / S;
		o[4 + s] = wsum(b, 4);
		o[6 + s] = wsum(b, 0);
	}
	items *= vec3(7.5, 0.5, 1.5);
	o[0] = (items.x + items.y + items.z) * float(P_N);
	o[1] = items.x, o[2] = items.y, o[3] = items.z;
}
