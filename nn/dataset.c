// data.yaml reading and split image lists, following the official check_dataset and
// LoadImagesAndLabels path rules (see dataset.h). The YAML goes through nn_yaml_read_file.
#include "dataset.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"
#include "value.h"
#include "yaml_read.h"

static const char *const img_formats[] = {"bmp", "dng", "jpeg", "jpg", "mpo",
					  "png", "tif", "tiff", "webp", "pfm"};

const char *nn_split_name(enum nn_split split)
{
	static const char *const n[] = {"train", "val", "test"};
	return (unsigned)split < 3 ? n[split] : "?";
}

void nn_strv_free(char **v, size_t count)
{
	if (!v)
		return;
	for (size_t i = 0; i < count; i++)
		free(v[i]);
	free(v);
}

bool nn_is_image_path(const char *path)
{
	// Official: x.split('.')[-1].lower() in IMG_FORMATS
	const char *dot = strrchr(path, '.');
	if (!dot)
		return false;
	for (size_t i = 0; i < sizeof(img_formats) / sizeof(img_formats[0]); i++)
		if (!strcasecmp(dot + 1, img_formats[i]))
			return true;
	return false;
}

int nn_label_path(const char *image_path, char **out)
{
	// sb.join(x.rsplit(sa, 1)).rsplit('.', 1)[0] + '.txt'
	size_t n = strlen(image_path);
	char *s = malloc(n + 8);
	if (!s) {
		LOGE("dataset: label path of %s: out of memory", image_path);
		return -ENOMEM;
	}
	memcpy(s, image_path, n + 1);
	char *last = NULL;
	for (char *p = strstr(s, "/images/"); p; p = strstr(p + 1, "/images/"))
		last = p;
	if (last)
		memcpy(last, "/labels/", 8);
	char *dot = strrchr(s, '.');
	if (dot)
		*dot = '\0';
	strcat(s, ".txt");
	*out = s;
	return 0;
}

