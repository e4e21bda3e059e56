/* The server's status in numbers, for the four-letter words and the admin
 * server (see status.h). */
#include "net/status.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "consensus/zab.h"
#include "core/tree.h"
#include "net/ensemble.h"
#include "storage/snapfile.h"

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t load(const _Atomic uint64_t *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

/* What this server is, in ZooKeeper's words, or NULL while it serves no
 * clients. The role decides, since it is what clients get; zab_state,
 * which the replication layer sets and a standalone server never does,
 * only tells an observer from a follower and catches an election the role
 * has not yet caught up with. */
static const char *server_state(const struct sequencer_stats *ss)
{
	int zab = atomic_load(&ss->zab_state);
	switch ((enum seq_role)atomic_load(&ss->role)) {
	case SEQ_STANDALONE:
		return "standalone";
	case SEQ_LEADER:
		return zab == ZAB_LOOKING ? NULL : "leader";
	case SEQ_FOLLOWER:
		if (zab == ZAB_LOOKING)
			return NULL;
		return zab == ZAB_OBSERVING ? "observer" : "follower";
	case SEQ_NOT_SERVING:
	case SEQ_ROLE_COUNT:
		break;
	}
	return NULL;
}

static void collect_cores(const struct server *srv, struct server_status *st)
{
	struct summary_snap one;
	st->latency_min_us = UINT64_MAX;
	for (int i = 0; i < srv->cores; i++) {
		const struct core_stats *s = &srv->stats[i];
		st->packets_received += load(&s->packets_received);
		st->packets_sent += load(&s->packets_sent);
		st->connections += load(&s->connections);
		st->outstanding += load(&s->outstanding);
		st->latency_total_us += load(&s->latency_total_us);
		st->latency_count += load(&s->latency_count);
		uint64_t m = load(&s->latency_max_us);
		if (m > st->latency_max_us)
			st->latency_max_us = m;
		m = load(&s->latency_min_us);
		if (m < st->latency_min_us)
			st->latency_min_us = m;
		st->auth_failed += load(&s->auth_failed);
		st->watches += load(&s->watches);
		st->watch_paths += load(&s->watch_paths);
		st->watch_sessions += load(&s->watch_sessions);
		summary_read(&s->update_latency, &one);
		summary_snap_add(&st->summaries[STATUS_UPDATE], &one);
	}
	if (st->latency_min_us == UINT64_MAX)
		st->latency_min_us = 0;
}

static void collect_ensemble(const struct server *srv, const struct sequencer_stats *ss,
			     struct server_status *st)
{
	const struct config *cfg = srv->cfg;
	st->ensemble = true;
	st->epoch = atomic_load(&ss->epoch);
	st->leader_id = atomic_load(&ss->leader_sid);
	st->learners = atomic_load(&ss->followers);
	st->synced_followers = atomic_load(&ss->synced_followers);
	st->synced_observers = atomic_load(&ss->synced_observers);
	for (uint32_t i = 0; i < cfg->server_count; i++)
		st->quorum_size += !cfg->servers[i].observer;
	const struct replica_stats *rs = replica_stats(ensemble_replica(srv->ens));
	summary_read(&rs->election_us, &st->summaries[STATUS_ELECTION]);
	st->looking_count = load(&rs->looking_count);
}

static void collect_quota(const struct quota_counters *qc, struct server_status *st)
{
	uint32_t n = atomic_load_explicit(&qc->used, memory_order_acquire);
	for (uint32_t i = 0; i < n; i++) {
		snprintf(st->quota_keys[i], sizeof st->quota_keys[i],
			 "%s_quota_exceeded_error_per_namespace", qc->ns[i].name);
		st->quota_exceeded[i] =
		    atomic_load_explicit(&qc->ns[i].exceeded, memory_order_relaxed);
	}
	st->quota_namespaces = n;
}

void status_collect(const struct server *srv, struct server_status *st)
{
	memset(st, 0, sizeof *st);
	for (int i = 0; i < STATUS_SUMMARY_COUNT; i++)
		summary_snap_clear(&st->summaries[i]);
	const struct sequencer_stats *ss = sequencer_stats(srv->seq);
	st->state = server_state(ss);
	collect_cores(srv, st);
	st->zxid = atomic_load(&ss->zxid);
	st->zxid_durable = atomic_load(&ss->zxid_durable);
	st->txnlog_failed = atomic_load(&ss->storage_failed);
	st->znodes = atomic_load(&ss->znodes);
	st->sessions = atomic_load(&ss->sessions);
	st->snap_zxid = atomic_load(&ss->snap_zxid);
	const struct tree_version *v = tree_acquire(sequencer_tree(srv->seq));
	st->ephemerals = v->ephemerals;
	st->bytes_approx = v->bytes_approx;
	if (srv->ens)
		collect_ensemble(srv, ss, st);
	if (srv->wal_stats) {
		summary_read(&srv->wal_stats->sync_us, &st->summaries[STATUS_FSYNC]);
		st->fsync_slow = load(&srv->wal_stats->sync_slow);
	}
	summary_read(snapfile_write_time(), &st->summaries[STATUS_SNAPSHOT]);
	st->uptime_ms = wall_ms() - srv->start_ms;
	st->cores = srv->cores;
	st->open_fds = st->max_fds = -1;
	collect_quota(&ss->quota, st);
}

void status_collect_fds(struct server_status *st)
{
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		int64_t n = 0;
		while (readdir(d))
			n++;
		closedir(d);
		st->open_fds = n - 3; /* ".", ".." and d's own descriptor */
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		st->max_fds = rl.rlim_cur == RLIM_INFINITY ? INT64_MAX : (int64_t)rl.rlim_cur;
}

const char *status_peer_state(const struct server_status *st)
{
	if (!st->ensemble || !st->state)
		return NULL;
	/* A server that still syncs serves no clients: always broadcast. */
	if (strcmp(st->state, "leader") == 0)
		return "leading - broadcast";
	if (strcmp(st->state, "observer") == 0)
		return "observing - broadcast";
	return "following - broadcast";
}

double status_avg_latency_ms(const struct server_status *st)
{
	if (!st->latency_count)
		return 0.0;
	return (double)st->latency_total_us / (double)st->latency_count / 1000.0;
}

uint64_t status_min_latency_ms(const struct server_status *st)
{
	return st->latency_min_us / 1000;
}

uint64_t status_max_latency_ms(const struct server_status *st)
{
	return st->latency_max_us / 1000;
}

static uint64_t dir_bytes(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return 0;
	uint64_t total = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] != '.' && fstatat(dirfd(d), e->d_name, &st, 0) == 0 &&
		    S_ISREG(st.st_mode))
			total += (uint64_t)st.st_size;
	}
	closedir(d);
	return total;
}

