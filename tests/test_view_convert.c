// Camera pixel conversions against known frames: YUYV colour bars (the BT.601 75 % bar table, whose
// RGB values are 191 or 0) with a padded stride, and MJPEG frames decoded by the viewer's MJPEG
// path compared with stb_image (an independent decoder), including a UVC-style frame whose DHT
// segment was stripped (the decoder must fall back to the standard Annex K tables).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image.h>
#include <stb_image_write.h>

#include "convert.h"

#include "check.h"

// 75 % colour bars, BT.601 limited range (Y, Cb, Cr) and their RGB (SMPTE EG 1 / ITU-R BT.801).
static const int bars[8][6] = {
	{ 180, 128, 128, 191, 191, 191 }, // white
	{ 162, 44, 142, 191, 191, 0 },    // yellow
	{ 131, 156, 44, 0, 191, 191 },    // cyan
	{ 112, 72, 58, 0, 191, 0 },       // green
	{ 84, 184, 198, 191, 0, 191 },    // magenta
	{ 65, 100, 212, 191, 0, 0 },      // red
	{ 35, 212, 114, 0, 0, 191 },      // blue
	{ 16, 128, 128, 0, 0, 0 },        // black
};

static int check_yuyv_bars(void)
{
	const uint32_t w = 64, h = 6, stride = w * 2 + 12;
	uint8_t *src = calloc((size_t)stride * h, 1), *dst = malloc((size_t)w * h * 3);
	CHECK(src && dst);
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x += 2) {
			const int *b = bars[x / 8];
			uint8_t *p = src + (size_t)y * stride + x * 2;
			p[0] = (uint8_t)b[0], p[1] = (uint8_t)b[1], p[2] = (uint8_t)b[0], p[3] = (uint8_t)b[2];
		}
	view_yuyv_to_rgb(src, w, h, stride, dst);
	// The bar table's YCbCr values are themselves rounded: 2 levels of tolerance.
	int worst = 0, wi = 0;
	for (uint32_t i = 0; i < w * h; i++)
		for (int c = 0; c < 3; c++) {
			int want = bars[(i % w) / 8][3 + c], d = abs(dst[i * 3 + c] - want);
			if (d > worst)
				worst = d, wi = (int)i * 3 + c;
		}
	printf("yuyv bars: worst |got-want| = %d at %d (got %d)\n", worst, wi, dst[wi]);
	CHECK(worst <= 2);
	free(src);
	free(dst);
	return 0;
}

// Each pixel of a pair has its own luma, the pair shares chroma; extremes clamp.
static int check_yuyv_formula(void)
{
	const int cases[][4] = { { 16, 128, 128, 0 }, { 235, 128, 128, 0 }, { 0, 0, 255, 0 }, { 255, 255, 0, 0 },
	                         { 100, 90, 170, 0 }, { 200, 60, 80, 0 } };
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		int Y0 = cases[k][0], U = cases[k][1], V = cases[k][2], Y1 = 255 - Y0;
		uint8_t src[4] = { (uint8_t)Y0, (uint8_t)U, (uint8_t)Y1, (uint8_t)V }, dst[6];
		view_yuyv_to_rgb(src, 2, 1, 4, dst);
		for (int p = 0; p < 2; p++) {
			double y = 1.164383 * ((p ? Y1 : Y0) - 16);
			double want[3] = { y + 1.596027 * (V - 128), y - 0.391762 * (U - 128) - 0.812968 * (V - 128),
			                   y + 2.017232 * (U - 128) };
			for (int c = 0; c < 3; c++) {
				double wv = want[c] < 0 ? 0 : want[c] > 255 ? 255 : want[c];
				// fixed-point coefficients (16 fractional bits) and rounding: within 1 level
				if (fabs(dst[p * 3 + c] - wv) > 1.0) {
					fprintf(stderr, "yuyv (%d,%d,%d) px %d ch %d: got %d want %.2f\n", p ? Y1 : Y0, U, V, p, c,
					        dst[p * 3 + c], wv);
					return 1;
				}
			}
		}
	}
	return 0;
}

struct membuf {
	uint8_t *p;
	size_t n;
};

static void put(void *ctx, void *data, int size)
{
	struct membuf *b = ctx;
	b->p = realloc(b->p, b->n + (size_t)size);
	memcpy(b->p + b->n, data, (size_t)size);
	b->n += (size_t)size;
}

