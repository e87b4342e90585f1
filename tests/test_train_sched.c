// Unit test of the `vkyolo train` schedule (apps/train_sched.c) against values worked out by hand
// from the official train.py formulas (np.interp, Python / NumPy round-half-to-even), and of the
// official initialisation (BatchNorm reset, Detect.bias_init) on gelan-t and the dual-head yolov9-t.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "log.h"
#include "train.h"
#include "yaml_read.h"

// float32 results of double formulas: one rounding
#define RTOL 1e-6

static int near(double got, double want)
{
	return fabs(got - want) <= 1e-9 + RTOL * fabs(want);
}

static int check_schedule(void)
{
	struct nn_hyp h;
	nn_hyp_defaults(&h);
	// accumulate = max(round(64 / bs), 1): 128 -> round(0.5) = 0 -> 1 (half to even)
	const uint32_t bs[] = {1, 8, 16, 24, 40, 48, 64, 128}, acc[] = {64, 8, 4, 3, 2, 1, 1, 1};
	for (int i = 0; i < 8; i++)
		CHECKF(train_accumulate(bs[i]) == acc[i], "accumulate(%u) = %u, want %u", bs[i], train_accumulate(bs[i]),
		       acc[i]);
	// nw = max(round(warmup_epochs * nb), 100)
	CHECK(train_warmup_iters(&h, 10) == 100 && train_warmup_iters(&h, 50) == 150 && train_warmup_iters(&h, 41) == 123);
	h.warmup_epochs = 2.5; // 2.5 * 41 = 102.5 -> 102 (half to even)
	CHECKF(train_warmup_iters(&h, 41) == 102, "warmup 102.5 -> %u", train_warmup_iters(&h, 41));
	nn_hyp_defaults(&h);
	CHECK(near(train_lf(0, 100, 0.01), 1.0) && near(train_lf(50, 100, 0.01), 0.505) &&
	      near(train_lf(99, 100, 0.01), 0.0199));
	struct train_iter_sched s;
	// batch 16, nw 100, ni 50 (epoch 0): bias lr 0.1 -> 0.01 halfway, others 0 -> 0.01, momentum
	// 0.8 -> 0.937, accumulate round(1 + 3 * 0.5 = 2.5) = 2
	train_sched_at(&h, 100, 16, 100, 50, 0, &s);
	CHECKF(near(s.lr[0], 0.055) && near(s.lr[1], 0.005) && near(s.lr[2], 0.005) && near(s.momentum, 0.8685) &&
	       s.accumulate == 2, "ni 50: lr %g %g %g momentum %g accumulate %u", s.lr[0], s.lr[1], s.lr[2],
	       s.momentum, s.accumulate);
	train_sched_at(&h, 100, 16, 100, 0, 0, &s); // first iteration: 0.1, 0, 0, 0.8, 1
	CHECK(near(s.lr[0], 0.1) && s.lr[1] == 0 && s.lr[2] == 0 && near(s.momentum, 0.8) && s.accumulate == 1);
	// batch 8, nw 140: accumulate = round(1 + 7 * ni / 140): ni 30 -> 2.5 -> 2, ni 50 -> 3.5 -> 4
	train_sched_at(&h, 100, 8, 140, 30, 0, &s);
	CHECKF(s.accumulate == 2, "2.5 -> %u", s.accumulate);
	train_sched_at(&h, 100, 8, 140, 50, 0, &s);
	CHECKF(s.accumulate == 4, "3.5 -> %u", s.accumulate);
	// after warmup, epoch 10 of 100: lr0 * lf(10) = 0.01 * (0.9 * 0.99 + 0.01) for every group
	train_sched_at(&h, 100, 16, 100, 101, 10, &s);
	CHECKF(near(s.lr[0], 0.00901) && near(s.lr[1], 0.00901) && near(s.lr[2], 0.00901) && near(s.momentum, 0.937) &&
	       s.accumulate == 4, "ni 101: lr %g momentum %g accumulate %u", s.lr[0], s.momentum, s.accumulate);
	// warmup ends at ni == nw exactly on the lambda's value of that epoch
	train_sched_at(&h, 100, 16, 100, 100, 9, &s);
	CHECK(near(s.lr[0], 0.01 * train_lf(9, 100, 0.01)) && near(s.momentum, 0.937) && s.accumulate == 4);
	printf("ok   schedule: accumulate, warmup length, lr lambda, warmup interpolation (8 points)\n");
	return 0;
}

static int check_init(const char *yaml, uint32_t want_sets)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/assets/models/%s", VKYOLO_SOURCE_ROOT, yaml);
	struct nn_value *arch = NULL;
	struct nn_model *m = NULL;
	CHECK(nn_yaml_read_file(path, &arch) == 0);
	CHECK(nn_model_create(arch, NULL, &(struct nn_model_params){.random_seed = 3}, &m) == 0);
	train_init_official(m);
	size_t n_bn = 0, n_box = 0, n_cls = 0;
	int fails = 0;
	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct nn_op *op = &m->ops[i];
		for (uint32_t c = 0; op->kind == NN_OP_CONV && op->bn.gamma && c < op->y.c; c++, n_bn += c == op->y.c)
			fails += !(op->bn.gamma[c] == 1 && op->bn.beta[c] == 0 && op->bn.mean[c] == 0 && op->bn.var[c] == 1);
		int k;
		unsigned lv;
		char tail[8];
		const char *p = strrchr(op->name, 'c'); // "...cv<k>.<level>.2"
		if (op->kind != NN_OP_CONV || !op->bare || !p || p == op->name || p[-1] != '.' ||
		    sscanf(p, "cv%d.%u.%7s", &k, &lv, tail) != 3 || strcmp(tail, "2") || k < 2 || k > 5 ||
		    i < m->layers[m->n_layers - 1].op_begin)
			continue;
		double want = (k == 2 || k == 4) ? 1.0 : log(5.0 / m->nc / pow(640.0 / m->stride[lv], 2));
		(k == 2 || k == 4) ? n_box++ : n_cls++;
		for (uint32_t c = 0; c < (k == 2 || k == 4 ? op->y.c : m->nc); c++)
			if (!near(op->b[c], want)) {
				printf("FAIL %s bias[%u] = %.8g, want %.8g\n", op->name, c, op->b[c], want);
				fails++;
				break;
			}
	}
	bool ok = !fails && n_bn > 0 && n_box == m->nl * want_sets && n_cls == m->nl * want_sets;
	printf("%s init %s: %zu BatchNorms reset, %zu box and %zu class head biases (cls P3 %.6f)\n", ok ? "ok  " : "FAIL",
	       yaml, n_bn, n_box, n_cls, log(5.0 / m->nc / pow(640.0 / m->stride[0], 2)));
	nn_model_destroy(&m);
	nn_value_destroy(&arch);
	return ok ? 0 : 1;
}

int main(void)
{
	gpu_log_init(GPU_LOG_WARN, NULL, NULL);
	int fails = check_schedule() + check_init("gelan-t.yaml", 1) + check_init("yolov9-t.yaml", 2);
	printf(fails ? "FAILED\n" : "all passed\n");
	return fails ? 1 : 0;
}
