#version 450
// detect_decode_fwd reading its input from storage buffers (GPUs): see include/detect_decode_fwd.glsl.
#extension GL_GOOGLE_include_directive : require
#include "detect_decode_fwd.glsl"
