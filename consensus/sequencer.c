/* The sequencer: drains the cores' rings, runs the state machine, makes
 * each batch durable, publishes the tree and routes results back. */
#include "consensus/sequencer.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/acl.h"
#include "core/log.h"
#include "core/session.h"
#include "core/snapshot.h"
#include "core/spsc.h"
#include "core/txn.h"
#include "storage/snapfile.h"

/* Bounds: ring slots per direction per core, and messages taken from one
 * core's ring per pass so one busy core cannot starve the others. */
#define RING_SLOTS	   16384
#define DRAIN_PER_CORE_MAX 4096
/* A pass needs one slot in every core's inbound ring. */
#define OUT_SPACE_MIN 2
/* Batches applied but not yet durable, and the log bytes they hold: past
 * either bound the sequencer stops taking requests until the disk catches
 * up (the cores' rings then fill and push back on clients). */
#define PENDING_MAX	  1024
#define BATCH_BYTES_MAX	  (4u << 20) /* log bytes one pass may add */
#define PENDING_BYTES_MAX (8u << 20) /* well below the log's own queue bound */
/* Requests followers forwarded that wait for the next pass. */
#define INBOX_MAX (1u << 16)
#define SIDS	  256

/* A session opened or closed by a batch, so a snapshot of an older version
 * can tell which sessions that version had. */
struct session_event {
	bool opened;
	struct snap_session s;
};

struct session_events {
	struct session_event *e;
	size_t n, cap;
};

/* One snapshot being written by its own thread from a published, frozen
 * version. The thread reads only that version (held against reclamation
 * through seq->snap_gen) and its private session list. */
struct snap_job {
	pthread_t thread;
	const struct tree_version *version;
	struct snap_session *sessions;
	size_t n_sessions;
	char dir[4096];
	unsigned retain;
	bool purge;
	int64_t zxid;
	int64_t oldest_kept_zxid;
	int64_t started_ms;
	uint64_t bytes;
	int rc;
	_Atomic bool done;
};

/* Deliveries for one follower's clients. */
struct remote_out {
	uint32_t sid;
	struct jute_out d;
};

struct pending_batch {
	int64_t zxid_last;
	uint64_t txns;
	struct remote_out *remote;
	size_t n_remote;
	struct session_events sev;
	size_t bytes;
	struct tree_version *version; /* NULL: the batch changed nothing */
	struct batch_shared *shared;
	struct core_msg **msgs; /* one per core */
};

struct core_slot {
	struct spsc *in;  /* core -> sequencer */
	struct spsc *out; /* sequencer -> core */
	_Alignas(64) _Atomic uint64_t gen;
	struct core_msg *building;
};

struct inbox {
	struct seq_msg **v;
	size_t head, len;
};

struct sequencer {
	struct sequencer_config cfg;
	enum seq_role role;
	struct jute_out *remote[SIDS]; /* deliveries being built, per follower */
	struct inbox inbox;
	bool kill_all; /* the next batch drops every connection */
	struct tree *tree;
	struct session_table *sessions;
	struct sm sm;
	struct core_slot *cores;
	struct batch_shared *shared;
	struct storage *storage;
	struct sm_log log;
	int store_err;
	size_t batch_bytes;
	size_t batch_records; /* logged by the batch being built */
	struct pending_batch pending[PENDING_MAX];
	size_t pending_head, pending_len, pending_bytes;
	int64_t zxid_published;
	int64_t zxid_frozen; /* last zxid of the newest frozen version */
	int64_t wall_ms;
	struct session_events sev; /* of the batch being built */
	struct snap_job *snap;	   /* the snapshot being written, or NULL */
	_Atomic uint64_t snap_gen; /* generation it holds; UINT64_MAX if none */
	/* Txns published since the last snapshot, and how many make the next
	 * one due (counted, not read off zxids: a new epoch jumps them). */
	uint64_t snap_txns, snap_txns_due;
	uint64_t batch_txns;
	uint64_t snap_log_bytes;   /* logged since the last one started */
	int64_t container_next_ms; /* next look for empty containers / old TTLs */
	struct session system;	   /* deletes containers and TTL nodes; super */
	struct sequencer_stats stats;
};

static void log_record(void *ctx, int64_t zxid, uint32_t type, const void *payload, uint32_t len)
{
	struct sequencer *seq = ctx;
	if (seq->store_err)
		return;
	int rc = seq->storage->ops->add(seq->storage, zxid, type, payload, len);
	if (rc) {
		seq->store_err = rc;
		log_error("txn log refused zxid 0x%lx: %s; writes are no longer acknowledged",
			  (long)zxid, strerror(-rc));
		atomic_store(&seq->stats.storage_failed, true);
		return;
	}
	seq->batch_bytes += len;
	seq->batch_records++;
	seq->batch_txns++;
}

static void snapshot_start(struct sequencer *seq);
static void snapshot_reap(struct sequencer *seq, bool wait);

static int64_t wall_clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct sequencer *sequencer_create(const struct sequencer_config *cfg)
{
	struct sequencer *seq = calloc(1, sizeof *seq);
	if (!seq)
		return NULL;
	seq->cfg = *cfg;
	seq->tree = tree_create();
	seq->sessions = session_table_create(cfg->server_id, wall_clock_ms());
	seq->inbox.v = calloc(INBOX_MAX, sizeof *seq->inbox.v);
	if (!seq->inbox.v)
		goto err;
	seq->cores = calloc((size_t)cfg->cores, sizeof *seq->cores);
	if (!seq->tree || !seq->sessions || !seq->cores)
		goto err;
	for (int i = 0; i < cfg->cores; i++) {
		seq->cores[i].in = spsc_create(RING_SLOTS);
		seq->cores[i].out = spsc_create(RING_SLOTS);
		if (!seq->cores[i].in || !seq->cores[i].out)
			goto err;
		atomic_init(&seq->cores[i].gen, 1);
	}
	seq->storage = storage_mem_open();
	if (!seq->storage)
		goto err;
	seq->log = (struct sm_log){.record = log_record, .ctx = seq};
	atomic_init(&seq->snap_gen, UINT64_MAX);
	acl_auth_init(&seq->system.auth);
	acl_auth_add(&seq->system.auth, ACL_SCHEME_SUPER, "");
	/* Servers with the same history must not all snapshot together. */
	srandom((unsigned)(wall_clock_ms() ^ getpid()));
	seq->sm = (struct sm){.log = &seq->log,
			      .tree = seq->tree,
			      .sessions = seq->sessions,
			      .super_id = cfg->super_digest,
			      .extended_types = cfg->extended_types,
			      .reconfig_enabled = cfg->reconfig_enabled,
			      .enforce_quota = cfg->enforce_quota,
			      .quota_counters = &seq->stats.quota};
	return seq;
err:
	sequencer_destroy(seq);
	return NULL;
}

static void shared_free(struct batch_shared *b)
{
	jute_out_free(&b->events);
	free(b);
}

