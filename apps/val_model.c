// `vkyolo val --model`: batches from the validation dataloader (nn/valdata.h) run through a GPU
// runner per batch shape, official NMS (conf 0.001, IoU 0.7, multi-label, max_det 300), boxes and
// labels back to original pixels, official metrics. Three stages overlap: a background thread
// loads batch b + 1 (val_loader.c), the GPU runs batch b, and --workers threads run the NMS of
// batch b - 1; scoring then takes the images in plan order, as val.py.
#include "val_model.h"

#include <errno.h>
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
#include "val_loader.h"
#include "confusion.h"
#include "val_loss.h"
#include "valdata.h"

#define RUNNER_CACHE 3 // shapes come in runs (images are sorted by ratio); 3 absorbs alternation

// The NMS of one finished batch, run by worker threads while the GPU runs the next one.
struct nms_job {
	float *pred; // [batch, 4 + nc, anchors], the network output of this batch
	size_t pred_cap;
	struct nn_val_geom *geom; // [batch] copies: the loader refills the slot meanwhile
	struct nn_det **d;	  // [batch] NMS output per image, scaled to original pixels
	uint32_t *n;
	uint32_t index, nb, anchors, nc;
	struct nn_nms_params np;
	struct val_work w;
};

struct val_ctx {
	const struct val_model_opts *o;
	struct gpu_instance *inst;
	struct gpu_device *dev;
	struct nn_checkpoint *ck;
	struct nn_model *model;	 // loaded from o->model (NULL with o->net)
	const struct nn_model *net; // what runs: model or o->net
	struct nn_runner *runners[RUNNER_CACHE];
	uint32_t runner_h[RUNNER_CACHE], runner_w[RUNNER_CACHE], runner_next;
	struct nn_metrics *metrics;
	struct nn_coco_json *json;
	struct nms_job jobs[2];
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
	struct nn_runner_params rp = {.n = c->o->batch, .h = h, .w = w, .keep_heads = c->o->loss};
	int rc = nn_runner_create(c->dev, c->net, &rp, &c->runners[k]);
	*out = c->runners[k];
	return rc;
}

