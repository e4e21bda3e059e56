/* A bench worker: one thread running one epoll loop over its sessions.
 * Closed loop needs no timers: each reply frees a slot and the session
 * refills it in the same wakeup. Open loop adds one timerfd armed at the
 * earliest due request. A tick every few milliseconds checks deadlines,
 * notices the start signal from main and closes sessions at the end. */
#include "bench/client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define EVENTS_MAX	  256
#define TICK_WAIT_NS	  1000000u  /* before the start: react fast to it */
#define TICK_RUN_NS	  10000000u /* after: deadlines are seconds long */
#define DEADLINE_SLACK_NS 1000000000u

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t seed_of(int id)
{
	/* splitmix64 of the clock and the worker id: distinct, never 0. */
	uint64_t z = now_ns() + (uint64_t)id * UINT64_C(0x9E3779B97F4A7C15);
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	z ^= z >> 31;
	return z ? z : 1;
}

static int add_timer(struct worker *w)
{
	w->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (w->timerfd < 0)
		return -errno;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->timerfd, &ev) < 0)
		return -errno;
	return 0;
}

int worker_init(struct worker *w, struct bench *b, enum worker_mode mode, int id, int first,
		int count, int inflight)
{
	const struct bench_config *cfg = &b->cfg;
	int err = -ENOMEM;
	memset(w, 0, sizeof *w);
	w->id = id;
	w->mode = mode;
	w->b = b;
	w->timerfd = -1;
	w->rng = seed_of(id);
	w->read_threshold =
	    cfg->read_ratio >= 1.0 ? UINT64_C(1) << 53 : (uint64_t)(cfg->read_ratio * 0x1p53);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0) {
		err = -errno;
		goto err;
	}
	if (mode == WORKER_RUN && cfg->rate_ops > 0 && (err = add_timer(w)) < 0)
		goto err;
	if (mode == WORKER_SETUP &&
	    !(w->resize_keys = calloc((size_t)cfg->keys, sizeof *w->resize_keys)))
		goto err;
	if (mode == WORKER_RUN && b->series_len) {
		if (!(w->series = calloc(b->series_len, sizeof *w->series)))
			goto err;
		w->series_len = b->series_len;
		series_init(w->series, w->series_len);
	}
	if (!(w->sessions = calloc((size_t)count, sizeof *w->sessions)))
		goto err;
	for (int i = 0; i < count; i++) {
		w->session_count = i + 1;
		if ((err = client_init(&w->sessions[i], w, first + i, inflight)) < 0)
			goto err;
	}
	w->sessions_live = count;
	return 0;
err:
	worker_free(w);
	return err;
}

void worker_free(struct worker *w)
{
	for (int i = 0; i < w->session_count; i++)
		client_free(&w->sessions[i]);
	free(w->sessions);
	w->sessions = NULL;
	w->session_count = 0;
	free(w->resize_keys);
	w->resize_keys = NULL;
	free(w->series);
	w->series = NULL;
	if (w->timerfd >= 0)
		close(w->timerfd);
	if (w->epfd >= 0)
		close(w->epfd);
	w->timerfd = w->epfd = -1;
}

static uint64_t timeout_ns(const struct worker *w)
{
	return (uint64_t)(w->b->cfg.timeout_s * 1e9);
}

/* Main stores start_ns once every worker is ready; all workers derive the
 * same measurement window from it, whenever they happen to notice. */
static void check_start(struct worker *w)
{
	const struct bench_config *cfg = &w->b->cfg;
	uint64_t start = atomic_load(&w->b->start_ns);
	if (start == 0)
		return;
	w->measure_from_ns = start + (uint64_t)(cfg->warmup_s * 1e9);
	w->measure_to_ns = w->measure_from_ns + (uint64_t)(cfg->duration_s * 1e9);
	w->hard_deadline_ns = w->measure_to_ns + 3 * timeout_ns(w) + DEADLINE_SLACK_NS;
	if (cfg->rate_ops <= 0)
		return;
	/* Sessions share the offered load equally, staggered so they do not
	 * all fire at once. */
	double gap_ns = 1e9 / cfg->rate_ops;
	for (int i = 0; i < w->session_count; i++) {
		struct client *s = &w->sessions[i];
		s->sched_interval_ns = gap_ns * cfg->sessions;
		s->sched_origin_ns = start + (uint64_t)(gap_ns * s->index);
		s->sched_next = 0;
	}
}

/* A signal ends the measured window early: every worker cuts it at the
 * same instant, so the report's duration holds for all of them. */
