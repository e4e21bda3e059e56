/* Server configuration: ZooKeeper's zoo.cfg plus Ringkeeper's command-line
 * flags.
 *
 * Use: config_defaults(), then config_parse_args() (which loads the zoo.cfg
 * named on the command line, then applies the flags, so flags win whatever
 * their position), then config_finish() for derived values and the checks
 * that span keys. config_load_file() alone serves tests and tools.
 *
 * zoo.cfg is a Java properties file, as ZooKeeper reads it: "key=value",
 * "key: value" or "key value" lines, '#' and '!' comments, whitespace
 * trimmed, a trailing backslash continuing the line, backslash escapes in
 * values. A key seen twice keeps its last value. Unknown keys are logged
 * (log_warn) and ignored; an invalid value is an error naming the key.
 *
 * Ensemble: each server.N line is parsed when read (errors name the file
 * and line); config_finish() then finds this server's id (--myid, else the
 * file dataDir/myid) and checks the lines against each other and against
 * clientPort, peerType and standaloneEnabled as ZooKeeper's
 * QuorumPeerConfig does.
 *
 * A struct config owns no heap memory: every string is an inline array, so
 * copying the struct copies the configuration. Errors: 0 or -errno
 * (-EINVAL for a bad value, -errno of a failed open or read), with a
 * one-line message in err. */
#ifndef RK_CONFIG_H
#define RK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/log.h"

#define CONFIG_PATH_MAX	   4096
#define CONFIG_ADDR_MAX	   256
#define CONFIG_STRING_MAX  512
#define CONFIG_SERVERS_MAX 64 /* server.N lines */
#define CONFIG_CORES_MAX   1024
#define CONFIG_LINE_MAX	   16384 /* one logical zoo.cfg line */

/* config_parse_args() returns these for --help (print config_usage()) and
 * --version (print the build); either wins over everything else given. */
#define CONFIG_ARGS_HELP    1
#define CONFIG_ARGS_VERSION 2

enum config_peer_type {
	CONFIG_PEER_PARTICIPANT = 0, /* votes in the ensemble */
	CONFIG_PEER_OBSERVER,	     /* follows without voting */
	CONFIG_PEER_COUNT,
};

#define CONFIG_SERVER_KEY_MAX 40 /* "server.N" as written, with its NUL */

/* One server.N line:
 *   server.N=host:quorumPort:electionPort[:participant|:observer]
 *            [;[clientAddress:]clientPort]
 * host and clientAddress may be IPv6 literals in brackets; the brackets are
 * not stored. ZooKeeper's multi-address form (host1:p:p|host2:p:p) is
 * refused. */
struct config_member {
	int64_t id;			      /* N */
	char key[CONFIG_SERVER_KEY_MAX];      /* "server.N" as written, for messages */
	char host[CONFIG_ADDR_MAX];	      /* name or address, no brackets */
	int32_t quorum_port;		      /* followers reach the leader here */
	int32_t election_port;		      /* leader election */
	bool observer;			      /* ":observer"; else a participant */
	char client_address[CONFIG_ADDR_MAX]; /* "" = no client part; a bare port
					       * means "0.0.0.0", as ZooKeeper */
	int32_t client_port;		      /* 0 = the line names none */
	char raw[CONFIG_STRING_MAX];	      /* the value as written */
};

