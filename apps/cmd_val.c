// `vkyolo val`: the official YOLOv9 evaluation (P, R, mAP50, mAP50-95) of a dataset split, either
// of saved predictions (--predictions) or of a model run on the GPU (--model, apps/val_model.c).
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "dataset.h"
#include "detect_out.h"
#include "log.h"
#include "metrics.h"
#include "val_model.h"
#include "val_plot.h"
#include "value.h"

int cmd_val(int argc, char **argv); // to be declared in app.h when wired into vkyolo.c

static void usage(FILE *f)
{
	fputs("Usage: vkyolo val --data FILE.yaml --model FILE [OPTION]...\n"
	      "       vkyolo val --data FILE.yaml --predictions DIR [OPTION]...\n"
	      "Score detections against a dataset split with the official YOLOv9 metrics:\n"
	      "precision and recall at the best mean-F1 confidence, mAP@0.5 and mAP@0.5:0.95\n"
	      "(101-point interpolation, IoU thresholds 0.50:0.05:0.95).\n"
	      "\n"
	      "  -d, --data FILE        dataset description (YOLO data.yaml)\n"
	      "  -p, --predictions DIR  one file per image, DIR/<image stem>.txt, lines\n"
	      "                         `class cx cy w h conf` normalised to the image size\n"
	      "                         (detect --save-txt --save-conf); a missing file means\n"
	      "                         no detections for that image\n"
	      "  -m, --model FILE       run a model (official .pt or our .safetensors) on the\n"
	      "                         split on the GPU, as the official val.py: images sorted\n"
	      "                         by aspect ratio, rectangular batches (pad 0.5), NMS\n"
	      "                         multi-label\n"
	      "      --imgsz N          (--model) inference size, rounded up to 32 (default 640)\n"
	      "      --batch N          (--model) images per batch (default 32)\n"
	      "      --conf X           (--model) NMS confidence threshold (default 0.001)\n"
	      "      --iou X            (--model) NMS IoU threshold (default 0.7)\n"
	      "      --max-det N        (--model) detections kept per image (default 300)\n"
	      "      --device D         (--model) Vulkan device index or name substring\n"
	      "      --workers N        (--model) image-loading threads, overlapping the GPU\n"
	      "                         (default: CPU count, at most 8; 0 = load between\n"
	      "                         forwards on the main thread)\n"
	      "      --save-json        (--model) write COCO results to\n"
	      "                         runs/val/exp*/<model stem>_predictions.json\n"
	      "      --dump-batches DIR (--model) write each batch's network input and output\n"
	      "                         to DIR/batch_<n>.safetensors (for checking)\n"
	      "  -t, --task SPLIT       split to score: val (default), train or test\n"
	      "  -j, --json-out FILE    also write the results as JSON to FILE\n"
	      "      --plots DIR        also write the official plots into DIR (created):\n"
	      "                         PR_curve.png, F1_curve.png, P_curve.png, R_curve.png,\n"
	      "                         confusion_matrix.png (conf 0.25, IoU 0.45)\n"
	      "  -v, --verbose          print one row per class (always when nc < 50)\n"
	      "  -h, --help             show this help and exit\n"
	      "\n"
	      "Exit status: 0 success, 1 runtime failure, 2 usage error.\n",
	      f);
}

// Prints "vkyolo val: <message>" (when fmt is given) and the --help hint; returns the usage code.
__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		fputs("vkyolo val: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		va_end(ap);
	}
	fputs("Try 'vkyolo val --help' for more information.\n", stderr);
	return APP_EXIT_USAGE;
}

static int set_num(struct nn_value *d, const char *k, double v)
{
	return nn_value_dict_set(d, nn_value_str(k), nn_value_float(v));
}

