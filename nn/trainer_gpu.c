// The GPU backend of nn/trainer.h. Device memory:
//   state    every parameter, then the BN running statistics, in one buffer; parameters grouped by
//            optimizer group (biases | conv weights | BN weights) so the optimizer is one dispatch per
//            group; each tensor aligned for binding. grads / momentum have the parameter part's layout,
//            ema the whole state's.
//   packed   the conv weights in the forward kernels' layout, re-packed from state at the start of
//            every forward (the optimizer changed them).
//   acts     every activation tensor of the training forward, kept for the backward (no reuse);
//   dacts    d loss / d each activation tensor, same offsets; z: per BN conv, its conv output before
//            BatchNorm (the backward recomputes the pre-activation from it); stats: batch mean/var.
// Sequences: forward (input conversion, packing, every op, zeroing dacts), backward (every op in
// reverse), optimizer and EMA (re-recorded per call: their scalars are push constants).
// The loss (loss_gpu.h) runs as its own sequence between forward and backward; VKYOLO_CPU_LOSS=1 runs
// the CPU reference instead (maps downloaded, gradients uploaded).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "layers_train.h"
#include "loss_gpu.h"
#include "trainer_gpu.h"


static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

// "model.2.cv1/conv": a dispatch label owned by the trainer (timings name the op and the kernel).
static const char *lbl(struct nn_tg *g, uint32_t i, const char *kind)
{
	uint32_t slot = g->label_next++ % (g->m->n_ops * TG_LABELS_PER_OP);
	char *l = g->labels + (size_t)slot * TG_LABEL_LEN;
	snprintf(l, TG_LABEL_LEN, "%s/%s", g->m->ops[i].name, kind);
	return l;
}

static struct gpu_binding tensor_b(const struct nn_tg *g, struct gpu_buf *const *bufs, uint32_t t, bool write)
{
	return tg_bind(bufs[t], 0, g->t_bytes[t], write);
}

static int record_conv_fwd(struct nn_tg *g, uint32_t i)
{
	const struct nn_op *op = &g->m->ops[i];
	const struct nn_tg_conv *c = &g->conv[i];
	const struct nn_tg_param *p = &g->par[i];
	struct gpu_binding x = tensor_b(g, g->acts, op->x.tensor, false), y = tensor_b(g, g->acts, op->y.tensor, true);
	struct gpu_binding wp = tg_bind(g->packed, c->wp, c->wp_bytes, false), bp = tg_bind(g->packed, c->bp, c->bp_bytes, false);
	if (!op->bn.gamma)
		return nn_conv2d_record(g->dev, g->fwd, &c->d, &c->tile, false, &x, &wp, &bp, &x, &y, lbl(g, i, "conv"));
	uint32_t co = op->y.c;
	struct gpu_binding z = tg_bind(c->zbuf, 0, c->z_bytes, true);
	struct gpu_binding mean = tg_bind(g->stats, c->stat, co * 4, true), var = tg_bind(g->stats, c->stat_var, co * 4, true);
	struct nn_bn_desc bd = { g->n, co, nn_conv2d_out_h(&c->d), nn_conv2d_out_w(&c->d), op->bn.eps, true };
	int ret = nn_conv2d_record(g->dev, g->fwd, &c->dz, &c->tile, false, &x, &wp, &bp, &x, &z, lbl(g, i, "conv"));
	if (!ret)
		ret = nn_bn_stats_record(g->dev, g->fwd, &bd, &(struct gpu_binding){ c->zbuf, 0, c->z_bytes, false },
		                         &(struct gpu_binding){ g->bnscratch, 0, 0, true }, &mean, &var,
		                         lbl(g, i, "bn_stats"));
	mean.write = var.write = false;
	z.write = false;
	struct gpu_binding rm = tg_sbind(g->state, p->mean, co, true), rv = tg_sbind(g->state, p->var, co, true);
	if (!ret)
		ret = nn_bn_running_update_record(g->dev, g->fwd, &bd, g->bn_momentum, &mean, &var, &rm, &rv, lbl(g, i, "bn_running"));
	struct gpu_binding gm = tg_sbind(g->state, p->gamma, co, false), bt = tg_sbind(g->state, p->beta, co, false);
	struct gpu_binding r = op->r.tensor != NN_NO_TENSOR ? tensor_b(g, g->acts, op->r.tensor, false) : x;
	if (!ret)
		ret = nn_bn_act_record(g->dev, g->fwd, &c->d, op->bn.eps, &z, &gm, &bt, &mean, &var,
		                       op->r.tensor != NN_NO_TENSOR ? &r : NULL, &y, lbl(g, i, "bn_act"));
	return ret;
}

