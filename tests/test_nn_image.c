// Image I/O: PNG round trip is lossless, gray/alpha become RGB, EXIF orientation in a JPEG's APP1
// (both byte orders) rotates as PIL's exif_transpose does, errors name the file and return codes.
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb_image_write.h>

#include "image.h"

#include "check.h"

static char tmp[256];

// Pixel (x, y) of a 3x2 image with values 10*y + x in every channel, after each orientation.
static int check_orient_small(void)
{
	struct nn_image *img = NULL, *o = NULL;
	CHECK(nn_image_create(3, 2, 1, &img) == 0);
	for (int y = 0; y < 2; y++)
		for (int x = 0; x < 3; x++)
			img->data[y * 3 + x] = (uint8_t)(10 * y + x);
	// expected output rows (PIL: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 270 (= 90
	// clockwise), 7 transverse, 8 rotate 90 counter-clockwise)
	static const uint8_t want[9][6] = {
		{ 0 }, { 0, 1, 2, 10, 11, 12 }, { 2, 1, 0, 12, 11, 10 }, { 12, 11, 10, 2, 1, 0 },
		{ 10, 11, 12, 0, 1, 2 }, { 0, 10, 1, 11, 2, 12 }, { 10, 0, 11, 1, 12, 2 },
		{ 12, 2, 11, 1, 10, 0 }, { 2, 12, 1, 11, 0, 10 },
	};
	for (int k = 1; k <= 8; k++) {
		CHECK(nn_image_orient(img, k, &o) == 0);
		CHECK(k >= 5 ? o->w == 2 && o->h == 3 : o->w == 3 && o->h == 2);
		if (memcmp(o->data, want[k], 6)) {
			fprintf(stderr, "orientation %d: got %u %u %u %u %u %u\n", k, o->data[0], o->data[1],
			        o->data[2], o->data[3], o->data[4], o->data[5]);
			return 1;
		}
		nn_image_destroy(&o);
	}
	CHECK(nn_image_orient(img, 9, &o) == -EINVAL && o == NULL);
	nn_image_destroy(&img);
	nn_image_destroy(&img);
	return 0;
}

