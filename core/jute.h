/* Jute, ZooKeeper's wire encoding: big-endian int32/int64, a one-byte bool,
 * and length-prefixed buffers, strings and vectors (length -1 means null).
 *
 * Readers never copy: buffers and strings point into the input. Errors are
 * sticky: after a short or malformed read every getter returns zero and
 * jute_in.err stays -EBADMSG, so a decoder checks once at the end.
 * Writers append to a growable buffer that never grows past cap_max; past
 * it, jute_out.err is -EMSGSIZE and further puts are ignored. */
#ifndef RK_JUTE_H
#define RK_JUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jute_in {
	const uint8_t *p;
	size_t len;
	size_t off;
	int err;
};

static inline struct jute_in jute_in_make(const void *p, size_t len)
{
	return (struct jute_in){.p = p, .len = len, .off = 0, .err = 0};
}

int32_t jute_get_int(struct jute_in *in);
int64_t jute_get_long(struct jute_in *in);
bool jute_get_bool(struct jute_in *in);
/* Null buffers and strings come back with *len == -1 and *p == NULL. */
void jute_get_buffer(struct jute_in *in, const uint8_t **p, int32_t *len);
void jute_get_string(struct jute_in *in, const char **p, int32_t *len);
/* A vector's element count; -1 (null) reads as 0. Rejects counts that
 * cannot fit in what is left of the input (each element at least
 * elem_min_bytes long), so no caller allocates from a forged count. */
int32_t jute_get_vector_len(struct jute_in *in, size_t elem_min_bytes);
static inline size_t jute_remaining(const struct jute_in *in)
{
	return in->len - in->off;
}

struct jute_out {
	uint8_t *buf; /* owned; free with jute_out_free() */
	size_t len;
	size_t cap;
	size_t cap_max;
	int err;
};

void jute_out_init(struct jute_out *out, size_t cap_initial, size_t cap_max);
void jute_out_free(struct jute_out *out);
void jute_out_reset(struct jute_out *out);
/* Reserve n bytes and return where they start, or NULL on overflow. */
uint8_t *jute_reserve(struct jute_out *out, size_t n);
void jute_put_int(struct jute_out *out, int32_t v);
void jute_put_long(struct jute_out *out, int64_t v);
void jute_put_bool(struct jute_out *out, bool v);
void jute_put_buffer(struct jute_out *out, const void *p, int32_t len);
void jute_put_string(struct jute_out *out, const char *s, int32_t len);
static inline void jute_put_cstr(struct jute_out *out, const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	jute_put_string(out, s, (int32_t)n);
}
/* Overwrite an int32 already written at offset at (frame lengths). */
void jute_patch_int(struct jute_out *out, size_t at, int32_t v);

static inline void jute_be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t jute_be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif
