// CPU reference of the convolution's backward pass (nn/ref_bwd.h): activation/residual gradient, data
// gradient (transposed convolution through the optional 2x2/s1 average pool) and weight/bias
// gradient, over the same channel-sliced descriptors as nn_conv2d_forward_ref.
#include <math.h>

#include "ref_bwd.h"

float nn_act_grad(enum nn_act act, float u)
{
	switch (act) {
	case NN_ACT_SILU: {
		float s = 1.0f / (1.0f + expf(-u));
		return s * (1.0f + u * (1.0f - s));
	}
	case NN_ACT_SIGMOID: {
		float s = 1.0f / (1.0f + expf(-u));
		return s * (1.0f - s);
	}
	case NN_ACT_NONE:
		break;
	}
	return 1.0f;
}

void nn_act_backward_ref(enum nn_act act, uint64_t count, const float *u, const float *dy, float *du)
{
	for (uint64_t i = 0; i < count; i++)
		du[i] = dy[i] * nn_act_grad(act, u[i]);
}

// Size of the image the conv taps see (after the optional 2x2/s1 average pool).
static uint32_t seen_h(const struct nn_conv2d_desc *d)
{
	return d->avgpool_before ? d->h_in - 1 : d->h_in;
}

static uint32_t seen_w(const struct nn_conv2d_desc *d)
{
	return d->avgpool_before ? d->w_in - 1 : d->w_in;
}

void nn_conv2d_act_backward_ref(const struct nn_conv2d_desc *d, const float *pre, const float *dy, float *du,
                                float *dr)
{
	size_t hw = (size_t)nn_conv2d_out_h(d) * nn_conv2d_out_w(d);
	uint32_t yct = d->y_c_total ? d->y_c_total : d->c_out, rct = d->r_c_total ? d->r_c_total : d->c_out;
	for (uint32_t n = 0; n < d->n; n++)
		for (uint32_t c = 0; c < d->c_out; c++) {
			// all [h_out, w_out]
			const float *g = dy + ((size_t)n * yct + d->y_c_off + c) * hw;
			const float *u = pre ? pre + ((size_t)n * d->c_out + c) * hw : NULL;
			float *o = du + ((size_t)n * d->c_out + c) * hw;
			float *r = dr ? dr + ((size_t)n * rct + d->r_c_off + c) * hw : NULL;
			for (size_t i = 0; i < hw; i++) {
				float v = u ? g[i] * nn_act_grad(d->act, u[i]) : g[i];
				if (r)
					r[i] += d->res_before_act ? v : g[i];
				o[i] = v;
			}
		}
}

// First and one-past-last output index o with 0 <= o*s + k - p < in (same as the forward).
static void valid_range(int in, int out, int k, int s, int p, int *lo, int *hi)
{
	int a = p - k;
	int l = a <= 0 ? 0 : (a + s - 1) / s;
	int b = in - 1 + p - k;
	int h = b < 0 ? 0 : b / s + 1;
	*lo = l;
	*hi = h < out ? h : out;
	if (*hi < *lo)
		*hi = *lo;
}

// dxp (stored x plane [h_in, w_in]) += wv * dz plane [h_out, w_out] scattered through tap (kh, kw).
static void scatter_tap(const struct nn_conv2d_desc *d, const float *dzp, float wv, int kh, int kw, float *dxp,
                        int h_out, int w_out)
{
	int s = (int)d->stride, p = (int)d->pad, wx = (int)d->w_in;
	int oh_lo, oh_hi, ow_lo, ow_hi;
	valid_range((int)seen_h(d), h_out, kh, s, p, &oh_lo, &oh_hi);
	valid_range((int)seen_w(d), w_out, kw, s, p, &ow_lo, &ow_hi);
	for (int oh = oh_lo; oh < oh_hi; oh++) {
		const float *grow = dzp + (size_t)oh * w_out;
		float *r0 = dxp + (size_t)(oh * s + kh - p) * wx;
		if (!d->avgpool_before) {
			if (s == 1) {
				float *dst = r0 + kw - p;
				for (int ow = ow_lo; ow < ow_hi; ow++)
					dst[ow] += wv * grow[ow];
			} else {
				for (int ow = ow_lo; ow < ow_hi; ow++)
					r0[ow * s + kw - p] += wv * grow[ow];
			}
		} else {
			// adjoint of x'[i, j] = (x[i, j] + x[i, j+1] + x[i+1, j] + x[i+1, j+1]) / 4
			float *r1 = r0 + wx;
			for (int ow = ow_lo; ow < ow_hi; ow++) {
				int iw = ow * s + kw - p;
				float v = wv * grow[ow] * 0.25f;
				r0[iw] += v, r0[iw + 1] += v, r1[iw] += v, r1[iw + 1] += v;
			}
		}
	}
}

