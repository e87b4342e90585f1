// --source expansion: directory listing (sorted, images before videos, dotfiles and unsupported
// extensions skipped), glob, .txt lists with relative entries, and the error codes.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "source.h"

#include "check.h"

static char tmp[256];

static int touch(const char *name, const char *text)
{
	char p[400];
	snprintf(p, sizeof(p), "%s/%s", tmp, name);
	FILE *f = fopen(p, "w");
	if (!f)
		return 1;
	fputs(text, f);
	fclose(f);
	return 0;
}

static bool ends(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

int main(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/test_nn_source.XXXXXX");
	CHECK(mkdtemp(tmp));
	const char *names[] = { "b.jpg", "a.PNG", "c.mp4", "notes.md", ".hidden.jpg", "noext", "B.jpeg" };
	for (int i = 0; i < 7; i++)
		CHECK(touch(names[i], "x") == 0);
	char p[400];
	snprintf(p, sizeof(p), "%s/sub.dir", tmp);
	CHECK(mkdir(p, 0755) == 0);
	CHECK(nn_path_is_image("x/Y.JPG") && nn_path_is_image("a.tiff") && !nn_path_is_image("a.mp4"));
	CHECK(nn_path_is_video("a.MKV") && nn_path_is_video("x.ts") && !nn_path_is_video("a.jpg"));
	struct nn_source_list *l = NULL;
	// directory: byte order (uppercase first), images then videos
	CHECK(nn_source_expand(tmp, &l) == 0);
	CHECK(l->count == 4 && l->n_images == 3 && l->n_videos == 1);
	CHECK(ends(l->items[0].path, "/B.jpeg") && ends(l->items[1].path, "/a.PNG") &&
	      ends(l->items[2].path, "/b.jpg") && ends(l->items[3].path, "/c.mp4"));
	CHECK(l->items[0].kind == NN_SOURCE_IMAGE && l->items[3].kind == NN_SOURCE_VIDEO);
	nn_source_list_destroy(&l);
	nn_source_list_destroy(&l);
	// glob
	snprintf(p, sizeof(p), "%s/*.jp*g", tmp);
	CHECK(nn_source_expand(p, &l) == 0);
	CHECK(l->count == 2 && ends(l->items[0].path, "/B.jpeg") && ends(l->items[1].path, "/b.jpg"));
	nn_source_list_destroy(&l);
	// single file
	snprintf(p, sizeof(p), "%s/b.jpg", tmp);
	CHECK(nn_source_expand(p, &l) == 0 && l->count == 1 && strcmp(l->items[0].path, p) == 0);
	nn_source_list_destroy(&l);
	// .txt list: "./" and plain relative entries resolve against the list's folder
	CHECK(touch("list.txt", "./b.jpg\n\n  c.mp4  \r\na.PNG\n") == 0);
	snprintf(p, sizeof(p), "%s/list.txt", tmp);
	CHECK(nn_source_expand(p, &l) == 0);
	CHECK(l->count == 3 && ends(l->items[0].path, "/b.jpg") && ends(l->items[1].path, "/a.PNG") &&
	      ends(l->items[2].path, "/c.mp4"));
	char want[400];
	snprintf(want, sizeof(want), "%s/b.jpg", tmp);
	CHECK(strcmp(l->items[0].path, want) == 0);
	nn_source_list_destroy(&l);
	// errors
	CHECK(touch("bad.txt", "b.jpg\nmissing.jpg\n") == 0);
	snprintf(p, sizeof(p), "%s/bad.txt", tmp);
	CHECK(nn_source_expand(p, &l) == -ENOENT && l == NULL);
	snprintf(p, sizeof(p), "%s/nope.jpg", tmp);
	CHECK(nn_source_expand(p, &l) == -ENOENT);
	snprintf(p, sizeof(p), "%s/notes.md", tmp);
	CHECK(nn_source_expand(p, &l) == -ENOENT);
	snprintf(p, sizeof(p), "%s/*.xyz", tmp);
	CHECK(nn_source_expand(p, &l) == -ENOENT);
	CHECK(nn_source_expand("0", &l) == -ENOTSUP && nn_source_expand("rtsp://h/s", &l) == -ENOTSUP);
	for (int i = 0; i < 7; i++)
		test_remove(tmp, names[i]);
	test_remove(tmp, "list.txt");
	test_remove(tmp, "bad.txt");
	test_remove(tmp, "sub.dir");
	rmdir(tmp);
	printf("source: ok\n");
	return 0;
}
