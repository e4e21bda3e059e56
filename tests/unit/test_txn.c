/* The state machine: request validation in ZooKeeper's PrepRequestProcessor
 * order and errors, Stat results, sequential names, ephemerals and session
 * close, ACL checks and fixup, multi's all-or-nothing results, watch
 * events and zxid accounting. Requests are built with jute and replies
 * parsed from their frames, as a client would. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/acl.h"
#include "core/jute.h"
#include "core/proto.h"
#include "core/session.h"
#include "core/tree.h"
#include "core/txn.h"

#define NOW_MS 1700000000000LL

/* ---- events ---- */

#define EVENTS_MAX 32

struct event {
	enum zk_event_type type;
	char path[64];
	int64_t zxid;
	const struct acl_list *acl;
};

struct events {
	struct event e[EVENTS_MAX];
	size_t n;
};

static void record_event(void *ctx, enum zk_event_type type, const char *path, size_t len,
			 int64_t zxid, const struct acl_list *acl)
{
	struct events *ev = ctx;
	cr_assert_lt(ev->n, EVENTS_MAX);
	cr_assert_lt(len, sizeof ev->e[0].path);
	struct event *e = &ev->e[ev->n++];
	e->type = type;
	memcpy(e->path, path, len);
	e->path[len] = '\0';
	e->zxid = zxid;
	e->acl = acl;
}

static void assert_event(const struct events *ev, size_t i, enum zk_event_type type,
			 const char *path, int64_t zxid)
{
	cr_assert_lt(i, ev->n, "event %zu of %zu", i, ev->n);
	cr_assert_eq(ev->e[i].type, type, "event %zu: type %d, expected %d", i, ev->e[i].type,
		     type);
	cr_assert_str_eq(ev->e[i].path, path, "event %zu", i);
	cr_assert_eq(ev->e[i].zxid, zxid, "event %zu", i);
}

/* ---- fixture ---- */

struct fx {
	struct tree *tree;
	struct session_table *sessions;
	struct sm sm;
	struct session *s;
	struct events ev;
	struct sm_sink sink;
	int32_t xid;
};

static void fx_init(struct fx *f)
{
	memset(f, 0, sizeof *f);
	f->tree = tree_create();
	f->sessions = session_table_create(1, NOW_MS);
	cr_assert(f->tree && f->sessions);
	f->sm = (struct sm){.tree = f->tree, .sessions = f->sessions};
	f->s = sm_open_session(&f->sm, 30000, 0, NOW_MS);
	cr_assert_not_null(f->s);
	f->sink = (struct sm_sink){.event = record_event, .ctx = &f->ev};
}

static void fx_fini(struct fx *f)
{
	session_table_destroy(f->sessions);
	tree_destroy(f->tree);
}

static const struct znode *node(struct fx *f, const char *path)
{
	return tree_lookup(tree_working(f->tree), path, strlen(path));
}

/* ---- request bodies ---- */

static struct jute_out body_new(void)
{
	struct jute_out b;
	jute_out_init(&b, 128, 1 << 20);
	return b;
}

/* data NULL is null data (-1). */
static void put_create(struct jute_out *b, const char *path, const char *data,
		       const struct acl_list *acl, int32_t flags)
{
	jute_put_cstr(b, path);
	jute_put_buffer(b, data, data ? (int32_t)strlen(data) : -1);
	acl_list_encode(b, acl);
	jute_put_int(b, flags);
}

static void put_path_version(struct jute_out *b, const char *path, int32_t version)
{
	jute_put_cstr(b, path);
	jute_put_int(b, version);
}

static void put_set(struct jute_out *b, const char *path, const char *data, int32_t version)
{
	jute_put_cstr(b, path);
	jute_put_buffer(b, data, data ? (int32_t)strlen(data) : -1);
	jute_put_int(b, version);
}

static void put_set_acl(struct jute_out *b, const char *path, const struct acl_list *acl,
			int32_t version)
{
	jute_put_cstr(b, path);
	acl_list_encode(b, acl);
	jute_put_int(b, version);
}

/* A multi body: (MultiHeader, op body) per op, then the done header. */
static void multi_op(struct jute_out *b, int32_t type)
{
	jute_put_int(b, type);
	jute_put_bool(b, false);
	jute_put_int(b, -1);
}

static void multi_end(struct jute_out *b)
{
	jute_put_int(b, -1);
	jute_put_bool(b, true);
	jute_put_int(b, -1);
}

/* ---- replies ---- */

struct reply {
	struct jute_out frame;
	int32_t xid;
	int64_t zxid;
	int32_t err;
	struct jute_in body;
};

static struct reply request_as(struct fx *f, struct session *s, int32_t op, struct jute_out *b)
{
	struct reply r;
	jute_out_init(&r.frame, 256, 1 << 20);
	int32_t xid = ++f->xid;
	sm_write(&f->sm, s, xid, op, b->buf, b->len, NOW_MS + f->xid, &r.frame, &f->sink);
	jute_out_free(b);
	cr_assert_eq(r.frame.err, 0);
	cr_assert_geq(r.frame.len, 20, "one framed reply");
	cr_assert_eq(jute_be32_get(r.frame.buf), r.frame.len - 4, "frame length");
	struct jute_in in = jute_in_make(r.frame.buf + 4, r.frame.len - 4);
	r.xid = jute_get_int(&in);
	r.zxid = jute_get_long(&in);
	r.err = jute_get_int(&in);
	cr_assert_eq(r.xid, xid);
	r.body = jute_in_make(in.p + in.off, jute_remaining(&in));
	return r;
}

static struct reply request(struct fx *f, int32_t op, struct jute_out *b)
{
	return request_as(f, f->s, op, b);
}

static void reply_free(struct reply *r)
{
	jute_out_free(&r->frame);
}

static int32_t create_as(struct fx *f, struct session *s, const char *path, const char *data,
			 const struct acl_list *acl, int32_t flags)
{
	struct jute_out b = body_new();
	put_create(&b, path, data, acl, flags);
	struct reply r = request_as(f, s, ZOP_CREATE, &b);
	int32_t err = r.err;
	reply_free(&r);
	return err;
}

static int32_t create(struct fx *f, const char *path, const char *data, int32_t flags)
{
	return create_as(f, f->s, path, data, &acl_open_unsafe, flags);
}

/* create, returning the path the server chose (caller frees). */
static char *create_named(struct fx *f, const char *path, int32_t flags)
{
	struct jute_out b = body_new();
	put_create(&b, path, NULL, &acl_open_unsafe, flags);
	struct reply r = request(f, ZOP_CREATE, &b);
	cr_assert_eq(r.err, ZOK, "create %s: %s", path, proto_err_name(r.err));
	const char *p;
	int32_t len;
	jute_get_string(&r.body, &p, &len);
	cr_assert_eq(r.body.err, 0);
	cr_assert_eq(jute_remaining(&r.body), 0);
	char *name = strndup(p, (size_t)len);
	reply_free(&r);
	return name;
}

static int32_t path_version_op(struct fx *f, int32_t op, const char *path, int32_t version)
{
	struct jute_out b = body_new();
	put_path_version(&b, path, version);
	struct reply r = request(f, op, &b);
	int32_t err = r.err;
	reply_free(&r);
	return err;
}

static int32_t set_data(struct fx *f, const char *path, const char *data, int32_t version,
			struct zk_stat *st)
{
	struct jute_out b = body_new();
	put_set(&b, path, data, version);
	struct reply r = request(f, ZOP_SET_DATA, &b);
	if (r.err == ZOK && st) {
		proto_get_stat(&r.body, st);
		cr_assert_eq(r.body.err, 0);
		cr_assert_eq(jute_remaining(&r.body), 0);
	}
	int32_t err = r.err;
	reply_free(&r);
	return err;
}

static int32_t set_acl_as(struct fx *f, struct session *s, const char *path,
			  const struct acl_list *acl, int32_t version, struct zk_stat *st)
{
	struct jute_out b = body_new();
	put_set_acl(&b, path, acl, version);
	struct reply r = request_as(f, s, ZOP_SET_ACL, &b);
	if (r.err == ZOK && st) {
		proto_get_stat(&r.body, st);
		cr_assert_eq(jute_remaining(&r.body), 0);
	}
	int32_t err = r.err;
	reply_free(&r);
	return err;
}

static struct acl_list *digest_acl(const char *user_password, int32_t perms)
{
	char id[128];
	cr_assert_eq(acl_digest(user_password, id, sizeof id), 0);
	struct acl_entry e = {perms, {ACL_SCHEME_DIGEST, id}};
	struct acl_list *l = NULL;
	cr_assert_eq(acl_list_new(&e, 1, &l), 0);
	return l;
}

static void auth_as(struct session *s, const char *user_password)
{
	cr_assert_eq(acl_auth_add_digest(&s->auth, user_password, strlen(user_password), NULL), 0);
}

/* ---- create ---- */

Test(txn, create_replies_with_the_path_and_makes_the_node)
{
	struct fx f;
	fx_init(&f);
	struct jute_out b = body_new();
	put_create(&b, "/a", "hello", &acl_open_unsafe, ZCM_PERSISTENT);
	struct reply r = request(&f, ZOP_CREATE, &b);
	cr_assert_eq(r.err, ZOK);
	const char *p;
	int32_t len;
	jute_get_string(&r.body, &p, &len);
	cr_assert_eq(r.body.err, 0);
	cr_assert_eq(len, 2);
	cr_assert_eq(memcmp(p, "/a", 2), 0);
	cr_assert_eq(jute_remaining(&r.body), 0, "create answers the path only");
	const struct znode *a = node(&f, "/a");
	cr_assert_not_null(a);
	cr_assert_eq(a->stat.data_length, 5);
	cr_assert_eq(memcmp(a->data, "hello", 5), 0);
	cr_assert_eq(a->stat.czxid, r.zxid);
	cr_assert_eq(node(&f, "/")->stat.pzxid, r.zxid);
	reply_free(&r);
	fx_fini(&f);
}

