#version 450
// Direct 2-D convolution, NCHW f32, fused epilogue:
//   y[n, y_c_off + oc] = act(conv(x', w)[oc] + bias[oc] (+ r if RES == 2)) (+ r if RES == 1)
// x' = x, or avg_pool2d(x, 2, 1) computed on load when AVG (AConv/ADown); zero padding implicit;
// groups; input/output/residual are channel slices (c_total, c_off) of larger tensors.
// Each invocation computes a register tile of 4*OCV output channels x PW consecutive output
// pixels of one row. The output-channel block comes from gl_WorkGroupID.y, so every weight load is
// subgroup-uniform (a broadcast on lavapipe); the input row segment feeding the tile is loaded once
// per (ci, kh) and reused for all KW taps. Tile sizes, kernel size and stride are spec constants
// so the inner loops unroll fully; 1x1/s1 becomes a plain GEMM over pixels.
// Bindings: 0 x f32 (read), 1 w vec4 packed [groups*bpg][cig][KH][KW][OCV] (read; 4 output channels
//   per vec4, zero-padded per group to a multiple of 4*OCV), 2 bias vec4 [groups*bpg][OCV] (read),
//   3 r f32 residual (read; any buffer when RES == 0), 4 y f32 (write).
// Push: see struct Push (nn/layers/conv2d.c builds it). Spec: 0 workgroup size, 1 OCV, 2 PW, 3 KH,
//   4 KW, 5 stride, 6 act (0 none, 1 SiLU, 2 sigmoid), 7 AVG, 8 RES (0 none, 1 after act, 2 before).
// Grid: ceil(n*h_out*tiles_w / wg) x (groups*bpg) x 1, tiles_w = ceil(w_out / PW).
// CPU reference: nn_conv2d_forward_ref (nn/ref/conv2d.c).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OCV = 2;
layout(constant_id = 2) const uint PW = 4;
layout(constant_id = 3) const uint KH = 3;
layout(constant_id = 4) const uint KW = 3;
layout(constant_id = 5) const uint S = 1;
layout(constant_id = 6) const uint ACT = 0;
layout(constant_id = 7) const bool AVG = false;
layout(constant_id = 8) const uint RES = 0;
const uint XL = (PW - 1) * S + KW; // input columns feeding one tile row

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { vec4 w[]; };
layout(std430, binding = 2) readonly buffer B { vec4 bias[]; };
layout(std430, binding = 3) readonly buffer R { float r[]; };
layout(std430, binding = 4) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push {
	uint lanes;      // n * h_out * tiles_w
	uint tiles_w;
	uint cig, cog;   // input / output channels per group
	uint bpg;        // output-channel blocks per group
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

void main()
{
	uint lane = gl_GlobalInvocationID.x;
	if (lane >= pc.lanes)
		return;
	uint tw = lane % pc.tiles_w, t = lane / pc.tiles_w;
	uint oh = t % pc.h_out, n = t / pc.h_out;
	uint blk = gl_WorkGroupID.y, g = blk / pc.bpg;
	uint oc0 = (blk - g * pc.bpg) * (4 * OCV); // first output channel of the tile, within the group
	uint ow0 = tw * PW;
	int hc = int(AVG ? pc.h_in - 1 : pc.h_in), wc = int(AVG ? pc.w_in - 1 : pc.w_in);

	vec4 acc[PW][OCV];
	for (uint v = 0; v < OCV; v++) {
		vec4 b = bias[blk * OCV + v];
		for (uint p = 0; p < PW; p++)
			acc[p][v] = b;
	}

	uint plane = pc.h_in * pc.w_in;
	uint xbase = (n * pc.x_c_total + pc.x_c_off + g * pc.cig) * plane;
	uint wbase = blk * pc.cig * (KH * KW * OCV);
	int ih0 = int(oh * S) - int(pc.pad), iw0 = int(ow0 * S) - int(pc.pad);
	// Column offsets and validity of the tile's input segment do not depend on ci or kh.
	uint col[XL];
	bool colok[XL];
	for (uint j = 0; j < XL; j++) {
		int iw = iw0 + int(j);
		colok[j] = iw >= 0 && iw < wc;
		col[j] = uint(clamp(iw, 0, wc - 1));
	}
	for (uint ci = 0; ci < pc.cig; ci++) {
		for (uint kh = 0; kh < KH; kh++) {
			int ih = ih0 + int(kh);
			bool rowok = ih >= 0 && ih < hc;
			uint row = xbase + uint(clamp(ih, 0, hc - 1)) * pc.w_in;
			float xr[XL];
			for (uint j = 0; j < XL; j++) {
				float v;
				if (AVG) {
					uint a = row + col[j];
					v = 0.25 * (x[a] + x[a + 1] + x[a + pc.w_in] + x[a + pc.w_in + 1]);
				} else {
					v = x[row + col[j]];
				}
				xr[j] = rowok && colok[j] ? v : 0.0;
			}
			uint wi = wbase + kh * (KW * OCV);
			for (uint kw = 0; kw < KW; kw++) {
				vec4 wv[OCV];
				for (uint v = 0; v < OCV; v++)
					wv[v] = w[wi + kw * OCV + v];
				for (uint p = 0; p < PW; p++) {
					float xv = xr[p * S + kw];
					for (uint v = 0; v < OCV; v++)
						acc[p][v] += wv[v] * xv;
				}
			}
		}
		xbase += plane;
		wbase += KH * KW * OCV;
	}

	uint plane_out = pc.h_out * pc.w_out;
	uint ybase = (n * pc.y_c_total + pc.y_c_off + g * pc.cog) * plane_out + oh * pc.w_out;
	uint rbase = (n * pc.r_c_total + pc.r_c_off + g * pc.cog) * plane_out + oh * pc.w_out;
	for (uint v = 0; v < OCV; v++) {
		for (uint c = 0; c < 4; c++) {
			uint oc = oc0 + v * 4 + c;
			if (oc >= pc.cog)
				break;
			for (uint p = 0; p < PW; p++) {
				uint ow = ow0 + p;
				if (ow >= pc.w_out)
					break;
				float val = acc[p][v][c];
				if (RES == 2)
					val += r[rbase + oc * plane_out + ow];
				val = act(val);
				if (RES == 1)
					val += r[rbase + oc * plane_out + ow];
				y[ybase + oc * plane_out + ow] = val;
			}
		}
	}
}
