/* Persistent hash array mapped trie: path-copying updates over 32-way
 * bitmap-compressed nodes, with collision nodes for keys whose full 64-bit
 * hashes are equal. Sized for millions of entries, so every byte per entry
 * counts: a leaf is one allocation, a node is a bitmap and an exact array.
 *
 * A ref (uintptr_t) is a child slot, or root->node cast back and forth. The
 * allocator aligns to at least 8, so bit 0 is free to tell leaves apart:
 *
 *   bit 0 = 1   leaf:  ref & ~1 points at a struct leaf
 *   bit 0 = 0   node:  ref points at a struct hamt_node; 0 = empty root
 *
 * struct leaf, one allocation of 20 + len bytes:
 *   offset  0  u64   hash     the caller's hash of the key
 *   offset  8  ptr   val      the caller's value
 *   offset 16  u32   len      key length
 *   offset 20  u8[]  key      key bytes, no terminator
 *
 * struct hamt_node, one allocation of 8 + 8 * n bytes:
 *   offset  0  u32   bitmap   interior: bit c set = a child for chunk c
 *                             collision: 0
 *   offset  4  u32   n        slot count: popcount(bitmap), or >= 2 leaves
 *   offset  8  ref   slot[n]  interior: children in chunk order
 *                             collision: leaves, all with one hash
 *
 * A node at depth d indexes its children by hash bits [5d, 5d + 5); depth
 * 12 has only 4 bits left, so interior nodes live at depths 0..12.
 *
 * Canonical shape: a subtree whose keys share one full hash is a leaf (one
 * key) or a collision node (several), never an interior node. So a node
 * with one slot always has an interior child, and a delete that leaves a
 * node with a single leaf or collision child hoists that child into the
 * parent's slot. The shape then depends only on the set of keys (up to the
 * order inside collision nodes): insert-then-delete gives memory back.
 *
 * Updates never write a reachable object. They list what they allocate and
 * what they replace; only once the whole new path exists are the replaced
 * objects retired, and a failed allocation frees the new ones instead. */
#include "core/hamt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/log.h"

#define CHUNK_BITS 5
#define CHUNK_MASK 31u
#define DEPTH_MAX  13 /* interior depths 0..12 cover the 64 hash bits */
#define TAG_LEAF   ((uintptr_t)1)

struct leaf {
	uint64_t hash;
	void *val;
	uint32_t len;
	unsigned char key[];
};

struct hamt_node {
	uint32_t bitmap;
	uint32_t n;
	uintptr_t slot[];
};

_Static_assert(offsetof(struct leaf, key) == 20, "leaf layout in the table above");
_Static_assert(offsetof(struct hamt_node, slot) == 8, "node layout in the table above");

/* One update in progress. An update copies at most DEPTH_MAX interior nodes
 * (path plus split chain), one collision node and one leaf, and replaces at
 * most as many; the arrays are sized for that. */
struct update {
	const void *key;
	size_t len;
	uint64_t hash;
	void *val;
	void *old_val;
	bool found;
	unsigned n_fresh;
	unsigned n_stale;
	void *fresh[DEPTH_MAX + 2];
	void *stale[DEPTH_MAX + 2];
};

uint64_t hamt_hash(const void *key, size_t len)
{
	return XXH3_64bits(key, len);
}

static bool is_leaf(uintptr_t ref)
{
	return ref & TAG_LEAF;
}

static struct leaf *leaf_of(uintptr_t ref)
{
	return (struct leaf *)(ref & ~TAG_LEAF);
}

static struct hamt_node *node_of(uintptr_t ref)
{
	return (struct hamt_node *)ref;
}

static bool is_interior(uintptr_t ref)
{
	return !is_leaf(ref) && node_of(ref)->bitmap != 0;
}

static uint32_t chunk_bit(uint64_t hash, unsigned depth)
{
	RK_ASSERT(depth < DEPTH_MAX);
	return (uint32_t)1 << ((hash >> (depth * CHUNK_BITS)) & CHUNK_MASK);
}

/* Index in slot[] of the child for bit: the set bits below it. */
static unsigned slot_pos(const struct hamt_node *x, uint32_t bit)
{
	return (unsigned)__builtin_popcount(x->bitmap & (bit - 1));
}

static bool leaf_matches(const struct leaf *l, const void *key, size_t len, uint64_t hash)
{
	/* len == 0 may come with key == NULL, which memcmp must not see. */
	return l->hash == hash && l->len == len && (len == 0 || memcmp(l->key, key, len) == 0);
}

