/* The durable txn log: queues committed batches in memory and writes them,
 * group-committed, one frame per write, through the store's own io_uring.
 * Formats are in storage/wal.h, recovery in storage/wal_recover.c. */
#include "storage/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "storage/wal_recover.h"
#include "storage/wal_segment.h"

/* A write and its fdatasync are the most ever in flight. */
#define RING_ENTRIES 4
#define FRAME_HDR    ((uint32_t)sizeof(struct wal_frame_header))
/* A frame's length is a uint32; this keeps every bound well inside it. */
#define BATCH_BYTES_LIMIT (1u << 30)

enum io_op {
	IO_OP_WRITE = 0, /* a piece of the frame */
	IO_OP_SYNC,	 /* the fdatasync linked after it */
	IO_OP_COUNT,
};

/* Records queued in memory, as the frame they will be written as: data is
 * block-aligned for O_DIRECT, bytes [0, FRAME_HDR) are kept for the frame
 * header and records follow. Records after `committed` belong to a batch
 * not yet committed; they stay behind when the frame is written. */
struct wal_buf {
	uint8_t *data;
	size_t cap;
	uint32_t used;	    /* end of the last record added */
	uint32_t committed; /* end of the last committed batch */
	uint32_t records, records_committed;
	uint32_t batches;
	int64_t zxid_first;	/* first record in the buffer */
	int64_t zxid_committed; /* last record of the last committed batch */
};

/* The frame being written: in pieces when writes come back short, each
 * piece followed by its fdatasync in WAL_SYNC_FDATASYNC mode. */
struct wal_io {
	bool active;
	uint64_t gen;		/* in user_data: a completion belongs to this piece */
	uint64_t off;		/* file offset of the frame */
	uint32_t len;		/* frame length, padded to a block */
	uint32_t done;		/* bytes written so far */
	uint32_t piece;		/* bytes asked of the current write */
	int cqes;		/* completions still due for this piece */
	int res[IO_OP_COUNT];	/* their results */
	int fault[IO_OP_COUNT]; /* results injected by the fault hook, 0 = none */
	int64_t zxid_last;
	int64_t started_us; /* when the frame's first piece was submitted */
};

struct wal {
	struct storage base;
	struct wal_config cfg;
	char *dir;
	int dir_fd; /* holds the flock that keeps a second store out */
	struct io_uring ring;
	bool ring_ok;
	int event_fd;
	uint64_t db_id;
	bool direct; /* O_DIRECT, until a filesystem refuses it */
	struct wal_segment *segs;
	size_t seg_count, seg_cap;
	int seg_fd; /* the newest segment when it takes the next frame, else -1 */
	char seg_name[WAL_NAME_BYTES];
	uint64_t seg_off, seg_bytes;
	int64_t zxid_added, zxid_durable;
	/* Set by truncate/reset: the next add may be any zxid > zxid_added,
	 * and its frame starts a new segment whose header carries zxid_after. */
	bool rewound;
	int64_t zxid_after; /* for the next segment created; 0 = none */
	int failed;	    /* 0, or the -errno of the write or sync that failed */
	struct wal_buf pending, flight;
	struct wal_io io;
	struct wal_stats stats;
};

static const struct storage_ops wal_ops;

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void wal_config_init(struct wal_config *cfg, const char *directory)
{
	*cfg = (struct wal_config){
	    .directory = directory,
	    .segment_bytes = 64u << 20,
	    .force_sync = true,
	    .sync_mode = WAL_SYNC_DSYNC,
	    .batch_bytes_max = 16u << 20,
	    .batch_records_max = 1u << 20,
	};
}

static bool sync_linked(const struct wal *w)
{
	return w->cfg.force_sync && w->cfg.sync_mode == WAL_SYNC_FDATASYNC;
}

static int fault(struct wal *w, enum wal_fault_op op, uint64_t off, uint32_t *len)
{
	if (!w->cfg.fault)
		return 0;
	uint32_t asked = *len;
	int rc = w->cfg.fault(w->cfg.fault_ctx, op, w->seg_name, off, len);
	RK_ASSERT(rc <= 0 && *len <= asked);
	return rc;
}

