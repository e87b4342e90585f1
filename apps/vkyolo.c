// vkyolo: one command, several subcommands, in the style YOLO users know.
#include <stdio.h>
#include <string.h>

#include "app.h"

struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct subcommand subcommands[] = {
	{ "detect", cmd_detect, "detect objects in images (official pre/post-processing)" },
	{ "bench", cmd_bench, "measure inference latency, throughput and GPU time per layer" },
	{ "devices", cmd_devices, "list Vulkan devices and their capabilities" },
	{ "val", cmd_val, "evaluate detections on a dataset (mAP50, mAP50-95, per class)" },
	{ "view", cmd_view, "live detection on a webcam, video or slideshow (SDL2 window or --headless)" },
	{ "step", cmd_step, "N official training steps on one batch (the check of the training core)" },
	{ "train", cmd_train, "train a model on a dataset (official recipe; GPU, or --cpu reference)" },
	{ "convert", cmd_convert, "convert a .pt checkpoint to safetensors (--deploy: drop the PGI branch)" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: vkyolo [--verbose] <command> [options]\n"
	           "\n"
	           "YOLOv9 / GELAN detection and training on any Vulkan device.\n"
	           "\n"
	           "commands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %-9s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(f, "\n"
	           "Run 'vkyolo <command> --help' for a command's options.\n"
	           "\n"
	           "environment:\n"
	           "  VKYOLO_DEVICE      device index or name substring (same as --device)\n"
	           "  VKYOLO_VALIDATION  1 enables the Vulkan validation layers\n"
	           "\n"
	           "exit status: 0 success, 1 runtime failure, 2 usage error\n");
}

int main(int argc, char **argv)
{
	int i = 1;
	enum gpu_log_level level = GPU_LOG_INFO;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return APP_EXIT_OK;
		} else if (!strcmp(argv[i], "--version")) {
			printf("vkyolo 0.1.0\n");
			return APP_EXIT_OK;
		} else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
			level = GPU_LOG_DEBUG;
		} else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
			level = GPU_LOG_WARN;
		} else {
			fprintf(stderr, "vkyolo: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return APP_EXIT_USAGE;
		}
	}
	gpu_log_init(level, NULL, NULL);
	if (i >= argc) {
		usage(stderr);
		return APP_EXIT_USAGE;
	}
	for (size_t c = 0; c < sizeof(subcommands) / sizeof(subcommands[0]); c++) {
		if (!strcmp(argv[i], subcommands[c].name)) {
			int status = subcommands[c].run(argc - i, argv + i);
			return status == APP_EXIT_OK && app_validation_failed() ? APP_EXIT_FAILURE : status;
		}
	}
	fprintf(stderr, "vkyolo: unknown command '%s' (see 'vkyolo --help')\n", argv[i]);
	return APP_EXIT_USAGE;
}
