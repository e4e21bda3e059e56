/* Summaries: bucket arithmetic (every value lands in the bucket whose
 * range holds it, buckets are at most 12.5% wide), count/sum/min/max,
 * quantiles within a bucket's width, windows as differences of reads,
 * adding per-core summaries, and reset. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>

#include "core/summary.h"

Test(summary, every_value_falls_in_its_bucket)
{
	uint64_t vs[] = {
	    0, 1, 7, 8, 9, 15, 16, 17, 100, 1000, 999999, 1ull << 20, (1ull << 42) + 12345};
	for (size_t i = 0; i < sizeof vs / sizeof *vs; i++) {
		unsigned b = summary_bucket_of(vs[i]);
		cr_assert_lt(b, SUMMARY_BUCKETS);
		cr_assert_leq(summary_bucket_floor(b), vs[i], "value %lu", (unsigned long)vs[i]);
		if (b + 1 < SUMMARY_BUCKETS)
			cr_assert_gt(summary_bucket_floor(b + 1), vs[i], "value %lu",
				     (unsigned long)vs[i]);
	}
	cr_assert_eq(summary_bucket_of(UINT64_MAX), SUMMARY_BUCKETS - 1, "the last takes the rest");
}

Test(summary, buckets_are_contiguous_and_at_most_an_eighth_wide)
{
	for (unsigned b = 1; b < SUMMARY_BUCKETS; b++) {
		uint64_t lo = summary_bucket_floor(b - 1), hi = summary_bucket_floor(b);
		cr_assert_gt(hi, lo);
		cr_assert_eq(summary_bucket_of(hi), b);
		cr_assert_eq(summary_bucket_of(hi - 1), b - 1);
		if (lo >= 8)
			cr_assert_leq((hi - lo) * 8, lo, "bucket %u", b - 1);
	}
}

Test(summary, counts_sums_and_extremes)
{
	struct summary s;
	summary_init(&s);
	struct summary_snap r;
	summary_read(&s, &r);
	cr_assert_eq(r.count, 0);
	cr_assert_eq(r.min, UINT64_MAX);
	cr_assert(isnan(summary_quantile(&r, NULL, 0.5)), "no observations: NaN");
	summary_observe(&s, 30);
	summary_observe(&s, 10);
	summary_observe(&s, 20);
	summary_read(&s, &r);
	cr_assert_eq(r.count, 3);
	cr_assert_eq(r.sum, 60);
	cr_assert_eq(r.min, 10);
	cr_assert_eq(r.max, 30);
	summary_reset(&s);
	summary_read(&s, &r);
	cr_assert_eq(r.count + r.sum + r.max, 0);
	cr_assert_eq(r.min, UINT64_MAX);
}

Test(summary, quantiles_are_within_a_bucket)
{
	struct summary s;
	summary_init(&s);
	for (uint64_t v = 1; v <= 10000; v++)
		summary_observe(&s, v * 100); /* 100 .. 1,000,000 */
	struct summary_snap r;
	summary_read(&s, &r);
	double qs[] = {0.0, 0.5, 0.9, 0.99, 1.0};
	for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) {
		double want = fmax(1.0, qs[i] * 10000) * 100;
		double got = summary_quantile(&r, NULL, qs[i]);
		cr_assert(fabs(got - want) <= want * 0.125, "q %.2f: %.0f, want %.0f", qs[i], got,
			  want);
	}
	summary_observe(&s, 5);
	summary_read(&s, &r);
	cr_assert_eq(summary_quantile(&r, NULL, 0), 5.0, "small values are exact");
}

Test(summary, a_window_is_the_difference_of_two_reads)
{
	struct summary s;
	summary_init(&s);
	for (int i = 0; i < 1000; i++)
		summary_observe(&s, 1000000);
	struct summary_snap base, now;
	summary_read(&s, &base);
	cr_assert(isnan(summary_quantile(&base, &base, 0.5)), "an empty window");
	for (int i = 0; i < 10; i++)
		summary_observe(&s, 50);
	summary_read(&s, &now);
	double q = summary_quantile(&now, &base, 0.99);
	cr_assert(q >= 48 && q <= 56, "only the window's values: %f", q);
	cr_assert_gt(summary_quantile(&now, NULL, 0.5), 800000.0, "all of them");
	/* A base from before a reset holds more than now: nothing is negative. */
	summary_reset(&s);
	summary_observe(&s, 7);
	summary_read(&s, &now);
	cr_assert_eq(summary_quantile(&now, &base, 0.5), 7.0);
}

Test(summary, snaps_add_up)
{
	struct summary a, b;
	summary_init(&a);
	summary_init(&b);
	summary_observe(&a, 100);
	summary_observe(&b, 3);
	summary_observe(&b, 900);
	struct summary_snap acc, one;
	summary_snap_clear(&acc);
	summary_read(&a, &one);
	summary_snap_add(&acc, &one);
	summary_read(&b, &one);
	summary_snap_add(&acc, &one);
	cr_assert_eq(acc.count, 3);
	cr_assert_eq(acc.sum, 1003);
	cr_assert_eq(acc.min, 3);
	cr_assert_eq(acc.max, 900);
	cr_assert_eq(summary_quantile(&acc, NULL, 0), 3.0);
}
