// The viewer's threads: capture -> [slot] -> inference -> [slot] -> display (main thread).
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <SDL2/SDL.h>

#include "detect_out.h"
#include "log.h"
#include "pipe.h"

static void slot_init(struct view_slot *s, void (*free_item)(void *))
{
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->item = NULL, s->closed = false, s->dropped = 0, s->free_item = free_item;
}

static void slot_finish(struct view_slot *s)
{
	if (s->item)
		s->free_item(s->item);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
}

static void slot_put(struct view_slot *s, void *item, bool wait)
{
	pthread_mutex_lock(&s->mu);
	while (wait && s->item && !s->closed)
		pthread_cond_wait(&s->cv, &s->mu);
	if (s->closed) {
		s->free_item(item);
	} else {
		if (s->item) {
			s->free_item(s->item);
			s->dropped++;
		}
		s->item = item;
	}
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void slot_close(struct view_slot *s)
{
	pthread_mutex_lock(&s->mu);
	s->closed = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

// timeout_ms < 0 waits forever. *done: closed and empty.
static void *slot_take(struct view_slot *s, int timeout_ms, bool *done)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	if (timeout_ms > 0) {
		until.tv_sec += timeout_ms / 1000;
		until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L)
			until.tv_sec++, until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->mu);
	while (!s->item && !s->closed && timeout_ms != 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&s->cv, &s->mu);
		else if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
			break;
	}
	void *item = s->item;
	s->item = NULL;
	*done = !item && s->closed;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return item;
}

void view_result_free(void *p)
{
	struct view_result *r = p;
	if (!r)
		return;
	nn_image_destroy(&r->img);
	free(r->d);
	free(r);
}

static void frame_free(void *p)
{
	view_result_free(p);
}

static void *capture_main(void *arg)
{
	struct view_pipe *pp = arg;
	struct view_source *src = pp->p->src;
	while (!atomic_load(&pp->stop)) {
		if (atomic_load(&pp->paused) && !src->live) {
			struct timespec ts = { 0, 10000000L };
			nanosleep(&ts, NULL);
			continue;
		}
		struct view_result *f = calloc(1, sizeof(*f));
		if (!f) {
			pp->cap_err = -ENOMEM;
			break;
		}
		int r = view_source_read(src, &f->img, &f->info);
		if (r) {
			free(f);
			if (r < 0)
				pp->cap_err = r;
			break;
		}
		atomic_fetch_add(&pp->captured, 1);
		slot_put(&pp->cap, f, pp->lossless);
	}
	slot_close(&pp->cap);
	return NULL;
}

static void set_ready(struct view_pipe *pp, int v)
{
	pthread_mutex_lock(&pp->mu);
	pp->ready = v;
	pthread_cond_broadcast(&pp->cv);
	pthread_mutex_unlock(&pp->mu);
}

static void *infer_main(void *arg)
{
	struct view_pipe *pp = arg;
	struct view_detector *det = NULL;
	int ret = pp->p->make_detector(pp->p->detector_arg, &det);
	if (ret) {
		pp->inf_err = ret;
		set_ready(pp, -1);
		slot_close(&pp->res);
		return NULL;
	}
	// The window may outlive the detector (it keeps the last frame after the stream ends): copy
	// the class names.
	if (det->nc && (pp->names = calloc(det->nc, sizeof(char *))))
		for (uint32_t i = 0; i < det->nc; i++)
			pp->names[i] = strdup(det->names && det->names[i] ? det->names[i] : "object");
	pp->nc = pp->names ? det->nc : 0;
	snprintf(pp->device, sizeof(pp->device), "%s", det->device);
	set_ready(pp, 1);
	for (;;) {
		bool done;
		struct view_result *f = slot_take(&pp->cap, -1, &done);
		if (!f || atomic_load(&pp->stop)) {
			view_result_free(f);
			break;
		}
		f->conf = atomic_load(&pp->conf);
		if ((ret = det->detect(det, f->img, f->conf, &f->d, &f->n, &f->infer_ms))) {
			pp->inf_err = ret;
			view_result_free(f);
			break;
		}
		atomic_fetch_add(&pp->inferred, 1);
		slot_put(&pp->res, f, pp->lossless);
	}
	// Unblock a capture thread waiting to hand over a frame, then release the GPU in this thread.
	slot_close(&pp->cap);
	slot_close(&pp->res);
	view_detector_destroy(&det);
	return NULL;
}

