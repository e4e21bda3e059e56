/* Snapshot files: write and load round trip, the checksum and header
 * checks, falling back past a corrupt or torn newest file, temporary files
 * (never loaded, removed once abandoned, kept while a writer holds them),
 * retention, a failing write, a tree encoded into a file and back, and
 * what replication needs: the raw newest file, installing one, removing
 * the ones after a zxid. Each test works in its own directory under /tmp. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/snapshot.h"
#include "core/tree.h"
#include "storage/snapfile.h"

#define DB_ID 0x1234abcd5678ef90ull

static char base[256]; /* mkdtemp'd; removed after each test */
static char dir[300];  /* base/snap: the writer creates it */
static char errpath[300];

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(base, sizeof base, "%s/rk_snap_XXXXXX", tmp && *tmp ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(base));
	snprintf(dir, sizeof dir, "%s/snap", base);
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

TestSuite(snapfile, .init = setup, .fini = teardown, .timeout = 30);
TestSuite(snapfile_fault, .init = setup, .fini = teardown, .timeout = 30);

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

/* ---- bodies are a function of the zxid, so a load can check every byte */

static size_t body_len(int64_t zxid)
{
	return 1000 + (size_t)zxid * 977;
}

static uint8_t body_byte(int64_t zxid, size_t i)
{
	return (uint8_t)(zxid * 131 + i * 7 + (i >> 9));
}

static bool body_ok(const struct snapfile_image *img, int64_t zxid)
{
	if (img->body_len != body_len(zxid))
		return false;
	const uint8_t *p = img->body;
	for (size_t i = 0; i < img->body_len; i++)
		if (p[i] != body_byte(zxid, i))
			return false;
	return true;
}

/* Writes body(zxid) in uneven pieces, one larger than the write buffer. */
static int write_body(struct snapfile_writer *w, int64_t zxid, size_t len)
{
	uint8_t *p = malloc(len);
	for (size_t i = 0; i < len; i++)
		p[i] = body_byte(zxid, i);
	size_t piece[] = {1, 7, 4096, 100, 3 << 20};
	int rc = 0;
	for (size_t off = 0, k = 0; off < len && !rc; k++) {
		size_t n = piece[k % 5] < len - off ? piece[k % 5] : len - off;
		rc = snapfile_write(w, p + off, n);
		off += n;
	}
	free(p);
	return rc;
}

static void snap_sized(int64_t zxid, size_t len)
{
	struct snapfile_writer *w;
	cr_assert_eq(snapfile_begin(dir, zxid, DB_ID, &w), 0);
	cr_assert_eq(write_body(w, zxid, len), 0);
	cr_assert_eq(snapfile_commit(w), 0);
}

static void snap(int64_t zxid)
{
	snap_sized(zxid, body_len(zxid));
}

static void path_of(char *out, size_t cap, int64_t zxid, bool tmp)
{
	snprintf(out, cap, "%s/snapshot.%016llx%s", dir, (unsigned long long)zxid,
		 tmp ? ".tmp" : "");
}

static bool exists(int64_t zxid, bool tmp)
{
	char p[400];
	path_of(p, sizeof p, zxid, tmp);
	return access(p, F_OK) == 0;
}

static off_t file_size(int64_t zxid)
{
	char p[400];
	path_of(p, sizeof p, zxid, false);
	struct stat sb;
	cr_assert_eq(stat(p, &sb), 0);
	return sb.st_size;
}

