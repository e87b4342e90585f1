// `vkyolo view`: live detection on a webcam, a video file or a slideshow, in a window or headless.
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

#ifdef VKYOLO_NO_VIEWER
int cmd_view(int argc, char **argv)
{
	(void)argc, (void)argv;
	fprintf(stderr, "vkyolo view: this build has no viewer (SDL2 and libav* were not found)\n");
	return APP_EXIT_FAILURE;
}
#else
#include "checkpoint.h"
#include "detect_out.h"
#include "model.h"
#include "source.h"
#include "v4l2.h"
#include "view.h"
#include "view_source.h"

struct view_opts {
	const char *model, *source, *device, *project, *name, *save_frames, *save_video, *screenshot, *keys;
	uint32_t imgsz, max_det, cam_w, cam_h, cam_fps, cam_fourcc, line_width;
	uint64_t frames;
	float conf, iou;
	double slide_ms;
	bool headless, loop, list_formats, fullscreen, exist_ok;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: vkyolo view --model M [--source S] [options]\n"
	        "\n"
	        "Live detection in a window: webcam, video file or images, with boxes, labels and a panel\n"
	        "(FPS, inference ms, capture-to-display latency, device, model).\n"
	        "\n"
	        "input:\n"
	        "  --model M          official .pt (gelan-*, yolov9-*) or our .safetensors\n"
	        "  --source S         webcam index or /dev/videoN (default 0), a video file (mp4, mkv, avi, ...),\n"
	        "                     or an image, directory, glob or .txt list shown as a slideshow\n"
	        "  --imgsz N          inference size (default 640; multiple of 32)\n"
	        "  --device D         Vulkan device index or name substring, or 'cpu' (slow reference executor)\n"
	        "  --conf X           confidence threshold (default 0.25; +/- in the window)\n"
	        "  --iou X            NMS IoU threshold (default 0.45)\n"
	        "  --max-det N        maximum detections per frame (default 1000)\n"
	        "\n"
	        "camera:\n"
	        "  --cam-size WxH     capture size (default 640x480, closest available)\n"
	        "  --cam-fps N        capture rate (default 30)\n"
	        "  --cam-format F     MJPG or YUYV (default: whichever fits best)\n"
	        "  --list-formats     print the camera's formats, sizes and rates, then exit\n"
	        "\n"
	        "playback:\n"
	        "  --loop             start the video or slideshow again at its end\n"
	        "  --slide-ms MS      slideshow period (default 1000)\n"
	        "  --fullscreen       start fullscreen\n"
	        "  --line-width N     box line width (default: scaled to the frame)\n"
	        "\n"
	        "output:\n"
	        "  --headless         no window: run the same pipeline, every frame of a file is processed\n"
	        "  --frames N         stop after N displayed frames\n"
	        "  --save-frames DIR  write the rendered frames (frame_NNNNNN.png, NNNNNN = source frame index)\n"
	        "  --save-video FILE  encode the rendered frames (ffmpeg; .mp4, .mkv, .avi)\n"
	        "  --screenshot FILE  write a PNG of the window at exit\n"
	        "  --keys KEYS        press these keys once the first frame is shown (e.g. 'h+s'; E = Esc)\n"
	        "  --project DIR, --name NAME, --exist-ok   run folder for 's' screenshots (runs/view/exp)\n"
	        "\n"
	        "keys: q/Esc quit, space pause, s screenshot, +/- confidence, f fullscreen, h help\n"
	        "\n"
	        "exit status: 0 success, 1 runtime failure, 2 usage error\n");
}

static int parse_size(const char *s, uint32_t *w, uint32_t *h)
{
	unsigned a, b;
	char c;
	if (sscanf(s, "%ux%u%c", &a, &b, &c) != 2 || !a || !b)
		return -1;
	*w = a, *h = b;
	return 0;
}

