/* The server's status in numbers, gathered in one place for everything
 * that reports it: the four-letter words (net/fourlw), the admin server's
 * JSON commands and its Prometheus /metrics (net/admin). Each formatter
 * reads a struct server_status; none computes a figure of its own.
 *
 * status_collect() reads per-core counters and the sequencer's stats with
 * relaxed loads (each is written by its own thread; a report may mix
 * values a few microseconds apart), the published tree version, and the
 * process (open descriptors, uptime). It does no blocking I/O but reads
 * /proc/self/fd and the data directories for the figures that need them
 * (status_collect_fds, status_dir_bytes), so callers ask for those only
 * when they print them. */
#ifndef RK_STATUS_H
#define RK_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/quota.h"
#include "core/summary.h"
#include "net/server.h"

/* What ZooKeeper prints as its version (srvr, mntr, envi, the admin
 * server): the ZooKeeper release we answer as, then ours. */
#define STATUS_VERSION "3.9.0-ringkeeper-0.1.0, built on " __DATE__

/* ZooKeeper's answer to most requests while it serves no clients. */
#define STATUS_NOT_SERVING "This ZooKeeper instance is not currently serving requests"

/* Summaries reported with ZooKeeper's names (mntr's avg_/min_/max_/cnt_/
 * sum_ keys, Prometheus summaries), in milliseconds. */
enum status_summary {
	STATUS_FSYNC = 0, /* fsynctime: a txn log write and its sync */
	STATUS_SNAPSHOT,  /* snapshottime: writing one snapshot file */
	STATUS_ELECTION,  /* election_time: looking until a leader is known */
	STATUS_UPDATE,	  /* updatelatency: a write, received to answered */
	STATUS_SUMMARY_COUNT,
};

struct server_status {
	/* "standalone", "leader", "follower" or "observer"; NULL while the
	 * server serves no clients (electing, syncing), when ZooKeeper
	 * answers STATUS_NOT_SERVING. */
	const char *state;
	bool ensemble;
	/* Requests and connections, summed over the cores. */
	uint64_t packets_received, packets_sent;
	uint64_t connections, outstanding;
	uint64_t latency_total_us, latency_count, latency_min_us, latency_max_us;
	uint64_t auth_failed;
	uint64_t watches, watch_paths, watch_sessions; /* paths are per core */
	/* Data: from the sequencer, and the version this thread can see. */
	int64_t zxid, zxid_durable;
	bool txnlog_failed;
	uint64_t znodes, sessions, ephemerals, bytes_approx;
	int64_t snap_zxid; /* newest snapshot written or loaded */
	/* Replication (ensemble only). */
	uint32_t epoch, leader_id, learners, synced_followers, synced_observers;
	uint32_t quorum_size; /* voting members */
	uint64_t looking_count;
	/* Durations, in microseconds; fsync_slow counts syncs over 1 s. */
	struct summary_snap summaries[STATUS_SUMMARY_COUNT];
	uint64_t fsync_slow;
	/* Process. */
	int64_t uptime_ms;
	int cores;
	int64_t open_fds, max_fds; /* -1 until status_collect_fds */
	/* Writes a hard quota limit refused, per top namespace, with their
	 * monitor keys "<ns>_quota_exceeded_error_per_namespace". */
	uint32_t quota_namespaces;
	char quota_keys[QUOTA_NAMESPACES_MAX][QUOTA_NAMESPACE_BYTES + 40];
	uint64_t quota_exceeded[QUOTA_NAMESPACES_MAX];
};

void status_collect(const struct server *srv, struct server_status *st);
void status_collect_fds(struct server_status *st);
/* ZooKeeper's mntr peer_state ("leading - broadcast" ...), NULL standalone
 * or not serving. */
const char *status_peer_state(const struct server_status *st);
/* The request latencies as ZooKeeper reports them, in milliseconds. */
double status_avg_latency_ms(const struct server_status *st);
uint64_t status_min_latency_ms(const struct server_status *st);
uint64_t status_max_latency_ms(const struct server_status *st);
/* Sizes of the snapshot and txn log directories, ZooKeeper's dirs. */
uint64_t status_snap_dir_bytes(const struct config *cfg);
uint64_t status_log_dir_bytes(const struct config *cfg);
/* Zero the request counters and latencies (srst, stat_reset): racy by
 * design, each counter is written by its own core. */
void status_reset(struct server *srv);

/* One line of mntr / one key of the admin server's monitor: the same
 * table drives both, so the two always agree. */
enum status_kind {
	STATUS_INT = 0, /* int64 */
	STATUS_DOUBLE,	/* double, 4 decimals in text */
	STATUS_STRING,	/* string */
	STATUS_ZXID,	/* int64: "0x.." in text, a number in JSON */
	STATUS_KIND_COUNT,
};

struct status_value {
	const char *key; /* without mntr's "zk_" prefix */
	enum status_kind kind;
	int64_t i;
	double d;
	const char *s;
};

#define STATUS_MONITOR_MAX (80 + QUOTA_NAMESPACES_MAX)

/* The monitor values of st (st->state must not be NULL), in mntr's
 * order; returns how many. Strings point into st or are static. */
size_t status_monitor(const struct server_status *st, struct status_value *out);

/* ZooKeeper's envi / environment, minus what only a JVM has. */
struct status_env {
	char host[256], os_name[65], os_arch[65], os_version[65];
	char user_name[64], user_home[CONFIG_PATH_MAX], user_dir[CONFIG_PATH_MAX];
};
#define STATUS_ENV_MAX 8
/* Fills env and out (keys as ZooKeeper names them); returns how many. */
size_t status_environment(struct status_env *env, struct status_value *out);

#endif
