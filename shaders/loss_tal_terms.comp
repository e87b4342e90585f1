#version 450
// TAL loss, step 5: per (image, anchor), the loss terms and d loss / d map of every channel of the
// anchor (the gradient maps are fully overwritten). Class BCE with logits against the soft target
// on the assigned class (PyTorch's fp32 formula), gradient gain_cls * scale / S * (sigmoid - t);
// foreground anchors add (1 - CIoU(pred, target)) * t (aspect weight alpha held constant like the
// official no_grad) and the DFL two-bin cross-entropy * t / 4, with their gradients through the
// bins' softmax. S = max(sum of soft targets, 1) from W_SUM(base, 0). Per-anchor sums (cls, box,
// dfl, fg) go to W_PART for the fixed-order reductions.
// Bindings: loss_tal.glsl's 0..5, then 6..9 the set's gradient maps (unused levels repeat level 0).
// Spec 0: workgroup size. Grid: ceil(n*A / wg) x 1 x 1.
// CPU reference: run_set and fg_anchor (nn/loss_tal.c), nn_loss_ciou_grad (nn/loss_box.c).
layout(local_size_x_id = 0) in;
#include "loss_tal.glsl"
layout(std430, binding = 6) writeonly buffer D0 { float d0[]; };
layout(std430, binding = 7) writeonly buffer D1 { float d1[]; };
layout(std430, binding = 8) writeonly buffer D2 { float d2[]; };
layout(std430, binding = 9) writeonly buffer D3 { float d3[]; };

void dstore(uint l, uint i, float v)
{
	if (l == 0)
		d0[i] = v;
	else if (l == 1)
		d1[i] = v;
	else if (l == 2)
		d2[i] = v;
	else
		d3[i] = v;
}

// PyTorch's binary_cross_entropy_with_logits in fp32: (1 - t) x + (log(exp(-m) + exp(-x - m)) + m).
float bce(float x, float t)
{
	float m = max(-x, 0.0);
	return (1.0 - t) * x + (log_acc(exp(-m) + exp(-x - m)) + m);
}

// CIoU(p, t) and g = d CIoU / d p (xyxy) with the aspect weight alpha taken from p and held fixed.
float ciou_grad(vec4 p, vec4 t, out vec4 g)
{
	float w1 = p.z - p.x, h1 = p.w - p.y + EPS_IOU;
	float w2 = t.z - t.x, h2 = t.w - t.y + EPS_IOU;
	float ix = min(p.z, t.z) - max(p.x, t.x), iy = min(p.w, t.w) - max(p.y, t.y);
	float ixc = max(ix, 0.0), iyc = max(iy, 0.0);
	float inter = ixc * iyc;
	float uni = w1 * h1 + w2 * h2 - inter + EPS_IOU;
	float iou = inter / uni;
	float cw = max(p.z, t.z) - min(p.x, t.x), ch = max(p.w, t.w) - min(p.y, t.y);
	float c2 = cw * cw + ch * ch + EPS_IOU;
	float dx = t.x + t.z - p.x - p.z, dy = t.y + t.w - p.y - p.w;
	float rho2 = (dx * dx + dy * dy) / 4.0;
	float da = atan_acc(w2 / h2) - atan_acc(w1 / h1);
	const float k4 = 0.40528473456935108578;
	float v = k4 * da * da;
	float alpha = v / (v - iou + 1.0000001);
	float ciou = iou - (rho2 / c2 + v * alpha);
	vec4 dix = vec4(0.0), diy = vec4(0.0);
	if (ix >= 0.0) {
		dix.x = p.x > t.x ? -1.0 : 0.0;
		dix.z = p.z < t.z ? 1.0 : 0.0;
	}
	if (iy >= 0.0) {
		diy.y = p.y > t.y ? -1.0 : 0.0;
		diy.w = p.w < t.w ? 1.0 : 0.0;
	}
	float d_iou_inter = (uni + inter) / (uni * uni), d_iou_area = -inter / (uni * uni);
	vec4 d_area = vec4(-h1, -w1, h1, w1);
	vec4 dcw = vec4(p.x < t.x ? -1.0 : 0.0, 0.0, p.z > t.z ? 1.0 : 0.0, 0.0);
	vec4 dch = vec4(0.0, p.y < t.y ? -1.0 : 0.0, 0.0, p.w > t.w ? 1.0 : 0.0);
	vec4 drho2 = vec4(-dx, -dy, -dx, -dy) / 2.0;
	float r2 = w1 * w1 + h1 * h1, dv_da1 = -2.0 * k4 * da;
	vec4 dv = dv_da1 * vec4(-h1, w1, h1, -w1) / r2;
	vec4 dinter = dix * iyc + diy * ixc;
	vec4 diou = d_iou_inter * dinter + d_iou_area * d_area;
	vec4 dc2 = 2.0 * cw * dcw + 2.0 * ch * dch;
	vec4 dterm = drho2 / c2 - rho2 * dc2 / (c2 * c2);
	g = diou - dterm - alpha * dv;
	return ciou;
}

