// The image side of `vkyolo val --model`: a background thread fills batch slots (two, so one is
// loaded while the GPU runs the other) with letterboxed inputs from nn/valdata, several images
// at a time; plus the small work-sharing helper used for the per-image NMS as well.
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nn_dataset_split;
struct nn_val_plan;
struct nn_val_geom;

// One loaded batch. Valid from val_loader_get until val_loader_release.
struct val_slot {
	uint8_t *input;		  // [plan batch, 3, h, w]; a short batch repeats its last image
	size_t cap;
	struct nn_val_geom *geom; // [nb]
	uint32_t index, nb, h, w; // batch index, real images, shape
	double ms_load;		  // load time summed over its images
	int rc;
	bool full;
};

struct val_loader;

// workers 0: batches are loaded on the caller's thread inside val_loader_get; N > 0: one
// background thread loads ahead, with N - 1 helpers per batch. The split and plan are borrowed.
// -ENOMEM.
int val_loader_create(const struct nn_dataset_split *sp, const struct nn_val_plan *plan,
		      uint32_t imgsz, uint32_t workers, struct val_loader **out);
// Batches must be taken in order 0, 1, ... and released before taking the one two further.
// *wait_ms accumulates the time spent waiting. Returns the batch's load error, if any.
int val_loader_get(struct val_loader *l, uint32_t b, struct val_slot **out, double *wait_ms);
void val_loader_release(struct val_loader *l, struct val_slot *s);
// Stops and joins the background thread. Accepts &NULL.
void val_loader_destroy(struct val_loader **l);

// `count` independent items run by several threads: each takes the next index, the first error
// stops the rest, ms sums the items' run times. Set item, ctx and count, then start and join.
struct val_work {
	int (*item)(void *ctx, uint32_t i);
	void *ctx;
	uint32_t count;
	atomic_uint next;
	atomic_int rc;
	double ms;
	pthread_mutex_t mu;
	pthread_t th[64];
	uint32_t nth;
	bool started;
};
// Starts `threads` threads (at most 64; fewer when they cannot be created); with `inline_too`
// the caller's thread also works until the items run out before this returns. 0 threads and no
// inline_too: the caller still runs everything here.
void val_work_start(struct val_work *w, uint32_t threads, bool inline_too);
// Waits for the threads; returns the first item error (0 when none). Harmless when not started.
int val_work_join(struct val_work *w);
