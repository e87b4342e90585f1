#version 450
// Backward of max or average 2-D pooling (pool2d_fwd), NCHW f32 over channel slices; square kernel
// k, stride s, pad p. Gather: one invocation per input element sums, in window order, the output
// gradients that reach it, then adds the sum to dx (no atomics, deterministic).
// Max: an output's gradient goes to the first maximum of its window in scan order (padding skipped),
// as PyTorch; maxpool2d_argmax.comp has written each window's maximum position (ih * w_in + iw, as
// a float) into idx, so the element compares one value per window. Average: dy / k^2 from every
// window containing the element (count_include_pad).
// Bindings (0 and 1 texel buffers): 0 idx f32 dense [n, c, h_out, w_out] (read; max) or any buffer
// (average), 1 dy f32 (read), 2 dx f32 (read-write, +=). Push: struct Push. Spec: 0 workgroup size,
// 1 MAX (true: max, false: average).
// Grid: ceil(n*c*h_in*w_in / wg) x 1 x 1, folded into y past the x limit (gx = groups_x).
// CPU reference: nn_maxpool2d_backward_ref / nn_avgpool2d_backward_ref (nn/ref/pool_bwd.c).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const bool MAX = true;
#extension GL_GOOGLE_include_directive : require
#include "reads.glsl"
READONLY_F32(0, x_t) // texel buffers unless SSBO_READS (include/reads.glsl); max: the indices
READONLY_F32(1, dy_t)
layout(std430, binding = 2) buffer DX { float dx[]; };
layout(push_constant) uniform Push {
	uint count; // n * c * h_in * w_in
	uint c, h_in, w_in, h_out, w_out;
	uint k, s, p;
	uint x_c_total, x_c_off, y_c_total, y_c_off;
} pc;

// Outputs o (0 <= o < out) whose window [o*s - p, o*s - p + k) contains i: [lo, hi).
void out_range(int i, int out_n, out int lo, out int hi)
{
	int a = i + int(pc.p) - int(pc.k) + 1, s = int(pc.s);
	lo = a <= 0 ? 0 : (a + s - 1) / s;
	hi = min((i + int(pc.p)) / s + 1, out_n);
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
	uint xb = (n * pc.x_c_total + pc.x_c_off + ch) * pc.h_in * pc.w_in;
	uint yb = (n * pc.y_c_total + pc.y_c_off + ch) * pc.h_out * pc.w_out;
	uint ib = (n * pc.c + ch) * pc.h_out * pc.w_out; // MAX: the window maxima's positions (dense)
	int oh0, oh1, ow0, ow1;
	out_range(int(ih), int(pc.h_out), oh0, oh1);
	out_range(int(iw), int(pc.w_out), ow0, ow1);
	float self_at = float(ih * pc.w_in + iw), inv = 1.0 / float(pc.k * pc.k), acc = 0.0;
	for (int oh = oh0; oh < oh1; oh++) {
		for (int ow = ow0; ow < ow1; ow++) {
			uint o = yb + uint(oh) * pc.w_out + uint(ow);
			float g = FETCH_F32(dy_t, o);
			if (!MAX)
				acc += g * inv;
			else if (FETCH_F32(x_t, ib + uint(oh) * pc.w_out + uint(ow)) == self_at)
				acc += g;
		}
	}
	dx[xb + ih * pc.w_in + iw] += acc;
}
