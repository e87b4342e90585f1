#version 450
// Element-wise y[i] = alpha * x[i] + beta * y[i] for i < n.
// Bindings: 0 x [n] f32 (read), 1 y [n] f32 (read/write). Push: n, alpha, beta.
// Spec 0: workgroup size. Grid: ceil(n / wg) x 1 x 1, folded into y when n exceeds the x limit.
// CPU reference: scale_add_ref in tests/test_gpu_kernels.c.
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) buffer Y { float y[]; };
layout(push_constant) uniform Push { uint n; float alpha; float beta; } pc;

void main()
{
	uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	if (i < pc.n)
		y[i] = pc.alpha * x[i] + pc.beta * y[i];
}
