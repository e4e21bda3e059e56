/* ringkeeper-import's ZooKeeper side (tools/zk/): Adler32 and the session
 * password against known values, DataTree's replay rules for fuzzy
 * snapshots (create of an existing node, counters never moving back, delete
 * of a missing node, closeSession, failed multis, dead owners, quota
 * recount, ACLs a snapshot's cache lacks), and the readers on hand-built
 * files: a snapshot with its seals, a log with a torn tail, a flipped byte
 * in the middle, a gap in the zxids. Each file test works in its own
 * directory under /tmp. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The tool's sources are not a library tests/CMakeLists.txt links; they
 * are compiled into this test instead. */
#include "tools/zk/zkfiles.c"
#include "tools/zk/zktree.c"

/* ---- known values ---- */

Test(zk_import, adler32_matches_rfc1950)
{
	cr_assert_eq(zk_adler32(1, (const uint8_t *)"Wikipedia", 9), 0x11e60398u);
	uint32_t a = zk_adler32(1, (const uint8_t *)"Wiki", 4);
	cr_assert_eq(zk_adler32(a, (const uint8_t *)"pedia", 5), 0x11e60398u);
}

Test(zk_import, session_password_is_zookeepers)
{
	/* What ZooKeeper 3.8 gave kazoo for this session id. */
	static const uint8_t want[16] = {0xbf, 0x71, 0x6d, 0x05, 0x69, 0x5e, 0x98, 0x84,
					 0x5f, 0xa4, 0x61, 0xdb, 0x8e, 0x87, 0x8f, 0xfd};
	uint8_t got[16];
	zk_session_password(72058523690860545ll, got);
	cr_assert_arr_eq(got, want, 16);
}

/* ---- DataTree rules ---- */

static struct zk_stat_persisted stat_at(int64_t zxid, int32_t cversion, int64_t owner)
{
	return (struct zk_stat_persisted){.czxid = zxid,
					  .mzxid = zxid,
					  .pzxid = zxid,
					  .cversion = cversion,
					  .ephemeral_owner = owner};
}

/* "" and /a (cversion 2, pzxid 10) with child /a/x; ACL cache id 1. */
static struct zktree *small_tree(void)
{
	struct zktree *t = zktree_create();
	cr_assert_not_null(t);
	struct acl_list *open = NULL;
	cr_assert_eq(acl_list_new(acl_open_unsafe.entries, 1, &open), 0);
	cr_assert_eq(zktree_acl_define(t, 1, open), 0);
	const char *why = NULL;
	struct zk_stat_persisted st = stat_at(0, 1, 0);
	cr_assert_eq(zktree_load_node(t, "", 0, NULL, 0, -1, &st, &why), 0);
	st = stat_at(5, 2, 0);
	st.pzxid = 10;
	cr_assert_eq(zktree_load_node(t, "/a", 2, NULL, -1, 1, &st, &why), 0);
	st = stat_at(10, 0, 0);
	cr_assert_eq(zktree_load_node(t, "/a/x", 4, (const uint8_t *)"x", 1, 1, &st, &why), 0);
	zktree_set_zxid(t, 10);
	return t;
}

static struct zk_txn txn_of(int32_t type, int64_t zxid, const char *path)
{
	struct zk_txn txn = {.client_id = 0x77, .zxid = zxid, .time_ms = 1000 + zxid};
	txn.op.type = type;
	txn.op.path = path;
	txn.op.path_len = (int32_t)strlen(path);
	txn.op.data = (const uint8_t *)"d";
	txn.op.data_len = 1;
	txn.op.acl_null = true;
	return txn;
}

static const struct zknode *node(struct zktree *t, const char *path)
{
	return zktree_lookup(t, path, strlen(path));
}

Test(zk_import, create_of_a_node_the_snapshot_has_fixes_the_parent)
{
	struct zktree *t = small_tree();
	struct zk_txn txn = txn_of(ZOP_CREATE, 11, "/a/x");
	txn.op.parent_cversion = 3;
	cr_assert_eq(zktree_apply(t, &txn), ZNODEEXISTS);
	cr_assert_eq(node(t, "/a")->st.cversion, 3);
	cr_assert_eq(node(t, "/a")->st.pzxid, 11);
	cr_assert_eq(node(t, "/a/x")->acl, &acl_open_unsafe); /* the txn's ACL */
	cr_assert_eq(node(t, "/a/x")->st.czxid, 10);	      /* nothing else */
	/* create2 leaves the parent alone, as DataTree does. */
	txn = txn_of(ZOP_CREATE2, 12, "/a/x");
	txn.op.parent_cversion = 9;
	cr_assert_eq(zktree_apply(t, &txn), ZNODEEXISTS);
	cr_assert_eq(node(t, "/a")->st.cversion, 3);
	zktree_destroy(t);
}

