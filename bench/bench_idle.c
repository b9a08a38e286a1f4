/* SPDX-License-Identifier: MIT */
/*
 * 'walrec bench idle': the CPU an idle recorder costs, embedded (this
 * process, getrusage) and as a 'walrec record' process with an attached,
 * idle producer (its threads' run time from /proc/PID/task/TID/schedstat).
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <walrec/producer.h>
#include <walrec/recorder.h>

#include "bench/harness.h"
#include "lib/fs.h"
#include "recorder/channel.h"
#include "tools/cmd.h"

#define CMD "bench idle"

struct idle_opts {
	const char *dir;
	uint64_t seconds_ns;
	uint64_t settle_ns;
	bool json;
};

/* CPU time and context switches of a process since it started. */
struct idle_sample {
	uint64_t cpu_ns;
	uint64_t switches; /* voluntary + involuntary: how often it ran */
	unsigned threads;
};

struct idle_result {
	const char *process;
	const char *about;
	int rc;
	double seconds;
	double cpu_ms;
	double cpu_percent; /* of one core */
	double wakeups_per_s;
	unsigned threads;
};

static void
idle_usage(FILE *out)
{
	fprintf(out,
		"usage: walrec bench idle --dir DIR [--seconds S] [--settle S] [--json]\n"
		"\n"
		"CPU used by an idle recorder, as a percentage of one core:\n"
		"  embedded   a recorder opened in this process (1000 events appended and\n"
		"             synced, then nothing), measured with getrusage(RUSAGE_SELF)\n"
		"  record     a 'walrec record DIR --channel NAME' process with one attached\n"
		"             producer (1000 events appended and durable, then nothing),\n"
		"             measured from /proc/PID/task/*/schedstat (run time in ns)\n"
		"Each is measured over S seconds (default 10) after a settle time (default\n"
		"1 s). Wakeups: context switches per second, all threads.\n"
		"\n"
		"  --dir DIR       where the two WAL directories are created (and removed)\n"
		"  --seconds S     measurement window (default 10; units ms, s)\n"
		"  --settle S      wait before measuring (default 1)\n"
		"  --json          exactly one JSON object on stdout\n"
		"\n"
		"SIGINT or SIGTERM stops the recorders, removes their directories and exits 1\n"
		"without a result.\n"
		"\n"
		"exit: 0 done, 1 interrupted, 2 usage error or a recorder could not be run\n");
}

static int
idle_parse(int argc, char **argv, struct idle_opts *o)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "seconds", required_argument, NULL, 's' },
		{ "settle", required_argument, NULL, 'S' },
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
		case 's':
		case 'S':
			if (!wr_tool_parse_duration_ns(optarg, &v) || v > 3600000000000ull ||
			    (opt == 's' && v < 1000000)) {
				wr_tool_error(CMD, "%s: '%s' is not a duration (%s1 hour)",
					      argv[optind - 1], optarg,
					      opt == 's' ? "1 ms.." : "0..");
				return WR_EXIT_USAGE;
			}
			if (opt == 's')
				o->seconds_ns = v;
			else
				o->settle_ns = v;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			idle_usage(stdout);
			return -1;
		default:
			return wr_bench_bad_option(CMD, argv, idle_usage);
		}
	}
	return wr_bench_args_end(CMD, argc, argv, o->dir, idle_usage);
}

/* SIGINT or SIGTERM: cut the waits short, clean up, exit 1 without a result. */
static volatile sig_atomic_t idle_interrupted;

static void
idle_on_signal(int sig)
{
	(void)sig;
	idle_interrupted = 1;
}

static void
sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
			       .tv_nsec = (long)(ns % 1000000000u) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !idle_interrupted)
		;
}

static void
rusage_sample(struct idle_sample *s)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	s->cpu_ns = ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
		    ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
	s->switches = (uint64_t)ru.ru_nvcsw + (uint64_t)ru.ru_nivcsw;
}

static int
read_small(const char *path, char *buf, size_t n)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	size_t got = fread(buf, 1, n - 1, f);
	buf[got] = '\0';
	fclose(f);
	return 0;
}

/* Sum over the threads of pid: run time (schedstat, ns) and context switches. */
static int
proc_sample(pid_t pid, struct idle_sample *s)
{
	char path[512], buf[4096];
	snprintf(path, sizeof path, "/proc/%ld/task", (long)pid);
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	memset(s, 0, sizeof *s);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/%ld/task/%s/schedstat", (long)pid, e->d_name);
		if (read_small(path, buf, sizeof buf) != 0)
			continue; /* the thread ended meanwhile */
		s->cpu_ns += strtoull(buf, NULL, 10);
		s->threads++;
		snprintf(path, sizeof path, "/proc/%ld/task/%s/status", (long)pid, e->d_name);
		if (read_small(path, buf, sizeof buf) != 0)
			continue;
		for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n")) {
			if (strncmp(l, "voluntary_ctxt_switches:", 24) == 0)
				s->switches += strtoull(l + 24, NULL, 10);
			else if (strncmp(l, "nonvoluntary_ctxt_switches:", 27) == 0)
				s->switches += strtoull(l + 27, NULL, 10);
		}
	}
	closedir(d);
	return s->threads ? 0 : -ESRCH;
}

