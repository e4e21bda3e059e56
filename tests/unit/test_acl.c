/* ACLs: digests, the check rules per scheme, ip masks, fixup, the wire. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "core/acl.h"
#include "core/proto.h"

#define ENTRY(perms, scheme, id) ((struct acl_entry){(perms), {(scheme), (id)}})

static struct acl_list *list_of(const struct acl_entry *entries, uint32_t count)
{
	struct acl_list *l = NULL;
	cr_assert_eq(acl_list_new(entries, count, &l), 0);
	return l;
}

static struct acl_list *one(int32_t perms, const char *scheme, const char *id)
{
	struct acl_entry e = ENTRY(perms, scheme, id);
	return list_of(&e, 1);
}

static bool ip_allows(const char *expr, const char *remote)
{
	struct acl_list *l = one(ZPERM_READ, "ip", expr);
	struct acl_auth a;
	acl_auth_init(&a);
	cr_assert_eq(acl_auth_add(&a, "ip", remote), 0);
	bool ok = acl_check(l, ZPERM_READ, &a, NULL);
	acl_auth_clear(&a);
	acl_list_free(l);
	return ok;
}

Test(acl, digest_of_super_test_matches_zookeeper_docs)
{
	char out[64];
	cr_assert_eq(acl_digest("super:test", out, sizeof out), 0);
	cr_assert_str_eq(out, "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
}

Test(acl, digest_user_is_text_before_first_colon)
{
	char out[64];
	cr_assert_eq(acl_digest("user:password", out, sizeof out), 0);
	cr_assert_str_eq(out, "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=");
	cr_assert_eq(acl_digest("nocolon", out, sizeof out), 0);
	cr_assert_eq(strncmp(out, "nocolon:", 8), 0);
	cr_assert_eq(strlen(out), 8 + ACL_DIGEST_HASH_CHARS);
}

Test(acl, digest_rejects_short_buffer)
{
	char out[34];
	cr_assert_eq(acl_digest("super:test", out, sizeof out), -ENOSPC);
	char exact[35];
	cr_assert_eq(acl_digest("super:test", exact, sizeof exact), 0);
}

Test(acl, empty_or_null_acl_allows_everything)
{
	struct acl_list empty = {0, NULL};
	cr_assert(acl_check(NULL, ZPERM_ADMIN, NULL, NULL));
	cr_assert(acl_check(&empty, ZPERM_ALL, NULL, NULL));
}

Test(acl, world_anyone_allows_only_its_perms)
{
	cr_assert(acl_check(&acl_open_unsafe, ZPERM_DELETE, NULL, NULL));
	cr_assert(acl_check(&acl_read_unsafe, ZPERM_READ, NULL, NULL));
	cr_assert_not(acl_check(&acl_read_unsafe, ZPERM_WRITE, NULL, NULL));
	struct acl_list *other = one(ZPERM_ALL, "world", "someone");
	cr_assert_not(acl_check(other, ZPERM_READ, NULL, NULL));
	acl_list_free(other);
}

Test(acl, digest_entry_matches_exact_id_only)
{
	struct acl_list *l =
	    one(ZPERM_READ | ZPERM_WRITE, "digest", "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=");
	struct acl_auth a;
	acl_auth_init(&a);
	cr_assert_not(acl_check(l, ZPERM_READ, &a, NULL));
	cr_assert_eq(acl_auth_add_digest(&a, "user:wrong", 10, NULL), 0);
	cr_assert_not(acl_check(l, ZPERM_READ, &a, NULL));
	cr_assert_eq(acl_auth_add_digest(&a, "user:password", 13, NULL), 0);
	cr_assert(acl_check(l, ZPERM_WRITE, &a, NULL));
	cr_assert_not(acl_check(l, ZPERM_ADMIN, &a, NULL));
	acl_auth_clear(&a);
	acl_list_free(l);
}

Test(acl, super_digest_auth_allows_everything)
{
	struct acl_list *l = one(ZPERM_READ, "digest", "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=");
	const char *super = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=";
	struct acl_auth a;
	acl_auth_init(&a);
	cr_assert_eq(acl_auth_add_digest(&a, "super:test", 10, super), 0);
	cr_assert_eq(a.count, 2);
	cr_assert_str_eq(a.ids[0].scheme, "super");
	cr_assert(acl_check(l, ZPERM_ADMIN, &a, NULL));
	acl_auth_clear(&a);

	/* Authenticated before superDigest was known: the id still counts. */
	cr_assert_eq(acl_auth_add(&a, "digest", super), 0);
	cr_assert_not(acl_check(l, ZPERM_ADMIN, &a, NULL));
	cr_assert_not(acl_check(l, ZPERM_ADMIN, &a, ""));
	cr_assert(acl_check(l, ZPERM_ADMIN, &a, super));
	acl_auth_clear(&a);
	acl_list_free(l);
}

