/* SPDX-License-Identifier: MIT */
/* walrec stat: live telemetry of a recorder (channel NAME), or what a WAL directory's files say. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/metrics_out.h"
#include "recorder/channel.h"
#include "recorder/segment_reader.h"
#include "recorder/telemetry.h"
#include "recorder/wal_dir.h"
#include "tools/cmd.h"

/* Exit codes of walrec stat beyond WR_EXIT_*. */
#define STAT_EXIT_NOT_LIVE 1 /* shown, but the recorder is dead or stopped, or the snapshot stale */
#define STAT_EXIT_NO_SNAPSHOT 3 /* no snapshot, or a corrupt one */

static volatile sig_atomic_t stat_stop;

static void
stat_on_signal(int sig)
{
	(void)sig;
	stat_stop = 1;
}

static void
stat_usage(FILE *out)
{
	fprintf(out,
		"usage: walrec stat [--json | --prometheus] [--watch [INTERVAL]] [--count N] NAME\n"
		"       walrec stat [--json] DIR\n"
		"\n"
		"NAME: show the live telemetry of the recorder draining the channel\n"
		"/walrec.NAME, read from the snapshot it publishes in the channel (every\n"
		"second by default, 'walrec record --telemetry-interval'): the log's\n"
		"progress and durable lag, every component's counters, durations and\n"
		"latency percentiles, the channel and each attached producer.\n"
		"DIR: show what the files of a WAL directory say, without a recorder:\n"
		"segments hot and cold, sizes, event ranges, wal.meta and whether it agrees.\n"
		"An argument is a channel NAME when such a channel exists, else a DIR when\n"
		"it is a directory; one with a '/' (e.g. ./orders) is always a DIR. Use\n"
		"--channel NAME or --dir DIR to say which.\n"
		"\n"
		"  --json            one JSON object (keys in docs/telemetry.md)\n"
		"  --prometheus      Prometheus text exposition format 0.0.4 (NAME only)\n"
		"  --watch [INTERVAL]  print again every INTERVAL (default 1s, at least 10ms;\n"
		"                    e.g. 500ms, 2s) with per-second rates, until SIGINT;\n"
		"                    on a terminal the screen is redrawn, otherwise each view\n"
		"                    follows the last (JSON: one object per line)\n"
		"  --count N         with --watch: stop after N views\n"
		"  --channel NAME    NAME is a channel name\n"
		"  --dir DIR         DIR is a WAL directory\n"
		"  --help            this text\n"
		"\n"
		"exit: 0 live snapshot shown (DIR: directory read); 1 snapshot shown but not\n"
		"      live: the recorder is dead (pid gone), stopped, or the snapshot is stale;\n"
		"      2 usage error, bad channel name, no such channel or directory, I/O error;\n"
		"      3 the channel holds no snapshot, or a corrupt one\n"
		"      (--watch: 0 when stopped by SIGINT/SIGTERM or after --count views)\n");
}

struct stat_opts {
	const char *target;
	int kind; /* 0: guess, 1: channel, 2: directory */
	enum wr_out_format format;
	bool watch;
	uint64_t interval_ns;
	uint64_t count; /* 0: no limit */
};

static bool
stat_is_duration(const char *s)
{
	uint64_t v;
	return s && s[0] >= '0' && s[0] <= '9' && wr_tool_parse_duration_ns(s, &v);
}

/*
 * A channel when the name has no '/' and such a channel exists (a recorder
 * often records into a directory named like its channel); else a
 * directory when one exists; else a channel (that then says it is missing).
 */
static int
stat_guess_kind(const char *target)
{
	if (strchr(target, '/'))
		return 2;
	char path[WR_CHAN_NAME_MAX + 16];
	if (strlen(target) <= WR_CHAN_NAME_MAX) {
		snprintf(path, sizeof path, "%s%s", WR_CHAN_PREFIX, target);
		int fd = shm_open(path, O_RDONLY | O_CLOEXEC, 0);
		if (fd >= 0 || errno == EACCES) {
			if (fd >= 0)
				close(fd);
			return 1;
		}
	}
	struct stat st;
	return stat(target, &st) == 0 && S_ISDIR(st.st_mode) ? 2 : 1;
}

