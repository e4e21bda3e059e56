/* Jute encoding and decoding; see jute.h for the error contract. */
#include "core/jute.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool need(struct jute_in *in, size_t n)
{
	if (in->err)
		return false;
	if (in->len - in->off < n) {
		in->err = -EBADMSG;
		return false;
	}
	return true;
}

int32_t jute_get_int(struct jute_in *in)
{
	if (!need(in, 4))
		return 0;
	uint32_t v = jute_be32_get(in->p + in->off);
	in->off += 4;
	return (int32_t)v;
}

int64_t jute_get_long(struct jute_in *in)
{
	if (!need(in, 8))
		return 0;
	uint64_t hi = jute_be32_get(in->p + in->off);
	uint64_t lo = jute_be32_get(in->p + in->off + 4);
	in->off += 8;
	return (int64_t)(hi << 32 | lo);
}

bool jute_get_bool(struct jute_in *in)
{
	if (!need(in, 1))
		return false;
	return in->p[in->off++] != 0;
}

void jute_get_buffer(struct jute_in *in, const uint8_t **p, int32_t *len)
{
	*p = NULL;
	*len = -1;
	int32_t n = jute_get_int(in);
	if (in->err)
		return;
	if (n < 0) {
		if (n != -1)
			in->err = -EBADMSG;
		return;
	}
	if (!need(in, (size_t)n))
		return;
	*p = in->p + in->off;
	*len = n;
	in->off += (size_t)n;
}

void jute_get_string(struct jute_in *in, const char **p, int32_t *len)
{
	const uint8_t *b;
	jute_get_buffer(in, &b, len);
	*p = (const char *)b;
}

int32_t jute_get_vector_len(struct jute_in *in, size_t elem_min_bytes)
{
	int32_t n = jute_get_int(in);
	if (in->err)
		return 0;
	if (n == -1)
		return 0;
	if (n < 0 || (elem_min_bytes && (size_t)n > jute_remaining(in) / elem_min_bytes)) {
		in->err = -EBADMSG;
		return 0;
	}
	return n;
}

void jute_out_init(struct jute_out *out, size_t cap_initial, size_t cap_max)
{
	out->buf = NULL;
	out->len = 0;
	out->cap = 0;
	out->cap_max = cap_max;
	out->err = 0;
	if (cap_initial) {
		out->buf = malloc(cap_initial);
		if (out->buf)
			out->cap = cap_initial;
		else
			out->err = -ENOMEM;
	}
}

void jute_out_free(struct jute_out *out)
{
	free(out->buf);
	out->buf = NULL;
	out->len = out->cap = 0;
}

void jute_out_reset(struct jute_out *out)
{
	out->len = 0;
	out->err = 0;
}

uint8_t *jute_reserve(struct jute_out *out, size_t n)
{
	if (out->err)
		return NULL;
	if (out->cap_max - out->len < n || out->len > out->cap_max) {
		out->err = -EMSGSIZE;
		return NULL;
	}
	if (out->cap - out->len < n) {
		size_t cap = out->cap ? out->cap : 256;
		while (cap - out->len < n)
			cap *= 2;
		if (cap > out->cap_max)
			cap = out->cap_max;
		uint8_t *nb = realloc(out->buf, cap);
		if (!nb) {
			out->err = -ENOMEM;
			return NULL;
		}
		out->buf = nb;
		out->cap = cap;
	}
	uint8_t *p = out->buf + out->len;
	out->len += n;
	return p;
}

void jute_put_int(struct jute_out *out, int32_t v)
{
	uint8_t *p = jute_reserve(out, 4);
	if (p)
		jute_be32_put(p, (uint32_t)v);
}

void jute_put_long(struct jute_out *out, int64_t v)
{
	uint8_t *p = jute_reserve(out, 8);
	if (p) {
		jute_be32_put(p, (uint32_t)((uint64_t)v >> 32));
		jute_be32_put(p + 4, (uint32_t)v);
	}
}

void jute_put_bool(struct jute_out *out, bool v)
{
	uint8_t *p = jute_reserve(out, 1);
	if (p)
		*p = v ? 1 : 0;
}

void jute_put_buffer(struct jute_out *out, const void *data, int32_t len)
{
	if (!data || len < 0) {
		jute_put_int(out, -1);
		return;
	}
	uint8_t *p = jute_reserve(out, 4 + (size_t)len);
	if (p) {
		jute_be32_put(p, (uint32_t)len);
		if (len)
			memcpy(p + 4, data, (size_t)len);
	}
}

void jute_put_string(struct jute_out *out, const char *s, int32_t len)
{
	jute_put_buffer(out, s, len);
}

void jute_patch_int(struct jute_out *out, size_t at, int32_t v)
{
	if (!out->err && at + 4 <= out->len)
		jute_be32_put(out->buf + at, (uint32_t)v);
}
