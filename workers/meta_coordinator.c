/* SPDX-License-Identifier: MIT */
/* MetaCoordinator: seal requests, sync of sealed data, durable position, wal.meta. */
#include <config.h>

#include <errno.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/metrics_out.h"
#include "lib/thread.h"
#include "recorder/manager.h"
#include "workers/meta_coordinator.h"
#include "workers/segment_maintainer.h"

/*
 * While parked with nothing pending the coordinator still wakes this
 * often: the owner's "wake the coordinator" check is a relaxed load with
 * no fence, so an append racing with the park can miss the flag; the next
 * append or this timeout picks it up.
 */
#define COORD_PARK_NS 100000000ull
/*
 * wal.meta is replaced at most this often (and at close): the replace is a
 * write, an fdatasync, a rename and a directory fsync, milliseconds on
 * ext4, and doing it every round would put it in front of the next
 * round's sync, i.e. of every waiter. It is a checked hint that may lag.
 */
#define COORD_META_EVERY_NS 100000000ull
/*
 * After a failed replace (a full disk, a rename refused) wal.meta is tried
 * again this often: the old file is intact, the durable position does not
 * depend on it, and every attempt is a whole new tmp+fdatasync+rename.
 */
#define COORD_META_RETRY_NS 1000000000ull
/* Waiting for the owner to seal a block a waiter asked for, between re-checks. */
#define COORD_SEAL_WAIT_NS 2000000ull
/*
 * Nothing pending: check again every interval for this long before
 * parking. An owner that syncs after every few events (durable acks)
 * leaves nothing pending most of the time; parking at once would make
 * each of its next appends wake the coordinator.
 */
#define COORD_IDLE_BEFORE_PARK_NS 20000000ull

int
wr_meta_coordinator_init(struct wr_meta_coordinator *c, const char *dir,
			 uint64_t sync_interval_us, uint64_t durable_id,
			 struct wr_manager *manager, struct wr_segment_maintainer *mt,
			 struct wr_meta_store_metrics *meta_metrics,
			 struct wr_meta_coordinator_metrics *metrics)
{
	memset(c, 0, sizeof *c);
	int rc = wr_meta_store_init(&c->durable_meta, dir, meta_metrics);
	if (rc != 0)
		return rc;
	c->interval_ns = sync_interval_us * 1000u;
	c->manager = manager;
	c->maintainer = mt;
	c->metrics = metrics;
	wr_store_relaxed(&c->durable_id, durable_id);
	wr_gauge_set(&metrics->durable_event_id, (int64_t)durable_id);
	wr_gauge_set(&metrics->sync_interval_us, (int64_t)sync_interval_us);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->wake, &ca);
	pthread_cond_init(&c->durable, &ca);
	pthread_condattr_destroy(&ca);
	return 0;
}

void
wr_meta_coordinator_kick(struct wr_meta_coordinator *c)
{
	pthread_mutex_lock(&c->lock);
	c->kicked = true;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
}

void
wr_meta_coordinator_wake_waiters(struct wr_meta_coordinator *c)
{
	pthread_mutex_lock(&c->lock);
	pthread_cond_broadcast(&c->durable);
	pthread_mutex_unlock(&c->lock);
}

void
wr_meta_coordinator_publish(struct wr_meta_coordinator *c, uint64_t id)
{
	pthread_mutex_lock(&c->lock);
	/* Checked under the lock: after a latch no waiter may see progress. */
	if (wr_manager_latched(c->manager) == 0 && id > wr_load_relaxed(&c->durable_id)) {
		/* Release: the syncs that made id durable happen-before any
		 * acquire load that sees it (wr_meta_coordinator_durable). */
		wr_store_release(&c->durable_id, id);
		/* Relaxed: only paces the coordinator's interval rounds. */
		wr_store_relaxed(&c->published_ns, wr_clock_now_ns());
		wr_gauge_set(&c->metrics->durable_event_id, (int64_t)id);
	}
	pthread_cond_broadcast(&c->durable);
	pthread_mutex_unlock(&c->lock);
}

bool
wr_meta_coordinator_flush_meta(struct wr_meta_coordinator *c, uint32_t segment, uint64_t end,
			       uint64_t last_id)
{
	if (end <= WR_SEGMENT_HEADER_SIZE || end > UINT32_MAX || last_id == 0)
		return true; /* nothing wal.meta can name */
	struct wr_meta_state cur = wr_meta_store_get_state(&c->durable_meta);
	if (cur.segment_index == segment && cur.offset == end && cur.last_event_id == last_id &&
	    !wr_meta_store_is_dirty(&c->durable_meta))
		return true;
	wr_meta_store_update(&c->durable_meta, segment, (uint32_t)end, last_id);
	uint64_t t0 = wr_clock_now_ns();
	bool ok = wr_meta_store_flush_to_disk(&c->durable_meta);
	wr_operation_record(&c->metrics->meta_flush, ok, t0, wr_clock_now_ns());
	return ok;
}

