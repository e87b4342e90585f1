// Training hyper-parameters (the official hyp YAML, e.g. assets/hyp/hyp.scratch-high.yaml).
#pragma once

struct nn_hyp {
	double lr0, lrf, momentum, weight_decay;
	double warmup_epochs, warmup_momentum, warmup_bias_lr;
	double box, cls, cls_pw, obj, obj_pw, dfl, iou_t, anchor_t, fl_gamma;
	double hsv_h, hsv_s, hsv_v;
	double degrees, translate, scale, shear, perspective;
	double flipud, fliplr, mosaic, mixup, copy_paste;
};

// The hyp.scratch-high.yaml values (the official YOLOv9 recipe).
void nn_hyp_defaults(struct nn_hyp *h);
// Reads a hyp YAML (a mapping of name: number). Keys absent from the file keep the defaults (LOGW
// names them); unknown keys are ignored with a LOGW. -ENOENT, -EINVAL (not a mapping, a non-numeric
// value, a probability outside [0, 1] or a negative gain), -ENOMEM.
int nn_hyp_load(const char *path, struct nn_hyp *h);