Test(txn, create2_replies_with_the_path_and_the_new_stat)
{
	struct fx f;
	fx_init(&f);
	struct jute_out b = body_new();
	put_create(&b, "/b", "xyz", &acl_open_unsafe, ZCM_EPHEMERAL);
	struct reply r = request(&f, ZOP_CREATE2, &b);
	cr_assert_eq(r.err, ZOK);
	const char *p;
	int32_t len;
	jute_get_string(&r.body, &p, &len);
	cr_assert_eq(len, 2);
	cr_assert_eq(memcmp(p, "/b", 2), 0);
	struct zk_stat st;
	proto_get_stat(&r.body, &st);
	cr_assert_eq(r.body.err, 0);
	cr_assert_eq(jute_remaining(&r.body), 0);
	cr_assert_eq(st.czxid, r.zxid);
	cr_assert_eq(st.mzxid, r.zxid);
	cr_assert_eq(st.pzxid, r.zxid);
	cr_assert_eq(st.ctime, NOW_MS + f.xid);
	cr_assert_eq(st.mtime, st.ctime);
	cr_assert_eq(st.version, 0);
	cr_assert_eq(st.cversion, 0);
	cr_assert_eq(st.aversion, 0);
	cr_assert_eq(st.ephemeral_owner, (int64_t)f.s->id);
	cr_assert_eq(st.data_length, 3);
	cr_assert_eq(st.num_children, 0);
	reply_free(&r);
	fx_fini(&f);
}

Test(txn, create_keeps_null_and_empty_data_apart)
{
	struct fx f;
	fx_init(&f);
	cr_assert_eq(create(&f, "/null", NULL, ZCM_PERSISTENT), ZOK);
	cr_assert_eq(create(&f, "/empty", "", ZCM_PERSISTENT), ZOK);
	cr_assert_null(node(&f, "/null")->data);
	cr_assert_not_null(node(&f, "/empty")->data);
	cr_assert_eq(node(&f, "/empty")->stat.data_length, 0);
	fx_fini(&f);
}

Test(txn, create_of_an_existing_node_is_nodeexists)
{
	struct fx f;
	fx_init(&f);
	cr_assert_eq(create(&f, "/a", "1", ZCM_PERSISTENT), ZOK);
	cr_assert_eq(create(&f, "/a", "2", ZCM_PERSISTENT), ZNODEEXISTS);
	cr_assert_eq(create(&f, "/zookeeper", NULL, ZCM_PERSISTENT), ZNODEEXISTS);
	cr_assert_eq(memcmp(node(&f, "/a")->data, "1", 1), 0);
	fx_fini(&f);
}

Test(txn, create_under_a_missing_parent_is_nonode)
{
	struct fx f;
	fx_init(&f);
	cr_assert_eq(create(&f, "/missing/child", NULL, ZCM_PERSISTENT), ZNONODE);
	cr_assert_eq(create(&f, "/missing/child", NULL, ZCM_PERSISTENT_SEQUENTIAL), ZNONODE);
	cr_assert_null(node(&f, "/missing/child"));
	cr_assert_null(node(&f, "/missing"));
	fx_fini(&f);
}

Test(txn, create_under_an_ephemeral_is_nochildrenforephemerals)
{
	struct fx f;
	fx_init(&f);
	cr_assert_eq(create(&f, "/e", NULL, ZCM_EPHEMERAL), ZOK);
	cr_assert_eq(create(&f, "/e/child", NULL, ZCM_PERSISTENT), ZNOCHILDRENFOREPHEMERALS);
	cr_assert_eq(create(&f, "/e/child", NULL, ZCM_EPHEMERAL), ZNOCHILDRENFOREPHEMERALS);
	cr_assert_null(node(&f, "/e/child"));
	cr_assert_eq(node(&f, "/e")->stat.num_children, 0);
	fx_fini(&f);
}

Test(txn, create_with_an_unknown_mode_is_badarguments)
{
	struct fx f;
	fx_init(&f);
	cr_assert_eq(create(&f, "/a", NULL, 7), ZBADARGUMENTS);
	cr_assert_eq(create(&f, "/a", NULL, -1), ZBADARGUMENTS);
	cr_assert_null(node(&f, "/a"));
	fx_fini(&f);
}

/* ---- paths ---- */

Test(txn, path_validation_follows_zookeeper_path_utils)
{
	static const char *const valid[] = {
	    "/", "/a", "/a/b", "/a.b", "/.a", "/a.", "/...", "/a/..b", "/a b", "/zookeeper",
	};
	for (size_t i = 0; i < sizeof valid / sizeof *valid; i++)
		cr_assert(txn_path_valid(valid[i], strlen(valid[i])), "%s", valid[i]);
	static const char *const invalid[] = {
	    "",	    "a",     "a/b",    "/a/",	  "//",	    "/a//b",  "/.",    "/..",
	    "/a/.", "/a/..", "/a/./b", "/a/../b", "/a\x01", "/a\x1f", "/a\nb", "/a\x7f",
	};
	for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++)
		cr_assert_not(txn_path_valid(invalid[i], strlen(invalid[i])), "\"%s\"", invalid[i]);
	/* A NUL byte inside the path. */
	cr_assert_not(txn_path_valid("/a\0b", 4));
}

/* Java decodes a path as UTF-16 chars: U+0080..U+009F, U+D800..U+F8FF and
 * U+FFF0..U+FFFF are refused. */
Test(txn, path_validation_refuses_the_unicode_ranges_zookeeper_refuses)
{
	static const char *const valid[] = {
	    "/\xc3\xa9",     /* U+00E9 */
	    "/\xc2\xa0",     /* U+00A0 */
	    "/\xe4\xb8\xad", /* U+4E2D */
	    "/\xef\xa4\x80", /* U+F900 */
	    "/\xef\xbf\xaf", /* U+FFEF */
	};
	for (size_t i = 0; i < sizeof valid / sizeof *valid; i++)
		cr_assert(txn_path_valid(valid[i], strlen(valid[i])), "valid[%zu]", i);
	static const char *const invalid[] = {
	    "/\xc2\x80",     /* U+0080 */
	    "/\xc2\x9f",     /* U+009F */
	    "/\xee\x80\x80", /* U+E000 */
	    "/\xef\x80\x80", /* U+F000 */
	    "/\xef\xbf\xb0", /* U+FFF0 */
	    "/\xef\xbf\xbf", /* U+FFFF */
	};
	for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++)
		cr_assert_not(txn_path_valid(invalid[i], strlen(invalid[i])), "invalid[%zu]", i);
}

/* A character outside the BMP is a surrogate pair in Java (U+D800..U+DFFF,
 * inside the refused range), and bytes that are not UTF-8 decode to U+FFFD
 * (inside U+FFF0..U+FFFF): ZooKeeper answers BADARGUMENTS to both. */
Test(txn, path_validation_refuses_supplementary_characters_and_malformed_utf8)
{
	static const char *const invalid[] = {
	    "/\xf0\x9f\x98\x80", /* U+1F600, a surrogate pair in Java */
	    "/\xf0\x90\x80\x80", /* U+10000 */
	    "/\xff",		 /* never UTF-8 */
	    "/\x80",		 /* a lone continuation byte */
	    "/a\xc3",		 /* a truncated sequence */
	    "/\xc0\xaf",	 /* an overlong '/' */
	    "/\xed\xa0\x80",	 /* an encoded surrogate */
	};
	for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++)
		cr_expect_not(txn_path_valid(invalid[i], strlen(invalid[i])), "invalid[%zu]", i);
}

Test(txn, writes_to_invalid_paths_are_badarguments)
{
	struct fx f;
	fx_init(&f);
	cr_assert_eq(create(&f, "/a", NULL, ZCM_PERSISTENT), ZOK);
	/* Create checks "has a '/'" first, then the parent, then the whole
	 * path; these all have existing parents. */
	static const char *const create_bad[] = {"",	 "a",	  "/a/",    "//",
						 "/a/.", "/a/..", "/a\x01", "/a\x7f"};
	for (size_t i = 0; i < sizeof create_bad / sizeof *create_bad; i++)
		cr_assert_eq(create(&f, create_bad[i], NULL, ZCM_PERSISTENT), ZBADARGUMENTS,
			     "create \"%s\"", create_bad[i]);
	static const char *const bad[] = {"", "a", "/a/", "//", "/a/./b", "/a/../b", "/a\x01"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		cr_assert_eq(set_data(&f, bad[i], "x", -1, NULL), ZBADARGUMENTS, "setData \"%s\"",
			     bad[i]);
		cr_assert_eq(set_acl_as(&f, f.s, bad[i], &acl_open_unsafe, -1, NULL), ZBADARGUMENTS,
			     "setACL \"%s\"", bad[i]);
	}
	cr_assert_eq(path_version_op(&f, ZOP_DELETE, "", -1), ZBADARGUMENTS);
	cr_assert_eq(path_version_op(&f, ZOP_DELETE, "a", -1), ZBADARGUMENTS);
	cr_assert_eq(tree_node_count(tree_working(f.tree)), 5);
	cr_assert_eq(f.ev.n, 1 + 1, "only the first create fired events");
	fx_fini(&f);
}

Test(txn, a_path_with_a_nul_byte_is_badarguments)
{
	struct fx f;
	fx_init(&f);
	struct jute_out b = body_new();
	jute_put_string(&b, "/a\0b", 4);
	jute_put_buffer(&b, NULL, -1);
	acl_list_encode(&b, &acl_open_unsafe);
	jute_put_int(&b, ZCM_PERSISTENT);
	struct reply r = request(&f, ZOP_CREATE, &b);
	cr_assert_eq(r.err, ZBADARGUMENTS);
	reply_free(&r);
	cr_assert_eq(tree_node_count(tree_working(f.tree)), 4);
	fx_fini(&f);
}

/* ---- sequential ---- */

