// The validation loss of one batch (apps/val_loss.c).
#pragma once
#include <errno.h>
#include <stdint.h>

#include "dataset.h"
#include "model.h"
#include "runner.h"
#include "val_loader.h"
#include "valdata.h"

// r: the runner that just ran slot s's batch, created with keep_heads. Adds the batch's loss items
// (box, cls, dfl after the gains, as the official loss_items) to items. 0 or a negative errno.
int val_batch_loss(struct nn_runner *r, const struct nn_dataset_split *sp, const struct nn_val_plan *plan,
                   const struct val_slot *s, uint32_t nc, double items[3]);
// The same from the CPU reference forward of the batch (out computed with keep_heads).
int val_batch_loss_ref(const struct nn_ref_outputs *out, const struct nn_dataset_split *sp,
                       const struct nn_val_plan *plan, const struct val_slot *s, uint32_t nc, double items[3]);
