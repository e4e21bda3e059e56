/* The replication engine under the deterministic simulator (tests/sim):
 * 500 seeds with 3 voters and 500 with 5, in tests of SEEDS_PER_TEST seeds
 * (a process per seed costs more than the seed, under ASan); every
 * failing seed is reported by number with its replay command, and a seed
 * that crashes the process prints its number on the way down. Plus the
 * simulator's own checks: a seed replays exactly, and the checker catches
 * a bug planted in the fake disk. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/sim/sim.h"

#define SEEDS	       500
#define SEEDS_PER_TEST 25
#define TEST_STEPS     1500 /* 15 s of virtual time: 10.5 s of faults */

struct seed_param {
	uint64_t first; /* seeds first .. first + SEEDS_PER_TEST - 1 */
	int voters;
};

/* The seed being run, for an engine assertion or a sanitizer report. */
static char crash_note[160];

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

extern void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

static void free_params(struct criterion_test_params *p)
{
	cr_free(p->params);
}

static struct criterion_test_params seed_params(int voters)
{
	size_t n = SEEDS / SEEDS_PER_TEST;
	struct seed_param *p = cr_malloc(n * sizeof *p);
	for (size_t i = 0; i < n; i++)
		p[i] = (struct seed_param){.first = 1 + i * SEEDS_PER_TEST, .voters = voters};
	return cr_make_param_array(struct seed_param, p, n, free_params);
}

static void run_seeds(const struct seed_param *p)
{
	struct sim_result *res = malloc(sizeof *res);
	cr_assert_not_null(res);
	signal(SIGABRT, on_signal);
	signal(SIGSEGV, on_signal);
	if (__sanitizer_set_death_callback)
		__sanitizer_set_death_callback(on_crash);
	for (uint64_t seed = p->first; seed < p->first + SEEDS_PER_TEST; seed++) {
		struct sim_config cfg;
		snprintf(crash_note, sizeof crash_note,
			 "\nzab_sim: seed %" PRIu64
			 " (%d voters) crashed; replay: ringkeeper-zab-sim "
			 "--seed %" PRIu64 " --servers %d --steps %d --verbose\n",
			 seed, p->voters, seed, p->voters, TEST_STEPS);
		sim_config_default(&cfg, seed, p->voters);
		cfg.steps = TEST_STEPS;
		sim_run(&cfg, res);
		/* The first line says what broke; the replay prints the rest. */
		int len = (int)strcspn(res->report, "\n");
		cr_expect_eq(res->verdict, SIM_PASS,
			     "%.*s\n  replay: ringkeeper-zab-sim --seed %" PRIu64
			     " --servers %d --steps %d --verbose",
			     len, res->report, seed, p->voters, TEST_STEPS);
	}
	free(res);
}

ParameterizedTestParameters(zab_sim, three_voters)
{
	return seed_params(3);
}

ParameterizedTest(struct seed_param *p, zab_sim, three_voters)
{
	run_seeds(p);
}

ParameterizedTestParameters(zab_sim, five_voters)
{
	return seed_params(5);
}

ParameterizedTest(struct seed_param *p, zab_sim, five_voters)
{
	run_seeds(p);
}

/* The same config runs the same events: the whole trace hashes the same;
 * another seed does not. */
Test(zab_sim, seed_replays_exactly)
{
	struct sim_config cfg;
	struct sim_result *a = malloc(sizeof *a), *b = malloc(sizeof *b);
	cr_assert(a && b);
	sim_config_default(&cfg, 42, 5);
	cfg.steps = 800;
	sim_run(&cfg, a);
	sim_run(&cfg, b);
	cr_expect_eq(a->trace_hash, b->trace_hash);
	cr_expect_eq(a->stats.events, b->stats.events);
	cr_expect_eq(a->stats.committed, b->stats.committed);
	cr_expect_gt(a->stats.events, 1000);
	cfg.seed = 43;
	sim_run(&cfg, b);
	cr_expect_neq(a->trace_hash, b->trace_hash);
	free(a);
	free(b);
}

/* A disk that loses what it reported durable breaks the engine's
 * assumptions; the checker must notice in some of a few dozen seeds. */
Test(zab_sim, checker_catches_lost_durable_records)
{
	struct sim_result *res = malloc(sizeof *res);
	cr_assert_not_null(res);
	int safety = 0;
	for (uint64_t seed = 1; seed <= 40; seed++) {
		struct sim_config cfg;
		sim_config_default(&cfg, seed, 3);
		cfg.steps = 1000;
		cfg.bug_lose_durable = true;
		sim_run(&cfg, res);
		safety += res->verdict == SIM_FAIL_SAFETY;
	}
	cr_expect_gt(safety, 0, "no seed noticed committed records vanishing from disks");
	free(res);
}
