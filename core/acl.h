/* ZooKeeper ACLs: the immutable ACL lists znodes point to, the ids a session
 * has authenticated as, and the permission rules of ZooKeeper 3.9
 * (ZooKeeperServer.checkACL, PrepRequestProcessor.fixupACL and the "ip" and
 * "digest" authentication providers, the only ones ZooKeeper registers
 * unless configured otherwise).
 *
 * Ownership: an acl_list is one allocation (header, entries, then the
 * strings) that never changes after it is built. Many znodes share one list
 * through the caller's intern table, keyed by acl_list_hash() and compared
 * with acl_list_equal(); the caller frees it with acl_list_free() when the
 * last reference goes. The acl_* list constants below are static: never free
 * them. A NULL list means the same as an empty one everywhere.
 *
 * Errors: functions return 0 or -errno. -EINVAL from acl_fixup() is an ACL
 * ZooKeeper rejects and maps to ZINVALIDACL at the protocol edge; -EBADMSG
 * is a malformed record (ZMARSHALLINGERROR).
 *
 * vector<ACL> on the wire (jute, big-endian):
 *   offset  size  field
 *   0       4     int32 count (-1 = null, read as an empty list)
 *   then count records of:
 *   +0      4     int32 perms (enum zk_perm bits)
 *   +4      4     int32 scheme length, then that many scheme bytes
 *   +8+s    4     int32 id length, then that many id bytes
 */
#ifndef RK_ACL_H
#define RK_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/jute.h"

#define ACL_SCHEME_WORLD  "world"
#define ACL_SCHEME_AUTH	  "auth"
#define ACL_SCHEME_DIGEST "digest"
#define ACL_SCHEME_IP	  "ip"
#define ACL_SCHEME_SUPER  "super"
#define ACL_ID_ANYONE	  "anyone"

/* Smallest ACL record on the wire: perms and two empty strings. */
#define ACL_WIRE_BYTES_MIN 12

struct acl_id {
	const char *scheme;
	const char *id;
};

struct acl_entry {
	int32_t perms; /* enum zk_perm bits */
	struct acl_id id;
};

struct acl_list {
	uint32_t count;
	const struct acl_entry *entries; /* count entries, in wire order */
};

extern const struct acl_list acl_open_unsafe; /* world:anyone, ALL  */
extern const struct acl_list acl_read_unsafe; /* world:anyone, READ */
extern const struct acl_list acl_creator_all; /* auth:, ALL; only meaningful through acl_fixup */

/* Copies count entries (and their strings) into one new list. Returns 0,
 * -EINVAL if a string is NULL, or -ENOMEM. */
int acl_list_new(const struct acl_entry *entries, uint32_t count, struct acl_list **out);
void acl_list_free(struct acl_list *list);
/* Order matters, as for ZooKeeper's List<ACL>: [a, b] != [b, a]. */
bool acl_list_equal(const struct acl_list *a, const struct acl_list *b);
/* XXH3-based; equal lists hash equal. */
uint64_t acl_list_hash(const struct acl_list *list);

/* Reads a vector<ACL>. The count is bounded by what is left of the input.
 * A null scheme or id reads as "" (which acl_fixup rejects). Returns 0,
 * -EBADMSG (short or malformed input; in->err is set), -EINVAL (a string
 * holds a NUL byte, which this C-string representation cannot keep) or
 * -ENOMEM. */
int acl_list_decode(struct jute_in *in, struct acl_list **out);
/* Writes a vector<ACL>; a NULL list as an empty vector. Errors are sticky
 * in out->err. */
void acl_list_encode(struct jute_out *out, const struct acl_list *list);

/* The ids a session authenticated as: ip:<address> at connect, digest:<id>
 * per auth packet, super: when a digest matched the superDigest. ZooKeeper
 * has no limit; we keep at most ACL_AUTH_IDS_MAX distinct ids. Strings are
 * owned by the struct: release them with acl_auth_clear(). */
#define ACL_AUTH_IDS_MAX 8

struct acl_auth {
	uint32_t count;
	struct acl_id ids[ACL_AUTH_IDS_MAX];
};

void acl_auth_init(struct acl_auth *auth);
void acl_auth_clear(struct acl_auth *auth);
/* Adds scheme:id unless already present (ZooKeeper keeps ids distinct).
 * Returns 0, -ENOSPC when full, or -ENOMEM. */
int acl_auth_add(struct acl_auth *auth, const char *scheme, const char *id);
/* A "digest" auth packet: data is "user:password" (not NUL-terminated).
 * Adds digest:<acl_digest(data)>, preceded by super: when that digest
 * equals super_digest (may be NULL). Returns 0, -EINVAL if data holds a NUL
 * byte, -ENOSPC, -ENOMEM or -EIO (libcrypto failed). */
int acl_auth_add_digest(struct acl_auth *auth, const char *data, size_t len,
			const char *super_digest);

/* Longest ip id acl_ip_id_format() writes, with its NUL: eight groups of
 * four hex digits, seven colons, '%' and a scope id. */
#define ACL_IP_ID_MAX 52
/* The ip id of a peer as Java reports it: dotted IPv4 (also for
 * IPv4-mapped IPv6 peers), or IPv6 as eight uncompressed lowercase hex
 * groups, with "%scope" for scoped addresses. Returns 0, -EAFNOSUPPORT or
 * -ENOSPC. */
int acl_ip_id_format(const struct sockaddr *sa, char *out, size_t outlen);

/* Characters of base64(sha1(...)). */
#define ACL_DIGEST_HASH_CHARS 28
/* "user:password" -> "user:" base64(sha1("user:password")), as
 * DigestAuthenticationProvider.generateDigest with its default SHA1. The
 * user is everything before the first ':' (the whole input if none).
 * Returns 0, -ENOSPC if out cannot hold the id and its NUL, or -EIO. */
int acl_digest(const char *user_colon_password, char *out, size_t outlen);

/* May a session with these ids do perm on a node with this ACL? As
 * checkACL: an empty or NULL ACL allows everything; a "super" id, or a
 * digest id equal to super_digest (NULL or "" when none is configured), allows
 * everything; otherwise some entry sharing a bit with perm must be
 * world:anyone, an ip entry matching one of the session's ip ids (with an
 * optional /bits mask, IPv4 or IPv6), or a digest entry equal to one of its
 * digest ids. Other schemes ("auth" among them) never match. */
bool acl_check(const struct acl_list *acl, int32_t perm, const struct acl_auth *auth,
	       const char *super_digest);

/* The ACL a create or setACL stores, as fixupACL: duplicates dropped (first
 * kept); world:anyone kept; each "auth" entry replaced by one entry per
 * authenticated id of the session (digest ids; ip and super are not
 * authenticated schemes), in session order; ip and digest entries kept when
 * well formed. Returns 0 with *out a new list, -EINVAL (ZINVALIDACL) for an
 * empty ACL, an unknown scheme, a malformed id, world with an id other than
 * "anyone", or an "auth" entry in a session with no digest id; or -ENOMEM. */
int acl_fixup(const struct acl_list *req, const struct acl_auth *auth, struct acl_list **out);

#endif
