/* Write requests -> txns -> tree changes, events and replies.
 *
 * Validation mirrors ZooKeeper's PrepRequestProcessor, in its order of
 * checks, so clients see the same error for the same request. A multi is
 * validated op by op against an overlay of the changes its earlier ops
 * make (ZooKeeper's outstanding change records); only if every op passes
 * are the txns applied, so a failed multi changes nothing. */
#include "core/txn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/acl.h"
#include "core/log.h"

/* ephemeralOwner encodings of ZooKeeper's EphemeralType. */
#define OWNER_CONTAINER ((int64_t)INT64_MIN)
#define OWNER_TTL_TAG	((int64_t)0xff00000000000000ULL)
#define TTL_MAX_MS	((1LL << 40) - 1)

/* A node as the request being validated sees it. */
struct node_view {
	bool exists;
	struct zk_stat stat;
	const struct acl_list *acl;
};

struct overlay_entry {
	char *path;
	size_t len;
	struct node_view v;
};

/* What earlier ops of a multi change under one quota'd path. */
struct quota_pending {
	char *prefix;
	size_t len;
	int64_t count, bytes;
};

struct overlay {
	struct overlay_entry *e;
	size_t n, cap;
	struct quota_pending *q; /* only with enforce_quota */
	size_t q_n, q_cap;
};

/* One validated operation, ready to apply. */
struct txn_op {
	int32_t op;  /* request op code, or ZOP_ERROR */
	int32_t err; /* for ZOP_ERROR */
	char *path;  /* owned, NUL-terminated */
	size_t path_len;
	const uint8_t *data; /* into the request body */
	int32_t data_len;
	struct acl_list *acl; /* owned */
	int64_t owner;
	int32_t version; /* new version / aversion / parent cversion */
};

struct txn_ctx {
	struct sm *sm;
	struct session *s;
	struct overlay ov;
	int64_t zxid;
	int64_t now_ms;
	bool parse_only; /* an op after a failed one in a multi: no quota check */
};

/* The next char of a path as ZooKeeper sees it: Java decodes the bytes as
 * UTF-8, replacing malformed input with U+FFFD, and a character past the
 * BMP becomes a surrogate pair (U+D800..U+DFFF). Sets *n to the bytes of a
 * well-formed character. */
static uint32_t java_char(const unsigned char *p, size_t left, size_t *n)
{
	unsigned char c = p[0];
	*n = 1;
	if (c < 0x80)
		return c;
	if (c < 0xc2 || c > 0xf4)
		return 0xfffd;
	size_t more = c < 0xe0 ? 1 : c < 0xf0 ? 2 : 3;
	if (left < more + 1)
		return 0xfffd;
	/* The second byte's bounds exclude overlong forms, surrogates and
	 * code points past U+10FFFF. */
	unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
	unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
	if (p[1] < lo || p[1] > hi)
		return 0xfffd;
	uint32_t cp = c & (0x3fu >> more);
	for (size_t k = 1; k <= more; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0xfffd;
		cp = cp << 6 | (p[k] & 0x3fu);
	}
	*n = more + 1;
	return cp > 0xffff ? 0xd800 : cp;
}

bool txn_owner_is_container(int64_t owner)
{
	return owner == OWNER_CONTAINER;
}

bool txn_owner_ttl(int64_t owner, int64_t *ttl_ms)
{
	if (((uint64_t)owner & 0xff00000000000000ULL) != (uint64_t)OWNER_TTL_TAG ||
	    owner == OWNER_CONTAINER)
		return false;
	if (ttl_ms)
		*ttl_ms = owner & TTL_MAX_MS;
	return true;
}

bool txn_path_valid(const char *path, size_t len)
{
	if (len == 0 || path[0] != '/')
		return false;
	if (len == 1)
		return true;
	if (path[len - 1] == '/')
		return false;
	size_t seg = 1;
	for (size_t i = 1; i <= len;) {
		if (i == len || path[i] == '/') {
			size_t n = i - seg;
			if (n == 0)
				return false;
			if ((n == 1 && path[seg] == '.') ||
			    (n == 2 && path[seg] == '.' && path[seg + 1] == '.'))
				return false;
			seg = ++i;
			continue;
		}
		size_t n;
		uint32_t c = java_char((const unsigned char *)path + i, len - i, &n);
		/* The chars PathUtils.validatePath refuses (NUL included). */
		if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xf8ff) ||
		    c >= 0xfff0)
			return false;
		i += n;
	}
	return true;
}

static size_t parent_len_of(const char *path, size_t len)
{
	size_t i = len;
	while (i > 0 && path[i - 1] != '/')
		i--;
	/* i is one past the last '/'; the parent of "/a" is "/". */
	return i <= 1 ? 1 : i - 1;
}

static struct overlay_entry *ov_find(struct overlay *ov, const char *path, size_t len)
{
	for (size_t i = ov->n; i-- > 0;)
		if (ov->e[i].len == len && memcmp(ov->e[i].path, path, len) == 0)
			return &ov->e[i];
	return NULL;
}

static int ov_set(struct overlay *ov, const char *path, size_t len, const struct node_view *v)
{
	struct overlay_entry *e = ov_find(ov, path, len);
	if (e) {
		e->v = *v;
		return 0;
	}
	if (ov->n == ov->cap) {
		size_t cap = ov->cap ? ov->cap * 2 : 8;
		struct overlay_entry *ne = realloc(ov->e, cap * sizeof *ne);
		if (!ne)
			return -ENOMEM;
		ov->e = ne;
		ov->cap = cap;
	}
	char *p = malloc(len + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p, path, len);
	p[len] = 0;
	ov->e[ov->n++] = (struct overlay_entry){.path = p, .len = len, .v = *v};
	return 0;
}

