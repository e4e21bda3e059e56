/* zoo.cfg and command-line parsing; see config.h. One table describes every
 * key: its zoo.cfg name, where it lives in struct config and what values it
 * takes, so parsing, defaults checking and printing cannot drift apart. */
#include "net/config.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* zoo.cfg files are small; anything bigger is not a config file. */
#define CONFIG_FILE_BYTES_MAX (1 << 20)

enum value_kind {
	KIND_INT32 = 0, /* decimal in [min, max] */
	KIND_INT64,	/* decimal in [min, max] */
	KIND_BOOL,	/* true|false, any case, as QuorumPeerConfig.parseBoolean */
	KIND_YES_NO,	/* yes|no, any case (forceSync) */
	KIND_STRING,	/* fits the field; non-empty unless allow_empty */
	KIND_PEER_TYPE, /* participant|observer, any case */
	KIND_LOG_LEVEL, /* debug|info|warn|error, any case */
	KIND_COUNT,
};

struct key_spec {
	const char *key; /* zoo.cfg key, or the flag's name when !in_file */
	enum value_kind kind;
	size_t offset;
	size_t size; /* strings: capacity of the field */
	int64_t min, max;
	bool in_file;	  /* accepted in zoo.cfg */
	bool raise_low;	  /* below min: warn and use min, as ZooKeeper does */
	bool allow_empty; /* strings */
	bool needs_colon; /* strings: a digest id, user:hash */
	bool secret;	  /* never printed */
	/* Offset of a bool set when the key is given, for checks that must
	 * tell a default from a choice; 0 = not tracked (offset 0 holds
	 * tick_time_ms, never such a flag). */
	size_t given_offset;
};

#define OFF(f)	offsetof(struct config, f)
#define SIZE(f) sizeof(((struct config *)0)->f)
#define INT_KEY(k, f, lo, hi)                                                                      \
	{                                                                                          \
		.key = k, .kind = KIND_INT32, .offset = OFF(f), .min = lo, .max = hi,              \
		.in_file = true                                                                    \
	}
/* Below lo ZooKeeper warns and uses lo (snapCount, snapRetainCount). */
#define INT_KEY_RAISED(k, f, lo)                                                                   \
	{                                                                                          \
		.key = k, .kind = KIND_INT32, .offset = OFF(f), .min = lo, .max = INT32_MAX,       \
		.in_file = true, .raise_low = true                                                 \
	}
#define STR_KEY(k, f)                                                                              \
	{                                                                                          \
		.key = k, .kind = KIND_STRING, .offset = OFF(f), .size = SIZE(f), .in_file = true  \
	}
#define KIND_KEY(k, kd, f)                                                                         \
	{                                                                                          \
		.key = k, .kind = kd, .offset = OFF(f), .in_file = true                            \
	}

/* The first CONF_HEAD_KEYS print in the order of ZooKeeper's "conf". */
#define CONF_HEAD_KEYS 7
static const struct key_spec keys[] = {
    {.key = "clientPort",
     .kind = KIND_INT32,
     .offset = OFF(client_port),
     .min = 0,
     .max = 65535,
     .in_file = true,
     .given_offset = OFF(client_port_given)},
    STR_KEY("dataDir", data_dir),
    STR_KEY("dataLogDir", data_log_dir),
    INT_KEY("tickTime", tick_time_ms, 1, INT32_MAX),
    INT_KEY("maxClientCnxns", max_client_cnxns, 0, INT32_MAX),
    INT_KEY("minSessionTimeout", min_session_timeout_ms, -1, INT32_MAX),
    INT_KEY("maxSessionTimeout", max_session_timeout_ms, -1, INT32_MAX),
    {.key = "clientPortAddress",
     .kind = KIND_STRING,
     .offset = OFF(client_port_address),
     .size = SIZE(client_port_address),
     .in_file = true,
     .given_offset = OFF(client_port_address_given)},
    {.key = "4lw.commands.whitelist",
     .kind = KIND_STRING,
     .offset = OFF(four_lw_whitelist),
     .size = SIZE(four_lw_whitelist),
     .in_file = true,
     .allow_empty = true},
    INT_KEY("jute.maxbuffer", jute_maxbuffer, 1, INT32_MAX),
    {.key = "DigestAuthenticationProvider.superDigest",
     .kind = KIND_STRING,
     .offset = OFF(super_digest),
     .size = SIZE(super_digest),
     .in_file = true,
     .allow_empty = true,
     .needs_colon = true,
     .secret = true},
    INT_KEY("globalOutstandingLimit", global_outstanding_limit, 1, INT32_MAX),
    INT_KEY("znode.container.checkIntervalMs", container_check_interval_ms, 1, INT32_MAX),
    INT_KEY("znode.container.maxPerMinute", container_max_per_minute, 1, INT32_MAX),
    INT_KEY_RAISED("snapCount", snap_count, 2),
    KIND_KEY("forceSync", KIND_YES_NO, force_sync),
    {.key = "preAllocSize",
     .kind = KIND_INT64,
     .offset = OFF(prealloc_size_kb),
     .min = 1,
     .max = INT64_MAX / 1024,
     .in_file = true},
    {.key = "snapSizeLimitInKb",
     .kind = KIND_INT64,
     .offset = OFF(snap_size_limit_kb),
     .min = 0,
     .max = INT64_MAX / 1024,
     .in_file = true},
    INT_KEY_RAISED("autopurge.snapRetainCount", autopurge_snap_retain_count, 3),
    INT_KEY("autopurge.purgeInterval", autopurge_purge_interval_hours, 0, INT32_MAX),
    KIND_KEY("admin.enableServer", KIND_BOOL, admin_enable_server),
    INT_KEY("admin.serverPort", admin_server_port, 1, 65535),
    STR_KEY("admin.serverAddress", admin_server_address),
    STR_KEY("metricsProvider.className", metrics_provider_class),
    INT_KEY("metricsProvider.httpPort", metrics_http_port, 1, 65535),
    STR_KEY("metricsProvider.httpHost", metrics_http_host),
    KIND_KEY("metricsProvider.exportJvmInfo", KIND_BOOL, metrics_export_jvm_info),
    INT_KEY("initLimit", init_limit_ticks, 1, INT32_MAX),
    INT_KEY("syncLimit", sync_limit_ticks, 1, INT32_MAX),
    INT_KEY("electionPortBindRetry", election_port_bind_retry, 0, INT32_MAX),
    KIND_KEY("reconfigEnabled", KIND_BOOL, reconfig_enabled),
    KIND_KEY("standaloneEnabled", KIND_BOOL, standalone_enabled),
    KIND_KEY("extendedTypesEnabled", KIND_BOOL, extended_types_enabled),
    KIND_KEY("enforceQuota", KIND_BOOL, enforce_quota),
    KIND_KEY("peerType", KIND_PEER_TYPE, peer_type),
    {.key = "cores", .kind = KIND_INT32, .offset = OFF(cores), .min = 0, .max = CONFIG_CORES_MAX},
    {.key = "logLevel", .kind = KIND_LOG_LEVEL, .offset = OFF(log_level)},
    {.key = "truncateCorruptLog", .kind = KIND_BOOL, .offset = OFF(truncate_corrupt_log)},
    /* Printed as conf's serverId, not under its own name. */
    {.key = "myid", .kind = KIND_INT64, .offset = OFF(my_id), .min = 0, .max = INT64_MAX},
};
#define KEYS_COUNT (sizeof keys / sizeof keys[0])

