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
 *  - a ZooKeeper command Ringkeeper lacks (dump, watches, watches_by_path,
 *    observers, initial_configuration, system_properties,
 *    set_trace_mask): its error says so.
 *
 * connections, stats and connection_stat_reset need every core's part of
 * a report (net/report, gathered by core_report): the HTTP side asks for
 * the report admin_cmd_report_kind names and answers with
 * admin_cmd_run_report once it is in. */
#ifndef RK_ADMIN_CMD_H
#define RK_ADMIN_CMD_H

#include "core/jute.h"
#include "net/report.h"
#include "net/server.h"

/* The HTML list of links GET /commands answers, implemented commands only,
 * sorted by name. */
void admin_cmd_list(struct jute_out *body);
/* The JSON answer to GET /commands/<name> (name percent-decoded, the
 * query string cut off). Runs on core 0's thread. */
void admin_cmd_run(struct server *srv, const char *name, struct jute_out *body);
/* The report the command needs, or -1: not such a command, or the server
 * serves no clients now (admin_cmd_run answers both). */
int admin_cmd_report_kind(struct server *srv, const char *name);
/* Its answer from the report's parts, one per core. */
void admin_cmd_run_report(struct server *srv, const char *name, const struct report_part *parts,
			  int count, struct jute_out *body);

#endif
