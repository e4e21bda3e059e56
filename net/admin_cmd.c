/* The admin server's commands, as ZooKeeper 3.8's AdminServer answers
 * them (see admin_cmd.h). */
#include "net/admin_cmd.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/tree.h"
#include "net/admin.h"
#include "net/json.h"
#include "net/status.h"
#include "storage/snapfile.h"

/* tree_digest is not ZooKeeper's digest: a version ZooKeeper never uses
 * (it has 1 and 2) keeps tools from comparing the two. */
#define DIGEST_VERSION 100

struct cmd_ctx {
	struct server *srv;
	struct server_status st;
	struct json j;
	const char *error; /* NULL: "error" : null */
};

struct reported {
	const struct report_part *parts;
	int count;
};

struct command {
	const char *name;
	const char *aliases[3];
	bool needs_serving; /* else answered while electing too */
	void (*run)(struct cmd_ctx *x);
	/* Or, for the commands answered from every core's report: */
	int report; /* enum report_kind, or -1 */
	void (*run_report)(struct cmd_ctx *x, const struct reported *r);
};

/* Past this much JSON, connections are counted instead of listed, so the
 * answer stays under the admin server's response bound. */
#define CONNS_JSON_MAX (ADMIN_RESPONSE_MAX - (64u << 10))

/* ---- helpers ---- */

static void kv_int(struct cmd_ctx *x, const char *key, int64_t v)
{
	json_key(&x->j, key);
	json_int(&x->j, v);
}

static void kv_str(struct cmd_ctx *x, const char *key, const char *v)
{
	json_key(&x->j, key);
	json_string(&x->j, v);
}

static void kv_bool(struct cmd_ctx *x, const char *key, bool v)
{
	json_key(&x->j, key);
	json_bool(&x->j, v);
}

static void kv_double(struct cmd_ctx *x, const char *key, double v)
{
	json_key(&x->j, key);
	json_double(&x->j, v);
}

/* "host:port", IPv6 literals in brackets, as ZooKeeper prints addresses. */
static void host_port(char *buf, size_t len, const char *host, int port)
{
	snprintf(buf, len, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}

static const struct config_member *member(const struct config *cfg, int64_t id)
{
	for (uint32_t i = 0; i < cfg->server_count; i++)
		if (cfg->servers[i].id == id)
			return &cfg->servers[i];
	return NULL;
}

/* ---- the commands ---- */

static void configuration(struct cmd_ctx *x)
{
	const struct config *cfg = x->srv->cfg;
	kv_int(x, "client_port", x->srv->bound_port);
	kv_str(x, "data_dir", cfg->data_dir);
	kv_str(x, "data_log_dir", cfg->data_log_dir[0] ? cfg->data_log_dir : cfg->data_dir);
	kv_int(x, "tick_time", cfg->tick_time_ms);
	kv_int(x, "max_client_cnxns", cfg->max_client_cnxns);
	kv_int(x, "min_session_timeout", cfg->min_session_timeout_ms);
	kv_int(x, "max_session_timeout", cfg->max_session_timeout_ms);
	kv_int(x, "server_id", x->st.ensemble ? cfg->my_id : 0);
	kv_int(x, "client_port_listen_backlog", -1); /* clientPortListenBacklog: not set */
}

static void nothing(struct cmd_ctx *x)
{
}

static void dirs(struct cmd_ctx *x)
{
	kv_int(x, "datadir_size", (int64_t)status_snap_dir_bytes(x->srv->cfg));
	kv_int(x, "logdir_size", (int64_t)status_log_dir_bytes(x->srv->cfg));
}

static void environment(struct cmd_ctx *x)
{
	struct status_env env;
	struct status_value v[STATUS_ENV_MAX];
	size_t n = status_environment(&env, v);
	for (size_t i = 0; i < n; i++)
		kv_str(x, v[i].key, v[i].s);
}

static void get_trace_mask(struct cmd_ctx *x)
{
	kv_int(x, "tracemask", 0); /* no request tracing */
}

/* One digest, of the version published now (ZooKeeper lists its digest
 * log, one entry every 128 zxids). O(nodes) on core 0, as 4lw hash. */
static void hash(struct cmd_ctx *x)
{
	const struct tree_version *v = tree_acquire(sequencer_tree(x->srv->seq));
	json_key(&x->j, "digests");
	json_array_begin(&x->j);
	json_object_begin(&x->j);
	kv_int(x, "zxid", v->zxid);
	kv_int(x, "digestVersion", DIGEST_VERSION);
	kv_int(x, "digest", (int64_t)tree_digest(v));
	json_object_end(&x->j);
	json_array_end(&x->j);
}

static void is_read_only(struct cmd_ctx *x)
{
	kv_bool(x, "read_only", false);
}

/* The newest snapshot file: its zxid in hex (ZooKeeper's form, no 0x) and
 * its time in seconds; -1 for both when there is none. */
static void last_snapshot(struct cmd_ctx *x)
{
	char dir[CONFIG_PATH_MAX + 16];
	snprintf(dir, sizeof dir, "%s/snapshots", x->srv->cfg->data_dir);
	int64_t best = -1, when = -1;
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		int64_t zxid;
		bool tmp;
		struct stat sb;
		if (snapfile_name_parse(e->d_name, &zxid, &tmp) && !tmp && zxid > best &&
		    fstatat(dirfd(d), e->d_name, &sb, 0) == 0) {
			best = zxid;
			when = (int64_t)sb.st_mtime;
		}
	}
	if (d)
		closedir(d);
	char hex[20];
	snprintf(hex, sizeof hex, "%lx", (unsigned long)best);
	kv_str(x, "zxid", hex);
	kv_int(x, "timestamp", when);
}

