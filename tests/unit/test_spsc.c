/* SPSC ring: creation rules, FIFO order, a full ring refuses, wrap-around,
 * and a producer and a consumer thread moving a million values in order. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>

#include "core/spsc.h"

/* Values travel as pointers; 0 would read as "empty", so shift by one. */
static void *val(uintptr_t i)
{
	return (void *)(i + 1);
}

static uintptr_t unval(void *p)
{
	return (uintptr_t)p - 1;
}

Test(spsc, create_refuses_zero_and_non_power_of_two_capacity)
{
	cr_assert_null(spsc_create(0));
	cr_assert_null(spsc_create(3));
	cr_assert_null(spsc_create(1000));
	struct spsc *r = spsc_create(1);
	cr_assert_not_null(r);
	cr_assert_eq(spsc_space(r), 1);
	free(r);
}

Test(spsc, empty_ring_pops_null)
{
	struct spsc *r = spsc_create(8);
	cr_assert_not_null(r);
	cr_assert_null(spsc_pop(r));
	cr_assert(spsc_push(r, val(0)));
	cr_assert_eq(spsc_pop(r), val(0));
	cr_assert_null(spsc_pop(r));
	free(r);
}

Test(spsc, pops_in_push_order)
{
	struct spsc *r = spsc_create(16);
	for (uintptr_t i = 0; i < 10; i++)
		cr_assert(spsc_push(r, val(i)));
	for (uintptr_t i = 0; i < 10; i++)
		cr_assert_eq(unval(spsc_pop(r)), i, "pop %zu", (size_t)i);
	cr_assert_null(spsc_pop(r));
	free(r);
}

Test(spsc, full_ring_refuses_push_until_a_pop)
{
	struct spsc *r = spsc_create(4);
	for (uintptr_t i = 0; i < 4; i++)
		cr_assert(spsc_push(r, val(i)));
	cr_assert_eq(spsc_space(r), 0);
	cr_assert_not(spsc_push(r, val(99)));
	cr_assert_eq(unval(spsc_pop(r)), 0);
	cr_assert_eq(spsc_space(r), 1);
	cr_assert(spsc_push(r, val(4)));
	cr_assert_not(spsc_push(r, val(99)));
	/* The refused values never appear. */
	for (uintptr_t i = 1; i <= 4; i++)
		cr_assert_eq(unval(spsc_pop(r)), i);
	cr_assert_null(spsc_pop(r));
	free(r);
}

Test(spsc, order_holds_across_many_wrap_arounds)
{
	struct spsc *r = spsc_create(8);
	uintptr_t next_push = 0, next_pop = 0;
	/* Push 5, pop 3, repeatedly: the indices wrap the 8 slots many times. */
	for (int round = 0; round < 1000; round++) {
		for (int k = 0; k < 5 && spsc_space(r) > 0; k++)
			cr_assert(spsc_push(r, val(next_push++)));
		for (int k = 0; k < 3; k++) {
			void *p = spsc_pop(r);
			cr_assert_not_null(p);
			cr_assert_eq(unval(p), next_pop++);
		}
	}
	void *p;
	while ((p = spsc_pop(r)))
		cr_assert_eq(unval(p), next_pop++);
	cr_assert_eq(next_pop, next_push);
	cr_assert_gt(next_push, 8 * 100);
	free(r);
}

#define TRANSFER_COUNT 1000000u

struct transfer {
	struct spsc *ring;
	uintptr_t received;   /* values popped */
	uintptr_t misordered; /* pops that were not the next expected value */
};

static void *producer(void *arg)
{
	struct transfer *t = arg;
	for (uintptr_t i = 0; i < TRANSFER_COUNT; i++) {
		while (!spsc_push(t->ring, val(i)))
			sched_yield();
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct transfer *t = arg;
	while (t->received < TRANSFER_COUNT) {
		void *p = spsc_pop(t->ring);
		if (!p) {
			sched_yield();
			continue;
		}
		if (unval(p) != t->received)
			t->misordered++;
		t->received++;
	}
	return NULL;
}

Test(spsc, two_threads_move_a_million_values_in_order, .timeout = 60)
{
	struct transfer t = {.ring = spsc_create(256)};
	cr_assert_not_null(t.ring);
	pthread_t prod, cons;
	cr_assert_eq(pthread_create(&cons, NULL, consumer, &t), 0);
	cr_assert_eq(pthread_create(&prod, NULL, producer, &t), 0);
	cr_assert_eq(pthread_join(prod, NULL), 0);
	cr_assert_eq(pthread_join(cons, NULL), 0);
	cr_assert_eq(t.received, TRANSFER_COUNT);
	cr_assert_eq(t.misordered, 0);
	cr_assert_null(spsc_pop(t.ring));
	cr_assert_eq(spsc_space(t.ring), 256);
	free(t.ring);
}