static void ov_free(struct overlay *ov)
{
	for (size_t i = 0; i < ov->n; i++)
		free(ov->e[i].path);
	free(ov->e);
	for (size_t i = 0; i < ov->q_n; i++)
		free(ov->q[i].prefix);
	free(ov->q);
}

static struct quota_pending *pending_get(struct overlay *ov, const char *prefix, size_t len,
					 bool add)
{
	for (size_t i = 0; i < ov->q_n; i++)
		if (ov->q[i].len == len && memcmp(ov->q[i].prefix, prefix, len) == 0)
			return &ov->q[i];
	if (!add)
		return NULL;
	if (ov->q_n == ov->q_cap) {
		size_t cap = ov->q_cap ? ov->q_cap * 2 : 4;
		struct quota_pending *nq = realloc(ov->q, cap * sizeof *nq);
		if (!nq)
			return NULL;
		ov->q = nq;
		ov->q_cap = cap;
	}
	char *p = malloc(len);
	if (!p)
		return NULL;
	memcpy(p, prefix, len);
	ov->q[ov->q_n] = (struct quota_pending){.prefix = p, .len = len};
	return &ov->q[ov->q_n++];
}

static struct node_view view_get(struct txn_ctx *c, const char *path, size_t len)
{
	struct overlay_entry *e = ov_find(&c->ov, path, len);
	if (e)
		return e->v;
	const struct znode *n = tree_lookup(tree_working(c->sm->tree), path, len);
	if (!n)
		return (struct node_view){.exists = false};
	return (struct node_view){.exists = true, .stat = n->stat, .acl = n->acl->list};
}

static bool allowed(struct txn_ctx *c, const struct acl_list *acl, int32_t perm)
{
	return acl_check(acl, perm, &c->s->auth, c->sm->super_id);
}

/* ZooKeeper's checkAndIncVersion; the new version wraps to 1 past INT_MAX. */
static int check_version(int32_t current, int32_t expected, int32_t *next)
{
	if (expected != -1 && expected != current)
		return ZBADVERSION;
	*next = current == INT32_MAX ? 1 : current + 1;
	return ZOK;
}

static bool is_normal_ephemeral(int64_t owner)
{
	return owner != 0 && owner != OWNER_CONTAINER &&
	       ((uint64_t)owner & 0xff00000000000000ULL) != (uint64_t)OWNER_TTL_TAG;
}

static char *dup_path(const char *path, size_t len, const char *suffix)
{
	size_t sl = suffix ? strlen(suffix) : 0;
	char *p = malloc(len + sl + 1);
	if (!p)
		return NULL;
	memcpy(p, path, len);
	if (sl) /* memcpy from NULL is undefined even for 0 bytes */
		memcpy(p + len, suffix, sl);
	p[len + sl] = 0;
	return p;
}

/* Decoded create-family request. */
struct create_req {
	const char *path;
	int32_t path_len;
	const uint8_t *data;
	int32_t data_len;
	struct acl_list *acl;
	int32_t flags;
	int64_t ttl;
};

static int decode_create(struct jute_in *in, int32_t op, struct create_req *r)
{
	jute_get_string(in, &r->path, &r->path_len);
	jute_get_buffer(in, &r->data, &r->data_len);
	r->acl = NULL;
	if (in->err || acl_list_decode(in, &r->acl))
		return ZMARSHALLINGERROR;
	r->flags = jute_get_int(in);
	r->ttl = op == ZOP_CREATE_TTL ? jute_get_long(in) : -1;
	if (in->err || r->path_len < 0) {
		acl_list_free(r->acl);
		r->acl = NULL;
		return ZMARSHALLINGERROR;
	}
	return ZOK;
}

/* At most one quota warning a second; the next one says how many were
 * left out (ZooKeeper's RateLogger). */
static void quota_warn(struct txn_ctx *c, const char *prefix, size_t len,
		       const struct quota_excess *e)
{
	struct sm *sm = c->sm;
	if (sm->quota_log_ms && c->now_ms - sm->quota_log_ms < 1000) {
		sm->quota_log_quiet++;
		return;
	}
	char quiet[64] = "";
	if (sm->quota_log_quiet)
		snprintf(quiet, sizeof quiet, " (and %" PRIu64 " more since the last one)",
			 sm->quota_log_quiet);
	log_write(LOG_LEVEL_WARN, c->s ? c->s->id : 0,
		  "Quota exceeded: %.*s [current %s=%" PRId64 ", %s%sLimit=%" PRId64 "]%s",
		  (int)len, prefix, e->what, e->value, e->hard ? "hard" : "soft",
		  strcmp(e->what, "count") == 0 ? "Count" : "Byte", e->limit, quiet);
	sm->quota_log_ms = c->now_ms;
	sm->quota_log_quiet = 0;
}

/* ZooKeeper's checkQuota (zookeeper.enforceQuota) for a create (count_diff
 * 1) or setData of path, when check; then the change is noted for the
 * later ops of a multi, deletes included, so a multi cannot pass a hard
 * limit that the same ops sent one by one would hit. (ZooKeeper checks
 * each op against the last committed stats only, so a multi of N creates
 * can pass a count limit by N - 1.) Limits are those of the tree before
 * the multi. Returns a ZooKeeper error code. */
