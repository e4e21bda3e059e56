/* The sequencer's table of global sessions: id, password, negotiated
 * timeout, deadline, owning core, authenticated ids and ephemeral paths.
 *
 * Owned by the sequencer thread alone. Cores keep their own per-connection
 * state and report liveness; the sequencer decides expiry here. Session ids
 * follow ZooKeeper: server id in the top byte, then a time-based start
 * value incremented per session. */
#ifndef RK_SESSION_H
#define RK_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "core/acl.h"
#include "core/hamt.h"
#include "core/proto.h"

struct session {
	uint64_t id;
	int32_t timeout_ms;
	int64_t deadline_ms;
	uint16_t owner_core;
	bool closing; /* a closeSession or expiry is in flight */
	uint8_t passwd[ZK_PASSWORD_BYTES];
	struct acl_auth auth;
	struct hamt_root ephemerals; /* path -> NULL */
};

struct session_table;

struct session_table *session_table_create(uint8_t server_id, int64_t now_ms);
void session_table_destroy(struct session_table *st);

/* A new session with a fresh id and random password; NULL on ENOMEM. */
struct session *session_open(struct session_table *st, int32_t timeout_ms, uint16_t core,
			     int64_t now_ms);
/* A session from the log, with its id and password. */
struct session *session_restore(struct session_table *st, uint64_t id, int32_t timeout_ms,
				const uint8_t *passwd, int64_t now_ms);
struct session *session_find(struct session_table *st, uint64_t id);
void session_touch(struct session_table *st, struct session *s, int64_t now_ms);
/* Removes and frees the session (its ephemerals must be gone already). */
void session_remove(struct session_table *st, struct session *s);
size_t session_count(const struct session_table *st);

int session_ephemeral_add(struct session_table *st, struct session *s, const char *path,
			  size_t len);
void session_ephemeral_del(struct session_table *st, struct session *s, const char *path,
			   size_t len);

/* Calls fn for each session whose deadline passed and that is not closing. */
void session_foreach_expired(struct session_table *st, int64_t now_ms,
			     void (*fn)(void *ctx, struct session *s), void *ctx);
void session_foreach(struct session_table *st, void (*fn)(void *ctx, struct session *s), void *ctx);

#endif
