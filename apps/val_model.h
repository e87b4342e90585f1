// `vkyolo val --model`: the official val.py run of a model on a dataset split, on the GPU.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nn_dataset;
struct nn_dataset_split;
struct nn_confusion;
struct nn_metrics_result;
struct nn_model;
struct gpu_device;

struct val_model_opts {
	const char *model, *device;
	uint32_t imgsz;	  // multiple of 32 (rounded up by the caller, as check_img_size)
	uint32_t batch;	  // images per forward
	uint32_t workers; // image-loading threads (0: load on the main thread between forwards)
	uint32_t max_det;
	float conf, iou;
	const char *save_json; // COCO results file to write, or NULL
	bool coco91;	       // category ids through the COCO 80 -> 91 map
	// Debugging/testing aid: write DIR/batch_<b>.safetensors per batch with the exact network
	// input (input_u8 [batch, 3, h, w], short batches padded) and output ([batch, 4 + nc, A]).
	const char *dump_dir;
	// `vkyolo train`: a built model to run instead of loading `model` (borrowed; `model` then only
	// names it in messages), the device to run it on (borrowed; NULL opens `device`), or the CPU
	// reference forward (nn_model_forward_ref) instead of the GPU.
	const struct nn_model *net;
	struct gpu_device *dev;
	bool cpu_reference;
	bool loss; // also the validation loss: val_model_stats.loss
	// NULL, or a confusion matrix (caller-owned, created for the dataset's classes) that receives
	// every image's detections and labels, as val.py does when it plots.
	struct nn_confusion *confusion;
};

struct val_model_stats {
	size_t predictions;		   // detections over all images after NMS
	double ms_pre, ms_inf, ms_nms;	   // per image: load + resize + letterbox, forward, NMS + scaling
	double ms_wait, ms_wall;	   // total time the GPU loop waited for images, whole run
	uint32_t shapes_created;	   // runners created (distinct batch shapes met, cache misses)
	uint32_t last_n, last_h, last_w; // shape of the last batch
	double loss[3];                    // with opts.loss: box, cls, dfl loss items, mean over batches
};

// Runs the model on every image of sp (ordered and batched as the official dataloader), NMS,
// scales to original pixels and scores with the official metrics into *res (free with
// nn_metrics_result_finish). 0 or a negative errno (logged).
int val_model_run(const struct val_model_opts *o, const struct nn_dataset *ds,
		  const struct nn_dataset_split *sp, struct nn_metrics_result *res,
		  struct val_model_stats *st);
