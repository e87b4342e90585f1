// Shared pieces of the vkyolo subcommands: exit codes, device opening, option helpers.
#pragma once
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

#include "gpu.h"

enum app_exit {
	APP_EXIT_OK = 0,
	APP_EXIT_FAILURE = 1, // runtime failure
	APP_EXIT_USAGE = 2,   // bad command line
};

// Subcommands: argv[0] is the subcommand's name. Return an app_exit value.
int cmd_devices(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_val(int argc, char **argv);
int cmd_detect(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_view(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_step(int argc, char **argv);

// Opens the instance and the device chosen by `want` (index, name substring, or NULL for
// VKYOLO_DEVICE / the best device) and logs which device was chosen. 0 or a negative errno.
int app_open_device(const char *want, struct gpu_instance **inst, struct gpu_device **dev);
// Closes both; with validation on, notes whether the layer reported anything (see below).
void app_close_device(struct gpu_instance **inst, struct gpu_device **dev);
// True once a closed device's validation layer reported a message: the command then fails, so
// tests that run vkyolo with VKYOLO_VALIDATION=1 catch them.
bool app_validation_failed(void);

// Parses "--name value" and "--name=value". Returns the value and advances *i, or NULL.
const char *app_opt_value(int argc, char **argv, int *i, const char *name);

struct nn_checkpoint;
struct nn_model;
// Loads a checkpoint (.pt or our .safetensors) and builds its model (fused for inference when
// `fuse`). Logs what was loaded. 0 or a negative errno (already logged).
int app_model_load(const char *path, bool fuse, struct nn_checkpoint **ck, struct nn_model **model);

// Whole-string numbers for option values: 0, or -1 when s is empty, malformed or out of range.
int app_parse_u32(const char *s, uint32_t *out);
int app_parse_double(const char *s, double *out);

struct nn_trainer;
// apps/bench_train.c: GPU time per kernel kind and the slowest dispatches of each phase of the last
// training step (a trainer created with timestamps): the top slowest per phase.
void app_train_profile_print(struct nn_trainer *tr, uint32_t top, FILE *f);
// `vkyolo bench --train`: the training step's speed on synthetic data. Returns an app_exit value.
int app_bench_train(const char *model, const char *device, uint32_t batch, uint32_t h, uint32_t w, uint32_t iters,
                    uint32_t warmup, bool per_kernel, uint32_t top, bool cpu);
int app_measure_peak_gflops(struct gpu_device *dev, double *gflops);

// Monotonic clock in milliseconds.
double app_now_ms(void);
