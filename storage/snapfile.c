/* Snapshot files: the writer (temporary name, buffered writes with a
 * streaming XXH3-64, fsync, rename, directory fsync), the loader that falls
 * back past corrupt files to older ones, and retention. */
#include "storage/snapfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/log.h"

#define NAME_PREFIX	"snapshot."
#define NAME_PREFIX_LEN 9
#define NAME_HEX	16
#define TMP_SUFFIX	".tmp"
#define FRAME_BYTES	(sizeof(struct snapfile_header) + sizeof(struct snapfile_footer))
#define BUF_BYTES	(1u << 20)
/* Start writeback every this many bytes, so the final fsync does not
 * flush hundreds of MiB at once in front of the txn log's writes. */
#define WRITEBACK_BYTES (8u << 20)

struct snapfile_writer {
	int dir_fd;
	int fd;
	char *dir;
	char tmp[SNAPFILE_NAME_MAX];
	char final[SNAPFILE_NAME_MAX];
	int64_t zxid;
	uint64_t body_bytes;
	uint64_t file_off;	/* bytes handed to write(2) */
	uint64_t writeback_off; /* writeback started up to here */
	XXH3_state_t *xx;
	uint8_t *buf;
	size_t len;
	bool locked;	    /* the temporary file is ours to remove */
	int err;	    /* sticky -errno of the first failure */
	int64_t started_us; /* snapfile_begin's time, for snapshot_us */
};

/* Every snapshot this process wrote through snapfile_begin/commit. */
static struct summary snapshot_us = {.min = UINT64_MAX};

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const struct summary *snapfile_write_time(void)
{
	return &snapshot_us;
}

bool snapfile_name_parse(const char *name, int64_t *zxid, bool *tmp)
{
	if (strncmp(name, NAME_PREFIX, NAME_PREFIX_LEN) != 0)
		return false;
	const char *hex = name + NAME_PREFIX_LEN;
	uint64_t v = 0;
	for (int i = 0; i < NAME_HEX; i++) {
		char c = hex[i];
		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return false;
	}
	const char *rest = hex + NAME_HEX;
	if (v > INT64_MAX || (*rest && strcmp(rest, TMP_SUFFIX) != 0))
		return false;
	*zxid = (int64_t)v;
	*tmp = *rest != '\0';
	return true;
}

