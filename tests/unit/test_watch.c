/* Watch table: ZooKeeper 3.9 trigger rules, one-shot vs persistent, dedup,
 * removal, enumeration, the bound, and a million watches. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/watch.h"

#define EVENTS_MAX 16

struct event {
	uint64_t session;
	enum zk_event_type type;
	char path[64];
};

struct recorder {
	struct event ev[EVENTS_MAX];
	size_t n; /* all emits, even past EVENTS_MAX */
};

static void record(void *ctx, uint64_t session, enum zk_event_type type, const char *path,
		   size_t len)
{
	struct recorder *r = ctx;
	if (r->n < EVENTS_MAX) {
		struct event *e = &r->ev[r->n];
		e->session = session;
		e->type = type;
		cr_assert_lt(len, sizeof(e->path));
		memcpy(e->path, path, len);
		e->path[len] = '\0';
	}
	r->n++;
}

static void count_emit(void *ctx, uint64_t session, enum zk_event_type type, const char *path,
		       size_t len)
{
	(*(size_t *)ctx)++;
}

static int add(struct watch_table *t, const char *path, enum watch_kind kind, uint64_t session)
{
	return watch_add(t, path, strlen(path), kind, session);
}

/* Triggers type on path and returns what was emitted. */
static struct recorder fire(struct watch_table *t, const char *path, enum zk_event_type type)
{
	struct recorder r = {.n = 0};
	watch_trigger(t, path, strlen(path), type, record, &r);
	return r;
}

static bool has(const struct watch_table *t, const char *path, enum watch_kind kind,
		uint64_t session)
{
	return watch_exists(t, path, strlen(path), kind, session);
}

static struct watch_table *table(void)
{
	struct watch_table *t = watch_table_create(1u << 20);
	cr_assert_not_null(t);
	return t;
}

static void assert_event(const struct recorder *r, size_t i, uint64_t session,
			 enum zk_event_type type, const char *path)
{
	cr_assert_lt(i, r->n);
	cr_assert_eq(r->ev[i].session, session);
	cr_assert_eq(r->ev[i].type, type);
	cr_assert_str_eq(r->ev[i].path, path);
}

Test(watch, data_watch_fires_on_data_changed_once)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_DATA, 7), 0);
	struct recorder r = fire(t, "/a", ZEV_NODE_DATA_CHANGED);
	cr_assert_eq(r.n, 1);
	assert_event(&r, 0, 7, ZEV_NODE_DATA_CHANGED, "/a");
	cr_assert_eq(watch_count(t), 0);
	cr_assert_eq(watch_path_count(t), 0);
	cr_assert_eq(watch_session_count(t), 0);
	cr_assert_eq(fire(t, "/a", ZEV_NODE_DATA_CHANGED).n, 0);
	watch_table_destroy(t);
}

Test(watch, data_watch_fires_on_created_and_deleted)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_DATA, 1), 0);
	struct recorder r = fire(t, "/a", ZEV_NODE_CREATED);
	cr_assert_eq(r.n, 1);
	assert_event(&r, 0, 1, ZEV_NODE_CREATED, "/a");
	cr_assert_eq(add(t, "/a", WATCH_DATA, 1), 0);
	r = fire(t, "/a", ZEV_NODE_DELETED);
	cr_assert_eq(r.n, 1);
	assert_event(&r, 0, 1, ZEV_NODE_DELETED, "/a");
	cr_assert_eq(watch_count(t), 0);
	watch_table_destroy(t);
}

Test(watch, data_watch_ignores_children_changed)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_DATA, 1), 0);
	cr_assert_eq(fire(t, "/a", ZEV_NODE_CHILDREN_CHANGED).n, 0);
	cr_assert(has(t, "/a", WATCH_DATA, 1));
	watch_table_destroy(t);
}

Test(watch, child_watch_fires_on_children_changed_once)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_CHILD, 3), 0);
	struct recorder r = fire(t, "/a", ZEV_NODE_CHILDREN_CHANGED);
	cr_assert_eq(r.n, 1);
	assert_event(&r, 0, 3, ZEV_NODE_CHILDREN_CHANGED, "/a");
	cr_assert_not(has(t, "/a", WATCH_CHILD, 3));
	cr_assert_eq(fire(t, "/a", ZEV_NODE_CHILDREN_CHANGED).n, 0);
	watch_table_destroy(t);
}

