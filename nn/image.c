// Image decode/encode on top of Debian's libstb (implementations live in libstb.a, so no
// STB_*_IMPLEMENTATION here). stb_image ignores EXIF, so the JPEG Orientation tag is parsed here.
#include "image.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb_image.h>
#include <stb_image_write.h>

#include "log.h"

int nn_image_create(uint32_t w, uint32_t h, uint32_t c, struct nn_image **out)
{
	*out = NULL;
	if (!w || !h || !c || (uint64_t)w * h * c > ((uint64_t)1 << 34)) {
		LOGE("image: bad size %ux%ux%u", w, h, c);
		return -EINVAL;
	}
	struct nn_image *img = calloc(1, sizeof(*img));
	if (!img)
		return -ENOMEM;
	img->data = calloc((size_t)w * h * c, 1);
	if (!img->data) {
		free(img);
		LOGE("image: out of memory for %ux%ux%u", w, h, c);
		return -ENOMEM;
	}
	img->w = w;
	img->h = h;
	img->c = c;
	*out = img;
	return 0;
}

void nn_image_destroy(struct nn_image **img)
{
	if (!img || !*img)
		return;
	free((*img)->data);
	free(*img);
	*img = NULL;
}

static uint32_t rd16(const uint8_t *p, bool le)
{
	return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : (uint32_t)p[0] << 8 | p[1];
}

static uint32_t rd32(const uint8_t *p, bool le)
{
	return le ? rd16(p, true) | rd16(p + 2, true) << 16 : rd16(p, false) << 16 | rd16(p + 2, false);
}

// Orientation from a TIFF block (the payload of "Exif\0\0"): header, IFD0, tag 0x0112 SHORT.
static int tiff_orientation(const uint8_t *t, size_t n)
{
	if (n < 8)
		return 1;
	bool le;
	if (t[0] == 'I' && t[1] == 'I')
		le = true;
	else if (t[0] == 'M' && t[1] == 'M')
		le = false;
	else
		return 1;
	if (rd16(t + 2, le) != 42)
		return 1;
	uint32_t ifd = rd32(t + 4, le);
	if (ifd > n - 2 || ifd < 8)
		return 1;
	uint32_t count = rd16(t + ifd, le);
	for (uint32_t i = 0; i < count; i++) {
		size_t e = (size_t)ifd + 2 + (size_t)i * 12;
		if (e + 12 > n)
			break;
		if (rd16(t + e, le) != 0x0112)
			continue;
		uint32_t type = rd16(t + e + 2, le);
		uint32_t v = type == 3 ? rd16(t + e + 8, le) : type == 4 ? rd32(t + e + 8, le) : 0;
		return v >= 1 && v <= 8 ? (int)v : 1;
	}
	return 1;
}

int nn_image_exif_orientation(const void *buf, size_t n)
{
	const uint8_t *p = buf;
	if (n < 4 || p[0] != 0xFF || p[1] != 0xD8)
		return 1;
	size_t i = 2;
	// Walk the marker segments that precede the scan; APP1 "Exif" holds the TIFF block.
	while (i + 4 <= n) {
		if (p[i] != 0xFF)
			return 1;
		uint8_t m = p[i + 1];
		if (m == 0xFF) { // fill byte
			i++;
			continue;
		}
		if (m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) {
			i += 2;
			continue;
		}
		if (m == 0xDA || m == 0xD9) // start of scan / end: no EXIF before the data
			return 1;
		size_t len = rd16(p + i + 2, false);
		if (len < 2 || i + 2 + len > n)
			return 1;
		const uint8_t *seg = p + i + 4;
		size_t slen = len - 2;
		if (m == 0xE1 && slen >= 6 && memcmp(seg, "Exif\0\0", 6) == 0)
			return tiff_orientation(seg + 6, slen - 6);
		i += 2 + len;
	}
	return 1;
}

int nn_image_orient(const struct nn_image *img, int orient, struct nn_image **out)
{
	*out = NULL;
	if (orient < 1 || orient > 8) {
		LOGE("image: bad exif orientation %d", orient);
		return -EINVAL;
	}
	bool swap = orient >= 5;
	uint32_t W = img->w, H = img->h, C = img->c;
	struct nn_image *o = NULL;
	int rc = nn_image_create(swap ? H : W, swap ? W : H, C, &o);
	if (rc)
		return rc;
	for (uint32_t oy = 0; oy < o->h; oy++) {
		for (uint32_t ox = 0; ox < o->w; ox++) {
			uint32_t sx, sy;
			switch (orient) {
			case 2: sx = W - 1 - ox; sy = oy; break;
			case 3: sx = W - 1 - ox; sy = H - 1 - oy; break;
			case 4: sx = ox; sy = H - 1 - oy; break;
			case 5: sx = oy; sy = ox; break;                 // transpose
			case 6: sx = oy; sy = H - 1 - ox; break;         // rotate 90 clockwise
			case 7: sx = W - 1 - oy; sy = H - 1 - ox; break; // transverse
			case 8: sx = W - 1 - oy; sy = ox; break;         // rotate 90 counter-clockwise
			default: sx = ox; sy = oy; break;
			}
			memcpy(o->data + ((size_t)oy * o->w + ox) * C, img->data + ((size_t)sy * W + sx) * C, C);
		}
	}
	*out = o;
	return 0;
}

