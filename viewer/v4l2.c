// V4L2 negotiation and the webcam source.
#include "v4l2.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/videodev2.h>

#include "convert.h"
#include "log.h"
#include "view_source.h"

void view_fourcc_str(uint32_t f, char buf[5])
{
	for (int i = 0; i < 4; i++) {
		char c = (char)((f >> (8 * i)) & 0xff);
		buf[i] = c >= 32 && c < 127 ? c : '?';
	}
	buf[4] = '\0';
}

int view_fourcc_parse(const char *s, uint32_t *out)
{
	if (!strcasecmp(s, "mjpg") || !strcasecmp(s, "mjpeg"))
		*out = VIEW_FOURCC_MJPG;
	else if (!strcasecmp(s, "yuyv"))
		*out = VIEW_FOURCC_YUYV;
	else
		return -EINVAL;
	return 0;
}

static int xioctl(const struct view_v4l2_io *io, unsigned long req, void *arg)
{
	int r;
	do
		r = io->ioctl(io->ctx, req, arg);
	while (r < 0 && errno == EINTR);
	return r;
}

static int push_mode(struct view_cam_mode **modes, size_t *n, size_t *cap, struct view_cam_mode m)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct view_cam_mode *p = realloc(*modes, nc * sizeof(*p));
		if (!p)
			return -ENOMEM;
		*modes = p, *cap = nc;
	}
	(*modes)[(*n)++] = m;
	return 0;
}

// The fastest rate the camera gives at one size, 0 when it does not enumerate intervals.
static double best_fps(const struct view_v4l2_io *io, uint32_t fourcc, uint32_t w, uint32_t h)
{
	double best = 0;
	for (uint32_t i = 0;; i++) {
		struct v4l2_frmivalenum iv = { .index = i, .pixel_format = fourcc, .width = w, .height = h };
		if (xioctl(io, VIDIOC_ENUM_FRAMEINTERVALS, &iv) < 0)
			break;
		struct v4l2_fract f = iv.type == V4L2_FRMIVAL_TYPE_DISCRETE ? iv.discrete : iv.stepwise.min;
		if (f.numerator && (double)f.denominator / f.numerator > best)
			best = (double)f.denominator / f.numerator;
		if (iv.type != V4L2_FRMIVAL_TYPE_DISCRETE)
			break;
	}
	return best;
}

int view_v4l2_list_modes(const struct view_v4l2_io *io, const char *dev, struct view_cam_mode **modes, size_t *n)
{
	size_t cap = 0;
	int ret = 0;
	*modes = NULL, *n = 0;
	for (uint32_t fi = 0; !ret; fi++) {
		struct v4l2_fmtdesc fd = { .index = fi, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
		if (xioctl(io, VIDIOC_ENUM_FMT, &fd) < 0)
			break;
		for (uint32_t si = 0; !ret; si++) {
			struct v4l2_frmsizeenum fs = { .index = si, .pixel_format = fd.pixelformat };
			if (xioctl(io, VIDIOC_ENUM_FRAMESIZES, &fs) < 0)
				break;
			if (fs.type == V4L2_FRMSIZE_TYPE_DISCRETE) {
				struct view_cam_mode m = { fd.pixelformat, fs.discrete.width, fs.discrete.height, 0 };
				m.fps = best_fps(io, m.fourcc, m.w, m.h);
				ret = push_mode(modes, n, &cap, m);
				continue;
			}
			// Stepwise / continuous: offer the common sizes that fall inside the range.
			static const uint32_t common[][2] = { { 320, 240 }, { 640, 480 }, { 800, 600 }, { 1280, 720 }, { 1920, 1080 } };
			const struct v4l2_frmsize_stepwise *sw = &fs.stepwise;
			for (size_t k = 0; k < sizeof(common) / sizeof(common[0]) && !ret; k++) {
				uint32_t w = common[k][0], h = common[k][1];
				if (w < sw->min_width || w > sw->max_width || h < sw->min_height || h > sw->max_height)
					continue;
				struct view_cam_mode m = { fd.pixelformat, w, h, best_fps(io, fd.pixelformat, w, h) };
				ret = push_mode(modes, n, &cap, m);
			}
			break;
		}
	}
	if (!ret && !*n) {
		LOGE("camera %s: it lists no capture formats", dev);
		ret = -ENOTSUP;
	}
	if (ret) {
		free(*modes);
		*modes = NULL, *n = 0;
	}
	return ret;
}

static void describe_modes(const struct view_cam_mode *modes, size_t n, char *buf, size_t cap)
{
	size_t len = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && len < cap; i++) {
		char fc[5];
		view_fourcc_str(modes[i].fourcc, fc);
		len += snprintf(buf + len, cap - len, "%s%s %ux%u@%.0f", i ? ", " : "", fc, modes[i].w, modes[i].h, modes[i].fps);
	}
}