Test(acl, auth_and_unknown_scheme_entries_never_match)
{
	struct acl_auth a;
	acl_auth_init(&a);
	cr_assert_eq(acl_auth_add(&a, "digest", "u:h"), 0);
	cr_assert_not(acl_check(&acl_creator_all, ZPERM_READ, &a, NULL));
	struct acl_list *l = one(ZPERM_ALL, "sasl", "u:h");
	cr_assert_eq(acl_auth_add(&a, "sasl", "u:h"), 0);
	cr_assert_not(acl_check(l, ZPERM_READ, &a, NULL));
	acl_auth_clear(&a);
	acl_list_free(l);
}

Test(acl, ip_v4_exact_and_masks)
{
	cr_assert(ip_allows("127.0.0.1", "127.0.0.1"));
	cr_assert_not(ip_allows("127.0.0.1", "127.0.0.2"));
	cr_assert(ip_allows("10.1.2.0/24", "10.1.2.200"));
	cr_assert_not(ip_allows("10.1.2.0/24", "10.1.3.1"));
	cr_assert(ip_allows("10.1.2.3/20", "10.1.15.9"));
	cr_assert_not(ip_allows("10.1.2.3/20", "10.1.16.9"));
	cr_assert(ip_allows("1.2.3.4/0", "200.1.1.1"));
	cr_assert(ip_allows("192.168.0.0/17", "192.168.127.255"));
	cr_assert_not(ip_allows("192.168.0.0/17", "192.168.128.0"));
}

Test(acl, ip_bad_expressions_match_nothing)
{
	cr_assert_not(ip_allows("10.0.0.0/33", "10.0.0.1"));
	cr_assert_not(ip_allows("10.0.0.0/-1", "10.0.0.1"));
	cr_assert_not(ip_allows("10.0.0.0/", "10.0.0.1"));
	cr_assert_not(ip_allows("10.0.0.256", "10.0.0.1"));
	cr_assert_not(ip_allows("10.0.0", "10.0.0.1"));
	cr_assert_not(ip_allows("10.0.0.1.", "10.0.0.1"));
	cr_assert_not(ip_allows("localhost", "127.0.0.1"));
	/* Integer.parseInt takes a sign and leading zeros. */
	cr_assert(ip_allows("010.0.0.+1", "10.0.0.1"));
}

Test(acl, ip_v6_forms_and_masks)
{
	cr_assert(ip_allows("::1", "0:0:0:0:0:0:0:1"));
	cr_assert(ip_allows("2001:db8::8a2e:370:7334", "2001:db8:0:0:0:8a2e:370:7334"));
	cr_assert(ip_allows("2001:db8::/32", "2001:db8:ffff:1::9"));
	cr_assert_not(ip_allows("2001:db8::/32", "2001:db9::1"));
	cr_assert(ip_allows("fe80::/10", "febf::1"));
	cr_assert_not(ip_allows("fe80::/10", "fec0::1"));
	cr_assert(ip_allows("1::", "1:0:0:0:0:0:0:0"));
	cr_assert(ip_allows("::/0", "abcd::1"));
	cr_assert_not(ip_allows("::/129", "::1"));
	cr_assert_not(ip_allows("1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8"));
	cr_assert_not(ip_allows("1::2::3", "1::3"));
	cr_assert_not(ip_allows("1:2:3:4::5:6:7:8", "1:2:3:4:5:6:7:8"));
	cr_assert_not(ip_allows("12345::1", "::1"));
	cr_assert_not(ip_allows("::ffff:1.2.3.4", "1.2.3.4"));
	cr_assert_not(ip_allows("::1%1", "::1"));
}

Test(acl, ip_v4_and_v6_never_match_each_other)
{
	cr_assert_not(ip_allows("0.0.0.0/0", "::1"));
	cr_assert_not(ip_allows("::/0", "127.0.0.1"));
}

