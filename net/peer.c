/* The peer transport: one TCP connection per pair of servers, driven by an
 * io_uring of its own that the owner's thread polls (see peer.h).
 *
 * A connection lives in a slot of a fixed table. user_data packs the
 * operation, the slot and the slot's generation; a slot is only reused once
 * every operation it started has completed, and a completion's generation
 * is asserted against its slot, so a late completion never reaches a
 * reused slot. Each connection has at most one connect, one recv and one
 * send in flight. Frames queued while a send is in flight gather in the
 * connection's output buffer and leave in the next send, which is how
 * small frames are batched without delaying the first one. */
#include "net/peer.h"

#include <errno.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/log.h"

/* Bounds. */
#define SQ_ENTRIES	   256
#define CQ_ENTRIES	   4096
#define PENDING_MAX	   32 /* accepted sockets whose hello has not arrived */
#define SLOTS_MAX	   (2 * PEER_COUNT_MAX + PENDING_MAX) /* current + closing, pending */
#define IN_BYTES_MIN	   (64u << 10) /* receive buffer; grows to the frame in progress */
#define IN_BYTES_KEEP	   (1u << 20)  /* shrink back to IN_BYTES_MIN above this */
#define OUT_BYTES_MIN	   (64u << 10)
#define OUT_BYTES_KEEP	   (1u << 20)
#define IO_BYTES_MAX	   (1u << 30) /* one send or recv; the SQE's len is 32 bits */
#define CQES_PER_POLL	   4096
#define DRAIN_ROUNDS	   200 /* peer_destroy waits at most this many times DRAIN_WAIT_NS */
#define DRAIN_WAIT_NS	   10000000
#define LISTEN_BACKLOG	   64
#define FRAME_BYTES_DEF	   ((size_t)64 << 20)
#define OUT_BYTES_DEF	   ((size_t)512 << 20)
#define RECONNECT_MS_DEF   100
#define CONNECT_TIMEOUT_MS 5000
#define HDR		   sizeof(struct peer_frame_header)

/* Every slot has at most three operations and three cancels in flight, the
 * listener one accept: the completion queue can never overflow. */
_Static_assert(6 * SLOTS_MAX + 1 <= CQ_ENTRIES, "completion queue bound");

enum op {
	OP_ACCEPT = 0, /* accept on the listener */
	OP_CONNECT,    /* connect of an outgoing connection */
	OP_RECV,       /* recv into a connection's input buffer */
	OP_SEND,       /* send of a connection's batch */
	OP_CANCEL,     /* cancel of one of the above; nothing to do */
	OP_COUNT,
};

enum conn_state {
	CONN_FREE = 0,	 /* slot unused */
	CONN_CONNECTING, /* outgoing: connect in flight */
	CONN_HELLO_SENT, /* outgoing: hello queued, waiting for the ack */
	CONN_HELLO_WAIT, /* accepted: waiting for the hello */
	CONN_UP,	 /* handshake done; frames flow */
	CONN_CLOSING,	 /* shut down; released when no operation is in flight */
	CONN_STATE_COUNT,
};

struct buf {
	uint8_t *p;
	size_t len, cap;
};

struct link;

struct conn {
	enum conn_state state;
	int fd;
	uint32_t gen;
	uint8_t ops;	     /* bit (1 << enum op) per operation in flight */
	bool busy;	     /* its frames are being delivered: release waits */
	struct link *link;   /* NULL until the hello names an accepted peer */
	int64_t deadline_ms; /* for connect plus handshake */
	uint8_t *in;	     /* received bytes; unparsed from in_off to in_len */
	size_t in_off, in_len, in_cap;
	struct buf out;	    /* frames waiting for the next send */
	struct buf sending; /* the batch in flight, sent bytes so far */
	size_t sent;
	char name[320]; /* for log lines */
};

/* One other server of the ensemble. */
struct link {
	uint32_t sid;
	bool we_connect; /* its sid is smaller than ours */
	int slot;	 /* its connection, -1 if none; only UP ones for accepted */
	int64_t next_attempt_ms;
	uint32_t failures; /* failed attempts in a row: only the first is logged */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char host[256];
	int port;
};

struct peer_net {
	struct peer_config cfg; /* defaults applied; peers copied into links */
	struct io_uring ring;
	bool ring_ok;
	bool destroying; /* no callbacks, no new operations */
	int efd;
	int listen_fd;
	bool accept_armed;
	int64_t accept_retry_ms;
	struct link *links;
	size_t n_links;
	struct conn *conns;
	uint32_t n_conns;
	uint32_t *free_slots;
	uint32_t free_n;
	uint32_t ops_n; /* accept, connect, recv, send in flight */
	int64_t now_ms; /* the last peer_poll's */
	char listen_name[300];
};

static uint64_t ud_pack(enum op op, uint32_t slot, uint32_t gen)
{
	return (uint64_t)op << 56 | (uint64_t)slot << 32 | gen;
}

