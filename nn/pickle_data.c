// Reading what the pickle VM built: dict lookups, conversion of plain data to nn_value, and
// strided tensor views copied out as contiguous host tensors.
#include <errno.h>
#include <string.h>

#include "log.h"
#include "pickle.h"

#define PK_MAX_NUMEL ((int64_t)1 << 31)
#define PK_MAX_VALUE_NODES 1000000

const struct nn_pk *nn_pk_dict_get(const struct nn_pk *d, const char *key)
{
	if (!d || d->kind != NN_PK_DICT)
		return NULL;
	size_t n = strlen(key);
	for (size_t i = d->count; i-- > 0;) { // the VM appends duplicates; the last one wins, as in Python
		const struct nn_pk *k = d->items[i];
		if (k->kind == NN_PK_STR && k->len == n && memcmp(k->s, key, n) == 0)
			return d->vals[i];
	}
	return NULL;
}

const struct nn_pk *nn_pk_object_dict(const struct nn_pk *obj)
{
	if (!obj || obj->kind != NN_PK_OBJECT || !obj->state || obj->state->kind != NN_PK_DICT)
		return NULL;
	return obj->state;
}

// *budget counts the nodes still allowed: shared sub-structures (memo references) are copied
// each time they appear, so a hostile pickle could otherwise ask for exponentially many.
static int to_value(const struct nn_pk *v, struct nn_value **out, int depth, size_t *budget)
{
	*out = NULL;
	if (depth > 100 || *budget == 0) {
		LOGE("pickle: data nested deeper than 100 levels or larger than %d nodes", PK_MAX_VALUE_NODES);
		return -EINVAL;
	}
	(*budget)--;
	struct nn_value *r = NULL;
	int rc = -ENOMEM;
	switch (v->kind) {
	case NN_PK_BOOL: r = nn_value_bool(v->i != 0); break;
	case NN_PK_INT: r = nn_value_int(v->i); break;
	case NN_PK_FLOAT: r = nn_value_float(v->f); break;
	case NN_PK_STR: case NN_PK_BYTES: r = nn_value_strn(v->s, v->len); break;
	case NN_PK_LIST: case NN_PK_TUPLE:
		if (!(r = nn_value_list()))
			break;
		for (size_t i = 0; i < v->count; i++) {
			struct nn_value *it;
			if ((rc = to_value(v->items[i], &it, depth + 1, budget)) < 0 || (rc = nn_value_list_append(r, it)) < 0)
				goto fail;
		}
		break;
	case NN_PK_DICT:
		if (!(r = nn_value_dict()))
			break;
		for (size_t i = 0; i < v->count; i++) {
			struct nn_value *k, *x;
			if ((rc = to_value(v->items[i], &k, depth + 1, budget)) < 0)
				goto fail;
			if ((rc = to_value(v->vals[i], &x, depth + 1, budget)) < 0) {
				nn_value_destroy(&k);
				goto fail;
			}
			if ((rc = nn_value_dict_push(r, k, x)) < 0)
				goto fail;
		}
		if ((rc = nn_value_dict_check_unique(r)) < 0) {
			LOGE("pickle: dict with duplicate keys");
			goto fail;
		}
		break;
	default: r = nn_value_none(); break; // objects, tensors, classes carry no plain data
	}
	if (!r)
		return -ENOMEM;
	*out = r;
	return 0;
fail:
	nn_value_destroy(&r);
	return rc;
}

int nn_pk_to_value(const struct nn_pk *v, struct nn_value **out)
{
	size_t budget = PK_MAX_VALUE_NODES;
	return to_value(v, out, 0, &budget);
}

int64_t nn_pk_tensor_nbytes(const struct nn_pk *t)
{
	if (!t || t->kind != NN_PK_TENSOR)
		return -1;
	int64_t numel = 1;
	for (uint32_t i = 0; i < t->ndim; i++) {
		if (t->shape[i] < 0 || t->shape[i] > PK_MAX_NUMEL)
			return -1;
		numel *= t->shape[i];
		if (numel > PK_MAX_NUMEL)
			return -1;
	}
	return numel * (int64_t)nn_dtype_size(t->dtype);
}

int nn_pk_tensor_add(const struct nn_pk *t, const char *name, struct nn_tensor_map *map)
{
	if (!t || t->kind != NN_PK_TENSOR || !t->storage) {
		LOGE("checkpoint: tensor %s: not a tensor", name);
		return -EINVAL;
	}
	size_t es = nn_dtype_size(t->dtype);
	int64_t snumel = (int64_t)(t->storage->nbytes / es);
	int64_t numel = 1, last = t->offset;
	bool contiguous = true;
	int64_t expect = 1;
	for (uint32_t i = t->ndim; i-- > 0;) {
		int64_t n = t->shape[i], s = t->stride[i];
		if (n < 0 || s < 0 || n > PK_MAX_NUMEL || (n > 1 && s > snumel)) {
			LOGE("checkpoint: tensor %s: bad size %lld or stride %lld in dim %u", name, (long long)n,
			     (long long)s, i);
			return -EINVAL;
		}
		numel *= n;
		if (numel > PK_MAX_NUMEL) {
			LOGE("checkpoint: tensor %s: more than %lld elements", name, (long long)PK_MAX_NUMEL);
			return -EINVAL;
		}
		if (n > 1 && s != expect)
			contiguous = false;
		expect *= n;
		if (n > 0)
			last += (n - 1) * s;
	}
	if (numel > 0 && (t->offset < 0 || last >= snumel)) {
		LOGE("checkpoint: tensor %s: view reaches element %lld of a %lld-element storage", name,
		     (long long)last, (long long)snumel);
		return -EINVAL;
	}
	int rc = nn_tensor_map_add(map, name, t->dtype, t->ndim, t->shape, NULL);
	if (rc < 0)
		return rc;
	if (numel == 0)
		return 0;
	uint8_t *dst = map->items[map->count - 1].data;
	const uint8_t *src = (const uint8_t *)t->storage->data + (size_t)t->offset * es;
	if (contiguous) {
		memcpy(dst, src, (size_t)numel * es);
		return 0;
	}
	// Non-contiguous view (a transposed or sliced tensor was saved): walk it in row-major order.
	int64_t idx[NN_MAX_DIMS] = { 0 };
	for (int64_t k = 0; k < numel; k++) {
		int64_t off = 0;
		for (uint32_t i = 0; i < t->ndim; i++)
			off += idx[i] * t->stride[i];
		memcpy(dst + (size_t)k * es, src + (size_t)off * es, es);
		for (uint32_t i = t->ndim; i-- > 0;) {
			if (++idx[i] < t->shape[i])
				break;
			idx[i] = 0;
		}
	}
	return 0;
}