void nn_conv2d_backward_data_ref(const struct nn_conv2d_desc *d, const float *dz, const float *w, float *dx)
{
	uint32_t h_out = nn_conv2d_out_h(d), w_out = nn_conv2d_out_w(d);
	size_t plane_out = (size_t)h_out * w_out, plane_in = (size_t)d->h_in * d->w_in;
	uint32_t xct = d->x_c_total ? d->x_c_total : d->c_in;
	uint32_t cig = d->c_in / d->groups, cog = d->c_out / d->groups;
	size_t ksz = (size_t)d->k_h * d->k_w;
	for (uint32_t n = 0; n < d->n; n++)
		for (uint32_t g = 0; g < d->groups; g++)
			for (uint32_t ci = 0; ci < cig; ci++) {
				// dxp = dx[n, x_c_off + g*cig + ci]: [h_in, w_in], kept hot over all output channels
				float *dxp = dx + ((size_t)n * xct + d->x_c_off + g * cig + ci) * plane_in;
				for (uint32_t o = 0; o < cog; o++) {
					uint32_t oc = g * cog + o;
					const float *dzp = dz + ((size_t)n * d->c_out + oc) * plane_out; // [h_out, w_out]
					const float *wk = w + ((size_t)oc * cig + ci) * ksz;            // [k_h, k_w]
					for (uint32_t kh = 0; kh < d->k_h; kh++)
						for (uint32_t kw = 0; kw < d->k_w; kw++)
							scatter_tap(d, dzp, wk[kh * d->k_w + kw], (int)kh, (int)kw, dxp, (int)h_out,
							            (int)w_out);
				}
			}
}

// sum a[i] * b[i], in eight independent float lanes so that the compiler can vectorise it
static float dot8(const float *a, const float *b, int count)
{
	float lane[8] = {0};
	int i = 0;
	for (; i + 8 <= count; i += 8)
		for (int j = 0; j < 8; j++)
			lane[j] += a[i + j] * b[i + j];
	float s = 0.0f;
	for (; i < count; i++)
		s += a[i] * b[i];
	for (int j = 0; j < 8; j++)
		s += lane[j];
	return s;
}

// sum over the valid outputs of dz plane * x' plane shifted by tap (kh, kw), rows summed in float.
static double tap_dot(const struct nn_conv2d_desc *d, const float *xp, const float *dzp, int kh, int kw, int h_out,
                      int w_out)
{
	int s = (int)d->stride, p = (int)d->pad, wx = (int)d->w_in;
	int oh_lo, oh_hi, ow_lo, ow_hi;
	valid_range((int)seen_h(d), h_out, kh, s, p, &oh_lo, &oh_hi);
	valid_range((int)seen_w(d), w_out, kw, s, p, &ow_lo, &ow_hi);
	double acc = 0.0;
	for (int oh = oh_lo; oh < oh_hi; oh++) {
		const float *grow = dzp + (size_t)oh * w_out;
		const float *r0 = xp + (size_t)(oh * s + kh - p) * wx;
		float row = 0.0f;
		if (!d->avgpool_before) {
			if (s == 1) {
				row = dot8(grow + ow_lo, r0 + kw - p + ow_lo, ow_hi - ow_lo);
			} else {
				for (int ow = ow_lo; ow < ow_hi; ow++)
					row += grow[ow] * r0[ow * s + kw - p];
			}
		} else {
			const float *r1 = r0 + wx;
			for (int ow = ow_lo; ow < ow_hi; ow++) {
				int iw = ow * s + kw - p;
				row += grow[ow] * ((r0[iw] + r0[iw + 1] + r1[iw] + r1[iw + 1]) * 0.25f);
			}
		}
		acc += row;
	}
	return acc;
}

void nn_conv2d_backward_weight_ref(const struct nn_conv2d_desc *d, const float *x, const float *dz, float *dw,
                                   float *db)
{
	uint32_t h_out = nn_conv2d_out_h(d), w_out = nn_conv2d_out_w(d);
	size_t plane_out = (size_t)h_out * w_out, plane_in = (size_t)d->h_in * d->w_in;
	uint32_t xct = d->x_c_total ? d->x_c_total : d->c_in;
	uint32_t cig = d->c_in / d->groups, cog = d->c_out / d->groups;
	size_t ksz = (size_t)d->k_h * d->k_w;
	for (uint32_t oc = 0; oc < d->c_out; oc++) {
		uint32_t g = oc / cog;
		for (uint32_t ci = 0; ci < cig; ci++)
			for (size_t t = 0; t < ksz; t++) {
				double acc = 0.0;
				for (uint32_t n = 0; n < d->n; n++) {
					const float *xp = x + ((size_t)n * xct + d->x_c_off + g * cig + ci) * plane_in;
					const float *dzp = dz + ((size_t)n * d->c_out + oc) * plane_out;
					acc += tap_dot(d, xp, dzp, (int)(t / d->k_w), (int)(t % d->k_w), (int)h_out, (int)w_out);
				}
				dw[((size_t)oc * cig + ci) * ksz + t] = (float)acc;
			}
		if (db) {
			double s = 0.0;
			for (uint32_t n = 0; n < d->n; n++) {
				const float *dzp = dz + ((size_t)n * d->c_out + oc) * plane_out;
				for (size_t i = 0; i < plane_out; i++)
					s += dzp[i];
			}
			db[oc] = (float)s;
		}
	}
}
