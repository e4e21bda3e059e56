/* Snapshot codec: an exact round trip of every znode's Stat, data and ACL,
 * the sessions and their ephemerals; isolation from a working tree that
 * keeps changing (also while the encoder runs on another thread); deep and
 * large trees; and refusal, never an assertion, of truncated, garbled and
 * inconsistent bodies. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/acl.h"
#include "core/session.h"
#include "core/snapshot.h"
#include "core/tree.h"

#if defined(__SANITIZE_ADDRESS__) /* gcc */
#define UNDER_ASAN 1
#elif defined(__has_feature) /* clang */
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifdef UNDER_ASAN
#include <sanitizer/lsan_interface.h>
#define LARGE_ZNODES 100000u
#else
#define LARGE_ZNODES 1000000u
#endif

#define OWNER_CONTAINER ((int64_t)INT64_MIN)
#define OWNER_TTL(ms)	((int64_t)(0xff00000000000000ULL | (uint64_t)(ms)))

/* No Criterion timeouts here: with them its runner leaks a timer under
 * LeakSanitizer when tests run in parallel; ctest bounds the run. */

static bool leaks_found(void)
{
#ifdef UNDER_ASAN
	return __lsan_do_recoverable_leak_check() != 0;
#else
	return false;
#endif
}

/* ---- a body in memory ---- */

struct buf {
	uint8_t *p;
	size_t len, cap;
	size_t writes, write_max; /* calls and largest chunk */
	size_t fail_after;	  /* bytes accepted before -ENOSPC; 0 = never */
};

static int buf_write(void *ctx, const void *p, size_t n)
{
	struct buf *b = ctx;
	if (b->fail_after && b->len + n > b->fail_after)
		return -ENOSPC;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		cr_assert_not_null(b->p);
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->writes++;
	if (n > b->write_max)
		b->write_max = n;
	return 0;
}

static void buf_put(struct buf *b, const void *p, size_t n)
{
	cr_assert_eq(buf_write(b, p, n), 0);
}

/* ---- building trees as core/txn.c does ---- */

static int64_t next_zxid = 1;

static const struct znode *wget(const struct tree *t, const char *path)
{
	return tree_lookup(tree_working(t), path, strlen(path));
}

/* data NULL = null data. The parent's create count goes up by one. */
static void mk_full(struct tree *t, const char *path, const char *data, int32_t data_len,
		    const struct acl_list *acl, int64_t owner)
{
	size_t len = strlen(path);
	const struct znode *p = tree_lookup(tree_working(t), path, tree_parent_len(path, len));
	cr_assert_not_null(p, "parent of %s", path);
	int64_t zxid = next_zxid++;
	cr_assert_eq(tree_node_create(t, path, len, data, data_len, acl, owner, zxid, zxid * 1000,
				      p->stat.cversion + 1),
		     0, "create %s", path);
	tree_set_zxid(t, zxid);
}

static void mk(struct tree *t, const char *path, const char *data)
{
	mk_full(t, path, data, data ? (int32_t)strlen(data) : -1, &acl_open_unsafe, 0);
}

static void mk_ephemeral(struct tree *t, struct session_table *st, struct session *s,
			 const char *path)
{
	mk_full(t, path, "e", 1, &acl_open_unsafe, (int64_t)s->id);
	cr_assert_eq(session_ephemeral_add(st, s, path, strlen(path)), 0);
}

static void rm(struct tree *t, const char *path)
{
	int64_t zxid = next_zxid++;
	cr_assert_eq(tree_node_delete(t, path, strlen(path), zxid), 0, "delete %s", path);
	tree_set_zxid(t, zxid);
}

static void set(struct tree *t, const char *path, const char *data)
{
	const struct znode *n = wget(t, path);
	int64_t zxid = next_zxid++;
	cr_assert_eq(tree_node_set_data(t, path, strlen(path), data,
					data ? (int32_t)strlen(data) : -1, zxid, zxid * 1000,
					n->stat.version + 1),
		     0);
	tree_set_zxid(t, zxid);
}

