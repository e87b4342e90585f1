// `vkyolo train` end to end with the CPU reference trainer (--cpu) on coco8 at 64 x 64, batch 4
// (one batch per epoch), augmentation off (a hyp file with mosaic, mixup, HSV, flips, translate and
// scale at 0) so every epoch trains on the same four images: a fixed-batch loss check.
//   1. a 2-epoch run exits 0 and writes args.yaml, results.csv (2 rows), results.png,
//      train_batch0.jpg, confusion_matrix.png (the PR/F1/P/R curves need a true positive, which
//      this run does not reach), weights/last.safetensors and best.safetensors (stripped to the EMA weights);
//      the epoch-1 loss (box + cls + dfl, the same batch) is lower than the epoch-0 loss;
//   2. the same run stopped after epoch 1 (hidden --stop-after-epoch 1: exit 1, last saved) and
//      continued with --resume (and --data naming the same dataset through another YAML, as after
//      a move) ends with a last.safetensors equal to the uninterrupted run's: every
//      tensor (EMA weights, training weights, momentum) bit-equal (the same fp32 operations in the
//      same order; seed + epoch fix the data).
// argv[1]: the vkyolo executable; argv[2] "gpu": the same on the GPU trainer (skips while the GPU
// backend is not built; resume within 1e-6 instead of bit-equal).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
#include "safetensors.h"

static const char *exe;
static bool gpu; // argv[2] == "gpu": the GPU trainer instead of --cpu
static char tmp[] = "/tmp/vkyolo-train-XXXXXX";

static char logbuf[65536];

// The output of a run (tmp/log) in logbuf.
static const char *read_log(const char *log)
{
	char path[1100];
	snprintf(path, sizeof(path), "%s/%s", tmp, log);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(logbuf, 1, sizeof(logbuf) - 1, f) : 0;
	if (f)
		fclose(f);
	logbuf[n] = '\0';
	return logbuf;
}

// Runs vkyolo with output to tmp/log; shows the output when the exit status is not `want`.
static int run(const char *args, const char *log, int want)
{
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "'%s' %s > '%s/%s' 2>&1", exe, args, tmp, log);
	int st = system(cmd);
	st = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	if (st != want)
		fprintf(stderr, "---- %s ----\n%s----\n", log, read_log(log));
	return st;
}

static bool exists(const char *run_name, const char *file)
{
	char path[1200];
	struct stat st;
	snprintf(path, sizeof(path), "%s/runs/%s/%s", tmp, run_name, file);
	return !stat(path, &st) && st.st_size > 0;
}

// The data rows of results.csv: rows[k][col]. Returns the row count (at most 8).
static int csv_rows(const char *run_name, double rows[8][14])
{
	char path[1200], line[4096];
	snprintf(path, sizeof(path), "%s/runs/%s/results.csv", tmp, run_name);
	FILE *f = fopen(path, "r");
	int n = 0;
	while (f && fgets(line, sizeof(line), f) && n < 8) {
		char *p = line, *end;
		int c = 0;
		for (; c < 14; c++, p = *end == ',' ? end + 1 : end)
			if (rows[n][c] = strtod(p, &end), end == p)
				break;
		n += c == 14;
	}
	if (f)
		fclose(f);
	return n;
}

static int common_args(char *buf, size_t cap, const char *name, const char *extra)
{
	return snprintf(buf, cap,
	                "train --model '%s/assets/models/gelan-t.yaml' --data '%s/data/coco8/coco8.yaml' --epochs 2 "
	                "--batch 4 --imgsz 64 %s --workers 0 --hyp '%s/hyp.yaml' --project '%s/runs' --name %s %s",
	                VKYOLO_SOURCE_ROOT, test_shared_dir(), gpu ? "" : "--cpu", tmp, tmp, name, extra);
}

