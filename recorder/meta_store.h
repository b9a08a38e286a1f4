/* SPDX-License-Identifier: MIT */
/*
 * MetaStore: the 16-byte progress checkpoint (wal.meta), updated lock-free
 * on the hot path and persisted by a background thread.
 *
 * State: (segment_index, offset, last_event_id) where offset is the end of
 * the last sealed block of that segment and last_event_id the last event
 * in it. File format in format.h (wr_meta_encode).
 *
 * Concurrency: update() has ONE writer thread (the Manager's). get_state(),
 * is_dirty() and flush_to_disk() may be called from any thread, but
 * flush_to_disk() from one thread at a time (the MetaCoordinator).
 * get_state() never returns a torn triple (segment/offset of one update,
 * event id of another): update is a seqlock write.
 */
#ifndef WR_META_STORE_H
#define WR_META_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/stats.h"
#include "recorder/format.h"

struct wr_meta_store_metrics {
	wr_duration_t maintenance_meta_flush;
	wr_counter_t flush_failures;
};

struct wr_meta_store {
	WR_ALIGNED_LINE _Atomic uint64_t seq;   /* seqlock: odd while an update is in progress */
	_Atomic uint64_t packed;                /* (segment_index << 32) | offset */
	_Atomic uint64_t last_event_id;
	WR_ALIGNED_LINE _Atomic uint64_t dirty_seq; /* seq of the newest completed update */
	_Atomic uint64_t flushed_seq;           /* written by the flusher only; is_dirty reads it */
	struct wr_meta_store_metrics *metrics;  /* may be NULL */
	char dir[4096];
	char path[4096];
};

/* Prepare a store for dir/wal.meta (no I/O). State starts zero, clean. */
int wr_meta_store_init(struct wr_meta_store *m, const char *dir,
		       struct wr_meta_store_metrics *metrics);

/* Record new progress: plain atomic stores, no lock, no system call. */
void wr_meta_store_update(struct wr_meta_store *m, uint32_t segment_index,
			  uint32_t offset, uint64_t last_event_id);

/* A consistent copy of the state (retries while an update is in progress). */
struct wr_meta_state wr_meta_store_get_state(const struct wr_meta_store *m);

/* True when an update happened since the last successful flush. */
bool wr_meta_store_is_dirty(const struct wr_meta_store *m);

/*
 * Persist the current state: wr_fs_durable_replace(dir, "wal.meta").
 * Returns true on success (then clean unless an update raced in); on
 * failure returns false and stays dirty; the old file is untouched.
 * The caller must have made the data the state points to durable first.
 */
bool wr_meta_store_flush_to_disk(struct wr_meta_store *m);

/*
 * Load dir/wal.meta into the state (clean afterwards). Returns 0, -ENOENT
 * when missing, -WALREC_EFORMAT when the file is not exactly 16 bytes,
 * or -errno. The caller validates the state against the segment it names.
 * Writes the state as update() does: call it from the update thread, or
 * before that thread starts.
 */
int wr_meta_store_load(struct wr_meta_store *m);

const char *wr_meta_store_filepath(const struct wr_meta_store *m);

/* ---- telemetry ------------------------------------------------------------ */

struct wr_out;

/* Snapshot copy (relaxed loads); dst and src may be in shared memory. */
void wr_meta_store_metrics_copy(struct wr_meta_store_metrics *dst,
				const struct wr_meta_store_metrics *src);

/* Write the "meta_store" component section to o (any format, see metrics_out.h). */
void wr_meta_store_metrics_emit(const struct wr_meta_store_metrics *m, struct wr_out *o);

/* Human-readable text to f, under the heading label (NULL: no heading line). */
void wr_meta_store_metrics_dump(const struct wr_meta_store_metrics *m, const char *label,
				FILE *f);

/* Prometheus text exposition 0.0.4 to f; labels as in wr_out (may be NULL). */
void wr_meta_store_metrics_collect(const struct wr_meta_store_metrics *m,
				   const char *labels, FILE *f);

#endif
