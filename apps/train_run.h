// The state of one `vkyolo train` run, shared by cmd_train.c and train_model.c.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "dataset.h"
#include "gpu.h"
#include "hyp.h"
#include "loader.h"
#include "train.h"

struct train_opts {
	const char *model, *data, *hyp, *device, *project, *name, *resume;
	uint32_t epochs, batch, imgsz, workers, patience, close_mosaic, stop_after;
	uint32_t save_period; // 0 = off
	uint64_t seed;
	bool cpu, verbose, resuming;
};

struct train_run {
	struct train_opts o;
	char *dir;                // run folder (runs/train/exp*)
	struct nn_dataset *ds;
	struct nn_dataset_split *tr, *va;
	struct nn_hyp hyp;
	struct nn_value *arch;    // model description, nc = the dataset's
	struct nn_value *names;   // list of the dataset's class names
	struct nn_value *args;    // the options as a dict (args.yaml, checkpoint metadata)
	struct nn_model *model;   // unfused host model: the initial weights, then scratch for read_state
	struct gpu_instance *inst;
	struct gpu_device *dev;
	struct nn_trainer *t;
	struct nn_loader *ld;
	struct nn_font *font;
	bool resumed;
	struct train_resume res;
	int32_t last_epoch;       // last completed epoch (-1: none)
	uint32_t best_epoch;
	double best_fitness;
	uint64_t updates;
};

struct nn_confusion;
struct nn_metrics_result;
// Builds r->arch and r->model (from the YAML, the checkpoint to fine-tune, or the resumed file).
int train_model_build(struct train_run *r);
// Validation of the EMA weights on the val split (`vkyolo val --model` code, batch 2 x bs); cm
// (NULL: none) receives the images for the confusion matrix.
int train_validate(struct train_run *r, struct nn_metrics_result *res, double val_loss[3], struct nn_confusion *cm);
