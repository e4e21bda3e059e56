/* The bench's figures: throughput over the measured window and latency
 * percentiles per op type, as a small table or as one CSV line, and the
 * optional time series of ops completed per interval. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include "bench/bench.h"

static const char *const csv_header =
    "servers,sessions,inflight,threads,read_ratio,value_size,keys,duration_s,warmup_s,"
    "rate,ops_per_s,reads_per_s,writes_per_s,read_p50_us,read_p99_us,read_p999_us,"
    "read_max_us,write_p50_us,write_p99_us,write_p999_us,write_max_us,read_errors,"
    "write_errors,reconnects,connect_failures";

static uint64_t done(const struct op_stats *st)
{
	return st->ok + st->errors;
}

static void print_csv(const struct bench *b, const struct run_totals *t)
{
	const struct op_stats *st = t->stats;
	const struct bench_config *c = &b->cfg;
	const struct op_stats *r = &st[OPK_READ];
	const struct op_stats *w = &st[OPK_WRITE];
	if (c->csv_header)
		printf("%s\n", csv_header);
	/* Servers are joined with ';' so the line stays one field per column. */
	for (int i = 0; i < b->server_count; i++)
		printf("%s%s", i ? ";" : "", b->servers[i].name);
	printf(",%d,%d,%d,%g,%d,%d,%g,%g,%g,%.1f,%.1f,%.1f", c->sessions, c->inflight, c->threads,
	       c->read_ratio, c->value_size, c->keys, c->duration_s, c->warmup_s, c->rate_ops,
	       (double)(done(r) + done(w)) / c->duration_s, (double)done(r) / c->duration_s,
	       (double)done(w) / c->duration_s);
	const struct op_stats *both[2] = {r, w};
	for (int i = 0; i < 2; i++)
		printf(",%llu,%llu,%llu,%llu",
		       (unsigned long long)hist_percentile(&both[i]->hist, 50),
		       (unsigned long long)hist_percentile(&both[i]->hist, 99),
		       (unsigned long long)hist_percentile(&both[i]->hist, 99.9),
		       (unsigned long long)both[i]->hist.max_us);
	printf(",%llu,%llu,%llu,%llu\n", (unsigned long long)r->errors,
	       (unsigned long long)w->errors, (unsigned long long)t->reconnects,
	       (unsigned long long)t->connect_failures);
}

static void print_row(const char *name, const struct op_stats *st, double duration_s)
{
	const struct hist *h = &st->hist;
	printf("%-7s %11.1f %10llu %8llu", name, (double)done(st) / duration_s,
	       (unsigned long long)done(st), (unsigned long long)st->errors);
	if (h->count == 0) {
		printf(" %8s %8s %8s %8s %8s\n", "-", "-", "-", "-", "-");
		return;
	}
	printf(" %8.0f %8llu %8llu %8llu %8llu\n", (double)h->sum_us / (double)h->count,
	       (unsigned long long)hist_percentile(h, 50),
	       (unsigned long long)hist_percentile(h, 99),
	       (unsigned long long)hist_percentile(h, 99.9), (unsigned long long)h->max_us);
}

static void print_errors(const char *name, const struct op_stats *st)
{
	if (!st->errors)
		return;
	printf("%s errors:", name);
	for (int e = 1; e < ERR_CODE_SLOTS; e++) {
		if (!st->err_by_code[e])
			continue;
		if (e == ERR_SIZE_MISMATCH)
			printf(" wrong-size-value x%llu", (unsigned long long)st->err_by_code[e]);
		else if (e == -ZCONNECTIONLOSS) /* client-side: a lost connection's requests */
			printf(" CONNECTIONLOSS(%d) x%llu", -e,
			       (unsigned long long)st->err_by_code[e]);
		else
			printf(" %s(%d) x%llu", proto_err_name(-e), -e,
			       (unsigned long long)st->err_by_code[e]);
	}
	printf("\n");
}

