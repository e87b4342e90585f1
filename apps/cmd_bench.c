// `vkyolo bench`: end-to-end latency, throughput, GPU time per layer and the share of the device's
// peak arithmetic, for a model at a given input size and batch. Speed is reported, never asserted.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "checkpoint.h"
#include "model.h"
#include "runner.h"

struct bench_opts {
	const char *model, *device;
	uint32_t img_h, img_w, batch, iters, warmup;
	uint32_t top; // --train --per-layer: slowest dispatches listed per phase
	bool per_layer, json, train, cpu;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: vkyolo bench --model M [--imgsz 640 | H,W] [--batch 1] [--iters 100] [--warmup 10]\n"
	           "                    [--per-layer] [--json] [--device D]\n"
	           "       vkyolo bench --train --model M.yaml|M.pt [--imgsz 640] [--batch 8] [--iters 3] [--warmup 1]\n"
	           "                    [--per-layer [--top 8]] [--device D | --cpu]\n"
	           "\n"
	           "Measure inference speed: end-to-end latency (upload, forward, download; median, p10,\n"
	           "p90), images/s, GPU time per layer from timestamps (--per-layer), and achieved GFLOP/s\n"
	           "against the model's FLOP count and the device's measured fp32 peak.\n"
	           "--train: the training step instead (synthetic images, four boxes each): forward, loss,\n"
	           "backward, optimizer + EMA (medians), images/s, device memory, and with --per-layer the\n"
	           "GPU time per kernel kind and the --top slowest dispatches of each phase.\n");
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, uint32_t n, double p)
{
	double idx = p * (n - 1);
	uint32_t lo = (uint32_t)idx;
	uint32_t hi = lo + 1 < n ? lo + 1 : lo;
	return sorted[lo] + (sorted[hi] - sorted[lo]) * (idx - lo);
}

static int parse(int argc, char **argv, struct bench_opts *o)
{
	*o = (struct bench_opts){ .img_h = 640, .img_w = 640, .batch = UINT32_MAX, .iters = UINT32_MAX, .warmup = UINT32_MAX, .top = 8 };
	for (int i = 1; i < argc; i++) {
		const char *v;
		char *end = NULL;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 1;
		} else if (!strcmp(argv[i], "--per-layer")) {
			o->per_layer = true;
		} else if (!strcmp(argv[i], "--json")) {
			o->json = true;
		} else if (!strcmp(argv[i], "--train")) {
			o->train = true;
		} else if (!strcmp(argv[i], "--cpu")) {
			o->cpu = true;
		} else if ((v = app_opt_value(argc, argv, &i, "--model"))) {
			o->model = v;
		} else if ((v = app_opt_value(argc, argv, &i, "--device"))) {
			o->device = v;
		} else if ((v = app_opt_value(argc, argv, &i, "--imgsz"))) {
			o->img_h = o->img_w = (uint32_t)strtoul(v, &end, 10);
			if (*end == ',')
				o->img_w = (uint32_t)strtoul(end + 1, &end, 10);
		} else if ((v = app_opt_value(argc, argv, &i, "--batch"))) {
			o->batch = (uint32_t)strtoul(v, &end, 10);
		} else if ((v = app_opt_value(argc, argv, &i, "--iters"))) {
			o->iters = (uint32_t)strtoul(v, &end, 10);
		} else if ((v = app_opt_value(argc, argv, &i, "--top"))) {
			o->top = (uint32_t)strtoul(v, &end, 10);
		} else if ((v = app_opt_value(argc, argv, &i, "--warmup"))) {
			o->warmup = (uint32_t)strtoul(v, &end, 10);
		} else {
			fprintf(stderr, "vkyolo bench: unknown or incomplete option '%s'\n", argv[i]);
			return -1;
		}
		if (end && *end) {
			fprintf(stderr, "vkyolo bench: bad value for %s\n", argv[i - 1]);
			return -1;
		}
	}
	// defaults: inference 100 runs after 10 at batch 1; training 3 steps after 1 at batch 8
	o->batch = o->batch != UINT32_MAX ? o->batch : o->train ? 8 : 1;
	o->iters = o->iters != UINT32_MAX ? o->iters : o->train ? 3 : 100;
	o->warmup = o->warmup != UINT32_MAX ? o->warmup : o->train ? 1 : 10;
	if (!o->model || !o->batch || !o->iters || o->img_h % 32 || o->img_w % 32 || !o->img_h || !o->img_w) {
		fprintf(stderr, "vkyolo bench: need --model, --batch >= 1, --iters >= 1, --imgsz multiple of 32\n");
		return -1;
	}
	return 0;
}

struct layer_time {
	const char *label;
	double ms;
};

