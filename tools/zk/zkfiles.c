/* Reading ZooKeeper's snapshot and txn log files for ringkeeper-import:
 * listing a dataDir, parsing and verifying a snapshot into a zktree, and
 * replaying the verified log records after it. See zkfiles.h. */
#include "tools/zk/zkfiles.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/jute.h"
#include "core/txn.h"

/* ---- small facts ---- */

uint32_t zk_adler32(uint32_t adler, const uint8_t *p, size_t n)
{
	/* 5552 is the most bytes whose sums cannot overflow 32 bits. */
	uint32_t a = adler & 0xffff, b = adler >> 16;
	while (n) {
		size_t k = n < 5552 ? n : 5552;
		n -= k;
		while (k--) {
			a += *p++;
			b += a;
		}
		a %= 65521;
		b %= 65521;
	}
	return b << 16 | a;
}

void zk_session_password(int64_t id, uint8_t out[16])
{
	/* java.util.Random: a 48-bit LCG; nextBytes takes each nextInt()'s
	 * bytes lowest first. */
	const uint64_t mult = 0x5deece66dull, mask = (1ull << 48) - 1;
	uint64_t seed = ((uint64_t)id ^ 0xb3415c00ull ^ mult) & mask;
	for (int i = 0; i < 16;) {
		seed = (seed * mult + 0xb) & mask;
		uint32_t rnd = (uint32_t)(seed >> 16);
		for (int k = 0; k < 4 && i < 16; k++, rnd >>= 8)
			out[i++] = (uint8_t)rnd;
	}
}

static void fault_set(struct zk_fault *f, const char *file, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fault_set(struct zk_fault *f, const char *file, uint64_t off, const char *fmt, ...)
{
	snprintf(f->file, sizeof f->file, "%s", file);
	f->off = off;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->what, sizeof f->what, fmt, ap);
	va_end(ap);
}

/* ---- listing ---- */

/* "<prefix>.<hex>[.<suffix>]" as Util.getZxidFromName reads it. */
static bool parse_name(const char *name, const char *prefix, int64_t *zxid, const char **suffix)
{
	size_t pl = strlen(prefix);
	if (strncmp(name, prefix, pl) != 0 || name[pl] != '.')
		return false;
	const char *p = name + pl + 1;
	uint64_t v = 0;
	size_t digits = 0;
	for (; *p && *p != '.'; p++, digits++) {
		int d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			return false;
		v = v << 4 | (uint64_t)d;
	}
	if (digits == 0 || digits > 16)
		return false;
	*zxid = (int64_t)v;
	*suffix = *p ? p + 1 : "";
	return true;
}

static int add_file(struct zk_file **v, size_t *n, size_t *cap, const char *dir, const char *name,
		    enum zk_file_kind kind, int64_t zxid)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		struct zk_file *nv = realloc(*v, c * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	struct zk_file *f = &(*v)[(*n)++];
	int len = snprintf(f->path, sizeof f->path, "%s/%s", dir, name);
	if (len < 0 || (size_t)len >= sizeof f->path)
		return -ENAMETOOLONG;
	f->name = f->path + len - strlen(name);
	f->kind = kind;
	f->zxid = zxid;
	return 0;
}

static int by_zxid_asc(const void *a, const void *b)
{
	int64_t x = ((const struct zk_file *)a)->zxid, y = ((const struct zk_file *)b)->zxid;
	return (x > y) - (x < y);
}

static int by_zxid_desc(const void *a, const void *b)
{
	return by_zxid_asc(b, a);
}

