// Annotating images with detections, in the style of the official Annotator (boxes in a per-class
// palette colour, "name 0.87" labels in a filled box, white text). One CPU rasterizer shared by
// `detect --save` and the viewer so both look the same. Text comes from stb_truetype.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "image.h"
#include "nms.h"

#define NN_FONT_DEFAULT "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

struct nn_font;

// Loads a TrueType font file. -ENOENT/-EIO when unreadable, -EINVAL when not a font.
int nn_font_load(const char *path, struct nn_font **out);
// The label font: $VKYOLO_FONT if set, else NN_FONT_DEFAULT. When neither loads, logs one warning
// and returns 0 with *out = NULL (callers then draw boxes without text). -ENOMEM only.
int nn_font_load_default(struct nn_font **out);
void nn_font_destroy(struct nn_font **font);

// Text extent for a font whose capital letters are cap_px pixels tall: width of the advance box and
// the cap height (what the label box is sized to, like cv2.getTextSize).
void nn_font_text_size(const struct nn_font *font, float cap_px, const char *text, int *w, int *h);
// Draws text (alpha-blended) with its baseline at y, starting at x. Clipped to the image.
void nn_draw_text(struct nn_image *img, const struct nn_font *font, float cap_px, int x, int y,
                  const char *text, const uint8_t rgb[3]);

// The Annotator's default line width: max(round((h + w + 3) / 2 * 0.003), 2).
uint32_t nn_draw_line_width(uint32_t w, uint32_t h);
// Class colour from the 20-colour ultralytics palette (RGB), cycling by class index.
void nn_draw_class_color(int32_t cls, uint8_t rgb[3]);
// A rectangle outline of `thickness` pixels centred on the edges (x1,y1)-(x2,y2), or filled when
// thickness <= 0. Clipped to the image. img must be 3-channel RGB.
void nn_draw_rect(struct nn_image *img, int x1, int y1, int x2, int y2, const uint8_t rgb[3],
                  int thickness);

// A straight line (Bresenham) of thickness x thickness pixel squares, clipped. img: 3-channel RGB.
void nn_draw_line(struct nn_image *img, int x0, int y0, int x1, int y1, const uint8_t rgb[3], int thickness);
// Text turned 90 degrees counter-clockwise (reading bottom to top), its first letter at (x, y), the
// baseline on the column x: axis labels. Same font and size rules as nn_draw_text.
void nn_draw_text_up(struct nn_image *img, const struct nn_font *font, float cap_px, int x, int y,
                     const char *text, const uint8_t rgb[3]);

struct nn_draw_params {
	uint32_t line_width;       // 0 = nn_draw_line_width(image); detect.py passes --line-thickness 3
	bool hide_labels;          // boxes only
	bool hide_conf;            // "name" instead of "name 0.87"
	const char *const *names;  // borrowed class names (NULL or short: the class number is shown)
	uint32_t n_names;
	const struct nn_font *font; // borrowed; NULL = no text (boxes only)
};

// Draws detections d[0..n) (image pixels) onto img, lowest confidence first so the strongest box
// ends on top, as detect.py iterates reversed(det).
void nn_draw_detections(struct nn_image *img, const struct nn_det *d, uint32_t n,
                        const struct nn_draw_params *p);
