// Colour-space and pixel-blending augmentations: augment_hsv through OpenCV's 8-bit HSV, flips,
// mixup.
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "augment.h"
#include "log.h"

// OpenCV RGB2HSV_b: 12-bit fixed-point divisions through tables (hsv_shift 12, hue range 180).
enum { HSV_SHIFT = 12 };
static int sdiv_tab[256], hdiv_tab[256];
static pthread_once_t hsv_once = PTHREAD_ONCE_INIT;
static void hsv_tables_fill(void)
{
	for (int i = 1; i < 256; i++) {
		hdiv_tab[i] = (int)lrint((180 << HSV_SHIFT) / (6.0 * i));
		sdiv_tab[i] = (int)lrint((255 << HSV_SHIFT) / (1.0 * i));
	}
}

static void hsv_tables_init(void)
{
	pthread_once(&hsv_once, hsv_tables_fill);
}

void nn_rgb_to_hsv_u8(const uint8_t rgb[3], uint8_t hsv[3])
{
	hsv_tables_init();
	int r = rgb[0], g = rgb[1], b = rgb[2];
	int v = r > g ? r : g, vmin = r < g ? r : g;
	v = v > b ? v : b;
	vmin = vmin < b ? vmin : b;
	int diff = v - vmin;
	int h;
	if (v == r)
		h = g - b;
	else if (v == g)
		h = b - r + 2 * diff;
	else
		h = r - g + 4 * diff;
	int s = (diff * sdiv_tab[v] + (1 << (HSV_SHIFT - 1))) >> HSV_SHIFT;
	h = (h * hdiv_tab[diff] + (1 << (HSV_SHIFT - 1))) >> HSV_SHIFT;
	h += h < 0 ? 180 : 0;
	hsv[0] = (uint8_t)h;
	hsv[1] = (uint8_t)s;
	hsv[2] = (uint8_t)v;
}

// cvRound for 0 <= x < 2^22 without a libm call: adding 1.5 * 2^23 makes the FPU round to an
// integer (ties to even, as lrintf in the default mode).
static uint8_t round_u8(float x)
{
	const float big = 12582912.0f; // C11 without fast-math keeps (x + big) - big as written
	float r = (x + big) - big;
	int v = (int)r;
	return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

// OpenCV HSV2RGB_b: to float (h * 6/180, s / 255, v / 255), sector formula, back * 255 rounded.
void nn_hsv_to_rgb_u8(const uint8_t hsv[3], uint8_t rgb[3])
{
	float h = hsv[0], s = hsv[1] * (1.f / 255.f), v = hsv[2] * (1.f / 255.f);
	float r, g, b;
	if (s == 0) {
		r = g = b = v;
	} else {
		static const int sector_data[6][3] = { { 1, 3, 0 }, { 1, 0, 2 }, { 3, 0, 1 },
						       { 0, 2, 1 }, { 0, 1, 3 }, { 2, 1, 0 } };
		h *= 6.f / 180.f;
		while (h >= 6)
			h -= 6;
		int sector = (int)h; // h >= 0: truncation is cvFloor
		h -= sector;
		if ((unsigned)sector >= 6u) {
			sector = 0;
			h = 0;
		}
		float tab[4] = { v, v * (1.f - s), v * (1.f - s * h), v * (1.f - s * (1.f - h)) };
		b = tab[sector_data[sector][0]];
		g = tab[sector_data[sector][1]];
		r = tab[sector_data[sector][2]];
	}
	rgb[0] = round_u8(r * 255.f);
	rgb[1] = round_u8(g * 255.f);
	rgb[2] = round_u8(b * 255.f);
}

void nn_aug_hsv_gains(const struct nn_hyp *hyp, struct nn_rng *rng, double gains[3])
{
	const double k[3] = { hyp->hsv_h, hyp->hsv_s, hyp->hsv_v };
	for (int i = 0; i < 3; i++)
		gains[i] = nn_rng_uniform(rng, -1, 1) * k[i] + 1;
}

void nn_aug_hsv_apply(struct nn_image *img, const double gains[3])
{
	uint8_t lut[3][256];
	for (int x = 0; x < 256; x++) {
		lut[0][x] = (uint8_t)fmod(x * gains[0], 180.0); // gains > 0, so no negative remainder
		double sv = x * gains[1], vv = x * gains[2];
		lut[1][x] = (uint8_t)(sv < 0 ? 0 : sv > 255 ? 255 : sv);
		lut[2][x] = (uint8_t)(vv < 0 ? 0 : vv > 255 ? 255 : vv);
	}
	size_t n = (size_t)img->w * img->h;
	hsv_tables_init();
	for (size_t i = 0; i < n; i++) {
		uint8_t *p = img->data + 3 * i, hsv[3];
		nn_rgb_to_hsv_u8(p, hsv);
		hsv[0] = lut[0][hsv[0]];
		hsv[1] = lut[1][hsv[1]];
		hsv[2] = lut[2][hsv[2]];
		nn_hsv_to_rgb_u8(hsv, p);
	}
}

void nn_aug_flip_lr(struct nn_image *img)
{
	size_t c = img->c;
	if (img->w == 0)
		return;
	for (uint32_t y = 0; y < img->h; y++) {
		uint8_t *row = img->data + (size_t)y * img->w * c;
		for (uint32_t a = 0, b = img->w - 1; a < b; a++, b--)
			for (size_t k = 0; k < c; k++) {
				uint8_t t = row[a * c + k];
				row[a * c + k] = row[b * c + k];
				row[b * c + k] = t;
			}
	}
}

void nn_aug_flip_ud(struct nn_image *img)
{
	size_t stride = (size_t)img->w * img->c;
	for (uint32_t a = 0, b = img->h - 1; a < b && img->h; a++, b--) {
		uint8_t *ra = img->data + a * stride, *rb = img->data + b * stride;
		for (size_t k = 0; k < stride; k++) {
			uint8_t t = ra[k];
			ra[k] = rb[k];
			rb[k] = t;
		}
	}
}

int nn_aug_mixup(struct nn_image *a, const struct nn_image *b, double r)
{
	if (a->w != b->w || a->h != b->h || a->c != b->c) {
		LOGE("augment: mixup: %ux%ux%u with %ux%ux%u", a->w, a->h, a->c, b->w, b->h, b->c);
		return -EINVAL;
	}
	size_t n = (size_t)a->w * a->h * a->c;
	for (size_t i = 0; i < n; i++)
		a->data[i] = (uint8_t)(a->data[i] * r + b->data[i] * (1 - r)); // truncation as astype
	return 0;
}
