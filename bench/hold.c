/* ringkeeper-hold: opens many ZooKeeper sessions and, optionally, sets many
 * watches, then keeps them, so a script can read the server's memory with
 * them in place (bench/suite.sh's memory figures). Two modes:
 *
 *   hold (default): N sessions stay connected; each sets K data watches
 *     with exists(watch=true) on K distinct keys <prefix>/k<j>, pipelined.
 *     Once all are set it prints "ready ..." on stdout and pings until
 *     SIGTERM or SIGINT, then closes every session and exits.
 *   --detach: each session is opened (ConnectRequest answered) and its
 *     connection closed without closeSession, so it lives on in the server
 *     until its timeout; only --concurrency connections are open at once,
 *     so N may exceed the file descriptors this process may hold. Prints
 *     "done ..." and exits.
 *
 * One thread, one epoll loop. Every wait is bounded by --timeout of no
 * progress; any failure ends the run with status 1, naming it. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/jute.h"
#include "core/log.h"
#include "core/proto.h"

#define RBUF_BYTES     (64u << 10)
#define PATH_BYTES_MAX 256
#define EVENTS_MAX     256
#define XID_PING       (-2)
#define XID_WATCH      (-1)

enum sess_state {
	SESS_IDLE = 0,	 /* not opened yet */
	SESS_CONNECTING, /* TCP connect in progress */
	SESS_HANDSHAKE,	 /* ConnectRequest sent */
	SESS_WATCHING,	 /* setting its watches */
	SESS_HOLDING,	 /* all set; pings until the end */
	SESS_CLOSING,	 /* closeSession sent */
	SESS_DONE,	 /* closed (or detached) */
	SESS_STATE_COUNT,
};

struct sess {
	int fd;
	enum sess_state state;
	uint32_t next;	/* watches requested so far */
	uint32_t acked; /* watch replies received */
	uint64_t last_send_ns;
	uint8_t *rbuf;
	size_t rlen;
	struct jute_out wbuf;
	size_t wsent;
};

struct hold {
	struct sockaddr_in addr;
	const char *prefix;
	int sessions;
	int concurrency;
	int watches;  /* per session */
	int inflight; /* exists requests in flight per session */
	int keys;
	int timeout_ms; /* asked for in the ConnectRequest */
	double progress_s;
	bool detach;
	int epfd;
	struct sess *s;
	int opened;  /* sessions opened so far (index of the next) */
	int active;  /* connecting, handshaking or watching */
	int settled; /* holding, or detached */
	int negotiated_ms;
	uint64_t last_progress_ns;
};

static volatile sig_atomic_t stop_requested;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static _Noreturn void die(const struct hold *h, int i, const char *what, int err)
{
	fprintf(stderr, "ringkeeper-hold: session %d: %s%s%s (%d of %d opened, %d settled)\n", i,
		what, err ? ": " : "", err ? strerror(err) : "", h->opened, h->sessions,
		h->settled);
	exit(1);
}

static void set_out(struct hold *h, int i, bool out)
{
	struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.u32 = (uint32_t)i};
	if (epoll_ctl(h->epfd, EPOLL_CTL_MOD, h->s[i].fd, &ev) < 0)
		die(h, i, "epoll_ctl", errno);
}

static void flush(struct hold *h, int i)
{
	struct sess *s = &h->s[i];
	while (s->wsent < s->wbuf.len) {
		ssize_t n =
		    send(s->fd, s->wbuf.buf + s->wsent, s->wbuf.len - s->wsent, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			set_out(h, i, true);
			return;
		}
		if (n < 0)
			die(h, i, "send", errno);
		s->wsent += (size_t)n;
	}
	jute_out_reset(&s->wbuf);
	s->wsent = 0;
	s->last_send_ns = now_ns();
}

static void put_connect(struct hold *h, struct sess *s)
{
	static const uint8_t password[ZK_PASSWORD_BYTES];
	size_t start = s->wbuf.len;
	jute_put_int(&s->wbuf, 0);
	jute_put_int(&s->wbuf, 0);  /* protocolVersion */
	jute_put_long(&s->wbuf, 0); /* lastZxidSeen */
	jute_put_int(&s->wbuf, h->timeout_ms);
	jute_put_long(&s->wbuf, 0); /* a new session */
	jute_put_buffer(&s->wbuf, password, ZK_PASSWORD_BYTES);
	jute_put_bool(&s->wbuf, false);
	proto_frame_end(&s->wbuf, start);
}

