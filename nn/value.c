// The generic value tree: constructors, lookups, and JSON text in both directions (safetensors
// metadata carries the architecture dict as JSON, and --json output reuses the emitter).
#include "value.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define JSON_MAX_DEPTH 512

static struct nn_value *value_new(enum nn_value_kind kind)
{
	struct nn_value *v = calloc(1, sizeof(*v));
	if (v)
		v->kind = kind;
	return v;
}

struct nn_value *nn_value_none(void) { return value_new(NN_VALUE_NONE); }
struct nn_value *nn_value_list(void) { return value_new(NN_VALUE_LIST); }
struct nn_value *nn_value_dict(void) { return value_new(NN_VALUE_DICT); }

struct nn_value *nn_value_bool(bool b)
{
	struct nn_value *v = value_new(NN_VALUE_BOOL);
	if (v)
		v->u.b = b;
	return v;
}

struct nn_value *nn_value_int(int64_t i)
{
	struct nn_value *v = value_new(NN_VALUE_INT);
	if (v)
		v->u.i = i;
	return v;
}

struct nn_value *nn_value_float(double f)
{
	struct nn_value *v = value_new(NN_VALUE_FLOAT);
	if (v)
		v->u.f = f;
	return v;
}

struct nn_value *nn_value_strn(const char *s, size_t n)
{
	struct nn_value *v = value_new(NN_VALUE_STR);
	if (!v)
		return NULL;
	v->u.s = malloc(n + 1);
	if (!v->u.s) {
		free(v);
		return NULL;
	}
	if (n)
		memcpy(v->u.s, s, n);
	v->u.s[n] = '\0';
	return v;
}

struct nn_value *nn_value_str(const char *s) { return nn_value_strn(s, strlen(s)); }

void nn_value_destroy(struct nn_value **pv)
{
	if (!pv || !*pv)
		return;
	struct nn_value *v = *pv;
	switch (v->kind) {
	case NN_VALUE_STR:
		free(v->u.s);
		break;
	case NN_VALUE_LIST:
		for (size_t i = 0; i < v->u.list.count; i++)
			nn_value_destroy(&v->u.list.items[i]);
		free(v->u.list.items);
		break;
	case NN_VALUE_DICT:
		for (size_t i = 0; i < v->u.dict.count; i++) {
			nn_value_destroy(&v->u.dict.keys[i]);
			nn_value_destroy(&v->u.dict.vals[i]);
		}
		free(v->u.dict.keys);
		free(v->u.dict.vals);
		break;
	default:
		break;
	}
	free(v);
	*pv = NULL;
}

struct nn_value *nn_value_clone(const struct nn_value *v)
{
	if (!v)
		return NULL;
	struct nn_value *c = NULL;
	switch (v->kind) {
	case NN_VALUE_NONE: return nn_value_none();
	case NN_VALUE_BOOL: return nn_value_bool(v->u.b);
	case NN_VALUE_INT: return nn_value_int(v->u.i);
	case NN_VALUE_FLOAT: return nn_value_float(v->u.f);
	case NN_VALUE_STR: return nn_value_str(v->u.s);
	case NN_VALUE_LIST:
		c = nn_value_list();
		for (size_t i = 0; c && i < v->u.list.count; i++) {
			struct nn_value *it = nn_value_clone(v->u.list.items[i]);
			if (!it || nn_value_list_append(c, it) < 0)
				goto fail;
		}
		return c;
	case NN_VALUE_DICT:
		c = nn_value_dict();
		for (size_t i = 0; c && i < v->u.dict.count; i++) {
			struct nn_value *k = nn_value_clone(v->u.dict.keys[i]);
			struct nn_value *x = nn_value_clone(v->u.dict.vals[i]);
			if (!k || !x) {
				nn_value_destroy(&k);
				nn_value_destroy(&x);
				goto fail;
			}
			if (nn_value_dict_set(c, k, x) < 0)
				goto fail;
		}
		return c;
	}
fail:
	nn_value_destroy(&c);
	return NULL;
}

