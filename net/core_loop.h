/* One core's event loop: a single io_uring that accepts on this core's
 * SO_REUSEPORT listener, receives with multishot recv into a provided
 * buffer ring, answers reads from the tree version the core holds, hands
 * writes to the sequencer and batches replies into as few sends as
 * possible. Everything here is owned by the core's thread. */
#ifndef RK_CORE_LOOP_H
#define RK_CORE_LOOP_H

#include "net/report.h"
#include "net/server.h"

struct core *core_create(struct server *srv, int id, int listen_fd);
/* Runs until srv->stop; call from the core's own (pinned) thread. */
int core_run(struct core *c);
void core_destroy(struct core *c);
/* Sequencer callback: make core id look at its inbound ring. */
void core_wake(void *srv, int id);

/* A report every core contributes to (its connections, watches, or core
 * 0's sessions), for the four-letter words and the admin server. fn gets
 * one part per core, in core order, on the asking core's thread; parts is
 * NULL (count 0) when the server stops before the report is complete. */
typedef void (*core_report_fn)(void *ctx, const struct report_part *parts, int count);
/* Call on core c's thread. Returns 0 (fn will be called, maybe before
 * this returns when there is one core), -EBUSY while GATHERS_MAX reports
 * are being gathered for c, or -ENOMEM. How: docs/design.md. */
int core_report(struct core *c, enum report_kind kind, core_report_fn fn, void *ctx);

#endif
