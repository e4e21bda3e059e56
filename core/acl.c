/* ZooKeeper ACL lists, session auth ids and the check/fixup rules; see
 * acl.h. Parsing follows Java's String.split and Integer.parseInt where
 * ZooKeeper relies on them, so ids valid there are valid here. */
#include "core/acl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/log.h"
#include "core/proto.h"

static const struct acl_entry open_unsafe_entry = {ZPERM_ALL, {ACL_SCHEME_WORLD, ACL_ID_ANYONE}};
static const struct acl_entry read_unsafe_entry = {ZPERM_READ, {ACL_SCHEME_WORLD, ACL_ID_ANYONE}};
static const struct acl_entry creator_all_entry = {ZPERM_ALL, {ACL_SCHEME_AUTH, ""}};

const struct acl_list acl_open_unsafe = {1, &open_unsafe_entry};
const struct acl_list acl_read_unsafe = {1, &read_unsafe_entry};
const struct acl_list acl_creator_all = {1, &creator_all_entry};

/* ---- lists ---- */

/* An entry whose strings are counted, not terminated: how both C entries
 * and wire records reach the list builder. */
struct entry_src {
	int32_t perms;
	const char *scheme;
	size_t scheme_len;
	const char *id;
	size_t id_len;
};

struct list_block {
	struct acl_list list;
	struct acl_entry entries[];
};

/* Allocates a list of count entries with strings_bytes of string space. */
static struct list_block *block_alloc(uint32_t count, size_t strings_bytes, char **strings)
{
	size_t entries_bytes, total;
	if (__builtin_mul_overflow((size_t)count, sizeof(struct acl_entry), &entries_bytes) ||
	    __builtin_add_overflow(sizeof(struct list_block) + entries_bytes, strings_bytes,
				   &total))
		return NULL;
	struct list_block *b = malloc(total);
	if (!b)
		return NULL;
	b->list.count = count;
	b->list.entries = b->entries;
	*strings = (char *)(b->entries + count);
	return b;
}

static const char *copy_str(char **dst, const char *s, size_t len)
{
	char *p = *dst;
	memcpy(p, s, len);
	p[len] = '\0';
	*dst = p + len + 1;
	return p;
}

static void block_set(struct list_block *b, uint32_t i, const struct entry_src *e, char **strings)
{
	b->entries[i].perms = e->perms;
	b->entries[i].id.scheme = copy_str(strings, e->scheme, e->scheme_len);
	b->entries[i].id.id = copy_str(strings, e->id, e->id_len);
}

static struct entry_src src_of(const struct acl_entry *e)
{
	return (struct entry_src){e->perms, e->id.scheme, strlen(e->id.scheme), e->id.id,
				  strlen(e->id.id)};
}

int acl_list_new(const struct acl_entry *entries, uint32_t count, struct acl_list **out)
{
	size_t strings_bytes = 0;
	for (uint32_t i = 0; i < count; i++) {
		if (!entries[i].id.scheme || !entries[i].id.id)
			return -EINVAL;
		strings_bytes += strlen(entries[i].id.scheme) + strlen(entries[i].id.id) + 2;
	}
	char *strings;
	struct list_block *b = block_alloc(count, strings_bytes, &strings);
	if (!b)
		return -ENOMEM;
	for (uint32_t i = 0; i < count; i++) {
		struct entry_src e = src_of(&entries[i]);
		block_set(b, i, &e, &strings);
	}
	*out = &b->list;
	return 0;
}

void acl_list_free(struct acl_list *list)
{
	/* The list is the first member of its block, so this frees it all. */
	free(list);
}

static uint32_t list_count(const struct acl_list *list)
{
	return list ? list->count : 0;
}

static bool entry_equal(const struct acl_entry *a, const struct acl_entry *b)
{
	return a->perms == b->perms && strcmp(a->id.scheme, b->id.scheme) == 0 &&
	       strcmp(a->id.id, b->id.id) == 0;
}

bool acl_list_equal(const struct acl_list *a, const struct acl_list *b)
{
	uint32_t n = list_count(a);
	if (n != list_count(b))
		return false;
	for (uint32_t i = 0; i < n; i++) {
		if (!entry_equal(&a->entries[i], &b->entries[i]))
			return false;
	}
	return true;
}

