/* Persistent HAMT: map behaviour, snapshot isolation, hash collisions,
 * retire accounting, allocation failure and canonical shape. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/hamt.h"
#include "core/log.h"

#if defined(__SANITIZE_ADDRESS__) /* gcc */
#define UNDER_ASAN 1
#elif defined(__has_feature) /* clang */
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifdef UNDER_ASAN
#include <sanitizer/lsan_interface.h>
#endif

/* Criterion ignores what LeakSanitizer prints at exit, so tests ask it. */
static bool leaks_found(void)
{
#ifdef UNDER_ASAN
	return __lsan_do_recoverable_leak_check() != 0;
#else
	return false;
#endif
}

/* A second copy of the trie, compiled into this file with its public names
 * prefixed "i" and malloc/free redirected, so tests can count live
 * allocations and fail the k-th one; the node layout it brings along lets
 * the checks below walk any root. Every hamt_*() call here still goes to
 * the linked core/hamt.c. */
static long alloc_live;
static long alloc_budget = -1; /* allocations left before malloc fails; -1: no limit */

static void *counted_malloc(size_t size)
{
	if (alloc_budget == 0)
		return NULL;
	if (alloc_budget > 0)
		alloc_budget--;
	void *p = malloc(size);
	if (p)
		alloc_live++;
	return p;
}

static void counted_free(void *p)
{
	if (p)
		alloc_live--;
	free(p);
}

#define hamt_hash    ihamt_hash
#define hamt_get     ihamt_get
#define hamt_put     ihamt_put
#define hamt_del     ihamt_del
#define hamt_foreach ihamt_foreach
#define hamt_destroy ihamt_destroy
#define malloc	     counted_malloc
#define free	     counted_free
#include "core/hamt.c"
#undef hamt_hash
#undef hamt_get
#undef hamt_put
#undef hamt_del
#undef hamt_foreach
#undef hamt_destroy
#undef malloc
#undef free

#define KEY_MAX 32

static size_t key_make(char *buf, unsigned i)
{
	return (size_t)snprintf(buf, KEY_MAX, "/k%u", i);
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

enum hash_mode {
	HASH_FULL = 0, /* XXH3: collisions only by accident */
	HASH_CONSTANT, /* every key collides in all 64 bits */
	HASH_FEW,      /* 7 hash values: big collision nodes right under the root */
	HASH_TOP_BITS, /* hashes differ only in bits 60-63: chains down to depth 12 */
	HASH_MIXED,    /* bits 0-5 and 63 vary: shallow and deepest splits at once */
	HASH_MODE_COUNT,
};

static uint64_t key_hash(enum hash_mode mode, const void *key, size_t len)
{
	uint64_t h = XXH3_64bits(key, len);
	switch (mode) {
	case HASH_FULL:
		return h;
	case HASH_CONSTANT:
		return 0x9e3779b97f4a7c15ull;
	case HASH_FEW:
		return h % 7;
	case HASH_TOP_BITS:
		return 0x0123456789abcdefull ^ (h & 0xfull << 60);
	case HASH_MIXED:
		return 0x0123456789abcdefull ^ (h & (0x3full | 1ull << 63));
	case HASH_MODE_COUNT:
		break;
	}
	cr_assert_fail("bad hash mode %d", mode);
	return 0;
}

/* A growable set of pointers: retired objects, or everything a root reaches. */
struct ptrs {
	void **p;
	size_t n;
	size_t cap;
};

static void ptrs_push(struct ptrs *s, void *p)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->p = realloc(s->p, s->cap * sizeof *s->p);
		cr_assert_not_null(s->p);
	}
	s->p[s->n++] = p;
}

static int ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (void *const *)a;
	uintptr_t y = (uintptr_t) * (void *const *)b;
	return x < y ? -1 : x > y;
}

static void ptrs_sort(struct ptrs *s)
{
	if (s->n)
		qsort(s->p, s->n, sizeof *s->p, ptr_cmp);
}

static bool ptrs_has(const struct ptrs *s, void *p)
{
	return s->n && bsearch(&p, s->p, s->n, sizeof *s->p, ptr_cmp);
}

static bool ptrs_equal(const struct ptrs *a, const struct ptrs *b)
{
	return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n * sizeof *a->p) == 0);
}

static void ptrs_release(struct ptrs *s)
{
	free(s->p);
	*s = (struct ptrs){0};
}

