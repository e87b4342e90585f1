// `vkyolo detect`: images in, detections out, the way the official detect.py and ultralytics do it.
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "checkpoint.h"
#include "detect_out.h"
#include "draw.h"
#include "image.h"
#include "letterbox.h"
#include "model.h"
#include "nms.h"
#include "runner.h"
#include "safetensors.h"
#include "source.h"

#define MAX_CLASS_FILTER 256

struct detect_opts {
	const char *model, *source, *device, *project, *name, *input_tensor, *raw_out;
	uint32_t img_h, img_w, batch, max_det;
	float conf, iou;
	int32_t classes[MAX_CLASS_FILTER];
	uint32_t n_classes;
	bool agnostic, exist_ok, save_txt, save_conf, save_json, nosave, hide_labels, hide_conf;
	uint32_t line_width;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: vkyolo detect --model M --source S [options]\n"
	        "       vkyolo detect --model M --input-tensor T.safetensors [--raw-out O.safetensors] [options]\n"
	        "\n"
	        "Detect objects in images with a YOLOv9 / GELAN model on the GPU.\n"
	        "\n"
	        "input:\n"
	        "  --model M          official .pt (gelan-*, yolov9-*, converted or not) or our .safetensors\n"
	        "  --source S         image file, directory, glob ('dir/*.jpg') or .txt list of images\n"
	        "  --input-tensor T   a safetensors file holding input_u8 [N,3,H,W] (uint8, RGB) to feed as is\n"
	        "  --imgsz N | H,W    inference size (default 640; multiples of 32)\n"
	        "  --batch B          images per forward pass (default 1; >1 letterboxes to a square)\n"
	        "  --device D         Vulkan device index or name substring (default: best present)\n"
	        "\n"
	        "detection:\n"
	        "  --conf X           confidence threshold (default 0.25)\n"
	        "  --iou X            NMS IoU threshold (default 0.45)\n"
	        "  --max-det N        maximum detections per image (default 1000)\n"
	        "  --classes A,B,...  keep only these class indices\n"
	        "  --agnostic         class-agnostic NMS\n"
	        "\n"
	        "output (in PROJECT/NAME, default runs/detect/exp, exp2, ...):\n"
	        "  --project DIR      (default runs/detect)\n"
	        "  --name NAME        (default exp)\n"
	        "  --exist-ok         reuse PROJECT/NAME instead of incrementing\n"
	        "  --save-txt         YOLO labels: labels/<stem>.txt, 'class cx cy w h' normalised\n"
	        "  --save-conf        add the confidence to --save-txt lines\n"
	        "  --save-json        COCO results JSON (predictions.json)\n"
	        "  --nosave           do not save annotated images\n"
	        "  --line-width N     box line width (default: scaled to the image)\n"
	        "  --hide-labels, --hide-conf\n"
	        "  --raw-out O        write the raw network output (output [N,4+nc,A], output_aux) as safetensors\n"
	        "\n"
	        "exit status: 0 success, 1 runtime failure, 2 usage error\n");
}

// A float option through the shared parser.
static int parse_float(const char *s, float *out)
{
	double v;
	if (app_parse_double(s, &v))
		return -1;
	*out = (float)v;
	return 0;
}

static int parse_imgsz(const char *s, uint32_t *h, uint32_t *w)
{
	const char *comma = strchr(s, ',');
	if (!comma)
		return app_parse_u32(s, h) || (*w = *h, 0);
	char a[32];
	snprintf(a, sizeof(a), "%.*s", (int)(comma - s), s);
	return app_parse_u32(a, h) || app_parse_u32(comma + 1, w) ? -1 : 0;
}

static int parse_classes(const char *s, struct detect_opts *o)
{
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
		uint32_t c;
		if (app_parse_u32(tok, &c) || o->n_classes == MAX_CLASS_FILTER)
			return -1;
		o->classes[o->n_classes++] = (int32_t)c;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct detect_opts *o)
{
	*o = (struct detect_opts){ .img_h = 640, .img_w = 640, .batch = 1, .max_det = 1000, .conf = 0.25f,
	                           .iou = 0.45f, .project = "runs/detect", .name = "exp" };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v;
		int bad = 0;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 1;
		}
