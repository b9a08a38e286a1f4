/* SPDX-License-Identifier: MIT */
/* Nanosecond clocks (vDSO clock_gettime: no system call on Linux). */
#ifndef WR_CLOCK_H
#define WR_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds: durations, deadlines. */
static inline uint64_t
wr_clock_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CLOCK_REALTIME in nanoseconds: event and segment timestamps. */
static inline uint64_t
wr_clock_realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* An absolute CLOCK_MONOTONIC timespec timeout_ns from now. */
static inline struct timespec
wr_clock_deadline(uint64_t timeout_ns)
{
	uint64_t t = wr_clock_now_ns() + timeout_ns;
	struct timespec ts = { .tv_sec = (time_t)(t / 1000000000u),
			       .tv_nsec = (long)(t % 1000000000u) };
	return ts;
}

/* Cheap cycle counter for benchmarks (not calibrated; see bench/). */
static inline uint64_t
wr_clock_ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __builtin_ia32_rdtsc();
#else
	return wr_clock_now_ns();
#endif
}

#endif
