// The GPU backend of the viewer's detector: the model's nn_runner on a Vulkan device, recreated
// when the letterboxed input shape changes (a slideshow of mixed aspect ratios).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "detector.h"
#include "gpu.h"
#include "log.h"
#include "model.h"
#include "runner.h"

struct gpu_backend {
	const struct nn_model *model;
	struct gpu_instance *inst;
	struct gpu_device *dev;
	struct nn_runner *runner;
	uint32_t h, w; // the runner's input shape
	float *pred;
	size_t pred_cap;
};

static int gpu_forward(void *ctx, const uint8_t *chw, uint32_t h, uint32_t w, const float **pred, uint32_t *anchors)
{
	struct gpu_backend *b = ctx;
	int ret;
	if (!b->runner || b->h != h || b->w != w) {
		nn_runner_destroy(&b->runner);
		if ((ret = nn_runner_create(b->dev, b->model, &(struct nn_runner_params){ .n = 1, .h = h, .w = w },
		                            &b->runner)))
			return ret;
		b->h = h, b->w = w;
	}
	if ((ret = nn_runner_run(b->runner, chw)))
		return ret;
	uint32_t a = nn_runner_anchors(b->runner);
	size_t need = (size_t)(4 + b->model->nc) * a;
	if (need > b->pred_cap) {
		free(b->pred);
		if (!(b->pred = malloc(need * sizeof(float))))
			return b->pred_cap = 0, -ENOMEM;
		b->pred_cap = need;
	}
	if ((ret = nn_runner_read_output(b->runner, false, b->pred)))
		return ret;
	*pred = b->pred;
	*anchors = a;
	return 0;
}

static void gpu_destroy(void *ctx)
{
	struct gpu_backend *b = ctx;
	nn_runner_destroy(&b->runner);
	free(b->pred);
	gpu_device_destroy(&b->dev);
	gpu_instance_destroy(&b->inst);
	free(b);
}

static const struct view_backend_ops gpu_ops = { gpu_forward, gpu_destroy };

int view_backend_gpu_create(const struct nn_model *model, const char *device, const struct view_backend_ops **ops,
                            void **ctx, char *name, size_t name_cap)
{
	struct gpu_backend *b = calloc(1, sizeof(*b));
	uint32_t index = 0;
	if (!b)
		return -ENOMEM;
	b->model = model;
	int ret = gpu_instance_create(&(struct gpu_instance_params){ 0 }, &b->inst);
	if (!ret)
		ret = gpu_instance_pick(b->inst, device, &index);
	if (!ret)
		ret = gpu_device_create(b->inst, index, &b->dev);
	if (ret) {
		gpu_destroy(b);
		return ret;
	}
	const struct gpu_device_info *info = gpu_device_info(b->dev);
	snprintf(name, name_cap, "%s", info->name);
	LOGI("viewer: device %u: %s (%s)", index, info->name, info->driver_name);
	*ops = &gpu_ops;
	*ctx = b;
	return 0;
}
