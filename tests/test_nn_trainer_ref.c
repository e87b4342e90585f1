// Unit test of the CPU reference backend of nn/trainer.h on gelan-t with random weights, batch 2 at
// 64 x 64 with a few targets, against direct calls of the references it is built on:
//   (a) two forward_backward calls without zero_grad give twice the gradients of one, and one gives
//       the gradients of nn_model_loss_grads_ref;
//   (b) a step with lr 0 (momentum and decay on) leaves every parameter unchanged while the BN
//       running statistics follow nn_model_bn_update_ref;
//   (c) two steps (equal lrs, then a different lr per group) reproduce nn_model_grads_clip_ref +
//       nn_sgd_step_ref on the same gradients, group by group;
//   (d) the EMA after two updates equals the formula e2 = d2 (d1 e0 + (1 - d1) c1) + (1 - d2) c2
//       over parameters and BN running statistics.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "log.h"
#include "optim_ref.h"
#include "trainer.h"
#include "yaml_read.h"

#define N 2
#define HW 64
#define NT 4

static const float targets[NT * 6] = {
	0, 3, 0.30f, 0.40f, 0.20f, 0.30f, 0, 7, 0.70f, 0.60f, 0.40f, 0.50f,
	1, 0, 0.50f, 0.50f, 0.60f, 0.70f, 1, 3, 0.20f, 0.80f, 0.15f, 0.20f,
};
static uint8_t img[N * 3 * HW * HW];
static float imgf[N * 3 * HW * HW];

static bool is_stat(const char *name)
{
	return strstr(name, "running_") != NULL;
}

static bool is_dfl(const char *name)
{
	return strstr(name, ".dfl.") != NULL;
}

static bool in_group(const char *name, int group) // trainer.h groups from the official names
{
	size_t l = strlen(name);
	bool bias = l > 5 && !strcmp(name + l - 5, ".bias");
	bool bnw = l > 10 && !strcmp(name + l - 10, ".bn.weight");
	return group == 0 ? bias : group == 2 ? bnw : !bias && !bnw;
}

// Worst excess of |got - scale * want| over atol + rtol * |scale * want| for the tensors of `want`
// selected by sel(name, arg) (names must exist in got). Prints the worst; returns the excess (<= 0 ok).
static double compare(const char *what, const struct nn_tensor_map *got, const struct nn_tensor_map *want,
                      double scale, double atol, double rtol, bool (*sel)(const char *, int), int arg)
{
	double worst = -INFINITY, wg = 0, ww = 0;
	const char *wname = "";
	int64_t widx = 0;
	size_t n = 0;
	for (size_t t = 0; t < want->count; t++) {
		const struct nn_tensor *b = &want->items[t], *a = nn_tensor_map_find(got, b->name);
		if (sel && !sel(b->name, arg))
			continue;
		if (!a || nn_tensor_numel(a) != nn_tensor_numel(b)) {
			printf("FAIL %s: %s missing or mis-sized\n", what, b->name);
			return INFINITY;
		}
		n++;
		for (int64_t k = 0; k < nn_tensor_numel(b); k++) {
			double x = nn_tensor_get_f32(a, k), y = scale * nn_tensor_get_f32(b, k);
			double e = fabs(x - y) - (atol + rtol * fabs(y));
			if (e > worst)
				worst = e, wname = b->name, widx = k, wg = x, ww = y;
		}
	}
	printf("%s %s: %zu tensors, worst excess %.3g at %s[%lld] (got %.9g want %.9g)\n", worst <= 0 && n ? "ok  " : "FAIL",
	       what, n, worst, wname, (long long)widx, wg, ww);
	return n ? worst : INFINITY;
}

// max |a - b| over the selected tensors (to show that something moved)
static double max_change(const struct nn_tensor_map *a, const struct nn_tensor_map *b, bool (*sel)(const char *, int),
                         int arg)
{
	double m = 0;
	for (size_t t = 0; t < b->count; t++) {
		const struct nn_tensor *y = &b->items[t], *x = nn_tensor_map_find(a, y->name);
		if (!x || (sel && !sel(y->name, arg)))
			continue;
		for (int64_t k = 0; k < nn_tensor_numel(y); k++)
			m = fmax(m, fabs(nn_tensor_get_f32(x, k) - nn_tensor_get_f32(y, k)));
	}
	return m;
}

static bool sel_params(const char *name, int arg)
{
	(void)arg;
	return !is_stat(name) && !is_dfl(name);
}

static bool sel_stats(const char *name, int arg)
{
	(void)arg;
	return is_stat(name);
}

static bool sel_group(const char *name, int group)
{
	return sel_params(name, 0) && in_group(name, group);
}

static bool sel_all(const char *name, int arg)
{
	(void)arg;
	return !is_dfl(name);
}

