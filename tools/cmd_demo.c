/* SPDX-License-Identifier: MIT */
/* walrec demo: a recorder and two producer processes for a few seconds, then verify. */
#include <config.h>

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <walrec.h>

#include "lib/clock.h"
#include "recorder/drain.h"
#include "tools/cmd.h"

#define DEMO_PRODUCERS 2
#define DEMO_RATE_PER_PRODUCER 1000000u

/* SIGINT or SIGTERM: stop the producers and the recorder, clean up. */
static volatile sig_atomic_t demo_interrupted;

static void
demo_on_signal(int sig)
{
	(void)sig;
	demo_interrupted = 1;
}

struct demo {
	char dir[4096];
	char name[64];
	uint64_t seconds;
	volatile sig_atomic_t stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	walrec_recorder_t *rec; /* set before ready = 1; read-only for others */
	int ready;              /* 1 running, -1 failed */
	int rc;
	struct wr_drain_stats stats;
	walrec_recorder_state_t final;
};

static void
demo_usage(FILE *out)
{
	fprintf(out,
		"usage: walrec demo [--seconds S] [--keep]\n"
		"\n"
		"Runs a recorder and %d producer processes in a temporary directory for a\n"
		"few seconds, shows progress, stops them, verifies the log (every\n"
		"producer's sequence complete, in order, once) and prints a summary.\n"
		"\n"
		"  --seconds S   how long the producers run (default 3, at most 60)\n"
		"  --keep        keep the temporary directory and print its path\n"
		"\n"
		"SIGINT or SIGTERM stops the producers and the recorder and removes the\n"
		"temporary directory (unless --keep).\n"
		"\n"
		"exit: 0 the log verified, 1 a step failed or the demo was interrupted,\n"
		"2 usage error\n",
		DEMO_PRODUCERS);
}