static uint32_t slot_of(const struct peer_net *pn, const struct conn *k)
{
	return (uint32_t)(k - pn->conns);
}

/* An SQE, submitting what is queued when the ring is full. */
static struct io_uring_sqe *get_sqe(struct peer_net *pn)
{
	struct io_uring_sqe *sqe;
	while (!(sqe = io_uring_get_sqe(&pn->ring)))
		io_uring_submit(&pn->ring);
	return sqe;
}

static void op_start(struct peer_net *pn, struct conn *k, struct io_uring_sqe *sqe, enum op op)
{
	RK_ASSERT(!(k->ops & 1u << op));
	io_uring_sqe_set_data64(sqe, ud_pack(op, slot_of(pn, k), k->gen));
	k->ops |= (uint8_t)(1u << op);
	pn->ops_n++;
}

static uint32_t checksum(const void *p, size_t len)
{
	return (uint32_t)XXH3_64bits(p, len);
}

static struct link *link_find(const struct peer_net *pn, uint32_t sid)
{
	/* Ensembles are small (PEER_COUNT_MAX): a scan beats keeping an index. */
	for (size_t i = 0; i < pn->n_links; i++)
		if (pn->links[i].sid == sid)
			return &pn->links[i];
	return NULL;
}

static struct conn *link_conn(const struct peer_net *pn, const struct link *l)
{
	return l && l->slot >= 0 ? &pn->conns[l->slot] : NULL;
}