void sequencer_msg_done(struct core_msg *m)
{
	if (atomic_fetch_sub_explicit(&m->shared->refs, 1, memory_order_acq_rel) == 1)
		shared_free(m->shared);
	jute_out_free(&m->deliveries);
	free(m);
}

void sequencer_destroy(struct sequencer *seq)
{
	if (!seq)
		return;
	if (seq->storage)
		snapshot_reap(seq, true);
	free(seq->sev.e);
	for (int i = 0; seq->cores && i < seq->cfg.cores; i++) {
		struct core_slot *c = &seq->cores[i];
		void *p;
		while (c->in && (p = spsc_pop(c->in)))
			free(p);
		while (c->out && (p = spsc_pop(c->out)))
			sequencer_msg_done(p);
		free(c->in);
		free(c->out);
	}
	for (size_t i = 0; i < seq->pending_len; i++) {
		struct pending_batch *p = &seq->pending[(seq->pending_head + i) % PENDING_MAX];
		for (int c = 0; c < seq->cfg.cores; c++) {
			p->msgs[c]->shared = p->shared;
			atomic_init(&p->shared->refs, seq->cfg.cores);
			sequencer_msg_done(p->msgs[c]);
		}
		free(p->msgs);
		free(p->sev.e);
		for (size_t r = 0; r < p->n_remote; r++)
			jute_out_free(&p->remote[r].d);
		free(p->remote);
		if (p->version)
			tree_version_discard(seq->tree, p->version);
	}
	/* A batch opened between passes (a follower's commits or replies)
	 * that no pass sealed. */
	for (int i = 0; seq->cores && i < seq->cfg.cores; i++)
		if (seq->cores[i].building) {
			jute_out_free(&seq->cores[i].building->deliveries);
			free(seq->cores[i].building);
		}
	if (seq->shared)
		shared_free(seq->shared);
	free(seq->cores);
	for (size_t i = 0; i < seq->inbox.len; i++)
		free(seq->inbox.v[(seq->inbox.head + i) % INBOX_MAX]);
	free(seq->inbox.v);
	for (size_t i = 0; i < SIDS; i++)
		if (seq->remote[i]) {
			jute_out_free(seq->remote[i]);
			free(seq->remote[i]);
		}
	acl_auth_clear(&seq->system.auth);
	if (seq->storage)
		seq->storage->ops->close(seq->storage);
	session_table_destroy(seq->sessions);
	tree_destroy(seq->tree);
	free(seq);
}

const struct tree *sequencer_tree(const struct sequencer *seq)
{
	return seq->tree;
}

const struct sequencer_stats *sequencer_stats(const struct sequencer *seq)
{
	return &seq->stats;
}

int sequencer_submit(struct sequencer *seq, int core, struct seq_msg *msg)
{
	msg->core = (uint16_t)core;
	return spsc_push(seq->cores[core].in, msg) ? 0 : -EAGAIN;
}

struct core_msg *sequencer_poll(struct sequencer *seq, int core)
{
	return spsc_pop(seq->cores[core].out);
}

bool sequencer_has_msgs(struct sequencer *seq, int core)
{
	return spsc_space(seq->cores[core].out) <= seq->cores[core].out->mask;
}

void sequencer_report_gen(struct sequencer *seq, int core, uint64_t gen)
{
	atomic_store_explicit(&seq->cores[core].gen, gen, memory_order_release);
}

/* ---- building a batch ---- */

/* Open a batch unless one is open: followers' commits and replies arrive
 * between passes and ride in the next one. */
static void batch_begin(struct sequencer *seq)
{
	if (seq->shared)
		return;
	seq->shared = calloc(1, sizeof *seq->shared);
	RK_ASSERT(seq->shared);
	jute_out_init(&seq->shared->events, 0, SIZE_MAX / 2);
	seq->wall_ms = wall_clock_ms();
}

static struct jute_out *deliveries_of(struct sequencer *seq, int core)
{
	if (SEQ_CORE_IS_REMOTE((unsigned)core)) {
		struct jute_out **r = &seq->remote[SEQ_REMOTE_SID(core)];
		if (!*r) {
			*r = calloc(1, sizeof **r);
			RK_ASSERT(*r);
			jute_out_init(*r, 0, SIZE_MAX / 2);
		}
		return *r;
	}
	struct core_slot *c = &seq->cores[core];
	if (!c->building) {
		c->building = calloc(1, sizeof *c->building);
		RK_ASSERT(c->building);
		jute_out_init(&c->building->deliveries, 0, SIZE_MAX / 2);
	}
	return &c->building->deliveries;
}

/* Start a delivery record; the frame follows; finish with dlv_end. */
static size_t dlv_begin(struct sequencer *seq, int core, enum delivery_kind kind, uint32_t conn_ref,
			uint64_t session_id, int32_t timeout_ms)
{
	struct jute_out *d = deliveries_of(seq, core);
	size_t at = d->len;
	struct delivery *h = (struct delivery *)jute_reserve(d, sizeof *h);
	RK_ASSERT(h);
	*h = (struct delivery){.kind = (uint8_t)kind,
			       .core = (uint16_t)core,
			       .conn_ref = conn_ref,
			       .session_id = session_id,
			       .timeout_ms = timeout_ms};
	return at;
}

/* A reply carries its request's arrival time back for the latency figures. */
static void dlv_stamp(struct sequencer *seq, const struct seq_msg *m, size_t at)
{
	struct delivery *h = (struct delivery *)(deliveries_of(seq, m->core)->buf + at);
	h->received_us = m->received_us;
}

static void dlv_end(struct sequencer *seq, int core, size_t at)
{
	struct jute_out *d = deliveries_of(seq, core);
	RK_ASSERT(d->err == 0);
	struct delivery *h = (struct delivery *)(d->buf + at);
	h->len = (uint32_t)(d->len - at - sizeof *h);
	/* Keep records 8-byte aligned. */
	size_t pad = (8 - (d->len & 7)) & 7;
	if (pad)
		memset(jute_reserve(d, pad), 0, pad);
}

static void on_event(void *ctx, enum zk_event_type type, const char *path, size_t len, int64_t zxid,
		     const struct acl_list *acl)
{
	struct sequencer *seq = ctx;
	struct jute_out *ev = &seq->shared->events;
	struct event_rec *r = (struct event_rec *)jute_reserve(ev, sizeof *r);
	RK_ASSERT(r);
	*r = (struct event_rec){.type = type, .len = (uint32_t)len, .zxid = zxid, .acl = acl};
	memcpy(jute_reserve(ev, (len + 7) & ~(size_t)7), path, len);
}

static bool batch_empty(struct sequencer *seq)
{
	if (seq->sm.zxid != seq->zxid_frozen || seq->shared->events.len)
		return false;
	for (int i = 0; i < seq->cfg.cores; i++)
		if (seq->cores[i].building)
			return false;
	for (size_t i = 0; i < SIDS; i++)
		if (seq->remote[i])
			return false;
	return !seq->kill_all;
}

