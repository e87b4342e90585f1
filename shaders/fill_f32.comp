#version 450
// y[i] = value for i < n. Bindings: 0 y [n] f32 (write). Push: n, value. Spec 0: workgroup size.
// Grid: ceil(n / wg) x 1 x 1. CPU reference: a plain loop (tests/test_gpu_kernels.c).
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push { uint n; float value; } pc;

void main()
{
	uint i = gl_GlobalInvocationID.x;
	if (i < pc.n)
		y[i] = pc.value;
}
