// `vkyolo step` (GPU training step) against the official training oracle:
//   test_golden_step VKYOLO step MODEL   one step (--lr 0) on shared/oracle/MODEL_init.pt with the batch
//                                        of MODEL_train_step.safetensors: loss, loss items, every
//                                        gradient, BN running statistics after the step.
//   test_golden_step VKYOLO curve        20 steps of gelan-t_curve.safetensors' recipe: every step's
//                                        loss, gradient norm, final parameters and BN buffers.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "safetensors.h"

// Loss: our fp32 forward differs from PyTorch's by ~1e-5 relative (summation order); the loss is a
// smooth function of it except for the assigner's top-k choice (identical here, measured).
#define LOSS_RTOL 1e-4
// Gradients: see tests/test_nn_backward.c: the CPU reference itself is 2.4e-3 (gelan-t) / 4.5e-3
// (yolov9-c-quarter) off the oracle over all parameters, worst tensors 4e-3 / 2e-2, caused by the
// conditioning of the backward (one ulp of input moves our own gradients by up to 2e-3) and max-pool
// arg-max flips on near ties. The GPU sums in other orders, so it gets the same size of differences.
#define GRAD_RTOL 5e-2
#define GRAD_GLOBAL_RTOL 1e-2
#define GRAD_ATOL_OF_NORM 1e-6
// BN buffers after one forward: 0.97 * old + 0.03 * batch statistic.
#define BUF_RTOL 1e-5
#define BUF_ATOL 1e-6
// Curve: the run is chaotic (see tests/test_nn_train_curve.c, measured on the CPU reference): its
// top-k assignment and max-pool arg-maxes are discrete, so a 1e-3 relative change of one update moves
// the next loss by ~1e-3 and its gradient norm by ~15%, and a few steps decorrelate the parameter
// changes. Only the start is comparable tightly: step 1 (forward, loss, backward, clipping norm) and
// step 2's loss, which checks the update (lr, Nesterov, decay groups, clipping: without Nesterov the
// step-2 loss is off by 8e-3, with half the lr by 2.5e-3). Later steps and the final state are
// bounded loosely (a diverging or inert optimizer breaks those bounds). Measured on lavapipe: step 1
// 1.4e-6, step 2 7.3e-4 (4.8e-4 with an earlier summation order of the BN and weight-gradient kernels:
// the step-1 gradients differ from PyTorch's by ~2e-3 relative L2, which moves step 2 by up to ~1e-3),
// later worst 5.1e-2, parameters 2.6e-2 overall; the CPU reference: 3e-6, 1.3e-4, 4.9e-2, 2.4e-2.
#define CURVE_STEP1_LOSS_RTOL 1e-4
#define CURVE_STEP1_NORM_RTOL 1e-3
#define CURVE_STEP2_LOSS_RTOL 1e-3
#define CURVE_LATE_LOSS_RTOL 1e-1
#define CURVE_PARAM_GLOBAL_RTOL 5e-2

static const char *exe;
static char tmp[] = "/tmp/vkyolo-step-XXXXXX";

static int run(const char *args)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "'%s' %s", exe, args);
	printf("run: %s\n", cmd);
	fflush(stdout);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const struct nn_tensor *need(const struct nn_tensor_map *m, const char *name)
{
	const struct nn_tensor *t = nn_tensor_map_find(m, name);
	if (!t)
		printf("FAIL no tensor %s\n", name);
	return t;
}