static void put_bare(struct sess *s, int32_t xid, int32_t op)
{
	size_t start = s->wbuf.len;
	jute_put_int(&s->wbuf, 0);
	jute_put_int(&s->wbuf, xid);
	jute_put_int(&s->wbuf, op);
	proto_frame_end(&s->wbuf, start);
}

/* Session i's m-th watch is on key (i * watches + m) % keys: distinct
 * keys within a session while watches <= keys. */
static void put_exists_watch(const struct hold *h, int i, struct sess *s)
{
	char path[PATH_BYTES_MAX];
	uint64_t key = ((uint64_t)i * (uint64_t)h->watches + s->next) % (uint64_t)h->keys;
	int len = snprintf(path, sizeof path, "%s/k%llu", h->prefix, (unsigned long long)key);
	size_t start = s->wbuf.len;
	jute_put_int(&s->wbuf, 0);
	jute_put_int(&s->wbuf, (int32_t)s->next + 1); /* xid */
	jute_put_int(&s->wbuf, ZOP_EXISTS);
	jute_put_string(&s->wbuf, path, len);
	jute_put_bool(&s->wbuf, true);
	proto_frame_end(&s->wbuf, start);
	s->next++;
}

static void open_next(struct hold *h)
{
	int i = h->opened++;
	struct sess *s = &h->s[i];
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		die(h, i, "socket", errno);
	int one = 1;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(s->fd, (struct sockaddr *)&h->addr, sizeof h->addr) < 0 && errno != EINPROGRESS)
		die(h, i, "connect", errno);
	s->rbuf = malloc(RBUF_BYTES);
	jute_out_init(&s->wbuf, 4096, (size_t)h->inflight * (PATH_BYTES_MAX + 32) + 256);
	if (!s->rbuf)
		die(h, i, "out of memory", 0);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i};
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0)
		die(h, i, "epoll_ctl", errno);
	s->state = SESS_CONNECTING;
	h->active++;
}

static void release(struct sess *s)
{
	close(s->fd); /* also leaves the epoll set */
	s->fd = -1;
	free(s->rbuf);
	s->rbuf = NULL;
	jute_out_free(&s->wbuf);
}

static void settle(struct hold *h, int i)
{
	struct sess *s = &h->s[i];
	h->active--;
	h->settled++;
	h->last_progress_ns = now_ns();
	if (h->detach) {
		release(s); /* no closeSession: the session outlives its connection */
		s->state = SESS_DONE;
	} else {
		s->state = SESS_HOLDING;
	}
}

static void fill_watches(struct hold *h, int i)
{
	struct sess *s = &h->s[i];
	bool queued = false;
	while (s->next < (uint32_t)h->watches && s->next - s->acked < (uint32_t)h->inflight) {
		put_exists_watch(h, i, s);
		queued = true;
	}
	if (queued)
		flush(h, i);
	if (s->acked == (uint32_t)h->watches)
		settle(h, i);
}

static void on_connect_reply(struct hold *h, int i, struct jute_in *in)
{
	struct sess *s = &h->s[i];
	jute_get_int(in); /* protocolVersion */
	int32_t timeout_ms = jute_get_int(in);
	if (in->err || timeout_ms <= 0)
		die(h, i, "the server refused the session", 0);
	h->negotiated_ms = timeout_ms;
	h->last_progress_ns = now_ns();
	s->state = SESS_WATCHING;
	if (h->detach)
		settle(h, i);
	else
		fill_watches(h, i);
}

static void on_frame(struct hold *h, int i, const uint8_t *p, uint32_t len)
{
	struct sess *s = &h->s[i];
	struct jute_in in = jute_in_make(p, len);
	if (s->state == SESS_HANDSHAKE) {
		on_connect_reply(h, i, &in);
		return;
	}
	int32_t xid = jute_get_int(&in);
	jute_get_long(&in); /* zxid */
	int32_t err = jute_get_int(&in);
	if (in.err)
		die(h, i, "malformed reply", 0);
	if (xid == XID_PING || xid == XID_WATCH)
		return;
	if (s->state == SESS_CLOSING) {
		release(s);
		s->state = SESS_DONE;
		return;
	}
	if (s->state != SESS_WATCHING || (err != ZOK && err != ZNONODE))
		die(h, i, proto_err_name(err), 0);
	s->acked++;
	h->last_progress_ns = now_ns();
	fill_watches(h, i);
}

