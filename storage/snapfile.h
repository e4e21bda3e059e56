/* Snapshot files: a body (opaque bytes here; core/snapshot.h says what they
 * mean) framed by a header and a checksummed footer, written to a
 * temporary name and renamed into place only once complete and synced, so a
 * snapshot file either exists whole or not at all. Loading picks the newest
 * file that verifies; retention keeps the newest few. docs/snapshots.md has
 * the why.
 *
 * Threads: a writer is used by one thread (the snapshot thread). Loading
 * runs at start-up. snapfile_retain may run on any thread, even while a
 * writer is open: a writer's temporary file is flock'ed and never removed.
 * The replication calls (read_newest, install, remove_after) run on the
 * caller's thread and block it for the file I/O; install takes the same
 * lock as a writer of that zxid (-EBUSY while one holds it).
 *
 * On disk (all integers little-endian), in the directory dir:
 *   snapshot.<zxid as 16 lowercase hex digits>       a complete snapshot;
 *                                                     lexical order = zxid
 *   snapshot.<...>.tmp                                being written, or left
 *                                                     by a crash; removed by
 *                                                     snapfile_retain
 * A file is header (64 bytes) | body (body_bytes) | footer (32 bytes), and
 * its size is exactly 96 + body_bytes.
 *
 * Header (struct snapfile_header, at offset 0):
 * | off | size | field                                                 |
 * |   0 |    8 | magic, SNAPFILE_MAGIC ("RKSNAPSH")                    |
 * |   8 |    4 | version, SNAPFILE_FORMAT_VERSION                      |
 * |  12 |    4 | flags: features a reader must know; none defined, 0   |
 * |  16 |    8 | db_id: the database id of the txn log it goes with    |
 * |  24 |    8 | zxid: the last txn in the image; also the file name   |
 * |  32 |    8 | created_ms: wall clock at begin, informational        |
 * |  40 |   16 | reserved, zero                                        |
 * |  56 |    8 | checksum: XXH3-64 of bytes 0..63, this field zeroed   |
 *
 * Footer (struct snapfile_footer, at offset 64 + body_bytes):
 * | off | size | field                                                 |
 * |   0 |    8 | magic, SNAPFILE_FOOTER_MAGIC ("RKSNPEND")             |
 * |   8 |    8 | body_bytes                                            |
 * |  16 |    8 | zxid, as in the header                                |
 * |  24 |    8 | checksum: XXH3-64 of the whole file up to this field  |
 * |     |      |   (header, body, footer bytes 0..23), streamed while  |
 * |     |      |   writing                                             |
 */
#ifndef RK_STORAGE_SNAPFILE_H
#define RK_STORAGE_SNAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/summary.h"

#define SNAPFILE_MAGIC		0x485350414e534b52ull /* "RKSNAPSH" */
#define SNAPFILE_FOOTER_MAGIC	0x444e45504e534b52ull /* "RKSNPEND" */
#define SNAPFILE_FORMAT_VERSION 1u
#define SNAPFILE_KEEP_MIN	3u /* ZooKeeper's autopurge.snapRetainCount floor */
/* "snapshot." + 16 hex digits + ".tmp" + NUL */
#define SNAPFILE_NAME_MAX 32

struct snapfile_header {
	uint64_t magic;
	uint32_t version;
	uint32_t flags;
	uint64_t db_id;
	int64_t zxid;
	uint64_t created_ms;
	uint64_t reserved[2];
	uint64_t checksum;
};

struct snapfile_footer {
	uint64_t magic;
	uint64_t body_bytes;
	int64_t zxid;
	uint64_t checksum;
};

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "snapshots are written little-endian");
_Static_assert(sizeof(struct snapfile_header) == 64, "snapfile header layout");
_Static_assert(offsetof(struct snapfile_header, flags) == 12, "snapfile header layout");
_Static_assert(offsetof(struct snapfile_header, db_id) == 16, "snapfile header layout");
_Static_assert(offsetof(struct snapfile_header, zxid) == 24, "snapfile header layout");
_Static_assert(offsetof(struct snapfile_header, created_ms) == 32, "snapfile header layout");
_Static_assert(offsetof(struct snapfile_header, checksum) == 56, "snapfile header layout");
_Static_assert(sizeof(struct snapfile_footer) == 32, "snapfile footer layout");
_Static_assert(offsetof(struct snapfile_footer, body_bytes) == 8, "snapfile footer layout");
_Static_assert(offsetof(struct snapfile_footer, zxid) == 16, "snapfile footer layout");
_Static_assert(offsetof(struct snapfile_footer, checksum) == 24, "snapfile footer layout");

/* ---- writing ---- */

struct snapfile_writer;

/* Starts a snapshot of zxid (>= 0) in dir (created if missing, one level):
 * creates and locks dir/snapshot.<zxid>.tmp and queues the header. Returns
 * 0 with *out set, or -errno (logged). */