static int
stat_parse(int argc, char **argv, struct stat_opts *o)
{
	o->format = WR_OUT_TEXT;
	o->interval_ns = 1000000000ull;
	bool json = false, prom = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			stat_usage(stdout);
			return -1;
		} else if (strcmp(a, "--json") == 0) {
			json = true;
		} else if (strcmp(a, "--prometheus") == 0) {
			prom = true;
		} else if (strcmp(a, "--watch") == 0 || strncmp(a, "--watch=", 8) == 0) {
			o->watch = true;
			const char *iv = a[7] == '=' ? a + 8 : NULL;
			/* "--watch 2 NAME": a duration followed by another argument. */
			if (!iv && stat_is_duration(v) && i + 2 < argc) {
				iv = v;
				i++;
			}
			if (iv) {
				uint64_t ns;
				if (!wr_tool_parse_duration_ns(iv, &ns) || ns < 10000000ull) {
					wr_tool_error("stat", "--watch: '%s' is not a duration of at "
							      "least 10ms (e.g. 500ms, 2s)", iv);
					return WR_EXIT_USAGE;
				}
				o->interval_ns = ns;
			}
		} else if (strcmp(a, "--count") == 0) {
			if (!v || !wr_tool_parse_u64(v, &o->count) || o->count == 0) {
				wr_tool_error("stat", "--count needs a positive number, got '%s'",
					      v ? v : "");
				return WR_EXIT_USAGE;
			}
			i++;
		} else if (strcmp(a, "--channel") == 0 || strcmp(a, "--dir") == 0) {
			if (!v) {
				wr_tool_error("stat", "%s needs a value", a);
				return WR_EXIT_USAGE;
			}
			if (o->target) {
				wr_tool_error("stat", "one NAME or DIR only ('%s' and '%s')", o->target, v);
				return WR_EXIT_USAGE;
			}
			o->target = v;
			o->kind = a[2] == 'c' ? 1 : 2;
			i++;
		} else if (a[0] == '-') {
			wr_tool_error("stat", "unknown option '%s' (see 'walrec stat --help')", a);
			return WR_EXIT_USAGE;
		} else if (o->target) {
			wr_tool_error("stat", "one NAME or DIR only ('%s' and '%s')", o->target, a);
			return WR_EXIT_USAGE;
		} else {
			o->target = a;
		}
	}
	if (!o->target) {
		wr_tool_error("stat", "a channel NAME or a WAL directory DIR is required (see "
				      "'walrec stat --help')");
		return WR_EXIT_USAGE;
	}
	if (json && prom) {
		wr_tool_error("stat", "--json and --prometheus exclude each other");
		return WR_EXIT_USAGE;
	}
	if (o->count && !o->watch) {
		wr_tool_error("stat", "--count goes with --watch");
		return WR_EXIT_USAGE;
	}
	o->format = json ? WR_OUT_JSON : prom ? WR_OUT_PROMETHEUS : WR_OUT_TEXT;
	if (o->kind == 0)
		o->kind = stat_guess_kind(o->target);
	if (o->kind == 2 && (prom || o->watch)) {
		wr_tool_error("stat", "%s: --prometheus and --watch are for a live channel NAME, "
				      "not a directory", o->target);
		return WR_EXIT_USAGE;
	}
	if (prom && o->watch) {
		wr_tool_error("stat", "--watch does not go with --prometheus (Prometheus computes "
				      "its own rates; see 'walrec record --metrics-file')");
		return WR_EXIT_USAGE;
	}
	return 0;
}

/* ---- a live channel --------------------------------------------------------- */

static struct wr_tel_view *
stat_view_alloc(void)
{
	struct wr_tel_view *v = aligned_alloc(64, (sizeof *v + 63) & ~(size_t)63);
	if (!v) {
		fprintf(stderr, "%s: out of memory\n", wr_prog);
		exit(WR_EXIT_USAGE);
	}
	memset(v, 0, sizeof *v);
	return v;
}

/* Open the channel read-only; prints why not. 0 or an exit code. */
static int
stat_map(const char *name, struct wr_chan_map *m)
{
	if (wr_channel_name_check(name) < 0) {
		wr_tool_error("stat", "bad channel name '%s': 1..64 characters of [A-Za-z0-9._-], "
				      "not starting with '.', no '..'", name);
		return WR_EXIT_USAGE;
	}
	int rc = wr_chan_map_open_readonly(m, name);
	if (rc == 0)
		return 0;
	if (rc == -ENOENT)
		wr_tool_error("stat", "no channel /walrec.%s (no recorder has created it; start "
				      "one with 'walrec record DIR --channel %s')", name, name);
	else if (rc == -WALREC_EFORMAT)
		wr_tool_error("stat", "/walrec.%s is not a walrec channel of this version", name);
	else
		wr_tool_error("stat", "channel %s: %s", name, walrec_strerror(rc));
	return WR_EXIT_USAGE;
}

