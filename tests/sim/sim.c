/* The deterministic simulator (see sim.h and docs/simulator.md): fake
 * network, disks and clock around real engines, a host state machine per
 * server, fault injection and the invariant checker. Everything happens in
 * events popped from one queue ordered by (time, sequence number), and
 * every random choice comes from one PRNG seeded by the config. */
#include "tests/sim/sim.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "consensus/zab.h"
#include "core/log.h"

#define SERVERS_MAX	   (SIM_VOTERS_MAX + 1) /* and one observer */
#define TICK_EVERY_MS	   9			/* < finalize_ms / 2 even on a clock 3% fast */
#define EVENTS_MAX	   4096			/* queue bound; a run needs ~100 */
#define CHANNEL_FRAMES_MAX 4096			/* a fuller channel is a dead connection */
#define FRAME_BYTES_MAX	   (64u << 20)
#define LOG_RECS_MAX	   (1u << 20)
#define REPLIES_MAX	   64	  /* leader's queue of replies to forwarded tokens */
#define EPOCHS_MAX	   100000 /* no run gets near: more is a runaway engine */
#define SNAPS_KEPT	   3	  /* snapRetainCount's default */
#define TRACE_TAIL	   40	  /* events in a failure report, and frames delivered */
#define FRAMES_TAIL	   16
#define BATCH_MAX	   16
#define PAYLOAD_MAX	   4096
#define HEAL_AT_PCT	   70 /* faults stop, the network heals */
#define QUIET_AT_PCT	   90 /* leaders stop proposing */

/* ---- PRNG: xoshiro256**, seeded through splitmix64 ---- */

struct rng {
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

/* Uniform in [lo, hi]. */
static int64_t rng_range(struct rng *r, int64_t lo, int64_t hi)
{
	uint64_t span = (uint64_t)(hi - lo) + 1;
	return span ? lo + (int64_t)(rng_next(r) % span) : (int64_t)rng_next(r);
}

static bool rng_ppm(struct rng *r, uint32_t ppm)
{
	return rng_next(r) % 1000000 < ppm;
}

static int64_t rng_pick(struct rng *r, const int64_t *v, size_t n)
{
	return v[rng_next(r) % n];
}

#define PICK(r, ...)                                                                               \
	rng_pick((r), (const int64_t[]){__VA_ARGS__},                                              \
		 sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t))

/* ---- structures ---- */

enum ev_kind {
	EV_STEP = 0,  /* global: faults, connections, workload, checks */
	EV_TICK,      /* zab_tick on server a */
	EV_DELIVER,   /* the head frame of channel a -> b */
	EV_FLUSH,     /* server a's log is durable up to lsn arg (incarnation inc) */
	EV_BOOT,      /* server a (incarnation inc) comes back up */
	EV_RESTART,   /* server a asked to restart: crash it, boot it soon */
	EV_PEER_DOWN, /* tell a and b that their connection (gen arg) is gone */
	EV_KIND_COUNT,
};

struct event {
	int64_t at_ms;
	uint64_t seq;
	int64_t arg;
	uint32_t inc;
	uint8_t kind, a, b;
};

struct heap {
	struct event v[EVENTS_MAX];
	size_t n;
	uint64_t seq;
};

struct frame {
	struct frame *next;
	int64_t ready_ms;
	size_t len;
	uint8_t data[];
};

/* One direction of a connection: FIFO, like TCP. */
struct channel {
	struct frame *head, *tail;
	size_t n;
	bool scheduled; /* an EV_DELIVER is queued */
};

enum conn_state {
	CONN_DOWN = 0, /* both sides know; may reconnect after retry_ms */
	CONN_CLOSING,  /* gone, EV_PEER_DOWN not yet delivered */
	CONN_UP,       /* both sides were told zab_peer_up */
	CONN_STATE_COUNT,
};

/* Per unordered pair, stored at [min][max]. */
struct conn {
	enum conn_state st;
	uint32_t gen;
	int64_t retry_ms;
	int64_t cut_until_ms;
	bool cut; /* partitioned: frames stall, no new connection */
};

struct drec {
	int64_t zxid;
	uint64_t lsn;
	uint32_t type, len;
	uint8_t *payload;
};

struct snap {
	uint8_t *buf;
	size_t len;
	int64_t zxid;
};

/* A server's disk: the log (durable prefix first), epochs, and the newest
 * SNAPS_KEPT snapshots. As the real server: snapshots beyond their count
 * and the log before the oldest kept one are purged; a truncation removes
 * the snapshots above it; installing the leader's snapshot empties the
 * log. */
struct disk {
	struct drec *log;
	size_t n, cap, durable_n;
	uint64_t lsn_next;
	int64_t flush_last_ms; /* flushes complete in order */
	int64_t log_base;      /* records at or below were purged */
	uint32_t accepted_epoch, current_epoch;
	struct snap snaps[SNAPS_KEPT]; /* by zxid, oldest first */
	size_t n_snaps;
	uint8_t *lent;	   /* the bytes snap_read handed out, valid until its next call */
	bool lent_dropped; /* ... which are no snapshot any more: freed then */
};

/* One applied record: the state machine is the applied sequence. */
struct entry {
	int64_t zxid;
	uint64_t phash; /* of type and payload */
	uint64_t chain; /* hash of the sequence up to here */
};

struct host {
	struct entry *e;
	size_t n, cap;
	bool stale; /* log truncated below it, or snapshot installed: restart due */
	/* The engine's last state_changed. */
	enum zab_state st;
	uint32_t leader, epoch;
	bool serving;
	uint32_t established; /* epoch this incarnation became serving leader in */
	/* Leader: the engine's commit zxid at the last look. */
	uint32_t commit_epoch;
	int64_t commit_zxid;
	uint64_t fwd_next;
	uint64_t replies[REPLIES_MAX][2]; /* to sid, token */
	size_t n_replies;
};

struct server {
	struct sim *sim;
	uint8_t idx;
	uint32_t sid;
	bool observer;
	bool up, restart_pending;
	uint32_t inc; /* incarnation: bumps at every crash */
	int64_t clock_offset_ms;
	int32_t drift_ppm;
	struct zab *z;
	struct zab_env env; /* sim_env with ctx = this server */
	struct disk disk;
	struct host host;
};

/* Per-seed fault and workload rates (swarm testing). */
struct knobs {
	int64_t latency_min_ms, latency_max_ms;
	int64_t durable_max_ms;
	uint32_t crash_ppm, reset_ppm, partition_ppm, frame_fault_ppm; /* per step */
	int64_t down_max_ms, partition_max_ms;
	uint32_t propose_ppm, snapshot_ppm, forward_ppm;
	int64_t batch_max, payload_max;
};

struct seq {
	struct entry *e;
	size_t n, cap;
};

enum tr_kind {
	TR_SEND = 0,   /* a -> b: x bytes, y frame type */
	TR_RECV,       /* a -> b delivered: x bytes, y frame type */
	TR_FAULT,      /* a -> b: x = 0 dropped, 1 duplicated, 2 swapped */
	TR_UP,	       /* connection a - b up */
	TR_DOWN,       /* connection a - b down: x = enum down_why */
	TR_CUT,	       /* a - b partitioned for x ms */
	TR_HEAL,       /* a - b partition over */
	TR_CRASH,      /* a crashed: x unsynced records lost, y = 1 if asked */
	TR_BOOT,       /* a booted: x = last zxid, y = snapshot zxid */
	TR_RESTART,    /* a's engine asked to restart (note: why) */
	TR_STATE,      /* a: b = state, x = leader << 32 | epoch, y = serving */
	TR_APPEND,     /* a: x = first zxid, y = records */
	TR_DURABLE,    /* a: x = zxid */
	TR_TRUNCATE,   /* a: x = zxid */
	TR_APPLY,      /* a: x = zxid */
	TR_PROPOSE,    /* a: x = first zxid, y = records */
	TR_COMMIT,     /* a (leader): x = commit zxid */
	TR_EPOCHS,     /* a: x = accepted, y = current */
	TR_SNAPSHOT,   /* a: x = zxid */
	TR_INSTALL,    /* a: x = zxid, y = bytes */
	TR_DISCONNECT, /* a's engine dropped b */
	TR_PHASE,      /* x = 1 faults stop, 2 proposals stop */
	TR_KIND_COUNT,
};

enum down_why {
	DOWN_FAULT = 0, /* injected reset */
	DOWN_ASKED,	/* env->disconnect */
	DOWN_CRASH,	/* an end crashed */
	DOWN_CUT,	/* a partition that resets connections */
	DOWN_OVERFLOW,	/* channel bound */
	DOWN_WHY_COUNT,
};

struct trace_ent {
	int64_t t_ms;
	int64_t x, y;
	uint8_t kind, a, b;
	char note[56];
};

struct sim {
	struct sim_config cfg;
	struct sim_result *res;
	struct rng rng;
	struct knobs k;
	int64_t now_ms;
	int step, heal_step, quiet_step;
	bool stop;
	size_t n;
	struct server srv[SERVERS_MAX];
	struct zab_member members[SERVERS_MAX];
	struct conn conn[SERVERS_MAX][SERVERS_MAX];
	bool told_up[SERVERS_MAX][SERVERS_MAX]; /* [x][y]: x's engine has y up */
	struct channel chan[SERVERS_MAX][SERVERS_MAX];
	struct heap heap;
	struct seq canon;      /* every record known committed, in order */
	uint32_t *est_sid;     /* per epoch: the leader established in it */
	int64_t *epoch_commit; /* per epoch: the highest commit zxid its leader had */
	size_t epochs_cap;
	uint32_t est_last;  /* the newest established epoch */
	int64_t commit_max; /* over every leader's commit zxid */
	struct trace_ent tail[TRACE_TAIL], frames[FRAMES_TAIL];
	uint64_t n_trace, n_frames;
	uint8_t scratch[BATCH_MAX * PAYLOAD_MAX];
};

