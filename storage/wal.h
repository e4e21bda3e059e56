/* The durable txn log: the storage interface (storage/storage.h) over
 * preallocated, append-only segment files written with O_DIRECT through the
 * store's own io_uring, with group commit. docs/storage.md has the why.
 *
 * Threads: storage_wal_open() may run on any thread; everything after it
 * (the ops, storage_wal_purge_before) runs on one thread, the sequencer's.
 *
 * Invariants:
 *  - zxids in the log only grow: each record's zxid is the previous one + 1,
 *    or starts a new epoch (a larger upper 32 bits). add() refuses anything
 *    else with -EINVAL; recovery calls anything else corruption. The one
 *    exception follows truncate() or reset(): the next record may be any
 *    zxid > last_zxid(), and it starts a new segment whose header says so
 *    (zxid_after), so that recovery knows the jump was meant.
 *  - At most one write (plus its fdatasync) is in flight. Everything
 *    committed while it runs goes out in the next write, as one frame.
 *  - durable_zxid() moves only when a whole frame is written and synced.
 *    After a failed write or sync it returns that -errno forever.
 *  - A frame is atomic at recovery: replayed whole or not at all.
 *
 * On disk (all integers little-endian), in the directory cfg->directory:
 *   log.<first zxid as 16 lowercase hex digits>   one segment per file, so
 *                                                  lexical order = zxid order
 *   log.<...>.tmp                                  a segment being created;
 *                                                  removed at open
 * A segment is segment_bytes long, preallocated with fallocate, cut into
 * 4 KiB blocks. Block 0 holds the segment header; frames follow, each
 * starting on a block boundary and zero-padded to the next one. The bytes
 * after the last frame are zero. A frame is the records of one write: one or
 * more commit() batches.
 *
 * The database id is random, drawn when the first segment of an empty log
 * is created, and copied into every segment header and frame header; all
 * segments of a log must agree. It lives in the segment headers only (no
 * separate meta file): a log with no segment has no records and no id. */
#ifndef RK_STORAGE_WAL_H
#define RK_STORAGE_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/summary.h"
#include "storage/storage.h"

#define WAL_BLOCK_BYTES	   4096u
#define WAL_FORMAT_VERSION 1u
#define WAL_SEGMENT_MAGIC  0x4745534c41574b52ull /* "RKWALSEG" */
#define WAL_FRAME_MAGIC	   0x46574b52u		 /* "RKWF" */

/* Segment header, at offset 0 of a segment; the rest of block 0 is zero.
 *
 * | off | size | field                                                 |
 * |   0 |    8 | magic, WAL_SEGMENT_MAGIC                              |
 * |   8 |    4 | version, WAL_FORMAT_VERSION                           |
 * |  12 |    4 | block_bytes, WAL_BLOCK_BYTES                          |
 * |  16 |    8 | db_id                                                 |
 * |  24 |    8 | zxid_first: the zxid of the segment's first record;   |
 * |     |      |   also the file name                                  |
 * |  32 |    8 | segment_bytes: size preallocated at creation          |
 * |  40 |    8 | created_ms: wall clock at creation, informational     |
 * |  48 |    8 | zxid_after: 0, or the segment was started after a     |
 * |     |      |   truncate/reset to this zxid: every earlier record   |
 * |     |      |   is <= zxid_after < zxid_first, and zxid_first need  |
 * |     |      |   not follow the previous record (was reserved, zero) |
 * |  56 |    8 | checksum: XXH3-64 of bytes 0..63, this field zeroed   |
 */
struct wal_segment_header {
	uint64_t magic;
	uint32_t version;
	uint32_t block_bytes;
	uint64_t db_id;
	int64_t zxid_first;
	uint64_t segment_bytes;
	uint64_t created_ms;
	int64_t zxid_after;
	uint64_t checksum;
};

/* Frame header, at a block boundary; records follow at offset 48.
 *
 * | off | size | field                                                 |
 * |   0 |    4 | magic, WAL_FRAME_MAGIC                                |
 * |   4 |    4 | records: how many records follow (>= 1)               |
 * |   8 |    8 | db_id, as in the segment header                       |
 * |  16 |    8 | zxid_first: zxid of the first record                  |
 * |  24 |    8 | zxid_last: zxid of the last record                    |
 * |  32 |    4 | bytes: header + records, without the block padding    |
 * |  36 |    4 | batches: commit() batches in the frame, informational |
 * |  40 |    8 | checksum: XXH3-64 of bytes 0..47, this field zeroed   |
 */
struct wal_frame_header {
	uint32_t magic;
	uint32_t records;
	uint64_t db_id;
	int64_t zxid_first;
	int64_t zxid_last;
	uint32_t bytes;
	uint32_t batches;
	uint64_t checksum;
};

/* Record: this header, then len payload bytes, then zeros up to a multiple
 * of 8 bytes (the padding is not checksummed).
 *
 * | off | size | field                                                 |
 * |   0 |    8 | zxid                                                  |
 * |   8 |    4 | len: payload bytes                                    |
 * |  12 |    4 | type: the caller's, opaque here (enum txn_type)       |
 * |  16 |    8 | checksum: XXH3-64 of this header with this field      |
 * |     |      |   zeroed, followed by the payload                     |
 * |  24 |  len | payload                                               |
 */
