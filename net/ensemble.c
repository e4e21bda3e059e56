/* Ensemble glue: peer transport <-> replica, and restarting from disk. */
#include "net/ensemble.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <linux/close_range.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "net/peer.h"

#define CMDLINE_BYTES_MAX (64u << 10)
#define ARGS_MAX	  256
#define BIND_TRIES	  100
#define BIND_RETRY_MS	  100

/* The CPUs the process may use, as it started: the thread that restarts
 * is pinned to one, and an exec keeps the caller's mask. */
static cpu_set_t start_cpus;
static bool start_cpus_known;

struct ensemble {
	_Atomic bool *stopping;
	struct peer_net *net;
	struct replica *repl;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_up(void *ctx, uint32_t sid)
{
	struct ensemble *e = ctx;
	replica_peer_up(e->repl, sid, mono_ms());
}

static void on_down(void *ctx, uint32_t sid)
{
	struct ensemble *e = ctx;
	replica_peer_down(e->repl, sid, mono_ms());
}

static void on_frame(void *ctx, uint32_t sid, const uint8_t *buf, size_t len)
{
	struct ensemble *e = ctx;
	replica_frame(e->repl, sid, buf, len, mono_ms());
}

static void send_frame(void *ctx, uint32_t sid, const void *buf, size_t len)
{
	struct ensemble *e = ctx;
	int rc = peer_send(e->net, sid, buf, len);
	if (rc && rc != -ENOTCONN)
		log_warn("peer %u: frame of %zu bytes not sent: %s", sid, len, strerror(-rc));
}

static void disconnect(void *ctx, uint32_t sid)
{
	struct ensemble *e = ctx;
	peer_close(e->net, sid);
}

/* Rebuild the state from disk by running this program again with the same
 * arguments: what the process holds (sockets, rings, logs) closes on exec;
 * clients reconnect, as they do when a ZooKeeper server leaves an epoch. */
static void restart_process(void *ctx, const char *why)
{
	struct ensemble *e = ctx;
	if (atomic_load(e->stopping)) {
		/* Losing the quorum while the servers shut down is no reason to
		 * come back: finish the shutdown instead. */
		log_info("not restarting (%s): shutting down", why);
		return;
	}
	static char buf[CMDLINE_BYTES_MAX];
	char *argv[ARGS_MAX + 1];
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0) {
		log_error("cannot restart (%s): /proc/self/cmdline unreadable; exiting", why);
		_exit(1);
	}
	buf[n] = 0;
	int argc = 0;
	for (char *p = buf; p < buf + n && argc < ARGS_MAX; p += strlen(p) + 1)
		argv[argc++] = p;
	argv[argc] = NULL;
	log_warn("re-executing to rebuild the state from disk (%s)", why);
	fflush(NULL);
	if (start_cpus_known)
		sched_setaffinity(0, sizeof start_cpus, &start_cpus);
	syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
	execv("/proc/self/exe", argv);
	log_error("exec failed: %s; exiting", strerror(errno));
	_exit(1);
}

static void fill_members(const struct config *cfg, struct zab_config *zc, struct peer_addr *peers,
			 size_t *n_peers)
{
	*n_peers = 0;
	for (uint32_t i = 0; i < cfg->server_count; i++) {
		const struct config_member *m = &cfg->servers[i];
		zc->members[zc->n_members++] =
		    (struct zab_member){.sid = (uint32_t)m->id, .observer = m->observer};
		if (m->id == cfg->my_id)
			continue;
		struct peer_addr *p = &peers[(*n_peers)++];
		p->sid = (uint32_t)m->id;
		snprintf(p->host, sizeof p->host, "%s", m->host);
		p->port = m->quorum_port;
	}
}

struct ensemble *ensemble_create(const struct config *cfg, const char *snap_dir,
				 _Atomic bool *stopping, char *err, size_t errlen)
{
	struct ensemble *e = calloc(1, sizeof *e);
	if (e)
		e->stopping = stopping;
	static struct peer_addr peers[CONFIG_SERVERS_MAX];
	start_cpus_known = sched_getaffinity(0, sizeof start_cpus, &start_cpus) == 0;
	const struct config_member *self = config_self(cfg);
	if (!e || !self) {
		snprintf(err, errlen, "%s", e ? "myid names no server line" : "out of memory");
		free(e);
		return NULL;
	}
	struct replica_config rc = {
	    .zab = {.my_sid = (uint32_t)cfg->my_id,
		    .tick_ms = cfg->tick_time_ms,
		    .init_limit = cfg->init_limit_ticks,
		    .sync_limit = cfg->sync_limit_ticks,
		    .finalize_ms = 50},
	    .data_dir = cfg->data_dir,
	    .snap_dir = snap_dir,
	    .send = send_frame,
	    .disconnect = disconnect,
	    .restart = restart_process,
	    .host_ctx = e,
	};
	size_t n_peers;
	fill_members(cfg, &rc.zab, peers, &n_peers);
	e->repl = replica_create(&rc);
	struct peer_config pc = {
	    .my_sid = (uint32_t)cfg->my_id,
	    .listen_host = self->host,
	    .listen_port = self->quorum_port,
	    .peers = peers,
	    .n_peers = n_peers,
	    .on_up = on_up,
	    .on_down = on_down,
	    .on_frame = on_frame,
	    .ctx = e,
	};
	/* After a restart the previous image's listener may outlive it for a
	 * moment (its io_uring is torn down asynchronously): retry a while. */
	for (int tries = 0; e->repl && !e->net && tries < BIND_TRIES; tries++) {
		e->net = peer_create(&pc, err, errlen);
		if (!e->net && !strstr(err, "in use"))
			break;
		if (!e->net)
			usleep(BIND_RETRY_MS * 1000);
	}
	if (!e->repl || !e->net) {
		if (!e->repl)
			snprintf(err, errlen, "out of memory");
		ensemble_destroy(e);
		return NULL;
	}
	return e;
}

void ensemble_destroy(struct ensemble *e)
{
	if (!e)
		return;
	peer_destroy(e->net);
	replica_destroy(e->repl);
	free(e);
}

struct replica *ensemble_replica(struct ensemble *e)
{
	return e->repl;
}

int ensemble_wait_fd(const struct ensemble *e)
{
	return peer_wait_fd(e->net);
}

void ensemble_poll(struct ensemble *e, int64_t now_ms, bool timer)
{
	peer_poll(e->net, now_ms);
	if (timer)
		replica_tick(e->repl, now_ms);
}
