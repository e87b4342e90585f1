// Box and label rendering for annotated outputs. Geometry follows the official Annotator.box_label:
// outline of width lw, label box above the top-left corner when it fits (else inside), text 2 px
// above the box's bottom edge, white. Text is rasterised with stb_truetype (from libstb.a).
#include "draw.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_truetype.h>

#include "log.h"

struct nn_font {
	stbtt_fontinfo info;
	unsigned char *data; // the TTF file; info points into it
	float cap_units;     // height of 'H' in font units
};

int nn_font_load(const char *path, struct nn_font **out)
{
	*out = NULL;
	struct nn_font *f = NULL;
	int rc;
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		rc = -errno;
		LOGE("font %s: cannot open: %s", path, strerror(errno));
		return rc;
	}
	f = calloc(1, sizeof(*f));
	long n = fseek(fp, 0, SEEK_END) ? -1 : ftell(fp);
	if (!f || n <= 0) {
		rc = f ? -EIO : -ENOMEM;
		LOGE("font %s: cannot read", path);
		goto fail;
	}
	rewind(fp);
	f->data = malloc((size_t)n);
	if (!f->data || fread(f->data, 1, (size_t)n, fp) != (size_t)n) {
		rc = f->data ? -EIO : -ENOMEM;
		LOGE("font %s: cannot read", path);
		goto fail;
	}
	int off = stbtt_GetFontOffsetForIndex(f->data, 0);
	if (off < 0 || !stbtt_InitFont(&f->info, f->data, off)) {
		LOGE("font %s: not a TrueType font", path);
		rc = -EINVAL;
		goto fail;
	}
	int x0, y0, x1, y1;
	if (!stbtt_GetCodepointBox(&f->info, 'H', &x0, &y0, &x1, &y1) || y1 <= 0) {
		int asc, desc, gap;
		stbtt_GetFontVMetrics(&f->info, &asc, &desc, &gap);
		y1 = asc * 7 / 10;
	}
	f->cap_units = (float)y1;
	fclose(fp);
	*out = f;
	return 0;
fail:
	fclose(fp);
	nn_font_destroy(&f);
	return rc;
}

int nn_font_load_default(struct nn_font **out)
{
	*out = NULL;
	const char *env = getenv("VKYOLO_FONT");
	const char *path = env && *env ? env : NN_FONT_DEFAULT;
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		LOGW("font %s not found (install fonts-dejavu-core or set VKYOLO_FONT): labels are not drawn",
		     path);
		return 0;
	}
	fclose(fp);
	int rc = nn_font_load(path, out);
	if (rc == -ENOMEM)
		return rc;
	if (rc)
		LOGW("font %s unusable: labels are not drawn", path);
	return 0;
}

void nn_font_destroy(struct nn_font **font)
{
	if (!font || !*font)
		return;
	free((*font)->data);
	free(*font);
	*font = NULL;
}

static float font_scale(const struct nn_font *font, float cap_px)
{
	return cap_px / font->cap_units;
}

void nn_font_text_size(const struct nn_font *font, float cap_px, const char *text, int *w, int *h)
{
	float s = font_scale(font, cap_px), x = 0;
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		int adv, lsb;
		stbtt_GetCodepointHMetrics(&font->info, *p, &adv, &lsb);
		x += adv * s;
		if (p[1])
			x += s * stbtt_GetCodepointKernAdvance(&font->info, *p, p[1]);
	}
	*w = (int)ceilf(x);
	*h = (int)lrintf(cap_px);
}

static void blend(uint8_t *px, const uint8_t rgb[3], int a)
{
	for (int k = 0; k < 3; k++)
		px[k] = (uint8_t)((rgb[k] * a + px[k] * (255 - a) + 127) / 255);
}

