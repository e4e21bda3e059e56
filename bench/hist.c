/* Log-linear latency histogram; see hist.h for the bucket layout. */
#include "bench/hist.h"

#include <math.h>
#include <string.h>

_Static_assert(HIST_BUCKETS == 1664, "bucket layout changed");

static unsigned bucket_of(uint64_t v)
{
	if (v < HIST_SUB_COUNT)
		return (unsigned)v;
	if (v > HIST_MAX_US)
		v = HIST_MAX_US;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - (HIST_SUB_BITS - 1);
	return HIST_SUB_COUNT + (shift - 1) * HIST_HALF + (unsigned)(v >> shift) - HIST_HALF;
}

/* The largest value that maps to bucket i. */
static uint64_t bucket_top(unsigned i)
{
	if (i < HIST_SUB_COUNT)
		return i;
	unsigned shift = (i - HIST_SUB_COUNT) / HIST_HALF + 1;
	uint64_t mantissa = (i - HIST_SUB_COUNT) % HIST_HALF + HIST_HALF;
	return ((mantissa + 1) << shift) - 1;
}

void hist_reset(struct hist *h)
{
	memset(h, 0, sizeof *h);
}

void hist_record(struct hist *h, uint64_t value_us)
{
	h->buckets[bucket_of(value_us)]++;
	h->count++;
	h->sum_us += value_us;
	if (value_us > h->max_us)
		h->max_us = value_us;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	dst->sum_us += src->sum_us;
	if (src->max_us > dst->max_us)
		dst->max_us = src->max_us;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
	if (h->count == 0)
		return 0;
	if (p >= 100.0)
		return h->max_us;
	uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
	if (rank == 0)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			uint64_t top = bucket_top(i);
			return top < h->max_us ? top : h->max_us;
		}
	}
	return h->max_us;
}
