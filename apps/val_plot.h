// The plots the official val.py writes (utils/metrics.py plot_pr_curve, plot_mc_curve,
// ConfusionMatrix.plot), drawn on the CPU (apps/val_plot.c).
#pragma once
#include "confusion.h"
#include "metrics.h"

// Writes into dir (which must exist):
//   PR_curve.png, F1_curve.png, P_curve.png, R_curve.png from m's curves (not when m has no
//   classes: the official code skips ap_per_class then);
//   confusion_matrix.png from cm (each column normalised to 1, as the official plot), unless cm is
//   NULL.
// names: the nc class names (NULL: class numbers). 0, or the first error (-EIO, -ENOMEM), logged.
int val_plot_write(const char *dir, const struct nn_metrics_result *m, const struct nn_confusion *cm,
                   const char *const *names, int nc);
