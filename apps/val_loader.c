// Background batch loading for `vkyolo val --model` (see val_loader.h).
#include "val_loader.h"

#include <errno.h>
#include <stdatomic.h>
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
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop, threaded;
	pthread_t thread;
};

void val_group_start(struct val_group *g, uint32_t n, void *(*fn)(void *), void *arg)
{
	g->n = 0;
	for (uint32_t i = 0; i < n && i < 64; i++) {
		if (pthread_create(&g->th[i], NULL, fn, arg))
			break;
		g->n++;
	}
}

void val_group_join(struct val_group *g)
{
	for (uint32_t i = 0; i < g->n; i++)
		pthread_join(g->th[i], NULL);
	g->n = 0;
}

// The images of one batch, shared by the threads filling it: each takes the next index.
struct fill_job {
	struct val_loader *l;
	struct val_slot *s;
	atomic_uint next;
	atomic_int rc;
	double ms; // summed load time, added under mu
	pthread_mutex_t mu;
};

static void *fill_worker(void *arg)
{
	struct fill_job *j = arg;
	const struct nn_val_plan *p = j->l->plan;
	struct val_slot *s = j->s;
	size_t plane = (size_t)3 * s->h * s->w;
	for (uint32_t b; (b = atomic_fetch_add(&j->next, 1)) < s->nb && !atomic_load(&j->rc);) {
		size_t idx = p->order[(size_t)s->index * p->batch + b];
		double t0 = app_now_ms();
		int rc = nn_val_load_image(j->l->sp->images[idx].path, j->l->imgsz, s->h, s->w,
					   s->input + b * plane, &s->geom[b]);
		double dt = app_now_ms() - t0;
		pthread_mutex_lock(&j->mu);
		j->ms += dt;
		pthread_mutex_unlock(&j->mu);
		if (rc)
			atomic_store(&j->rc, rc);
	}
	return NULL;
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
	struct fill_job j = {.l = l, .s = s};
	atomic_init(&j.next, 0);
	atomic_init(&j.rc, 0);
	pthread_mutex_init(&j.mu, NULL);
	struct val_group g;
	uint32_t extra = l->workers > 1 ? l->workers - 1 : 0;
	val_group_start(&g, extra < s->nb ? extra : s->nb - 1, fill_worker, &j);
	fill_worker(&j);
	val_group_join(&g);
	pthread_mutex_destroy(&j.mu);
	s->ms_load = j.ms;
	for (uint32_t b = s->nb; b < B; b++)
		memcpy(s->input + b * plane, s->input + (size_t)(s->nb - 1) * plane, plane);
	return atomic_load(&j.rc);
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
