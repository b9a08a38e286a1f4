/* SPDX-License-Identifier: MIT */
/*
 * walrec channel, recorder side: create or reopen /walrec.<name>, drain the
 * producer rings fairly, release sealed slots, publish durable sequences and
 * the MetaState mirror, detect dead and misbehaving producers, and park an
 * idle drain thread on a futex. Layout: recorder/channel_layout.h; protocol
 * and the restart argument: docs/channel.md.
 *
 * Concurrency: one wr_channel object belongs to ONE thread, the recorder's
 * drain thread (the Manager): create/open, resume, poll, release_sealed,
 * publish_durable, reclaim, park, idle, set_state, close. The only calls
 * any other thread may make are wr_channel_post_durable(), wr_channel_wake()
 * and wr_channel_publish_meta() (one writer thread at a time for the
 * latter); wr_channel_metrics() and wr_channel_map() may be read from any
 * thread (the telemetry aggregator: relaxed loads of counters and of the
 * shared words, never the drain thread's private state). Producers are
 * other processes using include/walrec/producer.h.
 */
#ifndef WR_CHANNEL_H
#define WR_CHANNEL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <walrec/common.h>

#include "lib/stats.h"
#include "recorder/channel_layout.h"

#define WR_CHANNEL_DEFAULT_PRODUCERS 16u
#define WR_CHANNEL_DEFAULT_CAPACITY 65536u
#define WR_CHANNEL_DEFAULT_RECLAIM_NS 100000000ull /* 100 ms */
#define WR_CHANNEL_DEFAULT_PARK_NS 1000000000ull   /* 1 s */
/* Longest park when the kernel has no global membarrier (lib/membarrier.h). */
#define WR_CHANNEL_UNSURE_PARK_NS 1000000ull       /* 1 ms */
/* Slots taken from one ring before poll moves to the next one. */
#define WR_CHANNEL_QUANTUM 64u

struct wr_channel_options {
	uint32_t producers_max;       /* entries in the producer table; default 16 */
	uint32_t ring_capacity;       /* slots per ring, power of two; default 65536 */
	bool group_access;            /* create mode 0660 instead of 0600 */
	uint64_t reclaim_interval_ns; /* pid liveness checks at most this often; default 100 ms */
	uint64_t park_timeout_ns;     /* longest futex park in wr_channel_idle; default 1 s */
};

/* Counters written by the drain thread only (readers: relaxed loads). */
struct wr_channel_metrics {
	wr_counter_t taken;            /* slots handed to the take callback */
	wr_counter_t released;         /* slots released to their producer */
	wr_counter_t durable_acks;     /* durable_seq advances published */
	wr_counter_t rejected;         /* producer entries rejected (bad cursors) */
	wr_counter_t dead;             /* producer entries found dead (pid gone) */
	wr_counter_t freed;            /* dead entries freed after draining */
	wr_counter_t resumed_released; /* ring slots found sealed at resume */
	wr_counter_t resumed_retaken;  /* ring slots queued again at resume */
	wr_counter_t parks;            /* futex parks of the drain thread */
	wr_counter_t take_log_full;    /* polls that skipped a ring: its take log was full */
	wr_counter_t producer_wakes;   /* FUTEX_WAKE calls for producer waiters */
};

struct wr_channel;

/* Defaults for every field (documented above). */
void wr_channel_options_default(struct wr_channel_options *o);

/*
 * Check a channel name: 1..64 characters of [A-Za-z0-9._-], not starting
 * with '.', no "..". Returns 0 or -EINVAL (with a log line saying why).
 */
int wr_channel_name_check(const char *name);

/*
 * Create /walrec.<name> (O_CREAT|O_EXCL, mode 0600 or 0660 whatever the
 * umask), size and initialise it, take the recorder lock (flock) and set
 * the state STARTING. opt may be NULL (defaults). Returns 0, -EINVAL (bad
 * name or limits), -EEXIST (use wr_channel_open to resume it), -errno.
 */
int wr_channel_create(struct wr_channel **out, const char *name,
		      const struct wr_channel_options *opt);

/*
 * Open an existing channel to resume it: validate the control page against
 * the object (-WALREC_EFORMAT on any mismatch), take the recorder lock
 * (-EBUSY if another recorder holds it), record this pid, state STARTING.
 * Only producers_max/ring_capacity of opt are ignored (the object's win).
 * wr_channel_resume() must run before the first poll.
 */
int wr_channel_open(struct wr_channel **out, const char *name,
		    const struct wr_channel_options *opt);

/*
 * After a restart whose log recovery kept exactly the events with
 * id <= last_sealed_id: release every ring entry the previous recorder
 * already sealed (its take log says which ids it gave them), void the
 * take logs (the others are taken again, in ring order, by the next polls,
 * with new ids) and re-arm the durable bookkeeping.
 * Entries with impossible cursors are rejected and counted. The caller
 * assigns ids > last_sealed_id from now on. Returns 0 or -EINVAL (called
 * twice, or on a channel this object created: nothing to resume).
 */
int wr_channel_resume(struct wr_channel *ch, uint64_t last_sealed_id);

/*
 * Called by poll for each slot taken, in per-producer ring order, with the
 * event id it must get: the callback appends the slot's 64 bytes to the
 * log under exactly that id (ids are consecutive: the caller's last id
 * + 1). Return 0 when the event is appended; a negative code leaves the
 * slot in the ring and ends the poll with that code. The slot is shared
 * memory that the producer can still scribble on: copy it once, use the
 * copy, keep no pointer.
 */
typedef int (*wr_channel_take_fn)(void *arg, uint32_t producer, const walrec_event_t *slot,
				  uint64_t event_id);

