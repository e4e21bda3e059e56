/* Global session table of the sequencer. The table is private to one
 * thread, so its maps free replaced nodes at once instead of retiring. */
#include "core/session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/log.h"

struct session_table {
	struct hamt_root by_id; /* 8-byte id -> struct session */
	uint64_t next_id;
	struct hamt_gc gc;
};

static void free_now(void *ctx, void *p)
{
	free(p);
}

struct session_table *session_table_create(uint8_t server_id, int64_t now_ms)
{
	struct session_table *st = calloc(1, sizeof *st);
	if (!st)
		return NULL;
	/* ZooKeeper's layout: server id in the top byte, then the start time
	 * in milliseconds shifted so ids from restarts do not collide. */
	uint64_t base = ((uint64_t)now_ms << 24) >> 8;
	st->next_id = ((uint64_t)server_id << 56) | base;
	st->gc = (struct hamt_gc){.retire = free_now, .ctx = NULL};
	return st;
}

static uint64_t id_hash(uint64_t id)
{
	return hamt_hash(&id, sizeof id);
}

struct session *session_open(struct session_table *st, int32_t timeout_ms, uint16_t core,
			     int64_t now_ms)
{
	struct session *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	acl_auth_init(&s->auth);
	do {
		s->id = st->next_id++;
	} while (s->id == 0 || session_find(st, s->id));
	s->timeout_ms = timeout_ms;
	s->owner_core = core;
	if (getrandom(s->passwd, sizeof s->passwd, 0) != (ssize_t)sizeof s->passwd)
		goto err;
	session_touch(st, s, now_ms);
	if (hamt_put(&st->by_id, &st->by_id, &s->id, sizeof s->id, id_hash(s->id), s, NULL,
		     &st->gc))
		goto err;
	return s;
err:
	acl_auth_clear(&s->auth);
	free(s);
	return NULL;
}

struct session *session_restore(struct session_table *st, uint64_t id, int32_t timeout_ms,
				const uint8_t *passwd, int64_t now_ms)
{
	if (session_find(st, id))
		return NULL;
	struct session *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	acl_auth_init(&s->auth);
	s->id = id;
	s->timeout_ms = timeout_ms;
	memcpy(s->passwd, passwd, sizeof s->passwd);
	session_touch(st, s, now_ms);
	if (hamt_put(&st->by_id, &st->by_id, &s->id, sizeof s->id, id_hash(s->id), s, NULL,
		     &st->gc)) {
		free(s);
		return NULL;
	}
	return s;
}

struct session *session_find(struct session_table *st, uint64_t id)
{
	void *v;
	if (!hamt_get(&st->by_id, &id, sizeof id, id_hash(id), &v))
		return NULL;
	return v;
}

void session_touch(struct session_table *st, struct session *s, int64_t now_ms)
{
	s->deadline_ms = now_ms + s->timeout_ms;
}

void session_remove(struct session_table *st, struct session *s)
{
	RK_ASSERT(s->ephemerals.count == 0);
	RK_ASSERT(hamt_del(&st->by_id, &st->by_id, &s->id, sizeof s->id, id_hash(s->id), NULL,
			   &st->gc) == 0);
	hamt_destroy(&s->ephemerals);
	acl_auth_clear(&s->auth);
	free(s);
}

size_t session_count(const struct session_table *st)
{
	return st->by_id.count;
}

int session_ephemeral_add(struct session_table *st, struct session *s, const char *path, size_t len)
{
	return hamt_put(&s->ephemerals, &s->ephemerals, path, len, hamt_hash(path, len), NULL, NULL,
			&st->gc);
}

void session_ephemeral_del(struct session_table *st, struct session *s, const char *path,
			   size_t len)
{
	hamt_del(&s->ephemerals, &s->ephemerals, path, len, hamt_hash(path, len), NULL, &st->gc);
}

struct expire_scan {
	int64_t now_ms;
	void (*fn)(void *ctx, struct session *s);
	void *ctx;
	struct session **hits;
	size_t n, cap;
};

static int collect_expired(void *ctx, const void *key, size_t len, void *val)
{
	struct expire_scan *e = ctx;
	struct session *s = val;
	if (s->closing || s->deadline_ms > e->now_ms)
		return 0;
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 16;
		struct session **h = realloc(e->hits, cap * sizeof *h);
		if (!h)
			return 1; /* the rest expire at the next scan */
		e->hits = h;
		e->cap = cap;
	}
	e->hits[e->n++] = s;
	return 0;
}

void session_foreach_expired(struct session_table *st, int64_t now_ms,
			     void (*fn)(void *ctx, struct session *s), void *ctx)
{
	/* Collect first: fn may remove sessions from the table. */
	struct expire_scan e = {.now_ms = now_ms, .fn = fn, .ctx = ctx};
	hamt_foreach(&st->by_id, collect_expired, &e);
	for (size_t i = 0; i < e.n; i++)
		fn(ctx, e.hits[i]);
	free(e.hits);
}

struct each {
	void (*fn)(void *ctx, struct session *s);
	void *ctx;
};

static int visit(void *ctx, const void *key, size_t len, void *val)
{
	struct each *e = ctx;
	e->fn(e->ctx, val);
	return 0;
}

void session_foreach(struct session_table *st, void (*fn)(void *ctx, struct session *s), void *ctx)
{
	struct each e = {fn, ctx};
	hamt_foreach(&st->by_id, visit, &e);
}

static void destroy_one(void *ctx, struct session *s)
{
	hamt_destroy(&s->ephemerals);
	acl_auth_clear(&s->auth);
	free(s);
}

void session_table_destroy(struct session_table *st)
{
	if (!st)
		return;
	session_foreach(st, destroy_one, NULL);
	hamt_destroy(&st->by_id);
	free(st);
}
