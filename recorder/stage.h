/* SPDX-License-Identifier: MIT */
/*
 * Stage: the ring of block buffers between the owner thread, which fills
 * and seals blocks in anonymous memory, and the flusher, which writes the
 * sealed blocks into their segment files with pwrite().
 *
 * Why not write through a shared mapping of the segment: every sync of
 * dirty mapped file pages write-protects them (page_mkclean), and each of
 * those costs a TLB-shootdown interrupt on the appending core, one per
 * page cache folio: thousands a second at full rate, each a few
 * microseconds lost by whatever append it lands in (docs/decisions.md).
 * The owner here never maps a file writable; its buffers are private
 * memory that the kernel never write-protects.
 *
 * Ring positions count slots ever used; slot p is buffer p & mask.
 *   [tail, ready)  sealed blocks waiting to be written
 *   [ready, head)  at most one: the block the owner is filling
 * The owner claims slot head (its buffer is free once head - tail <
 * slots), fills it, then commits it: the entry describing it is stored and
 * `ready` advances with release. A flush takes the entries in [tail,
 * ready) in order, writes each run of consecutive blocks of one segment
 * with one pwrite, reports the written position through the callback and
 * advances `tail` with release.
 *
 * Concurrency: claim and commit are owner-thread only and never block or
 * make a system call, except commit's futex wake of a parked flusher
 * thread (first block after an idle spell). Flushes may come from any
 * thread (the flusher thread, the coordinator, the owner in sync, the
 * maintainer closing a segment); a mutex makes them one at a time and in
 * ring order.
 */
#ifndef WR_STAGE_H
#define WR_STAGE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/atomics.h"
#include "lib/compiler.h"
#include "lib/stats.h"
#include "recorder/format.h"

struct wr_segment_writer;

/* Slots in a recorder's stage by default: 1024 blocks, 16 MiB, 262,144 events. */
#define WR_STAGE_DEFAULT_SLOTS 1024u
#define WR_STAGE_MIN_SLOTS 4u
#define WR_STAGE_MAX_SLOTS 65536u

/* One sealed block, described by the owner at commit. */
struct wr_stage_entry {
	struct wr_segment_writer *writer;
	uint32_t block_index;
	uint32_t event_count;
	uint64_t last_id; /* last event id in the block */
};

struct wr_stage_metrics {
	wr_operation_t write;       /* one pwrite of a run of blocks */
	wr_counter_t blocks_written;
	wr_counter_t bytes_written;
	wr_duration_t full_waits;   /* owner waited for a free buffer */
	wr_counter_t wakeups;       /* flusher thread woken by the owner after parking */
	wr_counter_t cond_bytes;    /* zeros written ahead of the active segment's blocks */
	wr_gauge_t slots;
};
_Static_assert(sizeof(struct wr_stage_metrics) % 64 == 0, "whole lines");

/*
 * Called by the flushing thread, under the flush lock, after the blocks
 * of one writer up to `end` (file offset after the last block written)
 * and `last_id` are in the file.
 */
typedef void (*wr_stage_written_fn)(void *arg, struct wr_segment_writer *w, uint64_t end,
				    uint64_t last_id);
/* Called once, under the flush lock, when a write fails (err < 0): the error is latched. */
typedef void (*wr_stage_failed_fn)(void *arg, int err);

struct wr_stage {
	/* owner thread only */
	WR_ALIGNED_LINE uint64_t head;  /* next position to claim */
	uint64_t cached_tail;
	uint8_t *mem;
	uint32_t mask;
	struct wr_stage_metrics *metrics;

	/* written by the owner, read by flushers */
	WR_ALIGNED_LINE _Atomic uint64_t ready; /* release: entries and buffers below it are complete */

	/* written by flushers, read by the owner */
	WR_ALIGNED_LINE _Atomic uint64_t tail;  /* release: buffers below it may be reused */
	_Atomic int error;                      /* first write error (latched), 0 */

	/* the flusher thread's parking protocol */
	WR_ALIGNED_LINE _Atomic uint32_t sleeping; /* flusher parked: commit must wake it */
	_Atomic uint32_t wake;                     /* futex word, bumped to wake it */

	/* cold */
	WR_ALIGNED_LINE pthread_mutex_t lock;  /* one flush at a time */
	struct wr_stage_entry *entries;
	uint32_t slots;
	wr_stage_written_fn written;
	wr_stage_failed_fn failed;
	void *cb_arg;
	/* the writer appended to now (conditioned ahead); under the lock, or the owner's store */
	_Atomic(struct wr_segment_writer *) active;
	uint64_t cond_at_ns;            /* flusher: last conditioning write */
	bool stop;      /* flusher thread: stop after draining */
	bool started;
	pthread_t thread;
};

