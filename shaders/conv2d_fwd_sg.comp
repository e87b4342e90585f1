#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
// Direct 2-D convolution (same semantics as conv2d_fwd.comp) for CPU devices such as lavapipe,
// where every buffer load runs a loop over the SIMD lanes, so its cost is the number of (lane,
// component) pairs loaded whatever the addresses. The kernel therefore never loads a value in two
// lanes: a workgroup is one subgroup of LANES invocations, each owning a tile of PX consecutive
// output pixels of one row (tiles numbered row-major, so narrow rows leave no lane idle) times OCB
// output channels; every input-size dependent value is a push constant. Each invocation loads only its own input
// columns; the OCB*KW weights of a (ci, kh) are loaded cooperatively (one vec4 per lane per 4*LANES
// weights) and shared with subgroupShuffle at lanes that are constants after unrolling.
//   y[n, y_c_off + oc] = act(conv(x', w) + bias (+ r if RES == 2)) (+ r if RES == 1),
//   x' = x or avg_pool2d(x, 2, 1) on load when AVG; zero padding; groups; channel slices.
// Requires the subgroup to be the whole workgroup (LANES == subgroup size).
// Bindings: 0 x f32 (read), 1 w vec4: [groups*bpg][cig][KH][WROW] floats, WROW = KW*OCB rounded up
//   to 4*LANES, row order [kw][OCB] (read), 2 bias f32 [groups*bpg][OCB] (read), 3 r f32 (read; any
//   buffer when RES == 0), 4 y f32 (write).
// Push: struct Push (nn/layers/conv2d.c). Spec: 0 LANES (workgroup size), 1 OCB, 2 PX, 3 KH, 4 KW,
//   5 stride, 6 act (0 none, 1 SiLU, 2 sigmoid), 7 AVG, 8 RES (0 none, 1 after act, 2 before),
//   9 CIU (input channels per loop trip).
// Grid: ceil(h_out * tiles_w / LANES) x (groups*bpg) x n, tiles_w = ceil(w_out / PX): one tile of
//   PX pixels per lane, tiles numbered row-major over (oh, tw).
// CPU reference: nn_conv2d_forward_ref (nn/ref/conv2d.c).
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint LANES = 8;
layout(constant_id = 1) const uint OCB = 32;
layout(constant_id = 2) const uint PX = 8;
layout(constant_id = 3) const uint KH = 3;
layout(constant_id = 4) const uint KW = 3;
layout(constant_id = 5) const uint S = 1;
layout(constant_id = 6) const uint ACT = 0;
layout(constant_id = 7) const bool AVG = false;
layout(constant_id = 8) const uint RES = 0;
layout(constant_id = 9) const uint CIU = 1;
const uint XL = (PX - 1) * S + KW;                           // input columns per invocation
const uint WV = (KW * OCB + 4 * LANES - 1) / (4 * LANES);    // vec4 weight loads per (ci, kh)

layout(binding = 0) uniform samplerBuffer xt;
#define x_at(i) texelFetch(xt, int(i)).x
layout(binding = 1) uniform samplerBuffer w4;
layout(std430, binding = 2) readonly buffer B { float bias[]; };
layout(std430, binding = 3) readonly buffer R { float r[]; };
layout(std430, binding = 4) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push {
	uint tiles_w;
	uint cig, cog, bpg;
	uint h_in, w_in; // stored x plane
	uint h_out, w_out;
	uint pad;
	uint x_c_total, x_c_off, y_c_total, y_c_off, r_c_total, r_c_off;
} pc;

float act(float v)
{
	if (ACT == 1)
		return v / (1.0 + exp(-v));
	if (ACT == 2)
		return 1.0 / (1.0 + exp(-v));
	return v;
}