/* Say why a snapshot can not be shown; the exit code. */
static int
stat_read_error(const char *name, int rc)
{
	if (rc == -ENODATA)
		wr_tool_error("stat", "channel %s holds no telemetry snapshot yet (the recorder is "
				      "starting, or runs without snapshots)", name);
	else if (rc == -WALREC_EFORMAT)
		wr_tool_error("stat", "channel %s: the telemetry snapshot has another layout "
				      "(written by another walrec version)", name);
	else if (rc == -EAGAIN)
		wr_tool_error("stat", "channel %s: the telemetry snapshot kept changing while it "
				      "was read (a recorder died mid-update?)", name);
	else
		wr_tool_error("stat", "channel %s: the telemetry snapshot is corrupt (%s)", name,
			      walrec_strerror(rc));
	return STAT_EXIT_NO_SNAPSHOT;
}

/* Warn on stderr when the view is not live; the exit code. */
static int
stat_status_note(const char *name, const struct wr_tel_view *v)
{
	char age[32];
	wr_out_fmt_ns(age, sizeof age, v->age_ns);
	switch (v->status) {
	case WR_TEL_LIVE:
		return WR_EXIT_OK;
	case WR_TEL_DEAD:
		wr_tool_error("stat", "channel %s: the recorder (pid %u) is gone without stopping "
				      "the channel; showing its last snapshot, %s old (stale)",
			      name, v->recorder_pid, age);
		break;
	case WR_TEL_STOPPED:
		wr_tool_error("stat", "channel %s: the recorder stopped; showing its final snapshot, "
				      "%s old", name, age);
		break;
	case WR_TEL_STALE:
		if (v->snap.header.writer_pid != v->recorder_pid)
			wr_tool_error("stat", "channel %s: the snapshot was written by pid %u, not by "
					      "the recorder now running (pid %u): stale",
				      name, v->snap.header.writer_pid, v->recorder_pid);
		else
			wr_tool_error("stat", "channel %s: the snapshot is stale (%s old)", name, age);
		break;
	}
	return STAT_EXIT_NOT_LIVE;
}

static int
stat_channel_once(const struct stat_opts *o)
{
	struct wr_chan_map m;
	int rc = stat_map(o->target, &m);
	if (rc != 0)
		return rc;
	struct wr_tel_view *v = stat_view_alloc();
	rc = wr_tel_observe(&m, v);
	int code;
	if (rc < 0) {
		code = stat_read_error(o->target, rc);
	} else {
		wr_tel_render(stdout, o->format, o->target, v, NULL);
		code = stat_status_note(o->target, v);
	}
	free(v);
	wr_chan_map_close(&m);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		wr_tool_error("stat", "writing the output: %s", strerror(errno));
		return WR_EXIT_USAGE;
	}
	return code;
}

/* Sleep ns unless a signal arrives (then return early). */
static void
stat_sleep(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
			       .tv_nsec = (long)(ns % 1000000000u) };
	nanosleep(&ts, NULL);
}