/* The store stops for good: nothing more is written or reported durable. */
static void fail(struct wal *w, const char *call, int rc, uint64_t off)
{
	RK_ASSERT(rc < 0);
	w->io.active = false;
	if (w->failed)
		return;
	w->failed = rc;
	log_error("wal: %s %s/%s at offset %" PRIu64 " failed: %s; the log takes no more writes",
		  call, w->dir, w->seg_name, off, strerror(-rc));
}

/* ---- buffers ---- */

static void buf_reset(struct wal_buf *b)
{
	b->used = b->committed = FRAME_HDR;
	b->records = b->records_committed = b->batches = 0;
	b->zxid_first = b->zxid_committed = 0;
}

static int buf_init(struct wal_buf *b, size_t cap)
{
	void *p;
	if (posix_memalign(&p, WAL_BLOCK_BYTES, cap) != 0)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	buf_reset(b);
	return 0;
}

/* Move src's uncommitted records into the empty dst. */
static void buf_take_tail(struct wal_buf *dst, struct wal_buf *src)
{
	uint32_t n = src->used - src->committed;
	memcpy(dst->data + FRAME_HDR, src->data + src->committed, n);
	dst->used = dst->committed + n;
	dst->records = src->records - src->records_committed;
	if (dst->records) {
		struct wal_record_header h;
		memcpy(&h, dst->data + FRAME_HDR, sizeof h);
		dst->zxid_first = h.zxid;
	}
	src->used = src->committed;
	src->records = src->records_committed;
}

/* Every record is checked before it goes to disk, as recovery will check
 * it after: a mismatch here is memory corruption, not a disk fault. */
static void buf_assert_records(const struct wal_buf *b)
{
	for (uint32_t p = FRAME_HDR; p < b->committed;) {
		struct wal_record_header h;
		memcpy(&h, b->data + p, sizeof h);
		RK_ASSERT(h.checksum == wal_record_checksum(&h, b->data + p + sizeof h));
		p += (uint32_t)wal_record_bytes(h.len);
	}
}

/* Write the frame header and zero the padding up to the block boundary. */
static uint32_t buf_seal(struct wal_buf *b, uint64_t db_id)
{
	struct wal_frame_header fh = {
	    .magic = WAL_FRAME_MAGIC,
	    .records = b->records_committed,
	    .db_id = db_id,
	    .zxid_first = b->zxid_first,
	    .zxid_last = b->zxid_committed,
	    .bytes = b->committed,
	    .batches = b->batches,
	};
	fh.checksum = wal_frame_checksum(&fh);
	memcpy(b->data, &fh, sizeof fh);
	uint32_t len = (uint32_t)wal_block_round_up(b->committed);
	memset(b->data + b->committed, 0, len - b->committed);
	buf_assert_records(b);
	return len;
}

/* ---- ops ---- */

static int wal_add(struct storage *st, int64_t zxid, uint32_t type, const void *payload,
		   uint32_t len)
{
	struct wal *w = (struct wal *)st;
	struct wal_buf *b = &w->pending;
	if (w->failed)
		return w->failed;
	uint64_t rec = wal_record_bytes(len);
	if (rec > w->cfg.batch_bytes_max)
		return -EMSGSIZE;
	if (w->rewound ? zxid <= w->zxid_added : !wal_zxid_follows(w->zxid_added, zxid))
		return -EINVAL;
	if (b->used - FRAME_HDR + rec > w->cfg.batch_bytes_max ||
	    b->records >= w->cfg.batch_records_max)
		return -ENOBUFS;
	struct wal_record_header h = {.zxid = zxid, .len = len, .type = type};
	uint8_t *p = b->data + b->used;
	if (len)
		memcpy(p + sizeof h, payload, len);
	memset(p + sizeof h + len, 0, rec - sizeof h - len);
	h.checksum = wal_record_checksum(&h, p + sizeof h);
	memcpy(p, &h, sizeof h);
	if (!b->records)
		b->zxid_first = zxid;
	b->used += (uint32_t)rec;
	b->records++;
	w->zxid_added = zxid;
	w->rewound = false;
	return 0;
}

