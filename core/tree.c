/* The persistent znode tree and its quiescent-state-based reclamation.
 *
 * Every change path-copies: a new znode for the node and, on create and
 * delete, a new parent znode whose children set shares all but O(log n)
 * trie nodes with the old one. Replaced znodes, data buffers, trie nodes,
 * ACLs and superseded tree_version structs go to the retire list, tagged
 * with the generation that first no longer reaches them. */
#include "core/tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/acl.h"
#include "core/jute.h"
#include "core/log.h"

/* Retired pointers carry their kind in the low bit: plain malloc'd memory,
 * or an acl_ref whose decoded list must be freed with it. */
#define RETIRE_ACL 1u

/* "/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config". */
#define SYSTEM_NODES 4

struct retire_mark {
	uint64_t gen; /* readers holding >= gen cannot reach items before end */
	size_t end;
};

struct tree {
	struct tree_version working;
	_Atomic(struct tree_version *) published;
	struct hamt_root acls; /* encoded ACL bytes -> struct acl_ref */
	void **retired;
	size_t retired_len, retired_cap, retired_freed;
	struct retire_mark *marks;
	size_t marks_len, marks_cap;
	struct hamt_gc gc;
	/* The nodes tree_create() made and no tree_node_restore replaced yet. */
	const struct znode *pristine[SYSTEM_NODES];
};

static void retire(void *ctx, void *ptr)
{
	struct tree *t = ctx;
	if (!ptr)
		return;
	if (t->retired_len == t->retired_cap) {
		size_t cap = t->retired_cap ? t->retired_cap * 2 : 1024;
		void **n = realloc(t->retired, cap * sizeof *n);
		RK_ASSERT(n); /* out of memory while retiring: cannot stay correct */
		t->retired = n;
		t->retired_cap = cap;
	}
	t->retired[t->retired_len++] = ptr;
}

static void free_retired(void *p)
{
	uintptr_t u = (uintptr_t)p;
	if (u & RETIRE_ACL) {
		struct acl_ref *a = (struct acl_ref *)(u & ~(uintptr_t)RETIRE_ACL);
		acl_list_free((struct acl_list *)a->list);
		free(a);
		return;
	}
	free(p);
}

static const struct acl_ref *acl_intern(struct tree *t, const struct acl_list *acl)
{
	struct jute_out enc;
	jute_out_init(&enc, 256, SIZE_MAX / 2);
	acl_list_encode(&enc, acl);
	RK_ASSERT(enc.err == 0);
	uint64_t h = hamt_hash(enc.buf, enc.len);
	void *found;
	if (hamt_get(&t->acls, enc.buf, enc.len, h, &found)) {
		jute_out_free(&enc);
		((struct acl_ref *)found)->refs++;
		return found;
	}
	struct acl_ref *a = malloc(sizeof *a + enc.len);
	RK_ASSERT(a);
	a->refs = 1;
	a->encoded_len = (uint32_t)enc.len;
	memcpy(a->encoded, enc.buf, enc.len);
	struct jute_in in = jute_in_make(a->encoded, a->encoded_len);
	struct acl_list *list = NULL;
	RK_ASSERT(acl_list_decode(&in, &list) == 0);
	a->list = list;
	RK_ASSERT(hamt_put(&t->acls, &t->acls, a->encoded, a->encoded_len, h, a, NULL, &t->gc) ==
		  0);
	jute_out_free(&enc);
	return a;
}

static void acl_unref(struct tree *t, const struct acl_ref *ref)
{
	struct acl_ref *a = (struct acl_ref *)ref;
	RK_ASSERT(a->refs > 0);
	if (--a->refs)
		return;
	uint64_t h = hamt_hash(a->encoded, a->encoded_len);
	RK_ASSERT(hamt_del(&t->acls, &t->acls, a->encoded, a->encoded_len, h, NULL, &t->gc) == 0);
	retire(t, (void *)((uintptr_t)a | RETIRE_ACL));
}

static struct znode *znode_copy(const struct znode *n)
{
	struct znode *c = malloc(sizeof *c);
	RK_ASSERT(c);
	*c = *n;
	return c;
}

/* Null data (length -1 on the wire) stays NULL; empty data gets a one-byte
 * allocation so getData can tell the two apart, as ZooKeeper does. */
