/* ZooKeeper's four-letter words on the client port: a connection whose
 * first four bytes spell a command gets its text answer and is closed.
 * Commands outside 4lw.commands.whitelist are refused with ZooKeeper's
 * sentence, so scripts that parse either keep working. */
#ifndef RK_FOURLW_H
#define RK_FOURLW_H

#include <stdbool.h>
#include <stdint.h>

#include "core/jute.h"
#include "net/server.h"

struct fourlw_ctx {
	struct server *srv;
	int core_id;
};

/* raw: the first four bytes of a connection, big-endian. */
bool fourlw_is_command(uint32_t raw);
void fourlw_run(const struct fourlw_ctx *c, uint32_t raw, struct jute_out *out);

#endif
