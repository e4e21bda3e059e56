/* Reports of the cores' connections, watches and sessions, printed in
 * ZooKeeper 3.8's formats; see report.h. */
#include "net/report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/proto.h"

/* A path record in report_part.paths: this header, then len bytes of
 * path, padded to 8. */
struct path_rec {
	uint64_t session_id;
	uint32_t len;
	uint32_t pad;
};

const char *report_op_name(int32_t op)
{
	switch (op) {
	case ZOP_PING:
		return "PING";
	case ZOP_CREATE_SESSION:
		return "SESS";
	case ZOP_MULTI:
		return "MULT";
	case ZOP_MULTI_READ:
		return "MLTR";
	case ZOP_CREATE:
	case ZOP_CREATE2:
	case ZOP_CREATE_TTL:
	case ZOP_CREATE_CONTAINER:
		return "CREA";
	case ZOP_DELETE:
	case ZOP_DELETE_CONTAINER:
		return "DELE";
	case ZOP_SET_DATA:
		return "SETD";
	case ZOP_RECONFIG:
		return "RECO";
	case ZOP_SET_ACL:
		return "SETA";
	case ZOP_CLOSE_SESSION:
		return "CLOS";
	case ZOP_SYNC:
		return "SYNC";
	case ZOP_CHECK:
		return "CHEC";
	case ZOP_EXISTS:
		return "EXIS";
	case ZOP_GET_DATA:
		return "GETD";
	case ZOP_SET_WATCHES:
		return "SETW";
	case ZOP_SET_WATCHES2:
		return "STW2";
	case ZOP_ADD_WATCH:
		return "ADDW";
	case ZOP_GET_ACL:
		return "GETA";
	case ZOP_GET_CHILDREN:
	case ZOP_GET_CHILDREN2:
		return "GETC";
	case ZOP_GET_ALL_CHILDREN_NUMBER:
		return "GETACN";
	case ZOP_CHECK_WATCHES:
		return "CHKW";
	case ZOP_REMOVE_WATCHES:
		return "REMW";
	case ZOP_WHO_AM_I:
		return "HOMI";
	case ZOP_GET_EPHEMERALS:
		return "GETE";
	default:
		return NULL;
	}
}

void report_part_init(struct report_part *p, size_t part_bytes_max)
{
	memset(p, 0, sizeof *p);
	/* One budget for the three buffers: each may use it all, and the
	 * part is full when their sum reaches it (see fits). */
	jute_out_init(&p->conns, 0, part_bytes_max);
	jute_out_init(&p->paths, 0, part_bytes_max);
	jute_out_init(&p->sessions, 0, part_bytes_max);
}

void report_part_free(struct report_part *p)
{
	jute_out_free(&p->conns);
	jute_out_free(&p->paths);
	jute_out_free(&p->sessions);
}

static bool fits(const struct report_part *p, size_t n)
{
	return p->conns.len + p->paths.len + p->sessions.len + n <= p->conns.cap_max;
}

static int add(struct report_part *p, struct jute_out *to, uint64_t *left_out, const void *rec,
	       size_t n)
{
	uint8_t *d = fits(p, n) ? jute_reserve(to, n) : NULL;
	if (!d) {
		(*left_out)++;
		return -ENOSPC;
	}
	memcpy(d, rec, n);
	return 0;
}

int report_add_conn(struct report_part *p, const struct report_conn *r)
{
	return add(p, &p->conns, &p->conns_left_out, r, sizeof *r);
}

int report_add_session(struct report_part *p, const struct report_session *s)
{
	return add(p, &p->sessions, &p->sessions_left_out, s, sizeof *s);
}

int report_add_path(struct report_part *p, uint64_t session_id, const char *path, size_t len)
{
	size_t n = sizeof(struct path_rec) + ((len + 7) & ~(size_t)7);
	uint8_t *d = fits(p, n) ? jute_reserve(&p->paths, n) : NULL;
	if (!d) {
		p->paths_left_out++;
		return -ENOSPC;
	}
	struct path_rec h = {.session_id = session_id, .len = (uint32_t)len};
	memcpy(d, &h, sizeof h);
	memcpy(d + sizeof h, path, len);
	memset(d + sizeof h + len, 0, n - sizeof h - len);
	return 0;
}

/* ---- printing ---- */

/* Appends to out until the answer reaches REPORT_TEXT_MAX; past it, counts
 * what it did not print. */
struct printer {
	struct jute_out *out;
	size_t start;
	uint64_t left_out;
};

static bool full(const struct printer *pr)
{
	return pr->out->len - pr->start >= REPORT_TEXT_MAX;
}

