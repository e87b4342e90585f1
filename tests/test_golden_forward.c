// The GPU executor against the official implementation's outputs (shared/oracle), for each model
// named on the command line (default: all four): the decoded predictions at 640x640
// (*_forward640.safetensors: output, output_aux) and, where the oracle has them, every layer's
// output at 224x320 (*_layers.safetensors). Models are built fused, as the official inference
// loader does. Also prints the first model's 640 forward time (min of 3 replays) and dispatch counts.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpoint.h"
#include "harness.h"
#include "model.h"
#include "runner.h"
#include "safetensors.h"

// Layers: fp32 with another accumulation order than PyTorch's; the error scales with the layer's
// magnitude: |d| <= 1e-4 * max|want| + 1e-4 * |want| (the same bound the CPU reference meets).
#define LAYER_RTOL 1e-4
// Output: boxes in pixels (up to ~640, fp32 ulp ~6e-5, amplified by the DFL softmax), scores in [0, 1].
#define BOX_ATOL 0.05
#define SCORE_ATOL 1e-4

static struct test_gpu g;

static const char *shared_dir(void)
{
	const char *s = getenv("VKYOLO_SHARED");
	return s && *s ? s : "../shared";
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int check_layer(const char *name, const float *got, size_t n, const struct nn_tensor *want)
{
	if (!want || (size_t)nn_tensor_numel(want) != n || want->dtype != NN_DTYPE_F32) {
		printf("FAIL %s: missing or shape differs in the oracle\n", name);
		return 1;
	}
	const float *wv = want->data;
	double scale = 0, worst_excess = -1, max_abs = 0;
	size_t worst = 0;
	for (size_t i = 0; i < n; i++)
		scale = fmax(scale, fabs(wv[i]));
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - wv[i]);
		max_abs = fmax(max_abs, d);
		double excess = isnan(d) ? 1e30 : d - (LAYER_RTOL * scale + LAYER_RTOL * fabs(wv[i]));
		if (excess > worst_excess)
			worst_excess = excess, worst = i;
	}
	if (worst_excess > 0) {
		printf("FAIL %s: index %zu got %.8g want %.8g (max abs %.3g, layer max %.3g)\n", name, worst, got[worst],
		       wv[worst], max_abs, scale);
		return 1;
	}
	return 0;
}

static int check_output(const char *name, const float *got, uint32_t rows, uint32_t a, const struct nn_tensor *want)
{
	if (!want || want->ndim != 3 || want->shape[1] != rows || want->shape[2] != a) {
		printf("FAIL %s: missing or shape differs from [1,%u,%u]\n", name, rows, a);
		return 1;
	}
	const float *wv = want->data;
	double max_box = 0, max_score = 0;
	size_t wb = 0, ws = 0;
	for (size_t i = 0; i < (size_t)rows * a; i++) {
		double d = isnan(got[i]) ? INFINITY : fabs((double)got[i] - wv[i]);
		if (i < 4 * (size_t)a && d >= max_box)
			max_box = d, wb = i;
		if (i >= 4 * (size_t)a && d >= max_score)
			max_score = d, ws = i;
	}
	bool ok = max_box <= BOX_ATOL && max_score <= SCORE_ATOL;
	printf("%s %s: boxes max abs %.3g px ([%zu] %.6g vs %.6g), scores max abs %.3g ([%zu] %.6g vs %.6g)\n",
	       ok ? "ok  " : "FAIL", name, max_box, wb, got[wb], wv[wb], max_score, ws, got[ws], wv[ws]);
	return ok ? 0 : 1;
}

// Runs the model on the oracle file's input_u8 (1x3xHxW); *r is created for that size.
static int run_oracle(const struct nn_model *m, const struct nn_tensor_map *ref, bool keep, int reps,
                      struct nn_runner **r)
{
	const struct nn_tensor *in = nn_tensor_map_find(ref, "input_u8");
	if (!in || in->ndim != 4 || in->shape[0] != 1 || in->shape[1] != 3 || in->dtype != NN_DTYPE_U8) {
		printf("FAIL: oracle input_u8 missing\n");
		return 1;
	}
	struct nn_runner_params p = { .n = 1, .h = (uint32_t)in->shape[2], .w = (uint32_t)in->shape[3], .keep_layers = keep };
	double t0 = now_ms();
	if (nn_runner_create(g.dev, m, &p, r) || nn_runner_run(*r, in->data)) {
		printf("FAIL: GPU forward %ux%u\n", p.h, p.w);
		return 1;
	}
	double first = now_ms() - t0, best = 1e30;
	for (int i = 0; i < reps; i++) {
		t0 = now_ms();
		if (nn_runner_run(*r, in->data))
			return 1;
		best = fmin(best, now_ms() - t0);
	}
	struct nn_runner_stats st;
	nn_runner_stats(*r, &st);
	printf("forward %ux%u: create+first run %.0f ms", p.h, p.w, first);
	if (reps)
		printf(", replay min %.1f ms (%.1f GFLOP/s)", best, st.gflop / best * 1e3);
	printf("; %.2f GFLOP, %u dispatches, %u barriers, activations %.1f MB, weights %.1f MB\n", st.gflop,
	       st.dispatches, st.barriers, st.activation_bytes / 1e6, st.weight_bytes / 1e6);
	return 0;
}

