/* Session I/O for ringkeeper-bench: connect, handshake, pipelined requests
 * batched into one send per wakeup, replies parsed straight out of a large
 * receive buffer, pings when idle and a clean closeSession at the end.
 * Every wait has a deadline, so a dead or stalled server fails the session
 * (naming the server) instead of hanging the run; with --reconnect, the
 * session goes on with a new one on the next server instead. */
#include "bench/client.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/wire.h"
#include "core/log.h"

/* recv() calls per readiness event before yielding to other sessions. */
#define READ_ROUNDS_MAX	    4
#define FAILURES_LOGGED_MAX 4
/* What the ConnectRequest asks for; the server may negotiate it down. */
#define SESSION_TIMEOUT_MS 30000
/* Room in wbuf for a ConnectRequest, a ping and a closeSession. */
#define WBUF_SLACK_BYTES 256
/* --reconnect: after trying every server once in a row without success, a
 * session waits this long, so an ensemble that is electing a leader is not
 * flooded with connections; it bounds how late a session notices that
 * service is back. */
#define RECONNECT_PAUSE_NS 50000000u

static _Atomic int failures_logged;

static uint64_t timeout_ns(const struct client *s)
{
	return (uint64_t)(s->w->b->cfg.timeout_s * 1e9);
}

int client_init(struct client *s, struct worker *w, int index, int inflight)
{
	struct bench *b = w->b;
	memset(s, 0, sizeof *s);
	s->w = w;
	s->index = index;
	s->server_at = index % b->server_count;
	s->server = &b->servers[s->server_at];
	s->fd = -1;
	s->xid_next = 1;
	s->slot_cap = (uint32_t)inflight;
	s->slots = calloc(s->slot_cap, sizeof *s->slots);
	size_t per_req = (size_t)b->cfg.value_size + (size_t)b->path_max + 64;
	size_t rcap = (size_t)inflight * (per_req + 64) + 4096;
	s->rbuf_cap = rcap < (16u << 10) ? (16u << 10) : rcap > (1u << 20) ? (1u << 20) : rcap;
	s->rbuf = malloc(s->rbuf_cap);
	size_t wcap = (size_t)inflight * per_req + WBUF_SLACK_BYTES;
	jute_out_init(&s->wbuf, wcap, wcap);
	if (!s->slots || !s->rbuf || s->wbuf.err)
		return -ENOMEM;
	return 0;
}

void client_free(struct client *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	free(s->slots);
	free(s->rbuf);
	jute_out_free(&s->wbuf);
}

/* --reconnect: the session no longer waits for its next attempt. */
static void stop_waiting(struct client *s)
{
	if (s->state == CLIENT_IDLE && s->reconnect_at_ns) {
		s->reconnect_at_ns = 0;
		s->w->sessions_waiting--;
	}
}

static void finish(struct client *s, enum client_state state)
{
	stop_waiting(s);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->state = state;
	s->w->sessions_live--;
}

/* Forgets the connection: its fd, buffers and outstanding requests, which
 * count as lost (connectionloss) in the run's figures. */
static void drop_connection(struct client *s, uint64_t now)
{
	if (s->fd >= 0)
		close(s->fd); /* also leaves the epoll set: the fd is not shared */
	s->fd = -1;
	for (uint32_t i = 0; i < s->slot_count; i++)
		workload_lost(s, &s->slots[(s->slot_head + i) % s->slot_cap], now);
	s->slot_head = s->slot_count = 0;
	s->rbuf_len = 0;
	jute_out_reset(&s->wbuf);
	s->wbuf_sent = 0;
	s->poll_out = false;
	s->ping_outstanding = false;
	s->xid_next = 1;
	s->session_id = 0;
}

/* --reconnect: the session waits in CLIENT_IDLE for its next attempt, on
 * the next server; client_reopen_if_due() makes it. At the end of the run
 * it just closes. Only a loss of an active session is logged, with the
 * reconnection that follows it, so the log shows each outage once. */
static void lose(struct client *s, int err, const char *what)
{
	struct worker *w = s->w;
	const struct bench *b = w->b;
	uint64_t now = now_ns();
	bool was_active = s->state == CLIENT_ACTIVE;
	stop_waiting(s); /* a waiting session failed from outside: the run's end */
	w->connect_failures++;
	drop_connection(s, now);
	if (s->state == CLIENT_CLOSING || workload_done(s, now)) {
		finish(s, CLIENT_CLOSED);
		return;
	}
	if (was_active) {
		s->lost_ns = now;
		s->lost_from = s->server;
		s->attempts = 0;
	}
	s->attempts++;
	s->server_at = (s->server_at + 1) % b->server_count;
	s->server = &b->servers[s->server_at];
	if (was_active)
		log_warn("server %s: session %d: %s%s%s; reconnecting to %s", s->lost_from->name,
			 s->index, what, err ? ": " : "", err ? strerror(-err) : "",
			 s->server->name);
	bool round_done = s->attempts % (uint32_t)b->server_count == 0;
	s->reconnect_at_ns = now + (round_done ? RECONNECT_PAUSE_NS : 0);
	s->state = CLIENT_IDLE;
	w->sessions_waiting++;
}

