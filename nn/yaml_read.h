// Reads YAML (model descriptions) into an nn_value tree.
#pragma once
#include <stddef.h>

#include "value.h"

// Plain scalars that parse completely as decimal integers become INT, as decimal floats FLOAT,
// true/false BOOL; all other scalars (quoted ones, `nc`, `None`, `nn.Upsample`) stay STR.
// Sequences (block or flow) become LIST, mappings DICT. *out is owned by the caller
// (nn_value_destroy). Errors: -EINVAL (syntax; logs file:line:column), -ENOTSUP (aliases),
// -ENOENT etc. from open, -ENOMEM.
int nn_yaml_read_file(const char *path, struct nn_value **out);
// name is used in messages only (may be NULL).
int nn_yaml_read_string(const char *text, size_t len, const char *name, struct nn_value **out);