/* "host:port" or "[v6]:port" of a socket address. */
static void addr_format(const struct sockaddr *sa, socklen_t len, char *out, size_t outlen)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];
	if (getnameinfo(sa, len, host, sizeof host, port, sizeof port,
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(out, outlen, "unknown address");
		return;
	}
	snprintf(out, outlen, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
}

/* ---- slots ---- */

static struct conn *conn_open(struct peer_net *pn, int fd, enum conn_state state)
{
	if (pn->free_n == 0)
		return NULL;
	struct conn *k = &pn->conns[pn->free_slots[pn->free_n - 1]];
	RK_ASSERT(k->state == CONN_FREE && k->ops == 0);
	k->in = malloc(IN_BYTES_MIN);
	if (!k->in)
		return NULL;
	pn->free_n--;
	k->in_cap = IN_BYTES_MIN;
	k->state = state;
	k->fd = fd;
	k->deadline_ms = pn->now_ms + pn->cfg.connect_timeout_ms;
	return k;
}

static void conn_release(struct peer_net *pn, struct conn *k)
{
	close(k->fd);
	free(k->in);
	free(k->out.p);
	free(k->sending.p);
	uint32_t gen = k->gen + 1;
	memset(k, 0, sizeof *k);
	k->gen = gen;
	k->fd = -1;
	k->state = CONN_FREE;
	pn->free_slots[pn->free_n++] = slot_of(pn, k);
}

static void release_if_idle(struct peer_net *pn, struct conn *k)
{
	if (k->state == CONN_CLOSING && k->ops == 0 && !k->busy)
		conn_release(pn, k);
}

static void cancel_ops(struct peer_net *pn, struct conn *k)
{
	for (enum op op = OP_CONNECT; op <= OP_SEND; op++) {
		if (!(k->ops & 1u << op))
			continue;
		struct io_uring_sqe *sqe = get_sqe(pn);
		io_uring_prep_cancel64(sqe, ud_pack(op, slot_of(pn, k), k->gen), 0);
		io_uring_sqe_set_data64(sqe, ud_pack(OP_CANCEL, 0, 0));
	}
}

/* Close k: shutdown wakes its recv and send, cancels stop its connect; the
 * slot is released when they have all completed. on_down runs last, when
 * the connection is already gone from its link. */
static void conn_drop(struct peer_net *pn, struct conn *k)
{
	if (k->state == CONN_FREE || k->state == CONN_CLOSING)
		return;
	bool was_up = k->state == CONN_UP;
	struct link *l = k->link;
	if (l && link_conn(pn, l) == k) {
		l->slot = -1;
		l->next_attempt_ms = pn->now_ms + pn->cfg.reconnect_ms;
	}
	k->state = CONN_CLOSING;
	shutdown(k->fd, SHUT_RDWR);
	cancel_ops(pn, k);
	release_if_idle(pn, k);
	if (was_up && !pn->destroying && pn->cfg.on_down)
		pn->cfg.on_down(pn->cfg.ctx, l->sid);
}

/* Log why k closes, then close it. A connector that keeps failing before
 * its handshake completes logs the first failure of the streak only. */
__attribute__((format(printf, 4, 5))) static void
conn_fail(struct peer_net *pn, struct conn *k, enum log_level level, const char *fmt, ...)
{
	if (k->state == CONN_FREE || k->state == CONN_CLOSING)
		return;
	struct link *l = k->link;
	bool retried = l && l->we_connect && k->state != CONN_UP;
	if (retried && l->failures++ > 0)
		level = LOG_LEVEL_DEBUG;
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (retried)
		log_write(level, 0, "peer %s: %s; retrying every %d ms", k->name, msg,
			  pn->cfg.reconnect_ms);
	else
		log_write(level, 0, "peer %s: disconnected: %s", k->name, msg);
	conn_drop(pn, k);
}

/* ---- output ---- */

static int buf_reserve(struct buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return 0;
	size_t cap = b->cap ? b->cap : OUT_BYTES_MIN;
	while (cap - b->len < n)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static void send_batch(struct peer_net *pn, struct conn *k)
{
	size_t n = k->sending.len - k->sent;
	struct io_uring_sqe *sqe = get_sqe(pn);
	io_uring_prep_send(sqe, k->fd, k->sending.p + k->sent, n < IO_BYTES_MAX ? n : IO_BYTES_MAX,
			   MSG_NOSIGNAL);
	op_start(pn, k, sqe, OP_SEND);
}

/* Start sending what is queued unless a send is in flight; what queues
 * meanwhile goes out with the next one. */
static void flush(struct peer_net *pn, struct conn *k)
{
	if ((k->ops & 1u << OP_SEND) || k->out.len == 0)
		return;
	RK_ASSERT(k->sent == k->sending.len);
	struct buf t = k->sending;
	k->sending = k->out;
	k->out = t;
	k->out.len = 0;
	k->sent = 0;
	if (k->out.cap > OUT_BYTES_KEEP) {
		/* A big frame went through once; do not hold its buffer forever. */
		free(k->out.p);
		k->out = (struct buf){0};
	}
	send_batch(pn, k);
}

/* Append one frame to k's output. Fails only with the connection dropped
 * (or, for -EMSGSIZE, with nothing queued). */
static int queue_frame(struct peer_net *pn, struct conn *k, const struct iovec *iov, int iovcnt)
{
	RK_ASSERT(iovcnt >= 0);
	size_t len = 0;
	for (int i = 0; i < iovcnt; i++) {
		len += iov[i].iov_len;
		if (len > pn->cfg.frame_bytes_max)
			return -EMSGSIZE;
	}
	size_t queued = k->out.len + k->sending.len - k->sent;
	if (queued + HDR + len > pn->cfg.out_bytes_max) {
		conn_fail(pn, k, LOG_LEVEL_WARN, "%zu bytes queued, bound %zu: peer not reading",
			  queued, pn->cfg.out_bytes_max);
		return -ENOBUFS;
	}
	if (buf_reserve(&k->out, HDR + len)) {
		conn_fail(pn, k, LOG_LEVEL_ERROR, "cannot grow the output queue to %zu bytes",
			  k->out.len + HDR + len);
		return -ENOMEM;
	}
	uint8_t *d = k->out.p + k->out.len + HDR;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len)
			memcpy(d, iov[i].iov_base, iov[i].iov_len);
		d += iov[i].iov_len;
	}
	struct peer_frame_header h = {.len = (uint32_t)len,
				      .checksum = checksum(k->out.p + k->out.len + HDR, len)};
	memcpy(k->out.p + k->out.len, &h, HDR);
	k->out.len += HDR + len;
	flush(pn, k);
	return 0;
}

static void on_send(struct peer_net *pn, struct conn *k, int res)
{
	if (k->state == CONN_CLOSING)
		return;
	if (res <= 0) {
		conn_fail(pn, k, LOG_LEVEL_INFO, "send: %s",
			  res ? strerror(-res) : "wrote nothing");
		return;
	}
	k->sent += (size_t)res;
	RK_ASSERT(k->sent <= k->sending.len);
	if (k->sent < k->sending.len) {
		send_batch(pn, k);
		return;
	}
	k->sending.len = 0;
	k->sent = 0;
	flush(pn, k);
}

/* ---- handshake ---- */

static struct peer_hello hello_make(const struct peer_net *pn, uint32_t to_sid, uint16_t flags)
{
	return (struct peer_hello){.magic = PEER_MAGIC,
				   .version = PEER_VERSION,
				   .flags = flags,
				   .from_sid = pn->cfg.my_sid,
				   .to_sid = to_sid};
}

static int hello_queue(struct peer_net *pn, struct conn *k, uint32_t to_sid, uint16_t flags)
{
	struct peer_hello h = hello_make(pn, to_sid, flags);
	struct iovec iov = {.iov_base = &h, .iov_len = sizeof h};
	return queue_frame(pn, k, &iov, 1);
}

