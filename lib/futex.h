/* SPDX-License-Identifier: MIT */
/*
 * Shared (cross-process) futex wait and wake on a 32-bit word. The words
 * live in shared memory, so the ops are the non-PRIVATE ones.
 */
#ifndef WR_FUTEX_H
#define WR_FUTEX_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/*
 * Sleep while *word == expected, at most timeout_ns (UINT64_MAX: no limit).
 * Returns 0 when woken (or spuriously), -EAGAIN when *word != expected at
 * the call, -ETIMEDOUT, -EINTR. Callers re-check their condition in a loop.
 */
static inline int
wr_futex_wait(_Atomic uint32_t *word, uint32_t expected, uint64_t timeout_ns)
{
	struct timespec rel, *relp = NULL;
	if (timeout_ns != UINT64_MAX) {
		rel.tv_sec = (time_t)(timeout_ns / 1000000000u);
		rel.tv_nsec = (long)(timeout_ns % 1000000000u);
		relp = &rel;
	}
	long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, relp, NULL, 0);
	return r == 0 ? 0 : -errno;
}

/* Wake up to n sleepers on word (INT_MAX: all). Returns how many woke. */
static inline int
wr_futex_wake(_Atomic uint32_t *word, int n)
{
	long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n, NULL, NULL, 0);
	return r < 0 ? -errno : (int)r;
}

#endif