// The trainer's chosen state as a tensor map (through a host clone of m).
static int state_of(struct nn_trainer *t, const struct nn_model *m, enum nn_trainer_state which,
                    struct nn_tensor_map **out)
{
	struct nn_model *h = NULL;
	*out = NULL;
	int ret = nn_model_clone(m, &h);
	if (!ret)
		ret = nn_trainer_read_state(t, which, h);
	if (!ret)
		ret = nn_tensor_map_create(out);
	if (!ret)
		ret = nn_model_export_state(h, *out);
	nn_model_destroy(&h);
	return ret;
}

static int model_state(const struct nn_model *m, struct nn_tensor_map **out)
{
	int ret = nn_tensor_map_create(out);
	return ret ? ret : nn_model_export_state(m, *out);
}

static int trainer_new(const struct nn_model *m, struct nn_trainer **t)
{
	struct nn_trainer_params p = {.n = N, .h = HW, .w = HW, .cpu_reference = true};
	return nn_trainer_create(NULL, m, &p, t);
}

// Reference gradients of one batch on model c (its BN stats updated like a training forward).
static int ref_grads(struct nn_model *c, struct nn_model_grads *g, struct nn_loss_out *lo)
{
	struct nn_ref_outputs fw = {0};
	int ret = nn_model_loss_grads_ref(c, N, HW, HW, imgf, targets, NT, &fw, lo, g);
	if (!ret)
		ret = nn_model_bn_update_ref(c, &fw, 0.03f);
	nn_ref_outputs_finish(&fw);
	return ret;
}

static int check_accumulate(const struct nn_model *m)
{
	struct nn_trainer *t = NULL;
	struct nn_tensor_map *g1 = NULL, *g2 = NULL, *gr = NULL;
	struct nn_model *c = NULL;
	struct nn_model_grads *g = NULL;
	struct nn_loss_out lo1, lo2, lor;
	CHECK(trainer_new(m, &t) == 0);
	CHECK(nn_trainer_forward_backward(t, img, targets, NT, &lo1) == 0);
	CHECK(nn_tensor_map_create(&g1) == 0 && nn_trainer_export_grads(t, "", g1) == 0);
	CHECK(nn_trainer_forward_backward(t, img, targets, NT, &lo2) == 0);
	CHECK(nn_tensor_map_create(&g2) == 0 && nn_trainer_export_grads(t, "", g2) == 0);
	CHECK(nn_model_clone(m, &c) == 0 && nn_model_grads_create(c, &g) == 0 && ref_grads(c, g, &lor) == 0);
	CHECK(nn_tensor_map_create(&gr) == 0 && nn_model_grads_export(c, g, "", gr) == 0);
	printf("loss %.6f (items %.4f %.4f %.4f), second call %.6f, reference %.6f\n", lo1.loss, lo1.items[0],
	       lo1.items[1], lo1.items[2], lo2.loss, lor.loss);
	// the same deterministic computation: bit-equal; 2 g is exact in fp32
	CHECK(lo1.loss == lor.loss && lo2.loss == lor.loss && lo1.loss > 0);
	int fails = 0;
	fails += compare("(a) one forward_backward vs nn_model_loss_grads_ref", g1, gr, 1.0, 0, 0, NULL, 0) > 0;
	fails += compare("(a) two forward_backward = 2 x one", g2, g1, 2.0, 0, 0, NULL, 0) > 0;
	// the gradients must be non-trivial for the above to mean anything
	struct nn_tensor_map *zero = NULL;
	CHECK(nn_tensor_map_create(&zero) == 0);
	for (size_t k = 0; k < g1->count; k++)
		CHECK(nn_tensor_map_add(zero, g1->items[k].name, NN_DTYPE_F32, g1->items[k].ndim, g1->items[k].shape, NULL) == 0);
	double gmax = max_change(g1, zero, NULL, 0);
	printf("%s (a) largest gradient entry %.4g\n", gmax > 1e-4 ? "ok  " : "FAIL", gmax);
	fails += !(gmax > 1e-4);
	CHECK(nn_trainer_zero_grad(t) == 0);
	nn_tensor_map_destroy(&g2);
	CHECK(nn_tensor_map_create(&g2) == 0 && nn_trainer_export_grads(t, "", g2) == 0);
	fails += compare("(a) zero_grad gives zeros", g2, zero, 1.0, 0, 0, NULL, 0) > 0;
	nn_tensor_map_destroy(&zero);
	nn_tensor_map_destroy(&g1), nn_tensor_map_destroy(&g2), nn_tensor_map_destroy(&gr);
	nn_model_grads_destroy(&g);
	nn_model_destroy(&c);
	nn_trainer_destroy(&t);
	return fails;
}

