// PR / F1 / P / R curves and the confusion matrix as PNG (see val_plot.h), laid out like the
// official matplotlib figures: the curve of every class (coloured with a legend for fewer than 21
// classes, grey otherwise) and the mean over classes in thick blue; the matrix as a 'Blues' heatmap
// with the class names.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "draw.h"
#include "image.h"
#include "log.h"
#include "val_plot.h"

static const uint8_t black[3] = { 0, 0, 0 }, grey[3] = { 128, 128, 128 }, blue[3] = { 31, 119, 180 };

#define CW 1050 // curve figure size
#define CH 700

struct axes {
	int l, t, r, b; // plot area in pixels; data range [0, 1] x [0, 1]
};

static int ax_x(const struct axes *a, double v)
{
	return a->l + (int)lround(v * (a->r - a->l));
}

static int ax_y(const struct axes *a, double v)
{
	return a->b - (int)lround(v * (a->b - a->t));
}

static void frame(struct nn_image *img, const struct nn_font *font, const struct axes *a, const char *title,
                  const char *xlabel, const char *ylabel)
{
	nn_draw_rect(img, a->l, a->t, a->r, a->b, black, 1);
	char text[32];
	for (int k = 0; k <= 5; k++) {
		double v = k / 5.0;
		int x = ax_x(a, v), y = ax_y(a, v);
		nn_draw_line(img, x, a->b, x, a->b + 5, black, 1);
		nn_draw_line(img, a->l - 5, y, a->l, y, black, 1);
		snprintf(text, sizeof(text), "%.1f", v);
		if (font) {
			int w, h;
			nn_font_text_size(font, 11, text, &w, &h);
			nn_draw_text(img, font, 11, x - w / 2, a->b + 9 + h, text, black);
			nn_draw_text(img, font, 11, a->l - 9 - w, y + h / 2, text, black);
		}
	}
	if (!font)
		return;
	int w, h;
	nn_font_text_size(font, 14, xlabel, &w, &h);
	nn_draw_text(img, font, 14, (a->l + a->r - w) / 2, a->b + 48, xlabel, black);
	nn_font_text_size(font, 14, ylabel, &w, &h);
	nn_draw_text_up(img, font, 14, a->l - 45, (a->t + a->b + w) / 2, ylabel, black);
	nn_font_text_size(font, 16, title, &w, &h);
	nn_draw_text(img, font, 16, (a->l + a->r - w) / 2, a->t - 14, title, black);
}

static void curve(struct nn_image *img, const struct axes *a, const double *y, const uint8_t rgb[3], int thick)
{
	int px = 0, py = 0;
	for (size_t k = 0; k < NN_METRICS_NPX; k++) {
		double x = (double)k / (NN_METRICS_NPX - 1);
		int X = ax_x(a, x), Y = ax_y(a, fmin(fmax(y[k], 0.0), 1.0));
		if (k)
			nn_draw_line(img, px, py, X, Y, rgb, thick);
		px = X, py = Y;
	}
}

static void legend(struct nn_image *img, const struct nn_font *font, int *row, const char *text, const uint8_t rgb[3],
                   int thick)
{
	int x = CW - 290, y = 60 + *row * 18;
	nn_draw_line(img, x, y - 5, x + 28, y - 5, rgb, thick);
	if (font)
		nn_draw_text(img, font, 11, x + 36, y, text, black);
	(*row)++;
}

static const char *class_name(const char *const *names, int nc, int cls, char *buf, size_t cap)
{
	if (names && cls >= 0 && cls < nc && names[cls])
		return names[cls];
	snprintf(buf, cap, "%d", cls);
	return buf;
}

static int save(struct nn_image *img, const char *dir, const char *file)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int rc = nn_image_save(path, img, 95);
	if (rc)
		LOGE("val: could not write %s", path);
	return rc;
}

