/* ringkeeper-bench: a load generator that speaks the ZooKeeper client
 * protocol itself, for Ringkeeper or any ZooKeeper-compatible server.
 * main() parses options, creates the keys with one setup session, runs the
 * measured load on worker threads and prints the figures. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"
#include "core/log.h"

#define EXIT_USAGE     2
#define EXIT_OP_ERRORS 3
#define KEYS_MAX       10000000
#define SESSIONS_MAX   100000
#define INFLIGHT_MAX   4096
#define THREADS_MAX    256
#define PREFIX_MAX     200

static void usage(FILE *f)
{
	fprintf(f, "usage: ringkeeper-bench HOST:PORT[,HOST:PORT...] [options]\n"
		   "  --sessions N      client sessions, round-robin over the servers (32)\n"
		   "  --inflight N      pipelined requests outstanding per session (8)\n"
		   "  --read-ratio R    fraction of getData; the rest are setData (1.0)\n"
		   "  --value-size B    bytes per znode value (1024)\n"
		   "  --keys N          znodes under the prefix, picked uniformly (1000)\n"
		   "  --duration S      measured seconds (10)\n"
		   "  --warmup S        seconds run before measuring (2)\n"
		   "  --threads N       event-loop threads (2)\n"
		   "  --rate OPS        open loop: offer OPS requests/s in total, latency\n"
		   "                    measured from the intended send time (closed loop)\n"
		   "  --prefix PATH     parent znode of the keys (/rkbench)\n"
		   "  --timeout S       connect/request/close timeout (10)\n"
		   "  --reconnect       on a lost connection, count its requests as errors and\n"
		   "                    go on with a new session on the next server\n"
		   "  --series FILE     write ops completed per interval over the run as CSV\n"
		   "  --series-ms MS    width of a --series interval (100)\n"
		   "  --csv             print one CSV line; --csv-header adds the header\n"
		   "exit: 0 ok, 1 connection/protocol failure, 2 usage, 3 replies with errors\n");
}

static int parse_double(const char *name, const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, "ringkeeper-bench: --%s: '%s' is not a number in [%g, %g]\n", name,
			s, lo, hi);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_int(const char *name, const char *s, int lo, int hi, int *out)
{
	double v;
	int err = parse_double(name, s, lo, hi, &v);
	if (!err && v != (int)v) {
		fprintf(stderr, "ringkeeper-bench: --%s: '%s' is not an integer\n", name, s);
		err = -EINVAL;
	}
	if (!err)
		*out = (int)v;
	return err;
}

enum {
	OPT_SESSIONS = 256,
	OPT_INFLIGHT,
	OPT_READ_RATIO,
	OPT_VALUE_SIZE,
	OPT_KEYS,
	OPT_DURATION,
	OPT_WARMUP,
	OPT_THREADS,
	OPT_RATE,
	OPT_PREFIX,
	OPT_TIMEOUT,
	OPT_CSV,
	OPT_CSV_HEADER,
	OPT_RECONNECT,
	OPT_SERIES,
	OPT_SERIES_MS,
	OPT_HELP,
};

static const struct option long_options[] = {
    {"sessions", required_argument, NULL, OPT_SESSIONS},
    {"inflight", required_argument, NULL, OPT_INFLIGHT},
    {"read-ratio", required_argument, NULL, OPT_READ_RATIO},
    {"value-size", required_argument, NULL, OPT_VALUE_SIZE},
    {"keys", required_argument, NULL, OPT_KEYS},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"rate", required_argument, NULL, OPT_RATE},
    {"prefix", required_argument, NULL, OPT_PREFIX},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"csv", no_argument, NULL, OPT_CSV},
    {"csv-header", no_argument, NULL, OPT_CSV_HEADER},
    {"reconnect", no_argument, NULL, OPT_RECONNECT},
    {"series", required_argument, NULL, OPT_SERIES},
    {"series-ms", required_argument, NULL, OPT_SERIES_MS},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static int parse_option(struct bench_config *c, int opt, const char *arg)
{
	switch (opt) {
	case OPT_SESSIONS:
		return parse_int("sessions", arg, 1, SESSIONS_MAX, &c->sessions);
	case OPT_INFLIGHT:
		return parse_int("inflight", arg, 1, INFLIGHT_MAX, &c->inflight);
	case OPT_READ_RATIO:
		return parse_double("read-ratio", arg, 0, 1, &c->read_ratio);
	case OPT_VALUE_SIZE:
		return parse_int("value-size", arg, 0, VALUE_BYTES_MAX, &c->value_size);
	case OPT_KEYS:
		return parse_int("keys", arg, 1, KEYS_MAX, &c->keys);
	case OPT_DURATION:
		return parse_double("duration", arg, 0.1, 86400, &c->duration_s);
	case OPT_WARMUP:
		return parse_double("warmup", arg, 0, 86400, &c->warmup_s);
	case OPT_THREADS:
		return parse_int("threads", arg, 1, THREADS_MAX, &c->threads);
	case OPT_RATE:
		return parse_double("rate", arg, 0.001, 1e9, &c->rate_ops);
	case OPT_TIMEOUT:
		return parse_double("timeout", arg, 0.1, 3600, &c->timeout_s);
	case OPT_PREFIX:
		c->prefix = arg;
		return 0;
	case OPT_CSV:
		c->csv = true;
		return 0;
	case OPT_CSV_HEADER:
		c->csv = c->csv_header = true;
		return 0;
	case OPT_RECONNECT:
		c->reconnect = true;
		return 0;
	case OPT_SERIES:
		c->series_path = arg;
		return 0;
	case OPT_SERIES_MS:
		return parse_double("series-ms", arg, 1, 60000, &c->series_ms);
	case OPT_HELP:
		usage(stdout);
		exit(0);
	default:
		return -EINVAL;
	}
}

/* "host:port" or "[v6addr]:port", resolved once, up front. */
static int parse_server(struct server *srv, const char *spec, size_t len)
{
	char buf[sizeof srv->name];
	if (len == 0 || len >= sizeof buf)
		goto bad;
	memcpy(buf, spec, len);
	buf[len] = 0;
	memcpy(srv->name, buf, len + 1);
	char *colon = strrchr(buf, ':');
	if (!colon || colon == buf || !colon[1])
		goto bad;
	*colon = 0;
	char *host = buf;
	if (host[0] == '[' && colon[-1] == ']') {
		host++;
		colon[-1] = 0;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res;
	int rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc) {
		fprintf(stderr, "ringkeeper-bench: server %s: %s\n", srv->name, gai_strerror(rc));
		return -EINVAL;
	}
	memcpy(&srv->addr, res->ai_addr, res->ai_addrlen);
	srv->addr_len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
bad:
	fprintf(stderr, "ringkeeper-bench: '%.*s' is not HOST:PORT\n", (int)len, spec);
	return -EINVAL;
}