// Runs the timestamped forward `reps` times and keeps, per dispatch, the median time.
static int per_layer(struct nn_runner *r, const uint8_t *input, uint32_t reps, struct layer_time **out, uint32_t *n_out)
{
	uint32_t cap = 4096, n = 0;
	struct gpu_timing *t = calloc(cap, sizeof(*t));
	double *all = NULL;
	int ret = t ? 0 : -ENOMEM;
	for (uint32_t rep = 0; rep < reps && !ret; rep++) {
		if ((ret = nn_runner_run(r, input)) || (ret = nn_runner_timings(r, t, cap, &n)))
			break;
		if (!all && !(all = calloc((size_t)n * reps, sizeof(double))))
			ret = -ENOMEM;
		for (uint32_t i = 0; all && i < n; i++)
			all[(size_t)i * reps + rep] = t[i].ms;
	}
	struct layer_time *lt = ret ? NULL : calloc(n ? n : 1, sizeof(*lt));
	if (!ret && !lt)
		ret = -ENOMEM;
	for (uint32_t i = 0; !ret && i < n; i++) {
		qsort(all + (size_t)i * reps, reps, sizeof(double), cmp_double);
		lt[i] = (struct layer_time){ t[i].label, percentile(all + (size_t)i * reps, reps, 0.5) };
	}
	*out = lt;
	*n_out = ret ? 0 : n;
	free(t);
	free(all);
	return ret;
}

