/* Four-letter words: status text in ZooKeeper's formats. */
#include "net/fourlw.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/tree.h"
#include "net/status.h"

#define NOT_SERVING STATUS_NOT_SERVING

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

/* srvr and stat (with clients: every core's connections), as ZooKeeper
 * 3.8 prints them. Its leader adds "Proposal sizes last/min/max":
 * Ringkeeper does not measure proposals, so the line is left out rather
 * than filled with made-up figures. The epoch is in the Zxid's top 32
 * bits, and in mntr. */
static void srvr(const struct fourlw_ctx *c, struct jute_out *out, const struct report_ctx *clients)
{
	struct server_status st;
	status_collect(c->srv, &st);
	if (!st.state) {
		put(out, NOT_SERVING "\n");
		return;
	}
	put(out, "Zookeeper version: %s\n", STATUS_VERSION);
	if (clients) {
		put(out, "Clients:\n");
		report_print_clients(clients, out);
	}
	put(out, "Latency min/avg/max: %lu/%.4f/%lu\n", (unsigned long)status_min_latency_ms(&st),
	    status_avg_latency_ms(&st), (unsigned long)status_max_latency_ms(&st));
	put(out, "Received: %lu\n", (unsigned long)st.packets_received);
	put(out, "Sent: %lu\n", (unsigned long)st.packets_sent);
	put(out, "Connections: %lu\n", (unsigned long)st.connections);
	put(out, "Outstanding: %lu\n", (unsigned long)st.outstanding);
	put(out, "Zxid: 0x%lx\n", (unsigned long)st.zxid);
	put(out, "Mode: %s\n", st.state);
	put(out, "Node count: %lu\n", (unsigned long)st.znodes);
	if (st.txnlog_failed)
		put(out, "Txn log: FAILED, writes are not acknowledged (see the server log)\n");
}

/* mntr: status_monitor's table as "zk_<key>\t<value>" lines, the same
 * table the admin server's monitor prints as JSON. */
static void mntr(const struct fourlw_ctx *c, struct jute_out *out)
{
	struct server_status st;
	status_collect(c->srv, &st);
	if (!st.state) {
		put(out, NOT_SERVING "\n");
		return;
	}
	status_collect_fds(&st);
	struct status_value v[STATUS_MONITOR_MAX];
	size_t n = status_monitor(&st, v);
	for (size_t i = 0; i < n; i++) {
		switch (v[i].kind) {
		case STATUS_INT:
			put(out, "zk_%s\t%ld\n", v[i].key, (long)v[i].i);
			break;
		case STATUS_DOUBLE:
			put(out, "zk_%s\t%.4f\n", v[i].key, v[i].d);
			break;
		case STATUS_STRING:
			put(out, "zk_%s\t%s\n", v[i].key, v[i].s);
			break;
		case STATUS_ZXID:
			put(out, "zk_%s\t0x%lx\n", v[i].key, (unsigned long)v[i].i);
			break;
		case STATUS_KIND_COUNT:
			break;
		}
	}
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
	struct server_status st;
	status_collect(c->srv, &st);
	/* Paths are counted per core: one watched on two cores counts twice. */
	put(out, "%lu connections watching %lu paths\n", (unsigned long)st.watch_sessions,
	    (unsigned long)st.watch_paths);
	put(out, "Total watches:%lu\n", (unsigned long)st.watches);
}

/* ZooKeeper's dirs: bytes of snapshots and of txn logs. */
static void dirs(const struct fourlw_ctx *c, struct jute_out *out)
{
	put(out, "datadir_size: %lu\n", (unsigned long)status_snap_dir_bytes(c->srv->cfg));
	put(out, "logdir_size: %lu\n", (unsigned long)status_log_dir_bytes(c->srv->cfg));
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
	struct server_status st;
	status_collect(c->srv, &st);
	if (!st.state) {
		put(out, NOT_SERVING); /* ZooKeeper's hash adds no newline */
		return;
	}
	const struct tree_version *v = tree_acquire(sequencer_tree(c->srv->seq));
	uint64_t digest = tree_digest(v);
	put(out, "%lx: %ld\n", (unsigned long)v->zxid, (long)(int64_t)digest);
}

static void envi(struct jute_out *out)
{
	struct status_env env;
	struct status_value v[STATUS_ENV_MAX];
	size_t n = status_environment(&env, v);
	put(out, "Environment:\n");
	for (size_t i = 0; i < n; i++)
		put(out, "%s=%s\n", v[i].key, v[i].s);
}

