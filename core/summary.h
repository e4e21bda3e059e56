/* A summary of observed values (durations in microseconds, sizes in
 * bytes) for the metrics endpoints: count, sum, min, max, and a histogram
 * from which quantiles are estimated, as ZooKeeper's summaries report them
 * (mntr's avg_/min_/max_/cnt_/sum_ keys, Prometheus' quantiles).
 *
 * Histogram: values 0..7 have a bucket each; above, every power of two is
 * cut into 8 buckets, so a bucket is at most 12.5% of its lower bound wide
 * and a quantile is estimated within that. Values past the last bucket
 * (2^43, 101 days in microseconds) land in it.
 *
 * Threads: any thread may observe (atomic adds, CAS for min and max) and
 * any may read. A reader may see one observation counted in the buckets
 * but not yet in count or sum: these are statistics, not a ledger.
 *
 * Windows: a reader that wants quantiles of recent observations (as
 * ZooKeeper rotates its sketches every 60 s) keeps a summary_snap taken
 * earlier and asks summary_quantile for the difference. */
#ifndef RK_SUMMARY_H
#define RK_SUMMARY_H

#include <stdatomic.h>
#include <stdint.h>

#define SUMMARY_SUB_BITS 3 /* 8 buckets per power of two */
#define SUMMARY_BUCKETS	 328

struct summary {
	_Atomic uint64_t count;
	_Atomic uint64_t sum;
	_Atomic uint64_t min; /* UINT64_MAX until the first observation */
	_Atomic uint64_t max;
	_Atomic uint64_t buckets[SUMMARY_BUCKETS];
};

/* A plain copy, for windows and for adding up per-core summaries. */
struct summary_snap {
	uint64_t count, sum, min, max;
	uint64_t buckets[SUMMARY_BUCKETS];
};

void summary_init(struct summary *s);
void summary_observe(struct summary *s, uint64_t v);
/* Forget every observation (the srst command). Racy against observers by
 * design, like the counters it resets with. */
void summary_reset(struct summary *s);
void summary_read(const struct summary *s, struct summary_snap *out);
/* acc += s: counts, sums and buckets add, min and max combine. acc may
 * start zeroed with min UINT64_MAX (summary_snap_clear). */
void summary_snap_clear(struct summary_snap *acc);
void summary_snap_add(struct summary_snap *acc, const struct summary_snap *s);
/* The q-quantile (0 <= q <= 1) of the observations in now but not in base
 * (base NULL: all of now), or NaN when there are none. base must be an
 * earlier read of the same summary. Within the width of one bucket. */
double summary_quantile(const struct summary_snap *now, const struct summary_snap *base, double q);

/* Bucket arithmetic, exposed for tests: the bucket of v, and the smallest
 * value of bucket i. */
unsigned summary_bucket_of(uint64_t v);
uint64_t summary_bucket_floor(unsigned i);

#endif