struct flag_spec {
	const char *flag;
	const char *key;
};

static const struct flag_spec flags[] = {
    {"--port", "clientPort"},
    {"--data-dir", "dataDir"},
    {"--cores", "cores"},
    {"--log-level", "logLevel"},
    {"--truncate-corrupt-log", "truncateCorruptLog"},
    {"--myid", "myid"},
};

/* Flags without a value. */
#define FLAG_CHECK_CONFIG "--check-config"

static const char *const peer_type_names[CONFIG_PEER_COUNT] = {"participant", "observer"};
static const char *const log_level_names[LOG_LEVEL_COUNT] = {"debug", "info", "warn", "error"};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->tick_time_ms = 2000;
	snprintf(cfg->data_dir, sizeof cfg->data_dir, "./data");
	cfg->client_port = 2181;
	snprintf(cfg->client_port_address, sizeof cfg->client_port_address, "0.0.0.0");
	cfg->max_client_cnxns = 60;
	cfg->min_session_timeout_ms = -1;
	cfg->max_session_timeout_ms = -1;
	snprintf(cfg->four_lw_whitelist, sizeof cfg->four_lw_whitelist, "srvr");
	cfg->jute_maxbuffer = 1048575;
	cfg->global_outstanding_limit = 1000;
	cfg->container_check_interval_ms = 60000; /* ZooKeeper's defaults */
	cfg->container_max_per_minute = 10000;
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->snap_count = 100000;
	cfg->force_sync = true;
	cfg->prealloc_size_kb = 65536;
	cfg->snap_size_limit_kb = 4194304; /* ZooKeeper's 4 GiB */
	cfg->autopurge_snap_retain_count = 3;
	cfg->admin_enable_server = true;
	cfg->admin_server_port = 8080;
	snprintf(cfg->admin_server_address, sizeof cfg->admin_server_address, "0.0.0.0");
	snprintf(cfg->metrics_provider_class, sizeof cfg->metrics_provider_class, "%s",
		 CONFIG_METRICS_DEFAULT);
	cfg->metrics_http_port = 7000; /* the Prometheus provider's defaults */
	snprintf(cfg->metrics_http_host, sizeof cfg->metrics_http_host, "0.0.0.0");
	cfg->metrics_export_jvm_info = true;
	cfg->init_limit_ticks = 10;
	cfg->sync_limit_ticks = 5;
	cfg->election_port_bind_retry = 3;
	cfg->standalone_enabled = true;
	cfg->peer_type = CONFIG_PEER_PARTICIPANT;
	cfg->my_id = -1;
}

static const struct key_spec *find_key(const char *key)
{
	for (size_t i = 0; i < KEYS_COUNT; i++) {
		if (strcmp(keys[i].key, key) == 0)
			return &keys[i];
	}
	return NULL;
}

/* ---- values ---- */

/* Where a value came from, for messages: "zoo.cfg:12: " or "". */
struct origin {
	const char *where;
	const char *name; /* the key or flag as the user wrote it */
};

static int bad_value(const struct origin *o, const char *value, const char *expected, char *err,
		     size_t errlen)
{
	return fail(err, errlen, "%sinvalid value '%s' for %s: expected %s", o->where, value,
		    o->name, expected);
}

static int parse_int(const struct key_spec *k, const struct origin *o, const char *value,
		     int64_t *out, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	long long v = strtoll(value, &end, 10);
	if (*value == '\0' || *end != '\0' || errno == ERANGE || v > k->max ||
	    (v < k->min && !k->raise_low)) {
		char expected[96];
		snprintf(expected, sizeof expected, "an integer from %" PRId64 " to %" PRId64,
			 k->min, k->max);
		return bad_value(o, value, expected, err, errlen);
	}
	if (v < k->min) {
		log_warn("%s%s=%lld is below %" PRId64 "; using %" PRId64, o->where, o->name, v,
			 k->min, k->min);
		v = k->min;
	}
	*out = v;
	return 0;
}

/* Returns the index of value in names (case-insensitive), or -1. */
static int parse_name(const char *value, const char *const *names, int count)
{
	for (int i = 0; i < count; i++) {
		if (strcasecmp(value, names[i]) == 0)
			return i;
	}
	return -1;
}