uint64_t status_snap_dir_bytes(const struct config *cfg)
{
	char p[CONFIG_PATH_MAX + 16];
	snprintf(p, sizeof p, "%s/snapshots", cfg->data_dir);
	return dir_bytes(p);
}

uint64_t status_log_dir_bytes(const struct config *cfg)
{
	char p[CONFIG_PATH_MAX + 16];
	snprintf(p, sizeof p, "%s/txnlog",
		 cfg->data_log_dir[0] ? cfg->data_log_dir : cfg->data_dir);
	return dir_bytes(p);
}

void status_reset(struct server *srv)
{
	for (int i = 0; i < srv->cores; i++) {
		struct core_stats *s = &srv->stats[i];
		atomic_store_explicit(&s->packets_received, 0, memory_order_relaxed);
		atomic_store_explicit(&s->packets_sent, 0, memory_order_relaxed);
		atomic_store_explicit(&s->latency_total_us, 0, memory_order_relaxed);
		atomic_store_explicit(&s->latency_count, 0, memory_order_relaxed);
		atomic_store_explicit(&s->latency_max_us, 0, memory_order_relaxed);
		atomic_store_explicit(&s->latency_min_us, UINT64_MAX, memory_order_relaxed);
		summary_reset(&s->update_latency);
	}
}