Test(zk_import, replayed_create_never_moves_counters_back)
{
	struct zktree *t = small_tree();
	/* Created and deleted after the snapshot began: the snapshot's /a
	 * already counts it. */
	struct zk_txn txn = txn_of(ZOP_CREATE, 11, "/a/gone");
	txn.op.parent_cversion = 2;
	cr_assert_eq(zktree_apply(t, &txn), ZOK);
	cr_assert_eq(node(t, "/a")->st.cversion, 2);
	cr_assert_eq(node(t, "/a")->st.pzxid, 10);
	const struct zknode *n = node(t, "/a/gone");
	cr_assert_eq(n->st.czxid, 11);
	cr_assert_eq(n->st.ctime, 1011);
	cr_assert_eq(n->data_len, 1);
	cr_assert_eq(node(t, "/a")->n_kids, 2);
	/* A V0 create (no parentCVersion) counts one more. */
	txn = txn_of(ZOP_CREATE, 12, "/a/v0");
	txn.op.parent_cversion = -1;
	cr_assert_eq(zktree_apply(t, &txn), ZOK);
	cr_assert_eq(node(t, "/a")->st.cversion, 3);
	cr_assert_eq(node(t, "/a")->st.pzxid, 12);
	zktree_destroy(t);
}

Test(zk_import, delete_moves_pzxid_even_when_the_node_is_gone)
{
	struct zktree *t = small_tree();
	struct zk_txn txn = txn_of(ZOP_DELETE, 13, "/a/never");
	cr_assert_eq(zktree_apply(t, &txn), ZNONODE);
	cr_assert_eq(node(t, "/a")->st.pzxid, 13);
	txn = txn_of(ZOP_DELETE, 14, "/a/x");
	cr_assert_eq(zktree_apply(t, &txn), ZOK);
	cr_assert_null(node(t, "/a/x"));
	cr_assert_eq(node(t, "/a")->n_kids, 0);
	cr_assert_eq(node(t, "/a")->st.cversion, 2); /* deletes do not count */
	cr_assert_eq(zktree_zxid(t), 14);
	zktree_destroy(t);
}

Test(zk_import, set_data_and_acl_take_the_txns_versions)
{
	struct zktree *t = small_tree();
	struct zk_txn txn = txn_of(ZOP_SET_DATA, 11, "/a/x");
	txn.op.data = NULL;
	txn.op.data_len = -1;
	txn.op.version = 7;
	cr_assert_eq(zktree_apply(t, &txn), ZOK);
	const struct zknode *n = node(t, "/a/x");
	cr_assert_eq(n->data_len, -1);
	cr_assert_eq(n->st.version, 7);
	cr_assert_eq(n->st.mzxid, 11);
	cr_assert_eq(n->st.mtime, 1011);
	txn = txn_of(ZOP_SET_ACL, 12, "/a/x");
	txn.op.acl_null = false;
	cr_assert_eq(acl_list_new(acl_read_unsafe.entries, 1, &txn.op.acl), 0);
	txn.op.version = 4;
	cr_assert_eq(zktree_apply(t, &txn), ZOK);
	cr_assert(acl_list_equal(node(t, "/a/x")->acl, &acl_read_unsafe));
	cr_assert_eq(node(t, "/a/x")->st.aversion, 4);
	zktree_destroy(t);
}

static void apply_ok(struct zktree *t, struct zk_txn txn)
{
	cr_assert_eq(zktree_apply(t, &txn), ZOK);
}

