// Shared by bn_act_bwd_reduce and bn_act_bwd_dz: the inputs of the BN + activation backward, the push
// block, and the recomputation of du = dy * act'(u) and xhat = (z - mean) / sqrt(var + eps) for one
// element. Needs spec constants ACT and RES declared first, and bn_act.glsl.
layout(std430, binding = 0) readonly buffer Z { float z[]; };
layout(std430, binding = 1) readonly buffer G { float gamma[]; };
layout(std430, binding = 2) readonly buffer B { float beta[]; };
layout(std430, binding = 3) readonly buffer M { float mean[]; };
layout(std430, binding = 4) readonly buffer V { float var[]; };
layout(std430, binding = 5) readonly buffer R { float r[]; };
layout(std430, binding = 6) readonly buffer DY { float dy[]; };
layout(push_constant) uniform Push {
	uint count; // n * c * hw
	uint c, hw;
	uint y_c_total, y_c_off, r_c_total, r_c_off;
	float eps;
	uint chunk;    // reduce: elements of one plane per workgroup
	float inv_m;   // 1 / (n * hw)
	uint stats_off; // float index of the per-channel (S1, S2) pairs in the scratch buffer
} pc;

// Element p of plane (n, ch): the incoming gradient g (dy), xhat and du.
void bn_act_grad_at(uint n, uint ch, uint p, out float g, out float xhat, out float du)
{
	float inv = 1.0 / sqrt(var[ch] + pc.eps);
	xhat = (z[(n * pc.c + ch) * pc.hw + p] - mean[ch]) * inv;
	g = dy[(n * pc.y_c_total + pc.y_c_off + ch) * pc.hw + p];
	du = g;
	if (ACT != ACT_NONE) {
		float u = xhat * gamma[ch] + beta[ch];
		if (RES == RES_BEFORE)
			u += r[(n * pc.r_c_total + pc.r_c_off + ch) * pc.hw + p];
		du = g * act_grad(ACT, u);
	}
}
