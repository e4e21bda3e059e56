/* Snapshot images: the whole znode tree of one version and the session
 * table at that version's zxid, as one byte string (the body). This is the
 * codec only; storage/snapfile.c puts a body in a file with a header and a
 * checksum, and docs/snapshots.md has the why.
 *
 * Threads: snapshot_encode reads only the frozen version it is given (its
 * znodes, data, children sets and interned ACLs' bytes, all immutable), so
 * it may run on its own thread while the sequencer changes the working
 * tree, as long as that thread holds a reader slot keeping the version
 * from being reclaimed. snapshot_decode fills a private tree and session
 * table on the calling thread.
 *
 * Body format, version 1. All integers little-endian. Three parts, back to
 * back with no padding: the header, n_sessions session records, n_znodes
 * znode records.
 *
 * Header (struct snap_body_header, 32 bytes):
 * | off | size | field                                                 |
 * |   0 |    4 | version, SNAP_BODY_VERSION                            |
 * |   4 |    4 | n_sessions                                            |
 * |   8 |    8 | zxid: the last txn the image holds                    |
 * |  16 |    8 | n_znodes                                              |
 * |  24 |    8 | reserved, zero                                        |
 *
 * Session record (struct snap_session_record, 32 bytes):
 * | off | size | field                                                 |
 * |   0 |    8 | id (never 0; ids are unique)                          |
 * |   8 |    4 | timeout_ms (> 0)                                      |
 * |  12 |    4 | reserved, zero                                        |
 * |  16 |   16 | password                                              |
 *
 * Znode record (struct snap_znode_record, 80 bytes, then three variable
 * parts):
 * | off | size | field                                                 |
 * |   0 |    8 | czxid                                                 |
 * |   8 |    8 | mzxid                                                 |
 * |  16 |    8 | ctime (ms)                                            |
 * |  24 |    8 | mtime (ms)                                            |
 * |  32 |    8 | ephemeral_owner (ZooKeeper's encodings, docs/txn-log.md) |
 * |  40 |    8 | pzxid                                                 |
 * |  48 |    4 | version                                               |
 * |  52 |    4 | cversion: the stored create count, not the wire value |
 * |  56 |    4 | aversion                                              |
 * |  60 |    4 | num_children                                          |
 * |  64 |    4 | data_len: bytes of data that follow; -1 = null data   |
 * |     |      |   (Stat.dataLength is max(data_len, 0))               |
 * |  68 |    4 | path_len (>= 1)                                       |
 * |  72 |    4 | acl: index into the ACL table (see below)             |
 * |  76 |    4 | reserved, zero                                        |
 * |  80 |    p | path, absolute, no terminator                         |
 * | +p  |    d | data (max(data_len, 0) bytes)                         |
 * | +d  |  4+a | only when acl == ACLs defined so far: a new ACL, a    |
 * |     |      |   uint32 length a, then a bytes of jute vector<ACL>   |
 * |     |      |   (core/acl.h)                                        |
 *
 * The ACL table is defined inline, in first-use order: a record whose acl
 * index equals the number of ACLs defined before it carries that ACL's
 * bytes; later records with the same ACL carry only the index. Millions of
 * znodes sharing a few ACLs cost 4 bytes each.
 *
 * Znodes come in parent-before-child order (a depth-first walk from "/"),
 * so each parent exists when its child is restored; the system nodes ("/",
 * "/zookeeper", ...) are in the image like any other node. */
#ifndef RK_SNAPSHOT_H
#define RK_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "core/acl.h"
#include "core/proto.h"
#include "core/session.h"
#include "core/tree.h"

#define SNAP_BODY_VERSION 1u

struct snap_body_header {
	uint32_t version;
	uint32_t n_sessions;
	int64_t zxid;
	uint64_t n_znodes;
	uint64_t reserved;
};

struct snap_session_record {
	uint64_t id;
	int32_t timeout_ms;
	uint32_t reserved;
	uint8_t passwd[ZK_PASSWORD_BYTES];
};

