/* Read-only request handlers; see read.h. */
#include "core/read.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

/* WatcherType numbers of checkWatches/removeWatches. */
enum { WT_CHILDREN = 1, WT_DATA = 2, WT_ANY = 3, WT_PERSISTENT = 4, WT_RECURSIVE = 5 };

static const struct znode *lookup(const struct read_ctx *c, const char *p, int32_t len)
{
	return len <= 0 ? NULL : tree_lookup(c->v, p, (size_t)len);
}

static bool can(const struct read_ctx *c, const struct znode *n, int32_t perm)
{
	return acl_check(n->acl->list, perm, c->auth, c->super_digest);
}

static void reply_err(const struct read_ctx *c, struct jute_out *out, int32_t xid, int32_t err)
{
	size_t at = proto_reply_begin(out, xid, c->v->zxid, err);
	proto_frame_end(out, at);
}

static int put_child(void *ctx, const char *name, size_t len)
{
	jute_put_string(ctx, name, (int32_t)len);
	return 0;
}

static void put_children(struct jute_out *out, const struct znode *n)
{
	jute_put_int(out, (int32_t)n->children.count);
	tree_foreach_child(n, put_child, out);
}

static void watch(const struct read_ctx *c, const char *p, int32_t len, enum watch_kind k)
{
	int rc = watch_add(c->watches, p, (size_t)len, k, c->watch_key);
	if (rc)
		log_write(LOG_LEVEL_WARN, c->session_id, "watch on %.*s not set: %s", (int)len, p,
			  rc == -ENOSPC ? "watch table full" : "out of memory");
}

/* getData / getChildren / getChildren2 / exists body: path, watch flag. */
static int path_and_watch(struct jute_in *in, const char **p, int32_t *len, bool *w)
{
	jute_get_string(in, p, len);
	*w = jute_get_bool(in);
	return in->err ? -EBADMSG : 0;
}

static int do_exists(const struct read_ctx *c, int32_t xid, struct jute_in *in,
		     struct jute_out *out)
{
	const char *p;
	int32_t len;
	bool w;
	if (path_and_watch(in, &p, &len, &w))
		return -EBADMSG;
	const struct znode *n = lookup(c, p, len);
	if (w && len > 0)
		watch(c, p, len, WATCH_DATA);
	size_t at = proto_reply_begin(out, xid, c->v->zxid, n ? ZOK : ZNONODE);
	if (n)
		proto_put_stat(out, &n->stat);
	proto_frame_end(out, at);
	return 0;
}

/* Result body of getData (4) and getChildren (8), shared with multiRead.
 * Returns the error code; on ZOK the body is written. */
static int32_t read_one(const struct read_ctx *c, int32_t op, const char *p, int32_t len, bool w,
			struct jute_out *out)
{
	const struct znode *n = lookup(c, p, len);
	if (!n)
		return ZNONODE;
	if (!can(c, n, ZPERM_READ))
		return ZNOAUTH;
	if (op == ZOP_GET_DATA) {
		if (w)
			watch(c, p, len, WATCH_DATA);
		jute_put_buffer(out, n->data, n->data ? n->stat.data_length : -1);
		proto_put_stat(out, &n->stat);
		return ZOK;
	}
	if (w)
		watch(c, p, len, WATCH_CHILD);
	put_children(out, n);
	if (op == ZOP_GET_CHILDREN2)
		proto_put_stat(out, &n->stat);
	return ZOK;
}

static int do_get(const struct read_ctx *c, int32_t xid, int32_t op, struct jute_in *in,
		  struct jute_out *out)
{
	const char *p;
	int32_t len;
	bool w;
	if (path_and_watch(in, &p, &len, &w))
		return -EBADMSG;
	size_t at = proto_reply_begin(out, xid, c->v->zxid, ZOK);
	int32_t err = read_one(c, op, p, len, w, out);
	if (err) {
		out->len = at;
		reply_err(c, out, xid, err);
		return 0;
	}
	proto_frame_end(out, at);
	return 0;
}

