// Model graph construction: every official t/s/m/c/e GELAN and YOLOv9 description (assets/models)
// built with random weights must give the parameter counts of the spec (section 10.2, re-derived
// from the PyTorch modules), the channel quirks (AConv 180 -> 184, yolov9-c auxiliary head widths),
// free concats; fused and unfused forwards must agree; bad descriptions and weights must fail with
// a message naming the layer.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "checkpoint.h"
#include "log.h"
#include "model.h"
#include "yaml_read.h"

#ifndef VKYOLO_SOURCE_ROOT
#define VKYOLO_SOURCE_ROOT "."
#endif

// Fused vs unfused forward: same math, different rounding (BN folded into the kernel before the sum).
// Boxes: pixels of a 64..96 px input. Scores: random weights give large logits, so the sigmoid sees
// ~1e-5 relative logit noise; 1e-4 is the tolerance used against the oracle too.
#define FUSE_BOX_ATOL 2e-3
#define FUSE_SCORE_ATOL 1e-4

static char last_err[1024];
static void sink(enum gpu_log_level level, const char *msg, void *user)
{
	(void)user;
	if (level == GPU_LOG_ERROR)
		snprintf(last_err, sizeof(last_err), "%s", msg);
}

static const struct {
	const char *name;
	uint64_t unfused, fused; // totals of spec 10.2, DFL weights (16 per head set) included
} models[] = {
	{"gelan-t", 2442640, 2407632},   {"gelan-s", 7226208, 7105888},   {"gelan-m", 20124000, 19978672},
	{"gelan-c", 25498752, 25288768}, {"gelan-e", 58114432, 57345920}, {"yolov9-t", 3717680, 3674576},
	{"yolov9-s", 9804512, 9659168},  {"yolov9-m", 32878432, 32667400}, {"yolov9-c", 51182080, 50880768},
	{"yolov9-e", 69529664, 68669632},
};

static int load_asset(const char *name, struct nn_value **arch)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/assets/models/%s.yaml", VKYOLO_SOURCE_ROOT, name);
	int ret = nn_yaml_read_file(path, arch);
	if (ret)
		printf("FAIL reading %s: %d\n", path, ret);
	return ret;
}

static const struct nn_op *find_op(const struct nn_model *m, const char *name)
{
	for (uint32_t i = 0; i < m->n_ops; i++)
		if (!strcmp(m->ops[i].name, name))
			return &m->ops[i];
	return NULL;
}

static int check_quirks(const char *name, const struct nn_model *m)
{
	int fails = 0;
	uint32_t copies = 0;
	for (uint32_t i = 0; i < m->n_ops; i++)
		copies += m->ops[i].kind == NN_OP_RESIZE && m->ops[i].scale == 1 && !m->ops[i].accumulate;
	// GELAN models: every Concat input is written in place (CBFuse's own copy is the only exception).
	if (!strncmp(name, "gelan-", 6) && strcmp(name, "gelan-e") && copies) {
		printf("FAIL %s: %u concat copies, expected none\n", name, copies);
		fails++;
	}
	if (!strcmp(name, "gelan-m") && m->layers[16].out[0].c != 184) {
		printf("FAIL gelan-m layer 16 (AConv 180) has %u channels, expected make_divisible -> 184\n",
		       m->layers[16].out[0].c);
		fails++;
	}
	if (!strcmp(name, "yolov9-c")) {
		static const struct {
			const char *op;
			uint32_t c, groups;
		} w[] = {{"model.38.cv2.0.0", 128, 1}, {"model.38.cv2.0.1", 128, 4}, {"model.38.cv2.0.2", 64, 4},
		         {"model.38.cv3.0.0", 512, 1}, {"model.38.cv4.0.0", 64, 1},  {"model.38.cv4.2.1", 64, 4},
		         {"model.38.cv5.1.0", 256, 1}, {"model.38.cv5.2.2", 80, 1}};
		for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
			const struct nn_op *op = find_op(m, w[i].op);
			if (!op || op->y.c != w[i].c || op->groups != w[i].groups) {
				printf("FAIL yolov9-c %s: c_out %u groups %u, expected %u / %u\n", w[i].op, op ? op->y.c : 0,
				       op ? op->groups : 0, w[i].c, w[i].groups);
				fails++;
			}
		}
	}
	return fails;
}

