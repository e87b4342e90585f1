// The CPU reference backward pass (nn/model_bwd.h):
//   test_nn_backward fd <model> [first_layer]  against central differences of our own forward, conv
//                                ops of layers >= first_layer (see run_fd).
// and, golden, against the official gradients:
//   test_nn_backward <model>   shared/oracle/<model>_init.pt, unfused, training-mode forward (batch
//   statistics) on the batch of <model>_train_step.safetensors, official TAL loss and its gradient,
//   backward through the whole graph; every grad.<param> and every after.<BN buffer> compared.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "checkpoint.h"
#include "log.h"
#include "loss.h"
#include "model_bwd.h"
#include "oracle_batch.h"

// Gradients. Our fp32 forward differs from PyTorch's by ~1e-5 relative (summation order), and the
// gradients are far less well conditioned than the forward: moving our own input by one ulp moves our
// own gradients by up to 2e-3 relative per tensor (gelan-t; measured). Max pooling adds discrete jumps:
// a window whose runner-up is within ~1e-5 of its maximum (thousands in yolov9-c-quarter's ADown
// pools, counted below) may pick another arg-max than PyTorch, which moves gradient between positions
// and changes the pooled channels upstream by up to ~10% (the worst tensors are exactly those).
// Measured against the oracle: worst tensor 4e-3 (gelan-t) and 2e-2 (yolov9-c-quarter), all
// parameters 2.4e-3 / 4.5e-3, head final convs <= 4.4e-4. A wrong index, a missing path or a dropped
// BatchNorm-statistics term gives O(1) errors in the tensors it touches.
#define GRAD_RTOL 5e-2        // per tensor, relative L2
#define GRAD_GLOBAL_RTOL 1e-2 // all parameters together
#define HEAD_RTOL 1e-3        // the head's final 1x1 convs: d loss / d head maps summed, no pool upstream
// Tensors whose reference is ~0 (biases right before a BatchNorm: exactly 0 in exact arithmetic) are
// compared absolutely against the global gradient norm.
#define GRAD_ATOL_OF_NORM 1e-6
// BN running stats: 0.97 * old + 0.03 * batch statistic, so forward noise (~1e-5) shrinks to ~3e-7.
#define BUF_RTOL 1e-5
#define BUF_ATOL 1e-6

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct row {
	const char *name;
	double err, ref, rel;
	bool ok, head;
};

// Whether `name` is a parameter of one of the detect layer's plain (bare) 1x1 convs.
static bool is_head_final(const struct nn_model *m, const char *name)
{
	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct nn_op *op = &m->ops[i];
		size_t k = strlen(op->name);
		if (op->kind == NN_OP_CONV && op->bare && op->layer + 1 == m->n_layers && !strncmp(name, op->name, k) &&
		    (!strcmp(name + k, ".weight") || !strcmp(name + k, ".bias")))
			return true;
	}
	return false;
}

static int by_rel_desc(const void *a, const void *b)
{
	double x = ((const struct row *)a)->rel, y = ((const struct row *)b)->rel;
	return x < y ? 1 : x > y ? -1 : 0;
}

