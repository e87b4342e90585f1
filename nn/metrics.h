// Detection metrics as the official YOLOv9 val.py computes them: per-image matching of predictions
// to labels at IoU 0.50:0.05:0.95 (process_batch), then ap_per_class (P, R at the max mean-F1
// confidence, AP by 101-point interpolation, mAP50, mAP50-95). Pure CPU, double precision where the
// official code uses numpy float64, float32 where it uses torch float32 (IoU, confidences).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NN_METRICS_NIOU 10  // IoU thresholds 0.50, 0.55, ..., 0.95
#define NN_METRICS_NPX 1000 // points of the plotted curves (np.linspace(0, 1, 1000))

// One prediction (struct nn_det of nms.h): xyxy in original-image pixels.
#include "nms.h"

// One ground-truth box: xyxy in original-image pixels.
struct nn_gt {
	int cls;
	float x1, y1, x2, y2;
};

// The 10 IoU thresholds as float32, computed as torch.linspace(0.5, 0.95, 10) does.
void nn_metrics_iou_thresholds(float out[NN_METRICS_NIOU]);

// IoU of two xyxy boxes in float32, as utils/metrics.py box_iou (eps 1e-7 in the denominator).
float nn_box_iou(const float a[4], const float b[4]);

// process_batch: correct[d * NN_METRICS_NIOU + t] = whether detection d is a true positive at
// threshold t. Detections are taken in the given order (val.py passes them by descending
// confidence; for each label the lowest-index detection wins). correct is caller-owned, ndet * 10
// bytes. -ENOMEM.
int nn_metrics_match(const struct nn_det *dets, size_t ndet, const struct nn_gt *gts, size_t ngt,
		     bool *correct);

// Per-class result of ap_per_class (only classes present in the labels).
struct nn_class_metrics {
	int cls;
	size_t n_labels;	     // instances of this class
	double p, r, f1;	     // at the chosen confidence
	double ap[NN_METRICS_NIOU]; // AP at each IoU threshold
	double ap50, ap50_95;	     // ap[0], mean of ap[]
};

struct nn_metrics_result {
	size_t images;	  // images seen
	size_t instances; // labels over all images
	double p, r, map50, map50_95;
	double conf; // the confidence where P and R were read (px[i] of the smoothed F1 argmax)
	size_t nclasses;
	struct nn_class_metrics *classes; // owned, sorted by class id; free with nn_metrics_result_finish
	// The curves ap_per_class plots (official PR_curve / F1_curve / P_curve / R_curve.png), one row
	// of NN_METRICS_NPX values per entry of classes[] over px = linspace(0, 1, NN_METRICS_NPX):
	// precision, recall and F1 against the confidence threshold px, and pr = the precision envelope
	// at IoU 0.5 against the recall px. has_pr[i] is false for a class without predictions (the
	// official code has no PR row for it; its other rows are 0). Owned; NULL when nclasses is 0.
	double *curve_p, *curve_r, *curve_f1, *curve_pr;
	bool *has_pr;
};

void nn_metrics_result_finish(struct nn_metrics_result *r);

// smooth(y, f) of utils/metrics.py: a box filter of odd width round(n * f * 2) // 2 + 1 with the
// ends padded by the end values (np.convolve 'valid'); out has n values (may not alias y).
void nn_metrics_smooth(const double *y, size_t n, double f, double *out);

// compute_ap: AP of one precision/recall curve (n points, recall ascending) by 101-point linear
// interpolation of the precision envelope and trapezoidal integration.
double nn_metrics_compute_ap(const double *recall, const double *precision, size_t n);

// ap_per_class over n predictions (tp: [n][NN_METRICS_NIOU] bools, conf, pred_cls) and nt label
// classes. Classes are those in target_cls; predictions of other classes are ignored. Fills *out
// (images = 0; the caller sets it). -ENOMEM.
int nn_metrics_ap_per_class(const bool *tp, const float *conf, const int *pred_cls, size_t n,
			    const int *target_cls, size_t nt, struct nn_metrics_result *out);

// Accumulator over a dataset: add images one by one, then compute. Not thread-safe.
struct nn_metrics;
int nn_metrics_create(struct nn_metrics **out);
void nn_metrics_destroy(struct nn_metrics **m);
// Matches dets to gts (nn_metrics_match) and stores the per-prediction stats as val.py does:
// images without predictions still add their labels; images without either add nothing but are
// counted as seen. dets should be in descending-confidence order, as NMS returns them. -ENOMEM.
int nn_metrics_add_image(struct nn_metrics *m, const struct nn_det *dets, size_t ndet,
			 const struct nn_gt *gts, size_t ngt);
// The final numbers. When no prediction is a true positive at any threshold, everything is 0 and
// nclasses is 0, as val.py (which skips ap_per_class then). -ENOMEM.
int nn_metrics_compute(const struct nn_metrics *m, struct nn_metrics_result *out);

// ---- scoring saved prediction files (nn/metrics_files.c) ----
struct nn_label;
struct nn_dataset_split;

// Normalised xywh labels -> xyxy pixels of a width x height image, clipped to the image as the
// official scale_boxes does. out: n entries, caller-owned.
void nn_metrics_labels_to_gt(const struct nn_label *labels, size_t n, int width, int height,
			     struct nn_gt *out);

// Reads one prediction file (lines `class cx cy w h conf`, normalised, as --save-txt --save-conf
// writes them) into xyxy pixels of a width x height image, NOT clipped (the file is scored as
// written; this is how the metrics oracle was made), sorted by descending confidence (stable). A missing file is no predictions. *out owned by the caller (free()).
// -EINVAL (malformed line, logged with file and line), -EIO, -ENOMEM.
int nn_metrics_read_predictions(const char *path, int width, int height, struct nn_det **out,
				size_t *count);

// Scores a prediction folder against a loaded split: for each image, <pred_dir>/<stem>.txt
// (missing = no predictions); labels are clipped to the image (as val.py), predictions are not.
// Fills *out (free with nn_metrics_result_finish); cm (NULL: none) also receives every image
// (nn/confusion.h). -ENOENT (pred_dir is not a folder), -EINVAL / -EIO (a prediction file), -ENOMEM.
struct nn_confusion;
int nn_metrics_score_dir(const struct nn_dataset_split *split, const char *pred_dir,
			 struct nn_metrics_result *out, struct nn_confusion *cm);
