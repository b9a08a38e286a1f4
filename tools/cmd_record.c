/* SPDX-License-Identifier: MIT */
/* walrec record: run a recorder that drains the channel /walrec.<name> into a WAL directory. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <libutil.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <walrec/recorder.h>

#include "lib/clock.h"
#include "lib/thread.h"
#include "recorder/drain.h"
#include "recorder/telemetry.h"
#include "tools/cmd.h"

static volatile sig_atomic_t record_stop;

static void
record_on_signal(int sig)
{
	(void)sig;
	record_stop = 1;
}

static void
record_usage(FILE *out)
{
	fprintf(out,
		"usage: walrec record DIR --channel NAME [--blocks B] [--max-hot N] [--max-cold N]\n"
		"                     [--sync-interval-us U] [--no-compress] [--group] [--pidfile PATH]\n"
		"                     [--cpu N] [--worker-cpus LIST] [--stage-blocks N] [--busy-poll]\n"
		"                     [--telemetry-interval D] [--metrics-file PATH [--metrics-interval D]]\n"
		"\n"
		"Create (or reopen and resume) the shared-memory channel /walrec.NAME and append\n"
		"every event producers put into it to the WAL in DIR, until SIGINT or SIGTERM;\n"
		"then drain the rings, sync, mark the channel stopped and close. The channel's\n"
		"name goes into DIR/walrec.channel, where 'walrec dump DIR --follow' finds it.\n"
		"\n"
		"  --channel NAME          channel name: 1..64 of [A-Za-z0-9._-] (required)\n"
		"  --blocks B              blocks per segment (256 events each), default 4096\n"
		"  --max-hot N             closed uncompressed segments to keep, default 4\n"
		"  --max-cold N            compressed segments to keep, 0 = no limit (default)\n"
		"  --sync-interval-us U    longest wait before a partial block is synced, default 1000\n"
		"  --no-compress           delete old segments instead of compressing them\n"
		"  --group                 channel mode 0660 instead of 0600\n"
		"  --pidfile PATH          lock file, default DIR/walrec.pid: one recorder per DIR\n"
		"  --cpu N                 pin the thread that drains the channel to CPU N\n"
		"  --worker-cpus LIST      CPUs for the background threads, e.g. 0 or 0,2-3\n"
		"                          (with --cpu, default: every other CPU)\n"
		"  --stage-blocks N        sealed blocks buffered in memory, power of two, 4..65536\n"
		"                          (default 1024, 16 MiB)\n"
		"  --busy-poll             never sleep when the channel is idle: lowest latency,\n"
		"                          one CPU kept busy (pin it with --cpu)\n"
		"  --telemetry-interval D  publish a telemetry snapshot in the channel every D\n"
		"                          (10ms..1h, default 1s) for 'walrec stat NAME'\n"
		"  --metrics-file PATH     write the metrics in Prometheus text format to PATH\n"
		"                          (node_exporter textfile collector: name it *.prom),\n"
		"                          as a temporary file renamed over PATH, every\n"
		"  --metrics-interval D    D (10ms..1h, default 1s); a last time at exit\n"
		"\n"
		"exit: 0 clean stop, 1 the recorder failed, 2 usage error, channel or directory\n"
		"      owned by another recorder, or I/O error at start\n");
}

static bool
record_u32(const char *opt, const char *val, uint32_t *out)
{
	uint64_t v;
	if (val == NULL || !wr_tool_parse_u64(val, &v) || v > UINT32_MAX) {
		wr_tool_error("record", "%s needs a number (0..4294967295), got '%s'", opt,
			      val ? val : "");
		return false;
	}
	*out = (uint32_t)v;
	return true;
}

/*
 * --metrics-file: a thread of this program reads the channel's snapshot
 * through a read-only mapping of its own (as 'walrec stat' does, so its
 * lifetime does not depend on the recorder's) and replaces PATH with its
 * Prometheus rendering every interval.
 */
struct record_mfile {
	const char *path;
	const char *channel;
	uint64_t interval_ns;
	uint64_t cpus; /* the recorder's worker CPUs (0: any) */
	char tmp[4096 + 64];
	struct wr_chan_map map;
	bool mapped;
	struct wr_tel_view *view;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;      /* under lock */
	int last_error; /* reported once until it changes */
};

