/* Persistent znode tree: Stat effects of create, delete, setData and
 * setACL, snapshot isolation of published versions, quiescent-state
 * reclamation (run under ASan: an old version must stay readable after
 * reclaiming older generations, and nothing may leak), ACL interning, null
 * vs empty data, the system nodes, a parent with a million children, and
 * the digest (the same for the same data however built, changed by any
 * change). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/acl.h"
#include "core/proto.h"
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
/* ASan's allocator statistics (sanitizer/allocator_interface.h, which gcc
 * 12 does not install). */
size_t __sanitizer_get_current_allocated_bytes(void);
#define HEAP_EXACT 1
#else
/* glibc's mallinfo counts its per-thread caches as in use: no exact count. */
#define HEAP_EXACT 0
#endif

/* Criterion ignores what LeakSanitizer prints at exit, so tests ask it. */
static bool leaks_found(void)
{
#ifdef UNDER_ASAN
	return __lsan_do_recoverable_leak_check() != 0;
#else
	return false;
#endif
}

/* Bytes the heap has handed out and not taken back (0 without ASan). */
static size_t heap_in_use(void)
{
#ifdef UNDER_ASAN
	return __sanitizer_get_current_allocated_bytes();
#else
	return 0;
#endif
}

static const struct znode *get(const struct tree_version *v, const char *path)
{
	return tree_lookup(v, path, strlen(path));
}

static const struct znode *wget(const struct tree *t, const char *path)
{
	return get(tree_working(t), path);
}

/* Creates path with acl as core/txn.c does: the parent's create count goes
 * up by one. data NULL means null data. */
static int mk_acl(struct tree *t, const char *path, const char *data, const struct acl_list *acl,
		  int64_t zxid)
{
	size_t len = strlen(path);
	const struct znode *p = tree_lookup(tree_working(t), path, tree_parent_len(path, len));
	if (!p)
		return -1;
	return tree_node_create(t, path, len, data, data ? (int32_t)strlen(data) : -1, acl, 0, zxid,
				zxid * 1000, p->stat.cversion + 1);
}

static void mk(struct tree *t, const char *path, const char *data, int64_t zxid)
{
	cr_assert_eq(mk_acl(t, path, data, &acl_open_unsafe, zxid), 0, "create %s", path);
}

static void rm(struct tree *t, const char *path, int64_t zxid)
{
	cr_assert_eq(tree_node_delete(t, path, strlen(path), zxid), 0, "delete %s", path);
}

static void set(struct tree *t, const char *path, const char *data, int64_t zxid, int32_t version)
{
	cr_assert_eq(tree_node_set_data(t, path, strlen(path), data,
					data ? (int32_t)strlen(data) : -1, zxid, zxid * 1000,
					version),
		     0, "setData %s", path);
}

/* The cversion a client sees: decode what proto_put_stat writes. */
static int32_t wire_cversion(const struct zk_stat *st)
{
	struct jute_out out;
	jute_out_init(&out, ZK_STAT_WIRE_BYTES, 1024);
	proto_put_stat(&out, st);
	cr_assert_eq(out.len, ZK_STAT_WIRE_BYTES);
	struct jute_in in = jute_in_make(out.buf, out.len);
	struct zk_stat back;
	proto_get_stat(&in, &back);
	jute_out_free(&out);
	return back.cversion;
}

static bool data_is(const struct znode *n, const char *expect)
{
	size_t len = strlen(expect);
	return n->data && n->stat.data_length == (int32_t)len && memcmp(n->data, expect, len) == 0;
}

/* Child names of n joined with ',' in sorted order, for small nodes. */
struct names {
	char name[16][32];
	size_t n;
};

