// `vkyolo step`: N official training steps on one fixed batch (the recipe of the oracle's
// gelan-t_curve.safetensors), writing losses, gradient norms, the first step's gradients and the final
// parameters and BN buffers under official names: the check of the training core against PyTorch.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "checkpoint.h"
#include "model.h"
#include "safetensors.h"
#include "trainer.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: vkyolo step --model M --batch B.safetensors --out OUT.safetensors [options]\n"
	           "\n"
	           "Runs N training steps on the one batch of B (input_u8 [n,3,h,w], targets rows: image,\n"
	           "class, cx, cy, w, h normalised): training-mode forward, official loss (x batch size),\n"
	           "backward, gradient-norm clipping at 10, SGD with Nesterov momentum 0.937, weight decay\n"
	           "5e-4 on conv weights only; no warmup, no EMA. Writes to OUT: loss [N], loss_items [N,3],\n"
	           "grad_norm [N] (before clipping), grad.<name> (gradients of the first step),\n"
	           "param.<name> and buffer.<name> (BN running statistics) after the last step.\n"
	           "\n"
	           "options:\n"
	           "  --model M        official .pt (e.g. gelan-t_init.pt) or our .safetensors\n"
	           "  --batch B        the batch file\n"
	           "  --steps N        steps (default 1)\n"
	           "  --lr LR          learning rate of every parameter group (default 0.01)\n"
	           "  --out OUT        output .safetensors (written atomically)\n"
	           "  --device D       Vulkan device index or name substring\n"
	           "  --cpu            run the CPU reference instead of the GPU (slow)\n"
	           "  --timing         print the time of each phase of every step to stderr\n"
	           "  --profile        time every dispatch; after the last step print the GPU time per kernel\n"
	           "                   kind and the slowest dispatches of each phase\n"
	           "  -h, --help       this help\n");
}

struct step_batch {
	struct nn_tensor_map *file;
	const uint8_t *input;
	const float *targets;
	uint32_t n, h, w, n_targets;
};

static int load_batch(const char *path, struct step_batch *b)
{
	int ret = nn_safetensors_read(path, &b->file);
	if (ret)
		return ret;
	const struct nn_tensor *in = nn_tensor_map_find(b->file, "input_u8");
	const struct nn_tensor *tg = nn_tensor_map_find(b->file, "targets");
	if (!in || in->dtype != NN_DTYPE_U8 || in->ndim != 4 || in->shape[1] != 3) {
		LOGE("batch %s: no input_u8 tensor of shape [n, 3, h, w] (u8)", path);
		return -EINVAL;
	}
	if (!tg || tg->dtype != NN_DTYPE_F32 || tg->ndim != 2 || tg->shape[1] != 6) {
		LOGE("batch %s: no targets tensor of shape [count, 6] (f32)", path);
		return -EINVAL;
	}
	b->input = in->data, b->targets = tg->data;
	b->n = (uint32_t)in->shape[0], b->h = (uint32_t)in->shape[2], b->w = (uint32_t)in->shape[3];
	b->n_targets = (uint32_t)tg->shape[0];
	return 0;
}

// Adds every parameter (param.*, the fixed DFL bins included, as the official named_parameters) and
// BN buffer (buffer.*) of m, official names.
static int export_params(const struct nn_model *m, struct nn_tensor_map *out)
{
	struct nn_tensor_map *all = NULL;
	int ret = nn_tensor_map_create(&all);
	if (!ret)
		ret = nn_model_export_state(m, all);
	for (size_t i = 0; !ret && i < all->count; i++) {
		const struct nn_tensor *t = &all->items[i];
		const char *name = t->name;
		bool buffer = strstr(name, ".running_mean") || strstr(name, ".running_var");
		char full[320];
		snprintf(full, sizeof(full), "%s%s", buffer ? "buffer." : "param.", name);
		ret = nn_tensor_map_add(out, full, t->dtype, t->ndim, t->shape, t->data);
	}
	nn_tensor_map_destroy(&all);
	return ret;
}

static int add_f32(struct nn_tensor_map *out, const char *name, uint32_t ndim, const int64_t *shape, const float *v)
{
	return nn_tensor_map_add(out, name, NN_DTYPE_F32, ndim, shape, v);
}