static int parse_args(int argc, char **argv, struct view_opts *o)
{
	*o = (struct view_opts){ .source = "0", .imgsz = 640, .conf = 0.25f, .iou = 0.45f, .max_det = 1000,
	                         .project = "runs/view", .name = "exp" };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v;
		double d = 0;
		uint32_t u = 0;
		int bad = 0;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 1;
		}
#define OPT(n) (v = app_opt_value(argc, argv, &i, n))
		if (OPT("--model")) o->model = v;
		else if (OPT("--source")) o->source = v;
		else if (OPT("--device")) o->device = v;
		else if (OPT("--project")) o->project = v;
		else if (OPT("--name")) o->name = v;
		else if (OPT("--save-frames")) o->save_frames = v;
		else if (OPT("--save-video")) o->save_video = v;
		else if (OPT("--screenshot")) o->screenshot = v;
		else if (OPT("--imgsz")) bad = app_parse_u32(v, &o->imgsz) || !o->imgsz || o->imgsz % 32;
		else if (OPT("--max-det")) bad = app_parse_u32(v, &o->max_det) || !o->max_det;
		else if (OPT("--conf")) bad = app_parse_double(v, &d) || d < 0 || d >= 1, o->conf = (float)d;
		else if (OPT("--iou")) bad = app_parse_double(v, &d) || d <= 0 || d > 1, o->iou = (float)d;
		else if (OPT("--cam-size")) bad = parse_size(v, &o->cam_w, &o->cam_h);
		else if (OPT("--cam-fps")) bad = app_parse_u32(v, &o->cam_fps) || !o->cam_fps;
		else if (OPT("--cam-format")) bad = view_fourcc_parse(v, &o->cam_fourcc) != 0;
		else if (OPT("--frames")) bad = app_parse_u32(v, &u) || !u, o->frames = u;
		else if (OPT("--slide-ms")) bad = app_parse_double(v, &o->slide_ms) || o->slide_ms <= 0;
		else if (OPT("--line-width")) bad = app_parse_u32(v, &o->line_width);
		else if (OPT("--keys")) o->keys = v;
#undef OPT
		else if (!strcmp(a, "--headless")) o->headless = true;
		else if (!strcmp(a, "--loop")) o->loop = true;
		else if (!strcmp(a, "--list-formats")) o->list_formats = true;
		else if (!strcmp(a, "--fullscreen")) o->fullscreen = true;
		else if (!strcmp(a, "--exist-ok")) o->exist_ok = true;
		else {
			fprintf(stderr, "vkyolo view: unknown or incomplete option '%s'\n", a);
			return -1;
		}
		if (bad) {
			fprintf(stderr, "vkyolo view: bad value for %s\n", a);
			return -1;
		}
	}
	if (!o->model && !o->list_formats) {
		fprintf(stderr, "vkyolo view: --model is required\n");
		return -1;
	}
	return 0;
}

struct view_ctx {
	struct view_opts o;
	struct nn_checkpoint *ck;
	struct nn_model *model;
};

static void release_model(void *arg)
{
	struct view_ctx *c = arg;
	nn_model_destroy(&c->model);
	nn_checkpoint_destroy(&c->ck);
}

// Runs in the viewer's inference thread: the model and the device are created, used and freed there.
static int make_detector(void *arg, struct view_detector **out)
{
	struct view_ctx *c = arg;
	int ret = app_model_load(c->o.model, true, &c->ck, &c->model);
	if (ret)
		return ret;
	bool cpu = c->o.device && !strcmp(c->o.device, "cpu");
	struct view_detector_params p = { .backend = cpu ? VIEW_BACKEND_CPU : VIEW_BACKEND_GPU,
	                                  .device = cpu ? NULL : c->o.device, .imgsz = c->o.imgsz,
	                                  .iou = c->o.iou, .max_det = c->o.max_det, .release = release_model,
	                                  .release_arg = c };
	if ((ret = view_detector_create(c->model, &p, out)))
		release_model(c);
	return ret;
}