static int record_fwd_op(struct nn_tg *g, uint32_t i)
{
	const struct nn_op *op = &g->m->ops[i];
	if (op->kind == NN_OP_DECODE) // the decoded boxes are not part of the training loss
		return 0;
	if (op->kind == NN_OP_CONV)
		return record_conv_fwd(g, i);
	struct gpu_binding x = tensor_b(g, g->acts, op->x.tensor, false), y = tensor_b(g, g->acts, op->y.tensor, true);
	if (op->kind == NN_OP_RESIZE) {
		struct nn_resize_desc d;
		nn_op_resize_desc(op, g->shapes, g->n, &d);
		return nn_resize_nearest_record(g->dev, g->fwd, &d, &x, &y, lbl(g, i, "resize"));
	}
	struct nn_pool2d_desc d;
	nn_op_pool_desc(op, g->shapes, g->n, &d);
	return op->kind == NN_OP_MAXPOOL ? nn_maxpool2d_record(g->dev, g->fwd, &d, &x, &y, lbl(g, i, "maxpool"))
	                                 : nn_avgpool2d_record(g->dev, g->fwd, &d, &x, &y, lbl(g, i, "avgpool"));
}

static int record_forward(struct nn_tg *g, bool timestamps)
{
	const struct nn_model *m = g->m;
	uint64_t in_bytes = (uint64_t)g->n * 3 * g->h * g->w;
	int ret = gpu_seq_begin(g->fwd, timestamps);
	struct gpu_binding in = tg_bind(g->input_u8, 0, 0, false), x0 = tensor_b(g, g->acts, 0, true);
	if (!ret)
		ret = nn_input_u8_record(g->dev, g->fwd, in_bytes, &in, &x0, "input");
	for (uint32_t i = 0; !ret && i < m->n_ops; i++) {
		const struct nn_op *op = &m->ops[i];
		if (op->kind != NN_OP_CONV)
			continue;
		const struct nn_tg_conv *c = &g->conv[i];
		const struct nn_tg_param *p = &g->par[i];
		struct gpu_binding w = tg_sbind(g->state, p->w, tg_w_count(op), false);
		struct gpu_binding b = op->b ? tg_sbind(g->state, p->b, op->y.c, false) : w;
		struct gpu_binding wp = tg_bind(g->packed, c->wp, c->wp_bytes, true), bp = tg_bind(g->packed, c->bp, c->bp_bytes, true);
		ret = nn_conv2d_pack_record(g->dev, g->fwd, op->bn.gamma ? &c->dz : &c->d, &c->tile, &w, op->b ? &b : NULL,
		                            &wp, &bp, lbl(g, i, "pack"));
		if (!ret && c->dgrad_conv) {
			struct gpu_binding wpt = tg_bind(g->packed, c->wpt, c->wpt_bytes, true);
			struct gpu_binding bpt = tg_bind(g->packed, c->bpt, c->bpt_bytes, true);
			ret = nn_conv2d_pack_transposed_record(g->dev, g->fwd, &c->dt, &c->tile_t, &w, &wpt, &bpt,
			                                       lbl(g, i, "pack_t"));
		}
	}
	for (uint32_t i = 0; !ret && i < m->n_ops; i++)
		ret = record_fwd_op(g, i);
	// the gradients of the activations start at zero (the loss then writes the head maps')
	if (!ret)
		for (uint32_t t = 1; !ret && t < m->n_tensors; t++)
			ret = gpu_seq_fill(g->fwd, &(struct gpu_binding){ g->dacts[t], 0, 0, true }, 0);
	if (!ret)
		ret = gpu_seq_end(g->fwd);
	return ret;
}

