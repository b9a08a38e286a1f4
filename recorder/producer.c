/* SPDX-License-Identifier: MIT */
/* walrec producer: attach to a channel, append into its own SPSC ring, wait for durability. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <walrec/producer.h>

#include "lib/atomics.h"
#include "lib/clock.h"
#include "lib/futex.h"
#include "lib/log.h"
#include "lib/membarrier.h"
#include "lib/stats.h"
#include "recorder/channel.h"

/* Spins on a full ring before sleeping on the tail futex. */
#define WR_PRODUCER_SPINS 2000
#define WR_PRODUCER_DETACH_NS 1000000000ull
/* wait_durable watches the durable position this long before it sleeps. */
#define WR_PRODUCER_DURABLE_SPIN_NS 500000ull

/*
 * The cached cursors live here, in the producer's private memory: head is
 * ours alone (the shared copy is only an output), and the tail copy lets
 * the append path skip the recorder's line until the ring looks full.
 */
struct walrec_producer {
	/* appending thread only */
	WR_ALIGNED_LINE uint64_t head; /* next position; equals the published head */
	uint64_t cached_tail;          /* never ahead of the real tail */
	uint64_t capacity;
	uint64_t mask;
	walrec_event_t *ring;
	struct wr_chan_cursor *cur;
	_Atomic uint32_t *state;
	_Atomic uint64_t *owner_word;
	struct wr_chan_wake *wake;
	uint64_t owner; /* our claim: (pid << 32) | ACTIVE */
	bool fence;     /* this process is not registered for the recorder's membarrier */
	struct wr_tsc_clock clock;
	/* set at attach, read by any thread */
	struct wr_chan_durable *dur;
	uint32_t index;
	struct wr_chan_map map;
};

/* -WALREC_ECLOSED once the channel stops or the recorder took the entry back. */
static inline int
prod_check_open(const walrec_producer_t *p)
{
	/* Relaxed: both words are advisory; ordering comes from head/tail. */
	uint32_t st = wr_load_relaxed(p->state);
	if (WR_UNLIKELY(st >= WR_CHAN_STOPPING))
		return -WALREC_ECLOSED;
	if (WR_UNLIKELY(wr_load_relaxed(p->owner_word) != p->owner))
		return -WALREC_ECLOSED;
	return 0;
}

/*
 * Build this process's page-table entries for its ring (and the lines the
 * append path touches) before the first append, so appends take no page
 * fault. The recorder allocated the pages at creation; nothing is written.
 */
static void
prod_prefault(walrec_producer_t *p)
{
	size_t len = p->capacity * WR_CHAN_SLOT_SIZE;
#ifdef MADV_POPULATE_WRITE
	if (madvise(p->ring, len, MADV_POPULATE_WRITE) == 0)
		return;
#endif
	/* Older kernels: a read per page maps it (shared memory: writable). */
	for (size_t off = 0; off < len; off += WR_CHAN_PAGE)
		(void)*(volatile const uint8_t *)((const uint8_t *)p->ring + off);
}