void nn_draw_text(struct nn_image *img, const struct nn_font *font, float cap_px, int x, int y,
                  const char *text, const uint8_t rgb[3])
{
	if (!font || img->c != 3)
		return;
	float s = font_scale(font, cap_px), pen = (float)x;
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		int adv, lsb, x0, y0, x1, y1;
		stbtt_GetCodepointHMetrics(&font->info, *p, &adv, &lsb);
		float sub = pen - floorf(pen);
		stbtt_GetCodepointBitmapBoxSubpixel(&font->info, *p, s, s, sub, 0, &x0, &y0, &x1, &y1);
		int gw = x1 - x0, gh = y1 - y0;
		if (gw > 0 && gh > 0 && gw < 4096 && gh < 4096) {
			unsigned char *bm = malloc((size_t)gw * gh);
			if (!bm)
				return;
			stbtt_MakeCodepointBitmapSubpixel(&font->info, bm, gw, gh, gw, s, s, sub, 0, *p);
			int ox = (int)floorf(pen) + x0, oy = y + y0;
			for (int j = 0; j < gh; j++) {
				int yy = oy + j;
				if (yy < 0 || yy >= (int)img->h)
					continue;
				for (int i = 0; i < gw; i++) {
					int xx = ox + i, a = bm[j * gw + i];
					if (xx >= 0 && xx < (int)img->w && a)
						blend(img->data + ((size_t)yy * img->w + xx) * 3, rgb, a);
				}
			}
			free(bm);
		}
		pen += adv * s;
		if (p[1])
			pen += s * stbtt_GetCodepointKernAdvance(&font->info, *p, p[1]);
	}
}

uint32_t nn_draw_line_width(uint32_t w, uint32_t h)
{
	double v = nearbyint((double)(h + w + 3) / 2 * 0.003); // sum(im.shape) includes the 3 channels
	return v < 2 ? 2 : (uint32_t)v;
}

void nn_draw_class_color(int32_t cls, uint8_t rgb[3])
{
	// ultralytics Colors palette (hex RGB); detect.py asks for BGR on a BGR image, so the visible
	// colour is this RGB value.
	static const uint32_t pal[20] = { 0xFF3838, 0xFF9D97, 0xFF701F, 0xFFB21D, 0xCFD231, 0x48F90A, 0x92CC17,
		                              0x3DDB86, 0x1A9334, 0x00D4BB, 0x2C99A8, 0x00C2FF, 0x344593, 0x6473FF,
		                              0x0018EC, 0x8438FF, 0x520085, 0xCB38FF, 0xFF95C8, 0xFF37C7 };
	uint32_t c = pal[(uint32_t)(cls < 0 ? -cls : cls) % 20];
	rgb[0] = (uint8_t)(c >> 16);
	rgb[1] = (uint8_t)(c >> 8);
	rgb[2] = (uint8_t)c;
}

static void fill(struct nn_image *img, int x1, int y1, int x2, int y2, const uint8_t rgb[3])
{
	x1 = x1 < 0 ? 0 : x1;
	y1 = y1 < 0 ? 0 : y1;
	x2 = x2 >= (int)img->w ? (int)img->w - 1 : x2;
	y2 = y2 >= (int)img->h ? (int)img->h - 1 : y2;
	for (int y = y1; y <= y2; y++)
		for (int x = x1; x <= x2; x++)
			memcpy(img->data + ((size_t)y * img->w + x) * 3, rgb, 3);
}

void nn_draw_line(struct nn_image *img, int x0, int y0, int x1, int y1, const uint8_t rgb[3], int thickness)
{
	if (img->c != 3)
		return;
	int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
	int t = thickness > 0 ? thickness : 1;
	for (;;) {
		fill(img, x0 - t / 2, y0 - t / 2, x0 - t / 2 + t - 1, y0 - t / 2 + t - 1, rgb);
		if (x0 == x1 && y0 == y1)
			break;
		int e2 = 2 * err;
		if (e2 >= dy)
			err += dy, x0 += sx;
		if (e2 <= dx)
			err += dx, y0 += sy;
	}
}