static uint8_t *data_copy(const void *data, int32_t len)
{
	if (len < 0 || !data)
		return NULL;
	uint8_t *d = malloc(len ? (size_t)len : 1);
	RK_ASSERT(d);
	memcpy(d, data, (size_t)len);
	return d;
}

static struct znode *lookup_mut(struct tree *t, const char *path, size_t len)
{
	void *v;
	if (!hamt_get(&t->working.nodes, path, len, hamt_hash(path, len), &v))
		return NULL;
	return v;
}

/* Replace the znode at path with n, retiring the old struct. */
static void node_put(struct tree *t, const char *path, size_t len, struct znode *n)
{
	void *old = NULL;
	RK_ASSERT(hamt_put(&t->working.nodes, &t->working.nodes, path, len, hamt_hash(path, len), n,
			   &old, &t->gc) == 0);
	retire(t, old);
}

size_t tree_parent_len(const char *path, size_t len)
{
	RK_ASSERT(len > 1 && path[0] == '/');
	size_t i = len - 1;
	while (i > 0 && path[i] != '/')
		i--;
	return i == 0 ? 1 : i;
}

static const char *base_name(const char *path, size_t len, size_t *name_len)
{
	size_t p = tree_parent_len(path, len);
	size_t start = p == 1 ? 1 : p + 1;
	*name_len = len - start;
	return path + start;
}

/* ZooKeeper's ephemeralOwner encodings (docs/txn-log.md): 0 for a
 * persistent node, INT64_MIN for a container, a 0xff top byte for a TTL
 * node, else the owning session. */
static bool owned_by_session(int64_t owner)
{
	return owner != 0 && owner != INT64_MIN && ((uint64_t)owner >> 56) != 0xff;
}

/* Add a node to the version's counters, or (gone) take it away. */
static void count_node(struct tree_version *v, size_t path_len, const struct zk_stat *st, bool gone)
{
	uint64_t bytes = path_len + (uint64_t)st->data_length;
	uint64_t eph = owned_by_session(st->ephemeral_owner);
	if (gone) {
		v->bytes_approx -= bytes;
		v->ephemerals -= eph;
	} else {
		v->bytes_approx += bytes;
		v->ephemerals += eph;
	}
}

int tree_node_create(struct tree *t, const char *path, size_t len, const void *data,
		     int32_t data_len, const struct acl_list *acl, int64_t owner, int64_t zxid,
		     int64_t time_ms, int32_t parent_cversion)
{
	size_t plen = tree_parent_len(path, len);
	const struct znode *parent = lookup_mut(t, path, plen);
	RK_ASSERT(parent);
	RK_ASSERT(!lookup_mut(t, path, len));

	struct znode *n = calloc(1, sizeof *n);
	RK_ASSERT(n);
	n->stat = (struct zk_stat){
	    .czxid = zxid,
	    .mzxid = zxid,
	    .ctime = time_ms,
	    .mtime = time_ms,
	    .ephemeral_owner = owner,
	    .data_length = data_len > 0 ? data_len : 0,
	    .pzxid = zxid,
	};
	n->data = data_copy(data, data_len);
	n->acl = acl_intern(t, acl);

	struct znode *p = znode_copy(parent);
	size_t nlen;
	const char *name = base_name(path, len, &nlen);
	RK_ASSERT(hamt_put(&p->children, &p->children, name, nlen, hamt_hash(name, nlen), NULL,
			   NULL, &t->gc) == 0);
	p->stat.num_children = (int32_t)p->children.count;
	p->stat.cversion = parent_cversion;
	p->stat.pzxid = zxid;
	node_put(t, path, plen, p);
	node_put(t, path, len, n);
	count_node(&t->working, len, &n->stat, false);
	return 0;
}

int tree_node_delete(struct tree *t, const char *path, size_t len, int64_t zxid)
{
	size_t plen = tree_parent_len(path, len);
	const struct znode *parent = lookup_mut(t, path, plen);
	RK_ASSERT(parent);
	void *old = NULL;
	int rc = hamt_del(&t->working.nodes, &t->working.nodes, path, len, hamt_hash(path, len),
			  &old, &t->gc);
	if (rc)
		return rc;
	struct znode *n = old;
	RK_ASSERT(n->children.count == 0);
	count_node(&t->working, len, &n->stat, true);
	retire(t, (void *)n->data);
	acl_unref(t, n->acl);
	retire(t, n);

	struct znode *p = znode_copy(parent);
	size_t nlen;
	const char *name = base_name(path, len, &nlen);
	RK_ASSERT(hamt_del(&p->children, &p->children, name, nlen, hamt_hash(name, nlen), NULL,
			   &t->gc) == 0);
	/* Only creates advance cversion (ZooKeeper's sequence counter). */
	p->stat.num_children = (int32_t)p->children.count;
	if (zxid > p->stat.pzxid)
		p->stat.pzxid = zxid;
	node_put(t, path, plen, p);
	return 0;
}

