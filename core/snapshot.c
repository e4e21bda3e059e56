/* Snapshot codec: an iterative depth-first walk of one frozen tree version
 * into the body format of core/snapshot.h, and a checking parser that
 * rebuilds a tree and session table from it. */
#include "core/snapshot.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/txn.h"

/* ephemeralOwner encodings of ZooKeeper's EphemeralType (as core/txn.c). */
#define OWNER_CONTAINER ((int64_t)INT64_MIN)
#define OWNER_TTL_TAG	0xff00000000000000ULL

static bool is_session_owner(int64_t owner)
{
	return owner != 0 && owner != OWNER_CONTAINER &&
	       ((uint64_t)owner & OWNER_TTL_TAG) != OWNER_TTL_TAG;
}

/* ---- encoder: output buffer ---- */

struct out {
	uint8_t *buf;
	size_t len;
	snapshot_write_fn write;
	void *ctx;
};

static int out_flush(struct out *o)
{
	int rc = o->len ? o->write(o->ctx, o->buf, o->len) : 0;
	o->len = 0;
	return rc;
}

static int out_put(struct out *o, const void *p, size_t n)
{
	if (o->len + n > SNAP_ENCODE_CHUNK_BYTES) {
		int rc = out_flush(o);
		if (rc)
			return rc;
		if (n >= SNAP_ENCODE_CHUNK_BYTES)
			return o->write(o->ctx, p, n);
	}
	if (n)
		memcpy(o->buf + o->len, p, n);
	o->len += n;
	return 0;
}

/* ---- encoder: ACL table, interned ref -> index in first-use order ----
 * Open addressing on the pointer: within one version each distinct ACL is
 * one interned acl_ref, so the pointer identifies it. */

struct acl_table {
	const struct acl_ref **keys;
	uint32_t *vals;
	size_t cap; /* power of two, or 0 */
	uint32_t n;
};

static size_t ptr_slot(const void *p, size_t cap)
{
	return (size_t)(((uintptr_t)p >> 4) * 0x9e3779b97f4a7c15ULL) & (cap - 1);
}

static int acl_table_grow(struct acl_table *tab)
{
	size_t cap = tab->cap ? tab->cap * 2 : 64;
	const struct acl_ref **keys = calloc(cap, sizeof *keys);
	uint32_t *vals = malloc(cap * sizeof *vals);
	if (!keys || !vals) {
		free(keys);
		free(vals);
		return -ENOMEM;
	}
	for (size_t i = 0; i < tab->cap; i++) {
		if (!tab->keys[i])
			continue;
		size_t s = ptr_slot(tab->keys[i], cap);
		while (keys[s])
			s = (s + 1) & (cap - 1);
		keys[s] = tab->keys[i];
		vals[s] = tab->vals[i];
	}
	free(tab->keys);
	free(tab->vals);
	tab->keys = keys;
	tab->vals = vals;
	tab->cap = cap;
	return 0;
}

/* The index of ref; *fresh when this is its first use. */
static int acl_table_index(struct acl_table *tab, const struct acl_ref *ref, uint32_t *index,
			   bool *fresh)
{
	if ((size_t)tab->n * 2 >= tab->cap && acl_table_grow(tab))
		return -ENOMEM;
	size_t s = ptr_slot(ref, tab->cap);
	while (tab->keys[s] && tab->keys[s] != ref)
		s = (s + 1) & (tab->cap - 1);
	*fresh = !tab->keys[s];
	if (*fresh) {
		tab->keys[s] = ref;
		tab->vals[s] = tab->n++;
	}
	*index = tab->vals[s];
	return 0;
}

/* ---- encoder: the walk ---- */

struct pending {
	uint32_t depth; /* of the child: its parent's depth + 1 */
	uint32_t name_len;
	size_t name_off; /* in walk.names */
};

