#version 450
// Peak fp32 arithmetic probe for `vkyolo bench` (vkpeak-style): each invocation runs `iters`
// rounds of 8 independent vec4 multiply-adds (64 FLOP per round) on registers and stores one value
// so the work cannot be removed. FLOP = groups * wg * iters * 64.
// Bindings: 0 out [groups * wg] f32 (write). Push: iters, seed. Spec 0: workgroup size.
// Grid: groups x 1 x 1. No CPU reference: the stored value is checked only for being finite.
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(push_constant) uniform Push { uint iters; float seed; } pc;

void main()
{
	vec4 m = vec4(pc.seed * 1e-6 + 0.999);
	vec4 a = vec4(gl_LocalInvocationID.x) * 1e-3;
	vec4 r0 = a, r1 = a + 1.0, r2 = a + 2.0, r3 = a + 3.0, r4 = a + 4.0, r5 = a + 5.0, r6 = a + 6.0, r7 = a + 7.0;
	for (uint i = 0; i < pc.iters; i++) {
		r0 = r0 * m + a; r1 = r1 * m + a; r2 = r2 * m + a; r3 = r3 * m + a;
		r4 = r4 * m + a; r5 = r5 * m + a; r6 = r6 * m + a; r7 = r7 * m + a;
	}
	vec4 s = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
	o[gl_GlobalInvocationID.x] = s.x + s.y + s.z + s.w;
}
