/* SPDX-License-Identifier: MIT */
/* Statistics primitives: histogram quantiles and snapshot copies. */
#include <config.h>

#include "lib/stats.h"

uint64_t
wr_histogram_bucket_low(unsigned i)
{
	return i == 0 ? 0 : (uint64_t)1 << (i - 1);
}

uint64_t
wr_histogram_bucket_high(unsigned i)
{
	if (i == 0)
		return 1;
	return i >= 64 ? UINT64_MAX : (uint64_t)1 << i;
}

uint64_t
wr_histogram_quantile(const wr_histogram_t *h, double q)
{
	uint64_t total = 0;
	for (unsigned i = 0; i < WR_HIST_BUCKETS; i++)
		total += wr_load_relaxed(&h->buckets[i]);
	if (total == 0)
		return 0;
	if (q <= 0)
		q = 0;
	if (q > 1)
		q = 1;
	double rank = q * (double)total;
	uint64_t seen = 0;
	uint64_t max = wr_load_relaxed(&h->max_ns);
	for (unsigned i = 0; i < WR_HIST_BUCKETS; i++) {
		uint64_t n = wr_load_relaxed(&h->buckets[i]);
		if (n == 0 || (double)(seen + n) < rank) {
			seen += n;
			continue;
		}
		double lo = (double)wr_histogram_bucket_low(i);
		double hi = (double)wr_histogram_bucket_high(i);
		double v = lo + (hi - lo) * ((rank - (double)seen) / (double)n);
		uint64_t r = (uint64_t)v;
		return (max && r > max) ? max : r;
	}
	return max;
}

#define COPY(field) wr_store_relaxed(&dst->field, wr_load_relaxed(&src->field))

void
wr_counter_copy(wr_counter_t *dst, const wr_counter_t *src)
{
	COPY(value);
}

void
wr_gauge_copy(wr_gauge_t *dst, const wr_gauge_t *src)
{
	COPY(value);
}

void
wr_duration_copy(wr_duration_t *dst, const wr_duration_t *src)
{
	COPY(count);
	COPY(total_ns);
	COPY(min_ns);
	COPY(max_ns);
}

void
wr_operation_copy(wr_operation_t *dst, const wr_operation_t *src)
{
	COPY(samples);
	COPY(successes);
	COPY(count);
	COPY(total_ns);
	COPY(min_ns);
	COPY(max_ns);
}

void
wr_histogram_copy(wr_histogram_t *dst, const wr_histogram_t *src)
{
	COPY(count);
	COPY(sum_ns);
	COPY(max_ns);
	for (unsigned i = 0; i < WR_HIST_BUCKETS; i++)
		COPY(buckets[i]);
}
