/* Four-letter words: status text in ZooKeeper's formats. */
#include "net/fourlw.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <sys/stat.h>

#include "consensus/zab.h"
#include "core/tree.h"

#define RK_VERSION_LINE "3.9.0-ringkeeper-0.1.0, built on " __DATE__

/* ZooKeeper's answer to most words while it serves no clients. */
#define NOT_SERVING "This ZooKeeper instance is not currently serving requests"

static const char *const commands[] = {"conf", "cons", "crst", "dirs", "dump", "envi",
				       "gtmk", "ruok", "stmk", "srvr", "srst", "stat",
				       "wchc", "wchp", "wchs", "mntr", "isro", "hash"};

static void word_of(uint32_t raw, char w[5])
{
	w[0] = (char)(raw >> 24);
	w[1] = (char)(raw >> 16);
	w[2] = (char)(raw >> 8);
	w[3] = (char)raw;
	w[4] = 0;
}

bool fourlw_is_command(uint32_t raw)
{
	char w[5];
	word_of(raw, w);
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
		if (memcmp(w, commands[i], 4) == 0)
			return true;
	return false;
}

static bool whitelisted(const char *list, const char *w)
{
	const char *p = list;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *e = p;
		while (*e && *e != ',' && *e != ' ')
			e++;
		if ((e - p == 1 && *p == '*') || (e - p == 4 && memcmp(p, w, 4) == 0))
			return true;
		p = e;
	}
	return false;
}

static void put(struct jute_out *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct jute_out *out, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line)
		n = sizeof line - 1;
	uint8_t *d = jute_reserve(out, (size_t)n);
	if (d)
		memcpy(d, line, (size_t)n);
}

struct totals {
	uint64_t received, sent, connections, outstanding, lat_total, lat_count, lat_max, lat_min;
};

static struct totals sum(const struct server *srv)
{
	struct totals t = {.lat_min = UINT64_MAX};
	for (int i = 0; i < srv->cores; i++) {
		const struct core_stats *s = &srv->stats[i];
		t.received += atomic_load_explicit(&s->packets_received, memory_order_relaxed);
		t.sent += atomic_load_explicit(&s->packets_sent, memory_order_relaxed);
		t.connections += atomic_load_explicit(&s->connections, memory_order_relaxed);
		t.outstanding += atomic_load_explicit(&s->outstanding, memory_order_relaxed);
		t.lat_total += atomic_load_explicit(&s->latency_total_us, memory_order_relaxed);
		t.lat_count += atomic_load_explicit(&s->latency_count, memory_order_relaxed);
		uint64_t m = atomic_load_explicit(&s->latency_max_us, memory_order_relaxed);
		if (m > t.lat_max)
			t.lat_max = m;
		m = atomic_load_explicit(&s->latency_min_us, memory_order_relaxed);
		if (m < t.lat_min)
			t.lat_min = m;
	}
	if (t.lat_min == UINT64_MAX)
		t.lat_min = 0;
	return t;
}

/* What this server is, in ZooKeeper's words (srvr's Mode, mntr's
 * zk_server_state), or NULL while it serves no clients (electing, or
 * syncing with a leader), when ZooKeeper answers NOT_SERVING instead. The
 * role decides, since it is what clients get; zab_state, which the
 * replication layer sets and a standalone server never does, only tells an
 * observer from a follower and catches an election the role has not yet
 * caught up with. */
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

/* srvr and stat, as ZooKeeper 3.8 prints them. Its leader adds "Proposal
 * sizes last/min/max": Ringkeeper does not measure proposals, so the line
 * is left out rather than filled with made-up figures. The epoch is in the
 * Zxid's top 32 bits, and in mntr. */
static void srvr(const struct fourlw_ctx *c, struct jute_out *out, bool with_clients)
{
	const struct sequencer_stats *ss = sequencer_stats(c->srv->seq);
	const char *mode = server_state(ss);
	if (!mode) {
		put(out, NOT_SERVING "\n");
		return;
	}
	struct totals t = sum(c->srv);
	put(out, "Zookeeper version: %s\n", RK_VERSION_LINE);
	if (with_clients)
		put(out, "Clients:\n\n");
	double avg = t.lat_count ? (double)t.lat_total / (double)t.lat_count / 1000.0 : 0.0;
	put(out, "Latency min/avg/max: %lu/%.4f/%lu\n", (unsigned long)(t.lat_min / 1000), avg,
	    (unsigned long)(t.lat_max / 1000));
	put(out, "Received: %lu\n", (unsigned long)t.received);
	put(out, "Sent: %lu\n", (unsigned long)t.sent);
	put(out, "Connections: %lu\n", (unsigned long)t.connections);
	put(out, "Outstanding: %lu\n", (unsigned long)t.outstanding);
	put(out, "Zxid: 0x%lx\n", (unsigned long)atomic_load(&ss->zxid));
	put(out, "Mode: %s\n", mode);
	put(out, "Node count: %lu\n", (unsigned long)atomic_load(&ss->znodes));
	if (atomic_load(&ss->storage_failed))
		put(out, "Txn log: FAILED, writes are not acknowledged (see the server log)\n");
}

