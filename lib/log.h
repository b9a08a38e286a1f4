/* SPDX-License-Identifier: MIT */
/* Library log lines, routed through walrec_log_set_handler(). */
#ifndef WR_LOG_H
#define WR_LOG_H

#include <walrec/common.h>

void wr_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Log a failed system call once: "<call> <path>: <strerror(err)>". */
void wr_log_syscall(const char *call, const char *path, int err);

#define wr_log_error(...) wr_log(WALREC_LOG_ERROR, __VA_ARGS__)
#define wr_log_warn(...) wr_log(WALREC_LOG_WARN, __VA_ARGS__)
#define wr_log_info(...) wr_log(WALREC_LOG_INFO, __VA_ARGS__)
#define wr_log_debug(...) wr_log(WALREC_LOG_DEBUG, __VA_ARGS__)

#endif
