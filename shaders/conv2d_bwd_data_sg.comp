#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#define BWD_DATA_SG 1
// conv2d_bwd_data.comp for CPU devices (lavapipe: every loaded (lane, value) pair costs ~27 cycles,
// even at one address): the same computation and results, but the workgroup is one subgroup
// (spec 0 = the subgroup size) and each (oc, kh)'s KW*CIB weights, the same in every lane, are
// loaded once per subgroup (ceil(KW*CIB / lanes) per lane) and shared with subgroupShuffle.
// Data gradient of the convolution (transposed convolution), NCHW f32, gather form (no atomics):
//   dx'[n, ci, i, j] = sum over oc of the group, taps (kh, kw) with i = oh*S + kh - PAD and
//                      j = ow*S + kw - PAD of dz[n, oc, oh, ow] * w[oc, ci, kh, kw]
//   dx[x slice] += dx'                                           (AVG == 0)
//   dx[x slice] += adjoint of the 2x2/s1 average pool of dx'    (AVG == 1: each dx' value spread
//                  * 0.25 over the 4 stored pixels it was pooled from; dx' is (h_in-1) x (w_in-1))
// Each invocation owns CIB input channels x one dx row x TL = S*(PW - AVG) consecutive columns
// starting at a multiple of S. It computes the dx' values they need: TR = 1 + AVG rows (the row
// above too when AVG) x SW = S*PW columns starting at s0 (S columns earlier when AVG), so s0 is a
// multiple of S and which taps reach which column is known at compile time. Per (oc, kh) and dx'
// row it loads the DS dz values of one output row that reach the tile and the CIB*KW weights, and
// reuses each for every (column, kw) pair they meet. The summation order of each dx' value (oc, then
// kh, then kw) does not depend on the tile, so every tile size gives the same result.
// Bindings (0 and 1 texel buffers in the _sg kernel, storage buffers otherwise): 0 dz f32 dense [n, c_out, h_out, w_out] (read), 1 w f32 raw
//   [c_out, cig, KH, KW] (read),
//   2 dx f32 [n, x_c_total, h_in, w_in] (read-write, += into channels x_c_off..).
// Push: struct Push (nn/layers/conv2d_bwd.c). Spec: 0 workgroup size, 1 CIB, 2 PW, 3 KH, 4 KW,
//   5 stride S, 6 AVG (0/1), 7 PAD.
// Grid: ceil(h_in*tiles_w / wg) x (groups*cbpg) x n, tiles_w = ceil(w_in / TL),
//   cbpg = ceil(cig / CIB).
// CPU reference: nn_conv2d_backward_data_ref (nn/ref/conv2d_bwd.c).
#include "conv2d_bwd_data.glsl"