void client_reopen_if_due(struct client *s, uint64_t now)
{
	if (s->state != CLIENT_IDLE || !s->reconnect_at_ns || now < s->reconnect_at_ns)
		return;
	stop_waiting(s);
	if (workload_done(s, now)) {
		finish(s, CLIENT_CLOSED);
		return;
	}
	client_open(s, now);
}

int client_fail(struct client *s, int err, const char *fmt, ...)
{
	if (!client_live(s))
		return err ? err : -EPROTO;
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (s->w->b->cfg.reconnect && s->w->mode == WORKER_RUN) {
		lose(s, err, what);
		return err ? err : -EPROTO;
	}
	if (atomic_fetch_add(&failures_logged, 1) < FAILURES_LOGGED_MAX)
		log_error("server %s: session %d: %s%s%s", s->server->name, s->index, what,
			  err ? ": " : "", err ? strerror(-err) : "");
	atomic_store(&s->w->b->abort_run, 1);
	s->w->failed_sessions++;
	finish(s, CLIENT_FAILED);
	return err ? err : -EPROTO;
}

static int set_poll_out(struct client *s, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = s};
	if (epoll_ctl(s->w->epfd, EPOLL_CTL_MOD, s->fd, &ev) < 0)
		return client_fail(s, -errno, "epoll_ctl");
	s->poll_out = on;
	return 0;
}

/* Writes out wbuf; whatever the socket does not take waits for EPOLLOUT. */
static int flush(struct client *s)
{
	while (s->wbuf_sent < s->wbuf.len) {
		ssize_t n = send(s->fd, s->wbuf.buf + s->wbuf_sent, s->wbuf.len - s->wbuf_sent,
				 MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return s->poll_out ? 0 : set_poll_out(s, true);
			return client_fail(s, -errno, "send");
		}
		s->wbuf_sent += (size_t)n;
	}
	jute_out_reset(&s->wbuf);
	s->wbuf_sent = 0;
	return s->poll_out ? set_poll_out(s, false) : 0;
}

/* Drops what has been sent so new frames append behind the unsent rest. */
static void wbuf_compact(struct client *s)
{
	if (s->wbuf_sent == 0)
		return;
	memmove(s->wbuf.buf, s->wbuf.buf + s->wbuf_sent, s->wbuf.len - s->wbuf_sent);
	s->wbuf.len -= s->wbuf_sent;
	s->wbuf_sent = 0;
}

static void push_request(struct client *s, const struct op *op, uint64_t now)
{
	RK_ASSERT(s->slot_count < s->slot_cap);
	wbuf_compact(s);
	int32_t xid = s->xid_next++;
	if (s->xid_next < 0)
		s->xid_next = 1;
	workload_put(s, op, xid);
	RK_ASSERT(!s->wbuf.err);
	uint32_t at = (s->slot_head + s->slot_count) % s->slot_cap;
	s->slots[at] =
	    (struct slot){.start_ns = op->start_ns, .xid = xid, .key = op->key, .kind = op->kind};
	if (s->slot_count++ == 0)
		s->last_progress_ns = now;
	s->last_send_ns = now;
}

static void send_bare(struct client *s, int32_t xid, enum zk_op type, uint64_t now)
{
	wbuf_compact(s);
	wire_put_bare(&s->wbuf, xid, type);
	RK_ASSERT(!s->wbuf.err);
	s->last_send_ns = now;
	flush(s);
}

void client_open(struct client *s, uint64_t now)
{
	const struct server *srv = s->server;
	s->state = CLIENT_CONNECTING;
	s->deadline_ns = now + timeout_ns(s);
	s->fd = socket(srv->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		client_fail(s, -errno, "socket");
		return;
	}
	int one = 1;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(s->fd, (const struct sockaddr *)&srv->addr, srv->addr_len) < 0 &&
	    errno != EINPROGRESS) {
		client_fail(s, -errno, "connect");
		return;
	}
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = s};
	if (epoll_ctl(s->w->epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
		client_fail(s, -errno, "epoll_ctl");
		return;
	}
	s->poll_out = true;
}