static uint64_t gen_min_held(struct sequencer *seq)
{
	uint64_t min = atomic_load_explicit(&seq->snap_gen, memory_order_acquire);
	for (int i = 0; i < seq->cfg.cores; i++) {
		uint64_t g = atomic_load_explicit(&seq->cores[i].gen, memory_order_acquire);
		if (g < min)
			min = g;
	}
	return min;
}

static void update_stats(struct sequencer *seq)
{
	atomic_store_explicit(&seq->stats.zxid, seq->zxid_published, memory_order_relaxed);
	atomic_store_explicit(&seq->stats.sessions, session_count(seq->sessions),
			      memory_order_relaxed);
	atomic_store_explicit(&seq->stats.znodes, tree_node_count(tree_acquire(seq->tree)),
			      memory_order_relaxed);
}

/* Hand every core its message of the queue's oldest batch and drop it. */
static void release_head(struct sequencer *seq)
{
	struct pending_batch *p = &seq->pending[seq->pending_head];
	p->shared->version = tree_acquire(seq->tree);
	atomic_init(&p->shared->refs, seq->cfg.cores);
	for (int i = 0; i < seq->cfg.cores; i++) {
		p->msgs[i]->shared = p->shared;
		/* Space was checked before the batch began. */
		RK_ASSERT(spsc_push(seq->cores[i].out, p->msgs[i]));
	}
	for (int i = 0; i < seq->cfg.cores; i++)
		seq->cfg.wake(seq->cfg.wake_ctx, i);
	for (size_t r = 0; r < p->n_remote; r++) {
		if (seq->cfg.remote_deliver && p->remote[r].d.len)
			seq->cfg.remote_deliver(seq->cfg.repl_ctx, p->remote[r].sid,
						p->remote[r].d.buf, p->remote[r].d.len);
		jute_out_free(&p->remote[r].d);
	}
	free(p->remote);
	free(p->msgs);
	free(p->sev.e);
	seq->pending_bytes -= p->bytes;
	seq->pending_head = (seq->pending_head + 1) % PENDING_MAX;
	seq->pending_len--;
}

/* The log failed under these batches: none of their changes become
 * visible, their watch events are dropped, and every reply they carry
 * turns into a refusal the cores send as ZSYSTEMERROR. */
static void refuse_all(struct jute_out *d)
{
	for (size_t off = 0; off < d->len;) {
		struct delivery *h = (struct delivery *)(d->buf + off);
		if (h->kind == DLV_REPLY || h->kind == DLV_CLOSE)
			h->kind = DLV_REFUSED;
		else if (h->kind == DLV_CONNECTED)
			h->session_id = 0, h->timeout_ms = -1;
		off += (sizeof *h + h->len + 7) & ~(size_t)7;
	}
}

static void fail_pending(struct sequencer *seq)
{
	while (seq->pending_len) {
		struct pending_batch *p = &seq->pending[seq->pending_head];
		if (p->version)
			tree_version_discard(seq->tree, p->version);
		jute_out_reset(&p->shared->events);
		for (int i = 0; i < seq->cfg.cores; i++)
			refuse_all(&p->msgs[i]->deliveries);
		for (size_t r = 0; r < p->n_remote; r++)
			refuse_all(&p->remote[r].d);
		release_head(seq);
	}
}

/* Publish, in order, every batch the store made durable, and hand each
 * core its message. Nothing reaches a client before its batch is durable. */
static void complete_durable(struct sequencer *seq)
{
	struct storage *st = seq->storage;
	st->ops->poll(st);
	int64_t durable = st->ops->durable_zxid(st);
	if (durable < 0 || seq->store_err) {
		if (!atomic_load(&seq->stats.storage_failed))
			log_error("txn log failed: %s; writes are no longer acknowledged, reads "
				  "go on",
				  strerror(durable < 0 ? (int)-durable : -seq->store_err));
		atomic_store(&seq->stats.storage_failed, true);
		fail_pending(seq);
		return;
	}
	atomic_store_explicit(&seq->stats.zxid_durable, durable, memory_order_relaxed);
	bool did = false;
	while (seq->pending_len && seq->pending[seq->pending_head].zxid_last <= durable) {
		struct pending_batch *p = &seq->pending[seq->pending_head];
		if (p->version) {
			tree_publish_version(seq->tree, p->version);
			seq->zxid_published = p->version->zxid;
		}
		seq->snap_txns += p->txns;
		release_head(seq);
		did = true;
	}
	if (did) {
		update_stats(seq);
		snapshot_start(seq);
		tree_reclaim(seq->tree, gen_min_held(seq));
	}
}

/* Move the follower deliveries and a kill-all into the sealed batch. */
static void take_remote(struct sequencer *seq, struct pending_batch *p)
{
	if (seq->kill_all) {
		for (int i = 0; i < seq->cfg.cores; i++) {
			struct jute_out *d = &p->msgs[i]->deliveries;
			if (!d->cap)
				jute_out_init(d, 0, SIZE_MAX / 2);
			struct delivery *h = (struct delivery *)jute_reserve(d, sizeof *h);
			RK_ASSERT(h);
			*h = (struct delivery){.kind = DLV_KILL, .core = (uint16_t)i};
		}
		seq->kill_all = false;
	}
	for (size_t i = 0; i < SIDS; i++) {
		if (!seq->remote[i])
			continue;
		struct remote_out *r = realloc(p->remote, (p->n_remote + 1) * sizeof *r);
		RK_ASSERT(r);
		p->remote = r;
		r[p->n_remote++] = (struct remote_out){.sid = (uint32_t)i, .d = *seq->remote[i]};
		free(seq->remote[i]);
		seq->remote[i] = NULL;
	}
}

/* Seal the batch: commit it to the store and queue it until durable. */
static void batch_end(struct sequencer *seq)
{
	if (batch_empty(seq)) {
		shared_free(seq->shared);
		seq->shared = NULL;
		return;
	}
	struct pending_batch *p =
	    &seq->pending[(seq->pending_head + seq->pending_len) % PENDING_MAX];
	RK_ASSERT(seq->pending_len < PENDING_MAX);
	*p = (struct pending_batch){.zxid_last = seq->sm.zxid,
				    .txns = seq->batch_txns,
				    .shared = seq->shared,
				    .bytes = seq->batch_bytes,
				    .sev = seq->sev};
	seq->sev = (struct session_events){0};
	if (seq->sm.zxid != seq->zxid_frozen) {
		int rc = seq->store_err || !seq->batch_records
			     ? 0
			     : seq->storage->ops->commit(seq->storage);
		if (rc) {
			seq->store_err = rc;
			log_error("txn log commit failed: %s; writes are no longer acknowledged",
				  strerror(-rc));
			atomic_store(&seq->stats.storage_failed, true);
		}
		p->version = tree_freeze(seq->tree);
		seq->zxid_frozen = seq->sm.zxid;
	}
	p->msgs = calloc((size_t)seq->cfg.cores, sizeof *p->msgs);
	RK_ASSERT(p->msgs);
	for (int i = 0; i < seq->cfg.cores; i++) {
		struct core_slot *c = &seq->cores[i];
		p->msgs[i] = c->building ? c->building : calloc(1, sizeof *p->msgs[i]);
		RK_ASSERT(p->msgs[i]);
		c->building = NULL;
	}
	take_remote(seq, p);
	seq->batch_records = 0;
	seq->batch_txns = 0;
	seq->pending_len++;
	seq->pending_bytes += seq->batch_bytes;
	seq->snap_log_bytes += seq->batch_bytes;
	seq->batch_bytes = 0;
	seq->shared = NULL;
	complete_durable(seq);
}

