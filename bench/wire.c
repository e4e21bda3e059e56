/* Encoders and decoders for the client frames the bench uses; the layouts
 * are tabled in wire.h. Encoders append whole frames to a jute_out whose
 * cap_max the caller sized; they leave out->err set if it did not. */
#include "bench/wire.h"

#include <errno.h>

static const uint8_t zero_password[ZK_PASSWORD_BYTES];

static size_t frame_begin(struct jute_out *out, int32_t xid, enum zk_op type)
{
	size_t start = out->len;
	jute_put_int(out, 0);
	jute_put_int(out, xid);
	jute_put_int(out, type);
	return start;
}

void wire_put_connect(struct jute_out *out, int32_t timeout_ms)
{
	size_t start = out->len;
	jute_put_int(out, 0);
	jute_put_int(out, 0);  /* protocolVersion */
	jute_put_long(out, 0); /* lastZxidSeen */
	jute_put_int(out, timeout_ms);
	jute_put_long(out, 0); /* sessionId: ask for a new one */
	jute_put_buffer(out, zero_password, ZK_PASSWORD_BYTES);
	jute_put_bool(out, false); /* readOnly */
	proto_frame_end(out, start);
}

void wire_put_bare(struct jute_out *out, int32_t xid, enum zk_op type)
{
	proto_frame_end(out, frame_begin(out, xid, type));
}

void wire_put_sync(struct jute_out *out, int32_t xid, const char *path, int32_t path_len)
{
	size_t start = frame_begin(out, xid, ZOP_SYNC);
	jute_put_string(out, path, path_len);
	proto_frame_end(out, start);
}

static void put_path_watch(struct jute_out *out, int32_t xid, enum zk_op type, const char *path,
			   int32_t path_len)
{
	size_t start = frame_begin(out, xid, type);
	jute_put_string(out, path, path_len);
	jute_put_bool(out, false); /* no watch */
	proto_frame_end(out, start);
}

void wire_put_get_data(struct jute_out *out, int32_t xid, const char *path, int32_t path_len)
{
	put_path_watch(out, xid, ZOP_GET_DATA, path, path_len);
}

void wire_put_exists(struct jute_out *out, int32_t xid, const char *path, int32_t path_len)
{
	put_path_watch(out, xid, ZOP_EXISTS, path, path_len);
}

void wire_put_set_data(struct jute_out *out, int32_t xid, const char *path, int32_t path_len,
		       const uint8_t *data, int32_t data_len)
{
	size_t start = frame_begin(out, xid, ZOP_SET_DATA);
	jute_put_string(out, path, path_len);
	jute_put_buffer(out, data, data_len);
	jute_put_int(out, -1); /* any version */
	proto_frame_end(out, start);
}

void wire_put_create(struct jute_out *out, int32_t xid, const char *path, int32_t path_len,
		     const uint8_t *data, int32_t data_len)
{
	size_t start = frame_begin(out, xid, ZOP_CREATE);
	jute_put_string(out, path, path_len);
	jute_put_buffer(out, data, data_len);
	jute_put_int(out, 1); /* one ACL: world:anyone with every permission */
	jute_put_int(out, ZPERM_ALL);
	jute_put_cstr(out, "world");
	jute_put_cstr(out, "anyone");
	jute_put_int(out, ZCM_PERSISTENT);
	proto_frame_end(out, start);
}

int wire_get_connect(struct jute_in *in, struct wire_connect_reply *r)
{
	const uint8_t *password;
	int32_t password_len;
	r->protocol_version = jute_get_int(in);
	r->timeout_ms = jute_get_int(in);
	r->session_id = jute_get_long(in);
	jute_get_buffer(in, &password, &password_len);
	/* readOnly is optional: servers before 3.4 do not send it. */
	if (!in->err && jute_remaining(in) >= 1)
		jute_get_bool(in);
	return in->err;
}

int wire_get_header(struct jute_in *in, struct wire_reply_header *h)
{
	h->xid = jute_get_int(in);
	h->zxid = jute_get_long(in);
	h->err = jute_get_int(in);
	return in->err;
}

int wire_get_data(struct jute_in *in, int32_t *data_len, struct zk_stat *st)
{
	const uint8_t *data;
	jute_get_buffer(in, &data, data_len);
	proto_get_stat(in, st);
	return in->err;
}

int wire_get_stat(struct jute_in *in, struct zk_stat *st)
{
	proto_get_stat(in, st);
	return in->err;
}