#define OPT(n) (v = app_opt_value(argc, argv, &i, n))
		if (OPT("--model")) o->model = v;
		else if (OPT("--source")) o->source = v;
		else if (OPT("--input-tensor")) o->input_tensor = v;
		else if (OPT("--raw-out")) o->raw_out = v;
		else if (OPT("--device")) o->device = v;
		else if (OPT("--project")) o->project = v;
		else if (OPT("--name")) o->name = v;
		else if (OPT("--imgsz")) bad = parse_imgsz(v, &o->img_h, &o->img_w);
		else if (OPT("--batch")) bad = app_parse_u32(v, &o->batch) || o->batch == 0;
		else if (OPT("--max-det")) bad = app_parse_u32(v, &o->max_det) || o->max_det == 0;
		else if (OPT("--conf")) bad = parse_float(v, &o->conf);
		else if (OPT("--iou")) bad = parse_float(v, &o->iou);
		else if (OPT("--classes")) bad = parse_classes(v, o);
		else if (OPT("--line-width")) bad = app_parse_u32(v, &o->line_width);
#undef OPT
		else if (!strcmp(a, "--agnostic")) o->agnostic = true;
		else if (!strcmp(a, "--exist-ok")) o->exist_ok = true;
		else if (!strcmp(a, "--save-txt")) o->save_txt = true;
		else if (!strcmp(a, "--save-conf")) o->save_conf = true;
		else if (!strcmp(a, "--save-json")) o->save_json = true;
		else if (!strcmp(a, "--nosave")) o->nosave = true;
		else if (!strcmp(a, "--hide-labels")) o->hide_labels = true;
		else if (!strcmp(a, "--hide-conf")) o->hide_conf = true;
		else {
			fprintf(stderr, "vkyolo detect: unknown or incomplete option '%s'\n", a);
			return -1;
		}
		if (bad) {
			fprintf(stderr, "vkyolo detect: bad value for %s\n", a);
			return -1;
		}
	}
	if (!o->model || (!o->source && !o->input_tensor)) {
		fprintf(stderr, "vkyolo detect: --model and --source (or --input-tensor) are required\n");
		return -1;
	}
	if (o->img_h % 32 || o->img_w % 32 || !o->img_h || !o->img_w) {
		fprintf(stderr, "vkyolo detect: --imgsz must be a multiple of 32 (got %ux%u)\n", o->img_h, o->img_w);
		return -1;
	}
	return 0;
}

// Runners are per input shape (rectangular letterbox gives a few shapes); a small cache keeps
// the recent ones so a folder of mixed aspect ratios does not re-record every image.
#define RUNNER_CACHE 3

struct detect_ctx {
	struct detect_opts o;
	struct gpu_instance *inst;
	struct gpu_device *dev;
	struct nn_checkpoint *ck;
	struct nn_model *model;
	struct nn_runner *runners[RUNNER_CACHE];
	struct nn_runner_params runner_params[RUNNER_CACHE];
	uint32_t runner_next;
	struct nn_font *font;
	struct nn_coco_json *json;
	char *save_dir;
	const char **names;
	double t_pre, t_inf, t_nms;
	uint32_t n_images, n_dets;
	uint32_t last_shape[4];
};

static int get_runner(struct detect_ctx *c, uint32_t n, uint32_t h, uint32_t w, struct nn_runner **out)
{
	for (int i = 0; i < RUNNER_CACHE; i++) {
		const struct nn_runner_params *p = &c->runner_params[i];
		if (c->runners[i] && p->n == n && p->h == h && p->w == w) {
			*out = c->runners[i];
			return 0;
		}
	}
	uint32_t slot = c->runner_next++ % RUNNER_CACHE;
	nn_runner_destroy(&c->runners[slot]);
	c->runner_params[slot] = (struct nn_runner_params){ .n = n, .h = h, .w = w };
	int ret = nn_runner_create(c->dev, c->model, &c->runner_params[slot], &c->runners[slot]);
	*out = c->runners[slot];
	return ret;
}

static void describe(const struct detect_ctx *c, const struct nn_det *d, uint32_t n, char *buf, size_t cap)
{
	size_t len = 0;
	buf[0] = '\0';
	for (uint32_t cls = 0; cls < c->model->nc; cls++) {
		uint32_t count = 0;
		for (uint32_t i = 0; i < n; i++)
			count += d[i].cls == (int32_t)cls;
		if (count && len < cap)
			len += snprintf(buf + len, cap - len, "%u %s%s, ", count, c->names[cls], count > 1 ? "s" : "");
	}
	if (!n)
		snprintf(buf, cap, "(no detections), ");
}

