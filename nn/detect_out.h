// What `detect` writes besides images: YOLO label txt files (--save-txt/--save-conf), COCO results
// JSON (--save-json, as val.py's save_one_json) and the run folder (runs/detect/exp, exp2, ...).
// Formats follow the official scripts character for character.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nms.h"

// One label line "cls cx cy w h[ conf]" (no newline): centre/size normalised by the image size,
// each value printed with "%g" as detect.py does. Returns the length, or -ENOSPC when cap is short.
int nn_yolo_txt_line(const struct nn_det *d, uint32_t img_w, uint32_t img_h, bool save_conf, char *buf,
                     size_t cap);
// Appends the lines for d[0..n) (image pixels, already scaled and rounded) to path, last detection
// first (detect.py iterates reversed(det)). Creates the file if needed. -EIO.
int nn_yolo_txt_append(const char *path, const struct nn_det *d, uint32_t n, uint32_t img_w,
                       uint32_t img_h, bool save_conf);

// The COCO category id of an 80-class index (official coco80_to_coco91_class), -1 out of range.
int nn_coco80_to_91(int32_t cls);

// Accumulates COCO results [{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...] and
// writes them as Python's json.dump would. Not thread-safe.
struct nn_coco_json;
// coco91: map classes through nn_coco80_to_91 (the official script does this for COCO; use it when
// nc == 80); otherwise category_id = class index.
int nn_coco_json_create(bool coco91, struct nn_coco_json **out);
void nn_coco_json_destroy(struct nn_coco_json **js);
// Adds the detections of one image (original-image pixels, from scale_boxes, not rounded).
// image_id: the file stem as an integer when it is all digits ("000000000139" -> 139), else the
// stem as a string. -ENOMEM.
int nn_coco_json_add(struct nn_coco_json *js, const char *image_path, const struct nn_det *d,
                     uint32_t n);
// The JSON text so far (borrowed, valid until the next add/destroy).
const char *nn_coco_json_text(struct nn_coco_json *js);
// Writes the JSON to path (temporary file + rename). -EIO, -ENOMEM.
int nn_coco_json_write(struct nn_coco_json *js, const char *path);

// increment_path: returns (malloc'ed, caller frees) `path` itself when it does not exist or exist_ok,
// else the first of path2, path3, ... that does not exist (for an existing file the number goes
// before the extension: a.txt -> a2.txt). With mkdir, creates the result and its parents.
// -ENOMEM, -EEXIST when 2..9999 are all taken, -EIO/-errno from mkdir.
int nn_increment_path(const char *path, bool exist_ok, bool mkdir, char **out);
// mkdir -p. 0 when it exists already as a directory. -errno.
int nn_mkdir_p(const char *path);
