// The restricted pickle VM. Only data-building opcodes exist here; a class reference is a name,
// and calling one either builds known data (dicts, sets, tensors) or records a generic object.
#include "pickle.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define PK_MAX_GLOBAL 512    // longest module or class name accepted
#define PK_MAX_VALUE_DEPTH 100

#define PK_CHUNK 512

// Nodes come from chunks: a checkpoint pickle makes tens of thousands of them.
struct pk_chunk {
	struct pk_chunk *next;
	size_t used;
	struct nn_pk nodes[PK_CHUNK];
};

struct nn_pickle {
	struct pk_chunk *chunks; // newest first; every node is freed with its chunk
	size_t bytes, limit;     // heap accounting against a limit proportional to the pickle's size
	struct nn_pk *root;
};

struct vm {
	struct nn_pickle *p;
	const uint8_t *buf;
	size_t len, pos, op_pos;
	const char *what;
	nn_pickle_storage_fn storage;
	void *user;
	struct nn_pk **stack;
	size_t sp, scap;
	size_t *marks;
	size_t nmarks, mcap;
	struct nn_pk **memo;
	size_t memo_cap, memo_next; // memo_next: one past the highest index set (MEMOIZE's slot)
	int rc; // first error
};

static int vm_fail(struct vm *vm, int rc, const char *msg, unsigned op)
{
	if (!vm->rc) {
		if (rc == -ENOMEM)
			LOGE("pickle %s: out of memory (limit %zu bytes) at byte %zu", vm->what, vm->p->limit, vm->op_pos);
		else
			LOGE("pickle %s: opcode 0x%02x at byte %zu: %s", vm->what, op, vm->op_pos, msg);
		vm->rc = rc;
	}
	return rc;
}

static bool charge(struct nn_pickle *p, size_t n)
{
	if (n > p->limit - p->bytes)
		return false;
	p->bytes += n;
	return true;
}

static struct nn_pk *node_new(struct nn_pickle *p, enum nn_pk_kind kind)
{
	if (!charge(p, sizeof(struct nn_pk)))
		return NULL;
	if (!p->chunks || p->chunks->used == PK_CHUNK) {
		struct pk_chunk *c = calloc(1, sizeof(*c));
		if (!c)
			return NULL;
		c->next = p->chunks;
		p->chunks = c;
	}
	struct nn_pk *v = &p->chunks->nodes[p->chunks->used++];
	v->kind = kind;
	return v;
}

// Grows a pointer array (items or vals) to hold n entries, charged to the pickle's budget.
static bool grow(struct nn_pickle *p, struct nn_pk ***arr, size_t *cap, size_t n)
{
	if (n <= *cap)
		return true;
	size_t c = *cap ? *cap * 2 : 4;
	while (c < n)
		c *= 2;
	if (!charge(p, (c - *cap) * sizeof(void *)))
		return false;
	struct nn_pk **a = realloc(*arr, c * sizeof(*a));
	if (!a)
		return false;
	*arr = a;
	*cap = c;
	return true;
}

static bool seq_push(struct nn_pickle *p, struct nn_pk *seq, struct nn_pk *item)
{
	if (!grow(p, &seq->items, &seq->cap, seq->count + 1))
		return false;
	seq->items[seq->count++] = item;
	return true;
}

// Appends without looking for an equal key (O(1)); nn_pk_dict_get lets the last duplicate win.
static bool dict_set(struct nn_pickle *p, struct nn_pk *d, struct nn_pk *k, struct nn_pk *v)
{
	size_t cap = d->cap;
	if (!grow(p, &d->items, &cap, d->count + 1))
		return false;
	size_t vcap = d->cap;
	if (!grow(p, &d->vals, &vcap, d->count + 1))
		return false;
	d->cap = cap;
	d->items[d->count] = k;
	d->vals[d->count] = v;
	d->count++;
	return true;
}

static struct nn_pk *str_new(struct nn_pickle *p, enum nn_pk_kind kind, const void *s, size_t n)
{
	struct nn_pk *v = node_new(p, kind);
	if (!v || !charge(p, n + 1) || !(v->s = malloc(n + 1)))
		return NULL;
	memcpy(v->s, s, n);
	v->s[n] = '\0';
	v->len = n;
	return v;
}

