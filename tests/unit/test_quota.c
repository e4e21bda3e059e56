/* Quota text and lookup: StatsTrack parsing and formatting as ZooKeeper's
 * (zkCli prints the nodes' text as it is, so the bytes matter), which path
 * a quota covers, and the per-namespace refusal counters. The state
 * machine's use of them is in test_txn.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/acl.h"
#include "core/quota.h"
#include "core/tree.h"

static int parse(struct quota_track *t, const char *s)
{
	return quota_track_parse(t, (const uint8_t *)s, (int32_t)strlen(s));
}

/* The text quota_track_format makes of t (static buffer). */
static const char *text(const struct quota_track *t)
{
	static char buf[256];
	size_t n = quota_track_format(t, buf, sizeof buf - 1);
	cr_assert_lt(n, sizeof buf);
	buf[n] = 0;
	return buf;
}

static const char *reformat(const char *s)
{
	struct quota_track t;
	cr_assert_eq(parse(&t, s), 0, "%s parses", s);
	return text(&t);
}

Test(quota, limits_text_reads_and_writes_back_unchanged)
{
	/* What zkCli 3.8's setquota -n 3 writes, as listquota prints it. */
	const char *s = "count=3,bytes=-1=;byteHardLimit=-1;countHardLimit=-1";
	struct quota_track t;
	cr_assert_eq(parse(&t, s), 0);
	cr_assert_eq(quota_track_get(&t, "count"), 3);
	cr_assert_eq(quota_track_get(&t, "bytes"), -1);
	cr_assert_eq(quota_track_get(&t, "countHardLimit"), -1);
	cr_assert_eq(quota_track_get(&t, "byteHardLimit"), -1);
	cr_assert_str_eq(text(&t), s);
	cr_assert_str_eq(reformat("count=1,bytes=10"), "count=1,bytes=10");
}

Test(quota, missing_keys_read_minus_one_and_count_and_bytes_always_come_first)
{
	struct quota_track t;
	cr_assert_eq(parse(&t, ""), 0, "empty data is an empty track");
	cr_assert_eq(quota_track_get(&t, "count"), -1);
	cr_assert_str_eq(text(&t), "count=-1,bytes=-1");
	/* Other keys sorted, after the "=" that hides them from 3.4's parser;
	 * ';' separates as well as ','. */
	cr_assert_str_eq(reformat("zz=1;bytes=5;aa=2,count=7"), "count=7,bytes=5=;aa=2;zz=1");
	cr_assert_str_eq(reformat("countHardLimit=5"), "count=-1,bytes=-1=;countHardLimit=5");
}