int tree_node_set_data(struct tree *t, const char *path, size_t len, const void *data,
		       int32_t data_len, int64_t zxid, int64_t time_ms, int32_t version)
{
	const struct znode *old = lookup_mut(t, path, len);
	if (!old)
		return -ENOENT;
	struct znode *n = znode_copy(old);
	retire(t, (void *)old->data);
	n->data = data_copy(data, data_len);
	n->stat.data_length = data_len > 0 ? data_len : 0;
	t->working.bytes_approx += (uint64_t)n->stat.data_length - (uint64_t)old->stat.data_length;
	n->stat.mzxid = zxid;
	n->stat.mtime = time_ms;
	n->stat.version = version;
	node_put(t, path, len, n);
	return 0;
}

int tree_node_replace_data(struct tree *t, const char *path, size_t len, const void *data,
			   int32_t data_len)
{
	const struct znode *old = lookup_mut(t, path, len);
	if (!old)
		return -ENOENT;
	struct znode *n = znode_copy(old);
	retire(t, (void *)old->data);
	n->data = data_copy(data, data_len);
	n->stat.data_length = data_len > 0 ? data_len : 0;
	t->working.bytes_approx += (uint64_t)n->stat.data_length - (uint64_t)old->stat.data_length;
	node_put(t, path, len, n);
	return 0;
}

int tree_node_set_acl(struct tree *t, const char *path, size_t len, const struct acl_list *acl,
		      int32_t aversion)
{
	const struct znode *old = lookup_mut(t, path, len);
	if (!old)
		return -ENOENT;
	struct znode *n = znode_copy(old);
	n->acl = acl_intern(t, acl);
	acl_unref(t, old->acl);
	n->stat.aversion = aversion;
	node_put(t, path, len, n);
	return 0;
}

/* A private tree being restored has no reader: what an update replaces can
 * go at once. */
static void free_now(void *ctx, void *ptr)
{
	free(ptr);
}

static bool take_pristine(struct tree *t, const struct znode *n)
{
	for (size_t i = 0; i < SYSTEM_NODES; i++) {
		if (t->pristine[i] == n) {
			t->pristine[i] = NULL;
			return true;
		}
	}
	return false;
}

static void znode_free_now(struct tree *t, struct znode *n)
{
	free((void *)n->data);
	acl_unref(t, n->acl);
	free(n);
}

int tree_node_restore(struct tree *t, const char *path, size_t len, const struct zk_stat *st,
		      const void *data, int32_t data_len, const struct acl_list *acl)
{
	/* Nothing frozen since tree_create(): no pristine node was freed and
	 * its address reused, and no version shares what is changed here. */
	RK_ASSERT(t->working.gen == 1);
	RK_ASSERT(len >= 1 && path[0] == '/');
	RK_ASSERT(st->data_length == (data_len > 0 ? data_len : 0));
	const struct hamt_gc now = {.retire = free_now, .ctx = NULL};
	struct znode *parent = NULL;
	if (len > 1) {
		parent = lookup_mut(t, path, tree_parent_len(path, len));
		if (!parent)
			return -ENOENT;
	}
	struct znode *n = calloc(1, sizeof *n);
	RK_ASSERT(n);
	n->stat = *st;
	n->data = data_copy(data, data_len);
	n->acl = acl_intern(t, acl);
	/* Put first and look at what was there: one descent of the path map
	 * for the common case, a new node. */
	uint64_t h = hamt_hash(path, len);
	void *found = NULL;
	RK_ASSERT(hamt_put(&t->working.nodes, &t->working.nodes, path, len, h, n, &found, &now) ==
		  0);
	struct znode *old = found;
	if (!old) {
		size_t nlen;
		const char *name = base_name(path, len, &nlen);
		RK_ASSERT(hamt_put(&parent->children, &parent->children, name, nlen,
				   hamt_hash(name, nlen), NULL, NULL, &now) == 0);
		count_node(&t->working, len, &n->stat, false);
		return 0;
	}
	if (take_pristine(t, old)) {
		n->children = old->children;
		if (len > 1) { /* "/" is not counted */
			count_node(&t->working, len, &old->stat, true);
			count_node(&t->working, len, &n->stat, false);
		}
		znode_free_now(t, old);
		return 0;
	}
	RK_ASSERT(hamt_put(&t->working.nodes, &t->working.nodes, path, len, h, old, NULL, &now) ==
		  0);
	znode_free_now(t, n);
	return -EEXIST;
}