static int check_run(void)
{
	char args[4096];
	common_args(args, sizeof(args), "full", "");
	int st = run(args, "full.txt", 0);
	if (gpu && st != 0 && strstr(read_log("full.txt"), "GPU backend is not built")) {
		printf("skip: the GPU trainer backend is not built\n");
		return 77;
	}
	CHECKF(st == 0, "train exited %d", st);
	const char *err = strstr(read_log("full.txt"), "error:");
	CHECKF(!err, "a successful run logged an error: %.160s", err ? err : "");
	const char *files[] = {"args.yaml", "results.csv", "results.png", "train_batch0.jpg", "confusion_matrix.png",
	                       "weights/last.safetensors", "weights/best.safetensors"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		CHECKF(exists("full", files[i]), "missing %s", files[i]);
	double rows[8][14];
	int n = csv_rows("full", rows);
	CHECKF(n == 2, "results.csv has %d data rows, want 2", n);
	double l0 = rows[0][1] + rows[0][2] + rows[0][3], l1 = rows[1][1] + rows[1][2] + rows[1][3];
	printf("%s epoch 0 loss %.5f (box %.4f cls %.4f dfl %.4f), epoch 1 loss %.5f (box %.4f cls %.4f dfl %.4f), "
	       "lr/pg0 %.5g -> %.5g\n", l1 < l0 ? "ok  " : "FAIL", l0, rows[0][1], rows[0][2], rows[0][3], l1, rows[1][1],
	       rows[1][2], rows[1][3], rows[0][11], rows[1][11]);
	CHECK(rows[0][0] == 0 && rows[1][0] == 1 && l0 > 0 && isfinite(l1));
	// validation losses (val/box, cls, dfl) of the EMA model on the val batches: the GPU runner's head
	// maps, or with --cpu the reference forward's
	for (int r = 0; r < 2; r++) {
		printf("epoch %d val losses %.5f %.5f %.5f\n", r, rows[r][8], rows[r][9], rows[r][10]);
		for (int k = 8; k <= 10; k++)
			CHECKF(rows[r][k] > 0 && rows[r][k] < 50, "epoch %d val loss column %d: %g", r, k, rows[r][k]);
	}
	// official warmup at ni = 0: bias lr = warmup_bias_lr 0.1, the others 0
	CHECKF(fabs(rows[0][11] - 0.1) < 1e-6 && rows[0][12] == 0 && rows[0][13] == 0, "lr at ni 0: %g %g %g",
	       rows[0][11], rows[0][12], rows[0][13]);
	// best.safetensors is stripped at the end (EMA weights under the official names only), last keeps
	// the training weights and momentum for --resume
	char path[1200];
	struct nn_tensor_map *best = NULL, *last = NULL;
	snprintf(path, sizeof(path), "%s/runs/full/weights/best.safetensors", tmp);
	CHECK(nn_safetensors_read(path, &best) == 0);
	snprintf(path, sizeof(path), "%s/runs/full/weights/last.safetensors", tmp);
	CHECK(nn_safetensors_read(path, &last) == 0);
	size_t prefixed = 0;
	for (size_t i = 0; i < best->count; i++)
		prefixed += strchr(best->items[i].name, '.') && strncmp(best->items[i].name, "model.", 6);
	bool stripped = prefixed == 0 && best->count > 0 && last->count > best->count &&
	                nn_tensor_map_find(best, "model.0.conv.weight") && nn_value_dict_get(best->metadata, "arch");
	printf("%s best.safetensors: %zu tensors, %zu prefixed; last: %zu\n", stripped ? "ok  " : "FAIL", best->count,
	       prefixed, last->count);
	nn_tensor_map_destroy(&best);
	nn_tensor_map_destroy(&last);
	return l1 < l0 && stripped ? 0 : 1;
}

static int check_resume(void)
{
	char args[4096];
	common_args(args, sizeof(args), "cut", "--stop-after-epoch 1");
	int st = run(args, "cut.txt", 1);
	CHECKF(st == 1, "the stopped run exited %d, want 1", st);
	double rows[8][14];
	CHECKF(csv_rows("cut", rows) == 1, "stopped run: results.csv should have 1 row");
	// resumed with --data naming the same dataset through another YAML (a moved dataset): the
	// stored options are kept, the data path replaced
	char moved[1200];
	snprintf(moved, sizeof(moved), "%s/moved.yaml", tmp);
	FILE *f = fopen(moved, "w");
	CHECKF(f, "cannot write %s", moved);
	fprintf(f, "path: %s/data/coco8\ntrain: images/train\nval: images/val\nnc: 80\nnames: [", test_shared_dir());
	for (int c = 0; c < 80; c++)
		fprintf(f, "%sc%d", c ? ", " : "", c);
	fprintf(f, "]\n");
	CHECKF(fclose(f) == 0, "cannot write %s", moved);
	snprintf(args, sizeof(args), "train --resume '%s/runs/cut/weights/last.safetensors' --data '%s'", tmp, moved);
	st = run(args, "resume.txt", 0);
	CHECKF(st == 0, "resume exited %d", st);
	CHECKF(strstr(read_log("resume.txt"), "moved.yaml"), "the resumed run did not read --data %s", moved);
	CHECKF(csv_rows("cut", rows) == 2, "resumed run: results.csv should have 2 rows");
	char pa[1200], pb[1200];
	snprintf(pa, sizeof(pa), "%s/runs/full/weights/last.safetensors", tmp);
	snprintf(pb, sizeof(pb), "%s/runs/cut/weights/last.safetensors", tmp);
	struct nn_tensor_map *a = NULL, *b = NULL;
	CHECK(nn_safetensors_read(pa, &a) == 0 && nn_safetensors_read(pb, &b) == 0);
	CHECKF(a->count == b->count && a->count > 0, "%zu vs %zu tensors", a->count, b->count);
	size_t n_mom = 0, n_train = 0, n_diff = 0;
	double worst = 0;
	const char *wname = "";
	for (size_t i = 0; i < a->count; i++) {
		const struct nn_tensor *x = &a->items[i], *y = nn_tensor_map_find(b, x->name);
		CHECKF(y && nn_tensor_numel(y) == nn_tensor_numel(x), "%s missing or resized", x->name);
		n_mom += !strncmp(x->name, "momentum.", 9), n_train += !strncmp(x->name, "train.", 6);
		for (int64_t k = 0; k < nn_tensor_numel(x); k++) {
			double d = fabs((double)nn_tensor_get_f32(x, k) - nn_tensor_get_f32(y, k));
			if (d > worst)
				worst = d, wname = x->name;
			n_diff += d != 0;
		}
	}
	const struct nn_value *ea = nn_value_dict_get(a->metadata, "updates"), *eb = nn_value_dict_get(b->metadata, "updates");
	bool same_updates = ea && eb && ea->kind == NN_VALUE_STR && eb->kind == NN_VALUE_STR && !strcmp(ea->u.s, eb->u.s);
	// CPU reference: the same fp32 operations in the same order, bit-equal; GPU: within 1e-6
	bool ok = worst <= (gpu ? 1e-6 : 0.0) && n_mom > 0 && n_train > 0 && same_updates;
	printf("%s resume: %zu tensors (%zu training, %zu momentum), %zu entries differ, worst |diff| %.3g (%s), "
	       "updates %s vs %s\n", ok ? "ok  " : "FAIL", a->count, n_train, n_mom, n_diff, worst, wname,
	       ea && ea->kind == NN_VALUE_STR ? ea->u.s : "?", eb && eb->kind == NN_VALUE_STR ? eb->u.s : "?");
	nn_tensor_map_destroy(&a);
	nn_tensor_map_destroy(&b);
	return ok ? 0 : 1;
}

static void rmdir_tmp(void)
{
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", tmp);
}

int main(int argc, char **argv)
{
	gpu_log_init(GPU_LOG_WARN, NULL, NULL);
	if (argc < 2) {
		fprintf(stderr, "usage: test_cli_train <vkyolo>\n");
		return 1;
	}
	exe = argv[1];
	gpu = argc > 2 && !strcmp(argv[2], "gpu");
	char data[1100];
	snprintf(data, sizeof(data), "%s/data/coco8/coco8.yaml", test_shared_dir());
	if (access(data, R_OK)) {
		printf("skip: %s not found (set VKYOLO_SHARED)\n", data);
		return 77;
	}
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	char path[1200];
	snprintf(path, sizeof(path), "%s/hyp.yaml", tmp);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	fputs("lr0: 0.01\nlrf: 0.01\nmomentum: 0.937\nweight_decay: 0.0005\nwarmup_epochs: 3.0\n"
	      "warmup_momentum: 0.8\nwarmup_bias_lr: 0.1\nbox: 7.5\ncls: 0.5\ncls_pw: 1.0\nobj: 0.7\nobj_pw: 1.0\n"
	      "dfl: 1.5\niou_t: 0.2\nanchor_t: 5.0\nfl_gamma: 0.0\nhsv_h: 0.0\nhsv_s: 0.0\nhsv_v: 0.0\n"
	      "degrees: 0.0\ntranslate: 0.0\nscale: 0.0\nshear: 0.0\nperspective: 0.0\nflipud: 0.0\nfliplr: 0.0\n"
	      "mosaic: 0.0\nmixup: 0.0\ncopy_paste: 0.0\n", f);
	fclose(f);
	int fails = check_run();
	if (fails == 77) {
		rmdir_tmp();
		return 77;
	}
	fails += check_resume();
	if (!fails) { // keep the folder for inspection on failure
		rmdir_tmp();
	} else {
		fprintf(stderr, "outputs kept in %s\n", tmp);
	}
	printf(fails ? "FAILED\n" : "all passed\n");
	return fails ? 1 : 0;
}