static int wal_commit(struct storage *st)
{
	struct wal *w = (struct wal *)st;
	struct wal_buf *b = &w->pending;
	if (w->failed)
		return w->failed;
	if (b->used == b->committed)
		return 0;
	b->committed = b->used;
	b->records_committed = b->records;
	b->zxid_committed = w->zxid_added;
	b->batches++;
	return 0;
}

/* Queue the current piece of the frame (and its sync) and submit. */
static void submit_piece(struct wal *w)
{
	struct wal_io *io = &w->io;
	uint64_t off = io->off + io->done;
	uint32_t len = io->len - io->done;
	io->gen++;
	io->fault[IO_OP_WRITE] = fault(w, WAL_FAULT_WRITE, off, &len);
	io->piece = len;
	io->cqes = 1;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
	RK_ASSERT(sqe); /* the ring holds two, and one piece is in flight at most */
	if (io->fault[IO_OP_WRITE] && !len)
		io_uring_prep_nop(sqe);
	else
		io_uring_prep_write(sqe, w->seg_fd, w->flight.data + io->done, len, off);
	sqe->user_data = io->gen << 8 | IO_OP_WRITE;
	if (sync_linked(w)) {
		sqe->flags |= IOSQE_IO_LINK;
		uint32_t synced = len;
		io->fault[IO_OP_SYNC] = fault(w, WAL_FAULT_SYNC, off, &synced);
		sqe = io_uring_get_sqe(&w->ring);
		RK_ASSERT(sqe);
		if (io->fault[IO_OP_SYNC])
			io_uring_prep_nop(sqe);
		else
			io_uring_prep_fsync(sqe, w->seg_fd, IORING_FSYNC_DATASYNC);
		sqe->user_data = io->gen << 8 | IO_OP_SYNC;
		io->cqes = 2;
	}
	int rc = io_uring_submit(&w->ring);
	if (rc < 0)
		fail(w, "io_uring_enter", rc, off);
}

static int segment_open_append(struct wal *w)
{
	int flags = O_WRONLY | O_CLOEXEC;
	if (w->cfg.force_sync && w->cfg.sync_mode == WAL_SYNC_DSYNC)
		flags |= O_DSYNC;
	if (w->direct) {
		uint32_t none = 0;
		int rc = fault(w, WAL_FAULT_OPEN_DIRECT, 0, &none);
		int fd = rc ? -1 : openat(w->dir_fd, w->seg_name, flags | O_DIRECT);
		if (fd >= 0) {
			w->seg_fd = fd;
			return 0;
		}
		rc = rc ? rc : -errno;
		if (rc != -EINVAL)
			return rc;
		log_warn("wal: %s refuses O_DIRECT (%s): falling back to buffered writes", w->dir,
			 strerror(-rc));
		w->direct = false;
	}
	w->seg_fd = openat(w->dir_fd, w->seg_name, flags);
	return w->seg_fd >= 0 ? 0 : -errno;
}

static int segs_push(struct wal *w, int64_t zxid_first)
{
	if (w->seg_count == w->seg_cap) {
		size_t cap = w->seg_cap ? w->seg_cap * 2 : 16;
		struct wal_segment *s = realloc(w->segs, cap * sizeof *s);
		if (!s)
			return -ENOMEM;
		w->segs = s;
		w->seg_cap = cap;
	}
	w->segs[w->seg_count++] = (struct wal_segment){zxid_first, zxid_first - 1};
	return 0;
}

/* Start a new segment for a frame beginning at zxid_first. Synchronous:
 * a few milliseconds once per segment_bytes of log. */
static int roll_over(struct wal *w, int64_t zxid_first)
{
	if (w->seg_fd >= 0)
		close(w->seg_fd);
	w->seg_fd = -1;
	wal_segment_name(w->seg_name, zxid_first);
	const char *call = "realloc";
	int rc = segs_push(w, zxid_first);
	if (!rc)
		rc = wal_segment_create(w->dir_fd, zxid_first, w->zxid_after, w->db_id,
					w->cfg.segment_bytes, &call);
	if (!rc) {
		call = "open";
		rc = segment_open_append(w);
	}
	if (rc) {
		fail(w, call, rc, 0);
		return rc;
	}
	w->seg_off = WAL_BLOCK_BYTES;
	w->seg_bytes = w->cfg.segment_bytes;
	w->zxid_after = 0;
	log_info("wal: new segment %s/%s", w->dir, w->seg_name);
	return 0;
}

