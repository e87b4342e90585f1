// The detection confusion matrix of the official utils/metrics.py ConfusionMatrix (val.py builds it
// when plotting): detections above a confidence threshold (0.25) are matched one-to-one to labels
// by IoU above a threshold (0.45), best IoU first; rows are predicted classes, columns true
// classes, and index nc is the background (a label nothing matched: row nc; a detection that
// matched no label: column nc). Counts are over all images added.
#pragma once
#include <stddef.h>

#include "metrics.h"

struct nn_confusion;

// The thresholds val.py's ConfusionMatrix(nc) uses.
#define NN_CONFUSION_CONF 0.25f
#define NN_CONFUSION_IOU 0.45f

// nc >= 1 classes; conf and iou thresholds (official 0.25, 0.45). -EINVAL, -ENOMEM.
int nn_confusion_create(int nc, float conf, float iou, struct nn_confusion **out);
void nn_confusion_destroy(struct nn_confusion **cm);

// One image: its detections (any order; xyxy pixels, as NMS returns them) and labels (xyxy
// pixels). Classes outside [0, nc) are -EINVAL (logged). -ENOMEM.
int nn_confusion_add_image(struct nn_confusion *cm, const struct nn_det *dets, size_t ndet, const struct nn_gt *gts,
                           size_t ngt);

int nn_confusion_classes(const struct nn_confusion *cm); // nc
// The count at (predicted row, true column), rows and columns 0..nc (nc = background).
double nn_confusion_at(const struct nn_confusion *cm, int pred, int truth);