static int list_dir(const char *dir, bool snaps, struct zk_listing *out, char *err, size_t errlen)
{
	DIR *dh = opendir(dir);
	if (!dh) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(e));
		return -e;
	}
	size_t cap = 0;
	int rc = 0;
	struct dirent *e;
	while (!rc && (e = readdir(dh))) {
		int64_t zxid;
		const char *suffix;
		if (snaps && parse_name(e->d_name, "snapshot", &zxid, &suffix)) {
			enum zk_file_kind kind = ZK_FILE_SNAPSHOT;
			if (strcmp(suffix, "gz") == 0)
				kind = ZK_FILE_SNAPSHOT_GZIP;
			else if (strcmp(suffix, "snappy") == 0)
				kind = ZK_FILE_SNAPSHOT_SNAPPY;
			else if (*suffix)
				continue;
			rc = add_file(&out->snaps, &out->n_snaps, &cap, dir, e->d_name, kind, zxid);
		} else if (!snaps && parse_name(e->d_name, "log", &zxid, &suffix) && !*suffix) {
			rc = add_file(&out->logs, &out->n_logs, &cap, dir, e->d_name, ZK_FILE_LOG,
				      zxid);
		}
	}
	closedir(dh);
	if (rc)
		snprintf(err, errlen, "%s: %s", dir, strerror(-rc));
	return rc;
}

int zkfiles_list(const char *snap_dir, const char *log_dir, struct zk_listing *out, char *err,
		 size_t errlen)
{
	*out = (struct zk_listing){0};
	int rc = list_dir(snap_dir, true, out, err, errlen);
	if (!rc)
		rc = list_dir(log_dir, false, out, err, errlen);
	if (rc) {
		zkfiles_listing_free(out);
		return rc;
	}
	if (out->n_snaps > 1)
		qsort(out->snaps, out->n_snaps, sizeof *out->snaps, by_zxid_desc);
	if (out->n_logs > 1)
		qsort(out->logs, out->n_logs, sizeof *out->logs, by_zxid_asc);
	return 0;
}

void zkfiles_listing_free(struct zk_listing *l)
{
	free(l->snaps);
	free(l->logs);
	*l = (struct zk_listing){0};
}

/* ---- mapped files ---- */

struct mapped {
	const uint8_t *p;
	size_t len;
};

