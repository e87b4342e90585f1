// Internals shared by the viewer's pipeline (pipeline.c), window (window.c), overlays and encoder.
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "draw.h"
#include "view.h"

// A one-item mailbox. put replaces a waiting item (counted as dropped) unless `wait`, in which case
// it blocks until the slot is empty. close wakes everyone; take then drains, then returns NULL.
struct view_slot {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	void *item;
	bool closed;
	uint64_t dropped;
	void (*free_item)(void *);
};

// A frame after inference.
struct view_result {
	struct nn_image *img;
	struct view_frame_info info;
	struct nn_det *d;
	uint32_t n;
	double infer_ms;
	float conf;
};
void view_result_free(void *r);

struct view_pipe {
	const struct view_params *p;
	struct view_slot cap, res;
	bool lossless;
	atomic_bool stop, paused;
	_Atomic float conf;
	int cap_err, inf_err;
	// detector readiness, set once by the inference thread
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int ready; // 0 pending, 1 ready, -1 failed
	char **names; // owned copy of the detector's class names (strdup; NULL entries when out of memory)
	uint32_t nc;
	char device[128];
	struct nn_font *font;
	struct view_encoder *enc;
	// statistics (main thread)
	atomic_uint_fast64_t captured, inferred;
	double *lat;
	size_t n_lat, lat_cap;
	double infer_sum, t_first, t_last;
	uint64_t displayed;
	double fps_ema, infer_ema, lat_ema, t_prev;
	double ui_gap_max; // window: longest time between two event-loop turns
};

// Takes the newest result: blocks up to timeout_ms (< 0: forever). NULL on timeout or when the
// pipeline is finished (*done then true).
struct view_result *view_pipe_take(struct view_pipe *pp, int timeout_ms, bool *done);
// A copy of the frame with its detections drawn (what --save-frames writes).
int view_pipe_render(struct view_pipe *pp, const struct view_result *r, struct nn_image **out);
// Writes the rendered frame to --save-frames / --save-video. 0 or a negative errno.
int view_pipe_save(struct view_pipe *pp, const struct view_result *r, const struct nn_image *rendered);
// Records one displayed frame (latency from capture to now).
void view_pipe_count(struct view_pipe *pp, const struct view_result *r);

// Overlays drawn in the window only.
void view_overlay_panel(struct nn_image *img, const struct nn_font *font, const struct view_pipe *pp,
                        const char *source_name);
void view_overlay_help(struct nn_image *img, const struct nn_font *font);

// The window (window.c): open initialises SDL's video (-ENODEV, logged, when there is no display);
// run is the event/display loop and shuts SDL down at its end.
int view_window_open(void);
int view_window_run(struct view_pipe *pp);

// Video encoding of rendered frames (encode.c).
struct view_encoder;
int view_encoder_create(const char *path, uint32_t w, uint32_t h, double fps, struct view_encoder **out);
int view_encoder_write(struct view_encoder *e, const struct nn_image *img, double pts_ms);
// Flushes and closes the file; accepts &NULL. Returns the first error of the flush.
int view_encoder_finish(struct view_encoder **e);
