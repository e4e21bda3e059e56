/* What the bench's sessions send and how replies count. In a run: getData
 * or setData of a uniformly random key, as fast as the window allows
 * (closed loop) or on a fixed schedule (open loop, latency measured from
 * the intended send time). In setup: create the prefix and the keys, then
 * make keys that already existed value_size bytes long. */
#include "bench/client.h"

#include <errno.h>

#include "bench/wire.h"
#include "core/log.h"

#define RESIZE_FLAG (UINT32_C(1) << 31)

/* xorshift64*: fast, and good enough to pick keys and op types. */
static uint64_t rng_next(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * UINT64_C(0x2545F4914F6CDD1D);
}

const char *op_kind_name(enum op_kind k)
{
	switch (k) {
	case OPK_READ:
		return "getData";
	case OPK_WRITE:
		return "setData";
	case OPK_CREATE:
		return "create";
	case OPK_EXISTS:
		return "exists";
	case OPK_RESIZE:
		return "setData";
	case OPK_SYNC:
		return "sync";
	case OPK_COUNT:
		break;
	}
	return "?";
}

static void key_path(const struct bench *b, uint32_t key, const char **p, int32_t *len)
{
	*p = b->paths + b->path_off[key];
	*len = (int32_t)(b->path_off[key + 1] - b->path_off[key]);
}

/* Setup items: the prefix's ancestors-or-self first ("/a", "/a/b"), then
 * the keys; one session creates them in order, so parents come first. */
static void setup_item_path(const struct bench *b, uint32_t item, const char **p, int32_t *len)
{
	if (item < (uint32_t)b->prefix_depth) {
		*p = b->cfg.prefix;
		*len = b->prefix_ends[item];
		return;
	}
	key_path(b, item - (uint32_t)b->prefix_depth, p, len);
}

static uint32_t setup_items(const struct bench *b)
{
	return (uint32_t)b->prefix_depth + (uint32_t)b->cfg.keys;
}

static bool setup_next(struct client *s, uint64_t now, struct op *op)
{
	struct worker *w = s->w;
	uint32_t keys = (uint32_t)w->b->cfg.keys;
	op->start_ns = now;
	if (w->resize_head != w->resize_tail) {
		uint32_t e = w->resize_keys[w->resize_head++ % keys];
		op->kind = (e & RESIZE_FLAG) ? OPK_RESIZE : OPK_EXISTS;
		op->key = e & ~RESIZE_FLAG;
		return true;
	}
	if (s->setup_next < setup_items(w->b)) {
		op->kind = OPK_CREATE;
		op->key = s->setup_next++;
		return true;
	}
	return false;
}

static bool run_next(struct client *s, uint64_t now, struct op *op)
{
	struct worker *w = s->w;
	const struct bench_config *cfg = &w->b->cfg;
	if (w->measure_to_ns == 0 || workload_done(s, now))
		return false;
	op->start_ns = now;
	if (cfg->rate_ops > 0) {
		uint64_t due = workload_next_due(s);
		if (due > now)
			return false;
		s->sched_next++;
		op->start_ns = due;
	}
	op->kind = (rng_next(&w->rng) >> 11) < w->read_threshold ? OPK_READ : OPK_WRITE;
	op->key = (uint32_t)(((rng_next(&w->rng) >> 32) * (uint64_t)cfg->keys) >> 32);
	return true;
}

bool workload_next(struct client *s, uint64_t now, struct op *op)
{
	switch (s->w->mode) {
	case WORKER_SETUP:
		return setup_next(s, now, op);
	case WORKER_RUN:
		return run_next(s, now, op);
	case WORKER_MODE_COUNT:
		break;
	}
	return false;
}

bool workload_done(const struct client *s, uint64_t now)
{
	const struct worker *w = s->w;
	switch (w->mode) {
	case WORKER_SETUP:
		return s->setup_next >= setup_items(w->b) && w->resize_head == w->resize_tail;
	case WORKER_RUN:
		return atomic_load_explicit(&w->b->abort_run, memory_order_relaxed) ||
		       (w->measure_to_ns && now >= w->measure_to_ns);
	case WORKER_MODE_COUNT:
		break;
	}
	return true;
}

uint64_t workload_next_due(const struct client *s)
{
	const struct worker *w = s->w;
	if (w->mode != WORKER_RUN || w->b->cfg.rate_ops <= 0 || w->measure_to_ns == 0 ||
	    atomic_load_explicit(&w->b->abort_run, memory_order_relaxed))
		return UINT64_MAX;
	uint64_t due =
	    s->sched_origin_ns + (uint64_t)((double)s->sched_next * s->sched_interval_ns);
	/* Nothing is due after the end: a session still draining replies must
	 * not keep an expired timer firing. */
	return due < w->measure_to_ns ? due : UINT64_MAX;
}

void workload_put(struct client *s, const struct op *op, int32_t xid)
{
	const struct bench *b = s->w->b;
	const char *path;
	int32_t len;
	switch (op->kind) {
	case OPK_READ:
		key_path(b, op->key, &path, &len);
		wire_put_get_data(&s->wbuf, xid, path, len);
		return;
	case OPK_WRITE:
	case OPK_RESIZE:
		key_path(b, op->key, &path, &len);
		wire_put_set_data(&s->wbuf, xid, path, len, b->value, b->cfg.value_size);
		return;
	case OPK_EXISTS:
		key_path(b, op->key, &path, &len);
		wire_put_exists(&s->wbuf, xid, path, len);
		return;
	case OPK_CREATE:
		setup_item_path(b, op->key, &path, &len);
		wire_put_create(&s->wbuf, xid, path, len, b->value,
				op->key < (uint32_t)b->prefix_depth ? 0 : b->cfg.value_size);
		return;
	case OPK_SYNC:
		wire_put_sync(&s->wbuf, xid, "/", 1);
		return;
	case OPK_COUNT:
		break;
	}
	rk_assert_fail(__FILE__, __LINE__, "unknown op kind");
}