static void put(struct jute_out *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct jute_out *out, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line)
		n = sizeof line - 1;
	uint8_t *d = jute_reserve(out, (size_t)n);
	if (d)
		memcpy(d, line, (size_t)n);
}

static void put_bytes(struct jute_out *out, const void *p, size_t n)
{
	uint8_t *d = jute_reserve(out, n);
	if (d)
		memcpy(d, p, n);
}

/* The closing line of a capped answer, and of parts that were not there. */
static void put_left_out(const struct report_ctx *c, struct jute_out *out, uint64_t left_out,
			 const char *what)
{
	if (left_out)
		put(out, "(%lu more %s not listed: the answer is capped at %u bytes)\n",
		    (unsigned long)left_out, what, REPORT_TEXT_MAX);
	for (int i = 0; i < c->count; i++)
		if (!c->parts[i].answered)
			put(out, "(core %d could not be asked: its entries are missing)\n", i);
}

/* ServerCnxn.dumpConnectionInfo: brief is stat's form. */
static void put_conn(struct jute_out *out, const struct report_conn *r, bool brief)
{
	put(out, " /%s:%u[%x](queued=%lu,recved=%lu,sent=%lu", r->ip, r->port, r->interest,
	    (unsigned long)r->queued, (unsigned long)r->received, (unsigned long)r->sent);
	if (!brief && r->session_id) {
		put(out, ",sid=0x%lx,lop=%s,est=%ld,to=%d", (unsigned long)r->session_id,
		    r->last_op, (long)r->established_ms, r->timeout_ms);
		if (r->last_cxid >= 0)
			put(out, ",lcxid=0x%lx", (unsigned long)r->last_cxid);
		put(out, ",lzxid=0x%lx,lresp=%ld,llat=%lu,minlat=%lu,avglat=%lu,maxlat=%lu",
		    (unsigned long)r->last_zxid, (long)r->last_response_ms,
		    (unsigned long)r->last_latency_ms, (unsigned long)r->min_latency_ms,
		    (unsigned long)r->avg_latency_ms, (unsigned long)r->max_latency_ms);
	}
	put(out, ")\n");
}

static void print_conns(const struct report_ctx *c, bool brief, struct jute_out *out)
{
	struct printer pr = {.out = out, .start = out->len};
	for (int i = 0; i < c->count; i++) {
		const struct report_part *p = &c->parts[i];
		size_t n = p->conns.len / sizeof(struct report_conn);
		for (size_t j = 0; j < n; j++) {
			struct report_conn r;
			memcpy(&r, p->conns.buf + j * sizeof r, sizeof r);
			if (full(&pr))
				pr.left_out++;
			else
				put_conn(out, &r, brief);
		}
		pr.left_out += p->conns_left_out;
	}
	put_left_out(c, out, pr.left_out, "connections");
	put(out, "\n");
}

void report_print_cons(const struct report_ctx *c, struct jute_out *out)
{
	print_conns(c, false, out);
}

void report_print_clients(const struct report_ctx *c, struct jute_out *out)
{
	print_conns(c, true, out);
}

/* Every path record of every part, for sorting. */
struct path_view {
	uint64_t session_id;
	const char *path;
	uint32_t len;
};

static int cmp_path(const struct path_view *a, const struct path_view *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int r = memcmp(a->path, b->path, n);
	return r ? r : (a->len > b->len) - (a->len < b->len);
}

static int cmp_session(uint64_t a, uint64_t b)
{
	return (a > b) - (a < b);
}

static int by_session(const void *pa, const void *pb)
{
	const struct path_view *a = pa, *b = pb;
	int r = cmp_session(a->session_id, b->session_id);
	return r ? r : cmp_path(a, b);
}

static int by_path(const void *pa, const void *pb)
{
	const struct path_view *a = pa, *b = pb;
	int r = cmp_path(a, b);
	return r ? r : cmp_session(a->session_id, b->session_id);
}

/* Sorted and without repeats (a session may watch a path in several
 * ways; ZooKeeper lists the pair once). NULL with *n 0 when empty or out
 * of memory (then *left_out counts them). */
