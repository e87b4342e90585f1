// The TAL training loss (nn/loss.h).
//   test_nn_loss fd         analytic d loss / d maps against central finite differences on a small
//                           synthetic two-level case (single and dual), assignment held fixed.
//   test_nn_loss <model>    golden: the unfused model's training-mode forward (BatchNorm on batch
//                           statistics) on the batch of shared/oracle/<model>_train_step.safetensors,
//                           then loss and loss_items against the official ComputeLoss values.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "checkpoint.h"
#include "log.h"
#include "loss.h"
#include "model.h"
#include "safetensors.h"

// Loss vs the oracle: our forward differs from PyTorch's by ~1e-5 relative (accumulation order), the
// loss is a smooth sum of those; 1e-4 relative is the agreed fp32 budget.
#define LOSS_RTOL 1e-4
// Finite differences: central, loss in double; a small step keeps the CIoU min/max kinks (edges of
// the prediction meeting the target's) out of the interval: truncation ~1e-10, rounding ~1e-9 abs.
#define FD_STEP 1e-5
#define FD_RTOL 1e-3

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double urand(void)
{
	rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
	return (double)(rng_state >> 11) / 9007199254740992.0;
}
static double nrand(void)
{
	double u = urand() + 1e-12, v = urand();
	return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

typedef int (*loss_fn)(const struct nn_loss_desc *, const float *const *, const float *, uint32_t,
                       struct nn_loss_out *);

// Central difference of the loss in map i, entry k, with the assignment fixed to the base maps.
struct fd {
	const struct nn_loss_desc *d;
	loss_fn fn;
	float **maps, **base;
	const float *targets;
	uint32_t n_targets;
};
static double central_diff(const struct fd *f, uint32_t i, size_t k, double step)
{
	struct nn_loss_out o = {.assign_maps = (const float *const *)f->base, .exact_bce = true};
	float x0 = f->base[i][k], xp = (float)(x0 + step), xm = (float)(x0 - step);
	f->maps[i][k] = xp;
	int ret = f->fn(f->d, (const float *const *)f->maps, f->targets, f->n_targets, &o);
	double lp = o.loss;
	f->maps[i][k] = xm;
	ret |= f->fn(f->d, (const float *const *)f->maps, f->targets, f->n_targets, &o);
	f->maps[i][k] = x0;
	return ret ? NAN : (lp - o.loss) / ((double)xp - (double)xm);
}

// Synthetic case: 2 images of 32x32, levels 4x4 (stride 8) and 2x2 (stride 16), 3 classes; box
// logits biased to small distances so that predictions overlap the gts (positive CIoU).
static int fd_case(uint32_t sets)
{
	struct nn_loss_desc d = {.n = 2, .nc = 3, .reg_max = 16, .nl = 2, .h = {4, 2}, .w = {4, 2}, .stride = {8, 16}};
	uint32_t no = 4 * d.reg_max + d.nc, nmaps = sets * d.nl;
	// two overlapping gts in image 0 (conflicts), one in image 1
	const float targets[] = {0, 1, 0.5f, 0.5f, 0.6f, 0.5f, 0, 2, 0.4f, 0.45f, 0.5f, 0.7f, 1, 0, 0.6f, 0.5f, 0.5f, 0.4f};
	float *maps[4], *base[4], *grad[4];
	size_t cnt[4];
	for (uint32_t i = 0; i < nmaps; i++) {
		uint32_t l = i % d.nl;
		size_t hw = (size_t)d.h[l] * d.w[l];
		cnt[i] = d.n * no * hw;
		maps[i] = malloc(cnt[i] * sizeof(float)), base[i] = malloc(cnt[i] * sizeof(float));
		grad[i] = malloc(cnt[i] * sizeof(float));
		CHECK(maps[i] && base[i] && grad[i]);
		for (size_t k = 0; k < cnt[i]; k++) {
			size_t ch = (k / hw) % no;
			double v = ch < 4 * d.reg_max ? -0.6 * (double)(ch % d.reg_max) + 0.5 * nrand() : nrand() - 1.0;
			maps[i][k] = base[i][k] = (float)v;
		}
	}
	struct fd f = {&d, sets == 2 ? nn_loss_tal_dual : nn_loss_tal, maps, base, targets, 3};
	struct nn_loss_out out = {.grad = grad, .assign_maps = (const float *const *)base, .exact_bce = true};
	CHECK(f.fn(&d, (const float *const *)maps, targets, 3, &out) == 0);
	printf("fd %s: loss %.6f items %.6f %.6f %.6f, fg %u/%u, S %.4f/%.4f\n", sets == 2 ? "dual" : "single",
	       out.loss, out.items[0], out.items[1], out.items[2], out.n_fg[0], out.n_fg[1], out.target_sum[0],
	       out.target_sum[1]);
	CHECK(out.n_fg[0] > 0 && out.items[0] > 0 && out.items[2] > 0 && out.target_sum[0] > 0.01f);
	double gmax = 0;
	for (uint32_t i = 0; i < nmaps; i++)
		for (size_t k = 0; k < cnt[i]; k++)
			gmax = fmax(gmax, fabs(grad[i][k]));
	// atol: fp32 storage of the gradient and double-evaluation noise, far below any real entry
	double atol = 1e-7 * gmax, worst = -1, worst_g = 0, worst_fd = 0, max_rel = 0;
	uint32_t worst_map = 0, n_checked = 0;
	size_t worst_k = 0;
	for (uint32_t i = 0; i < nmaps; i++)
		for (size_t k = 0; k < cnt[i]; k++) {
			double fd = central_diff(&f, i, k, FD_STEP), g = grad[i][k];
			CHECK(!isnan(fd));
			double excess = fabs(g - fd) - (atol + FD_RTOL * fabs(fd));
			if (fabs(fd) > 1e3 * atol)
				max_rel = fmax(max_rel, fabs(g - fd) / fabs(fd));
			n_checked++;
			if (excess > worst)
				worst = excess, worst_map = i, worst_k = k, worst_g = g, worst_fd = fd;
		}
	for (double hs = 1e-4; worst > 0 && hs >= 1e-6; hs /= 10) // a kink inside the step? show smaller steps
		printf("  step %g: fd %.8g\n", hs, central_diff(&f, worst_map, worst_k, hs));
	bool ok = worst <= 0;
	printf("%s fd %s: %u entries, max |grad| %.4g, max rel err %.3g (entries above 1e-4 of max); worst map %u "
	       "index %zu: analytic %.8g fd %.8g\n", ok ? "ok  " : "FAIL", sets == 2 ? "dual" : "single", n_checked,
	       gmax, max_rel, worst_map, worst_k, worst_g, worst_fd);
	for (uint32_t i = 0; i < nmaps; i++)
		free(maps[i]), free(base[i]), free(grad[i]);
	return ok ? 0 : 1;
}

// No targets: everything is background, box and DFL are 0, cls = sum BCE(x, 0) / 1 and its gradient
// is gain * n * sigmoid(x) (independent double sums).
static int no_targets(void)
{
	struct nn_loss_desc d = {.n = 2, .nc = 2, .reg_max = 16, .nl = 1, .h = {2}, .w = {3}, .stride = {8}};
	size_t cnt = 2 * (64 + 2) * 6;
	float map[2 * 66 * 6], grad[2 * 66 * 6];
	for (size_t k = 0; k < cnt; k++)
		map[k] = (float)nrand() * 2.0f;
	const float *maps[1] = {map};
	float *grads[1] = {grad};
	struct nn_loss_out out = {.grad = grads, .exact_bce = true};
	CHECK(nn_loss_tal(&d, maps, NULL, 0, &out) == 0);
	double cls = 0, gerr = 0;
	for (size_t k = 0; k < cnt; k++) {
		bool is_cls = (k / 6) % 66 >= 64;
		double x = map[k], sig = 1.0 / (1.0 + exp(-x));
		cls += is_cls ? -log(1.0 - sig) : 0.0;
		gerr = fmax(gerr, fabs(grad[k] - (is_cls ? 0.5 * 2 * sig : 0.0)));
	}
	cls *= 0.5;
	// double sums of the same terms: only rounding differences
	bool ok = out.items[0] == 0 && out.items[2] == 0 && out.n_fg[0] == 0 && fabs(out.items[1] - cls) <= 1e-9 * cls &&
	          fabs(out.loss - 2 * cls) <= 1e-9 * cls && gerr <= 1e-7;
	printf("%s no targets: cls %.9f want %.9f, loss %.9f, max grad err %.3g\n", ok ? "ok  " : "FAIL", out.items[1],
	       cls, out.loss, gerr);
	return ok ? 0 : 1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int check_rel(const char *name, double got, double want)
{
	double err = fabs(got - want);
	bool ok = err <= LOSS_RTOL * fabs(want);
	printf("%s %-8s got %.7f want %.7f rel err %.3g\n", ok ? "ok  " : "FAIL", name, got, want,
	       want != 0 ? err / fabs(want) : err);
	return ok ? 0 : 1;
}

static int golden(const char *model)
{
	char path[512];
	struct nn_checkpoint *ck = NULL;
	struct nn_tensor_map *ref = NULL;
	struct nn_model *m = NULL;
	struct nn_ref_outputs fw = {.train_bn = true, .keep_heads = true};
	float *x = NULL;
	int fails = 1;
	snprintf(path, sizeof(path), "%s/oracle/%s_train_step.safetensors", test_shared_dir(), model);
	FILE *f = fopen(path, "rb");
	if (!f) {
		printf("skip: %s not found (set VKYOLO_SHARED)\n", path);
		return 77;
	}
	fclose(f);
	CHECK(nn_safetensors_read(path, &ref) == 0);
	const struct nn_tensor *in = nn_tensor_map_find(ref, "input_u8"), *tg = nn_tensor_map_find(ref, "targets");
	const struct nn_tensor *wl = nn_tensor_map_find(ref, "loss"), *wi = nn_tensor_map_find(ref, "loss_items");
	CHECK(in && in->ndim == 4 && in->dtype == NN_DTYPE_U8 && in->shape[1] == 3);
	CHECK(tg && tg->ndim == 2 && tg->shape[1] == 6 && tg->dtype == NN_DTYPE_F32);
	CHECK(wl && wi && nn_tensor_numel(wi) == 3 && wl->dtype == NN_DTYPE_F32 && wi->dtype == NN_DTYPE_F32);
	uint32_t n = (uint32_t)in->shape[0], h = (uint32_t)in->shape[2], w = (uint32_t)in->shape[3];
	size_t cnt = (size_t)nn_tensor_numel(in);
	CHECK((x = malloc(cnt * sizeof(float))));
	for (size_t i = 0; i < cnt; i++)
		x[i] = (float)((const uint8_t *)in->data)[i] / 255.0f;

	snprintf(path, sizeof(path), "%s/oracle/%s_init.pt", test_shared_dir(), model);
	if (nn_checkpoint_load(path, &ck) || !ck->arch) {
		printf("FAIL loading %s\n", path);
		goto done;
	}
	struct nn_model_params p = {.fuse = false, .names = ck->names};
	if (nn_model_create(ck->arch, ck->state, &p, &m)) {
		printf("FAIL building %s\n", model);
		goto done;
	}
	double t0 = now_s();
	if (nn_model_forward_ref(m, n, h, w, x, &fw)) {
		printf("FAIL training-mode forward\n");
		goto done;
	}
	printf("%s: training-mode forward %ux%ux%u: %.1f s\n", model, n, h, w, now_s() - t0);

	struct nn_loss_desc d = {.n = n, .nc = m->nc, .reg_max = m->reg_max, .nl = m->nl};
	const float *maps[2 * NN_DETECT_MAX_LEVELS];
	for (uint32_t s = 0; s < m->n_head_sets; s++)
		for (uint32_t l = 0; l < m->nl; l++) {
			d.h[l] = fw.head_shape[s][l].h, d.w[l] = fw.head_shape[s][l].w, d.stride[l] = m->stride[l];
			maps[s * m->nl + l] = fw.head[s][l];
		}
	struct nn_loss_out out = {0};
	t0 = now_s();
	int ret = m->n_head_sets == 2 ? nn_loss_tal_dual(&d, maps, tg->data, (uint32_t)tg->shape[0], &out)
	                              : nn_loss_tal(&d, maps, tg->data, (uint32_t)tg->shape[0], &out);
	if (ret) {
		printf("FAIL loss: %d\n", ret);
		goto done;
	}
	printf("loss %.3f s; foreground anchors %u / %u, target sums %.4f / %.4f\n", now_s() - t0, out.n_fg[0],
	       out.n_fg[1], out.target_sum[0], out.target_sum[1]);
	const float *wiv = wi->data;
	fails = check_rel("loss", out.loss, *(const float *)wl->data);
	fails += check_rel("box", out.items[0], wiv[0]);
	fails += check_rel("cls", out.items[1], wiv[1]);
	fails += check_rel("dfl", out.items[2], wiv[2]);
done:
	nn_ref_outputs_finish(&fw);
	nn_model_destroy(&m);
	nn_checkpoint_destroy(&ck);
	nn_tensor_map_destroy(&ref);
	free(x);
	return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "fd";
	gpu_log_init(GPU_LOG_WARN, NULL, NULL);
	int ret;
	if (!strcmp(what, "fd"))
		ret = fd_case(1) | fd_case(2) | no_targets();
	else
		ret = golden(what);
	printf("%s\n", ret == 77 ? "skipped" : ret ? "FAILED" : "all passed");
	return ret;
}
