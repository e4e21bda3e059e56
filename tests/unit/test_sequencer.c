/* The sequencer end to end, without sockets: messages in through the
 * cores' rings, deliveries out, against a store whose durability the test
 * controls. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/sequencer.h"
#include "core/jute.h"
#include "core/proto.h"
#include "storage/storage.h"

/* A store that becomes durable only when the test says so, or fails. */
struct fake_store {
	struct storage base;
	int64_t added, committed, durable;
	int fail; /* -errno once failed */
};

static int fake_add(struct storage *st, int64_t zxid, uint32_t type, const void *p, uint32_t len)
{
	((struct fake_store *)st)->added = zxid;
	return 0;
}

static int fake_commit(struct storage *st)
{
	struct fake_store *f = (struct fake_store *)st;
	f->committed = f->added;
	return 0;
}

static void fake_poll(struct storage *st)
{
}

static int64_t fake_durable(struct storage *st)
{
	struct fake_store *f = (struct fake_store *)st;
	return f->fail ? f->fail : f->durable;
}

static int fake_wait_fd(struct storage *st)
{
	return -1;
}

static void fake_close(struct storage *st)
{
	free(st);
}

static int fake_purge(struct storage *st, int64_t zxid)
{
	return 0;
}

/* Rewinding the log is an ensemble follower's; the sequencer never does. */
static const struct storage_ops fake_ops = {.add = fake_add,
					    .commit = fake_commit,
					    .poll = fake_poll,
					    .durable_zxid = fake_durable,
					    .wait_fd = fake_wait_fd,
					    .purge_before = fake_purge,
					    .close = fake_close};

static void no_wake(void *ctx, int core)
{
}

static struct sequencer *seq;
static struct fake_store *store;

static void setup(void)
{
	struct sequencer_config cfg = {.cores = 2,
				       .min_session_timeout_ms = 4000,
				       .max_session_timeout_ms = 40000,
				       .wake = no_wake};
	seq = sequencer_create(&cfg);
	cr_assert_not_null(seq);
	store = calloc(1, sizeof *store);
	store->base.ops = &fake_ops;
	sequencer_attach_storage(seq, &store->base, 0);
}

static void teardown(void)
{
	sequencer_destroy(seq);
}

static struct seq_msg *msg(enum seq_msg_kind kind, int core, uint64_t session, int32_t xid,
			   int32_t op, const void *body, size_t len)
{
	struct seq_msg *m = calloc(1, sizeof *m + len);
	m->kind = kind;
	m->conn_ref = 0x10000u * (uint32_t)(core + 1);
	m->session_id = session;
	m->xid = xid;
	m->op = op;
	m->len = (uint32_t)len;
	memcpy(m->body, body, len);
	cr_assert_eq(sequencer_submit(seq, core, m), 0);
	return m;
}

/* Collect core's deliveries of one kind into a list of frames. */
struct got {
	int n;
	struct delivery hdr[64];
	uint8_t frame[64][512];
};

static void drain(int core, struct got *g)
{
	struct core_msg *m;
	while ((m = sequencer_poll(seq, core))) {
		size_t off = 0;
		while (off < m->deliveries.len) {
			const struct delivery *d = (const void *)(m->deliveries.buf + off);
			cr_assert_lt(g->n, 64);
			g->hdr[g->n] = *d;
			memcpy(g->frame[g->n], d + 1, d->len < 512 ? d->len : 512);
			g->n++;
			off += (sizeof *d + d->len + 7) & ~(size_t)7;
		}
		sequencer_report_gen(seq, core, m->shared->version->gen);
		sequencer_msg_done(m);
	}
}

static uint64_t connect_session(int core)
{
	uint8_t body[ZK_PASSWORD_BYTES + 16] = {0};
	strcpy((char *)body + ZK_PASSWORD_BYTES, "127.0.0.1");
	struct seq_msg *m = calloc(1, sizeof *m + sizeof body);
	m->kind = SEQ_CONNECT;
	m->timeout_ms = 10000;
	m->len = sizeof body;
	memcpy(m->body, body, sizeof body);
	cr_assert_eq(sequencer_submit(seq, core, m), 0);
	sequencer_run(seq, 1000);
	store->durable = store->committed;
	sequencer_run(seq, 1000);
	struct got g = {0};
	drain(core, &g);
	cr_assert_eq(g.n, 1);
	cr_assert_eq(g.hdr[0].kind, DLV_CONNECTED);
	cr_assert_neq(g.hdr[0].session_id, 0);
	cr_assert_eq(g.hdr[0].timeout_ms, 10000);
	return g.hdr[0].session_id;
}

static size_t create_body(uint8_t *buf, const char *path)
{
	struct jute_out out;
	jute_out_init(&out, 0, 4096);
	jute_put_cstr(&out, path);
	jute_put_buffer(&out, "v", 1);
	jute_put_int(&out, 1); /* world:anyone ALL */
	jute_put_int(&out, ZPERM_ALL);
	jute_put_cstr(&out, "world");
	jute_put_cstr(&out, "anyone");
	jute_put_int(&out, 0);
	size_t n = out.len;
	memcpy(buf, out.buf, n);
	jute_out_free(&out);
	return n;
}

static int32_t reply_err(const uint8_t *frame)
{
	return (int32_t)jute_be32_get(frame + 16);
}

