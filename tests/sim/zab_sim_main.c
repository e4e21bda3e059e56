/* ringkeeper-zab-sim: run the replication engine's simulator over a range
 * of seeds; print every failing seed with its report and the command that
 * replays it. Exit status 1 when a seed failed. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "tests/sim/sim.h"

#define LONG_SEEDS	   20000
#define REPORTS_MAX	   10 /* full reports printed; later failures get one line */
#define FAILED_SEEDS_SHOWN 50

/* The replay command of the seed being run, for a crash (an engine
 * assertion, a sanitizer report) that never returns to the loop. */
static char crash_note[256];

static void on_crash(void)
{
	ssize_t rc = write(STDERR_FILENO, crash_note, strlen(crash_note));
	(void)rc;
}

static void on_signal(int sig)
{
	on_crash();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* The sanitizers' runtime calls this before it exits on a report. */
extern void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

static void usage(void)
{
	fprintf(stderr,
		"usage: ringkeeper-zab-sim [--seeds N] [--first S | --random] [--seed S]\n"
		"                          [--servers 3|5] [--steps K] [--long] [--verbose]\n"
		"                          [--snap-policy committed|applied|anytime]\n"
		"  --seeds N      run seeds first..first+N-1 (default 100)\n"
		"  --first S      first seed (default 1); --random: a random one\n"
		"  --seed S       run seed S only (a replay)\n"
		"  --servers 3|5  voters (default: odd seeds 3, even seeds 5)\n"
		"  --steps K      steps of %d ms per seed (default %d)\n"
		"  --long         %d seeds\n"
		"  --verbose      print the trace of every event and the engine's log\n"
		"  --snap-policy  when hosts snapshot (default committed; see docs/simulator.md)\n"
		"  --bug-lose-durable  plant a disk bug the checker must catch\n",
		SIM_STEP_MS, SIM_STEPS_DEFAULT, LONG_SEEDS);
	exit(2);
}

struct opts {
	uint64_t first, seeds;
	int servers, steps;
	bool verbose;
	bool bug; /* plant the checker self-test's disk bug */
	enum sim_snap_policy policy;
};

static uint64_t parse_u64(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || !*s || *end)
		usage();
	return v;
}

static enum sim_snap_policy parse_policy(const char *s)
{
	for (int p = 0; p < SIM_SNAP_POLICY_COUNT; p++)
		if (!strcmp(s, sim_snap_policy_name((enum sim_snap_policy)p)))
			return (enum sim_snap_policy)p;
	usage();
	return SIM_SNAP_COMMITTED;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){.first = 1, .seeds = 100, .steps = SIM_STEPS_DEFAULT};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--verbose")) {
			o->verbose = true;
		} else if (!strcmp(a, "--bug-lose-durable")) {
			o->bug = true;
		} else if (!strcmp(a, "--long")) {
			o->seeds = LONG_SEEDS;
		} else if (!strcmp(a, "--random")) {
			if (getrandom(&o->first, sizeof o->first, 0) != sizeof o->first)
				usage();
			o->first >>= 1; /* leave room for first + seeds */
		} else if (!v) {
			usage();
		} else if (!strcmp(a, "--seeds")) {
			o->seeds = parse_u64(v), i++;
		} else if (!strcmp(a, "--first")) {
			o->first = parse_u64(v), i++;
		} else if (!strcmp(a, "--seed")) {
			o->first = parse_u64(v), o->seeds = 1, i++;
		} else if (!strcmp(a, "--servers")) {
			o->servers = (int)parse_u64(v), i++;
		} else if (!strcmp(a, "--steps")) {
			o->steps = (int)parse_u64(v), i++;
		} else if (!strcmp(a, "--snap-policy")) {
			o->policy = parse_policy(v), i++;
		} else {
			usage();
		}
	}
	if ((o->servers && o->servers != 3 && o->servers != 5) || o->steps < 10 || !o->seeds)
		usage();
}

static void replay_command(char *buf, size_t size, const struct sim_config *c)
{
	int n = snprintf(buf, size,
			 "replay: ringkeeper-zab-sim --seed %" PRIu64 " --servers %d --steps %d",
			 c->seed, c->voters, c->steps);
	if (c->snap_policy != SIM_SNAP_COMMITTED)
		n += snprintf(buf + n, size - (size_t)n, " --snap-policy %s",
			      sim_snap_policy_name(c->snap_policy));
	snprintf(buf + n, size - (size_t)n, "%s --verbose\n",
		 c->bug_lose_durable ? " --bug-lose-durable" : "");
}