static struct path_view *collect_paths(const struct report_ctx *c,
				       int (*cmp)(const void *, const void *), size_t *n,
				       uint64_t *left_out)
{
	size_t total = 0;
	for (int i = 0; i < c->count; i++) {
		const struct jute_out *b = &c->parts[i].paths;
		for (size_t off = 0; off < b->len; total++) {
			struct path_rec h;
			memcpy(&h, b->buf + off, sizeof h);
			off += sizeof h + ((h.len + 7) & ~(size_t)7);
		}
		*left_out += c->parts[i].paths_left_out;
	}
	*n = 0;
	struct path_view *v = total ? malloc(total * sizeof *v) : NULL;
	if (!v) {
		*left_out += total;
		return NULL;
	}
	for (int i = 0; i < c->count; i++) {
		const struct jute_out *b = &c->parts[i].paths;
		for (size_t off = 0; off < b->len;) {
			struct path_rec h;
			memcpy(&h, b->buf + off, sizeof h);
			v[(*n)++] = (struct path_view){
			    h.session_id, (const char *)b->buf + off + sizeof h, h.len};
			off += sizeof h + ((h.len + 7) & ~(size_t)7);
		}
	}
	qsort(v, *n, sizeof *v, cmp);
	size_t w = 0;
	for (size_t r = 0; r < *n; r++)
		if (w == 0 || by_session(&v[w - 1], &v[r]) != 0)
			v[w++] = v[r];
	*n = w;
	return v;
}

/* WatchManager.dumpWatches: by session, "0x<id>" then "\t<path>" lines;
 * by path, "<path>" then "\t0x<id>" lines. */
void report_print_watches(const struct report_ctx *c, bool by_path_, struct jute_out *out)
{
	struct printer pr = {.out = out, .start = out->len};
	size_t n;
	struct path_view *v = collect_paths(c, by_path_ ? by_path : by_session, &n, &pr.left_out);
	for (size_t i = 0; i < n; i++) {
		if (full(&pr)) {
			pr.left_out += n - i;
			break;
		}
		bool first = i == 0 || (by_path_ ? cmp_path(&v[i - 1], &v[i]) != 0
						 : v[i - 1].session_id != v[i].session_id);
		if (by_path_) {
			if (first) {
				put_bytes(out, v[i].path, v[i].len);
				put(out, "\n");
			}
			put(out, "\t0x%lx\n", (unsigned long)v[i].session_id);
		} else {
			if (first)
				put(out, "0x%lx\n", (unsigned long)v[i].session_id);
			put(out, "\t");
			put_bytes(out, v[i].path, v[i].len);
			put(out, "\n");
		}
	}
	free(v);
	put_left_out(c, out, pr.left_out, "watches");
	put(out, "\n");
}

/* ---- dump ---- */

/* ZooKeeper's ExpiryQueue puts an element due at t in the bucket of the
 * next multiple of its interval after t. */
static int64_t bucket_of(int64_t t, int64_t interval)
{
	return (t / interval + 1) * interval;
}

/* A monotonic time as java.util.Date prints it (local time zone). */
static void put_date(const struct report_ctx *c, struct jute_out *out, int64_t mono_ms)
{
	time_t t = (time_t)((c->now_wall_ms + (mono_ms - c->now_mono_ms)) / 1000);
	struct tm tm;
	char s[64];
	localtime_r(&t, &tm);
	strftime(s, sizeof s, "%a %b %d %H:%M:%S %Z %Y", &tm);
	put(out, "%s", s);
}

struct due {
	int64_t bucket;
	uint64_t id;
	int32_t timeout_ms;
	const struct report_conn *conn; /* NULL for a session */
};

static int by_due(const void *pa, const void *pb)
{
	const struct due *a = pa, *b = pb;
	if (a->bucket != b->bucket)
		return a->bucket < b->bucket ? -1 : 1;
	return cmp_session(a->id, b->id);
}

/* ExpiryQueue.dump: "Sets (buckets)/(elements):", then per bucket "<n>
 * expire at <date>:" and its elements. Only buckets that hold something
 * are printed (ZooKeeper also keeps a few emptied ones until they pass). */
static void put_sets(const struct report_ctx *c, struct printer *pr, struct due *d, size_t n)
{
	qsort(d, n, sizeof *d, by_due);
	size_t buckets = 0;
	for (size_t i = 0; i < n; i++)
		buckets += i == 0 || d[i].bucket != d[i - 1].bucket;
	put(pr->out, "Sets (%zu)/(%zu):\n", buckets, n);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && d[j].bucket == d[i].bucket)
			j++;
		if (full(pr)) {
			pr->left_out += n - i;
			return;
		}
		put(pr->out, "%zu expire at ", j - i);
		put_date(c, pr->out, d[i].bucket);
		put(pr->out, ":\n");
		for (; i < j; i++) {
			if (d[i].conn)
				put(pr->out, "\tip: /%s:%u sessionId: 0x%lx\n", d[i].conn->ip,
				    d[i].conn->port, (unsigned long)d[i].conn->session_id);
			else
				put(pr->out, "\t0x%lx\n", (unsigned long)d[i].id);
		}
	}
}

