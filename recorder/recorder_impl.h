/* SPDX-License-Identifier: MIT */
/*
 * The embedded recorder object behind walrec_recorder_t: the Manager, the
 * three workers and every component's telemetry. Internal (tests and
 * benchmarks look inside); the public API is include/walrec/recorder.h.
 */
#ifndef WR_RECORDER_IMPL_H
#define WR_RECORDER_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include <walrec/recorder.h>

#include "recorder/manager.h"
#include "recorder/meta_store.h"
#include "recorder/segment_writer.h"
#include "workers/meta_coordinator.h"
#include "workers/segment_maintainer.h"
#include "workers/segment_preparer.h"

/* Every component's metrics; also the snapshot type (copy_to fills one). */
struct wr_recorder_metrics {
	struct wr_manager_metrics manager;
	struct wr_segment_writer_metrics writer;
	struct wr_segment_preparer_metrics preparer;
	struct wr_segment_maintainer_metrics maintainer;
	struct wr_meta_coordinator_metrics durability;
	struct wr_meta_store_metrics meta_store;
	struct wr_stage_metrics flusher;
	WR_ALIGNED_LINE uint64_t events_appended;
};
_Static_assert(sizeof(struct wr_recorder_metrics) % 64 == 0, "whole lines");

struct walrec_recorder {
	struct wr_manager manager;
	struct wr_meta_store meta; /* sealed progress, updated on the hot path */
	struct wr_segment_preparer preparer;
	struct wr_segment_maintainer maintainer;
	struct wr_meta_coordinator coordinator;
	struct wr_recorder_metrics metrics;
	walrec_recorder_config_t config;
	char prefix[WALREC_RECORDER_MAX_PREFIX + 1];
	pthread_t owner; /* the thread that opened it: the appending thread */
	bool open;       /* owner thread: false once close ran */
	int close_rc;
};

/* Snapshot every component's metrics (relaxed copies). */
void wr_recorder_metrics_copy(const struct walrec_recorder *rec, struct wr_recorder_metrics *dst);

/* Emit a snapshot as a whole document (format: WALREC_METRICS_*). */
void wr_recorder_metrics_emit(const struct wr_recorder_metrics *snap, FILE *f, int format);

/* Emit every component's section into a document the caller began. */
struct wr_out;
void wr_recorder_metrics_emit_sections(const struct wr_recorder_metrics *snap, struct wr_out *o);

/* Check a configuration; logs the first bad field with its range. 0 or -EINVAL. */
int wr_recorder_config_check(const walrec_recorder_config_t *cfg);

#endif
