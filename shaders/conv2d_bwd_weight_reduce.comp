#version 450
// Second pass of the deterministic split-K weight gradient (conv2d_bwd_weight.comp): sums the
// per-chunk partials of each weight / bias element in chunk order and writes or adds the result:
//   s = part[0][e] + part[1][e] + ... + part[chunks-1][e]
//   e < wcount: dw[e] = accumulate ? dw[e] + s : s;  else db[e - wcount] likewise.
// One invocation per element (count = wcount, + c_out when there is a bias gradient).
// Bindings: 0 part f32 [chunks][stride] (read; a texel buffer unless SSBO_READS: on lavapipe the
//   chunks x elements storage-buffer loads were about a third of the weight gradient's time), 1 dw
//   f32 (read-write), 2 db f32 (read-write; any buffer when count == wcount).
// Push: struct Push (nn/layers/conv2d_bwd.c). Spec: 0 workgroup size.
// Grid: ceil(count / wg) invocations, folded into y past the x limit (gx = groups_x).
// CPU reference: nn_conv2d_backward_weight_ref (nn/ref/conv2d_bwd.c).
layout(local_size_x_id = 0) in;
#extension GL_GOOGLE_include_directive : require
#include "reads.glsl"
READONLY_F32(0, part_t)
#define PART(i) FETCH_F32(part_t, i)
layout(std430, binding = 1) buffer DW { float dw[]; };
layout(std430, binding = 2) buffer DB { float db[]; };
layout(push_constant) uniform Push {
	uint count, wcount, chunks, stride, accumulate;
} pc;

void main()
{
	uint e = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	if (e >= pc.count)
		return;
	float s = PART(e);
	for (uint c = 1; c < pc.chunks; c++)
		s += PART(c * pc.stride + e);
	if (e < pc.wcount) {
		dw[e] = pc.accumulate != 0 ? dw[e] + s : s;
	} else {
		uint b = e - pc.wcount;
		db[b] = pc.accumulate != 0 ? db[b] + s : s;
	}
}