static int check_counts(void)
{
	int fails = 0;
	for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
		struct nn_value *arch = NULL;
		if (load_asset(models[i].name, &arch)) {
			fails++;
			continue;
		}
		for (int fuse = 0; fuse <= 1; fuse++) {
			struct nn_model *m = NULL;
			struct nn_model_params p = {.fuse = fuse, .random_seed = 7};
			int ret = nn_model_create(arch, NULL, &p, &m);
			if (ret) {
				printf("FAIL %s (fuse %d): create %d: %s\n", models[i].name, fuse, ret, last_err);
				fails++;
				continue;
			}
			uint64_t got = nn_model_param_count(m) + 16ull * m->n_head_sets;
			uint64_t want = fuse ? models[i].fused : models[i].unfused;
			printf("%s %-9s %s: %u layers, %u ops, %llu parameters (spec %llu), strides %g/%g/%g\n",
			       got == want ? "ok  " : "FAIL", models[i].name, fuse ? "fused" : "unfused", m->n_layers, m->n_ops,
			       (unsigned long long)got, (unsigned long long)want, m->stride[0], m->stride[1], m->stride[2]);
			fails += got != want;
			if (m->stride[0] != 8 || m->stride[1] != 16 || m->stride[2] != 32) {
				printf("FAIL %s strides\n", models[i].name);
				fails++;
			}
			if (!fuse)
				fails += check_quirks(models[i].name, m);
			nn_model_destroy(&m);
		}
		nn_value_destroy(&arch);
	}
	return fails;
}

static int compare_outputs(const char *what, const float *a, const float *b, uint32_t rows, uint32_t an)
{
	double mb = 0, ms = 0;
	for (size_t i = 0; i < (size_t)rows * an; i++) {
		double d = fabs((double)a[i] - b[i]);
		if (isnan(a[i]) || isnan(b[i]))
			d = INFINITY;
		if (i < 4 * (size_t)an)
			mb = fmax(mb, d);
		else
			ms = fmax(ms, d);
	}
	bool ok = mb <= FUSE_BOX_ATOL && ms <= FUSE_SCORE_ATOL;
	printf("%s fused vs unfused %s: boxes max abs %.3g px, scores max abs %.3g\n", ok ? "ok  " : "FAIL", what, mb, ms);
	return ok ? 0 : 1;
}

// Random weights, fused and unfused, small input: both graphs must compute the same function.
static int check_fuse_equivalence(const char *name, uint32_t h, uint32_t w)
{
	struct nn_value *arch = NULL;
	struct nn_model *mu = NULL, *mf = NULL;
	struct nn_ref_outputs ou = {0}, of = {0};
	int fails = 0;
	if (load_asset(name, &arch))
		return 1;
	float *x = malloc((size_t)2 * 3 * h * w * sizeof(float));
	for (size_t i = 0; x && i < (size_t)2 * 3 * h * w; i++)
		x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
	if (!x || nn_model_create(arch, NULL, &(struct nn_model_params){.random_seed = 3}, &mu) ||
	    nn_model_create(arch, NULL, &(struct nn_model_params){.random_seed = 3, .fuse = true}, &mf) ||
	    nn_model_forward_ref(mu, 2, h, w, x, &ou) || nn_model_forward_ref(mf, 2, h, w, x, &of)) {
		printf("FAIL %s: build or forward: %s\n", name, last_err);
		fails++;
		goto done;
	}
	fails += compare_outputs(name, of.output, ou.output, of.rows, of.n * of.a);
	if (mu->output_aux != NN_NO_TENSOR)
		fails += compare_outputs("(aux)", of.output_aux, ou.output_aux, of.rows, of.n * of.a);
done:
	nn_ref_outputs_finish(&ou);
	nn_ref_outputs_finish(&of);
	nn_model_destroy(&mu);
	nn_model_destroy(&mf);
	nn_value_destroy(&arch);
	free(x);
	return fails;
}

