/* Configuration: defaults, zoo.cfg syntax, value errors, flags over file,
 * derived values and the printed form. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/config.h"

static char cfg_path[64];

/* Writes text to a fresh temporary zoo.cfg (replacing the previous one)
 * and returns its path. */
static const char *write_cfg(const char *text)
{
	if (cfg_path[0])
		unlink(cfg_path);
	snprintf(cfg_path, sizeof cfg_path, "/tmp/rk_test_cfg_XXXXXX");
	int fd = mkstemp(cfg_path);
	cr_assert_geq(fd, 0);
	size_t len = strlen(text);
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	return cfg_path;
}

static void remove_cfg(void)
{
	if (cfg_path[0])
		unlink(cfg_path);
}

/* Runs config_load_file with stderr captured into log (NUL-terminated). */
static int load_capturing(struct config *cfg, const char *path, char *err, size_t errlen, char *log,
			  size_t loglen)
{
	FILE *tmp = tmpfile();
	cr_assert_not_null(tmp);
	int saved = dup(STDERR_FILENO);
	dup2(fileno(tmp), STDERR_FILENO);
	int rc = config_load_file(cfg, path, err, errlen);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	size_t n = fread(log, 1, loglen - 1, tmp);
	log[n] = '\0';
	fclose(tmp);
	return rc;
}

static int load_text(struct config *cfg, const char *text, char *err, size_t errlen)
{
	config_defaults(cfg);
	return config_load_file(cfg, write_cfg(text), err, errlen);
}

TestSuite(config, .fini = remove_cfg);

Test(config, defaults_are_zookeepers)
{
	struct config c;
	config_defaults(&c);
	cr_assert_eq(c.tick_time_ms, 2000);
	cr_assert_str_eq(c.data_dir, "./data");
	cr_assert_eq(c.client_port, 2181);
	cr_assert_str_eq(c.client_port_address, "0.0.0.0");
	cr_assert_eq(c.max_client_cnxns, 60);
	cr_assert_eq(c.min_session_timeout_ms, -1);
	cr_assert_eq(c.max_session_timeout_ms, -1);
	cr_assert_str_eq(c.four_lw_whitelist, "srvr");
	cr_assert_eq(c.jute_maxbuffer, 1048575);
	cr_assert_str_eq(c.super_digest, "");
	cr_assert_eq(c.cores, 0);
	cr_assert_eq(c.log_level, LOG_LEVEL_INFO);
	cr_assert_eq(c.snap_count, 100000);
	cr_assert(c.force_sync);
	cr_assert_eq(c.autopurge_snap_retain_count, 3);
	cr_assert_eq(c.autopurge_purge_interval_hours, 0);
	cr_assert_eq(c.init_limit_ticks, 10);
	cr_assert_eq(c.sync_limit_ticks, 5);
	cr_assert_eq(c.global_outstanding_limit, 1000);
	cr_assert_eq(c.prealloc_size_kb, 65536);
	cr_assert(c.admin_enable_server);
	cr_assert_eq(c.admin_server_port, 8080);
	cr_assert(c.standalone_enabled);
	cr_assert_not(c.reconfig_enabled);
	cr_assert_eq(c.peer_type, CONFIG_PEER_PARTICIPANT);
	cr_assert_eq(c.server_count, 0);
}

Test(config, finish_derives_timeouts_and_log_dir)
{
	struct config c;
	char err[256];
	config_defaults(&c);
	c.tick_time_ms = 3000;
	cr_assert_eq(config_finish(&c, err, sizeof err), 0);
	cr_assert_eq(c.min_session_timeout_ms, 6000);
	cr_assert_eq(c.max_session_timeout_ms, 60000);
	cr_assert_str_eq(c.data_log_dir, "./data");
	cr_assert_geq(c.cores, 1);

	config_defaults(&c);
	c.min_session_timeout_ms = 1000;
	cr_assert_eq(config_finish(&c, err, sizeof err), 0);
	cr_assert_eq(c.min_session_timeout_ms, 1000);
	cr_assert_eq(c.max_session_timeout_ms, 40000);
}

Test(config, finish_rejects_min_above_max)
{
	struct config c;
	char err[256] = "";
	config_defaults(&c);
	c.min_session_timeout_ms = 50000; /* max defaults to 40000 */
	cr_assert_eq(config_finish(&c, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "minSessionTimeout 50000"), "%s", err);
	cr_assert(strstr(err, "maxSessionTimeout 40000"), "%s", err);
}

Test(config, finish_rejects_tick_overflowing_timeout)
{
	struct config c;
	char err[256] = "";
	config_defaults(&c);
	c.tick_time_ms = 200000000;
	cr_assert_eq(config_finish(&c, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "tickTime"), "%s", err);
}