int nn_value_list_append(struct nn_value *list, struct nn_value *item)
{
	if (!list || list->kind != NN_VALUE_LIST || !item) {
		nn_value_destroy(&item);
		return -EINVAL;
	}
	if (list->u.list.count == list->u.list.cap) {
		size_t cap = list->u.list.cap ? list->u.list.cap * 2 : 4;
		struct nn_value **p = realloc(list->u.list.items, cap * sizeof(*p));
		if (!p) {
			nn_value_destroy(&item);
			return -ENOMEM;
		}
		list->u.list.items = p;
		list->u.list.cap = cap;
	}
	list->u.list.items[list->u.list.count++] = item;
	return 0;
}

static bool key_equal(const struct nn_value *a, const struct nn_value *b)
{
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case NN_VALUE_STR: return strcmp(a->u.s, b->u.s) == 0;
	case NN_VALUE_INT: return a->u.i == b->u.i;
	case NN_VALUE_BOOL: return a->u.b == b->u.b;
	case NN_VALUE_FLOAT: return a->u.f == b->u.f;
	case NN_VALUE_NONE: return true;
	default: return a == b;
	}
}

int nn_value_dict_set(struct nn_value *dict, struct nn_value *key, struct nn_value *val)
{
	if (!dict || dict->kind != NN_VALUE_DICT || !key || !val) {
		nn_value_destroy(&key);
		nn_value_destroy(&val);
		return -EINVAL;
	}
	// An existing key keeps its position and takes the new value, as Python dicts do.
	for (size_t i = 0; i < dict->u.dict.count; i++) {
		if (key_equal(dict->u.dict.keys[i], key)) {
			nn_value_destroy(&dict->u.dict.vals[i]);
			dict->u.dict.vals[i] = val;
			nn_value_destroy(&key);
			return 0;
		}
	}
	return nn_value_dict_push(dict, key, val);
}

int nn_value_dict_push(struct nn_value *dict, struct nn_value *key, struct nn_value *val)
{
	if (!dict || dict->kind != NN_VALUE_DICT || !key || !val) {
		nn_value_destroy(&key);
		nn_value_destroy(&val);
		return -EINVAL;
	}
	if (dict->u.dict.count == dict->u.dict.cap) {
		size_t cap = dict->u.dict.cap ? dict->u.dict.cap * 2 : 4;
		struct nn_value **k = realloc(dict->u.dict.keys, cap * sizeof(*k));
		if (k)
			dict->u.dict.keys = k;
		struct nn_value **v = k ? realloc(dict->u.dict.vals, cap * sizeof(*v)) : NULL;
		if (!v) {
			nn_value_destroy(&key);
			nn_value_destroy(&val);
			return -ENOMEM;
		}
		dict->u.dict.vals = v;
		dict->u.dict.cap = cap;
	}
	dict->u.dict.keys[dict->u.dict.count] = key;
	dict->u.dict.vals[dict->u.dict.count] = val;
	dict->u.dict.count++;
	return 0;
}

static int key_order(const void *pa, const void *pb)
{
	const struct nn_value *a = *(const struct nn_value *const *)pa, *b = *(const struct nn_value *const *)pb;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	switch (a->kind) {
	case NN_VALUE_STR: return strcmp(a->u.s, b->u.s);
	case NN_VALUE_INT: return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
	case NN_VALUE_BOOL: return (int)a->u.b - (int)b->u.b;
	case NN_VALUE_FLOAT: return a->u.f < b->u.f ? -1 : a->u.f > b->u.f;
	case NN_VALUE_NONE: return 0;
	default: return a < b ? -1 : a > b; // containers compare by identity
	}
}

int nn_value_dict_check_unique(const struct nn_value *dict)
{
	size_t n = nn_value_len(dict);
	if (!dict || dict->kind != NN_VALUE_DICT || n < 2)
		return 0;
	const struct nn_value **k = malloc(n * sizeof(*k));
	if (!k)
		return -ENOMEM;
	memcpy(k, dict->u.dict.keys, n * sizeof(*k));
	qsort(k, n, sizeof(*k), key_order);
	int rc = 0;
	for (size_t i = 1; i < n && rc == 0; i++)
		if (key_order(&k[i - 1], &k[i]) == 0)
			rc = -EINVAL;
	free(k);
	return rc;
}

