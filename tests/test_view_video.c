// Video decoding through libav* (viewer/video.c) on the shared test videos: frame counts, sizes,
// rates and timestamps from their README, the mean RGB of the first frames, looping, realtime
// pacing, and plain errors for a missing file and a file that is not a video. The slideshow source
// over the shared images too.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view_source.h"
#include "view_util.h"

#include "check.h"

static double mean_rgb(const struct nn_image *img)
{
	double s = 0;
	size_t n = (size_t)img->w * img->h * 3;
	for (size_t i = 0; i < n; i++)
		s += img->data[i];
	return s / n;
}

static int check_video(const char *name, uint32_t frames, uint32_t w, uint32_t h, double fps, double mean0)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/data/video/%s", test_shared_dir(), name);
	struct view_source *s = NULL;
	CHECK(view_source_open_video(path, &(struct view_source_params){ 0 }, &s) == 0);
	CHECK(s->kind == VIEW_SOURCE_VIDEO && !s->live && fabs(s->fps - fps) < 1e-6);
	uint32_t n = 0;
	double worst_dt = 0;
	for (;;) {
		struct nn_image *img = NULL;
		struct view_frame_info info;
		int r = view_source_read(s, &img, &info);
		CHECK(r >= 0);
		if (r == 1)
			break;
		CHECK(img->w == w && img->h == h && img->c == 3);
		CHECK(info.index == n);
		// constant-rate streams: pts = index / fps (container ticks are 1/15360 s or finer)
		double dt = fabs(info.pts_ms - n * 1000.0 / fps);
		worst_dt = dt > worst_dt ? dt : worst_dt;
		if (n == 0) {
			double m = mean_rgb(img);
			printf("%s: first frame mean RGB %.3f (README %.2f)\n", name, m, mean0);
			// the README's value is printed with two decimals (same libswscale conversion)
			CHECK(fabs(m - mean0) <= 0.006);
		}
		nn_image_destroy(&img);
		n++;
	}
	printf("%s: %u frames %ux%u, %.3f fps, worst |pts - i/fps| %.4f ms\n", name, n, w, h, s->fps, worst_dt);
	CHECK(n == frames && worst_dt <= 0.1);
	struct nn_image *img = NULL;
	struct view_frame_info info;
	CHECK(view_source_read(s, &img, &info) == 1); // stays at the end
	view_source_close(&s);
	view_source_close(&s);
	return 0;
}

static int check_loop_and_pacing(void)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/data/video/horses_pan_640x424_15fps.mp4", test_shared_dir());
	struct view_source *s = NULL;
	CHECK(view_source_open_video(path, &(struct view_source_params){ .loop = true }, &s) == 0);
	struct nn_image *first = NULL, *img = NULL;
	struct view_frame_info info;
	for (int i = 0; i < 62; i++) {
		CHECK(view_source_read(s, &img, &info) == 0);
		if (i == 0)
			first = img, img = NULL;
		else if (i == 60) {
			// frame 60 is frame 0 again, and time keeps going: 60 / 15 s
			CHECK(info.index == 60 && fabs(info.pts_ms - 4000.0) < 0.1);
			CHECK(memcmp(img->data, first->data, (size_t)first->w * first->h * 3) == 0);
		}
		nn_image_destroy(&img);
	}
	CHECK(info.index == 61 && fabs(info.pts_ms - 61 * 1000.0 / 15) < 0.1);
	view_source_close(&s);
	nn_image_destroy(&first);
	// realtime: 7 frames at 15 fps take 6/15 s (the first is released at once)
	CHECK(view_source_open_video(path, &(struct view_source_params){ .realtime = true }, &s) == 0);
	double t0 = view_now_ms(), t_first = 0;
	for (int i = 0; i < 7; i++) {
		CHECK(view_source_read(s, &img, &info) == 0);
		if (!i)
			t_first = info.t_capture_ms;
		nn_image_destroy(&img);
	}
	double span = info.t_capture_ms - t_first;
	printf("realtime: 7 frames in %.1f ms (want 400), open+decode of the first %.1f ms\n", span, t_first - t0);
	// sleeps can only run late; 60 ms slack for a loaded 2-core machine
	CHECK(span >= 400.0 - 1.0 && span <= 460.0);
	view_source_close(&s);
	return 0;
}

static int check_errors(void)
{
	char path[4096];
	struct view_source *s = NULL;
	CHECK(view_source_open_video("/nonexistent/clip.mp4", &(struct view_source_params){ 0 }, &s) == -ENOENT && !s);
	snprintf(path, sizeof(path), "%s/data/video/README.md", test_shared_dir());
	int r = view_source_open_video(path, &(struct view_source_params){ 0 }, &s);
	printf("README.md as a video: %d\n", r);
	CHECK(r < 0 && !s);
	return 0;
}

static int check_slideshow(void)
{
	char a[4096], b[4096];
	snprintf(a, sizeof(a), "%s/data/images/bus.jpg", test_shared_dir());
	snprintf(b, sizeof(b), "%s/data/images/zidane.jpg", test_shared_dir());
	const char *paths[] = { a, b };
	struct view_source *s = NULL;
	struct nn_image *img = NULL;
	struct view_frame_info info;
	CHECK(view_source_open_images(paths, 2, &(struct view_source_params){ .realtime = true, .slide_ms = 50 }, &s) == 0);
	double t0 = view_now_ms();
	CHECK(view_source_read(s, &img, &info) == 0 && img->w == 810 && img->h == 1080 && info.index == 0);
	nn_image_destroy(&img);
	CHECK(view_source_read(s, &img, &info) == 0 && img->w == 1280 && img->h == 720 && info.index == 1);
	nn_image_destroy(&img);
	CHECK(view_now_ms() - t0 >= 49.0); // the second slide waits its period
	CHECK(view_source_read(s, &img, &info) == 1);
	view_source_close(&s);
	CHECK(view_source_open_images(paths, 0, &(struct view_source_params){ 0 }, &s) == -ENOENT);
	return 0;
}

int main(void)
{
	char model[4096], video[4096];
	if (vt_shared_inputs(model, video))
		return 77;
	int fail = 0;
	fail |= check_video("coco8_slideshow_640x480_10fps.mp4", 40, 640, 480, 10.0, 112.41);
	fail |= check_video("horses_pan_640x424_15fps.mp4", 60, 640, 424, 15.0, 127.51);
	fail |= check_loop_and_pacing();
	fail |= check_errors();
	fail |= check_slideshow();
	printf("%s\n", fail ? "FAIL" : "ok");
	return fail;
}