static int record_conv_bwd(struct nn_tg *g, uint32_t i)
{
	const struct nn_op *op = &g->m->ops[i];
	const struct nn_tg_conv *c = &g->conv[i];
	const struct nn_tg_param *p = &g->par[i];
	uint32_t co = op->y.c, ho = nn_conv2d_out_h(&c->d), wo = nn_conv2d_out_w(&c->d);
	uint64_t dz_bytes = (uint64_t)g->n * co * ho * wo * 4;
	struct gpu_binding dz = tg_bind(g->dz, 0, dz_bytes, true);
	struct gpu_binding dy = tensor_b(g, g->dacts, op->y.tensor, false);
	int ret = 0;
	if (op->bn.gamma) {
		bool res = op->r.tensor != NN_NO_TENSOR;
		struct gpu_binding z = tg_bind(c->zbuf, 0, c->z_bytes, false);
		struct gpu_binding mean = tg_bind(g->stats, c->stat, co * 4, false), var = tg_bind(g->stats, c->stat_var, co * 4, false);
		struct gpu_binding gm = tg_sbind(g->state, p->gamma, co, false), bt = tg_sbind(g->state, p->beta, co, false);
		struct gpu_binding r = res ? tensor_b(g, g->acts, op->r.tensor, false) : z;
		struct gpu_binding dr = res ? tensor_b(g, g->dacts, op->r.tensor, true) : z;
		struct gpu_binding dg = tg_sbind(g->grads, p->gamma, co, true), db = tg_sbind(g->grads, p->beta, co, true);
		struct gpu_binding scr = tg_bind(g->bnscratch, 0, 0, true);
		ret = nn_bn_act_bwd_record(g->dev, g->bwd, &c->d, op->bn.eps, &z, &gm, &bt, &mean, &var, res ? &r : NULL, &dy,
		                           &scr, &dz, &dg, &db, res ? &dr : NULL, true, lbl(g, i, "bn_act_bwd"));
	} else {
		// bare conv (no activation, no residual): dz is dy's slice, copied dense
		struct nn_resize_desc rd = { g->n, co, ho, wo, ho, wo, false, c->d.y_c_total, c->d.y_c_off, co, 0 };
		ret = nn_resize_nearest_record(g->dev, g->bwd, &rd, &dy, &dz, lbl(g, i, "dy_copy"));
	}
	dz.write = false;
	struct gpu_binding x = tensor_b(g, g->acts, op->x.tensor, false);
	struct gpu_binding dw = tg_sbind(g->grads, p->w, tg_w_count(op), true);
	struct gpu_binding db = op->b ? tg_sbind(g->grads, p->b, co, true) : dw;
	struct gpu_binding scr = tg_bind(g->wscratch, 0, 0, true);
	if (!ret)
		ret = nn_conv2d_bwd_weight_record(g->dev, g->bwd, &c->d, &x, &dz, &scr, &dw, op->b ? &db : NULL, true,
		                                  lbl(g, i, "wgrad"));
	if (!ret && op->x.tensor != 0) {
		struct gpu_binding w = tg_sbind(g->state, p->w, tg_w_count(op), false);
		struct gpu_binding dx = tensor_b(g, g->dacts, op->x.tensor, true);
		if (c->dgrad_conv) {
			struct gpu_binding wpt = tg_bind(g->packed, c->wpt, c->wpt_bytes, false);
			struct gpu_binding bpt = tg_bind(g->packed, c->bpt, c->bpt_bytes, false);
			ret = nn_conv2d_record(g->dev, g->bwd, &c->dt, &c->tile_t, true, &dz, &wpt, &bpt, &dx, &dx,
			                       lbl(g, i, "dgrad"));
		} else if (c->dgrad_pooled) {
			struct gpu_binding ps = tg_bind(g->pscratch, 0, 0, true);
			ret = nn_conv2d_bwd_data_pooled_record(g->dev, g->bwd, &c->d, &dz, &w, &ps, &dx, lbl(g, i, "dgrad"));
		} else {
			ret = nn_conv2d_bwd_data_record(g->dev, g->bwd, &c->d, &dz, &w, &dx, lbl(g, i, "dgrad"));
		}
	}
	return ret;
}

static int record_bwd_op(struct nn_tg *g, uint32_t i)
{
	const struct nn_op *op = &g->m->ops[i];
	if (op->kind == NN_OP_CONV)
		return record_conv_bwd(g, i);
	if (op->kind == NN_OP_DECODE || op->x.tensor == 0)
		return 0;
	struct gpu_binding dy = tensor_b(g, g->dacts, op->y.tensor, false), dx = tensor_b(g, g->dacts, op->x.tensor, true);
	if (op->kind == NN_OP_RESIZE) {
		struct nn_resize_desc d;
		nn_op_resize_desc(op, g->shapes, g->n, &d);
		return nn_resize_nearest_bwd_record(g->dev, g->bwd, &d, &dy, &dx, lbl(g, i, "resize_bwd"));
	}
	struct nn_pool2d_desc d;
	nn_op_pool_desc(op, g->shapes, g->n, &d);
	if (op->kind == NN_OP_AVGPOOL)
		return nn_avgpool2d_bwd_record(g->dev, g->bwd, &d, &dy, &dx, lbl(g, i, "avgpool_bwd"));
	struct gpu_binding x = tensor_b(g, g->acts, op->x.tensor, false);
	struct gpu_binding ps = tg_bind(g->pscratch, 0, 0, true);
	return nn_maxpool2d_bwd_record(g->dev, g->bwd, &d, &x, &dy, &ps, &dx, lbl(g, i, "maxpool_bwd"));
}

