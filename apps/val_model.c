// `vkyolo val --model`: batches from the validation dataloader (nn/valdata.h) run through a GPU
// runner per batch shape, official NMS (conf 0.001, IoU 0.7, multi-label, max_det 300), boxes and
// labels back to original pixels, official metrics. Images are loaded by a background thread
// (--workers threads per batch) into one of two batch slots while the GPU runs the other.
#include "val_model.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "checkpoint.h"
#include "dataset.h"
#include "detect_out.h"
#include "log.h"
#include "metrics.h"
#include "model.h"
#include "nms.h"
#include "runner.h"
#include "safetensors.h"
#include "valdata.h"

#define RUNNER_CACHE 3 // shapes come in runs (images are sorted by ratio); 3 absorbs alternation

struct slot {
	uint8_t *input; // [batch, 3, h, w]
	size_t cap;
	struct nn_val_geom *geom; // [batch]
	uint32_t index, nb, h, w; // batch index, real images, shape
	double ms_load;		  // summed per-image load time
	int rc;
	bool full;
};

struct loader {
	const struct val_model_opts *o;
	const struct nn_dataset_split *sp;
	const struct nn_val_plan *plan;
	struct slot slots[2];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop, threaded;
	pthread_t thread;
};

// Images of one batch loaded by several threads: each takes the next index.
struct fill_job {
	struct loader *l;
	struct slot *s;
	atomic_uint next;
	atomic_int rc;
	double ms; // summed load time, added under mu
	pthread_mutex_t mu;
};