static int err_slot(int32_t err)
{
	return err >= 0 ? 0 : err < -128 ? 128 : -err;
}

void series_init(struct series_bucket *sb, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		sb[i] = (struct series_bucket){.write_first_ns = UINT64_MAX};
}

/* at_ns: since the measured window began, so inside it. */
static void series_record(struct worker *w, enum op_kind kind, int code, uint64_t at_ns)
{
	uint64_t width_ns = (uint64_t)(w->b->cfg.series_ms * 1e6);
	uint64_t i = at_ns / width_ns;
	struct series_bucket *sb = &w->series[i < w->series_len ? i : w->series_len - 1];
	if (code) {
		sb->errors++;
	} else if (kind == OPK_READ) {
		sb->reads++;
	} else {
		sb->writes++;
		sb->write_first_ns = at_ns < sb->write_first_ns ? at_ns : sb->write_first_ns;
		sb->write_last_ns = at_ns > sb->write_last_ns ? at_ns : sb->write_last_ns;
	}
}

static void record(struct worker *w, enum op_kind kind, int code, uint64_t start_ns, uint64_t now)
{
	if (now < w->measure_from_ns || now >= w->measure_to_ns)
		return;
	struct op_stats *st = &w->stats[kind];
	if (code) {
		st->errors++;
		st->err_by_code[code]++;
	} else {
		st->ok++;
	}
	hist_record(&st->hist, now > start_ns ? (now - start_ns) / 1000 : 0);
	if (w->series && (kind == OPK_READ || kind == OPK_WRITE))
		series_record(w, kind, code, now - w->measure_from_ns);
}

void workload_lost(struct client *s, const struct slot *sl, uint64_t now)
{
	if (sl->kind == OPK_READ || sl->kind == OPK_WRITE)
		record(s->w, sl->kind, err_slot(ZCONNECTIONLOSS), sl->start_ns, now);
}

/* Reads must return value_size bytes; setData's Stat must say so too. */
static int on_run_reply(struct client *s, const struct slot *sl, int32_t err, struct jute_in *in,
			uint64_t now)
{
	int32_t want = s->w->b->cfg.value_size;
	int code = err_slot(err);
	if (err == ZOK) {
		struct zk_stat st;
		int32_t data_len = want;
		int bad = sl->kind == OPK_READ ? wire_get_data(in, &data_len, &st)
					       : wire_get_stat(in, &st);
		if (bad)
			return client_fail(s, -EBADMSG, "malformed %s reply",
					   op_kind_name(sl->kind));
		if (data_len != want || st.data_length != want)
			code = ERR_SIZE_MISMATCH;
	}
	record(s->w, sl->kind, code, sl->start_ns, now);
	return 0;
}

static void resize_push(struct worker *w, uint32_t entry)
{
	uint32_t keys = (uint32_t)w->b->cfg.keys;
	RK_ASSERT(w->resize_tail - w->resize_head < keys);
	w->resize_keys[w->resize_tail++ % keys] = entry;
}

static int setup_fail(struct client *s, const struct slot *sl, int32_t err)
{
	const char *path;
	int32_t len;
	const struct bench *b = s->w->b;
	if (sl->kind == OPK_CREATE)
		setup_item_path(b, sl->key, &path, &len);
	else
		key_path(b, sl->key, &path, &len);
	return client_fail(s, 0, "setup %s %.*s: %s (%d)", op_kind_name(sl->kind), (int)len, path,
			   proto_err_name(err), err);
}

static int on_setup_reply(struct client *s, const struct slot *sl, int32_t err, struct jute_in *in,
			  uint64_t now)
{
	struct worker *w = s->w;
	uint32_t depth = (uint32_t)w->b->prefix_depth;
	struct zk_stat st;
	record(w, sl->kind, 0, sl->start_ns, now);
	if (sl->kind == OPK_CREATE && err == ZNODEEXISTS) {
		if (sl->key >= depth) {
			w->setup.existed++;
			resize_push(w, sl->key - depth);
		}
		return 0;
	}
	if (err != ZOK)
		return setup_fail(s, sl, err);
	switch (sl->kind) {
	case OPK_CREATE:
		w->setup.created += sl->key >= depth;
		return 0;
	case OPK_EXISTS:
		if (wire_get_stat(in, &st))
			return client_fail(s, -EBADMSG, "malformed exists reply");
		if (st.data_length != w->b->cfg.value_size)
			resize_push(w, sl->key | RESIZE_FLAG);
		return 0;
	case OPK_RESIZE:
		w->setup.resized++;
		return 0;
	case OPK_READ:
	case OPK_WRITE:
	case OPK_SYNC:
	case OPK_COUNT:
		break;
	}
	rk_assert_fail(__FILE__, __LINE__, "not a setup op");
}

int workload_reply(struct client *s, const struct slot *sl, int32_t err, struct jute_in *in,
		   uint64_t now)
{
	switch (sl->kind) {
	case OPK_READ:
	case OPK_WRITE:
		return on_run_reply(s, sl, err, in, now);
	case OPK_CREATE:
	case OPK_EXISTS:
	case OPK_RESIZE:
		return on_setup_reply(s, sl, err, in, now);
	case OPK_SYNC:
	case OPK_COUNT:
		break;
	}
	rk_assert_fail(__FILE__, __LINE__, "reply for an op the workload did not send");
}
