// The CPU reference executor against the official implementation's outputs (shared/oracle):
// per-layer outputs at 224x320 (*_layers.safetensors) and the 640x640 prediction
// (*_forward640.safetensors), for the model named by argv[1] (gelan-t, yolov9-t, yolov9-c-quarter,
// gelan-c-quarter-converted), built fused (as the official inference loader does) and unfused.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "checkpoint.h"
#include "log.h"
#include "model.h"
#include "safetensors.h"

// Layers: fp32 with a different accumulation order than PyTorch's; errors scale with the layer's
// magnitude, so atol is relative to the layer's largest value: |d| <= 1e-4*max|want| + 1e-4*|want|.
#define LAYER_RTOL 1e-4
// Output: boxes in pixels (values up to ~640, fp32 ulp ~6e-5), class scores in [0, 1].
#define BOX_ATOL 0.05
#define SCORE_ATOL 1e-4

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// input_u8 [1,3,H,W] -> f32 / 255 like the official pre-processing.
static float *load_input(const struct nn_tensor_map *map, uint32_t *h, uint32_t *w)
{
	const struct nn_tensor *t = nn_tensor_map_find(map, "input_u8");
	if (!t || t->ndim != 4 || t->shape[1] != 3 || t->dtype != NN_DTYPE_U8)
		return NULL;
	*h = (uint32_t)t->shape[2], *w = (uint32_t)t->shape[3];
	size_t n = (size_t)nn_tensor_numel(t);
	float *x = malloc(n * sizeof(float));
	for (size_t i = 0; x && i < n; i++)
		x[i] = (float)((const uint8_t *)t->data)[i] / 255.0f;
	return x;
}

static int check_layer(const char *name, const float *got, const struct nn_shape *gs, const struct nn_tensor *want)
{
	int64_t n = nn_tensor_numel(want);
	if (want->ndim != 4 || want->shape[1] != gs->c || want->shape[2] != gs->h || want->shape[3] != gs->w) {
		printf("FAIL %s: shape [%u,%u,%u] vs oracle [%lld,%lld,%lld]\n", name, gs->c, gs->h, gs->w,
		       (long long)want->shape[1], (long long)want->shape[2], (long long)want->shape[3]);
		return 1;
	}
	const float *wv = want->data;
	double scale = 0, max_abs = 0, worst_excess = -1;
	int64_t worst = 0;
	for (int64_t i = 0; i < n; i++)
		scale = fmax(scale, fabs(wv[i]));
	for (int64_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - wv[i]);
		double excess = d - (LAYER_RTOL * scale + LAYER_RTOL * fabs(wv[i]));
		max_abs = fmax(max_abs, d);
		if (excess > worst_excess || isnan(got[i]))
			worst_excess = isnan(got[i]) ? 1e30 : excess, worst = i;
	}
	bool ok = worst_excess <= 0;
	printf("%s %-10s max abs %.3g, max rel (to layer max %.3g) %.3g%s", ok ? "ok  " : "FAIL", name, max_abs,
	       scale, scale > 0 ? max_abs / scale : 0.0, ok ? "\n" : "");
	if (!ok)
		printf(": index %lld got %.8g want %.8g\n", (long long)worst, got[worst], wv[worst]);
	return ok ? 0 : 1;
}

static int check_output(const char *name, const float *got, uint32_t rows, uint32_t a, const struct nn_tensor *want)
{
	if (!want || want->ndim != 3 || want->shape[1] != rows || want->shape[2] != a) {
		printf("FAIL %s: missing or shape differs from [1,%u,%u]\n", name, rows, a);
		return 1;
	}
	const float *wv = want->data;
	double max_box = 0, max_score = 0;
	size_t worst_box = 0, worst_score = 0;
	for (size_t i = 0; i < (size_t)rows * a; i++) {
		double d = fabs((double)got[i] - wv[i]);
		if (isnan(got[i]))
			d = INFINITY;
		if (i < 4 * (size_t)a && d >= max_box)
			max_box = d, worst_box = i;
		if (i >= 4 * (size_t)a && d >= max_score)
			max_score = d, worst_score = i;
	}
	bool ok = max_box <= BOX_ATOL && max_score <= SCORE_ATOL;
	printf("%s %s: boxes max abs %.3g px (index %zu: %.6g vs %.6g), scores max abs %.3g (index %zu: %.6g vs %.6g)\n",
	       ok ? "ok  " : "FAIL", name, max_box, worst_box, got[worst_box], wv[worst_box], max_score, worst_score,
	       got[worst_score], wv[worst_score]);
	return ok ? 0 : 1;
}

// Reads the oracle file and runs the reference forward on its input_u8. Nonzero = failure (printed).
static int run_oracle_input(const struct nn_model *m, const char *path, struct nn_tensor_map **ref,
                            struct nn_ref_outputs *out)
{
	uint32_t h = 0, w = 0;
	if (nn_safetensors_read(path, ref))
		return 1;
	float *x = load_input(*ref, &h, &w);
	double t0 = now_s();
	int ret = !x || nn_model_forward_ref(m, 1, h, w, x, out);
	free(x);
	if (ret)
		printf("FAIL forward %ux%u\n", h, w);
	else
		printf("forward %ux%u: %.2f s\n", h, w, now_s() - t0);
	return ret;
}