struct walk {
	const struct tree_version *v;
	struct pending *stack;
	size_t n, cap;
	char *names;
	size_t names_len, names_cap;
	char *path;
	size_t path_cap;
	size_t *depth_len; /* path length of the node last emitted at each depth */
	size_t depth_cap;
	struct out out;
	struct acl_table acls;
	uint64_t emitted;
};

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 64;
	while (c < need)
		c *= 2;
	void *q = realloc(*p, c * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

struct push_ctx {
	struct walk *w;
	uint32_t depth;
};

static int push_child(void *ctx, const char *name, size_t len)
{
	struct push_ctx *pc = ctx;
	struct walk *w = pc->w;
	if (grow((void **)&w->stack, &w->cap, w->n + 1, sizeof *w->stack) ||
	    grow((void **)&w->names, &w->names_cap, w->names_len + len, 1))
		return -ENOMEM;
	memcpy(w->names + w->names_len, name, len);
	w->stack[w->n++] = (struct pending){
	    .depth = pc->depth, .name_len = (uint32_t)len, .name_off = w->names_len};
	w->names_len += len;
	return 0;
}

static int emit(struct walk *w, const struct znode *n, size_t path_len)
{
	RK_ASSERT(n->acl);
	uint32_t acl;
	bool fresh;
	if (acl_table_index(&w->acls, n->acl, &acl, &fresh))
		return -ENOMEM;
	const struct zk_stat *st = &n->stat;
	struct snap_znode_record r = {
	    .czxid = st->czxid,
	    .mzxid = st->mzxid,
	    .ctime = st->ctime,
	    .mtime = st->mtime,
	    .ephemeral_owner = st->ephemeral_owner,
	    .pzxid = st->pzxid,
	    .version = st->version,
	    .cversion = st->cversion,
	    .aversion = st->aversion,
	    .num_children = st->num_children,
	    .data_len = n->data ? st->data_length : -1,
	    .path_len = (uint32_t)path_len,
	    .acl = acl,
	};
	int rc = out_put(&w->out, &r, sizeof r);
	if (!rc)
		rc = out_put(&w->out, w->path, path_len);
	if (!rc && n->data)
		rc = out_put(&w->out, n->data, (size_t)st->data_length);
	if (!rc && fresh) {
		uint32_t alen = n->acl->encoded_len;
		rc = out_put(&w->out, &alen, sizeof alen);
		if (!rc)
			rc = out_put(&w->out, n->acl->encoded, alen);
	}
	w->emitted++;
	return rc;
}

/* Emits the node at w->path (path_len bytes, depth depth) and queues its
 * children. */
static int visit_node(struct walk *w, size_t path_len, uint32_t depth)
{
	const struct znode *n = tree_lookup(w->v, w->path, path_len);
	RK_ASSERT(n); /* a name in a children set without its znode */
	RK_ASSERT(n->children.count == (size_t)n->stat.num_children);
	int rc = emit(w, n, path_len);
	if (rc)
		return rc;
	if (grow((void **)&w->depth_len, &w->depth_cap, (size_t)depth + 1, sizeof(size_t)))
		return -ENOMEM;
	w->depth_len[depth] = path_len;
	struct push_ctx pc = {w, depth + 1};
	return tree_foreach_child(n, push_child, &pc);
}

static int walk_run(struct walk *w)
{
	if (grow((void **)&w->path, &w->path_cap, 1, 1))
		return -ENOMEM;
	w->path[0] = '/';
	int rc = visit_node(w, 1, 0);
	while (!rc && w->n) {
		struct pending e = w->stack[--w->n];
		w->names_len = e.name_off; /* LIFO: the name stays readable below */
		size_t parent_len = w->depth_len[e.depth - 1];
		size_t at = parent_len == 1 ? 1 : parent_len + 1;
		if (grow((void **)&w->path, &w->path_cap, at + e.name_len, 1))
			return -ENOMEM;
		w->path[at - 1] = '/';
		memcpy(w->path + at, w->names + e.name_off, e.name_len);
		rc = visit_node(w, at + e.name_len, e.depth);
	}
	return rc;
}

static int encode_head(struct out *o, const struct tree_version *v,
		       const struct snap_session *sessions, size_t n_sessions)
{
	RK_ASSERT(n_sessions <= UINT32_MAX);
	struct snap_body_header h = {
	    .version = SNAP_BODY_VERSION,
	    .n_sessions = (uint32_t)n_sessions,
	    .zxid = v->zxid,
	    .n_znodes = tree_node_count(v),
	};
	int rc = out_put(o, &h, sizeof h);
	for (size_t i = 0; i < n_sessions && !rc; i++) {
		struct snap_session_record r = {
		    .id = sessions[i].id,
		    .timeout_ms = sessions[i].timeout_ms,
		};
		memcpy(r.passwd, sessions[i].passwd, sizeof r.passwd);
		rc = out_put(o, &r, sizeof r);
	}
	return rc;
}

int snapshot_encode(const struct tree_version *v, const struct snap_session *sessions,
		    size_t n_sessions, snapshot_write_fn write, void *ctx)
{
	struct walk w = {.v = v, .out = {.write = write, .ctx = ctx}};
	w.out.buf = malloc(SNAP_ENCODE_CHUNK_BYTES);
	if (!w.out.buf)
		return -ENOMEM;
	int rc = encode_head(&w.out, v, sessions, n_sessions);
	if (!rc)
		rc = walk_run(&w);
	if (!rc) {
		/* Every znode is reachable from "/" in a sound tree. */
		RK_ASSERT(w.emitted == tree_node_count(v));
		rc = out_flush(&w.out);
	}
	free(w.out.buf);
	free(w.stack);
	free(w.names);
	free(w.path);
	free(w.depth_len);
	free(w.acls.keys);
	free(w.acls.vals);
	return rc;
}

/* ---- parser ---- */

struct parse {
	const uint8_t *p;
	size_t len, off;
	struct snap_fault *fault;
	struct acl_list **acls;
	size_t n_acls, acls_cap;
};

static int refuse(struct parse *ps, size_t off, const char *what)
{
	ps->fault->off = off;
	ps->fault->what = what;
	return -EBADMSG;
}

/* A visitor's non-zero return stops the walk; record where. */
static int refused(struct parse *ps, size_t off, int rc)
{
	if (rc) {
		ps->fault->off = off;
		ps->fault->what = "refused by the visitor";
	}
	return rc;
}

static size_t left(const struct parse *ps)
{
	return ps->len - ps->off;
}

static int parse_sessions(struct parse *ps, const struct snap_body_header *h,
			  const struct snap_visitor *vis)
{
	if ((uint64_t)h->n_sessions * sizeof(struct snap_session_record) > left(ps))
		return refuse(ps, 0, "more sessions than the body holds");
	for (uint32_t i = 0; i < h->n_sessions; i++) {
		size_t at = ps->off;
		struct snap_session_record r;
		memcpy(&r, ps->p + at, sizeof r);
		ps->off += sizeof r;
		if (r.id == 0 || r.timeout_ms <= 0 || r.reserved)
			return refuse(ps, at, "bad session record");
		struct snap_session s = {.id = r.id, .timeout_ms = r.timeout_ms};
		memcpy(s.passwd, r.passwd, sizeof s.passwd);
		int rc = refused(ps, at, vis->session ? vis->session(vis->ctx, &s, at) : 0);
		if (rc)
			return rc;
	}
	return 0;
}

/* The ACL a record names: a known index, or the next one defined inline. */
static int parse_acl(struct parse *ps, size_t at, uint32_t index, const struct acl_list **acl)
{
	if (index < ps->n_acls) {
		*acl = ps->acls[index];
		return 0;
	}
	if (index != ps->n_acls)
		return refuse(ps, at, "ACL index not defined yet");
	uint32_t alen;
	if (left(ps) < sizeof alen)
		return refuse(ps, at, "truncated ACL");
	memcpy(&alen, ps->p + ps->off, sizeof alen);
	ps->off += sizeof alen;
	if (alen > left(ps))
		return refuse(ps, at, "truncated ACL");
	if (grow((void **)&ps->acls, &ps->acls_cap, ps->n_acls + 1, sizeof *ps->acls))
		return -ENOMEM;
	struct jute_in in = jute_in_make(ps->p + ps->off, alen);
	struct acl_list *list = NULL;
	int rc = acl_list_decode(&in, &list);
	if (rc == -ENOMEM)
		return rc;
	if (rc || in.off != alen) {
		acl_list_free(list);
		return refuse(ps, at, "malformed ACL");
	}
	ps->off += alen;
	ps->acls[ps->n_acls++] = list;
	*acl = list;
	return 0;
}

static bool zxid_fits(int64_t z, int64_t zxid)
{
	return z >= 0 && z <= zxid;
}

static int parse_znode(struct parse *ps, int64_t zxid, const struct snap_visitor *vis)
{
	size_t at = ps->off;
	struct snap_znode_record r;
	if (left(ps) < sizeof r)
		return refuse(ps, at, "truncated znode record");
	memcpy(&r, ps->p + at, sizeof r);
	ps->off += sizeof r;
	if (r.reserved || r.path_len == 0 || r.data_len < -1 || r.num_children < 0)
		return refuse(ps, at, "bad znode record");
	size_t dlen = r.data_len > 0 ? (size_t)r.data_len : 0;
	if (r.path_len > left(ps) || dlen > left(ps) - r.path_len)
		return refuse(ps, at, "truncated znode record");
	struct snap_znode z = {
	    .off = at,
	    .path = (const char *)ps->p + ps->off,
	    .path_len = r.path_len,
	    .data = r.data_len >= 0 ? ps->p + ps->off + r.path_len : NULL,
	    .data_len = r.data_len,
	    .acl_index = r.acl,
	};
	ps->off += r.path_len + dlen;
	if (!txn_path_valid(z.path, z.path_len))
		return refuse(ps, at, "invalid path");
	if (!zxid_fits(r.czxid, zxid) || !zxid_fits(r.mzxid, zxid) || !zxid_fits(r.pzxid, zxid))
		return refuse(ps, at, "a zxid past the image's");
	int rc = parse_acl(ps, at, r.acl, &z.acl);
	if (rc)
		return rc;
	z.stat = (struct zk_stat){
	    .czxid = r.czxid,
	    .mzxid = r.mzxid,
	    .ctime = r.ctime,
	    .mtime = r.mtime,
	    .version = r.version,
	    .cversion = r.cversion,
	    .aversion = r.aversion,
	    .ephemeral_owner = r.ephemeral_owner,
	    .data_length = (int32_t)dlen,
	    .num_children = r.num_children,
	    .pzxid = r.pzxid,
	};
	return refused(ps, at, vis->znode ? vis->znode(vis->ctx, &z) : 0);
}

static int parse_body(struct parse *ps, const struct snap_visitor *vis)
{
	struct snap_body_header h;
	if (ps->len < sizeof h)
		return refuse(ps, 0, "body shorter than its header");
	memcpy(&h, ps->p, sizeof h);
	ps->off = sizeof h;
	if (h.version != SNAP_BODY_VERSION)
		return refuse(ps, 0, "unknown body version");
	if (h.reserved || h.zxid < 0)
		return refuse(ps, 0, "bad body header");
	int rc = refused(ps, 0, vis->header ? vis->header(vis->ctx, &h) : 0);
	if (rc)
		return rc;
	rc = parse_sessions(ps, &h, vis);
	if (rc)
		return rc;
	if (h.n_znodes > left(ps) / sizeof(struct snap_znode_record))
		return refuse(ps, 0, "more znodes than the body holds");
	for (uint64_t i = 0; i < h.n_znodes && !rc; i++)
		rc = parse_znode(ps, h.zxid, vis);
	if (!rc && ps->off != ps->len)
		return refuse(ps, ps->off, "bytes after the last znode");
	return rc;
}

int snapshot_walk(const void *body, size_t len, const struct snap_visitor *visitor,
		  struct snap_fault *fault)
{
	struct snap_fault ignored;
	struct parse ps = {.p = body, .len = len, .fault = fault ? fault : &ignored};
	*ps.fault = (struct snap_fault){0};
	int rc = parse_body(&ps, visitor);
	for (size_t i = 0; i < ps.n_acls; i++)
		acl_list_free(ps.acls[i]);
	free(ps.acls);
	return rc;
}

/* ---- decoder: the walk's visitor that rebuilds the tree ---- */

struct decode {
	struct tree *t;
	struct session_table *st;
	int64_t zxid;
	uint64_t n_znodes;
	const char *why; /* the reason for the last -EBADMSG */
};

static int decode_header(void *ctx, const struct snap_body_header *h)
{
	struct decode *d = ctx;
	d->zxid = h->zxid;
	d->n_znodes = h->n_znodes;
	return 0;
}

static int decode_session(void *ctx, const struct snap_session *s, size_t off)
{
	struct decode *d = ctx;
	if (session_find(d->st, s->id)) {
		d->why = "duplicate session";
		return -EBADMSG;
	}
	/* Deadline 0: the server restarts every timeout once recovered. */
	return session_restore(d->st, s->id, s->timeout_ms, s->passwd, 0) ? 0 : -ENOMEM;
}

static int decode_znode(void *ctx, const struct snap_znode *z)
{
	struct decode *d = ctx;
	int rc =
	    tree_node_restore(d->t, z->path, z->path_len, &z->stat, z->data, z->data_len, z->acl);
	if (rc == -ENOENT)
		d->why = "parent missing";
	else if (rc == -EEXIST)
		d->why = "duplicate path";
	if (rc)
		return rc == -ENOMEM ? rc : -EBADMSG;
	if (!is_session_owner(z->stat.ephemeral_owner))
		return 0;
	struct session *s = session_find(d->st, (uint64_t)z->stat.ephemeral_owner);
	if (!s) {
		d->why = "ephemeral owner not in the image";
		return -EBADMSG;
	}
	return session_ephemeral_add(d->st, s, z->path, z->path_len);
}

static int check_children(void *ctx, const void *key, size_t len, void *val)
{
	const struct znode *n = val;
	return n->children.count != (size_t)n->stat.num_children;
}

int snapshot_decode_report(const void *body, size_t len, struct tree *t, struct session_table *st,
			   int64_t *zxid, struct snap_fault *fault)
{
	RK_ASSERT(session_count(st) == 0 && tree_working(t)->gen == 1);
	struct snap_fault ignored;
	if (!fault)
		fault = &ignored;
	struct decode d = {.t = t, .st = st};
	struct snap_visitor vis = {decode_header, decode_session, decode_znode, &d};
	int rc = snapshot_walk(body, len, &vis, fault);
	if (rc) {
		if (rc == -EBADMSG && d.why)
			fault->what = d.why;
		return rc;
	}
	const struct tree_version *w = tree_working(t);
	*fault = (struct snap_fault){.off = len};
	if (tree_node_count(w) != d.n_znodes) {
		fault->what = "a system znode is missing from the image";
		return -EBADMSG;
	}
	if (hamt_foreach(&w->nodes, check_children, NULL)) {
		fault->what = "a znode's num_children differs from its children";
		return -EBADMSG;
	}
	*fault = (struct snap_fault){0};
	tree_set_zxid(t, d.zxid);
	*zxid = d.zxid;
	return 0;
}

int snapshot_decode(const void *body, size_t len, struct tree *t, struct session_table *st,
		    int64_t *zxid)
{
	return snapshot_decode_report(body, len, t, st, zxid, NULL);
}
