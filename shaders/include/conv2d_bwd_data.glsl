// Body of conv2d_bwd_data.comp and conv2d_bwd_data_sg.comp (BWD_DATA_SG defined: the workgroup is
// one subgroup and the weights are loaded cooperatively and shared with subgroupShuffle).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint CIB = 4;
layout(constant_id = 2) const uint PW = 4;
layout(constant_id = 3) const uint KH = 3;
layout(constant_id = 4) const uint KW = 3;
layout(constant_id = 5) const uint S = 1;
layout(constant_id = 6) const uint AVG = 0;
layout(constant_id = 7) const uint PAD = 1;
const uint TR = 1 + AVG;      // dx' rows per invocation
const uint SW = S * PW;       // dx' columns per invocation
const uint TL = S * (PW - AVG); // dx columns per invocation
const uint KK = KH * KW;
#ifdef BWD_DATA_SG
const uint LANES = gl_WorkGroupSize.x; // the workgroup is one subgroup
const uint NWL = (KW * CIB + LANES - 1) / LANES; // weight loads per lane per (oc, kh)
#endif
// Column j of the tile and tap kw read ow = s0/S + (j + PAD - kw)/S when S divides j + PAD - kw.
// E0: floor((PAD - KW + 1) / S), the smallest such offset; DS: the dz values one output row gives.
const uint E0K = (PAD + 1 + S * KW - KW) / S; // E0 + KW (kept unsigned)
const uint DS = (SW - 1 + PAD + S * KW) / S - E0K + 1;

#ifndef BWD_DATA_SG
#define SSBO_READS 1 // the GPU kernel reads storage buffers, the CPU one texel buffers (reads.glsl)
#endif
#include "reads.glsl"
READONLY_F32(0, dz_t)
READONLY_F32(1, w_t)
#define DZ(i) FETCH_F32(dz_t, i)
#define W(i) FETCH_F32(w_t, i)
layout(std430, binding = 2) buffer DX { float dx[]; };
layout(push_constant) uniform Push {
	uint lanes;      // h_in * tiles_w
	uint tiles_w;
	uint cig, cog;   // input / output channels per group
	uint cbpg;       // input-channel blocks per group
	uint h_in, w_in; // stored x plane
	uint h_out, w_out;
	uint c_out;
	uint x_c_total, x_c_off;
} pc;

