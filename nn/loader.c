// Batch loader: a ring of batch slots filled sample by sample by worker threads (or inline), in a
// fixed order, each sample with its own RNG state so the result is independent of scheduling.
#include "loader.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "log.h"
#include "rng.h"
#include "valdata.h"

struct slot {
	uint8_t *input;		// [batch, 3, S, S]
	struct nn_label **labels; // [batch] per-sample labels (owned)
	size_t *counts;		// [batch]
	size_t *indices;	// [batch]
	uint32_t done;		// samples finished
	int rc;			// first error of a sample
};

struct nn_loader {
	struct nn_loader_params p;
	struct nn_hyp hyp;
	struct nn_aug_source src;
	struct nn_image **cache; // [count] or NULL
	size_t count, nbatches;
	uint32_t nslots;
	struct slot *slots;
	size_t *perm; // [count] the epoch's order
	size_t *order; // [count] rect: split indices by aspect ratio (NULL otherwise)
	uint32_t (*shapes)[2]; // [nbatches] rect: (h, w) of each batch
	float *targets;
	size_t targets_cap;
	struct nn_batch batch;
	// shared with the workers, under mu
	pthread_mutex_t mu;
	pthread_cond_t work_cv, done_cv;
	pthread_t *threads;
	uint32_t nthreads;
	bool stop, mosaic, started;
	uint32_t epoch;
	size_t next_pos;  // next sample position to claim
	size_t released;  // batches handed out and given back: slot of batch b free for b < released + nslots
	size_t in_flight; // samples being made
	size_t next_batch; // the batch nn_loader_next returns next
};

static void slot_clear_labels(struct slot *s, uint32_t batch)
{
	for (uint32_t i = 0; i < batch; i++) {
		free(s->labels[i]);
		s->labels[i] = NULL;
		s->counts[i] = 0;
	}
	s->done = 0;
	s->rc = 0;
}

static uint32_t batch_size(const struct nn_loader *l, size_t b)
{
	size_t first = b * l->p.batch, left = l->count - first;
	return (uint32_t)(left < l->p.batch ? left : l->p.batch);
}

// Makes the sample at position pos of the epoch into its slot (no lock needed: each position has
// its own bytes and label entry).
static int make_sample(struct nn_loader *l, uint32_t epoch, bool mosaic, size_t pos)
{
	size_t b = pos / l->p.batch, k = pos % l->p.batch;
	struct slot *s = &l->slots[b % l->nslots];
	uint32_t h = l->shapes ? l->shapes[b][0] : l->p.imgsz;
	uint32_t w = l->shapes ? l->shapes[b][1] : l->p.imgsz;
	size_t plane = 3 * (size_t)h * w; // samples packed as [n, 3, h, w]
	struct nn_rng rng;
	nn_rng_seed(&rng, nn_rng_mix(l->p.seed, epoch, pos));
	struct nn_aug_sample_params sp = { .augment = l->p.augment, .mosaic = mosaic,
					   .albumentations = l->p.augment };
	if (l->shapes)
		sp.out_h = h, sp.out_w = w, sp.mosaic = false;
	s->indices[k] = l->perm[pos];
	return nn_aug_sample(&l->src, l->perm[pos], &sp, &l->hyp, &rng, s->input + k * plane,
			     &s->labels[k], &s->counts[k]);
}

static bool claimable(const struct nn_loader *l)
{
	return l->next_pos < l->count && l->next_pos / l->p.batch < l->released + l->nslots;
}