Test(quota, pairs_split_as_java_split_does)
{
	struct quota_track t;
	cr_assert_str_eq(reformat(",,;"), "count=-1,bytes=-1", "only separators: no pairs");
	cr_assert_str_eq(reformat("count=4,,bytes=2;;"), "count=4,bytes=2");
	cr_assert_str_eq(reformat("count==9"), "count=-1,bytes=-1", "an empty value is -1");
	cr_assert_str_eq(reformat("count=5=x"), "count=5,bytes=-1", "pieces past the value");
	cr_assert_str_eq(reformat("count=1,count=2"), "count=2,bytes=-1", "the last one wins");
	cr_assert_str_eq(reformat("count=+3"), "count=3,bytes=-1");
	cr_assert_str_eq(reformat("count=-9223372036854775808"),
			 "count=-9223372036854775808,bytes=-1");
	/* Where StatsTrack throws. */
	const char *bad[] = {"count",	 ",count=1", "count=",	"count=x",
			     "count=1 ", "=",	     "count=-", "count=9223372036854775808",
			     "a=1,b"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		cr_assert_eq(parse(&t, bad[i]), -EINVAL, "%s", bad[i]);
	cr_assert_eq(quota_track_parse(&t, NULL, -1), -EINVAL, "null data");
}

Test(quota, more_keys_than_the_bound_do_not_parse)
{
	char s[512] = "";
	for (int i = 0; i <= QUOTA_TRACK_KEYS_MAX; i++) {
		char kv[16];
		snprintf(kv, sizeof kv, "k%d=%d,", i, i);
		strcat(s, kv);
	}
	struct quota_track t;
	cr_assert_eq(parse(&t, s), -E2BIG);
}

Test(quota, format_reports_the_length_it_needs)
{
	struct quota_track t = {0};
	cr_assert_eq(quota_track_set(&t, "count", 12), 0);
	cr_assert_eq(quota_track_set(&t, "bytes", 345), 0);
	char small[4];
	size_t n = quota_track_format(&t, small, sizeof small);
	cr_assert_eq(n, strlen("count=12,bytes=345"));
	cr_assert_eq(memcmp(small, "coun", 4), 0);
}

static void mk(struct tree *t, const char *path, const char *data)
{
	int32_t len = data ? (int32_t)strlen(data) : -1;
	cr_assert_eq(
	    tree_node_create(t, path, strlen(path), data, len, &acl_open_unsafe, 0, 1, 0, 0), 0,
	    "%s", path);
}

static size_t prefix(struct tree *t, const char *path)
{
	return quota_prefix(tree_working(t), path, strlen(path));
}

Test(quota, the_deepest_quota_above_a_path_covers_it)
{
	struct tree *t = tree_create();
	cr_assert_eq(prefix(t, "/a/b"), 0, "no quota at all");
	mk(t, "/zookeeper/quota/a", NULL);
	cr_assert_eq(prefix(t, "/a/b"), 0, "a quota dir without limits is no quota");
	mk(t, "/zookeeper/quota/a/zookeeper_limits", "count=1,bytes=-1");
	mk(t, "/zookeeper/quota/a/b", NULL);
	mk(t, "/zookeeper/quota/a/b/c", NULL);
	mk(t, "/zookeeper/quota/a/b/c/zookeeper_limits", "count=1,bytes=-1");
	cr_assert_eq(prefix(t, "/a"), 2);
	cr_assert_eq(prefix(t, "/a/b"), 2, "/a/b has a dir but no limits");
	cr_assert_eq(prefix(t, "/a/b/c"), 6);
	cr_assert_eq(prefix(t, "/a/b/c/d/e"), 6);
	cr_assert_eq(prefix(t, "/ab"), 0, "components, not string prefixes");
	cr_assert_eq(prefix(t, "/b"), 0);
	cr_assert_eq(prefix(t, "/"), 0);
	/* A limits node right under /zookeeper/quota is a quota on "/", which
	 * ZooKeeper ignores. */
	mk(t, "/zookeeper/quota/zookeeper_limits", "count=1,bytes=-1");
	cr_assert_eq(prefix(t, "/x"), 0);
	tree_destroy(t);
}

Test(quota, refusals_are_counted_per_top_namespace)
{
	static struct quota_counters qc; /* zeroed */
	cr_assert(quota_count_exceeded(&qc, "/a/b", 4));
	cr_assert(quota_count_exceeded(&qc, "/a/c/d", 6));
	cr_assert(quota_count_exceeded(&qc, "/bb", 3));
	cr_assert_eq(atomic_load(&qc.used), 2);
	cr_assert_str_eq(qc.ns[0].name, "a");
	cr_assert_eq(atomic_load(&qc.ns[0].exceeded), 2);
	cr_assert_str_eq(qc.ns[1].name, "bb");
	cr_assert_eq(atomic_load(&qc.ns[1].exceeded), 1);
	for (int i = 2; i < QUOTA_NAMESPACES_MAX; i++) {
		char p[16];
		snprintf(p, sizeof p, "/n%d", i);
		cr_assert(quota_count_exceeded(&qc, p, strlen(p)));
	}
	cr_assert_not(quota_count_exceeded(&qc, "/full", 5), "past the bound: not counted");
	cr_assert(quota_count_exceeded(&qc, "/a", 2), "known names still count");
	cr_assert_eq(atomic_load(&qc.ns[0].exceeded), 3);
}
