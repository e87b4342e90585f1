// Camera pixel formats to RGB: packed YUYV 4:2:2 (BT.601 limited range, what UVC cameras send) and
// MJPEG (each frame a JPEG, often without Huffman tables; decoded by libavcodec's MJPEG decoder).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "image.h"

// YUYV (Y0 U Y1 V per pixel pair) w x h with `stride` bytes per row -> RGB24 (w * 3 per row).
// BT.601 limited range: R = 1.164(Y-16) + 1.596(V-128), G = 1.164(Y-16) - 0.392(U-128) - 0.813(V-128),
// B = 1.164(Y-16) + 2.017(U-128), in 16-bit fixed point, rounded, clamped. w must be even.
void view_yuyv_to_rgb(const uint8_t *src, uint32_t w, uint32_t h, size_t stride, uint8_t *dst);

struct view_mjpeg;
int view_mjpeg_create(struct view_mjpeg **out);
void view_mjpeg_destroy(struct view_mjpeg **m);
// Decodes one MJPEG frame (a JPEG, with or without DHT) into a new RGB image. -EINVAL (logged) when
// the bytes do not decode, -ENOMEM.
int view_mjpeg_decode(struct view_mjpeg *m, const void *buf, size_t n, struct nn_image **out);

struct AVFrame;
struct SwsContext;
// A decoded libav frame (any YUV/RGB format, limited or full range, BT.601 or BT.709) -> a new RGB
// image through the cached swscale context *sws. Unrefs f. `what` names the stream in messages.
int view_avframe_to_rgb(struct AVFrame *f, struct SwsContext **sws, const char *what, struct nn_image **out);