// a / b as pathlib joins: b absolute replaces a; "." components and repeated slashes dropped.
static char *path_join(const char *a, const char *b)
{
	size_t na = a ? strlen(a) : 0, nb = strlen(b);
	char *raw = malloc(na + nb + 2), *out = malloc(na + nb + 2);
	if (!raw || !out) {
		free(raw);
		free(out);
		return NULL;
	}
	if (b[0] == '/' || na == 0)
		strcpy(raw, b);
	else
		sprintf(raw, "%s/%s", a, b);
	size_t o = 0;
	bool abs = raw[0] == '/';
	char *save = NULL;
	for (char *tok = strtok_r(raw, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (!strcmp(tok, "."))
			continue;
		if (o > 0 || abs)
			out[o++] = '/';
		size_t t = strlen(tok);
		memcpy(out + o, tok, t);
		o += t;
	}
	if (o == 0)
		out[o++] = abs ? '/' : '.';
	out[o] = '\0';
	free(raw);
	return out;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

// A scalar's text: strings as written, plain numbers as Python's str() prints them (a class may be
// named 7). NULL for None, lists and maps; *nomem set when strdup fails.
static char *scalar_text(const struct nn_value *v, bool *nomem)
{
	char buf[64];
	const char *t = NULL;
	if (!v)
		return NULL;
	switch (v->kind) {
	case NN_VALUE_STR: t = v->u.s; break;
	case NN_VALUE_INT: snprintf(buf, sizeof(buf), "%" PRId64, v->u.i), t = buf; break;
	case NN_VALUE_FLOAT: snprintf(buf, sizeof(buf), "%.17g", v->u.f), t = buf; break;
	case NN_VALUE_BOOL: t = v->u.b ? "True" : "False"; break;
	default: return NULL;
	}
	char *s = strdup(t);
	*nomem |= !s;
	return s;
}

// Split entry: a path or a list of paths, each joined with root. None / "" = no split.
static int read_split(struct nn_dataset *d, int k, const struct nn_value *v)
{
	bool list = v->kind == NN_VALUE_LIST, nomem = false;
	size_t n = list ? nn_value_len(v) : 1;
	if (v->kind == NN_VALUE_NONE || (v->kind == NN_VALUE_STR && !*v->u.s))
		return 0;
	if (!list && v->kind != NN_VALUE_STR) {
		LOGE("dataset %s: '%s' must be a path or a list of paths", d->yaml_path,
		     nn_split_name((enum nn_split)k));
		return -EINVAL;
	}
	d->sources[k] = calloc(n ? n : 1, sizeof(char *));
	if (!d->sources[k])
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char *s = scalar_text(list ? nn_value_list_at(v, i) : v, &nomem);
		if (!s || !*s) {
			free(s);
			if (nomem)
				return -ENOMEM;
			LOGE("dataset %s: '%s' item %zu is not a path", d->yaml_path,
			     nn_split_name((enum nn_split)k), i);
			return -EINVAL;
		}
		d->sources[k][i] = path_join(d->root, s);
		free(s);
		if (!d->sources[k][i])
			return -ENOMEM;
		d->nsources[k]++;
	}
	return 0;
}

// names: a list, or a map {index: name} with the indices 0..n-1 in any order.
static int read_names(struct nn_dataset *d, const struct nn_value *v)
{
	bool map = v->kind == NN_VALUE_DICT, nomem = false;
	size_t n = nn_value_len(v);
	if (!map && v->kind != NN_VALUE_LIST)
		goto bad;
	d->names = calloc(n ? n : 1, sizeof(char *));
	if (!d->names)
		return -ENOMEM;
	d->nc = (int)n;
	for (size_t i = 0; i < n; i++) {
		size_t idx = i;
		const struct nn_value *name = nn_value_list_at(v, i);
		if (map) {
			int64_t k = -1;
			const struct nn_value *key = v->u.dict.keys[i];
			if (key->kind != NN_VALUE_INT || !nn_value_as_int(key, &k) || k < 0 ||
			    (size_t)k >= n) {
				LOGE("dataset %s: names: key %zu is not a class index 0..%zu",
				     d->yaml_path, i, n - 1);
				return -EINVAL;
			}
			idx = (size_t)k;
			name = v->u.dict.vals[i];
		}
		if (d->names[idx])
			goto bad;
		d->names[idx] = scalar_text(name, &nomem);
		if (nomem)
			return -ENOMEM;
		if (!d->names[idx])
			goto bad;
	}
	return 0;
bad:
	LOGE("dataset %s: names must be a list of strings or a map {index: name} without repeats",
	     d->yaml_path);
	return -EINVAL;
}

static int parse_doc(struct nn_dataset *d, const struct nn_value *doc)
{
	static const char *const split_keys[3] = {"train", "val", "test"};
	const struct nn_value *path = nn_value_dict_get(doc, "path");
	const struct nn_value *names = nn_value_dict_get(doc, "names");
	int64_t nc_given = -1;
	int rc;
	bool nomem = false;
	if (!doc || doc->kind != NN_VALUE_DICT) {
		LOGE("dataset %s: not a YAML mapping", d->yaml_path);
		return -EINVAL;
	}
	nn_value_as_int(nn_value_dict_get(doc, "nc"), &nc_given);
	char *ydir = dir_of(d->yaml_path), *p = scalar_text(path, &nomem);
	if (ydir && !nomem)
		d->root = p && *p ? path_join(ydir, p) : strdup(ydir);
	free(ydir);
	free(p);
	if (!d->root)
		return -ENOMEM;
	for (int k = 0; k < 3; k++) {
		const struct nn_value *v = nn_value_dict_get(doc, split_keys[k]);
		if (v && (rc = read_split(d, k, v)))
			return rc;
	}
	if (names) {
		if ((rc = read_names(d, names)))
			return rc;
		if (nc_given >= 0 && nc_given != d->nc)
			LOGW("dataset %s: nc %" PRId64 " but %d names: using %d classes", d->yaml_path,
			     nc_given, d->nc, d->nc);
	} else if (nc_given > 0 && nc_given < 1000000) {
		// As ultralytics: names default to class0, class1, ...
		d->nc = (int)nc_given;
		d->names = calloc((size_t)d->nc, sizeof(char *));
		if (!d->names)
			return -ENOMEM;
		for (int i = 0; i < d->nc; i++)
			if (asprintf(&d->names[i], "class%d", i) < 0)
				return -ENOMEM;
	} else {
		LOGE("dataset %s: neither 'names' nor 'nc' given", d->yaml_path);
		return -EINVAL;
	}
	return 0;
}

int nn_dataset_open(const char *yaml_path, struct nn_dataset **out)
{
	struct nn_dataset *d = calloc(1, sizeof(*d));
	struct nn_value *doc = NULL;
	int rc = -ENOMEM;
	*out = NULL;
	if (!d || !(d->yaml_path = strdup(yaml_path)))
		goto fail;
	if ((rc = nn_yaml_read_file(yaml_path, &doc))) // logs the reason
		goto fail;
	if ((rc = parse_doc(d, doc)))
		goto fail;
	*out = d;
	d = NULL;
fail:
	if (rc == -ENOMEM)
		LOGE("dataset %s: out of memory", yaml_path);
	nn_value_destroy(&doc);
	nn_dataset_destroy(&d);
	return rc;
}

void nn_dataset_destroy(struct nn_dataset **pd)
{
	if (!pd || !*pd)
		return;
	struct nn_dataset *d = *pd;
	free(d->yaml_path);
	free(d->root);
	nn_strv_free(d->names, (size_t)d->nc);
	for (int k = 0; k < 3; k++)
		nn_strv_free(d->sources[k], d->nsources[k]);
	free(d);
	*pd = NULL;
}

struct strvec {
	char **v;
	size_t n, cap;
};

static int strvec_push(struct strvec *sv, char *s)
{
	if (!s)
		return -ENOMEM;
	if (sv->n == sv->cap) {
		size_t c = sv->cap ? sv->cap * 2 : 64;
		char **v = realloc(sv->v, c * sizeof(*v));
		if (!v) {
			free(s);
			return -ENOMEM;
		}
		sv->v = v;
		sv->cap = c;
	}
	sv->v[sv->n++] = s;
	return 0;
}

// glob('<dir>/**/*.*', recursive=True): files with a dot in the name, hidden entries skipped.
// Symbolic links to folders are followed, to a bounded depth (a link loop ends there).
static int list_dir(const char *dir, struct strvec *sv, int depth)
{
	DIR *dp = NULL;
	int rc = 0;
	if (depth > 64) {
		LOGE("dataset: folder %s: more than 64 levels deep (a symbolic link loop?)", dir);
		return -ELOOP;
	}
	dp = opendir(dir);
	if (!dp) {
		LOGE("dataset: folder %s: %s", dir, strerror(errno));
		return -errno;
	}
	for (struct dirent *e; !rc && (e = readdir(dp));) {
		if (e->d_name[0] == '.')
			continue;
		char *p = path_join(dir, e->d_name);
		struct stat st;
		if (!p) {
			rc = -ENOMEM;
		} else if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			rc = list_dir(p, sv, depth + 1);
			free(p);
		} else if (strchr(e->d_name, '.')) {
			rc = strvec_push(sv, p);
		} else {
			free(p);
		}
	}
	closedir(dp);
	return rc;
}

