// The live viewer: capture, inference and display run in three threads joined by one-frame
// mailboxes. When inference is slower than the source, the newest frame replaces the waiting one
// (dropped, never queued), so latency does not grow. One thread (inference) creates, uses and
// destroys the detector, hence the GPU device and all nn state. The main thread owns the window.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "detector.h"
#include "view_source.h"

struct view_params {
	struct view_source *src;            // borrowed
	view_detector_factory make_detector; // called in the inference thread
	void *detector_arg;
	float conf;                 // initial confidence threshold (+/- keys change it)
	bool headless;              // no window; file sources are processed frame by frame (no drops)
	uint64_t max_frames;        // stop after this many displayed frames (0 = end of stream / quit)
	const char *save_frames;    // folder for the rendered frames (frame_NNNNNN.png, source index)
	const char *save_video;     // rendered frames encoded with ffmpeg (container from the extension)
	const char *run_dir;        // where 's' screenshots go (created on demand); NULL = "."
	const char *screenshot;     // window mode: PNG of the window's pixels written at exit (tests)
	const char *model_name;     // shown in the panel
	bool fullscreen;
	uint32_t line_width;        // box lines, 0 = detect's default for the image size
	const char *keys;           // window: key presses replayed after the first frame ("h+s", demos/tests)
};

struct view_stats {
	uint64_t captured, inferred, displayed;
	uint64_t dropped;           // frames replaced before inference or before display
	double fps;                 // displayed frames per second over the run
	double infer_ms;            // mean network forward time
	double latency_ms, latency_p50_ms, latency_max_ms; // capture -> display (presented / written)
	double ui_gap_max_ms;       // window: longest pause of the event loop (responsiveness)
	char device[128];
};

// Runs until the end of the stream, max_frames, or quit. 0 or a negative errno (logged): a source
// or detector error, -ENODEV when there is no display (the message suggests --headless).
int view_run(const struct view_params *p, struct view_stats *stats);
