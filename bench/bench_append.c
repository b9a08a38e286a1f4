/* SPDX-License-Identifier: MIT */
/* 'walrec bench append': SegmentWriter append throughput and per-append latency. */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/harness.h"
#include "lib/fs.h"
#include "recorder/format.h"
#include "recorder/segment_writer.h"
#include "tools/cmd.h"

#define CMD "bench append"
#define PREFIX "bench"

struct append_ctx {
	const char *dir;
	uint64_t events;
	uint32_t blocks;
	bool json, keep;
	uint32_t next_index; /* next segment to create; 1..next_index-1 exist */
	uint64_t next_id;
	struct wr_segment_writer_metrics metrics;
	struct wr_stage_metrics stage_metrics;
	struct wr_stage stage; /* with its flusher thread, as in the recorder */
};

/* What one pass over ctx->events appends measured. */
struct append_pass {
	uint64_t append_ns;     /* wall time minus rotations */
	uint64_t raw_ticks;     /* timed pass: sum of the measured deltas */
	uint64_t rotations;
	uint64_t rotate_ns;     /* finish + close + open_new, all rotations */
	uint64_t open_ns_total; /* open_new alone */
	uint64_t open_ns_max;
};

static int
open_segment(struct append_ctx *c, struct wr_segment_writer *w, struct append_pass *p)
{
	uint64_t t0 = wr_clock_now_ns();
	int rc = wr_segment_writer_open_new(w, c->dir, PREFIX, c->next_index, c->blocks,
					    &c->metrics, NULL);
	uint64_t ns = wr_clock_now_ns() - t0;
	if (rc != 0) {
		wr_tool_error(CMD, "cannot create segment %u in %s: %s%s", c->next_index, c->dir,
			      walrec_strerror(rc),
			      rc == -EEXIST ? " (use an empty directory)" : "");
		return rc;
	}
	c->next_index++;
	wr_segment_writer_start(w, &c->stage);
	p->open_ns_total += ns;
	if (ns > p->open_ns_max)
		p->open_ns_max = ns;
	return 0;
}

/* The real recorder hands these to its maintainer and preparer threads. */
static int
rotate(struct append_ctx *c, struct wr_segment_writer *w, struct append_pass *p)
{
	uint64_t t0 = wr_clock_now_ns();
	wr_segment_writer_finish(w);
	int rc = wr_segment_writer_close(w, false);
	if (rc != 0) {
		wr_tool_error(CMD, "closing a segment: %s", walrec_strerror(rc));
		return rc;
	}
	rc = open_segment(c, w, p);
	p->rotate_ns += wr_clock_now_ns() - t0;
	p->rotations++;
	return rc;
}

static void
event_template(walrec_event_t *ev)
{
	memset(ev, 0, sizeof *ev);
	for (unsigned i = 0; i < sizeof ev->payload; i++)
		ev->payload[i] = (uint8_t)(i * 37 + 11);
}

/*
 * A failed append: rotate when the segment is full, wait for the flusher
 * when every stage buffer is taken (counted: it is part of the append's
 * cost). 0 to retry, or the error.
 */
static int
append_retry(struct append_ctx *c, struct wr_segment_writer *w, struct append_pass *p, int rc)
{
	if (rc == -EAGAIN)
		return wr_stage_wait_space(&c->stage);
	if (rc == -ENOSPC)
		return rotate(c, w, p);
	return rc;
}

/*
 * One pass of ctx->events appends. With hist == NULL nothing is timed per
 * event (the throughput pass); otherwise every append is timed with the
 * tick clock and recorded minus the clock's own overhead.
 */
static int
append_pass(struct append_ctx *c, struct wr_bench_hist *hist, const struct wr_bench_clock *clk,
	    struct append_pass *p)
{
	struct wr_segment_writer w;
	memset(p, 0, sizeof *p);
	int rc = open_segment(c, &w, p);
	if (rc != 0)
		return rc;
	walrec_event_t ev;
	event_template(&ev);
	uint64_t ts = wr_clock_realtime_ns();
	uint64_t overhead = clk->overhead_ticks;

