/* SPDX-License-Identifier: MIT */
/* Benchmark harness: clock calibration, histogram percentiles, output. */
#include <config.h>

#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/harness.h"
#include "tools/cmd.h"

void
wr_bench_clock_init(struct wr_bench_clock *c)
{
	enum { N = 4097 };
	static uint64_t d[N], step[N];
	for (int warm = 0; warm < 1000; warm++)
		(void)wr_bench_ticks();
	for (int i = 0; i < N; i++) {
		uint64_t a = wr_bench_ticks();
		uint64_t b = wr_bench_ticks();
		d[i] = b - a;
		uint64_t t0 = wr_clock_ticks(), t1;
		while ((t1 = wr_clock_ticks()) == t0)
			;
		step[i] = t1 - t0;
	}
	/* The median step: a VM's counter may move by 1 now and then between
	 * its usual steps (26 ticks, 10 ns, on an AMD EPYC guest). */
	qsort(step, N, sizeof step[0], wr_bench_u64_cmp);
	c->resolution_ticks = step[N / 2];
	qsort(d, N, sizeof d[0], wr_bench_u64_cmp);
	c->overhead_ticks = d[N / 2];
	/* Mean without the top 1%: one interrupt must not swamp it. */
	double sum = 0;
	int keep = N - N / 100;
	for (int i = 0; i < keep; i++)
		sum += (double)d[i];
	c->overhead_mean_ticks = sum / keep;

	c->start_ns = wr_clock_now_ns();
	c->start_ticks = wr_clock_ticks();
	uint64_t now;
	do
		now = wr_clock_now_ns();
	while (now - c->start_ns < 20000000u);
	uint64_t ticks = wr_clock_ticks() - c->start_ticks;
	c->ns_per_tick = ticks ? (double)(now - c->start_ns) / (double)ticks : 1.0;
}

void
wr_bench_clock_finish(struct wr_bench_clock *c)
{
	uint64_t ns = wr_clock_now_ns() - c->start_ns;
	uint64_t ticks = wr_clock_ticks() - c->start_ticks;
	if (ticks > 0 && ns > 0)
		c->ns_per_tick = (double)ns / (double)ticks;
}

uint64_t
wr_bench_hist_bucket_low(unsigned i)
{
	if (i < WR_BENCH_SUB)
		return i;
	unsigned shift = (i - WR_BENCH_SUB) / WR_BENCH_SUB;
	uint64_t sub = (i - WR_BENCH_SUB) % WR_BENCH_SUB;
	return (WR_BENCH_SUB + sub) << shift;
}

uint64_t
wr_bench_hist_bucket_width(unsigned i)
{
	if (i < WR_BENCH_SUB)
		return 1;
	return 1ull << ((i - WR_BENCH_SUB) / WR_BENCH_SUB);
}

uint64_t
wr_bench_hist_quantile(const struct wr_bench_hist *h, double q)
{
	if (h->count == 0)
		return 0;
	uint64_t rank = (uint64_t)ceil(q * (double)h->count);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	uint64_t seen = 0;
	for (unsigned i = 0; i < WR_BENCH_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			uint64_t v = wr_bench_hist_bucket_low(i) + (wr_bench_hist_bucket_width(i) - 1) / 2;
			return v < h->max ? v : h->max;
		}
	}
	return h->max;
}

void
wr_bench_result_latency(struct wr_bench_result *r, const struct wr_bench_hist *h,
			const struct wr_bench_clock *c)
{
	double k = c->ns_per_tick;
	r->p50_ns = (double)wr_bench_hist_quantile(h, 0.50) * k;
	r->p99_ns = (double)wr_bench_hist_quantile(h, 0.99) * k;
	r->p999_ns = (double)wr_bench_hist_quantile(h, 0.999) * k;
	r->p9999_ns = (double)wr_bench_hist_quantile(h, 0.9999) * k;
	r->max_ns = (double)h->max * k;
}

void
wr_bench_result_add(struct wr_bench_result *r, const char *key, double value,
		    const char *about)
{
	if (r->n_extra < WR_BENCH_MAX_EXTRA)
		r->extra[r->n_extra++] = (struct wr_bench_extra){ key, value, about };
}

/* Integers print as integers; everything else with three decimals. */
static const char *
format_number(char *buf, size_t n, double v)
{
	if (!isfinite(v))
		snprintf(buf, n, "0");
	else if (v == floor(v) && fabs(v) < 1e15)
		snprintf(buf, n, "%.0f", v);
	else
		snprintf(buf, n, "%.3f", v);
	return buf;
}

