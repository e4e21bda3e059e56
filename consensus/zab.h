/* The replication engine: leader election, discovery, synchronisation and
 * atomic broadcast between the servers of an ensemble, ZAB-style.
 *
 * Pure protocol: no threads, sockets, files or clocks. The host (the
 * server's sequencer thread, or the deterministic simulator in tests/sim)
 * hands it peer frames, connection changes, log durability and the time,
 * and it acts through struct zab_env: it sends frames, appends to and
 * truncates the host's log, persists epochs and hands committed txns to
 * the host's state machine. Every function is called from one thread; no
 * callback re-enters the engine.
 *
 * Model. Every server keeps a log of txn records (zxid, type, payload),
 * zxid = epoch << 32 | counter. The engine keeps in memory every record
 * logged after the host's newest snapshot (the history), to send to
 * servers that are behind. A record is committed once a quorum of voting
 * servers has it durably in its log; committed records are applied in zxid
 * order on every server. The host's state is the applied prefix of its log
 * (zab_start says how far), never anything uncommitted, except on the
 * leader, whose sequencer applies its own proposals before they commit:
 * when a leader that has proposed steps down, the engine asks the host to
 * restart from disk (env->restart) rather than undo them.
 *
 * Election: LOOKING servers exchange votes (epoch, last zxid, server id),
 * the greatest wins, and a server follows whoever a quorum voted for, or
 * whoever a quorum of servers already out of the election reports as
 * leader. Discovery: the leader collects the followers' accepted epochs
 * and proposes one above all of them; a follower that accepted a newer one
 * refuses. Sync: per follower, from its last zxid: DIFF (the records it
 * lacks), TRUNC (drop a divergent uncommitted tail first) or SNAP (the
 * leader's newest snapshot file, then the records after it). The follower
 * makes all of it durable, and records the new epoch, before it
 * acknowledges NEWLEADER (ZOOKEEPER-3911). A quorum of acknowledgements
 * establishes the epoch: everything the leader logged is then committed.
 * Broadcast: PROPOSAL (a batch of records), ACK (cumulative, of durable
 * records), COMMIT (cumulative).
 *
 * Peer frames are the engine's own (zab.c documents them); the transport
 * adds length and checksum. A frame that does not decode, arrives in the
 * wrong state, or leaves a gap in the log drops that peer's connection
 * (env->disconnect), never the server. Messages of an older epoch are
 * ignored. */
#ifndef RK_ZAB_H
#define RK_ZAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZAB_MEMBERS_MAX 64

enum zab_state {
	ZAB_LOOKING = 0, /* electing; clients are not served */
	ZAB_FOLLOWING,	 /* synced (zab_serving) or syncing with the leader */
	ZAB_LEADING,	 /* leading (zab_serving once established) */
	ZAB_OBSERVING,	 /* a non-voting follower */
	ZAB_STATE_COUNT,
};

struct zab_member {
	uint32_t sid;
	bool observer;
};

/* One txn record. payload is borrowed for the duration of a call. */
struct zab_rec {
	int64_t zxid;
	uint32_t type;
	uint32_t len;
	const uint8_t *payload;
};

struct zab_env {
	void *ctx;
	/* Queue a frame to peer sid; silently dropped when not connected. */
	void (*send)(void *ctx, uint32_t sid, const void *buf, size_t len);
	/* Drop the connection to sid (it will be re-established). */
	void (*disconnect)(void *ctx, uint32_t sid);
	/* Append records (zxids increasing, above everything logged) as
	 * one batch; durability is reported later by zab_log_durable. A
	 * non-zero return (the log failed) makes the engine stop voting and
	 * go LOOKING for good. */
	int (*log_append)(void *ctx, const struct zab_rec *recs, size_t n);
	/* Drop every logged record above zxid, durably, before returning. */
	int (*log_truncate)(void *ctx, int64_t zxid);
	/* Persist acceptedEpoch and currentEpoch, durably. */
	int (*save_epochs)(void *ctx, uint32_t accepted, uint32_t current);
	/* Committed records to apply, in order, each exactly once. */
	void (*apply)(void *ctx, const struct zab_rec *recs, size_t n);
	/* Leader: the newest snapshot file's raw bytes and zxid (*len 0 if
	 * none). The engine frees nothing; the host keeps buf valid until
	 * the next call. */
	int (*snap_read)(void *ctx, const void **buf, size_t *len, int64_t *zxid);
	/* Follower: install raw snapshot bytes from the leader as our newest
	 * snapshot and empty the log (durably); the engine then restarts. */
	int (*snap_install)(void *ctx, const void *buf, size_t len, int64_t zxid);
	/* State or leader changed; serving: clients may be served. */
	void (*state_changed)(void *ctx, enum zab_state st, uint32_t leader_sid, uint32_t epoch,
			      bool serving);
	/* The host must rebuild its state from disk (re-exec, or in the
	 * simulator: crash and recover). The engine must not be called
	 * again. */
	void (*restart)(void *ctx, const char *why);
	/* Opaque host traffic: a follower's client request reaching the
	 * leader, and the leader's replies reaching the follower (after the
	 * COMMIT that covers them, on the same ordered connection). */
	void (*forwarded)(void *ctx, uint32_t from_sid, const void *buf, size_t len);
	void (*replies)(void *ctx, const void *buf, size_t len);
};