static size_t count_sessions(const struct report_ctx *c, uint64_t *left_out)
{
	size_t n = 0;
	for (int i = 0; i < c->count; i++) {
		n += c->parts[i].sessions.len / sizeof(struct report_session);
		*left_out += c->parts[i].sessions_left_out;
	}
	return n;
}

static const struct report_session *session_at(const struct report_ctx *c, size_t k)
{
	for (int i = 0; i < c->count; i++) {
		size_t n = c->parts[i].sessions.len / sizeof(struct report_session);
		if (k < n)
			return (const struct report_session *)c->parts[i].sessions.buf + k;
		k -= n;
	}
	return NULL;
}

/* SessionTrackerImpl (standalone, leader): sessions by expiry bucket of
 * tickTime; LearnerSessionTracker (follower, observer): "Global
 * Sessions(n):" and each id with its timeout. */
static void dump_sessions(const struct report_ctx *c, struct printer *pr)
{
	size_t n = count_sessions(c, &pr->left_out);
	struct due *d = n ? calloc(n, sizeof *d) : NULL;
	if (n && !d) {
		pr->left_out += n;
		n = 0;
	}
	for (size_t k = 0; k < n; k++) {
		const struct report_session *s = session_at(c, k);
		int64_t bucket = c->session_sets ? bucket_of(s->expires_ms, c->tick_ms) : 0;
		d[k] = (struct due){.bucket = bucket, .id = s->id, .timeout_ms = s->timeout_ms};
	}
	if (c->session_sets) {
		put(pr->out, "Session ");
		put_sets(c, pr, d, n);
	} else {
		qsort(d, n, sizeof *d, by_due);
		put(pr->out, "Global Sessions(%zu):\n", n);
		for (size_t k = 0; k < n; k++) {
			if (full(pr)) {
				pr->left_out += n - k;
				break;
			}
			put(pr->out, "0x%lx\t%dms\n", (unsigned long)d[k].id, d[k].timeout_ms);
		}
	}
	free(d);
}

/* DataTree.dumpEphemerals. */
static void dump_ephemerals(const struct report_ctx *c, struct printer *pr)
{
	size_t n;
	struct path_view *v = collect_paths(c, by_session, &n, &pr->left_out);
	size_t owners = 0;
	for (size_t i = 0; i < n; i++)
		owners += i == 0 || v[i].session_id != v[i - 1].session_id;
	put(pr->out, "Sessions with Ephemerals (%zu):\n", owners);
	for (size_t i = 0; i < n; i++) {
		if (full(pr)) {
			pr->left_out += n - i;
			break;
		}
		if (i == 0 || v[i].session_id != v[i - 1].session_id)
			put(pr->out, "0x%lx:\n", (unsigned long)v[i].session_id);
		put(pr->out, "\t");
		put_bytes(pr->out, v[i].path, v[i].len);
		put(pr->out, "\n");
	}
	free(v);
}

/* NIOServerCnxnFactory.dumpConnections: connections by the time they
 * would expire idle (their session's timeout, or 10 s without one). */
static void dump_connections(const struct report_ctx *c, struct printer *pr)
{
	size_t n = 0;
	for (int i = 0; i < c->count; i++) {
		n += c->parts[i].conns.len / sizeof(struct report_conn);
		pr->left_out += c->parts[i].conns_left_out;
	}
	struct due *d = n ? calloc(n, sizeof *d) : NULL;
	if (n && !d) {
		pr->left_out += n;
		n = 0;
	}
	size_t k = 0;
	for (int i = 0; i < c->count && d; i++) {
		const struct report_conn *r = (const struct report_conn *)c->parts[i].conns.buf;
		size_t m = c->parts[i].conns.len / sizeof *r;
		for (size_t j = 0; j < m; j++, k++)
			d[k] = (struct due){.bucket =
						bucket_of(r[j].expires_ms, REPORT_CNXN_TIMEOUT_MS),
					    .id = r[j].session_id,
					    .conn = &r[j]};
	}
	put(pr->out, "Connections ");
	put_sets(c, pr, d, n);
	free(d);
}

void report_print_dump(const struct report_ctx *c, struct jute_out *out)
{
	struct printer pr = {.out = out, .start = out->len};
	put(out, "SessionTracker dump:\n");
	dump_sessions(c, &pr);
	put(out, "ephemeral nodes dump:\n");
	dump_ephemerals(c, &pr);
	put(out, "Connections dump:\n");
	dump_connections(c, &pr);
	put_left_out(c, out, pr.left_out, "entries");
}