int cmd_bench(int argc, char **argv)
{
	struct bench_opts o;
	struct gpu_instance *inst = NULL;
	struct gpu_device *dev = NULL;
	struct nn_checkpoint *ck = NULL;
	struct nn_model *m = NULL;
	struct nn_runner *r = NULL;
	struct layer_time *layers = NULL;
	uint32_t n_layers = 0;
	uint8_t *input = NULL;
	float *out = NULL;
	double *lat = NULL, peak = 0;
	int ret = parse(argc, argv, &o);
	if (ret)
		return ret < 0 ? (usage(stderr), APP_EXIT_USAGE) : APP_EXIT_OK;
	if (o.train)
		return app_bench_train(o.model, o.device, o.batch, o.img_h, o.img_w, o.iters, o.warmup, o.per_layer, o.top, o.cpu);

	double t0 = app_now_ms();
	if ((ret = app_model_load(o.model, true, &ck, &m)) || (ret = app_open_device(o.device, &inst, &dev)))
		goto done;
	double t_load = app_now_ms() - t0;
	t0 = app_now_ms();
	if ((ret = nn_runner_create(dev, m, &(struct nn_runner_params){ .n = o.batch, .h = o.img_h, .w = o.img_w,
	                                                                 .timestamps = o.per_layer }, &r)))
		goto done;
	double t_setup = app_now_ms() - t0;
	size_t in_size = (size_t)o.batch * 3 * o.img_h * o.img_w;
	size_t out_count = (size_t)o.batch * (4 + m->nc) * nn_runner_anchors(r);
	input = malloc(in_size);
	out = malloc(out_count * sizeof(float));
	lat = calloc(o.iters, sizeof(double));
	if (!input || !out || !lat) {
		ret = -ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < in_size; i++)
		input[i] = (uint8_t)((i * 2654435761u) >> 24);
	t0 = app_now_ms();
	for (uint32_t i = 0; i < o.warmup && !ret; i++)
		ret = nn_runner_run(r, input) || nn_runner_read_output(r, false, out);
	double t_warm = app_now_ms() - t0;
	struct timespec c0, c1;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	for (uint32_t i = 0; i < o.iters && !ret; i++) {
		double s = app_now_ms();
		if ((ret = nn_runner_run(r, input)) || (ret = nn_runner_read_output(r, false, out)))
			break;
		lat[i] = app_now_ms() - s;
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	// CPU time of the whole process (driver threads included) per forward: on a CPU device such as
	// lavapipe this is the cost that does not depend on how loaded the shared machine is.
	double cpu_ms = ((c1.tv_sec - c0.tv_sec) * 1e3 + (c1.tv_nsec - c0.tv_nsec) * 1e-6) / o.iters;
	if (ret)
		goto done;
	if (o.per_layer && (ret = per_layer(r, input, o.iters < 10 ? o.iters : 10, &layers, &n_layers)))
		goto done;
	app_measure_peak_gflops(dev, &peak);
	qsort(lat, o.iters, sizeof(double), cmp_double);
	double med = percentile(lat, o.iters, 0.5), p10 = percentile(lat, o.iters, 0.1), p90 = percentile(lat, o.iters, 0.9);
	struct nn_runner_stats st;
	nn_runner_stats(r, &st);
	double flops = st.gflop * 1e9, gflops = flops / (med * 1e6);
	const struct gpu_device_info *info = gpu_device_info(dev);
	if (o.json) {
		printf("{\"device\": \"%s\", \"driver\": \"%s %s\", \"model\": \"%s\", \"batch\": %u, \"imgsz\": [%u, %u], "
		       "\"iters\": %u, \"load_ms\": %.2f, \"setup_ms\": %.2f, \"warmup_ms\": %.2f, \"latency_ms\": "
		       "{\"median\": %.3f, \"p10\": %.3f, \"p90\": %.3f, \"min\": %.3f}, \"ms_per_image\": %.3f, "
		       "\"images_per_s\": %.3f, \"gflop\": %.4f, \"gflops\": %.3f, \"peak_gflops\": %.3f, "
		       "\"share_of_peak\": %.4f, \"dispatches\": %u, \"device_memory_mb\": %.1f, \"cpu_ms\": %.3f",
		       info->name, info->driver_name, info->driver_info, o.model, o.batch, o.img_h, o.img_w, o.iters, t_load,
		       t_setup, t_warm, med, p10, p90, lat[0], med / o.batch, 1000.0 * o.batch / med, flops / 1e9, gflops, peak,
		       peak > 0 ? gflops / peak : 0, st.dispatches, gpu_device_memory_peak(dev) / 1048576.0, cpu_ms);
		if (o.per_layer) {
			printf(", \"layers\": [");
			for (uint32_t i = 0; i < n_layers; i++)
			{
				double gf = 0;
				char desc[64] = "";
				nn_runner_op_work(r, layers[i].label, &gf, desc, sizeof(desc));
				printf("%s{\"name\": \"%s\", \"ms\": %.4f, \"gflop\": %.5f, \"conv\": \"%s\"}", i ? ", " : "",
				       layers[i].label ? layers[i].label : "?", layers[i].ms, gf, desc);
			}
			printf("]");
		}
		printf("}\n");
	} else {
		printf("device      %s (%s %s)\n", info->name, info->driver_name, info->driver_info);
		printf("model       %s, batch %u, %ux%u, fp32, %u dispatches per forward\n", o.model, o.batch, o.img_h,
		       o.img_w, st.dispatches);
		printf("setup       load %.1f ms, pipelines + upload + record %.1f ms, %u warm-up runs %.1f ms\n", t_load,
		       t_setup, o.warmup, t_warm);
		printf("latency     median %.2f ms, p10 %.2f, p90 %.2f, min %.2f (%u runs, upload + forward + download)\n",
		       med, p10, p90, lat[0], o.iters);
		printf("throughput  %.2f ms/image, %.2f images/s\n", med / o.batch, 1000.0 * o.batch / med);
		printf("cpu time    %.2f ms per forward (process CPU time over the timed runs, all threads)\n", cpu_ms);
		printf("compute     %.2f GFLOP per forward, %.2f GFLOP/s", flops / 1e9, gflops);
		if (peak > 0)
			printf(" = %.1f%% of the measured fp32 peak %.1f GFLOP/s\n", 100 * gflops / peak, peak);
		else
			printf("\n");
		printf("memory      %.1f MiB of device memory at peak (weights %.1f MiB, activations %.1f MiB planned,"
		       " %.1f MiB without reuse)\n", gpu_device_memory_peak(dev) / 1048576.0, st.weight_bytes / 1048576.0,
		       st.activation_bytes / 1048576.0, st.activation_naive_bytes / 1048576.0);
		if (o.per_layer) {
			double sum = 0;
			for (uint32_t i = 0; i < n_layers; i++)
				sum += layers[i].ms;
			printf("per dispatch (median GPU ms; sum %.2f ms):\n", sum);
			printf("  %4s %-32s %9s %8s  %s\n", "#", "op", "ms", "GFLOP/s", "conv (batch included)");
			for (uint32_t i = 0; i < n_layers; i++) {
				double gf = 0;
				char desc[64] = "";
				nn_runner_op_work(r, layers[i].label, &gf, desc, sizeof(desc));
				printf("  %4u %-32s %9.3f", i, layers[i].label ? layers[i].label : "?", layers[i].ms);
				if (gf > 0 && layers[i].ms > 0)
					printf(" %8.2f  %s", gf / (layers[i].ms * 1e-3), desc);
				printf("\n");
			}
		}
	}
done:
	free(layers);
	free(input);
	free(out);
	free(lat);
	nn_runner_destroy(&r);
	nn_model_destroy(&m);
	nn_checkpoint_destroy(&ck);
	app_close_device(&inst, &dev);
	return ret ? APP_EXIT_FAILURE : APP_EXIT_OK;
}
