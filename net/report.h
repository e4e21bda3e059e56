/* Reports of what the cores own: their connections, their watches, and
 * (core 0, which runs the sequencer) the global sessions and their
 * ephemerals, gathered from every core for the four-letter words cons,
 * stat, dump, wchc and wchp, or for the admin server. net/core_loop fills
 * one report_part per core, on that core's thread; this module holds the
 * records and prints them in ZooKeeper 3.8's formats.
 *
 * Bounds: a part holds at most part_bytes_max bytes of records (the
 * caller divides REPORT_BYTES_MAX among the cores) and counts what did not
 * fit; a printed answer stops at REPORT_TEXT_MAX bytes and ends with a
 * line saying how much was left out, so a server with 100,000 connections
 * answers cons in a few MiB instead of building an unbounded reply.
 *
 * Ownership: a part's buffers are written by one core, then read by the
 * core that asked for the report, once the hand-over (core_loop's gather)
 * says the part is complete; nothing here synchronises. */
#ifndef RK_REPORT_H
#define RK_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/acl.h"
#include "core/jute.h"

#define REPORT_BYTES_MAX (8u << 20) /* records, all parts together */
#define REPORT_TEXT_MAX	 (4u << 20) /* a printed answer, before its last line */
/* How long a connection without a session may stay idle in ZooKeeper
 * (zookeeper.nio.sessionlessCnxnTimeout), and the tick of its connection
 * expiry queue: dump's connection sets. */
#define REPORT_CNXN_TIMEOUT_MS 10000

enum report_kind {
	REPORT_CONNS = 0, /* connections: cons, stat */
	REPORT_WATCHES,	  /* data watches by session: wchc, wchp */
	REPORT_DUMP,	  /* sessions, ephemerals, connections: dump */
	REPORT_RESET,	  /* nothing: each core zeroes its connection stats (crst) */
	REPORT_KIND_COUNT,
};

/* One connection as ZooKeeper's ServerCnxn.dumpConnectionInfo sees it.
 * Latencies are in milliseconds, from a request's arrival to its answer. */
struct report_conn {
	char ip[ACL_IP_ID_MAX]; /* as Java prints an address */
	uint16_t port;
	uint8_t interest;    /* NIO interest ops: 1 reading, 4 writing, 0 neither */
	char last_op[7];     /* ZooKeeper's name of the last answered op, "NA" */
	uint64_t session_id; /* 0: no session yet, or a four-letter word */
	int32_t timeout_ms;
	uint64_t queued; /* requests received and not yet answered */
	uint64_t received, sent;
	int64_t established_ms;	  /* wall clock, when accepted */
	int64_t last_cxid;	  /* -1: none */
	int64_t last_zxid;	  /* -1: none */
	int64_t last_response_ms; /* monotonic clock; 0: none */
	int64_t expires_ms;	  /* monotonic: when it would expire idle */
	uint64_t last_latency_ms, min_latency_ms, max_latency_ms, avg_latency_ms;
};

/* One session of the sequencer's table. */
struct report_session {
	uint64_t id;
	int64_t expires_ms; /* monotonic deadline */
	int32_t timeout_ms;
	uint32_t pad;
};

struct report_part {
	struct jute_out conns;	  /* struct report_conn records */
	struct jute_out paths;	  /* watches, or ephemerals: see report_add_path */
	struct jute_out sessions; /* struct report_session records (core 0) */
	uint64_t conns_left_out, paths_left_out, sessions_left_out;
	bool answered; /* false: the core could not be asked (its ring was full) */
};

/* ZooKeeper's name of an op in cons's "lop" (FinalRequestProcessor's
 * lastOp: "GETD", "CREA", "SESS" for ZOP_CREATE_SESSION ...), or NULL for
 * requests it does not record there (auth, sasl, unknown ops). */
const char *report_op_name(int32_t op);

void report_part_init(struct report_part *p, size_t part_bytes_max);
void report_part_free(struct report_part *p);
/* Each returns 0, or -ENOSPC when the part is full (the record is counted
 * as left out). A path record is a session id and a path: a watch of that
 * session, or an ephemeral node it owns. */
int report_add_conn(struct report_part *p, const struct report_conn *r);
int report_add_path(struct report_part *p, uint64_t session_id, const char *path, size_t len);
int report_add_session(struct report_part *p, const struct report_session *s);

/* What the printing needs besides the parts. */
struct report_ctx {
	const struct report_part *parts;
	int count;
	int64_t now_mono_ms, now_wall_ms; /* to print monotonic times as dates */
	int32_t tick_ms;		  /* session expiry buckets, as ZooKeeper's */
	bool session_sets; /* standalone or leader: expiry buckets; else a plain list */
};

/* cons: every connection in full, then an empty line. */
void report_print_cons(const struct report_ctx *c, struct jute_out *out);
/* stat's "Clients:" lines: the brief form, then an empty line. */
void report_print_clients(const struct report_ctx *c, struct jute_out *out);
/* wchc (by_path false) and wchp (by_path true), then an empty line. */
void report_print_watches(const struct report_ctx *c, bool by_path, struct jute_out *out);
/* dump: sessions, ephemerals, connections. */
void report_print_dump(const struct report_ctx *c, struct jute_out *out);

#endif
