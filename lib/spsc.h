/* SPDX-License-Identifier: MIT */
/*
 * A bounded single-producer single-consumer ring of pointers between two
 * threads of one process. Capacity is a power of two fixed at init; head
 * and tail sit on separate cache lines and each side caches the other's
 * index, so a push or pop touches the shared line only when its cached
 * view says the ring is full or empty.
 *
 * Concurrency: exactly one thread calls wr_spsc_try_push, exactly one
 * (possibly other) thread calls wr_spsc_try_pop; wr_spsc_size may be called
 * by either. Neither call blocks; callers that need to sleep pair the ring
 * with a futex of their own.
 */
#ifndef WR_SPSC_H
#define WR_SPSC_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "lib/atomics.h"
#include "lib/compiler.h"

struct wr_spsc {
	/* producer line */
	WR_ALIGNED_LINE _Atomic uint64_t head; /* slots pushed (monotonic) */
	uint64_t tail_cache;                  /* producer's last view of tail */
	/* consumer line */
	WR_ALIGNED_LINE _Atomic uint64_t tail; /* slots popped (monotonic) */
	uint64_t head_cache;                  /* consumer's last view of head */
	/* read-only after init */
	WR_ALIGNED_LINE void **slots;
	uint64_t mask;
};

/* Set up a ring of capacity slots (a power of two, >= 2). 0, -EINVAL or -ENOMEM. */
static inline int
wr_spsc_init(struct wr_spsc *q, uint32_t capacity)
{
	if (capacity < 2 || (capacity & (capacity - 1)) != 0)
		return -EINVAL;
	q->slots = calloc(capacity, sizeof *q->slots);
	if (q->slots == NULL)
		return -ENOMEM;
	q->mask = capacity - 1;
	atomic_init(&q->head, 0);
	atomic_init(&q->tail, 0);
	q->tail_cache = 0;
	q->head_cache = 0;
	return 0;
}

/* Free the slot array (not what the pointers point to). Both threads are done. */
static inline void
wr_spsc_fini(struct wr_spsc *q)
{
	free(q->slots);
	q->slots = NULL;
}

/* Producer: append p. Returns true, or false when the ring is full. */
static inline bool
wr_spsc_try_push(struct wr_spsc *q, void *p)
{
	uint64_t h = wr_load_relaxed(&q->head); /* only this thread writes head */
	if (h - q->tail_cache > q->mask) {
		/* Acquire pairs with the release store of tail in wr_spsc_try_pop:
		 * the consumer is done with the slot before we overwrite it. */
		q->tail_cache = wr_load_acquire(&q->tail);
		if (h - q->tail_cache > q->mask)
			return false;
	}
	q->slots[h & q->mask] = p;
	/* Release pairs with the acquire load of head in wr_spsc_try_pop. */
	wr_store_release(&q->head, h + 1);
	return true;
}

/* Consumer: take the oldest pointer. Returns it, or NULL when the ring is empty. */
static inline void *
wr_spsc_try_pop(struct wr_spsc *q)
{
	uint64_t t = wr_load_relaxed(&q->tail); /* only this thread writes tail */
	if (t == q->head_cache) {
		/* Acquire pairs with the release store of head in wr_spsc_try_push. */
		q->head_cache = wr_load_acquire(&q->head);
		if (t == q->head_cache)
			return NULL;
	}
	void *p = q->slots[t & q->mask];
	/* Release pairs with the acquire load of tail in wr_spsc_try_push. */
	wr_store_release(&q->tail, t + 1);
	return p;
}

/* Entries in the ring right now (a snapshot; either side). */
static inline uint64_t
wr_spsc_size(struct wr_spsc *q)
{
	/* Pairs with the release stores in try_push/try_pop. */
	uint64_t t = wr_load_acquire(&q->tail);
	uint64_t h = wr_load_acquire(&q->head);
	return h - t;
}

#endif