/* The one hash shared by everything under a leaf or collision node. */
static uint64_t bottom_hash(uintptr_t ref)
{
	if (!is_leaf(ref))
		ref = node_of(ref)->slot[0];
	return leaf_of(ref)->hash;
}

static void *update_alloc(struct update *u, size_t size)
{
	RK_ASSERT(u->n_fresh < sizeof u->fresh / sizeof u->fresh[0]);
	void *p = malloc(size);
	if (p)
		u->fresh[u->n_fresh++] = p;
	return p;
}

static void update_replaces(struct update *u, void *p)
{
	RK_ASSERT(u->n_stale < sizeof u->stale / sizeof u->stale[0]);
	u->stale[u->n_stale++] = p;
}

static void update_found(struct update *u, struct leaf *l)
{
	u->found = true;
	u->old_val = l->val;
	update_replaces(u, l);
}

/* Retires what a successful update replaced, or frees what a failed one
 * allocated; the caller's root is untouched either way. */
static int update_finish(struct update *u, int rc, const struct hamt_gc *gc)
{
	if (rc) {
		for (unsigned i = 0; i < u->n_fresh; i++)
			free(u->fresh[i]);
		return rc;
	}
	for (unsigned i = 0; i < u->n_stale; i++)
		gc->retire(gc->ctx, u->stale[i]);
	return 0;
}

static uintptr_t leaf_new(struct update *u)
{
	struct leaf *l = update_alloc(u, offsetof(struct leaf, key) + u->len);
	if (!l)
		return 0;
	l->hash = u->hash;
	l->val = u->val;
	l->len = (uint32_t)u->len;
	if (u->len)
		memcpy(l->key, u->key, u->len);
	return (uintptr_t)l | TAG_LEAF;
}

static struct hamt_node *node_new(struct update *u, uint32_t bitmap, uint32_t n)
{
	struct hamt_node *x =
	    update_alloc(u, offsetof(struct hamt_node, slot) + n * sizeof(uintptr_t));
	if (x) {
		x->bitmap = bitmap;
		x->n = n;
	}
	return x;
}

/* Copy of x with slot[pos] = ref. */
static uintptr_t node_with_slot(struct update *u, const struct hamt_node *x, unsigned pos,
				uintptr_t ref)
{
	struct hamt_node *y = node_new(u, x->bitmap, x->n);
	if (!y)
		return 0;
	memcpy(y->slot, x->slot, x->n * sizeof(uintptr_t));
	y->slot[pos] = ref;
	return (uintptr_t)y;
}

/* Copy of x with ref inserted at pos under bit (0 for a collision node). */
static uintptr_t node_with_insert(struct update *u, const struct hamt_node *x, uint32_t bit,
				  unsigned pos, uintptr_t ref)
{
	struct hamt_node *y = node_new(u, x->bitmap | bit, x->n + 1);
	if (!y)
		return 0;
	memcpy(y->slot, x->slot, pos * sizeof(uintptr_t));
	y->slot[pos] = ref;
	memcpy(y->slot + pos + 1, x->slot + pos, (x->n - pos) * sizeof(uintptr_t));
	return (uintptr_t)y;
}

/* Copy of x without slot[pos] and its bit (0 for a collision node). */
static uintptr_t node_without(struct update *u, const struct hamt_node *x, uint32_t bit,
			      unsigned pos)
{
	RK_ASSERT(x->n >= 2);
	struct hamt_node *y = node_new(u, x->bitmap & ~bit, x->n - 1);
	if (!y)
		return 0;
	memcpy(y->slot, x->slot, pos * sizeof(uintptr_t));
	memcpy(y->slot + pos, x->slot + pos + 1, (x->n - pos - 1) * sizeof(uintptr_t));
	return (uintptr_t)y;
}

/* The subtree at depth holding a (whose keys all hash to ha) and b (hash hb,
 * != ha): one-slot nodes down to the first chunk where the hashes differ,
 * and a two-slot node there. Allocates bottom-up so a failure leaves only
 * listed objects behind. */