static struct acl_list *one_acl(const char *scheme, const char *id, int32_t perms)
{
	struct acl_entry e = {perms, {scheme, id}};
	struct acl_list *l = NULL;
	cr_assert_eq(acl_list_new(&e, 1, &l), 0);
	return l;
}

/* ---- comparing ---- */

static bool stat_equal(const struct zk_stat *a, const struct zk_stat *b)
{
	return a->czxid == b->czxid && a->mzxid == b->mzxid && a->ctime == b->ctime &&
	       a->mtime == b->mtime && a->version == b->version && a->cversion == b->cversion &&
	       a->aversion == b->aversion && a->ephemeral_owner == b->ephemeral_owner &&
	       a->data_length == b->data_length && a->num_children == b->num_children &&
	       a->pzxid == b->pzxid;
}

struct cmp {
	const struct tree_version *other;
	size_t nodes, bad;
};

static int cmp_node(void *ctx, const void *key, size_t len, void *val)
{
	struct cmp *c = ctx;
	const struct znode *a = val;
	const struct znode *b = tree_lookup(c->other, key, len);
	c->nodes++;
	bool same = b && stat_equal(&a->stat, &b->stat) && !a->data == !b->data &&
		    (!a->data || memcmp(a->data, b->data, (size_t)a->stat.data_length) == 0) &&
		    a->acl->encoded_len == b->acl->encoded_len &&
		    memcmp(a->acl->encoded, b->acl->encoded, a->acl->encoded_len) == 0 &&
		    a->children.count == b->children.count;
	if (!same && c->bad++ < 5)
		cr_log_error("znode %.*s differs after the round trip", (int)len,
			     (const char *)key);
	return 0;
}

/* Every znode of a is in b with the same Stat, data, ACL and children. */
static void assert_same_tree(const struct tree_version *a, const struct tree_version *b)
{
	cr_assert_eq(tree_node_count(a), tree_node_count(b));
	cr_assert_eq(a->zxid, b->zxid);
	struct cmp c = {.other = b};
	hamt_foreach(&a->nodes, cmp_node, &c);
	cr_assert_eq(c.nodes, tree_node_count(a));
	cr_assert_eq(c.bad, 0, "%zu znodes differ", c.bad);
}

/* ---- sessions ---- */

#define SESSIONS_MAX 8

struct sessions {
	struct snap_session s[SESSIONS_MAX];
	size_t n;
};

static void collect_session(void *ctx, struct session *s)
{
	struct sessions *ss = ctx;
	cr_assert_lt(ss->n, SESSIONS_MAX);
	struct snap_session *o = &ss->s[ss->n++];
	o->id = s->id;
	o->timeout_ms = s->timeout_ms;
	memcpy(o->passwd, s->passwd, sizeof o->passwd);
}

static struct sessions sessions_of(struct session_table *st)
{
	struct sessions ss = {.n = 0};
	session_foreach(st, collect_session, &ss);
	return ss;
}

struct eph_cmp {
	struct session *other;
	size_t missing;
};

static int eph_in_other(void *ctx, const void *key, size_t len, void *val)
{
	struct eph_cmp *e = ctx;
	e->missing += !hamt_get(&e->other->ephemerals, key, len, hamt_hash(key, len), NULL);
	return 0;
}

static void assert_same_sessions(struct session_table *a, struct session_table *b)
{
	struct sessions sa = sessions_of(a);
	cr_assert_eq(session_count(b), sa.n);
	for (size_t i = 0; i < sa.n; i++) {
		struct session *x = session_find(a, sa.s[i].id);
		struct session *y = session_find(b, sa.s[i].id);
		cr_assert_not_null(y, "session 0x%lx lost", (unsigned long)sa.s[i].id);
		cr_assert_eq(y->timeout_ms, x->timeout_ms);
		cr_assert_arr_eq(y->passwd, x->passwd, sizeof x->passwd);
		cr_assert_eq(y->ephemerals.count, x->ephemerals.count);
		struct eph_cmp e = {.other = y};
		hamt_foreach(&x->ephemerals, eph_in_other, &e);
		cr_assert_eq(e.missing, 0);
	}
}

/* ---- encode and decode ---- */