// acc += the contribution of one input channel whose plane starts at XB and whose packed weights
// (this lane's share) start at vec4 WB.
#define ACCUMULATE_CHANNEL(XB, WB) \
	[[unroll]] for (uint kh = 0; kh < KH; kh++) { \
		int ih = ih0 + int(kh); \
		vec4 wl[WV]; \
		[[unroll]] for (uint v = 0; v < WV; v++) \
			wl[v] = texelFetch(w4, int((WB) + (kh * WV + v) * LANES)); \
		bool rowok = ih >= 0 && ih < hc; /* zero padding rows */ \
		uint row = (XB) + uint(clamp(ih, 0, hc - 1)) * pc.w_in; \
		float xs[XL]; \
		[[unroll]] for (uint c = 0; c < XL; c++) { \
			uint a = row + col[c]; \
			float v = AVG ? 0.25 * (x_at(a) + x_at(a + 1) + x_at(a + pc.w_in) + x_at(a + pc.w_in + 1)) : x_at(a); \
			xs[c] = colok[c] && rowok ? v : 0.0; \
		} \
		[[unroll]] for (uint kw = 0; kw < KW; kw++) { \
			[[unroll]] for (uint o = 0; o < OCB; o++) { \
				uint f = kw * OCB + o; \
				float wv = subgroupShuffle(wl[f / (4 * LANES)][f % 4], (f / 4) % LANES); \
				[[unroll]] for (uint j = 0; j < PX; j++) \
					acc[o][j] += wv * xs[j * S + kw]; \
			} \
		} \
	}

void main()
{
	uint lane = gl_SubgroupInvocationID;
	// Each lane owns one tile of PX consecutive output pixels of one row; tiles are numbered over
	// (oh, tw) so that narrow rows do not leave lanes idle. Rows are per lane: x loads are per-lane
	// gathers on CPU devices anyway, so this costs nothing there.
	uint tile = gl_WorkGroupID.x * LANES + lane, tiles = pc.h_out * pc.tiles_w;
	bool live = tile < tiles;
	tile = min(tile, tiles - 1);
	uint tw = tile % pc.tiles_w, oh = tile / pc.tiles_w;
	uint blk = gl_WorkGroupID.y, g = blk / pc.bpg, n = gl_WorkGroupID.z;
	uint oc0 = (blk - g * pc.bpg) * OCB;
	uint ow0 = tw * PX; // this invocation's first output pixel
	int hc = int(AVG ? pc.h_in - 1 : pc.h_in), wc = int(AVG ? pc.w_in - 1 : pc.w_in);

	float acc[OCB][PX];
	[[unroll]] for (uint o = 0; o < OCB; o++) {
		float b = bias[blk * OCB + o]; // same address in every lane: only OCB loads per workgroup
		[[unroll]] for (uint j = 0; j < PX; j++)
			acc[o][j] = b;
	}
	// Clamped columns and their validity do not depend on ci or kh.
	int iw0 = int(ow0 * S) - int(pc.pad);
	uint col[XL];
	bool colok[XL];
	[[unroll]] for (uint c = 0; c < XL; c++) {
		int iw = iw0 + int(c);
		colok[c] = iw >= 0 && iw < wc;
		col[c] = uint(clamp(iw, 0, wc - 1));
	}
	uint plane = pc.h_in * pc.w_in;
	uint xbase = (n * pc.x_c_total + pc.x_c_off + g * pc.cig) * plane;
	uint wbase = blk * pc.cig * KH * WV * LANES + lane; // vec4 index of this lane's share
	int ih0 = int(oh * S) - int(pc.pad);
	// Input channels go CIU at a time (a longer straight-line body: lavapipe pays per loop trip),
	// then one at a time for the rest.
	uint ci = 0;
	for (; ci + CIU <= pc.cig; ci += CIU) {
		[[unroll]] for (uint u = 0; u < CIU; u++)
			ACCUMULATE_CHANNEL(xbase + u * plane, wbase + u * KH * WV * LANES);
		xbase += CIU * plane;
		wbase += CIU * KH * WV * LANES;
	}
	for (; ci < pc.cig; ci++) {
		ACCUMULATE_CHANNEL(xbase, wbase);
		xbase += plane;
		wbase += KH * WV * LANES;
	}

	uint plane_out = pc.h_out * pc.w_out;
	uint ybase = (n * pc.y_c_total + pc.y_c_off + g * pc.cog + oc0) * plane_out + oh * pc.w_out;
	uint rbase = (n * pc.r_c_total + pc.r_c_off + g * pc.cog + oc0) * plane_out + oh * pc.w_out;
	[[unroll]] for (uint o = 0; o < OCB; o++) {
		if (oc0 + o >= pc.cog)
			break;
		[[unroll]] for (uint j = 0; j < PX; j++) {
			uint ow = ow0 + j;
			if (live && ow < pc.w_out) {
				float val = acc[o][j];
				if (RES == 2)
					val += r[rbase + o * plane_out + ow];
				val = act(val);
				if (RES == 1)
					val += r[rbase + o * plane_out + ow];
				y[ybase + o * plane_out + ow] = val;
			}
		}
	}
}
