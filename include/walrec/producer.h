/* SPDX-License-Identifier: MIT */
/* walrec producer API: append events to a recorder through shared memory. */
#ifndef WALREC_PRODUCER_H
#define WALREC_PRODUCER_H

#include <stdint.h>

#include <walrec/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A producer is one attachment to the channel /walrec.<name> that a
 * recorder created: one entry in its producer table and one ring of
 * 64-byte slots that only this producer writes. Events appended through
 * one producer reach the log in the order they were accepted.
 *
 * Sequences: every accepted event gets a sequence > 0, its position in the
 * ring plus one. Sequences increase by one per accepted event; the first
 * one of an attachment continues after the previous tenant of the same
 * entry, so compare sequences, do not count from 1.
 *
 * Concurrency: a walrec_producer_t is used by ONE appending thread at a
 * time (the ring is single-producer). walrec_producer_wait_durable() may
 * be called from any number of threads concurrently with appends.
 * Different producers (in one process or many) are independent.
 */
typedef struct walrec_producer walrec_producer_t;

/*
 * Attach to /walrec.<name>: map it, check its layout, claim a free entry
 * (compare-and-swap; records this process's pid). May be called while the
 * recorder is starting, or after a recorder died without stopping the
 * channel: appends are then buffered in the ring (up to its capacity) for
 * the recorder that resumes the channel. After a clean stop the channel
 * refuses appends (-WALREC_ECLOSED) until a recorder runs it again.
 * Returns 0 and sets *p; -EINVAL (NULL argument or bad name: 1..64
 * characters of [A-Za-z0-9._-], not starting with '.', no ".."); -ENOENT
 * (no such channel); -EACCES; -WALREC_EFORMAT (not a walrec channel of
 * this layout version); -EBUSY (every producer entry is taken); -ENOMEM.
 */
int walrec_producer_attach(walrec_producer_t **p, const char *name);

/*
 * Append one event without blocking: the 48 payload bytes are copied into
 * the next ring slot with timestamp_ns = CLOCK_REALTIME now (event_id is
 * assigned by the recorder). No system call (unless the recorder is
 * parked: then one FUTEX_WAKE), no lock, no allocation.
 * Returns the event's sequence (> 0); -EAGAIN when the ring is full
 * (back-pressure: retry later, or use walrec_producer_append);
 * -WALREC_ECLOSED when the channel is stopping or stopped, or this
 * attachment was closed by the recorder (dead or rejected);
 * -WALREC_ECORRUPT when the recorder's cursors are impossible;
 * -EINVAL when p or payload is NULL.
 */
int64_t walrec_producer_try_append(walrec_producer_t *p, const void *payload);

/* As walrec_producer_try_append, with the caller's timestamp_ns. */
int64_t walrec_producer_try_append_ts(walrec_producer_t *p, const void *payload,
				      uint64_t timestamp_ns);

/*
 * Append one event, waiting while the ring is full: spins briefly, then
 * sleeps on a futex until the recorder releases slots. Returns as
 * walrec_producer_try_append, never -EAGAIN. If the recorder dies, waits
 * until a restarted recorder drains the ring, or the channel is stopped.
 */
int64_t walrec_producer_append(walrec_producer_t *p, const void *payload);

/* As walrec_producer_append, with the caller's timestamp_ns. */
int64_t walrec_producer_append_ts(walrec_producer_t *p, const void *payload,
				  uint64_t timestamp_ns);

/*
 * Wait until the event with sequence seq (and every earlier one of this
 * producer) is durable: sealed in the log and synced to stable storage.
 * Sleeps on a futex (no polling); timeout_ns 0 only checks, UINT64_MAX
 * waits without limit. Returns 0 when durable (also for seq == 0);
 * -ETIMEDOUT; -WALREC_ECLOSED when the channel is stopped (or this
 * attachment was closed) before seq became durable; -EINVAL when p is
 * NULL or seq is past the last sequence accepted on p.
 * Any thread, concurrently with appends.
 */
int walrec_producer_wait_durable(walrec_producer_t *p, uint64_t seq, uint64_t timeout_ns);

/* The sequence of the last event accepted on p; right after attach, the
 * last one of the entry's previous tenant (0 on a fresh entry). */
uint64_t walrec_producer_last_sequence(const walrec_producer_t *p);

/*
 * Detach and free p (NULL is fine). Waits, at most 1 second and only while
 * a recorder is starting or running, until the recorder has released
 * every slot of the ring (all accepted events are sealed in the log, not
 * necessarily durable: use walrec_producer_wait_durable for that). The
 * entry is then free for another producer; if the wait ran out, the entry
 * is handed to the recorder, which drains the ring and frees it - no
 * accepted event is dropped either way. Not concurrent with any other
 * call on p.
 */
void walrec_producer_detach(walrec_producer_t *p);

#ifdef __cplusplus
}
#endif

#endif
