/* SPDX-License-Identifier: MIT */
/* The drain loop: producer rings in /walrec.<name> → the embedded recorder's log. */
#include <config.h>

#include <errno.h>
#include <sched.h>
#include <string.h>

#include "lib/atomics.h"
#include "lib/log.h"
#include "recorder/drain.h"
#include "recorder/follow.h"
#include "recorder/recorder_impl.h"
#include "recorder/telemetry.h"

#define DRAIN_DEFAULT_BATCH 4096u
/*
 * The drain thread writes sealed blocks itself once this many wait, a few
 * at a time, rather than leave them all to the flusher thread, which would
 * compete for a CPU with producers on a small machine.
 */
#define DRAIN_FLUSH_AT 2u
#define DRAIN_FLUSH_MAX 8u
/* Park length while appended events still wait to become durable: the
 * recorder must keep polling so the partial block gets sealed and synced. */
#define DRAIN_PENDING_PARK_NS 100000ull /* 100 us */

struct drain {
	walrec_recorder_t *rec;
	struct wr_channel *ch;
	uint64_t events;
	uint64_t last_id; /* the recorder's last assigned id, as the channel follows it */
	void (*on_appended)(void *arg, const walrec_event_t *slot, uint64_t id);
	void *arg;
};

void
wr_drain_options_default(struct wr_drain_options *o)
{
	memset(o, 0, sizeof *o);
	wr_channel_options_default(&o->channel);
	o->batch = DRAIN_DEFAULT_BATCH;
}

/*
 * The channel gives the id the event must get (its take log already says
 * so, for a restart); the recorder assigns last id + 1 and the owner
 * thread is its only appender, so they agree - checked anyway.
 */
static int
drain_take(void *arg, uint32_t producer, const walrec_event_t *slot, uint64_t id)
{
	(void)producer;
	struct drain *d = arg;
	uint64_t got = 0;
	/* The append copies the slot once (shared memory: the producer could
	 * still scribble on it) and works on the copy. */
	int rc = wr_manager_append(&d->rec->manager, slot, &got);
	if (rc < 0)
		return rc;
	if (got != id) {
		wr_log_error("drain: recorder assigned id %llu, expected %llu",
			     (unsigned long long)got, (unsigned long long)id);
		return -WALREC_ECORRUPT;
	}
	d->events++;
	if (d->on_appended)
		d->on_appended(d->arg, slot, got);
	return 0;
}

static ssize_t
drain_poll(struct drain *d, size_t batch)
{
	d->last_id = wr_load_relaxed(&d->rec->manager.appended_id);
	return wr_channel_poll(d->ch, batch, &d->last_id, drain_take, d);
}

/*
 * Hand sealed and durable progress to the producers, and the sealed
 * position to observers and followers (drain thread).
 */
static void
drain_progress(struct drain *d, uint64_t *sealed, uint64_t *durable)
{
	bool moved = false;
	struct wr_sealed_pos sp = wr_manager_sealed_pos(&d->rec->manager);
	if (sp.last_id > *sealed) {
		*sealed = sp.last_id;
		wr_channel_release_sealed(d->ch, *sealed);
		moved = true;
	}
	uint64_t dur = wr_meta_coordinator_durable(&d->rec->coordinator);
	if (dur > *durable) {
		*durable = dur;
		wr_channel_publish_durable(d->ch, dur);
		moved = true;
	}
	if (moved) {
		walrec_recorder_state_t st;
		walrec_recorder_meta_state(d->rec, &st);
		uint32_t blocks = sp.end > WR_SEGMENT_HEADER_SIZE
					  ? (uint32_t)((sp.end - WR_SEGMENT_HEADER_SIZE) / WR_BLOCK_SIZE)
					  : 0;
		struct wr_channel_meta m = { .segment_index = st.meta_segment_index,
					     .offset = st.meta_offset,
					     .last_sealed_id = sp.last_id,
					     .last_durable_id = *durable,
					     .sealed_segment_index = sp.segment_index,
					     .sealed_blocks = blocks };
		wr_channel_publish_meta(d->ch, &m);
	}
}

static int
drain_open(struct drain *d, const char *name, const struct wr_drain_options *o,
	   struct wr_drain_stats *stats)
{
	int rc = wr_channel_create(&d->ch, name, &o->channel);
	if (rc == 0) {
		stats->created = 1;
		return 0;
	}
	if (rc != -EEXIST)
		return rc;
	rc = wr_channel_open(&d->ch, name, &o->channel);
	if (rc < 0)
		return rc;
	walrec_recorder_state_t st;
	walrec_recorder_meta_state(d->rec, &st);
	rc = wr_channel_resume(d->ch, st.sealed_event_id);
	if (rc < 0) {
		wr_channel_close(d->ch);
		d->ch = NULL;
		return rc;
	}
	stats->resumed_from = st.sealed_event_id;
	wr_log_info("channel %s resumed after event %llu", name,
		    (unsigned long long)st.sealed_event_id);
	return 0;
}

