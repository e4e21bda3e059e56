/* Summaries of observed values: count, sum, min, max and a log-linear
 * histogram for quantiles. See summary.h. */
#include "core/summary.h"

#include <math.h>
#include <string.h>

#define SUB (1u << SUMMARY_SUB_BITS)

_Static_assert(SUMMARY_BUCKETS % SUB == 0, "whole powers of two");

void summary_init(struct summary *s)
{
	for (unsigned i = 0; i < SUMMARY_BUCKETS; i++)
		atomic_init(&s->buckets[i], 0);
	atomic_init(&s->count, 0);
	atomic_init(&s->sum, 0);
	atomic_init(&s->min, UINT64_MAX);
	atomic_init(&s->max, 0);
}

unsigned summary_bucket_of(uint64_t v)
{
	if (v < SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= SUMMARY_SUB_BITS */
	unsigned sub = (unsigned)(v >> (e - SUMMARY_SUB_BITS)) & (SUB - 1);
	unsigned i = SUB + (e - SUMMARY_SUB_BITS) * SUB + sub;
	return i < SUMMARY_BUCKETS ? i : SUMMARY_BUCKETS - 1;
}

uint64_t summary_bucket_floor(unsigned i)
{
	if (i < SUB)
		return i;
	unsigned e = (i - SUB) / SUB + SUMMARY_SUB_BITS;
	uint64_t sub = (i - SUB) % SUB;
	return (SUB + sub) << (e - SUMMARY_SUB_BITS);
}

void summary_observe(struct summary *s, uint64_t v)
{
	atomic_fetch_add_explicit(&s->buckets[summary_bucket_of(v)], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->sum, v, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
	uint64_t m = atomic_load_explicit(&s->min, memory_order_relaxed);
	while (v < m && !atomic_compare_exchange_weak_explicit(&s->min, &m, v, memory_order_relaxed,
							       memory_order_relaxed))
		;
	m = atomic_load_explicit(&s->max, memory_order_relaxed);
	while (v > m && !atomic_compare_exchange_weak_explicit(&s->max, &m, v, memory_order_relaxed,
							       memory_order_relaxed))
		;
}

void summary_reset(struct summary *s)
{
	for (unsigned i = 0; i < SUMMARY_BUCKETS; i++)
		atomic_store_explicit(&s->buckets[i], 0, memory_order_relaxed);
	atomic_store_explicit(&s->count, 0, memory_order_relaxed);
	atomic_store_explicit(&s->sum, 0, memory_order_relaxed);
	atomic_store_explicit(&s->min, UINT64_MAX, memory_order_relaxed);
	atomic_store_explicit(&s->max, 0, memory_order_relaxed);
}

void summary_read(const struct summary *s, struct summary_snap *out)
{
	out->count = atomic_load_explicit(&s->count, memory_order_relaxed);
	out->sum = atomic_load_explicit(&s->sum, memory_order_relaxed);
	out->min = atomic_load_explicit(&s->min, memory_order_relaxed);
	out->max = atomic_load_explicit(&s->max, memory_order_relaxed);
	for (unsigned i = 0; i < SUMMARY_BUCKETS; i++)
		out->buckets[i] = atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
}

void summary_snap_clear(struct summary_snap *acc)
{
	memset(acc, 0, sizeof *acc);
	acc->min = UINT64_MAX;
}

void summary_snap_add(struct summary_snap *acc, const struct summary_snap *s)
{
	acc->count += s->count;
	acc->sum += s->sum;
	if (s->min < acc->min)
		acc->min = s->min;
	if (s->max > acc->max)
		acc->max = s->max;
	for (unsigned i = 0; i < SUMMARY_BUCKETS; i++)
		acc->buckets[i] += s->buckets[i];
}

/* Observations of bucket i in now and not in base. A base from before a
 * reset can hold more than now: that bucket counts as empty. */
static uint64_t delta(const struct summary_snap *now, const struct summary_snap *base, unsigned i)
{
	uint64_t b = base ? base->buckets[i] : 0;
	return now->buckets[i] > b ? now->buckets[i] - b : 0;
}

double summary_quantile(const struct summary_snap *now, const struct summary_snap *base, double q)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < SUMMARY_BUCKETS; i++)
		n += delta(now, base, i);
	if (n == 0)
		return NAN;
	if (q < 0)
		q = 0;
	if (q > 1)
		q = 1;
	/* The rank-th smallest observation, 1-based. */
	double want = q * (double)n;
	uint64_t rank = (uint64_t)want;
	if ((double)rank < want || rank == 0)
		rank++;
	uint64_t seen = 0;
	for (unsigned i = 0; i < SUMMARY_BUCKETS; i++) {
		uint64_t d = delta(now, base, i);
		if (seen + d < rank) {
			seen += d;
			continue;
		}
		if (i < SUB)
			return (double)i; /* exact buckets */
		/* Spread the bucket's observations evenly over its width. */
		double lo = (double)summary_bucket_floor(i);
		double hi = i + 1 < SUMMARY_BUCKETS ? (double)summary_bucket_floor(i + 1) : lo * 2;
		return lo + (hi - lo) * ((double)(rank - seen) - 0.5) / (double)d;
	}
	return NAN; /* not reached: rank <= n */
}