static int add_name(void *ctx, const char *name, size_t len)
{
	struct names *ns = ctx;
	cr_assert_lt(ns->n, 16);
	cr_assert_lt(len, 32);
	memcpy(ns->name[ns->n], name, len);
	ns->name[ns->n++][len] = '\0';
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

static char *children_of(const struct znode *n, char *buf, size_t cap)
{
	struct names ns = {.n = 0};
	cr_assert_eq(tree_foreach_child(n, add_name, &ns), 0);
	qsort(ns.name, ns.n, sizeof ns.name[0], cmp_name);
	buf[0] = '\0';
	for (size_t i = 0; i < ns.n; i++) {
		if (i)
			strncat(buf, ",", cap - strlen(buf) - 1);
		strncat(buf, ns.name[i], cap - strlen(buf) - 1);
	}
	return buf;
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

/* ---- the initial tree ---- */

Test(tree, initial_tree_holds_root_and_the_zookeeper_system_nodes)
{
	struct tree *t = tree_create();
	cr_assert_not_null(t);
	const struct tree_version *v = tree_acquire(t);
	cr_assert_not_null(v);
	cr_assert_eq(tree_node_count(v), 4);
	cr_assert_eq(v->gen, 1);
	cr_assert_eq(v->zxid, 0);
	const char *paths[] = {"/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"};
	for (size_t i = 0; i < 4; i++) {
		const struct znode *n = get(v, paths[i]);
		cr_assert_not_null(n, "%s", paths[i]);
		cr_assert_eq(n->stat.czxid, 0, "%s", paths[i]);
		cr_assert_eq(n->stat.mzxid, 0, "%s", paths[i]);
		cr_assert_eq(n->stat.pzxid, 0, "%s", paths[i]);
		cr_assert_eq(n->stat.ctime, 0, "%s", paths[i]);
		cr_assert_eq(n->stat.version, 0, "%s", paths[i]);
		cr_assert_eq(n->stat.ephemeral_owner, 0, "%s", paths[i]);
	}
	char buf[128];
	cr_assert_str_eq(children_of(get(v, "/"), buf, sizeof buf), "zookeeper");
	cr_assert_str_eq(children_of(get(v, "/zookeeper"), buf, sizeof buf), "config,quota");
	cr_assert_str_eq(children_of(get(v, "/zookeeper/quota"), buf, sizeof buf), "");
	/* The system nodes are not counted as creates: a fresh ZooKeeper shows
	 * cversion -1 on "/" and -2 on "/zookeeper". */
	cr_assert_eq(get(v, "/")->stat.num_children, 1);
	cr_assert_eq(wire_cversion(&get(v, "/")->stat), -1);
	cr_assert_eq(get(v, "/zookeeper")->stat.num_children, 2);
	cr_assert_eq(wire_cversion(&get(v, "/zookeeper")->stat), -2);
	cr_assert_null(get(v, "/zookeeper/other"));
	cr_assert_null(get(v, ""));
	tree_destroy(t);
}

Test(tree, system_node_acls_are_open_except_config_which_is_read_only)
{
	struct tree *t = tree_create();
	const struct tree_version *v = tree_acquire(t);
	cr_assert(acl_list_equal(get(v, "/")->acl->list, &acl_open_unsafe));
	cr_assert(acl_list_equal(get(v, "/zookeeper")->acl->list, &acl_open_unsafe));
	cr_assert(acl_list_equal(get(v, "/zookeeper/quota")->acl->list, &acl_open_unsafe));
	cr_assert(acl_list_equal(get(v, "/zookeeper/config")->acl->list, &acl_read_unsafe));
	tree_destroy(t);
}

/* ZooKeeper's DataTree builds "/", "/zookeeper", "/zookeeper/quota" and
 * "/zookeeper/config" with new byte[0]: getData returns empty data, not
 * null (zkCli prints an empty line, not "null"). */
Test(tree, system_nodes_hold_empty_not_null_data)
{
	struct tree *t = tree_create();
	const struct tree_version *v = tree_acquire(t);
	const char *paths[] = {"/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"};
	for (size_t i = 0; i < 4; i++) {
		const struct znode *n = get(v, paths[i]);
		cr_expect_not_null(n->data, "%s has null data", paths[i]);
		cr_expect_eq(n->stat.data_length, 0, "%s", paths[i]);
	}
	tree_destroy(t);
}

/* DataTree.addConfigNode sets the READ ACL with setACL(..., -1), which
 * stores -1 as the aclVersion. */
Test(tree, config_node_acl_version_is_minus_one_as_zookeeper_sets_it)
{
	struct tree *t = tree_create();
	const struct tree_version *v = tree_acquire(t);
	cr_assert_eq(get(v, "/zookeeper/config")->stat.aversion, -1);
	cr_assert_eq(get(v, "/zookeeper")->stat.aversion, 0);
	tree_destroy(t);
}

Test(tree, parent_len_finds_the_parent_path)
{
	cr_assert_eq(tree_parent_len("/a", 2), 1);
	cr_assert_eq(tree_parent_len("/abc/d", 6), 4);
	cr_assert_eq(tree_parent_len("/a/b/c", 6), 4);
}

/* ---- Stat effects ---- */

Test(tree, create_sets_the_node_stat_and_the_parent_counters)
{
	struct tree *t = tree_create();
	cr_assert_eq(tree_node_create(t, "/a", 2, "hello", 5, &acl_open_unsafe, 0, 5, 5000, 1), 0);
	const struct znode *a = wget(t, "/a");
	cr_assert_not_null(a);
	cr_assert_eq(a->stat.czxid, 5);
	cr_assert_eq(a->stat.mzxid, 5);
	cr_assert_eq(a->stat.pzxid, 5);
	cr_assert_eq(a->stat.ctime, 5000);
	cr_assert_eq(a->stat.mtime, 5000);
	cr_assert_eq(a->stat.version, 0);
	cr_assert_eq(a->stat.cversion, 0);
	cr_assert_eq(a->stat.aversion, 0);
	cr_assert_eq(a->stat.num_children, 0);
	cr_assert_eq(a->stat.ephemeral_owner, 0);
	cr_assert(data_is(a, "hello"));

	const struct znode *root = wget(t, "/");
	cr_assert_eq(root->stat.num_children, 2);
	cr_assert_eq(root->stat.cversion, 1);
	cr_assert_eq(root->stat.pzxid, 5);
	/* A child's creation is not a change of the parent's data. */
	cr_assert_eq(root->stat.mzxid, 0);
	cr_assert_eq(root->stat.version, 0);

	cr_assert_eq(tree_node_create(t, "/a/b", 4, NULL, -1, &acl_open_unsafe, 0x1234, 6, 6000, 1),
		     0);
	const struct znode *b = wget(t, "/a/b");
	cr_assert_eq(b->stat.ephemeral_owner, 0x1234);
	a = wget(t, "/a");
	cr_assert_eq(a->stat.num_children, 1);
	cr_assert_eq(a->stat.cversion, 1);
	cr_assert_eq(a->stat.pzxid, 6);
	cr_assert_eq(a->stat.mzxid, 5);
	cr_assert_eq(wire_cversion(&a->stat), 1);
	char buf[64];
	cr_assert_str_eq(children_of(a, buf, sizeof buf), "b");
	cr_assert_eq(tree_node_count(tree_working(t)), 6);
	tree_destroy(t);
}

Test(tree, create_stores_the_parent_cversion_it_is_given)
{
	struct tree *t = tree_create();
	mk(t, "/p", NULL, 2);
	cr_assert_eq(tree_node_create(t, "/p/x", 4, NULL, -1, &acl_open_unsafe, 0, 3, 3000, 41), 0);
	cr_assert_eq(wget(t, "/p")->stat.cversion, 41);
	tree_destroy(t);
}

Test(tree, delete_updates_children_and_pzxid_but_not_the_create_count)
{
	struct tree *t = tree_create();
	mk(t, "/a", NULL, 2);
	mk(t, "/a/x", NULL, 3);
	mk(t, "/a/y", NULL, 4);
	rm(t, "/a/x", 7);
	const struct znode *a = wget(t, "/a");
	cr_assert_null(wget(t, "/a/x"));
	cr_assert_not_null(wget(t, "/a/y"));
	cr_assert_eq(a->stat.num_children, 1);
	cr_assert_eq(a->stat.cversion, 2);
	cr_assert_eq(a->stat.pzxid, 7);
	cr_assert_eq(a->stat.mzxid, 2);
	/* On the wire: two creates plus one delete. */
	cr_assert_eq(wire_cversion(&a->stat), 3);
	char buf[64];
	cr_assert_str_eq(children_of(a, buf, sizeof buf), "y");
	cr_assert_eq(tree_node_count(tree_working(t)), 6);
	tree_destroy(t);
}

Test(tree, delete_with_an_older_zxid_keeps_the_newer_pzxid)
{
	/* DataTree.deleteNode: pzxid only moves forward. */
	struct tree *t = tree_create();
	mk(t, "/a", NULL, 2);
	mk(t, "/a/x", NULL, 3);
	mk(t, "/a/y", NULL, 10);
	rm(t, "/a/x", 9);
	cr_assert_eq(wget(t, "/a")->stat.pzxid, 10);
	tree_destroy(t);
}

Test(tree, delete_of_a_missing_node_is_enoent_and_changes_nothing)
{
	struct tree *t = tree_create();
	mk(t, "/a", NULL, 2);
	const struct znode *before = wget(t, "/a");
	cr_assert_eq(tree_node_delete(t, "/a/none", 7, 3), -ENOENT);
	cr_assert_eq(wget(t, "/a"), before);
	cr_assert_eq(wget(t, "/a")->stat.pzxid, 2);
	cr_assert_eq(tree_node_count(tree_working(t)), 5);
	tree_destroy(t);
}

Test(tree, set_data_changes_data_mzxid_mtime_and_version_only)
{
	struct tree *t = tree_create();
	mk(t, "/a", "one", 2);
	mk(t, "/a/c", NULL, 3);
	struct zk_stat old = wget(t, "/a")->stat;
	set(t, "/a", "three", 9, 1);
	const struct znode *a = wget(t, "/a");
	cr_assert(data_is(a, "three"));
	cr_assert_eq(a->stat.mzxid, 9);
	cr_assert_eq(a->stat.mtime, 9000);
	cr_assert_eq(a->stat.version, 1);
	cr_assert_eq(a->stat.data_length, 5);
	cr_assert_eq(a->stat.czxid, old.czxid);
	cr_assert_eq(a->stat.ctime, old.ctime);
	cr_assert_eq(a->stat.pzxid, old.pzxid);
	cr_assert_eq(a->stat.cversion, old.cversion);
	cr_assert_eq(a->stat.aversion, old.aversion);
	cr_assert_eq(a->stat.num_children, 1);
	char buf[64];
	cr_assert_str_eq(children_of(a, buf, sizeof buf), "c");
	cr_assert_eq(tree_node_set_data(t, "/none", 5, "x", 1, 10, 10000, 1), -ENOENT);
	tree_destroy(t);
}

Test(tree, replace_data_changes_the_data_and_its_length_only)
{
	struct tree *t = tree_create();
	mk(t, "/q", "count=0,bytes=0", 2);
	struct zk_stat old = wget(t, "/q")->stat;
	uint64_t bytes = tree_working(t)->bytes_approx;
	tree_publish(t);
	const struct tree_version *v = tree_acquire(t);
	cr_assert_eq(tree_node_replace_data(t, "/q", 2, "count=12,bytes=345", 18), 0);
	const struct znode *q = wget(t, "/q");
	cr_assert(data_is(q, "count=12,bytes=345"));
	cr_assert_eq(q->stat.data_length, 18);
	/* No version, mzxid or mtime change. */
	cr_assert_eq(q->stat.version, old.version);
	cr_assert_eq(q->stat.mzxid, old.mzxid);
	cr_assert_eq(q->stat.mtime, old.mtime);
	cr_assert_eq(q->stat.czxid, old.czxid);
	cr_assert_eq(q->stat.pzxid, old.pzxid);
	cr_assert_eq(q->stat.cversion, old.cversion);
	cr_assert_eq(q->stat.aversion, old.aversion);
	cr_assert_eq(tree_working(t)->bytes_approx, bytes + 3);
	cr_assert(data_is(tree_lookup(v, "/q", 2), "count=0,bytes=0"), "a reader keeps the old");
	cr_assert_eq(tree_node_replace_data(t, "/none", 5, "x", 1), -ENOENT);
	tree_destroy(t);
}

Test(tree, set_acl_sets_the_acl_and_aversion_only)
{
	struct tree *t = tree_create();
	mk(t, "/a", "x", 2);
	struct zk_stat old = wget(t, "/a")->stat;
	cr_assert_eq(tree_node_set_acl(t, "/a", 2, &acl_read_unsafe, 1), 0);
	const struct znode *a = wget(t, "/a");
	cr_assert(acl_list_equal(a->acl->list, &acl_read_unsafe));
	cr_assert_eq(a->stat.aversion, 1);
	cr_assert_eq(a->stat.version, old.version);
	cr_assert_eq(a->stat.mzxid, old.mzxid);
	cr_assert_eq(a->stat.mtime, old.mtime);
	cr_assert(data_is(a, "x"));
	cr_assert_eq(tree_node_set_acl(t, "/none", 5, &acl_read_unsafe, 1), -ENOENT);
	tree_destroy(t);
}

Test(tree, null_and_empty_data_stay_distinct)
{
	struct tree *t = tree_create();
	cr_assert_eq(tree_node_create(t, "/null", 5, NULL, -1, &acl_open_unsafe, 0, 2, 0, 1), 0);
	cr_assert_eq(tree_node_create(t, "/null0", 6, NULL, 0, &acl_open_unsafe, 0, 3, 0, 2), 0);
	cr_assert_eq(tree_node_create(t, "/empty", 6, "", 0, &acl_open_unsafe, 0, 4, 0, 3), 0);
	cr_assert_null(wget(t, "/null")->data);
	cr_assert_null(wget(t, "/null0")->data);
	cr_assert_not_null(wget(t, "/empty")->data);
	cr_assert_eq(wget(t, "/null")->stat.data_length, 0);
	cr_assert_eq(wget(t, "/empty")->stat.data_length, 0);

	/* setData keeps the distinction both ways. */
	cr_assert_eq(tree_node_set_data(t, "/null", 5, "", 0, 5, 0, 1), 0);
	cr_assert_not_null(wget(t, "/null")->data);
	cr_assert_eq(tree_node_set_data(t, "/empty", 6, NULL, -1, 6, 0, 1), 0);
	cr_assert_null(wget(t, "/empty")->data);
	cr_assert_eq(wget(t, "/empty")->stat.data_length, 0);
	tree_destroy(t);
}

/* ---- ACL interning ---- */

Test(tree, equal_acls_share_one_interned_ref)
{
	struct acl_list *x1 = digest_acl("user:pw", ZPERM_ALL);
	struct acl_list *x2 = digest_acl("user:pw", ZPERM_ALL);
	struct acl_list *y = digest_acl("other:pw", ZPERM_ALL);
	struct tree *t = tree_create();
	cr_assert_eq(mk_acl(t, "/a", NULL, x1, 2), 0);
	cr_assert_eq(mk_acl(t, "/b", NULL, x2, 3), 0);
	cr_assert_eq(mk_acl(t, "/c", NULL, y, 4), 0);
	const struct acl_ref *ra = wget(t, "/a")->acl;
	cr_assert_eq(wget(t, "/b")->acl, ra);
	cr_assert_eq(ra->refs, 2);
	cr_assert_neq(wget(t, "/c")->acl, ra);
	cr_assert_eq(wget(t, "/c")->acl->refs, 1);
	/* The ref holds its own copy, in getACL's wire form. */
	cr_assert_neq(ra->list, x1);
	cr_assert(acl_list_equal(ra->list, x1));
	struct jute_out enc;
	jute_out_init(&enc, 64, 4096);
	acl_list_encode(&enc, x1);
	cr_assert_eq(ra->encoded_len, enc.len);
	cr_assert_eq(memcmp(ra->encoded, enc.buf, enc.len), 0);
	jute_out_free(&enc);
	/* Every world:anyone ALL node shares the root's ref. */
	mk(t, "/open", NULL, 5);
	cr_assert_eq(wget(t, "/open")->acl, wget(t, "/")->acl);
	cr_assert_eq(wget(t, "/zookeeper")->acl, wget(t, "/")->acl);
	tree_destroy(t);
	acl_list_free(x1);
	acl_list_free(x2);
	acl_list_free(y);
}

Test(tree, set_acl_drops_the_old_acl_once_unreferenced)
{
	struct acl_list *x = digest_acl("user:pw", ZPERM_ALL);
	struct tree *t = tree_create();
	cr_assert_eq(mk_acl(t, "/a", NULL, x, 2), 0);
	cr_assert_eq(mk_acl(t, "/b", NULL, x, 3), 0);
	const struct acl_ref *rx = wget(t, "/a")->acl;
	cr_assert_eq(rx->refs, 2);
	const struct acl_ref *open = wget(t, "/")->acl;
	uint32_t open_refs = open->refs;

	cr_assert_eq(tree_node_set_acl(t, "/a", 2, &acl_open_unsafe, 1), 0);
	cr_assert_eq(wget(t, "/a")->acl, open);
	cr_assert_eq(open->refs, open_refs + 1);
	cr_assert_eq(wget(t, "/b")->acl, rx);
	cr_assert_eq(rx->refs, 1);

	/* The last user goes: the interned ACL is dropped, so interning it
	 * again makes a fresh ref (the old one is retired, not yet freed, so
	 * its address cannot come back). */
	cr_assert_eq(tree_node_set_acl(t, "/b", 2, &acl_open_unsafe, 1), 0);
	cr_assert_eq(mk_acl(t, "/c", NULL, x, 4), 0);
	const struct acl_ref *rc = wget(t, "/c")->acl;
	cr_assert_neq(rc, rx);
	cr_assert_eq(rc->refs, 1);

	/* Setting the ACL a node already has keeps its ref. */
	cr_assert_eq(tree_node_set_acl(t, "/c", 2, x, 1), 0);
	cr_assert_eq(wget(t, "/c")->acl, rc);
	cr_assert_eq(rc->refs, 1);

	/* Deleting the last user drops it too. */
	rm(t, "/c", 5);
	cr_assert_eq(mk_acl(t, "/d", NULL, x, 6), 0);
	cr_assert_neq(wget(t, "/d")->acl, rc);
	cr_assert_eq(wget(t, "/d")->acl->refs, 1);
	tree_destroy(t);
	acl_list_free(x);
	cr_assert_not(leaks_found());
}

/* ---- versions and reclamation ---- */

Test(tree, acquired_version_keeps_old_contents_after_changes_and_publish)
{
	struct tree *t = tree_create();
	const struct tree_version *v0 = tree_acquire(t);
	mk(t, "/a", "one", 2);
	tree_set_zxid(t, 2);
	/* Unpublished changes are the writer's alone. */
	cr_assert_eq(tree_acquire(t), v0);
	cr_assert_null(get(v0, "/a"));
	cr_assert_not_null(wget(t, "/a"));
	uint64_t g1 = tree_publish(t);
	const struct tree_version *v1 = tree_acquire(t);
	cr_assert_neq(v1, v0);
	cr_assert_eq(v1->gen, g1);
	cr_assert_eq(g1, v0->gen + 1);
	cr_assert_eq(v1->zxid, 2);

	set(t, "/a", "two", 3, 1);
	mk(t, "/a/b", NULL, 4);
	rm(t, "/zookeeper/quota", 5);
	cr_assert_eq(tree_node_set_acl(t, "/a", 2, &acl_read_unsafe, 1), 0);
	tree_set_zxid(t, 6);
	uint64_t g2 = tree_publish(t);
	const struct tree_version *v2 = tree_acquire(t);
	cr_assert_eq(v2->gen, g2);
	cr_assert_eq(v2->zxid, 6);

	char buf[128];
	cr_assert_null(get(v0, "/a"));
	cr_assert_eq(tree_node_count(v0), 4);
	cr_assert_str_eq(children_of(get(v0, "/"), buf, sizeof buf), "zookeeper");
	cr_assert_eq(v0->zxid, 0);

	cr_assert(data_is(get(v1, "/a"), "one"));
	cr_assert_eq(get(v1, "/a")->stat.version, 0);
	cr_assert_eq(get(v1, "/a")->stat.num_children, 0);
	cr_assert(acl_list_equal(get(v1, "/a")->acl->list, &acl_open_unsafe));
	cr_assert_null(get(v1, "/a/b"));
	cr_assert_not_null(get(v1, "/zookeeper/quota"));
	cr_assert_str_eq(children_of(get(v1, "/zookeeper"), buf, sizeof buf), "config,quota");
	cr_assert_str_eq(children_of(get(v1, "/"), buf, sizeof buf), "a,zookeeper");

	cr_assert(data_is(get(v2, "/a"), "two"));
	cr_assert_eq(get(v2, "/a")->stat.version, 1);
	cr_assert_eq(get(v2, "/a")->stat.num_children, 1);
	cr_assert(acl_list_equal(get(v2, "/a")->acl->list, &acl_read_unsafe));
	cr_assert_not_null(get(v2, "/a/b"));
	cr_assert_null(get(v2, "/zookeeper/quota"));
	cr_assert_str_eq(children_of(get(v2, "/zookeeper"), buf, sizeof buf), "config");
	tree_destroy(t);
}

struct old_node {
	const char *path;
	const char *data; /* NULL: null data */
	const char *children;
	int32_t version;
};

/* Reads everything of v that the old_node table describes; under ASan any
 * byte of it already freed is a crash. */
static void read_all(const struct tree_version *v, const struct old_node *nodes, size_t n,
		     const char *digest_id)
{
	char buf[256];
	for (size_t i = 0; i < n; i++) {
		const struct znode *z = get(v, nodes[i].path);
		cr_assert_not_null(z, "%s", nodes[i].path);
		if (nodes[i].data)
			cr_assert(data_is(z, nodes[i].data), "%s", nodes[i].path);
		else
			cr_assert_null(z->data, "%s", nodes[i].path);
		cr_assert_eq(z->stat.version, nodes[i].version, "%s", nodes[i].path);
		cr_assert_str_eq(children_of(z, buf, sizeof buf), nodes[i].children, "%s",
				 nodes[i].path);
		const struct acl_list *l = z->acl->list;
		cr_assert_geq(l->count, 1);
		for (uint32_t k = 0; k < l->count; k++)
			cr_assert_gt(strlen(l->entries[k].id.scheme) + strlen(l->entries[k].id.id),
				     0);
		struct jute_out enc;
		jute_out_init(&enc, 64, 4096);
		acl_list_encode(&enc, l);
		cr_assert_eq(z->acl->encoded_len, enc.len);
		cr_assert_eq(memcmp(z->acl->encoded, enc.buf, enc.len), 0, "%s", nodes[i].path);
		jute_out_free(&enc);
	}
	const struct znode *b = get(v, "/b");
	cr_assert_str_eq(b->acl->list->entries[0].id.scheme, "digest");
	cr_assert_str_eq(b->acl->list->entries[0].id.id, digest_id);
}

Test(tree, reclaiming_older_generations_frees_nothing_an_old_version_reaches)
{
	struct acl_list *x = digest_acl("user:pw", ZPERM_ALL);
	struct tree *t = tree_create();
	int64_t z = 1;
	/* Some history, so that reclaim(g_old) has older garbage to free. */
	for (int i = 0; i < 50; i++) {
		mk(t, "/tmp", "t", ++z);
		rm(t, "/tmp", ++z);
		tree_publish(t);
	}
	mk(t, "/a", "a-data", ++z);
	cr_assert_eq(mk_acl(t, "/b", "b-data", x, ++z), 0);
	mk(t, "/c", NULL, ++z);
	mk(t, "/c/1", "c1", ++z);
	mk(t, "/c/2", "", ++z);
	set(t, "/a", "a-data-2", ++z, 1);
	set(t, "/", "root0", ++z, 1);
	uint64_t g_old = tree_publish(t);
	const struct tree_version *old = tree_acquire(t);
	cr_assert_eq(old->gen, g_old);
	const struct old_node seen[] = {
	    {"/", "root0", "a,b,c,zookeeper", 1},
	    {"/a", "a-data-2", "", 1},
	    {"/b", "b-data", "", 0},
	    {"/c", NULL, "1,2", 0},
	    {"/c/1", "c1", "", 0},
	    {"/c/2", "", "", 0},
	};
	const size_t n_seen = sizeof seen / sizeof seen[0];

	/* Replace or remove every one of those nodes, their data and the
	 * digest ACL, over two more publications. */
	set(t, "/a", "a-data-3", ++z, 2);
	rm(t, "/b", ++z);
	rm(t, "/c/1", ++z);
	tree_publish(t);
	set(t, "/c/2", "new", ++z, 1);
	rm(t, "/c/2", ++z);
	rm(t, "/c", ++z);
	cr_assert_eq(tree_node_set_acl(t, "/a", 2, &acl_read_unsafe, 1), 0);
	set(t, "/", "root", ++z, 2);
	for (int i = 0; i < 100; i++) {
		char p[16];
		snprintf(p, sizeof p, "/n%d", i);
		mk(t, p, p, ++z);
	}
	tree_publish(t);

	char id[128];
	cr_assert_eq(acl_digest("user:pw", id, sizeof id), 0);
	size_t pending = tree_bytes_retired_pending(t);
	tree_reclaim(t, g_old);
	size_t after_old = tree_bytes_retired_pending(t);
	cr_assert_lt(after_old, pending, "reclaim(g_old) freed the older history");
	read_all(old, seen, n_seen, id);
	cr_assert_null(get(old, "/n0"));

	/* Once the reader moved on, the rest goes. */
	tree_reclaim(t, UINT64_MAX);
	cr_assert_lt(tree_bytes_retired_pending(t), after_old);
	const struct tree_version *now = tree_acquire(t);
	cr_assert(data_is(get(now, "/"), "root"));
	cr_assert(data_is(get(now, "/a"), "a-data-3"));
	cr_assert_null(get(now, "/b"));
	cr_assert_null(get(now, "/c"));
	cr_assert(data_is(get(now, "/n99"), "/n99"));
	tree_destroy(t);
	acl_list_free(x);
	cr_assert_not(leaks_found());
}

Test(tree, a_reader_on_the_newest_version_survives_full_reclaim)
{
	struct tree *t = tree_create();
	mk(t, "/a", "one", 2);
	tree_publish(t);
	set(t, "/a", "two", 3, 1);
	mk(t, "/a/b", "bee", 4);
	uint64_t g = tree_publish(t);
	const struct tree_version *v = tree_acquire(t);
	/* Unpublished changes after v must not free what v reaches either. */
	set(t, "/a", "three", 5, 2);
	rm(t, "/a/b", 6);
	tree_reclaim(t, g);
	cr_assert(data_is(get(v, "/a"), "two"));
	cr_assert(data_is(get(v, "/a/b"), "bee"));
	char buf[64];
	cr_assert_str_eq(children_of(get(v, "/a"), buf, sizeof buf), "b");
	tree_destroy(t);
	cr_assert_not(leaks_found());
}

Test(tree, reclaim_all_then_destroy_gives_every_byte_back, .disabled = !HEAP_EXACT)
{
	struct acl_list *x = digest_acl("user:pw", ZPERM_ALL);
	struct acl_list *y = digest_acl("other:pw", ZPERM_READ);
	size_t before = heap_in_use();
	struct tree *t = tree_create();
	int64_t z = 1;
	char p[32];
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 50; i++) {
			snprintf(p, sizeof p, "/r%d", i);
			if (round == 0)
				cr_assert_eq(mk_acl(t, p, "d", i % 2 ? x : y, ++z), 0);
			else
				set(t, p, round % 2 ? NULL : "data", ++z, round);
			snprintf(p, sizeof p, "/r%d/k%d", i, round);
			mk(t, p, "kid", ++z);
			if (round % 3 == 2) {
				snprintf(p, sizeof p, "/r%d/k%d", i, round - 1);
				rm(t, p, ++z);
			}
		}
		snprintf(p, sizeof p, "/r%d", round);
		cr_assert_eq(tree_node_set_acl(t, p, strlen(p), round % 2 ? y : x, round), 0);
		tree_publish(t);
		if (round % 4 == 0)
			tree_reclaim(t, UINT64_MAX);
	}
	/* Leave unpublished changes behind as well. */
	mk(t, "/unpublished", "u", ++z);
	rm(t, "/r0/k0", ++z);
	tree_reclaim(t, UINT64_MAX);
	tree_destroy(t);
	size_t after = heap_in_use();
	cr_assert_eq(after, before, "heap in use: %zu bytes before, %zu after", before, after);
	acl_list_free(x);
	acl_list_free(y);
	cr_assert_not(leaks_found());
}

