/* SPDX-License-Identifier: MIT */
/*
 * SegmentMaintainer: a thread that closes finished segments (waits until
 * the stage wrote their blocks, writes the final header, fdatasync), then
 * applies retention: beyond max_hot closed
 * .wal files the oldest is compressed to .wal.lz4 (or deleted when
 * compression is off), beyond max_cold .wal.lz4 files the oldest is
 * deleted. Nothing else is ever removed.
 *
 * Concurrency: wr_segment_maintainer_push() is called by the owner thread
 * (rotation); everything else runs on the maintainer thread. The queue is
 * an intrusive list under a mutex; the thread sleeps on a condition
 * variable with an exponentially growing timeout while idle.
 */
#ifndef WR_SEGMENT_MAINTAINER_H
#define WR_SEGMENT_MAINTAINER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/stats.h"
#include "workers/segment_preparer.h"

struct wr_manager;
struct wr_meta_coordinator;

struct wr_segment_maintainer_metrics {
	wr_counter_t loop_active;        /* rounds that found work */
	wr_counter_t loop_idle;          /* rounds that slept */
	wr_operation_t close_segment;    /* full sync + close of a finished segment */
	wr_duration_t retention;         /* one retention decision + action */
	wr_operation_t compression;
	wr_counter_t compression_bytes_in;
	wr_counter_t compression_bytes_out;
	wr_operation_t deletion;
	wr_gauge_t max_hot_segments;     /* configured limits (0 = none) */
	wr_gauge_t max_cold_segments;
	wr_gauge_t queue_depth;
};
_Static_assert(sizeof(struct wr_segment_maintainer_metrics) % 64 == 0, "whole lines");

/* A sorted list of segment indexes (oldest first). */
struct wr_index_list {
	uint32_t *v;
	size_t n, cap;
};

struct wr_segment_maintainer {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct wr_segment_slot *head, *tail; /* under lock: finished writers, oldest first */
	size_t queued;                       /* under lock */
	bool stop;                           /* under lock */
	bool started;
	pthread_t thread;

	/* maintainer thread only (and open/close while the thread is not running) */
	struct wr_index_list hot, cold;
	uint64_t retry_at_ns;                /* after a failed compression: not before */
	uint32_t max_hot, max_cold;
	bool compression;
	struct wr_manager *manager;
	struct wr_meta_coordinator *coordinator;
	struct wr_segment_maintainer_metrics *metrics;
	wr_gauge_t *hot_gauge, *cold_gauge;  /* in the manager's metrics */

	/* release: after the segment's full sync; read by the coordinator */
	_Atomic uint64_t synced_last_id;

	char dir[4096];
	char prefix[80];
};

int wr_segment_maintainer_init(struct wr_segment_maintainer *mt, const char *dir,
			       const char *prefix, uint32_t max_hot, uint32_t max_cold,
			       bool compression, struct wr_manager *manager,
			       struct wr_meta_coordinator *coordinator,
			       struct wr_segment_maintainer_metrics *metrics,
			       wr_gauge_t *hot_gauge, wr_gauge_t *cold_gauge);

/*
 * Scan the directory for closed hot segments (index < active_index) and
 * cold ones, finish a compression a crash interrupted (a complete
 * .wal.lz4 next to its .wal), and start the thread ("walrec-maint", on
 * cpu_mask: see lib/thread.h). 0 or -errno.
 */
int wr_segment_maintainer_start(struct wr_segment_maintainer *mt, uint32_t active_index,
				uint64_t cpu_mask);

/* Queue a finished writer (owner thread; a short critical section, no I/O). */
void wr_segment_maintainer_push(struct wr_segment_maintainer *mt, struct wr_segment_slot *s);

/*
 * Stop: the thread closes every queued writer (with sync) and applies
 * retention once more, then exits. If extra_hot_index is not UINT32_MAX,
 * it is added to the hot list first (the active segment, just closed).
 * Returns 0 or the first close error. Safe to call twice.
 */
int wr_segment_maintainer_stop(struct wr_segment_maintainer *mt, uint32_t extra_hot_index);

void wr_segment_maintainer_fini(struct wr_segment_maintainer *mt);

struct wr_out;
void wr_segment_maintainer_metrics_copy(struct wr_segment_maintainer_metrics *dst,
					const struct wr_segment_maintainer_metrics *src);
/* The "segment_maintainer" component section. */
void wr_segment_maintainer_metrics_emit(const struct wr_segment_maintainer_metrics *m,
					struct wr_out *o);

/*
 * Compress dir/src (a closed .wal) to dir/dst (.wal.lz4) as one LZ4
 * frame, streamed in chunks, through dst.tmp (O_EXCL|O_NOFOLLOW),
 * fdatasync, rename, directory fsync. Does not remove src. Sets *in_bytes
 * and *out_bytes. 0 or -errno (the .tmp is removed on failure).
 */
int wr_segment_compress_file(const char *dir, const char *src, const char *dst,
			     uint64_t *in_bytes, uint64_t *out_bytes);

#endif
