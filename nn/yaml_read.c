// YAML -> nn_value reader (libyaml event API) for model descriptions such as gelan-t.yaml.
// Plain scalars become INT or FLOAT when they parse completely as numbers, everything else
// (including `nc`, `None`, quoted strings) stays a STR: the module builder interprets names.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "log.h"
#include "yaml_read.h"

struct reader {
	yaml_parser_t parser;
	const char *name; // file name or "<string>" for messages
};

static int next_event(struct reader *r, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&r->parser, ev)) {
		LOGE("yaml %s:%zu:%zu: %s%s%s", r->name, (size_t)r->parser.problem_mark.line + 1,
		     (size_t)r->parser.problem_mark.column + 1, r->parser.problem ? r->parser.problem : "parse error",
		     r->parser.context ? " " : "", r->parser.context ? r->parser.context : "");
		return -EINVAL;
	}
	return 0;
}

static struct nn_value *scalar_value(const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && len > 0) {
		char *end = NULL;
		errno = 0;
		long long iv = strtoll(s, &end, 10);
		if (errno == 0 && end == s + len)
			return nn_value_int(iv);
		errno = 0;
		double fv = strtod(s, &end);
		// strtod accepts "nan"/"inf"/hex; keep only ordinary decimal spellings as numbers
		if (errno == 0 && end == s + len && strpbrk(s, "nNiIxX") == NULL)
			return nn_value_float(fv);
		if (!strcmp(s, "true") || !strcmp(s, "True"))
			return nn_value_bool(true);
		if (!strcmp(s, "false") || !strcmp(s, "False"))
			return nn_value_bool(false);
	}
	return nn_value_strn(s, len);
}

static int parse_node(struct reader *r, yaml_event_t *ev, struct nn_value **out);

// Parses the children of a sequence or mapping whose start event was just consumed.
static int parse_children(struct reader *r, struct nn_value *parent, yaml_event_type_t end_type)
{
	yaml_event_t ev;
	struct nn_value *key = NULL, *val = NULL;
	int ret;
	for (;;) {
		if ((ret = next_event(r, &ev)))
			goto fail;
		if (ev.type == end_type) {
			yaml_event_delete(&ev);
			return 0;
		}
		ret = parse_node(r, &ev, parent->kind == NN_VALUE_LIST ? &val : (key ? &val : &key));
		yaml_event_delete(&ev);
		if (ret)
			goto fail;
		if (parent->kind == NN_VALUE_LIST) {
			ret = nn_value_list_append(parent, val);
			val = NULL;
		} else if (val) {
			ret = nn_value_dict_set(parent, key, val);
			key = val = NULL;
		}
		if (ret)
			goto fail;
	}
fail:
	nn_value_destroy(&key);
	nn_value_destroy(&val);
	return ret;
}

// Builds the value of the node that starts with *ev (already read; not freed here).
static int parse_node(struct reader *r, yaml_event_t *ev, struct nn_value **out)
{
	struct nn_value *v = NULL;
	int ret;
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		v = scalar_value(ev);
		break;
	case YAML_SEQUENCE_START_EVENT:
		v = nn_value_list();
		break;
	case YAML_MAPPING_START_EVENT:
		v = nn_value_dict();
		break;
	case YAML_ALIAS_EVENT:
		LOGE("yaml %s:%zu: aliases are not supported", r->name, (size_t)ev->start_mark.line + 1);
		return -ENOTSUP;
	default:
		LOGE("yaml %s:%zu: unexpected event %d", r->name, (size_t)ev->start_mark.line + 1, (int)ev->type);
		return -EINVAL;
	}
	if (!v)
		return -ENOMEM;
	if (ev->type == YAML_SEQUENCE_START_EVENT || ev->type == YAML_MAPPING_START_EVENT) {
		ret = parse_children(r, v, ev->type == YAML_SEQUENCE_START_EVENT ? YAML_SEQUENCE_END_EVENT
		                                                                  : YAML_MAPPING_END_EVENT);
		if (ret) {
			nn_value_destroy(&v);
			return ret;
		}
	}
	*out = v;
	return 0;
}

// Reads the stream's first document; an empty stream gives an empty dict.
static int parse_stream(struct reader *r, struct nn_value **out)
{
	yaml_event_t ev;
	struct nn_value *root = NULL;
	int ret;
	*out = NULL;
	for (;;) {
		if ((ret = next_event(r, &ev)))
			goto fail;
		yaml_event_type_t t = ev.type;
		if (t == YAML_STREAM_END_EVENT || t == YAML_DOCUMENT_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_START_EVENT) {
			yaml_event_delete(&ev);
			continue;
		}
		ret = parse_node(r, &ev, &root);
		yaml_event_delete(&ev);
		if (ret)
			goto fail;
	}
	if (!root && !(root = nn_value_dict()))
		return -ENOMEM;
	*out = root;
	return 0;
fail:
	nn_value_destroy(&root);
	return ret;
}

int nn_yaml_read_string(const char *text, size_t len, const char *name, struct nn_value **out)
{
	struct reader r = {.name = name ? name : "<string>"};
	if (!yaml_parser_initialize(&r.parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&r.parser, (const unsigned char *)text, len);
	int ret = parse_stream(&r, out);
	yaml_parser_delete(&r.parser);
	return ret;
}

int nn_yaml_read_file(const char *path, struct nn_value **out)
{
	struct reader r = {.name = path};
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		int e = errno;
		LOGE("yaml %s: open: %s", path, strerror(e));
		return -e;
	}
	if (!yaml_parser_initialize(&r.parser)) {
		fclose(f);
		return -ENOMEM;
	}
	yaml_parser_set_input_file(&r.parser, f);
	int ret = parse_stream(&r, out);
	yaml_parser_delete(&r.parser);
	fclose(f);
	return ret;
}
