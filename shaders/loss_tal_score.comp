#version 450
// TAL loss, step 4: per (image, anchor), the soft target of the assigned class: align metric times
// the gt's largest overlap over its positives divided by its largest metric + 1e-9; 0 for
// background. Written to W_SCORE (then summed to S by reduce_sum_f32).
// Bindings, push, layouts: shaders/include/loss_tal.glsl. Spec 0: workgroup size.
// Grid: ceil(n*A / wg) x 1 x 1. CPU reference: the soft-target loop of nn_loss_assign.
layout(local_size_x_id = 0) in;
#include "loss_tal.glsl"

void main()
{
	uint i = gl_GlobalInvocationID.x;
	if (i >= P_N * P_A)
		return;
	uint b = pc.base, j = W[W_GT(b) + i];
	float s = 0.0;
	if (j != NO_GT) {
		uint g = (i / P_A) * P_MT + j;
		float al = uintBitsToFloat(W[W_AL(b) + i]);
		s = al * uintBitsToFloat(W[W_OMAX(b) + g]) / (uintBitsToFloat(W[W_TMAX(b) + g]) + EPS_ASSIGN);
	}
	W[W_SCORE(b) + i] = floatBitsToUint(s);
}