static int set_str_value(const struct key_spec *k, const struct origin *o, struct config *cfg,
			 const char *value, char *err, size_t errlen)
{
	size_t len = strlen(value);
	if (len == 0 && !k->allow_empty)
		return bad_value(o, value, "a non-empty string", err, errlen);
	if (len >= k->size)
		return fail(err, errlen, "%svalue for %s is too long (%zu bytes, at most %zu)",
			    o->where, o->name, len, k->size - 1);
	if (k->needs_colon && len && !strchr(value, ':'))
		return bad_value(o, value, "user:base64(sha1(user:password))", err, errlen);
	memcpy((char *)cfg + k->offset, value, len + 1);
	return 0;
}

static int store_value(const struct key_spec *k, const struct origin *o, struct config *cfg,
		       const char *value, char *err, size_t errlen)
{
	void *field = (char *)cfg + k->offset;
	int64_t v = 0;
	int i, rc = 0;
	static const char *const bools[] = {"false", "true"}, *const yes_no[] = {"no", "yes"};
	switch (k->kind) {
	case KIND_INT32:
	case KIND_INT64:
		rc = parse_int(k, o, value, &v, err, errlen);
		if (rc == 0 && k->kind == KIND_INT32)
			*(int32_t *)field = (int32_t)v;
		else if (rc == 0)
			*(int64_t *)field = v;
		return rc;
	case KIND_BOOL:
	case KIND_YES_NO:
		i = parse_name(value, k->kind == KIND_BOOL ? bools : yes_no, 2);
		if (i < 0)
			return bad_value(o, value,
					 k->kind == KIND_BOOL ? "true or false" : "yes or no", err,
					 errlen);
		*(bool *)field = i == 1;
		return 0;
	case KIND_STRING:
		return set_str_value(k, o, cfg, value, err, errlen);
	case KIND_PEER_TYPE:
		i = parse_name(value, peer_type_names, CONFIG_PEER_COUNT);
		if (i < 0)
			return bad_value(o, value, "participant or observer", err, errlen);
		*(enum config_peer_type *)field = (enum config_peer_type)i;
		return 0;
	case KIND_LOG_LEVEL:
		i = parse_name(value, log_level_names, LOG_LEVEL_COUNT);
		if (i < 0)
			return bad_value(o, value, "debug, info, warn or error", err, errlen);
		*(enum log_level *)field = (enum log_level)i;
		return 0;
	case KIND_COUNT:
		break;
	}
	RK_ASSERT(!"unknown value kind");
	return -EINVAL;
}

static int set_value(const struct key_spec *k, const struct origin *o, struct config *cfg,
		     const char *value, char *err, size_t errlen)
{
	int rc = store_value(k, o, cfg, value, err, errlen);
	if (rc == 0 && k->given_offset)
		*(bool *)((char *)cfg + k->given_offset) = true;
	return rc;
}

/* ---- server.N lines ---- */

/* String.trim(): drops every character <= ' ' at both ends. */
static char *trim(char *s)
{
	while (*s && (unsigned char)*s <= ' ')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (unsigned char)s[n - 1] <= ' ')
		s[--n] = '\0';
	return s;
}

#define SERVER_FORM                                                                                \
	"host:quorumPort:electionPort[:participant|:observer][;[clientAddress:]clientPort]"
#define HOST_PARTS_MAX 4 /* host, quorum port, election port, type */

/* Splits s in place at ':' into at most max trimmed parts, as ZooKeeper's
 * ConfigUtils.getHostAndPort: a leading "[v6]" is the first part, without
 * its brackets. Returns the part count, or -1 with *why set. */
static int split_host_parts(char *s, char **parts, int max, const char **why)
{
	int n = 0;
	char *p = s;
	if (*s == '[') {
		char *close = strchr(s, ']');
		if (!close) {
			*why = "'[' without a matching ']'";
			return -1;
		}
		if (close[1] != '\0' && close[1] != ':') {
			*why = "no ':' after ']'";
			return -1;
		}
		*close = '\0';
		parts[n++] = s + 1;
		if (close[1] == '\0')
			return n;
		p = close + 2;
	}
	for (;;) {
		char *colon = strchr(p, ':');
		if (n == max) {
			*why = "too many ':'-separated parts";
			return -1;
		}
		if (colon)
			*colon = '\0';
		parts[n++] = trim(p);
		if (!colon)
			return n;
		p = colon + 1;
	}
}

static int parse_port(const char *s, int32_t *port)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (*s < '0' || *s > '9' || *end != '\0' || errno == ERANGE || v < 1 || v > 65535)
		return -1;
	*port = (int32_t)v;
	return 0;
}

