/* ZooKeeper's DataTree as ringkeeper-import rebuilds it from a ZooKeeper
 * snapshot and txn log: znodes keyed by path with ZooKeeper's persisted Stat
 * (StatPersisted), their ACLs, the session table (id -> timeout) and the
 * ephemerals of each owner, changed by txns exactly as DataTree.processTxn
 * and FileTxnSnapLog.processTransaction change them, fuzzy-snapshot rules
 * included (docs/import.md says which).
 *
 * Invariants: every node but the root ("", as ZooKeeper keys it) has its
 * parent in the tree and is in the parent's children; a node whose owner is
 * a session id (not 0, not a container's or a TTL node's encoding) is in
 * that owner's ephemeral list, whether or not the session exists. A node's
 * ACL may be unresolved only between zktree_load_node() and
 * zktree_check_acls(): a fuzzy snapshot may name an ACL its cache lacks,
 * which a later create txn then sets.
 *
 * Ownership: the tree owns its nodes, their paths and data (copied in) and
 * every ACL list handed to it. One thread. Errors: 0 or -errno; txns return
 * ZooKeeper's codes (ZOK, ZNONODE, ZNODEEXISTS) as DataTree does, since a
 * fuzzy snapshot makes some of them normal. */
#ifndef RK_TOOLS_ZKTREE_H
#define RK_TOOLS_ZKTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/acl.h"
#include "core/proto.h"

/* StatPersisted: Stat without dataLength and numChildren, which ZooKeeper
 * derives. cversion is the count of children ever created. */
struct zk_stat_persisted {
	int64_t czxid;
	int64_t mzxid;
	int64_t ctime;
	int64_t mtime;
	int32_t version;
	int32_t cversion;
	int32_t aversion;
	int64_t ephemeral_owner;
	int64_t pzxid;
};

struct zknode {
	char *path; /* NUL-terminated; "" for the root */
	uint32_t path_len;
	int32_t data_len;	    /* -1: null data */
	uint8_t *data;		    /* NULL when data_len <= 0 */
	const struct acl_list *acl; /* owned by the tree; NULL: unresolved */
	int64_t acl_id;		    /* the snapshot's ACL cache id when unresolved */
	struct zk_stat_persisted st;
	struct zknode *parent;
	struct zknode **kids;
	uint32_t n_kids, kids_cap;
	uint32_t kid_index; /* in parent->kids */
	uint32_t eph_index; /* in the owner's ephemeral list */
};

/* One txn as the log holds it: TxnHeader and the record after it. Strings
 * and buffers point into the log file's bytes; acl lists are the caller's
 * until zktree_apply() takes them (it always does, also on failure). */
struct zk_txn_op {
	int32_t type; /* ZooKeeper OpCode */
	const char *path;
	int32_t path_len;
	const uint8_t *data;
	int32_t data_len; /* -1: null */
	struct acl_list *acl;
	bool acl_null; /* a null vector<ACL>: ZooKeeper stores world:anyone ALL */
	bool ephemeral;
	int32_t parent_cversion; /* -1 for a create logged without one (CreateTxnV0) */
	int64_t ttl_ms;
	int32_t version; /* setData, setACL, check */
	int32_t err;	 /* error */
	int32_t timeout_ms;
	/* closeSession's paths2Delete: n_paths jute strings at paths (NULL when
	 * the txn has no CloseSessionTxn). */
	const uint8_t *paths;
	size_t paths_len;
	int32_t n_paths;
};

struct zk_txn {
	int64_t client_id;
	int32_t cxid;
	int64_t zxid;
	int64_t time_ms;
	struct zk_txn_op op;	 /* op.type is the header's type */
	struct zk_txn_op *multi; /* op.type == ZOP_MULTI: n_multi ops, malloc'd */
	int32_t n_multi;
};

struct zktree;

/* An empty tree: no nodes at all (a snapshot brings the root). */
struct zktree *zktree_create(void);
void zktree_destroy(struct zktree *t);

/* ---- loading a snapshot, in its order ---- */
int zktree_session_put(struct zktree *t, int64_t id, int32_t timeout_ms);
/* The ACL cache entry id -> list; takes list. -EEXIST for a repeated id. */
int zktree_acl_define(struct zktree *t, int64_t id, struct acl_list *list);
/* A serialized node: "" first, then each node after its parent. Returns 0,
 * -EINVAL with *why set for a node ZooKeeper would refuse (a parent
 * missing, a repeated path, a path not absolute), or -ENOMEM. acl_id -1 is
 * world:anyone ALL; an id the cache lacks stays unresolved. */
int zktree_load_node(struct zktree *t, const char *path, size_t len, const uint8_t *data,
		     int32_t data_len, int64_t acl_id, const struct zk_stat_persisted *st,
		     const char **why);

/* ---- txns ---- */
/* Applies one txn (createSession, closeSession, create*, delete*, setData,
 * reconfig, setACL, check, error, multi) as ZooKeeper does on restore and
 * sets the tree's zxid to it. Returns the ZooKeeper code of the txn (a
 * multi's first failure), or -ENOMEM. Frees the txn's ACL lists and multi
 * array. */
int zktree_apply(struct zktree *t, struct zk_txn *txn);

/* ---- after the last txn ---- */
/* As ZooKeeper after loading: deletes the ephemerals of owners that are not
 * sessions (at the tree's zxid, so parents' pzxid may move). Returns how
 * many nodes went. */
size_t zktree_kill_dead_owners(struct zktree *t);
/* As DataTree.setupQuota after loading: rewrites each quota stats node
 * under /zookeeper/quota to "count=N,bytes=M" of its subtree. Returns how
 * many were rewritten, or -ENOMEM. */
int zktree_recount_quotas(struct zktree *t);
/* Every node's ACL resolved? -EINVAL with *bad (the first node that is
 * not) otherwise. */
int zktree_check_acls(struct zktree *t, const struct zknode **bad);
/* Adds the system nodes Ringkeeper's tree always has ("/zookeeper",
 * "/zookeeper/quota", "/zookeeper/config") when the ZooKeeper tree lacks
 * them (snapshots written before 3.5), as ZooKeeper's DataTree creates
 * them. Returns how many were added, or -ENOMEM. */
int zktree_add_system_nodes(struct zktree *t);

/* ---- reading ---- */
const struct zknode *zktree_root(const struct zktree *t);
const struct zknode *zktree_lookup(const struct zktree *t, const char *path, size_t len);
size_t zktree_node_count(const struct zktree *t);
int64_t zktree_zxid(const struct zktree *t);
void zktree_set_zxid(struct zktree *t, int64_t zxid);
/* Sessions in no particular order; fn's non-zero return stops and is
 * returned. */
int zktree_foreach_session(const struct zktree *t,
			   int (*fn)(void *ctx, int64_t id, int32_t timeout), void *ctx);
size_t zktree_session_count(const struct zktree *t);

/* ZooKeeper's rule for what an ephemeralOwner is, as Ringkeeper reads it:
 * a session id unless 0, a container (INT64_MIN) or a TTL node (0xff in
 * the top byte). */
bool zktree_owner_is_session(int64_t owner);

#endif
