/* One core's io_uring event loop and the client connections it owns.
 *
 * user_data packs the operation, the connection slot and the slot's
 * generation, so a completion that arrives after its connection was closed
 * and the slot reused is recognised and dropped.
 *
 * Per-session order: requests are handled in arrival order. A read is
 * answered at once unless a write of the same session is still at the
 * sequencer; then it and everything after it wait in the connection's
 * parked list until the write's reply comes back. Writes go on to the
 * sequencer in order even while earlier writes are in flight. */
#include "net/core_loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/acl.h"
#include "core/log.h"
#include "core/read.h"
#include "core/watch.h"
#include "net/admin.h"
#include "net/fourlw.h"
#include "net/report.h"

/* Bounds. */
#define SQ_ENTRIES	  4096
#define CQ_ENTRIES	  16384
#define BUF_COUNT	  256 /* provided receive buffers per core */
#define BUF_BYTES	  16384
#define BUF_GROUP	  1
#define CONNS_MAX	  65535	      /* slots per core; conn_ref keeps 16 bits */
#define PARKED_MAX	  10000	      /* requests waiting behind a write, per session */
#define OUT_BYTES_MAX	  (64u << 20) /* unsent replies per connection */
#define WATCHES_MAX	  (1u << 26)
#define TIMER_MS	  100
#define TOUCH_INTERVAL_MS 500
#define GATHERS_MAX	  32 /* reports this core waits for at once */
#define WOPS_MAX	  16 /* ops of writes at the sequencer remembered for cons */

enum op {
	OP_ACCEPT = 0, /* multishot accept on the listener */
	OP_RECV,       /* multishot recv of a connection */
	OP_SEND,       /* one send of a connection's batch */
	OP_TIMER,      /* the loop's periodic timeout */
	OP_WAKE,       /* msg_ring from another core: look at the rings */
	OP_MSG_SENT,   /* our msg_ring went out; nothing to do */
	OP_STORAGE,    /* the txn log's eventfd: I/O finished (core 0) */
	OP_PEER,       /* the ensemble's eventfd: peer traffic (core 0) */
	OP_PEER_TIMER, /* the ensemble's timers (core 0) */
	OP_ADMIN,      /* the admin server's eventfd: HTTP traffic (core 0) */
	OP_GATHER,     /* msg_ring from another core: fill our part of its report */
	OP_ASK_SENT,   /* our request for a report part went out (or failed) */
	OP_GATHERED,   /* msg_ring: a core filled its part of one of our reports */
	OP_COUNT,
};

enum conn_state {
	CONN_FREE = 0,	 /* slot unused */
	CONN_HANDSHAKE,	 /* waiting for the ConnectRequest (or a 4lw) */
	CONN_CONNECTING, /* ConnectRequest is at the sequencer */
	CONN_ACTIVE,	 /* session established */
	CONN_CLOSING,	 /* shut down; freed when no I/O is in flight */
	CONN_STATE_COUNT,
};

struct parked {
	struct parked *next;
	uint32_t len;
	uint8_t frame[];
};

/* What cons and stat print of a connection (ZooKeeper's ServerCnxn
 * statistics); crst zeroes them. Times in ms. */
struct conn_stats {
	uint64_t received, sent;  /* packets */
	int64_t established_ms;	  /* wall clock, at accept */
	int64_t active_ms;	  /* monotonic: bytes last received */
	int32_t last_op;	  /* ZooKeeper opcode; 0: none yet */
	int64_t last_cxid;	  /* -1: none */
	int64_t last_zxid;	  /* -1: none */
	int64_t last_response_ms; /* monotonic; 0: none */
	uint64_t lat_last_ms, lat_min_ms, lat_max_ms, lat_total_ms, lat_count;
};

struct conn {
	enum conn_state state;
	int fd;
	uint16_t gen;
	uint8_t inflight; /* recv + send operations in the kernel */
	bool recv_armed;
	bool send_inflight;
	bool dirty;
	bool close_after_send;
	bool touched;
	uint32_t ip_bucket;
	uint64_t session_id;
	uint64_t resume_id; /* the session a ConnectRequest asked for (0: new) */
	int32_t timeout_ms;
	uint32_t writes_pending;
	uint32_t parked_count;
	struct parked *parked_head, *parked_tail;
	uint8_t *in; /* partial frame carried over between receives */
	size_t in_len, in_cap;
	struct jute_out out;	 /* replies waiting for the next send */
	struct jute_out sending; /* the batch in flight */
	size_t sent;
	struct acl_auth auth;
	char ip[ACL_IP_ID_MAX];
	uint16_t port;
	bool fourlw; /* sent a four-letter word: its answer, then close */
	/* Ops of the writes at the sequencer, oldest first, so a reply can
	 * name its op in cons. Past WOPS_MAX in flight (lossy) some replies
	 * go unnamed until the pipeline empties. */
	int8_t wops[WOPS_MAX];
	uint8_t wops_head, wops_n;
	bool wops_lossy;
	int64_t connect_us; /* when the ConnectRequest arrived */
	struct conn_stats st;
};