static void leader(struct cmd_ctx *x)
{
	if (!x->st.ensemble) {
		x->error = "server is not initialized"; /* ZooKeeper's, standalone */
		return;
	}
	const struct config_member *m = member(x->srv->cfg, x->st.leader_id);
	kv_bool(x, "is_leader", strcmp(x->st.state, "leader") == 0);
	kv_int(x, "leader_id", x->st.leader_id);
	kv_str(x, "leader_ip", m ? m->host : NULL);
}

static void monitor(struct cmd_ctx *x)
{
	status_collect_fds(&x->st);
	struct status_value v[STATUS_MONITOR_MAX];
	size_t n = status_monitor(&x->st, v);
	for (size_t i = 0; i < n; i++) {
		switch (v[i].kind) {
		case STATUS_INT:
		case STATUS_ZXID:
			kv_int(x, v[i].key, v[i].i);
			break;
		case STATUS_DOUBLE:
			kv_double(x, v[i].key, v[i].d);
			break;
		case STATUS_STRING:
			kv_str(x, v[i].key, v[i].s);
			break;
		case STATUS_KIND_COUNT:
			break;
		}
	}
}

/* Response and proposal sizes are not measured: -1, ZooKeeper's "none". */
static void buffer_stats(struct cmd_ctx *x, const char *key)
{
	json_key(&x->j, key);
	json_object_begin(&x->j);
	kv_int(x, "last_buffer_size", -1);
	kv_int(x, "min_buffer_size", -1);
	kv_int(x, "max_buffer_size", -1);
	json_object_end(&x->j);
}

static void server_stats(struct cmd_ctx *x)
{
	const struct server_status *st = &x->st;
	kv_str(x, "version", STATUS_VERSION);
	kv_bool(x, "read_only", false);
	json_key(&x->j, "server_stats");
	json_object_begin(&x->j);
	kv_int(x, "packets_sent", (int64_t)st->packets_sent);
	kv_int(x, "packets_received", (int64_t)st->packets_received);
	kv_int(x, "fsync_threshold_exceed_count", (int64_t)st->fsync_slow);
	buffer_stats(x, "client_response_stats");
	kv_int(x, "data_dir_size", (int64_t)status_snap_dir_bytes(x->srv->cfg));
	kv_int(x, "log_dir_size", (int64_t)status_log_dir_bytes(x->srv->cfg));
	kv_bool(x, "provider_null", false);
	kv_str(x, "server_state", st->state);
	kv_int(x, "last_processed_zxid", st->zxid);
	kv_int(x, "outstanding_requests", (int64_t)st->outstanding);
	kv_double(x, "avg_latency", status_avg_latency_ms(st));
	kv_int(x, "max_latency", (int64_t)status_max_latency_ms(st));
	kv_int(x, "min_latency", (int64_t)status_min_latency_ms(st));
	kv_int(x, "num_alive_client_connections", (int64_t)st->connections);
	kv_int(x, "uptime", st->uptime_ms);
	kv_int(x, "auth_failed_count", (int64_t)st->auth_failed);
	kv_int(x, "non_mtlsremote_conn_count", 0); /* no TLS */
	kv_int(x, "non_mtlslocal_conn_count", 0);
	json_object_end(&x->j);
	buffer_stats(x, "client_response");
	if (strcmp(st->state, "leader") == 0)
		buffer_stats(x, "proposal_stats");
	kv_int(x, "node_count", (int64_t)st->znodes);
}

