// Post-processing of the detection head output: the official non_max_suppression and scale_boxes
// (yolov9 utils/general.py), reproduced in float32 with the same ordering so results match exactly.
#pragma once
#include <stdbool.h>
#include <stdint.h>

// One detection: corners in pixels, confidence, class index (the official rows x1,y1,x2,y2,conf,cls).
struct nn_det {
	float x1, y1, x2, y2;
	float conf;
	int32_t cls;
};

struct nn_nms_params {
	float conf_thres;       // keep scores strictly above (detect 0.25, val 0.001)
	float iou_thres;        // suppress IoU strictly above (detect 0.45, val 0.7)
	bool multi_label;       // one row per (anchor, class) above conf (val); forced off when nc == 1
	bool agnostic;          // NMS across classes
	const int32_t *classes; // borrowed; keep only these classes (NULL = all)
	uint32_t n_classes;
	uint32_t max_det;       // detect 1000, val 300; 0 means 300
	uint32_t max_nms;       // candidates kept before NMS; 0 means 30000
};

// NMS for one image. pred: [4 + nc, A] f32, channel-first as the head outputs it (rows cx, cy, w, h
// in input pixels, then nc class scores). *out is malloc'ed (caller frees, NULL when *n_out = 0),
// sorted by confidence descending (ties keep anchor order). -EINVAL, -ENOMEM.
int nn_nms(const float *pred, uint32_t nc, uint32_t n_anchors, const struct nn_nms_params *p,
           struct nn_det **out, uint32_t *n_out);

// Maps boxes from network-input pixels (in_w x in_h) back to the original image (img_w x img_h)
// the way scale_boxes does without ratio_pad: gain and centred padding recomputed from the shapes,
// then clipped to the image.
void nn_scale_boxes(uint32_t in_w, uint32_t in_h, uint32_t img_w, uint32_t img_h, struct nn_det *d,
                    uint32_t n);
// scale_boxes with an explicit ratio_pad (val: gain = stored ratio, pad = stored float half pads;
// nn_letterbox's ratio_y, pad_x, pad_y), then clipped to img_w x img_h.
void nn_scale_boxes_ratio_pad(double gain, double pad_x, double pad_y, uint32_t img_w, uint32_t img_h,
                              struct nn_det *d, uint32_t n);
// Clamps x to [0, w] and y to [0, h] (clip_boxes).
void nn_clip_boxes(uint32_t w, uint32_t h, struct nn_det *d, uint32_t n);
// Rounds the corners half-to-even, as detect.py does after scale_boxes (torch.round).
void nn_round_boxes(struct nn_det *d, uint32_t n);
