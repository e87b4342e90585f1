// Read-only float inputs. By default texel buffers (GLSL samplerBuffer): CPU devices such as
// lavapipe turn a storage-buffer load into a loop over the SIMD lanes but a texel fetch into one
// vector gather. Compiled with -DSSBO_READS (the *_ssbo kernels) they are storage buffers instead,
// for GPUs, whose texel buffers may hold as few as 65536 floats.
//   READONLY_F32(binding, name)  declares input `name`
//   FETCH_F32(name, i)           float i (R32 texels, or the storage buffer)
//   FETCH_VEC4(name, i)          vec4 i, i.e. floats 4i..4i+3 (R32G32B32A32 texels, or the buffer)
//   FETCH_F32_OF4(name, i)       float i of a binding read with FETCH_VEC4
#ifdef SSBO_READS
#define READONLY_F32(b, name) \
	layout(std430, binding = b) readonly buffer name##_blk { float name##_f[]; }; \
	layout(std430, binding = b) readonly buffer name##_blk4 { vec4 name##_f4[]; };
#define FETCH_F32(name, i) name##_f[i]
#define FETCH_VEC4(name, i) name##_f4[i]
#define FETCH_F32_OF4(name, i) name##_f[i]
#else
#define READONLY_F32(b, name) layout(binding = b) uniform samplerBuffer name;
#define FETCH_F32(name, i) texelFetch(name, int(i)).x
#define FETCH_VEC4(name, i) texelFetch(name, int(i))
#define FETCH_F32_OF4(name, i) texelFetch(name, int((i) >> 2))[(i) & 3]
#endif