void nn_pickle_destroy(struct nn_pickle **pp)
{
	if (!pp || !*pp)
		return;
	struct nn_pickle *p = *pp;
	for (struct pk_chunk *c = p->chunks, *next; c; c = next) {
		next = c->next;
		for (size_t i = 0; i < c->used; i++) {
			struct nn_pk *v = &c->nodes[i];
			free(v->s);
			free(v->items);
			free(v->vals);
			free(v->shape);
			free(v->stride);
		}
		free(c);
	}
	free(p);
	*pp = NULL;
}

const struct nn_pk *nn_pickle_root(const struct nn_pickle *p) { return p->root; }

// ---- stack helpers ----

static int push(struct vm *vm, struct nn_pk *v, unsigned op)
{
	if (!v)
		return vm_fail(vm, -ENOMEM, "", op);
	if (vm->sp == vm->scap) {
		size_t cap = vm->scap ? vm->scap * 2 : 64;
		if (!charge(vm->p, (cap - vm->scap) * sizeof(void *)))
			return vm_fail(vm, -ENOMEM, "", op);
		struct nn_pk **s = realloc(vm->stack, cap * sizeof(*s));
		if (!s)
			return vm_fail(vm, -ENOMEM, "", op);
		vm->stack = s;
		vm->scap = cap;
	}
	vm->stack[vm->sp++] = v;
	return 0;
}

// Items above the innermost mark; -1 when there is no mark.
static long mark_base(struct vm *vm)
{
	return vm->nmarks ? (long)vm->marks[vm->nmarks - 1] : -1;
}

static struct nn_pk *pop(struct vm *vm)
{
	size_t floor = vm->nmarks ? vm->marks[vm->nmarks - 1] : 0;
	return vm->sp > floor ? vm->stack[--vm->sp] : NULL;
}

static struct nn_pk *top(struct vm *vm)
{
	size_t floor = vm->nmarks ? vm->marks[vm->nmarks - 1] : 0;
	return vm->sp > floor ? vm->stack[vm->sp - 1] : NULL;
}

// Moves everything above the innermost mark into a new LIST/TUPLE node, popping the mark.
static struct nn_pk *pop_to_mark(struct vm *vm, enum nn_pk_kind kind)
{
	long base = mark_base(vm);
	if (base < 0)
		return NULL;
	struct nn_pk *t = node_new(vm->p, kind);
	if (!t)
		return NULL;
	for (size_t i = (size_t)base; i < vm->sp; i++)
		if (!seq_push(vm->p, t, vm->stack[i]))
			return NULL;
	vm->sp = (size_t)base;
	vm->nmarks--;
	return t;
}

static const uint8_t *take(struct vm *vm, size_t n)
{
	if (n > vm->len - vm->pos)
		return NULL;
	const uint8_t *p = vm->buf + vm->pos;
	vm->pos += n;
	return p;
}

static uint64_t le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = n; i-- > 0;)
		v = (v << 8) | p[i];
	return v;
}

// ---- builders for REDUCE / NEWOBJ ----

static enum nn_dtype storage_dtype(const char *cls, bool *ok)
{
	static const struct { const char *name; enum nn_dtype t; } map[] = {
		{ "torch.FloatStorage", NN_DTYPE_F32 }, { "torch.HalfStorage", NN_DTYPE_F16 },
		{ "torch.BFloat16Storage", NN_DTYPE_BF16 }, { "torch.DoubleStorage", NN_DTYPE_F64 },
		{ "torch.ByteStorage", NN_DTYPE_U8 }, { "torch.CharStorage", NN_DTYPE_I8 },
		{ "torch.ShortStorage", NN_DTYPE_I16 }, { "torch.IntStorage", NN_DTYPE_I32 },
		{ "torch.LongStorage", NN_DTYPE_I64 }, { "torch.BoolStorage", NN_DTYPE_BOOL },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(cls, map[i].name) == 0) {
			*ok = true;
			return map[i].t;
		}
	}
	*ok = false;
	return NN_DTYPE_U8;
}