static int record_backward(struct nn_tg *g, bool timestamps)
{
	int ret = gpu_seq_begin(g->bwd, timestamps);
	for (uint32_t i = g->m->n_ops; !ret && i-- > 0;)
		ret = record_bwd_op(g, i);
	if (!ret)
		ret = gpu_seq_end(g->bwd);
	return ret;
}

// ---- create -------------------------------------------------------------------------------------

static int alloc_buf(struct nn_tg *g, uint64_t bytes, struct gpu_buf **out)
{
	return gpu_buf_create(g->pool, bytes ? bytes : 4, out);
}

static int plan(struct nn_tg *g)
{
	const struct nn_model *m = g->m;
	const struct gpu_device_info *info = gpu_device_info(g->dev);
	uint64_t act_total = 0, packed = 0, zb = 0, st = 0, dzmax = 4, wscr = 4, bnscr = 4, pscr = 4;
	const char *ep = getenv("VKYOLO_DGRAD_POOLED"); // "0": the one-pass kernel (comparisons)
	bool two_pass = !(ep && !strcmp(ep, "0"));
	for (uint32_t t = 0; t < m->n_tensors; t++) {
		const struct nn_shape *s = &g->shapes[t];
		g->t_bytes[t] = (uint64_t)g->n * s->c * s->h * s->w * 4;
		act_total += g->t_bytes[t];
	}
	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct nn_op *op = &m->ops[i];
		struct nn_tg_conv *c = &g->conv[i];
		if (op->kind == NN_OP_MAXPOOL) { // the backward's window maxima share the pooled-plane scratch
			struct nn_pool2d_desc pd;
			nn_op_pool_desc(op, g->shapes, g->n, &pd);
			uint64_t ms = nn_maxpool2d_bwd_scratch_bytes(&pd);
			pscr = ms > pscr ? ms : pscr;
		}
		if (op->kind != NN_OP_CONV)
			continue;
		if (!op->bn.gamma && (op->act != NN_ACT_NONE || op->r.tensor != NN_NO_TENSOR)) {
			LOGE("trainer: op %s: a conv without BatchNorm but with an activation or residual (a fused model?) "
			     "cannot be trained", op->name);
			return -EINVAL;
		}
		nn_op_conv_desc(op, g->shapes, g->n, &c->d);
		c->dz = c->d;
		c->dz.act = NN_ACT_NONE, c->dz.res_before_act = false;
		c->dz.y_c_total = c->d.c_out, c->dz.y_c_off = 0;
		c->dz.r_c_total = c->d.c_out, c->dz.r_c_off = 0;
		const struct nn_conv2d_desc *fd = op->bn.gamma ? &c->dz : &c->d;
		nn_conv2d_choose_tile(info, fd, &c->tile);
		c->wp_bytes = nn_conv2d_packed_weight_floats(fd, &c->tile) * 4;
		c->bp_bytes = nn_conv2d_packed_bias_floats(fd, &c->tile) * 4;
		c->wp = packed, packed = tg_align_up(packed + c->wp_bytes, g->align);
		c->bp = packed, packed = tg_align_up(packed + c->bp_bytes, g->align);
		c->dgrad_conv = op->x.tensor != 0 && nn_conv2d_bwd_data_as_conv(info, &c->d, &c->dt);
		uint64_t ps = nn_conv2d_bwd_data_pooled_scratch_bytes(&c->d);
		c->dgrad_pooled = two_pass && !c->dgrad_conv && op->x.tensor != 0 && ps > 0;
		pscr = c->dgrad_pooled && ps > pscr ? ps : pscr;
		if (c->dgrad_conv) {
			nn_conv2d_choose_tile(info, &c->dt, &c->tile_t);
			c->wpt_bytes = nn_conv2d_packed_weight_floats(&c->dt, &c->tile_t) * 4;
			c->bpt_bytes = nn_conv2d_packed_bias_floats(&c->dt, &c->tile_t) * 4;
			c->wpt = packed, packed = tg_align_up(packed + c->wpt_bytes, g->align);
			c->bpt = packed, packed = tg_align_up(packed + c->bpt_bytes, g->align);
		}
		uint64_t out_bytes = (uint64_t)g->n * op->y.c * nn_conv2d_out_h(&c->d) * nn_conv2d_out_w(&c->d) * 4;
		dzmax = out_bytes > dzmax ? out_bytes : dzmax;
		uint64_t ws = nn_conv2d_bwd_weight_scratch_bytes(info, &c->d);
		wscr = ws > wscr ? ws : wscr;
		if (op->bn.gamma) {
			c->z_bytes = out_bytes, zb += out_bytes;
			c->stat = st, st = tg_align_up(st + op->y.c * 4, g->align);
			c->stat_var = st, st = tg_align_up(st + op->y.c * 4, g->align);
			// one scratch for the forward's statistics and the backward's sums (never in flight together)
			struct nn_bn_desc bd = { g->n, op->y.c, nn_conv2d_out_h(&c->d), nn_conv2d_out_w(&c->d), op->bn.eps, true };
			uint64_t bs = nn_bn_act_bwd_scratch_bytes(info, &c->d), ss = nn_bn_stats_scratch_bytes(info, &bd);
			bnscr = bs > bnscr ? bs : bnscr;
			bnscr = ss > bnscr ? ss : bnscr;
		}
	}
	LOGD("trainer: %.1f MiB of activations, the same of their gradients, %.1f MiB of BN inputs", act_total / 1048576.0,
	     zb / 1048576.0);
	int ret = gpu_pool_create(g->dev, &(struct gpu_pool_params){ .kind = GPU_POOL_DEVICE, .name = "training" },
	                          &g->pool);
	for (uint32_t t = 0; !ret && t < m->n_tensors; t++)
		if (!(ret = alloc_buf(g, g->t_bytes[t], &g->acts[t])))
			ret = alloc_buf(g, g->t_bytes[t], &g->dacts[t]);
	for (uint32_t i = 0; !ret && i < m->n_ops; i++)
		if (m->ops[i].kind == NN_OP_CONV && m->ops[i].bn.gamma)
			ret = alloc_buf(g, g->conv[i].z_bytes, &g->conv[i].zbuf);
	uint64_t sp = g->n_params * 4, ss = g->n_state * 4;
	if (!ret)
		ret = alloc_buf(g, ss, &g->state);
	if (!ret)
		ret = alloc_buf(g, sp, &g->grads);
	if (!ret)
		ret = alloc_buf(g, sp, &g->momentum);
	if (!ret)
		ret = alloc_buf(g, ss, &g->ema);
	if (!ret)
		ret = alloc_buf(g, packed, &g->packed);
	if (!ret)
		ret = alloc_buf(g, st, &g->stats);
	if (!ret)
		ret = alloc_buf(g, dzmax, &g->dz);
	if (!ret)
		ret = alloc_buf(g, wscr, &g->wscratch);
	if (!ret)
		ret = alloc_buf(g, bnscr, &g->bnscratch);
	if (!ret)
		ret = alloc_buf(g, pscr, &g->pscratch);
	if (!ret)
		ret = alloc_buf(g, nn_sumsq_scratch_bytes(g->n_params), &g->sqscratch);
	if (!ret)
		ret = alloc_buf(g, 4, &g->sumsq);
	if (!ret)
		ret = alloc_buf(g, (uint64_t)g->n * 3 * g->h * g->w, &g->input_u8);
	return ret;
}

