/* Persistent (copy-on-write) hash array mapped trie, keyed by byte strings.
 *
 * Used for the znode tree's path map (path -> znode) and for every znode's
 * children set (name -> NULL). A root is an immutable value: an update
 * returns a new root that shares every untouched node with the old one, and
 * a reader holding the old root keeps seeing it unchanged. Updates cost
 * O(log32 n) node copies; lookups take no locks and write no memory.
 *
 * Ownership: one writer (the sequencer) updates; any thread may read a root
 * it acquired through the RCU publication of the tree. Every trie node and
 * leaf an update replaces is handed to gc->retire(gc->ctx, ptr) instead of
 * being freed, so the caller frees it (with free()) once no reader can hold
 * a root that reaches it. Values are the caller's: the trie never frees or
 * retires them. Keys are copied into the trie's leaves.
 *
 * Hashes are the caller's: pass hamt_hash(key, len) (XXH3-64) or any stable
 * 64-bit hash; equal keys must have equal hashes. Full-hash collisions are
 * handled. Iteration order is the hash order, stable for a given root. */
#ifndef RK_HAMT_H
#define RK_HAMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hamt_node;

struct hamt_root {
	struct hamt_node *node; /* NULL when empty */
	size_t count;
};

struct hamt_gc {
	void (*retire)(void *ctx, void *ptr);
	void *ctx;
};

uint64_t hamt_hash(const void *key, size_t len);

/* Returns true and sets *val when key is present. */
bool hamt_get(const struct hamt_root *root, const void *key, size_t len, uint64_t hash, void **val);

/* *out = root with key mapped to val (inserted or replaced). *old_val gets
 * the replaced value (NULL if the key was new; old_val may be NULL).
 * Returns 0, or -ENOMEM with *out left equal to *root and nothing retired.
 * out may equal root. */
int hamt_put(struct hamt_root *out, const struct hamt_root *root, const void *key, size_t len,
	     uint64_t hash, void *val, void **old_val, const struct hamt_gc *gc);

/* *out = root without key. Returns 0, -ENOENT if absent (nothing changes),
 * or -ENOMEM. *old_val gets the removed value. out may equal root. */
int hamt_del(struct hamt_root *out, const struct hamt_root *root, const void *key, size_t len,
	     uint64_t hash, void **old_val, const struct hamt_gc *gc);

/* Calls fn for every entry until it returns non-zero, which is returned. */
int hamt_foreach(const struct hamt_root *root,
		 int (*fn)(void *ctx, const void *key, size_t len, void *val), void *ctx);

/* Frees every node and leaf reachable from root (not the values). Only for
 * a root that shares nothing with a live one: the last version at shutdown,
 * or a private root never published. */
void hamt_destroy(struct hamt_root *root);

#endif
