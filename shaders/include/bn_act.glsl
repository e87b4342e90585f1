// Activation helpers shared by the BatchNorm training kernels (bn_act_fwd, bn_act_bwd_*).
// act: enum nn_act (0 none, 1 SiLU, 2 sigmoid). CPU references: nn_act_apply (nn/ref/conv2d.c) and
// nn_act_grad (nn/ref/conv2d_bwd.c).
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