/*
 * Write out what is staged, sync, publish. The durable position it may
 * publish is the minimum of two facts:
 *  - the maintainer's synced_last_id r: every segment handed to it up to
 *    the one ending at r was closed with fdatasync (in order);
 *  - for the active writer w, the written position p read (seqlock)
 *    before the fdatasync of w, made under sync_lock.
 * handed_last_id h (read after w) is the last id of every segment that
 * stopped being active. If r < h an older segment still waits for the
 * maintainer, so only r is durable, even though w's blocks were synced:
 * publishing p would report events durable ahead of a gap. If r >= h, all
 * earlier segments are durable and so is p in w (or r if w is already
 * retired and fully synced): max(p, r). Returns true, with *meta set,
 * when wal.meta may name p (it was just published), false otherwise or
 * after a failure (latched).
 */
static bool
coord_sync_publish(struct wr_meta_coordinator *c, wr_operation_t *sync_metric,
		   struct wr_sealed_pos *meta)
{
	struct wr_manager *m = c->manager;
	/* Sealed blocks still in the stage: write them now rather than wait
	 * for the flusher thread (a failure latches in the flush). */
	if (wr_manager_flush(m) != 0) {
		wr_meta_coordinator_wake_waiters(c);
		return false;
	}
	uint64_t t0 = wr_clock_now_ns();
	pthread_mutex_lock(&m->sync_lock);
	/* Pairs with the release store of active_pub in the owner's rotation. */
	struct wr_segment_slot *w = wr_load_acquire(&m->active_pub);
	struct wr_sealed_pos p = wr_manager_sealed_pos(m);
	bool p_in_w = w != NULL && p.segment_index == w->writer.segment_index;
	int rc = 0;
	if (p_in_w)
		rc = wr_segment_writer_sync_sealed(&w->writer);
	pthread_mutex_unlock(&m->sync_lock);
	if (p_in_w)
		wr_operation_record(sync_metric, rc == 0, t0, wr_clock_now_ns());
	if (rc != 0) {
		wr_manager_latch(m, rc);
		wr_meta_coordinator_wake_waiters(c);
		return false;
	}
	/* Pairs with the release store in manager_rotate. */
	uint64_t h = wr_load_acquire(&m->handed_last_id);
	/* Pairs with the release store in maint_close_finished. */
	uint64_t r = wr_load_acquire(&c->maintainer->synced_last_id);
	uint64_t d;
	bool meta_ok;
	if (r < h) {
		d = r;
		meta_ok = false;
	} else {
		d = p_in_w && p.last_id > r ? p.last_id : r;
		meta_ok = p_in_w;
	}
	if (wr_manager_latched(m) != 0) {
		wr_meta_coordinator_wake_waiters(c);
		return false;
	}
	if (d > wr_meta_coordinator_durable(c))
		wr_meta_coordinator_publish(c, d);
	*meta = p;
	return meta_ok;
}

void
wr_meta_coordinator_sync_now(struct wr_meta_coordinator *c)
{
	struct wr_sealed_pos p;
	coord_sync_publish(c, &c->metrics->owner_sync, &p);
}