static void isro(const struct fourlw_ctx *c, struct jute_out *out)
{
	struct server_status st;
	status_collect(c->srv, &st);
	put(out, st.state ? "rw" : "null");
}

/* The words that print what every core holds, and the report each needs. */
static enum report_kind report_word(const char *w)
{
	static const struct {
		const char *word;
		enum report_kind kind;
	} words[] = {{"cons", REPORT_CONNS},   {"stat", REPORT_CONNS},	 {"dump", REPORT_DUMP},
		     {"wchc", REPORT_WATCHES}, {"wchp", REPORT_WATCHES}, {"crst", REPORT_RESET}};
	for (size_t i = 0; i < sizeof words / sizeof *words; i++)
		if (strcmp(w, words[i].word) == 0)
			return words[i].kind;
	return REPORT_KIND_COUNT;
}

enum report_kind fourlw_report_kind(const struct fourlw_ctx *c, uint32_t raw)
{
	char w[5];
	word_of(raw, w);
	enum report_kind kind = report_word(w);
	if (kind == REPORT_KIND_COUNT || !whitelisted(c->srv->cfg->four_lw_whitelist, w))
		return REPORT_KIND_COUNT;
	struct server_status st;
	status_collect(c->srv, &st);
	return st.state ? kind : REPORT_KIND_COUNT;
}

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void fourlw_run_report(const struct fourlw_ctx *c, uint32_t raw, const struct report_part *parts,
		       int count, struct jute_out *out)
{
	char w[5];
	word_of(raw, w);
	struct server_status st;
	status_collect(c->srv, &st);
	if (!st.state) {
		put(out, NOT_SERVING "\n"); /* it stopped serving meanwhile */
		return;
	}
	/* ZooKeeper's standalone server and leader track sessions in expiry
	 * buckets; its followers and observers list them. */
	bool sets = strcmp(st.state, "standalone") == 0 || strcmp(st.state, "leader") == 0;
	struct report_ctx rc = {.parts = parts,
				.count = count,
				.now_mono_ms = clock_ms(CLOCK_MONOTONIC),
				.now_wall_ms = clock_ms(CLOCK_REALTIME),
				.tick_ms = c->srv->cfg->tick_time_ms,
				.session_sets = sets};
	if (strcmp(w, "stat") == 0)
		srvr(c, out, &rc);
	else if (strcmp(w, "cons") == 0)
		report_print_cons(&rc, out);
	else if (strcmp(w, "dump") == 0)
		report_print_dump(&rc, out);
	else if (strcmp(w, "wchc") == 0 || strcmp(w, "wchp") == 0)
		report_print_watches(&rc, w[3] == 'p', out);
	else if (strcmp(w, "crst") == 0)
		put(out, "Connection stats reset.\n");
}

void fourlw_busy(const struct fourlw_ctx *c, uint32_t raw, struct jute_out *out)
{
	char w[5];
	word_of(raw, w);
	put(out, "%s is not executed: too many reports are being gathered; try again.\n", w);
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
	else if (strcmp(w, "srvr") == 0 || strcmp(w, "stat") == 0)
		srvr(c, out, NULL); /* stat gets here only while not serving */
	else if (strcmp(w, "mntr") == 0)
		mntr(c, out);
	else if (strcmp(w, "conf") == 0)
		conf(c, out);
	else if (strcmp(w, "hash") == 0)
		hash(c, out);
	else if (strcmp(w, "isro") == 0)
		isro(c, out);
	else if (strcmp(w, "wchs") == 0)
		wchs(c, out);
	else if (strcmp(w, "dirs") == 0)
		dirs(c, out);
	else if (strcmp(w, "srst") == 0) {
		status_reset(c->srv);
		put(out, "Server stats reset.\n");
	} else if (report_word(w) != REPORT_KIND_COUNT)
		put(out, NOT_SERVING "\n"); /* served: fourlw_run_report */
	else if (strcmp(w, "gtmk") == 0 || strcmp(w, "stmk") == 0)
		put(out, "0\n"); /* no request tracing: the mask is always 0 */
	else if (strcmp(w, "envi") == 0)
		envi(out);
	else
		put(out, "%s is not implemented by Ringkeeper yet.\n", w);
}