/* Group commit: every batch committed so far goes out as one frame. */
static void submit_frame(struct wal *w)
{
	struct wal_buf *p = &w->pending;
	RK_ASSERT(!w->io.active && p->records_committed && p->zxid_first);
	uint64_t len = wal_block_round_up(p->committed);
	if ((w->seg_fd < 0 || w->seg_off + len > w->seg_bytes) && roll_over(w, p->zxid_first))
		return;
	struct wal_buf t = w->flight;
	w->flight = w->pending;
	w->pending = t;
	buf_take_tail(&w->pending, &w->flight);
	w->io = (struct wal_io){
	    .active = true,
	    .gen = w->io.gen,
	    .off = w->seg_off,
	    .len = buf_seal(&w->flight, w->db_id),
	    .zxid_last = w->flight.zxid_committed,
	    .started_us = mono_us(),
	};
	submit_piece(w);
}

/* Both completions of a piece are in: go on, finish or fail. */
static void finish_piece(struct wal *w)
{
	struct wal_io *io = &w->io;
	uint64_t off = io->off + io->done;
	int wres = io->res[IO_OP_WRITE];
	if (wres < 0) {
		fail(w, "write", wres, off);
		return;
	}
	RK_ASSERT((uint32_t)wres <= io->piece);
	io->done += (uint32_t)wres;
	if (io->done < io->len) {
		/* Short: the linked sync was cancelled or covered part only;
		 * the rest goes again unless no progress was made or O_DIRECT
		 * cannot resume mid-block. */
		if (wres == 0 || (w->direct && io->done % WAL_BLOCK_BYTES))
			fail(w, "write (short)", -EIO, off);
		else
			submit_piece(w);
		return;
	}
	if (sync_linked(w) && io->res[IO_OP_SYNC] < 0) {
		fail(w, "fdatasync", io->res[IO_OP_SYNC], off);
		return;
	}
	if (w->cfg.force_sync) {
		uint64_t us = (uint64_t)(mono_us() - io->started_us);
		summary_observe(&w->stats.sync_us, us);
		if (us > WAL_SYNC_SLOW_MS * 1000ull)
			atomic_fetch_add_explicit(&w->stats.sync_slow, 1, memory_order_relaxed);
	}
	w->zxid_durable = io->zxid_last;
	w->segs[w->seg_count - 1].zxid_last = io->zxid_last;
	w->seg_off += io->len;
	io->active = false;
	buf_reset(&w->flight);
}

static void reap(struct wal *w)
{
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&w->ring, &cqe) == 0) {
		uint64_t ud = cqe->user_data;
		int res = cqe->res;
		io_uring_cqe_seen(&w->ring, cqe);
		struct wal_io *io = &w->io;
		unsigned op = (unsigned)(ud & 0xff);
		RK_ASSERT(io->active && ud >> 8 == io->gen && op < IO_OP_COUNT && io->cqes > 0);
		io->res[op] = io->fault[op] ? io->fault[op] : res;
		if (--io->cqes == 0)
			finish_piece(w);
	}
}

static void wal_poll(struct storage *st)
{
	struct wal *w = (struct wal *)st;
	uint64_t n;
	ssize_t r = read(w->event_fd, &n, sizeof n); /* re-arm; EAGAIN when quiet */
	(void)r;
	reap(w);
	if (!w->failed && !w->io.active && w->pending.records_committed)
		submit_frame(w);
}

const struct wal_stats *storage_wal_stats(const struct storage *st)
{
	return &((const struct wal *)st)->stats;
}

static int64_t wal_durable_zxid(struct storage *st)
{
	struct wal *w = (struct wal *)st;
	return w->failed ? w->failed : w->zxid_durable;
}

static int wal_wait_fd(struct storage *st)
{
	return ((struct wal *)st)->event_fd;
}