// The slideshow's paths (borrowed from the expanded list, which outlives the source).
struct view_list {
	struct nn_source_list *list;
	const char **paths;
};

static int open_source(const struct view_opts *o, struct view_list *vl, struct view_source **src)
{
	struct view_source_params sp = { .cam_w = o->cam_w, .cam_h = o->cam_h, .cam_fps = o->cam_fps,
	                                 .cam_fourcc = o->cam_fourcc, .loop = o->loop, .realtime = !o->headless,
	                                 .slide_ms = o->slide_ms };
	switch (view_source_classify(o->source)) {
	case VIEW_SOURCE_CAMERA:
		return view_source_open_camera(o->source, &sp, src);
	case VIEW_SOURCE_VIDEO:
		return view_source_open_video(o->source, &sp, src);
	case VIEW_SOURCE_IMAGES:
		break;
	}
	int ret = nn_source_expand(o->source, &vl->list);
	if (ret)
		return ret;
	// A folder or list holding only videos plays its first video.
	if (!vl->list->n_images)
		return view_source_open_video(vl->list->items[0].path, &sp, src);
	if (!(vl->paths = calloc(vl->list->n_images, sizeof(*vl->paths))))
		return -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < vl->list->count; i++)
		if (vl->list->items[i].kind == NN_SOURCE_IMAGE)
			vl->paths[n++] = vl->list->items[i].path;
	return view_source_open_images(vl->paths, n, &sp, src);
}

int cmd_view(int argc, char **argv)
{
	struct view_ctx c = { 0 };
	struct view_list list = { 0 };
	struct view_source *src = NULL;
	struct view_stats st = { 0 };
	char *run_dir = NULL, path[4096];
	int ret = parse_args(argc, argv, &c.o);
	if (ret) {
		if (ret < 0)
			usage(stderr);
		return ret < 0 ? APP_EXIT_USAGE : APP_EXIT_OK;
	}
	if (c.o.list_formats)
		return view_v4l2_print_formats(c.o.source, stdout) ? APP_EXIT_FAILURE : APP_EXIT_OK;
	snprintf(path, sizeof(path), "%s/%s", c.o.project, c.o.name);
	if ((ret = nn_increment_path(path, c.o.exist_ok, false, &run_dir)))
		goto done;
	if ((ret = open_source(&c.o, &list, &src)))
		goto done;
	const char *base = strrchr(c.o.model, '/');
	struct view_params vp = { .src = src, .make_detector = make_detector, .detector_arg = &c, .conf = c.o.conf,
	                          .headless = c.o.headless, .max_frames = c.o.frames, .save_frames = c.o.save_frames,
	                          .save_video = c.o.save_video, .run_dir = run_dir, .screenshot = c.o.screenshot,
	                          .model_name = base ? base + 1 : c.o.model, .fullscreen = c.o.fullscreen,
	                          .line_width = c.o.line_width, .keys = c.o.keys };
	ret = view_run(&vp, &st);
	if (st.displayed)
		printf("view: %llu frames on %s: %.1f FPS, inference %.1f ms, latency %.1f ms (p50 %.1f, max %.1f), "
		       "%llu captured, %llu dropped%s",
		       (unsigned long long)st.displayed, st.device, st.fps, st.infer_ms, st.latency_ms, st.latency_p50_ms,
		       st.latency_max_ms, (unsigned long long)st.captured, (unsigned long long)st.dropped,
		       c.o.headless ? "\n" : "");
	if (st.displayed && !c.o.headless)
		printf(", event loop never paused more than %.0f ms\n", st.ui_gap_max_ms);
done:
	view_source_close(&src);
	nn_source_list_destroy(&list.list);
	free(list.paths);
	nn_model_destroy(&c.model);
	nn_checkpoint_destroy(&c.ck);
	free(run_dir);
	return ret ? APP_EXIT_FAILURE : APP_EXIT_OK;
}
#endif