static int quota_account(struct txn_ctx *c, const char *path, size_t len, int64_t count_diff,
			 int64_t bytes_diff, bool check)
{
	if (!c->sm->enforce_quota || c->parse_only)
		return ZOK;
	const struct tree_version *w = tree_working(c->sm->tree);
	size_t plen = quota_prefix(w, path, len);
	if (!plen)
		return ZOK;
	struct quota_pending *p = pending_get(&c->ov, path, plen, false);
	if (check) {
		struct quota_check q;
		quota_check(w, path, plen, count_diff, bytes_diff, p ? p->count : 0,
			    p ? p->bytes : 0, &q);
		if (q.verdict == QUOTA_UNREADABLE) {
			/* ZooKeeper's StatsTrack throws; the request fails. */
			log_write(LOG_LEVEL_WARN, c->s ? c->s->id : 0,
				  "quota of %.*s: limits or stats under " QUOTA_ROOT
				  " do not parse, write to %.*s refused",
				  (int)plen, path, (int)len, path);
			return ZMARSHALLINGERROR;
		}
		for (uint32_t i = 0; i < q.n; i++)
			quota_warn(c, path, plen, &q.ex[i]);
		if (q.verdict == QUOTA_HARD) {
			if (c->sm->quota_counters)
				quota_count_exceeded(c->sm->quota_counters, path, len);
			return ZQUOTAEXCEEDED;
		}
	}
	if (!p && !(p = pending_get(&c->ov, path, plen, true)))
		return ZSYSTEMERROR;
	p->count += count_diff;
	p->bytes += bytes_diff;
	return ZOK;
}

static int prep_create(struct txn_ctx *c, int32_t op, struct create_req *r, struct txn_op *t)
{
	int32_t mode = r->flags;
	if (mode < 0 || mode >= ZCM_COUNT)
		return ZBADARGUMENTS;
	if (op == ZOP_CREATE_CONTAINER)
		mode = ZCM_CONTAINER;
	bool ttl_mode =
	    mode == ZCM_PERSISTENT_WITH_TTL || mode == ZCM_PERSISTENT_SEQUENTIAL_WITH_TTL;
	if (op == ZOP_CREATE_TTL || ttl_mode) {
		if (!c->sm->extended_types)
			return ZUNIMPLEMENTED;
		if (op != ZOP_CREATE_TTL || !ttl_mode || r->ttl <= 0 || r->ttl > TTL_MAX_MS)
			return ZBADARGUMENTS;
	} else if (mode == ZCM_CONTAINER && op != ZOP_CREATE_CONTAINER && op != ZOP_CREATE &&
		   op != ZOP_CREATE2) {
		return ZBADARGUMENTS;
	}
	const char *path = r->path;
	size_t len = (size_t)r->path_len;
	if (len == 0 || memchr(path, '/', len) == NULL || memchr(path, 0, len))
		return ZBADARGUMENTS;
	struct acl_list *acl;
	int rc = acl_fixup(r->acl, &c->s->auth, &acl);
	if (rc == -ENOMEM)
		return ZSYSTEMERROR;
	if (rc)
		return ZINVALIDACL;
	size_t plen = parent_len_of(path, len);
	struct node_view parent = view_get(c, path, plen);
	if (!parent.exists || len < 1 || path[0] != '/')
		rc = ZNONODE;
	else if (!allowed(c, parent.acl, ZPERM_CREATE))
		rc = ZNOAUTH;
	if (rc)
		goto err;
	bool sequential = mode == ZCM_PERSISTENT_SEQUENTIAL || mode == ZCM_EPHEMERAL_SEQUENTIAL ||
			  mode == ZCM_PERSISTENT_SEQUENTIAL_WITH_TTL;
	char suffix[16] = "";
	if (sequential)
		snprintf(suffix, sizeof suffix, "%010d", parent.stat.cversion);
	t->path = dup_path(path, len, suffix);
	if (!t->path) {
		rc = ZSYSTEMERROR;
		goto err;
	}
	t->path_len = len + strlen(suffix);
	if (!txn_path_valid(t->path, t->path_len))
		rc = ZBADARGUMENTS;
	else if (view_get(c, t->path, t->path_len).exists)
		rc = ZNODEEXISTS;
	else if (is_normal_ephemeral(parent.stat.ephemeral_owner))
		rc = ZNOCHILDRENFOREPHEMERALS;
	else
		rc = quota_account(c, t->path, t->path_len, 1, r->data_len > 0 ? r->data_len : 0,
				   true);
	if (rc)
		goto err;

	int64_t owner = 0;
	if (mode == ZCM_EPHEMERAL || mode == ZCM_EPHEMERAL_SEQUENTIAL)
		owner = (int64_t)c->s->id;
	else if (mode == ZCM_CONTAINER)
		owner = OWNER_CONTAINER;
	else if (ttl_mode)
		owner = OWNER_TTL_TAG | r->ttl;
	t->op = op;
	t->data = r->data;
	t->data_len = r->data_len;
	t->acl = acl;
	t->owner = owner;
	t->version = parent.stat.cversion + 1;

	struct node_view child = {.exists = true, .acl = acl};
	child.stat = (struct zk_stat){.czxid = c->zxid,
				      .mzxid = c->zxid,
				      .ctime = c->now_ms,
				      .mtime = c->now_ms,
				      .ephemeral_owner = owner,
				      .pzxid = c->zxid,
				      .data_length = r->data_len > 0 ? r->data_len : 0};
	parent.stat.cversion = t->version;
	parent.stat.num_children++;
	parent.stat.pzxid = c->zxid;
	if (ov_set(&c->ov, t->path, t->path_len, &child) || ov_set(&c->ov, path, plen, &parent))
		return ZSYSTEMERROR; /* t->acl and t->path are freed by the caller */
	return ZOK;
err:
	acl_list_free(acl);
	return rc;
}