Test(acl, ip_id_format_is_javas)
{
	char out[ACL_IP_ID_MAX];
	struct sockaddr_in v4 = {.sin_family = AF_INET};
	inet_pton(AF_INET, "192.0.2.7", &v4.sin_addr);
	cr_assert_eq(acl_ip_id_format((struct sockaddr *)&v4, out, sizeof out), 0);
	cr_assert_str_eq(out, "192.0.2.7");

	struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
	inet_pton(AF_INET6, "::ffff:10.0.0.1", &v6.sin6_addr);
	cr_assert_eq(acl_ip_id_format((struct sockaddr *)&v6, out, sizeof out), 0);
	cr_assert_str_eq(out, "10.0.0.1");
	inet_pton(AF_INET6, "2001:db8::1", &v6.sin6_addr);
	cr_assert_eq(acl_ip_id_format((struct sockaddr *)&v6, out, sizeof out), 0);
	cr_assert_str_eq(out, "2001:db8:0:0:0:0:0:1");
	cr_assert(ip_allows("2001:db8::/64", out));
	v6.sin6_scope_id = 3;
	cr_assert_eq(acl_ip_id_format((struct sockaddr *)&v6, out, sizeof out), 0);
	cr_assert_str_eq(out, "2001:db8:0:0:0:0:0:1%3");
	cr_assert_eq(acl_ip_id_format((struct sockaddr *)&v6, out, 10), -ENOSPC);
}

Test(acl, auth_ids_are_distinct_and_bounded)
{
	struct acl_auth a;
	acl_auth_init(&a);
	cr_assert_eq(acl_auth_add(&a, "ip", "127.0.0.1"), 0);
	cr_assert_eq(acl_auth_add(&a, "ip", "127.0.0.1"), 0);
	cr_assert_eq(a.count, 1);
	char id[16];
	for (int i = 1; i < ACL_AUTH_IDS_MAX; i++) {
		snprintf(id, sizeof id, "u%d:h", i);
		cr_assert_eq(acl_auth_add(&a, "digest", id), 0);
	}
	cr_assert_eq(acl_auth_add(&a, "digest", "one:more"), -ENOSPC);
	cr_assert_eq(acl_auth_add_digest(&a, "a\0b", 3, NULL), -EINVAL);
	acl_auth_clear(&a);
	cr_assert_eq(a.count, 0);
}

static int fixup_one(const char *scheme, const char *id, const struct acl_auth *a)
{
	struct acl_list *req = one(ZPERM_ALL, scheme, id), *out = NULL;
	int rc = acl_fixup(req, a, &out);
	acl_list_free(req);
	acl_list_free(out);
	return rc;
}

Test(acl, fixup_validates_schemes_and_ids)
{
	cr_assert_eq(fixup_one("world", "anyone", NULL), 0);
	cr_assert_eq(fixup_one("world", "everyone", NULL), -EINVAL);
	cr_assert_eq(fixup_one("digest", "user:hash", NULL), 0);
	cr_assert_eq(fixup_one("digest", ":hash", NULL), 0);
	cr_assert_eq(fixup_one("digest", "user:hash:", NULL), 0);
	cr_assert_eq(fixup_one("digest", "user:", NULL), -EINVAL);
	cr_assert_eq(fixup_one("digest", "user", NULL), -EINVAL);
	cr_assert_eq(fixup_one("digest", "a:b:c", NULL), -EINVAL);
	cr_assert_eq(fixup_one("ip", "10.0.0.0/8", NULL), 0);
	cr_assert_eq(fixup_one("ip", "fe80::/10", NULL), 0);
	cr_assert_eq(fixup_one("ip", "10.0.0.0/40", NULL), -EINVAL);
	cr_assert_eq(fixup_one("ip", "example.com", NULL), -EINVAL);
	cr_assert_eq(fixup_one("super", "", NULL), -EINVAL);
	cr_assert_eq(fixup_one("sasl", "user", NULL), -EINVAL);
	cr_assert_eq(fixup_one("", "", NULL), -EINVAL);
}

Test(acl, fixup_rejects_empty_acl)
{
	struct acl_list empty = {0, NULL};
	struct acl_list *out = NULL;
	cr_assert_eq(acl_fixup(&empty, NULL, &out), -EINVAL);
	cr_assert_eq(acl_fixup(NULL, NULL, &out), -EINVAL);
	cr_assert_null(out);
}