struct config {
	/* Client service (zoo.cfg key in comments where it differs). */
	int32_t tick_time_ms;			   /* tickTime */
	char data_dir[CONFIG_PATH_MAX];		   /* dataDir */
	char data_log_dir[CONFIG_PATH_MAX];	   /* dataLogDir; "" = data_dir */
	int32_t client_port;			   /* clientPort; 0 = kernel picks */
	char client_port_address[CONFIG_ADDR_MAX]; /* clientPortAddress */
	bool client_port_given;			   /* clientPort set by file or flag */
	bool client_port_address_given;		   /* clientPortAddress set by the file */
	int32_t max_client_cnxns;		   /* maxClientCnxns per host; 0 = no limit */
	int32_t min_session_timeout_ms;		   /* -1 = 2 * tickTime */
	int32_t max_session_timeout_ms;		   /* -1 = 20 * tickTime */
	char four_lw_whitelist[CONFIG_STRING_MAX]; /* 4lw.commands.whitelist */
	int32_t jute_maxbuffer;			   /* jute.maxbuffer, bytes */
	char super_digest[CONFIG_STRING_MAX];	   /* ...superDigest; "" = none */
	int32_t global_outstanding_limit;	   /* globalOutstandingLimit */
	int32_t container_check_interval_ms;	   /* znode.container.checkIntervalMs */
	int32_t container_max_per_minute;	   /* znode.container.maxPerMinute */
	/* Ringkeeper only: flags, no zoo.cfg keys. */
	int32_t cores; /* 0 = every CPU we may run on */
	enum log_level log_level;
	bool truncate_corrupt_log; /* cut the txn log at corruption, don't refuse */
	bool check_only;	   /* --check-config: validate and print, don't serve */
	/* Persistence. */
	int32_t snap_count;		     /* snapCount, txns per snapshot */
	int64_t snap_size_limit_kb;	     /* snapSizeLimitInKb: log KiB per snapshot; 0 = off */
	bool force_sync;		     /* forceSync=yes|no */
	int64_t prealloc_size_kb;	     /* preAllocSize */
	int32_t autopurge_snap_retain_count; /* autopurge.snapRetainCount */
	int32_t autopurge_purge_interval_hours; /* autopurge.purgeInterval; 0 = off */
	/* Admin server. */
	bool admin_enable_server;		    /* admin.enableServer */
	int32_t admin_server_port;		    /* admin.serverPort */
	char admin_server_address[CONFIG_ADDR_MAX]; /* admin.serverAddress */
	/* Metrics: metricsProvider.className names ZooKeeper's default or its
	 * Prometheus provider; with the latter /metrics is served on
	 * httpHost:httpPort too (it always is on the admin port). */
	char metrics_provider_class[CONFIG_STRING_MAX]; /* metricsProvider.className */
	bool metrics_prometheus;			/* derived from the class */
	int32_t metrics_http_port;			/* metricsProvider.httpPort */
	char metrics_http_host[CONFIG_ADDR_MAX];	/* metricsProvider.httpHost */
	bool metrics_export_jvm_info; /* metricsProvider.exportJvmInfo: no JVM, ignored */
	/* Ensemble. */
	int32_t init_limit_ticks;	  /* initLimit */
	int32_t sync_limit_ticks;	  /* syncLimit */
	int32_t election_port_bind_retry; /* electionPortBindRetry; 0 = forever */
	bool reconfig_enabled;		  /* reconfigEnabled */
	bool standalone_enabled;	  /* standaloneEnabled */
	bool extended_types_enabled;	  /* extendedTypesEnabled (TTL nodes) */
	bool enforce_quota;		  /* enforceQuota: hard quota limits refuse writes */
	enum config_peer_type peer_type;  /* peerType; the server line wins */
	int64_t my_id;			  /* --myid, else dataDir/myid; -1 = none */
	uint32_t server_count;
	struct config_member servers[CONFIG_SERVERS_MAX]; /* in file order */
};

void config_defaults(struct config *cfg);
/* Applies path's keys over cfg. On error cfg may hold some of the file's
 * values; the caller is expected to exit. */
int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen);
/* argv: [zoo.cfg] [--port N] [--data-dir DIR] [--cores N] [--log-level L]
 * [--myid N] [--check-config] [--version] [--help]; "--flag=value" works
 * for the flags that take a value. Returns 0, CONFIG_ARGS_HELP,
 * CONFIG_ARGS_VERSION, or -errno. */
int config_parse_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen);
#define CONFIG_METRICS_DEFAULT "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider"
#define CONFIG_METRICS_PROMETHEUS                                                                  \
	"org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"

/* Resolves data_log_dir, the session timeouts and cores, then checks what
 * spans keys (minSessionTimeout <= maxSessionTimeout; a metrics provider
 * Ringkeeper has). With server lines it
 * reads my_id from dataDir/myid unless --myid gave it (an ensemble needs
 * one of them, and it must name a server line), takes clientPort and
 * clientPortAddress from this server's line when the line has a client
 * part (an explicit clientPort or clientPortAddress that disagrees is an
 * error), and takes peerType from the line, warning when they differ. */
int config_finish(struct config *cfg, char *err, size_t errlen);
void config_usage(FILE *out);
/* Effective values as key=value lines: first those of ZooKeeper's "conf"
 * command, in its order (for an ensemble: serverId, initLimit ... peerType,
 * then "membership: " and the server lines in ZooKeeper's form), then the
 * rest under their zoo.cfg names. */
void config_print(const struct config *cfg, FILE *out);

/* True when this configuration runs as a replicated ensemble: server lines
 * with at least two participants, or any with standaloneEnabled=false.
 * A single server line with standaloneEnabled=true runs standalone, as
 * ZooKeeper's QuorumPeerMain does. */
bool config_is_ensemble(const struct config *cfg);
/* This server's line (the one whose id is my_id), or NULL. Points into
 * cfg. */
const struct config_member *config_self(const struct config *cfg);
/* The member as ZooKeeper prints it in "conf" and dynamic config files:
 * "host:quorumPort:electionPort:participant[;clientAddress:clientPort]",
 * IPv6 hosts in brackets. Returns snprintf's count. */
int config_member_format(const struct config_member *m, char *buf, size_t len);

#endif