struct core {
	int id;
	struct server *srv;
	struct io_uring ring;
	int listen_fd;
	struct io_uring_buf_ring *br;
	uint8_t *bufs;
	struct conn *conns;
	uint32_t *free_slots;
	uint32_t free_n;
	uint32_t *dirty;
	uint32_t dirty_n;
	struct watch_table *watches;
	const struct tree_version *v;
	struct core_stats *stats;
	struct __kernel_timespec ts;
	struct __kernel_timespec peer_ts;
	bool wake_seq;
	bool blocked;	    /* a session waits for space in the sequencer's ring */
	bool accept_paused; /* accept failed; the timer re-arms it */
	uint32_t accept_errors;
	int64_t event_zxid;
	/* The ACL guarding the event being delivered (see emit_event). */
	const struct acl_list *event_acl;
	int64_t now_us; /* read once per loop iteration */
	int64_t next_touch_ms;
	int64_t next_expiry_ms;
	struct gather *gathers[GATHERS_MAX]; /* reports we asked for */
	uint32_t gathers_n;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* One request answered, received_us ago (0 for reads answered at once). */
static void count_latency(struct core *c, int64_t received_us)
{
	uint64_t us = received_us ? (uint64_t)(mono_us() - received_us) : 0;
	struct core_stats *s = c->stats;
	atomic_store_explicit(&s->packets_sent,
			      atomic_load_explicit(&s->packets_sent, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_store_explicit(&s->latency_total_us,
			      atomic_load_explicit(&s->latency_total_us, memory_order_relaxed) + us,
			      memory_order_relaxed);
	atomic_store_explicit(&s->latency_count,
			      atomic_load_explicit(&s->latency_count, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	if (us > atomic_load_explicit(&s->latency_max_us, memory_order_relaxed))
		atomic_store_explicit(&s->latency_max_us, us, memory_order_relaxed);
	if (us < atomic_load_explicit(&s->latency_min_us, memory_order_relaxed))
		atomic_store_explicit(&s->latency_min_us, us, memory_order_relaxed);
	if (received_us)
		summary_observe(&s->update_latency, us);
}

static uint64_t ud_pack(enum op op, uint32_t slot, uint16_t gen)
{
	return (uint64_t)op << 56 | (uint64_t)slot << 16 | gen;
}

/* The report ops carry a pointer below the op byte instead of a slot. */
#define UD_PTR_MASK ((UINT64_C(1) << 56) - 1)

static uint64_t ud_pack_ptr(enum op op, const void *p)
{
	uint64_t v = (uint64_t)(uintptr_t)p;
	RK_ASSERT((v & ~UD_PTR_MASK) == 0);
	return (uint64_t)op << 56 | v;
}

static void *ud_ptr(uint64_t ud)
{
	return (void *)(uintptr_t)(ud & UD_PTR_MASK);
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- per-connection statistics (cons, stat, crst) ---- */

static void stats_reset(struct conn_stats *st)
{
	int64_t established = st->established_ms, active = st->active_ms;
	*st = (struct conn_stats){.established_ms = established,
				  .active_ms = active,
				  .last_cxid = -1,
				  .last_zxid = -1,
				  .lat_min_ms = UINT64_MAX};
}

/* One answer sent: ZooKeeper's updateStatsForResponse. An op it does not
 * record (auth) changes nothing; a negative xid (ping) keeps last_cxid. */
static void stats_answered(struct core *c, struct conn *k, int32_t op, int32_t xid, int64_t zxid,
			   int64_t received_us)
{
	struct conn_stats *st = &k->st;
	st->sent++;
	if (!report_op_name(op))
		return;
	uint64_t lat =
	    received_us && c->now_us > received_us ? (uint64_t)(c->now_us - received_us) / 1000 : 0;
	st->last_op = op;
	if (xid >= 0)
		st->last_cxid = xid;
	st->last_zxid = zxid;
	st->last_response_ms = c->now_us / 1000;
	st->lat_last_ms = lat;
	if (lat < st->lat_min_ms)
		st->lat_min_ms = lat;
	if (lat > st->lat_max_ms)
		st->lat_max_ms = lat;
	st->lat_total_ms += lat;
	st->lat_count++;
}

static void wop_push(struct conn *k, int32_t op)
{
	if (k->wops_lossy || k->wops_n == WOPS_MAX || op < INT8_MIN || op > INT8_MAX) {
		k->wops_lossy = true;
		return;
	}
	k->wops[(k->wops_head + k->wops_n++) % WOPS_MAX] = (int8_t)op;
}

/* The op of the oldest write at the sequencer, 0 when not remembered.
 * Call after writes_pending counted the reply. */
static int32_t wop_pop(struct conn *k)
{
	int32_t op = 0;
	if (k->wops_n) {
		op = k->wops[k->wops_head];
		k->wops_head = (uint8_t)((k->wops_head + 1) % WOPS_MAX);
		k->wops_n--;
	}
	if (k->writes_pending == 0) {
		k->wops_n = 0;
		k->wops_lossy = false;
	}
	return op;
}

/* A connection's handle in messages: slot and generation. Never 0, which
 * deliveries use for "no connection" (generations start at 1). */
static uint32_t conn_ref(const struct core *c, const struct conn *k)
{
	uint32_t slot = (uint32_t)(k - c->conns);
	RK_ASSERT(k->gen != 0);
	return slot << 16 | k->gen;
}

static struct conn *conn_by_ref(struct core *c, uint32_t ref)
{
	uint32_t slot = ref >> 16;
	if (slot >= CONNS_MAX)
		return NULL;
	struct conn *k = &c->conns[slot];
	if (k->state == CONN_FREE || k->gen != (uint16_t)ref)
		return NULL;
	return k;
}

/* An SQE, submitting what is queued when the ring is full. */
static struct io_uring_sqe *get_sqe(struct core *c)
{
	struct io_uring_sqe *sqe;
	while (!(sqe = io_uring_get_sqe(&c->ring)))
		io_uring_submit(&c->ring);
	return sqe;
}

/* ---- connection lifecycle ---- */

static void conn_close(struct core *c, struct conn *k, const char *why);

static void arm_recv(struct core *c, struct conn *k)
{
	struct io_uring_sqe *sqe = get_sqe(c);
	io_uring_prep_recv_multishot(sqe, k->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BUF_GROUP;
	io_uring_sqe_set_data64(sqe, ud_pack(OP_RECV, (uint32_t)(k - c->conns), k->gen));
	k->recv_armed = true;
	k->inflight++;
}

static void mark_dirty(struct core *c, struct conn *k)
{
	if (k->dirty)
		return;
	k->dirty = true;
	c->dirty[c->dirty_n++] = (uint32_t)(k - c->conns);
}

static void free_parked(struct conn *k)
{
	struct parked *p = k->parked_head;
	while (p) {
		struct parked *n = p->next;
		free(p);
		p = n;
	}
	k->parked_head = k->parked_tail = NULL;
	k->parked_count = 0;
}

static void conn_release(struct core *c, struct conn *k)
{
	close(k->fd);
	free(k->in);
	jute_out_free(&k->out);
	jute_out_free(&k->sending);
	acl_auth_clear(&k->auth);
	atomic_fetch_sub_explicit(&c->srv->ip_conns[k->ip_bucket], 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&c->stats->connections, 1, memory_order_relaxed);
	uint16_t gen = (uint16_t)(k->gen + 1);
	if (gen == 0)
		gen = 1; /* conn_ref 0 means "no connection" in deliveries */
	memset(k, 0, sizeof *k);
	k->gen = gen;
	k->state = CONN_FREE;
	c->free_slots[c->free_n++] = (uint32_t)(k - c->conns);
}

static void conn_close(struct core *c, struct conn *k, const char *why)
{
	if (k->state == CONN_CLOSING || k->state == CONN_FREE)
		return;
	if (why)
		log_write(LOG_LEVEL_INFO, k->session_id ? k->session_id : k->resume_id,
			  "closing connection from %s: %s", k->ip, why);
	k->state = CONN_CLOSING;
	watch_remove_session(c->watches, conn_ref(c, k));
	free_parked(k);
	shutdown(k->fd, SHUT_RDWR);
	if (k->inflight == 0)
		conn_release(c, k);
}

static uint32_t ip_bucket_of(const char *ip)
{
	return (uint32_t)(hamt_hash(ip, strlen(ip)) % IP_BUCKETS);
}

static void on_accept(struct core *c, int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct sockaddr_storage sa;
	socklen_t salen = sizeof sa;
	char ip[ACL_IP_ID_MAX] = "unknown";
	uint16_t port = 0;
	if (getpeername(fd, (struct sockaddr *)&sa, &salen) == 0) {
		acl_ip_id_format((struct sockaddr *)&sa, ip, sizeof ip);
		port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
						      : ((struct sockaddr_in *)&sa)->sin_port);
	}
	uint32_t bucket = ip_bucket_of(ip);
	int32_t max = c->srv->cfg->max_client_cnxns;
	int32_t now =
	    atomic_fetch_add_explicit(&c->srv->ip_conns[bucket], 1, memory_order_relaxed) + 1;
	if ((max > 0 && now > max) || c->free_n == 0) {
		atomic_fetch_sub_explicit(&c->srv->ip_conns[bucket], 1, memory_order_relaxed);
		log_warn("too many connections from %s (max %d, free slots %u): refused", ip, max,
			 c->free_n);
		close(fd);
		return;
	}
	struct conn *k = &c->conns[c->free_slots[--c->free_n]];
	k->state = CONN_HANDSHAKE;
	k->fd = fd;
	k->ip_bucket = bucket;
	memcpy(k->ip, ip, sizeof k->ip);
	k->port = port;
	k->st.established_ms = wall_ms();
	k->st.active_ms = c->now_us / 1000;
	stats_reset(&k->st);
	jute_out_init(&k->out, 0, OUT_BYTES_MAX);
	jute_out_init(&k->sending, 0, OUT_BYTES_MAX);
	acl_auth_init(&k->auth);
	acl_auth_add(&k->auth, ACL_SCHEME_IP, ip);
	atomic_fetch_add_explicit(&c->stats->connections, 1, memory_order_relaxed);
	arm_recv(c, k);
}

/* ---- output ---- */

/* Append an already framed reply. */
static void carry_reply(struct jute_out *out, const uint8_t *p, size_t n)
{
	uint8_t *d = jute_reserve(out, n);
	if (d)
		memcpy(d, p, n);
}

/* After appending to k->out: enforce the bound, schedule a send. */
static void out_commit(struct core *c, struct conn *k)
{
	if (k->out.err) {
		conn_close(c, k, "client does not read its replies (output bound reached)");
		return;
	}
	mark_dirty(c, k);
}

static void send_batch(struct core *c, struct conn *k)
{
	struct io_uring_sqe *sqe = get_sqe(c);
	io_uring_prep_send(sqe, k->fd, k->sending.buf + k->sent, k->sending.len - k->sent,
			   MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_SEND, (uint32_t)(k - c->conns), k->gen));
	k->send_inflight = true;
	k->inflight++;
}

static void flush_one(struct core *c, struct conn *k)
{
	k->dirty = false;
	if (k->state == CONN_FREE || k->state == CONN_CLOSING || k->send_inflight)
		return;
	if (k->out.len == 0) {
		if (k->close_after_send)
			conn_close(c, k, NULL);
		return;
	}
	struct jute_out t = k->sending;
	k->sending = k->out;
	k->out = t;
	jute_out_reset(&k->out);
	k->sent = 0;
	send_batch(c, k);
}

static void flush_all(struct core *c)
{
	for (uint32_t i = 0; i < c->dirty_n; i++)
		flush_one(c, &c->conns[c->dirty[i]]);
	c->dirty_n = 0;
}

static void on_send(struct core *c, struct conn *k, int res)
{
	k->send_inflight = false;
	if (k->state == CONN_CLOSING)
		return;
	if (res <= 0) {
		conn_close(c, k, res == 0 ? "send returned 0" : strerror(-res));
		return;
	}
	k->sent += (size_t)res;
	if (k->sent < k->sending.len) {
		send_batch(c, k);
		return;
	}
	jute_out_reset(&k->sending);
	mark_dirty(c, k);
}

/* ---- requests ---- */

static struct read_ctx read_ctx_of(struct core *c, struct conn *k)
{
	const char *super = c->srv->cfg->super_digest[0] ? c->srv->cfg->super_digest : NULL;
	return (struct read_ctx){.v = c->v,
				 .watches = c->watches,
				 .watch_key = conn_ref(c, k),
				 .session_id = k->session_id,
				 .auth = &k->auth,
				 .super_digest = super};
}

static struct seq_msg *msg_new(enum seq_msg_kind kind, size_t len)
{
	struct seq_msg *m = malloc(sizeof *m + len);
	if (m) {
		memset(m, 0, sizeof *m);
		m->kind = kind;
		m->len = (uint32_t)len;
	}
	return m;
}

/* Returns 0, or -EAGAIN when the sequencer's ring is full. */
static int submit(struct core *c, struct seq_msg *m)
{
	int rc = sequencer_submit(c->srv->seq, c->id, m);
	if (rc == 0)
		c->wake_seq = true;
	return rc;
}

enum step {
	STEP_DONE = 0, /* handled (or the connection was closed) */
	STEP_WAIT,     /* must wait for an earlier write or for ring space */
	STEP_COUNT,
};

static bool is_forwarded(int32_t op)
{
	return !proto_op_is_read(op) && op != ZOP_AUTH && op != ZOP_SASL;
}

static enum step forward_write(struct core *c, struct conn *k, int32_t xid, int32_t op,
			       const uint8_t *body, size_t len)
{
	struct seq_msg *m = msg_new(op == ZOP_CLOSE_SESSION ? SEQ_CLOSE : SEQ_WRITE, len);
	if (!m) {
		conn_close(c, k, "out of memory");
		return STEP_DONE;
	}
	m->conn_ref = conn_ref(c, k);
	m->session_id = k->session_id;
	m->xid = xid;
	m->op = op;
	m->received_us = c->now_us;
	memcpy(m->body, body, len);
	if (submit(c, m)) {
		free(m);
		c->blocked = true;
		return STEP_WAIT;
	}
	k->writes_pending++;
	wop_push(k, op);
	atomic_fetch_add_explicit(&c->stats->outstanding, 1, memory_order_relaxed);
	return STEP_DONE;
}

static void handle_auth(struct core *c, struct conn *k, struct jute_in *in)
{
	jute_get_int(in); /* type, unused by ZooKeeper */
	const char *scheme;
	const uint8_t *data;
	int32_t slen, dlen;
	jute_get_string(in, &scheme, &slen);
	jute_get_buffer(in, &data, &dlen);
	uint32_t before = k->auth.count;
	int rc = -EINVAL;
	if (!in->err && slen == 6 && memcmp(scheme, "digest", 6) == 0 && dlen >= 0) {
		const char *super = c->srv->cfg->super_digest[0] ? c->srv->cfg->super_digest : NULL;
		rc = acl_auth_add_digest(&k->auth, (const char *)data, (size_t)dlen, super);
	}
	if (rc) {
		size_t at = proto_reply_begin(&k->out, XID_AUTH, c->v->zxid, ZAUTHFAILED);
		proto_frame_end(&k->out, at);
		k->st.sent++;
		k->close_after_send = true;
		atomic_fetch_add_explicit(&c->stats->auth_failed, 1, memory_order_relaxed);
		log_write(LOG_LEVEL_WARN, k->session_id, "authentication failed (scheme %.*s)",
			  slen > 0 ? slen : 0, scheme ? scheme : "");
		out_commit(c, k);
		return;
	}
	for (uint32_t i = before; i < k->auth.count; i++) {
		size_t sl = strlen(k->auth.ids[i].scheme), il = strlen(k->auth.ids[i].id);
		struct seq_msg *m = msg_new(SEQ_AUTH, sl + il + 2);
		if (!m) {
			conn_close(c, k, "out of memory");
			return;
		}
		m->session_id = k->session_id;
		memcpy(m->body, k->auth.ids[i].scheme, sl + 1);
		memcpy(m->body + sl + 1, k->auth.ids[i].id, il + 1);
		if (submit(c, m)) {
			free(m);
			conn_close(c, k, "sequencer queue full");
			return;
		}
	}
	size_t at = proto_reply_begin(&k->out, XID_AUTH, c->v->zxid, ZOK);
	proto_frame_end(&k->out, at);
	k->st.sent++;
	out_commit(c, k);
}

/* One request of an established session, in order. */
static enum step session_step(struct core *c, struct conn *k, const uint8_t *p, uint32_t len)
{
	struct jute_in in = jute_in_make(p, len);
	int32_t xid = jute_get_int(&in);
	int32_t op = jute_get_int(&in);
	if (in.err) {
		conn_close(c, k, "request shorter than its header");
		return STEP_DONE;
	}
	k->touched = true;
	if (op == ZOP_AUTH) {
		handle_auth(c, k, &in);
		return STEP_DONE;
	}
	if (is_forwarded(op))
		return forward_write(c, k, xid, op, p + in.off, len - in.off);
	if (k->writes_pending)
		return STEP_WAIT;
	struct read_ctx rc = read_ctx_of(c, k);
	if (read_request(&rc, xid, op, p + in.off, len - in.off, &k->out)) {
		conn_close(c, k, "malformed request");
		return STEP_DONE;
	}
	atomic_fetch_add_explicit(&c->stats->packets_received, 1, memory_order_relaxed);
	count_latency(c, 0);
	stats_answered(c, k, op, xid, c->v->zxid, 0);
	out_commit(c, k);
	return STEP_DONE;
}

static void park(struct core *c, struct conn *k, const uint8_t *p, uint32_t len)
{
	if (k->parked_count >= PARKED_MAX) {
		conn_close(c, k, "too many outstanding requests");
		return;
	}
	struct parked *q = malloc(sizeof *q + len);
	if (!q) {
		conn_close(c, k, "out of memory");
		return;
	}
	q->next = NULL;
	q->len = len;
	memcpy(q->frame, p, len);
	if (k->parked_tail)
		k->parked_tail->next = q;
	else
		k->parked_head = q;
	k->parked_tail = q;
	k->parked_count++;
}

static void drain_parked(struct core *c, struct conn *k)
{
	while (k->state == CONN_ACTIVE && k->parked_head) {
		struct parked *q = k->parked_head;
		if (session_step(c, k, q->frame, q->len) == STEP_WAIT)
			return;
		if (k->parked_head != q)
			return; /* the connection was closed and its list freed */
		k->parked_head = q->next;
		if (!k->parked_head)
			k->parked_tail = NULL;
		k->parked_count--;
		free(q);
	}
}

static void handle_connect(struct core *c, struct conn *k, const uint8_t *p, uint32_t len)
{
	struct jute_in in = jute_in_make(p, len);
	jute_get_int(&in); /* protocolVersion */
	int64_t zxid_seen = jute_get_long(&in);
	int32_t timeout = jute_get_int(&in);
	int64_t session_id = jute_get_long(&in);
	const uint8_t *pw;
	int32_t pwlen;
	jute_get_buffer(&in, &pw, &pwlen);
	if (in.err) {
		conn_close(c, k, "malformed ConnectRequest");
		return;
	}
	/* Clients that send the readOnly flag expect it back; older ones
	 * expect the response without it, as ZooKeeper answers. */
	bool read_only_flag = jute_remaining(&in) >= 1;
	size_t iplen = strlen(k->ip) + 1;
	struct seq_msg *m = msg_new(SEQ_CONNECT, ZK_PASSWORD_BYTES + iplen);
	if (!m) {
		conn_close(c, k, "out of memory");
		return;
	}
	m->conn_ref = conn_ref(c, k);
	m->session_id = (uint64_t)session_id;
	k->resume_id = (uint64_t)session_id;
	m->timeout_ms = timeout;
	m->zxid_seen = zxid_seen;
	m->op = read_only_flag;
	memset(m->body, 0, ZK_PASSWORD_BYTES);
	if (pw && pwlen > 0)
		memcpy(m->body, pw, pwlen < ZK_PASSWORD_BYTES ? (size_t)pwlen : ZK_PASSWORD_BYTES);
	memcpy(m->body + ZK_PASSWORD_BYTES, k->ip, iplen);
	if (submit(c, m)) {
		free(m);
		conn_close(c, k, "sequencer queue full; try again");
		return;
	}
	k->state = CONN_CONNECTING;
	k->connect_us = c->now_us;
}

static void on_frame(struct core *c, struct conn *k, const uint8_t *p, uint32_t len)
{
	k->st.received++;
	switch (k->state) {
	case CONN_HANDSHAKE:
		handle_connect(c, k, p, len);
		break;
	case CONN_CONNECTING:
		park(c, k, p, len);
		break;
	case CONN_ACTIVE:
		if (k->parked_head || session_step(c, k, p, len) == STEP_WAIT)
			park(c, k, p, len);
		break;
	case CONN_FREE:
	case CONN_CLOSING:
	case CONN_STATE_COUNT:
		break;
	}
}

static int core_report_fourlw(struct core *c, struct conn *k, uint32_t raw, enum report_kind kind);
static void gathers_check(struct core *c);

/* A connection whose first four bytes spell a four-letter word gets its
 * text answer and is closed. Words about other cores' connections and
 * watches (cons, stat, dump, wchc, wchp, crst) are answered once every
 * core has sent its part (core_report). */
static void on_fourlw(struct core *c, struct conn *k, uint32_t raw)
{
	struct fourlw_ctx fc = {.srv = c->srv, .core_id = c->id};
	k->fourlw = true;
	k->state = CONN_ACTIVE;
	k->st.received = 1;
	enum report_kind kind = fourlw_report_kind(&fc, raw);
	if (kind != REPORT_KIND_COUNT && core_report_fourlw(c, k, raw, kind) == 0)
		return;
	if (kind != REPORT_KIND_COUNT)
		fourlw_busy(&fc, raw, &k->out);
	else
		fourlw_run(&fc, raw, &k->out);
	k->close_after_send = true;
	out_commit(c, k);
}

/* Parse complete frames from p; returns bytes consumed, or -1 if the
 * connection was closed. */
static ssize_t parse_frames(struct core *c, struct conn *k, const uint8_t *p, size_t n)
{
	size_t off = 0;
	int32_t max = c->srv->cfg->jute_maxbuffer;
	while (n - off >= 4 && k->state != CONN_CLOSING) {
		uint32_t raw = jute_be32_get(p + off);
		if (k->state == CONN_HANDSHAKE && fourlw_is_command(raw)) {
			on_fourlw(c, k, raw);
			return (ssize_t)n;
		}
		int32_t len = (int32_t)raw;
		if (len < 0 || len > max) {
			log_write(LOG_LEVEL_WARN, k->session_id,
				  "frame length %d from %s outside 0..%d (jute.maxbuffer): closing",
				  len, k->ip, max);
			conn_close(c, k, NULL);
			return -1;
		}
		if (n - off - 4 < (size_t)len)
			break;
		on_frame(c, k, p + off + 4, (uint32_t)len);
		off += 4 + (size_t)len;
	}
	return k->state == CONN_CLOSING ? -1 : (ssize_t)off;
}

static int carry(struct conn *k, const uint8_t *p, size_t n)
{
	if (k->in_len + n > k->in_cap) {
		size_t cap = k->in_cap ? k->in_cap : 4096;
		while (cap < k->in_len + n)
			cap *= 2;
		uint8_t *b = realloc(k->in, cap);
		if (!b)
			return -ENOMEM;
		k->in = b;
		k->in_cap = cap;
	}
	memcpy(k->in + k->in_len, p, n);
	k->in_len += n;
	return 0;
}

static void on_bytes(struct core *c, struct conn *k, const uint8_t *p, size_t n)
{
	k->st.active_ms = c->now_us / 1000;
	if (k->fourlw)
		return; /* nothing after a four-letter word is read */
	if (k->in_len == 0) {
		/* Fast path: whole frames straight from the receive buffer. */
		ssize_t used = parse_frames(c, k, p, n);
		if (used < 0)
			return;
		if ((size_t)used < n && carry(k, p + used, n - (size_t)used))
			conn_close(c, k, "out of memory");
		return;
	}
	/* A frame is split across receives. Its length was checked against
	 * jute.maxbuffer when its first four bytes arrived, so the carry
	 * buffer never grows past one legal frame plus one receive. */
	if (carry(k, p, n)) {
		conn_close(c, k, "out of memory");
		return;
	}
	ssize_t used = parse_frames(c, k, k->in, k->in_len);
	if (used < 0)
		return;
	memmove(k->in, k->in + used, k->in_len - (size_t)used);
	k->in_len -= (size_t)used;
	if (k->in_len == 0 && k->in_cap > (1u << 20)) {
		free(k->in);
		k->in = NULL;
		k->in_cap = 0;
	}
}

static void buf_return(struct core *c, uint16_t bid)
{
	io_uring_buf_ring_add(c->br, c->bufs + (size_t)bid * BUF_BYTES, BUF_BYTES, bid,
			      io_uring_buf_ring_mask(BUF_COUNT), 0);
	io_uring_buf_ring_advance(c->br, 1);
}

static void on_recv(struct core *c, struct conn *k, struct io_uring_cqe *cqe)
{
	bool more = cqe->flags & IORING_CQE_F_MORE;
	if (!more) {
		k->recv_armed = false;
		k->inflight--;
	}
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		if (cqe->res > 0 && k->state != CONN_CLOSING)
			on_bytes(c, k, c->bufs + (size_t)bid * BUF_BYTES, (size_t)cqe->res);
		buf_return(c, bid);
	}
	if (k->state == CONN_CLOSING) {
		if (k->inflight == 0)
			conn_release(c, k);
		return;
	}
	if (cqe->res == 0) {
		/* A four-letter word's client may shut down its side at once
		 * (echo stat | nc): it still gets the answer, then the close. */
		if (!k->fourlw)
			conn_close(c, k, k->session_id ? "client closed the connection" : NULL);
		return;
	}
	if (cqe->res < 0 && cqe->res != -ENOBUFS) {
		conn_close(c, k, strerror(-cqe->res));
		return;
	}
	if (!more)
		arm_recv(c, k);
}

/* ---- messages from the sequencer ---- */

/* A watcher hears of a change only if it may read the node the event is
 * about, whatever kind of watch fired (ZooKeeper 3.9.2's fix of
 * CVE-2024-23944: a recursive watch on an ancestor told unreadable paths).
 * A one-shot watch that is filtered is used up all the same, as there. */
static void emit_event(void *ctx, uint64_t key, enum zk_event_type type, const char *path,
		       size_t len)
{
	struct core *c = ctx;
	struct conn *k = conn_by_ref(c, (uint32_t)key);
	if (!k || k->state != CONN_ACTIVE)
		return;
	const char *super = c->srv->cfg->super_digest[0] ? c->srv->cfg->super_digest : NULL;
	if (!acl_check(c->event_acl, ZPERM_READ, &k->auth, super))
		return;
	proto_put_notification(&k->out, type, path, len, c->event_zxid);
	k->st.sent++;
	atomic_fetch_add_explicit(&c->stats->packets_sent, 1, memory_order_relaxed);
	out_commit(c, k);
}

static void deliver_events(struct core *c, const struct jute_out *ev)
{
	size_t off = 0;
	while (off < ev->len) {
		const struct event_rec *r = (const struct event_rec *)(ev->buf + off);
		const char *path = (const char *)(r + 1);
		c->event_zxid = r->zxid;
		c->event_acl = r->acl;
		watch_trigger(c->watches, path, r->len, (enum zk_event_type)r->type, emit_event, c);
		off += sizeof *r + ((r->len + 7) & ~7u);
	}
}

/* session_id 0: every client connection (the server stopped serving). */
static void kill_session(struct core *c, uint64_t session_id, uint32_t keep_ref)
{
	if (session_id == 0) {
		for (uint32_t i = 0; i < CONNS_MAX; i++) {
			struct conn *k = &c->conns[i];
			if (k->state != CONN_FREE && k->state != CONN_CLOSING)
				conn_close(c, k, "this server is not serving (no leader)");
		}
		return;
	}
	for (uint32_t i = 0; i < CONNS_MAX; i++) {
		struct conn *k = &c->conns[i];
		if (k->state == CONN_ACTIVE && k->session_id == session_id &&
		    conn_ref(c, k) != keep_ref)
			conn_close(c, k,
				   keep_ref ? "session moved to another connection"
					    : "session expired");
	}
}

static void on_connected(struct core *c, struct conn *k, const struct delivery *d)
{
	const uint8_t *frame = (const uint8_t *)(d + 1);
	if (k->state != CONN_CONNECTING)
		return;
	if (d->session_id == 0) {
		if (d->len == 0 || d->timeout_ms < 0) {
			conn_close(c, k,
				   d->len ? "the txn log failed: no new sessions"
					  : "client is ahead of this server (lastZxidSeen)");
			return;
		}
		log_write(LOG_LEVEL_INFO, k->resume_id,
			  "refusing resume from %s: session expired or invalid", k->ip);
		k->close_after_send = true;
		k->state = CONN_ACTIVE;
	} else {
		k->state = CONN_ACTIVE;
		k->session_id = d->session_id;
		k->timeout_ms = d->timeout_ms;
		log_write(LOG_LEVEL_INFO, k->session_id, "session %s from %s, timeout %d ms",
			  k->resume_id ? "resumed" : "established", k->ip, k->timeout_ms);
	}
	carry_reply(&k->out, frame, d->len);
	/* ZooKeeper records a new session's createSession (cxid 0), not a
	 * resume. */
	if (k->session_id && !k->resume_id)
		stats_answered(c, k, ZOP_CREATE_SESSION, 0, c->v->zxid, k->connect_us);
	else
		k->st.sent++;
	out_commit(c, k);
	if (!k->close_after_send)
		drain_parked(c, k);
}

static void on_delivery(struct core *c, const struct delivery *d)
{
	const uint8_t *frame = (const uint8_t *)(d + 1);
	if (d->kind == DLV_KILL) {
		kill_session(c, d->session_id, d->conn_ref);
		return;
	}
	struct conn *k = conn_by_ref(c, d->conn_ref);
	if (!k || k->state == CONN_CLOSING)
		return;
	switch ((enum delivery_kind)d->kind) {
	case DLV_CONNECTED:
		on_connected(c, k, d);
		return;
	case DLV_REPLY:
	case DLV_CLOSE:
		if (k->writes_pending) {
			k->writes_pending--;
			atomic_fetch_sub_explicit(&c->stats->outstanding, 1, memory_order_relaxed);
		}
		atomic_fetch_add_explicit(&c->stats->packets_received, 1, memory_order_relaxed);
		count_latency(c, d->received_us);
		carry_reply(&k->out, frame, d->len);
		if (d->len >= 16)
			stats_answered(c, k, d->kind == DLV_CLOSE ? ZOP_CLOSE_SESSION : wop_pop(k),
				       (int32_t)jute_be32_get(frame + 4),
				       (int64_t)((uint64_t)jute_be32_get(frame + 8) << 32 |
						 jute_be32_get(frame + 12)),
				       d->received_us);
		if (d->kind == DLV_CLOSE)
			k->close_after_send = true;
		out_commit(c, k);
		if (d->kind == DLV_REPLY)
			drain_parked(c, k);
		return;
	case DLV_REFUSED: {
		if (k->writes_pending) {
			k->writes_pending--;
			atomic_fetch_sub_explicit(&c->stats->outstanding, 1, memory_order_relaxed);
		}
		int32_t xid = d->len >= 8 ? (int32_t)jute_be32_get(frame + 4) : 0;
		size_t at = proto_reply_begin(&k->out, xid, c->v->zxid, ZSYSTEMERROR);
		proto_frame_end(&k->out, at);
		stats_answered(c, k, wop_pop(k), xid, c->v->zxid, d->received_us);
		out_commit(c, k);
		drain_parked(c, k);
		return;
	}
	case DLV_KILL:
	case DLV_KIND_COUNT:
		break;
	}
}

static void on_core_msg(struct core *c, struct core_msg *m)
{
	/* Events first, then the new version, then the replies: a client
	 * sees the event before any reply that reflects its change. */
	deliver_events(c, &m->shared->events);
	c->v = m->shared->version;
	size_t off = 0;
	const struct jute_out *d = &m->deliveries;
	while (off < d->len) {
		const struct delivery *h = (const struct delivery *)(d->buf + off);
		on_delivery(c, h);
		off += (sizeof *h + h->len + 7) & ~(size_t)7;
	}
	sequencer_msg_done(m);
}

static void drain_inbound(struct core *c)
{
	struct core_msg *m;
	while ((m = sequencer_poll(c->srv->seq, c->id)))
		on_core_msg(c, m);
	sequencer_report_gen(c->srv->seq, c->id, c->v->gen);
	atomic_store_explicit(&c->stats->watches, watch_count(c->watches), memory_order_relaxed);
	atomic_store_explicit(&c->stats->watch_paths, watch_path_count(c->watches),
			      memory_order_relaxed);
	atomic_store_explicit(&c->stats->watch_sessions, watch_session_count(c->watches),
			      memory_order_relaxed);
}

/* Sessions whose parked writes found the ring full get another try. */
static void retry_blocked(struct core *c)
{
	if (!c->blocked)
		return;
	c->blocked = false;
	for (uint32_t i = 0; i < CONNS_MAX; i++) {
		struct conn *k = &c->conns[i];
		if (k->state == CONN_ACTIVE && k->parked_head)
			drain_parked(c, k);
	}
}

/* ---- periodic work ---- */

static void report_touched(struct core *c)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < CONNS_MAX; i++)
		if (c->conns[i].state == CONN_ACTIVE && c->conns[i].touched)
			n++;
	if (n == 0)
		return;
	struct seq_msg *m = msg_new(SEQ_TOUCH, (size_t)n * 8);
	if (!m)
		return;
	uint32_t j = 0;
	for (uint32_t i = 0; i < CONNS_MAX && j < n; i++) {
		struct conn *k = &c->conns[i];
		if (k->state == CONN_ACTIVE && k->touched) {
			memcpy(m->body + (size_t)j++ * 8, &k->session_id, 8);
			k->touched = false;
		}
	}
	if (submit(c, m))
		free(m); /* sessions stay touched... next report carries them */
}

static void arm_timer(struct core *c)
{
	c->ts.tv_sec = 0;
	c->ts.tv_nsec = TIMER_MS * 1000000L;
	struct io_uring_sqe *sqe = get_sqe(c);
	io_uring_prep_timeout(sqe, &c->ts, 0, 0);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_TIMER, 0, 0));
}

