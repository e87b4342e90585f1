// Helpers shared by the subcommands.
#include "app.h"

#include <stdio.h>
#include <string.h>

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

void app_close_device(struct gpu_instance **inst, struct gpu_device **dev)
{
	gpu_device_destroy(dev);
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