static void stat_reset(struct cmd_ctx *x)
{
	status_reset(x->srv);
}

/* The voting members, as ZooKeeper's current view of its quorum. */
static void voting_view(struct cmd_ctx *x)
{
	const struct config *cfg = x->srv->cfg;
	char a[CONFIG_ADDR_MAX + 16];
	json_key(&x->j, "current_config");
	json_object_begin(&x->j);
	for (uint32_t i = 0; x->st.ensemble && i < cfg->server_count; i++) {
		const struct config_member *m = &cfg->servers[i];
		if (m->observer)
			continue;
		char id[24];
		snprintf(id, sizeof id, "%ld", (long)m->id);
		json_key(&x->j, id);
		json_object_begin(&x->j);
		json_key(&x->j, "server_addresses");
		json_array_begin(&x->j);
		host_port(a, sizeof a, m->host, m->quorum_port);
		json_string(&x->j, a);
		json_array_end(&x->j);
		json_key(&x->j, "election_addresses");
		json_array_begin(&x->j);
		host_port(a, sizeof a, m->host, m->election_port);
		json_string(&x->j, a);
		json_array_end(&x->j);
		host_port(a, sizeof a, m->client_address, m->client_port);
		kv_str(x, "client_address", m->client_port ? a : NULL);
		kv_str(x, "learner_type", "participant");
		json_object_end(&x->j);
	}
	json_object_end(&x->j);
}

static void watch_summary(struct cmd_ctx *x)
{
	/* Paths are counted per core: one watched on two cores counts twice. */
	kv_int(x, "num_connections", (int64_t)x->st.watch_sessions);
	kv_int(x, "num_paths", (int64_t)x->st.watch_paths);
	kv_int(x, "num_total_watches", (int64_t)x->st.watches);
}

/* ZooKeeper serialises its MultipleAddresses bean; a member has one. */
static void addresses(struct cmd_ctx *x, const char *key, const char *host, int port)
{
	char a[CONFIG_ADDR_MAX + 16], any[32];
	host_port(a, sizeof a, host, port);
	snprintf(any, sizeof any, "0.0.0.0:%d", port);
	const char *lists[] = {"all_addresses", "all_reachable_addresses", "wildcard_addresses",
			       "all_reachable_addresses_or_all"};
	json_key(&x->j, key);
	json_object_begin(&x->j);
	kv_bool(x, "empty", false);
	for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
		json_key(&x->j, lists[i]);
		json_array_begin(&x->j);
		json_string(&x->j, i == 2 ? any : a);
		json_array_end(&x->j);
	}
	kv_str(x, "one", a);
	kv_str(x, "reachable_address", a);
	kv_str(x, "reachable_or_one", a);
	json_key(&x->j, "all_ports");
	json_array_begin(&x->j);
	json_int(&x->j, port);
	json_array_end(&x->j);
	json_key(&x->j, "all_host_strings");
	json_array_begin(&x->j);
	json_string(&x->j, host);
	json_array_end(&x->j);
	json_object_end(&x->j);
}

static void zabstate(struct cmd_ctx *x)
{
	const struct config *cfg = x->srv->cfg;
	const struct config_member *me = x->st.ensemble ? config_self(cfg) : NULL;
	if (!me || !x->st.state) { /* as ZooKeeper answers standalone or electing */
		kv_bool(x, "voting", false);
		kv_str(x, "zabstate", "");
		return;
	}
	char a[CONFIG_ADDR_MAX + 16], zxid[24];
	kv_int(x, "myid", cfg->my_id);
	kv_bool(x, "is_leader", strcmp(x->st.state, "leader") == 0);
	addresses(x, "quorum_address", me->host, me->quorum_port);
	addresses(x, "election_address", me->host, me->election_port);
	host_port(a, sizeof a, cfg->client_port_address, x->srv->bound_port);
	kv_str(x, "client_address", a);
	kv_bool(x, "voting", !me->observer);
	snprintf(zxid, sizeof zxid, "0x%lx", (unsigned long)x->st.zxid);
	kv_str(x, "last_zxid", zxid);
	kv_int(x, "zab_epoch", (int64_t)((uint64_t)x->st.zxid >> 32));
	kv_int(x, "zab_counter", x->st.zxid & 0xffffffff);
	kv_str(x, "zabstate", "broadcast"); /* a server that serves broadcasts */
}