// NMS, scaling, drawing and saving for one image. img is NULL for --input-tensor input, whose
// boxes stay in tensor pixels. pred: [4 + nc, A].
static int finish_image(struct detect_ctx *c, const char *path, const char *stem, struct nn_image *img,
                        uint32_t in_w, uint32_t in_h, const float *pred, uint32_t anchors, double ms_inf,
                        uint32_t index, uint32_t total)
{
	struct nn_det *d = NULL;
	uint32_t n = 0;
	int ret;
	double t0 = app_now_ms();
	struct nn_nms_params np = { .conf_thres = c->o.conf, .iou_thres = c->o.iou, .agnostic = c->o.agnostic,
	                            .classes = c->o.n_classes ? c->o.classes : NULL, .n_classes = c->o.n_classes,
	                            .max_det = c->o.max_det };
	if ((ret = nn_nms(pred, c->model->nc, anchors, &np, &d, &n)))
		return ret;
	uint32_t img_w = img ? img->w : in_w, img_h = img ? img->h : in_h;
	nn_scale_boxes(in_w, in_h, img_w, img_h, d, n); // for tensor input: a clip to the tensor
	c->t_nms += app_now_ms() - t0;
	if (c->json && (ret = nn_coco_json_add(c->json, path, d, n)))
		goto done;
	nn_round_boxes(d, n);
	char what[1024], file[4096];
	describe(c, d, n, what, sizeof(what));
	printf("image %u/%u %s: %ux%u %s%.1fms\n", index + 1, total, path, in_h, in_w, what, ms_inf); // H x W, as detect.py
	if (c->o.save_txt) {
		snprintf(file, sizeof(file), "%s/labels/%s.txt", c->save_dir, stem);
		if (n && (ret = nn_yolo_txt_append(file, d, n, img_w, img_h, c->o.save_conf)))
			goto done;
	}
	if (img && !c->o.nosave) {
		nn_draw_detections(img, d, n, &(struct nn_draw_params){ .line_width = c->o.line_width,
		                   .hide_labels = c->o.hide_labels, .hide_conf = c->o.hide_conf, .names = c->names,
		                   .n_names = c->model->nc, .font = c->font });
		const char *base = strrchr(path, '/');
		snprintf(file, sizeof(file), "%s/%s", c->save_dir, base ? base + 1 : path);
		if ((ret = nn_image_save(file, img, 95)))
			goto done;
	}
	c->n_images++;
	c->n_dets += n;
done:
	free(d);
	return ret;
}

static void path_stem(const char *path, char *stem, size_t cap)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	snprintf(stem, cap, "%s", base);
	char *dot = strrchr(stem, '.');
	if (dot && dot != stem)
		*dot = '\0';
}

static int write_raw(struct detect_ctx *c, struct nn_runner *r, uint32_t n, uint32_t anchors)
{
	struct nn_tensor_map *map = NULL;
	size_t count = (size_t)n * (4 + c->model->nc) * anchors;
	float *buf = malloc(count * sizeof(float));
	int64_t shape[3] = { n, 4 + c->model->nc, anchors };
	int ret = buf ? nn_tensor_map_create(&map) : -ENOMEM;
	if (!ret)
		ret = nn_runner_read_output(r, false, buf);
	if (!ret)
		ret = nn_tensor_map_add(map, "output", NN_DTYPE_F32, 3, shape, buf);
	if (!ret && c->model->output_aux != NN_NO_TENSOR) {
		ret = nn_runner_read_output(r, true, buf);
		if (!ret)
			ret = nn_tensor_map_add(map, "output_aux", NN_DTYPE_F32, 3, shape, buf);
	}
	if (!ret)
		ret = nn_safetensors_write(c->o.raw_out, map);
	nn_tensor_map_destroy(&map);
	free(buf);
	return ret;
}

