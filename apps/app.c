// Helpers shared by the subcommands.
#include "app.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpoint.h"
#include "model.h"

int app_open_device(const char *want, struct gpu_instance **inst, struct gpu_device **dev)
{
	uint32_t index = 0;
	int ret = gpu_instance_create(&(struct gpu_instance_params){ 0 }, inst);
	if (ret)
		return ret;
	ret = gpu_instance_pick(*inst, want, &index);
	if (ret)
		goto fail;
	ret = gpu_device_create(*inst, index, dev);
	if (ret)
		goto fail;
	const struct gpu_device_info *info = gpu_device_info(*dev);
	LOGI("device %u: %s (%s, %s)", index, info->name, gpu_device_type_name(info->type), info->driver_name);
	return 0;
fail:
	gpu_instance_destroy(inst);
	return ret;
}

static bool validation_failed;

bool app_validation_failed(void)
{
	return validation_failed;
}

void app_close_device(struct gpu_instance **inst, struct gpu_device **dev)
{
	gpu_device_destroy(dev);
	uint32_t msgs = *inst ? gpu_instance_validation_messages(*inst) : 0;
	if (msgs) {
		LOGE("vulkan validation: %u messages (see above)", msgs);
		validation_failed = true;
	}
	gpu_instance_destroy(inst);
}

const char *app_opt_value(int argc, char **argv, int *i, const char *name)
{
	const char *arg = argv[*i];
	size_t n = strlen(name);
	if (strncmp(arg, name, n) != 0)
		return NULL;
	if (arg[n] == '=')
		return arg + n + 1;
	if (arg[n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		fprintf(stderr, "vkyolo: option %s needs a value\n", name);
		return NULL;
	}
	return argv[++*i];
}

int app_model_load(const char *path, bool fuse, struct nn_checkpoint **ck, struct nn_model **model)
{
	int ret = nn_checkpoint_load(path, ck);
	if (ret)
		return ret;
	if (!(*ck)->arch) {
		LOGE("model %s: the checkpoint carries no architecture (yaml); convert it from an official .pt", path);
		nn_checkpoint_destroy(ck);
		return -EINVAL;
	}
	ret = nn_model_create((*ck)->arch, (*ck)->state,
	                      &(struct nn_model_params){ .fuse = fuse, .names = (*ck)->names }, model);
	if (ret) {
		LOGE("model %s: cannot build the network", path);
		nn_checkpoint_destroy(ck);
		return ret;
	}
	LOGD("model %s: %u classes, %u ops (%s weights)", path, (*model)->nc, (*model)->n_ops, (*ck)->source);
	return 0;
}

int app_parse_u32(const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || errno || v > UINT32_MAX || *s == '-')
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int app_parse_double(const char *s, double *out)
{
	char *end;
	*out = strtod(s, &end);
	return !*s || *end ? -1 : 0;
}

double app_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}
