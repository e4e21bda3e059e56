/* The znode tree: an immutable, persistent map from path to znode, built on
 * core/hamt. Each znode also holds the persistent set of its children's
 * names, so a parent with n children changes in O(log n).
 *
 * Ownership and threads. One writer (the sequencer) owns a struct tree: it
 * applies changes to a private working version and publishes it as a
 * struct tree_version with a release store (tree_publish). Session cores
 * acquire a version and read it with no locks, no reference counts and no
 * writes. Everything a change replaces is retired, not freed: tree_reclaim
 * frees what was retired by generations every reader has moved past
 * (quiescent-state-based reclamation; each core's loop iteration is a
 * quiescent state and it reports the generation it holds). A reader that
 * holds an old version therefore sees it unchanged until it reports a newer
 * generation.
 *
 * Paths are absolute, '/'-separated, without a trailing slash ("/" is the
 * root). Validation of client paths and requests is the caller's
 * (core/txn.c); tree_* functions assert their preconditions. */
#ifndef RK_TREE_H
#define RK_TREE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/hamt.h"
#include "core/proto.h"

struct acl_list;

/* An interned ACL: many znodes share one. encoded is the jute vector<ACL>
 * as getACL sends it. refs is the writer's; readers only read list and
 * encoded. */
struct acl_ref {
	uint32_t refs;
	uint32_t encoded_len;
	const struct acl_list *list;
	uint8_t encoded[];
};

/* Immutable once published. */
struct znode {
	struct zk_stat stat;
	const struct acl_ref *acl;
	const uint8_t *data;	   /* NULL when stat.data_length is 0; owned */
	struct hamt_root children; /* name -> NULL */
};

struct tree_version {
	struct hamt_root nodes; /* path -> struct znode */
	int64_t zxid;		/* last txn applied */
	uint64_t gen;		/* publication number, 1 for the first */
	/* For status and metrics, kept up to date by every change: */
	uint64_t ephemerals;   /* nodes a session owns (not containers, TTL nodes) */
	uint64_t bytes_approx; /* path plus data bytes of every node but "/", as
				* ZooKeeper's approximate_data_size */
};

struct tree;

/* Creates a tree holding "/" and "/zookeeper" with world:anyone ALL. */
struct tree *tree_create(void);
void tree_destroy(struct tree *t);

/* ---- readers (any thread, on an acquired version) ---- */
const struct tree_version *tree_acquire(const struct tree *t);
const struct znode *tree_lookup(const struct tree_version *v, const char *path, size_t len);
/* Calls fn for every child name of the node until fn returns non-zero. */
int tree_foreach_child(const struct znode *n, int (*fn)(void *ctx, const char *name, size_t len),
		       void *ctx);

/* ---- writer (the sequencer) ---- */
/* The working version: what readers will see after the next publish. */
const struct tree_version *tree_working(const struct tree *t);
/* Nodes are created with stat fields czxid/mzxid/pzxid = zxid, times =
 * time_ms, versions 0, ephemeral_owner = owner. The parent must exist and
 * the node must not; the parent's cversion is set to parent_cversion (as
 * ZooKeeper's txn carries it) and its pzxid to zxid. data is copied. */
int tree_node_create(struct tree *t, const char *path, size_t len, const void *data,
		     int32_t data_len, const struct acl_list *acl, int64_t owner, int64_t zxid,
		     int64_t time_ms, int32_t parent_cversion);
int tree_node_delete(struct tree *t, const char *path, size_t len, int64_t zxid);
int tree_node_set_data(struct tree *t, const char *path, size_t len, const void *data,
		       int32_t data_len, int64_t zxid, int64_t time_ms, int32_t version);
int tree_node_set_acl(struct tree *t, const char *path, size_t len, const struct acl_list *acl,
		      int32_t aversion);
/* Replaces the data only: the Stat keeps every field but data_length (no
 * version, mzxid or mtime change), as ZooKeeper's DataTree rewrites a quota
 * stats node (core/quota.c). Fires nothing. */
int tree_node_replace_data(struct tree *t, const char *path, size_t len, const void *data,
			   int32_t data_len);
void tree_set_zxid(struct tree *t, int64_t zxid);

/* Recovery from a snapshot (core/snapshot.c): puts a node at path with
 * exactly the Stat st (st->data_length must be max(data_len, 0)), a copy of
 * data (data_len -1 = null) and acl, adding its name to the parent's
 * children set without touching the parent's Stat. The parent must exist
 * (-ENOENT) and the node must not (-EEXIST), except the system nodes
 * tree_create() made, each of which one restore may replace, keeping its
 * children set.
 *
 * Only for a fresh tree that no reader has acquired and nothing was frozen
 * or published on since tree_create(): to restore millions of nodes quickly
 * it changes nodes in place and frees what it replaces at once instead of
 * retiring it. Publish the tree once restoring is over. */
int tree_node_restore(struct tree *t, const char *path, size_t len, const struct zk_stat *st,
		      const void *data, int32_t data_len, const struct acl_list *acl);

/* Publish the working version; returns its generation. */
uint64_t tree_publish(struct tree *t);
/* A frozen copy of the working version with the next generation, to be
 * published later (once its batch is durable) with tree_publish_version.
 * Versions must be published in the order they were frozen. */
struct tree_version *tree_freeze(struct tree *t);
void tree_publish_version(struct tree *t, struct tree_version *v);
/* Drop a frozen version that will never be published. */
void tree_version_discard(struct tree *t, struct tree_version *v);
/* Free everything retired before generation gen_min_held was published,
 * given that no reader holds a version older than gen_min_held. */
void tree_reclaim(struct tree *t, uint64_t gen_min_held);
size_t tree_node_count(const struct tree_version *v);
/* A 64-bit digest of every znode of v: equal on two servers that hold the
 * same data, however each built it (txns, a snapshot, another order), and
 * different, with near certainty, if any node differs. Per node it hashes
 * (XXH3) the path, the Stat's 11 fields (all come from the replicated txns),
 * whether the data is null, the data and the ACL's encoded bytes; the node
 * hashes are summed, so neither the order of creation nor the trie's layout
 * matters. O(n): for diagnostics (the hash four-letter word), not the hot
 * path. Any thread, on an acquired version. */
uint64_t tree_digest(const struct tree_version *v);
/* Bytes of retired pointers not yet freed (8 per retired object). */
size_t tree_bytes_retired_pending(const struct tree *t);

/* Parent path of path ("/" for "/a"); returns its length. */
size_t tree_parent_len(const char *path, size_t len);

#endif
