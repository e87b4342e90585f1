#version 450
// Exponential moving average of the weights (nn_ema_record, the official ModelEMA update):
// ema[i] = ema[i] * decay + one_minus_decay * cur[i], one invocation per float, no FMA contraction
// (`precise`), in the order torch evaluates `v *= d; v += (1 - d) * model`.
// Bindings: 0 ema [n] f32 (read/write), 1 cur [n] f32 (read). Push: n, decay, one_minus_decay
// (1 - decay rounded once from double on the host). Spec 0: workgroup size.
// Grid: ceil(n / wg) x 1 x 1, folded into y past the x limit.
// CPU reference: nn_ema_update_ref (nn/optim_ref.c).
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) buffer E { float ema[]; };
layout(std430, binding = 1) readonly buffer C { float cur[]; };
layout(push_constant) uniform Push { uint n; float decay; float one_minus_decay; } pc;

void main()
{
	uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	if (i >= pc.n)
		return;
	precise float a = ema[i] * pc.decay;
	precise float b = pc.one_minus_decay * cur[i];
	ema[i] = a + b;
}