static bool is_special_path(const char *path, size_t len)
{
	static const char *const special[] = {"/", "/zookeeper", "/zookeeper/quota",
					      "/zookeeper/config"};
	for (size_t i = 0; i < sizeof special / sizeof *special; i++)
		if (strlen(special[i]) == len && memcmp(special[i], path, len) == 0)
			return true;
	return false;
}

static int take_path(struct txn_op *t, const char *path, int32_t len)
{
	t->path = dup_path(path, (size_t)len, NULL);
	t->path_len = (size_t)len;
	return t->path ? ZOK : ZSYSTEMERROR;
}

static int prep_delete(struct txn_ctx *c, int32_t op, struct jute_in *in, struct txn_op *t)
{
	const char *path;
	int32_t len;
	jute_get_string(in, &path, &len);
	int32_t version = jute_get_int(in);
	if (in->err || len < 0)
		return ZMARSHALLINGERROR;
	if (!txn_path_valid(path, (size_t)len) || is_special_path(path, (size_t)len))
		return ZBADARGUMENTS;
	size_t plen = parent_len_of(path, (size_t)len);
	struct node_view parent = view_get(c, path, plen);
	if (!parent.exists)
		return ZNONODE;
	if (!allowed(c, parent.acl, ZPERM_DELETE))
		return ZNOAUTH;
	struct node_view node = view_get(c, path, (size_t)len);
	if (!node.exists)
		return ZNONODE;
	int32_t next;
	int rc = check_version(node.stat.version, version, &next);
	if (rc)
		return rc;
	if (node.stat.num_children > 0)
		return ZNOTEMPTY;
	if (op == ZOP_DELETE_CONTAINER && !txn_owner_is_container(node.stat.ephemeral_owner) &&
	    !txn_owner_ttl(node.stat.ephemeral_owner, NULL))
		return ZBADARGUMENTS;
	rc = quota_account(c, path, (size_t)len, -1, -(int64_t)node.stat.data_length, false);
	if (rc || (rc = take_path(t, path, len)))
		return rc;
	t->op = op;
	t->owner = node.stat.ephemeral_owner;
	parent.stat.num_children--;
	parent.stat.pzxid = c->zxid;
	struct node_view gone = {.exists = false};
	if (ov_set(&c->ov, path, (size_t)len, &gone) || ov_set(&c->ov, path, plen, &parent))
		return ZSYSTEMERROR;
	return ZOK;
}

/* The existing node a setData or check names, if the session may do perm
 * on it; in ZooKeeper's order of checks. */
static int node_for(struct txn_ctx *c, const char *path, int32_t len, int32_t perm,
		    struct node_view *node)
{
	if (!txn_path_valid(path, (size_t)len))
		return ZBADARGUMENTS;
	*node = view_get(c, path, (size_t)len);
	if (!node->exists)
		return ZNONODE;
	if (!allowed(c, node->acl, perm))
		return ZNOAUTH;
	return ZOK;
}

static int prep_set_data(struct txn_ctx *c, struct jute_in *in, struct txn_op *t)
{
	const char *path;
	int32_t len;
	jute_get_string(in, &path, &len);
	jute_get_buffer(in, &t->data, &t->data_len);
	int32_t version = jute_get_int(in);
	if (in->err || len < 0)
		return ZMARSHALLINGERROR;
	struct node_view node;
	int rc = node_for(c, path, len, ZPERM_WRITE, &node);
	if (rc)
		return rc;
	int64_t grown = (int64_t)(t->data_len > 0 ? t->data_len : 0) - node.stat.data_length;
	if ((rc = quota_account(c, path, (size_t)len, 0, grown, true)))
		return rc;
	rc = check_version(node.stat.version, version, &t->version);
	if (rc || (rc = take_path(t, path, len)))
		return rc;
	t->op = ZOP_SET_DATA;
	node.stat.version = t->version;
	node.stat.mzxid = c->zxid;
	node.stat.mtime = c->now_ms;
	node.stat.data_length = t->data_len > 0 ? t->data_len : 0;
	return ov_set(&c->ov, path, (size_t)len, &node) ? ZSYSTEMERROR : ZOK;
}

static int prep_set_acl(struct txn_ctx *c, struct jute_in *in, struct txn_op *t)
{
	const char *path;
	int32_t len;
	struct acl_list *req = NULL;
	jute_get_string(in, &path, &len);
	if (in->err || acl_list_decode(in, &req))
		return ZMARSHALLINGERROR;
	int32_t version = jute_get_int(in);
	int rc = ZOK;
	if (in->err || len < 0)
		rc = ZMARSHALLINGERROR;
	else if (!txn_path_valid(path, (size_t)len))
		rc = ZBADARGUMENTS;
	else if (acl_fixup(req, &c->s->auth, &t->acl))
		rc = ZINVALIDACL;
	acl_list_free(req);
	if (rc)
		return rc;
	struct node_view node = view_get(c, path, (size_t)len);
	if (!node.exists)
		return ZNONODE;
	if (!allowed(c, node.acl, ZPERM_ADMIN))
		return ZNOAUTH;
	rc = check_version(node.stat.aversion, version, &t->version);
	if (rc || (rc = take_path(t, path, len)))
		return rc;
	t->op = ZOP_SET_ACL;
	node.stat.aversion = t->version;
	node.acl = t->acl;
	return ov_set(&c->ov, path, (size_t)len, &node) ? ZSYSTEMERROR : ZOK;
}

static int prep_check(struct txn_ctx *c, struct jute_in *in, struct txn_op *t)
{
	const char *path;
	int32_t len;
	jute_get_string(in, &path, &len);
	int32_t version = jute_get_int(in);
	if (in->err || len < 0)
		return ZMARSHALLINGERROR;
	struct node_view node;
	int rc = node_for(c, path, len, ZPERM_READ, &node);
	if (rc)
		return rc;
	int32_t next;
	rc = check_version(node.stat.version, version, &next);
	if (rc || (rc = take_path(t, path, len)))
		return rc;
	t->op = ZOP_CHECK;
	return ZOK;
}

