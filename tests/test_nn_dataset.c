// Dataset reading: the shared coco128 / coco8 YAMLs resolve to the documented image, label file and
// box counts (../shared/data/README.md), image sizes come from headers with EXIF orientation 6/8
// swapping them, list files and corrupt labels behave as the official loader.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb_image_write.h>

#include "dataset.h"

static const char *shared_dir(void)
{
	const char *s = getenv("VKYOLO_SHARED");
	return s && *s ? s : "../shared";
}

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			printf("FAIL " __VA_ARGS__);                                               \
			printf("\n");                                                              \
			return 1;                                                                  \
		}                                                                                  \
	} while (0)

// Returns 0 pass, 1 fail, 77 skip.
static int check_coco128(void)
{
	char yaml[1024];
	struct stat st;
	snprintf(yaml, sizeof(yaml), "%s/data/coco128/coco128.yaml", shared_dir());
	if (stat(yaml, &st)) {
		printf("skip: %s not found (set VKYOLO_SHARED)\n", yaml);
		return 77;
	}
	struct nn_dataset *d = NULL;
	struct nn_dataset_split *s = NULL;
	char **paths = NULL;
	size_t n = 0;
	CHECK(nn_dataset_open(yaml, &d) == 0, "coco128: open");
	CHECK(d->nc == 80 && !strcmp(d->names[0], "person") && !strcmp(d->names[79], "toothbrush"),
	      "coco128: nc %d names[0] %s", d->nc, d->names[0]);
	CHECK(nn_dataset_images(d, NN_SPLIT_TRAIN, &paths, &n) == 0 && n == 128,
	      "coco128: train %zu images, want 128", n);
	for (size_t i = 1; i < n; i++)
		CHECK(strcmp(paths[i - 1], paths[i]) < 0, "coco128: images not sorted at %zu", i);
	nn_strv_free(paths, n);
	CHECK(nn_dataset_images(d, NN_SPLIT_TEST, &paths, &n) == -EINVAL, "coco128: test split");
	// README: 128 images, 126 label files (000000000250 and 000000000508 are background), 929
	// boxes, 0 malformed lines.
	CHECK(nn_dataset_split_load(d, NN_SPLIT_VAL, &s) == 0, "coco128: load val");
	CHECK(s->count == 128 && s->found == 126 && s->missing == 2 && s->nboxes == 929 &&
		      s->corrupt == 0 && s->duplicates == 0,
	      "coco128: %zu images, %zu label files, %zu missing, %zu boxes, %zu corrupt, %zu dups",
	      s->count, s->found, s->missing, s->nboxes, s->corrupt, s->duplicates);
	// Sizes from headers (`file` says 640x480 and the grayscale 000000000086.jpg is 512x640).
	for (size_t i = 0; i < s->count; i++) {
		const struct nn_dataset_image *im = &s->images[i];
		if (strstr(im->path, "/000000000009.jpg"))
			CHECK(im->width == 640 && im->height == 480, "coco128 009: %dx%d", im->width,
			      im->height);
		if (strstr(im->path, "/000000000086.jpg"))
			CHECK(im->width == 512 && im->height == 640, "coco128 086: %dx%d", im->width,
			      im->height);
		if (strstr(im->path, "/000000000250.jpg"))
			CHECK(im->count == 0, "coco128 250 is background");
	}
	printf("ok coco128: %zu images, %zu label files, %zu boxes, %d classes\n", s->count, s->found,
	       s->nboxes, d->nc);
	nn_dataset_split_destroy(&s);
	nn_dataset_destroy(&d);
	return 0;
}