static int int_tuple(const struct nn_pk *t, int64_t **out, uint32_t *n, struct nn_pickle *p)
{
	if (!t || (t->kind != NN_PK_TUPLE && t->kind != NN_PK_LIST) || t->count > NN_MAX_DIMS)
		return -EINVAL;
	if (!charge(p, t->count * 8 + 8) || !(*out = malloc(t->count * 8 + 8)))
		return -ENOMEM;
	for (size_t i = 0; i < t->count; i++) {
		if (t->items[i]->kind != NN_PK_INT)
			return -EINVAL;
		(*out)[i] = t->items[i]->i;
	}
	*n = (uint32_t)t->count;
	return 0;
}

// torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, ...)
static struct nn_pk *rebuild_tensor(struct vm *vm, const struct nn_pk *args, unsigned op)
{
	if (args->count < 4 || args->items[0]->kind != NN_PK_STORAGE || args->items[1]->kind != NN_PK_INT) {
		vm_fail(vm, -EINVAL, "tensor rebuild needs (storage, offset, size, stride)", op);
		return NULL;
	}
	struct nn_pk *t = node_new(vm->p, NN_PK_TENSOR);
	uint32_t ns = 0, nst = 0;
	int rc = t ? int_tuple(args->items[2], &t->shape, &ns, vm->p) : -ENOMEM;
	if (rc == 0)
		rc = int_tuple(args->items[3], &t->stride, &nst, vm->p);
	if (rc == 0 && ns != nst)
		rc = -EINVAL;
	if (rc < 0) {
		vm_fail(vm, rc, "tensor rebuild: size and stride must be int tuples of equal length", op);
		return NULL;
	}
	t->storage = args->items[0];
	t->dtype = t->storage->dtype;
	t->offset = args->items[1]->i;
	t->ndim = ns;
	return t;
}

static struct nn_pk *call_class(struct vm *vm, struct nn_pk *cls, struct nn_pk *args, unsigned op)
{
	const char *n = cls->s;
	bool seq_arg = args->count >= 1 && (args->items[0]->kind == NN_PK_LIST || args->items[0]->kind == NN_PK_TUPLE);
	if (strcmp(n, "collections.OrderedDict") == 0)
		return node_new(vm->p, NN_PK_DICT);
	if (strcmp(n, "torch._utils._rebuild_tensor_v2") == 0 || strcmp(n, "torch._utils._rebuild_tensor") == 0)
		return rebuild_tensor(vm, args, op);
	if (strcmp(n, "torch._utils._rebuild_parameter") == 0 ||
	    strcmp(n, "torch._utils._rebuild_parameter_with_state") == 0) {
		if (args->count < 1 || args->items[0]->kind != NN_PK_TENSOR) {
			vm_fail(vm, -EINVAL, "parameter rebuild needs a tensor", op);
			return NULL;
		}
		return args->items[0];
	}
	bool is_set = !strcmp(n, "builtins.set") || !strcmp(n, "__builtin__.set") ||
	              !strcmp(n, "builtins.frozenset") || !strcmp(n, "__builtin__.frozenset");
	if (is_set || !strcmp(n, "torch.Size")) {
		struct nn_pk *l = node_new(vm->p, is_set ? NN_PK_LIST : NN_PK_TUPLE);
		for (size_t i = 0; l && seq_arg && i < args->items[0]->count; i++)
			if (!seq_push(vm->p, l, args->items[0]->items[i]))
				return NULL;
		return l;
	}
	// Tensor subclasses: _rebuild_from_type_v2(func, type, args, state) is func(*args).
	if (!strcmp(n, "torch._tensor._rebuild_from_type_v2") && args->count >= 3 &&
	    args->items[0]->kind == NN_PK_CLASS && args->items[2]->kind == NN_PK_TUPLE &&
	    strcmp(args->items[0]->s, n) != 0)
		return call_class(vm, args->items[0], args->items[2], op);
	if (!strcmp(n, "_codecs.encode") && args->count >= 1 && args->items[0]->kind == NN_PK_STR)
		return str_new(vm->p, NN_PK_BYTES, args->items[0]->s, args->items[0]->len);
	struct nn_pk *o = node_new(vm->p, NN_PK_OBJECT);
	if (o) {
		o->cls = cls;
		o->args = args;
	}
	return o;
}

