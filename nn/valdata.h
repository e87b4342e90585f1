// The official validation dataloader (YOLOv9 LoadImagesAndLabels with rect=True, augment=False):
// images ordered by aspect ratio, one rectangular input shape per batch (pad 0.5, stride 32), each
// image's long side resized to imgsz (INTER_AREA when shrinking, INTER_LINEAR when enlarging),
// letterboxed into its batch shape without scale-up, and its labels carried through the same
// float32 round trip val.py makes (letterbox pixels -> normalised -> batch pixels -> original).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "letterbox.h"
#include "metrics.h"

// The batch plan of a split. order[i] = index into split->images of the i-th image fed; batch b
// holds order[b * batch .. min(n, (b + 1) * batch)) and has input shape shape_h[b] x shape_w[b].
struct nn_val_plan {
	size_t n;
	size_t *order;	      // [n] (owned)
	uint32_t batch;       // images per batch
	uint32_t nbatches;
	uint32_t *shape_h, *shape_w; // [nbatches] (owned)
};

// Sorts by h / w (stable, float64 as numpy) and computes each batch's shape as the official
// dataset: max ratio < 1 -> [max, 1], min ratio > 1 -> [1, 1 / min], else [1, 1]; shape =
// ceil(s * imgsz / stride + pad) * stride. Sizes are the EXIF-corrected header sizes of the split.
// -EINVAL (empty split, zero batch/stride/imgsz), -ENOMEM.
int nn_val_plan_create(const struct nn_dataset_split *sp, uint32_t imgsz, uint32_t batch,
		       uint32_t stride, double pad, struct nn_val_plan **out);
void nn_val_plan_destroy(struct nn_val_plan **p);

// Where one image went: decoded size, size after the long-side resize, and the letterbox into the
// batch shape (lb.pad_x / pad_y are the float half paddings val.py uses to scale back).
struct nn_val_geom {
	uint32_t w0, h0; // decoded (EXIF-applied) size
	uint32_t w, h;	 // after load_image's resize
	struct nn_letterbox lb;
};

// load_image's resize of a w0 x h0 image for imgsz: r = imgsz / max(h0, w0); when r != 1 the new
// size is (int(w0 * r), int(h0 * r)) (at least 1).
void nn_val_resized_size(uint32_t w0, uint32_t h0, uint32_t imgsz, uint32_t *w, uint32_t *h);

// Loads one image (nn_image_load: decode + EXIF orientation), resizes it as load_image does and
// letterboxes it (auto=False, scaleup=False, pad 114) into shape_h x shape_w, writing planar RGB
// u8 [3, shape_h, shape_w] to dst. -ENOENT/-EIO/-EINVAL (unreadable image), -ENOMEM.
int nn_val_load_image(const char *path, uint32_t imgsz, uint32_t shape_h, uint32_t shape_w,
		      uint8_t *dst, struct nn_val_geom *g);

// The labels of an image in original pixels exactly as val.py sees them (float32 throughout):
// xywhn -> letterbox xyxy (w, h and float pads) -> clipped to (W - 1e-3, H - 1e-3) and normalised
// by the batch shape W x H -> times (W, H) -> xyxy -> minus pad, divided by h / h0 -> clipped to
// the original image. out: n entries, caller-owned.
void nn_val_labels_to_gt(const struct nn_label *labels, size_t n, const struct nn_val_geom *g,
			 struct nn_gt *out);
// The same labels as the loss's targets, as the official val dataloader hands them to
// compute_loss: letterbox xyxy clipped to (W - 1e-3, H - 1e-3), then xywh normalised by the batch
// shape W x H. out: n rows (image, class, cx, cy, w, h), caller-owned.
void nn_val_labels_to_targets(const struct nn_label *labels, size_t n, const struct nn_val_geom *g, uint32_t image,
			      float *out);

// Maps NMS output (batch-input pixels) back to the original image: scale_boxes with ratio_pad
// ((h / h0, w / w0), (pad_x, pad_y)), then clipped.
void nn_val_scale_dets(const struct nn_val_geom *g, struct nn_det *d, uint32_t n);