// Builds `text` and expects `want` with an error message containing both needles.
static int expect_error(const char *what, const char *text, const struct nn_tensor_map *state, int want,
                        const char *needle1, const char *needle2)
{
	struct nn_value *arch = NULL;
	struct nn_model *m = NULL;
	int ret = nn_yaml_read_string(text, strlen(text), what, &arch);
	last_err[0] = 0;
	if (!ret)
		ret = nn_model_create(arch, state, &(struct nn_model_params){0}, &m);
	bool ok = ret == want && !m && strstr(last_err, needle1) && strstr(last_err, needle2);
	printf("%s error %s: %d '%s'\n", ok ? "ok  " : "FAIL", what, ret, last_err);
	nn_model_destroy(&m);
	nn_value_destroy(&arch);
	return ok ? 0 : 1;
}

#define HEAD "nc: 2\ndepth_multiple: 1.0\nwidth_multiple: 1.0\nbackbone:\n  [[-1, 1, Conv, [16, 3, 2]],\n"

static int check_errors(void)
{
	int fails = 0;
	fails += expect_error("unknown module", HEAD "   [-1, 1, Foo, [16]]]\nhead: []\n", NULL, -ENOTSUP, "layer 1",
	                      "Foo");
	fails += expect_error("bad from", HEAD "   [[-1, 5], 1, Concat, [1]]]\nhead: []\n", NULL, -EINVAL, "layer 1",
	                      "from");
	fails += expect_error("cbfuse channels",
	                      HEAD "   [0, 1, CBLinear, [[8]]],\n   [0, 1, Conv, [16, 3, 1]],\n"
	                           "   [[1, -1], 1, CBFuse, [[0]]]]\nhead: []\n",
	                      NULL, -EINVAL, "layer 3", "channels");
	fails += expect_error("row form", HEAD "   [-1, Conv, [16]]]\nhead: []\n", NULL, -EINVAL, "layer 1", "row");
	fails += expect_error("no head", HEAD "   [-1, 1, Conv, [16, 3, 2]]]\nhead: []\n", NULL, -EINVAL, "DDetect", "");
	fails += expect_error("odd ELAN split", HEAD "   [-1, 1, ELAN1, [16, 15, 8]]]\nhead: []\n", NULL, -EINVAL,
	                      "layer 1", "c3");
	return fails;
}

// Missing and mis-shaped tensors in a real state dict, and an input size the graph cannot take.
static int check_state_errors(void)
{
	char path[512];
	struct nn_checkpoint *ck = NULL;
	int fails = 0;
	snprintf(path, sizeof(path), "%s/oracle/gelan-t.pt", test_shared_dir());
	FILE *f = fopen(path, "rb");
	if (!f) {
		printf("skip state errors: %s not found\n", path);
		return 0;
	}
	fclose(f);
	if (nn_checkpoint_load(path, &ck))
		return 1;
	static const char *const victims[2] = {"model.4.cv2.0.m.1.cv1.conv1.bn.running_var", "model.22.cv2.0.2.weight"};
	for (int v = 0; v < 2; v++) {
		struct nn_tensor_map *st = NULL;
		struct nn_model *m = NULL;
		nn_tensor_map_create(&st);
		for (size_t i = 0; i < ck->state->count; i++) {
			const struct nn_tensor *t = &ck->state->items[i];
			int64_t shape[NN_MAX_DIMS];
			memcpy(shape, t->shape, sizeof(shape));
			if (!strcmp(t->name, victims[v])) {
				if (v == 0)
					continue; // dropped
				shape[1] = 8; // [64, 16, 1, 1] -> [64, 8, 1, 1]
			}
			nn_tensor_map_add(st, t->name, t->dtype, t->ndim, shape, t->data);
		}
		last_err[0] = 0;
		int ret = nn_model_create(ck->arch, st, &(struct nn_model_params){.fuse = true}, &m);
		const char *layer = v == 0 ? "layer 4" : "layer 22";
		bool ok = ret == -EINVAL && !m && strstr(last_err, victims[v]) && strstr(last_err, layer);
		printf("%s error %s tensor: %d '%s'\n", ok ? "ok  " : "FAIL", v == 0 ? "missing" : "mis-shaped", ret, last_err);
		fails += !ok;
		nn_model_destroy(&m);
		nn_tensor_map_destroy(&st);
	}
	struct nn_model *m = NULL;
	struct nn_ref_outputs out = {0};
	if (nn_model_create(ck->arch, ck->state, &(struct nn_model_params){.fuse = true}, &m)) {
		fails++;
	} else {
		float *x = calloc(3 * 90 * 90, sizeof(float));
		int ret = nn_model_forward_ref(m, 1, 90, 90, x, &out);
		bool ok = ret == -EINVAL && !out.output;
		printf("%s error input 90x90 (P4 upsampled to 6x6 meets P3 5x5): %d '%s'\n", ok ? "ok  " : "FAIL", ret, last_err);
		fails += !ok;
		free(x);
	}
	nn_model_destroy(&m);
	nn_checkpoint_destroy(&ck);
	return fails;
}