struct view_result *view_pipe_take(struct view_pipe *pp, int timeout_ms, bool *done)
{
	return slot_take(&pp->res, timeout_ms, done);
}

int view_pipe_render(struct view_pipe *pp, const struct view_result *r, struct nn_image **out)
{
	int ret = nn_image_create(r->img->w, r->img->h, 3, out);
	if (ret)
		return ret;
	memcpy((*out)->data, r->img->data, (size_t)r->img->w * r->img->h * 3);
	nn_draw_detections(*out, r->d, r->n, &(struct nn_draw_params){ .line_width = pp->p->line_width,
	                   .names = (const char *const *)pp->names, .n_names = pp->nc, .font = pp->font });
	return 0;
}

int view_pipe_save(struct view_pipe *pp, const struct view_result *r, const struct nn_image *rendered)
{
	int ret = 0;
	if (pp->p->save_frames) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/frame_%06lld.png", pp->p->save_frames, (long long)r->info.index);
		if ((ret = nn_image_save(path, rendered, 95)))
			return ret;
	}
	if (pp->p->save_video) {
		if (!pp->enc && (ret = view_encoder_create(pp->p->save_video, rendered->w, rendered->h,
		                                           pp->p->src->fps, &pp->enc)))
			return ret;
		ret = view_encoder_write(pp->enc, rendered, r->info.pts_ms);
	}
	return ret;
}

void view_pipe_count(struct view_pipe *pp, const struct view_result *r)
{
	double now = view_now_ms(), lat = now - r->info.t_capture_ms;
	if (pp->n_lat == pp->lat_cap) {
		size_t nc = pp->lat_cap ? pp->lat_cap * 2 : 256;
		double *p = realloc(pp->lat, nc * sizeof(double));
		if (p)
			pp->lat = p, pp->lat_cap = nc;
	}
	if (pp->n_lat < pp->lat_cap)
		pp->lat[pp->n_lat++] = lat;
	pp->infer_sum += r->infer_ms;
	if (!pp->displayed)
		pp->t_first = now, pp->fps_ema = 0, pp->infer_ema = r->infer_ms, pp->lat_ema = lat;
	else {
		double dt = now - pp->t_prev;
		if (dt > 0)
			pp->fps_ema = pp->fps_ema ? 0.9 * pp->fps_ema + 0.1 * (1e3 / dt) : 1e3 / dt;
		pp->infer_ema = 0.9 * pp->infer_ema + 0.1 * r->infer_ms;
		pp->lat_ema = 0.9 * pp->lat_ema + 0.1 * lat;
	}
	pp->t_prev = pp->t_last = now;
	pp->displayed++;
}