static const struct zab_env sim_env;
static void observe(struct server *s);

/* ---- failure and trace ---- */

static const char *const verdict_names[] = {"pass", "SAFETY", "CONTRACT", "LIVENESS"};
_Static_assert(sizeof verdict_names / sizeof *verdict_names == SIM_VERDICT_COUNT, "names");

const char *sim_verdict_name(enum sim_verdict v)
{
	return v < SIM_VERDICT_COUNT ? verdict_names[v] : "?";
}

static const char *const policy_names[] = {"committed", "applied", "anytime"};
_Static_assert(sizeof policy_names / sizeof *policy_names == SIM_SNAP_POLICY_COUNT, "names");

const char *sim_snap_policy_name(enum sim_snap_policy p)
{
	return p < SIM_SNAP_POLICY_COUNT ? policy_names[p] : "?";
}

__attribute__((format(printf, 3, 4))) static void fail(struct sim *sim, enum sim_verdict v,
						       const char *fmt, ...)
{
	struct sim_result *res = sim->res;
	if (res->verdict != SIM_PASS)
		return;
	res->verdict = v;
	res->fail_ms = sim->now_ms;
	res->fail_step = sim->step;
	int off = snprintf(res->report, sizeof res->report,
			   "seed %" PRIu64 " (%d voters, %zu observer, %d steps): %s at %" PRId64
			   " ms (step %d): ",
			   sim->cfg.seed, sim->cfg.voters, sim->n - (size_t)sim->cfg.voters,
			   sim->cfg.steps, sim_verdict_name(v), sim->now_ms, sim->step);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->report + off, sizeof res->report - (size_t)off, fmt, ap);
	va_end(ap);
	sim->stop = true;
}

static const char *const state_names[] = {"looking", "following", "leading", "observing"};
_Static_assert(sizeof state_names / sizeof *state_names == ZAB_STATE_COUNT, "names");
static const char *const down_names[] = {"fault", "asked", "crash", "partition", "overflow"};
_Static_assert(sizeof down_names / sizeof *down_names == DOWN_WHY_COUNT, "names");

#define ZX(z) (uint32_t)((uint64_t)(z) >> 32), (uint32_t)(z)

static int trace_format(const struct trace_ent *t, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%8" PRId64 " ms  ", t->t_ms);
	char *p = buf + n;
	size_t left = size - (size_t)n;
	switch ((enum tr_kind)t->kind) {
	case TR_SEND:
		return n + snprintf(p, left, "s%u -> s%u send type %" PRId64 ", %" PRId64 " bytes",
				    t->a + 1, t->b + 1, t->y, t->x);
	case TR_RECV:
		return n + snprintf(p, left, "s%u -> s%u recv type %" PRId64 ", %" PRId64 " bytes",
				    t->a + 1, t->b + 1, t->y, t->x);
	case TR_FAULT:
		return n + snprintf(p, left, "s%u -> s%u frame %s", t->a + 1, t->b + 1,
				    t->x == 0	? "dropped"
				    : t->x == 1 ? "duplicated"
						: "swapped");
	case TR_UP:
		return n + snprintf(p, left, "s%u - s%u connected", t->a + 1, t->b + 1);
	case TR_DOWN:
		return n + snprintf(p, left, "s%u - s%u disconnected (%s)", t->a + 1, t->b + 1,
				    down_names[t->x]);
	case TR_CUT:
		return n + snprintf(p, left, "s%u - s%u partitioned for %" PRId64 " ms", t->a + 1,
				    t->b + 1, t->x);
	case TR_HEAL:
		return n + snprintf(p, left, "s%u - s%u partition healed", t->a + 1, t->b + 1);
	case TR_CRASH:
		return n + snprintf(p, left, "s%u %s, lost %" PRId64 " unsynced records", t->a + 1,
				    t->y ? "restarts" : "crashes", t->x);
	case TR_BOOT:
		return n + snprintf(p, left, "s%u boots: last %x:%x, snapshot %x:%x", t->a + 1,
				    ZX(t->x), ZX(t->y));
	case TR_RESTART:
		return n + snprintf(p, left, "s%u engine asks to restart: %s", t->a + 1, t->note);
	case TR_STATE:
		return n + snprintf(p, left, "s%u %s leader s%u epoch %u%s", t->a + 1,
				    t->b < ZAB_STATE_COUNT ? state_names[t->b] : "?",
				    (uint32_t)(t->x >> 32), (uint32_t)t->x, t->y ? " serving" : "");
	case TR_APPEND:
		return n + snprintf(p, left, "s%u log append %x:%x +%" PRId64, t->a + 1, ZX(t->x),
				    t->y);
	case TR_DURABLE:
		return n + snprintf(p, left, "s%u log durable %x:%x", t->a + 1, ZX(t->x));
	case TR_TRUNCATE:
		return n + snprintf(p, left, "s%u log truncate to %x:%x", t->a + 1, ZX(t->x));
	case TR_APPLY:
		return n + snprintf(p, left, "s%u apply %x:%x", t->a + 1, ZX(t->x));
	case TR_PROPOSE:
		return n +
		       snprintf(p, left, "s%u propose %x:%x +%" PRId64, t->a + 1, ZX(t->x), t->y);
	case TR_COMMIT:
		return n + snprintf(p, left, "s%u leader commit %x:%x", t->a + 1, ZX(t->x));
	case TR_EPOCHS:
		return n + snprintf(p, left, "s%u epochs accepted %" PRId64 " current %" PRId64,
				    t->a + 1, t->x, t->y);
	case TR_SNAPSHOT:
		return n + snprintf(p, left, "s%u snapshot at %x:%x", t->a + 1, ZX(t->x));
	case TR_INSTALL:
		return n + snprintf(p, left, "s%u installs the leader's snapshot at %x:%x",
				    t->a + 1, ZX(t->x));
	case TR_DISCONNECT:
		return n + snprintf(p, left, "s%u engine drops s%u", t->a + 1, t->b + 1);
	case TR_PHASE:
		return n + snprintf(p, left, "--- %s ---",
				    t->x == 1 ? "faults stop, network heals" : "proposals stop");
	case TR_KIND_COUNT:
		break;
	}
	return n + snprintf(p, left, "?");
}

static void trace_note(struct sim *sim, enum tr_kind kind, size_t a, size_t b, int64_t x, int64_t y,
		       const char *note)
{
	int64_t w[6] = {sim->now_ms, kind, (int64_t)a, (int64_t)b, x, y};
	sim->res->trace_hash = XXH3_64bits_withSeed(w, sizeof w, sim->res->trace_hash);
	struct trace_ent t = {
	    .t_ms = sim->now_ms, .x = x, .y = y, .kind = kind, .a = (uint8_t)a, .b = (uint8_t)b};
	if (note)
		snprintf(t.note, sizeof t.note, "%s", note);
	if (sim->cfg.verbose) {
		char line[160];
		trace_format(&t, line, sizeof line);
		fprintf(stderr, "%s\n", line);
	}
	/* Frames would crowd everything else out of one tail: keep two. */
	if (kind == TR_RECV)
		sim->frames[sim->n_frames++ % FRAMES_TAIL] = t;
	else if (kind != TR_SEND)
		sim->tail[sim->n_trace++ % TRACE_TAIL] = t;
}

static void trace(struct sim *sim, enum tr_kind kind, size_t a, size_t b, int64_t x, int64_t y)
{
	trace_note(sim, kind, a, b, x, y, NULL);
}

static void report_ring(struct sim *sim, const char *what, const struct trace_ent *ring,
			size_t size, uint64_t count)
{
	struct sim_result *res = sim->res;
	size_t off = strlen(res->report);
	uint64_t n = count < size ? count : size;
	off += (size_t)snprintf(res->report + off, sizeof res->report - off,
				"\n  last %" PRIu64 " %s:\n", n, what);
	for (uint64_t i = count - n; i < count && off < sizeof res->report; i++) {
		char line[160];
		trace_format(&ring[i % size], line, sizeof line);
		off +=
		    (size_t)snprintf(res->report + off, sizeof res->report - off, "    %s\n", line);
	}
}

static void report_tail(struct sim *sim)
{
	report_ring(sim, "frames delivered", sim->frames, FRAMES_TAIL, sim->n_frames);
	report_ring(sim, "other events", sim->tail, TRACE_TAIL, sim->n_trace);
}

/* ---- event queue: a binary heap on (at_ms, seq) ---- */

static bool ev_before(const struct event *a, const struct event *b)
{
	return a->at_ms != b->at_ms ? a->at_ms < b->at_ms : a->seq < b->seq;
}

static void schedule(struct sim *sim, int64_t at_ms, enum ev_kind kind, size_t a, size_t b,
		     uint32_t inc, int64_t arg)
{
	struct heap *h = &sim->heap;
	if (h->n == EVENTS_MAX) {
		fail(sim, SIM_FAIL_CONTRACT, "event queue full (%d events)", EVENTS_MAX);
		return;
	}
	struct event ev = {.at_ms = at_ms < sim->now_ms ? sim->now_ms : at_ms,
			   .seq = h->seq++,
			   .arg = arg,
			   .inc = inc,
			   .kind = kind,
			   .a = (uint8_t)a,
			   .b = (uint8_t)b};
	size_t i = h->n++;
	while (i > 0 && ev_before(&ev, &h->v[(i - 1) / 2])) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = ev;
}

