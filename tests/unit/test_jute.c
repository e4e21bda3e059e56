/* Jute codec: round trips, sticky errors, forged lengths. */
#include <criterion/criterion.h>
#include <errno.h>

#include "core/jute.h"
#include "core/proto.h"

Test(jute, int_long_bool_round_trip)
{
	struct jute_out out;
	jute_out_init(&out, 0, 1024);
	jute_put_int(&out, -123456);
	jute_put_long(&out, 0x0102030405060708LL);
	jute_put_bool(&out, true);
	jute_put_cstr(&out, "/a/b");
	jute_put_buffer(&out, NULL, -1);
	cr_assert_eq(out.err, 0);
	struct jute_in in = jute_in_make(out.buf, out.len);
	cr_assert_eq(jute_get_int(&in), -123456);
	cr_assert_eq(jute_get_long(&in), 0x0102030405060708LL);
	cr_assert(jute_get_bool(&in));
	const char *s;
	int32_t n;
	jute_get_string(&in, &s, &n);
	cr_assert_eq(n, 4);
	cr_assert(memcmp(s, "/a/b", 4) == 0);
	const uint8_t *b;
	jute_get_buffer(&in, &b, &n);
	cr_assert_eq(n, -1);
	cr_assert_null(b);
	cr_assert_eq(in.err, 0);
	cr_assert_eq(jute_remaining(&in), 0);
	jute_out_free(&out);
}

Test(jute, long_is_big_endian)
{
	struct jute_out out;
	jute_out_init(&out, 0, 64);
	jute_put_long(&out, 1);
	cr_assert_eq(out.buf[7], 1);
	cr_assert_eq(out.buf[0], 0);
	jute_out_free(&out);
}

Test(jute, short_input_is_sticky_error)
{
	uint8_t bytes[3] = {0, 0, 0};
	struct jute_in in = jute_in_make(bytes, sizeof bytes);
	cr_assert_eq(jute_get_int(&in), 0);
	cr_assert_eq(in.err, -EBADMSG);
	cr_assert_eq(jute_get_bool(&in), false);
	cr_assert_eq(in.err, -EBADMSG);
}

Test(jute, forged_buffer_length_rejected)
{
	uint8_t bytes[8] = {0x7f, 0xff, 0xff, 0xff, 1, 2, 3, 4};
	struct jute_in in = jute_in_make(bytes, sizeof bytes);
	const uint8_t *p;
	int32_t n;
	jute_get_buffer(&in, &p, &n);
	cr_assert_eq(in.err, -EBADMSG);
	cr_assert_null(p);
}

Test(jute, negative_length_other_than_null_rejected)
{
	uint8_t bytes[4] = {0xff, 0xff, 0xff, 0xfe};
	struct jute_in in = jute_in_make(bytes, sizeof bytes);
	const uint8_t *p;
	int32_t n;
	jute_get_buffer(&in, &p, &n);
	cr_assert_eq(in.err, -EBADMSG);
}

Test(jute, forged_vector_count_rejected)
{
	uint8_t bytes[8] = {0, 0x10, 0, 0, 0, 0, 0, 1};
	struct jute_in in = jute_in_make(bytes, sizeof bytes);
	cr_assert_eq(jute_get_vector_len(&in, 4), 0);
	cr_assert_eq(in.err, -EBADMSG);
}

Test(jute, writer_respects_cap_max)
{
	struct jute_out out;
	jute_out_init(&out, 0, 10);
	jute_put_long(&out, 1);
	cr_assert_eq(out.err, 0);
	jute_put_int(&out, 1);
	cr_assert_eq(out.err, -EMSGSIZE);
	cr_assert_eq(out.len, 8);
	jute_out_free(&out);
}

Test(jute, stat_round_trip_is_68_bytes)
{
	struct zk_stat a, b;
	memset(&a, 0, sizeof a);
	memset(&b, 0xff, sizeof b);
	a = (struct zk_stat){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
	struct jute_out out;
	jute_out_init(&out, 0, 1024);
	proto_put_stat(&out, &a);
	cr_assert_eq(out.len, ZK_STAT_WIRE_BYTES);
	struct jute_in in = jute_in_make(out.buf, out.len);
	proto_get_stat(&in, &b);
	cr_assert_eq(a.czxid, b.czxid);
	cr_assert_eq(a.version, b.version);
	cr_assert_eq(a.ephemeral_owner, b.ephemeral_owner);
	cr_assert_eq(a.num_children, b.num_children);
	cr_assert_eq(a.pzxid, b.pzxid);
	jute_out_free(&out);
}

Test(jute, reply_frame_length_patched)
{
	struct jute_out out;
	jute_out_init(&out, 0, 1024);
	size_t at = proto_reply_begin(&out, 7, 42, ZNONODE);
	proto_frame_end(&out, at);
	cr_assert_eq(out.len, 4 + 16);
	cr_assert_eq(jute_be32_get(out.buf), 16);
	jute_out_free(&out);
}

Test(jute, stat_shows_clients_an_owner_only_on_ephemerals)
{
	static const struct {
		int64_t owner, seen;
	} cases[] = {
	    {0, 0},
	    {0x10000b864380001LL, 0x10000b864380001LL}, /* a session */
	    {INT64_MIN, 0},				/* a container */
	    {(int64_t)0xff0000000000012cULL, 0},	/* a TTL node, 300 ms */
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct zk_stat a = {.ephemeral_owner = cases[i].owner}, b;
		struct jute_out out;
		jute_out_init(&out, 0, 1024);
		proto_put_stat(&out, &a);
		struct jute_in in = jute_in_make(out.buf, out.len);
		proto_get_stat(&in, &b);
		cr_assert_eq(b.ephemeral_owner, cases[i].seen, "case %zu", i);
		jute_out_free(&out);
	}
}
