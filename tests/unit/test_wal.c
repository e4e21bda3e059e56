/* The durable txn log: formats, recovery rules (torn tail vs corruption),
 * group commit, roll-over, retention, and the failure behaviour under
 * injected faults. Each test works in its own directory under /tmp. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/wal.h"
#include "storage/wal_segment.h"

static char base[256];	  /* mkdtemp'd under $TMPDIR or /tmp; removed after each test */
static char dir[300];	  /* the log directory, base/data/log: open creates it */
static char errpath[300]; /* captured stderr */

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(base, sizeof base, "%s/rk_wal_XXXXXX", tmp && *tmp ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(base));
	snprintf(dir, sizeof dir, "%s/data/log", base);
	snprintf(errpath, sizeof errpath, "%s/stderr", base);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void teardown(void)
{
	nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(wal, .init = setup, .fini = teardown, .timeout = 20);
TestSuite(wal_fault, .init = setup, .fini = teardown, .timeout = 20);

/* ---- records: payloads are a function of the zxid, so replay can check
 * every byte without keeping copies ---- */

static uint32_t payload_len(int64_t zxid)
{
	return (uint32_t)(zxid * 37 % 300);
}

static void payload_fill(int64_t zxid, uint8_t *p, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(zxid * 131 + i);
}

#define REPLAY_MAX 4096

struct replayed {
	size_t n;
	int64_t zxid[REPLAY_MAX];
	uint32_t type[REPLAY_MAX];
	int refuse_at; /* zxid replay refuses, 0 = none */
};

static int collect(void *ctx, int64_t zxid, uint32_t type, const void *payload, uint32_t len)
{
	struct replayed *r = ctx;
	if (zxid == r->refuse_at)
		return -EPROTO;
	uint8_t want[300];
	payload_fill(zxid, want, payload_len(zxid));
	cr_assert_eq(len, payload_len(zxid), "zxid %ld: len %u", (long)zxid, len);
	cr_assert(len == 0 || memcmp(payload, want, len) == 0, "zxid %ld: payload differs",
		  (long)zxid);
	cr_assert_lt(r->n, REPLAY_MAX);
	r->zxid[r->n] = zxid;
	r->type[r->n++] = type;
	return 0;
}

/* Replay saw exactly zxids first..last, in order, with their types. */
static void assert_replayed(const struct replayed *r, int64_t first, int64_t last)
{
	cr_assert_eq(r->n, (size_t)(last - first + 1), "replayed %zu records, want %ld", r->n,
		     (long)(last - first + 1));
	for (size_t i = 0; i < r->n; i++) {
		cr_assert_eq(r->zxid[i], first + (int64_t)i);
		cr_assert_eq(r->type[i], (uint32_t)(r->zxid[i] % 8));
	}
}

static void add_record(struct storage *st, int64_t zxid)
{
	uint8_t p[300];
	uint32_t len = payload_len(zxid);
	payload_fill(zxid, p, len);
	int rc = st->ops->add(st, zxid, (uint32_t)(zxid % 8), len ? p : NULL, len);
	cr_assert_eq(rc, 0, "add zxid %ld: %d", (long)zxid, rc);
}

/* Records first..first+n-1 as one batch. */
static void add_batch(struct storage *st, int64_t first, int n)
{
	for (int i = 0; i < n; i++)
		add_record(st, first + i);
	cr_assert_eq(st->ops->commit(st), 0);
}

/* Poll, sleeping on the eventfd, until zxid is durable or the store failed. */
static int64_t wait_durable(struct storage *st, int64_t zxid)
{
	for (int i = 0; i < 1000; i++) {
		st->ops->poll(st);
		int64_t d = st->ops->durable_zxid(st);
		if (d < 0 || d >= zxid)
			return d;
		struct pollfd p = {.fd = st->ops->wait_fd(st), .events = POLLIN};
		poll(&p, 1, 10);
	}
	return st->ops->durable_zxid(st);
}

static void commit_durable(struct storage *st, int64_t first, int n)
{
	add_batch(st, first, n);
	int64_t d = wait_durable(st, first + n - 1);
	cr_assert_eq(d, first + n - 1, "durable %ld, want %ld", (long)d, (long)(first + n - 1));
}

static struct wal_config small_config(void)
{
	struct wal_config c;
	wal_config_init(&c, dir);
	c.segment_bytes = 1u << 20;
	c.batch_bytes_max = 64u << 10;
	return c;
}

static struct storage *open_ok(const struct wal_config *c, struct replayed *r)
{
	char err[512] = "";
	memset(r, 0, sizeof *r);
	struct storage *st = storage_wal_open(c, collect, r, err, sizeof err);
	cr_assert_not_null(st, "open: %s", err);
	return st;
}

/* ---- files ---- */

static void seg_path(char *out, size_t n, int64_t first)
{
	char name[WAL_NAME_BYTES];
	wal_segment_name(name, first);
	snprintf(out, n, "%s/%s", dir, name);
}

static size_t seg_count(void)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(fd, 0);
	int64_t *firsts;
	size_t n;
	cr_assert_eq(wal_segment_list(fd, false, &firsts, &n), 0);
	free(firsts);
	close(fd);
	return n;
}

