/* The bench's figures: throughput over the measured window and latency
 * percentiles per op type, as a small table or as one CSV line. */
#include <stdio.h>

#include "bench/bench.h"

static const char *const csv_header =
    "servers,sessions,inflight,threads,read_ratio,value_size,keys,duration_s,warmup_s,"
    "rate,ops_per_s,reads_per_s,writes_per_s,read_p50_us,read_p99_us,read_p999_us,"
    "read_max_us,write_p50_us,write_p99_us,write_p999_us,write_max_us,read_errors,"
    "write_errors";

static uint64_t done(const struct op_stats *st)
{
	return st->ok + st->errors;
}

static void print_csv(const struct bench *b, const struct op_stats *st)
{
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
	printf(",%llu,%llu\n", (unsigned long long)r->errors, (unsigned long long)w->errors);
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
		else
			printf(" %s(%d) x%llu", proto_err_name(-e), -e,
			       (unsigned long long)st->err_by_code[e]);
	}
	printf("\n");
}

static void print_human(const struct bench *b, const struct op_stats *st)
{
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
	printf("measured %.1f s after %.1f s warmup\n\n", c->duration_s, c->warmup_s);
	printf("total %.1f ops/s\n", (double)(done(r) + done(w)) / c->duration_s);
	printf("%-7s %11s %10s %8s %8s %8s %8s %8s %8s  (latency in us)\n", "", "ops/s", "count",
	       "errors", "mean", "p50", "p99", "p99.9", "max");
	print_row("reads", r, c->duration_s);
	print_row("writes", w, c->duration_s);
	print_errors("read", r);
	print_errors("write", w);
}

void report_print(const struct bench *b, const struct op_stats stats[OPK_COUNT])
{
	if (b->cfg.csv)
		print_csv(b, stats);
	else
		print_human(b, stats);
	fflush(stdout);
}
