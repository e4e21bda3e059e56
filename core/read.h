/* Read-only requests, answered by a session core from the tree version it
 * holds, as ZooKeeper's FinalRequestProcessor answers them: exists,
 * getData, getChildren(2), getACL, multiRead, setWatches(2), addWatch,
 * checkWatches, removeWatches, getEphemerals, getAllChildrenNumber,
 * whoAmI and ping. Watches go into the core's own watch table under the
 * caller's key. Nothing here blocks or takes a lock. */
#ifndef RK_READ_H
#define RK_READ_H

#include <stdint.h>

#include "core/acl.h"
#include "core/jute.h"
#include "core/tree.h"
#include "core/watch.h"

struct read_ctx {
	const struct tree_version *v;
	struct watch_table *watches;
	uint64_t watch_key;
	uint64_t session_id;
	const struct acl_auth *auth;
	const char *super_digest; /* NULL when none */
};

/* Appends the framed reply (and any notifications setWatches causes) to
 * out. Returns 0, or -EBADMSG for a malformed request (the caller drops the
 * connection, as ZooKeeper does). */
int read_request(const struct read_ctx *c, int32_t xid, int32_t op, const uint8_t *body, size_t len,
		 struct jute_out *out);

#endif
