#version 450
// pool2d_fwd: see include/pool2d_fwd.glsl. Reads its input through texel buffers: CPU devices (lavapipe)
// turn a storage-buffer load into a loop over the SIMD lanes, a texel fetch into one gather.
#extension GL_GOOGLE_include_directive : require
#define TEXEL_READS 1
#include "pool2d_fwd.glsl"
