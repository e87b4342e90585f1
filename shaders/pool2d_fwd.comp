#version 450
#extension GL_GOOGLE_include_directive : require
// Max or average 2-D pooling, NCHW f32 over channel slices; square kernel k, stride s, pad p.
// Max: implicit -inf padding. Average: zero padding counted (PyTorch count_include_pad=True).
// One invocation per output element. Used for both maxpool2d_fwd and avgpool2d_fwd (spec 1).
// Bindings: 0 x f32 (read: a texel buffer, a storage buffer in the _ssbo twin), 1 y f32 (write).
// Push: struct Push. Spec: 0 workgroup size, 1 MAX (true: max pool, false: average pool).
// Grid: ceil(n*c*h_out*w_out / wg) x 1 x 1, folded into y past the x limit (gx = groups_x).
// CPU reference: nn_maxpool2d_forward_ref / nn_avgpool2d_forward_ref (nn/ref/pool.c).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const bool MAX = true;
#include "reads.glsl"
READONLY_F32(0, x_t) // texel buffers; storage buffers in pool2d_fwd_ssbo (SSBO_READS)
#define X(i) FETCH_F32(x_t, i)
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push {
	uint count; // n * c * h_out * w_out
	uint c, h_in, w_in, h_out, w_out;
	uint k, s, p;
	uint x_c_total, x_c_off, y_c_total, y_c_off;
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
	int ih0 = int(oh * pc.s) - int(pc.p), iw0 = int(ow * pc.s) - int(pc.p);
	float acc = MAX ? -3.402823466e38 : 0.0;
	for (int a = max(ih0, 0); a < min(ih0 + int(pc.k), int(pc.h_in)); a++) {
		for (int b = max(iw0, 0); b < min(iw0 + int(pc.k), int(pc.w_in)); b++) {
			float v = X(xb + uint(a) * pc.w_in + uint(b));
			acc = MAX ? max(acc, v) : acc + v;
		}
	}
	if (!MAX)
		acc *= 1.0 / float(pc.k * pc.k);
	y[(n * pc.y_c_total + pc.y_c_off + ch) * pc.h_out * pc.w_out + oh * pc.w_out + ow] = acc;
}