/* Decode a hello or ack; false (connection dropped) if it is not one. */
static bool hello_check(struct peer_net *pn, struct conn *k, const uint8_t *p, size_t len,
			uint16_t flags, struct peer_hello *h)
{
	if (len != sizeof *h) {
		conn_fail(pn, k, LOG_LEVEL_WARN, "handshake frame of %zu bytes", len);
		return false;
	}
	memcpy(h, p, sizeof *h);
	if (h->magic != PEER_MAGIC || h->version != PEER_VERSION || h->flags != flags ||
	    h->to_sid != pn->cfg.my_sid) {
		conn_fail(pn, k, LOG_LEVEL_WARN,
			  "bad handshake (magic 0x%08x, version %u, flags %u, to sid %u; I am "
			  "sid %u, version %u)",
			  h->magic, (unsigned)h->version, (unsigned)h->flags, h->to_sid,
			  pn->cfg.my_sid, PEER_VERSION);
		return false;
	}
	return true;
}

/* Acceptor: the first frame of an accepted connection. */
static void on_hello(struct peer_net *pn, struct conn *k, const uint8_t *p, size_t len)
{
	struct peer_hello h;
	if (!hello_check(pn, k, p, len, 0, &h))
		return;
	struct link *l = link_find(pn, h.from_sid);
	if (!l) {
		conn_fail(pn, k, LOG_LEVEL_WARN, "hello from sid %u, not in the ensemble",
			  h.from_sid);
		return;
	}
	if (l->we_connect) {
		conn_fail(pn, k, LOG_LEVEL_WARN,
			  "hello from sid %u, smaller than mine (%u): it should wait for mine",
			  h.from_sid, pn->cfg.my_sid);
		return;
	}
	struct conn *old = link_conn(pn, l);
	if (old)
		conn_fail(pn, old, LOG_LEVEL_INFO, "replaced by a new connection (restarted?)");
	if (hello_queue(pn, k, l->sid, PEER_HELLO_ACK))
		return;
	char from[sizeof k->name];
	memcpy(from, k->name, sizeof from);
	snprintf(k->name, sizeof k->name, "sid %u (%.*s)", l->sid, 200, from);
	k->link = l;
	l->slot = (int)slot_of(pn, k);
	k->state = CONN_UP;
	log_info("peer %s: connected", k->name);
	if (pn->cfg.on_up)
		pn->cfg.on_up(pn->cfg.ctx, l->sid);
}

/* Connector: the acceptor's answer to our hello. */
static void on_ack(struct peer_net *pn, struct conn *k, const uint8_t *p, size_t len)
{
	struct peer_hello h;
	if (!hello_check(pn, k, p, len, PEER_HELLO_ACK, &h))
		return;
	if (h.from_sid != k->link->sid) {
		conn_fail(pn, k, LOG_LEVEL_WARN, "answered as sid %u", h.from_sid);
		return;
	}
	k->state = CONN_UP;
	k->link->failures = 0;
	log_info("peer %s: connected", k->name);
	if (pn->cfg.on_up)
		pn->cfg.on_up(pn->cfg.ctx, k->link->sid);
}

/* ---- input ---- */

static void arm_recv(struct peer_net *pn, struct conn *k)
{
	RK_ASSERT(k->in_len < k->in_cap);
	size_t n = k->in_cap - k->in_len;
	struct io_uring_sqe *sqe = get_sqe(pn);
	io_uring_prep_recv(sqe, k->fd, k->in + k->in_len, n < IO_BYTES_MAX ? n : IO_BYTES_MAX, 0);
	op_start(pn, k, sqe, OP_RECV);
}

static void on_payload(struct peer_net *pn, struct conn *k, const uint8_t *p, size_t len)
{
	switch (k->state) {
	case CONN_HELLO_WAIT:
		on_hello(pn, k, p, len);
		break;
	case CONN_HELLO_SENT:
		on_ack(pn, k, p, len);
		break;
	case CONN_UP:
		if (pn->cfg.on_frame)
			pn->cfg.on_frame(pn->cfg.ctx, k->link->sid, p, len);
		break;
	case CONN_FREE:
	case CONN_CONNECTING:
	case CONN_CLOSING:
	case CONN_STATE_COUNT:
		RK_ASSERT(!"frame on a connection that cannot take one");
	}
}

/* Deliver every whole frame received; stops when the connection closes
 * (a bad frame, or a callback's peer_close). */
static void parse_frames(struct peer_net *pn, struct conn *k)
{
	while (k->state != CONN_CLOSING && k->in_len - k->in_off >= HDR) {
		struct peer_frame_header h;
		memcpy(&h, k->in + k->in_off, HDR);
		size_t bound =
		    k->state == CONN_UP ? pn->cfg.frame_bytes_max : sizeof(struct peer_hello);
		if (h.len > bound) {
			conn_fail(pn, k, LOG_LEVEL_WARN, "frame of %u bytes, bound %zu", h.len,
				  bound);
			return;
		}
		if (k->in_len - k->in_off - HDR < h.len)
			return;
		const uint8_t *p = k->in + k->in_off + HDR;
		uint32_t sum = checksum(p, h.len);
		if (sum != h.checksum) {
			conn_fail(
			    pn, k, LOG_LEVEL_WARN,
			    "checksum mismatch in a frame of %u bytes (0x%08x, computed 0x%08x)",
			    h.len, h.checksum, sum);
			return;
		}
		k->in_off += HDR + h.len;
		on_payload(pn, k, p, h.len);
	}
}

