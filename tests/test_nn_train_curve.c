// Training-loop reference against the official short run (shared/oracle/<model>_curve.safetensors):
//   test_nn_train_curve <model> [steps]
// From <model>_init.pt, on the file's fixed batch: training-mode forward (BatchNorm on batch statistics,
// running stats updated with momentum 0.03), official TAL loss and its gradient, reference backward,
// gradient-norm clipping at 10, SGD (Nesterov, momentum 0.937, lr 0.01, weight decay 5e-4 on conv
// weights). Every step's loss and pre-clip gradient norm against the oracle; after all 20 steps, the
// param.* and buffer.* tensors. With steps < 20 only those steps are checked. See the note on chaos.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "checkpoint.h"
#include "log.h"
#include "loss.h"
#include "optim_ref.h"
#include "oracle_batch.h"

// The run is chaotic: its top-k assignment and max-pool arg-maxes are discrete, so a change of the
// update by 1e-3 relative (lr 0.01 vs 0.01001, measured) moves the next step's loss by ~1e-3 and its
// gradient norm by ~15%, and a few steps decorrelate the parameter changes (our own run with lr *
// (1 + 1e-6) against our run: after 8 steps the BN biases, i.e. their changes from 0, differ by 59%
// and all parameters by 0.6% relative L2; measured). Only the start is comparable:
// step 0 (forward, loss, backward, clipping norm; measured 3e-6 and 4e-5) and step 1's loss, which
// checks the update (lr, Nesterov, decay groups, clipping: measured 1.3e-4; without Nesterov 8e-3,
// half the lr 2.5e-3). Later losses and the final state are printed and bounded only loosely (a
// diverging or inert optimizer breaks those bounds).
#define STEP0_LOSS_RTOL 1e-4
#define STEP0_NORM_RTOL 1e-3
#define STEP1_LOSS_RTOL 1e-3
#define LATE_LOSS_RTOL 1e-1  // measured worst 4.9% (step 17)
#define STATE_GLOBAL_RTOL 5e-2 // all parameters together, relative L2: measured 2.4e-2

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// One training step; loss, items and the pre-clip norm out.
static int train_step(struct nn_model *m, struct nn_sgd *opt, struct nn_model_grads *g, const float *x, uint32_t n,
                      uint32_t h, uint32_t w, const struct nn_tensor *tg, double *loss, double items[3], double *norm)
{
	struct nn_ref_outputs fw = {0};
	struct nn_loss_out lo;
	int ret = nn_model_loss_grads_ref(m, n, h, w, x, tg->data, (uint32_t)tg->shape[0], &fw, &lo, g);
	if (!ret)
		ret = nn_model_bn_update_ref(m, &fw, 0.03f);
	if (!ret) {
		*loss = lo.loss;
		items[0] = lo.items[0], items[1] = lo.items[1], items[2] = lo.items[2];
		*norm = nn_model_grads_clip_ref(g, m, 10.0);
		struct nn_sgd_params sp = {.lr = 0.01f, .momentum = 0.937f, .weight_decay = 5e-4f, .nesterov = true};
		ret = nn_sgd_step_ref(opt, m, g, &sp);
	}
	nn_ref_outputs_finish(&fw);
	return ret;
}

// Every `<tag><name>` tensor of ref against the model's state tensor <name>: relative L2 error of all
// of them together (checked against `global_rtol`, < 0: report only), the worst tensor, and the error
// of the change from the initial state (init), which shows how far the trajectories drifted apart.
static int compare_state(const struct nn_tensor_map *ref, const struct nn_tensor_map *state,
                         const struct nn_tensor_map *init, const char *tag, double global_rtol)
{
	size_t tl = strlen(tag), n = 0;
	int missing = 0;
	double worst = 0.0, e2_all = 0.0, r2_all = 0.0, c2_all = 0.0;
	const char *worst_name = "";
	for (size_t i = 0; i < ref->count; i++) {
		const struct nn_tensor *w = &ref->items[i];
		if (strncmp(w->name, tag, tl) || w->dtype != NN_DTYPE_F32)
			continue;
		const struct nn_tensor *t = nn_tensor_map_find(state, w->name + tl), *t0 = nn_tensor_map_find(init, w->name + tl);
		n++;
		if (!t || !t0 || nn_tensor_numel(t) != nn_tensor_numel(w)) {
			printf("FAIL %s: %s\n", w->name, t ? "size differs" : "not in the model");
			missing++;
			continue;
		}
		double e2 = 0.0, r2 = 0.0;
		for (int64_t k = 0; k < nn_tensor_numel(w); k++) {
			double a = nn_tensor_get_f32(t, k), b = nn_tensor_get_f32(w, k), a0 = nn_tensor_get_f32(t0, k);
			e2 += (a - b) * (a - b), r2 += b * b, c2_all += (b - a0) * (b - a0);
		}
		e2_all += e2, r2_all += r2;
		double rel = r2 > 0 ? sqrt(e2 / r2) : sqrt(e2);
		if (rel > worst)
			worst = rel, worst_name = w->name;
	}
	double global = r2_all > 0 ? sqrt(e2_all / r2_all) : 0.0, change = c2_all > 0 ? sqrt(e2_all / c2_all) : 0.0;
	bool ok = !missing && n > 0 && (global_rtol < 0 || global <= global_rtol);
	printf("%s %s*: %zu tensors: all together rel L2 %.3g; worst %s %.3g; error of the change from init %.3g of "
	       "the change\n", ok ? "ok  " : "FAIL", tag, n, global, worst_name, worst, change);
	return ok ? 0 : 1;
}