Test(zk_import, close_session_takes_its_ephemerals)
{
	struct zktree *t = small_tree();
	struct zk_txn txn = txn_of(ZOP_CREATE_SESSION, 11, "/");
	txn.op.timeout_ms = 5000;
	apply_ok(t, txn);
	txn = txn_of(ZOP_CREATE, 12, "/a/e1");
	txn.op.ephemeral = true;
	txn.op.parent_cversion = 3;
	apply_ok(t, txn);
	txn = txn_of(ZOP_CREATE, 13, "/a/e2");
	txn.op.ephemeral = true;
	txn.op.parent_cversion = 4;
	apply_ok(t, txn);
	cr_assert_eq(node(t, "/a/e1")->st.ephemeral_owner, 0x77);
	cr_assert_eq(zktree_session_count(t), 1);
	/* CloseSessionTxn naming e1 only; e2 goes because the session owns it. */
	struct jute_out paths;
	jute_out_init(&paths, 64, 1024);
	jute_put_cstr(&paths, "/a/e1");
	txn = txn_of(ZOP_CLOSE_SESSION, 14, "/");
	txn.op.paths = paths.buf;
	txn.op.paths_len = paths.len;
	txn.op.n_paths = 1;
	apply_ok(t, txn);
	jute_out_free(&paths);
	cr_assert_null(node(t, "/a/e1"));
	cr_assert_null(node(t, "/a/e2"));
	cr_assert_eq(node(t, "/a")->st.pzxid, 14);
	cr_assert_eq(zktree_session_count(t), 0);
	zktree_destroy(t);
}

Test(zk_import, failed_multi_changes_nothing)
{
	struct zktree *t = small_tree();
	struct zk_txn txn = txn_of(ZOP_MULTI, 11, "/");
	txn.n_multi = 2;
	txn.multi = calloc(2, sizeof *txn.multi);
	txn.multi[0] = txn_of(ZOP_DELETE, 11, "/a/x").op;
	txn.multi[1] = (struct zk_txn_op){.type = ZOP_ERROR, .err = ZBADVERSION};
	cr_assert_eq(zktree_apply(t, &txn), ZBADVERSION);
	cr_assert_not_null(node(t, "/a/x"));
	cr_assert_eq(node(t, "/a")->st.pzxid, 10);
	cr_assert_eq(zktree_zxid(t), 11);
	txn = txn_of(ZOP_MULTI, 12, "/");
	txn.n_multi = 2;
	txn.multi = calloc(2, sizeof *txn.multi);
	txn.multi[0] = txn_of(ZOP_DELETE, 12, "/a/x").op;
	txn.multi[1] = txn_of(ZOP_CREATE, 12, "/a/y").op;
	txn.multi[1].parent_cversion = 3;
	cr_assert_eq(zktree_apply(t, &txn), ZOK);
	cr_assert_null(node(t, "/a/x"));
	cr_assert_eq(node(t, "/a/y")->st.czxid, 12);
	zktree_destroy(t);
}

Test(zk_import, ephemerals_of_ended_sessions_go_at_the_last_zxid)
{
	struct zktree *t = small_tree();
	const char *why;
	struct zk_stat_persisted st = stat_at(8, 0, 0x99);
	cr_assert_eq(zktree_load_node(t, "/a/orphan", 9, NULL, 0, 1, &st, &why), 0);
	st = stat_at(8, 0, INT64_MIN); /* a container is no session's */
	cr_assert_eq(zktree_load_node(t, "/box", 4, NULL, 0, 1, &st, &why), 0);
	zktree_set_zxid(t, 20);
	cr_assert_eq(zktree_kill_dead_owners(t), 1);
	cr_assert_null(node(t, "/a/orphan"));
	cr_assert_not_null(node(t, "/box"));
	cr_assert_eq(node(t, "/a")->st.pzxid, 20);
	zktree_destroy(t);
}

Test(zk_import, quota_stats_are_recounted)
{
	struct zktree *t = small_tree();
	const char *why;
	struct zk_stat_persisted st = stat_at(0, 0, 0);
	const char *paths[] = {"/zookeeper", "/zookeeper/quota", "/zookeeper/quota/a",
			       "/zookeeper/quota/a/zookeeper_limits",
			       "/zookeeper/quota/a/zookeeper_stats"};
	for (size_t i = 0; i < 5; i++)
		cr_assert_eq(zktree_load_node(t, paths[i], strlen(paths[i]),
					      (const uint8_t *)"count=0,bytes=0", 15, 1, &st, &why),
			     0);
	cr_assert_eq(zktree_recount_quotas(t), 1);
	const struct zknode *n = node(t, "/zookeeper/quota/a/zookeeper_stats");
	cr_assert_eq(n->data_len, 15); /* /a (null data) and /a/x ("x") */
	cr_assert_arr_eq(n->data, "count=2,bytes=1", 15);
	zktree_destroy(t);
}