static struct buf encode(const struct tree_version *v, struct session_table *st)
{
	struct sessions ss = st ? sessions_of(st) : (struct sessions){.n = 0};
	struct buf b = {0};
	cr_assert_eq(snapshot_encode(v, ss.s, ss.n, buf_write, &b), 0);
	return b;
}

struct image {
	struct tree *t;
	struct session_table *st;
	int64_t zxid;
	struct snap_fault fault;
};

static int decode(const void *p, size_t len, struct image *im)
{
	im->t = tree_create();
	im->st = session_table_create(2, 1700000000000LL);
	cr_assert(im->t && im->st);
	im->zxid = -2;
	return snapshot_decode_report(p, len, im->t, im->st, &im->zxid, &im->fault);
}

static void image_free(struct image *im)
{
	session_table_destroy(im->st);
	tree_destroy(im->t);
}

/* A tree with most of what a Stat can hold: nested nodes, sequential
 * counters bumped past the child count by deletes, null and empty data,
 * several ACLs, ephemerals of two sessions, a container and a TTL node,
 * changed system nodes. */
static void build_rich(struct tree *t, struct session_table *st)
{
	struct acl_list *ro = one_acl(ACL_SCHEME_WORLD, ACL_ID_ANYONE, ZPERM_READ);
	struct acl_list *ip = one_acl(ACL_SCHEME_IP, "10.0.0.0/8", ZPERM_ALL);
	struct acl_list *dg = one_acl(ACL_SCHEME_DIGEST, "bob:x5kHqQ4XgM3a1Yqz7m0Qq3M2aBk=", 7);
	struct session *s1 = session_open(st, 30000, 1, 1000);
	struct session *s2 = session_open(st, 6000, 0, 1000);
	session_open(st, 4000, 2, 1000); /* a session with no ephemerals */
	mk(t, "/app", "config");
	mk(t, "/app/null", NULL);
	mk(t, "/app/empty", "");
	mk_full(t, "/app/bin", "\0\1\2\377", 4, dg, 0);
	mk_full(t, "/app/ro", "r", 1, ro, 0);
	mk_full(t, "/app/ip", NULL, -1, ip, 0);
	mk(t, "/locks", NULL);
	for (int i = 0; i < 5; i++) {
		char p[64];
		snprintf(p, sizeof p, "/locks/lock-%010d", wget(t, "/locks")->stat.cversion);
		mk_ephemeral(t, st, i % 2 ? s1 : s2, p);
	}
	rm(t, "/locks/lock-0000000001");
	session_ephemeral_del(st, s1, "/locks/lock-0000000001", 22);
	mk_full(t, "/container", NULL, -1, &acl_open_unsafe, OWNER_CONTAINER);
	mk_full(t, "/ttl", "t", 1, &acl_open_unsafe, OWNER_TTL(60000));
	mk(t, "/a", NULL);
	mk(t, "/a/b", "x");
	mk(t, "/a/b/c", "y");
	mk(t, "/a/b/c/d", "z");
	set(t, "/a/b", "xx");
	set(t, "/a/b", NULL);
	cr_assert_eq(tree_node_set_acl(t, "/a/b/c", 6, ro, 3), 0);
	mk(t, "/zookeeper/quota/app", NULL);
	set(t, "/zookeeper/config", "server.1=localhost:2888:3888");
	acl_list_free(ro);
	acl_list_free(ip);
	acl_list_free(dg);
}