/* One connection as ZooKeeper's ServerCnxn.getConnectionInfo: brief for
 * stats, in full for connections. */
static void conn_info(struct cmd_ctx *x, const struct report_conn *r, bool brief)
{
	char addr[ACL_IP_ID_MAX + 16];
	snprintf(addr, sizeof addr, "%s:%u", r->ip, r->port);
	json_object_begin(&x->j);
	kv_str(x, "remote_socket_address", addr);
	kv_int(x, "interest_ops", r->interest);
	kv_int(x, "outstanding_requests", (int64_t)r->queued);
	kv_int(x, "packets_received", (int64_t)r->received);
	kv_int(x, "packets_sent", (int64_t)r->sent);
	if (!brief) {
		kv_int(x, "session_id", (int64_t)r->session_id);
		kv_str(x, "last_operation", r->last_op);
		kv_int(x, "established", r->established_ms);
		kv_int(x, "session_timeout", r->timeout_ms);
		kv_int(x, "last_cxid", r->last_cxid);
		kv_int(x, "last_zxid", r->last_zxid);
		kv_int(x, "last_response_time", r->last_response_ms);
		kv_int(x, "last_latency", (int64_t)r->last_latency_ms);
		kv_int(x, "min_latency", (int64_t)r->min_latency_ms);
		kv_int(x, "avg_latency", (int64_t)r->avg_latency_ms);
		kv_int(x, "max_latency", (int64_t)r->max_latency_ms);
	}
	json_object_end(&x->j);
}

/* "connections" (every core's, in core order) and ZooKeeper's empty
 * "secure_connections" (no TLS). What did not fit in the report or in the
 * answer is counted in "connections_left_out", Ringkeeper's own key,
 * present only then. */
static void conn_list(struct cmd_ctx *x, const struct reported *rp, bool brief)
{
	uint64_t left_out = 0;
	json_key(&x->j, "connections");
	json_array_begin(&x->j);
	for (int i = 0; i < rp->count; i++) {
		const struct report_part *p = &rp->parts[i];
		size_t n = p->conns.len / sizeof(struct report_conn);
		for (size_t k = 0; k < n; k++) {
			if (x->j.out->len > CONNS_JSON_MAX) {
				left_out++;
				continue;
			}
			struct report_conn r;
			memcpy(&r, p->conns.buf + k * sizeof r, sizeof r);
			conn_info(x, &r, brief);
		}
		left_out += p->conns_left_out;
	}
	json_array_end(&x->j);
	json_key(&x->j, "secure_connections");
	json_array_begin(&x->j);
	json_array_end(&x->j);
	if (left_out)
		kv_int(x, "connections_left_out", (int64_t)left_out);
}

static void connections(struct cmd_ctx *x, const struct reported *r)
{
	conn_list(x, r, false);
}

static void stats(struct cmd_ctx *x, const struct reported *r)
{
	server_stats(x);
	conn_list(x, r, true);
}

/* Every core zeroed its connections' statistics to fill its part. */
static void reset_done(struct cmd_ctx *x, const struct reported *r)
{
}

/* ZooKeeper 3.8's commands, sorted by name; run NULL: not implemented. */
#define RUN(fn)	      fn, -1, NULL
#define REPORT(k, fn) NULL, k, fn
#define NONE	      NULL, -1, NULL

