// results.csv (the ultralytics columns, one row per epoch) and results.png (one panel per loss and
// metric column against the epoch, like the official plot_results), drawn on the CPU.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "draw.h"
#include "image.h"
#include "log.h"
#include "train.h"

const char *const train_csv_cols[TRAIN_CSV_COLS] = {
	"epoch",         "train/box_loss",     "train/cls_loss",        "train/dfl_loss", "metrics/precision(B)",
	"metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)", "val/box_loss",  "val/cls_loss",
	"val/dfl_loss",  "lr/pg0",             "lr/pg1",                "lr/pg2",
};

int train_csv_append(const char *path, const double row[TRAIN_CSV_COLS])
{
	FILE *f = fopen(path, "a");
	if (!f) {
		LOGE("train: cannot open %s: %s", path, strerror(errno));
		return -EIO;
	}
	fseek(f, 0, SEEK_END);
	bool fresh = ftell(f) == 0;
	for (int c = 0; fresh && c < TRAIN_CSV_COLS; c++) // official layout: '%20s,' columns
		fprintf(f, "%20s%s", train_csv_cols[c], c + 1 < TRAIN_CSV_COLS ? "," : "\n");
	for (int c = 0; c < TRAIN_CSV_COLS; c++)
		fprintf(f, c == 0 ? "%20.0f%s" : "%20.5g%s", row[c], c + 1 < TRAIN_CSV_COLS ? "," : "\n");
	if (fclose(f)) {
		LOGE("train: cannot write %s: %s", path, strerror(errno));
		return -EIO;
	}
	return 0;
}

// Reads the numeric rows of results.csv into rows[n][TRAIN_CSV_COLS] (malloc'ed).
static int csv_read(const char *path, double **rows, size_t *n)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	size_t cap = 0;
	*rows = NULL, *n = 0;
	if (!f) {
		LOGE("train: cannot read %s: %s", path, strerror(errno));
		return -EIO;
	}
	while (fgets(line, sizeof(line), f)) {
		double v[TRAIN_CSV_COLS];
		char *p = line, *end;
		int c = 0;
		for (; c < TRAIN_CSV_COLS; c++) {
			v[c] = strtod(p, &end);
			if (end == p)
				break;
			p = *end == ',' ? end + 1 : end;
		}
		if (c < TRAIN_CSV_COLS) // the header, or a damaged line
			continue;
		if (*n == cap) {
			double *r = realloc(*rows, (cap = cap ? 2 * cap : 16) * sizeof(v));
			if (!r) {
				fclose(f);
				free(*rows);
				*rows = NULL;
				return -ENOMEM;
			}
			*rows = r;
		}
		memcpy(*rows + *n * TRAIN_CSV_COLS, v, sizeof(v));
		(*n)++;
	}
	fclose(f);
	return 0;
}

#define PW 400 // panel size
#define PH 300

// One panel at (ox, oy): frame, title, value range, the curve of column col.
static void panel(struct nn_image *img, const struct nn_font *font, int ox, int oy, const double *rows, size_t n,
                  int col)
{
	static const uint8_t black[3] = {0, 0, 0}, grey[3] = {200, 200, 200}, blue[3] = {31, 119, 180};
	const int l = ox + 50, r = ox + PW - 15, t = oy + 35, b = oy + PH - 30;
	double lo = INFINITY, hi = -INFINITY, e0 = rows[0], e1 = rows[(n - 1) * TRAIN_CSV_COLS];
	for (size_t i = 0; i < n; i++) {
		double v = rows[i * TRAIN_CSV_COLS + col];
		lo = fmin(lo, v), hi = fmax(hi, v);
	}
	if (!(hi > lo))
		lo -= 0.5, hi += 0.5;
	nn_draw_rect(img, l, t, r, b, grey, 1);
	char text[64];
	if (font) {
		nn_draw_text(img, font, 13, ox + 50, oy + 22, train_csv_cols[col], black);
		snprintf(text, sizeof(text), "%.4g", hi);
		nn_draw_text(img, font, 9, ox + 4, t + 10, text, black);
		snprintf(text, sizeof(text), "%.4g", lo);
		nn_draw_text(img, font, 9, ox + 4, b, text, black);
		snprintf(text, sizeof(text), "epoch %.0f .. %.0f", e0, e1);
		nn_draw_text(img, font, 9, l, b + 18, text, black);
	}
	int px = 0, py = 0;
	for (size_t i = 0; i < n; i++) {
		double fx = n > 1 ? (double)i / (n - 1) : 0.5, fy = (rows[i * TRAIN_CSV_COLS + col] - lo) / (hi - lo);
		int x = l + 4 + (int)lround(fx * (r - l - 8)), y = b - 4 - (int)lround(fy * (b - t - 8));
		if (i)
			nn_draw_line(img, px, py, x, y, blue, 2);
		nn_draw_rect(img, x - 2, y - 2, x + 2, y + 2, blue, 0);
		px = x, py = y;
	}
}

int train_plot_results(const char *csv_path, const char *png_path)
{
	// official panel order: train losses, P, R / val losses, mAP50, mAP50-95
	static const int cols[10] = {1, 2, 3, 4, 5, 8, 9, 10, 6, 7};
	double *rows = NULL;
	size_t n = 0;
	struct nn_image *img = NULL;
	struct nn_font *font = NULL;
	int rc = csv_read(csv_path, &rows, &n);
	if (!rc && n == 0) {
		LOGE("train: %s has no rows to plot", csv_path);
		rc = -EINVAL;
	}
	if (!rc)
		rc = nn_image_create(5 * PW, 2 * PH, 3, &img);
	if (!rc)
		rc = nn_font_load_default(&font);
	if (!rc) {
		memset(img->data, 255, (size_t)img->w * img->h * 3);
		for (int k = 0; k < 10; k++)
			panel(img, font, (k % 5) * PW, (k / 5) * PH, rows, n, cols[k]);
		rc = nn_image_save(png_path, img, 95);
	}
	nn_font_destroy(&font);
	nn_image_destroy(&img);
	free(rows);
	return rc;
}
