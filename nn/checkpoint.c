// Checkpoint loading: torch .pt archives walked like nn.Module.state_dict() does, and our own
// safetensors files whose metadata carries the architecture, class names and strides.
#include "checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "log.h"
#include "pickle.h"
#include "safetensors.h"
#include "zip.h"

#define CK_MAX_DEPTH 64
#define CK_MAX_NAME 1024
#define CK_MAX_MODULES 200000

struct pt_ctx {
	const char *path;
	struct nn_zip *zip;
	char prefix[256]; // top folder of the archive ("archive", "gelan-t", ...)
	struct nn_tensor_map *state;
	size_t bytes, max_bytes; // materialised tensor bytes, bounded by the file size
	size_t visits;           // modules walked: a module listed twice in each parent would be exponential
};

void nn_checkpoint_destroy(struct nn_checkpoint **pck)
{
	if (!pck || !*pck)
		return;
	nn_tensor_map_destroy(&(*pck)->state);
	nn_value_destroy(&(*pck)->arch);
	nn_value_destroy(&(*pck)->names);
	free(*pck);
	*pck = NULL;
}

static int load_storage(void *user, const char *key, const void **data, size_t *len)
{
	struct pt_ctx *c = user;
	char name[512];
	if (snprintf(name, sizeof(name), "%s/data/%s", c->prefix, key) >= (int)sizeof(name)) {
		LOGE("checkpoint %s: storage key too long", c->path);
		return -EINVAL;
	}
	int rc = nn_zip_find(c->zip, name, data, len);
	if (rc == -ENOENT)
		LOGE("checkpoint %s: storage %s missing from the archive", c->path, name);
	return rc;
}

static int add_tensor(struct pt_ctx *c, const struct nn_pk *t, const char *name)
{
	// Checked before copying: a stride-0 view of a small storage could ask for gigabytes.
	int64_t n = nn_pk_tensor_nbytes(t);
	if (n >= 0 && (size_t)n > c->max_bytes - c->bytes) {
		LOGE("checkpoint %s: tensors add up to more than %zu bytes at %s", c->path, c->max_bytes, name);
		return -EINVAL;
	}
	int rc = nn_pk_tensor_add(t, name, c->state);
	if (rc < 0)
		return rc;
	c->bytes += c->state->items[c->state->count - 1].nbytes;
	return 0;
}

static bool in_list(const struct nn_pk *l, const struct nn_pk *key)
{
	for (size_t i = 0; l && (l->kind == NN_PK_LIST || l->kind == NN_PK_TUPLE) && i < l->count; i++)
		if (l->items[i]->kind == NN_PK_STR && l->items[i]->len == key->len && !memcmp(l->items[i]->s, key->s, key->len))
			return true;
	return false;
}

// One tensor dict (_parameters or _buffers) of a module; None entries are skipped like state_dict().
static int add_tensor_dict(struct pt_ctx *c, const struct nn_pk *d, const struct nn_pk *skip, const char *prefix)
{
	char name[CK_MAX_NAME];
	for (size_t i = 0; d && d->kind == NN_PK_DICT && i < d->count; i++) {
		const struct nn_pk *k = d->items[i], *v = d->vals[i];
		if (v->kind == NN_PK_NONE || in_list(skip, k))
			continue;
		if (k->kind != NN_PK_STR || snprintf(name, sizeof(name), "%s%s", prefix, k->s) >= (int)sizeof(name)) {
			LOGE("checkpoint %s: bad tensor name under %s", c->path, prefix);
			return -EINVAL;
		}
		int rc = add_tensor(c, v, name);
		if (rc < 0)
			return rc;
	}
	return 0;
}