Test(snapshot, round_trip_keeps_every_stat_data_acl_session_and_ephemeral)
{
	struct tree *t = tree_create();
	struct session_table *st = session_table_create(1, 1700000000000LL);
	build_rich(t, st);
	struct buf b = encode(tree_working(t), st);

	struct image im;
	cr_assert_eq(decode(b.p, b.len, &im), 0, "refused at %zu: %s", im.fault.off, im.fault.what);
	cr_assert_eq(im.zxid, tree_working(t)->zxid);
	assert_same_tree(tree_working(t), tree_working(im.t));
	assert_same_sessions(st, im.st);

	/* Null and empty stay distinct; the system nodes carry their new Stat. */
	cr_assert_null(wget(im.t, "/app/null")->data);
	cr_assert_not_null(wget(im.t, "/app/empty")->data);
	cr_assert_null(wget(im.t, "/a/b")->data);
	cr_assert_eq(wget(im.t, "/locks")->stat.cversion, 5);
	cr_assert_eq(wget(im.t, "/locks")->stat.num_children, 4);
	cr_assert_eq(wget(im.t, "/zookeeper/quota")->stat.num_children, 1);
	cr_assert_eq(wget(im.t, "/zookeeper/config")->stat.aversion, -1);
	cr_assert_eq(wget(im.t, "/zookeeper/config")->stat.version, 1);

	/* The restored tree works like any other: it publishes and changes. */
	tree_publish(im.t);
	mk(im.t, "/after", "1");
	rm(im.t, "/app/null");
	tree_publish(im.t);
	tree_reclaim(im.t, UINT64_MAX);
	cr_assert_eq(tree_node_count(tree_acquire(im.t)), tree_node_count(tree_working(t)));

	image_free(&im);
	free(b.p);
	session_table_destroy(st);
	tree_destroy(t);
	cr_assert_not(leaks_found());
}

Test(snapshot, the_acl_table_defines_each_acl_once)
{
	struct tree *t = tree_create();
	struct acl_list *ro = one_acl(ACL_SCHEME_WORLD, ACL_ID_ANYONE, ZPERM_READ);
	mk(t, "/d", NULL);
	char p[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(p, sizeof p, "/d/%d", i);
		mk_full(t, p, NULL, -1, i % 2 ? ro : &acl_open_unsafe, 0);
	}
	acl_list_free(ro);
	struct buf b = encode(tree_working(t), NULL);
	/* Header, then each record (80 bytes and the path: no znode has data,
	 * the system nodes' is empty), then the two distinct ACLs
	 * (world:anyone ALL and READ; config's READ is the same) once each:
	 * a length and a 27-byte vector<ACL>. */
	struct snap_body_header h;
	memcpy(&h, b.p, sizeof h);
	cr_assert_eq(h.n_znodes, 1005);
	size_t paths = 1 + 10 + 16 + 17 + 2;
	for (int i = 0; i < 1000; i++)
		paths += (size_t)snprintf(p, sizeof p, "/d/%d", i);
	cr_assert_eq(b.len, sizeof h + 1005 * sizeof(struct snap_znode_record) + paths + 2 * 31);
	free(b.p);
	tree_destroy(t);
}

Test(snapshot, encode_streams_in_large_chunks_and_stops_at_a_write_error)
{
	struct tree *t = tree_create();
	char p[32];
	mk(t, "/d", NULL);
	for (int i = 0; i < 30000; i++) {
		snprintf(p, sizeof p, "/d/node-%d", i);
		mk(t, p, "some data");
	}
	char *big = malloc(3 << 20);
	memset(big, 'b', 3 << 20);
	mk_full(t, "/big", big, 3 << 20, &acl_open_unsafe, 0);
	free(big);
	struct buf b = encode(tree_working(t), NULL);
	cr_assert_gt(b.len, 5u << 20);
	cr_assert_leq(b.writes, b.len / SNAP_ENCODE_CHUNK_BYTES + 3, "%zu writes for %zu bytes",
		      b.writes, b.len);
	struct image im;
	cr_assert_eq(decode(b.p, b.len, &im), 0);
	assert_same_tree(tree_working(t), tree_working(im.t));
	image_free(&im);

	struct buf fail = {.fail_after = 2u << 20};
	cr_assert_eq(snapshot_encode(tree_working(t), NULL, 0, buf_write, &fail), -ENOSPC);
	free(fail.p);
	free(b.p);
	tree_destroy(t);
	cr_assert_not(leaks_found());
}