static int write_json(const char *path, const struct nn_dataset *ds,
		      const struct nn_metrics_result *r, const struct val_model_stats *st)
{
	struct nn_value *root = nn_value_dict(), *pc = nn_value_dict();
	char *text = NULL;
	FILE *f = NULL;
	int rc = -ENOMEM;
	if (!root || !pc)
		goto fail;
	if (set_num(root, "P", r->p) || set_num(root, "R", r->r) || set_num(root, "mAP50", r->map50) ||
	    set_num(root, "mAP50-95", r->map50_95) ||
	    nn_value_dict_set(root, nn_value_str("images"), nn_value_int((int64_t)r->images)) ||
	    nn_value_dict_set(root, nn_value_str("instances"), nn_value_int((int64_t)r->instances)))
		goto fail;
	if (st && (nn_value_dict_set(root, nn_value_str("predictions"),
				     nn_value_int((int64_t)st->predictions)) ||
		   set_num(root, "speed_pre_ms", st->ms_pre) || set_num(root, "speed_inf_ms", st->ms_inf) ||
		   set_num(root, "speed_nms_ms", st->ms_nms)))
		goto fail;
	for (size_t i = 0; i < r->nclasses; i++) {
		const struct nn_class_metrics *c = &r->classes[i];
		struct nn_value *e = nn_value_dict();
		if (!e || set_num(e, "P", c->p) || set_num(e, "R", c->r) ||
		    set_num(e, "AP50", c->ap50) || set_num(e, "AP50-95", c->ap50_95) ||
		    nn_value_dict_set(e, nn_value_str("instances"), nn_value_int((int64_t)c->n_labels))) {
			nn_value_destroy(&e);
			goto fail;
		}
		if (nn_value_dict_set(pc, nn_value_str(ds->names[c->cls]), e)) // takes e
			goto fail;
	}
	rc = nn_value_dict_set(root, nn_value_str("per_class"), pc); // takes pc
	pc = NULL;
	if (rc) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = -ENOMEM;
	if (!(text = nn_value_to_json(root)))
		goto fail;
	f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fputc('\n', f) < 0) {
		LOGE("val: write %s: %s", path, strerror(errno));
		rc = -EIO;
		goto fail;
	}
	rc = fclose(f) ? -EIO : 0;
	f = NULL;
	if (rc)
		LOGE("val: write %s: %s", path, strerror(errno));
fail:
	if (rc == -ENOMEM)
		LOGE("val: json for %s: out of memory", path);
	if (f)
		fclose(f);
	free(text);
	nn_value_destroy(&pc);
	nn_value_destroy(&root);
	return rc;
}

static void print_table(const struct nn_dataset *ds, const struct nn_metrics_result *r, bool verbose)
{
	// Layout of the official val.py: '%22s' + '%11s' * 6, rows '%22s' + '%11i' * 2 + '%11.3g' * 4.
	printf("%22s%11s%11s%11s%11s%11s%11s\n", "Class", "Images", "Instances", "P", "R", "mAP50",
	       "mAP50-95");
	printf("%22s%11zu%11zu%11.3g%11.3g%11.3g%11.3g\n", "all", r->images, r->instances, r->p, r->r,
	       r->map50, r->map50_95);
	if (!(verbose || ds->nc < 50) || ds->nc <= 1) // val.py: verbose or (nc < 50, not training)
		return;
	for (size_t i = 0; i < r->nclasses; i++) {
		const struct nn_class_metrics *c = &r->classes[i];
		printf("%22s%11zu%11zu%11.3g%11.3g%11.3g%11.3g\n", ds->names[c->cls], r->images,
		       c->n_labels, c->p, c->r, c->ap50, c->ap50_95);
	}
}

static int parse_u32(const char *s, uint32_t lo, uint32_t *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || v < lo || v > 1u << 20)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int parse_unit(const char *s, float *out)
{
	char *end;
	*out = strtof(s, &end);
	return !*s || *end || !(*out >= 0 && *out <= 1) ? -1 : 0;
}

// The COCO 80 -> 91 category map applies when `val` is one path ending in coco/val2017.txt (as
// val.py's is_coco).
static bool is_coco_val(const struct nn_dataset *ds)
{
	const char *tail = "coco/val2017.txt";
	if (ds->nsources[NN_SPLIT_VAL] != 1)
		return false;
	const char *src = ds->sources[NN_SPLIT_VAL][0];
	size_t n = strlen(src), k = strlen(tail);
	return n >= k && !strcmp(src + n - k, tail);
}