Test(watch, child_watch_ignores_created_and_data_changed)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_CHILD, 3), 0);
	cr_assert_eq(fire(t, "/a", ZEV_NODE_CREATED).n, 0);
	cr_assert_eq(fire(t, "/a", ZEV_NODE_DATA_CHANGED).n, 0);
	cr_assert(has(t, "/a", WATCH_CHILD, 3));
	watch_table_destroy(t);
}

Test(watch, child_watch_fires_on_deleted)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_CHILD, 3), 0);
	struct recorder r = fire(t, "/a", ZEV_NODE_DELETED);
	cr_assert_eq(r.n, 1);
	assert_event(&r, 0, 3, ZEV_NODE_DELETED, "/a");
	cr_assert_eq(watch_count(t), 0);
	watch_table_destroy(t);
}

Test(watch, deleted_notifies_data_and_child_watcher_once)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_DATA, 5), 0);
	cr_assert_eq(add(t, "/a", WATCH_CHILD, 5), 0);
	cr_assert_eq(watch_count(t), 2);
	struct recorder r = fire(t, "/a", ZEV_NODE_DELETED);
	cr_assert_eq(r.n, 1);
	assert_event(&r, 0, 5, ZEV_NODE_DELETED, "/a");
	cr_assert_eq(watch_count(t), 0);
	watch_table_destroy(t);
}

Test(watch, two_sessions_are_each_notified)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_DATA, 1), 0);
	cr_assert_eq(add(t, "/a", WATCH_DATA, 2), 0);
	struct recorder r = fire(t, "/a", ZEV_NODE_DATA_CHANGED);
	cr_assert_eq(r.n, 2);
	cr_assert_eq(r.ev[0].session + r.ev[1].session, 3);
	cr_assert_neq(r.ev[0].session, r.ev[1].session);
	cr_assert_eq(watch_count(t), 0);
	watch_table_destroy(t);
}

Test(watch, other_paths_are_not_notified)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_DATA, 1), 0);
	cr_assert_eq(add(t, "/a/b", WATCH_DATA, 1), 0);
	cr_assert_eq(fire(t, "/b", ZEV_NODE_DATA_CHANGED).n, 0);
	cr_assert_eq(fire(t, "/a/b/c", ZEV_NODE_DATA_CHANGED).n, 0);
	cr_assert_eq(watch_count(t), 2);
	watch_table_destroy(t);
}

Test(watch, persistent_gets_every_event_on_its_path_and_stays)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_PERSISTENT, 9), 0);
	enum zk_event_type types[] = {ZEV_NODE_CREATED, ZEV_NODE_DATA_CHANGED,
				      ZEV_NODE_CHILDREN_CHANGED, ZEV_NODE_DELETED};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct recorder r = fire(t, "/a", types[i]);
		cr_assert_eq(r.n, 1);
		assert_event(&r, 0, 9, types[i], "/a");
	}
	cr_assert_eq(watch_count(t), 1);
	cr_assert(has(t, "/a", WATCH_PERSISTENT, 9));
	watch_table_destroy(t);
}

Test(watch, persistent_ignores_descendants)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_PERSISTENT, 9), 0);
	cr_assert_eq(fire(t, "/a/b", ZEV_NODE_CREATED).n, 0);
	cr_assert_eq(fire(t, "/a/b", ZEV_NODE_DATA_CHANGED).n, 0);
	cr_assert_eq(fire(t, "/a/b", ZEV_NODE_DELETED).n, 0);
	watch_table_destroy(t);
}

