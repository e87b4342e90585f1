// A small generic value tree (None, bool, int, float, string, list, dict) shared by the YAML
// reader and the checkpoint reader: a model's architecture arrives as one of these either way.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum nn_value_kind {
	NN_VALUE_NONE,
	NN_VALUE_BOOL,
	NN_VALUE_INT,
	NN_VALUE_FLOAT,
	NN_VALUE_STR,
	NN_VALUE_LIST, // also Python tuples
	NN_VALUE_DICT, // keys are values too (string or int keys in practice), insertion order kept
};

struct nn_value {
	enum nn_value_kind kind;
	union {
		bool b;
		int64_t i;
		double f;
		char *s; // owned, NUL-terminated
		struct {
			struct nn_value **items; // owned
			size_t count, cap;
		} list;
		struct {
			struct nn_value **keys, **vals; // owned
			size_t count, cap;
		} dict;
	} u;
};

// Constructors return NULL only when out of memory.
struct nn_value *nn_value_none(void);
struct nn_value *nn_value_bool(bool b);
struct nn_value *nn_value_int(int64_t i);
struct nn_value *nn_value_float(double f);
struct nn_value *nn_value_str(const char *s);
struct nn_value *nn_value_strn(const char *s, size_t n);
struct nn_value *nn_value_list(void);
struct nn_value *nn_value_dict(void);
void nn_value_destroy(struct nn_value **v);
struct nn_value *nn_value_clone(const struct nn_value *v);

// Takes ownership of item / key / val (also on failure, where they are destroyed). -ENOMEM.
int nn_value_list_append(struct nn_value *list, struct nn_value *item);
int nn_value_dict_set(struct nn_value *dict, struct nn_value *key, struct nn_value *val);

// Bulk building: appends without the duplicate-key scan of nn_value_dict_set (which is O(n) per
// key), takes ownership like it; then nn_value_dict_check_unique (O(n log n)) returns -EINVAL when
// two keys are equal. The JSON parser builds dicts this way, so a huge header cannot take O(n^2).
int nn_value_dict_push(struct nn_value *dict, struct nn_value *key, struct nn_value *val);
int nn_value_dict_check_unique(const struct nn_value *dict);

// Lookups return borrowed pointers, NULL when absent or of the wrong kind.
const struct nn_value *nn_value_dict_get(const struct nn_value *dict, const char *key);
const struct nn_value *nn_value_list_at(const struct nn_value *list, size_t i);
size_t nn_value_len(const struct nn_value *v); // list or dict length, else 0
// Numbers: INT, FLOAT and BOOL convert; returns false for other kinds.
bool nn_value_as_double(const struct nn_value *v, double *out);
bool nn_value_as_int(const struct nn_value *v, int64_t *out);

// JSON text (for safetensors __metadata__ and --json output); caller frees. NULL on -ENOMEM.
char *nn_value_to_json(const struct nn_value *v);
// Parse JSON text into a value tree. -EINVAL on malformed input.
int nn_value_from_json(const char *text, size_t len, struct nn_value **out);
