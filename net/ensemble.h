/* The ensemble side of a server: the peer transport (net/peer) wired to
 * the replica (consensus/replica), and the process restart the replica
 * asks for. Everything runs on core 0's thread, from server start-up and
 * then from core 0's loop through server.peer_poll. */
#ifndef RK_ENSEMBLE_H
#define RK_ENSEMBLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "consensus/replica.h"
#include "net/config.h"

struct ensemble;

/* Binds the quorum port. NULL with a message in err. Once *stopping is
 * set, a restart the replica asks for is not done (the server is exiting). */
struct ensemble *ensemble_create(const struct config *cfg, const char *snap_dir,
				 _Atomic bool *stopping, char *err, size_t errlen);
void ensemble_destroy(struct ensemble *e);
struct replica *ensemble_replica(struct ensemble *e);
int ensemble_wait_fd(const struct ensemble *e);
/* Poll the transport; on timer also run the replication timers. */
void ensemble_poll(struct ensemble *e, int64_t now_ms, bool timer);

#endif
