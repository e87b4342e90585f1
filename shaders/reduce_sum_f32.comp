#version 450
// Partial sums: out[g] = sum of x[g*chunk .. min((g+1)*chunk, n)) for each workgroup g, in a fixed
// order (deterministic, no atomics). Run twice (n -> groups -> 1) for a full sum.
// Bindings: 0 x [n] f32 (read), 1 out [groups] f32 (write). Push: n, chunk (multiple of wg).
// Spec 0: workgroup size (power of two). Grid: ceil(n / chunk) x 1 x 1.
// CPU reference: a double-precision loop in tests/test_gpu_kernels.c.
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer O { float o[]; };
layout(push_constant) uniform Push { uint n; uint chunk; } pc;

shared float partial[gl_WorkGroupSize.x];

void main()
{
	uint lid = gl_LocalInvocationID.x;
	uint base = gl_WorkGroupID.x * pc.chunk;
	uint end = min(base + pc.chunk, pc.n);
	float acc = 0.0;
	for (uint i = base + lid; i < end; i += gl_WorkGroupSize.x)
		acc += x[i];
	partial[lid] = acc;
	barrier();
	for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
		if (lid < s)
			partial[lid] += partial[lid + s];
		barrier();
	}
	if (lid == 0)
		o[gl_WorkGroupID.x] = partial[0];
}
