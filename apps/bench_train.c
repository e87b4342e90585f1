// `vkyolo bench --train`: the speed of the training step (forward, loss, backward, optimizer) of a
// model on synthetic data, and the GPU time per kernel kind. Reported, never asserted.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "checkpoint.h"
#include "model.h"
#include "trainer.h"
#include "yaml_read.h"

struct kind_total {
	char kind[32];
	double ms;
	uint32_t count;
};

// GPU time per kernel kind (the label's part after '/') and the slowest dispatches of one phase.
static void print_phase(struct nn_trainer *tr, enum nn_trainer_phase phase, const char *name, uint32_t top, FILE *f)
{
	enum { CAP = 8192, KINDS = 32 };
	struct gpu_timing *tm = malloc(CAP * sizeof(*tm));
	struct kind_total kinds[KINDS] = { 0 };
	uint32_t n = 0, nk = 0;
	if (!tm || nn_trainer_timings(tr, phase, tm, CAP, &n) || !n) {
		free(tm);
		return;
	}
	double total = 0;
	for (uint32_t i = 0; i < n; i++) {
		const char *slash = tm[i].label ? strrchr(tm[i].label, '/') : NULL;
		const char *kind = slash ? slash + 1 : tm[i].label ? tm[i].label : "?";
		uint32_t k = 0;
		while (k < nk && strcmp(kinds[k].kind, kind))
			k++;
		if (k == nk && nk < KINDS)
			snprintf(kinds[nk++].kind, sizeof(kinds[0].kind), "%s", kind);
		if (k < nk)
			kinds[k].ms += tm[i].ms, kinds[k].count++;
		total += tm[i].ms;
	}
	fprintf(f, "%s: %u dispatches, %.1f ms of GPU time\n", name, n, total);
	for (uint32_t a = 0; a < nk; a++) // by time, descending
		for (uint32_t b = a + 1; b < nk; b++)
			if (kinds[b].ms > kinds[a].ms) {
				struct kind_total x = kinds[a];
				kinds[a] = kinds[b], kinds[b] = x;
			}
	for (uint32_t a = 0; a < nk; a++)
		fprintf(f, "  %-14s %9.1f ms %5.1f%%  (%u dispatches)\n", kinds[a].kind, kinds[a].ms,
		        100.0 * kinds[a].ms / total, kinds[a].count);
	for (uint32_t t = 0; t < top && t < n; t++) { // selection of the slowest
		uint32_t best = t;
		for (uint32_t i = t + 1; i < n; i++)
			if (tm[i].ms > tm[best].ms)
				best = i;
		struct gpu_timing x = tm[t];
		tm[t] = tm[best], tm[best] = x;
		fprintf(f, "    %8.1f ms  %s\n", tm[t].ms, tm[t].label ? tm[t].label : "?");
	}
	free(tm);
}