static void
mfile_error(struct record_mfile *mf, int err, const char *what)
{
	if (err == mf->last_error)
		return;
	mf->last_error = err;
	wr_tool_error("record", "metrics file %s: %s: %s", mf->path, what, walrec_strerror(err));
}

/* Render the snapshot into the temporary file and rename it over PATH. */
static void
mfile_write(struct record_mfile *mf)
{
	int rc = wr_tel_observe(&mf->map, mf->view);
	if (rc < 0) {
		mfile_error(mf, rc, "reading the snapshot");
		return;
	}
	int fd = open(mf->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		mfile_error(mf, -errno, mf->tmp);
		return;
	}
	FILE *f = fdopen(fd, "w");
	if (!f) {
		mfile_error(mf, -errno, mf->tmp);
		close(fd);
		unlink(mf->tmp);
		return;
	}
	wr_tel_render(f, WR_OUT_PROMETHEUS, mf->channel, mf->view, NULL);
	bool ok = !ferror(f);
	if (fclose(f) != 0)
		ok = false;
	if (!ok) {
		mfile_error(mf, -EIO, "writing");
		unlink(mf->tmp);
		return;
	}
	if (rename(mf->tmp, mf->path) != 0) {
		mfile_error(mf, -errno, "rename");
		unlink(mf->tmp);
		return;
	}
	mf->last_error = 0;
}