Test(zk_import, acl_the_cache_lacks_is_refused_unless_a_txn_sets_it)
{
	struct zktree *t = small_tree();
	const char *why;
	struct zk_stat_persisted st = stat_at(11, 0, 0);
	cr_assert_eq(zktree_load_node(t, "/a/fuzzy", 8, NULL, 0, 42, &st, &why), 0);
	const struct zknode *bad;
	cr_assert_eq(zktree_check_acls(t, &bad), -EINVAL);
	cr_assert_str_eq(bad->path, "/a/fuzzy");
	cr_assert_eq(bad->acl_id, 42);
	struct zk_txn txn = txn_of(ZOP_CREATE2, 11, "/a/fuzzy");
	cr_assert_eq(zktree_apply(t, &txn), ZNODEEXISTS);
	cr_assert_eq(zktree_check_acls(t, &bad), 0);
	zktree_destroy(t);
}

Test(zk_import, system_nodes_a_snapshot_lacks_are_added)
{
	struct zktree *t = small_tree();
	cr_assert_eq(zktree_add_system_nodes(t), 3);
	cr_assert_eq(node(t, "/zookeeper/config")->st.aversion, -1);
	cr_assert_eq(node(t, "/zookeeper/config")->acl, &acl_read_unsafe);
	cr_assert_eq(node(t, "/zookeeper/quota")->data_len, 0);
	cr_assert_eq(zktree_add_system_nodes(t), 0);
	zktree_destroy(t);
}

/* ---- files ---- */

static char base[256]; /* mkdtemp'd; removed after each test */

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(base, sizeof base, "%s/rk_zkimport_XXXXXX", tmp && *tmp ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(base));
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void teardown(void)
{
	nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(zk_import_files, .init = setup, .fini = teardown, .timeout = 30);

static void write_file(const char *name, const void *p, size_t n)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", base, name);
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(p, 1, n, f), n);
	fclose(f);
}

static void put_seal(struct jute_out *o)
{
	jute_put_long(o, zk_adler32(1, o->buf, o->len));
	jute_put_cstr(o, "/");
}

static void put_node(struct jute_out *o, const char *path, const char *data, int64_t acl,
		     int64_t zxid)
{
	jute_put_cstr(o, path);
	jute_put_buffer(o, data, data ? (int32_t)strlen(data) : -1);
	jute_put_long(o, acl);
	jute_put_long(o, zxid); /* czxid */
	jute_put_long(o, zxid); /* mzxid */
	jute_put_long(o, 100);	/* ctime */
	jute_put_long(o, 200);	/* mtime */
	jute_put_int(o, 1);	/* version */
	jute_put_int(o, 0);	/* cversion */
	jute_put_int(o, 0);	/* aversion */
	jute_put_long(o, 0);	/* ephemeralOwner */
	jute_put_long(o, zxid); /* pzxid */
}

/* A 3.8 snapshot of zxid 5: one session, one ACL, a digest. */
static void build_snapshot(struct jute_out *o)
{
	jute_out_init(o, 4096, 1 << 20);
	jute_put_int(o, (int32_t)ZK_SNAP_MAGIC);
	jute_put_int(o, ZK_FILE_VERSION);
	jute_put_long(o, -1);
	jute_put_int(o, 1); /* sessions */
	jute_put_long(o, 0x1000001);
	jute_put_int(o, 6000);
	jute_put_int(o, 1); /* ACL cache */
	jute_put_long(o, 1);
	acl_list_encode(o, &acl_open_unsafe);
	put_node(o, "", "", -1, 0);
	put_node(o, "/zookeeper", "", -1, 0);
	put_node(o, "/a", "hello", 1, 5);
	put_node(o, "/a/n", NULL, 1, 4);
	jute_put_cstr(o, "/");
	put_seal(o);
	jute_put_long(o, 5); /* digest: zxid, version 2, value */
	jute_put_int(o, 2);
	jute_put_long(o, 0x1234);
	put_seal(o);
}

static struct zk_file file_of(const char *name, enum zk_file_kind kind, int64_t zxid)
{
	struct zk_file f = {.kind = kind, .zxid = zxid};
	snprintf(f.path, sizeof f.path, "%s/%s", base, name);
	f.name = strrchr(f.path, '/') + 1;
	return f;
}