Test(watch, recursive_gets_descendant_events_with_descendant_path)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_PERSISTENT_RECURSIVE, 4), 0);
	struct recorder r = fire(t, "/a/b/c", ZEV_NODE_CREATED);
	cr_assert_eq(r.n, 1);
	assert_event(&r, 0, 4, ZEV_NODE_CREATED, "/a/b/c");
	r = fire(t, "/a/b", ZEV_NODE_DATA_CHANGED);
	cr_assert_eq(r.n, 1);
	assert_event(&r, 0, 4, ZEV_NODE_DATA_CHANGED, "/a/b");
	r = fire(t, "/a/b/c", ZEV_NODE_DELETED);
	cr_assert_eq(r.n, 1);
	assert_event(&r, 0, 4, ZEV_NODE_DELETED, "/a/b/c");
	r = fire(t, "/a", ZEV_NODE_DATA_CHANGED);
	cr_assert_eq(r.n, 1);
	assert_event(&r, 0, 4, ZEV_NODE_DATA_CHANGED, "/a");
	cr_assert_eq(watch_count(t), 1);
	watch_table_destroy(t);
}

Test(watch, recursive_ignores_children_changed)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_PERSISTENT_RECURSIVE, 4), 0);
	cr_assert_eq(fire(t, "/a", ZEV_NODE_CHILDREN_CHANGED).n, 0);
	cr_assert_eq(fire(t, "/a/b", ZEV_NODE_CHILDREN_CHANGED).n, 0);
	cr_assert(has(t, "/a", WATCH_PERSISTENT_RECURSIVE, 4));
	watch_table_destroy(t);
}

Test(watch, recursive_ignores_sibling_sharing_a_prefix)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_PERSISTENT_RECURSIVE, 4), 0);
	cr_assert_eq(fire(t, "/ab", ZEV_NODE_CREATED).n, 0);
	cr_assert_eq(fire(t, "/b/a", ZEV_NODE_CREATED).n, 0);
	watch_table_destroy(t);
}

Test(watch, recursive_on_root_sees_the_whole_tree)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/", WATCH_PERSISTENT_RECURSIVE, 4), 0);
	struct recorder r = fire(t, "/x/y/z", ZEV_NODE_DATA_CHANGED);
	cr_assert_eq(r.n, 1);
	assert_event(&r, 0, 4, ZEV_NODE_DATA_CHANGED, "/x/y/z");
	r = fire(t, "/", ZEV_NODE_DATA_CHANGED);
	cr_assert_eq(r.n, 1);
	assert_event(&r, 0, 4, ZEV_NODE_DATA_CHANGED, "/");
	watch_table_destroy(t);
}

Test(watch, overlapping_watches_of_a_session_notify_once)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/", WATCH_PERSISTENT_RECURSIVE, 1), 0);
	cr_assert_eq(add(t, "/a", WATCH_PERSISTENT_RECURSIVE, 1), 0);
	cr_assert_eq(add(t, "/a/b", WATCH_DATA, 1), 0);
	cr_assert_eq(add(t, "/a/b", WATCH_PERSISTENT, 1), 0);
	cr_assert_eq(add(t, "/a/b", WATCH_DATA, 2), 0);
	struct recorder r = fire(t, "/a/b", ZEV_NODE_DATA_CHANGED);
	cr_assert_eq(r.n, 2);
	cr_assert_eq(r.ev[0].session + r.ev[1].session, 3);
	cr_assert_not(has(t, "/a/b", WATCH_DATA, 1));
	cr_assert(has(t, "/a/b", WATCH_PERSISTENT, 1));
	cr_assert(has(t, "/a", WATCH_PERSISTENT_RECURSIVE, 1));
	cr_assert_eq(watch_count(t), 3);
	watch_table_destroy(t);
}

Test(watch, one_shot_goes_and_persistent_stays_on_same_path)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_DATA, 1), 0);
	cr_assert_eq(add(t, "/a", WATCH_PERSISTENT, 1), 0);
	cr_assert_eq(fire(t, "/a", ZEV_NODE_DATA_CHANGED).n, 1);
	cr_assert_not(has(t, "/a", WATCH_DATA, 1));
	cr_assert(has(t, "/a", WATCH_PERSISTENT, 1));
	cr_assert_eq(fire(t, "/a", ZEV_NODE_DATA_CHANGED).n, 1);
	cr_assert_eq(watch_count(t), 1);
	watch_table_destroy(t);
}

