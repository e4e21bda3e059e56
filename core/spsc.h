/* Bounded lock-free single-producer single-consumer ring of pointers: the
 * only way work crosses cores besides the RCU-published tree. The producer
 * owns tail, the consumer owns head; each reads the other's index with
 * acquire and publishes its own with release. Capacity is a power of two
 * fixed at creation; a full ring refuses the push (the caller decides how
 * to push back). */
#ifndef RK_SPSC_H
#define RK_SPSC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

struct spsc {
	_Alignas(64) _Atomic size_t head;
	_Alignas(64) _Atomic size_t tail;
	_Alignas(64) size_t mask;
	void *slots[];
};

static inline struct spsc *spsc_create(size_t cap_pow2)
{
	if (cap_pow2 == 0 || (cap_pow2 & (cap_pow2 - 1)))
		return NULL;
	struct spsc *r = aligned_alloc(64, (sizeof *r + cap_pow2 * sizeof(void *) + 63) & ~63ul);
	if (!r)
		return NULL;
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	r->mask = cap_pow2 - 1;
	return r;
}

static inline bool spsc_push(struct spsc *r, void *p)
{
	size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	if (tail - head > r->mask)
		return false;
	r->slots[tail & r->mask] = p;
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	return true;
}

static inline void *spsc_pop(struct spsc *r)
{
	size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	if (head == tail)
		return NULL;
	void *p = r->slots[head & r->mask];
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
	return p;
}

/* Free slots as the producer sees them (a lower bound). */
static inline size_t spsc_space(struct spsc *r)
{
	size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	return r->mask + 1 - (tail - head);
}

#endif