/* Room for one more batch: in the pending queue, in the log's budget and,
 * for every batch that may complete, in each core's inbound ring. */
static bool can_take_batch(struct sequencer *seq)
{
	if (seq->pending_len >= PENDING_MAX - 1 || seq->pending_bytes > PENDING_BYTES_MAX)
		return false;
	for (int i = 0; i < seq->cfg.cores; i++)
		if (spsc_space(seq->cores[i].out) < seq->pending_len + OUT_SPACE_MIN)
			return false;
	return true;
}

/* ---- snapshots ---- */

static void sev_push(struct sequencer *seq, bool opened, const struct session *s)
{
	struct session_events *v = &seq->sev;
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		struct session_event *e = realloc(v->e, cap * sizeof *e);
		RK_ASSERT(e); /* losing one would make the next snapshot wrong */
		v->e = e;
		v->cap = cap;
	}
	struct session_event *e = &v->e[v->n++];
	e->opened = opened;
	e->s = (struct snap_session){.id = s->id, .timeout_ms = s->timeout_ms};
	memcpy(e->s.passwd, s->passwd, sizeof e->s.passwd);
}

struct session_list {
	struct snap_session *v;
	size_t n, cap;
	struct hamt_root gone; /* ids opened after the snapshot's version */
};

static void list_add(struct session_list *l, const struct snap_session *s)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct snap_session *v = realloc(l->v, cap * sizeof *v);
		RK_ASSERT(v);
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *s;
}

static void list_working(void *ctx, struct session *s)
{
	struct snap_session ss = {.id = s->id, .timeout_ms = s->timeout_ms};
	memcpy(ss.passwd, s->passwd, sizeof ss.passwd);
	list_add(ctx, &ss);
}

static void free_now(void *ctx, void *p)
{
	free(p);
}

/* The sessions of the newest published version: the working table with
 * the session changes of the batches not yet durable undone, newest
 * first. */
static void sessions_published(struct sequencer *seq, struct session_list *l)
{
	struct hamt_gc gc = {.retire = free_now};
	session_foreach(seq->sessions, list_working, l);
	for (size_t b = seq->pending_len; b-- > 0;) {
		struct session_events *v = &seq->pending[(seq->pending_head + b) % PENDING_MAX].sev;
		for (size_t i = v->n; i-- > 0;) {
			const struct session_event *e = &v->e[i];
			if (e->opened)
				RK_ASSERT(hamt_put(&l->gone, &l->gone, &e->s.id, 8,
						   hamt_hash(&e->s.id, 8), NULL, NULL, &gc) == 0);
			else
				list_add(l, &e->s);
		}
	}
	size_t kept = 0;
	for (size_t i = 0; i < l->n; i++)
		if (!hamt_get(&l->gone, &l->v[i].id, 8, hamt_hash(&l->v[i].id, 8), NULL))
			l->v[kept++] = l->v[i];
	l->n = kept;
	hamt_destroy(&l->gone);
}

static int count_bytes(void *ctx, const void *p, size_t n)
{
	struct snap_job *j = ctx;
	j->bytes += n;
	return 0;
}

struct counting_writer {
	struct snap_job *job;
	struct snapfile_writer *w;
};

static int write_counted(void *ctx, const void *p, size_t n)
{
	struct counting_writer *cw = ctx;
	count_bytes(cw->job, p, n);
	return snapfile_write(cw->w, p, n);
}

static void *snap_main(void *arg)
{
	struct snap_job *j = arg;
	log_set_core(-1);
	/* Lowest priority: the cores' loops, which serve clients, always win
	 * the CPU; the snapshot takes what is left (it only needs to finish
	 * before the next one is due). */
	struct sched_param sp = {0};
	pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
	setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
	/* It was started from the sequencer's core and inherited that pin:
	 * let it run on any CPU, or under load it only gets the busiest one's
	 * leftovers and holds garbage from being freed for as long. The kernel
	 * keeps it within the process's cpuset. */
	cpu_set_t all;
	CPU_ZERO(&all);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
		CPU_SET(cpu, &all);
	pthread_setaffinity_np(pthread_self(), sizeof all, &all);
	struct counting_writer cw = {.job = j};
	j->rc = snapfile_begin(j->dir, j->zxid, 0, &cw.w);
	if (j->rc == 0) {
		j->rc = snapshot_encode(j->version, j->sessions, j->n_sessions, write_counted, &cw);
		if (j->rc)
			snapfile_abort(cw.w);
		else
			j->rc = snapfile_commit(cw.w);
	}
	j->oldest_kept_zxid = -1;
	if (j->rc == 0 && j->purge) {
		int rc = snapfile_retain(j->dir, j->retain, &j->oldest_kept_zxid);
		if (rc < 0)
			log_warn("snapshot retention in %s: %s", j->dir, strerror(-rc));
	}
	atomic_store_explicit(&j->done, true, memory_order_release);
	return NULL;
}

static int64_t mono_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ZooKeeper spreads snapshots: the next one comes after snapCount/2 plus
 * a random share of another snapCount/2 txns. */
static void schedule_next_snapshot(struct sequencer *seq)
{
	int64_t half = seq->cfg.snap_count / 2 > 0 ? seq->cfg.snap_count / 2 : 1;
	seq->snap_txns = 0;
	seq->snap_txns_due = (uint64_t)(half + (int64_t)(random() % half));
}

