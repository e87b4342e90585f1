// Video file source: libavformat demuxes, libavcodec decodes, libswscale converts to RGB24.
// With realtime pacing, frames are released at their presentation timestamps.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "convert.h"
#include "log.h"
#include "view_source.h"

struct video_source {
	struct view_source base;
	char path[1024];
	AVFormatContext *fmt;
	AVCodecContext *dec;
	struct SwsContext *sws;
	AVPacket *pkt;
	AVFrame *frame;
	int stream;
	double tb_ms;          // one timestamp tick in ms
	int64_t index;
	double loop_offset_ms; // added to pts after each loop
	double last_pts_ms, frame_ms;
	double t0;             // wall clock of pts 0 (realtime pacing)
	bool loop, realtime, draining, started;
};

static void averr(const char *what, const char *path, int err)
{
	char buf[AV_ERROR_MAX_STRING_SIZE] = "";
	av_strerror(err, buf, sizeof(buf));
	LOGE("video %s: %s: %s", path, what, buf);
}

// Next decoded frame into v->frame: 0, 1 at the end of the stream, or a negative errno.
static int decode_next(struct video_source *v)
{
	for (;;) {
		int r = avcodec_receive_frame(v->dec, v->frame);
		if (r == 0)
			return 0;
		if (r == AVERROR_EOF)
			return 1;
		if (r != AVERROR(EAGAIN)) {
			averr("cannot decode a frame", v->path, r);
			return -EIO;
		}
		if (v->draining)
			return 1;
		r = av_read_frame(v->fmt, v->pkt);
		if (r == AVERROR_EOF) {
			v->draining = true;
			avcodec_send_packet(v->dec, NULL);
			continue;
		}
		if (r < 0) {
			averr("cannot read a packet", v->path, r);
			return -EIO;
		}
		if (v->pkt->stream_index == v->stream) {
			r = avcodec_send_packet(v->dec, v->pkt);
			if (r < 0 && r != AVERROR(EAGAIN)) {
				av_packet_unref(v->pkt);
				averr("the video cannot be decoded", v->path, r);
				return -EIO;
			}
		}
		av_packet_unref(v->pkt);
	}
}

static int rewind_video(struct video_source *v)
{
	int r = av_seek_frame(v->fmt, v->stream, 0, AVSEEK_FLAG_BACKWARD);
	if (r < 0) {
		averr("cannot seek to the start", v->path, r);
		return -EIO;
	}
	avcodec_flush_buffers(v->dec);
	v->draining = false;
	v->loop_offset_ms = v->last_pts_ms + v->frame_ms;
	return 0;
}

static int video_read(struct view_source *base, struct nn_image **img, struct view_frame_info *info)
{
	struct video_source *v = (struct video_source *)base;
	int ret = decode_next(v);
	if (ret == 1 && v->loop && v->index > 0) {
		if ((ret = rewind_video(v)))
			return ret;
		ret = decode_next(v);
	}
	if (ret)
		return ret;
	AVFrame *f = v->frame;
	int64_t ts = f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp : f->pts;
	double pts = ts != AV_NOPTS_VALUE ? (ts - (v->fmt->streams[v->stream]->start_time != AV_NOPTS_VALUE
	                                           ? v->fmt->streams[v->stream]->start_time : 0)) * v->tb_ms
	                                  : v->last_pts_ms + v->frame_ms;
	pts += v->loop_offset_ms;
	v->last_pts_ms = pts;
	if ((ret = view_avframe_to_rgb(f, &v->sws, v->path, img)))
		return ret;
	if (v->realtime) {
		// Pace at the stream's own rate; when we fall behind by more than a few frames (a pause, a
		// slow decoder), re-anchor the clock rather than racing to catch up.
		double now = view_now_ms();
		if (!v->started || now > v->t0 + pts + 250.0)
			v->t0 = now - pts;
		v->started = true;
		view_sleep_until(v->t0 + pts);
	}
	info->index = v->index++;
	info->pts_ms = pts;
	info->t_capture_ms = view_now_ms();
	return 0;
}

static void video_close(struct view_source *base)
{
	struct video_source *v = (struct video_source *)base;
	sws_freeContext(v->sws);
	av_frame_free(&v->frame);
	av_packet_free(&v->pkt);
	avcodec_free_context(&v->dec);
	avformat_close_input(&v->fmt);
	free(v);
}

static const struct view_source_ops video_ops = { video_read, video_close };

int view_source_open_video(const char *path, const struct view_source_params *p, struct view_source **out)
{
	*out = NULL;
	struct video_source *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->base = (struct view_source){ .ops = &video_ops, .kind = VIEW_SOURCE_VIDEO };
	snprintf(v->path, sizeof(v->path), "%s", path);
	if (av_log_get_level() > AV_LOG_ERROR)
		av_log_set_level(AV_LOG_ERROR); // no encoder/decoder chatter on stderr
	const char *base = strrchr(path, '/');
	snprintf(v->base.name, sizeof(v->base.name), "%s", base ? base + 1 : path);
	v->loop = p->loop;
	v->realtime = p->realtime;
	int ret = -EIO, r;
	if ((r = avformat_open_input(&v->fmt, path, NULL, NULL)) < 0) {
		averr("cannot open", path, r);
		ret = r == AVERROR(ENOENT) ? -ENOENT : -EIO;
		goto fail;
	}
	if ((r = avformat_find_stream_info(v->fmt, NULL)) < 0) {
		averr("cannot read the stream info", path, r);
		goto fail;
	}
	const AVCodec *codec = NULL;
	v->stream = av_find_best_stream(v->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
	if (v->stream < 0 || !codec) {
		LOGE("video %s: %s", path, v->stream == AVERROR_DECODER_NOT_FOUND ? "no decoder for its video stream"
		                                                                  : "no video stream");
		ret = -ENOTSUP;
		goto fail;
	}
	AVStream *st = v->fmt->streams[v->stream];
	if (!(v->dec = avcodec_alloc_context3(codec)) || !(v->pkt = av_packet_alloc()) || !(v->frame = av_frame_alloc())) {
		ret = -ENOMEM;
		goto fail;
	}
	avcodec_parameters_to_context(v->dec, st->codecpar);
	v->dec->thread_count = 1;
	if ((r = avcodec_open2(v->dec, codec, NULL)) < 0) {
		averr("cannot open the decoder", path, r);
		goto fail;
	}
	v->tb_ms = av_q2d(st->time_base) * 1e3;
	AVRational fr = av_guess_frame_rate(v->fmt, st, NULL);
	v->base.fps = fr.num && fr.den ? av_q2d(fr) : 0;
	v->frame_ms = v->base.fps > 0 ? 1e3 / v->base.fps : 40.0;
	LOGD("video %s: %s %dx%d, %.3f fps", path, codec->name, v->dec->width, v->dec->height, v->base.fps);
	*out = &v->base;
	return 0;
fail:
	video_close(&v->base);
	return ret;
}
