// `vkyolo train`: the official train.py loop (hyp.scratch-high.yaml recipe) around nn_trainer:
// SGD with nominal batch 64 (gradient accumulation, scaled weight decay), warmup, linear lr,
// EMA, per-epoch validation of the EMA weights, results.csv / results.png, last and best
// checkpoints, Ctrl-C and --resume.
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "detect_out.h"
#include "draw.h"
#include "log.h"
#include "metrics.h"
#include "optim_ref.h"
#include "train_run.h"
#include "val_plot.h"

#define HYP_DEFAULT "assets/hyp/hyp.scratch-high.yaml"

static volatile sig_atomic_t g_stop;

static void on_sigint(int sig)
{
	(void)sig;
	g_stop = 1; // SA_RESETHAND: a second Ctrl-C kills
}

static void usage(FILE *f)
{
	fputs("Usage: vkyolo train --model FILE --data FILE.yaml [OPTION]...\n"
	      "       vkyolo train --resume [FILE]\n"
	      "Train a YOLOv9 / GELAN model as the official train.py with hyp.scratch-high.yaml:\n"
	      "SGD (Nesterov, momentum 0.937) on a nominal batch of 64 (gradients accumulated over\n"
	      "round(64 / batch) batches, weight decay scaled), 3 warmup epochs, linear lr decay,\n"
	      "EMA of the weights, mosaic augmentation closed for the last --close-mosaic epochs.\n"
	      "Every epoch the EMA weights are validated (P, R, mAP50, mAP50-95) and saved.\n"
	      "The last batch of an epoch may be smaller (kept, as the official loader does).\n"
	      "\n"
	      "  -m, --model FILE       model description (assets/models/*.yaml: from scratch) or\n"
	      "                         checkpoint (.pt / .safetensors: fine-tune; tensors of the\n"
	      "                         same name and shape are transferred); nc from --data\n"
	      "  -d, --data FILE        dataset description (YOLO data.yaml)\n"
	      "      --epochs N         epochs (default 100)\n"
	      "      --batch N          images per batch (default 16)\n"
	      "      --imgsz N          training size, multiple of 32 (default 640)\n"
	      "      --device D         Vulkan device index or name substring; cpu-ref = the CPU\n"
	      "                         reference implementation (slow; for tests)\n"
	      "      --cpu              same as --device cpu-ref\n"
	      "      --workers N        data-loading threads (default: CPU count, at most 8)\n"
	      "      --hyp FILE         hyper-parameters (default " HYP_DEFAULT ")\n"
	      "      --seed N           data order and augmentation seed (default 0)\n"
	      "      --resume [FILE]    continue a run from its weights/last.safetensors (default:\n"
	      "                         the newest under --project); options come from the file,\n"
	      "                         except --data (the dataset moved), --device, --workers\n"
	      "      --project DIR      runs folder (default runs/train)\n"
	      "      --name NAME        run name (default exp; exp2, exp3, ... when taken)\n"
	      "      --patience N       stop after N epochs without improvement (default 100; 0 off)\n"
	      "      --save-period N    also save weights/epochN.safetensors every N epochs (0 off)\n"
	      "      --close-mosaic N   no mosaic in the last N epochs (default 15)\n"
	      "  -v, --verbose          per-class validation rows\n"
	      "  -h, --help             show this help and exit\n"
	      "\n"
	      "Outputs in DIR = PROJECT/NAME: args.yaml, results.csv (train and validation losses,\n"
	      "P, R, mAP, lrs), results.png, train_batch0..2.jpg, the validation plots of the\n"
	      "best epoch (PR_curve.png, F1/P/R_curve.png, confusion_matrix.png),\n"
	      "weights/last.safetensors and\n"
	      "weights/best.safetensors (fitness 0.1 mAP50 + 0.9 mAP50-95; EMA weights under the\n"
	      "official names, plus the training weights, momentum and run state for --resume).\n"
	      "Ctrl-C stops after the current batch, saves last and exits with status 1.\n"
	      "\n"
	      "Exit status: 0 success, 1 runtime failure or interrupted, 2 usage error.\n",
	      f);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("vkyolo train: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs("\nTry 'vkyolo train --help' for more information.\n", stderr);
	va_end(ap);
	return APP_EXIT_USAGE;
}

enum {
	OPT_EPOCHS = 256, OPT_BATCH, OPT_IMGSZ, OPT_DEVICE, OPT_CPU, OPT_WORKERS, OPT_HYP, OPT_SEED, OPT_RESUME,
	OPT_PROJECT, OPT_NAME, OPT_PATIENCE, OPT_SAVE_PERIOD, OPT_CLOSE_MOSAIC, OPT_STOP_AFTER,
};

static int parse_args(int argc, char **argv, struct train_opts *o)
{
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'}, {"data", required_argument, NULL, 'd'},
		{"epochs", required_argument, NULL, OPT_EPOCHS}, {"batch", required_argument, NULL, OPT_BATCH},
		{"batch-size", required_argument, NULL, OPT_BATCH}, {"imgsz", required_argument, NULL, OPT_IMGSZ},
		{"img", required_argument, NULL, OPT_IMGSZ}, {"device", required_argument, NULL, OPT_DEVICE},
		{"cpu", no_argument, NULL, OPT_CPU}, {"workers", required_argument, NULL, OPT_WORKERS},
		{"hyp", required_argument, NULL, OPT_HYP}, {"seed", required_argument, NULL, OPT_SEED},
		{"resume", optional_argument, NULL, OPT_RESUME}, {"project", required_argument, NULL, OPT_PROJECT},
		{"name", required_argument, NULL, OPT_NAME}, {"patience", required_argument, NULL, OPT_PATIENCE},
		{"save-period", required_argument, NULL, OPT_SAVE_PERIOD},
		{"close-mosaic", required_argument, NULL, OPT_CLOSE_MOSAIC},
		{"stop-after-epoch", required_argument, NULL, OPT_STOP_AFTER}, // hidden: tests of --resume
		{"verbose", no_argument, NULL, 'v'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	optind = 0;
	for (int c; (c = getopt_long(argc, argv, "m:d:vh", opts, NULL)) != -1;) {
		int bad = 0;
		double seed;
		switch (c) {
		case 'm': o->model = optarg; break;
		case 'd': o->data = optarg; break;
		case 'v': o->verbose = true; break;
		case 'h': usage(stdout); return 1;
		case OPT_EPOCHS: bad = app_parse_u32(optarg, &o->epochs) || !o->epochs; break;
		case OPT_BATCH: bad = app_parse_u32(optarg, &o->batch) || !o->batch || o->batch > 1024; break;
		case OPT_IMGSZ: bad = app_parse_u32(optarg, &o->imgsz) || !o->imgsz || o->imgsz % 32; break;
		case OPT_DEVICE: o->device = optarg, o->cpu = !strcmp(optarg, "cpu-ref"); break;
		case OPT_CPU: o->cpu = true; break;
		case OPT_WORKERS: bad = app_parse_u32(optarg, &o->workers) || o->workers > 64; break;
		case OPT_HYP: o->hyp = optarg; break;
		case OPT_SEED: bad = app_parse_double(optarg, &seed) || seed < 0 || seed != floor(seed), o->seed = (uint64_t)seed; break;
		case OPT_RESUME:
			o->resuming = true;
			o->resume = optarg;
			if (!optarg && optind < argc && argv[optind][0] != '-') // "--resume PATH"
				o->resume = argv[optind++];
			break;
		case OPT_PROJECT: o->project = optarg; break;
		case OPT_NAME: o->name = optarg; break;
		case OPT_PATIENCE: bad = app_parse_u32(optarg, &o->patience); break;
		case OPT_SAVE_PERIOD: bad = app_parse_u32(optarg, &o->save_period); break;
		case OPT_CLOSE_MOSAIC: bad = app_parse_u32(optarg, &o->close_mosaic); break;
		case OPT_STOP_AFTER: bad = app_parse_u32(optarg, &o->stop_after); break;
		default: usage_error("bad option"); return -1;
		}
		if (bad) {
			const char *name = "?";
			for (const struct option *op = opts; op->name; op++)
				if (op->val == c) {
					name = op->name;
					break;
				}
			usage_error("bad value '%s' for --%s%s", optarg, name,
			            c == OPT_IMGSZ ? " (a positive multiple of 32)" : "");
			return -1;
		}
	}
	if (optind < argc) {
		usage_error("unexpected argument '%s'", argv[optind]);
		return -1;
	}
	if (!o->resuming && (!o->model || !o->data)) {
		usage_error("--model and --data are required (or --resume)");
		return -1;
	}
	return 0;
}

// ---- options <-> dict (args.yaml, checkpoint metadata) ----

static int put_str(struct nn_value *d, const char *k, const char *v)
{
	return nn_value_dict_set(d, nn_value_str(k), v ? nn_value_str(v) : nn_value_none());
}

static int put_int(struct nn_value *d, const char *k, int64_t v)
{
	return nn_value_dict_set(d, nn_value_str(k), nn_value_int(v));
}

static int args_dict(const struct train_run *r, struct nn_value **out)
{
	const struct train_opts *o = &r->o;
	struct nn_value *d = nn_value_dict();
	if (!d || put_str(d, "model", o->model) || put_str(d, "data", o->data) || put_str(d, "hyp", o->hyp) ||
	    put_int(d, "epochs", o->epochs) || put_int(d, "batch", o->batch) || put_int(d, "imgsz", o->imgsz) ||
	    put_str(d, "device", o->cpu ? "cpu-ref" : o->device) || put_int(d, "workers", o->workers) ||
	    put_int(d, "seed", (int64_t)o->seed) || put_str(d, "save_dir", r->dir) ||
	    put_int(d, "patience", o->patience) || put_int(d, "save_period", o->save_period) ||
	    put_int(d, "close_mosaic", o->close_mosaic)) {
		nn_value_destroy(&d);
		return -ENOMEM;
	}
	*out = d;
	return 0;
}

static const char *get_str(const struct nn_value *d, const char *k)
{
	const struct nn_value *v = nn_value_dict_get(d, k);
	return v && v->kind == NN_VALUE_STR ? v->u.s : NULL;
}

static uint32_t get_u32(const struct nn_value *d, const char *k, uint32_t dflt)
{
	int64_t i;
	return nn_value_as_int(nn_value_dict_get(d, k), &i) && i >= 0 ? (uint32_t)i : dflt;
}

// --resume: the saved options (strings borrowed from r->res.args); --device, --cpu, --workers of
// this command line win.
static int args_restore(struct train_run *r, const struct train_opts *cli)
{
	const struct nn_value *a = r->res.args;
	struct train_opts *o = &r->o;
	o->model = get_str(a, "model"), o->hyp = get_str(a, "hyp");
	o->data = cli->data ? cli->data : get_str(a, "data"); // the same dataset, moved
	o->hyp = o->hyp ? o->hyp : HYP_DEFAULT;
	o->epochs = get_u32(a, "epochs", 0), o->batch = get_u32(a, "batch", 0), o->imgsz = get_u32(a, "imgsz", 0);
	o->seed = get_u32(a, "seed", 0), o->patience = get_u32(a, "patience", 100);
	o->save_period = get_u32(a, "save_period", 0), o->close_mosaic = get_u32(a, "close_mosaic", 15);
	const char *dev = get_str(a, "device");
	o->cpu = cli->cpu || (!cli->device && dev && !strcmp(dev, "cpu-ref"));
	o->device = cli->device ? cli->device : dev;
	o->workers = cli->workers != UINT32_MAX ? cli->workers : get_u32(a, "workers", 0);
	o->stop_after = cli->stop_after, o->verbose = cli->verbose;
	if (!o->model || !o->data || !o->epochs || !o->batch || !o->imgsz) {
		LOGE("train resume: %s: incomplete train_args metadata", o->resume);
		return -EINVAL;
	}
	return 0;
}

static int write_args_yaml(const struct train_run *r)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/args.yaml", r->dir);
	FILE *f = fopen(path, "w");
	if (!f) {
		LOGE("train: cannot write %s: %s", path, strerror(errno));
		return -EIO;
	}
	for (size_t i = 0; i < r->args->u.dict.count; i++) {
		const struct nn_value *k = r->args->u.dict.keys[i], *v = r->args->u.dict.vals[i];
		if (v->kind == NN_VALUE_STR)
			fprintf(f, "%s: '%s'\n", k->u.s, v->u.s);
		else if (v->kind == NN_VALUE_INT)
			fprintf(f, "%s: %lld\n", k->u.s, (long long)v->u.i);
		else
			fprintf(f, "%s: null\n", k->u.s);
	}
	fprintf(f, "hyp_values: {lr0: %g, lrf: %g, momentum: %g, weight_decay: %g, warmup_epochs: %g, "
	           "warmup_momentum: %g, warmup_bias_lr: %g, box: %g, cls: %g, dfl: %g, mosaic: %g, mixup: %g}\n",
	        r->hyp.lr0, r->hyp.lrf, r->hyp.momentum, r->hyp.weight_decay, r->hyp.warmup_epochs,
	        r->hyp.warmup_momentum, r->hyp.warmup_bias_lr, r->hyp.box, r->hyp.cls, r->hyp.dfl, r->hyp.mosaic,
	        r->hyp.mixup);
	return fclose(f) ? -EIO : 0;
}

// The newest PROJECT/*/weights/last.safetensors (malloc'ed), as the official get_latest_run.
static char *latest_run(const char *project)
{
	DIR *d = opendir(project);
	char *best = NULL, path[4096];
	double best_t = -1;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/weights/last.safetensors", project, e->d_name);
		if (!stat(path, &st) && st.st_mtime > best_t) {
			best_t = (double)st.st_mtime;
			free(best);
			best = strdup(path);
		}
	}
	if (d)
		closedir(d);
	return best;
}