	uint64_t t_start = wr_clock_now_ns();
	for (uint64_t i = 0; i < c->events; i++) {
		ev.event_id = c->next_id++;
		ev.timestamp_ns = ts + i;
		memcpy(ev.payload, &i, sizeof i);
		if (!hist) {
			while (WR_UNLIKELY((rc = wr_segment_writer_append(&w, &ev)) != 0) &&
			       (rc = append_retry(c, &w, p, rc)) == 0)
				;
			if (rc != 0)
				break;
			continue;
		}
		uint64_t t0 = wr_bench_ticks();
		rc = wr_segment_writer_append(&w, &ev);
		uint64_t t1 = wr_bench_ticks();
		/* A full segment or stage: the failed attempt and the wait are not an append. */
		while (WR_UNLIKELY(rc != 0) && (rc = append_retry(c, &w, p, rc)) == 0) {
			t0 = wr_bench_ticks();
			rc = wr_segment_writer_append(&w, &ev);
			t1 = wr_bench_ticks();
		}
		if (rc != 0)
			break;
		uint64_t d = t1 - t0;
		p->raw_ticks += d;
		wr_bench_hist_record(hist, d > overhead ? d - overhead : 0);
	}
	uint64_t wall = wr_clock_now_ns() - t_start;
	p->append_ns = wall > p->rotate_ns ? wall - p->rotate_ns : 0;
	if (rc != 0)
		wr_tool_error(CMD, "append: %s", walrec_strerror(rc));
	int crc = wr_segment_writer_close(&w, false);
	return rc != 0 ? rc : crc;
}

static void
remove_segments(const struct append_ctx *c)
{
	for (uint32_t i = 1; i < c->next_index; i++) {
		char name[256], path[4096];
		if (wr_segment_name(name, sizeof name, PREFIX, i, false) != 0 ||
		    wr_fs_join(path, sizeof path, c->dir, name) != 0)
			continue;
		if (unlink(path) != 0 && errno != ENOENT)
			wr_tool_error(CMD, "cannot remove %s: %s", path, strerror(errno));
	}
}

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: walrec bench append --dir DIR [--events N] [--blocks B] [--json] [--keep]\n"
		"\n"
		"Append N events into SegmentWriter segments of B blocks in DIR (created if\n"
		"missing), rotating to a new prepared segment when one fills. Two passes:\n"
		"throughput without per-event timers, then per-append latency (tick clock,\n"
		"its overhead subtracted). Rotation time is excluded from both and reported.\n"
		"\n"
		"  --dir DIR     directory for the segment files (bench.NNNNNNNN.wal)\n"
		"  --events N    events per pass (default 10M; k/M/G suffixes)\n"
		"  --blocks B    blocks per segment, %u..%u (default 4096)\n"
		"  --json        print exactly one JSON object on stdout\n"
		"  --keep        keep the segment files\n",
		WR_MIN_BLOCKS, WR_MAX_BLOCKS);
}