static uintptr_t split(struct update *u, uintptr_t a, uint64_t ha, uintptr_t b, uint64_t hb,
		       unsigned depth)
{
	unsigned bottom = (unsigned)__builtin_ctzll(ha ^ hb) / CHUNK_BITS;
	RK_ASSERT(bottom >= depth && bottom < DEPTH_MAX);
	uint32_t bit_a = chunk_bit(ha, bottom);
	uint32_t bit_b = chunk_bit(hb, bottom);
	struct hamt_node *x = node_new(u, bit_a | bit_b, 2);
	if (!x)
		return 0;
	x->slot[bit_a < bit_b ? 0 : 1] = a;
	x->slot[bit_a < bit_b ? 1 : 0] = b;
	uintptr_t ref = (uintptr_t)x;
	for (unsigned d = bottom; d-- > depth;) {
		x = node_new(u, chunk_bit(ha, d), 1);
		if (!x)
			return 0;
		x->slot[0] = ref;
		ref = (uintptr_t)x;
	}
	return ref;
}

static uintptr_t put_leaf(struct update *u, uintptr_t ref, unsigned depth)
{
	struct leaf *l = leaf_of(ref);
	if (leaf_matches(l, u->key, u->len, u->hash)) {
		update_found(u, l);
		return leaf_new(u);
	}
	uintptr_t fresh = leaf_new(u);
	if (!fresh)
		return 0;
	if (l->hash != u->hash)
		return split(u, ref, l->hash, fresh, u->hash, depth);
	struct hamt_node *c = node_new(u, 0, 2);
	if (!c)
		return 0;
	c->slot[0] = ref;
	c->slot[1] = fresh;
	return (uintptr_t)c;
}

static uintptr_t put_collision(struct update *u, struct hamt_node *c, unsigned depth)
{
	uint64_t hash = bottom_hash((uintptr_t)c);
	uintptr_t fresh = leaf_new(u);
	if (!fresh)
		return 0;
	if (hash != u->hash)
		return split(u, (uintptr_t)c, hash, fresh, u->hash, depth);
	update_replaces(u, c);
	for (unsigned i = 0; i < c->n; i++) {
		struct leaf *l = leaf_of(c->slot[i]);
		if (leaf_matches(l, u->key, u->len, u->hash)) {
			update_found(u, l);
			return node_with_slot(u, c, i, fresh);
		}
	}
	return node_with_insert(u, c, 0, c->n, fresh);
}

/* Returns the subtree at ref with u's key mapped, or 0 when out of memory. */
static uintptr_t put_ref(struct update *u, uintptr_t ref, unsigned depth)
{
	if (!ref)
		return leaf_new(u);
	if (is_leaf(ref))
		return put_leaf(u, ref, depth);
	struct hamt_node *x = node_of(ref);
	if (!x->bitmap)
		return put_collision(u, x, depth);
	uint32_t bit = chunk_bit(u->hash, depth);
	unsigned pos = slot_pos(x, bit);
	uintptr_t child;
	if (x->bitmap & bit)
		child = put_ref(u, x->slot[pos], depth + 1);
	else
		child = leaf_new(u);
	if (!child)
		return 0;
	update_replaces(u, x);
	if (x->bitmap & bit)
		return node_with_slot(u, x, pos, child);
	return node_with_insert(u, x, bit, pos, child);
}

static int del_collision(struct update *u, struct hamt_node *c, uintptr_t *out)
{
	for (unsigned i = 0; i < c->n; i++) {
		struct leaf *l = leaf_of(c->slot[i]);
		if (!leaf_matches(l, u->key, u->len, u->hash))
			continue;
		update_found(u, l);
		update_replaces(u, c);
		/* A lone survivor is a plain leaf in canonical shape. */
		*out = c->n == 2 ? c->slot[i ^ 1] : node_without(u, c, 0, i);
		return *out ? 0 : -ENOMEM;
	}
	return -ENOENT;
}

/* Sets *out to the subtree at ref without u's key (0 when nothing is left).
 * Returns 0, -ENOENT or -ENOMEM. */
static int del_ref(struct update *u, uintptr_t ref, unsigned depth, uintptr_t *out)
{
	if (!ref)
		return -ENOENT;
	if (is_leaf(ref)) {
		if (!leaf_matches(leaf_of(ref), u->key, u->len, u->hash))
			return -ENOENT;
		update_found(u, leaf_of(ref));
		*out = 0;
		return 0;
	}
	struct hamt_node *x = node_of(ref);
	if (!x->bitmap)
		return del_collision(u, x, out);
	uint32_t bit = chunk_bit(u->hash, depth);
	if (!(x->bitmap & bit))
		return -ENOENT;
	unsigned pos = slot_pos(x, bit);
	uintptr_t child;
	int rc = del_ref(u, x->slot[pos], depth + 1, &child);
	if (rc)
		return rc;
	update_replaces(u, x);
	/* Hoist a lone leaf or collision child: see canonical shape above. An
	 * interior node never empties in one delete, so neither does x. */
	if (child && x->n == 1 && !is_interior(child))
		*out = child;
	else if (child)
		*out = node_with_slot(u, x, pos, child);
	else if (x->n == 2 && !is_interior(x->slot[pos ^ 1]))
		*out = x->slot[pos ^ 1];
	else
		*out = node_without(u, x, bit, pos);
	return *out ? 0 : -ENOMEM;
}

