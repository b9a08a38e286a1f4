/* SPDX-License-Identifier: MIT */
/* 'walrec bench telemetry': producer append throughput with and without a 1 kHz snapshot reader. */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <walrec/producer.h>
#include <walrec/recorder.h>

#include "bench/harness.h"
#include "recorder/drain.h"
#include "recorder/telemetry.h"
#include "tools/cmd.h"

struct bt_opts {
	const char *dir;
	uint64_t events;   /* per producer */
	uint32_t producers;
	uint32_t pairs;
	uint64_t reader_hz;
	uint64_t snapshot_ns;
	bool json;
};

static void
bt_usage(FILE *out)
{
	fprintf(out,
		"usage: walrec bench telemetry --dir DIR [--events N] [--producers P] [--pairs K]\n"
		"                              [--reader-hz H] [--snapshot-interval D] [--json]\n"
		"\n"
		"A recorder process drains a channel into DIR (use an empty directory; its\n"
		"segments are removed after each run) and publishes telemetry snapshots\n"
		"every D (default 10ms, the shortest interval). P producer processes\n"
		"(default 1) each append N events (default 5M) with walrec_producer_append.\n"
		"K pairs of runs (default 5): one without a snapshot reader, one with a\n"
		"reader process copying the snapshot H times a second (default 1000),\n"
		"which of the two goes first alternating from pair to pair.\n"
		"Reports the median throughput of each mode and their ratio (the target:\n"
		"the reader costs at most 5%%), by wall clock and per second of the\n"
		"producers' CPU time (steadier on a machine shared with other work;\n"
		"time spent waiting for ring space is not CPU time). Latency fields are\n"
		"not measured by this scenario (0).\n");
}

static int
bt_parse(int argc, char **argv, struct bt_opts *o)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "events", required_argument, NULL, 'n' },
		{ "producers", required_argument, NULL, 'p' },
		{ "pairs", required_argument, NULL, 'k' },
		{ "reader-hz", required_argument, NULL, 'r' },
		{ "snapshot-interval", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
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
		case 'p':
		case 'k':
		case 'r':
			if (!wr_tool_parse_u64(optarg, &v) || v == 0 ||
			    (opt == 'p' && v > 8) || (opt == 'k' && v > 50) ||
			    (opt == 'r' && v > 100000)) {
				wr_tool_error("bench telemetry", "--%s: '%s' is out of range",
					      opt == 'n' ? "events" : opt == 'p' ? "producers"
							    : opt == 'k' ? "pairs" : "reader-hz",
					      optarg);
				return WR_EXIT_USAGE;
			}
			if (opt == 'n')
				o->events = v;
			else if (opt == 'p')
				o->producers = (uint32_t)v;
			else if (opt == 'k')
				o->pairs = (uint32_t)v;
			else
				o->reader_hz = v;
			break;
		case 's':
			if (!wr_tool_parse_duration_ns(optarg, &v) || v < WR_TEL_MIN_INTERVAL_NS ||
			    v > WR_TEL_MAX_INTERVAL_NS) {
				wr_tool_error("bench telemetry", "--snapshot-interval: '%s' is not in "
								 "10ms..1h", optarg);
				return WR_EXIT_USAGE;
			}
			o->snapshot_ns = v;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			bt_usage(stdout);
			return -1;
		default:
			return wr_bench_bad_option("bench telemetry", argv, bt_usage);
		}
	}
	return wr_bench_args_end("bench telemetry", argc, argv, o->dir, bt_usage);
}

static volatile sig_atomic_t bt_stop;

static void
bt_on_term(int sig)
{
	(void)sig;
	bt_stop = 1;
}

static void
bt_catch_term(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = bt_on_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
}

static void
bt_running(void *arg, const struct wr_channel *ch, uint64_t resumed_from)
{
	(void)ch;
	(void)resumed_from;
	int fd = *(int *)arg;
	char c = 'r';
	if (write(fd, &c, 1) != 1)
		_exit(99);
}

/* The recorder process: drain the channel until SIGTERM. */
static int
bt_recorder(const struct bt_opts *o, const char *name, int ready_fd)
{
	bt_catch_term();
	walrec_recorder_config_t cfg;
	walrec_recorder_config_init(&cfg);
	cfg.num_blocks = 1024;
	cfg.compression = false;
	cfg.max_hot_segments = 4;
	walrec_recorder_t *rec = NULL;
	if (walrec_recorder_open(&rec, o->dir, &cfg) != 0)
		return 1;
	struct wr_drain_options d;
	wr_drain_options_default(&d);
	d.telemetry_interval_ns = o->snapshot_ns;
	d.on_running = bt_running;
	d.arg = &ready_fd;
	int rc = wr_drain_run(rec, name, &d, &bt_stop, NULL);
	walrec_recorder_destroy(rec);
	return rc == 0 ? 0 : 1;
}