static void read_frames(struct hold *h, int i)
{
	struct sess *s = &h->s[i];
	ssize_t n = recv(s->fd, s->rbuf + s->rlen, RBUF_BYTES - s->rlen, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		die(h, i, n == 0 ? "the server closed the connection" : "recv", n ? errno : 0);
	s->rlen += (size_t)n;
	size_t off = 0;
	while (s->rlen - off >= ZK_FRAME_HEADER_BYTES) {
		uint32_t len = jute_be32_get(s->rbuf + off);
		if (len > RBUF_BYTES - ZK_FRAME_HEADER_BYTES)
			die(h, i, "reply frame too large", 0);
		if (s->rlen - off - ZK_FRAME_HEADER_BYTES < len)
			break;
		on_frame(h, i, s->rbuf + off + ZK_FRAME_HEADER_BYTES, len);
		off += ZK_FRAME_HEADER_BYTES + len;
		if (s->state == SESS_DONE)
			return; /* detached or closed: rbuf is gone */
	}
	memmove(s->rbuf, s->rbuf + off, s->rlen - off);
	s->rlen -= off;
}

static void on_event(struct hold *h, int i, uint32_t events)
{
	struct sess *s = &h->s[i];
	if (s->state == SESS_CONNECTING) {
		int soerr = 0;
		socklen_t len = sizeof soerr;
		getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
		if (soerr)
			die(h, i, "connect", soerr);
		put_connect(h, s);
		s->state = SESS_HANDSHAKE;
		set_out(h, i, false);
		flush(h, i);
		return;
	}
	if (events & EPOLLOUT) {
		set_out(h, i, false);
		flush(h, i);
	}
	if (s->state != SESS_DONE && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		read_frames(h, i);
}

static void ping_idle(struct hold *h)
{
	uint64_t now = now_ns(), idle_ns = (uint64_t)h->negotiated_ms * 1000000u / 3;
	for (int i = 0; i < h->opened; i++) {
		struct sess *s = &h->s[i];
		if (s->state == SESS_HOLDING && now - s->last_send_ns > idle_ns) {
			put_bare(s, XID_PING, ZOP_PING);
			flush(h, i);
		}
	}
}

static void poll_once(struct hold *h, int wait_ms)
{
	struct epoll_event ev[EVENTS_MAX];
	int n = epoll_wait(h->epfd, ev, EVENTS_MAX, wait_ms);
	if (n < 0 && errno != EINTR)
		die(h, -1, "epoll_wait", errno);
	for (int k = 0; k < n; k++)
		if (h->s[ev[k].data.u32].state != SESS_DONE)
			on_event(h, (int)ev[k].data.u32, ev[k].events);
	if (now_ns() - h->last_progress_ns > (uint64_t)(h->progress_s * 1e9))
		die(h, -1, "no progress", ETIMEDOUT);
}

/* Opens every session, at most concurrency at a time, until all settle. */
static void open_all(struct hold *h)
{
	h->last_progress_ns = now_ns();
	while (h->settled < h->sessions && !stop_requested) {
		while (h->opened < h->sessions && h->active < h->concurrency)
			open_next(h);
		poll_once(h, 100);
		if (!h->detach)
			ping_idle(h);
	}
}

/* Holds until a signal, then closes every session, bounded by progress_s. */
static void hold_then_close(struct hold *h)
{
	while (!stop_requested) {
		poll_once(h, 1000);
		h->last_progress_ns = now_ns();
		ping_idle(h);
	}
	int open = 0;
	for (int i = 0; i < h->opened; i++) {
		if (h->s[i].state == SESS_HOLDING) {
			put_bare(&h->s[i], 1 << 30, ZOP_CLOSE_SESSION);
			h->s[i].state = SESS_CLOSING;
			flush(h, i);
			open++;
		}
	}
	uint64_t deadline = now_ns() + (uint64_t)(h->progress_s * 1e9);
	h->last_progress_ns = now_ns();
	while (open > 0 && now_ns() < deadline) {
		poll_once(h, 100);
		open = 0;
		for (int i = 0; i < h->opened; i++)
			open += h->s[i].state == SESS_CLOSING;
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ringkeeper-hold HOST:PORT --sessions N [--watches K --keys N] [options]\n"
		"  --sessions N          sessions to open (1000)\n"
		"  --watches K           data watches per session, exists(watch) on distinct\n"
		"                        keys <prefix>/k<j> (0)\n"
		"  --keys N              keys the watches spread over (1000)\n"
		"  --prefix PATH         parent of the keys (/rkbench)\n"
		"  --inflight N          exists requests in flight per session (8)\n"
		"  --concurrency C       sessions being opened at once (256)\n"
		"  --session-timeout MS  asked for in the ConnectRequest (30000)\n"
		"  --detach              close each connection once its session is open, without\n"
		"                        closeSession: it lives on until it times out\n"
		"  --timeout S           fail after S seconds without progress (60)\n"
		"stdout: 'ready sessions=N watches=M seconds=S timeout_ms=T' once all are set\n"
		"(then holds until SIGTERM/SIGINT), or 'done ...' with --detach.\n"
		"exit: 0 ok, 1 a session failed, 2 usage\n");
}

static int parse_addr(struct hold *h, const char *arg)
{
	char host[64];
	const char *colon = strrchr(arg, ':');
	if (!colon || (size_t)(colon - arg) >= sizeof host)
		return -EINVAL;
	memcpy(host, arg, (size_t)(colon - arg));
	host[colon - arg] = 0;
	h->addr.sin_family = AF_INET;
	h->addr.sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, host, &h->addr.sin_addr) == 1 ? 0 : -EINVAL;
}

static int parse_args(struct hold *h, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"sessions", required_argument, NULL, 's'},
	    {"watches", required_argument, NULL, 'w'},
	    {"keys", required_argument, NULL, 'k'},
	    {"prefix", required_argument, NULL, 'p'},
	    {"inflight", required_argument, NULL, 'i'},
	    {"concurrency", required_argument, NULL, 'c'},
	    {"session-timeout", required_argument, NULL, 'o'},
	    {"detach", no_argument, NULL, 'd'},
	    {"timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			h->sessions = atoi(optarg);
			break;
		case 'w':
			h->watches = atoi(optarg);
			break;
		case 'k':
			h->keys = atoi(optarg);
			break;
		case 'p':
			h->prefix = optarg;
			break;
		case 'i':
			h->inflight = atoi(optarg);
			break;
		case 'c':
			h->concurrency = atoi(optarg);
			break;
		case 'o':
			h->timeout_ms = atoi(optarg);
			break;
		case 'd':
			h->detach = true;
			break;
		case 't':
			h->progress_s = atof(optarg);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -EINVAL;
		}
	}
	if (optind != argc - 1 || parse_addr(h, argv[optind]) || h->sessions < 1 ||
	    h->watches < 0 || h->keys < 1 || h->inflight < 1 || h->inflight > 4096 ||
	    h->concurrency < 1 || h->timeout_ms < 1 || h->progress_s <= 0 ||
	    strlen(h->prefix) > PATH_BYTES_MAX - 16 || (h->detach && h->watches))
		return -EINVAL;
	return 0;
}