static struct leaf *find(uintptr_t ref, const void *key, size_t len, uint64_t hash)
{
	for (unsigned depth = 0; ref && !is_leaf(ref); depth++) {
		struct hamt_node *x = node_of(ref);
		if (!x->bitmap) {
			for (unsigned i = 0; i < x->n; i++) {
				if (leaf_matches(leaf_of(x->slot[i]), key, len, hash))
					return leaf_of(x->slot[i]);
			}
			return NULL;
		}
		uint32_t bit = chunk_bit(hash, depth);
		if (!(x->bitmap & bit))
			return NULL;
		ref = x->slot[slot_pos(x, bit)];
	}
	if (!ref || !leaf_matches(leaf_of(ref), key, len, hash))
		return NULL;
	return leaf_of(ref);
}

bool hamt_get(const struct hamt_root *root, const void *key, size_t len, uint64_t hash, void **val)
{
	struct leaf *l = find((uintptr_t)root->node, key, len, hash);
	if (l && val)
		*val = l->val;
	return l != NULL;
}

int hamt_put(struct hamt_root *out, const struct hamt_root *root, const void *key, size_t len,
	     uint64_t hash, void *val, void **old_val, const struct hamt_gc *gc)
{
	RK_ASSERT(gc && gc->retire);
	RK_ASSERT(len <= UINT32_MAX && (key || len == 0));
	struct update u = {.key = key, .len = len, .hash = hash, .val = val};
	uintptr_t ref = put_ref(&u, (uintptr_t)root->node, 0);
	int rc = update_finish(&u, ref ? 0 : -ENOMEM, gc);
	if (old_val)
		*old_val = rc ? NULL : u.old_val;
	if (rc) {
		*out = *root;
		return rc;
	}
	out->count = root->count + !u.found;
	out->node = (struct hamt_node *)ref;
	return 0;
}

int hamt_del(struct hamt_root *out, const struct hamt_root *root, const void *key, size_t len,
	     uint64_t hash, void **old_val, const struct hamt_gc *gc)
{
	RK_ASSERT(gc && gc->retire);
	RK_ASSERT(key || len == 0);
	struct update u = {.key = key, .len = len, .hash = hash};
	uintptr_t ref = 0;
	int rc = update_finish(&u, del_ref(&u, (uintptr_t)root->node, 0, &ref), gc);
	if (old_val)
		*old_val = rc ? NULL : u.old_val;
	if (rc) {
		*out = *root;
		return rc;
	}
	out->count = root->count - 1;
	out->node = (struct hamt_node *)ref;
	return 0;
}

static int foreach_ref(uintptr_t ref, int (*fn)(void *ctx, const void *key, size_t len, void *val),
		       void *ctx)
{
	if (is_leaf(ref)) {
		struct leaf *l = leaf_of(ref);
		return fn(ctx, l->key, l->len, l->val);
	}
	struct hamt_node *x = node_of(ref);
	for (unsigned i = 0; i < x->n; i++) {
		int rc = foreach_ref(x->slot[i], fn, ctx);
		if (rc)
			return rc;
	}
	return 0;
}

int hamt_foreach(const struct hamt_root *root,
		 int (*fn)(void *ctx, const void *key, size_t len, void *val), void *ctx)
{
	if (!root->node)
		return 0;
	return foreach_ref((uintptr_t)root->node, fn, ctx);
}

static void destroy_ref(uintptr_t ref)
{
	if (is_leaf(ref)) {
		free(leaf_of(ref));
		return;
	}
	struct hamt_node *x = node_of(ref);
	for (unsigned i = 0; i < x->n; i++)
		destroy_ref(x->slot[i]);
	free(x);
}

void hamt_destroy(struct hamt_root *root)
{
	if (root->node)
		destroy_ref((uintptr_t)root->node);
	root->node = NULL;
	root->count = 0;
}
