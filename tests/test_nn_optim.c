// Unit test of the reference optimizer (nn/optim_ref.h) on a tiny random model (3 convs + DDetect):
// three SGD steps with random gradients against a double-precision replica of torch.optim.SGD
// (Nesterov, dampening 0) whose parameter groups come from the official names (decay on every
// `weight` except BatchNorm's), and gradient-norm clipping against direct sums.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "log.h"
#include "optim_ref.h"
#include "yaml_read.h"

// fp32 update of values of order 1 against the double replica: a few ulps per step.
#define RTOL 1e-6
#define ATOL 1e-7

static const char *tiny = "nc: 2\ndepth_multiple: 1.0\nwidth_multiple: 1.0\nbackbone:\n"
                          "  [[-1, 1, Conv, [16, 3, 2]],\n   [-1, 1, Conv, [16, 3, 2]],\n   [-1, 1, Conv, [16, 3, 2]]]\n"
                          "head:\n  [[[0, 1, 2], 1, DDetect, [nc]]]\n";

static uint32_t rng = 99;
static float frand(void)
{
	rng = rng * 1664525u + 1013904223u;
	return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

static void fill_grads(const struct nn_model *m, struct nn_model_grads *g, float scale)
{
	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct nn_op *op = &m->ops[i];
		if (op->kind != NN_OP_CONV)
			continue;
		size_t nw = (size_t)op->y.c * (op->x.c / op->groups) * op->k * op->k;
		for (size_t k = 0; k < nw; k++)
			g->w[i][k] = frand() * scale;
		for (uint32_t k = 0; g->b[i] && k < op->y.c; k++)
			g->b[i][k] = frand() * scale;
		for (uint32_t k = 0; g->gamma[i] && k < op->y.c; k++)
			g->gamma[i][k] = frand() * scale, g->beta[i][k] = frand() * scale;
	}
}

static int check_sgd(struct nn_model *m)
{
	struct nn_model_grads *g = NULL;
	struct nn_sgd *opt = NULL;
	struct nn_tensor_map *p0 = NULL;
	CHECK(nn_model_grads_create(m, &g) == 0 && nn_sgd_create(m, &opt) == 0);
	CHECK(nn_tensor_map_create(&p0) == 0 && nn_model_export_state(m, p0) == 0);
	// replica state per exported tensor: params and momentum buffers in double
	double **p = calloc(p0->count, sizeof(double *)), **buf = calloc(p0->count, sizeof(double *));
	CHECK(p && buf);
	for (size_t t = 0; t < p0->count; t++) {
		size_t cnt = (size_t)nn_tensor_numel(&p0->items[t]);
		CHECK((p[t] = calloc(cnt, sizeof(double))) && (buf[t] = calloc(cnt, sizeof(double))));
		for (size_t k = 0; k < cnt; k++)
			p[t][k] = nn_tensor_get_f32(&p0->items[t], k);
	}
	const struct nn_sgd_params sp = {.lr = 0.01f, .momentum = 0.937f, .weight_decay = 5e-4f, .nesterov = true};
	int fails = 0;
	size_t n_decay = 0, n_plain = 0;
	for (int step = 0; step < 3; step++) {
		struct nn_tensor_map *gm = NULL, *now = NULL;
		fill_grads(m, g, 2.0f);
		CHECK(nn_tensor_map_create(&gm) == 0 && nn_model_grads_export(m, g, "", gm) == 0);
		CHECK(nn_sgd_step_ref(opt, m, g, &sp) == 0);
		CHECK(nn_tensor_map_create(&now) == 0 && nn_model_export_state(m, now) == 0);
		double worst = 0.0;
		const char *worst_name = "";
		for (size_t t = 0; t < p0->count; t++) {
			const char *name = p0->items[t].name;
			const struct nn_tensor *gt = nn_tensor_map_find(gm, name), *pt = nn_tensor_map_find(now, name);
			if (!gt) // buffers (running stats) and the fixed DFL weights: not parameters, unchanged
				continue;
			bool decay = ends_with(name, "weight") && !ends_with(name, "bn.weight");
			if (step == 0)
				decay ? n_decay++ : n_plain++;
			for (int64_t k = 0; k < nn_tensor_numel(gt); k++) {
				double d = nn_tensor_get_f32(gt, k) + (decay ? (double)sp.weight_decay * p[t][k] : 0.0);
				buf[t][k] = step == 0 ? d : sp.momentum * buf[t][k] + d;
				p[t][k] -= sp.lr * (d + sp.momentum * buf[t][k]);
				double got = nn_tensor_get_f32(pt, k), excess = fabs(got - p[t][k]) - (ATOL + RTOL * fabs(p[t][k]));
				if (excess > worst)
					worst = excess, worst_name = name;
			}
		}
		bool ok = worst <= 0.0;
		printf("%s sgd step %d: %zu decayed + %zu plain tensors vs double replica%s%s\n", ok ? "ok  " : "FAIL", step,
		       n_decay, n_plain, ok ? "" : ", worst ", ok ? "" : worst_name);
		fails += !ok;
		nn_tensor_map_destroy(&gm);
		nn_tensor_map_destroy(&now);
	}
	CHECK(n_decay > 0 && n_plain > 0);
	for (size_t t = 0; t < p0->count; t++)
		free(p[t]), free(buf[t]);
	free(p), free(buf);
	nn_tensor_map_destroy(&p0);
	nn_sgd_destroy(&opt);
	nn_model_grads_destroy(&g);
	return fails;
}

