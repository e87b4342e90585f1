#version 450
#extension GL_EXT_control_flow_attributes : require
// 1x1 stride-1 convolution as a GEMM over pixels, NCHW f32, with the same fused epilogue as
// conv2d_fwd: y[n, y_c_off + oc] = act(sum_ci w[oc, ci] x[n, x_c_off + ci] + bias[oc] (+ r if
// RES == 2)) (+ r if RES == 1); groups; channel slices. Needs h*w % 4 == 0 (vec4 pixel loads).
// Each invocation computes OCB output channels x 4*PV consecutive pixels (flattened h*w) as vec4
// accumulators; the output-channel block comes from gl_WorkGroupID.y so each weight is one
// subgroup-uniform scalar load broadcast into PV vec4 FMAs, and each per-invocation input load is
// a vec4 feeding OCB FMAs (lavapipe turns per-invocation loads into a loop over lanes, so both
// reuse factors matter).
// Bindings: 0 x vec4 (read), 1 w vec4 packed [groups*bpg][cig][OCB/4] (OCB a multiple of 4) (read, zero-padded per group),
//   2 bias f32 [groups*bpg][OCB] (read), 3 r vec4 residual (read; any buffer when RES == 0),
//   4 y vec4 (write).
// Push: struct Push (nn/layers/conv2d.c). Spec: 0 workgroup size, 1 OCB, 2 PV, 3 act (0 none,
//   1 SiLU, 2 sigmoid), 4 RES (0 none, 1 after act, 2 before).
// Grid: ceil(n * ceil(hw / (4*PV)) / wg) x (groups*bpg) x 1.
// CPU reference: nn_conv2d_forward_ref (nn/ref/conv2d.c).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OCB = 16;
layout(constant_id = 2) const uint PV = 2;
layout(constant_id = 3) const uint ACT = 0;
layout(constant_id = 4) const uint RES = 0;

layout(std430, binding = 0) readonly buffer X { vec4 x[]; };
layout(std430, binding = 1) readonly buffer W { vec4 w[]; };
layout(std430, binding = 2) readonly buffer B { float bias[]; };
layout(std430, binding = 3) readonly buffer R { vec4 r[]; };
layout(std430, binding = 4) writeonly buffer Y { vec4 y[]; };
layout(push_constant) uniform Push {
	uint lanes;   // n * tiles
	uint tiles;   // ceil(hw4 / PV) per image
	uint cig, cog, bpg;
	uint hw4;     // h*w / 4
	uint x_c_total, x_c_off, y_c_total, y_c_off, r_c_total, r_c_off;
} pc;

vec4 act(vec4 v)
{
	if (ACT == 1)
		return v / (1.0 + exp(-v));
	if (ACT == 2)
		return 1.0 / (1.0 + exp(-v));
	return v;
}

void main()
{
	// No early return: control flow stays uniform so the weight addresses stay provably uniform.
	bool live = gl_GlobalInvocationID.x < pc.lanes;
	uint lane = min(gl_GlobalInvocationID.x, pc.lanes - 1);
	uint t = lane % pc.tiles, n = lane / pc.tiles;
	uint blk = gl_WorkGroupID.y, g = blk / pc.bpg;
	uint oc0 = (blk - g * pc.bpg) * OCB;
	uint p0 = t * PV;

	vec4 acc[OCB][PV];
	[[unroll]] for (uint o = 0; o < OCB; o++) {
		float b = bias[blk * OCB + o];
		[[unroll]] for (uint v = 0; v < PV; v++)
			acc[o][v] = vec4(b);
	}
	// Vec4 indices of this tile's pixels, clamped to the plane (tails recompute the last vec4).
	uint px[PV];
	[[unroll]] for (uint v = 0; v < PV; v++)
		px[v] = min(p0 + v, pc.hw4 - 1);
	uint xb = (n * pc.x_c_total + pc.x_c_off + g * pc.cig) * pc.hw4;
	uint wb = blk * pc.cig * (OCB / 4);
	for (uint ci = 0; ci < pc.cig; ci++) {
		vec4 xv[PV];
		[[unroll]] for (uint v = 0; v < PV; v++)
			xv[v] = x[xb + px[v]];
		// Weights as vec4 loads: lavapipe runs one lane loop per load whatever its width.
		[[unroll]] for (uint o4 = 0; o4 < OCB / 4; o4++) {
			vec4 wv = w[wb + o4];
			[[unroll]] for (uint c = 0; c < 4; c++)
				[[unroll]] for (uint v = 0; v < PV; v++)
					acc[o4 * 4 + c][v] += wv[c] * xv[v];
		}
		xb += pc.hw4;
		wb += OCB / 4;
	}
	uint yb = (n * pc.y_c_total + pc.y_c_off + g * pc.cog + oc0) * pc.hw4;
	uint rb = (n * pc.r_c_total + pc.r_c_off + g * pc.cog + oc0) * pc.hw4;
	[[unroll]] for (uint o = 0; o < OCB; o++) {
		if (oc0 + o >= pc.cog)
			break;
		[[unroll]] for (uint v = 0; v < PV; v++) {
			if (!live || p0 + v >= pc.hw4)
				break;
			vec4 val = acc[o][v];
			if (RES == 2)
				val += r[rb + o * pc.hw4 + p0 + v];
			val = act(val);
			if (RES == 1)
				val += r[rb + o * pc.hw4 + p0 + v];
			y[yb + o * pc.hw4 + p0 + v] = val;
		}
	}
}