Test(config, file_keys_comments_and_whitespace)
{
	struct config c;
	char err[256] = "";
	int rc = load_text(
	    &c,
	    "# a sample zoo.cfg\n"
	    "! also a comment\n"
	    "\n"
	    "   tickTime = 3000   \n"
	    "\tdataDir=/var/lib/zookeeper\n"
	    "clientPort: 2182\n"
	    "maxClientCnxns 100\n"
	    "clientPortAddress=127.0.0.1\n"
	    "4lw.commands.whitelist=srvr, ruok, mntr\n"
	    "jute.maxbuffer=4194304\n"
	    "DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n"
	    "minSessionTimeout=5000\n"
	    "maxSessionTimeout=90000\n"
	    "snapCount=50000\n"
	    "forceSync=no\n"
	    "autopurge.snapRetainCount=5\n"
	    "autopurge.purgeInterval=24\n"
	    "initLimit=20\n"
	    "syncLimit=10\n"
	    "dataLogDir=/fast/log\n"
	    "preAllocSize=131072\n"
	    "globalOutstandingLimit=2000\n"
	    "electionPortBindRetry=0\n"
	    "admin.enableServer=FALSE\n"
	    "admin.serverPort=9090\n"
	    "admin.serverAddress=127.0.0.1\n"
	    "reconfigEnabled=true\n"
	    "standaloneEnabled=false\n"
	    "extendedTypesEnabled=True\n"
	    "peerType=Observer\n"
	    "server.1=zk1:2888:3888\n"
	    "server.2=zk2:2888:3888;2181\n",
	    err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(c.tick_time_ms, 3000);
	cr_assert_str_eq(c.data_dir, "/var/lib/zookeeper");
	cr_assert_eq(c.client_port, 2182);
	cr_assert_eq(c.max_client_cnxns, 100);
	cr_assert_str_eq(c.client_port_address, "127.0.0.1");
	cr_assert_str_eq(c.four_lw_whitelist, "srvr, ruok, mntr");
	cr_assert_eq(c.jute_maxbuffer, 4194304);
	cr_assert_str_eq(c.super_digest, "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
	cr_assert_eq(c.min_session_timeout_ms, 5000);
	cr_assert_eq(c.max_session_timeout_ms, 90000);
	cr_assert_eq(c.snap_count, 50000);
	cr_assert_not(c.force_sync);
	cr_assert_eq(c.autopurge_snap_retain_count, 5);
	cr_assert_eq(c.autopurge_purge_interval_hours, 24);
	cr_assert_eq(c.init_limit_ticks, 20);
	cr_assert_eq(c.sync_limit_ticks, 10);
	cr_assert_str_eq(c.data_log_dir, "/fast/log");
	cr_assert_eq(c.prealloc_size_kb, 131072);
	cr_assert_eq(c.global_outstanding_limit, 2000);
	cr_assert_eq(c.election_port_bind_retry, 0);
	cr_assert_not(c.admin_enable_server);
	cr_assert_eq(c.admin_server_port, 9090);
	cr_assert_str_eq(c.admin_server_address, "127.0.0.1");
	cr_assert(c.reconfig_enabled);
	cr_assert_not(c.standalone_enabled);
	cr_assert(c.extended_types_enabled);
	cr_assert_eq(c.peer_type, CONFIG_PEER_OBSERVER);
	cr_assert_eq(c.server_count, 2);
	cr_assert_eq(c.servers[0].id, 1);
	cr_assert_str_eq(c.servers[0].raw, "zk1:2888:3888");
	cr_assert_eq(c.servers[1].id, 2);
	cr_assert_str_eq(c.servers[1].raw, "zk2:2888:3888;2181");
}

Test(config, properties_continuations_escapes_and_crlf)
{
	struct config c;
	char err[256] = "";
	int rc = load_text(&c,
			   "dataDir=/a/\\\n"
			   "    b\r\n"
			   "clientPortAddress=\\u0031\\u0032\\u0037.0.0.1\r\n"
			   "4lw.commands.whitelist=a\\\\b\r"
			   "tickTime=2500\n"
			   "server.3=h\\:1\\:2\n",
			   err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(c.data_dir, "/a/b");
	cr_assert_str_eq(c.client_port_address, "127.0.0.1");
	cr_assert_str_eq(c.four_lw_whitelist, "a\\b");
	cr_assert_eq(c.tick_time_ms, 2500);
	cr_assert_str_eq(c.servers[0].raw, "h:1:2");
}

Test(config, malformed_unicode_escape_is_an_error)
{
	struct config c;
	char err[256] = "";
	cr_assert_eq(load_text(&c, "\n\ndataDir=/x\\u12\n", err, sizeof err), -EINVAL);
	cr_assert(strstr(err, ":3: "), "%s", err);
}

Test(config, last_duplicate_key_wins)
{
	struct config c;
	char err[256] = "";
	cr_assert_eq(load_text(&c,
			       "clientPort=1\nclientPort=2\nserver.1=a:1:2\nserver.2=c:1:2\n"
			       "server.1=b:1:2\n",
			       err, sizeof err),
		     0, "%s", err);
	cr_assert_eq(c.client_port, 2);
	cr_assert_eq(c.server_count, 2);
	cr_assert_str_eq(c.servers[0].raw, "b:1:2");
	cr_assert_str_eq(c.servers[0].host, "b");
}

Test(config, unknown_key_warns_and_succeeds)
{
	struct config c;
	char err[256] = "", log[4096];
	config_defaults(&c);
	const char *path = write_cfg("tickTime=2100\nno.such.key=1\ncores=3\nclientPort=2190\n");
	int rc = load_capturing(&c, path, err, sizeof err, log, sizeof log);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(c.tick_time_ms, 2100);
	cr_assert_eq(c.client_port, 2190);
	cr_assert(strstr(log, "WARN"), "%s", log);
	cr_assert(strstr(log, "unknown key 'no.such.key'"), "%s", log);
	cr_assert(strstr(log, ":2: "), "%s", log);
	/* cores is a flag, not a zoo.cfg key. */
	cr_assert(strstr(log, "unknown key 'cores'"), "%s", log);
	cr_assert_eq(c.cores, 0);
}

Test(config, low_retain_count_is_raised_with_warning)
{
	struct config c;
	char err[256] = "", log[4096];
	config_defaults(&c);
	const char *path = write_cfg("autopurge.snapRetainCount=1\nsnapCount=1\n");
	cr_assert_eq(load_capturing(&c, path, err, sizeof err, log, sizeof log), 0, "%s", err);
	cr_assert_eq(c.autopurge_snap_retain_count, 3);
	cr_assert_eq(c.snap_count, 2);
	cr_assert(strstr(log, "autopurge.snapRetainCount=1"), "%s", log);
}

/* Loads one line and expects an error naming key and value. */
static void expect_bad(const char *line, const char *key, const char *value)
{
	struct config c;
	char err[512] = "";
	cr_assert_eq(load_text(&c, line, err, sizeof err), -EINVAL, "accepted: %s", line);
	cr_assert(strstr(err, key), "'%s' does not name %s", err, key);
	cr_assert(strstr(err, value), "'%s' does not name %s", err, value);
	cr_assert(strstr(err, cfg_path), "'%s' does not name the file", err);
}

Test(config, invalid_values_name_key_and_value)
{
	expect_bad("tickTime=abc\n", "tickTime", "'abc'");
	expect_bad("tickTime=0\n", "tickTime", "'0'");
	expect_bad("tickTime=12x\n", "tickTime", "'12x'");
	expect_bad("tickTime=\n", "tickTime", "''");
	expect_bad("clientPort=-1\n", "clientPort", "'-1'");
	expect_bad("clientPort=65536\n", "clientPort", "'65536'");
	expect_bad("maxClientCnxns=99999999999\n", "maxClientCnxns", "'99999999999'");
	expect_bad("minSessionTimeout=-2\n", "minSessionTimeout", "'-2'");
	expect_bad("forceSync=maybe\n", "forceSync", "'maybe'");
	expect_bad("reconfigEnabled=1\n", "reconfigEnabled", "'1'");
	expect_bad("peerType=leader\n", "peerType", "'leader'");
	expect_bad("jute.maxbuffer=-5\n", "jute.maxbuffer", "'-5'");
	expect_bad("dataDir=\n", "dataDir", "''");
	expect_bad("admin.serverPort=0\n", "admin.serverPort", "'0'");
	expect_bad("DigestAuthenticationProvider.superDigest=nocolon\n",
		   "DigestAuthenticationProvider.superDigest", "'nocolon'");
	expect_bad("server.x=a:1:2\n", "server.x", "server.N");
	expect_bad("server.=a:1:2\n", "server.", "server.N");
}

Test(config, enforce_quota_is_off_unless_the_file_says_true)
{
	/* ZooKeeper's zoo.cfg key enforceQuota becomes the system property
	 * zookeeper.enforceQuota (default false), as every key it does not
	 * know; Ringkeeper reads the key itself. */
	struct config c;
	config_defaults(&c);
	cr_assert_not(c.enforce_quota);
	char err[512] = "";
	cr_assert_eq(load_text(&c, "enforceQuota=TRUE\n", err, sizeof err), 0, "%s", err);
	cr_assert(c.enforce_quota);
	expect_bad("enforceQuota=yes\n", "enforceQuota", "'yes'");
}

Test(config, overlong_values_and_lines_are_errors)
{
	struct config c;
	char err[512] = "";
	char *text = malloc(CONFIG_LINE_MAX + 64);
	strcpy(text, "dataDir=");
	memset(text + 8, 'd', CONFIG_PATH_MAX);
	strcpy(text + 8 + CONFIG_PATH_MAX, "\n");
	cr_assert_eq(load_text(&c, text, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "dataDir is too long"), "%s", err);
	memset(text + 8, 'd', CONFIG_LINE_MAX);
	strcpy(text + 8 + CONFIG_LINE_MAX, "\n");
	cr_assert_eq(load_text(&c, text, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "line longer than"), "%s", err);
	free(text);
}

Test(config, missing_file_is_an_error)
{
	struct config c;
	char err[256] = "";
	config_defaults(&c);
	cr_assert_eq(config_load_file(&c, "/nonexistent/zoo.cfg", err, sizeof err), -ENOENT);
	cr_assert(strstr(err, "/nonexistent/zoo.cfg"), "%s", err);
}

static int parse(struct config *c, char *err, size_t errlen, int argc, ...)
{
	char *argv[16];
	va_list ap;
	va_start(ap, argc);
	argv[0] = "ringkeeper";
	for (int i = 1; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	config_defaults(c);
	return config_parse_args(c, argc, argv, err, errlen);
}

Test(config, flags_override_file_in_any_order)
{
	struct config c;
	char err[256] = "";
	char *path = strdup(write_cfg("clientPort=2222\ndataDir=/from/file\ntickTime=2500\n"));
	cr_assert_eq(parse(&c, err, sizeof err, 4, "--port", "3000", path), 0, "%s", err);
	cr_assert_eq(c.client_port, 3000);
	cr_assert_str_eq(c.data_dir, "/from/file");
	cr_assert_eq(c.tick_time_ms, 2500);

	cr_assert_eq(parse(&c, err, sizeof err, 5, path, "--port=3001", "--data-dir", "/from/flag"),
		     0, "%s", err);
	cr_assert_eq(c.client_port, 3001);
	cr_assert_str_eq(c.data_dir, "/from/flag");
	free(path);
}

Test(config, cores_and_log_level_flags)
{
	struct config c;
	char err[256] = "";
	cr_assert_eq(parse(&c, err, sizeof err, 5, "--cores", "4", "--log-level", "DEBUG"), 0, "%s",
		     err);
	cr_assert_eq(c.cores, 4);
	cr_assert_eq(c.log_level, LOG_LEVEL_DEBUG);
	cr_assert_eq(config_finish(&c, err, sizeof err), 0);
	cr_assert_eq(c.cores, 4);
	cr_assert_eq(parse(&c, err, sizeof err, 3, "--cores", "5000"), -EINVAL);
	cr_assert(strstr(err, "--cores"), "%s", err);
	cr_assert_eq(parse(&c, err, sizeof err, 3, "--log-level", "loud"), -EINVAL);
	cr_assert(strstr(err, "'loud'"), "%s", err);
}

Test(config, no_args_keeps_defaults)
{
	struct config c, d;
	char err[256] = "";
	cr_assert_eq(parse(&c, err, sizeof err, 1), 0);
	config_defaults(&d);
	cr_assert(memcmp(&c, &d, sizeof c) == 0);
}

Test(config, help_wins_over_everything)
{
	struct config c;
	char err[256] = "";
	cr_assert_eq(parse(&c, err, sizeof err, 4, "--bogus", "/nonexistent", "--help"),
		     CONFIG_ARGS_HELP);
	cr_assert_eq(parse(&c, err, sizeof err, 2, "-h"), CONFIG_ARGS_HELP);
}

Test(config, version_wins_over_all_but_help)
{
	struct config c;
	char err[256] = "";
	cr_assert_eq(parse(&c, err, sizeof err, 3, "/nonexistent", "--version"),
		     CONFIG_ARGS_VERSION);
	cr_assert_eq(parse(&c, err, sizeof err, 3, "--version", "--help"), CONFIG_ARGS_HELP);
}

Test(config, check_config_is_a_switch_anywhere)
{
	struct config c;
	char err[256] = "";
	cr_assert_eq(parse(&c, err, sizeof err, 1), 0);
	cr_assert_not(c.check_only);
	/* It takes no value: the port after it stays a flag's. */
	cr_assert_eq(parse(&c, err, sizeof err, 4, "--check-config", "--port", "2200"), 0, "%s",
		     err);
	cr_assert(c.check_only);
	cr_assert_eq(c.client_port, 2200);
	cr_assert_eq(parse(&c, err, sizeof err, 4, "--port", "2201", "--check-config"), 0, "%s",
		     err);
	cr_assert(c.check_only);
	cr_assert_eq(c.client_port, 2201);
	/* The file after it is still the config file, and must exist. */
	cr_assert_eq(parse(&c, err, sizeof err, 3, "--check-config", "/nonexistent/zoo.cfg"),
		     -ENOENT);
	cr_assert(strstr(err, "/nonexistent/zoo.cfg"), "%s", err);
}

Test(config, bad_command_lines)
{
	struct config c;
	char err[256] = "";
	cr_assert_eq(parse(&c, err, sizeof err, 2, "--verbose"), -EINVAL);
	cr_assert(strstr(err, "--verbose"), "%s", err);
	cr_assert_eq(parse(&c, err, sizeof err, 2, "--port"), -EINVAL);
	cr_assert(strstr(err, "needs a value"), "%s", err);
	cr_assert_eq(parse(&c, err, sizeof err, 3, "a.cfg", "b.cfg"), -EINVAL);
	cr_assert(strstr(err, "more than one"), "%s", err);
	cr_assert_eq(parse(&c, err, sizeof err, 3, "--port", "-1"), -EINVAL);
	cr_assert(strstr(err, "--port"), "%s", err);
	cr_assert_eq(parse(&c, err, sizeof err, 2, "/nonexistent/zoo.cfg"), -ENOENT);
}

Test(config, print_is_conf_style)
{
	struct config c;
	char err[256] = "";
	cr_assert_eq(load_text(&c,
			       "DigestAuthenticationProvider.superDigest=super:secret\n"
			       "server.7=h:1:2\n",
			       err, sizeof err),
		     0);
	cr_assert_eq(config_finish(&c, err, sizeof err), 0);
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	config_print(&c, out);
	fclose(out);
	cr_assert_eq(strncmp(buf,
			     "clientPort=2181\ndataDir=./data\ndataLogDir=./data\ntickTime=2000\n"
			     "maxClientCnxns=60\nminSessionTimeout=4000\nmaxSessionTimeout=40000\n",
			     strlen("clientPort=2181\ndataDir=./data\ndataLogDir=./data\n"
				    "tickTime=2000\nmaxClientCnxns=60\nminSessionTimeout=4000\n"
				    "maxSessionTimeout=40000\n")),
		     0, "%s", buf);
	cr_assert(strstr(buf, "\nforceSync=yes\n"), "%s", buf);
	cr_assert(strstr(buf, "\npeerType=participant\n"), "%s", buf);
	cr_assert(strstr(buf, "\nserver.7=h:1:2\n"), "%s", buf);
	cr_assert(strstr(buf, "\n4lw.commands.whitelist=srvr\n"), "%s", buf);
	cr_assert_null(strstr(buf, "secret"), "%s", buf);
	free(buf);
}

Test(config, usage_lists_flags)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	config_usage(out);
	fclose(out);
	cr_assert(strstr(buf, "--port"));
	cr_assert(strstr(buf, "--data-dir"));
	cr_assert(strstr(buf, "--cores"));
	cr_assert(strstr(buf, "--log-level"));
	free(buf);
}

/* ---- ensemble: server.N lines, myid, client address, peer type ---- */

static char data_dir[64];

/* A fresh dataDir holding myid_text as its myid file (none when NULL). */
static const char *make_data_dir(const char *myid_text)
{
	snprintf(data_dir, sizeof data_dir, "/tmp/rk_test_data_XXXXXX");
	cr_assert_not_null(mkdtemp(data_dir));
	if (myid_text) {
		char path[128];
		snprintf(path, sizeof path, "%s/myid", data_dir);
		FILE *f = fopen(path, "w");
		cr_assert_not_null(f);
		fputs(myid_text, f);
		fclose(f);
	}
	return data_dir;
}

static void remove_data_dir(void)
{
	char path[128];
	if (!data_dir[0])
		return;
	snprintf(path, sizeof path, "%s/myid", data_dir);
	unlink(path);
	rmdir(data_dir);
	data_dir[0] = '\0';
}

static void ensemble_fini(void)
{
	remove_cfg();
	remove_data_dir();
}

TestSuite(ensemble, .fini = ensemble_fini);

static const char three_servers[] = "server.1=127.0.0.1:2888:3888;127.0.0.1:2181\n"
				    "server.2=127.0.0.1:2889:3889;127.0.0.1:2182\n"
				    "server.3=127.0.0.1:2890:3890;127.0.0.1:2183\n";

/* Loads "dataDir=<a dir with myid_text>" plus text, then config_finish()
 * with stderr captured into log (NUL-terminated). Returns finish's rc;
 * the load must succeed. */
static int finish_text(struct config *c, const char *myid_text, const char *text, char *err,
		       size_t errlen, char *log, size_t loglen)
{
	char *full = NULL;
	cr_assert_geq(asprintf(&full, "dataDir=%s\n%s", make_data_dir(myid_text), text), 0);
	cr_assert_eq(load_text(c, full, err, errlen), 0, "%s", err);
	free(full);
	FILE *tmp = tmpfile();
	cr_assert_not_null(tmp);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	dup2(fileno(tmp), STDERR_FILENO);
	int rc = config_finish(c, err, errlen);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	size_t n = fread(log, 1, loglen - 1, tmp);
	log[n] = '\0';
	fclose(tmp);
	return rc;
}

Test(ensemble, seed_line_is_parsed)
{
	struct config c;
	char err[512] = "";
	cr_assert_eq(load_text(&c, "server.1=zk1:2888:3888;2181\n", err, sizeof err), 0, "%s", err);
	cr_assert_eq(c.server_count, 1);
	const struct config_member *m = &c.servers[0];
	cr_assert_eq(m->id, 1);
	cr_assert_str_eq(m->key, "server.1");
	cr_assert_str_eq(m->host, "zk1");
	cr_assert_eq(m->quorum_port, 2888);
	cr_assert_eq(m->election_port, 3888);
	cr_assert_not(m->observer);
	cr_assert_str_eq(m->client_address, "0.0.0.0"); /* a bare port binds every address */
	cr_assert_eq(m->client_port, 2181);
	cr_assert_str_eq(m->raw, "zk1:2888:3888;2181");
}

Test(ensemble, types_and_client_parts)
{
	struct config c;
	char err[512] = "";
	cr_assert_eq(load_text(&c,
			       "server.1=a:1:2\n"
			       "server.2=b:3:4:observer\n"
			       "server.3=c:5:6:Participant;10.0.0.3:2181\n"
			       "server.4=d:7:8: OBSERVER ; 2184\n",
			       err, sizeof err),
		     0, "%s", err);
	cr_assert_eq(c.server_count, 4);
	cr_assert_not(c.servers[0].observer);
	cr_assert_str_eq(c.servers[0].client_address, "");
	cr_assert_eq(c.servers[0].client_port, 0);
	cr_assert(c.servers[1].observer);
	cr_assert_eq(c.servers[1].quorum_port, 3);
	cr_assert_eq(c.servers[1].election_port, 4);
	cr_assert_not(c.servers[2].observer);
	cr_assert_str_eq(c.servers[2].client_address, "10.0.0.3");
	cr_assert_eq(c.servers[2].client_port, 2181);
	cr_assert(c.servers[3].observer);
	cr_assert_eq(c.servers[3].client_port, 2184);
}

Test(ensemble, ipv6_literals_in_brackets)
{
	struct config c;
	char err[512] = "", line[256];
	cr_assert_eq(load_text(&c,
			       "server.1=[::1]:2888:3888:observer;[::1]:2181\n"
			       "server.2=[2001:db8::2]:2888:3888\n",
			       err, sizeof err),
		     0, "%s", err);
	cr_assert_str_eq(c.servers[0].host, "::1");
	cr_assert_eq(c.servers[0].quorum_port, 2888);
	cr_assert_eq(c.servers[0].election_port, 3888);
	cr_assert(c.servers[0].observer);
	cr_assert_str_eq(c.servers[0].client_address, "::1");
	cr_assert_eq(c.servers[0].client_port, 2181);
	cr_assert_str_eq(c.servers[1].host, "2001:db8::2");
	config_member_format(&c.servers[0], line, sizeof line);
	cr_assert_str_eq(line, "[::1]:2888:3888:observer;[::1]:2181");
	config_member_format(&c.servers[1], line, sizeof line);
	cr_assert_str_eq(line, "[2001:db8::2]:2888:3888:participant");
}

Test(ensemble, bad_server_lines_name_key_and_problem)
{
	expect_bad("server.1=zk1:2888\n", "server.1", "missing ports");
	expect_bad("server.1=zk1\n", "server.1", "missing ports");
	expect_bad("server.1=:2888:3888\n", "server.1", "empty host");
	expect_bad("server.1=zk1:0:3888\n", "server.1", "quorum port '0'");
	expect_bad("server.1=zk1:2888:65536\n", "server.1", "election port '65536'");
	expect_bad("server.1=zk1:x:3888\n", "server.1", "quorum port 'x'");
	expect_bad("server.1=zk1:2888:2888\n", "server.1", "must differ");
	expect_bad("server.1=zk1:2888:3888:leader\n", "server.1", "'leader'");
	expect_bad("server.1=zk1:2888:3888:observer:x\n", "server.1", "too many");
	expect_bad("server.1=zk1:2888:3888;2181;2182\n", "server.1", "more than one ';'");
	expect_bad("server.1=zk1:2888:3888;h:p\n", "server.1", "client port 'p'");
	expect_bad("server.1=zk1:2888:3888;a:b:2181\n", "server.1", "client part");
	expect_bad("server.1=zk1:2888:3888;0\n", "server.1", "client port '0'");
	expect_bad("server.1=[::1:2888:3888\n", "server.1", "matching ']'");
	expect_bad("server.1=[::1]2888:3888\n", "server.1", "no ':' after ']'");
	expect_bad("server.1=a:1:2|b:1:2\n", "server.1", "multiple addresses");
	expect_bad("server.-1=a:1:2\n", "server.-1", "server.N");
	expect_bad("server.1=a:1:2\nserver.01=b:3:4\n", "duplicate server id 1", "server.01");
}

Test(ensemble, myid_file_names_this_server)
{
	struct config c;
	char err[512] = "", log[4096];
	cr_assert_eq(finish_text(&c, " 2 \n", three_servers, err, sizeof err, log, sizeof log), 0,
		     "%s", err);
	cr_assert_eq(c.my_id, 2);
	cr_assert(config_is_ensemble(&c));
	const struct config_member *self = config_self(&c);
	cr_assert_not_null(self);
	cr_assert_eq(self->id, 2);
	cr_assert_eq(self->quorum_port, 2889);
	/* clientPort and clientPortAddress come from the server line. */
	cr_assert_eq(c.client_port, 2182);
	cr_assert_str_eq(c.client_port_address, "127.0.0.1");
	cr_assert_eq(c.peer_type, CONFIG_PEER_PARTICIPANT);
}

Test(ensemble, myid_flag_overrides_file)
{
	struct config c;
	char err[512] = "";
	char *text = NULL;
	cr_assert_geq(asprintf(&text, "dataDir=%s\n%s", make_data_dir("1\n"), three_servers), 0);
	char *path = strdup(write_cfg(text));
	cr_assert_eq(parse(&c, err, sizeof err, 3, path, "--myid=3"), 0, "%s", err);
	cr_assert_eq(c.my_id, 3);
	cr_assert_eq(config_finish(&c, err, sizeof err), 0, "%s", err);
	cr_assert_eq(c.my_id, 3);
	cr_assert_eq(config_self(&c)->id, 3);
	cr_assert_eq(c.client_port, 2183);
	cr_assert_eq(parse(&c, err, sizeof err, 3, path, "--myid=9"), 0, "%s", err);
	cr_assert_eq(config_finish(&c, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "myid 9 (from --myid) is not among"), "%s", err);
	cr_assert_eq(parse(&c, err, sizeof err, 3, path, "--myid=x"), -EINVAL);
	cr_assert(strstr(err, "--myid"), "%s", err);
	free(path);
	free(text);
}

Test(ensemble, myid_missing_wrong_or_garbled)
{
	struct config c;
	char err[512] = "", log[4096];
	cr_assert_eq(finish_text(&c, NULL, three_servers, err, sizeof err, log, sizeof log),
		     -EINVAL);
	cr_assert(strstr(err, "myid file"), "%s", err);
	cr_assert(strstr(err, "is missing"), "%s", err);
	cr_assert(strstr(err, data_dir), "%s", err);
	remove_data_dir();

	cr_assert_eq(finish_text(&c, "4\n", three_servers, err, sizeof err, log, sizeof log),
		     -EINVAL);
	cr_assert(strstr(err, "myid 4"), "%s", err);
	cr_assert(strstr(err, "not among the server.N lines"), "%s", err);
	remove_data_dir();

	cr_assert_eq(finish_text(&c, "two\n", three_servers, err, sizeof err, log, sizeof log),
		     -EINVAL);
	cr_assert(strstr(err, "/myid: 'two' is not a server id"), "%s", err);
	remove_data_dir();

	cr_assert_eq(finish_text(&c, "1 2\n", three_servers, err, sizeof err, log, sizeof log),
		     -EINVAL);
	cr_assert(strstr(err, "'1 2'"), "%s", err);
}

Test(ensemble, one_server_line_runs_standalone)
{
	struct config c;
	char err[512] = "", log[4096];
	/* No myid needed, and the line's client port still applies when it is
	 * this server's. */
	cr_assert_eq(finish_text(&c, NULL, "server.1=zk1:2888:3888;2181\n", err, sizeof err, log,
				 sizeof log),
		     0, "%s", err);
	cr_assert_not(config_is_ensemble(&c));
	cr_assert_null(config_self(&c));
	cr_assert(strstr(log, "running standalone"), "%s", log);
	remove_data_dir();

	/* standaloneEnabled=false makes one line an ensemble of one. */
	cr_assert_eq(finish_text(&c, NULL, "standaloneEnabled=false\nserver.1=zk1:2888:3888;2181\n",
				 err, sizeof err, log, sizeof log),
		     -EINVAL);
	cr_assert(strstr(err, "myid"), "%s", err);
	remove_data_dir();
	cr_assert_eq(finish_text(&c, "1", "standaloneEnabled=false\nserver.1=zk1:2888:3888;2181\n",
				 err, sizeof err, log, sizeof log),
		     0, "%s", err);
	cr_assert(config_is_ensemble(&c));
	cr_assert_eq(config_self(&c)->id, 1);
}

Test(ensemble, is_ensemble_counts_participants)
{
	struct config c;
	char err[512] = "";
	config_defaults(&c);
	cr_assert_not(config_is_ensemble(&c));
	cr_assert_null(config_self(&c));
	cr_assert_eq(load_text(&c, "server.1=a:1:2\nserver.2=b:1:2\n", err, sizeof err), 0);
	cr_assert(config_is_ensemble(&c));
	c.my_id = 2;
	cr_assert_eq(config_self(&c), &c.servers[1]);
	cr_assert_eq(load_text(&c, "standaloneEnabled=false\n", err, sizeof err), 0);
	cr_assert_not(config_is_ensemble(&c)); /* no server lines: standalone */
}

Test(ensemble, observers_need_a_quorum)
{
	struct config c;
	char err[512] = "", log[4096];
	cr_assert_eq(finish_text(&c, "1", "server.1=a:1:2\nserver.2=b:1:2:observer\n", err,
				 sizeof err, log, sizeof log),
		     -EINVAL);
	cr_assert(strstr(err, "observers need a quorum"), "%s", err);
	remove_data_dir();
	cr_assert_eq(
	    finish_text(&c, "1", "server.1=a:1:2:observer\n", err, sizeof err, log, sizeof log),
	    -EINVAL);
	cr_assert(strstr(err, "only observers"), "%s", err);
	remove_data_dir();
	/* Two participants and an observer: legal, with ZooKeeper's warning. */
	cr_assert_eq(finish_text(&c, "3",
				 "server.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2:observer\n", err,
				 sizeof err, log, sizeof log),
		     0, "%s", err);
	cr_assert(strstr(log, "no server failure will be tolerated"), "%s", log);
	cr_assert_eq(c.peer_type, CONFIG_PEER_OBSERVER);
}

Test(ensemble, peer_type_follows_server_line_with_warning)
{
	struct config c;
	char err[512] = "", log[4096];
	cr_assert_eq(finish_text(&c, "1",
				 "peerType=observer\n"
				 "server.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n",
				 err, sizeof err, log, sizeof log),
		     0, "%s", err);
	cr_assert_eq(c.peer_type, CONFIG_PEER_PARTICIPANT);
	cr_assert(strstr(log, "WARN"), "%s", log);
	cr_assert(strstr(log, "peerType=observer does not match server.1=a:1:2"), "%s", log);
	remove_data_dir();

	cr_assert_eq(finish_text(&c, "3",
				 "server.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2:observer\n", err,
				 sizeof err, log, sizeof log),
		     0, "%s", err);
	cr_assert_eq(c.peer_type, CONFIG_PEER_OBSERVER);
	cr_assert(strstr(log, "peerType=participant does not match server.3"), "%s", log);
	remove_data_dir();

	cr_assert_eq(finish_text(&c, "3",
				 "peerType=observer\n"
				 "server.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2:observer\n",
				 err, sizeof err, log, sizeof log),
		     0, "%s", err);
	cr_assert_null(strstr(log, "does not match"), "%s", log);
}

Test(ensemble, explicit_client_address_must_agree)
{
	struct config c;
	char err[512] = "", log[4096];
	cr_assert_eq(finish_text(&c, "1",
				 "clientPort=2199\n"
				 "server.1=127.0.0.1:2888:3888;127.0.0.1:2181\n"
				 "server.2=127.0.0.1:2889:3889;127.0.0.1:2182\n",
				 err, sizeof err, log, sizeof log),
		     -EINVAL);
	cr_assert(strstr(err, "clientPort 2199 differs"), "%s", err);
	cr_assert(strstr(err, "server.1="), "%s", err);
	remove_data_dir();

	cr_assert_eq(finish_text(&c, "1",
				 "clientPortAddress=10.1.1.1\n"
				 "server.1=127.0.0.1:2888:3888;127.0.0.1:2181\n"
				 "server.2=127.0.0.1:2889:3889;127.0.0.1:2182\n",
				 err, sizeof err, log, sizeof log),
		     -EINVAL);
	cr_assert(strstr(err, "clientPortAddress 10.1.1.1 differs"), "%s", err);
	remove_data_dir();

	/* Agreeing values, and a wildcard clientPortAddress, are fine. */
	cr_assert_eq(finish_text(&c, "2",
				 "clientPort=2182\nclientPortAddress=0.0.0.0\n"
				 "server.1=127.0.0.1:2888:3888;127.0.0.1:2181\n"
				 "server.2=127.0.0.1:2889:3889;127.0.0.1:2182\n",
				 err, sizeof err, log, sizeof log),
		     0, "%s", err);
	cr_assert_eq(c.client_port, 2182);
	cr_assert_str_eq(c.client_port_address, "127.0.0.1");
	remove_data_dir();

	/* No client part: clientPort and its default address stay. */
	cr_assert_eq(finish_text(&c, "2", "clientPort=2300\nserver.1=a:1:2\nserver.2=b:1:2\n", err,
				 sizeof err, log, sizeof log),
		     0, "%s", err);
	cr_assert_eq(c.client_port, 2300);
	cr_assert_str_eq(c.client_port_address, "0.0.0.0");
}

Test(ensemble, shared_port_on_one_host_is_an_error)
{
	struct config c;
	char err[512] = "", log[4096];
	cr_assert_eq(finish_text(&c, "1",
				 "server.1=127.0.0.1:2888:3888;2181\n"
				 "server.2=127.0.0.1:3888:3889;2182\n",
				 err, sizeof err, log, sizeof log),
		     -EINVAL);
	cr_assert(strstr(err, "port 3888 on 127.0.0.1 is both server.1's election port and "
			      "server.2's quorum port"),
		  "%s", err);
	remove_data_dir();
	cr_assert_eq(finish_text(&c, "1", "server.1=h:2888:3888;2888\nserver.2=i:2888:3888\n", err,
				 sizeof err, log, sizeof log),
		     -EINVAL);
	cr_assert(strstr(err, "server.1's quorum port and server.1's client port"), "%s", err);
	remove_data_dir();
	/* The seed's compose file: the same ports on different hosts. */
	cr_assert_eq(finish_text(&c, "1",
				 "server.1=zk1:2888:3888;2181\nserver.2=zk2:2888:3888;2181\n"
				 "server.3=zk3:2888:3888;2181\n",
				 err, sizeof err, log, sizeof log),
		     0, "%s", err);
	cr_assert_eq(c.client_port, 2181);
	cr_assert_str_eq(c.client_port_address, "0.0.0.0");
}

Test(ensemble, print_has_confs_quorum_block)
{
	struct config c;
	char err[512] = "", log[4096];
	cr_assert_eq(finish_text(&c, "1",
				 "tickTime=200\n"
				 "server.3=127.0.0.1:28883:38883:observer;127.0.0.1:21883\n"
				 "server.1=127.0.0.1:28881:38881;127.0.0.1:21881\n"
				 "server.2=127.0.0.1:28882:38882\n",
				 err, sizeof err, log, sizeof log),
		     0, "%s", err);
	char *buf = NULL, *expected = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	config_print(&c, out);
	fclose(out);
	/* What Apache ZooKeeper 3.8's conf prints after maxSessionTimeout. */
	cr_assert_geq(asprintf(&expected,
			       "clientPort=21881\ndataDir=%s\ndataLogDir=%s\ntickTime=200\n"
			       "maxClientCnxns=60\nminSessionTimeout=400\nmaxSessionTimeout=4000\n"
			       "serverId=1\ninitLimit=10\nsyncLimit=5\nelectionAlg=3\n"
			       "electionPort=38881\nquorumPort=28881\npeerType=0\nmembership: \n"
			       "server.1=127.0.0.1:28881:38881:participant;127.0.0.1:21881\n"
			       "server.2=127.0.0.1:28882:38882:participant\n"
			       "server.3=127.0.0.1:28883:38883:observer;127.0.0.1:21883\n"
			       "version=0\nclientPortAddress=127.0.0.1\n",
			       data_dir, data_dir),
		      0);
	cr_assert_eq(strncmp(buf, expected, strlen(expected)), 0, "%s", buf);
	/* Printed once, in the block, not again with the rest. */
	cr_assert_null(strstr(buf + strlen(expected), "initLimit="), "%s", buf);
	cr_assert_null(strstr(buf + strlen(expected), "peerType="), "%s", buf);
	cr_assert_null(strstr(buf + strlen(expected), "server."), "%s", buf);
	cr_assert_null(strstr(buf, "myid"), "%s", buf);
	free(expected);
	free(buf);
}

Test(ensemble, ids_fit_the_session_id_byte)
{
	struct config c;
	char err[512] = "", log[4096];
	cr_assert_eq(finish_text(&c, "1", "server.1=a:1:2\nserver.256=b:1:2\n", err, sizeof err,
				 log, sizeof log),
		     -EINVAL);
	cr_assert(strstr(err, "server.256: server ids go up to 255"), "%s", err);
	remove_data_dir();
	cr_assert_eq(finish_text(&c, "1",
				 "extendedTypesEnabled=true\nserver.1=a:1:2\nserver.255=b:1:2\n",
				 err, sizeof err, log, sizeof log),
		     -EINVAL);
	cr_assert(strstr(err, "server.255: server ids go up to 254 with extendedTypesEnabled"),
		  "%s", err);
	remove_data_dir();
	cr_assert_eq(finish_text(&c, "255", "server.1=a:1:2\nserver.255=b:1:2\n", err, sizeof err,
				 log, sizeof log),
		     0, "%s", err);
	remove_data_dir();
	/* One line runs standalone: its id names no sessions. */
	cr_assert_eq(finish_text(&c, NULL, "server.1000=a:1:2\n", err, sizeof err, log, sizeof log),
		     0, "%s", err);
}

Test(ensemble, usage_documents_myid)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	config_usage(out);
	fclose(out);
	cr_assert(strstr(buf, "--myid N"), "%s", buf);
	free(buf);
}

/* metricsProvider.*: ZooKeeper's default provider unless the Prometheus
 * one is named, which also opens httpHost:httpPort (defaults 0.0.0.0:7000,
 * as its provider's); any other class stops the server naming the key. */
Test(config, metrics_provider_keys)
{
	struct config c;
	char err[512] = "";
	config_defaults(&c);
	cr_assert_eq(config_finish(&c, err, sizeof err), 0, "%s", err);
	cr_assert_not(c.metrics_prometheus);
	cr_assert_eq(c.metrics_http_port, 7000);
	cr_assert_str_eq(c.metrics_http_host, "0.0.0.0");

	cr_assert_eq(load_text(&c,
			       "metricsProvider.className=org.apache.zookeeper.metrics.prometheus."
			       "PrometheusMetricsProvider\n"
			       "metricsProvider.httpPort=7001\n"
			       "metricsProvider.httpHost=127.0.0.1\n"
			       "metricsProvider.exportJvmInfo=false\n",
			       err, sizeof err),
		     0, "%s", err);
	cr_assert_eq(config_finish(&c, err, sizeof err), 0, "%s", err);
	cr_assert(c.metrics_prometheus);
	cr_assert_eq(c.metrics_http_port, 7001);
	cr_assert_str_eq(c.metrics_http_host, "127.0.0.1");

	cr_assert_eq(load_text(&c, "metricsProvider.className=com.example.Mine\n", err, sizeof err),
		     0, "%s", err);
	cr_assert_eq(config_finish(&c, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "metricsProvider.className"), "%s", err);
	expect_bad("metricsProvider.httpPort=0\n", "metricsProvider.httpPort", "'0'");
}