/* mntr's lines for an ensemble member. zk_peer_state, zk_learners,
 * zk_synced_followers, zk_synced_observers and zk_pending_syncs are
 * ZooKeeper 3.8's (the peer
 * state is always "- broadcast": a server that still syncs serves no
 * clients and prints NOT_SERVING). zk_followers is the name ZooKeeper 3.4
 * and 3.5 gave zk_learners, which monitoring scripts still read.
 * Ringkeeper's own: zk_epoch (the current epoch)
 * and zk_leader_id (the leader's server id). */
static void mntr_ensemble(const struct sequencer_stats *ss, const char *mode, struct jute_out *out)
{
	const char *peer = strcmp(mode, "leader") == 0	   ? "leading"
			   : strcmp(mode, "observer") == 0 ? "observing"
							   : "following";
	put(out, "zk_peer_state\t%s - broadcast\n", peer);
	if (strcmp(mode, "leader") == 0) {
		unsigned learners = atomic_load(&ss->followers);
		put(out, "zk_learners\t%u\n", learners);
		put(out, "zk_followers\t%u\n", learners);
		put(out, "zk_synced_followers\t%u\n", (unsigned)atomic_load(&ss->synced_followers));
		put(out, "zk_synced_observers\t%u\n", (unsigned)atomic_load(&ss->synced_observers));
		/* A sync is ordered with the writes: none waits apart. */
		put(out, "zk_pending_syncs\t0\n");
	}
	put(out, "zk_epoch\t%u\n", (unsigned)atomic_load(&ss->epoch));
	put(out, "zk_leader_id\t%u\n", (unsigned)atomic_load(&ss->leader_sid));
}

static void mntr(const struct fourlw_ctx *c, struct jute_out *out)
{
	const struct sequencer_stats *ss = sequencer_stats(c->srv->seq);
	const char *mode = server_state(ss);
	if (!mode) {
		put(out, NOT_SERVING "\n");
		return;
	}
	struct totals t = sum(c->srv);
	uint64_t watches = 0;
	for (int i = 0; i < c->srv->cores; i++)
		watches += atomic_load_explicit(&c->srv->stats[i].watches, memory_order_relaxed);
	double avg = t.lat_count ? (double)t.lat_total / (double)t.lat_count / 1000.0 : 0.0;
	put(out, "zk_version\t%s\n", RK_VERSION_LINE);
	put(out, "zk_server_state\t%s\n", mode);
	if (strcmp(mode, "standalone") != 0)
		mntr_ensemble(ss, mode, out);
	put(out, "zk_avg_latency\t%.4f\n", avg);
	put(out, "zk_max_latency\t%lu\n", (unsigned long)(t.lat_max / 1000));
	put(out, "zk_min_latency\t%lu\n", (unsigned long)(t.lat_min / 1000));
	put(out, "zk_packets_received\t%lu\n", (unsigned long)t.received);
	put(out, "zk_packets_sent\t%lu\n", (unsigned long)t.sent);
	put(out, "zk_num_alive_connections\t%lu\n", (unsigned long)t.connections);
	put(out, "zk_outstanding_requests\t%lu\n", (unsigned long)t.outstanding);
	put(out, "zk_znode_count\t%lu\n", (unsigned long)atomic_load(&ss->znodes));
	put(out, "zk_watch_count\t%lu\n", (unsigned long)watches);
	put(out, "zk_global_sessions\t%lu\n", (unsigned long)atomic_load(&ss->sessions));
	put(out, "zk_last_zxid\t0x%lx\n", (unsigned long)atomic_load(&ss->zxid));
	put(out, "zk_last_durable_zxid\t0x%lx\n", (unsigned long)atomic_load(&ss->zxid_durable));
	put(out, "zk_txnlog_failed\t%d\n", atomic_load(&ss->storage_failed) ? 1 : 0);
	put(out, "zk_cores\t%d\n", c->srv->cores);
}

static void conf(const struct fourlw_ctx *c, struct jute_out *out)
{
	const struct config *cfg = c->srv->cfg;
	put(out, "clientPort=%d\n", c->srv->bound_port);
	put(out, "clientPortAddress=%s\n", cfg->client_port_address);
	put(out, "dataDir=%s\n", cfg->data_dir);
	put(out, "dataLogDir=%s\n", cfg->data_log_dir[0] ? cfg->data_log_dir : cfg->data_dir);
	put(out, "tickTime=%d\n", cfg->tick_time_ms);
	put(out, "maxClientCnxns=%d\n", cfg->max_client_cnxns);
	put(out, "minSessionTimeout=%d\n", cfg->min_session_timeout_ms);
	put(out, "maxSessionTimeout=%d\n", cfg->max_session_timeout_ms);
	put(out, "serverId=0\n");
}