static void arm_accept(struct core *c);

static void on_timer(struct core *c)
{
	int64_t now = mono_ms();
	if (c->accept_paused && !atomic_load(&c->srv->stop)) {
		c->accept_paused = false;
		arm_accept(c);
	}
	if (now >= c->next_touch_ms) {
		report_touched(c);
		c->next_touch_ms = now + TOUCH_INTERVAL_MS;
	}
	gathers_check(c);
	if (c->id == 0 && now >= c->next_expiry_ms) {
		sequencer_tick(c->srv->seq, now);
		int32_t every = c->srv->cfg->tick_time_ms / 2;
		c->next_expiry_ms = now + (every > TIMER_MS ? every : TIMER_MS);
	}
	arm_timer(c);
}

/* ---- reports gathered from every core (cons, stat, dump, wchc, wchp, crst) ----
 *
 * The core that asks (the origin) allocates one gather with a part per
 * core, fills its own part at once and sends every other core an
 * IORING_OP_MSG_RING whose user_data points to that core's ticket (the op
 * in the top byte). The kernel posts it to the target's ring after
 * everything the origin wrote before submitting, so the target sees the
 * gather complete. The target fills its part on its own thread, then
 * decrements pending (release) and wakes the origin; the origin finishes
 * the gather when it reads pending 0 (acquire), on that wake-up or on its
 * next timer tick, so a lost wake-up only delays the answer. A request
 * that could not be posted (the target's completion queue was full) comes
 * back as a failed OP_ASK_SENT: the origin counts that part done
 * itself, unanswered. Until its decrement only the target touches its
 * part. At most GATHERS_MAX gathers wait per origin; the parts of one
 * share REPORT_BYTES_MAX. */