static bool pop(struct sim *sim, struct event *out)
{
	struct heap *h = &sim->heap;
	if (!h->n)
		return false;
	*out = h->v[0];
	struct event last = h->v[--h->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && ev_before(&h->v[c + 1], &h->v[c]))
			c++;
		if (!ev_before(&h->v[c], &last))
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	h->v[i] = last;
	return true;
}

/* ---- servers, clocks, sequences ---- */

static int64_t local_now(const struct server *s)
{
	const struct sim *sim = s->sim;
	return s->clock_offset_ms + sim->now_ms + sim->now_ms * s->drift_ppm / 1000000;
}

static bool alive(const struct server *s)
{
	return s->up && !s->restart_pending;
}

static struct conn *conn_of(struct sim *sim, size_t a, size_t b)
{
	return a < b ? &sim->conn[a][b] : &sim->conn[b][a];
}

static uint64_t chain_next(uint64_t prev, int64_t zxid, uint64_t phash)
{
	uint64_t w[3] = {prev, (uint64_t)zxid, phash};
	return XXH3_64bits(w, sizeof w);
}

static uint64_t payload_hash(uint32_t type, const uint8_t *p, uint32_t len)
{
	return XXH3_64bits_withSeed(p, len, type);
}

static void seq_push(struct seq *s, int64_t zxid, uint64_t phash)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		s->e = realloc(s->e, s->cap * sizeof *s->e);
		RK_ASSERT(s->e);
	}
	uint64_t prev = s->n ? s->e[s->n - 1].chain : 0;
	s->e[s->n] = (struct entry){zxid, phash, chain_next(prev, zxid, phash)};
	s->n++;
}