static int check_model(const char *model, int reps)
{
	char path[512];
	struct nn_checkpoint *ck = NULL;
	struct nn_model *m = NULL;
	struct nn_tensor_map *ref = NULL;
	struct nn_runner *r = NULL;
	float *buf = NULL;
	int fails = 0;
	snprintf(path, sizeof(path), "%s/oracle/%s.pt", shared_dir(), model);
	if (nn_checkpoint_load(path, &ck) || !ck->arch ||
	    nn_model_create(ck->arch, ck->state, &(struct nn_model_params){ .fuse = true, .names = ck->names }, &m)) {
		printf("FAIL loading %s\n", path);
		fails++;
		goto done;
	}
	printf("%s: %u layers, %u ops\n", model, m->n_layers, m->n_ops);
	snprintf(path, sizeof(path), "%s/oracle/%s_layers.safetensors", shared_dir(), model);
	FILE *f = fopen(path, "rb");
	if (f) {
		fclose(f);
		if (nn_safetensors_read(path, &ref) || run_oracle(m, ref, true, 0, &r)) {
			fails++;
			goto done;
		}
		uint32_t checked = 0;
		for (uint32_t i = 0; i < m->n_layers; i++) {
			if (!strcmp(m->layers[i].module, "DDetect") || !strcmp(m->layers[i].module, "DualDDetect"))
				continue; // checked through output/output_aux
			for (uint32_t k = 0; k < m->layers[i].n_out; k++) {
				char name[48];
				struct nn_shape s;
				if (!strcmp(m->layers[i].module, "CBLinear"))
					snprintf(name, sizeof(name), "layer.%u.%u", i, k);
				else
					snprintf(name, sizeof(name), "layer.%u", i);
				size_t n = nn_runner_layer_shape(r, i, k, &s) ? 0 : (size_t)s.c * s.h * s.w;
				free(buf);
				buf = malloc((n ? n : 1) * sizeof(float));
				if (!n || nn_runner_read_layer(r, i, k, buf))
					fails++;
				else
					fails += check_layer(name, buf, n, nn_tensor_map_find(ref, name)), checked++;
			}
		}
		printf("%s %u layers at 224x320 within %g of the layer max\n", fails ? "FAIL" : "ok  ", checked, LAYER_RTOL);
		uint32_t rows = nn_runner_rows(r), a = nn_runner_anchors(r);
		free(buf);
		buf = malloc((size_t)rows * a * sizeof(float));
		fails += nn_runner_read_output(r, false, buf) ||
		         check_output("output (224x320)", buf, rows, a, nn_tensor_map_find(ref, "output"));
		if (nn_runner_has_aux(r))
			fails += nn_runner_read_output(r, true, buf) ||
			         check_output("output_aux (224x320)", buf, rows, a, nn_tensor_map_find(ref, "output_aux"));
		nn_runner_destroy(&r);
		nn_tensor_map_destroy(&ref);
	}
	snprintf(path, sizeof(path), "%s/oracle/%s_forward640.safetensors", shared_dir(), model);
	if (nn_safetensors_read(path, &ref) || run_oracle(m, ref, false, reps, &r)) {
		fails++;
		goto done;
	}
	uint32_t rows = nn_runner_rows(r), a = nn_runner_anchors(r);
	free(buf);
	buf = malloc((size_t)rows * a * sizeof(float));
	fails += nn_runner_read_output(r, false, buf) ||
	         check_output("output (640)", buf, rows, a, nn_tensor_map_find(ref, "output"));
	const struct nn_tensor *aux = nn_tensor_map_find(ref, "output_aux");
	if (aux || nn_runner_has_aux(r))
		fails += nn_runner_read_output(r, true, buf) || check_output("output_aux (640)", buf, rows, a, aux);
done:
	free(buf);
	nn_runner_destroy(&r);
	nn_tensor_map_destroy(&ref);
	nn_model_destroy(&m);
	nn_checkpoint_destroy(&ck);
	return fails;
}

int main(int argc, char **argv)
{
	static const char *const all[] = { "gelan-t", "yolov9-t", "yolov9-c-quarter", "gelan-c-quarter-converted" };
	char path[512];
	snprintf(path, sizeof(path), "%s/oracle/gelan-t.pt", shared_dir());
	FILE *f = fopen(path, "rb");
	if (!f) {
		printf("skip: %s not found (set VKYOLO_SHARED)\n", path);
		return TEST_SKIP;
	}
	fclose(f);
	int fails = 0, ret = test_gpu_open(&g);
	if (ret)
		return ret;
	int count = argc > 1 ? argc - 1 : 4;
	for (int i = 0; i < count; i++)
		fails += check_model(argc > 1 ? argv[i + 1] : all[i], i == 0 ? 3 : 0); // time the first model only
	fails += test_gpu_close(&g);
	printf("%s\n", fails ? "FAILED" : "all passed");
	return fails ? 1 : 0;
}
