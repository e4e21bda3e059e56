/* Logging and assertions: one formatted write(2) per line so lines from
 * different cores never interleave. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <errno.h>
#include <unistd.h>

static enum log_level level_min = LOG_LEVEL_INFO;
static _Thread_local int core_of_thread = -1;

static const char *const level_names[LOG_LEVEL_COUNT] = {"DEBUG", "INFO", "WARN", "ERROR"};

void log_set_level(enum log_level level)
{
	level_min = level;
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (int i = 0; i < LOG_LEVEL_COUNT; i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void log_set_core(int core_id)
{
	core_of_thread = core_id;
}

void log_write(enum log_level level, uint64_t session_id, const char *fmt, ...)
{
	if (level < level_min)
		return;
	char line[1024];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "%04d-%02d-%02d %02d:%02d:%02d.%03ld %-5s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, level_names[level]);
	if (core_of_thread >= 0)
		n += snprintf(line + n, sizeof line - n, "[core %d] ", core_of_thread);
	if (session_id)
		n += snprintf(line + n, sizeof line - n, "[session 0x%lx] ",
			      (unsigned long)session_id);
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

void rk_assert_fail(const char *file, int line, const char *expr)
{
	log_write(LOG_LEVEL_ERROR, 0, "assertion failed at %s:%d: %s", file, line, expr);
	abort();
}