static int check_lr0(const struct nn_model *m)
{
	struct nn_trainer *t = NULL;
	struct nn_tensor_map *s0 = NULL, *s1 = NULL, *sr = NULL;
	struct nn_model *c = NULL;
	struct nn_model_grads *g = NULL;
	struct nn_loss_out lo;
	CHECK(trainer_new(m, &t) == 0 && model_state(m, &s0) == 0);
	CHECK(nn_trainer_forward_backward(t, img, targets, NT, &lo) == 0);
	struct nn_trainer_step_params sp = {.lr = {0, 0, 0}, .momentum = 0.937f, .weight_decay = 5e-4f,
	                                    .max_grad_norm = 10.0f, .nesterov = true};
	double norm = 0;
	CHECK(nn_trainer_step(t, &sp, &norm) == 0 && norm > 0);
	CHECK(state_of(t, m, NN_TRAINER_CURRENT, &s1) == 0);
	CHECK(nn_model_clone(m, &c) == 0 && nn_model_grads_create(c, &g) == 0 && ref_grads(c, g, &lo) == 0);
	CHECK(model_state(c, &sr) == 0);
	int fails = 0;
	fails += compare("(b) lr 0: parameters unchanged", s1, s0, 1.0, 0, 0, sel_params, 0) > 0;
	fails += compare("(b) lr 0: BN running stats = nn_model_bn_update_ref", s1, sr, 1.0, 0, 0, sel_stats, 0) > 0;
	double moved = max_change(s1, s0, sel_stats, 0);
	printf("%s (b) BN running stats moved by up to %.4g (grad norm %.4f)\n", moved > 1e-3 ? "ok  " : "FAIL", moved, norm);
	fails += !(moved > 1e-3);
	nn_tensor_map_destroy(&s0), nn_tensor_map_destroy(&s1), nn_tensor_map_destroy(&sr);
	nn_model_grads_destroy(&g);
	nn_model_destroy(&c);
	nn_trainer_destroy(&t);
	return fails;
}

static int check_step(const struct nn_model *m)
{
	struct nn_trainer *t = NULL;
	struct nn_tensor_map *s0 = NULL, *s2 = NULL;
	struct nn_trainer_step_params sp = {.lr = {0.01f, 0.01f, 0.01f}, .momentum = 0.937f, .weight_decay = 5e-4f,
	                                    .max_grad_norm = 10.0f, .nesterov = true};
	const float lr2[3] = {0.05f, 0.02f, 0.003f};
	struct nn_loss_out lo;
	CHECK(trainer_new(m, &t) == 0 && model_state(m, &s0) == 0);
	CHECK(nn_trainer_forward_backward(t, img, targets, NT, &lo) == 0);
	CHECK(nn_trainer_step(t, &sp, NULL) == 0);
	memcpy(sp.lr, lr2, sizeof(lr2));
	CHECK(nn_trainer_step(t, &sp, NULL) == 0);
	CHECK(state_of(t, m, NN_TRAINER_CURRENT, &s2) == 0);
	int fails = 0;
	for (int grp = 0; grp < 3; grp++) { // one reference run per group, its lr for the second step
		struct nn_model *c = NULL;
		struct nn_model_grads *g = NULL;
		struct nn_sgd *opt = NULL;
		struct nn_tensor_map *sr = NULL;
		struct nn_sgd_params rp = {.lr = 0.01f, .momentum = 0.937f, .weight_decay = 5e-4f, .nesterov = true};
		CHECK(nn_model_clone(m, &c) == 0 && nn_model_grads_create(c, &g) == 0 && nn_sgd_create(c, &opt) == 0);
		CHECK(ref_grads(c, g, &lo) == 0);
		nn_model_grads_clip_ref(g, c, 10.0);
		CHECK(nn_sgd_step_ref(opt, c, g, &rp) == 0);
		nn_model_grads_clip_ref(g, c, 10.0);
		rp.lr = lr2[grp];
		CHECK(nn_sgd_step_ref(opt, c, g, &rp) == 0);
		CHECK(model_state(c, &sr) == 0);
		char what[96];
		snprintf(what, sizeof(what), "(c) two steps vs nn_sgd_step_ref, group %d (lr %g)", grp, lr2[grp]);
		// the same fp32 operations in the same order: equal up to nothing
		fails += compare(what, s2, sr, 1.0, 0, 0, sel_group, grp) > 0;
		double moved = max_change(s2, s0, sel_group, grp);
		printf("%s (c) group %d moved by up to %.4g\n", moved > 1e-5 ? "ok  " : "FAIL", grp, moved);
		fails += !(moved > 1e-5);
		nn_tensor_map_destroy(&sr);
		nn_sgd_destroy(&opt);
		nn_model_grads_destroy(&g);
		nn_model_destroy(&c);
	}
	nn_tensor_map_destroy(&s0), nn_tensor_map_destroy(&s2);
	nn_trainer_destroy(&t);
	return fails;
}

