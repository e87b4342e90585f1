// Body of conv2d_bwd_weight.comp and conv2d_bwd_weight_sg.comp (BWD_WEIGHT_SG defined: the
// workgroup is one subgroup whose lanes share the input-channel block, so each step's x values are
// loaded once per subgroup and shared with subgroupShuffle).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OCB = 4;
layout(constant_id = 2) const uint CIB = 2;
layout(constant_id = 3) const uint PW = 4;
layout(constant_id = 4) const uint KH = 3;
layout(constant_id = 5) const uint KW = 3;
layout(constant_id = 6) const uint S = 1;
layout(constant_id = 7) const uint AVG = 0;
const uint KK = KH * KW;
const uint XL = (PW - 1) * S + KW; // input columns feeding PW output pixels
#ifdef BWD_WEIGHT_SG
const uint LANES = gl_WorkGroupSize.x;               // the workgroup is one subgroup
const uint RR = KH + AVG, RC = XL + AVG;             // stored rows / columns per channel and step
const uint NXL = (CIB * RR * RC + LANES - 1) / LANES; // x loads per lane per step
#endif

#ifndef BWD_WEIGHT_SG
#define SSBO_READS 1 // the GPU kernel reads storage buffers, the CPU one texel buffers (reads.glsl)
#endif
#include "reads.glsl"
READONLY_F32(0, x_t)
READONLY_F32(1, dz_t)
#define X(i) FETCH_F32(x_t, i)
#define DZ(i) FETCH_F32(dz_t, i)
layout(std430, binding = 2) writeonly buffer P { float part[]; };
layout(push_constant) uniform Push {
	uint tiles;            // groups * obpg * cbpg
	uint obpg, cbpg;       // output / input channel blocks per group
	uint cig, cog, c_out;
	uint h_in, w_in, h_out, w_out;
	uint pad;
	uint x_c_total, x_c_off;
	uint rows, rpc;        // n * h_out; rows per chunk
	uint stride, wcount;   // floats per chunk in part; weight floats (c_out * cig * KK)
} pc;