// YAML (None, nc stay strings) vs the pickled dict (None is NONE): same rows otherwise.
static bool value_equal(const struct nn_value *a, const struct nn_value *b)
{
	bool a_none = a->kind == NN_VALUE_NONE || (a->kind == NN_VALUE_STR && !strcmp(a->u.s, "None"));
	bool b_none = b->kind == NN_VALUE_NONE || (b->kind == NN_VALUE_STR && !strcmp(b->u.s, "None"));
	double x, y;
	if (a_none || b_none)
		return a_none && b_none;
	if (a->kind == NN_VALUE_STR || b->kind == NN_VALUE_STR)
		return a->kind == b->kind && !strcmp(a->u.s, b->u.s);
	if (a->kind == NN_VALUE_LIST || b->kind == NN_VALUE_LIST) {
		if (a->kind != b->kind || nn_value_len(a) != nn_value_len(b))
			return false;
		for (size_t i = 0; i < nn_value_len(a); i++)
			if (!value_equal(nn_value_list_at(a, i), nn_value_list_at(b, i)))
				return false;
		return true;
	}
	return nn_value_as_double(a, &x) && nn_value_as_double(b, &y) && x == y;
}

// Our description files against the architecture dicts stored in the oracle checkpoints.
static int check_assets_vs_checkpoints(void)
{
	static const char *const pairs[4][2] = {{"assets", "gelan-t"}, {"assets", "yolov9-t"},
	                                        {"oracle", "yolov9-c-quarter"}, {"oracle", "gelan-c-quarter-converted"}};
	int fails = 0;
	for (int i = 0; i < 4; i++) {
		char path[512];
		struct nn_checkpoint *ck = NULL;
		struct nn_value *arch = NULL;
		snprintf(path, sizeof(path), "%s/oracle/%s.pt", test_shared_dir(), pairs[i][1]);
		FILE *f = fopen(path, "rb");
		if (!f)
			continue;
		fclose(f);
		if (nn_checkpoint_load(path, &ck) || !ck->arch) {
			fails++;
			continue;
		}
		if (!strcmp(pairs[i][0], "assets"))
			fails += load_asset(pairs[i][1], &arch) != 0;
		else {
			snprintf(path, sizeof(path), "%s/oracle/%s.yaml", test_shared_dir(),
			         strstr(pairs[i][1], "gelan") ? "gelan-c-quarter" : pairs[i][1]);
			fails += nn_yaml_read_file(path, &arch) != 0;
		}
		bool ok = arch != NULL;
		for (int part = 0; ok && part < 2; part++) {
			const char *key = part ? "head" : "backbone";
			const struct nn_value *a = nn_value_dict_get(arch, key), *b = nn_value_dict_get(ck->arch, key);
			ok = a && b && value_equal(a, b);
		}
		printf("%s %s description equals the checkpoint's yaml dict\n", ok ? "ok  " : "FAIL", pairs[i][1]);
		fails += !ok;
		nn_value_destroy(&arch);
		nn_checkpoint_destroy(&ck);
	}
	return fails;
}