static void
idle_fill(struct idle_result *r, const struct idle_sample *a, const struct idle_sample *b,
	  uint64_t wall_ns)
{
	r->seconds = (double)wall_ns / 1e9;
	r->cpu_ms = (double)(b->cpu_ns - a->cpu_ns) / 1e6;
	r->cpu_percent = 100.0 * (double)(b->cpu_ns - a->cpu_ns) / (double)wall_ns;
	r->wakeups_per_s = (double)(b->switches - a->switches) / r->seconds;
	r->threads = b->threads;
}

static unsigned
count_threads(void)
{
	struct idle_sample s;
	return proc_sample(getpid(), &s) == 0 ? s.threads : 0;
}

static int
idle_embedded(const struct idle_opts *o, struct idle_result *r)
{
	char dir[4200];
	snprintf(dir, sizeof dir, "%s/idle-embedded.%ld", o->dir, (long)getpid());
	walrec_recorder_config_t cfg;
	walrec_recorder_config_init(&cfg);
	cfg.num_blocks = 256;
	walrec_recorder_t *rec = NULL;
	int rc = walrec_recorder_open(&rec, dir, &cfg);
	if (rc != 0) {
		wr_tool_error(CMD, "cannot open a recorder in %s: %s", dir, walrec_strerror(rc));
		return rc;
	}
	walrec_event_t ev;
	memset(&ev, 0, sizeof ev);
	for (int i = 0; i < 1000 && rc == 0; i++)
		rc = walrec_recorder_append(rec, &ev, NULL);
	if (rc == 0)
		rc = walrec_recorder_sync(rec);
	if (rc == 0) {
		sleep_ns(o->settle_ns);
		struct idle_sample a = { 0 }, b = { 0 };
		rusage_sample(&a);
		uint64_t t0 = wr_clock_now_ns();
		sleep_ns(o->seconds_ns);
		rusage_sample(&b);
		uint64_t wall = wr_clock_now_ns() - t0;
		idle_fill(r, &a, &b, wall);
		r->threads = count_threads();
		if (idle_interrupted)
			rc = -EINTR;
	} else {
		wr_tool_error(CMD, "embedded recorder: %s", walrec_strerror(rc));
	}
	int crc = walrec_recorder_close(rec);
	walrec_recorder_destroy(rec);
	wr_bench_remove_tree(dir);
	return rc != 0 ? rc : crc;
}

static void
idle_log_quiet(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	(void)msg;
}

/*
 * Attach to name, retrying while the recorder starts (at most 10 s); the
 * "no such channel" and "still being created" lines of those tries are
 * not shown.
 */
static int
idle_attach(walrec_producer_t **p, const char *name, pid_t rec)
{
	int rc = -ENOENT;
	walrec_log_set_handler(idle_log_quiet, NULL, WALREC_LOG_ERROR);
	for (int i = 0; i < 1000; i++) {
		rc = walrec_producer_attach(p, name);
		if (rc == 0 || (rc != -ENOENT && rc != -WALREC_EFORMAT))
			break;
		int status;
		if (waitpid(rec, &status, WNOHANG) == rec) {
			rc = -ECHILD;
			break;
		}
		if (idle_interrupted) {
			rc = -EINTR;
			break;
		}
		sleep_ns(10000000);
	}
	walrec_log_set_handler(NULL, NULL, -1);
	return rc;
}

/* Show what 'walrec record' printed, when it failed. */
static void
idle_show_log(const char *path)
{
	char buf[4096];
	if (read_small(path, buf, sizeof buf) == 0 && buf[0])
		fprintf(stderr, "%s", buf);
}

