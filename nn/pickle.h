// A restricted pickle reader for torch checkpoints. It never executes anything: GLOBAL gives a
// symbolic class reference, known builders (OrderedDict, set, torch.Size, torch tensor rebuilds)
// produce data, and every other class becomes a generic object that keeps its constructor
// arguments and its BUILD state. Memory is bounded by the pickle's length.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "tensor.h"
#include "value.h"

enum nn_pk_kind {
	NN_PK_NONE,
	NN_PK_BOOL,
	NN_PK_INT,
	NN_PK_FLOAT,
	NN_PK_STR,
	NN_PK_BYTES,
	NN_PK_LIST,
	NN_PK_TUPLE,
	NN_PK_DICT,    // keys (items)/vals, insertion order (OrderedDict too); duplicates kept, last wins
	NN_PK_CLASS,   // a GLOBAL: module + name, never resolved
	NN_PK_OBJECT,  // instance of `cls`: args from REDUCE/NEWOBJ, state from BUILD (may be NULL)
	NN_PK_STORAGE, // a torch storage from a persistent id, bytes borrowed from the loader
	NN_PK_TENSOR,  // a strided view of a storage
};

struct nn_pk {
	enum nn_pk_kind kind;
	int64_t i;      // BOOL, INT
	double f;       // FLOAT
	char *s;        // STR/BYTES (NUL-terminated, len bytes), CLASS "module.name", STORAGE key
	size_t len;     // STR/BYTES length
	struct nn_pk **items, **vals; // LIST/TUPLE items; DICT keys (items) and vals
	size_t count, cap;
	struct nn_pk *cls, *args, *state;   // OBJECT
	enum nn_dtype dtype;                // STORAGE, TENSOR
	const void *data;                   // STORAGE bytes
	size_t nbytes;                      // STORAGE byte count
	struct nn_pk *storage;              // TENSOR
	int64_t offset;                     // TENSOR storage offset, in elements
	uint32_t ndim;                      // TENSOR
	int64_t *shape, *stride;            // TENSOR, ndim entries each (owned by the pickle)
};

// Resolves a storage key (the third field of a ('storage', type, key, location, numel) persistent
// id) to its bytes; returns 0 or a negative errno (already logged).
typedef int (*nn_pickle_storage_fn)(void *user, const char *key, const void **data, size_t *len);

struct nn_pickle;

// Runs the pickle in buf[0..len) (borrowed; must outlive nothing: strings are copied). `what` names
// the source in messages. *out owned by the caller (nn_pickle_destroy), which also owns every node.
// -EINVAL names the opcode and byte offset of the problem; -ENOMEM; storage loader errors.
int nn_pickle_load(const void *buf, size_t len, const char *what, nn_pickle_storage_fn storage, void *user,
                   struct nn_pickle **out);
void nn_pickle_destroy(struct nn_pickle **p);
// The value left by STOP (borrowed from p).
const struct nn_pk *nn_pickle_root(const struct nn_pickle *p);

// Lookups on pickle nodes (borrowed results, NULL when absent or of the wrong kind); for a key
// stored twice the later value wins, as in Python.
const struct nn_pk *nn_pk_dict_get(const struct nn_pk *dict, const char *key);
// OBJECT: its BUILD state when that is a dict (the instance __dict__), else NULL.
const struct nn_pk *nn_pk_object_dict(const struct nn_pk *obj);

// Converts plain data (None, bool, int, float, str, bytes, list, tuple, dict) into a value tree;
// other nodes become None. Depth-limited, so a self-referencing structure cannot recurse forever.
int nn_pk_to_value(const struct nn_pk *v, struct nn_value **out);
// Bytes a TENSOR node needs once contiguous; -1 for a bad shape or one over 2^31 elements.
int64_t nn_pk_tensor_nbytes(const struct nn_pk *t);
// Copies a TENSOR node into map under name as a contiguous row-major tensor (any strides), after
// checking that every element it addresses lies inside its storage. -EINVAL, -ENOMEM, -EEXIST.
int nn_pk_tensor_add(const struct nn_pk *t, const char *name, struct nn_tensor_map *map);
