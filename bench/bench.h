/* ringkeeper-bench internals: the run description shared read-only by all
 * worker threads, and the worker (one epoll loop, many sessions) API.
 *
 * Ownership: main() owns struct bench and everything it points to; workers
 * only read it, except for the three atomics at its end. Each worker owns
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
	int failed_sessions; /* summed by main from the joined workers */

	/* Shared between main and the workers. */
	_Atomic uint64_t start_ns; /* 0 until main releases the run */
	_Atomic int ready_workers; /* workers whose sessions are all usable */
	_Atomic int abort_run;	   /* set by the first failure anywhere */
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
	int sessions_live;  /* not yet closed or failed */
	int sessions_ready; /* reached CLIENT_ACTIVE */
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

/* report.c: prints the figures, human-readable or as CSV (cfg.csv). */
void report_print(const struct bench *b, const struct op_stats stats[OPK_COUNT]);

uint64_t now_ns(void);
const char *op_kind_name(enum op_kind k);

#endif
