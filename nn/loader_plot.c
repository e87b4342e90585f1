// train_batch*.jpg: a batch tiled in a grid with its targets drawn, like the official plot_images
// (up to 16 images, the grid scaled down to 1920 px at most, white background).
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "draw.h"
#include "letterbox.h"
#include "loader.h"
#include "log.h"

// Draws tile k of the batch at (ox, oy) scaled to tw x th, with its targets.
static int plot_tile(const struct nn_batch *b, uint32_t k, struct nn_image *canvas, uint32_t ox,
		     uint32_t oy, uint32_t tw, uint32_t th, struct nn_image *hwc, struct nn_image *tile,
		     const struct nn_draw_params *dp)
{
	size_t plane = (size_t)b->h * b->w;
	const uint8_t *chw = b->input_u8 + k * 3 * plane;
	for (size_t i = 0; i < plane; i++)
		for (int c = 0; c < 3; c++)
			hwc->data[3 * i + c] = chw[c * plane + i];
	int rc = nn_resize_linear_u8(hwc->data, b->w, b->h, 3, tile->data, tw, th);
	if (rc)
		return rc;
	struct nn_det *d = malloc((b->ntargets + 1) * sizeof(*d));
	if (!d)
		return -ENOMEM;
	uint32_t n = 0;
	for (size_t t = 0; t < b->ntargets; t++) {
		const float *r = b->targets + 6 * t;
		if ((uint32_t)r[0] != k)
			continue;
		d[n++] = (struct nn_det){ (r[2] - r[4] / 2) * tw, (r[3] - r[5] / 2) * th,
					  (r[2] + r[4] / 2) * tw, (r[3] + r[5] / 2) * th, 1.0f,
					  (int32_t)r[1] };
	}
	nn_draw_detections(tile, d, n, dp);
	free(d);
	for (uint32_t y = 0; y < th; y++)
		memcpy(canvas->data + ((size_t)(oy + y) * canvas->w + ox) * 3,
		       tile->data + (size_t)y * tw * 3, (size_t)tw * 3);
	return 0;
}

int nn_batch_plot(const struct nn_batch *b, const char *const *names, uint32_t n_names,
		  const struct nn_font *font, const char *path)
{
	uint32_t n = b->n < 16 ? b->n : 16;
	uint32_t ns = (uint32_t)ceil(sqrt((double)n));
	double scale = 1920.0 / ns / (b->h > b->w ? b->h : b->w);
	uint32_t th = b->h, tw = b->w;
	if (scale < 1) {
		th = (uint32_t)ceil(scale * b->h);
		tw = (uint32_t)ceil(scale * b->w);
	}
	struct nn_image *canvas = NULL, *hwc = NULL, *tile = NULL;
	int rc = nn_image_create(ns * tw, ns * th, 3, &canvas);
	if (!rc)
		rc = nn_image_create(b->w, b->h, 3, &hwc);
	if (!rc)
		rc = nn_image_create(tw, th, 3, &tile);
	if (rc)
		goto fail;
	memset(canvas->data, 255, (size_t)canvas->w * canvas->h * 3);
	struct nn_draw_params dp = { .line_width = 1, .hide_conf = true, .names = names,
				     .n_names = n_names, .font = font };
	for (uint32_t k = 0; k < n && !rc; k++)
		rc = plot_tile(b, k, canvas, (k % ns) * tw, (k / ns) * th, tw, th, hwc, tile, &dp);
	if (!rc)
		rc = nn_image_save(path, canvas, 90);
fail:
	if (rc)
		LOGE("loader: plot batch %u to %s failed (%d)", b->index, path, rc);
	nn_image_destroy(&canvas);
	nn_image_destroy(&hwc);
	nn_image_destroy(&tile);
	return rc;
}