/* Refuse new appends, drain what was accepted, seal, sync, publish, stop. */
static int
drain_stop(struct drain *d, size_t batch, uint64_t *sealed, uint64_t *durable, int err)
{
	wr_channel_set_state(d->ch, WR_CHAN_STOPPING);
	while (err == 0) {
		ssize_t n = drain_poll(d, batch);
		if (n < 0)
			err = (int)n;
		if (n <= 0)
			break;
		drain_progress(d, sealed, durable);
	}
	int rc = walrec_recorder_sync(d->rec);
	if (err == 0)
		err = rc;
	drain_progress(d, sealed, durable);
	wr_channel_set_state(d->ch, WR_CHAN_STOPPED);
	return err;
}

int
wr_drain_run(walrec_recorder_t *rec, const char *name, const struct wr_drain_options *o,
	     volatile sig_atomic_t *stop, struct wr_drain_stats *stats)
{
	struct wr_drain_options def;
	struct wr_drain_stats st_local;
	if (rec == NULL || name == NULL || stop == NULL)
		return -EINVAL;
	if (o == NULL) {
		wr_drain_options_default(&def);
		o = &def;
	}
	if (stats == NULL)
		stats = &st_local;
	memset(stats, 0, sizeof *stats);
	struct drain d = { .rec = rec, .on_appended = o->on_appended, .arg = o->arg };
	int rc = drain_open(&d, name, o, stats);
	if (rc < 0)
		return rc;
	/* Followers of the directory find the channel by this name (docs/reader.md). */
	int arc = wr_follow_announce(rec->manager.dir, name);
	if (arc < 0)
		wr_log_warn("drain: cannot write %s/%s: %s (followers need --channel %s)",
			    rec->manager.dir, WR_FOLLOW_NAME_FILE, walrec_strerror(arc), name);
	size_t batch = o->batch ? o->batch : DRAIN_DEFAULT_BATCH;
	uint64_t park_ns = o->channel.park_timeout_ns ? o->channel.park_timeout_ns
						      : WR_CHANNEL_DEFAULT_PARK_NS;
	uint64_t sealed = 0, durable = 0;
	wr_channel_set_state(d.ch, WR_CHAN_RUNNING);
	/* Snapshots for observers; recording goes on without them if they fail. */
	struct wr_telemetry *tel = NULL;
	if (o->telemetry_interval_ns != WR_DRAIN_NO_TELEMETRY &&
	    wr_telemetry_start(&tel, rec, d.ch, o->telemetry_interval_ns) < 0)
		wr_log_warn("drain: channel %s: running without telemetry snapshots", name);
	if (o->on_running)
		o->on_running(o->arg, d.ch, stats->resumed_from);

	int err = 0;
	uint32_t idle = 0;
	/* Atomic load: the flag may be set by a signal handler or another thread. */
	while (!__atomic_load_n(stop, __ATOMIC_RELAXED)) {
		ssize_t n = drain_poll(&d, batch);
		if (n < 0 && n != -ENOSPC) {
			err = (int)n;
			break;
		}
		/* Seals the partial block when the sync interval asked for it. */
		int prc = walrec_recorder_poll(rec);
		if (prc < 0 && prc != -ENOSPC) {
			err = prc;
			break;
		}
		drain_progress(&d, &sealed, &durable);
		/* A producer waits for an event already appended: make it durable
		 * now, on this thread (seal, write, sync: one hand-off fewer than
		 * asking the coordinator), for every producer at once. */
		if (wr_channel_durable_wanted(d.ch)) {
			int src = walrec_recorder_sync(rec);
			if (src < 0) {
				err = src;
				break;
			}
			drain_progress(&d, &sealed, &durable);
		}
		struct wr_stage *st = &rec->manager.stage;
		uint64_t staged = wr_stage_pending(st);
		if (staged >= DRAIN_FLUSH_AT || (n == 0 && staged > 0)) {
			if (wr_stage_try_flush(st, DRAIN_FLUSH_MAX) < 0) {
				err = -WALREC_ELATCHED;
				break;
			}
			drain_progress(&d, &sealed, &durable);
			idle = 0;
			continue;
		}
		if (n > 0) {
			idle = 0;
			continue;
		}
		/* Idle: keep the active segment conditioned ahead of its blocks
		 * (the flusher thread may share a CPU with busy producers)... */
		if (wr_stage_condition(st) > 0)
			continue;
		/* ...then spin, then yield, then park on the channel's futex. */
		idle++;
		if (o->busy_poll || idle < 64) {
			wr_cpu_relax();
		} else if (idle < 128) {
			sched_yield();
		} else {
			bool pending = wr_load_relaxed(&rec->manager.appended_id) > durable;
			wr_channel_park(d.ch, pending ? DRAIN_PENDING_PARK_NS : park_ns);
		}
	}
	if (err < 0)
		wr_log_error("drain: stopping on error: %s", walrec_strerror(err));
	rc = drain_stop(&d, batch, &sealed, &durable, err);
	wr_telemetry_stop(tel); /* the final snapshot shows the channel stopped */
	stats->events = d.events;
	wr_channel_close(d.ch);
	return rc;
}
