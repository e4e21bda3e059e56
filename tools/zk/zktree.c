/* ZooKeeper's DataTree for ringkeeper-import: the nodes, ACLs, sessions and
 * ephemerals of a ZooKeeper snapshot, and DataTree.processTxn's effect of
 * each txn of the log after it. See zktree.h for the invariants. */
#include "tools/zk/zktree.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hamt.h"
#include "core/jute.h"

#define ZK_QUOTA_ROOT  "/zookeeper/quota"
#define ZK_QUOTA_LIMIT "zookeeper_limits"
#define ZK_QUOTA_STATS "zookeeper_stats"

struct zkowner {
	int64_t id;
	struct zknode **nodes;
	uint32_t n, cap;
};

struct zksession {
	int64_t id;
	int32_t timeout_ms;
};

struct zktree {
	struct zknode *root;
	struct hamt_root nodes;	   /* path (not the root) -> struct zknode */
	struct hamt_root sessions; /* id -> struct zksession */
	struct hamt_root owners;   /* session-owner id -> struct zkowner */
	struct hamt_root acl_ids;  /* snapshot ACL cache id -> struct acl_list */
	struct hamt_root acl_enc;  /* encoded vector<ACL> -> struct acl_list (txn ACLs) */
	struct acl_list **lists;   /* every list the tree owns */
	size_t n_lists, lists_cap;
	int64_t zxid;
	struct hamt_gc gc;
};

static void free_now(void *ctx, void *p)
{
	free(p);
}

static uint64_t id_hash(int64_t id)
{
	return hamt_hash(&id, sizeof id);
}

bool zktree_owner_is_session(int64_t owner)
{
	return owner != 0 && owner != INT64_MIN &&
	       ((uint64_t)owner & 0xff00000000000000ull) != 0xff00000000000000ull;
}

struct zktree *zktree_create(void)
{
	struct zktree *t = calloc(1, sizeof *t);
	if (t)
		t->gc = (struct hamt_gc){.retire = free_now, .ctx = NULL};
	return t;
}

static void node_free(struct zknode *n)
{
	free(n->path);
	free(n->data);
	free(n->kids);
	free(n);
}

static int free_node_cb(void *ctx, const void *key, size_t len, void *val)
{
	node_free(val);
	return 0;
}

static void owner_free(struct zkowner *o)
{
	free(o->nodes);
	free(o);
}

static int free_owner_cb(void *ctx, const void *key, size_t len, void *val)
{
	owner_free(val);
	return 0;
}

static int free_cb(void *ctx, const void *key, size_t len, void *val)
{
	free(val);
	return 0;
}

void zktree_destroy(struct zktree *t)
{
	if (!t)
		return;
	hamt_foreach(&t->nodes, free_node_cb, NULL);
	hamt_foreach(&t->sessions, free_cb, NULL);
	hamt_foreach(&t->owners, free_owner_cb, NULL);
	hamt_destroy(&t->nodes);
	hamt_destroy(&t->sessions);
	hamt_destroy(&t->owners);
	hamt_destroy(&t->acl_ids);
	hamt_destroy(&t->acl_enc);
	for (size_t i = 0; i < t->n_lists; i++)
		acl_list_free(t->lists[i]);
	free(t->lists);
	if (t->root)
		node_free(t->root);
	free(t);
}

/* ---- lookups ---- */

static struct zknode *lookup(const struct zktree *t, const char *path, size_t len)
{
	/* ZooKeeper keys the root as "" and also as "/". */
	if (len == 0 || (len == 1 && path[0] == '/'))
		return t->root;
	void *v;
	return hamt_get(&t->nodes, path, len, hamt_hash(path, len), &v) ? v : NULL;
}

const struct zknode *zktree_lookup(const struct zktree *t, const char *path, size_t len)
{
	return lookup(t, path, len);
}

const struct zknode *zktree_root(const struct zktree *t)
{
	return t->root;
}

size_t zktree_node_count(const struct zktree *t)
{
	return t->nodes.count + (t->root != NULL);
}