static int parse_servers(struct bench *b, const char *list)
{
	const char *p = list;
	for (;;) {
		size_t len = strcspn(p, ",");
		if (b->server_count == BENCH_SERVERS_MAX) {
			fprintf(stderr, "ringkeeper-bench: at most %d servers\n",
				BENCH_SERVERS_MAX);
			return -EINVAL;
		}
		int err = parse_server(&b->servers[b->server_count], p, len);
		if (err)
			return err;
		b->server_count++;
		if (!p[len])
			return 0;
		p += len + 1;
	}
}

static int parse_args(struct bench *b, int argc, char **argv)
{
	struct bench_config *c = &b->cfg;
	*c = (struct bench_config){.sessions = 32,
				   .inflight = 8,
				   .threads = 2,
				   .read_ratio = 1.0,
				   .value_size = 1024,
				   .keys = 1000,
				   .duration_s = 10,
				   .warmup_s = 2,
				   .timeout_s = 10,
				   .series_ms = 100,
				   .prefix = "/rkbench"};
	int opt;
	while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		if (opt == 'h')
			opt = OPT_HELP;
		if (parse_option(c, opt, optarg))
			return -EINVAL;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "ringkeeper-bench: give exactly one HOST:PORT[,HOST:PORT...]\n");
		return -EINVAL;
	}
	size_t plen = strlen(c->prefix);
	if (c->prefix[0] != '/' || plen > PREFIX_MAX || (plen > 1 && c->prefix[plen - 1] == '/') ||
	    strstr(c->prefix, "//")) {
		fprintf(stderr, "ringkeeper-bench: --prefix must be an absolute znode path\n");
		return -EINVAL;
	}
	if (c->threads > c->sessions)
		c->threads = c->sessions;
	if (c->series_path) {
		double n = ceil(c->duration_s * 1000 / c->series_ms);
		if (n > SERIES_BUCKETS_MAX) {
			fprintf(stderr, "ringkeeper-bench: --series: more than %d intervals\n",
				SERIES_BUCKETS_MAX);
			return -EINVAL;
		}
		b->series_len = (uint32_t)n;
	}
	return parse_servers(b, argv[optind]);
}