/* ---- a million children ---- */

#define MANY 1000000u

static size_t child_path(char *buf, unsigned i)
{
	return (size_t)snprintf(buf, 32, "/p/c%07u", i);
}

struct listing {
	uint8_t *seen;
	unsigned calls, dups, bad;
};

static int list_child(void *ctx, const char *name, size_t len)
{
	struct listing *l = ctx;
	l->calls++;
	char tmp[16];
	unsigned i;
	if (len != 8 || name[0] != 'c') {
		l->bad++;
		return 0;
	}
	memcpy(tmp, name + 1, 7);
	tmp[7] = '\0';
	if (sscanf(tmp, "%u", &i) != 1 || i >= MANY) {
		l->bad++;
		return 0;
	}
	if (l->seen[i]++)
		l->dups++;
	return 0;
}

/* CPU time, so that a loaded machine does not fail the bound. */
static double cpu_seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Publishing and reclaiming in batches, as the sequencer does, keeps the
 * retired garbage bounded. */
static void batch_end(struct tree *t, unsigned i)
{
	if (i % 4096 == 4095) {
		tree_publish(t);
		tree_reclaim(t, UINT64_MAX);
	}
}

/* The retired pointers and fresh heap bytes of one create + publish, and of
 * one delete + publish, under a parent that already holds MANY children: a
 * path copy is O(log n), a copied children set would be O(n). */