static int on_connected(struct client *s, uint64_t now)
{
	int soerr = 0;
	socklen_t len = sizeof soerr;
	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return client_fail(s, -errno, "getsockopt");
	if (soerr)
		return client_fail(s, -soerr, "connect");
	wire_put_connect(&s->wbuf, SESSION_TIMEOUT_MS);
	s->state = CLIENT_HANDSHAKE;
	s->deadline_ns = now + timeout_ns(s);
	return flush(s);
}

static int on_connect_reply(struct client *s, struct jute_in *in, uint64_t now)
{
	struct wire_connect_reply r;
	if (wire_get_connect(in, &r))
		return client_fail(s, -EBADMSG, "malformed ConnectResponse");
	if (r.timeout_ms <= 0)
		return client_fail(s, 0, "server refused the session (timeout %d)", r.timeout_ms);
	s->session_id = r.session_id;
	s->timeout_ms = r.timeout_ms;
	s->state = CLIENT_SYNCING;
	s->deadline_ns = now + timeout_ns(s);
	push_request(s, &(struct op){.kind = OPK_SYNC, .start_ns = now}, now);
	return flush(s);
}

static int on_sync_reply(struct client *s, int32_t err, uint64_t now)
{
	if (err != ZOK)
		return client_fail(s, 0, "sync: %s (%d)", proto_err_name(err), err);
	s->state = CLIENT_ACTIVE;
	if (!s->ever_ready) {
		s->ever_ready = true;
		s->w->sessions_ready++;
	}
	if (s->lost_ns) {
		s->w->reconnects++;
		log_info("server %s: session %d: new session after %.0f ms (%u failed attempts) "
			 "since losing %s",
			 s->server->name, s->index, (double)(now - s->lost_ns) / 1e6,
			 s->attempts - 1, s->lost_from->name);
		s->lost_ns = 0;
	}
	return 0;
}

static int on_frame(struct client *s, const uint8_t *p, uint32_t len, uint64_t now)
{
	struct jute_in in = jute_in_make(p, len);
	if (s->state == CLIENT_HANDSHAKE)
		return on_connect_reply(s, &in, now);
	struct wire_reply_header h;
	if (wire_get_header(&in, &h))
		return client_fail(s, -EBADMSG, "malformed reply header");
	if (h.xid == XID_PING) {
		s->ping_outstanding = false;
		return 0;
	}
	if (h.xid == XID_NOTIFICATION)
		return 0;
	if (s->state == CLIENT_CLOSING && s->slot_count == 0 && h.xid == s->close_xid) {
		finish(s, CLIENT_CLOSED);
		return 0;
	}
	if (s->slot_count == 0 || s->slots[s->slot_head].xid != h.xid)
		return client_fail(s, -EPROTO, "reply xid %d, expected %d (err %d)", h.xid,
				   s->slot_count ? s->slots[s->slot_head].xid : 0, h.err);
	struct slot sl = s->slots[s->slot_head];
	s->slot_head = s->slot_head + 1 == s->slot_cap ? 0 : s->slot_head + 1;
	s->slot_count--;
	s->last_progress_ns = now;
	if (sl.kind == OPK_SYNC)
		return on_sync_reply(s, h.err, now);
	return workload_reply(s, &sl, h.err, &in, now);
}

/* Hands every complete frame in rbuf to on_frame, keeps a partial tail and
 * grows rbuf (bounded) if that tail is the start of an oversized frame. */
static int parse_frames(struct client *s, uint64_t now)
{
	size_t off = 0;
	size_t need = 0;
	int err = 0;
	while (!err && client_live(s) && s->rbuf_len - off >= ZK_FRAME_HEADER_BYTES) {
		uint32_t len = jute_be32_get(s->rbuf + off);
		if (len > FRAME_BYTES_MAX)
			return client_fail(
			    s, -EMSGSIZE, "reply frame of %u bytes%s", len,
			    s->state == CLIENT_HANDSHAKE ? " (not a ZooKeeper server?)" : "");
		if (s->rbuf_len - off - ZK_FRAME_HEADER_BYTES < len) {
			need = ZK_FRAME_HEADER_BYTES + (size_t)len;
			break;
		}
		err = on_frame(s, s->rbuf + off + ZK_FRAME_HEADER_BYTES, len, now);
		off += ZK_FRAME_HEADER_BYTES + len;
	}
	if (err || !client_live(s))
		return err;
	memmove(s->rbuf, s->rbuf + off, s->rbuf_len - off);
	s->rbuf_len -= off;
	if (need > s->rbuf_cap) {
		uint8_t *nb = realloc(s->rbuf, need);
		if (!nb)
			return client_fail(s, -ENOMEM, "receive buffer of %zu bytes", need);
		s->rbuf = nb;
		s->rbuf_cap = need;
	}
	return 0;
}

