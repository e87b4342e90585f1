#version 450
#extension GL_GOOGLE_include_directive : require
// Nearest resize NCHW f32 over channel slices: y = x[floor(oh*h_in/h_out), floor(ow*w_in/w_out)]
// (PyTorch legacy 'nearest'), or y += that when ACC (CBFuse's sum); equal sizes give a slice copy
// or an element-wise add. One invocation per output element.
// Bindings: 0 x f32 (read: a texel buffer, a storage buffer in the _ssbo twin), 1 y f32 (write;
//   also read when ACC). Push: struct Push. Spec: 0 workgroup size, 1 ACC.
// Grid: ceil(count / wg) folded into x, y (gx = groups_x).
// CPU reference: nn_resize_nearest_forward_ref (nn/ref/resize.c).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const bool ACC = false;
#include "reads.glsl"
READONLY_F32(0, x_t) // texel buffers; storage buffers in resize_nearest_fwd_ssbo (SSBO_READS)
#define X(i) FETCH_F32(x_t, i)
layout(std430, binding = 1) buffer Y { float y[]; };
layout(push_constant) uniform Push {
	uint count; // n * c * h_out * w_out
	uint c, h_in, w_in, h_out, w_out;
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
	uint ih = oh * pc.h_in / pc.h_out, iw = ow * pc.w_in / pc.w_out;
	float v = X((n * pc.x_c_total + pc.x_c_off + ch) * pc.h_in * pc.w_in + ih * pc.w_in + iw);
	uint o = (n * pc.y_c_total + pc.y_c_off + ch) * pc.h_out * pc.w_out + oh * pc.w_out + ow;
	y[o] = ACC ? y[o] + v : v;
}