static void measure_one_change(struct tree *t)
{
	tree_publish(t);
	tree_reclaim(t, UINT64_MAX);
	size_t retired0 = tree_bytes_retired_pending(t);
	size_t heap0 = heap_in_use();
	int rc = tree_node_create(t, "/p/extra", 8, "x", 1, &acl_open_unsafe, 0, 3, 3000,
				  wget(t, "/p")->stat.cversion + 1);
	tree_publish(t);
	/* tree_bytes_retired_pending counts retired, not yet freed pointers,
	 * sizeof(void *) bytes each. */
	size_t retired = (tree_bytes_retired_pending(t) - retired0) / sizeof(void *);
	size_t heap = heap_in_use() - heap0;
	cr_assert_eq(rc, 0);
	cr_assert_lt(retired, 64, "one create retired %zu pointers", retired);
	if (HEAP_EXACT)
		cr_assert_lt(heap, 64 * 1024, "one create allocated %zu bytes", heap);

	tree_reclaim(t, UINT64_MAX);
	retired0 = tree_bytes_retired_pending(t);
	rc = tree_node_delete(t, "/p/extra", 8, 4);
	tree_publish(t);
	retired = (tree_bytes_retired_pending(t) - retired0) / sizeof(void *);
	cr_assert_eq(rc, 0);
	cr_assert_lt(retired, 64, "one delete retired %zu pointers", retired);
}