int view_v4l2_choose(const struct view_cam_mode *modes, size_t n, const struct view_cam_request *req,
                     const char *dev, struct view_cam_mode *out)
{
	uint32_t want_w = req->w ? req->w : 640, want_h = req->h ? req->h : 480;
	double want_fps = req->fps ? req->fps : 30;
	const struct view_cam_mode *best = NULL;
	// Size first: exact when asked for, else the closest in area to 640x480.
	uint32_t size_w = 0, size_h = 0;
	double best_d = INFINITY;
	for (size_t i = 0; i < n; i++) {
		const struct view_cam_mode *m = &modes[i];
		if (m->fourcc != VIEW_FOURCC_MJPG && m->fourcc != VIEW_FOURCC_YUYV)
			continue;
		if (req->fourcc && m->fourcc != req->fourcc)
			continue;
		double d = fabs((double)m->w * m->h - (double)want_w * want_h) + fabs((double)m->w - want_w);
		if (req->w && (m->w != want_w || m->h != want_h))
			continue;
		if (d < best_d)
			best_d = d, size_w = m->w, size_h = m->h;
	}
	bool prefer_yuyv = (uint64_t)size_w * size_h <= 640 * 480;
	for (size_t i = 0; size_w && i < n; i++) {
		const struct view_cam_mode *m = &modes[i];
		if (m->w != size_w || m->h != size_h || (req->fourcc && m->fourcc != req->fourcc) ||
		    (m->fourcc != VIEW_FOURCC_MJPG && m->fourcc != VIEW_FOURCC_YUYV))
			continue;
		if (!best) {
			best = m;
			continue;
		}
		bool fast = m->fps == 0 || m->fps + 0.5 >= want_fps, best_fast = best->fps == 0 || best->fps + 0.5 >= want_fps;
		bool pref = (m->fourcc == VIEW_FOURCC_YUYV) == prefer_yuyv;
		bool best_pref = (best->fourcc == VIEW_FOURCC_YUYV) == prefer_yuyv;
		if ((fast && !best_fast) || (fast == best_fast && ((pref && !best_pref) ||
		                                                   (pref == best_pref && m->fps > best->fps))))
			best = m;
	}
	if (!best) {
		char have[1024], fc[5] = "";
		char what[64];
		if (req->fourcc)
			view_fourcc_str(req->fourcc, fc);
		describe_modes(modes, n, have, sizeof(have));
		if (req->w)
			snprintf(what, sizeof(what), "%s at %ux%u", req->fourcc ? fc : "MJPG or YUYV", req->w, req->h);
		else
			snprintf(what, sizeof(what), "%s", req->fourcc ? fc : "MJPG or YUYV");
		LOGE("camera %s cannot give %s; it gives: %s", dev, what, have);
		return -ENOTSUP;
	}
	*out = *best;
	if (best->fps && best->fps + 0.5 < want_fps)
		LOGW("camera %s: %ux%u runs at most at %.0f fps (asked %.0f)", dev, best->w, best->h, best->fps, want_fps);
	return 0;
}

int view_v4l2_negotiate(const struct view_v4l2_io *io, const char *dev, const struct view_cam_request *req,
                        struct view_cam_mode *got)
{
	struct view_cam_mode *modes = NULL, pick;
	size_t n = 0;
	int ret = view_v4l2_list_modes(io, dev, &modes, &n);
	if (ret)
		return ret;
	ret = view_v4l2_choose(modes, n, req, dev, &pick);
	free(modes);
	if (ret)
		return ret;
	struct v4l2_format fmt = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	fmt.fmt.pix.width = pick.w;
	fmt.fmt.pix.height = pick.h;
	fmt.fmt.pix.pixelformat = pick.fourcc;
	fmt.fmt.pix.field = V4L2_FIELD_ANY;
	if (xioctl(io, VIDIOC_S_FMT, &fmt) < 0) {
		LOGE("camera %s: VIDIOC_S_FMT failed: %s", dev, strerror(errno));
		return -EIO;
	}
	if (fmt.fmt.pix.pixelformat != pick.fourcc || fmt.fmt.pix.width != pick.w || fmt.fmt.pix.height != pick.h) {
		char a[5], b[5];
		view_fourcc_str(pick.fourcc, a);
		view_fourcc_str(fmt.fmt.pix.pixelformat, b);
		LOGE("camera %s: asked %s %ux%u, the driver set %s %ux%u", dev, a, pick.w, pick.h, b,
		     fmt.fmt.pix.width, fmt.fmt.pix.height);
		return -ENOTSUP;
	}
	*got = pick;
	struct v4l2_streamparm parm = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	uint32_t fps = req->fps ? req->fps : 30;
	if (pick.fps && pick.fps < fps)
		fps = (uint32_t)(pick.fps + 0.5);
	parm.parm.capture.timeperframe.numerator = 1;
	parm.parm.capture.timeperframe.denominator = fps;
	if (xioctl(io, VIDIOC_S_PARM, &parm) == 0 && parm.parm.capture.timeperframe.numerator)
		got->fps = (double)parm.parm.capture.timeperframe.denominator / parm.parm.capture.timeperframe.numerator;
	else
		LOGW("camera %s: cannot set the frame rate (VIDIOC_S_PARM)", dev);
	return 0;
}