static void *worker_main(void *arg)
{
	struct nn_loader *l = arg;
	pthread_mutex_lock(&l->mu);
	for (;;) {
		while (!l->stop && !claimable(l))
			pthread_cond_wait(&l->work_cv, &l->mu);
		if (l->stop)
			break;
		size_t pos = l->next_pos++;
		uint32_t epoch = l->epoch;
		bool mosaic = l->mosaic;
		l->in_flight++;
		pthread_mutex_unlock(&l->mu);
		int rc = make_sample(l, epoch, mosaic, pos);
		pthread_mutex_lock(&l->mu);
		struct slot *s = &l->slots[(pos / l->p.batch) % l->nslots];
		if (rc && !s->rc)
			s->rc = rc;
		s->done++;
		l->in_flight--;
		pthread_cond_broadcast(&l->done_cv);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

static int load_cache(struct nn_loader *l)
{
	l->cache = calloc(l->count, sizeof(*l->cache));
	if (!l->cache) {
		LOGE("loader: image cache of %zu: out of memory", l->count);
		return -ENOMEM;
	}
	for (size_t i = 0; i < l->count; i++) {
		int rc = nn_aug_load_image(l->p.split->images[i].path, l->p.imgsz, &l->cache[i]);
		if (rc)
			return rc;
	}
	l->src.cache = l->cache;
	return 0;
}

// Official rect batches, planned exactly as validation plans them (nn_val_plan_create).
static int plan_rect(struct nn_loader *l)
{
	struct nn_val_plan *plan = NULL;
	int rc = nn_val_plan_create(l->p.split, l->p.imgsz, l->p.batch, 32, l->p.pad, &plan);
	if (rc)
		return rc;
	l->order = malloc(l->count * sizeof(*l->order));
	l->shapes = malloc(l->nbatches * sizeof(*l->shapes));
	if (!l->order || !l->shapes || plan->nbatches != l->nbatches) {
		nn_val_plan_destroy(&plan);
		LOGE("loader: rect plan for %zu images: out of memory", l->count);
		return -ENOMEM;
	}
	memcpy(l->order, plan->order, l->count * sizeof(*l->order));
	for (size_t b = 0; b < l->nbatches; b++) {
		l->shapes[b][0] = plan->shape_h[b];
		l->shapes[b][1] = plan->shape_w[b];
	}
	nn_val_plan_destroy(&plan);
	return 0;
}

static int alloc_slots(struct nn_loader *l)
{
	// rect shapes can exceed S by the padding (val pad 0.5: 672 at 640)
	uint32_t side = l->p.imgsz + (uint32_t)ceil(l->p.pad) * 32;
	size_t plane = 3 * (size_t)side * side;
	l->slots = calloc(l->nslots, sizeof(*l->slots));
	l->perm = malloc(l->count * sizeof(*l->perm));
	if (!l->slots || !l->perm)
		goto oom;
	for (uint32_t i = 0; i < l->nslots; i++) {
		struct slot *s = &l->slots[i];
		s->input = malloc(plane * l->p.batch);
		s->labels = calloc(l->p.batch, sizeof(*s->labels));
		s->counts = calloc(l->p.batch, sizeof(*s->counts));
		s->indices = calloc(l->p.batch, sizeof(*s->indices));
		if (!s->input || !s->labels || !s->counts || !s->indices)
			goto oom;
	}
	for (size_t i = 0; i < l->count; i++)
		l->perm[i] = i;
	return 0;
oom:
	LOGE("loader: %u slots of %u x %zu bytes: out of memory", l->nslots, l->p.batch, plane);
	return -ENOMEM;
}

int nn_loader_create(const struct nn_loader_params *p, struct nn_loader **out)
{
	struct nn_loader *l = NULL;
	int rc = -EINVAL;
	if (!p->split || !p->split->count || !p->batch || !p->imgsz || p->imgsz % 32) {
		LOGE("loader: need images (%zu), batch > 0 (%u), imgsz a multiple of 32 (%u)",
		     p->split ? p->split->count : 0, p->batch, p->imgsz);
		return -EINVAL;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		LOGE("loader: out of memory");
		return -ENOMEM;
	}
	l->p = *p;
	if (p->hyp)
		l->hyp = *p->hyp;
	else
		nn_hyp_defaults(&l->hyp);
	l->p.hyp = &l->hyp;
	l->count = p->split->count;
	l->nbatches = (l->count + p->batch - 1) / p->batch;
	l->src = (struct nn_aug_source){ .split = p->split, .imgsz = p->imgsz };
	// enough slots that all workers have samples to make while one batch is being consumed
	l->nslots = p->workers ? 2 + (p->workers + p->batch - 1) / p->batch : 1;
	l->released = l->nbatches; // nothing claimable before nn_loader_epoch
	l->next_pos = l->count;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->work_cv, NULL);
	pthread_cond_init(&l->done_cv, NULL);
	rc = alloc_slots(l);
	if (!rc && p->rect)
		rc = plan_rect(l);
	if (!rc && p->cache_ram)
		rc = load_cache(l);
	if (rc)
		goto fail;
	l->threads = calloc(p->workers + 1, sizeof(*l->threads));
	if (!l->threads) {
		rc = -ENOMEM;
		goto fail;
	}
	for (; l->nthreads < p->workers; l->nthreads++) {
		if (pthread_create(&l->threads[l->nthreads], NULL, worker_main, l)) {
			LOGE("loader: cannot start worker %u", l->nthreads);
			rc = -EAGAIN;
			goto fail;
		}
	}
	*out = l;
	return 0;
fail:
	nn_loader_destroy(&l);
	return rc;
}

// Waits until no worker is inside a sample, with claiming disabled (caller holds mu).
static void quiesce(struct nn_loader *l)
{
	l->next_pos = l->count;
	while (l->in_flight)
		pthread_cond_wait(&l->done_cv, &l->mu);
}

void nn_loader_destroy(struct nn_loader **lp)
{
	struct nn_loader *l = *lp;
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_cond_broadcast(&l->work_cv);
	pthread_mutex_unlock(&l->mu);
	for (uint32_t i = 0; i < l->nthreads; i++)
		pthread_join(l->threads[i], NULL);
	for (uint32_t i = 0; l->slots && i < l->nslots; i++) {
		struct slot *s = &l->slots[i];
		if (s->labels)
			slot_clear_labels(s, l->p.batch);
		free(s->input);
		free(s->labels);
		free(s->counts);
		free(s->indices);
	}
	for (size_t i = 0; l->cache && i < l->count; i++)
		nn_image_destroy(&l->cache[i]);
	free(l->cache);
	free(l->slots);
	free(l->perm);
	free(l->order);
	free(l->shapes);
	free(l->targets);
	free(l->threads);
	pthread_cond_destroy(&l->work_cv);
	pthread_cond_destroy(&l->done_cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
	*lp = NULL;
}

size_t nn_loader_batches(const struct nn_loader *l)
{
	return l->nbatches;
}

int nn_loader_batch_shape(const struct nn_loader *l, size_t b, uint32_t *h, uint32_t *w)
{
	if (b >= l->nbatches) {
		LOGE("loader: batch %zu of %zu", b, l->nbatches);
		return -EINVAL;
	}
	*h = l->shapes ? l->shapes[b][0] : l->p.imgsz;
	*w = l->shapes ? l->shapes[b][1] : l->p.imgsz;
	return 0;
}

int nn_loader_epoch(struct nn_loader *l, uint32_t epoch, bool mosaic)
{
	pthread_mutex_lock(&l->mu);
	quiesce(l);
	for (size_t i = 0; i < l->count; i++)
		l->perm[i] = l->order ? l->order[i] : i;
	if (l->p.shuffle && !l->order) { // official: --rect is incompatible with shuffle
		struct nn_rng rng;
		nn_rng_seed(&rng, nn_rng_mix(l->p.seed, epoch, UINT64_MAX));
		for (size_t i = l->count - 1; i > 0; i--) {
			size_t j = nn_rng_below(&rng, (uint32_t)(i + 1));
			size_t t = l->perm[i];
			l->perm[i] = l->perm[j];
			l->perm[j] = t;
		}
	}
	for (uint32_t i = 0; i < l->nslots; i++)
		slot_clear_labels(&l->slots[i], l->p.batch);
	l->epoch = epoch;
	l->mosaic = mosaic;
	l->next_pos = 0;
	l->released = 0;
	l->next_batch = 0;
	l->started = true;
	pthread_cond_broadcast(&l->work_cv);
	pthread_mutex_unlock(&l->mu);
	return 0;
}

// Concatenates the slot's per-sample labels into the targets rows.
static int gather_targets(struct nn_loader *l, struct slot *s, uint32_t n)
{
	size_t total = 0;
	for (uint32_t k = 0; k < n; k++)
		total += s->counts[k];
	if (total > l->targets_cap) {
		float *t = realloc(l->targets, total * 6 * sizeof(float));
		if (!t) {
			LOGE("loader: %zu targets: out of memory", total);
			return -ENOMEM;
		}
		l->targets = t;
		l->targets_cap = total;
	}
	float *t = l->targets;
	for (uint32_t k = 0; k < n; k++)
		for (size_t j = 0; j < s->counts[k]; j++, t += 6) {
			const struct nn_label *lb = &s->labels[k][j];
			t[0] = (float)k, t[1] = (float)lb->cls;
			t[2] = lb->cx, t[3] = lb->cy, t[4] = lb->w, t[5] = lb->h;
		}
	l->batch.ntargets = total;
	return 0;
}

int nn_loader_next(struct nn_loader *l, const struct nn_batch **out)
{
	*out = NULL;
	if (!l->started) {
		LOGE("loader: nn_loader_next before nn_loader_epoch");
		return -EINVAL;
	}
	pthread_mutex_lock(&l->mu);
	size_t b = l->next_batch;
	if (b > 0 && l->released < b) { // give the previous batch's slot back to the workers
		slot_clear_labels(&l->slots[(b - 1) % l->nslots], l->p.batch);
		l->released = b;
		pthread_cond_broadcast(&l->work_cv);
	}
	if (b >= l->nbatches) {
		pthread_mutex_unlock(&l->mu);
		return 0;
	}
	struct slot *s = &l->slots[b % l->nslots];
	uint32_t n = batch_size(l, b);
	if (!l->nthreads) { // inline: make the batch's samples here, in order
		for (uint32_t k = 0; k < n; k++) {
			size_t pos = b * l->p.batch + k;
			int rc = make_sample(l, l->epoch, l->mosaic, pos);
			if (rc && !s->rc)
				s->rc = rc;
			s->done++;
		}
	}
	while (s->done < n)
		pthread_cond_wait(&l->done_cv, &l->mu);
	int rc = s->rc;
	pthread_mutex_unlock(&l->mu);
	l->next_batch = b + 1;
	if (rc)
		return rc;
	rc = gather_targets(l, s, n);
	if (rc)
		return rc;
	l->batch.epoch = l->epoch;
	l->batch.index = (uint32_t)b;
	l->batch.n = n;
	l->batch.h = l->shapes ? l->shapes[b][0] : l->p.imgsz;
	l->batch.w = l->shapes ? l->shapes[b][1] : l->p.imgsz;
	l->batch.input_u8 = s->input;
	l->batch.targets = l->targets;
	l->batch.indices = s->indices;
	*out = &l->batch;
	return 0;
}