Test(watch, adding_twice_is_a_noop)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_DATA, 1), 0);
	cr_assert_eq(add(t, "/a", WATCH_DATA, 1), 0);
	cr_assert_eq(watch_count(t), 1);
	cr_assert_eq(fire(t, "/a", ZEV_NODE_DATA_CHANGED).n, 1);
	cr_assert_eq(watch_count(t), 0);
	watch_table_destroy(t);
}

Test(watch, path_is_copied)
{
	struct watch_table *t = table();
	char buf[] = "/copied";
	cr_assert_eq(watch_add(t, buf, strlen(buf), WATCH_DATA, 1), 0);
	memset(buf, 'x', strlen(buf));
	cr_assert(has(t, "/copied", WATCH_DATA, 1));
	watch_table_destroy(t);
}

struct listing {
	char line[16][64];
	size_t n;
};

static int list_watch(void *ctx, uint64_t session, const char *path, size_t len,
		      enum watch_kind kind)
{
	struct listing *l = ctx;
	cr_assert_lt(l->n, 16);
	snprintf(l->line[l->n++], 64, "%llu %.*s %d", (unsigned long long)session, (int)len, path,
		 (int)kind);
	return 0;
}

static bool listed(const struct listing *l, const char *line)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->line[i], line) == 0)
			return true;
	return false;
}

Test(watch, remove_session_drops_every_watch_of_that_session_only)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_DATA, 1), 0);
	cr_assert_eq(add(t, "/a", WATCH_CHILD, 1), 0);
	cr_assert_eq(add(t, "/b", WATCH_PERSISTENT_RECURSIVE, 1), 0);
	cr_assert_eq(add(t, "/c", WATCH_PERSISTENT, 1), 0);
	cr_assert_eq(add(t, "/a", WATCH_DATA, 2), 0);
	watch_remove_session(t, 1);
	cr_assert_eq(watch_count(t), 1);
	cr_assert_eq(watch_session_count(t), 1);
	cr_assert_eq(watch_path_count(t), 1);
	struct listing l = {.n = 0};
	cr_assert_eq(watch_foreach_session(t, 1, list_watch, &l), 0);
	cr_assert_eq(l.n, 0);
	cr_assert_eq(fire(t, "/b/x", ZEV_NODE_CREATED).n, 0);
	cr_assert_eq(fire(t, "/c", ZEV_NODE_CREATED).n, 0);
	struct recorder r = fire(t, "/a", ZEV_NODE_DELETED);
	cr_assert_eq(r.n, 1);
	assert_event(&r, 0, 2, ZEV_NODE_DELETED, "/a");
	watch_remove_session(t, 42); /* unknown session: nothing to do */
	watch_table_destroy(t);
}

Test(watch, remove_watches_removes_just_that_kind)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_DATA, 1), 0);
	cr_assert_eq(add(t, "/a", WATCH_PERSISTENT, 1), 0);
	cr_assert_eq(watch_remove(t, "/a", 2, WATCH_CHILD, 1), -ENOENT);
	cr_assert_eq(watch_remove(t, "/a", 2, WATCH_DATA, 2), -ENOENT);
	cr_assert_eq(watch_remove(t, "/b", 2, WATCH_DATA, 1), -ENOENT);
	cr_assert_eq(watch_remove(t, "/a", 2, WATCH_PERSISTENT, 1), 0);
	cr_assert_eq(watch_remove(t, "/a", 2, WATCH_PERSISTENT, 1), -ENOENT);
	cr_assert(has(t, "/a", WATCH_DATA, 1));
	cr_assert_eq(watch_count(t), 1);
	cr_assert_eq(fire(t, "/a", ZEV_NODE_CHILDREN_CHANGED).n, 0);
	cr_assert_eq(watch_remove(t, "/a", 2, WATCH_DATA, 1), 0);
	cr_assert_eq(watch_count(t), 0);
	cr_assert_eq(watch_path_count(t), 0);
	cr_assert_eq(watch_session_count(t), 0);
	watch_table_destroy(t);
}