uint64_t acl_list_hash(const struct acl_list *list)
{
	/* Chaining one hash per field keeps field boundaries unambiguous. */
	uint64_t h = list_count(list);
	for (uint32_t i = 0; i < list_count(list); i++) {
		const struct acl_entry *e = &list->entries[i];
		uint8_t perms[4];
		jute_be32_put(perms, (uint32_t)e->perms);
		h = XXH3_64bits_withSeed(perms, sizeof perms, h);
		h = XXH3_64bits_withSeed(e->id.scheme, strlen(e->id.scheme), h);
		h = XXH3_64bits_withSeed(e->id.id, strlen(e->id.id), h);
	}
	return h;
}

/* ---- wire ---- */

static void get_counted(struct jute_in *in, const char **s, size_t *len)
{
	int32_t n;
	jute_get_string(in, s, &n);
	if (n < 0) {
		*s = "";
		*len = 0;
	} else {
		*len = (size_t)n;
	}
}

static int read_record(struct jute_in *in, struct entry_src *e)
{
	e->perms = jute_get_int(in);
	get_counted(in, &e->scheme, &e->scheme_len);
	get_counted(in, &e->id, &e->id_len);
	if (in->err)
		return -EBADMSG;
	if (memchr(e->scheme, '\0', e->scheme_len) || memchr(e->id, '\0', e->id_len))
		return -EINVAL;
	return 0;
}

/* Two passes over the input: the first sizes the list and validates every
 * record, so the second, on a copy of the same bytes, cannot fail. */
int acl_list_decode(struct jute_in *in, struct acl_list **out)
{
	int32_t n = jute_get_vector_len(in, ACL_WIRE_BYTES_MIN);
	if (in->err)
		return -EBADMSG;
	struct jute_in probe = *in;
	size_t strings_bytes = 0;
	for (int32_t i = 0; i < n; i++) {
		struct entry_src e;
		int rc = read_record(&probe, &e);
		if (rc == -EBADMSG)
			in->err = -EBADMSG;
		if (rc)
			return rc;
		strings_bytes += e.scheme_len + e.id_len + 2;
	}
	char *strings;
	struct list_block *b = block_alloc((uint32_t)n, strings_bytes, &strings);
	if (!b)
		return -ENOMEM;
	for (int32_t i = 0; i < n; i++) {
		struct entry_src e;
		int rc = read_record(in, &e);
		RK_ASSERT(rc == 0);
		block_set(b, (uint32_t)i, &e, &strings);
	}
	*out = &b->list;
	return 0;
}

void acl_list_encode(struct jute_out *out, const struct acl_list *list)
{
	uint32_t n = list_count(list);
	jute_put_int(out, (int32_t)n);
	for (uint32_t i = 0; i < n; i++) {
		jute_put_int(out, list->entries[i].perms);
		jute_put_cstr(out, list->entries[i].id.scheme);
		jute_put_cstr(out, list->entries[i].id.id);
	}
}

/* ---- session auth ---- */

void acl_auth_init(struct acl_auth *auth)
{
	auth->count = 0;
}

void acl_auth_clear(struct acl_auth *auth)
{
	/* Each id's scheme starts the allocation holding both strings. */
	for (uint32_t i = 0; i < auth->count; i++)
		free((char *)auth->ids[i].scheme);
	auth->count = 0;
}

static bool auth_has(const struct acl_auth *auth, const char *scheme, const char *id)
{
	for (uint32_t i = 0; i < auth->count; i++) {
		if (strcmp(auth->ids[i].scheme, scheme) == 0 && strcmp(auth->ids[i].id, id) == 0)
			return true;
	}
	return false;
}

int acl_auth_add(struct acl_auth *auth, const char *scheme, const char *id)
{
	if (auth_has(auth, scheme, id))
		return 0;
	if (auth->count == ACL_AUTH_IDS_MAX)
		return -ENOSPC;
	size_t scheme_len = strlen(scheme), id_len = strlen(id);
	char *p = malloc(scheme_len + id_len + 2);
	if (!p)
		return -ENOMEM;
	struct acl_id *slot = &auth->ids[auth->count++];
	slot->scheme = copy_str(&p, scheme, scheme_len);
	slot->id = copy_str(&p, id, id_len);
	return 0;
}

static int digest_bytes(const char *data, size_t len, char *out, size_t outlen)
{
	const char *colon = memchr(data, ':', len);
	size_t user_len = colon ? (size_t)(colon - data) : len;
	if (outlen < user_len + 1 + ACL_DIGEST_HASH_CHARS + 1)
		return -ENOSPC;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	if (!EVP_Digest(data, len, md, &md_len, EVP_sha1(), NULL))
		return -EIO;
	memcpy(out, data, user_len);
	out[user_len] = ':';
	/* EVP_EncodeBlock writes the 28 characters and a NUL. */
	if (EVP_EncodeBlock((unsigned char *)out + user_len + 1, md, (int)md_len) !=
	    ACL_DIGEST_HASH_CHARS)
		return -EIO;
	return 0;
}