static void snapshot_start(struct sequencer *seq)
{
	bool by_size = seq->cfg.snap_bytes_limit > 0 &&
		       seq->snap_log_bytes >= (uint64_t)seq->cfg.snap_bytes_limit;
	if (!seq->cfg.snap_dir || !seq->cfg.snap_dir[0] || seq->snap ||
	    (seq->snap_txns < seq->snap_txns_due && !by_size))
		return;
	struct snap_job *j = calloc(1, sizeof *j);
	if (!j)
		return;
	struct session_list l = {0};
	sessions_published(seq, &l);
	j->version = tree_acquire(seq->tree);
	j->sessions = l.v;
	j->n_sessions = l.n;
	j->zxid = j->version->zxid;
	j->retain = (unsigned)seq->cfg.snap_retain_count;
	j->purge = seq->cfg.snap_purge;
	j->started_ms = mono_now_ms();
	snprintf(j->dir, sizeof j->dir, "%s", seq->cfg.snap_dir);
	atomic_init(&j->done, false);
	/* Hold the version against reclamation before the thread reads it. */
	atomic_store_explicit(&seq->snap_gen, j->version->gen, memory_order_release);
	if (pthread_create(&j->thread, NULL, snap_main, j)) {
		log_warn("cannot start the snapshot thread; will retry");
		atomic_store(&seq->snap_gen, UINT64_MAX);
		free(j->sessions);
		free(j);
		return;
	}
	seq->snap = j;
	seq->snap_log_bytes = 0;
	schedule_next_snapshot(seq);
}

/* Reap a finished snapshot: log it, drop the log files it covers. */
static void snapshot_reap(struct sequencer *seq, bool wait)
{
	struct snap_job *j = seq->snap;
	if (!j || (!wait && !atomic_load_explicit(&j->done, memory_order_acquire)))
		return;
	pthread_join(j->thread, NULL);
	atomic_store_explicit(&seq->snap_gen, UINT64_MAX, memory_order_release);
	int64_t ms = mono_now_ms() - j->started_ms;
	if (j->rc) {
		log_error("snapshot at zxid 0x%lx failed: %s", (long)j->zxid, strerror(-j->rc));
	} else {
		log_info("snapshot at zxid 0x%lx: %zu sessions, %lu bytes in %ld ms", (long)j->zxid,
			 j->n_sessions, (unsigned long)j->bytes, (long)ms);
		atomic_store(&seq->stats.snap_zxid, j->zxid);
		atomic_store(&seq->stats.snap_duration_ms, (uint64_t)ms);
		atomic_store(&seq->stats.snap_bytes, j->bytes);
		if (seq->cfg.snapshot_done)
			seq->cfg.snapshot_done(seq->cfg.repl_ctx, j->zxid);
		if (j->oldest_kept_zxid >= 0) {
			int rc = seq->storage->ops->purge_before(seq->storage, j->oldest_kept_zxid);
			if (rc > 0)
				log_info("purged %d txn log file(s) before zxid 0x%lx", rc,
					 (long)j->oldest_kept_zxid);
		}
	}
	free(j->sessions);
	free(j);
	seq->snap = NULL;
}

/* ---- requests ---- */

static void reply_error(struct sequencer *seq, const struct seq_msg *m, int32_t err)
{
	size_t at = dlv_begin(seq, m->core, DLV_REPLY, m->conn_ref, m->session_id, 0);
	dlv_stamp(seq, m, at);
	struct jute_out *d = deliveries_of(seq, m->core);
	size_t f = proto_reply_begin(d, m->xid, seq->sm.zxid, err);
	proto_frame_end(d, f);
	dlv_end(seq, m->core, at);
}

static struct session *owned_session(struct sequencer *seq, const struct seq_msg *m, int32_t *err)
{
	struct session *s = session_find(seq->sessions, m->session_id);
	*err = ZOK;
	if (!s || s->closing)
		*err = ZSESSIONEXPIRED;
	else if (s->owner_core != m->core)
		*err = ZSESSIONMOVED;
	return *err ? NULL : s;
}

static void handle_write(struct sequencer *seq, const struct seq_msg *m, int64_t now_ms)
{
	int32_t err;
	struct session *s = owned_session(seq, m, &err);
	if (!s) {
		reply_error(seq, m, err);
		return;
	}
	session_touch(seq->sessions, s, now_ms);
	if (atomic_load_explicit(&seq->stats.storage_failed, memory_order_relaxed)) {
		/* The log failed: nothing more can be made durable, so no write
		 * is applied or acknowledged until an operator restarts us. */
		reply_error(seq, m, ZSYSTEMERROR);
		atomic_fetch_add_explicit(&seq->stats.writes, 1, memory_order_relaxed);
		return;
	}
	struct sm_sink sink = {.event = on_event, .ctx = seq};
	size_t at = dlv_begin(seq, m->core, DLV_REPLY, m->conn_ref, m->session_id, 0);
	dlv_stamp(seq, m, at);
	sm_write(&seq->sm, s, m->xid, m->op, m->body, m->len, seq->wall_ms,
		 deliveries_of(seq, m->core), &sink);
	dlv_end(seq, m->core, at);
	atomic_fetch_add_explicit(&seq->stats.writes, 1, memory_order_relaxed);
}

static void put_connect_response(struct jute_out *d, int32_t timeout_ms, uint64_t id,
				 const uint8_t *passwd, bool read_only_flag)
{
	static const uint8_t zero[ZK_PASSWORD_BYTES];
	size_t f = d->len;
	jute_put_int(d, 0);
	jute_put_int(d, 0); /* protocolVersion */
	jute_put_int(d, timeout_ms);
	jute_put_long(d, (int64_t)id);
	jute_put_buffer(d, passwd ? passwd : zero, ZK_PASSWORD_BYTES);
	if (read_only_flag)
		jute_put_bool(d, false); /* readOnly */
	proto_frame_end(d, f);
}

static void kill_session_conn(struct sequencer *seq, int core, uint64_t id, uint32_t keep_ref)
{
	size_t at = dlv_begin(seq, core, DLV_KILL, keep_ref, id, 0);
	dlv_end(seq, core, at);
}

static void reset_auth(struct session *s, const struct seq_msg *m)
{
	acl_auth_clear(&s->auth);
	acl_auth_init(&s->auth);
	/* body: 16-byte password, then the connection's ip id. */
	if (m->len > ZK_PASSWORD_BYTES)
		acl_auth_add(&s->auth, ACL_SCHEME_IP, (const char *)m->body + ZK_PASSWORD_BYTES);
}

