/* ringkeeper-bench internals: the run description shared read-only by all
 * worker threads, and the worker (one epoll loop, many sessions) API.
 *
 * Ownership: main() owns struct bench and everything it points to; workers
 * only read it, except for the four atomics at its end. Each worker owns
 * its sessions, their buffers and its stats; main reads a worker's stats
 * only after joining its thread. Nothing is allocated per request: every
 * session gets its slot ring and buffers once, at worker_init(). */
#ifndef RK_BENCH_BENCH_H
#define RK_BENCH_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "bench/hist.h"
#include "core/jute.h"
#include "core/proto.h"

#define BENCH_SERVERS_MAX 64
/* Requests the one setup session keeps in flight while creating keys. */
#define SETUP_INFLIGHT 256
/* Bound on any reply frame we accept. ZooKeeper's own jute.maxbuffer
 * default is 1 MiB; this leaves room for servers configured larger. */
#define FRAME_BYTES_MAX (16u << 20)
/* The largest value we send: jute.maxbuffer minus room for path/header. */
#define VALUE_BYTES_MAX (ZK_JUTE_MAXBUFFER_DEFAULT - 4096)

struct bench_config {
	int sessions;
	int inflight;
	int threads;
	double read_ratio;
	int value_size;
	int keys;
	double duration_s;
	double warmup_s;
	double rate_ops; /* 0: closed loop */
	double timeout_s;
	const char *prefix;
	bool csv;
	bool csv_header;
	/* On a lost connection, fail its requests and go on with a new session
	 * on the next server instead of ending the run. */
	bool reconnect;
	const char *series_path; /* NULL: no time series */
	double series_ms;	 /* width of a time-series interval */
};

struct server {
	char name[128]; /* as given on the command line, for messages */
	struct sockaddr_storage addr;
	socklen_t addr_len;
};

struct bench {
	struct bench_config cfg;
	struct server servers[BENCH_SERVERS_MAX];
	int server_count;
	uint8_t *value;	    /* value_size bytes written by setData and create */
	char *paths;	    /* all key paths, back to back, not NUL-separated */
	uint32_t *path_off; /* keys + 1 offsets into paths */
	int path_max;	    /* longest path the bench sends */
	/* Offsets in cfg.prefix where each ancestor path ends ("/a", "/a/b"). */
	int prefix_ends[64];
	int prefix_depth;
	int failed_sessions;	/* summed by main from the joined workers */
	uint32_t series_len;	/* time-series intervals, 0 without --series */
	uint64_t start_unix_ns; /* CLOCK_REALTIME when main released the run */
	bool stopped_early;	/* a signal cut cfg.duration_s short */

	/* Shared between main and the workers. */
	_Atomic uint64_t start_ns; /* 0 until main releases the run */
	_Atomic int ready_workers; /* workers whose sessions are all usable */
	_Atomic int abort_run;	   /* set by the first failure anywhere */
	/* SIGINT or SIGTERM: when it came. The measured window ends there and
	 * the run winds down as at its planned end. */
	_Atomic uint64_t stop_ns;
};

enum op_kind {
	OPK_READ = 0, /* getData of a random key */
	OPK_WRITE,    /* setData of a random key, version -1 */
	OPK_CREATE,   /* setup: create the prefix path or a key */
	OPK_EXISTS,   /* setup: stat a key that existed, to check its size */
	OPK_RESIZE,   /* setup: setData a key that existed with another size */
	OPK_SYNC,     /* sync("/") so a session sees the setup's znodes */
	OPK_COUNT,
};

#define ERR_CODE_SLOTS	  130 /* index -err; ERR_SIZE_MISMATCH past the codes */
#define ERR_SIZE_MISMATCH 129

/* One interval of the time series (--series): replies completed in it and
 * when the first and last successful setData of the interval completed, in
 * ns since the measured window began (write_first_ns is UINT64_MAX and
 * write_last_ns 0 while there is none), so the longest stretch without a
 * successful write is exact whenever it is longer than an interval. */