int acl_digest(const char *user_colon_password, char *out, size_t outlen)
{
	return digest_bytes(user_colon_password, strlen(user_colon_password), out, outlen);
}

int acl_auth_add_digest(struct acl_auth *auth, const char *data, size_t len,
			const char *super_digest)
{
	RK_ASSERT(data || len == 0);
	if (len == 0)
		data = "";
	if (memchr(data, '\0', len))
		return -EINVAL;
	size_t idlen = len + ACL_DIGEST_HASH_CHARS + 2;
	char *id = malloc(idlen);
	if (!id)
		return -ENOMEM;
	int rc = digest_bytes(data, len, id, idlen);
	if (rc == 0 && super_digest && strcmp(id, super_digest) == 0)
		rc = acl_auth_add(auth, ACL_SCHEME_SUPER, "");
	if (rc == 0)
		rc = acl_auth_add(auth, ACL_SCHEME_DIGEST, id);
	free(id);
	return rc;
}

int acl_ip_id_format(const struct sockaddr *sa, char *out, size_t outlen)
{
	const void *v4 = NULL;
	if (sa->sa_family == AF_INET)
		v4 = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family != AF_INET6)
		return -EAFNOSUPPORT;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	if (!v4 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		v4 = &s6->sin6_addr.s6_addr[12];
	if (v4)
		return inet_ntop(AF_INET, v4, out, (socklen_t)outlen) ? 0 : -ENOSPC;
	/* Java's Inet6Address.getHostAddress: no "::" compression. */
	const uint8_t *b = s6->sin6_addr.s6_addr;
	int n = snprintf(out, outlen, "%x:%x:%x:%x:%x:%x:%x:%x", b[0] << 8 | b[1], b[2] << 8 | b[3],
			 b[4] << 8 | b[5], b[6] << 8 | b[7], b[8] << 8 | b[9], b[10] << 8 | b[11],
			 b[12] << 8 | b[13], b[14] << 8 | b[15]);
	if (n >= 0 && (size_t)n < outlen && s6->sin6_scope_id)
		n += snprintf(out + n, outlen - (size_t)n, "%%%u", (unsigned)s6->sin6_scope_id);
	return n >= 0 && (size_t)n < outlen ? 0 : -ENOSPC;
}

/* ---- ip ids ---- */

/* Integer.parseInt(s, radix): an optional sign, at least one digit, and a
 * value that fits in an int32. */
static bool java_parse_int(const char *s, size_t len, int radix, int32_t *out)
{
	size_t i = 0;
	bool neg = false;
	if (len > 0 && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == len)
		return false;
	int64_t v = 0;
	for (; i < len; i++) {
		int c = s[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'z')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'Z')
			d = c - 'A' + 10;
		else
			return false;
		if (d >= radix)
			return false;
		v = v * radix + d;
		if (v > (int64_t)INT32_MAX + 1)
			return false;
	}
	if (!neg && v > INT32_MAX)
		return false;
	*out = (int32_t)(neg ? -v : v);
	return true;
}

static bool parse_v4(const char *s, size_t len, uint8_t *out)
{
	size_t start = 0;
	for (int part = 0; part < 4; part++) {
		const char *dot = memchr(s + start, '.', len - start);
		size_t end = dot ? (size_t)(dot - s) : len;
		if ((part < 3) != (dot != NULL))
			return false;
		int32_t v;
		if (!java_parse_int(s + start, end - start, 10, &v) || v < 0 || v > 255)
			return false;
		out[part] = (uint8_t)v;
		start = end + 1;
	}
	return true;
}

/* Parses ':'-separated hex groups of s[0..len) into out, two bytes each.
 * Returns the number of groups, or -1 if one is malformed or there are more
 * than max. An empty s has one empty (malformed) group. */
static int parse_v6_groups(const char *s, size_t len, uint8_t *out, int max)
{
	int n = 0;
	size_t start = 0;
	for (;;) {
		const char *colon = memchr(s + start, ':', len - start);
		size_t end = colon ? (size_t)(colon - s) : len;
		int32_t v;
		if (n == max || end == start || end - start > 4 ||
		    !java_parse_int(s + start, end - start, 16, &v))
			return -1;
		out[2 * n] = (uint8_t)((uint32_t)v >> 8);
		out[2 * n + 1] = (uint8_t)v;
		n++;
		if (!colon)
			return n;
		start = end + 1;
	}
}