static void handle_connect(struct sequencer *seq, const struct seq_msg *m, int64_t now_ms)
{
	int32_t t = m->timeout_ms;
	if (t < seq->cfg.min_session_timeout_ms)
		t = seq->cfg.min_session_timeout_ms;
	if (t > seq->cfg.max_session_timeout_ms)
		t = seq->cfg.max_session_timeout_ms;
	struct jute_out *d;
	size_t at;
	if (m->zxid_seen > seq->sm.zxid) {
		log_write(LOG_LEVEL_WARN, m->session_id,
			  "refusing session request: client has seen zxid 0x%lx, our last zxid "
			  "is 0x%lx",
			  (long)m->zxid_seen, (long)seq->sm.zxid);
		at = dlv_begin(seq, m->core, DLV_CONNECTED, m->conn_ref, 0, 0);
		dlv_end(seq, m->core, at);
		return;
	}
	struct session *s;
	if (m->session_id == 0) {
		s = sm_open_session(&seq->sm, t, m->core, now_ms);
		if (s)
			sev_push(seq, true, s);
		if (!s) {
			log_error("cannot open a session: out of memory");
			at = dlv_begin(seq, m->core, DLV_CONNECTED, m->conn_ref, 0, 0);
			dlv_end(seq, m->core, at);
			return;
		}
		reset_auth(s, m);
	} else {
		s = session_find(seq->sessions, m->session_id);
		if (!s || s->closing || m->len < ZK_PASSWORD_BYTES ||
		    memcmp(s->passwd, m->body, ZK_PASSWORD_BYTES) != 0) {
			at = dlv_begin(seq, m->core, DLV_CONNECTED, m->conn_ref, 0, 0);
			put_connect_response(deliveries_of(seq, m->core), 0, 0, NULL, m->op);
			dlv_end(seq, m->core, at);
			return;
		}
		/* The old connection, wherever it is, gives way. */
		kill_session_conn(seq, s->owner_core, s->id, m->conn_ref);
		s->owner_core = m->core;
		s->timeout_ms = t;
		session_touch(seq->sessions, s, now_ms);
		reset_auth(s, m);
	}
	at = dlv_begin(seq, m->core, DLV_CONNECTED, m->conn_ref, s->id, t);
	d = deliveries_of(seq, m->core);
	put_connect_response(d, t, s->id, s->passwd, m->op);
	dlv_end(seq, m->core, at);
}

static void handle_close(struct sequencer *seq, const struct seq_msg *m, int64_t now_ms)
{
	int32_t err;
	struct session *s = owned_session(seq, m, &err);
	int64_t zxid = seq->sm.zxid;
	if (s) {
		struct sm_sink sink = {.event = on_event, .ctx = seq};
		sev_push(seq, false, s);
		zxid = sm_close_session(&seq->sm, s, seq->wall_ms, &sink);
		log_write(LOG_LEVEL_INFO, m->session_id, "session closed by client");
		err = ZOK;
	}
	size_t at = dlv_begin(seq, m->core, DLV_CLOSE, m->conn_ref, m->session_id, 0);
	dlv_stamp(seq, m, at);
	struct jute_out *d = deliveries_of(seq, m->core);
	size_t f = proto_reply_begin(d, m->xid, zxid, err);
	proto_frame_end(d, f);
	dlv_end(seq, m->core, at);
}

static void handle_auth(struct sequencer *seq, const struct seq_msg *m)
{
	struct session *s = session_find(seq->sessions, m->session_id);
	if (!s || m->len < 2 || m->body[m->len - 1] != 0)
		return;
	const char *scheme = (const char *)m->body;
	size_t sl = strlen(scheme);
	if (sl + 1 >= m->len)
		return;
	acl_auth_add(&s->auth, scheme, scheme + sl + 1);
}

static void handle_touch(struct sequencer *seq, const struct seq_msg *m, int64_t now_ms)
{
	for (uint32_t off = 0; off + 8 <= m->len; off += 8) {
		uint64_t id;
		memcpy(&id, m->body + off, 8);
		struct session *s = session_find(seq->sessions, id);
		if (s && s->owner_core == m->core)
			session_touch(seq->sessions, s, now_ms);
	}
}

/* ---- ensemble: followers forward, the leader answers through them ---- */

/* Forwarded request (jute): int kind, int core, int conn_ref, long session,
 * int xid, int op, int timeout_ms, long zxid_seen, long received_us,
 * buffer body. */
static int forward_msg(struct sequencer *seq, const struct seq_msg *m)
{
	struct jute_out o;
	jute_out_init(&o, 64 + m->len, SIZE_MAX / 2);
	jute_put_int(&o, (int32_t)m->kind);
	jute_put_int(&o, m->core);
	jute_put_int(&o, (int32_t)m->conn_ref);
	jute_put_long(&o, (int64_t)m->session_id);
	jute_put_int(&o, m->xid);
	jute_put_int(&o, m->op);
	jute_put_int(&o, m->timeout_ms);
	jute_put_long(&o, m->zxid_seen);
	jute_put_long(&o, m->received_us);
	jute_put_buffer(&o, m->body, (int32_t)m->len);
	int rc = o.err ? o.err : seq->cfg.forward(seq->cfg.repl_ctx, o.buf, o.len);
	jute_out_free(&o);
	return rc;
}

/* Not serving (or the leader is out of reach): the client goes elsewhere. */
static void refuse_msg(struct sequencer *seq, const struct seq_msg *m)
{
	size_t at;
	switch (m->kind) {
	case SEQ_CONNECT:
		at = dlv_begin(seq, m->core, DLV_CONNECTED, m->conn_ref, 0, 0);
		dlv_end(seq, m->core, at);
		break;
	case SEQ_WRITE:
	case SEQ_CLOSE: {
		at = dlv_begin(seq, m->core, DLV_CLOSE, m->conn_ref, m->session_id, 0);
		dlv_stamp(seq, m, at);
		struct jute_out *d = deliveries_of(seq, m->core);
		size_t f = proto_reply_begin(d, m->xid, seq->sm.zxid, ZCONNECTIONLOSS);
		proto_frame_end(d, f);
		dlv_end(seq, m->core, at);
		break;
	}
	default:
		break;
	}
}

static void follower_msg(struct sequencer *seq, struct seq_msg *m)
{
	if (m->kind == SEQ_CONNECT && m->zxid_seen > seq->sm.zxid) {
		log_write(LOG_LEVEL_WARN, m->session_id,
			  "refusing session request: client has seen zxid 0x%lx, we are at 0x%lx",
			  (long)m->zxid_seen, (long)seq->sm.zxid);
		refuse_msg(seq, m);
	} else if (forward_msg(seq, m)) {
		refuse_msg(seq, m);
	}
	free(m);
}

static void handle_msg(struct sequencer *seq, struct seq_msg *m, int64_t now_ms)
{
	if (seq->role == SEQ_FOLLOWER)
		return follower_msg(seq, m);
	if (seq->role == SEQ_NOT_SERVING) {
		refuse_msg(seq, m);
		free(m);
		return;
	}
	switch (m->kind) {
	case SEQ_WRITE:
		handle_write(seq, m, now_ms);
		break;
	case SEQ_CONNECT:
		handle_connect(seq, m, now_ms);
		break;
	case SEQ_CLOSE:
		handle_close(seq, m, now_ms);
		break;
	case SEQ_AUTH:
		handle_auth(seq, m);
		break;
	case SEQ_TOUCH:
		handle_touch(seq, m, now_ms);
		break;
	case SEQ_MSG_KIND_COUNT:
		RK_ASSERT(!"bad seq_msg kind");
	}
	free(m);
}