// runs/val/exp, exp2, ... / <model stem>_predictions.json (caller frees). 0 or -errno.
static int json_pred_path(const char *model, char **out)
{
	char *dir = NULL, stem[512];
	const char *b = strrchr(model, '/');
	snprintf(stem, sizeof(stem), "%s", b ? b + 1 : model);
	char *dot = strrchr(stem, '.');
	if (dot && dot != stem)
		*dot = '\0';
	int rc = nn_increment_path("runs/val/exp", false, true, &dir);
	if (rc)
		return rc;
	size_t n = strlen(dir) + strlen(stem) + 32;
	if (!(*out = malloc(n)))
		rc = -ENOMEM;
	else
		snprintf(*out, n, "%s/%s_predictions.json", dir, stem);
	free(dir);
	return rc;
}

enum {
	OPT_IMGSZ = 256,
	OPT_BATCH,
	OPT_CONF,
	OPT_IOU,
	OPT_MAXDET,
	OPT_DEVICE,
	OPT_WORKERS,
	OPT_SAVEJSON,
	OPT_DUMP,
	OPT_PLOTS, // the only long option that --predictions takes too
};

int cmd_val(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},	   {"predictions", required_argument, NULL, 'p'},
		{"model", required_argument, NULL, 'm'},   {"task", required_argument, NULL, 't'},
		{"json-out", required_argument, NULL, 'j'}, {"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},	   {"imgsz", required_argument, NULL, OPT_IMGSZ},
		{"img", required_argument, NULL, OPT_IMGSZ}, {"batch", required_argument, NULL, OPT_BATCH},
		{"batch-size", required_argument, NULL, OPT_BATCH},
		{"conf", required_argument, NULL, OPT_CONF}, {"conf-thres", required_argument, NULL, OPT_CONF},
		{"iou", required_argument, NULL, OPT_IOU},   {"iou-thres", required_argument, NULL, OPT_IOU},
		{"max-det", required_argument, NULL, OPT_MAXDET},
		{"device", required_argument, NULL, OPT_DEVICE},
		{"workers", required_argument, NULL, OPT_WORKERS},
		{"save-json", no_argument, NULL, OPT_SAVEJSON},
		{"dump-batches", required_argument, NULL, OPT_DUMP},
		{"plots", required_argument, NULL, OPT_PLOTS}, {NULL, 0, NULL, 0},
	};
	const char *data = NULL, *preds = NULL, *json = NULL, *task = "val", *plots = NULL;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct val_model_opts mo = {.imgsz = 640, .batch = 32, .max_det = 300, .conf = 0.001f,
				    .iou = 0.7f, .workers = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (uint32_t)ncpu};
	bool verbose = false, save_json = false, model_only = false;
	optind = 0; // full getopt re-initialisation: the caller may have parsed its own options
	for (int c; (c = getopt_long(argc, argv, "d:p:m:t:j:vh", opts, NULL)) != -1;) {
		int bad = 0;
		model_only |= c >= 256 && c != OPT_PLOTS;
		switch (c) {
		case 'd': data = optarg; break;
		case 'p': preds = optarg; break;
		case 'm': mo.model = optarg; break;
		case 't': task = optarg; break;
		case 'j': json = optarg; break;
		case 'v': verbose = true; break;
		case 'h': usage(stdout); return APP_EXIT_OK;
		case OPT_IMGSZ: bad = parse_u32(optarg, 32, &mo.imgsz); break;
		case OPT_BATCH: bad = parse_u32(optarg, 1, &mo.batch) || mo.batch > 1024; break;
		case OPT_CONF: bad = parse_unit(optarg, &mo.conf); break;
		case OPT_IOU: bad = parse_unit(optarg, &mo.iou); break;
		case OPT_MAXDET: bad = parse_u32(optarg, 1, &mo.max_det); break;
		case OPT_DEVICE: mo.device = optarg; break;
		case OPT_WORKERS: bad = parse_u32(optarg, 0, &mo.workers) || mo.workers > 64; break;
		case OPT_SAVEJSON: save_json = true; break;
		case OPT_DUMP: mo.dump_dir = optarg; break;
		case OPT_PLOTS: plots = optarg; break;
		default: return usage_error(NULL);
		}
		if (bad)
			return usage_error("bad value '%s' for %s", optarg, argv[optind - 1]);
	}
	enum nn_split split = NN_SPLIT_VAL;
	if (!strcmp(task, "train"))
		split = NN_SPLIT_TRAIN;
	else if (!strcmp(task, "test"))
		split = NN_SPLIT_TEST;
	else if (strcmp(task, "val"))
		return usage_error("--task must be val, train or test, not '%s'", task);
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!data)
		return usage_error("--data FILE.yaml is required");
	if (!mo.model == !preds)
		return usage_error("give exactly one of --model FILE and --predictions DIR");
	if (preds && (model_only || save_json))
		return usage_error("--imgsz, --batch, --conf, --iou, --max-det, --device, --workers, "
				   "--save-json and --dump-batches need --model");
	if (mo.imgsz % 32) { // check_img_size: round up to the stride
		uint32_t up = (mo.imgsz + 31) / 32 * 32;
		LOGW("val: --imgsz %u must be a multiple of 32, updating to %u", mo.imgsz, up);
		mo.imgsz = up;
	}

	struct nn_dataset *ds = NULL;
	struct nn_dataset_split *sp = NULL;
	struct nn_metrics_result res = {0};
	struct val_model_stats st = {0};
	struct nn_confusion *cm = NULL;
	char *json_pred = NULL;
	int rc = nn_dataset_open(data, &ds);
	if (!rc)
		rc = nn_dataset_split_load(ds, split, &sp);
	if (!rc && plots && !(rc = nn_mkdir_p(plots)))
		rc = nn_confusion_create(ds->nc, NN_CONFUSION_CONF, NN_CONFUSION_IOU, &cm);
	mo.confusion = cm;
	if (!rc) {
		LOGI("val: %s %s: %zu images, %zu labels, %zu backgrounds, %zu corrupt", data, task,
		     sp->count, sp->nboxes, sp->missing + sp->empty, sp->corrupt);
		if (preds) {
			rc = nn_metrics_score_dir(sp, preds, &res, cm);
		} else {
			mo.coco91 = ds->nc == 80 && is_coco_val(ds);
			if (save_json && !(rc = json_pred_path(mo.model, &json_pred)))
				mo.save_json = json_pred;
			if (!rc)
				rc = val_model_run(&mo, ds, sp, &res, &st);
		}
	}
	if (!rc) {
		print_table(ds, &res, verbose);
		if (res.instances == 0)
			LOGW("val: no labels found in the %s split, can not compute metrics", task);
		if (mo.model) {
			printf("Speed: %.1fms pre-process, %.1fms inference, %.1fms NMS per image at "
			       "shape (%u, 3, %u, %u)\n",
			       st.ms_pre, st.ms_inf, st.ms_nms, st.last_n, st.last_h, st.last_w);
			LOGI("val: %zu predictions, %u batch shapes, %.1f s total, %.1f s waiting for "
			     "images", st.predictions, st.shapes_created, st.ms_wall / 1e3,
			     st.ms_wait / 1e3);
			if (json_pred)
				printf("Saving %s...\n", json_pred);
		}
		if (json)
			rc = write_json(json, ds, &res, mo.model ? &st : NULL);
		if (!rc && plots && !(rc = val_plot_write(plots, &res, cm, (const char *const *)ds->names, ds->nc)))
			printf("Plots saved to %s\n", plots);
	}
	nn_confusion_destroy(&cm);
	free(json_pred);
	nn_metrics_result_finish(&res);
	nn_dataset_split_destroy(&sp);
	nn_dataset_destroy(&ds);
	return rc ? APP_EXIT_FAILURE : APP_EXIT_OK;
}