static int dump_batch(const char *dir, uint32_t b, const struct val_slot *s, uint32_t n, uint32_t rows,
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

static int nms_one(void *ctx, uint32_t i)
{
	struct nms_job *j = ctx;
	size_t per = (size_t)(4 + j->nc) * j->anchors;
	int rc = nn_nms(j->pred + i * per, j->nc, j->anchors, &j->np, &j->d[i], &j->n[i]);
	if (!rc)
		nn_val_scale_dets(&j->geom[i], j->d[i], j->n[i]);
	return rc;
}

static void job_start(struct val_ctx *c, struct nms_job *j)
{
	j->w = (struct val_work){.item = nms_one, .ctx = j, .count = j->nb};
	// --workers 0: everything on the main thread, here.
	val_work_start(&j->w, c->o->workers < j->nb ? c->o->workers : j->nb, false);
}

// Waits for the job, then scores its images in plan order (metrics and JSON are sequential).
static int job_finish(struct val_ctx *c, struct nms_job *j, const struct nn_dataset_split *sp,
		      const struct nn_val_plan *plan, struct val_model_stats *st, int rc)
{
	if (!j->w.started)
		return rc;
	int nms_rc = val_work_join(&j->w);
	rc = rc ? rc : nms_rc;
	st->ms_nms += j->w.ms;
	for (uint32_t i = 0; i < j->nb; i++) {
		const struct nn_dataset_image *im = &sp->images[plan->order[(size_t)j->index * plan->batch + i]];
		if (!rc && im->count > c->gt_cap) {
			free(c->gt);
			c->gt_cap = 0;
			if ((c->gt = malloc(im->count * sizeof(*c->gt))))
				c->gt_cap = im->count;
			else
				rc = -ENOMEM;
		}
		if (!rc) {
			st->predictions += j->n[i];
			nn_val_labels_to_gt(im->labels, im->count, &j->geom[i], c->gt);
			rc = nn_metrics_add_image(c->metrics, j->d[i], j->n[i], c->gt, im->count);
		}
		if (!rc && c->o->confusion)
			rc = nn_confusion_add_image(c->o->confusion, j->d[i], j->n[i], c->gt, im->count);
		if (!rc && c->json)
			rc = nn_coco_json_add(c->json, im->path, j->d[i], j->n[i]);
		free(j->d[i]);
		j->d[i] = NULL;
		j->n[i] = 0;
	}
	return rc;
}

static int jobs_init(struct val_ctx *c)
{
	const struct val_model_opts *o = c->o;
	for (int k = 0; k < 2; k++) {
		struct nms_job *j = &c->jobs[k];
		j->nc = c->net->nc;
		j->np = (struct nn_nms_params){.conf_thres = o->conf, .iou_thres = o->iou,
					       .multi_label = true, .max_det = o->max_det};
		if (!(j->geom = calloc(o->batch, sizeof(*j->geom))) ||
		    !(j->d = calloc(o->batch, sizeof(*j->d))) || !(j->n = calloc(o->batch, sizeof(*j->n))))
			return -ENOMEM;
	}
	return 0;
}

static void jobs_free(struct val_ctx *c)
{
	for (int k = 0; k < 2; k++) {
		struct nms_job *j = &c->jobs[k];
		val_work_join(&j->w);
		for (uint32_t i = 0; j->d && i < c->o->batch; i++)
			free(j->d[i]);
		free(j->d);
		free(j->n);
		free(j->geom);
		free(j->pred);
	}
}

static int pred_reserve(struct nms_job *j, size_t need)
{
	if (need > j->pred_cap) {
		free(j->pred);
		j->pred_cap = 0;
		if (!(j->pred = malloc(need * sizeof(float))))
			return -ENOMEM;
		j->pred_cap = need;
	}
	return 0;
}

// The CPU reference forward of a batch (cpu_reference): pixel / 255, output copied to j->pred.
static int forward_ref(struct val_ctx *c, const struct nn_dataset_split *sp, const struct nn_val_plan *plan,
                       const struct val_slot *s, struct nms_job *j, uint32_t *anchors, struct val_model_stats *st)
{
	size_t cnt = (size_t)c->o->batch * 3 * s->h * s->w;
	float *x = malloc(cnt * sizeof(float));
	struct nn_ref_outputs out = {.keep_heads = c->o->loss};
	if (!x)
		return -ENOMEM;
	for (size_t k = 0; k < cnt; k++)
		x[k] = s->input[k] / 255.0f;
	int rc = nn_model_forward_ref(c->net, c->o->batch, s->h, s->w, x, &out);
	if (!rc && !(rc = pred_reserve(j, (size_t)c->o->batch * out.rows * out.a))) {
		memcpy(j->pred, out.output, (size_t)c->o->batch * out.rows * out.a * sizeof(float));
		*anchors = out.a;
		if (c->o->loss)
			rc = val_batch_loss_ref(&out, sp, plan, s, c->net->nc, st->loss);
	}
	nn_ref_outputs_finish(&out);
	free(x);
	return rc;
}

// Forward of one loaded batch into job j's buffer (and its loss into st->loss with o->loss).
static int forward(struct val_ctx *c, const struct nn_dataset_split *sp, const struct nn_val_plan *plan,
		   const struct val_slot *s, struct nms_job *j, struct val_model_stats *st)
{
	struct nn_runner *r = NULL;
	int rc = 0;
	uint32_t rows = 4 + c->net->nc, anchors = 0;
	double t0 = app_now_ms();
	if (c->o->cpu_reference) {
		if ((rc = forward_ref(c, sp, plan, s, j, &anchors, st)))
			return rc;
	} else {
		if ((rc = get_runner(c, s->h, s->w, st, &r)))
			return rc;
		t0 = app_now_ms();
		anchors = nn_runner_anchors(r);
		if ((rc = pred_reserve(j, (size_t)c->o->batch * rows * anchors)))
			return rc;
		if ((rc = nn_runner_run(r, s->input)) || (rc = nn_runner_read_output(r, false, j->pred)))
			return rc;
		if (c->o->loss && (rc = val_batch_loss(r, sp, plan, s, c->net->nc, st->loss)))
			return rc;
	}
	double ms = app_now_ms() - t0;
	st->ms_inf += ms;
	st->last_n = c->o->batch, st->last_h = s->h, st->last_w = s->w;
	LOGD("val: batch %u %ux%u: forward %.1f ms, load %.1f ms (CPU, summed)", s->index + 1, s->h,
	     s->w, ms, s->ms_load);
	j->anchors = anchors;
	j->index = s->index;
	j->nb = s->nb;
	memcpy(j->geom, s->geom, s->nb * sizeof(*j->geom));
	if (c->o->dump_dir)
		rc = dump_batch(c->o->dump_dir, s->index, s, c->o->batch, rows, anchors, j->pred);
	return rc;
}

static int run_batches(struct val_ctx *c, const struct nn_dataset_split *sp,
		       const struct nn_val_plan *plan, struct val_model_stats *st)
{
	struct val_loader *l = NULL;
	int rc = jobs_init(c);
	if (!rc)
		rc = val_loader_create(sp, plan, c->o->imgsz, c->o->workers, &l);
	for (uint32_t b = 0; b < plan->nbatches && !rc; b++) {
		struct val_slot *s = NULL;
		struct nms_job *j = &c->jobs[b % 2];
		if (!(rc = val_loader_get(l, b, &s, &st->ms_wait))) {
			st->ms_pre += s->ms_load;
			rc = forward(c, sp, plan, s, j, st); // overlaps the NMS of batch b - 1
		}
		if (s)
			val_loader_release(l, s); // the loader may refill it from here on
		rc = job_finish(c, &c->jobs[(b + 1) % 2], sp, plan, st, rc);
		if (!rc)
			job_start(c, j);
	}
	for (int k = 0; k < 2; k++) // the last batch (or whatever an error left running)
		rc = job_finish(c, &c->jobs[k], sp, plan, st, rc);
	if (rc == -ENOMEM)
		LOGE("val: out of memory");
	val_loader_destroy(&l);
	jobs_free(c);
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
	int rc = o->net ? 0 : app_model_load(o->model, true, &c.ck, &c.model);
	c.net = o->net ? o->net : c.model;
	if (!rc && c.net->nc != (uint32_t)ds->nc) { // val.py asserts the same
		LOGE("val: %s has %u classes but %s has %d: trained on another dataset?", o->model,
		     c.net->nc, ds->yaml_path, ds->nc);
		rc = -EINVAL;
	}
	if (!rc) { // rectangular batches in multiples of the model's largest stride
		uint32_t stride = (uint32_t)c.net->stride[c.net->nl - 1];
		rc = nn_val_plan_create(sp, o->imgsz, o->batch, stride ? stride : 32, 0.5, &plan);
	}
	if (!rc)
		rc = nn_metrics_create(&c.metrics);
	if (!rc && o->save_json)
		rc = nn_coco_json_create(o->coco91, &c.json);
	if (!rc && o->dump_dir)
		rc = nn_mkdir_p(o->dump_dir);
	if (!rc && o->dev)
		c.dev = o->dev;
	else if (!rc && !o->cpu_reference)
		rc = app_open_device(o->device, &c.inst, &c.dev);
	if (!rc)
		rc = run_batches(&c, sp, plan, st);
	for (int k = 0; k < 3 && plan->nbatches; k++) // official: loss / len(dataloader)
		st->loss[k] /= plan->nbatches;
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
	free(c.gt);
	nn_coco_json_destroy(&c.json);
	nn_metrics_destroy(&c.metrics);
	nn_val_plan_destroy(&plan);
	nn_model_destroy(&c.model);
	nn_checkpoint_destroy(&c.ck);
	if (c.inst)
		app_close_device(&c.inst, &c.dev);
	return rc;
}