static void flip_byte(int64_t seg_first, uint64_t off)
{
	char path[512];
	seg_path(path, sizeof path, seg_first);
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	uint8_t b;
	cr_assert_eq(pread(fd, &b, 1, (off_t)off), 1);
	b ^= 0x5a;
	cr_assert_eq(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

static void read_at(int64_t seg_first, uint64_t off, void *buf, size_t n)
{
	char path[512];
	seg_path(path, sizeof path, seg_first);
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, buf, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static bool zero_from(int64_t seg_first, uint64_t off)
{
	char path[512];
	seg_path(path, sizeof path, seg_first);
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f);
	fseek(f, (long)off, SEEK_SET);
	int c;
	while ((c = fgetc(f)) != EOF && c == 0)
		;
	fclose(f);
	return c == EOF;
}

/* Scan one segment as recovery would, as its only segment. */
static struct wal_scan scan(int64_t seg_first)
{
	char path[512];
	seg_path(path, sizeof path, seg_first);
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	struct wal_scan sc = {.zxid_name = seg_first};
	cr_assert_eq(wal_scan_segment(fd, &sc, NULL, NULL), 0);
	close(fd);
	return sc;
}

/* stderr goes to errpath between these two; the log writes fd 2 directly. */
static int saved_stderr = -1;

static void capture_begin(void)
{
	int fd = open(errpath, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	cr_assert_geq(fd, 0);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

static char *capture_end(void)
{
	dup2(saved_stderr, 2);
	close(saved_stderr);
	static char text[8192];
	FILE *f = fopen(errpath, "r");
	cr_assert_not_null(f);
	size_t n = fread(text, 1, sizeof text - 1, f);
	text[n] = '\0';
	fclose(f);
	fputs(text, stderr);
	return text;
}

/* ---- fault hook ---- */

struct faults {
	int writes, syncs, opens; /* calls seen, per op */
	int write_fail_at;	  /* this write (1-based) fails with write_err */
	int write_err;
	int write_short_at; /* this write is cut to write_len bytes */
	uint32_t write_len;
	int sync_fail_at; /* this sync fails with sync_err */
	int sync_err;
	int open_err;		/* every O_DIRECT open fails with it */
	struct storage *st;	/* when set: durable_zxid when each write was asked */
	int64_t durable_at[16]; /* ... by write number, 1-based */
};

static int hook(void *ctx, enum wal_fault_op op, const char *segment, uint64_t off, uint32_t *len)
{
	struct faults *f = ctx;
	switch (op) {
	case WAL_FAULT_OPEN_DIRECT:
		f->opens++;
		return f->open_err;
	case WAL_FAULT_WRITE:
		f->writes++;
		if (f->st && f->writes < 16)
			f->durable_at[f->writes] = f->st->ops->durable_zxid(f->st);
		if (f->writes == f->write_short_at || f->writes == f->write_fail_at)
			*len = f->write_len < *len ? f->write_len : *len;
		return f->writes == f->write_fail_at ? f->write_err : 0;
	case WAL_FAULT_SYNC:
		f->syncs++;
		return f->syncs == f->sync_fail_at ? f->sync_err : 0;
	case WAL_FAULT_COUNT:
		break;
	}
	return 0;
}

static struct wal_config fault_config(struct faults *f)
{
	struct wal_config c = small_config();
	c.fault = hook;
	c.fault_ctx = f;
	return c;
}

/* ---- format ---- */

Test(wal, record_and_segment_format_round_trip)
{
	struct replayed r;
	struct wal_config c = small_config();
	struct storage *st = open_ok(&c, &r);
	cr_assert_eq(r.n, 0);
	cr_assert_eq(st->ops->durable_zxid(st), 0);
	commit_durable(st, 1, 3);
	commit_durable(st, 4, 1);
	st->ops->close(st);

	struct wal_segment_header sh;
	read_at(1, 0, &sh, sizeof sh);
	cr_assert_eq(sh.magic, WAL_SEGMENT_MAGIC);
	cr_assert_eq(sh.version, WAL_FORMAT_VERSION);
	cr_assert_eq(sh.block_bytes, WAL_BLOCK_BYTES);
	cr_assert_neq(sh.db_id, 0);
	cr_assert_eq(sh.zxid_first, 1);
	cr_assert_eq(sh.segment_bytes, c.segment_bytes);
	cr_assert_eq(sh.checksum, wal_segment_checksum(&sh));

	struct wal_frame_header fh;
	read_at(1, WAL_BLOCK_BYTES, &fh, sizeof fh);
	cr_assert_eq(fh.magic, WAL_FRAME_MAGIC);
	cr_assert_eq(fh.records, 3);
	cr_assert_eq(fh.batches, 1);
	cr_assert_eq(fh.db_id, sh.db_id);
	cr_assert_eq(fh.zxid_first, 1);
	cr_assert_eq(fh.zxid_last, 3);
	cr_assert_eq(fh.bytes, sizeof fh + wal_record_bytes(payload_len(1)) +
				   wal_record_bytes(payload_len(2)) +
				   wal_record_bytes(payload_len(3)));
	cr_assert_eq(fh.checksum, wal_frame_checksum(&fh));

	uint8_t rec[sizeof(struct wal_record_header) + 300];
	read_at(1, WAL_BLOCK_BYTES + sizeof fh, rec, sizeof rec);
	struct wal_record_header rh;
	memcpy(&rh, rec, sizeof rh);
	cr_assert_eq(rh.zxid, 1);
	cr_assert_eq(rh.len, payload_len(1));
	cr_assert_eq(rh.type, 1);
	cr_assert_eq(rh.checksum, wal_record_checksum(&rh, rec + sizeof rh));

	/* The second frame starts on the next block; the rest is zeros. */
	read_at(1, 2 * WAL_BLOCK_BYTES, &fh, sizeof fh);
	cr_assert_eq(fh.zxid_first, 4);
	cr_assert(zero_from(1, 3 * WAL_BLOCK_BYTES));

	st = open_ok(&c, &r);
	assert_replayed(&r, 1, 4);
	st->ops->close(st);
}

Test(wal, restart_replays_exactly_the_committed_records)
{
	struct replayed r;
	struct wal_config c = small_config();
	struct storage *st = open_ok(&c, &r);
	for (int64_t z = 1; z <= 40; z += 4)
		commit_durable(st, z, 4);
	add_batch(st, 41, 2); /* committed, written by close */
	add_record(st, 43);   /* never committed: dropped */
	st->ops->close(st);

	st = open_ok(&c, &r);
	assert_replayed(&r, 1, 42);
	cr_assert_eq(st->ops->durable_zxid(st), 42);
	cr_assert_eq(st->ops->add(st, 44, 0, NULL, 0), -EINVAL, "zxids go on from 42");
	commit_durable(st, 43, 5);
	st->ops->close(st);

	st = open_ok(&c, &r);
	assert_replayed(&r, 1, 47);
	st->ops->close(st);
}

Test(wal, add_rejects_stale_zxid)
{
	struct replayed r;
	struct wal_config c = small_config();
	struct storage *st = open_ok(&c, &r);
	cr_assert_eq(st->ops->add(st, 0, 0, NULL, 0), -EINVAL);
	cr_assert_eq(st->ops->add(st, -3, 0, NULL, 0), -EINVAL);
	cr_assert_eq(st->ops->add(st, 5, 0, NULL, 0), 0, "the first zxid may be anything > 0");
	cr_assert_eq(st->ops->add(st, 5, 0, NULL, 0), -EINVAL, "repeat");
	cr_assert_eq(st->ops->add(st, 4, 0, NULL, 0), -EINVAL, "decrease");
	cr_assert_eq(st->ops->add(st, 7, 0, NULL, 0), -EINVAL, "gap");
	cr_assert_eq(st->ops->add(st, 6, 0, NULL, 0), 0);
	cr_assert_eq(st->ops->add(st, (2LL << 32) + 1, 0, NULL, 0), 0, "a new epoch");
	cr_assert_eq(st->ops->add(st, (1LL << 32) + 9, 0, NULL, 0), -EINVAL, "an older epoch");
	cr_assert_eq(st->ops->commit(st), 0);
	cr_assert_eq(wait_durable(st, (2LL << 32) + 1), (2LL << 32) + 1);
	st->ops->close(st);
}

Test(wal, add_is_bounded_by_queued_bytes_and_records)
{
	struct replayed r;
	struct wal_config c = small_config();
	c.batch_bytes_max = 8192;
	c.batch_records_max = 100;
	struct storage *st = open_ok(&c, &r);
	static uint8_t big[9000];
	cr_assert_eq(st->ops->add(st, 1, 0, big, 8192), -EMSGSIZE);
	cr_assert_eq(st->ops->add(st, 1, 0, big, 4000), 0);
	cr_assert_eq(st->ops->add(st, 2, 0, big, 4000), 0);
	cr_assert_eq(st->ops->add(st, 3, 0, big, 4000), -ENOBUFS, "past batch_bytes_max");
	cr_assert_eq(st->ops->commit(st), 0);
	cr_assert_eq(wait_durable(st, 2), 2);
	cr_assert_eq(st->ops->add(st, 3, 0, big, 4000), 0, "room again once written");
	cr_assert_eq(st->ops->commit(st), 0);
	cr_assert_eq(wait_durable(st, 3), 3);
	int64_t z = 4;
	while (z < 104 && st->ops->add(st, z, 0, NULL, 0) == 0)
		z++;
	cr_assert_eq(z, 104, "stopped at zxid %ld", (long)z);
	cr_assert_eq(st->ops->add(st, 104, 0, NULL, 0), -ENOBUFS, "past batch_records_max");
	st->ops->close(st);
}

Test(wal, group_commit_sends_batches_committed_during_a_write_in_one_write)
{
	struct faults f = {0};
	struct wal_config c = fault_config(&f);
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	f.st = st;
	add_batch(st, 1, 2);
	st->ops->poll(st); /* the first write goes out */
	cr_assert_eq(f.writes, 1);
	add_batch(st, 3, 1);
	add_batch(st, 4, 3);
	add_batch(st, 7, 2);
	cr_assert_eq(wait_durable(st, 8), 8);
	cr_assert_eq(f.writes, 2, "%d writes for 4 batches", f.writes);
	cr_assert_eq(f.durable_at[2], 2, "the second write waited for the first");
	f.st = NULL;
	st->ops->close(st);

	struct wal_frame_header fh;
	read_at(1, 2 * WAL_BLOCK_BYTES, &fh, sizeof fh);
	cr_assert_eq(fh.batches, 3);
	cr_assert_eq(fh.records, 6);
	cr_assert_eq(fh.zxid_first, 3);
	cr_assert_eq(fh.zxid_last, 8);
	st = open_ok(&c, &r);
	assert_replayed(&r, 1, 8);
	st->ops->close(st);
}

Test(wal, segments_roll_over_and_replay_in_order)
{
	struct wal_config c = small_config();
	c.segment_bytes = 4 * WAL_BLOCK_BYTES; /* a header and three one-block frames */
	c.batch_bytes_max = 2 * WAL_BLOCK_BYTES;
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	for (int64_t z = 1; z <= 60; z += 6)
		commit_durable(st, z, 6); /* ~1 KiB: one block per frame */
	st->ops->close(st);
	cr_assert_eq(seg_count(), 4, "%zu segments", seg_count());

	st = open_ok(&c, &r);
	assert_replayed(&r, 1, 60);
	commit_durable(st, 61, 6);
	st->ops->close(st);
	cr_assert_eq(seg_count(), 4);
	st = open_ok(&c, &r);
	assert_replayed(&r, 1, 66);
	st->ops->close(st);
}

Test(wal, purge_before_removes_old_whole_segments_only)
{
	struct wal_config c = small_config();
	c.segment_bytes = 4 * WAL_BLOCK_BYTES;
	c.batch_bytes_max = 2 * WAL_BLOCK_BYTES;
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	for (int64_t z = 1; z <= 60; z += 6)
		commit_durable(st, z, 6);
	/* Segments: 1-18, 19-36, 37-54, 55-60. */
	cr_assert_eq(storage_wal_purge_before(st, 17), 0, "1-18 still holds 18");
	cr_assert_eq(storage_wal_purge_before(st, 18), 1);
	char path[512];
	seg_path(path, sizeof path, 1);
	cr_assert_neq(access(path, F_OK), 0);
	cr_assert_eq(storage_wal_purge_before(st, INT64_MAX), 2, "never the newest");
	cr_assert_eq(seg_count(), 1);
	commit_durable(st, 61, 6);
	st->ops->close(st);

	st = open_ok(&c, &r);
	assert_replayed(&r, 55, 66);
	st->ops->close(st);
}

/* The open flags of this process's descriptor on path, or -1. */
static long fd_flags_of(const char *path)
{
	for (int fd = 0; fd < 1024; fd++) {
		char link[64], target[512], info[64];
		snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, target, sizeof target - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, path) != 0)
			continue;
		snprintf(info, sizeof info, "/proc/self/fdinfo/%d", fd);
		FILE *f = fopen(info, "r");
		cr_assert_not_null(f);
		long flags = -1;
		char line[128];
		while (fgets(line, sizeof line, f))
			if (sscanf(line, "flags: %lo", &flags) == 1)
				break;
		fclose(f);
		return flags;
	}
	return -1;
}

Test(wal, segments_are_written_with_o_direct_and_o_dsync)
{
	struct wal_config c = small_config();
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	commit_durable(st, 1, 2);
	char path[512], probe[512];
	seg_path(path, sizeof path, 1);
	snprintf(probe, sizeof probe, "%s/probe", dir);
	int fd = open(probe, O_CREAT | O_WRONLY | O_DIRECT, 0644);
	if (fd < 0) {
		st->ops->close(st);
		cr_skip_test("%s refuses O_DIRECT; the fallback has its own test", dir);
	}
	close(fd);
	unlink(probe);
	long flags = fd_flags_of(path);
	cr_assert_neq(flags, -1, "no descriptor on %s", path);
	cr_assert(flags & O_DIRECT, "flags %lo", flags);
	cr_assert(flags & O_DSYNC, "flags %lo", flags);
	st->ops->close(st);
}

Test(wal, a_second_store_on_the_same_directory_is_refused)
{
	struct wal_config c = small_config();
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	char err[256] = "";
	cr_assert_null(storage_wal_open(&c, collect, &r, err, sizeof err));
	cr_assert_not_null(strstr(err, "flock"), "%s", err);
	st->ops->close(st);
}

Test(wal, bad_configs_are_refused)
{
	struct wal_config c = small_config();
	char err[256];
	c.segment_bytes = 2 * WAL_BLOCK_BYTES;
	c.batch_bytes_max = 2 * WAL_BLOCK_BYTES;
	cr_assert_null(storage_wal_open(&c, NULL, NULL, err, sizeof err));
	cr_assert_not_null(strstr(err, "segment_bytes"), "%s", err);
	c = small_config();
	c.segment_bytes = 100000;
	cr_assert_null(storage_wal_open(&c, NULL, NULL, err, sizeof err));
	c = small_config();
	c.batch_records_max = 0;
	cr_assert_null(storage_wal_open(&c, NULL, NULL, err, sizeof err));
}

Test(wal, force_sync_off_warns_at_open_and_still_logs)
{
	struct wal_config c = small_config();
	c.force_sync = false;
	struct replayed r;
	capture_begin();
	struct storage *st = open_ok(&c, &r);
	char *text = capture_end();
	cr_assert_not_null(strstr(text, "forceSync=no"), "%s", text);
	commit_durable(st, 1, 5);
	st->ops->close(st);
	st = open_ok(&c, &r);
	assert_replayed(&r, 1, 5);
	st->ops->close(st);
}

Test(wal, fdatasync_mode_round_trip)
{
	struct faults f = {0};
	struct wal_config c = fault_config(&f);
	c.sync_mode = WAL_SYNC_FDATASYNC;
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	for (int64_t z = 1; z <= 20; z += 5)
		commit_durable(st, z, 5);
	cr_assert_eq(f.syncs, 4);
	st->ops->close(st);
	st = open_ok(&c, &r);
	assert_replayed(&r, 1, 20);
	st->ops->close(st);
}

Test(wal, replay_refusal_fails_the_open)
{
	struct wal_config c = small_config();
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	commit_durable(st, 1, 5);
	st->ops->close(st);
	memset(&r, 0, sizeof r);
	r.refuse_at = 3;
	char err[512] = "";
	cr_assert_null(storage_wal_open(&c, collect, &r, err, sizeof err));
	cr_assert_not_null(strstr(err, "refused zxid 0x3"), "%s", err);
}

/* ---- recovery rules ---- */

/* Three one-frame batches: frames at blocks 1, 2, 3 of log.1. */
static void write_three_frames(const struct wal_config *c)
{
	struct replayed r;
	struct storage *st = open_ok(c, &r);
	commit_durable(st, 1, 3);
	commit_durable(st, 4, 3);
	commit_durable(st, 7, 3);
	st->ops->close(st);
}

#define FIRST_RECORD (WAL_BLOCK_BYTES + sizeof(struct wal_frame_header))

Test(wal_fault, torn_tail_is_truncated)
{
	struct wal_config c = small_config();
	write_three_frames(&c);
	flip_byte(1, 3 * WAL_BLOCK_BYTES + 100); /* inside the last frame */

	struct replayed r;
	capture_begin();
	struct storage *st = open_ok(&c, &r);
	char *text = capture_end();
	assert_replayed(&r, 1, 6);
	cr_assert_not_null(strstr(text, "torn tail"), "%s", text);
	cr_assert_not_null(strstr(text, "log.0000000000000001 at offset 12288"), "%s", text);
	cr_assert(zero_from(1, 3 * WAL_BLOCK_BYTES), "the tail is zeroed");
	commit_durable(st, 7, 2); /* zxid 7 again: the torn one never was durable */
	st->ops->close(st);

	st = open_ok(&c, &r);
	assert_replayed(&r, 1, 8);
	st->ops->close(st);
}

Test(wal_fault, stray_bytes_after_the_last_frame_are_a_torn_tail)
{
	struct wal_config c = small_config();
	write_three_frames(&c);
	flip_byte(1, 6 * WAL_BLOCK_BYTES + 7); /* a torn write whose first block never landed */
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	assert_replayed(&r, 1, 9);
	cr_assert(zero_from(1, 4 * WAL_BLOCK_BYTES));
	st->ops->close(st);
}

Test(wal_fault, corrupt_middle_is_refused_with_file_and_offset)
{
	struct wal_config c = small_config();
	write_three_frames(&c);
	flip_byte(1, FIRST_RECORD + 30); /* payload of zxid 1 */
	struct replayed r = {0};
	char err[512] = "";
	cr_assert_null(storage_wal_open(&c, collect, &r, err, sizeof err));
	char want[512];
	snprintf(want, sizeof want, "%s/log.0000000000000001: corrupt at offset %u", dir,
		 (unsigned)FIRST_RECORD);
	cr_assert_not_null(strstr(err, want), "%s", err);
	cr_assert_not_null(strstr(err, "checksum"), "%s", err);
	cr_assert_eq(r.n, 0);

	/* Refused again: nothing was changed. */
	cr_assert_null(storage_wal_open(&c, collect, &r, err, sizeof err));
}

Test(wal_fault, a_zeroed_block_before_valid_frames_is_corruption)
{
	struct wal_config c = small_config();
	write_three_frames(&c);
	char path[512];
	seg_path(path, sizeof path, 1);
	int fd = open(path, O_RDWR);
	static const uint8_t zeros[WAL_BLOCK_BYTES];
	cr_assert_eq(pwrite(fd, zeros, sizeof zeros, 2 * WAL_BLOCK_BYTES), (ssize_t)sizeof zeros);
	close(fd);
	struct replayed r = {0};
	char err[512] = "";
	cr_assert_null(storage_wal_open(&c, collect, &r, err, sizeof err));
	cr_assert_not_null(strstr(err, "corrupt at offset 8192"), "%s", err);
}

Test(wal_fault, truncate_corrupt_cuts_the_log_there)
{
	struct wal_config c = small_config();
	c.segment_bytes = 4 * WAL_BLOCK_BYTES;
	c.batch_bytes_max = 2 * WAL_BLOCK_BYTES;
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	for (int64_t z = 1; z <= 60; z += 6)
		commit_durable(st, z, 6);
	st->ops->close(st);
	flip_byte(19, 2 * WAL_BLOCK_BYTES + 60); /* second frame (25-30) of log.19 */

	char err[512] = "";
	cr_assert_null(storage_wal_open(&c, collect, &r, err, sizeof err));
	c.truncate_corrupt = true;
	capture_begin();
	st = open_ok(&c, &r);
	char *text = capture_end();
	assert_replayed(&r, 1, 24);
	cr_assert_not_null(strstr(text, "truncate_corrupt"), "%s", text);
	cr_assert_eq(seg_count(), 2, "later segments are gone");
	cr_assert(zero_from(19, 2 * WAL_BLOCK_BYTES));
	commit_durable(st, 25, 3);
	st->ops->close(st);

	c.truncate_corrupt = false;
	st = open_ok(&c, &r);
	assert_replayed(&r, 1, 27);
	st->ops->close(st);
}

Test(wal_fault, checksum_mismatch_is_detected)
{
	struct wal_config c = small_config();
	write_three_frames(&c);
	struct wal_scan sc = scan(1);
	cr_assert_eq(sc.end, WAL_SCAN_CLEAN);
	cr_assert_eq(sc.records, 9);
	cr_assert_eq(sc.end_off, 4 * WAL_BLOCK_BYTES);

	flip_byte(1, 3 * WAL_BLOCK_BYTES + sizeof(struct wal_frame_header) + 8); /* a len */
	sc = scan(1);
	cr_assert_eq(sc.end, WAL_SCAN_TORN);
	cr_assert_eq(sc.end_off, 3 * WAL_BLOCK_BYTES);
	cr_assert_eq(sc.records, 6);
	flip_byte(1, 3 * WAL_BLOCK_BYTES + sizeof(struct wal_frame_header) + 8);

	flip_byte(1, 2 * WAL_BLOCK_BYTES + 20); /* a frame header */
	sc = scan(1);
	cr_assert_eq(sc.end, WAL_SCAN_CORRUPT);
	cr_assert_eq(sc.bad_off, 2 * WAL_BLOCK_BYTES);
	cr_assert_not_null(strstr(sc.why, "bad frame header"), "%s", sc.why);
	flip_byte(1, 2 * WAL_BLOCK_BYTES + 20);

	flip_byte(1, 17); /* the segment header's database id */
	sc = scan(1);
	cr_assert_eq(sc.end, WAL_SCAN_CORRUPT);
	cr_assert_eq(sc.bad_off, 0);
	struct replayed r = {0};
	char err[512] = "";
	cr_assert_null(storage_wal_open(&c, collect, &r, err, sizeof err));
	cr_assert_not_null(strstr(err, "bad segment header"), "%s", err);
}

Test(wal_fault, zxid_out_of_order_is_corruption_even_at_the_tail)
{
	struct wal_config c = small_config();
	write_three_frames(&c);
	/* Rewrite zxid 8 (middle of the last frame) as 12, checksum and all:
	 * intact bytes in the wrong order are no tear. */
	uint64_t off = 3 * WAL_BLOCK_BYTES + sizeof(struct wal_frame_header) +
		       wal_record_bytes(payload_len(7));
	uint8_t rec[sizeof(struct wal_record_header) + 300];
	read_at(1, off, rec, sizeof rec);
	struct wal_record_header rh;
	memcpy(&rh, rec, sizeof rh);
	cr_assert_eq(rh.zxid, 8);
	rh.zxid = 12;
	rh.checksum = wal_record_checksum(&rh, rec + sizeof rh);
	char path[512];
	seg_path(path, sizeof path, 1);
	int fd = open(path, O_RDWR);
	cr_assert_eq(pwrite(fd, &rh, sizeof rh, (off_t)off), (ssize_t)sizeof rh);
	close(fd);

	struct replayed r = {0};
	char err[512] = "";
	cr_assert_null(storage_wal_open(&c, collect, &r, err, sizeof err));
	char want[64];
	snprintf(want, sizeof want, "corrupt at offset %lu", (unsigned long)off);
	cr_assert_not_null(strstr(err, want), "%s", err);
	cr_assert_not_null(strstr(err, "does not follow"), "%s", err);
}

/* ---- I/O faults ---- */

/* The store failed with rc and stays failed: nothing more is written,
 * synced or reported durable. */
static void assert_failed_forever(struct storage *st, struct faults *f, int rc)
{
	int writes = f->writes, syncs = f->syncs;
	cr_assert_eq(st->ops->durable_zxid(st), rc);
	cr_assert_eq(st->ops->add(st, 100, 0, NULL, 0), rc);
	cr_assert_eq(st->ops->commit(st), rc);
	for (int i = 0; i < 5; i++)
		st->ops->poll(st);
	cr_assert_eq(st->ops->durable_zxid(st), rc);
	cr_assert_eq(f->writes, writes, "no write after the failure");
	cr_assert_eq(f->syncs, syncs, "no sync retried");
}

Test(wal_fault, enospc_fails_the_store_forever)
{
	struct faults f = {.write_fail_at = 2, .write_err = -ENOSPC};
	struct wal_config c = fault_config(&f);
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	commit_durable(st, 1, 3);
	add_batch(st, 4, 3);
	capture_begin();
	int64_t d = wait_durable(st, 6);
	char *text = capture_end();
	cr_assert_eq(d, -ENOSPC);
	cr_assert_not_null(strstr(text, "write"), "%s", text);
	cr_assert_not_null(strstr(text, strerror(ENOSPC)), "%s", text);
	assert_failed_forever(st, &f, -ENOSPC);
	st->ops->close(st);

	c.fault = NULL;
	st = open_ok(&c, &r);
	assert_replayed(&r, 1, 3);
	st->ops->close(st);
}

Test(wal_fault, eio_on_fdatasync_fails_the_store_forever)
{
	struct faults f = {.sync_fail_at = 2, .sync_err = -EIO};
	struct wal_config c = fault_config(&f);
	c.sync_mode = WAL_SYNC_FDATASYNC;
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	commit_durable(st, 1, 3);
	add_batch(st, 4, 3);
	cr_assert_eq(wait_durable(st, 6), -EIO);
	cr_assert_eq(f.writes, 2);
	cr_assert_eq(f.syncs, 2);
	assert_failed_forever(st, &f, -EIO);
	st->ops->close(st);
}

Test(wal_fault, eio_on_write_fails_the_store_forever)
{
	struct faults f = {.write_fail_at = 3, .write_err = -EIO};
	struct wal_config c = fault_config(&f);
	c.sync_mode = WAL_SYNC_FDATASYNC;
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	commit_durable(st, 1, 1);
	commit_durable(st, 2, 1);
	add_batch(st, 3, 1);
	cr_assert_eq(wait_durable(st, 3), -EIO);
	assert_failed_forever(st, &f, -EIO);
	st->ops->close(st);
}

Test(wal_fault, torn_batch_write_is_cut_at_the_next_open)
{
	/* The third write lands its first block only, then fails. */
	struct faults f = {.write_fail_at = 3, .write_err = -EIO, .write_len = WAL_BLOCK_BYTES};
	struct wal_config c = fault_config(&f);
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	commit_durable(st, 1, 3);
	commit_durable(st, 4, 3);
	add_batch(st, 7, 40); /* ~6 KiB: a two-block frame */
	cr_assert_eq(wait_durable(st, 46), -EIO);
	st->ops->close(st);

	struct wal_scan sc = scan(1);
	cr_assert_eq(sc.end, WAL_SCAN_TORN);
	c.fault = NULL;
	st = open_ok(&c, &r);
	assert_replayed(&r, 1, 6);
	cr_assert(zero_from(1, 3 * WAL_BLOCK_BYTES));
	st->ops->close(st);
}

Test(wal_fault, short_write_is_continued)
{
	struct faults f = {.write_short_at = 2, .write_len = WAL_BLOCK_BYTES};
	struct wal_config c = fault_config(&f);
	c.sync_mode = WAL_SYNC_FDATASYNC;
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	commit_durable(st, 1, 2);
	commit_durable(st, 3, 40); /* two blocks, written as two pieces */
	cr_assert_eq(f.writes, 3);
	commit_durable(st, 43, 2);
	st->ops->close(st);
	st = open_ok(&c, &r);
	assert_replayed(&r, 1, 44);
	st->ops->close(st);
}

Test(wal_fault, short_write_without_progress_fails_the_store)
{
	struct faults f = {.write_short_at = 2, .write_len = 0};
	struct wal_config c = fault_config(&f);
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	commit_durable(st, 1, 2);
	add_batch(st, 3, 2);
	cr_assert_eq(wait_durable(st, 4), -EIO);
	assert_failed_forever(st, &f, -EIO);
	st->ops->close(st);
}

Test(wal_fault, o_direct_refused_falls_back_to_buffered_writes)
{
	struct faults f = {.open_err = -EINVAL};
	struct wal_config c = fault_config(&f);
	c.segment_bytes = 4 * WAL_BLOCK_BYTES;
	c.batch_bytes_max = 2 * WAL_BLOCK_BYTES;
	struct replayed r;
	capture_begin();
	struct storage *st = open_ok(&c, &r);
	commit_durable(st, 1, 6);
	char *text = capture_end();
	cr_assert_not_null(strstr(text, "O_DIRECT"), "%s", text);
	for (int64_t z = 7; z <= 30; z += 6)
		commit_durable(st, z, 6);
	cr_assert_eq(f.opens, 1, "O_DIRECT is not tried again on the next segment");
	char path[512];
	seg_path(path, sizeof path, 19); /* the segment being written */
	long flags = fd_flags_of(path);
	cr_assert(flags != -1 && !(flags & O_DIRECT), "flags %lo", flags);
	cr_assert_gt(seg_count(), 1);
	st->ops->close(st);
	c.fault = NULL;
	st = open_ok(&c, &r);
	assert_replayed(&r, 1, 30);
	st->ops->close(st);
}

Test(wal_fault, truncate_corrupt_drops_a_segment_whose_header_is_bad)
{
	struct wal_config c = small_config();
	c.segment_bytes = 4 * WAL_BLOCK_BYTES;
	c.batch_bytes_max = 2 * WAL_BLOCK_BYTES;
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	for (int64_t z = 1; z <= 60; z += 6)
		commit_durable(st, z, 6);
	st->ops->close(st);
	flip_byte(37, 30); /* log.37's header: 37-54 and 55-60 go */

	c.truncate_corrupt = true;
	st = open_ok(&c, &r);
	assert_replayed(&r, 1, 36);
	cr_assert_eq(seg_count(), 2);
	commit_durable(st, 37, 6);
	st->ops->close(st);
	st = open_ok(&c, &r);
	assert_replayed(&r, 1, 42);
	st->ops->close(st);
}

static uint64_t db_id_of(int64_t seg_first)
{
	struct wal_segment_header h;
	read_at(seg_first, 0, &h, sizeof h);
	return h.db_id;
}

static int dir_fd_open(void)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(fd, 0);
	return fd;
}

Test(wal_fault, an_empty_newest_segment_is_removed_and_its_id_kept)
{
	struct wal_config c = small_config();
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	commit_durable(st, 1, 6);
	st->ops->close(st);
	uint64_t db = db_id_of(1);
	int fd = dir_fd_open();
	const char *call;
	/* A roll-over that crashed after creating log.7, before writing it. */
	cr_assert_eq(wal_segment_create(fd, 7, 0, db, c.segment_bytes, &call), 0);
	close(fd);
	cr_assert_eq(seg_count(), 2);
	st = open_ok(&c, &r);
	assert_replayed(&r, 1, 6);
	cr_assert_eq(seg_count(), 1);
	commit_durable(st, 7, 2);
	st->ops->close(st);
	st = open_ok(&c, &r);
	assert_replayed(&r, 1, 8);
	st->ops->close(st);

	/* The only segment, empty: removed, and the next one keeps its id. */
	teardown();
	setup();
	st = open_ok(&c, &r); /* creates the directory */
	st->ops->close(st);
	fd = dir_fd_open();
	cr_assert_eq(wal_segment_create(fd, 1, 0, 0x1234, c.segment_bytes, &call), 0);
	close(fd);
	st = open_ok(&c, &r);
	cr_assert_eq(seg_count(), 0);
	commit_durable(st, 1, 1);
	st->ops->close(st);
	cr_assert_eq(db_id_of(1), 0x1234);
}

Test(wal_fault, half_created_segments_are_removed_at_open)
{
	struct wal_config c = small_config();
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	commit_durable(st, 1, 3);
	st->ops->close(st);
	char path[512];
	snprintf(path, sizeof path, "%s/log.0000000000000004.tmp", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("half", f);
	fclose(f);
	st = open_ok(&c, &r);
	assert_replayed(&r, 1, 3);
	cr_assert_neq(access(path, F_OK), 0);
	commit_durable(st, 4, 1);
	st->ops->close(st);
}

/* ---- truncate and reset ---- */

#define E4 (4LL << 32)
#define E5 (5LL << 32)

/* Replay saw exactly the n zxids in want, in order. */
static void assert_replayed_list(const struct replayed *r, const int64_t *want, size_t n)
{
	cr_assert_eq(r->n, n, "replayed %zu records, want %zu", r->n, n);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(r->zxid[i], want[i], "record %zu: 0x%lx, want 0x%lx", i,
			     (unsigned long)r->zxid[i], (unsigned long)want[i]);
}

/* Reopen, replaying with stderr captured: neither a torn tail nor
 * corruption may be reported. */
static struct storage *reopen_quiet(const struct wal_config *c, struct replayed *r)
{
	capture_begin();
	struct storage *st = open_ok(c, r);
	char *text = capture_end();
	cr_assert_null(strstr(text, "torn"), "%s", text);
	cr_assert_null(strstr(text, "corrupt"), "%s", text);
	return st;
}

static struct wal_config tiny_segments(void)
{
	struct wal_config c = small_config();
	c.segment_bytes = 4 * WAL_BLOCK_BYTES; /* a header and three one-block frames */
	c.batch_bytes_max = 2 * WAL_BLOCK_BYTES;
	return c;
}

Test(wal, truncate_drops_tail_and_reopens)
{
	struct wal_config c = small_config();
	write_three_frames(&c); /* 1-3, 4-6, 7-9 at blocks 1, 2, 3 of log.1 */
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	cr_assert_eq(st->ops->truncate(st, 5), 0, "inside the frame 4-6");
	cr_assert_eq(st->ops->durable_zxid(st), 5);
	cr_assert_eq(st->ops->last_zxid(st), 5);

	/* The frame now ends after zxid 5 and everything after it is zero. */
	struct wal_frame_header fh;
	read_at(1, 2 * WAL_BLOCK_BYTES, &fh, sizeof fh);
	cr_assert_eq(fh.records, 2);
	cr_assert_eq(fh.zxid_last, 5);
	cr_assert_eq(fh.checksum, wal_frame_checksum(&fh));
	cr_assert(zero_from(1, 2 * WAL_BLOCK_BYTES + fh.bytes));
	struct wal_scan sc = scan(1);
	cr_assert_eq(sc.end, WAL_SCAN_CLEAN);
	cr_assert_eq(sc.records, 5);
	cr_assert_eq(sc.end_off, 3 * WAL_BLOCK_BYTES);

	cr_assert_eq(st->ops->truncate(st, 3), 0, "at a frame boundary");
	cr_assert(zero_from(1, 2 * WAL_BLOCK_BYTES));
	cr_assert_eq(st->ops->durable_zxid(st), 3);
	st->ops->close(st);

	st = reopen_quiet(&c, &r);
	assert_replayed(&r, 1, 3);
	cr_assert_eq(st->ops->last_zxid(st), 3);
	commit_durable(st, 4, 3); /* goes on in the same segment */
	st->ops->close(st);
	cr_assert_eq(seg_count(), 1);
	st = reopen_quiet(&c, &r);
	assert_replayed(&r, 1, 6);
	st->ops->close(st);
}

Test(wal, truncate_across_segments_deletes_the_later_ones)
{
	struct wal_config c = tiny_segments();
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	for (int64_t z = 1; z <= 60; z += 6)
		commit_durable(st, z, 6);
	/* Segments: 1-18, 19-36, 37-54, 55-60. */
	cr_assert_eq(seg_count(), 4);
	cr_assert_eq(st->ops->truncate(st, 27), 0, "inside frame 25-30 of log.19");
	cr_assert_eq(seg_count(), 2);
	cr_assert_eq(st->ops->durable_zxid(st), 27);
	struct wal_scan sc = scan(19);
	cr_assert_eq(sc.end, WAL_SCAN_CLEAN);
	cr_assert_eq(sc.records, 9);
	st->ops->close(st);

	st = reopen_quiet(&c, &r);
	assert_replayed(&r, 1, 27);
	commit_durable(st, 28, 6);
	/* log.19 (now 19-33) goes whole; then log.1 is cut inside its first frame. */
	cr_assert_eq(st->ops->truncate(st, 18), 0);
	cr_assert_eq(seg_count(), 1);
	cr_assert_eq(st->ops->truncate(st, 2), 0);
	cr_assert_eq(st->ops->last_zxid(st), 2);
	commit_durable(st, 3, 4);
	st->ops->close(st);
	st = reopen_quiet(&c, &r);
	assert_replayed(&r, 1, 6);
	cr_assert_eq(seg_count(), 2, "the records after the truncate start a new segment");
	st->ops->close(st);
}

Test(wal, truncate_then_a_lower_counter_or_a_new_epoch_then_reopen)
{
	struct wal_config c = small_config();
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	commit_durable(st, E4 + 1, 3);
	commit_durable(st, E4 + 4, 4); /* up to E4 + 7 */
	cr_assert_eq(st->ops->truncate(st, E4 + 5), 0);
	cr_assert_eq(st->ops->last_zxid(st), E4 + 5);
	cr_assert_eq(st->ops->add(st, E4 + 5, 0, NULL, 0), -EINVAL, "not above the cut");
	commit_durable(st, E4 + 6, 1); /* the same zxid as a dropped record */
	cr_assert_eq(st->ops->truncate(st, E4 + 5), 0, "and dropped again: a whole segment");
	commit_durable(st, E5 + 1, 2); /* a new epoch right after the cut */
	st->ops->close(st);

	st = reopen_quiet(&c, &r);
	int64_t want[] = {E4 + 1, E4 + 2, E4 + 3, E4 + 4, E4 + 5, E5 + 1, E5 + 2};
	assert_replayed_list(&r, want, sizeof want / sizeof *want);
	cr_assert_eq(st->ops->last_zxid(st), E5 + 2);
	cr_assert_eq(st->ops->add(st, E5 + 4, 0, NULL, 0), -EINVAL, "the order rule is back");
	commit_durable(st, E5 + 3, 1);
	st->ops->close(st);
	st = reopen_quiet(&c, &r);
	cr_assert_eq(r.n, 8);
	cr_assert_eq(r.zxid[7], E5 + 3);
	st->ops->close(st);
}

Test(wal, a_truncated_segment_takes_a_new_epoch_after_a_reopen)
{
	struct wal_config c = small_config();
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	commit_durable(st, E4 + 1, 7);
	cr_assert_eq(st->ops->truncate(st, E4 + 5), 0);
	st->ops->close(st);
	st = reopen_quiet(&c, &r);
	commit_durable(st, E5 + 1, 3); /* appended to log.<E4+1> itself */
	st->ops->close(st);
	cr_assert_eq(seg_count(), 1);
	st = reopen_quiet(&c, &r);
	int64_t want[] = {E4 + 1, E4 + 2, E4 + 3, E4 + 4, E4 + 5, E5 + 1, E5 + 2, E5 + 3};
	assert_replayed_list(&r, want, sizeof want / sizeof *want);
	st->ops->close(st);
}

Test(wal, truncate_above_the_last_record_lets_the_next_one_jump)
{
	struct wal_config c = small_config();
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	commit_durable(st, 1, 3);
	cr_assert_eq(st->ops->truncate(st, 10), 0, "nothing to drop");
	cr_assert_eq(st->ops->last_zxid(st), 3);
	cr_assert_eq(st->ops->durable_zxid(st), 3);
	commit_durable(st, 12, 2); /* any zxid above the log's end */
	st->ops->close(st);
	st = reopen_quiet(&c, &r);
	int64_t want[] = {1, 2, 3, 12, 13};
	assert_replayed_list(&r, want, sizeof want / sizeof *want);
	st->ops->close(st);
}

Test(wal, truncate_below_the_first_record_drops_everything)
{
	struct wal_config c = tiny_segments();
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	for (int64_t z = 10; z < 40; z += 6)
		commit_durable(st, z, 6);
	cr_assert_gt(seg_count(), 1);
	cr_assert_eq(st->ops->truncate(st, 5), 0);
	cr_assert_eq(seg_count(), 0);
	cr_assert_eq(st->ops->last_zxid(st), 5);
	cr_assert_eq(st->ops->durable_zxid(st), 5);
	cr_assert_eq(st->ops->add(st, 5, 0, NULL, 0), -EINVAL);
	commit_durable(st, 7, 2);
	st->ops->close(st);
	st = reopen_quiet(&c, &r);
	assert_replayed(&r, 7, 8);
	cr_assert_eq(st->ops->truncate(st, 0), 0);
	cr_assert_eq(st->ops->last_zxid(st), 0);
	st->ops->close(st);
	st = reopen_quiet(&c, &r);
	cr_assert_eq(r.n, 0);
	cr_assert_eq(seg_count(), 0);
	st->ops->close(st);
}

Test(wal, reset_forgets_the_log_and_appends_from_a_higher_zxid)
{
	struct wal_config c = tiny_segments();
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	for (int64_t z = 1; z <= 30; z += 6)
		commit_durable(st, z, 6);
	uint64_t db = db_id_of(1);
	add_batch(st, 31, 2); /* committed, not yet written: forgotten too */
	add_record(st, 33);   /* not committed */
	cr_assert_eq(st->ops->reset(st, E5 + 0x10), 0);
	cr_assert_eq(seg_count(), 0);
	cr_assert_eq(st->ops->last_zxid(st), E5 + 0x10);
	cr_assert_eq(st->ops->durable_zxid(st), E5 + 0x10);
	cr_assert_eq(st->ops->add(st, E5 + 0x10, 0, NULL, 0), -EINVAL);
	commit_durable(st, E5 + 0x11, 3);
	cr_assert_eq(db_id_of(E5 + 0x11), db, "the database id outlives the reset");
	st->ops->close(st);

	st = reopen_quiet(&c, &r);
	int64_t want[] = {E5 + 0x11, E5 + 0x12, E5 + 0x13};
	assert_replayed_list(&r, want, sizeof want / sizeof *want);
	cr_assert_eq(st->ops->reset(st, E5 + 0x20), 0);
	st->ops->close(st);
	st = reopen_quiet(&c, &r);
	cr_assert_eq(r.n, 0, "nothing survives a reset");
	cr_assert_eq(st->ops->last_zxid(st), 0);
	st->ops->close(st);
}

Test(wal, last_zxid_and_the_arguments_truncate_refuses)
{
	struct wal_config c = small_config();
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	cr_assert_eq(st->ops->last_zxid(st), 0, "a new log");
	add_record(st, 1);
	cr_assert_eq(st->ops->last_zxid(st), 1, "added, not committed");
	cr_assert_eq(st->ops->truncate(st, 0), -EBUSY, "records added and not committed");
	cr_assert_eq(st->ops->last_zxid(st), 1, "the refusal changed nothing");
	cr_assert_eq(st->ops->commit(st), 0);
	cr_assert_eq(st->ops->truncate(st, -1), -EINVAL);
	cr_assert_eq(st->ops->reset(st, -1), -EINVAL);
	add_batch(st, 2, 3);
	cr_assert_eq(st->ops->last_zxid(st), 4, "committed, maybe not written");
	cr_assert_eq(st->ops->truncate(st, 3), 0, "writes the batches, then cuts");
	cr_assert_eq(st->ops->last_zxid(st), 3);
	cr_assert_eq(st->ops->durable_zxid(st), 3);
	st->ops->close(st);
	st = reopen_quiet(&c, &r);
	assert_replayed(&r, 1, 3);
	cr_assert_eq(st->ops->last_zxid(st), 3, "a reopened log: its last record");
	st->ops->close(st);
}

Test(wal_fault, truncate_and_reset_of_a_failed_store_fail)
{
	struct faults f = {.write_fail_at = 2, .write_err = -ENOSPC};
	struct wal_config c = fault_config(&f);
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	commit_durable(st, 1, 3);
	add_batch(st, 4, 3);
	cr_assert_eq(wait_durable(st, 6), -ENOSPC);
	cr_assert_eq(st->ops->truncate(st, 2), -ENOSPC);
	cr_assert_eq(st->ops->reset(st, 2), -ENOSPC);
	assert_failed_forever(st, &f, -ENOSPC);
	st->ops->close(st);
	c.fault = NULL;
	st = open_ok(&c, &r);
	assert_replayed(&r, 1, 3);
	st->ops->close(st);
}

Test(wal_fault, a_crash_before_the_dropped_records_are_zeroed_leaves_a_torn_tail)
{
	struct wal_config c = small_config();
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	commit_durable(st, 1, 2);
	commit_durable(st, 3, 40); /* ~6 KiB: blocks 2 and 3 */
	uint8_t second[WAL_BLOCK_BYTES];
	read_at(1, 3 * WAL_BLOCK_BYTES, second, sizeof second);
	cr_assert_eq(st->ops->truncate(st, 5), 0);
	st->ops->close(st);
	/* Put back what the last step zeroed: the shortened frame is followed
	 * by the bytes of the records it dropped. */
	char path[512];
	seg_path(path, sizeof path, 1);
	int fd = open(path, O_RDWR);
	cr_assert_eq(pwrite(fd, second, sizeof second, 3 * WAL_BLOCK_BYTES),
		     (ssize_t)sizeof second);
	close(fd);

	capture_begin();
	st = open_ok(&c, &r);
	char *text = capture_end();
	assert_replayed(&r, 1, 5);
	cr_assert_not_null(strstr(text, "torn tail"), "%s", text);
	cr_assert(zero_from(1, 3 * WAL_BLOCK_BYTES));
	st->ops->close(st);
}

/* Rewrite the zxid_after of segment first's header, checksum and all. */
static void set_zxid_after(int64_t first, int64_t after)
{
	struct wal_segment_header h;
	read_at(first, 0, &h, sizeof h);
	h.zxid_after = after;
	h.checksum = wal_segment_checksum(&h);
	char path[512];
	seg_path(path, sizeof path, first);
	int fd = open(path, O_RDWR);
	cr_assert_eq(pwrite(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
	close(fd);
}

Test(wal_fault, a_jump_that_zxid_after_does_not_cover_is_corruption)
{
	struct wal_config c = small_config();
	struct replayed r;
	struct storage *st = open_ok(&c, &r);
	commit_durable(st, 1, 3);
	cr_assert_eq(st->ops->truncate(st, 10), 0);
	commit_durable(st, 12, 2);
	st->ops->close(st);
	struct wal_segment_header h;
	read_at(12, 0, &h, sizeof h);
	cr_assert_eq(h.zxid_after, 3, "where the log ended when the jump was allowed");
	read_at(1, 0, &h, sizeof h);
	cr_assert_eq(h.zxid_after, 0, "an ordinary segment's");

	int64_t bad[] = {0, 2, 12}; /* none; below the last record; not below the first */
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		set_zxid_after(12, bad[i]);
		char err[512] = "";
		cr_assert_null(storage_wal_open(&c, collect, &r, err, sizeof err), "%ld",
			       (long)bad[i]);
		cr_assert_not_null(strstr(err, "log.000000000000000c: corrupt"), "%s", err);
		cr_assert_not_null(strstr(err, "does not follow 0x3"), "%s", err);
	}
	set_zxid_after(12, 10);
	st = reopen_quiet(&c, &r);
	int64_t want[] = {1, 2, 3, 12, 13};
	assert_replayed_list(&r, want, sizeof want / sizeof *want);
	st->ops->close(st);
}
