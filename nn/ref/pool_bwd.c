// CPU reference of the pooling and nearest-resize backward passes (nn/ref_bwd.h): max pool routes
// each output gradient to its arg-max, average pool spreads it evenly, resize sums the copies.
#include <math.h>

#include "ref_bwd.h"

static void pool_backward(const struct nn_pool2d_desc *d, const float *x, const float *dy, float *dx, bool is_max)
{
	uint32_t h_out = nn_pool_out_size(d->h_in, d->k, d->stride, d->pad);
	uint32_t w_out = nn_pool_out_size(d->w_in, d->k, d->stride, d->pad);
	uint32_t xct = d->x_c_total ? d->x_c_total : d->c, yct = d->y_c_total ? d->y_c_total : d->c;
	int k = (int)d->k, s = (int)d->stride, p = (int)d->pad, hi = (int)d->h_in, wi = (int)d->w_in;
	float inv = 1.0f / (float)(d->k * d->k); // zero padding counted (count_include_pad)
	for (uint32_t n = 0; n < d->n; n++)
		for (uint32_t c = 0; c < d->c; c++) {
			// xp, dxp: [h_in, w_in]; gp: [h_out, w_out]
			size_t xo = ((size_t)n * xct + d->x_c_off + c) * d->h_in * d->w_in;
			const float *gp = dy + ((size_t)n * yct + d->y_c_off + c) * h_out * w_out;
			float *dxp = dx + xo;
			for (int oh = 0; oh < (int)h_out; oh++)
				for (int ow = 0; ow < (int)w_out; ow++) {
					float g = gp[(size_t)oh * w_out + ow], best = -INFINITY;
					long arg = -1;
					for (int i = 0; i < k; i++) {
						int ih = oh * s + i - p;
						if (ih < 0 || ih >= hi)
							continue;
						for (int j = 0; j < k; j++) {
							int iw = ow * s + j - p;
							if (iw < 0 || iw >= wi)
								continue;
							long at = (long)ih * wi + iw;
							if (!is_max)
								dxp[at] += g * inv;
							else if (arg < 0 || x[xo + at] > best) // strict: first maximum wins
								best = x[xo + at], arg = at;
						}
					}
					if (is_max && arg >= 0)
						dxp[arg] += g;
				}
		}
}

void nn_maxpool2d_backward_ref(const struct nn_pool2d_desc *d, const float *x, const float *dy, float *dx)
{
	pool_backward(d, x, dy, dx, true);
}

void nn_avgpool2d_backward_ref(const struct nn_pool2d_desc *d, const float *dy, float *dx)
{
	pool_backward(d, NULL, dy, dx, false);
}

void nn_resize_nearest_backward_ref(const struct nn_resize_desc *d, const float *dy, float *dx)
{
	uint32_t xct = d->x_c_total ? d->x_c_total : d->c, yct = d->y_c_total ? d->y_c_total : d->c;
	for (uint32_t n = 0; n < d->n; n++)
		for (uint32_t c = 0; c < d->c; c++) {
			// dxp: [h_in, w_in], gp: [h_out, w_out]
			float *dxp = dx + ((size_t)n * xct + d->x_c_off + c) * d->h_in * d->w_in;
			const float *gp = dy + ((size_t)n * yct + d->y_c_off + c) * d->h_out * d->w_out;
			for (uint32_t oh = 0; oh < d->h_out; oh++) {
				uint32_t ih = (uint32_t)((uint64_t)oh * d->h_in / d->h_out);
				for (uint32_t ow = 0; ow < d->w_out; ow++) {
					uint32_t iw = (uint32_t)((uint64_t)ow * d->w_in / d->w_out);
					dxp[(size_t)ih * d->w_in + iw] += gp[(size_t)oh * d->w_out + ow];
				}
			}
		}
}