int cmd_step(int argc, char **argv)
{
	const char *model_path = NULL, *batch_path = NULL, *out_path = NULL, *device = NULL, *v;
	uint32_t steps = 1;
	double lr = 0.01;
	bool cpu = false, timing = false, profile = false;
	for (int i = 1; i < argc; i++) {
		if ((v = app_opt_value(argc, argv, &i, "--model"))) {
			model_path = v;
		} else if ((v = app_opt_value(argc, argv, &i, "--batch"))) {
			batch_path = v;
		} else if ((v = app_opt_value(argc, argv, &i, "--out"))) {
			out_path = v;
		} else if ((v = app_opt_value(argc, argv, &i, "--device"))) {
			device = v;
		} else if ((v = app_opt_value(argc, argv, &i, "--steps"))) {
			if (app_parse_u32(v, &steps) || !steps) {
				fprintf(stderr, "vkyolo step: --steps wants a positive integer, got '%s'\n", v);
				return APP_EXIT_USAGE;
			}
		} else if ((v = app_opt_value(argc, argv, &i, "--lr"))) {
			if (app_parse_double(v, &lr) || lr < 0) {
				fprintf(stderr, "vkyolo step: --lr wants a number >= 0, got '%s'\n", v);
				return APP_EXIT_USAGE;
			}
		} else if (!strcmp(argv[i], "--cpu")) {
			cpu = true;
		} else if (!strcmp(argv[i], "--timing")) {
			timing = true;
		} else if (!strcmp(argv[i], "--profile")) {
			profile = timing = true;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return APP_EXIT_OK;
		} else {
			fprintf(stderr, "vkyolo step: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return APP_EXIT_USAGE;
		}
	}
	if (!model_path || !batch_path || !out_path) {
		fprintf(stderr, "vkyolo step: --model, --batch and --out are required\n");
		usage(stderr);
		return APP_EXIT_USAGE;
	}

	int status = APP_EXIT_FAILURE, ret;
	struct gpu_instance *inst = NULL;
	struct gpu_device *dev = NULL;
	struct nn_checkpoint *ck = NULL;
	struct nn_model *m = NULL;
	struct nn_trainer *tr = NULL;
	struct nn_tensor_map *out = NULL;
	struct step_batch b = { 0 };
	float *loss = calloc(steps, sizeof(float)), *items = calloc(3 * (size_t)steps, sizeof(float));
	float *gnorm = calloc(steps, sizeof(float));
	if (!loss || !items || !gnorm)
		goto done;
	if (load_batch(batch_path, &b) || app_model_load(model_path, false, &ck, &m))
		goto done;
	if (!cpu && app_open_device(device, &inst, &dev))
		goto done;
	ret = nn_trainer_create(dev, m, &(struct nn_trainer_params){ .n = b.n, .h = b.h, .w = b.w, .cpu_reference = cpu,
	                                                             .timestamps = profile },
	                        &tr);
	if (ret || nn_tensor_map_create(&out))
		goto done;
	const struct nn_trainer_step_params sp = { .lr = { (float)lr, (float)lr, (float)lr }, .momentum = 0.937f,
	                                           .weight_decay = 5e-4f, .max_grad_norm = 10.0f, .nesterov = true };
	for (uint32_t s = 0; s < steps; s++) {
		struct nn_loss_out lo;
		double norm = 0;
		double t0 = app_now_ms();
		if (nn_trainer_zero_grad(tr) || nn_trainer_forward_backward(tr, b.input, b.targets, b.n_targets, &lo))
			goto done;
		if (s == 0 && nn_trainer_export_grads(tr, "grad.", out))
			goto done;
		if (nn_trainer_step(tr, &sp, &norm))
			goto done;
		loss[s] = (float)lo.loss, gnorm[s] = (float)norm;
		for (int k = 0; k < 3; k++)
			items[3 * s + k] = (float)lo.items[k];
		struct nn_trainer_timing tt;
		nn_trainer_timing(tr, &tt);
		if (timing)
			fprintf(stderr, "step %u: loss %.6g (box %.5g cls %.5g dfl %.5g) grad norm %.5g | %.0f ms: forward %.0f, "
			        "loss %.0f, backward %.0f, optimizer %.0f | device memory %.1f MiB (peak %.1f)\n", s + 1,
			        lo.loss, lo.items[0], lo.items[1], lo.items[2], norm, app_now_ms() - t0, tt.forward_ms,
			        tt.loss_ms, tt.backward_ms, tt.optimizer_ms, tt.device_bytes / 1048576.0,
			        tt.device_peak_bytes / 1048576.0);
	}
	if (profile) {
		app_train_profile_print(tr, 8, stderr);
	}
	if (nn_trainer_read_state(tr, NN_TRAINER_CURRENT, m) || export_params(m, out))
		goto done;
	int64_t sn[1] = { steps }, si[2] = { steps, 3 };
	if (add_f32(out, "loss", 1, sn, loss) || add_f32(out, "loss_items", 2, si, items) ||
	    add_f32(out, "grad_norm", 1, sn, gnorm) || nn_safetensors_write(out_path, out))
		goto done;
	printf("%u step%s: loss %.6g -> %.6g, wrote %s\n", steps, steps > 1 ? "s" : "", loss[0], loss[steps - 1],
	       out_path);
	status = APP_EXIT_OK;
done:
	if (status != APP_EXIT_OK)
		fprintf(stderr, "vkyolo step: failed (see the message above)\n");
	nn_tensor_map_destroy(&out);
	nn_trainer_destroy(&tr);
	nn_model_destroy(&m);
	nn_checkpoint_destroy(&ck);
	nn_tensor_map_destroy(&b.file);
	app_close_device(&inst, &dev);
	if (app_validation_failed())
		status = APP_EXIT_FAILURE;
	free(loss), free(items), free(gnorm);
	return status;
}
