/* /metrics: the server's figures (net/status) in the Prometheus text
 * exposition format 0.0.4, under the names ZooKeeper's
 * PrometheusMetricsProvider uses, so dashboards and alerts built for
 * ZooKeeper read Ringkeeper unchanged.
 *
 * Types are ZooKeeper's: what it registers as a gauge is a gauge here too,
 * even a count that only grows (packets_received), because a scrape
 * config or recording rule may depend on the type; its counters
 * (looking_count) print without a _total suffix, as its client library
 * (simpleclient before 0.10) printed them. Its summaries (fsynctime,
 * snapshottime, election_time with the median; updatelatency with the
 * 0.5, 0.9 and 0.99 quantiles) are in milliseconds; quantiles are over the
 * last one to two METRICS_WINDOW_MS windows, _count and _sum over the
 * process's life. Help texts are ours (ZooKeeper repeats the name). */
#ifndef RK_METRICS_H
#define RK_METRICS_H

#include <stdint.h>

#include "core/jute.h"
#include "net/status.h"

/* Older and newer bases of the quantile windows: quantiles are taken over
 * what was observed since `old`. */
struct metrics_windows {
	struct summary_snap old[STATUS_SUMMARY_COUNT];
	struct summary_snap cur[STATUS_SUMMARY_COUNT];
};

/* Both bases empty: until the first rotation, quantiles cover everything. */
void metrics_windows_init(struct metrics_windows *w);
/* Call every window: the newer base becomes the older, st's the newer. */
void metrics_windows_rotate(struct metrics_windows *w, const struct server_status *st);
/* st with status_collect_fds done. Appends to body. */
void metrics_write(const struct server_status *st, const struct metrics_windows *w,
		   struct jute_out *body);

#endif