// Mirrors Module.state_dict(): own parameters, then persistent buffers, then children in order.
static int walk_module(struct pt_ctx *c, const struct nn_pk *m, const char *prefix, int depth)
{
	const struct nn_pk *d = nn_pk_object_dict(m);
	if (!d) {
		LOGE("checkpoint %s: module %s has no state", c->path, *prefix ? prefix : "(root)");
		return -EINVAL;
	}
	if (depth > CK_MAX_DEPTH || ++c->visits > CK_MAX_MODULES) {
		LOGE("checkpoint %s: module tree deeper than %d or larger than %d modules at %s", c->path, CK_MAX_DEPTH,
		     CK_MAX_MODULES, prefix);
		return -EINVAL;
	}
	int rc = add_tensor_dict(c, nn_pk_dict_get(d, "_parameters"), NULL, prefix);
	if (rc == 0)
		rc = add_tensor_dict(c, nn_pk_dict_get(d, "_buffers"), nn_pk_dict_get(d, "_non_persistent_buffers_set"),
		                     prefix);
	const struct nn_pk *mods = nn_pk_dict_get(d, "_modules");
	char sub[CK_MAX_NAME];
	for (size_t i = 0; rc == 0 && mods && mods->kind == NN_PK_DICT && i < mods->count; i++) {
		const struct nn_pk *k = mods->items[i], *v = mods->vals[i];
		if (v->kind == NN_PK_NONE)
			continue;
		if (k->kind != NN_PK_STR || snprintf(sub, sizeof(sub), "%s%s.", prefix, k->s) >= (int)sizeof(sub)) {
			LOGE("checkpoint %s: bad module name under %s", c->path, prefix);
			return -EINVAL;
		}
		rc = walk_module(c, v, sub, depth + 1);
	}
	return rc;
}

// names: a list of strings, or {0: 'a', 1: 'b'} (int or numeric-string keys) turned into a list.
static int names_to_list(const struct nn_value *v, struct nn_value **out)
{
	*out = NULL;
	if (!v || v->kind == NN_VALUE_NONE)
		return 0;
	if (v->kind == NN_VALUE_LIST) {
		*out = nn_value_clone(v);
		return *out ? 0 : -ENOMEM;
	}
	if (v->kind != NN_VALUE_DICT)
		return -EINVAL;
	// Keys 0..n-1 in any order, each exactly once.
	size_t n = v->u.dict.count;
	const struct nn_value **slot = calloc(n ? n : 1, sizeof(*slot));
	struct nn_value *l = nn_value_list();
	int rc = slot && l ? 0 : -ENOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct nn_value *k = v->u.dict.keys[i];
		char *end = NULL;
		int64_t ki = k->kind == NN_VALUE_INT ? k->u.i : k->kind == NN_VALUE_STR ? strtoll(k->u.s, &end, 10) : -1;
		if ((end && (end == k->u.s || *end)) || ki < 0 || (uint64_t)ki >= n || slot[ki] ||
		    v->u.dict.vals[i]->kind != NN_VALUE_STR)
			rc = -EINVAL;
		else
			slot[ki] = v->u.dict.vals[i];
	}
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = nn_value_list_append(l, nn_value_clone(slot[i]));
	free(slot);
	if (rc < 0) {
		nn_value_destroy(&l);
		return rc;
	}
	*out = l;
	return 0;
}

static void set_strides_from_value(struct nn_checkpoint *ck, const struct nn_value *v)
{
	ck->stride_count = 0;
	for (size_t i = 0; i < nn_value_len(v) && ck->stride_count < 8; i++) {
		double d;
		if (nn_value_as_double(nn_value_list_at(v, i), &d))
			ck->strides[ck->stride_count++] = (float)d;
	}
}

// The model object's yaml, names and stride attributes.
static int read_attributes(struct pt_ctx *c, const struct nn_pk *model, struct nn_checkpoint *ck)
{
	const struct nn_pk *d = nn_pk_object_dict(model);
	const struct nn_pk *yaml = nn_pk_dict_get(d, "yaml"), *names = nn_pk_dict_get(d, "names");
	const struct nn_pk *stride = nn_pk_dict_get(d, "stride");
	struct nn_value *nv = NULL;
	int rc = 0;
	if (yaml && yaml->kind == NN_PK_DICT && (rc = nn_pk_to_value(yaml, &ck->arch)) < 0)
		return rc;
	if (names && (rc = nn_pk_to_value(names, &nv)) == 0) {
		rc = names_to_list(nv, &ck->names);
		nn_value_destroy(&nv);
		if (rc == -EINVAL) {
			LOGW("checkpoint %s: class names are not a list or an index dict; ignored", c->path);
			rc = 0;
		}
	}
	if (rc < 0)
		return rc;
	if (stride && stride->kind == NN_PK_TENSOR && stride->ndim <= 1) {
		struct nn_tensor_map *tmp = NULL;
		if ((rc = nn_tensor_map_create(&tmp)) < 0)
			return rc;
		if ((rc = nn_pk_tensor_add(stride, "stride", tmp)) == 0)
			for (int64_t i = 0; i < nn_tensor_numel(&tmp->items[0]) && ck->stride_count < 8; i++)
				ck->strides[ck->stride_count++] = nn_tensor_get_f32(&tmp->items[0], i);
		nn_tensor_map_destroy(&tmp);
	} else if (stride && (rc = nn_pk_to_value(stride, &nv)) == 0) {
		set_strides_from_value(ck, nv);
		nn_value_destroy(&nv);
	}
	return rc;
}

