// The TAL loss on the GPU (nn/loss_gpu.h): buffers, the target table and the recorded kernels.
// Layouts of the targets buffer T and the work buffer W: shaders/include/loss_tal.glsl.
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loss_gpu.h"

#define WG_MAX 256    // per-anchor kernels, top-k and reductions (partials regions hold 256)
#define HDR_WORDS 64  // parameter header of T, then one count per image
#define ROW_WORDS 8   // gt row: x1, y1, x2, y2, class, valid, 2 unused
#define OUT_FLOATS 8  // loss, box, cls, dfl, n_fg[2], S[2]
#define AUX_WEIGHT 0.25f

struct nn_loss_gpu {
	struct gpu_device *dev;
	struct nn_loss_desc d;
	uint32_t n_sets, max_targets, a, np, g, table, set_words, wg;
	uint32_t *tbl; // host copy of T
	size_t t_words;
	struct gpu_pool *pool;
	struct gpu_buf *t, *w, *out;
	struct gpu_kernel *k_decode, *k_topk, *k_resolve, *k_score, *k_terms, *k_final, *k_reduce;
};

_Static_assert(NN_DETECT_MAX_LEVELS == 4, "the loss_tal kernels bind 4 level maps");

struct loss_push {
	uint32_t base;
	float scale;
	uint32_t n_sets, base1;
};
_Static_assert(sizeof(struct loss_push) == 16, "shaders/include/loss_tal.glsl Push");

static uint32_t round_up(uint32_t x, uint32_t m)
{
	return (x + m - 1) / m * m;
}

void nn_loss_gpu_destroy(struct nn_loss_gpu **lp)
{
	struct nn_loss_gpu *l = lp ? *lp : NULL;
	if (!l)
		return;
	gpu_buf_destroy(&l->t);
	gpu_buf_destroy(&l->w);
	gpu_buf_destroy(&l->out);
	gpu_pool_destroy(&l->pool);
	free(l->tbl);
	free(l);
	*lp = NULL;
}

static int get_kernel(struct gpu_device *dev, enum gpu_kernel_id id, uint32_t nbind, uint32_t push, uint32_t wg,
                      struct gpu_kernel **out)
{
	struct gpu_kernel_params kp = {.id = id, .binding_count = nbind, .push_size = push, .spec_count = 1, .spec = {wg}};
	return gpu_kernel_get(dev, &kp, out);
}