static int run_tensor(struct detect_ctx *c)
{
	struct nn_tensor_map *map = NULL;
	struct nn_runner *r = NULL;
	float *pred = NULL;
	char stem[1024], name[1100];
	int ret = nn_safetensors_read(c->o.input_tensor, &map);
	if (ret)
		return ret;
	const struct nn_tensor *t = nn_tensor_map_find(map, "input_u8");
	if (!t || t->dtype != NN_DTYPE_U8 || t->ndim != 4 || t->shape[1] != 3 || t->shape[2] % 32 || t->shape[3] % 32) {
		LOGE("input tensor %s: need input_u8 [N,3,H,W] uint8 with H and W multiples of 32", c->o.input_tensor);
		ret = -EINVAL;
		goto done;
	}
	uint32_t n = (uint32_t)t->shape[0], h = (uint32_t)t->shape[2], w = (uint32_t)t->shape[3];
	double t0 = app_now_ms();
	if ((ret = get_runner(c, n, h, w, &r)) || (ret = nn_runner_run(r, t->data)))
		goto done;
	double ms = app_now_ms() - t0;
	c->t_inf += ms;
	uint32_t anchors = nn_runner_anchors(r), rows = 4 + c->model->nc;
	if (!(pred = malloc((size_t)n * rows * anchors * sizeof(float)))) {
		ret = -ENOMEM;
		goto done;
	}
	if ((ret = nn_runner_read_output(r, false, pred)))
		goto done;
	if (c->o.raw_out && (ret = write_raw(c, r, n, anchors)))
		goto done;
	path_stem(c->o.input_tensor, stem, sizeof(stem));
	for (uint32_t b = 0; b < n && !ret; b++) {
		if (n == 1)
			snprintf(name, sizeof(name), "%s", stem);
		else
			snprintf(name, sizeof(name), "%s_%u", stem, b);
		ret = finish_image(c, name, name, NULL, w, h, pred + (size_t)b * rows * anchors, anchors, ms / n, b, n);
	}
	c->last_shape[0] = n, c->last_shape[1] = 3, c->last_shape[2] = h, c->last_shape[3] = w;
done:
	free(pred);
	nn_tensor_map_destroy(&map);
	return ret;
}

static int run_images(struct detect_ctx *c)
{
	struct nn_source_list *src = NULL;
	uint32_t B = c->o.batch;
	struct nn_image **imgs = calloc(B, sizeof(*imgs));
	uint8_t *input = NULL;
	float *pred = NULL;
	int ret = imgs ? nn_source_expand(c->o.source, &src) : -ENOMEM;
	if (ret) {
		free(imgs);
		return ret;
	}
	if (src->n_videos)
		LOGW("detect: %zu video files skipped (play videos with `vkyolo view`)", src->n_videos);
	struct nn_letterbox_params lp = { .new_w = c->o.img_w, .new_h = c->o.img_h, .auto_pad = B == 1,
	                                  .scaleup = true, .stride = 32, .color = 114 };
	for (size_t first = 0; first < src->n_images && !ret; first += B) {
		uint32_t nb = src->n_images - first < B ? (uint32_t)(src->n_images - first) : B;
		uint32_t h = 0, w = 0;
		double t0 = app_now_ms();
		for (uint32_t b = 0; b < nb && !ret; b++) {
			struct nn_letterbox lb;
			uint8_t *chw = NULL;
			if ((ret = nn_image_load(src->items[first + b].path, &imgs[b])) ||
			    (ret = nn_letterbox_image(imgs[b], &lp, &lb, &chw)))
				break;
			if (b == 0) {
				h = lb.out_h, w = lb.out_w;
				free(input);
				if (!(input = malloc((size_t)B * 3 * h * w))) {
					free(chw);
					ret = -ENOMEM;
					break;
				}
			}
			memcpy(input + (size_t)b * 3 * h * w, chw, (size_t)3 * h * w);
			free(chw);
		}
		// A short last batch repeats its last image so the recorded batch size stays fixed.
		for (uint32_t b = nb; b < B && !ret; b++)
			memcpy(input + (size_t)b * 3 * h * w, input + (size_t)(nb - 1) * 3 * h * w, (size_t)3 * h * w);
		c->t_pre += app_now_ms() - t0;
		struct nn_runner *r = NULL;
		if (!ret)
			ret = get_runner(c, B, h, w, &r);
		double t1 = app_now_ms();
		if (!ret)
			ret = nn_runner_run(r, input);
		uint32_t anchors = r ? nn_runner_anchors(r) : 0, rows = 4 + c->model->nc;
		if (!ret) {
			free(pred);
			if (!(pred = malloc((size_t)B * rows * anchors * sizeof(float))))
				ret = -ENOMEM;
		}
		if (!ret)
			ret = nn_runner_read_output(r, false, pred);
		double ms = app_now_ms() - t1;
		c->t_inf += ms;
		for (uint32_t b = 0; b < nb && !ret; b++) {
			char stem[1024];
			path_stem(src->items[first + b].path, stem, sizeof(stem));
			ret = finish_image(c, src->items[first + b].path, stem, imgs[b], w, h, pred + (size_t)b * rows * anchors,
			                   anchors, ms / nb, (uint32_t)(first + b), (uint32_t)src->n_images);
		}
		for (uint32_t b = 0; b < B; b++)
			nn_image_destroy(&imgs[b]);
		c->last_shape[0] = B, c->last_shape[1] = 3, c->last_shape[2] = h, c->last_shape[3] = w;
	}
	for (uint32_t b = 0; b < B; b++)
		nn_image_destroy(&imgs[b]);
	free(imgs);
	free(input);
	free(pred);
	nn_source_list_destroy(&src);
	return ret;
}