static int setup_loss(struct nn_tg *g)
{
	const struct nn_model *m = g->m;
	g->ld = (struct nn_loss_desc){ .n = g->n, .nc = m->nc, .reg_max = m->reg_max, .nl = m->nl };
	g->n_maps = m->n_head_sets * m->nl;
	for (uint32_t s = 0; s < m->n_head_sets; s++)
		for (uint32_t l = 0; l < m->nl; l++) {
			uint32_t t = m->head_map[s][l], k = s * m->nl + l;
			g->ld.h[l] = g->shapes[t].h, g->ld.w[l] = g->shapes[t].w, g->ld.stride[l] = m->stride[l];
			g->map_tensor[k] = t;
			if (g->cpu_loss && (!(g->maps[k] = malloc(g->t_bytes[t])) || !(g->dmaps[k] = malloc(g->t_bytes[t])))) {
				LOGE("trainer: out of host memory for the loss maps");
				return -ENOMEM;
			}
		}
	return 0;
}

static void tg_destroy(struct nn_trainer *t)
{
	struct nn_tg *g = t->impl;
	if (!g)
		return;
	gpu_seq_destroy(&g->fwd), gpu_seq_destroy(&g->bwd), gpu_seq_destroy(&g->opt);
	gpu_seq_destroy(&g->emaseq), gpu_seq_destroy(&g->zero), gpu_seq_destroy(&g->lossseq);
	nn_loss_gpu_destroy(&g->loss);
	for (uint32_t k = 0; g->acts && g->dacts && k < g->m->n_tensors; k++)
		gpu_buf_destroy(&g->acts[k]), gpu_buf_destroy(&g->dacts[k]);
	for (uint32_t i = 0; g->conv && i < g->m->n_ops; i++)
		gpu_buf_destroy(&g->conv[i].zbuf);
	struct gpu_buf **bufs[] = { &g->state, &g->grads, &g->momentum, &g->ema, &g->packed, &g->stats, &g->dz,
	                            &g->wscratch, &g->bnscratch, &g->sqscratch, &g->sumsq, &g->input_u8, &g->pscratch };
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		gpu_buf_destroy(bufs[i]);
	gpu_pool_destroy(&g->pool);
	for (uint32_t k = 0; k < 2 * NN_DETECT_MAX_LEVELS; k++)
		free(g->maps[k]), free(g->dmaps[k]);
	free(g->shapes), free(g->acts), free(g->dacts), free(g->t_bytes), free(g->par), free(g->conv), free(g->labels);
	free(g);
	t->impl = NULL;
}