static void wal_destroy(struct wal *w)
{
	if (w->ring_ok)
		io_uring_queue_exit(&w->ring);
	if (w->event_fd >= 0)
		close(w->event_fd);
	if (w->seg_fd >= 0)
		close(w->seg_fd);
	if (w->dir_fd >= 0)
		close(w->dir_fd);
	free(w->pending.data);
	free(w->flight.data);
	free(w->segs);
	free(w->dir);
	free(w);
}

/* Write the committed batches and wait for them and for the write in
 * flight, blocking. A failed store just waits for its last I/O. Returns
 * the store's failure, if any. */
static int drain(struct wal *w)
{
	wal_poll(&w->base);
	while (w->io.active) {
		struct io_uring_cqe *cqe;
		int rc = io_uring_wait_cqe(&w->ring, &cqe);
		RK_ASSERT(rc == 0 || rc == -EINTR);
		wal_poll(&w->base);
	}
	return w->failed;
}

/* Records added after the last commit are dropped. */
static void wal_close(struct storage *st)
{
	struct wal *w = (struct wal *)st;
	drain(w);
	wal_destroy(w);
}

/* ---- truncate and reset: synchronous, rare (a follower's sync) ---- */

static void segment_close(struct wal *w)
{
	if (w->seg_fd >= 0)
		close(w->seg_fd);
	w->seg_fd = -1;
}

/* Delete the segments from index keep on, newest first, syncing the
 * directory after each: a crash leaves a prefix of the log, never a log
 * with a hole in it (which recovery would call corruption). */
static int drop_segments(struct wal *w, size_t keep)
{
	while (w->seg_count > keep) {
		wal_segment_name(w->seg_name, w->segs[w->seg_count - 1].zxid_first);
		const char *call = "unlink";
		int rc = unlinkat(w->dir_fd, w->seg_name, 0) == 0 || errno == ENOENT ? 0 : -errno;
		if (!rc) {
			call = "fsync (directory)";
			rc = fsync(w->dir_fd) == 0 ? 0 : -errno;
		}
		if (rc) {
			fail(w, call, rc, 0);
			return rc;
		}
		w->seg_count--;
	}
	return 0;
}

/* Drop the records > zxid from disk; the store is idle. */
static int cut_log(struct wal *w, int64_t zxid)
{
	size_t k = 0;
	while (k < w->seg_count && w->segs[k].zxid_last <= zxid)
		k++;
	if (k == w->seg_count)
		return 0;
	segment_close(w);
	/* Segment k goes whole when even its first record is dropped. */
	size_t keep = w->segs[k].zxid_first <= zxid ? k + 1 : k;
	size_t dropped = w->seg_count - keep;
	int rc = drop_segments(w, keep);
	if (!rc && keep == k)
		log_info("wal: %s: truncated after zxid 0x%" PRIx64 ": %zu segment(s) deleted",
			 w->dir, (uint64_t)zxid, dropped);
	if (rc || keep == k)
		return rc;
	wal_segment_name(w->seg_name, w->segs[k].zxid_first);
	int64_t last;
	uint64_t end;
	const char *call;
	rc = wal_segment_cut_after(w->dir_fd, w->seg_name, w->db_id, zxid, &last, &end, &call);
	if (!rc && last < w->segs[k].zxid_first) {
		/* Its first record was durable and is gone from the disk. */
		call = "scan (records missing)";
		rc = -EUCLEAN;
	}
	if (rc) {
		fail(w, call, rc, end);
		return rc;
	}
	w->segs[k].zxid_last = last;
	log_info("wal: %s: truncated after zxid 0x%" PRIx64 ": %s cut at offset %" PRIu64
		 " after zxid 0x%" PRIx64 ", %zu later segment(s) deleted",
		 w->dir, (uint64_t)zxid, w->seg_name, end, (uint64_t)last, dropped);
	return 0;
}

/* The log now ends at zxid: the next record may be anything above it and
 * goes into a new segment that says so. */
static void rewind_to(struct wal *w, int64_t zxid)
{
	segment_close(w);
	buf_reset(&w->pending);
	w->zxid_added = w->zxid_durable = zxid;
	w->zxid_after = zxid;
	w->rewound = true;
}