void main()
{
#ifdef BWD_WEIGHT_SG
	// lanes: consecutive output-channel blocks of one input-channel block (all lanes take part in
	// the shuffles; the extra ones redo the last block and write nothing)
	uint obw = (pc.obpg + LANES - 1) / LANES, wgx = gl_WorkGroupID.x;
	uint t = wgx / obw, cb = t % pc.cbpg, g = t / pc.cbpg;
	uint ob = (wgx - t * obw) * LANES + gl_SubgroupInvocationID;
	bool live = ob < pc.obpg;
	ob = min(ob, pc.obpg - 1);
#else
	uint tile = gl_GlobalInvocationID.x;
	if (tile >= pc.tiles)
		return;
	uint cb = tile % pc.cbpg, t = tile / pc.cbpg;
	uint ob = t % pc.obpg, g = t / pc.obpg;
#endif
	uint oc0 = ob * OCB, ci0 = cb * CIB; // within the group
	uint chunk = gl_WorkGroupID.y;
	uint row0 = chunk * pc.rpc, row1 = min(row0 + pc.rpc, pc.rows);
	int hc = int(pc.h_in - AVG), wc = int(pc.w_in - AVG);
	int pad = int(pc.pad);

	float acc[OCB][CIB * KK];
	float accb[OCB];
	[[unroll]] for (uint j = 0; j < OCB; j++) {
		accb[j] = 0.0;
		[[unroll]] for (uint k = 0; k < CIB * KK; k++)
			acc[j][k] = 0.0;
	}
	uint plane = pc.h_in * pc.w_in, plane_out = pc.h_out * pc.w_out;
	for (uint rw = row0; rw < row1; rw++) {
		uint n = rw / pc.h_out, oh = rw - n * pc.h_out;
		uint dzb = (n * pc.c_out + g * pc.cog) * plane_out + oh * pc.w_out;
		uint xb = (n * pc.x_c_total + pc.x_c_off + g * pc.cig) * plane;
		for (uint ow0 = 0; ow0 < pc.w_out; ow0 += PW) {
			float dv[OCB][PW];
			[[unroll]] for (uint j = 0; j < OCB; j++) {
				uint oc = min(oc0 + j, pc.cog - 1);
				[[unroll]] for (uint p = 0; p < PW; p++) {
					uint ow = ow0 + p;
					float v = DZ(dzb + oc * plane_out + min(ow, pc.w_out - 1));
					dv[j][p] = ow < pc.w_out && oc0 + j < pc.cog ? v : 0.0;
					accb[j] += dv[j][p];
				}
			}
			int iw0 = int(ow0 * S) - pad;
			uint col[XL];
			bool colok[XL];
			[[unroll]] for (uint k = 0; k < XL; k++) {
				int iw = iw0 + int(k);
				colok[k] = iw >= 0 && iw < wc;
				col[k] = uint(clamp(iw, 0, wc - 1));
			}
#ifdef BWD_WEIGHT_SG
			// the step's CIB x RR x RC stored x values, the same in every lane, loaded once per
			// subgroup (zeros in the padding unless AVG, whose pooling masks instead)
			float xl[NXL];
			[[unroll]] for (uint v = 0; v < NXL; v++) {
				uint f = min(v * LANES + gl_SubgroupInvocationID, CIB * RR * RC - 1);
				uint c = f / (RR * RC), r = f % (RR * RC) / RC, k = f % RC;
				uint xc = xb + min(ci0 + c, pc.cig - 1) * plane;
				int ih = int(oh * S + r) - pad, iw = iw0 + int(k);
				if (AVG == 1) {
					xl[v] = X(xc + uint(clamp(ih, 0, int(pc.h_in) - 1)) * pc.w_in +
					          uint(clamp(iw, 0, int(pc.w_in) - 1)));
				} else {
					bool ok = ih >= 0 && ih < hc && iw >= 0 && iw < wc;
					float xv = X(xc + uint(clamp(ih, 0, hc - 1)) * pc.w_in + uint(clamp(iw, 0, wc - 1)));
					xl[v] = ok ? xv : 0.0;
				}
			}
#endif
			[[unroll]] for (uint c = 0; c < CIB; c++) {
				uint xc = xb + min(ci0 + c, pc.cig - 1) * plane;
				if (AVG == 1) {
					// Pooled row kh = the two stored rows oh*S + kh - pad (+1): walk the KH + 1
					// stored rows once, keeping each row's horizontal pair sums for the next.
					float hp[XL];
					[[unroll]] for (uint r = 0; r <= KH; r++) {
						int ih = int(oh * S + r) - pad; // stored row
						uint xr0 = xc + uint(clamp(ih, 0, int(pc.h_in) - 1)) * pc.w_in;
						float raw[XL + 1];
						[[unroll]] for (uint k = 0; k <= XL; k++) {
#ifdef BWD_WEIGHT_SG
							const uint f = (c * RR + r) * RC + k;
							raw[k] = subgroupShuffle(xl[f / LANES], f % LANES);
#else
							raw[k] = X(xr0 + uint(clamp(iw0 + int(k), 0, int(pc.w_in) - 1)));
#endif
						}
						float hs[XL];
						[[unroll]] for (uint k = 0; k < XL; k++)
							hs[k] = raw[k] + raw[k + 1];
						if (r > 0) {
							uint kh = r - 1;
							bool rowok = ih >= 1 && ih - 1 < hc; // pooled row ih - 1
							float xr[XL];
							[[unroll]] for (uint k = 0; k < XL; k++)
								xr[k] = rowok && colok[k] ? 0.25 * (hp[k] + hs[k]) : 0.0;
							[[unroll]] for (uint kw = 0; kw < KW; kw++)
								[[unroll]] for (uint p = 0; p < PW; p++) {
									float xv = xr[p * S + kw];
									[[unroll]] for (uint j = 0; j < OCB; j++)
										acc[j][(c * KH + kh) * KW + kw] += dv[j][p] * xv;
								}
						}
						[[unroll]] for (uint k = 0; k < XL; k++)
							hp[k] = hs[k];
					}
				} else {
					[[unroll]] for (uint kh = 0; kh < KH; kh++) {
						int ih = int(oh * S + kh) - pad;
						bool rowok = ih >= 0 && ih < hc;
						uint xr0 = xc + uint(clamp(ih, 0, hc - 1)) * pc.w_in;
						float xr[XL];
						[[unroll]] for (uint k = 0; k < XL; k++) {
#ifdef BWD_WEIGHT_SG
							const uint f = (c * RR + kh) * RC + k;
							xr[k] = subgroupShuffle(xl[f / LANES], f % LANES);
#else
							xr[k] = rowok && colok[k] ? X(xr0 + col[k]) : 0.0;
#endif
						}
						[[unroll]] for (uint kw = 0; kw < KW; kw++)
							[[unroll]] for (uint p = 0; p < PW; p++) {
								float xv = xr[p * S + kw];
								[[unroll]] for (uint j = 0; j < OCB; j++)
									acc[j][(c * KH + kh) * KW + kw] += dv[j][p] * xv;
							}
					}
				}
			}
		}
	}

#ifdef BWD_WEIGHT_SG
	if (!live)
		return;
#endif
	uint base = chunk * pc.stride;
	[[unroll]] for (uint j = 0; j < OCB; j++) {
		uint oc = g * pc.cog + oc0 + j;
		if (oc0 + j >= pc.cog)
			break;
		[[unroll]] for (uint c = 0; c < CIB; c++) {
			if (ci0 + c >= pc.cig)
				break;
			uint wb = base + (oc * pc.cig + ci0 + c) * KK;
			[[unroll]] for (uint k = 0; k < KK; k++)
				part[wb + k] = acc[j][c * KK + k];
		}
		if (cb == 0)
			part[base + pc.wcount + oc] = accb[j];
	}
}
