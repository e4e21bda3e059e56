/* Segment files of the txn log: the format helpers and the scanner that
 * decides, for recovery and for ringkeeper-logdump alike, where a segment's
 * valid data ends and whether what follows is a torn tail or corruption. */
#include "storage/wal_segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "core/log.h"

/* The scanner reads what follows a bad frame in chunks of this size. */
#define TAIL_CHUNK_BYTES (1u << 20)

uint64_t wal_record_checksum(const struct wal_record_header *h, const void *payload)
{
	struct wal_record_header c = *h;
	c.checksum = 0;
	XXH3_state_t s;
	XXH3_64bits_reset(&s);
	XXH3_64bits_update(&s, &c, sizeof c);
	XXH3_64bits_update(&s, payload, h->len);
	return XXH3_64bits_digest(&s);
}

uint64_t wal_frame_checksum(const struct wal_frame_header *h)
{
	struct wal_frame_header c = *h;
	c.checksum = 0;
	return XXH3_64bits(&c, sizeof c);
}

uint64_t wal_segment_checksum(const struct wal_segment_header *h)
{
	struct wal_segment_header c = *h;
	c.checksum = 0;
	return XXH3_64bits(&c, sizeof c);
}

bool wal_zxid_follows(int64_t prev, int64_t next)
{
	if (next <= 0)
		return false;
	if (prev == 0)
		return true;
	return next == prev + 1 || (next >> 32) > (prev >> 32);
}

void wal_segment_name(char name[WAL_NAME_BYTES], int64_t zxid_first)
{
	snprintf(name, WAL_NAME_BYTES, "log.%016" PRIx64, (uint64_t)zxid_first);
}

bool wal_segment_name_parse(const char *name, int64_t *zxid_first)
{
	if (strncmp(name, "log.", 4) != 0 || strlen(name) != 20)
		return false;
	uint64_t v = 0;
	for (const char *p = name + 4; *p; p++) {
		int d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else
			return false;
		v = v << 4 | (uint64_t)d;
	}
	if ((int64_t)v <= 0)
		return false;
	*zxid_first = (int64_t)v;
	return true;
}

static bool is_tmp_name(const char *name)
{
	size_t n = strlen(name);
	return strncmp(name, "log.", 4) == 0 && n > 8 && strcmp(name + n - 4, ".tmp") == 0;
}

static int cmp_zxid(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

int wal_segment_list(int dir_fd, bool remove_tmp, int64_t **firsts, size_t *count)
{
	int fd = dup(dir_fd);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		int rc = -errno;
		if (fd >= 0)
			close(fd);
		return rc;
	}
	rewinddir(d);
	int64_t *v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		int64_t z;
		if (remove_tmp && is_tmp_name(e->d_name)) {
			log_warn("wal: removing half-created segment %s", e->d_name);
			if (unlinkat(dir_fd, e->d_name, 0) != 0) {
				rc = -errno;
				break;
			}
			continue;
		}
		if (!wal_segment_name_parse(e->d_name, &z))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			int64_t *nv = realloc(v, cap * sizeof *v);
			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
		}
		v[n++] = z;
	}
	closedir(d);
	if (rc) {
		free(v);
		return rc;
	}
	if (n)
		qsort(v, n, sizeof *v, cmp_zxid);
	*firsts = v;
	*count = n;
	return 0;
}

