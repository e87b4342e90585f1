// The GPU executor (nn/runner.h) against the CPU reference executor (nn_model_forward_ref) on models
// built from the oracle's YAML descriptions with random weights, at small non-square sizes, batch 2:
// every layer output and the decoded predictions. Both fused (BN folded by the builder) and unfused
// (BN folded by the runner's weight packing) models. Also checks that the activation plan reuses
// memory and that the GPU forward is deterministic across replays.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "harness.h"
#include "model.h"
#include "runner.h"
#include "yaml_read.h"

// Layers: fp32 sums over up to ~1500 products per conv, chained through ~100 convs with another
// accumulation order than the CPU's; like the oracle test, the error scales with the layer's
// magnitude: |d| <= 1e-4 * max|want| + 1e-4 * |want|.
#define LAYER_RTOL 1e-4
// Scores are sigmoids in [0, 1] of logits whose error is bounded as above.
#define SCORE_ATOL 1e-4

static struct test_gpu g;

static int compare(const char *what, const float *got, const float *want, size_t n, double atol_extra)
{
	double scale = 0, worst_excess = -1;
	size_t worst = 0;
	for (size_t i = 0; i < n; i++)
		scale = fmax(scale, fabs(want[i]));
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - want[i]);
		double excess = isnan(d) ? 1e30 : d - (LAYER_RTOL * scale + LAYER_RTOL * fabs(want[i]) + atol_extra);
		if (excess > worst_excess)
			worst_excess = excess, worst = i;
	}
	if (worst_excess > 0) {
		printf("FAIL %s: index %zu got %.8g want %.8g (layer max %.3g)\n", what, worst, got[worst], want[worst], scale);
		return 1;
	}
	return 0;
}

// out: [n, rows, a]; boxes (rows 0..3) like layers, scores with an absolute tolerance.
static int compare_output(const char *what, const float *got, const float *want, uint32_t n, uint32_t rows, uint32_t a)
{
	int fails = 0;
	for (uint32_t b = 0; b < n; b++) {
		const float *gb = got + (size_t)b * rows * a, *wb = want + (size_t)b * rows * a;
		char name[96];
		snprintf(name, sizeof(name), "%s[%u] boxes", what, b);
		fails += compare(name, gb, wb, 4 * (size_t)a, 0);
		snprintf(name, sizeof(name), "%s[%u] scores", what, b);
		fails += !test_close_f32(name, gb + 4 * (size_t)a, wb + 4 * (size_t)a, (size_t)(rows - 4) * a, SCORE_ATOL, 0);
	}
	return fails;
}

// The raw head maps kept for the validation loss (keep_heads, memory otherwise reused) are the
// decode's inputs: decoded on the CPU they give the reference outputs (main, and auxiliary for
// dual models).
static int check_heads(const char *name, const struct nn_model *m, const uint8_t *in8, uint32_t n, uint32_t h,
                       uint32_t w, const struct nn_ref_outputs *ref)
{
	struct nn_runner *r = NULL;
	int fails = 0;
	if (nn_runner_create(g.dev, m, &(struct nn_runner_params){ .n = n, .h = h, .w = w, .keep_heads = true }, &r) ||
	    nn_runner_run(r, in8)) {
		nn_runner_destroy(&r);
		printf("FAIL %s heads: run\n", name);
		return 1;
	}
	uint32_t sets = 0, a = nn_runner_anchors(r), rows = nn_runner_rows(r);
	float *maps[NN_DETECT_MAX_LEVELS] = { 0 }, *y = malloc((size_t)n * rows * a * sizeof(float));
	struct nn_shape sh;
	float stride;
	fails += nn_runner_head_info(r, 0, 0, &sets, &sh, &stride) != 0 || sets != (ref->output_aux ? 2u : 1u);
	for (uint32_t k = 0; k < sets && !fails; k++) {
		struct nn_decode_desc d = { .n = n, .nc = m->nc, .reg_max = 16 };
		for (uint32_t l = 0; l < NN_DETECT_MAX_LEVELS && !nn_runner_head_info(r, k, l, &sets, &sh, &stride); l++) {
			d.h[d.nl] = sh.h, d.w[d.nl] = sh.w, d.stride[d.nl] = stride;
			maps[d.nl] = malloc((size_t)n * sh.c * sh.h * sh.w * sizeof(float));
			fails += !maps[d.nl] || nn_runner_read_head(r, k, l, maps[d.nl]) != 0 || sh.c != 64 + m->nc;
			d.nl++;
		}
		if (!fails && y) {
			nn_decode_forward_ref(&d, (const float *const *)maps, y);
			char what[96];
			snprintf(what, sizeof(what), "%s heads set %u decoded", name, k);
			fails += compare_output(what, y, sets == 2 && k == 0 ? ref->output_aux : ref->output, n, rows, a);
		}
		for (uint32_t l = 0; l < NN_DETECT_MAX_LEVELS; l++)
			free(maps[l]), maps[l] = NULL;
	}
	if (fails)
		printf("FAIL %s heads (%u sets)\n", name, sets);
	free(y);
	nn_runner_destroy(&r);
	return fails;
}

