// The GPU executor: packs and uploads the weights, plans the activation arena, records the forward
// once (one dispatch per op) and replays it per input.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "runner_internal.h"

struct runner_conv {
	struct nn_conv2d_tile tile;
	uint64_t w_off, b_off, w_bytes, b_bytes; // in the weights buffer
};

struct nn_runner {
	struct gpu_device *dev;
	const struct nn_model *m;
	struct nn_runner_params p;
	struct nn_shape *shapes;
	uint64_t *t_off, *t_bytes; // per tensor, in the arena
	struct runner_conv *conv;  // per op
	struct gpu_pool *wpool, *apool;
	struct gpu_buf *weights, *input_u8;
	struct gpu_buf **arena; // one buffer per chunk of the planned arena
	uint32_t n_chunks;
	uint64_t chunk;        // bytes per chunk (the device's binding range, aligned)
	struct gpu_seq *seq_in, *seq;
	uint64_t arena_bytes, naive_bytes, weight_bytes;
	double gflop;
};

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static void conv_desc(const struct nn_runner *r, const struct nn_op *op, struct nn_conv2d_desc *d)
{
	nn_op_conv_desc(op, r->shapes, r->p.n, d);
}

// The op's weights with an unfused BN folded in: w' = w * g, b' = beta - mean * g (+ b * g),
// g = gamma / sqrt(var + eps). Returns malloc'd copies in *w, *b.
static int effective_weights(const struct nn_op *op, float **w, float **b)
{
	size_t per_oc = (size_t)(op->x.c / op->groups) * op->k * op->k, nw = per_oc * op->y.c;
	*w = malloc(nw * sizeof(float));
	*b = malloc(op->y.c * sizeof(float));
	if (!*w || !*b)
		return -ENOMEM;
	memcpy(*w, op->w, nw * sizeof(float));
	for (uint32_t c = 0; c < op->y.c; c++)
		(*b)[c] = op->b ? op->b[c] : 0.0f;
	if (!op->bn.gamma)
		return 0;
	for (uint32_t c = 0; c < op->y.c; c++) {
		float g = op->bn.gamma[c] / sqrtf(op->bn.var[c] + op->bn.eps);
		for (size_t i = 0; i < per_oc; i++)
			(*w)[c * per_oc + i] *= g;
		(*b)[c] = op->bn.beta[c] - op->bn.mean[c] * g + (*b)[c] * g;
	}
	return 0;
}

// Packs every conv's weights into one host image and uploads it.
static int upload_weights(struct nn_runner *r, uint64_t align)
{
	const struct nn_model *m = r->m;
	uint64_t total = 0;
	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct nn_op *op = &m->ops[i];
		if (op->kind != NN_OP_CONV)
			continue;
		struct nn_conv2d_desc d;
		struct runner_conv *c = &r->conv[i];
		conv_desc(r, op, &d);
		nn_conv2d_choose_tile(gpu_device_info(r->dev), &d, &c->tile);
		c->w_bytes = nn_conv2d_packed_weight_floats(&d, &c->tile) * sizeof(float);
		c->b_bytes = nn_conv2d_packed_bias_floats(&d, &c->tile) * sizeof(float);
		c->w_off = total;
		total = align_up(total + c->w_bytes, align);
		c->b_off = total;
		total = align_up(total + c->b_bytes, align);
		r->gflop += 2.0 * r->p.n * nn_conv2d_out_h(&d) * nn_conv2d_out_w(&d) * d.c_out * (d.c_in / d.groups) *
		            d.k_h * d.k_w * 1e-9;
	}
	r->weight_bytes = total;
	uint8_t *host = calloc(1, total ? total : 4);
	int ret = host ? 0 : -ENOMEM;
	for (uint32_t i = 0; !ret && i < m->n_ops; i++) {
		const struct nn_op *op = &m->ops[i];
		if (op->kind != NN_OP_CONV)
			continue;
		struct nn_conv2d_desc d;
		float *w = NULL, *b = NULL;
		conv_desc(r, op, &d);
		ret = effective_weights(op, &w, &b);
		if (!ret)
			nn_conv2d_pack(&d, &r->conv[i].tile, w, b, (float *)(host + r->conv[i].w_off),
			               (float *)(host + r->conv[i].b_off));
		free(w), free(b);
	}
	if (ret == -ENOMEM)
		LOGE("runner: out of host memory packing %llu bytes of weights", (unsigned long long)total);
	if (!ret)
		ret = gpu_pool_create(r->dev, &(struct gpu_pool_params){ .kind = GPU_POOL_DEVICE, .name = "weights" },
		                      &r->wpool);
	if (!ret)
		ret = gpu_buf_create(r->wpool, total ? total : 4, &r->weights);
	if (!ret && total)
		ret = gpu_buf_upload(r->weights, 0, host, total);
	free(host);
	return ret;
}