/* About 40 s of CPU under ASan on a 2-core machine, 25 s without: the time
 * goes to malloc and free of path copies. The bound only catches a per-op
 * cost that grows with the number of children. */
Test(tree, a_million_children_are_created_listed_once_each_and_deleted, .timeout = 290)
{
	struct timespec t0;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	struct tree *t = tree_create();
	mk(t, "/p", NULL, 2);
	char path[32];
	unsigned failed = 0;
	for (unsigned i = 0; i < MANY; i++) {
		size_t len = child_path(path, i);
		failed += tree_node_create(t, path, len, NULL, -1, &acl_open_unsafe, 0, 3, 3000,
					   (int32_t)i + 1) != 0;
		batch_end(t, i);
	}
	cr_assert_eq(failed, 0);
	const struct znode *p = wget(t, "/p");
	cr_assert_eq(p->stat.num_children, MANY);
	cr_assert_eq(p->stat.cversion, MANY);
	cr_assert_eq(tree_node_count(tree_working(t)), MANY + 5);

	measure_one_change(t);

	const struct tree_version *v = tree_acquire(t);
	struct listing l = {.seen = calloc(MANY, 1)};
	cr_assert_not_null(l.seen);
	cr_assert_eq(tree_foreach_child(get(v, "/p"), list_child, &l), 0);
	cr_assert_eq(l.calls, MANY);
	cr_assert_eq(l.bad, 0);
	cr_assert_eq(l.dups, 0);
	cr_assert_null(memchr(l.seen, 0, MANY), "a child was never listed");
	free(l.seen);

	for (unsigned i = 0; i < MANY; i++) {
		size_t len = child_path(path, i);
		failed += tree_node_delete(t, path, len, 4) != 0;
		batch_end(t, i);
	}
	cr_assert_eq(failed, 0);
	p = wget(t, "/p");
	cr_assert_eq(p->stat.num_children, 0);
	cr_assert_null(p->children.node);
	cr_assert_eq(p->stat.cversion, MANY + 1);
	cr_assert_eq(tree_node_count(tree_working(t)), 5);
	tree_reclaim(t, UINT64_MAX);
	tree_destroy(t);
	double s = cpu_seconds_since(&t0);
	cr_assert_lt(s, 200.0, "a million creates and deletes took %.1f s of CPU", s);
	cr_assert_not(leaks_found());
}