static int check_model(const struct nn_value *arch, const char *name, bool fuse, uint32_t n, uint32_t h, uint32_t w)
{
	struct nn_model *m = NULL;
	struct nn_runner *r = NULL;
	struct nn_ref_outputs ref = { .keep_layers = true };
	size_t nin = (size_t)n * 3 * h * w;
	uint8_t *in8 = malloc(nin);
	float *in = malloc(nin * sizeof(float)), *buf = NULL;
	int fails = 0;
	for (size_t i = 0; i < nin; i++) {
		in8[i] = (uint8_t)((i * 2654435761u) >> 13);
		in[i] = (float)in8[i] / 255.0f;
	}
	struct nn_runner_params rp = { .n = n, .h = h, .w = w, .keep_layers = true };
	if (nn_model_create(arch, NULL, &(struct nn_model_params){ .fuse = fuse, .random_seed = 7 }, &m) ||
	    nn_runner_create(g.dev, m, &rp, &r) || nn_runner_run(r, in8) ||
	    nn_model_forward_ref(m, n, h, w, in, &ref)) {
		printf("FAIL %s: build or run\n", name);
		fails++;
		goto done;
	}
	uint32_t checked = 0;
	for (uint32_t i = 0; i < m->n_layers; i++) {
		for (uint32_t k = 0; k < m->layers[i].n_out; k++) {
			size_t j = (size_t)i * NN_LAYER_MAX_OUTS + k;
			struct nn_shape s;
			if (nn_runner_layer_shape(r, i, k, &s) || s.c != ref.layer_shape[j].c || s.h != ref.layer_shape[j].h ||
			    s.w != ref.layer_shape[j].w) {
				printf("FAIL %s layer %u.%u: shape\n", name, i, k);
				fails++;
				continue;
			}
			size_t cnt = (size_t)n * s.c * s.h * s.w;
			free(buf);
			buf = malloc(cnt * sizeof(float));
			char what[96];
			snprintf(what, sizeof(what), "%s layer %u.%u (%s)", name, i, k, m->layers[i].module);
			if (nn_runner_read_layer(r, i, k, buf))
				fails++;
			else if (strcmp(m->layers[i].module, "DDetect") && strcmp(m->layers[i].module, "DualDDetect"))
				fails += compare(what, buf, ref.layer[j], cnt, 0), checked++;
		}
	}
	uint32_t a = nn_runner_anchors(r), rows = nn_runner_rows(r);
	size_t no = (size_t)n * rows * a;
	float *out = malloc(no * sizeof(float)), *again = malloc(no * sizeof(float));
	if (a != ref.a || rows != ref.rows || nn_runner_read_output(r, false, out)) {
		printf("FAIL %s: output shape %ux%u vs %ux%u\n", name, rows, a, ref.rows, ref.a);
		fails++;
	} else {
		fails += compare_output(name, out, ref.output, n, rows, a);
		// Replay: bit-identical.
		if (nn_runner_run(r, in8) || nn_runner_read_output(r, false, again) || memcmp(out, again, no * 4)) {
			printf("FAIL %s: replay differs\n", name);
			fails++;
		}
	}
	if (ref.output_aux) {
		if (!nn_runner_has_aux(r) || nn_runner_read_output(r, true, out))
			fails++;
		else
			fails += compare_output("aux", out, ref.output_aux, n, rows, a);
	}
	free(out), free(again);
	struct nn_runner_stats st;
	nn_runner_stats(r, &st);
	printf("%s %s %ux3x%ux%u: %u layers checked, %u ops, %u dispatches, %u barriers, %.3f GFLOP, weights %.1f MB\n",
	       name, fuse ? "fused" : "unfused", n, h, w, checked, m->n_ops, st.dispatches, st.barriers, st.gflop,
	       st.weight_bytes / 1e6);
	// The plan without keep_layers must reuse memory; here also cut into 256 KiB buffers (like a device
	// that binds little), which must not change a bit of the output.
	nn_runner_destroy(&r);
	rp.keep_layers = false;
	rp.arena_chunk = 256 << 10;
	if (nn_runner_create(g.dev, m, &rp, &r) || nn_runner_run(r, in8) || !(out = malloc(no * 4)) ||
	    nn_runner_read_output(r, false, out)) {
		fails++;
	} else {
		nn_runner_stats(r, &st);
		printf("  activations %.2f MB planned in %u buffers vs %.2f MB one-per-tensor\n", st.activation_bytes / 1e6,
		       st.activation_buffers, st.activation_naive_bytes / 1e6);
		if (st.activation_buffers < (st.activation_bytes + (256 << 10) - 1) / (256 << 10)) {
			printf("FAIL %s: the arena was not cut into enough buffers of 256 KiB\n", name);
			fails++;
		}
		if (st.activation_bytes * 2 > st.activation_naive_bytes) {
			printf("FAIL %s: activation plan reuses too little\n", name);
			fails++;
		}
		fails += compare_output("reused plan", out, ref.output, n, rows, a);
		free(out);
	}
	fails += check_heads(name, m, in8, n, h, w, &ref);
done:
	free(buf), free(in), free(in8);
	nn_ref_outputs_finish(&ref);
	nn_runner_destroy(&r);
	nn_model_destroy(&m);
	return fails;
}