int
walrec_producer_attach(walrec_producer_t **out, const char *name)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	walrec_producer_t *p = aligned_alloc(WR_CACHELINE, wr_chan_round_up(sizeof *p, WR_CACHELINE));
	if (!p)
		return -ENOMEM;
	memset(p, 0, sizeof *p);
	int fd;
	int rc = wr_chan_map_open(&p->map, name, &fd, false);
	if (rc < 0) {
		free(p);
		return rc;
	}
	close(fd); /* the mapping keeps the object; only the recorder holds a lock */
	const struct wr_chan_map *m = &p->map;
	uint32_t pid = (uint32_t)getpid();
	uint64_t cap = m->layout.ring_capacity;
	for (uint32_t i = 0; i < m->layout.producers_max; i++) {
		struct wr_chan_entry *e = &m->table[i];
		uint64_t o = wr_load_relaxed(&e->owner);
		if (o != WR_CHAN_OWNER(0, WR_CHAN_ENTRY_FREE))
			continue;
		/* Acquire pairs with the release CAS that freed the entry (the
		 * recorder's, or a detaching producer's): the cursors it left
		 * are visible. */
		if (!wr_cas_acq_rel(&e->owner, &o, WR_CHAN_OWNER(pid, WR_CHAN_ENTRY_ATTACHING)))
			continue;
		struct wr_chan_cursor *cur = &m->cursors[i];
		uint64_t h = wr_load_relaxed(&cur->head);
		/* Acquire pairs with the recorder's release store of tail. */
		uint64_t t = wr_load_acquire(&cur->tail);
		if (t != h) {
			/* A free entry is always drained; this one was damaged. */
			wr_log_warn("channel %s: producer entry %u is free but head %llu != tail "
				    "%llu; skipping it", name, i, (unsigned long long)h,
				    (unsigned long long)t);
			wr_store_relaxed(&e->reject_reason, WR_CHAN_REJECT_HEAD);
			wr_store_release(&e->owner, WR_CHAN_OWNER(pid, WR_CHAN_ENTRY_REJECTED));
			continue;
		}
		p->head = h;
		p->cached_tail = t;
		p->capacity = cap;
		p->mask = cap - 1;
		p->ring = wr_chan_ring(m, i);
		p->cur = cur;
		p->dur = &m->durable[i];
		p->state = &m->control->state;
		p->owner_word = &e->owner;
		p->wake = m->wake;
		p->index = i;
		p->owner = WR_CHAN_OWNER(pid, WR_CHAN_ENTRY_ACTIVE);
		/* Telemetry of this attachment, published by the CAS below. */
		wr_store_relaxed(&cur->attach_head, h);
		wr_store_relaxed(&cur->full_waits, 0);
		wr_store_relaxed(&cur->recorder_wakes, 0);
		wr_store_relaxed(&e->tag, wr_fetch_add_relaxed(&m->control->attach_count, 1) + 1);
		wr_store_relaxed(&e->attach_ns, wr_clock_realtime_ns());
		wr_store_relaxed(&e->reject_reason, WR_CHAN_REJECT_NONE);
		o = WR_CHAN_OWNER(pid, WR_CHAN_ENTRY_ATTACHING);
		/* Release pairs with the recorder's acquire load of owner in poll. */
		if (!wr_cas_acq_rel(&e->owner, &o, p->owner))
			continue; /* the recorder took it back meanwhile: try another */
		prod_prefault(p);
		/* Registered: the recorder's park pairs a membarrier with our
		 * append instead of a fence on every append (lib/membarrier.h). */
		p->fence = wr_membarrier_register() != 0;
		wr_tsc_clock_init(&p->clock);
		*out = p;
		return 0;
	}
	wr_log_error("channel %s: all %u producer entries are in use", name,
		     m->layout.producers_max);
	wr_chan_map_close(&p->map);
	free(p);
	return -EBUSY;
}

/* Telemetry on the producer's own head line (appending thread only). */
static inline void
prod_count(_Atomic uint64_t *c)
{
	if (WR_STATS_ON)
		wr_add_single_writer(c, 1);
}

static void
prod_wake_recorder(walrec_producer_t *p)
{
	prod_count(&p->cur->recorder_wakes);
	/* The increment makes a park that read the old value return at once. */
	wr_fetch_add_acq_rel(&p->wake->wake_futex, 1);
	wr_futex_wake(&p->wake->wake_futex, 1);
}