static int read_replies(struct client *s, uint64_t now)
{
	for (int round = 0; round < READ_ROUNDS_MAX; round++) {
		size_t room = s->rbuf_cap - s->rbuf_len;
		ssize_t n = recv(s->fd, s->rbuf + s->rbuf_len, room, 0);
		if (n == 0) {
			if (s->state == CLIENT_CLOSING && s->slot_count == 0) {
				finish(s, CLIENT_CLOSED);
				return 0;
			}
			return client_fail(s, 0, "server closed the connection");
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return client_fail(s, -errno, "recv");
		}
		s->rbuf_len += (size_t)n;
		int err = parse_frames(s, now);
		if (err || !client_live(s) || (size_t)n < room)
			return err;
	}
	return 0;
}

void client_on_event(struct client *s, uint32_t events)
{
	uint64_t now = now_ns();
	int err = 0;
	switch (s->state) {
	case CLIENT_CONNECTING:
		err = on_connected(s, now);
		break;
	case CLIENT_HANDSHAKE:
	case CLIENT_SYNCING:
	case CLIENT_ACTIVE:
	case CLIENT_CLOSING:
		if (events & EPOLLOUT)
			err = flush(s);
		if (!err && client_live(s) && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
			err = read_replies(s, now);
		break;
	case CLIENT_IDLE:
	case CLIENT_CLOSED:
	case CLIENT_FAILED:
	case CLIENT_STATE_COUNT:
		return; /* a stale event for a session closed earlier in the batch */
	}
	if (!err && client_live(s))
		client_drive(s, now);
}

static void fill(struct client *s, uint64_t now)
{
	struct op op;
	bool queued = false;
	while (s->slot_count < s->slot_cap && workload_next(s, now, &op)) {
		push_request(s, &op, now);
		queued = true;
	}
	if (queued)
		flush(s);
}

static void maybe_ping(struct client *s, uint64_t now)
{
	uint64_t idle_ns = (uint64_t)s->timeout_ms * 1000000 / 3;
	if (s->ping_outstanding || now - s->last_send_ns < idle_ns)
		return;
	s->ping_outstanding = true;
	s->ping_sent_ns = now;
	send_bare(s, XID_PING, ZOP_PING, now);
}

void client_drive(struct client *s, uint64_t now)
{
	bool aborted = atomic_load_explicit(&s->w->b->abort_run, memory_order_relaxed);
	switch (s->state) {
	case CLIENT_CONNECTING:
	case CLIENT_HANDSHAKE:
	case CLIENT_SYNCING:
		if (aborted) /* the run is over before it started; no need to be polite */
			finish(s, CLIENT_CLOSED);
		break;
	case CLIENT_ACTIVE:
		if (!workload_done(s, now)) {
			fill(s, now);
		} else if (s->slot_count == 0) {
			s->close_xid = s->xid_next++;
			s->state = CLIENT_CLOSING;
			s->deadline_ns = now + timeout_ns(s);
			send_bare(s, s->close_xid, ZOP_CLOSE_SESSION, now);
			break;
		}
		if (s->state == CLIENT_ACTIVE) /* not if fill() lost the connection */
			maybe_ping(s, now);
		break;
	case CLIENT_IDLE:
	case CLIENT_CLOSING:
	case CLIENT_CLOSED:
	case CLIENT_FAILED:
	case CLIENT_STATE_COUNT:
		break;
	}
}

static const char *const waiting_for[CLIENT_STATE_COUNT] = {
    [CLIENT_CONNECTING] = "TCP connect",
    [CLIENT_HANDSHAKE] = "ConnectResponse",
    [CLIENT_SYNCING] = "sync reply",
    [CLIENT_CLOSING] = "closeSession reply",
};

void client_tick(struct client *s, uint64_t now)
{
	double limit_s = s->w->b->cfg.timeout_s;
	switch (s->state) {
	case CLIENT_CONNECTING:
	case CLIENT_HANDSHAKE:
	case CLIENT_SYNCING:
	case CLIENT_CLOSING:
		if (now > s->deadline_ns) {
			client_fail(s, 0, "no %s within %.1f s", waiting_for[s->state], limit_s);
			return;
		}
		break;
	case CLIENT_ACTIVE:
		if (s->slot_count && now - s->last_progress_ns > timeout_ns(s)) {
			client_fail(s, 0, "no reply for %.1f s with %u requests in flight", limit_s,
				    s->slot_count);
			return;
		}
		if (s->ping_outstanding && now - s->ping_sent_ns > timeout_ns(s)) {
			client_fail(s, 0, "no ping reply for %.1f s", limit_s);
			return;
		}
		break;
	case CLIENT_IDLE:
		client_reopen_if_due(s, now);
		return;
	case CLIENT_CLOSED:
	case CLIENT_FAILED:
	case CLIENT_STATE_COUNT:
		return;
	}
	client_drive(s, now);
}
