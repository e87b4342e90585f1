// --source expansion for detect (images; video files and cameras belong to the viewer).
#include "sources.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"

int app_is_image_path(const char *path)
{
	static const char *const exts[] = { "bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm" };
	const char *dot = strrchr(path, '.');
	if (!dot)
		return 0;
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
		if (!strcasecmp(dot + 1, exts[i]))
			return 1;
	return 0;
}

static int add(struct app_sources *s, const char *path)
{
	char **p = realloc(s->paths, (s->count + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	s->paths = p;
	if (!(s->paths[s->count] = strdup(path)))
		return -ENOMEM;
	s->count++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_dir(struct app_sources *s, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int ret = 0;
	if (!d) {
		LOGE("source %s: %s", dir, strerror(errno));
		return -errno;
	}
	size_t first = s->count;
	while (!ret && (e = readdir(d))) {
		if (e->d_name[0] == '.' || !app_is_image_path(e->d_name))
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		ret = add(s, path);
	}
	closedir(d);
	qsort(s->paths + first, s->count - first, sizeof(char *), cmp_str);
	return ret;
}

static int add_list(struct app_sources *s, const char *list)
{
	FILE *f = fopen(list, "r");
	char line[4096];
	int ret = 0;
	if (!f) {
		LOGE("source %s: %s", list, strerror(errno));
		return -errno;
	}
	while (!ret && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0])
			ret = add(s, line);
	}
	fclose(f);
	return ret;
}

int app_sources_expand(const char *source, struct app_sources *out)
{
	struct stat st;
	int ret = 0;
	*out = (struct app_sources){ 0 };
	if (strpbrk(source, "*?[")) {
		glob_t g;
		if (glob(source, 0, NULL, &g) == 0) {
			for (size_t i = 0; !ret && i < g.gl_pathc; i++)
				if (app_is_image_path(g.gl_pathv[i]))
					ret = add(out, g.gl_pathv[i]);
			globfree(&g);
		}
	} else if (stat(source, &st) != 0) {
		LOGE("source %s: %s", source, strerror(errno));
		return -ENOENT;
	} else if (S_ISDIR(st.st_mode)) {
		ret = add_dir(out, source);
	} else if (strlen(source) > 4 && !strcasecmp(source + strlen(source) - 4, ".txt")) {
		ret = add_list(out, source);
	} else {
		ret = add(out, source);
	}
	if (!ret && out->count == 0) {
		LOGE("source %s: no images found", source);
		ret = -ENOENT;
	}
	if (ret)
		app_sources_finish(out);
	return ret;
}

void app_sources_finish(struct app_sources *s)
{
	for (size_t i = 0; i < s->count; i++)
		free(s->paths[i]);
	free(s->paths);
	*s = (struct app_sources){ 0 };
}
