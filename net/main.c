/* ringkeeper: the server executable. Reads zoo.cfg and flags, then runs
 * the server until SIGTERM or SIGINT; or, with --check-config, validates
 * them and prints the effective configuration. */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <xxhash.h>

#include "core/log.h"
#include "core/snapshot.h"
#include "net/config.h"
#include "net/peer.h"
#include "net/server.h"
#include "storage/snapfile.h"
#include "storage/wal.h"

/* mkdir -p */
static int make_dirs(const char *path)
{
	char buf[CONFIG_PATH_MAX];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0750) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0750) && errno != EEXIST)
		return -errno;
	return 0;
}

/* The build defines these (CMakeLists.txt); a stray compile still builds. */
#ifndef RK_VERSION
#define RK_VERSION "unknown"
#endif
#ifndef RK_BUILD
#define RK_BUILD "unknown build type"
#endif
#define RK_STR2(x) #x
#define RK_STR(x)  RK_STR2(x)
#ifdef __clang__
#define RK_COMPILER                                                                                \
	"clang " RK_STR(__clang_major__) "." RK_STR(__clang_minor__) "." RK_STR(                   \
	    __clang_patchlevel__)
#else
#define RK_COMPILER "gcc " __VERSION__
#endif

/* jemalloc's, when it is the allocator: a sanitizer build has its own. */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));

static void print_version(FILE *out)
{
	fprintf(out, "ringkeeper %s (ZooKeeper 3.9 wire protocol)\n", RK_VERSION);
	fprintf(out, "build: %s, %s, %s %s\n", RK_BUILD, RK_COMPILER, __DATE__, __TIME__);
	const char *jemalloc = NULL;
	size_t len = sizeof jemalloc;
	if (!mallctl || mallctl("version", &jemalloc, &len, NULL, 0))
		jemalloc = NULL;
	unsigned xxh = XXH_versionNumber();
	/* jemalloc's version ends in "-<commits>-g<hash>": keep x.y.z. */
	fprintf(out, "libraries: %s%.*s, xxhash %u.%u.%u, %s\n",
		jemalloc ? "jemalloc " : "system malloc",
		jemalloc ? (int)strcspn(jemalloc, "-") : 0, jemalloc ? jemalloc : "", xxh / 10000,
		xxh / 100 % 100, xxh % 100, OpenSSL_version(OPENSSL_VERSION));
	/* What a rolling upgrade must keep: servers of one ensemble need the
	 * same peer protocol; a data dir needs formats the binary reads. */
	fprintf(out, "formats: txn log %u, snapshot %u (body %u), peer protocol %u\n",
		WAL_FORMAT_VERSION, SNAPFILE_FORMAT_VERSION, SNAP_BODY_VERSION, PEER_VERSION);
	struct utsname u;
	if (uname(&u) == 0)
		fprintf(out, "running on: %s %s %s\n", u.sysname, u.release, u.machine);
}

int main(int argc, char **argv)
{
	static struct config cfg;
	char err[512];
	config_defaults(&cfg);
	int rc = config_parse_args(&cfg, argc, argv, err, sizeof err);
	if (rc == CONFIG_ARGS_HELP) {
		config_usage(stdout);
		return 0;
	}
	if (rc == CONFIG_ARGS_VERSION) {
		print_version(stdout);
		return 0;
	}
	if (rc == 0)
		rc = config_finish(&cfg, err, sizeof err);
	if (rc) {
		fprintf(stderr, "ringkeeper: %s\n", err);
		return 2;
	}
	if (cfg.check_only) {
		config_print(&cfg, stdout);
		return 0;
	}
	log_set_level(cfg.log_level);
	/* Every client is a descriptor: take all the hard limit allows. */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	rc = make_dirs(cfg.data_dir);
	if (rc) {
		log_error("cannot create dataDir %s: %s", cfg.data_dir, strerror(-rc));
		return 1;
	}
	return server_run(&cfg) ? 1 : 0;
}