struct gather_ticket {
	struct gather *g;
	int core;
};

struct gather {
	int origin;
	enum report_kind kind;
	core_report_fn fn;
	void *ctx;
	_Atomic int pending; /* parts not yet filled */
	int count;
	struct report_part *parts;
	struct gather_ticket *tickets;
};

static void gather_free(struct gather *g)
{
	if (!g)
		return;
	for (int i = 0; g->parts && i < g->count; i++)
		report_part_free(&g->parts[i]);
	free(g->parts);
	free(g->tickets);
	free(g);
}

static void conn_report(const struct conn *k, struct report_conn *r)
{
	memset(r, 0, sizeof *r);
	memcpy(r->ip, k->ip, sizeof r->ip);
	r->port = k->port;
	bool reading = !k->fourlw && k->state != CONN_CLOSING;
	r->interest = (uint8_t)((reading ? 1 : 0) | (k->send_inflight ? 4 : 0));
	const char *op = k->st.last_op ? report_op_name(k->st.last_op) : NULL;
	snprintf(r->last_op, sizeof r->last_op, "%s", op ? op : "NA");
	r->session_id = k->state == CONN_ACTIVE ? k->session_id : 0;
	r->timeout_ms = k->timeout_ms;
	r->queued = (uint64_t)k->writes_pending + k->parked_count;
	r->received = k->st.received;
	r->sent = k->st.sent;
	r->established_ms = k->st.established_ms;
	r->last_cxid = k->st.last_cxid;
	r->last_zxid = k->st.last_zxid;
	r->last_response_ms = k->st.last_response_ms;
	r->expires_ms = k->st.active_ms + (r->session_id ? k->timeout_ms : REPORT_CNXN_TIMEOUT_MS);
	r->last_latency_ms = k->st.lat_last_ms;
	r->min_latency_ms = k->st.lat_count ? k->st.lat_min_ms : 0;
	r->max_latency_ms = k->st.lat_max_ms;
	r->avg_latency_ms = k->st.lat_count ? k->st.lat_total_ms / k->st.lat_count : 0;
}

