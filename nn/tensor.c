// Host tensors and the ordered tensor map that every weights and oracle file is read into.
#include "tensor.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

size_t nn_dtype_size(enum nn_dtype t)
{
	switch (t) {
	case NN_DTYPE_F32: return 4;
	case NN_DTYPE_F16: return 2;
	case NN_DTYPE_BF16: return 2;
	case NN_DTYPE_F64: return 8;
	case NN_DTYPE_U8: return 1;
	case NN_DTYPE_I8: return 1;
	case NN_DTYPE_I16: return 2;
	case NN_DTYPE_I32: return 4;
	case NN_DTYPE_I64: return 8;
	case NN_DTYPE_BOOL: return 1;
	}
	return 0;
}

const char *nn_dtype_name(enum nn_dtype t)
{
	switch (t) {
	case NN_DTYPE_F32: return "F32";
	case NN_DTYPE_F16: return "F16";
	case NN_DTYPE_BF16: return "BF16";
	case NN_DTYPE_F64: return "F64";
	case NN_DTYPE_U8: return "U8";
	case NN_DTYPE_I8: return "I8";
	case NN_DTYPE_I16: return "I16";
	case NN_DTYPE_I32: return "I32";
	case NN_DTYPE_I64: return "I64";
	case NN_DTYPE_BOOL: return "BOOL";
	}
	return "?";
}

int nn_dtype_from_name(const char *name, enum nn_dtype *out)
{
	for (int t = NN_DTYPE_F32; t <= NN_DTYPE_BOOL; t++) {
		if (strcmp(name, nn_dtype_name((enum nn_dtype)t)) == 0) {
			*out = (enum nn_dtype)t;
			return 0;
		}
	}
	return -EINVAL;
}

int64_t nn_tensor_numel(const struct nn_tensor *t)
{
	int64_t n = 1;
	for (uint32_t i = 0; i < t->ndim; i++)
		n *= t->shape[i];
	return n;
}

static uint32_t f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static float bits_f32(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

float nn_half_to_float(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1F;
	uint32_t man = h & 0x3FF;
	if (exp == 0x1F) // inf / nan, payload kept
		return bits_f32(sign | 0x7F800000u | (man << 13));
	if (exp == 0) {
		if (man == 0)
			return bits_f32(sign);
		// Subnormal: normalise the mantissa into an fp32 normal number (exact).
		int e = -1;
		do {
			e++;
			man <<= 1;
		} while (!(man & 0x400));
		return bits_f32(sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FF) << 13));
	}
	return bits_f32(sign | ((exp + 127 - 15) << 23) | (man << 13));
}

uint16_t nn_float_to_half(float f)
{
	uint32_t u = f32_bits(f);
	uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
	uint32_t exp = (u >> 23) & 0xFF;
	uint32_t man = u & 0x7FFFFF;
	if (exp == 0xFF) {
		if (!man)
			return sign | 0x7C00;
		// NaN stays NaN (quiet bit forced so that payload truncation cannot make it inf).
		return sign | 0x7E00 | (uint16_t)(man >> 13);
	}
	int32_t e = (int32_t)exp - 127 + 15;
	if (e >= 0x1F)
		return sign | 0x7C00; // overflow -> inf
	if (e <= 0) {
		// Result is subnormal or zero: shift the full 24-bit significand, round to nearest even.
		if (e < -10)
			return sign; // below half the smallest subnormal -> +-0
		uint32_t m = man | 0x800000;
		uint32_t shift = (uint32_t)(14 - e);
		uint32_t half = m >> shift;
		uint32_t rem = m & ((1u << shift) - 1);
		uint32_t mid = 1u << (shift - 1);
		if (rem > mid || (rem == mid && (half & 1)))
			half++;
		return sign | (uint16_t)half; // a carry into the exponent field is correct rounding
	}
	uint32_t h = ((uint32_t)e << 10) | (man >> 13);
	uint32_t rem = man & 0x1FFF;
	if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
		h++; // may carry into the exponent, up to inf: that is round-to-nearest
	return sign | (uint16_t)h;
}

float nn_tensor_get_f32(const struct nn_tensor *t, int64_t i)
{
	const uint8_t *p = (const uint8_t *)t->data + (size_t)i * nn_dtype_size(t->dtype);
	switch (t->dtype) {
	case NN_DTYPE_F32: { float v; memcpy(&v, p, 4); return v; }
	case NN_DTYPE_F16: { uint16_t v; memcpy(&v, p, 2); return nn_half_to_float(v); }
	case NN_DTYPE_BF16: { uint16_t v; memcpy(&v, p, 2); return bits_f32((uint32_t)v << 16); }
	case NN_DTYPE_F64: { double v; memcpy(&v, p, 8); return (float)v; }
	case NN_DTYPE_U8: return (float)*p;
	case NN_DTYPE_I8: return (float)(int8_t)*p;
	case NN_DTYPE_I16: { int16_t v; memcpy(&v, p, 2); return (float)v; }
	case NN_DTYPE_I32: { int32_t v; memcpy(&v, p, 4); return (float)v; }
	case NN_DTYPE_I64: { int64_t v; memcpy(&v, p, 8); return (float)v; }
	case NN_DTYPE_BOOL: return *p ? 1.0f : 0.0f;
	}
	return 0.0f;
}