Test(txn, sequential_names_come_from_the_parents_create_count)
{
	struct fx f;
	fx_init(&f);
	cr_assert_eq(create(&f, "/s", NULL, ZCM_PERSISTENT), ZOK);
	char *n0 = create_named(&f, "/s/n-", ZCM_PERSISTENT_SEQUENTIAL);
	char *n1 = create_named(&f, "/s/n-", ZCM_EPHEMERAL_SEQUENTIAL);
	cr_assert_str_eq(n0, "/s/n-0000000000");
	cr_assert_str_eq(n1, "/s/n-0000000001");
	cr_assert_not_null(node(&f, n0));
	cr_assert_eq(node(&f, n1)->stat.ephemeral_owner, (int64_t)f.s->id);
	/* Deletes do not move the counter; plain creates do. */
	cr_assert_eq(path_version_op(&f, ZOP_DELETE, n1, -1), ZOK);
	char *n2 = create_named(&f, "/s/n-", ZCM_PERSISTENT_SEQUENTIAL);
	cr_assert_str_eq(n2, "/s/n-0000000002");
	cr_assert_eq(create(&f, "/s/plain", NULL, ZCM_PERSISTENT), ZOK);
	char *n4 = create_named(&f, "/s/", ZCM_PERSISTENT_SEQUENTIAL);
	cr_assert_str_eq(n4, "/s/0000000004");
	const struct znode *s = node(&f, "/s");
	cr_assert_eq(s->stat.cversion, 5);
	cr_assert_eq(s->stat.num_children, 4);
	free(n0);
	free(n1);
	free(n2);
	free(n4);
	fx_fini(&f);
}

Test(txn, first_sequential_child_of_the_root_is_numbered_zero)
{
	/* "/zookeeper" is not counted as a create of "/". */
	struct fx f;
	fx_init(&f);
	char *n = create_named(&f, "/x", ZCM_PERSISTENT_SEQUENTIAL);
	cr_assert_str_eq(n, "/x0000000000");
	free(n);
	fx_fini(&f);
}

/* ---- ephemerals and session close ---- */

Test(txn, ephemerals_are_recorded_in_their_session)
{
	struct fx f;
	fx_init(&f);
	struct session *other = sm_open_session(&f.sm, 30000, 0, NOW_MS);
	cr_assert_eq(create(&f, "/e1", NULL, ZCM_EPHEMERAL), ZOK);
	char *e2 = create_named(&f, "/e-", ZCM_EPHEMERAL_SEQUENTIAL);
	cr_assert_eq(create(&f, "/p", NULL, ZCM_PERSISTENT), ZOK);
	cr_assert_eq(create_as(&f, other, "/o", NULL, &acl_open_unsafe, ZCM_EPHEMERAL), ZOK);
	cr_assert_eq(f.s->ephemerals.count, 2);
	cr_assert(hamt_get(&f.s->ephemerals, "/e1", 3, hamt_hash("/e1", 3), NULL));
	cr_assert(hamt_get(&f.s->ephemerals, e2, strlen(e2), hamt_hash(e2, strlen(e2)), NULL));
	cr_assert_eq(other->ephemerals.count, 1);
	cr_assert_eq(node(&f, "/o")->stat.ephemeral_owner, (int64_t)other->id);
	cr_assert_eq(node(&f, "/p")->stat.ephemeral_owner, 0);
	cr_assert_eq(path_version_op(&f, ZOP_DELETE, "/e1", -1), ZOK);
	cr_assert_eq(f.s->ephemerals.count, 1);
	/* Another session may delete it; the owner's record goes too. */
	struct jute_out b = body_new();
	put_path_version(&b, e2, -1);
	struct reply r = request_as(&f, other, ZOP_DELETE, &b);
	cr_assert_eq(r.err, ZOK);
	reply_free(&r);
	cr_assert_eq(f.s->ephemerals.count, 0);
	free(e2);
	fx_fini(&f);
}

Test(txn, close_session_deletes_its_ephemerals_and_fires_their_events)
{
	struct fx f;
	fx_init(&f);
	struct session *other = sm_open_session(&f.sm, 30000, 0, NOW_MS);
	cr_assert_eq(create(&f, "/e1", NULL, ZCM_EPHEMERAL), ZOK);
	cr_assert_eq(create(&f, "/dir", NULL, ZCM_PERSISTENT), ZOK);
	cr_assert_eq(create(&f, "/dir/e2", "x", ZCM_EPHEMERAL), ZOK);
	cr_assert_eq(create_as(&f, other, "/keep", NULL, &acl_open_unsafe, ZCM_EPHEMERAL), ZOK);
	uint64_t id = f.s->id;
	size_t sessions = session_count(f.sessions);
	int64_t before = f.sm.zxid;
	f.ev.n = 0;

	int64_t zxid = sm_close_session(&f.sm, f.s, NOW_MS + 100, &f.sink);
	f.s = NULL;
	cr_assert_eq(zxid, before + 1);
	cr_assert_eq(f.sm.zxid, zxid);
	cr_assert_null(node(&f, "/e1"));
	cr_assert_null(node(&f, "/dir/e2"));
	cr_assert_not_null(node(&f, "/dir"));
	cr_assert_not_null(node(&f, "/keep"));
	cr_assert_eq(node(&f, "/dir")->stat.num_children, 0);
	cr_assert_eq(node(&f, "/dir")->stat.pzxid, zxid);
	cr_assert_null(session_find(f.sessions, id));
	cr_assert_eq(session_count(f.sessions), sessions - 1);
	cr_assert_eq(other->ephemerals.count, 1);

	/* Per node: NodeDeleted, then NodeChildrenChanged of its parent; the
	 * order among the nodes is the session's. */
	cr_assert_eq(f.ev.n, 4);
	for (size_t i = 0; i < 4; i += 2) {
		bool e1 = strcmp(f.ev.e[i].path, "/e1") == 0;
		assert_event(&f.ev, i, ZEV_NODE_DELETED, e1 ? "/e1" : "/dir/e2", zxid);
		assert_event(&f.ev, i + 1, ZEV_NODE_CHILDREN_CHANGED, e1 ? "/" : "/dir", zxid);
	}
	cr_assert_neq(strcmp(f.ev.e[0].path, f.ev.e[2].path), 0);
	fx_fini(&f);
}

/* ---- setData, delete, setACL ---- */

Test(txn, set_data_checks_the_version_and_minus_one_matches_any)
{
	struct fx f;
	fx_init(&f);
	cr_assert_eq(create(&f, "/a", "v0", ZCM_PERSISTENT), ZOK);
	int64_t czxid = node(&f, "/a")->stat.czxid;
	struct zk_stat st;
	cr_assert_eq(set_data(&f, "/a", "bad", 5, &st), ZBADVERSION);
	cr_assert_eq(set_data(&f, "/a", "v1", 0, &st), ZOK);
	cr_assert_eq(st.version, 1);
	cr_assert_eq(st.mzxid, f.sm.zxid);
	cr_assert_eq(st.mtime, NOW_MS + f.xid);
	cr_assert_eq(st.czxid, czxid);
	cr_assert_eq(st.data_length, 2);
	cr_assert_eq(set_data(&f, "/a", "v2", -1, &st), ZOK);
	cr_assert_eq(st.version, 2);
	cr_assert_eq(set_data(&f, "/a", "bad", 1, &st), ZBADVERSION);
	const struct znode *a = node(&f, "/a");
	cr_assert_eq(a->stat.version, 2);
	cr_assert_eq(memcmp(a->data, "v2", 2), 0);
	cr_assert_eq(set_data(&f, "/missing", "x", -1, &st), ZNONODE);
	/* Null data is kept apart from empty data. */
	cr_assert_eq(set_data(&f, "/a", NULL, -1, &st), ZOK);
	cr_assert_null(node(&f, "/a")->data);
	cr_assert_eq(st.data_length, 0);
	fx_fini(&f);
}

Test(txn, delete_checks_the_version_and_refuses_a_node_with_children)
{
	struct fx f;
	fx_init(&f);
	cr_assert_eq(create(&f, "/a", NULL, ZCM_PERSISTENT), ZOK);
	cr_assert_eq(create(&f, "/a/b", NULL, ZCM_PERSISTENT), ZOK);
	cr_assert_eq(path_version_op(&f, ZOP_DELETE, "/a", -1), ZNOTEMPTY);
	cr_assert_eq(path_version_op(&f, ZOP_DELETE, "/a/b", 3), ZBADVERSION);
	cr_assert_not_null(node(&f, "/a/b"));
	f.ev.n = 0;
	cr_assert_eq(path_version_op(&f, ZOP_DELETE, "/a/b", 0), ZOK);
	int64_t zxid = f.sm.zxid;
	cr_assert_eq(f.ev.n, 2);
	assert_event(&f.ev, 0, ZEV_NODE_DELETED, "/a/b", zxid);
	assert_event(&f.ev, 1, ZEV_NODE_CHILDREN_CHANGED, "/a", zxid);
	cr_assert_eq(node(&f, "/a")->stat.pzxid, zxid);
	cr_assert_eq(path_version_op(&f, ZOP_DELETE, "/a", -1), ZOK);
	cr_assert_null(node(&f, "/a"));
	cr_assert_eq(path_version_op(&f, ZOP_DELETE, "/a", -1), ZNONODE);
	cr_assert_eq(path_version_op(&f, ZOP_DELETE, "/none/x", -1), ZNONODE);
	fx_fini(&f);
}

Test(txn, system_nodes_cannot_be_deleted)
{
	struct fx f;
	fx_init(&f);
	const char *special[] = {"/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"};
	for (size_t i = 0; i < 4; i++)
		cr_assert_eq(path_version_op(&f, ZOP_DELETE, special[i], -1), ZBADARGUMENTS, "%s",
			     special[i]);
	cr_assert_eq(tree_node_count(tree_working(f.tree)), 4);
	fx_fini(&f);
}