int nn_image_decode(const void *buf, size_t n, const char *name, struct nn_image **out)
{
	*out = NULL;
	struct nn_image *img = NULL, *rot = NULL;
	int w = 0, h = 0, comp = 0, rc;
	if (n > 0x7fffffff) {
		LOGE("image %s: file too large (%zu bytes)", name, n);
		return -EINVAL;
	}
	// req_comp 3: stb converts gray/gray+alpha/RGBA to RGB and 16-bit to 8-bit.
	uint8_t *px = stbi_load_from_memory(buf, (int)n, &w, &h, &comp, 3);
	if (!px) {
		const char *why = stbi_failure_reason();
		LOGE("image %s: cannot decode: %s", name, why ? why : "unknown error");
		return -EINVAL;
	}
	img = calloc(1, sizeof(*img));
	if (!img) {
		rc = -ENOMEM;
		goto fail;
	}
	img->w = (uint32_t)w;
	img->h = (uint32_t)h;
	img->c = 3;
	img->data = px; // stbi_image_free is free() in Debian's default build (STBI_FREE)
	px = NULL;
	int orient = nn_image_exif_orientation(buf, n);
	if (orient != 1) {
		rc = nn_image_orient(img, orient, &rot);
		if (rc)
			goto fail;
		nn_image_destroy(&img);
		img = rot;
	}
	*out = img;
	return 0;
fail:
	stbi_image_free(px);
	nn_image_destroy(&img);
	return rc;
}

int nn_image_load(const char *path, struct nn_image **out)
{
	*out = NULL;
	uint8_t *buf = NULL;
	int rc;
	FILE *f = fopen(path, "rb");
	if (!f) {
		rc = -errno;
		LOGE("image %s: cannot open: %s", path, strerror(errno));
		return rc;
	}
	if (fseek(f, 0, SEEK_END) || ftell(f) < 0) {
		LOGE("image %s: cannot seek: %s", path, strerror(errno));
		rc = -EIO;
		goto fail;
	}
	size_t n = (size_t)ftell(f);
	rewind(f);
	buf = malloc(n ? n : 1);
	if (!buf) {
		rc = -ENOMEM;
		goto fail;
	}
	if (fread(buf, 1, n, f) != n) {
		LOGE("image %s: read error", path);
		rc = -EIO;
		goto fail;
	}
	rc = nn_image_decode(buf, n, path, out);
fail:
	free(buf);
	fclose(f);
	return rc;
}

struct write_ctx {
	FILE *f;
	bool failed;
};

static void write_cb(void *ctx, void *data, int size)
{
	struct write_ctx *w = ctx;
	if (fwrite(data, 1, (size_t)size, w->f) != (size_t)size)
		w->failed = true;
}

int nn_image_save(const char *path, const struct nn_image *img, int quality)
{
	const char *dot = strrchr(path, '.');
	bool jpg = dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
	bool png = dot && !strcasecmp(dot, ".png");
	if (!jpg && !png) {
		LOGE("image %s: unknown extension (want .jpg, .jpeg or .png)", path);
		return -EINVAL;
	}
	if (!img || !img->data || (img->c != 1 && img->c != 3 && img->c != 4) || img->w > 65535 ||
	    img->h > 65535) {
		LOGE("image %s: cannot encode this image", path);
		return -EINVAL;
	}
	int rc = 0;
	FILE *f = NULL;
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 16);
	if (!tmp)
		return -ENOMEM;
	snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		rc = -errno;
		LOGE("image %s: cannot create temporary file: %s", path, strerror(errno));
		free(tmp);
		return rc;
	}
	fchmod(fd, 0644);
	f = fdopen(fd, "wb");
	if (!f) {
		close(fd);
		rc = -EIO;
		goto fail;
	}
	int ok;
	struct write_ctx wc = { .f = f };
	if (jpg)
		ok = stbi_write_jpg_to_func(write_cb, &wc, (int)img->w, (int)img->h, (int)img->c, img->data,
		                            quality < 1 ? 1 : quality > 100 ? 100 : quality);
	else
		ok = stbi_write_png_to_func(write_cb, &wc, (int)img->w, (int)img->h, (int)img->c, img->data,
		                            (int)(img->w * img->c));
	if (!ok || wc.failed || fflush(f) || ferror(f)) {
		rc = -EIO;
		goto fail;
	}
	if (fclose(f)) {
		f = NULL;
		rc = -EIO;
		goto fail;
	}
	f = NULL;
	if (rename(tmp, path)) {
		rc = -errno;
		LOGE("image %s: rename from %s: %s", path, tmp, strerror(errno));
		unlink(tmp);
		free(tmp);
		return rc;
	}
	free(tmp);
	return 0;
fail:
	LOGE("image %s: write failed", path);
	if (f)
		fclose(f);
	unlink(tmp);
	free(tmp);
	return rc;
}
