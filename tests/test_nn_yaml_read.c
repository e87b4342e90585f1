// The YAML reader: scalar typing, flow and block sequences, mappings, and errors that name the
// file and line.
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "yaml_read.h"

static char last_msg[512];
static void sink(enum gpu_log_level level, const char *msg, void *user)
{
	(void)level, (void)user;
	snprintf(last_msg, sizeof(last_msg), "%s", msg);
}

#define CHECK(cond, ...)                                                                                    \
	do {                                                                                                   \
		if (!(cond)) {                                                                                     \
			printf("FAIL line %d: %s: ", __LINE__, #cond);                                                 \
			printf(__VA_ARGS__);                                                                           \
			printf("\n");                                                                                  \
			fails++;                                                                                       \
		}                                                                                                  \
	} while (0)

static int check_model_rows(void)
{
	static const char text[] = "# comment\n"
	                           "nc: 80  # classes\n"
	                           "depth_multiple: 1.0\n"
	                           "scale: -2.5e-1\n"
	                           "anchors: 3\n"
	                           "backbone:\n"
	                           "  [\n"
	                           "   [-1, 1, Conv, [64, 3, 2]],  # 0\n"
	                           "   [[-1, 6], 1, Concat, [1]],\n"
	                           "   [-1, 1, nn.Upsample, [None, 2, 'nearest']],\n"
	                           "   [[15, 18, 21], 1, DDetect, [nc]],\n"
	                           "  ]\n"
	                           "flags: [true, False, \"7\"]\n"
	                           "block:\n"
	                           "  - a\n"
	                           "  - {k: 1}\n";
	struct nn_value *v = NULL;
	int fails = 0, ret = nn_yaml_read_string(text, strlen(text), "test", &v);
	CHECK(ret == 0 && v && v->kind == NN_VALUE_DICT, "ret %d", ret);
	if (ret)
		return fails;
	int64_t i = 0;
	double f = 0;
	CHECK(nn_value_dict_get(v, "nc")->kind == NN_VALUE_INT && nn_value_as_int(nn_value_dict_get(v, "nc"), &i) && i == 80,
	      "nc %lld", (long long)i);
	CHECK(nn_value_dict_get(v, "depth_multiple")->kind == NN_VALUE_FLOAT, "depth_multiple kind");
	CHECK(nn_value_as_double(nn_value_dict_get(v, "scale"), &f) && f == -0.25, "scale %g", f);
	const struct nn_value *bb = nn_value_dict_get(v, "backbone");
	CHECK(bb && nn_value_len(bb) == 4, "backbone rows %zu", nn_value_len(bb));
	const struct nn_value *r0 = nn_value_list_at(bb, 0);
	CHECK(nn_value_as_int(nn_value_list_at(r0, 0), &i) && i == -1, "from %lld", (long long)i);
	CHECK(nn_value_list_at(r0, 2)->kind == NN_VALUE_STR && !strcmp(nn_value_list_at(r0, 2)->u.s, "Conv"), "module");
	const struct nn_value *args = nn_value_list_at(r0, 3);
	CHECK(nn_value_len(args) == 3 && nn_value_as_int(nn_value_list_at(args, 2), &i) && i == 2, "args");
	const struct nn_value *from1 = nn_value_list_at(nn_value_list_at(bb, 1), 0);
	CHECK(from1->kind == NN_VALUE_LIST && nn_value_len(from1) == 2, "concat from list");
	const struct nn_value *up = nn_value_list_at(nn_value_list_at(bb, 2), 3);
	CHECK(nn_value_list_at(up, 0)->kind == NN_VALUE_STR && !strcmp(nn_value_list_at(up, 0)->u.s, "None"), "None");
	CHECK(!strcmp(nn_value_list_at(up, 2)->u.s, "nearest"), "quoted string");
	const struct nn_value *nc = nn_value_list_at(nn_value_list_at(nn_value_list_at(bb, 3), 3), 0);
	CHECK(nc->kind == NN_VALUE_STR && !strcmp(nc->u.s, "nc"), "nc stays a string");
	const struct nn_value *fl = nn_value_dict_get(v, "flags");
	CHECK(nn_value_list_at(fl, 0)->kind == NN_VALUE_BOOL && nn_value_list_at(fl, 0)->u.b, "true");
	CHECK(nn_value_list_at(fl, 1)->kind == NN_VALUE_BOOL && !nn_value_list_at(fl, 1)->u.b, "False");
	CHECK(nn_value_list_at(fl, 2)->kind == NN_VALUE_STR, "quoted number stays a string");
	const struct nn_value *blk = nn_value_dict_get(v, "block");
	CHECK(nn_value_len(blk) == 2 && nn_value_list_at(blk, 1)->kind == NN_VALUE_DICT, "block sequence");
	nn_value_destroy(&v);
	return fails;
}

static int check_errors(void)
{
	int fails = 0;
	struct nn_value *v = NULL;
	static const char bad[] = "nc: 80\nbackbone:\n  [ [-1, 1, Conv, [64, 3, 2]\n  ]\nhead: {\n";
	last_msg[0] = 0;
	int ret = nn_yaml_read_string(bad, strlen(bad), "bad.yaml", &v);
	CHECK(ret == -EINVAL && !v, "ret %d", ret);
	CHECK(strstr(last_msg, "bad.yaml:") != NULL, "message names the file: '%s'", last_msg);
	int line = 0;
	const char *p = strstr(last_msg, "bad.yaml:");
	if (p)
		sscanf(p + strlen("bad.yaml:"), "%d", &line);
	CHECK(line >= 3 && line <= 6, "message names a line near the error: '%s'", last_msg);
	ret = nn_yaml_read_file("/nonexistent/dir/x.yaml", &v);
	CHECK(ret == -ENOENT && !v, "ret %d", ret);
	CHECK(strstr(last_msg, "/nonexistent/dir/x.yaml") != NULL, "message '%s'", last_msg);
	static const char alias[] = "a: &x 1\nb: *x\n";
	ret = nn_yaml_read_string(alias, strlen(alias), "alias.yaml", &v);
	CHECK(ret == -ENOTSUP && !v, "alias ret %d", ret);
	ret = nn_yaml_read_string("", 0, "empty", &v);
	CHECK(ret == 0 && v && v->kind == NN_VALUE_DICT && nn_value_len(v) == 0, "empty document ret %d", ret);
	nn_value_destroy(&v);
	return fails;
}

int main(void)
{
	gpu_log_init(GPU_LOG_WARN, sink, NULL);
	int fails = check_model_rows() + check_errors();
	printf("%s\n", fails ? "FAILED" : "all passed");
	return fails ? 1 : 0;
}