void tree_set_zxid(struct tree *t, int64_t zxid)
{
	t->working.zxid = zxid;
}

const struct tree_version *tree_working(const struct tree *t)
{
	return &t->working;
}

const struct tree_version *tree_acquire(const struct tree *t)
{
	return atomic_load_explicit(&((struct tree *)t)->published, memory_order_acquire);
}

const struct znode *tree_lookup(const struct tree_version *v, const char *path, size_t len)
{
	void *n;
	if (!hamt_get(&v->nodes, path, len, hamt_hash(path, len), &n))
		return NULL;
	return n;
}

struct child_iter {
	int (*fn)(void *ctx, const char *name, size_t len);
	void *ctx;
};

static int child_visit(void *ctx, const void *key, size_t len, void *val)
{
	struct child_iter *it = ctx;
	return it->fn(it->ctx, key, len);
}

int tree_foreach_child(const struct znode *n, int (*fn)(void *ctx, const char *name, size_t len),
		       void *ctx)
{
	struct child_iter it = {fn, ctx};
	return hamt_foreach(&n->children, child_visit, &it);
}

size_t tree_node_count(const struct tree_version *v)
{
	return v->nodes.count;
}

/* Stat fields as big-endian 64-bit words: the digest must not depend on
 * the host's byte order or on struct zk_stat's padding. */
#define DIGEST_STAT_WORDS 11

static void put_be64(uint8_t *p, int64_t v)
{
	uint64_t u = (uint64_t)v;
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)u;
		u >>= 8;
	}
}

static uint64_t node_digest(const char *path, size_t len, const struct znode *n)
{
	const struct zk_stat *s = &n->stat;
	const int64_t words[DIGEST_STAT_WORDS] = {
	    s->czxid,		s->mzxid,	s->pzxid,	 s->ctime,
	    s->mtime,		s->version,	s->cversion,	 s->aversion,
	    s->ephemeral_owner, s->data_length, s->num_children,
	};
	uint8_t fixed[DIGEST_STAT_WORDS * 8 + 1];
	for (int i = 0; i < DIGEST_STAT_WORDS; i++)
		put_be64(fixed + 8 * i, words[i]);
	/* Null and empty data are different answers to getData. */
	fixed[DIGEST_STAT_WORDS * 8] = n->data != NULL;
	/* Each part hashed on its own, seeded with the hash so far: XXH3 mixes
	 * in every part's length, so where the path ends is part of the hash. */
	uint64_t h = XXH3_64bits(path, len);
	h = XXH3_64bits_withSeed(fixed, sizeof fixed, h);
	h = XXH3_64bits_withSeed(n->data, n->data ? (size_t)s->data_length : 0, h);
	return XXH3_64bits_withSeed(n->acl->encoded, n->acl->encoded_len, h);
}

static int digest_visit(void *ctx, const void *key, size_t len, void *val)
{
	uint64_t *sum = ctx;
	*sum += node_digest(key, len, val);
	return 0;
}

uint64_t tree_digest(const struct tree_version *v)
{
	uint64_t sum = 0;
	hamt_foreach(&v->nodes, digest_visit, &sum);
	return sum;
}

struct tree_version *tree_freeze(struct tree *t)
{
	struct tree_version *v = malloc(sizeof *v);
	RK_ASSERT(v);
	t->working.gen++;
	*v = t->working;
	/* What was retired so far is unreachable from v and later versions. */
	if (t->marks_len == t->marks_cap) {
		size_t cap = t->marks_cap ? t->marks_cap * 2 : 64;
		struct retire_mark *m = realloc(t->marks, cap * sizeof *m);
		RK_ASSERT(m);
		t->marks = m;
		t->marks_cap = cap;
	}
	t->marks[t->marks_len++] = (struct retire_mark){.gen = v->gen, .end = t->retired_len};
	return v;
}

