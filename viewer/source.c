// Source classification, the shared clock, and the image slideshow source.
#include "view_source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"

static const char *const video_exts[] = { "mp4", "mkv", "avi", "mov", "webm", "m4v", "mpg", "mpeg",
                                          "wmv", "flv", "ts", "asf", "gif", "3gp", "ogv" };

enum view_source_kind view_source_classify(const char *spec)
{
	if (!strncmp(spec, "/dev/video", 10) || (spec[0] && strspn(spec, "0123456789") == strlen(spec)))
		return VIEW_SOURCE_CAMERA;
	const char *dot = strrchr(spec, '.'), *slash = strrchr(spec, '/');
	if (dot && (!slash || dot > slash) && !strpbrk(spec, "*?["))
		for (size_t i = 0; i < sizeof(video_exts) / sizeof(video_exts[0]); i++)
			if (!strcasecmp(dot + 1, video_exts[i]))
				return VIEW_SOURCE_VIDEO;
	return VIEW_SOURCE_IMAGES;
}

void view_camera_path(const char *spec, char *path, size_t cap)
{
	if (spec[0] && strspn(spec, "0123456789") == strlen(spec))
		snprintf(path, cap, "/dev/video%s", spec);
	else
		snprintf(path, cap, "%s", spec);
}

double view_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

void view_sleep_until(double t_ms)
{
	double now = view_now_ms();
	if (t_ms <= now)
		return;
	double d = t_ms - now;
	struct timespec ts = { .tv_sec = (time_t)(d / 1e3), .tv_nsec = (long)(((d / 1e3) - (time_t)(d / 1e3)) * 1e9) };
	nanosleep(&ts, NULL);
}

void view_source_close(struct view_source **s)
{
	if (!s || !*s)
		return;
	(*s)->ops->close(*s);
	*s = NULL;
}

struct images_source {
	struct view_source base;
	const char *const *paths;
	size_t n, next;
	int64_t index;
	bool loop, realtime;
	double period_ms, t_next;
};

static int images_read(struct view_source *base, struct nn_image **img, struct view_frame_info *info)
{
	struct images_source *s = (struct images_source *)base;
	if (s->next == s->n) {
		if (!s->loop)
			return 1;
		s->next = 0;
	}
	if (s->realtime) {
		if (s->index > 0)
			view_sleep_until(s->t_next);
		s->t_next = view_now_ms() + s->period_ms;
	}
	int ret = nn_image_load(s->paths[s->next], img);
	if (ret)
		return ret;
	snprintf(base->name, sizeof(base->name), "%s", s->paths[s->next]);
	info->index = s->index;
	info->pts_ms = (double)s->index * s->period_ms;
	info->t_capture_ms = view_now_ms();
	s->index++;
	s->next++;
	return 0;
}

static void images_close(struct view_source *base)
{
	free(base);
}

static const struct view_source_ops images_ops = { images_read, images_close };

int view_source_open_images(const char *const *paths, size_t n, const struct view_source_params *p,
                            struct view_source **out)
{
	*out = NULL;
	if (!n) {
		LOGE("slideshow: no images");
		return -ENOENT;
	}
	struct images_source *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base = (struct view_source){ .ops = &images_ops, .kind = VIEW_SOURCE_IMAGES };
	snprintf(s->base.name, sizeof(s->base.name), "%s", paths[0]);
	s->paths = paths;
	s->n = n;
	s->loop = p->loop;
	s->realtime = p->realtime;
	s->period_ms = p->slide_ms > 0 ? p->slide_ms : 1000.0;
	s->base.fps = 1000.0 / s->period_ms;
	*out = &s->base;
	return 0;
}