/* Validate one op from in into t; returns a ZooKeeper error code. */
static int prep_op(struct txn_ctx *c, int32_t op, struct jute_in *in, struct txn_op *t)
{
	switch (op) {
	case ZOP_CREATE:
	case ZOP_CREATE2:
	case ZOP_CREATE_CONTAINER:
	case ZOP_CREATE_TTL: {
		struct create_req r;
		int rc = decode_create(in, op, &r);
		if (rc)
			return rc;
		rc = prep_create(c, op, &r, t);
		acl_list_free(r.acl);
		return rc;
	}
	case ZOP_DELETE:
	case ZOP_DELETE_CONTAINER:
		return prep_delete(c, op, in, t);
	case ZOP_SET_DATA:
		return prep_set_data(c, in, t);
	case ZOP_SET_ACL:
		return prep_set_acl(c, in, t);
	case ZOP_CHECK:
		return prep_check(c, in, t);
	default:
		return ZUNIMPLEMENTED;
	}
}

static void op_release(struct txn_op *t)
{
	free(t->path);
	acl_list_free(t->acl);
	t->path = NULL;
	t->acl = NULL;
}

/* acl: the ACL of the node the event is about (see struct sm_sink). */
static void emit(struct sm_sink *sink, enum zk_event_type type, const char *path, size_t len,
		 int64_t zxid, const struct znode *about)
{
	if (sink && sink->event)
		sink->event(sink->ctx, type, path, len, zxid, about->acl->list);
}

static int32_t data_len_of(const struct znode *n)
{
	return n->data ? n->stat.data_length : -1;
}

static const struct znode *working_node(const struct tree *tree, const char *path, size_t len)
{
	const struct znode *n = tree_lookup(tree_working(tree), path, len);
	RK_ASSERT(n);
	return n;
}

/* Apply a validated op to the tree; fills st with the node's new stat. */
static void apply_op(struct txn_ctx *c, const struct txn_op *t, struct sm_sink *sink,
		     struct zk_stat *st)
{
	struct tree *tree = c->sm->tree;
	size_t plen = t->path_len > 1 ? parent_len_of(t->path, t->path_len) : 1;
	const struct znode *n = NULL;
	bool quotas;
	int32_t old_len = 0;
	switch (t->op) {
	case ZOP_CREATE:
	case ZOP_CREATE2:
	case ZOP_CREATE_CONTAINER:
	case ZOP_CREATE_TTL:
		tree_node_create(tree, t->path, t->path_len, t->data, t->data_len, t->acl, t->owner,
				 c->zxid, c->now_ms, t->version);
		if (quota_any(tree_working(tree)))
			quota_apply_create(tree, t->path, t->path_len, t->data_len);
		if (is_normal_ephemeral(t->owner)) {
			struct session *owner = session_find(c->sm->sessions, (uint64_t)t->owner);
			RK_ASSERT(owner);
			RK_ASSERT(session_ephemeral_add(c->sm->sessions, owner, t->path,
							t->path_len) == 0);
		}
		emit(sink, ZEV_NODE_CREATED, t->path, t->path_len, c->zxid,
		     working_node(tree, t->path, t->path_len));
		emit(sink, ZEV_NODE_CHILDREN_CHANGED, t->path, plen, c->zxid,
		     working_node(tree, t->path, plen));
		break;
	case ZOP_DELETE:
	case ZOP_DELETE_CONTAINER:
		/* The deleted node's ACL is retired with it, not freed: the
		 * event may still point to it. */
		n = working_node(tree, t->path, t->path_len);
		quotas = quota_any(tree_working(tree));
		tree_node_delete(tree, t->path, t->path_len, c->zxid);
		if (quotas)
			quota_apply_delete(tree, t->path, t->path_len, data_len_of(n));
		if (is_normal_ephemeral(t->owner)) {
			struct session *owner = session_find(c->sm->sessions, (uint64_t)t->owner);
			if (owner)
				session_ephemeral_del(c->sm->sessions, owner, t->path, t->path_len);
		}
		emit(sink, ZEV_NODE_DELETED, t->path, t->path_len, c->zxid, n);
		emit(sink, ZEV_NODE_CHILDREN_CHANGED, t->path, plen, c->zxid,
		     working_node(tree, t->path, plen));
		return;
	case ZOP_SET_DATA:
		quotas = quota_any(tree_working(tree));
		if (quotas)
			old_len = data_len_of(working_node(tree, t->path, t->path_len));
		tree_node_set_data(tree, t->path, t->path_len, t->data, t->data_len, c->zxid,
				   c->now_ms, t->version);
		if (quotas)
			quota_apply_set_data(tree, t->path, t->path_len, old_len, t->data_len);
		emit(sink, ZEV_NODE_DATA_CHANGED, t->path, t->path_len, c->zxid,
		     working_node(tree, t->path, t->path_len));
		break;
	case ZOP_SET_ACL:
		tree_node_set_acl(tree, t->path, t->path_len, t->acl, t->version);
		break;
	default:
		break;
	}
	n = tree_lookup(tree_working(tree), t->path, t->path_len);
	if (n && st)
		*st = n->stat;
}