static void put_acl_redacted(struct jute_out *out, const struct acl_list *acl)
{
	jute_put_int(out, (int32_t)acl->count);
	for (uint32_t i = 0; i < acl->count; i++) {
		const struct acl_entry *e = &acl->entries[i];
		jute_put_int(out, e->perms);
		jute_put_cstr(out, e->id.scheme);
		if (strcmp(e->id.scheme, ACL_SCHEME_DIGEST) == 0) {
			/* CVE-2019-0201: hide the hash from those without ADMIN. */
			const char *colon = strchr(e->id.id, ':');
			size_t ul = colon ? (size_t)(colon - e->id.id) : strlen(e->id.id);
			uint8_t *d = jute_reserve(out, 4 + ul + 2);
			if (d) {
				jute_be32_put(d, (uint32_t)(ul + 2));
				memcpy(d + 4, e->id.id, ul);
				memcpy(d + 4 + ul, ":x", 2);
			}
		} else {
			jute_put_cstr(out, e->id.id);
		}
	}
}

static int do_get_acl(const struct read_ctx *c, int32_t xid, struct jute_in *in,
		      struct jute_out *out)
{
	const char *p;
	int32_t len;
	jute_get_string(in, &p, &len);
	if (in->err)
		return -EBADMSG;
	const struct znode *n = lookup(c, p, len);
	if (!n || !can(c, n, ZPERM_READ | ZPERM_ADMIN)) {
		reply_err(c, out, xid, n ? ZNOAUTH : ZNONODE);
		return 0;
	}
	size_t at = proto_reply_begin(out, xid, c->v->zxid, ZOK);
	if (can(c, n, ZPERM_ADMIN)) {
		uint8_t *d = jute_reserve(out, n->acl->encoded_len);
		if (d)
			memcpy(d, n->acl->encoded, n->acl->encoded_len);
	} else {
		put_acl_redacted(out, n->acl->list);
	}
	proto_put_stat(out, &n->stat);
	proto_frame_end(out, at);
	return 0;
}

static void put_multi_hdr(struct jute_out *out, int32_t type, bool done, int32_t err)
{
	jute_put_int(out, type);
	jute_put_bool(out, done);
	jute_put_int(out, err);
}

static int do_multi_read(const struct read_ctx *c, int32_t xid, struct jute_in *in,
			 struct jute_out *out)
{
	size_t at = proto_reply_begin(out, xid, c->v->zxid, ZOK);
	for (;;) {
		int32_t type = jute_get_int(in);
		bool done = jute_get_bool(in);
		jute_get_int(in);
		if (in->err)
			return -EBADMSG;
		if (done)
			break;
		const char *p;
		int32_t len;
		bool w;
		if (type != ZOP_GET_DATA && type != ZOP_GET_CHILDREN)
			return -EBADMSG;
		if (path_and_watch(in, &p, &len, &w))
			return -EBADMSG;
		size_t hdr = out->len;
		put_multi_hdr(out, type, false, ZOK);
		int32_t err = read_one(c, type, p, len, w, out);
		if (err) {
			out->len = hdr;
			put_multi_hdr(out, ZOP_ERROR, false, err);
			jute_put_int(out, err);
		}
	}
	put_multi_hdr(out, -1, true, -1);
	proto_frame_end(out, at);
	return 0;
}

/* setWatches (101) and setWatches2 (105): re-register after a reconnect,
 * firing at once what changed since relativeZxid. */
static int do_set_watches(const struct read_ctx *c, int32_t xid, int32_t op, struct jute_in *in,
			  struct jute_out *out)
{
	int64_t rel = jute_get_long(in);
	int lists = op == ZOP_SET_WATCHES2 ? 5 : 3;
	for (int l = 0; l < lists; l++) {
		int32_t n = jute_get_vector_len(in, 4);
		for (int32_t i = 0; i < n && !in->err; i++) {
			const char *p;
			int32_t len;
			jute_get_string(in, &p, &len);
			if (in->err || len <= 0)
				continue;
			const struct znode *z = lookup(c, p, len);
			switch (l) {
			case 0: /* data */
				if (!z)
					proto_put_notification(out, ZEV_NODE_DELETED, p,
							       (size_t)len, -1);
				else if (z->stat.mzxid > rel)
					proto_put_notification(out, ZEV_NODE_DATA_CHANGED, p,
							       (size_t)len, -1);
				else
					watch(c, p, len, WATCH_DATA);
				break;
			case 1: /* exist */
				if (z)
					proto_put_notification(out, ZEV_NODE_CREATED, p,
							       (size_t)len, -1);
				else
					watch(c, p, len, WATCH_DATA);
				break;
			case 2: /* child */
				if (!z)
					proto_put_notification(out, ZEV_NODE_DELETED, p,
							       (size_t)len, -1);
				else if (z->stat.pzxid > rel)
					proto_put_notification(out, ZEV_NODE_CHILDREN_CHANGED, p,
							       (size_t)len, -1);
				else
					watch(c, p, len, WATCH_CHILD);
				break;
			case 3:
				watch(c, p, len, WATCH_PERSISTENT);
				break;
			default:
				watch(c, p, len, WATCH_PERSISTENT_RECURSIVE);
				break;
			}
		}
	}
	if (in->err)
		return -EBADMSG;
	reply_err(c, out, xid, ZOK);
	return 0;
}

