#version 450
// Packs raw convolution weights w [c_out, cig, KH, KW] and bias [c_out] into the layout every
// conv2d_fwd*.comp kernel reads (nn/layers/conv2d.c): wp [groups*bpg][cig][k_h][row] with
// row = [k_w][ocb] zero-padded to `row` floats, bp [groups*bpg][ocb]; channels past c_out/groups in
// the last block of a group and the row padding are zeros. One invocation per packed float: the
// first nwp indices write wp, the next nbp write bp. With transpose, (cig, cog) describe the
// transposed convolution that computes a data gradient (nn_conv2d_bwd_data_as_conv) and w holds the
// original weights [groups*cig, cog, k_h, k_w]: packed (ci, kh, kw, oc) takes w[ci, oc, k_h-1-kh,
// k_w-1-kw] (transposed and rotated 180 degrees).
// Bindings (0 and 1 texel buffers): 0 w f32 (read), 1 bias f32 (read; any buffer when has_bias == 0), 2 wp f32 (write),
//   3 bp f32 (write).
// Push: struct Push (nn/layers/conv2d_bwd.c). Spec: 0 workgroup size.
// Grid: ceil((nwp + nbp) / wg) invocations, folded into y past the x limit (gx = groups_x).
// CPU reference: nn_conv2d_pack (nn/layers/conv2d.c).
layout(local_size_x_id = 0) in;
#extension GL_GOOGLE_include_directive : require
#include "reads.glsl"
READONLY_F32(0, w_t) // texel buffers unless SSBO_READS (include/reads.glsl)
READONLY_F32(1, bias_t)
layout(std430, binding = 2) writeonly buffer WP { float wp[]; };
layout(std430, binding = 3) writeonly buffer BP { float bp[]; };
layout(push_constant) uniform Push {
	uint nwp, nbp;     // packed weight / bias floats
	uint cig, cog;     // input / output channels per group
	uint ocb, bpg;     // output channels per block, blocks per group
	uint k_h, k_w;
	uint row;          // floats per packed kernel row (>= k_w * ocb)
	uint has_bias;
	uint transpose;    // w is [cog*groups, cig, k_h, k_w] of the transposed conv (see below)
} pc;

void main()
{
	uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	if (i < pc.nwp) {
		uint r = i % pc.row, t = i / pc.row;
		uint kh = t % pc.k_h;
		t /= pc.k_h;
		uint ci = t % pc.cig, blk = t / pc.cig;
		uint kw = r / pc.ocb, j = r % pc.ocb;
		uint g = blk / pc.bpg, ocg = (blk % pc.bpg) * pc.ocb + j;
		float v = 0.0;
		if (kw < pc.k_w && ocg < pc.cog)
			v = pc.transpose == 0
			        ? FETCH_F32(w_t, (((g * pc.cog + ocg) * pc.cig + ci) * pc.k_h + kh) * pc.k_w + kw)
			        : FETCH_F32(w_t, (((g * pc.cig + ci) * pc.cog + ocg) * pc.k_h + pc.k_h - 1 - kh) * pc.k_w +
			                              pc.k_w - 1 - kw);
		wp[i] = v;
		return;
	}
	i -= pc.nwp;
	if (i >= pc.nbp)
		return;
	uint blk = i / pc.ocb, j = i % pc.ocb;
	uint g = blk / pc.bpg, ocg = (blk % pc.bpg) * pc.ocb + j;
	bp[i] = pc.has_bias != 0 && ocg < pc.cog ? FETCH_F32(bias_t, g * pc.cog + ocg) : 0.0;
}
