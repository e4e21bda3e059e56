/* Quota limits and stats under /zookeeper/quota; see quota.h. The parsing
 * and formatting follow ZooKeeper's StatsTrack byte for byte, since
 * zkCli's listquota prints the nodes' text as it is. */
#include "core/quota.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hamt.h"
#include "core/log.h"

#define ROOT_LEN   (sizeof QUOTA_ROOT - 1)
#define LIMITS_LEN (sizeof QUOTA_LIMITS_NODE - 1)
#define STATS_LEN  (sizeof QUOTA_STATS_NODE - 1)

static const char KEY_COUNT[] = "count";
static const char KEY_BYTES[] = "bytes";
static const char KEY_COUNT_HARD[] = "countHardLimit";
static const char KEY_BYTES_HARD[] = "byteHardLimit";

/* ---- StatsTrack ---- */

static bool is_sep(char c)
{
	return c == ',' || c == ';';
}

/* Java's Long.parseLong, ASCII digits only. */
static int parse_long(const char *s, size_t n, int64_t *out)
{
	size_t i = 0;
	bool neg = false;
	if (n > 0 && (s[0] == '-' || s[0] == '+')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == n)
		return -EINVAL;
	uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	uint64_t v = 0;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (limit - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

static int put_entry(struct quota_track *t, const char *key, size_t len, int64_t value)
{
	for (uint32_t i = 0; i < t->n; i++) {
		if (t->e[i].len == len && memcmp(t->e[i].key, key, len) == 0) {
			t->e[i].value = value; /* a HashMap: the last one wins */
			return 0;
		}
	}
	if (t->n == QUOTA_TRACK_KEYS_MAX)
		return -E2BIG;
	t->e[t->n].key = key;
	t->e[t->n].len = len;
	t->e[t->n].value = value;
	t->n++;
	return 0;
}

/* One pair, as pair.split("=") sees it: trailing empty pieces dropped, at
 * least two pieces needed, the second is the value ("" reads as -1). */
static int parse_pair(struct quota_track *t, const char *p, size_t n)
{
	while (n > 0 && p[n - 1] == '=')
		n--;
	const char *eq = memchr(p, '=', n);
	if (!eq)
		return -EINVAL;
	size_t key_len = (size_t)(eq - p);
	const char *v = eq + 1;
	size_t rest = n - key_len - 1;
	const char *v_end = memchr(v, '=', rest);
	size_t v_len = v_end ? (size_t)(v_end - v) : rest;
	int64_t value = -1;
	if (v_len && parse_long(v, v_len, &value))
		return -EINVAL;
	return put_entry(t, p, key_len, value);
}

/* Pairs as Pattern.compile("[,;]+").split sees them: trailing empty
 * strings dropped, a leading separator makes an empty (bad) first pair. */
int quota_track_parse(struct quota_track *t, const uint8_t *data, int32_t data_len)
{
	t->n = 0;
	if (!data || data_len < 0)
		return -EINVAL;
	const char *s = (const char *)data;
	size_t end = (size_t)data_len;
	while (end > 0 && is_sep(s[end - 1]))
		end--;
	for (size_t i = 0; i < end;) {
		size_t j = i;
		while (j < end && !is_sep(s[j]))
			j++;
		int rc = parse_pair(t, s + i, j - i);
		if (rc)
			return rc;
		for (i = j; i < end && is_sep(s[i]); i++)
			;
	}
	return 0;
}

int64_t quota_track_get(const struct quota_track *t, const char *key)
{
	size_t len = strlen(key);
	for (uint32_t i = 0; i < t->n; i++)
		if (t->e[i].len == len && memcmp(t->e[i].key, key, len) == 0)
			return t->e[i].value;
	return -1;
}

int quota_track_set(struct quota_track *t, const char *key, int64_t value)
{
	return put_entry(t, key, strlen(key), value);
}

struct text {
	char *buf;
	size_t cap, len;
};

static void text_put(struct text *x, const char *s, size_t n)
{
	if (x->len < x->cap)
		memcpy(x->buf + x->len, s, x->cap - x->len < n ? x->cap - x->len : n);
	x->len += n;
}

static void text_long(struct text *x, int64_t v)
{
	char d[24];
	int n = snprintf(d, sizeof d, "%" PRId64, v);
	text_put(x, d, (size_t)n);
}

static bool key_is(const struct quota_track *t, uint32_t i, const char *key)
{
	return t->e[i].len == strlen(key) && memcmp(t->e[i].key, key, t->e[i].len) == 0;
}

/* Java's String.compareTo for the keys (UTF-16 order equals byte order for
 * everything a quota key holds in practice). */
static int key_cmp(const struct quota_track *t, uint32_t a, uint32_t b)
{
	size_t n = t->e[a].len < t->e[b].len ? t->e[a].len : t->e[b].len;
	int c = memcmp(t->e[a].key, t->e[b].key, n);
	if (c)
		return c;
	return t->e[a].len < t->e[b].len ? -1 : t->e[a].len > t->e[b].len;
}

size_t quota_track_format(const struct quota_track *t, char *buf, size_t cap)
{
	struct text x = {.buf = buf, .cap = cap};
	text_put(&x, "count=", 6);
	text_long(&x, quota_track_get(t, KEY_COUNT));
	text_put(&x, ",bytes=", 7);
	text_long(&x, quota_track_get(t, KEY_BYTES));
	uint32_t order[QUOTA_TRACK_KEYS_MAX], n = 0;
	for (uint32_t i = 0; i < t->n; i++) {
		if (key_is(t, i, KEY_COUNT) || key_is(t, i, KEY_BYTES))
			continue;
		uint32_t at = n++;
		while (at > 0 && key_cmp(t, order[at - 1], i) > 0) {
			order[at] = order[at - 1];
			at--;
		}
		order[at] = i;
	}
	if (n)
		text_put(&x, "=", 1); /* so 3.4's parser skips the new keys */
	for (uint32_t k = 0; k < n; k++) {
		text_put(&x, ";", 1);
		text_put(&x, t->e[order[k]].key, t->e[order[k]].len);
		text_put(&x, "=", 1);
		text_long(&x, t->e[order[k]].value);
	}
	return x.len;
}

/* ---- where quotas are ---- */

/* QUOTA_ROOT + prefix + "/" + node, in a buffer the caller frees. */
static char *node_path(const char *prefix, size_t prefix_len, const char *node, size_t *len)
{
	size_t node_len = node ? strlen(node) : 0;
	*len = ROOT_LEN + prefix_len + (node ? 1 + node_len : 0);
	char *p = malloc(*len + 1);
	RK_ASSERT(p); /* every server must make the same change: no way to skip it */
	memcpy(p, QUOTA_ROOT, ROOT_LEN);
	memcpy(p + ROOT_LEN, prefix, prefix_len);
	if (node) {
		p[ROOT_LEN + prefix_len] = '/';
		memcpy(p + ROOT_LEN + prefix_len + 1, node, node_len);
	}
	p[*len] = 0;
	return p;
}

static int32_t data_len_of(const struct znode *n)
{
	return n->data ? n->stat.data_length : -1;
}

bool quota_any(const struct tree_version *v)
{
	const struct znode *root = tree_lookup(v, QUOTA_ROOT, ROOT_LEN);
	return root && root->children.count > 0;
}

size_t quota_prefix(const struct tree_version *v, const char *path, size_t len)
{
	if (len < 2 || !quota_any(v))
		return 0;
	size_t qlen;
	char *q = node_path(path, len, NULL, &qlen);
	uint64_t h = hamt_hash(QUOTA_LIMITS_NODE, LIMITS_LEN);
	size_t best = 0;
	/* Top down: a quota dir's parent exists, so the first missing one ends
	 * the walk. */
	for (size_t i = 1; i <= len; i++) {
		if (i < len && path[i] != '/')
			continue;
		const struct znode *dir = tree_lookup(v, q, ROOT_LEN + i);
		if (!dir)
			break;
		void *unused;
		if (hamt_get(&dir->children, QUOTA_LIMITS_NODE, LIMITS_LEN, h, &unused))
			best = i;
	}
	free(q);
	return best;
}

/* ---- checks ---- */

static int64_t add_wrap(int64_t a, int64_t b)
{
	return (int64_t)((uint64_t)a + (uint64_t)b); /* Java's long arithmetic */
}

static const struct znode *quota_node(const struct tree_version *v, const char *prefix,
				      size_t prefix_len, const char *node)
{
	size_t len;
	char *p = node_path(prefix, prefix_len, node, &len);
	const struct znode *n = tree_lookup(v, p, len);
	free(p);
	return n;
}

/* One limit: the hard one when set, else the soft one. True when the
 * check must stop here (a hard limit passed). */
static bool check_one(struct quota_check *out, const char *what, int64_t value, int64_t soft,
		      int64_t hard)
{
	bool is_hard = hard > -1;
	int64_t limit = is_hard ? hard : soft;
	if (value <= limit)
		return false;
	out->ex[out->n++] =
	    (struct quota_excess){.what = what, .hard = is_hard, .value = value, .limit = limit};
	out->verdict = is_hard ? QUOTA_HARD : QUOTA_SOFT;
	return is_hard;
}

void quota_check(const struct tree_version *v, const char *prefix, size_t prefix_len,
		 int64_t count_diff, int64_t bytes_diff, int64_t pending_count,
		 int64_t pending_bytes, struct quota_check *out)
{
	*out = (struct quota_check){.verdict = QUOTA_WITHIN};
	const struct znode *ln = quota_node(v, prefix, prefix_len, QUOTA_LIMITS_NODE);
	struct quota_track lim, cur;
	if (!ln)
		return;
	if (quota_track_parse(&lim, ln->data, data_len_of(ln))) {
		out->verdict = QUOTA_UNREADABLE;
		return;
	}
	int64_t count_soft = quota_track_get(&lim, KEY_COUNT);
	int64_t count_hard = quota_track_get(&lim, KEY_COUNT_HARD);
	int64_t bytes_soft = quota_track_get(&lim, KEY_BYTES);
	int64_t bytes_hard = quota_track_get(&lim, KEY_BYTES_HARD);
	bool check_count = count_diff != 0 && (count_soft > -1 || count_hard > -1);
	bool check_bytes = bytes_diff != 0 && (bytes_soft > -1 || bytes_hard > -1);
	if (!check_count && !check_bytes)
		return;
	const struct znode *sn = quota_node(v, prefix, prefix_len, QUOTA_STATS_NODE);
	if (!sn)
		return; /* ZooKeeper logs it and lets the write through */
	if (quota_track_parse(&cur, sn->data, data_len_of(sn))) {
		out->verdict = QUOTA_UNREADABLE;
		return;
	}
	if (check_count) {
		int64_t count = add_wrap(quota_track_get(&cur, KEY_COUNT), pending_count);
		if (check_one(out, KEY_COUNT, add_wrap(count, count_diff), count_soft, count_hard))
			return;
	}
	if (check_bytes) {
		int64_t bytes = add_wrap(quota_track_get(&cur, KEY_BYTES), pending_bytes);
		check_one(out, KEY_BYTES, add_wrap(bytes, bytes_diff), bytes_soft, bytes_hard);
	}
}

/* ---- stats, on the apply path ---- */

static void stats_write(struct tree *t, const char *stats, size_t stats_len,
			const struct quota_track *track)
{
	size_t need = quota_track_format(track, NULL, 0);
	char *text = malloc(need ? need : 1);
	RK_ASSERT(text);
	quota_track_format(track, text, need);
	RK_ASSERT(tree_node_replace_data(t, stats, stats_len, text, (int32_t)need) == 0);
	free(text);
}

/* ZooKeeper's updateQuotaStat: the stats of the quota on prefix take the
 * change, whatever other keys they hold. */
static void stats_add(struct tree *t, const char *prefix, size_t prefix_len, int64_t count_diff,
		      int64_t bytes_diff)
{
	size_t len;
	char *stats = node_path(prefix, prefix_len, QUOTA_STATS_NODE, &len);
	const struct znode *n = tree_lookup(tree_working(t), stats, len);
	struct quota_track track;
	if (!n) {
		log_warn("quota on %.*s has no %s node: its usage is not counted", (int)prefix_len,
			 prefix, stats);
	} else if (quota_track_parse(&track, n->data, data_len_of(n)) ||
		   quota_track_set(&track, KEY_COUNT,
				   add_wrap(quota_track_get(&track, KEY_COUNT), count_diff)) ||
		   quota_track_set(&track, KEY_BYTES,
				   add_wrap(quota_track_get(&track, KEY_BYTES), bytes_diff))) {
		log_warn("quota stats %s do not parse as count=N,bytes=M: left as they are", stats);
	} else {
		stats_write(t, stats, len, &track);
	}
	free(stats);
}

struct walk {
	char **stack;
	size_t n, cap;
	const char *parent;
	size_t parent_len;
};

static void walk_push(struct walk *w, const char *a, size_t a_len, const char *b, size_t b_len)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 64;
		w->stack = realloc(w->stack, w->cap * sizeof *w->stack);
		RK_ASSERT(w->stack);
	}
	char *p = malloc(a_len + b_len + 2);
	RK_ASSERT(p);
	memcpy(p, a, a_len);
	size_t len = a_len;
	if (b) {
		p[len++] = '/';
		memcpy(p + len, b, b_len);
		len += b_len;
	}
	p[len] = 0;
	w->stack[w->n++] = p;
}