Test(txn, set_acl_checks_and_bumps_the_acl_version)
{
	struct fx f;
	fx_init(&f);
	cr_assert_eq(create(&f, "/a", "d", ZCM_PERSISTENT), ZOK);
	struct zk_stat st;
	cr_assert_eq(set_acl_as(&f, f.s, "/a", &acl_read_unsafe, 1, &st), ZBADVERSION);
	cr_assert(acl_list_equal(node(&f, "/a")->acl->list, &acl_open_unsafe));
	cr_assert_eq(set_acl_as(&f, f.s, "/a", &acl_read_unsafe, 0, &st), ZOK);
	cr_assert_eq(st.aversion, 1);
	cr_assert_eq(st.version, 0);
	cr_assert(acl_list_equal(node(&f, "/a")->acl->list, &acl_read_unsafe));
	/* READ only now: no ADMIN for anyone. */
	cr_assert_eq(set_acl_as(&f, f.s, "/a", &acl_open_unsafe, -1, &st), ZNOAUTH);
	cr_assert_eq(set_acl_as(&f, f.s, "/missing", &acl_open_unsafe, -1, &st), ZNONODE);
	cr_assert_eq(create(&f, "/b", NULL, ZCM_PERSISTENT), ZOK);
	f.ev.n = 0;
	cr_assert_eq(set_acl_as(&f, f.s, "/b", &acl_open_unsafe, -1, &st), ZOK);
	cr_assert_eq(st.aversion, 1);
	cr_assert_eq(set_acl_as(&f, f.s, "/b", &acl_open_unsafe, -1, &st), ZOK);
	cr_assert_eq(st.aversion, 2);
	cr_assert_eq(f.ev.n, 0, "setACL fires no watch");
	fx_fini(&f);
}

/* ---- ACLs ---- */

Test(txn, create_needs_create_permission_on_the_parent)
{
	struct fx f;
	fx_init(&f);
	struct session *bob = sm_open_session(&f.sm, 30000, 0, NOW_MS);
	struct session *anon = sm_open_session(&f.sm, 30000, 0, NOW_MS);
	auth_as(f.s, "alice:secret");
	auth_as(bob, "bob:secret");
	struct acl_list *alice_all = digest_acl("alice:secret", ZPERM_ALL);
	struct acl_list *alice_no_create = digest_acl("alice:secret", ZPERM_ALL & ~ZPERM_CREATE);
	cr_assert_eq(create_as(&f, f.s, "/mine", NULL, alice_all, ZCM_PERSISTENT), ZOK);
	cr_assert_eq(create_as(&f, f.s, "/locked", NULL, alice_no_create, ZCM_PERSISTENT), ZOK);

	cr_assert_eq(create_as(&f, f.s, "/mine/x", NULL, &acl_open_unsafe, ZCM_PERSISTENT), ZOK);
	cr_assert_eq(create_as(&f, bob, "/mine/y", NULL, &acl_open_unsafe, ZCM_PERSISTENT),
		     ZNOAUTH);
	cr_assert_eq(create_as(&f, anon, "/mine/y", NULL, &acl_open_unsafe, ZCM_PERSISTENT),
		     ZNOAUTH);
	cr_assert_eq(create_as(&f, f.s, "/locked/x", NULL, &acl_open_unsafe, ZCM_PERSISTENT),
		     ZNOAUTH);
	cr_assert_null(node(&f, "/mine/y"));
	cr_assert_null(node(&f, "/locked/x"));
	/* world:anyone READ does not grant CREATE. */
	cr_assert_eq(
	    create_as(&f, anon, "/zookeeper/config/x", NULL, &acl_open_unsafe, ZCM_PERSISTENT),
	    ZNOAUTH);
	acl_list_free(alice_all);
	acl_list_free(alice_no_create);
	fx_fini(&f);
}

Test(txn, set_data_delete_and_set_acl_need_their_permissions)
{
	struct fx f;
	fx_init(&f);
	struct session *bob = sm_open_session(&f.sm, 30000, 0, NOW_MS);
	auth_as(f.s, "alice:secret");
	auth_as(bob, "bob:secret");
	/* alice may do everything; bob may read, write and create only. */
	char alice[128], bob_id[128];
	cr_assert_eq(acl_digest("alice:secret", alice, sizeof alice), 0);
	cr_assert_eq(acl_digest("bob:secret", bob_id, sizeof bob_id), 0);
	struct acl_entry e[2] = {
	    {ZPERM_ALL, {ACL_SCHEME_DIGEST, alice}},
	    {ZPERM_READ | ZPERM_WRITE | ZPERM_CREATE, {ACL_SCHEME_DIGEST, bob_id}},
	};
	struct acl_list *acl = NULL;
	cr_assert_eq(acl_list_new(e, 2, &acl), 0);
	cr_assert_eq(create_as(&f, f.s, "/d", "x", acl, ZCM_PERSISTENT), ZOK);
	cr_assert_eq(create_as(&f, bob, "/d/c", NULL, acl, ZCM_PERSISTENT), ZOK);

	struct jute_out b = body_new();
	put_set(&b, "/d", "bob", -1);
	struct reply r = request_as(&f, bob, ZOP_SET_DATA, &b);
	cr_assert_eq(r.err, ZOK, "bob has WRITE");
	reply_free(&r);
	b = body_new();
	put_path_version(&b, "/d/c", -1);
	r = request_as(&f, bob, ZOP_DELETE, &b);
	cr_assert_eq(r.err, ZNOAUTH, "DELETE is checked on the parent");
	reply_free(&r);
	cr_assert_eq(set_acl_as(&f, bob, "/d", &acl_open_unsafe, -1, NULL), ZNOAUTH);
	cr_assert_eq(set_acl_as(&f, f.s, "/d", &acl_read_unsafe, -1, NULL), ZOK);
	cr_assert_eq(set_data(&f, "/d", "alice", -1, NULL), ZNOAUTH, "READ only now");
	cr_assert_eq(path_version_op(&f, ZOP_DELETE, "/d/c", -1), ZNOAUTH);
	acl_list_free(acl);
	fx_fini(&f);
}

Test(txn, empty_or_unresolvable_acls_are_invalidacl)
{
	struct fx f;
	fx_init(&f);
	struct acl_list empty = {0, NULL};
	cr_assert_eq(create_as(&f, f.s, "/a", NULL, &empty, ZCM_PERSISTENT), ZINVALIDACL);
	/* "auth" stands for the session's digest ids: it has none. */
	cr_assert_eq(create_as(&f, f.s, "/a", NULL, &acl_creator_all, ZCM_PERSISTENT), ZINVALIDACL);
	struct acl_entry bad = {ZPERM_ALL, {"nosuchscheme", "x"}};
	struct acl_list *unknown = NULL;
	cr_assert_eq(acl_list_new(&bad, 1, &unknown), 0);
	cr_assert_eq(create_as(&f, f.s, "/a", NULL, unknown, ZCM_PERSISTENT), ZINVALIDACL);
	cr_assert_null(node(&f, "/a"));

	cr_assert_eq(create(&f, "/b", NULL, ZCM_PERSISTENT), ZOK);
	cr_assert_eq(set_acl_as(&f, f.s, "/b", &empty, -1, NULL), ZINVALIDACL);
	cr_assert_eq(set_acl_as(&f, f.s, "/b", &acl_creator_all, -1, NULL), ZINVALIDACL);
	cr_assert_eq(node(&f, "/b")->stat.aversion, 0);

	/* With a digest id, "auth" becomes that id. */
	auth_as(f.s, "alice:secret");
	cr_assert_eq(create_as(&f, f.s, "/a", NULL, &acl_creator_all, ZCM_PERSISTENT), ZOK);
	struct acl_list *expect = digest_acl("alice:secret", ZPERM_ALL);
	cr_assert(acl_list_equal(node(&f, "/a")->acl->list, expect));
	acl_list_free(expect);
	acl_list_free(unknown);
	fx_fini(&f);
}

/* ---- multi ---- */

struct result {
	int32_t type;
	int32_t err;
	char path[64];
	struct zk_stat stat;
};

/* Parses a multi reply into res; returns the number of results. */
static size_t parse_multi(struct reply *r, struct result *res, size_t max)
{
	size_t n = 0;
	for (;;) {
		int32_t type = jute_get_int(&r->body);
		bool done = jute_get_bool(&r->body);
		int32_t err = jute_get_int(&r->body);
		cr_assert_eq(r->body.err, 0, "truncated multi reply");
		if (done) {
			cr_assert_eq(type, -1);
			cr_assert_eq(err, -1);
			break;
		}
		cr_assert_lt(n, max);
		struct result *x = &res[n++];
		memset(x, 0, sizeof *x);
		x->type = type;
		x->err = err;
		const char *p;
		int32_t len;
		switch (type) {
		case ZOP_ERROR:
			cr_assert_eq(jute_get_int(&r->body), err, "ErrorResult repeats the code");
			break;
		case ZOP_CREATE:
		case ZOP_CREATE2:
			jute_get_string(&r->body, &p, &len);
			cr_assert(len >= 0 && len < 64);
			memcpy(x->path, p, (size_t)len);
			if (type == ZOP_CREATE2)
				proto_get_stat(&r->body, &x->stat);
			break;
		case ZOP_SET_DATA:
			proto_get_stat(&r->body, &x->stat);
			break;
		default:
			break;
		}
		cr_assert_eq(r->body.err, 0);
	}
	cr_assert_eq(jute_remaining(&r->body), 0);
	return n;
}