/* How many entries have zxid <= zxid. */
static size_t seq_upto(const struct entry *e, size_t n, int64_t zxid)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (e[mid].zxid <= zxid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int64_t host_last(const struct host *h)
{
	return h->n ? h->e[h->n - 1].zxid : 0;
}

static void host_push(struct host *h, int64_t zxid, uint64_t phash)
{
	struct seq s = {h->e, h->n, h->cap};
	seq_push(&s, zxid, phash);
	h->e = s.e;
	h->n = s.n;
	h->cap = s.cap;
}

static int peer_of(struct server *s, uint32_t sid, const char *what)
{
	struct sim *sim = s->sim;
	if (sid < 1 || sid > sim->n || sid == s->sid) {
		fail(sim, SIM_FAIL_CONTRACT, "s%u: %s to unknown or own sid %u", s->sid, what, sid);
		return -1;
	}
	return (int)sid - 1;
}

/* ---- host snapshots ----
 * The bytes of a snapshot of the host's state machine (its applied
 * sequence), in host byte order:
 *   off 0   u32  magic 0x504e5352 ("RSNP")
 *   off 4   u32  0
 *   off 8   u64  count
 *   off 16  i64  zxid of the last entry (0 when empty)
 *   off 24  u64  chain hash of the last entry
 *   off 32  count x { i64 zxid, u64 payload hash }
 *   then    u64  XXH3 of everything before */

#define SNAP_MAGIC 0x504e5352u
#define SNAP_HEAD  32

static uint8_t *snap_encode(const struct entry *e, size_t n, size_t *len)
{
	*len = SNAP_HEAD + n * 16 + 8;
	uint8_t *b = malloc(*len);
	RK_ASSERT(b);
	uint32_t head32[2] = {SNAP_MAGIC, 0};
	uint64_t head64[3] = {n, n ? (uint64_t)e[n - 1].zxid : 0, n ? e[n - 1].chain : 0};
	memcpy(b, head32, 8);
	memcpy(b + 8, head64, 24);
	for (size_t i = 0; i < n; i++) {
		memcpy(b + SNAP_HEAD + i * 16, &e[i].zxid, 8);
		memcpy(b + SNAP_HEAD + i * 16 + 8, &e[i].phash, 8);
	}
	uint64_t sum = XXH3_64bits(b, *len - 8);
	memcpy(b + *len - 8, &sum, 8);
	return b;
}

/* Rebuild h's sequence from snapshot bytes; -EINVAL if they are damaged. */
static int snap_decode(const uint8_t *b, size_t len, struct host *h, int64_t *zxid)
{
	uint32_t head32[2];
	uint64_t head64[3], sum;
	if (len < SNAP_HEAD + 8)
		return -EINVAL;
	memcpy(head32, b, 8);
	memcpy(head64, b + 8, 24);
	memcpy(&sum, b + len - 8, 8);
	if (head32[0] != SNAP_MAGIC || head64[0] > (len - SNAP_HEAD - 8) / 16 ||
	    len != SNAP_HEAD + head64[0] * 16 + 8 || sum != XXH3_64bits(b, len - 8))
		return -EINVAL;
	h->n = 0;
	for (uint64_t i = 0; i < head64[0]; i++) {
		int64_t z;
		uint64_t ph;
		memcpy(&z, b + SNAP_HEAD + i * 16, 8);
		memcpy(&ph, b + SNAP_HEAD + i * 16 + 8, 8);
		if (h->n && z <= host_last(h))
			return -EINVAL;
		host_push(h, z, ph);
	}
	if ((uint64_t)host_last(h) != head64[1] || (h->n ? h->e[h->n - 1].chain : 0) != head64[2])
		return -EINVAL;
	*zxid = host_last(h);
	return 0;
}

/* ---- the fake disk ---- */

static int64_t disk_snap_zxid(const struct disk *d)
{
	return d->n_snaps ? d->snaps[d->n_snaps - 1].zxid : 0;
}

/* Bytes lent to snap_read live on until the engine's next snap_read. */
static void snap_free(struct disk *d, uint8_t *buf)
{
	if (buf == d->lent)
		d->lent_dropped = true;
	else
		free(buf);
}

static void lent_release(struct disk *d)
{
	if (d->lent_dropped)
		free(d->lent);
	d->lent = NULL;
	d->lent_dropped = false;
}

/* Keep the snapshot (taking ownership of buf) in zxid order, replacing
 * one at the same zxid, then forget the oldest beyond SNAPS_KEPT. */
static void disk_add_snap(struct disk *d, uint8_t *buf, size_t len, int64_t zxid)
{
	size_t i = d->n_snaps;
	while (i > 0 && d->snaps[i - 1].zxid >= zxid)
		i--;
	if (i < d->n_snaps && d->snaps[i].zxid == zxid) {
		snap_free(d, d->snaps[i].buf);
		d->snaps[i] = (struct snap){buf, len, zxid};
		return;
	}
	if (d->n_snaps == SNAPS_KEPT) {
		if (i == 0) {
			free(buf); /* older than everything kept */
			return;
		}
		snap_free(d, d->snaps[0].buf);
		memmove(d->snaps, d->snaps + 1, --i * sizeof *d->snaps);
		d->n_snaps--;
	}
	memmove(d->snaps + i + 1, d->snaps + i, (d->n_snaps - i) * sizeof *d->snaps);
	d->snaps[i] = (struct snap){buf, len, zxid};
	d->n_snaps++;
}

static void disk_drop_from(struct disk *d, size_t i)
{
	for (size_t j = i; j < d->n; j++)
		free(d->log[j].payload);
	d->n = i;
	if (d->durable_n > i)
		d->durable_n = i;
}

static int64_t disk_last(const struct disk *d)
{
	int64_t z = d->n ? d->log[d->n - 1].zxid : 0;
	return z > disk_snap_zxid(d) ? z : disk_snap_zxid(d);
}

/* Highest zxid on disk durably (log or snapshot). */
static int64_t disk_durable_zxid(const struct disk *d)
{
	int64_t z = d->durable_n ? d->log[d->durable_n - 1].zxid : 0;
	return z > disk_snap_zxid(d) ? z : disk_snap_zxid(d);
}

/* How many log records have zxid <= zxid. */
static size_t disk_upto(const struct disk *d, int64_t zxid)
{
	size_t lo = 0, hi = d->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (d->log[mid].zxid <= zxid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Drop the log up to zxid (durable: it is below a snapshot). */
static void disk_purge(struct disk *d, int64_t zxid)
{
	size_t k = disk_upto(d, zxid);
	RK_ASSERT(k <= d->durable_n);
	for (size_t i = 0; i < k; i++)
		free(d->log[i].payload);
	memmove(d->log, d->log + k, (d->n - k) * sizeof *d->log);
	d->n -= k;
	d->durable_n -= k;
	if (zxid > d->log_base)
		d->log_base = zxid;
}

static void disk_free(struct disk *d)
{
	disk_drop_from(d, 0);
	free(d->log);
	lent_release(d);
	for (size_t i = 0; i < d->n_snaps; i++)
		free(d->snaps[i].buf);
	memset(d, 0, sizeof *d);
}

static int env_log_append(void *ctx, const struct zab_rec *recs, size_t n)
{
	struct server *s = ctx;
	struct sim *sim = s->sim;
	struct disk *d = &s->disk;
	for (size_t i = 0; i < n; i++) {
		int64_t prev = i ? recs[i - 1].zxid : disk_last(d);
		if (recs[i].zxid <= prev) {
			fail(sim, SIM_FAIL_CONTRACT, "s%u log_append %x:%x not above %x:%x", s->sid,
			     ZX(recs[i].zxid), ZX(prev));
			return -EINVAL;
		}
	}
	if (d->n + n > LOG_RECS_MAX) {
		fail(sim, SIM_FAIL_CONTRACT, "s%u log over %u records", s->sid, LOG_RECS_MAX);
		return -ENOSPC;
	}
	if (d->n + n > d->cap) {
		d->cap = d->n + n > 2 * d->cap ? d->n + n : 2 * d->cap;
		d->log = realloc(d->log, d->cap * sizeof *d->log);
		RK_ASSERT(d->log);
	}
	for (size_t i = 0; i < n; i++) {
		struct drec *r = &d->log[d->n++];
		*r = (struct drec){recs[i].zxid, d->lsn_next++, recs[i].type, recs[i].len,
				   malloc(recs[i].len ? recs[i].len : 1)};
		RK_ASSERT(r->payload);
		memcpy(r->payload, recs[i].payload, recs[i].len);
	}
	if (n) {
		int64_t at = sim->now_ms + rng_range(&sim->rng, 0, sim->k.durable_max_ms);
		d->flush_last_ms = at > d->flush_last_ms ? at : d->flush_last_ms;
		schedule(sim, d->flush_last_ms, EV_FLUSH, s->idx, 0, s->inc,
			 (int64_t)(d->lsn_next - 1));
		trace(sim, TR_APPEND, s->idx, 0, recs[0].zxid, (int64_t)n);
	}
	return 0;
}

static int env_log_truncate(void *ctx, int64_t zxid)
{
	struct server *s = ctx;
	struct sim *sim = s->sim;
	struct disk *d = &s->disk;
	sim->res->stats.truncations++;
	trace(sim, TR_TRUNCATE, s->idx, 0, zxid, 0);
	disk_drop_from(d, disk_upto(d, zxid));
	while (d->n_snaps && d->snaps[d->n_snaps - 1].zxid > zxid)
		snap_free(d, d->snaps[--d->n_snaps].buf);
	if (disk_snap_zxid(d) < d->log_base) {
		fail(sim, SIM_FAIL_CONTRACT,
		     "s%u log_truncate to %x:%x removed every snapshot its state could be rebuilt "
		     "from (the log up to %x:%x is purged); only SNAP could sync it",
		     s->sid, ZX(zxid), ZX(d->log_base));
		return -EINVAL;
	}
	if (host_last(&s->host) > zxid)
		s->host.stale = true;
	return 0;
}

static int env_save_epochs(void *ctx, uint32_t accepted, uint32_t current)
{
	struct server *s = ctx;
	struct disk *d = &s->disk;
	trace(s->sim, TR_EPOCHS, s->idx, 0, accepted, current);
	if (accepted < d->accepted_epoch || current < d->current_epoch || current > accepted) {
		fail(s->sim, SIM_FAIL_SAFETY,
		     "s%u save_epochs(accepted %u, current %u) after (%u, %u): epochs never go "
		     "back and current <= accepted",
		     s->sid, accepted, current, d->accepted_epoch, d->current_epoch);
		return -EINVAL;
	}
	d->accepted_epoch = accepted;
	d->current_epoch = current;
	return 0;
}

/* Log records up to lsn are durable: tell the engine the new high mark. */
static void on_flush(struct sim *sim, const struct event *ev)
{
	struct server *s = &sim->srv[ev->a];
	struct disk *d = &s->disk;
	if (!alive(s) || ev->inc != s->inc)
		return;
	size_t before = d->durable_n;
	while (d->durable_n < d->n && d->log[d->durable_n].lsn <= (uint64_t)ev->arg)
		d->durable_n++;
	if (d->durable_n == before)
		return;
	int64_t zxid = d->log[d->durable_n - 1].zxid;
	trace(sim, TR_DURABLE, s->idx, 0, zxid, 0);
	zab_log_durable(s->z, zxid, local_now(s));
	observe(s);
}

static int env_snap_read(void *ctx, const void **buf, size_t *len, int64_t *zxid)
{
	struct server *s = ctx;
	struct disk *d = &s->disk;
	const struct snap *newest = d->n_snaps ? &d->snaps[d->n_snaps - 1] : NULL;
	lent_release(d);
	d->lent = newest ? newest->buf : NULL;
	*buf = d->lent;
	*len = newest ? newest->len : 0;
	*zxid = newest ? newest->zxid : 0;
	return 0;
}

static int env_snap_install(void *ctx, const void *buf, size_t len, int64_t zxid)
{
	struct server *s = ctx;
	struct sim *sim = s->sim;
	struct host tmp = {0};
	int64_t got = 0;
	int rc = snap_decode(buf, len, &tmp, &got);
	free(tmp.e);
	trace(sim, TR_INSTALL, s->idx, 0, zxid, (int64_t)len);
	if (rc || got != zxid) {
		fail(sim, SIM_FAIL_CONTRACT,
		     "s%u snap_install at %x:%x: the %zu bytes are not a snapshot the leader's "
		     "host wrote (damaged or mislabelled)",
		     s->sid, ZX(zxid), len);
		return -EINVAL;
	}
	uint8_t *copy = malloc(len);
	RK_ASSERT(copy);
	memcpy(copy, buf, len);
	disk_drop_from(&s->disk, 0);
	if (zxid > s->disk.log_base)
		s->disk.log_base = zxid;
	disk_add_snap(&s->disk, copy, len, zxid);
	s->host.stale = true;
	sim->res->stats.installs++;
	return 0;
}

/* ---- the checker's reference history ----
 * canon is every record some server has shown to be committed: a serving
 * leader's state up to its commit zxid, and every record an engine hands
 * to apply. All such claims must agree, position by position. */

/* Report the first position where s's state and canon differ (below k). */
static void report_divergence(struct sim *sim, struct server *s, size_t k, const char *what)
{
	const struct entry *a = s->host.e, *c = sim->canon.e;
	size_t lo = 0, hi = k - 1; /* the chains differ at hi */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a[mid].chain == c[mid].chain)
			lo = mid + 1;
		else
			hi = mid;
	}
	fail(sim, SIM_FAIL_SAFETY,
	     "%s: s%u's record #%zu is %x:%x (payload %016" PRIx64 "), the committed one is "
	     "%x:%x (payload %016" PRIx64 ")",
	     what, s->sid, lo + 1, ZX(a[lo].zxid), a[lo].phash, ZX(c[lo].zxid), c[lo].phash);
}

/* s's first k records are committed: they must match canon and extend it. */
static void canon_claim(struct sim *sim, struct server *s, size_t k, const char *what)
{
	struct seq *c = &sim->canon;
	const struct host *h = &s->host;
	size_t common = k < c->n ? k : c->n;
	if (common && h->e[common - 1].chain != c->e[common - 1].chain) {
		report_divergence(sim, s, common, what);
		return;
	}
	for (size_t i = c->n; i < k; i++)
		seq_push(c, h->e[i].zxid, h->e[i].phash);
}

static void epochs_reserve(struct sim *sim, uint32_t e)
{
	if (e < sim->epochs_cap)
		return;
	size_t cap = sim->epochs_cap ? sim->epochs_cap : 64;
	while (cap <= e)
		cap *= 2;
	sim->est_sid = realloc(sim->est_sid, cap * sizeof *sim->est_sid);
	sim->epoch_commit = realloc(sim->epoch_commit, cap * sizeof *sim->epoch_commit);
	RK_ASSERT(sim->est_sid && sim->epoch_commit);
	for (size_t i = sim->epochs_cap; i < cap; i++) {
		sim->est_sid[i] = 0;
		sim->epoch_commit[i] = 0;
	}
	sim->epochs_cap = cap;
}

/* Invariant 3: one established leader per epoch, epochs increasing. */
static void on_established(struct sim *sim, struct server *s, uint32_t e)
{
	if (s->host.established == e)
		return;
	if (e == 0 || e >= EPOCHS_MAX) {
		fail(sim, SIM_FAIL_CONTRACT, "s%u established in epoch %u", s->sid, e);
		return;
	}
	epochs_reserve(sim, e);
	if (sim->est_sid[e])
		fail(sim, SIM_FAIL_SAFETY,
		     "s%u established as leader of epoch %u, which s%u already led (invariant 3)",
		     s->sid, e, sim->est_sid[e]);
	else if (e <= sim->est_last)
		fail(sim, SIM_FAIL_SAFETY,
		     "s%u established epoch %u after epoch %u was established (invariant 3)",
		     s->sid, e, sim->est_last);
	sim->est_sid[e] = s->sid;
	sim->est_last = e;
	s->host.established = e;
	sim->res->stats.establishments++;
}

/* After every call into s's engine: its queries must match what it told
 * the host, and a leader's commit zxid is a claim about what is committed. */
static void observe(struct server *s)
{
	struct sim *sim = s->sim;
	struct host *h = &s->host;
	if (!alive(s) || sim->stop)
		return;
	enum zab_state st = zab_state(s->z);
	bool serving = zab_serving(s->z);
	if (st != h->st || serving != h->serving) {
		fail(sim, SIM_FAIL_CONTRACT,
		     "s%u engine is %s%s but its last state_changed said %s%s", s->sid,
		     zab_state_name(st), serving ? " serving" : "", zab_state_name(h->st),
		     h->serving ? " serving" : "");
		return;
	}
	if (st != ZAB_LEADING || !serving || h->stale)
		return;
	int64_t c = zab_commit_zxid(s->z);
	if (h->commit_epoch == h->epoch && c < h->commit_zxid) {
		fail(sim, SIM_FAIL_SAFETY,
		     "s%u's commit zxid went back from %x:%x to %x:%x in epoch %u (invariant 5)",
		     s->sid, ZX(h->commit_zxid), ZX(c), h->epoch);
		return;
	}
	if (h->commit_epoch != h->epoch || c != h->commit_zxid)
		trace(sim, TR_COMMIT, s->idx, 0, c, 0);
	h->commit_epoch = h->epoch;
	h->commit_zxid = c;
	epochs_reserve(sim, h->epoch);
	if (c > sim->epoch_commit[h->epoch])
		sim->epoch_commit[h->epoch] = c;
	if (c > sim->commit_max)
		sim->commit_max = c;
	canon_claim(sim, s, seq_upto(h->e, h->n, c), "a leader's commit disagrees with history");
}

/* Invariant 5: a learner applies nothing its leader has not committed. */
static void check_commit_bound(struct sim *sim, struct server *s, int64_t zxid)
{
	const struct host *h = &s->host;
	uint32_t e = (uint32_t)((uint64_t)zxid >> 32);
	if (zxid > sim->commit_max)
		fail(sim, SIM_FAIL_SAFETY,
		     "s%u applied %x:%x, beyond every leader's commit zxid (%x:%x) (invariant 5)",
		     s->sid, ZX(zxid), ZX(sim->commit_max));
	else if (h->st != ZAB_LOOKING && e == h->epoch && e < sim->epochs_cap &&
		 zxid > sim->epoch_commit[e])
		fail(sim, SIM_FAIL_SAFETY,
		     "s%u applied %x:%x, beyond the commit zxid %x:%x of s%u, its leader in epoch "
		     "%u (invariant 5)",
		     s->sid, ZX(zxid), ZX(sim->epoch_commit[e]), h->leader, e);
}

static void env_apply(void *ctx, const struct zab_rec *recs, size_t n)
{
	struct server *s = ctx;
	struct sim *sim = s->sim;
	struct host *h = &s->host;
	for (size_t i = 0; i < n && !sim->stop; i++) {
		const struct zab_rec *r = &recs[i];
		trace(sim, TR_APPLY, s->idx, 0, r->zxid, 0);
		if (h->stale) {
			fail(sim, SIM_FAIL_CONTRACT,
			     "s%u apply %x:%x to a state that had to be rebuilt first (its log "
			     "was truncated below it, or a snapshot installed)",
			     s->sid, ZX(r->zxid));
			return;
		}
		if (r->zxid <= host_last(h)) {
			fail(sim, SIM_FAIL_SAFETY,
			     "s%u apply %x:%x, not above its last applied %x:%x (applied twice or "
			     "out of order; invariant 2)",
			     s->sid, ZX(r->zxid), ZX(host_last(h)));
			return;
		}
		if (h->st != ZAB_LEADING)
			check_commit_bound(sim, s, r->zxid);
		host_push(h, r->zxid, payload_hash(r->type, r->payload, r->len));
		canon_claim(sim, s, h->n, "applied a record that disagrees with history");
	}
}

static void env_state_changed(void *ctx, enum zab_state st, uint32_t leader, uint32_t epoch,
			      bool serving)
{
	struct server *s = ctx;
	struct sim *sim = s->sim;
	struct host *h = &s->host;
	trace(sim, TR_STATE, s->idx, st, (int64_t)leader << 32 | epoch, serving);
	bool learner = st == ZAB_FOLLOWING || st == ZAB_OBSERVING;
	if (st >= ZAB_STATE_COUNT || (learner && (leader < 1 || leader > sim->n)) ||
	    (st == ZAB_OBSERVING) != (s->observer && learner) ||
	    (s->observer && st == ZAB_LEADING)) {
		fail(sim, SIM_FAIL_CONTRACT, "s%u%s state_changed(%d, leader %u)", s->sid,
		     s->observer ? " (observer)" : "", (int)st, leader);
		return;
	}
	h->st = st;
	h->leader = leader;
	h->epoch = epoch;
	h->serving = serving;
	if (serving && h->stale)
		fail(sim, SIM_FAIL_CONTRACT,
		     "s%u serves a state that had to be rebuilt first (log truncated below it, or "
		     "a snapshot installed)",
		     s->sid);
	if (st == ZAB_LEADING && serving)
		on_established(sim, s, epoch);
}

static void env_restart(void *ctx, const char *why)
{
	struct server *s = ctx;
	struct sim *sim = s->sim;
	trace_note(sim, TR_RESTART, s->idx, 0, 0, 0, why);
	if (s->restart_pending)
		return;
	s->restart_pending = true;
	sim->res->stats.restarts++;
	schedule(sim, sim->now_ms, EV_RESTART, s->idx, 0, s->inc, 0);
}

/* Host traffic: a token {origin sid, counter} forwarded and echoed back. */
static void env_forwarded(void *ctx, uint32_t from_sid, const void *buf, size_t len)
{
	struct server *s = ctx;
	struct host *h = &s->host;
	uint64_t tok[2];
	if (len != sizeof tok || (memcpy(tok, buf, sizeof tok), tok[0] != from_sid)) {
		fail(s->sim, SIM_FAIL_CONTRACT,
		     "s%u got %zu forwarded bytes from s%u that s%u did not send", s->sid, len,
		     from_sid, from_sid);
		return;
	}
	if (h->n_replies < REPLIES_MAX) {
		h->replies[h->n_replies][0] = from_sid;
		h->replies[h->n_replies++][1] = tok[1];
	}
}

static void env_replies(void *ctx, const void *buf, size_t len)
{
	struct server *s = ctx;
	uint64_t tok[2];
	if (len != sizeof tok || (memcpy(tok, buf, sizeof tok), tok[0] != s->sid)) {
		fail(s->sim, SIM_FAIL_CONTRACT, "s%u got %zu reply bytes meant for another server",
		     s->sid, len);
		return;
	}
	s->sim->res->stats.replies++;
}

/* ---- the fake network ---- */

static void chan_flush(struct channel *ch)
{
	while (ch->head) {
		struct frame *f = ch->head;
		ch->head = f->next;
		free(f);
	}
	ch->tail = NULL;
	ch->n = 0;
}

static void chan_kick(struct sim *sim, size_t a, size_t b)
{
	struct channel *ch = &sim->chan[a][b];
	if (ch->head && !ch->scheduled) {
		ch->scheduled = true;
		schedule(sim, ch->head->ready_ms, EV_DELIVER, a, b, 0, 0);
	}
}

static void chan_push(struct sim *sim, struct channel *ch, const void *buf, size_t len)
{
	struct frame *f = malloc(sizeof *f + len);
	RK_ASSERT(f);
	int64_t lat = rng_range(&sim->rng, sim->k.latency_min_ms, sim->k.latency_max_ms);
	if (sim->step < sim->heal_step && rng_ppm(&sim->rng, 10000))
		lat *= 10; /* a rare slow frame delays everything behind it */
	*f = (struct frame){.ready_ms = sim->now_ms + lat, .len = len};
	memcpy(f->data, buf, len);
	if (ch->tail && ch->tail->ready_ms > f->ready_ms)
		f->ready_ms = ch->tail->ready_ms;
	if (ch->tail)
		ch->tail->next = f;
	else
		ch->head = f;
	ch->tail = f;
	ch->n++;
}

/* Swap the last two frames (keeping their delivery times in order). */
static void chan_swap_tail(struct channel *ch)
{
	if (ch->n < 2)
		return;
	struct frame **pp = &ch->head;
	while ((*pp)->next != ch->tail)
		pp = &(*pp)->next;
	struct frame *a = *pp, *b = ch->tail;
	int64_t t = a->ready_ms;
	a->ready_ms = b->ready_ms;
	b->ready_ms = t;
	*pp = b;
	b->next = a;
	a->next = NULL;
	ch->tail = a;
}

/* The connection a - b is gone: flush both directions, tell the engines
 * in an event of their own (never from inside an engine call). */
static void conn_drop(struct sim *sim, size_t a, size_t b, enum down_why why)
{
	struct conn *c = conn_of(sim, a, b);
	if (c->st != CONN_UP)
		return;
	c->st = CONN_CLOSING;
	c->gen++;
	chan_flush(&sim->chan[a][b]);
	chan_flush(&sim->chan[b][a]);
	sim->res->stats.resets++;
	trace(sim, TR_DOWN, a, b, why, 0);
	schedule(sim, sim->now_ms, EV_PEER_DOWN, a, b, 0, c->gen);
}

static int32_t frame_type(const uint8_t *p, size_t len)
{
	/* zab.c's frames start with a big-endian int type; for the trace only. */
	return len >= 4 ? (int32_t)((uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]) : -1;
}

static void net_send(struct sim *sim, size_t a, size_t b, const uint8_t *buf, size_t len)
{
	struct conn *c = conn_of(sim, a, b);
	struct channel *ch = &sim->chan[a][b];
	sim->res->stats.frames++;
	trace(sim, TR_SEND, a, b, (int64_t)len, frame_type(buf, len));
	sim->res->trace_hash = XXH3_64bits_withSeed(buf, len, sim->res->trace_hash);
	if (len > FRAME_BYTES_MAX) {
		fail(sim, SIM_FAIL_CONTRACT, "s%zu sent a frame of %zu bytes", a + 1, len);
		return;
	}
	if (c->st != CONN_UP)
		return;
	if (ch->n >= CHANNEL_FRAMES_MAX) {
		conn_drop(sim, a, b, DOWN_OVERFLOW);
		return;
	}
	int64_t fault = -1;
	if (sim->step < sim->heal_step && rng_ppm(&sim->rng, sim->k.frame_fault_ppm)) {
		fault = rng_range(&sim->rng, 0, 2);
		sim->res->stats.frame_faults++;
		trace(sim, TR_FAULT, a, b, fault, 0);
	}
	if (fault == 0)
		return;
	chan_push(sim, ch, buf, len);
	if (fault == 1)
		chan_push(sim, ch, buf, len);
	if (fault == 2)
		chan_swap_tail(ch);
	chan_kick(sim, a, b);
}

static void env_send(void *ctx, uint32_t sid, const void *buf, size_t len)
{
	struct server *s = ctx;
	int b = peer_of(s, sid, "send");
	if (b >= 0)
		net_send(s->sim, s->idx, (size_t)b, buf, len);
}

static void env_disconnect(void *ctx, uint32_t sid)
{
	struct server *s = ctx;
	int b = peer_of(s, sid, "disconnect");
	if (b < 0)
		return;
	trace(s->sim, TR_DISCONNECT, s->idx, (size_t)b, 0, 0);
	conn_drop(s->sim, s->idx, (size_t)b, DOWN_ASKED);
}

static void on_deliver(struct sim *sim, const struct event *ev)
{
	struct channel *ch = &sim->chan[ev->a][ev->b];
	ch->scheduled = false;
	struct frame *f = ch->head;
	if (!f || conn_of(sim, ev->a, ev->b)->cut)
		return; /* a partitioned channel stalls until it heals */
	if (f->ready_ms > sim->now_ms) {
		chan_kick(sim, ev->a, ev->b);
		return;
	}
	ch->head = f->next;
	if (!ch->head)
		ch->tail = NULL;
	ch->n--;
	struct server *s = &sim->srv[ev->b];
	if (alive(s)) {
		trace(sim, TR_RECV, ev->a, ev->b, (int64_t)f->len, frame_type(f->data, f->len));
		zab_receive(s->z, sim->srv[ev->a].sid, f->data, f->len, local_now(s));
		observe(s);
	}
	free(f);
	chan_kick(sim, ev->a, ev->b);
}

static void notify_down(struct sim *sim, size_t x, size_t y)
{
	struct server *s = &sim->srv[x];
	if (!sim->told_up[x][y])
		return;
	sim->told_up[x][y] = false;
	if (!alive(s))
		return;
	zab_peer_down(s->z, sim->srv[y].sid, local_now(s));
	observe(s);
}

static void on_peer_down(struct sim *sim, const struct event *ev)
{
	struct conn *c = conn_of(sim, ev->a, ev->b);
	if (c->st != CONN_CLOSING || c->gen != (uint32_t)ev->arg)
		return;
	c->st = CONN_DOWN;
	c->retry_ms = sim->now_ms + rng_range(&sim->rng, 5, 300);
	bool a_first = rng_ppm(&sim->rng, 500000);
	notify_down(sim, a_first ? ev->a : ev->b, a_first ? ev->b : ev->a);
	notify_down(sim, a_first ? ev->b : ev->a, a_first ? ev->a : ev->b);
}

static void notify_up(struct sim *sim, size_t x, size_t y)
{
	struct server *s = &sim->srv[x];
	if (!alive(s))
		return;
	sim->told_up[x][y] = true;
	zab_peer_up(s->z, sim->srv[y].sid, local_now(s));
	observe(s);
}

/* Reconnect every pair that is down, reachable and past its backoff. */
static void net_connect(struct sim *sim)
{
	for (size_t a = 0; a < sim->n && !sim->stop; a++)
		for (size_t b = a + 1; b < sim->n && !sim->stop; b++) {
			struct conn *c = &sim->conn[a][b];
			if (c->st != CONN_DOWN || c->cut || sim->now_ms < c->retry_ms ||
			    !alive(&sim->srv[a]) || !alive(&sim->srv[b]))
				continue;
			c->st = CONN_UP;
			uint32_t gen = ++c->gen;
			trace(sim, TR_UP, a, b, 0, 0);
			bool a_first = rng_ppm(&sim->rng, 500000);
			notify_up(sim, a_first ? a : b, a_first ? b : a);
			if (c->st == CONN_UP && c->gen == gen)
				notify_up(sim, a_first ? b : a, a_first ? a : b);
		}
}

static void cut_pair(struct sim *sim, size_t a, size_t b, int64_t ms, bool reset)
{
	struct conn *c = conn_of(sim, a, b);
	if (!c->cut || sim->now_ms + ms > c->cut_until_ms)
		c->cut_until_ms = sim->now_ms + ms;
	c->cut = true;
	trace(sim, TR_CUT, a, b, ms, 0);
	if (reset)
		conn_drop(sim, a, b, DOWN_CUT);
}

/* Isolate a random set of servers, or one link, for a while. A partition
 * either resets the connections across it or stalls them (TCP keeps
 * retransmitting; the frames arrive after the heal unless an engine gave up). */
static void inject_partition(struct sim *sim)
{
	struct rng *r = &sim->rng;
	int64_t ms = rng_range(r, 100, sim->k.partition_max_ms);
	bool reset = rng_ppm(r, 500000);
	sim->res->stats.partitions++;
	if (rng_ppm(r, 300000)) {
		size_t a = (size_t)rng_range(r, 0, (int64_t)sim->n - 1);
		size_t b = (a + (size_t)rng_range(r, 1, (int64_t)sim->n - 1)) % sim->n;
		cut_pair(sim, a, b, ms, reset);
		return;
	}
	uint64_t side = (uint64_t)rng_range(r, 1, (INT64_C(1) << sim->n) - 2);
	for (size_t a = 0; a < sim->n; a++)
		for (size_t b = a + 1; b < sim->n; b++)
			if (((side >> a) ^ (side >> b)) & 1)
				cut_pair(sim, a, b, ms, reset);
}

static void heal_cuts(struct sim *sim, bool all)
{
	for (size_t a = 0; a < sim->n; a++)
		for (size_t b = a + 1; b < sim->n; b++) {
			struct conn *c = &sim->conn[a][b];
			if (!c->cut || (!all && sim->now_ms < c->cut_until_ms))
				continue;
			c->cut = false;
			trace(sim, TR_HEAL, a, b, 0, 0);
			chan_kick(sim, a, b);
			chan_kick(sim, b, a);
		}
}

/* ---- server lifecycle ---- */

static void host_reset(struct host *h)
{
	struct entry *e = h->e;
	size_t cap = h->cap;
	memset(h, 0, sizeof *h);
	h->e = e;
	h->cap = cap;
}

/* Power loss: the unsynced tail of the log is lost, or a random prefix
 * of it survives (torn at a record boundary; the real log checksums). */
static size_t disk_crash(struct sim *sim, struct disk *d)
{
	size_t keep = d->durable_n;
	if (sim->cfg.bug_lose_durable)
		keep = (size_t)rng_range(&sim->rng, 0, (int64_t)d->durable_n);
	else if (d->n > keep && rng_ppm(&sim->rng, 500000))
		keep += (size_t)rng_range(&sim->rng, 0, (int64_t)(d->n - keep));
	size_t lost = d->n - keep;
	disk_drop_from(d, keep);
	d->durable_n = d->n;
	d->flush_last_ms = 0;
	lent_release(d);
	return lost;
}

static void server_crash(struct sim *sim, struct server *s, bool asked)
{
	if (s->z)
		zab_destroy(s->z);
	s->z = NULL;
	s->up = false;
	s->restart_pending = false;
	s->inc++;
	for (size_t t = 0; t < sim->n; t++)
		if (t != s->idx) {
			conn_drop(sim, s->idx, t, DOWN_CRASH);
			sim->told_up[s->idx][t] = false;
		}
	size_t lost = disk_crash(sim, &s->disk);
	host_reset(&s->host);
	trace(sim, TR_CRASH, s->idx, 0, (int64_t)lost, asked);
}

/* What the real server does at start: state = snapshot + the whole log,
 * every log record above the snapshot handed to zab_load, then zab_begin. */
static void server_boot(struct sim *sim, struct server *s)
{
	struct disk *d = &s->disk;
	struct host *h = &s->host;
	const struct snap *newest = d->n_snaps ? &d->snaps[d->n_snaps - 1] : NULL;
	int64_t snap_zxid = 0;
	host_reset(h);
	RK_ASSERT(!newest || !snap_decode(newest->buf, newest->len, h, &snap_zxid));
	RK_ASSERT(snap_zxid == disk_snap_zxid(d));
	struct zab_config zc = {.my_sid = s->sid,
				.n_members = sim->n,
				.tick_ms = 100,
				.init_limit = 10,
				.sync_limit = 5,
				.finalize_ms = 20};
	memcpy(zc.members, sim->members, sim->n * sizeof *sim->members);
	s->z = zab_create(&zc, &s->env);
	if (!s->z) {
		fail(sim, SIM_FAIL_CONTRACT, "s%u zab_create refused the config", s->sid);
		return;
	}
	s->up = true;
	for (size_t i = disk_upto(d, snap_zxid); i < d->n; i++) {
		const struct drec *r = &d->log[i];
		struct zab_rec zr = {r->zxid, r->type, r->len, r->payload};
		host_push(h, r->zxid, payload_hash(r->type, r->payload, r->len));
		int rc = zab_load(s->z, &zr);
		if (rc) {
			fail(sim, SIM_FAIL_CONTRACT, "s%u zab_load(%x:%x): %d", s->sid, ZX(r->zxid),
			     rc);
			return;
		}
	}
	struct zab_start st = {d->accepted_epoch, d->current_epoch, snap_zxid, host_last(h)};
	trace(sim, TR_BOOT, s->idx, 0, host_last(h), snap_zxid);
	zab_begin(s->z, &st, local_now(s));
	observe(s);
}

/* ---- the host's workload ---- */

static void fill_random(struct rng *r, uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = rng_next(r);
		memcpy(p + i, &v, len - i < 8 ? len - i : 8);
	}
}

