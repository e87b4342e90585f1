// --save-video: rendered RGB frames -> YUV 4:2:0 -> the container's default encoder (H.264 for
// .mp4/.mkv when libx264 is present, else MPEG-4 part 2), timestamps in milliseconds.
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

#include "log.h"
#include "pipe.h"

struct view_encoder {
	char path[1024];
	AVFormatContext *fmt;
	AVCodecContext *enc;
	AVStream *st;
	AVFrame *frame;
	AVPacket *pkt;
	struct SwsContext *sws;
	int64_t last_pts;
	int64_t frame_ms; // nominal frame duration (ms); the muxer needs it for the last frame
	bool header;
};

static int fail_av(const struct view_encoder *e, const char *what, int err)
{
	char buf[AV_ERROR_MAX_STRING_SIZE] = "";
	av_strerror(err, buf, sizeof(buf));
	LOGE("video %s: %s: %s", e->path, what, buf);
	return -EIO;
}

static int drain(struct view_encoder *e)
{
	for (;;) {
		int r = avcodec_receive_packet(e->enc, e->pkt);
		if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
			return 0;
		if (r < 0)
			return fail_av(e, "encoding failed", r);
		if (e->pkt->duration <= 0)
			e->pkt->duration = e->frame_ms;
		av_packet_rescale_ts(e->pkt, e->enc->time_base, e->st->time_base);
		e->pkt->stream_index = e->st->index;
		r = av_interleaved_write_frame(e->fmt, e->pkt);
		if (r < 0)
			return fail_av(e, "cannot write", r);
	}
}

static void encoder_free(struct view_encoder *e)
{
	sws_freeContext(e->sws);
	av_frame_free(&e->frame);
	av_packet_free(&e->pkt);
	avcodec_free_context(&e->enc);
	if (e->fmt && !(e->fmt->oformat->flags & AVFMT_NOFILE))
		avio_closep(&e->fmt->pb);
	avformat_free_context(e->fmt);
	free(e);
}

int view_encoder_create(const char *path, uint32_t w, uint32_t h, double fps, struct view_encoder **out)
{
	struct view_encoder *e = calloc(1, sizeof(*e));
	int r, ret = -EIO;
	if (!e)
		return -ENOMEM;
	snprintf(e->path, sizeof(e->path), "%s", path);
	if (av_log_get_level() > AV_LOG_ERROR)
		av_log_set_level(AV_LOG_ERROR); // no encoder/decoder chatter on stderr
	e->last_pts = -1;
	e->frame_ms = fps > 0 ? llround(1000.0 / fps) : 33;
	if ((r = avformat_alloc_output_context2(&e->fmt, NULL, NULL, path)) < 0 || !e->fmt) {
		ret = fail_av(e, "no container for this file name (use .mp4, .mkv or .avi)", r);
		goto fail;
	}
	const AVCodec *codec = avcodec_find_encoder(e->fmt->oformat->video_codec);
	if (!codec)
		codec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
	if (!codec) {
		LOGE("video %s: no video encoder in this libavcodec", path);
		ret = -ENOTSUP;
		goto fail;
	}
	if (!(e->st = avformat_new_stream(e->fmt, NULL)) || !(e->enc = avcodec_alloc_context3(codec)) ||
	    !(e->frame = av_frame_alloc()) || !(e->pkt = av_packet_alloc())) {
		ret = -ENOMEM;
		goto fail;
	}
	e->enc->width = (int)(w & ~1u);
	e->enc->height = (int)(h & ~1u);
	e->enc->pix_fmt = AV_PIX_FMT_YUV420P;
	e->enc->time_base = (AVRational){ 1, 1000 };
	e->enc->framerate = (AVRational){ fps > 0 ? (int)lround(fps * 1000) : 30000, 1000 };
	e->enc->gop_size = 30;
	e->enc->max_b_frames = 0; // frames leave the encoder as they come (a live stream)
	e->enc->bit_rate = (int64_t)w * h * 4;
	e->enc->thread_count = 1;
	if (e->fmt->oformat->flags & AVFMT_GLOBALHEADER)
		e->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	if (!strcmp(codec->name, "libx264"))
		av_opt_set(e->enc->priv_data, "preset", "veryfast", 0);
	if ((r = avcodec_open2(e->enc, codec, NULL)) < 0) {
		ret = fail_av(e, "cannot open the encoder", r);
		goto fail;
	}
	avcodec_parameters_from_context(e->st->codecpar, e->enc);
	e->st->time_base = e->enc->time_base;
	e->frame->format = e->enc->pix_fmt;
	e->frame->width = e->enc->width;
	e->frame->height = e->enc->height;
	if (av_frame_get_buffer(e->frame, 0) < 0) {
		ret = -ENOMEM;
		goto fail;
	}
	if (!(e->fmt->oformat->flags & AVFMT_NOFILE) && (r = avio_open(&e->fmt->pb, path, AVIO_FLAG_WRITE)) < 0) {
		ret = fail_av(e, "cannot create the file", r);
		goto fail;
	}
	if ((r = avformat_write_header(e->fmt, NULL)) < 0) {
		ret = fail_av(e, "cannot write the header", r);
		goto fail;
	}
	e->header = true;
	e->sws = sws_getContext(e->enc->width, e->enc->height, AV_PIX_FMT_RGB24, e->enc->width, e->enc->height,
	                        AV_PIX_FMT_YUV420P, SWS_BILINEAR, NULL, NULL, NULL);
	if (!e->sws) {
		ret = -ENOTSUP;
		goto fail;
	}
	LOGD("video %s: encoding with %s", path, codec->name);
	*out = e;
	return 0;
fail:
	encoder_free(e);
	return ret;
}

int view_encoder_write(struct view_encoder *e, const struct nn_image *img, double pts_ms)
{
	if (av_frame_make_writable(e->frame) < 0)
		return -ENOMEM;
	const uint8_t *src[4] = { img->data };
	int stride[4] = { (int)img->w * 3 };
	sws_scale(e->sws, src, stride, 0, e->enc->height, e->frame->data, e->frame->linesize);
	int64_t pts = llround(pts_ms);
	if (pts <= e->last_pts)
		pts = e->last_pts + 1;
	e->frame->pts = e->last_pts = pts;
	int r = avcodec_send_frame(e->enc, e->frame);
	if (r < 0)
		return fail_av(e, "encoding failed", r);
	return drain(e);
}

int view_encoder_finish(struct view_encoder **pe)
{
	if (!pe || !*pe)
		return 0;
	struct view_encoder *e = *pe;
	int ret = 0;
	if (e->header) {
		avcodec_send_frame(e->enc, NULL);
		ret = drain(e);
		int r = av_write_trailer(e->fmt);
		if (r < 0 && !ret)
			ret = fail_av(e, "cannot finish the file", r);
	}
	encoder_free(e);
	*pe = NULL;
	return ret;
}
