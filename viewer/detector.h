// The viewer's inference step behind a small interface: one RGB frame in, detections in frame
// pixels out. The product's detector runs the model on the GPU runner (nn/runner.h); the CPU
// reference executor is a slow fallback for checking (--device cpu); tests plug in stubs.
// A detector is created, used and destroyed by one thread (the viewer's inference thread).
#pragma once
#include <stdint.h>

#include "image.h"
#include "nms.h"

struct nn_model;

struct view_detector {
	// Detections of img (frame pixels, corners rounded like detect.py) with confidence > conf.
	// *d malloc'ed (NULL when *n == 0). *infer_ms: the time of the network forward alone.
	int (*detect)(struct view_detector *det, const struct nn_image *img, float conf, struct nn_det **d,
	              uint32_t *n, double *infer_ms);
	void (*destroy)(struct view_detector *det);
	char device[128];          // shown in the panel
	const char *const *names;  // class names for the labels (borrowed from the detector)
	uint32_t nc;
};

// Called in the inference thread before the first frame; the detector it returns is destroyed
// there too. 0 or a negative errno (already logged).
typedef int (*view_detector_factory)(void *arg, struct view_detector **out);

static inline void view_detector_destroy(struct view_detector **d)
{
	if (d && *d) {
		(*d)->destroy(*d);
		*d = NULL;
	}
}

enum view_backend {
	VIEW_BACKEND_GPU, // nn_runner on a Vulkan device
	VIEW_BACKEND_CPU, // nn_model_forward_ref (slow)
};

struct view_detector_params {
	enum view_backend backend;
	const char *device;   // GPU: index or name substring, NULL = VKYOLO_DEVICE / the best one
	uint32_t imgsz;       // letterbox target (multiple of 32), 0 = 640
	float iou;            // 0 = 0.45
	uint32_t max_det;     // 0 = 1000
	// Called last by the detector's destroy, in the inference thread, so whoever built the model
	// for it can free it there too (all nn state stays in that thread). Optional.
	void (*release)(void *arg);
	void *release_arg;
};

// The official detect pipeline around a model (borrowed, must outlive the detector): letterbox
// with minimal stride padding, forward, NMS, scale_boxes, round. Device errors as logged. On
// failure p->release is not called.
int view_detector_create(const struct nn_model *model, const struct view_detector_params *p,
                         struct view_detector **out);

// Backends (internal): forward one CHW u8 input [3, h, w]; *pred [4 + nc, A] stays owned by the
// backend until the next call.
struct view_backend_ops {
	int (*forward)(void *ctx, const uint8_t *chw, uint32_t h, uint32_t w, const float **pred, uint32_t *anchors);
	void (*destroy)(void *ctx);
};
int view_backend_gpu_create(const struct nn_model *model, const char *device, const struct view_backend_ops **ops,
                            void **ctx, char *name, size_t name_cap);