/* An established leader proposes a batch its state machine applied first. */
static void propose(struct sim *sim, struct server *s)
{
	struct host *h = &s->host;
	struct rng *r = &sim->rng;
	size_t n = (size_t)rng_range(r, 1, sim->k.batch_max);
	int64_t zxid = zab_next_zxid(s->z);
	if (zxid <= host_last(h)) {
		fail(sim, SIM_FAIL_CONTRACT,
		     "s%u zab_next_zxid %x:%x is not above its state's %x:%x", s->sid, ZX(zxid),
		     ZX(host_last(h)));
		return;
	}
	struct zab_rec recs[BATCH_MAX];
	uint8_t *p = sim->scratch;
	for (size_t i = 0; i < n; i++) {
		uint32_t len = (uint32_t)rng_range(r, 0, sim->k.payload_max);
		fill_random(r, p, len);
		recs[i] =
		    (struct zab_rec){zxid + (int64_t)i, (uint32_t)rng_range(r, 1, 20), len, p};
		host_push(h, recs[i].zxid, payload_hash(recs[i].type, p, len));
		p += len;
	}
	sim->res->stats.proposed += n;
	trace(sim, TR_PROPOSE, s->idx, 0, zxid, (int64_t)n);
	int rc = zab_propose(s->z, recs, n, local_now(s));
	if (rc)
		fail(sim, SIM_FAIL_CONTRACT, "s%u zab_propose while serving: %d", s->sid, rc);
	observe(s);
}