/* ---- the digest ---- */

/* One znode of a version, copied out so a test can restore it elsewhere,
 * possibly changed. acl points into the source tree, which must outlive
 * the copy. */
struct node_copy {
	char path[32];
	size_t len;
	struct zk_stat st;
	uint8_t data[16];
	int32_t data_len; /* -1: null */
	const struct acl_list *acl;
};

#define COPY_MAX 128

struct copies {
	struct node_copy n[COPY_MAX];
	size_t count;
};

static int copy_node(void *ctx, const void *key, size_t len, void *val)
{
	struct copies *c = ctx;
	const struct znode *z = val;
	cr_assert_lt(c->count, COPY_MAX);
	cr_assert_lt(len, sizeof c->n[0].path);
	cr_assert_leq(z->stat.data_length, (int32_t)sizeof c->n[0].data);
	struct node_copy *n = &c->n[c->count++];
	memcpy(n->path, key, len);
	n->path[len] = '\0';
	n->len = len;
	n->st = z->stat;
	n->data_len = z->data ? z->stat.data_length : -1;
	if (z->data)
		memcpy(n->data, z->data, (size_t)z->stat.data_length);
	n->acl = z->acl->list;
	return 0;
}

static size_t depth(const char *path)
{
	size_t d = 0;
	for (const char *p = path + 1; *p; p++)
		d += *p == '/';
	return path[1] ? d + 1 : 0;
}