/*
 * Take up to max published slots, round-robin over the producers (at most
 * WR_CHANNEL_QUANTUM from one ring per turn, the starting ring rotating per
 * call), giving them ids *last_id + 1, + 2, ... (*last_id follows). Before
 * the events of a run of slots are appended, the run (positions, first
 * id, count) is in the producer's take log in shared memory: after a
 * crash the next recorder knows which ring entries are in the log (the
 * restart argument, docs/channel.md). Validates every ring's cursors first
 * and rejects a producer whose cursors are impossible, without reading its
 * ring. Applies a durable position posted by another thread, and runs
 * wr_channel_reclaim() at most every reclaim_interval_ns when there was
 * nothing to take. Returns the number of slots taken, or the callback's
 * negative code.
 */
ssize_t wr_channel_poll(struct wr_channel *ch, size_t max, uint64_t *last_id,
			wr_channel_take_fn fn, void *arg);

/*
 * Everything with event id <= last_sealed_id is sealed in the log: advance
 * each producer's tail over its taken slots whose ids (from the take log)
 * are <= last_sealed_id, wake producers waiting for space, and free dead
 * entries that are fully drained.
 */
void wr_channel_release_sealed(struct wr_channel *ch, uint64_t last_sealed_id);

/*
 * Everything with event id <= last_durable_id is on stable storage (and
 * was passed to release_sealed before): advance each producer's durable
 * sequence and wake its waiters. Drain thread only.
 */
void wr_channel_publish_durable(struct wr_channel *ch, uint64_t last_durable_id);

/*
 * True when a producer sleeps in walrec_producer_wait_durable() for a
 * slot that was taken and whose event is not durable yet: the drain
 * thread should sync now rather than at the next interval. One load per
 * producer entry. Drain thread only.
 */
bool wr_channel_durable_wanted(const struct wr_channel *ch);

/*
 * Any thread (e.g. the MetaCoordinator): hand a durable position to the
 * drain thread, which publishes it at its next poll; wakes it if parked.
 */
void wr_channel_post_durable(struct wr_channel *ch, uint64_t last_durable_id);

struct wr_channel_meta {
	uint32_t segment_index;        /* MetaState (wal.meta) position: segment */
	uint32_t offset;               /* ... and the end of its last sealed block */
	uint64_t last_sealed_id;
	uint64_t last_durable_id;
	uint32_t sealed_segment_index; /* segment of the last sealed block written to its file */
	uint32_t sealed_blocks;        /* blocks sealed in that segment (the last holds last_sealed_id) */
	uint32_t change;               /* sealed_futex as read (reads only) */
};

/*
 * The MetaState mirror for observers and followers: a seqlock write of
 * every field but change, then +1 on sealed_futex and a FUTEX_WAKE when a
 * follower sleeps on it. Returns the number of followers woken. One
 * writer thread at a time.
 */
int wr_channel_publish_meta(struct wr_channel *ch, const struct wr_channel_meta *m);

/*
 * Read the mirror from any mapping; out->change is the futex counter read
 * before the fields (a later value means a later publish). Returns 1 when
 * a recorder has published it, 0 when it never was (fields 0), or -EAGAIN
 * when a writer stayed mid-update for too long (a writer killed mid-update).
 */
int wr_channel_read_meta(const struct wr_chan_map *m, struct wr_channel_meta *out);

/*
 * Liveness: mark ACTIVE/ATTACHING entries whose pid is gone DEAD, free
 * DEAD entries whose slots are all taken and released. Returns the number
 * of entries newly found dead.
 */
int wr_channel_reclaim(struct wr_channel *ch);

/*
 * Park the drain thread on the wake futex for at most timeout_ns, unless a
 * ring has unread slots, a durable position was posted or the state word
 * changed (checked after announcing the sleep). Returns true if it slept.
 */
bool wr_channel_park(struct wr_channel *ch, uint64_t timeout_ns);

/* Idle strategy after a poll that took nothing: spin, then yield, then
 * park (*rounds counts consecutive idle calls; reset it to 0 on work). */
void wr_channel_idle(struct wr_channel *ch, uint32_t *rounds);

/* Any thread: wake a parked drain thread. */
void wr_channel_wake(struct wr_channel *ch);

/*
 * RUNNING, STOPPING (appends refused, rings still drained) or STOPPED
 * (final: wakes every waiting producer, which gets -WALREC_ECLOSED).
 * Returns 0 or -EINVAL.
 */
int wr_channel_set_state(struct wr_channel *ch, uint32_t state);

/* Unmap and drop the recorder lock; the object stays (NULL is fine). */
void wr_channel_close(struct wr_channel *ch);

/* Remove /walrec.<name>. Returns 0, -EINVAL, -ENOENT or -errno. */
int wr_channel_unlink(const char *name);

const struct wr_channel_metrics *wr_channel_metrics(const struct wr_channel *ch);
const struct wr_chan_map *wr_channel_map(const struct wr_channel *ch);

/*
 * Shared by producers, recorder and observers: map and validate an
 * existing channel (populate: build page tables for all of it now).
 * *fd receives the open descriptor (the caller closes it). Returns 0,
 * -EINVAL (name), -ENOENT, -EACCES, -WALREC_EFORMAT, -errno.
 */
int wr_chan_map_open(struct wr_chan_map *m, const char *name, int *fd, bool populate);
/*
 * For observers (walrec stat): map and validate an existing channel
 * read-only (PROT_READ, O_RDONLY: needs only read permission). Writing
 * through m is a fault. Returns as wr_chan_map_open; -ENOENT is not logged.
 */
int wr_chan_map_open_readonly(struct wr_chan_map *m, const char *name);
void wr_chan_map_close(struct wr_chan_map *m);

#endif
