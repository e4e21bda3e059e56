/* The replica: zab's environment on a real server (see replica.h). */
#include "consensus/replica.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "storage/epoch.h"
#include "storage/snapfile.h"

/* A record the leader's sequencer added, waiting for its batch's commit. */
struct staged {
	struct zab_rec *v;
	size_t n, cap;
};

struct replica {
	struct replica_config cfg;
	struct zab *zab;
	struct sequencer *seq;
	struct storage *wal;
	struct storage adapter;
	struct staged staged;
	int64_t durable_reported;
	void *snap_buf;
	/* Transport events that arrive while the engine is running (a send
	 * that drops a connection reports it at once) wait until it returns. */
	int depth;
	uint32_t down[ZAB_MEMBERS_MAX];
	size_t n_down;
	int64_t now_ms;
	int64_t looking_since_us; /* 0 = not electing */
	struct replica_stats stats;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void enter(struct replica *r)
{
	r->depth++;
}

static void leave(struct replica *r)
{
	if (--r->depth > 0)
		return;
	while (r->n_down) {
		uint32_t sid = r->down[--r->n_down];
		r->depth++;
		zab_peer_down(r->zab, sid, r->now_ms);
		r->depth--;
	}
}

/* ---- the engine's environment ---- */

static void env_send(void *ctx, uint32_t sid, const void *buf, size_t len)
{
	struct replica *r = ctx;
	r->cfg.send(r->cfg.host_ctx, sid, buf, len);
}

static void env_disconnect(void *ctx, uint32_t sid)
{
	struct replica *r = ctx;
	r->cfg.disconnect(r->cfg.host_ctx, sid);
}

static int env_log_append(void *ctx, const struct zab_rec *recs, size_t n)
{
	struct replica *r = ctx;
	for (size_t i = 0; i < n; i++) {
		int rc = r->wal->ops->add(r->wal, recs[i].zxid, recs[i].type, recs[i].payload,
					  recs[i].len);
		if (rc)
			return rc;
	}
	return r->wal->ops->commit(r->wal);
}

static int env_log_truncate(void *ctx, int64_t zxid)
{
	struct replica *r = ctx;
	int rc = r->wal->ops->truncate(r->wal, zxid);
	if (rc == 0 && r->cfg.snap_dir && r->cfg.snap_dir[0]) {
		int n = snapfile_remove_after(r->cfg.snap_dir, zxid);
		if (n > 0)
			log_warn("removed %d snapshot(s) above zxid 0x%lx", n, (long)zxid);
	}
	if (rc == 0 && r->durable_reported > zxid)
		r->durable_reported = zxid;
	return rc;
}

static int env_save_epochs(void *ctx, uint32_t accepted, uint32_t current)
{
	struct replica *r = ctx;
	int rc = epoch_write(r->cfg.data_dir, "acceptedEpoch", accepted);
	return rc ? rc : epoch_write(r->cfg.data_dir, "currentEpoch", current);
}

static void env_restart(void *ctx, const char *why)
{
	struct replica *r = ctx;
	log_warn("restarting from disk: %s", why);
	r->cfg.restart(r->cfg.host_ctx, why);
}

static void env_apply(void *ctx, const struct zab_rec *recs, size_t n)
{
	struct replica *r = ctx;
	for (size_t i = 0; i < n; i++)
		if (sequencer_apply(r->seq, recs[i].zxid, recs[i].type, recs[i].payload,
				    recs[i].len))
			env_restart(r, "a committed txn does not apply to our state");
}

static int env_snap_read(void *ctx, const void **buf, size_t *len, int64_t *zxid)
{
	struct replica *r = ctx;
	free(r->snap_buf);
	r->snap_buf = NULL;
	*len = 0;
	if (!r->cfg.snap_dir || !r->cfg.snap_dir[0])
		return -ENOENT;
	int rc = snapfile_read_newest(r->cfg.snap_dir, &r->snap_buf, len, zxid);
	*buf = r->snap_buf;
	return rc;
}

static int env_snap_install(void *ctx, const void *buf, size_t len, int64_t zxid)
{
	struct replica *r = ctx;
	int64_t got = 0;
	if (!r->cfg.snap_dir || !r->cfg.snap_dir[0])
		return -ENOENT;
	/* Log first: a crash in between leaves an empty log beside our old
	 * snapshot, which the next sync repairs; the other order could leave
	 * a divergent log beside the leader's snapshot. */
	int rc = r->wal->ops->reset(r->wal, zxid);
	if (rc)
		return rc;
	rc = snapfile_install(r->cfg.snap_dir, buf, len, &got);
	if (rc)
		return rc;
	if (got != zxid)
		return -EBADMSG;
	log_info("installed the leader's snapshot at zxid 0x%lx (%zu bytes)", (long)zxid, len);
	return 0;
}

static void publish_stats(struct replica *r)
{
	struct sequencer_stats *s = sequencer_stats_mut(r->seq);
	size_t synced = 0, observers = 0;
	size_t f = zab_followers(r->zab, &synced, &observers);
	atomic_store(&s->zab_state, (int)zab_state(r->zab));
	atomic_store(&s->epoch, zab_epoch(r->zab));
	atomic_store(&s->leader_sid, zab_leader(r->zab));
	atomic_store(&s->followers, (uint32_t)f);
	atomic_store(&s->synced_followers, (uint32_t)synced);
	atomic_store(&s->synced_observers, (uint32_t)observers);
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ZooKeeper's election_time: from entering LOOKING to knowing the leader
 * (the sync that follows is not part of it). */
static void time_election(struct replica *r, enum zab_state st)
{
	if (st == ZAB_LOOKING && !r->looking_since_us) {
		r->looking_since_us = mono_us();
		atomic_fetch_add_explicit(&r->stats.looking_count, 1, memory_order_relaxed);
	} else if (st != ZAB_LOOKING && r->looking_since_us) {
		summary_observe(&r->stats.election_us, (uint64_t)(mono_us() - r->looking_since_us));
		r->looking_since_us = 0;
	}
}

static void env_state_changed(void *ctx, enum zab_state st, uint32_t leader, uint32_t epoch,
			      bool serving)
{
	struct replica *r = ctx;
	time_election(r, st);
	enum seq_role role = SEQ_NOT_SERVING;
	if (serving && st == ZAB_LEADING)
		role = SEQ_LEADER;
	else if (serving && (st == ZAB_FOLLOWING || st == ZAB_OBSERVING))
		role = SEQ_FOLLOWER;
	sequencer_set_role(r->seq, role, (int64_t)epoch << 32, r->now_ms);
	publish_stats(r);
	if (serving)
		log_info("serving clients as %s of epoch %u (leader %u)", zab_state_name(st), epoch,
			 leader);
}

static void env_forwarded(void *ctx, uint32_t sid, const void *buf, size_t len)
{
	struct replica *r = ctx;
	int rc = sequencer_inject(r->seq, sid, buf, len);
	if (rc == -EBADMSG) {
		log_warn("malformed request forwarded by server %u; dropping it", sid);
		r->cfg.disconnect(r->cfg.host_ctx, sid);
	}
}

static void env_replies(void *ctx, const void *buf, size_t len)
{
	struct replica *r = ctx;
	sequencer_remote_replies(r->seq, buf, len);
}

/* ---- the storage the sequencer writes through ---- */

static struct replica *of_adapter(struct storage *st)
{
	return (struct replica *)((char *)st - offsetof(struct replica, adapter));
}

static int ad_add(struct storage *st, int64_t zxid, uint32_t type, const void *payload,
		  uint32_t len)
{
	struct replica *r = of_adapter(st);
	struct staged *s = &r->staged;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct zab_rec *v = realloc(s->v, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, payload, len);
	s->v[s->n++] = (struct zab_rec){.zxid = zxid, .type = type, .len = len, .payload = copy};
	return 0;
}

static void staged_clear(struct staged *s)
{
	for (size_t i = 0; i < s->n; i++)
		free((void *)s->v[i].payload);
	s->n = 0;
}

/* The sequencer applied these already: if they cannot be proposed, our
 * state is ahead of the ensemble's and only a restart undoes it. */
static int ad_commit(struct storage *st)
{
	struct replica *r = of_adapter(st);
	enter(r);
	int rc = zab_propose(r->zab, r->staged.v, r->staged.n, r->now_ms);
	leave(r);
	staged_clear(&r->staged);
	if (rc)
		env_restart(r, "a batch the sequencer applied could not be proposed");
	return rc;
}

static void ad_poll(struct storage *st)
{
	struct replica *r = of_adapter(st);
	r->wal->ops->poll(r->wal);
	int64_t d = r->wal->ops->durable_zxid(r->wal);
	if (d > r->durable_reported) {
		r->durable_reported = d;
		enter(r);
		zab_log_durable(r->zab, d, r->now_ms);
		leave(r);
	}
}

/* A batch may be released once everything up to its last zxid is
 * committed; when all that was logged is committed, every batch is. */
static int64_t ad_durable_zxid(struct storage *st)
{
	struct replica *r = of_adapter(st);
	int64_t d = r->wal->ops->durable_zxid(r->wal);
	if (d < 0 && zab_state(r->zab) == ZAB_LEADING)
		env_restart(r, "our txn log failed: another server must lead");
	if (d < 0)
		return d;
	int64_t c = zab_commit_zxid(r->zab);
	return c >= zab_last_zxid(r->zab) ? sequencer_zxid(r->seq) : c;
}

static int ad_wait_fd(struct storage *st)
{
	struct replica *r = of_adapter(st);
	return r->wal->ops->wait_fd(r->wal);
}

static int ad_purge_before(struct storage *st, int64_t zxid)
{
	struct replica *r = of_adapter(st);
	return r->wal->ops->purge_before(r->wal, zxid);
}

static void ad_close(struct storage *st)
{
	struct replica *r = of_adapter(st);
	if (r->wal)
		r->wal->ops->close(r->wal);
	r->wal = NULL;
}

static int ad_truncate(struct storage *st, int64_t zxid)
{
	struct replica *r = of_adapter(st);
	return r->wal->ops->truncate(r->wal, zxid);
}

static int ad_reset(struct storage *st, int64_t zxid)
{
	struct replica *r = of_adapter(st);
	return r->wal->ops->reset(r->wal, zxid);
}

static int64_t ad_last_zxid(struct storage *st)
{
	struct replica *r = of_adapter(st);
	return r->wal->ops->last_zxid(r->wal);
}

static const struct storage_ops adapter_ops = {
    .add = ad_add,
    .commit = ad_commit,
    .poll = ad_poll,
    .durable_zxid = ad_durable_zxid,
    .wait_fd = ad_wait_fd,
    .purge_before = ad_purge_before,
    .close = ad_close,
    .truncate = ad_truncate,
    .reset = ad_reset,
    .last_zxid = ad_last_zxid,
};

/* ---- life cycle ---- */

struct replica *replica_create(const struct replica_config *cfg)
{
	struct replica *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->cfg = *cfg;
	r->adapter.ops = &adapter_ops;
	struct zab_env env = {
	    .ctx = r,
	    .send = env_send,
	    .disconnect = env_disconnect,
	    .log_append = env_log_append,
	    .log_truncate = env_log_truncate,
	    .save_epochs = env_save_epochs,
	    .apply = env_apply,
	    .snap_read = env_snap_read,
	    .snap_install = env_snap_install,
	    .state_changed = env_state_changed,
	    .restart = env_restart,
	    .forwarded = env_forwarded,
	    .replies = env_replies,
	};
	r->zab = zab_create(&cfg->zab, &env);
	if (!r->zab) {
		free(r);
		return NULL;
	}
	r->now_ms = mono_ms();
	summary_init(&r->stats.election_us);
	return r;
}

const struct replica_stats *replica_stats(const struct replica *r)
{
	return &r->stats;
}

void replica_bind(struct replica *r, struct sequencer *seq)
{
	r->seq = seq;
}

void replica_destroy(struct replica *r)
{
	if (!r)
		return;
	zab_destroy(r->zab);
	staged_clear(&r->staged);
	free(r->staged.v);
	free(r->snap_buf);
	free(r);
}

int replica_replay(void *ctx, int64_t zxid, uint32_t type, const void *payload, uint32_t len)
{
	struct replica *r = ctx;
	int rc = sequencer_replay(r->seq, zxid, type, payload, len);
	if (rc)
		return rc;
	if (zxid <= atomic_load(&sequencer_stats(r->seq)->snap_zxid))
		return 0;
	struct zab_rec rec = {.zxid = zxid, .type = type, .len = len, .payload = payload};
	return zab_load(r->zab, &rec);
}

struct storage *replica_storage(struct replica *r, struct storage *wal)
{
	r->wal = wal;
	return &r->adapter;
}

int replica_start(struct replica *r, int64_t now_ms, char *err, size_t errlen)
{
	struct zab_start st = {0};
	int rc = epoch_read(r->cfg.data_dir, "acceptedEpoch", &st.accepted_epoch);
	if (!rc)
		rc = epoch_read(r->cfg.data_dir, "currentEpoch", &st.current_epoch);
	if (rc) {
		snprintf(err, errlen, "cannot read the epoch files in %s: %s", r->cfg.data_dir,
			 strerror(-rc));
		return rc;
	}
	st.snap_zxid = atomic_load(&sequencer_stats(r->seq)->snap_zxid);
	st.applied_zxid = sequencer_zxid(r->seq);
	if (st.current_epoch < (uint32_t)(st.applied_zxid >> 32))
		st.current_epoch = (uint32_t)(st.applied_zxid >> 32);
	if (st.accepted_epoch < st.current_epoch)
		st.accepted_epoch = st.current_epoch;
	r->durable_reported = st.applied_zxid;
	r->now_ms = now_ms;
	sequencer_set_role(r->seq, SEQ_NOT_SERVING, 0, now_ms);
	log_info("ensemble member %u: epochs accepted %u current %u, last zxid 0x%lx",
		 r->cfg.zab.my_sid, st.accepted_epoch, st.current_epoch, (long)st.applied_zxid);
	time_election(r, ZAB_LOOKING); /* zab starts looking */
	enter(r);
	zab_begin(r->zab, &st, now_ms);
	leave(r);
	publish_stats(r);
	return 0;
}

void replica_peer_up(struct replica *r, uint32_t sid, int64_t now_ms)
{
	r->now_ms = now_ms;
	enter(r);
	zab_peer_up(r->zab, sid, now_ms);
	leave(r);
}

void replica_peer_down(struct replica *r, uint32_t sid, int64_t now_ms)
{
	r->now_ms = now_ms;
	if (r->depth > 0) {
		if (r->n_down < ZAB_MEMBERS_MAX)
			r->down[r->n_down++] = sid;
		return;
	}
	enter(r);
	zab_peer_down(r->zab, sid, now_ms);
	leave(r);
}

void replica_frame(struct replica *r, uint32_t sid, const uint8_t *buf, size_t len, int64_t now_ms)
{
	r->now_ms = now_ms;
	enter(r);
	zab_receive(r->zab, sid, buf, len, now_ms);
	leave(r);
}

void replica_tick(struct replica *r, int64_t now_ms)
{
	r->now_ms = now_ms;
	enter(r);
	zab_tick(r->zab, now_ms);
	leave(r);
	publish_stats(r);
}

int replica_forward_hook(void *ctx, const void *buf, size_t len)
{
	struct replica *r = ctx;
	enter(r);
	int rc = zab_forward(r->zab, buf, len);
	leave(r);
	return rc;
}

void replica_deliver_hook(void *ctx, uint32_t sid, const void *buf, size_t len)
{
	struct replica *r = ctx;
	enter(r);
	zab_reply(r->zab, sid, buf, len);
	leave(r);
}

void replica_snapshot_hook(void *ctx, int64_t zxid)
{
	struct replica *r = ctx;
	zab_snapshot_done(r->zab, zxid);
}