// which: 0 PR (precision against recall), 1 F1, 2 P, 3 R (against the confidence).
static int curve_plot(const char *dir, const struct nn_metrics_result *m, const char *const *names, int nc,
                      const struct nn_font *font, int which)
{
	static const char *const files[4] = { "PR_curve.png", "F1_curve.png", "P_curve.png", "R_curve.png" };
	static const char *const ylabels[4] = { "Precision", "F1", "Precision", "Recall" };
	const double *rows = which == 0 ? m->curve_pr : which == 1 ? m->curve_f1 : which == 2 ? m->curve_p : m->curve_r;
	struct nn_image *img = NULL;
	double *mean = calloc(NN_METRICS_NPX, sizeof(double)), *smooth = malloc(NN_METRICS_NPX * sizeof(double));
	int rc = mean && smooth ? nn_image_create(CW, CH, 3, &img) : -ENOMEM;
	if (rc) {
		free(mean), free(smooth);
		return rc;
	}
	memset(img->data, 255, (size_t)img->w * img->h * 3);
	struct axes a = { 90, 50, CW - 320, CH - 80 };
	char title[64], text[160], num[16];
	snprintf(title, sizeof(title), which == 0 ? "Precision-Recall Curve" : "%s-Confidence Curve", ylabels[which]);
	frame(img, font, &a, title, which == 0 ? "Recall" : "Confidence", ylabels[which]);
	bool each = m->nclasses > 0 && m->nclasses < 21; // official: a legend entry per class below 21
	int row = 0;
	size_t rows_used = 0;
	for (size_t i = 0; i < m->nclasses; i++) {
		if (which == 0 && !m->has_pr[i]) // official: no PR row for a class without predictions
			continue;
		const double *y = rows + i * NN_METRICS_NPX;
		for (size_t k = 0; k < NN_METRICS_NPX; k++)
			mean[k] += y[k];
		rows_used++;
		uint8_t col[3];
		nn_draw_class_color(m->classes[i].cls, col);
		curve(img, &a, y, each ? col : grey, 1);
		if (each) {
			const char *name = class_name(names, nc, m->classes[i].cls, num, sizeof(num));
			if (which == 0)
				snprintf(text, sizeof(text), "%s %.3f", name, m->classes[i].ap50);
			else
				snprintf(text, sizeof(text), "%s", name);
			legend(img, font, &row, text, col, 1);
		}
	}
	for (size_t k = 0; k < NN_METRICS_NPX; k++)
		mean[k] /= (double)(rows_used ? rows_used : 1);
	if (which == 0) {
		curve(img, &a, mean, blue, 3);
		snprintf(text, sizeof(text), "all classes %.3f mAP@0.5", m->map50);
	} else {
		nn_metrics_smooth(mean, NN_METRICS_NPX, 0.05, smooth);
		size_t best = 0;
		for (size_t k = 1; k < NN_METRICS_NPX; k++)
			if (smooth[k] > smooth[best])
				best = k;
		curve(img, &a, smooth, blue, 3);
		snprintf(text, sizeof(text), "all classes %.2f at %.3f", smooth[best], (double)best / (NN_METRICS_NPX - 1));
	}
	legend(img, font, &row, text, blue, 3);
	rc = save(img, dir, files[which]);
	nn_image_destroy(&img);
	free(mean), free(smooth);
	return rc;
}

// matplotlib's 'Blues' colormap, sampled at 0, 1/8, ..., 1 and interpolated linearly.
static void blues(double v, uint8_t rgb[3])
{
	static const uint8_t stops[9][3] = { { 247, 251, 255 }, { 222, 235, 247 }, { 198, 219, 239 },
		                                 { 158, 202, 225 }, { 107, 174, 214 }, { 66, 146, 198 },
		                                 { 33, 113, 181 },  { 8, 81, 156 },    { 8, 48, 107 } };
	double f = fmin(fmax(v, 0.0), 1.0) * 8.0;
	int i = f >= 8.0 ? 7 : (int)f;
	double u = f - i;
	for (int k = 0; k < 3; k++)
		rgb[k] = (uint8_t)lround(stops[i][k] + (stops[i + 1][k] - stops[i][k]) * u);
}

