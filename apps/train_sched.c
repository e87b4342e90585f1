// The official training schedule of train.py (hyp.scratch-high.yaml): linear lr lambda, warmup of
// lr / momentum / accumulation by np.interp, EMA ramp, and the model initialisation of a run from
// scratch (initialize_weights + Detect.bias_init).
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "train.h"

double train_lf(uint32_t epoch, uint32_t epochs, double lrf)
{
	return (1.0 - (double)epoch / epochs) * (1.0 - lrf) + lrf;
}

uint32_t train_accumulate(uint32_t batch)
{
	double a = nearbyint((double)TRAIN_NBS / batch); // round half to even, as Python's round
	return a < 1 ? 1 : (uint32_t)a;
}

uint32_t train_warmup_iters(const struct nn_hyp *h, uint32_t batches_per_epoch)
{
	double nw = nearbyint(h->warmup_epochs * batches_per_epoch);
	return nw > 100 ? (uint32_t)nw : 100;
}

static double interp(double x, double x1, double y0, double y1) // np.interp(x, [0, x1], [y0, y1])
{
	if (x <= 0)
		return y0;
	if (x >= x1)
		return y1;
	return y0 + (y1 - y0) * (x / x1);
}

void train_sched_at(const struct nn_hyp *h, uint32_t epochs, uint32_t batch, uint32_t nw, uint64_t ni,
                    uint32_t epoch, struct train_iter_sched *out)
{
	double base = h->lr0 * train_lf(epoch, epochs, h->lrf);
	if (ni <= nw) {
		double a = nearbyint(interp((double)ni, nw, 1.0, (double)TRAIN_NBS / batch));
		out->accumulate = a < 1 ? 1 : (uint32_t)a;
		for (int j = 0; j < NN_GROUP_COUNT; j++)
			out->lr[j] = (float)interp((double)ni, nw, j == NN_GROUP_BIASES ? h->warmup_bias_lr : 0.0, base);
		out->momentum = (float)interp((double)ni, nw, h->warmup_momentum, h->momentum);
	} else {
		out->accumulate = train_accumulate(batch);
		for (int j = 0; j < NN_GROUP_COUNT; j++)
			out->lr[j] = (float)base;
		out->momentum = (float)h->momentum;
	}
}

// "<head>.cv<k>.<level>.2": the last (bare 1x1) conv of a head branch; returns k, or 0.
static int head_branch(const char *name, uint32_t *level)
{
	const char *p = strstr(name, ".cv");
	int k = 0, used = 0;
	unsigned lv = 0;
	while (p) {
		if (sscanf(p, ".cv%d.%u.2%n", &k, &lv, &used) == 2 && used > 0 && p[used] == '\0') {
			*level = lv;
			return k;
		}
		p = strstr(p + 1, ".cv");
	}
	return 0;
}

void train_init_official(struct nn_model *m)
{
	const struct nn_model_layer *det = &m->layers[m->n_layers - 1];
	for (uint32_t i = 0; i < m->n_ops; i++) {
		struct nn_op *op = &m->ops[i];
		if (op->kind != NN_OP_CONV)
			continue;
		for (uint32_t c = 0; op->bn.gamma && c < op->y.c; c++)
			op->bn.gamma[c] = 1.0f, op->bn.beta[c] = 0.0f, op->bn.mean[c] = 0.0f, op->bn.var[c] = 1.0f;
		uint32_t level = 0;
		int k = op->bare && op->b && i >= det->op_begin && i < det->op_end ? head_branch(op->name, &level) : 0;
		if (!k || level >= m->nl)
			continue;
		bool box = k == 2 || k == 4; // cv2 / cv4: box distribution; cv3 / cv5: classes
		float cls = (float)log(5.0 / m->nc / pow(640.0 / m->stride[level], 2));
		for (uint32_t c = 0; c < op->y.c; c++)
			op->b[c] = box ? 1.0f : c < m->nc ? cls : op->b[c];
	}
}