/* The reader process: copy the snapshot reader_hz times a second until SIGTERM. */
static int
bt_reader(const struct bt_opts *o, const char *name, int out_fd)
{
	bt_catch_term();
	struct wr_chan_map m;
	if (wr_chan_map_open_readonly(&m, name) != 0)
		return 1;
	struct wr_tel_snapshot *s = aligned_alloc(64, sizeof *s);
	if (!s)
		return 1;
	uint64_t period = 1000000000ull / o->reader_hz;
	uint64_t ok = 0, start = wr_clock_now_ns(), next = start;
	while (!bt_stop) {
		if (wr_tel_read(m.telemetry, s, NULL) == 0)
			ok++;
		/* Absolute deadlines: a late wake-up does not lower the rate. */
		next += period;
		uint64_t now = wr_clock_now_ns();
		if (next > now) {
			struct timespec ts = { .tv_sec = (time_t)(next / 1000000000u),
					       .tv_nsec = (long)(next % 1000000000u) };
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		} else {
			next = now;
		}
	}
	uint64_t r[2] = { ok, wr_clock_now_ns() - start };
	return write(out_fd, r, sizeof r) == (ssize_t)sizeof r ? 0 : 1;
}

/* CPU time of the calling thread: leaves out the time it was not running. */
static uint64_t
bt_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A producer process: attach, wait for the start byte, append, report wall and CPU ns. */
static int
bt_producer(const struct bt_opts *o, const char *name, int go_fd, int out_fd)
{
	walrec_producer_t *p;
	if (walrec_producer_attach(&p, name) != 0)
		return 1;
	char c;
	if (read(go_fd, &c, 1) != 1)
		return 1;
	uint64_t payload[6] = { (uint64_t)getpid(), 0 };
	uint64_t c0 = bt_cpu_ns();
	uint64_t t0 = wr_clock_now_ns();
	for (uint64_t k = 1; k <= o->events; k++) {
		payload[1] = k;
		if (walrec_producer_append(p, payload) < 0)
			return 1;
	}
	uint64_t r[2] = { wr_clock_now_ns() - t0, bt_cpu_ns() - c0 };
	walrec_producer_detach(p);
	return write(out_fd, r, sizeof r) == (ssize_t)sizeof r ? 0 : 1;
}

static void
bt_clean(const char *dir)
{
	char cmd[8300];
	snprintf(cmd, sizeof cmd, "rm -f '%s'/*.wal '%s'/*.wal.lz4 '%s'/wal.meta", dir, dir, dir);
	if (system(cmd) != 0)
		wr_tool_error("bench telemetry", "cannot clean %s", dir);
}

static pid_t
bt_fork(void)
{
	fflush(NULL);
	return fork();
}