/* One round of the coordinator thread. */
static void
coord_round(struct wr_meta_coordinator *c, bool want_seal, bool wake)
{
	struct wr_manager *m = c->manager;
	wr_counter_inc(&c->metrics->rounds);
	wr_lag_observe(&c->lag, wr_load_relaxed(&m->appended_id), wr_clock_now_ns());
	if (want_seal) {
		struct wr_sealed_pos sp = wr_manager_sealed_pos(m);
		if (wr_load_relaxed(&m->appended_id) > sp.last_id) {
			/* Release: pairs with the acq_rel fetch_and in the owner's
			 * wr_manager_handle_attention. */
			atomic_fetch_or_explicit(&m->attention,
						 WR_ATTN_SEAL | (wake ? WR_ATTN_WAKE : 0),
						 memory_order_release);
			wr_counter_inc(&c->metrics->seal_requests);
		}
	}
	struct wr_sealed_pos p;
	bool meta_ok = coord_sync_publish(c, &c->metrics->sync, &p);
	uint64_t appended = wr_load_relaxed(&m->appended_id);
	uint64_t d = wr_meta_coordinator_durable(c);
	wr_histogram_record(&c->metrics->durable_lag, appended > d ? appended - d : 0);
	wr_lag_durable(&c->lag, d);
	/*
	 * Durable first, wal.meta second: the events are durable once their
	 * checksummed blocks are on disk (recovery walks blocks; wal.meta is
	 * a checked hint that only ever lags), so a waiter need not also wait
	 * for the rename and the two syncs of the meta file.
	 */
	uint64_t now = wr_clock_now_ns();
	uint64_t every = c->meta_failing ? COORD_META_RETRY_NS : COORD_META_EVERY_NS;
	if (meta_ok && now - c->meta_flushed_ns < every)
		meta_ok = false;
	if (!meta_ok)
		return;
	c->meta_flushed_ns = now;
	/*
	 * A failed replace is not latched: it left the old wal.meta intact
	 * (durable replace), which names older durable data and only lags, and
	 * no sync of event data failed. Latching would turn a disk that is
	 * full for a moment into a recorder that never writes again.
	 */
	bool ok = wr_meta_coordinator_flush_meta(c, p.segment_index, p.end, p.last_id);
	if (!ok && !c->meta_failing)
		wr_log_warn("%s/wal.meta can not be replaced; it lags behind the durable position "
			    "and is tried again every second", c->durable_meta.dir);
	else if (ok && c->meta_failing)
		wr_log_info("%s/wal.meta is replaced again", c->durable_meta.dir);
	c->meta_failing = !ok;
}