static bool conn_listed(const struct conn *k)
{
	return k->state != CONN_FREE && k->state != CONN_CLOSING;
}

struct watch_fill {
	struct core *c;
	struct report_part *p;
};

/* ZooKeeper's wchc and wchp list its data watch table, which holds the
 * data, persistent and recursive watches but not the child watches. */
static int fill_watch(void *ctx, uint64_t key, const char *path, size_t len, enum watch_kind kind)
{
	struct watch_fill *w = ctx;
	struct conn *k = conn_by_ref(w->c, (uint32_t)key);
	if (kind != WATCH_CHILD && k && k->state == CONN_ACTIVE && k->session_id)
		report_add_path(w->p, k->session_id, path, len);
	return 0;
}

struct session_fill {
	struct report_part *p;
	uint64_t id;
};

static int fill_ephemeral(void *ctx, const void *key, size_t len, void *val)
{
	struct session_fill *f = ctx;
	report_add_path(f->p, f->id, key, len);
	return 0;
}

/* Core 0 runs the sequencer: the global sessions are its to report. */
static void fill_session(void *ctx, struct session *s)
{
	struct session_fill *f = ctx;
	struct report_session r = {
	    .id = s->id, .expires_ms = s->deadline_ms, .timeout_ms = s->timeout_ms};
	report_add_session(f->p, &r);
	f->id = s->id;
	hamt_foreach(&s->ephemerals, fill_ephemeral, f);
}