static const struct command commands[] = {
    {"configuration", {"conf", "config"}, true, RUN(configuration)},
    {"connection_stat_reset", {"crst"}, true, REPORT(REPORT_RESET, reset_done)},
    {"connections", {"cons"}, true, REPORT(REPORT_CONNS, connections)},
    {"dirs", {0}, true, RUN(dirs)},
    {"dump", {0}, true, NONE},
    {"environment", {"env", "envi"}, false, RUN(environment)},
    {"get_trace_mask", {"gtmk"}, false, RUN(get_trace_mask)},
    {"hash", {0}, true, RUN(hash)},
    {"initial_configuration", {"icfg"}, false, NONE},
    {"is_read_only", {"isro"}, true, RUN(is_read_only)},
    {"last_snapshot", {"lsnp"}, true, RUN(last_snapshot)},
    {"leader", {"lead"}, true, RUN(leader)},
    {"monitor", {"mntr"}, true, RUN(monitor)},
    /* Observers' statistics are not kept: nothing to reset. */
    {"observer_connection_stat_reset", {"orst"}, true, RUN(nothing)},
    {"observers", {"obsr"}, true, NONE},
    {"ruok", {0}, true, RUN(nothing)},
    {"server_stats", {"srvr"}, true, RUN(server_stats)},
    {"set_trace_mask", {"stmk"}, true, NONE},
    {"stat_reset", {"srst"}, true, RUN(stat_reset)},
    {"stats", {"stat"}, true, REPORT(REPORT_CONNS, stats)},
    {"system_properties", {"sysp"}, false, NONE},
    {"voting_view", {0}, true, RUN(voting_view)},
    {"watch_summary", {"wchs"}, true, RUN(watch_summary)},
    {"watches", {"wchc"}, true, NONE},
    {"watches_by_path", {"wchp"}, true, NONE},
    {"zabstate", {0}, false, RUN(zabstate)},
};
#define COMMANDS (sizeof commands / sizeof commands[0])

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < COMMANDS; i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
		for (size_t k = 0; k < 3 && commands[i].aliases[k]; k++)
			if (strcmp(commands[i].aliases[k], name) == 0)
				return &commands[i];
	}
	return NULL;
}

void admin_cmd_list(struct jute_out *body)
{
	for (size_t i = 0; i < COMMANDS; i++) {
		if (!commands[i].run && !commands[i].run_report)
			continue;
		char line[160];
		int n = snprintf(line, sizeof line, "<a href=\"/commands/%s\">%s</a>\n<br/>\n",
				 commands[i].name, commands[i].name);
		uint8_t *d = jute_reserve(body, (size_t)n);
		if (d)
			memcpy(d, line, (size_t)n);
	}
}

void admin_cmd_run(struct server *srv, const char *name, struct jute_out *body)
{
	struct cmd_ctx x = {.srv = srv};
	json_init(&x.j, body);
	json_object_begin(&x.j);
	const struct command *cmd = find(name);
	char msg[160];
	if (!cmd) {
		snprintf(msg, sizeof msg, "Unknown command: %s", name);
		x.error = msg;
	} else if (!cmd->run && !cmd->run_report) {
		snprintf(msg, sizeof msg, "Command %s is not implemented by Ringkeeper yet",
			 cmd->name);
		x.error = msg;
	} else {
		status_collect(srv, &x.st);
		/* A report command gets here only while not serving. */
		if ((cmd->needs_serving && !x.st.state) || !cmd->run)
			x.error = STATUS_NOT_SERVING;
		else
			cmd->run(&x);
	}
	kv_str(&x, "command", cmd ? cmd->name : name);
	kv_str(&x, "error", x.error);
	json_object_end(&x.j);
}

int admin_cmd_report_kind(struct server *srv, const char *name)
{
	const struct command *cmd = find(name);
	if (!cmd || !cmd->run_report)
		return -1;
	struct server_status st;
	status_collect(srv, &st);
	return st.state ? cmd->report : -1;
}

void admin_cmd_run_report(struct server *srv, const char *name, const struct report_part *parts,
			  int count, struct jute_out *body)
{
	const struct command *cmd = find(name);
	RK_ASSERT(cmd && cmd->run_report);
	struct cmd_ctx x = {.srv = srv};
	struct reported r = {parts, count};
	json_init(&x.j, body);
	json_object_begin(&x.j);
	status_collect(srv, &x.st);
	if (!x.st.state)
		x.error = STATUS_NOT_SERVING; /* it stopped serving meanwhile */
	else
		cmd->run_report(&x, &r);
	kv_str(&x, "command", cmd->name);
	kv_str(&x, "error", x.error);
	json_object_end(&x.j);
}
