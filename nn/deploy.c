// Deployment conversion of PGI models (see deploy.h). Matches the mapping of the official
// tools/reparameterization notebook for yolov9-t/s/m/c/e without a per-model table.
#include "deploy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define MAX_LAYERS 256

struct deploy_rows {
	const struct nn_value *row[MAX_LAYERS]; // [from, number, module, args] of every layer
	uint32_t n_backbone, n;
};

static int collect_rows(const struct nn_value *arch, struct deploy_rows *rows)
{
	const char *parts[2] = { "backbone", "head" };
	rows->n = 0;
	for (int p = 0; p < 2; p++) {
		const struct nn_value *list = nn_value_dict_get(arch, parts[p]);
		if (!list || list->kind != NN_VALUE_LIST) {
			LOGE("deploy: architecture has no '%s' list", parts[p]);
			return -EINVAL;
		}
		for (size_t i = 0; i < nn_value_len(list); i++) {
			const struct nn_value *r = nn_value_list_at(list, i);
			if (!r || r->kind != NN_VALUE_LIST || nn_value_len(r) < 4 || rows->n == MAX_LAYERS) {
				LOGE("deploy: layer %u: malformed row", rows->n);
				return -EINVAL;
			}
			rows->row[rows->n++] = r;
		}
		if (p == 0)
			rows->n_backbone = rows->n;
	}
	return 0;
}

static const char *row_module(const struct nn_value *row)
{
	const struct nn_value *m = nn_value_list_at(row, 2);
	return m && m->kind == NN_VALUE_STR ? m->u.s : "";
}

// Absolute indices of a row's inputs (-1 = the image for layer 0's -1). Returns the count or -1.
static int row_from(const struct nn_value *row, uint32_t layer, int32_t *out, int cap)
{
	const struct nn_value *f = nn_value_list_at(row, 0);
	int64_t v;
	int n = 0;
	if (f->kind == NN_VALUE_LIST) {
		for (size_t i = 0; i < nn_value_len(f) && n < cap; i++) {
			if (!nn_value_as_int(nn_value_list_at(f, i), &v))
				return -1;
			out[n++] = v < 0 ? (int32_t)layer + (int32_t)v : (int32_t)v;
		}
	} else if (nn_value_as_int(f, &v)) {
		out[n++] = v < 0 ? (int32_t)layer + (int32_t)v : (int32_t)v;
	} else {
		return -1;
	}
	return n;
}

static void mark(const struct deploy_rows *rows, int32_t layer, bool *keep)
{
	int32_t from[16];
	if (layer < 0 || keep[layer])
		return;
	keep[layer] = true;
	int n = row_from(rows->row[layer], (uint32_t)layer, from, 16);
	for (int i = 0; i < n; i++)
		mark(rows, from[i], keep);
}

// New index of old layer i; a dropped Silence passes its input through (the image).
static int32_t remap(const struct deploy_rows *rows, const int32_t *new_index, int32_t i)
{
	while (i >= 0 && new_index[i] < 0) {
		int32_t from[16];
		if (row_from(rows->row[i], (uint32_t)i, from, 16) != 1)
			return -2;
		i = from[0];
	}
	return i < 0 ? -1 : new_index[i];
}

// Keeps the description's style: an input written as -1 stays -1 when it is still the previous
// layer, absolute indices stay absolute (remapped).
static struct nn_value *new_from(const struct deploy_rows *rows, const int32_t *new_index, uint32_t old,
                                 const int32_t *from, const bool *relative, int n, bool as_list)
{
	int32_t self = new_index[old];
	struct nn_value *list = as_list ? nn_value_list() : NULL;
	for (int i = 0; i < n; i++) {
		int32_t f = remap(rows, new_index, from[i]);
		if (f == -2) {
			nn_value_destroy(&list);
			return NULL;
		}
		struct nn_value *v = nn_value_int((relative[i] && f == self - 1) || f == -1 ? -1 : f);
		if (!as_list)
			return v;
		if (nn_value_list_append(list, v)) {
			nn_value_destroy(&list);
			return NULL;
		}
	}
	return list;
}

static int build_arch(const struct nn_value *arch, const struct deploy_rows *rows, const bool *keep,
                      const int32_t *new_index, uint32_t head, const int32_t *main_in, int n_main,
                      struct nn_value **out)
{
	struct nn_value *a = nn_value_dict(), *bb = nn_value_list(), *hd = nn_value_list();
	int ret = -ENOMEM;
	if (!a || !bb || !hd)
		goto fail;
	for (size_t i = 0; i < nn_value_len(arch); i++) {
		const char *k = arch->u.dict.keys[i]->kind == NN_VALUE_STR ? arch->u.dict.keys[i]->u.s : "";
		if (!strcmp(k, "backbone") || !strcmp(k, "head"))
			continue;
		if (nn_value_dict_set(a, nn_value_clone(arch->u.dict.keys[i]), nn_value_clone(arch->u.dict.vals[i])))
			goto fail;
	}
	for (uint32_t i = 0; i < rows->n; i++) {
		if (!keep[i] && i != head)
			continue;
		const struct nn_value *r = rows->row[i];
		int32_t from[16];
		bool relative[16] = { 0 };
		int n = i == head ? n_main : row_from(r, i, from, 16);
		const struct nn_value *f0 = nn_value_list_at(r, 0);
		if (i == head) {
			memcpy(from, main_in, sizeof(int32_t) * n_main);
		} else {
			for (int j = 0; j < n; j++) {
				int64_t raw = 0;
				nn_value_as_int(f0->kind == NN_VALUE_LIST ? nn_value_list_at(f0, j) : f0, &raw);
				relative[j] = raw < 0;
			}
		}
		struct nn_value *row = nn_value_list();
		struct nn_value *nf = new_from(rows, new_index, i, from, relative, n,
		                               i == head || f0->kind == NN_VALUE_LIST);
		if (!row || !nf || nn_value_list_append(row, nf) ||
		    nn_value_list_append(row, nn_value_clone(nn_value_list_at(r, 1))) ||
		    nn_value_list_append(row, i == head ? nn_value_str("DDetect") : nn_value_clone(nn_value_list_at(r, 2))) ||
		    nn_value_list_append(row, nn_value_clone(nn_value_list_at(r, 3)))) {
			if (!nf)
				LOGE("deploy: layer %u: cannot remap its inputs", i);
			nn_value_destroy(&row);
			ret = nf ? -ENOMEM : -EINVAL;
			goto fail;
		}
		if (nn_value_list_append(i < rows->n_backbone ? bb : hd, row))
			goto fail;
	}
	if (nn_value_dict_set(a, nn_value_str("backbone"), bb)) {
		bb = NULL;
		goto fail;
	}
	bb = NULL;
	if (nn_value_dict_set(a, nn_value_str("head"), hd)) {
		hd = NULL;
		goto fail;
	}
	*out = a;
	return 0;
fail:
	nn_value_destroy(&a);
	nn_value_destroy(&bb);
	nn_value_destroy(&hd);
	return ret;
}