// ---- one run ----

static int setup(struct train_run *r)
{
	int rc = nn_dataset_open(r->o.data, &r->ds);
	if (!rc)
		rc = nn_dataset_split_load(r->ds, NN_SPLIT_TRAIN, &r->tr);
	if (!rc)
		rc = nn_dataset_split_load(r->ds, NN_SPLIT_VAL, &r->va);
	if (rc)
		return rc;
	if (!r->tr->count) {
		LOGE("train: %s: no training images", r->o.data);
		return -EINVAL;
	}
	LOGI("train: data %s: %zu training images (%zu boxes), %zu validation images", r->o.data, r->tr->count,
	     r->tr->nboxes, r->va->count);
	nn_hyp_defaults(&r->hyp);
	if ((rc = nn_hyp_load(r->o.hyp, &r->hyp)))
		return rc;
	if (!(r->names = nn_value_list()))
		return -ENOMEM;
	for (int i = 0; i < r->ds->nc; i++)
		if (nn_value_list_append(r->names, nn_value_str(r->ds->names[i])))
			return -ENOMEM;
	if ((rc = train_model_build(r)))
		return rc;
	if (!r->o.cpu && (rc = app_open_device(r->o.device, &r->inst, &r->dev)))
		return rc;
	// official: the loader's batch is min(batch, images); accumulate and decay still use --batch
	uint32_t tn = r->tr->count < r->o.batch ? (uint32_t)r->tr->count : r->o.batch;
	struct nn_trainer_params tp = {.n = tn, .h = r->o.imgsz, .w = r->o.imgsz, .cpu_reference = r->o.cpu};
	if ((rc = nn_trainer_create(r->dev, r->model, &tp, &r->t)))
		return rc;
	if (r->resumed) { // EMA from the file's official names, momentum when a step happened
		struct nn_model *ema = NULL;
		struct nn_model_params mp = {.names = r->names};
		struct nn_tensor_map *w = NULL;
		rc = train_ckpt_ema_tensors(r->res.all, &w);
		if (!rc)
			rc = nn_model_create(r->arch, w, &mp, &ema);
		nn_tensor_map_destroy(&w);
		if (!rc)
			rc = nn_trainer_load_state(r->t, NN_TRAINER_EMA, ema);
		nn_model_destroy(&ema);
		bool has_momentum = false;
		for (size_t i = 0; i < r->res.all->count; i++)
			has_momentum |= !strncmp(r->res.all->items[i].name, "momentum.", 9);
		if (!rc && has_momentum)
			rc = nn_trainer_import_momentum(r->t, "momentum.", r->res.all);
		if (rc)
			return rc;
	}
	struct nn_loader_params lp = {.split = r->tr, .hyp = &r->hyp, .imgsz = r->o.imgsz, .batch = r->o.batch,
	                              .workers = r->o.workers, .seed = r->o.seed, .augment = true, .shuffle = true};
	if ((rc = nn_loader_create(&lp, &r->ld)))
		return rc;
	return nn_font_load_default(&r->font);
}