static int push_child(void *ctx, const char *name, size_t len)
{
	struct walk *w = ctx;
	walk_push(w, w->parent, w->parent_len, name, len);
	return 0;
}

/* ZooKeeper's updateQuotaForPath: the stats node of prefix gets a fresh
 * "count=N,bytes=M" of the subtree as it is now (no node: 0 and 0). An
 * explicit stack, as subtrees may be deeper than the C stack. */
static void stats_recount(struct tree *t, const char *prefix, size_t prefix_len)
{
	const struct tree_version *v = tree_working(t);
	struct walk w = {0};
	int64_t count = 0, bytes = 0;
	walk_push(&w, prefix, prefix_len, NULL, 0);
	while (w.n) {
		char *p = w.stack[--w.n];
		size_t len = strlen(p);
		const struct znode *n = tree_lookup(v, p, len);
		if (n) {
			count++;
			bytes += n->stat.data_length;
			w.parent = p;
			w.parent_len = len;
			tree_foreach_child(n, push_child, &w);
		}
		free(p);
	}
	free(w.stack);
	struct quota_track track = {0};
	quota_track_set(&track, KEY_COUNT, count);
	quota_track_set(&track, KEY_BYTES, bytes);
	size_t len;
	char *stats = node_path(prefix, prefix_len, QUOTA_STATS_NODE, &len);
	stats_write(t, stats, len, &track);
	free(stats);
}