// "model.38.cv4.0.0.conv.weight" -> "model.22.cv2.0.0.conv.weight"; false when the key is dropped.
static bool rename_key(const char *key, const int32_t *new_index, uint32_t n_layers, uint32_t head,
                       char *out, size_t cap)
{
	char *end;
	if (strncmp(key, "model.", 6) != 0)
		return false;
	unsigned long i = strtoul(key + 6, &end, 10);
	if (end == key + 6 || *end != '.' || i >= n_layers)
		return false;
	const char *rest = end + 1;
	if (i == head) {
		static const char *const map[3][2] = { { "cv4.", "cv2." }, { "cv5.", "cv3." }, { "dfl2.", "dfl." } };
		for (int m = 0; m < 3; m++)
			if (!strncmp(rest, map[m][0], strlen(map[m][0]))) {
				snprintf(out, cap, "model.%d.%s%s", new_index[i], map[m][1], rest + strlen(map[m][0]));
				return true;
			}
		return false; // the auxiliary set cv2/cv3/dfl
	}
	if (new_index[i] < 0)
		return false;
	snprintf(out, cap, "model.%d.%s", new_index[i], rest);
	return true;
}

int nn_checkpoint_deploy(const struct nn_checkpoint *src, struct nn_checkpoint **out)
{
	struct deploy_rows rows;
	bool keep[MAX_LAYERS] = { 0 };
	int32_t new_index[MAX_LAYERS], from[16];
	struct nn_checkpoint *ck = NULL;
	int ret;

	*out = NULL;
	if (!src->arch) {
		LOGE("deploy: the checkpoint carries no architecture");
		return -EINVAL;
	}
	if ((ret = collect_rows(src->arch, &rows)))
		return ret;
	uint32_t head = rows.n - 1;
	if (strcmp(row_module(rows.row[head]), "DualDDetect") != 0) {
		LOGE("deploy: the last layer is %s, not DualDDetect: nothing to convert (already deployable?)",
		     row_module(rows.row[head]));
		return -EINVAL;
	}
	int n_in = row_from(rows.row[head], head, from, 16);
	if (n_in < 2 || n_in % 2) {
		LOGE("deploy: layer %u: DualDDetect needs an even number of inputs, has %d", head, n_in);
		return -EINVAL;
	}
	int n_main = n_in / 2;
	const int32_t *main_in = from + n_main; // second half: the main branch (P3, P4, P5)
	for (int i = 0; i < n_main; i++)
		mark(&rows, main_in[i], keep);
	int32_t next = 0;
	for (uint32_t i = 0; i < head; i++) {
		if (keep[i] && !strcmp(row_module(rows.row[i]), "Silence"))
			keep[i] = false;
		new_index[i] = keep[i] ? next++ : -1;
	}
	new_index[head] = next;

	ck = calloc(1, sizeof(*ck));
	if (!ck)
		return -ENOMEM;
	int32_t main_abs[16];
	for (int i = 0; i < n_main; i++)
		main_abs[i] = main_in[i];
	if ((ret = build_arch(src->arch, &rows, keep, new_index, head, main_abs, n_main, &ck->arch)))
		goto fail;
	if ((ret = nn_tensor_map_create(&ck->state)))
		goto fail;
	for (size_t t = 0; t < src->state->count; t++) {
		const struct nn_tensor *x = &src->state->items[t];
		char name[256];
		if (!rename_key(x->name, new_index, rows.n, head, name, sizeof(name)))
			continue;
		if ((ret = nn_tensor_map_add(ck->state, name, x->dtype, x->ndim, x->shape, x->data)))
			goto fail;
	}
	if (src->names && !(ck->names = nn_value_clone(src->names))) {
		ret = -ENOMEM;
		goto fail;
	}
	memcpy(ck->strides, src->strides, sizeof(ck->strides));
	ck->stride_count = src->stride_count;
	snprintf(ck->source, sizeof(ck->source), "%s", src->source);
	LOGD("deploy: kept %d of %u layers, %zu of %zu tensors", next, head, ck->state->count, src->state->count);
	*out = ck;
	return 0;
fail:
	nn_checkpoint_destroy(&ck);
	return ret;
}
