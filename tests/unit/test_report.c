/* Reports of the cores' connections, watches and sessions: the records a
 * part keeps within its budget, and the text of cons, stat's clients,
 * wchc, wchp and dump in ZooKeeper 3.8's formats, capped. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/proto.h"
#include "net/report.h"

#define NOW_MONO_MS 1000000LL
#define NOW_WALL_MS 1700000000000LL /* Tue Nov 14 22:13:20 2023 UTC */

static struct report_conn conn(const char *ip, uint16_t port, uint64_t sid)
{
	struct report_conn r = {.port = port,
				.interest = 1,
				.session_id = sid,
				.timeout_ms = 30000,
				.received = 5,
				.sent = 4,
				.queued = 1,
				.established_ms = 1795460468323LL,
				.last_cxid = 8,
				.last_zxid = 7,
				.last_response_ms = 12091399,
				.last_latency_ms = 1,
				.min_latency_ms = 0,
				.avg_latency_ms = 2,
				.max_latency_ms = 19,
				.expires_ms = NOW_MONO_MS + 30000};
	snprintf(r.ip, sizeof r.ip, "%s", ip);
	snprintf(r.last_op, sizeof r.last_op, "GETD");
	return r;
}

static struct report_ctx ctx_of(struct report_part *parts, int count)
{
	return (struct report_ctx){.parts = parts,
				   .count = count,
				   .now_mono_ms = NOW_MONO_MS,
				   .now_wall_ms = NOW_WALL_MS,
				   .tick_ms = 2000,
				   .session_sets = true};
}

/* The printed text as a C string; the caller frees it. */
static char *text(struct jute_out *out)
{
	char *s = malloc(out->len + 1);
	cr_assert_not_null(s);
	memcpy(s, out->buf, out->len);
	s[out->len] = 0;
	jute_out_free(out);
	return s;
}

static struct report_part *parts_new(int n, size_t bytes)
{
	struct report_part *p = calloc((size_t)n, sizeof *p);
	cr_assert_not_null(p);
	for (int i = 0; i < n; i++) {
		report_part_init(&p[i], bytes);
		p[i].answered = true;
	}
	return p;
}

static void parts_free(struct report_part *p, int n)
{
	for (int i = 0; i < n; i++)
		report_part_free(&p[i]);
	free(p);
}

Test(report, cons_prints_dump_connection_info_in_full)
{
	struct report_part *p = parts_new(2, 1 << 20);
	struct report_conn a = conn("127.0.0.1", 54321, 0x10000b864380001ULL);
	struct report_conn four = conn("0:0:0:0:0:0:0:1", 40000, 0);
	four.interest = 0;
	four.received = 1;
	four.sent = 0;
	four.queued = 0;
	struct report_conn reset = conn("10.0.0.2", 1, 0x5);
	snprintf(reset.last_op, sizeof reset.last_op, "NA");
	reset.last_cxid = -1;
	reset.last_zxid = -1;
	cr_assert_eq(report_add_conn(&p[0], &a), 0);
	cr_assert_eq(report_add_conn(&p[1], &four), 0);
	cr_assert_eq(report_add_conn(&p[1], &reset), 0);
	struct report_ctx c = ctx_of(p, 2);
	struct jute_out out;
	jute_out_init(&out, 0, 1 << 20);
	report_print_cons(&c, &out);
	char *s = text(&out);
	cr_assert_str_eq(
	    s, " /127.0.0.1:54321[1](queued=1,recved=5,sent=4,sid=0x10000b864380001,lop=GETD,"
	       "est=1795460468323,to=30000,lcxid=0x8,lzxid=0x7,lresp=12091399,llat=1,minlat=0,"
	       "avglat=2,maxlat=19)\n"
	       " /0:0:0:0:0:0:0:1:40000[0](queued=0,recved=1,sent=0)\n"
	       " /10.0.0.2:1[1](queued=1,recved=5,sent=4,sid=0x5,lop=NA,est=1795460468323,"
	       "to=30000,lzxid=0xffffffffffffffff,lresp=12091399,llat=1,minlat=0,avglat=2,"
	       "maxlat=19)\n"
	       "\n");
	free(s);
	jute_out_init(&out, 0, 1 << 20);
	report_print_clients(&c, &out);
	s = text(&out);
	cr_assert_str_eq(s, " /127.0.0.1:54321[1](queued=1,recved=5,sent=4)\n"
			    " /0:0:0:0:0:0:0:1:40000[0](queued=0,recved=1,sent=0)\n"
			    " /10.0.0.2:1[1](queued=1,recved=5,sent=4)\n"
			    "\n");
	free(s);
	parts_free(p, 2);
}