/* Parents first (restore needs them), siblings in path order or reverse. */
static int depth_cmp(const struct node_copy *x, const struct node_copy *y)
{
	size_t dx = depth(x->path), dy = depth(y->path);
	return dx == dy ? 0 : dx < dy ? -1 : 1;
}

static int cmp_depth_then_path(const void *a, const void *b)
{
	const struct node_copy *x = a, *y = b;
	int c = depth_cmp(x, y);
	return c ? c : strcmp(x->path, y->path);
}

static int cmp_depth_then_path_desc(const void *a, const void *b)
{
	const struct node_copy *x = a, *y = b;
	int c = depth_cmp(x, y);
	return c ? c : strcmp(y->path, x->path);
}

/* A fresh tree holding exactly the copied nodes, restored in their order. */
static struct tree *restore_all(const struct copies *c)
{
	struct tree *t = tree_create();
	for (size_t i = 0; i < c->count; i++) {
		const struct node_copy *n = &c->n[i];
		cr_assert_eq(tree_node_restore(t, n->path, n->len, &n->st,
					       n->data_len < 0 ? NULL : n->data, n->data_len,
					       n->acl),
			     0, "restore %s", n->path);
	}
	tree_publish(t);
	return t;
}

static uint64_t restored_digest(const struct copies *c)
{
	struct tree *t = restore_all(c);
	cr_assert_eq(tree_node_count(tree_acquire(t)), c->count);
	uint64_t d = tree_digest(tree_acquire(t));
	tree_destroy(t);
	return d;
}

/* A tree with history: creates, setData, setACL, a delete, an ephemeral,
 * null and empty data. */
static struct tree *tree_with_history(const struct acl_list *acl)
{
	struct tree *t = tree_create();
	int64_t z = 1;
	mk(t, "/app", NULL, ++z);
	char path[32], data[16];
	for (int i = 0; i < 60; i++) {
		snprintf(path, sizeof path, "/app/n%02d", i);
		snprintf(data, sizeof data, "v%d", i);
		mk(t, path, data, ++z);
	}
	mk(t, "/app/cfg", "hello", ++z);
	mk(t, "/app/empty", "", ++z);
	mk(t, "/tmp", "t", ++z);
	set(t, "/app/cfg", "world", ++z, 1);
	set(t, "/app/n07", "seven", ++z, 1);
	cr_assert_eq(tree_node_set_acl(t, "/app/n09", 8, acl, 1), 0);
	const struct znode *app = wget(t, "/app");
	z++;
	cr_assert_eq(tree_node_create(t, "/app/eph", 8, "e", 1, &acl_open_unsafe, 0x1234, z,
				      z * 1000, app->stat.cversion + 1),
		     0);
	rm(t, "/tmp", ++z);
	tree_set_zxid(t, z);
	tree_publish(t);
	return t;
}

static struct node_copy *find_copy(struct copies *c, const char *path)
{
	for (size_t i = 0; i < c->count; i++)
		if (strcmp(c->n[i].path, path) == 0)
			return &c->n[i];
	cr_assert_fail("no copy of %s", path);
	return NULL;
}

Test(tree_digest, same_data_built_in_another_order_gives_the_same_digest)
{
	struct acl_list *x = digest_acl("user:pw", ZPERM_ALL);
	struct tree *a = tree_with_history(x);
	const struct tree_version *va = tree_acquire(a);
	uint64_t d = tree_digest(va);

	/* As a follower that took a snapshot has it: no history, and the
	 * nodes inserted in path order, then in reverse path order. */
	struct copies *c = calloc(1, sizeof *c);
	hamt_foreach(&va->nodes, copy_node, c);
	cr_assert_eq(c->count, tree_node_count(va));
	qsort(c->n, c->count, sizeof c->n[0], cmp_depth_then_path);
	cr_assert_eq(restored_digest(c), d);
	qsort(c->n, c->count, sizeof c->n[0], cmp_depth_then_path_desc);
	cr_assert_eq(restored_digest(c), d);

	/* And a second tree built by the same txns. */
	struct tree *b = tree_with_history(x);
	cr_assert_eq(tree_digest(tree_acquire(b)), d);
	free(c);
	tree_destroy(b);
	tree_destroy(a);
	acl_list_free(x);
}

/* Copies of a's nodes, parents first, checked to restore to a's digest
 * while unchanged (so a digest that differs later is the change's). */
static struct copies *copies_of(struct tree *a)
{
	struct copies *c = calloc(1, sizeof *c);
	cr_assert_not_null(c);
	hamt_foreach(&tree_acquire(a)->nodes, copy_node, c);
	qsort(c->n, c->count, sizeof c->n[0], cmp_depth_then_path);
	cr_assert_eq(restored_digest(c), tree_digest(tree_acquire(a)));
	return c;
}

Test(tree_digest, one_changed_data_byte_changes_the_digest)
{
	struct tree *a = tree_with_history(&acl_open_unsafe);
	uint64_t d = tree_digest(tree_acquire(a));
	struct copies *c = copies_of(a);
	struct node_copy *n = find_copy(c, "/app/cfg");
	cr_assert_eq(n->data_len, 5);
	n->data[4] ^= 1;
	cr_assert_neq(restored_digest(c), d);
	n->data[4] ^= 1;
	cr_assert_eq(restored_digest(c), d);
	free(c);
	tree_destroy(a);
}

