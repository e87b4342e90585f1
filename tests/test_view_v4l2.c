// V4L2 format negotiation against a fake camera (the machine has none): which mode is chosen for
// which request, the ioctls sent (S_FMT, S_PARM), and the errors for a format the camera cannot
// give, a driver that changes the format, and a missing device node. Also --source classification.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <linux/videodev2.h>

#include "view_source.h"
#include "v4l2.h"

#include "check.h"

struct fake_mode {
	uint32_t fourcc, w, h;
	uint32_t fps[3]; // discrete rates, 0-terminated
};

struct fake_cam {
	const struct fake_mode *modes;
	size_t n;
	bool stepwise;          // one format with a continuous size range 160x120 .. 1920x1080
	bool driver_overrides;  // S_FMT answers with another size
	struct v4l2_format set; // last S_FMT
	uint32_t parm_den;      // last S_PARM 1/den
	int n_sfmt;
};

static int n_formats(const struct fake_cam *c, uint32_t *list)
{
	int n = 0;
	for (size_t i = 0; i < c->n; i++) {
		bool seen = false;
		for (int k = 0; k < n; k++)
			seen |= list[k] == c->modes[i].fourcc;
		if (!seen)
			list[n++] = c->modes[i].fourcc;
	}
	return n;
}

static int fake_ioctl(void *ctx, unsigned long req, void *arg)
{
	struct fake_cam *c = ctx;
	uint32_t fmts[16];
	int nf = n_formats(c, fmts);
	if (req == VIDIOC_ENUM_FMT) {
		struct v4l2_fmtdesc *d = arg;
		if (d->index >= (uint32_t)nf)
			return errno = EINVAL, -1;
		d->pixelformat = fmts[d->index];
		return 0;
	}
	if (req == VIDIOC_ENUM_FRAMESIZES) {
		struct v4l2_frmsizeenum *s = arg;
		if (c->stepwise) {
			if (s->index > 0)
				return errno = EINVAL, -1;
			s->type = V4L2_FRMSIZE_TYPE_CONTINUOUS;
			s->stepwise = (struct v4l2_frmsize_stepwise){ 160, 1920, 1, 120, 1080, 1 };
			return 0;
		}
		uint32_t k = 0;
		for (size_t i = 0; i < c->n; i++)
			if (c->modes[i].fourcc == s->pixel_format && k++ == s->index) {
				s->type = V4L2_FRMSIZE_TYPE_DISCRETE;
				s->discrete.width = c->modes[i].w, s->discrete.height = c->modes[i].h;
				return 0;
			}
		return errno = EINVAL, -1;
	}
	if (req == VIDIOC_ENUM_FRAMEINTERVALS) {
		struct v4l2_frmivalenum *iv = arg;
		for (size_t i = 0; i < c->n; i++) {
			const struct fake_mode *m = &c->modes[i];
			if (m->fourcc != iv->pixel_format || (!c->stepwise && (m->w != iv->width || m->h != iv->height)))
				continue;
			if (iv->index >= 3 || !m->fps[iv->index])
				return errno = EINVAL, -1;
			iv->type = V4L2_FRMIVAL_TYPE_DISCRETE;
			iv->discrete = (struct v4l2_fract){ 1, m->fps[iv->index] };
			return 0;
		}
		return errno = EINVAL, -1;
	}
	if (req == VIDIOC_S_FMT) {
		struct v4l2_format *f = arg;
		c->n_sfmt++;
		if (c->driver_overrides)
			f->fmt.pix.width = 320, f->fmt.pix.height = 240;
		c->set = *f;
		return 0;
	}
	if (req == VIDIOC_S_PARM) {
		struct v4l2_streamparm *p = arg;
		c->parm_den = p->parm.capture.timeperframe.denominator;
		return 0;
	}
	return errno = ENOTTY, -1;
}

static const struct fake_mode webcam[] = {
	{ VIEW_FOURCC_YUYV, 640, 480, { 30, 15 } },
	{ VIEW_FOURCC_YUYV, 1280, 720, { 10, 5 } },
	{ VIEW_FOURCC_MJPG, 640, 480, { 30, 15 } },
	{ VIEW_FOURCC_MJPG, 1280, 720, { 30, 15 } },
	{ VIEW_FOURCC_MJPG, 1920, 1080, { 30 } },
	{ VIEW_FOURCC('G', 'R', 'E', 'Y'), 800, 600, { 60 } },
};

static int expect(struct fake_cam *cam, struct view_cam_request req, int want_ret, uint32_t fourcc, uint32_t w,
                  uint32_t h, uint32_t parm)
{
	struct view_v4l2_io io = { fake_ioctl, cam };
	struct view_cam_mode got = { 0 };
	cam->n_sfmt = 0, cam->parm_den = 0;
	int ret = view_v4l2_negotiate(&io, "/dev/fake", &req, &got);
	char a[5], b[5];
	view_fourcc_str(got.fourcc, a);
	view_fourcc_str(fourcc, b);
	printf("request %ux%u@%u fourcc %08x -> ret %d, %s %ux%u @%.0f (want %d %s %ux%u, S_PARM 1/%u)\n", req.w, req.h,
	       req.fps, req.fourcc, ret, a, got.w, got.h, got.fps, want_ret, b, w, h, parm);
	CHECK(ret == want_ret);
	if (ret)
		return 0;
	CHECK(got.fourcc == fourcc && got.w == w && got.h == h);
	CHECK(cam->n_sfmt == 1 && cam->set.fmt.pix.pixelformat == fourcc && cam->set.fmt.pix.width == w &&
	      cam->set.fmt.pix.height == h);
	CHECK(cam->parm_den == parm);
	return 0;
}