/* Every logged record the snapshot covers must be in the state as logged. */
static int check_log_matches(struct sim *sim, struct server *s, int64_t zxid)
{
	const struct disk *d = &s->disk;
	const struct host *h = &s->host;
	for (size_t i = disk_upto(d, disk_snap_zxid(d)); i < disk_upto(d, zxid); i++) {
		const struct drec *r = &d->log[i];
		size_t k = seq_upto(h->e, h->n, r->zxid);
		if (!k || h->e[k - 1].zxid != r->zxid ||
		    h->e[k - 1].phash != payload_hash(r->type, r->payload, r->len)) {
			fail(sim, SIM_FAIL_SAFETY,
			     "s%u's state machine lacks or differs from its logged record %x:%x",
			     s->sid, ZX(r->zxid));
			return -1;
		}
	}
	return 0;
}

/* Snapshot the state up to what is durable (and, by policy, committed),
 * purge the log it covers and tell the engine. */
static void take_snapshot(struct sim *sim, struct server *s)
{
	struct host *h = &s->host;
	struct disk *d = &s->disk;
	int64_t limit = disk_durable_zxid(d);
	if (sim->cfg.snap_policy != SIM_SNAP_APPLIED && zab_commit_zxid(s->z) < limit)
		limit = zab_commit_zxid(s->z);
	size_t k = seq_upto(h->e, h->n, limit);
	if (h->stale || !k || h->e[k - 1].zxid <= disk_snap_zxid(d))
		return;
	int64_t zxid = h->e[k - 1].zxid;
	if (check_log_matches(sim, s, zxid))
		return;
	size_t len;
	uint8_t *b = snap_encode(h->e, k, &len);
	disk_add_snap(d, b, len, zxid);
	disk_purge(d, d->snaps[0].zxid);
	sim->res->stats.snapshots++;
	trace(sim, TR_SNAPSHOT, s->idx, 0, zxid, 0);
	zab_snapshot_done(s->z, zxid);
	observe(s);
}

