/* The replication engine (see zab.h): election, discovery, sync and
 * broadcast as one state machine driven by frames, durability and time.
 *
 * Frames (jute encoding, big-endian), after a common header:
 *   off 0  int   type     (enum frame_type)
 *   off 4  int   epoch    sender's epoch for this exchange (see each type)
 * then per type:
 *   NOTIFY        int state, long round, int leader, long zxid, int
 *                 vote_epoch, bool observer
 *   FOLLOWERINFO  long last_zxid, bool observer   (epoch: accepted epoch)
 *   LEADERINFO    -                               (epoch: proposed epoch)
 *   ACKEPOCH      int current_epoch, long last_zxid
 *   TRUNC         long zxid
 *   SNAP          long zxid, long total, long offset, buffer chunk
 *   PROPOSAL      long prev_zxid, int n, n x (long zxid, int type, buffer)
 *   NEWLEADER     long last_zxid
 *   ACKNEWLEADER  -
 *   ACK, COMMIT, UPTODATE, PING, PONG   long zxid
 *   FORWARD, REPLY                      buffer (opaque host bytes)
 * Leader-to-follower frames carry the leader's epoch; a follower's frames
 * carry the epoch it follows in. */
#include "consensus/zab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/jute.h"
#include "core/log.h"

#define NOTIFY_EVERY_MS	    100
#define NOTIFY_MAX_MS	    1000
#define INFO_RESEND_MS	    25
#define CHUNK_BYTES	    (1u << 20) /* sync data per frame */
#define SYNC_SLICE_BYTES    (8u << 20) /* streamed to a syncing learner per tick */
#define FRAME_BYTES_MAX	    (64u << 20)
#define SNAP_RECV_BYTES_MAX (INT64_C(64) << 30)

enum frame_type {
	F_NOTIFY = 0,
	F_FOLLOWERINFO,
	F_LEADERINFO,
	F_ACKEPOCH,
	F_TRUNC,
	F_SNAP,
	F_PROPOSAL,
	F_NEWLEADER,
	F_ACKNEWLEADER,
	F_ACK,
	F_COMMIT,
	F_UPTODATE,
	F_PING,
	F_PONG,
	F_FORWARD,
	F_REPLY,
	F_TYPE_COUNT,
};

/* Follower progress with its leader. */
enum follow_phase {
	FP_INFO = 0,  /* FOLLOWERINFO sent, waiting for LEADERINFO */
	FP_SYNC,      /* ACKEPOCH sent, taking sync data */
	FP_NEWLEADER, /* NEWLEADER seen, acknowledging once durable */
	FP_SYNCED,    /* NEWLEADER acknowledged, waiting for UPTODATE */
	FP_UPTODATE,  /* serving */
	FP_PHASE_COUNT,
};

/* The leader's view of one peer. */
enum peer_phase {
	PP_NONE = 0, /* nothing heard this epoch */
	PP_INFO,     /* FOLLOWERINFO received */
	PP_EPOCH,    /* ACKEPOCH received, not yet synced */
	PP_SYNCING,  /* sync data and NEWLEADER sent */
	PP_SYNCED,   /* NEWLEADER acknowledged */
	PP_SNAP,     /* sent a snapshot; it will restart and come back */
	PP_PHASE_COUNT,
};

struct vote {
	uint32_t leader;
	uint32_t epoch;
	int64_t zxid;
};

struct member {
	uint32_t sid;
	bool observer;
	bool up;
	/* Election: the member's last notification. */
	bool heard;
	uint8_t state;
	uint64_t round;
	struct vote vote;
	/* Leading: the member as a learner. */
	enum peer_phase phase;
	uint32_t accepted_epoch;
	uint32_t current_epoch;
	int64_t last_zxid;
	int64_t acked;
	int64_t heard_ms;
	int64_t sent;	      /* last zxid streamed to it */
	int64_t newleader_at; /* NEWLEADER follows the record with this zxid */
	bool newleader_sent;
};

struct hrec {
	int64_t zxid;
	uint32_t type;
	uint32_t len;
	uint8_t payload[];
};

/* Records logged above base, oldest first. */
struct history {
	struct hrec **v;
	size_t head, len, cap;
	int64_t base;
};

struct zab {
	struct zab_config cfg;
	struct zab_env env;
	struct member m[ZAB_MEMBERS_MAX];
	size_t n;
	size_t me;
	size_t voters;
	bool observer;
	enum zab_state state;
	bool serving;
	bool failed;
	uint32_t accepted_epoch, current_epoch;
	int64_t applied, last, durable, commit;
	struct history h;
	/* Election. */
	uint64_t round;
	struct vote vote;
	int64_t finalize_at, notify_at, notify_every;
	/* Following. */
	size_t leader;
	uint32_t fepoch;
	enum follow_phase fphase;
	int64_t deadline_ms, heard_ms, resend_at;
	int64_t newleader_zxid;
	int64_t snap_prev; /* newest snapshot the host reported */
	uint8_t *snap_buf;
	size_t snap_len;
	/* Leading. */
	uint32_t new_epoch;
	bool epoch_chosen, epoch_acked, established, proposed;
	int64_t ping_at;
	struct jute_out out;
};

const char *zab_state_name(enum zab_state st)
{
	switch (st) {
	case ZAB_LOOKING:
		return "looking";
	case ZAB_FOLLOWING:
		return "follower";
	case ZAB_LEADING:
		return "leader";
	case ZAB_OBSERVING:
		return "observer";
	case ZAB_STATE_COUNT:
		break;
	}
	return "?";
}

/* ---- history ---- */

static struct hrec *hist_at(const struct history *h, size_t i)
{
	return h->v[(h->head + i) % h->cap];
}

static int hist_push(struct history *h, const struct zab_rec *r)
{
	if (h->len == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 1024;
		struct hrec **v = malloc(cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < h->len; i++)
			v[i] = hist_at(h, i);
		free(h->v);
		h->v = v;
		h->head = 0;
		h->cap = cap;
	}
	struct hrec *e = malloc(sizeof *e + r->len);
	if (!e)
		return -ENOMEM;
	*e = (struct hrec){.zxid = r->zxid, .type = r->type, .len = r->len};
	memcpy(e->payload, r->payload, r->len);
	h->v[(h->head + h->len++) % h->cap] = e;
	return 0;
}

