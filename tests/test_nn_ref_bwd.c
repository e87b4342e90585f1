// Unit tests of the CPU reference backward operators (nn/ref_bwd.h) against central finite
// differences of the forward references (nn/ref.h): small odd, non-square shapes, batch 2, channel
// slices, groups, stride 2, padding, the 2x2 average pool before a conv, residuals before and after
// the activation, training- and eval-mode BatchNorm, max/avg pooling and nearest resizing.
//
// Each check: L = sum_i c_i * y_i (random c, summed in double) over the op's output slice, so dL/dy = c;
// the analytic gradient of every input entry is compared with (L(v + h) - L(v - h)) / 2h.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ref_bwd.h"

// The forwards are fp32: with outputs of order 1, L carries ~1e-7 relative rounding noise per term,
// which a step of 1e-2 divides into ~1e-5 of the gradient scale; the truncation error of smooth ops
// (SiLU, sigmoid, BN) at this step is ~h^2 * f''' ~ 1e-5. Linear ops are exact up to rounding.
// A wrong index or a missing term moves an entry by O(1) of the scale.
#define FD_STEP 1e-2f
#define FD_ATOL 2e-4 // times the largest |gradient| of the tensor
#define FD_RTOL 2e-3

static uint32_t rng_state = 2024;
static float frand(void)
{
	rng_state = rng_state * 1664525u + 1013904223u;
	return (float)((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static float *rand_buf(size_t n, float scale)
{
	float *p = malloc((n ? n : 1) * sizeof(float));
	for (size_t i = 0; i < n; i++)
		p[i] = frand() * scale;
	return p;
}

// The op under test: fills y from the current inputs; `out` holds count outputs weighted by coef.
struct fd_op {
	void (*forward)(struct fd_op *);
	float *out, *coef;
	size_t count;
	void *ctx;
};

static double loss(struct fd_op *op)
{
	op->forward(op);
	double l = 0.0;
	for (size_t i = 0; i < op->count; i++)
		l += (double)op->coef[i] * op->out[i];
	return l;
}

// Compares grad[i] with the central difference of L in v[i], i < n.
static int fd_check(const char *what, struct fd_op *op, float *v, const float *grad, size_t n)
{
	double gmax = 0.0, worst = -INFINITY, worst_fd = 0.0, max_err = 0.0;
	size_t worst_i = 0;
	for (size_t i = 0; i < n; i++)
		gmax = fmax(gmax, fabs(grad[i]));
	for (size_t i = 0; i < n; i++) {
		float v0 = v[i], vp = v0 + FD_STEP, vm = v0 - FD_STEP;
		v[i] = vp;
		double lp = loss(op);
		v[i] = vm;
		double lm = loss(op);
		v[i] = v0;
		double fd = (lp - lm) / ((double)vp - (double)vm), err = fabs(grad[i] - fd);
		double excess = err - (FD_ATOL * gmax + FD_RTOL * fabs(fd));
		max_err = fmax(max_err, err);
		if (excess > worst)
			worst = excess, worst_i = i, worst_fd = fd;
	}
	bool ok = worst <= 0 && gmax > 0;
	printf("%s %-40s %4zu entries, max |grad| %.4g, max err %.3g; worst [%zu] analytic %.7g fd %.7g\n",
	       ok ? "ok  " : "FAIL", what, n, gmax, max_err, worst_i, grad[worst_i], worst_fd);
	return ok ? 0 : 1;
}

// ---- convolution: y = act(conv(x') + b [+ r]) [+ r] over slices ----
struct conv_case {
	struct nn_conv2d_desc d;
	float *x, *w, *b, *r, *y;
	size_t nx, nw, nr, ny;
};

static void conv_fwd(struct fd_op *op)
{
	struct conv_case *c = op->ctx;
	nn_conv2d_forward_ref(&c->d, c->x, c->w, c->b, c->r, c->y);
}

static int conv_check(const char *name, struct nn_conv2d_desc d)
{
	struct conv_case c = {.d = d};
	uint32_t ho = nn_conv2d_out_h(&d), wo = nn_conv2d_out_w(&d);
	size_t hw = (size_t)ho * wo;
	c.nx = (size_t)d.n * d.x_c_total * d.h_in * d.w_in;
	c.nw = (size_t)d.c_out * (d.c_in / d.groups) * d.k_h * d.k_w;
	c.nr = d.r_c_total ? (size_t)d.n * d.r_c_total * hw : 0;
	c.ny = (size_t)d.n * d.y_c_total * hw;
	c.x = rand_buf(c.nx, 1.0f), c.w = rand_buf(c.nw, 0.5f), c.b = rand_buf(d.c_out, 0.5f);
	c.r = c.nr ? rand_buf(c.nr, 1.0f) : NULL;
	c.y = rand_buf(c.ny, 1.0f); // channels outside the slice keep their values: coef 0 there matters not
	float *coef = calloc(c.ny, sizeof(float)), *pre = calloc((size_t)d.n * d.c_out * hw, sizeof(float));
	float *du = calloc((size_t)d.n * d.c_out * hw, sizeof(float));
	float *gx = calloc(c.nx, sizeof(float)), *gw = calloc(c.nw, sizeof(float)), *gb = calloc(d.c_out, sizeof(float));
	float *gr = c.nr ? calloc(c.nr, sizeof(float)) : NULL;
	for (uint32_t n = 0; n < d.n; n++) // dL/dy = coef on the y slice only
		for (size_t i = 0; i < d.c_out * hw; i++)
			coef[((size_t)n * d.y_c_total + d.y_c_off) * hw + i] = frand();
	// pre-activation into a dense tensor: same op without the activation and post-act residual
	struct nn_conv2d_desc dp = d;
	dp.act = NN_ACT_NONE, dp.y_c_total = d.c_out, dp.y_c_off = 0;
	nn_conv2d_forward_ref(&dp, c.x, c.w, c.b, d.res_before_act ? c.r : NULL, pre);
	nn_conv2d_act_backward_ref(&d, pre, coef, du, gr);
	nn_conv2d_backward_data_ref(&d, du, c.w, gx);
	nn_conv2d_backward_weight_ref(&d, c.x, du, gw, gb);
	// d L / d x outside the x slice must stay 0: the FD over all of x checks that too
	struct fd_op op = {conv_fwd, c.y, coef, c.ny, &c};
	char what[96];
	int fails = 0;
	snprintf(what, sizeof(what), "conv %s dx", name);
	fails += fd_check(what, &op, c.x, gx, c.nx);
	snprintf(what, sizeof(what), "conv %s dw", name);
	fails += fd_check(what, &op, c.w, gw, c.nw);
	snprintf(what, sizeof(what), "conv %s db", name);
	fails += fd_check(what, &op, c.b, gb, d.c_out);
	if (c.r) {
		snprintf(what, sizeof(what), "conv %s dr", name);
		fails += fd_check(what, &op, c.r, gr, c.nr);
	}
	free(c.x), free(c.w), free(c.b), free(c.r), free(c.y), free(coef), free(pre), free(du);
	free(gx), free(gw), free(gb), free(gr);
	return fails;
}

static int check_conv(void)
{
	int f = 0;
	// 3x3 s1 p1, slices on x and y, SiLU, residual after the activation (RepNBottleneck)
	f += conv_check("k3s1 slices silu res-after", (struct nn_conv2d_desc){
		.n = 2, .c_in = 3, .h_in = 5, .w_in = 7, .c_out = 4, .k_h = 3, .k_w = 3, .stride = 1, .pad = 1,
		.groups = 1, .act = NN_ACT_SILU, .x_c_total = 6, .x_c_off = 2, .y_c_total = 7, .y_c_off = 3,
		.r_c_total = 5, .r_c_off = 1});
	// 3x3 s2 p1 groups 2 after the 2x2/s1 average pool (AConv / ADown), odd sizes
	f += conv_check("k3s2 g2 avgpool silu", (struct nn_conv2d_desc){
		.n = 2, .c_in = 4, .h_in = 8, .w_in = 7, .c_out = 6, .k_h = 3, .k_w = 3, .stride = 2, .pad = 1,
		.groups = 2, .act = NN_ACT_SILU, .avgpool_before = true, .x_c_total = 5, .x_c_off = 1,
		.y_c_total = 6, .y_c_off = 0});
	// 1x1, no activation, residual before the activation (unfused RepConvN sum), bias
	f += conv_check("k1 res-before none", (struct nn_conv2d_desc){
		.n = 2, .c_in = 5, .h_in = 3, .w_in = 5, .c_out = 3, .k_h = 1, .k_w = 1, .stride = 1, .pad = 0,
		.groups = 1, .act = NN_ACT_NONE, .res_before_act = true, .x_c_total = 5, .y_c_total = 4, .y_c_off = 1,
		.r_c_total = 3});
	// 5x5 p2 groups 3, sigmoid with residual before it; 3x3 s2 p0 grouped like the head's box branch
	f += conv_check("k5 g3 sigmoid res-before", (struct nn_conv2d_desc){
		.n = 2, .c_in = 6, .h_in = 6, .w_in = 5, .c_out = 3, .k_h = 5, .k_w = 5, .stride = 1, .pad = 2,
		.groups = 3, .act = NN_ACT_SIGMOID, .res_before_act = true, .x_c_total = 6, .y_c_total = 3,
		.r_c_total = 4, .r_c_off = 1});
	f += conv_check("k3s2p0 g4 silu", (struct nn_conv2d_desc){
		.n = 2, .c_in = 8, .h_in = 9, .w_in = 6, .c_out = 4, .k_h = 3, .k_w = 3, .stride = 2, .pad = 0,
		.groups = 4, .act = NN_ACT_SILU, .x_c_total = 8, .y_c_total = 4});
	return f;
}

// ---- BatchNorm (+ SiLU after it, as in Conv) over a dense tensor ----
struct bn_case {
	struct nn_bn_desc d;
	float *z, *gamma, *beta, *rmean, *rvar, *y, *mean, *var;
};

static void bn_fwd(struct fd_op *op)
{
	struct bn_case *c = op->ctx;
	size_t cnt = (size_t)c->d.n * c->d.c * c->d.h * c->d.w;
	if (c->d.train)
		nn_bn_stats_ref(&c->d, c->z, c->mean, c->var);
	nn_bn_forward_ref(&c->d, c->z, c->gamma, c->beta, c->d.train ? c->mean : c->rmean,
	                  c->d.train ? c->var : c->rvar, c->y);
	for (size_t i = 0; i < cnt; i++)
		c->y[i] = nn_act_apply(NN_ACT_SILU, c->y[i]);
}

static int bn_check(bool train)
{
	struct bn_case c = {.d = {.n = 2, .c = 5, .h = 3, .w = 7, .eps = 1e-3f, .train = train}};
	size_t cnt = (size_t)c.d.n * c.d.c * c.d.h * c.d.w;
	c.z = rand_buf(cnt, 2.0f), c.gamma = rand_buf(c.d.c, 1.0f), c.beta = rand_buf(c.d.c, 0.5f);
	c.rmean = rand_buf(c.d.c, 0.3f), c.rvar = rand_buf(c.d.c, 0.2f);
	for (uint32_t i = 0; i < c.d.c; i++)
		c.rvar[i] += 1.0f, c.z[i] += 0.5f * (float)i; // channel means differ
	c.y = calloc(cnt, sizeof(float)), c.mean = calloc(c.d.c, sizeof(float)), c.var = calloc(c.d.c, sizeof(float));
	float *coef = rand_buf(cnt, 1.0f), *u = calloc(cnt, sizeof(float)), *du = calloc(cnt, sizeof(float));
	float *dz = calloc(cnt, sizeof(float)), *dg = calloc(c.d.c, sizeof(float)), *db = calloc(c.d.c, sizeof(float));
	const float *mean = train ? c.mean : c.rmean, *var = train ? c.var : c.rvar;
	if (train)
		nn_bn_stats_ref(&c.d, c.z, c.mean, c.var);
	nn_bn_forward_ref(&c.d, c.z, c.gamma, c.beta, mean, var, u);
	nn_act_backward_ref(NN_ACT_SILU, cnt, u, coef, du);
	nn_bn_backward_ref(&c.d, c.z, du, c.gamma, mean, var, dz, dg, db);
	struct fd_op op = {bn_fwd, c.y, coef, cnt, &c};
	int fails = fd_check(train ? "bn train + silu dz" : "bn eval + silu dz", &op, c.z, dz, cnt);
	fails += fd_check(train ? "bn train dgamma" : "bn eval dgamma", &op, c.gamma, dg, c.d.c);
	fails += fd_check(train ? "bn train dbeta" : "bn eval dbeta", &op, c.beta, db, c.d.c);
	if (train) { // running update: unbiased variance, momentum 0.03 (direct formula)
		float rm[5], rv[5];
		memcpy(rm, c.rmean, sizeof(rm)), memcpy(rv, c.rvar, sizeof(rv));
		nn_bn_running_update_ref(&c.d, 0.03f, c.mean, c.var, rm, rv);
		double m = (double)c.d.n * c.d.h * c.d.w, err = 0;
		for (uint32_t i = 0; i < c.d.c; i++)
			err = fmax(err, fabs(rv[i] - (0.97 * c.rvar[i] + 0.03 * c.var[i] * m / (m - 1))) +
			                    fabs(rm[i] - (0.97 * c.rmean[i] + 0.03 * c.mean[i])));
		bool ok = err <= 1e-6; // fp32 rounding of values of order 1
		printf("%s bn running update: max err %.3g\n", ok ? "ok  " : "FAIL", err);
		fails += !ok;
	}
	free(c.z), free(c.gamma), free(c.beta), free(c.rmean), free(c.rvar), free(c.y), free(c.mean), free(c.var);
	free(coef), free(u), free(du), free(dz), free(dg), free(db);
	return fails;
}

// ---- pools and resize ----
struct pool_case {
	struct nn_pool2d_desc d;
	struct nn_resize_desc rd;
	float *x, *y, *y0; // y0: y before the op (what an accumulating resize adds to)
	size_t ny;
	int kind; // 0 max, 1 avg, 2 resize
};

static void pool_fwd(struct fd_op *op)
{
	struct pool_case *c = op->ctx;
	if (c->kind == 0)
		nn_maxpool2d_forward_ref(&c->d, c->x, c->y);
	else if (c->kind == 1)
		nn_avgpool2d_forward_ref(&c->d, c->x, c->y);
	else {
		memcpy(c->y, c->y0, c->ny * sizeof(float));
		nn_resize_nearest_forward_ref(&c->rd, c->x, c->y);
	}
}

static int pool_check(const char *name, int kind, struct nn_pool2d_desc d, struct nn_resize_desc rd)
{
	struct pool_case c = {.d = d, .rd = rd, .kind = kind};
	size_t nx, ny;
	if (kind < 2) {
		nx = (size_t)d.n * d.x_c_total * d.h_in * d.w_in;
		ny = (size_t)d.n * d.y_c_total * nn_pool_out_size(d.h_in, d.k, d.stride, d.pad) *
		     nn_pool_out_size(d.w_in, d.k, d.stride, d.pad);
	} else {
		nx = (size_t)rd.n * rd.x_c_total * rd.h_in * rd.w_in;
		ny = (size_t)rd.n * rd.y_c_total * rd.h_out * rd.w_out;
	}
	// max pool: distinct values spaced 0.05 apart (> 2 steps) so no arg-max changes inside the FD step
	c.x = calloc(nx, sizeof(float));
	for (size_t i = 0; i < nx; i++)
		c.x[i] = kind == 0 ? 0.05f * (float)((i * 7919) % nx) - 1.0f : frand();
	c.y = rand_buf(ny, 1.0f), c.y0 = rand_buf(ny, 1.0f), c.ny = ny;
	float *coef = rand_buf(ny, 1.0f), *gx = calloc(nx, sizeof(float));
	if (kind == 0)
		nn_maxpool2d_backward_ref(&d, c.x, coef, gx);
	else if (kind == 1)
		nn_avgpool2d_backward_ref(&d, coef, gx);
	else
		nn_resize_nearest_backward_ref(&rd, coef, gx);
	// coef outside the y slice must not reach dx: zero it for the FD (the backward read only the slice)
	uint32_t yc = kind < 2 ? d.y_c_total : rd.y_c_total, yoff = kind < 2 ? d.y_c_off : rd.y_c_off;
	uint32_t cc = kind < 2 ? d.c : rd.c, n = kind < 2 ? d.n : rd.n;
	size_t hw = ny / n / yc;
	for (size_t i = 0; i < ny; i++) {
		uint32_t ch = (uint32_t)((i / hw) % yc);
		if (ch < yoff || ch >= yoff + cc)
			coef[i] = 0.0f;
	}
	struct fd_op op = {pool_fwd, c.y, coef, ny, &c};
	int fails = fd_check(name, &op, c.x, gx, nx);
	free(c.x), free(c.y), free(c.y0), free(coef), free(gx);
	return fails;
}

static int check_pools(void)
{
	int f = 0;
	struct nn_resize_desc r0 = {0};
	struct nn_pool2d_desc p0 = {0};
	f += pool_check("maxpool k3s2p1 (ADown) slices", 0, (struct nn_pool2d_desc){
		.n = 2, .c = 3, .h_in = 7, .w_in = 8, .k = 3, .stride = 2, .pad = 1, .x_c_total = 5, .x_c_off = 1,
		.y_c_total = 4, .y_c_off = 1}, r0);
	f += pool_check("maxpool k5s1p2 (SP)", 0, (struct nn_pool2d_desc){
		.n = 2, .c = 2, .h_in = 6, .w_in = 5, .k = 5, .stride = 1, .pad = 2, .x_c_total = 2, .y_c_total = 6,
		.y_c_off = 4}, r0);
	f += pool_check("avgpool k2s1p0 slices", 1, (struct nn_pool2d_desc){
		.n = 2, .c = 3, .h_in = 5, .w_in = 7, .k = 2, .stride = 1, .pad = 0, .x_c_total = 4, .x_c_off = 1,
		.y_c_total = 3}, r0);
	f += pool_check("avgpool k3s2p1 (pad counted)", 1, (struct nn_pool2d_desc){
		.n = 2, .c = 2, .h_in = 6, .w_in = 7, .k = 3, .stride = 2, .pad = 1, .x_c_total = 2, .y_c_total = 2}, r0);
	f += pool_check("resize x2 slices", 2, p0, (struct nn_resize_desc){
		.n = 2, .c = 3, .h_in = 3, .w_in = 4, .h_out = 6, .w_out = 8, .x_c_total = 4, .x_c_off = 1,
		.y_c_total = 5, .y_c_off = 2});
	f += pool_check("resize 3x5 -> 7x11 accumulate", 2, p0, (struct nn_resize_desc){
		.n = 2, .c = 2, .h_in = 3, .w_in = 5, .h_out = 7, .w_out = 11, .accumulate = true, .x_c_total = 2,
		.y_c_total = 2});
	return f;
}

// Max-pool ties go to the first maximum in scan order (PyTorch's CPU kernel updates on '>' only).
static int check_maxpool_ties(void)
{
	struct nn_pool2d_desc d = {.n = 1, .c = 1, .h_in = 3, .w_in = 3, .k = 3, .stride = 1, .pad = 1};
	float x[9] = {0, 2, 2, 1, 2, 0, 2, 1, 0}, dy[9], dx[9] = {0};
	for (int i = 0; i < 9; i++)
		dy[i] = 1.0f;
	nn_maxpool2d_backward_ref(&d, x, dy, dx);
	// windows clipped at the border; every window containing index 1 picks index 1 first, the ones
	// that do not (bottom-left 2x2: rows 1-2, cols 0-1) pick index 4 before index 6
	// outputs (row, col): (0,0)->1 (0,1)->1 (0,2)->1 (1,0)->1 (1,1)->1 (1,2)->1 (2,0)->4 (2,1)->4 (2,2)->4
	const float want[9] = {0, 6, 0, 0, 3, 0, 0, 0, 0};
	for (int i = 0; i < 9; i++)
		if (dx[i] != want[i]) {
			printf("FAIL maxpool ties: dx[%d] = %g want %g\n", i, dx[i], want[i]);
			return 1;
		}
	printf("ok   maxpool ties: first maximum in scan order\n");
	return 0;
}

int main(void)
{
	int fails = check_conv();
	fails += bn_check(true);
	fails += bn_check(false);
	fails += check_pools();
	fails += check_maxpool_ties();
	printf(fails ? "%d FAILED\n" : "all passed\n", fails);
	return fails ? 1 : 0;
}