struct series_bucket {
	uint64_t reads;	 /* successful getData */
	uint64_t writes; /* successful setData */
	uint64_t errors; /* either, with an error reply or a lost connection */
	uint64_t write_first_ns;
	uint64_t write_last_ns;
};

/* At most this many intervals per run: duration_s * 1000 / series_ms. */
#define SERIES_BUCKETS_MAX 1000000

struct op_stats {
	uint64_t ok;
	uint64_t errors;
	uint64_t err_by_code[ERR_CODE_SLOTS];
	struct hist hist;
};

enum worker_mode {
	WORKER_SETUP = 0, /* one session creating the prefix and keys */
	WORKER_RUN,	  /* the measured load */
	WORKER_MODE_COUNT,
};

struct setup_stats {
	uint64_t created;
	uint64_t existed;
	uint64_t resized;
};

struct client;

struct worker {
	int id;
	enum worker_mode mode;
	struct bench *b;
	int epfd;
	int timerfd; /* open-loop send schedule; -1 in closed loop */
	struct client *sessions;
	int session_count;
	int sessions_live;    /* not yet closed or failed */
	int sessions_ready;   /* reached CLIENT_ACTIVE */
	int sessions_waiting; /* --reconnect: in CLIENT_IDLE until their next attempt */
	bool signalled_ready;
	uint64_t rng;
	uint64_t read_threshold; /* a read if the top 53 random bits are below */
	uint64_t armed_ns;	 /* when the timerfd fires next, 0 if disarmed */
	uint64_t measure_from_ns;
	uint64_t measure_to_ns;
	uint64_t hard_deadline_ns;
	/* Setup progress; only the setup worker uses these. */
	/* Keys that existed: checked with exists, resized with setData if
	 * their size differs (RESIZE_FLAG). A key is queued at most once at a
	 * time, so a ring of `keys` entries never overflows. */
	uint32_t *resize_keys;
	uint32_t resize_head;
	uint32_t resize_tail;
	struct setup_stats setup;
	struct op_stats stats[OPK_COUNT];
	struct series_bucket *series; /* series_len intervals; NULL without --series */
	uint32_t series_len;
	uint64_t reconnects;	   /* sessions re-established after a loss */
	uint64_t connect_failures; /* connections lost or attempts that failed */
	int failed_sessions;
	int result; /* worker_run()'s, when run on its own thread */
	pthread_t thread;
};

/* Builds sessions [first, first + count) of the run (session i talks to
 * server i % server_count) with inflight requests each. 0 or -errno. */
int worker_init(struct worker *w, struct bench *b, enum worker_mode mode, int id, int first,
		int count, int inflight);
void worker_free(struct worker *w);
/* Runs the loop until every session is closed or failed, or the hard
 * deadline passes. 0 if every session closed cleanly, else -errno. */
int worker_run(struct worker *w);
void *worker_thread(void *arg);

/* What main() merges from the joined workers for the report. */
struct run_totals {
	struct op_stats stats[OPK_COUNT];
	struct series_bucket *series; /* series_len intervals, or NULL */
	uint32_t series_len;
	uint64_t reconnects;
	uint64_t connect_failures;
};

/* report.c: prints the figures, human-readable or as CSV (cfg.csv). */
void report_print(const struct bench *b, const struct run_totals *t);
/* Writes the time series to cfg.series_path as CSV. 0 or -errno. */
int report_series(const struct bench *b, const struct run_totals *t);
/* The longest stretch in the series with no successful setData, in ns,
 * and where it starts (ns since the measured window began); the window's
 * start and end_ns bound the first and last stretch. */
uint64_t series_write_gap(const struct run_totals *t, uint64_t end_ns, uint64_t *from_ns);
/* workload.c: an empty series interval. */
void series_init(struct series_bucket *sb, uint32_t n);

uint64_t now_ns(void);
const char *op_kind_name(enum op_kind k);

#endif