int nn_loss_gpu_create(struct gpu_device *dev, const struct nn_loss_desc *d, uint32_t n_sets, uint32_t max_targets,
                       struct nn_loss_gpu **out)
{
	*out = NULL;
	if (!dev || !d || d->n == 0 || d->nc == 0 || d->reg_max < 2 || d->reg_max > 64 || d->nl == 0 ||
	    d->nl > NN_DETECT_MAX_LEVELS || (n_sets != 1 && n_sets != 2) || max_targets == 0) {
		LOGE("loss_gpu: bad description (n %u, nc %u, reg_max %u, nl %u, sets %u, max_targets %u)", d ? d->n : 0,
		     d ? d->nc : 0, d ? d->reg_max : 0, d ? d->nl : 0, n_sets, max_targets);
		return -EINVAL;
	}
	uint64_t a = 0;
	for (uint32_t k = 0; k < d->nl; k++) {
		if (d->h[k] == 0 || d->w[k] == 0 || !(d->stride[k] > 0.0f)) {
			LOGE("loss_gpu: level %u: bad size %ux%u or stride %g", k, d->h[k], d->w[k], d->stride[k]);
			return -EINVAL;
		}
		a += (uint64_t)d->h[k] * d->w[k];
	}
	uint64_t words = 0;
	struct nn_loss_gpu *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->dev = dev, l->d = *d, l->n_sets = n_sets, l->max_targets = max_targets, l->a = (uint32_t)a;
	uint64_t n_a = (uint64_t)d->n * a, n_g = (uint64_t)d->n * max_targets;
	if (n_a > (1u << 28) || n_g > (1u << 26)) {
		LOGE("loss_gpu: %llu anchors x images or %llu gt rows: too many", (unsigned long long)n_a,
		     (unsigned long long)n_g);
		free(l);
		return -EINVAL;
	}
	l->np = round_up((uint32_t)n_a, 64), l->g = round_up((uint32_t)n_g, 64);
	l->set_words = round_up(14 * l->np + 2 * l->g + 1600, 64);
	l->table = HDR_WORDS + 2 * round_up(d->n, 64);
	l->t_words = l->table + (size_t)ROW_WORDS * max_targets;
	words = (uint64_t)l->set_words * n_sets;
	int ret = -ENOMEM;
	if (!(l->tbl = calloc(l->t_words, sizeof(uint32_t)))) {
		LOGE("loss_gpu: out of memory (target table of %zu words)", l->t_words);
		goto fail;
	}
	uint32_t *t = l->tbl;
	t[0] = d->n, t[1] = d->nc, t[2] = d->reg_max, t[3] = d->nl, t[4] = l->a, t[5] = max_targets;
	t[6] = 4 * d->reg_max + d->nc, t[7] = l->np, t[8] = l->g, t[9] = l->table;
	t[10] = HDR_WORDS + round_up(d->n, 64);
	// workgroup size: a power of two the device allows (Vulkan guarantees 128)
	const struct gpu_device_info *di = gpu_device_info(dev);
	uint32_t lim = di->max_workgroup_invocations < di->max_workgroup_size[0] ? di->max_workgroup_invocations
	                                                                        : di->max_workgroup_size[0];
	for (l->wg = WG_MAX; l->wg > 32 && l->wg > lim; l->wg /= 2)
		;
	if ((n_a + l->wg - 1) / l->wg > di->max_workgroup_count[0] || max_targets > di->max_workgroup_count[0] ||
	    d->n > di->max_workgroup_count[1]) {
		LOGE("loss_gpu: %llu anchors x images or %u targets exceed the device's workgroup counts",
		     (unsigned long long)n_a, max_targets);
		ret = -EINVAL;
		goto fail;
	}
	for (uint32_t k = 0, first = 0; k < d->nl; k++) {
		t[16 + 4 * k] = d->h[k], t[17 + 4 * k] = d->w[k], t[18 + 4 * k] = first;
		memcpy(&t[19 + 4 * k], &d->stride[k], 4);
		first += d->h[k] * d->w[k];
	}
	struct gpu_pool_params pp = {.kind = GPU_POOL_DEVICE, .block_size = 0, .name = "loss"};
	if ((ret = gpu_pool_create(dev, &pp, &l->pool)) || (ret = gpu_buf_create(l->pool, l->t_words * 4, &l->t)) ||
	    (ret = gpu_buf_create(l->pool, words * 4, &l->w)) ||
	    (ret = gpu_buf_create(l->pool, OUT_FLOATS * 4, &l->out)) ||
	    (ret = gpu_buf_upload(l->t, 0, l->tbl, l->t_words * 4)))
		goto fail;
	uint32_t ps = sizeof(struct loss_push);
	if ((ret = get_kernel(dev, GPU_KERNEL_LOSS_TAL_DECODE, 6, ps, l->wg, &l->k_decode)) ||
	    (ret = get_kernel(dev, GPU_KERNEL_LOSS_TAL_TOPK, 6, ps, l->wg, &l->k_topk)) ||
	    (ret = get_kernel(dev, GPU_KERNEL_LOSS_TAL_RESOLVE, 6, ps, l->wg, &l->k_resolve)) ||
	    (ret = get_kernel(dev, GPU_KERNEL_LOSS_TAL_SCORE, 6, ps, l->wg, &l->k_score)) ||
	    (ret = get_kernel(dev, GPU_KERNEL_LOSS_TAL_TERMS, 10, ps, l->wg, &l->k_terms)) ||
	    (ret = get_kernel(dev, GPU_KERNEL_LOSS_TAL_FINAL, 7, ps, 1, &l->k_final)) ||
	    (ret = get_kernel(dev, GPU_KERNEL_REDUCE_SUM_F32, 2, 8, l->wg, &l->k_reduce)))
		goto fail;
	*out = l;
	return 0;
fail: // the engine logged its failures
	nn_loss_gpu_destroy(&l);
	return ret;
}

