/* SPDX-License-Identifier: MIT */
/* 'walrec bench recorder' and 'walrec bench durable': the embedded recorder end to end. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <walrec/recorder.h>

#include "bench/harness.h"
#include "lib/fs.h"
#include "recorder/format.h"
#include "recorder/recorder_impl.h"
#include "tools/cmd.h"

struct rb_opts {
	const char *dir;
	uint64_t events;
	uint32_t blocks;
	bool json;
	bool no_pin;
	struct wr_bench_cpus cpus;
};

static int
rb_parse(int argc, char **argv, const char *cmd, struct rb_opts *o, void (*usage)(FILE *))
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "events", required_argument, NULL, 'n' },
		{ "blocks", required_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{ "no-pin", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int opt;
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			o->dir = optarg;
			break;
		case 'n':
			if (!wr_tool_parse_u64(optarg, &v) || v == 0) {
				wr_tool_error(cmd, "--events: '%s' is not a positive count", optarg);
				return WR_EXIT_USAGE;
			}
			o->events = v;
			break;
		case 'b':
			if (!wr_tool_parse_u64(optarg, &v) || v < WR_MIN_BLOCKS || v > WR_MAX_BLOCKS) {
				wr_tool_error(cmd, "--blocks: '%s' is not in %u..%u", optarg,
					      WR_MIN_BLOCKS, WR_MAX_BLOCKS);
				return WR_EXIT_USAGE;
			}
			o->blocks = (uint32_t)v;
			break;
		case 'j':
			o->json = true;
			break;
		case 'P':
			o->no_pin = true;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			return wr_bench_bad_option(cmd, argv, usage);
		}
	}
	int arc = wr_bench_args_end(cmd, argc, argv, o->dir, usage);
	if (arc != 0)
		return arc;
	o->cpus.owner = -1;
	o->cpus.workers = 0;
	if (!o->no_pin)
		wr_bench_cpus_default(&o->cpus);
	if (wr_bench_pin_self(o->cpus.owner) != 0) {
		wr_tool_error(cmd, "cannot pin to CPU %d", o->cpus.owner);
		return WR_EXIT_USAGE;
	}
	return 0;
}

/* Where it ran, and what the machine itself took from a spinning thread there. */
static void
rb_add_placement(struct wr_bench_result *r, const struct rb_opts *o,
		 const struct wr_bench_clock *clk)
{
	double gap, gaps;
	wr_bench_noise(clk, 500000000ull, &gap, &gaps);
	wr_bench_result_add(r, "owner_cpu", o->cpus.owner, "CPU of the appending thread (-1: any)");
	wr_bench_result_add(r, "worker_cpus_mask", (double)o->cpus.workers,
			    "CPUs of the background threads (0: any)");
	wr_bench_result_add(r, "machine_max_gap_ns", gap,
			    "longest stall of a bare spinning loop there (0.5 s)");
	wr_bench_result_add(r, "machine_gaps_over_5us_per_s", gaps,
			    "stalls over 5 us of that loop, per second");
}

/* Remove what the recorder left in dir (segments and wal.meta only). */
static void
rb_clean(const char *dir)
{
	char cmd[8300];
	snprintf(cmd, sizeof cmd, "rm -f '%s'/*.wal '%s'/*.wal.lz4 '%s'/wal.meta", dir, dir, dir);
	if (system(cmd) != 0)
		wr_tool_error("bench", "cannot clean %s", dir);
}

static void
recorder_usage(FILE *out)
{
	fprintf(out,
		"usage: walrec bench recorder --dir DIR [--events N] [--blocks B] [--json] [--no-pin]\n"
		"\n"
		"Append N events through walrec_recorder_append() into DIR (use an empty\n"
		"directory; its segments are removed afterwards), with the flusher,\n"
		"preparer, maintainer (no compression, 4 hot segments kept) and\n"
		"coordinator (1 ms sync interval) running. Two passes: throughput, then\n"
		"per-append latency with the tick clock (rotations included: they are\n"
		"appends). The appending thread runs alone on the CPU that takes the\n"
		"fewest device interrupts, the background threads on the others\n"
		"(worker_cpus), unless --no-pin.\n"
		"\n"
		"  --events N    events per pass (default 20M)\n"
		"  --blocks B    blocks per segment (default 256: a rotation every 65,536 events)\n"
		"  --no-pin      leave every thread to the scheduler\n");
}