const struct nn_value *nn_value_dict_get(const struct nn_value *dict, const char *key)
{
	if (!dict || dict->kind != NN_VALUE_DICT || !key)
		return NULL;
	for (size_t i = 0; i < dict->u.dict.count; i++) {
		const struct nn_value *k = dict->u.dict.keys[i];
		if (k->kind == NN_VALUE_STR && strcmp(k->u.s, key) == 0)
			return dict->u.dict.vals[i];
	}
	return NULL;
}

const struct nn_value *nn_value_list_at(const struct nn_value *list, size_t i)
{
	if (!list || list->kind != NN_VALUE_LIST || i >= list->u.list.count)
		return NULL;
	return list->u.list.items[i];
}

size_t nn_value_len(const struct nn_value *v)
{
	if (!v)
		return 0;
	if (v->kind == NN_VALUE_LIST)
		return v->u.list.count;
	if (v->kind == NN_VALUE_DICT)
		return v->u.dict.count;
	return 0;
}

bool nn_value_as_double(const struct nn_value *v, double *out)
{
	if (!v)
		return false;
	switch (v->kind) {
	case NN_VALUE_INT: *out = (double)v->u.i; return true;
	case NN_VALUE_FLOAT: *out = v->u.f; return true;
	case NN_VALUE_BOOL: *out = v->u.b ? 1.0 : 0.0; return true;
	default: return false;
	}
}

bool nn_value_as_int(const struct nn_value *v, int64_t *out)
{
	if (!v)
		return false;
	switch (v->kind) {
	case NN_VALUE_INT: *out = v->u.i; return true;
	case NN_VALUE_FLOAT:
		if (!(v->u.f >= -9.2e18 && v->u.f <= 9.2e18))
			return false;
		*out = (int64_t)v->u.f;
		return true;
	case NN_VALUE_BOOL: *out = v->u.b; return true;
	default: return false;
	}
}

// ---- JSON emitter ----

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void json_string(struct sbuf *b, const char *s)
{
	sb_put(b, "\"", 1);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		char esc[8];
		switch (*c) {
		case '"': sb_put(b, "\\\"", 2); break;
		case '\\': sb_put(b, "\\\\", 2); break;
		case '\n': sb_put(b, "\\n", 2); break;
		case '\r': sb_put(b, "\\r", 2); break;
		case '\t': sb_put(b, "\\t", 2); break;
		case '\b': sb_put(b, "\\b", 2); break;
		case '\f': sb_put(b, "\\f", 2); break;
		default:
			if (*c < 0x20) {
				snprintf(esc, sizeof(esc), "\\u%04x", *c);
				sb_puts(b, esc);
			} else {
				sb_put(b, (const char *)c, 1);
			}
		}
	}
	sb_put(b, "\"", 1);
}

static void json_emit(struct sbuf *b, const struct nn_value *v)
{
	char num[40];
	switch (v->kind) {
	case NN_VALUE_NONE: sb_puts(b, "null"); break;
	case NN_VALUE_BOOL: sb_puts(b, v->u.b ? "true" : "false"); break;
	case NN_VALUE_INT:
		snprintf(num, sizeof(num), "%lld", (long long)v->u.i);
		sb_puts(b, num);
		break;
	case NN_VALUE_FLOAT:
		// Python's json spells the non-finite values this way; the parser accepts them back.
		if (isnan(v->u.f)) {
			sb_puts(b, "NaN");
		} else if (isinf(v->u.f)) {
			sb_puts(b, v->u.f > 0 ? "Infinity" : "-Infinity");
		} else {
			// Shortest text that reads back to the same double, like Python's repr.
			for (int prec = 15; prec <= 17; prec++) {
				snprintf(num, sizeof(num), "%.*g", prec, v->u.f);
				if (strtod(num, NULL) == v->u.f)
					break;
			}
			// Keep the float kind through a round trip: "1" would come back as an int.
			if (!strpbrk(num, ".eE"))
				strcat(num, ".0");
			sb_puts(b, num);
		}
		break;
	case NN_VALUE_STR: json_string(b, v->u.s); break;
	case NN_VALUE_LIST:
		sb_put(b, "[", 1);
		for (size_t i = 0; i < v->u.list.count; i++) {
			if (i)
				sb_put(b, ", ", 2);
			json_emit(b, v->u.list.items[i]);
		}
		sb_put(b, "]", 1);
		break;
	case NN_VALUE_DICT:
		sb_put(b, "{", 1);
		for (size_t i = 0; i < v->u.dict.count; i++) {
			const struct nn_value *k = v->u.dict.keys[i];
			if (i)
				sb_put(b, ", ", 2);
			if (k->kind == NN_VALUE_STR) {
				json_string(b, k->u.s);
			} else {
				// JSON keys are strings; Python's json.dumps turns {0: 'a'} into {"0": "a"} too.
				struct sbuf kb = { 0 };
				json_emit(&kb, k);
				json_string(b, kb.p ? kb.p : "");
				b->oom |= kb.oom;
				free(kb.p);
			}
			sb_put(b, ": ", 2);
			json_emit(b, v->u.dict.vals[i]);
		}
		sb_put(b, "}", 1);
		break;
	}
}