static int check_clip(struct nn_model *m)
{
	struct nn_model_grads *g = NULL, *g0 = NULL;
	struct nn_tensor_map *a = NULL, *b = NULL;
	CHECK(nn_model_grads_create(m, &g) == 0 && nn_model_grads_create(m, &g0) == 0);
	fill_grads(m, g, 1.0f);
	CHECK(nn_tensor_map_create(&a) == 0 && nn_model_grads_export(m, g, "", a) == 0);
	double sum = 0.0; // direct sum of squares over the exported (named) gradients
	for (size_t t = 0; t < a->count; t++)
		for (int64_t k = 0; k < nn_tensor_numel(&a->items[t]); k++)
			sum += (double)nn_tensor_get_f32(&a->items[t], k) * nn_tensor_get_f32(&a->items[t], k);
	double want = sqrt(sum), norm_big = nn_model_grads_clip_ref(g, m, 2.0 * want); // no clipping
	double norm = nn_model_grads_clip_ref(g, m, 10.0);
	CHECK(nn_tensor_map_create(&b) == 0 && nn_model_grads_export(m, g, "", b) == 0);
	double coef = 10.0 / (want + 1e-6), worst = 0.0;
	for (size_t t = 0; t < a->count; t++)
		for (int64_t k = 0; k < nn_tensor_numel(&a->items[t]); k++) {
			double w = nn_tensor_get_f32(&a->items[t], k) * coef;
			worst = fmax(worst, fabs(nn_tensor_get_f32(&b->items[t], k) - w) - 1e-6 * fabs(w));
		}
	double after = nn_model_grads_norm(g, m);
	// norms: the same double sums in another order; scaled entries: one fp32 multiply
	bool ok = fabs(norm - want) <= 1e-12 * want && fabs(norm_big - want) <= 1e-12 * want && worst <= 0.0 &&
	          fabs(after - 10.0) <= 1e-5;
	printf("%s clip: norm %.9g (direct %.9g), after clipping %.7f, worst entry excess %.3g\n", ok ? "ok  " : "FAIL",
	       norm, want, after, worst);
	nn_tensor_map_destroy(&a);
	nn_tensor_map_destroy(&b);
	nn_model_grads_destroy(&g);
	nn_model_grads_destroy(&g0);
	return ok ? 0 : 1;
}

// The EMA ramp against the official formula as Python evaluates it (0.9999 * (1 - math.exp(-u / 2000)),
// values printed by CPython: the same libm exp, so a few ulp at most) and against the mathematically
// equal 0.9999 * -expm1(-u / 2000) (1 - exp(-u/2000) cancels ~11 bits at u = 1: 1e-12 relative);
// then one EMA update against a double blend (two fp32 products and one fp32 add: 1e-6 relative).
static int check_ema(void)
{
	const struct {
		uint64_t updates;
		double want;
	} cases[] = { { 1, 0.000499825033328626 }, { 2000, 0.6320573467726748 }, { 100000, 0.9999 } };
	int fails = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double got = nn_ema_decay(cases[i].updates), alt = 0.9999 * -expm1(-(double)cases[i].updates / 2000.0);
		bool ok = fabs(got - cases[i].want) <= 1e-15 * cases[i].want && fabs(got - alt) <= 1e-12 * alt;
		printf("%s ema decay(%llu) = %.17g (want %.17g)\n", ok ? "ok  " : "FAIL",
		       (unsigned long long)cases[i].updates, got, cases[i].want);
		fails += !ok;
	}
	float ema[64], cur[64], orig[64];
	double d = nn_ema_decay(2000), worst = 0.0;
	for (int k = 0; k < 64; k++)
		orig[k] = ema[k] = frand() * 3.0f, cur[k] = frand();
	nn_ema_update_ref(ema, cur, 64, d);
	for (int k = 0; k < 64; k++) {
		double want = d * orig[k] + (1.0 - d) * cur[k];
		worst = fmax(worst, fabs(ema[k] - want) - (1e-7 + 1e-6 * fabs(want)));
	}
	printf("%s ema update: 64 floats vs double blend, worst excess %.3g\n", worst <= 0.0 ? "ok  " : "FAIL", worst);
	return fails + (worst > 0.0);
}

int main(void)
{
	gpu_log_init(GPU_LOG_WARN, NULL, NULL);
	struct nn_value *arch = NULL;
	struct nn_model *m = NULL;
	if (nn_yaml_read_string(tiny, strlen(tiny), "tiny", &arch) ||
	    nn_model_create(arch, NULL, &(struct nn_model_params){.random_seed = 1}, &m)) {
		printf("FAIL building the tiny model\n");
		return 1;
	}
	int fails = check_sgd(m) + check_clip(m) + check_ema();
	nn_model_destroy(&m);
	nn_value_destroy(&arch);
	printf(fails ? "FAILED\n" : "all passed\n");
	return fails ? 1 : 0;
}