Test(zk_import_files, snapshot_loads_with_its_seals)
{
	struct jute_out o;
	build_snapshot(&o);
	write_file("snapshot.5", o.buf, o.len);
	struct zk_file f = file_of("snapshot.5", ZK_FILE_SNAPSHOT, 5);
	struct zktree *t = zktree_create();
	struct zk_fault fault;
	cr_assert_eq(zksnap_load(&f, t, &fault), 0, "%s", fault.what);
	cr_assert_eq(zktree_node_count(t), 4);
	cr_assert_eq(zktree_session_count(t), 1);
	cr_assert_eq(zktree_zxid(t), 5);
	const struct zknode *n = node(t, "/a/n");
	cr_assert_eq(n->data_len, -1);
	cr_assert_eq(n->acl, zktree_lookup(t, "/a", 2)->acl);
	cr_assert_eq(node(t, "/a")->n_kids, 1);
	zktree_destroy(t);

	/* A flipped data byte: only the seal can tell, and says where it is. */
	size_t at = o.len / 2;
	o.buf[at] ^= 0x20;
	write_file("snapshot.5", o.buf, o.len);
	t = zktree_create();
	cr_assert_eq(zksnap_load(&f, t, &fault), -EBADMSG);
	cr_assert(strstr(fault.what, "checksum mismatch"), "%s", fault.what);
	cr_assert_str_eq(fault.file, f.path);
	cr_assert_gt(fault.off, at);
	zktree_destroy(t);
	jute_out_free(&o);
}

Test(zk_import_files, snapshot_node_before_its_parent_is_refused)
{
	struct jute_out o;
	jute_out_init(&o, 4096, 1 << 20);
	jute_put_int(&o, (int32_t)ZK_SNAP_MAGIC);
	jute_put_int(&o, ZK_FILE_VERSION);
	jute_put_long(&o, -1);
	jute_put_int(&o, 0);
	jute_put_int(&o, 0);
	put_node(&o, "", "", -1, 0);
	size_t at = o.len;
	put_node(&o, "/a/b", "", -1, 0);
	jute_put_cstr(&o, "/");
	put_seal(&o);
	write_file("snapshot.0", o.buf, o.len);
	struct zk_file f = file_of("snapshot.0", ZK_FILE_SNAPSHOT, 0);
	struct zktree *t = zktree_create();
	struct zk_fault fault;
	cr_assert_eq(zksnap_load(&f, t, &fault), -EBADMSG);
	cr_assert_eq(fault.off, at);
	cr_assert(strstr(fault.what, "before its parent"), "%s", fault.what);
	zktree_destroy(t);
	jute_out_free(&o);
}

/* One log record: the frame around TxnHeader and a create of path with
 * parentCVersion cv, and a TxnDigest, as 3.8 writes it. */
static size_t put_create_record(struct jute_out *o, int64_t zxid, const char *path, int32_t cv)
{
	struct jute_out txn;
	jute_out_init(&txn, 256, 4096);
	jute_put_long(&txn, 0x1000001); /* clientId */
	jute_put_int(&txn, 1);		/* cxid */
	jute_put_long(&txn, zxid);
	jute_put_long(&txn, 300 + zxid); /* time */
	jute_put_int(&txn, ZOP_CREATE);
	jute_put_cstr(&txn, path);
	jute_put_buffer(&txn, "v", 1);
	acl_list_encode(&txn, &acl_open_unsafe);
	jute_put_bool(&txn, false);
	jute_put_int(&txn, cv);
	jute_put_int(&txn, 2); /* TxnDigest */
	jute_put_long(&txn, 0x5678);
	size_t at = o->len;
	jute_put_long(o, zk_adler32(1, txn.buf, txn.len));
	jute_put_buffer(o, txn.buf, (int32_t)txn.len);
	uint8_t *b = jute_reserve(o, 1);
	*b = 'B';
	jute_out_free(&txn);
	return at;
}

/* log.6 with creates of /a/c6.. /a/c(5+n) after the snapshot above, then
 * 4 KiB of preallocated zeros. at[i] is record i's offset. */
