// CPU reference of nearest resizing over channel slices (Upsample x2, CBFuse's interpolate-and-sum,
// plain slice copies) and of the element-wise add.
#include "ref.h"

void nn_resize_nearest_forward_ref(const struct nn_resize_desc *d, const float *x, float *y)
{
	uint32_t xct = d->x_c_total ? d->x_c_total : d->c, yct = d->y_c_total ? d->y_c_total : d->c;
	for (uint32_t n = 0; n < d->n; n++) {
		for (uint32_t c = 0; c < d->c; c++) {
			// xp: [h_in, w_in], yp: [h_out, w_out]
			const float *xp = x + ((size_t)n * xct + d->x_c_off + c) * d->h_in * d->w_in;
			float *yp = y + ((size_t)n * yct + d->y_c_off + c) * d->h_out * d->w_out;
			for (uint32_t oh = 0; oh < d->h_out; oh++) {
				uint32_t ih = (uint32_t)((uint64_t)oh * d->h_in / d->h_out);
				for (uint32_t ow = 0; ow < d->w_out; ow++) {
					uint32_t iw = (uint32_t)((uint64_t)ow * d->w_in / d->w_out);
					float v = xp[(size_t)ih * d->w_in + iw];
					float *dst = yp + (size_t)oh * d->w_out + ow;
					*dst = d->accumulate ? *dst + v : v;
				}
			}
		}
	}
}

void nn_add_forward_ref(uint64_t count, const float *a, const float *b, float *y)
{
	for (uint64_t i = 0; i < count; i++)
		y[i] = a[i] + b[i];
}
