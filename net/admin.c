/* The admin HTTP server: listeners, connections and HTTP/1.1 parsing on
 * the server's own io_uring, driven from core 0's loop (see admin.h).
 * What the answers say is net/admin_cmd.c's and net/metrics.c's.
 *
 * user_data packs the operation, the connection slot and the slot's
 * generation, so a completion that arrives after its connection was closed
 * and the slot reused is recognised and dropped. A connection is closed by
 * shutdown(2), which makes its receive or send in flight complete; the
 * slot is released once nothing of it is in flight. */
#include "net/admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "net/admin_cmd.h"
#include "net/core_loop.h"
#include "net/metrics.h"

#define RING_ENTRIES 256 /* every connection has one op in flight at most */
#define HEADERS_MAX  100

_Static_assert(ADMIN_CONNS_MAX * 2 + 8 <= RING_ENTRIES, "room for every connection's ops");

enum aop {
	AOP_ACCEPT = 0, /* multishot accept; slot is the listener */
	AOP_RECV,	/* a connection's receive of its request */
	AOP_SEND,	/* a connection's send of its response */
	AOP_TIMER,	/* the deadline and window tick */
	AOP_IGNORE,	/* completions nobody waits for (cancels) */
	AOP_COUNT,
};

enum listener {
	LISTEN_ADMIN = 0, /* admin.serverPort: every path */
	LISTEN_METRICS,	  /* metricsProvider.httpPort: /metrics only */
	LISTEN_COUNT,
};

struct aconn {
	struct admin *admin;
	bool used;
	bool closing;
	bool metrics_only;
	bool head;	  /* HEAD: the answer without its body */
	uint8_t inflight; /* ops in the ring, and a report being gathered */
	uint32_t gen;
	int fd;
	int64_t deadline_ms;
	char *req; /* ADMIN_REQUEST_MAX + 1 bytes, NUL-terminated */
	size_t req_len;
	struct jute_out resp;
	size_t sent;
	char cmd[64]; /* the command whose report is being gathered */
};

struct admin {
	struct server *srv;
	struct io_uring ring;
	bool ring_ok;
	int event_fd;
	int listen_fd[LISTEN_COUNT];
	bool accept_paused[LISTEN_COUNT];
	struct aconn conns[ADMIN_CONNS_MAX];
	struct __kernel_timespec tick;
	int64_t next_rotate_ms;
	uint64_t refused; /* connections turned away since the last tick */
	struct metrics_windows windows;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t ud_pack(enum aop op, uint32_t slot, uint32_t gen)
{
	return (uint64_t)op << 56 | (uint64_t)(slot & 0xffffff) << 32 | gen;
}

/* An SQE, submitting what is queued when the ring is full. */
static struct io_uring_sqe *get_sqe(struct admin *a)
{
	struct io_uring_sqe *sqe;
	while (!(sqe = io_uring_get_sqe(&a->ring)))
		io_uring_submit(&a->ring);
	return sqe;
}

/* ---- connections ---- */

static uint32_t slot_of(const struct admin *a, const struct aconn *k)
{
	return (uint32_t)(k - a->conns);
}

static void conn_release(struct admin *a, struct aconn *k)
{
	close(k->fd);
	free(k->req);
	jute_out_free(&k->resp);
	uint32_t gen = k->gen + 1;
	memset(k, 0, sizeof *k);
	k->gen = gen;
	k->fd = -1;
}

static void conn_close(struct admin *a, struct aconn *k)
{
	if (!k->used || k->closing)
		return;
	k->closing = true;
	shutdown(k->fd, SHUT_RDWR);
	if (k->inflight == 0)
		conn_release(a, k);
}

static void arm_recv(struct admin *a, struct aconn *k)
{
	struct io_uring_sqe *sqe = get_sqe(a);
	io_uring_prep_recv(sqe, k->fd, k->req + k->req_len, ADMIN_REQUEST_MAX - k->req_len, 0);
	io_uring_sqe_set_data64(sqe, ud_pack(AOP_RECV, slot_of(a, k), k->gen));
	k->inflight++;
}

static void arm_send(struct admin *a, struct aconn *k)
{
	struct io_uring_sqe *sqe = get_sqe(a);
	io_uring_prep_send(sqe, k->fd, k->resp.buf + k->sent, k->resp.len - k->sent, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud_pack(AOP_SEND, slot_of(a, k), k->gen));
	k->inflight++;
}

static void on_accept(struct admin *a, int fd, enum listener l)
{
	struct aconn *k = NULL;
	for (int i = 0; i < ADMIN_CONNS_MAX && !k; i++)
		if (!a->conns[i].used)
			k = &a->conns[i];
	char *req = k ? malloc(ADMIN_REQUEST_MAX + 1) : NULL;
	if (!req) {
		a->refused++; /* logged by the timer, once per tick */
		close(fd);
		return;
	}
	k->admin = a;
	k->used = true;
	k->fd = fd;
	k->metrics_only = l == LISTEN_METRICS;
	k->req = req;
	k->deadline_ms = mono_ms() + ADMIN_TIMEOUT_MS;
	jute_out_init(&k->resp, 4096, ADMIN_RESPONSE_MAX);
	arm_recv(a, k);
}

/* ---- HTTP ---- */

struct request {
	char method[16];
	char path[ADMIN_REQUEST_MAX]; /* percent-decoded, no query string */
	bool head;
	bool http11;
	int hosts; /* Host headers seen */
};

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	}
	return "Error";
}