Test(txn, failed_multi_reports_each_op_and_applies_nothing)
{
	struct fx f;
	fx_init(&f);
	cr_assert_eq(create(&f, "/x", "keep", ZCM_PERSISTENT), ZOK);
	struct zk_stat root_before = node(&f, "/")->stat;
	size_t nodes_before = tree_node_count(tree_working(f.tree));
	int64_t zxid_before = f.sm.zxid;
	f.ev.n = 0;

	struct jute_out b = body_new();
	multi_op(&b, ZOP_CREATE);
	put_create(&b, "/m1", "1", &acl_open_unsafe, ZCM_PERSISTENT);
	multi_op(&b, ZOP_CREATE);
	put_create(&b, "/m2", NULL, &acl_open_unsafe, ZCM_EPHEMERAL);
	multi_op(&b, ZOP_SET_DATA);
	put_set(&b, "/x", "changed", -1);
	multi_op(&b, ZOP_SET_DATA);
	put_set(&b, "/missing", "x", -1);
	multi_op(&b, ZOP_CREATE);
	put_create(&b, "/m3", NULL, &acl_open_unsafe, ZCM_PERSISTENT);
	multi_op(&b, ZOP_DELETE);
	put_path_version(&b, "/x", -1);
	multi_end(&b);
	struct reply r = request(&f, ZOP_MULTI, &b);
	/* As ZooKeeper: the errors are in the results, the header says OK. */
	cr_assert_eq(r.err, ZOK);
	cr_assert_eq(r.zxid, zxid_before + 1, "a failed multi consumes a zxid");
	struct result res[8];
	size_t n = parse_multi(&r, res, 8);
	cr_assert_eq(n, 6);
	const int32_t expect[] = {
	    ZOK, ZOK, ZOK, ZNONODE, ZRUNTIMEINCONSISTENCY, ZRUNTIMEINCONSISTENCY};
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(res[i].type, ZOP_ERROR, "result %zu", i);
		cr_assert_eq(res[i].err, expect[i], "result %zu: %d", i, res[i].err);
	}
	reply_free(&r);

	cr_assert_null(node(&f, "/m1"));
	cr_assert_null(node(&f, "/m2"));
	cr_assert_null(node(&f, "/m3"));
	cr_assert_eq(memcmp(node(&f, "/x")->data, "keep", 4), 0);
	cr_assert_eq(node(&f, "/x")->stat.version, 0);
	cr_assert_eq(tree_node_count(tree_working(f.tree)), nodes_before);
	struct zk_stat root = node(&f, "/")->stat;
	cr_assert_eq(root.cversion, root_before.cversion);
	cr_assert_eq(root.num_children, root_before.num_children);
	cr_assert_eq(root.pzxid, root_before.pzxid);
	cr_assert_eq(f.s->ephemerals.count, 0);
	cr_assert_eq(f.ev.n, 0);
	fx_fini(&f);
}

Test(txn, multi_ops_see_the_changes_of_earlier_ops)
{
	struct fx f;
	fx_init(&f);
	cr_assert_eq(create(&f, "/a", NULL, ZCM_PERSISTENT), ZOK);
	struct jute_out b = body_new();
	multi_op(&b, ZOP_DELETE);
	put_path_version(&b, "/a", -1);
	multi_op(&b, ZOP_CREATE);
	put_create(&b, "/a/b", NULL, &acl_open_unsafe, ZCM_PERSISTENT);
	multi_end(&b);
	struct reply r = request(&f, ZOP_MULTI, &b);
	struct result res[4];
	cr_assert_eq(parse_multi(&r, res, 4), 2);
	cr_assert_eq(res[0].err, ZOK);
	cr_assert_eq(res[1].err, ZNONODE, "/a is gone by the second op");
	reply_free(&r);
	cr_assert_not_null(node(&f, "/a"));

	b = body_new();
	multi_op(&b, ZOP_CREATE);
	put_create(&b, "/n", NULL, &acl_open_unsafe, ZCM_PERSISTENT);
	multi_op(&b, ZOP_CREATE);
	put_create(&b, "/n", NULL, &acl_open_unsafe, ZCM_PERSISTENT);
	multi_end(&b);
	r = request(&f, ZOP_MULTI, &b);
	cr_assert_eq(parse_multi(&r, res, 4), 2);
	cr_assert_eq(res[0].err, ZOK);
	cr_assert_eq(res[1].err, ZNODEEXISTS);
	reply_free(&r);
	cr_assert_null(node(&f, "/n"));

	b = body_new();
	multi_op(&b, ZOP_SET_DATA);
	put_set(&b, "/a", "1", 0);
	multi_op(&b, ZOP_CHECK);
	put_path_version(&b, "/a", 0);
	multi_end(&b);
	r = request(&f, ZOP_MULTI, &b);
	cr_assert_eq(parse_multi(&r, res, 4), 2);
	cr_assert_eq(res[0].err, ZOK);
	cr_assert_eq(res[1].err, ZBADVERSION, "the check sees version 1");
	reply_free(&r);
	cr_assert_eq(node(&f, "/a")->stat.version, 0);
	fx_fini(&f);
}

Test(txn, successful_multi_returns_each_result_and_applies_all_in_one_zxid)
{
	struct fx f;
	fx_init(&f);
	f.ev.n = 0;
	struct jute_out b = body_new();
	multi_op(&b, ZOP_CREATE);
	put_create(&b, "/t", "a", &acl_open_unsafe, ZCM_PERSISTENT);
	multi_op(&b, ZOP_CREATE2);
	put_create(&b, "/t/c-", "kid", &acl_open_unsafe, ZCM_EPHEMERAL_SEQUENTIAL);
	multi_op(&b, ZOP_SET_DATA);
	put_set(&b, "/t", "b", 0);
	multi_op(&b, ZOP_CHECK);
	put_path_version(&b, "/t", 1);
	multi_op(&b, ZOP_CREATE);
	put_create(&b, "/t/d", NULL, &acl_open_unsafe, ZCM_PERSISTENT);
	multi_op(&b, ZOP_DELETE);
	put_path_version(&b, "/t/d", 0);
	multi_end(&b);
	struct reply r = request(&f, ZOP_MULTI, &b);
	cr_assert_eq(r.err, ZOK);
	int64_t zxid = r.zxid;
	struct result res[8];
	size_t n = parse_multi(&r, res, 8);
	reply_free(&r);
	cr_assert_eq(n, 6);
	const int32_t types[] = {ZOP_CREATE, ZOP_CREATE2, ZOP_SET_DATA,
				 ZOP_CHECK,  ZOP_CREATE,  ZOP_DELETE};
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(res[i].type, types[i], "result %zu: type %d", i, res[i].type);
		cr_assert_eq(res[i].err, 0, "result %zu", i);
	}
	cr_assert_str_eq(res[0].path, "/t");
	cr_assert_str_eq(res[1].path, "/t/c-0000000000");
	cr_assert_eq(res[1].stat.czxid, zxid);
	cr_assert_eq(res[1].stat.ephemeral_owner, (int64_t)f.s->id);
	cr_assert_eq(res[1].stat.data_length, 3);
	cr_assert_eq(res[2].stat.version, 1);
	cr_assert_eq(res[2].stat.mzxid, zxid);
	cr_assert_str_eq(res[4].path, "/t/d");

	const struct znode *t = node(&f, "/t");
	cr_assert_not_null(t);
	cr_assert_eq(memcmp(t->data, "b", 1), 0);
	cr_assert_eq(t->stat.version, 1);
	cr_assert_eq(t->stat.czxid, zxid);
	cr_assert_eq(t->stat.num_children, 1);
	cr_assert_eq(t->stat.cversion, 2);
	cr_assert_not_null(node(&f, "/t/c-0000000000"));
	cr_assert_null(node(&f, "/t/d"));
	cr_assert_eq(f.s->ephemerals.count, 1);

	cr_assert_eq(f.ev.n, 9);
	assert_event(&f.ev, 0, ZEV_NODE_CREATED, "/t", zxid);
	assert_event(&f.ev, 1, ZEV_NODE_CHILDREN_CHANGED, "/", zxid);
	assert_event(&f.ev, 2, ZEV_NODE_CREATED, "/t/c-0000000000", zxid);
	assert_event(&f.ev, 3, ZEV_NODE_CHILDREN_CHANGED, "/t", zxid);
	assert_event(&f.ev, 4, ZEV_NODE_DATA_CHANGED, "/t", zxid);
	assert_event(&f.ev, 5, ZEV_NODE_CREATED, "/t/d", zxid);
	assert_event(&f.ev, 6, ZEV_NODE_CHILDREN_CHANGED, "/t", zxid);
	assert_event(&f.ev, 7, ZEV_NODE_DELETED, "/t/d", zxid);
	assert_event(&f.ev, 8, ZEV_NODE_CHILDREN_CHANGED, "/t", zxid);
	fx_fini(&f);
}

Test(txn, empty_multi_succeeds_with_no_results)
{
	struct fx f;
	fx_init(&f);
	struct jute_out b = body_new();
	multi_end(&b);
	struct reply r = request(&f, ZOP_MULTI, &b);
	cr_assert_eq(r.err, ZOK);
	struct result res[1];
	cr_assert_eq(parse_multi(&r, res, 1), 0);
	reply_free(&r);
	fx_fini(&f);
}

/* ---- events and zxids ---- */

Test(txn, create_fires_node_created_then_the_parents_children_changed)
{
	struct fx f;
	fx_init(&f);
	cr_assert_eq(create(&f, "/a", NULL, ZCM_PERSISTENT), ZOK);
	f.ev.n = 0;
	cr_assert_eq(create(&f, "/a/b", NULL, ZCM_PERSISTENT), ZOK);
	int64_t zxid = f.sm.zxid;
	cr_assert_eq(f.ev.n, 2);
	assert_event(&f.ev, 0, ZEV_NODE_CREATED, "/a/b", zxid);
	assert_event(&f.ev, 1, ZEV_NODE_CHILDREN_CHANGED, "/a", zxid);
	f.ev.n = 0;
	cr_assert_eq(set_data(&f, "/a/b", "x", -1, NULL), ZOK);
	cr_assert_eq(f.ev.n, 1);
	assert_event(&f.ev, 0, ZEV_NODE_DATA_CHANGED, "/a/b", f.sm.zxid);
	f.ev.n = 0;
	cr_assert_eq(create(&f, "/a/b", NULL, ZCM_PERSISTENT), ZNODEEXISTS);
	cr_assert_eq(set_data(&f, "/a/b", "x", 9, NULL), ZBADVERSION);
	cr_assert_eq(f.ev.n, 0, "failed writes fire nothing");
	fx_fini(&f);
}