static int check_layers(const struct nn_model *m, const char *path)
{
	struct nn_tensor_map *ref = NULL;
	struct nn_ref_outputs out = {.keep_layers = true};
	int fails = 0;
	if (run_oracle_input(m, path, &ref, &out)) {
		fails++;
		goto done;
	}
	for (uint32_t i = 0; i < m->n_layers; i++) {
		char name[48];
		if (!strcmp(m->layers[i].module, "DDetect") || !strcmp(m->layers[i].module, "DualDDetect"))
			continue; // checked through output/output_aux below
		for (uint32_t k = 0; k < m->layers[i].n_out; k++) {
			size_t j = (size_t)i * NN_LAYER_MAX_OUTS + k;
			if (!strcmp(m->layers[i].module, "CBLinear"))
				snprintf(name, sizeof(name), "layer.%u.%u", i, k);
			else
				snprintf(name, sizeof(name), "layer.%u", i);
			const struct nn_tensor *t = nn_tensor_map_find(ref, name);
			if (!t) {
				printf("FAIL %s: not in the oracle file\n", name);
				fails++;
				continue;
			}
			fails += check_layer(name, out.layer[j], &out.layer_shape[j], t);
		}
	}
	fails += check_output("output (224x320)", out.output, out.rows, out.a, nn_tensor_map_find(ref, "output"));
	if (out.output_aux)
		fails += check_output("output_aux (224x320)", out.output_aux, out.rows, out.a,
		                      nn_tensor_map_find(ref, "output_aux"));
done:
	nn_ref_outputs_finish(&out);
	nn_tensor_map_destroy(&ref);
	return fails;
}

static int check_forward640(const struct nn_model *m, const char *path)
{
	struct nn_tensor_map *ref = NULL;
	struct nn_ref_outputs out = {0};
	int fails = 0;
	if (run_oracle_input(m, path, &ref, &out)) {
		fails++;
	} else {
		fails += check_output("output (640)", out.output, out.rows, out.a, nn_tensor_map_find(ref, "output"));
		const struct nn_tensor *aux = nn_tensor_map_find(ref, "output_aux");
		if (aux || out.output_aux)
			fails += out.output_aux ? check_output("output_aux (640)", out.output_aux, out.rows, out.a, aux)
			                        : (printf("FAIL output_aux missing\n"), 1);
	}
	nn_ref_outputs_finish(&out);
	nn_tensor_map_destroy(&ref);
	return fails;
}

int main(int argc, char **argv)
{
	const char *model = argc > 1 ? argv[1] : "gelan-t";
	bool unfused_640 = argc > 2 && !strcmp(argv[2], "--unfused-640");
	char path[512];
	struct nn_checkpoint *ck = NULL;
	int fails = 0;
	gpu_log_init(GPU_LOG_WARN, NULL, NULL);
	snprintf(path, sizeof(path), "%s/oracle/%s.pt", test_shared_dir(), model);
	FILE *f = fopen(path, "rb");
	if (!f) {
		printf("skip: %s not found (set VKYOLO_SHARED)\n", path);
		return 77;
	}
	fclose(f);
	if (nn_checkpoint_load(path, &ck) || !ck->arch) {
		printf("FAIL loading %s\n", path);
		return 1;
	}
	for (int fuse = 1; fuse >= 0; fuse--) {
		struct nn_model *m = NULL;
		struct nn_model_params p = {.fuse = fuse, .names = ck->names};
		if (nn_model_create(ck->arch, ck->state, &p, &m)) {
			printf("FAIL building %s (fuse %d)\n", model, fuse);
			fails++;
			continue;
		}
		printf("%s %s: %u layers, %u ops, %u tensors, %llu parameters\n", model, fuse ? "fused" : "unfused",
		       m->n_layers, m->n_ops, m->n_tensors, (unsigned long long)nn_model_param_count(m));
		snprintf(path, sizeof(path), "%s/oracle/%s_layers.safetensors", test_shared_dir(), model);
		if ((f = fopen(path, "rb"))) {
			fclose(f);
			fails += check_layers(m, path);
		}
		// The 640 forward costs ~10 GFLOP in plain loops: run it once (fused, like official inference)
		// unless asked for the unfused one too.
		if (fuse || unfused_640) {
			snprintf(path, sizeof(path), "%s/oracle/%s_forward640.safetensors", test_shared_dir(), model);
			fails += check_forward640(m, path);
		}
		nn_model_destroy(&m);
	}
	nn_checkpoint_destroy(&ck);
	printf("%s\n", fails ? "FAILED" : "all passed");
	return fails ? 1 : 0;
}