void
wr_bench_recorder_settle(walrec_recorder_t *rec)
{
	for (int i = 0; i < 5000; i++) {
		pthread_mutex_lock(&rec->preparer.lock);
		unsigned c = rec->preparer.count;
		pthread_mutex_unlock(&rec->preparer.lock);
		if (c == WR_PREPARER_DEPTH)
			break;
		usleep(1000);
	}
}

/*
 * CPU time of the appending thread: unlike the wall clock it leaves out the
 * time the thread was not running, so on a machine shared with other work
 * it says more steadily what the appends themselves cost.
 */
static uint64_t
rb_thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
rb_pass(const struct rb_opts *o, struct wr_bench_hist *hist, const struct wr_bench_clock *clk,
	uint64_t *ns, uint64_t *cpu_ns, uint64_t *rotations, uint64_t *waits, uint64_t *stage_waits)
{
	walrec_recorder_config_t cfg;
	walrec_recorder_config_init(&cfg);
	cfg.num_blocks = o->blocks;
	cfg.compression = false;
	cfg.max_hot_segments = 4;
	cfg.worker_cpus = o->cpus.workers;
	walrec_recorder_t *rec = NULL;
	int rc = walrec_recorder_open(&rec, o->dir, &cfg);
	if (rc != 0) {
		wr_tool_error("bench recorder", "cannot open a recorder in %s: %s", o->dir,
			      walrec_strerror(rc));
		return rc;
	}
	wr_bench_recorder_settle(rec);
	uint64_t rot0 = rec->metrics.manager.segment_rotation.count;
	uint64_t wait0 = rec->metrics.manager.rotation_waits.value;
	uint64_t stage0 = rec->metrics.manager.stage_waits.value;
	walrec_event_t ev;
	memset(&ev, 0, sizeof ev);
	uint64_t ts = wr_clock_realtime_ns();
	uint64_t overhead = clk->overhead_ticks;
	uint64_t c0 = rb_thread_cpu_ns();
	uint64_t t0 = wr_clock_now_ns();
	for (uint64_t i = 0; i < o->events && rc == 0; i++) {
		ev.timestamp_ns = ts + i;
		memcpy(ev.payload, &i, sizeof i);
		if (!hist) {
			rc = walrec_recorder_append(rec, &ev, NULL);
			continue;
		}
		uint64_t a = wr_bench_ticks();
		rc = walrec_recorder_append(rec, &ev, NULL);
		uint64_t b = wr_bench_ticks();
		uint64_t d = b - a;
		wr_bench_hist_record(hist, d > overhead ? d - overhead : 0);
	}
	*ns = wr_clock_now_ns() - t0;
	*cpu_ns = rb_thread_cpu_ns() - c0;
	*rotations = rec->metrics.manager.segment_rotation.count - rot0;
	*waits = rec->metrics.manager.rotation_waits.value - wait0;
	*stage_waits = rec->metrics.manager.stage_waits.value - stage0;
	if (rc != 0)
		wr_tool_error("bench recorder", "append: %s", walrec_strerror(rc));
	int crc = walrec_recorder_close(rec);
	walrec_recorder_destroy(rec);
	rb_clean(o->dir);
	return rc != 0 ? rc : crc;
}