static void retire_record(void *ctx, void *ptr)
{
	ptrs_push(ctx, ptr);
}

/* For tests that drop every old root at once: nothing can still read it. */
static void retire_free(void *ctx, void *ptr)
{
	free(ptr);
}

static void retire_forbidden(void *ctx, void *ptr)
{
	cr_assert_fail("retired %p on an update that should change nothing", ptr);
}

static void collect(uintptr_t ref, struct ptrs *s)
{
	if (is_leaf(ref)) {
		ptrs_push(s, leaf_of(ref));
		return;
	}
	struct hamt_node *x = node_of(ref);
	ptrs_push(s, x);
	for (unsigned i = 0; i < x->n; i++)
		collect(x->slot[i], s);
}

/* Every node and leaf reachable from r, sorted. */
static struct ptrs reachable(const struct hamt_root *r)
{
	struct ptrs s = {0};
	if (r->node)
		collect((uintptr_t)r->node, &s);
	ptrs_sort(&s);
	return s;
}

/* Asserts retired is exactly what old reaches and next does not, each once. */
static void check_retired(const struct ptrs *old, const struct ptrs *next, struct ptrs *retired)
{
	size_t dropped = 0;
	for (size_t i = 0; i < old->n; i++)
		dropped += !ptrs_has(next, old->p[i]);
	ptrs_sort(retired);
	cr_assert_eq(retired->n, dropped, "retired %zu objects, the update dropped %zu", retired->n,
		     dropped);
	for (size_t i = 0; i < retired->n; i++) {
		void *p = retired->p[i];
		cr_assert(i == 0 || p != retired->p[i - 1], "%p retired twice", p);
		cr_assert(ptrs_has(old, p), "%p retired but never in the old root", p);
		cr_assert(!ptrs_has(next, p), "%p retired yet reachable from the new root", p);
	}
}

static bool leaves_equal(const struct leaf *a, const struct leaf *b)
{
	return a->hash == b->hash && a->len == b->len && memcmp(a->key, b->key, a->len) == 0;
}

/* Checks the shape invariants of hamt.c's header for the subtree at ref,
 * whose hashes all carry prefix in their low 5 * depth bits, and returns
 * its entry count. */
static size_t check_shape(uintptr_t ref, unsigned depth, uint64_t prefix)
{
	unsigned bits = depth * CHUNK_BITS;
	uint64_t mask = bits >= 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
	cr_assert_neq(ref, 0, "empty slot at depth %u", depth);
	if (is_leaf(ref)) {
		cr_assert_eq(leaf_of(ref)->hash & mask, prefix, "leaf on the wrong path");
		return 1;
	}
	struct hamt_node *x = node_of(ref);
	if (!x->bitmap) {
		cr_assert_geq(x->n, 2, "collision node holding one leaf");
		for (unsigned i = 0; i < x->n; i++) {
			cr_assert(is_leaf(x->slot[i]), "collision node holding a node");
			struct leaf *l = leaf_of(x->slot[i]);
			cr_assert_eq(l->hash, leaf_of(x->slot[0])->hash,
				     "mixed hashes in collision");
			cr_assert_eq(l->hash & mask, prefix, "collision node on the wrong path");
			for (unsigned j = 0; j < i; j++)
				cr_assert(!leaves_equal(l, leaf_of(x->slot[j])), "duplicate key");
		}
		return x->n;
	}
	cr_assert_lt(depth, DEPTH_MAX);
	cr_assert_eq(x->n, (uint32_t)__builtin_popcount(x->bitmap));
	if (x->n == 1)
		cr_assert(is_interior(x->slot[0]), "lone leaf or collision child not hoisted");
	size_t count = 0;
	unsigned i = 0;
	for (unsigned c = 0; c < 32; c++) {
		if (x->bitmap & (uint32_t)1 << c)
			count += check_shape(x->slot[i++], depth + 1, prefix | (uint64_t)c << bits);
	}
	return count;
}

static void check_root(const struct hamt_root *r)
{
	if (!r->node)
		cr_assert_eq(r->count, 0);
	else
		cr_assert_eq(check_shape((uintptr_t)r->node, 0, 0), r->count);
}