void
wr_bench_result_print(const struct wr_bench_result *r, bool json, FILE *out)
{
	struct wr_bench_extra std[] = {
		{ "events", (double)r->events, "events appended per pass" },
		{ "seconds", r->seconds, "seconds spent appending (throughput pass)" },
		{ "events_per_s", round(r->events_per_s), "throughput" },
		{ "p50_ns", r->p50_ns, "latency median (timed pass)" },
		{ "p99_ns", r->p99_ns, "latency p99" },
		{ "p999_ns", r->p999_ns, "latency p99.9" },
		{ "p9999_ns", r->p9999_ns, "latency p99.99" },
		{ "max_ns", r->max_ns, "latency max" },
	};
	char buf[64];
	if (json) {
		fprintf(out, "{\"scenario\":\"%s\"", r->scenario);
		for (size_t i = 0; i < sizeof std / sizeof std[0]; i++)
			fprintf(out, ",\"%s\":%s", std[i].key,
				format_number(buf, sizeof buf, std[i].value));
		for (unsigned i = 0; i < r->n_extra; i++)
			fprintf(out, ",\"%s\":%s", r->extra[i].key,
				format_number(buf, sizeof buf, r->extra[i].value));
		fputs("}\n", out);
		return;
	}
	fprintf(out, "%-24s %s\n", "scenario", r->scenario);
	for (size_t i = 0; i < sizeof std / sizeof std[0]; i++)
		fprintf(out, "%-24s %-16s %s\n", std[i].key,
			format_number(buf, sizeof buf, std[i].value), std[i].about);
	for (unsigned i = 0; i < r->n_extra; i++)
		fprintf(out, "%-24s %-16s %s\n", r->extra[i].key,
			format_number(buf, sizeof buf, r->extra[i].value), r->extra[i].about);
}

/*
 * Device interrupts each CPU has taken (numbered lines of /proc/interrupts),
 * into irqs[0..63]; false when the file can not be read.
 */
static bool
bench_device_irqs(uint64_t irqs[64])
{
	FILE *f = fopen("/proc/interrupts", "r");
	if (f == NULL)
		return false;
	memset(irqs, 0, 64 * sizeof irqs[0]);
	char line[4096];
	int ncpu = 0;
	if (fgets(line, sizeof line, f) != NULL)
		for (char *p = strstr(line, "CPU"); p; p = strstr(p + 3, "CPU"))
			ncpu++;
	while (fgets(line, sizeof line, f) != NULL) {
		char *p = line;
		while (*p == ' ')
			p++;
		if (*p < '0' || *p > '9')
			continue; /* NMI, LOC, RES...: not a device */
		p = strchr(p, ':');
		if (p == NULL)
			continue;
		p++;
		for (int c = 0; c < ncpu && c < 64; c++) {
			char *end;
			unsigned long long v = strtoull(p, &end, 10);
			if (end == p)
				break;
			irqs[c] += v;
			p = end;
		}
	}
	fclose(f);
	return true;
}

/* fdatasyncs whose interrupts tell which CPU takes a disk's completions. */
#define BENCH_IRQ_PROBE_SYNCS 32u

/* The owner on CPU owner, the workers on every other CPU of set. */
static void
bench_cpus_place(struct wr_bench_cpus *c, const cpu_set_t *set, int owner)
{
	c->owner = owner;
	c->workers = 0;
	for (int i = 0; i < 64; i++)
		if (CPU_ISSET(i, set) && i != owner)
			c->workers |= (uint64_t)1 << i;
}

void
wr_bench_cpus_default(struct wr_bench_cpus *c)
{
	c->owner = -1;
	c->workers = 0;
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) != 0 || CPU_COUNT(&set) < 2)
		return;
	/* The appender goes where the fewest device interrupts land (a disk's
	 * completions arrive on one CPU), everything else on the others. */
	uint64_t irqs[64];
	bool have = bench_device_irqs(irqs);
	int owner = -1;
	for (int i = 0; i < 64; i++) {
		if (!CPU_ISSET(i, &set))
			continue;
		if (owner < 0 || (have && irqs[i] < irqs[owner]))
			owner = i;
	}
	bench_cpus_place(c, &set, owner);
}

