/* SPDX-License-Identifier: MIT */
/*
 * Statistics primitives for telemetry: counter, gauge, duration, operation
 * and a log2 latency histogram. Each metric starts on its own cache line.
 *
 * Concurrency: every metric has exactly one writer thread (or process, for
 * metrics in shared memory); recording is a relaxed load and store on a
 * line only that writer touches - no locked instruction, no fence. Any
 * thread may read; a reader sees each field whole but the fields of one
 * metric may come from different moments (snapshots fix that, see
 * recorder/telemetry). When telemetry is compiled out (--disable-telemetry)
 * the record functions are empty.
 */
#ifndef WR_STATS_H
#define WR_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/atomics.h"
#include "lib/compiler.h"

typedef struct wr_counter {
	WR_ALIGNED_LINE _Atomic uint64_t value;
} wr_counter_t;

typedef struct wr_gauge {
	WR_ALIGNED_LINE _Atomic int64_t value;
} wr_gauge_t;

/* count, total, min and max of measured durations, in nanoseconds. */
typedef struct wr_duration {
	WR_ALIGNED_LINE _Atomic uint64_t count;
	_Atomic uint64_t total_ns;
	_Atomic uint64_t min_ns; /* meaningful when count > 0 */
	_Atomic uint64_t max_ns;
} wr_duration_t;

/* An operation that can fail: attempts, successes, and their durations. */
typedef struct wr_operation {
	WR_ALIGNED_LINE _Atomic uint64_t samples;
	_Atomic uint64_t successes;
	_Atomic uint64_t count; /* duration part, as wr_duration */
	_Atomic uint64_t total_ns;
	_Atomic uint64_t min_ns;
	_Atomic uint64_t max_ns;
} wr_operation_t;

/* Bucket i counts values v with floor(log2(v)) == i - 1; bucket 0 counts v == 0. */
#define WR_HIST_BUCKETS 65

typedef struct wr_histogram {
	WR_ALIGNED_LINE _Atomic uint64_t count;
	_Atomic uint64_t sum_ns;
	_Atomic uint64_t max_ns;
	WR_ALIGNED_LINE _Atomic uint64_t buckets[WR_HIST_BUCKETS];
} wr_histogram_t;

_Static_assert(sizeof(wr_counter_t) == 64, "counter is one line");
_Static_assert(sizeof(wr_gauge_t) == 64, "gauge is one line");
_Static_assert(sizeof(wr_duration_t) == 64, "duration is one line");
_Static_assert(sizeof(wr_operation_t) == 64, "operation is one line");
_Static_assert(sizeof(wr_histogram_t) % 64 == 0, "histogram is whole lines");
_Static_assert(_Alignof(wr_histogram_t) == 64, "histogram is line aligned");

#ifdef WR_TELEMETRY
#define WR_STATS_ON 1
#else
#define WR_STATS_ON 0
#endif

static inline void
wr_counter_add(wr_counter_t *c, uint64_t n)
{
	if (WR_STATS_ON)
		wr_add_single_writer(&c->value, n);
}

static inline void
wr_counter_inc(wr_counter_t *c)
{
	wr_counter_add(c, 1);
}

/* For counters that several threads or processes bump (locked add). */
static inline void
wr_counter_add_shared(wr_counter_t *c, uint64_t n)
{
	if (WR_STATS_ON)
		wr_fetch_add_relaxed(&c->value, n);
}

static inline void
wr_gauge_set(wr_gauge_t *g, int64_t v)
{
	if (WR_STATS_ON)
		wr_store_relaxed(&g->value, v);
}

static inline void
wr_stats_minmax(_Atomic uint64_t *min, _Atomic uint64_t *max, uint64_t prior_count,
		uint64_t ns)
{
	if (prior_count == 0 || ns < wr_load_relaxed(min))
		wr_store_relaxed(min, ns);
	if (ns > wr_load_relaxed(max))
		wr_store_relaxed(max, ns);
}

static inline void
wr_duration_add(wr_duration_t *d, uint64_t ns)
{
	if (!WR_STATS_ON)
		return;
	uint64_t n = wr_load_relaxed(&d->count);
	wr_stats_minmax(&d->min_ns, &d->max_ns, n, ns);
	wr_add_single_writer(&d->total_ns, ns);
	wr_store_relaxed(&d->count, n + 1);
}

/* Record a duration from start_ns to end_ns (end < start counts as 0). */
static inline void
wr_duration_record(wr_duration_t *d, uint64_t start_ns, uint64_t end_ns)
{
	wr_duration_add(d, end_ns > start_ns ? end_ns - start_ns : 0);
}

static inline void
wr_operation_record(wr_operation_t *o, bool ok, uint64_t start_ns, uint64_t end_ns)
{
	if (!WR_STATS_ON)
		return;
	uint64_t ns = end_ns > start_ns ? end_ns - start_ns : 0;
	uint64_t n = wr_load_relaxed(&o->count);
	wr_add_single_writer(&o->samples, 1);
	if (ok)
		wr_add_single_writer(&o->successes, 1);
	wr_stats_minmax(&o->min_ns, &o->max_ns, n, ns);
	wr_add_single_writer(&o->total_ns, ns);
	wr_store_relaxed(&o->count, n + 1);
}

static inline unsigned
wr_histogram_bucket(uint64_t v)
{
	return v == 0 ? 0 : 64u - (unsigned)__builtin_clzll(v);
}

static inline void
wr_histogram_record(wr_histogram_t *h, uint64_t ns)
{
	if (!WR_STATS_ON)
		return;
	wr_add_single_writer(&h->buckets[wr_histogram_bucket(ns)], 1);
	wr_add_single_writer(&h->sum_ns, ns);
	if (ns > wr_load_relaxed(&h->max_ns))
		wr_store_relaxed(&h->max_ns, ns);
	wr_add_single_writer(&h->count, 1);
}

/* Lower bound (inclusive) and upper bound (exclusive) of bucket i, in ns. */
uint64_t wr_histogram_bucket_low(unsigned i);
uint64_t wr_histogram_bucket_high(unsigned i);

/*
 * The value at quantile q (0 < q <= 1), interpolated linearly inside its
 * log2 bucket and capped at max_ns; 0 for an empty histogram.
 */
uint64_t wr_histogram_quantile(const wr_histogram_t *h, double q);

/* Plain copies (relaxed loads) for snapshots; dst and src may be in shared memory. */
void wr_counter_copy(wr_counter_t *dst, const wr_counter_t *src);
void wr_gauge_copy(wr_gauge_t *dst, const wr_gauge_t *src);
void wr_duration_copy(wr_duration_t *dst, const wr_duration_t *src);
void wr_operation_copy(wr_operation_t *dst, const wr_operation_t *src);
void wr_histogram_copy(wr_histogram_t *dst, const wr_histogram_t *src);

#endif
