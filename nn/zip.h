// Read-only zip archives as torch.save writes them: stored (uncompressed) entries, zip64 when large.
// The file is mapped read-only; entry data pointers stay valid until nn_zip_close.
#pragma once
#include <stddef.h>
#include <stdint.h>

struct nn_zip;

// Maps path and reads its central directory, checking every offset and size against the file.
// *out owned by the caller (nn_zip_close). -ENOENT/-EIO, -EINVAL for a malformed archive, -ENOMEM.
int nn_zip_open(const char *path, struct nn_zip **out);
void nn_zip_close(struct nn_zip **z);

size_t nn_zip_count(const struct nn_zip *z);
// Borrowed, NUL-terminated entry name; NULL when i is out of range.
const char *nn_zip_name(const struct nn_zip *z, size_t i);
// The bytes of entry `name` (borrowed, valid until close). -ENOENT when absent, -ENOTSUP when the
// entry is compressed, -EINVAL when its local header is damaged. Logs except for -ENOENT.
int nn_zip_find(const struct nn_zip *z, const char *name, const void **data, size_t *len);
// True when the first bytes of the file at path are a zip local header signature.
int nn_zip_probe(const char *path);
