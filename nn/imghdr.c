// Image sizes from file headers without decoding (stb_image's stbi_info) and the JPEG EXIF
// orientation, for the official exif_size (see dataset.h).
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "log.h"

// stb_image is compiled here with static linkage (only stbi_info is used), so that another file of
// the tree may compile its own copy for decoding without a symbol clash. Its unused functions and
// its own warnings are silenced for this file only.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wshadow"
#include <stb/stb_image.h>

static unsigned rd16(const uint8_t *p, bool le)
{
	return le ? (unsigned)p[0] | (unsigned)p[1] << 8 : (unsigned)p[0] << 8 | (unsigned)p[1];
}

static uint32_t rd32(const uint8_t *p, bool le)
{
	return le ? (uint32_t)rd16(p, true) | (uint32_t)rd16(p + 2, true) << 16
		  : (uint32_t)rd16(p, false) << 16 | (uint32_t)rd16(p + 2, false);
}

// Orientation tag (0x0112) of IFD0 in a TIFF block (the Exif APP1 payload after "Exif\0\0").
static int tiff_orientation(const uint8_t *t, size_t n)
{
	if (n < 8 || !((t[0] == 'I' && t[1] == 'I') || (t[0] == 'M' && t[1] == 'M')))
		return 1;
	bool le = t[0] == 'I';
	uint32_t ifd = rd32(t + 4, le);
	if (ifd + 2 > n)
		return 1;
	unsigned cnt = rd16(t + ifd, le);
	for (unsigned i = 0; i < cnt; i++) {
		size_t off = ifd + 2 + (size_t)i * 12;
		if (off + 12 > n)
			break;
		if (rd16(t + off, le) == 0x0112 && rd16(t + off + 2, le) == 3) {
			unsigned v = rd16(t + off + 8, le);
			return v >= 1 && v <= 8 ? (int)v : 1;
		}
	}
	return 1;
}

int nn_exif_orientation(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t h[4], *seg = NULL;
	int o = 1;
	if (!f)
		return 1;
	if (fread(h, 1, 2, f) != 2 || h[0] != 0xFF || h[1] != 0xD8)
		goto done;
	for (;;) {
		if (fread(h, 1, 2, f) != 2 || h[0] != 0xFF)
			break;
		uint8_t m = h[1];
		if (m == 0xFF) { // fill byte
			fseek(f, -1, SEEK_CUR);
			continue;
		}
		if (m == 0x01 || (m >= 0xD0 && m <= 0xD7))
			continue;
		if (m == 0xDA || m == 0xD9 || fread(h, 1, 2, f) != 2)
			break; // image data or end: no Exif before it
		size_t len = rd16(h, false);
		if (len < 2)
			break;
		len -= 2;
		if (m != 0xE1 || len < 14) {
			if (fseek(f, (long)len, SEEK_CUR))
				break;
			continue;
		}
		seg = malloc(len);
		if (!seg || fread(seg, 1, len, f) != len)
			break;
		if (!memcmp(seg, "Exif\0\0", 6)) {
			o = tiff_orientation(seg + 6, len - 6);
			break;
		}
		free(seg);
		seg = NULL;
	}
done:
	free(seg);
	fclose(f);
	return o;
}

int nn_image_size(const char *path, int *width, int *height)
{
	int w, h, comp;
	if (!stbi_info(path, &w, &h, &comp)) {
		LOGW("image %s: cannot read the size: %s", path, stbi_failure_reason());
		return -EIO;
	}
	int o = nn_exif_orientation(path);
	if (o == 6 || o == 8) { // official exif_size swaps only for 6 and 8
		int t = w;
		w = h;
		h = t;
	}
	*width = w;
	*height = h;
	return 0;
}

