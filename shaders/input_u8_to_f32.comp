#version 450
// Network input conversion: y[i] = float(byte i of x) / 255 for i < 4*count4. The uint8 image is
// read as packed little-endian uints (4 bytes each) so 8-bit storage is not required.
// Bindings: 0 x uint [count4] (read), 1 y f32 [4*count4] (write). Push: count4.
// Spec: 0 workgroup size. Grid: ceil(count4 / wg) folded into x, y (gx = groups_x).
// CPU reference: the loop in tests/test_nn_gpu_ops.c (and nn_runner's host path).
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer X { uint x[]; };
layout(std430, binding = 1) writeonly buffer Y { vec4 y[]; };
layout(push_constant) uniform Push { uint count4; } pc;

void main()
{
	uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	if (i >= pc.count4)
		return;
	uint v = x[i];
	y[i] = vec4(float(v & 255u), float((v >> 8) & 255u), float((v >> 16) & 255u), float(v >> 24)) / 255.0;
}
