/* The storage interface the sequencer writes through. storage/ sees txns
 * only as typed byte strings tagged with a zxid; what they mean is core's.
 *
 * Use, all from the sequencer thread:
 *   add() each txn of a batch, then commit() the batch. The store writes
 *   committed batches in order and group-commits: everything committed
 *   while a write is in flight goes out in the next write. durable_zxid()
 *   says how far the log is on disk (fdatasync'd, unless forceSync=no);
 *   the sequencer acknowledges nothing beyond it.
 *   poll() reaps finished I/O and starts the next write; it never blocks.
 *   wait_fd() is an eventfd that becomes readable when poll() has work, so
 *   the caller's event loop can sleep on it.
 * A store that failed (ENOSPC, EIO) returns that -errno from
 * durable_zxid() forever after: it never retries a failed sync and never
 * reports later data as durable.
 *
 * A follower rewinds its log with truncate() (drop a divergent tail) and
 * reset() (a snapshot from the leader replaces the whole log). Both are
 * synchronous and durable when they return; both leave the log so that
 * the next add() may be any zxid > last_zxid(), after which the usual
 * order rule (the previous zxid + 1, or a new epoch) applies again. */
#ifndef RK_STORAGE_H
#define RK_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct storage;

struct storage_ops {
	/* Queue one record. Returns 0, -EMSGSIZE (record too large) or the
	 * store's failure. payload is copied. */
	int (*add)(struct storage *st, int64_t zxid, uint32_t type, const void *payload,
		   uint32_t len);
	/* Seal the records added since the last commit into one batch. */
	int (*commit)(struct storage *st);
	void (*poll)(struct storage *st);
	int64_t (*durable_zxid)(struct storage *st);
	int (*wait_fd)(struct storage *st); /* -1 when never needed */
	/* Drop whole log files holding only records <= zxid (a snapshot at
	 * or after zxid covers them). Returns files removed or -errno. */
	int (*purge_before)(struct storage *st, int64_t zxid);
	void (*close)(struct storage *st);
	/* Drop every record with a zxid > zxid (>= 0), durably: waits for the
	 * write in flight and writes the committed batches first. Records
	 * added and not committed: -EBUSY, nothing changed. Afterwards
	 * durable_zxid() and last_zxid() are min(last_zxid(), zxid). Returns 0,
	 * -EINVAL, -EBUSY or -errno; an I/O error fails the store. */
	int (*truncate)(struct storage *st, int64_t zxid);
	/* Forget every record, committed or not, durably (a snapshot at zxid
	 * replaces the log): waits for the write in flight, then removes the
	 * log. Afterwards durable_zxid() and last_zxid() are zxid, and a
	 * reopened log holds no record. Returns 0, -EINVAL or -errno; an I/O
	 * error fails the store. */
	int (*reset)(struct storage *st, int64_t zxid);
	/* The zxid of the last record added (committed or not, durable or
	 * not), or what truncate/reset set; 0 for a new, empty log. */
	int64_t (*last_zxid)(struct storage *st);
};

struct storage {
	const struct storage_ops *ops;
};

/* Called for each valid record found at open, in zxid order. A non-zero
 * return stops recovery and fails the open. */
typedef int (*storage_replay_fn)(void *ctx, int64_t zxid, uint32_t type, const void *payload,
				 uint32_t len);

/* A store that keeps nothing: every commit is durable at once. */
struct storage *storage_mem_open(void);

#endif
