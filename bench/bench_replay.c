/* SPDX-License-Identifier: MIT */
/* 'walrec bench replay': reading a log back: hot and cold replay, seek, segment crossings. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <walrec/reader.h>
#include <walrec/recorder.h>

#include "bench/harness.h"
#include "lib/fs.h"
#include "recorder/format.h"
#include "recorder/wal_dir.h"
#include "tools/cmd.h"

#define CMD "bench replay"

struct replay_opts {
	const char *dir;
	uint64_t size;      /* bytes of events to write when dir holds no log */
	uint32_t blocks;
	uint32_t cold_pct;  /* share of the segments written compressed */
	uint64_t seeks;
	uint32_t passes;    /* timed replays of each kind; the median is reported */
	bool json;
};

static void
replay_usage(FILE *out)
{
	fprintf(out,
		"usage: walrec bench replay --dir DIR [--size BYTES] [--blocks B] [--cold-pct P]\n"
		"                           [--seeks N] [--passes N] [--json]\n"
		"\n"
		"Read a WAL directory back through walrec_reader_* (strict, full verification,\n"
		"the preloader on). When DIR holds no segment, first write a log of BYTES of\n"
		"events there with the embedded recorder (default 1 GiB), P%% of its segments\n"
		"compressed (default 25); the log is left in DIR. All files are read once first,\n"
		"so the figures are for a log in the page cache. Then:\n"
		"  hot     sequential replay of the hot (.wal) segments, events/s\n"
		"  cold    sequential replay of the cold (.wal.lz4) segments, events/s\n"
		"  seek    N seeks to random ids of the whole log after open, each followed by\n"
		"          one next(): latency (the p50/p99/... keys); the first seek into a\n"
		"          cold segment decodes it, later ones use the reader's cache\n"
		"  boundary  next() calls that cross into the next segment while the preloader\n"
		"          has it ready (p99 over all crossings), and the same crossings at full\n"
		"          speed, where the reader may have to wait for the preloader\n"
		"hot and cold replay run on temporary views of DIR (hard links in a\n"
		"subdirectory, removed afterwards) holding only those segments.\n"
		"\n"
		"  --size BYTES   log to write when DIR is empty (k/M/G: powers of 1000; default 1 GiB)\n"
		"  --blocks B     blocks per segment of that log (default 4096: 64 MiB segments)\n"
		"  --cold-pct P   share of its segments compressed, 0..100 (default 25)\n"
		"  --seeks N      random seeks (default 5000)\n"
		"  --passes N     timed replays of each kind, the median reported (default 3)\n");
}

static int
replay_parse(int argc, char **argv, struct replay_opts *o)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' },
		{ "blocks", required_argument, NULL, 'b' },
		{ "cold-pct", required_argument, NULL, 'c' },
		{ "seeks", required_argument, NULL, 'k' },
		{ "passes", required_argument, NULL, 'p' },
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
			if (!wr_tool_parse_u64(optarg, &v) || v < 64 * WR_EVENT_SIZE) {
				wr_tool_error(CMD, "--size: '%s' is not a size of at least 4096 bytes",
					      optarg);
				return WR_EXIT_USAGE;
			}
			o->size = v;
			break;
		case 'b':
			if (!wr_tool_parse_u64(optarg, &v) || v < WR_MIN_BLOCKS || v > WR_MAX_BLOCKS) {
				wr_tool_error(CMD, "--blocks: '%s' is not in %u..%u", optarg,
					      WR_MIN_BLOCKS, WR_MAX_BLOCKS);
				return WR_EXIT_USAGE;
			}
			o->blocks = (uint32_t)v;
			break;
		case 'c':
			if (!wr_tool_parse_u64(optarg, &v) || v > 100) {
				wr_tool_error(CMD, "--cold-pct: '%s' is not in 0..100", optarg);
				return WR_EXIT_USAGE;
			}
			o->cold_pct = (uint32_t)v;
			break;
		case 'k':
			if (!wr_tool_parse_u64(optarg, &v) || v == 0 || v > 100000000) {
				wr_tool_error(CMD, "--seeks: '%s' is not in 1..100M", optarg);
				return WR_EXIT_USAGE;
			}
			o->seeks = v;
			break;
		case 'p':
			if (!wr_tool_parse_u64(optarg, &v) || v == 0 || v > 100) {
				wr_tool_error(CMD, "--passes: '%s' is not in 1..100", optarg);
				return WR_EXIT_USAGE;
			}
			o->passes = (uint32_t)v;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			replay_usage(stdout);
			return -1;
		default:
			return wr_bench_bad_option(CMD, argv, replay_usage);
		}
	}
	return wr_bench_args_end(CMD, argc, argv, o->dir, replay_usage);
}