// ---- opcodes ----

static int op_persid(struct vm *vm, unsigned op)
{
	struct nn_pk *pid = pop(vm);
	if (!pid || pid->kind != NN_PK_TUPLE || pid->count < 5 || pid->items[0]->kind != NN_PK_STR ||
	    strcmp(pid->items[0]->s, "storage") || pid->items[1]->kind != NN_PK_CLASS ||
	    pid->items[2]->kind != NN_PK_STR || pid->items[4]->kind != NN_PK_INT)
		return vm_fail(vm, -EINVAL, "persistent id is not ('storage', type, key, location, numel)", op);
	bool ok;
	enum nn_dtype dt = storage_dtype(pid->items[1]->s, &ok);
	if (!ok)
		return vm_fail(vm, -EINVAL, "unsupported storage type", op);
	int64_t numel = pid->items[4]->i;
	if (!vm->storage)
		return vm_fail(vm, -EINVAL, "persistent id without a storage loader", op);
	struct nn_pk *s = str_new(vm->p, NN_PK_STORAGE, pid->items[2]->s, pid->items[2]->len);
	if (!s)
		return vm_fail(vm, -ENOMEM, "", op);
	int rc = vm->storage(vm->user, s->s, &s->data, &s->nbytes);
	if (rc < 0) {
		vm->rc = vm->rc ? vm->rc : rc;
		return rc;
	}
	if (numel < 0 || (uint64_t)numel > s->nbytes / nn_dtype_size(dt))
		return vm_fail(vm, -EINVAL, "storage numel larger than its data", op);
	s->nbytes = (size_t)numel * nn_dtype_size(dt);
	s->dtype = dt;
	return push(vm, s, op);
}

static int op_memo_put(struct vm *vm, uint64_t idx, unsigned op)
{
	struct nn_pk *v = top(vm);
	if (!v)
		return vm_fail(vm, -EINVAL, "memo put on an empty stack", op);
	// Writers number memo entries sequentially, so an index beyond the pickle's length is hostile.
	if (idx > vm->len)
		return vm_fail(vm, -EINVAL, "memo index out of range", op);
	if (idx >= vm->memo_cap) {
		size_t cap = vm->memo_cap ? vm->memo_cap : 64;
		while (cap <= idx)
			cap *= 2;
		if (!charge(vm->p, (cap - vm->memo_cap) * sizeof(void *)))
			return vm_fail(vm, -ENOMEM, "", op);
		struct nn_pk **m = realloc(vm->memo, cap * sizeof(*m));
		if (!m)
			return vm_fail(vm, -ENOMEM, "", op);
		memset(m + vm->memo_cap, 0, (cap - vm->memo_cap) * sizeof(*m));
		vm->memo = m;
		vm->memo_cap = cap;
	}
	vm->memo[idx] = v;
	if (idx + 1 > vm->memo_next)
		vm->memo_next = idx + 1;
	return 0;
}

static int op_memo_get(struct vm *vm, uint64_t idx, unsigned op)
{
	if (idx >= vm->memo_cap || !vm->memo[idx])
		return vm_fail(vm, -EINVAL, "memo get of an unset index", op);
	return push(vm, vm->memo[idx], op);
}

static int op_setitems(struct vm *vm, unsigned op, bool many)
{
	size_t base;
	if (many) {
		long b = mark_base(vm);
		if (b < 0 || (vm->sp - (size_t)b) % 2)
			return vm_fail(vm, -EINVAL, "SETITEMS needs a mark and key/value pairs", op);
		base = (size_t)b;
	} else {
		size_t floor = vm->nmarks ? vm->marks[vm->nmarks - 1] : 0;
		if (vm->sp < floor + 3)
			return vm_fail(vm, -EINVAL, "SETITEM needs dict, key, value", op);
		base = vm->sp - 2;
	}
	if (base == 0 || (many && base - 1 < (vm->nmarks > 1 ? vm->marks[vm->nmarks - 2] : 0)))
		return vm_fail(vm, -EINVAL, "SETITEMS without a dict", op);
	struct nn_pk *d = vm->stack[base - 1];
	if (d->kind != NN_PK_DICT)
		return vm_fail(vm, -EINVAL, "SETITEM(S) target is not a dict", op);
	for (size_t i = base; i + 1 < vm->sp; i += 2)
		if (!dict_set(vm->p, d, vm->stack[i], vm->stack[i + 1]))
			return vm_fail(vm, -ENOMEM, "", op);
	vm->sp = base;
	if (many)
		vm->nmarks--;
	return 0;
}