static void *fill_worker(void *arg)
{
	struct fill_job *j = arg;
	const struct nn_val_plan *p = j->l->plan;
	struct slot *s = j->s;
	size_t plane = (size_t)3 * s->h * s->w;
	for (uint32_t b; (b = atomic_fetch_add(&j->next, 1)) < s->nb && !atomic_load(&j->rc);) {
		size_t idx = p->order[(size_t)s->index * p->batch + b];
		double t0 = app_now_ms();
		int rc = nn_val_load_image(j->l->sp->images[idx].path, j->l->o->imgsz, s->h, s->w,
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

static int fill_slot(struct loader *l, struct slot *s, uint32_t index)
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
	uint32_t extra = l->o->workers > 1 ? l->o->workers - 1 : 0;
	if (extra > s->nb)
		extra = s->nb;
	pthread_t th[64];
	uint32_t started = 0;
	for (; started < extra && started < 64; started++)
		if (pthread_create(&th[started], NULL, fill_worker, &j))
			break; // fewer helpers is fine
	fill_worker(&j);
	for (uint32_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&j.mu);
	s->ms_load = j.ms;
	// A short last batch repeats its last image so the runner's batch size stays fixed.
	for (uint32_t b = s->nb; b < B; b++)
		memcpy(s->input + b * plane, s->input + (size_t)(s->nb - 1) * plane, plane);
	return atomic_load(&j.rc);
}

static void *loader_main(void *arg)
{
	struct loader *l = arg;
	for (uint32_t b = 0; b < l->plan->nbatches; b++) {
		struct slot *s = &l->slots[b % 2];
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

// The batch b, loaded; *wait_ms gets the time spent waiting for it.
static int loader_get(struct loader *l, uint32_t b, struct slot **out, double *wait_ms)
{
	struct slot *s = &l->slots[b % 2];
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

static void loader_release(struct loader *l, struct slot *s)
{
	pthread_mutex_lock(&l->mu);
	s->full = false;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

static void loader_finish(struct loader *l)
{
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
}

struct val_ctx {
	const struct val_model_opts *o;
	struct gpu_instance *inst;
	struct gpu_device *dev;
	struct nn_checkpoint *ck;
	struct nn_model *model;
	struct nn_runner *runners[RUNNER_CACHE];
	uint32_t runner_h[RUNNER_CACHE], runner_w[RUNNER_CACHE], runner_next;
	struct nn_metrics *metrics;
	struct nn_coco_json *json;
	float *pred;
	size_t pred_cap;
	struct nn_gt *gt;
	size_t gt_cap;
};

static int get_runner(struct val_ctx *c, uint32_t h, uint32_t w, struct val_model_stats *st,
		      struct nn_runner **out)
{
	for (int i = 0; i < RUNNER_CACHE; i++)
		if (c->runners[i] && c->runner_h[i] == h && c->runner_w[i] == w) {
			*out = c->runners[i];
			return 0;
		}
	uint32_t k = c->runner_next++ % RUNNER_CACHE;
	nn_runner_destroy(&c->runners[k]);
	c->runner_h[k] = h;
	c->runner_w[k] = w;
	st->shapes_created++;
	LOGD("val: runner for %ux3x%ux%u", c->o->batch, h, w);
	struct nn_runner_params rp = {.n = c->o->batch, .h = h, .w = w};
	int rc = nn_runner_create(c->dev, c->model, &rp, &c->runners[k]);
	*out = c->runners[k];
	return rc;
}

static int dump_batch(const char *dir, uint32_t b, const struct slot *s, uint32_t n, uint32_t rows,
		      uint32_t anchors, const float *pred)
{
	struct nn_tensor_map *map = NULL;
	char path[4096];
	int64_t in_shape[4] = {n, 3, s->h, s->w}, out_shape[3] = {n, rows, anchors};
	snprintf(path, sizeof(path), "%s/batch_%u.safetensors", dir, b);
	int rc = nn_tensor_map_create(&map);
	if (!rc)
		rc = nn_tensor_map_add(map, "input_u8", NN_DTYPE_U8, 4, in_shape, s->input);
	if (!rc)
		rc = nn_tensor_map_add(map, "output", NN_DTYPE_F32, 3, out_shape, pred);
	if (!rc)
		rc = nn_safetensors_write(path, map);
	nn_tensor_map_destroy(&map);
	return rc;
}

// NMS, scaling, metrics and JSON for image b of a finished batch.
static int finish_image(struct val_ctx *c, const struct nn_dataset_image *im,
			const struct nn_val_geom *g, const float *pred, uint32_t anchors,
			struct val_model_stats *st)
{
	const struct val_model_opts *o = c->o;
	struct nn_nms_params np = {.conf_thres = o->conf, .iou_thres = o->iou, .multi_label = true,
				   .max_det = o->max_det};
	struct nn_det *d = NULL;
	uint32_t n = 0;
	double t0 = app_now_ms();
	int rc = nn_nms(pred, c->model->nc, anchors, &np, &d, &n);
	if (rc)
		return rc;
	nn_val_scale_dets(g, d, n);
	st->ms_nms += app_now_ms() - t0;
	st->predictions += n;
	if (im->count > c->gt_cap) {
		free(c->gt);
		c->gt_cap = 0;
		if (!(c->gt = malloc(im->count * sizeof(*c->gt)))) {
			rc = -ENOMEM;
			goto done;
		}
		c->gt_cap = im->count;
	}
	nn_val_labels_to_gt(im->labels, im->count, g, c->gt);
	if ((rc = nn_metrics_add_image(c->metrics, d, n, c->gt, im->count)))
		goto done;
	if (c->json)
		rc = nn_coco_json_add(c->json, im->path, d, n);
done:
	free(d);
	return rc;
}

static int run_batches(struct val_ctx *c, const struct nn_dataset_split *sp,
		       const struct nn_val_plan *plan, struct val_model_stats *st)
{
	const struct val_model_opts *o = c->o;
	struct loader l = {.o = o, .sp = sp, .plan = plan, .threaded = o->workers > 0};
	pthread_mutex_init(&l.mu, NULL);
	pthread_cond_init(&l.cv, NULL);
	int rc = 0;
	for (int i = 0; i < 2 && !rc; i++)
		if (!(l.slots[i].geom = calloc(o->batch, sizeof(struct nn_val_geom))))
			rc = -ENOMEM;
	if (!rc && l.threaded && pthread_create(&l.thread, NULL, loader_main, &l)) {
		LOGW("val: cannot start the loader thread; loading on the main thread");
		l.threaded = false;
	}
	uint32_t rows = 4 + c->model->nc;
	for (uint32_t b = 0; b < plan->nbatches && !rc; b++) {
		struct slot *s = NULL;
		struct nn_runner *r = NULL;
		if ((rc = loader_get(&l, b, &s, &st->ms_wait)))
			break;
		st->ms_pre += s->ms_load;
		if ((rc = get_runner(c, s->h, s->w, st, &r)))
			break;
		double t0 = app_now_ms();
		uint32_t anchors = nn_runner_anchors(r);
		size_t need = (size_t)o->batch * rows * anchors;
		if (need > c->pred_cap) {
			free(c->pred);
			c->pred_cap = 0;
			if (!(c->pred = malloc(need * sizeof(float)))) {
				rc = -ENOMEM;
				break;
			}
			c->pred_cap = need;
		}
		if ((rc = nn_runner_run(r, s->input)) || (rc = nn_runner_read_output(r, false, c->pred)))
			break;
		double ms = app_now_ms() - t0;
		st->ms_inf += ms;
		if (o->dump_dir &&
		    (rc = dump_batch(o->dump_dir, b, s, o->batch, rows, anchors, c->pred)))
			break;
		for (uint32_t i = 0; i < s->nb && !rc; i++) {
			size_t idx = plan->order[(size_t)b * plan->batch + i];
			rc = finish_image(c, &sp->images[idx], &s->geom[i],
					  c->pred + (size_t)i * rows * anchors, anchors, st);
		}
		st->last_n = o->batch, st->last_h = s->h, st->last_w = s->w;
		LOGD("val: batch %u/%u %ux%u: forward %.1f ms, load %.1f ms (CPU, summed)", b + 1,
		     plan->nbatches, s->h, s->w, ms, s->ms_load);
		loader_release(&l, s); // the loader may refill s from here on
	}
	if (rc == -ENOMEM)
		LOGE("val: out of memory");
	loader_finish(&l);
	return rc;
}

int val_model_run(const struct val_model_opts *o, const struct nn_dataset *ds,
		  const struct nn_dataset_split *sp, struct nn_metrics_result *res,
		  struct val_model_stats *st)
{
	struct val_ctx c = {.o = o};
	struct nn_val_plan *plan = NULL;
	memset(st, 0, sizeof(*st));
	double t0 = app_now_ms();
	int rc = app_model_load(o->model, true, &c.ck, &c.model);
	if (!rc && c.model->nc != (uint32_t)ds->nc)
		LOGW("val: the model has %u classes, %s has %d", c.model->nc, ds->yaml_path, ds->nc);
	if (!rc)
		rc = nn_val_plan_create(sp, o->imgsz, o->batch, 32, 0.5, &plan);
	if (!rc)
		rc = nn_metrics_create(&c.metrics);
	if (!rc && o->save_json)
		rc = nn_coco_json_create(o->coco91, &c.json);
	if (!rc && o->dump_dir)
		rc = nn_mkdir_p(o->dump_dir);
	if (!rc)
		rc = app_open_device(o->device, &c.inst, &c.dev);
	if (!rc)
		rc = run_batches(&c, sp, plan, st);
	if (!rc)
		rc = nn_metrics_compute(c.metrics, res);
	if (!rc && c.json)
		rc = nn_coco_json_write(c.json, o->save_json);
	if (rc && c.dev && gpu_device_status(c.dev))
		LOGE("val: the GPU device was lost");
	st->ms_wall = app_now_ms() - t0;
	if (sp->count) {
		st->ms_pre /= (double)sp->count;
		st->ms_inf /= (double)sp->count;
		st->ms_nms /= (double)sp->count;
	}
	for (int i = 0; i < RUNNER_CACHE; i++)
		nn_runner_destroy(&c.runners[i]);
	free(c.pred);
	free(c.gt);
	nn_coco_json_destroy(&c.json);
	nn_metrics_destroy(&c.metrics);
	nn_val_plan_destroy(&plan);
	nn_model_destroy(&c.model);
	nn_checkpoint_destroy(&c.ck);
	app_close_device(&c.inst, &c.dev);
	return rc;
}