static void fill_part(struct core *c, enum report_kind kind, struct report_part *p)
{
	switch (kind) {
	case REPORT_CONNS:
	case REPORT_DUMP:
		for (uint32_t i = 0; i < CONNS_MAX; i++) {
			struct report_conn r;
			if (!conn_listed(&c->conns[i]))
				continue;
			conn_report(&c->conns[i], &r);
			report_add_conn(p, &r);
		}
		if (kind == REPORT_DUMP && c->id == 0) {
			struct session_fill f = {.p = p};
			sequencer_foreach_session(c->srv->seq, fill_session, &f);
		}
		break;
	case REPORT_WATCHES: {
		struct watch_fill w = {c, p};
		watch_foreach(c->watches, fill_watch, &w);
		break;
	}
	case REPORT_RESET:
		for (uint32_t i = 0; i < CONNS_MAX; i++)
			if (conn_listed(&c->conns[i]))
				stats_reset(&c->conns[i].st);
		break;
	case REPORT_KIND_COUNT:
		break;
	}
	p->answered = true;
}

static void gathers_check(struct core *c)
{
	for (uint32_t i = 0; i < c->gathers_n;) {
		struct gather *g = c->gathers[i];
		if (atomic_load_explicit(&g->pending, memory_order_acquire) != 0) {
			i++;
			continue;
		}
		c->gathers[i] = c->gathers[--c->gathers_n];
		g->fn(g->ctx, g->parts, g->count);
		gather_free(g);
	}
}