char *nn_value_to_json(const struct nn_value *v)
{
	struct sbuf b = { 0 };
	if (!v)
		sb_puts(&b, "null");
	else
		json_emit(&b, v);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

// ---- JSON parser ----

struct jp {
	const char *s;
	size_t len, pos;
	const char *err;
};

static void jp_ws(struct jp *p)
{
	while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]) && p->s[p->pos])
		p->pos++;
}

static bool jp_lit(struct jp *p, const char *lit)
{
	size_t n = strlen(lit);
	if (p->len - p->pos >= n && memcmp(p->s + p->pos, lit, n) == 0) {
		p->pos += n;
		return true;
	}
	return false;
}

static int hex4(const char *s, uint32_t *out)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static void put_utf8(struct sbuf *b, uint32_t cp)
{
	char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	sb_put(b, u, n);
}

static int jp_string(struct jp *p, struct nn_value **out)
{
	struct sbuf b = { 0 };
	sb_put(&b, "", 0);
	p->pos++; // opening quote
	while (p->pos < p->len) {
		char c = p->s[p->pos++];
		if (c == '"') {
			if (b.oom)
				break;
			*out = nn_value_strn(b.p, b.len);
			free(b.p);
			return *out ? 0 : -ENOMEM;
		}
		if ((unsigned char)c < 0x20) {
			p->err = "control character in string";
			goto fail;
		}
		if (c != '\\') {
			sb_put(&b, &c, 1);
			continue;
		}
		if (p->pos >= p->len)
			break;
		c = p->s[p->pos++];
		char e = 0;
		switch (c) {
		case '"': e = '"'; break;
		case '\\': e = '\\'; break;
		case '/': e = '/'; break;
		case 'b': e = '\b'; break;
		case 'f': e = '\f'; break;
		case 'n': e = '\n'; break;
		case 'r': e = '\r'; break;
		case 't': e = '\t'; break;
		default: break;
		}
		if (e) {
			sb_put(&b, &e, 1);
			continue;
		}
		uint32_t cp, lo;
		if (c != 'u' || p->len - p->pos < 4 || hex4(p->s + p->pos, &cp) < 0) {
			p->err = "bad escape in string";
			goto fail;
		}
		p->pos += 4;
		if (cp >= 0xD800 && cp < 0xDC00 && p->len - p->pos >= 6 && p->s[p->pos] == '\\' &&
		    p->s[p->pos + 1] == 'u' && hex4(p->s + p->pos + 2, &lo) == 0 && lo >= 0xDC00 &&
		    lo < 0xE000) {
			cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			p->pos += 6;
		}
		put_utf8(&b, cp);
	}
	if (!p->err)
		p->err = b.oom ? "out of memory" : "unterminated string";
fail:
	free(b.p);
	return b.oom ? -ENOMEM : -EINVAL;
}

static int jp_number(struct jp *p, struct nn_value **out)
{
	size_t start = p->pos;
	bool is_float = false;
	if (p->pos < p->len && p->s[p->pos] == '-')
		p->pos++;
	if (jp_lit(p, "Infinity")) {
		*out = nn_value_float(p->s[start] == '-' ? -INFINITY : INFINITY);
		return *out ? 0 : -ENOMEM;
	}
	size_t digits = 0;
	while (p->pos < p->len) {
		char c = p->s[p->pos];
		if (c >= '0' && c <= '9') {
			digits++;
		} else if (c == '.' || c == 'e' || c == 'E' || ((c == '+' || c == '-') && is_float)) {
			is_float = true;
		} else {
			break;
		}
		p->pos++;
	}
	size_t n = p->pos - start;
	if (!digits || n >= 64) {
		p->err = "bad number";
		return -EINVAL;
	}
	char buf[64];
	memcpy(buf, p->s + start, n);
	buf[n] = '\0';
	char *end;
	if (!is_float) {
		errno = 0;
		long long v = strtoll(buf, &end, 10);
		if (*end == '\0' && errno == 0) {
			*out = nn_value_int(v);
			return *out ? 0 : -ENOMEM;
		}
	}
	double d = strtod(buf, &end);
	if (*end != '\0') {
		p->err = "bad number";
		return -EINVAL;
	}
	*out = nn_value_float(d);
	return *out ? 0 : -ENOMEM;
}