static void *
mfile_main(void *arg)
{
	struct record_mfile *mf = arg;
	pthread_mutex_lock(&mf->lock);
	while (!mf->stop) {
		pthread_mutex_unlock(&mf->lock);
		mfile_write(mf);
		pthread_mutex_lock(&mf->lock);
		struct timespec dl = wr_clock_deadline(mf->interval_ns);
		while (!mf->stop && pthread_cond_timedwait(&mf->wake, &mf->lock, &dl) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&mf->lock);
	return NULL;
}

/* Check before the recorder starts that the temporary file can be made. */
static bool
mfile_prepare(struct record_mfile *mf)
{
	if ((size_t)snprintf(mf->tmp, sizeof mf->tmp, "%s.%ld.tmp", mf->path, (long)getpid()) >=
	    sizeof mf->tmp) {
		wr_tool_error("record", "--metrics-file %s: path too long", mf->path);
		return false;
	}
	int fd = open(mf->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		wr_tool_error("record", "--metrics-file: cannot create %s: %s", mf->tmp,
			      strerror(errno));
		return false;
	}
	close(fd);
	unlink(mf->tmp);
	mf->view = aligned_alloc(64, (sizeof *mf->view + 63) & ~(size_t)63);
	if (!mf->view) {
		wr_tool_error("record", "out of memory");
		return false;
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&mf->lock, NULL);
	pthread_cond_init(&mf->wake, &ca);
	pthread_condattr_destroy(&ca);
	return true;
}

static void
mfile_start(struct record_mfile *mf)
{
	int rc = wr_chan_map_open_readonly(&mf->map, mf->channel);
	if (rc < 0) {
		mfile_error(mf, rc, "mapping the channel");
		return;
	}
	mf->mapped = true;
	/* Not on the drain thread's CPU (--cpu): on the workers' CPUs. */
	rc = wr_thread_start(&mf->thread, "walrec-metrics", mf->cpus, mfile_main, mf);
	if (rc != 0)
		mfile_error(mf, rc, "starting its thread");
	else
		mf->started = true;
}

/* Stop the thread and write the final snapshot once more. */
static void
mfile_finish(struct record_mfile *mf)
{
	if (mf->started) {
		pthread_mutex_lock(&mf->lock);
		mf->stop = true;
		pthread_cond_signal(&mf->wake);
		pthread_mutex_unlock(&mf->lock);
		pthread_join(mf->thread, NULL);
	}
	if (mf->mapped) {
		mfile_write(mf);
		wr_chan_map_close(&mf->map);
	}
	pthread_mutex_destroy(&mf->lock);
	pthread_cond_destroy(&mf->wake);
	free(mf->view);
}

struct record_ctx {
	const char *name;
	struct record_mfile *mfile; /* NULL without --metrics-file */
};

static void
record_running(void *arg, const struct wr_channel *ch, uint64_t resumed_from)
{
	(void)ch;
	struct record_ctx *ctx = arg;
	const char *name = ctx->name;
	if (ctx->mfile)
		mfile_start(ctx->mfile);
	if (resumed_from)
		fprintf(stderr, "walrec record: channel %s resumed after event %llu, running\n",
			name, (unsigned long long)resumed_from);
	else
		fprintf(stderr, "walrec record: channel %s running\n", name);
}

int
wr_cmd_record(int argc, char **argv)
{
	const char *dir = NULL, *name = NULL, *pidpath = NULL;
	struct record_mfile mfile;
	memset(&mfile, 0, sizeof mfile);
	mfile.interval_ns = WR_TEL_DEFAULT_INTERVAL_NS;
	bool metrics_interval_set = false;
	int cpu = -1;
	walrec_recorder_config_t cfg;
	walrec_recorder_config_init(&cfg);
	struct wr_drain_options o;
	wr_drain_options_default(&o);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			record_usage(stdout);
			return WR_EXIT_OK;
		} else if (strcmp(a, "--channel") == 0) {
			if (!v) {
				wr_tool_error("record", "--channel needs a NAME");
				return WR_EXIT_USAGE;
			}
			name = v;
			i++;
		} else if (strcmp(a, "--pidfile") == 0) {
			if (!v) {
				wr_tool_error("record", "--pidfile needs a PATH");
				return WR_EXIT_USAGE;
			}
			pidpath = v;
			i++;
		} else if (strcmp(a, "--blocks") == 0) {
			if (!record_u32(a, v, &cfg.num_blocks))
				return WR_EXIT_USAGE;
			i++;
		} else if (strcmp(a, "--max-hot") == 0) {
			if (!record_u32(a, v, &cfg.max_hot_segments))
				return WR_EXIT_USAGE;
			i++;
		} else if (strcmp(a, "--max-cold") == 0) {
			if (!record_u32(a, v, &cfg.max_cold_segments))
				return WR_EXIT_USAGE;
			i++;
		} else if (strcmp(a, "--sync-interval-us") == 0) {
			if (!record_u32(a, v, &cfg.sync_interval_us))
				return WR_EXIT_USAGE;
			i++;
		} else if (strcmp(a, "--telemetry-interval") == 0 ||
			   strcmp(a, "--metrics-interval") == 0) {
			uint64_t ns;
			if (!v || !wr_tool_parse_duration_ns(v, &ns) || ns < WR_TEL_MIN_INTERVAL_NS ||
			    ns > WR_TEL_MAX_INTERVAL_NS) {
				wr_tool_error("record", "%s needs a duration from 10ms to 1h (e.g. 500ms, "
							"2s), got '%s'", a, v ? v : "");
				return WR_EXIT_USAGE;
			}
			if (a[2] == 't') {
				o.telemetry_interval_ns = ns;
			} else {
				mfile.interval_ns = ns;
				metrics_interval_set = true;
			}
			i++;
		} else if (strcmp(a, "--metrics-file") == 0) {
			if (!v || !*v) {
				wr_tool_error("record", "--metrics-file needs a PATH");
				return WR_EXIT_USAGE;
			}
			mfile.path = v;
			i++;
		} else if (strcmp(a, "--stage-blocks") == 0) {
			if (!record_u32(a, v, &cfg.stage_blocks))
				return WR_EXIT_USAGE;
			i++;
		} else if (strcmp(a, "--cpu") == 0) {
			uint64_t c;
			if (!v || !wr_tool_parse_u64(v, &c) || c > 63) {
				wr_tool_error("record", "--cpu needs a CPU number 0..63, got '%s'",
					      v ? v : "");
				return WR_EXIT_USAGE;
			}
			cpu = (int)c;
			i++;
		} else if (strcmp(a, "--worker-cpus") == 0) {
			if (!v || !wr_tool_parse_cpu_list(v, &cfg.worker_cpus)) {
				wr_tool_error("record", "--worker-cpus needs a CPU list like 0 or 0,2-3, "
						       "got '%s'", v ? v : "");
				return WR_EXIT_USAGE;
			}
			i++;
		} else if (strcmp(a, "--no-compress") == 0) {
			cfg.compression = false;
		} else if (strcmp(a, "--busy-poll") == 0) {
			o.busy_poll = true;
		} else if (strcmp(a, "--group") == 0) {
			o.channel.group_access = true;
		} else if (a[0] == '-') {
			wr_tool_error("record", "unknown option '%s' (see 'walrec record --help')", a);
			return WR_EXIT_USAGE;
		} else if (dir) {
			wr_tool_error("record", "one DIR only ('%s' and '%s')", dir, a);
			return WR_EXIT_USAGE;
		} else {
			dir = a;
		}
	}
	if (!dir || !name) {
		wr_tool_error("record", "DIR and --channel NAME are required (see 'walrec record --help')");
		return WR_EXIT_USAGE;
	}
	if (wr_channel_name_check(name) < 0) {
		wr_tool_error("record", "bad channel name '%s': 1..64 characters of [A-Za-z0-9._-], "
				       "not starting with '.', no '..'", name);
		return WR_EXIT_USAGE;
	}
	if (metrics_interval_set && !mfile.path) {
		wr_tool_error("record", "--metrics-interval goes with --metrics-file");
		return WR_EXIT_USAGE;
	}
	mfile.channel = name;
	if (mfile.path && !mfile_prepare(&mfile))
		return WR_EXIT_USAGE;
	if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
		wr_tool_error("record", "%s: %s", dir, strerror(errno));
		return WR_EXIT_USAGE;
	}
	char defpid[4096 + 16];
	if (!pidpath) {
		if ((size_t)snprintf(defpid, sizeof defpid, "%s/walrec.pid", dir) >= sizeof defpid) {
			wr_tool_error("record", "%s: path too long", dir);
			return WR_EXIT_USAGE;
		}
		pidpath = defpid;
	}
	pid_t other = 0;
	struct pidfh *pfh = pidfile_open(pidpath, 0600, &other);
	if (pfh == NULL) {
		if (errno == EEXIST)
			wr_tool_error("record", "%s is owned by another recorder (pid %ld, %s)", dir,
				      (long)other, pidpath);
		else
			wr_tool_error("record", "%s: %s", pidpath, strerror(errno));
		return WR_EXIT_USAGE;
	}
	pidfile_write(pfh);

	/* A parked drain thread's futex wait returns at once. */
	wr_tool_catch_stop(record_on_signal);

	if (cpu >= 0) {
		cpu_set_t set;
		/* Threads inherit the opener's CPUs: without --worker-cpus, give
		 * them every other CPU rather than the drain thread's one. */
		if (cfg.worker_cpus == 0 && sched_getaffinity(0, sizeof set, &set) == 0) {
			for (int c = 0; c < 64; c++)
				if (c != cpu && CPU_ISSET(c, &set))
					cfg.worker_cpus |= (uint64_t)1 << c;
		}
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof set, &set) != 0) {
			wr_tool_error("record", "--cpu %d: %s", cpu, strerror(errno));
			pidfile_remove(pfh);
			return WR_EXIT_USAGE;
		}
	}
	walrec_recorder_t *rec = NULL;
	int rc = walrec_recorder_open(&rec, dir, &cfg);
	if (rc < 0) {
		wr_tool_error("record", "cannot open %s: %s", dir, walrec_strerror(rc));
		pidfile_remove(pfh);
		return WR_EXIT_USAGE;
	}
	mfile.cpus = cfg.worker_cpus;
	struct record_ctx ctx = { .name = name, .mfile = mfile.path ? &mfile : NULL };
	o.on_running = record_running;
	o.arg = &ctx;
	struct wr_drain_stats stats;
	rc = wr_drain_run(rec, name, &o, &record_stop, &stats);
	if (mfile.path)
		mfile_finish(&mfile);
	int exit_code = WR_EXIT_OK;
	if (rc == -EBUSY) {
		wr_tool_error("record", "channel %s is owned by another recorder", name);
		exit_code = WR_EXIT_USAGE;
	} else if (rc == -EINVAL || rc == -WALREC_EFORMAT || rc == -EACCES) {
		wr_tool_error("record", "channel %s: %s", name, walrec_strerror(rc));
		exit_code = WR_EXIT_USAGE;
	} else if (rc < 0) {
		wr_tool_error("record", "stopped on error: %s", walrec_strerror(rc));
		exit_code = WR_EXIT_FAIL;
	}
	int crc = walrec_recorder_close(rec);
	walrec_recorder_destroy(rec);
	if (crc < 0) {
		wr_tool_error("record", "close: %s", walrec_strerror(crc));
		if (exit_code == WR_EXIT_OK)
			exit_code = WR_EXIT_FAIL;
	}
	if (rc != -EBUSY)
		fprintf(stderr, "walrec record: %llu events recorded\n",
			(unsigned long long)stats.events);
	pidfile_remove(pfh);
	return exit_code;
}
