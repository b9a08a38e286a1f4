/* SPDX-License-Identifier: MIT */
/* Background threads: named, optionally confined to a set of CPUs. */
#include <config.h>

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"

#include "lib/thread.h"

static void
thread_mask_to_set(uint64_t mask, cpu_set_t *set)
{
	CPU_ZERO(set);
	for (unsigned i = 0; i < 64; i++)
		if (mask & ((uint64_t)1 << i))
			CPU_SET(i, set);
}

int
wr_thread_check_mask(uint64_t cpu_mask)
{
	long n = sysconf(_SC_NPROCESSORS_CONF);
	if (cpu_mask == 0 || n <= 0 || n >= 64)
		return 0;
	return (cpu_mask >> n) == 0 ? 0 : -EINVAL;
}

int
wr_thread_start(pthread_t *t, const char *name, uint64_t cpu_mask, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	int rc = pthread_attr_init(&attr);
	if (rc != 0)
		return -rc;
	if (cpu_mask != 0) {
		cpu_set_t set;
		thread_mask_to_set(cpu_mask, &set);
		rc = pthread_attr_setaffinity_np(&attr, sizeof set, &set);
	}
	if (rc == 0)
		rc = pthread_create(t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		wr_log_error("cannot start thread %s%s: %s", name,
			     cpu_mask ? " on the configured CPUs" : "", strerror(rc));
		return -rc;
	}
	pthread_setname_np(*t, name);
	return 0;
}
