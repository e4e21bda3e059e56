/* ringkeeper: the server executable. Reads zoo.cfg and flags, then runs
 * the server until SIGTERM or SIGINT. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "core/log.h"
#include "net/config.h"
#include "net/server.h"

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
	if (rc == 0)
		rc = config_finish(&cfg, err, sizeof err);
	if (rc) {
		fprintf(stderr, "ringkeeper: %s\n", err);
		return 2;
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
