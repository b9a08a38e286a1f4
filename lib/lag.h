/* SPDX-License-Identifier: MIT */
/*
 * Durable lag in time: how long the oldest event that is not yet durable
 * has been waiting, from (appended id, time) observations.
 *
 * A mark (id, ns) says "at time ns, every event up to id was appended".
 * The observer pushes one whenever it sees the appended id grow; when the
 * durable position reaches d it drops the marks with id <= d. The oldest
 * event not durable, d + 1, was appended no later than the first mark left
 * (its id is >= d + 1), so now - that mark's ns is a lower bound of its
 * wait, short by at most the time between two observations. With no mark
 * left the observer has not yet seen what is pending: the bound is 0.
 * When the FIFO is full the newest mark is replaced by the new one: a
 * later time for a larger id is still an upper bound of each append time.
 *
 * Concurrency: one thread observes (observe, durable); any thread may call
 * wr_lag_age_ns (one relaxed load).
 */
#ifndef WR_LAG_H
#define WR_LAG_H

#include <stdint.h>

#include "lib/atomics.h"
#include "lib/compiler.h"

#define WR_LAG_MARKS 16u

struct wr_lag_mark {
	uint64_t id;
	uint64_t ns;
};

struct wr_lag_tracker {
	/* observer thread only */
	uint32_t r, w;
	uint64_t last_id; /* id of the newest mark pushed */
	struct wr_lag_mark marks[WR_LAG_MARKS];
	/* ns of the first mark left, 0 when none: written by the observer */
	WR_ALIGNED_LINE _Atomic uint64_t oldest_ns;
};

static inline void
wr_lag_publish(struct wr_lag_tracker *t)
{
	wr_store_relaxed(&t->oldest_ns, t->r != t->w ? t->marks[t->r % WR_LAG_MARKS].ns : 0);
}

/* At time now_ns, every event up to appended_id had been appended. */
static inline void
wr_lag_observe(struct wr_lag_tracker *t, uint64_t appended_id, uint64_t now_ns)
{
	if (appended_id <= t->last_id)
		return;
	t->last_id = appended_id;
	struct wr_lag_mark m = { appended_id, now_ns ? now_ns : 1 };
	if (t->w - t->r == WR_LAG_MARKS)
		t->marks[(t->w - 1) % WR_LAG_MARKS] = m;
	else
		t->marks[t->w++ % WR_LAG_MARKS] = m;
	wr_lag_publish(t);
}

/* Every event up to durable_id is durable. */
static inline void
wr_lag_durable(struct wr_lag_tracker *t, uint64_t durable_id)
{
	while (t->r != t->w && t->marks[t->r % WR_LAG_MARKS].id <= durable_id)
		t->r++;
	wr_lag_publish(t);
}

/*
 * Lower bound of how long the oldest event not durable has waited at
 * now_ns; 0 when nothing pending was observed. Callers report 0 when they
 * know nothing is pending (appended == durable).
 */
static inline uint64_t
wr_lag_age_ns(const struct wr_lag_tracker *t, uint64_t now_ns)
{
	uint64_t since = wr_load_relaxed(&t->oldest_ns);
	return since && now_ns > since ? now_ns - since : 0;
}

#endif
