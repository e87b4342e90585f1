// Helpers of the viewer tests that run the vkyolo binary: a temporary folder, a shell command,
// PNG comparison and the independent detection pipeline (official pre/post-processing on the CPU
// reference executor).
#pragma once
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "draw.h"
#include "letterbox.h"
#include "model.h"
#include "nms.h"
#include "view_source.h"

#include "check.h"

// Paths of the shared gelan-t.pt and horses video (4096 bytes each). 77 (skip, message printed)
// when a file is missing, else 0.
static inline int vt_shared_inputs(char *model, char *video)
{
	const char *need[2] = { model, video };
	snprintf(model, 4096, "%s/oracle/gelan-t.pt", test_shared_dir());
	snprintf(video, 4096, "%s/data/video/horses_pan_640x424_15fps.mp4", test_shared_dir());
	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(need[i], "rb");
		if (!f) {
			printf("skip: %s not found (set VKYOLO_SHARED)\n", need[i]);
			return 77;
		}
		fclose(f);
	}
	return 0;
}

static inline int vt_sh(const char *cmd)
{
	printf("$ %s\n", cmd);
	fflush(stdout);
	int r = system(cmd);
	return r == -1 ? -1 : WIFEXITED(r) ? WEXITSTATUS(r) : 128;
}

// Frame k (0-based, counting on across loops like `view --loop`) of a video, decoded by the
// viewer's video source.
static inline int vt_video_frame(const char *path, int64_t k, struct nn_image **out)
{
	struct view_source *s = NULL;
	struct view_frame_info info;
	int ret = view_source_open_video(path, &(struct view_source_params){ .loop = true }, &s);
	for (int64_t i = 0; !ret && i <= k; i++) {
		nn_image_destroy(out);
		ret = view_source_read(s, out, &info);
	}
	view_source_close(&s);
	return ret;
}

// The largest NNNNNN among DIR/frame_NNNNNN.png, -1 when none; *count: how many there are;
// *first (optional): the smallest.
static inline long vt_frames(const char *dir, int *count, long *first)
{
	DIR *d = opendir(dir);
	long best = -1, least = -1;
	*count = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));) {
		long k;
		char tail[8];
		if (sscanf(e->d_name, "frame_%6ld.%4s", &k, tail) == 2 && !strcmp(tail, "png")) {
			(*count)++;
			best = k > best ? k : best;
			least = least < 0 || k < least ? k : least;
		}
	}
	closedir(d);
	if (first)
		*first = least;
	return best;
}

// Detections of img the way detect.py does it at imgsz with batch 1, on the CPU reference.
static inline int vt_detect_ref(const struct nn_model *m, const struct nn_image *img, uint32_t imgsz, float conf,
                                struct nn_det **d, uint32_t *n)
{
	struct nn_letterbox_params lp = { .new_w = imgsz, .new_h = imgsz, .auto_pad = true, .scaleup = true,
	                                  .stride = 32, .color = 114 };
	struct nn_letterbox lb;
	uint8_t *chw = NULL;
	struct nn_ref_outputs out = { 0 };
	int ret = nn_letterbox_image(img, &lp, &lb, &chw);
	if (ret)
		return ret;
	size_t count = (size_t)3 * lb.out_h * lb.out_w;
	float *x = malloc(count * sizeof(float));
	if (!x) {
		free(chw);
		return -1;
	}
	nn_u8_to_unit_f32(chw, count, x);
	ret = nn_model_forward_ref(m, 1, lb.out_h, lb.out_w, x, &out);
	if (!ret) {
		struct nn_nms_params np = { .conf_thres = conf, .iou_thres = 0.45f, .max_det = 1000 };
		ret = nn_nms(out.output, m->nc, out.a, &np, d, n);
	}
	if (!ret) {
		nn_scale_boxes(lb.out_w, lb.out_h, img->w, img->h, *d, *n);
		nn_round_boxes(*d, *n);
	}
	nn_ref_outputs_finish(&out);
	free(x);
	free(chw);
	return ret;
}