static int map_file(const char *path, struct mapped *m, struct zk_fault *fault)
{
	*m = (struct mapped){0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		int e = errno;
		fault_set(fault, path, 0, "cannot read: %s", strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	m->len = (size_t)st.st_size;
	if (m->len) {
		void *p = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			int e = errno;
			close(fd);
			fault_set(fault, path, 0, "cannot map: %s", strerror(e));
			return -e;
		}
		madvise(p, m->len, MADV_SEQUENTIAL);
		m->p = p;
	}
	close(fd);
	return 0;
}

static void unmap_file(struct mapped *m)
{
	if (m->len)
		munmap((void *)m->p, m->len);
	*m = (struct mapped){0};
}

/* ---- snapshots ---- */

struct snap_reader {
	const struct zk_file *f;
	struct jute_in in;
	struct zktree *t;
	struct zk_fault *fault;
	uint64_t nodes;
};

static int snap_bad(struct snap_reader *r, size_t off, const char *what)
{
	fault_set(r->fault, r->f->path, off, "%s", what);
	return -EBADMSG;
}

static int snap_header(struct snap_reader *r)
{
	uint32_t magic = (uint32_t)jute_get_int(&r->in);
	int32_t version = jute_get_int(&r->in);
	jute_get_long(&r->in); /* dbid: -1 in every snapshot */
	if (r->in.err)
		return snap_bad(r, 0, "shorter than a file header");
	if (magic != ZK_SNAP_MAGIC)
		return snap_bad(r, 0, "not a ZooKeeper snapshot (magic is not \"ZKSN\")");
	if (version != ZK_FILE_VERSION)
		return snap_bad(r, 4, "file header version is not 2");
	return 0;
}

static int snap_sessions(struct snap_reader *r)
{
	size_t at = r->in.off;
	int32_t n = jute_get_vector_len(&r->in, 12);
	if (r->in.err)
		return snap_bad(r, at, "session count larger than the file");
	for (int32_t i = 0; i < n; i++) {
		at = r->in.off;
		int64_t id = jute_get_long(&r->in);
		int32_t timeout = jute_get_int(&r->in);
		if (r->in.err)
			return snap_bad(r, at, "session record cut short");
		if (zktree_session_put(r->t, id, timeout))
			return -ENOMEM;
	}
	return 0;
}

/* A vector<ACL>; a null one (-1) is refused, as ReferenceCountedACLCache
 * refuses it. */
static int snap_acl_cache(struct snap_reader *r)
{
	size_t at = r->in.off;
	int32_t n = jute_get_vector_len(&r->in, 8 + 4);
	if (r->in.err)
		return snap_bad(r, at, "ACL cache size larger than the file");
	for (int32_t i = 0; i < n; i++) {
		at = r->in.off;
		int64_t id = jute_get_long(&r->in);
		if (!r->in.err && jute_remaining(&r->in) >= 4 &&
		    (int32_t)jute_be32_get(r->in.p + r->in.off) == -1)
			return snap_bad(r, at, "ACL cache entry with a null ACL list");
		struct acl_list *list = NULL;
		int rc = r->in.err ? -EBADMSG : acl_list_decode(&r->in, &list);
		if (rc == -ENOMEM)
			return rc;
		if (rc)
			return snap_bad(r, at,
					rc == -EINVAL ? "ACL with a NUL byte in a string"
						      : "ACL cache entry cut short or malformed");
		rc = zktree_acl_define(r->t, id, list);
		if (rc == -EEXIST)
			return snap_bad(r, at, "ACL cache id defined twice");
		if (rc)
			return rc;
	}
	return 0;
}

static void get_stat_persisted(struct jute_in *in, struct zk_stat_persisted *st)
{
	st->czxid = jute_get_long(in);
	st->mzxid = jute_get_long(in);
	st->ctime = jute_get_long(in);
	st->mtime = jute_get_long(in);
	st->version = jute_get_int(in);
	st->cversion = jute_get_int(in);
	st->aversion = jute_get_int(in);
	st->ephemeral_owner = jute_get_long(in);
	st->pzxid = jute_get_long(in);
}

/* The nodes up to the terminating path "/". */
static int snap_nodes(struct snap_reader *r)
{
	for (;;) {
		size_t at = r->in.off;
		const char *path;
		int32_t path_len;
		jute_get_string(&r->in, &path, &path_len);
		if (r->in.err || path_len < 0)
			return snap_bad(r, at, "node path cut short or null");
		if (path_len == 1 && path[0] == '/')
			return r->nodes ? 0 : snap_bad(r, at, "no root node");
		const uint8_t *data;
		int32_t data_len;
		jute_get_buffer(&r->in, &data, &data_len);
		int64_t acl = jute_get_long(&r->in);
		struct zk_stat_persisted st;
		get_stat_persisted(&r->in, &st);
		if (r->in.err)
			return snap_bad(r, at, "node record cut short");
		if (r->nodes == 0 && path_len != 0)
			return snap_bad(r, at, "the first node is not the root");
		const char *why = NULL;
		int rc =
		    zktree_load_node(r->t, path, (size_t)path_len, data, data_len, acl, &st, &why);
		if (rc == -EINVAL) {
			fault_set(r->fault, r->f->path, at, "node %.*s: %s", path_len, path, why);
			return -EBADMSG;
		}
		if (rc)
			return rc;
		r->nodes++;
	}
}

/* int64 Adler32 of every byte before it, then the string "/". */
static int snap_seal(struct snap_reader *r, const char *what)
{
	size_t at = r->in.off;
	int64_t stored = jute_get_long(&r->in);
	const char *slash;
	int32_t slash_len;
	jute_get_string(&r->in, &slash, &slash_len);
	if (r->in.err || slash_len != 1 || slash[0] != '/') {
		fault_set(r->fault, r->f->path, at, "%s: no checksum seal", what);
		return -EBADMSG;
	}
	uint32_t sum = zk_adler32(1, r->in.p, at);
	if ((uint64_t)stored != sum) {
		fault_set(r->fault, r->f->path, at,
			  "%s: checksum mismatch (Adler32 of bytes 0..%zu is %08x, the seal says "
			  "%08" PRIx64 ")",
			  what, at, sum, (uint64_t)stored);
		return -EBADMSG;
	}
	return 0;
}

/* What may follow the first seal: a digest (3.6+) and the last processed
 * zxid (3.9.3+), each with its own seal. */
static int snap_trailer(struct snap_reader *r)
{
	const size_t seal = 8 + 4 + 1;
	if (jute_remaining(&r->in) > 0 && jute_remaining(&r->in) != 8 + seal) {
		size_t at = r->in.off;
		jute_get_long(&r->in); /* the digest's zxid */
		int32_t version = jute_get_int(&r->in);
		if (version < 2) {
			const char *hex;
			int32_t hex_len;
			jute_get_string(&r->in, &hex, &hex_len);
		} else {
			jute_get_long(&r->in);
		}
		if (r->in.err)
			return snap_bad(r, at, "digest after the seal cut short");
		int rc = snap_seal(r, "digest");
		if (rc)
			return rc;
	}
	if (jute_remaining(&r->in) == 8 + seal) {
		/* Restore reads the zxid from the file name; this copy only
		 * has to verify. */
		jute_get_long(&r->in);
		int rc = snap_seal(r, "last processed zxid");
		if (rc)
			return rc;
	}
	if (jute_remaining(&r->in) > 0)
		return snap_bad(r, r->in.off, "unexpected bytes after the last seal");
	return 0;
}

int zksnap_load(const struct zk_file *f, struct zktree *t, struct zk_fault *fault)
{
	if (f->kind != ZK_FILE_SNAPSHOT) {
		fault_set(fault, f->path, 0,
			  "compressed snapshot (zookeeper.snapshot.compression.method); "
			  "ringkeeper-import reads uncompressed ones only");
		return -ENOTSUP;
	}
	struct mapped m;
	int rc = map_file(f->path, &m, fault);
	if (rc)
		return rc;
	struct snap_reader r = {.f = f, .in = jute_in_make(m.p, m.len), .t = t, .fault = fault};
	zktree_set_zxid(t, f->zxid);
	if (!(rc = snap_header(&r)) && !(rc = snap_sessions(&r)) && !(rc = snap_acl_cache(&r)) &&
	    !(rc = snap_nodes(&r)) && !(rc = snap_seal(&r, "snapshot")))
		rc = snap_trailer(&r);
	if (rc == -ENOMEM)
		fault_set(fault, f->path, r.in.off, "out of memory");
	unmap_file(&m);
	return rc;
}

/* ---- txn records ---- */

struct txn_reader {
	struct jute_in in;
	const char *why; /* what did not decode */
};

static bool get_path(struct txn_reader *r, struct zk_txn_op *op)
{
	jute_get_string(&r->in, &op->path, &op->path_len);
	if (r->in.err || op->path_len < 1 || !txn_path_valid(op->path, (size_t)op->path_len)) {
		r->why = r->in.err ? "a path cut short" : "an invalid path";
		return false;
	}
	return true;
}

static bool get_acl(struct txn_reader *r, struct zk_txn_op *op)
{
	if (jute_remaining(&r->in) >= 4 && (int32_t)jute_be32_get(r->in.p + r->in.off) == -1) {
		r->in.off += 4;
		op->acl_null = true;
		return true;
	}
	int rc = acl_list_decode(&r->in, &op->acl);
	if (rc) {
		r->why = rc == -ENOMEM ? "out of memory" : "an ACL that does not decode";
		return false;
	}
	return true;
}

/* A create's record: CreateTxn, CreateTTLTxn or CreateContainerTxn. */
static bool get_create(struct txn_reader *r, struct zk_txn_op *op)
{
	if (!get_path(r, op))
		return false;
	jute_get_buffer(&r->in, &op->data, &op->data_len);
	if (r->in.err || !get_acl(r, op))
		return false;
	if (op->type == ZOP_CREATE || op->type == ZOP_CREATE2)
		op->ephemeral = jute_get_bool(&r->in);
	op->parent_cversion = jute_get_int(&r->in);
	if (op->type == ZOP_CREATE_TTL) {
		op->ttl_ms = jute_get_long(&r->in);
		if (!r->in.err && (op->ttl_ms <= 0 || op->ttl_ms > 0xffffffffffffll)) {
			r->why = "a TTL out of range";
			return false;
		}
	}
	return !r->in.err;
}

/* CreateTxnV0, from before parentCVersion: replayed with -1, which makes
 * the parent's count go up by one. */
static bool get_create_v0(struct txn_reader *r, struct zk_txn_op *op)
{
	if (!get_path(r, op))
		return false;
	jute_get_buffer(&r->in, &op->data, &op->data_len);
	if (r->in.err || !get_acl(r, op))
		return false;
	op->ephemeral = jute_get_bool(&r->in);
	op->parent_cversion = -1;
	return !r->in.err;
}

/* CloseSessionTxn (3.6+): vector<ustring> paths2Delete, each checked. */
static bool get_close_paths(struct txn_reader *r, struct zk_txn_op *op)
{
	struct jute_in probe = r->in;
	int32_t n = jute_get_vector_len(&probe, 4);
	size_t start = probe.off;
	for (int32_t i = 0; i < n && !probe.err; i++) {
		const char *p;
		int32_t len;
		jute_get_string(&probe, &p, &len);
		if (!probe.err && (len < 1 || !txn_path_valid(p, (size_t)len)))
			probe.err = -EBADMSG;
	}
	size_t left = jute_remaining(&probe);
	if (probe.err || (left != 0 && left != ZK_TXN_DIGEST_BYTES))
		return false;
	op->paths = probe.p + start;
	op->paths_len = probe.off - start;
	op->n_paths = n;
	r->in = probe;
	return true;
}

static bool multi_allows(int32_t type)
{
	switch (type) {
	case ZOP_CREATE:
	case ZOP_CREATE2:
	case ZOP_CREATE_TTL:
	case ZOP_CREATE_CONTAINER:
	case ZOP_DELETE:
	case ZOP_DELETE_CONTAINER:
	case ZOP_SET_DATA:
	case ZOP_ERROR:
	case ZOP_CHECK:
		return true;
	default:
		return false;
	}
}

/* closeSession: nothing, a digest, or a CloseSessionTxn (3.6+) and maybe a
 * digest. */
static bool get_close(struct txn_reader *r, struct zk_txn_op *op)
{
	size_t left = jute_remaining(&r->in);
	if (left == 0 || get_close_paths(r, op))
		return true;
	if (left == ZK_TXN_DIGEST_BYTES)
		return true;
	r->why = "a closeSession with paths that do not decode";
	return false;
}

/* One record of type op->type (set by the caller). */
static bool get_op(struct txn_reader *r, struct zk_txn_op *op, bool in_multi)
{
	if (in_multi && !multi_allows(op->type)) {
		r->why = "an op type a multi cannot hold";
		return false;
	}
	switch (op->type) {
	case ZOP_CREATE:
	case ZOP_CREATE2:
	case ZOP_CREATE_TTL:
	case ZOP_CREATE_CONTAINER:
		return get_create(r, op);
	case ZOP_DELETE:
	case ZOP_DELETE_CONTAINER:
		return get_path(r, op);
	case ZOP_SET_DATA:
	case ZOP_RECONFIG: /* a SetDataTxn of /zookeeper/config */
		if (!get_path(r, op))
			return false;
		jute_get_buffer(&r->in, &op->data, &op->data_len);
		op->version = jute_get_int(&r->in);
		return !r->in.err;
	case ZOP_SET_ACL:
		if (!get_path(r, op) || !get_acl(r, op))
			return false;
		op->version = jute_get_int(&r->in);
		return !r->in.err;
	case ZOP_CHECK:
		if (!get_path(r, op))
			return false;
		op->version = jute_get_int(&r->in);
		return !r->in.err;
	case ZOP_ERROR:
		op->err = jute_get_int(&r->in);
		return !r->in.err;
	case ZOP_CREATE_SESSION:
		op->timeout_ms = jute_get_int(&r->in);
		return !r->in.err;
	case ZOP_CLOSE_SESSION:
		return get_close(r, op);
	default:
		r->why = "an unknown txn type";
		return false;
	}
}

static void txn_free(struct zk_txn *txn)
{
	acl_list_free(txn->op.acl);
	for (int32_t i = 0; i < txn->n_multi; i++)
		acl_list_free(txn->multi[i].acl);
	free(txn->multi);
	*txn = (struct zk_txn){0};
}

static bool get_multi(struct txn_reader *r, struct zk_txn *txn)
{
	int32_t n = jute_get_vector_len(&r->in, 8);
	if (r->in.err)
		return false;
	txn->multi = calloc(n ? (size_t)n : 1, sizeof *txn->multi);
	if (!txn->multi) {
		r->why = "out of memory";
		return false;
	}
	for (int32_t i = 0; i < n; i++) {
		struct zk_txn_op *op = &txn->multi[i];
		txn->n_multi = i + 1;
		op->type = jute_get_int(&r->in);
		const uint8_t *data;
		int32_t len;
		jute_get_buffer(&r->in, &data, &len);
		if (r->in.err || len < 0)
			return false;
		struct txn_reader sub = {.in = jute_in_make(data, (size_t)len)};
		if (!get_op(&sub, op, true) || jute_remaining(&sub.in) != 0) {
			r->why = sub.why ? sub.why : "a multi op that does not decode";
			return false;
		}
	}
	return true;
}

/* The txn bytes of one valid record: TxnHeader, the record, and nothing
 * but maybe a TxnDigest after it. */
static bool txn_decode(const uint8_t *p, size_t len, struct zk_txn *txn, const char **why)
{
	struct txn_reader r = {.in = jute_in_make(p, len)};
	*txn = (struct zk_txn){0};
	txn->client_id = jute_get_long(&r.in);
	txn->cxid = jute_get_int(&r.in);
	txn->zxid = jute_get_long(&r.in);
	txn->time_ms = jute_get_long(&r.in);
	txn->op.type = jute_get_int(&r.in);
	bool ok = !r.in.err;
	if (ok && txn->op.type == ZOP_MULTI) {
		ok = get_multi(&r, txn);
	} else if (ok) {
		struct jute_in start = r.in;
		ok = get_op(&r, &txn->op, false);
		size_t left = jute_remaining(&r.in);
		if (txn->op.type == ZOP_CREATE && (!ok || (left && left != ZK_TXN_DIGEST_BYTES))) {
			/* Perhaps a create logged before parentCVersion. */
			acl_list_free(txn->op.acl);
			txn->op = (struct zk_txn_op){.type = ZOP_CREATE};
			r = (struct txn_reader){.in = start};
			ok = get_create_v0(&r, &txn->op) && jute_remaining(&r.in) == 0;
		}
	}
	size_t left = jute_remaining(&r.in);
	if (ok && left != 0 && left != ZK_TXN_DIGEST_BYTES) {
		ok = false;
		r.why = "unexpected bytes after the txn";
	}
	if (!ok) {
		*why = r.why ? r.why : "a txn cut short";
		txn_free(txn);
	}
	return ok;
}

/* ---- txn log files ---- */

enum rec_state {
	REC_VALID = 0, /* a whole record with its checksum and 'B' */
	REC_END,       /* zeros to the end of the file */
	REC_BAD,       /* anything else: torn or corrupt, decided by what follows */
	REC_STATE_COUNT,
};

static int64_t be64(const uint8_t *p)
{
	return (int64_t)((uint64_t)jute_be32_get(p) << 32 | jute_be32_get(p + 4));
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static size_t count_nonzero(const uint8_t *p, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += p[i] != 0;
	return c;
}

static enum rec_state rec_classify(const struct mapped *m, size_t pos, int32_t *len_out,
				   const char **why)
{
	size_t left = m->len - pos;
	if (left < 12) {
		*why = "a record header cut by the end of the file";
		return all_zero(m->p + pos, left) ? REC_END : REC_BAD;
	}
	int64_t crc = be64(m->p + pos);
	int32_t len = (int32_t)jute_be32_get(m->p + pos + 8);
	*len_out = len;
	if (len == 0) {
		/* ZooKeeper preallocates with zeros: an empty record is the end. */
		*why = "an empty record followed by data";
		return crc == 0 && all_zero(m->p + pos + 12, left - 12) ? REC_END : REC_BAD;
	}
	if (len < 0) {
		*why = "a negative record length";
		return REC_BAD;
	}
	if ((size_t)len > left - 13) {
		*why = "a record longer than the rest of the file";
		return REC_BAD;
	}
	if (m->p[pos + 12 + (size_t)len] != 'B') {
		*why = "no end-of-record byte 'B'";
		return REC_BAD;
	}
	if ((uint64_t)crc != zk_adler32(1, m->p + pos + 12, (size_t)len)) {
		*why = "checksum mismatch";
		return REC_BAD;
	}
	return REC_VALID;
}

static bool plausible_type(int32_t type)
{
	return (type >= ZOP_CREATE_SESSION && type <= ZOP_ERROR) ||
	       (type >= ZOP_CREATE && type <= ZOP_CREATE_TTL);
}

/* Whether a valid record starts anywhere after pos (with a zxid above
 * zxid_floor): then the bad bytes at pos are damage inside the log, not a
 * write a crash cut short. */
static bool valid_record_after(const struct mapped *m, size_t pos, int64_t zxid_floor,
			       size_t *found)
{
	const size_t min = 12 + ZK_TXN_HEADER_BYTES + 1;
	for (size_t y = pos + 1; y + min <= m->len; y++) {
		const uint8_t *p = m->p + y;
		if (p[0] | p[1] | p[2] | p[3]) /* an Adler32 fits in 32 bits */
			continue;
		int32_t len = (int32_t)jute_be32_get(p + 8);
		if (len < ZK_TXN_HEADER_BYTES || (size_t)len > m->len - y - 13 ||
		    p[12 + (size_t)len] != 'B')
			continue;
		if (be64(p + 12 + 12) <= zxid_floor ||
		    !plausible_type((int32_t)jute_be32_get(p + 12 + 28)))
			continue;
		if ((uint64_t)be64(p) == zk_adler32(1, p + 12, (size_t)len)) {
			*found = y;
			return true;
		}
	}
	return false;
}

struct log_state {
	const struct zk_listing *l;
	size_t file; /* index into l->logs */
	int64_t snap_zxid;
	int64_t prev;	 /* zxid of the last valid record, -1 before any */
	int64_t applied; /* zxid the tree is at */
	struct zktree *t;
	struct zklog_result *res;
	struct zk_fault *fault;
};

static int epoch_of(int64_t zxid)
{
	return (int)((uint64_t)zxid >> 32);
}

/* Order and continuity, then the txn itself. */
static int log_record(struct log_state *s, const struct mapped *m, size_t pos, int32_t len)
{
	const char *path = s->l->logs[s->file].path;
	struct zk_txn txn;
	const char *why;
	if (!txn_decode(m->p + pos + 12, (size_t)len, &txn, &why)) {
		fault_set(s->fault, path, pos, "record does not decode: %s", why);
		return -EBADMSG;
	}
	if (s->prev >= 0 && txn.zxid <= s->prev) {
		fault_set(s->fault, path, pos,
			  "zxid 0x%" PRIx64 " after 0x%" PRIx64 ": out of order",
			  (uint64_t)txn.zxid, (uint64_t)s->prev);
		txn_free(&txn);
		return -EBADMSG;
	}
	if (s->res->torn) {
		/* The torn end of an earlier file, which this one goes on from
		 * (the continuity check below covers what it lost). */
		fprintf(stderr,
			"note: %s ends in a torn record at offset %" PRIu64 " (%s); %s goes on\n",
			s->res->torn_file, s->res->torn_off, s->res->torn_why, path);
		s->res->torn = false;
	}
	s->prev = txn.zxid;
	s->res->records++;
	s->res->last_zxid = txn.zxid;
	if (txn.zxid <= s->snap_zxid) {
		txn_free(&txn);
		return 0;
	}
	if (txn.zxid != s->applied + 1 && epoch_of(txn.zxid) == epoch_of(s->applied)) {
		fault_set(s->fault, path, pos,
			  "zxid 0x%" PRIx64 " follows 0x%" PRIx64 ": the txns between are missing",
			  (uint64_t)txn.zxid, (uint64_t)s->applied);
		txn_free(&txn);
		return -EBADMSG;
	}
	int rc = zktree_apply(s->t, &txn);
	if (rc == -ENOMEM || rc == -EINVAL || rc == -EBADMSG) {
		fault_set(s->fault, path, pos, "cannot apply txn 0x%" PRIx64 ": %s",
			  (uint64_t)txn.zxid, strerror(-rc));
		return rc == -ENOMEM ? rc : -EBADMSG;
	}
	if (!s->res->applied)
		s->res->first_applied = txn.zxid;
	s->res->applied++;
	s->applied = txn.zxid;
	return 0;
}

static int log_header(struct log_state *s, const struct mapped *m, bool *empty)
{
	const char *path = s->l->logs[s->file].path;
	*empty = false;
	if (m->len < ZK_FILE_HEADER_BYTES || all_zero(m->p, ZK_FILE_HEADER_BYTES)) {
		/* Created but never written: nothing in it, fine only at the end. */
		if (all_zero(m->p, m->len) && s->file + 1 == s->l->n_logs) {
			*empty = true;
			return 0;
		}
		fault_set(s->fault, path, 0, "no txn log file header");
		return -EBADMSG;
	}
	if (jute_be32_get(m->p) != ZK_LOG_MAGIC) {
		fault_set(s->fault, path, 0, "not a ZooKeeper txn log (magic is not \"ZKLG\")");
		return -EBADMSG;
	}
	if ((int32_t)jute_be32_get(m->p + 4) != ZK_FILE_VERSION) {
		fault_set(s->fault, path, 4, "txn log version is not 2");
		return -EBADMSG;
	}
	return 0;
}

/* A bad record at pos: corruption when a valid record follows it in this
 * file, else the file's torn end (which a later file may go on from). */
static int log_bad(struct log_state *s, const struct mapped *m, size_t pos, const char *why)
{
	const char *path = s->l->logs[s->file].path;
	size_t next;
	if (valid_record_after(m, pos, s->prev, &next)) {
		fault_set(s->fault, path, pos,
			  "corrupt record: %s (a valid record follows at offset %zu)", why, next);
		return -EBADMSG;
	}
	struct zklog_result *res = s->res;
	res->torn = true;
	snprintf(res->torn_file, sizeof res->torn_file, "%s", path);
	res->torn_off = pos;
	res->torn_bytes = count_nonzero(m->p + pos, m->len - pos);
	res->torn_why = why;
	return 0;
}

static int log_file(struct log_state *s)
{
	const struct zk_file *f = &s->l->logs[s->file];
	struct mapped m;
	int rc = map_file(f->path, &m, s->fault);
	if (rc)
		return rc;
	s->res->files_read++;
	bool empty;
	rc = log_header(s, &m, &empty);
	size_t pos = ZK_FILE_HEADER_BYTES;
	while (!rc && !empty) {
		int32_t len = 0;
		const char *why = NULL;
		enum rec_state st = rec_classify(&m, pos, &len, &why);
		if (st == REC_END)
			break;
		if (st == REC_BAD) {
			rc = log_bad(s, &m, pos, why);
			break;
		}
		rc = log_record(s, &m, pos, len);
		pos += 12 + (size_t)len + 1;
	}
	unmap_file(&m);
	return rc;
}

int zklog_replay(const struct zk_listing *l, int64_t snap_zxid, struct zktree *t,
		 struct zklog_result *res, struct zk_fault *fault)
{
	*res = (struct zklog_result){.last_zxid = -1};
	/* As FileTxnLog.getLogFiles: the newest file starting at or before
	 * the snapshot may hold the txns right after it. */
	int64_t from = 0;
	for (size_t i = 0; i < l->n_logs; i++)
		if (l->logs[i].zxid <= snap_zxid && l->logs[i].zxid > from)
			from = l->logs[i].zxid;
	struct log_state s = {.l = l,
			      .snap_zxid = snap_zxid,
			      .prev = -1,
			      .applied = snap_zxid,
			      .t = t,
			      .res = res,
			      .fault = fault};
	for (s.file = 0; s.file < l->n_logs; s.file++) {
		if (l->logs[s.file].zxid < from)
			continue;
		int rc = log_file(&s);
		if (rc)
			return rc;
	}
	return 0;
}