// got[name] vs want[prefix_w + name] for every want tensor with prefix_w: relative L2 per tensor
// (or absolute against the global norm for ~0 tensors) and over all of them.
static int compare_set(const char *what, const struct nn_tensor_map *want, const char *prefix_w,
                       const struct nn_tensor_map *got, const char *prefix_g, double rtol, double global_rtol,
                       double atol_of_norm)
{
	size_t pw = strlen(prefix_w), n = 0;
	double norm2 = 0, e2_all = 0, worst = 0;
	const char *worst_name = "";
	int fails = 0;
	for (size_t i = 0; i < want->count; i++)
		if (!strncmp(want->items[i].name, prefix_w, pw))
			for (int64_t k = 0; k < nn_tensor_numel(&want->items[i]); k++) {
				double b = nn_tensor_get_f32(&want->items[i], k);
				norm2 += b * b;
			}
	double gnorm = sqrt(norm2);
	for (size_t i = 0; i < want->count; i++) {
		const struct nn_tensor *w = &want->items[i];
		if (strncmp(w->name, prefix_w, pw))
			continue;
		char name[400];
		snprintf(name, sizeof(name), "%s%s", prefix_g, w->name + pw);
		const struct nn_tensor *t = nn_tensor_map_find(got, name);
		n++;
		if (!t || nn_tensor_numel(t) != nn_tensor_numel(w)) {
			printf("FAIL %s %s: %s\n", what, name, t ? "size differs" : "missing");
			fails++;
			continue;
		}
		double e2 = 0, r2 = 0;
		for (int64_t k = 0; k < nn_tensor_numel(w); k++) {
			double a = nn_tensor_get_f32(t, k), b = nn_tensor_get_f32(w, k);
			e2 += (a - b) * (a - b), r2 += b * b;
		}
		double rel = r2 > 0 ? sqrt(e2 / r2) : sqrt(e2);
		bool ok = sqrt(e2) <= rtol * sqrt(r2) || sqrt(e2) <= atol_of_norm * gnorm;
		if (!ok || getenv("VKYOLO_TEST_VERBOSE"))
			printf("  %s %s %s rel %.3g\n", ok ? "ok  " : "FAIL", what, name, rel);
		fails += !ok;
		e2_all += e2;
		if (rel > worst && !(sqrt(e2) <= atol_of_norm * gnorm))
			worst = rel, worst_name = w->name + pw;
	}
	double global = gnorm > 0 ? sqrt(e2_all) / gnorm : sqrt(e2_all);
	bool gok = global <= global_rtol && n > 0;
	printf("%s %s: %zu tensors, %d off (tol %.0e); all together rel L2 %.3g (tol %.0e); worst %s %.3g\n",
	       fails || !gok ? "FAIL" : "ok  ", what, n, fails, rtol, global, global_rtol, worst_name, worst);
	return fails + !gok;
}

static int compare_buffers(const struct nn_tensor_map *want, const char *prefix_w, const struct nn_tensor_map *got)
{
	size_t pw = strlen(prefix_w), n = 0;
	int fails = 0;
	double worst = -INFINITY, wg = 0, ww = 0;
	for (size_t i = 0; i < want->count; i++) {
		const struct nn_tensor *w = &want->items[i];
		if (strncmp(w->name, prefix_w, pw))
			continue;
		char name[400];
		snprintf(name, sizeof(name), "buffer.%s", w->name + pw);
		const struct nn_tensor *t = nn_tensor_map_find(got, name);
		n++;
		if (!t || nn_tensor_numel(t) != nn_tensor_numel(w)) {
			printf("FAIL buffer %s missing or mis-sized\n", name);
			fails++;
			continue;
		}
		for (int64_t k = 0; k < nn_tensor_numel(w); k++) {
			double a = nn_tensor_get_f32(t, k), b = nn_tensor_get_f32(w, k);
			double ex = fabs(a - b) - (BUF_ATOL + BUF_RTOL * fabs(b));
			if (ex > worst)
				worst = ex, wg = a, ww = b;
			fails += ex > 0;
		}
	}
	printf("%s BN buffers: %zu tensors, %d values off; closest to the bound: got %.8g want %.8g\n",
	       fails || !n ? "FAIL" : "ok  ", n, fails, wg, ww);
	return fails || !n;
}

static int close_rel(const char *what, double got, double want, double rtol)
{
	bool ok = fabs(got - want) <= rtol * fabs(want);
	printf("%s %s: got %.8g want %.8g (rel %.2g, tol %.0e)\n", ok ? "ok  " : "FAIL", what, got, want,
	       fabs(got - want) / fabs(want), rtol);
	return !ok;
}

static int check_step(const char *model)
{
	char args[4096], out[1100], ref_path[1024];
	const char *sh = test_shared_dir();
	snprintf(ref_path, sizeof(ref_path), "%s/oracle/%s_train_step.safetensors", sh, model);
	if (access(ref_path, R_OK)) {
		printf("skip: %s not found (set VKYOLO_SHARED)\n", ref_path);
		return 77;
	}
	snprintf(out, sizeof(out), "%s/step.safetensors", tmp);
	snprintf(args, sizeof(args), "step --model '%s/oracle/%s_init.pt' --batch '%s' --steps 1 --lr 0 --out '%s' --timing",
	         sh, model, ref_path, out);
	CHECK(run(args) == 0);
	struct nn_tensor_map *ref = NULL, *got = NULL;
	CHECK(nn_safetensors_read(ref_path, &ref) == 0 && nn_safetensors_read(out, &got) == 0);
	const struct nn_tensor *rl = need(ref, "loss"), *ri = need(ref, "loss_items");
	const struct nn_tensor *gl = need(got, "loss"), *gi = need(got, "loss_items");
	CHECK(rl && ri && gl && gi);
	int fails = close_rel("loss", nn_tensor_get_f32(gl, 0), nn_tensor_get_f32(rl, 0), LOSS_RTOL);
	static const char *const item[3] = { "box loss", "cls loss", "dfl loss" };
	for (int k = 0; k < 3; k++)
		fails += close_rel(item[k], nn_tensor_get_f32(gi, k), nn_tensor_get_f32(ri, k), LOSS_RTOL);
	fails += compare_set("gradients", ref, "grad.", got, "grad.", GRAD_RTOL, GRAD_GLOBAL_RTOL, GRAD_ATOL_OF_NORM);
	fails += compare_buffers(ref, "after.", got);
	nn_tensor_map_destroy(&ref);
	nn_tensor_map_destroy(&got);
	test_remove(tmp, "step.safetensors");
	return fails != 0;
}