static void forward(struct sim *sim, struct server *s)
{
	uint64_t tok[2] = {s->sid, s->host.fwd_next++};
	int rc = zab_forward(s->z, tok, sizeof tok);
	if (rc && rc != -ENOTCONN)
		fail(sim, SIM_FAIL_CONTRACT, "s%u zab_forward: %d", s->sid, rc);
	else if (!rc)
		sim->res->stats.forwards++;
	observe(s);
}

static void reply_all(struct sim *sim, struct server *s)
{
	struct host *h = &s->host;
	for (size_t i = 0; i < h->n_replies && alive(s) && !sim->stop; i++) {
		zab_reply(s->z, (uint32_t)h->replies[i][0], h->replies[i], sizeof h->replies[i]);
		observe(s);
	}
	h->n_replies = 0;
}

static void workload(struct sim *sim)
{
	const struct knobs *k = &sim->k;
	for (size_t i = 0; i < sim->n && !sim->stop; i++) {
		struct server *s = &sim->srv[i];
		const struct host *h = &s->host;
		if (!alive(s))
			continue;
		bool learner = h->st == ZAB_FOLLOWING || h->st == ZAB_OBSERVING;
		if (h->st == ZAB_LEADING && h->serving && sim->step < sim->quiet_step &&
		    rng_ppm(&sim->rng, k->propose_ppm))
			propose(sim, s);
		if (alive(s) && learner && h->serving && rng_ppm(&sim->rng, k->forward_ppm))
			forward(sim, s);
		if (alive(s) && h->st == ZAB_LEADING)
			reply_all(sim, s);
		/* As the real server: a snapshot follows txns applied once in
		 * sync, so it never holds a tail recovered at boot that the
		 * leader has not confirmed (unless the policy asks for that). */
		bool snap_ok = h->serving || sim->cfg.snap_policy == SIM_SNAP_ANYTIME;
		if (alive(s) && snap_ok && rng_ppm(&sim->rng, k->snapshot_ppm))
			take_snapshot(sim, s);
	}
}

/* ---- faults ---- */

static void crash_for_a_while(struct sim *sim, struct server *s)
{
	sim->res->stats.crashes++;
	server_crash(sim, s, false);
	int64_t down = rng_range(&sim->rng, 50, sim->k.down_max_ms);
	schedule(sim, sim->now_ms + down, EV_BOOT, s->idx, 0, s->inc, 0);
}

static void inject_faults(struct sim *sim)
{
	const struct knobs *k = &sim->k;
	for (size_t i = 0; i < sim->n; i++)
		if (alive(&sim->srv[i]) && rng_ppm(&sim->rng, k->crash_ppm))
			crash_for_a_while(sim, &sim->srv[i]);
	for (size_t a = 0; a < sim->n; a++)
		for (size_t b = a + 1; b < sim->n; b++)
			if (sim->conn[a][b].st == CONN_UP && rng_ppm(&sim->rng, k->reset_ppm))
				conn_drop(sim, a, b, DOWN_FAULT);
	if (rng_ppm(&sim->rng, k->partition_ppm))
		inject_partition(sim);
}

static void begin_heal(struct sim *sim)
{
	trace(sim, TR_PHASE, 0, 0, 1, 0);
	heal_cuts(sim, true);
	for (size_t i = 0; i < sim->n; i++)
		if (!sim->srv[i].up && !sim->srv[i].restart_pending)
			schedule(sim, sim->now_ms, EV_BOOT, i, 0, sim->srv[i].inc, 0);
}

/* ---- checks ---- */

/* A serving server's state must agree with the committed history; a
 * serving leader must hold every record committed up to its epoch. */
static void check_serving(struct sim *sim, struct server *s)
{
	const struct host *h = &s->host;
	const struct seq *c = &sim->canon;
	if (!alive(s) || !h->serving || h->stale)
		return;
	size_t k = h->n < c->n ? h->n : c->n;
	if (h->st == ZAB_LEADING) {
		k = seq_upto(c->e, c->n, (int64_t)((uint64_t)(h->epoch + 1) << 32) - 1);
		if (h->n < k) {
			fail(sim, SIM_FAIL_SAFETY,
			     "s%u serves as leader of epoch %u without committed record #%zu %x:%x "
			     "(invariant 1)",
			     s->sid, h->epoch, h->n + 1, ZX(c->e[h->n].zxid));
			return;
		}
	}
	if (k && h->e[k - 1].chain != c->e[k - 1].chain)
		report_divergence(sim, s, k, "a serving server's state disagrees with history");
}

static bool converged_with(struct sim *sim, struct server *s, const struct server *l)
{
	const struct host *h = &s->host, *lh = &l->host;
	enum zab_state want = s->observer ? ZAB_OBSERVING : ZAB_FOLLOWING;
	if (h->st != want || !h->serving || h->leader != l->sid || h->epoch != lh->epoch) {
		fail(sim, SIM_FAIL_LIVENESS,
		     "after healing s%u is %s%s (leader s%u, epoch %u), not serving under s%u in "
		     "epoch %u",
		     s->sid, state_names[h->st], h->serving ? " serving" : "", h->leader, h->epoch,
		     l->sid, lh->epoch);
		return false;
	}
	if (h->n != lh->n) {
		fail(
		    sim, SIM_FAIL_LIVENESS,
		    "after healing s%u has %zu records up to %x:%x, its leader s%u %zu up to %x:%x",
		    s->sid, h->n, ZX(host_last(h)), l->sid, lh->n, ZX(host_last(lh)));
		return false;
	}
	if (h->n && h->e[h->n - 1].chain != lh->e[h->n - 1].chain) {
		fail(sim, SIM_FAIL_SAFETY, "s%u and its leader s%u end with different states",
		     s->sid, l->sid);
		return false;
	}
	return true;
}

