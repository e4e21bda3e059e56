/* The sequencer: the one thread that orders writes.
 *
 * Session cores hand it client writes and session events over one bounded
 * SPSC ring per core (struct seq_msg). Each pass it drains the rings,
 * validates and applies every request to the working tree (core/txn),
 * makes the batch durable through the storage interface, publishes the new
 * tree version and sends every core one struct core_msg: the version to
 * adopt, the watch events of the batch, and the replies for that core's
 * sessions. A core delivers the events, then adopts the version, then
 * sends the replies, so a client sees a watch event before any reply that
 * reflects its change, and a read after a write sees the write.
 *
 * Threads: sequencer_submit() is called by core i only (producer of ring
 * i); sequencer_run() and sequencer_tick() by the sequencer's thread only;
 * sequencer_poll() by core i only (consumer of its inbound ring). */
#ifndef RK_SEQUENCER_H
#define RK_SEQUENCER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/jute.h"
#include "core/proto.h"
#include "core/quota.h"
#include "core/session.h"
#include "core/tree.h"
#include "storage/storage.h"

enum seq_msg_kind {
	SEQ_WRITE = 0, /* a client write: op, xid and the request body */
	SEQ_CONNECT,   /* ConnectRequest: new session (id 0) or resume */
	SEQ_CLOSE,     /* closeSession request */
	SEQ_AUTH,      /* session authenticated: body "scheme\0id\0" */
	SEQ_TOUCH,     /* body: uint64 session ids seen alive since last */
	SEQ_MSG_KIND_COUNT,
};

/* Allocated by the core with malloc; freed by the sequencer. */
struct seq_msg {
	enum seq_msg_kind kind;
	uint16_t core;
	uint32_t conn_ref; /* the core's connection handle, echoed back */
	uint64_t session_id;
	int32_t xid;
	int32_t op;	     /* SEQ_CONNECT: 1 if the request carried readOnly */
	int32_t timeout_ms;  /* SEQ_CONNECT: requested timeout */
	int64_t zxid_seen;   /* SEQ_CONNECT: client's lastZxidSeen */
	int64_t received_us; /* when the core read the request, echoed back */
	uint32_t len;
	uint8_t body[];
};

/* A session whose client is connected to follower sid's core is owned by
 * this pseudo-core on the leader (sid < 256, core < 128). */
#define SEQ_REMOTE_CORE(sid, core) ((uint16_t)(0x8000u | (uint32_t)(sid) << 7 | (uint32_t)(core)))
#define SEQ_CORE_IS_REMOTE(c)	   (((c)&0x8000u) != 0)
#define SEQ_REMOTE_SID(c)	   (((uint32_t)(c) >> 7) & 0xffu)
#define SEQ_REMOTE_LOCAL(c)	   ((uint16_t)((c)&0x7fu))

/* What the sequencer does with client requests. */
enum seq_role {
	SEQ_STANDALONE = 0, /* applies them; the log is its own */
	SEQ_LEADER,	    /* applies them; batches go through atomic broadcast */
	SEQ_FOLLOWER,	    /* forwards them to the leader, applies its commits */
	SEQ_NOT_SERVING,    /* electing or syncing: refuses clients */
	SEQ_ROLE_COUNT,
};

enum delivery_kind {
	DLV_REPLY = 0, /* send frame to the session's connection */
	DLV_CONNECTED, /* ConnectResponse for conn_ref; session_id 0 = refused */
	DLV_CLOSE,     /* send frame, then close the connection */
	DLV_KILL,      /* session expired or moved: drop its connection unless
			* it is conn_ref (the one that now owns it) */
	DLV_REFUSED,   /* a reply whose txn never became durable: send its
			* header with ZSYSTEMERROR instead */
	DLV_KIND_COUNT,
};

/* Records in core_msg.deliveries: this header, then len frame bytes.
 * session_id 0 in a DLV_KILL: drop every client connection (the server
 * stopped serving: it lost its leader or is syncing). */
struct delivery {
	uint8_t kind;
	uint8_t pad;
	uint16_t core; /* the core, or SEQ_REMOTE_CORE of a follower's */
	uint32_t conn_ref;
	uint64_t session_id;
	uint32_t len;
	int32_t timeout_ms;
	int64_t received_us; /* replies: the request's seq_msg.received_us */
};

/* Records in batch_shared.events: this header, then len path bytes. acl
 * is the ACL a watcher needs READ on to be told (see struct sm_sink); it is
 * retired with the tree, so a core may read it until it reports holding
 * this batch's version. */
struct event_rec {
	int32_t type;
	uint32_t len;
	int64_t zxid;
	const struct acl_list *acl;
};

/* One per batch, shared read-only by every core; the last core to finish
 * with it frees it. */
struct batch_shared {
	_Atomic int refs;
	const struct tree_version *version;
	struct jute_out events;
};

struct core_msg {
	struct batch_shared *shared;
	struct jute_out deliveries;
};