static const char *find_double_colon(const char *s, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (s[i] == ':' && s[i + 1] == ':')
			return s + i;
	}
	return NULL;
}

/* As ZooKeeper's parseV6addr: eight groups, or fewer around one "::". */
static bool parse_v6(const char *s, size_t len, uint8_t *out)
{
	memset(out, 0, 16);
	const char *dc = find_double_colon(s, len);
	if (!dc)
		return parse_v6_groups(s, len, out, 8) == 8;
	size_t head_len = (size_t)(dc - s), tail_off = head_len + 2;
	if (find_double_colon(s + tail_off, len - tail_off))
		return false;
	int head = 0, tail = 0;
	uint8_t tail_bytes[16];
	if (head_len > 0 && (head = parse_v6_groups(s, head_len, out, 7)) < 0)
		return false;
	if (tail_off < len &&
	    (tail = parse_v6_groups(s + tail_off, len - tail_off, tail_bytes, 7)) < 0)
		return false;
	if (head + tail >= 8)
		return false;
	memcpy(out + 16 - 2 * tail, tail_bytes, (size_t)(2 * tail));
	return true;
}

/* Returns the address length (4 or 16), or 0 if s is not an address.
 * A ':' anywhere makes it IPv6, else a '.' makes it IPv4. */
static int parse_ip(const char *s, size_t len, uint8_t out[16])
{
	if (memchr(s, ':', len))
		return parse_v6(s, len, out) ? 16 : 0;
	if (memchr(s, '.', len))
		return parse_v4(s, len, out) ? 4 : 0;
	return 0;
}

static void mask_bits(uint8_t *b, int len, int bits)
{
	for (int i = bits / 8; i < len; i++) {
		b[i] &= i == bits / 8 ? (uint8_t) ~((1u << (8 - bits % 8)) - 1) : 0;
	}
}

/* Parses "address[/bits]"; *bits defaults to the whole address. */
static int parse_ip_expr(const char *expr, uint8_t addr[16], int *bits)
{
	const char *slash = strchr(expr, '/');
	size_t addr_len = slash ? (size_t)(slash - expr) : strlen(expr);
	int len = parse_ip(expr, addr_len, addr);
	if (len == 0)
		return 0;
	*bits = len * 8;
	if (slash) {
		int32_t v;
		if (!java_parse_int(slash + 1, strlen(slash + 1), 10, &v) || v < 0 || v > len * 8)
			return 0;
		*bits = v;
	}
	return len;
}

static bool ip_valid(const char *expr)
{
	uint8_t addr[16];
	int bits;
	return parse_ip_expr(expr, addr, &bits) != 0;
}

static bool ip_matches(const char *remote, const char *expr)
{
	uint8_t want[16], got[16];
	int bits;
	int want_len = parse_ip_expr(expr, want, &bits);
	if (want_len == 0)
		return false;
	int got_len = parse_ip(remote, strlen(remote), got);
	if (got_len != want_len)
		return false;
	mask_bits(want, want_len, bits);
	mask_bits(got, got_len, bits);
	return memcmp(want, got, (size_t)want_len) == 0;
}

/* DigestAuthenticationProvider.isValid: id.split(":") has two fields. Java
 * drops trailing empty fields, so "u:h:" is valid and "u:" is not. */
static bool digest_valid(const char *id)
{
	size_t len = strlen(id);
	while (len > 0 && id[len - 1] == ':')
		len--;
	const char *colon = memchr(id, ':', len);
	return colon && !memchr(colon + 1, ':', len - (size_t)(colon + 1 - id));
}

/* ---- check ---- */

static bool is_world_anyone(const struct acl_id *id)
{
	return strcmp(id->scheme, ACL_SCHEME_WORLD) == 0 && strcmp(id->id, ACL_ID_ANYONE) == 0;
}

static bool is_super(const struct acl_auth *auth, const char *super_digest)
{
	for (uint32_t i = 0; i < auth->count; i++) {
		const struct acl_id *a = &auth->ids[i];
		if (strcmp(a->scheme, ACL_SCHEME_SUPER) == 0)
			return true;
		if (super_digest && *super_digest && strcmp(a->scheme, ACL_SCHEME_DIGEST) == 0 &&
		    strcmp(a->id, super_digest) == 0)
			return true;
	}
	return false;
}

