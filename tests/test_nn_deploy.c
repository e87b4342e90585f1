// `convert --deploy`: yolov9-c-quarter.pt re-parameterised by nn_checkpoint_deploy must equal the
// official conversion gelan-c-quarter-converted.pt: same architecture rows, same tensor names in
// the same order, bit-identical values (the conversion only renames and drops tensors).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "deploy.h"
#include "log.h"

static int rows_equal(const struct nn_value *a, const struct nn_value *b, const char *part)
{
	const struct nn_value *la = nn_value_dict_get(a, part), *lb = nn_value_dict_get(b, part);
	int fails = 0;
	if (!la || !lb || nn_value_len(la) != nn_value_len(lb)) {
		printf("%s: %zu rows, want %zu\n", part, la ? nn_value_len(la) : 0, lb ? nn_value_len(lb) : 0);
		return 1;
	}
	for (size_t i = 0; i < nn_value_len(la); i++) {
		char *ja = nn_value_to_json(nn_value_list_at(la, i)), *jb = nn_value_to_json(nn_value_list_at(lb, i));
		if (!ja || !jb || strcmp(ja, jb)) {
			printf("%s row %zu: %s, want %s\n", part, i, ja ? ja : "?", jb ? jb : "?");
			fails++;
		}
		free(ja);
		free(jb);
	}
	return fails;
}

int main(void)
{
	char src_path[1024], want_path[1024];
	struct nn_checkpoint *src = NULL, *want = NULL, *got = NULL;
	int fails = 0;

	gpu_log_init(GPU_LOG_WARN, NULL, NULL);
	snprintf(src_path, sizeof(src_path), "%s/oracle/yolov9-c-quarter.pt", test_shared_dir());
	snprintf(want_path, sizeof(want_path), "%s/oracle/gelan-c-quarter-converted.pt", test_shared_dir());
	FILE *f = fopen(src_path, "rb");
	if (!f) {
		printf("skip: %s not found (set VKYOLO_SHARED to the shared oracle folder)\n", src_path);
		return 77;
	}
	fclose(f);
	if (nn_checkpoint_load(src_path, &src) || nn_checkpoint_load(want_path, &want)) {
		printf("FAIL: cannot load the oracle checkpoints\n");
		return 1;
	}
	if (nn_checkpoint_deploy(src, &got)) {
		printf("FAIL: deploy failed\n");
		return 1;
	}
	fails += rows_equal(got->arch, want->arch, "backbone");
	fails += rows_equal(got->arch, want->arch, "head");
	if (got->state->count != want->state->count) {
		printf("state: %zu tensors, want %zu\n", got->state->count, want->state->count);
		fails++;
	}
	size_t n = got->state->count < want->state->count ? got->state->count : want->state->count;
	for (size_t i = 0; i < n; i++) {
		const struct nn_tensor *g = &got->state->items[i], *w = &want->state->items[i];
		if (strcmp(g->name, w->name) || g->dtype != w->dtype || g->nbytes != w->nbytes ||
		    memcmp(g->data, w->data, g->nbytes)) {
			printf("tensor %zu: %s (%zu bytes) differs from %s (%zu bytes)\n", i, g->name, g->nbytes, w->name,
			       w->nbytes);
			if (++fails > 10)
				break;
		}
	}
	// A model that is already deployable is refused with a clear error.
	struct nn_checkpoint *again = NULL;
	gpu_log_init(GPU_LOG_ERROR, NULL, NULL);
	if (nn_checkpoint_deploy(want, &again) != -EINVAL || again) {
		printf("deploying a GELAN model did not fail cleanly\n");
		fails++;
	}
	printf("deployed %zu tensors, %zu layers\n", got->state->count,
	       nn_value_len(nn_value_dict_get(got->arch, "backbone")) + nn_value_len(nn_value_dict_get(got->arch, "head")));
	nn_checkpoint_destroy(&src);
	nn_checkpoint_destroy(&want);
	nn_checkpoint_destroy(&got);
	printf("%s\n", fails ? "FAIL" : "ok");
	return fails ? 1 : 0;
}
