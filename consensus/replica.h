/* The replica: binds the replication engine (consensus/zab) to this
 * server's sequencer, txn log, snapshot files and epoch files, and to the
 * peer transport the caller supplies (send/disconnect, frames and
 * connection changes in). Runs on the sequencer's thread (core 0) only.
 *
 * Start-up, in order: replica_create; a sequencer whose config carries
 * replica_forward_hook, replica_deliver_hook and replica_snapshot_hook with
 * the replica as repl_ctx; replica_bind; sequencer_load_snapshot; open the
 * txn log with replica_replay (ctx: the replica) as its replay function;
 * sequencer_attach_storage(seq, replica_storage(r, wal)); replica_start.
 *
 * The sequencer writes through replica_storage(): on the leader a batch
 * becomes a proposal and counts as durable once a quorum has it; on other
 * servers nothing is written through it (followers log what the leader
 * proposes). */
#ifndef RK_REPLICA_H
#define RK_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include "consensus/sequencer.h"
#include "consensus/zab.h"
#include "core/summary.h"
#include "storage/storage.h"

struct replica_config {
	struct zab_config zab;
	const char *data_dir; /* acceptedEpoch, currentEpoch */
	const char *snap_dir;
	/* The transport and the process, supplied by the caller. */
	void (*send)(void *ctx, uint32_t sid, const void *buf, size_t len);
	void (*disconnect)(void *ctx, uint32_t sid);
	void (*restart)(void *ctx, const char *why); /* must not return */
	void *host_ctx;
};

struct replica;

/* What the replica measures, for status and metrics; written on core 0,
 * read from any thread. */
struct replica_stats {
	struct summary election_us;	/* LOOKING until a leader is chosen */
	_Atomic uint64_t looking_count; /* elections entered (ZooKeeper's looking_count) */
};

struct replica *replica_create(const struct replica_config *cfg);
const struct replica_stats *replica_stats(const struct replica *r);
void replica_bind(struct replica *r, struct sequencer *seq);
void replica_destroy(struct replica *r);

/* storage_replay_fn: recovery feeds both the sequencer and the history. */
int replica_replay(void *ctx, int64_t zxid, uint32_t type, const void *payload, uint32_t len);
/* Wraps the opened log; the result is what the sequencer attaches. */
struct storage *replica_storage(struct replica *r, struct storage *wal);
int replica_start(struct replica *r, int64_t now_ms, char *err, size_t errlen);

/* Transport events. */
void replica_peer_up(struct replica *r, uint32_t sid, int64_t now_ms);
void replica_peer_down(struct replica *r, uint32_t sid, int64_t now_ms);
void replica_frame(struct replica *r, uint32_t sid, const uint8_t *buf, size_t len, int64_t now_ms);
/* Timers: call every few tens of ms. */
void replica_tick(struct replica *r, int64_t now_ms);

/* Sequencer hooks (ctx: the replica). */
int replica_forward_hook(void *ctx, const void *buf, size_t len);
void replica_deliver_hook(void *ctx, uint32_t sid, const void *buf, size_t len);
void replica_snapshot_hook(void *ctx, int64_t zxid);

#endif