struct sequencer_config {
	int cores;
	int32_t min_session_timeout_ms;
	int32_t max_session_timeout_ms;
	const char *super_digest;
	bool extended_types;   /* extendedTypesEnabled: TTL nodes */
	bool reconfig_enabled; /* reconfigEnabled, standalone only (see sm) */
	bool enforce_quota;    /* enforceQuota: hard quota limits refuse writes */
	/* Snapshots: directory ("" = none), txns between them (ZooKeeper's
	 * snapCount, randomised the same way) or log bytes (snapSizeLimitInKb),
	 * how many to keep and whether
	 * to purge older snapshots and log files (autopurge). */
	const char *snap_dir;
	int32_t snap_count;
	int64_t snap_bytes_limit; /* log bytes that also trigger one; 0 = off */
	int32_t snap_retain_count;
	bool snap_purge;
	/* ZooKeeper's ContainerManager: how often to look for emptied
	 * containers and expired TTL nodes, and how many to delete a minute. */
	int32_t container_check_interval_ms;
	int32_t container_max_per_minute;
	/* Wake core i after its inbound ring got messages. */
	void (*wake)(void *ctx, int core);
	void *wake_ctx;
	/* Ensemble only (NULL standalone), on the sequencer's thread: a
	 * follower's requests for the leader (-errno when there is none), the
	 * leader's replies for follower sid's clients, and a snapshot that
	 * reached disk. */
	int (*forward)(void *ctx, const void *buf, size_t len);
	void (*remote_deliver)(void *ctx, uint32_t sid, const void *buf, size_t len);
	void (*snapshot_done)(void *ctx, int64_t zxid);
	void *repl_ctx;
	uint8_t server_id; /* top byte of the session ids this server creates */
};

struct sequencer;

struct sequencer *sequencer_create(const struct sequencer_config *cfg);
void sequencer_destroy(struct sequencer *seq);
const struct tree *sequencer_tree(const struct sequencer *seq);

/* Recovery: pass sequencer_replay (with seq as ctx) to the store's open,
 * which calls it for every logged txn; then attach the store, which
 * publishes the recovered tree and restarts every recovered session's
 * timeout from now_ms. The sequencer owns st from then on. */
int sequencer_replay(void *seq, int64_t zxid, uint32_t type, const void *payload, uint32_t len);
/* Before the log: restore the newest snapshot in cfg->snap_dir that
 * verifies (none is fine). Returns 0 or -errno with err saying why. */
int sequencer_load_snapshot(struct sequencer *seq, char *err, size_t errlen);
void sequencer_attach_storage(struct sequencer *seq, struct storage *st, int64_t now_ms);
/* The store's eventfd (or -1): readable when sequencer_run has I/O to reap. */
int sequencer_wait_fd(struct sequencer *seq);

/* Core side. Takes ownership of msg on success; -EAGAIN when the ring is
 * full (the core keeps the message and retries later). */
int sequencer_submit(struct sequencer *seq, int core, struct seq_msg *msg);
struct core_msg *sequencer_poll(struct sequencer *seq, int core);
/* Whether core has messages waiting (a cheap check before serving reads). */
bool sequencer_has_msgs(struct sequencer *seq, int core);
/* Done with a message: drops the core's reference to the shared part. */
void sequencer_msg_done(struct core_msg *m);
/* The generation of the version core now reads (its quiescent state). */
void sequencer_report_gen(struct sequencer *seq, int core, uint64_t gen);

/* Ensemble, on the sequencer's thread. A new role kills every client
 * connection when it stops serving; a leader's next zxid is at least
 * zxid_floor, and its sessions' timeouts restart from now_ms. */
void sequencer_set_role(struct sequencer *seq, enum seq_role role, int64_t zxid_floor,
			int64_t now_ms);
enum seq_role sequencer_role(const struct sequencer *seq);
/* Apply one committed txn from the leader: its watch events fire and the
 * next pass publishes it. Returns 0 or -EBADMSG. */
int sequencer_apply(struct sequencer *seq, int64_t zxid, uint32_t type, const void *payload,
		    uint32_t len);
/* Leader: a request follower sid forwarded (cfg.forward's bytes). */
int sequencer_inject(struct sequencer *seq, uint32_t sid, const void *buf, size_t len);
/* Follower: the leader's deliveries for our cores (remote_deliver's). */
void sequencer_remote_replies(struct sequencer *seq, const void *buf, size_t len);
/* The last zxid applied to the working tree. */
int64_t sequencer_zxid(const struct sequencer *seq);
/* Calls fn for every session of the table, on the sequencer's thread only
 * (4lw dump, run by core 0). fn must not change the table. */
void sequencer_foreach_session(struct sequencer *seq, void (*fn)(void *ctx, struct session *s),
			       void *ctx);

/* Sequencer side: process what the rings hold; true if it did work. */
bool sequencer_run(struct sequencer *seq, int64_t now_ms);
/* Periodic: expire sessions whose deadline passed. */
void sequencer_tick(struct sequencer *seq, int64_t now_ms);

/* Figures for the four-letter words (read from any thread; approximate). */
struct sequencer_stats {
	_Atomic int64_t zxid;
	_Atomic int64_t zxid_durable;
	_Atomic bool storage_failed;
	_Atomic uint64_t sessions;
	_Atomic uint64_t znodes;
	_Atomic uint64_t writes;
	_Atomic int64_t snap_zxid;	   /* newest snapshot written or loaded */
	_Atomic uint64_t snap_duration_ms; /* how long the last one took */
	_Atomic uint64_t snap_bytes;
	/* Ensemble (set by the replication layer). */
	_Atomic int role;      /* enum seq_role */
	_Atomic int zab_state; /* enum zab_state, -1 standalone */
	_Atomic uint32_t epoch;
	_Atomic uint32_t leader_sid;
	_Atomic uint32_t followers;
	_Atomic uint32_t synced_followers;
	_Atomic uint32_t synced_observers;
	/* Writes a hard quota limit refused, per top namespace (mntr's
	 * zk_<ns>_quota_exceeded_error_per_namespace). */
	struct quota_counters quota;
};
/* Writable view for the replication layer (same thread as the sequencer). */
struct sequencer_stats *sequencer_stats_mut(struct sequencer *seq);
const struct sequencer_stats *sequencer_stats(const struct sequencer *seq);

#endif