/* Key paths "<prefix>/k<i>", back to back, and the prefix's ancestors. */
static int build_paths(struct bench *b)
{
	const char *prefix = strcmp(b->cfg.prefix, "/") ? b->cfg.prefix : "";
	size_t plen = strlen(prefix);
	for (size_t i = 1; i <= plen; i++)
		if (i == plen || prefix[i] == '/')
			b->prefix_ends[b->prefix_depth++] = (int)i;
	size_t per_key = plen + 12;
	b->paths = malloc((size_t)b->cfg.keys * per_key);
	b->path_off = malloc(((size_t)b->cfg.keys + 1) * sizeof *b->path_off);
	b->value = malloc((size_t)b->cfg.value_size + 1);
	if (!b->paths || !b->path_off || !b->value)
		return -ENOMEM;
	size_t off = 0;
	for (int k = 0; k < b->cfg.keys; k++) {
		b->path_off[k] = (uint32_t)off;
		int n = snprintf(b->paths + off, per_key, "%s/k%d", prefix, k);
		off += (size_t)n;
		if (n > b->path_max)
			b->path_max = n;
	}
	b->path_off[b->cfg.keys] = (uint32_t)off;
	for (int i = 0; i < b->cfg.value_size; i++)
		b->value[i] = (uint8_t)('a' + i % 26);
	return 0;
}

static void free_paths(struct bench *b)
{
	free(b->paths);
	free(b->path_off);
	free(b->value);
}

static int run_setup(struct bench *b)
{
	static struct worker w; /* its histograms are too big for the stack */
	uint64_t t0 = now_ns();
	int err = worker_init(&w, b, WORKER_SETUP, 0, 0, 1, SETUP_INFLIGHT);
	if (err) {
		fprintf(stderr, "ringkeeper-bench: setup: %s\n", strerror(-err));
		return err;
	}
	err = worker_run(&w);
	FILE *out = b->cfg.csv ? stderr : stdout;
	if (!err)
		fprintf(out,
			"setup: %d keys under %s (%llu created, %llu existed, %llu resized) in "
			"%.2f s\n",
			b->cfg.keys, b->cfg.prefix, (unsigned long long)w.setup.created,
			(unsigned long long)w.setup.existed, (unsigned long long)w.setup.resized,
			(double)(now_ns() - t0) / 1e9);
	else
		fprintf(stderr, "ringkeeper-bench: setup failed\n");
	b->failed_sessions += w.failed_sessions;
	worker_free(&w);
	return err;
}