bool sequencer_run(struct sequencer *seq, int64_t now_ms)
{
	snapshot_reap(seq, false);
	complete_durable(seq);
	if (!can_take_batch(seq))
		return false;
	batch_begin(seq);
	bool did = false;
	for (size_t n = 0;
	     n < DRAIN_PER_CORE_MAX && seq->inbox.len && seq->batch_bytes < BATCH_BYTES_MAX; n++) {
		struct seq_msg *m = seq->inbox.v[seq->inbox.head];
		seq->inbox.head = (seq->inbox.head + 1) % INBOX_MAX;
		seq->inbox.len--;
		handle_msg(seq, m, now_ms);
		did = true;
	}
	for (int i = 0; i < seq->cfg.cores; i++) {
		struct seq_msg *m;
		for (int n = 0; n < DRAIN_PER_CORE_MAX && seq->batch_bytes < BATCH_BYTES_MAX &&
				(m = spsc_pop(seq->cores[i].in));
		     n++) {
			handle_msg(seq, m, now_ms);
			did = true;
		}
	}
	batch_end(seq);
	return did;
}

struct expire_ctx {
	struct sequencer *seq;
	int64_t now_ms;
};

static void expire_one(void *ctx, struct session *s)
{
	struct expire_ctx *e = ctx;
	struct sequencer *seq = e->seq;
	log_write(LOG_LEVEL_INFO, s->id, "session expired after %d ms without contact",
		  s->timeout_ms);
	int core = s->owner_core;
	uint64_t id = s->id;
	struct sm_sink sink = {.event = on_event, .ctx = seq};
	sev_push(seq, false, s);
	sm_close_session(&seq->sm, s, seq->wall_ms, &sink);
	kill_session_conn(seq, core, id, 0);
}

/* ---- containers and TTL nodes ---- */

struct sweep {
	int64_t wall_ms;
	size_t max;
	char **paths;
	size_t n;
};

static int sweep_visit(void *ctx, const void *key, size_t len, void *val)
{
	struct sweep *w = ctx;
	const struct znode *n = val;
	int64_t ttl;
	int64_t owner = n->stat.ephemeral_owner;
	if (n->stat.num_children != 0)
		return 0;
	/* ZooKeeper deletes a container once it has had children and has none
	 * left, and a TTL node once it went unmodified for its TTL. */
	bool doomed = (txn_owner_is_container(owner) && n->stat.cversion > 0) ||
		      (txn_owner_ttl(owner, &ttl) && w->wall_ms - n->stat.mtime > ttl);
	if (!doomed)
		return 0;
	char *p = malloc(len + 1);
	if (!p)
		return 1;
	memcpy(p, key, len);
	p[len] = 0;
	w->paths[w->n++] = p;
	return w->n >= w->max;
}

/* Delete what the sweep found with deleteContainer requests of the system
 * session, through the state machine like any write: logged, watched. */
static void sweep_containers(struct sequencer *seq, int64_t now_ms)
{
	if (seq->cfg.container_check_interval_ms <= 0 || now_ms < seq->container_next_ms)
		return;
	seq->container_next_ms = now_ms + seq->cfg.container_check_interval_ms;
	size_t max = (size_t)((int64_t)seq->cfg.container_max_per_minute *
			      seq->cfg.container_check_interval_ms / 60000);
	struct sweep w = {.wall_ms = seq->wall_ms, .max = max ? max : 1};
	w.paths = calloc(w.max, sizeof *w.paths);
	if (!w.paths)
		return;
	hamt_foreach(&tree_working(seq->tree)->nodes, sweep_visit, &w);
	struct jute_out body, reply;
	jute_out_init(&body, 256, SIZE_MAX / 2);
	jute_out_init(&reply, 256, SIZE_MAX / 2);
	struct sm_sink sink = {.event = on_event, .ctx = seq};
	for (size_t i = 0; i < w.n; i++) {
		jute_out_reset(&body);
		jute_out_reset(&reply);
		jute_put_cstr(&body, w.paths[i]);
		jute_put_int(&body, -1);
		sm_write(&seq->sm, &seq->system, 0, ZOP_DELETE_CONTAINER, body.buf, body.len,
			 seq->wall_ms, &reply, &sink);
		free(w.paths[i]);
	}
	if (w.n)
		log_info("deleted %zu empty container(s) and expired TTL node(s)", w.n);
	jute_out_free(&body);
	jute_out_free(&reply);
	free(w.paths);
}

void sequencer_tick(struct sequencer *seq, int64_t now_ms)
{
	snapshot_reap(seq, false);
	if (!can_take_batch(seq))
		return;
	batch_begin(seq);
	/* Only the server that orders writes decides expiry and clean-up. */
	if (seq->role == SEQ_STANDALONE || seq->role == SEQ_LEADER) {
		struct expire_ctx e = {seq, now_ms};
		session_foreach_expired(seq->sessions, now_ms, expire_one, &e);
		if (!atomic_load_explicit(&seq->stats.storage_failed, memory_order_relaxed))
			sweep_containers(seq, now_ms);
	}
	batch_end(seq);
}

int sequencer_replay(void *ctx, int64_t zxid, uint32_t type, const void *payload, uint32_t len)
{
	struct sequencer *seq = ctx;
	int64_t snap = atomic_load(&seq->stats.snap_zxid);
	if (zxid <= snap)
		return 0; /* the snapshot has it */
	if (seq->sm.zxid == snap && snap > 0 && zxid != snap + 1 && (zxid >> 32) == (snap >> 32)) {
		log_error("the txn log resumes at zxid 0x%lx but the snapshot ends at 0x%lx: "
			  "txns are missing",
			  (long)zxid, (long)snap);
		return -EBADMSG;
	}
	int rc = sm_replay(&seq->sm, zxid, type, payload, len);
	if (rc)
		log_error("txn 0x%lx (type %u, %u bytes) does not apply to the recovered state",
			  (long)zxid, type, len);
	return rc;
}

static void restart_timeout(void *ctx, struct session *s)
{
	struct expire_ctx *e = ctx;
	session_touch(e->seq->sessions, s, e->now_ms);
}

void sequencer_attach_storage(struct sequencer *seq, struct storage *st, int64_t now_ms)
{
	seq->storage->ops->close(seq->storage);
	seq->storage = st;
	struct expire_ctx e = {seq, now_ms};
	session_foreach(seq->sessions, restart_timeout, &e);
	tree_publish(seq->tree);
	seq->zxid_published = seq->zxid_frozen = seq->sm.zxid;
	schedule_next_snapshot(seq);
	/* A crash between a snapshot and its clean-up leaves extra files. */
	if (seq->cfg.snap_purge && seq->cfg.snap_dir && seq->cfg.snap_dir[0]) {
		int64_t oldest = -1;
		if (snapfile_retain(seq->cfg.snap_dir, (unsigned)seq->cfg.snap_retain_count,
				    &oldest) >= 0 &&
		    oldest >= 0)
			st->ops->purge_before(st, oldest);
	}
	atomic_store(&seq->stats.zxid_durable, seq->sm.zxid);
	update_stats(seq);
	log_info("recovered %zu znodes and %zu sessions up to zxid 0x%lx",
		 tree_node_count(tree_acquire(seq->tree)), session_count(seq->sessions),
		 (long)seq->sm.zxid);
}