static int sys_ioctl(void *ctx, unsigned long req, void *arg)
{
	return ioctl(*(int *)ctx, req, arg);
}

// Opens the device node with a clear message when it is missing or not a capture device.
static int open_camera(const char *spec, char *path, size_t cap, int *fd)
{
	view_camera_path(spec, path, cap);
	*fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (*fd < 0) {
		int e = errno;
		if (e == ENOENT)
			LOGE("no camera at %s (the device does not exist; is a webcam plugged in?)", path);
		else
			LOGE("camera %s: cannot open: %s", path, strerror(e));
		return -e;
	}
	struct v4l2_capability caps = { 0 };
	if (ioctl(*fd, VIDIOC_QUERYCAP, &caps) < 0) {
		LOGE("camera %s: not a V4L2 device", path);
		goto fail;
	}
	uint32_t c = caps.capabilities & V4L2_CAP_DEVICE_CAPS ? caps.device_caps : caps.capabilities;
	if (!(c & V4L2_CAP_VIDEO_CAPTURE) || !(c & V4L2_CAP_STREAMING)) {
		LOGE("camera %s (%s): not a streaming video capture device", path, (const char *)caps.card);
		goto fail;
	}
	return 0;
fail:
	close(*fd);
	*fd = -1;
	return -ENOTSUP;
}

int view_v4l2_print_formats(const char *spec, FILE *f)
{
	char path[256];
	int fd;
	int ret = open_camera(spec, path, sizeof(path), &fd);
	if (ret)
		return ret;
	struct view_v4l2_io io = { sys_ioctl, &fd };
	struct view_cam_mode *modes = NULL;
	size_t n = 0;
	ret = view_v4l2_list_modes(&io, path, &modes, &n);
	for (size_t i = 0; i < n; i++) {
		char fc[5];
		view_fourcc_str(modes[i].fourcc, fc);
		bool ok = modes[i].fourcc == VIEW_FOURCC_MJPG || modes[i].fourcc == VIEW_FOURCC_YUYV;
		fprintf(f, "%s  %4ux%-4u  %5.1f fps%s\n", fc, modes[i].w, modes[i].h, modes[i].fps, ok ? "" : "  (not supported)");
	}
	free(modes);
	close(fd);
	return ret;
}

#define CAM_BUFFERS 4

struct camera_source {
	struct view_source base;
	char path[256];
	int fd;
	struct view_cam_mode mode;
	uint32_t stride;
	void *buf[CAM_BUFFERS];
	size_t len[CAM_BUFFERS];
	uint32_t n_buf;
	bool streaming;
	struct view_mjpeg *mjpeg;
	int64_t index;
	double t0;
};

static void camera_close(struct view_source *base)
{
	struct camera_source *c = (struct camera_source *)base;
	if (c->streaming) {
		enum v4l2_buf_type t = V4L2_BUF_TYPE_VIDEO_CAPTURE;
		ioctl(c->fd, VIDIOC_STREAMOFF, &t);
	}
	for (uint32_t i = 0; i < c->n_buf; i++)
		if (c->buf[i] && c->buf[i] != MAP_FAILED)
			munmap(c->buf[i], c->len[i]);
	if (c->fd >= 0)
		close(c->fd);
	view_mjpeg_destroy(&c->mjpeg);
	free(c);
}