Test(acl, fixup_auth_expands_to_digest_ids_only)
{
	struct acl_auth a;
	acl_auth_init(&a);
	cr_assert_eq(acl_auth_add(&a, "ip", "127.0.0.1"), 0);
	/* Only ip (not an authenticated scheme): nothing to expand to. */
	cr_assert_eq(fixup_one("auth", "", &a), -EINVAL);
	cr_assert_eq(fixup_one("auth", "", NULL), -EINVAL);

	cr_assert_eq(acl_auth_add(&a, "super", ""), 0);
	cr_assert_eq(acl_auth_add(&a, "digest", "alice:A"), 0);
	cr_assert_eq(acl_auth_add(&a, "digest", "bob:B"), 0);
	struct acl_entry req_e[] = {ENTRY(ZPERM_READ, "world", "anyone"),
				    ENTRY(ZPERM_ALL, "auth", "ignored")};
	struct acl_list *req = list_of(req_e, 2), *out = NULL;
	cr_assert_eq(acl_fixup(req, &a, &out), 0);
	struct acl_entry want_e[] = {ENTRY(ZPERM_READ, "world", "anyone"),
				     ENTRY(ZPERM_ALL, "digest", "alice:A"),
				     ENTRY(ZPERM_ALL, "digest", "bob:B")};
	struct acl_list *want = list_of(want_e, 3);
	cr_assert(acl_list_equal(out, want));
	cr_assert(acl_check(out, ZPERM_DELETE, &a, NULL));
	acl_list_free(want);
	acl_list_free(out);
	acl_list_free(req);
	acl_auth_clear(&a);
}

Test(acl, fixup_drops_duplicates_keeping_first_order)
{
	struct acl_entry req_e[] = {
	    ENTRY(ZPERM_READ, "ip", "10.0.0.1"), ENTRY(ZPERM_ALL, "world", "anyone"),
	    ENTRY(ZPERM_READ, "ip", "10.0.0.1"), ENTRY(ZPERM_WRITE, "ip", "10.0.0.1"),
	    ENTRY(ZPERM_ALL, "world", "anyone"),
	};
	struct acl_list *req = list_of(req_e, 5), *out = NULL;
	cr_assert_eq(acl_fixup(req, NULL, &out), 0);
	struct acl_entry want_e[] = {ENTRY(ZPERM_READ, "ip", "10.0.0.1"),
				     ENTRY(ZPERM_ALL, "world", "anyone"),
				     ENTRY(ZPERM_WRITE, "ip", "10.0.0.1")};
	struct acl_list *want = list_of(want_e, 3);
	cr_assert(acl_list_equal(out, want));
	acl_list_free(want);
	acl_list_free(out);
	acl_list_free(req);
}

Test(acl, fixup_fails_on_one_bad_entry_among_good)
{
	struct acl_entry req_e[] = {ENTRY(ZPERM_ALL, "world", "anyone"),
				    ENTRY(ZPERM_ALL, "digest", "nocolon")};
	struct acl_list *req = list_of(req_e, 2), *out = NULL;
	cr_assert_eq(acl_fixup(req, NULL, &out), -EINVAL);
	cr_assert_null(out);
	acl_list_free(req);
}

Test(acl, equal_is_ordered_and_hash_follows_equality)
{
	struct acl_entry ab[] = {ENTRY(1, "ip", "1.2.3.4"), ENTRY(2, "digest", "u:h")};
	struct acl_entry ba[] = {ENTRY(2, "digest", "u:h"), ENTRY(1, "ip", "1.2.3.4")};
	struct acl_list *l1 = list_of(ab, 2), *l2 = list_of(ab, 2), *l3 = list_of(ba, 2);
	cr_assert(acl_list_equal(l1, l2));
	cr_assert_eq(acl_list_hash(l1), acl_list_hash(l2));
	cr_assert_not(acl_list_equal(l1, l3));
	cr_assert_neq(acl_list_hash(l1), acl_list_hash(l3));
	struct acl_list *open = one(ZPERM_ALL, "world", "anyone");
	cr_assert(acl_list_equal(open, &acl_open_unsafe));
	cr_assert_eq(acl_list_hash(open), acl_list_hash(&acl_open_unsafe));
	cr_assert_not(acl_list_equal(open, &acl_read_unsafe));
	/* Field boundaries count: "ab"+"c" is not "a"+"bc". */
	struct acl_list *x = one(1, "ab", "c"), *y = one(1, "a", "bc");
	cr_assert_neq(acl_list_hash(x), acl_list_hash(y));
	struct acl_list empty = {0, NULL};
	cr_assert(acl_list_equal(NULL, &empty));
	acl_list_free(x);
	acl_list_free(y);
	acl_list_free(open);
	acl_list_free(l1);
	acl_list_free(l2);
	acl_list_free(l3);
}