// ---- calls -----------------------------------------------------------------------------------------

static int tg_zero_grad(struct nn_trainer *t)
{
	struct nn_tg *g = t->impl;
	return gpu_seq_run(g->zero);
}

// The loss on the CPU (VKYOLO_CPU_LOSS=1): head maps downloaded, gradients uploaded.
static int cpu_loss(struct nn_tg *g, const float *targets, uint32_t n_targets, struct nn_loss_out *out)
{
	int ret = 0;
	for (uint32_t k = 0; !ret && k < g->n_maps; k++)
		ret = gpu_buf_download(g->acts[g->map_tensor[k]], 0, g->maps[k], g->t_bytes[g->map_tensor[k]]);
	out->grad = g->dmaps;
	if (!ret)
		ret = g->m->n_head_sets == 2
		      ? nn_loss_tal_dual(&g->ld, (const float *const *)g->maps, targets, n_targets, out)
		      : nn_loss_tal(&g->ld, (const float *const *)g->maps, targets, n_targets, out);
	out->grad = NULL;
	for (uint32_t k = 0; !ret && k < g->n_maps; k++)
		ret = gpu_buf_upload(g->dacts[g->map_tensor[k]], 0, g->dmaps[k], g->t_bytes[g->map_tensor[k]]);
	return ret;
}

// (Re)creates the GPU loss for at least n_targets target rows and records its sequence.
static int gpu_loss_reserve(struct nn_tg *g, uint32_t n_targets)
{
	if (g->loss && n_targets <= g->loss_cap)
		return 0;
	uint32_t cap = g->loss_cap ? g->loss_cap : 64 * g->n;
	while (cap < n_targets)
		cap *= 2;
	nn_loss_gpu_destroy(&g->loss);
	g->loss_cap = 0;
	struct gpu_binding maps[2 * NN_DETECT_MAX_LEVELS], dmaps[2 * NN_DETECT_MAX_LEVELS];
	for (uint32_t k = 0; k < g->n_maps; k++) {
		maps[k] = tensor_b(g, g->acts, g->map_tensor[k], false);
		dmaps[k] = tensor_b(g, g->dacts, g->map_tensor[k], true);
	}
	int ret = nn_loss_gpu_create(g->dev, &g->ld, g->m->n_head_sets, cap, &g->loss);
	if (!ret)
		ret = gpu_seq_begin(g->lossseq, g->timestamps);
	if (!ret)
		ret = nn_loss_gpu_record(g->loss, g->lossseq, maps, dmaps);
	if (!ret)
		ret = gpu_seq_end(g->lossseq);
	if (!ret)
		g->loss_cap = cap;
	return ret;
}