Test(snapshot, a_path_a_thousand_levels_deep_round_trips)
{
	struct tree *t = tree_create();
	char path[4096] = "";
	for (int i = 0; i < 1000; i++) {
		strcat(path, "/n");
		mk(t, path, i % 3 ? "d" : NULL);
	}
	struct buf b = encode(tree_working(t), NULL);
	struct image im;
	cr_assert_eq(decode(b.p, b.len, &im), 0);
	assert_same_tree(tree_working(t), tree_working(im.t));
	image_free(&im);
	free(b.p);
	tree_destroy(t);
}

/* ---- isolation ---- */

static void churn(struct tree *t, int rounds)
{
	char p[64];
	for (int i = 0; i < rounds; i++) {
		snprintf(p, sizeof p, "/churn-%d", i);
		mk(t, p, "new");
		set(t, "/app", i % 2 ? "changed" : NULL);
		if (i % 3 == 0)
			rm(t, p);
		if (i == 0) {
			rm(t, "/a/b/c/d");
			rm(t, "/app/empty");
		}
		tree_publish(t);
	}
}

Test(snapshot, an_old_version_encodes_unchanged_while_the_tree_moves_on)
{
	struct tree *t = tree_create();
	struct session_table *st = session_table_create(1, 1700000000000LL);
	build_rich(t, st);
	struct buf before = encode(tree_working(t), st);
	tree_publish(t);
	const struct tree_version *v = tree_acquire(t);

	churn(t, 200);
	/* Reclaim everything no reader of v needs. */
	tree_reclaim(t, v->gen);
	struct buf after = encode(v, st);
	cr_assert_eq(after.len, before.len);
	cr_assert_arr_eq(after.p, before.p, before.len);
	struct image im;
	cr_assert_eq(decode(after.p, after.len, &im), 0);
	assert_same_tree(v, tree_working(im.t));
	cr_assert_null(wget(im.t, "/churn-1"));
	image_free(&im);
	free(before.p);
	free(after.p);
	session_table_destroy(st);
	tree_destroy(t);
	cr_assert_not(leaks_found());
}

struct bg_encode {
	const struct tree_version *v;
	struct snap_session *s;
	size_t n;
	struct buf out;
	int rc;
};

static void *encode_thread(void *arg)
{
	struct bg_encode *e = arg;
	for (int i = 0; i < 5; i++) {
		e->out.len = 0;
		e->rc = snapshot_encode(e->v, e->s, e->n, buf_write, &e->out);
	}
	return NULL;
}

Test(snapshot, the_encoder_runs_on_its_own_thread_while_the_sequencer_writes)
{
	struct tree *t = tree_create();
	struct session_table *st = session_table_create(1, 1700000000000LL);
	build_rich(t, st);
	char p[64];
	mk(t, "/bulk", NULL);
	for (int i = 0; i < 5000; i++) {
		snprintf(p, sizeof p, "/bulk/%d", i);
		mk(t, p, "payload");
	}
	struct buf expect = encode(tree_working(t), st);
	tree_publish(t);
	struct sessions ss = sessions_of(st);
	struct bg_encode e = {.v = tree_acquire(t), .s = ss.s, .n = ss.n};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, encode_thread, &e), 0);
	/* The writer keeps changing and reclaiming, never past e.v's
	 * generation: the encoder thread holds that reader slot. */
	for (int i = 0; i < 5000; i++) {
		snprintf(p, sizeof p, "/bulk/%d", i);
		if (i % 2)
			rm(t, p);
		else
			set(t, p, "changed");
		if (i % 64 == 0) {
			tree_publish(t);
			tree_reclaim(t, e.v->gen);
		}
	}
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_assert_eq(e.rc, 0);
	cr_assert_eq(e.out.len, expect.len);
	cr_assert_arr_eq(e.out.p, expect.p, expect.len);
	free(e.out.p);
	free(expect.p);
	session_table_destroy(st);
	tree_destroy(t);
}

/* ---- size ---- */

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* LARGE_ZNODES znodes in a realistic shape: 1,000 directories of
 * sequential-style children, one flat directory of 10% of them. */