// Every oracle tensor `<tag><name>` against ours `<name>` in got.
static int compare_grads(const struct nn_model *m, const struct nn_tensor_map *ref, const struct nn_tensor_map *got)
{
	size_t n_ref = 0, n = 0;
	double norm2 = 0.0;
	for (size_t i = 0; i < ref->count; i++)
		if (!strncmp(ref->items[i].name, "grad.", 5)) {
			n_ref++;
			for (int64_t k = 0; k < nn_tensor_numel(&ref->items[i]); k++)
				norm2 += (double)nn_tensor_get_f32(&ref->items[i], k) * nn_tensor_get_f32(&ref->items[i], k);
		}
	struct row *rows = calloc(n_ref + 1, sizeof(*rows));
	CHECK(rows);
	double gnorm = sqrt(norm2), e2_all = 0.0, head_worst = 0.0;
	int fails = 0;
	for (size_t i = 0; i < ref->count; i++) {
		const struct nn_tensor *w = &ref->items[i];
		if (strncmp(w->name, "grad.", 5))
			continue;
		const struct nn_tensor *t = nn_tensor_map_find(got, w->name + 5);
		struct row *r = &rows[n++];
		r->name = w->name + 5;
		if (!t || nn_tensor_numel(t) != nn_tensor_numel(w)) {
			printf("FAIL %s: %s\n", w->name, t ? "size differs" : "no such gradient");
			r->rel = INFINITY;
			fails++;
			continue;
		}
		double e2 = 0.0, r2 = 0.0;
		for (int64_t k = 0; k < nn_tensor_numel(w); k++) {
			double a = nn_tensor_get_f32(t, k), b = nn_tensor_get_f32(w, k);
			e2 += (a - b) * (a - b), r2 += b * b;
		}
		r->err = sqrt(e2), r->ref = sqrt(r2), r->rel = r->ref > 0 ? r->err / r->ref : r->err;
		r->head = is_head_final(m, r->name);
		r->ok = r->err <= (r->head ? HEAD_RTOL : GRAD_RTOL) * r->ref || r->err <= GRAD_ATOL_OF_NORM * gnorm;
		fails += !r->ok;
		e2_all += e2;
		if (r->head)
			head_worst = fmax(head_worst, r->rel);
	}
	size_t n_ours = 0;
	for (size_t i = 0; i < got->count; i++)
		n_ours++;
	if (n_ours != n_ref) {
		printf("FAIL we have %zu gradients, the oracle %zu\n", n_ours, n_ref);
		fails++;
	}
	if (getenv("VKYOLO_TEST_VERBOSE")) // every tensor in model order
		for (size_t i = 0; i < n; i++)
			printf("  %s %-44s rel %.3g (|err| %.3g, |ref| %.3g)\n", rows[i].ok ? "ok  " : "FAIL", rows[i].name,
			       rows[i].rel, rows[i].err, rows[i].ref);
	qsort(rows, n, sizeof(*rows), by_rel_desc);
	printf("gradients: %zu tensors, global norm %.6g; worst relative L2 errors:\n", n, gnorm);
	for (size_t i = 0; i < n && i < 8; i++)
		printf("  %s %-44s rel %.3g (|err| %.3g, |ref| %.3g)\n", rows[i].ok ? "ok  " : "FAIL", rows[i].name,
		       rows[i].rel, rows[i].err, rows[i].ref);
	double global = sqrt(e2_all) / gnorm;
	bool global_ok = global <= GRAD_GLOBAL_RTOL;
	printf("%s gradients: %d of %zu tensors off; all parameters: relative L2 error %.3g; head final convs: worst "
	       "%.3g; median tensor %.3g\n", fails || !global_ok ? "FAIL" : "ok  ", fails, n, global, head_worst,
	       rows[n / 2].rel);
	fails += !global_ok;
	free(rows);
	return fails;
}

// after.<name> (BN running mean/var after the step) against the model's updated buffers.
static int compare_buffers(const struct nn_tensor_map *ref, const struct nn_tensor_map *state)
{
	size_t n = 0;
	int fails = 0;
	double worst = -1, worst_got = 0, worst_want = 0;
	const char *worst_name = "";
	for (size_t i = 0; i < ref->count; i++) {
		const struct nn_tensor *w = &ref->items[i];
		if (strncmp(w->name, "after.", 6))
			continue;
		n++;
		const struct nn_tensor *t = nn_tensor_map_find(state, w->name + 6);
		if (!t || nn_tensor_numel(t) != nn_tensor_numel(w)) {
			printf("FAIL %s: %s\n", w->name, t ? "size differs" : "no such buffer");
			fails++;
			continue;
		}
		for (int64_t k = 0; k < nn_tensor_numel(w); k++) {
			double a = nn_tensor_get_f32(t, k), b = nn_tensor_get_f32(w, k);
			double excess = fabs(a - b) - (BUF_ATOL + BUF_RTOL * fabs(b));
			if (excess > worst)
				worst = excess, worst_got = a, worst_want = b, worst_name = w->name;
			fails += excess > 0;
		}
	}
	printf("%s BN buffers: %zu tensors, %d entries off; worst %s got %.8g want %.8g\n", fails ? "FAIL" : "ok  ", n,
	       fails, worst_name, worst_got, worst_want);
	return fails || n == 0;
}