static struct gpu_binding tensor_binding(const struct nn_runner *r, uint32_t t)
{
	return (struct gpu_binding){ .buf = r->arena[r->t_off[t] / r->chunk], .offset = r->t_off[t] % r->chunk,
	                             .size = r->t_bytes[t] };
}

static int record_op(struct nn_runner *r, uint32_t i)
{
	const struct nn_op *op = &r->m->ops[i];
	const struct nn_shape *s = r->shapes;
	struct gpu_binding x = { 0 }, y = tensor_binding(r, op->y.tensor);
	if (op->x.tensor != NN_NO_TENSOR)
		x = tensor_binding(r, op->x.tensor);
	switch (op->kind) {
	case NN_OP_CONV: {
		struct nn_conv2d_desc d;
		const struct runner_conv *c = &r->conv[i];
		bool res = op->r.tensor != NN_NO_TENSOR;
		struct gpu_binding w = { .buf = r->weights, .offset = c->w_off, .size = c->w_bytes };
		struct gpu_binding b = { .buf = r->weights, .offset = c->b_off, .size = c->b_bytes };
		struct gpu_binding rb = res ? tensor_binding(r, op->r.tensor) : x;
		conv_desc(r, op, &d);
		return nn_conv2d_record(r->dev, r->seq, &d, &c->tile, res, &x, &w, &b, &rb, &y, op->name);
	}
	case NN_OP_MAXPOOL:
	case NN_OP_AVGPOOL: {
		struct nn_pool2d_desc d;
		nn_op_pool_desc(op, s, r->p.n, &d);
		return op->kind == NN_OP_MAXPOOL ? nn_maxpool2d_record(r->dev, r->seq, &d, &x, &y, op->name)
		                                 : nn_avgpool2d_record(r->dev, r->seq, &d, &x, &y, op->name);
	}
	case NN_OP_RESIZE: {
		struct nn_resize_desc d;
		nn_op_resize_desc(op, s, r->p.n, &d);
		return nn_resize_nearest_record(r->dev, r->seq, &d, &x, &y, op->name);
	}
	case NN_OP_DECODE: {
		struct nn_decode_desc d;
		struct nn_decode_level_slice sl[NN_DETECT_MAX_LEVELS];
		struct gpu_binding lv[NN_DETECT_MAX_LEVELS];
		nn_op_decode_desc(op, s, r->p.n, &d);
		for (uint32_t l = 0; l < op->nl && l < NN_DETECT_MAX_LEVELS; l++) {
			uint32_t t = op->level[l];
			sl[l] = (struct nn_decode_level_slice){ s[t].c, 0 };
			lv[l] = tensor_binding(r, t);
		}
		return nn_detect_decode_record(r->dev, r->seq, &d, sl, lv, &y, op->name);
	}
	}
	LOGE("runner: op %u (%s): unknown kind %d", i, op->name, (int)op->kind);
	return -EINVAL;
}

