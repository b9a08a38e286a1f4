/* SPDX-License-Identifier: MIT */
/*
 * Benchmark harness shared by every 'walrec bench' scenario: a calibrated
 * tick clock with its read overhead measured, a log-linear latency
 * histogram, and the output convention (a human table by default, exactly
 * one JSON object on stdout with --json).
 */
#ifndef WR_BENCH_HARNESS_H
#define WR_BENCH_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/clock.h"

/* A scenario: argv[0] is its name; returns a WR_EXIT_* code. */
struct wr_bench_scenario {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
};

int wr_bench_append(int argc, char **argv);
int wr_bench_recorder(int argc, char **argv);
int wr_bench_durable(int argc, char **argv);
int wr_bench_ipc(int argc, char **argv);
int wr_bench_replay(int argc, char **argv);
int wr_bench_telemetry(int argc, char **argv);
int wr_bench_peers(int argc, char **argv);
int wr_bench_idle(int argc, char **argv);

/* Option parsing of a scenario (getopt_long). An unknown option or one
 * missing its value: a message, the usage on stderr, WR_EXIT_USAGE. */
int wr_bench_bad_option(const char *cmd, char **argv, void (*usage)(FILE *));
/* After the option loop: no operand left and --dir given. 0, or a message
 * and WR_EXIT_USAGE. */
int wr_bench_args_end(const char *cmd, int argc, char **argv, const char *dir, void (*usage)(FILE *));

/* Remove dir and everything below it (a benchmark's own scratch directory). */
void wr_bench_remove_tree(const char *dir);

struct walrec_recorder;
/* Wait (at most 5 s) until the recorder's preparer queue is full, as in a recorder that has been running. */
void wr_bench_recorder_settle(struct walrec_recorder *rec);

/* ---- clock ---------------------------------------------------------------- */

/*
 * Read the tick counter for timing one short operation. On x86 the lfences
 * keep the operation being timed from moving across the read (rdtsc alone
 * may execute before earlier instructions finish).
 */
static inline uint64_t
wr_bench_ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_lfence();
	uint64_t t = wr_clock_ticks();
	__builtin_ia32_lfence();
	return t;
#else
	__asm__ __volatile__("" ::: "memory");
	uint64_t t = wr_clock_ticks();
	__asm__ __volatile__("" ::: "memory");
	return t;
#endif
}

struct wr_bench_clock {
	uint64_t start_ticks, start_ns; /* calibration baseline */
	double ns_per_tick;
	uint64_t overhead_ticks; /* median of back-to-back wr_bench_ticks() */
	double overhead_mean_ticks; /* of the same reads, top 1% left out */
	uint64_t resolution_ticks; /* median non-zero step between two reads */
};

/* Measure the read overhead and a first tick rate (about 20 ms). */
void wr_bench_clock_init(struct wr_bench_clock *c);

/* Refine the tick rate over the whole run (call at the end, before reporting). */
void wr_bench_clock_finish(struct wr_bench_clock *c);

/* ---- placement and machine noise -------------------------------------------- */

/*
 * Where a latency benchmark runs: the appending thread alone on one CPU,
 * the recorder's background threads on the others (worker_cpus), as a
 * latency-critical deployment pins them. owner < 0: no pinning.
 */
struct wr_bench_cpus {
	int owner;
	uint64_t workers;
};

/*
 * The owner on the CPU this process may use that has taken the fewest
 * device interrupts (/proc/interrupts), every other one for workers; no
 * pinning with one CPU.
 */
void wr_bench_cpus_default(struct wr_bench_cpus *c);

/*
 * For a thread that waits on syncs: the owner on the CPU that takes the
 * completion interrupts of the disk under dir, found by syncing there
 * and watching /proc/interrupts (on a VM, a completion that must wake a
 * halted CPU to resume the waiter costs tens of microseconds per I/O).
 * Returns that CPU, or -1 with the default placement when no CPU stands
 * out.
 */
int wr_bench_cpus_for_syncs(struct wr_bench_cpus *c, const char *dir);

/* Pin the calling thread to cpu (no-op for cpu < 0). 0 or -errno. */
int wr_bench_pin_self(int cpu);