/* ---- the monitor table ---- */

struct table {
	struct status_value *v;
	size_t n;
};

static void add_int(struct table *t, const char *key, int64_t i)
{
	RK_ASSERT(t->n < STATUS_MONITOR_MAX);
	t->v[t->n++] = (struct status_value){.key = key, .kind = STATUS_INT, .i = i};
}

static void add_double(struct table *t, const char *key, double d)
{
	RK_ASSERT(t->n < STATUS_MONITOR_MAX);
	t->v[t->n++] = (struct status_value){.key = key, .kind = STATUS_DOUBLE, .d = d};
}

static void add_string(struct table *t, const char *key, const char *s)
{
	RK_ASSERT(t->n < STATUS_MONITOR_MAX);
	t->v[t->n++] = (struct status_value){.key = key, .kind = STATUS_STRING, .s = s};
}

static void add_zxid(struct table *t, const char *key, int64_t zxid)
{
	RK_ASSERT(t->n < STATUS_MONITOR_MAX);
	t->v[t->n++] = (struct status_value){.key = key, .kind = STATUS_ZXID, .i = zxid};
}

/* Summary keys as ZooKeeper's monitor prints them: avg_, min_, max_, cnt_,
 * sum_ + name, in milliseconds (avg a double, the rest whole), and for
 * updatelatency also p50_ .. p999_ (since start or the last srst). */
static const char *const summary_keys[STATUS_SUMMARY_COUNT][9] = {
    [STATUS_FSYNC] = {"avg_fsynctime", "min_fsynctime", "max_fsynctime", "cnt_fsynctime",
		      "sum_fsynctime"},
    [STATUS_SNAPSHOT] = {"avg_snapshottime", "min_snapshottime", "max_snapshottime",
			 "cnt_snapshottime", "sum_snapshottime"},
    [STATUS_ELECTION] = {"avg_election_time", "min_election_time", "max_election_time",
			 "cnt_election_time", "sum_election_time"},
    [STATUS_UPDATE] = {"avg_updatelatency", "min_updatelatency", "max_updatelatency",
		       "cnt_updatelatency", "sum_updatelatency", "p50_updatelatency",
		       "p95_updatelatency", "p99_updatelatency", "p999_updatelatency"},
};

static void add_summary(struct table *t, const struct summary_snap *s, enum status_summary which)
{
	const char *const *k = summary_keys[which];
	double avg = s->count ? (double)s->sum / (double)s->count / 1000.0 : 0.0;
	add_double(t, k[0], avg);
	add_int(t, k[1], s->count ? (int64_t)(s->min / 1000) : 0);
	add_int(t, k[2], (int64_t)(s->max / 1000));
	add_int(t, k[3], (int64_t)s->count);
	add_int(t, k[4], (int64_t)(s->sum / 1000));
	static const double q[] = {0.5, 0.95, 0.99, 0.999};
	for (int i = 0; i < 4 && k[5 + i]; i++) {
		double v = summary_quantile(s, NULL, q[i]);
		add_int(t, k[5 + i], isnan(v) ? 0 : (int64_t)(v / 1000.0));
	}
}

/* zk_peer_state, zk_learners, zk_synced_followers, zk_synced_observers and
 * zk_pending_syncs are ZooKeeper 3.8's. zk_followers is the name ZooKeeper
 * 3.4 and 3.5 gave zk_learners, which monitoring scripts still read.
 * Ringkeeper's own: zk_epoch and zk_leader_id. */
static void add_ensemble(struct table *t, const struct server_status *st)
{
	add_string(t, "peer_state", status_peer_state(st));
	if (strcmp(st->state, "leader") == 0) {
		add_int(t, "learners", st->learners);
		add_int(t, "followers", st->learners);
		add_int(t, "synced_followers", st->synced_followers);
		add_int(t, "synced_observers", st->synced_observers);
		/* A sync is ordered with the writes: none waits apart. */
		add_int(t, "pending_syncs", 0);
	}
	add_int(t, "epoch", st->epoch);
	add_int(t, "leader_id", st->leader_id);
}

