// Shared by bn_act_bwd_reduce and bn_act_bwd_dz: the inputs of the BN + activation backward, the push
// block, and the recomputation of du = dy * act'(u) and xhat = (z - mean) / sqrt(var + eps) for four
// consecutive elements of one plane. Needs spec constants ACT, RES and VEC4 declared first, and
// bn_act.glsl. The push block's first twelve words are bn_act_fwd's.
READONLY_F32(0, z_t) // texel buffers unless SSBO_READS (include/reads.glsl)
layout(std430, binding = 1) readonly buffer G { float gamma[]; };
layout(std430, binding = 2) readonly buffer B { float beta[]; };
layout(std430, binding = 3) readonly buffer M { float mean[]; };
layout(std430, binding = 4) readonly buffer V { float var[]; };
READONLY_F32(5, r_t)
READONLY_F32(6, dy_t)
layout(push_constant) uniform Push {
	uint work; // invocations: n * c * cpp
	uint c, hw;
	uint y_c_total, y_c_off, r_c_total, r_c_off;
	float eps;
	uint chunk;     // elements of one plane per invocation (a multiple of 4)
	uint cpp;       // chunks per plane: ceil(hw / chunk)
	float inv_m;    // 1 / (n * hw)
	uint stats_off; // float index of the per-channel (S1, S2) pairs in the scratch buffer
} pc;

// The chunk of invocation i: batch b, channel ch, chunk index j, element range [p0, p1) of the plane.
struct bn_chunk {
	uint b, ch, j, p0, p1;
};

bn_chunk bn_chunk_of(uint i)
{
	bn_chunk k;
	uint plane = i / pc.cpp;
	k.j = i - plane * pc.cpp;
	k.b = plane / pc.c;
	k.ch = plane - k.b * pc.c;
	k.p0 = k.j * pc.chunk;
	k.p1 = min(k.p0 + pc.chunk, pc.hw);
	return k;
}

// Per-channel constants, loaded once per invocation.
struct bn_chan {
	float mean, inv, gamma, beta;
};

bn_chan bn_chan_of(uint ch)
{
	bn_chan q;
	q.mean = mean[ch];
	q.inv = 1.0 / sqrt(var[ch] + pc.eps);
	q.gamma = ACT != ACT_NONE ? gamma[ch] : 0.0;
	q.beta = ACT != ACT_NONE ? beta[ch] : 0.0;
	return q;
}

// Elements p .. p + 3 of plane (b, ch) (left of them inside the plane): the incoming gradient g (dy),
// xhat and du; zeros for g and du past the plane.
void bn_act_grad4(bn_chan q, uint b, uint ch, uint p, uint left, out vec4 g, out vec4 xhat, out vec4 du)
{
	uint zi = (b * pc.c + ch) * pc.hw + p, yi = (b * pc.y_c_total + pc.y_c_off + ch) * pc.hw + p;
	xhat = (BN_TLOAD4(z_t, zi, left) - q.mean) * q.inv;
	g = BN_TLOAD4(dy_t, yi, left);
	du = g;
	if (ACT != ACT_NONE) {
		vec4 u = xhat * q.gamma + q.beta;
		if (RES == RES_BEFORE) {
			uint ri = (b * pc.r_c_total + pc.r_c_off + ch) * pc.hw + p;
			u += BN_TLOAD4(r_t, ri, left);
		}
		du = g * act_grad(ACT, u);
	}
}