Test(txn, every_write_consumes_a_zxid_even_when_it_fails)
{
	struct fx f;
	fx_init(&f);
	cr_assert_eq(f.sm.zxid, 1, "createSession is a txn");
	int64_t last = f.sm.zxid;
	struct jute_out b;
	struct reply r;
	struct {
		int32_t op;
		const char *path;
		int32_t expect;
	} steps[] = {
	    {ZOP_CREATE, "/a", ZOK},	    {ZOP_CREATE, "/a", ZNODEEXISTS},
	    {ZOP_CREATE, "/x/y", ZNONODE},  {ZOP_CREATE, "a", ZBADARGUMENTS},
	    {ZOP_SET_DATA, "/a", ZOK},	    {ZOP_SET_DATA, "/none", ZNONODE},
	    {ZOP_DELETE, "/none", ZNONODE}, {ZOP_DELETE, "/a", ZOK},
	};
	for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
		b = body_new();
		if (steps[i].op == ZOP_CREATE)
			put_create(&b, steps[i].path, NULL, &acl_open_unsafe, ZCM_PERSISTENT);
		else if (steps[i].op == ZOP_SET_DATA)
			put_set(&b, steps[i].path, "d", -1);
		else
			put_path_version(&b, steps[i].path, -1);
		r = request(&f, steps[i].op, &b);
		cr_assert_eq(r.err, steps[i].expect, "step %zu: %s", i, proto_err_name(r.err));
		cr_assert_eq(r.zxid, last + 1, "step %zu", i);
		last = r.zxid;
		reply_free(&r);
	}
	/* A failed multi too. */
	b = body_new();
	multi_op(&b, ZOP_DELETE);
	put_path_version(&b, "/none", -1);
	multi_end(&b);
	r = request(&f, ZOP_MULTI, &b);
	cr_assert_eq(r.zxid, last + 1);
	last = r.zxid;
	reply_free(&r);

	cr_assert_eq(f.sm.zxid, last);
	cr_assert_eq(tree_working(f.tree)->zxid, last);
	struct session *s2 = sm_open_session(&f.sm, 30000, 0, NOW_MS);
	cr_assert_not_null(s2);
	cr_assert_eq(f.sm.zxid, last + 1);
	fx_fini(&f);
}

Test(txn, reconfig_is_disabled_or_unimplemented_and_takes_a_zxid)
{
	struct fx f;
	fx_init(&f);
	for (int enabled = 0; enabled <= 1; enabled++) {
		f.sm.reconfig_enabled = enabled;
		int64_t before = f.sm.zxid;
		struct jute_out b = body_new();
		jute_put_string(&b, "server.5=127.0.0.1:1234:1235;1236", 33);
		jute_put_string(&b, NULL, -1);
		jute_put_string(&b, NULL, -1);
		jute_put_long(&b, -1);
		struct reply r = request(&f, ZOP_RECONFIG, &b);
		cr_assert_eq(r.err, enabled ? ZUNIMPLEMENTED : ZRECONFIGDISABLED, "%s",
			     proto_err_name(r.err));
		cr_assert_eq(r.zxid, before + 1, "an error txn");
		cr_assert_eq(jute_remaining(&r.body), 0, "no body");
		reply_free(&r);
	}
	cr_assert_eq(f.ev.n, 0);
	fx_fini(&f);
}

Test(txn, events_name_the_acl_a_watcher_needs_read_on)
{
	struct fx f;
	fx_init(&f);
	auth_as(f.s, "alice:secret");
	struct acl_list *alice = digest_acl("alice:secret", ZPERM_ALL);
	cr_assert_eq(create(&f, "/p", NULL, ZCM_PERSISTENT), ZOK);
	cr_assert_eq(create_as(&f, f.s, "/p/s", "x", alice, ZCM_PERSISTENT), ZOK);
	cr_assert_eq(set_data(&f, "/p/s", "y", -1, NULL), ZOK);
	cr_assert_eq(path_version_op(&f, ZOP_DELETE, "/p/s", -1), ZOK);
	/* The node's own ACL for its events, the deleted node's as it was,
	 * the parent's for NodeChildrenChanged. */
	static const struct {
		enum zk_event_type type;
		const char *path;
		bool alice_only;
	} want[] = {
	    {ZEV_NODE_CREATED, "/p", false},	      {ZEV_NODE_CHILDREN_CHANGED, "/", false},
	    {ZEV_NODE_CREATED, "/p/s", true},	      {ZEV_NODE_CHILDREN_CHANGED, "/p", false},
	    {ZEV_NODE_DATA_CHANGED, "/p/s", true},    {ZEV_NODE_DELETED, "/p/s", true},
	    {ZEV_NODE_CHILDREN_CHANGED, "/p", false},
	};
	cr_assert_eq(f.ev.n, sizeof want / sizeof *want);
	for (size_t i = 0; i < f.ev.n; i++) {
		cr_assert_eq(f.ev.e[i].type, want[i].type, "event %zu", i);
		cr_assert_str_eq(f.ev.e[i].path, want[i].path, "event %zu", i);
		const struct acl_list *expect = want[i].alice_only ? alice : &acl_open_unsafe;
		cr_assert(acl_list_equal(f.ev.e[i].acl, expect), "event %zu: %s", i,
			  f.ev.e[i].path);
	}
	acl_list_free(alice);
	fx_fini(&f);
}

/* ---- quotas (ZooKeeper 3.7+: /zookeeper/quota, StatsTrack text) ---- */

/* What zkCli's setquota creates for path: the quota dirs, the limits node
 * with limits, then the stats node with "count=0,bytes=0", which the
 * server replaces with a count of the subtree. */