static int op_appends(struct vm *vm, unsigned op, bool many)
{
	size_t base;
	if (many) {
		long b = mark_base(vm);
		if (b < 0)
			return vm_fail(vm, -EINVAL, "APPENDS without a mark", op);
		base = (size_t)b;
	} else {
		size_t floor = vm->nmarks ? vm->marks[vm->nmarks - 1] : 0;
		if (vm->sp < floor + 2)
			return vm_fail(vm, -EINVAL, "APPEND needs list, item", op);
		base = vm->sp - 1;
	}
	if (base == 0 || (many && base - 1 < (vm->nmarks > 1 ? vm->marks[vm->nmarks - 2] : 0)))
		return vm_fail(vm, -EINVAL, "APPENDS without a list", op);
	struct nn_pk *l = vm->stack[base - 1];
	if (l->kind != NN_PK_LIST)
		return vm_fail(vm, -EINVAL, "APPEND(S)/ADDITEMS target is not a list or set", op);
	for (size_t i = base; i < vm->sp; i++)
		if (!seq_push(vm->p, l, vm->stack[i]))
			return vm_fail(vm, -ENOMEM, "", op);
	vm->sp = base;
	if (many)
		vm->nmarks--;
	return 0;
}

static int op_global(struct vm *vm, unsigned op)
{
	char name[2 * PK_MAX_GLOBAL + 2];
	size_t n = 0;
	for (int part = 0; part < 2; part++) {
		const uint8_t *start = vm->buf + vm->pos;
		size_t avail = vm->len - vm->pos, max = avail < PK_MAX_GLOBAL ? avail : PK_MAX_GLOBAL;
		const uint8_t *nl = memchr(start, '\n', max);
		if (!nl)
			return vm_fail(vm, -EINVAL, "GLOBAL name unterminated or too long", op);
		size_t k = (size_t)(nl - start);
		memcpy(name + n, start, k);
		n += k;
		if (part == 0)
			name[n++] = '.';
		vm->pos += k + 1;
	}
	return push(vm, str_new(vm->p, NN_PK_CLASS, name, n), op);
}

static int op_stack_global(struct vm *vm, unsigned op)
{
	struct nn_pk *name = pop(vm), *mod = pop(vm);
	if (!name || !mod || name->kind != NN_PK_STR || mod->kind != NN_PK_STR || name->len > PK_MAX_GLOBAL ||
	    mod->len > PK_MAX_GLOBAL)
		return vm_fail(vm, -EINVAL, "STACK_GLOBAL needs module and name strings", op);
	char buf[2 * PK_MAX_GLOBAL + 2];
	memcpy(buf, mod->s, mod->len);
	buf[mod->len] = '.';
	memcpy(buf + mod->len + 1, name->s, name->len);
	return push(vm, str_new(vm->p, NN_PK_CLASS, buf, mod->len + 1 + name->len), op);
}

static int op_reduce(struct vm *vm, unsigned op, bool newobj)
{
	struct nn_pk *args = pop(vm), *cls = pop(vm);
	if (!args || !cls || args->kind != NN_PK_TUPLE)
		return vm_fail(vm, -EINVAL, "REDUCE/NEWOBJ needs a callable and an argument tuple", op);
	if (cls->kind != NN_PK_CLASS)
		return vm_fail(vm, -EINVAL, "REDUCE/NEWOBJ on something that is not a class reference", op);
	if (newobj && strcmp(cls->s, "collections.OrderedDict") != 0) {
		struct nn_pk *o = node_new(vm->p, NN_PK_OBJECT);
		if (o) {
			o->cls = cls;
			o->args = args;
		}
		return push(vm, o, op);
	}
	struct nn_pk *r = call_class(vm, cls, args, op);
	if (!r && vm->rc)
		return vm->rc;
	return push(vm, r, op);
}

