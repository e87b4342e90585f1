#version 450
// Fused gradient-norm clipping + SGD step (nn_sgd_record), PyTorch semantics, one invocation per
// parameter: clip = max_norm / (sqrt(sumsq[0]) + 1e-6) when max_norm > 0 and that is < 1, else 1;
// d = g * clip + wd * p; buf = FIRST ? d : momentum * buf + d;
// p -= lr * (NESTEROV ? d + momentum * buf : buf). g is only read. `precise`: no FMA contraction,
// so each step rounds as the CPU reference does.
// Bindings: 0 sumsq [1] f32 (read; unused when max_norm <= 0), 1 p [n] f32 (read/write),
//   2 g [n] f32 (read), 3 buf [n] f32 (read/write; only written when FIRST).
// Push: n, lr, momentum, wd, max_norm. Spec: 0 workgroup size, 1 NESTEROV, 2 FIRST.
// Grid: ceil(n / wg) x 1 x 1, folded into y past the x limit.
// CPU reference: nn_model_grads_clip_ref + nn_sgd_step_ref (nn/optim_ref.c).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const bool NESTEROV = true;
layout(constant_id = 2) const bool FIRST = false;
layout(std430, binding = 0) readonly buffer S { float sumsq[]; };
layout(std430, binding = 1) buffer P { float p[]; };
layout(std430, binding = 2) readonly buffer G { float g[]; };
layout(std430, binding = 3) buffer B { float buf[]; };
layout(push_constant) uniform Push { uint n; float lr; float momentum; float wd; float max_norm; } pc;

void main()
{
	uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
	if (i >= pc.n)
		return;
	precise float clip = 1.0;
	if (pc.max_norm > 0.0) {
		precise float coef = pc.max_norm / (sqrt(sumsq[0]) + 1e-6);
		if (coef < 1.0)
			clip = coef;
	}
	precise float pi = p[i];
	precise float d = g[i] * clip;
	if (pc.wd != 0.0)
		d = d + pc.wd * pi;
	precise float b = FIRST ? d : pc.momentum * buf[i] + d;
	buf[i] = b;
	p[i] = pi - pc.lr * (NESTEROV ? d + pc.momentum * b : b);
}
