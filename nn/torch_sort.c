// libstdc++ std::sort (GCC bits/stl_algo.h, stl_heap.h) transcribed to C for (value, index) pairs
// with PyTorch's KeyValueCompDesc comparator. Every step (pivot choice, partition scan, heap sift,
// insertion threshold 16) must stay as in libstdc++ or tie order changes.
#include "torch_sort.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "log.h"

struct kv {
	float v;
	uint32_t i;
};

#define THRESHOLD 16

// KeyValueCompDesc: NaN sorts first, then larger values.
static bool before(const struct kv *a, const struct kv *b)
{
	return (isnan(a->v) && !isnan(b->v)) || a->v > b->v;
}

static void swap(struct kv *a, struct kv *b)
{
	struct kv t = *a;
	*a = *b;
	*b = t;
}

static void push_heap(struct kv *f, ptrdiff_t hole, ptrdiff_t top, struct kv val)
{
	ptrdiff_t parent = (hole - 1) / 2;
	while (hole > top && before(&f[parent], &val)) {
		f[hole] = f[parent];
		hole = parent;
		parent = (hole - 1) / 2;
	}
	f[hole] = val;
}

static void adjust_heap(struct kv *f, ptrdiff_t hole, ptrdiff_t len, struct kv val)
{
	const ptrdiff_t top = hole;
	ptrdiff_t child = hole;
	while (child < (len - 1) / 2) {
		child = 2 * (child + 1);
		if (before(&f[child], &f[child - 1]))
			child--;
		f[hole] = f[child];
		hole = child;
	}
	if ((len & 1) == 0 && child == (len - 2) / 2) {
		child = 2 * (child + 1);
		f[hole] = f[child - 1];
		hole = child - 1;
	}
	push_heap(f, hole, top, val);
}

// std::__partial_sort(first, last, last): make_heap then sort_heap.
static void heap_sort(struct kv *f, ptrdiff_t len)
{
	if (len < 2)
		return;
	for (ptrdiff_t parent = (len - 2) / 2;; parent--) {
		adjust_heap(f, parent, len, f[parent]);
		if (parent == 0)
			break;
	}
	for (ptrdiff_t last = len - 1; last > 0; last--) {
		struct kv val = f[last];
		f[last] = f[0];
		adjust_heap(f, 0, last, val);
	}
}

static void move_median_to_first(struct kv *res, struct kv *a, struct kv *b, struct kv *c)
{
	if (before(a, b)) {
		if (before(b, c))
			swap(res, b);
		else if (before(a, c))
			swap(res, c);
		else
			swap(res, a);
	} else if (before(a, c)) {
		swap(res, a);
	} else if (before(b, c)) {
		swap(res, c);
	} else {
		swap(res, b);
	}
}

static struct kv *unguarded_partition(struct kv *first, struct kv *last, const struct kv *pivot)
{
	for (;;) {
		while (before(first, pivot))
			first++;
		last--;
		while (before(pivot, last))
			last--;
		if (!(first < last))
			return first;
		swap(first, last);
		first++;
	}
}

static void introsort_loop(struct kv *first, struct kv *last, int depth)
{
	while (last - first > THRESHOLD) {
		if (depth == 0) {
			heap_sort(first, last - first);
			return;
		}
		depth--;
		struct kv *mid = first + (last - first) / 2;
		move_median_to_first(first, first + 1, mid, last - 1);
		struct kv *cut = unguarded_partition(first + 1, last, first);
		introsort_loop(cut, last, depth);
		last = cut;
	}
}

static void unguarded_linear_insert(struct kv *last)
{
	struct kv val = *last;
	struct kv *next = last - 1;
	while (before(&val, next)) {
		*last = *next;
		last = next;
		next--;
	}
	*last = val;
}

static void insertion_sort(struct kv *first, struct kv *last)
{
	if (first == last)
		return;
	for (struct kv *i = first + 1; i != last; i++) {
		if (before(i, first)) {
			struct kv val = *i;
			for (struct kv *p = i; p != first; p--)
				*p = *(p - 1);
			*first = val;
		} else {
			unguarded_linear_insert(i);
		}
	}
}

int nn_torch_argsort_desc(const float *key, uint32_t *idx, size_t n)
{
	if (n == 0)
		return 0;
	struct kv *a = malloc(n * sizeof(*a));
	if (!a) {
		LOGE("argsort: out of memory for %zu keys", n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		a[i] = (struct kv){ key[i], (uint32_t)i };
	if (n > 1) {
		int lg = 0;
		for (size_t m = n; m > 1; m >>= 1)
			lg++;
		introsort_loop(a, a + n, 2 * lg);
		if (n > THRESHOLD) {
			insertion_sort(a, a + THRESHOLD);
			for (struct kv *i = a + THRESHOLD; i != a + n; i++)
				unguarded_linear_insert(i);
		} else {
			insertion_sort(a, a + n);
		}
	}
	for (size_t i = 0; i < n; i++)
		idx[i] = a[i].i;
	free(a);
	return 0;
}