/* Whether path is QUOTA_ROOT + P + "/" + node for a non-empty P; sets
 * *prefix_len to P's length (P starts at path + ROOT_LEN). */
static bool is_quota_node(const char *path, size_t len, const char *node, size_t node_len,
			  size_t *prefix_len)
{
	if (len < ROOT_LEN + 2 + 1 + node_len || memcmp(path, QUOTA_ROOT "/", ROOT_LEN + 1) ||
	    path[len - node_len - 1] != '/' || memcmp(path + len - node_len, node, node_len))
		return false;
	*prefix_len = len - ROOT_LEN - node_len - 1;
	return true;
}

static int64_t bytes_of(int32_t data_len)
{
	return data_len > 0 ? data_len : 0;
}

void quota_apply_create(struct tree *t, const char *path, size_t len, int32_t data_len)
{
	size_t stats_prefix;
	if (is_quota_node(path, len, QUOTA_STATS_NODE, STATS_LEN, &stats_prefix))
		stats_recount(t, path + ROOT_LEN, stats_prefix);
	size_t p = quota_prefix(tree_working(t), path, len);
	if (p)
		stats_add(t, path, p, 1, bytes_of(data_len));
}

void quota_apply_delete(struct tree *t, const char *path, size_t len, int32_t old_data_len)
{
	size_t p = quota_prefix(tree_working(t), path, len);
	if (p)
		stats_add(t, path, p, -1, -bytes_of(old_data_len));
}