Test(watch, removed_recursive_watch_no_longer_fires)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_PERSISTENT_RECURSIVE, 1), 0);
	cr_assert_eq(watch_remove(t, "/a", 2, WATCH_PERSISTENT_RECURSIVE, 1), 0);
	cr_assert_eq(fire(t, "/a/b", ZEV_NODE_CREATED).n, 0);
	cr_assert_eq(fire(t, "/a", ZEV_NODE_CREATED).n, 0);
	watch_table_destroy(t);
}

Test(watch, check_watches_reports_each_kind)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_CHILD, 1), 0);
	cr_assert_eq(add(t, "/a", WATCH_PERSISTENT_RECURSIVE, 1), 0);
	cr_assert(has(t, "/a", WATCH_CHILD, 1));
	cr_assert(has(t, "/a", WATCH_PERSISTENT_RECURSIVE, 1));
	cr_assert_not(has(t, "/a", WATCH_DATA, 1));
	cr_assert_not(has(t, "/a", WATCH_PERSISTENT, 1));
	cr_assert_not(has(t, "/a", WATCH_CHILD, 2));
	cr_assert_not(has(t, "/a/b", WATCH_PERSISTENT_RECURSIVE, 1));
	watch_table_destroy(t);
}

Test(watch, foreach_session_lists_paths_and_kinds)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_DATA, 1), 0);
	cr_assert_eq(add(t, "/a", WATCH_CHILD, 1), 0);
	cr_assert_eq(add(t, "/b", WATCH_PERSISTENT, 1), 0);
	cr_assert_eq(add(t, "/c", WATCH_DATA, 2), 0);
	struct listing l = {.n = 0};
	cr_assert_eq(watch_foreach_session(t, 1, list_watch, &l), 0);
	cr_assert_eq(l.n, 3);
	cr_assert(listed(&l, "1 /a 0"));
	cr_assert(listed(&l, "1 /a 1"));
	cr_assert(listed(&l, "1 /b 2"));
	watch_table_destroy(t);
}

static int stop_after_two(void *ctx, uint64_t session, const char *path, size_t len,
			  enum watch_kind kind)
{
	return ++*(int *)ctx == 2 ? 77 : 0;
}

Test(watch, foreach_walks_every_watch_and_stops_on_request)
{
	struct watch_table *t = table();
	cr_assert_eq(add(t, "/a", WATCH_DATA, 1), 0);
	cr_assert_eq(add(t, "/a", WATCH_DATA, 2), 0);
	cr_assert_eq(add(t, "/b", WATCH_PERSISTENT_RECURSIVE, 3), 0);
	struct listing l = {.n = 0};
	cr_assert_eq(watch_foreach(t, list_watch, &l), 0);
	cr_assert_eq(l.n, 3);
	cr_assert(listed(&l, "1 /a 0"));
	cr_assert(listed(&l, "2 /a 0"));
	cr_assert(listed(&l, "3 /b 3"));
	int calls = 0;
	cr_assert_eq(watch_foreach(t, stop_after_two, &calls), 77);
	cr_assert_eq(calls, 2);
	watch_table_destroy(t);
}

Test(watch, bound_rejects_new_watches_with_enospc)
{
	struct watch_table *t = watch_table_create(2);
	cr_assert_not_null(t);
	cr_assert_eq(add(t, "/a", WATCH_DATA, 1), 0);
	cr_assert_eq(add(t, "/a", WATCH_CHILD, 1), 0);
	cr_assert_eq(add(t, "/a", WATCH_PERSISTENT, 1), -ENOSPC);
	cr_assert_eq(add(t, "/b", WATCH_DATA, 2), -ENOSPC);
	cr_assert_eq(add(t, "/a", WATCH_DATA, 1), 0); /* already there */
	cr_assert_eq(watch_count(t), 2);
	cr_assert_eq(watch_path_count(t), 1);
	cr_assert_eq(watch_session_count(t), 1);
	cr_assert_eq(fire(t, "/a", ZEV_NODE_DATA_CHANGED).n, 1);
	cr_assert_eq(add(t, "/b", WATCH_DATA, 2), 0);
	watch_table_destroy(t);
}