/* Make room for the next recv: the frame in progress (whose length passed
 * the bound in parse_frames) must fit from in_off, else the unparsed bytes
 * move to the front and the buffer grows to the frame. A buffer grown for
 * a big frame shrinks back once that frame is through. */
static int in_prepare(struct conn *k)
{
	size_t have = k->in_len - k->in_off;
	size_t need = HDR;
	if (have >= HDR) {
		struct peer_frame_header h;
		memcpy(&h, k->in + k->in_off, HDR);
		need += h.len;
	}
	bool shrink = k->in_cap > IN_BYTES_KEEP && need <= IN_BYTES_MIN;
	if (k->in_off > 0 && (shrink || k->in_off + need > k->in_cap)) {
		memmove(k->in, k->in + k->in_off, have);
		k->in_off = 0;
		k->in_len = have;
	}
	size_t cap = shrink ? IN_BYTES_MIN : need > k->in_cap ? need : k->in_cap;
	if (cap != k->in_cap) {
		uint8_t *p = realloc(k->in, cap);
		if (!p)
			return -ENOMEM;
		k->in = p;
		k->in_cap = cap;
	}
	return 0;
}

static void on_recv(struct peer_net *pn, struct conn *k, int res)
{
	if (k->state == CONN_CLOSING)
		return;
	if (res <= 0) {
		conn_fail(pn, k, LOG_LEVEL_INFO, "%s", res ? strerror(-res) : "closed by the peer");
		return;
	}
	k->in_len += (size_t)res;
	k->busy = true;
	parse_frames(pn, k);
	k->busy = false;
	if (k->state == CONN_CLOSING)
		return;
	if (in_prepare(k)) {
		conn_fail(pn, k, LOG_LEVEL_ERROR, "cannot grow the input buffer");
		return;
	}
	arm_recv(pn, k);
}

/* ---- connection set-up ---- */

static void nodelay(int fd)
{
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one))
		log_warn("setsockopt(TCP_NODELAY): %s", strerror(errno));
}

static void arm_accept(struct peer_net *pn)
{
	struct io_uring_sqe *sqe = get_sqe(pn);
	io_uring_prep_accept(sqe, pn->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_ACCEPT, 0, 0));
	pn->accept_armed = true;
	pn->ops_n++;
}

static uint32_t count_pending(const struct peer_net *pn)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < pn->n_conns; i++)
		n += pn->conns[i].state == CONN_HELLO_WAIT;
	return n;
}

static void accept_conn(struct peer_net *pn, int fd)
{
	char from[200];
	struct sockaddr_storage sa;
	socklen_t salen = sizeof sa;
	if (getpeername(fd, (struct sockaddr *)&sa, &salen) == 0)
		addr_format((struct sockaddr *)&sa, salen, from, sizeof from);
	else
		snprintf(from, sizeof from, "unknown address");
	/* Until its hello arrives anyone may hold a slot: bound how many. */
	struct conn *k =
	    count_pending(pn) < PENDING_MAX ? conn_open(pn, fd, CONN_HELLO_WAIT) : NULL;
	if (!k) {
		log_warn("peer connection from %s refused: no free slot (%u of at most %d "
			 "wait for their hello)",
			 from, count_pending(pn), PENDING_MAX);
		close(fd);
		return;
	}
	nodelay(fd);
	snprintf(k->name, sizeof k->name, "%s", from);
	arm_recv(pn, k);
}

static void on_accept(struct peer_net *pn, int res)
{
	pn->accept_armed = false;
	if (pn->destroying) {
		if (res >= 0)
			close(res);
		return;
	}
	if (res < 0) {
		bool scarce = res == -EMFILE || res == -ENFILE || res == -ENOMEM || res == -ENOBUFS;
		log_write(scarce ? LOG_LEVEL_ERROR : LOG_LEVEL_WARN, 0,
			  "accept on %s: %s; retrying in %d ms", pn->listen_name, strerror(-res),
			  pn->cfg.reconnect_ms);
		pn->accept_retry_ms = pn->now_ms + pn->cfg.reconnect_ms;
		return;
	}
	arm_accept(pn);
	accept_conn(pn, res);
}