/* Hold mode keeps a descriptor per session: raise the soft limit to the
 * hard one and refuse a count that cannot fit. */
static int check_fds(const struct hold *h)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	rlim_t need = (rlim_t)(h->detach ? h->concurrency : h->sessions) + 16;
	if (need > rl.rlim_cur) {
		fprintf(stderr,
			"ringkeeper-hold: %llu connections at once need more descriptors than "
			"RLIMIT_NOFILE allows (%llu); use --detach or fewer sessions\n",
			(unsigned long long)need, (unsigned long long)rl.rlim_cur);
		return -EMFILE;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct hold h = {.sessions = 1000,
			 .keys = 1000,
			 .prefix = "/rkbench",
			 .concurrency = 256,
			 .inflight = 8,
			 .timeout_ms = 30000,
			 .progress_s = 60};
	if (parse_args(&h, argc, argv)) {
		usage(stderr);
		return 2;
	}
	if (check_fds(&h))
		return 2;
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	h.s = calloc((size_t)h.sessions, sizeof *h.s);
	h.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!h.s || h.epfd < 0)
		return 1;
	uint64_t t0 = now_ns();
	open_all(&h);
	double took_s = (double)(now_ns() - t0) / 1e9;
	if (stop_requested)
		return 1;
	printf("%s sessions=%d watches=%llu seconds=%.2f timeout_ms=%d\n",
	       h.detach ? "done" : "ready", h.sessions,
	       (unsigned long long)h.sessions * (unsigned long long)h.watches, took_s,
	       h.negotiated_ms);
	fflush(stdout);
	if (!h.detach)
		hold_then_close(&h);
	return 0;
}
