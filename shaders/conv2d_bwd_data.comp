#version 450
// Data gradient of the convolution (transposed convolution), NCHW f32, gather form (no atomics):
//   dx'[n, ci, i, j] = sum over oc of the group, taps (kh, kw) with i = oh*S + kh - pad and
//                      j = ow*S + kw - pad of dz[n, oc, oh, ow] * w[oc, ci, kh, kw]
//   dx[x slice] += dx'                                           (AVG == 0)
//   dx[x slice] += adjoint of the 2x2/s1 average pool of dx'    (AVG == 1: each dx' value spread
//                  * 0.25 over the 4 stored pixels it was pooled from; dx' is (h_in-1) x (w_in-1))
// Each invocation owns CIB input channels x one dx row x TL = S*PW - AVG consecutive columns. It
// computes the dx' values they need (TR = 1 + AVG rows x S*PW columns starting one row/column
// earlier when AVG), as S column phases of PW pixels each: within a phase every pixel uses the same
// kw taps, so no tap is tested per pixel. The input-channel block comes from gl_WorkGroupID.y and
// the loops over (oc, kh, kw) are uniform, so weight loads are subgroup-uniform.
// Bindings: 0 dz f32 dense [n, c_out, h_out, w_out] (read), 1 w f32 raw [c_out, cig, KH, KW] (read),
//   2 dx f32 [n, x_c_total, h_in, w_in] (read-write, += into channels x_c_off..).
// Push: struct Push (nn/layers/conv2d_bwd.c). Spec: 0 workgroup size, 1 CIB, 2 PW, 3 KH, 4 KW,
//   5 stride S, 6 AVG (0/1).
// Grid: ceil(n*h_in*tiles_w / wg) x (groups*cbpg) x 1, tiles_w = ceil(w_in / TL),
//   cbpg = ceil(cig / CIB).
// CPU reference: nn_conv2d_backward_data_ref (nn/ref/conv2d_bwd.c).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint CIB = 4;
layout(constant_id = 2) const uint PW = 4;
layout(constant_id = 3) const uint KH = 3;
layout(constant_id = 4) const uint KW = 3;
layout(constant_id = 5) const uint S = 1;
layout(constant_id = 6) const uint AVG = 0;
const uint TR = 1 + AVG;  // dx' rows per invocation
const uint SW = S * PW;   // dx' columns per invocation
const uint KK = KH * KW;

layout(std430, binding = 0) readonly buffer DZ { float dz[]; };
layout(std430, binding = 1) readonly buffer Wt { float w[]; };
layout(std430, binding = 2) buffer DX { float dx[]; };
layout(push_constant) uniform Push {
	uint lanes;      // n * h_in * tiles_w
	uint tiles_w;
	uint cig, cog;   // input / output channels per group
	uint cbpg;       // input-channel blocks per group
	uint h_in, w_in; // stored x plane
	uint h_out, w_out;
	uint pad;
	uint c_out;
	uint x_c_total, x_c_off;
} pc;

void main()
{
	uint lane = gl_GlobalInvocationID.x;
	if (lane >= pc.lanes)
		return;
	uint tw = lane % pc.tiles_w, t = lane / pc.tiles_w;
	uint ih = t % pc.h_in, n = t / pc.h_in;
	uint blk = gl_WorkGroupID.y, g = blk / pc.cbpg;
	uint ci0 = (blk - g * pc.cbpg) * CIB;
	int hc = int(pc.h_in - AVG), wc = int(pc.w_in - AVG); // dx' plane
	int c0 = int(tw * (SW - AVG));                        // first dx column of the tile
	int r0 = int(ih) - int(AVG), s0 = c0 - int(AVG);      // first dx' row / column
	int pad = int(pc.pad);

	float acc[TR][SW][CIB];
	for (uint tr = 0; tr < TR; tr++)
		for (uint j = 0; j < SW; j++)
			for (uint c = 0; c < CIB; c++)
				acc[tr][j][c] = 0.0;

	uint cw[CIB]; // weight offset of each channel of the block (clamped into the group)
	for (uint c = 0; c < CIB; c++)
		cw[c] = min(ci0 + c, pc.cig - 1) * KK;
	uint plane_out = pc.h_out * pc.w_out;
	uint dzo = (n * pc.c_out + g * pc.cog) * plane_out;
	uint wo = g * pc.cog * pc.cig * KK;
	for (uint o = 0; o < pc.cog; o++, dzo += plane_out, wo += pc.cig * KK) {
		for (uint kh = 0; kh < KH; kh++) {
			for (uint kw = 0; kw < KW; kw++) {
				float wv[CIB];
				for (uint c = 0; c < CIB; c++)
					wv[c] = w[wo + cw[c] + kh * KW + kw];
				for (uint tr = 0; tr < TR; tr++) {
					int row = r0 + int(tr);
					int qh = row + pad - int(kh); // oh * S
					if (row < 0 || row >= hc || qh < 0 || uint(qh) % S != 0 || uint(qh) / S >= pc.h_out)
						continue;
					uint dzr = dzo + uint(qh) / S * pc.w_out;
					for (uint r = 0; r < S; r++) {
						// columns s0 + r + p*S of this phase read ow = ow0 + p
						uint q = uint(s0 + int(r) + pad - int(kw) + int(S * KW)); // >= 0
						if (q % S != 0)
							continue;
						int ow0 = int(q / S) - int(KW);
						for (uint p = 0; p < PW; p++) {
							int ow = ow0 + int(p), col = s0 + int(r + p * S);
							bool ok = ow >= 0 && ow < int(pc.w_out) && col >= 0 && col < wc;
							float dv = dz[dzr + uint(clamp(ow, 0, int(pc.w_out) - 1))];
							dv = ok ? dv : 0.0;
							for (uint c = 0; c < CIB; c++)
								acc[tr][p * S + r][c] += wv[c] * dv;
						}
					}
				}
			}
		}
	}

	uint plane = pc.h_in * pc.w_in;
	for (uint c = 0; c < CIB; c++) {
		uint ci = ci0 + c;
		if (ci >= pc.cig)
			break;
		uint xb = (n * pc.x_c_total + pc.x_c_off + g * pc.cig + ci) * plane + ih * pc.w_in;
		for (uint j = 0; j < SW - AVG; j++) {
			uint col = uint(c0) + j;
			if (col >= pc.w_in)
				break;
			float v;
			if (AVG == 1) {
				uint j1 = min(j + 1, SW - 1);
				v = 0.25 * ((acc[0][j][c] + acc[0][j1][c]) + (acc[TR - 1][j][c] + acc[TR - 1][j1][c]));
			} else {
				v = acc[0][j][c];
			}
			dx[xb + col] += v;
		}
	}
}
