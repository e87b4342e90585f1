#version 450
// Backward of the nearest resize (resize_nearest_fwd, source index floor(dst * in / out)), NCHW f32
// over channel slices. Gather: one invocation per source element sums the output gradients of the
// outputs that copy it, oh in [ceil(ih*h_out/h_in), ceil((ih+1)*h_out/h_in)) (same for w), and adds
// the sum to dx (no atomics). Sources no output copies (downsampling) get + 0.
// Bindings: 0 dy f32 (read), 1 dx f32 (read-write, +=). Push: struct Push. Spec: 0 workgroup size.
// Grid: ceil(n*c*h_in*w_in / wg) x 1 x 1, folded into y past the x limit (gx = groups_x).
// CPU reference: nn_resize_nearest_backward_ref (nn/ref/pool_bwd.c).
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer DY { float dy[]; };
layout(std430, binding = 1) buffer DX { float dx[]; };
layout(push_constant) uniform Push {
	uint count; // n * c * h_in * w_in
	uint c, h_in, w_in, h_out, w_out;
	uint x_c_total, x_c_off, y_c_total, y_c_off;
} pc;

uint ceil_div(uint a, uint b)
{
	return (a + b - 1) / b;
}

void main()
{
	uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	if (i >= pc.count)
		return;
	uint iw = i % pc.w_in, t = i / pc.w_in;
	uint ih = t % pc.h_in;
	t /= pc.h_in;
	uint ch = t % pc.c, n = t / pc.c;
	uint yb = (n * pc.y_c_total + pc.y_c_off + ch) * pc.h_out * pc.w_out;
	uint oh0 = ceil_div(ih * pc.h_out, pc.h_in), oh1 = ceil_div((ih + 1) * pc.h_out, pc.h_in);
	uint ow0 = ceil_div(iw * pc.w_out, pc.w_in), ow1 = ceil_div((iw + 1) * pc.w_out, pc.w_in);
	float acc = 0.0;
	for (uint oh = oh0; oh < oh1; oh++)
		for (uint ow = ow0; ow < ow1; ow++)
			acc += dy[yb + oh * pc.w_out + ow];
	dx[(n * pc.x_c_total + pc.x_c_off + ch) * pc.h_in * pc.w_in + ih * pc.w_in + iw] += acc;
}