void app_train_profile_print(struct nn_trainer *tr, uint32_t top, FILE *f)
{
	print_phase(tr, NN_TRAINER_PHASE_FORWARD, "forward", top, f);
	print_phase(tr, NN_TRAINER_PHASE_LOSS, "loss", top, f);
	print_phase(tr, NN_TRAINER_PHASE_BACKWARD, "backward", top, f);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, uint32_t n)
{
	qsort(v, n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// An unfused model for training: a YAML description (random official-style init) or a checkpoint.
static int load_train_model(const char *path, struct nn_checkpoint **ck, struct nn_model **m)
{
	size_t len = strlen(path);
	if (len > 5 && (!strcmp(path + len - 5, ".yaml") || !strcmp(path + len - 4, ".yml"))) {
		struct nn_value *arch = NULL;
		int ret = nn_yaml_read_file(path, &arch);
		if (!ret)
			ret = nn_model_create(arch, NULL, &(struct nn_model_params){ .random_seed = 1 }, m);
		nn_value_destroy(&arch);
		return ret;
	}
	return app_model_load(path, false, ck, m);
}

// Forward GFLOP of the convolutions (2 x multiply-adds) at batch n, h x w.
static double forward_gflop(const struct nn_model *m, uint32_t n, uint32_t h, uint32_t w)
{
	struct nn_shape *s = calloc(m->n_tensors, sizeof(*s));
	double g = 0;
	if (!s || nn_model_shapes(m, h, w, s)) {
		free(s);
		return 0;
	}
	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct nn_op *op = &m->ops[i];
		struct nn_conv2d_desc d;
		if (op->kind != NN_OP_CONV)
			continue;
		nn_op_conv_desc(op, s, n, &d);
		g += 2.0 * n * nn_conv2d_out_h(&d) * nn_conv2d_out_w(&d) * d.c_out * (d.c_in / d.groups) * d.k_h * d.k_w * 1e-9;
	}
	free(s);
	return g;
}

int app_bench_train(const char *model, const char *device, uint32_t batch, uint32_t h, uint32_t w, uint32_t iters,
                    uint32_t warmup, bool per_kernel, uint32_t top, bool cpu)
{
	struct gpu_instance *inst = NULL;
	struct gpu_device *dev = NULL;
	struct nn_checkpoint *ck = NULL;
	struct nn_model *m = NULL;
	struct nn_trainer *tr = NULL;
	size_t in_size = (size_t)batch * 3 * h * w;
	uint8_t *input = malloc(in_size);
	float *targets = malloc((size_t)batch * 4 * 6 * sizeof(float));
	double *ph[5] = { 0 };
	for (int k = 0; k < 5; k++)
		ph[k] = calloc(iters, sizeof(double));
	int ret = input && targets && ph[0] && ph[1] && ph[2] && ph[3] && ph[4] ? 0 : -ENOMEM;
	if (ret)
		goto done;
	for (size_t i = 0; i < in_size; i++)
		input[i] = (uint8_t)((i * 2654435761u) >> 24);
	for (uint32_t b = 0; b < batch; b++) // four boxes per image, four classes
		for (uint32_t k = 0; k < 4; k++) {
			float *t = targets + ((size_t)b * 4 + k) * 6;
			t[0] = (float)b, t[1] = (float)k, t[2] = 0.2f + 0.2f * k, t[3] = 0.3f + 0.1f * k;
			t[4] = 0.1f + 0.05f * k, t[5] = 0.15f + 0.1f * k;
		}
	double t0 = app_now_ms();
	if ((ret = load_train_model(model, &ck, &m)) || (!cpu && (ret = app_open_device(device, &inst, &dev))))
		goto done;
	ret = nn_trainer_create(dev, m, &(struct nn_trainer_params){ .n = batch, .h = h, .w = w, .cpu_reference = cpu,
	                                                              .timestamps = per_kernel }, &tr);
	if (ret)
		goto done;
	double t_setup = app_now_ms() - t0;
	const struct nn_trainer_step_params sp = { .lr = { 0.01f, 0.01f, 0.01f }, .momentum = 0.937f,
	                                           .weight_decay = 5e-4f, .max_grad_norm = 10.0f, .nesterov = true };
	struct timespec c0, c1;
	for (uint32_t i = 0; i < warmup + iters && !ret; i++) {
		if (i == warmup)
			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
		struct nn_loss_out lo;
		double s = app_now_ms(), norm;
		if ((ret = nn_trainer_zero_grad(tr)) ||
		    (ret = nn_trainer_forward_backward(tr, input, targets, batch * 4, &lo)) ||
		    (ret = nn_trainer_step(tr, &sp, &norm)) || (ret = nn_trainer_ema_update(tr, 0.9)))
			break;
		double total = app_now_ms() - s;
		struct nn_trainer_timing tt;
		nn_trainer_timing(tr, &tt);
		if (i >= warmup) {
			uint32_t k = i - warmup;
			ph[0][k] = tt.forward_ms, ph[1][k] = tt.loss_ms, ph[2][k] = tt.backward_ms;
			ph[3][k] = tt.optimizer_ms + tt.ema_ms, ph[4][k] = total;
		}
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	if (ret)
		goto done;
	double cpu_ms = ((c1.tv_sec - c0.tv_sec) * 1e3 + (c1.tv_nsec - c0.tv_nsec) * 1e-6) / iters;
	double fwd = median(ph[0], iters), loss = median(ph[1], iters), bwd = median(ph[2], iters);
	double opt = median(ph[3], iters), step = median(ph[4], iters);
	double gf = forward_gflop(m, batch, h, w), peak = 0;
	struct nn_trainer_timing tt;
	nn_trainer_timing(tr, &tt);
	if (dev)
		app_measure_peak_gflops(dev, &peak);
	const char *dname = dev ? gpu_device_info(dev)->name : "CPU reference";
	printf("device      %s\n", dname);
	printf("model       %s, training step, batch %u, %ux%u, fp32 (%u timed steps after %u warm-up)\n", model,
	       batch, h, w, iters, warmup);
	printf("setup       %.1f ms (model, pipelines, upload, record)\n", t_setup);
	printf("step        median %.1f ms: forward %.1f, loss %.1f, backward %.1f, optimizer + EMA %.1f\n", step, fwd,
	       loss, bwd, opt);
	printf("throughput  %.2f images/s\n", 1000.0 * batch / step);
	printf("cpu time    %.1f ms per step (process CPU time, all threads)\n", cpu_ms);
	// backward of a conv = data gradient + weight gradient, each about the forward's FLOPs
	printf("compute     %.2f GFLOP forward, ~%.2f GFLOP per step (3x), %.2f GFLOP/s", gf, 3 * gf,
	       3 * gf / (step * 1e-3));
	if (peak > 0)
		printf(" = %.1f%% of the measured fp32 peak %.1f GFLOP/s\n", 100 * 3 * gf / (step * 1e-3) / peak, peak);
	else
		printf("\n");
	printf("memory      %.1f MiB of device memory at peak\n", tt.device_peak_bytes / 1048576.0);
	if (per_kernel)
		app_train_profile_print(tr, top, stdout);
done:
	if (ret)
		fprintf(stderr, "vkyolo bench --train: failed (see the message above)\n");
	nn_trainer_destroy(&tr);
	nn_model_destroy(&m);
	nn_checkpoint_destroy(&ck);
	app_close_device(&inst, &dev);
	free(input), free(targets);
	for (int k = 0; k < 5; k++)
		free(ph[k]);
	return ret ? APP_EXIT_FAILURE : APP_EXIT_OK;
}