static void build_log(struct jute_out *o, int n, size_t *at)
{
	jute_out_init(o, 8192, 1 << 20);
	jute_put_int(o, (int32_t)ZK_LOG_MAGIC);
	jute_put_int(o, ZK_FILE_VERSION);
	jute_put_long(o, 0);
	for (int i = 0; i < n; i++) {
		char path[32];
		snprintf(path, sizeof path, "/a/c%d", 6 + i);
		at[i] = put_create_record(o, 6 + i, path, 1 + i);
	}
	memset(jute_reserve(o, 4096), 0, 4096);
}

static int replay(struct zklog_result *res, struct zk_fault *fault, struct zktree **out)
{
	struct jute_out snap;
	build_snapshot(&snap);
	write_file("snapshot.5", snap.buf, snap.len);
	jute_out_free(&snap);
	struct zk_listing l;
	char err[256];
	cr_assert_eq(zkfiles_list(base, base, &l, err, sizeof err), 0, "%s", err);
	cr_assert_eq(l.n_snaps, 1);
	struct zktree *t = zktree_create();
	cr_assert_eq(zksnap_load(&l.snaps[0], t, fault), 0, "%s", fault->what);
	int rc = zklog_replay(&l, 5, t, res, fault);
	zkfiles_listing_free(&l);
	*out = t;
	return rc;
}

Test(zk_import_files, log_replays_after_the_snapshot)
{
	struct jute_out o;
	size_t at[4];
	build_log(&o, 4, at);
	write_file("log.6", o.buf, o.len);
	struct zklog_result res;
	struct zk_fault fault;
	struct zktree *t;
	cr_assert_eq(replay(&res, &fault, &t), 0, "%s", fault.what);
	cr_assert_eq(res.applied, 4);
	cr_assert_eq(res.first_applied, 6);
	cr_assert_not(res.torn);
	cr_assert_eq(zktree_zxid(t), 9);
	cr_assert_eq(node(t, "/a/c9")->st.ctime, 309);
	cr_assert_eq(node(t, "/a")->st.cversion, 4);
	zktree_destroy(t);
	jute_out_free(&o);
}

Test(zk_import_files, torn_last_record_is_the_end)
{
	struct jute_out o;
	size_t at[4];
	build_log(&o, 4, at);
	memset(o.buf + at[3] + 20, 0, o.len - at[3] - 20); /* the write cut short */
	write_file("log.6", o.buf, o.len);
	struct zklog_result res;
	struct zk_fault fault;
	struct zktree *t;
	cr_assert_eq(replay(&res, &fault, &t), 0, "%s", fault.what);
	cr_assert(res.torn);
	cr_assert_eq(res.torn_off, at[3]);
	cr_assert_eq(zktree_zxid(t), 8);
	cr_assert_null(node(t, "/a/c9"));
	zktree_destroy(t);
	jute_out_free(&o);
}

Test(zk_import_files, flipped_byte_in_the_middle_is_refused)
{
	struct jute_out o;
	size_t at[4];
	build_log(&o, 4, at);
	o.buf[at[1] + 40] ^= 1;
	write_file("log.6", o.buf, o.len);
	struct zklog_result res;
	struct zk_fault fault;
	struct zktree *t;
	cr_assert_eq(replay(&res, &fault, &t), -EBADMSG);
	cr_assert_eq(fault.off, at[1]);
	cr_assert(strstr(fault.file, "/log.6"));
	cr_assert(strstr(fault.what, "checksum mismatch"), "%s", fault.what);
	zktree_destroy(t);
	jute_out_free(&o);
}

Test(zk_import_files, missing_txn_is_refused)
{
	struct jute_out o;
	jute_out_init(&o, 8192, 1 << 20);
	jute_put_int(&o, (int32_t)ZK_LOG_MAGIC);
	jute_put_int(&o, ZK_FILE_VERSION);
	jute_put_long(&o, 0);
	put_create_record(&o, 6, "/a/c6", 1);
	size_t at = put_create_record(&o, 8, "/a/c8", 2);
	write_file("log.6", o.buf, o.len);
	struct zklog_result res;
	struct zk_fault fault;
	struct zktree *t;
	cr_assert_eq(replay(&res, &fault, &t), -EBADMSG);
	cr_assert_eq(fault.off, at);
	cr_assert(strstr(fault.what, "missing"), "%s", fault.what);
	zktree_destroy(t);
	jute_out_free(&o);
}