int
wr_bench_cpus_for_syncs(struct wr_bench_cpus *c, const char *dir)
{
	wr_bench_cpus_default(c);
	cpu_set_t set;
	if (c->owner < 0 || sched_getaffinity(0, sizeof set, &set) != 0)
		return -1;
	/* Which CPU's device interrupt count grows while this thread syncs? */
	uint64_t before[64], after[64];
	struct wr_bench_fsync b = { .fd = -1 };
	bool ok = bench_device_irqs(before) && wr_bench_fsync_open(&b, dir) == 0;
	for (unsigned i = 0; ok && i < BENCH_IRQ_PROBE_SYNCS; i++)
		ok = wr_bench_fsync_once(&b) != 0;
	wr_bench_fsync_close(&b);
	ok = ok && bench_device_irqs(after);
	int best = -1;
	uint64_t most = 0;
	for (int i = 0; ok && i < 64; i++) {
		uint64_t d = after[i] - before[i];
		if (CPU_ISSET(i, &set) && d > most) {
			most = d;
			best = i;
		}
	}
	/* At least one completion per sync, or nothing is clear (NVMe
	 * completes on the submitting CPU: any placement is as good). */
	if (best < 0 || most < BENCH_IRQ_PROBE_SYNCS)
		return -1;
	bench_cpus_place(c, &set, best);
	return best;
}

int
wr_bench_pin_self(int cpu)
{
	if (cpu < 0)
		return 0;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : -errno;
}

void
wr_bench_noise(const struct wr_bench_clock *clk, uint64_t ns, double *max_gap_ns,
	       double *gaps_over_5us_per_s)
{
	uint64_t span = (uint64_t)((double)ns / clk->ns_per_tick);
	uint64_t over = (uint64_t)(5000.0 / clk->ns_per_tick);
	uint64_t start = wr_bench_ticks(), prev = start, max = 0, gaps = 0;
	while (prev - start < span) {
		uint64_t t = wr_bench_ticks();
		uint64_t d = t - prev;
		if (d > max)
			max = d;
		gaps += d > over;
		prev = t;
	}
	*max_gap_ns = (double)max * clk->ns_per_tick;
	*gaps_over_5us_per_s = (double)gaps * 1e9 / (double)ns;
}

int
wr_bench_u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int
wr_bench_fsync_open(struct wr_bench_fsync *b, const char *dir)
{
	snprintf(b->path, sizeof b->path, "%s/bench-fdatasync.%d.tmp", dir, (int)getpid());
	b->n = 0;
	b->fd = open(b->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (b->fd < 0)
		return -errno;
	memset(b->buf, 0x5a, sizeof b->buf);
	/* The blocks are written once here: each sample rewrites one of them. */
	for (int i = 0; i < 64; i++)
		if (pwrite(b->fd, b->buf, sizeof b->buf, (off_t)i * 4096) != (ssize_t)sizeof b->buf)
			return -EIO;
	return fdatasync(b->fd) == 0 ? 0 : -errno;
}

uint64_t
wr_bench_fsync_once(struct wr_bench_fsync *b)
{
	b->buf[0] = (char)b->n;
	uint64_t t0 = wr_clock_now_ns();
	if (pwrite(b->fd, b->buf, sizeof b->buf, (off_t)(b->n++ % 64) * 4096) != (ssize_t)sizeof b->buf ||
	    fdatasync(b->fd) != 0)
		return 0;
	return wr_clock_now_ns() - t0;
}

void
wr_bench_fsync_close(struct wr_bench_fsync *b)
{
	if (b->fd >= 0) {
		close(b->fd);
		unlink(b->path);
	}
	b->fd = -1;
}

uint64_t
wr_bench_median(uint64_t *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof *v, wr_bench_u64_cmp);
	return v[n / 2];
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT)
		fprintf(stderr, "walrec bench: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

void
wr_bench_remove_tree(const char *dir)
{
	/* FTW_PHYS: a symbolic link is removed, never followed. */
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int
wr_bench_bad_option(const char *cmd, char **argv, void (*usage)(FILE *))
{
	wr_tool_error(cmd, "'%s': unknown option or missing value", argv[optind - 1]);
	usage(stderr);
	return WR_EXIT_USAGE;
}

int
wr_bench_args_end(const char *cmd, int argc, char **argv, const char *dir, void (*usage)(FILE *))
{
	if (optind < argc) {
		wr_tool_error(cmd, "unexpected argument '%s'", argv[optind]);
		return WR_EXIT_USAGE;
	}
	if (!dir) {
		wr_tool_error(cmd, "--dir is required");
		usage(stderr);
		return WR_EXIT_USAGE;
	}
	return 0;
}
