#version 450
// BatchNorm running statistics after one training forward (PyTorch): running = (1 - momentum) *
// running + momentum * batch, with the unbiased batch variance var * unbias (unbias = m / (m - 1)).
// Bindings: 0 mean [c], 1 var [c] (read), 2 running_mean [c], 3 running_var [c] (read-write).
// Push: c, momentum, unbias. Spec: 0 workgroup size. Grid: ceil(c / wg) x 1 x 1.
// CPU reference: nn_bn_running_update_ref (nn/ref/bn.c).
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer M { float mean[]; };
layout(std430, binding = 1) readonly buffer V { float var[]; };
layout(std430, binding = 2) buffer RM { float rmean[]; };
layout(std430, binding = 3) buffer RV { float rvar[]; };
layout(push_constant) uniform Push {
	uint c;
	float momentum, unbias;
} pc;

void main()
{
	uint ch = gl_GlobalInvocationID.x;
	if (ch >= pc.c)
		return;
	rmean[ch] = (1.0 - pc.momentum) * rmean[ch] + pc.momentum * mean[ch];
	rvar[ch] = (1.0 - pc.momentum) * rvar[ch] + pc.momentum * (var[ch] * pc.unbias);
}
