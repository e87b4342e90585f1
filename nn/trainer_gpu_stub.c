// TEMPORARY: stands in for trainer_gpu.c (the Vulkan backend of nn/trainer.h) until it lands; delete
// this file then. Weak, so the real definition wins if both are linked.
#include <errno.h>

#include "log.h"
#include "trainer_internal.h"

__attribute__((weak)) int nn_trainer_gpu_init(struct nn_trainer *t, struct gpu_device *dev)
{
	(void)t, (void)dev;
	LOGE("trainer: the GPU backend is not built yet (use cpu_reference / --cpu)");
	return -ENOTSUP;
}