static int
stat_channel_watch(const struct stat_opts *o)
{
	struct wr_chan_map m;
	int rc = stat_map(o->target, &m);
	if (rc != 0)
		return rc;
	/* The sleep between views ends at once. */
	wr_tool_catch_stop(stat_on_signal);
	signal(SIGPIPE, SIG_IGN);
	bool tty = isatty(STDOUT_FILENO) && o->format == WR_OUT_TEXT;

	/* cur: just read; last: the newest distinct snapshot; base: the one before. */
	struct wr_tel_view *cur = stat_view_alloc(), *last = stat_view_alloc(),
			   *base = stat_view_alloc();
	bool have_last = false, have_base = false;
	int code = WR_EXIT_OK;
	int last_err = 0;
	for (uint64_t frame = 0; !stat_stop && (o->count == 0 || frame < o->count); frame++) {
		if (frame > 0)
			stat_sleep(o->interval_ns);
		if (stat_stop)
			break;
		rc = wr_tel_observe(&m, cur);
		if (rc < 0) {
			if (rc != last_err)
				stat_read_error(o->target, rc);
			last_err = rc;
			continue;
		}
		last_err = 0;
		if (!have_last || cur->snap.header.number != last->snap.header.number ||
		    cur->snap.header.writer_pid != last->snap.header.writer_pid) {
			if (have_last) {
				struct wr_tel_view *t = base;
				base = last;
				last = t;
				have_base = true;
			}
			struct wr_tel_view *t = last;
			last = cur;
			cur = t;
			have_last = true;
		} else {
			/* Same snapshot: keep its rates, refresh age and liveness. */
			last->age_ns = cur->age_ns;
			last->status = cur->status;
			last->recorder_alive = cur->recorder_alive;
			last->chan_state = cur->chan_state;
		}
		if (tty)
			fputs("\033[H\033[2J", stdout);
		wr_tel_render(stdout, o->format, o->target, last, have_base ? base : last);
		if (!tty && o->format == WR_OUT_TEXT)
			fputc('\n', stdout);
		if (fflush(stdout) != 0 || ferror(stdout)) {
			code = WR_EXIT_USAGE; /* the reader went away */
			break;
		}
	}
	free(cur);
	free(last);
	free(base);
	wr_chan_map_close(&m);
	return code;
}

/* ---- a WAL directory --------------------------------------------------------- */

