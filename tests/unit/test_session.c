/* Session table: ZooKeeper's id layout, random passwords, deadlines and
 * expiry scans, ephemeral bookkeeping and removal. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/session.h"

#define SERVER_ID 7
#define NOW_MS	  1700000000000LL

struct seen {
	struct session *s[64];
	size_t n;
};

static void collect(void *ctx, struct session *s)
{
	struct seen *seen = ctx;
	cr_assert_lt(seen->n, 64);
	seen->s[seen->n++] = s;
}

static bool contains(const struct seen *seen, const struct session *s)
{
	for (size_t i = 0; i < seen->n; i++)
		if (seen->s[i] == s)
			return true;
	return false;
}

static struct seen expired_at(struct session_table *st, int64_t now_ms)
{
	struct seen seen = {.n = 0};
	session_foreach_expired(st, now_ms, collect, &seen);
	return seen;
}

Test(session, ids_are_unique_nonzero_and_carry_the_server_id_in_the_top_byte)
{
	struct session_table *st = session_table_create(SERVER_ID, NOW_MS);
	cr_assert_not_null(st);
	struct session *s[32];
	for (int i = 0; i < 32; i++) {
		s[i] = session_open(st, 10000, 0, NOW_MS);
		cr_assert_not_null(s[i]);
		cr_assert_neq(s[i]->id, 0);
		cr_assert_eq(s[i]->id >> 56, SERVER_ID, "id %#llx", (unsigned long long)s[i]->id);
		for (int j = 0; j < i; j++)
			cr_assert_neq(s[i]->id, s[j]->id);
	}
	cr_assert_eq(session_count(st), 32);
	session_table_destroy(st);
}

Test(session, id_base_follows_zookeeper_time_layout)
{
	/* ZooKeeper: ((now_ms << 24) >>> 8) | (server id << 56). */
	struct session_table *st = session_table_create(SERVER_ID, NOW_MS);
	struct session *s = session_open(st, 10000, 0, NOW_MS);
	uint64_t expect = ((uint64_t)SERVER_ID << 56) | (((uint64_t)NOW_MS << 24) >> 8);
	cr_assert_eq(s->id, expect, "id %#llx, expected %#llx", (unsigned long long)s->id,
		     (unsigned long long)expect);
	struct session *t = session_open(st, 10000, 0, NOW_MS);
	cr_assert_eq(t->id, expect + 1);
	session_table_destroy(st);
}

Test(session, tables_of_different_servers_never_share_ids)
{
	struct session_table *a = session_table_create(1, NOW_MS);
	struct session_table *b = session_table_create(2, NOW_MS);
	struct session *sa = session_open(a, 10000, 0, NOW_MS);
	struct session *sb = session_open(b, 10000, 0, NOW_MS);
	cr_assert_neq(sa->id, sb->id);
	cr_assert_eq(sa->id >> 56, 1);
	cr_assert_eq(sb->id >> 56, 2);
	session_table_destroy(a);
	session_table_destroy(b);
}

Test(session, passwords_are_sixteen_random_bytes_differing_between_sessions)
{
	struct session_table *st = session_table_create(SERVER_ID, NOW_MS);
	struct session *a = session_open(st, 10000, 0, NOW_MS);
	struct session *b = session_open(st, 10000, 0, NOW_MS);
	cr_assert_eq(sizeof a->passwd, 16);
	static const uint8_t zero[16];
	cr_assert_neq(memcmp(a->passwd, zero, 16), 0);
	cr_assert_neq(memcmp(b->passwd, zero, 16), 0);
	cr_assert_neq(memcmp(a->passwd, b->passwd, 16), 0);
	session_table_destroy(st);
}

Test(session, open_records_timeout_core_and_deadline)
{
	struct session_table *st = session_table_create(SERVER_ID, NOW_MS);
	struct session *s = session_open(st, 4000, 3, NOW_MS);
	cr_assert_eq(s->timeout_ms, 4000);
	cr_assert_eq(s->owner_core, 3);
	cr_assert_eq(s->deadline_ms, NOW_MS + 4000);
	cr_assert_not(s->closing);
	cr_assert_eq(s->ephemerals.count, 0);
	cr_assert_eq(s->auth.count, 0);
	session_table_destroy(st);
}

Test(session, find_returns_open_sessions_and_misses_unknown_ids)
{
	struct session_table *st = session_table_create(SERVER_ID, NOW_MS);
	struct session *a = session_open(st, 10000, 0, NOW_MS);
	struct session *b = session_open(st, 10000, 1, NOW_MS);
	cr_assert_eq(session_find(st, a->id), a);
	cr_assert_eq(session_find(st, b->id), b);
	cr_assert_null(session_find(st, b->id + 1000));
	cr_assert_null(session_find(st, 0));
	session_table_destroy(st);
}

Test(session, touch_moves_the_deadline)
{
	struct session_table *st = session_table_create(SERVER_ID, NOW_MS);
	struct session *s = session_open(st, 5000, 0, NOW_MS);
	session_touch(st, s, NOW_MS + 3000);
	cr_assert_eq(s->deadline_ms, NOW_MS + 8000);
	struct seen seen = expired_at(st, NOW_MS + 6000);
	cr_assert_eq(seen.n, 0);
	seen = expired_at(st, NOW_MS + 8001);
	cr_assert_eq(seen.n, 1);
	cr_assert_eq(seen.s[0], s);
	session_table_destroy(st);
}