static int do_add_watch(const struct read_ctx *c, int32_t xid, struct jute_in *in,
			struct jute_out *out)
{
	const char *p;
	int32_t len;
	jute_get_string(in, &p, &len);
	int32_t mode = jute_get_int(in);
	if (in->err || len <= 0)
		return -EBADMSG;
	if (mode != 0 && mode != 1) {
		reply_err(c, out, xid, ZBADARGUMENTS);
		return 0;
	}
	watch(c, p, len, mode == 0 ? WATCH_PERSISTENT : WATCH_PERSISTENT_RECURSIVE);
	/* ZooKeeper answers an ErrorResponse(0): clients read its int. */
	size_t at = proto_reply_begin(out, xid, c->v->zxid, ZOK);
	jute_put_int(out, 0);
	proto_frame_end(out, at);
	return 0;
}

/* checkWatches (17) and removeWatches (18). */
static int do_watches_query(const struct read_ctx *c, int32_t xid, int32_t op, struct jute_in *in,
			    struct jute_out *out)
{
	const char *p;
	int32_t len;
	jute_get_string(in, &p, &len);
	int32_t type = jute_get_int(in);
	if (in->err || len <= 0)
		return -EBADMSG;
	static const enum watch_kind kinds[] = {WATCH_CHILD, WATCH_DATA, WATCH_PERSISTENT,
						WATCH_PERSISTENT_RECURSIVE};
	bool found = false;
	for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
		bool wanted = type == WT_ANY || (type == WT_CHILDREN && kinds[i] == WATCH_CHILD) ||
			      (type == WT_DATA && kinds[i] == WATCH_DATA) ||
			      (type == WT_PERSISTENT && kinds[i] == WATCH_PERSISTENT) ||
			      (type == WT_RECURSIVE && kinds[i] == WATCH_PERSISTENT_RECURSIVE);
		if (!wanted)
			continue;
		if (op == ZOP_CHECK_WATCHES)
			found |= watch_exists(c->watches, p, (size_t)len, kinds[i], c->watch_key);
		else
			found |=
			    watch_remove(c->watches, p, (size_t)len, kinds[i], c->watch_key) == 0;
	}
	reply_err(c, out, xid, found ? ZOK : ZNOWATCHER);
	return 0;
}

struct count_ctx {
	const struct read_ctx *c;
	char *path;
	size_t len, cap;
	int64_t count;
};

static int count_child(void *ctx, const char *name, size_t nlen);

static void count_subtree(struct count_ctx *k, const struct znode *n)
{
	tree_foreach_child(n, count_child, k);
}

static int count_child(void *ctx, const char *name, size_t nlen)
{
	struct count_ctx *k = ctx;
	size_t base = k->len;
	size_t need = base + 1 + nlen;
	if (need > k->cap) {
		size_t cap = need * 2;
		char *np = realloc(k->path, cap);
		if (!np)
			return 1;
		k->path = np;
		k->cap = cap;
	}
	size_t at = base == 1 ? 1 : base; /* children of "/" have no extra slash */
	if (base != 1)
		k->path[at++] = '/';
	memcpy(k->path + at, name, nlen);
	k->len = at + nlen;
	k->count++;
	const struct znode *n = tree_lookup(k->c->v, k->path, k->len);
	if (n && n->children.count)
		count_subtree(k, n);
	k->len = base;
	return 0;
}