static int member_error(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int member_error(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

static int copy_host(char *dst, size_t cap, const char *host, const char *name, char *why,
		     size_t whylen)
{
	if (*host == '\0')
		return member_error(why, whylen, "empty %s; expected " SERVER_FORM, name);
	if (strlen(host) >= cap)
		return member_error(why, whylen, "%s is too long", name);
	memcpy(dst, host, strlen(host) + 1);
	return 0;
}

/* The part after ';': "[clientAddress:]clientPort". */
static int parse_client_part(struct config_member *m, char *s, char *why, size_t whylen)
{
	char *parts[2];
	const char *what = NULL;
	int n = split_host_parts(trim(s), parts, 2, &what);
	if (n < 0)
		return member_error(why, whylen, "client part: %s; expected " SERVER_FORM, what);
	const char *address = n == 2 ? parts[0] : "0.0.0.0";
	if (parse_port(parts[n - 1], &m->client_port))
		return member_error(why, whylen, "invalid client port '%s': expected 1 to 65535",
				    parts[n - 1]);
	return copy_host(m->client_address, sizeof m->client_address, address, "client address",
			 why, whylen);
}

/* Fills m's address fields from value, the text after "server.N=". On
 * error returns -1 and says what is wrong in why. */
static int parse_member(struct config_member *m, const char *value, char *why, size_t whylen)
{
	char buf[CONFIG_STRING_MAX], *parts[HOST_PARTS_MAX];
	const char *what = NULL;
	snprintf(buf, sizeof buf, "%s", value);
	char *client = strchr(buf, ';');
	if (client)
		*client++ = '\0';
	if (client && strchr(client, ';'))
		return member_error(why, whylen, "more than one ';'; expected " SERVER_FORM);
	if (strchr(buf, '|'))
		return member_error(why, whylen, "multiple addresses ('|') are not supported");
	int n = split_host_parts(trim(buf), parts, HOST_PARTS_MAX, &what);
	if (n >= 0 && n < 3)
		what = "missing ports";
	if (n < 3)
		return member_error(why, whylen, "%s; expected " SERVER_FORM, what);
	if (copy_host(m->host, sizeof m->host, parts[0], "host", why, whylen))
		return -1;
	if (parse_port(parts[1], &m->quorum_port))
		return member_error(why, whylen, "invalid quorum port '%s': expected 1 to 65535",
				    parts[1]);
	if (parse_port(parts[2], &m->election_port))
		return member_error(why, whylen, "invalid election port '%s': expected 1 to 65535",
				    parts[2]);
	if (m->quorum_port == m->election_port)
		return member_error(why, whylen, "quorum and election port must differ (both %d)",
				    m->quorum_port);
	m->observer = false;
	if (n == 4) {
		int t = parse_name(parts[3], peer_type_names, CONFIG_PEER_COUNT);
		if (t < 0)
			return member_error(why, whylen,
					    "unknown type '%s': expected participant or observer",
					    parts[3]);
		m->observer = t == CONFIG_PEER_OBSERVER;
	}
	m->client_address[0] = '\0';
	m->client_port = 0;
	return client ? parse_client_part(m, client, why, whylen) : 0;
}

/* server.N=value. The same key again replaces its line, as a properties
 * file keeps a key's last value; another spelling of the same N
 * (server.01) is a duplicate id. */
static int set_server(struct config *cfg, const struct origin *o, const char *value, char *err,
		      size_t errlen)
{
	const char *digits = o->name + strlen("server.");
	size_t ndigits = strlen(digits);
	char *end;
	errno = 0;
	long long id = strtoll(digits, &end, 10);
	if (ndigits == 0 || strspn(digits, "0123456789") != ndigits || errno == ERANGE ||
	    strlen(o->name) >= CONFIG_SERVER_KEY_MAX)
		return fail(err, errlen, "%sinvalid server id in '%s': expected server.N, N >= 0",
			    o->where, o->name);
	uint32_t i = 0;
	while (i < cfg->server_count && cfg->servers[i].id != id)
		i++;
	if (i < cfg->server_count && strcmp(cfg->servers[i].key, o->name) != 0)
		return fail(err, errlen, "%sduplicate server id %lld: %s and %s", o->where, id,
			    cfg->servers[i].key, o->name);
	if (i == CONFIG_SERVERS_MAX)
		return fail(err, errlen, "%stoo many server.N lines (at most %d)", o->where,
			    CONFIG_SERVERS_MAX);
	if (strlen(value) >= sizeof cfg->servers[i].raw)
		return fail(err, errlen, "%svalue for %s is too long", o->where, o->name);
	struct config_member m = {.id = id};
	char why[CONFIG_STRING_MAX];
	if (parse_member(&m, value, why, sizeof why))
		return fail(err, errlen, "%sinvalid %s=%s: %s", o->where, o->name, value, why);
	snprintf(m.key, sizeof m.key, "%s", o->name);
	snprintf(m.raw, sizeof m.raw, "%s", value);
	cfg->servers[i] = m;
	if (i == cfg->server_count)
		cfg->server_count++;
	return 0;
}

static int apply_file_key(struct config *cfg, const struct origin *o, const char *value, char *err,
			  size_t errlen)
{
	const struct key_spec *k = find_key(o->name);
	if (k && k->in_file)
		return set_value(k, o, cfg, value, err, errlen);
	if (strncmp(o->name, "server.", strlen("server.")) == 0)
		return set_server(cfg, o, value, err, errlen);
	log_warn("%sunknown key '%s' ignored", o->where, o->name);
	return 0;
}

/* ---- properties text ---- */

struct text {
	const char *p;
	size_t len;
	size_t off;
	unsigned lineno;
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\f';
}

/* Next natural line; '\n', '\r' and "\r\n" end lines. */
static bool next_natural(struct text *t, const char **s, size_t *n)
{
	if (t->off >= t->len)
		return false;
	const char *start = t->p + t->off;
	size_t i = 0;
	while (t->off + i < t->len && start[i] != '\n' && start[i] != '\r')
		i++;
	*s = start;
	*n = i;
	t->off += i;
	if (t->off < t->len) {
		char end = t->p[t->off++];
		if (end == '\r' && t->off < t->len && t->p[t->off] == '\n')
			t->off++;
	}
	t->lineno++;
	return true;
}

/* Joins natural lines ending in an odd number of backslashes into one
 * logical line in out (NUL-terminated), skipping blank and comment lines.
 * Returns 1, 0 at the end, or -E2BIG. *first gets its first line number. */
static int next_logical(struct text *t, char *out, size_t cap, size_t *len, unsigned *first)
{
	const char *s;
	size_t n;
	bool more = false;
	*len = 0;
	while (next_natural(t, &s, &n)) {
		while (n > 0 && is_blank(*s)) {
			s++;
			n--;
		}
		if (!more && (n == 0 || *s == '#' || *s == '!'))
			continue;
		if (!more)
			*first = t->lineno;
		size_t slashes = 0;
		while (slashes < n && s[n - 1 - slashes] == '\\')
			slashes++;
		more = slashes % 2 == 1;
		n -= more;
		if (n >= cap - *len)
			return -E2BIG;
		memcpy(out + *len, s, n);
		*len += n;
		out[*len] = '\0';
		if (!more)
			return 1;
	}
	return more ? 1 : 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static size_t put_utf8(char *out, unsigned cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	out[0] = (char)(0xe0 | cp >> 12);
	out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[2] = (char)(0x80 | (cp & 0x3f));
	return 3;
}

/* Java properties escapes, in place (the result is never longer):
 * \t \n \r \f, \uXXXX, and backslash before any other character drops the
 * backslash. Returns false for a malformed \uXXXX. */
static bool unescape(char *s)
{
	char *w = s;
	for (const char *r = s; *r;) {
		if (*r != '\\') {
			*w++ = *r++;
			continue;
		}
		char c = r[1];
		r += c ? 2 : 1;
		if (c == 'u') {
			unsigned cp = 0;
			for (int i = 0; i < 4; i++, r++) {
				int d = hex_digit(*r);
				if (d < 0)
					return false;
				cp = cp << 4 | (unsigned)d;
			}
			w += put_utf8(w, cp);
			continue;
		}
		*w++ = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c == 'f' ? '\f' : c;
		if (!c)
			break;
	}
	*w = '\0';
	return true;
}

/* Splits a logical line in place: the key ends at the first unescaped
 * '=', ':' or blank; then blanks, at most one '=' or ':', blanks. */
static void split_line(char *line, size_t len, char **key, char **value)
{
	size_t i = 0;
	while (i < len && line[i] != '=' && line[i] != ':' && !is_blank(line[i]))
		i += line[i] == '\\' && i + 1 < len ? 2 : 1;
	size_t j = i;
	while (j < len && is_blank(line[j]))
		j++;
	if (j < len && (line[j] == '=' || line[j] == ':'))
		j++;
	while (j < len && is_blank(line[j]))
		j++;
	line[i] = '\0';
	*key = line;
	*value = line + j;
}

static int parse_text(struct config *cfg, struct text *t, const char *path, char *err,
		      size_t errlen)
{
	char *line = malloc(CONFIG_LINE_MAX);
	if (!line) {
		fail(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	size_t len;
	unsigned first = 0;
	int rc;
	while ((rc = next_logical(t, line, CONFIG_LINE_MAX, &len, &first)) > 0) {
		char where[CONFIG_PATH_MAX + 32], *key, *value;
		snprintf(where, sizeof where, "%s:%u: ", path, first);
		split_line(line, len, &key, &value);
		if (!unescape(key) || !unescape(value)) {
			rc = fail(err, errlen, "%smalformed \\uxxxx escape", where);
			break;
		}
		struct origin o = {where, trim(key)};
		rc = apply_file_key(cfg, &o, trim(value), err, errlen);
		if (rc)
			break;
	}
	if (rc == -E2BIG)
		rc = fail(err, errlen, "%s:%u: line longer than %d bytes", path, first,
			  CONFIG_LINE_MAX - 1);
	free(line);
	return rc;
}

static int read_all(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		int e = errno;
		fail(err, errlen, "cannot open %s: %s", path, strerror(e));
		return -e;
	}
	int rc = 0;
	*buf = malloc(CONFIG_FILE_BYTES_MAX + 1);
	*len = *buf ? fread(*buf, 1, CONFIG_FILE_BYTES_MAX + 1, f) : 0;
	if (!*buf)
		rc = -ENOMEM;
	else if (ferror(f))
		rc = -EIO;
	else if (*len > CONFIG_FILE_BYTES_MAX)
		rc = -EFBIG;
	fclose(f);
	if (rc) {
		fail(err, errlen, "cannot read %s: %s", path, strerror(-rc));
		free(*buf);
		*buf = NULL;
	}
	return rc;
}

int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	int rc = read_all(path, &buf, &len, err, errlen);
	if (rc)
		return rc;
	struct text t = {buf, len, 0, 0};
	rc = parse_text(cfg, &t, path, err, errlen);
	free(buf);
	return rc;
}

/* ---- command line ---- */

static const struct flag_spec *find_flag(const char *arg, size_t len)
{
	for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
		if (strlen(flags[i].flag) == len && strncmp(flags[i].flag, arg, len) == 0)
			return &flags[i];
	}
	return NULL;
}

static bool is_flag(const char *arg)
{
	return arg[0] == '-' && arg[1] != '\0';
}

/* Parses argv[*i] as a flag: sets *flag and *value and advances *i past
 * a separate value argument. */
static int take_flag(int argc, char **argv, int *i, const struct flag_spec **flag,
		     const char **value, char *err, size_t errlen)
{
	const char *arg = argv[*i];
	const char *eq = strchr(arg, '=');
	*flag = find_flag(arg, eq ? (size_t)(eq - arg) : strlen(arg));
	if (!*flag)
		return fail(err, errlen, "unknown option '%s' (try --help)", arg);
	if (eq) {
		*value = eq + 1;
	} else if (*i + 1 < argc) {
		*value = argv[++*i];
	} else {
		return fail(err, errlen, "option %s needs a value", arg);
	}
	return 0;
}

/* Pass one finds --help, --version, the config file and any malformed flag before
 * anything is applied; pass two applies flags after the file. */
static int scan_args(int argc, char **argv, const char **path, char *err, size_t errlen)
{
	*path = NULL;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
			return CONFIG_ARGS_HELP;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--version") == 0)
			return CONFIG_ARGS_VERSION;
	}
	for (int i = 1; i < argc; i++) {
		const struct flag_spec *flag;
		const char *value;
		int rc = 0;
		if (strcmp(argv[i], FLAG_CHECK_CONFIG) == 0)
			continue;
		if (is_flag(argv[i]))
			rc = take_flag(argc, argv, &i, &flag, &value, err, errlen);
		else if (*path)
			rc = fail(err, errlen, "more than one config file: '%s' and '%s'", *path,
				  argv[i]);
		else
			*path = argv[i];
		if (rc)
			return rc;
	}
	return 0;
}

int config_parse_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen)
{
	const char *path;
	int rc = scan_args(argc, argv, &path, err, errlen);
	if (rc)
		return rc;
	if (path && (rc = config_load_file(cfg, path, err, errlen)))
		return rc;
	for (int i = 1; i < argc; i++) {
		const struct flag_spec *flag;
		const char *value;
		if (strcmp(argv[i], FLAG_CHECK_CONFIG) == 0) {
			cfg->check_only = true;
			continue;
		}
		if (!is_flag(argv[i]))
			continue;
		rc = take_flag(argc, argv, &i, &flag, &value, err, errlen);
		RK_ASSERT(rc == 0);
		struct origin o = {"", flag->flag};
		rc = set_value(find_key(flag->key), &o, cfg, value, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

void config_usage(FILE *out)
{
	fputs("usage: ringkeeper [zoo.cfg] [options]\n"
	      "  zoo.cfg            ZooKeeper configuration file (key=value lines)\n"
	      "  --port N           client port (clientPort), default 2181\n"
	      "  --data-dir DIR     snapshot and log directory (dataDir), default ./data\n"
	      "  --cores N          event loops, one per core; 0 = every CPU, the default\n"
	      "  --log-level LEVEL  debug, info, warn or error; default info\n"
	      "  --truncate-corrupt-log true\n"
	      "                     cut the txn log at a corrupt record instead of refusing\n"
	      "                     to start (everything after it is lost)\n"
	      "  --myid N           this server's N among the server.N lines; overrides the\n"
	      "                     file myid in dataDir\n"
	      "  --check-config     check zoo.cfg and the flags (and, in an ensemble, myid),\n"
	      "                     print the effective configuration and exit: 0 when\n"
	      "                     valid, 2 with a message naming the key when not\n"
	      "  --version          the version and how this binary was built\n"
	      "  --help             this text\n"
	      "Options override the file, wherever they appear.\n",
	      out);
}

/* ---- finish and print ---- */

static int cpus_usable(void)
{
	/* The affinity mask, not the online count: a cpuset or taskset may
	 * give this process fewer CPUs than the machine has. */
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

static int derive_timeout(int32_t *timeout_ms, int64_t ticks, int32_t tick_ms, const char *name,
			  char *err, size_t errlen)
{
	if (*timeout_ms != -1)
		return 0;
	int64_t v = ticks * tick_ms;
	if (v > INT32_MAX)
		return fail(err, errlen, "tickTime %d is too large: %s would be %" PRId64 " ms",
			    tick_ms, name, v);
	*timeout_ms = (int32_t)v;
	return 0;
}

static void count_members(const struct config *cfg, uint32_t *participants, uint32_t *observers)
{
	*participants = *observers = 0;
	for (uint32_t i = 0; i < cfg->server_count; i++)
		(*(cfg->servers[i].observer ? observers : participants))++;
}

bool config_is_ensemble(const struct config *cfg)
{
	uint32_t participants, observers;
	count_members(cfg, &participants, &observers);
	return cfg->server_count > 0 && (participants >= 2 || !cfg->standalone_enabled);
}

const struct config_member *config_self(const struct config *cfg)
{
	for (uint32_t i = 0; cfg->my_id >= 0 && i < cfg->server_count; i++) {
		if (cfg->servers[i].id == cfg->my_id)
			return &cfg->servers[i];
	}
	return NULL;
}

static const char *bracketed(const char *host, char *buf, size_t len)
{
	if (!strchr(host, ':'))
		return host;
	snprintf(buf, len, "[%s]", host);
	return buf;
}

int config_member_format(const struct config_member *m, char *buf, size_t len)
{
	char host[CONFIG_ADDR_MAX + 2], client[CONFIG_ADDR_MAX + 2];
	const char *type =
	    peer_type_names[m->observer ? CONFIG_PEER_OBSERVER : CONFIG_PEER_PARTICIPANT];
	if (m->client_port == 0)
		return snprintf(buf, len, "%s:%d:%d:%s", bracketed(m->host, host, sizeof host),
				m->quorum_port, m->election_port, type);
	return snprintf(buf, len, "%s:%d:%d:%s;%s:%d", bracketed(m->host, host, sizeof host),
			m->quorum_port, m->election_port, type,
			bracketed(m->client_address, client, sizeof client), m->client_port);
}

/* The counts ZooKeeper's QuorumPeerConfig.parseDynamicConfig insists on. */
static int check_roles(const struct config *cfg, char *err, size_t errlen)
{
	uint32_t participants, observers;
	count_members(cfg, &participants, &observers);
	if (participants == 0)
		return fail(err, errlen,
			    "server.N lines name only observers: at least one must be "
			    "a participant");
	if (participants == 1 && cfg->standalone_enabled && observers > 0)
		return fail(
		    err, errlen,
		    "observers need a quorum: one participant among the server.N lines runs "
		    "standalone (standaloneEnabled=true)");
	if (participants == 1 && cfg->standalone_enabled)
		log_warn("only one server.N line: running standalone (standaloneEnabled=true)");
	else if (participants <= 2)
		log_warn("%u participants: no server failure will be tolerated; an ensemble "
			 "needs at least 3",
			 participants);
	else if (participants % 2 == 0)
		log_warn("%u participants tolerate %u failed servers, as %u would: an odd number "
			 "is the better choice",
			 participants, (participants - 1) / 2, participants - 1);
	return 0;
}

/* Two endpoints of the servers on one host (as written) cannot share a
 * port. Catches copy-paste slips in local ensembles before bind() does. */
static int check_ports(const struct config *cfg, char *err, size_t errlen)
{
	static const char *const names[] = {"quorum", "election", "client"};
	for (uint32_t i = 0; i < cfg->server_count; i++) {
		const struct config_member *a = &cfg->servers[i];
		const int32_t pa[] = {a->quorum_port, a->election_port, a->client_port};
		for (uint32_t j = i; j < cfg->server_count; j++) {
			const struct config_member *b = &cfg->servers[j];
			const int32_t pb[] = {b->quorum_port, b->election_port, b->client_port};
			if (strcasecmp(a->host, b->host) != 0)
				continue;
			for (int x = 0; x < 3; x++) {
				for (int y = i == j ? x + 1 : 0; y < 3; y++) {
					if (pa[x] == 0 || pa[x] != pb[y])
						continue;
					return fail(err, errlen,
						    "port %d on %s is both %s's %s port and %s's "
						    "%s port",
						    pa[x], a->host, a->key, names[x], b->key,
						    names[y]);
				}
			}
		}
	}
	return 0;
}

/* dataDir/myid: one decimal number, whitespace around it allowed. A
 * missing file leaves my_id at -1. */
static int read_my_id(struct config *cfg, char *err, size_t errlen)
{
	char path[CONFIG_PATH_MAX + 8], buf[64];
	snprintf(path, sizeof path, "%s/myid", cfg->data_dir);
	FILE *f = fopen(path, "r");
	if (!f && errno == ENOENT)
		return 0;
	if (!f) {
		int e = errno;
		fail(err, errlen, "cannot open %s: %s", path, strerror(e));
		return -e;
	}
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	int e = ferror(f) ? EIO : 0;
	fclose(f);
	if (e) {
		fail(err, errlen, "cannot read %s: %s", path, strerror(e));
		return -e;
	}
	buf[n] = '\0';
	char *id = trim(buf), *end;
	errno = 0;
	long long v = strtoll(id, &end, 10);
	if (*id < '0' || *id > '9' || *end != '\0' || errno == ERANGE || n == sizeof buf - 1)
		return fail(err, errlen, "%s: '%s' is not a server id: expected a decimal number",
			    path, id);
	cfg->my_id = v;
	return 0;
}

static bool is_wildcard(const char *address)
{
	return strcmp(address, "0.0.0.0") == 0 || strcmp(address, "::") == 0 ||
	       strcmp(address, "[::]") == 0 || strcmp(address, "0:0:0:0:0:0:0:0") == 0;
}

/* This server's line names its client address: it wins over the defaults,
 * and an explicit clientPort or clientPortAddress must agree with it
 * (QuorumPeerConfig.setupClientPort). */
static int take_client_address(struct config *cfg, const struct config_member *self, char *err,
			       size_t errlen)
{
	if (self->client_port == 0)
		return 0;
	if (cfg->client_port_given && cfg->client_port != self->client_port)
		return fail(err, errlen, "clientPort %d differs from the client port %d in %s=%s",
			    cfg->client_port, self->client_port, self->key, self->raw);
	if (cfg->client_port_address_given && !is_wildcard(cfg->client_port_address) &&
	    strcmp(cfg->client_port_address, self->client_address) != 0)
		return fail(err, errlen,
			    "clientPortAddress %s differs from the client address %s in %s=%s",
			    cfg->client_port_address, self->client_address, self->key, self->raw);
	cfg->client_port = self->client_port;
	memcpy(cfg->client_port_address, self->client_address, sizeof cfg->client_port_address);
	return 0;
}

/* A server id is the top byte of the session ids it issues, so ids above
 * 255 would collide; with TTL nodes 255 marks TTL ephemeralOwners, and
 * ZooKeeper (EphemeralType.validateServerId) stops at 254 too. */
static int check_ids(const struct config *cfg, char *err, size_t errlen)
{
	int64_t max = cfg->extended_types_enabled ? 254 : 255;
	for (uint32_t i = 0; i < cfg->server_count && config_is_ensemble(cfg); i++) {
		if (cfg->servers[i].id > max)
			return fail(err, errlen,
				    "%s: server ids go up to %" PRId64 "%s: the id is the top byte "
				    "of the session ids a server issues",
				    cfg->servers[i].key, max,
				    cfg->extended_types_enabled ? " with extendedTypesEnabled"
								: "");
	}
	return 0;
}

static int finish_ensemble(struct config *cfg, char *err, size_t errlen)
{
	if (cfg->server_count == 0)
		return 0;
	bool from_flag = cfg->my_id >= 0;
	int rc = check_roles(cfg, err, errlen);
	if (rc == 0)
		rc = check_ids(cfg, err, errlen);
	if (rc == 0)
		rc = check_ports(cfg, err, errlen);
	if (rc == 0 && !from_flag)
		rc = read_my_id(cfg, err, errlen);
	if (rc)
		return rc;
	const struct config_member *self = config_self(cfg);
	if (config_is_ensemble(cfg) && cfg->my_id < 0)
		return fail(err, errlen,
			    "myid file %s/myid is missing: an ensemble member needs its server id "
			    "(the N of its server.N line) there, or --myid N",
			    cfg->data_dir);
	if (config_is_ensemble(cfg) && !self)
		return fail(
		    err, errlen, "myid %" PRId64 " (from %s%s) is not among the server.N lines",
		    cfg->my_id, from_flag ? "--myid" : cfg->data_dir, from_flag ? "" : "/myid");
	if (!self)
		return 0;
	rc = take_client_address(cfg, self, err, errlen);
	enum config_peer_type by_line =
	    self->observer ? CONFIG_PEER_OBSERVER : CONFIG_PEER_PARTICIPANT;
	if (rc == 0 && cfg->peer_type != by_line) {
		log_warn("peerType=%s does not match %s=%s; using the server line's type, %s",
			 peer_type_names[cfg->peer_type], self->key, self->raw,
			 peer_type_names[by_line]);
		cfg->peer_type = by_line;
	}
	return rc;
}

int config_finish(struct config *cfg, char *err, size_t errlen)
{
	if (cfg->data_log_dir[0] == '\0')
		memcpy(cfg->data_log_dir, cfg->data_dir, sizeof cfg->data_log_dir);
	int rc = derive_timeout(&cfg->min_session_timeout_ms, 2, cfg->tick_time_ms,
				"minSessionTimeout", err, errlen);
	if (rc == 0)
		rc = derive_timeout(&cfg->max_session_timeout_ms, 20, cfg->tick_time_ms,
				    "maxSessionTimeout", err, errlen);
	if (rc)
		return rc;
	if (cfg->min_session_timeout_ms > cfg->max_session_timeout_ms)
		return fail(err, errlen,
			    "minSessionTimeout %d must not be larger than maxSessionTimeout %d",
			    cfg->min_session_timeout_ms, cfg->max_session_timeout_ms);
	cfg->metrics_prometheus =
	    strcmp(cfg->metrics_provider_class, CONFIG_METRICS_PROMETHEUS) == 0;
	if (!cfg->metrics_prometheus &&
	    strcmp(cfg->metrics_provider_class, CONFIG_METRICS_DEFAULT) != 0)
		return fail(err, errlen,
			    "metricsProvider.className %s: Ringkeeper has ZooKeeper's default "
			    "provider and %s only",
			    cfg->metrics_provider_class, CONFIG_METRICS_PROMETHEUS);
	if (cfg->cores == 0)
		cfg->cores = cpus_usable();
	if (cfg->cores > CONFIG_CORES_MAX)
		cfg->cores = CONFIG_CORES_MAX;
	return finish_ensemble(cfg, err, errlen);
}

static void print_value(const struct key_spec *k, const struct config *cfg, FILE *out)
{
	const void *field = (const char *)cfg + k->offset;
	switch (k->kind) {
	case KIND_INT32:
		fprintf(out, "%s=%d\n", k->key, *(const int32_t *)field);
		return;
	case KIND_INT64:
		fprintf(out, "%s=%" PRId64 "\n", k->key, *(const int64_t *)field);
		return;
	case KIND_BOOL:
		fprintf(out, "%s=%s\n", k->key, *(const bool *)field ? "true" : "false");
		return;
	case KIND_YES_NO:
		fprintf(out, "%s=%s\n", k->key, *(const bool *)field ? "yes" : "no");
		return;
	case KIND_STRING:
		fprintf(out, "%s=%s\n", k->key, (const char *)field);
		return;
	case KIND_PEER_TYPE:
		fprintf(out, "%s=%s\n", k->key,
			peer_type_names[*(const enum config_peer_type *)field]);
		return;
	case KIND_LOG_LEVEL:
		fprintf(out, "%s=%s\n", k->key, log_level_names[*(const enum log_level *)field]);
		return;
	case KIND_COUNT:
		break;
	}
	RK_ASSERT(!"unknown value kind");
}

/* initLimit, syncLimit and peerType print in conf's quorum block, myid as
 * its serverId. */
static bool in_quorum_block(const struct key_spec *k)
{
	return k->offset == OFF(init_limit_ticks) || k->offset == OFF(sync_limit_ticks) ||
	       k->offset == OFF(peer_type) || k->offset == OFF(my_id);
}

/* QuorumZooKeeperServer.dumpConf's lines; members in id order, as
 * ZooKeeper's QuorumMaj prints them. */
static void print_quorum(const struct config *cfg, const struct config_member *self, FILE *out)
{
	fprintf(out, "serverId=%" PRId64 "\ninitLimit=%d\nsyncLimit=%d\nelectionAlg=3\n",
		cfg->my_id, cfg->init_limit_ticks, cfg->sync_limit_ticks);
	fprintf(out, "electionPort=%d\nquorumPort=%d\npeerType=%d\nmembership: \n",
		self->election_port, self->quorum_port, (int)cfg->peer_type);
	int64_t last = -1;
	for (uint32_t n = 0; n < cfg->server_count; n++) {
		const struct config_member *next = NULL;
		for (uint32_t i = 0; i < cfg->server_count; i++) {
			const struct config_member *m = &cfg->servers[i];
			if (m->id > last && (!next || m->id < next->id))
				next = m;
		}
		char line[2 * CONFIG_ADDR_MAX + 64];
		config_member_format(next, line, sizeof line);
		fprintf(out, "server.%" PRId64 "=%s\n", next->id, line);
		last = next->id;
	}
	fputs("version=0\n", out);
}

void config_print(const struct config *cfg, FILE *out)
{
	const struct config_member *self = config_self(cfg);
	bool quorum = config_is_ensemble(cfg) && self;
	for (size_t i = 0; i < CONF_HEAD_KEYS; i++)
		print_value(&keys[i], cfg, out);
	if (quorum)
		print_quorum(cfg, self, out);
	/* The superDigest stays out: "conf" is open to any client. */
	for (size_t i = CONF_HEAD_KEYS; i < KEYS_COUNT; i++) {
		const struct key_spec *k = &keys[i];
		if (k->secret || k->offset == OFF(my_id) || (quorum && in_quorum_block(k)))
			continue;
		print_value(k, cfg, out);
	}
	for (uint32_t i = 0; !quorum && i < cfg->server_count; i++)
		fprintf(out, "%s=%s\n", cfg->servers[i].key, cfg->servers[i].raw);
}