int snapfile_begin(const char *dir, int64_t zxid, uint64_t db_id, struct snapfile_writer **out);
/* Appends body bytes. Buffered (1 MiB); chunks that large go straight to
 * the file. Every byte goes through the streaming checksum. Returns 0 or
 * -errno; an error is logged once and sticks (commit then fails). */
int snapfile_write(struct snapfile_writer *w, const void *p, size_t n);
/* snapfile_write as core/snapshot.h's snapshot_write_fn: pass it with the
 * writer as ctx. */
int snapfile_write_cb(void *w, const void *p, size_t n);
/* Appends the footer, fsyncs the file, renames it to snapshot.<zxid> and
 * fsyncs dir. Always frees w; on failure (-errno, logged) the temporary
 * file is removed and no snapshot file appears. */
int snapfile_commit(struct snapfile_writer *w);
/* Drops the snapshot being written: closes and removes the temporary file,
 * frees w. */
void snapfile_abort(struct snapfile_writer *w);
/* How long each snapshot this process committed took, snapfile_begin to
 * the end of snapfile_commit, in microseconds (ZooKeeper's snapshottime).
 * Process-wide: a process keeps one data directory. */
const struct summary *snapfile_write_time(void);

/* ---- reading ---- */

/* A verified snapshot file held in memory. */
struct snapfile_image {
	void *file;	  /* the whole file, malloc'd; NULL when there is none */
	const void *body; /* into file */
	size_t body_len;
	int64_t zxid;
	uint64_t db_id;
	uint64_t created_ms;
	char name[SNAPFILE_NAME_MAX]; /* file name in dir */
	unsigned skipped;	      /* newer snapshot files that did not verify */
};

/* Why a file was refused: byte offset of the bad field and a reason. */
struct snapfile_fault {
	uint64_t off;
	const char *what;
};

/* Reads and verifies one snapshot file (any name). Returns 0 with img
 * filled, -EBADMSG with fault saying where (fault may be NULL), or -errno
 * when the file cannot be read. */
int snapfile_read(const char *path, struct snapfile_image *img, struct snapfile_fault *fault);

/* Loads the newest snapshot in dir that verifies: a newer one that does not
 * (bad header, checksum, truncated, unreadable) is skipped with a log_warn
 * naming the file, and the next older one is tried, as ZooKeeper does.
 * Returns 0 with img->file NULL when there is no snapshot (dir missing
 * included) or none verifies (img->skipped then says how many were tried:
 * the caller must not start from an empty tree unless the log reaches back
 * to the first zxid). -ENOMEM or -errno when dir cannot be listed. */
int snapfile_load(const char *dir, struct snapfile_image *img);
void snapfile_image_free(struct snapfile_image *img);

/* ---- retention ---- */

/* Keeps the newest keep_count (>= SNAPFILE_KEEP_MIN, else -EINVAL)
 * snapshot files in dir, removing older ones and temporary files no writer
 * holds. *oldest_kept_zxid gets the zxid of the oldest snapshot kept, or -1
 * when there is none: the txn log may drop records up to it
 * (storage_wal_purge_before). Returns the number of files removed or
 * -errno. */
int snapfile_retain(const char *dir, unsigned keep_count, int64_t *oldest_kept_zxid);

/* ---- replication ---- */

/* The whole newest snapshot file that verifies (header, body and footer,
 * as snapfile_load chooses it), to send to another server: *buf (malloc'd;
 * the caller frees it), *len bytes, *zxid. With no snapshot: 0, *buf NULL,
 * *zxid 0. -errno when dir cannot be listed. */
int snapfile_read_newest(const char *dir, void **buf, size_t *len, int64_t *zxid);

/* Verifies the raw bytes of a snapshot file (as snapfile_read_newest
 * gives them: header and footer checksums, sizes, header zxid == footer
 * zxid) and writes them unchanged to dir as snapshot.<zxid>, the way
 * snapfile_commit does: temporary file, fsync, rename, directory fsync.
 * A file of the same zxid is replaced. Returns 0 with *zxid set, -EBADMSG
 * (logged) when the bytes do not verify, or -errno. buf is not kept. */
int snapfile_install(const char *dir, const void *buf, size_t len, int64_t *zxid);

/* Deletes the snapshot files with a zxid > zxid (after a truncate of the
 * txn log, so start-up never loads a state the log no longer leads to),
 * newest first, then fsyncs dir. A writer still writing such a snapshot
 * is the caller's to abort first. Returns the number removed, or -errno. */
int snapfile_remove_after(const char *dir, int64_t zxid);

/* "snapshot.<16 hex>" (tmp false) or "snapshot.<16 hex>.tmp" (tmp true):
 * true with *zxid; false for any other name. */
bool snapfile_name_parse(const char *name, int64_t *zxid, bool *tmp);

#endif