int nn_loss_gpu_set_targets(struct nn_loss_gpu *l, const float *targets, uint32_t n_targets)
{
	const struct nn_loss_desc *d = &l->d;
	if (n_targets > l->max_targets || (n_targets && !targets)) {
		LOGE("loss_gpu: %u targets (capacity %u)%s", n_targets, l->max_targets, targets ? "" : ", no array");
		return -EINVAL;
	}
	uint32_t *t = l->tbl, *count = t + HDR_WORDS, *first = t + t[10], rows = 0;
	float img_w = (float)d->w[0] * d->stride[0], img_h = (float)d->h[0] * d->stride[0];
	for (uint32_t img = 0; img < d->n; img++) {
		first[img] = rows, count[img] = 0;
		for (uint32_t i = 0; i < n_targets; i++) {
			const float *r = targets + 6 * i;
			if (r[0] != (float)img)
				continue; // rows of images outside the batch are ignored like the official code
			if (!(r[1] >= 0.0f && r[1] < (float)d->nc)) {
				LOGE("loss_gpu: target %u: class %g outside [0, %u)", i, r[1], d->nc);
				return -EINVAL;
			}
			uint32_t *row = t + l->table + ROW_WORDS * (size_t)rows++;
			count[img]++;
			float cx = r[2] * img_w, cy = r[3] * img_h, w = r[4] * img_w, h = r[5] * img_h;
			float b[4] = {cx - w / 2.0f, cy - h / 2.0f, cx + w / 2.0f, cy + h / 2.0f};
			memcpy(row, b, sizeof(b));
			row[4] = (uint32_t)r[1];
			row[5] = b[0] + b[1] + b[2] + b[3] > 0.0f;
			row[6] = row[7] = 0;
		}
	}
	return gpu_buf_upload(l->t, 0, t, ((size_t)l->table + ROW_WORDS * (size_t)rows) * 4);
}

// Binding of words [off, off + count) of buffer b.
static struct gpu_binding range(struct gpu_buf *b, uint64_t off, uint64_t count, bool write)
{
	return (struct gpu_binding){.buf = b, .offset = (size_t)off * 4, .size = (size_t)count * 4, .write = write};
}

// Fixed-order sum of `count` floats at word src into word dst, through 256 partials at word tmp.
static int record_sum(struct nn_loss_gpu *l, struct gpu_seq *seq, uint64_t src, uint32_t count, uint64_t tmp,
                      uint64_t dst)
{
	uint32_t wg = l->wg, chunk = round_up((count + wg - 1) / wg, wg), groups = (count + chunk - 1) / chunk;
	uint32_t p1[2] = {count, chunk}, p2[2] = {groups, wg};
	struct gpu_binding b1[2] = {range(l->w, src, l->np, false), range(l->w, tmp, wg, true)};
	struct gpu_binding b2[2] = {range(l->w, tmp, wg, false), range(l->w, dst, 1, true)};
	int ret = gpu_seq_dispatch(seq, &(struct gpu_dispatch){l->k_reduce, b1, p1, {groups, 1, 1}, "loss.sum1"});
	return ret ? ret : gpu_seq_dispatch(seq, &(struct gpu_dispatch){l->k_reduce, b2, p2, {1, 1, 1}, "loss.sum2"});
}