// Max-pool windows (over all max-pool ops, batch and channels) whose maximum exceeds the next distinct
// value by at most rel * |max| (exact ties are broken the same way as PyTorch); rel < 0 counts all.
static size_t near_ties(const struct nn_model *m, const struct nn_ref_outputs *fw, double rel)
{
	size_t count = 0;
	for (uint32_t i = 0; i < m->n_ops; i++) {
		if (m->ops[i].kind != NN_OP_MAXPOOL)
			continue;
		struct nn_pool2d_desc d;
		nn_op_pool_desc(&m->ops[i], fw->shape, fw->n, &d);
		int ho = (int)nn_pool_out_size(d.h_in, d.k, d.stride, d.pad), wo = (int)nn_pool_out_size(d.w_in, d.k, d.stride, d.pad);
		for (uint32_t n = 0; n < d.n; n++)
			for (uint32_t c = 0; c < d.c; c++) {
				const float *xp = fw->act[m->ops[i].x.tensor] + ((size_t)n * d.x_c_total + d.x_c_off + c) * d.h_in * d.w_in;
				for (int oh = 0; oh < ho; oh++)
					for (int ow = 0; ow < wo; ow++) {
						float b1 = -INFINITY, b2 = -INFINITY;
						for (int a = 0; a < (int)d.k; a++)
							for (int b = 0; b < (int)d.k; b++) {
								int ih = oh * (int)d.stride + a - (int)d.pad, iw = ow * (int)d.stride + b - (int)d.pad;
								if (ih < 0 || iw < 0 || ih >= (int)d.h_in || iw >= (int)d.w_in)
									continue;
								float v = xp[(size_t)ih * d.w_in + iw];
								if (v > b1) // b2: the best value strictly below the maximum
									b2 = b1, b1 = v;
								else if (v < b1 && v > b2)
									b2 = v;
							}
						count += rel < 0 || b1 - b2 <= rel * fabs(b1);
					}
			}
	}
	return count;
}

static int run(const char *model)
{
	char path[512];
	struct nn_checkpoint *ck = NULL;
	struct nn_tensor_map *ref = NULL, *got = NULL, *state = NULL;
	struct nn_model *m = NULL;
	struct nn_model_grads *g = NULL;
	struct nn_ref_outputs fw = {0};
	float *x = NULL;
	int fails = 1;
	struct oracle_batch ob;
	int ret = oracle_batch_load(model, "_train_step.safetensors", &ob);
	if (ret) {
		oracle_batch_free(&ob);
		return ret;
	}
	ref = ob.ref, x = ob.x;
	const struct nn_tensor *tg = ob.targets;
	uint32_t n = ob.n, h = ob.h, w = ob.w;
	snprintf(path, sizeof(path), "%s/oracle/%s_init.pt", test_shared_dir(), model);
	if (nn_checkpoint_load(path, &ck) || !ck->arch) {
		printf("FAIL loading %s\n", path);
		goto done;
	}
	struct nn_model_params p = {.fuse = false, .names = ck->names};
	if (nn_model_create(ck->arch, ck->state, &p, &m) || nn_model_grads_create(m, &g)) {
		printf("FAIL building %s\n", model);
		goto done;
	}
	double t0 = now_s();
	struct nn_loss_out lo;
	if (nn_model_loss_grads_ref(m, n, h, w, x, tg->data, (uint32_t)tg->shape[0], &fw, &lo, g)) {
		printf("FAIL training pass\n");
		goto done;
	}
	const struct nn_tensor *wl = nn_tensor_map_find(ref, "loss");
	printf("%s: loss %.6f (oracle %.6f)\n", model, lo.loss, wl ? *(const float *)wl->data : NAN);
	printf("%s %ux%ux%u: training forward + loss + backward %.1f s\n", model, n, h, w, now_s() - t0);
	if (nn_tensor_map_create(&got) || nn_model_grads_export(m, g, "", got) || nn_model_bn_update_ref(m, &fw, 0.03f) ||
	    nn_tensor_map_create(&state) || nn_model_export_state(m, state)) {
		printf("FAIL export\n");
		goto done;
	}
	printf("max-pool windows with a runner-up within 1e-5 relative (arg-max may differ from PyTorch's): "
	       "%zu of %zu\n", near_ties(m, &fw, 1e-5), near_ties(m, &fw, -1));
	fails = compare_grads(m, ref, got);
	fails += compare_buffers(ref, state);
done:
	nn_ref_outputs_finish(&fw);
	nn_model_grads_destroy(&g);
	nn_model_destroy(&m);
	nn_checkpoint_destroy(&ck);
	nn_tensor_map_destroy(&ref);
	nn_tensor_map_destroy(&got);
	nn_tensor_map_destroy(&state);
	free(x);
	return fails ? 1 : 0;
}

