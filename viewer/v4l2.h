// V4L2 webcam capture: format negotiation (MJPEG or YUYV at a requested size and rate) and the
// camera source (memory-mapped buffers, always the newest frame). The negotiation talks to the
// device through an ioctl function so tests can drive it with a fake camera.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define VIEW_FOURCC(a, b, c, d) ((uint32_t)(a) | ((uint32_t)(b) << 8) | ((uint32_t)(c) << 16) | ((uint32_t)(d) << 24))
#define VIEW_FOURCC_MJPG VIEW_FOURCC('M', 'J', 'P', 'G')
#define VIEW_FOURCC_YUYV VIEW_FOURCC('Y', 'U', 'Y', 'V')

struct view_v4l2_io {
	int (*ioctl)(void *ctx, unsigned long request, void *arg); // 0 or -1 with errno, like ioctl(2)
	void *ctx;
};

// One (format, size, rate) the camera offers. fps is 0 when the camera does not say.
struct view_cam_mode {
	uint32_t fourcc, w, h;
	double fps;
};

struct view_cam_request {
	uint32_t w, h;    // 0 = 640 x 480, and the closest size is accepted; else the size must exist
	uint32_t fps;     // 0 = 30
	uint32_t fourcc;  // 0 = MJPEG or YUYV; else only that one
};

// Every mode the device offers (all formats, including ones we cannot convert). *modes malloc'ed.
int view_v4l2_list_modes(const struct view_v4l2_io *io, const char *dev, struct view_cam_mode **modes, size_t *n);
// Picks the mode for a request among modes: only MJPEG/YUYV; the requested (or closest default)
// size; a rate >= the request when one exists (else the fastest); then YUYV up to 640x480 (no
// decode cost), MJPEG above (YUYV bandwidth limits big sizes). -ENOTSUP (logged, listing what the
// camera gives) when nothing fits.
int view_v4l2_choose(const struct view_cam_mode *modes, size_t n, const struct view_cam_request *req,
                     const char *dev, struct view_cam_mode *out);
// Lists, chooses, then sets the format (VIDIOC_S_FMT) and rate (VIDIOC_S_PARM); *got is what the
// driver accepted. -ENOTSUP when the driver changes the format or size, -EIO on ioctl errors.
int view_v4l2_negotiate(const struct view_v4l2_io *io, const char *dev, const struct view_cam_request *req,
                        struct view_cam_mode *got);

// "MJPG" etc. into buf[5].
void view_fourcc_str(uint32_t fourcc, char buf[5]);
// Parses "MJPG"/"MJPEG"/"YUYV" (case-insensitive). 0 or -EINVAL.
int view_fourcc_parse(const char *s, uint32_t *out);
// --list-formats: opens the camera and prints its modes to f. -ENOENT etc. (logged).
int view_v4l2_print_formats(const char *spec, FILE *f);