static void name_of(char *out, int64_t zxid, bool tmp)
{
	snprintf(out, SNAPFILE_NAME_MAX, NAME_PREFIX "%016" PRIx64 "%s", (uint64_t)zxid,
		 tmp ? TMP_SUFFIX : "");
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- writer ---- */

static int fail(struct snapfile_writer *w, const char *syscall, int err)
{
	if (!w->err) {
		log_error("snapfile: %s %s/%s at offset %" PRIu64 " failed: %s", syscall, w->dir,
			  w->tmp, w->file_off, strerror(err));
		w->err = -err;
	}
	return w->err;
}

static int write_all(struct snapfile_writer *w, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n && !w->err) {
		ssize_t k = write(w->fd, b, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return fail(w, "write", k < 0 ? errno : EIO);
		b += k;
		n -= (size_t)k;
		w->file_off += (uint64_t)k;
	}
	if (!w->err && w->file_off - w->writeback_off >= WRITEBACK_BYTES) {
		/* Only a hint: errors surface at the fsync. */
		sync_file_range(w->fd, (off_t)w->writeback_off,
				(off_t)(w->file_off - w->writeback_off), SYNC_FILE_RANGE_WRITE);
		w->writeback_off = w->file_off;
	}
	return w->err;
}

static int flush(struct snapfile_writer *w)
{
	int rc = write_all(w, w->buf, w->len);
	w->len = 0;
	return rc;
}

/* Appends to the file through the buffer and the checksum. */
static int put(struct snapfile_writer *w, const void *p, size_t n)
{
	if (w->err)
		return w->err;
	XXH3_64bits_update(w->xx, p, n);
	if (w->len + n > BUF_BYTES) {
		if (flush(w))
			return w->err;
		if (n >= BUF_BYTES)
			return write_all(w, p, n);
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	return 0;
}

static void writer_free(struct snapfile_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	if (w->dir_fd >= 0)
		close(w->dir_fd);
	XXH3_freeState(w->xx);
	free(w->buf);
	free(w->dir);
	free(w);
}

static int open_dir(const char *dir)
{
	if (mkdir(dir, 0755) && errno != EEXIST) {
		log_error("snapfile: mkdir %s failed: %s", dir, strerror(errno));
		return -errno;
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		log_error("snapfile: open %s failed: %s", dir, strerror(errno));
		return -errno;
	}
	return fd;
}

/* Creates and locks the temporary file. Truncates only once locked, so a
 * writer never clobbers another one's file. */
static int open_tmp(struct snapfile_writer *w)
{
	w->fd = openat(w->dir_fd, w->tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (w->fd < 0)
		return fail(w, "open", errno);
	if (flock(w->fd, LOCK_EX | LOCK_NB))
		return fail(w, "flock", errno == EWOULDBLOCK ? EBUSY : errno);
	w->locked = true;
	if (ftruncate(w->fd, 0))
		return fail(w, "ftruncate", errno);
	return 0;
}

/* A writer with its temporary file created and locked, nothing written. */
static int writer_open(const char *dir, int64_t zxid, struct snapfile_writer **out)
{
	RK_ASSERT(zxid >= 0);
	struct snapfile_writer *w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	w->fd = -1;
	w->zxid = zxid;
	w->dir = strdup(dir);
	w->buf = malloc(BUF_BYTES);
	w->xx = XXH3_createState();
	w->dir_fd = w->dir && w->buf && w->xx ? open_dir(dir) : -ENOMEM;
	if (w->dir_fd < 0) {
		int rc = w->dir_fd;
		writer_free(w);
		return rc;
	}
	name_of(w->tmp, zxid, true);
	name_of(w->final, zxid, false);
	int rc = open_tmp(w);
	if (rc) {
		snapfile_abort(w);
		return rc;
	}
	*out = w;
	return 0;
}

int snapfile_begin(const char *dir, int64_t zxid, uint64_t db_id, struct snapfile_writer **out)
{
	struct snapfile_writer *w;
	int rc = writer_open(dir, zxid, &w);
	if (rc)
		return rc;
	w->started_us = mono_us();
	XXH3_64bits_reset(w->xx);
	struct snapfile_header h = {
	    .magic = SNAPFILE_MAGIC,
	    .version = SNAPFILE_FORMAT_VERSION,
	    .db_id = db_id,
	    .zxid = zxid,
	    .created_ms = wall_ms(),
	};
	h.checksum = XXH3_64bits(&h, sizeof h);
	rc = put(w, &h, sizeof h);
	if (rc) {
		snapfile_abort(w);
		return rc;
	}
	*out = w;
	return 0;
}

int snapfile_write(struct snapfile_writer *w, const void *p, size_t n)
{
	w->body_bytes += n;
	return put(w, p, n);
}

int snapfile_write_cb(void *w, const void *p, size_t n)
{
	return snapfile_write(w, p, n);
}

/* Everything written: fsync, rename to the final name while the lock is
 * held (so retention never takes the file for a leftover), fsync dir. */
static int publish(struct snapfile_writer *w)
{
	if (fsync(w->fd))
		return fail(w, "fsync", errno);
	if (renameat(w->dir_fd, w->tmp, w->dir_fd, w->final))
		return fail(w, "rename", errno);
	if (fsync(w->dir_fd)) {
		int err = errno;
		log_error("snapfile: fsync of directory %s failed after renaming %s: %s", w->dir,
			  w->final, strerror(err));
		return -err;
	}
	return 0;
}

/* Footer, then everything on disk under the final name. */
static int finish(struct snapfile_writer *w)
{
	struct snapfile_footer f = {
	    .magic = SNAPFILE_FOOTER_MAGIC,
	    .body_bytes = w->body_bytes,
	    .zxid = w->zxid,
	};
	XXH3_64bits_update(w->xx, &f, offsetof(struct snapfile_footer, checksum));
	f.checksum = XXH3_64bits_digest(w->xx);
	if (w->err)
		return w->err;
	if (w->len + sizeof f > BUF_BYTES && flush(w))
		return w->err;
	memcpy(w->buf + w->len, &f, sizeof f);
	w->len += sizeof f;
	if (flush(w))
		return w->err;
	return publish(w);
}

static int writer_close(struct snapfile_writer *w, int rc)
{
	if (rc && w->err) /* failed before or at the rename */
		unlinkat(w->dir_fd, w->tmp, 0);
	writer_free(w);
	return rc;
}

int snapfile_commit(struct snapfile_writer *w)
{
	int64_t started_us = w->started_us;
	int rc = writer_close(w, finish(w));
	if (!rc)
		summary_observe(&snapshot_us, (uint64_t)(mono_us() - started_us));
	return rc;
}

void snapfile_abort(struct snapfile_writer *w)
{
	if (w->locked)
		unlinkat(w->dir_fd, w->tmp, 0);
	writer_free(w);
}

/* ---- reading ---- */

static int bad(struct snapfile_fault *fault, uint64_t off, const char *what)
{
	fault->off = off;
	fault->what = what;
	return -EBADMSG;
}

static int check_header(const uint8_t *p, size_t size, const char *path, struct snapfile_fault *f)
{
	struct snapfile_header h;
	if (size < sizeof h)
		return bad(f, size, "shorter than the header");
	memcpy(&h, p, sizeof h);
	if (h.magic != SNAPFILE_MAGIC)
		return bad(f, 0, "not a snapshot file (bad magic)");
	uint64_t sum = h.checksum;
	h.checksum = 0;
	if (XXH3_64bits(&h, sizeof h) != sum)
		return bad(f, offsetof(struct snapfile_header, checksum),
			   "header checksum mismatch");
	if (h.version != SNAPFILE_FORMAT_VERSION)
		return bad(f, offsetof(struct snapfile_header, version), "unknown format version");
	if (h.flags)
		return bad(f, offsetof(struct snapfile_header, flags), "unknown flags");
	if (h.zxid < 0 || h.reserved[0] || h.reserved[1])
		return bad(f, offsetof(struct snapfile_header, zxid), "bad header fields");
	const char *base = strrchr(path, '/');
	int64_t named;
	bool tmp;
	if (snapfile_name_parse(base ? base + 1 : path, &named, &tmp) && named != h.zxid)
		return bad(f, offsetof(struct snapfile_header, zxid), "zxid differs from the name");
	return 0;
}

static int check_footer(const uint8_t *p, size_t size, struct snapfile_fault *f)
{
	struct snapfile_footer ft;
	if (size < FRAME_BYTES)
		return bad(f, size, "no footer: the file is truncated");
	uint64_t at = size - sizeof ft;
	memcpy(&ft, p + at, sizeof ft);
	if (ft.magic != SNAPFILE_FOOTER_MAGIC)
		return bad(f, at, "no footer: the file is truncated or has bytes after it");
	if (ft.body_bytes != size - FRAME_BYTES)
		return bad(f, at + offsetof(struct snapfile_footer, body_bytes),
			   "footer body length does not match the file size");
	struct snapfile_header h;
	memcpy(&h, p, sizeof h); /* p may be any caller's buffer: no aligned load */
	if (ft.zxid != h.zxid)
		return bad(f, at + offsetof(struct snapfile_footer, zxid),
			   "footer zxid differs from the header's");
	uint64_t sum_at = at + offsetof(struct snapfile_footer, checksum);
	if (XXH3_64bits(p, sum_at) != ft.checksum)
		return bad(f, sum_at, "checksum mismatch");
	return 0;
}

static int read_whole(int fd, uint8_t **out, size_t *size)
{
	struct stat sb;
	if (fstat(fd, &sb))
		return -errno;
	size_t n = (size_t)sb.st_size;
	uint8_t *p = malloc(n ? n : 1);
	if (!p)
		return -ENOMEM;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (size_t got = 0; got < n;) {
		ssize_t k = pread(fd, p + got, n - got, (off_t)got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			int err = k < 0 ? errno : EIO; /* shrank under us */
			free(p);
			return -err;
		}
		got += (size_t)k;
	}
	*out = p;
	*size = n;
	return 0;
}

int snapfile_read(const char *path, struct snapfile_image *img, struct snapfile_fault *fault)
{
	struct snapfile_fault ignored;
	if (!fault)
		fault = &ignored;
	*img = (struct snapfile_image){0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	uint8_t *p = NULL;
	size_t size = 0;
	int rc = read_whole(fd, &p, &size);
	close(fd);
	if (rc)
		return rc;
	rc = check_header(p, size, path, fault);
	if (!rc)
		rc = check_footer(p, size, fault);
	if (rc) {
		free(p);
		return rc;
	}
	const struct snapfile_header *h = (const void *)p;
	img->file = p;
	img->body = p + sizeof *h;
	img->body_len = size - FRAME_BYTES;
	img->zxid = h->zxid;
	img->db_id = h->db_id;
	img->created_ms = h->created_ms;
	const char *base = strrchr(path, '/');
	snprintf(img->name, sizeof img->name, "%s", base ? base + 1 : path);
	return 0;
}

void snapfile_image_free(struct snapfile_image *img)
{
	free(img->file);
	*img = (struct snapfile_image){0};
}

/* ---- listing ---- */

struct listing {
	int64_t *snaps; /* zxids, newest first */
	size_t n_snaps;
	int64_t *tmps;
	size_t n_tmps;
};

static int push(int64_t **arr, size_t *n, int64_t v)
{
	if ((*n & (*n - 1)) == 0) { /* 0, 1, 2, 4 ...: grow to the next power */
		int64_t *a = realloc(*arr, (*n ? *n * 2 : 1) * sizeof *a);
		if (!a)
			return -ENOMEM;
		*arr = a;
	}
	(*arr)[(*n)++] = v;
	return 0;
}

static int newest_first(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x < y) - (x > y);
}

static void listing_free(struct listing *l)
{
	free(l->snaps);
	free(l->tmps);
}

/* -ENOENT when dir does not exist. */
static int list_dir(const char *dir, struct listing *l)
{
	*l = (struct listing){0};
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	struct dirent *e;
	int rc = 0;
	while (!rc && (e = readdir(d))) {
		int64_t zxid;
		bool tmp;
		if (!snapfile_name_parse(e->d_name, &zxid, &tmp))
			continue;
		rc = tmp ? push(&l->tmps, &l->n_tmps, zxid) : push(&l->snaps, &l->n_snaps, zxid);
	}
	closedir(d);
	if (rc) {
		listing_free(l);
		return rc;
	}
	if (l->n_snaps > 1)
		qsort(l->snaps, l->n_snaps, sizeof *l->snaps, newest_first);
	return 0;
}

int snapfile_load(const char *dir, struct snapfile_image *img)
{
	*img = (struct snapfile_image){0};
	struct listing l;
	int rc = list_dir(dir, &l);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	unsigned skipped = 0;
	for (size_t i = 0; i < l.n_snaps; i++) {
		char name[SNAPFILE_NAME_MAX], path[4096];
		name_of(name, l.snaps[i], false);
		snprintf(path, sizeof path, "%s/%s", dir, name);
		struct snapfile_fault f = {0};
		rc = snapfile_read(path, img, &f);
		if (rc == 0 || rc == -ENOMEM)
			break;
		if (rc == -EBADMSG)
			log_warn("snapfile: %s is corrupt at offset %" PRIu64
				 " (%s); trying an older "
				 "snapshot",
				 path, f.off, f.what);
		else
			log_warn("snapfile: cannot read %s: %s; trying an older snapshot", path,
				 strerror(-rc));
		skipped++;
		rc = 0;
	}
	listing_free(&l);
	if (!rc && !img->file && skipped)
		log_warn("snapfile: none of the %u snapshots in %s verifies", skipped, dir);
	img->skipped = skipped;
	return rc;
}

/* ---- retention ---- */

static int remove_file(int dir_fd, const char *dir, const char *name)
{
	if (unlinkat(dir_fd, name, 0) == 0)
		return 1;
	if (errno != ENOENT)
		log_warn("snapfile: unlink %s/%s failed: %s", dir, name, strerror(errno));
	return 0;
}

/* Removes a temporary file whose writer is gone (its flock is free),
 * holding the lock meanwhile. */
static int remove_abandoned(int dir_fd, const char *dir, const char *name)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int removed = flock(fd, LOCK_EX | LOCK_NB) == 0 ? remove_file(dir_fd, dir, name) : 0;
	close(fd);
	return removed;
}

int snapfile_retain(const char *dir, unsigned keep_count, int64_t *oldest_kept_zxid)
{
	*oldest_kept_zxid = -1;
	if (keep_count < SNAPFILE_KEEP_MIN)
		return -EINVAL;
	struct listing l;
	int rc = list_dir(dir, &l);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0) {
		rc = -errno;
		listing_free(&l);
		return rc;
	}
	char name[SNAPFILE_NAME_MAX];
	int removed = 0;
	for (size_t i = keep_count; i < l.n_snaps; i++) {
		name_of(name, l.snaps[i], false);
		removed += remove_file(dir_fd, dir, name);
	}
	for (size_t i = 0; i < l.n_tmps; i++) {
		name_of(name, l.tmps[i], true);
		removed += remove_abandoned(dir_fd, dir, name);
	}
	if (l.n_snaps)
		*oldest_kept_zxid = l.snaps[(l.n_snaps < keep_count ? l.n_snaps : keep_count) - 1];
	if (removed)
		fsync(dir_fd); /* best effort: a file that comes back is removed next time */
	close(dir_fd);
	listing_free(&l);
	return removed;
}

/* ---- replication ---- */

int snapfile_read_newest(const char *dir, void **buf, size_t *len, int64_t *zxid)
{
	*buf = NULL;
	*len = 0;
	*zxid = 0;
	struct snapfile_image img;
	int rc = snapfile_load(dir, &img);
	if (rc || !img.file)
		return rc;
	*buf = img.file; /* the whole file, verified; the caller frees it */
	*len = img.body_len + FRAME_BYTES;
	*zxid = img.zxid;
	return 0;
}

int snapfile_install(const char *dir, const void *buf, size_t len, int64_t *zxid)
{
	*zxid = 0;
	struct snapfile_fault f;
	/* No name to check the zxid against: "" parses as none. */
	int rc = check_header(buf, len, "", &f);
	if (!rc)
		rc = check_footer(buf, len, &f);
	if (rc) {
		log_warn("snapfile: refusing to install a snapshot of %zu bytes into %s: %s at "
			 "offset %" PRIu64,
			 len, dir, f.what, f.off);
		return rc;
	}
	struct snapfile_header h;
	memcpy(&h, buf, sizeof h);
	struct snapfile_writer *w;
	rc = writer_open(dir, h.zxid, &w);
	if (rc)
		return rc;
	rc = write_all(w, buf, len);
	if (!rc)
		rc = publish(w);
	rc = writer_close(w, rc);
	if (!rc)
		*zxid = h.zxid;
	return rc;
}

int snapfile_remove_after(const char *dir, int64_t zxid)
{
	struct listing l;
	int rc = list_dir(dir, &l);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0) {
		rc = -errno;
		listing_free(&l);
		return rc;
	}
	int removed = 0;
	char name[SNAPFILE_NAME_MAX];
	for (size_t i = 0; i < l.n_snaps && l.snaps[i] > zxid && !rc; i++) { /* newest first */
		name_of(name, l.snaps[i], false);
		if (unlinkat(dir_fd, name, 0) == 0)
			removed++;
		else if (errno != ENOENT)
			rc = -errno;
	}
	if (rc)
		log_error("snapfile: unlink %s/%s failed: %s", dir, name, strerror(-rc));
	/* Unlike retention's, this sync matters: a snapshot of the dropped
	 * history that came back after a crash would be loaded at start-up. */
	if (removed && fsync(dir_fd) && !rc) {
		rc = -errno;
		log_error("snapfile: fsync of directory %s failed: %s", dir, strerror(-rc));
	}
	close(dir_fd);
	listing_free(&l);
	return rc ? rc : removed;
}
