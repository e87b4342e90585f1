// `vkyolo devices`: every Vulkan device with the capabilities that decide how vkyolo runs on it.
#include <stdio.h>
#include <string.h>

#include "app.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: vkyolo devices [--json]\n"
	           "\n"
	           "List every Vulkan device with its capabilities; '*' marks the one vkyolo picks by\n"
	           "default (VKYOLO_DEVICE or --device elsewhere override it).\n"
	           "\n"
	           "options:\n"
	           "  --json     machine-readable output\n"
	           "  -h, --help this help\n");
}

static const char *yes(bool b)
{
	return b ? "yes" : "no";
}

static void print_text(const struct gpu_device_info *d, bool chosen)
{
	printf("%s[%u] %s\n", chosen ? "* " : "  ", d->index, d->name);
	printf("    type            %s, vendor 0x%04x, device 0x%04x\n", gpu_device_type_name(d->type),
	       d->vendor_id, d->device_id);
	printf("    driver          %s %s, Vulkan %u.%u.%u\n", d->driver_name, d->driver_info,
	       (d->api_version >> 22) & 0x7f, (d->api_version >> 12) & 0x3ff, d->api_version & 0xfff);
	printf("    fp16            arithmetic %s, 16-bit storage %s\n", yes(d->fp16_arith), yes(d->storage16));
	printf("    int8            arithmetic %s, 8-bit storage %s, dot product %s\n", yes(d->int8_arith),
	       yes(d->storage8), yes(d->int_dot));
	printf("    subgroup        size %u (range %u-%u, control %s); vote %s, arithmetic %s, ballot %s, "
	       "shuffle %s, clustered %s\n", d->subgroup_size, d->subgroup_min, d->subgroup_max,
	       yes(d->subgroup_size_control), yes(d->subgroup_vote), yes(d->subgroup_arith),
	       yes(d->subgroup_ballot), yes(d->subgroup_shuffle), yes(d->subgroup_clustered));
	printf("    shared memory   %u KiB\n", d->max_shared_memory / 1024);
	printf("    workgroup       %u invocations, size %u x %u x %u\n", d->max_workgroup_invocations,
	       d->max_workgroup_size[0], d->max_workgroup_size[1], d->max_workgroup_size[2]);
	printf("    cooperative matrix %s\n", yes(d->cooperative_matrix));
	if (d->timestamps)
		printf("    timestamps      yes, period %.3g ns, %u valid bits\n", d->timestamp_period_ns,
		       d->timestamp_valid_bits);
	else
		printf("    timestamps      no\n");
	for (uint32_t h = 0; h < d->heap_count; h++)
		printf("    memory heap %u   %.0f MiB%s\n", h, d->heaps[h].size / 1048576.0,
		       d->heaps[h].device_local ? " (device local)" : "");
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_json(const struct gpu_device_info *d, bool chosen, bool last)
{
	printf("  {\"index\": %u, \"name\": ", d->index);
	json_string(d->name);
	printf(", \"type\": ");
	json_string(gpu_device_type_name(d->type));
	printf(", \"default\": %s, \"vendor_id\": %u, \"device_id\": %u, \"driver\": ",
	       chosen ? "true" : "false", d->vendor_id, d->device_id);
	json_string(d->driver_name);
	printf(", \"driver_info\": ");
	json_string(d->driver_info);
	printf(", \"vulkan\": \"%u.%u.%u\", \"fp16_arith\": %s, \"storage16\": %s, \"int8_arith\": %s, "
	       "\"storage8\": %s, \"int_dot\": %s, \"subgroup_size\": %u, \"subgroup_min\": %u, "
	       "\"subgroup_max\": %u, \"subgroup_size_control\": %s, \"subgroup_ops\": {\"vote\": %s, "
	       "\"arithmetic\": %s, \"ballot\": %s, \"shuffle\": %s, \"clustered\": %s}, "
	       "\"shared_memory\": %u, \"max_workgroup_invocations\": %u, \"max_workgroup_size\": [%u, %u, %u], "
	       "\"cooperative_matrix\": %s, \"timestamps\": %s, \"timestamp_period_ns\": %g, "
	       "\"timestamp_valid_bits\": %u, \"heaps\": [",
	       (d->api_version >> 22) & 0x7f, (d->api_version >> 12) & 0x3ff, d->api_version & 0xfff,
	       d->fp16_arith ? "true" : "false", d->storage16 ? "true" : "false",
	       d->int8_arith ? "true" : "false", d->storage8 ? "true" : "false", d->int_dot ? "true" : "false",
	       d->subgroup_size, d->subgroup_min, d->subgroup_max, d->subgroup_size_control ? "true" : "false",
	       d->subgroup_vote ? "true" : "false", d->subgroup_arith ? "true" : "false",
	       d->subgroup_ballot ? "true" : "false", d->subgroup_shuffle ? "true" : "false",
	       d->subgroup_clustered ? "true" : "false", d->max_shared_memory, d->max_workgroup_invocations,
	       d->max_workgroup_size[0], d->max_workgroup_size[1], d->max_workgroup_size[2],
	       d->cooperative_matrix ? "true" : "false", d->timestamps ? "true" : "false",
	       d->timestamp_period_ns, d->timestamp_valid_bits);
	for (uint32_t h = 0; h < d->heap_count; h++)
		printf("%s{\"size\": %llu, \"device_local\": %s}", h ? ", " : "",
		       (unsigned long long)d->heaps[h].size, d->heaps[h].device_local ? "true" : "false");
	printf("]}%s\n", last ? "" : ",");
}

int cmd_devices(int argc, char **argv)
{
	bool json = false;
	struct gpu_instance *inst = NULL;
	uint32_t chosen = UINT32_MAX;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return APP_EXIT_OK;
		} else {
			fprintf(stderr, "vkyolo devices: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return APP_EXIT_USAGE;
		}
	}
	if (gpu_instance_create(&(struct gpu_instance_params){ 0 }, &inst))
		return APP_EXIT_FAILURE;
	uint32_t n = gpu_instance_device_count(inst);
	if (n == 0) {
		LOGE("no Vulkan device found (install mesa-vulkan-drivers for lavapipe, or a GPU driver)");
		gpu_instance_destroy(&inst);
		return APP_EXIT_FAILURE;
	}
	if (gpu_instance_pick(inst, NULL, &chosen))
		chosen = UINT32_MAX;
	if (json)
		printf("[\n");
	for (uint32_t i = 0; i < n; i++) {
		const struct gpu_device_info *d = gpu_instance_device_info(inst, i);
		if (json)
			print_json(d, i == chosen, i + 1 == n);
		else
			print_text(d, i == chosen);
	}
	if (json)
		printf("]\n");
	gpu_instance_destroy(&inst);
	return APP_EXIT_OK;
}