static int plan_and_record(struct nn_runner *r, uint64_t align)
{
	const struct nn_model *m = r->m;
	for (uint32_t t = 0; t < m->n_tensors; t++) {
		const struct nn_shape *s = &r->shapes[t];
		r->t_bytes[t] = (uint64_t)r->p.n * s->c * s->h * s->w * sizeof(float);
		r->naive_bytes += align_up(r->t_bytes[t], align);
	}
	uint64_t range = gpu_device_info(r->dev)->max_storage_buffer_range, cap = (uint64_t)1 << 30;
	if (r->p.arena_chunk && r->p.arena_chunk < cap)
		cap = r->p.arena_chunk;
	r->chunk = (range < cap ? range : cap) / align * align;
	if (!r->chunk) {
		LOGE("runner: arena chunk of %llu bytes is below the alignment %llu", (unsigned long long)cap,
		     (unsigned long long)align);
		return -EINVAL;
	}
	int ret = nn_runner_plan(m, r->t_bytes, r->p.keep_layers, r->p.keep_heads, align, r->chunk, r->t_off,
	                         &r->arena_bytes);
	if (!ret)
		ret = gpu_pool_create(r->dev, &(struct gpu_pool_params){ .kind = GPU_POOL_DEVICE, .name = "activations" },
		                      &r->apool);
	if (!ret) {
		r->n_chunks = (uint32_t)((r->arena_bytes + r->chunk - 1) / r->chunk);
		r->arena = calloc(r->n_chunks ? r->n_chunks : 1, sizeof(*r->arena));
		ret = r->arena ? 0 : -ENOMEM;
	}
	for (uint32_t k = 0; !ret && k < r->n_chunks; k++) {
		uint64_t left = r->arena_bytes - (uint64_t)k * r->chunk;
		ret = gpu_buf_create(r->apool, left < r->chunk ? left : r->chunk, &r->arena[k]);
	}
	uint64_t in_bytes = (uint64_t)r->p.n * 3 * r->p.h * r->p.w;
	if (!ret)
		ret = gpu_buf_create(r->apool, in_bytes, &r->input_u8);
	if (!ret)
		ret = gpu_seq_create(r->dev, &r->seq_in);
	if (!ret)
		ret = gpu_seq_begin(r->seq_in, false);
	struct gpu_binding in = { .buf = r->input_u8 }, x0 = tensor_binding(r, 0);
	if (!ret)
		ret = nn_input_u8_record(r->dev, r->seq_in, in_bytes, &in, &x0, "input");
	if (!ret)
		ret = gpu_seq_end(r->seq_in);
	if (!ret)
		ret = gpu_seq_create(r->dev, &r->seq);
	if (!ret)
		ret = gpu_seq_begin(r->seq, r->p.timestamps && gpu_device_info(r->dev)->timestamps);
	for (uint32_t i = 0; !ret && i < m->n_ops; i++)
		ret = record_op(r, i);
	if (!ret)
		ret = gpu_seq_end(r->seq);
	return ret;
}

int nn_runner_create(struct gpu_device *dev, const struct nn_model *m, const struct nn_runner_params *p,
                     struct nn_runner **out)
{
	*out = NULL;
	if (!p->n || !p->h || !p->w) {
		LOGE("runner: empty input shape %ux3x%ux%u", p->n, p->h, p->w);
		return -EINVAL;
	}
	struct nn_runner *r = calloc(1, sizeof(*r));
	int ret = -ENOMEM;
	if (!r)
		goto fail;
	r->dev = dev, r->m = m, r->p = *p;
	r->shapes = calloc(m->n_tensors, sizeof(*r->shapes));
	r->t_off = calloc(m->n_tensors, sizeof(uint64_t));
	r->t_bytes = calloc(m->n_tensors, sizeof(uint64_t));
	r->conv = calloc(m->n_ops ? m->n_ops : 1, sizeof(*r->conv));
	if (!r->shapes || !r->t_off || !r->t_bytes || !r->conv) {
		LOGE("runner: out of host memory");
		goto fail;
	}
	ret = nn_model_shapes(m, p->h, p->w, r->shapes);
	uint64_t align = gpu_device_info(dev)->min_storage_offset_align;
	align = align > 256 ? align : 256;
	if (!ret)
		ret = upload_weights(r, align);
	if (!ret)
		ret = plan_and_record(r, align);
	if (ret)
		goto fail;
	*out = r;
	return 0;
fail:
	nn_runner_destroy(&r);
	return ret;
}