/* The reply body of a successful single op. */
static void put_result(struct jute_out *out, const struct txn_op *t, const struct zk_stat *st)
{
	switch (t->op) {
	case ZOP_CREATE:
		jute_put_string(out, t->path, (int32_t)t->path_len);
		break;
	case ZOP_CREATE2:
	case ZOP_CREATE_CONTAINER:
	case ZOP_CREATE_TTL:
		jute_put_string(out, t->path, (int32_t)t->path_len);
		proto_put_stat(out, st);
		break;
	case ZOP_SET_DATA:
	case ZOP_SET_ACL:
		proto_put_stat(out, st);
		break;
	default:
		break;
	}
}

/* ---- the log ---- */

static uint32_t txn_type_of(int32_t op)
{
	switch (op) {
	case ZOP_CREATE:
	case ZOP_CREATE2:
	case ZOP_CREATE_CONTAINER:
	case ZOP_CREATE_TTL:
		return TXN_CREATE;
	case ZOP_DELETE:
	case ZOP_DELETE_CONTAINER:
		return TXN_DELETE;
	case ZOP_SET_DATA:
		return TXN_SET_DATA;
	case ZOP_SET_ACL:
		return TXN_SET_ACL;
	default:
		return TXN_TYPE_COUNT; /* check: changes nothing, logs nothing */
	}
}

static void encode_op(struct jute_out *out, const struct txn_op *t)
{
	jute_put_string(out, t->path, (int32_t)t->path_len);
	switch (txn_type_of(t->op)) {
	case TXN_CREATE:
		jute_put_buffer(out, t->data, t->data_len);
		acl_list_encode(out, t->acl);
		jute_put_long(out, t->owner);
		jute_put_int(out, t->version);
		break;
	case TXN_SET_DATA:
		jute_put_buffer(out, t->data, t->data_len);
		jute_put_int(out, t->version);
		break;
	case TXN_SET_ACL:
		acl_list_encode(out, t->acl);
		jute_put_int(out, t->version);
		break;
	default:
		break;
	}
}

static bool log_begin(struct sm *sm, struct jute_out *out, int64_t time_ms)
{
	if (!sm->log)
		return false;
	jute_out_init(out, 256, SIZE_MAX / 2);
	jute_put_long(out, time_ms);
	return true;
}

static void log_end(struct sm *sm, struct jute_out *out, int64_t zxid, uint32_t type)
{
	RK_ASSERT(out->err == 0);
	sm->log->record(sm->log->ctx, zxid, type, out->buf, (uint32_t)out->len);
	jute_out_free(out);
}

static void log_error_txn(struct txn_ctx *c, int32_t err)
{
	struct jute_out out;
	if (!log_begin(c->sm, &out, c->now_ms))
		return;
	jute_put_int(&out, err);
	log_end(c->sm, &out, c->zxid, TXN_ERROR);
}

static void log_single(struct txn_ctx *c, const struct txn_op *t)
{
	uint32_t type = txn_type_of(t->op);
	struct jute_out out;
	if (type == TXN_TYPE_COUNT) {
		log_error_txn(c, ZOK);
		return;
	}
	if (!log_begin(c->sm, &out, c->now_ms))
		return;
	encode_op(&out, t);
	log_end(c->sm, &out, c->zxid, type);
}

static void log_multi(struct txn_ctx *c, const struct txn_op *ops, size_t n)
{
	struct jute_out out;
	if (!log_begin(c->sm, &out, c->now_ms))
		return;
	size_t count_at = out.len;
	int32_t count = 0;
	jute_put_int(&out, 0);
	for (size_t i = 0; i < n; i++) {
		uint32_t type = txn_type_of(ops[i].op);
		if (type == TXN_TYPE_COUNT)
			continue;
		jute_put_int(&out, (int32_t)type);
		encode_op(&out, &ops[i]);
		count++;
	}
	jute_patch_int(&out, count_at, count);
	log_end(c->sm, &out, c->zxid, TXN_MULTI);
}

static int64_t next_zxid(struct sm *sm)
{
	sm->zxid++;
	tree_set_zxid(sm->tree, sm->zxid);
	return sm->zxid;
}

static void write_single(struct txn_ctx *c, int32_t xid, int32_t op, struct jute_in *in,
			 struct jute_out *reply, struct sm_sink *sink)
{
	struct txn_op t = {0};
	int rc = prep_op(c, op, in, &t);
	struct zk_stat st = {0};
	if (rc == ZOK) {
		log_single(c, &t);
		apply_op(c, &t, sink, &st);
	} else {
		log_error_txn(c, rc);
	}
	size_t at = proto_reply_begin(reply, xid, c->zxid, rc);
	if (rc == ZOK)
		put_result(reply, &t, &st);
	proto_frame_end(reply, at);
	op_release(&t);
}

#define MULTI_OPS_MAX 100000

struct multi_hdr {
	int32_t type;
	bool done;
	int32_t err;
};

static struct multi_hdr get_multi_hdr(struct jute_in *in)
{
	struct multi_hdr h;
	h.type = jute_get_int(in);
	h.done = jute_get_bool(in);
	h.err = jute_get_int(in);
	return h;
}

static void put_multi_hdr(struct jute_out *out, int32_t type, bool done, int32_t err)
{
	jute_put_int(out, type);
	jute_put_bool(out, done);
	jute_put_int(out, err);
}

/* ZooKeeper's multi: ops before a failing one report OK, the failing one
 * its error, the ones after it RUNTIMEINCONSISTENCY; nothing is applied. */