static int
idle_record(const struct idle_opts *o, struct idle_result *r)
{
	char dir[4200], name[64], self[4096], log[4300];
	snprintf(dir, sizeof dir, "%s/idle-record.%ld", o->dir, (long)getpid());
	snprintf(log, sizeof log, "%s.log", dir);
	snprintf(name, sizeof name, "walrec-bench-idle.%ld", (long)getpid());
	ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
	if (len <= 0) {
		wr_tool_error(CMD, "cannot find the walrec program: %s", strerror(errno));
		return -errno;
	}
	self[len] = '\0';
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execl(self, "walrec", "record", dir, "--channel", name, "--blocks", "256",
		      (char *)NULL);
		fprintf(stderr, "walrec %s: exec %s: %s\n", CMD, self, strerror(errno));
		_exit(127);
	}
	walrec_producer_t *p = NULL;
	int rc = idle_attach(&p, name, pid);
	if (rc != 0 && rc != -EINTR) {
		wr_tool_error(CMD, "cannot attach to the channel %s of 'walrec record': %s", name,
			      rc == -ECHILD ? "the recorder exited" : walrec_strerror(rc));
	} else if (rc == 0) {
		uint8_t payload[WALREC_PAYLOAD_SIZE] = { 0 };
		int64_t seq = 0;
		for (int i = 0; i < 1000 && seq >= 0; i++)
			seq = walrec_producer_append(p, payload);
		rc = seq < 0 ? (int)seq
			     : walrec_producer_wait_durable(p, (uint64_t)seq, 10000000000ull);
		if (rc != 0)
			wr_tool_error(CMD, "producer: %s", walrec_strerror(rc));
	}
	if (rc == 0) {
		sleep_ns(o->settle_ns);
		struct idle_sample a, b;
		rc = proc_sample(pid, &a);
		uint64_t t0 = wr_clock_now_ns();
		sleep_ns(o->seconds_ns);
		if (rc == 0)
			rc = proc_sample(pid, &b);
		uint64_t wall = wr_clock_now_ns() - t0;
		if (rc == 0 && idle_interrupted)
			rc = -EINTR;
		else if (rc == 0)
			idle_fill(r, &a, &b, wall);
		else
			wr_tool_error(CMD, "cannot read /proc/%ld/task: %s", (long)pid,
				      walrec_strerror(rc));
	}
	walrec_producer_detach(p);
	kill(pid, SIGTERM);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		wr_tool_error(CMD, "'walrec record' did not stop cleanly (status %d)", status);
		rc = -EIO;
	}
	if (rc != 0 && rc != -EINTR)
		idle_show_log(log);
	unlink(log);
	wr_channel_unlink(name);
	wr_bench_remove_tree(dir);
	return rc;
}

int
wr_bench_idle(int argc, char **argv)
{
	struct idle_opts o = { .seconds_ns = 10000000000ull, .settle_ns = 1000000000ull };
	int rc = idle_parse(argc, argv, &o);
	if (rc != 0)
		return rc < 0 ? WR_EXIT_OK : rc;
	rc = wr_fs_mkdir(o.dir);
	if (rc != 0) {
		wr_tool_error(CMD, "cannot use directory %s: %s", o.dir, walrec_strerror(rc));
		return WR_EXIT_USAGE;
	}
	struct idle_result res[2] = {
		{ .process = "embedded", .about = "walrec_recorder_open in this process" },
		{ .process = "record", .about = "walrec record --channel, one idle producer" },
	};
	wr_tool_catch_stop(idle_on_signal);
	res[0].rc = idle_embedded(&o, &res[0]);
	if (!idle_interrupted)
		res[1].rc = idle_record(&o, &res[1]);
	if (idle_interrupted) {
		wr_tool_error(CMD, "interrupted: recorders stopped, their directories removed");
		return WR_EXIT_FAIL;
	}
	if (o.json) {
		printf("{\"scenario\":\"idle\",\"results\":[");
		for (int i = 0; i < 2; i++) {
			const struct idle_result *r = &res[i];
			printf("%s{\"process\":\"%s\",\"ok\":%s,\"seconds\":%.3f,\"cpu_ms\":%.3f,"
			       "\"cpu_percent\":%.4f,\"wakeups_per_s\":%.1f,\"threads\":%u}",
			       i ? "," : "", r->process, r->rc == 0 ? "true" : "false", r->seconds,
			       r->cpu_ms, r->cpu_percent, r->wakeups_per_s, r->threads);
		}
		printf("]}\n");
	} else {
		printf("idle recorder CPU (%% of one core)\n");
		printf("%-10s %8s %10s %9s %10s %8s  %s\n", "process", "seconds", "cpu ms", "cpu %",
		       "wakeups/s", "threads", "what");
		for (int i = 0; i < 2; i++) {
			const struct idle_result *r = &res[i];
			if (r->rc != 0) {
				printf("%-10s FAILED: %s\n", r->process, walrec_strerror(r->rc));
				continue;
			}
			printf("%-10s %8.2f %10.2f %9.4f %10.1f %8u  %s\n", r->process, r->seconds,
			       r->cpu_ms, r->cpu_percent, r->wakeups_per_s, r->threads, r->about);
		}
	}
	return res[0].rc == 0 && res[1].rc == 0 ? WR_EXIT_OK : WR_EXIT_USAGE;
}