/* Asserts a and b have the same shape and keys (collision order aside). */
static void assert_same_shape(uintptr_t a, uintptr_t b)
{
	cr_assert_eq(is_leaf(a), is_leaf(b));
	if (is_leaf(a)) {
		cr_assert(leaves_equal(leaf_of(a), leaf_of(b)));
		return;
	}
	struct hamt_node *x = node_of(a), *y = node_of(b);
	cr_assert_eq(x->bitmap, y->bitmap);
	cr_assert_eq(x->n, y->n);
	for (unsigned i = 0; i < x->n; i++) {
		if (x->bitmap) {
			assert_same_shape(x->slot[i], y->slot[i]);
			continue;
		}
		bool found = false;
		for (unsigned j = 0; j < y->n && !found; j++)
			found = leaves_equal(leaf_of(x->slot[i]), leaf_of(y->slot[j]));
		cr_assert(found, "collision nodes hold different keys");
	}
}

/* A map of keys "/k0".."/k399" driven through the instrumented copy next to
 * a plain array of what it should hold. */
#define MODEL_KEYS 400

struct model {
	enum hash_mode mode;
	struct hamt_root root;
	uintptr_t val[MODEL_KEYS]; /* 0: absent */
	size_t count;
};

static void model_check(const struct model *m)
{
	check_root(&m->root);
	cr_assert_eq(m->root.count, m->count);
	for (unsigned i = 0; i < MODEL_KEYS; i++) {
		char key[KEY_MAX];
		size_t len = key_make(key, i);
		void *val = NULL;
		bool found = ihamt_get(&m->root, key, len, key_hash(m->mode, key, len), &val);
		cr_assert_eq(found, m->val[i] != 0, "key %u presence", i);
		cr_assert_eq((uintptr_t)val, m->val[i], "key %u value", i);
	}
}

/* Puts key i -> val (val != 0) or deletes key i (val == 0) with malloc
 * failing after budget allocations (-1: never). On -ENOMEM asserts that
 * nothing moved; otherwise checks the retired set, frees it and moves the
 * model on. Returns the update's result. */
static int model_try(struct model *m, unsigned i, uintptr_t val, long budget)
{
	char key[KEY_MAX];
	size_t len = key_make(key, i);
	uint64_t hash = key_hash(m->mode, key, len);
	struct ptrs retired = {0};
	struct hamt_gc gc = {retire_record, &retired};
	struct ptrs before = reachable(&m->root);
	long live = alloc_live;
	struct hamt_root next;
	memset(&next, 0xa5, sizeof next);
	void *old = (void *)1;
	int rc;
	alloc_budget = budget;
	if (val)
		rc = ihamt_put(&next, &m->root, key, len, hash, (void *)val, &old, &gc);
	else
		rc = ihamt_del(&next, &m->root, key, len, hash, &old, &gc);
	alloc_budget = -1;
	struct ptrs after = reachable(&next);
	if (rc == -ENOMEM || rc == -ENOENT) {
		cr_assert(rc == -ENOMEM || (!val && !m->val[i]), "-ENOENT for present key %u", i);
		cr_assert_eq(retired.n, 0, "a failed update retired %zu objects", retired.n);
		cr_assert_eq(alloc_live, live, "a failed update leaked");
		cr_assert(next.node == m->root.node && next.count == m->root.count);
		cr_assert_null(old);
		cr_assert(ptrs_equal(&after, &before), "a failed update changed the trie");
	} else {
		cr_assert_eq(rc, 0);
		cr_assert_eq((uintptr_t)old, m->val[i], "old value of key %u", i);
		check_retired(&before, &after, &retired);
		struct ptrs old_again = reachable(&m->root);
		cr_assert(ptrs_equal(&old_again, &before), "the update rewired the old root");
		ptrs_release(&old_again);
		for (size_t j = 0; j < retired.n; j++)
			counted_free(retired.p[j]);
		m->count += !m->val[i] - !val;
		m->val[i] = val;
		m->root = next;
		cr_assert_eq(m->root.count, m->count);
	}
	ptrs_release(&before);
	ptrs_release(&after);
	ptrs_release(&retired);
	return rc;
}

static void model_apply(struct model *m, unsigned i, uintptr_t val)
{
	cr_assert_neq(model_try(m, i, val, -1), -ENOMEM);
}

