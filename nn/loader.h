// The training batch loader: per-epoch shuffled order, official augmentation per sample
// (nn/augment.h), batches of [B, 3, S, S] u8 and (image, class, cx, cy, w, h) targets, prefetched
// by worker threads. Every sample is seeded from (seed, epoch, position in the epoch), so the
// bytes of a batch do not depend on the number of workers nor on thread timing.
// Not thread-safe: one thread calls nn_loader_*; the workers are internal.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "hyp.h"

struct nn_loader; // opaque

struct nn_loader_params {
	const struct nn_dataset_split *split; // borrowed; must outlive the loader
	const struct nn_hyp *hyp;	      // copied; NULL = scratch-high defaults
	uint32_t imgsz;			      // S, a multiple of 32
	uint32_t batch;			      // images per batch (the last batch may be smaller)
	uint32_t workers;		      // threads; 0 = samples made inside nn_loader_next
	uint64_t seed;
	bool augment;	// training augmentations (false: letterbox only, like the val path)
	bool shuffle;	// a new permutation every epoch (official DataLoader shuffle=True)
	bool cache_ram; // keep every image resized to long side S in memory (--cache ram)
	// Rectangular batches (--rect): images ordered by aspect ratio h/w, no shuffle, no mosaic,
	// each batch letterboxed to its own shape ceil(shape * S / 32 + pad) * 32 (official pad: 0.0
	// for training, 0.5 for validation).
	bool rect;
	double pad;
};

// One batch. Borrowed from the loader, valid until the next nn_loader_next / nn_loader_epoch /
// nn_loader_destroy.
struct nn_batch {
	uint32_t epoch, index; // epoch and batch number within it
	uint32_t n, h, w;      // images in this batch and their size (h, w < S possible with rect)
	const uint8_t *input_u8; // [n, 3, h, w] RGB
	const float *targets;	 // [ntargets, 6]: image index in batch, class, cx, cy, w, h (0..1)
	size_t ntargets;
	const size_t *indices; // [n] split image indices
};

// -EINVAL (empty split, batch 0, imgsz not a positive multiple of 32), -ENOMEM, errors of image
// loading when cache_ram is set, -EAGAIN when a thread cannot be started.
int nn_loader_create(const struct nn_loader_params *p, struct nn_loader **out);
// Stops the workers; accepts &NULL and clears *l.
void nn_loader_destroy(struct nn_loader **l);
// Batches per epoch: ceil(images / batch).
size_t nn_loader_batches(const struct nn_loader *l);
struct nn_font;
// Saves the batch as the official train_batch*.jpg: up to 16 images in a grid (scaled to <= 1920
// px), white background, targets as boxes with class names (font may be NULL: boxes only).
// -ENOMEM, -EIO, -EINVAL (extension) from nn_image_save.
int nn_batch_plot(const struct nn_batch *b, const char *const *names, uint32_t n_names,
		  const struct nn_font *font, const char *path);

// The (h, w) of batch b (S x S unless rect). -EINVAL when b is out of range.
int nn_loader_batch_shape(const struct nn_loader *l, size_t b, uint32_t *h, uint32_t *w);
// Starts an epoch (abandoning what is left of the previous one): permutation drawn from
// (seed, epoch), workers start prefetching. mosaic false = the close_mosaic epochs (official:
// mosaic = epoch < epochs - close_mosaic when close_mosaic > 0).
int nn_loader_epoch(struct nn_loader *l, uint32_t epoch, bool mosaic);
// The next batch of the epoch, or *out = NULL when the epoch is over. Errors of a sample (image
// unreadable: -EIO / -ENOENT / -EINVAL, -ENOMEM) are returned for the batch holding it.
int nn_loader_next(struct nn_loader *l, const struct nn_batch **out);
