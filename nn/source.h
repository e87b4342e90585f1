// Expanding detect's --source into the files to process, as the official LoadImages does:
// an image/video file, a directory (its "*.*" files, sorted), a glob pattern (sorted), or a .txt
// file listing paths. Images come first, then videos. Streams and webcams are not handled here.
#pragma once
#include <stdbool.h>
#include <stddef.h>

enum nn_source_kind {
	NN_SOURCE_IMAGE,
	NN_SOURCE_VIDEO,
};

struct nn_source_item {
	char *path; // owned
	enum nn_source_kind kind;
};

struct nn_source_list {
	struct nn_source_item *items; // owned
	size_t count;
	size_t n_images, n_videos;
};

// Official extension lists (case-insensitive): images bmp dng jpeg jpg mpo png tif tiff webp pfm;
// videos asf avi gif m4v mkv mov mp4 mpeg mpg ts wmv.
bool nn_path_is_image(const char *path);
bool nn_path_is_video(const char *path);

// Expands source. Paths inside a .txt list that are relative are taken relative to the list's
// folder. Errors (one LOGE naming the path): -ENOENT for a missing path or a list entry that does
// not exist, -ENOENT when nothing supported is found (the message lists the formats), -ENOTSUP for
// a webcam index or a stream URL, -ENOMEM.
int nn_source_expand(const char *source, struct nn_source_list **out);
void nn_source_list_destroy(struct nn_source_list **list);