static void model_drain(struct model *m)
{
	for (unsigned i = 0; i < MODEL_KEYS; i++) {
		if (m->val[i])
			model_apply(m, i, 0);
	}
	cr_assert_null(m->root.node);
	cr_assert_eq(m->root.count, 0);
	cr_assert_eq(alloc_live, 0, "%ld allocations outlived the map", alloc_live);
}

static int put_str(struct hamt_root *r, const char *key, uintptr_t val, void **old)
{
	struct hamt_gc gc = {retire_free, NULL};
	size_t len = strlen(key);
	return hamt_put(r, r, key, len, hamt_hash(key, len), (void *)val, old, &gc);
}

static uintptr_t get_str(const struct hamt_root *r, const char *key)
{
	size_t len = strlen(key);
	void *val = NULL;
	if (!hamt_get(r, key, len, hamt_hash(key, len), &val))
		return 0;
	cr_assert_not_null(val);
	return (uintptr_t)val;
}

Test(hamt, put_then_get_finds_values_and_misses_absent_keys)
{
	struct hamt_root r = {0};
	cr_assert_not(hamt_get(&r, "/a", 2, hamt_hash("/a", 2), NULL));
	cr_assert_eq(put_str(&r, "/a", 1, NULL), 0);
	cr_assert_eq(put_str(&r, "/a/b", 2, NULL), 0);
	cr_assert_eq(put_str(&r, "/c", 3, NULL), 0);
	cr_assert_eq(r.count, 3);
	cr_assert_eq(get_str(&r, "/a"), 1);
	cr_assert_eq(get_str(&r, "/a/b"), 2);
	cr_assert_eq(get_str(&r, "/c"), 3);
	cr_assert_eq(get_str(&r, "/a/"), 0);
	cr_assert_eq(get_str(&r, ""), 0);
	check_root(&r);
	hamt_destroy(&r);
	cr_assert_null(r.node);
	cr_assert_eq(r.count, 0);
}

Test(hamt, keys_compare_as_bytes_including_empty_and_embedded_nul)
{
	struct hamt_gc gc = {retire_free, NULL};
	struct hamt_root r = {0};
	cr_assert_eq(hamt_put(&r, &r, NULL, 0, hamt_hash(NULL, 0), (void *)1, NULL, &gc), 0);
	cr_assert_eq(hamt_put(&r, &r, "a", 1, hamt_hash("a", 1), (void *)2, NULL, &gc), 0);
	cr_assert_eq(hamt_put(&r, &r, "a\0b", 3, hamt_hash("a\0b", 3), (void *)3, NULL, &gc), 0);
	/* Same hash, keys of different lengths: a two-leaf collision node. */
	cr_assert_eq(hamt_put(&r, &r, "a\0", 2, hamt_hash("a", 1), (void *)4, NULL, &gc), 0);
	cr_assert_eq(r.count, 4);
	void *val = NULL;
	cr_assert(hamt_get(&r, "", 0, hamt_hash(NULL, 0), &val));
	cr_assert_eq((uintptr_t)val, 1);
	cr_assert(hamt_get(&r, "a", 1, hamt_hash("a", 1), &val));
	cr_assert_eq((uintptr_t)val, 2);
	cr_assert(hamt_get(&r, "a\0b", 3, hamt_hash("a\0b", 3), &val));
	cr_assert_eq((uintptr_t)val, 3);
	cr_assert(hamt_get(&r, "a\0", 2, hamt_hash("a", 1), &val));
	cr_assert_eq((uintptr_t)val, 4);
	cr_assert_not(hamt_get(&r, "a\0c", 3, hamt_hash("a\0b", 3), NULL));
	check_root(&r);
	hamt_destroy(&r);
}

Test(hamt, put_of_existing_key_replaces_value_and_returns_old_one)
{
	struct hamt_root r = {0};
	void *old = (void *)99;
	cr_assert_eq(put_str(&r, "/x", 1, &old), 0);
	cr_assert_null(old, "a new key has no old value");
	cr_assert_eq(put_str(&r, "/y", 5, NULL), 0);
	cr_assert_eq(put_str(&r, "/x", 2, &old), 0);
	cr_assert_eq((uintptr_t)old, 1);
	cr_assert_eq(r.count, 2, "a replace must not count as an insert");
	cr_assert_eq(get_str(&r, "/x"), 2);
	cr_assert_eq(get_str(&r, "/y"), 5);
	hamt_destroy(&r);
}

