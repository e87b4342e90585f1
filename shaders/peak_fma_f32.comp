#version 450
// Peak fp32 arithmetic probe for `vkyolo bench` (vkpeak-style): each invocation runs `iters`
// loop trips of 16 rounds of 8 independent vec4 fused multiply-adds (1024 FLOP per trip) on
// registers and stores one value so the work cannot be removed. The long straight-line body
// matters on CPU devices: lavapipe measured 24 GFLOP/s with one round per trip, 42 with 16.
// FLOP = groups * wg * iters * 1024.
// Bindings: 0 out [groups * wg] f32 (write). Push: iters, seed. Spec 0: workgroup size.
// Grid: groups x 1 x 1. No CPU reference: the stored value is checked only for being finite.
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(push_constant) uniform Push { uint iters; float seed; } pc;

#define ROUND \
	r0 = fma(r0, m, a); r1 = fma(r1, m, a); r2 = fma(r2, m, a); r3 = fma(r3, m, a); \
	r4 = fma(r4, m, a); r5 = fma(r5, m, a); r6 = fma(r6, m, a); r7 = fma(r7, m, a);
#define ROUND4 ROUND ROUND ROUND ROUND

void main()
{
	vec4 m = vec4(pc.seed * 1e-6 + 0.999);
	vec4 a = vec4(gl_LocalInvocationID.x) * 1e-3;
	vec4 r0 = a, r1 = a + 1.0, r2 = a + 2.0, r3 = a + 3.0, r4 = a + 4.0, r5 = a + 5.0, r6 = a + 6.0, r7 = a + 7.0;
	for (uint i = 0; i < pc.iters; i++) {
		ROUND4 ROUND4 ROUND4 ROUND4
	}
	vec4 s = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
	o[gl_GlobalInvocationID.x] = s.x + s.y + s.z + s.w;
}