Test(acl, decode_encode_round_trip)
{
	struct acl_entry e[] = {ENTRY(ZPERM_READ, "world", "anyone"),
				ENTRY(ZPERM_ALL, "digest", "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY="),
				ENTRY(ZPERM_CREATE | ZPERM_DELETE, "ip", "10.0.0.0/8")};
	struct acl_list *l = list_of(e, 3), *back = NULL;
	struct jute_out out;
	jute_out_init(&out, 0, 4096);
	acl_list_encode(&out, l);
	jute_put_int(&out, 0x5a5a5a5a);
	cr_assert_eq(out.err, 0);
	struct jute_in in = jute_in_make(out.buf, out.len);
	cr_assert_eq(acl_list_decode(&in, &back), 0);
	cr_assert(acl_list_equal(l, back));
	cr_assert_str_eq(back->entries[1].id.id, "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=");
	cr_assert_eq(jute_get_int(&in), 0x5a5a5a5a);
	cr_assert_eq(jute_remaining(&in), 0);
	acl_list_free(back);
	acl_list_free(l);
	jute_out_free(&out);
}

Test(acl, wire_bytes_are_zookeepers)
{
	struct jute_out out;
	jute_out_init(&out, 0, 256);
	acl_list_encode(&out, &acl_read_unsafe);
	static const uint8_t want[] = {0,   0,	 0,   1, 0, 0, 0, 1,   0,   0,	 0,   5,   'w', 'o',
				       'r', 'l', 'd', 0, 0, 0, 6, 'a', 'n', 'y', 'o', 'n', 'e'};
	cr_assert_eq(out.len, sizeof want);
	cr_assert(memcmp(out.buf, want, sizeof want) == 0);
	jute_out_reset(&out);
	acl_list_encode(&out, NULL);
	cr_assert_eq(out.len, 4);
	cr_assert_eq(jute_be32_get(out.buf), 0);
	jute_out_free(&out);
}

Test(acl, decode_rejects_forged_vector_length)
{
	/* Claims 2^31-1 records but carries one. */
	uint8_t bytes[] = {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
	struct jute_in in = jute_in_make(bytes, sizeof bytes);
	struct acl_list *l = NULL;
	cr_assert_eq(acl_list_decode(&in, &l), -EBADMSG);
	cr_assert_eq(in.err, -EBADMSG);
	cr_assert_null(l);

	uint8_t neg[] = {0xff, 0xff, 0xff, 0xfe};
	in = jute_in_make(neg, sizeof neg);
	cr_assert_eq(acl_list_decode(&in, &l), -EBADMSG);
}

Test(acl, decode_rejects_truncated_record)
{
	/* Two records claimed, 24 bytes present, second string length lies. */
	uint8_t bytes[] = {0, 0,    0,	 2, 0, 0, 0, 1, 0, 0, 0, 1, 'a', 0, 0,
			   0, 0x10, 'b', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	 0, 0};
	struct jute_in in = jute_in_make(bytes, sizeof bytes);
	struct acl_list *l = NULL;
	cr_assert_eq(acl_list_decode(&in, &l), -EBADMSG);
	cr_assert_null(l);
}

Test(acl, decode_null_vector_and_strings)
{
	uint8_t null_vec[] = {0xff, 0xff, 0xff, 0xff};
	struct jute_in in = jute_in_make(null_vec, sizeof null_vec);
	struct acl_list *l = NULL;
	cr_assert_eq(acl_list_decode(&in, &l), 0);
	cr_assert_eq(l->count, 0);
	acl_list_free(l);

	uint8_t null_strs[] = {0,    0,	   0,	 1,    0,    0,	   0,	 31,
			       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	in = jute_in_make(null_strs, sizeof null_strs);
	cr_assert_eq(acl_list_decode(&in, &l), 0);
	cr_assert_str_eq(l->entries[0].id.scheme, "");
	struct acl_list *out = NULL;
	cr_assert_eq(acl_fixup(l, NULL, &out), -EINVAL);
	acl_list_free(l);
}

Test(acl, decode_rejects_nul_inside_id)
{
	uint8_t bytes[] = {0,	0,   0,	  1,   0, 0, 0, 31, 0,	 0,   0,   6, 'd', 'i',
			   'g', 'e', 's', 't', 0, 0, 0, 5,  'u', ':', 'h', 0, 'x'};
	struct jute_in in = jute_in_make(bytes, sizeof bytes);
	struct acl_list *l = NULL;
	cr_assert_eq(acl_list_decode(&in, &l), -EINVAL);
	cr_assert_null(l);
}