/* Invariant 4, and 1 on the final states. */
static void final_check(struct sim *sim)
{
	struct server *l = NULL;
	for (size_t i = 0; i < sim->n; i++) {
		struct server *s = &sim->srv[i];
		if (!alive(s)) {
			fail(sim, SIM_FAIL_LIVENESS, "s%u is not up at the end", s->sid);
			return;
		}
		if (s->host.st == ZAB_LEADING && s->host.serving && !l)
			l = s;
	}
	if (!l) {
		fail(sim, SIM_FAIL_LIVENESS, "no serving leader at the end");
		return;
	}
	for (size_t i = 0; i < sim->n; i++)
		if (&sim->srv[i] != l && !converged_with(sim, &sim->srv[i], l))
			return;
	for (size_t i = 0; i < sim->n; i++)
		if (zab_applied_zxid(sim->srv[i].z) != host_last(&sim->srv[i].host)) {
			fail(sim, SIM_FAIL_CONTRACT, "s%u zab_applied_zxid %x:%x, its state %x:%x",
			     sim->srv[i].sid, ZX(zab_applied_zxid(sim->srv[i].z)),
			     ZX(host_last(&sim->srv[i].host)));
			return;
		}
	check_serving(sim, l);
	if (l->host.n < sim->canon.n)
		fail(sim, SIM_FAIL_SAFETY, "the final state has %zu records, %zu were committed",
		     l->host.n, sim->canon.n);
	sim->res->stats.final_zxid = host_last(&l->host);
	sim->res->stats.final_epoch = l->host.epoch;
}

/* ---- the run ---- */

static void on_step(struct sim *sim)
{
	if (sim->step == sim->heal_step)
		begin_heal(sim);
	if (sim->step == sim->quiet_step)
		trace(sim, TR_PHASE, 0, 0, 2, 0);
	if (sim->step < sim->heal_step)
		inject_faults(sim);
	heal_cuts(sim, false);
	net_connect(sim);
	workload(sim);
	for (size_t i = 0; i < sim->n && !sim->stop; i++)
		check_serving(sim, &sim->srv[i]);
	if (sim->step >= sim->cfg.steps) {
		if (!sim->stop)
			final_check(sim);
		sim->stop = true;
		return;
	}
	sim->step++;
	schedule(sim, sim->now_ms + SIM_STEP_MS, EV_STEP, 0, 0, 0, 0);
}

static void dispatch(struct sim *sim, const struct event *ev)
{
	struct server *s = &sim->srv[ev->a];
	switch ((enum ev_kind)ev->kind) {
	case EV_STEP:
		on_step(sim);
		break;
	case EV_TICK:
		if (alive(s)) {
			zab_tick(s->z, local_now(s));
			observe(s);
		}
		schedule(sim, sim->now_ms + TICK_EVERY_MS, EV_TICK, ev->a, 0, 0, 0);
		break;
	case EV_DELIVER:
		on_deliver(sim, ev);
		break;
	case EV_FLUSH:
		on_flush(sim, ev);
		break;
	case EV_BOOT:
		if (!s->up && ev->inc == s->inc)
			server_boot(sim, s);
		break;
	case EV_RESTART:
		if (s->up && ev->inc == s->inc) {
			server_crash(sim, s, true);
			schedule(sim, sim->now_ms + rng_range(&sim->rng, 1, 100), EV_BOOT, ev->a, 0,
				 s->inc, 0);
		}
		break;
	case EV_PEER_DOWN:
		on_peer_down(sim, ev);
		break;
	case EV_KIND_COUNT:
		break;
	}
}

static const struct zab_env sim_env = {
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

/* Swarm testing: every seed draws its own fault and workload rates. */
static void pick_knobs(struct sim *sim)
{
	struct rng *r = &sim->rng;
	struct knobs *k = &sim->k;
	k->latency_min_ms = rng_range(r, 1, 5);
	k->latency_max_ms = k->latency_min_ms + PICK(r, 2, 10, 50, 100);
	k->durable_max_ms = PICK(r, 0, 2, 10, 50);
	k->crash_ppm = (uint32_t)PICK(r, 0, 300, 1000, 3000);
	k->down_max_ms = PICK(r, 100, 1000, 3000);
	k->reset_ppm = (uint32_t)PICK(r, 0, 200, 1000);
	k->partition_ppm = (uint32_t)PICK(r, 0, 1000, 3000);
	k->partition_max_ms = PICK(r, 300, 1500, 4000);
	k->frame_fault_ppm = (uint32_t)PICK(r, 0, 0, 100, 1000, 5000);
	k->propose_ppm = (uint32_t)PICK(r, 100000, 300000, 800000);
	k->batch_max = PICK(r, 1, 3, 16);
	k->payload_max = PICK(r, 8, 200, 4096);
	k->snapshot_ppm = (uint32_t)PICK(r, 0, 1000, 5000);
	k->forward_ppm = (uint32_t)PICK(r, 0, 20000);
}

static void report_knobs(struct sim *sim)
{
	struct sim_result *res = sim->res;
	const struct knobs *k = &sim->k;
	size_t off = strlen(res->report);
	snprintf(res->report + off, sizeof res->report - off,
		 "\n  knobs: latency %" PRId64 "..%" PRId64 " ms, durable <= %" PRId64
		 " ms, crash %u ppm (down <= %" PRId64 " ms), reset %u ppm, partition %u ppm "
		 "(<= %" PRId64 " ms), frame faults %u ppm, propose %u ppm x %" PRId64
		 ", snapshot %u ppm, snap policy %s",
		 k->latency_min_ms, k->latency_max_ms, k->durable_max_ms, k->crash_ppm,
		 k->down_max_ms, k->reset_ppm, k->partition_ppm, k->partition_max_ms,
		 k->frame_fault_ppm, k->propose_ppm, k->batch_max, k->snapshot_ppm,
		 sim_snap_policy_name(sim->cfg.snap_policy));
}

static void sim_setup(struct sim *sim)
{
	struct rng *r = &sim->rng;
	pick_knobs(sim);
	int observers = sim->cfg.observers;
	if (observers == SIM_OBSERVER_DEFAULT)
		observers = rng_ppm(r, 250000);
	sim->n = (size_t)sim->cfg.voters + (observers ? 1 : 0);
	sim->heal_step = sim->cfg.steps * HEAL_AT_PCT / 100;
	sim->quiet_step = sim->cfg.steps * QUIET_AT_PCT / 100;
	for (size_t i = 0; i < sim->n; i++) {
		struct server *s = &sim->srv[i];
		s->sim = sim;
		s->idx = (uint8_t)i;
		s->sid = (uint32_t)i + 1;
		s->observer = i >= (size_t)sim->cfg.voters;
		s->clock_offset_ms = rng_range(r, 0, INT64_C(1000000000));
		s->drift_ppm = (int32_t)rng_range(r, -30000, 30000);
		s->env = sim_env;
		s->env.ctx = s;
		sim->members[i] = (struct zab_member){s->sid, s->observer};
		schedule(sim, rng_range(r, 0, 100), EV_BOOT, i, 0, 0, 0);
		schedule(sim, rng_range(r, 0, TICK_EVERY_MS - 1), EV_TICK, i, 0, 0, 0);
	}
	schedule(sim, 0, EV_STEP, 0, 0, 0, 0);
}

static void sim_free(struct sim *sim)
{
	for (size_t i = 0; i < sim->n; i++) {
		struct server *s = &sim->srv[i];
		if (s->z)
			zab_destroy(s->z);
		disk_free(&s->disk);
		free(s->host.e);
		for (size_t j = 0; j < sim->n; j++)
			chan_flush(&sim->chan[i][j]);
	}
	free(sim->canon.e);
	free(sim->est_sid);
	free(sim->epoch_commit);
	free(sim);
}

void sim_config_default(struct sim_config *cfg, uint64_t seed, int voters)
{
	*cfg = (struct sim_config){.seed = seed,
				   .voters = voters,
				   .observers = SIM_OBSERVER_DEFAULT,
				   .steps = SIM_STEPS_DEFAULT,
				   .snap_policy = SIM_SNAP_COMMITTED};
}

int sim_run(const struct sim_config *cfg, struct sim_result *res)
{
	RK_ASSERT(cfg->voters >= 1 && cfg->voters <= SIM_VOTERS_MAX && cfg->steps > 0);
	memset(res, 0, sizeof *res);
	struct sim *sim = calloc(1, sizeof *sim);
	RK_ASSERT(sim);
	sim->cfg = *cfg;
	sim->res = res;
	rng_seed(&sim->rng, cfg->seed);
	log_set_level(cfg->verbose ? LOG_LEVEL_INFO : LOG_LEVEL_ERROR);
	sim_setup(sim);
	struct event ev;
	while (!sim->stop && pop(sim, &ev)) {
		sim->now_ms = ev.at_ms;
		res->stats.events++;
		dispatch(sim, &ev);
	}
	res->stats.committed = sim->canon.n;
	if (res->verdict != SIM_PASS) {
		report_knobs(sim);
		report_tail(sim);
	}
	sim_free(sim);
	return res->verdict == SIM_PASS ? 0 : -1;
}
