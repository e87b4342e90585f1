// Activation helpers shared by the BatchNorm training kernels (bn_act_fwd, bn_act_bwd_*).
// act: enum nn_act (0 none, 1 SiLU, 2 sigmoid). CPU references: nn_act_apply (nn/ref/conv2d.c) and
// nn_act_grad (nn/ref/conv2d_bwd.c).
#include "reads.glsl"
#define ACT_NONE 0
#define ACT_SILU 1
#define ACT_SIGMOID 2
// Residual placement (spec RES): none, added before the activation, added after it.
#define RES_NONE 0
#define RES_BEFORE 1
#define RES_AFTER 2

float act_apply(int act, float u)
{
	if (act == ACT_SILU)
		return u / (1.0 + exp(-u));
	if (act == ACT_SIGMOID)
		return 1.0 / (1.0 + exp(-u));
	return u;
}

// d act / d u at u.
float act_grad(int act, float u)
{
	if (act == ACT_NONE)
		return 1.0;
	float s = 1.0 / (1.0 + exp(-u));
	return act == ACT_SILU ? s * (1.0 + u * (1.0 - s)) : s * (1.0 - s);
}

// The same on four values at once.
vec4 act_apply(int act, vec4 u)
{
	if (act == ACT_SILU)
		return u / (1.0 + exp(-u));
	if (act == ACT_SIGMOID)
		return 1.0 / (1.0 + exp(-u));
	return u;
}

vec4 act_grad(int act, vec4 u)
{
	if (act == ACT_NONE)
		return vec4(1.0);
	vec4 s = 1.0 / (1.0 + exp(-u));
	return act == ACT_SILU ? s * (1.0 + u * (1.0 - s)) : s * (1.0 - s);
}

// Four consecutive values of arr / arr4 (the same buffer as float[] and vec4[]) from float index at,
// of which `left` (>= 1) are inside the plane: a vec4 load when VEC4 (then at % 4 == 0 and left >= 4),
// else scalar loads, zeros past the plane. Needs a spec constant VEC4.
#define BN_LOAD4(arr, arr4, at, left) \
	(VEC4 ? arr4[(at) >> 2] \
	      : vec4(arr[at], (left) > 1 ? arr[(at) + 1] : 0.0, (left) > 2 ? arr[(at) + 2] : 0.0, \
	             (left) > 3 ? arr[(at) + 3] : 0.0))
// The same from a read-only texel buffer (one vector gather per component on CPU devices, where a
// storage-buffer load is a loop over the lanes), bound with R32G32B32A32 texels when VEC4 and R32
// texels otherwise.
#define BN_TLOAD4(tex, at, left) \
	(VEC4 ? FETCH_VEC4(tex, (at) >> 2) \
	      : vec4(FETCH_F32(tex, at), (left) > 1 ? FETCH_F32(tex, (at) + 1) : 0.0, \
	             (left) > 2 ? FETCH_F32(tex, (at) + 2) : 0.0, (left) > 3 ? FETCH_F32(tex, (at) + 3) : 0.0))
// Stores the first min(left, 4) values of v (statement).
#define BN_STORE4(arr, arr4, at, left, v) \
	if (VEC4) { \
		arr4[(at) >> 2] = (v); \
	} else { \
		arr[at] = (v).x; \
		if ((left) > 1) arr[(at) + 1] = (v).y; \
		if ((left) > 2) arr[(at) + 2] = (v).z; \
		if ((left) > 3) arr[(at) + 3] = (v).w; \
	}