/* The pid in DIR/walrec.pid, and whether that process runs (0: no pid file). */
static uint32_t
stat_dir_recorder(const char *dir, bool *alive)
{
	char path[4096 + 16];
	*alive = false;
	snprintf(path, sizeof path, "%s/walrec.pid", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	unsigned long pid = 0;
	if (fscanf(f, "%lu", &pid) != 1 || pid == 0 || pid > INT32_MAX)
		pid = 0;
	fclose(f);
	if (pid)
		*alive = kill((pid_t)pid, 0) == 0 || errno == EPERM;
	return (uint32_t)pid;
}

static void
stat_fmt_bytes(char *buf, size_t n, uint64_t b)
{
	if (b < 1024)
		snprintf(buf, n, "%" PRIu64 " B", b);
	else if (b < (1ull << 20))
		snprintf(buf, n, "%.1f KiB", (double)b / 1024.0);
	else if (b < (1ull << 30))
		snprintf(buf, n, "%.1f MiB", (double)b / (1024.0 * 1024.0));
	else
		snprintf(buf, n, "%.2f GiB", (double)b / (1024.0 * 1024.0 * 1024.0));
}

static const char *
stat_problem_kind(enum wr_wal_dir_problem_kind k)
{
	switch (k) {
	case WR_WAL_DIR_DUPLICATE: return "duplicate";
	case WR_WAL_DIR_NAME_MISMATCH: return "name_mismatch";
	case WR_WAL_DIR_INDEX_GAP: return "index_gap";
	case WR_WAL_DIR_ID_OVERLAP: return "id_overlap";
	case WR_WAL_DIR_ID_GAP: return "id_gap";
	}
	return "unknown";
}

/* What one segment holds, from its closed header or, if still active, its blocks. */
struct stat_seg {
	bool active;
	bool ids_known;
	uint64_t first_id, last_id, events;
	char problem[200];
};

static void
stat_segment(const struct wr_wal_dir *d, size_t i, struct stat_seg *s)
{
	const struct wr_wal_file *w = &d->segments[i];
	memset(s, 0, sizeof *s);
	if (!w->header_ok) {
		snprintf(s->problem, sizeof s->problem, "%s", w->report.message);
		return;
	}
	s->active = !w->cold && w->header.closed_ts_ns == 0;
	if (w->ids_known && !s->active) {
		s->ids_known = true;
		s->first_id = w->first_event_id;
		s->last_id = w->last_event_id;
		s->events = w->header.event_count;
		return;
	}
	/* An active header says nothing about its blocks: walk them. */
	char path[8192];
	if (wr_wal_dir_file_path(d, i, path, sizeof path) != 0)
		return;
	struct wr_segment_reader r;
	if (wr_segment_reader_open(&r, path, 0) == 0) {
		s->ids_known = true;
		s->first_id = r.first_event_id;
		s->last_id = r.last_event_id;
		s->events = r.event_count;
		if (r.report.fault != WR_FAULT_NONE)
			snprintf(s->problem, sizeof s->problem, "%s", r.report.message);
	} else {
		snprintf(s->problem, sizeof s->problem, "%s", r.report.message);
	}
	wr_segment_reader_close(&r);
}

static int
stat_directory(const struct stat_opts *o)
{
	struct stat st;
	if (stat(o->target, &st) != 0) {
		wr_tool_error("stat", "%s: %s", o->target, strerror(errno));
		return WR_EXIT_USAGE;
	}
	if (!S_ISDIR(st.st_mode)) {
		wr_tool_error("stat", "%s is not a directory", o->target);
		return WR_EXIT_USAGE;
	}
	struct wr_wal_dir d;
	memset(&d, 0, sizeof d);
	int rc = wr_wal_dir_scan(&d, o->target, 0, NULL, NULL);
	if (rc < 0) {
		wr_tool_error("stat", "%s: %s", o->target, walrec_strerror(rc));
		wr_wal_dir_free(&d);
		return WR_EXIT_USAGE;
	}
	bool alive;
	uint32_t pid = stat_dir_recorder(o->target, &alive);
	struct stat_seg *segs = wr_xmalloc((d.nsegments ? d.nsegments : 1) * sizeof *segs);
	uint64_t hot = 0, cold = 0, hot_bytes = 0, cold_bytes = 0, events = 0, first = 0, last = 0;
	for (size_t i = 0; i < d.nsegments; i++) {
		const struct wr_wal_file *w = &d.segments[i];
		stat_segment(&d, i, &segs[i]);
		if (w->duplicate)
			continue;
		if (w->cold) {
			cold++;
			cold_bytes += w->file_size;
		} else {
			hot++;
			hot_bytes += w->file_size;
		}
		if (segs[i].ids_known && segs[i].events) {
			events += segs[i].events;
			if (first == 0 || segs[i].first_id < first)
				first = segs[i].first_id;
			if (segs[i].last_id > last)
				last = segs[i].last_id;
		}
	}
	struct wr_meta_state ms;
	memset(&ms, 0, sizeof ms);
	char meta_msg[400] = "";
	int meta_rc = d.has_meta ? wr_wal_dir_check_meta(&d, &ms, meta_msg, sizeof meta_msg) : -ENOENT;

	struct wr_out out;
	wr_out_begin(&out, stdout, o->format);
	char b1[32], b2[32];
	if (o->format == WR_OUT_TEXT) {
		stat_fmt_bytes(b1, sizeof b1, hot_bytes);
		stat_fmt_bytes(b2, sizeof b2, cold_bytes);
		printf("directory %s: %zu segments (%" PRIu64 " hot, %s; %" PRIu64 " cold, %s)\n",
		       o->target, d.nsegments, hot, b1, cold, b2);
		if (events)
			printf("events %" PRIu64 "..%" PRIu64 " (%" PRIu64 " events)\n", first, last,
			       events);
		else
			printf("no events\n");
		if (pid)
			printf("recorder: pid %u (walrec.pid) %s\n", pid,
			       alive ? "is running: the files may be changing" : "is gone");
		else
			printf("recorder: none (no walrec.pid)\n");
		if (meta_rc == -ENOENT)
			printf("wal.meta: missing\n");
		else if (meta_rc < 0)
			printf("wal.meta: unreadable: %s\n", walrec_strerror(meta_rc));
		else
			printf("wal.meta: segment %u, offset %u, last event %" PRIu64 " (%s%s)\n",
			       ms.segment_index, ms.offset, ms.last_event_id,
			       meta_rc == 0 ? "agrees with the segments" : "DISAGREES: ",
			       meta_rc == 0 ? "" : meta_msg);
		if (d.nsegments)
			printf("  %8s  %-28s %-7s %10s %12s %12s %10s\n", "index", "file", "state",
			       "size", "first_id", "last_id", "events");
		for (size_t i = 0; i < d.nsegments; i++) {
			const struct wr_wal_file *w = &d.segments[i];
			const struct stat_seg *s = &segs[i];
			stat_fmt_bytes(b1, sizeof b1, w->file_size);
			printf("  %8u  %-28s %-7s %10s ", w->segment_index, w->name,
			       w->cold ? "cold" : s->active ? "active" : "hot", b1);
			if (s->ids_known)
				printf("%12" PRIu64 " %12" PRIu64 " %10" PRIu64, s->first_id, s->last_id,
				       s->events);
			else
				printf("%12s %12s %10s", "?", "?", "?");
			printf("%s%s%s\n", w->duplicate ? " (duplicate, not used)" : "",
			       s->problem[0] ? "  " : "", s->problem);
		}
		for (size_t i = 0; i < d.nproblems; i++)
			printf("%s: %s\n", d.problems[i].error ? "error" : "warning",
			       d.problems[i].message);
		if (d.nforeign)
			printf("%zu other files\n", d.nforeign);
	} else {
		wr_out_json_object_begin(&out, "source");
		wr_out_json_str(&out, "kind", "directory");
		wr_out_json_str(&out, "path", o->target);
		wr_out_json_object_end(&out);
		wr_out_json_object_begin(&out, "recorder");
		wr_out_json_u64(&out, "pid", pid);
		wr_out_json_bool(&out, "alive", alive);
		wr_out_json_object_end(&out);
		wr_out_json_object_begin(&out, "totals");
		wr_out_json_u64(&out, "segments", d.nsegments);
		wr_out_json_u64(&out, "hot", hot);
		wr_out_json_u64(&out, "cold", cold);
		wr_out_json_u64(&out, "hot_bytes", hot_bytes);
		wr_out_json_u64(&out, "cold_bytes", cold_bytes);
		wr_out_json_u64(&out, "first_event_id", first);
		wr_out_json_u64(&out, "last_event_id", last);
		wr_out_json_u64(&out, "events", events);
		wr_out_json_object_end(&out);
		wr_out_json_object_begin(&out, "meta");
		wr_out_json_bool(&out, "present", meta_rc != -ENOENT);
		wr_out_json_bool(&out, "agrees", meta_rc == 0);
		wr_out_json_u64(&out, "segment_index", ms.segment_index);
		wr_out_json_u64(&out, "offset", ms.offset);
		wr_out_json_u64(&out, "last_event_id", ms.last_event_id);
		wr_out_json_str(&out, "message", meta_rc > 0 ? meta_msg
					 : meta_rc < 0 && meta_rc != -ENOENT
						 ? walrec_strerror(meta_rc)
						 : "");
		wr_out_json_object_end(&out);
		wr_out_json_array_begin(&out, "segments");
		for (size_t i = 0; i < d.nsegments; i++) {
			const struct wr_wal_file *w = &d.segments[i];
			const struct stat_seg *s = &segs[i];
			wr_out_json_object_begin(&out, NULL);
			wr_out_json_u64(&out, "index", w->segment_index);
			wr_out_json_str(&out, "name", w->name);
			wr_out_json_str(&out, "state", w->cold ? "cold" : s->active ? "active" : "hot");
			wr_out_json_bool(&out, "duplicate", w->duplicate);
			wr_out_json_u64(&out, "size_bytes", w->file_size);
			wr_out_json_bool(&out, "ids_known", s->ids_known);
			wr_out_json_u64(&out, "first_event_id", s->first_id);
			wr_out_json_u64(&out, "last_event_id", s->last_id);
			wr_out_json_u64(&out, "events", s->events);
			wr_out_json_str(&out, "problem", s->problem);
			wr_out_json_object_end(&out);
		}
		wr_out_json_array_end(&out);
		wr_out_json_array_begin(&out, "problems");
		for (size_t i = 0; i < d.nproblems; i++) {
			wr_out_json_object_begin(&out, NULL);
			wr_out_json_str(&out, "kind", stat_problem_kind(d.problems[i].kind));
			wr_out_json_bool(&out, "error", d.problems[i].error);
			wr_out_json_str(&out, "message", d.problems[i].message);
			wr_out_json_object_end(&out);
		}
		wr_out_json_array_end(&out);
		wr_out_json_u64(&out, "other_files", d.nforeign);
	}
	wr_out_end(&out);
	free(segs);
	wr_wal_dir_free(&d);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		wr_tool_error("stat", "writing the output: %s", strerror(errno));
		return WR_EXIT_USAGE;
	}
	return WR_EXIT_OK;
}

int
wr_cmd_stat(int argc, char **argv)
{
	struct stat_opts o;
	memset(&o, 0, sizeof o);
	int rc = stat_parse(argc, argv, &o);
	if (rc != 0)
		return rc < 0 ? WR_EXIT_OK : rc;
	if (o.kind == 2)
		return stat_directory(&o);
	return o.watch ? stat_channel_watch(&o) : stat_channel_once(&o);
}