uint64_t series_write_gap(const struct run_totals *t, uint64_t end_ns, uint64_t *from_ns)
{
	uint64_t prev = 0; /* the window's start and end count as writes */
	uint64_t best = 0;
	*from_ns = 0;
	for (uint32_t i = 0; i <= t->series_len; i++) {
		bool at_end = i == t->series_len;
		const struct series_bucket *sb = at_end ? NULL : &t->series[i];
		if (sb && sb->write_first_ns == UINT64_MAX)
			continue;
		uint64_t next = at_end ? end_ns : sb->write_first_ns;
		if (next > prev && next - prev > best) {
			best = next - prev;
			*from_ns = prev;
		}
		if (sb)
			prev = sb->write_last_ns;
	}
	return best;
}

/* With --reconnect and --series: what a failover cost the clients. */
static void print_availability(const struct bench *b, const struct run_totals *t)
{
	const struct bench_config *c = &b->cfg;
	if (c->reconnect)
		printf("reconnects: %llu sessions re-established, %llu connections lost or "
		       "refused\n",
		       (unsigned long long)t->reconnects, (unsigned long long)t->connect_failures);
	if (!t->series_len || c->read_ratio >= 1.0)
		return;
	uint64_t from_ns;
	uint64_t gap_ns = series_write_gap(t, (uint64_t)(c->duration_s * 1e9), &from_ns);
	printf("longest stretch without a successful setData: %.1f ms, from %.3f s "
	       "(exact when longer than the %g ms interval)\n",
	       (double)gap_ns / 1e6, (double)from_ns / 1e9, c->series_ms);
}

static void print_human(const struct bench *b, const struct run_totals *t)
{
	const struct op_stats *st = t->stats;
	const struct bench_config *c = &b->cfg;
	const struct op_stats *r = &st[OPK_READ];
	const struct op_stats *w = &st[OPK_WRITE];
	printf("servers:");
	for (int i = 0; i < b->server_count; i++)
		printf(" %s", b->servers[i].name);
	printf("\nload: %d sessions x %d in flight on %d threads, %.0f%% reads, %d-byte values, "
	       "%d keys\n",
	       c->sessions, c->inflight, c->threads, c->read_ratio * 100, c->value_size, c->keys);
	if (c->rate_ops > 0)
		printf("mode: open loop at %g ops/s offered, latency from intended send time\n",
		       c->rate_ops);
	else
		printf("mode: closed loop\n");
	printf("measured %.1f s after %.1f s warmup%s\n\n", c->duration_s, c->warmup_s,
	       b->stopped_early ? " (ended early by a signal)" : "");
	printf("total %.1f ops/s\n", (double)(done(r) + done(w)) / c->duration_s);
	printf("%-7s %11s %10s %8s %8s %8s %8s %8s %8s  (latency in us)\n", "", "ops/s", "count",
	       "errors", "mean", "p50", "p99", "p99.9", "max");
	print_row("reads", r, c->duration_s);
	print_row("writes", w, c->duration_s);
	print_errors("read", r);
	print_errors("write", w);
	print_availability(b, t);
}

void report_print(const struct bench *b, const struct run_totals *t)
{
	if (b->cfg.csv)
		print_csv(b, t);
	else
		print_human(b, t);
	fflush(stdout);
}

/* t_ms: the interval's start since the measured window began; unix_ms: the
 * same on the wall clock, to line up with server logs and fault times;
 * write_first_ms/write_last_ms: the interval's first and last successful
 * setData (empty if none), since the window began. */
int report_series(const struct bench *b, const struct run_totals *t)
{
	FILE *f = fopen(b->cfg.series_path, "w");
	if (!f)
		return -errno;
	double from_unix_ms = (double)b->start_unix_ns / 1e6 + b->cfg.warmup_s * 1000;
	fprintf(f, "t_ms,unix_ms,reads,writes,errors,write_first_ms,write_last_ms\n");
	for (uint32_t i = 0; i < t->series_len; i++) {
		const struct series_bucket *sb = &t->series[i];
		double t_ms = i * b->cfg.series_ms;
		fprintf(f, "%.0f,%.0f,%llu,%llu,%llu", t_ms, from_unix_ms + t_ms,
			(unsigned long long)sb->reads, (unsigned long long)sb->writes,
			(unsigned long long)sb->errors);
		if (sb->write_first_ns == UINT64_MAX)
			fprintf(f, ",,\n");
		else
			fprintf(f, ",%.3f,%.3f\n", (double)sb->write_first_ns / 1e6,
				(double)sb->write_last_ns / 1e6);
	}
	if (fclose(f))
		return -errno;
	return 0;
}