static int check_negotiation(void)
{
	struct fake_cam cam = { webcam, sizeof(webcam) / sizeof(webcam[0]) };
	struct view_v4l2_io io = { fake_ioctl, &cam };
	struct view_cam_mode *modes = NULL;
	size_t n = 0;
	CHECK(view_v4l2_list_modes(&io, "/dev/fake", &modes, &n) == 0);
	CHECK(n == 6 && modes[1].w == 1280 && modes[1].fps == 10 && modes[4].fps == 30);
	free(modes);
	int fail = 0;
	// default: 640x480 at 30, YUYV preferred at this size (no decode)
	fail |= expect(&cam, (struct view_cam_request){ 0 }, 0, VIEW_FOURCC_YUYV, 640, 480, 30);
	// 720p at 30: only MJPEG reaches the rate
	fail |= expect(&cam, (struct view_cam_request){ 1280, 720, 30, 0 }, 0, VIEW_FOURCC_MJPG, 1280, 720, 30);
	// 720p YUYV forced: accepted at its 10 fps maximum
	fail |= expect(&cam, (struct view_cam_request){ 1280, 720, 30, VIEW_FOURCC_YUYV }, 0, VIEW_FOURCC_YUYV, 1280, 720, 10);
	// 640x480 at 15 fps MJPEG forced
	fail |= expect(&cam, (struct view_cam_request){ 640, 480, 15, VIEW_FOURCC_MJPG }, 0, VIEW_FOURCC_MJPG, 640, 480, 15);
	// formats the camera cannot give: 1080p YUYV, a size it lacks, GREY-only size
	fail |= expect(&cam, (struct view_cam_request){ 1920, 1080, 30, VIEW_FOURCC_YUYV }, -ENOTSUP, 0, 0, 0, 0);
	fail |= expect(&cam, (struct view_cam_request){ 1024, 768, 30, 0 }, -ENOTSUP, 0, 0, 0, 0);
	fail |= expect(&cam, (struct view_cam_request){ 800, 600, 30, 0 }, -ENOTSUP, 0, 0, 0, 0);
	// a driver that silently changes the size is reported
	cam.driver_overrides = true;
	fail |= expect(&cam, (struct view_cam_request){ 0 }, -ENOTSUP, 0, 0, 0, 0);
	// a camera with only a continuous size range: the request inside it is honoured
	static const struct fake_mode cont[] = { { VIEW_FOURCC_MJPG, 0, 0, { 25 } } };
	struct fake_cam cam2 = { cont, 1, .stepwise = true };
	fail |= expect(&cam2, (struct view_cam_request){ 1280, 720, 30, 0 }, 0, VIEW_FOURCC_MJPG, 1280, 720, 25);
	// no format at all
	struct fake_cam empty = { cont, 0 };
	fail |= expect(&empty, (struct view_cam_request){ 0 }, -ENOTSUP, 0, 0, 0, 0);
	return fail;
}

static int check_missing_device(void)
{
	struct stat st;
	struct view_source *s = NULL;
	// /dev/video97 does not exist on any ordinary machine; /dev/video0 is tested when absent (CI).
	CHECK(stat("/dev/video97", &st) != 0);
	CHECK(view_source_open_camera("/dev/video97", &(struct view_source_params){ 0 }, &s) == -ENOENT && !s);
	if (stat("/dev/video0", &st) != 0)
		CHECK(view_source_open_camera("0", &(struct view_source_params){ 0 }, &s) == -ENOENT && !s);
	CHECK(view_v4l2_print_formats("97", stdout) == -ENOENT);
	char path[64];
	view_camera_path("3", path, sizeof(path));
	CHECK(!strcmp(path, "/dev/video3"));
	return 0;
}

static int check_classify(void)
{
	CHECK(view_source_classify("0") == VIEW_SOURCE_CAMERA);
	CHECK(view_source_classify("12") == VIEW_SOURCE_CAMERA);
	CHECK(view_source_classify("/dev/video2") == VIEW_SOURCE_CAMERA);
	CHECK(view_source_classify("a/b.mp4") == VIEW_SOURCE_VIDEO);
	CHECK(view_source_classify("clip.MKV") == VIEW_SOURCE_VIDEO);
	CHECK(view_source_classify("x.avi") == VIEW_SOURCE_VIDEO);
	CHECK(view_source_classify("img.jpg") == VIEW_SOURCE_IMAGES);
	CHECK(view_source_classify("dir.mp4/") == VIEW_SOURCE_IMAGES);
	CHECK(view_source_classify("frames/*.mp4") == VIEW_SOURCE_IMAGES);
	CHECK(view_source_classify("images") == VIEW_SOURCE_IMAGES);
	uint32_t f;
	CHECK(view_fourcc_parse("mjpeg", &f) == 0 && f == VIEW_FOURCC_MJPG);
	CHECK(view_fourcc_parse("YUYV", &f) == 0 && f == VIEW_FOURCC_YUYV);
	CHECK(view_fourcc_parse("H264", &f) == -EINVAL);
	return 0;
}

int main(void)
{
	int fail = 0;
	fail |= check_negotiation();
	fail |= check_missing_device();
	fail |= check_classify();
	printf("%s\n", fail ? "FAIL" : "ok");
	return fail;
}
