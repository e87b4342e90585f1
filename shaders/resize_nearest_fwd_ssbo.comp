#version 450
// resize_nearest_fwd reading its input from storage buffers (GPUs): see include/resize_nearest_fwd.glsl.
#extension GL_GOOGLE_include_directive : require
#include "resize_nearest_fwd.glsl"