void main()
{
	uint lane = gl_GlobalInvocationID.x;
#ifdef BWD_DATA_SG
	// every lane takes part in the weight shuffles: the extra lanes of the last workgroup redo the
	// last tile and write nothing
	bool live = lane < pc.lanes;
	lane = min(lane, pc.lanes - 1);
#else
	if (lane >= pc.lanes)
		return;
#endif
	uint tw = lane % pc.tiles_w, ih = lane / pc.tiles_w, n = gl_WorkGroupID.z;
	uint blk = gl_WorkGroupID.y, g = blk / pc.cbpg;
	uint ci0 = (blk - g * pc.cbpg) * CIB;
	int hc = int(pc.h_in - AVG), wc = int(pc.w_in - AVG); // dx' plane
	int c0 = int(tw * TL);                                // first dx column of the tile
	int r0 = int(ih) - int(AVG), s0 = c0 - int(S * AVG);  // first dx' row / column
	int owlo = s0 / int(S) + int(E0K) - int(KW);          // first dz column of the window

	float acc[TR][SW][CIB];
	[[unroll]] for (uint tr = 0; tr < TR; tr++)
		[[unroll]] for (uint j = 0; j < SW; j++)
			[[unroll]] for (uint c = 0; c < CIB; c++)
				acc[tr][j][c] = 0.0;

	uint cw[CIB]; // weight offset of each channel of the block (clamped into the group)
	[[unroll]] for (uint c = 0; c < CIB; c++)
		cw[c] = min(ci0 + c, pc.cig - 1) * KK;
	// window columns and their validity
	uint dcol[DS];
	bool dok[DS];
	[[unroll]] for (uint k = 0; k < DS; k++) {
		int ow = owlo + int(k);
		dok[k] = ow >= 0 && ow < int(pc.w_out);
		dcol[k] = uint(clamp(ow, 0, int(pc.w_out) - 1));
	}
	uint plane_out = pc.h_out * pc.w_out;
	uint dzo = (n * pc.c_out + g * pc.cog) * plane_out;
	uint wo = g * pc.cog * pc.cig * KK;
	for (uint o = 0; o < pc.cog; o++, dzo += plane_out, wo += pc.cig * KK) {
		[[unroll]] for (uint kh = 0; kh < KH; kh++) {
			float wv[KW][CIB];
#ifdef BWD_DATA_SG
			// the KW*CIB weights (f = c*KW + kw) loaded once per subgroup, NWL per lane, then
			// shuffled from lanes that are constants after unrolling
			float wl[NWL];
			[[unroll]] for (uint v = 0; v < NWL; v++) {
				uint f = min(v * LANES + gl_SubgroupInvocationID, KW * CIB - 1), c = f / KW;
				wl[v] = W(wo + min(ci0 + c, pc.cig - 1) * KK + kh * KW + f - c * KW);
			}
			[[unroll]] for (uint kw = 0; kw < KW; kw++)
				[[unroll]] for (uint c = 0; c < CIB; c++)
					wv[kw][c] = subgroupShuffle(wl[(c * KW + kw) / LANES], (c * KW + kw) % LANES);
#else
			[[unroll]] for (uint kw = 0; kw < KW; kw++)
				[[unroll]] for (uint c = 0; c < CIB; c++)
					wv[kw][c] = W(wo + cw[c] + kh * KW + kw);
#endif
			[[unroll]] for (uint tr = 0; tr < TR; tr++) {
				int row = r0 + int(tr);
				int qh = row + int(PAD) - int(kh); // oh * S
				if (row < 0 || row >= hc || qh < 0 || uint(qh) % S != 0 || uint(qh) / S >= pc.h_out)
					continue;
				uint dzr = dzo + uint(qh) / S * pc.w_out;
				float dv[DS];
				[[unroll]] for (uint k = 0; k < DS; k++)
					dv[k] = dok[k] ? DZ(dzr + dcol[k]) : 0.0;
				[[unroll]] for (uint kw = 0; kw < KW; kw++)
					[[unroll]] for (uint j = 0; j < SW; j++) {
						uint e = j + PAD + S * KW - kw; // (j + PAD - kw) + S*KW >= 0
						if (e % S != 0)
							continue;
						float d = dv[e / S - E0K];
						[[unroll]] for (uint c = 0; c < CIB; c++)
							acc[tr][j][c] += wv[kw][c] * d;
					}
			}
		}
	}

#ifdef BWD_DATA_SG
	if (!live)
		return;
#endif
	uint plane = pc.h_in * pc.w_in;
	[[unroll]] for (uint c = 0; c < CIB; c++) {
		uint ci = ci0 + c;
		if (ci >= pc.cig)
			break;
		uint xb = (n * pc.x_c_total + pc.x_c_off + g * pc.cig + ci) * plane + ih * pc.w_in;
		[[unroll]] for (uint t = 0; t < TL; t++) {
			uint col = uint(c0) + t;
			if (col >= pc.w_in)
				break;
			float v;
			if (AVG == 1) {
				// dx' columns col-1 and col (tile indices j0, j0+1), zero outside the dx' plane
				uint j0 = min(t + S - 1, SW - 1), j1 = min(t + S, SW - 1);
				bool ok0 = col >= 1, ok1 = int(col) < wc;
				float a = ok0 ? acc[0][j0][c] + acc[TR - 1][j0][c] : 0.0;
				float b = ok1 ? acc[0][j1][c] + acc[TR - 1][j1][c] : 0.0;
				v = 0.25 * (a + b);
			} else {
				v = acc[0][t][c];
			}
			dx[xb + col] += v;
		}
	}
}
