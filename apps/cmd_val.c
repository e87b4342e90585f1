// `vkyolo val`: the official YOLOv9 evaluation (P, R, mAP50, mAP50-95) of saved predictions
// against a dataset split. Running a model for it (--model) is wired in later.
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "dataset.h"
#include "log.h"
#include "metrics.h"
#include "value.h"

int cmd_val(int argc, char **argv); // to be declared in app.h when wired into vkyolo.c

static void usage(FILE *f)
{
	fputs("Usage: vkyolo val --data FILE.yaml --predictions DIR [OPTION]...\n"
	      "       vkyolo val --data FILE.yaml --model FILE [OPTION]...   (not available yet)\n"
	      "Score detections against a dataset split with the official YOLOv9 metrics:\n"
	      "precision and recall at the best mean-F1 confidence, mAP@0.5 and mAP@0.5:0.95\n"
	      "(101-point interpolation, IoU thresholds 0.50:0.05:0.95).\n"
	      "\n"
	      "  -d, --data FILE        dataset description (YOLO data.yaml)\n"
	      "  -p, --predictions DIR  one file per image, DIR/<image stem>.txt, lines\n"
	      "                         `class cx cy w h conf` normalised to the image size\n"
	      "                         (detect --save-txt --save-conf); a missing file means\n"
	      "                         no detections for that image\n"
	      "  -m, --model FILE       run a model on the split (not available yet)\n"
	      "  -t, --task SPLIT       split to score: val (default), train or test\n"
	      "  -j, --json-out FILE    also write the results as JSON to FILE\n"
	      "  -v, --verbose          print one row per class\n"
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
		      const struct nn_metrics_result *r)
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
	if (!verbose || ds->nc <= 1)
		return;
	for (size_t i = 0; i < r->nclasses; i++) {
		const struct nn_class_metrics *c = &r->classes[i];
		printf("%22s%11zu%11zu%11.3g%11.3g%11.3g%11.3g\n", ds->names[c->cls], r->images,
		       c->n_labels, c->p, c->r, c->ap50, c->ap50_95);
	}
}

int cmd_val(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},	   {"predictions", required_argument, NULL, 'p'},
		{"model", required_argument, NULL, 'm'},   {"task", required_argument, NULL, 't'},
		{"json-out", required_argument, NULL, 'j'}, {"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},	   {NULL, 0, NULL, 0},
	};
	const char *data = NULL, *preds = NULL, *model = NULL, *json = NULL, *task = "val";
	bool verbose = false;
	optind = 0; // full getopt re-initialisation: the caller may have parsed its own options
	for (int c; (c = getopt_long(argc, argv, "d:p:m:t:j:vh", opts, NULL)) != -1;) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'p': preds = optarg; break;
		case 'm': model = optarg; break;
		case 't': task = optarg; break;
		case 'j': json = optarg; break;
		case 'v': verbose = true; break;
		case 'h': usage(stdout); return APP_EXIT_OK;
		default: return usage_error(NULL);
		}
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
	if (model)
		return usage_error("--model is not available yet; score saved predictions with "
				   "--predictions DIR");
	if (!preds)
		return usage_error("--predictions DIR is required");

	struct nn_dataset *ds = NULL;
	struct nn_dataset_split *sp = NULL;
	struct nn_metrics_result res = {0};
	int rc = nn_dataset_open(data, &ds);
	if (!rc)
		rc = nn_dataset_split_load(ds, split, &sp);
	if (!rc) {
		LOGI("val: %s %s: %zu images, %zu labels, %zu backgrounds, %zu corrupt", data, task,
		     sp->count, sp->nboxes, sp->missing + sp->empty, sp->corrupt);
		rc = nn_metrics_score_dir(sp, preds, &res);
	}
	if (!rc) {
		print_table(ds, &res, verbose);
		if (res.instances == 0)
			LOGW("val: no labels found in the %s split, can not compute metrics", task);
		if (json)
			rc = write_json(json, ds, &res);
	}
	nn_metrics_result_finish(&res);
	nn_dataset_split_destroy(&sp);
	nn_dataset_destroy(&ds);
	return rc ? APP_EXIT_FAILURE : APP_EXIT_OK;
}