// Another batch size in the same buffers (allocated for params.n): every descriptor takes the new n,
// the forward and backward sequences are re-recorded, and the loss is recreated at its next use.
static int tg_set_batch(struct nn_trainer *t, uint32_t n)
{
	struct nn_tg *g = t->impl;
	g->n = n;
	g->ld.n = n;
	for (uint32_t i = 0; i < g->m->n_ops; i++)
		if (g->m->ops[i].kind == NN_OP_CONV) {
			struct nn_tg_conv *c = &g->conv[i];
			c->d.n = c->dz.n = c->dt.n = n;
		}
	nn_loss_gpu_destroy(&g->loss);
	g->loss_cap = 0;
	int ret = record_forward(g, g->timestamps);
	return ret ? ret : record_backward(g, g->timestamps);
}

static int tg_forward_backward(struct nn_trainer *t, const uint8_t *input_u8, const float *targets,
                               uint32_t n_targets, struct nn_loss_out *lo)
{
	struct nn_tg *g = t->impl;
	double t0 = now_ms();
	struct nn_loss_out out = { 0 };
	int ret = g->cpu_loss ? 0 : gpu_loss_reserve(g, n_targets);
	if (!ret && !g->cpu_loss)
		ret = nn_loss_gpu_set_targets(g->loss, targets, n_targets);
	if (!ret)
		ret = gpu_buf_upload(g->input_u8, 0, input_u8, (size_t)g->n * 3 * g->h * g->w);
	if (!ret)
		ret = gpu_seq_run(g->fwd);
	double t1 = now_ms();
	if (!ret)
		ret = g->cpu_loss ? cpu_loss(g, targets, n_targets, &out) : gpu_seq_run(g->lossseq);
	if (!ret && !g->cpu_loss)
		ret = nn_loss_gpu_read(g->loss, &out);
	double t2 = now_ms();
	if (!ret)
		ret = gpu_seq_run(g->bwd);
	double t3 = now_ms();
	if (!ret && lo)
		*lo = out;
	g->timing.forward_ms = t1 - t0, g->timing.loss_ms = t2 - t1, g->timing.backward_ms = t3 - t2;
	return ret;
}

static int tg_step(struct nn_trainer *t, const struct nn_trainer_step_params *p, double *grad_norm)
{
	struct nn_tg *g = t->impl;
	double t0 = now_ms();
	int ret = gpu_seq_begin(g->opt, false);
	struct gpu_binding gr = tg_sbind(g->grads, 0, g->n_params, false), scr = tg_bind(g->sqscratch, 0, 0, true);
	struct gpu_binding sq = tg_bind(g->sumsq, 0, 4, true);
	if (!ret)
		ret = nn_sumsq_record(g->dev, g->opt, g->n_params, &gr, &scr, &sq, "grad norm");
	sq.write = false;
	for (int k = 0; !ret && k < NN_GROUP_COUNT; k++) {
		if (!g->group_len[k])
			continue;
		struct nn_sgd_record_params sp = { .lr = p->lr[k], .momentum = p->momentum,
		                                   .weight_decay = k == NN_GROUP_WEIGHTS ? p->weight_decay : 0.0f,
		                                   .max_norm = p->max_grad_norm, .nesterov = p->nesterov,
		                                   .first = !g->stepped };
		uint64_t off = g->group_off[k], len = g->group_len[k];
		struct gpu_binding pb = tg_sbind(g->state, off, len, true), gb = tg_sbind(g->grads, off, len, false);
		struct gpu_binding mb = tg_sbind(g->momentum, off, len, true);
		ret = nn_sgd_record(g->dev, g->opt, len, &sp, &sq, &pb, &gb, &mb, "sgd");
	}
	if (!ret)
		ret = gpu_seq_end(g->opt);
	if (!ret)
		ret = gpu_seq_run(g->opt);
	float s = 0;
	if (!ret)
		ret = gpu_buf_download(g->sumsq, 0, &s, 4);
	if (!ret) {
		g->stepped = true;
		if (grad_norm)
			*grad_norm = sqrt((double)s);
	}
	g->timing.optimizer_ms = now_ms() - t0;
	return ret;
}

static int tg_ema_update(struct nn_trainer *t, double decay)
{
	struct nn_tg *g = t->impl;
	double t0 = now_ms();
	int ret = gpu_seq_begin(g->emaseq, false);
	struct gpu_binding e = tg_sbind(g->ema, 0, g->n_state, true), c = tg_sbind(g->state, 0, g->n_state, false);
	if (!ret)
		ret = nn_ema_record(g->dev, g->emaseq, g->n_state, decay, &e, &c, "ema");
	if (!ret)
		ret = gpu_seq_end(g->emaseq);
	if (!ret)
		ret = gpu_seq_run(g->emaseq);
	g->timing.ema_ms = now_ms() - t0;
	return ret;
}