int core_report(struct core *c, enum report_kind kind, core_report_fn fn, void *ctx)
{
	RK_ASSERT(kind < REPORT_KIND_COUNT && fn);
	if (c->gathers_n == GATHERS_MAX)
		return -EBUSY;
	int n = c->srv->cores;
	struct gather *g = calloc(1, sizeof *g);
	if (g) {
		g->parts = calloc((size_t)n, sizeof *g->parts);
		g->tickets = calloc((size_t)n, sizeof *g->tickets);
	}
	if (!g || !g->parts || !g->tickets) {
		gather_free(g);
		return -ENOMEM;
	}
	g->origin = c->id;
	g->kind = kind;
	g->fn = fn;
	g->ctx = ctx;
	g->count = n;
	for (int i = 0; i < n; i++) {
		report_part_init(&g->parts[i], REPORT_BYTES_MAX / (size_t)n);
		g->tickets[i] = (struct gather_ticket){g, i};
	}
	atomic_store_explicit(&g->pending, n, memory_order_release);
	c->gathers[c->gathers_n++] = g;
	for (int i = 0; i < n; i++) {
		int fd = atomic_load(&c->srv->ring_fds[i]);
		if (i == c->id)
			continue;
		if (fd <= 0) {
			atomic_fetch_sub_explicit(&g->pending, 1, memory_order_release);
			continue;
		}
		struct io_uring_sqe *sqe = get_sqe(c);
		io_uring_prep_msg_ring(sqe, fd, 0, ud_pack_ptr(OP_GATHER, &g->tickets[i]), 0);
		io_uring_sqe_set_data64(sqe, ud_pack_ptr(OP_ASK_SENT, &g->tickets[i]));
	}
	fill_part(c, kind, &g->parts[c->id]);
	atomic_fetch_sub_explicit(&g->pending, 1, memory_order_release);
	gathers_check(c);
	return 0;
}

/* Another core asks for our part of its report. */
static void on_gather(struct core *c, uint64_t ud)
{
	struct gather_ticket *t = ud_ptr(ud);
	struct gather *g = t->g;
	(void)atomic_load_explicit(&g->pending, memory_order_acquire);
	int origin = g->origin;
	fill_part(c, g->kind, &g->parts[t->core]);
	atomic_fetch_sub_explicit(&g->pending, 1, memory_order_release);
	/* g is the origin's again, maybe already freed: only wake it. */
	struct io_uring_sqe *sqe = get_sqe(c);
	io_uring_prep_msg_ring(sqe, atomic_load(&c->srv->ring_fds[origin]), 0,
			       ud_pack(OP_GATHERED, 0, 0), 0);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_MSG_SENT, 0, 0));
}

/* Our request for a part could not be posted: that part stays empty. */
static void on_gather_sent(struct core *c, uint64_t ud, int res)
{
	if (res >= 0)
		return;
	struct gather_ticket *t = ud_ptr(ud);
	log_warn("core %d not asked for its part of a report: %s", t->core, strerror(-res));
	atomic_fetch_sub_explicit(&t->g->pending, 1, memory_order_release);
	gathers_check(c);
}

/* A four-letter word waiting for its report. */
struct fourlw_wait {
	struct core *c;
	uint32_t conn_ref;
	uint32_t raw;
};

static void fourlw_reported(void *ctx, const struct report_part *parts, int count)
{
	struct fourlw_wait *w = ctx;
	struct core *c = w->c;
	struct conn *k = parts ? conn_by_ref(c, w->conn_ref) : NULL;
	if (k && k->state == CONN_ACTIVE) {
		struct fourlw_ctx fc = {.srv = c->srv, .core_id = c->id};
		fourlw_run_report(&fc, w->raw, parts, count, &k->out);
		k->close_after_send = true;
		out_commit(c, k);
	}
	free(w);
}

static int core_report_fourlw(struct core *c, struct conn *k, uint32_t raw, enum report_kind kind)
{
	struct fourlw_wait *w = malloc(sizeof *w);
	if (!w)
		return -ENOMEM;
	*w = (struct fourlw_wait){c, conn_ref(c, k), raw};
	int rc = core_report(c, kind, fourlw_reported, w);
	if (rc)
		free(w);
	return rc;
}

/* ---- the loop ---- */

static void arm_accept(struct core *c)
{
	struct io_uring_sqe *sqe = get_sqe(c);
	io_uring_prep_multishot_accept(sqe, c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_ACCEPT, 0, 0));
}

static void arm_storage_poll(struct core *c)
{
	int fd = sequencer_wait_fd(c->srv->seq);
	if (fd < 0)
		return;
	struct io_uring_sqe *sqe = get_sqe(c);
	io_uring_prep_poll_multishot(sqe, fd, POLLIN);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_STORAGE, 0, 0));
}

/* The sequencer reaps the log's completions in its next pass; here the
 * eventfd is only drained so that it can signal again. */
static void on_storage_ready(struct core *c, struct io_uring_cqe *cqe)
{
	uint64_t n;
	ssize_t r = read(sequencer_wait_fd(c->srv->seq), &n, sizeof n);
	(void)r;
	if (!(cqe->flags & IORING_CQE_F_MORE) && !atomic_load(&c->srv->stop))
		arm_storage_poll(c);
}

/* The ensemble's transport and timers run on core 0, like the sequencer:
 * its eventfd is polled here and its clock ticks every PEER_TICK_MS. */
#define PEER_TICK_MS 20

static void arm_peer_poll(struct core *c)
{
	struct io_uring_sqe *sqe = get_sqe(c);
	io_uring_prep_poll_multishot(sqe, c->srv->peer_fd, POLLIN);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_PEER, 0, 0));
}

static void arm_peer_timer(struct core *c)
{
	c->peer_ts.tv_sec = 0;
	c->peer_ts.tv_nsec = PEER_TICK_MS * 1000000L;
	struct io_uring_sqe *sqe = get_sqe(c);
	io_uring_prep_timeout(sqe, &c->peer_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_PEER_TIMER, 0, 0));
}

static void on_peer_cqe(struct core *c, struct io_uring_cqe *cqe, bool timer)
{
	c->srv->peer_poll(c->srv, mono_ms(), timer);
	if (atomic_load(&c->srv->stop))
		return;
	if (timer)
		arm_peer_timer(c);
	else if (!(cqe->flags & IORING_CQE_F_MORE))
		arm_peer_poll(c);
}

/* The admin HTTP server has its own ring; core 0 polls its eventfd. */
static void arm_admin_poll(struct core *c)
{
	struct io_uring_sqe *sqe = get_sqe(c);
	io_uring_prep_poll_multishot(sqe, admin_wait_fd(c->srv->admin), POLLIN);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_ADMIN, 0, 0));
}

static void on_admin_cqe(struct core *c, struct io_uring_cqe *cqe)
{
	admin_poll(c->srv->admin);
	if (!(cqe->flags & IORING_CQE_F_MORE) && !atomic_load(&c->srv->stop))
		arm_admin_poll(c);
}

/* Out of descriptors (or another accept error): say so once, and stop
 * accepting until the next timer tick instead of spinning on the error. */
static void on_accept_cqe(struct core *c, struct io_uring_cqe *cqe)
{
	bool more = cqe->flags & IORING_CQE_F_MORE;
	if (cqe->res >= 0) {
		on_accept(c, cqe->res);
		c->accept_errors = 0;
	} else if (cqe->res != -ECANCELED) {
		if (c->accept_errors++ == 0)
			log_error("accept: %s; new connections wait%s", strerror(-cqe->res),
				  cqe->res == -EMFILE || cqe->res == -ENFILE
				      ? " (raise the open file limit)"
				      : "");
		if (more) {
			/* Stop the multishot accept; the timer re-arms it. */
			struct io_uring_sqe *sqe = get_sqe(c);
			io_uring_prep_cancel64(sqe, ud_pack(OP_ACCEPT, 0, 0), 0);
			io_uring_sqe_set_data64(sqe, ud_pack(OP_MSG_SENT, 0, 0));
		}
		c->accept_paused = true;
		return;
	}
	if (!more && !c->accept_paused && !atomic_load(&c->srv->stop))
		arm_accept(c);
}