Test(hamt, del_returns_removed_value_and_key_is_gone)
{
	struct hamt_root r = {0};
	struct hamt_gc gc = {retire_free, NULL};
	cr_assert_eq(put_str(&r, "/x", 1, NULL), 0);
	cr_assert_eq(put_str(&r, "/y", 2, NULL), 0);
	void *old = NULL;
	cr_assert_eq(hamt_del(&r, &r, "/x", 2, hamt_hash("/x", 2), &old, &gc), 0);
	cr_assert_eq((uintptr_t)old, 1);
	cr_assert_eq(r.count, 1);
	cr_assert_eq(get_str(&r, "/x"), 0);
	cr_assert_eq(get_str(&r, "/y"), 2);
	cr_assert_eq(hamt_del(&r, &r, "/y", 2, hamt_hash("/y", 2), NULL, &gc), 0);
	cr_assert_null(r.node);
	cr_assert_eq(r.count, 0);
}

Test(hamt, del_of_absent_key_is_enoent_and_changes_nothing)
{
	struct hamt_root r = {0};
	struct hamt_gc forbid = {retire_forbidden, NULL};
	struct hamt_root out = {(struct hamt_node *)&out, 77};
	cr_assert_eq(hamt_del(&out, &r, "/x", 2, hamt_hash("/x", 2), NULL, &forbid), -ENOENT);
	cr_assert(out.node == NULL && out.count == 0, "*out must equal the unchanged root");
	char key[KEY_MAX];
	for (unsigned i = 0; i < 100; i++) {
		key_make(key, i);
		cr_assert_eq(put_str(&r, key, i + 1, NULL), 0);
	}
	struct ptrs before = reachable(&r);
	void *old = (void *)1;
	size_t len = key_make(key, 100);
	cr_assert_eq(hamt_del(&out, &r, key, len, hamt_hash(key, len), &old, &forbid), -ENOENT);
	/* Same hash as a present key, different bytes: reaches a leaf, no match. */
	cr_assert_eq(hamt_del(&out, &r, "/k7x", 4, hamt_hash("/k7", 3), &old, &forbid), -ENOENT);
	cr_assert_null(old);
	cr_assert(out.node == r.node && out.count == 100);
	struct ptrs after = reachable(&r);
	cr_assert(ptrs_equal(&after, &before));
	ptrs_release(&before);
	ptrs_release(&after);
	hamt_destroy(&r);
}

static int sum_values(void *ctx, const void *key, size_t len, void *val)
{
	char expect[KEY_MAX];
	cr_assert_eq(key_make(expect, (unsigned)((uintptr_t)val - 1)), len);
	cr_assert(memcmp(expect, key, len) == 0, "value does not belong to its key");
	*(uint64_t *)ctx += (uintptr_t)val;
	return 0;
}

Test(hamt, old_root_sees_old_contents_after_many_updates)
{
	enum { N = 2000, UPDATES = 20000 };
	struct ptrs retired = {0};
	struct hamt_gc gc = {retire_record, &retired};
	struct hamt_gc now = {retire_free, NULL};
	struct hamt_root r0 = {0};
	char key[KEY_MAX];
	for (unsigned i = 0; i < N; i++) {
		size_t len = key_make(key, i);
		cr_assert_eq(hamt_put(&r0, &r0, key, len, hamt_hash(key, len),
				      (void *)(uintptr_t)(i + 1), NULL, &now),
			     0);
	}
	/* From here on r0 is a published snapshot: replaced nodes are retired,
	 * not freed, and r0 must not notice anything. */
	struct hamt_root r = r0;
	uint64_t seed = 42;
	for (unsigned step = 0; step < UPDATES; step++) {
		unsigned i = (unsigned)(rng_next(&seed) % (2 * N));
		size_t len = key_make(key, i);
		uint64_t hash = hamt_hash(key, len);
		if (step % 3 == 0) {
			int rc = hamt_del(&r, &r, key, len, hash, NULL, &gc);
			cr_assert(rc == 0 || rc == -ENOENT);
		} else {
			cr_assert_eq(hamt_put(&r, &r, key, len, hash,
					      (void *)(uintptr_t)(i + 1 + N * 2), NULL, &gc),
				     0);
		}
	}
	cr_assert_eq(r0.count, N);
	for (unsigned i = 0; i < 2 * N; i++) {
		size_t len = key_make(key, i);
		void *val = NULL;
		bool found = hamt_get(&r0, key, len, hamt_hash(key, len), &val);
		cr_assert_eq(found, i < N, "old root presence of key %u", i);
		cr_assert_eq((uintptr_t)val, found ? i + 1 : 0, "old root value of key %u", i);
	}
	uint64_t sum = 0;
	cr_assert_eq(hamt_foreach(&r0, sum_values, &sum), 0);
	cr_assert_eq(sum, (uint64_t)N * (N + 1) / 2);
	check_root(&r0);
	check_root(&r);
	/* Everything r0 reached is now either retired or shared with r. */
	for (size_t i = 0; i < retired.n; i++)
		free(retired.p[i]);
	ptrs_release(&retired);
	hamt_destroy(&r);
	cr_assert_not(leaks_found());
}