static int op_build(struct vm *vm, unsigned op)
{
	struct nn_pk *state = pop(vm), *obj = top(vm);
	if (!state || !obj)
		return vm_fail(vm, -EINVAL, "BUILD needs an object and a state", op);
	if (obj->kind == NN_PK_OBJECT) {
		// (dict_state, slot_state) pairs keep the __dict__ part.
		if (state->kind == NN_PK_TUPLE && state->count == 2 && state->items[0]->kind == NN_PK_DICT)
			state = state->items[0];
		obj->state = state;
	}
	// Other targets keep nothing: for an OrderedDict the state is instance attributes (a state
	// dict's _metadata), not items; tensors may carry hook state.
	return 0;
}

static int op_tuple_n(struct vm *vm, unsigned op, size_t n)
{
	size_t floor = vm->nmarks ? vm->marks[vm->nmarks - 1] : 0;
	if (vm->sp < floor + n)
		return vm_fail(vm, -EINVAL, "TUPLEn on a short stack", op);
	struct nn_pk *t = node_new(vm->p, NN_PK_TUPLE);
	for (size_t i = vm->sp - n; t && i < vm->sp; i++)
		if (!seq_push(vm->p, t, vm->stack[i]))
			t = NULL;
	vm->sp -= n;
	return push(vm, t, op);
}

static int op_string(struct vm *vm, unsigned op, size_t lenbytes, enum nn_pk_kind kind)
{
	const uint8_t *lp = take(vm, lenbytes);
	if (!lp)
		return vm_fail(vm, -EINVAL, "truncated length", op);
	uint64_t n = le(lp, lenbytes);
	const uint8_t *s = n <= vm->len - vm->pos ? take(vm, (size_t)n) : NULL;
	if (!s)
		return vm_fail(vm, -EINVAL, "string or bytes run past the end of the pickle", op);
	return push(vm, str_new(vm->p, kind, s, (size_t)n), op);
}

static int op_long(struct vm *vm, unsigned op, size_t lenbytes)
{
	const uint8_t *lp = take(vm, lenbytes);
	if (!lp)
		return vm_fail(vm, -EINVAL, "truncated length", op);
	uint64_t n = le(lp, lenbytes);
	const uint8_t *b = n <= vm->len - vm->pos ? take(vm, (size_t)n) : NULL;
	if (!b)
		return vm_fail(vm, -EINVAL, "long runs past the end of the pickle", op);
	struct nn_pk *v;
	if (n <= 8) {
		uint64_t u = le(b, (size_t)n);
		if (n && n < 8 && (b[n - 1] & 0x80))
			u |= ~0ull << (8 * n); // sign-extend two's complement
		v = node_new(vm->p, NN_PK_INT);
		if (v)
			v->i = (int64_t)u;
	} else {
		// Wider than int64: kept as an approximate float (never a shape or offset in practice).
		double d = 0;
		for (size_t i = (size_t)n; i-- > 0;)
			d = d * 256.0 + b[i];
		if (b[n - 1] & 0x80)
			d -= ldexp(1.0, (int)(8 * n));
		v = node_new(vm->p, NN_PK_FLOAT);
		if (v)
			v->f = d;
	}
	return push(vm, v, op);
}

static int op_int(struct vm *vm, unsigned op, size_t n, bool is_signed)
{
	const uint8_t *b = take(vm, n);
	if (!b)
		return vm_fail(vm, -EINVAL, "truncated integer", op);
	struct nn_pk *v = node_new(vm->p, NN_PK_INT);
	if (v)
		v->i = is_signed ? (int64_t)(int32_t)(uint32_t)le(b, n) : (int64_t)le(b, n);
	return push(vm, v, op);
}

