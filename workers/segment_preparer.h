/* SPDX-License-Identifier: MIT */
/*
 * SegmentPreparer: a thread that keeps up to WR_PREPARER_DEPTH segments
 * created, preallocated and with a valid active header (see
 * docs/decisions.md), so a rotation on the owner thread only takes a
 * pointer from a queue.
 *
 * Concurrency: wr_segment_preparer_take() is called by the owner thread
 * only; start/stop by the thread that owns the recorder. The queue is a
 * mutex + two condition variables: the preparer sleeps when the queue is
 * full, the owner sleeps only when it is empty and no error is pending.
 */
#ifndef WR_SEGMENT_PREPARER_H
#define WR_SEGMENT_PREPARER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/stats.h"
#include "recorder/segment_writer.h"

#define WR_PREPARER_DEPTH 4

/* A writer plus the link the maintainer's queue uses (no allocation on rotation). */
struct wr_segment_slot {
	struct wr_segment_writer writer;
	struct wr_segment_slot *next;
};

struct wr_segment_preparer_metrics {
	wr_duration_t get_next_segment_wait; /* owner waited for a segment (none ready) */
	wr_counter_t get_next_segment_ready; /* owner found one ready */
	wr_operation_t prepare;              /* open_new of one segment */
	wr_counter_t prepare_failures;
	wr_gauge_t queue_depth;
	wr_gauge_t last_error;               /* -errno of the last failure, 0 after a success */
};
_Static_assert(sizeof(struct wr_segment_preparer_metrics) % 64 == 0, "whole lines");

struct wr_segment_preparer {
	pthread_mutex_t lock;
	pthread_cond_t space;    /* signalled when the owner takes a segment, or at stop */
	pthread_cond_t ready;    /* signalled when a segment is queued or an error set */
	struct wr_segment_slot *queue[WR_PREPARER_DEPTH];
	unsigned head, count;    /* under lock */
	bool stop;               /* under lock */
	int error;               /* under lock: last preparation error while retrying, 0 when fine */
	uint32_t next_index;     /* preparer thread only */
	bool names_failing;      /* preparer thread only: its last directory fsync failed */
	uint32_t num_blocks;
	bool started;
	pthread_t thread;
	struct wr_segment_writer_metrics *writer_metrics;
	struct wr_segment_preparer_metrics *metrics;
	struct wr_name_sync names; /* one directory fsync for the names made since the last */
	char dir[4096];
	char prefix[80];
};

/* Prepare p (no thread yet). next_index is the first segment index to create. */
int wr_segment_preparer_init(struct wr_segment_preparer *p, const char *dir,
			     const char *prefix, uint32_t next_index, uint32_t num_blocks,
			     struct wr_segment_writer_metrics *writer_metrics,
			     struct wr_segment_preparer_metrics *metrics);

/* Start the thread ("walrec-prep", on cpu_mask: see lib/thread.h). 0 or -errno. */
int wr_segment_preparer_start(struct wr_segment_preparer *p, uint64_t cpu_mask);

/*
 * Take the next prepared segment. Waits (counted in get_next_segment_wait)
 * only when none is ready and the preparer is working; when preparation
 * is failing (a full disk), returns that error at once (-ENOSPC...) so
 * the caller can push back on its appender instead of blocking; the
 * preparer keeps retrying with backoff. Returns 0 and *out, the
 * preparation error, or -WALREC_ECLOSED after stop. *waited (may be
 * NULL) says whether it had to wait. Owner thread only.
 */
int wr_segment_preparer_take(struct wr_segment_preparer *p, struct wr_segment_slot **out,
			     bool *waited);

/*
 * Stop the thread, then close and remove every prepared segment that was
 * never handed out (they hold no event). Safe to call twice.
 */
void wr_segment_preparer_stop(struct wr_segment_preparer *p);

/* Free the synchronisation objects (after stop). */
void wr_segment_preparer_fini(struct wr_segment_preparer *p);

struct wr_out;
void wr_segment_preparer_metrics_copy(struct wr_segment_preparer_metrics *dst,
				      const struct wr_segment_preparer_metrics *src);
/* The "segment_preparer" component section. */
void wr_segment_preparer_metrics_emit(const struct wr_segment_preparer_metrics *m,
				      struct wr_out *o);

/* Allocate a slot (64-byte aligned) / free one whose writer is closed. */
struct wr_segment_slot *wr_segment_slot_alloc(void);
void wr_segment_slot_free(struct wr_segment_slot *s);

#endif