Test(hamt, constant_hash_keys_all_collide_and_stay_retrievable)
{
	enum { N = 1000 };
	struct hamt_gc gc = {retire_free, NULL};
	struct hamt_root r = {0};
	char key[KEY_MAX];
	for (unsigned i = 0; i < N; i++) {
		size_t len = key_make(key, i);
		cr_assert_eq(hamt_put(&r, &r, key, len, 7, (void *)(uintptr_t)(i + 1), NULL, &gc),
			     0);
	}
	cr_assert_eq(r.count, N);
	cr_assert_eq(node_of((uintptr_t)r.node)->bitmap, 0, "root must be one collision node");
	check_root(&r);
	for (unsigned i = 0; i < N; i += 2) {
		size_t len = key_make(key, i);
		void *old = NULL;
		cr_assert_eq(hamt_del(&r, &r, key, len, 7, &old, &gc), 0);
		cr_assert_eq((uintptr_t)old, i + 1);
	}
	cr_assert_eq(r.count, N / 2);
	for (unsigned i = 0; i < N; i++) {
		size_t len = key_make(key, i);
		void *val = NULL;
		cr_assert_eq(hamt_get(&r, key, len, 7, &val), i % 2 == 1, "key %u", i);
		cr_assert_eq((uintptr_t)val, i % 2 ? i + 1 : 0);
	}
	check_root(&r);
	for (unsigned i = 1; i < N - 1; i += 2) {
		size_t len = key_make(key, i);
		cr_assert_eq(hamt_del(&r, &r, key, len, 7, NULL, &gc), 0);
	}
	cr_assert(is_leaf((uintptr_t)r.node), "the last key must collapse to a bare leaf");
	hamt_destroy(&r);
	cr_assert_not(leaks_found());
}

Test(hamt, hashes_differing_only_in_top_bit_split_at_depth_12_and_collapse_back)
{
	struct hamt_gc gc = {retire_free, NULL};
	struct hamt_root r = {0};
	uint64_t ha = 0x0123456789abcdefull, hb = ha | 1ull << 63;
	cr_assert_eq(hamt_put(&r, &r, "a", 1, ha, (void *)1, NULL, &gc), 0);
	cr_assert_eq(hamt_put(&r, &r, "b", 1, hb, (void *)2, NULL, &gc), 0);
	cr_assert_eq(hamt_put(&r, &r, "c", 1, hb, (void *)3, NULL, &gc), 0);
	uintptr_t ref = (uintptr_t)r.node;
	for (unsigned depth = 0; depth < 12; depth++) {
		cr_assert(is_interior(ref) && node_of(ref)->n == 1, "depth %u", depth);
		ref = node_of(ref)->slot[0];
	}
	cr_assert(is_interior(ref) && node_of(ref)->n == 2);
	check_root(&r);
	void *val = NULL;
	cr_assert(hamt_get(&r, "c", 1, hb, &val));
	cr_assert_eq((uintptr_t)val, 3);
	cr_assert_not(hamt_get(&r, "c", 1, ha, NULL));
	cr_assert_eq(hamt_del(&r, &r, "a", 1, ha, NULL, &gc), 0);
	cr_assert_eq(node_of((uintptr_t)r.node)->bitmap, 0, "root must be the b/c collision node");
	cr_assert_eq(hamt_del(&r, &r, "b", 1, hb, NULL, &gc), 0);
	cr_assert(is_leaf((uintptr_t)r.node));
	hamt_destroy(&r);
	cr_assert_not(leaks_found());
}