static void flip_byte(int64_t zxid, off_t off)
{
	char p[400];
	path_of(p, sizeof p, zxid, false);
	int fd = open(p, O_RDWR);
	cr_assert_geq(fd, 0);
	uint8_t b;
	cr_assert_eq(pread(fd, &b, 1, off), 1);
	b ^= 0x20;
	cr_assert_eq(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void cut(int64_t zxid, off_t size)
{
	char p[400];
	path_of(p, sizeof p, zxid, false);
	cr_assert_eq(truncate(p, size), 0);
}

static int read_one(int64_t zxid, struct snapfile_fault *f)
{
	char p[400];
	path_of(p, sizeof p, zxid, false);
	struct snapfile_image img;
	int rc = snapfile_read(p, &img, f);
	snapfile_image_free(&img);
	return rc;
}

/* ---- tests ---- */

Test(snapfile, write_then_load_round_trips_every_byte)
{
	snap_sized(0x1700000042, 5u << 20);
	cr_assert(exists(0x1700000042, false));
	cr_assert_not(exists(0x1700000042, true));
	cr_assert_eq(file_size(0x1700000042), (off_t)(5u << 20) + 96);
	struct snapfile_image img;
	cr_assert_eq(snapfile_load(dir, &img), 0);
	cr_assert_not_null(img.file);
	cr_assert_eq(img.zxid, 0x1700000042);
	cr_assert_eq(img.db_id, DB_ID);
	cr_assert_eq(img.skipped, 0);
	cr_assert_str_eq(img.name, "snapshot.0000001700000042");
	cr_assert_eq(img.body_len, 5u << 20);
	const uint8_t *p = img.body;
	size_t bad = 0;
	for (size_t i = 0; i < img.body_len; i++)
		bad += p[i] != body_byte(0x1700000042, i);
	cr_assert_eq(bad, 0);
	snapfile_image_free(&img);
}

Test(snapfile, the_newest_of_several_is_loaded_and_an_empty_body_is_fine)
{
	snap(3);
	snap(0x10);
	snap_sized(0x2, 0);
	struct snapfile_image img;
	cr_assert_eq(snapfile_load(dir, &img), 0);
	cr_assert_eq(img.zxid, 0x10);
	cr_assert(body_ok(&img, 0x10));
	snapfile_image_free(&img);
	cr_assert_eq(read_one(2, NULL), 0);
}

Test(snapfile, no_directory_or_no_snapshot_is_not_an_error)
{
	struct snapfile_image img;
	cr_assert_eq(snapfile_load(dir, &img), 0);
	cr_assert_null(img.file);
	cr_assert_eq(img.skipped, 0);
	cr_assert_eq(mkdir(dir, 0755), 0);
	cr_assert_eq(snapfile_load(dir, &img), 0);
	cr_assert_null(img.file);
}

Test(snapfile_fault, a_flipped_body_byte_fails_the_checksum)
{
	snap(7);
	flip_byte(7, 64 + 500);
	struct snapfile_fault f;
	cr_assert_eq(read_one(7, &f), -EBADMSG);
	cr_assert_str_eq(f.what, "checksum mismatch");
	cr_assert_eq(f.off, (uint64_t)file_size(7) - 8);
	capture_begin();
	struct snapfile_image img;
	int rc = snapfile_load(dir, &img);
	char *err = capture_end();
	cr_assert_eq(rc, 0);
	cr_assert_null(img.file, "a corrupt snapshot was loaded");
	cr_assert_eq(img.skipped, 1);
	cr_assert_not_null(strstr(err, "snapshot.0000000000000007 is corrupt"), "%s", err);
}

Test(snapfile_fault, header_damage_is_named)
{
	snap(7);
	struct snapfile_fault f;
	flip_byte(7, 0);
	cr_assert_eq(read_one(7, &f), -EBADMSG);
	cr_assert_str_eq(f.what, "not a snapshot file (bad magic)");
	flip_byte(7, 0);
	flip_byte(7, 17); /* the database id */
	cr_assert_eq(read_one(7, &f), -EBADMSG);
	cr_assert_str_eq(f.what, "header checksum mismatch");
	cr_assert_eq(f.off, 56);
	flip_byte(7, 17);
	cr_assert_eq(read_one(7, &f), 0);
}

Test(snapfile_fault, a_file_whose_name_disagrees_with_its_zxid_is_refused)
{
	snap(7);
	char from[400], to[400];
	path_of(from, sizeof from, 7, false);
	path_of(to, sizeof to, 8, false);
	cr_assert_eq(rename(from, to), 0);
	struct snapfile_fault f;
	cr_assert_eq(read_one(8, &f), -EBADMSG);
	cr_assert_str_eq(f.what, "zxid differs from the name");
}

Test(snapfile_fault, a_corrupt_newest_falls_back_to_the_next_older)
{
	snap(5);
	snap(9);
	snap(12);
	flip_byte(12, 64 + 3);
	flip_byte(9, file_size(9) - 14); /* the footer's zxid */
	capture_begin();
	struct snapfile_image img;
	int rc = snapfile_load(dir, &img);
	char *err = capture_end();
	cr_assert_eq(rc, 0);
	cr_assert_eq(img.zxid, 5);
	cr_assert(body_ok(&img, 5));
	cr_assert_eq(img.skipped, 2);
	cr_assert_not_null(strstr(err, "snapshot.000000000000000c is corrupt"), "%s", err);
	cr_assert_not_null(strstr(err, "snapshot.0000000000000009 is corrupt"), "%s", err);
	cr_assert_not_null(strstr(err, "footer zxid"), "%s", err);
	snapfile_image_free(&img);
}

Test(snapfile_fault, a_torn_newest_file_is_ignored)
{
	snap(5);
	snap(9);
	off_t full = file_size(9);
	off_t cuts[] = {full - 1, full - 32, full / 2, 70, 64, 10, 0};
	for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
		cut(9, cuts[i]);
		struct snapfile_fault f;
		cr_assert_eq(read_one(9, &f), -EBADMSG, "cut at %lld", (long long)cuts[i]);
		capture_begin();
		struct snapfile_image img;
		int rc = snapfile_load(dir, &img);
		capture_end();
		cr_assert_eq(rc, 0);
		cr_assert_eq(img.zxid, 5, "cut at %lld", (long long)cuts[i]);
		snapfile_image_free(&img);
	}
}

Test(snapfile_fault, bytes_appended_after_the_footer_are_refused)
{
	snap(5);
	char p[400];
	path_of(p, sizeof p, 5, false);
	FILE *f = fopen(p, "ab");
	fputs("x", f);
	fclose(f);
	struct snapfile_fault fault;
	cr_assert_eq(read_one(5, &fault), -EBADMSG);
}

Test(snapfile, a_temporary_file_is_never_loaded_and_abort_removes_it)
{
	snap(5);
	struct snapfile_writer *w;
	cr_assert_eq(snapfile_begin(dir, 9, DB_ID, &w), 0);
	cr_assert_eq(write_body(w, 9, body_len(9)), 0);
	cr_assert(exists(9, true));
	cr_assert_not(exists(9, false));
	struct snapfile_image img;
	cr_assert_eq(snapfile_load(dir, &img), 0);
	cr_assert_eq(img.zxid, 5);
	snapfile_image_free(&img);
	snapfile_abort(w);
	cr_assert_not(exists(9, true));
	cr_assert_not(exists(9, false));
}

Test(snapfile, retain_removes_abandoned_temporary_files_but_not_a_writers)
{
	snap(1);
	snap(2);
	snap(3);
	/* A crash mid-snapshot leaves a .tmp behind. */
	char p[400];
	path_of(p, sizeof p, 4, true);
	FILE *f = fopen(p, "w");
	fputs("half a snapshot", f);
	fclose(f);
	struct snapfile_writer *w;
	cr_assert_eq(snapfile_begin(dir, 5, DB_ID, &w), 0);
	/* A second writer for the same zxid cannot take the file over. */
	struct snapfile_writer *w2;
	capture_begin();
	int rc = snapfile_begin(dir, 5, DB_ID, &w2);
	capture_end();
	cr_assert_eq(rc, -EBUSY);
	cr_assert(exists(5, true));

	int64_t oldest;
	cr_assert_eq(snapfile_retain(dir, 3, &oldest), 1);
	cr_assert_not(exists(4, true));
	cr_assert(exists(5, true), "the open writer's file was removed");
	cr_assert_eq(oldest, 1);
	cr_assert_eq(write_body(w, 5, body_len(5)), 0);
	cr_assert_eq(snapfile_commit(w), 0);
	struct snapfile_image img;
	cr_assert_eq(snapfile_load(dir, &img), 0);
	cr_assert_eq(img.zxid, 5);
	cr_assert(body_ok(&img, 5));
	snapfile_image_free(&img);
}

Test(snapfile, retention_keeps_the_newest_n)
{
	int64_t oldest;
	cr_assert_eq(snapfile_retain(dir, 3, &oldest), 0);
	cr_assert_eq(oldest, -1);
	for (int64_t z = 10; z <= 15; z++)
		snap(z);
	cr_assert_eq(snapfile_retain(dir, 2, &oldest), -EINVAL);
	cr_assert_eq(snapfile_retain(dir, 4, &oldest), 2);
	cr_assert_eq(oldest, 12);
	cr_assert_not(exists(10, false));
	cr_assert_not(exists(11, false));
	for (int64_t z = 12; z <= 15; z++)
		cr_assert(exists(z, false));
	cr_assert_eq(snapfile_retain(dir, 3, &oldest), 1);
	cr_assert_eq(oldest, 13);
	cr_assert_eq(snapfile_retain(dir, 10, &oldest), 0);
	cr_assert_eq(oldest, 13);
}

Test(snapfile, names_parse_strictly)
{
	int64_t z;
	bool tmp;
	cr_assert(snapfile_name_parse("snapshot.00000000000000ff", &z, &tmp));
	cr_assert_eq(z, 255);
	cr_assert_not(tmp);
	cr_assert(snapfile_name_parse("snapshot.00000000000000ff.tmp", &z, &tmp));
	cr_assert(tmp);
	cr_assert_not(snapfile_name_parse("snapshot.00000000000000FF", &z, &tmp));
	cr_assert_not(snapfile_name_parse("snapshot.ff", &z, &tmp));
	cr_assert_not(snapfile_name_parse("snapshot.00000000000000ff.bak", &z, &tmp));
	cr_assert_not(snapfile_name_parse("snapshot.8000000000000000", &z, &tmp));
	cr_assert_not(snapfile_name_parse("log.00000000000000ff", &z, &tmp));
}

/* RLIMIT_FSIZE makes write(2) fail with EFBIG past 1 MiB (SIGXFSZ
 * ignored): the failure is logged, sticks, and commit leaves no file. */
Test(snapfile_fault, a_failing_write_fails_the_commit_and_leaves_no_file)
{
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit lim = {1u << 20, 1u << 20};
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	struct snapfile_writer *w;
	cr_assert_eq(snapfile_begin(dir, 9, DB_ID, &w), 0);
	capture_begin();
	int rc = write_body(w, 9, 3u << 20);
	int rc2 = snapfile_commit(w);
	char *err = capture_end();
	cr_assert_eq(rc, -EFBIG);
	cr_assert_eq(rc2, -EFBIG);
	cr_assert_not(exists(9, true));
	cr_assert_not(exists(9, false));
	cr_assert_not_null(strstr(err, "write"), "%s", err);
	cr_assert_not_null(strstr(err, "snapshot.0000000000000009.tmp"), "%s", err);
}

/* ---- with the codec: what the server will do ---- */

Test(snapfile, a_tree_encoded_into_a_file_loads_and_decodes)
{
	struct tree *t = tree_create();
	char p[64];
	for (int i = 0; i < 2000; i++) {
		snprintf(p, sizeof p, "/n%d", i);
		cr_assert_eq(tree_node_create(t, p, strlen(p), "v", 1, &acl_open_unsafe, 0, i + 1,
					      1000, i + 1),
			     0);
	}
	tree_set_zxid(t, 2000);
	tree_publish(t);
	const struct tree_version *v = tree_acquire(t);
	struct snap_session s = {.id = 0x700000001, .timeout_ms = 5000};
	struct snapfile_writer *w;
	cr_assert_eq(snapfile_begin(dir, v->zxid, DB_ID, &w), 0);
	cr_assert_eq(snapshot_encode(v, &s, 1, snapfile_write_cb, w), 0);
	cr_assert_eq(snapfile_commit(w), 0);

	struct snapfile_image img;
	cr_assert_eq(snapfile_load(dir, &img), 0);
	cr_assert_eq(img.zxid, 2000);
	struct tree *t2 = tree_create();
	struct session_table *st = session_table_create(1, 0);
	int64_t zxid;
	cr_assert_eq(snapshot_decode(img.body, img.body_len, t2, st, &zxid), 0);
	cr_assert_eq(zxid, 2000);
	cr_assert_eq(tree_node_count(tree_working(t2)), tree_node_count(v));
	cr_assert_not_null(session_find(st, 0x700000001));
	snapfile_image_free(&img);
	session_table_destroy(st);
	tree_destroy(t2);
	tree_destroy(t);
}

/* ---- replication: shipping a snapshot file to another server ---- */

/* The whole file snapshot.<zxid> in dir d, malloc'd. */
static uint8_t *slurp(const char *d, int64_t zxid, size_t *len)
{
	char p[400];
	snprintf(p, sizeof p, "%s/snapshot.%016llx", d, (unsigned long long)zxid);
	FILE *f = fopen(p, "rb");
	cr_assert_not_null(f, "%s", p);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	rewind(f);
	uint8_t *b = malloc(*len ? *len : 1);
	cr_assert_eq(fread(b, 1, *len, f), *len);
	fclose(f);
	return b;
}

/* Names in d that look like snapshot files, temporary ones included. */
static int snapshot_files(const char *d)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "ls -A '%s' 2>/dev/null | grep -c '^snapshot\\.'", d);
	FILE *p = popen(cmd, "r");
	int n = -1;
	cr_assert_eq(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

Test(snapfile, read_newest_gives_the_whole_newest_file_that_verifies)
{
	void *buf = (void *)1;
	size_t len = 1;
	int64_t zxid = 1;
	cr_assert_eq(snapfile_read_newest(dir, &buf, &len, &zxid), 0, "no directory");
	cr_assert_null(buf);
	cr_assert_eq(zxid, 0);
	snap(3);
	snap(9);
	snap(12);
	flip_byte(12, 64 + 10);
	capture_begin();
	int rc = snapfile_read_newest(dir, &buf, &len, &zxid);
	capture_end();
	cr_assert_eq(rc, 0);
	cr_assert_eq(zxid, 9, "the corrupt newer one is passed over");
	size_t want_len;
	uint8_t *want = slurp(dir, 9, &want_len);
	cr_assert_eq(len, want_len);
	cr_assert_eq(memcmp(buf, want, len), 0, "header, body and footer, byte for byte");
	free(want);
	free(buf);
}

Test(snapfile, install_writes_another_servers_snapshot_byte_for_byte)
{
	snap_sized(0x500000007, 3u << 20);
	void *buf;
	size_t len;
	int64_t zxid;
	cr_assert_eq(snapfile_read_newest(dir, &buf, &len, &zxid), 0);
	char other[400];
	snprintf(other, sizeof other, "%s/follower", base);
	/* From an odd address, as out of a network buffer. */
	uint8_t *odd = malloc(len + 1);
	memcpy(odd + 1, buf, len);
	int64_t got = 0;
	cr_assert_eq(snapfile_install(other, odd + 1, len, &got), 0);
	cr_assert_eq(got, 0x500000007);
	size_t copy_len;
	uint8_t *copy = slurp(other, 0x500000007, &copy_len);
	cr_assert_eq(copy_len, len);
	cr_assert_eq(memcmp(copy, buf, len), 0);
	cr_assert_eq(snapshot_files(other), 1, "no temporary file is left");
	struct snapfile_image img;
	cr_assert_eq(snapfile_load(other, &img), 0);
	cr_assert_eq(img.zxid, 0x500000007);
	cr_assert_eq(img.db_id, DB_ID);
	cr_assert_eq(img.body_len, 3u << 20);
	cr_assert_eq(((const uint8_t *)img.body)[12345], body_byte(0x500000007, 12345));
	snapfile_image_free(&img);
	/* Again over the same file: replaced, still one. */
	cr_assert_eq(snapfile_install(other, buf, len, &got), 0);
	cr_assert_eq(snapshot_files(other), 1);
	free(copy);
	free(odd);
	free(buf);
}

/* Install must refuse b (len bytes) and leave no file in dir. */
static void assert_refused(const uint8_t *b, size_t len, const char *why)
{
	int64_t got = 77;
	capture_begin();
	int rc = snapfile_install(dir, b, len, &got);
	char *err = capture_end();
	cr_assert_eq(rc, -EBADMSG, "%s: %d", why, rc);
	cr_assert_eq(got, 0, "%s", why);
	cr_assert_not_null(strstr(err, "refusing to install"), "%s: %s", why, err);
	cr_assert_eq(snapshot_files(dir), 0, "%s", why);
}

Test(snapfile_fault, install_refuses_bytes_that_do_not_verify)
{
	snap(9);
	size_t len;
	uint8_t *good = slurp(dir, 9, &len);
	char p[400];
	path_of(p, sizeof p, 9, false);
	cr_assert_eq(unlink(p), 0);
	uint8_t *b = malloc(len);

	size_t flips[] = {0, 17, 24, 64, 64 + 500, len - 20, len - 1};
	for (size_t i = 0; i < sizeof flips / sizeof *flips; i++) {
		memcpy(b, good, len);
		b[flips[i]] ^= 0x20;
		char why[64];
		snprintf(why, sizeof why, "byte %zu flipped", flips[i]);
		assert_refused(b, len, why);
	}
	memcpy(b, good, len);
	assert_refused(b, len - 1, "one byte short");
	assert_refused(b, 50, "shorter than a header");
	/* A footer zxid that differs from the header's, under a checksum
	 * that holds: only the comparison catches it. */
	struct snapfile_footer f;
	memcpy(&f, b + len - sizeof f, sizeof f);
	f.zxid = 10;
	memcpy(b + len - sizeof f, &f, sizeof f);
	f.checksum = XXH3_64bits(b, len - sizeof f.checksum);
	memcpy(b + len - sizeof f, &f, sizeof f);
	assert_refused(b, len, "footer zxid 10, header zxid 9");

	int64_t got;
	cr_assert_eq(snapfile_install(dir, good, len, &got), 0, "the good bytes go in");
	cr_assert_eq(got, 9);
	free(b);
	free(good);
}

Test(snapfile, remove_after_deletes_the_newer_snapshots_only)
{
	cr_assert_eq(snapfile_remove_after(dir, 0), 0, "no directory");
	snap(5);
	snap(9);
	snap(12);
	snap(15);
	struct snapfile_writer *w;
	cr_assert_eq(snapfile_begin(dir, 20, DB_ID, &w), 0); /* a writer's file */
	cr_assert_eq(snapfile_remove_after(dir, 9), 2);
	cr_assert(exists(5, false));
	cr_assert(exists(9, false));
	cr_assert_not(exists(12, false));
	cr_assert_not(exists(15, false));
	cr_assert(exists(20, true), "a writer's temporary file is the caller's to abort");
	snapfile_abort(w);
	struct snapfile_image img;
	cr_assert_eq(snapfile_load(dir, &img), 0);
	cr_assert_eq(img.zxid, 9);
	snapfile_image_free(&img);
	cr_assert_eq(snapfile_remove_after(dir, 9), 0);
	cr_assert_eq(snapfile_remove_after(dir, 4), 2);
	cr_assert_eq(snapshot_files(dir), 0);
}
