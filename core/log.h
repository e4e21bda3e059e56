/* Logging and always-on assertions.
 * Log lines go to stderr as "<time> <LEVEL> [core N] [session 0x..] message".
 * RK_ASSERT stays on in release builds: it guards programmer errors only,
 * never bad input from a client or a peer. */
#ifndef RK_LOG_H
#define RK_LOG_H

#include <stdint.h>

enum log_level {
	LOG_LEVEL_DEBUG = 0, /* per-request detail */
	LOG_LEVEL_INFO,	     /* lifecycle: start, stop, session open/close */
	LOG_LEVEL_WARN,	     /* a client or peer misbehaved; the server goes on */
	LOG_LEVEL_ERROR,     /* an operation failed and the server degraded */
	LOG_LEVEL_COUNT,
};

void log_set_level(enum log_level level);
int log_level_parse(const char *name, enum log_level *out);
/* The calling thread's core number, printed in every line it logs. */
void log_set_core(int core_id);

void log_write(enum log_level level, uint64_t session_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_write(LOG_LEVEL_DEBUG, 0, __VA_ARGS__)
#define log_info(...)  log_write(LOG_LEVEL_INFO, 0, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_LEVEL_WARN, 0, __VA_ARGS__)
#define log_error(...) log_write(LOG_LEVEL_ERROR, 0, __VA_ARGS__)

_Noreturn void rk_assert_fail(const char *file, int line, const char *expr);

#define RK_ASSERT(e) ((e) ? (void)0 : rk_assert_fail(__FILE__, __LINE__, #e))

#endif