struct snap_znode_record {
	int64_t czxid;
	int64_t mzxid;
	int64_t ctime;
	int64_t mtime;
	int64_t ephemeral_owner;
	int64_t pzxid;
	int32_t version;
	int32_t cversion;
	int32_t aversion;
	int32_t num_children;
	int32_t data_len;
	uint32_t path_len;
	uint32_t acl;
	uint32_t reserved;
};

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "snapshots are written little-endian");
_Static_assert(sizeof(struct snap_body_header) == 32, "body header layout");
_Static_assert(offsetof(struct snap_body_header, zxid) == 8, "body header layout");
_Static_assert(offsetof(struct snap_body_header, n_znodes) == 16, "body header layout");
_Static_assert(sizeof(struct snap_session_record) == 32, "session record layout");
_Static_assert(offsetof(struct snap_session_record, timeout_ms) == 8, "session record layout");
_Static_assert(offsetof(struct snap_session_record, passwd) == 16, "session record layout");
_Static_assert(sizeof(struct snap_znode_record) == 80, "znode record layout");
_Static_assert(offsetof(struct snap_znode_record, ephemeral_owner) == 32, "znode record layout");
_Static_assert(offsetof(struct snap_znode_record, pzxid) == 40, "znode record layout");
_Static_assert(offsetof(struct snap_znode_record, version) == 48, "znode record layout");
_Static_assert(offsetof(struct snap_znode_record, num_children) == 60, "znode record layout");
_Static_assert(offsetof(struct snap_znode_record, data_len) == 64, "znode record layout");
_Static_assert(offsetof(struct snap_znode_record, acl) == 72, "znode record layout");
_Static_assert(offsetof(struct snap_znode_record, reserved) == 76, "znode record layout");

/* A session as the image keeps it; the rest (deadline, owning core, auth)
 * does not survive a restart, as in ZooKeeper. */
struct snap_session {
	uint64_t id;
	int32_t timeout_ms;
	uint8_t passwd[ZK_PASSWORD_BYTES];
};

/* Where the encoder's output goes: returns 0 or -errno (which stops the
 * encoding and is returned). Called with chunks of up to
 * SNAP_ENCODE_CHUNK_BYTES, or larger for a record that does not fit one. */
typedef int (*snapshot_write_fn)(void *ctx, const void *p, size_t n);

#define SNAP_ENCODE_CHUNK_BYTES (1u << 20)

/* Streams the image of version v with these sessions to write. v must stay
 * valid (not reclaimed) until this returns; nothing else is read. The walk
 * is iterative: its memory is the pending child names and the current
 * path, whatever the depth. Returns 0, -ENOMEM or write's -errno. */
int snapshot_encode(const struct tree_version *v, const struct snap_session *sessions,
		    size_t n_sessions, snapshot_write_fn write, void *ctx);

/* Why a body was refused: the byte offset of the header or record at fault
 * (the body's length for a check made at the end) and a static reason. */
struct snap_fault {
	size_t off;
	const char *what;
};

/* Restores the body into t, fresh from tree_create() (see
 * tree_node_restore), and st, a fresh session table: every znode with its
 * exact Stat, data and ACL, every session (deadline 0: the caller restarts
 * the timeouts) with each ephemeral znode registered in its owner, and the
 * tree's zxid, also returned in *zxid. Everything is checked: bounds,
 * reserved fields, paths, ACL bytes and indexes, data lengths, zxids not
 * past the image's, a parent before each child, no duplicate znode or
 * session, owners of ephemerals present, the counts, and every
 * num_children against the children restored. Returns 0, -EBADMSG for any
 * inconsistency (never an assertion) or -ENOMEM; on failure t and st hold
 * part of the image and must be destroyed. */
int snapshot_decode(const void *body, size_t len, struct tree *t, struct session_table *st,
		    int64_t *zxid);
/* The same, saying where and why a body is refused (fault may be NULL). */
int snapshot_decode_report(const void *body, size_t len, struct tree *t, struct session_table *st,
			   int64_t *zxid, struct snap_fault *fault);

/* One znode as snapshot_walk shows it; pointers are into the body (acl into
 * the walk's table) and valid during the call only. */
struct snap_znode {
	size_t off; /* of the record in the body */
	const char *path;
	size_t path_len;
	struct zk_stat stat;
	const uint8_t *data; /* NULL for null data */
	int32_t data_len;    /* -1 for null data */
	uint32_t acl_index;
	const struct acl_list *acl;
};

/* Callbacks of snapshot_walk; any may be NULL. A non-zero return (a
 * -errno) stops the walk and is returned, with fault->off at the record and
 * fault->what "refused by the visitor". */
struct snap_visitor {
	int (*header)(void *ctx, const struct snap_body_header *h);
	int (*session)(void *ctx, const struct snap_session *s, size_t off);
	int (*znode)(void *ctx, const struct snap_znode *z);
	void *ctx;
};

/* Parses a body, checking everything a body can be checked for on its own
 * (bounds, reserved fields, paths, ACLs, counts, zxids), and calls the
 * visitor for the header, each session and each znode in order. What only
 * a rebuilt tree can show (parents, duplicates, num_children, owners) is
 * snapshot_decode's. Returns 0, -EBADMSG (fault says where, if not NULL),
 * -ENOMEM or a visitor's return. */
int snapshot_walk(const void *body, size_t len, const struct snap_visitor *visitor,
		  struct snap_fault *fault);

#endif