static void write_multi(struct txn_ctx *c, int32_t xid, struct jute_in *in, struct jute_out *reply,
			struct sm_sink *sink)
{
	struct txn_op *ops = NULL;
	size_t n = 0, cap = 0;
	int failed_at = -1, rc = ZOK;
	for (;;) {
		struct multi_hdr h = get_multi_hdr(in);
		if (in->err) {
			rc = ZMARSHALLINGERROR;
			break;
		}
		if (h.done)
			break;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			struct txn_op *no =
			    cap <= MULTI_OPS_MAX ? realloc(ops, cap * sizeof *no) : NULL;
			if (!no) {
				rc = ZSYSTEMERROR;
				break;
			}
			ops = no;
		}
		struct txn_op *t = &ops[n++];
		memset(t, 0, sizeof *t);
		if (failed_at >= 0) {
			/* Still parse the op to reach the next header. */
			struct txn_ctx scratch = *c;
			scratch.ov = (struct overlay){0};
			scratch.parse_only = true;
			struct txn_op skip = {0};
			int prc = prep_op(&scratch, h.type, in, &skip);
			op_release(&skip);
			ov_free(&scratch.ov);
			if (prc == ZMARSHALLINGERROR || prc == ZUNIMPLEMENTED) {
				rc = ZMARSHALLINGERROR;
				break;
			}
			t->op = ZOP_ERROR;
			t->err = ZRUNTIMEINCONSISTENCY;
			continue;
		}
		int prc = prep_op(c, h.type, in, t);
		if (prc == ZMARSHALLINGERROR || prc == ZUNIMPLEMENTED) {
			rc = prc;
			break;
		}
		if (prc) {
			op_release(t);
			t->op = ZOP_ERROR;
			t->err = prc;
			failed_at = (int)(n - 1);
		}
	}
	if (rc) {
		log_error_txn(c, rc);
		size_t at = proto_reply_begin(reply, xid, c->zxid, rc);
		proto_frame_end(reply, at);
		goto out;
	}
	if (failed_at >= 0)
		log_error_txn(c, ops[failed_at].err);
	else
		log_multi(c, ops, n);
	size_t at = proto_reply_begin(reply, xid, c->zxid, ZOK);
	for (size_t i = 0; i < n; i++) {
		struct txn_op *t = &ops[i];
		if (failed_at >= 0) {
			int32_t err = (int)i < failed_at ? ZOK : t->err;
			put_multi_hdr(reply, ZOP_ERROR, false, err);
			jute_put_int(reply, err);
			continue;
		}
		struct zk_stat st = {0};
		apply_op(c, t, sink, &st);
		put_multi_hdr(reply, t->op, false, 0);
		put_result(reply, t, &st);
	}
	put_multi_hdr(reply, -1, true, -1);
	proto_frame_end(reply, at);
out:
	for (size_t i = 0; i < n; i++)
		op_release(&ops[i]);
	free(ops);
}

/* ZooKeeper 3.8's PrepRequestProcessor: reconfig is disabled unless
 * reconfigEnabled, and then unimplemented on a standalone server; either
 * way it is an error txn that takes a zxid. Dynamic reconfiguration of an
 * ensemble is not implemented, so an ensemble says disabled. */
static void write_reconfig(struct txn_ctx *c, int32_t xid, struct jute_out *reply)
{
	int32_t err = c->sm->reconfig_enabled ? ZUNIMPLEMENTED : ZRECONFIGDISABLED;
	log_error_txn(c, err);
	size_t at = proto_reply_begin(reply, xid, c->zxid, err);
	proto_frame_end(reply, at);
}

void sm_write(struct sm *sm, struct session *s, int32_t xid, int32_t op, const uint8_t *body,
	      size_t len, int64_t now_ms, struct jute_out *reply, struct sm_sink *sink)
{
	struct jute_in in = jute_in_make(body, len);
	if (op == ZOP_SYNC) {
		const char *path;
		int32_t plen;
		jute_get_string(&in, &path, &plen);
		int rc = in.err || plen < 0 ? ZMARSHALLINGERROR : ZOK;
		size_t at = proto_reply_begin(reply, xid, sm->zxid, rc);
		if (rc == ZOK)
			jute_put_string(reply, path, plen);
		proto_frame_end(reply, at);
		return;
	}
	struct txn_ctx c = {.sm = sm, .s = s, .zxid = next_zxid(sm), .now_ms = now_ms};
	if (op == ZOP_RECONFIG)
		write_reconfig(&c, xid, reply);
	else if (op == ZOP_MULTI)
		write_multi(&c, xid, &in, reply, sink);
	else
		write_single(&c, xid, op, &in, reply, sink);
	ov_free(&c.ov);
}

struct session *sm_open_session(struct sm *sm, int32_t timeout_ms, uint16_t core, int64_t now_ms)
{
	struct session *s = session_open(sm->sessions, timeout_ms, core, now_ms);
	if (!s)
		return NULL;
	int64_t zxid = next_zxid(sm);
	struct jute_out out;
	if (log_begin(sm, &out, now_ms)) {
		jute_put_long(&out, (int64_t)s->id);
		jute_put_int(&out, s->timeout_ms);
		jute_put_buffer(&out, s->passwd, ZK_PASSWORD_BYTES);
		log_end(sm, &out, zxid, TXN_CREATE_SESSION);
	}
	return s;
}

struct path_list {
	char **paths;
	size_t *lens;
	size_t n;
};

static int collect_path(void *ctx, const void *key, size_t len, void *val)
{
	struct path_list *l = ctx;
	l->paths[l->n] = dup_path(key, len, NULL);
	RK_ASSERT(l->paths[l->n]);
	l->lens[l->n++] = len;
	return 0;
}