static int confusion_plot(const char *dir, const struct nn_confusion *cm, const char *const *names, int nc,
                          const struct nn_font *font)
{
	int n = nc + 1;                          // classes + background
	int cell = n <= 8 ? 80 : 800 / n > 9 ? 800 / n : 9;
	bool labels = names && nc < 99;          // official: tick labels for fewer than 99 names
	bool annot = nc < 30;                    // official: values written for fewer than 30 classes
	int margin = labels ? 150 : 60, side = n * cell;
	int W = margin + side + 120, H = 60 + side + margin;
	struct nn_image *img = NULL;
	int rc = nn_image_create((uint32_t)W, (uint32_t)H, 3, &img);
	if (rc)
		return rc;
	memset(img->data, 255, (size_t)img->w * img->h * 3);
	int x0 = margin, y0 = 60;
	float fs = cell >= 16 ? 11.0f : (float)cell * 0.7f;
	char text[32], num[16];
	for (int t = 0; t < n; t++) {
		double col = 0;
		for (int p = 0; p < n; p++)
			col += nn_confusion_at(cm, p, t);
		for (int p = 0; p < n; p++) {
			double v = nn_confusion_at(cm, p, t) / (col + 1e-9); // official normalisation (yolov9: 1e-9)
			if (v < 0.005) // official: not drawn (would show as 0.00)
				continue;
			uint8_t rgb[3];
			blues(v, rgb);
			int cx = x0 + t * cell, cy = y0 + p * cell;
			nn_draw_rect(img, cx, cy, cx + cell - 1, cy + cell - 1, rgb, 0);
			if (annot && font) {
				int w, h;
				snprintf(text, sizeof(text), "%.2f", v);
				nn_font_text_size(font, fs * 0.8f, text, &w, &h);
				static const uint8_t white[3] = { 255, 255, 255 };
				nn_draw_text(img, font, fs * 0.8f, cx + (cell - w) / 2, cy + (cell + h) / 2, text, v > 0.5 ? white : black);
			}
		}
	}
	nn_draw_rect(img, x0, y0, x0 + side, y0 + side, black, 1);
	if (font) {
		for (int k = 0; labels && k < n; k++) {
			const char *name = k == nc ? "background" : class_name(names, nc, k, num, sizeof(num));
			int w, h;
			nn_font_text_size(font, fs, name, &w, &h);
			nn_draw_text(img, font, fs, x0 - 6 - w, y0 + k * cell + (cell + h) / 2, name, black); // rows
			nn_draw_text_up(img, font, fs, x0 + k * cell + (cell + h) / 2, y0 + side + 6 + w, name, black);
		}
		nn_draw_text(img, font, 16, x0 + side / 2 - 20, H - 12, "True", black);
		nn_draw_text_up(img, font, 16, 22, y0 + side / 2 + 35, "Predicted", black);
		nn_draw_text(img, font, 16, x0 + side / 2 - 120, 35, "Confusion Matrix (normalised per true class)", black);
	}
	// colour bar
	for (int y = 0; y < side; y++) {
		uint8_t rgb[3];
		blues(1.0 - (double)y / (side - 1), rgb);
		nn_draw_rect(img, x0 + side + 30, y0 + y, x0 + side + 50, y0 + y, rgb, 0);
	}
	for (int k = 0; font && k <= 5; k++) {
		snprintf(text, sizeof(text), "%.1f", k / 5.0);
		nn_draw_text(img, font, 11, x0 + side + 56, y0 + side - k * (side - 1) / 5 + 5, text, black);
	}
	rc = save(img, dir, "confusion_matrix.png");
	nn_image_destroy(&img);
	return rc;
}

int val_plot_write(const char *dir, const struct nn_metrics_result *m, const struct nn_confusion *cm,
                   const char *const *names, int nc)
{
	struct nn_font *font = NULL;
	int rc = nn_font_load_default(&font);
	for (int which = 0; !rc && m && m->nclasses && which < 4; which++)
		rc = curve_plot(dir, m, names, nc, font, which);
	if (!rc && cm)
		rc = confusion_plot(dir, cm, names, nc, font);
	nn_font_destroy(&font);
	return rc;
}