static void *
coord_main(void *arg)
{
	struct wr_meta_coordinator *c = arg;
	struct wr_manager *m = c->manager;
	uint64_t last_round = wr_clock_now_ns();
	uint64_t idle_since = last_round, last_appended = 0;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		if (c->stop)
			break;
		uint64_t durable = wr_load_relaxed(&c->durable_id);
		uint64_t appended = wr_load_relaxed(&m->appended_id);
		bool latched = wr_manager_latched(m) != 0;
		bool waiter = c->want_id > durable;
		bool pending = appended > durable;
		bool kicked = c->kicked;
		c->kicked = false;
		uint64_t now = wr_clock_now_ns();
		/* An interval runs from the last progress, ours or the owner's
		 * (it syncs when it waits for durability). */
		uint64_t since = wr_load_relaxed(&c->published_ns);
		if (since < last_round)
			since = last_round;
		bool due = pending && c->interval_ns != 0 && now - since >= c->interval_ns;
		if (!latched && (waiter || due || kicked)) {
			pthread_mutex_unlock(&c->lock);
			coord_round(c, waiter || due, waiter);
			last_round = wr_clock_now_ns();
			pthread_mutex_lock(&c->lock);
			/* A waiter still waiting on a block the owner has not sealed
			 * yet: wait for the owner's kick (or re-check shortly). */
			if (!c->stop && !c->kicked && c->want_id > wr_load_relaxed(&c->durable_id) &&
			    wr_manager_latched(m) == 0 &&
			    wr_manager_sealed_pos(m).last_id < c->want_id) {
				struct timespec dl = wr_clock_deadline(COORD_SEAL_WAIT_NS);
				pthread_cond_timedwait(&c->wake, &c->lock, &dl);
			}
			continue;
		}
		if (pending && c->interval_ns != 0 && !latched) {
			struct timespec dl = wr_clock_deadline(c->interval_ns - (now - since));
			pthread_cond_timedwait(&c->wake, &c->lock, &dl);
			continue;
		}
		if (appended != last_appended) {
			last_appended = appended;
			idle_since = now;
		}
		if (c->interval_ns != 0 && !latched && now - idle_since < COORD_IDLE_BEFORE_PARK_NS) {
			struct timespec dl = wr_clock_deadline(c->interval_ns);
			pthread_cond_timedwait(&c->wake, &c->lock, &dl);
			continue;
		}
		/* Nothing pending: park. The owner sees SLEEPING on its next
		 * append and kicks us. */
		if (c->interval_ns != 0 && !latched)
			atomic_fetch_or_explicit(&m->attention, WR_ATTN_SLEEPING, memory_order_relaxed);
		if (wr_load_relaxed(&m->appended_id) == appended && !c->kicked && !c->stop) {
			struct timespec dl = wr_clock_deadline(COORD_PARK_NS);
			pthread_cond_timedwait(&c->wake, &c->lock, &dl);
		}
		atomic_fetch_and_explicit(&m->attention, ~WR_ATTN_SLEEPING, memory_order_relaxed);
		/* Whatever wakes us starts a new interval: events appended from
		 * now on wait at most one interval. */
		last_round = wr_clock_now_ns();
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int
wr_meta_coordinator_start(struct wr_meta_coordinator *c, uint64_t cpu_mask)
{
	int rc = wr_thread_start(&c->thread, "walrec-coord", cpu_mask, coord_main, c);
	if (rc != 0)
		return rc;
	c->started = true;
	return 0;
}

int
wr_meta_coordinator_wait(struct wr_meta_coordinator *c, uint64_t id, uint64_t timeout_ns)
{
	struct wr_manager *m = c->manager;
	if (wr_meta_coordinator_durable(c) >= id)
		return 0;
	int err = wr_manager_latched(m);
	if (err != 0)
		return err;
	if (timeout_ns == 0)
		return -ETIMEDOUT;
	struct timespec dl = wr_clock_deadline(timeout_ns == UINT64_MAX ? 0 : timeout_ns);
	int rc = 0;
	pthread_mutex_lock(&c->lock);
	wr_counter_add_shared(&c->metrics->waits, 1);
	if (id > c->want_id)
		c->want_id = id;
	pthread_cond_signal(&c->wake);
	for (;;) {
		if (wr_load_acquire(&c->durable_id) >= id) { /* pairs with publish */
			rc = 0;
			break;
		}
		err = wr_manager_latched(m);
		if (err != 0) {
			rc = err;
			break;
		}
		if (c->closed) {
			rc = -WALREC_ECLOSED;
			break;
		}
		if (timeout_ns == UINT64_MAX) {
			pthread_cond_wait(&c->durable, &c->lock);
		} else if (pthread_cond_timedwait(&c->durable, &c->lock, &dl) == ETIMEDOUT) {
			rc = wr_load_acquire(&c->durable_id) >= id ? 0 : -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void
wr_meta_coordinator_stop(struct wr_meta_coordinator *c)
{
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	if (c->started) {
		pthread_join(c->thread, NULL);
		c->started = false;
	}
}

void
wr_meta_coordinator_fini(struct wr_meta_coordinator *c)
{
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->wake);
	pthread_cond_destroy(&c->durable);
}

void
wr_meta_coordinator_mark_closed(struct wr_meta_coordinator *c)
{
	pthread_mutex_lock(&c->lock);
	c->closed = true;
	pthread_cond_broadcast(&c->durable);
	pthread_mutex_unlock(&c->lock);
}

void
wr_meta_coordinator_metrics_copy(struct wr_meta_coordinator_metrics *dst,
				 const struct wr_meta_coordinator_metrics *src)
{
	wr_operation_copy(&dst->sync, &src->sync);
	wr_operation_copy(&dst->owner_sync, &src->owner_sync);
	wr_operation_copy(&dst->meta_flush, &src->meta_flush);
	wr_counter_copy(&dst->rounds, &src->rounds);
	wr_counter_copy(&dst->seal_requests, &src->seal_requests);
	wr_counter_copy(&dst->waits, &src->waits);
	wr_histogram_copy(&dst->durable_lag, &src->durable_lag);
	wr_gauge_copy(&dst->durable_event_id, &src->durable_event_id);
	wr_gauge_copy(&dst->sync_interval_us, &src->sync_interval_us);
}

void
wr_meta_coordinator_metrics_emit(const struct wr_meta_coordinator_metrics *m, struct wr_out *o)
{
	wr_out_component_begin(o, "durability");
	wr_out_operation(o, "sync", "fdatasync of newly written blocks of the active segment.",
			 &m->sync);
	wr_out_operation(o, "owner_sync",
			 "The same, done by the owner thread waiting in sync or wait_durable.",
			 &m->owner_sync);
	wr_out_operation(o, "meta_flush", "wal.meta replacements after a sync.", &m->meta_flush);
	wr_out_counter(o, "rounds", "Coordinator rounds.", &m->rounds);
	wr_out_counter(o, "seal_requests", "Partial-block seals asked of the owner thread.",
		       &m->seal_requests);
	wr_out_counter(o, "waits", "wait_durable and sync calls that had to wait.", &m->waits);
	wr_out_histogram_count(o, "round_lag_events",
			       "Events appended but not yet durable, sampled once per round.",
			       &m->durable_lag);
	wr_out_gauge(o, "durable_event_id", "Last event id known durable.", &m->durable_event_id);
	wr_out_gauge_ns(o, "sync_interval", "Configured sync interval (0: on request only).",
			(uint64_t)wr_load_relaxed(&m->sync_interval_us.value) * 1000u);
	wr_out_component_end(o);
}
