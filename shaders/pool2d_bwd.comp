#version 450
// Backward of max or average 2-D pooling (pool2d_fwd), NCHW f32 over channel slices; square kernel
// k, stride s, pad p. Gather: one invocation per input element sums, in window order, the output
// gradients that reach it, then adds the sum to dx (no atomics, deterministic).
// Max: an output's gradient goes to the first maximum of its window in scan order (padding skipped),
// as PyTorch; the element is that maximum iff every earlier window element is < it and every later
// one <= it. Average: dy / k^2 from every window containing the element (count_include_pad).
// Bindings (0 and 1 texel buffers): 0 x f32 (read; the forward input, any buffer for average), 1 dy f32 (read), 2 dx f32
// (read-write, +=). Push: struct Push. Spec: 0 workgroup size, 1 MAX (true: max, false: average).
// Grid: ceil(n*c*h_in*w_in / wg) x 1 x 1, folded into y past the x limit (gx = groups_x).
// CPU reference: nn_maxpool2d_backward_ref / nn_avgpool2d_backward_ref (nn/ref/pool_bwd.c).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const bool MAX = true;
#extension GL_GOOGLE_include_directive : require
#include "reads.glsl"
READONLY_F32(0, x_t) // texel buffers unless SSBO_READS (include/reads.glsl)
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

// Whether (ih, iw) holding v is the first maximum, in scan order, of the window at (oh, ow).
bool is_argmax(uint xb, int oh, int ow, int ih, int iw, float v)
{
	int h0 = oh * int(pc.s) - int(pc.p), w0 = ow * int(pc.s) - int(pc.p);
	for (int a = max(h0, 0); a < min(h0 + int(pc.k), int(pc.h_in)); a++) {
		for (int b = max(w0, 0); b < min(w0 + int(pc.k), int(pc.w_in)); b++) {
			float e = FETCH_F32(x_t, xb + uint(a) * pc.w_in + uint(b));
			bool before = a < ih || (a == ih && b < iw);
			if (before ? !(e < v) : e > v)
				return false;
		}
	}
	return true;
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
	int oh0, oh1, ow0, ow1;
	out_range(int(ih), int(pc.h_out), oh0, oh1);
	out_range(int(iw), int(pc.w_out), ow0, ow1);
	float v = MAX ? FETCH_F32(x_t, xb + ih * pc.w_in + iw) : 0.0, inv = 1.0 / float(pc.k * pc.k), acc = 0.0;
	for (int oh = oh0; oh < oh1; oh++) {
		for (int ow = ow0; ow < ow1; ow++) {
			float g = FETCH_F32(dy_t, yb + uint(oh) * pc.w_out + uint(ow));
			if (!MAX)
				acc += g * inv;
			else if (is_argmax(xb, oh, ow, int(ih), int(iw), v))
				acc += g;
		}
	}
	dx[xb + ih * pc.w_in + iw] += acc;
}
