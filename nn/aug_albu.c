// The pixel-level Albumentations of the official recipe (Blur, MedianBlur, ToGray, each p = 0.01;
// CLAHE p = 0.01 is not implemented). The official hands BGR images to Albumentations, which
// treats them as RGB: ToGray therefore weighs the channels swapped, reproduced here.
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "log.h"

static int reflect101(int i, int n)
{
	if (n == 1)
		return 0;
	while (i < 0 || i >= n)
		i = i < 0 ? -i : 2 * n - 2 - i;
	return i;
}

static int replicate(int i, int n)
{
	return i < 0 ? 0 : i >= n ? n - 1 : i;
}

int nn_aug_blur(struct nn_image *img, int k)
{
	size_t n = (size_t)img->w * img->h * img->c;
	uint8_t *src = malloc(n);
	if (!src) {
		LOGE("augment: blur %ux%u: out of memory", img->w, img->h);
		return -ENOMEM;
	}
	memcpy(src, img->data, n);
	int W = (int)img->w, H = (int)img->h, c = (int)img->c, r = k / 2;
	double scale = 1.0 / (k * k);
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++)
			for (int ch = 0; ch < c; ch++) {
				int sum = 0;
				for (int dy = -r; dy <= r; dy++) {
					const uint8_t *row = src + (size_t)reflect101(y + dy, H) * W * c;
					for (int dx = -r; dx <= r; dx++)
						sum += row[(size_t)reflect101(x + dx, W) * c + ch];
				}
				long v = lrint(sum * scale); // cv::boxFilter: saturate_cast(sum * 1/k^2)
				img->data[((size_t)y * W + x) * c + ch] = (uint8_t)(v > 255 ? 255 : v);
			}
	free(src);
	return 0;
}

int nn_aug_median(struct nn_image *img, int k)
{
	size_t n = (size_t)img->w * img->h * img->c;
	uint8_t *src = malloc(n);
	if (!src) {
		LOGE("augment: median %ux%u: out of memory", img->w, img->h);
		return -ENOMEM;
	}
	memcpy(src, img->data, n);
	int W = (int)img->w, H = (int)img->h, c = (int)img->c, r = k / 2, half = k * k / 2;
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++)
			for (int ch = 0; ch < c; ch++) {
				int hist[256] = { 0 };
				for (int dy = -r; dy <= r; dy++) {
					const uint8_t *row = src + (size_t)replicate(y + dy, H) * W * c;
					for (int dx = -r; dx <= r; dx++)
						hist[row[(size_t)replicate(x + dx, W) * c + ch]]++;
				}
				int v = 0, seen = hist[0];
				while (seen <= half)
					seen += hist[++v];
				img->data[((size_t)y * W + x) * c + ch] = (uint8_t)v;
			}
	free(src);
	return 0;
}

void nn_aug_to_gray(struct nn_image *img)
{
	// OpenCV RGB2GRAY 8-bit: (4899 R + 9617 G + 1868 B + 2^13) >> 14, applied to the official's
	// BGR bytes as if RGB: our R takes the blue weight.
	for (size_t i = 0; i < (size_t)img->w * img->h; i++) {
		uint8_t *p = img->data + 3 * i;
		uint8_t g = (uint8_t)((1868 * p[0] + 9617 * p[1] + 4899 * p[2] + (1 << 13)) >> 14);
		p[0] = p[1] = p[2] = g;
	}
}

int nn_aug_albumentations(struct nn_image *img, struct nn_rng *rng)
{
	// Compose order: (RandomResizedCrop p 0), Blur, MedianBlur, ToGray, CLAHE (not implemented),
	// (brightness/contrast, gamma, compression: p 0). Kernel sizes: odd in [3, 7].
	int rc = 0;
	if (nn_rng_unit(rng) < 0.01)
		rc = nn_aug_blur(img, 3 + 2 * (int)nn_rng_below(rng, 3));
	if (!rc && nn_rng_unit(rng) < 0.01)
		rc = nn_aug_median(img, 3 + 2 * (int)nn_rng_below(rng, 3));
	if (!rc && nn_rng_unit(rng) < 0.01)
		nn_aug_to_gray(img);
	return rc;
}