struct zab_config {
	uint32_t my_sid;
	struct zab_member members[ZAB_MEMBERS_MAX]; /* every server, me included */
	size_t n_members;
	int32_t tick_ms;     /* tickTime */
	int32_t init_limit;  /* ticks to connect and sync with a leader */
	int32_t sync_limit;  /* ticks without hearing from the other side */
	int32_t finalize_ms; /* election: wait for better votes once a quorum agrees */
};

/* What the host recovered from disk. */
struct zab_start {
	uint32_t accepted_epoch, current_epoch;
	int64_t snap_zxid;    /* newest snapshot's zxid (0: none) */
	int64_t applied_zxid; /* the host's state covers the log up to here */
};

struct zab;

struct zab *zab_create(const struct zab_config *cfg, const struct zab_env *env);
void zab_destroy(struct zab *z);
/* Before zab_begin: every record of the log above snap_zxid, in order
 * (copied). */
int zab_load(struct zab *z, const struct zab_rec *rec);
/* Start looking for a leader. */
void zab_begin(struct zab *z, const struct zab_start *st, int64_t now_ms);

void zab_peer_up(struct zab *z, uint32_t sid, int64_t now_ms);
void zab_peer_down(struct zab *z, uint32_t sid, int64_t now_ms);
void zab_receive(struct zab *z, uint32_t sid, const uint8_t *buf, size_t len, int64_t now_ms);
/* The local log is durable up to zxid. */
void zab_log_durable(struct zab *z, int64_t zxid, int64_t now_ms);
/* Timers; call at least every tick_ms / 4 (and finalize_ms / 2). */
void zab_tick(struct zab *z, int64_t now_ms);
/* A snapshot up to zxid is on disk: history at or below it may go. */
void zab_snapshot_done(struct zab *z, int64_t zxid);

/* Leader, established: propose a batch the host's state machine already
 * applied; zxids must continue zab_next_zxid. -EAGAIN if not an
 * established leader. */
int zab_propose(struct zab *z, const struct zab_rec *recs, size_t n, int64_t now_ms);
/* Follower: send opaque bytes to the leader (-ENOTCONN if none). */
int zab_forward(struct zab *z, const void *buf, size_t len);
/* Leader: send opaque bytes to follower sid after everything sent so far. */
int zab_reply(struct zab *z, uint32_t sid, const void *buf, size_t len);

/* Queries. */
enum zab_state zab_state(const struct zab *z);
bool zab_serving(const struct zab *z);
uint32_t zab_leader(const struct zab *z);
uint32_t zab_epoch(const struct zab *z);      /* current epoch */
int64_t zab_commit_zxid(const struct zab *z); /* committed (known) */
int64_t zab_last_zxid(const struct zab *z);   /* last logged */
int64_t zab_next_zxid(const struct zab *z);   /* leader: first zxid of the next batch */
int64_t zab_applied_zxid(const struct zab *z);
/* Leader: learners connected (followers and observers); of them, the
 * synced followers and the synced observers. */
size_t zab_followers(const struct zab *z, size_t *synced, size_t *synced_observers);
const char *zab_state_name(enum zab_state st);

#endif