int
wr_bench_recorder(int argc, char **argv)
{
	struct rb_opts o = { .events = 20000000, .blocks = 256 };
	int rc = rb_parse(argc, argv, "bench recorder", &o, recorder_usage);
	if (rc != 0)
		return rc < 0 ? WR_EXIT_OK : rc;
	struct wr_bench_clock clk;
	wr_bench_clock_init(&clk);
	struct wr_bench_hist *hist = wr_xmalloc(sizeof *hist);
	memset(hist, 0, sizeof *hist);
	uint64_t ns_t = 0, ns_l = 0, rot_t = 0, rot_l = 0, wait_t = 0, wait_l = 0;
	uint64_t stage_t = 0, stage_l = 0, cpu_t = 0, cpu_l = 0;
	rc = rb_pass(&o, NULL, &clk, &ns_t, &cpu_t, &rot_t, &wait_t, &stage_t);
	if (rc == 0)
		rc = rb_pass(&o, hist, &clk, &ns_l, &cpu_l, &rot_l, &wait_l, &stage_l);
	wr_bench_clock_finish(&clk);
	if (rc != 0) {
		free(hist);
		return WR_EXIT_USAGE;
	}
	struct wr_bench_result r = { .scenario = "recorder", .events = o.events };
	r.seconds = (double)ns_t / 1e9;
	r.events_per_s = (double)o.events / r.seconds;
	wr_bench_result_latency(&r, hist, &clk);
	wr_bench_result_add(&r, "rotations", (double)rot_t, "segment rotations (throughput pass)");
	wr_bench_result_add(&r, "rotation_waits", (double)wait_t,
			    "rotations that waited for the preparer (throughput pass)");
	wr_bench_result_add(&r, "rotations_latency_pass", (double)rot_l,
			    "segment rotations (latency pass)");
	wr_bench_result_add(&r, "rotation_waits_latency_pass", (double)wait_l,
			    "rotations that waited for the preparer (latency pass)");
	wr_bench_result_add(&r, "stage_waits", (double)stage_t,
			    "appends that waited for the flusher (throughput pass)");
	wr_bench_result_add(&r, "stage_waits_latency_pass", (double)stage_l,
			    "appends that waited for the flusher (latency pass)");
	wr_bench_result_add(&r, "blocks", o.blocks, "blocks per segment");
	wr_bench_result_add(&r, "events_per_cpu_s", cpu_t ? (double)o.events * 1e9 / (double)cpu_t : 0,
			    "per second of the appending thread's CPU time (throughput pass)");
	rb_add_placement(&r, &o, &clk);
	wr_bench_result_print(&r, o.json, stdout);
	free(hist);
	return WR_EXIT_OK;
}

/* ---- durable -------------------------------------------------------------- */

static void
durable_usage(FILE *out)
{
	fprintf(out,
		"usage: walrec bench durable --dir DIR [--events N] [--json] [--no-pin]\n"
		"\n"
		"Durable acknowledgement: for K = 1, 16, 256, append K events and call\n"
		"walrec_recorder_sync() (seal + wait until durable), about N events per K\n"
		"(default 20k). Reports events/s and the ack latency (first append of the\n"
		"batch to sync returning), and the p50 of a plain 4 KiB pwrite + fdatasync\n"
		"in DIR as the baseline, one taken before every round (excluded from the\n"
		"events/s), so that both see the same disk. Threads are\n"
		"placed as in 'walrec bench recorder' (--no-pin: not).\n");
}

