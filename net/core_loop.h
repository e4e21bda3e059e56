/* One core's event loop: a single io_uring that accepts on this core's
 * SO_REUSEPORT listener, receives with multishot recv into a provided
 * buffer ring, answers reads from the tree version the core holds, hands
 * writes to the sequencer and batches replies into as few sends as
 * possible. Everything here is owned by the core's thread. */
#ifndef RK_CORE_LOOP_H
#define RK_CORE_LOOP_H

#include "net/server.h"

struct core *core_create(struct server *srv, int id, int listen_fd);
/* Runs until srv->stop; call from the core's own (pinned) thread. */
int core_run(struct core *c);
void core_destroy(struct core *c);
/* Sequencer callback: make core id look at its inbound ring. */
void core_wake(void *srv, int id);

#endif