Test(tree_digest, every_stat_field_is_in_the_digest)
{
	struct tree *a = tree_with_history(&acl_open_unsafe);
	uint64_t d = tree_digest(tree_acquire(a));
	struct copies *c = copies_of(a);
	struct zk_stat *st = &find_copy(c, "/app/n07")->st;
	const struct zk_stat orig = *st;
	/* data_length and num_children must agree with the node's data and
	 * children for a restore: they are covered by the tests below. */
	int64_t *wide[] = {&st->czxid, &st->mzxid, &st->pzxid,
			   &st->ctime, &st->mtime, &st->ephemeral_owner};
	int32_t *narrow[] = {&st->version, &st->cversion, &st->aversion};
	for (size_t i = 0; i < sizeof wide / sizeof *wide; i++) {
		(*wide[i])++;
		cr_assert_neq(restored_digest(c), d, "64-bit field %zu", i);
		*st = orig;
	}
	for (size_t i = 0; i < sizeof narrow / sizeof *narrow; i++) {
		(*narrow[i])++;
		cr_assert_neq(restored_digest(c), d, "32-bit field %zu", i);
		*st = orig;
	}
	cr_assert_eq(restored_digest(c), d);
	free(c);
	tree_destroy(a);
}

Test(tree_digest, a_version_change_by_set_data_changes_the_digest)
{
	struct tree *a = tree_with_history(&acl_open_unsafe);
	struct tree *b = tree_with_history(&acl_open_unsafe);
	uint64_t d = tree_digest(tree_acquire(a));
	cr_assert_eq(tree_digest(tree_acquire(b)), d);
	/* The same bytes again: only version, mzxid and mtime move. */
	int64_t z = tree_working(b)->zxid + 1;
	set(b, "/app/cfg", "world", z, 2);
	tree_publish(b);
	cr_assert_neq(tree_digest(tree_acquire(b)), d);
	tree_destroy(b);
	tree_destroy(a);
}

Test(tree_digest, data_length_children_null_data_acl_and_path_are_in_the_digest)
{
	struct tree *a = tree_with_history(&acl_open_unsafe);
	uint64_t d = tree_digest(tree_acquire(a));
	struct copies *c = copies_of(a);
	struct node_copy *n = find_copy(c, "/app/empty");
	cr_assert_eq(n->data_len, 0);

	n->data_len = -1; /* null instead of empty */
	cr_assert_neq(restored_digest(c), d);
	n->data_len = 1; /* one more byte */
	n->st.data_length = 1;
	n->data[0] = 0;
	cr_assert_neq(restored_digest(c), d);
	n->data_len = n->st.data_length = 0;

	n->acl = &acl_read_unsafe;
	cr_assert_neq(restored_digest(c), d);
	n->acl = &acl_open_unsafe;

	memcpy(n->path, "/app/emptz", n->len); /* the same node, renamed */
	cr_assert_neq(restored_digest(c), d);
	memcpy(n->path, "/app/empty", n->len);

	/* One node more (a restore leaves the parent's Stat alone). */
	cr_assert_lt(c->count, COPY_MAX);
	struct node_copy *extra = &c->n[c->count++];
	*extra = *n;
	memcpy(extra->path, "/app/extra", extra->len);
	cr_assert_neq(restored_digest(c), d);
	c->count--;

	cr_assert_eq(restored_digest(c), d);
	free(c);
	tree_destroy(a);
}

Test(tree_digest, an_acquired_version_keeps_its_digest_while_the_tree_changes)
{
	struct tree *t = tree_with_history(&acl_open_unsafe);
	const struct tree_version *v = tree_acquire(t);
	uint64_t d = tree_digest(v);
	set(t, "/app/n01", "changed", v->zxid + 1, 1);
	mk(t, "/new", "n", v->zxid + 2);
	tree_publish(t);
	cr_assert_eq(tree_digest(v), d);
	cr_assert_neq(tree_digest(tree_acquire(t)), d);
	tree_destroy(t);
}

/* The status counters a version carries: ephemerals (session-owned nodes
 * only, not containers or TTL nodes) and ZooKeeper's approximate data size
 * (path plus data bytes of every node but "/"). */
Test(tree_counters, follow_creates_sets_and_deletes)
{
	struct tree *t = tree_create();
	const struct tree_version *w = tree_working(t);
	/* /zookeeper, /zookeeper/quota, /zookeeper/config, no data. */
	cr_assert_eq(w->bytes_approx, 10 + 16 + 17);
	cr_assert_eq(w->ephemerals, 0);
	mk(t, "/a", "xyz", 2);
	cr_assert_eq(w->bytes_approx, 43 + 2 + 3);
	set(t, "/a", "12345", 3, 1);
	cr_assert_eq(w->bytes_approx, 43 + 2 + 5);
	set(t, "/a", NULL, 4, 2);
	cr_assert_eq(w->bytes_approx, 43 + 2);
	const struct znode *a = wget(t, "/a");
	cr_assert_eq(tree_node_create(t, "/a/e", 4, "e", 1, &acl_open_unsafe, 0x1234, 5, 5000,
				      a->stat.cversion + 1),
		     0);
	a = wget(t, "/a");
	cr_assert_eq(tree_node_create(t, "/a/c", 4, NULL, -1, &acl_open_unsafe, INT64_MIN, 6, 6000,
				      a->stat.cversion + 1),
		     0);
	a = wget(t, "/a");
	cr_assert_eq(tree_node_create(t, "/a/ttl", 6, NULL, -1, &acl_open_unsafe,
				      (int64_t)0xff00000000001000ull, 7, 7000,
				      a->stat.cversion + 1),
		     0);
	cr_assert_eq(w->ephemerals, 1);
	cr_assert_eq(w->bytes_approx, 43 + 2 + 4 + 1 + 4 + 6);
	tree_publish(t);
	const struct tree_version *v = tree_acquire(t);
	cr_assert_eq(v->ephemerals, 1, "a published version carries the counters");
	rm(t, "/a/e", 8);
	rm(t, "/a/c", 9);
	rm(t, "/a/ttl", 10);
	rm(t, "/a", 11);
	cr_assert_eq(w->ephemerals, 0);
	cr_assert_eq(w->bytes_approx, 43);
	cr_assert_eq(v->ephemerals, 1, "an older version keeps its own");
	tree_destroy(t);
}

Test(tree_counters, restore_counts_like_creates)
{
	struct tree *a = tree_with_history(&acl_open_unsafe);
	const struct tree_version *va = tree_acquire(a);
	struct copies *c = calloc(1, sizeof *c);
	hamt_foreach(&va->nodes, copy_node, c);
	qsort(c->n, c->count, sizeof c->n[0], cmp_depth_then_path);
	struct tree *b = restore_all(c);
	const struct tree_version *vb = tree_acquire(b);
	cr_assert_eq(va->ephemerals, 1);
	cr_assert_eq(vb->ephemerals, va->ephemerals);
	cr_assert_eq(vb->bytes_approx, va->bytes_approx);
	free(c);
	tree_destroy(a);
	tree_destroy(b);
}