Test(watch, hot_path_notifies_every_session_once)
{
	enum { SESSIONS = 20000 };
	struct watch_table *t = table();
	for (uint64_t s = 0; s < SESSIONS; s++) {
		cr_assert_eq(add(t, "/hot", WATCH_DATA, s), 0);
		cr_assert_eq(add(t, "/hot", WATCH_CHILD, s), 0);
	}
	cr_assert_eq(watch_count(t), 2 * SESSIONS);
	for (uint64_t s = 0; s < SESSIONS; s += 2)
		watch_remove_session(t, s);
	size_t emitted = 0;
	watch_trigger(t, "/hot", 4, ZEV_NODE_DELETED, count_emit, &emitted);
	cr_assert_eq(emitted, SESSIONS / 2);
	cr_assert_eq(watch_count(t), 0);
	cr_assert_eq(watch_session_count(t), 0);
	watch_table_destroy(t);
}

enum { MILLION = 1000000, MILLION_PATHS = MILLION / 4 };

static void add_million(struct watch_table *t)
{
	char path[32];
	for (int i = 0; i < MILLION_PATHS; i++) {
		int len = snprintf(path, sizeof(path), "/m/%d/n%d", i % 1000, i);
		for (uint64_t s = 0; s < 4; s++)
			cr_assert_eq(watch_add(t, path, (size_t)len, WATCH_DATA,
					       (uint64_t)i % 500 + s * 1000),
				     0);
	}
	cr_assert_eq(watch_count(t), MILLION);
}

Test(watch, million_watches_fire_once_each, .timeout = 120)
{
	struct watch_table *t = watch_table_create(MILLION);
	cr_assert_not_null(t);
	add_million(t);
	cr_assert_eq(add(t, "/one/more", WATCH_DATA, 1), -ENOSPC);
	char path[32];
	size_t emitted = 0;
	for (int i = 0; i < MILLION_PATHS; i++) {
		int len = snprintf(path, sizeof(path), "/m/%d/n%d", i % 1000, i);
		watch_trigger(t, path, (size_t)len, ZEV_NODE_DATA_CHANGED, count_emit, &emitted);
	}
	cr_assert_eq(emitted, MILLION);
	cr_assert_eq(watch_count(t), 0);
	cr_assert_eq(watch_path_count(t), 0);
	cr_assert_eq(watch_session_count(t), 0);
	watch_table_destroy(t);
}

Test(watch, million_watches_go_with_their_sessions, .timeout = 120)
{
	struct watch_table *t = watch_table_create(MILLION);
	cr_assert_not_null(t);
	add_million(t);
	cr_assert_eq(watch_session_count(t), 2000);
	for (uint64_t s = 0; s < 4000; s++)
		watch_remove_session(t, s);
	cr_assert_eq(watch_count(t), 0);
	cr_assert_eq(watch_path_count(t), 0);
	cr_assert_eq(watch_session_count(t), 0);
	watch_table_destroy(t);
}

/* A reference model over a small tree: random adds, removes, session drops
 * and triggers must leave the table and the model agreeing on every watch,
 * and must notify exactly the sessions the model says. Seeded, so a failure
 * replays. Exercises the index fixups as blocks grow and shrink. */
enum { MODEL_PATHS = 9, MODEL_SESSIONS = 24, MODEL_OPS = 60000 };

static const char *const model_path[MODEL_PATHS] = {"/",   "/a", "/a/b", "/a/b/c", "/a/d",
						    "/ab", "/e", "/e/f", "/e/f/g"};
static const int model_parent[MODEL_PATHS] = {-1, 0, 1, 2, 1, 0, 0, 6, 7};

struct model {
	uint8_t kinds[MODEL_PATHS][MODEL_SESSIONS];
	uint64_t notified; /* bit per session, from the table */
	bool twice;	   /* a session was notified twice for one trigger */
};