Test(hamt, partial_hash_collisions_behave_like_a_map)
{
	for (enum hash_mode mode = 0; mode < HASH_MODE_COUNT; mode++) {
		struct model m = {.mode = mode};
		uint64_t seed = 0x1234 + mode;
		for (unsigned step = 0; step < 4000; step++) {
			unsigned i = (unsigned)(rng_next(&seed) % MODEL_KEYS);
			uintptr_t val = rng_next(&seed) % 5 < 3 ? (step + 1) * 2 : 0;
			model_apply(&m, i, val);
			if (step % 200 == 0)
				model_check(&m);
		}
		model_check(&m);
		model_drain(&m);
	}
}

Test(hamt, failed_allocation_leaves_root_intact_and_retires_nothing)
{
	size_t puts = 0, failures = 0;
	long budget_max = 0;
	for (enum hash_mode mode = 0; mode < HASH_MODE_COUNT; mode++) {
		struct model m = {.mode = mode};
		uint64_t seed = 0x5678 + mode;
		for (unsigned step = 0; step < 800; step++) {
			unsigned i = (unsigned)(rng_next(&seed) % MODEL_KEYS);
			uintptr_t val = rng_next(&seed) % 3 ? (step + 1) * 2 : 0;
			/* Fail the first, second, ... allocation until one succeeds. */
			long budget = 0;
			while (model_try(&m, i, val, budget) == -ENOMEM)
				budget++;
			puts += val != 0;
			failures += (size_t)budget;
			budget_max = budget > budget_max ? budget : budget_max;
			if (step % 100 == 0)
				model_check(&m);
		}
		model_check(&m);
		model_drain(&m);
	}
	/* Every put allocates, and the top-bits chains need a node per depth. */
	cr_assert_geq(failures, puts);
	cr_assert_geq(budget_max, DEPTH_MAX, "deepest failure at allocation %ld", budget_max);
}

Test(hamt, retired_and_destroyed_account_for_every_allocation_once)
{
	enum { KEYS = 3000, STEPS = 30000 };
	struct ptrs retired = {0};
	struct hamt_gc gc = {retire_record, &retired};
	struct hamt_root r = {0};
	char key[KEY_MAX];
	uint64_t seed = 7;
	for (unsigned step = 0; step < STEPS; step++) {
		unsigned i = (unsigned)(rng_next(&seed) % KEYS);
		size_t len = key_make(key, i);
		uint64_t hash = key_hash(i % 2 ? HASH_FULL : HASH_MIXED, key, len);
		if (step % 4 == 3)
			cr_assert_neq(ihamt_del(&r, &r, key, len, hash, NULL, &gc), -ENOMEM);
		else
			cr_assert_eq(ihamt_put(&r, &r, key, len, hash, (void *)1, NULL, &gc), 0);
	}
	check_root(&r);
	/* Nothing was freed, so addresses are unique: a repeat is a double retire. */
	ptrs_sort(&retired);
	struct ptrs live = reachable(&r);
	for (size_t i = 0; i < retired.n; i++) {
		cr_assert(i == 0 || retired.p[i] != retired.p[i - 1], "double retire");
		cr_assert_not(ptrs_has(&live, retired.p[i]), "retired yet reachable");
	}
	cr_assert_eq((long)(retired.n + live.n), alloc_live,
		     "allocations neither retired nor reachable: leaked");
	for (size_t i = 0; i < retired.n; i++)
		counted_free(retired.p[i]);
	ihamt_destroy(&r);
	cr_assert_eq(alloc_live, 0);
	ptrs_release(&retired);
	ptrs_release(&live);
}

Test(hamt, insert_then_delete_restores_shape_and_memory)
{
	for (enum hash_mode mode = 0; mode < HASH_MODE_COUNT; mode++) {
		struct model m = {.mode = mode};
		for (unsigned i = 0; i < MODEL_KEYS / 2; i++)
			model_apply(&m, i, i + 1);
		long live = alloc_live;
		for (unsigned round = 0; round < 3; round++) {
			for (unsigned i = MODEL_KEYS / 2; i < MODEL_KEYS; i++)
				model_apply(&m, i, i + 1);
			for (unsigned i = MODEL_KEYS; i-- > MODEL_KEYS / 2;)
				model_apply(&m, i, 0);
			cr_assert_eq(alloc_live, live, "round %u grew memory", round);
		}
		struct model fresh = {.mode = mode};
		for (unsigned i = MODEL_KEYS / 2; i-- > 0;)
			model_apply(&fresh, i, i + 1);
		assert_same_shape((uintptr_t)m.root.node, (uintptr_t)fresh.root.node);
		ihamt_destroy(&fresh.root);
		ihamt_destroy(&m.root);
		cr_assert_eq(alloc_live, 0);
	}
}

