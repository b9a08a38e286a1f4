/* SPDX-License-Identifier: MIT */
/* 'walrec bench ipc': producer processes -> channel -> recorder -> log. */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <walrec/producer.h>
#include <walrec/recorder.h>

#include "bench/harness.h"
#include "lib/atomics.h"
#include "lib/fs.h"
#include "recorder/channel.h"
#include "recorder/drain.h"
#include "tools/cmd.h"

#define CMD "bench ipc"
#define IPC_MAX_PRODUCERS 64u

struct ipc_opts {
	const char *dir;
	uint32_t producers;
	uint64_t events;        /* per producer */
	uint64_t rate;          /* per producer, events/s; 0: as fast as possible */
	uint32_t durable_every; /* 0: never wait */
	uint32_t ring;          /* slots per producer ring; 0: the channel default */
	bool json, no_pin, park;
	struct wr_bench_cpus cpus; /* the drain thread (owner), the recorder's workers */
	uint64_t producer_cpus;    /* the producer processes (0: anywhere) */
};

/* What a producer process measured; in memory shared with the parent. */
#define IPC_BASE_SAMPLES 4096u
/* Baseline samples on the drain's CPU before the run. */
#define IPC_DRAIN_CPU_SAMPLES 512u

struct ipc_child {
	struct wr_bench_hist append; /* ticks of each accepted try_append */
	struct wr_bench_hist ack;    /* ticks from a batch's first append to its durable ack */
	uint64_t eagain;             /* appends that found the ring full */
	int status;                  /* 0 ok, or the failing step */
	uint32_t base_n;             /* fdatasync baseline samples, ns, one after each ack */
	uint64_t base_ns_pass1;      /* their total in the throughput pass */
	uint64_t base[IPC_BASE_SAMPLES];
};

struct ipc_shared {
	_Atomic uint32_t go;
	uint64_t overhead_ticks;
	struct ipc_child child[];
};

/* The recorder side, on the drain (owner) thread. */
struct ipc_run {
	struct wr_bench_hist *e2e; /* producer stamp -> appended into the segment's block */
	struct ipc_shared *sh;
	uint64_t want, seen;       /* events of both passes */
	uint64_t t_go, t_end;      /* the throughput pass: first append allowed, last one in */
	volatile sig_atomic_t stop;
};

/* SIGINT or SIGTERM: stop the drain; the run then removes its channel and log. */
static volatile sig_atomic_t *ipc_stop;
static volatile sig_atomic_t ipc_interrupted;

static void
ipc_on_signal(int sig)
{
	(void)sig;
	ipc_interrupted = 1;
	*ipc_stop = 1;
}

static void
ipc_usage(FILE *out)
{
	fprintf(out,
		"usage: walrec bench ipc --dir DIR [--producers P] [--events N] [--rate R]\n"
		"                        [--durable-every K] [--ring SLOTS] [--park] [--no-pin] [--json]\n"
		"\n"
		"P producer processes each append N events through the shared-memory\n"
		"channel to a recorder draining it into a fresh log under DIR (removed\n"
		"afterwards), twice: a throughput pass, then a pass timing every append.\n"
		"The drain thread runs alone on the CPU that takes the fewest device\n"
		"interrupts (with --durable-every, the one that takes the disk's\n"
		"completions: it waits on the syncs) and busy-polls (--park: it sleeps\n"
		"when idle); producers and the recorder's background threads share the\n"
		"other CPUs (--no-pin: no placement).\n"
		"Reports the producers' per-append latency (walrec_producer_try_append,\n"
		"tick clock, overhead subtracted), the end-to-end latency from a producer's\n"
		"append to the event being in the segment's block, throughput, and with\n"
		"--durable-every K the latency of walrec_producer_wait_durable after every\n"
		"K events beside an fdatasync baseline the producers sample in DIR after\n"
		"each acknowledgement (same disk, same moment; their time is taken out of\n"
		"the events/s), and one sampled on the drain's CPU before the run.\n"
		"End-to-end figures are queueing delay when producers outrun the recorder:\n"
		"use --rate for latency at a given load. SIGINT or SIGTERM stops the run,\n"
		"removes its channel and log, and exits 1 without a result.\n"
		"\n"
		"  --producers P      producer processes, 1..%u (default 1)\n"
		"  --events N         events per producer (default 2M; k/M/G suffixes)\n"
		"  --rate R           events/s per producer, paced (default: as fast as possible)\n"
		"  --durable-every K  wait until durable after every K events (default: never)\n"
		"  --ring SLOTS       slots per producer ring, a power of two (default 65536)\n",
		IPC_MAX_PRODUCERS);
}

