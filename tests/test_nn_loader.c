// The batch loader on coco8: batches are byte-identical for 0 and 3 workers and across runs,
// epochs reshuffle, targets are well-formed and the number of boxes kept is plausible.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image.h"

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

// Rect shapes as the official formula, on a fake split (shapes need no pixels): sorted by h / w;
// val pad 0.5 turns 4:3 landscape into 512 x 672 at 640 (spec 7.5), training pad 0 into 480 x 640.
static int check_rect_shapes(void)
{
	struct nn_dataset_image im[5] = {
		{ .path = "a", .width = 640, .height = 480 }, { .path = "b", .width = 480, .height = 640 },
		{ .path = "c", .width = 640, .height = 480 }, { .path = "d", .width = 500, .height = 500 },
		{ .path = "e", .width = 427, .height = 640 },
	};
	struct nn_dataset_split split = { .images = im, .count = 5 };
	static const uint32_t want[2][3][2] = { { { 512, 672 }, { 672, 672 }, { 672, 448 } },
						{ { 480, 640 }, { 640, 640 }, { 640, 448 } } };
	for (int v = 0; v < 2; v++) {
		struct nn_loader *l = NULL;
		struct nn_loader_params p = { .split = &split, .imgsz = 640, .batch = 2, .rect = true,
					      .pad = v ? 0.0 : 0.5 };
		CHECKF(nn_loader_create(&p, &l) == 0, "rect create");
		for (size_t b = 0; b < 3; b++) {
			uint32_t h, w;
			CHECKF(nn_loader_batch_shape(l, b, &h, &w) == 0 && h == want[v][b][0] &&
				       w == want[v][b][1],
			       "rect pad %d batch %zu: %u x %u, want %u x %u", v ? 0 : 1, b, h, w,
			       want[v][b][0], want[v][b][1]);
		}
		nn_loader_destroy(&l);
	}
	return 0;
}

// Rect training on coco8: batch shapes from the loader, samples ordered by aspect ratio, bytes
// identical for 0 and 2 workers.
static int check_rect_coco8(const struct nn_dataset_split *split)
{
	uint8_t *first = NULL;
	size_t nfirst = 0;
	for (uint32_t workers = 0; workers <= 2; workers += 2) {
		struct nn_loader *l = NULL;
		struct nn_loader_params p = { .split = split, .imgsz = IMGSZ, .batch = BATCH,
					      .workers = workers, .seed = 5, .augment = true,
					      .rect = true };
		CHECKF(nn_loader_create(&p, &l) == 0 && nn_loader_epoch(l, 0, true) == 0, "rect create");
		struct run r = { 0 };
		double last_ar = 0;
		const struct nn_batch *b;
		while (nn_loader_next(l, &b) == 0 && b) {
			CHECKF(b->h % 32 == 0 && b->w % 32 == 0 && b->h <= IMGSZ && b->w <= IMGSZ &&
				       (b->h == IMGSZ || b->w == IMGSZ),
			       "rect batch %u: %u x %u", b->index, b->h, b->w);
			for (uint32_t k = 0; k < b->n; k++) {
				const struct nn_dataset_image *im = &split->images[b->indices[k]];
				double ar = (double)im->height / im->width;
				CHECKF(ar >= last_ar, "rect order: %g after %g", ar, last_ar);
				last_ar = ar;
			}
			if (!workers)
				printf("rect batch %u: %u images %u x %u, %zu targets\n", b->index, b->n, b->h,
				       b->w, b->ntargets);
			CHECKF(!append(&r, b->input_u8, (size_t)b->n * 3 * b->h * b->w) &&
				       !append(&r, b->targets, b->ntargets * 6 * sizeof(float)),
			       "oom");
		}
		nn_loader_destroy(&l);
		if (!workers) {
			first = r.bytes, nfirst = r.n;
		} else {
			CHECKF(r.n == nfirst && !memcmp(r.bytes, first, nfirst), "rect: workers differ");
			free(r.bytes);
		}
	}
	free(first);
	return 0;
}

// An epoch restarted half way gives the same first batch as a fresh one; a missing image makes
// nn_loader_next fail for its batch (with workers, the error travels back) instead of hanging.
static int check_restart_and_errors(const struct nn_dataset_split *split)
{
	struct nn_loader *l = NULL;
	struct nn_loader_params p = { .split = split, .imgsz = IMGSZ, .batch = 2, .workers = 2,
				      .seed = 9, .augment = true, .shuffle = true };
	size_t bytes = (size_t)2 * 3 * IMGSZ * IMGSZ;
	uint8_t *ref = malloc(bytes);
	const struct nn_batch *b;
	CHECKF(nn_loader_create(&p, &l) == 0, "restart: create");
	CHECKF(nn_loader_next(l, &b) < 0, "next before epoch must fail");
	CHECKF(nn_loader_epoch(l, 4, true) == 0 && nn_loader_next(l, &b) == 0 && b, "epoch 4");
	memcpy(ref, b->input_u8, bytes);
	char plot[64] = "/tmp/vkyolo_train_batchXXXXXX.jpg";
	int fd = mkstemps(plot, 4);
	CHECKF(fd >= 0, "mkstemps");
	close(fd);
	CHECKF(nn_batch_plot(b, NULL, 0, NULL, plot) == 0, "plot");
	struct nn_image *pim = NULL;
	CHECKF(nn_image_load(plot, &pim) == 0 && pim->w == 2 * IMGSZ && pim->h == 2 * IMGSZ,
	       "plot: %ux%u, want %dx%d", pim ? pim->w : 0, pim ? pim->h : 0, 2 * IMGSZ, 2 * IMGSZ);
	nn_image_destroy(&pim);
	remove(plot);
	CHECKF(nn_loader_epoch(l, 5, true) == 0 && nn_loader_next(l, &b) == 0 && b, "epoch 5");
	CHECKF(nn_loader_epoch(l, 4, true) == 0 && nn_loader_next(l, &b) == 0 && b, "epoch 4 again");
	CHECKF(!memcmp(ref, b->input_u8, bytes), "restarted epoch differs");
	nn_loader_destroy(&l);
	free(ref);

	struct nn_dataset_image im[2] = { split->images[0], split->images[1] };
	im[1].path = "/nonexistent/missing.jpg";
	struct nn_dataset_split bad = { .images = im, .count = 2 };
	p.split = &bad, p.batch = 1, p.shuffle = false;
	for (uint32_t workers = 0; workers <= 2; workers += 2) {
		p.workers = workers;
		CHECKF(nn_loader_create(&p, &l) == 0 && nn_loader_epoch(l, 0, false) == 0, "bad create");
		CHECKF(nn_loader_next(l, &b) == 0 && b, "bad split: first batch (workers %u)", workers);
		int rc = nn_loader_next(l, &b);
		CHECKF(rc < 0 && !b, "missing image: rc %d (workers %u)", rc, workers);
		nn_loader_destroy(&l);
	}
	return 0;
}

int main(void)
{
	if (check_rect_shapes())
		return 1;
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
	if (check_rect_coco8(split) || check_restart_and_errors(split))
		return 1;
	free(a.bytes);
	free(b.bytes);
	free(c.bytes);
	nn_dataset_split_destroy(&split);
	nn_dataset_destroy(&d);
	printf("ok\n");
	return 0;
}