bool wal_segment_follows(int64_t prev, const struct wal_segment_header *h)
{
	if (!h->zxid_after)
		return wal_zxid_follows(prev, h->zxid_first);
	return h->zxid_after > 0 && prev <= h->zxid_after && h->zxid_after < h->zxid_first;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Preallocate and write the header of a fresh file. */
static int segment_fill(int fd, int64_t zxid_first, int64_t zxid_after, uint64_t db_id,
			uint64_t bytes, const char **call)
{
	static _Thread_local uint8_t block[WAL_BLOCK_BYTES];
	struct wal_segment_header h = {
	    .magic = WAL_SEGMENT_MAGIC,
	    .version = WAL_FORMAT_VERSION,
	    .block_bytes = WAL_BLOCK_BYTES,
	    .db_id = db_id,
	    .zxid_first = zxid_first,
	    .segment_bytes = bytes,
	    .created_ms = wall_ms(),
	    .zxid_after = zxid_after,
	};
	h.checksum = wal_segment_checksum(&h);
	memset(block, 0, sizeof block);
	memcpy(block, &h, sizeof h);
	*call = "fallocate";
	if (fallocate(fd, 0, 0, (off_t)bytes) != 0)
		return -errno;
	*call = "pwrite";
	ssize_t w = pwrite(fd, block, sizeof block, 0);
	if (w != (ssize_t)sizeof block)
		return w < 0 ? -errno : -EIO;
	/* fsync, not fdatasync: the size changed, and the header must be
	 * durable before the name appears. */
	*call = "fsync";
	return fsync(fd) == 0 ? 0 : -errno;
}

int wal_segment_create(int dir_fd, int64_t zxid_first, int64_t zxid_after, uint64_t db_id,
		       uint64_t bytes, const char **call)
{
	RK_ASSERT(zxid_after >= 0 && zxid_after < zxid_first);
	char name[WAL_NAME_BYTES], tmp[WAL_NAME_BYTES];
	wal_segment_name(name, zxid_first);
	snprintf(tmp, sizeof tmp, "log.%016" PRIx64 ".tmp", (uint64_t)zxid_first);
	*call = "open";
	int fd = openat(dir_fd, tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int rc = segment_fill(fd, zxid_first, zxid_after, db_id, bytes, call);
	close(fd);
	if (rc == 0) {
		*call = "renameat2";
		rc = renameat2(dir_fd, tmp, dir_fd, name, RENAME_NOREPLACE) == 0 ? 0 : -errno;
	}
	if (rc) {
		unlinkat(dir_fd, tmp, 0);
		return rc;
	}
	*call = "fsync";
	return fsync(dir_fd) == 0 ? 0 : -errno;
}

int wal_segment_truncate(int dir_fd, const char *name, uint64_t off, const char **call)
{
	*call = "open";
	int fd = openat(dir_fd, name, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat stbuf;
	int rc = 0;
	*call = "fstat";
	if (fstat(fd, &stbuf) != 0)
		goto err;
	/* Cut and re-extend: the cut range reads back as zeros and stays
	 * preallocated, on every filesystem that has fallocate. */
	*call = "ftruncate";
	if (ftruncate(fd, (off_t)off) != 0)
		goto err;
	*call = "fallocate";
	if ((uint64_t)stbuf.st_size > off &&
	    fallocate(fd, 0, (off_t)off, (off_t)((uint64_t)stbuf.st_size - off)) != 0)
		goto err;
	*call = "fsync";
	if (fsync(fd) != 0)
		goto err;
	close(fd);
	return 0;
err:
	rc = -errno;
	close(fd);
	return rc;
}

/* ---- scanning ---- */

struct scan_buf {
	uint8_t *data;
	size_t cap;
};

static int buf_reserve(struct scan_buf *b, size_t n)
{
	if (n <= b->cap)
		return 0;
	uint8_t *d = realloc(b->data, n);
	if (!d)
		return -ENOMEM;
	b->data = d;
	b->cap = n;
	return 0;
}

static int read_full(int fd, void *buf, size_t n, uint64_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, (uint8_t *)buf + done, n - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO; /* callers never read past the size they saw */
		done += (size_t)r;
	}
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static bool frame_header_valid(const struct wal_frame_header *fh, uint64_t db_id)
{
	return fh->magic == WAL_FRAME_MAGIC && fh->checksum == wal_frame_checksum(fh) &&
	       fh->db_id == db_id;
}

static void set_end(struct wal_scan *sc, enum wal_scan_end end, uint64_t bad_off, const char *fmt,
		    ...) __attribute__((format(printf, 4, 5)));

static void set_end(struct wal_scan *sc, enum wal_scan_end end, uint64_t bad_off, const char *fmt,
		    ...)
{
	sc->end = end;
	sc->bad_off = bad_off;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sc->why, sizeof sc->why, fmt, ap);
	va_end(ap);
}

/* What lies from `from` to the end of the file: the first valid frame
 * header at a block boundary (*valid_off, 0 if none) and the first non-zero
 * byte (*dirty_off, 0 if none). */
static int tail_check(int fd, const struct wal_scan *sc, uint64_t from, uint64_t *valid_off,
		      uint64_t *dirty_off)
{
	*valid_off = *dirty_off = 0;
	uint8_t *chunk = malloc(TAIL_CHUNK_BYTES);
	if (!chunk)
		return -ENOMEM;
	int rc = 0;
	for (uint64_t off = from; off + WAL_BLOCK_BYTES <= sc->file_bytes && !*valid_off;) {
		size_t n = TAIL_CHUNK_BYTES;
		if (sc->file_bytes - off < n)
			n = (size_t)((sc->file_bytes - off) & ~(uint64_t)(WAL_BLOCK_BYTES - 1));
		rc = read_full(fd, chunk, n, off);
		if (rc)
			break;
		for (size_t b = 0; b < n; b += WAL_BLOCK_BYTES) {
			if (!*dirty_off && !all_zero(chunk + b, WAL_BLOCK_BYTES))
				*dirty_off = off + b;
			struct wal_frame_header fh;
			memcpy(&fh, chunk + b, sizeof fh);
			if (frame_header_valid(&fh, sc->db_id)) {
				*valid_off = off + b;
				break;
			}
		}
		off += n;
	}
	free(chunk);
	return rc;
}

/* End the scan at a bad frame (or stray bytes) found at frame_off, with the
 * first bad byte at bad_off: torn unless a valid frame follows from `after`. */
static int end_bad(int fd, struct wal_scan *sc, uint64_t frame_off, uint64_t bad_off,
		   uint64_t after, const char *what)
{
	uint64_t valid_off, dirty_off;
	int rc = tail_check(fd, sc, after, &valid_off, &dirty_off);
	if (rc)
		return rc;
	sc->end_off = frame_off;
	if (valid_off)
		set_end(sc, WAL_SCAN_CORRUPT, bad_off,
			"%s, and a valid frame follows at offset %" PRIu64, what, valid_off);
	else
		set_end(sc, WAL_SCAN_TORN, bad_off, "%s", what);
	return 0;
}

/* Zeros where the next frame would start: the clean end, unless stray
 * bytes or (worse) a valid frame lie further on. */
static int end_zero(int fd, struct wal_scan *sc, uint64_t off)
{
	uint64_t valid_off, dirty_off;
	int rc = tail_check(fd, sc, off, &valid_off, &dirty_off);
	if (rc)
		return rc;
	sc->end_off = off;
	if (valid_off)
		set_end(sc, WAL_SCAN_CORRUPT, off,
			"zeros where a frame should be, and a valid frame at offset %" PRIu64,
			valid_off);
	else if (dirty_off)
		set_end(sc, WAL_SCAN_TORN, dirty_off, "stray bytes after the last frame");
	else
		sc->end = WAL_SCAN_CLEAN;
	return 0;
}

static int check_segment_header(int fd, struct wal_scan *sc)
{
	struct stat stbuf;
	if (fstat(fd, &stbuf) != 0)
		return -errno;
	sc->file_bytes = (uint64_t)stbuf.st_size;
	sc->end = WAL_SCAN_CORRUPT;
	sc->end_off = 0;
	struct wal_segment_header *h = &sc->hdr;
	memset(h, 0, sizeof *h);
	if (sc->file_bytes < WAL_BLOCK_BYTES) {
		set_end(sc, WAL_SCAN_CORRUPT, 0, "file shorter than a segment header block");
		return 0;
	}
	int rc = read_full(fd, h, sizeof *h, 0);
	if (rc)
		return rc;
	if (h->magic != WAL_SEGMENT_MAGIC || h->checksum != wal_segment_checksum(h))
		set_end(sc, WAL_SCAN_CORRUPT, 0, "bad segment header (magic or checksum)");
	else if (h->version != WAL_FORMAT_VERSION || h->block_bytes != WAL_BLOCK_BYTES)
		set_end(sc, WAL_SCAN_CORRUPT, 8, "unsupported version %u or block size %u",
			h->version, h->block_bytes);
	else if (sc->db_id && h->db_id != sc->db_id)
		set_end(sc, WAL_SCAN_CORRUPT, 16,
			"database id %016" PRIx64 " differs from the log's %016" PRIx64, h->db_id,
			sc->db_id);
	else if (sc->zxid_name && h->zxid_first != sc->zxid_name)
		set_end(sc, WAL_SCAN_CORRUPT, 24, "first zxid 0x%" PRIx64 " differs from the name",
			(uint64_t)h->zxid_first);
	else if (!wal_segment_follows(sc->zxid_prev, h) && !h->zxid_after)
		set_end(sc, WAL_SCAN_CORRUPT, 24,
			"first zxid 0x%" PRIx64 " does not follow 0x%" PRIx64,
			(uint64_t)h->zxid_first, (uint64_t)sc->zxid_prev);
	else if (!wal_segment_follows(sc->zxid_prev, h))
		set_end(sc, WAL_SCAN_CORRUPT, 48,
			"first zxid 0x%" PRIx64 " does not follow 0x%" PRIx64
			" with zxid_after 0x%" PRIx64,
			(uint64_t)h->zxid_first, (uint64_t)sc->zxid_prev, (uint64_t)h->zxid_after);
	else
		sc->end = WAL_SCAN_CLEAN;
	sc->db_id = h->db_id;
	return 0;
}

/* What is wrong with the records of the frame in buf, if anything. Every
 * record whose length fits is shown to record_seen. Returns 0 when all is
 * well, else the offset in buf of the first bad record with *hard set when
 * its checksum held (the data is as written, so no tear explains it). */
static uint32_t frame_check(const uint8_t *buf, const struct wal_frame_header *fh, int64_t prev,
			    uint64_t off, const struct wal_scan_ops *ops, void *ctx, bool *hard,
			    char *why, size_t whylen)
{
	uint32_t bad = 0, n = 0, p = sizeof *fh;
	int64_t first = 0;
	while (p < fh->bytes) {
		struct wal_record_header rh;
		if (fh->bytes - p < sizeof rh) {
			if (!bad)
				snprintf(why, whylen, "record header past the end of the frame");
			return bad ? bad : p;
		}
		memcpy(&rh, buf + p, sizeof rh);
		if (wal_record_bytes(rh.len) > fh->bytes - p) {
			if (!bad)
				snprintf(why, whylen, "record length %u past the end of the frame",
					 rh.len);
			return bad ? bad : p;
		}
		bool sum_ok = rh.checksum == wal_record_checksum(&rh, buf + p + sizeof rh);
		bool order_ok = wal_zxid_follows(prev, rh.zxid);
		if (ops && ops->record_seen)
			ops->record_seen(ctx, &rh, off + p, sum_ok);
		if (!bad && !sum_ok) {
			bad = p;
			snprintf(why, whylen, "record checksum mismatch (zxid 0x%" PRIx64 ")",
				 (uint64_t)rh.zxid);
		} else if (!bad && !order_ok) {
			bad = p;
			*hard = true;
			snprintf(why, whylen, "zxid 0x%" PRIx64 " does not follow 0x%" PRIx64,
				 (uint64_t)rh.zxid, (uint64_t)prev);
		}
		first = n++ ? first : rh.zxid;
		prev = rh.zxid;
		p += (uint32_t)wal_record_bytes(rh.len);
	}
	if (!bad && (n != fh->records || first != fh->zxid_first || prev != fh->zxid_last)) {
		*hard = true;
		snprintf(why, whylen, "frame header disagrees with its records");
		return sizeof *fh;
	}
	return bad;
}

static int deliver(const uint8_t *buf, const struct wal_frame_header *fh,
		   const struct wal_scan_ops *ops, void *ctx)
{
	for (uint32_t p = sizeof *fh; p < fh->bytes;) {
		struct wal_record_header rh;
		memcpy(&rh, buf + p, sizeof rh);
		int rc = ops && ops->record ? ops->record(ctx, &rh, buf + p + sizeof rh) : 0;
		if (rc)
			return rc;
		p += (uint32_t)wal_record_bytes(rh.len);
	}
	return 0;
}

/* The scan ended here (sc->end says how) unless rc is an error. */
static int ended(int rc, bool *done)
{
	*done = true;
	return rc;
}

/* One frame at off: advances *off past it, or sets *done when the scan
 * ends here. Returns 0, -errno or a callback's non-zero. */
static int scan_frame(int fd, struct wal_scan *sc, struct scan_buf *b, uint64_t *off,
		      const struct wal_scan_ops *ops, void *ctx, bool *done)
{
	struct wal_frame_header fh;
	int rc = read_full(fd, &fh, sizeof fh, *off);
	if (rc)
		return rc;
	if (all_zero((const uint8_t *)&fh, sizeof fh))
		return ended(end_zero(fd, sc, *off), done);
	if (fh.magic != WAL_FRAME_MAGIC || fh.checksum != wal_frame_checksum(&fh))
		return ended(
		    end_bad(fd, sc, *off, *off, *off + WAL_BLOCK_BYTES, "bad frame header"), done);
	if (fh.db_id != sc->db_id) {
		sc->end_off = *off;
		set_end(sc, WAL_SCAN_CORRUPT, *off + 8, "frame of another database %016" PRIx64,
			fh.db_id);
		return ended(0, done);
	}
	if (fh.bytes < sizeof fh || fh.bytes > sc->file_bytes - *off)
		return ended(end_bad(fd, sc, *off, *off, *off + WAL_BLOCK_BYTES,
				     "frame length past the end of the segment"),
			     done);
	if ((rc = buf_reserve(b, fh.bytes)) || (rc = read_full(fd, b->data, fh.bytes, *off)))
		return rc;
	if (ops && ops->frame_seen)
		ops->frame_seen(ctx, &fh, *off);
	bool hard = false;
	char why[sizeof sc->why];
	/* After a truncate or reset the first record need not follow the one
	 * before: the header checked it against zxid_after, and the frame
	 * must start at the header's first zxid (below). */
	int64_t prev = sc->frames == 0 && sc->hdr.zxid_after ? 0 : sc->zxid_prev;
	uint32_t bad = frame_check(b->data, &fh, prev, *off, ops, ctx, &hard, why, sizeof why);
	uint64_t next = *off + wal_block_round_up(fh.bytes);
	if (!bad && sc->frames == 0 && fh.zxid_first != sc->hdr.zxid_first) {
		bad = offsetof(struct wal_frame_header, zxid_first);
		hard = true;
		snprintf(why, sizeof why, "first frame does not start at the segment's first zxid");
	}
	if (bad && hard) {
		sc->end_off = *off;
		set_end(sc, WAL_SCAN_CORRUPT, *off + bad, "%s", why);
		return ended(0, done);
	}
	if (bad)
		return ended(end_bad(fd, sc, *off, *off + bad, next, why), done);
	if ((rc = deliver(b->data, &fh, ops, ctx)))
		return rc;
	sc->zxid_prev = fh.zxid_last;
	sc->frames++;
	sc->records += fh.records;
	*off = next;
	return 0;
}

int wal_scan_segment(int fd, struct wal_scan *sc, const struct wal_scan_ops *ops, void *ctx)
{
	sc->frames = 0;
	sc->records = 0;
	sc->why[0] = '\0';
	int rc = check_segment_header(fd, sc);
	if (rc || sc->end != WAL_SCAN_CLEAN)
		return rc;
	struct scan_buf b = {0};
	uint64_t off = WAL_BLOCK_BYTES;
	bool done = false;
	while (!rc && !done) {
		if (off + WAL_BLOCK_BYTES > sc->file_bytes) {
			sc->end_off = off;
			sc->end = WAL_SCAN_CLEAN;
			break;
		}
		rc = scan_frame(fd, sc, &b, &off, ops, ctx, &done);
	}
	free(b.data);
	return rc;
}

/* ---- cutting after a zxid ---- */

#define CUT_FOUND 1 /* the record callback's "stop here"; errors are < 0 */

/* Where the first record > zxid sits, filled in while the scan delivers. */
struct cut_point {
	int64_t zxid;		    /* keep records <= this */
	uint64_t frame_off;	    /* the frame being delivered */
	struct wal_frame_header fh; /* ... its header */
	uint32_t rec_off;	    /* ... end of its records kept so far */
	uint32_t kept;		    /* ... how many */
	int64_t zxid_last;	    /* the last record kept in the segment */
};

static void cut_frame_seen(void *ctx, const struct wal_frame_header *fh, uint64_t off)
{
	struct cut_point *cp = ctx;
	cp->frame_off = off;
	cp->fh = *fh;
	cp->rec_off = sizeof *fh;
	cp->kept = 0;
}

static int cut_record(void *ctx, const struct wal_record_header *rh, const void *payload)
{
	struct cut_point *cp = ctx;
	if (rh->zxid > cp->zxid)
		return CUT_FOUND;
	cp->rec_off += (uint32_t)wal_record_bytes(rh->len);
	cp->kept++;
	cp->zxid_last = rh->zxid;
	return 0;
}

static const struct wal_scan_ops cut_ops = {.record = cut_record, .frame_seen = cut_frame_seen};

/* Shorten the frame to its first cp->kept records by rewriting its header
 * alone. The header is the first 48 bytes of a block, inside one sector,
 * and every other byte written back with its page is unchanged, so a crash
 * leaves either the old frame or the shortened one, both valid. */
static int shorten_frame(int fd, const struct cut_point *cp, const char **call)
{
	struct wal_frame_header fh = cp->fh;
	fh.records = cp->kept;
	fh.zxid_last = cp->zxid_last;
	fh.bytes = cp->rec_off;
	fh.checksum = wal_frame_checksum(&fh);
	*call = "pwrite";
	ssize_t n = pwrite(fd, &fh, sizeof fh, (off_t)cp->frame_off);
	if (n != (ssize_t)sizeof fh)
		return n < 0 ? -errno : -EIO;
	*call = "fdatasync";
	return fdatasync(fd) == 0 ? 0 : -errno;
}

static int cut_at(int dir_fd, int fd, const char *name, const struct cut_point *cp,
		  uint64_t *end_off, const char **call)
{
	if (!cp->kept) {
		*end_off = cp->frame_off;
		return wal_segment_truncate(dir_fd, name, cp->frame_off, call);
	}
	/* The frames after this one go first: once they are gone, this frame
	 * is the last whichever of its two versions a crash leaves. */
	uint64_t frame_end = cp->frame_off + wal_block_round_up(cp->fh.bytes);
	int rc = wal_segment_truncate(dir_fd, name, frame_end, call);
	if (!rc)
		rc = shorten_frame(fd, cp, call);
	if (rc)
		return rc;
	/* The dropped records are now stray bytes after the last frame (a
	 * crash here leaves a torn tail, cut at open); zero them. */
	static const uint8_t zeros[WAL_BLOCK_BYTES];
	uint64_t keep_end = cp->frame_off + cp->rec_off;
	*end_off = wal_block_round_up(keep_end);
	*call = "pwrite";
	ssize_t n = pwrite(fd, zeros, *end_off - keep_end, (off_t)keep_end);
	if (n != (ssize_t)(*end_off - keep_end))
		return n < 0 ? -errno : -EIO;
	return wal_segment_truncate(dir_fd, name, *end_off, call);
}

int wal_segment_cut_after(int dir_fd, const char *name, uint64_t db_id, int64_t zxid,
			  int64_t *zxid_last, uint64_t *end_off, const char **call)
{
	*zxid_last = 0;
	*end_off = 0;
	*call = "open";
	int fd = openat(dir_fd, name, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct cut_point cp = {.zxid = zxid};
	struct wal_scan sc = {.db_id = db_id};
	if (!wal_segment_name_parse(name, &sc.zxid_name))
		sc.zxid_name = 0;
	*call = "read";
	int rc = wal_scan_segment(fd, &sc, &cut_ops, &cp);
	*zxid_last = cp.zxid_last;
	if (rc == 0) { /* no record > zxid: nothing to cut, if the segment is sound */
		*end_off = sc.end_off;
		*call = "scan";
		rc = sc.end == WAL_SCAN_CLEAN ? 0 : -EUCLEAN;
		if (rc)
			log_error("wal: %s: cannot cut after 0x%" PRIx64 ": %s at offset %" PRIu64,
				  name, (uint64_t)zxid, sc.why, sc.bad_off);
	} else if (rc == CUT_FOUND) {
		rc = cut_at(dir_fd, fd, name, &cp, end_off, call);
	}
	close(fd);
	return rc;
}