void nn_draw_text_up(struct nn_image *img, const struct nn_font *font, float cap_px, int x, int y,
                     const char *text, const uint8_t rgb[3])
{
	int w, h;
	if (!font || img->c != 3)
		return;
	nn_font_text_size(font, cap_px, text, &w, &h);
	int pad = (int)(cap_px * 0.5f) + 2, th = h + 2 * pad; // room for descenders
	struct nn_image *tmp = NULL;
	if (w <= 0 || nn_image_create((uint32_t)w + 2, (uint32_t)th, 3, &tmp))
		return;
	memset(tmp->data, 255, (size_t)tmp->w * tmp->h * 3);
	static const uint8_t black[3] = { 0, 0, 0 };
	nn_draw_text(tmp, font, cap_px, 0, pad + h, text, black);
	// tmp (u, v) -> img (x - (pad + h) + v, y - u): the baseline row lands on column x
	for (uint32_t v = 0; v < tmp->h; v++)
		for (uint32_t u = 0; u < tmp->w; u++) {
			const uint8_t *s = tmp->data + ((size_t)v * tmp->w + u) * 3;
			int X = x - (pad + h) + (int)v, Y = y - (int)u;
			if (s[0] == 255 || X < 0 || Y < 0 || X >= (int)img->w || Y >= (int)img->h)
				continue;
			uint8_t *d = img->data + ((size_t)Y * img->w + X) * 3;
			float a = 1.0f - s[0] / 255.0f; // coverage
			for (int k = 0; k < 3; k++)
				d[k] = (uint8_t)(d[k] + (rgb[k] - d[k]) * a + 0.5f);
		}
	nn_image_destroy(&tmp);
}

void nn_draw_rect(struct nn_image *img, int x1, int y1, int x2, int y2, const uint8_t rgb[3],
                  int thickness)
{
	if (img->c != 3)
		return;
	if (x1 > x2) {
		int t = x1;
		x1 = x2;
		x2 = t;
	}
	if (y1 > y2) {
		int t = y1;
		y1 = y2;
		y2 = t;
	}
	if (thickness <= 0) {
		fill(img, x1, y1, x2, y2, rgb);
		return;
	}
	int a = thickness / 2, b = thickness - 1 - a; // band [edge - a, edge + b]
	fill(img, x1 - a, y1 - a, x2 + b, y1 + b, rgb);
	fill(img, x1 - a, y2 - a, x2 + b, y2 + b, rgb);
	fill(img, x1 - a, y1 - a, x1 + b, y2 + b, rgb);
	fill(img, x2 - a, y1 - a, x2 + b, y2 + b, rgb);
}

void nn_draw_detections(struct nn_image *img, const struct nn_det *d, uint32_t n,
                        const struct nn_draw_params *p)
{
	int lw = (int)(p->line_width ? p->line_width : nn_draw_line_width(img->w, img->h));
	static const uint8_t white[3] = { 255, 255, 255 };
	for (uint32_t k = n; k-- > 0;) {
		uint8_t col[3];
		nn_draw_class_color(d[k].cls, col);
		int x1 = (int)d[k].x1, y1 = (int)d[k].y1, x2 = (int)d[k].x2, y2 = (int)d[k].y2;
		nn_draw_rect(img, x1, y1, x2, y2, col, lw);
		if (p->hide_labels || !p->font)
			continue;
		char label[160], num[16];
		const char *name = NULL;
		if (p->names && d[k].cls >= 0 && (uint32_t)d[k].cls < p->n_names)
			name = p->names[d[k].cls];
		if (!name) {
			snprintf(num, sizeof(num), "%d", (int)d[k].cls);
			name = num;
		}
		if (p->hide_conf)
			snprintf(label, sizeof(label), "%s", name);
		else
			snprintf(label, sizeof(label), "%s %.2f", name, (double)d[k].conf);
		// cv2 font scale lw/3 gives capitals about 7*lw px tall.
		float cap = 7.0f * (float)lw;
		int tw, th;
		nn_font_text_size(p->font, cap, label, &tw, &th);
		bool outside = y1 - th >= 3;
		int by = outside ? y1 - th - 3 : y1 + th + 3;
		nn_draw_rect(img, x1, y1, x1 + tw, by, col, 0);
		nn_draw_text(img, p->font, cap, x1, outside ? y1 - 2 : y1 + th + 2, label, white);
	}
}
