// The pieces of `vkyolo train` (apps/cmd_train.c): the official schedule (train_sched.c), the
// checkpoint files (train_ckpt.c) and the results table and plot (train_plot.c).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hyp.h"
#include "model.h"
#include "trainer.h"
#include "value.h"

#define TRAIN_NBS 64 // official nominal batch size

// ---- schedule (train_sched.c) ----

// The official linear lr factor lf(epoch) = (1 - epoch / epochs) * (1 - lrf) + lrf.
double train_lf(uint32_t epoch, uint32_t epochs, double lrf);
// max(round(64 / batch), 1) with Python's round (half to even).
uint32_t train_accumulate(uint32_t batch);
// Warmup length: max(round(warmup_epochs * batches_per_epoch), 100) iterations.
uint32_t train_warmup_iters(const struct nn_hyp *h, uint32_t batches_per_epoch);
// Learning rates, momentum and accumulation of global iteration ni in epoch `epoch` (official
// train.py: np.interp over [0, nw] while ni <= nw, else lr0 * lf(epoch) and the given momentum).
struct train_iter_sched {
	float lr[NN_GROUP_COUNT];
	float momentum;
	uint32_t accumulate;
};
void train_sched_at(const struct nn_hyp *h, uint32_t epochs, uint32_t batch, uint32_t nw, uint64_t ni,
                    uint32_t epoch, struct train_iter_sched *out);
// The official initialisation of a model built with random weights: BatchNorm gamma 1, beta 0,
// running mean 0, variance 1 (conv weights keep PyTorch's default U(+-1/sqrt(fan_in))), and the
// detection head's bias_init: box branch biases 1.0, class biases log(5 / nc / (640 / s)^2).
void train_init_official(struct nn_model *m);

// ---- checkpoints (train_ckpt.c) ----

// What a checkpoint carries besides the tensors.
struct train_meta {
	const struct nn_value *arch;  // model description (nc set to the dataset's)
	const struct nn_value *names; // list of class names
	const struct nn_value *args;  // the run's options (dict), restored by --resume
	int32_t epoch;                // last completed epoch (0-based; -1: none yet)
	double best_fitness;
	uint64_t updates;             // optimizer steps so far (EMA ramp)
};
// Writes path atomically (temp file + fsync + rename): the EMA weights under the official names
// (what `vkyolo val/detect --model` use, like the official ckpt['ema']), the weights being trained
// under "train.", the SGD momentum under "momentum.", and metadata (format, arch, names, strides,
// nc, epoch, best_fitness, updates, args). host: a model of the trainer's structure (scratch).
int train_ckpt_save(const char *path, struct nn_trainer *t, struct nn_model *host, const struct train_meta *m);

// A checkpoint read back for --resume (all owned; train_resume_finish frees).
struct train_resume {
	struct nn_value *arch, *names, *args;
	struct nn_tensor_map *all;   // every tensor of the file (+ metadata)
	struct nn_tensor_map *train; // the "train." tensors with the prefix removed
	int32_t epoch;
	double best_fitness;
	uint64_t updates;
};
int train_resume_read(const char *path, struct train_resume *r);
// The tensors of a checkpoint other than "train." and "momentum.": the EMA weights (official names).
int train_ckpt_ema_tensors(const struct nn_tensor_map *all, struct nn_tensor_map **out);
// Rewrites path with the EMA weights and metadata only (end of training, like strip_optimizer).
int train_ckpt_strip(const char *path);
void train_resume_finish(struct train_resume *r);

// ---- results (train_plot.c) ----

// The ultralytics results.csv columns, in order.
#define TRAIN_CSV_COLS 14
extern const char *const train_csv_cols[TRAIN_CSV_COLS];
// Appends one row (header first when the file is new or empty). -EIO.
int train_csv_append(const char *path, const double row[TRAIN_CSV_COLS]);
// results.png from results.csv: one panel per loss and metric column against the epoch. -EIO,
// -ENOMEM, -EINVAL (no rows).
int train_plot_results(const char *csv_path, const char *png_path);