static void start_connect(struct peer_net *pn, struct link *l)
{
	l->next_attempt_ms = pn->now_ms + pn->cfg.reconnect_ms;
	int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct conn *k = fd >= 0 ? conn_open(pn, fd, CONN_CONNECTING) : NULL;
	if (!k) {
		if (l->failures++ == 0)
			log_error("peer sid %u: cannot start a connection: %s", l->sid,
				  fd < 0 ? strerror(errno) : "no memory or slot");
		if (fd >= 0)
			close(fd);
		return;
	}
	nodelay(fd);
	snprintf(k->name, sizeof k->name, "sid %u (%s:%d)", l->sid, l->host, l->port);
	k->link = l;
	l->slot = (int)slot_of(pn, k);
	struct io_uring_sqe *sqe = get_sqe(pn);
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)&l->addr, l->addrlen);
	op_start(pn, k, sqe, OP_CONNECT);
}

static void on_connect(struct peer_net *pn, struct conn *k, int res)
{
	if (k->state == CONN_CLOSING)
		return;
	if (res < 0) {
		conn_fail(pn, k, LOG_LEVEL_INFO, "connect: %s", strerror(-res));
		return;
	}
	k->state = CONN_HELLO_SENT;
	if (hello_queue(pn, k, k->link->sid, 0))
		return;
	arm_recv(pn, k);
}

static void handle_cqe(struct peer_net *pn, uint64_t ud, int res)
{
	enum op op = (enum op)(ud >> 56);
	struct conn *k = NULL;
	if (op != OP_ACCEPT && op != OP_CANCEL) {
		uint32_t slot = (uint32_t)(ud >> 32) & 0xffffff;
		RK_ASSERT(slot < pn->n_conns);
		k = &pn->conns[slot];
		RK_ASSERT(k->state != CONN_FREE && k->gen == (uint32_t)ud && (k->ops & 1u << op));
		k->ops &= (uint8_t) ~(1u << op);
	}
	if (op != OP_CANCEL)
		pn->ops_n--;
	switch (op) {
	case OP_ACCEPT:
		on_accept(pn, res);
		break;
	case OP_CONNECT:
		on_connect(pn, k, res);
		break;
	case OP_RECV:
		on_recv(pn, k, res);
		break;
	case OP_SEND:
		on_send(pn, k, res);
		break;
	case OP_CANCEL:
		break;
	case OP_COUNT:
		RK_ASSERT(!"bad user_data");
	}
	if (k)
		release_if_idle(pn, k);
}

/* Handle completions, at most CQES_PER_POLL so a flood cannot starve the
 * caller's loop; each is consumed before its handler runs, because handlers
 * may submit (and so complete) more. */
static void reap(struct peer_net *pn)
{
	io_uring_submit(&pn->ring);
	for (int i = 0; i < CQES_PER_POLL; i++) {
		struct io_uring_cqe *cqe;
		if (io_uring_peek_cqe(&pn->ring, &cqe))
			return;
		uint64_t ud = io_uring_cqe_get_data64(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&pn->ring, cqe);
		handle_cqe(pn, ud, res);
	}
}

static void run_timers(struct peer_net *pn)
{
	int64_t now = pn->now_ms;
	for (size_t i = 0; i < pn->n_links; i++) {
		struct link *l = &pn->links[i];
		if (l->we_connect && l->slot < 0 && now >= l->next_attempt_ms)
			start_connect(pn, l);
	}
	for (uint32_t i = 0; i < pn->n_conns; i++) {
		struct conn *k = &pn->conns[i];
		bool handshaking = k->state == CONN_CONNECTING || k->state == CONN_HELLO_SENT ||
				   k->state == CONN_HELLO_WAIT;
		if (handshaking && now >= k->deadline_ms)
			conn_fail(pn, k, LOG_LEVEL_WARN, "no handshake within %d ms",
				  pn->cfg.connect_timeout_ms);
	}
	if (!pn->accept_armed && now >= pn->accept_retry_ms)
		arm_accept(pn);
}

/* ---- creation ---- */

static int config_take(struct peer_net *pn, const struct peer_config *cfg, char *err, size_t errlen)
{
	pn->cfg = *cfg;
	pn->cfg.peers = NULL;
	if (!pn->cfg.frame_bytes_max)
		pn->cfg.frame_bytes_max = FRAME_BYTES_DEF;
	if (!pn->cfg.out_bytes_max)
		pn->cfg.out_bytes_max = OUT_BYTES_DEF;
	if (!pn->cfg.reconnect_ms)
		pn->cfg.reconnect_ms = RECONNECT_MS_DEF;
	if (!pn->cfg.connect_timeout_ms)
		pn->cfg.connect_timeout_ms = CONNECT_TIMEOUT_MS;
	const char *bad = NULL;
	if (cfg->n_peers > PEER_COUNT_MAX || (cfg->n_peers && !cfg->peers))
		bad = "n_peers";
	else if (pn->cfg.frame_bytes_max > UINT32_MAX)
		bad = "frame_bytes_max";
	else if (pn->cfg.reconnect_ms < 0)
		bad = "reconnect_ms";
	else if (pn->cfg.connect_timeout_ms < 0)
		bad = "connect_timeout_ms";
	else if (cfg->listen_port < 0 || cfg->listen_port > 65535)
		bad = "listen_port";
	if (bad) {
		snprintf(err, errlen, "peer config: bad %s", bad);
		return -EINVAL;
	}
	return 0;
}