static int jp_value(struct jp *p, struct nn_value **out, int depth);

static int jp_container(struct jp *p, struct nn_value **out, int depth)
{
	bool is_dict = p->s[p->pos] == '{';
	char close = is_dict ? '}' : ']';
	struct nn_value *c = is_dict ? nn_value_dict() : nn_value_list();
	struct nn_value *k = NULL, *v = NULL;
	int rc = -ENOMEM;
	if (!c)
		goto fail;
	p->pos++;
	jp_ws(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		*out = c;
		return 0;
	}
	for (;;) {
		jp_ws(p);
		if (is_dict) {
			if (p->pos >= p->len || p->s[p->pos] != '"') {
				p->err = "expected string key";
				rc = -EINVAL;
				goto fail;
			}
			if ((rc = jp_string(p, &k)) < 0)
				goto fail;
			jp_ws(p);
			if (p->pos >= p->len || p->s[p->pos] != ':') {
				p->err = "expected ':'";
				rc = -EINVAL;
				goto fail;
			}
			p->pos++;
		}
		if ((rc = jp_value(p, &v, depth + 1)) < 0)
			goto fail;
		rc = is_dict ? nn_value_dict_push(c, k, v) : nn_value_list_append(c, v);
		k = v = NULL;
		if (rc < 0)
			goto fail;
		jp_ws(p);
		if (p->pos < p->len && p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == close) {
			p->pos++;
			if (is_dict && (rc = nn_value_dict_check_unique(c)) < 0) {
				p->err = "duplicate key in object";
				goto fail;
			}
			*out = c;
			return 0;
		}
		p->err = is_dict ? "expected ',' or '}'" : "expected ',' or ']'";
		rc = -EINVAL;
		goto fail;
	}
fail:
	nn_value_destroy(&k);
	nn_value_destroy(&v);
	nn_value_destroy(&c);
	return rc;
}

static int jp_value(struct jp *p, struct nn_value **out, int depth)
{
	if (depth > JSON_MAX_DEPTH) {
		p->err = "nesting too deep";
		return -EINVAL;
	}
	jp_ws(p);
	if (p->pos >= p->len) {
		p->err = "unexpected end";
		return -EINVAL;
	}
	char c = p->s[p->pos];
	if (c == '{' || c == '[')
		return jp_container(p, out, depth);
	if (c == '"')
		return jp_string(p, out);
	if (c == '-' || (c >= '0' && c <= '9') || c == 'I')
		return jp_number(p, out);
	if (jp_lit(p, "null"))
		*out = nn_value_none();
	else if (jp_lit(p, "true"))
		*out = nn_value_bool(true);
	else if (jp_lit(p, "false"))
		*out = nn_value_bool(false);
	else if (jp_lit(p, "NaN"))
		*out = nn_value_float(NAN);
	else {
		p->err = "unexpected character";
		return -EINVAL;
	}
	return *out ? 0 : -ENOMEM;
}

int nn_value_from_json(const char *text, size_t len, struct nn_value **out)
{
	struct jp p = { .s = text, .len = len };
	struct nn_value *v = NULL;
	*out = NULL;
	int rc = jp_value(&p, &v, 0);
	if (rc == 0) {
		jp_ws(&p);
		if (p.pos != p.len) {
			p.err = "trailing characters";
			rc = -EINVAL;
			nn_value_destroy(&v);
		}
	}
	if (rc < 0) {
		LOGE("json: %s at byte %zu", p.err ? p.err : "out of memory", p.pos);
		return rc;
	}
	*out = v;
	return 0;
}