static void wchs(const struct fourlw_ctx *c, struct jute_out *out)
{
	uint64_t w = 0, paths = 0, sessions = 0;
	for (int i = 0; i < c->srv->cores; i++) {
		const struct core_stats *s = &c->srv->stats[i];
		w += atomic_load_explicit(&s->watches, memory_order_relaxed);
		paths += atomic_load_explicit(&s->watch_paths, memory_order_relaxed);
		sessions += atomic_load_explicit(&s->watch_sessions, memory_order_relaxed);
	}
	/* Paths are counted per core: one watched on two cores counts twice. */
	put(out, "%lu connections watching %lu paths\n", (unsigned long)sessions,
	    (unsigned long)paths);
	put(out, "Total watches:%lu\n", (unsigned long)w);
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

/* ZooKeeper's dirs: bytes of snapshots and of txn logs. */
static void dirs(const struct fourlw_ctx *c, struct jute_out *out)
{
	const struct config *cfg = c->srv->cfg;
	char p[CONFIG_PATH_MAX + 16];
	snprintf(p, sizeof p, "%s/snapshots", cfg->data_dir);
	put(out, "datadir_size: %lu\n", (unsigned long)dir_bytes(p));
	snprintf(p, sizeof p, "%s/txnlog",
		 cfg->data_log_dir[0] ? cfg->data_log_dir : cfg->data_dir);
	put(out, "logdir_size: %lu\n", (unsigned long)dir_bytes(p));
}

/* hash. ZooKeeper prints its digest log: a line "<zxid>: <digest>" (zxid
 * in hex without 0x, the digest a Java long in signed decimal) for every
 * 128th zxid. Ringkeeper keeps no log and prints one such line, for the
 * tree version published now, e.g. "100000005: -3524157896270061224":
 * servers of an ensemble that print the same zxid must print the same
 * digest. The digest is tree_digest's, not ZooKeeper's, so compare it
 * only between Ringkeeper servers. The version is acquired once, so the
 * digest is of exactly the zxid printed; it costs O(nodes) on this core's
 * thread, which is fine for a diagnostic. */
static void hash(const struct fourlw_ctx *c, struct jute_out *out)
{
	if (!server_state(sequencer_stats(c->srv->seq))) {
		put(out, NOT_SERVING); /* ZooKeeper's hash adds no newline */
		return;
	}
	const struct tree_version *v = tree_acquire(sequencer_tree(c->srv->seq));
	uint64_t digest = tree_digest(v);
	put(out, "%lx: %ld\n", (unsigned long)v->zxid, (long)(int64_t)digest);
}

/* srst: zero the request counters and latencies (racy by design: they are
 * statistics, each written by its own core). */
static void srst(const struct fourlw_ctx *c, struct jute_out *out)
{
	for (int i = 0; i < c->srv->cores; i++) {
		struct core_stats *s = &c->srv->stats[i];
		atomic_store_explicit(&s->packets_received, 0, memory_order_relaxed);
		atomic_store_explicit(&s->packets_sent, 0, memory_order_relaxed);
		atomic_store_explicit(&s->latency_total_us, 0, memory_order_relaxed);
		atomic_store_explicit(&s->latency_count, 0, memory_order_relaxed);
		atomic_store_explicit(&s->latency_max_us, 0, memory_order_relaxed);
		atomic_store_explicit(&s->latency_min_us, UINT64_MAX, memory_order_relaxed);
	}
	put(out, "Server stats reset.\n");
}

void fourlw_run(const struct fourlw_ctx *c, uint32_t raw, struct jute_out *out)
{
	char w[5];
	word_of(raw, w);
	if (!whitelisted(c->srv->cfg->four_lw_whitelist, w)) {
		put(out, "%s is not executed because it is not in the whitelist.\n", w);
		return;
	}
	if (strcmp(w, "ruok") == 0)
		put(out, "imok");
	else if (strcmp(w, "srvr") == 0)
		srvr(c, out, false);
	else if (strcmp(w, "stat") == 0)
		srvr(c, out, true);
	else if (strcmp(w, "mntr") == 0)
		mntr(c, out);
	else if (strcmp(w, "conf") == 0)
		conf(c, out);
	else if (strcmp(w, "hash") == 0)
		hash(c, out);
	else if (strcmp(w, "isro") == 0)
		put(out, server_state(sequencer_stats(c->srv->seq)) ? "rw" : "null");
	else if (strcmp(w, "wchs") == 0)
		wchs(c, out);
	else if (strcmp(w, "dirs") == 0)
		dirs(c, out);
	else if (strcmp(w, "srst") == 0)
		srst(c, out);
	else if (strcmp(w, "crst") == 0)
		put(out, "Connection stats reset.\n");
	else if (strcmp(w, "gtmk") == 0 || strcmp(w, "stmk") == 0)
		put(out, "0\n"); /* no request tracing: the mask is always 0 */
	else if (strcmp(w, "envi") == 0)
		put(out, "Environment:\nzookeeper.version=%s\n", RK_VERSION_LINE);
	else
		put(out, "%s is not implemented by Ringkeeper yet.\n", w);
}
