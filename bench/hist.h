/* Latency histogram for the load generator, HdrHistogram-style log-linear
 * buckets in microseconds: values below 128 us are exact; above, every
 * power-of-two range is split into 64 equal buckets, so a bucket is never
 * wider than 1/64 (1.6%) of the values it holds. Values past HIST_MAX_US
 * (about 35 minutes) land in the top bucket; max_us is always exact.
 *
 * A histogram is a flat array with no pointers: each worker thread owns its
 * own and the main thread merges them after the workers have been joined. */
#ifndef RK_BENCH_HIST_H
#define RK_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS  7
#define HIST_SUB_COUNT (1u << HIST_SUB_BITS)
#define HIST_HALF      (HIST_SUB_COUNT / 2)
#define HIST_SHIFT_MAX 24
#define HIST_BUCKETS   (HIST_SUB_COUNT + HIST_SHIFT_MAX * HIST_HALF)
#define HIST_MAX_US    ((UINT64_C(1) << (HIST_SUB_BITS + HIST_SHIFT_MAX)) - 1)

struct hist {
	uint64_t count;
	uint64_t sum_us;
	uint64_t max_us;
	uint64_t buckets[HIST_BUCKETS];
};

void hist_reset(struct hist *h);
void hist_record(struct hist *h, uint64_t value_us);
void hist_merge(struct hist *dst, const struct hist *src);
/* The value at percentile p (0 < p <= 100): the highest value that falls in
 * the same bucket as the sample of that rank, capped at max_us. 0 if empty. */
uint64_t hist_percentile(const struct hist *h, double p);

#endif
