// The viewer pipeline with stub detectors (no model): headless frames are the source frames with
// exactly the stub's boxes drawn (compared with an independent render), the detector lives in one
// thread that is not the main thread, a live source faster than inference drops frames instead of
// queueing them (latency stays bounded), and --save-video writes a decodable file.
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "draw.h"
#include "view.h"
#include "view_util.h"

#include "check.h"

// ---- stub detector: one box per call, moving with the call count -------------------------------
struct stub {
	struct view_detector base;
	uint32_t calls;
	double sleep_ms;
	pthread_t created_by;
	int wrong_thread;
	float last_conf;
};
static const char *const stub_names[] = { "horse", "cart" };
// What the last stub saw, copied out when it is destroyed.
static pthread_t destroyed_by, created_by;
static int destroyed, wrong_thread;
static float last_conf;

static void stub_box(uint32_t k, struct nn_det *d)
{
	*d = (struct nn_det){ 20.0f + 7 * k, 30.0f + 3 * k, 300.0f + 5 * k, 260.0f, 0.5f + 0.01f * (k % 40), (int32_t)(k % 2) };
}

static int stub_detect(struct view_detector *det, const struct nn_image *img, float conf, struct nn_det **d,
                       uint32_t *n, double *infer_ms)
{
	struct stub *s = (struct stub *)det;
	(void)img;
	s->wrong_thread |= !pthread_equal(pthread_self(), s->created_by);
	s->last_conf = conf;
	if (s->sleep_ms > 0)
		usleep((useconds_t)(s->sleep_ms * 1000));
	*d = malloc(sizeof(**d));
	if (!*d)
		return -ENOMEM;
	stub_box(s->calls++, *d);
	*n = 1;
	*infer_ms = s->sleep_ms;
	return 0;
}

static void stub_destroy(struct view_detector *det)
{
	struct stub *s = (struct stub *)det;
	destroyed_by = pthread_self();
	destroyed++;
	created_by = s->created_by, wrong_thread = s->wrong_thread, last_conf = s->last_conf;
	free(det);
}

static int make_stub(void *arg, struct view_detector **out)
{
	struct stub *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base = (struct view_detector){ .detect = stub_detect, .destroy = stub_destroy, .names = stub_names, .nc = 2 };
	snprintf(s->base.device, sizeof(s->base.device), "stub");
	s->sleep_ms = *(const double *)arg;
	s->created_by = pthread_self();
	*out = &s->base;
	return 0;
}

static int make_failing(void *arg, struct view_detector **out)
{
	(void)arg, (void)out;
	return -EIO;
}

// ---- a live source: a new frame every period_ms, like a camera -----------------------------------
struct live_source {
	struct view_source base;
	double period_ms, t_next;
	int64_t index;
};

static int live_read(struct view_source *b, struct nn_image **img, struct view_frame_info *info)
{
	struct live_source *s = (struct live_source *)b;
	if (s->t_next == 0)
		s->t_next = view_now_ms();
	view_sleep_until(s->t_next);
	s->t_next += s->period_ms;
	int ret = nn_image_create(64, 48, 3, img);
	if (ret)
		return ret;
	memset((*img)->data, (int)(s->index & 0xff), 64 * 48 * 3);
	info->index = s->index++;
	info->pts_ms = info->index * s->period_ms;
	info->t_capture_ms = view_now_ms();
	return 0;
}

static void live_close(struct view_source *b)
{
	(void)b;
}

static const struct view_source_ops live_ops = { live_read, live_close };

static char tmpdir[] = "/tmp/vkyolo_view_XXXXXX";

