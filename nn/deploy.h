// Re-parameterisation for deployment: a PGI training model (yolov9-*) becomes its deployable GELAN
// form the official way: the auxiliary branch and the first (auxiliary) head set are dropped and
// the detect layer takes the main set (cv4/cv5/dfl2 become cv2/cv3/dfl). Generic: the kept layers
// are the ancestors of the main head's inputs, less Silence layers, renumbered in order.
#pragma once
#include "checkpoint.h"

// src: a checkpoint whose arch ends in a DualDDetect row (borrowed). *out: a new checkpoint with
// a DDetect architecture and renamed state (same dtypes and values), names and strides copied.
// -EINVAL (logged) when src has no architecture or no DualDDetect head; -ENOMEM.
int nn_checkpoint_deploy(const struct nn_checkpoint *src, struct nn_checkpoint **out);