/* Releases the workers once every session is connected and synced. */
static int release_workers(struct bench *b, int workers)
{
	uint64_t deadline = now_ns() + (uint64_t)(b->cfg.timeout_s * 3e9) + 1000000000u;
	struct timespec pause = {.tv_nsec = 1000000};
	while (atomic_load(&b->ready_workers) < workers) {
		if (atomic_load(&b->abort_run))
			return -ECONNABORTED;
		if (atomic_load(&b->stop_ns)) {
			atomic_store(&b->abort_run, 1);
			return -EINTR;
		}
		if (now_ns() > deadline) {
			log_error("sessions not all connected after %.1f s", b->cfg.timeout_s * 3);
			atomic_store(&b->abort_run, 1);
			return -ETIMEDOUT;
		}
		nanosleep(&pause, NULL);
	}
	struct timespec wall;
	clock_gettime(CLOCK_REALTIME, &wall);
	b->start_unix_ns = (uint64_t)wall.tv_sec * 1000000000u + (uint64_t)wall.tv_nsec;
	atomic_store(&b->start_ns, now_ns());
	if (b->series_len) { /* a script that injects faults times them from this */
		uint64_t from_ms = b->start_unix_ns / 1000000 + (uint64_t)(b->cfg.warmup_s * 1000);
		fprintf(stderr, "ringkeeper-bench: measuring from unix_ms=%llu to unix_ms=%llu\n",
			(unsigned long long)from_ms,
			(unsigned long long)(from_ms + (uint64_t)(b->cfg.duration_s * 1000)));
	}
	return 0;
}

static int start_workers(struct bench *b, struct worker *ws, int *inited, int *started)
{
	const struct bench_config *c = &b->cfg;
	for (int t = 0; t < c->threads; t++) {
		int first = (int)((long long)c->sessions * t / c->threads);
		int end = (int)((long long)c->sessions * (t + 1) / c->threads);
		int err = worker_init(&ws[t], b, WORKER_RUN, t, first, end - first, c->inflight);
		if (err) {
			fprintf(stderr, "ringkeeper-bench: worker %d: %s\n", t, strerror(-err));
			return err;
		}
		*inited = t + 1;
	}
	for (int t = 0; t < c->threads; t++) {
		int rc = pthread_create(&ws[t].thread, NULL, worker_thread, &ws[t]);
		if (rc) {
			fprintf(stderr, "ringkeeper-bench: pthread_create: %s\n", strerror(rc));
			return -rc;
		}
		*started = t + 1;
	}
	return release_workers(b, c->threads);
}

static void merge_series(struct run_totals *t, const struct worker *w)
{
	for (uint32_t i = 0; i < t->series_len; i++) {
		struct series_bucket *d = &t->series[i];
		const struct series_bucket *s = &w->series[i];
		d->reads += s->reads;
		d->writes += s->writes;
		d->errors += s->errors;
		d->write_first_ns =
		    s->write_first_ns < d->write_first_ns ? s->write_first_ns : d->write_first_ns;
		d->write_last_ns =
		    s->write_last_ns > d->write_last_ns ? s->write_last_ns : d->write_last_ns;
	}
}

static void merge_worker(struct run_totals *t, const struct worker *w)
{
	for (int k = 0; k < OPK_COUNT; k++) {
		struct op_stats *d = &t->stats[k];
		d->ok += w->stats[k].ok;
		d->errors += w->stats[k].errors;
		for (int e = 0; e < ERR_CODE_SLOTS; e++)
			d->err_by_code[e] += w->stats[k].err_by_code[e];
		hist_merge(&d->hist, &w->stats[k].hist);
	}
	if (w->series)
		merge_series(t, w);
	t->reconnects += w->reconnects;
	t->connect_failures += w->connect_failures;
}