static int record_set(struct nn_loss_gpu *l, struct gpu_seq *seq, uint32_t s, const struct gpu_binding *maps,
                      const struct gpu_binding *dmaps)
{
	const struct nn_loss_desc *d = &l->d;
	uint64_t b = (uint64_t)s * l->set_words, np = l->np;
	struct gpu_binding bind[10];
	for (uint32_t k = 0; k < 4; k++) {
		uint32_t lv = k < d->nl ? k : 0;
		bind[k] = maps[lv], bind[k].write = false;
		bind[6 + k] = dmaps[lv], bind[6 + k].write = true;
	}
	bind[4] = range(l->w, 0, (uint64_t)l->set_words * l->n_sets, true); // whole: kernels index from pc.base
	bind[5] = range(l->t, 0, l->t_words, false);
	struct loss_push p = {(uint32_t)b, (float)d->n * (l->n_sets == 2 && s == 0 ? AUX_WEIGHT : 1.0f), l->n_sets, 0};
	uint32_t na = d->n * l->a, ga = (na + l->wg - 1) / l->wg;
	struct gpu_binding f_cnt = range(l->w, b + 4 * np, np, true), f_first = range(l->w, b + 5 * np, np, true);
	struct gpu_binding f_max = range(l->w, b + 14 * np, 2 * (uint64_t)l->g, true);
	int ret;
	if ((ret = gpu_seq_fill(seq, &f_cnt, 0)) || (ret = gpu_seq_fill(seq, &f_first, 0xffffffffu)) ||
	    (ret = gpu_seq_fill(seq, &f_max, 0)) ||
	    (ret = gpu_seq_dispatch(seq, &(struct gpu_dispatch){l->k_decode, bind, &p, {ga, 1, 1}, "loss.decode"})) ||
	    (ret = gpu_seq_dispatch(seq, &(struct gpu_dispatch){l->k_topk, bind, &p, {l->max_targets, d->n, 1},
	                                                         "loss.topk"})) ||
	    (ret = gpu_seq_dispatch(seq, &(struct gpu_dispatch){l->k_resolve, bind, &p, {ga, 1, 1}, "loss.resolve"})) ||
	    (ret = gpu_seq_dispatch(seq, &(struct gpu_dispatch){l->k_score, bind, &p, {ga, 1, 1}, "loss.score"})))
		return ret;
	uint64_t red = b + 14 * np + 2 * (uint64_t)l->g, sum = red + 5 * WG_MAX;
	if ((ret = record_sum(l, seq, b + 9 * np, na, red, sum)) ||
	    (ret = gpu_seq_dispatch(seq, &(struct gpu_dispatch){l->k_terms, bind, &p, {ga, 1, 1}, "loss.terms"})))
		return ret;
	for (uint32_t k = 0; k < 4; k++)
		if ((ret = record_sum(l, seq, b + (10 + k) * np, na, red + WG_MAX * (k + 1), sum + 64 * (k + 1))))
			return ret;
	return 0;
}

int nn_loss_gpu_record(struct nn_loss_gpu *l, struct gpu_seq *seq, const struct gpu_binding *maps,
                       const struct gpu_binding *dmaps)
{
	if (!l || !seq || !maps || !dmaps) {
		LOGE("loss_gpu: record: missing argument");
		return -EINVAL;
	}
	int ret;
	for (uint32_t s = 0; s < l->n_sets; s++)
		if ((ret = record_set(l, seq, s, maps + s * l->d.nl, dmaps + s * l->d.nl)))
			return ret;
	struct gpu_binding bind[7];
	for (uint32_t k = 0; k < 4; k++)
		bind[k] = maps[k < l->d.nl ? k : 0], bind[k].write = false;
	bind[4] = range(l->w, 0, (uint64_t)l->set_words * l->n_sets, false);
	bind[5] = range(l->t, 0, l->t_words, false);
	bind[6] = range(l->out, 0, OUT_FLOATS, true);
	struct loss_push p = {0, 0.0f, l->n_sets, l->set_words};
	return gpu_seq_dispatch(seq, &(struct gpu_dispatch){l->k_final, bind, &p, {1, 1, 1}, "loss.final"});
}

int nn_loss_gpu_read(struct nn_loss_gpu *l, struct nn_loss_out *out)
{
	float v[OUT_FLOATS];
	int ret = gpu_buf_download(l->out, 0, v, sizeof(v));
	if (ret)
		return ret;
	out->loss = v[0];
	for (int k = 0; k < 3; k++)
		out->items[k] = v[1 + k];
	for (int s = 0; s < 2; s++) {
		out->n_fg[s] = (uint32_t)v[4 + s];
		out->target_sum[s] = v[6 + s];
	}
	return 0;
}