int64_t sm_close_session(struct sm *sm, struct session *s, int64_t now_ms, struct sm_sink *sink)
{
	int64_t zxid = next_zxid(sm);
	struct jute_out out;
	if (log_begin(sm, &out, now_ms)) {
		jute_put_long(&out, (int64_t)s->id);
		log_end(sm, &out, zxid, TXN_CLOSE_SESSION);
	}
	size_t count = s->ephemerals.count;
	struct path_list l = {calloc(count + 1, sizeof(char *)), calloc(count + 1, sizeof(size_t)),
			      0};
	RK_ASSERT(l.paths && l.lens);
	hamt_foreach(&s->ephemerals, collect_path, &l);
	struct txn_ctx c = {.sm = sm, .s = s, .zxid = zxid, .now_ms = now_ms};
	for (size_t i = 0; i < l.n; i++) {
		struct txn_op t = {.op = ZOP_DELETE,
				   .path = l.paths[i],
				   .path_len = l.lens[i],
				   .owner = (int64_t)s->id};
		if (tree_lookup(tree_working(sm->tree), t.path, t.path_len))
			apply_op(&c, &t, sink, NULL);
		free(l.paths[i]);
	}
	free(l.paths);
	free(l.lens);
	session_remove(sm->sessions, s);
	return zxid;
}

/* ---- recovery ---- */

/* A logged op must fit the state it replays onto; a log that says
 * otherwise is corrupt, and recovery must fail rather than assert. */
static bool replay_applies(struct txn_ctx *c, const struct txn_op *t)
{
	const struct tree_version *w = tree_working(c->sm->tree);
	if (!txn_path_valid(t->path, t->path_len) || t->path_len < 2)
		return false;
	const struct znode *n = tree_lookup(w, t->path, t->path_len);
	if (t->op != ZOP_CREATE)
		return n && (t->op != ZOP_DELETE || n->children.count == 0);
	if (n || !tree_lookup(w, t->path, parent_len_of(t->path, t->path_len)))
		return false;
	return !is_normal_ephemeral(t->owner) || session_find(c->sm->sessions, (uint64_t)t->owner);
}

static int replay_op(struct txn_ctx *c, uint32_t type, struct jute_in *in, struct sm_sink *sink)
{
	struct txn_op t = {0};
	const char *path;
	int32_t plen;
	jute_get_string(in, &path, &plen);
	if (in->err || plen <= 0)
		return -EBADMSG;
	t.path = dup_path(path, (size_t)plen, NULL);
	t.path_len = (size_t)plen;
	if (!t.path)
		return -ENOMEM;
	int rc = 0;
	switch (type) {
	case TXN_CREATE:
		t.op = ZOP_CREATE;
		jute_get_buffer(in, &t.data, &t.data_len);
		if (in->err || acl_list_decode(in, &t.acl))
			rc = -EBADMSG;
		t.owner = jute_get_long(in);
		t.version = jute_get_int(in);
		break;
	case TXN_DELETE: {
		t.op = ZOP_DELETE;
		const struct znode *n = tree_lookup(tree_working(c->sm->tree), t.path, t.path_len);
		t.owner = n ? n->stat.ephemeral_owner : 0;
		break;
	}
	case TXN_SET_DATA:
		t.op = ZOP_SET_DATA;
		jute_get_buffer(in, &t.data, &t.data_len);
		t.version = jute_get_int(in);
		break;
	case TXN_SET_ACL:
		t.op = ZOP_SET_ACL;
		if (acl_list_decode(in, &t.acl))
			rc = -EBADMSG;
		t.version = jute_get_int(in);
		break;
	default:
		rc = -EBADMSG;
	}
	if (rc == 0 && in->err)
		rc = -EBADMSG;
	if (rc == 0 && !replay_applies(c, &t))
		rc = -EBADMSG;
	if (rc == 0)
		apply_op(c, &t, sink, NULL);
	op_release(&t);
	return rc;
}

int sm_replay(struct sm *sm, int64_t zxid, uint32_t type, const void *payload, uint32_t len)
{
	return sm_apply(sm, zxid, type, payload, len, NULL);
}

int sm_apply(struct sm *sm, int64_t zxid, uint32_t type, const void *payload, uint32_t len,
	     struct sm_sink *sink)
{
	struct jute_in in = jute_in_make(payload, len);
	int64_t time_ms = jute_get_long(&in);
	if (in.err || zxid <= sm->zxid)
		return -EBADMSG;
	sm->zxid = zxid;
	tree_set_zxid(sm->tree, zxid);
	struct txn_ctx c = {.sm = sm, .zxid = zxid, .now_ms = time_ms};
	switch (type) {
	case TXN_ERROR:
		return 0;
	case TXN_CREATE_SESSION: {
		int64_t id = jute_get_long(&in);
		int32_t timeout = jute_get_int(&in);
		const uint8_t *pw;
		int32_t pwlen;
		jute_get_buffer(&in, &pw, &pwlen);
		if (in.err || pwlen != ZK_PASSWORD_BYTES)
			return -EBADMSG;
		return session_restore(sm->sessions, (uint64_t)id, timeout, pw, time_ms) ? 0
											 : -EBADMSG;
	}
	case TXN_CLOSE_SESSION: {
		int64_t id = jute_get_long(&in);
		struct session *s = session_find(sm->sessions, (uint64_t)id);
		if (in.err || !s)
			return -EBADMSG;
		sm->zxid = zxid - 1; /* sm_close_session assigns this zxid again */
		struct sm_log *log = sm->log;
		sm->log = NULL;
		sm_close_session(sm, s, time_ms, sink);
		sm->log = log;
		return 0;
	}
	case TXN_MULTI: {
		int32_t n = jute_get_vector_len(&in, 8);
		for (int32_t i = 0; i < n && !in.err; i++) {
			int rc = replay_op(&c, (uint32_t)jute_get_int(&in), &in, sink);
			if (rc)
				return rc;
		}
		return in.err ? -EBADMSG : 0;
	}
	default:
		return replay_op(&c, type, &in, sink);
	}
}