static int run(const char *model, uint32_t steps)
{
	char path[512];
	struct nn_checkpoint *ck = NULL;
	struct nn_tensor_map *ref = NULL, *state = NULL, *init = NULL;
	struct nn_model *m = NULL;
	struct nn_model_grads *g = NULL;
	struct nn_sgd *opt = NULL;
	float *x = NULL;
	int fails = 1;
	struct oracle_batch ob;
	int ret = oracle_batch_load(model, "_curve.safetensors", &ob);
	if (ret) {
		oracle_batch_free(&ob);
		return ret;
	}
	ref = ob.ref, x = ob.x;
	const struct nn_tensor *tg = ob.targets, *wl = nn_tensor_map_find(ref, "loss");
	const struct nn_tensor *wn = nn_tensor_map_find(ref, "grad_norm_before_clip");
	CHECK(wl && wn && wl->dtype == NN_DTYPE_F32 && nn_tensor_numel(wl) == nn_tensor_numel(wn));
	uint32_t total = (uint32_t)nn_tensor_numel(wl);
	if (steps == 0 || steps > total)
		steps = total;
	uint32_t n = ob.n, h = ob.h, w = ob.w;
	snprintf(path, sizeof(path), "%s/oracle/%s_init.pt", test_shared_dir(), model);
	struct nn_model_params p = {.fuse = false};
	if (nn_checkpoint_load(path, &ck) || !ck->arch || (p.names = ck->names, nn_model_create(ck->arch, ck->state, &p, &m)) ||
	    nn_model_grads_create(m, &g) || nn_sgd_create(m, &opt) || nn_tensor_map_create(&init) ||
	    nn_model_export_state(m, init)) {
		printf("FAIL loading %s\n", path);
		goto done;
	}
	fails = 0;
	for (uint32_t k = 0; k < steps; k++) {
		double t0 = now_s(), loss = 0, items[3], norm = 0;
		if (train_step(m, opt, g, x, n, h, w, tg, &loss, items, &norm)) {
			printf("FAIL step %u\n", k);
			fails++;
			goto done;
		}
		double want = ((const float *)wl->data)[k], want_norm = ((const float *)wn->data)[k];
		double rel = fabs(loss - want) / fabs(want), rel_norm = fabs(norm - want_norm) / want_norm;
		bool ok = k == 0 ? rel <= STEP0_LOSS_RTOL && rel_norm <= STEP0_NORM_RTOL
		          : k == 1 ? rel <= STEP1_LOSS_RTOL : rel <= LATE_LOSS_RTOL;
		printf("%s step %2u: loss %.6f want %.6f (rel %.2g), grad norm %.4f want %.4f (rel %.2g), %.1f s\n",
		       ok ? "ok  " : "FAIL", k, loss, want, rel, norm, want_norm, rel_norm, now_s() - t0);
		fails += !ok;
	}
	if (steps == total) {
		if (nn_tensor_map_create(&state) || nn_model_export_state(m, state)) {
			fails++;
			goto done;
		}
		fails += compare_state(ref, state, init, "param.", STATE_GLOBAL_RTOL);
		fails += compare_state(ref, state, init, "buffer.", -1.0); // running stats: the trajectories' stats
	}
done:
	nn_sgd_destroy(&opt);
	nn_model_grads_destroy(&g);
	nn_model_destroy(&m);
	nn_checkpoint_destroy(&ck);
	nn_tensor_map_destroy(&ref);
	nn_tensor_map_destroy(&state);
	nn_tensor_map_destroy(&init);
	free(x);
	return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
	gpu_log_init(GPU_LOG_WARN, NULL, NULL);
	if (argc < 2) {
		printf("usage: test_nn_train_curve <model> [steps]\n");
		return 1;
	}
	int ret = run(argv[1], argc > 2 ? (uint32_t)atoi(argv[2]) : 0);
	printf(ret == 0 ? "all passed\n" : ret == 77 ? "skipped\n" : "FAILED\n");
	return ret;
}
