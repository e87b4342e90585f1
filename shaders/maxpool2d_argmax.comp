#version 450
// First pass of the max-pool backward (pool2d_bwd.comp, MAX): the position of each window's
// maximum. One invocation per output element scans its window in order (padding skipped) and keeps
// the first maximum, as PyTorch's max_pool2d indices; it writes that input position (ih * w_in + iw
// within the plane) as a float, exact below 2^24. The gather then compares one index per window
// instead of rescanning every window for every element (k^4 reads per element for a k x k pool).
// Bindings (0 a texel buffer): 0 x f32 [n, x_c_total, h_in, w_in] (read), 1 idx f32 dense
// [n, c, h_out, w_out] (write).
// Push: struct Push (nn/layers/pool_bwd.c). Spec: 0 workgroup size.
// Grid: ceil(n*c*h_out*w_out / wg), folded into y past the x limit.
// CPU reference: nn_maxpool2d_backward_ref (nn/ref/pool_bwd.c) for the whole backward.
layout(local_size_x_id = 0) in;
#extension GL_GOOGLE_include_directive : require
#include "reads.glsl"
READONLY_F32(0, x_t) // texel buffers unless SSBO_READS (include/reads.glsl)
layout(std430, binding = 1) writeonly buffer I { float idx[]; };
layout(push_constant) uniform Push {
	uint count; // n * c * h_out * w_out
	uint c, h_in, w_in, h_out, w_out;
	uint k, s, p;
	uint x_c_total, x_c_off;
} pc;

void main()
{
	uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	if (i >= pc.count)
		return;
	uint ow = i % pc.w_out, t = i / pc.w_out;
	uint oh = t % pc.h_out;
	t /= pc.h_out;
	uint ch = t % pc.c, n = t / pc.c;
	uint xb = (n * pc.x_c_total + pc.x_c_off + ch) * pc.h_in * pc.w_in;
	int h0 = int(oh * pc.s) - int(pc.p), w0 = int(ow * pc.s) - int(pc.p);
	float best = 0.0;
	int at = -1;
	for (int a = max(h0, 0); a < min(h0 + int(pc.k), int(pc.h_in)); a++)
		for (int b = max(w0, 0); b < min(w0 + int(pc.k), int(pc.w_in)); b++) {
			float e = FETCH_F32(x_t, xb + uint(a) * pc.w_in + uint(b));
			if (at < 0 || e > best) { // strictly greater: the first maximum wins
				best = e;
				at = a * int(pc.w_in) + b;
			}
		}
	idx[i] = float(at);
}
