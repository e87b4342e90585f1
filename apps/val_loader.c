// Background batch loading for `vkyolo val --model` (see val_loader.h).
#include "val_loader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "dataset.h"
#include "log.h"
#include "valdata.h"

struct val_loader {
	const struct nn_dataset_split *sp;
	const struct nn_val_plan *plan;
	uint32_t imgsz, workers;
	struct val_slot slots[2];
	struct val_slot *filling; // the slot fill_slot is loading (for load_one)
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop, threaded;
	pthread_t thread;
};

static void *work_thread(void *arg)
{
	struct val_work *w = arg;
	for (uint32_t i; (i = atomic_fetch_add(&w->next, 1)) < w->count && !atomic_load(&w->rc);) {
		double t0 = app_now_ms();
		int rc = w->item(w->ctx, i);
		double dt = app_now_ms() - t0;
		pthread_mutex_lock(&w->mu);
		w->ms += dt;
		pthread_mutex_unlock(&w->mu);
		if (rc)
			atomic_store(&w->rc, rc);
	}
	return NULL;
}

void val_work_start(struct val_work *w, uint32_t threads, bool inline_too)
{
	atomic_init(&w->next, 0);
	atomic_init(&w->rc, 0);
	w->ms = 0;
	w->nth = 0;
	pthread_mutex_init(&w->mu, NULL);
	w->started = true;
	for (uint32_t i = 0; i < threads && i < 64; i++) {
		if (pthread_create(&w->th[i], NULL, work_thread, w))
			break;
		w->nth++;
	}
	if (inline_too || w->nth == 0)
		work_thread(w);
}

int val_work_join(struct val_work *w)
{
	if (!w->started)
		return 0;
	for (uint32_t i = 0; i < w->nth; i++)
		pthread_join(w->th[i], NULL);
	w->nth = 0;
	w->started = false;
	pthread_mutex_destroy(&w->mu);
	return atomic_load(&w->rc);
}

static int load_one(void *ctx, uint32_t b)
{
	struct val_loader *l = ctx;
	struct val_slot *s = l->filling;
	const struct nn_val_plan *p = l->plan;
	size_t idx = p->order[(size_t)s->index * p->batch + b];
	return nn_val_load_image(l->sp->images[idx].path, l->imgsz, s->h, s->w,
				 s->input + (size_t)b * 3 * s->h * s->w, &s->geom[b]);
}

static int fill_slot(struct val_loader *l, struct val_slot *s, uint32_t index)
{
	const struct nn_val_plan *p = l->plan;
	uint32_t B = p->batch;
	size_t first = (size_t)index * B;
	s->index = index;
	s->nb = (uint32_t)(p->n - first < B ? p->n - first : B);
	s->h = p->shape_h[index];
	s->w = p->shape_w[index];
	size_t plane = (size_t)3 * s->h * s->w, need = plane * B;
	if (need > s->cap) {
		free(s->input);
		if (!(s->input = malloc(need))) {
			s->cap = 0;
			LOGE("val: out of memory for a %ux3x%ux%u batch", B, s->h, s->w);
			return -ENOMEM;
		}
		s->cap = need;
	}
	struct val_work w = {.item = load_one, .ctx = l, .count = s->nb};
	uint32_t extra = l->workers > 1 ? l->workers - 1 : 0;
	l->filling = s;
	val_work_start(&w, extra < s->nb ? extra : s->nb - 1, true);
	int rc = val_work_join(&w);
	s->ms_load = w.ms;
	for (uint32_t b = s->nb; b < B; b++)
		memcpy(s->input + b * plane, s->input + (size_t)(s->nb - 1) * plane, plane);
	return rc;
}

static void *loader_main(void *arg)
{
	struct val_loader *l = arg;
	for (uint32_t b = 0; b < l->plan->nbatches; b++) {
		struct val_slot *s = &l->slots[b % 2];
		pthread_mutex_lock(&l->mu);
		while (s->full && !l->stop)
			pthread_cond_wait(&l->cv, &l->mu);
		bool stop = l->stop;
		pthread_mutex_unlock(&l->mu);
		if (stop)
			break;
		int rc = fill_slot(l, s, b);
		pthread_mutex_lock(&l->mu);
		s->rc = rc;
		s->full = true;
		pthread_cond_broadcast(&l->cv);
		pthread_mutex_unlock(&l->mu);
		if (rc)
			break;
	}
	return NULL;
}

int val_loader_create(const struct nn_dataset_split *sp, const struct nn_val_plan *plan,
		      uint32_t imgsz, uint32_t workers, struct val_loader **out)
{
	struct val_loader *l = calloc(1, sizeof(*l));
	*out = NULL;
	if (!l || !(l->slots[0].geom = calloc(plan->batch, sizeof(struct nn_val_geom))) ||
	    !(l->slots[1].geom = calloc(plan->batch, sizeof(struct nn_val_geom)))) {
		LOGE("val: out of memory for the loader");
		if (l)
			free(l->slots[0].geom);
		free(l);
		return -ENOMEM;
	}
	l->sp = sp;
	l->plan = plan;
	l->imgsz = imgsz;
	l->workers = workers;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	if (workers > 0) {
		if (pthread_create(&l->thread, NULL, loader_main, l))
			LOGW("val: cannot start the loader thread; loading on the main thread");
		else
			l->threaded = true;
	}
	*out = l;
	return 0;
}

int val_loader_get(struct val_loader *l, uint32_t b, struct val_slot **out, double *wait_ms)
{
	struct val_slot *s = &l->slots[b % 2];
	double t0 = app_now_ms();
	if (!l->threaded) {
		s->rc = fill_slot(l, s, b);
		s->full = true;
	} else {
		pthread_mutex_lock(&l->mu);
		while (!s->full)
			pthread_cond_wait(&l->cv, &l->mu);
		pthread_mutex_unlock(&l->mu);
	}
	*wait_ms += app_now_ms() - t0;
	*out = s;
	return s->rc;
}

void val_loader_release(struct val_loader *l, struct val_slot *s)
{
	pthread_mutex_lock(&l->mu);
	s->full = false;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

void val_loader_destroy(struct val_loader **lp)
{
	struct val_loader *l = lp ? *lp : NULL;
	if (!l)
		return;
	if (l->threaded) {
		pthread_mutex_lock(&l->mu);
		l->stop = true;
		pthread_cond_broadcast(&l->cv);
		pthread_mutex_unlock(&l->mu);
		pthread_join(l->thread, NULL);
	}
	for (int i = 0; i < 2; i++) {
		free(l->slots[i].input);
		free(l->slots[i].geom);
	}
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
	*lp = NULL;
}