static void teardown(struct train_run *r)
{
	nn_loader_destroy(&r->ld);
	nn_trainer_destroy(&r->t);
	if (r->inst)
		app_close_device(&r->inst, &r->dev);
	nn_model_destroy(&r->model);
	nn_value_destroy(&r->arch);
	nn_value_destroy(&r->names);
	nn_value_destroy(&r->args);
	nn_dataset_split_destroy(&r->tr);
	nn_dataset_split_destroy(&r->va);
	nn_dataset_destroy(&r->ds);
	nn_font_destroy(&r->font);
	train_resume_finish(&r->res);
	free(r->dir);
}

static int save(struct train_run *r, const char *file, int32_t epoch)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/weights/%s", r->dir, file);
	struct train_meta m = {.arch = r->arch, .names = r->names, .args = r->args, .epoch = epoch,
	                       .best_fitness = r->best_fitness, .updates = r->updates};
	return train_ckpt_save(path, r->t, r->model, &m);
}

static void print_val(const struct train_run *r, const struct nn_metrics_result *m)
{
	fprintf(stderr, "%22s%11s%11s%11s%11s%11s%11s\n", "Class", "Images", "Instances", "P", "R", "mAP50", "mAP50-95");
	fprintf(stderr, "%22s%11zu%11zu%11.3g%11.3g%11.3g%11.3g\n", "all", m->images, m->instances, m->p, m->r, m->map50,
	        m->map50_95);
	for (size_t i = 0; r->o.verbose && i < m->nclasses; i++) {
		const struct nn_class_metrics *c = &m->classes[i];
		fprintf(stderr, "%22s%11zu%11zu%11.3g%11.3g%11.3g%11.3g\n", r->ds->names[c->cls], m->images, c->n_labels,
		        c->p, c->r, c->ap50, c->ap50_95);
	}
}