/* One run: the aggregate events/s (and per producer CPU second), or a negative value. */
static double
bt_run(const struct bt_opts *o, int run, bool with_reader, double *reads_per_s, double *per_cpu_s)
{
	char name[64];
	snprintf(name, sizeof name, "bench-tel-%d-%d", (int)getpid(), run);
	int ready[2], go[2], res[2], rd[2];
	if (pipe(ready) || pipe(go) || pipe(res) || pipe(rd))
		return -1;
	pid_t rec = bt_fork();
	if (rec == 0)
		_exit(bt_recorder(o, name, ready[1]));
	char c;
	if (rec < 0 || read(ready[0], &c, 1) != 1)
		return -1;
	pid_t reader = -1;
	if (with_reader) {
		reader = bt_fork();
		if (reader == 0)
			_exit(bt_reader(o, name, rd[1]));
	}
	pid_t prod[8];
	for (uint32_t i = 0; i < o->producers; i++) {
		prod[i] = bt_fork();
		if (prod[i] == 0)
			_exit(bt_producer(o, name, go[0], res[1]));
	}
	usleep(100000); /* producers attached, prefaulted, waiting */
	for (uint32_t i = 0; i < o->producers; i++)
		if (write(go[1], "g", 1) != 1)
			return -1;
	uint64_t worst = 0, cpu = 0;
	bool ok = true;
	for (uint32_t i = 0; i < o->producers; i++) {
		uint64_t r[2];
		if (read(res[0], r, sizeof r) != (ssize_t)sizeof r) {
			ok = false;
			continue;
		}
		if (r[0] > worst)
			worst = r[0];
		cpu += r[1];
	}
	for (uint32_t i = 0; i < o->producers; i++)
		waitpid(prod[i], NULL, 0);
	*reads_per_s = 0;
	if (reader > 0) {
		kill(reader, SIGTERM);
		uint64_t r[2] = { 0, 0 };
		if (read(rd[0], r, sizeof r) == (ssize_t)sizeof r && r[1])
			*reads_per_s = (double)r[0] * 1e9 / (double)r[1];
		waitpid(reader, NULL, 0);
	}
	kill(rec, SIGTERM);
	int st = 0;
	waitpid(rec, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		ok = false;
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	close(res[0]);
	close(res[1]);
	close(rd[0]);
	close(rd[1]);
	wr_channel_unlink(name);
	bt_clean(o->dir);
	if (!ok || worst == 0 || cpu == 0)
		return -1;
	*per_cpu_s = (double)(o->events * o->producers) * 1e9 / (double)cpu;
	return (double)(o->events * o->producers) * 1e9 / (double)worst;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int
wr_bench_telemetry(int argc, char **argv)
{
	struct bt_opts o = { .events = 5000000, .producers = 1, .pairs = 5, .reader_hz = 1000,
			     .snapshot_ns = WR_TEL_MIN_INTERVAL_NS };
	int rc = bt_parse(argc, argv, &o);
	if (rc != 0)
		return rc < 0 ? WR_EXIT_OK : rc;
	double without[50], with[50], reads[50], cpu0[50], cpu1[50];
	for (uint32_t k = 0; k < o.pairs; k++) {
		double rps = 0;
		/* Which mode goes first alternates: the second run of a pair finds
		 * the disk still writing back the first one's data. */
		if (k % 2 == 0) {
			without[k] = bt_run(&o, (int)(2 * k), false, &rps, &cpu0[k]);
			with[k] = bt_run(&o, (int)(2 * k + 1), true, &reads[k], &cpu1[k]);
		} else {
			with[k] = bt_run(&o, (int)(2 * k), true, &reads[k], &cpu1[k]);
			without[k] = bt_run(&o, (int)(2 * k + 1), false, &rps, &cpu0[k]);
		}
		if (without[k] < 0 || with[k] < 0) {
			wr_tool_error("bench telemetry", "run %u failed", k);
			return WR_EXIT_USAGE;
		}
		if (!o.json)
			fprintf(stderr, "pair %u: %.2f M events/s without a reader, %.2f M with "
					"(%.0f reads/s); per producer CPU second %.2f M, %.2f M\n",
				k + 1, without[k] / 1e6, with[k] / 1e6, reads[k], cpu0[k] / 1e6,
				cpu1[k] / 1e6);
	}
	qsort(without, o.pairs, sizeof without[0], cmp_double);
	qsort(with, o.pairs, sizeof with[0], cmp_double);
	qsort(reads, o.pairs, sizeof reads[0], cmp_double);
	qsort(cpu0, o.pairs, sizeof cpu0[0], cmp_double);
	qsort(cpu1, o.pairs, sizeof cpu1[0], cmp_double);
	double m0 = without[o.pairs / 2], m1 = with[o.pairs / 2];
	struct wr_bench_result r = { .scenario = "telemetry", .events = o.events * o.producers };
	r.events_per_s = m0;
	r.seconds = (double)r.events / m0;
	wr_bench_result_add(&r, "events_per_s_without_reader", m0, "median, no snapshot reader");
	wr_bench_result_add(&r, "events_per_s_with_reader", m1, "median, with the reader");
	wr_bench_result_add(&r, "ratio", m1 / m0, "with / without (target >= 0.95)");
	double c0 = cpu0[o.pairs / 2], c1 = cpu1[o.pairs / 2];
	wr_bench_result_add(&r, "events_per_cpu_s_without_reader", c0,
			    "median, per second of producer CPU time");
	wr_bench_result_add(&r, "events_per_cpu_s_with_reader", c1, "the same, with the reader");
	wr_bench_result_add(&r, "ratio_cpu", c1 / c0, "with / without, per CPU second");
	wr_bench_result_add(&r, "reader_reads_per_s", reads[o.pairs / 2], "snapshot copies per second");
	wr_bench_result_add(&r, "pairs", o.pairs, "alternating runs of each mode");
	wr_bench_result_add(&r, "producers", o.producers, "producer processes");
	wr_bench_result_add(&r, "snapshot_interval_ns", (double)o.snapshot_ns,
			    "aggregator interval");
	wr_bench_result_print(&r, o.json, stdout);
	return WR_EXIT_OK;
}