void tree_publish_version(struct tree *t, struct tree_version *v)
{
	struct tree_version *old = atomic_exchange_explicit(&t->published, v, memory_order_acq_rel);
	retire(t, old);
}

void tree_version_discard(struct tree *t, struct tree_version *v)
{
	retire(t, v);
}

uint64_t tree_publish(struct tree *t)
{
	struct tree_version *v = tree_freeze(t);
	tree_publish_version(t, v);
	return v->gen;
}

void tree_reclaim(struct tree *t, uint64_t gen_min_held)
{
	size_t m = 0;
	size_t end = t->retired_freed;
	while (m < t->marks_len && t->marks[m].gen <= gen_min_held)
		end = t->marks[m++].end;
	if (m == 0)
		return;
	for (size_t i = t->retired_freed; i < end; i++)
		free_retired(t->retired[i]);
	t->retired_freed = end;
	memmove(t->marks, t->marks + m, (t->marks_len - m) * sizeof *t->marks);
	t->marks_len -= m;
	if (t->retired_freed == t->retired_len) {
		t->retired_len = t->retired_freed = 0;
		for (size_t i = 0; i < t->marks_len; i++)
			t->marks[i].end = 0;
	} else if (t->retired_freed > t->retired_cap / 2) {
		size_t live = t->retired_len - t->retired_freed;
		memmove(t->retired, t->retired + t->retired_freed, live * sizeof *t->retired);
		for (size_t i = 0; i < t->marks_len; i++)
			t->marks[i].end -= t->retired_freed;
		t->retired_len = live;
		t->retired_freed = 0;
	}
}

size_t tree_bytes_retired_pending(const struct tree *t)
{
	return (t->retired_len - t->retired_freed) * sizeof(void *);
}

struct tree *tree_create(void)
{
	struct tree *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->gc = (struct hamt_gc){.retire = retire, .ctx = t};
	const struct acl_list *open = &acl_open_unsafe;
	struct znode *root = calloc(1, sizeof *root);
	RK_ASSERT(root);
	root->acl = acl_intern(t, open);
	/* ZooKeeper's DataTree gives every system node new byte[0]: getData
	 * answers empty data, not null. */
	root->data = data_copy("", 0);
	RK_ASSERT(hamt_put(&t->working.nodes, &t->working.nodes, "/", 1, hamt_hash("/", 1), root,
			   NULL, &t->gc) == 0);
	/* The system nodes exist from zxid 0 and, as in ZooKeeper, do not
	 * count as changes of their parents' children. */
	tree_node_create(t, "/zookeeper", 10, "", 0, open, 0, 0, 0, 0);
	tree_node_create(t, "/zookeeper/quota", 16, "", 0, open, 0, 0, 0, 0);
	tree_node_create(t, "/zookeeper/config", 17, "", 0, &acl_read_unsafe, 0, 0, 0, 0);
	lookup_mut(t, "/", 1)->stat.pzxid = 0;
	lookup_mut(t, "/zookeeper", 10)->stat.pzxid = 0;
	/* DataTree.addConfigNode sets its ACL with setACL(..., -1), which
	 * stores -1 as the aclVersion. */
	lookup_mut(t, "/zookeeper/config", 17)->stat.aversion = -1;
	t->pristine[0] = lookup_mut(t, "/", 1);
	t->pristine[1] = lookup_mut(t, "/zookeeper", 10);
	t->pristine[2] = lookup_mut(t, "/zookeeper/quota", 16);
	t->pristine[3] = lookup_mut(t, "/zookeeper/config", 17);
	tree_publish(t);
	return t;
}

static int free_node_val(void *ctx, const void *key, size_t len, void *val)
{
	struct tree *t = ctx;
	struct znode *n = val;
	hamt_destroy(&n->children);
	free((void *)n->data);
	acl_unref(t, n->acl);
	free(n);
	return 0;
}

void tree_destroy(struct tree *t)
{
	if (!t)
		return;
	tree_reclaim(t, UINT64_MAX);
	hamt_foreach(&t->working.nodes, free_node_val, t);
	hamt_destroy(&t->working.nodes);
	tree_reclaim(t, UINT64_MAX);
	for (size_t i = t->retired_freed; i < t->retired_len; i++)
		free_retired(t->retired[i]);
	hamt_destroy(&t->acls);
	free(atomic_load(&t->published));
	free(t->retired);
	free(t->marks);
	free(t);
}