// One epoch of batches; mloss receives the running means, lr the last lrs, *done the batches
// trained (fewer than nb after Ctrl-C).
static int train_epoch(struct train_run *r, uint32_t epoch, uint32_t nb, uint32_t nw, int64_t *last_opt_step,
                       double mloss[3], float lr[NN_GROUP_COUNT], uint32_t *done)
{
	const struct train_opts *o = &r->o;
	// official: mosaic off from epoch == epochs - close_mosaic (never when close_mosaic > epochs)
	bool mosaic = !(o->close_mosaic > 0 && o->epochs >= o->close_mosaic && epoch >= o->epochs - o->close_mosaic);
	double wd = r->hyp.weight_decay * o->batch * train_accumulate(o->batch) / TRAIN_NBS;
	int rc = nn_loader_epoch(r->ld, epoch, mosaic);
	bool tty = isatty(2);
	fprintf(stderr, "\n%11s%11s%11s%11s%11s%11s%11s\n", "Epoch", "GPU_mem", "box_loss", "cls_loss", "dfl_loss",
	        "Instances", "Size");
	*done = 0;
	for (uint32_t i = 0; !rc && i < nb && !g_stop; i++) {
		const struct nn_batch *b = NULL;
		if ((rc = nn_loader_next(r->ld, &b)))
			break;
		if (!b)
			break;
		// the last batch of an epoch may be incomplete: the official loader keeps it
		if ((rc = nn_trainer_set_batch(r->t, b->n)))
			break;
		uint64_t ni = (uint64_t)epoch * nb + i;
		struct train_iter_sched s;
		train_sched_at(&r->hyp, o->epochs, o->batch, nw, ni, epoch, &s);
		if (ni < 3) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/train_batch%u.jpg", r->dir, (unsigned)ni);
			if (nn_batch_plot(b, (const char *const *)r->ds->names, (uint32_t)r->ds->nc, r->font, path))
				LOGW("train: could not write %s", path);
		}
		struct nn_loss_out lo = {0};
		if ((rc = nn_trainer_forward_backward(r->t, b->input_u8, b->targets, (uint32_t)b->ntargets, &lo)))
			break;
		for (int k = 0; k < 3; k++)
			mloss[k] = (mloss[k] * i + lo.items[k]) / (i + 1);
		memcpy(lr, s.lr, sizeof(s.lr));
		if ((int64_t)ni - *last_opt_step >= (int64_t)s.accumulate) {
			struct nn_trainer_step_params sp = {.momentum = s.momentum, .weight_decay = (float)wd,
			                                    .max_grad_norm = 10.0f, .nesterov = true};
			memcpy(sp.lr, s.lr, sizeof(s.lr));
			if ((rc = nn_trainer_step(r->t, &sp, NULL)) || (rc = nn_trainer_zero_grad(r->t)) ||
			    (rc = nn_trainer_ema_update(r->t, nn_ema_decay(++r->updates))))
				break;
			*last_opt_step = (int64_t)ni;
		}
		*done = i + 1;
		bool last = *done == nb || g_stop;
		if (!tty && !last) // a log file gets one line per epoch, a terminal a live one
			continue;
		struct nn_trainer_timing tm;
		nn_trainer_timing(r->t, &tm);
		char ep[32], mem[32];
		snprintf(ep, sizeof(ep), "%u/%u", epoch, o->epochs - 1);
		snprintf(mem, sizeof(mem), "%.3gG", tm.device_bytes / 1e9);
		fprintf(stderr, "%11s%11s%11.4g%11.4g%11.4g%11zu%11u%s", ep, mem, mloss[0], mloss[1], mloss[2],
		        b->ntargets, b->w, last ? "\n" : "\r");
	}
	return rc;
}