static int
ipc_parse(int argc, char **argv, struct ipc_opts *o)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "producers", required_argument, NULL, 'p' },
		{ "events", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ "durable-every", required_argument, NULL, 'k' },
		{ "ring", required_argument, NULL, 'R' },
		{ "park", no_argument, NULL, 'P' },
		{ "no-pin", no_argument, NULL, 'N' },
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
		case 'p':
			if (!wr_tool_parse_u64(optarg, &v) || v == 0 || v > IPC_MAX_PRODUCERS) {
				wr_tool_error(CMD, "--producers: '%s' is not in 1..%u", optarg,
					      IPC_MAX_PRODUCERS);
				return WR_EXIT_USAGE;
			}
			o->producers = (uint32_t)v;
			break;
		case 'n':
			if (!wr_tool_parse_u64(optarg, &v) || v == 0) {
				wr_tool_error(CMD, "--events: '%s' is not a positive count", optarg);
				return WR_EXIT_USAGE;
			}
			o->events = v;
			break;
		case 'r':
			if (!wr_tool_parse_u64(optarg, &v) || v == 0) {
				wr_tool_error(CMD, "--rate: '%s' is not a positive rate", optarg);
				return WR_EXIT_USAGE;
			}
			o->rate = v;
			break;
		case 'k':
			if (!wr_tool_parse_u64(optarg, &v) || v == 0 || v > UINT32_MAX) {
				wr_tool_error(CMD, "--durable-every: '%s' is not a positive count",
					      optarg);
				return WR_EXIT_USAGE;
			}
			o->durable_every = (uint32_t)v;
			break;
		case 'R':
			if (!wr_tool_parse_u64(optarg, &v) || v < WR_CHAN_MIN_CAPACITY ||
			    v > WR_CHAN_MAX_CAPACITY || (v & (v - 1)) != 0) {
				wr_tool_error(CMD, "--ring: '%s' is not a power of two in %u..%u",
					      optarg, WR_CHAN_MIN_CAPACITY, WR_CHAN_MAX_CAPACITY);
				return WR_EXIT_USAGE;
			}
			o->ring = (uint32_t)v;
			break;
		case 'P':
			o->park = true;
			break;
		case 'N':
			o->no_pin = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			ipc_usage(stdout);
			return -1;
		default:
			return wr_bench_bad_option(CMD, argv, ipc_usage);
		}
	}
	return wr_bench_args_end(CMD, argc, argv, o->dir, ipc_usage);
}