static int find_prefix(struct pt_ctx *c)
{
	for (size_t i = 0; i < nn_zip_count(c->zip); i++) {
		const char *n = nn_zip_name(c->zip, i), *slash = strchr(n, '/');
		if (slash && strcmp(slash, "/data.pkl") == 0 && (size_t)(slash - n) < sizeof(c->prefix)) {
			memcpy(c->prefix, n, (size_t)(slash - n));
			c->prefix[slash - n] = '\0';
			return 0;
		}
	}
	LOGE("checkpoint %s: zip has no <folder>/data.pkl (not a torch.save archive)", c->path);
	return -EINVAL;
}

static int load_pt(const char *path, struct nn_checkpoint *ck)
{
	struct pt_ctx c = { .path = path };
	struct nn_pickle *pk = NULL;
	struct stat st;
	int rc;
	if ((rc = nn_zip_open(path, &c.zip)) < 0)
		return rc;
	if ((rc = find_prefix(&c)) < 0)
		goto fail;
	c.max_bytes = (stat(path, &st) == 0 ? 2 * (size_t)st.st_size : 0) + ((size_t)16 << 20);
	char pkl_name[300];
	const void *pkl;
	size_t pkl_len;
	snprintf(pkl_name, sizeof(pkl_name), "%s/data.pkl", c.prefix);
	if ((rc = nn_zip_find(c.zip, pkl_name, &pkl, &pkl_len)) < 0)
		goto fail;
	if ((rc = nn_pickle_load(pkl, pkl_len, path, load_storage, &c, &pk)) < 0)
		goto fail;
	if ((rc = nn_tensor_map_create(&ck->state)) < 0)
		goto fail;
	c.state = ck->state;
	const struct nn_pk *root = nn_pickle_root(pk), *model = NULL;
	const struct nn_pk *ema = nn_pk_dict_get(root, "ema");
	if (ema && ema->kind != NN_PK_NONE) {
		model = ema;
		strcpy(ck->source, "ema");
	} else {
		model = root->kind == NN_PK_OBJECT ? root : nn_pk_dict_get(root, "model");
		strcpy(ck->source, "model");
	}
	if (model && model->kind == NN_PK_OBJECT) {
		if ((rc = walk_module(&c, model, "", 0)) < 0 || (rc = read_attributes(&c, model, ck)) < 0)
			goto fail;
	} else if (root->kind == NN_PK_DICT && !model) {
		// A bare state dict: name -> tensor.
		for (size_t i = 0; i < root->count; i++) {
			if (root->items[i]->kind != NN_PK_STR || root->vals[i]->kind != NN_PK_TENSOR) {
				LOGE("checkpoint %s: no 'model' entry and not a state dict", path);
				rc = -EINVAL;
				goto fail;
			}
			if ((rc = add_tensor(&c, root->vals[i], root->items[i]->s)) < 0)
				goto fail;
		}
	} else {
		LOGE("checkpoint %s: 'model' is not a module object", path);
		rc = -EINVAL;
		goto fail;
	}
	if (ck->state->count == 0) {
		LOGE("checkpoint %s: no tensors found", path);
		rc = -EINVAL;
	}
fail:
	nn_pickle_destroy(&pk);
	nn_zip_close(&c.zip);
	return rc;
}

