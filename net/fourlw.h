/* ZooKeeper's four-letter words on the client port: a connection whose
 * first four bytes spell a command gets its text answer and is closed.
 * Commands outside 4lw.commands.whitelist are refused with ZooKeeper's
 * sentence, so scripts that parse either keep working. */
#ifndef RK_FOURLW_H
#define RK_FOURLW_H

#include <stdbool.h>
#include <stdint.h>

#include "core/jute.h"
#include "net/report.h"
#include "net/server.h"

struct fourlw_ctx {
	struct server *srv;
	int core_id;
};

/* raw: the first four bytes of a connection, big-endian. */
bool fourlw_is_command(uint32_t raw);
void fourlw_run(const struct fourlw_ctx *c, uint32_t raw, struct jute_out *out);

/* The report a word needs from every core (cons, stat, dump, wchc, wchp,
 * crst), or REPORT_KIND_COUNT when fourlw_run answers it alone (other
 * words, and these when refused by the whitelist or while not serving).
 * The caller gathers the report (core_report) and then answers with
 * fourlw_run_report, or with fourlw_busy if it could not be gathered. */
enum report_kind fourlw_report_kind(const struct fourlw_ctx *c, uint32_t raw);
void fourlw_run_report(const struct fourlw_ctx *c, uint32_t raw, const struct report_part *parts,
		       int count, struct jute_out *out);
void fourlw_busy(const struct fourlw_ctx *c, uint32_t raw, struct jute_out *out);

#endif
