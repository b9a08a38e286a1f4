/* SPDX-License-Identifier: MIT */
/*
 * Manager: owns the active SegmentWriter. Assigns event ids and appends
 * (the hot path), rotates to the next prepared segment, hands finished
 * segments to the maintainer, seals the partial block when the
 * coordinator asks, recovers the directory at open and closes the active
 * segment at shutdown.
 *
 * Threads: the owner thread calls append, seal_now, poll, rotate and
 * close_active. The coordinator reads the published sealed position
 * (seqlock), the active writer (under sync_lock) and sets bits in
 * `attention`. The maintainer takes and releases sync_lock before closing
 * a retired writer (the grace period that keeps the coordinator from
 * syncing a writer being unmapped) and may latch an error.
 */
#ifndef WR_MANAGER_H
#define WR_MANAGER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/atomics.h"
#include "lib/clock.h"
#include "lib/compiler.h"
#include "lib/stats.h"
#include "recorder/meta_store.h"
#include "recorder/segment_writer.h"
#include "recorder/stage.h"
#include "workers/segment_preparer.h"

struct wr_segment_maintainer;
struct wr_meta_coordinator;

/* Bits of wr_manager.attention: anything non-zero sends append to its slow path. */
#define WR_ATTN_SEAL 1u     /* coordinator: seal the partial block */
#define WR_ATTN_WAKE 2u     /* coordinator: a waiter waits; signal me after sealing */
#define WR_ATTN_SLEEPING 4u /* coordinator parked with nothing pending: wake it on append */
#define WR_ATTN_LATCHED 8u  /* a sync failed: refuse appends */
#define WR_ATTN_CLOSED 16u  /* close started: refuse appends */

struct wr_manager_metrics {
	wr_operation_t init_active_segment;   /* recovery / first segment at open */
	wr_histogram_t append_event;          /* sampled: one append in 1024 is timed */
	wr_duration_t segment_rotation;       /* finish + take next + hand off */
	wr_counter_t rotation_waits;          /* rotations that found no prepared segment */
	wr_duration_t work_planning;          /* handing the finished writer to the maintainer */
	wr_duration_t persist_current_segment; /* close: finish + sync of the active segment */
	wr_counter_t partial_seals;           /* partial blocks sealed on request (interval, sync, poll) */
	wr_counter_t backpressure;            /* appends refused: next segment not available */
	wr_counter_t stage_waits;             /* appends that waited for a free stage buffer */
	wr_counter_t quarantined;             /* segments renamed aside at recovery */
	wr_counter_t torn_tails;              /* torn tails cut at recovery */
	wr_gauge_t hot_segments;              /* closed .wal files (maintainer writes) */
	wr_gauge_t cold_segments;             /* .wal.lz4 files (maintainer writes) */
};
_Static_assert(sizeof(struct wr_manager_metrics) % 64 == 0, "whole lines");

/*
 * The last sealed position in the files: the last block the flusher wrote
 * (segment, end offset, last id), published for the coordinator, the
 * drain loop and meta_state.
 */
struct wr_sealed_pos {
	uint32_t segment_index;
	uint64_t end;     /* file offset after the last sealed block */
	uint64_t last_id; /* last event in that block */
};

struct wr_manager_config {
	uint32_t num_blocks;
	const char *prefix; /* NULL: none */
	uint32_t stage_slots; /* 0: WR_STAGE_DEFAULT_SLOTS */
	struct wr_stage_metrics *stage_metrics; /* may be NULL */
};

struct wr_manager {
	/* hot: owner thread only */
	WR_ALIGNED_LINE struct wr_segment_slot *active;
	uint64_t last_id;          /* last id assigned */
	uint64_t sample;           /* append counter for the sampled histogram */
	struct wr_meta_store *meta;
	struct wr_manager_metrics *metrics;

	/* written by the coordinator/maintainer, read on every append */
	WR_ALIGNED_LINE _Atomic uint32_t attention;

	/* written by the owner, read by the coordinator */
	WR_ALIGNED_LINE _Atomic uint64_t appended_id; /* == last_id, relaxed */
	_Atomic(struct wr_segment_slot *) active_pub; /* release: after handed_last_id */
	_Atomic uint64_t handed_last_id; /* last id of every segment handed to the maintainer */

	/* written by the flusher holding the stage lock (seqlock), read by anyone */
	WR_ALIGNED_LINE _Atomic uint64_t sealed_seq;  /* seqlock over sealed_* */
	_Atomic uint32_t sealed_segment;
	_Atomic uint64_t sealed_end;
	_Atomic uint64_t sealed_last_id;

	struct wr_stage stage; /* sealed blocks on their way into the files */

