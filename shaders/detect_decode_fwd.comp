#version 450
#extension GL_GOOGLE_include_directive : require
// Detection-head decode (DDetect eval path) into y [n, 4 + nc, A]: per anchor, DFL (softmax over
// reg_max bins, expectation) for the l, t, r, b distances, dist2bbox in xywh around the anchor
// (grid + 0.5) times the level stride, then sigmoid class scores. The level's raw map is channels
// [c_off, c_off + 4*reg_max + nc) of an [n, c_total, h, w] tensor. One dispatch per level (a
// per-invocation choice among several bindings would make CPU devices run every branch), one
// invocation per (n, anchor of the level).
// Bindings: 0 the level's map f32 (read: a texel buffer, a storage buffer in the _ssbo twin),
//   1 y f32 (write). Push: struct Push. Spec: 0 workgroup size. Grid: ceil(n * h * w / wg) x 1 x 1.
// CPU reference: nn_decode_forward_ref (nn/ref/decode.c).
layout(local_size_x_id = 0) in;
#include "reads.glsl"
READONLY_F32(0, lvl_t) // texel buffers; storage buffers in detect_decode_fwd_ssbo (SSBO_READS)
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push {
	uint n, nc, reg_max, a_total;
	uint h, w, a_start, c_total, c_off;
	float stride;
} pc;

float load(uint i)
{
	return FETCH_F32(lvl_t, i);
}

void main()
{
	uint i = gl_GlobalInvocationID.x, hw = pc.h * pc.w;
	if (i >= pc.n * hw)
		return;
	uint pix = i % hw, n = i / hw, a = pc.a_start + pix;
	uint base = (n * pc.c_total + pc.c_off) * hw + pix;
	float dist[4];
	for (uint side = 0; side < 4; side++) {
		uint b = base + side * pc.reg_max * hw;
		float m = load(b);
		for (uint k = 1; k < pc.reg_max; k++)
			m = max(m, load(b + k * hw));
		float sum = 0.0, ev = 0.0;
		for (uint k = 0; k < pc.reg_max; k++) {
			float e = exp(load(b + k * hw) - m);
			sum += e;
			ev += e * float(k);
		}
		dist[side] = ev / sum;
	}
	float ax = float(pix % pc.w) + 0.5, ay = float(pix / pc.w) + 0.5;
	float x1 = ax - dist[0], y1 = ay - dist[1], x2 = ax + dist[2], y2 = ay + dist[3];
	float s = pc.stride;
	uint yb = n * (4 + pc.nc) * pc.a_total + a;
	y[yb] = (x1 + x2) / 2.0 * s;
	y[yb + pc.a_total] = (y1 + y2) / 2.0 * s;
	y[yb + 2 * pc.a_total] = (x2 - x1) * s;
	y[yb + 3 * pc.a_total] = (y2 - y1) * s;
	for (uint c = 0; c < pc.nc; c++) {
		float v = load(base + (4 * pc.reg_max + c) * hw);
		y[yb + (4 + c) * pc.a_total] = 1.0 / (1.0 + exp(-v));
	}
}