Test(session, expiry_scan_returns_only_sessions_past_deadline_and_not_closing)
{
	struct session_table *st = session_table_create(SERVER_ID, NOW_MS);
	struct session *short1 = session_open(st, 1000, 0, NOW_MS);
	struct session *short2 = session_open(st, 2000, 0, NOW_MS);
	struct session *closing = session_open(st, 1000, 0, NOW_MS);
	struct session *lasting = session_open(st, 30000, 0, NOW_MS);
	struct session *touched = session_open(st, 2000, 0, NOW_MS);
	closing->closing = true;
	session_touch(st, touched, NOW_MS + 2500);

	cr_assert_eq(expired_at(st, NOW_MS).n, 0);

	struct seen seen = expired_at(st, NOW_MS + 3000);
	cr_assert_eq(seen.n, 2);
	cr_assert(contains(&seen, short1));
	cr_assert(contains(&seen, short2));
	cr_assert_not(contains(&seen, closing));
	cr_assert_not(contains(&seen, lasting));
	cr_assert_not(contains(&seen, touched));

	seen = expired_at(st, NOW_MS + 31000);
	cr_assert_eq(seen.n, 4);
	cr_assert_not(contains(&seen, closing));
	session_table_destroy(st);
}

static void remove_each(void *ctx, struct session *s)
{
	session_remove(ctx, s);
}

Test(session, expiry_callback_may_remove_the_sessions_it_is_given)
{
	struct session_table *st = session_table_create(SERVER_ID, NOW_MS);
	for (int i = 0; i < 20; i++)
		session_open(st, i < 15 ? 1000 : 60000, 0, NOW_MS);
	session_foreach_expired(st, NOW_MS + 2000, remove_each, st);
	cr_assert_eq(session_count(st), 5);
	cr_assert_eq(expired_at(st, NOW_MS + 2000).n, 0);
	session_table_destroy(st);
}

Test(session, ephemeral_add_and_del_track_the_count)
{
	struct session_table *st = session_table_create(SERVER_ID, NOW_MS);
	struct session *s = session_open(st, 10000, 0, NOW_MS);
	cr_assert_eq(session_ephemeral_add(st, s, "/a", 2), 0);
	cr_assert_eq(session_ephemeral_add(st, s, "/b", 2), 0);
	cr_assert_eq(session_ephemeral_add(st, s, "/a/c", 4), 0);
	cr_assert_eq(s->ephemerals.count, 3);
	/* Adding a path twice records it once. */
	cr_assert_eq(session_ephemeral_add(st, s, "/a", 2), 0);
	cr_assert_eq(s->ephemerals.count, 3);
	session_ephemeral_del(st, s, "/a", 2);
	cr_assert_eq(s->ephemerals.count, 2);
	cr_assert_not(hamt_get(&s->ephemerals, "/a", 2, hamt_hash("/a", 2), NULL));
	cr_assert(hamt_get(&s->ephemerals, "/a/c", 4, hamt_hash("/a/c", 4), NULL));
	/* Deleting an unknown path changes nothing. */
	session_ephemeral_del(st, s, "/zz", 3);
	cr_assert_eq(s->ephemerals.count, 2);
	session_ephemeral_del(st, s, "/b", 2);
	session_ephemeral_del(st, s, "/a/c", 4);
	cr_assert_eq(s->ephemerals.count, 0);
	session_remove(st, s);
	cr_assert_eq(session_count(st), 0);
	session_table_destroy(st);
}

Test(session, ephemerals_are_per_session)
{
	struct session_table *st = session_table_create(SERVER_ID, NOW_MS);
	struct session *a = session_open(st, 10000, 0, NOW_MS);
	struct session *b = session_open(st, 10000, 0, NOW_MS);
	cr_assert_eq(session_ephemeral_add(st, a, "/x", 2), 0);
	cr_assert_eq(a->ephemerals.count, 1);
	cr_assert_eq(b->ephemerals.count, 0);
	session_ephemeral_del(st, b, "/x", 2);
	cr_assert_eq(a->ephemerals.count, 1);
	/* The table frees sessions that still hold ephemerals at shutdown. */
	session_table_destroy(st);
}

Test(session, remove_forgets_the_session_and_keeps_the_others)
{
	struct session_table *st = session_table_create(SERVER_ID, NOW_MS);
	struct session *a = session_open(st, 10000, 0, NOW_MS);
	struct session *b = session_open(st, 10000, 0, NOW_MS);
	uint64_t a_id = a->id;
	cr_assert_eq(acl_auth_add(&a->auth, "digest", "u:h"), 0);
	session_remove(st, a);
	cr_assert_null(session_find(st, a_id));
	cr_assert_eq(session_find(st, b->id), b);
	cr_assert_eq(session_count(st), 1);
	/* A new session never reuses the removed id. */
	struct session *c = session_open(st, 10000, 0, NOW_MS);
	cr_assert_neq(c->id, a_id);
	session_table_destroy(st);
}

Test(session, foreach_visits_every_session_once)
{
	struct session_table *st = session_table_create(SERVER_ID, NOW_MS);
	struct seen seen = {.n = 0};
	for (int i = 0; i < 40; i++)
		session_open(st, 10000, 0, NOW_MS);
	session_foreach(st, collect, &seen);
	cr_assert_eq(seen.n, 40);
	for (size_t i = 0; i < seen.n; i++)
		for (size_t j = 0; j < i; j++)
			cr_assert_neq(seen.s[i], seen.s[j]);
	session_table_destroy(st);
}
