// The detect pipeline of one frame (letterbox, forward, NMS, scale, round) and the CPU backend.
#include "detector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "letterbox.h"
#include "log.h"
#include "model.h"
#include "view_source.h"

struct model_detector {
	struct view_detector base;
	const struct nn_model *model;
	struct view_detector_params p;
	const struct view_backend_ops *ops;
	void *ctx;
	const char **names;
};

struct cpu_backend {
	const struct nn_model *model;
	float *input;
	size_t input_cap;
	struct nn_ref_outputs out;
};

static int cpu_forward(void *ctx, const uint8_t *chw, uint32_t h, uint32_t w, const float **pred, uint32_t *anchors)
{
	struct cpu_backend *b = ctx;
	size_t n = (size_t)3 * h * w;
	if (n > b->input_cap) {
		free(b->input);
		if (!(b->input = malloc(n * sizeof(float))))
			return b->input_cap = 0, -ENOMEM;
		b->input_cap = n;
	}
	nn_u8_to_unit_f32(chw, n, b->input);
	nn_ref_outputs_finish(&b->out);
	int ret = nn_model_forward_ref(b->model, 1, h, w, b->input, &b->out);
	if (ret)
		return ret;
	*pred = b->out.output;
	*anchors = b->out.a;
	return 0;
}

static void cpu_destroy(void *ctx)
{
	struct cpu_backend *b = ctx;
	nn_ref_outputs_finish(&b->out);
	free(b->input);
	free(b);
}

static const struct view_backend_ops cpu_ops = { cpu_forward, cpu_destroy };

static int model_detect(struct view_detector *base, const struct nn_image *img, float conf, struct nn_det **d,
                        uint32_t *n, double *infer_ms)
{
	struct model_detector *m = (struct model_detector *)base;
	struct nn_letterbox_params lp = { .new_w = m->p.imgsz, .new_h = m->p.imgsz, .auto_pad = true,
	                                  .scaleup = true, .stride = 32, .color = 114 };
	struct nn_letterbox lb;
	uint8_t *chw = NULL;
	const float *pred;
	uint32_t anchors;
	*d = NULL, *n = 0;
	int ret = nn_letterbox_image(img, &lp, &lb, &chw);
	if (ret)
		return ret;
	double t0 = view_now_ms();
	ret = m->ops->forward(m->ctx, chw, lb.out_h, lb.out_w, &pred, &anchors);
	*infer_ms = view_now_ms() - t0;
	free(chw);
	if (ret)
		return ret;
	struct nn_nms_params np = { .conf_thres = conf, .iou_thres = m->p.iou, .max_det = m->p.max_det };
	if ((ret = nn_nms(pred, m->model->nc, anchors, &np, d, n)))
		return ret;
	nn_scale_boxes(lb.out_w, lb.out_h, img->w, img->h, *d, *n);
	nn_round_boxes(*d, *n);
	return 0;
}

static void model_destroy(struct view_detector *base)
{
	struct model_detector *m = (struct model_detector *)base;
	if (m->ops)
		m->ops->destroy(m->ctx);
	free(m->names);
	if (m->p.release)
		m->p.release(m->p.release_arg);
	free(m);
}

int view_detector_create(const struct nn_model *model, const struct view_detector_params *p,
                         struct view_detector **out)
{
	*out = NULL;
	struct model_detector *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->base.detect = model_detect;
	m->base.destroy = model_destroy;
	m->model = model;
	m->p = *p;
	if (!m->p.imgsz)
		m->p.imgsz = 640;
	if (m->p.iou <= 0)
		m->p.iou = 0.45f;
	if (!m->p.max_det)
		m->p.max_det = 1000;
	int ret = -ENOMEM;
	if (!(m->names = calloc(model->nc, sizeof(*m->names))))
		goto fail;
	for (uint32_t i = 0; i < model->nc; i++)
		m->names[i] = model->names && model->names[i] ? model->names[i] : "object";
	m->base.names = m->names;
	m->base.nc = model->nc;
	if (p->backend == VIEW_BACKEND_CPU) {
		struct cpu_backend *b = calloc(1, sizeof(*b));
		if (!b)
			goto fail;
		b->model = model;
		m->ops = &cpu_ops, m->ctx = b;
		snprintf(m->base.device, sizeof(m->base.device), "CPU reference");
	} else if ((ret = view_backend_gpu_create(model, p->device, &m->ops, &m->ctx, m->base.device,
	                                          sizeof(m->base.device)))) {
		goto fail;
	}
	*out = &m->base;
	return 0;
fail:
	m->p.release = NULL; // on failure the caller keeps what it passed
	model_destroy(&m->base);
	return ret;
}