static int headless_run(struct view_pipe *pp)
{
	int ret = 0;
	while (!ret && (!pp->p->max_frames || pp->displayed < pp->p->max_frames)) {
		bool done;
		struct view_result *r = view_pipe_take(pp, -1, &done);
		if (!r)
			break;
		struct nn_image *img = NULL;
		if (!(ret = view_pipe_render(pp, r, &img)) && !(ret = view_pipe_save(pp, r, img)))
			view_pipe_count(pp, r);
		nn_image_destroy(&img);
		view_result_free(r);
	}
	return ret;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void fill_stats(struct view_pipe *pp, struct view_stats *st)
{
	*st = (struct view_stats){ .captured = atomic_load(&pp->captured), .inferred = atomic_load(&pp->inferred),
	                           .displayed = pp->displayed, .dropped = pp->cap.dropped + pp->res.dropped };
	snprintf(st->device, sizeof(st->device), "%s", pp->device);
	st->ui_gap_max_ms = pp->ui_gap_max;
	if (pp->displayed > 1 && pp->t_last > pp->t_first)
		st->fps = (pp->displayed - 1) * 1e3 / (pp->t_last - pp->t_first);
	if (pp->displayed)
		st->infer_ms = pp->infer_sum / pp->displayed;
	if (pp->n_lat) {
		double sum = 0;
		for (size_t i = 0; i < pp->n_lat; i++)
			sum += pp->lat[i];
		st->latency_ms = sum / pp->n_lat;
		qsort(pp->lat, pp->n_lat, sizeof(double), cmp_double);
		st->latency_p50_ms = pp->lat[pp->n_lat / 2];
		st->latency_max_ms = pp->lat[pp->n_lat - 1];
	}
}

int view_run(const struct view_params *p, struct view_stats *stats)
{
	struct view_pipe *pp = calloc(1, sizeof(*pp));
	pthread_t cap_t, inf_t;
	bool cap_started = false, inf_started = false, window_open = false;
	int ret;
	if (!pp)
		return -ENOMEM;
	pp->p = p;
	pp->lossless = p->headless && !p->src->live;
	atomic_init(&pp->stop, false);
	atomic_init(&pp->paused, false);
	atomic_init(&pp->conf, p->conf);
	atomic_init(&pp->captured, 0);
	atomic_init(&pp->inferred, 0);
	slot_init(&pp->cap, frame_free);
	slot_init(&pp->res, view_result_free);
	pthread_mutex_init(&pp->mu, NULL);
	pthread_cond_init(&pp->cv, NULL);
	if (p->save_frames && (ret = nn_mkdir_p(p->save_frames)))
		goto done;
	if ((ret = nn_font_load_default(&pp->font)))
		goto done;
	if (!p->headless && (ret = view_window_open()))
		goto done;
	window_open = !p->headless;
	ret = -EAGAIN;
	if (pthread_create(&inf_t, NULL, infer_main, pp)) {
		LOGE("viewer: cannot start the inference thread");
		goto done;
	}
	inf_started = true;
	// Wait for the detector (model, device) before capturing, so a failure leaves no window behind.
	pthread_mutex_lock(&pp->mu);
	while (!pp->ready)
		pthread_cond_wait(&pp->cv, &pp->mu);
	pthread_mutex_unlock(&pp->mu);
	if (pp->ready < 0) {
		ret = pp->inf_err;
		goto done;
	}
	if (pthread_create(&cap_t, NULL, capture_main, pp)) {
		LOGE("viewer: cannot start the capture thread");
		goto done;
	}
	cap_started = true;
	window_open = false; // view_window_run shuts SDL down
	ret = p->headless ? headless_run(pp) : view_window_run(pp);
done:
	if (window_open)
		SDL_Quit();
	atomic_store(&pp->stop, true);
	slot_close(&pp->cap);
	slot_close(&pp->res);
	if (cap_started)
		pthread_join(cap_t, NULL);
	if (inf_started)
		pthread_join(inf_t, NULL);
	if (!ret)
		ret = pp->cap_err ? pp->cap_err : pp->inf_err;
	int enc_ret = view_encoder_finish(&pp->enc);
	if (!ret)
		ret = enc_ret;
	if (stats)
		fill_stats(pp, stats);
	for (uint32_t i = 0; pp->names && i < pp->nc; i++)
		free(pp->names[i]);
	free(pp->names);
	nn_font_destroy(&pp->font);
	slot_finish(&pp->cap);
	slot_finish(&pp->res);
	pthread_mutex_destroy(&pp->mu);
	pthread_cond_destroy(&pp->cv);
	free(pp->lat);
	free(pp);
	return ret;
}