int64_t
walrec_producer_try_append_ts(walrec_producer_t *p, const void *payload, uint64_t timestamp_ns)
{
	if (WR_UNLIKELY(!p || !payload))
		return -EINVAL;
	int rc = prod_check_open(p);
	if (WR_UNLIKELY(rc < 0))
		return rc;
	uint64_t h = p->head;
	if (WR_UNLIKELY(h - p->cached_tail >= p->capacity)) {
		/* Acquire pairs with the recorder's release store of tail: its
		 * reads of the slots below tail happen before we overwrite them. */
		uint64_t t = wr_load_acquire(&p->cur->tail);
		if (WR_UNLIKELY(t > h || h - t > p->capacity))
			return -WALREC_ECORRUPT;
		p->cached_tail = t;
		if (h - t == p->capacity) {
			prod_count(&p->cur->full_waits);
			return -EAGAIN;
		}
	}
	walrec_event_t *s = p->ring + (h & p->mask);
	s->event_id = 0;
	s->timestamp_ns = timestamp_ns;
	memcpy(s->payload, payload, WALREC_PAYLOAD_SIZE);
	/* Release pairs with the recorder's acquire load of head in poll: the
	 * slot is completely written before it becomes visible, so a producer
	 * killed mid-write leaves no half event. */
	wr_store_release(&p->cur->head, h + 1);
	p->head = h + 1;
	/*
	 * Dekker with wr_channel_park (store sleeping, barrier, re-read
	 * heads): either the recorder sees our head, or we see sleeping and
	 * wake it. Our half of the barrier is a seq_cst fence, or, when this
	 * process is registered, the membarrier the recorder runs before it
	 * re-reads the heads (a compiler barrier keeps the order here).
	 */
	if (p->fence)
		wr_fence_seq_cst();
	else
		atomic_signal_fence(memory_order_seq_cst);
	if (WR_UNLIKELY(wr_load_relaxed(&p->wake->sleeping) != 0))
		prod_wake_recorder(p);
	return (int64_t)(h + 1);
}

int64_t
walrec_producer_try_append(walrec_producer_t *p, const void *payload)
{
	if (WR_UNLIKELY(!p))
		return -EINVAL;
	return walrec_producer_try_append_ts(p, payload, wr_tsc_clock_now(&p->clock));
}

/* Wait until the ring has room (or the channel closes); 0 or -WALREC_ECLOSED. */
static int
prod_wait_space(walrec_producer_t *p)
{
	struct wr_chan_cursor *cur = p->cur;
	uint64_t h = p->head;
	for (int i = 0; i < WR_PRODUCER_SPINS; i++) {
		wr_cpu_relax();
		if (h - wr_load_acquire(&cur->tail) < p->capacity)
			return 0;
	}
	for (;;) {
		uint32_t seen = wr_load_acquire(&cur->tail_futex);
		wr_fetch_add_acq_rel(&cur->space_waiters, 1);
		/* Pairs with the recorder's fence in chan_store_tail between its
		 * tail store and its load of space_waiters. */
		wr_fence_seq_cst();
		uint64_t t = wr_load_acquire(&cur->tail);
		int rc = prod_check_open(p);
		bool full = rc == 0 && t <= h && h - t >= p->capacity;
		if (full)
			wr_futex_wait(&cur->tail_futex, seen, UINT64_MAX);
		wr_fetch_add_acq_rel(&cur->space_waiters, (uint32_t)-1);
		if (!full)
			return rc;
	}
}

int64_t
walrec_producer_append_ts(walrec_producer_t *p, const void *payload, uint64_t timestamp_ns)
{
	for (;;) {
		int64_t r = walrec_producer_try_append_ts(p, payload, timestamp_ns);
		if (r != -EAGAIN)
			return r;
		int rc = prod_wait_space(p);
		if (rc < 0)
			return rc;
	}
}

int64_t
walrec_producer_append(walrec_producer_t *p, const void *payload)
{
	if (WR_UNLIKELY(!p))
		return -EINVAL;
	return walrec_producer_append_ts(p, payload, wr_tsc_clock_now(&p->clock));
}

