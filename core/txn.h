/* The state machine: turns a client write request into a txn, validating
 * it against the newest state exactly as ZooKeeper's PrepRequestProcessor
 * does, then applies the txn to the tree (as DataTree does), records the
 * watch events it causes and encodes the client's reply.
 *
 * Runs on the sequencer thread only. Every write consumes a zxid, failed
 * ones too (ZooKeeper logs them as error txns), so reply zxids grow. */
#ifndef RK_TXN_H
#define RK_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jute.h"
#include "core/proto.h"
#include "core/session.h"
#include "core/tree.h"

struct sm_sink {
	/* A watch event the change causes, in ZooKeeper's trigger order. */
	void (*event)(void *ctx, enum zk_event_type type, const char *path, size_t len,
		      int64_t zxid);
	void *ctx;
};

struct sm {
	struct tree *tree;
	struct session_table *sessions;
	int64_t zxid; /* last zxid assigned */
	const char *super_id; /* digest id from superDigest, or NULL */
	bool extended_types; /* TTL nodes allowed (extendedTypesEnabled) */
};

/* Apply one write (create, create2, createContainer, createTTL, delete,
 * deleteContainer, setData, setACL, check, multi, sync) of session s and
 * append its framed reply to reply. */
void sm_write(struct sm *sm, struct session *s, int32_t xid, int32_t op, const uint8_t *body,
	      size_t len, int64_t now_ms, struct jute_out *reply, struct sm_sink *sink);

/* End a session: delete its ephemerals (one txn), fire their watches, and
 * remove it from the table. Returns the zxid of the txn. */
int64_t sm_close_session(struct sm *sm, struct session *s, int64_t now_ms, struct sm_sink *sink);

/* A createSession txn: returns the new session (NULL on ENOMEM). */
struct session *sm_open_session(struct sm *sm, int32_t timeout_ms, uint16_t core, int64_t now_ms);

/* ZooKeeper's PathUtils.validatePath. */
bool txn_path_valid(const char *path, size_t len);

#endif