// Input-size dependent values are push constants: a runner at another input size and aspect ratio
// (a detect over mixed images) must reuse every pipeline and create none.
static int check_pipelines_shared(const struct nn_value *arch, const char *name)
{
	static const uint32_t sizes[3][2] = { { 64, 96 }, { 160, 128 }, { 96, 320 } };
	struct nn_model *m = NULL;
	struct gpu_kernel_stats k0, k1;
	int fails = 0;
	if (nn_model_create(arch, NULL, &(struct nn_model_params){ .fuse = true, .random_seed = 7 }, &m)) {
		printf("FAIL %s: build\n", name);
		return 1;
	}
	for (int i = 0; i < 3 && !fails; i++) {
		struct nn_runner *r = NULL;
		gpu_device_kernel_stats(g.dev, &k0);
		if (nn_runner_create(g.dev, m, &(struct nn_runner_params){ .n = 1, .h = sizes[i][0], .w = sizes[i][1] }, &r)) {
			printf("FAIL %s: runner at %ux%u\n", name, sizes[i][0], sizes[i][1]);
			fails++;
		}
		gpu_device_kernel_stats(g.dev, &k1);
		nn_runner_destroy(&r);
		printf("%s runner at %ux%u: %u new pipelines\n", name, sizes[i][0], sizes[i][1], k1.created - k0.created);
		if (i > 0 && k1.created != k0.created) {
			printf("FAIL %s: %u pipelines compiled for a new input size\n", name, k1.created - k0.created);
			fails++;
		}
	}
	nn_model_destroy(&m);
	return fails;
}

int main(void)
{
	static const char *const yamls[] = { "gelan-c-quarter", "yolov9-c-quarter" };
	char path[512];
	snprintf(path, sizeof(path), "%s/oracle/%s.yaml", test_shared_dir(), yamls[0]);
	FILE *f = fopen(path, "rb");
	if (!f) {
		printf("skip: %s not found (set VKYOLO_SHARED)\n", path);
		return TEST_SKIP;
	}
	fclose(f);
	int fails = 0, ret = test_gpu_open(&g);
	if (ret)
		return ret;
	for (int i = 0; i < 2; i++) {
		struct nn_value *arch = NULL;
		snprintf(path, sizeof(path), "%s/oracle/%s.yaml", test_shared_dir(), yamls[i]);
		if (nn_yaml_read_file(path, &arch)) {
			printf("FAIL reading %s\n", path);
			fails++;
			continue;
		}
		fails += check_model(arch, yamls[i], true, 2, 64, 96);
		fails += check_model(arch, yamls[i], false, 1, 96, 64);
		fails += check_pipelines_shared(arch, yamls[i]);
		nn_value_destroy(&arch);
	}
	fails += test_gpu_close(&g);
	printf("%s\n", fails ? "FAILED" : "all passed");
	return fails ? 1 : 0;
}
