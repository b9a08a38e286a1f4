/* SPDX-License-Identifier: MIT */
/* The tick-based realtime clock of the producer's append path (see clock.h). */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "lib/clock.h"

/* Whether the kernel keeps time with the TSC (then it is invariant and synced). */
static int
tsc_is_clocksource(void)
{
#if defined(__x86_64__)
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
	if (f == NULL)
		return 0;
	char buf[32] = "";
	int ok = fgets(buf, sizeof buf, f) != NULL && strncmp(buf, "tsc", 3) == 0 &&
		 (buf[3] == '\n' || buf[3] == '\0');
	fclose(f);
	return ok;
#else
	return 0;
#endif
}

/* 32.32 ns per tick from two (ticks, ns) samples, 0 when unusable. */
static uint64_t
tsc_rate(uint64_t t0, uint64_t n0, uint64_t t1, uint64_t n1)
{
	if (t1 <= t0 || n1 <= n0)
		return 0;
	return (uint64_t)(((unsigned __int128)(n1 - n0) << 32) / (t1 - t0));
}

void
wr_tsc_clock_init(struct wr_tsc_clock *c)
{
	memset(c, 0, sizeof *c);
	if (!tsc_is_clocksource())
		return;
	uint64_t t0 = wr_clock_ticks(), n0 = wr_clock_realtime_ns();
	uint64_t m0 = wr_clock_now_ns();
	while (wr_clock_now_ns() - m0 < 200000)
		;
	uint64_t t1 = wr_clock_ticks(), n1 = wr_clock_realtime_ns();
	c->mult = tsc_rate(t0, n0, t1, n1);
	if (c->mult == 0)
		return;
	c->rebase_ticks = (uint64_t)(((unsigned __int128)WR_TSC_CLOCK_REBASE_NS << 32) / c->mult);
	c->cal_tsc = t0;
	c->cal_ns = n0;
	c->tsc0 = t1;
	c->ns0 = n1;
}

uint64_t
wr_tsc_clock_rebase(struct wr_tsc_clock *c, uint64_t tsc)
{
	uint64_t ns = wr_clock_realtime_ns();
	/* The longer the baseline, the better the rate: measure it from the
	 * first sample on (a step of the realtime clock restarts it). */
	uint64_t m = tsc_rate(c->cal_tsc, c->cal_ns, tsc, ns);
	if (m != 0 && m < 2 * c->mult && 2 * m > c->mult) {
		c->mult = m;
	} else {
		c->cal_tsc = tsc;
		c->cal_ns = ns;
	}
	c->tsc0 = tsc;
	c->ns0 = ns;
	return ns;
}