static void handle_cqe(struct core *c, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	enum op op = (enum op)(ud >> 56);
	uint32_t slot = (uint32_t)(ud >> 16) & 0xffffff;
	struct conn *k = slot < CONNS_MAX ? &c->conns[slot] : NULL;
	switch (op) {
	case OP_ACCEPT:
		on_accept_cqe(c, cqe);
		break;
	case OP_RECV:
		RK_ASSERT(k && k->gen == (uint16_t)ud && k->state != CONN_FREE);
		/* A client may have learnt of a write from another core's reply:
		 * take in every published batch before reading its request, so
		 * it sees that write too. */
		if (sequencer_has_msgs(c->srv->seq, c->id))
			drain_inbound(c);
		on_recv(c, k, cqe);
		break;
	case OP_SEND:
		RK_ASSERT(k && k->gen == (uint16_t)ud && k->state != CONN_FREE);
		k->inflight--;
		on_send(c, k, cqe->res);
		if (k->state == CONN_CLOSING && k->inflight == 0)
			conn_release(c, k);
		break;
	case OP_TIMER:
		on_timer(c);
		break;
	case OP_WAKE:
	case OP_MSG_SENT:
		break;
	case OP_STORAGE:
		on_storage_ready(c, cqe);
		break;
	case OP_PEER:
	case OP_PEER_TIMER:
		on_peer_cqe(c, cqe, op == OP_PEER_TIMER);
		break;
	case OP_ADMIN:
		on_admin_cqe(c, cqe);
		break;
	case OP_GATHER:
		on_gather(c, ud);
		break;
	case OP_ASK_SENT:
		on_gather_sent(c, ud, cqe->res);
		break;
	case OP_GATHERED:
		gathers_check(c);
		break;
	case OP_COUNT:
		RK_ASSERT(!"bad user_data");
	}
}

void core_wake(void *ctx, int target)
{
	struct server *srv = ctx;
	struct core *c = srv->core[0];
	if (target == 0)
		return; /* the sequencer's own core drains its ring each pass */
	struct io_uring_sqe *sqe = get_sqe(c);
	io_uring_prep_msg_ring(sqe, atomic_load(&srv->ring_fds[target]), 0, ud_pack(OP_WAKE, 0, 0),
			       0);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_MSG_SENT, 0, 0));
}

static void wake_sequencer(struct core *c)
{
	if (!c->wake_seq)
		return;
	c->wake_seq = false;
	if (c->id == 0)
		return;
	struct io_uring_sqe *sqe = get_sqe(c);
	io_uring_prep_msg_ring(sqe, atomic_load(&c->srv->ring_fds[0]), 0, ud_pack(OP_WAKE, 0, 0),
			       0);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_MSG_SENT, 0, 0));
}

static int setup_ring(struct core *c)
{
	struct io_uring_params p = {0};
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
	p.cq_entries = CQ_ENTRIES;
	int rc = io_uring_queue_init_params(SQ_ENTRIES, &c->ring, &p);
	if (rc == -EINVAL) {
		memset(&p, 0, sizeof p);
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = CQ_ENTRIES;
		rc = io_uring_queue_init_params(SQ_ENTRIES, &c->ring, &p);
	}
	if (rc) {
		log_error("io_uring_queue_init: %s", strerror(-rc));
		return rc;
	}
	size_t ring_bytes = BUF_COUNT * sizeof(struct io_uring_buf);
	c->br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	c->bufs = malloc((size_t)BUF_COUNT * BUF_BYTES);
	if (c->br == MAP_FAILED || !c->bufs) {
		log_error("cannot allocate receive buffers");
		return -ENOMEM;
	}
	struct io_uring_buf_reg reg = {
	    .ring_addr = (unsigned long)c->br, .ring_entries = BUF_COUNT, .bgid = BUF_GROUP};
	rc = io_uring_register_buf_ring(&c->ring, &reg, 0);
	if (rc) {
		log_error("io_uring_register_buf_ring: %s", strerror(-rc));
		return rc;
	}
	io_uring_buf_ring_init(c->br);
	for (uint16_t i = 0; i < BUF_COUNT; i++)
		io_uring_buf_ring_add(c->br, c->bufs + (size_t)i * BUF_BYTES, BUF_BYTES, i,
				      io_uring_buf_ring_mask(BUF_COUNT), i);
	io_uring_buf_ring_advance(c->br, BUF_COUNT);
	return 0;
}

struct core *core_create(struct server *srv, int id, int listen_fd)
{
	struct core *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->id = id;
	c->srv = srv;
	c->listen_fd = listen_fd;
	c->stats = &srv->stats[id];
	c->conns = calloc(CONNS_MAX, sizeof *c->conns);
	c->free_slots = malloc(CONNS_MAX * sizeof *c->free_slots);
	c->dirty = malloc(CONNS_MAX * sizeof *c->dirty);
	c->watches = watch_table_create(WATCHES_MAX);
	if (!c->conns || !c->free_slots || !c->dirty || !c->watches) {
		core_destroy(c);
		return NULL;
	}
	for (uint32_t i = 0; i < CONNS_MAX; i++) {
		c->conns[i].gen = 1; /* conn_ref 0 means "no connection" */
		c->free_slots[c->free_n++] = CONNS_MAX - 1 - i;
	}
	c->v = tree_acquire(sequencer_tree(srv->seq));
	return c;
}

int core_run(struct core *c)
{
	log_set_core(c->id);
	int rc = setup_ring(c);
	if (rc)
		return rc;
	atomic_store(&c->srv->ring_fds[c->id], c->ring.ring_fd);
	/* Wake-ups need every core's ring: wait (bounded) for the others. */
	for (int i = 0, tries = 0; i < c->srv->cores && tries < 10000; tries++) {
		if (atomic_load(&c->srv->ring_fds[i]))
			i++;
		else
			usleep(1000);
	}
	arm_accept(c);
	arm_timer(c);
	if (c->id == 0)
		arm_storage_poll(c);
	if (c->id == 0 && c->srv->peer_poll) {
		arm_peer_poll(c);
		arm_peer_timer(c);
	}
	if (c->id == 0 && c->srv->admin)
		arm_admin_poll(c);
	bool busy = false;
	while (!atomic_load_explicit(&c->srv->stop, memory_order_relaxed)) {
		if (busy)
			io_uring_submit(&c->ring);
		else
			io_uring_submit_and_wait(&c->ring, 1);
		c->now_us = mono_us();
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		io_uring_for_each_cqe(&c->ring, head, cqe)
		{
			handle_cqe(c, cqe);
			n++;
		}
		io_uring_cq_advance(&c->ring, n);
		busy = false;
		if (c->id == 0)
			busy = sequencer_run(c->srv->seq, mono_ms());
		drain_inbound(c);
		retry_blocked(c);
		if (c->wake_seq && c->id == 0)
			busy = true;
		flush_all(c);
		wake_sequencer(c);
	}
	return 0;
}

void core_destroy(struct core *c)
{
	if (!c)
		return;
	for (uint32_t i = 0; c->conns && i < CONNS_MAX; i++) {
		struct conn *k = &c->conns[i];
		if (k->state != CONN_FREE) {
			free_parked(k);
			k->inflight = 0;
			conn_release(c, k);
		}
	}
	struct core_msg *m;
	while (c->srv && (m = sequencer_poll(c->srv->seq, c->id)))
		sequencer_msg_done(m);
	/* Reports still being gathered: every core has stopped, so none
	 * fills a part any more. fn hears of it with no parts. */
	for (uint32_t i = 0; i < c->gathers_n; i++) {
		c->gathers[i]->fn(c->gathers[i]->ctx, NULL, 0);
		gather_free(c->gathers[i]);
	}
	if (c->ring.ring_fd > 0)
		io_uring_queue_exit(&c->ring);
	if (c->br && c->br != MAP_FAILED)
		munmap(c->br, BUF_COUNT * sizeof(struct io_uring_buf));
	free(c->bufs);
	watch_table_destroy(c->watches);
	free(c->conns);
	free(c->free_slots);
	free(c->dirty);
	free(c);
}