static int check_curve(void)
{
	char args[4096], out[1100], ref_path[1024];
	const char *sh = test_shared_dir();
	snprintf(ref_path, sizeof(ref_path), "%s/oracle/gelan-t_curve.safetensors", sh);
	if (access(ref_path, R_OK)) {
		printf("skip: %s not found (set VKYOLO_SHARED)\n", ref_path);
		return 77;
	}
	snprintf(out, sizeof(out), "%s/curve.safetensors", tmp);
	snprintf(args, sizeof(args), "step --model '%s/oracle/gelan-t_init.pt' --batch '%s' --steps 20 --out '%s'", sh,
	         ref_path, out);
	CHECK(run(args) == 0);
	struct nn_tensor_map *ref = NULL, *got = NULL;
	CHECK(nn_safetensors_read(ref_path, &ref) == 0 && nn_safetensors_read(out, &got) == 0);
	const struct nn_tensor *rl = need(ref, "loss"), *gl = need(got, "loss");
	const struct nn_tensor *rn = need(ref, "grad_norm_before_clip"), *gn = need(got, "grad_norm");
	CHECK(rl && gl && rn && gn && nn_tensor_numel(gl) == 20 && nn_tensor_numel(rl) == 20);
	int fails = 0;
	double worst_late = 0;
	for (int s = 0; s < 20; s++) {
		double a = nn_tensor_get_f32(gl, s), b = nn_tensor_get_f32(rl, s);
		double rel = fabs(a - b) / fabs(b);
		double tol = s == 0 ? CURVE_STEP1_LOSS_RTOL : s == 1 ? CURVE_STEP2_LOSS_RTOL : CURVE_LATE_LOSS_RTOL;
		printf("  %s step %2d: loss %.6f (oracle %.6f, rel %.2g, tol %.0e), grad norm %.5g (oracle %.5g)\n",
		       rel <= tol ? "ok  " : "FAIL", s + 1, a, b, rel, tol, nn_tensor_get_f32(gn, s), nn_tensor_get_f32(rn, s));
		fails += rel > tol;
		if (s > 1)
			worst_late = fmax(worst_late, rel);
	}
	double n0 = nn_tensor_get_f32(gn, 0), r0 = nn_tensor_get_f32(rn, 0);
	bool nok = fabs(n0 - r0) <= CURVE_STEP1_NORM_RTOL * fabs(r0);
	printf("%s step 1 gradient norm before clipping: %.6g (oracle %.6g)\n", nok ? "ok  " : "FAIL", n0, r0);
	fails += !nok;
	printf("%s loss curve: steps 3-20 worst rel %.3g (tol %.0e)\n", fails ? "FAIL" : "ok  ", worst_late,
	       CURVE_LATE_LOSS_RTOL);
	// per tensor: no bound (BN biases start at 0: their changes decorrelate); all together: bounded
	fails += compare_set("parameters after 20 steps", ref, "param.", got, "param.", INFINITY, CURVE_PARAM_GLOBAL_RTOL, 0);
	nn_tensor_map_destroy(&ref);
	nn_tensor_map_destroy(&got);
	test_remove(tmp, "curve.safetensors");
	return fails != 0;
}

int main(int argc, char **argv)
{
	if (argc < 3 || (!strcmp(argv[2], "step") && argc < 4)) {
		fprintf(stderr, "usage: %s VKYOLO step MODEL | curve\n", argv[0]);
		return 1;
	}
	exe = argv[1];
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	int ret = !strcmp(argv[2], "curve") ? check_curve() : check_step(argv[3]);
	rmdir(tmp);
	printf("%s\n", ret == 0 ? "PASS" : ret == 77 ? "SKIP" : "FAIL");
	return ret;
}