static int step(struct vm *vm, bool *stop)
{
	vm->op_pos = vm->pos;
	const uint8_t *o = take(vm, 1);
	if (!o)
		return vm_fail(vm, -EINVAL, "pickle ends without STOP", 0);
	unsigned op = *o;
	const uint8_t *b;
	struct nn_pk *v;
	switch (op) {
	case 0x80: // PROTO
		if (!(b = take(vm, 1)) || *b > 5)
			return vm_fail(vm, -EINVAL, "unsupported protocol", op);
		return 0;
	case 0x95: // FRAME: framing only, contents follow inline
		return take(vm, 8) ? 0 : vm_fail(vm, -EINVAL, "truncated FRAME", op);
	case '.': // STOP
		if (!(vm->p->root = pop(vm)))
			return vm_fail(vm, -EINVAL, "STOP with an empty stack", op);
		*stop = true;
		return 0;
	case '}': return push(vm, node_new(vm->p, NN_PK_DICT), op);
	case ']': return push(vm, node_new(vm->p, NN_PK_LIST), op);
	case ')': return push(vm, node_new(vm->p, NN_PK_TUPLE), op);
	case 0x8f: return push(vm, node_new(vm->p, NN_PK_LIST), op); // EMPTY_SET, kept as a list
	case '(': // MARK
		if (vm->nmarks == vm->mcap) {
			size_t cap = vm->mcap ? vm->mcap * 2 : 16;
			size_t *m = charge(vm->p, (cap - vm->mcap) * sizeof(size_t)) ? realloc(vm->marks, cap * sizeof(*m)) : NULL;
			if (!m)
				return vm_fail(vm, -ENOMEM, "", op);
			vm->marks = m;
			vm->mcap = cap;
		}
		vm->marks[vm->nmarks++] = vm->sp;
		return 0;
	case 't': case 'l': // TUPLE, LIST
	case 0x91: // FROZENSET
		if (mark_base(vm) < 0)
			return vm_fail(vm, -EINVAL, "TUPLE/LIST/FROZENSET without a mark", op);
		return push(vm, pop_to_mark(vm, op == 't' ? NN_PK_TUPLE : NN_PK_LIST), op);
	case 'd': // DICT from mark
		if (mark_base(vm) < 0 || (vm->sp - (size_t)mark_base(vm)) % 2)
			return vm_fail(vm, -EINVAL, "DICT needs a mark and key/value pairs", op);
		if (!(v = node_new(vm->p, NN_PK_DICT)))
			return vm_fail(vm, -ENOMEM, "", op);
		for (size_t i = (size_t)mark_base(vm); i + 1 < vm->sp; i += 2)
			if (!dict_set(vm->p, v, vm->stack[i], vm->stack[i + 1]))
				return vm_fail(vm, -ENOMEM, "", op);
		vm->sp = (size_t)mark_base(vm);
		vm->nmarks--;
		return push(vm, v, op);
	case 0x85: return op_tuple_n(vm, op, 1);
	case 0x86: return op_tuple_n(vm, op, 2);
	case 0x87: return op_tuple_n(vm, op, 3);
	case 's': return op_setitems(vm, op, false);
	case 'u': return op_setitems(vm, op, true);
	case 'a': return op_appends(vm, op, false);
	case 'e': case 0x90: return op_appends(vm, op, true); // APPENDS, ADDITEMS
	case 'J': return op_int(vm, op, 4, true);
	case 'K': return op_int(vm, op, 1, false);
	case 'M': return op_int(vm, op, 2, false);
	case 0x8a: return op_long(vm, op, 1);
	case 0x8b: return op_long(vm, op, 4);
	case 'G': { // BINFLOAT, big-endian
		if (!(b = take(vm, 8)))
			return vm_fail(vm, -EINVAL, "truncated float", op);
		uint64_t u = 0;
		for (int i = 0; i < 8; i++)
			u = (u << 8) | b[i];
		if ((v = node_new(vm->p, NN_PK_FLOAT)))
			memcpy(&v->f, &u, 8);
		return push(vm, v, op);
	}
	case 0x8c: return op_string(vm, op, 1, NN_PK_STR);  // SHORT_BINUNICODE
	case 'X': return op_string(vm, op, 4, NN_PK_STR);   // BINUNICODE
	case 0x8d: return op_string(vm, op, 8, NN_PK_STR);  // BINUNICODE8
	case 'U': return op_string(vm, op, 1, NN_PK_STR);   // SHORT_BINSTRING (protocol 2 str)
	case 'T': return op_string(vm, op, 4, NN_PK_STR);   // BINSTRING
	case 'C': return op_string(vm, op, 1, NN_PK_BYTES); // SHORT_BINBYTES
	case 'B': return op_string(vm, op, 4, NN_PK_BYTES); // BINBYTES
	case 0x8e: return op_string(vm, op, 8, NN_PK_BYTES); // BINBYTES8
	case 0x96: return op_string(vm, op, 8, NN_PK_BYTES); // BYTEARRAY8
	case 'N': return push(vm, node_new(vm->p, NN_PK_NONE), op);
	case 0x88: case 0x89:
		if ((v = node_new(vm->p, NN_PK_BOOL)))
			v->i = op == 0x88;
		return push(vm, v, op);
	case 'q':
		if (!(b = take(vm, 1)))
			return vm_fail(vm, -EINVAL, "truncated BINPUT", op);
		return op_memo_put(vm, *b, op);
	case 'r':
		if (!(b = take(vm, 4)))
			return vm_fail(vm, -EINVAL, "truncated LONG_BINPUT", op);
		return op_memo_put(vm, le(b, 4), op);
	case 0x94: return op_memo_put(vm, vm->memo_next, op); // MEMOIZE
	case 'h':
		if (!(b = take(vm, 1)))
			return vm_fail(vm, -EINVAL, "truncated BINGET", op);
		return op_memo_get(vm, *b, op);
	case 'j':
		if (!(b = take(vm, 4)))
			return vm_fail(vm, -EINVAL, "truncated LONG_BINGET", op);
		return op_memo_get(vm, le(b, 4), op);
	case 'c': return op_global(vm, op);
	case 0x93: return op_stack_global(vm, op);
	case 'R': return op_reduce(vm, op, false);
	case 0x81: return op_reduce(vm, op, true);
	case 0x92: // NEWOBJ_EX: cls, args, kwargs; the kwargs are dropped
		if (!pop(vm))
			return vm_fail(vm, -EINVAL, "NEWOBJ_EX on a short stack", op);
		return op_reduce(vm, op, true);
	case 'b': return op_build(vm, op);
	case 'Q': return op_persid(vm, op);
	case '0':
		return pop(vm) ? 0 : vm_fail(vm, -EINVAL, "POP on an empty stack", op);
	case '1':
		if (mark_base(vm) < 0)
			return vm_fail(vm, -EINVAL, "POP_MARK without a mark", op);
		vm->sp = (size_t)mark_base(vm);
		vm->nmarks--;
		return 0;
	case '2':
		if (!(v = top(vm)))
			return vm_fail(vm, -EINVAL, "DUP on an empty stack", op);
		return push(vm, v, op);
	default:
		return vm_fail(vm, -EINVAL, "unknown or unsupported opcode", op);
	}
}

int nn_pickle_load(const void *buf, size_t len, const char *what, nn_pickle_storage_fn storage, void *user,
                   struct nn_pickle **out)
{
	struct vm vm = { .buf = buf, .len = len, .what = what, .storage = storage, .user = user };
	*out = NULL;
	if (!(vm.p = calloc(1, sizeof(*vm.p))))
		return -ENOMEM;
	// A node costs ~150 bytes and each opcode byte creates at most one, so this bound is only reached
	// by hostile input; the absolute cap keeps it finite on 32-bit hosts too.
	vm.p->limit = len < ((size_t)1 << 23) ? 64 * ((size_t)1 << 20) + 256 * len : ((size_t)1 << 31);
	bool stop = false;
	int rc = 0;
	while (!stop && rc == 0)
		rc = step(&vm, &stop);
	if (rc == 0 && vm.pos != len)
		LOGW("pickle %s: %zu bytes after STOP ignored", what, len - vm.pos);
	free(vm.stack);
	free(vm.marks);
	free(vm.memo);
	if (rc < 0) {
		nn_pickle_destroy(&vm.p);
		return rc;
	}
	*out = vm.p;
	return 0;
}