static int run(struct train_run *r)
{
	const struct train_opts *o = &r->o;
	char csv[4096], png[4096];
	snprintf(csv, sizeof(csv), "%s/results.csv", r->dir);
	snprintf(png, sizeof(png), "%s/results.png", r->dir);
	uint32_t nb = (uint32_t)((r->tr->count + o->batch - 1) / o->batch), nw = train_warmup_iters(&r->hyp, nb);
	int64_t last_opt_step = -1;
	LOGI("train: %zu images, %u batches of %u per epoch, accumulate %u, warmup %u iterations, %s", r->tr->count,
	     nb, o->batch, train_accumulate(o->batch), nw, o->cpu ? "CPU reference" : "GPU");
	int rc = 0;
	uint32_t epoch = (uint32_t)(r->last_epoch + 1);
	for (; epoch < o->epochs && !rc; epoch++) {
		double mloss[3] = {0}, t0 = app_now_ms();
		float lr[NN_GROUP_COUNT] = {0};
		uint32_t done = 0;
		rc = train_epoch(r, epoch, nb, nw, &last_opt_step, mloss, lr, &done);
		if (rc)
			break;
		if (done < nb && g_stop) { // Ctrl-C mid-epoch: the epoch is redone on --resume
			rc = save(r, "last.safetensors", r->last_epoch);
			fprintf(stderr, "vkyolo train: interrupted in epoch %u; saved %s/weights/last.safetensors "
			                "(resume with: vkyolo train --resume %s/weights/last.safetensors)\n",
			        epoch, r->dir, r->dir);
			return rc ? rc : -EINTR;
		}
		struct nn_metrics_result m = {0};
		double vloss[3] = {0, 0, 0};
		struct nn_confusion *cm = NULL;
		if ((rc = nn_confusion_create(r->ds->nc, NN_CONFUSION_CONF, NN_CONFUSION_IOU, &cm)) ||
		    (rc = train_validate(r, &m, vloss, cm))) {
			nn_confusion_destroy(&cm);
			break;
		}
		print_val(r, &m);
		double fi = 0.1 * m.map50 + 0.9 * m.map50_95;
		r->last_epoch = (int32_t)epoch;
		if (fi >= r->best_fitness) // EarlyStopping's rule
			r->best_epoch = epoch;
		r->best_fitness = fmax(r->best_fitness, fi);
		double row[TRAIN_CSV_COLS] = {epoch, mloss[0], mloss[1], mloss[2], m.p, m.r, m.map50, m.map50_95,
		                              vloss[0], vloss[1], vloss[2], lr[0], lr[1], lr[2]};
		// the official run plots the validation of best.pt: here each new best epoch's
		if (fi == r->best_fitness && val_plot_write(r->dir, &m, cm, (const char *const *)r->ds->names, r->ds->nc))
			LOGW("train: could not write the validation plots into %s", r->dir);
		nn_confusion_destroy(&cm);
		nn_metrics_result_finish(&m);
		char name[64];
		snprintf(name, sizeof(name), "epoch%u.safetensors", epoch);
		if ((rc = train_csv_append(csv, row)) || (rc = save(r, "last.safetensors", (int32_t)epoch)) ||
		    (fi == r->best_fitness && (rc = save(r, "best.safetensors", (int32_t)epoch))) ||
		    (o->save_period && epoch % o->save_period == 0 && (rc = save(r, name, (int32_t)epoch))))
			break;
		if ((rc = train_plot_results(csv, png)))
			LOGW("train: could not plot %s", png), rc = 0;
		LOGD("train: epoch %u took %.1f s", epoch, (app_now_ms() - t0) / 1e3);
		if (o->patience && epoch - r->best_epoch >= o->patience) {
			LOGI("train: stopping early, no improvement in the last %u epochs (best epoch %u)", o->patience,
			     r->best_epoch);
			break;
		}
		if ((g_stop || (o->stop_after && epoch + 1 == o->stop_after)) && epoch + 1 < o->epochs) {
			fprintf(stderr, "vkyolo train: %s after epoch %u; saved %s/weights/last.safetensors (resume with: "
			                "vkyolo train --resume %s/weights/last.safetensors)\n",
			        g_stop ? "interrupted" : "stopped (--stop-after-epoch)", epoch, r->dir, r->dir);
			return -EINTR;
		}
	}
	return rc;
}

