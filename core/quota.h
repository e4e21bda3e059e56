/* Quotas as ZooKeeper 3.7+ keeps them, in the tree itself. A quota on path
 * P is the node /zookeeper/quota<P>/zookeeper_limits; beside it
 * /zookeeper/quota<P>/zookeeper_stats holds the node count and data bytes
 * of P's subtree (P included). Clients (zkCli's setquota, listquota,
 * delquota) write the limits and read both; the server keeps the stats.
 *
 * Both nodes hold ZooKeeper's StatsTrack text: "key=long" pairs separated
 * by ',' or ';', written as "count=N,bytes=M" and, when other keys exist,
 * "=" then ";key=value" for each in sorted order, e.g.
 * "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=5". count and bytes
 * are the soft limits (or the usage, in the stats), countHardLimit and
 * byteHardLimit the hard ones; a missing key reads as -1 (no limit).
 *
 * The stats change only while applying a txn (quota_apply_*), which every
 * server does for every txn, from the txn and the tree alone: replicas
 * and a replay of the log compute the same bytes, and snapshots keep them.
 * ZooKeeper does the same in DataTree and logs no txn for it; it also
 * recounts every quota'd subtree when it loads a snapshot (its snapshots
 * are fuzzy). Ringkeeper's snapshots are exact images, so it does not:
 * a restarted server holds exactly the stats it had, as its peers do.
 *
 * The quota'd path covering a write is the deepest one with a limits node
 * (ZooKeeper's PathTrie.findMaxPrefix); only its stats change and only its
 * limits are checked. Nested quotas are refused by zkCli, not the server.
 * A limits node directly under /zookeeper/quota (a quota on "/") counts
 * for nothing, as in ZooKeeper.
 *
 * Writer only (the sequencer thread), except struct quota_counters. */
#ifndef RK_QUOTA_H
#define RK_QUOTA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tree.h"

#define QUOTA_ROOT	     "/zookeeper/quota"
#define QUOTA_LIMITS_NODE    "zookeeper_limits"
#define QUOTA_STATS_NODE     "zookeeper_stats"
#define QUOTA_TRACK_KEYS_MAX 16

/* A parsed StatsTrack. Keys point into the parsed bytes or at static
 * strings; the struct is valid while those are. */
struct quota_track {
	uint32_t n;
	struct {
		const char *key;
		size_t len;
		int64_t value;
	} e[QUOTA_TRACK_KEYS_MAX];
};

/* Parses data as ZooKeeper's StatsTrack constructor does (data_len -1 is
 * null). Returns 0, or -EINVAL where Java would throw (a pair without a
 * value, a value Long.parseLong refuses, null data) and -E2BIG past
 * QUOTA_TRACK_KEYS_MAX keys. Empty data is a valid track with no keys. */
int quota_track_parse(struct quota_track *t, const uint8_t *data, int32_t data_len);
/* The value of key (a NUL-terminated name), -1 when absent. */
int64_t quota_track_get(const struct quota_track *t, const char *key);
/* Sets key (a static string) to value; -E2BIG when full. */
int quota_track_set(struct quota_track *t, const char *key, int64_t value);
/* StatsTrack.toString(): writes at most cap bytes (no NUL) and returns
 * the length the whole text needs. */
size_t quota_track_format(const struct quota_track *t, char *buf, size_t cap);

/* Whether any quota dir exists (/zookeeper/quota has children): one
 * lookup, so writes skip the rest when there are no quotas. */
bool quota_any(const struct tree_version *v);
/* The length of the deepest quota'd path that is path or an ancestor of
 * it in v (path[0..len) is that path), or 0 when none is. path is valid
 * and absolute. O(depth) lookups, one when there is no quota at all. */
size_t quota_prefix(const struct tree_version *v, const char *path, size_t len);

/* ZooKeeper's checkQuota for a change of count_diff nodes and bytes_diff
 * bytes under the quota'd path prefix[0..prefix_len), on top of the stats
 * in v plus pending_count / pending_bytes (the changes earlier ops of the
 * same multi make). Each limit is checked only when its diff is non-zero;
 * a set hard limit replaces the soft one. */
enum quota_verdict {
	QUOTA_WITHIN = 0, /* no limit passed */
	QUOTA_SOFT,	  /* a soft limit passed: warn only */
	QUOTA_HARD,	  /* a hard limit passed: refuse the write */
	QUOTA_UNREADABLE, /* limits or stats do not parse: ZooKeeper fails the
			   * request with MARSHALLINGERROR */
	QUOTA_VERDICT_COUNT,
};

struct quota_excess {
	const char *what; /* "count" or "bytes" */
	bool hard;
	int64_t value; /* after the change */
	int64_t limit;
};

struct quota_check {
	enum quota_verdict verdict;
	uint32_t n; /* excesses found, in ZooKeeper's order: count, bytes */
	struct quota_excess ex[2];
};

void quota_check(const struct tree_version *v, const char *prefix, size_t prefix_len,
		 int64_t count_diff, int64_t bytes_diff, int64_t pending_count,
		 int64_t pending_bytes, struct quota_check *out);

/* Applying a txn (after the tree change, on every server). data_len as in
 * the txn (-1 = null counts 0 bytes). A create of a stats node first sets
 * its data to a fresh count of its subtree (ZooKeeper's
 * updateQuotaForPath); then the stats of the quota covering the changed
 * path take the change. Stats data that does not parse is left alone with
 * a warning (ZooKeeper would throw on its apply path). */
void quota_apply_create(struct tree *t, const char *path, size_t len, int32_t data_len);
void quota_apply_delete(struct tree *t, const char *path, size_t len, int32_t old_data_len);
void quota_apply_set_data(struct tree *t, const char *path, size_t len, int32_t old_data_len,
			  int32_t data_len);

/* Hard-limit refusals per top namespace (the first path component), as
 * ZooKeeper's quota_exceeded_error_per_namespace counter. The sequencer
 * writes; mntr reads from any thread: names of slots below `used` (acquire)
 * are immutable. Past QUOTA_NAMESPACES_MAX names, or a name longer than
 * QUOTA_NAMESPACE_BYTES - 1, a refusal is not counted. */
#define QUOTA_NAMESPACES_MAX  64
#define QUOTA_NAMESPACE_BYTES 128

struct quota_counters {
	_Atomic uint32_t used;
	struct {
		char name[QUOTA_NAMESPACE_BYTES];
		_Atomic uint64_t exceeded;
	} ns[QUOTA_NAMESPACES_MAX];
};

/* Counts one refusal of a write to path; false when it could not. */
bool quota_count_exceeded(struct quota_counters *qc, const char *path, size_t len);

#endif