/* Status line, headers and (unless HEAD) body: the whole response. */
static void respond(struct admin *a, struct aconn *k, int status, const char *type,
		    const struct jute_out *body, bool head)
{
	char h[256];
	int n = snprintf(h, sizeof h,
			 "HTTP/1.1 %d %s\r\nServer: Ringkeeper\r\nContent-Type: %s\r\n"
			 "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
			 status, reason(status), type, body->len,
			 status == 405 ? "Allow: GET, HEAD\r\n" : "");
	jute_out_reset(&k->resp);
	uint8_t *d = jute_reserve(&k->resp, (size_t)n + (head ? 0 : body->len));
	if (!d) {
		conn_close(a, k);
		return;
	}
	memcpy(d, h, (size_t)n);
	if (!head)
		memcpy(d + n, body->buf, body->len);
	k->sent = 0;
	arm_send(a, k);
}

static void respond_error(struct admin *a, struct aconn *k, int status, const char *why)
{
	struct jute_out body;
	jute_out_init(&body, 256, 4096);
	char text[256];
	int n = snprintf(text, sizeof text, "%d %s: %s\n", status, reason(status), why);
	uint8_t *d = jute_reserve(&body, (size_t)n);
	if (d)
		memcpy(d, text, (size_t)n);
	respond(a, k, status, "text/plain; charset=utf-8", &body, false);
	jute_out_free(&body);
}

static bool is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The target's path, percent-decoded, into out. Origin form ("/x?q") or
 * absolute form ("http://host/x"). 0, or -1 when malformed. */
static int parse_target(const char *t, size_t len, char *out)
{
	if (len > 7 && strncmp(t, "http://", 7) == 0) {
		const char *p = memchr(t + 7, '/', len - 7);
		if (!p)
			return -1;
		len -= (size_t)(p - t);
		t = p;
	}
	if (len == 0 || t[0] != '/')
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < len && t[i] != '?'; i++) {
		unsigned char c = (unsigned char)t[i];
		if (c <= 0x20 || c >= 0x7f)
			return -1;
		if (c == '%') {
			int hi = i + 2 < len ? hex(t[i + 1]) : -1;
			int lo = hi >= 0 ? hex(t[i + 2]) : -1;
			if (lo < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			if (c < 0x20 || c >= 0x7f) /* names are printable ASCII */
				return -1;
			i += 2;
		}
		out[o++] = (char)c;
	}
	out[o] = 0;
	return 0;
}