static int parse_meta_json(const struct nn_value *md, const char *key, struct nn_value **out)
{
	const struct nn_value *s = nn_value_dict_get(md, key);
	*out = NULL;
	if (!s || s->kind != NN_VALUE_STR)
		return 0;
	return nn_value_from_json(s->u.s, strlen(s->u.s), out);
}

static int load_safetensors(const char *path, struct nn_checkpoint *ck)
{
	struct nn_value *names = NULL, *strides = NULL;
	int rc = nn_safetensors_read(path, &ck->state);
	if (rc < 0)
		return rc;
	strcpy(ck->source, "safetensors");
	const struct nn_value *md = ck->state->metadata;
	// Ours writes "arch"/"strides"; the older export beside the fixtures used "yaml"/"stride" "8,16,32".
	if ((rc = parse_meta_json(md, "arch", &ck->arch)) < 0 ||
	    (!ck->arch && (rc = parse_meta_json(md, "yaml", &ck->arch)) < 0) ||
	    (rc = parse_meta_json(md, "names", &names)) < 0 || (rc = parse_meta_json(md, "strides", &strides)) < 0)
		goto fail;
	if (names && (rc = names_to_list(names, &ck->names)) < 0) {
		LOGE("safetensors %s: metadata names is not a list or an index dict", path);
		goto fail;
	}
	if (strides) {
		set_strides_from_value(ck, strides);
	} else if (nn_value_dict_get(md, "stride") && nn_value_dict_get(md, "stride")->kind == NN_VALUE_STR) {
		char *end, *s = nn_value_dict_get(md, "stride")->u.s;
		while (*s && ck->stride_count < 8) {
			float f = strtof(s, &end);
			if (end == s)
				break;
			ck->strides[ck->stride_count++] = f;
			s = *end == ',' ? end + 1 : end;
		}
	}
	rc = 0;
fail:
	nn_value_destroy(&names);
	nn_value_destroy(&strides);
	return rc;
}

int nn_checkpoint_load(const char *path, struct nn_checkpoint **out)
{
	struct nn_checkpoint *ck = calloc(1, sizeof(*ck));
	*out = NULL;
	if (!ck)
		return -ENOMEM;
	if (access(path, R_OK) != 0) {
		int err = errno;
		LOGE("model %s: %s", path, strerror(err));
		free(ck);
		return err == ENOENT ? -ENOENT : -EIO;
	}
	bool zip = nn_zip_probe(path);
	int rc = zip ? load_pt(path, ck) : load_safetensors(path, ck);
	if (rc < 0) {
		LOGE("model %s: cannot be read as a %s checkpoint (see above)%s", path, zip ? "PyTorch (.pt)" : "safetensors",
		     zip ? "" : "; it is not a PyTorch zip archive either");
		nn_checkpoint_destroy(&ck);
		return rc;
	}
	*out = ck;
	return 0;
}

static int meta_put(struct nn_value *md, const char *key, struct nn_value *json_of)
{
	char *s = json_of ? nn_value_to_json(json_of) : NULL;
	int rc = s ? nn_value_dict_set(md, nn_value_str(key), nn_value_str(s)) : -ENOMEM;
	free(s);
	return rc;
}

int nn_checkpoint_save_safetensors(const struct nn_checkpoint *ck, const char *path)
{
	struct nn_value *md = nn_value_dict(), *strides = nn_value_list();
	int rc = -ENOMEM;
	if (!md || !strides)
		goto fail;
	for (uint32_t i = 0; i < ck->stride_count; i++)
		if ((rc = nn_value_list_append(strides, nn_value_float(ck->strides[i]))) < 0)
			goto fail;
	if ((rc = nn_value_dict_set(md, nn_value_str("format"), nn_value_str("vkyolo-1"))) < 0 ||
	    (ck->arch && (rc = meta_put(md, "arch", ck->arch)) < 0) ||
	    (ck->names && (rc = meta_put(md, "names", ck->names)) < 0) || (rc = meta_put(md, "strides", strides)) < 0)
		goto fail;
	// A shallow view of the state with our metadata: the tensors are written, never copied.
	struct nn_tensor_map view = { .items = ck->state->items, .count = ck->state->count, .metadata = md };
	rc = nn_safetensors_write(path, &view);
fail:
	nn_value_destroy(&md);
	nn_value_destroy(&strides);
	return rc;
}