// --resume: reads the checkpoint (given, or the newest under --project), restores the options and
// the run folder (PATH/../..). -ENOENT when there is nothing to resume.
static int resume_prepare(struct train_run *r, const struct train_opts *cli)
{
	char *path = cli->resume ? strdup(cli->resume) : latest_run(cli->project);
	if (!path) {
		fprintf(stderr, "vkyolo train: --resume: no %s/*/weights/last.safetensors found\n", cli->project);
		return -ENOENT;
	}
	r->o.resume = path;
	int rc = train_resume_read(path, &r->res);
	if (!rc)
		rc = args_restore(r, cli);
	if (!rc) {
		char *slash = strrchr(path, '/');
		r->dir = strndup(path, slash ? (size_t)(slash - path) : 1);
		slash = r->dir ? strrchr(r->dir, '/') : NULL;
		if (slash)
			*slash = '\0';
		else if (r->dir)
			strcpy(r->dir, ".");
		rc = r->dir ? 0 : -ENOMEM;
	}
	if (!rc && r->res.epoch + 1 >= (int32_t)r->o.epochs) { // official: nothing to resume
		fprintf(stderr, "vkyolo train: %s: training to %u epochs is finished, nothing to resume\n", path,
		        r->o.epochs);
		rc = -ENOENT;
	}
	if (!rc) {
		r->resumed = true;
		r->last_epoch = r->res.epoch, r->best_fitness = r->res.best_fitness, r->updates = r->res.updates;
		LOGI("train: resuming %s from epoch %d (%llu optimizer steps)", path, r->res.epoch + 1,
		     (unsigned long long)r->updates);
	}
	free(path);
	r->o.resume = NULL;
	return rc;
}

