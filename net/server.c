/* Server start-up and shutdown: listeners, the sequencer, one pinned
 * thread per core, and the signal wait. */
#include "net/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "net/admin.h"
#include "net/core_loop.h"
#include "net/ensemble.h"
#include "storage/storage.h"
#include "storage/wal.h"

#define LISTEN_BACKLOG 4096

/* A SO_REUSEPORT listener; *port 0 binds an ephemeral port and returns it. */
static int listen_on(const char *addr, int *port)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)*port);
		len = sizeof *a4;
	} else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)*port);
		len = sizeof *a6;
	} else {
		log_error("clientPortAddress %s is not an IPv4 or IPv6 address", addr);
		return -EINVAL;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, LISTEN_BACKLOG)) {
		int err = errno;
		log_error("cannot listen on %s:%d: %s", addr, *port, strerror(err));
		close(fd);
		return -err;
	}
	if (*port == 0) {
		getsockname(fd, (struct sockaddr *)&ss, &len);
		*port = ntohs(ss.ss_family == AF_INET ? a4->sin_port : a6->sin6_port);
	}
	return fd;
}

struct core_thread {
	struct server *srv;
	struct core *core;
	int cpu;
	pthread_t thread;
	int rc;
};

static void *core_main(void *arg)
{
	struct core_thread *t = arg;
	if (t->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(t->cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof set, &set);
	}
	t->rc = core_run(t->core);
	if (t->rc)
		atomic_store(&t->srv->stop, true);
	return NULL;
}

/* The i-th CPU this process may run on, or -1. */
static int nth_cpu(int i)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set))
		return -1;
	int seen = 0;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &set) && seen++ == i)
			return cpu;
	return -1;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_for_signal(struct server *srv)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	while (!atomic_load(&srv->stop)) {
		struct timespec ts = {0, 200 * 1000000L};
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			log_info("signal %d: shutting down", sig);
			break;
		}
	}
	atomic_store(&srv->stop, true);
	return 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Recover the tree and sessions from the txn log, then keep logging to it
 * (in an ensemble through the replica, which also learns the history). */
static int open_log(const struct config *cfg, struct sequencer *seq, struct replica *repl,
		    const struct wal_stats **stats)
{
	char dir[CONFIG_PATH_MAX + 16];
	snprintf(dir, sizeof dir, "%s/txnlog", cfg->data_log_dir);
	char err[512];
	int rc = sequencer_load_snapshot(seq, err, sizeof err);
	if (rc) {
		log_error("%s", err);
		return rc;
	}
	struct wal_config wc;
	wal_config_init(&wc, dir);
	wc.force_sync = cfg->force_sync;
	wc.truncate_corrupt = cfg->truncate_corrupt_log;
	/* Room for the sequencer's 8 MiB of not-yet-durable txns plus one
	 * txn of jute.maxbuffer, so the log never refuses a record. */
	wc.batch_bytes_max = 24u << 20;
	/* preAllocSize (KiB) sizes the log files, as ZooKeeper's, but a file
	 * must hold the largest group commit (batch_bytes_max). */
	uint64_t seg = ((uint64_t)cfg->prealloc_size_kb * 1024 + WAL_BLOCK_BYTES - 1) /
		       WAL_BLOCK_BYTES * WAL_BLOCK_BYTES;
	uint64_t seg_min = (uint64_t)wc.batch_bytes_max + (8u << 20);
	if (seg < seg_min) {
		log_warn("preAllocSize %ld KiB raised to %lu KiB: a log file must hold one "
			 "group commit",
			 (long)cfg->prealloc_size_kb, (unsigned long)(seg_min / 1024));
		seg = seg_min;
	}
	wc.segment_bytes = seg;
	int64_t t0 = mono_ms();
	struct storage *st = repl ? storage_wal_open(&wc, replica_replay, repl, err, sizeof err)
				  : storage_wal_open(&wc, sequencer_replay, seq, err, sizeof err);
	if (!st) {
		log_error("cannot open the txn log: %s", err);
		return -EIO;
	}
	*stats = storage_wal_stats(st);
	sequencer_attach_storage(seq, repl ? replica_storage(repl, st) : st, mono_ms());
	log_info("txn log %s opened in %ld ms", dir, (long)(mono_ms() - t0));
	if (repl && (rc = replica_start(repl, mono_ms(), err, sizeof err)))
		log_error("%s", err);
	return rc;
}

static void peer_poll_hook(struct server *srv, int64_t now_ms, bool timer)
{
	ensemble_poll(srv->ens, now_ms, timer);
}

/* An ensemble member: the transport and replica, hooked into the
 * sequencer's config. */
static int join_ensemble(struct server *srv, struct sequencer_config *sc)
{
	char err[512];
	srv->ens = ensemble_create(srv->cfg, sc->snap_dir, &srv->stop, err, sizeof err);
	if (!srv->ens) {
		log_error("cannot join the ensemble: %s", err);
		return -EINVAL;
	}
	sc->forward = replica_forward_hook;
	sc->remote_deliver = replica_deliver_hook;
	sc->snapshot_done = replica_snapshot_hook;
	sc->repl_ctx = ensemble_replica(srv->ens);
	sc->server_id = (uint8_t)srv->cfg->my_id;
	srv->peer_fd = ensemble_wait_fd(srv->ens);
	srv->peer_poll = peer_poll_hook;
	return 0;
}