static int check_headless_frames(const char *video)
{
	struct view_source *src = NULL;
	double no_sleep = 0;
	char dir[256], vid[256];
	snprintf(dir, sizeof(dir), "%s/frames", tmpdir);
	snprintf(vid, sizeof(vid), "%s/out.mp4", tmpdir);
	CHECK(view_source_open_video(video, &(struct view_source_params){ 0 }, &src) == 0);
	struct view_params p = { .src = src, .make_detector = make_stub, .detector_arg = &no_sleep, .conf = 0.3f,
	                         .headless = true, .max_frames = 10, .save_frames = dir, .save_video = vid };
	struct view_stats st;
	destroyed = 0;
	CHECK(view_run(&p, &st) == 0);
	view_source_close(&src);
	printf("headless: %llu displayed, %llu inferred, %llu dropped on %s\n", (unsigned long long)st.displayed,
	       (unsigned long long)st.inferred, (unsigned long long)st.dropped, st.device);
	// file sources are processed frame by frame when headless: frames 0..9, no drops
	CHECK(st.displayed == 10 && st.dropped == 0 && !strcmp(st.device, "stub"));
	CHECK(destroyed == 1 && !wrong_thread && pthread_equal(destroyed_by, created_by));
	CHECK(!pthread_equal(created_by, pthread_self()));
	CHECK(fabsf(last_conf - 0.3f) < 1e-7f);
	// Independent render: decode the same frames, draw the stub's box k on frame k.
	struct nn_font *font = NULL;
	CHECK(nn_font_load_default(&font) == 0);
	CHECK(view_source_open_video(video, &(struct view_source_params){ 0 }, &src) == 0);
	size_t overlay_px = 0;
	for (uint32_t k = 0; k < 10; k++) {
		struct nn_image *raw = NULL, *want = NULL, *got = NULL;
		struct view_frame_info info;
		char path[512];
		CHECK(view_source_read(src, &raw, &info) == 0);
		CHECK(nn_image_create(raw->w, raw->h, 3, &want) == 0);
		memcpy(want->data, raw->data, (size_t)raw->w * raw->h * 3);
		struct nn_det d;
		stub_box(k, &d);
		nn_draw_detections(want, &d, 1, &(struct nn_draw_params){ .names = stub_names, .n_names = 2, .font = font });
		snprintf(path, sizeof(path), "%s/frame_%06u.png", dir, k);
		CHECK(nn_image_load(path, &got) == 0);
		CHECK(got->w == want->w && got->h == want->h);
		size_t n = (size_t)got->w * got->h * 3, diff = 0;
		for (size_t i = 0; i < n; i++) {
			diff += got->data[i] != want->data[i];
			overlay_px += raw->data[i] != want->data[i];
		}
		if (diff) {
			fprintf(stderr, "frame %u: %zu bytes differ from the independent render\n", k, diff);
			return 1;
		}
		// the box edge carries the class colour (an overlay really is there)
		uint8_t c[3];
		nn_draw_class_color(d.cls, c);
		const uint8_t *e = got->data + ((size_t)200 * got->w + (uint32_t)d.x1) * 3;
		CHECK(e[0] == c[0] && e[1] == c[1] && e[2] == c[2]);
		nn_image_destroy(&raw);
		nn_image_destroy(&want);
		nn_image_destroy(&got);
	}
	printf("headless: 10 frames equal the independent render (%zu overlay bytes)\n", overlay_px);
	CHECK(overlay_px > 10000);
	view_source_close(&src);
	// The encoded video decodes back to 10 frames close to the rendered ones (lossy codec).
	CHECK(view_source_open_video(vid, &(struct view_source_params){ 0 }, &src) == 0);
	uint32_t n = 0;
	struct nn_image *img = NULL, *ref = NULL;
	struct view_frame_info info;
	double err = 0;
	while (view_source_read(src, &img, &info) == 0) {
		char path[512];
		snprintf(path, sizeof(path), "%s/frame_%06u.png", dir, n);
		CHECK(nn_image_load(path, &ref) == 0 && ref->w == img->w && ref->h == img->h);
		for (size_t i = 0; i < (size_t)img->w * img->h * 3; i++)
			err += abs(img->data[i] - ref->data[i]);
		err /= (double)img->w * img->h * 3;
		nn_image_destroy(&ref);
		nn_image_destroy(&img);
		n++;
	}
	printf("save-video: %u frames decoded back, last mean |d| %.2f\n", n, err);
	// H.264 / MPEG-4 at our bit rate: a few levels on average
	CHECK(n == 10 && err < 6.0);
	view_source_close(&src);
	nn_font_destroy(&font);
	return 0;
}

static int check_drops(void)
{
	// Camera at 100 fps, inference 60 ms: 5 of 6 frames must be dropped, and a displayed frame is
	// at most one inference plus a couple of frame periods old, whatever the run length.
	struct live_source live = { .base = { .ops = &live_ops, .kind = VIEW_SOURCE_CAMERA, .live = true, .name = "live",
	                                      .fps = 100 },
	                            .period_ms = 10 };
	double slow = 60;
	struct view_params p = { .src = &live.base, .make_detector = make_stub, .detector_arg = &slow, .conf = 0.25f,
	                         .headless = true, .max_frames = 12 };
	struct view_stats st;
	CHECK(view_run(&p, &st) == 0);
	printf("live: captured %llu, inferred %llu, displayed %llu, dropped %llu, %.1f FPS, latency mean %.1f p50 %.1f "
	       "max %.1f ms\n", (unsigned long long)st.captured, (unsigned long long)st.inferred,
	       (unsigned long long)st.displayed, (unsigned long long)st.dropped, st.fps, st.latency_ms, st.latency_p50_ms,
	       st.latency_max_ms);
	CHECK(st.displayed == 12 && st.dropped >= 3 * st.displayed && st.captured > 4 * st.displayed);
	// 60 ms inference + up to 10 ms waiting for the next frame + scheduling slack on a busy machine
	CHECK(st.latency_p50_ms < 60 + 10 + 40 && st.latency_max_ms < 60 + 10 + 150);
	CHECK(st.fps > 8 && st.fps < 17.5); // bounded by 1 / 60 ms
	return 0;
}

static int check_detector_error(void)
{
	struct live_source live = { .base = { .ops = &live_ops, .kind = VIEW_SOURCE_CAMERA, .live = true }, .period_ms = 10 };
	struct view_params p = { .src = &live.base, .make_detector = make_failing, .headless = true, .max_frames = 3 };
	struct view_stats st;
	CHECK(view_run(&p, &st) == -EIO && st.displayed == 0);
	return 0;
}

int main(void)
{
	char model[4096], video[4096];
	if (vt_shared_inputs(model, video))
		return 77;
	CHECK(mkdtemp(tmpdir));
	int fail = 0;
	fail |= check_headless_frames(video);
	fail |= check_drops();
	fail |= check_detector_error();
	if (!fail) {
		char cmd[512];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd))
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
	printf("%s\n", fail ? "FAIL" : "ok");
	return fail;
}
