// detect outputs: label txt lines and order, COCO JSON text (ids, category map, rounding, repr),
// run-folder increments. Expected strings are worked by hand from the official scripts' formulas.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "detect_out.h"

#include "check.h"

static char tmp[256];

static int check_txt(void)
{
	struct nn_det d[2] = { { 10, 20, 110, 220, 0.87654321f, 17 }, { 0, 0, 640, 480, 0.25f, 0 } };
	char line[256];
	// cx 60/640, cy 120/480, w 100/640, h 200/480 = 0.416666..; %g keeps 6 significant digits
	CHECK(nn_yolo_txt_line(&d[0], 640, 480, true, line, sizeof(line)) > 0);
	CHECK(strcmp(line, "17 0.09375 0.25 0.15625 0.416667 0.876543") == 0);
	CHECK(nn_yolo_txt_line(&d[1], 640, 480, false, line, sizeof(line)) > 0);
	CHECK(strcmp(line, "0 0.5 0.5 1 1") == 0);
	CHECK(nn_yolo_txt_line(&d[0], 640, 480, true, line, 8) == -ENOSPC);
	char path[300];
	snprintf(path, sizeof(path), "%s/labels.txt", tmp);
	CHECK(nn_yolo_txt_append(path, d, 2, 640, 480, false) == 0);
	CHECK(nn_yolo_txt_append(path, d, 1, 640, 480, false) == 0);
	FILE *f = fopen(path, "r");
	CHECK(f);
	char all[512] = { 0 };
	size_t n = fread(all, 1, sizeof(all) - 1, f);
	fclose(f);
	CHECK(n > 0);
	// reversed(det): the weaker box first; the second call appends
	CHECK(strcmp(all, "0 0.5 0.5 1 1\n17 0.09375 0.25 0.15625 0.416667\n17 0.09375 0.25 0.15625 0.416667\n") == 0);
	unlink(path);
	return 0;
}

static int check_json(void)
{
	CHECK(nn_coco80_to_91(0) == 1 && nn_coco80_to_91(11) == 13 && nn_coco80_to_91(79) == 90);
	CHECK(nn_coco80_to_91(80) == -1 && nn_coco80_to_91(-1) == -1);
	int prev = 0;
	for (int i = 0; i < 80; i++) { // strictly increasing, within 1..90
		CHECK(nn_coco80_to_91(i) > prev && nn_coco80_to_91(i) <= 90);
		prev = nn_coco80_to_91(i);
	}
	struct nn_coco_json *js = NULL;
	CHECK(nn_coco_json_create(true, &js) == 0);
	CHECK(strcmp(nn_coco_json_text(js), "[]") == 0);
	// class 17 (horse) is COCO category 19. x = cx - w/2 = 10.5, y = 20.25, w = 99.625, h = 199.8125 -> round(.., 3) ties to even: 199.812
	struct nn_det a = { 10.5f, 20.25f, 110.125f, 220.0625f, 0.5f, 17 };
	struct nn_det b[2] = { { 0, 0, 1, 1, 0.00004f, 0 }, { 1.23456f, 2, 3, 4, 0.123456f, 2 } };
	CHECK(nn_coco_json_add(js, "/data/images/000000000139.jpg", &a, 1) == 0);
	CHECK(nn_coco_json_add(js, "x/bus.jpg", b, 2) == 0);
	CHECK(nn_coco_json_add(js, "x/empty.jpg", b, 0) == 0);
	const char *want = "[{\"image_id\": 139, \"category_id\": 19, \"bbox\": [10.5, 20.25, 99.625, 199.812], "
	                   "\"score\": 0.5}, {\"image_id\": \"bus\", \"category_id\": 1, \"bbox\": [0.0, 0.0, 1.0, "
	                   "1.0], \"score\": 4e-05}, {\"image_id\": \"bus\", \"category_id\": 3, \"bbox\": [1.235, "
	                   "2.0, 1.765, 2.0], \"score\": 0.12346}]";
	if (strcmp(nn_coco_json_text(js), want)) {
		fprintf(stderr, "got  %s\nwant %s\n", nn_coco_json_text(js), want);
		return 1;
	}
	char path[300];
	snprintf(path, sizeof(path), "%s/pred.json", tmp);
	CHECK(nn_coco_json_write(js, path) == 0);
	struct stat st;
	CHECK(stat(path, &st) == 0 && (size_t)st.st_size == strlen(want));
	unlink(path);
	nn_coco_json_destroy(&js);
	nn_coco_json_destroy(&js);
	// not COCO: category = class index; a quote in the stem is escaped
	CHECK(nn_coco_json_create(false, &js) == 0);
	CHECK(nn_coco_json_add(js, "a\"b.png", &a, 1) == 0);
	CHECK(strstr(nn_coco_json_text(js), "\"image_id\": \"a\\\"b\", \"category_id\": 17,"));
	nn_coco_json_destroy(&js);
	return 0;
}

static int check_runs(void)
{
	char base[300], *p = NULL;
	snprintf(base, sizeof(base), "%s/runs/detect/exp", tmp);
	CHECK(nn_increment_path(base, false, true, &p) == 0);
	CHECK(strcmp(p, base) == 0);
	free(p);
	CHECK(nn_increment_path(base, false, true, &p) == 0);
	CHECK(strlen(p) == strlen(base) + 1 && strcmp(p + strlen(base), "2") == 0);
	free(p);
	CHECK(nn_increment_path(base, false, false, &p) == 0);
	CHECK(strcmp(p + strlen(base), "3") == 0);
	struct stat st;
	CHECK(stat(p, &st) != 0); // not created without mkdir
	free(p);
	CHECK(nn_increment_path(base, true, true, &p) == 0); // exist_ok
	CHECK(strcmp(p, base) == 0);
	free(p);
	char file[320];
	snprintf(file, sizeof(file), "%s/a.txt", tmp);
	FILE *f = fopen(file, "w");
	CHECK(f);
	fclose(f);
	CHECK(nn_increment_path(file, false, false, &p) == 0);
	char want[330];
	snprintf(want, sizeof(want), "%s/a2.txt", tmp);
	CHECK(strcmp(p, want) == 0);
	free(p);
	unlink(file);
	CHECK(nn_mkdir_p(file) == 0 && nn_mkdir_p(file) == 0);
	const char *made[] = { "a.txt", "runs/detect/exp2", "runs/detect/exp", "runs/detect", "runs" };
	for (int i = 0; i < 5; i++)
		test_remove(tmp, made[i]);
	return 0;
}

int main(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/test_nn_detect_out.XXXXXX");
	CHECK(mkdtemp(tmp));
	int rc = check_txt() || check_json() || check_runs();
	rmdir(tmp);
	if (!rc)
		printf("detect_out: ok\n");
	return rc;
}
