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
#include "core/quota.h"
#include "core/session.h"
#include "core/tree.h"

struct sm_sink {
	/* A watch event the change causes, in ZooKeeper's trigger order.
	 * acl is the ACL a watcher needs READ on to be told (ZooKeeper 3.9.2,
	 * CVE-2024-23944): the node's as the change left it, the deleted
	 * node's as it was, the parent's for NodeChildrenChanged. It belongs
	 * to the tree: retired like the znodes, so valid for readers of any
	 * version published before this change. */
	void (*event)(void *ctx, enum zk_event_type type, const char *path, size_t len,
		      int64_t zxid, const struct acl_list *acl);
	void *ctx;
};

/* Txn record types in the log (storage/ sees them as opaque numbers).
 * Every record's payload starts with the txn time (int64 ms); the rest is
 * jute-encoded as documented in docs/txn-log.md. */
enum txn_type {
	TXN_ERROR = 0,	    /* a failed write: advances the zxid only */
	TXN_CREATE_SESSION, /* id, timeout, password */
	TXN_CLOSE_SESSION,  /* id: its ephemerals go with it */
	TXN_CREATE,	    /* path, data, ACL, owner, parent create count */
	TXN_DELETE,	    /* path */
	TXN_SET_DATA,	    /* path, data, version */
	TXN_SET_ACL,	    /* path, ACL, aversion */
	TXN_MULTI,	    /* count, then (type, body) per op */
	TXN_TYPE_COUNT,
};

/* Where the state machine hands each txn for the log; payload is valid
 * during the call only. */
struct sm_log {
	void (*record)(void *ctx, int64_t zxid, uint32_t type, const void *payload, uint32_t len);
	void *ctx;
};

struct sm {
	struct sm_log *log; /* NULL: nothing is logged */
	struct tree *tree;
	struct session_table *sessions;
	int64_t zxid;	      /* last zxid assigned */
	const char *super_id; /* digest id from superDigest, or NULL */
	bool extended_types;  /* TTL nodes allowed (extendedTypesEnabled) */
	/* reconfigEnabled on a standalone server: reconfig is then
	 * ZUNIMPLEMENTED (ZooKeeper supports it only in an ensemble) instead
	 * of ZRECONFIGDISABLED. An ensemble member always says disabled. */
	bool reconfig_enabled;
	/* enforceQuota (ZooKeeper's zookeeper.enforceQuota): creates and
	 * setData under a quota'd path are checked against its limits (a soft
	 * one passed is logged, a hard one refuses the write with
	 * QUOTAEXCEEDED). Off: nothing is checked, as in ZooKeeper; the stats
	 * are kept either way (core/quota.h). */
	bool enforce_quota;
	struct quota_counters *quota_counters; /* hard-limit refusals, or NULL */
	int64_t quota_log_ms;		       /* last quota warning (rate limit) */
	uint64_t quota_log_quiet;	       /* warnings left out since */
};

/* Apply one write (create, create2, createContainer, createTTL, delete,
 * deleteContainer, setData, setACL, check, multi, sync, and reconfig, which
 * always fails) of session s and append its framed reply to reply. */
void sm_write(struct sm *sm, struct session *s, int32_t xid, int32_t op, const uint8_t *body,
	      size_t len, int64_t now_ms, struct jute_out *reply, struct sm_sink *sink);

/* End a session: delete its ephemerals (one txn), fire their watches, and
 * remove it from the table. Returns the zxid of the txn. */
int64_t sm_close_session(struct sm *sm, struct session *s, int64_t now_ms, struct sm_sink *sink);

/* A createSession txn: returns the new session (NULL on ENOMEM). */
struct session *sm_open_session(struct sm *sm, int32_t timeout_ms, uint16_t core, int64_t now_ms);

/* Apply one logged txn during recovery (no events, no replies). Returns 0
 * or -EBADMSG for a record that does not decode or does not apply. */
int sm_replay(struct sm *sm, int64_t zxid, uint32_t type, const void *payload, uint32_t len);
/* Apply one txn another server ordered (a follower applying the leader's
 * commits): as sm_replay, and the watch events go to sink. */
int sm_apply(struct sm *sm, int64_t zxid, uint32_t type, const void *payload, uint32_t len,
	     struct sm_sink *sink);

/* ephemeralOwner encodings (ZooKeeper's EphemeralType): a container, or a
 * TTL node (then *ttl_ms, if not NULL, gets its TTL). */
bool txn_owner_is_container(int64_t owner);
bool txn_owner_ttl(int64_t owner, int64_t *ttl_ms);

/* ZooKeeper's PathUtils.validatePath. */
bool txn_path_valid(const char *path, size_t len);

#endif
