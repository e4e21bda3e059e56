/* The deterministic simulator of the replication engine (consensus/zab.h),
 * in the spirit of TigerBeetle's VOPR: N engines behind a fake network,
 * fake disks, a virtual clock and a host state machine, all driven by one
 * seeded PRNG, so a seed replays exactly. docs/simulator.md explains the
 * model and the invariants.
 *
 * One sim_run() is one seed: the first 70% of its steps inject faults
 * (crashes, connection resets, partitions, frame drops, duplicates and
 * swaps), then the network heals, every server comes back, and the run
 * must end with one serving leader and identical states everywhere. The
 * checker stops at the first broken invariant. No threads, sockets, files
 * or real time: a run is a pure function of its config. */
#ifndef RK_SIM_H
#define RK_SIM_H

#include <stdbool.h>
#include <stdint.h>

#define SIM_STEP_MS	     10	  /* one step of virtual time */
#define SIM_REPORT_BYTES     8192 /* failure text: reason and trace tail */
#define SIM_STEPS_DEFAULT    2000
#define SIM_VOTERS_MAX	     5
#define SIM_OBSERVER_DEFAULT (-1) /* the seed decides */

/* When and where the host snapshots its state machine. */
enum sim_snap_policy {
	SIM_SNAP_COMMITTED = 0, /* the real server: while serving, up to zab_commit_zxid */
	SIM_SNAP_APPLIED,	/* while serving, all it applied: a leader's own proposals too */
	SIM_SNAP_ANYTIME,	/* also while looking or syncing, up to zab_commit_zxid, which
				 * after a boot covers the log's unconfirmed tail */
	SIM_SNAP_POLICY_COUNT,
};

const char *sim_snap_policy_name(enum sim_snap_policy p);

struct sim_config {
	uint64_t seed;
	int voters;    /* 3 or 5 */
	int observers; /* 0 or 1, or SIM_OBSERVER_DEFAULT */
	int steps;     /* of SIM_STEP_MS each */
	bool verbose;  /* print every trace event (and the engine's log) to stderr */
	enum sim_snap_policy snap_policy;
	/* Self-test of the checker: the fake disk loses records it reported
	 * durable when its server crashes. Runs must then fail. */
	bool bug_lose_durable;
};

enum sim_verdict {
	SIM_PASS = 0,	   /* every invariant held and the run converged */
	SIM_FAIL_SAFETY,   /* invariant 1, 2, 3 or 5 broke */
	SIM_FAIL_CONTRACT, /* the engine broke the zab_env / zab.h contract */
	SIM_FAIL_LIVENESS, /* invariant 4: no convergence after healing */
	SIM_VERDICT_COUNT,
};

struct sim_stats {
	uint64_t events;
	uint64_t frames;	 /* sent by engines */
	uint64_t frame_faults;	 /* dropped, duplicated or swapped */
	uint64_t crashes;	 /* injected */
	uint64_t restarts;	 /* asked for by an engine */
	uint64_t partitions;	 /* including single-link cuts */
	uint64_t resets;	 /* connections that went down, for any reason */
	uint64_t establishments; /* leaders that became serving */
	uint64_t proposed;	 /* records proposed by hosts */
	uint64_t committed;	 /* records known committed (the reference history) */
	uint64_t snapshots;	 /* taken by hosts */
	uint64_t installs;	 /* snapshots received from a leader */
	uint64_t truncations;
	uint64_t forwards, replies;
	int64_t final_zxid;
	uint32_t final_epoch;
};

struct sim_result {
	enum sim_verdict verdict;
	uint64_t trace_hash; /* of every trace event: equal for equal configs */
	int64_t fail_ms;     /* virtual time of the failure */
	int fail_step;
	struct sim_stats stats;
	char report[SIM_REPORT_BYTES]; /* empty when passed */
};

void sim_config_default(struct sim_config *cfg, uint64_t seed, int voters);
/* 0 when the run passed, -1 when it failed (res says why). */
int sim_run(const struct sim_config *cfg, struct sim_result *res);
const char *sim_verdict_name(enum sim_verdict v);

#endif