Test(report, interest_ops_print_in_hex)
{
	struct report_part *p = parts_new(1, 1 << 20);
	struct report_conn a = conn("127.0.0.1", 2, 0);
	a.interest = 5;
	report_add_conn(&p[0], &a);
	struct report_ctx c = ctx_of(p, 1);
	struct jute_out out;
	jute_out_init(&out, 0, 1 << 20);
	report_print_clients(&c, &out);
	char *s = text(&out);
	cr_assert(strstr(s, "[5](") != NULL, "%s", s);
	free(s);
	parts_free(p, 1);
}

Test(report, watches_are_grouped_sorted_and_listed_once)
{
	struct report_part *p = parts_new(2, 1 << 20);
	report_add_path(&p[1], 0x2, "/b", 2);
	report_add_path(&p[0], 0x1, "/b", 2);
	report_add_path(&p[0], 0x1, "/a/x", 4);
	report_add_path(&p[0], 0x1, "/b", 2); /* a data and a persistent watch */
	report_add_path(&p[1], 0x2, "/a", 2);
	struct report_ctx c = ctx_of(p, 2);
	struct jute_out out;
	jute_out_init(&out, 0, 1 << 20);
	report_print_watches(&c, false, &out);
	char *s = text(&out);
	cr_assert_str_eq(s, "0x1\n\t/a/x\n\t/b\n0x2\n\t/a\n\t/b\n\n");
	free(s);
	jute_out_init(&out, 0, 1 << 20);
	report_print_watches(&c, true, &out);
	s = text(&out);
	cr_assert_str_eq(s, "/a\n\t0x2\n/a/x\n\t0x1\n/b\n\t0x1\n\t0x2\n\n");
	free(s);
	parts_free(p, 2);
}

Test(report, no_watches_is_an_empty_line)
{
	struct report_part *p = parts_new(1, 1 << 20);
	struct report_ctx c = ctx_of(p, 1);
	struct jute_out out;
	jute_out_init(&out, 0, 1 << 20);
	report_print_watches(&c, true, &out);
	char *s = text(&out);
	cr_assert_str_eq(s, "\n");
	free(s);
	parts_free(p, 1);
}

Test(report, a_full_part_counts_what_it_left_out_and_the_answer_says_so)
{
	/* Room for two connection records. */
	struct report_part *p = parts_new(1, 2 * sizeof(struct report_conn) + 8);
	struct report_conn a = conn("127.0.0.1", 1, 0);
	cr_assert_eq(report_add_conn(&p[0], &a), 0);
	cr_assert_eq(report_add_conn(&p[0], &a), 0);
	cr_assert_eq(report_add_conn(&p[0], &a), -ENOSPC);
	cr_assert_eq(report_add_path(&p[0], 1, "/x", 2), -ENOSPC);
	cr_assert_eq(p[0].conns_left_out, 1);
	cr_assert_eq(p[0].paths_left_out, 1);
	struct report_ctx c = ctx_of(p, 1);
	struct jute_out out;
	jute_out_init(&out, 0, 1 << 20);
	report_print_clients(&c, &out);
	char *s = text(&out);
	char want[128];
	snprintf(want, sizeof want,
		 "(1 more connections not listed: the answer is capped at %u bytes)\n\n",
		 REPORT_TEXT_MAX);
	cr_assert(strstr(s, want) != NULL, "%s", s);
	free(s);
	parts_free(p, 1);
}

Test(report, the_text_stops_at_its_cap)
{
	/* Enough watches to print more than REPORT_TEXT_MAX. */
	size_t n = REPORT_TEXT_MAX / 40 + 1000;
	struct report_part *p = parts_new(1, REPORT_BYTES_MAX);
	char path[64];
	for (size_t i = 0; i < n; i++) {
		int len = snprintf(path, sizeof path, "/a/rather/long/path/%020zu", i);
		cr_assert_eq(report_add_path(&p[0], 1 + i, path, (size_t)len), 0);
	}
	struct report_ctx c = ctx_of(p, 1);
	struct jute_out out;
	jute_out_init(&out, 0, 2 * REPORT_TEXT_MAX);
	report_print_watches(&c, false, &out);
	cr_assert_leq(out.len, REPORT_TEXT_MAX + 1024);
	char *s = text(&out);
	cr_assert(strstr(s, "more watches not listed: the answer is capped at") != NULL);
	free(s);
	parts_free(p, 1);
}