/*
 * What the machine itself takes from a spinning thread: read the tick
 * clock in a loop for ns and report the longest gap between two reads
 * and how many gaps exceeded 5 us, per second. Interrupts, the
 * hypervisor and other tasks all show up here; no append can do better.
 */
void wr_bench_noise(const struct wr_bench_clock *clk, uint64_t ns, double *max_gap_ns,
		    double *gaps_over_5us_per_s);

/* qsort comparison of uint64_t. */
int wr_bench_u64_cmp(const void *a, const void *b);

/*
 * The baseline every durable figure is compared with: a pwrite of 4 KiB
 * over already written blocks of a file in dir, then fdatasync. Durable
 * benchmarks take one sample between their own operations, so that both
 * see the same disk (its latency drifts by tens of percent within minutes
 * on a shared machine).
 */
struct wr_bench_fsync {
	int fd;
	unsigned n;
	char buf[4096];
	char path[4200];
};

/* Create and write the file. 0 or -errno. */
int wr_bench_fsync_open(struct wr_bench_fsync *b, const char *dir);
/* One sample, in ns (0 on failure). */
uint64_t wr_bench_fsync_once(struct wr_bench_fsync *b);
/* Close and remove the file. */
void wr_bench_fsync_close(struct wr_bench_fsync *b);
/* The median of v[0..n) (sorts v); 0 when n is 0. */
uint64_t wr_bench_median(uint64_t *v, size_t n);

/* ---- histogram ------------------------------------------------------------ */

/*
 * Log-linear: values below 64 are exact; above, each power of two is split
 * into 64 sub-buckets (relative error under 1.6%), enough for p99.99.
 */
#define WR_BENCH_SUB_BITS 6u
#define WR_BENCH_SUB (1u << WR_BENCH_SUB_BITS)
#define WR_BENCH_BUCKETS (WR_BENCH_SUB + (64u - WR_BENCH_SUB_BITS) * WR_BENCH_SUB)

struct wr_bench_hist {
	uint64_t count;
	uint64_t max;
	uint64_t buckets[WR_BENCH_BUCKETS];
};

static inline unsigned
wr_bench_hist_index(uint64_t v)
{
	if (v < WR_BENCH_SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= WR_BENCH_SUB_BITS */
	unsigned shift = e - WR_BENCH_SUB_BITS;
	return WR_BENCH_SUB + shift * WR_BENCH_SUB + (unsigned)((v >> shift) & (WR_BENCH_SUB - 1));
}

static inline void
wr_bench_hist_record(struct wr_bench_hist *h, uint64_t v)
{
	h->buckets[wr_bench_hist_index(v)]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

/* Smallest value that falls in bucket i, and the bucket's width. */
uint64_t wr_bench_hist_bucket_low(unsigned i);
uint64_t wr_bench_hist_bucket_width(unsigned i);

/* Value at quantile q (0 < q <= 1): bucket midpoint, capped at max; 0 if empty. */
uint64_t wr_bench_hist_quantile(const struct wr_bench_hist *h, double q);

/* ---- results ---------------------------------------------------------------- */

#define WR_BENCH_MAX_EXTRA 24

struct wr_bench_extra {
	const char *key;   /* JSON key, snake_case with unit suffix */
	double value;
	const char *about; /* a few words for the human table */
};

struct wr_bench_result {
	const char *scenario;
	uint64_t events;
	double seconds;
	double events_per_s;
	double p50_ns, p99_ns, p999_ns, p9999_ns, max_ns;
	unsigned n_extra;
	struct wr_bench_extra extra[WR_BENCH_MAX_EXTRA];
};

/* Fill the percentiles from a histogram of tick deltas. */
void wr_bench_result_latency(struct wr_bench_result *r, const struct wr_bench_hist *h,
			     const struct wr_bench_clock *c);

/* Add a scenario-specific figure (printed after the standard ones). */
void wr_bench_result_add(struct wr_bench_result *r, const char *key, double value,
			 const char *about);

/* Human table, or exactly one JSON object (one line), to out. */
void wr_bench_result_print(const struct wr_bench_result *r, bool json, FILE *out);

#endif
