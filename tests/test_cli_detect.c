// `vkyolo detect` end to end on a real image (horses.jpg with the oracle gelan-t.pt): the
// annotated image and the label file are written, boxes are drawn where the labels say, and bad
// input (missing model, undecodable image, unknown option) gives a one-line error and the right
// exit code. argv[1]: the vkyolo executable.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "image.h"

static const char *exe;
static char tmp[] = "/tmp/vkyolo-cli-XXXXXX";

// Runs a shell command with output to tmp/out.txt; returns its exit status.
static int run(const char *args)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "'%s' %s > '%s/out.txt' 2>&1", exe, args, tmp);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int output_contains(const char *needle)
{
	char path[1100], buf[65536];
	snprintf(path, sizeof(path), "%s/out.txt", tmp);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

static int check_horses(void)
{
	char args[2048], path[1100];
	snprintf(args, sizeof(args), "detect --model '%s/oracle/gelan-t.pt' --source '%s/data/images/horses.jpg' "
	         "--imgsz 320 --conf 0.5 --project '%s' --name run --save-txt --save-conf",
	         test_shared_dir(), test_shared_dir(), tmp);
	CHECKF(run(args) == 0, "detect failed");
	CHECK(output_contains("horses.jpg: 224x320")); // H x W of the letterboxed input, as detect.py prints
	CHECK(output_contains("Results saved to"));

	struct nn_image *src = NULL, *out = NULL;
	snprintf(path, sizeof(path), "%s/data/images/horses.jpg", test_shared_dir());
	CHECK(nn_image_load(path, &src) == 0);
	snprintf(path, sizeof(path), "%s/run/horses.jpg", tmp);
	CHECKF(nn_image_load(path, &out) == 0, "no annotated image at %s", path);
	CHECK(out->w == src->w && out->h == src->h);

	// Every labelled box has its outline drawn: the pixels on the box's left edge differ clearly from
	// the source image (JPEG noise alone stays far below the threshold).
	snprintf(path, sizeof(path), "%s/run/labels/horses.txt", tmp);
	FILE *f = fopen(path, "r");
	CHECKF(f != NULL, "no label file %s", path);
	int cls, lines = 0, edges_ok = 0;
	float cx, cy, w, h, conf;
	while (fscanf(f, "%d %f %f %f %f %f", &cls, &cx, &cy, &w, &h, &conf) == 6) {
		lines++;
		CHECKF(cls >= 0 && cls < 80 && conf > 0.5f && conf <= 1 && w > 0 && h > 0 && w <= 1 && h <= 1,
		       "bad label line %d: %d %g %g %g %g %g", lines, cls, cx, cy, w, h, conf);
		int x = (int)((cx - w / 2) * src->w + 0.5f), y0 = (int)((cy - h / 2) * src->h), y1 = (int)((cy + h / 2) * src->h);
		if (x < 1 || x >= (int)src->w - 1)
			continue; // clipped to the border: nothing to see there
		int changed = 0, total = 0;
		for (int y = y0 < 0 ? 0 : y0; y < y1 && y < (int)src->h; y++, total++) {
			const uint8_t *a = src->data + ((size_t)y * src->w + x) * 3, *b = out->data + ((size_t)y * out->w + x) * 3;
			changed += abs(a[0] - b[0]) + abs(a[1] - b[1]) + abs(a[2] - b[2]) > 60;
		}
		edges_ok += total > 0 && changed * 2 > total;
	}
	fclose(f);
	CHECKF(lines > 0, "no detections written");
	CHECKF(edges_ok > 0, "no drawn box edge found for %d labels", lines);
	printf("horses.jpg: %d labels, %d box edges verified in the annotated image\n", lines, edges_ok);
	nn_image_destroy(&src);
	nn_image_destroy(&out);
	return 0;
}

static int check_errors(void)
{
	char args[2048], bad[1100];
	snprintf(args, sizeof(args), "detect --model /nonexistent/model.pt --source '%s/data/images/horses.jpg'",
	         test_shared_dir());
	CHECK(run(args) == 1);
	CHECK(output_contains("/nonexistent/model.pt"));

	snprintf(bad, sizeof(bad), "%s/broken.jpg", tmp);
	FILE *f = fopen(bad, "wb");
	CHECK(f != NULL);
	fputs("this is not a JPEG", f);
	fclose(f);
	snprintf(args, sizeof(args), "detect --model '%s/oracle/gelan-t.pt' --source '%s' --project '%s' --name bad "
	         "--imgsz 64", test_shared_dir(), bad, tmp);
	CHECK(run(args) == 1);
	CHECK(output_contains("broken.jpg"));

	CHECK(run("detect --model m.pt --source x.jpg --no-such-option") == 2);
	CHECK(run("detect --model m.pt --source x.jpg --imgsz 100") == 2);
	CHECK(run("no-such-command") == 2);
	CHECK(run("detect --help") == 0);
	return 0;
}

int main(int argc, char **argv)
{
	char path[1024];
	if (argc < 2)
		return 1;
	exe = argv[1];
	snprintf(path, sizeof(path), "%s/oracle/gelan-t.pt", test_shared_dir());
	if (access(path, R_OK) != 0) {
		printf("skip: %s not found (set VKYOLO_SHARED)\n", path);
		return 77;
	}
	if (!mkdtemp(tmp))
		return 1;
	int fails = check_horses();
	fails += check_errors();
	char cmd[1100];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fails++;
	printf("%s\n", fails ? "FAIL" : "ok");
	return fails ? 1 : 0;
}
