/* The client side of the ZooKeeper wire protocol, as much of it as the
 * bench speaks. Every frame is a 4-byte big-endian length (of the bytes
 * after it) followed by a jute record; strings and buffers are a 4-byte
 * length then the bytes.
 *
 * ConnectRequest (client -> server, first frame, no request header):
 *   offset size
 *   0      4    protocolVersion (0)
 *   4      8    lastZxidSeen (0)
 *   12     4    timeOut, ms
 *   16     8    sessionId (0: new session)
 *   24     4+16 passwd (16 zero bytes)
 *   44     1    readOnly (false)
 * ConnectResponse: protocolVersion int, timeOut int (<= 0: rejected),
 *   sessionId long, passwd buffer, [readOnly bool, absent on old servers]
 *
 * Request: xid int, type int, then the body:
 *   getData (4):  path string, watch bool
 *   exists (3):   path string, watch bool
 *   setData (5):  path string, data buffer, version int (-1: any)
 *   create (1):   path string, data buffer, acl vector, flags int
 *   sync (9):     path string
 *   ping (11, xid -2) and closeSession (-11): no body
 * Reply: xid int, zxid long, err int, then, if err == 0, the body:
 *   getData: data buffer, Stat (68 bytes);  setData, exists: Stat
 *   create, sync: path string;              ping, closeSession: nothing */
#ifndef RK_BENCH_WIRE_H
#define RK_BENCH_WIRE_H

#include <stdint.h>

#include "core/jute.h"
#include "core/proto.h"

struct wire_connect_reply {
	int32_t protocol_version;
	int32_t timeout_ms;
	int64_t session_id;
};

struct wire_reply_header {
	int32_t xid;
	int64_t zxid;
	int32_t err;
};

void wire_put_connect(struct jute_out *out, int32_t timeout_ms);
/* Ping and closeSession: a request header and nothing else. */
void wire_put_bare(struct jute_out *out, int32_t xid, enum zk_op type);
void wire_put_sync(struct jute_out *out, int32_t xid, const char *path, int32_t path_len);
void wire_put_get_data(struct jute_out *out, int32_t xid, const char *path, int32_t path_len);
void wire_put_exists(struct jute_out *out, int32_t xid, const char *path, int32_t path_len);
void wire_put_set_data(struct jute_out *out, int32_t xid, const char *path, int32_t path_len,
		       const uint8_t *data, int32_t data_len);
/* A persistent znode readable and writable by anyone (world:anyone, ALL). */
void wire_put_create(struct jute_out *out, int32_t xid, const char *path, int32_t path_len,
		     const uint8_t *data, int32_t data_len);

/* Decoders return 0 or -EBADMSG and consume what they read from in. */
int wire_get_connect(struct jute_in *in, struct wire_connect_reply *r);
int wire_get_header(struct jute_in *in, struct wire_reply_header *h);
/* getData body: the data length (-1 for null) and the Stat. */
int wire_get_data(struct jute_in *in, int32_t *data_len, struct zk_stat *st);
int wire_get_stat(struct jute_in *in, struct zk_stat *st);

#endif
