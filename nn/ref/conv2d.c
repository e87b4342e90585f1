// CPU reference of the fused convolution used everywhere in the model: conv2d (+bias) -> activation,
// optional 2x2/s1 average pool on the input (AConv, ADown) and an optional residual (RepNBottleneck,
// unfused RepConvN), reading and writing channel slices. Loop order favours a contiguous inner loop.
#include <math.h>
#include <string.h>

#include "ref.h"

float nn_act_apply(enum nn_act act, float x)
{
	switch (act) {
	case NN_ACT_SILU:
		return x / (1.0f + expf(-x));
	case NN_ACT_SIGMOID:
		return 1.0f / (1.0f + expf(-x));
	case NN_ACT_NONE:
		break;
	}
	return x;
}

uint32_t nn_pool_out_size(uint32_t in, uint32_t k, uint32_t stride, uint32_t pad)
{
	if (in + 2 * pad < k || stride == 0)
		return 0;
	return (in + 2 * pad - k) / stride + 1;
}

static uint32_t conv_in_h(const struct nn_conv2d_desc *d)
{
	return d->avgpool_before ? d->h_in - 1 : d->h_in;
}

static uint32_t conv_in_w(const struct nn_conv2d_desc *d)
{
	return d->avgpool_before ? d->w_in - 1 : d->w_in;
}

uint32_t nn_conv2d_out_h(const struct nn_conv2d_desc *d)
{
	return nn_pool_out_size(conv_in_h(d), d->k_h, d->stride, d->pad);
}

uint32_t nn_conv2d_out_w(const struct nn_conv2d_desc *d)
{
	return nn_pool_out_size(conv_in_w(d), d->k_w, d->stride, d->pad);
}

// First and one-past-last output index o with 0 <= o*s + k - p < in.
static void valid_range(int in, int out, int k, int s, int p, int *lo, int *hi)
{
	int a = p - k; // need o*s >= a
	int l = a <= 0 ? 0 : (a + s - 1) / s;
	int b = in - 1 + p - k; // need o*s <= b
	int h = b < 0 ? 0 : b / s + 1;
	*lo = l;
	*hi = h < out ? h : out;
	if (*hi < *lo)
		*hi = *lo;
}

// acc: [h_out, w_out] += wv * x'(plane) shifted by tap (kh, kw)
static void accumulate_tap(const struct nn_conv2d_desc *d, const float *xp, float wv, int kh, int kw,
                           float *acc, int h_out, int w_out)
{
	int hi_ = (int)conv_in_h(d), wi_ = (int)conv_in_w(d), s = (int)d->stride, p = (int)d->pad;
	int wx = (int)d->w_in; // row pitch of the stored x plane
	int oh_lo, oh_hi, ow_lo, ow_hi;
	valid_range(hi_, h_out, kh, s, p, &oh_lo, &oh_hi);
	valid_range(wi_, w_out, kw, s, p, &ow_lo, &ow_hi);
	for (int oh = oh_lo; oh < oh_hi; oh++) {
		int ih = oh * s + kh - p;
		float *arow = acc + (size_t)oh * w_out;
		const float *r0 = xp + (size_t)ih * wx;
		if (!d->avgpool_before) {
			if (s == 1) {
				const float *src = r0 + kw - p;
				for (int ow = ow_lo; ow < ow_hi; ow++)
					arow[ow] += wv * src[ow];
			} else {
				for (int ow = ow_lo; ow < ow_hi; ow++)
					arow[ow] += wv * r0[ow * s + kw - p];
			}
		} else {
			const float *r1 = r0 + wx;
			for (int ow = ow_lo; ow < ow_hi; ow++) {
				int iw = ow * s + kw - p;
				float v = (r0[iw] + r0[iw + 1] + r1[iw] + r1[iw + 1]) * 0.25f;
				arow[ow] += wv * v;
			}
		}
	}
}

void nn_conv2d_forward_ref(const struct nn_conv2d_desc *d, const float *x, const float *w,
                           const float *bias, const float *residual, float *y)
{
	uint32_t h_out = nn_conv2d_out_h(d), w_out = nn_conv2d_out_w(d);
	size_t plane_out = (size_t)h_out * w_out, plane_in = (size_t)d->h_in * d->w_in;
	uint32_t xct = d->x_c_total ? d->x_c_total : d->c_in;
	uint32_t yct = d->y_c_total ? d->y_c_total : d->c_out;
	uint32_t rct = d->r_c_total ? d->r_c_total : d->c_out;
	uint32_t cig = d->c_in / d->groups, cog = d->c_out / d->groups; // per group
	size_t ksz = (size_t)d->k_h * d->k_w;

	for (uint32_t n = 0; n < d->n; n++) {
		for (uint32_t oc = 0; oc < d->c_out; oc++) {
			uint32_t g = oc / cog;
			// acc = y[n, y_c_off + oc] : [h_out, w_out]
			float *acc = y + ((size_t)n * yct + d->y_c_off + oc) * plane_out;
			memset(acc, 0, plane_out * sizeof(float));
			for (uint32_t ci = 0; ci < cig; ci++) {
				// xp = x[n, x_c_off + g*cig + ci] : [h_in, w_in]
				const float *xp = x + ((size_t)n * xct + d->x_c_off + g * cig + ci) * plane_in;
				const float *wk = w + ((size_t)oc * cig + ci) * ksz; // [k_h, k_w]
				for (uint32_t kh = 0; kh < d->k_h; kh++)
					for (uint32_t kw = 0; kw < d->k_w; kw++)
						accumulate_tap(d, xp, wk[kh * d->k_w + kw], (int)kh, (int)kw, acc,
						               (int)h_out, (int)w_out);
			}
			float b = bias ? bias[oc] : 0.0f;
			const float *rp = residual ? residual + ((size_t)n * rct + d->r_c_off + oc) * plane_out : NULL;
			for (size_t i = 0; i < plane_out; i++) {
				float v = acc[i] + b;
				if (rp && d->res_before_act)
					v += rp[i];
				v = nn_act_apply(d->act, v);
				if (rp && !d->res_before_act)
					v += rp[i];
				acc[i] = v;
			}
		}
	}
}