static uint64_t model_rand(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

static void model_emit(void *ctx, uint64_t session, enum zk_event_type type, const char *path,
		       size_t len)
{
	struct model *m = ctx;
	cr_assert_lt(session, MODEL_SESSIONS);
	if (m->notified & (1ull << session))
		m->twice = true;
	m->notified |= 1ull << session;
}

/* Applies a trigger to the model; returns the sessions it must notify. */
static uint64_t model_trigger(struct model *m, int path, enum zk_event_type type)
{
	uint8_t fire, clear, up;
	switch (type) {
	case ZEV_NODE_CREATED:
	case ZEV_NODE_DATA_CHANGED:
		fire = 1 << WATCH_DATA | 1 << WATCH_PERSISTENT | 1 << WATCH_PERSISTENT_RECURSIVE;
		clear = 1 << WATCH_DATA;
		up = 1 << WATCH_PERSISTENT_RECURSIVE;
		break;
	case ZEV_NODE_DELETED:
		fire = 0xf;
		clear = 1 << WATCH_DATA | 1 << WATCH_CHILD;
		up = 1 << WATCH_PERSISTENT_RECURSIVE;
		break;
	default:
		fire = 1 << WATCH_CHILD | 1 << WATCH_PERSISTENT;
		clear = 1 << WATCH_CHILD;
		up = 0;
		break;
	}
	uint64_t want = 0;
	for (int s = 0; s < MODEL_SESSIONS; s++) {
		if (m->kinds[path][s] & fire)
			want |= 1ull << s;
		m->kinds[path][s] &= (uint8_t)~clear;
		for (int a = model_parent[path]; a >= 0; a = model_parent[a])
			if (m->kinds[a][s] & up)
				want |= 1ull << s;
	}
	return want;
}

static void model_check(const struct watch_table *t, const struct model *m)
{
	uint32_t total = 0;
	for (int p = 0; p < MODEL_PATHS; p++)
		for (int s = 0; s < MODEL_SESSIONS; s++)
			for (int k = 0; k < WATCH_KIND_COUNT; k++) {
				bool want = m->kinds[p][s] & (1 << k);
				total += want;
				cr_assert_eq(has(t, model_path[p], (enum watch_kind)k, (uint64_t)s),
					     want, "path %s session %d kind %d", model_path[p], s,
					     k);
			}
	cr_assert_eq(watch_count(t), total);
}

static void model_step(struct watch_table *t, struct model *m, uint64_t r)
{
	int p = (int)(r % MODEL_PATHS);
	int s = (int)(r / MODEL_PATHS % MODEL_SESSIONS);
	enum watch_kind k = (enum watch_kind)(r / 1024 % WATCH_KIND_COUNT);
	const char *path = model_path[p];
	switch (r / 8192 % 8) {
	case 0:
	case 1:
	case 2:
		cr_assert_eq(add(t, path, k, (uint64_t)s), 0);
		m->kinds[p][s] |= (uint8_t)(1 << k);
		break;
	case 3: {
		int want = m->kinds[p][s] & (1 << k) ? 0 : -ENOENT;
		cr_assert_eq(watch_remove(t, path, strlen(path), k, (uint64_t)s), want);
		m->kinds[p][s] &= (uint8_t) ~(1 << k);
		break;
	}
	case 4:
		if (r / 65536 % 8 == 0) {
			watch_remove_session(t, (uint64_t)s);
			for (int q = 0; q < MODEL_PATHS; q++)
				m->kinds[q][s] = 0;
		}
		break;
	default: {
		static const enum zk_event_type types[] = {ZEV_NODE_CREATED, ZEV_NODE_DELETED,
							   ZEV_NODE_DATA_CHANGED,
							   ZEV_NODE_CHILDREN_CHANGED};
		enum zk_event_type type = types[r / 65536 % 4];
		m->notified = 0;
		m->twice = false;
		watch_trigger(t, path, strlen(path), type, model_emit, m);
		cr_assert_not(m->twice);
		cr_assert_eq(m->notified, model_trigger(m, p, type));
		break;
	}
	}
}

Test(watch, random_ops_match_a_reference_model)
{
	struct watch_table *t = table();
	static struct model m;
	memset(&m, 0, sizeof(m));
	uint64_t state = 0x9e3779b97f4a7c15ull;
	for (int op = 0; op < MODEL_OPS; op++) {
		model_step(t, &m, model_rand(&state));
		if (op % 97 == 0)
			model_check(t, &m);
	}
	model_check(t, &m);
	watch_table_destroy(t);
}