void nn_runner_destroy(struct nn_runner **rp)
{
	struct nn_runner *r = *rp;
	if (!r)
		return;
	gpu_seq_destroy(&r->seq);
	gpu_seq_destroy(&r->seq_in);
	gpu_buf_destroy(&r->weights);
	for (uint32_t k = 0; r->arena && k < r->n_chunks; k++)
		gpu_buf_destroy(&r->arena[k]);
	free(r->arena);
	gpu_buf_destroy(&r->input_u8);
	gpu_pool_destroy(&r->wpool);
	gpu_pool_destroy(&r->apool);
	free(r->shapes), free(r->t_off), free(r->t_bytes), free(r->conv);
	free(r);
	*rp = NULL;
}

int nn_runner_run(struct nn_runner *r, const uint8_t *input_u8)
{
	int ret = gpu_buf_upload(r->input_u8, 0, input_u8, (size_t)r->p.n * 3 * r->p.h * r->p.w);
	if (!ret)
		ret = gpu_seq_run(r->seq_in);
	if (!ret)
		ret = gpu_seq_run(r->seq);
	return ret;
}

int nn_runner_run_f32(struct nn_runner *r, const float *input)
{
	struct gpu_binding b = tensor_binding(r, 0);
	int ret = gpu_buf_upload(b.buf, b.offset, input, r->t_bytes[0]);
	if (!ret)
		ret = gpu_seq_run(r->seq);
	return ret;
}

uint32_t nn_runner_anchors(const struct nn_runner *r)
{
	return r->shapes[r->m->output].w;
}

uint32_t nn_runner_rows(const struct nn_runner *r)
{
	return r->shapes[r->m->output].c;
}

bool nn_runner_has_aux(const struct nn_runner *r)
{
	return r->m->output_aux != NN_NO_TENSOR;
}

int nn_runner_read_output(struct nn_runner *r, bool aux, float *out)
{
	uint32_t t = aux ? r->m->output_aux : r->m->output;
	if (t == NN_NO_TENSOR) {
		LOGE("runner: the model has no auxiliary output");
		return -EINVAL;
	}
	struct gpu_binding b = tensor_binding(r, t);
	return gpu_buf_download(b.buf, b.offset, out, r->t_bytes[t]);
}

static const struct nn_slice *layer_slice(const struct nn_runner *r, uint32_t layer, uint32_t k)
{
	if (layer >= r->m->n_layers || k >= r->m->layers[layer].n_out) {
		LOGE("runner: no output %u of layer %u", k, layer);
		return NULL;
	}
	return &r->m->layers[layer].out[k];
}

int nn_runner_layer_shape(const struct nn_runner *r, uint32_t layer, uint32_t k, struct nn_shape *shape)
{
	const struct nn_slice *s = layer_slice(r, layer, k);
	if (!s)
		return -EINVAL;
	*shape = (struct nn_shape){ s->c, r->shapes[s->tensor].h, r->shapes[s->tensor].w };
	return 0;
}

int nn_runner_read_layer(struct nn_runner *r, uint32_t layer, uint32_t k, float *out)
{
	const struct nn_slice *s = layer_slice(r, layer, k);
	if (!s)
		return -EINVAL;
	bool live = s->tensor == r->m->output || s->tensor == r->m->output_aux;
	if (!r->p.keep_layers && !live) {
		LOGE("runner: layer %u output %u was not kept (create the runner with keep_layers)", layer, k);
		return -EINVAL;
	}
	const struct nn_shape *sh = &r->shapes[s->tensor];
	size_t hw = (size_t)sh->h * sh->w;
	struct gpu_binding tb = tensor_binding(r, s->tensor);
	int ret = 0;
	for (uint32_t n = 0; !ret && n < r->p.n; n++)
		ret = gpu_buf_download(tb.buf, tb.offset + ((size_t)n * sh->c + s->c_off) * hw * sizeof(float),
		                       out + (size_t)n * s->c * hw, (size_t)s->c * hw * sizeof(float));
	return ret;
}