static void quota_set(struct fx *f, const char *path, const char *limits)
{
	char q[256] = "/zookeeper/quota";
	for (const char *p = path; *p;) {
		const char *e = strchr(p + 1, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		strncat(q, p, n);
		int32_t err = create(f, q, NULL, ZCM_PERSISTENT);
		cr_assert(err == ZOK || err == ZNODEEXISTS, "%s: %s", q, proto_err_name(err));
		p += n;
	}
	char l[300], s[300];
	snprintf(l, sizeof l, "%s/zookeeper_limits", q);
	snprintf(s, sizeof s, "%s/zookeeper_stats", q);
	cr_assert_eq(create(f, l, limits, ZCM_PERSISTENT), ZOK);
	cr_assert_eq(create(f, s, "count=0,bytes=0", ZCM_PERSISTENT), ZOK);
}

/* The stats text of the quota on path (static buffer). */
static const char *quota_stats(struct fx *f, const char *path)
{
	static char buf[256];
	char s[300];
	snprintf(s, sizeof s, "/zookeeper/quota%s/zookeeper_stats", path);
	const struct znode *n = node(f, s);
	cr_assert_not_null(n, "%s", s);
	cr_assert_lt(n->stat.data_length, (int32_t)sizeof buf);
	memcpy(buf, n->data, (size_t)n->stat.data_length);
	buf[n->stat.data_length] = 0;
	return buf;
}

Test(txn_quota, stats_count_the_subtree_then_follow_creates_deletes_and_set_data)
{
	struct fx f;
	fx_init(&f);
	cr_assert_eq(create(&f, "/a", "x", ZCM_PERSISTENT), ZOK);
	cr_assert_eq(create(&f, "/a/b", NULL, ZCM_PERSISTENT), ZOK);
	quota_set(&f, "/a", "count=10,bytes=-1");
	cr_assert_str_eq(quota_stats(&f, "/a"), "count=2,bytes=1", "the subtree, /a included");
	const struct znode *s = node(&f, "/zookeeper/quota/a/zookeeper_stats");
	struct zk_stat created = s->stat;
	cr_assert_eq(created.data_length, 15);

	cr_assert_eq(create(&f, "/a/c", "abc", ZCM_PERSISTENT), ZOK);
	cr_assert_str_eq(quota_stats(&f, "/a"), "count=3,bytes=4");
	cr_assert_eq(set_data(&f, "/a/c", "z", -1, NULL), ZOK);
	cr_assert_str_eq(quota_stats(&f, "/a"), "count=3,bytes=2");
	cr_assert_eq(path_version_op(&f, ZOP_DELETE, "/a/b", -1), ZOK);
	cr_assert_str_eq(quota_stats(&f, "/a"), "count=2,bytes=2");
	cr_assert_eq(create(&f, "/other", "zzzz", ZCM_PERSISTENT), ZOK);
	cr_assert_str_eq(quota_stats(&f, "/a"), "count=2,bytes=2", "outside the quota");
	/* An ephemeral deleted by its session's end counts too. */
	cr_assert_eq(create(&f, "/a/e", "12", ZCM_EPHEMERAL), ZOK);
	cr_assert_str_eq(quota_stats(&f, "/a"), "count=3,bytes=4");
	struct session *s2 = sm_open_session(&f.sm, 30000, 0, NOW_MS);
	cr_assert_eq(create_as(&f, s2, "/a/e2", "1", &acl_open_unsafe, ZCM_EPHEMERAL), ZOK);
	cr_assert_str_eq(quota_stats(&f, "/a"), "count=4,bytes=5");
	sm_close_session(&f.sm, s2, NOW_MS, NULL);
	cr_assert_str_eq(quota_stats(&f, "/a"), "count=3,bytes=4");

	/* As ZooKeeper's DataTree: the data changes, the rest of the Stat
	 * does not, and no watch fires. */
	f.ev.n = 0;
	cr_assert_eq(create(&f, "/a/f", NULL, ZCM_PERSISTENT), ZOK);
	cr_assert_eq(f.ev.n, 2, "NodeCreated and the parent's NodeChildrenChanged only");
	s = node(&f, "/zookeeper/quota/a/zookeeper_stats");
	cr_assert_eq(s->stat.version, 0);
	cr_assert_eq(s->stat.mzxid, created.mzxid);
	cr_assert_eq(s->stat.mtime, created.mtime);
	cr_assert_eq(s->stat.data_length, (int32_t)strlen("count=4,bytes=4"));
	fx_fini(&f);
}

Test(txn_quota, stats_keep_other_keys_and_a_client_may_overwrite_them)
{
	struct fx f;
	fx_init(&f);
	cr_assert_eq(create(&f, "/n", NULL, ZCM_PERSISTENT), ZOK);
	quota_set(&f, "/n", "count=-1,bytes=-1");
	cr_assert_eq(set_data(&f, "/zookeeper/quota/n/zookeeper_stats", "count=1,bytes=2;zz=1;aa=2",
			      -1, NULL),
		     ZOK);
	cr_assert_eq(create(&f, "/n/z", "abc", ZCM_PERSISTENT), ZOK);
	cr_assert_str_eq(quota_stats(&f, "/n"), "count=2,bytes=5=;aa=2;zz=1");
	/* Empty stats read as -1 each (ZooKeeper 3.8 says count=0,bytes=2). */
	cr_assert_eq(set_data(&f, "/zookeeper/quota/n/zookeeper_stats", "", -1, NULL), ZOK);
	cr_assert_eq(create(&f, "/n/w", "abc", ZCM_PERSISTENT), ZOK);
	cr_assert_str_eq(quota_stats(&f, "/n"), "count=0,bytes=2");
	/* Stats that do not parse are left alone. */
	cr_assert_eq(set_data(&f, "/zookeeper/quota/n/zookeeper_stats", "junk", -1, NULL), ZOK);
	cr_assert_eq(create(&f, "/n/v", "abc", ZCM_PERSISTENT), ZOK);
	cr_assert_str_eq(quota_stats(&f, "/n"), "junk");
	fx_fini(&f);
}

Test(txn_quota, soft_limits_let_writes_through)
{
	struct fx f;
	fx_init(&f);
	f.sm.enforce_quota = true;
	static struct quota_counters qc;
	f.sm.quota_counters = &qc;
	cr_assert_eq(create(&f, "/s", NULL, ZCM_PERSISTENT), ZOK);
	quota_set(&f, "/s", "count=2,bytes=3");
	for (int i = 0; i < 3; i++) {
		char p[16];
		snprintf(p, sizeof p, "/s/%d", i);
		cr_assert_eq(create(&f, p, "ab", ZCM_PERSISTENT), ZOK, "%s", p);
	}
	cr_assert_eq(set_data(&f, "/s", "0123456789", -1, NULL), ZOK);
	cr_assert_str_eq(quota_stats(&f, "/s"), "count=4,bytes=16");
	cr_assert_eq(atomic_load(&qc.used), 0, "soft limits count no refusal");
	fx_fini(&f);
}

Test(txn_quota, hard_count_limit_refuses_creates_with_quotaexceeded)
{
	struct fx f;
	fx_init(&f);
	f.sm.enforce_quota = true;
	static struct quota_counters qc;
	f.sm.quota_counters = &qc;
	cr_assert_eq(create(&f, "/h", NULL, ZCM_PERSISTENT), ZOK);
	/* The soft count is passed already; the hard one decides. */
	quota_set(&f, "/h", "count=1,bytes=-1=;countHardLimit=3");
	cr_assert_eq(create(&f, "/h/a", NULL, ZCM_PERSISTENT), ZOK);
	cr_assert_eq(create(&f, "/h/b", NULL, ZCM_PERSISTENT), ZOK);
	int64_t zxid = f.sm.zxid;
	size_t nodes = tree_node_count(tree_working(f.tree));
	f.ev.n = 0;
	cr_assert_eq(create(&f, "/h/c", NULL, ZCM_PERSISTENT), ZQUOTAEXCEEDED);
	cr_assert_eq(create(&f, "/h/a/deeper", "x", ZCM_PERSISTENT_SEQUENTIAL), ZQUOTAEXCEEDED);
	cr_assert_eq(f.sm.zxid, zxid + 2, "refused writes take a zxid");
	cr_assert_eq(tree_node_count(tree_working(f.tree)), nodes, "and apply nothing");
	cr_assert_eq(f.ev.n, 0);
	cr_assert_str_eq(quota_stats(&f, "/h"), "count=3,bytes=0");
	cr_assert_eq(atomic_load(&qc.used), 1);
	cr_assert_str_eq(qc.ns[0].name, "h");
	cr_assert_eq(atomic_load(&qc.ns[0].exceeded), 2);
	/* Checks come after ZooKeeper's other create checks. */
	cr_assert_eq(create(&f, "/h/a", NULL, ZCM_PERSISTENT), ZNODEEXISTS);
	cr_assert_eq(create(&f, "/h/x/y", NULL, ZCM_PERSISTENT), ZNONODE);
	/* setData changes no count; a delete makes room. */
	cr_assert_eq(set_data(&f, "/h/a", "data", -1, NULL), ZOK);
	cr_assert_eq(path_version_op(&f, ZOP_DELETE, "/h/b", -1), ZOK);
	cr_assert_eq(create(&f, "/h/c", NULL, ZCM_PERSISTENT), ZOK);
	cr_assert_str_eq(quota_stats(&f, "/h"), "count=3,bytes=4");
	/* Paths outside the quota do not care. */
	cr_assert_eq(create(&f, "/hh", NULL, ZCM_PERSISTENT), ZOK);
	fx_fini(&f);
}

Test(txn_quota, hard_byte_limit_refuses_growth_past_it)
{
	struct fx f;
	fx_init(&f);
	f.sm.enforce_quota = true;
	cr_assert_eq(create(&f, "/b", "0123456789", ZCM_PERSISTENT), ZOK);
	quota_set(&f, "/b", "count=-1,bytes=-1=;byteHardLimit=12");
	cr_assert_str_eq(quota_stats(&f, "/b"), "count=1,bytes=10");
	cr_assert_eq(create(&f, "/b/x", "abc", ZCM_PERSISTENT), ZQUOTAEXCEEDED);
	cr_assert_eq(create(&f, "/b/x", "ab", ZCM_PERSISTENT), ZOK, "exactly at the limit");
	cr_assert_eq(create(&f, "/b/y", NULL, ZCM_PERSISTENT), ZOK, "no bytes, no byte check");
	cr_assert_eq(set_data(&f, "/b/x", "abc", -1, NULL), ZQUOTAEXCEEDED);
	/* The quota check comes before the version check, as in ZooKeeper. */
	cr_assert_eq(set_data(&f, "/b/x", "abc", 42, NULL), ZQUOTAEXCEEDED);
	cr_assert_eq(set_data(&f, "/b/x", "a", 42, NULL), ZBADVERSION);
	cr_assert_eq(set_data(&f, "/b", "0", -1, NULL), ZOK, "shrinking");
	cr_assert_str_eq(quota_stats(&f, "/b"), "count=3,bytes=3");
	/* Lowering the limit under the usage refuses any change of bytes, a
	 * shrinking one too while it stays above (ZooKeeper checks every
	 * non-zero diff). */
	cr_assert_eq(set_data(&f, "/zookeeper/quota/b/zookeeper_limits",
			      "count=-1,bytes=-1=;byteHardLimit=1", -1, NULL),
		     ZOK);
	cr_assert_eq(set_data(&f, "/b/x", "a", -1, NULL), ZQUOTAEXCEEDED);
	cr_assert_eq(set_data(&f, "/b/x", NULL, -1, NULL), ZOK, "down to the limit");
	fx_fini(&f);
}

Test(txn_quota, limits_are_not_enforced_without_enforce_quota)
{
	struct fx f;
	fx_init(&f);
	cr_assert_eq(create(&f, "/o", NULL, ZCM_PERSISTENT), ZOK);
	quota_set(&f, "/o", "count=-1,bytes=-1=;byteHardLimit=1;countHardLimit=1");
	cr_assert_eq(create(&f, "/o/a", "long data", ZCM_PERSISTENT), ZOK);
	cr_assert_eq(set_data(&f, "/zookeeper/quota/o/zookeeper_limits", "garbage", -1, NULL), ZOK);
	cr_assert_eq(create(&f, "/o/b", NULL, ZCM_PERSISTENT), ZOK);
	cr_assert_str_eq(quota_stats(&f, "/o"), "count=3,bytes=9", "stats are kept anyway");
	fx_fini(&f);
}

Test(txn_quota, limits_or_stats_that_do_not_parse_fail_writes_with_marshallingerror)
{
	struct fx f;
	fx_init(&f);
	f.sm.enforce_quota = true;
	cr_assert_eq(create(&f, "/g", NULL, ZCM_PERSISTENT), ZOK);
	quota_set(&f, "/g", "count=5,bytes=-1");
	cr_assert_eq(set_data(&f, "/zookeeper/quota/g/zookeeper_limits", "garbage", -1, NULL), ZOK);
	cr_assert_eq(create(&f, "/g/x", NULL, ZCM_PERSISTENT), ZMARSHALLINGERROR);
	cr_assert_eq(
	    set_data(&f, "/zookeeper/quota/g/zookeeper_limits", "count=5,bytes=-1", -1, NULL), ZOK);
	cr_assert_eq(set_data(&f, "/zookeeper/quota/g/zookeeper_stats", "junk", -1, NULL), ZOK);
	cr_assert_eq(create(&f, "/g/y", NULL, ZCM_PERSISTENT), ZMARSHALLINGERROR);
	/* Stats are read only for a limit the change could pass. */
	cr_assert_eq(set_data(&f, "/g", "abc", -1, NULL), ZOK, "no byte limit set");
	fx_fini(&f);
}

Test(txn_quota, the_deepest_quota_counts_and_decides)
{
	struct fx f;
	fx_init(&f);
	f.sm.enforce_quota = true;
	cr_assert_eq(create(&f, "/p", NULL, ZCM_PERSISTENT), ZOK);
	cr_assert_eq(create(&f, "/p/q", NULL, ZCM_PERSISTENT), ZOK);
	/* zkCli refuses nested quotas; the server, as ZooKeeper's, takes
	 * them and lets the deepest one cover each path. */
	quota_set(&f, "/p", "count=-1,bytes=-1=;countHardLimit=3");
	quota_set(&f, "/p/q", "count=-1,bytes=-1=;countHardLimit=100");
	cr_assert_str_eq(quota_stats(&f, "/p"), "count=2,bytes=0");
	cr_assert_str_eq(quota_stats(&f, "/p/q"), "count=1,bytes=0");
	for (int i = 0; i < 4; i++) {
		char p[16];
		snprintf(p, sizeof p, "/p/q/%d", i);
		cr_assert_eq(create(&f, p, NULL, ZCM_PERSISTENT), ZOK, "%s", p);
	}
	cr_assert_str_eq(quota_stats(&f, "/p"), "count=2,bytes=0", "/p/q's subtree is not /p's");
	cr_assert_str_eq(quota_stats(&f, "/p/q"), "count=5,bytes=0");
	cr_assert_eq(create(&f, "/p/r", NULL, ZCM_PERSISTENT), ZOK);
	cr_assert_eq(create(&f, "/p/s", NULL, ZCM_PERSISTENT), ZQUOTAEXCEEDED);
	/* Deleting a limits node ends its quota: /p covers /p/q again. */
	cr_assert_eq(path_version_op(&f, ZOP_DELETE, "/zookeeper/quota/p/q/zookeeper_limits", -1),
		     ZOK);
	cr_assert_eq(create(&f, "/p/q/4", NULL, ZCM_PERSISTENT), ZQUOTAEXCEEDED);
	fx_fini(&f);
}

Test(txn_quota, a_multi_counts_its_earlier_ops)
{
	struct fx f;
	fx_init(&f);
	f.sm.enforce_quota = true;
	cr_assert_eq(create(&f, "/m", NULL, ZCM_PERSISTENT), ZOK);
	quota_set(&f, "/m", "count=-1,bytes=-1=;byteHardLimit=4;countHardLimit=3");
	/* ZooKeeper 3.8 checks each op against the committed stats only and
	 * lets all three through (count 4 of 3); Ringkeeper stops the third. */
	struct jute_out b = body_new();
	for (int i = 0; i < 3; i++) {
		char p[16];
		snprintf(p, sizeof p, "/m/%d", i);
		multi_op(&b, ZOP_CREATE);
		put_create(&b, p, NULL, &acl_open_unsafe, ZCM_PERSISTENT);
	}
	multi_end(&b);
	struct reply r = request(&f, ZOP_MULTI, &b);
	struct result res[4];
	cr_assert_eq(parse_multi(&r, res, 4), 3);
	cr_assert_eq(res[0].err, ZOK);
	cr_assert_eq(res[1].err, ZOK);
	cr_assert_eq(res[2].err, ZQUOTAEXCEEDED);
	reply_free(&r);
	cr_assert_null(node(&f, "/m/0"));
	cr_assert_str_eq(quota_stats(&f, "/m"), "count=1,bytes=0");

	/* Deletes and shrinking setData earlier in the multi make room. */
	cr_assert_eq(create(&f, "/m/a", "abcd", ZCM_PERSISTENT), ZOK);
	cr_assert_eq(create(&f, "/m/b", NULL, ZCM_PERSISTENT), ZOK);
	b = body_new();
	multi_op(&b, ZOP_DELETE);
	put_path_version(&b, "/m/b", -1);
	multi_op(&b, ZOP_SET_DATA);
	put_set(&b, "/m/a", "a", -1);
	multi_op(&b, ZOP_CREATE);
	put_create(&b, "/m/c", "xyz", &acl_open_unsafe, ZCM_PERSISTENT);
	multi_op(&b, ZOP_SET_DATA);
	put_set(&b, "/m/c", "wxyz", -1);
	multi_end(&b);
	r = request(&f, ZOP_MULTI, &b);
	cr_assert_eq(parse_multi(&r, res, 4), 4);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(res[i].err, ZOK, "op %d", i);
	cr_assert_eq(res[3].err, ZQUOTAEXCEEDED, "1 + 4 bytes pass 4");
	reply_free(&r);

	b = body_new();
	multi_op(&b, ZOP_DELETE);
	put_path_version(&b, "/m/b", -1);
	multi_op(&b, ZOP_SET_DATA);
	put_set(&b, "/m/a", "a", -1);
	multi_op(&b, ZOP_CREATE);
	put_create(&b, "/m/c", "xyz", &acl_open_unsafe, ZCM_PERSISTENT);
	multi_end(&b);
	r = request(&f, ZOP_MULTI, &b);
	cr_assert_eq(parse_multi(&r, res, 4), 3);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(res[i].err, ZOK, "op %d", i);
	reply_free(&r);
	cr_assert_str_eq(quota_stats(&f, "/m"), "count=3,bytes=4");
	fx_fini(&f);
}

Test(txn_quota, a_failed_multi_op_leaves_the_rest_unchecked)
{
	struct fx f;
	fx_init(&f);
	f.sm.enforce_quota = true;
	cr_assert_eq(create(&f, "/u", NULL, ZCM_PERSISTENT), ZOK);
	quota_set(&f, "/u", "count=5,bytes=-1");
	cr_assert_eq(set_data(&f, "/zookeeper/quota/u/zookeeper_limits", "garbage", -1, NULL), ZOK);
	/* Ops after a failed one are only decoded, as ZooKeeper does not
	 * prepare them: the unreadable limits do not turn the multi into a
	 * MARSHALLINGERROR. */
	struct jute_out b = body_new();
	multi_op(&b, ZOP_CREATE);
	put_create(&b, "/missing/x", NULL, &acl_open_unsafe, ZCM_PERSISTENT);
	multi_op(&b, ZOP_CREATE);
	put_create(&b, "/u/x", NULL, &acl_open_unsafe, ZCM_PERSISTENT);
	multi_end(&b);
	struct reply r = request(&f, ZOP_MULTI, &b);
	cr_assert_eq(r.err, ZOK);
	struct result res[4];
	cr_assert_eq(parse_multi(&r, res, 4), 2);
	cr_assert_eq(res[0].err, ZNONODE);
	cr_assert_eq(res[1].err, ZRUNTIMEINCONSISTENCY);
	reply_free(&r);
	fx_fini(&f);
}

/* ---- replay ---- */

struct log_capture {
	struct jute_out recs; /* (zxid, type, len, payload) each */
};

static void capture_record(void *ctx, int64_t zxid, uint32_t type, const void *payload,
			   uint32_t len)
{
	struct log_capture *c = ctx;
	jute_put_long(&c->recs, zxid);
	jute_put_int(&c->recs, (int32_t)type);
	jute_put_buffer(&c->recs, payload, (int32_t)len);
}

Test(txn_quota, replaying_the_log_rebuilds_the_same_stats)
{
	struct log_capture cap;
	jute_out_init(&cap.recs, 4096, 1 << 24);
	struct sm_log log = {.record = capture_record, .ctx = &cap};
	struct fx f;
	memset(&f, 0, sizeof f);
	f.tree = tree_create();
	f.sessions = session_table_create(1, NOW_MS);
	f.sm =
	    (struct sm){.log = &log, .tree = f.tree, .sessions = f.sessions, .enforce_quota = true};
	f.s = sm_open_session(&f.sm, 30000, 0, NOW_MS);
	cr_assert_eq(create(&f, "/r", "abc", ZCM_PERSISTENT), ZOK);
	cr_assert_eq(create(&f, "/r/a", "1", ZCM_PERSISTENT), ZOK);
	quota_set(&f, "/r", "count=-1,bytes=-1=;countHardLimit=6");
	cr_assert_eq(create(&f, "/r/b", "22", ZCM_EPHEMERAL), ZOK);
	cr_assert_eq(set_data(&f, "/r/a", "4444", -1, NULL), ZOK);
	cr_assert_eq(path_version_op(&f, ZOP_DELETE, "/r/a", -1), ZOK);
	struct jute_out b = body_new();
	multi_op(&b, ZOP_CREATE);
	put_create(&b, "/r/m", "mm", &acl_open_unsafe, ZCM_PERSISTENT);
	multi_op(&b, ZOP_SET_DATA);
	put_set(&b, "/r", NULL, -1);
	multi_end(&b);
	struct reply r = request(&f, ZOP_MULTI, &b);
	reply_free(&r);
	for (int i = 0; i < 5; i++) {
		char p[16];
		snprintf(p, sizeof p, "/r/x%d", i);
		create(&f, p, "x", ZCM_PERSISTENT); /* the last ones pass the hard limit */
	}
	sm_close_session(&f.sm, f.s, NOW_MS, NULL);
	/* 3,4 at setquota; x0..x2 reach the limit; /r/b (2 bytes) goes with
	 * the session. */
	const char *want = "count=5,bytes=5";
	cr_assert_str_eq(quota_stats(&f, "/r"), want);

	struct fx g;
	memset(&g, 0, sizeof g);
	g.tree = tree_create();
	g.sessions = session_table_create(1, NOW_MS);
	g.sm = (struct sm){.tree = g.tree, .sessions = g.sessions};
	struct jute_in in = jute_in_make(cap.recs.buf, cap.recs.len);
	size_t n = 0;
	while (jute_remaining(&in)) {
		int64_t zxid = jute_get_long(&in);
		uint32_t type = (uint32_t)jute_get_int(&in);
		const uint8_t *p;
		int32_t len;
		jute_get_buffer(&in, &p, &len);
		cr_assert_eq(in.err, 0);
		cr_assert_eq(sm_replay(&g.sm, zxid, type, p, (uint32_t)len), 0, "record %zu", n);
		n++;
	}
	cr_assert_str_eq(quota_stats(&g, "/r"), want);
	cr_assert_eq(tree_digest(tree_working(g.tree)), tree_digest(tree_working(f.tree)),
		     "every node, the stats' Stat included, as on the server that wrote it");
	jute_out_free(&cap.recs);
	fx_fini(&g);
	fx_fini(&f);
}