static uint8_t *read_all(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	rewind(f);
	uint8_t *b = malloc(*n + 64);
	if (b && fread(b, 1, *n, f) != *n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	return b;
}

// Quadrants TL red, TR green, BL blue, BR white of a 32x16 JPEG carrying orientation `orient`.
static int check_exif_jpeg(int orient, bool big_endian)
{
	struct nn_image *img = NULL, *got = NULL;
	CHECK(nn_image_create(32, 16, 3, &img) == 0);
	static const uint8_t q[4][3] = { { 255, 0, 0 }, { 0, 255, 0 }, { 0, 0, 255 }, { 255, 255, 255 } };
	for (int y = 0; y < 16; y++)
		for (int x = 0; x < 32; x++)
			memcpy(img->data + (y * 32 + x) * 3, q[(y >= 8) * 2 + (x >= 16)], 3);
	char path[300];
	snprintf(path, sizeof(path), "%s/q.jpg", tmp);
	CHECK(nn_image_save(path, img, 100) == 0);
	size_t n;
	uint8_t *jpg = read_all(path, &n);
	CHECK(jpg && n > 4 && jpg[0] == 0xFF && jpg[1] == 0xD8);
	// APP1: "Exif\0\0" + TIFF header + IFD0 with one entry (0x0112 SHORT 1 = orient)
	uint8_t app1[4 + 6 + 26];
	uint8_t tiff_le[26] = { 'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0,
		                    (uint8_t)orient, 0, 0, 0, 0, 0, 0, 0 };
	uint8_t tiff_be[26] = { 'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1,
		                    0, (uint8_t)orient, 0, 0, 0, 0, 0, 0 };
	app1[0] = 0xFF;
	app1[1] = 0xE1;
	app1[2] = 0;
	app1[3] = 2 + 6 + 26;
	memcpy(app1 + 4, "Exif\0\0", 6);
	memcpy(app1 + 10, big_endian ? tiff_be : tiff_le, 26);
	uint8_t *out = malloc(n + sizeof(app1));
	CHECK(out);
	memcpy(out, jpg, 2);
	memcpy(out + 2, app1, sizeof(app1));
	memcpy(out + 2 + sizeof(app1), jpg + 2, n - 2);
	CHECK(nn_image_exif_orientation(out, n + sizeof(app1)) == orient);
	CHECK(nn_image_exif_orientation(jpg, n) == 1);
	CHECK(nn_image_decode(out, n + sizeof(app1), "q.jpg", &got) == 0);
	// where each source quadrant lands: index = source quadrant shown at (TL, TR, BL, BR)
	int tl, tr, bl, br;
	switch (orient) {
	case 6: tl = 2, tr = 0, bl = 3, br = 1; break; // 90 clockwise
	case 8: tl = 1, tr = 3, bl = 0, br = 2; break; // 90 counter-clockwise
	case 3: tl = 3, tr = 2, bl = 1, br = 0; break;
	default: tl = 0, tr = 1, bl = 2, br = 3; break;
	}
	bool swap = orient >= 5;
	CHECK(got->w == (swap ? 16u : 32u) && got->h == (swap ? 32u : 16u));
	int want[4] = { tl, tr, bl, br };
	for (int k = 0; k < 4; k++) {
		uint32_t x = (k & 1) ? got->w * 3 / 4 : got->w / 4, y = (k & 2) ? got->h * 3 / 4 : got->h / 4;
		const uint8_t *p = got->data + ((size_t)y * got->w + x) * 3;
		for (int c = 0; c < 3; c++) // JPEG q100 keeps flat blocks within a few levels
			if (abs((int)p[c] - q[want[k]][c]) > 24) {
				fprintf(stderr, "orient %d quadrant %d: got %u %u %u\n", orient, k, p[0], p[1], p[2]);
				return 1;
			}
	}
	free(out);
	free(jpg);
	unlink(path);
	nn_image_destroy(&got);
	nn_image_destroy(&img);
	return 0;
}

static int check_png_and_errors(void)
{
	char path[300];
	struct nn_image *img = NULL, *got = NULL;
	CHECK(nn_image_create(7, 5, 3, &img) == 0);
	for (size_t i = 0; i < 7 * 5 * 3; i++)
		img->data[i] = (uint8_t)(i * 37);
	snprintf(path, sizeof(path), "%s/a.PNG", tmp);
	CHECK(nn_image_save(path, img, 0) == 0);
	CHECK(nn_image_load(path, &got) == 0);
	CHECK(got->w == 7 && got->h == 5 && got->c == 3 && memcmp(got->data, img->data, 7 * 5 * 3) == 0);
	nn_image_destroy(&got);
	// gray + alpha PNG -> RGB with the gray replicated and alpha dropped
	uint8_t ga[4 * 2] = { 10, 255, 20, 0, 30, 128, 40, 7 };
	snprintf(path, sizeof(path), "%s/ga.png", tmp);
	CHECK(stbi_write_png(path, 2, 2, 2, ga, 4));
	CHECK(nn_image_load(path, &got) == 0);
	CHECK(got->c == 3 && got->data[0] == 10 && got->data[2] == 10 && got->data[9] == 40 && got->data[11] == 40);
	nn_image_destroy(&got);
	unlink(path);
	// not an image
	snprintf(path, sizeof(path), "%s/bad.jpg", tmp);
	FILE *f = fopen(path, "wb");
	CHECK(f);
	fputs("this is not a jpeg", f);
	fclose(f);
	CHECK(nn_image_load(path, &got) == -EINVAL && got == NULL);
	unlink(path);
	CHECK(nn_image_load("/nonexistent/x.jpg", &got) == -ENOENT);
	snprintf(path, sizeof(path), "%s/a.bmpx", tmp);
	CHECK(nn_image_save(path, img, 90) == -EINVAL);
	snprintf(path, sizeof(path), "%s/a.PNG", tmp);
	unlink(path);
	nn_image_destroy(&img);
	return 0;
}

int main(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/test_nn_image.XXXXXX");
	CHECK(mkdtemp(tmp));
	int rc = check_orient_small() || check_png_and_errors() || check_exif_jpeg(1, false) ||
	         check_exif_jpeg(6, false) || check_exif_jpeg(8, true) || check_exif_jpeg(3, true);
	rmdir(tmp);
	if (!rc)
		printf("image: ok\n");
	return rc;
}