static int do_all_children_number(const struct read_ctx *c, int32_t xid, struct jute_in *in,
				  struct jute_out *out)
{
	const char *p;
	int32_t len;
	jute_get_string(in, &p, &len);
	if (in->err)
		return -EBADMSG;
	const struct znode *n = lookup(c, p, len);
	if (!n || !can(c, n, ZPERM_READ)) {
		reply_err(c, out, xid, n ? ZNOAUTH : ZNONODE);
		return 0;
	}
	struct count_ctx k = {.c = c, .cap = (size_t)len + 256};
	k.path = malloc(k.cap);
	if (!k.path) {
		reply_err(c, out, xid, ZSYSTEMERROR);
		return 0;
	}
	memcpy(k.path, p, (size_t)len);
	k.len = (size_t)len;
	count_subtree(&k, n);
	free(k.path);
	size_t at = proto_reply_begin(out, xid, c->v->zxid, ZOK);
	jute_put_int(out, (int32_t)k.count);
	proto_frame_end(out, at);
	return 0;
}

struct eph_ctx {
	uint64_t owner;
	const char *prefix;
	size_t prefix_len;
	struct jute_out *out;
	int32_t count;
};

static int collect_ephemeral(void *ctx, const void *key, size_t len, void *val)
{
	struct eph_ctx *e = ctx;
	const struct znode *n = val;
	if ((uint64_t)n->stat.ephemeral_owner != e->owner)
		return 0;
	if (len < e->prefix_len || memcmp(key, e->prefix, e->prefix_len) != 0)
		return 0;
	jute_put_string(e->out, key, (int32_t)len);
	e->count++;
	return 0;
}

static int do_get_ephemerals(const struct read_ctx *c, int32_t xid, struct jute_in *in,
			     struct jute_out *out)
{
	const char *p;
	int32_t len;
	jute_get_string(in, &p, &len);
	if (in->err)
		return -EBADMSG;
	size_t at = proto_reply_begin(out, xid, c->v->zxid, ZOK);
	size_t count_at = out->len;
	jute_put_int(out, 0);
	struct eph_ctx e = {c->session_id, p ? p : "/", p && len > 0 ? (size_t)len : 1, out, 0};
	hamt_foreach(&c->v->nodes, collect_ephemeral, &e);
	jute_patch_int(out, count_at, e.count);
	proto_frame_end(out, at);
	return 0;
}

/* ZooKeeper's AuthUtil.getClientInfos: each id's scheme and the user its
 * provider names, which for digest is the part before the ':' (the
 * password hash stays on the server). */
static int do_who_am_i(const struct read_ctx *c, int32_t xid, struct jute_out *out)
{
	size_t at = proto_reply_begin(out, xid, c->v->zxid, ZOK);
	jute_put_int(out, (int32_t)c->auth->count);
	for (uint32_t i = 0; i < c->auth->count; i++) {
		const struct acl_id *id = &c->auth->ids[i];
		size_t len = strlen(id->id);
		const char *colon = strchr(id->id, ':');
		if (strcmp(id->scheme, ACL_SCHEME_DIGEST) == 0 && colon)
			len = (size_t)(colon - id->id);
		jute_put_cstr(out, id->scheme);
		jute_put_string(out, id->id, (int32_t)len);
	}
	proto_frame_end(out, at);
	return 0;
}

int read_request(const struct read_ctx *c, int32_t xid, int32_t op, const uint8_t *body, size_t len,
		 struct jute_out *out)
{
	struct jute_in in = jute_in_make(body, len);
	switch (op) {
	case ZOP_PING:
		reply_err(c, out, XID_PING, ZOK); /* whatever xid it came with */
		return 0;
	case ZOP_EXISTS:
		return do_exists(c, xid, &in, out);
	case ZOP_GET_DATA:
	case ZOP_GET_CHILDREN:
	case ZOP_GET_CHILDREN2:
		return do_get(c, xid, op, &in, out);
	case ZOP_GET_ACL:
		return do_get_acl(c, xid, &in, out);
	case ZOP_MULTI_READ:
		return do_multi_read(c, xid, &in, out);
	case ZOP_SET_WATCHES:
	case ZOP_SET_WATCHES2:
		return do_set_watches(c, xid, op, &in, out);
	case ZOP_ADD_WATCH:
		return do_add_watch(c, xid, &in, out);
	case ZOP_CHECK_WATCHES:
	case ZOP_REMOVE_WATCHES:
		return do_watches_query(c, xid, op, &in, out);
	case ZOP_GET_ALL_CHILDREN_NUMBER:
		return do_all_children_number(c, xid, &in, out);
	case ZOP_GET_EPHEMERALS:
		return do_get_ephemerals(c, xid, &in, out);
	case ZOP_WHO_AM_I:
		return do_who_am_i(c, xid, out);
	default:
		reply_err(c, out, xid, ZUNIMPLEMENTED);
		return 0;
	}
}