struct visits {
	unsigned char *seen;
	size_t calls;
	size_t stop_after;
};

static int mark_visit(void *ctx, const void *key, size_t len, void *val)
{
	struct visits *v = ctx;
	unsigned i = (unsigned)((uintptr_t)val - 1);
	char expect[KEY_MAX];
	cr_assert_eq(key_make(expect, i), len);
	cr_assert(memcmp(expect, key, len) == 0, "key/value mismatch at %u", i);
	v->seen[i]++;
	return ++v->calls == v->stop_after ? 7 : 0;
}

Test(hamt, foreach_visits_every_entry_once)
{
	enum { N = 2000 }; /* constant hashes make this quadratic */
	for (enum hash_mode mode = 0; mode < HASH_MODE_COUNT; mode++) {
		struct hamt_gc gc = {retire_free, NULL};
		struct hamt_root r = {0};
		char key[KEY_MAX];
		for (unsigned i = 0; i < N; i++) {
			size_t len = key_make(key, i);
			cr_assert_eq(hamt_put(&r, &r, key, len, key_hash(mode, key, len),
					      (void *)(uintptr_t)(i + 1), NULL, &gc),
				     0);
		}
		struct visits v = {.seen = calloc(N, 1)};
		cr_assert_eq(hamt_foreach(&r, mark_visit, &v), 0);
		cr_assert_eq(v.calls, N);
		for (unsigned i = 0; i < N; i++)
			cr_assert_eq(v.seen[i], 1, "mode %d key %u seen %u times", mode, i,
				     v.seen[i]);
		free(v.seen);
		hamt_destroy(&r);
	}
}

Test(hamt, foreach_stops_at_first_nonzero_return)
{
	struct hamt_root r = {0};
	char key[KEY_MAX];
	for (unsigned i = 0; i < 100; i++) {
		key_make(key, i);
		cr_assert_eq(put_str(&r, key, i + 1, NULL), 0);
	}
	struct visits v = {.seen = calloc(100, 1), .stop_after = 10};
	cr_assert_eq(hamt_foreach(&r, mark_visit, &v), 7);
	cr_assert_eq(v.calls, 10);
	struct hamt_root empty = {0};
	cr_assert_eq(hamt_foreach(&empty, mark_visit, &v), 0);
	cr_assert_eq(v.calls, 10);
	free(v.seen);
	hamt_destroy(&r);
}

Test(hamt, million_entries_insert_then_delete_to_empty)
{
	enum { N = 1000000 };
	struct hamt_gc gc = {retire_free, NULL};
	struct hamt_root r = {0};
	char key[KEY_MAX];
	for (unsigned i = 0; i < N; i++) {
		size_t len = key_make(key, i);
		int rc = hamt_put(&r, &r, key, len, hamt_hash(key, len), (void *)(uintptr_t)(i + 1),
				  NULL, &gc);
		if (rc)
			cr_assert_fail("put %u: %d", i, rc);
	}
	cr_assert_eq(r.count, N);
	for (unsigned i = 0; i < N + 1000; i += 7) {
		size_t len = key_make(key, i);
		void *val = NULL;
		bool found = hamt_get(&r, key, len, hamt_hash(key, len), &val);
		cr_assert_eq(found, i < N, "key %u", i);
		cr_assert_eq((uintptr_t)val, found ? i + 1 : 0);
	}
	for (unsigned i = 0; i < N; i++) {
		size_t len = key_make(key, i);
		void *old = NULL;
		int rc = hamt_del(&r, &r, key, len, hamt_hash(key, len), &old, &gc);
		if (rc || (uintptr_t)old != i + 1)
			cr_assert_fail("del %u: %d, old %p", i, rc, old);
		if (i == N / 2)
			cr_assert_eq(r.count, N - N / 2 - 1);
	}
	cr_assert_eq(r.count, 0);
	cr_assert_null(r.node);
	cr_assert_not(leaks_found());
}
