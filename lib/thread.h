/* SPDX-License-Identifier: MIT */
/* Background threads: named, optionally confined to a set of CPUs. */
#ifndef WR_THREAD_H
#define WR_THREAD_H

#include <pthread.h>
#include <stdint.h>

/*
 * Start fn(arg) on a new thread named name (at most 15 characters shown
 * by ps/top), allowed to run only on the CPUs whose bits are set in
 * cpu_mask (bit n = CPU n), or anywhere when cpu_mask is 0. 0 or -errno.
 */
int wr_thread_start(pthread_t *t, const char *name, uint64_t cpu_mask, void *(*fn)(void *),
		    void *arg);

/*
 * Check a CPU mask against the machine: 0, or -EINVAL when it names a CPU
 * the machine does not have. (A CPU outside this process's cpuset is
 * refused when the thread is started.)
 */
int wr_thread_check_mask(uint64_t cpu_mask);

#endif
