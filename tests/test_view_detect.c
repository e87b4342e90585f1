// `vkyolo view --headless --frames 30 --save-frames DIR` against `vkyolo detect` on the same
// frames: the first 30 frames of the horses video are written as PNG, detect annotates them, the
// viewer renders the video; every rendered frame must equal detect's annotated image pixel for
// pixel (same boxes, same labels), and every frame must carry overlays (gelan-t has random
// weights; --conf 0.05 makes boxes appear). Both run the GPU runner.
// argv[1]: the vkyolo binary.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view_util.h"

#include "check.h"

#define FRAMES 30
#define IMGSZ "160"
#define CONF "0.05"

int main(int argc, char **argv)
{
	char model[4096], video[4096], tmp[] = "/tmp/vkyolo_viewdet_XXXXXX", cmd[16384], a[4200], b[8500];
	if (argc < 2) {
		fprintf(stderr, "usage: test_view_detect VKYOLO\n");
		return 1;
	}
	if (vt_shared_inputs(model, video))
		return 77;
	snprintf(cmd, sizeof(cmd), "'%s' detect --help >/dev/null 2>&1", argv[1]);
	if (vt_sh(cmd)) {
		printf("skip: this vkyolo has no detect command yet\n");
		return 77;
	}
	CHECK(mkdtemp(tmp));
	// The raw frames, as the viewer's video source decodes them (tested in test_view_video).
	snprintf(a, sizeof(a), "%s/raw", tmp);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", a);
	CHECK(vt_sh(cmd) == 0);
	struct view_source *s = NULL;
	struct nn_image *raw[FRAMES] = { 0 };
	struct view_frame_info info;
	CHECK(view_source_open_video(video, &(struct view_source_params){ 0 }, &s) == 0);
	for (int k = 0; k < FRAMES; k++) {
		CHECK(view_source_read(s, &raw[k], &info) == 0 && info.index == k);
		snprintf(b, sizeof(b), "%s/frame_%06d.png", a, k);
		CHECK(nn_image_save(b, raw[k], 95) == 0);
	}
	view_source_close(&s);
	snprintf(cmd, sizeof(cmd), "'%s' -q detect --model '%s' --source '%s/raw' --imgsz " IMGSZ " --conf " CONF
	         " --project '%s' --name det --exist-ok", argv[1], model, tmp, tmp);
	CHECK(vt_sh(cmd) == 0);
	snprintf(cmd, sizeof(cmd), "'%s' -q view --headless --frames %d --model '%s' --source '%s' --imgsz " IMGSZ
	         " --conf " CONF " --save-frames '%s/view' --project '%s/runs'", argv[1], FRAMES, model, video, tmp, tmp);
	CHECK(vt_sh(cmd) == 0);
	int count;
	snprintf(a, sizeof(a), "%s/view", tmp);
	CHECK(vt_frames(a, &count, NULL) == FRAMES - 1 && count == FRAMES);
	size_t overlay_total = 0;
	for (int k = 0; k < FRAMES; k++) {
		struct nn_image *det = NULL, *view = NULL;
		snprintf(a, sizeof(a), "%s/det/frame_%06d.png", tmp, k);
		snprintf(b, sizeof(b), "%s/view/frame_%06d.png", tmp, k);
		CHECK(nn_image_load(a, &det) == 0 && nn_image_load(b, &view) == 0);
		CHECK(det->w == view->w && det->h == view->h && det->w == raw[k]->w && det->h == raw[k]->h);
		size_t n = (size_t)det->w * det->h * 3, diff = 0, overlay = 0, first = 0;
		for (size_t i = 0; i < n; i++) {
			if (det->data[i] != view->data[i] && !diff++)
				first = i;
			overlay += det->data[i] != raw[k]->data[i];
		}
		if (diff) {
			fprintf(stderr, "frame %d: %zu bytes differ from detect's image, first at pixel (%zu,%zu): %d vs %d\n", k,
			        diff, first / 3 % det->w, first / 3 / det->w, view->data[first], det->data[first]);
			return 1;
		}
		CHECK(overlay > 500);
		overlay_total += overlay;
		nn_image_destroy(&det);
		nn_image_destroy(&view);
		nn_image_destroy(&raw[k]);
	}
	printf("%d frames identical to detect's (%zu overlay bytes in all)\n", FRAMES, overlay_total);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (vt_sh(cmd))
		fprintf(stderr, "could not remove %s\n", tmp);
	printf("ok\n");
	return 0;
}