Test(snapshot, a_large_tree_round_trips)
{
	struct tree *t = tree_create();
	char p[64];
	const unsigned dirs = 1000, flat = LARGE_ZNODES / 10;
	const unsigned per_dir = (LARGE_ZNODES - flat - dirs - 1) / dirs;
	mk(t, "/flat", NULL);
	for (unsigned i = 0; i < flat; i++) {
		snprintf(p, sizeof p, "/flat/member-%010u", i);
		mk(t, p, "10.0.0.1:2181");
		if (i % 4096 == 4095) {
			tree_publish(t);
			tree_reclaim(t, UINT64_MAX);
		}
	}
	for (unsigned d = 0; d < dirs; d++) {
		snprintf(p, sizeof p, "/service-%u", d);
		mk(t, p, NULL);
		for (unsigned i = 0; i < per_dir; i++) {
			snprintf(p, sizeof p, "/service-%u/lock-%010u", d, i);
			mk(t, p, "");
		}
		tree_publish(t);
		tree_reclaim(t, UINT64_MAX);
	}
	size_t n = tree_node_count(tree_working(t));
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct buf b = encode(tree_working(t), NULL);
	double enc = seconds_since(&t0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct image im;
	cr_assert_eq(decode(b.p, b.len, &im), 0, "refused at %zu: %s", im.fault.off, im.fault.what);
	double dec = seconds_since(&t0);
	fprintf(stderr, "snapshot of %zu znodes: %.1f MB, encode %.3f s, decode %.3f s\n", n,
		b.len / 1e6, enc, dec);
	assert_same_tree(tree_working(t), tree_working(im.t));
	image_free(&im);
	free(b.p);
	tree_destroy(t);
}

/* ---- bad bodies ---- */

static void refused_with(const void *p, size_t len, const char *what)
{
	struct image im;
	int rc = decode(p, len, &im);
	cr_assert_eq(rc, -EBADMSG, "decoded (rc %d) a body that should fail with \"%s\"", rc, what);
	cr_assert_str_eq(im.fault.what, what);
	image_free(&im);
}

/* Hand-made bodies: a header, sessions, znodes with the fields a test
 * wants to get wrong. */
struct craft {
	struct buf b;
	uint32_t acls; /* ACLs defined so far */
};

static void craft_header(struct craft *c, int64_t zxid, uint32_t sessions, uint64_t znodes)
{
	struct snap_body_header h = {
	    .version = SNAP_BODY_VERSION, .n_sessions = sessions, .zxid = zxid, .n_znodes = znodes};
	buf_put(&c->b, &h, sizeof h);
}

static void craft_session(struct craft *c, uint64_t id)
{
	struct snap_session_record r = {.id = id, .timeout_ms = 10000};
	memset(r.passwd, 0xab, sizeof r.passwd);
	buf_put(&c->b, &r, sizeof r);
}

static void craft_znode_acl(struct craft *c, const char *path, int32_t children, int64_t owner,
			    uint32_t acl)
{
	struct snap_znode_record r = {
	    .czxid = 1,
	    .mzxid = 2,
	    .pzxid = 3,
	    .ephemeral_owner = owner,
	    .num_children = children,
	    .data_len = 2,
	    .path_len = (uint32_t)strlen(path),
	    .acl = acl,
	};
	buf_put(&c->b, &r, sizeof r);
	buf_put(&c->b, path, r.path_len);
	buf_put(&c->b, "dd", 2);
	if (acl != c->acls)
		return;
	struct jute_out o;
	jute_out_init(&o, 64, 4096);
	acl_list_encode(&o, &acl_open_unsafe);
	uint32_t len = (uint32_t)o.len;
	buf_put(&c->b, &len, sizeof len);
	buf_put(&c->b, o.buf, o.len);
	jute_out_free(&o);
	c->acls++;
}

static void craft_znode(struct craft *c, const char *path, int32_t children)
{
	craft_znode_acl(c, path, children, 0, 0);
}

static void craft_system(struct craft *c, int32_t root_children)
{
	craft_znode(c, "/", root_children);
	craft_znode(c, "/zookeeper", 2);
	craft_znode(c, "/zookeeper/quota", 0);
	craft_znode(c, "/zookeeper/config", 0);
}

Test(snapshot_bad, a_hand_made_body_decodes)
{
	struct craft c = {0};
	craft_header(&c, 10, 1, 6);
	craft_session(&c, 0x42);
	craft_system(&c, 2);
	craft_znode(&c, "/a", 1);
	craft_znode_acl(&c, "/a/e", 0, 0x42, 0);
	struct image im;
	cr_assert_eq(decode(c.b.p, c.b.len, &im), 0, "%s at %zu", im.fault.what, im.fault.off);
	cr_assert_eq(im.zxid, 10);
	cr_assert_eq(session_find(im.st, 0x42)->ephemerals.count, 1);
	cr_assert_eq(wget(im.t, "/zookeeper/config")->stat.mzxid, 2);
	image_free(&im);
	free(c.b.p);
}

Test(snapshot_bad, a_child_before_its_parent)
{
	struct craft c = {0};
	craft_header(&c, 10, 0, 6);
	craft_system(&c, 1);
	craft_znode(&c, "/a/b", 0);
	craft_znode(&c, "/a", 1);
	refused_with(c.b.p, c.b.len, "parent missing");
	free(c.b.p);
}

Test(snapshot_bad, a_duplicate_znode)
{
	struct craft c = {0};
	craft_header(&c, 10, 0, 6);
	craft_system(&c, 2);
	craft_znode(&c, "/a", 0);
	craft_znode(&c, "/a", 0);
	refused_with(c.b.p, c.b.len, "duplicate path");
	free(c.b.p);
}

Test(snapshot_bad, a_duplicate_system_znode)
{
	struct craft c = {0};
	craft_header(&c, 10, 0, 5);
	craft_system(&c, 1);
	craft_znode(&c, "/zookeeper", 2);
	refused_with(c.b.p, c.b.len, "duplicate path");
	free(c.b.p);
}

Test(snapshot_bad, a_missing_system_znode)
{
	struct craft c = {0};
	craft_header(&c, 10, 0, 4);
	craft_znode(&c, "/", 2);
	craft_znode(&c, "/zookeeper", 2);
	craft_znode(&c, "/zookeeper/quota", 0);
	craft_znode(&c, "/a", 0);
	refused_with(c.b.p, c.b.len, "a system znode is missing from the image");
	free(c.b.p);
}

Test(snapshot_bad, num_children_that_disagree_with_the_children)
{
	struct craft c = {0};
	craft_header(&c, 10, 0, 6);
	craft_system(&c, 2);
	craft_znode(&c, "/a", 2);
	craft_znode(&c, "/a/b", 0);
	refused_with(c.b.p, c.b.len, "a znode's num_children differs from its children");
	free(c.b.p);
}

Test(snapshot_bad, an_ephemeral_of_a_session_not_in_the_image)
{
	struct craft c = {0};
	craft_header(&c, 10, 1, 5);
	craft_session(&c, 0x42);
	craft_system(&c, 2);
	craft_znode_acl(&c, "/e", 0, 0x43, 0);
	refused_with(c.b.p, c.b.len, "ephemeral owner not in the image");
	free(c.b.p);
}

Test(snapshot_bad, a_duplicate_session)
{
	struct craft c = {0};
	craft_header(&c, 10, 2, 4);
	craft_session(&c, 0x42);
	craft_session(&c, 0x42);
	craft_system(&c, 1);
	refused_with(c.b.p, c.b.len, "duplicate session");
	free(c.b.p);
}

Test(snapshot_bad, an_acl_index_not_defined_yet)
{
	struct craft c = {0};
	craft_header(&c, 10, 0, 5);
	craft_system(&c, 2);
	craft_znode_acl(&c, "/a", 0, 0, 3);
	refused_with(c.b.p, c.b.len, "ACL index not defined yet");
	free(c.b.p);
}

Test(snapshot_bad, malformed_acl_bytes)
{
	struct craft c = {0};
	craft_header(&c, 10, 0, 1);
	struct snap_znode_record r = {.data_len = -1, .path_len = 1};
	buf_put(&c.b, &r, sizeof r);
	buf_put(&c.b, "/", 1);
	uint32_t len = 8;
	buf_put(&c.b, &len, sizeof len);
	buf_put(&c.b, "\0\0\0\5\0\0\0\0", 8); /* five ACLs in four bytes */
	refused_with(c.b.p, c.b.len, "malformed ACL");
	free(c.b.p);
}

Test(snapshot_bad, invalid_paths)
{
	const char *bad[] = {"/a/", "a", "/a//b", "/a/./b", "/a/\x01"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct craft c = {0};
		craft_header(&c, 10, 0, 5);
		craft_system(&c, 2);
		craft_znode(&c, bad[i], 0);
		refused_with(c.b.p, c.b.len, "invalid path");
		free(c.b.p);
	}
}

Test(snapshot_bad, a_zxid_past_the_image)
{
	struct craft c = {0};
	craft_header(&c, 2, 0, 4); /* the crafted pzxid is 3 */
	craft_system(&c, 1);
	refused_with(c.b.p, c.b.len, "a zxid past the image's");
	free(c.b.p);
}

Test(snapshot_bad, wrong_counts_version_and_trailing_bytes)
{
	struct craft c = {0};
	craft_header(&c, 10, 0, 5);
	craft_system(&c, 1);
	refused_with(c.b.p, c.b.len, "truncated znode record");
	((struct snap_body_header *)c.b.p)->n_znodes = 1u << 30;
	refused_with(c.b.p, c.b.len, "more znodes than the body holds");
	((struct snap_body_header *)c.b.p)->n_znodes = 3;
	refused_with(c.b.p, c.b.len, "bytes after the last znode");
	((struct snap_body_header *)c.b.p)->n_znodes = 4;
	((struct snap_body_header *)c.b.p)->n_sessions = 1u << 20;
	refused_with(c.b.p, c.b.len, "more sessions than the body holds");
	((struct snap_body_header *)c.b.p)->n_sessions = 0;
	((struct snap_body_header *)c.b.p)->version = 2;
	refused_with(c.b.p, c.b.len, "unknown body version");
	((struct snap_body_header *)c.b.p)->version = SNAP_BODY_VERSION;
	struct image im;
	cr_assert_eq(decode(c.b.p, c.b.len, &im), 0);
	image_free(&im);
	free(c.b.p);
}

Test(snapshot_bad, every_truncation_is_refused)
{
	struct tree *t = tree_create();
	struct session_table *st = session_table_create(1, 1700000000000LL);
	build_rich(t, st);
	struct buf b = encode(tree_working(t), st);
	for (size_t len = 0; len < b.len; len++) {
		struct image im;
		int rc = decode(b.p, len, &im);
		cr_assert_eq(rc, -EBADMSG, "a body cut to %zu of %zu bytes decoded", len, b.len);
		image_free(&im);
	}
	free(b.p);
	session_table_destroy(st);
	tree_destroy(t);
	cr_assert_not(leaks_found());
}

/* A flipped byte may still leave a valid image (a changed timestamp or
 * data byte); what matters is that every body is either decoded or
 * refused, never a crash or an assertion, and nothing leaks. */
Test(snapshot_bad, random_byte_flips_never_crash)
{
	struct tree *t = tree_create();
	struct session_table *st = session_table_create(1, 1700000000000LL);
	build_rich(t, st);
	struct buf b = encode(tree_working(t), st);
	uint8_t *copy = malloc(b.len);
	unsigned seed = 12345, refused = 0;
	for (int i = 0; i < 600; i++) {
		memcpy(copy, b.p, b.len);
		int flips = 1 + rand_r(&seed) % 4;
		for (int f = 0; f < flips; f++)
			copy[(size_t)rand_r(&seed) % b.len] ^= (uint8_t)(1 + rand_r(&seed) % 255);
		struct image im;
		int rc = decode(copy, b.len, &im);
		cr_assert(rc == 0 || rc == -EBADMSG, "flip round %d: rc %d", i, rc);
		refused += rc != 0;
		image_free(&im);
	}
	cr_assert_gt(refused, 300, "only %u of 600 garbled bodies refused", refused);
	free(copy);
	free(b.p);
	session_table_destroy(st);
	tree_destroy(t);
	cr_assert_not(leaks_found());
}