/* ---- the log ------------------------------------------------------------------ */

/*
 * Payloads shaped like order-book events (an order id, a price that wanders,
 * small quantities, flags), so that LZ4 compresses them as it would real
 * ones rather than storing random bytes.
 */
static void
replay_event(walrec_event_t *ev, uint64_t i, uint64_t *price)
{
	uint64_t x = i * 0x9E3779B97F4A7C15ull;
	x ^= x >> 29;
	*price += (x & 7) - 3;
	uint64_t qty = 1 + (x >> 8) % 500;
	uint32_t flags = (uint32_t)(x >> 40) & 0x3;
	memset(ev->payload, 0, sizeof ev->payload);
	memcpy(ev->payload, &i, 8);
	memcpy(ev->payload + 8, price, 8);
	memcpy(ev->payload + 16, &qty, 8);
	memcpy(ev->payload + 24, &flags, 4);
}

static int
replay_build(const struct replay_opts *o)
{
	uint64_t events = o->size / WR_EVENT_SIZE;
	uint64_t per_seg = (uint64_t)o->blocks * WR_EVENTS_PER_BLOCK;
	uint64_t segs = (events + per_seg - 1) / per_seg;
	uint64_t cold = segs * o->cold_pct / 100;
	walrec_recorder_config_t cfg;
	walrec_recorder_config_init(&cfg);
	cfg.num_blocks = o->blocks;
	cfg.sync_interval_us = 0;
	cfg.compression = cold > 0;
	/* Beyond max_hot closed segments the oldest is compressed; at close the active one is closed too. */
	uint64_t hot = segs - cold;
	cfg.max_hot_segments = cold > 0 ? (uint32_t)(hot > 0 ? hot : 1) : 0;
	walrec_recorder_t *rec = NULL;
	int rc = walrec_recorder_open(&rec, o->dir, &cfg);
	if (rc != 0) {
		wr_tool_error(CMD, "cannot open a recorder in %s: %s", o->dir, walrec_strerror(rc));
		return rc;
	}
	if (!o->json)
		fprintf(stderr, "writing %llu events (%llu segments, %llu to compress) into %s\n",
			(unsigned long long)events, (unsigned long long)segs,
			(unsigned long long)cold, o->dir);
	walrec_event_t ev;
	uint64_t price = 100000, ts = wr_clock_realtime_ns();
	for (uint64_t i = 1; i <= events && rc == 0; i++) {
		replay_event(&ev, i, &price);
		ev.timestamp_ns = ts + i;
		rc = walrec_recorder_append(rec, &ev, NULL);
	}
	if (rc != 0)
		wr_tool_error(CMD, "append: %s", walrec_strerror(rc));
	int crc = walrec_recorder_close(rec);
	walrec_recorder_destroy(rec);
	return rc ? rc : crc;
}

struct replay_log {
	struct wr_wal_dir d;
	size_t hot, cold;
	uint64_t first_id, last_id, events, bytes;
	uint64_t *seg_first; /* first and last id of each segment with events, in order */
	uint64_t *seg_last;
	bool *seg_cold;
	size_t nseg;
};

static int
replay_scan(const char *dir, struct replay_log *l)
{
	memset(l, 0, sizeof *l);
	int rc = wr_wal_dir_scan(&l->d, dir, 0, NULL, NULL);
	if (rc < 0)
		return rc;
	l->seg_first = wr_xmalloc((l->d.nsegments + 1) * sizeof *l->seg_first);
	l->seg_last = wr_xmalloc((l->d.nsegments + 1) * sizeof *l->seg_last);
	l->seg_cold = wr_xmalloc((l->d.nsegments + 1) * sizeof *l->seg_cold);
	for (size_t i = 0; i < l->d.nsegments; i++) {
		const struct wr_wal_file *f = &l->d.segments[i];
		if (f->duplicate || !f->header_ok)
			continue;
		l->bytes += f->file_size;
		if (!f->ids_known || f->first_event_id == 0)
			continue;
		f->cold ? l->cold++ : l->hot++;
		if (l->first_id == 0)
			l->first_id = f->first_event_id;
		l->last_id = f->last_event_id;
		l->events += f->header.event_count;
		l->seg_first[l->nseg] = f->first_event_id;
		l->seg_last[l->nseg] = f->last_event_id;
		l->seg_cold[l->nseg++] = f->cold;
	}
	return 0;
}