static void check_stop(struct worker *w)
{
	uint64_t stop = atomic_load_explicit(&w->b->stop_ns, memory_order_relaxed);
	if (!stop || stop >= w->measure_to_ns)
		return;
	w->measure_to_ns = stop > w->measure_from_ns ? stop : w->measure_from_ns;
	w->hard_deadline_ns = w->measure_to_ns + 3 * timeout_ns(w) + DEADLINE_SLACK_NS;
}

static void tick(struct worker *w, uint64_t now)
{
	if (w->mode == WORKER_RUN && w->measure_to_ns == 0)
		check_start(w);
	if (w->mode == WORKER_RUN && w->measure_to_ns)
		check_stop(w);
	for (int i = 0; i < w->session_count; i++)
		client_tick(&w->sessions[i], now);
	if (!w->signalled_ready && w->sessions_ready == w->session_count) {
		w->signalled_ready = true;
		atomic_fetch_add(&w->b->ready_workers, 1);
	}
}

static void on_timer(struct worker *w)
{
	uint64_t expirations;
	if (read(w->timerfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
		log_warn("worker %d: read(timerfd): %s", w->id, strerror(errno));
	w->armed_ns = 0;
	uint64_t now = now_ns();
	for (int i = 0; i < w->session_count; i++)
		client_drive(&w->sessions[i], now);
}

/* Open loop: wake up when the earliest session with a free slot is due. */
static void arm_timer(struct worker *w)
{
	uint64_t due = UINT64_MAX;
	for (int i = 0; i < w->session_count; i++) {
		const struct client *s = &w->sessions[i];
		if (s->state == CLIENT_ACTIVE && s->slot_count < s->slot_cap) {
			uint64_t d = workload_next_due(s);
			due = d < due ? d : due;
		}
	}
	if (due == UINT64_MAX || due == w->armed_ns)
		return;
	struct itimerspec its = {.it_value = {.tv_sec = (time_t)(due / 1000000000u),
					      .tv_nsec = (long)(due % 1000000000u)}};
	if (timerfd_settime(w->timerfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		log_warn("worker %d: timerfd_settime: %s", w->id, strerror(errno));
		return;
	}
	w->armed_ns = due;
}

static void fail_live(struct worker *w, const char *why)
{
	for (int i = 0; i < w->session_count; i++)
		if (client_live(&w->sessions[i]))
			client_fail(&w->sessions[i], 0, "%s", why);
}

/* --reconnect: sessions that lost their connection in this batch reconnect
 * only once it is handled, so no stale event of the old fd reaches a new one. */
static void reopen_due(struct worker *w)
{
	uint64_t now = now_ns();
	for (int i = 0; i < w->session_count; i++)
		client_reopen_if_due(&w->sessions[i], now);
}

static int wait_ms(uint64_t now, uint64_t next_tick)
{
	if (next_tick <= now)
		return 0;
	return (int)((next_tick - now + 999999u) / 1000000u);
}

int worker_run(struct worker *w)
{
	struct epoll_event ev[EVENTS_MAX];
	uint64_t now = now_ns();
	if (w->mode == WORKER_SETUP) {
		/* Setup is bounded by the per-request progress timeout. */
		w->measure_to_ns = UINT64_MAX;
		w->hard_deadline_ns = UINT64_MAX;
	} else {
		w->hard_deadline_ns = now + 4 * timeout_ns(w) + DEADLINE_SLACK_NS;
	}
	for (int i = 0; i < w->session_count; i++)
		client_open(&w->sessions[i], now);
	uint64_t next_tick = now;
	while (w->sessions_live > 0) {
		now = now_ns();
		if (now >= next_tick) {
			tick(w, now);
			next_tick = now + (w->measure_to_ns ? TICK_RUN_NS : TICK_WAIT_NS);
		}
		if (now > w->hard_deadline_ns) {
			fail_live(w, "still open past the end of the run");
			break;
		}
		int n = epoll_wait(w->epfd, ev, EVENTS_MAX, wait_ms(now, next_tick));
		if (n < 0 && errno != EINTR) {
			log_error("worker %d: epoll_wait: %s", w->id, strerror(errno));
			fail_live(w, "worker loop failed");
			break;
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr == w)
				on_timer(w);
			else
				client_on_event(ev[i].data.ptr, ev[i].events);
		}
		if (w->sessions_waiting)
			reopen_due(w);
		if (w->timerfd >= 0)
			arm_timer(w);
	}
	return w->failed_sessions ? -EIO : 0;
}

void *worker_thread(void *arg)
{
	struct worker *w = arg;
	log_set_core(w->id);
	w->result = worker_run(w);
	return NULL;
}