static int wal_truncate(struct storage *st, int64_t zxid)
{
	struct wal *w = (struct wal *)st;
	if (zxid < 0)
		return -EINVAL;
	if (w->failed)
		return w->failed;
	if (w->pending.used != w->pending.committed)
		return -EBUSY;
	int rc = drain(w);
	if (!rc && w->zxid_durable > zxid)
		rc = cut_log(w, zxid);
	if (rc)
		return rc;
	rewind_to(w, w->zxid_added < zxid ? w->zxid_added : zxid);
	return 0;
}

static int wal_reset(struct storage *st, int64_t zxid)
{
	struct wal *w = (struct wal *)st;
	if (zxid < 0)
		return -EINVAL;
	if (w->failed)
		return w->failed;
	buf_reset(&w->pending); /* nothing queued is written */
	int rc = drain(w);
	if (!rc) {
		segment_close(w);
		rc = drop_segments(w, 0);
	}
	if (rc)
		return rc;
	rewind_to(w, zxid);
	log_info("wal: %s: reset to zxid 0x%" PRIx64 ": every segment deleted", w->dir,
		 (uint64_t)zxid);
	return 0;
}

static int64_t wal_last_zxid(struct storage *st)
{
	return ((struct wal *)st)->zxid_added;
}

static const struct storage_ops wal_ops = {
    .add = wal_add,
    .commit = wal_commit,
    .poll = wal_poll,
    .durable_zxid = wal_durable_zxid,
    .wait_fd = wal_wait_fd,
    .purge_before = storage_wal_purge_before,
    .close = wal_close,
    .truncate = wal_truncate,
    .reset = wal_reset,
    .last_zxid = wal_last_zxid,
};

/* ---- open ---- */

static int config_check(const struct wal_config *c, char *err, size_t errlen)
{
	const char *why = NULL;
	if (!c->directory || !*c->directory)
		why = "no directory";
	else if (c->segment_bytes % WAL_BLOCK_BYTES)
		why = "segment_bytes is not a multiple of 4 KiB";
	else if (c->batch_bytes_max < wal_record_bytes(0) || c->batch_bytes_max > BATCH_BYTES_LIMIT)
		why = "batch_bytes_max out of range (24 B .. 1 GiB)";
	else if (!c->batch_records_max)
		why = "batch_records_max is 0";
	else if (c->sync_mode >= WAL_SYNC_COUNT)
		why = "unknown sync_mode";
	else if (wal_block_round_up(FRAME_HDR + (uint64_t)c->batch_bytes_max) + WAL_BLOCK_BYTES >
		 c->segment_bytes)
		why = "segment_bytes cannot hold a header block and a full batch";
	if (why && err && errlen)
		snprintf(err, errlen, "wal config: %s", why);
	return why ? -EINVAL : 0;
}

static struct wal *wal_alloc(const struct wal_config *cfg, char *err, size_t errlen)
{
	struct wal *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->base.ops = &wal_ops;
	w->cfg = *cfg;
	w->dir_fd = w->seg_fd = w->event_fd = -1;
	w->direct = true;
	summary_init(&w->stats.sync_us);
	size_t cap = wal_block_round_up(FRAME_HDR + (uint64_t)cfg->batch_bytes_max);
	const char *call = "malloc";
	int rc = -ENOMEM;
	if (!(w->dir = strdup(cfg->directory)) || buf_init(&w->pending, cap) ||
	    buf_init(&w->flight, cap))
		goto err;
	w->cfg.directory = w->dir; /* the caller's string may not outlive the store */
	call = "io_uring_queue_init";
	if ((rc = io_uring_queue_init(RING_ENTRIES, &w->ring, 0)))
		goto err;
	w->ring_ok = true;
	call = "eventfd";
	w->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	rc = w->event_fd < 0 ? -errno : 0;
	if (!rc) {
		call = "io_uring_register_eventfd";
		rc = io_uring_register_eventfd(&w->ring, w->event_fd);
	}
	if (!rc)
		return w;
err:
	if (err && errlen)
		snprintf(err, errlen, "wal: %s: %s", call, strerror(-rc));
	wal_destroy(w);
	return NULL;
}

