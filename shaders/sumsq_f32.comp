#version 450
// First pass of the sum of squares (nn_sumsq_record): out[g] = sum of x[i]^2 over
// i in [g*chunk, min((g+1)*chunk, n)) for each workgroup g, in a fixed order: each invocation adds
// its strided elements in sequence, then a shared-memory tree (deterministic, no atomics). Later
// passes add the partials with reduce_sum_f32.comp.
// Bindings: 0 x [n] f32 (read), 1 out [groups] f32 (write). Push: n, chunk (multiple of wg).
// Spec 0: workgroup size (power of two).
// Grid: ceil(n / chunk) groups, folded into y past the x limit (groups past the end return).
// CPU reference: a double-precision sum of squares in tests/test_nn_gpu_optim.c.
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer O { float o[]; };
layout(push_constant) uniform Push { uint n; uint chunk; } pc;

shared float partial[gl_WorkGroupSize.x];

void main()
{
	uint lid = gl_LocalInvocationID.x;
	uint g = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
	uint groups = (pc.n + pc.chunk - 1) / pc.chunk;
	if (g >= max(groups, 1u)) // uniform over the workgroup: no barrier is skipped by a part of it
		return;
	uint base = g * pc.chunk;
	uint end = min(base + pc.chunk, pc.n);
	float acc = 0.0;
	for (uint i = base + lid; i < end; i += gl_WorkGroupSize.x)
		acc += x[i] * x[i];
	partial[lid] = acc;
	barrier();
	for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
		if (lid < s)
			partial[lid] += partial[lid + s];
		barrier();
	}
	if (lid == 0)
		o[g] = partial[0];
}