int cmd_train(int argc, char **argv)
{
	struct train_run r = {.last_epoch = -1};
	struct train_opts cli = {.epochs = 100, .batch = 16, .imgsz = 640, .workers = UINT32_MAX, .patience = 100,
	                         .close_mosaic = 15, .hyp = HYP_DEFAULT, .project = "runs/train", .name = "exp"};
	int prc = parse_args(argc, argv, &cli);
	if (prc)
		return prc > 0 ? APP_EXIT_OK : APP_EXIT_USAGE;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int rc = 0;
	r.o = cli;
	if (cli.resuming) {
		rc = resume_prepare(&r, &cli);
		if (rc == -ENOENT) { // already said why
			teardown(&r);
			return APP_EXIT_FAILURE;
		}
	} else {
		if (r.o.workers == UINT32_MAX)
			r.o.workers = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (uint32_t)ncpu;
		char base[4096];
		snprintf(base, sizeof(base), "%s/%s", cli.project, cli.name);
		rc = nn_increment_path(base, false, true, &r.dir);
	}
	char wdir[4096];
	snprintf(wdir, sizeof(wdir), "%s/weights", r.dir ? r.dir : ".");
	if (!rc)
		rc = nn_mkdir_p(wdir);
	if (!rc)
		rc = args_dict(&r, &r.args);
	if (!rc)
		rc = setup(&r);
	if (!rc && !r.resumed)
		rc = write_args_yaml(&r);
	if (!rc) {
		struct sigaction sa = {.sa_handler = on_sigint, .sa_flags = SA_RESETHAND};
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		double t0 = app_now_ms();
		rc = run(&r);
		signal(SIGINT, SIG_DFL);
		char best[4096];
		snprintf(best, sizeof(best), "%s/weights/best.safetensors", r.dir);
		if (!rc && !access(best, F_OK)) // official strip_optimizer: inference weights only
			rc = train_ckpt_strip(best);
		if (!rc)
			printf("%d epochs completed in %.3f hours.\nResults saved to %s\n", r.last_epoch + 1,
			       (app_now_ms() - t0) / 3.6e6, r.dir);
	}
	if (rc && rc != -EINTR)
		fprintf(stderr, "vkyolo train: failed (%s)\n", strerror(-rc));
	teardown(&r);
	return rc ? APP_EXIT_FAILURE : APP_EXIT_OK;
}