static int check_coco8(void)
{
	char yaml[1024];
	snprintf(yaml, sizeof(yaml), "%s/data/coco8/coco8.yaml", shared_dir());
	struct nn_dataset *d = NULL;
	struct nn_dataset_split *tr = NULL, *va = NULL;
	CHECK(nn_dataset_open(yaml, &d) == 0, "coco8: open");
	CHECK(nn_dataset_split_load(d, NN_SPLIT_TRAIN, &tr) == 0 &&
		      nn_dataset_split_load(d, NN_SPLIT_VAL, &va) == 0,
	      "coco8: load");
	// 4 + 4 images; 13 and 17 label lines (wc -l of the label folders).
	CHECK(tr->count == 4 && va->count == 4 && tr->nboxes == 13 && va->nboxes == 17,
	      "coco8: train %zu/%zu val %zu/%zu", tr->count, tr->nboxes, va->count, va->nboxes);
	printf("ok coco8: train 4 images 13 boxes, val 4 images 17 boxes\n");
	nn_dataset_split_destroy(&tr);
	nn_dataset_split_destroy(&va);
	nn_dataset_destroy(&d);
	return 0;
}

struct membuf {
	unsigned char *p;
	size_t n;
};

static void mem_write(void *ctx, void *data, int size)
{
	struct membuf *m = ctx;
	unsigned char *q = realloc(m->p, m->n + (size_t)size);
	if (!q)
		return;
	memcpy(q + m->n, data, (size_t)size);
	m->p = q;
	m->n += (size_t)size;
}

