// The window's overlays: the statistics panel and the help text, rasterised onto the frame copy.
#include <stdio.h>
#include <string.h>

#include "pipe.h"

static float text_px(const struct nn_image *img)
{
	float px = img->h / 40.0f;
	return px < 10.0f ? 10.0f : px > 24.0f ? 24.0f : px;
}

// Darkens a rectangle to 35 % so white text reads on any video.
static void shade(struct nn_image *img, int x0, int y0, int x1, int y1)
{
	if (x0 < 0) x0 = 0;
	if (y0 < 0) y0 = 0;
	if (x1 > (int)img->w) x1 = (int)img->w;
	if (y1 > (int)img->h) y1 = (int)img->h;
	for (int y = y0; y < y1; y++) {
		uint8_t *p = img->data + ((size_t)y * img->w + x0) * 3;
		for (int i = 0; i < (x1 - x0) * 3; i++)
			p[i] = (uint8_t)(p[i] * 35 / 100);
	}
}

// Lines of white text on a shaded box; a tab starts a second column (help: key, then action).
static void draw_lines(struct nn_image *img, const struct nn_font *font, int x, int y, char lines[][160], int n)
{
	static const uint8_t white[3] = { 255, 255, 255 };
	float px = text_px(img);
	int line_h = (int)(px * 1.6f), w = 0, col2 = (int)(px * 6.0f);
	for (int i = 0; i < n; i++) {
		char *tab = strchr(lines[i], '\t');
		const char *text = tab ? tab + 1 : lines[i];
		int tw = (int)(strlen(text) * px * 0.7f), th;
		if (font)
			nn_font_text_size(font, px, text, &tw, &th);
		tw += tab ? col2 : 0;
		w = tw > w ? tw : w;
	}
	int pad = (int)(px * 0.5f);
	shade(img, x, y, x + w + 2 * pad, y + n * line_h + pad);
	if (!font)
		return;
	for (int i = 0; i < n; i++) {
		int base = y + (i + 1) * line_h - (line_h - (int)px) / 2;
		char *tab = strchr(lines[i], '\t');
		if (tab) {
			*tab = '\0';
			nn_draw_text(img, font, px, x + pad + col2, base, tab + 1, white);
		}
		nn_draw_text(img, font, px, x + pad, base, lines[i], white);
		if (tab)
			*tab = '\t';
	}
}

void view_overlay_panel(struct nn_image *img, const struct nn_font *font, const struct view_pipe *pp,
                        const char *source_name)
{
	char lines[7][160];
	int n = 0;
	snprintf(lines[n++], 160, "%.1f FPS%s", pp->fps_ema, atomic_load(&pp->paused) ? "  (paused)" : "");
	snprintf(lines[n++], 160, "inference %.1f ms", pp->infer_ema);
	snprintf(lines[n++], 160, "latency %.1f ms", pp->lat_ema);
	snprintf(lines[n++], 160, "conf %.2f", (double)atomic_load(&pp->conf));
	snprintf(lines[n++], 160, "%s", pp->device);
	snprintf(lines[n++], 160, "%s", pp->p->model_name ? pp->p->model_name : "");
	snprintf(lines[n++], 160, "%s", source_name);
	draw_lines(img, font, 4, 4, lines, n);
}

void view_overlay_help(struct nn_image *img, const struct nn_font *font)
{
	char lines[7][160] = { "q / Esc\tquit", "space\tpause", "s\tscreenshot (PNG)", "+ / -\tconfidence",
	                       "f\tfullscreen", "h\tthis help", "" };
	int lh = (int)(text_px(img) * 1.6f);
	draw_lines(img, font, (int)img->w / 4, (int)img->h / 2 - 3 * lh, lines, 6);
}