// Export of the official names: the unfused model gives back every checkpoint tensor exactly (fp16
// values are exact in f32); a fused model's export loads again (RepConvN saved fused) and computes
// bit-identical outputs.
static int check_export(void)
{
	char path[512];
	struct nn_checkpoint *ck = NULL;
	struct nn_model *mu = NULL, *mf = NULL, *m2 = NULL;
	struct nn_tensor_map *su = NULL, *sf = NULL;
	struct nn_ref_outputs o1 = {0}, o2 = {0};
	int fails = 0;
	snprintf(path, sizeof(path), "%s/oracle/gelan-t.pt", test_shared_dir());
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	fclose(f);
	float *x = calloc(3 * 64 * 64, sizeof(float));
	for (int i = 0; x && i < 3 * 64 * 64; i++)
		x[i] = (float)(i % 251) / 251.0f;
	if (!x || nn_checkpoint_load(path, &ck) || nn_model_create(ck->arch, ck->state, &(struct nn_model_params){0}, &mu) ||
	    nn_model_create(ck->arch, ck->state, &(struct nn_model_params){.fuse = true}, &mf) ||
	    nn_tensor_map_create(&su) || nn_tensor_map_create(&sf) || nn_model_export_state(mu, su) ||
	    nn_model_export_state(mf, sf)) {
		printf("FAIL export setup: %s\n", last_err);
		fails++;
		goto done;
	}
	size_t expected = 0, mismatched = 0;
	for (size_t i = 0; i < ck->state->count; i++) {
		const struct nn_tensor *t = &ck->state->items[i];
		if (strstr(t->name, "num_batches_tracked"))
			continue;
		expected++;
		const struct nn_tensor *e = nn_tensor_map_find(su, t->name);
		bool same = e && nn_tensor_numel(e) == nn_tensor_numel(t);
		for (int64_t k = 0; same && k < nn_tensor_numel(t); k++)
			same = nn_tensor_get_f32(e, k) == nn_tensor_get_f32(t, k);
		if (!same && !mismatched++)
			printf("FAIL export: tensor %s %s\n", t->name, e ? "differs" : "missing");
	}
	bool ok = !mismatched && su->count == expected;
	printf("%s unfused export: %zu tensors, %zu expected, %zu mismatched\n", ok ? "ok  " : "FAIL", su->count, expected,
	       mismatched);
	fails += !ok;
	if (nn_model_create(ck->arch, sf, &(struct nn_model_params){.fuse = true}, &m2) ||
	    nn_model_forward_ref(mf, 1, 64, 64, x, &o1) || nn_model_forward_ref(m2, 1, 64, 64, x, &o2)) {
		printf("FAIL fused export reload: %s\n", last_err);
		fails++;
		goto done;
	}
	ok = m2->n_ops == mf->n_ops && !memcmp(o1.output, o2.output, (size_t)o1.rows * o1.a * sizeof(float));
	printf("%s fused export (%zu tensors) reloads to identical outputs\n", ok ? "ok  " : "FAIL", sf->count);
	fails += !ok;
done:
	nn_ref_outputs_finish(&o1);
	nn_ref_outputs_finish(&o2);
	nn_model_destroy(&mu);
	nn_model_destroy(&mf);
	nn_model_destroy(&m2);
	nn_tensor_map_destroy(&su);
	nn_tensor_map_destroy(&sf);
	nn_checkpoint_destroy(&ck);
	free(x);
	return fails;
}

int main(void)
{
	gpu_log_init(GPU_LOG_WARN, sink, NULL);
	int fails = check_counts();
	fails += check_fuse_equivalence("gelan-t", 64, 96);
	fails += check_fuse_equivalence("yolov9-t", 64, 64);
	fails += check_fuse_equivalence("yolov9-m", 64, 64);
	fails += check_errors();
	fails += check_state_errors();
	fails += check_assets_vs_checkpoints();
	fails += check_export();
	printf("%s\n", fails ? "FAILED" : "all passed");
	return fails ? 1 : 0;
}