int
wr_bench_append(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "events", required_argument, NULL, 'n' },
		{ "blocks", required_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{ "keep", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct append_ctx c = { .events = 10000000, .blocks = 4096, .next_index = 1, .next_id = 1 };
	uint64_t v;
	int opt;
	optind = 0; /* GNU getopt: rescan from argv[1] of this argument vector */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			c.dir = optarg;
			break;
		case 'n':
			if (!wr_tool_parse_u64(optarg, &v) || v == 0) {
				wr_tool_error(CMD, "--events: '%s' is not a positive count", optarg);
				return WR_EXIT_USAGE;
			}
			c.events = v;
			break;
		case 'b':
			if (!wr_tool_parse_u64(optarg, &v) || v < WR_MIN_BLOCKS || v > WR_MAX_BLOCKS) {
				wr_tool_error(CMD, "--blocks: '%s' is not in %u..%u", optarg,
					      WR_MIN_BLOCKS, WR_MAX_BLOCKS);
				return WR_EXIT_USAGE;
			}
			c.blocks = (uint32_t)v;
			break;
		case 'j':
			c.json = true;
			break;
		case 'k':
			c.keep = true;
			break;
		case 'h':
			usage(stdout);
			return WR_EXIT_OK;
		default:
			return wr_bench_bad_option(CMD, argv, usage);
		}
	}
	int arc = wr_bench_args_end(CMD, argc, argv, c.dir, usage);
	if (arc != 0)
		return arc;
	struct stat st;
	bool made_dir = stat(c.dir, &st) != 0;
	int rc = wr_fs_mkdir(c.dir);
	if (rc != 0) {
		wr_tool_error(CMD, "cannot use directory %s: %s", c.dir, walrec_strerror(rc));
		return WR_EXIT_USAGE;
	}

	rc = wr_stage_init(&c.stage, WR_STAGE_DEFAULT_SLOTS, NULL, NULL, NULL, &c.stage_metrics);
	if (rc == 0)
		rc = wr_stage_start(&c.stage, 0);
	if (rc != 0) {
		wr_tool_error(CMD, "cannot set up the stage: %s", walrec_strerror(rc));
		return WR_EXIT_USAGE;
	}
	struct wr_bench_clock clk;
	wr_bench_clock_init(&clk);
	struct wr_bench_hist *hist = wr_xmalloc(sizeof *hist);
	struct append_pass tput, lat;
	rc = append_pass(&c, NULL, &clk, &tput);
	if (rc == 0)
		rc = append_pass(&c, hist, &clk, &lat);
	wr_bench_clock_finish(&clk);
	wr_stage_fini(&c.stage);
	if (!c.keep) {
		remove_segments(&c);
		if (made_dir)
			rmdir(c.dir); /* only if we made it and it is empty */
	}
	if (rc != 0) {
		free(hist);
		return WR_EXIT_USAGE;
	}

	struct wr_bench_result r = { .scenario = "append", .events = c.events };
	r.seconds = (double)tput.append_ns / 1e9;
	r.events_per_s = r.seconds > 0 ? (double)c.events / r.seconds : 0;
	wr_bench_result_latency(&r, hist, &clk);
	const struct wr_segment_writer_metrics *m = &c.metrics;
	double rot = (double)(tput.rotations + lat.rotations);
	uint64_t opens = tput.rotations + lat.rotations + 2;
	/* The mean is free of the clock's step: quantisation averages out. */
	double mean_ticks = (double)lat.raw_ticks / (double)c.events - clk.overhead_mean_ticks;
	wr_bench_result_add(&r, "mean_ns", mean_ticks > 0 ? mean_ticks * clk.ns_per_tick : 0,
			    "latency mean (timed pass)");
	wr_bench_result_add(&r, "blocks_per_segment", c.blocks, "segment size in blocks");
	wr_bench_result_add(&r, "rotations", rot, "segments filled, both passes");
	wr_bench_result_add(&r, "rotation_ms_avg",
			    rot > 0 ? (double)(tput.rotate_ns + lat.rotate_ns) / rot / 1e6 : 0,
			    "finish + close + open_new (excluded)");
	wr_bench_result_add(&r, "open_new_ms_avg",
			    (double)(tput.open_ns_total + lat.open_ns_total) / (double)opens / 1e6,
			    "create + fallocate + header");
	wr_bench_result_add(&r, "open_new_ms_max",
			    (double)(tput.open_ns_max > lat.open_ns_max ? tput.open_ns_max
									 : lat.open_ns_max) / 1e6,
			    "slowest open_new");
	wr_bench_result_add(&r, "seal_ns_avg",
			    m->write_block.count
				    ? (double)m->write_block.total_ns / (double)m->write_block.count
				    : 0,
			    "seal of one block (write_block)");
	wr_bench_result_add(&r, "blocks_sealed", (double)m->blocks_sealed.value,
			    "both passes");
	wr_bench_result_add(&r, "stage_full_waits", (double)c.stage_metrics.full_waits.count,
			    "appends that waited for the flusher");
	wr_bench_result_add(&r, "timed_pass_events_per_s",
			    lat.append_ns ? (double)c.events * 1e9 / (double)lat.append_ns : 0,
			    "throughput with per-append timers");
	wr_bench_result_add(&r, "timer_overhead_ns", (double)clk.overhead_ticks * clk.ns_per_tick,
			    "subtracted from each sample");
	wr_bench_result_add(&r, "clock_step_ns", (double)clk.resolution_ticks * clk.ns_per_tick,
			    "tick clock resolution (quantiles are multiples)");
	wr_bench_result_add(&r, "ns_per_tick", clk.ns_per_tick, "tick clock calibration");
	wr_bench_result_print(&r, c.json, stdout);
	free(hist);
	return WR_EXIT_OK;
}
