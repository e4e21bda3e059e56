/* The admin server's commands: ZooKeeper 3.8's AdminServer commands, each
 * answered as the JSON object ZooKeeper answers with (the same keys, and
 * "command" and "error" last), from the figures of net/status. The HTTP
 * side is net/admin.c.
 *
 * Answers as ZooKeeper 3.8 gives them, with HTTP 200 every time:
 *  - a command ZooKeeper needs a running server for, while this one serves
 *    no clients (electing, syncing): {"command", "error": STATUS_NOT_SERVING};
 *  - an unknown name: {"command": <name as asked>, "error": "Unknown
 *    command: <name>"};
 *  - a ZooKeeper command Ringkeeper lacks (connections, stats, dump,
 *    watches, watches_by_path, observers, initial_configuration,
 *    system_properties, set_trace_mask): its error says so. */
#ifndef RK_ADMIN_CMD_H
#define RK_ADMIN_CMD_H

#include "core/jute.h"
#include "net/server.h"

/* The HTML list of links GET /commands answers, implemented commands only,
 * sorted by name. */
void admin_cmd_list(struct jute_out *body);
/* The JSON answer to GET /commands/<name> (name percent-decoded, the
 * query string cut off). Runs on core 0's thread. */
void admin_cmd_run(struct server *srv, const char *name, struct jute_out *body);

#endif
