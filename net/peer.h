/* The peer transport: the TCP connections between the servers of a
 * replicated ensemble, one per pair of servers, carrying length-prefixed,
 * checksummed frames. The consensus engine above treats a connection as a
 * reliable ordered channel that may drop at any time: every frame queued on
 * a connection arrives, in order, unless that connection goes down first.
 *
 * Threading: nothing here is thread-safe. A struct peer_net owns one
 * io_uring; every function, and every callback, runs on the thread that
 * polls it (core 0's event loop). That thread waits for peer_wait_fd() to
 * become readable (an eventfd the ring signals on each completion) and
 * calls peer_poll() then, and also on a timer at least every reconnect_ms
 * so reconnects and handshake deadlines run.
 *
 * Connections: the server with the larger sid connects to the one with the
 * smaller sid, so a pair never holds two connections. The connector sends
 * a hello frame first; the acceptor checks it and answers with an ack
 * frame. The acceptor considers the connection up once the hello checks
 * out; the connector once the ack arrives (so a connector whose hello is
 * refused never reports up and down every reconnect_ms). A valid hello from
 * a sid that already has a connection replaces it (the peer restarted): the
 * old one goes down (on_down), then the new one comes up (on_up). A
 * connection that drops is re-established by its connector after
 * reconnect_ms; a connect or handshake that takes longer than
 * connect_timeout_ms is abandoned and retried the same way.
 *
 * Callbacks: on_up, on_down and on_frame run from peer_poll(), and on_down
 * also from peer_send()/peer_sendv() (output bound reached) and
 * peer_close(). They may call peer_send, peer_sendv, peer_close and
 * peer_connected; never peer_poll or peer_destroy. on_down fires exactly
 * once per on_up; peer_destroy() fires neither.
 *
 * Liveness is not detected here: a peer that vanishes without a FIN or RST
 * keeps its connection until the engine's own timeouts call peer_close().
 *
 * Wire format (all integers little-endian). Every frame:
 *
 * | off | size | field                                                 |
 * |   0 |    4 | len: payload bytes, at most the receiver's            |
 * |     |      |   frame_bytes_max (exactly 16 for hello and ack)      |
 * |   4 |    4 | checksum: low 32 bits of XXH3-64 of the payload       |
 * |   8 |  len | payload                                               |
 *
 * The first frame on a connection, in each direction, carries this
 * payload (hello from the connector, ack from the acceptor):
 *
 * | off | size | field                                                 |
 * |   0 |    4 | magic, PEER_MAGIC                                     |
 * |   4 |    2 | version, PEER_VERSION                                 |
 * |   6 |    2 | flags: 0 in a hello, PEER_HELLO_ACK in an ack         |
 * |   8 |    4 | from_sid: the sender's sid                            |
 * |  12 |    4 | to_sid: the sid the sender believes it talks to       |
 *
 * Every later frame's payload is the engine's, opaque here. A bad magic,
 * version, flags or sid, a checksum mismatch, or a length over the bound
 * closes the connection with a warning; the bound is checked before any
 * memory is allocated for the frame. */
#ifndef RK_PEER_H
#define RK_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define PEER_MAGIC     0x52504b52u /* "RKPR" as it appears on the wire */
#define PEER_VERSION   1u
#define PEER_HELLO_ACK 1u
#define PEER_COUNT_MAX 256 /* other servers in one ensemble */

struct peer_frame_header {
	uint32_t len;
	uint32_t checksum;
};

struct peer_hello {
	uint32_t magic;
	uint16_t version;
	uint16_t flags;
	uint32_t from_sid;
	uint32_t to_sid;
};

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "frames are written little-endian");
_Static_assert(sizeof(struct peer_frame_header) == 8, "frame header layout");
_Static_assert(offsetof(struct peer_frame_header, checksum) == 4, "frame header layout");
_Static_assert(sizeof(struct peer_hello) == 16, "hello layout");
_Static_assert(offsetof(struct peer_hello, version) == 4, "hello layout");
_Static_assert(offsetof(struct peer_hello, flags) == 6, "hello layout");
_Static_assert(offsetof(struct peer_hello, from_sid) == 8, "hello layout");
_Static_assert(offsetof(struct peer_hello, to_sid) == 12, "hello layout");

struct peer_addr {
	uint32_t sid;
	char host[256]; /* IPv4/IPv6 literal or a name (resolved at peer_create with getaddrinfo) */
	int port;	/* the peer's quorum port */
};

struct peer_config {
	uint32_t my_sid;
	const char *listen_host; /* my quorum address; "0.0.0.0" etc. allowed */
	int listen_port;
	const struct peer_addr *peers; /* every other server of the ensemble; copied */
	size_t n_peers;		       /* at most PEER_COUNT_MAX */
	size_t frame_bytes_max; /* a bigger incoming frame drops the connection (default 64 MiB
				   if 0; at most UINT32_MAX) */
	size_t out_bytes_max;	/* bytes queued to one peer; past it peer_send returns -ENOBUFS
				   and the connection is dropped (default 512 MiB if 0) */
	int reconnect_ms;	/* between connection attempts (default 100 if 0) */
	int connect_timeout_ms; /* connect plus handshake, either side (default 5000 if 0) */
	void (*on_up)(void *ctx, uint32_t sid);	  /* connection established (after handshake) */
	void (*on_down)(void *ctx, uint32_t sid); /* connection lost or closed; once per on_up */
	void (*on_frame)(void *ctx, uint32_t sid, const uint8_t *buf,
			 size_t len); /* buf valid during the call only */
	void *ctx;
};

struct peer_net;

/* Binds and listens on the quorum address and resolves every peer's host.
 * NULL with a one-line message in err on error (a bind failure names the
 * address). The first connection attempts start at the first peer_poll(). */
struct peer_net *peer_create(const struct peer_config *cfg, char *err, size_t errlen);
/* Closes every connection and frees everything; no callbacks run. */
void peer_destroy(struct peer_net *pn);

/* Queue one frame to sid; buf is copied. 0, or:
 * -ENOTCONN  sid is not connected (or not a peer at all); nothing queued.
 * -EMSGSIZE  len is over frame_bytes_max (ours: every server of an
 *            ensemble is meant to share one bound); nothing queued, the
 *            connection stays up.
 * -ENOBUFS   out_bytes_max would be exceeded: the connection is dropped
 *            (on_down has run when this returns).
 * -ENOMEM    the queue could not grow: the connection is dropped likewise.
 * Dropping on a failed queue keeps the channel's promise: a frame is never
 * silently missing from the middle of a connection's stream. */
int peer_send(struct peer_net *pn, uint32_t sid, const void *buf, size_t len);
/* Send one frame gathered from several pieces (avoid a copy by the caller).
 * Same results as peer_send; the pieces are copied. */
int peer_sendv(struct peer_net *pn, uint32_t sid, const struct iovec *iov, int iovcnt);
/* Drop the connection now (on_down fires if it was up); it is
 * re-established later. A no-op if sid has no connection. */
void peer_close(struct peer_net *pn, uint32_t sid);
bool peer_connected(const struct peer_net *pn, uint32_t sid);
int peer_wait_fd(const struct peer_net *pn);
/* Never blocks: reap completions, run callbacks, start reconnects whose time
 * came. now_ms: a monotonic clock in milliseconds, the caller's. */
void peer_poll(struct peer_net *pn, int64_t now_ms);

#endif