int server_run(const struct config *cfg)
{
	struct server *srv = calloc(1, sizeof *srv);
	struct core_thread *threads = calloc((size_t)cfg->cores, sizeof *threads);
	int *fds = malloc((size_t)cfg->cores * sizeof *fds);
	int rc = -ENOMEM;
	int n_fds = 0;
	if (!srv || !threads || !fds)
		goto out;
	srv->cfg = cfg;
	srv->cores = cfg->cores;
	srv->start_ms = wall_ms();
	srv->core = calloc((size_t)cfg->cores, sizeof *srv->core);
	srv->ring_fds = calloc((size_t)cfg->cores, sizeof *srv->ring_fds);
	srv->stats = aligned_alloc(64, (size_t)cfg->cores * sizeof *srv->stats);
	if (!srv->core || !srv->ring_fds || !srv->stats)
		goto out;
	memset(srv->stats, 0, (size_t)cfg->cores * sizeof *srv->stats);
	for (int i = 0; i < cfg->cores; i++) {
		atomic_init(&srv->stats[i].latency_min_us, UINT64_MAX);
		summary_init(&srv->stats[i].update_latency);
	}
	char snap_dir[CONFIG_PATH_MAX + 16];
	snprintf(snap_dir, sizeof snap_dir, "%s/snapshots", cfg->data_dir);
	int port = cfg->client_port;
	for (; n_fds < cfg->cores; n_fds++) {
		fds[n_fds] = listen_on(cfg->client_port_address, &port);
		if (fds[n_fds] < 0) {
			rc = fds[n_fds];
			goto out;
		}
	}
	srv->bound_port = port;
	struct sequencer_config sc = {
	    .cores = cfg->cores,
	    .min_session_timeout_ms = cfg->min_session_timeout_ms,
	    .max_session_timeout_ms = cfg->max_session_timeout_ms,
	    .super_digest = cfg->super_digest[0] ? cfg->super_digest : NULL,
	    .extended_types = cfg->extended_types_enabled,
	    .reconfig_enabled = cfg->reconfig_enabled && !config_is_ensemble(cfg),
	    .enforce_quota = cfg->enforce_quota,
	    .snap_dir = snap_dir,
	    .snap_count = cfg->snap_count,
	    .snap_bytes_limit = cfg->snap_size_limit_kb * 1024,
	    .snap_retain_count = cfg->autopurge_snap_retain_count,
	    .snap_purge = cfg->autopurge_purge_interval_hours > 0,
	    .container_check_interval_ms = cfg->container_check_interval_ms,
	    .container_max_per_minute = cfg->container_max_per_minute,
	    .wake = core_wake,
	    .wake_ctx = srv,
	};
	if (config_is_ensemble(cfg) && (rc = join_ensemble(srv, &sc)))
		goto out;
	rc = -ENOMEM;
	srv->seq = sequencer_create(&sc);
	if (!srv->seq)
		goto out;
	struct replica *repl = srv->ens ? ensemble_replica(srv->ens) : NULL;
	if (repl)
		replica_bind(repl, srv->seq);
	rc = open_log(cfg, srv->seq, repl, &srv->wal_stats);
	if (rc)
		goto out;
	rc = -ENOMEM;
	for (int i = 0; i < cfg->cores; i++) {
		srv->core[i] = core_create(srv, i, fds[i]);
		if (!srv->core[i])
			goto out;
	}
	if (cfg->admin_enable_server || cfg->metrics_prometheus) {
		char err[CONFIG_ADDR_MAX + 256];
		srv->admin = admin_create(srv, err, sizeof err);
		if (!srv->admin) {
			log_error("%s", err);
			rc = -EADDRINUSE;
			goto out;
		}
	}
	/* Signals go to this thread alone: block them before the cores start. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	for (int i = 0; i < cfg->cores; i++) {
		threads[i] =
		    (struct core_thread){.srv = srv, .core = srv->core[i], .cpu = nth_cpu(i)};
		if (pthread_create(&threads[i].thread, NULL, core_main, &threads[i])) {
			atomic_store(&srv->stop, true);
			for (int j = 0; j < i; j++)
				pthread_join(threads[j].thread, NULL);
			goto out;
		}
	}
	log_info("ringkeeper serving on %s:%d with %d cores, data in %s", cfg->client_port_address,
		 port, cfg->cores, cfg->data_dir);
	wait_for_signal(srv);
	rc = 0;
	for (int i = 0; i < cfg->cores; i++) {
		pthread_join(threads[i].thread, NULL);
		if (threads[i].rc)
			rc = threads[i].rc;
	}
	log_info("stopped");
out:
	/* The admin server goes after the cores: core 0 answers the reports it
	 * still waits for as it is destroyed. */
	for (int i = 0; srv && srv->core && i < cfg->cores; i++)
		core_destroy(srv->core[i]);
	if (srv)
		admin_destroy(srv->admin);
	for (int i = 0; i < n_fds; i++)
		close(fds[i]);
	if (srv) {
		sequencer_destroy(srv->seq);
		ensemble_destroy(srv->ens);
		free(srv->core);
		free(srv->ring_fds);
		free(srv->stats);
	}
	free(srv);
	free(threads);
	free(fds);
	return rc;
}