size_t status_monitor(const struct server_status *st, struct status_value *out)
{
	RK_ASSERT(st->state);
	struct table t = {out, 0};
	add_string(&t, "version", STATUS_VERSION);
	add_string(&t, "server_state", st->state);
	if (st->ensemble)
		add_ensemble(&t, st);
	add_double(&t, "avg_latency", status_avg_latency_ms(st));
	add_int(&t, "max_latency", (int64_t)status_max_latency_ms(st));
	add_int(&t, "min_latency", (int64_t)status_min_latency_ms(st));
	add_int(&t, "packets_received", (int64_t)st->packets_received);
	add_int(&t, "packets_sent", (int64_t)st->packets_sent);
	add_int(&t, "num_alive_connections", (int64_t)st->connections);
	add_int(&t, "outstanding_requests", (int64_t)st->outstanding);
	add_int(&t, "znode_count", (int64_t)st->znodes);
	add_int(&t, "watch_count", (int64_t)st->watches);
	add_int(&t, "ephemerals_count", (int64_t)st->ephemerals);
	add_int(&t, "approximate_data_size", (int64_t)st->bytes_approx);
	if (st->open_fds >= 0)
		add_int(&t, "open_file_descriptor_count", st->open_fds);
	if (st->max_fds >= 0)
		add_int(&t, "max_file_descriptor_count", st->max_fds);
	add_int(&t, "global_sessions", (int64_t)st->sessions);
	add_int(&t, "uptime", st->uptime_ms);
	add_int(&t, "auth_failed_count", (int64_t)st->auth_failed);
	if (st->ensemble) {
		add_int(&t, "quorum_size", st->quorum_size);
		add_int(&t, "looking_count", (int64_t)st->looking_count);
	}
	for (int i = 0; i < STATUS_SUMMARY_COUNT; i++)
		add_summary(&t, &st->summaries[i], (enum status_summary)i);
	add_zxid(&t, "last_zxid", st->zxid);
	add_zxid(&t, "last_durable_zxid", st->zxid_durable);
	add_int(&t, "txnlog_failed", st->txnlog_failed);
	add_int(&t, "cores", st->cores);
	for (uint32_t i = 0; i < st->quota_namespaces; i++)
		add_int(&t, st->quota_keys[i], (int64_t)st->quota_exceeded[i]);
	return t.n;
}

size_t status_environment(struct status_env *env, struct status_value *out)
{
	memset(env, 0, sizeof *env);
	gethostname(env->host, sizeof env->host - 1);
	struct utsname u;
	if (uname(&u) == 0) {
		snprintf(env->os_name, sizeof env->os_name, "%s", u.sysname);
		snprintf(env->os_arch, sizeof env->os_arch, "%s", u.machine);
		snprintf(env->os_version, sizeof env->os_version, "%s", u.release);
	}
	/* The environment, not getpwuid: a name service lookup may block. */
	const char *user = getenv("USER") ? getenv("USER") : getenv("LOGNAME");
	if (user)
		snprintf(env->user_name, sizeof env->user_name, "%s", user);
	else
		snprintf(env->user_name, sizeof env->user_name, "%u", (unsigned)getuid());
	snprintf(env->user_home, sizeof env->user_home, "%s", getenv("HOME") ? getenv("HOME") : "");
	if (!getcwd(env->user_dir, sizeof env->user_dir))
		env->user_dir[0] = 0;
	struct table t = {out, 0};
	add_string(&t, "zookeeper.version", STATUS_VERSION);
	add_string(&t, "host.name", env->host);
	add_string(&t, "os.name", env->os_name);
	add_string(&t, "os.arch", env->os_arch);
	add_string(&t, "os.version", env->os_version);
	add_string(&t, "user.name", env->user_name);
	add_string(&t, "user.home", env->user_home);
	add_string(&t, "user.dir", env->user_dir);
	RK_ASSERT(t.n <= STATUS_ENV_MAX);
	return t.n;
}