/* mkdir -p */
static int make_dirs(const char *path)
{
	char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	int rc = 0;
	for (char *s = p + 1; !rc; s++) {
		bool end = *s == '\0';
		if (*s != '/' && !end)
			continue;
		*s = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST)
			rc = -errno;
		if (end)
			break;
		*s = '/';
	}
	free(p);
	return rc;
}

static int dir_open(struct wal *w, char *err, size_t errlen)
{
	const char *call = "mkdir";
	int rc = make_dirs(w->dir);
	if (!rc) {
		call = "open";
		w->dir_fd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rc = w->dir_fd < 0 ? -errno : 0;
	}
	if (!rc) {
		call = "flock (is another store using it?)";
		rc = flock(w->dir_fd, LOCK_EX | LOCK_NB) == 0 ? 0 : -errno;
	}
	if (rc && err && errlen)
		snprintf(err, errlen, "wal: %s: %s: %s", w->dir, call, strerror(-rc));
	return rc;
}

static int random_id(uint64_t *id)
{
	do {
		if (getrandom(id, sizeof *id, 0) != (ssize_t)sizeof *id)
			return -errno;
	} while (!*id);
	return 0;
}

/* Replay the log and take over its state: segments, ids, the tail. */
static int recover(struct wal *w, storage_replay_fn replay, void *ctx, char *err, size_t errlen)
{
	struct wal_recovery r;
	int rc =
	    wal_recover(w->dir_fd, w->dir, w->cfg.truncate_corrupt, replay, ctx, &r, err, errlen);
	if (rc)
		return rc;
	w->segs = r.segs;
	w->seg_count = w->seg_cap = r.count;
	w->zxid_added = w->zxid_durable = r.zxid_last;
	w->db_id = r.db_id;
	const char *call = "getrandom";
	if (!w->db_id)
		rc = random_id(&w->db_id);
	if (!rc && r.tail_open) {
		wal_segment_name(w->seg_name, w->segs[w->seg_count - 1].zxid_first);
		w->seg_off = r.tail_off;
		w->seg_bytes = r.tail_bytes;
		call = "open";
		rc = segment_open_append(w);
	}
	if (rc && err && errlen)
		snprintf(err, errlen, "wal: %s/%s: %s: %s", w->dir, w->seg_name, call,
			 strerror(-rc));
	if (!rc)
		log_info("wal: %s: %zu segment(s), database %016" PRIx64 ", last zxid 0x%" PRIx64,
			 w->dir, w->seg_count, w->db_id, (uint64_t)w->zxid_durable);
	return rc;
}

struct storage *storage_wal_open(const struct wal_config *cfg, storage_replay_fn replay, void *ctx,
				 char *err, size_t errlen)
{
	if (config_check(cfg, err, errlen))
		return NULL;
	struct wal *w = wal_alloc(cfg, err, errlen);
	if (!w)
		return NULL;
	if (dir_open(w, err, errlen) || recover(w, replay, ctx, err, errlen)) {
		wal_destroy(w);
		return NULL;
	}
	if (!cfg->force_sync)
		log_warn("wal: %s: forceSync=no: commits are reported durable once written, before "
			 "they reach the disk; a power loss can lose acknowledged writes",
			 w->dir);
	return &w->base;
}

int storage_wal_purge_before(struct storage *st, int64_t zxid)
{
	RK_ASSERT(st->ops == &wal_ops);
	struct wal *w = (struct wal *)st;
	size_t n = 0;
	int rc = 0;
	/* Oldest first, so the log stays contiguous; never the newest. */
	while (n + 1 < w->seg_count && w->segs[n].zxid_last <= zxid) {
		char name[WAL_NAME_BYTES];
		wal_segment_name(name, w->segs[n].zxid_first);
		if (unlinkat(w->dir_fd, name, 0) != 0) {
			rc = -errno;
			break;
		}
		n++;
	}
	if (!n)
		return rc;
	w->seg_count -= n;
	memmove(w->segs, w->segs + n, w->seg_count * sizeof *w->segs);
	if (fsync(w->dir_fd) != 0 && !rc)
		rc = -errno;
	log_info("wal: %s: purged %zu segment(s) up to zxid 0x%" PRIx64, w->dir, n, (uint64_t)zxid);
	return rc ? rc : (int)n;
}
