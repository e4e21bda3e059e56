/* Prometheus text exposition of the server's figures (see metrics.h). */
#include "net/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put(struct jute_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct jute_out *o, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line)
		n = sizeof line - 1;
	uint8_t *d = jute_reserve(o, (size_t)n);
	if (d)
		memcpy(d, line, (size_t)n);
}

/* A sample value as Prometheus' clients print one: whole numbers with
 * ".0" while they are exact in a double, NaN, +Inf, -Inf. */
static void value(char *buf, size_t len, double v)
{
	if (isnan(v))
		snprintf(buf, len, "NaN");
	else if (isinf(v))
		snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
	else if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(int64_t)v)
		snprintf(buf, len, "%.1f", v);
	else /* the shortest form that reads back as v, as Java prints doubles */
		for (int digits = 15; digits <= 17; digits++) {
			snprintf(buf, len, "%.*g", digits, v);
			if (strtod(buf, NULL) == v)
				break;
		}
}

static void family(struct jute_out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n", name, help);
	put(o, "# TYPE %s %s\n", name, type);
}

static void one(struct jute_out *o, const char *name, const char *type, const char *help, double v)
{
	char b[40];
	value(b, sizeof b, v);
	family(o, name, type, help);
	put(o, "%s %s\n", name, b);
}

static void gauge(struct jute_out *o, const char *name, const char *help, double v)
{
	one(o, name, "gauge", help, v);
}

struct summary_spec {
	const char *name;
	const char *help;
	int quantiles; /* ZooKeeper's BASIC summaries: the median; ADVANCED: 3 */
};

static const struct summary_spec summaries[STATUS_SUMMARY_COUNT] = {
    [STATUS_FSYNC] = {"fsynctime", "Time to write and sync a batch of the txn log (ms)", 1},
    [STATUS_SNAPSHOT] = {"snapshottime", "Time to write a snapshot (ms)", 1},
    [STATUS_ELECTION] = {"election_time", "Time from looking for a leader to finding one (ms)", 1},
    [STATUS_UPDATE] = {"updatelatency", "Time from receiving a write to answering it (ms)", 3},
};

static void summary(struct jute_out *o, const struct summary_spec *spec,
		    const struct summary_snap *now, const struct summary_snap *base)
{
	static const double q[] = {0.5, 0.9, 0.99};
	char b[40];
	family(o, spec->name, "summary", spec->help);
	for (int i = 0; i < spec->quantiles; i++) {
		value(b, sizeof b, summary_quantile(now, base, q[i]) / 1000.0);
		put(o, "%s{quantile=\"%g\"} %s\n", spec->name, q[i], b);
	}
	value(b, sizeof b, (double)now->count);
	put(o, "%s_count %s\n", spec->name, b);
	value(b, sizeof b, (double)now->sum / 1000.0);
	put(o, "%s_sum %s\n", spec->name, b);
}

void metrics_windows_init(struct metrics_windows *w)
{
	for (int i = 0; i < STATUS_SUMMARY_COUNT; i++) {
		summary_snap_clear(&w->old[i]);
		summary_snap_clear(&w->cur[i]);
	}
}

void metrics_windows_rotate(struct metrics_windows *w, const struct server_status *st)
{
	memcpy(w->old, w->cur, sizeof w->old);
	memcpy(w->cur, st->summaries, sizeof w->cur);
}

static void ensemble(const struct server_status *st, struct jute_out *o)
{
	gauge(o, "quorum_size", "Voting members of the ensemble", st->quorum_size);
	one(o, "looking_count", "counter", "Elections this server entered",
	    (double)st->looking_count);
	if (!st->state || strcmp(st->state, "leader") != 0)
		return;
	gauge(o, "learners", "Followers and observers connected to this leader", st->learners);
	gauge(o, "synced_followers", "Followers in sync with this leader", st->synced_followers);
	gauge(o, "synced_observers", "Observers in sync with this leader", st->synced_observers);
	gauge(o, "pending_syncs", "Syncs waiting on this leader", 0);
}

void metrics_write(const struct server_status *st, const struct metrics_windows *w,
		   struct jute_out *o)
{
	gauge(o, "znode_count", "Znodes in the tree", (double)st->znodes);
	gauge(o, "watch_count", "Watches set by clients", (double)st->watches);
	gauge(o, "ephemerals_count", "Ephemeral znodes", (double)st->ephemerals);
	gauge(o, "approximate_data_size", "Bytes of znode paths and data",
	      (double)st->bytes_approx);
	gauge(o, "num_alive_connections", "Client connections", (double)st->connections);
	gauge(o, "outstanding_requests", "Writes received and not yet answered",
	      (double)st->outstanding);
	gauge(o, "packets_received", "Client requests received", (double)st->packets_received);
	gauge(o, "packets_sent", "Replies and notifications sent to clients",
	      (double)st->packets_sent);
	gauge(o, "avg_latency", "Mean time to answer a request (ms)", status_avg_latency_ms(st));
	gauge(o, "min_latency", "Shortest time to answer a request (ms)",
	      (double)status_min_latency_ms(st));
	gauge(o, "max_latency", "Longest time to answer a request (ms)",
	      (double)status_max_latency_ms(st));
	gauge(o, "global_sessions", "Sessions", (double)st->sessions);
	gauge(o, "uptime", "Time since the server started (ms)", (double)st->uptime_ms);
	gauge(o, "open_file_descriptor_count", "Open file descriptors", (double)st->open_fds);
	gauge(o, "max_file_descriptor_count", "File descriptor limit", (double)st->max_fds);
	gauge(o, "auth_failed_count", "Authentication requests refused", (double)st->auth_failed);
	if (st->ensemble)
		ensemble(st, o);
	for (int i = 0; i < STATUS_SUMMARY_COUNT; i++)
		summary(o, &summaries[i], &st->summaries[i], &w->old[i]);
}
