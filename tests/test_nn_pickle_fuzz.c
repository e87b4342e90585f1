// Deterministic fuzzing of nn_checkpoint_load: mutated copies of gelan-t.pt (pickle byte flips,
// opcode and length-field injections, truncations, zip directory damage) and of its safetensors
// export (header damage). Every load must return 0 or a negative errno, never crash or hang, and
// the process must stay within a fixed memory budget.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "checkpoint.h"
#include "log.h"
#include "pt_emit.h"

#define SEED 20261127u
#define PEAK_RSS_LIMIT_KB (1024 * 1024) // 1 GiB: the loader's own limits are far below this
#define TIME_BUDGET_S 25.0              // stop early on a slow machine (VKYOLO_FUZZ_SECONDS overrides)

static uint32_t rng = SEED;
static unsigned long log_lines;
static char file_path[512];
static int file_fd = -1;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static size_t rnd_below(size_t n) { return n ? (size_t)(((uint64_t)rnd() << 32 | rnd()) % n) : 0; }

static void count_sink(enum gpu_log_level level, const char *msg, void *user)
{
	(void)level;
	(void)msg;
	(void)user;
	log_lines++;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int read_file(const char *path, uint8_t **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	*buf = malloc(*len);
	int ok = *buf && fread(*buf, 1, *len, f) == *len;
	fclose(f);
	return ok ? 0 : -1;
}

// Replaces the fuzz file's contents (an in-memory file when memfd works, else a temp file).
static int put_file(const uint8_t *buf, size_t len)
{
	if (ftruncate(file_fd, 0) < 0 || pwrite(file_fd, buf, len, 0) != (ssize_t)len)
		return -1;
	return 0;
}

// Writes buf[lo, hi) over the fuzz file at the same offset.
static int patch_file(const uint8_t *buf, size_t lo, size_t hi)
{
	return hi <= lo || pwrite(file_fd, buf + lo, hi - lo, (off_t)lo) == (ssize_t)(hi - lo) ? 0 : -1;
}

// One load of the current file: returns 1 when the result breaks the contract.
static int load_once(const char *what, size_t iter, int *accepted)
{
	struct nn_checkpoint *ck = NULL;
	int rc = nn_checkpoint_load(file_path, &ck);
	if (rc > 0 || (rc < 0 && ck) || (rc == 0 && (!ck || !ck->state))) {
		fprintf(stderr, "%s iteration %zu: rc %d with checkpoint %p\n", what, iter, rc, (void *)ck);
		return 1;
	}
	if (rc == 0) {
		// An accepted file must be internally consistent: every tensor's bytes match its shape.
		for (size_t i = 0; i < ck->state->count; i++) {
			const struct nn_tensor *t = &ck->state->items[i];
			if ((size_t)nn_tensor_numel(t) * nn_dtype_size(t->dtype) != t->nbytes) {
				fprintf(stderr, "%s iteration %zu: tensor %s has inconsistent size\n", what, iter, t->name);
				return 1;
			}
		}
		(*accepted)++;
	}
	nn_checkpoint_destroy(&ck);
	return 0;
}

// Mutations inside [lo, hi) of buf; [*mlo, *mhi) receives the changed range.
static void mutate(uint8_t *buf, size_t lo, size_t hi, int kind, size_t *mlo, size_t *mhi)
{
	static const uint8_t ops[] = { '(', ')', '.', '0', '1', '2', 'J', 'K', 'M', 'Q', 'R', 'X', 'a', 'b', 'c',
		                           'e', 'h', 'j', 'q', 'r', 's', 't', 'u', '}', ']', 0x80, 0x81, 0x85, 0x86,
		                           0x87, 0x88, 0x8a, 0x8c, 0x8d, 0x93, 0x94, 0x95, 0xff };
	size_t span = hi - lo;
	int n = 1 + (int)rnd_below(8);
	*mlo = hi;
	*mhi = lo;
	for (int k = 0; k < n; k++) {
		size_t at = lo + rnd_below(span);
		*mlo = at < *mlo ? at : *mlo;
		*mhi = at + 4 > *mhi ? (at + 4 < hi ? at + 4 : hi) : *mhi;
		switch (kind) {
		case 0: buf[at] = (uint8_t)rnd(); break;
		case 1: buf[at] = ops[rnd_below(sizeof(ops))]; break;
		default: { // a length or index field turned huge, negative or zero
			static const uint32_t vals[] = { 0xFFFFFFFFu, 0x7FFFFFFFu, 0x80000000u, 0, 0x10000u };
			uint32_t v = vals[rnd_below(5)];
			for (int b = 0; b < 4 && at + (size_t)b < hi; b++)
				buf[at + (size_t)b] = (uint8_t)(v >> (8 * b));
		}
		}
	}
}

static size_t pickle_span(const uint8_t *b, size_t len, size_t *start)
{
	// The first local header is data.pkl, as torch.save writes it; its size comes from the directory
	// record, so find the record whose name ends in /data.pkl.
	for (size_t i = len - 22; i-- > 0;) {
		if (b[i] == 'P' && b[i + 1] == 'K' && b[i + 2] == 1 && b[i + 3] == 2 && i + 46 < len) {
			size_t nlen = b[i + 28] | (size_t)b[i + 29] << 8;
			if (nlen >= 9 && i + 46 + nlen <= len && !memcmp(b + i + 46 + nlen - 9, "/data.pkl", 9)) {
				size_t size = b[i + 20] | (size_t)b[i + 21] << 8 | (size_t)b[i + 22] << 16 | (size_t)b[i + 23] << 24;
				size_t off = b[i + 42] | (size_t)b[i + 43] << 8 | (size_t)b[i + 44] << 16 | (size_t)b[i + 45] << 24;
				*start = off + 30 + (b[off + 26] | (size_t)b[off + 27] << 8) + (b[off + 28] | (size_t)b[off + 29] << 8);
				return size;
			}
		}
	}
	return 0;
}

static size_t directory_start(const uint8_t *b, size_t len)
{
	for (size_t i = len - 22 + 1; i-- > 0;)
		if (b[i] == 'P' && b[i + 1] == 'K' && b[i + 2] == 5 && b[i + 3] == 6)
			return b[i + 16] | (size_t)b[i + 17] << 8 | (size_t)b[i + 18] << 16 | (size_t)b[i + 19] << 24;
	return len;
}


// Writes a hand-made archive into the fuzz file.
static int put_archive(const struct emit *pkl, const void *storage, size_t storage_len)
{
	struct emit z;
	emit_archive(&z, pkl, storage, storage_len);
	int rc = put_file(z.p, z.n);
	free(z.p);
	return rc;
}

// {'model': M{_parameters: {'w': rebuild(DoubleStorage '0' numel 1, 0, (dim,), (0,))}}}
static void put_view_pickle(struct emit *e, uint64_t dim)
{
	e->n = 0;
	put_u8(e, 0x80);
	put_u8(e, 2);
	put_u8(e, '}');
	put_str(e, "model");
	put_param_module(e, dim);
	put_u8(e, 'b');
	put_u8(e, 's');
	put_u8(e, '.');
}

// Each case must fail with -EINVAL quickly: without the loader's budgets they would take
// exponential time (a module listed twice at each of 60 levels) or 16 GiB (a stride-0 view).
static int check_hostile(void)
{
	struct emit e = { 0 };
	double t0 = now_s();
	int fails = 0;
	put_u8(&e, 0x80);
	put_u8(&e, 2);
	put_module_start(&e); // level 0: no children
	put_u8(&e, 'b');
	put_u8(&e, 'q');
	put_u8(&e, 0);
	for (int k = 1; k <= 60; k++) {
		put_module_start(&e);
		put_str(&e, "_modules");
		put_u8(&e, '}');
		put_str(&e, "a");
		put_u8(&e, 'h');
		put_u8(&e, (uint8_t)(k - 1));
		put_u8(&e, 's');
		put_str(&e, "b");
		put_u8(&e, 'h');
		put_u8(&e, (uint8_t)(k - 1));
		put_u8(&e, 's');
		put_u8(&e, 's');
		put_u8(&e, 'b');
		put_u8(&e, 'q');
		put_u8(&e, (uint8_t)k);
	}
	put_u8(&e, '}');
	put_str(&e, "model");
	put_u8(&e, 'h');
	put_u8(&e, 60);
	put_u8(&e, 's');
	put_u8(&e, '.');
	double storage = 1.0;
	struct nn_checkpoint *ck = NULL;
	int rc = put_archive(&e, &storage, sizeof(storage)) < 0 ? 1 : nn_checkpoint_load(file_path, &ck);
	if (rc != -EINVAL || ck) {
		fprintf(stderr, "hostile module DAG: rc %d, want -EINVAL\n", rc);
		fails++;
	}
	nn_checkpoint_destroy(&ck);

	// A 16 GiB stride-0 view must be refused before any copy; the same archive with a 3-element
	// view loads, so the refusal is about the size.
	for (int sane = 0; sane < 2; sane++) {
		put_view_pickle(&e, sane ? 3 : (uint64_t)1 << 31);
		rc = put_archive(&e, &storage, sizeof(storage)) < 0 ? 1 : nn_checkpoint_load(file_path, &ck);
		const struct nn_tensor *w = ck ? nn_tensor_map_find(ck->state, "w") : NULL;
		if (sane ? (rc != 0 || !w || nn_tensor_numel(w) != 3 || nn_tensor_get_f32(w, 2) != 1.0f)
		         : (rc != -EINVAL || ck)) {
			fprintf(stderr, "stride-0 view (%s): rc %d\n", sane ? "3 elements" : "2^31 elements", rc);
			fails++;
		}
		nn_checkpoint_destroy(&ck);
	}
	free(e.p);
	if (now_s() - t0 > 5.0) {
		fprintf(stderr, "hostile cases took %.1f s\n", now_s() - t0);
		fails++;
	}
	return fails;
}

int main(void)
{
	char pt[512], tmpdir[256] = "";
	snprintf(pt, sizeof(pt), "%s/oracle/gelan-t.pt", test_shared_dir());
	uint8_t *base = NULL, *work = NULL;
	size_t len = 0;
	if (read_file(pt, &base, &len) < 0) {
		printf("%s missing: skipped\n", pt);
		return 77;
	}
	alarm(getenv("VKYOLO_FUZZ_SECONDS") ? 0 : 240); // a hang becomes a SIGALRM failure
	gpu_log_init(GPU_LOG_ERROR, count_sink, NULL);
	file_fd = memfd_create("vkyolo-fuzz", 0);
	if (file_fd >= 0) {
		snprintf(file_path, sizeof(file_path), "/proc/self/fd/%d", file_fd);
	} else {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_nn_pickle_fuzz.XXXXXX");
		if (!mkdtemp(tmpdir))
			return 1;
		snprintf(file_path, sizeof(file_path), "%s/fuzz.pt", tmpdir);
		file_fd = open(file_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	}
	size_t pk_start = 0, pk_len = pickle_span(base, len, &pk_start), dir = directory_start(base, len);
	work = malloc(len);
	if (file_fd < 0 || !work || !pk_len || pk_start + pk_len > len || dir >= len) {
		fprintf(stderr, "setup failed (pickle at %zu+%zu, directory at %zu)\n", pk_start, pk_len, dir);
		return 1;
	}
	int hostile_fails = check_hostile();
	// Sanity: the unmodified file loads, so the fuzz cases start from a valid archive.
	int fails = hostile_fails, accepted = 0, base_ok = 0;
	size_t iters = 0;
	put_file(base, len);
	fails += load_once("original", 0, &base_ok);
	if (base_ok != 1) {
		fprintf(stderr, "the unmodified checkpoint did not load\n");
		return 1;
	}
	double t0 = now_s(), budget = TIME_BUDGET_S;
	if (getenv("VKYOLO_FUZZ_SECONDS"))
		budget = atof(getenv("VKYOLO_FUZZ_SECONDS"));
	bool out_of_time = false;
	// The file holds base between iterations; each case patches a few bytes (or truncates) and
	// puts base back afterwards, so a 5 MB archive is not rewritten thousands of times.
	memcpy(work, base, len);
	for (size_t i = 0; i < 2000 && !fails && !out_of_time; i++, iters++) {
		size_t lo = 0, hi = 0, n = len;
		const char *what;
		int r = (int)(i % 10);
		if (r < 6) { // pickle bytes: random, opcodes, length fields
			mutate(work, pk_start, pk_start + pk_len, r % 3, &lo, &hi);
			what = "pickle";
		} else if (r < 8) { // truncation at a spread of lengths, the small ones included
			n = r == 6 ? rnd_below(len) : rnd_below(4096);
			what = "truncate";
		} else { // central directory and end record
			mutate(work, dir, len, r == 8 ? 0 : 2, &lo, &hi);
			what = "directory";
		}
		if (patch_file(work, lo, hi) < 0 || (n < len && ftruncate(file_fd, (off_t)n) < 0)) {
			perror("write fuzz file");
			return 1;
		}
		fails += load_once(what, i, &accepted);
		memcpy(work + lo, base + lo, hi - lo);
		if (patch_file(base, lo, hi) < 0 || (n < len && patch_file(base, n, len) < 0)) {
			perror("restore fuzz file");
			return 1;
		}
		out_of_time = now_s() - t0 > budget;
	}
	// The same on our safetensors export: header bytes flipped or length fields damaged.
	struct nn_checkpoint *ck = NULL;
	char st_path[600];
	snprintf(st_path, sizeof(st_path), "/tmp/test_nn_pickle_fuzz.%d.safetensors", (int)getpid());
	uint8_t *st = NULL;
	size_t st_len = 0;
	put_file(base, len);
	if (nn_checkpoint_load(file_path, &ck) < 0 || nn_checkpoint_save_safetensors(ck, st_path) < 0 ||
	    read_file(st_path, &st, &st_len) < 0) {
		fprintf(stderr, "could not make the safetensors base\n");
		return 1;
	}
	nn_checkpoint_destroy(&ck);
	unlink(st_path);
	size_t hlen = (size_t)st[0] | (size_t)st[1] << 8 | (size_t)st[2] << 16;
	work = realloc(work, st_len);
	for (size_t i = 0; i < 300 && !fails && !out_of_time; i++, iters++) {
		memcpy(work, st, st_len);
		size_t n = st_len, lo, hi;
		if (i % 4 == 3)
			n = rnd_below(8 + hlen + 64);
		else
			mutate(work, i % 4 == 2 ? 0 : 8, 8 + hlen, (int)(i % 4 == 2 ? 2 : i % 2), &lo, &hi);
		put_file(work, n);
		fails += load_once("safetensors", i, &accepted);
		out_of_time = now_s() - t0 > budget;
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("%zu mutated files in %.1f s, %d still loadable, %lu error messages, peak RSS %ld MiB%s\n", iters,
	       now_s() - t0, accepted, log_lines, ru.ru_maxrss / 1024, out_of_time ? " (time budget reached)" : "");
	if (ru.ru_maxrss > PEAK_RSS_LIMIT_KB) {
		fprintf(stderr, "peak RSS %ld KiB over the %d KiB budget\n", ru.ru_maxrss, PEAK_RSS_LIMIT_KB);
		fails++;
	}
	if (iters < 500) {
		fprintf(stderr, "only %zu iterations ran: too slow to be a meaningful fuzz run\n", iters);
		fails++;
	}
	close(file_fd);
	if (tmpdir[0]) {
		unlink(file_path);
		rmdir(tmpdir);
	}
	free(base);
	free(work);
	free(st);
	return fails ? 1 : 0;
}
