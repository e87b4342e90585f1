// Expands a --source argument into a sorted list of image paths: a file, a directory, a glob
// pattern, or a .txt file listing paths.
#pragma once
#include <stddef.h>

struct app_sources {
	char **paths; // owned
	size_t count;
};

// -ENOENT (logged, naming the source) when nothing matches; -ENOMEM.
int app_sources_expand(const char *source, struct app_sources *out);
void app_sources_finish(struct app_sources *s);
// True for the image extensions YOLO tools accept (bmp dng jpeg jpg mpo png tif tiff webp pfm).
int app_is_image_path(const char *path);