int sequencer_wait_fd(struct sequencer *seq)
{
	return seq->storage->ops->wait_fd(seq->storage);
}

int sequencer_load_snapshot(struct sequencer *seq, char *err, size_t errlen)
{
	atomic_store(&seq->stats.snap_zxid, 0);
	if (!seq->cfg.snap_dir || !seq->cfg.snap_dir[0])
		return 0;
	struct snapfile_image img = {0};
	int rc = snapfile_load(seq->cfg.snap_dir, &img);
	if (rc) {
		snprintf(err, errlen, "cannot read snapshots in %s: %s", seq->cfg.snap_dir,
			 strerror(-rc));
		return rc;
	}
	if (!img.file) {
		if (img.skipped) {
			snprintf(err, errlen,
				 "no snapshot in %s verifies (%u tried); refusing to start from "
				 "an empty tree",
				 seq->cfg.snap_dir, img.skipped);
			return -EBADMSG;
		}
		return 0;
	}
	int64_t zxid = 0;
	struct snap_fault fault = {0};
	rc =
	    snapshot_decode_report(img.body, img.body_len, seq->tree, seq->sessions, &zxid, &fault);
	if (rc) {
		snprintf(err, errlen, "snapshot %s/%s is inconsistent at body offset %zu: %s",
			 seq->cfg.snap_dir, img.name, fault.off, fault.what ? fault.what : "?");
		snapfile_image_free(&img);
		return rc;
	}
	seq->sm.zxid = zxid;
	atomic_store(&seq->stats.snap_zxid, zxid);
	log_info("loaded snapshot %s/%s at zxid 0x%lx", seq->cfg.snap_dir, img.name, (long)zxid);
	snapfile_image_free(&img);
	return 0;
}

/* ---- ensemble entry points ---- */

enum seq_role sequencer_role(const struct sequencer *seq)
{
	return seq->role;
}

int64_t sequencer_zxid(const struct sequencer *seq)
{
	return seq->sm.zxid;
}

void sequencer_foreach_session(struct sequencer *seq, void (*fn)(void *ctx, struct session *s),
			       void *ctx)
{
	session_foreach(seq->sessions, fn, ctx);
}

struct sequencer_stats *sequencer_stats_mut(struct sequencer *seq)
{
	return &seq->stats;
}

void sequencer_set_role(struct sequencer *seq, enum seq_role role, int64_t zxid_floor,
			int64_t now_ms)
{
	if (role == SEQ_NOT_SERVING && seq->role != SEQ_NOT_SERVING) {
		batch_begin(seq);
		seq->kill_all = true;
	}
	if (role == SEQ_LEADER) {
		if (seq->sm.zxid < zxid_floor)
			seq->sm.zxid = zxid_floor;
		/* As after a restart: every client gets a full timeout to find
		 * us before its session expires. */
		struct expire_ctx e = {seq, now_ms};
		session_foreach(seq->sessions, restart_timeout, &e);
		seq->container_next_ms = now_ms + seq->cfg.container_check_interval_ms;
	}
	seq->role = role;
	atomic_store(&seq->stats.role, (int)role);
}

int sequencer_apply(struct sequencer *seq, int64_t zxid, uint32_t type, const void *payload,
		    uint32_t len)
{
	batch_begin(seq);
	struct jute_in in = jute_in_make(payload, len);
	jute_get_long(&in); /* time */
	int64_t id = jute_get_long(&in);
	struct session *s = NULL;
	if (type == TXN_CLOSE_SESSION && (s = session_find(seq->sessions, (uint64_t)id)))
		sev_push(seq, false, s);
	struct sm_sink sink = {.event = on_event, .ctx = seq};
	int rc = sm_apply(&seq->sm, zxid, type, payload, len, &sink);
	if (rc) {
		log_error("committed txn 0x%lx (type %u) does not apply here: %d", (long)zxid, type,
			  rc);
		return rc;
	}
	if (type == TXN_CREATE_SESSION && (s = session_find(seq->sessions, (uint64_t)id)))
		sev_push(seq, true, s);
	seq->batch_txns++;
	return 0;
}

int sequencer_inject(struct sequencer *seq, uint32_t sid, const void *buf, size_t len)
{
	struct jute_in in = jute_in_make(buf, len);
	int32_t kind = jute_get_int(&in);
	int32_t core = jute_get_int(&in);
	struct seq_msg h = {.kind = (enum seq_msg_kind)kind};
	h.conn_ref = (uint32_t)jute_get_int(&in);
	h.session_id = (uint64_t)jute_get_long(&in);
	h.xid = jute_get_int(&in);
	h.op = jute_get_int(&in);
	h.timeout_ms = jute_get_int(&in);
	h.zxid_seen = jute_get_long(&in);
	h.received_us = jute_get_long(&in);
	const uint8_t *body;
	int32_t blen;
	jute_get_buffer(&in, &body, &blen);
	if (in.err || kind < 0 || kind >= SEQ_MSG_KIND_COUNT || core < 0 || core > 127 ||
	    sid >= SIDS)
		return -EBADMSG;
	if (seq->inbox.len >= INBOX_MAX) {
		log_write(LOG_LEVEL_WARN, h.session_id,
			  "dropping a request forwarded by server %u: %u requests wait", sid,
			  INBOX_MAX);
		return -ENOBUFS;
	}
	size_t n = blen > 0 ? (size_t)blen : 0;
	struct seq_msg *m = malloc(sizeof *m + n);
	if (!m)
		return -ENOMEM;
	*m = h;
	m->core = SEQ_REMOTE_CORE(sid, core);
	m->len = (uint32_t)n;
	memcpy(m->body, body, n);
	seq->inbox.v[(seq->inbox.head + seq->inbox.len++) % INBOX_MAX] = m;
	return 0;
}

void sequencer_remote_replies(struct sequencer *seq, const void *buf, size_t len)
{
	batch_begin(seq);
	const uint8_t *p = buf;
	for (size_t off = 0; off + sizeof(struct delivery) <= len;) {
		struct delivery h;
		memcpy(&h, p + off, sizeof h);
		size_t rec = (sizeof h + h.len + 7) & ~(size_t)7;
		if (h.len > len - off - sizeof h)
			break;
		int core = SEQ_REMOTE_LOCAL(h.core);
		if (core < seq->cfg.cores) {
			h.core = (uint16_t)core;
			size_t at = dlv_begin(seq, core, (enum delivery_kind)h.kind, h.conn_ref,
					      h.session_id, h.timeout_ms);
			struct jute_out *d = deliveries_of(seq, core);
			((struct delivery *)(d->buf + at))->received_us = h.received_us;
			memcpy(jute_reserve(d, h.len), p + off + sizeof h, h.len);
			dlv_end(seq, core, at);
		}
		off += rec > len - off ? len - off : rec;
	}
}