// Removes every DHT (FFC4) segment, as UVC cameras send MJPEG.
static size_t strip_dht(uint8_t *p, size_t n)
{
	size_t i = 2, o = 2;
	while (i + 4 <= n && p[i] == 0xFF && p[i + 1] != 0xDA) {
		size_t len = 2 + ((size_t)p[i + 2] << 8 | p[i + 3]);
		if (p[i + 1] != 0xC4)
			memmove(p + o, p + i, len), o += len;
		i += len;
	}
	memmove(p + o, p + i, n - i);
	return o + n - i;
}

static int compare(const uint8_t *a, const uint8_t *b, size_t n, const char *what, int max_tol, double mean_tol)
{
	int worst = 0;
	size_t wi = 0;
	double sum = 0;
	for (size_t i = 0; i < n; i++) {
		int d = abs(a[i] - b[i]);
		sum += d;
		if (d > worst)
			worst = d, wi = i;
	}
	printf("%s: mean |d| %.3f, worst %d at %zu (%d vs %d)\n", what, sum / n, worst, wi, a[wi], b[wi]);
	CHECK(worst <= max_tol && sum / n <= mean_tol);
	return 0;
}

static int check_mjpeg(void)
{
	const int w = 96, h = 64;
	uint8_t *rgb = malloc((size_t)w * h * 3);
	CHECK(rgb);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			uint8_t *p = rgb + ((size_t)y * w + x) * 3;
			p[0] = (uint8_t)(x * 255 / (w - 1)), p[1] = (uint8_t)(y * 255 / (h - 1)), p[2] = (uint8_t)(((x / 16 + y / 16) & 1) * 200 + 20);
		}
	struct membuf jpg = { 0 };
	CHECK(stbi_write_jpg_to_func(put, &jpg, w, h, 3, rgb, 95));
	int sw, sh, sc;
	uint8_t *ref = stbi_load_from_memory(jpg.p, (int)jpg.n, &sw, &sh, &sc, 3);
	CHECK(ref && sw == w && sh == h);
	struct view_mjpeg *m = NULL;
	struct nn_image *img = NULL, *img2 = NULL;
	CHECK(view_mjpeg_create(&m) == 0);
	CHECK(view_mjpeg_decode(m, jpg.p, jpg.n, &img) == 0);
	CHECK(img->w == (uint32_t)w && img->h == (uint32_t)h && img->c == 3);
	// Two JPEG decoders differ by IDCT rounding only: a few levels at worst, well under 1 on average.
	if (compare(img->data, ref, (size_t)w * h * 3, "mjpeg vs stb_image", 6, 1.0))
		return 1;
	// Against the source pixels, quality 95 keeps the error small (the checker edges cost most).
	if (compare(img->data, rgb, (size_t)w * h * 3, "mjpeg vs source", 48, 3.0))
		return 1;
	// Without its Huffman tables (UVC MJPEG) the frame decodes to exactly the same pixels.
	size_t n2 = strip_dht(jpg.p, jpg.n);
	printf("stripped DHT: %zu -> %zu bytes\n", jpg.n, n2);
	CHECK(n2 < jpg.n);
	CHECK(view_mjpeg_decode(m, jpg.p, n2, &img2) == 0);
	CHECK(memcmp(img->data, img2->data, (size_t)w * h * 3) == 0);
	nn_image_destroy(&img2);
	// Garbage is an error, not a crash, and the decoder keeps working afterwards.
	uint8_t junk[200];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	CHECK(view_mjpeg_decode(m, junk, sizeof(junk), &img2) < 0 && img2 == NULL);
	CHECK(view_mjpeg_decode(m, jpg.p, n2, &img2) == 0);
	nn_image_destroy(&img2);
	nn_image_destroy(&img);
	view_mjpeg_destroy(&m);
	view_mjpeg_destroy(&m);
	stbi_image_free(ref);
	free(jpg.p);
	free(rgb);
	return 0;
}

int main(void)
{
	int fail = 0;
	fail |= check_yuyv_bars();
	fail |= check_yuyv_formula();
	fail |= check_mjpeg();
	printf("%s\n", fail ? "FAIL" : "ok");
	return fail;
}
