/* ZooKeeper's files for ringkeeper-import: finding the snapshots and txn
 * logs of a dataDir (version-2/), reading a snapshot into a zktree and
 * replaying the log records after it. The formats, as offset tables, are in
 * docs/import.md; in short (all integers big-endian, jute strings and
 * buffers an int32 length, -1 for null, then the bytes):
 *
 * snapshot.<zxid hex>: FileHeader ("ZKSN", version 2, dbid), int32 session
 *   count, (int64 id, int32 timeout) each, the ACL cache (int32 count, then
 *   int64 id and vector<ACL> each), the nodes (string path, buffer data,
 *   int64 ACL id, StatPersisted) from "" (the root) in parent-before-child
 *   order up to the path "/", then the seal: int64 Adler32 of every byte
 *   before it and the string "/". 3.6+ may follow it with a digest (int64
 *   zxid, int32 version, int64 digest or, before version 2, a hex string)
 *   and another seal covering everything before it.
 * log.<first zxid hex>: FileHeader ("ZKLG", version 2, dbid), then records
 *   (int64 Adler32 of the txn bytes, int32 length, the txn bytes: TxnHeader,
 *   the txn record, maybe a 12-byte TxnDigest; then the byte 'B'), then
 *   zeros to the preallocated end. */
#ifndef RK_TOOLS_ZKFILES_H
#define RK_TOOLS_ZKFILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/zk/zktree.h"

#define ZK_SNAP_MAGIC	     0x5a4b534eu /* "ZKSN" */
#define ZK_LOG_MAGIC	     0x5a4b4c47u /* "ZKLG" */
#define ZK_FILE_VERSION	     2
#define ZK_FILE_HEADER_BYTES 16
#define ZK_TXN_HEADER_BYTES  32
#define ZK_TXN_DIGEST_BYTES  12

/* Where and why an input was refused. */
struct zk_fault {
	char file[4096];
	uint64_t off;
	char what[512];
};

enum zk_file_kind {
	ZK_FILE_SNAPSHOT = 0,	 /* snapshot.<zxid> */
	ZK_FILE_SNAPSHOT_GZIP,	 /* snapshot.<zxid>.gz: not readable here */
	ZK_FILE_SNAPSHOT_SNAPPY, /* snapshot.<zxid>.snappy: not readable here */
	ZK_FILE_LOG,		 /* log.<zxid> */
	ZK_FILE_KIND_COUNT,
};

struct zk_file {
	char path[4096];
	const char *name; /* into path */
	enum zk_file_kind kind;
	int64_t zxid; /* from the name */
};

struct zk_listing {
	struct zk_file *snaps; /* newest first */
	size_t n_snaps;
	struct zk_file *logs; /* oldest first */
	size_t n_logs;
};

/* Lists the snapshots in snap_dir and the logs in log_dir (the version-2
 * directories). Names as ZooKeeper's: a prefix, '.', the zxid in hex, and
 * for snapshots maybe a compression suffix; other files are left out.
 * Returns 0 or -errno (err says which directory). */
int zkfiles_list(const char *snap_dir, const char *log_dir, struct zk_listing *out, char *err,
		 size_t errlen);
void zkfiles_listing_free(struct zk_listing *l);

/* Reads a snapshot into t (from zktree_create()) and verifies its seals;
 * t's zxid becomes the snapshot's. Returns 0, -EBADMSG with *fault (the
 * byte offset of the record or seal at fault), -ENOTSUP for a compressed
 * snapshot, or -errno (fault says what). On failure t holds part of it. */
int zksnap_load(const struct zk_file *f, struct zktree *t, struct zk_fault *fault);

struct zklog_result {
	size_t files_read;     /* log files opened */
	uint64_t records;      /* valid records seen, applied or not */
	uint64_t applied;      /* records after the snapshot */
	int64_t first_applied; /* zxid, 0 when none */
	int64_t last_zxid;     /* of the last valid record, -1 when none */
	/* A torn tail: the last file's records end early (a crash in the
	 * middle of a write); nothing valid follows. */
	bool torn;
	char torn_file[4096];
	uint64_t torn_off;
	uint64_t torn_bytes; /* non-zero bytes ignored after torn_off */
	const char *torn_why;
};

/* Applies to t (holding the snapshot of zxid snap_zxid) every log record
 * after snap_zxid, from the log files that may hold them (the newest one
 * starting at or before snap_zxid and all later ones). Every record of
 * those files is verified. A bad record followed by no valid one is a torn
 * tail: the end of the last file, or of an earlier one when the next file
 * goes on where the valid records stop. Refused (-EBADMSG, *fault):
 * a bad record with valid ones after it, a file that is not a txn log,
 * a txn that does not decode, zxids going backwards, and a gap (a missing
 * zxid within one epoch). -ENOMEM or -errno otherwise. */
int zklog_replay(const struct zk_listing *l, int64_t snap_zxid, struct zktree *t,
		 struct zklog_result *res, struct zk_fault *fault);

/* Adler32 as java.util.zip.Adler32 (RFC 1950), continued from adler (1 to
 * start). */
uint32_t zk_adler32(uint32_t adler, const uint8_t *p, size_t n);

/* The password ZooKeeper gives session id: 16 bytes of java.util.Random
 * seeded with id ^ 0xB3415C00 (ZooKeeperServer.generatePasswd), so a
 * client can resume its session on a server that imported it. */
void zk_session_password(int64_t id, uint8_t out[16]);

#endif
