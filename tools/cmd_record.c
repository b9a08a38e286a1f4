/* SPDX-License-Identifier: MIT */
/* walrec record: run a recorder that drains the channel /walrec.<name> into a WAL directory. */
#include <config.h>

#include <errno.h>
#include <libutil.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <walrec/recorder.h>

#include "recorder/drain.h"
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

static void
record_running(void *arg, const struct wr_channel *ch, uint64_t resumed_from)
{
	(void)ch;
	const char *name = arg;
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

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = record_on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a parked drain thread's futex wait returns at once. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

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
	o.on_running = record_running;
	o.arg = (void *)name;
	struct wr_drain_stats stats;
	rc = wr_drain_run(rec, name, &o, &record_stop, &stats);
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