static int resolve(const char *host, int port, int flags, struct addrinfo **out)
{
	char serv[16];
	snprintf(serv, sizeof serv, "%d", port);
	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | flags};
	return getaddrinfo(host, serv, &hints, out);
}

static int link_init(struct peer_net *pn, struct link *l, const struct peer_addr *a, char *err,
		     size_t errlen)
{
	if (a->sid == pn->cfg.my_sid || link_find(pn, a->sid) ||
	    !memchr(a->host, 0, sizeof a->host) || a->port <= 0 || a->port > 65535) {
		snprintf(err, errlen, "peer config: sid %u is mine, repeated, or has a bad address",
			 a->sid);
		return -EINVAL;
	}
	struct addrinfo *ai;
	int rc = resolve(a->host, a->port, 0, &ai);
	if (rc) {
		snprintf(err, errlen, "cannot resolve %s (sid %u): %s", a->host, a->sid,
			 gai_strerror(rc));
		return -EINVAL;
	}
	memcpy(&l->addr, ai->ai_addr, ai->ai_addrlen);
	l->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	l->sid = a->sid;
	l->we_connect = a->sid < pn->cfg.my_sid;
	l->slot = -1;
	l->next_attempt_ms = INT64_MIN; /* the first peer_poll connects */
	memcpy(l->host, a->host, sizeof l->host);
	l->port = a->port;
	pn->n_links++;
	return 0;
}