/* Runs the measured load; merges every worker's figures into total. */
static int run_load(struct bench *b, struct run_totals *total)
{
	int inited = 0;
	int started = 0;
	struct worker *ws = calloc((size_t)b->cfg.threads, sizeof *ws);
	if (!ws)
		return -ENOMEM;
	int err = start_workers(b, ws, &inited, &started);
	if (err)
		atomic_store(&b->abort_run, 1); /* the started workers wind down */
	for (int t = 0; t < started; t++) {
		pthread_join(ws[t].thread, NULL);
		if (ws[t].result && !err)
			err = ws[t].result;
	}
	for (int t = 0; t < inited; t++) {
		b->failed_sessions += ws[t].failed_sessions;
		merge_worker(total, &ws[t]);
		worker_free(&ws[t]);
	}
	free(ws);
	return err;
}

static struct bench *stop_target;

static void on_stop_signal(int sig)
{
	(void)sig;
	atomic_store(&stop_target->stop_ns, now_ns()); /* both async-signal-safe */
}

/* The first SIGINT or SIGTERM ends the measured window and the run winds
 * down and reports; a second one kills as usual (SA_RESETHAND). */
static void catch_stop_signals(struct bench *b)
{
	struct sigaction sa = {.sa_handler = on_stop_signal, .sa_flags = SA_RESETHAND};
	stop_target = b;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* After a stop signal the figures cover the measured window up to it.
 * 0, or -EINTR if it came before the window began. */
static int cut_window(struct bench *b, struct run_totals *t)
{
	uint64_t stop = atomic_load(&b->stop_ns);
	if (!stop)
		return 0;
	uint64_t from = atomic_load(&b->start_ns) + (uint64_t)(b->cfg.warmup_s * 1e9);
	if (stop <= from)
		return -EINTR;
	double measured_s = (double)(stop - from) / 1e9;
	if (measured_s >= b->cfg.duration_s)
		return 0;
	b->cfg.duration_s = measured_s;
	b->stopped_early = true;
	/* Whole intervals only: a last partial one would read as a drop. */
	uint32_t n = (uint32_t)floor(measured_s * 1000 / b->cfg.series_ms);
	if (n < t->series_len)
		t->series_len = n ? n : 1;
	return 0;
}

static void free_all(struct bench *b, struct run_totals *t)
{
	free(t->series);
	free_paths(b);
}

int main(int argc, char **argv)
{
	static struct bench b;
	static struct run_totals total; /* its histograms are too big for the stack */
	if (parse_args(&b, argc, argv)) {
		fprintf(stderr, "try 'ringkeeper-bench --help'\n");
		return EXIT_USAGE;
	}
	total.series_len = b.series_len;
	if (build_paths(&b) ||
	    (b.series_len && !(total.series = calloc(b.series_len, sizeof *total.series)))) {
		fprintf(stderr, "ringkeeper-bench: out of memory\n");
		return EXIT_FAILURE;
	}
	series_init(total.series, total.series_len);
	catch_stop_signals(&b);
	int err = run_setup(&b);
	if (!err)
		err = run_load(&b, &total);
	if (!err)
		err = cut_window(&b, &total);
	if (err) {
		if (b.failed_sessions)
			fprintf(stderr,
				"ringkeeper-bench: failed: %d sessions failed (first errors "
				"above)\n",
				b.failed_sessions);
		else
			fprintf(stderr, "ringkeeper-bench: failed: %s\n", strerror(-err));
		free_all(&b, &total);
		return EXIT_FAILURE;
	}
	report_print(&b, &total);
	if (b.series_len && (err = report_series(&b, &total))) {
		fprintf(stderr, "ringkeeper-bench: --series %s: %s\n", b.cfg.series_path,
			strerror(-err));
		free_all(&b, &total);
		return EXIT_FAILURE;
	}
	bool op_errors = total.stats[OPK_READ].errors || total.stats[OPK_WRITE].errors;
	free_all(&b, &total);
	return op_errors ? EXIT_OP_ERRORS : EXIT_SUCCESS;
}