Test(sequencer, reply_waits_for_durability, .init = setup, .fini = teardown)
{
	uint64_t s = connect_session(1);
	uint8_t body[256];
	size_t n = create_body(body, "/a");
	msg(SEQ_WRITE, 1, s, 7, ZOP_CREATE, body, n);
	sequencer_run(seq, 1000);
	struct got g = {0};
	drain(1, &g);
	cr_assert_eq(g.n, 0, "a reply left before its txn was durable");
	cr_assert_null(tree_lookup(tree_acquire(sequencer_tree(seq)), "/a", 2),
		       "readers saw a change that is not durable");
	store->durable = store->committed;
	sequencer_run(seq, 1000);
	drain(1, &g);
	cr_assert_eq(g.n, 1);
	cr_assert_eq(g.hdr[0].kind, DLV_REPLY);
	cr_assert_eq(reply_err(g.frame[0]), ZOK);
	cr_assert_not_null(tree_lookup(tree_acquire(sequencer_tree(seq)), "/a", 2));
}

Test(sequencer, validation_sees_writes_not_yet_durable, .init = setup, .fini = teardown)
{
	uint64_t s = connect_session(0);
	uint8_t body[256];
	size_t n = create_body(body, "/dup");
	msg(SEQ_WRITE, 0, s, 1, ZOP_CREATE, body, n);
	sequencer_run(seq, 1000);
	msg(SEQ_WRITE, 0, s, 2, ZOP_CREATE, body, n);
	sequencer_run(seq, 1000);
	store->durable = store->committed;
	sequencer_run(seq, 1000);
	struct got g = {0};
	drain(0, &g);
	cr_assert_eq(g.n, 2);
	cr_assert_eq(reply_err(g.frame[0]), ZOK);
	cr_assert_eq(reply_err(g.frame[1]), ZNODEEXISTS);
}

Test(sequencer, failed_store_acknowledges_nothing, .init = setup, .fini = teardown)
{
	uint64_t s = connect_session(1);
	uint8_t body[256];
	size_t n = create_body(body, "/lost");
	msg(SEQ_WRITE, 1, s, 3, ZOP_CREATE, body, n);
	sequencer_run(seq, 1000);
	store->fail = -EIO;
	sequencer_run(seq, 1000);
	struct got g = {0};
	drain(1, &g);
	cr_assert_eq(g.n, 1);
	cr_assert_eq(g.hdr[0].kind, DLV_REFUSED, "a write was acknowledged after the log failed");
	cr_assert_null(tree_lookup(tree_acquire(sequencer_tree(seq)), "/lost", 5));
	cr_assert(atomic_load(&sequencer_stats(seq)->storage_failed));
	/* New writes are refused outright. */
	n = create_body(body, "/later");
	msg(SEQ_WRITE, 1, s, 4, ZOP_CREATE, body, n);
	sequencer_run(seq, 1000);
	drain(1, &g);
	cr_assert_eq(g.n, 2);
	cr_assert(g.hdr[1].kind == DLV_REFUSED ||
		  (g.hdr[1].kind == DLV_REPLY && reply_err(g.frame[1]) == ZSYSTEMERROR));
	cr_assert_null(tree_lookup(tree_acquire(sequencer_tree(seq)), "/later", 6));
}

Test(sequencer, write_from_other_core_is_session_moved, .init = setup, .fini = teardown)
{
	uint64_t s = connect_session(0);
	uint8_t body[256];
	size_t n = create_body(body, "/m");
	msg(SEQ_WRITE, 1, s, 9, ZOP_CREATE, body, n);
	sequencer_run(seq, 1000);
	store->durable = store->committed;
	sequencer_run(seq, 1000);
	struct got g = {0};
	drain(1, &g);
	cr_assert_eq(g.n, 1);
	cr_assert_eq(reply_err(g.frame[0]), ZSESSIONMOVED);
}

Test(sequencer, unknown_session_is_expired, .init = setup, .fini = teardown)
{
	uint8_t body[256];
	size_t n = create_body(body, "/x");
	msg(SEQ_WRITE, 0, 0x1234, 5, ZOP_CREATE, body, n);
	sequencer_run(seq, 1000);
	store->durable = store->committed;
	sequencer_run(seq, 1000);
	struct got g = {0};
	drain(0, &g);
	cr_assert_eq(g.n, 1);
	cr_assert_eq(reply_err(g.frame[0]), ZSESSIONEXPIRED);
}

Test(sequencer, expiry_deletes_ephemerals_and_kills_connection, .init = setup, .fini = teardown)
{
	uint64_t s = connect_session(1);
	uint8_t body[256];
	size_t n = create_body(body, "/e");
	body[n - 1] = ZCM_EPHEMERAL; /* flags, last int32 */
	msg(SEQ_WRITE, 1, s, 1, ZOP_CREATE, body, n);
	sequencer_run(seq, 1000);
	store->durable = store->committed;
	sequencer_run(seq, 1000);
	struct got g = {0};
	drain(1, &g);
	cr_assert_eq(reply_err(g.frame[0]), ZOK);
	cr_assert_not_null(tree_lookup(tree_acquire(sequencer_tree(seq)), "/e", 2));
	sequencer_tick(seq, 1000 + 5000); /* before the 10 s deadline */
	store->durable = store->committed;
	sequencer_run(seq, 6000);
	cr_assert_not_null(tree_lookup(tree_acquire(sequencer_tree(seq)), "/e", 2));
	sequencer_tick(seq, 1000 + 10001);
	store->durable = store->committed;
	sequencer_run(seq, 12000);
	g.n = 0;
	drain(1, &g);
	cr_assert_null(tree_lookup(tree_acquire(sequencer_tree(seq)), "/e", 2));
	cr_assert_eq(g.n, 1);
	cr_assert_eq(g.hdr[0].kind, DLV_KILL);
	cr_assert_eq(g.hdr[0].session_id, s);
}
