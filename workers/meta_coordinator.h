/* SPDX-License-Identifier: MIT */
/*
 * MetaCoordinator: the thread that makes sealed events durable. Each
 * round: ask the owner to seal the partial block (a flag; the owner is
 * the only writer of the active block), msync the sealed range of the
 * active segment, publish the durable position and wake waiters, then
 * persist wal.meta (tmp + fdatasync + rename + directory fsync) naming
 * only data that is already on stable storage.
 *
 * It sleeps on a condition variable: woken by waiters, by the owner (the
 * first append after an idle spell, or a seal a waiter asked for), by the
 * maintainer after it synced a finished segment, and at stop; while events
 * are pending it wakes every sync_interval.
 *
 * Concurrency: wr_meta_coordinator_wait/request/kick from any thread;
 * start/stop from the thread that owns the recorder.
 */
#ifndef WR_META_COORDINATOR_H
#define WR_META_COORDINATOR_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/lag.h"
#include "lib/stats.h"
#include "recorder/meta_store.h"

struct wr_manager;
struct wr_segment_maintainer;

struct wr_meta_coordinator_metrics {
	wr_operation_t sync;          /* fdatasync of the written blocks (coordinator thread) */
	wr_operation_t owner_sync;    /* the same, by the owner thread in sync / wait_durable */
	wr_operation_t meta_flush;    /* wal.meta replace */
	wr_counter_t rounds;
	wr_counter_t seal_requests;   /* partial seals asked of the owner */
	wr_counter_t waits;           /* wait_durable / sync calls that had to wait */
	wr_histogram_t durable_lag;   /* append-to-durable position lag per round, in events */
	wr_gauge_t durable_event_id;
	wr_gauge_t sync_interval_us;
};
_Static_assert(sizeof(struct wr_meta_coordinator_metrics) % 64 == 0, "whole lines");

struct wr_meta_coordinator {
	pthread_mutex_t lock;
	pthread_cond_t wake;     /* the coordinator sleeps here */
	pthread_cond_t durable;  /* waiters sleep here */
	bool stop;               /* under lock */
	bool kicked;             /* under lock: somebody asked for a round */
	bool closed;             /* under lock: close finished; waiters give up */
	uint64_t want_id;        /* under lock: highest id a waiter waits for */
	bool started;
	pthread_t thread;

	/* release: after the data up to it is on stable storage; pairs with the acquire in readers */
	_Atomic uint64_t durable_id;
	_Atomic uint64_t published_ns; /* when durable_id last moved (paces interval rounds) */

	uint64_t interval_ns;    /* 0: only on request */
	uint64_t meta_flushed_ns; /* coordinator thread: last wal.meta replace (attempt) */
	bool meta_failing;        /* coordinator thread: the last replace failed */
	struct wr_manager *manager;
	struct wr_segment_maintainer *maintainer;
	struct wr_meta_store durable_meta; /* what is on disk: flushed only after its data is */
	struct wr_meta_coordinator_metrics *metrics;
	/* coordinator thread: how long the oldest event not durable has waited */
	struct wr_lag_tracker lag;
};

int wr_meta_coordinator_init(struct wr_meta_coordinator *c, const char *dir,
			     uint64_t sync_interval_us, uint64_t durable_id,
			     struct wr_manager *manager, struct wr_segment_maintainer *mt,
			     struct wr_meta_store_metrics *meta_metrics,
			     struct wr_meta_coordinator_metrics *metrics);

/* Start the thread ("walrec-coord", on cpu_mask: see lib/thread.h). 0 or -errno. */
int wr_meta_coordinator_start(struct wr_meta_coordinator *c, uint64_t cpu_mask);

/* Ask for a round soon (owner after an idle spell or a requested seal; maintainer). */
void wr_meta_coordinator_kick(struct wr_meta_coordinator *c);

/*
 * Wait until event id is durable, up to timeout_ns (UINT64_MAX: no limit).
 * 0, -ETIMEDOUT, the latched error, or -WALREC_ECLOSED when the recorder
 * closed without the id becoming durable.
 */
int wr_meta_coordinator_wait(struct wr_meta_coordinator *c, uint64_t id, uint64_t timeout_ns);

static inline uint64_t
wr_meta_coordinator_durable(const struct wr_meta_coordinator *c)
{
	return atomic_load_explicit(&c->durable_id, memory_order_acquire); /* pairs with publish */
}

/*
 * Write out what is staged, fdatasync the active segment and publish what
 * that made durable, on the calling thread (the owner waiting in sync or
 * wait_durable, after sealing its partial block). Does not touch
 * wal.meta. A failure is latched.
 */
void wr_meta_coordinator_sync_now(struct wr_meta_coordinator *c);

/*
 * Publish id as durable (monotonic) and wake waiters; used by the thread
 * and by close after the final sync. Refused once an error is latched.
 */
void wr_meta_coordinator_publish(struct wr_meta_coordinator *c, uint64_t id);

/* Wake every waiter (an error was latched or close finished). */
void wr_meta_coordinator_wake_waiters(struct wr_meta_coordinator *c);

/*
 * Persist st as wal.meta (update the durable store, flush). The caller has
 * made the data st points to durable. true on success.
 */
bool wr_meta_coordinator_flush_meta(struct wr_meta_coordinator *c, uint32_t segment,
				    uint64_t end, uint64_t last_id);

/* Close finished: wake waiters for good (they get -WALREC_ECLOSED unless durable). */
void wr_meta_coordinator_mark_closed(struct wr_meta_coordinator *c);

/* Stop the thread (no final round: close syncs itself). Safe twice. */
void wr_meta_coordinator_stop(struct wr_meta_coordinator *c);

void wr_meta_coordinator_fini(struct wr_meta_coordinator *c);

struct wr_out;
void wr_meta_coordinator_metrics_copy(struct wr_meta_coordinator_metrics *dst,
				      const struct wr_meta_coordinator_metrics *src);
/* The "durability" component section. */
void wr_meta_coordinator_metrics_emit(const struct wr_meta_coordinator_metrics *m,
				      struct wr_out *o);

#endif
