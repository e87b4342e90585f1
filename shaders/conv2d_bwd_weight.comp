#version 450
#extension GL_EXT_control_flow_attributes : require
// Weight/bias gradient of the convolution, first pass of a deterministic split-K: partial sums over
// one fixed chunk of output rows (the flattened (n, oh) index, rows [chunk*rpc, chunk*rpc + rpc)):
//   part[chunk][oc, ci, kh, kw] = sum over the chunk's (n, oh) and all ow of
//                                 dz[n, oc, oh, ow] * x'[n, g*cig + ci, oh*S + kh - pad, ow*S + kw - pad]
//   part[chunk][wcount + oc]    = sum over the chunk of dz[n, oc, oh, ow]
// x' = x (channel slice), or its 2x2/s1 average pool computed on load when AVG (each stored row
// loaded once per (ci, output row) and pooled as 0.25 * ((a + b) + (c + d))); zero padding.
// Each invocation owns OCB output channels x CIB input channels x all KH*KW taps of one group and
// walks its chunk PW output pixels at a time, loading the x row segment feeding them once per
// (ci, kh) and reusing it for all KW taps. Summation order is fixed: the result repeats bit for bit.
// conv2d_bwd_weight_reduce.comp then sums the chunks in order.
// Bindings (0 and 1 texel buffers in the _sg kernel, storage buffers otherwise): 0 x f32 [n, x_c_total, h_in, w_in] (read), 1 dz f32 dense
//   [n, c_out, h_out, w_out]
//   (read), 2 part f32 [chunks][stride] (write).
// Push: struct Push (nn/layers/conv2d_bwd.c). Spec: 0 workgroup size, 1 OCB, 2 CIB, 3 PW, 4 KH,
//   5 KW, 6 stride S, 7 AVG (0/1).
// Grid: ceil(tiles / wg) x chunks x 1, tiles = groups * obpg * cbpg (input-channel block fastest,
//   so neighbouring lanes share the dz loads).
// CPU reference: nn_conv2d_backward_weight_ref (nn/ref/conv2d_bwd.c).
#include "conv2d_bwd_weight.glsl"
