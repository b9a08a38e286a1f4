/* SPDX-License-Identifier: MIT */
/*
 * Telemetry: the aggregator that copies every component's live metrics
 * into double-buffered snapshots in the channel (layout:
 * recorder/telemetry_layout.h), the readers that take a coherent copy
 * from any process, and the renderings of a snapshot (human text,
 * Prometheus text exposition 0.0.4, JSON; docs/telemetry.md).
 *
 * Concurrency: one aggregator per channel (it is the only writer of the
 * telemetry region; the channel's recorder lock keeps it to one process).
 * wr_telemetry_start/stop from the thread that runs the drain loop. The
 * readers (wr_tel_read, wr_tel_observe) from any thread of any process;
 * they only load from the mapping and may use a read-only one.
 */
#ifndef WR_TELEMETRY_H
#define WR_TELEMETRY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/lag.h"
#include "lib/metrics_out.h"
#include "recorder/telemetry_layout.h"

#define WR_TEL_DEFAULT_INTERVAL_NS 1000000000ull /* 1 s */
#define WR_TEL_MIN_INTERVAL_NS 10000000ull       /* 10 ms */
#define WR_TEL_MAX_INTERVAL_NS 3600000000000ull  /* 1 h */

struct wr_telemetry;

/*
 * Start the aggregator of rec draining ch: prepare the telemetry region,
 * publish a first snapshot at once, then one every interval_ns (0: the
 * default 1 s; otherwise 10 ms..1 h) from a thread of its own. rec and ch
 * must outlive it (stop before closing either). Returns 0, -EINVAL (bad
 * interval), -ENOMEM, or -errno from pthread_create.
 */
int wr_telemetry_start(struct wr_telemetry **out, struct walrec_recorder *rec,
		       struct wr_channel *ch, uint64_t interval_ns);

/* Stop the thread and publish a last snapshot marked final. NULL is fine. */
void wr_telemetry_stop(struct wr_telemetry *t);

/*
 * Building blocks of the aggregator (and of tests that drive a region by
 * hand). area is the channel's telemetry region (WR_TEL_AREA_SIZE bytes).
 *
 * wr_tel_area_init: keep a region this layout wrote before (snapshot
 * numbers continue, the last snapshot stays readable until the next one);
 * otherwise zero it and write the identity. Single writer.
 */
void wr_tel_area_init(void *area, uint64_t interval_ns);

/*
 * Fill s from rec's metrics and progress and from ch's control words,
 * counters and producer entries. lag is the caller's own durable-lag
 * observer (it reports the larger of its bound and the coordinator's).
 * Any thread; reads only relaxed/acquire loads of live data.
 */
void wr_tel_collect(struct wr_tel_snapshot *s, struct walrec_recorder *rec,
		    const struct wr_channel *ch, struct wr_lag_tracker *lag);

/*
 * Publish s into the buffer readers are not told to read, then point
 * readers at it (the seqlock and flip of telemetry_layout.h). Sets
 * s->header.number and s->trailer. Single writer.
 */
void wr_tel_publish(void *area, struct wr_tel_snapshot *s);

/* What the publication line says (copied by wr_tel_read). */
struct wr_tel_pub_info {
	uint32_t writer_pid;
	uint64_t published;
	uint64_t interval_ns;
	uint64_t started_ns;
};

/*
 * Copy the newest snapshot out of area (untrusted shared memory) into out.
 * Returns 0 (a coherent, validated copy); -ENODATA (the region holds no
 * snapshot yet: recorder starting, or one without an aggregator);
 * -WALREC_EFORMAT (not this snapshot layout: another walrec version);
 * -WALREC_ECORRUPT (impossible values: buffer index, producer count,
 * number or trailer); -EAGAIN (the buffer kept changing under the copy:
 * a writer died mid-update, or publishes faster than a copy takes).
 * pub may be NULL. out must be 64-byte aligned (aligned_alloc).
 */
int wr_tel_read(const void *area, struct wr_tel_snapshot *out, struct wr_tel_pub_info *pub);

/* How current a snapshot is, as an observer sees it. */
enum wr_tel_status {
	WR_TEL_LIVE,    /* recorder alive and running, snapshot fresh */
	WR_TEL_STALE,   /* recorder alive, but the snapshot is old or not its own */
	WR_TEL_DEAD,    /* the recorder process is gone (the snapshot is its last) */
	WR_TEL_STOPPED, /* the channel was stopped cleanly (final snapshot) */
};

/* Older than this many intervals plus one second: stale. */
#define WR_TEL_STALE_INTERVALS 2u

struct wr_tel_view {
	struct wr_tel_snapshot snap;
	struct wr_tel_pub_info pub;
	uint32_t chan_state;     /* control page, now */
	uint32_t recorder_pid;   /* control page, now */
	uint64_t recorder_epoch;
	bool recorder_alive;     /* kill(pid, 0) found it (or EPERM) */
	uint64_t age_ns;         /* now - snapshot's taken_mono_ns */
	enum wr_tel_status status;
};

/*
 * Read m's snapshot and classify it. Returns as wr_tel_read (nothing in v
 * is valid on error except the control-page fields). v must be 64-byte
 * aligned. Any thread, any process.
 */
int wr_tel_observe(const struct wr_chan_map *m, struct wr_tel_view *v);

const char *wr_tel_status_name(enum wr_tel_status s);
const char *wr_tel_chan_state_name(uint32_t state);

/*
 * Render a view: status, log, every component, the channel and its
 * producers, in fmt. channel names the channel (also the Prometheus label
 * channel="..."). With prev (an earlier view of the same recorder) a
 * "rates" section gives per-second rates between the two snapshots
 * (text and JSON only; Prometheus computes its own).
 */
void wr_tel_render(FILE *f, enum wr_out_format fmt, const char *channel,
		   const struct wr_tel_view *v, const struct wr_tel_view *prev);

#endif