static int list_file(const char *file, struct strvec *sv)
{
	FILE *f = fopen(file, "r");
	char *line = NULL, *parent = NULL;
	size_t cap = 0;
	int rc = 0;
	if (!f) {
		LOGE("dataset: list %s: %s", file, strerror(errno));
		return -errno;
	}
	parent = dir_of(file);
	if (!parent)
		rc = -ENOMEM;
	for (ssize_t n; !rc && (n = getline(&line, &cap, f)) >= 0;) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
				 line[n - 1] == '\t'))
			line[--n] = '\0';
		if (n == 0)
			continue;
		rc = strvec_push(sv, strncmp(line, "./", 2) ? strdup(line)
							    : path_join(parent, line + 2));
	}
	free(line);
	free(parent);
	fclose(f);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int nn_dataset_images(const struct nn_dataset *d, enum nn_split split, char ***paths,
		      size_t *count)
{
	struct strvec sv = {0};
	int rc = 0;
	*paths = NULL;
	*count = 0;
	if ((unsigned)split > NN_SPLIT_TEST || d->nsources[split] == 0) {
		LOGE("dataset %s: no '%s' split", d->yaml_path, nn_split_name(split));
		return -EINVAL;
	}
	for (size_t i = 0; !rc && i < d->nsources[split]; i++) {
		const char *src = d->sources[split][i];
		struct stat st;
		if (stat(src, &st) != 0) {
			LOGE("dataset %s: %s source %s does not exist", d->yaml_path,
			     nn_split_name(split), src);
			rc = -ENOENT;
		} else {
			rc = S_ISDIR(st.st_mode) ? list_dir(src, &sv, 0) : list_file(src, &sv);
		}
	}
	size_t k = 0;
	for (size_t i = 0; i < sv.n; i++) {
		if (nn_is_image_path(sv.v[i]))
			sv.v[k++] = sv.v[i];
		else
			free(sv.v[i]);
	}
	sv.n = k;
	if (!rc && sv.n == 0) {
		LOGE("dataset %s: no images found in the '%s' split", d->yaml_path,
		     nn_split_name(split));
		rc = -EINVAL;
	}
	if (rc) {
		if (rc == -ENOMEM)
			LOGE("dataset %s: listing images: out of memory", d->yaml_path);
		nn_strv_free(sv.v, sv.n);
		return rc;
	}
	qsort(sv.v, sv.n, sizeof(*sv.v), cmp_str);
	*paths = sv.v;
	*count = sv.n;
	return 0;
}
