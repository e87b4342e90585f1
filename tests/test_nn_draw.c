// Drawing: box edges carry the class colour, the interior is untouched, the label box holds white
// text pixels, the line-width formula, and the no-font fallback draws boxes only.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "draw.h"

#include "check.h"

static const uint8_t *px(const struct nn_image *img, int x, int y)
{
	return img->data + ((size_t)y * img->w + x) * 3;
}

static bool is(const uint8_t *p, const uint8_t rgb[3])
{
	return p[0] == rgb[0] && p[1] == rgb[1] && p[2] == rgb[2];
}

static int check_boxes(const struct nn_font *font)
{
	struct nn_image *img = NULL;
	CHECK(nn_image_create(320, 240, 3, &img) == 0);
	memset(img->data, 40, (size_t)320 * 240 * 3);
	const char *names[] = { "person", "bicycle", "car", "motorcycle" };
	struct nn_det d[2] = { { 50, 100, 150, 200, 0.87f, 3 }, { 200, 1, 300, 50, 0.5f, 0 } };
	struct nn_draw_params p = { .line_width = 3, .names = names, .n_names = 4, .font = font };
	nn_draw_detections(img, d, 2, &p);
	uint8_t c3[3], c0[3], bg[3] = { 40, 40, 40 };
	nn_draw_class_color(3, c3);
	nn_draw_class_color(0, c0);
	CHECK(c3[0] == 0xFF && c3[1] == 0xB2 && c3[2] == 0x1D); // palette entry 3, FFB21D
	// all four edges, the 3-px band centred on the edge (edge-1 .. edge+1), nothing outside it
	CHECK(is(px(img, 100, 200), c3) && is(px(img, 100, 201), c3) && is(px(img, 100, 199), c3));
	CHECK(is(px(img, 100, 202), bg) && is(px(img, 100, 198), bg));
	CHECK(is(px(img, 50, 150), c3) && is(px(img, 150, 150), c3) && is(px(img, 49, 150), c3));
	CHECK(is(px(img, 47, 150), bg) && is(px(img, 100, 150), bg));
	CHECK(is(px(img, 250, 50), c0));
	if (!font) {
		// no font: no label box above the first box
		CHECK(is(px(img, 60, 90), bg));
		nn_image_destroy(&img);
		return 0;
	}
	// label "motorcycle 0.87" above (y 100 - 21 - 3 = 76 .. 100): filled with the class colour
	// except for the text, which blends towards white.
	int tw, th;
	nn_font_text_size(font, 21.0f, "motorcycle 0.87", &tw, &th);
	printf("label size %dx%d\n", tw, th);
	CHECK(th == 21 && tw > 100 && tw < 260);
	int colour = 0, white = 0, other = 0;
	for (int y = 100 - th - 3; y < 100; y++)
		for (int x = 50; x <= 50 + tw; x++) {
			const uint8_t *q = px(img, x, y);
			if (is(q, c3))
				colour++;
			else if (q[0] == 255 && q[1] == 255 && q[2] == 255)
				white++;
			else if (q[2] > c3[2]) // partially covered text pixels move the blue channel up
				other++;
			else
				return fprintf(stderr, "unexpected pixel at %d,%d\n", x, y), 1;
		}
	printf("label box: %d colour, %d white, %d blended pixels\n", colour, white, other);
	CHECK(white > 100 && colour > white);
	// second box touches the top (y1 = 1 < th + 3): label drawn inside, below y1
	CHECK(!is(px(img, 205, 10), bg));
	nn_image_destroy(&img);
	return 0;
}

int main(void)
{
	// Annotator: max(round((h + w + 3) / 2 * 0.003), 2)
	CHECK(nn_draw_line_width(773, 512) == 2);   // 1.932 -> 2
	CHECK(nn_draw_line_width(1280, 720) == 3);  // 3.0045 -> 3
	CHECK(nn_draw_line_width(1920, 1080) == 5); // 4.5045 -> 5
	CHECK(nn_draw_line_width(100, 100) == 2);
	struct nn_font *font = NULL;
	setenv("VKYOLO_FONT", "/nonexistent/font.ttf", 1);
	CHECK(nn_font_load_default(&font) == 0 && font == NULL);
	if (check_boxes(NULL))
		return 1;
	unsetenv("VKYOLO_FONT");
	CHECK(nn_font_load_default(&font) == 0);
	if (!font) {
		printf("DejaVuSans.ttf not installed (fonts-dejavu-core): skipping text checks\n");
		return 77;
	}
	if (check_boxes(font))
		return 1;
	nn_font_destroy(&font);
	nn_font_destroy(&font);
	printf("draw: ok\n");
	return 0;
}
