// Built when nn/runner.h is not in the tree yet: the GPU backend reports that it is missing.
#include <errno.h>

#include "detector.h"
#include "log.h"

int view_backend_gpu_create(const struct nn_model *model, const char *device, const struct view_backend_ops **ops,
                            void **ctx, char *name, size_t name_cap)
{
	(void)model, (void)device, (void)ops, (void)ctx, (void)name, (void)name_cap;
	LOGE("viewer: this build has no GPU runner (nn/runner.h); use --device cpu");
	return -ENOTSUP;
}
