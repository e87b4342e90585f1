// Image sizes from file headers without decoding (stb_image's stbi_info) and the JPEG EXIF
// orientation, for the official exif_size (see dataset.h).
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <stb_image.h>

#include "dataset.h"
#include "image.h"
#include "log.h"

// Exif sits in an APP1 segment (at most 64 KiB) right after SOI and usually a small APP0 JFIF
// segment: the first 72 KiB hold it in the files cameras and editors write. (An Exif block placed
// after other large segments would be missed; the full-decode path in image.c has no such limit.)
#define EXIF_SCAN_BYTES (72u * 1024u)

int nn_exif_orientation(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	int o = 1;
	if (!f)
		return 1;
	buf = malloc(EXIF_SCAN_BYTES);
	if (buf) {
		size_t n = fread(buf, 1, EXIF_SCAN_BYTES, f);
		o = nn_image_exif_orientation(buf, n);
	}
	free(buf);
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