static void ctx_finish(struct detect_ctx *c)
{
	for (int i = 0; i < RUNNER_CACHE; i++)
		nn_runner_destroy(&c->runners[i]);
	nn_font_destroy(&c->font);
	nn_coco_json_destroy(&c->json);
	free(c->save_dir);
	free(c->names);
	nn_model_destroy(&c->model);
	nn_checkpoint_destroy(&c->ck);
	app_close_device(&c->inst, &c->dev);
}

int cmd_detect(int argc, char **argv)
{
	struct detect_ctx c = { 0 };
	char path[4096];
	int ret = parse_args(argc, argv, &c.o);
	if (ret) {
		if (ret < 0)
			usage(stderr);
		return ret < 0 ? APP_EXIT_USAGE : APP_EXIT_OK;
	}
	if ((ret = app_model_load(c.o.model, true, &c.ck, &c.model)))
		goto done;
	if (!(c.names = calloc(c.model->nc, sizeof(*c.names)))) {
		ret = -ENOMEM;
		goto done;
	}
	for (uint32_t i = 0; i < c.model->nc; i++)
		c.names[i] = c.model->names && c.model->names[i] ? c.model->names[i] : "object";
	if ((ret = app_open_device(c.o.device, &c.inst, &c.dev)))
		goto done;
	snprintf(path, sizeof(path), "%s/%s", c.o.project, c.o.name);
	if ((ret = nn_increment_path(path, c.o.exist_ok, true, &c.save_dir)))
		goto done;
	if (c.o.save_txt) {
		snprintf(path, sizeof(path), "%s/labels", c.save_dir);
		if ((ret = nn_mkdir_p(path)))
			goto done;
	}
	if (c.o.save_json && (ret = nn_coco_json_create(c.model->nc == 80, &c.json)))
		goto done;
	if (!c.o.nosave && !c.o.input_tensor && (ret = nn_font_load_default(&c.font)))
		goto done;
	ret = c.o.input_tensor ? run_tensor(&c) : run_images(&c);
	if (ret)
		goto done;
	if (c.json) {
		snprintf(path, sizeof(path), "%s/predictions.json", c.save_dir);
		if ((ret = nn_coco_json_write(c.json, path)))
			goto done;
	}
	if (c.n_images)
		printf("Speed: %.1fms pre-process, %.1fms inference, %.1fms NMS per image at shape (%u, %u, %u, %u)\n",
		       c.t_pre / c.n_images, c.t_inf / c.n_images, c.t_nms / c.n_images, c.last_shape[0],
		       c.last_shape[1], c.last_shape[2], c.last_shape[3]);
	printf("Results saved to %s (%u images, %u detections)\n", c.save_dir, c.n_images, c.n_dets);
done:
	if (ret && c.dev && gpu_device_status(c.dev))
		LOGE("detect: the GPU device was lost");
	ctx_finish(&c);
	return ret ? APP_EXIT_FAILURE : APP_EXIT_OK;
}