static void hist_pop_front(struct history *h)
{
	struct hrec *e = hist_at(h, 0);
	h->base = e->zxid;
	free(e);
	h->head = (h->head + 1) % h->cap;
	h->len--;
}

static void hist_pop_back(struct history *h)
{
	free(hist_at(h, h->len - 1));
	h->len--;
}

/* Index of the first record with zxid > after. */
static size_t hist_after(const struct history *h, int64_t after)
{
	size_t lo = 0, hi = h->len;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (hist_at(h, mid)->zxid <= after)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool hist_has(const struct history *h, int64_t zxid)
{
	if (zxid == h->base)
		return true;
	size_t i = hist_after(h, zxid - 1);
	return i < h->len && hist_at(h, i)->zxid == zxid;
}

static struct zab_rec rec_of(const struct hrec *e)
{
	return (struct zab_rec){
	    .zxid = e->zxid, .type = e->type, .len = e->len, .payload = e->payload};
}

/* ---- helpers ---- */

static size_t quorum(const struct zab *z)
{
	return z->voters / 2 + 1;
}

static int find(const struct zab *z, uint32_t sid)
{
	for (size_t i = 0; i < z->n; i++)
		if (z->m[i].sid == sid)
			return (int)i;
	return -1;
}

static void frame_begin(struct zab *z, enum frame_type t, uint32_t epoch)
{
	jute_out_reset(&z->out);
	jute_put_int(&z->out, (int32_t)t);
	jute_put_int(&z->out, (int32_t)epoch);
}

static void frame_send(struct zab *z, size_t to)
{
	if (z->out.err) {
		log_error("zab: frame to server %u does not fit; dropping the connection",
			  z->m[to].sid);
		z->env.disconnect(z->env.ctx, z->m[to].sid);
		return;
	}
	z->env.send(z->env.ctx, z->m[to].sid, z->out.buf, z->out.len);
}

static void send_zxid(struct zab *z, size_t to, enum frame_type t, uint32_t epoch, int64_t zxid)
{
	frame_begin(z, t, epoch);
	jute_put_long(&z->out, zxid);
	frame_send(z, to);
}

static bool vote_better(const struct vote *a, const struct vote *b)
{
	if (a->epoch != b->epoch)
		return a->epoch > b->epoch;
	if (a->zxid != b->zxid)
		return a->zxid > b->zxid;
	return a->leader > b->leader;
}

static bool vote_eq(const struct vote *a, const struct vote *b)
{
	return a->leader == b->leader && a->epoch == b->epoch && a->zxid == b->zxid;
}

static void set_state(struct zab *z, enum zab_state st, bool serving)
{
	bool changed = z->state != st || z->serving != serving;
	z->state = st;
	z->serving = serving;
	if (changed)
		z->env.state_changed(z->env.ctx, st, st == ZAB_LOOKING ? 0 : z->m[z->leader].sid,
				     st == ZAB_LEADING ? z->new_epoch : z->fepoch, serving);
}

static int save_epochs(struct zab *z)
{
	int rc = z->env.save_epochs(z->env.ctx, z->accepted_epoch, z->current_epoch);
	if (rc) {
		log_error("zab: cannot persist epochs: %d; leaving the ensemble", rc);
		z->failed = true;
	}
	return rc;
}

/* Append to the log and the history. */
static int log_records(struct zab *z, const struct zab_rec *recs, size_t n)
{
	if (!n)
		return 0;
	int rc = z->env.log_append(z->env.ctx, recs, n);
	for (size_t i = 0; !rc && i < n; i++)
		rc = hist_push(&z->h, &recs[i]);
	if (rc) {
		log_error("zab: the txn log refused records: %d; leaving the ensemble", rc);
		z->failed = true;
		return rc;
	}
	z->last = recs[n - 1].zxid;
	return 0;
}

/* Apply committed records the host has not applied yet. */
static void apply_committed(struct zab *z)
{
	int64_t upto = z->commit < z->last ? z->commit : z->last;
	if (upto <= z->applied)
		return;
	size_t i = hist_after(&z->h, z->applied);
	while (i < z->h.len && hist_at(&z->h, i)->zxid <= upto) {
		struct zab_rec r = rec_of(hist_at(&z->h, i));
		z->env.apply(z->env.ctx, &r, 1);
		z->applied = r.zxid;
		i++;
	}
}

static void enter_looking(struct zab *z, int64_t now_ms, const char *why);

/* ---- election ---- */

/* Out of the election, the "vote" names the leader we are with and its
 * epoch, so a server that joins late counts who is with whom. */
static void send_notify(struct zab *z, size_t to)
{
	struct vote v = z->vote;
	if (z->state != ZAB_LOOKING)
		v = (struct vote){.leader = z->m[z->leader].sid,
				  .epoch = z->state == ZAB_LEADING ? z->new_epoch : z->fepoch,
				  .zxid = z->last};
	frame_begin(z, F_NOTIFY, z->current_epoch);
	jute_put_int(&z->out, (int32_t)z->state);
	jute_put_long(&z->out, (int64_t)z->round);
	jute_put_int(&z->out, (int32_t)v.leader);
	jute_put_long(&z->out, v.zxid);
	jute_put_int(&z->out, (int32_t)v.epoch);
	jute_put_bool(&z->out, z->observer);
	frame_send(z, to);
}

static void notify_all(struct zab *z)
{
	for (size_t i = 0; i < z->n; i++)
		if (i != z->me && z->m[i].up)
			send_notify(z, i);
}

static void enter_looking(struct zab *z, int64_t now_ms, const char *why)
{
	if (z->state == ZAB_LEADING && z->proposed) {
		z->env.restart(z->env.ctx, why);
		return;
	}
	if (z->state != ZAB_LOOKING)
		log_info("zab: %s; looking for a leader", why);
	for (size_t i = 0; i < z->n; i++) {
		z->m[i].heard = false;
		z->m[i].phase = PP_NONE;
	}
	z->round++;
	z->vote =
	    (struct vote){.leader = z->m[z->me].sid, .epoch = z->current_epoch, .zxid = z->last};
	z->finalize_at = 0;
	z->notify_every = NOTIFY_EVERY_MS;
	z->notify_at = now_ms + z->notify_every;
	z->established = z->epoch_chosen = z->epoch_acked = false;
	free(z->snap_buf);
	z->snap_buf = NULL;
	z->snap_len = 0;
	z->leader = z->me;
	set_state(z, ZAB_LOOKING, false);
	if (!z->failed)
		notify_all(z);
}

static void lead(struct zab *z, int64_t now_ms);
static void follow(struct zab *z, size_t leader, int64_t now_ms);

static size_t count_votes(const struct zab *z, const struct vote *v)
{
	size_t c = z->observer ? 0 : 1; /* my own vote is z->vote */
	for (size_t i = 0; i < z->n; i++)
		if (i != z->me && !z->m[i].observer && z->m[i].heard &&
		    z->m[i].state == ZAB_LOOKING && z->m[i].round == z->round &&
		    vote_eq(&z->m[i].vote, v))
			c++;
	return c;
}

/* Servers already out of the election that agree on a leader which itself
 * says it leads: join them. */
static bool join_established(struct zab *z, int64_t now_ms)
{
	for (size_t l = 0; l < z->n; l++) {
		const struct member *ml = &z->m[l];
		if (l == z->me || !ml->heard || ml->state != ZAB_LEADING ||
		    ml->vote.leader != ml->sid)
			continue;
		size_t c = 0;
		for (size_t i = 0; i < z->n; i++) {
			const struct member *mi = &z->m[i];
			if (i != z->me && !mi->observer && mi->heard && mi->state != ZAB_LOOKING &&
			    mi->vote.leader == ml->sid && mi->vote.epoch == ml->vote.epoch)
				c++;
		}
		if (c >= quorum(z)) {
			z->vote = ml->vote;
			follow(z, l, now_ms);
			return true;
		}
	}
	return false;
}

static void on_notify(struct zab *z, size_t from, struct jute_in *in, int64_t now_ms)
{
	uint8_t st = (uint8_t)jute_get_int(in);
	uint64_t round = (uint64_t)jute_get_long(in);
	struct vote v = {.leader = (uint32_t)jute_get_int(in)};
	v.zxid = jute_get_long(in);
	v.epoch = (uint32_t)jute_get_int(in);
	jute_get_bool(in);
	if (in->err || st >= ZAB_STATE_COUNT)
		return;
	struct member *m = &z->m[from];
	if (z->state != ZAB_LOOKING) {
		if (st == ZAB_LOOKING)
			send_notify(z, from);
		else if (z->state != ZAB_LEADING && from == z->leader && z->fphase == FP_INFO &&
			 st != ZAB_LEADING)
			enter_looking(z, now_ms, "the server we chose does not lead");
		return;
	}
	if (z->failed)
		return;
	m->heard = true;
	m->state = st;
	m->round = round;
	m->vote = v;
	if (st != ZAB_LOOKING) {
		join_established(z, now_ms);
		return;
	}
	if (m->observer || z->observer)
		return;
	if (round > z->round) {
		z->round = round;
		struct vote self = {z->m[z->me].sid, z->current_epoch, z->last};
		z->vote = vote_better(&v, &self) ? v : self;
		z->finalize_at = 0;
		notify_all(z);
	} else if (round < z->round) {
		send_notify(z, from);
		return;
	} else if (vote_better(&v, &z->vote)) {
		z->vote = v;
		z->finalize_at = 0;
		notify_all(z);
	} else if (!vote_eq(&v, &z->vote)) {
		send_notify(z, from); /* it has not heard our better vote yet */
	}
	if (!z->finalize_at && count_votes(z, &z->vote) >= quorum(z))
		z->finalize_at = now_ms + z->cfg.finalize_ms;
}

static void election_tick(struct zab *z, int64_t now_ms)
{
	if (z->failed)
		return;
	if (z->finalize_at && now_ms >= z->finalize_at) {
		if (count_votes(z, &z->vote) < quorum(z)) {
			z->finalize_at = 0;
		} else {
			int l = find(z, z->vote.leader);
			if (l == (int)z->me)
				lead(z, now_ms);
			else if (l >= 0)
				follow(z, (size_t)l, now_ms);
			return;
		}
	}
	if (now_ms >= z->notify_at) {
		notify_all(z);
		z->notify_every =
		    z->notify_every * 2 > NOTIFY_MAX_MS ? NOTIFY_MAX_MS : z->notify_every * 2;
		z->notify_at = now_ms + z->notify_every;
	}
}

/* ---- following ---- */

static void send_info(struct zab *z)
{
	frame_begin(z, F_FOLLOWERINFO, z->accepted_epoch);
	jute_put_long(&z->out, z->last);
	jute_put_bool(&z->out, z->observer);
	frame_send(z, z->leader);
}

static void follow(struct zab *z, size_t leader, int64_t now_ms)
{
	z->leader = leader;
	z->fepoch = 0;
	z->fphase = FP_INFO;
	z->deadline_ms = now_ms + (int64_t)z->cfg.init_limit * z->cfg.tick_ms;
	z->heard_ms = now_ms;
	z->resend_at = now_ms + INFO_RESEND_MS;
	log_info("zab: following server %u", z->m[leader].sid);
	set_state(z, z->observer ? ZAB_OBSERVING : ZAB_FOLLOWING, false);
	if (z->m[leader].up)
		send_info(z);
}

static void on_leaderinfo(struct zab *z, uint32_t epoch, int64_t now_ms)
{
	if (z->fphase != FP_INFO)
		return;
	if (epoch < z->accepted_epoch) {
		enter_looking(z, now_ms, "the leader proposed an epoch older than one we accepted");
		return;
	}
	if (epoch > z->accepted_epoch) {
		z->accepted_epoch = epoch;
		if (save_epochs(z)) {
			enter_looking(z, now_ms, "cannot persist the accepted epoch");
			return;
		}
	}
	z->fepoch = epoch;
	z->fphase = FP_SYNC;
	frame_begin(z, F_ACKEPOCH, epoch);
	jute_put_int(&z->out, (int32_t)z->current_epoch);
	jute_put_long(&z->out, z->last);
	frame_send(z, z->leader);
}

static void on_trunc(struct zab *z, int64_t zxid, int64_t now_ms)
{
	if (z->fphase != FP_SYNC || zxid >= z->last)
		return;
	int rc = z->env.log_truncate(z->env.ctx, zxid);
	if (rc) {
		log_error("zab: cannot truncate the txn log to 0x%lx: %d", (long)zxid, rc);
		z->failed = true;
		enter_looking(z, now_ms, "log truncation failed");
		return;
	}
	log_info("zab: truncated the txn log after 0x%lx (a tail the ensemble never committed)",
		 (long)zxid);
	if (zxid < z->applied) {
		z->env.restart(z->env.ctx, "truncated the log below what we applied");
		return;
	}
	if (z->commit > zxid) {
		log_error("zab: the leader truncated below our commit point 0x%lx",
			  (long)z->commit);
		z->commit = zxid;
	}
	while (z->h.len && hist_at(&z->h, z->h.len - 1)->zxid > zxid)
		hist_pop_back(&z->h);
	z->last = zxid;
	if (z->durable > zxid)
		z->durable = zxid;
}

static void on_snap(struct zab *z, struct jute_in *in, int64_t now_ms)
{
	int64_t zxid = jute_get_long(in);
	int64_t total = jute_get_long(in);
	int64_t off = jute_get_long(in);
	const uint8_t *p;
	int32_t len;
	jute_get_buffer(in, &p, &len);
	if (in->err || z->fphase != FP_SYNC || len < 0 || total > SNAP_RECV_BYTES_MAX ||
	    off != (int64_t)z->snap_len || off + len > total) {
		z->env.disconnect(z->env.ctx, z->m[z->leader].sid);
		enter_looking(z, now_ms, "bad snapshot transfer");
		return;
	}
	uint8_t *b = realloc(z->snap_buf, z->snap_len + (size_t)len + 1);
	if (!b) {
		enter_looking(z, now_ms, "out of memory for the leader's snapshot");
		return;
	}
	z->snap_buf = b;
	memcpy(b + z->snap_len, p, (size_t)len);
	z->snap_len += (size_t)len;
	if ((int64_t)z->snap_len < total)
		return;
	int rc = z->env.snap_install(z->env.ctx, z->snap_buf, z->snap_len, zxid);
	if (rc)
		log_error("zab: cannot install the leader's snapshot: %d", rc);
	/* Either way the log was emptied: only a restart sees the disk as it is. */
	z->env.restart(z->env.ctx,
		       rc ? "snapshot install failed" : "installed the leader's snapshot");
}

static void on_proposal(struct zab *z, struct jute_in *in, int64_t now_ms)
{
	int64_t prev = jute_get_long(in);
	int32_t n = jute_get_vector_len(in, 16);
	if (in->err || z->fphase < FP_SYNC || prev != z->last) {
		log_warn("zab: proposal after 0x%lx does not continue our log at 0x%lx", (long)prev,
			 (long)z->last);
		z->env.disconnect(z->env.ctx, z->m[z->leader].sid);
		enter_looking(z, now_ms, "gap in the leader's proposals");
		return;
	}
	struct zab_rec *recs = calloc((size_t)n + 1, sizeof *recs);
	if (!recs)
		return enter_looking(z, now_ms, "out of memory");
	int64_t last = prev;
	for (int32_t i = 0; i < n; i++) {
		const uint8_t *p;
		int32_t len;
		recs[i].zxid = jute_get_long(in);
		recs[i].type = (uint32_t)jute_get_int(in);
		jute_get_buffer(in, &p, &len);
		recs[i].payload = p;
		recs[i].len = len > 0 ? (uint32_t)len : 0;
		if (recs[i].zxid <= last)
			in->err = -EBADMSG;
		last = recs[i].zxid;
	}
	if (in->err) {
		free(recs);
		z->env.disconnect(z->env.ctx, z->m[z->leader].sid);
		return enter_looking(z, now_ms, "malformed proposal");
	}
	int rc = log_records(z, recs, (size_t)n);
	free(recs);
	if (rc)
		enter_looking(z, now_ms, "the txn log failed");
}

static void maybe_ack_newleader(struct zab *z)
{
	if (z->fphase != FP_NEWLEADER || z->durable < z->newleader_zxid)
		return;
	z->current_epoch = z->fepoch;
	if (save_epochs(z))
		return;
	z->fphase = FP_SYNCED;
	frame_begin(z, F_ACKNEWLEADER, z->fepoch);
	frame_send(z, z->leader);
	if (!z->observer)
		send_zxid(z, z->leader, F_ACK, z->fepoch, z->durable);
}

/* NEWLEADER names the leader's last zxid: ours must match, or part of the
 * sync never arrived and acknowledging would claim a history we lack. */
static void on_newleader(struct zab *z, int64_t zxid, int64_t now_ms)
{
	if (z->fphase != FP_SYNC)
		return;
	if (zxid != z->last) {
		log_warn("zab: NEWLEADER at 0x%lx but our log ends at 0x%lx", (long)zxid,
			 (long)z->last);
		z->env.disconnect(z->env.ctx, z->m[z->leader].sid);
		enter_looking(z, now_ms, "incomplete sync from the leader");
		return;
	}
	z->newleader_zxid = z->last;
	z->fphase = FP_NEWLEADER;
	maybe_ack_newleader(z);
}

static void on_commit(struct zab *z, int64_t zxid)
{
	if (zxid > z->commit)
		z->commit = zxid;
	apply_committed(z);
}

static void follower_frame(struct zab *z, enum frame_type t, struct jute_in *in, int64_t now_ms)
{
	switch (t) {
	case F_TRUNC:
		on_trunc(z, jute_get_long(in), now_ms);
		break;
	case F_SNAP:
		on_snap(z, in, now_ms);
		break;
	case F_PROPOSAL:
		on_proposal(z, in, now_ms);
		break;
	case F_NEWLEADER:
		on_newleader(z, jute_get_long(in), now_ms);
		break;
	case F_COMMIT:
		if (z->fphase >= FP_SYNCED)
			on_commit(z, jute_get_long(in));
		break;
	case F_UPTODATE:
		if (z->fphase != FP_SYNCED)
			break;
		on_commit(z, jute_get_long(in));
		z->fphase = FP_UPTODATE;
		log_info("zab: in sync with leader %u in epoch %u at zxid 0x%lx",
			 z->m[z->leader].sid, z->fepoch, (long)z->last);
		set_state(z, z->state, true);
		break;
	case F_PING:
		if (z->fphase >= FP_SYNCED)
			on_commit(z, jute_get_long(in));
		send_zxid(z, z->leader, F_PONG, z->fepoch, z->durable);
		break;
	case F_REPLY: {
		const uint8_t *p;
		int32_t len;
		jute_get_buffer(in, &p, &len);
		if (!in->err && len > 0 && z->fphase == FP_UPTODATE)
			z->env.replies(z->env.ctx, p, (size_t)len);
		break;
	}
	default:
		break;
	}
}

static void on_leader_frame(struct zab *z, enum frame_type t, uint32_t epoch, struct jute_in *in,
			    int64_t now_ms)
{
	z->heard_ms = now_ms;
	if (t == F_LEADERINFO) {
		on_leaderinfo(z, epoch, now_ms);
		return;
	}
	if (z->fphase == FP_INFO || epoch != z->fepoch)
		return; /* an older exchange */
	follower_frame(z, t, in, now_ms);
}

static void follower_tick(struct zab *z, int64_t now_ms)
{
	int64_t limit = (int64_t)z->cfg.sync_limit * z->cfg.tick_ms;
	if (z->fphase != FP_UPTODATE && now_ms > z->deadline_ms)
		return enter_looking(z, now_ms, "could not sync with the leader in initLimit");
	if (z->fphase == FP_UPTODATE && now_ms - z->heard_ms > limit)
		return enter_looking(z, now_ms, "no word from the leader in syncLimit");
	if (z->fphase == FP_INFO && now_ms >= z->resend_at && z->m[z->leader].up) {
		send_info(z);
		z->resend_at = now_ms + INFO_RESEND_MS;
	}
}

/* ---- leading ---- */

static void leader_progress(struct zab *z, int64_t now_ms);

static void lead(struct zab *z, int64_t now_ms)
{
	z->leader = z->me;
	z->new_epoch = 0;
	z->epoch_chosen = z->epoch_acked = z->established = z->proposed = false;
	z->deadline_ms = now_ms + (int64_t)z->cfg.init_limit * z->cfg.tick_ms;
	z->ping_at = now_ms;
	for (size_t i = 0; i < z->n; i++)
		z->m[i].phase = PP_NONE;
	log_info("zab: elected leader (epoch %u, last zxid 0x%lx)", z->current_epoch,
		 (long)z->last);
	set_state(z, ZAB_LEADING, false);
	leader_progress(z, now_ms);
}

static size_t count_phase(const struct zab *z, enum peer_phase at_least)
{
	size_t c = 1; /* me */
	for (size_t i = 0; i < z->n; i++)
		if (i != z->me && !z->m[i].observer && z->m[i].phase >= at_least &&
		    z->m[i].phase != PP_SNAP)
			c++;
	return c;
}

/* One PROPOSAL of the history records after m->sent, up to upto and about
 * CHUNK_BYTES; returns the bytes sent (0: nothing left below upto). */
static size_t send_chunk(struct zab *z, size_t to, int64_t upto)
{
	struct member *m = &z->m[to];
	size_t i = hist_after(&z->h, m->sent);
	if (i >= z->h.len || hist_at(&z->h, i)->zxid > upto)
		return 0;
	frame_begin(z, F_PROPOSAL, z->new_epoch);
	jute_put_long(&z->out, m->sent);
	size_t at = z->out.len, n = 0, bytes = 0;
	jute_put_int(&z->out, 0);
	while (i < z->h.len && hist_at(&z->h, i)->zxid <= upto && (n == 0 || bytes < CHUNK_BYTES)) {
		const struct hrec *e = hist_at(&z->h, i++);
		jute_put_long(&z->out, e->zxid);
		jute_put_int(&z->out, (int32_t)e->type);
		jute_put_buffer(&z->out, e->payload, (int32_t)e->len);
		bytes += e->len + 16;
		m->sent = e->zxid;
		n++;
	}
	jute_patch_int(&z->out, at, (int32_t)n);
	frame_send(z, to);
	return bytes + 1;
}

/* Stream a learner its records, at most budget bytes (SIZE_MAX: all): a
 * syncing one a slice per tick, so a long DIFF does not stall the
 * leader's commits; NEWLEADER goes exactly after the records it names. */
static void pump(struct zab *z, size_t to, size_t budget)
{
	struct member *m = &z->m[to];
	if (m->sent != z->h.base && !hist_has(&z->h, m->sent)) {
		log_warn("zab: server %u fell behind our history; it must sync again", m->sid);
		z->env.disconnect(z->env.ctx, m->sid);
		m->phase = PP_NONE;
		return;
	}
	size_t sent = 0;
	while (sent < budget) {
		int64_t upto = m->newleader_sent ? INT64_MAX : m->newleader_at;
		size_t b = send_chunk(z, to, upto);
		sent += b;
		if (b == 0 && m->newleader_sent)
			break;
		if (b == 0) {
			send_zxid(z, to, F_NEWLEADER, z->new_epoch, m->newleader_at);
			m->newleader_sent = true;
		}
	}
}

static void send_snap(struct zab *z, size_t to)
{
	const void *buf;
	size_t len = 0;
	int64_t zxid = 0;
	if (z->env.snap_read(z->env.ctx, &buf, &len, &zxid) || !len || !hist_has(&z->h, zxid)) {
		log_error("zab: server %u needs a snapshot and ours at 0x%lx cannot be read",
			  z->m[to].sid, (long)z->h.base);
		z->env.disconnect(z->env.ctx, z->m[to].sid);
		return;
	}
	for (size_t off = 0; off < len; off += CHUNK_BYTES) {
		size_t n = len - off < CHUNK_BYTES ? len - off : CHUNK_BYTES;
		frame_begin(z, F_SNAP, z->new_epoch);
		jute_put_long(&z->out, zxid);
		jute_put_long(&z->out, (int64_t)len);
		jute_put_long(&z->out, (int64_t)off);
		jute_put_buffer(&z->out, (const uint8_t *)buf + off, (int32_t)n);
		frame_send(z, to);
	}
	z->m[to].phase = PP_SNAP;
	log_info("zab: sent snapshot 0x%lx (%zu bytes) to server %u", (long)zxid, len,
		 z->m[to].sid);
}

/* DIFF, TRUNC+DIFF or SNAP, chosen from the learner's last zxid. */
static void sync_peer(struct zab *z, size_t to)
{
	struct member *m = &z->m[to];
	int64_t f = m->last_zxid;
	int64_t from = f;
	if (f > z->last) {
		from = z->last;
	} else if (!hist_has(&z->h, f)) {
		if (f < z->h.base)
			return send_snap(z, to);
		size_t i = hist_after(&z->h, f - 1);
		from = i ? hist_at(&z->h, i - 1)->zxid : z->h.base;
	}
	if (from != f) {
		send_zxid(z, to, F_TRUNC, z->new_epoch, from);
		log_info("zab: server %u: TRUNC to 0x%lx, then DIFF", m->sid, (long)from);
	} else if (f != z->last) {
		log_info("zab: server %u: DIFF from 0x%lx to 0x%lx", m->sid, (long)f,
			 (long)z->last);
	}
	m->sent = from;
	m->newleader_at = z->last;
	m->newleader_sent = false;
	m->phase = PP_SYNCING;
	m->acked = 0;
	pump(z, to, SYNC_SLICE_BYTES);
}

static void choose_epoch(struct zab *z)
{
	uint32_t e = z->accepted_epoch;
	for (size_t i = 0; i < z->n; i++)
		if (i != z->me && z->m[i].phase >= PP_INFO && z->m[i].accepted_epoch > e)
			e = z->m[i].accepted_epoch;
	z->new_epoch = e + 1;
	z->accepted_epoch = z->new_epoch;
	if (save_epochs(z))
		return;
	z->epoch_chosen = true;
	for (size_t i = 0; i < z->n; i++)
		if (i != z->me && z->m[i].phase == PP_INFO)
			send_zxid(z, i, F_LEADERINFO, z->new_epoch, 0);
}

static void on_followerinfo(struct zab *z, size_t from, uint32_t epoch, struct jute_in *in)
{
	struct member *m = &z->m[from];
	m->last_zxid = jute_get_long(in);
	jute_get_bool(in);
	if (in->err)
		return;
	if (m->phase >= PP_EPOCH) {
		/* It started over with us: make both sides start clean. */
		z->env.disconnect(z->env.ctx, m->sid);
		m->phase = PP_NONE;
		return;
	}
	m->phase = PP_INFO;
	m->accepted_epoch = epoch;
	if (z->epoch_chosen)
		send_zxid(z, from, F_LEADERINFO, z->new_epoch, 0);
	else if (count_phase(z, PP_INFO) >= quorum(z))
		choose_epoch(z);
}

static void maybe_establish(struct zab *z, int64_t now_ms);

/* Discovery steps that a quorum of one (a single voter) takes alone. */
static void leader_progress(struct zab *z, int64_t now_ms)
{
	if (!z->epoch_chosen && count_phase(z, PP_INFO) >= quorum(z))
		choose_epoch(z);
	if (z->epoch_chosen && !z->epoch_acked && count_phase(z, PP_EPOCH) >= quorum(z)) {
		z->epoch_acked = true;
		for (size_t i = 0; i < z->n; i++)
			if (i != z->me && z->m[i].phase == PP_EPOCH)
				sync_peer(z, i);
	}
	maybe_establish(z, now_ms);
}

static bool ahead_of_me(const struct zab *z, const struct member *m)
{
	if (m->current_epoch != z->current_epoch)
		return m->current_epoch > z->current_epoch;
	return m->last_zxid > z->last;
}

static void on_ackepoch(struct zab *z, size_t from, struct jute_in *in, int64_t now_ms)
{
	struct member *m = &z->m[from];
	m->current_epoch = (uint32_t)jute_get_int(in);
	m->last_zxid = jute_get_long(in);
	if (in->err || m->phase != PP_INFO)
		return;
	if (ahead_of_me(z, m)) {
		enter_looking(z, now_ms, "a follower is ahead of the leader");
		return;
	}
	m->phase = PP_EPOCH;
	if (z->epoch_acked) {
		sync_peer(z, from);
		return;
	}
	if (count_phase(z, PP_EPOCH) < quorum(z))
		return;
	z->epoch_acked = true;
	for (size_t i = 0; i < z->n; i++)
		if (i != z->me && z->m[i].phase == PP_EPOCH)
			sync_peer(z, i);
}

static void establish(struct zab *z, int64_t now_ms)
{
	z->current_epoch = z->new_epoch;
	if (save_epochs(z))
		return enter_looking(z, now_ms, "cannot persist the current epoch");
	z->established = true;
	z->commit = z->last;
	apply_committed(z);
	z->applied = z->commit; /* from now on the host applies as it proposes */
	for (size_t i = 0; i < z->n; i++)
		if (i != z->me && z->m[i].phase == PP_SYNCED)
			send_zxid(z, i, F_UPTODATE, z->new_epoch, z->commit);
	log_info("zab: leading epoch %u with %zu of %zu voters, committed up to 0x%lx",
		 z->new_epoch, count_phase(z, PP_SYNCED), z->voters, (long)z->commit);
	set_state(z, ZAB_LEADING, true);
}

static void maybe_establish(struct zab *z, int64_t now_ms)
{
	if (z->established || !z->epoch_acked || z->durable < z->last)
		return;
	if (count_phase(z, PP_SYNCED) >= quorum(z))
		establish(z, now_ms);
}

static int cmp_desc(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

static void advance_commit(struct zab *z)
{
	if (!z->established)
		return;
	int64_t acks[ZAB_MEMBERS_MAX];
	size_t n = 0;
	acks[n++] = z->durable;
	for (size_t i = 0; i < z->n; i++)
		if (i != z->me && !z->m[i].observer && z->m[i].phase == PP_SYNCED)
			acks[n++] = z->m[i].acked;
	if (n < quorum(z))
		return;
	qsort(acks, n, sizeof *acks, cmp_desc);
	int64_t c = acks[quorum(z) - 1];
	if (c <= z->commit)
		return;
	z->commit = c;
	z->applied = c;
	for (size_t i = 0; i < z->n; i++)
		if (i != z->me && z->m[i].phase >= PP_SYNCING && z->m[i].phase != PP_SNAP)
			send_zxid(z, i, F_COMMIT, z->new_epoch, c);
}

static void leader_frame(struct zab *z, size_t from, enum frame_type t, uint32_t epoch,
			 struct jute_in *in, int64_t now_ms)
{
	struct member *m = &z->m[from];
	m->heard_ms = now_ms;
	if (t == F_FOLLOWERINFO)
		return on_followerinfo(z, from, epoch, in);
	if (!z->epoch_chosen || epoch != z->new_epoch)
		return;
	switch (t) {
	case F_ACKEPOCH:
		on_ackepoch(z, from, in, now_ms);
		break;
	case F_ACKNEWLEADER:
		if (m->phase != PP_SYNCING || !m->newleader_sent)
			break;
		/* Synced learners get every proposal at once: catch up first. */
		pump(z, from, SIZE_MAX);
		if (m->phase != PP_SYNCING)
			break;
		m->phase = PP_SYNCED;
		if (z->established)
			send_zxid(z, from, F_UPTODATE, z->new_epoch, z->commit);
		maybe_establish(z, now_ms);
		break;
	case F_ACK: {
		int64_t zxid = jute_get_long(in);
		if (m->phase == PP_SYNCED && !in->err && zxid > m->acked && zxid <= z->last)
			m->acked = zxid;
		advance_commit(z);
		break;
	}
	case F_FORWARD: {
		const uint8_t *p;
		int32_t len;
		jute_get_buffer(in, &p, &len);
		if (!in->err && len > 0 && z->established && m->phase == PP_SYNCED)
			z->env.forwarded(z->env.ctx, m->sid, p, (size_t)len);
		break;
	}
	default:
		break;
	}
}

static size_t count_live(const struct zab *z, int64_t now_ms)
{
	int64_t limit = (int64_t)z->cfg.sync_limit * z->cfg.tick_ms;
	size_t c = 1;
	for (size_t i = 0; i < z->n; i++)
		if (i != z->me && !z->m[i].observer && z->m[i].phase == PP_SYNCED &&
		    now_ms - z->m[i].heard_ms <= limit)
			c++;
	return c;
}

static void leader_tick(struct zab *z, int64_t now_ms)
{
	for (size_t i = 0; i < z->n; i++)
		if (i != z->me && z->m[i].phase == PP_SYNCING)
			pump(z, i, SYNC_SLICE_BYTES);
	if (!z->established) {
		if (now_ms > z->deadline_ms)
			enter_looking(z, now_ms, "no quorum synced within initLimit");
		else
			leader_progress(z, now_ms);
		return;
	}
	if (now_ms < z->ping_at)
		return;
	z->ping_at = now_ms + z->cfg.tick_ms / 2;
	if (count_live(z, now_ms) < quorum(z)) {
		enter_looking(z, now_ms, "lost the quorum of followers");
		return;
	}
	for (size_t i = 0; i < z->n; i++)
		if (i != z->me && z->m[i].phase >= PP_SYNCING && z->m[i].phase != PP_SNAP)
			send_zxid(z, i, F_PING, z->new_epoch, z->commit);
}

/* ---- entry points ---- */

struct zab *zab_create(const struct zab_config *cfg, const struct zab_env *env)
{
	struct zab *z = calloc(1, sizeof *z);
	if (!z)
		return NULL;
	z->cfg = *cfg;
	z->env = *env;
	z->n = cfg->n_members;
	RK_ASSERT(z->n >= 1 && z->n <= ZAB_MEMBERS_MAX);
	bool found = false;
	for (size_t i = 0; i < z->n; i++) {
		z->m[i] = (struct member){.sid = cfg->members[i].sid,
					  .observer = cfg->members[i].observer};
		if (!z->m[i].observer)
			z->voters++;
		if (z->m[i].sid == cfg->my_sid) {
			z->me = i;
			z->observer = z->m[i].observer;
			found = true;
		}
	}
	RK_ASSERT(found && z->voters > 0);
	if (z->cfg.finalize_ms <= 0)
		z->cfg.finalize_ms = 50;
	jute_out_init(&z->out, 256, FRAME_BYTES_MAX);
	return z;
}

void zab_destroy(struct zab *z)
{
	if (!z)
		return;
	while (z->h.len)
		hist_pop_back(&z->h);
	free(z->h.v);
	free(z->snap_buf);
	jute_out_free(&z->out);
	free(z);
}

int zab_load(struct zab *z, const struct zab_rec *rec)
{
	if (rec->zxid <= z->last && z->h.len)
		return -EINVAL;
	int rc = hist_push(&z->h, rec);
	if (!rc)
		z->last = rec->zxid;
	return rc;
}

void zab_begin(struct zab *z, const struct zab_start *st, int64_t now_ms)
{
	z->accepted_epoch = st->accepted_epoch;
	z->current_epoch = st->current_epoch;
	z->h.base = st->snap_zxid;
	z->snap_prev = st->snap_zxid;
	if (z->last < st->snap_zxid)
		z->last = st->snap_zxid;
	z->applied = st->applied_zxid;
	z->durable = z->last;
	z->commit = st->applied_zxid;
	z->state = ZAB_LOOKING;
	enter_looking(z, now_ms, "starting");
}

void zab_peer_up(struct zab *z, uint32_t sid, int64_t now_ms)
{
	int i = find(z, sid);
	if (i < 0 || (size_t)i == z->me)
		return;
	z->m[i].up = true;
	z->m[i].heard_ms = now_ms;
	if (z->state == ZAB_LOOKING && !z->failed)
		send_notify(z, (size_t)i);
	else if (z->state != ZAB_LEADING && (size_t)i == z->leader && z->fphase == FP_INFO)
		send_info(z);
}

void zab_peer_down(struct zab *z, uint32_t sid, int64_t now_ms)
{
	int i = find(z, sid);
	if (i < 0 || (size_t)i == z->me)
		return;
	struct member *m = &z->m[i];
	m->up = false;
	m->heard = false;
	if (z->state == ZAB_LEADING) {
		m->phase = PP_NONE;
	} else if ((z->state == ZAB_FOLLOWING || z->state == ZAB_OBSERVING) &&
		   (size_t)i == z->leader) {
		enter_looking(z, now_ms, "lost the connection to the leader");
	}
}

void zab_receive(struct zab *z, uint32_t sid, const uint8_t *buf, size_t len, int64_t now_ms)
{
	int from = find(z, sid);
	if (from < 0 || (size_t)from == z->me)
		return;
	struct jute_in in = jute_in_make(buf, len);
	int32_t t = jute_get_int(&in);
	uint32_t epoch = (uint32_t)jute_get_int(&in);
	if (in.err || t < 0 || t >= F_TYPE_COUNT) {
		log_warn("zab: malformed frame from server %u; dropping the connection", sid);
		z->env.disconnect(z->env.ctx, sid);
		return;
	}
	if (t == F_NOTIFY) {
		on_notify(z, (size_t)from, &in, now_ms);
		return;
	}
	if (z->state == ZAB_LEADING)
		leader_frame(z, (size_t)from, (enum frame_type)t, epoch, &in, now_ms);
	else if (t == F_FOLLOWERINFO && z->state != ZAB_LOOKING)
		send_notify(z, (size_t)from); /* it chose us, but we follow another */
	else if ((z->state == ZAB_FOLLOWING || z->state == ZAB_OBSERVING) &&
		 (size_t)from == z->leader)
		on_leader_frame(z, (enum frame_type)t, epoch, &in, now_ms);
}

void zab_log_durable(struct zab *z, int64_t zxid, int64_t now_ms)
{
	if (zxid <= z->durable)
		return;
	z->durable = zxid > z->last ? z->last : zxid;
	if (z->state == ZAB_LEADING) {
		maybe_establish(z, now_ms);
		advance_commit(z);
	} else if (z->state == ZAB_FOLLOWING || z->state == ZAB_OBSERVING) {
		if (z->fphase == FP_NEWLEADER)
			maybe_ack_newleader(z);
		else if (z->fphase >= FP_SYNCED && !z->observer)
			send_zxid(z, z->leader, F_ACK, z->fepoch, z->durable);
	}
}

void zab_tick(struct zab *z, int64_t now_ms)
{
	switch (z->state) {
	case ZAB_LOOKING:
		election_tick(z, now_ms);
		break;
	case ZAB_FOLLOWING:
	case ZAB_OBSERVING:
		follower_tick(z, now_ms);
		break;
	case ZAB_LEADING:
		leader_tick(z, now_ms);
		break;
	case ZAB_STATE_COUNT:
		RK_ASSERT(!"bad zab state");
	}
}

/* History goes back to the snapshot before the newest: a server that fell
 * behind by less than a snapshot interval gets a DIFF, not a SNAP. */
void zab_snapshot_done(struct zab *z, int64_t zxid)
{
	int64_t prev = z->snap_prev;
	z->snap_prev = zxid;
	int64_t upto = prev < z->applied ? prev : z->applied;
	while (z->h.len && hist_at(&z->h, 0)->zxid <= upto)
		hist_pop_front(&z->h);
	if (upto > z->h.base)
		z->h.base = upto;
}

int zab_propose(struct zab *z, const struct zab_rec *recs, size_t n, int64_t now_ms)
{
	(void)now_ms;
	if (z->state != ZAB_LEADING || !z->established || z->failed)
		return -EAGAIN;
	if (!n)
		return 0;
	RK_ASSERT(recs[0].zxid > z->last);
	int64_t prev = z->last;
	int rc = log_records(z, recs, n);
	if (rc)
		return rc;
	z->proposed = true;
	for (size_t i = 0; i < z->n; i++)
		if (i != z->me && z->m[i].phase == PP_SYNCED)
			pump(z, i, SIZE_MAX);
		else if (i != z->me && z->m[i].phase == PP_SYNCING && z->m[i].sent == prev)
			pump(z, i, SYNC_SLICE_BYTES);
	return 0;
}

int zab_forward(struct zab *z, const void *buf, size_t len)
{
	if ((z->state != ZAB_FOLLOWING && z->state != ZAB_OBSERVING) || z->fphase != FP_UPTODATE)
		return -ENOTCONN;
	frame_begin(z, F_FORWARD, z->fepoch);
	jute_put_buffer(&z->out, buf, (int32_t)len);
	frame_send(z, z->leader);
	return 0;
}

int zab_reply(struct zab *z, uint32_t sid, const void *buf, size_t len)
{
	int i = find(z, sid);
	if (i < 0 || z->state != ZAB_LEADING || z->m[i].phase != PP_SYNCED)
		return -ENOTCONN;
	frame_begin(z, F_REPLY, z->new_epoch);
	jute_put_buffer(&z->out, buf, (int32_t)len);
	frame_send(z, (size_t)i);
	return 0;
}

enum zab_state zab_state(const struct zab *z)
{
	return z->state;
}

bool zab_serving(const struct zab *z)
{
	return z->serving;
}

uint32_t zab_leader(const struct zab *z)
{
	return z->state == ZAB_LOOKING ? 0 : z->m[z->leader].sid;
}

uint32_t zab_epoch(const struct zab *z)
{
	return z->current_epoch;
}

int64_t zab_commit_zxid(const struct zab *z)
{
	return z->commit;
}

int64_t zab_last_zxid(const struct zab *z)
{
	return z->last;
}

int64_t zab_next_zxid(const struct zab *z)
{
	int64_t base = (int64_t)z->new_epoch << 32;
	return z->last >= base ? z->last + 1 : base + 1;
}

int64_t zab_applied_zxid(const struct zab *z)
{
	return z->applied;
}

size_t zab_followers(const struct zab *z, size_t *synced, size_t *synced_observers)
{
	size_t c = 0, s = 0, o = 0;
	for (size_t i = 0; i < z->n; i++) {
		if (i == z->me || z->state != ZAB_LEADING || z->m[i].phase == PP_NONE)
			continue;
		c++;
		if (z->m[i].phase == PP_SYNCED && z->m[i].observer)
			o++;
		else if (z->m[i].phase == PP_SYNCED)
			s++;
	}
	if (synced)
		*synced = s;
	if (synced_observers)
		*synced_observers = o;
	return c;
}