float *nn_tensor_to_f32(const struct nn_tensor *t)
{
	int64_t n = nn_tensor_numel(t);
	float *out = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
	if (!out)
		return NULL;
	if (t->dtype == NN_DTYPE_F32) {
		memcpy(out, t->data, (size_t)n * sizeof(float));
		return out;
	}
	for (int64_t i = 0; i < n; i++)
		out[i] = nn_tensor_get_f32(t, i);
	return out;
}

int nn_tensor_map_create(struct nn_tensor_map **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void nn_tensor_map_destroy(struct nn_tensor_map **pmap)
{
	if (!pmap || !*pmap)
		return;
	struct nn_tensor_map *m = *pmap;
	for (size_t i = 0; i < m->count; i++) {
		free(m->items[i].name);
		free(m->items[i].data);
	}
	free(m->items);
	nn_value_destroy(&m->metadata);
	free(m->index);
	free(m);
	*pmap = NULL;
}

// Open-addressing hash of item indices (+1, 0 = empty), at most half full. It is only trusted when
// it covers exactly map->count items, so a map assembled by hand falls back to a linear scan.
struct nn_tensor_index {
	size_t cap, count;
	size_t slots[];
};

static size_t name_hash(const char *s)
{
	size_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static void index_put(struct nn_tensor_index *ix, const struct nn_tensor *items, size_t i)
{
	size_t h = name_hash(items[i].name) & (ix->cap - 1);
	while (ix->slots[h])
		h = (h + 1) & (ix->cap - 1);
	ix->slots[h] = i + 1;
	ix->count++;
}

// Rebuilds the index for count items when it is missing, stale or too full; false on -ENOMEM.
static bool index_ensure(struct nn_tensor_map *map, size_t count)
{
	struct nn_tensor_index *ix = map->index;
	if (ix && ix->count == map->count && 2 * count <= ix->cap)
		return true;
	size_t cap = 64;
	while (cap < 2 * count)
		cap *= 2;
	free(map->index);
	map->index = ix = calloc(1, sizeof(*ix) + cap * sizeof(size_t));
	if (!ix)
		return false;
	ix->cap = cap;
	for (size_t i = 0; i < map->count; i++)
		index_put(ix, map->items, i);
	return true;
}

const struct nn_tensor *nn_tensor_map_find(const struct nn_tensor_map *map, const char *name)
{
	if (!map || !name)
		return NULL;
	const struct nn_tensor_index *ix = map->index;
	if (ix && ix->count == map->count) {
		for (size_t h = name_hash(name) & (ix->cap - 1); ix->slots[h]; h = (h + 1) & (ix->cap - 1))
			if (strcmp(map->items[ix->slots[h] - 1].name, name) == 0)
				return &map->items[ix->slots[h] - 1];
		return NULL;
	}
	for (size_t i = 0; i < map->count; i++)
		if (strcmp(map->items[i].name, name) == 0)
			return &map->items[i];
	return NULL;
}

int nn_tensor_map_add(struct nn_tensor_map *map, const char *name, enum nn_dtype dtype, uint32_t ndim,
                      const int64_t *shape, const void *data)
{
	if (ndim > NN_MAX_DIMS) {
		LOGE("tensor %s: %u dims, at most %d supported", name, ndim, NN_MAX_DIMS);
		return -EINVAL;
	}
	if (!index_ensure(map, map->count + 1))
		return -ENOMEM;
	if (nn_tensor_map_find(map, name)) {
		LOGE("tensor %s: duplicate name", name);
		return -EEXIST;
	}
	if (map->count == map->cap) {
		size_t cap = map->cap ? map->cap * 2 : 16;
		struct nn_tensor *p = realloc(map->items, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		map->items = p;
		map->cap = cap;
	}
	struct nn_tensor t = { .dtype = dtype, .ndim = ndim };
	size_t n = 1;
	for (uint32_t i = 0; i < ndim; i++) {
		if (shape[i] < 0) {
			LOGE("tensor %s: negative dim %lld", name, (long long)shape[i]);
			return -EINVAL;
		}
		if (shape[i] && n > SIZE_MAX / 16 / (size_t)shape[i]) {
			LOGE("tensor %s: shape too large", name);
			return -EINVAL;
		}
		t.shape[i] = shape[i];
		n *= (size_t)shape[i];
	}
	t.nbytes = n * nn_dtype_size(dtype);
	t.name = strdup(name);
	t.data = malloc(t.nbytes ? t.nbytes : 1);
	if (!t.name || !t.data) {
		free(t.name);
		free(t.data);
		return -ENOMEM;
	}
	if (t.nbytes && data)
		memcpy(t.data, data, t.nbytes);
	else if (t.nbytes)
		memset(t.data, 0, t.nbytes);
	map->items[map->count++] = t;
	index_put(map->index, map->items, map->count - 1);
	return 0;
}
