/* The acceptedEpoch and currentEpoch files: round trip, a missing file is
 * epoch 0, ZooKeeper's format both ways, garbage refused, and a write that
 * fails leaves the old value. Each test works in its own directory. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/epoch.h"

static char dir[256]; /* mkdtemp'd; removed after each test */

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/rk_epoch_XXXXXX", tmp && *tmp ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(dir));
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void teardown(void)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(epoch, .init = setup, .fini = teardown, .timeout = 10);

static void put_file(const char *name, const char *text, size_t n)
{
	char path[400];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(text, 1, n, f), n);
	fclose(f);
}

static size_t get_file(const char *name, char *buf, size_t cap)
{
	char path[400];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	size_t n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
	return n;
}

static int read_text(const char *text, uint32_t *v)
{
	put_file(EPOCH_CURRENT, text, strlen(text));
	*v = 12345;
	return epoch_read(dir, EPOCH_CURRENT, v);
}

Test(epoch, a_missing_file_is_epoch_zero)
{
	uint32_t v = 99;
	cr_assert_eq(epoch_read(dir, EPOCH_ACCEPTED, &v), 0);
	cr_assert_eq(v, 0);
}

Test(epoch, write_then_read_round_trips_in_zookeepers_format)
{
	cr_assert_eq(epoch_write(dir, EPOCH_ACCEPTED, 7), 0);
	cr_assert_eq(epoch_write(dir, EPOCH_CURRENT, 6), 0);
	uint32_t a, c;
	cr_assert_eq(epoch_read(dir, EPOCH_ACCEPTED, &a), 0);
	cr_assert_eq(epoch_read(dir, EPOCH_CURRENT, &c), 0);
	cr_assert_eq(a, 7);
	cr_assert_eq(c, 6);
	char text[64];
	cr_assert_eq(get_file(EPOCH_ACCEPTED, text, sizeof text), 1);
	cr_assert_str_eq(text, "7", "ZooKeeper writes the digits alone");

	cr_assert_eq(epoch_write(dir, EPOCH_ACCEPTED, UINT32_MAX), 0);
	cr_assert_eq(epoch_read(dir, EPOCH_ACCEPTED, &a), 0);
	cr_assert_eq(a, UINT32_MAX);
	get_file(EPOCH_ACCEPTED, text, sizeof text);
	cr_assert_str_eq(text, "4294967295");
	char tmp[400];
	snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, EPOCH_ACCEPTED);
	cr_assert_neq(access(tmp, F_OK), 0, "no temporary file is left");
}

Test(epoch, what_zookeeper_and_an_editor_write_is_read)
{
	uint32_t v;
	cr_assert_eq(read_text("0", &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(read_text("42", &v), 0);
	cr_assert_eq(v, 42);
	cr_assert_eq(read_text("42\n", &v), 0);
	cr_assert_eq(v, 42);
	cr_assert_eq(read_text("42\r\n", &v), 0);
	cr_assert_eq(v, 42);
	cr_assert_eq(read_text("0007", &v), 0);
	cr_assert_eq(v, 7);
}

Test(epoch, garbage_is_refused)
{
	/* Empty, signs, spaces, two newlines, hex, past 32 bits, past the size. */
	static const char *const bad[] = {"",
					  "\n",
					  "x",
					  "-1",
					  "+1",
					  " 1",
					  "1 ",
					  "1\n\n",
					  "12a",
					  "1e3",
					  "0x10",
					  "4294967296",
					  "99999999999999999999999999999999999999"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		uint32_t v;
		cr_assert_eq(read_text(bad[i], &v), -EBADMSG, "\"%s\"", bad[i]);
		cr_assert_eq(v, 0, "\"%s\"", bad[i]);
	}
	uint32_t v;
	put_file(EPOCH_CURRENT, "1\0", 2);
	cr_assert_eq(epoch_read(dir, EPOCH_CURRENT, &v), -EBADMSG, "a NUL byte");
}

Test(epoch, a_write_that_fails_leaves_the_old_value)
{
	cr_assert_eq(epoch_write(dir, EPOCH_CURRENT, 3), 0);
	/* A directory where the temporary file goes: open fails, even as root. */
	char tmp[400];
	snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, EPOCH_CURRENT);
	cr_assert_eq(mkdir(tmp, 0755), 0);
	cr_assert_eq(epoch_write(dir, EPOCH_CURRENT, 4), -EISDIR);
	uint32_t v;
	cr_assert_eq(epoch_read(dir, EPOCH_CURRENT, &v), 0);
	cr_assert_eq(v, 3);
	cr_assert_eq(rmdir(tmp), 0);
	cr_assert_eq(epoch_write(dir, EPOCH_CURRENT, 4), 0);
	cr_assert_eq(epoch_read(dir, EPOCH_CURRENT, &v), 0);
	cr_assert_eq(v, 4);

	char missing[400];
	snprintf(missing, sizeof missing, "%s/nope", dir);
	cr_assert_eq(epoch_write(missing, EPOCH_CURRENT, 4), -ENOENT);
}