static void
replay_log_free(struct replay_log *l)
{
	wr_wal_dir_free(&l->d);
	free(l->seg_first);
	free(l->seg_last);
	free(l->seg_cold);
	l->seg_first = l->seg_last = NULL;
	l->seg_cold = NULL;
}

/* Read every file once so the timed passes find them in the page cache. */
static void
replay_warm(const struct replay_log *l)
{
	char *buf = wr_xmalloc(1u << 20);
	for (size_t i = 0; i < l->d.nsegments; i++) {
		char path[4096 + 256];
		if (wr_wal_dir_file_path(&l->d, i, path, sizeof path) < 0)
			continue;
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		while (read(fd, buf, 1u << 20) > 0)
			;
		close(fd);
	}
	free(buf);
}

/* A directory of hard links to the hot (or the cold) segments of the log. */
static char *
replay_view(const char *dir, const struct replay_log *l, bool cold)
{
	char tmpl[4200];
	snprintf(tmpl, sizeof tmpl, "%s/.walrec-replay-%s-XXXXXX", dir, cold ? "cold" : "hot");
	char *v = mkdtemp(tmpl);
	if (!v)
		return NULL;
	v = strdup(v);
	for (size_t i = 0; v && i < l->d.nsegments; i++) {
		const struct wr_wal_file *f = &l->d.segments[i];
		if (f->duplicate || f->cold != cold)
			continue;
		char a[4096 + 256], b[4400];
		if (wr_wal_dir_file_path(&l->d, i, a, sizeof a) < 0)
			continue;
		snprintf(b, sizeof b, "%s/%s", v, f->name);
		if (link(a, b) != 0) {
			wr_tool_error(CMD, "link %s: %s", b, strerror(errno));
			break;
		}
	}
	return v;
}

