/* The server: one thread per core, each running net/core_loop on its own
 * io_uring, plus the sequencer on core 0. server_run() blocks until
 * SIGTERM or SIGINT, then stops every core and returns.
 *
 * struct server is the read-mostly context every core is handed: the
 * configuration, the sequencer, and what cores need of each other (ring
 * fds for wake-ups, counters for status). It is not a global: main owns it
 * and passes it down. */
#ifndef RK_SERVER_H
#define RK_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "consensus/sequencer.h"
#include "core/summary.h"
#include "net/config.h"
#include "storage/wal.h"

struct core;
struct admin;

/* Per-core counters, written by their core, read by any (4lw, metrics). */
struct core_stats {
	_Alignas(64) _Atomic uint64_t packets_received;
	_Atomic uint64_t packets_sent;
	_Atomic uint64_t connections;
	_Atomic uint64_t outstanding;
	_Atomic uint64_t latency_total_us;
	_Atomic uint64_t latency_count;
	_Atomic uint64_t latency_max_us;
	_Atomic uint64_t latency_min_us; /* UINT64_MAX until the first request */
	_Atomic uint64_t watches;
	_Atomic uint64_t watch_paths;
	_Atomic uint64_t watch_sessions;
	_Atomic uint64_t auth_failed;  /* auth packets refused */
	struct summary update_latency; /* writes, received to answered, in us */
};

#define IP_BUCKETS 4096

struct server {
	const struct config *cfg;
	struct sequencer *seq;
	int cores;
	struct core **core;
	_Atomic int *ring_fds;
	struct core_stats *stats;
	/* Connections per client address (hashed), for maxClientCnxns. */
	_Atomic int32_t ip_conns[IP_BUCKETS];
	_Atomic bool stop;
	int64_t start_ms;
	int bound_port; /* the port actually bound (clientPort 0 picks one) */
	/* Ensemble (NULL standalone): core 0 calls peer_poll when peer_fd is
	 * readable (timer false) and every few ms (timer true). */
	void (*peer_poll)(struct server *srv, int64_t now_ms, bool timer);
	int peer_fd;
	struct ensemble *ens;
	const struct wal_stats *wal_stats; /* the txn log's, for status */
	/* Admin HTTP server (NULL when disabled): core 0 calls admin_poll
	 * when admin_fd is readable. */
	struct admin *admin;
	int admin_fd;
};

int server_run(const struct config *cfg);

#endif
