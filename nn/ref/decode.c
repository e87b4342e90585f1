// CPU reference of the DDetect eval decode: DFL (softmax over reg_max bins, expectation), dist2bbox
// in xywh form times the level stride, sigmoid class scores; output [n, 4 + nc, A].
#include <math.h>

#include "ref.h"

uint32_t nn_decode_anchors(const struct nn_decode_desc *d)
{
	uint32_t a = 0;
	for (uint32_t l = 0; l < d->nl; l++)
		a += d->h[l] * d->w[l];
	return a;
}

// Expected bin index under softmax(logits[k * pitch]), k < reg_max (max-subtracted like softmax).
static float dfl_expect(const float *logits, size_t pitch, uint32_t reg_max)
{
	float m = logits[0];
	for (uint32_t k = 1; k < reg_max; k++)
		m = logits[k * pitch] > m ? logits[k * pitch] : m;
	float sum = 0.0f, ev = 0.0f;
	for (uint32_t k = 0; k < reg_max; k++) {
		float e = expf(logits[k * pitch] - m);
		sum += e;
		ev += e * (float)k;
	}
	return ev / sum;
}

void nn_decode_forward_ref(const struct nn_decode_desc *d, const float *const *levels, float *y)
{
	uint32_t a_total = nn_decode_anchors(d), rows = 4 + d->nc, no = 4 * d->reg_max + d->nc;
	for (uint32_t n = 0; n < d->n; n++) {
		float *yn = y + (size_t)n * rows * a_total; // [4 + nc, A]
		uint32_t a = 0;
		for (uint32_t l = 0; l < d->nl; l++) {
			size_t hw = (size_t)d->h[l] * d->w[l];
			const float *lv = levels[l] + (size_t)n * no * hw; // [no, h, w]
			for (uint32_t gy = 0; gy < d->h[l]; gy++) {
				for (uint32_t gx = 0; gx < d->w[l]; gx++, a++) {
					size_t pix = (size_t)gy * d->w[l] + gx;
					float dist[4]; // l, t, r, b in grid units
					for (int side = 0; side < 4; side++)
						dist[side] = dfl_expect(lv + (size_t)side * d->reg_max * hw + pix, hw, d->reg_max);
					float ax = (float)gx + 0.5f, ay = (float)gy + 0.5f;
					float x1 = ax - dist[0], y1 = ay - dist[1], x2 = ax + dist[2], y2 = ay + dist[3];
					float s = d->stride[l];
					yn[0 * (size_t)a_total + a] = (x1 + x2) / 2.0f * s;
					yn[1 * (size_t)a_total + a] = (y1 + y2) / 2.0f * s;
					yn[2 * (size_t)a_total + a] = (x2 - x1) * s;
					yn[3 * (size_t)a_total + a] = (y2 - y1) * s;
					for (uint32_t c = 0; c < d->nc; c++) {
						float v = lv[(size_t)(4 * d->reg_max + c) * hw + pix];
						yn[(size_t)(4 + c) * a_total + a] = 1.0f / (1.0f + expf(-v));
					}
				}
			}
		}
	}
}
