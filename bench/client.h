/* One ZooKeeper client session of the bench: a non-blocking socket, a ring
 * of outstanding requests and fixed read/write buffers, driven by its
 * worker's epoll loop (client.c) and fed by the workload (workload.c).
 *
 * Invariants: ZooKeeper answers a session's requests in the order they were
 * sent, so the ring is a FIFO and every reply's xid must equal the head's;
 * pings (xid -2) and notifications (xid -1) live outside the ring. Buffers
 * never grow during a run except rbuf, once, for a reply larger than any
 * seen so far (bounded by FRAME_BYTES_MAX). */
#ifndef RK_BENCH_CLIENT_H
#define RK_BENCH_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "bench/bench.h"
#include "core/jute.h"

enum client_state {
	CLIENT_IDLE = 0,   /* not yet connecting */
	CLIENT_CONNECTING, /* non-blocking TCP connect in progress */
	CLIENT_HANDSHAKE,  /* ConnectRequest sent, waiting for ConnectResponse */
	CLIENT_SYNCING,	   /* sync("/") sent so reads see what setup created */
	CLIENT_ACTIVE,	   /* issuing the workload (or waiting for the start) */
	CLIENT_CLOSING,	   /* closeSession sent, waiting for its reply or EOF */
	CLIENT_CLOSED,	   /* closed cleanly; fd closed */
	CLIENT_FAILED,	   /* connection, protocol or timeout error; fd closed */
	CLIENT_STATE_COUNT,
};

struct op {
	enum op_kind kind;
	uint32_t key;	   /* key index; for setup creates, the setup item */
	uint64_t start_ns; /* latency origin: send time, or intended time */
};

struct slot {
	uint64_t start_ns;
	int32_t xid;
	uint32_t key;
	enum op_kind kind;
};

struct client {
	struct worker *w;
	const struct server *server;
	int server_at; /* server's index in b->servers */
	int index;     /* across the whole run */
	int fd;
	enum client_state state;
	int32_t xid_next;
	int32_t close_xid;
	int32_t timeout_ms; /* negotiated */
	int64_t session_id;

	struct slot *slots;
	uint32_t slot_cap;
	uint32_t slot_head;
	uint32_t slot_count;

	uint8_t *rbuf;
	size_t rbuf_len;
	size_t rbuf_cap;
	struct jute_out wbuf;
	size_t wbuf_sent;
	bool poll_out; /* EPOLLOUT is registered */

	bool ping_outstanding;
	uint64_t ping_sent_ns;
	uint64_t deadline_ns; /* of the connect, handshake, sync or close */
	uint64_t last_send_ns;
	uint64_t last_progress_ns; /* last reply, or first send into an empty ring */

	/* Open loop: request k is due at sched_origin_ns + k * sched_interval_ns. */
	uint64_t sched_origin_ns;
	double sched_interval_ns;
	uint64_t sched_next;
	/* Setup: the next prefix component or key to create. */
	uint32_t setup_next;

	/* --reconnect: a session that lost its connection waits in CLIENT_IDLE
	 * until reconnect_at_ns (0: not waiting), then opens a new session on
	 * the next server. */
	bool ever_ready; /* counted in w->sessions_ready once */
	uint64_t reconnect_at_ns;
	uint64_t lost_ns; /* when an active connection was lost, 0 if none since */
	const struct server *lost_from;
	uint32_t attempts; /* failed attempts since the loss */
};

int client_init(struct client *s, struct worker *w, int index, int inflight);
void client_free(struct client *s);
void client_open(struct client *s, uint64_t now);
/* --reconnect: opens the new connection of a session whose pause is over. */
void client_reopen_if_due(struct client *s, uint64_t now);
void client_on_event(struct client *s, uint32_t events);
/* Timeouts, pings and the end of the run: called every few milliseconds. */
void client_tick(struct client *s, uint64_t now);
/* Sends whatever the state and the workload allow right now. */
void client_drive(struct client *s, uint64_t now);
static inline bool client_live(const struct client *s)
{
	return s->state < CLIENT_CLOSED;
}
/* Logs the first few failures of the run and closes the session. err is
 * -errno (its text is appended) or 0; returns err, or -EPROTO for 0. */
int client_fail(struct client *s, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* workload.c: what a session sends next and what it makes of replies. */
bool workload_next(struct client *s, uint64_t now, struct op *op);
bool workload_done(const struct client *s, uint64_t now);
void workload_put(struct client *s, const struct op *op, int32_t xid);
int workload_reply(struct client *s, const struct slot *sl, int32_t err, struct jute_in *in,
		   uint64_t now);
/* The connection of a request died before its reply: a connectionloss error. */
void workload_lost(struct client *s, const struct slot *sl, uint64_t now);
/* Open loop: when this session's next request is due, or UINT64_MAX. */
uint64_t workload_next_due(const struct client *s);

#endif
