/* The admin HTTP server: ZooKeeper's AdminServer commands as JSON and
 * Prometheus metrics, over HTTP/1.1.
 *
 *   GET /commands            the commands, as ZooKeeper's HTML list of links
 *   GET /commands/<name>     one command's JSON (names and aliases as
 *                            ZooKeeper 3.8's: monitor or mntr, ...)
 *   GET /metrics             Prometheus text exposition format 0.0.4, with
 *                            ZooKeeper's PrometheusMetricsProvider's names
 *
 * on admin.serverAddress:admin.serverPort when admin.enableServer, and
 * /metrics alone on metricsProvider.httpHost:httpPort when
 * metricsProvider.className names ZooKeeper's Prometheus provider. HEAD
 * works as GET without the body; other methods get 405. Every response
 * closes its connection (Connection: close).
 *
 * Threads: everything runs on core 0's thread. The server owns one
 * io_uring whose completions signal an eventfd (admin_wait_fd); core 0's
 * loop polls that fd and calls admin_poll(), which reaps completions and
 * queues the next operations without blocking. A timer on the same ring
 * enforces the deadlines below and rotates the windows of the summaries'
 * quantiles.
 *
 * Bounds: ADMIN_CONNS_MAX connections (one more is closed at accept);
 * ADMIN_REQUEST_MAX bytes of request head (past it: 431 and close); a
 * malformed request gets 400 and close; ADMIN_TIMEOUT_MS from accept to the
 * last byte of the response (past it: closed); ADMIN_RESPONSE_MAX bytes of
 * response (past it: 500). None of them costs a client connection more
 * than its own. */
#ifndef RK_ADMIN_H
#define RK_ADMIN_H

#include <stddef.h>

#include "net/server.h"

#define ADMIN_CONNS_MAX	   64
#define ADMIN_REQUEST_MAX  8192
#define ADMIN_RESPONSE_MAX (4u << 20)
#define ADMIN_TIMEOUT_MS   10000
#define ADMIN_TICK_MS	   500
/* Quantiles on /metrics cover the observations of the last one to two
 * windows, as ZooKeeper rotates its summaries every 60 s. */
#define ADMIN_WINDOW_MS 60000

struct admin;

/* Binds the listeners the configuration asks for. NULL with a message in
 * err naming the key when one cannot be bound (ZooKeeper does not start
 * then either). srv must outlive the admin server. */
struct admin *admin_create(struct server *srv, char *err, size_t errlen);
int admin_wait_fd(const struct admin *a);
void admin_poll(struct admin *a);
void admin_destroy(struct admin *a);

#endif