/*
 * Allocate slots buffers (a power of two, 4..65536) in anonymous memory,
 * prefaulted, so neither claiming nor filling a block ever faults a page
 * in. written and failed (may be NULL) are called with arg after each
 * flushed run and at a write failure. metrics may be NULL. 0, -EINVAL or
 * -ENOMEM.
 */
int wr_stage_init(struct wr_stage *st, uint32_t slots, wr_stage_written_fn written,
		  wr_stage_failed_fn failed, void *arg, struct wr_stage_metrics *metrics);

/* Stop the flusher thread if running (after a final flush) and free everything. */
void wr_stage_fini(struct wr_stage *st);

/*
 * The buffer of the next slot, or NULL while every buffer still waits to
 * be written (back-pressure: the caller retries after waiting). The
 * buffer's old contents are not cleared. Owner thread only.
 */
static inline struct wr_block *
wr_stage_claim(struct wr_stage *st)
{
	if (WR_UNLIKELY(st->head - st->cached_tail > st->mask)) {
		/* Acquire: pairs with the release store of tail in a flush; the
		 * pwrite that read the buffer is done before we write it again. */
		st->cached_tail = wr_load_acquire(&st->tail);
		if (st->head - st->cached_tail > st->mask)
			return NULL;
	}
	return (struct wr_block *)(st->mem + (size_t)(st->head & st->mask) * WR_BLOCK_SIZE);
}

/*
 * Hand the claimed buffer, now holding a sealed block, to the flushers.
 * Owner thread only, after a successful claim.
 */
void wr_stage_commit(struct wr_stage *st, const struct wr_stage_entry *e);

/* Position after the last committed block (owner thread). */
static inline uint64_t
wr_stage_position(const struct wr_stage *st)
{
	return st->head;
}

/*
 * Write every committed block not yet written. Returns the number of
 * blocks written (0 if none was waiting), or the latched write error
 * (-errno; nothing after the failed block is ever written). Any thread.
 */
int wr_stage_flush(struct wr_stage *st);

/*
 * The same, writing at most max_blocks (the oldest), and only if no other
 * thread is flushing right now (then 0 at once: that one writes them).
 */
int wr_stage_try_flush(struct wr_stage *st, uint32_t max_blocks);

/* Blocks committed and not yet written (owner thread). */
static inline uint64_t
wr_stage_pending(const struct wr_stage *st)
{
	/* Relaxed: a hint for when to flush; flushing reads it properly. */
	return st->head - wr_load_relaxed(&st->tail);
}

/*
 * Flush until every block below position pos is written. 0 or the
 * latched error. Any thread.
 */
int wr_stage_flush_to(struct wr_stage *st, uint64_t pos);

/*
 * Owner: wait until a buffer is free (a flusher thread is running, or
 * flush here). 0, or the latched write error.
 */
int wr_stage_wait_space(struct wr_stage *st);

/*
 * The owner started appending to w (wr_segment_writer_start): the flusher
 * conditions w ahead of its last written block when it is idle.
 */
void wr_stage_set_active(struct wr_stage *st, struct wr_segment_writer *w);

/* w is being closed: never touch it again (under the lock). Any thread. */
void wr_stage_forget(struct wr_stage *st, struct wr_segment_writer *w);

/*
 * Condition the active segment: while the flusher is idle, write zeros a
 * few MiB ahead of the last block written and start their writeback, so
 * that the file system has converted those preallocated (unwritten)
 * extents before blocks land there and a later sync of a block is a
 * plain data write, not also a journal commit. Returns bytes written
 * ahead (0: nothing to do). Called by the flusher thread; any thread.
 */
int64_t wr_stage_condition(struct wr_stage *st);

/* Start / stop the flusher thread ("walrec-flush", on cpu_mask: see lib/thread.h). */
int wr_stage_start(struct wr_stage *st, uint64_t cpu_mask);
void wr_stage_stop(struct wr_stage *st);

struct wr_out;
void wr_stage_metrics_copy(struct wr_stage_metrics *dst, const struct wr_stage_metrics *src);
/* The "flusher" component section. */
void wr_stage_metrics_emit(const struct wr_stage_metrics *m, struct wr_out *o);

#endif
