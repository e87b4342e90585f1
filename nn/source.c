// --source expansion. Sorting is by byte order (Python's sorted on str), not the locale order glob(3)
// would use, so runs name and order outputs the same way everywhere.
#include "source.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"

static const char *const img_ext[] = { "bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm" };
static const char *const vid_ext[] = { "asf", "avi", "gif", "m4v", "mkv", "mov", "mp4", "mpeg", "mpg", "ts", "wmv" };

// The text after the last '.' of the whole path (x.split('.')[-1] in the official code).
static bool ext_in(const char *path, const char *const *list, size_t n)
{
	const char *dot = strrchr(path, '.');
	if (!dot)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strcasecmp(dot + 1, list[i]))
			return true;
	return false;
}

bool nn_path_is_image(const char *path)
{
	return ext_in(path, img_ext, sizeof(img_ext) / sizeof(img_ext[0]));
}

bool nn_path_is_video(const char *path)
{
	return ext_in(path, vid_ext, sizeof(vid_ext) / sizeof(vid_ext[0]));
}

struct strv {
	char **v;
	size_t n, cap;
};

static int strv_push(struct strv *s, const char *a, const char *b)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		char **t = realloc(s->v, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		s->v = t;
		s->cap = cap;
	}
	size_t la = strlen(a), lb = b ? strlen(b) : 0;
	char *p = malloc(la + lb + 2);
	if (!p)
		return -ENOMEM;
	memcpy(p, a, la);
	if (b) {
		p[la] = '/';
		memcpy(p + la + 1, b, lb);
		la += lb + 1;
	}
	p[la] = 0;
	s->v[s->n++] = p;
	return 0;
}

static void strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

// Python's glob("dir/*.*"): names with a dot, not starting with one.
static int add_dir(struct strv *s, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		int rc = -errno;
		LOGE("source %s: cannot list: %s", dir, strerror(errno));
		return rc;
	}
	size_t first = s->n;
	int rc = 0;
	struct dirent *e;
	while (!rc && (e = readdir(d)))
		if (e->d_name[0] != '.' && strchr(e->d_name, '.'))
			rc = strv_push(s, dir, e->d_name);
	closedir(d);
	qsort(s->v + first, s->n - first, sizeof(char *), cmp_str);
	return rc;
}

static int add_glob(struct strv *s, const char *pattern)
{
	glob_t g;
	int r = glob(pattern, 0, NULL, &g);
	if (r == GLOB_NOMATCH)
		return 0;
	if (r) {
		LOGE("source %s: glob failed", pattern);
		return r == GLOB_NOSPACE ? -ENOMEM : -EIO;
	}
	size_t first = s->n;
	int rc = 0;
	for (size_t i = 0; i < g.gl_pathc && !rc; i++)
		rc = strv_push(s, g.gl_pathv[i], NULL);
	globfree(&g);
	qsort(s->v + first, s->n - first, sizeof(char *), cmp_str);
	return rc;
}

// One path per line; blank lines skipped; relative entries resolved against the list's folder.
static int add_list(struct strv *s, const char *list)
{
	FILE *f = fopen(list, "r");
	if (!f) {
		int rc = -errno;
		LOGE("source %s: cannot open: %s", list, strerror(errno));
		return rc;
	}
	char *dir = strdup(list);
	if (!dir) {
		fclose(f);
		return -ENOMEM;
	}
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;
	unsigned lineno = 0;
	while (!rc && getline(&line, &cap, f) >= 0) {
		lineno++;
		char *p = line, *e = line + strlen(line);
		while (*p == ' ' || *p == '\t')
			p++;
		while (e > p && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
			*--e = 0;
		if (!*p)
			continue;
		if (p[0] == '.' && p[1] == '/')
			p += 2;
		rc = p[0] == '/' || !slash ? strv_push(s, p, NULL) : strv_push(s, dir, p);
		struct stat st;
		if (!rc && stat(s->v[s->n - 1], &st)) {
			LOGE("source %s:%u: %s does not exist", list, lineno, s->v[s->n - 1]);
			rc = -ENOENT;
		}
	}
	free(line);
	free(dir);
	fclose(f);
	return rc;
}

static bool is_stream(const char *src)
{
	if (!*src)
		return false;
	bool digits = true;
	for (const char *p = src; *p; p++)
		digits &= *p >= '0' && *p <= '9';
	return digits || strstr(src, "://") != NULL;
}

int nn_source_expand(const char *source, struct nn_source_list **out)
{
	*out = NULL;
	struct strv files = { 0 };
	struct nn_source_list *l = NULL;
	int rc;
	struct stat st;
	const char *dot = strrchr(source, '.');
	if (is_stream(source)) {
		LOGE("source %s: webcams and streams are not supported yet", source);
		return -ENOTSUP;
	}
	if (strchr(source, '*') || strchr(source, '?')) {
		rc = add_glob(&files, source);
	} else if (stat(source, &st)) {
		LOGE("source %s does not exist", source);
		return -ENOENT;
	} else if (S_ISDIR(st.st_mode)) {
		rc = add_dir(&files, source);
	} else if (dot && !strcasecmp(dot, ".txt")) {
		rc = add_list(&files, source);
	} else {
		rc = strv_push(&files, source, NULL);
	}
	if (rc)
		goto fail;
	rc = -ENOMEM;
	l = calloc(1, sizeof(*l));
	if (!l || !(l->items = calloc(files.n + 1, sizeof(*l->items))))
		goto fail;
	for (int pass = 0; pass < 2; pass++) // images first, then videos
		for (size_t i = 0; i < files.n; i++) {
			if (!files.v[i])
				continue;
			bool want = pass == 0 ? nn_path_is_image(files.v[i]) : nn_path_is_video(files.v[i]);
			if (!want)
				continue;
			l->items[l->count].path = files.v[i];
			l->items[l->count++].kind = pass == 0 ? NN_SOURCE_IMAGE : NN_SOURCE_VIDEO;
			files.v[i] = NULL;
			*(pass == 0 ? &l->n_images : &l->n_videos) += 1;
		}
	if (!l->count) {
		LOGE("source %s: no images or videos found (images: bmp dng jpeg jpg mpo png tif tiff webp "
		     "pfm; videos: asf avi gif m4v mkv mov mp4 mpeg mpg ts wmv)",
		     source);
		rc = -ENOENT;
		goto fail;
	}
	strv_free(&files);
	*out = l;
	return 0;
fail:
	strv_free(&files);
	nn_source_list_destroy(&l);
	return rc;
}

void nn_source_list_destroy(struct nn_source_list **list)
{
	if (!list || !*list)
		return;
	for (size_t i = 0; i < (*list)->count; i++)
		free((*list)->items[i].path);
	free((*list)->items);
	free(*list);
	*list = NULL;
}
