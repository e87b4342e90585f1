// `vkyolo convert`: official .pt (or our .safetensors) -> self-describing .safetensors, optionally
// re-parameterised for deployment (PGI yolov9-* -> GELAN).
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "checkpoint.h"
#include "deploy.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: vkyolo convert [--deploy] IN.pt|IN.safetensors OUT.safetensors\n"
	           "\n"
	           "Write a checkpoint as safetensors with the official tensor names and, in __metadata__,\n"
	           "the architecture, class names and strides, so the file is self-describing.\n"
	           "The EMA weights are used when the checkpoint has them. Dtypes are kept (fp16 stays fp16).\n"
	           "\n"
	           "options:\n"
	           "  --deploy   drop the PGI auxiliary branch of a yolov9-* model (the official\n"
	           "             re-parameterisation): the result is the deployable GELAN model whose\n"
	           "             output equals the main head of the source\n"
	           "  -h, --help this help\n");
}

int cmd_convert(int argc, char **argv)
{
	const char *in = NULL, *out = NULL;
	bool deploy = false;
	struct nn_checkpoint *ck = NULL, *dep = NULL;
	int status = APP_EXIT_FAILURE;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--deploy")) {
			deploy = true;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return APP_EXIT_OK;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "vkyolo convert: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return APP_EXIT_USAGE;
		} else if (!in) {
			in = argv[i];
		} else if (!out) {
			out = argv[i];
		} else {
			fprintf(stderr, "vkyolo convert: unexpected argument '%s'\n", argv[i]);
			return APP_EXIT_USAGE;
		}
	}
	if (!in || !out) {
		usage(stderr);
		return APP_EXIT_USAGE;
	}
	if (nn_checkpoint_load(in, &ck))
		goto done;
	if (deploy) {
		if (nn_checkpoint_deploy(ck, &dep))
			goto done;
		nn_checkpoint_destroy(&ck);
		ck = dep;
		dep = NULL;
	}
	if (nn_checkpoint_save_safetensors(ck, out))
		goto done;
	printf("%s: %zu tensors%s -> %s\n", in, ck->state->count, deploy ? " (deployable GELAN)" : "", out);
	status = APP_EXIT_OK;
done:
	nn_checkpoint_destroy(&ck);
	nn_checkpoint_destroy(&dep);
	return status;
}