int
walrec_producer_wait_durable(walrec_producer_t *p, uint64_t seq, uint64_t timeout_ns)
{
	if (!p)
		return -EINVAL;
	if (seq == 0)
		return 0;
	/* Acquire pairs with our own release store of head (maybe from
	 * another thread of this process). */
	if (seq > wr_load_acquire(&p->cur->head))
		return -EINVAL;
	struct wr_chan_durable *d = p->dur;
	uint64_t start = wr_clock_now_ns();
	uint64_t deadline = timeout_ns > UINT64_MAX - start ? UINT64_MAX : start + timeout_ns;
	for (;;) {
		uint32_t seen = wr_load_acquire(&d->durable_futex);
		/* Acquire pairs with the recorder's release store of durable_seq
		 * in wr_channel_publish_durable. */
		if (wr_load_acquire(&d->durable_seq) >= seq)
			return 0;
		if (wr_load_acquire(p->state) == WR_CHAN_STOPPED ||
		    wr_load_relaxed(p->owner_word) != p->owner) {
			/* The recorder publishes its last durable position before it
			 * stores STOPPED (release, paired with the acquire above). */
			return wr_load_acquire(&d->durable_seq) >= seq ? 0 : -WALREC_ECLOSED;
		}
		uint64_t now = wr_clock_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		/* Raised, the count also tells the recorder to sync now. */
		wr_fetch_add_acq_rel(&d->durable_waiters, 1);
		/* Pairs with the recorder's fence between its durable_seq store
		 * and its load of durable_waiters. */
		wr_fence_seq_cst();
		/* A sync takes about one disk flush: watch for it for a while
		 * before sleeping, which would add a wake-up to every ack. */
		uint64_t spin_end = now + WR_PRODUCER_DURABLE_SPIN_NS;
		while (wr_load_acquire(&d->durable_seq) < seq && wr_clock_now_ns() < spin_end &&
		       wr_load_relaxed(p->state) < WR_CHAN_STOPPED)
			for (int i = 0; i < 64; i++)
				wr_cpu_relax();
		if (wr_load_acquire(&d->durable_seq) < seq)
			wr_futex_wait(&d->durable_futex, seen,
				      deadline == UINT64_MAX ? UINT64_MAX : deadline - now);
		wr_fetch_add_acq_rel(&d->durable_waiters, (uint32_t)-1);
	}
}

uint64_t
walrec_producer_last_sequence(const walrec_producer_t *p)
{
	return p ? wr_load_acquire(&p->cur->head) : 0;
}

void
walrec_producer_detach(walrec_producer_t *p)
{
	if (!p)
		return;
	struct wr_chan_cursor *cur = p->cur;
	uint64_t h = p->head;
	uint64_t deadline = wr_clock_now_ns() + WR_PRODUCER_DETACH_NS;
	for (;;) {
		uint32_t st = wr_load_acquire(p->state);
		if (st != WR_CHAN_STARTING && st != WR_CHAN_RUNNING)
			break;
		if (wr_load_relaxed(p->owner_word) != p->owner)
			break;
		uint32_t seen = wr_load_acquire(&cur->tail_futex);
		wr_fetch_add_acq_rel(&cur->space_waiters, 1);
		/* Pairs with the recorder's fence in chan_store_tail. */
		wr_fence_seq_cst();
		uint64_t t = wr_load_acquire(&cur->tail);
		uint64_t now = wr_clock_now_ns();
		/* A damaged tail would never reach head: do not wait for it. */
		bool wait = t < h && h - t <= p->capacity && now < deadline;
		if (wait)
			wr_futex_wait(&cur->tail_futex, seen, deadline - now);
		wr_fetch_add_acq_rel(&cur->space_waiters, (uint32_t)-1);
		if (!wait)
			break;
	}
	/* Acquire pairs with the recorder's release store of tail. */
	uint64_t t = wr_load_acquire(&cur->tail);
	uint64_t o = p->owner;
	/* Release pairs with the next attach's acquire CAS (drained), or with
	 * the recorder's acquire load of owner (handed over as DEAD). */
	if (t == h)
		wr_cas_acq_rel(p->owner_word, &o, WR_CHAN_OWNER(0, WR_CHAN_ENTRY_FREE));
	else
		wr_cas_acq_rel(p->owner_word, &o,
			       WR_CHAN_OWNER(WR_CHAN_OWNER_PID(p->owner), WR_CHAN_ENTRY_DEAD));
	wr_chan_map_close(&p->map);
	free(p);
}