static bool entry_matches(const struct acl_id *want, const struct acl_auth *auth)
{
	bool ip = strcmp(want->scheme, ACL_SCHEME_IP) == 0;
	if (!ip && strcmp(want->scheme, ACL_SCHEME_DIGEST) != 0)
		return false;
	for (uint32_t i = 0; i < auth->count; i++) {
		const struct acl_id *a = &auth->ids[i];
		if (strcmp(a->scheme, want->scheme) != 0)
			continue;
		if (ip ? ip_matches(a->id, want->id) : strcmp(a->id, want->id) == 0)
			return true;
	}
	return false;
}

bool acl_check(const struct acl_list *acl, int32_t perm, const struct acl_auth *auth,
	       const char *super_digest)
{
	static const struct acl_auth no_auth = {0};
	if (list_count(acl) == 0)
		return true;
	if (!auth)
		auth = &no_auth;
	if (is_super(auth, super_digest))
		return true;
	for (uint32_t i = 0; i < acl->count; i++) {
		const struct acl_entry *e = &acl->entries[i];
		if (!(e->perms & perm))
			continue;
		if (is_world_anyone(&e->id) || entry_matches(&e->id, auth))
			return true;
	}
	return false;
}

/* ---- fixup ---- */

static int cmp_entries(const struct acl_entry *a, const struct acl_entry *b)
{
	if (a->perms != b->perms)
		return a->perms < b->perms ? -1 : 1;
	int c = strcmp(a->id.scheme, b->id.scheme);
	return c ? c : strcmp(a->id.id, b->id.id);
}

static int cmp_index(const void *pa, const void *pb, void *base)
{
	const struct acl_entry *entries = base;
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
	int c = cmp_entries(&entries[a], &entries[b]);
	return c ? c : (a < b ? -1 : a > b);
}

/* Marks dup[i] for every entry equal to an earlier one. Sorting indices
 * keeps this O(n log n): a request may carry ~10^5 entries. */
static int mark_duplicates(const struct acl_list *req, bool *dup)
{
	uint32_t n = req->count;
	uint32_t *idx = malloc((size_t)n * sizeof *idx);
	if (!idx)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		idx[i] = i;
	qsort_r(idx, n, sizeof *idx, cmp_index, (void *)req->entries);
	for (uint32_t i = 0; i < n; i++)
		dup[idx[i]] =
		    i > 0 && cmp_entries(&req->entries[idx[i - 1]], &req->entries[idx[i]]) == 0;
	free(idx);
	return 0;
}

/* Appends the fixed-up form of one entry to out. Returns 0 or -EINVAL. */
static int fixup_entry(const struct acl_entry *e, const struct acl_auth *auth,
		       struct acl_entry *out, uint32_t *n)
{
	const char *scheme = e->id.scheme;
	if (is_world_anyone(&e->id)) {
		out[(*n)++] = *e;
		return 0;
	}
	if (strcmp(scheme, ACL_SCHEME_AUTH) == 0) {
		uint32_t before = *n;
		for (uint32_t i = 0; auth && i < auth->count; i++) {
			if (strcmp(auth->ids[i].scheme, ACL_SCHEME_DIGEST) == 0)
				out[(*n)++] = (struct acl_entry){e->perms, auth->ids[i]};
		}
		return *n > before ? 0 : -EINVAL;
	}
	bool ok = (strcmp(scheme, ACL_SCHEME_IP) == 0 && ip_valid(e->id.id)) ||
		  (strcmp(scheme, ACL_SCHEME_DIGEST) == 0 && digest_valid(e->id.id));
	if (!ok)
		return -EINVAL;
	out[(*n)++] = *e;
	return 0;
}

int acl_fixup(const struct acl_list *req, const struct acl_auth *auth, struct acl_list **out)
{
	uint32_t n_req = list_count(req);
	if (n_req == 0)
		return -EINVAL;
	/* An "auth" entry expands to at most every session id. */
	size_t cap = n_req;
	for (uint32_t i = 0; i < n_req; i++) {
		if (strcmp(req->entries[i].id.scheme, ACL_SCHEME_AUTH) == 0)
			cap += auth ? auth->count : 0;
	}
	struct acl_entry *fixed = malloc(cap * sizeof *fixed);
	bool *dup = calloc(n_req, sizeof *dup);
	int rc = -ENOMEM;
	if (!fixed || !dup)
		goto err;
	rc = mark_duplicates(req, dup);
	if (rc)
		goto err;
	uint32_t n = 0;
	for (uint32_t i = 0; i < n_req && rc == 0; i++) {
		if (!dup[i])
			rc = fixup_entry(&req->entries[i], auth, fixed, &n);
	}
	if (rc == 0)
		rc = acl_list_new(fixed, n, out);
err:
	free(fixed);
	free(dup);
	return rc;
}