// A 16x12 JPEG with an Exif APP1 (big-endian TIFF, IFD0 with Orientation) after SOI.
static int write_jpeg(const char *path, int orientation)
{
	unsigned char px[16 * 12 * 3];
	for (size_t i = 0; i < sizeof(px); i++)
		px[i] = (unsigned char)(i * 7);
	struct membuf m = {0};
	if (!stbi_write_jpg_to_func(mem_write, &m, 16, 12, 3, px, 90) || m.n < 2)
		return -1;
	const unsigned char app1[] = {
		0xFF, 0xE1, 0x00, 0x22, 'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8, // TIFF
		0, 1,						       // 1 entry
		0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, (unsigned char)orientation, 0, 0,   // Orientation
		0, 0, 0, 0,						     // next IFD
	};
	FILE *f = fopen(path, "wb");
	int rc = f && fwrite(m.p, 1, 2, f) == 2 && fwrite(app1, 1, sizeof(app1), f) == sizeof(app1) &&
			 fwrite(m.p + 2, 1, m.n - 2, f) == m.n - 2
		     ? 0
		     : -1;
	if (f)
		fclose(f);
	free(m.p);
	return rc;
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static int check_synthetic(void)
{
	char dir[] = "/tmp/vkyolo_test_dataset_XXXXXX", p[512];
	CHECK(mkdtemp(dir), "mkdtemp");
	snprintf(p, sizeof(p), "%s/ds", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/ds/images", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/ds/labels", dir);
	mkdir(p, 0755);
	// a.jpg: orientation 6 (w/h swapped), b.jpg: 3 (not swapped), c.jpg: corrupt label,
	// d.png.txt: not an image.
	snprintf(p, sizeof(p), "%s/ds/images/a.jpg", dir);
	CHECK(write_jpeg(p, 6) == 0, "write a.jpg");
	int w = 0, h = 0;
	CHECK(nn_exif_orientation(p) == 6 && nn_image_size(p, &w, &h) == 0 && w == 12 && h == 16,
	      "exif 6: orientation %d size %dx%d, want 12x16", nn_exif_orientation(p), w, h);
	snprintf(p, sizeof(p), "%s/ds/images/b.jpg", dir);
	CHECK(write_jpeg(p, 3) == 0, "write b.jpg");
	CHECK(nn_image_size(p, &w, &h) == 0 && w == 16 && h == 12, "exif 3: %dx%d", w, h);
	snprintf(p, sizeof(p), "%s/ds/images/c.jpg", dir);
	CHECK(write_jpeg(p, 1) == 0, "write c.jpg");
	snprintf(p, sizeof(p), "%s/ds/labels/a.txt", dir);
	CHECK(write_text(p, "1 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.1 0.1\n") == 0, "a.txt");
	snprintf(p, sizeof(p), "%s/ds/labels/c.txt", dir);
	CHECK(write_text(p, "2 0.5 0.5 0.2 0.2\n") == 0, "c.txt"); // class 2 >= nc 2: corrupt
	snprintf(p, sizeof(p), "%s/ds/list.txt", dir);
	CHECK(write_text(p, "./images/c.jpg\n./images/a.jpg\n./images/notes.md\n") == 0, "list");
	snprintf(p, sizeof(p), "%s/data.yaml", dir);
	CHECK(write_text(p, "path: ds\ntrain: [images]\nval: list.txt\ntest: missing\n"
			    "names: [cat, dog]\n") == 0,
	      "yaml");
	struct nn_dataset *d = NULL;
	struct nn_dataset_split *s = NULL;
	char **paths = NULL;
	size_t n = 0;
	CHECK(nn_dataset_open(p, &d) == 0 && d->nc == 2 && !strcmp(d->names[1], "dog"), "open yaml");
	CHECK(nn_dataset_images(d, NN_SPLIT_TRAIN, &paths, &n) == 0 && n == 3, "train %zu", n);
	nn_strv_free(paths, n);
	CHECK(nn_dataset_images(d, NN_SPLIT_TEST, &paths, &n) == -ENOENT, "missing test folder");
	CHECK(nn_dataset_split_load(d, NN_SPLIT_VAL, &s) == 0, "load val");
	// val = list.txt: c.jpg (corrupt, skipped) and a.jpg (3 rows, 1 duplicate), sorted.
	CHECK(s->count == 1 && s->corrupt == 1 && s->duplicates == 1 && s->nboxes == 2 &&
		      strstr(s->images[0].path, "/ds/images/a.jpg") && s->images[0].width == 12 &&
		      s->images[0].height == 16 && s->images[0].labels[0].cls == 0,
	      "val: %zu images %zu corrupt %zu dups %zu boxes", s->count, s->corrupt, s->duplicates,
	      s->nboxes);
	nn_dataset_split_destroy(&s);
	nn_dataset_destroy(&d);
	const char *names[] = {"ds/images/a.jpg", "ds/images/b.jpg", "ds/images/c.jpg",
			       "ds/labels/a.txt", "ds/labels/c.txt", "ds/list.txt", "data.yaml",
			       "ds/images", "ds/labels", "ds"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		i < 7 ? unlink(p) : rmdir(p);
	}
	rmdir(dir);
	printf("ok synthetic: exif 6 swaps, list file, missing folder, corrupt and duplicate labels\n");
	return 0;
}

// Loads split 'train' of yaml into a fresh split and compares it with ref (when given).
static int load_cmp(const char *yaml, const struct nn_dataset_split *ref, struct nn_dataset_split **out)
{
	struct nn_dataset *d = NULL;
	CHECK(nn_dataset_open(yaml, &d) == 0, "open %s", yaml);
	int rc = nn_dataset_split_load(d, NN_SPLIT_TRAIN, out);
	nn_dataset_destroy(&d);
	CHECK(rc == 0, "load %s: %d", yaml, rc);
	const struct nn_dataset_split *s = *out;
	if (!ref)
		return 0;
	CHECK(s->count == ref->count && s->found == ref->found && s->missing == ref->missing && s->empty == ref->empty &&
	          s->corrupt == ref->corrupt && s->duplicates == ref->duplicates && s->nboxes == ref->nboxes,
	      "counts differ from the scan's");
	for (size_t i = 0; i < s->count; i++) {
		const struct nn_dataset_image *a = &s->images[i], *b = &ref->images[i];
		CHECK(!strcmp(a->path, b->path) && a->width == b->width && a->height == b->height && a->count == b->count &&
		          (!a->count || !memcmp(a->labels, b->labels, a->count * sizeof(*a->labels))),
		      "image %zu differs from the scan's", i);
	}
	return 0;
}

// The scan cache: written by the first load, used by the second (same result, nothing opened),
// invalidated by a changed label file, a damaged cache is rescanned and rewritten, and
// VKYOLO_SCAN_CACHE=0 turns it off.
static int check_scan_cache(void)
{
	char dir[] = "/tmp/vkyolo_test_scancache_XXXXXX", p[512], yaml[512], cache[512];
	CHECK(mkdtemp(dir), "mkdtemp");
	const char *sub[] = { "ds", "ds/images", "ds/labels" };
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, sub[i]);
		mkdir(p, 0755);
	}
	const char *img[] = { "a", "b", "c" }; // a: two boxes, b: no label file, c: class 5 >= nc (corrupt)
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/ds/images/%s.jpg", dir, img[i]);
		CHECK(write_jpeg(p, i == 0 ? 6 : 1) == 0, "write %s", p);
	}
	snprintf(p, sizeof(p), "%s/ds/labels/a.txt", dir);
	CHECK(write_text(p, "1 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.1 0.1\n") == 0, "a.txt");
	snprintf(p, sizeof(p), "%s/ds/labels/c.txt", dir);
	CHECK(write_text(p, "5 0.5 0.5 0.2 0.2\n") == 0, "c.txt");
	snprintf(yaml, sizeof(yaml), "%s/data.yaml", dir);
	CHECK(write_text(yaml, "path: ds\ntrain: images\nval: images\nnames: [cat, dog]\n") == 0, "yaml");
	snprintf(cache, sizeof(cache), "%s/ds/labels.vkyolo.cache", dir);
	setenv("VKYOLO_SCAN_CACHE", "1", 1);
	struct nn_dataset_split *scan = NULL, *s = NULL;
	struct stat st;
	int fail = load_cmp(yaml, NULL, &scan);
	if (!fail)
		CHECK(!scan->from_cache && scan->count == 2 && scan->corrupt == 1 && scan->missing == 1 &&
		          scan->nboxes == 2 && stat(cache, &st) == 0,
		      "first load: from cache %d, %zu images, %zu corrupt, cache written %d", scan->from_cache, scan->count,
		      scan->corrupt, stat(cache, &st) == 0);
	fail = fail || load_cmp(yaml, scan, &s);
	if (!fail)
		CHECK(s->from_cache, "second load did not use the cache");
	nn_dataset_split_destroy(&s);
	// a changed label file: rescanned, one more box; then cached again
	snprintf(p, sizeof(p), "%s/ds/labels/a.txt", dir);
	CHECK(write_text(p, "1 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.1 0.1\n0 0.7 0.7 0.1 0.1\n") == 0, "a.txt");
	fail = fail || load_cmp(yaml, NULL, &s);
	if (!fail)
		CHECK(!s->from_cache && s->nboxes == 3, "after a label change: from cache %d, %zu boxes", s->from_cache,
		      s->nboxes);
	nn_dataset_split_destroy(&s);
	nn_dataset_split_destroy(&scan);
	fail = fail || load_cmp(yaml, NULL, &scan) || load_cmp(yaml, scan, &s);
	if (!fail)
		CHECK(s->from_cache && s->nboxes == 3, "cache not used after the rescan");
	nn_dataset_split_destroy(&s);
	// a damaged cache: ignored, rescanned, rewritten
	CHECK(truncate(cache, 40) == 0, "truncate");
	fail = fail || load_cmp(yaml, scan, &s);
	if (!fail)
		CHECK(!s->from_cache, "a truncated cache was used");
	nn_dataset_split_destroy(&s);
	fail = fail || load_cmp(yaml, scan, &s);
	if (!fail)
		CHECK(s->from_cache, "the cache was not rewritten after a damaged one");
	nn_dataset_split_destroy(&s);
	setenv("VKYOLO_SCAN_CACHE", "0", 1);
	fail = fail || load_cmp(yaml, scan, &s);
	if (!fail)
		CHECK(!s->from_cache, "VKYOLO_SCAN_CACHE=0 still used the cache");
	nn_dataset_split_destroy(&s);
	nn_dataset_split_destroy(&scan);
	snprintf(p, sizeof(p), "rm -rf '%s'", dir);
	if (!fail && system(p) != 0)
		printf("could not remove %s\n", dir);
	if (!fail)
		printf("ok scan cache: written, reused with the same result, invalidated by a label change, damaged one "
		       "rescanned, off with VKYOLO_SCAN_CACHE=0\n");
	return fail;
}

int main(void)
{
	int fail = check_synthetic() | check_scan_cache();
	int r = check_coco128();
	if (r == 77)
		return fail ? 1 : 77;
	fail |= r;
	fail |= check_coco8();
	return fail ? 1 : 0;
}