static int tables_init(struct peer_net *pn, const struct peer_config *cfg, char *err, size_t errlen)
{
	pn->n_conns = (uint32_t)(2 * cfg->n_peers + PENDING_MAX);
	RK_ASSERT(pn->n_conns <= SLOTS_MAX);
	pn->links = calloc(cfg->n_peers ? cfg->n_peers : 1, sizeof *pn->links);
	pn->conns = calloc(pn->n_conns, sizeof *pn->conns);
	pn->free_slots = calloc(pn->n_conns, sizeof *pn->free_slots);
	if (!pn->links || !pn->conns || !pn->free_slots) {
		snprintf(err, errlen, "peer: out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < pn->n_conns; i++) {
		pn->conns[i].fd = -1;
		pn->conns[i].gen = 1;
		pn->free_slots[pn->free_n++] = pn->n_conns - 1 - i;
	}
	for (size_t i = 0; i < cfg->n_peers; i++) {
		int rc = link_init(pn, &pn->links[i], &cfg->peers[i], err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

static int listen_open(struct peer_net *pn, char *err, size_t errlen)
{
	const char *host = pn->cfg.listen_host;
	int port = pn->cfg.listen_port;
	snprintf(pn->listen_name, sizeof pn->listen_name,
		 host && strchr(host, ':') ? "[%s]:%d" : "%s:%d", host ? host : "*", port);
	struct addrinfo *ai;
	int rc = resolve(host, port, AI_PASSIVE, &ai);
	if (rc) {
		snprintf(err, errlen, "cannot resolve quorum address %s: %s", pn->listen_name,
			 gai_strerror(rc));
		return -EINVAL;
	}
	int one = 1;
	pn->listen_fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* SO_REUSEADDR: a restarted server must bind again while connections it
	 * closed are in TIME_WAIT on this port. */
	rc = pn->listen_fd < 0 ||
	     setsockopt(pn->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
	     bind(pn->listen_fd, ai->ai_addr, ai->ai_addrlen) ||
	     listen(pn->listen_fd, LISTEN_BACKLOG);
	int e = rc ? errno : 0;
	freeaddrinfo(ai);
	if (rc) {
		snprintf(err, errlen, "bind %s: %s", pn->listen_name, strerror(e));
		return -e;
	}
	return 0;
}

static int ring_open(struct peer_net *pn, char *err, size_t errlen)
{
	/* No COOP_TASKRUN nor DEFER_TASKRUN: completions must be posted (and
	 * the eventfd signalled) while the owner sleeps in its own poll. */
	struct io_uring_params p = {.flags = IORING_SETUP_CQSIZE, .cq_entries = CQ_ENTRIES};
	int rc = io_uring_queue_init_params(SQ_ENTRIES, &pn->ring, &p);
	if (rc) {
		snprintf(err, errlen, "io_uring_queue_init: %s", strerror(-rc));
		return rc;
	}
	pn->ring_ok = true;
	pn->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pn->efd < 0) {
		int e = errno;
		snprintf(err, errlen, "eventfd: %s", strerror(e));
		return -e;
	}
	rc = io_uring_register_eventfd(&pn->ring, pn->efd);
	if (rc) {
		snprintf(err, errlen, "io_uring_register_eventfd: %s", strerror(-rc));
		return rc;
	}
	return 0;
}

struct peer_net *peer_create(const struct peer_config *cfg, char *err, size_t errlen)
{
	struct peer_net *pn = calloc(1, sizeof *pn);
	if (!pn) {
		snprintf(err, errlen, "peer: out of memory");
		return NULL;
	}
	pn->efd = -1;
	pn->listen_fd = -1;
	if (config_take(pn, cfg, err, errlen) || tables_init(pn, cfg, err, errlen) ||
	    listen_open(pn, err, errlen) || ring_open(pn, err, errlen))
		goto err;
	arm_accept(pn);
	io_uring_submit(&pn->ring);
	return pn;
err:
	peer_destroy(pn);
	return NULL;
}

/* ---- teardown ---- */

/* Wait for every operation to complete, so the kernel no longer writes
 * into or reads from buffers about to be freed. Shutdown and cancels make
 * this quick; the bound only guards against a kernel that does not. */
static void drain(struct peer_net *pn)
{
	for (uint32_t i = 0; i < pn->n_conns; i++)
		conn_drop(pn, &pn->conns[i]);
	if (pn->accept_armed) {
		struct io_uring_sqe *sqe = get_sqe(pn);
		io_uring_prep_cancel64(sqe, ud_pack(OP_ACCEPT, 0, 0), 0);
		io_uring_sqe_set_data64(sqe, ud_pack(OP_CANCEL, 0, 0));
		shutdown(pn->listen_fd, SHUT_RDWR);
	}
	for (int i = 0; i < DRAIN_ROUNDS && pn->ops_n > 0; i++) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = DRAIN_WAIT_NS};
		io_uring_submit_and_wait_timeout(&pn->ring, &cqe, 1, &ts, NULL);
		reap(pn);
	}
	if (pn->ops_n > 0)
		log_error("peer: %u operations still in flight at shutdown", pn->ops_n);
}

void peer_destroy(struct peer_net *pn)
{
	if (!pn)
		return;
	pn->destroying = true;
	if (pn->ring_ok) {
		drain(pn);
		io_uring_queue_exit(&pn->ring);
	}
	for (uint32_t i = 0; pn->conns && i < pn->n_conns; i++) {
		struct conn *k = &pn->conns[i];
		if (k->state != CONN_FREE) {
			k->state = CONN_CLOSING;
			k->ops = 0;
			conn_release(pn, k);
		}
	}
	if (pn->listen_fd >= 0)
		close(pn->listen_fd);
	if (pn->efd >= 0)
		close(pn->efd);
	free(pn->links);
	free(pn->conns);
	free(pn->free_slots);
	free(pn);
}

/* ---- the rest of the API ---- */

int peer_sendv(struct peer_net *pn, uint32_t sid, const struct iovec *iov, int iovcnt)
{
	struct conn *k = link_conn(pn, link_find(pn, sid));
	if (!k || k->state != CONN_UP)
		return -ENOTCONN;
	int rc = queue_frame(pn, k, iov, iovcnt);
	/* Only the first frame of a batch starts a send; the rest ride along. */
	if (io_uring_sq_ready(&pn->ring))
		io_uring_submit(&pn->ring);
	return rc;
}

int peer_send(struct peer_net *pn, uint32_t sid, const void *buf, size_t len)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	return peer_sendv(pn, sid, &iov, 1);
}

void peer_close(struct peer_net *pn, uint32_t sid)
{
	struct conn *k = link_conn(pn, link_find(pn, sid));
	if (!k)
		return;
	log_info("peer %s: closing on request", k->name);
	conn_drop(pn, k);
	if (io_uring_sq_ready(&pn->ring))
		io_uring_submit(&pn->ring);
}

bool peer_connected(const struct peer_net *pn, uint32_t sid)
{
	const struct conn *k = link_conn(pn, link_find(pn, sid));
	return k && k->state == CONN_UP;
}

int peer_wait_fd(const struct peer_net *pn)
{
	return pn->efd;
}

void peer_poll(struct peer_net *pn, int64_t now_ms)
{
	pn->now_ms = now_ms;
	/* Clear the eventfd before reaping: a completion posted after this
	 * read signals it again, so none is left waiting unseen. */
	uint64_t v;
	ssize_t r = read(pn->efd, &v, sizeof v);
	(void)r;
	reap(pn);
	run_timers(pn);
	io_uring_submit(&pn->ring);
	if (io_uring_cq_ready(&pn->ring)) {
		/* CQES_PER_POLL cut the reaping short: have the owner come back. */
		v = 1;
		r = write(pn->efd, &v, sizeof v);
	}
}
