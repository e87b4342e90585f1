// Datasets in the YOLO layout (ultralytics / YOLOv9 data.yaml): the YAML description, image lists
// of each split, image -> label file mapping, label files and image sizes (read from the header,
// corrected for EXIF orientation as the official loader does). No pixels are decoded here.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum nn_split {
	NN_SPLIT_TRAIN,
	NN_SPLIT_VAL,
	NN_SPLIT_TEST,
};

// A parsed data.yaml. All strings owned; free with nn_dataset_destroy.
struct nn_dataset {
	char *yaml_path;
	char *root;   // `path`, resolved against the YAML's folder when relative
	int nc;	      // number of classes (= number of names, as the official check_dataset)
	char **names; // [nc]
	// Each split's sources (folders or .txt list files), already joined with root. count 0 = none.
	char **sources[3];
	size_t nsources[3];
};

// Reads a data.yaml: `path`, `train`/`val`/`test` (string or list), `names` (map {0: person} or a
// list), `nc` (names win when both are given; without names: class0, class1, ...). Read through
// nn_yaml_read_file. -ENOENT (missing file), -EINVAL (malformed), -ENOTSUP (YAML aliases), -ENOMEM.
int nn_dataset_open(const char *yaml_path, struct nn_dataset **out);
void nn_dataset_destroy(struct nn_dataset **d);
const char *nn_split_name(enum nn_split split); // "train", "val", "test"

// The sorted image paths of a split (folders searched recursively; .txt lists read with lines
// starting "./" relative to the list's folder), filtered by the official image extensions
// (bmp dng jpeg jpg mpo png tif tiff webp pfm). *paths is owned by the caller: free each then the
// array (nn_strv_free). -ENOENT (a source does not exist: logged with its path), -EINVAL (split not
// defined or no images), -ENOMEM.
int nn_dataset_images(const struct nn_dataset *d, enum nn_split split, char ***paths,
		      size_t *count);
void nn_strv_free(char **v, size_t count);

// True when the file name ends in an official image extension (case-insensitive).
bool nn_is_image_path(const char *path);

// The label file of an image: the last "/images/" replaced by "/labels/", the extension by ".txt".
// Caller frees *out. -ENOMEM.
int nn_label_path(const char *image_path, char **out);

// One object, normalised to the image size.
struct nn_label {
	int cls;
	float cx, cy, w, h;
};

// Parses label text as the official verify_image_label: lines `class cx cy w h`; if any line has
// more than 6 fields every line is a polygon `class x1 y1 x2 y2 ...` whose box is its min/max
// envelope; exact duplicate rows are removed (remaining rows then in lexicographic order, as
// np.unique) and counted in *dups. Rows must have 5 columns, no negative value, coordinates <= 1,
// an integer class < nc (nc <= 0: no upper check). `what` names the file in messages (LOGW).
// *out owned by the caller (free()); NULL when count is 0. -EINVAL (corrupt), -ENOMEM.
int nn_labels_parse(const char *text, size_t len, int nc, const char *what, struct nn_label **out,
		    size_t *count, size_t *dups);

// Width and height of an image from its header (stb_image's stbi_info), swapped when the JPEG EXIF
// orientation is 6 or 8 (the official exif_size). -EIO (unreadable / unsupported format).
int nn_image_size(const char *path, int *width, int *height);
// EXIF orientation (1..8) of a JPEG file; 1 when absent or not a JPEG.
int nn_exif_orientation(const char *path);

// One usable image of a split with its labels.
struct nn_dataset_image {
	char *path;	     // owned
	int width, height;   // original size, EXIF-corrected
	struct nn_label *labels; // owned, count entries (NULL when 0)
	size_t count;
};

// A split loaded as the official dataset cache does: corrupt images/labels are reported (LOGW)
// and left out; a missing or empty label file makes a background image.
struct nn_dataset_split {
	struct nn_dataset_image *images; // owned
	size_t count;
	size_t found, missing, empty, corrupt, duplicates; // label files found/missing/empty, skipped
	size_t nboxes;				    // labels over all kept images
	bool from_cache;			    // read from the scan cache (no file opened)
};

// The scan is cached as the official labels.cache (our own format, nn/scan_cache.c): the file
// "<label folder of the first image>.vkyolo.cache" keeps every listed image's size and labels (or
// that it was corrupt), keyed by the paths, sizes and modification times of the image and label
// files and the class count, so an unchanged split loads without opening any of them. A cache that
// does not match or cannot be read is ignored and rewritten (atomically); one that cannot be written
// is a warning. VKYOLO_SCAN_CACHE=0 turns it off.
// -ENOENT / -EINVAL / -ENOMEM as nn_dataset_images; corrupt entries are not errors.
int nn_dataset_split_load(const struct nn_dataset *d, enum nn_split split,
			  struct nn_dataset_split **out);
void nn_dataset_split_destroy(struct nn_dataset_split **s);

// ---- the scan cache (nn/scan_cache.c), used by nn_dataset_split_load ----
bool nn_scan_cache_enabled(void);
// "<label folder of first_image>.vkyolo.cache". -ENOMEM.
int nn_scan_cache_path(const char *first_image, char **out);
// Hash of the listing (paths, sizes and mtimes of images and label files) and nc; *key = 0 when an
// image cannot be stat'ed (no caching). -ENOMEM.
int nn_scan_cache_key(char *const *paths, size_t n, int nc, uint64_t *key);
// Fills s (images allocated for n, count 0) from the cache when it matches key and the n listed
// paths; the kept images take their paths out of paths[] (set to NULL). -ENOENT / -EINVAL (no usable
// cache: s is left empty), -ENOMEM.
int nn_scan_cache_read(const char *path, uint64_t key, char **paths, size_t n, struct nn_dataset_split *s);
// Writes the scan of n listed images (kept[i]: listed image i is in s, in order), atomically. -EIO
// (logged as a warning), -ENOMEM.
int nn_scan_cache_write(const char *path, uint64_t key, size_t n, const bool *kept, const struct nn_dataset_split *s);
