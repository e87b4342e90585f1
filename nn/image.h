// Host images for detect/val: decode (stb_image + our own EXIF orientation), encode, raw pixels.
// Not thread-safe per object; distinct images may be used from different threads.
#pragma once
#include <stddef.h>
#include <stdint.h>

// Interleaved u8 pixels, row-major HWC (c = 3 means RGB). data is owned, w*h*c bytes.
struct nn_image {
	uint32_t w, h, c;
	uint8_t *data;
};

// A zero-filled w x h x c image. -EINVAL for a zero dimension, -ENOMEM.
int nn_image_create(uint32_t w, uint32_t h, uint32_t c, struct nn_image **out);
// Accepts &NULL; clears *img.
void nn_image_destroy(struct nn_image **img);

// Decodes any format stb_image reads (JPEG, PNG, BMP, TGA, GIF first frame, PSD, PNM, HDR reduced)
// into 3-channel RGB: gray is replicated, alpha dropped, 16-bit reduced to 8-bit. A JPEG's EXIF
// Orientation tag (APP1) is applied (rotate/flip), as OpenCV's imread and PIL's exif_transpose do.
// `name` is only used in messages. -EINVAL when the bytes do not decode (one LOGE with stb's reason).
int nn_image_decode(const void *buf, size_t n, const char *name, struct nn_image **out);
// Reads `path` and decodes it as above. -ENOENT/-EIO when the file cannot be read.
int nn_image_load(const char *path, struct nn_image **out);

// The EXIF Orientation (1..8) of a JPEG held in buf, 1 when absent or not a JPEG.
int nn_image_exif_orientation(const void *buf, size_t n);
// A new image holding img transformed by EXIF orientation `orient` (1..8; 6 = rotate 90 clockwise,
// 8 = 90 counter-clockwise, 3 = 180, 2/4 mirror, 5/7 transpose/transverse). -EINVAL, -ENOMEM.
int nn_image_orient(const struct nn_image *img, int orient, struct nn_image **out);

// Writes img (c = 1, 3 or 4) as JPEG (".jpg"/".jpeg", quality 1..100) or PNG (".png"), chosen by the
// extension (case-insensitive). The file is written to a temporary name beside `path`, then renamed,
// so a reader never sees a half-written file. -EINVAL for an unknown extension, -EIO.
int nn_image_save(const char *path, const struct nn_image *img, int quality);
