// YUYV and MJPEG camera frames to RGB.
#include "convert.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "log.h"

static inline uint8_t clamp8(int v)
{
	return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

// Coefficients * 65536, rounded.
#define CY 76284  // 1.164
#define CRV 104595 // 1.596
#define CGU 25690  // 0.392
#define CGV 53281  // 0.813
#define CBU 132186 // 2.017

static inline void yuv_px(int y, int u, int v, uint8_t *d)
{
	int c = (y - 16) * CY + 32768;
	d[0] = clamp8((c + CRV * (v - 128)) >> 16);
	d[1] = clamp8((c - CGU * (u - 128) - CGV * (v - 128)) >> 16);
	d[2] = clamp8((c + CBU * (u - 128)) >> 16);
}

void view_yuyv_to_rgb(const uint8_t *src, uint32_t w, uint32_t h, size_t stride, uint8_t *dst)
{
	for (uint32_t y = 0; y < h; y++) {
		const uint8_t *s = src + y * stride;
		uint8_t *d = dst + (size_t)y * w * 3;
		for (uint32_t x = 0; x + 1 < w; x += 2, s += 4, d += 6) {
			yuv_px(s[0], s[1], s[3], d);
			yuv_px(s[2], s[1], s[3], d + 3);
		}
	}
}

int view_avframe_to_rgb(struct AVFrame *f, struct SwsContext **sws, const char *what, struct nn_image **out)
{
	// Decoders report YUVJ (full range) formats; map them to their plain names with full range so
	// swscale does not warn about deprecated formats.
	enum AVPixelFormat fmt = f->format;
	int full = f->color_range == AVCOL_RANGE_JPEG, ret;
	switch (fmt) {
	case AV_PIX_FMT_YUVJ420P: fmt = AV_PIX_FMT_YUV420P, full = 1; break;
	case AV_PIX_FMT_YUVJ422P: fmt = AV_PIX_FMT_YUV422P, full = 1; break;
	case AV_PIX_FMT_YUVJ444P: fmt = AV_PIX_FMT_YUV444P, full = 1; break;
	case AV_PIX_FMT_YUVJ440P: fmt = AV_PIX_FMT_YUV440P, full = 1; break;
	default: break;
	}
	*sws = sws_getCachedContext(*sws, f->width, f->height, fmt, f->width, f->height, AV_PIX_FMT_RGB24,
	                            SWS_BILINEAR, NULL, NULL, NULL);
	if (!*sws) {
		LOGE("%s: no conversion from %s to RGB", what, av_get_pix_fmt_name(fmt));
		av_frame_unref(f);
		return -ENOTSUP;
	}
	// BT.709 when the stream says so, else BT.601 (swscale's default for unspecified streams).
	int cs = f->colorspace == AVCOL_SPC_BT709 ? SWS_CS_ITU709 : SWS_CS_ITU601;
	int *inv, *tab, src_range, dst_range, bri, con, sat;
	if (sws_getColorspaceDetails(*sws, &inv, &src_range, &tab, &dst_range, &bri, &con, &sat) >= 0)
		sws_setColorspaceDetails(*sws, sws_getCoefficients(cs), full, sws_getCoefficients(SWS_CS_DEFAULT), 1,
		                         bri, con, sat);
	if ((ret = nn_image_create((uint32_t)f->width, (uint32_t)f->height, 3, out))) {
		av_frame_unref(f);
		return ret;
	}
	uint8_t *dst[4] = { (*out)->data };
	int dst_stride[4] = { f->width * 3 };
	sws_scale(*sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, dst_stride);
	av_frame_unref(f);
	return 0;
}

struct view_mjpeg {
	AVCodecContext *dec;
	AVPacket *pkt;
	AVFrame *frame;
	struct SwsContext *sws;
};

void view_mjpeg_destroy(struct view_mjpeg **m)
{
	if (!m || !*m)
		return;
	sws_freeContext((*m)->sws);
	av_frame_free(&(*m)->frame);
	av_packet_free(&(*m)->pkt);
	avcodec_free_context(&(*m)->dec);
	free(*m);
	*m = NULL;
}

int view_mjpeg_create(struct view_mjpeg **out)
{
	struct view_mjpeg *m = calloc(1, sizeof(*m));
	const AVCodec *codec = avcodec_find_decoder(AV_CODEC_ID_MJPEG);
	int ret = -ENOMEM;
	if (!m)
		return -ENOMEM;
	if (!codec) {
		LOGE("mjpeg: libavcodec has no MJPEG decoder");
		ret = -ENOTSUP;
		goto fail;
	}
	if (!(m->dec = avcodec_alloc_context3(codec)) || !(m->pkt = av_packet_alloc()) || !(m->frame = av_frame_alloc()))
		goto fail;
	m->dec->thread_count = 1;
	if (avcodec_open2(m->dec, codec, NULL) < 0) {
		LOGE("mjpeg: cannot open the decoder");
		ret = -EIO;
		goto fail;
	}
	*out = m;
	return 0;
fail:
	view_mjpeg_destroy(&m);
	return ret;
}

int view_mjpeg_decode(struct view_mjpeg *m, const void *buf, size_t n, struct nn_image **out)
{
	*out = NULL;
	// libavcodec wants AV_INPUT_BUFFER_PADDING_SIZE zero bytes after the data.
	uint8_t *copy = av_malloc(n + AV_INPUT_BUFFER_PADDING_SIZE);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, buf, n);
	memset(copy + n, 0, AV_INPUT_BUFFER_PADDING_SIZE);
	int ret = av_packet_from_data(m->pkt, copy, (int)n);
	if (ret < 0) {
		av_free(copy);
		return -ENOMEM;
	}
	ret = avcodec_send_packet(m->dec, m->pkt);
	av_packet_unref(m->pkt);
	if (ret >= 0)
		ret = avcodec_receive_frame(m->dec, m->frame);
	if (ret < 0 || m->frame->width <= 0) {
		LOGE("mjpeg: a %zu-byte frame does not decode", n);
		av_frame_unref(m->frame);
		return -EINVAL;
	}
	return view_avframe_to_rgb(m->frame, &m->sws, "mjpeg", out);
}
