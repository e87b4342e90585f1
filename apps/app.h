// Shared pieces of the vkyolo subcommands: exit codes, device opening, option helpers.
#pragma once
#include <stdbool.h>
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

// Monotonic clock in milliseconds.
double app_now_ms(void);