static void stats_add(struct sim_stats *sum, const struct sim_stats *s)
{
	sum->events += s->events;
	sum->frames += s->frames;
	sum->frame_faults += s->frame_faults;
	sum->crashes += s->crashes;
	sum->restarts += s->restarts;
	sum->partitions += s->partitions;
	sum->resets += s->resets;
	sum->establishments += s->establishments;
	sum->proposed += s->proposed;
	sum->committed += s->committed;
	sum->snapshots += s->snapshots;
	sum->installs += s->installs;
	sum->truncations += s->truncations;
	sum->forwards += s->forwards;
	sum->replies += s->replies;
}

static void print_totals(const struct sim_stats *s)
{
	printf("totals: %" PRIu64 " events, %" PRIu64 " frames (%" PRIu64 " faulted), %" PRIu64
	       " crashes, %" PRIu64 " engine restarts, %" PRIu64 " partitions, %" PRIu64
	       " connection resets, %" PRIu64 " leaders established, %" PRIu64 " proposed, %" PRIu64
	       " committed, %" PRIu64 " snapshots taken, %" PRIu64 " installed, %" PRIu64
	       " truncations, %" PRIu64 " forwards, %" PRIu64 " replies\n",
	       s->events, s->frames, s->frame_faults, s->crashes, s->restarts, s->partitions,
	       s->resets, s->establishments, s->proposed, s->committed, s->snapshots, s->installs,
	       s->truncations, s->forwards, s->replies);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct opts o;
	parse_args(argc, argv, &o);
	signal(SIGABRT, on_signal);
	signal(SIGSEGV, on_signal);
	if (__sanitizer_set_death_callback)
		__sanitizer_set_death_callback(on_crash);
	struct sim_result *res = malloc(sizeof *res);
	uint64_t failed[SIM_VERDICT_COUNT] = {0}, n_failed = 0;
	struct sim_stats sum = {0};
	uint64_t shown[FAILED_SEEDS_SHOWN];
	double t0 = now_s();
	for (uint64_t seed = o.first; seed < o.first + o.seeds; seed++) {
		struct sim_config cfg;
		sim_config_default(&cfg, seed, o.servers ? o.servers : (seed & 1) ? 3 : 5);
		cfg.steps = o.steps;
		cfg.verbose = o.verbose;
		cfg.snap_policy = o.policy;
		cfg.bug_lose_durable = o.bug;
		char replay[200];
		replay_command(replay, sizeof replay, &cfg);
		snprintf(crash_note, sizeof crash_note,
			 "\nseed %" PRIu64 " crashed the simulator\n%s", seed, replay);
		sim_run(&cfg, res);
		stats_add(&sum, &res->stats);
		if (res->verdict == SIM_PASS) {
			if (o.seeds == 1)
				printf("seed %" PRIu64 ": pass; %" PRIu64 " committed, %" PRIu64
				       " leaders, %" PRIu64 " crashes, %" PRIu64
				       " restarts, %" PRIu64 " snapshots installed, final %" PRIx64
				       ", trace %016" PRIx64 "\n",
				       seed, res->stats.committed, res->stats.establishments,
				       res->stats.crashes, res->stats.restarts, res->stats.installs,
				       (uint64_t)res->stats.final_zxid, res->trace_hash);
			continue;
		}
		failed[res->verdict]++;
		if (n_failed < FAILED_SEEDS_SHOWN)
			shown[n_failed] = seed;
		if (n_failed++ < REPORTS_MAX)
			printf("FAIL %s%s", res->report, replay);
		else
			printf("FAIL seed %" PRIu64 " %s; %s", seed, sim_verdict_name(res->verdict),
			       replay);
		fflush(stdout);
	}
	double secs = now_s() - t0;
	print_totals(&sum);
	printf("%" PRIu64 " seeds from %" PRIu64 " in %.1f s (%.1f ms/seed): %" PRIu64
	       " failed (safety %" PRIu64 ", contract %" PRIu64 ", liveness %" PRIu64 ")\n",
	       o.seeds, o.first, secs, secs * 1000 / (double)o.seeds, n_failed,
	       failed[SIM_FAIL_SAFETY], failed[SIM_FAIL_CONTRACT], failed[SIM_FAIL_LIVENESS]);
	if (n_failed) {
		printf("failing seeds:");
		for (uint64_t i = 0; i < n_failed && i < FAILED_SEEDS_SHOWN; i++)
			printf(" %" PRIu64, shown[i]);
		printf("%s\n", n_failed > FAILED_SEEDS_SHOWN ? " ..." : "");
	}
	free(res);
	return n_failed ? 1 : 0;
}