// ---- fd mode: the backward pass against central differences of our own forward ----
// A linear loss L = sum c * head maps (random c, so d L / d maps = c) removes the TAL loss's discrete
// assignment; the input is a random 2 x 3 x 64 x 96 image. Every third conv op (so every kind of op
// and every branch lies between a checked op and the heads) gets its largest-gradient entry checked,
// alternately of its weight and of its BN gamma or beta. The step is chosen so that L moves by 2e-3
// of |L|. Where the gradient is huge (the first layers: BN over a 2 x 3 map amplifies) the fp32
// forward's noise and the curvature over even that step leave ~4% (measured); deeper it is ~1e-3.
// So each entry must agree within 10% and the median within 5e-3: a missing or doubled path, a wrong
// slice or a dropped BN-statistics term is O(1) in the entries downstream of it.
#define FD_REL_CHANGE 1e-3
#define FD_RTOL 1e-1
#define FD_MEDIAN_RTOL 5e-3
#define FD_ATOL_OF_MAX 1e-3
#define FD_EVERY 3

struct fd_ctx {
	struct nn_model *m;
	uint32_t n, h, w;
	float *x, *c[2 * NN_DETECT_MAX_LEVELS];
};

static double lin_loss(const struct fd_ctx *f)
{
	struct nn_ref_outputs fw = {.train_bn = true, .keep_heads = true};
	if (nn_model_forward_ref(f->m, f->n, f->h, f->w, f->x, &fw))
		return NAN;
	double l = 0.0;
	for (uint32_t s = 0; s < f->m->n_head_sets; s++)
		for (uint32_t lv = 0; lv < f->m->nl; lv++) {
			struct nn_shape hs = fw.head_shape[s][lv];
			const float *c = f->c[s * f->m->nl + lv], *v = fw.head[s][lv];
			for (size_t k = 0; k < (size_t)f->n * hs.c * hs.h * hs.w; k++)
				l += (double)c[k] * v[k];
		}
	nn_ref_outputs_finish(&fw);
	return l;
}

static size_t argmax_abs(const float *g, size_t count)
{
	size_t best = 0;
	for (size_t k = 1; k < count; k++)
		if (fabsf(g[k]) > fabsf(g[best]))
			best = k;
	return best;
}

static uint32_t rng = 77;
static float frand01(void)
{
	rng = rng * 1664525u + 1013904223u;
	return (float)(rng >> 8) / 16777216.0f;
}

