// Frame sources of the live viewer: a V4L2 webcam, a video file (libav*), or images as a slideshow.
// Every source hands out RGB frames (struct nn_image, c = 3) with the monotonic time they were
// captured. A source is used by one thread at a time.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"

enum view_source_kind {
	VIEW_SOURCE_CAMERA, // "0".."N" or "/dev/videoN"
	VIEW_SOURCE_VIDEO,  // a file with a video extension (mp4, mkv, avi, mov, webm, ...)
	VIEW_SOURCE_IMAGES, // anything else: an image, a directory, a glob or a .txt list
};

// Classifies a --source argument by its form only (nothing is opened).
enum view_source_kind view_source_classify(const char *spec);
// The V4L2 device path for a camera spec: "0" -> "/dev/video0", "/dev/video2" stays.
void view_camera_path(const char *spec, char *path, size_t cap);

struct view_source_params {
	uint32_t cam_w, cam_h, cam_fps; // camera request; 0 = 640 x 480 at 30
	uint32_t cam_fourcc;            // 0 = MJPEG or YUYV, whichever fits best
	bool loop;                      // video/slideshow: start again at the end
	bool realtime;                  // video: pace frames at their timestamps; slideshow: slide_ms each
	double slide_ms;                // slideshow period when realtime (0 = 1000)
};

struct view_frame_info {
	int64_t index;       // frame number within the stream (counts on across loops)
	double pts_ms;       // stream timestamp (video), or index * period
	double t_capture_ms; // monotonic clock when the frame was captured (app clock)
};

struct view_source;
struct view_source_ops {
	// 0 with a new RGB image (caller owns), 1 at the end of the stream, or a negative errno.
	int (*read)(struct view_source *s, struct nn_image **img, struct view_frame_info *info);
	void (*close)(struct view_source *s);
};
struct view_source {
	const struct view_source_ops *ops;
	enum view_source_kind kind;
	bool live;        // frames arrive on their own (camera): drop, never wait
	char name[256];   // shown in the panel and in messages
	double fps;       // nominal frame rate, 0 when unknown
};

int view_source_open_camera(const char *spec, const struct view_source_params *p, struct view_source **out);
int view_source_open_video(const char *path, const struct view_source_params *p, struct view_source **out);
// paths: borrowed, must outlive the source.
int view_source_open_images(const char *const *paths, size_t n, const struct view_source_params *p,
                            struct view_source **out);

static inline int view_source_read(struct view_source *s, struct nn_image **img, struct view_frame_info *info)
{
	return s->ops->read(s, img, info);
}
// Accepts &NULL; clears *s.
void view_source_close(struct view_source **s);

// Monotonic clock in milliseconds (the clock of t_capture_ms).
double view_now_ms(void);
// Sleeps until the monotonic clock reads t_ms (returns at once when already past).
void view_sleep_until(double t_ms);