	/* cold */
	WR_ALIGNED_LINE pthread_mutex_t sync_lock; /* coordinator holds it while syncing active_pub */
	_Atomic int latched_err;
	struct wr_segment_preparer *preparer;
	struct wr_segment_maintainer *maintainer;
	struct wr_meta_coordinator *coordinator;
	uint32_t num_blocks;
	uint32_t next_index;       /* first index the preparer creates (from recovery) */
	uint32_t active_index_at_open;
	uint64_t first_id_at_open; /* last_id right after recovery */
	bool closed;
	char dir[4096];
	char prefix[80];
};

/* Prepare m (no I/O). meta and metrics must outlive m. */
int wr_manager_init(struct wr_manager *m, const char *dir, const struct wr_manager_config *cfg,
		    struct wr_meta_store *meta, struct wr_manager_metrics *metrics,
		    struct wr_segment_writer_metrics *writer_metrics);

/*
 * Startup recovery (DESIGN.md §5): create the directory, check wal.meta
 * against the segment it names, find the last segment (newest first,
 * quarantining unreadable ones), reopen it at its append point, sync the
 * hot segments, and set last_id and next_index. 0 or -errno.
 */
int wr_manager_recover(struct wr_manager *m, struct wr_segment_writer_metrics *writer_metrics);

/* Wire the workers in (after recovery, before the first append). */
void wr_manager_attach(struct wr_manager *m, struct wr_segment_preparer *p,
		       struct wr_segment_maintainer *mt, struct wr_meta_coordinator *c);

int wr_manager_append_slow(struct wr_manager *m, const walrec_event_t *ev, uint64_t *id);
/* Act on attention bits: 1 if a block was sealed, 0, or -WALREC_ELATCHED/-WALREC_ECLOSED. */
int wr_manager_handle_attention(struct wr_manager *m, uint32_t attn);

/*
 * Write every sealed block into its file now (rather than wait for the
 * flusher thread). 0, or the write error, which is latched. Any thread.
 */
int wr_manager_flush(struct wr_manager *m);

/*
 * The hot path: one relaxed load of attention, id assignment, the writer's
 * append (a block is committed to the stage every 256 events). The 1-in-1024
 * timed sample (slow path) is compiled out with --disable-telemetry. 0 or the
 * codes of walrec_recorder_append(). Owner thread only.
 */
WR_INLINE int
wr_manager_append(struct wr_manager *m, const walrec_event_t *ev, uint64_t *assigned_id)
{
	/* Relaxed: the bits are requests and stop signals; acting on one a
	 * few appends late is harmless, and the slow path re-reads them. */
	if (WR_UNLIKELY(wr_load_relaxed(&m->attention) != 0) ||
	    (WR_STATS_ON && WR_UNLIKELY((++m->sample & 1023u) == 0)))
		return wr_manager_append_slow(m, ev, assigned_id);
	struct wr_segment_writer *w = &m->active->writer;
	walrec_event_t e = *ev;
	e.event_id = m->last_id + 1;
	if (e.timestamp_ns == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		e.timestamp_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	}
	if (WR_UNLIKELY(wr_segment_writer_append(w, &e) != 0))
		return wr_manager_append_slow(m, ev, assigned_id);
	m->last_id = e.event_id;
	/* Relaxed: the coordinator only uses it to see that work is pending. */
	wr_store_relaxed(&m->appended_id, e.event_id);
	if (assigned_id)
		*assigned_id = e.event_id;
	return 0;
}

/*
 * Seal the partial block now (sync, poll, close) and commit it to the
 * stage. Returns 1 if a block was sealed, 0 if there was nothing to seal.
 * Owner thread only.
 */
int wr_manager_seal_now(struct wr_manager *m);

/* Read the published sealed (written) position consistently (any thread). */
struct wr_sealed_pos wr_manager_sealed_pos(const struct wr_manager *m);

/*
 * Latch err (first one wins): appends and syncs fail from now on and no
 * event is reported durable again. Any thread.
 */
void wr_manager_latch(struct wr_manager *m, int err);
static inline int
wr_manager_latched(const struct wr_manager *m)
{
	return wr_load_acquire(&m->latched_err); /* pairs with the release in wr_manager_latch */
}

/*
 * Close the active segment at shutdown: finish it (final header), msync +
 * fdatasync, unmap, and publish its sealed position. 0 or -errno.
 * Owner thread only, after the coordinator and preparer stopped.
 */
int wr_manager_close_active(struct wr_manager *m);

void wr_manager_fini(struct wr_manager *m);

struct wr_out;
void wr_manager_metrics_copy(struct wr_manager_metrics *dst, const struct wr_manager_metrics *src);
/* The "manager" component section; events_appended is emitted as a counter. */
void wr_manager_metrics_emit(const struct wr_manager_metrics *m, uint64_t events_appended,
			     struct wr_out *o);

#endif
