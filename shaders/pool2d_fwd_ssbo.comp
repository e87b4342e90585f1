#version 450
// pool2d_fwd reading its input from storage buffers (GPUs): see include/pool2d_fwd.glsl.
#extension GL_GOOGLE_include_directive : require
#include "pool2d_fwd.glsl"