/* Pin the calling process to the CPUs in mask (0: leave it). */
static void
ipc_pin_mask(uint64_t mask)
{
	if (mask == 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	for (int i = 0; i < 64; i++)
		if (mask & ((uint64_t)1 << i))
			CPU_SET(i, &set);
	sched_setaffinity(0, sizeof set, &set);
}

static void
ipc_quiet(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	(void)msg;
}

/*
 * One producer process. Payload: tag (u64: its number + 1), sequence
 * (u64, from 1), the tick counter right before the append (u64), zeros.
 */
static void
ipc_child_main(const struct ipc_opts *o, const char *name, uint32_t me, struct ipc_shared *sh)
{
	struct ipc_child *c = &sh->child[me];
	ipc_pin_mask(o->producer_cpus);
	walrec_producer_t *p = NULL;
	/* The channel appears when the recorder is up: quiet retries until then. */
	walrec_log_set_handler(ipc_quiet, NULL, WALREC_LOG_ERROR);
	for (int i = 0; i < 10000 && walrec_producer_attach(&p, name) != 0; i++)
		usleep(1000);
	walrec_log_set_handler(NULL, NULL, WALREC_LOG_WARN);
	if (p == NULL) {
		c->status = 1;
		_exit(1);
	}
	while (wr_load_acquire(&sh->go) == 0)
		usleep(100);
	uint64_t payload[6] = { me + 1, 0, 0, 0, 0, 0 };
	uint64_t overhead = sh->overhead_ticks;
	/* The baseline is sampled between the acknowledgements, on the same disk. */
	struct wr_bench_fsync bf = { .fd = -1 };
	if (o->durable_every && wr_bench_fsync_open(&bf, o->dir) != 0) {
		c->status = 4;
		_exit(4);
	}
	uint64_t start = wr_clock_now_ns(), batch_t0 = 0;
	for (uint64_t k = 1; k <= 2 * o->events; k++) {
		/* First pass: throughput, nothing timed. Second: every append timed. */
		bool timed = k > o->events;
		if (o->rate) {
			uint64_t due = start + (uint64_t)((double)k * 1e9 / (double)o->rate);
			while (wr_clock_now_ns() < due)
				wr_cpu_relax();
		}
		payload[1] = k;
		payload[3] = timed;
		int64_t seq;
		if (!timed) {
			/* Nothing measured per event here, no clock read of ours. */
			payload[2] = 0;
			if (o->durable_every && (k - 1) % o->durable_every == 0)
				batch_t0 = wr_clock_ticks();
			seq = walrec_producer_append(p, payload);
		} else {
			uint64_t t0 = wr_bench_ticks();
			payload[2] = t0;
			if (o->durable_every && (k - 1) % o->durable_every == 0)
				batch_t0 = t0;
			seq = walrec_producer_try_append(p, payload);
			uint64_t t1 = wr_bench_ticks();
			if (seq == -EAGAIN) {
				c->eagain++;
				seq = walrec_producer_append(p, payload);
			} else if (seq > 0) {
				uint64_t d = t1 - t0;
				wr_bench_hist_record(&c->append, d > overhead ? d - overhead : 0);
			}
		}
		if (seq <= 0) {
			c->status = 2;
			_exit(2);
		}
		if (o->durable_every && k % o->durable_every == 0) {
			if (walrec_producer_wait_durable(p, (uint64_t)seq, 10000000000ull) != 0) {
				c->status = 3;
				_exit(3);
			}
			uint64_t d = wr_bench_ticks() - batch_t0;
			wr_bench_hist_record(&c->ack, d > overhead ? d - overhead : 0);
			uint64_t b = wr_bench_fsync_once(&bf);
			if (b && c->base_n < IPC_BASE_SAMPLES)
				c->base[c->base_n++] = b;
			if (!timed)
				c->base_ns_pass1 += b;
			if (o->rate)
				start += b; /* the pacing does not count the baseline */
		}
	}
	wr_bench_fsync_close(&bf);
	walrec_producer_detach(p);
	_exit(0);
}

static void
ipc_on_running(void *arg, const struct wr_channel *ch, uint64_t resumed_from)
{
	(void)ch;
	(void)resumed_from;
	struct ipc_run *r = arg;
	r->t_go = wr_clock_now_ns();
	/* Release: pairs with the children's acquire load of go. */
	wr_store_release(&r->sh->go, 1);
}

static void
ipc_on_appended(void *arg, const walrec_event_t *ev, uint64_t id)
{
	(void)id;
	struct ipc_run *r = arg;
	uint64_t stamp, timed;
	memcpy(&stamp, ev->payload + 16, sizeof stamp);
	memcpy(&timed, ev->payload + 24, sizeof timed);
	if (timed) {
		uint64_t now = wr_clock_ticks();
		wr_bench_hist_record(r->e2e, now > stamp ? now - stamp : 0);
	}
	++r->seen;
	if (r->seen == r->want / 2)
		r->t_end = wr_clock_now_ns();
	if (r->seen == r->want)
		r->stop = 1;
}

static void
ipc_hist_merge(struct wr_bench_hist *dst, const struct wr_bench_hist *src)
{
	for (unsigned i = 0; i < WR_BENCH_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	if (src->max > dst->max)
		dst->max = src->max;
}

static double
ipc_q(const struct wr_bench_hist *h, const struct wr_bench_clock *clk, double q)
{
	return (double)wr_bench_hist_quantile(h, q) * clk->ns_per_tick;
}

/* Median of IPC_DRAIN_CPU_SAMPLES fdatasyncs in dir from the calling thread. 0 or -errno. */
static int
ipc_drain_cpu_baseline(const char *dir, uint64_t *median)
{
	struct wr_bench_fsync bf = { .fd = -1 };
	uint64_t v[IPC_DRAIN_CPU_SAMPLES];
	int rc = wr_bench_fsync_open(&bf, dir);
	for (uint32_t i = 0; rc == 0 && i < IPC_DRAIN_CPU_SAMPLES; i++)
		if ((v[i] = wr_bench_fsync_once(&bf)) == 0)
			rc = -EIO;
	wr_bench_fsync_close(&bf);
	if (rc == 0)
		*median = wr_bench_median(v, IPC_DRAIN_CPU_SAMPLES);
	return rc;
}

int
wr_bench_ipc(int argc, char **argv)
{
	struct ipc_opts o = { .producers = 1, .events = 2000000 };
	int rc = ipc_parse(argc, argv, &o);
	if (rc != 0)
		return rc < 0 ? WR_EXIT_OK : rc;
	if (wr_fs_mkdir(o.dir) != 0) {
		wr_tool_error(CMD, "cannot use %s", o.dir);
		return WR_EXIT_USAGE;
	}
	char logdir[4200], name[64];
	snprintf(name, sizeof name, "bench-ipc-%d", (int)getpid());
	snprintf(logdir, sizeof logdir, "%s/%s", o.dir, name);
	if (mkdir(logdir, 0700) != 0) {
		wr_tool_error(CMD, "cannot create %s: %s", logdir, strerror(errno));
		return WR_EXIT_USAGE;
	}
	o.cpus.owner = -1;
	o.cpus.workers = 0;
	/* A drain that syncs for waiting producers goes where the disk's
	 * completions land; one that only appends, where the fewest do. */
	if (!o.no_pin && o.durable_every)
		wr_bench_cpus_for_syncs(&o.cpus, o.dir);
	else if (!o.no_pin)
		wr_bench_cpus_default(&o.cpus);
	/* Producers share the workers' CPUs: the drain thread stays alone. */
	o.producer_cpus = o.cpus.workers;
	wr_bench_pin_self(o.cpus.owner);
	/* The fdatasync the drain's CPU gets with nothing else running. */
	uint64_t base_drain_cpu = 0;
	if (o.durable_every && (rc = ipc_drain_cpu_baseline(o.dir, &base_drain_cpu)) != 0) {
		wr_tool_error(CMD, "cannot sample fdatasync in %s: %s", o.dir, strerror(-rc));
		rmdir(logdir);
		return WR_EXIT_USAGE;
	}

	struct wr_bench_clock clk;
	wr_bench_clock_init(&clk);
	size_t shsize = sizeof(struct ipc_shared) + o.producers * sizeof(struct ipc_child);
	struct ipc_shared *sh = mmap(NULL, shsize, PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		wr_tool_error(CMD, "cannot map %zu bytes: %s", shsize, strerror(errno));
		return WR_EXIT_USAGE;
	}
	sh->overhead_ticks = clk.overhead_ticks;
	pid_t pids[IPC_MAX_PRODUCERS];
	for (uint32_t i = 0; i < o.producers; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			ipc_child_main(&o, name, i, sh);
		if (pids[i] < 0) {
			wr_tool_error(CMD, "fork: %s", strerror(errno));
			return WR_EXIT_USAGE;
		}
	}

	walrec_recorder_config_t cfg;
	walrec_recorder_config_init(&cfg);
	cfg.compression = false;
	cfg.max_hot_segments = 4;
	cfg.worker_cpus = o.cpus.workers;
	walrec_recorder_t *rec = NULL;
	struct ipc_run run = { .sh = sh, .want = 2 * o.events * o.producers };
	run.e2e = wr_xmalloc(sizeof *run.e2e);
	memset(run.e2e, 0, sizeof *run.e2e);
	/* After the forks: the producers keep the default actions. */
	ipc_stop = &run.stop;
	wr_tool_catch_stop(ipc_on_signal);
	rc = walrec_recorder_open(&rec, logdir, &cfg);
	struct wr_drain_stats stats;
	if (rc == 0) {
		struct wr_drain_options d;
		wr_drain_options_default(&d);
		d.channel.producers_max = o.producers;
		if (o.ring)
			d.channel.ring_capacity = o.ring;
		d.busy_poll = !o.park;
		d.on_running = ipc_on_running;
		d.on_appended = ipc_on_appended;
		d.arg = &run;
		rc = wr_drain_run(rec, name, &d, &run.stop, &stats);
		int crc = walrec_recorder_close(rec);
		if (rc == 0)
			rc = crc;
		walrec_recorder_destroy(rec);
	}
	wr_channel_unlink(name);
	int failed = 0;
	for (uint32_t i = 0; i < o.producers; i++) {
		int st = 0;
		if (ipc_interrupted)
			kill(pids[i], SIGKILL);
		while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed++;
	}
	char cmd[8600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", logdir);
	if (system(cmd) != 0)
		wr_tool_error(CMD, "cannot remove %s", logdir);
	wr_bench_clock_finish(&clk);
	if (ipc_interrupted) {
		wr_tool_error(CMD, "interrupted: producers and recorder stopped, %s removed", logdir);
		return WR_EXIT_FAIL;
	}
	if (rc != 0 || failed || run.seen != run.want) {
		wr_tool_error(CMD, "%s; %d producer(s) failed; %llu of %llu events arrived",
			      rc ? walrec_strerror(rc) : "recorder ok", failed,
			      (unsigned long long)run.seen, (unsigned long long)run.want);
		return WR_EXIT_FAIL;
	}

	struct wr_bench_hist *app = wr_xmalloc(sizeof *app), *ack = wr_xmalloc(sizeof *ack);
	memset(app, 0, sizeof *app);
	memset(ack, 0, sizeof *ack);
	uint64_t eagain = 0, base_pass1 = 0;
	uint64_t *base_v = wr_xmalloc((size_t)o.producers * IPC_BASE_SAMPLES * sizeof *base_v);
	size_t base_n = 0;
	for (uint32_t i = 0; i < o.producers; i++) {
		ipc_hist_merge(app, &sh->child[i].append);
		ipc_hist_merge(ack, &sh->child[i].ack);
		eagain += sh->child[i].eagain;
		if (sh->child[i].base_ns_pass1 > base_pass1)
			base_pass1 = sh->child[i].base_ns_pass1;
		for (uint32_t k = 0; k < sh->child[i].base_n; k++)
			base_v[base_n++] = sh->child[i].base[k];
	}
	uint64_t base = wr_bench_median(base_v, base_n);
	free(base_v);
	struct wr_bench_result r = { .scenario = "ipc", .events = run.want / 2 };
	/* Minus the producers' baseline samples (the longest total of them). */
	uint64_t elapsed = run.t_end - run.t_go;
	r.seconds = (double)(elapsed > base_pass1 ? elapsed - base_pass1 : elapsed) / 1e9;
	r.events_per_s = r.seconds > 0 ? (double)r.events / r.seconds : 0;
	wr_bench_result_latency(&r, app, &clk);
	wr_bench_result_add(&r, "producers", o.producers, "producer processes");
	wr_bench_result_add(&r, "producer_p50_ns", r.p50_ns, "try_append, median");
	wr_bench_result_add(&r, "producer_p999_ns", r.p999_ns, "try_append, p99.9");
	wr_bench_result_add(&r, "e2e_p50_ns", ipc_q(run.e2e, &clk, 0.5),
			    "append -> in the segment's block, median");
	wr_bench_result_add(&r, "e2e_p99_ns", ipc_q(run.e2e, &clk, 0.99), "same, p99");
	wr_bench_result_add(&r, "e2e_p999_ns", ipc_q(run.e2e, &clk, 0.999), "same, p99.9");
	wr_bench_result_add(&r, "ring_full_waits", (double)eagain, "appends that found the ring full");
	wr_bench_result_add(&r, "rate_per_producer", (double)o.rate, "paced events/s (0: unpaced)");
	wr_bench_result_add(&r, "busy_poll", o.park ? 0 : 1, "recorder spins when idle");
	if (o.durable_every) {
		wr_bench_result_add(&r, "durable_every", o.durable_every, "events per durable wait");
		wr_bench_result_add(&r, "ack_p50_ns", ipc_q(ack, &clk, 0.5),
				    "first append of a batch -> durable, median");
		wr_bench_result_add(&r, "ack_p99_ns", ipc_q(ack, &clk, 0.99), "same, p99");
		wr_bench_result_add(&r, "baseline_fdatasync_p50_ns", (double)base,
				    "4 KiB pwrite + fdatasync in DIR, median");
		wr_bench_result_add(&r, "baseline_drain_cpu_fdatasync_p50_ns", (double)base_drain_cpu,
				    "same, on the drain's CPU before the run");
	}
	wr_bench_result_add(&r, "owner_cpu", o.cpus.owner, "CPU of the drain thread (-1: any)");
	wr_bench_result_add(&r, "worker_cpus_mask", (double)o.cpus.workers,
			    "CPUs of the recorder's background threads");
	wr_bench_result_add(&r, "producer_cpus_mask", (double)o.producer_cpus,
			    "CPUs of the producer processes (0: any)");
	wr_bench_result_print(&r, o.json, stdout);
	free(app);
	free(ack);
	free(run.e2e);
	munmap(sh, shsize);
	return WR_EXIT_OK;
}
