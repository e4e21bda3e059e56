/* ringkeeper-ceiling: a ZooKeeper server that does no work, to show how
 * fast this machine can carry the client protocol at all. It answers the
 * ConnectRequest, pings and closeSession as a server would, and every other
 * request with a canned reply: getData (and any op it does not know) gets
 * value_size bytes with a Stat saying so, setData and exists a Stat, sync
 * its path, create "/". Nothing is stored, logged or checked. The
 * four-letter words srvr, stat and ruok get a short answer, so scripts can
 * wait for it as for a real server.
 *
 * Thread per core: each thread owns a SO_REUSEPORT listener (the kernel
 * spreads connections over them), one epoll loop and its connections,
 * pinned to its CPU as Ringkeeper pins its cores. Bounds: a connection's
 * receive buffer holds RBUF_BYTES; a frame larger than that closes it;
 * replies are produced only while less than WBUF_HIGH_BYTES wait to be
 * sent, so the send buffer never exceeds WBUF_HIGH_BYTES plus one reply. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/jute.h"
#include "core/log.h"
#include "core/proto.h"

#define RBUF_BYTES	(256u << 10)
#define WBUF_HIGH_BYTES (1u << 20)
#define WBUF_MAX_BYTES	(WBUF_HIGH_BYTES + (2u << 20))
#define EVENTS_MAX	256
#define LISTEN_BACKLOG	4096
#define CANNED_ZXID	1
#define THREADS_MAX	256

/* A canned reply frame: [len][xid][zxid][err][body]; the xid at XID_AT is
 * patched per request. */
#define XID_AT 4
struct canned {
	struct jute_out frame;
};

enum canned_kind {
	CANNED_GET_DATA = 0, /* value bytes + Stat: getData, and unknown ops */
	CANNED_STAT,	     /* Stat: setData, exists */
	CANNED_PATH,	     /* "/": sync, create */
	CANNED_BARE,	     /* header only: ping, closeSession */
	CANNED_COUNT,
};

static struct canned canned[CANNED_COUNT];

struct conn {
	int fd;
	bool handshaken; /* the ConnectRequest was answered */
	bool closing;	 /* close once wbuf is sent */
	uint32_t events; /* what epoll watches for now */
	uint8_t *rbuf;
	size_t rlen;
	struct jute_out wbuf;
	size_t wsent;
};

struct loop {
	int id;
	int cpu;
	int listen_fd;
	int epfd;
	uint64_t next_session;
	pthread_t thread;
};

static struct zk_stat canned_stat(int32_t value_size)
{
	return (struct zk_stat){.czxid = CANNED_ZXID,
				.mzxid = CANNED_ZXID,
				.ctime = 1,
				.mtime = 1,
				.data_length = value_size,
				.pzxid = CANNED_ZXID};
}

static void canned_build(int32_t value_size)
{
	struct zk_stat st = canned_stat(value_size);
	uint8_t *value = calloc((size_t)value_size + 1, 1);
	RK_ASSERT(value);
	memset(value, 'c', (size_t)value_size);
	for (int k = 0; k < CANNED_COUNT; k++) {
		struct jute_out *o = &canned[k].frame;
		jute_out_init(o, 256, (size_t)value_size + 256);
		size_t start = proto_reply_begin(o, 0, CANNED_ZXID, ZOK);
		switch ((enum canned_kind)k) {
		case CANNED_GET_DATA:
			jute_put_buffer(o, value, value_size);
			proto_put_stat(o, &st);
			break;
		case CANNED_STAT:
			proto_put_stat(o, &st);
			break;
		case CANNED_PATH:
			jute_put_cstr(o, "/");
			break;
		case CANNED_BARE:
		case CANNED_COUNT:
			break;
		}
		proto_frame_end(o, start);
		RK_ASSERT(!o->err);
	}
	free(value);
}

static enum canned_kind canned_for(int32_t op)
{
	switch (op) {
	case ZOP_SET_DATA:
	case ZOP_EXISTS:
		return CANNED_STAT;
	case ZOP_SYNC:
	case ZOP_CREATE:
		return CANNED_PATH;
	case ZOP_PING:
	case ZOP_CLOSE_SESSION:
		return CANNED_BARE;
	default:
		return CANNED_GET_DATA;
	}
}

static void put_canned(struct conn *c, enum canned_kind k, int32_t xid)
{
	const struct jute_out *t = &canned[k].frame;
	uint8_t *p = jute_reserve(&c->wbuf, t->len);
	RK_ASSERT(p); /* wbuf's cap_max leaves room for one reply past the high mark */
	memcpy(p, t->buf, t->len);
	jute_be32_put(p + XID_AT, (uint32_t)xid);
}

static void conn_free(struct loop *l, struct conn *c)
{
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->rbuf);
	jute_out_free(&c->wbuf);
	free(c);
}