Test(report, a_core_not_asked_is_named)
{
	struct report_part *p = parts_new(2, 1 << 20);
	p[1].answered = false;
	struct report_ctx c = ctx_of(p, 2);
	struct jute_out out;
	jute_out_init(&out, 0, 1 << 20);
	report_print_cons(&c, &out);
	char *s = text(&out);
	cr_assert_str_eq(s, "(core 1 could not be asked: its entries are missing)\n\n");
	free(s);
	parts_free(p, 2);
}

static void add_session(struct report_part *p, uint64_t id, int64_t expires, int32_t timeout)
{
	struct report_session s = {.id = id, .expires_ms = expires, .timeout_ms = timeout};
	cr_assert_eq(report_add_session(p, &s), 0);
}

Test(report, dump_buckets_sessions_by_tick_and_lists_ephemerals)
{
	setenv("TZ", "UTC", 1);
	struct report_part *p = parts_new(2, 1 << 20);
	/* Due in 3.5 s and 3.9 s: both in the bucket of the next 2 s
	 * multiple (1004000); in 9 s: 1010000. */
	add_session(&p[0], 0x3, NOW_MONO_MS + 3500, 30000);
	add_session(&p[0], 0x1, NOW_MONO_MS + 3900, 30000);
	add_session(&p[0], 0x2, NOW_MONO_MS + 9000, 10000);
	report_add_path(&p[0], 0x3, "/e/2", 4);
	report_add_path(&p[0], 0x3, "/e/1", 4);
	report_add_path(&p[0], 0x1, "/e/x", 4);
	struct report_conn a = conn("127.0.0.1", 7, 0x1);
	a.expires_ms = NOW_MONO_MS + 25000;
	struct report_conn b = conn("127.0.0.1", 8, 0);
	b.expires_ms = NOW_MONO_MS + 2000;
	report_add_conn(&p[1], &a);
	report_add_conn(&p[1], &b);
	struct report_ctx c = ctx_of(p, 2);
	struct jute_out out;
	jute_out_init(&out, 0, 1 << 20);
	report_print_dump(&c, &out);
	char *s = text(&out);
	/* Mono 1004000 is wall 1700000004000: 22:13:24. */
	cr_assert_str_eq(s, "SessionTracker dump:\n"
			    "Session Sets (2)/(3):\n"
			    "2 expire at Tue Nov 14 22:13:24 UTC 2023:\n"
			    "\t0x1\n"
			    "\t0x3\n"
			    "1 expire at Tue Nov 14 22:13:30 UTC 2023:\n"
			    "\t0x2\n"
			    "ephemeral nodes dump:\n"
			    "Sessions with Ephemerals (2):\n"
			    "0x1:\n"
			    "\t/e/x\n"
			    "0x3:\n"
			    "\t/e/1\n"
			    "\t/e/2\n"
			    "Connections dump:\n"
			    "Connections Sets (2)/(2):\n"
			    "1 expire at Tue Nov 14 22:13:30 UTC 2023:\n"
			    "\tip: /127.0.0.1:8 sessionId: 0x0\n"
			    "1 expire at Tue Nov 14 22:13:50 UTC 2023:\n"
			    "\tip: /127.0.0.1:7 sessionId: 0x1\n");
	free(s);
	/* A follower lists the sessions with their timeouts instead. */
	c.session_sets = false;
	jute_out_init(&out, 0, 1 << 20);
	report_print_dump(&c, &out);
	s = text(&out);
	cr_assert(strstr(s, "SessionTracker dump:\nGlobal Sessions(3):\n0x1\t30000ms\n0x2\t10000ms\n"
			    "0x3\t30000ms\nephemeral nodes dump:\n") == s,
		  "%s", s);
	free(s);
	parts_free(p, 2);
}

Test(report, op_names_are_zookeepers)
{
	cr_assert_str_eq(report_op_name(ZOP_GET_DATA), "GETD");
	cr_assert_str_eq(report_op_name(ZOP_CREATE2), "CREA");
	cr_assert_str_eq(report_op_name(ZOP_CREATE_SESSION), "SESS");
	cr_assert_str_eq(report_op_name(ZOP_GET_ALL_CHILDREN_NUMBER), "GETACN");
	cr_assert_str_eq(report_op_name(ZOP_WHO_AM_I), "HOMI");
	cr_assert_null(report_op_name(ZOP_AUTH));
	cr_assert_null(report_op_name(12345));
}