static void
demo_set_ready(struct demo *d, int v)
{
	pthread_mutex_lock(&d->mu);
	d->ready = v;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

static void
demo_on_running(void *arg, const struct wr_channel *ch, uint64_t resumed_from)
{
	(void)ch;
	(void)resumed_from;
	demo_set_ready(arg, 1);
}

/* The recorder's owner thread: open, drain until stopped, close. */
static void *
demo_recorder(void *arg)
{
	struct demo *d = arg;
	walrec_recorder_config_t cfg;
	walrec_recorder_config_init(&cfg);
	cfg.num_blocks = 1024;
	cfg.max_hot_segments = 4;
	cfg.compression = true;
	walrec_recorder_t *rec = NULL;
	d->rc = walrec_recorder_open(&rec, d->dir, &cfg);
	if (d->rc != 0) {
		demo_set_ready(d, -1);
		return NULL;
	}
	d->rec = rec;
	struct wr_drain_options o;
	wr_drain_options_default(&o);
	o.on_running = demo_on_running;
	o.arg = d;
	d->rc = wr_drain_run(rec, d->name, &o, &d->stop, &d->stats);
	if (d->rc != 0)
		demo_set_ready(d, -1);
	walrec_recorder_meta_state(rec, &d->final);
	int crc = walrec_recorder_close(rec);
	if (d->rc == 0)
		d->rc = crc;
	return NULL;
}

static pid_t
demo_spawn(char *const argv[], const char *out_path)
{
	fflush(stdout); /* or the child would print our buffered lines again */
	pid_t pid = fork();
	if (pid == 0) {
		if (out_path && !freopen(out_path, "w", stdout))
			_exit(127);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	return pid;
}

static int
demo_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
demo_wait_ready(struct demo *d)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	pthread_mutex_lock(&d->mu);
	while (d->ready == 0)
		if (pthread_cond_timedwait(&d->cv, &d->mu, &deadline) == ETIMEDOUT)
			break;
	int ready = d->ready;
	pthread_mutex_unlock(&d->mu);
	return ready;
}

static int
demo_run(struct demo *d, char *tmp)
{
	pthread_t thread;
	if (pthread_create(&thread, NULL, demo_recorder, d) != 0) {
		wr_tool_error("demo", "cannot start the recorder thread");
		return WR_EXIT_FAIL;
	}
	if (demo_wait_ready(d) != 1) {
		__atomic_store_n(&d->stop, 1, __ATOMIC_RELAXED);
		pthread_join(thread, NULL);
		wr_tool_error("demo", "the recorder did not start: %s", walrec_strerror(d->rc));
		return WR_EXIT_FAIL;
	}
	printf("recorder running: directory %s, channel %s\n", d->dir, d->name);

	char events[32], rate[32];
	snprintf(events, sizeof events, "%llu",
		 (unsigned long long)(d->seconds * DEMO_RATE_PER_PRODUCER));
	snprintf(rate, sizeof rate, "%u", DEMO_RATE_PER_PRODUCER);
	char *pargv[] = { "walrec", "produce", d->name, "--events", events, "--rate", rate, NULL };
	pid_t pids[DEMO_PRODUCERS];
	for (int i = 0; i < DEMO_PRODUCERS; i++) {
		char out[4200];
		snprintf(out, sizeof out, "%s/producer-%d.out", tmp, i + 1);
		pids[i] = demo_spawn(pargv, out);
	}
	printf("%d producers started, %s events each at %s events/s\n", DEMO_PRODUCERS, events, rate);

	/* Live progress until every producer has exited. */
	bool tty = isatty(STDOUT_FILENO);
	int running = DEMO_PRODUCERS, failed = 0;
	uint64_t t0 = wr_clock_now_ns(), last_t = t0, last_n = 0, last_print = 0;
	while (running > 0) {
		usleep(100000);
		if (demo_interrupted)
			for (int i = 0; i < DEMO_PRODUCERS; i++)
				if (pids[i] > 0)
					kill(pids[i], SIGTERM);
		for (int i = 0; i < DEMO_PRODUCERS; i++) {
			int st;
			if (pids[i] > 0 && waitpid(pids[i], &st, WNOHANG) == pids[i]) {
				pids[i] = 0;
				running--;
				if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
					failed++;
			}
		}
		uint64_t now = wr_clock_now_ns();
		if (!tty && now - last_print < 1000000000u && running > 0)
			continue;
		walrec_recorder_state_t st;
		walrec_recorder_meta_state(d->rec, &st);
		double dt = (double)(now - last_t) / 1e9;
		double r = dt > 0 ? (double)(st.last_event_id - last_n) / dt : 0;
		printf("%s  %5.1f s  events %10llu  %8.2f M events/s  durable up to id %llu%s",
		       tty ? "\r" : "", (double)(now - t0) / 1e9,
		       (unsigned long long)st.last_event_id, r / 1e6,
		       (unsigned long long)st.durable_event_id, tty ? "   " : "\n");
		fflush(stdout);
		last_t = now;
		last_n = st.last_event_id;
		last_print = now;
	}
	if (tty)
		putchar('\n');

	__atomic_store_n(&d->stop, 1, __ATOMIC_RELAXED); /* read by the drain thread */
	pthread_join(thread, NULL);
	if (demo_interrupted) {
		wr_tool_error("demo", "interrupted: producers and recorder stopped");
		return WR_EXIT_FAIL;
	}
	if (failed || d->rc != 0) {
		wr_tool_error("demo", "%d producer(s) failed; recorder: %s (outputs in %s)", failed,
			      walrec_strerror(d->rc), tmp);
		return WR_EXIT_FAIL;
	}
	printf("recorder stopped: %llu events recorded, last id %llu, durable up to id %llu\n",
	       (unsigned long long)d->stats.events, (unsigned long long)d->final.last_event_id,
	       (unsigned long long)d->final.durable_event_id);

	printf("verifying the log (walrec verify %s --sequences):\n", d->dir);
	fflush(stdout);
	char *vargv[] = { "walrec", "verify", d->dir, "--sequences", NULL };
	pid_t v = demo_spawn(vargv, NULL);
	int st = 0;
	pid_t w;
	while ((w = waitpid(v, &st, 0)) < 0 && errno == EINTR && v > 0)
		;
	if (demo_interrupted) {
		wr_tool_error("demo", "interrupted while verifying");
		return WR_EXIT_FAIL;
	}
	if (v < 0 || w != v || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		wr_tool_error("demo", "verification failed (log kept in %s)", d->dir);
		return WR_EXIT_FAIL;
	}
	printf("demo ok: %d producers, %llu events, every sequence complete and in order\n",
	       DEMO_PRODUCERS, (unsigned long long)d->stats.events);
	return WR_EXIT_OK;
}

int
wr_cmd_demo(int argc, char **argv)
{
	struct demo d = { .seconds = 3 };
	bool keep = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			demo_usage(stdout);
			return WR_EXIT_OK;
		} else if (strcmp(argv[i], "--keep") == 0) {
			keep = true;
		} else if (strcmp(argv[i], "--seconds") == 0) {
			if (++i >= argc || !wr_tool_parse_u64(argv[i], &d.seconds) || d.seconds < 1 ||
			    d.seconds > 60) {
				wr_tool_error("demo", "--seconds needs a whole number from 1 to 60");
				return WR_EXIT_USAGE;
			}
		} else {
			wr_tool_error("demo", "unknown option '%s' (see 'walrec demo --help')", argv[i]);
			return WR_EXIT_USAGE;
		}
	}

	const char *base = getenv("TMPDIR");
	char tmp[4000];
	snprintf(tmp, sizeof tmp, "%s/walrec-demo-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmp)) {
		wr_tool_error("demo", "cannot create a temporary directory in %s: %s",
			      base ? base : "/tmp", strerror(errno));
		return WR_EXIT_USAGE;
	}
	snprintf(d.dir, sizeof d.dir, "%s/wal", tmp);
	snprintf(d.name, sizeof d.name, "demo-%ld", (long)getpid());
	pthread_mutex_init(&d.mu, NULL);
	pthread_cond_init(&d.cv, NULL);
	wr_tool_catch_stop(demo_on_signal);

	int rc = demo_run(&d, tmp);
	walrec_recorder_destroy(d.rec);
	pthread_cond_destroy(&d.cv);
	pthread_mutex_destroy(&d.mu);
	/* The channel was the demo's own: nothing will resume it. */
	wr_channel_unlink(d.name);
	if (keep || (rc != WR_EXIT_OK && !demo_interrupted))
		printf("log kept in %s\n", d.dir);
	else
		nftw(tmp, demo_rm, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