void quota_apply_set_data(struct tree *t, const char *path, size_t len, int32_t old_data_len,
			  int32_t data_len)
{
	size_t p = quota_prefix(tree_working(t), path, len);
	if (p)
		stats_add(t, path, p, 0, bytes_of(data_len) - bytes_of(old_data_len));
}

/* ---- counters ---- */

bool quota_count_exceeded(struct quota_counters *qc, const char *path, size_t len)
{
	if (len < 2 || path[0] != '/')
		return false;
	const char *name = path + 1;
	const char *slash = memchr(name, '/', len - 1);
	size_t n = slash ? (size_t)(slash - name) : len - 1;
	if (n == 0 || n >= QUOTA_NAMESPACE_BYTES)
		return false;
	uint32_t used = atomic_load_explicit(&qc->used, memory_order_relaxed);
	for (uint32_t i = 0; i < used; i++) {
		if (strlen(qc->ns[i].name) == n && memcmp(qc->ns[i].name, name, n) == 0) {
			atomic_fetch_add_explicit(&qc->ns[i].exceeded, 1, memory_order_relaxed);
			return true;
		}
	}
	if (used == QUOTA_NAMESPACES_MAX)
		return false;
	memcpy(qc->ns[used].name, name, n);
	qc->ns[used].name[n] = 0;
	atomic_store_explicit(&qc->ns[used].exceeded, 1, memory_order_relaxed);
	atomic_store_explicit(&qc->used, used + 1, memory_order_release);
	return true;
}