/* "METHOD SP target SP HTTP/x.y". Returns 0 or an HTTP status. */
static int parse_request_line(char *line, struct request *r)
{
	char *sp1 = strchr(line, ' ');
	char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp2 || strchr(sp2 + 1, ' ') || sp1 == line || sp1 - line >= (long)sizeof r->method)
		return 400;
	for (char *p = line; p < sp1; p++)
		if (!is_tchar(*p))
			return 400;
	memcpy(r->method, line, (size_t)(sp1 - line));
	r->method[sp1 - line] = 0;
	const char *v = sp2 + 1;
	if (strlen(v) != 8 || strncmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' ||
	    v[5] > '9' || v[7] < '0' || v[7] > '9')
		return 400;
	if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
		return 505;
	r->http11 = v[7] == '1';
	if (parse_target(sp1 + 1, (size_t)(sp2 - sp1 - 1), r->path))
		return 400;
	return 0;
}

/* "name: value"; only Host matters. Returns 0 or 400. */
static int parse_header(char *line, struct request *r)
{
	char *colon = strchr(line, ':');
	if (!colon || colon == line)
		return 400; /* also obs-fold: a line starting with a space */
	for (char *p = line; p < colon; p++)
		if (!is_tchar(*p))
			return 400;
	for (char *p = colon + 1; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\t')
			return 400;
	if (colon - line == 4 && strncasecmp(line, "host", 4) == 0)
		r->hosts++;
	return 0;
}

/* The head is k->req[0, end): lines ending in CRLF (or a bare LF, which
 * RFC 9112 lets a server accept). Returns 0 or an HTTP status. */
static int parse_head(char *req, struct request *r)
{
	int lines = 0;
	char *p = req;
	while (*p) {
		char *nl = strchr(p, '\n');
		RK_ASSERT(nl); /* the caller found the empty line */
		*nl = 0;
		if (nl > p && nl[-1] == '\r')
			nl[-1] = 0;
		if (*p == 0)
			break; /* the empty line: end of the head */
		int rc = lines++ == 0 ? parse_request_line(p, r) : parse_header(p, r);
		if (rc)
			return rc;
		if (lines > HEADERS_MAX + 1)
			return 431;
		p = nl + 1;
	}
	if (lines == 0)
		return 400;
	/* RFC 9112 3.2: an HTTP/1.1 request carries exactly one Host. */
	if ((r->http11 && r->hosts != 1) || r->hosts > 1)
		return 400;
	return 0;
}

/* Every core's part of the report is in (parts NULL: the server stops). */
static void on_report(void *ctx, const struct report_part *parts, int count)
{
	struct aconn *k = ctx;
	struct admin *a = k->admin;
	k->inflight--;
	if (k->closing || !parts) {
		if (k->closing && k->inflight == 0)
			conn_release(a, k);
		else
			conn_close(a, k);
		return;
	}
	struct jute_out body;
	jute_out_init(&body, 4096, ADMIN_RESPONSE_MAX);
	admin_cmd_run_report(a->srv, k->cmd, parts, count, &body);
	if (body.err)
		respond_error(a, k, 500, "response too large");
	else
		respond(a, k, 200, "application/json", &body, k->head);
	jute_out_free(&body);
	io_uring_submit(&a->ring); /* called from core 0's loop, not admin_poll */
}

/* A command answered from every core's report: ask core 0 to gather it;
 * on_report answers. The pending report counts as an op in flight, so the
 * slot outlives it. */
static bool serve_report(struct admin *a, struct aconn *k, const struct request *r, const char *cmd)
{
	int kind = strlen(cmd) < sizeof k->cmd ? admin_cmd_report_kind(a->srv, cmd) : -1;
	if (kind < 0)
		return false;
	snprintf(k->cmd, sizeof k->cmd, "%s", cmd);
	k->head = r->head;
	k->inflight++;
	if (core_report(a->srv->core[0], (enum report_kind)kind, on_report, k)) {
		k->inflight--;
		respond_error(a, k, 503, "too many reports being gathered; try again");
	}
	return true;
}

static void serve(struct admin *a, struct aconn *k, const struct request *r)
{
	struct jute_out body;
	jute_out_init(&body, 4096, ADMIN_RESPONSE_MAX);
	int status = 200;
	const char *type = "application/json";
	const char *cmd = strncmp(r->path, "/commands/", 10) == 0 ? r->path + 10 : NULL;
	if (strcmp(r->path, "/metrics") == 0) {
		struct server_status st;
		status_collect(a->srv, &st);
		status_collect_fds(&st);
		metrics_write(&st, &a->windows, &body);
		type = "text/plain; version=0.0.4; charset=utf-8";
	} else if (k->metrics_only) {
		status = 404;
	} else if (strcmp(r->path, "/commands") == 0 || (cmd && !*cmd)) {
		admin_cmd_list(&body);
		type = "text/html; charset=utf-8";
	} else if (cmd) {
		if (serve_report(a, k, r, cmd)) {
			jute_out_free(&body);
			return;
		}
		admin_cmd_run(a->srv, cmd, &body);
	} else {
		status = 404;
	}
	if (status == 404)
		respond_error(a, k, 404, "no such path (try /commands or /metrics)");
	else if (body.err)
		respond_error(a, k, 500, "response too large");
	else
		respond(a, k, status, type, &body, r->head);
	jute_out_free(&body);
}

/* A whole head arrived: answer it. */
static void on_request(struct admin *a, struct aconn *k)
{
	struct request r = {0};
	int rc = parse_head(k->req, &r);
	if (rc) {
		respond_error(a, k, rc,
			      rc == 505 ? "HTTP/1.0 and HTTP/1.1 only" : "malformed request");
		return;
	}
	r.head = strcmp(r.method, "HEAD") == 0;
	if (!r.head && strcmp(r.method, "GET") != 0) {
		respond_error(a, k, 405, "GET and HEAD only");
		return;
	}
	serve(a, k, &r);
}

static bool head_complete(const struct aconn *k)
{
	return strstr(k->req, "\n\r\n") || strstr(k->req, "\n\n");
}

static void on_recv(struct admin *a, struct aconn *k, int res)
{
	if (res <= 0) {
		conn_close(a, k); /* the client left, or an error */
		return;
	}
	k->req_len += (size_t)res;
	k->req[k->req_len] = 0;
	if (memchr(k->req + k->req_len - (size_t)res, 0, (size_t)res)) {
		respond_error(a, k, 400, "NUL byte in the request");
		return;
	}
	if (head_complete(k))
		on_request(a, k);
	else if (k->req_len == ADMIN_REQUEST_MAX)
		respond_error(a, k, 431, "request head over 8 KiB");
	else
		arm_recv(a, k);
}

/* All sent: close, after reading what the client may still send, so the
 * kernel does not answer it with a reset that destroys the response. */
static void on_send(struct admin *a, struct aconn *k, int res)
{
	if (res <= 0) {
		conn_close(a, k);
		return;
	}
	k->sent += (size_t)res;
	if (k->sent < k->resp.len) {
		arm_send(a, k);
		return;
	}
	shutdown(k->fd, SHUT_WR);
	char sink[4096];
	for (int i = 0; i < 16 && recv(k->fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
		;
	conn_close(a, k);
}

/* ---- listeners and the timer ---- */

static void arm_accept(struct admin *a, enum listener l)
{
	struct io_uring_sqe *sqe = get_sqe(a);
	io_uring_prep_multishot_accept(sqe, a->listen_fd[l], NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, ud_pack(AOP_ACCEPT, l, 0));
}

static void on_accept_cqe(struct admin *a, enum listener l, struct io_uring_cqe *cqe)
{
	bool more = cqe->flags & IORING_CQE_F_MORE;
	if (cqe->res >= 0) {
		on_accept(a, cqe->res, l);
	} else if (cqe->res != -ECANCELED && !a->accept_paused[l]) {
		/* Out of descriptors, say: wait for the next tick. */
		log_error("admin: accept: %s; new connections wait", strerror(-cqe->res));
		if (more) {
			struct io_uring_sqe *sqe = get_sqe(a);
			io_uring_prep_cancel64(sqe, ud_pack(AOP_ACCEPT, l, 0), 0);
			io_uring_sqe_set_data64(sqe, ud_pack(AOP_IGNORE, 0, 0));
		}
		a->accept_paused[l] = true;
		return;
	}
	if (!more && !a->accept_paused[l])
		arm_accept(a, l);
}

static void arm_timer(struct admin *a)
{
	a->tick.tv_sec = ADMIN_TICK_MS / 1000;
	a->tick.tv_nsec = (ADMIN_TICK_MS % 1000) * 1000000L;
	struct io_uring_sqe *sqe = get_sqe(a);
	io_uring_prep_timeout(sqe, &a->tick, 0, 0);
	io_uring_sqe_set_data64(sqe, ud_pack(AOP_TIMER, 0, 0));
}

static void on_timer(struct admin *a)
{
	int64_t now = mono_ms();
	if (a->refused) {
		log_warn("admin: %lu connections refused (at most %d at once)",
			 (unsigned long)a->refused, ADMIN_CONNS_MAX);
		a->refused = 0;
	}
	for (int i = 0; i < ADMIN_CONNS_MAX; i++) {
		struct aconn *k = &a->conns[i];
		if (k->used && !k->closing && now >= k->deadline_ms)
			conn_close(a, k);
	}
	for (int l = 0; l < LISTEN_COUNT; l++) {
		if (a->accept_paused[l]) {
			a->accept_paused[l] = false;
			arm_accept(a, (enum listener)l);
		}
	}
	if (now >= a->next_rotate_ms) {
		struct server_status st;
		status_collect(a->srv, &st);
		metrics_windows_rotate(&a->windows, &st);
		a->next_rotate_ms = now + ADMIN_WINDOW_MS;
	}
	arm_timer(a);
}

static void handle_cqe(struct admin *a, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	enum aop op = (enum aop)(ud >> 56);
	uint32_t slot = (uint32_t)(ud >> 32) & 0xffffff;
	struct aconn *k = slot < ADMIN_CONNS_MAX ? &a->conns[slot] : NULL;
	switch (op) {
	case AOP_ACCEPT:
		RK_ASSERT(slot < LISTEN_COUNT);
		on_accept_cqe(a, (enum listener)slot, cqe);
		return;
	case AOP_RECV:
	case AOP_SEND:
		RK_ASSERT(k && k->used && k->gen == (uint32_t)ud && k->inflight > 0);
		k->inflight--;
		if (k->closing) {
			if (k->inflight == 0)
				conn_release(a, k);
		} else if (op == AOP_RECV) {
			on_recv(a, k, cqe->res);
		} else {
			on_send(a, k, cqe->res);
		}
		return;
	case AOP_TIMER:
		on_timer(a);
		return;
	case AOP_IGNORE:
		return;
	case AOP_COUNT:
		break;
	}
	RK_ASSERT(!"bad user_data");
}

void admin_poll(struct admin *a)
{
	uint64_t n;
	ssize_t r = read(a->event_fd, &n, sizeof n); /* re-arm; EAGAIN when quiet */
	(void)r;
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;
	io_uring_for_each_cqe(&a->ring, head, cqe)
	{
		handle_cqe(a, cqe);
		seen++;
	}
	io_uring_cq_advance(&a->ring, seen);
	io_uring_submit(&a->ring);
}

int admin_wait_fd(const struct admin *a)
{
	return a->event_fd;
}

/* ---- set-up ---- */

/* A listener on addr:port, without SO_REUSEPORT: a second server on the
 * same port must fail, not share it. -errno with err set on failure. */
static int listen_tcp(const char *addr, int port, const char *key, char *err, size_t errlen)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		len = sizeof *a4;
	} else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		len = sizeof *a6;
	} else {
		snprintf(err, errlen, "%s: %s is not an IPv4 or IPv6 address", key, addr);
		return -EINVAL;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "%s: socket: %s", key, strerror(errno));
		return -errno;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, ADMIN_CONNS_MAX)) {
		int e = errno;
		snprintf(err, errlen, "%s: cannot listen on %s:%d: %s", key, addr, port,
			 strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

static int open_listeners(struct admin *a, char *err, size_t errlen)
{
	const struct config *cfg = a->srv->cfg;
	if (cfg->admin_enable_server) {
		a->listen_fd[LISTEN_ADMIN] = listen_tcp(
		    cfg->admin_server_address, cfg->admin_server_port,
		    "admin.serverPort (admin.enableServer=false turns it off)", err, errlen);
		if (a->listen_fd[LISTEN_ADMIN] < 0)
			return a->listen_fd[LISTEN_ADMIN];
		log_info("admin server on %s:%d (/commands, /metrics)", cfg->admin_server_address,
			 cfg->admin_server_port);
	}
	if (cfg->metrics_prometheus) {
		a->listen_fd[LISTEN_METRICS] =
		    listen_tcp(cfg->metrics_http_host, cfg->metrics_http_port,
			       "metricsProvider.httpPort", err, errlen);
		if (a->listen_fd[LISTEN_METRICS] < 0)
			return a->listen_fd[LISTEN_METRICS];
		log_info("Prometheus metrics on %s:%d/metrics", cfg->metrics_http_host,
			 cfg->metrics_http_port);
	}
	return 0;
}

struct admin *admin_create(struct server *srv, char *err, size_t errlen)
{
	struct admin *a = calloc(1, sizeof *a);
	if (!a) {
		snprintf(err, errlen, "admin server: out of memory");
		return NULL;
	}
	a->srv = srv;
	a->event_fd = -1;
	for (int l = 0; l < LISTEN_COUNT; l++)
		a->listen_fd[l] = -1;
	for (int i = 0; i < ADMIN_CONNS_MAX; i++)
		a->conns[i].fd = -1;
	metrics_windows_init(&a->windows);
	a->next_rotate_ms = mono_ms() + ADMIN_WINDOW_MS;
	if (open_listeners(a, err, errlen))
		goto err;
	int rc = io_uring_queue_init(RING_ENTRIES, &a->ring, 0);
	a->ring_ok = rc == 0;
	a->event_fd = rc ? -1 : eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (rc == 0 && a->event_fd < 0)
		rc = -errno;
	if (rc == 0)
		rc = io_uring_register_eventfd(&a->ring, a->event_fd);
	if (rc) {
		snprintf(err, errlen, "admin server: io_uring set-up: %s", strerror(-rc));
		goto err;
	}
	for (int l = 0; l < LISTEN_COUNT; l++)
		if (a->listen_fd[l] >= 0)
			arm_accept(a, (enum listener)l);
	arm_timer(a);
	io_uring_submit(&a->ring);
	return a;
err:
	admin_destroy(a);
	return NULL;
}

void admin_destroy(struct admin *a)
{
	if (!a)
		return;
	/* Ops in flight end before their buffers are freed. */
	for (int i = 0; i < ADMIN_CONNS_MAX; i++)
		if (a->conns[i].used)
			shutdown(a->conns[i].fd, SHUT_RDWR);
	if (a->ring_ok)
		io_uring_queue_exit(&a->ring);
	for (int i = 0; i < ADMIN_CONNS_MAX; i++)
		if (a->conns[i].used)
			conn_release(a, &a->conns[i]);
	for (int l = 0; l < LISTEN_COUNT; l++)
		if (a->listen_fd[l] >= 0)
			close(a->listen_fd[l]);
	if (a->event_fd >= 0)
		close(a->event_fd);
	free(a);
}