int64_t zktree_zxid(const struct zktree *t)
{
	return t->zxid;
}

void zktree_set_zxid(struct zktree *t, int64_t zxid)
{
	t->zxid = zxid;
}

/* Where the last '/' is: the parent is path[0, slash), "" for the root. */
static size_t last_slash(const char *path, size_t len)
{
	size_t i = len;
	while (i > 0 && path[i - 1] != '/')
		i--;
	return i ? i - 1 : 0;
}

/* ---- ACLs ---- */

static int own_list(struct zktree *t, struct acl_list *list)
{
	if (t->n_lists == t->lists_cap) {
		size_t cap = t->lists_cap ? t->lists_cap * 2 : 16;
		struct acl_list **v = realloc(t->lists, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		t->lists = v;
		t->lists_cap = cap;
	}
	t->lists[t->n_lists++] = list;
	return 0;
}

int zktree_acl_define(struct zktree *t, int64_t id, struct acl_list *list)
{
	void *old;
	if (hamt_get(&t->acl_ids, &id, sizeof id, id_hash(id), &old)) {
		acl_list_free(list);
		return -EEXIST;
	}
	if (own_list(t, list)) {
		acl_list_free(list);
		return -ENOMEM;
	}
	return hamt_put(&t->acl_ids, &t->acl_ids, &id, sizeof id, id_hash(id), list, NULL, &t->gc);
}

/* One shared list per distinct ACL of the txns, as ZooKeeper's cache keeps
 * one id per distinct List<ACL>. Takes list; NULL with acl_null is
 * world:anyone ALL (convertAcls(null)). */
static const struct acl_list *acl_intern(struct zktree *t, struct acl_list *list, bool acl_null)
{
	if (acl_null || !list) {
		acl_list_free(list);
		return &acl_open_unsafe;
	}
	struct jute_out enc;
	jute_out_init(&enc, 128, SIZE_MAX / 2);
	acl_list_encode(&enc, list);
	if (enc.err) {
		jute_out_free(&enc);
		acl_list_free(list);
		return NULL;
	}
	uint64_t h = hamt_hash(enc.buf, enc.len);
	void *found;
	if (hamt_get(&t->acl_enc, enc.buf, enc.len, h, &found)) {
		jute_out_free(&enc);
		acl_list_free(list);
		return found;
	}
	if (own_list(t, list)) {
		jute_out_free(&enc);
		acl_list_free(list);
		return NULL;
	}
	/* From here the list is the tree's (t->lists), shared or not. */
	int rc = hamt_put(&t->acl_enc, &t->acl_enc, enc.buf, enc.len, h, list, NULL, &t->gc);
	jute_out_free(&enc);
	return rc ? NULL : list;
}

/* ---- nodes ---- */

static int kid_add(struct zknode *parent, struct zknode *n)
{
	if (parent->n_kids == parent->kids_cap) {
		uint32_t cap = parent->kids_cap ? parent->kids_cap * 2 : 4;
		struct zknode **v = realloc(parent->kids, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		parent->kids = v;
		parent->kids_cap = cap;
	}
	n->parent = parent;
	n->kid_index = parent->n_kids;
	parent->kids[parent->n_kids++] = n;
	return 0;
}

static void kid_del(struct zknode *n)
{
	struct zknode *p = n->parent;
	struct zknode *last = p->kids[--p->n_kids];
	p->kids[n->kid_index] = last;
	last->kid_index = n->kid_index;
	n->parent = NULL;
}

static int owner_add(struct zktree *t, struct zknode *n)
{
	int64_t id = n->st.ephemeral_owner;
	if (!zktree_owner_is_session(id))
		return 0;
	void *v;
	struct zkowner *o;
	if (hamt_get(&t->owners, &id, sizeof id, id_hash(id), &v)) {
		o = v;
	} else {
		o = calloc(1, sizeof *o);
		if (!o || hamt_put(&t->owners, &t->owners, &id, sizeof id, id_hash(id), o, NULL,
				   &t->gc)) {
			free(o);
			return -ENOMEM;
		}
		o->id = id;
	}
	if (o->n == o->cap) {
		uint32_t cap = o->cap ? o->cap * 2 : 4;
		struct zknode **nv = realloc(o->nodes, cap * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		o->nodes = nv;
		o->cap = cap;
	}
	n->eph_index = o->n;
	o->nodes[o->n++] = n;
	return 0;
}

static void owner_del(struct zktree *t, struct zknode *n)
{
	int64_t id = n->st.ephemeral_owner;
	void *v;
	if (!zktree_owner_is_session(id) || !hamt_get(&t->owners, &id, sizeof id, id_hash(id), &v))
		return;
	struct zkowner *o = v;
	struct zknode *last = o->nodes[--o->n];
	o->nodes[n->eph_index] = last;
	last->eph_index = n->eph_index;
	if (o->n == 0) {
		hamt_del(&t->owners, &t->owners, &id, sizeof id, id_hash(id), NULL, &t->gc);
		owner_free(o);
	}
}

static struct zknode *node_new(const char *path, size_t len, const uint8_t *data, int32_t data_len)
{
	struct zknode *n = calloc(1, sizeof *n);
	if (!n)
		return NULL;
	n->path = malloc(len + 1);
	n->data = data_len > 0 ? malloc((size_t)data_len) : NULL;
	if (!n->path || (data_len > 0 && !n->data)) {
		node_free(n);
		return NULL;
	}
	memcpy(n->path, path, len);
	n->path[len] = '\0';
	n->path_len = (uint32_t)len;
	n->data_len = data_len < 0 ? -1 : data_len;
	if (data_len > 0)
		memcpy(n->data, data, (size_t)data_len);
	return n;
}

/* Links n (not the root) under parent, into the path map and its owner's
 * ephemerals. On -ENOMEM n is freed. */
static int node_link(struct zktree *t, struct zknode *parent, struct zknode *n)
{
	uint64_t h = hamt_hash(n->path, n->path_len);
	if (kid_add(parent, n)) {
		node_free(n);
		return -ENOMEM;
	}
	if (hamt_put(&t->nodes, &t->nodes, n->path, n->path_len, h, n, NULL, &t->gc)) {
		kid_del(n);
		node_free(n);
		return -ENOMEM;
	}
	if (owner_add(t, n)) {
		hamt_del(&t->nodes, &t->nodes, n->path, n->path_len, h, NULL, &t->gc);
		kid_del(n);
		node_free(n);
		return -ENOMEM;
	}
	return 0;
}

/* Unlinks n and its whole subtree (a delete normally finds no children;
 * see node_delete) and frees them. */
static void node_drop(struct zktree *t, struct zknode *n)
{
	while (n->n_kids)
		node_drop(t, n->kids[n->n_kids - 1]);
	kid_del(n);
	owner_del(t, n);
	hamt_del(&t->nodes, &t->nodes, n->path, n->path_len, hamt_hash(n->path, n->path_len), NULL,
		 &t->gc);
	node_free(n);
}

int zktree_load_node(struct zktree *t, const char *path, size_t len, const uint8_t *data,
		     int32_t data_len, int64_t acl_id, const struct zk_stat_persisted *st,
		     const char **why)
{
	struct zknode *parent = NULL;
	if (len == 0) {
		if (t->root) {
			*why = "a second root node";
			return -EINVAL;
		}
	} else {
		size_t slash = last_slash(path, len);
		if (path[0] != '/' || path[len - 1] == '/' || memchr(path, '\0', len)) {
			*why = "a path that is not absolute";
			return -EINVAL;
		}
		parent = lookup(t, path, slash);
		if (!parent) {
			*why = "a node before its parent";
			return -EINVAL;
		}
		if (lookup(t, path, len)) {
			*why = "a path seen before";
			return -EINVAL;
		}
	}
	struct zknode *n = node_new(path, len, data, data_len);
	if (!n)
		return -ENOMEM;
	n->st = *st;
	n->acl_id = acl_id;
	void *v;
	if (acl_id == -1)
		n->acl = &acl_open_unsafe;
	else if (hamt_get(&t->acl_ids, &acl_id, sizeof acl_id, id_hash(acl_id), &v))
		n->acl = v;
	if (!parent) {
		t->root = n;
		return 0;
	}
	return node_link(t, parent, n);
}

/* ---- sessions ---- */

int zktree_session_put(struct zktree *t, int64_t id, int32_t timeout_ms)
{
	void *v;
	if (hamt_get(&t->sessions, &id, sizeof id, id_hash(id), &v)) {
		((struct zksession *)v)->timeout_ms = timeout_ms;
		return 0;
	}
	struct zksession *s = malloc(sizeof *s);
	if (!s)
		return -ENOMEM;
	*s = (struct zksession){id, timeout_ms};
	if (hamt_put(&t->sessions, &t->sessions, &id, sizeof id, id_hash(id), s, NULL, &t->gc)) {
		free(s);
		return -ENOMEM;
	}
	return 0;
}

static void session_del(struct zktree *t, int64_t id)
{
	void *v;
	if (hamt_del(&t->sessions, &t->sessions, &id, sizeof id, id_hash(id), &v, &t->gc) == 0)
		free(v);
}

size_t zktree_session_count(const struct zktree *t)
{
	return t->sessions.count;
}

struct session_visit {
	int (*fn)(void *ctx, int64_t id, int32_t timeout);
	void *ctx;
};

static int visit_session(void *ctx, const void *key, size_t len, void *val)
{
	struct session_visit *sv = ctx;
	const struct zksession *s = val;
	return sv->fn(sv->ctx, s->id, s->timeout_ms);
}

int zktree_foreach_session(const struct zktree *t,
			   int (*fn)(void *ctx, int64_t id, int32_t timeout), void *ctx)
{
	struct session_visit sv = {fn, ctx};
	return hamt_foreach(&t->sessions, visit_session, &sv);
}

/* ---- DataTree's changes ---- */

/* createNode. */
static int node_create(struct zktree *t, struct zk_txn_op *op, int64_t owner, int64_t zxid,
		       int64_t time_ms)
{
	size_t len = (size_t)op->path_len;
	const struct acl_list *acl = acl_intern(t, op->acl, op->acl_null);
	op->acl = NULL;
	if (!acl)
		return -ENOMEM;
	struct zknode *parent = lookup(t, op->path, last_slash(op->path, len));
	if (!parent)
		return ZNONODE;
	struct zknode *existing = lookup(t, op->path, len);
	if (existing) {
		/* A fuzzy snapshot may hold the node with an ACL its cache
		 * lacked; ZooKeeper sets the txn's. */
		existing->acl = acl;
		return ZNODEEXISTS;
	}
	int32_t cversion = op->parent_cversion;
	if (cversion == -1)
		cversion = parent->st.cversion + 1;
	/* Replaying a create whose node a fuzzy snapshot no longer has must
	 * not move the counters back. */
	if (cversion > parent->st.cversion) {
		parent->st.cversion = cversion;
		parent->st.pzxid = zxid;
	}
	struct zknode *n = node_new(op->path, len, op->data, op->data_len);
	if (!n)
		return -ENOMEM;
	n->acl = acl;
	n->st = (struct zk_stat_persisted){.czxid = zxid,
					   .mzxid = zxid,
					   .ctime = time_ms,
					   .mtime = time_ms,
					   .ephemeral_owner = owner,
					   .pzxid = zxid};
	return node_link(t, parent, n);
}

/* deleteNode: the parent's pzxid moves even when the node is gone. */
static int node_delete(struct zktree *t, const char *path, size_t len, int64_t zxid)
{
	struct zknode *parent = lookup(t, path, last_slash(path, len));
	if (!parent)
		return ZNONODE;
	if (zxid > parent->st.pzxid)
		parent->st.pzxid = zxid;
	struct zknode *n = lookup(t, path, len);
	if (!n || n == t->root)
		return ZNONODE;
	if (n->n_kids)
		fprintf(stderr,
			"warning: txn 0x%" PRIx64 " deletes %s, which still has %u children in the "
			"snapshot; they go with it\n",
			(uint64_t)zxid, n->path, n->n_kids);
	node_drop(t, n);
	return ZOK;
}

static int node_set_data(struct zktree *t, const struct zk_txn_op *op, int64_t zxid,
			 int64_t time_ms)
{
	struct zknode *n = lookup(t, op->path, (size_t)op->path_len);
	if (!n)
		return ZNONODE;
	uint8_t *data = NULL;
	if (op->data_len > 0) {
		data = malloc((size_t)op->data_len);
		if (!data)
			return -ENOMEM;
		memcpy(data, op->data, (size_t)op->data_len);
	}
	free(n->data);
	n->data = data;
	n->data_len = op->data_len < 0 ? -1 : op->data_len;
	n->st.mtime = time_ms;
	n->st.mzxid = zxid;
	n->st.version = op->version;
	return ZOK;
}

static int node_set_acl(struct zktree *t, struct zk_txn_op *op)
{
	struct zknode *n = lookup(t, op->path, (size_t)op->path_len);
	const struct acl_list *acl = acl_intern(t, op->acl, op->acl_null);
	op->acl = NULL;
	if (!acl)
		return -ENOMEM;
	if (!n)
		return ZNONODE;
	n->st.aversion = op->version;
	n->acl = acl;
	return ZOK;
}

/* setCversionPzxid, for a create whose node exists already. */
static int set_cversion_pzxid(struct zktree *t, const struct zk_txn_op *op, int64_t zxid)
{
	struct zknode *parent = lookup(t, op->path, last_slash(op->path, (size_t)op->path_len));
	if (!parent)
		return ZNONODE;
	int32_t cversion = op->parent_cversion;
	if (cversion == -1)
		cversion = parent->st.cversion + 1;
	if (cversion > parent->st.cversion) {
		parent->st.cversion = cversion;
		parent->st.pzxid = zxid;
	}
	return ZNODEEXISTS;
}

/* killSession: the paths the txn names, then whatever else the session
 * still owns; nodes already gone are skipped. */
static int session_kill(struct zktree *t, int64_t id, const struct zk_txn_op *op, int64_t zxid)
{
	if (op && op->paths) {
		struct jute_in in = jute_in_make(op->paths, op->paths_len);
		for (int32_t i = 0; i < op->n_paths; i++) {
			const char *p;
			int32_t len;
			jute_get_string(&in, &p, &len);
			if (in.err || len < 0)
				return -EBADMSG; /* the decoder checked this */
			node_delete(t, p, (size_t)len, zxid);
		}
	}
	void *v;
	while (hamt_get(&t->owners, &id, sizeof id, id_hash(id), &v)) {
		struct zkowner *o = v;
		struct zknode *n = o->nodes[o->n - 1];
		node_delete(t, n->path, n->path_len, zxid);
	}
	return ZOK;
}

static int64_t create_owner(const struct zk_txn *txn, const struct zk_txn_op *op)
{
	switch (op->type) {
	case ZOP_CREATE_CONTAINER:
		return INT64_MIN;
	case ZOP_CREATE_TTL:
		return (int64_t)(0xff00000000000000ull | (uint64_t)op->ttl_ms);
	default:
		return op->ephemeral ? txn->client_id : 0;
	}
}

/* One op, as processTxn with its header type being op->type. */
static int apply_op(struct zktree *t, const struct zk_txn *txn, struct zk_txn_op *op)
{
	int rc = ZOK;
	switch (op->type) {
	case ZOP_CREATE:
	case ZOP_CREATE2:
	case ZOP_CREATE_TTL:
	case ZOP_CREATE_CONTAINER:
		rc = node_create(t, op, create_owner(txn, op), txn->zxid, txn->time_ms);
		if (rc == ZNODEEXISTS && op->type == ZOP_CREATE)
			rc = set_cversion_pzxid(t, op, txn->zxid);
		return rc;
	case ZOP_DELETE:
	case ZOP_DELETE_CONTAINER:
		return node_delete(t, op->path, (size_t)op->path_len, txn->zxid);
	case ZOP_SET_DATA:
	case ZOP_RECONFIG:
		return node_set_data(t, op, txn->zxid, txn->time_ms);
	case ZOP_SET_ACL:
		return node_set_acl(t, op);
	case ZOP_CREATE_SESSION:
		return zktree_session_put(t, txn->client_id, op->timeout_ms);
	case ZOP_CLOSE_SESSION:
		session_del(t, txn->client_id);
		return session_kill(t, txn->client_id, op, txn->zxid);
	case ZOP_ERROR:
		return op->err;
	case ZOP_CHECK:
		return ZOK;
	default:
		return -EINVAL; /* the decoder lets no other type through */
	}
}

/* A multi changes nothing when any op failed (its ops are then all error
 * txns); otherwise each op is applied in order. */
static int apply_multi(struct zktree *t, struct zk_txn *txn)
{
	bool failed = false;
	for (int32_t i = 0; i < txn->n_multi; i++)
		if (txn->multi[i].type == ZOP_ERROR)
			failed = true;
	int err = ZOK;
	for (int32_t i = 0; i < txn->n_multi; i++) {
		struct zk_txn_op *op = &txn->multi[i];
		int rc = failed ? (op->type == ZOP_ERROR ? op->err : ZOK) : apply_op(t, txn, op);
		if (rc == -ENOMEM || rc == -EINVAL || rc == -EBADMSG)
			return rc;
		if (rc != ZOK && err == ZOK)
			err = rc;
	}
	return err;
}

static void txn_release(struct zk_txn *txn)
{
	acl_list_free(txn->op.acl);
	txn->op.acl = NULL;
	for (int32_t i = 0; i < txn->n_multi; i++)
		acl_list_free(txn->multi[i].acl);
	free(txn->multi);
	txn->multi = NULL;
	txn->n_multi = 0;
}

int zktree_apply(struct zktree *t, struct zk_txn *txn)
{
	int rc = txn->op.type == ZOP_MULTI ? apply_multi(t, txn) : apply_op(t, txn, &txn->op);
	txn_release(txn);
	if (txn->zxid > t->zxid)
		t->zxid = txn->zxid;
	return rc;
}

/* ---- after the last txn ---- */

struct dead_scan {
	struct zktree *t;
	int64_t *ids;
	size_t n, cap;
	int err;
};

static int find_dead(void *ctx, const void *key, size_t len, void *val)
{
	struct dead_scan *d = ctx;
	const struct zkowner *o = val;
	void *s;
	if (hamt_get(&d->t->sessions, &o->id, sizeof o->id, id_hash(o->id), &s))
		return 0;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		int64_t *v = realloc(d->ids, cap * sizeof *v);
		if (!v) {
			d->err = -ENOMEM;
			return 1;
		}
		d->ids = v;
		d->cap = cap;
	}
	d->ids[d->n++] = o->id;
	return 0;
}

size_t zktree_kill_dead_owners(struct zktree *t)
{
	struct dead_scan d = {.t = t};
	hamt_foreach(&t->owners, find_dead, &d);
	size_t before = zktree_node_count(t);
	for (size_t i = 0; i < d.n; i++)
		session_kill(t, d.ids[i], NULL, t->zxid);
	free(d.ids);
	return before - zktree_node_count(t);
}

struct counts {
	int32_t count;
	int64_t bytes;
};

static void subtree_counts(const struct zknode *n, struct counts *c)
{
	c->count++;
	c->bytes += n->data_len > 0 ? n->data_len : 0;
	for (uint32_t i = 0; i < n->n_kids; i++)
		subtree_counts(n->kids[i], c);
}

/* updateQuotaForPath: the stats node's data only, no Stat change. */
static int quota_update(struct zktree *t, const char *real, size_t real_len)
{
	struct counts c = {0, 0};
	const struct zknode *target = lookup(t, real, real_len);
	if (target)
		subtree_counts(target, &c);
	char stats_path[4096];
	int n = snprintf(stats_path, sizeof stats_path, ZK_QUOTA_ROOT "%.*s/" ZK_QUOTA_STATS,
			 (int)real_len, real);
	if (n < 0 || (size_t)n >= sizeof stats_path)
		return 0;
	struct zknode *stats = lookup(t, stats_path, (size_t)n);
	if (!stats)
		return 0;
	char text[64];
	int tn = snprintf(text, sizeof text, "count=%d,bytes=%" PRId64, c.count, c.bytes);
	uint8_t *data = malloc((size_t)tn);
	if (!data)
		return -ENOMEM;
	memcpy(data, text, (size_t)tn);
	free(stats->data);
	stats->data = data;
	stats->data_len = tn;
	return 1;
}

/* traverseNode: leaves named zookeeper_limits under /zookeeper/quota. */
static int quota_walk(struct zktree *t, const struct zknode *n)
{
	if (n->n_kids == 0) {
		static const char end[] = "/" ZK_QUOTA_LIMIT;
		const char *hit = strstr(n->path, end);
		size_t root_len = sizeof ZK_QUOTA_ROOT - 1;
		size_t plen = n->path_len;
		if (plen < sizeof end - 1 || strcmp(n->path + plen - (sizeof end - 1), end) != 0)
			return 0;
		/* The quota'd path is what lies between /zookeeper/quota and
		 * the first "/zookeeper_limits", as ZooKeeper cuts it. */
		size_t real_len = (size_t)(hit - n->path) - root_len;
		if (hit < n->path + root_len || real_len == 0)
			return 0;
		return quota_update(t, n->path + root_len, real_len);
	}
	int total = 0;
	for (uint32_t i = 0; i < n->n_kids; i++) {
		int rc = quota_walk(t, n->kids[i]);
		if (rc < 0)
			return rc;
		total += rc;
	}
	return total;
}

int zktree_recount_quotas(struct zktree *t)
{
	const struct zknode *q = lookup(t, ZK_QUOTA_ROOT, sizeof ZK_QUOTA_ROOT - 1);
	return q ? quota_walk(t, q) : 0;
}

static const struct zknode *first_unresolved(const struct zknode *n)
{
	if (!n->acl)
		return n;
	for (uint32_t i = 0; i < n->n_kids; i++) {
		const struct zknode *bad = first_unresolved(n->kids[i]);
		if (bad)
			return bad;
	}
	return NULL;
}

int zktree_check_acls(struct zktree *t, const struct zknode **bad)
{
	*bad = t->root ? first_unresolved(t->root) : NULL;
	return *bad ? -EINVAL : 0;
}

static int add_system_node(struct zktree *t, const char *path, const struct acl_list *acl,
			   int32_t aversion)
{
	size_t len = strlen(path);
	if (lookup(t, path, len))
		return 0;
	struct zknode *parent = lookup(t, path, last_slash(path, len));
	if (!parent)
		return 0;
	struct zknode *n = node_new(path, len, (const uint8_t *)"", 0);
	if (!n)
		return -ENOMEM;
	n->acl = acl;
	n->st.aversion = aversion;
	int rc = node_link(t, parent, n);
	return rc ? rc : 1;
}

int zktree_add_system_nodes(struct zktree *t)
{
	/* As DataTree's constructor: empty data, zero Stat, the config node
	 * readable by anyone with the aversion its setACL(-1) leaves. */
	static const struct {
		const char *path;
		const struct acl_list *acl;
		int32_t aversion;
	} sys[] = {{"/zookeeper", &acl_open_unsafe, 0},
		   {ZK_QUOTA_ROOT, &acl_open_unsafe, 0},
		   {"/zookeeper/config", &acl_read_unsafe, -1}};
	int added = 0;
	for (size_t i = 0; i < sizeof sys / sizeof *sys; i++) {
		int rc = add_system_node(t, sys[i].path, sys[i].acl, sys[i].aversion);
		if (rc < 0)
			return rc;
		added += rc;
	}
	return added;
}