/* Waits for room to send while replies are pending, and stops reading
 * while they pass the high mark (the client's requests wait in its socket). */
static int set_events(struct loop *l, struct conn *c)
{
	size_t pending = c->wbuf.len - c->wsent;
	uint32_t want = (pending ? EPOLLOUT : 0) | (pending >= WBUF_HIGH_BYTES ? 0 : EPOLLIN);
	if (want == c->events)
		return 0;
	struct epoll_event ev = {.events = want, .data.ptr = c};
	c->events = want;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0 ? -errno : 0;
}

/* 0 when everything was sent or the socket is full, -errno if it failed. */
static int flush(struct conn *c)
{
	while (c->wsent < c->wbuf.len) {
		ssize_t n =
		    send(c->fd, c->wbuf.buf + c->wsent, c->wbuf.len - c->wsent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		}
		c->wsent += (size_t)n;
	}
	jute_out_reset(&c->wbuf);
	c->wsent = 0;
	return 0;
}

static void answer_4lw(struct conn *c)
{
	static const char srvr[] = "Zookeeper version: ringkeeper-ceiling (answers, stores "
				   "nothing)\nMode: standalone\nNode count: 0\n";
	const char *a = memcmp(c->rbuf, "ruok", 4) == 0 ? "imok" : srvr;
	size_t n = strlen(a);
	memcpy(jute_reserve(&c->wbuf, n), a, n);
	c->closing = true;
}

static int answer_connect(struct loop *l, struct conn *c, struct jute_in *in)
{
	jute_get_int(in);  /* protocolVersion */
	jute_get_long(in); /* lastZxidSeen */
	int32_t timeout_ms = jute_get_int(in);
	if (in->err)
		return -EBADMSG;
	uint64_t session = ((uint64_t)(l->id + 1) << 48) | ++l->next_session;
	static const uint8_t password[ZK_PASSWORD_BYTES];
	size_t start = c->wbuf.len;
	jute_put_int(&c->wbuf, 0);
	jute_put_int(&c->wbuf, 0); /* protocolVersion */
	jute_put_int(&c->wbuf, timeout_ms);
	jute_put_long(&c->wbuf, (int64_t)session);
	jute_put_buffer(&c->wbuf, password, ZK_PASSWORD_BYTES);
	jute_put_bool(&c->wbuf, false); /* readOnly */
	proto_frame_end(&c->wbuf, start);
	c->handshaken = true;
	return 0;
}

static int answer_frame(struct loop *l, struct conn *c, const uint8_t *p, uint32_t len)
{
	struct jute_in in = jute_in_make(p, len);
	if (!c->handshaken)
		return answer_connect(l, c, &in);
	int32_t xid = jute_get_int(&in);
	int32_t op = jute_get_int(&in);
	if (in.err)
		return -EBADMSG;
	put_canned(c, canned_for(op), xid);
	if (op == ZOP_CLOSE_SESSION)
		c->closing = true;
	return 0;
}

static bool is_4lw(const uint8_t *p)
{
	for (int i = 0; i < 4; i++)
		if (p[i] < 'a' || p[i] > 'z')
			return false;
	return true;
}

/* Answers the complete frames in rbuf while the send buffer has room;
 * keeps the rest. 1 if it stopped for room with frames left, 0 when none
 * is left, -errno if the client sent something unusable. */
static int answer_frames(struct loop *l, struct conn *c)
{
	size_t off = 0;
	int err = 0;
	if (!c->handshaken && c->rlen >= 4 && is_4lw(c->rbuf)) {
		answer_4lw(c);
		c->rlen = 0;
		return 0;
	}
	while (!err && !c->closing && c->rlen - off >= ZK_FRAME_HEADER_BYTES &&
	       c->wbuf.len < WBUF_HIGH_BYTES) {
		uint32_t len = jute_be32_get(c->rbuf + off);
		if (len > RBUF_BYTES - ZK_FRAME_HEADER_BYTES)
			return -EMSGSIZE;
		if (c->rlen - off - ZK_FRAME_HEADER_BYTES < len)
			break;
		err = answer_frame(l, c, c->rbuf + off + ZK_FRAME_HEADER_BYTES, len);
		off += ZK_FRAME_HEADER_BYTES + len;
	}
	memmove(c->rbuf, c->rbuf + off, c->rlen - off);
	c->rlen -= off;
	return err ? err : c->wbuf.len >= WBUF_HIGH_BYTES && c->rlen >= ZK_FRAME_HEADER_BYTES;
}

/* One readiness event: send what waits, read, answer, send. 0 to keep the
 * connection, anything else to drop it. */
