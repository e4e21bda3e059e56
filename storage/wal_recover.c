/* Recovery at open: replay every valid frame in zxid order and decide, per
 * segment, whether bad bytes are a torn tail (cut, with a warning) or
 * corruption (refused, or cut when the operator asked for it). */
#include "storage/wal_recover.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "storage/wal_segment.h"

struct replay_ctx {
	storage_replay_fn fn;
	void *ctx;
	int64_t zxid; /* the record being replayed */
	int rc;	      /* replay's non-zero, if it refused one */
};

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int replay_record(void *c, const struct wal_record_header *rh, const void *payload)
{
	struct replay_ctx *r = c;
	r->zxid = rh->zxid;
	if (!r->fn)
		return 0;
	r->rc = r->fn(r->ctx, rh->zxid, rh->type, payload, rh->len);
	return r->rc ? -ECANCELED : 0;
}

static const struct wal_scan_ops replay_ops = {.record = replay_record};

static void add_segment(struct wal_recovery *out, int64_t first, const struct wal_scan *sc)
{
	out->segs[out->count++] = (struct wal_segment){
	    .zxid_first = first,
	    .zxid_last = sc->records ? sc->zxid_prev : first - 1,
	};
	out->tail_open = true;
	out->tail_off = sc->end_off;
	out->tail_bytes = sc->file_bytes;
}

static int cut(int dir_fd, const char *dir, const char *name, uint64_t off, char *err,
	       size_t errlen)
{
	const char *call;
	int rc = wal_segment_truncate(dir_fd, name, off, &call);
	if (rc)
		errf(err, errlen, "%s/%s: cutting at offset %" PRIu64 ": %s: %s", dir, name, off,
		     call, strerror(-rc));
	return rc;
}

/* Corruption at sc in segment i, with truncate_corrupt set: cut the log
 * there, dropping every later segment (and this one if its header is bad). */
static int cut_corrupt(int dir_fd, const char *dir, const int64_t *firsts, size_t n, size_t i,
		       const struct wal_scan *sc, struct wal_recovery *out, char *err,
		       size_t errlen)
{
	char name[WAL_NAME_BYTES];
	wal_segment_name(name, firsts[i]);
	/* With a bad header the whole file goes, else the log is cut inside it. */
	size_t drop_from = sc->end_off >= WAL_BLOCK_BYTES ? i + 1 : i;
	log_warn("wal: %s/%s: corrupt at offset %" PRIu64 " (%s); truncate_corrupt is set: "
		 "cutting the log there (at offset %" PRIu64 ") and deleting %zu segment file(s)",
		 dir, name, sc->bad_off, sc->why, sc->end_off, n - drop_from);
	int rc = 0;
	if (drop_from > i) {
		rc = cut(dir_fd, dir, name, sc->end_off, err, errlen);
		add_segment(out, firsts[i], sc);
	}
	for (size_t j = drop_from; j < n && !rc; j++) {
		wal_segment_name(name, firsts[j]);
		if (unlinkat(dir_fd, name, 0) != 0) {
			rc = -errno;
			errf(err, errlen, "%s/%s: unlink: %s", dir, name, strerror(errno));
		}
	}
	if (!rc && fsync(dir_fd) != 0) {
		rc = -errno;
		errf(err, errlen, "%s: fsync: %s", dir, strerror(errno));
	}
	return rc;
}

/* Scan and replay segment i of n. Sets *stop when the log ends here. */
static int recover_segment(int dir_fd, const char *dir, const int64_t *firsts, size_t n, size_t i,
			   bool truncate_corrupt, struct replay_ctx *r, struct wal_recovery *out,
			   bool *stop, char *err, size_t errlen)
{
	char name[WAL_NAME_BYTES];
	wal_segment_name(name, firsts[i]);
	int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		errf(err, errlen, "%s/%s: open: %s", dir, name, strerror(errno));
		return -errno;
	}
	struct wal_scan sc = {
	    .db_id = out->db_id, .zxid_name = firsts[i], .zxid_prev = out->zxid_last};
	int rc = wal_scan_segment(fd, &sc, &replay_ops, r);
	close(fd);
	if (r->rc) {
		errf(err, errlen, "%s/%s: replay refused zxid 0x%" PRIx64 " (%d)", dir, name,
		     (uint64_t)r->zxid, r->rc);
		return r->rc < 0 ? r->rc : -ECANCELED;
	}
	if (rc) {
		errf(err, errlen, "%s/%s: read: %s", dir, name, strerror(-rc));
		return rc;
	}
	out->db_id = sc.db_id;
	out->zxid_last = sc.zxid_prev;
	bool newest = i + 1 == n;
	if (sc.end == WAL_SCAN_TORN && newest) {
		log_warn("wal: torn tail in %s/%s at offset %" PRIu64 " (%s at offset %" PRIu64
			 "): truncating the log there",
			 dir, name, sc.end_off, sc.why, sc.bad_off);
		rc = cut(dir_fd, dir, name, sc.end_off, err, errlen);
	}
	if (sc.end == WAL_SCAN_CLEAN || (sc.end == WAL_SCAN_TORN && newest)) {
		add_segment(out, firsts[i], &sc);
		return rc;
	}
	*stop = true;
	if (truncate_corrupt)
		return cut_corrupt(dir_fd, dir, firsts, n, i, &sc, out, err, errlen);
	errf(err, errlen, "%s/%s: corrupt at offset %" PRIu64 ": %s", dir, name, sc.bad_off,
	     sc.why);
	return -EUCLEAN;
}

/* A newest segment without a record was created for a write that never
 * made it: delete it, so that every segment starts with its first record. */
static int drop_empty_tail(int dir_fd, const char *dir, struct wal_recovery *out, char *err,
			   size_t errlen)
{
	if (!out->count)
		return 0;
	struct wal_segment *s = &out->segs[out->count - 1];
	if (s->zxid_last >= s->zxid_first)
		return 0;
	char name[WAL_NAME_BYTES];
	wal_segment_name(name, s->zxid_first);
	log_info("wal: removing %s/%s, which holds no record", dir, name);
	if (unlinkat(dir_fd, name, 0) != 0 || fsync(dir_fd) != 0) {
		errf(err, errlen, "%s/%s: unlink: %s", dir, name, strerror(errno));
		return -errno;
	}
	out->count--;
	out->tail_open = false;
	return 0;
}

int wal_recover(int dir_fd, const char *dir, bool truncate_corrupt, storage_replay_fn replay,
		void *ctx, struct wal_recovery *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	int64_t *firsts = NULL;
	size_t n = 0;
	int rc = wal_segment_list(dir_fd, true, &firsts, &n);
	if (rc) {
		errf(err, errlen, "%s: listing segments: %s", dir, strerror(-rc));
		return rc;
	}
	out->segs = calloc(n ? n : 1, sizeof *out->segs);
	if (!out->segs) {
		free(firsts);
		errf(err, errlen, "%s: out of memory", dir);
		return -ENOMEM;
	}
	struct replay_ctx r = {.fn = replay, .ctx = ctx};
	bool stop = false;
	for (size_t i = 0; i < n && !rc && !stop; i++)
		rc = recover_segment(dir_fd, dir, firsts, n, i, truncate_corrupt, &r, out, &stop,
				     err, errlen);
	free(firsts);
	if (!rc)
		rc = drop_empty_tail(dir_fd, dir, out, err, errlen);
	if (rc) {
		free(out->segs);
		out->segs = NULL;
	}
	return rc;
}