static int check_ema(const struct nn_model *m)
{
	struct nn_trainer *t = NULL;
	struct nn_tensor_map *e0 = NULL, *c1 = NULL, *c2 = NULL, *e2 = NULL, *want = NULL;
	struct nn_trainer_step_params sp = {.lr = {0.02f, 0.01f, 0.01f}, .momentum = 0.937f, .weight_decay = 5e-4f,
	                                    .max_grad_norm = 10.0f, .nesterov = true};
	const double d1 = 0.6, d2 = 0.9; // far from 0 and 1 so both terms matter
	struct nn_loss_out lo;
	CHECK(trainer_new(m, &t) == 0 && model_state(m, &e0) == 0);
	CHECK(nn_trainer_forward_backward(t, img, targets, NT, &lo) == 0 && nn_trainer_step(t, &sp, NULL) == 0);
	CHECK(nn_trainer_ema_update(t, d1) == 0 && state_of(t, m, NN_TRAINER_CURRENT, &c1) == 0);
	CHECK(nn_trainer_forward_backward(t, img, targets, NT, &lo) == 0 && nn_trainer_step(t, &sp, NULL) == 0);
	CHECK(nn_trainer_ema_update(t, d2) == 0 && state_of(t, m, NN_TRAINER_CURRENT, &c2) == 0);
	CHECK(state_of(t, m, NN_TRAINER_EMA, &e2) == 0);
	CHECK(nn_tensor_map_create(&want) == 0);
	for (size_t k = 0; k < e0->count; k++) { // the formula in double
		const struct nn_tensor *a = &e0->items[k], *b = nn_tensor_map_find(c1, a->name), *c = nn_tensor_map_find(c2, a->name);
		CHECK(b && c && nn_tensor_map_add(want, a->name, NN_DTYPE_F32, a->ndim, a->shape, NULL) == 0);
		float *w = want->items[want->count - 1].data;
		for (int64_t i = 0; i < nn_tensor_numel(a); i++) {
			double e1 = d1 * nn_tensor_get_f32(a, i) + (1 - d1) * nn_tensor_get_f32(b, i);
			w[i] = (float)(d2 * e1 + (1 - d2) * nn_tensor_get_f32(c, i));
		}
	}
	int fails = 0;
	// two fp32 multiply-adds per update against double: a few ulps of values of order 1 (running
	// variances up to ~1e2)
	fails += compare("(d) EMA after two updates = formula (params)", e2, want, 1.0, 1e-7, 1e-6, sel_params, 0) > 0;
	fails += compare("(d) EMA after two updates = formula (BN stats)", e2, want, 1.0, 1e-7, 1e-6, sel_stats, 0) > 0;
	double dc = max_change(e2, c2, sel_all, 0), d0 = max_change(e2, e0, sel_all, 0);
	printf("%s (d) EMA differs from current by %.4g and from the initial state by %.4g\n",
	       dc > 1e-5 && d0 > 1e-5 ? "ok  " : "FAIL", dc, d0);
	fails += !(dc > 1e-5 && d0 > 1e-5);
	// the momentum round trip: export, fresh trainer, load + import, same next step
	struct nn_tensor_map *mom = NULL;
	CHECK(nn_tensor_map_create(&mom) == 0 && nn_trainer_export_momentum(t, "momentum.", mom) == 0 && mom->count > 0);
	printf("ok   momentum export: %zu tensors\n", mom->count);
	nn_tensor_map_destroy(&mom);
	nn_tensor_map_destroy(&e0), nn_tensor_map_destroy(&c1), nn_tensor_map_destroy(&c2);
	nn_tensor_map_destroy(&e2), nn_tensor_map_destroy(&want);
	nn_trainer_destroy(&t);
	return fails;
}

int main(void)
{
	gpu_log_init(GPU_LOG_WARN, NULL, NULL);
	char path[1024];
	snprintf(path, sizeof(path), "%s/assets/models/gelan-t.yaml", VKYOLO_SOURCE_ROOT);
	struct nn_value *arch = NULL;
	struct nn_model *m = NULL;
	if (nn_yaml_read_file(path, &arch) ||
	    nn_model_create(arch, NULL, &(struct nn_model_params){.random_seed = 7}, &m)) {
		printf("FAIL building gelan-t from %s\n", path);
		return 1;
	}
	uint32_t s = 12345;
	for (size_t k = 0; k < sizeof(img); k++) {
		s = s * 1664525u + 1013904223u;
		img[k] = (uint8_t)(s >> 24);
		imgf[k] = img[k] / 255.0f;
	}
	int fails = check_accumulate(m) + check_lr0(m) + check_step(m) + check_ema(m);
	nn_model_destroy(&m);
	nn_value_destroy(&arch);
	printf(fails ? "FAILED\n" : "all passed\n");
	return fails ? 1 : 0;
}