static int on_conn(struct loop *l, struct conn *c, uint32_t events)
{
	int err = flush(c);
	if (err)
		return err;
	if (c->closing)
		return c->wbuf.len ? set_events(l, c) : -ECONNRESET;
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->rlen < RBUF_BYTES) {
		ssize_t n = recv(c->fd, c->rbuf + c->rlen, RBUF_BYTES - c->rlen, 0);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		if (n > 0)
			c->rlen += (size_t)n;
	}
	/* Frames left for want of room are answered once the socket took
	 * the replies before them: the client may be waiting for those. */
	int more;
	do {
		if ((more = answer_frames(l, c)) < 0 || (err = flush(c)))
			return more < 0 ? more : err;
	} while (more && c->wbuf.len == 0);
	if (c->closing && c->wbuf.len == 0)
		return -ECONNRESET;
	return set_events(l, c);
}

static void on_accept(struct loop *l)
{
	for (;;) {
		int fd = accept4(l->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn("loop %d: accept4: %s", l->id, strerror(errno));
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct conn *c = calloc(1, sizeof *c);
		if (c)
			c->rbuf = malloc(RBUF_BYTES);
		if (!c || !c->rbuf) {
			log_warn("loop %d: out of memory for a connection; closing it", l->id);
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->events = EPOLLIN;
		jute_out_init(&c->wbuf, 64u << 10, WBUF_MAX_BYTES);
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			log_warn("loop %d: epoll_ctl: %s", l->id, strerror(errno));
			conn_free(l, c);
		}
	}
}

static void *loop_main(void *arg)
{
	struct loop *l = arg;
	struct epoll_event ev[EVENTS_MAX];
	log_set_core(l->id);
	if (l->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(l->cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof set, &set);
	}
	for (;;) {
		int n = epoll_wait(l->epfd, ev, EVENTS_MAX, -1);
		if (n < 0 && errno != EINTR) {
			log_error("loop %d: epoll_wait: %s", l->id, strerror(errno));
			exit(1);
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr == l)
				on_accept(l);
			else if (on_conn(l, ev[i].data.ptr, ev[i].events))
				conn_free(l, ev[i].data.ptr);
		}
	}
	return NULL;
}

static int listen_on(const char *addr, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, addr, &a.sin_addr) != 1) {
		log_error("--address %s is not an IPv4 address", addr);
		return -EINVAL;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, LISTEN_BACKLOG)) {
		int err = errno;
		log_error("cannot listen on %s:%d: %s", addr, port, strerror(err));
		close(fd);
		return -err;
	}
	return fd;
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

static int start_loop(struct loop *l, int id, const char *addr, int port)
{
	l->id = id;
	l->cpu = nth_cpu(id);
	if ((l->listen_fd = listen_on(addr, port)) < 0)
		return l->listen_fd;
	if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return -errno;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->listen_fd, &ev) < 0)
		return -errno;
	int err = pthread_create(&l->thread, NULL, loop_main, l);
	return -err;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: ringkeeper-ceiling [--port N] [--address A] [--threads N] "
		   "[--value-size B]\n"
		   "  --port N        client port (2181)\n"
		   "  --address A     IPv4 address to listen on (127.0.0.1)\n"
		   "  --threads N     event loops, one per CPU (0 = every CPU, the default)\n"
		   "  --value-size B  bytes of every getData reply (1024)\n"
		   "Answers every request with a canned reply and stores nothing; stop it\n"
		   "with SIGTERM or SIGINT.\n");
}

static int parse_args(int argc, char **argv, const char **addr, int *port, int *threads,
		      int *value_size)
{
	static const struct option opts[] = {
	    {"port", required_argument, NULL, 'p'},    {"address", required_argument, NULL, 'a'},
	    {"threads", required_argument, NULL, 't'}, {"value-size", required_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},	       {NULL, 0, NULL, 0},
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			*port = atoi(optarg);
			break;
		case 'a':
			*addr = optarg;
			break;
		case 't':
			*threads = atoi(optarg);
			break;
		case 'v':
			*value_size = atoi(optarg);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc || *port <= 0 || *port > 65535 || *threads < 0 ||
	    *threads > THREADS_MAX || *value_size < 0 || *value_size > ZK_JUTE_MAXBUFFER_DEFAULT) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1";
	int port = 2181, threads = 0, value_size = 1024;
	if (parse_args(argc, argv, &addr, &port, &threads, &value_size))
		return 2;
	if (threads == 0) {
		cpu_set_t set;
		threads = sched_getaffinity(0, sizeof set, &set) ? 1 : CPU_COUNT(&set);
	}
	canned_build(value_size);
	static struct loop loops[THREADS_MAX];
	for (int i = 0; i < threads; i++) {
		int err = start_loop(&loops[i], i, addr, port);
		if (err) {
			log_error("loop %d: %s", i, strerror(-err));
			return 1;
		}
	}
	log_info("ringkeeper-ceiling serving %s:%d on %d threads, %d-byte getData replies", addr,
		 port, threads, value_size);
	pthread_join(loops[0].thread, NULL);
	return 0;
}