struct wal_record_header {
	int64_t zxid;
	uint32_t len;
	uint32_t type;
	uint64_t checksum;
};

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the log is written little-endian");
_Static_assert(sizeof(struct wal_segment_header) == 64, "segment header layout");
_Static_assert(offsetof(struct wal_segment_header, db_id) == 16, "segment header layout");
_Static_assert(offsetof(struct wal_segment_header, zxid_first) == 24, "segment header layout");
_Static_assert(offsetof(struct wal_segment_header, created_ms) == 40, "segment header layout");
_Static_assert(offsetof(struct wal_segment_header, zxid_after) == 48, "segment header layout");
_Static_assert(offsetof(struct wal_segment_header, checksum) == 56, "segment header layout");
_Static_assert(sizeof(struct wal_frame_header) == 48, "frame header layout");
_Static_assert(offsetof(struct wal_frame_header, db_id) == 8, "frame header layout");
_Static_assert(offsetof(struct wal_frame_header, zxid_last) == 24, "frame header layout");
_Static_assert(offsetof(struct wal_frame_header, bytes) == 32, "frame header layout");
_Static_assert(offsetof(struct wal_frame_header, checksum) == 40, "frame header layout");
_Static_assert(sizeof(struct wal_record_header) == 24, "record header layout");
_Static_assert(offsetof(struct wal_record_header, len) == 8, "record header layout");
_Static_assert(offsetof(struct wal_record_header, type) == 12, "record header layout");
_Static_assert(offsetof(struct wal_record_header, checksum) == 16, "record header layout");

/* What the fault hook is asked about. */
enum wal_fault_op {
	WAL_FAULT_OPEN_DIRECT = 0, /* opening a segment with O_DIRECT */
	WAL_FAULT_WRITE,	   /* a write of *len bytes at off */
	WAL_FAULT_SYNC,		   /* the fdatasync after it (WAL_SYNC_FDATASYNC only) */
	WAL_FAULT_COUNT,
};

/* Called before each operation, for tests, on the store's thread. Return 0
 * to let it run, or a -errno it fails with instead (for OPEN_DIRECT, -EINVAL
 * acts like a filesystem that refuses O_DIRECT). *len is the bytes the
 * operation covers (0 for OPEN_DIRECT). For WRITE the hook may lower it:
 * only *len bytes are written; with 0 returned that is a short write the
 * store continues, with a -errno returned the *len bytes reach the file and
 * then the write fails: a torn write. Other ops ignore a change. */
typedef int (*wal_fault_fn)(void *ctx, enum wal_fault_op op, const char *segment, uint64_t off,
			    uint32_t *len);

/* How a write is made durable when force_sync is set. Measured on this
 * project's machine (docs/storage.md), a write on an O_DSYNC descriptor was
 * 6-16% faster at the median than a write linked to an fdatasync, so it is
 * the default; the other stays selectable for hardware where it wins. */
enum wal_sync_mode {
	WAL_SYNC_DSYNC = 0, /* segments opened O_DSYNC; one write per frame */
	WAL_SYNC_FDATASYNC, /* write + IOSQE_IO_LINK'ed fdatasync */
	WAL_SYNC_COUNT,
};

struct wal_config {
	const char *directory;	/* dataLogDir; created if missing */
	uint64_t segment_bytes; /* multiple of WAL_BLOCK_BYTES */
	bool force_sync;	/* false: ZooKeeper's forceSync=no, never sync */
	enum wal_sync_mode sync_mode;
	uint32_t batch_bytes_max;   /* record bytes queued and not yet written */
	uint32_t batch_records_max; /* records queued and not yet written */
	bool truncate_corrupt;	    /* cut the log at corruption instead of refusing */
	wal_fault_fn fault;	    /* NULL outside tests */
	void *fault_ctx;
};

/* Defaults: 64 MiB segments, force_sync, O_DSYNC, 16 MiB / 1M records of
 * queued data, no truncation of corrupt logs, no fault hook. */
void wal_config_init(struct wal_config *cfg, const char *directory);

/* Open (creating if needed) the log in cfg->directory and replay it: replay
 * gets every record of every valid frame, in zxid order, before this
 * returns. A torn tail (bad data at the end of the newest segment with
 * nothing valid after it) is cut off with a warning. Other bad data is
 * corruption: NULL is returned with err naming the file and byte offset,
 * unless cfg->truncate_corrupt, which cuts the log there (dropping later
 * segments) and says so. On NULL, whatever replay built must be dropped.
 * Also NULL on a bad config, a directory locked by another store, or an
 * I/O error, with err saying which. cfg is copied. */
struct storage *storage_wal_open(const struct wal_config *cfg, storage_replay_fn replay, void *ctx,
				 char *err, size_t errlen);

/* Retention, for after a snapshot: delete the oldest segments whose records
 * are all <= zxid, never the one being written. Returns how many segments
 * went, or -errno. */
int storage_wal_purge_before(struct storage *st, int64_t zxid);

/* ZooKeeper's fsync.warningthresholdms default: a sync slower than this
 * counts in wal_stats.sync_slow (its fsync_threshold_exceed_count). */
#define WAL_SYNC_SLOW_MS 1000

/* What the log measures, for status and metrics: written on the store's
 * thread, read from any. Only with force_sync (nothing is synced else). */
struct wal_stats {
	struct summary sync_us;	    /* a frame's write and sync, submit to durable */
	_Atomic uint64_t sync_slow; /* of them, slower than WAL_SYNC_SLOW_MS */
};

/* st must come from storage_wal_open(); lives as long as st. */
const struct wal_stats *storage_wal_stats(const struct storage *st);

/* The ops truncate() and reset() (storage/storage.h) block the calling
 * thread: they wait for the write in flight (truncate also writes the
 * committed batches), delete segments newest first with a directory fsync
 * after each, and truncate reads the segment it cuts up to the cut and
 * syncs it three times (docs/storage.md: tens of ms on a 64 MiB segment).
 * The next frame starts a new segment. */

#endif
