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

/* Cheap cycle counter, not calibrated (wr_tsc_clock below and bench/ calibrate it). */
static inline uint64_t
wr_clock_ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __builtin_ia32_rdtsc();
#else
	return wr_clock_now_ns();
#endif
}

/*
 * A cheaper CLOCK_REALTIME for the producer's append path: the tick
 * counter scaled by a rate calibrated against clock_gettime, rebased on
 * clock_gettime every WR_TSC_CLOCK_REBASE_NS. About half the cost of the
 * vDSO call (no ordering fence, no seqcount loop); the error against
 * CLOCK_REALTIME stays within the clock's slew over one rebase interval
 * (microseconds). Used only where the kernel itself keeps time with the
 * TSC (its clocksource is "tsc"), so the counter is invariant and synced
 * across CPUs; elsewhere it is clock_gettime. Not strictly monotonic at
 * a rebase. One thread per wr_tsc_clock.
 */
#define WR_TSC_CLOCK_REBASE_NS 100000000ull

struct wr_tsc_clock {
	uint64_t tsc0, ns0;    /* the last rebase */
	uint64_t mult;         /* ns per tick, 32.32 fixed point; 0: use clock_gettime */
	uint64_t rebase_ticks; /* ticks between rebases */
	uint64_t cal_tsc, cal_ns; /* where the rate was last measured from */
};

/* Calibrate (spins ~200 us). */
void wr_tsc_clock_init(struct wr_tsc_clock *c);

/* Rebase at tick count tsc and return the time (the slow path of _now). */
uint64_t wr_tsc_clock_rebase(struct wr_tsc_clock *c, uint64_t tsc);

static inline uint64_t
wr_tsc_clock_now(struct wr_tsc_clock *c)
{
	if (c->mult == 0)
		return wr_clock_realtime_ns();
	uint64_t t = wr_clock_ticks();
	uint64_t d = t - c->tsc0;
	if (__builtin_expect(d >= c->rebase_ticks, 0))
		return wr_tsc_clock_rebase(c, t);
	return c->ns0 + (uint64_t)(((unsigned __int128)d * c->mult) >> 32);
}

#endif
