/* SPDX-License-Identifier: MIT */
/* Library log lines and error names. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

static walrec_log_fn log_fn;
static void *log_arg;
static int log_max_level = -1; /* -1: not yet read from the environment */

void
walrec_log_set_handler(walrec_log_fn fn, void *arg, int max_level)
{
	log_fn = fn;
	log_arg = arg;
	log_max_level = max_level;
}

static int
log_level_now(void)
{
	if (log_max_level < 0) {
		const char *env = getenv("WALREC_LOG_LEVEL");
		log_max_level = env ? atoi(env) : WALREC_LOG_WARN;
	}
	return log_max_level;
}

void
wr_log(int level, const char *fmt, ...)
{
	if (level > log_level_now())
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (log_fn) {
		log_fn(log_arg, level, msg);
		return;
	}
	static const char *names[] = { "error", "warning", "info", "debug" };
	fprintf(stderr, "walrec: %s: %s\n",
		names[level < 0 ? 0 : level > 3 ? 3 : level], msg);
}

void
wr_log_syscall(const char *call, const char *path, int err)
{
	wr_log_error("%s %s: %s", call, path ? path : "", strerror(err));
}

const char *
walrec_strerror(int code)
{
	static const char *own[] = {
		[WALREC_ECORRUPT - WALREC_ECORRUPT] = "data failed an integrity check",
		[WALREC_EFORMAT - WALREC_ECORRUPT] = "not a walrec v1 file",
		[WALREC_EORDER - WALREC_ECORRUPT] = "event id not strictly increasing",
		[WALREC_ELATCHED - WALREC_ECORRUPT] =
			"stopped after an earlier write or sync failure",
		[WALREC_ECLOSED - WALREC_ECORRUPT] = "recorder or channel is shut down",
	};
	if (code < 0)
		code = -code;
	if (code == 0)
		return "success";
	if (code >= WALREC_ECORRUPT && code < WALREC_ECODE_END)
		return own[code - WALREC_ECORRUPT];
	if (code < WALREC_ECORRUPT)
		return strerror(code); /* glibc's table is static and thread-safe */
	return "unknown walrec error";
}
