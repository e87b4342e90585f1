// CPU reference of max and average pooling over channel slices (SP's 5x5/s1, ADown's 3x3/s2 max
// pool and 2x2/s1 average pool).
#include <float.h>

#include "ref.h"

static void pool2d(const struct nn_pool2d_desc *d, const float *x, float *y, bool is_max)
{
	uint32_t h_out = nn_pool_out_size(d->h_in, d->k, d->stride, d->pad);
	uint32_t w_out = nn_pool_out_size(d->w_in, d->k, d->stride, d->pad);
	uint32_t xct = d->x_c_total ? d->x_c_total : d->c, yct = d->y_c_total ? d->y_c_total : d->c;
	int k = (int)d->k, s = (int)d->stride, p = (int)d->pad, hi = (int)d->h_in, wi = (int)d->w_in;
	float inv = 1.0f / (float)(d->k * d->k);

	for (uint32_t n = 0; n < d->n; n++) {
		for (uint32_t c = 0; c < d->c; c++) {
			// xp: [h_in, w_in], yp: [h_out, w_out]
			const float *xp = x + ((size_t)n * xct + d->x_c_off + c) * d->h_in * d->w_in;
			float *yp = y + ((size_t)n * yct + d->y_c_off + c) * h_out * w_out;
			for (int oh = 0; oh < (int)h_out; oh++) {
				for (int ow = 0; ow < (int)w_out; ow++) {
					float acc = is_max ? -FLT_MAX : 0.0f;
					for (int i = 0; i < k; i++) {
						int ih = oh * s + i - p;
						if (ih < 0 || ih >= hi)
							continue;
						for (int j = 0; j < k; j++) {
							int iw = ow * s + j - p;
							if (iw < 0 || iw >= wi)
								continue;
							float v = xp[(size_t)ih * wi + iw];
							if (is_max)
								acc = v > acc ? v : acc;
							else
								acc += v;
						}
					}
					yp[(size_t)oh * w_out + ow] = is_max ? acc : acc * inv;
				}
			}
		}
	}
}

void nn_maxpool2d_forward_ref(const struct nn_pool2d_desc *d, const float *x, float *y)
{
	pool2d(d, x, y, true);
}

void nn_avgpool2d_forward_ref(const struct nn_pool2d_desc *d, const float *x, float *y)
{
	pool2d(d, x, y, false);
}