void nn_runner_stats(const struct nn_runner *r, struct nn_runner_stats *s)
{
	*s = (struct nn_runner_stats){
		.dispatches = gpu_seq_dispatch_count(r->seq) + gpu_seq_dispatch_count(r->seq_in),
		.barriers = gpu_seq_barrier_count(r->seq),
		.weight_bytes = r->weight_bytes,
		.activation_bytes = r->arena_bytes,
		.activation_naive_bytes = r->naive_bytes,
		.activation_buffers = r->n_chunks,
		.gflop = r->gflop,
	};
}

// The decode op of head set `set` (see nn_runner_head_info), or NULL; *sets: the model's sets.
static const struct nn_op *head_op(const struct nn_runner *r, uint32_t set, uint32_t *sets)
{
	const struct nn_model *m = r->m;
	bool dual = m->output_aux != NN_NO_TENSOR;
	uint32_t want = dual && set == 0 ? m->output_aux : m->output;
	*sets = dual ? 2 : 1;
	if (set >= *sets)
		return NULL;
	for (uint32_t i = 0; i < m->n_ops; i++)
		if (m->ops[i].kind == NN_OP_DECODE && m->ops[i].y.tensor == want)
			return &m->ops[i];
	return NULL;
}

int nn_runner_head_info(const struct nn_runner *r, uint32_t set, uint32_t l, uint32_t *sets, struct nn_shape *shape,
                        float *stride)
{
	const struct nn_op *op = head_op(r, set, sets);
	if (!op) {
		LOGE("runner: no head set %u", set);
		return -EINVAL;
	}
	if (l >= op->nl)
		return -ENOENT; // past the last level: how callers count them, not an error to report
	*shape = r->shapes[op->level[l]];
	*stride = op->level_stride[l];
	return 0;
}

int nn_runner_read_head(struct nn_runner *r, uint32_t set, uint32_t l, float *out)
{
	uint32_t sets;
	const struct nn_op *op = head_op(r, set, &sets);
	if (!op || l >= op->nl || !(r->p.keep_heads || r->p.keep_layers)) {
		LOGE("runner: head set %u level %u not available (keep_heads off?)", set, l);
		return -EINVAL;
	}
	struct gpu_binding b = tensor_binding(r, op->level[l]);
	return gpu_buf_download(b.buf, b.offset, out, r->t_bytes[op->level[l]]);
}

int nn_runner_op_work(const struct nn_runner *r, const char *name, double *gflop, char *desc, size_t desc_size)
{
	*gflop = 0;
	if (desc_size)
		desc[0] = 0;
	for (uint32_t i = 0; i < r->m->n_ops; i++) {
		const struct nn_op *op = &r->m->ops[i];
		if (!name || strcmp(op->name, name))
			continue;
		if (op->kind != NN_OP_CONV)
			return 0;
		struct nn_conv2d_desc d;
		conv_desc(r, op, &d);
		uint32_t ho = nn_conv2d_out_h(&d), wo = nn_conv2d_out_w(&d);
		*gflop = 2e-9 * d.n * ho * wo * d.c_out * (d.c_in / d.groups) * d.k_h * d.k_w;
		if (desc_size) {
			int k = snprintf(desc, desc_size, "%u>%u k%us%u %ux%u", d.c_in, d.c_out, d.k_h, d.stride, ho, wo);
			if (k > 0 && (size_t)k < desc_size && d.groups > 1)
				k += snprintf(desc + k, desc_size - k, " g%u", d.groups);
			if (k > 0 && (size_t)k < desc_size && d.avgpool_before)
				snprintf(desc + k, desc_size - k, " avg");
		}
		return 0;
	}
	return -ENOENT;
}

int nn_runner_timings(const struct nn_runner *r, struct gpu_timing *out, uint32_t cap, uint32_t *count)
{
	return gpu_seq_timings(r->seq, out, cap, count);
}