static int camera_read(struct view_source *base, struct nn_image **img, struct view_frame_info *info)
{
	struct camera_source *c = (struct camera_source *)base;
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	int r;
	do
		r = poll(&p, 1, 3000);
	while (r < 0 && errno == EINTR);
	if (r == 0) {
		LOGE("camera %s: no frame for 3 s", c->path);
		return -ETIMEDOUT;
	}
	// Dequeue everything that is ready and keep only the newest: the viewer never shows old frames.
	struct v4l2_buffer newest = { 0 }, b;
	bool have = false;
	for (;;) {
		b = (struct v4l2_buffer){ .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP };
		if (ioctl(c->fd, VIDIOC_DQBUF, &b) < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			LOGE("camera %s: VIDIOC_DQBUF failed: %s", c->path, strerror(errno));
			if (have)
				ioctl(c->fd, VIDIOC_QBUF, &newest);
			return -EIO;
		}
		if (have)
			ioctl(c->fd, VIDIOC_QBUF, &newest);
		newest = b, have = true;
	}
	if (!have) {
		*img = NULL;
		return camera_read(base, img, info);
	}
	int ret;
	if (c->mode.fourcc == VIEW_FOURCC_MJPG) {
		ret = view_mjpeg_decode(c->mjpeg, c->buf[newest.index], newest.bytesused, img);
	} else {
		ret = nn_image_create(c->mode.w, c->mode.h, 3, img);
		if (!ret)
			view_yuyv_to_rgb(c->buf[newest.index], c->mode.w, c->mode.h, c->stride, (*img)->data);
	}
	double t_cap = view_now_ms();
	if ((newest.flags & V4L2_BUF_FLAG_TIMESTAMP_MASK) == V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC) {
		double t = newest.timestamp.tv_sec * 1e3 + newest.timestamp.tv_usec * 1e-3;
		if (t > 0 && t <= t_cap)
			t_cap = t;
	}
	ioctl(c->fd, VIDIOC_QBUF, &newest);
	if (ret)
		return ret;
	if (c->index == 0)
		c->t0 = t_cap;
	info->index = c->index++;
	info->pts_ms = t_cap - c->t0;
	info->t_capture_ms = t_cap;
	return 0;
}

static const struct view_source_ops camera_ops = { camera_read, camera_close };

int view_source_open_camera(const char *spec, const struct view_source_params *p, struct view_source **out)
{
	*out = NULL;
	struct camera_source *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->base = (struct view_source){ .ops = &camera_ops, .kind = VIEW_SOURCE_CAMERA, .live = true };
	int ret = open_camera(spec, c->path, sizeof(c->path), &c->fd);
	if (ret) {
		free(c);
		return ret;
	}
	struct view_v4l2_io io = { sys_ioctl, &c->fd };
	struct view_cam_request req = { p->cam_w, p->cam_h, p->cam_fps, p->cam_fourcc };
	if ((ret = view_v4l2_negotiate(&io, c->path, &req, &c->mode)))
		goto fail;
	struct v4l2_format fmt = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	ioctl(c->fd, VIDIOC_G_FMT, &fmt);
	c->stride = fmt.fmt.pix.bytesperline ? fmt.fmt.pix.bytesperline : c->mode.w * 2;
	if (c->mode.fourcc == VIEW_FOURCC_MJPG && (ret = view_mjpeg_create(&c->mjpeg)))
		goto fail;
	struct v4l2_requestbuffers rb = { .count = CAM_BUFFERS, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
	                                  .memory = V4L2_MEMORY_MMAP };
	ret = -EIO;
	if (ioctl(c->fd, VIDIOC_REQBUFS, &rb) < 0 || rb.count < 2) {
		LOGE("camera %s: cannot get memory-mapped buffers", c->path);
		goto fail;
	}
	c->n_buf = rb.count < CAM_BUFFERS ? rb.count : CAM_BUFFERS;
	for (uint32_t i = 0; i < c->n_buf; i++) {
		struct v4l2_buffer b = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP, .index = i };
		if (ioctl(c->fd, VIDIOC_QUERYBUF, &b) < 0) {
			LOGE("camera %s: VIDIOC_QUERYBUF %u failed", c->path, i);
			goto fail;
		}
		c->len[i] = b.length;
		c->buf[i] = mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, b.m.offset);
		if (c->buf[i] == MAP_FAILED || ioctl(c->fd, VIDIOC_QBUF, &b) < 0) {
			LOGE("camera %s: cannot map/queue buffer %u", c->path, i);
			goto fail;
		}
	}
	enum v4l2_buf_type t = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	if (ioctl(c->fd, VIDIOC_STREAMON, &t) < 0) {
		LOGE("camera %s: cannot start streaming: %s", c->path, strerror(errno));
		goto fail;
	}
	c->streaming = true;
	char fc[5];
	view_fourcc_str(c->mode.fourcc, fc);
	snprintf(c->base.name, sizeof(c->base.name), "%.200s %s %ux%u", c->path, fc, c->mode.w, c->mode.h);
	c->base.fps = c->mode.fps;
	LOGI("camera %s: %s %ux%u at %.0f fps", c->path, fc, c->mode.w, c->mode.h, c->mode.fps);
	*out = &c->base;
	return 0;
fail:
	camera_close(&c->base);
	return ret;
}