static void tg_timing(const struct nn_trainer *t, struct nn_trainer_timing *out)
{
	const struct nn_tg *g = t->impl;
	*out = g->timing;
	out->device_bytes = gpu_device_memory_used(g->dev);
	out->device_peak_bytes = gpu_device_memory_peak(g->dev);
}

static int tg_timings(struct nn_trainer *t, enum nn_trainer_phase phase, struct gpu_timing *out, uint32_t cap,
                      uint32_t *count)
{
	struct nn_tg *g = t->impl;
	struct gpu_seq *seq = phase == NN_TRAINER_PHASE_FORWARD ? g->fwd : phase == NN_TRAINER_PHASE_LOSS ? g->lossseq : g->bwd;
	if (!g->timestamps || (phase == NN_TRAINER_PHASE_LOSS && g->cpu_loss))
		return 0;
	return gpu_seq_timings(seq, out, cap, count);
}

static const struct nn_trainer_backend gpu_backend = {
	.timings = tg_timings,
	.zero_grad = tg_zero_grad,
	.set_batch = tg_set_batch,
	.forward_backward = tg_forward_backward,
	.step = tg_step,
	.ema_update = tg_ema_update,
	.read_state = nn_tg_read_state,
	.load_state = nn_tg_load_state,
	.export_grads = nn_tg_export_grads,
	.export_momentum = nn_tg_export_momentum,
	.import_momentum = nn_tg_import_momentum,
	.timing = tg_timing,
	.destroy = tg_destroy,
};

int nn_trainer_gpu_init(struct nn_trainer *t, struct gpu_device *dev)
{
	const struct nn_model *m = t->m;
	struct nn_tg *g = calloc(1, sizeof(*g));
	if (!g) {
		LOGE("trainer: out of host memory");
		return -ENOMEM;
	}
	t->impl = g;
	t->be = &gpu_backend;
	g->dev = dev, g->m = m, g->n = t->p.n, g->h = t->p.h, g->w = t->p.w;
	g->bn_momentum = t->p.bn_momentum;
	const char *cl = getenv("VKYOLO_CPU_LOSS");
	g->cpu_loss = cl && *cl == '1';
	g->align = gpu_device_info(dev)->min_storage_offset_align;
	g->align = g->align > 256 ? g->align : 256;
	g->shapes = calloc(m->n_tensors, sizeof(*g->shapes));
	g->acts = calloc(m->n_tensors, sizeof(*g->acts)), g->dacts = calloc(m->n_tensors, sizeof(*g->dacts));
	g->t_bytes = calloc(m->n_tensors, sizeof(uint64_t));
	g->labels = calloc((size_t)(m->n_ops ? m->n_ops : 1) * TG_LABELS_PER_OP, TG_LABEL_LEN);
	g->par = calloc(m->n_ops ? m->n_ops : 1, sizeof(*g->par));
	g->conv = calloc(m->n_ops ? m->n_ops : 1, sizeof(*g->conv));
	int ret = -ENOMEM;
	if (!g->shapes || !g->acts || !g->dacts || !g->t_bytes || !g->par || !g->conv || !g->labels) {
		LOGE("trainer: out of host memory");
		goto fail;
	}
	if ((ret = nn_model_shapes(m, g->h, g->w, g->shapes)))
		goto fail;
	nn_tg_layout_state(g);
	if ((ret = plan(g)) || (ret = setup_loss(g)) || (ret = nn_tg_upload_initial(g)))
		goto fail;
	if ((ret = gpu_seq_create(dev, &g->fwd)) || (ret = gpu_seq_create(dev, &g->bwd)) ||
	    (ret = gpu_seq_create(dev, &g->opt)) || (ret = gpu_seq_create(dev, &g->emaseq)) ||
	    (ret = gpu_seq_create(dev, &g->zero)) || (ret = gpu_seq_create(dev, &g->lossseq)))
		goto fail;
	bool ts = g->timestamps = t->p.timestamps && gpu_device_info(dev)->timestamps;
	if ((ret = record_forward(g, ts)) || (ret = record_backward(g, ts)))
		goto fail;
	if ((ret = gpu_seq_begin(g->zero, false)) ||
	    (ret = gpu_seq_fill(g->zero, &(struct gpu_binding){ g->grads, 0, g->n_params * 4, true }, 0)) ||
	    (ret = gpu_seq_end(g->zero)) || (ret = gpu_seq_run(g->zero)))
		goto fail;
	return 0;
fail:
	tg_destroy(t);
	t->be = NULL;
	return ret;
}
