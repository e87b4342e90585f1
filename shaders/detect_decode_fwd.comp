#version 450
// Detection-head decode (DDetect eval path) into y [n, 4 + nc, A]: per anchor, DFL (softmax over
// reg_max bins, expectation) for the l, t, r, b distances, dist2bbox in xywh around the anchor
// (grid + 0.5) times the level stride, then sigmoid class scores. Level l's raw map is channels
// [c_off_l, c_off_l + 4*reg_max + nc) of an [n, c_total_l, h_l, w_l] tensor bound at binding l.
// One invocation per (n, anchor).
// Bindings: 0..3 level maps f32 (read; unused levels may repeat level 0), 4 y f32 (write).
// Push: struct Push. Spec: 0 workgroup size. Grid: ceil(n*A / wg) x 1 x 1.
// CPU reference: nn_decode_forward_ref (nn/ref/decode.c).
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer L0 { float l0[]; };
layout(std430, binding = 1) readonly buffer L1 { float l1[]; };
layout(std430, binding = 2) readonly buffer L2 { float l2[]; };
layout(std430, binding = 3) readonly buffer L3 { float l3[]; };
layout(std430, binding = 4) writeonly buffer Y { float y[]; };
struct Level {
	uint h, w, a_start, c_total, c_off;
	float stride;
};
layout(push_constant) uniform Push {
	uint n, nc, reg_max, nl, a_total;
	uint pad0, pad1, pad2;
	Level lv[4];
} pc;

float load(uint l, uint i)
{
	if (l == 0)
		return l0[i];
	if (l == 1)
		return l1[i];
	if (l == 2)
		return l2[i];
	return l3[i];
}

void main()
{
	uint i = gl_GlobalInvocationID.x;
	if (i >= pc.n * pc.a_total)
		return;
	uint a = i % pc.a_total, n = i / pc.a_total;
	uint l = 0;
	for (uint k = 1; k < pc.nl; k++)
		if (a >= pc.lv[k].a_start)
			l = k;
	uint hw = pc.lv[l].h * pc.lv[l].w, pix = a - pc.lv[l].a_start;
	uint base = (n * pc.lv[l].c_total + pc.lv[l].c_off) * hw + pix;
	float dist[4];
	for (uint side = 0; side < 4; side++) {
		uint b = base + side * pc.reg_max * hw;
		float m = load(l, b);
		for (uint k = 1; k < pc.reg_max; k++)
			m = max(m, load(l, b + k * hw));
		float sum = 0.0, ev = 0.0;
		for (uint k = 0; k < pc.reg_max; k++) {
			float e = exp(load(l, b + k * hw) - m);
			sum += e;
			ev += e * float(k);
		}
		dist[side] = ev / sum;
	}
	float ax = float(pix % pc.lv[l].w) + 0.5, ay = float(pix / pc.lv[l].w) + 0.5;
	float x1 = ax - dist[0], y1 = ay - dist[1], x2 = ax + dist[2], y2 = ay + dist[3];
	float s = pc.lv[l].stride;
	uint yb = n * (4 + pc.nc) * pc.a_total + a;
	y[yb] = (x1 + x2) / 2.0 * s;
	y[yb + pc.a_total] = (y1 + y2) / 2.0 * s;
	y[yb + 2 * pc.a_total] = (x2 - x1) * s;
	y[yb + 3 * pc.a_total] = (y2 - y1) * s;
	for (uint c = 0; c < pc.nc; c++) {
		float v = load(l, base + (4 * pc.reg_max + c) * hw);
		y[yb + (4 + c) * pc.a_total] = 1.0 / (1.0 + exp(-v));
	}
}
