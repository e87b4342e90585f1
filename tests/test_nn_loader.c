// The batch loader on coco8: batches are byte-identical for 0 and 3 workers and across runs,
// epochs reshuffle, targets are well-formed and the number of boxes kept is plausible.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "check.h"
#include "loader.h"


enum { IMGSZ = 256, BATCH = 3, EPOCHS = 3 };

// Everything one run produced, concatenated: pixels, targets, indices.
struct run {
	uint8_t *bytes;
	size_t n, cap;
	size_t boxes[EPOCHS], images[EPOCHS];
	size_t first_index[EPOCHS][8];
	double seconds;
};

static int append(struct run *r, const void *p, size_t n)
{
	if (r->n + n > r->cap) {
		size_t cap = (r->n + n) * 2;
		uint8_t *b = realloc(r->bytes, cap);
		if (!b)
			return 1;
		r->bytes = b, r->cap = cap;
	}
	memcpy(r->bytes + r->n, p, n);
	r->n += n;
	return 0;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int run_loader(const struct nn_dataset_split *split, uint32_t workers, bool close_mosaic,
		      struct run *r)
{
	struct nn_loader *l = NULL;
	struct nn_loader_params p = { .split = split, .imgsz = IMGSZ, .batch = BATCH,
				      .workers = workers, .seed = 1234, .augment = true,
				      .shuffle = true };
	memset(r, 0, sizeof(*r));
	double t0 = now();
	CHECKF(nn_loader_create(&p, &l) == 0, "loader create (workers %u)", workers);
	CHECKF(nn_loader_batches(l) == (split->count + BATCH - 1) / BATCH, "batches %zu",
	      nn_loader_batches(l));
	for (uint32_t e = 0; e < EPOCHS; e++) {
		CHECKF(nn_loader_epoch(l, e, !(close_mosaic && e == EPOCHS - 1)) == 0, "epoch %u", e);
		const struct nn_batch *b;
		uint32_t nb = 0;
		size_t pos = 0;
		for (;;) {
			int rc = nn_loader_next(l, &b);
			CHECKF(rc == 0, "next: rc %d", rc);
			if (!b)
				break;
			CHECKF(b->index == nb && b->epoch == e && b->h == IMGSZ && b->w == IMGSZ,
			      "batch %u header", nb);
			for (size_t t = 0; t < b->ntargets; t++) {
				const float *row = b->targets + 6 * t;
				CHECKF(row[0] >= 0 && row[0] < b->n && row[1] >= 0 && row[1] < 80 &&
					      row[2] >= 0 && row[2] <= 1 && row[3] >= 0 && row[3] <= 1 &&
					      row[4] > 0 && row[4] <= 1 && row[5] > 0 && row[5] <= 1,
				      "epoch %u batch %u target %zu: %g %g %g %g %g %g", e, nb, t, row[0],
				      row[1], row[2], row[3], row[4], row[5]);
				CHECKF(t == 0 || row[0] >= row[-6], "targets not grouped by image");
			}
			for (uint32_t k = 0; k < b->n && pos < 8; k++)
				r->first_index[e][pos++] = b->indices[k];
			r->boxes[e] += b->ntargets;
			r->images[e] += b->n;
			CHECKF(!append(r, b->input_u8, (size_t)b->n * 3 * IMGSZ * IMGSZ) &&
				      !append(r, b->targets, b->ntargets * 6 * sizeof(float)) &&
				      !append(r, b->indices, b->n * sizeof(size_t)),
			      "out of memory");
			nb++;
		}
		CHECKF(nb == nn_loader_batches(l) && r->images[e] == split->count,
		      "epoch %u: %u batches, %zu images", e, nb, r->images[e]);
	}
	nn_loader_destroy(&l);
	CHECKF(l == NULL, "destroy clears");
	r->seconds = now() - t0;
	return 0;
}

int main(void)
{
	char yaml[1024];
	struct stat st;
	snprintf(yaml, sizeof(yaml), "%s/data/coco8/coco8.yaml", test_shared_dir());
	if (stat(yaml, &st)) {
		printf("skip: %s not found (set VKYOLO_SHARED)\n", yaml);
		return 77;
	}
	struct nn_dataset *d = NULL;
	struct nn_dataset_split *split = NULL;
	CHECKF(nn_dataset_open(yaml, &d) == 0 && nn_dataset_split_load(d, NN_SPLIT_TRAIN, &split) == 0,
	      "coco8 open");
	CHECKF(split->count == 4 && split->nboxes == 13, "coco8 train: %zu images %zu boxes",
	      split->count, split->nboxes);
	struct run a, b, c;
	if (run_loader(split, 0, true, &a) || run_loader(split, 3, true, &b) ||
	    run_loader(split, 0, true, &c))
		return 1;
	printf("coco8 train, %d epochs (last without mosaic), imgsz %d, batch %d: %zu bytes; "
	       "workers 0: %.3f s, workers 3: %.3f s\n", EPOCHS, IMGSZ, BATCH, a.n, a.seconds,
	       b.seconds);
	// Byte identity: every sample is seeded from (seed, epoch, position), never from a thread.
	CHECKF(a.n == b.n && !memcmp(a.bytes, b.bytes, a.n), "workers 0 vs 3 differ (%zu vs %zu bytes)",
	      a.n, b.n);
	CHECKF(a.n == c.n && !memcmp(a.bytes, c.bytes, a.n), "two runs differ");
	bool reshuffled = false;
	for (int e = 1; e < EPOCHS; e++)
		reshuffled |= memcmp(a.first_index[0], a.first_index[e], 4 * sizeof(size_t)) != 0;
	CHECKF(reshuffled, "the order is the same every epoch");
	for (int e = 0; e < EPOCHS; e++)
		printf("epoch %d: %zu boxes over %zu images (dataset: %zu over %zu); order %zu %zu %zu %zu\n",
		       e, a.boxes[e], a.images[e], split->nboxes, split->count, a.first_index[e][0],
		       a.first_index[e][1], a.first_index[e][2], a.first_index[e][3]);
	// Plausibility: a mosaic shows four images (~4 x 13/4 boxes) of which the s x s crop and the
	// [0.1, 1.9] scale keep part, plus mixup 15%: between 1 and 4 x the dataset's 13 per epoch.
	// Letterbox epochs keep nearly every box: 0.6 .. 1.0 x 13 (translate / scale can crop).
	for (int e = 0; e < EPOCHS - 1; e++)
		CHECKF(a.boxes[e] >= 13 && a.boxes[e] <= 52, "mosaic epoch %d: %zu boxes", e, a.boxes[e]);
	CHECKF(a.boxes[EPOCHS - 1] >= 8 && a.boxes[EPOCHS - 1] <= 13, "letterbox epoch: %zu boxes",
	      a.boxes[EPOCHS - 1]);
	free(a.bytes);
	free(b.bytes);
	free(c.bytes);
	nn_dataset_split_destroy(&split);
	nn_dataset_destroy(&d);
	printf("ok\n");
	return 0;
}