static int run_fd(const char *model, uint32_t first_layer)
{
	char path[512];
	struct nn_checkpoint *ck = NULL;
	struct fd_ctx f = {.n = 2, .h = 64, .w = 96};
	struct nn_model_grads *g = NULL;
	struct nn_ref_outputs fw = {.train_bn = true, .keep_heads = true, .keep_train = true};
	int fails = 1;
	snprintf(path, sizeof(path), "%s/oracle/%s_init.pt", test_shared_dir(), model);
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		printf("skip: %s not found (set VKYOLO_SHARED)\n", path);
		return 77;
	}
	fclose(fp);
	struct nn_model_params p = {.fuse = false};
	CHECK(nn_checkpoint_load(path, &ck) == 0 && ck->arch);
	CHECK(nn_model_create(ck->arch, ck->state, &p, &f.m) == 0 && nn_model_grads_create(f.m, &g) == 0);
	size_t cnt = (size_t)f.n * 3 * f.h * f.w;
	CHECK((f.x = malloc(cnt * sizeof(float))));
	for (size_t i = 0; i < cnt; i++)
		f.x[i] = frand01();
	if (nn_model_forward_ref(f.m, f.n, f.h, f.w, f.x, &fw))
		goto done;
	for (uint32_t s = 0; s < f.m->n_head_sets; s++)
		for (uint32_t l = 0; l < f.m->nl; l++) {
			struct nn_shape hs = fw.head_shape[s][l];
			size_t hc = (size_t)f.n * hs.c * hs.h * hs.w;
			if (!(f.c[s * f.m->nl + l] = malloc(hc * sizeof(float))))
				goto done;
			for (size_t k = 0; k < hc; k++)
				f.c[s * f.m->nl + l][k] = 2.0f * frand01() - 1.0f;
		}
	if (nn_model_backward_ref(f.m, &fw, (const float *const *)f.c, g))
		goto done;
	double gmax = 0.0, worst = -INFINITY, max_rel = 0.0;
	for (uint32_t i = 0; i < f.m->n_ops; i++)
		if (g->w[i])
			gmax = fmax(gmax, fabsf(g->w[i][argmax_abs(g->w[i], (size_t)f.m->ops[i].y.c * (f.m->ops[i].x.c /
			                   f.m->ops[i].groups) * f.m->ops[i].k * f.m->ops[i].k)]));
	uint32_t checked = 0;
	double rels[512];
	fails = 0;
	double l0 = lin_loss(&f);
	for (uint32_t i = 0, conv = 0; i < f.m->n_ops; i++) {
		struct nn_op *op = &f.m->ops[i];
		if (op->kind != NN_OP_CONV || op->layer < first_layer || conv++ % FD_EVERY)
			continue;
		int which = (conv / FD_EVERY) % 2;
		{
			float *v, *gv;
			size_t count;
			const char *what;
			if (which == 0)
				v = op->w, gv = g->w[i], count = (size_t)op->y.c * (op->x.c / op->groups) * op->k * op->k, what = "weight";
			else if (op->bn.gamma && (conv / (2 * FD_EVERY)) % 2)
				v = op->bn.gamma, gv = g->gamma[i], count = op->y.c, what = "bn.weight";
			else if (op->bn.gamma)
				v = op->bn.beta, gv = g->beta[i], count = op->y.c, what = "bn.bias";
			else if (op->b)
				v = op->b, gv = g->b[i], count = op->y.c, what = "bias";
			else
				v = op->w, gv = g->w[i], count = (size_t)op->y.c * (op->x.c / op->groups) * op->k * op->k, what = "weight";
			size_t k = argmax_abs(gv, count);
			float step = (float)fmin(1e-2, FD_REL_CHANGE * fabs(l0) / fmax(fabs(gv[k]), 1e-30));
			float v0 = v[k], vp = v0 + step, vm = v0 - step;
			v[k] = vp;
			double lp = lin_loss(&f);
			v[k] = vm;
			double lm = lin_loss(&f);
			v[k] = v0;
			double fd = (lp - lm) / ((double)vp - vm), err = fabs(gv[k] - fd);
			if (checked < 512)
				rels[checked] = fd != 0 ? err / fabs(fd) : err;
			double excess = err - (FD_RTOL * fabs(fd) + FD_ATOL_OF_MAX * gmax);
			checked++;
			if (fabs(fd) > FD_ATOL_OF_MAX * gmax)
				max_rel = fmax(max_rel, err / fabs(fd));
			worst = fmax(worst, excess);
			if (getenv("VKYOLO_TEST_VERBOSE"))
				printf("  %s %s[%zu]: analytic %.7g fd %.7g (step %.3g)\n", op->name, what, k, gv[k], fd, step);
			if (excess > 0 || isnan(fd)) {
				printf("FAIL %s %s[%zu]: analytic %.7g fd %.7g\n", op->name, what, k, gv[k], fd);
				fails++;
			}
		}
	}
	uint32_t nr = checked < 512 ? checked : 512;
	for (uint32_t a = 1; a < nr; a++) // insertion sort: the median
		for (uint32_t b = a; b > 0 && rels[b - 1] > rels[b]; b--) {
			double t = rels[b];
			rels[b] = rels[b - 1], rels[b - 1] = t;
		}
	double median = nr ? rels[nr / 2] : INFINITY;
	fails += !(median <= FD_MEDIAN_RTOL);
	printf("%s %s fd: %u parameters (largest-gradient entries of every %dth conv op), max |grad| %.4g, relative "
	       "error max %.3g median %.3g\n", fails ? "FAIL" : "ok  ", model, checked, FD_EVERY, gmax, max_rel, median);
done:
	for (uint32_t i = 0; i < 2 * NN_DETECT_MAX_LEVELS; i++)
		free(f.c[i]);
	nn_ref_outputs_finish(&fw);
	nn_model_grads_destroy(&g);
	nn_model_destroy(&f.m);
	nn_checkpoint_destroy(&ck);
	free(f.x);
	return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
	gpu_log_init(GPU_LOG_WARN, NULL, NULL);
	if (argc < 2) {
		printf("usage: test_nn_backward <model> | fd <model>\n");
		return 1;
	}
	int ret = strcmp(argv[1], "fd") ? run(argv[1]) : argc > 2 ? run_fd(argv[2], argc > 3 ? (uint32_t)atoi(argv[3]) : 0) : 1;
	printf(ret == 0 ? "all passed\n" : ret == 77 ? "skipped\n" : "FAILED\n");
	return ret;
}