int
wr_bench_durable(int argc, char **argv)
{
	struct rb_opts o = { .events = 20000, .blocks = 4096 };
	int rc = rb_parse(argc, argv, "bench durable", &o, durable_usage);
	if (rc != 0)
		return rc < 0 ? WR_EXIT_OK : rc;
	if (wr_fs_mkdir(o.dir) != 0) {
		wr_tool_error("bench durable", "cannot use %s", o.dir);
		return WR_EXIT_USAGE;
	}
	static const unsigned ks[] = { 1, 16, 256 };
	double eps[3] = { 0 };
	uint64_t p50[3] = { 0 }, p99[3] = { 0 };
	struct wr_bench_fsync bf;
	if (wr_bench_fsync_open(&bf, o.dir) != 0) {
		wr_tool_error("bench durable", "cannot write a baseline file in %s", o.dir);
		wr_bench_fsync_close(&bf);
		return WR_EXIT_USAGE;
	}
	/* Baseline samples taken between the rounds, all K together. */
	uint64_t *base_v = wr_xmalloc(3 * 5000 * sizeof *base_v);
	size_t base_n = 0;
	for (unsigned j = 0; j < 3; j++) {
		unsigned k = ks[j];
		uint64_t rounds = o.events / k;
		if (rounds < 200)
			rounds = 200;
		if (rounds > 5000)
			rounds = 5000;
		walrec_recorder_config_t cfg;
		walrec_recorder_config_init(&cfg);
		cfg.num_blocks = o.blocks;
		cfg.worker_cpus = o.cpus.workers;
		walrec_recorder_t *rec = NULL;
		rc = walrec_recorder_open(&rec, o.dir, &cfg);
		if (rc != 0) {
			wr_tool_error("bench durable", "open %s: %s", o.dir, walrec_strerror(rc));
			return WR_EXIT_USAGE;
		}
		wr_bench_recorder_settle(rec);
		uint64_t *lat = wr_xmalloc(rounds * sizeof *lat);
		walrec_event_t ev;
		memset(&ev, 0, sizeof ev);
		uint64_t start = wr_clock_now_ns(), in_base = 0;
		for (uint64_t r = 0; r < rounds && rc == 0; r++) {
			uint64_t b = wr_bench_fsync_once(&bf);
			in_base += b;
			if (b)
				base_v[base_n++] = b;
			uint64_t t0 = wr_clock_now_ns();
			for (unsigned i = 0; i < k && rc == 0; i++) {
				ev.timestamp_ns = t0 + i;
				rc = walrec_recorder_append(rec, &ev, NULL);
			}
			if (rc == 0)
				rc = walrec_recorder_sync(rec);
			lat[r] = wr_clock_now_ns() - t0;
		}
		uint64_t total = wr_clock_now_ns() - start - in_base;
		walrec_recorder_destroy(rec);
		rb_clean(o.dir);
		if (rc != 0) {
			wr_tool_error("bench durable", "K=%u: %s", k, walrec_strerror(rc));
			free(lat);
			free(base_v);
			wr_bench_fsync_close(&bf);
			return WR_EXIT_USAGE;
		}
		qsort(lat, rounds, sizeof *lat, wr_bench_u64_cmp);
		eps[j] = (double)(rounds * k) / ((double)total / 1e9);
		p50[j] = lat[rounds / 2];
		p99[j] = lat[rounds * 99 / 100];
		free(lat);
	}
	wr_bench_fsync_close(&bf);
	uint64_t base = wr_bench_median(base_v, base_n);
	free(base_v);
	if (o.json) {
		printf("{\"scenario\":\"durable\",\"baseline_fdatasync_p50_ns\":%llu,\"results\":[",
		       (unsigned long long)base);
		for (unsigned j = 0; j < 3; j++)
			printf("%s{\"k\":%u,\"events_per_s\":%.0f,\"ack_p50_ns\":%llu,\"ack_p99_ns\":%llu}",
			       j ? "," : "", ks[j], eps[j], (unsigned long long)p50[j],
			       (unsigned long long)p99[j]);
		printf("]}\n");
	} else {
		printf("durable acknowledgement (append K, sync)\n");
		printf("  baseline pwrite+fdatasync p50  %10.1f us\n", (double)base / 1e3);
		for (unsigned j = 0; j < 3; j++)
			printf("  K=%-4u %12.0f events/s   ack p50 %8.1f us   p99 %8.1f us\n", ks[j],
			       eps[j], (double)p50[j] / 1e3, (double)p99[j] / 1e3);
	}
	return WR_EXIT_OK;
}