void main()
{
	uint i = gl_GlobalInvocationID.x;
	if (i >= P_N * P_A)
		return;
	uint b = pc.base, img = i / P_A, a = i % P_A, l = anchor_level(a);
	uint hw = P_LH(l) * P_LW(l), pix = a - P_LA(l), reg = P_REG, nc = P_NC;
	uint base = img * P_NO * hw + pix;
	float S = max(uintBitsToFloat(W[W_SUM(b, 0)]), 1.0);
	float gc = pc.scale * 0.5 / S, gb = pc.scale * 7.5 / S, gd = pc.scale * 1.5 / S;
	uint j = W[W_GT(b) + i];
	bool fg = j != NO_GT;
	uint row = fg ? GT_ROW(img, j) : 0u;
	float t = fg ? uintBitsToFloat(W[W_SCORE(b) + i]) : 0.0;
	uint lab = fg ? T[row + 4] : 0xffffffffu;
	float cls = 0.0;
	for (uint k = 0; k < nc; k++) {
		uint idx = base + (4 * reg + k) * hw;
		float x = map_load(l, idx), tk = k == lab ? t : 0.0;
		cls += bce(x, tk);
		dstore(l, idx, gc * (sigmoid_f(x) - tk));
	}
	W[W_PART(b, 0) + i] = floatBitsToUint(cls);
	W[W_PART(b, 3) + i] = floatBitsToUint(fg ? 1.0 : 0.0);
	if (!fg) {
		for (uint k = 0; k < 4 * reg; k++)
			dstore(l, base + k * hw, 0.0);
		W[W_PART(b, 1) + i] = 0u;
		W[W_PART(b, 2) + i] = 0u;
		return;
	}
	// softmax of each side's bins: max, sum, expectation, log-sum-exp
	float ms[4], sums[4], ev[4], lse[4];
	for (uint s = 0; s < 4; s++) {
		uint bs = base + s * reg * hw;
		float m = map_load(l, bs);
		for (uint k = 1; k < reg; k++)
			m = max(m, map_load(l, bs + k * hw));
		float sum = 0.0, e = 0.0;
		for (uint k = 0; k < reg; k++) {
			float p = exp(map_load(l, bs + k * hw) - m);
			sum += p;
			e += p * float(k);
		}
		ms[s] = m, sums[s] = sum, ev[s] = e / sum, lse[s] = m + log_acc(sum);
	}
	float ax = float(pix % P_LW(l)) + 0.5, ay = float(pix / P_LW(l)) + 0.5, st = P_LS(l);
	vec4 pb = vec4(ax - ev[0], ay - ev[1], ax + ev[2], ay + ev[3]);
	vec4 tb = gt_box(row) / st;
	vec4 g;
	float ciou = ciou_grad(pb, tb, g);
	W[W_PART(b, 1) + i] = floatBitsToUint((1.0 - ciou) * t);

	float lim = float(reg - 1) - 0.01;
	float td[4] = float[4](ax - tb.x, ay - tb.y, tb.z - ax, tb.w - ay);
	float dev[4] = float[4](g.x * gb * t, g.y * gb * t, -g.z * gb * t, -g.w * gb * t);
	float dfl = 0.0, gdt = gd * t / 4.0;
	for (uint s = 0; s < 4; s++) {
		float tc = min(max(td[s], 0.0), lim);
		uint tl = uint(tc);
		float wl = float(tl + 1) - tc, wr = 1.0 - wl;
		uint bs = base + s * reg * hw;
		dfl += (lse[s] - map_load(l, bs + tl * hw)) * wl + (lse[s] - map_load(l, bs + (tl + 1) * hw)) * wr;
		for (uint k = 0; k < reg; k++) {
			float p = exp(map_load(l, bs + k * hw) - ms[s]) / sums[s];
			float ce = (wl + wr) * p - (k == tl ? wl : 0.0) - (k == tl + 1 ? wr : 0.0);
			dstore(l, bs + k * hw, dev[s] * p * (float(k) - ev[s]) + gdt * ce);
		}
	}
	W[W_PART(b, 2) + i] = floatBitsToUint(dfl / 4.0 * t);
}