static void
replay_view_remove(char *v)
{
	if (!v)
		return;
	DIR *d = opendir(v);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			char p[4400];
			snprintf(p, sizeof p, "%s/%s", v, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(v);
	free(v);
}

/* ---- measurements --------------------------------------------------------------- */

static int
replay_open(walrec_reader_t **r, const char *dir)
{
	walrec_reader_options_t o;
	walrec_reader_options_init(&o);
	int rc = walrec_reader_open(r, dir, &o);
	if (rc < 0)
		wr_tool_error(CMD, "open %s: %s", dir, walrec_strerror(rc));
	return rc;
}

/*
 * One sequential replay of dir from open to the end: events and seconds.
 * Also records the next() calls that cross into a new segment (the first
 * event of each segment after the first) into cross, when given.
 */
static int
replay_sequential(const char *dir, const struct replay_log *l, uint64_t *events, uint64_t *ns,
		  struct wr_bench_hist *cross, bool pace, const struct wr_bench_clock *clk)
{
	walrec_reader_t *r;
	uint64_t t0 = wr_clock_now_ns();
	int rc = replay_open(&r, dir);
	if (rc < 0)
		return rc;
	walrec_event_t ev;
	uint64_t n = 0, sum = 0;
	size_t next_seg = 1; /* segment entered by the next crossing */
	if (!cross) {
		while ((rc = walrec_reader_next(r, &ev)) == 1)
			sum += ev.payload[0], n++;
	} else {
		/* The call after the last event of a segment is the crossing. */
		uint64_t boundary = next_seg < l->nseg ? l->seg_last[next_seg - 1] : UINT64_MAX;
		for (;;) {
			if (n > 0 && ev.event_id == boundary) {
				if (pace) {
					/* Give the preloader the time it needs: a consumer doing real work. */
					walrec_reader_stats_t st;
					for (int i = 0; i < 20000; i++) {
						walrec_reader_stats(r, &st);
						if (st.ready_ahead > 0)
							break;
						usleep(100);
					}
				}
				uint64_t a = wr_bench_ticks();
				rc = walrec_reader_next(r, &ev);
				uint64_t b = wr_bench_ticks();
				uint64_t d = b - a;
				wr_bench_hist_record(cross, d > clk->overhead_ticks ? d - clk->overhead_ticks : 0);
				next_seg++;
				boundary = next_seg < l->nseg ? l->seg_last[next_seg - 1] : UINT64_MAX;
			} else {
				rc = walrec_reader_next(r, &ev);
			}
			if (rc != 1)
				break;
			sum += ev.payload[0];
			n++;
		}
	}
	*ns = wr_clock_now_ns() - t0;
	*events = n + (sum & 0); /* sum keeps the copies from being optimised away */
	if (rc < 0) {
		char msg[512];
		walrec_reader_last_error(r, msg, sizeof msg);
		wr_tool_error(CMD, "%s: %s", dir, msg);
	}
	walrec_reader_close(r);
	return rc;
}

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Median events/s of o->passes replays of dir (0 when it holds no events). */
static int
replay_rate(const struct replay_opts *o, const char *dir, const struct replay_log *l,
	    struct wr_bench_hist *wait, const struct wr_bench_clock *clk, double *rate,
	    uint64_t *events)
{
	uint64_t *rates = wr_xmalloc(o->passes * sizeof *rates);
	int rc = 0;
	for (uint32_t p = 0; p < o->passes && rc == 0; p++) {
		uint64_t n = 0, ns = 1;
		rc = replay_sequential(dir, l, &n, &ns, wait, false, clk);
		rates[p] = ns ? n * 1000000000ull / ns : 0;
		*events = n;
	}
	qsort(rates, o->passes, sizeof *rates, u64_cmp);
	*rate = (double)rates[o->passes / 2];
	free(rates);
	return rc;
}

/* xorshift64*: the seek targets. */
static uint64_t
replay_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

static int
replay_seeks(const struct replay_opts *o, const struct replay_log *l, struct wr_bench_hist *h,
	     const struct wr_bench_clock *clk, uint64_t *cold_first_ns)
{
	walrec_reader_t *r;
	int rc = replay_open(&r, o->dir);
	if (rc < 0)
		return rc;
	uint64_t s = 0x5eed5eed12345ull, span = l->last_id - l->first_id + 1;
	uint64_t *firsts = wr_xmalloc((l->nseg + 1) * sizeof *firsts);
	size_t nfirst = 0;
	bool *seen = calloc(l->nseg + 1, 1);
	walrec_event_t ev;
	for (uint64_t i = 0; i < o->seeks && rc >= 0; i++) {
		uint64_t id = l->first_id + replay_rand(&s) % span;
		uint64_t a = wr_bench_ticks();
		rc = walrec_reader_seek(r, id);
		if (rc == 0)
			rc = walrec_reader_next(r, &ev);
		uint64_t b = wr_bench_ticks();
		if (rc != 1 || ev.event_id < id) {
			wr_tool_error(CMD, "seek to %llu gave %d (event %llu)", (unsigned long long)id,
				      rc, (unsigned long long)ev.event_id);
			rc = -WALREC_ECORRUPT;
			break;
		}
		uint64_t d = b - a;
		d = d > clk->overhead_ticks ? d - clk->overhead_ticks : 0;
		wr_bench_hist_record(h, d);
		/* Which segment: the first seek into a cold one decodes it. */
		size_t lo = 0, hi = l->nseg;
		while (hi - lo > 1) {
			size_t mid = (lo + hi) / 2;
			if (l->seg_first[mid] <= id)
				lo = mid;
			else
				hi = mid;
		}
		if (seen && !seen[lo]) {
			seen[lo] = true;
			if (l->seg_cold[lo])
				firsts[nfirst++] = d;
		}
	}
	*cold_first_ns = 0;
	if (nfirst) {
		qsort(firsts, nfirst, sizeof *firsts, u64_cmp);
		*cold_first_ns = (uint64_t)((double)firsts[nfirst / 2] * clk->ns_per_tick);
	}
	free(firsts);
	free(seen);
	walrec_reader_close(r);
	return rc < 0 ? rc : 0;
}

int
wr_bench_replay(int argc, char **argv)
{
	struct replay_opts o = { .size = 1ull << 30, .blocks = 4096, .cold_pct = 25,
				 .seeks = 5000, .passes = 3 };
	int rc = replay_parse(argc, argv, &o);
	if (rc != 0)
		return rc < 0 ? WR_EXIT_OK : rc;
	if (wr_fs_mkdir(o.dir) != 0) {
		wr_tool_error(CMD, "cannot use %s", o.dir);
		return WR_EXIT_USAGE;
	}
	struct replay_log l;
	rc = replay_scan(o.dir, &l);
	if (rc == 0 && l.nseg == 0) {
		replay_log_free(&l);
		rc = replay_build(&o);
		if (rc == 0)
			rc = replay_scan(o.dir, &l);
	}
	if (rc != 0 || l.nseg == 0) {
		wr_tool_error(CMD, "%s: %s", o.dir, rc ? walrec_strerror(rc) : "no events to read");
		return WR_EXIT_USAGE;
	}
	replay_warm(&l);

	struct wr_bench_clock clk;
	wr_bench_clock_init(&clk);
	struct wr_bench_hist *seek = wr_xmalloc(sizeof *seek);
	struct wr_bench_hist *cross = wr_xmalloc(sizeof *cross);
	struct wr_bench_hist *wait = wr_xmalloc(sizeof *wait);
	memset(seek, 0, sizeof *seek);
	memset(cross, 0, sizeof *cross);
	memset(wait, 0, sizeof *wait);

	double hot_rate = 0, cold_rate = 0;
	uint64_t hot_events = 0, cold_events = 0, cold_first = 0;
	struct replay_log lv;
	char *hv = l.hot ? replay_view(o.dir, &l, false) : NULL;
	if (hv && replay_scan(hv, &lv) == 0) {
		rc = replay_rate(&o, hv, &lv, wait, &clk, &hot_rate, &hot_events);
		replay_log_free(&lv);
	}
	replay_view_remove(hv);
	char *cv = rc == 0 && l.cold ? replay_view(o.dir, &l, true) : NULL;
	if (cv && replay_scan(cv, &lv) == 0) {
		rc = replay_rate(&o, cv, &lv, wait, &clk, &cold_rate, &cold_events);
		replay_log_free(&lv);
	}
	replay_view_remove(cv);
	if (rc == 0)
		rc = replay_seeks(&o, &l, seek, &clk, &cold_first);
	for (uint32_t p = 0; p < o.passes && rc == 0; p++) {
		uint64_t n, ns;
		rc = replay_sequential(o.dir, &l, &n, &ns, cross, true, &clk);
	}
	wr_bench_clock_finish(&clk);
	if (rc < 0) {
		replay_log_free(&l);
		free(seek), free(cross), free(wait);
		return WR_EXIT_FAIL;
	}

	struct wr_bench_result r = { .scenario = "replay", .events = hot_events };
	r.events_per_s = hot_rate;
	r.seconds = hot_rate > 0 ? (double)hot_events / hot_rate : 0;
	wr_bench_result_latency(&r, seek, &clk); /* p50..max: seek + next */
	double k = clk.ns_per_tick;
	wr_bench_result_add(&r, "hot_events_per_s", round(hot_rate),
			    "replay of the hot segments, full verification (median)");
	wr_bench_result_add(&r, "cold_events_per_s", round(cold_rate),
			    "replay of the cold segments, full verification (median)");
	wr_bench_result_add(&r, "seek_p99_ns", r.p99_ns, "seek + next to a random id, p99");
	wr_bench_result_add(&r, "boundary_p99_ns",
			    (double)wr_bench_hist_quantile(cross, 0.99) * k,
			    "next() into the next segment, preloaded, p99");
	wr_bench_result_add(&r, "boundary_max_ns", (double)cross->max * k,
			    "next() into the next segment, preloaded, max");
	wr_bench_result_add(&r, "boundary_crossings", (double)cross->count,
			    "crossings measured");
	wr_bench_result_add(&r, "boundary_wait_p99_ns",
			    (double)wr_bench_hist_quantile(wait, 0.99) * k,
			    "crossing at full replay speed (may wait for the preloader), p99");
	wr_bench_result_add(&r, "seek_cold_first_ns", (double)cold_first,
			    "first seek into a cold segment (decodes it), median");
	wr_bench_result_add(&r, "seeks", (double)seek->count, "seeks measured");
	wr_bench_result_add(&r, "cold_events", (double)cold_events, "events in the cold segments");
	wr_bench_result_add(&r, "log_bytes", (double)l.bytes, "bytes of segment files");
	wr_bench_result_add(&r, "hot_segments", (double)l.hot, "hot segments with events");
	wr_bench_result_add(&r, "cold_segments", (double)l.cold, "cold segments with events");
	wr_bench_result_print(&r, o.json, stdout);
	replay_log_free(&l);
	free(seek), free(cross), free(wait);
	return WR_EXIT_OK;
}
