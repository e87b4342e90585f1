// Test helper: hand-written pickles and stored zip archives shaped like torch.save output, for
// checkpoint tests that need structures no oracle file has (hostile graphs, an 'ema' entry).
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct emit {
	uint8_t *p;
	size_t n, cap;
};

static inline void put(struct emit *e, const void *b, size_t n)
{
	if (e->n + n > e->cap) {
		e->cap = (e->n + n) * 2;
		e->p = realloc(e->p, e->cap);
	}
	memcpy(e->p + e->n, b, n);
	e->n += n;
}

static inline void put_u8(struct emit *e, uint8_t v) { put(e, &v, 1); }

static inline void put_le(struct emit *e, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		put_u8(e, i < 8 ? (uint8_t)(v >> (8 * i)) : 0);
}

static inline void put_str(struct emit *e, const char *s) // BINUNICODE
{
	put_u8(e, 'X');
	put_le(e, strlen(s), 4);
	put(e, s, strlen(s));
}

static inline void put_global(struct emit *e, const char *mod, const char *name)
{
	put_u8(e, 'c');
	put(e, mod, strlen(mod));
	put_u8(e, '\n');
	put(e, name, strlen(name));
	put_u8(e, '\n');
}

// A stored zip like torch.save's: "t/data.pkl" then "t/data/0" (CRCs are not checked by the reader),
// into *zo (caller frees zo->p). zip64: sizes and offsets only in zip64 extra fields and records,
// as torch writes archives over 4 GiB.
static inline void emit_archive_ex(struct emit *zo, const struct emit *pkl, const void *storage, size_t storage_len,
                                   bool zip64)
{
	struct emit z = { 0 }, cd = { 0 };
	const char *names[2] = { "t/data.pkl", "t/data/0" };
	const void *data[2] = { pkl->p, storage };
	size_t lens[2] = { pkl->n, storage_len };
	uint64_t big = zip64 ? 0xFFFFFFFFu : 0;
	for (int i = 0; i < 2; i++) {
		size_t off = z.n, nl = strlen(names[i]);
		put_le(&z, 0x04034b50, 4);
		put_le(&z, 0, 2 * 3 + 2 * 2 + 4); // version, flags, method, time, date, crc
		put_le(&z, lens[i], 4);
		put_le(&z, lens[i], 4);
		put_le(&z, nl, 2);
		put_le(&z, 0, 2);
		put(&z, names[i], nl);
		put(&z, data[i], lens[i]);
		put_le(&cd, 0x02014b50, 4);
		put_le(&cd, 0, 2 * 4 + 2 * 2 + 4); // versions, flags, method, time, date, crc
		put_le(&cd, big ? big : lens[i], 4);
		put_le(&cd, big ? big : lens[i], 4);
		put_le(&cd, nl, 2);
		put_le(&cd, zip64 ? 28 : 0, 2);
		put_le(&cd, 0, 2 * 3 + 4); // comment, disk, attrs, external attrs
		put_le(&cd, big ? big : off, 4);
		put(&cd, names[i], nl);
		if (zip64) { // id 1: uncompressed, compressed, local header offset
			put_le(&cd, 1, 2);
			put_le(&cd, 24, 2);
			put_le(&cd, lens[i], 8);
			put_le(&cd, lens[i], 8);
			put_le(&cd, off, 8);
		}
	}
	size_t cd_off = z.n;
	put(&z, cd.p, cd.n);
	if (zip64) {
		size_t e64 = z.n;
		put_le(&z, 0x06064b50, 4);
		put_le(&z, 44, 8);
		put_le(&z, 0, 2 * 2 + 4 * 2);
		put_le(&z, 2, 8);
		put_le(&z, 2, 8);
		put_le(&z, cd.n, 8);
		put_le(&z, cd_off, 8);
		put_le(&z, 0x07064b50, 4);
		put_le(&z, 0, 4);
		put_le(&z, e64, 8);
		put_le(&z, 1, 4);
	}
	put_le(&z, 0x06054b50, 4);
	put_le(&z, 0, 4);
	put_le(&z, zip64 ? 0xFFFF : 2, 2);
	put_le(&z, zip64 ? 0xFFFF : 2, 2);
	put_le(&z, zip64 ? 0xFFFFFFFFu : cd.n, 4);
	put_le(&z, zip64 ? 0xFFFFFFFFu : cd_off, 4);
	put_le(&z, 0, 2);
	free(cd.p);
	*zo = z;
}

static inline void emit_archive(struct emit *zo, const struct emit *pkl, const void *storage, size_t storage_len)
{
	emit_archive_ex(zo, pkl, storage, storage_len, false);
}

// Starts an object of class models.yolo.M whose state dict is then filled by the caller.
static inline void put_module_start(struct emit *e)
{
	put_global(e, "models.yolo", "M");
	put_u8(e, ')');
	put_u8(e, 0x81); // NEWOBJ
	put_u8(e, '}');
}


// _rebuild_tensor_v2(DoubleStorage '0' of 1 element, 0, (dim,), (0,), False, {}): a stride-0 view
// of dim elements, left on the stack.
static inline void put_tensor_view(struct emit *e, uint64_t dim)
{
	put_global(e, "torch._utils", "_rebuild_tensor_v2");
	put_u8(e, '(');
	put_u8(e, '(');
	put_str(e, "storage");
	put_global(e, "torch", "DoubleStorage");
	put_str(e, "0");
	put_str(e, "cpu");
	put_u8(e, 'K');
	put_u8(e, 1);
	put_u8(e, 't');
	put_u8(e, 'Q'); // BINPERSID
	put_u8(e, 'K');
	put_u8(e, 0);
	put_u8(e, 0x8a); // LONG1, 5 bytes
	put_u8(e, 5);
	put_le(e, dim, 5);
	put_u8(e, 0x85);
	put_u8(e, 'K');
	put_u8(e, 0);
	put_u8(e, 0x85);
	put_u8(e, 0x89);
	put_u8(e, '}');
	put_u8(e, 't');
	put_u8(e, 'R');
}

// A module whose state dict holds _parameters {'w': put_tensor_view(dim)}; the state dict is left
// open on the stack for more attributes, then BUILD ('b') closes the object.
static inline void put_param_module(struct emit *e, uint64_t dim)
{
	put_module_start(e);
	put_str(e, "_parameters");
	put_u8(e, '}');
	put_str(e, "w");
	put_tensor_view(e, dim);
	put_u8(e, 's');
	put_u8(e, 's');
}
