/* SPDX-License-Identifier: MIT */
/*
 * C11 atomics with the ordering spelled out at every call site. Callers
 * document which operation each acquire/release pairs with.
 */
#ifndef WR_ATOMICS_H
#define WR_ATOMICS_H

#include <stdatomic.h>
#include <stdint.h>

#define wr_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define wr_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define wr_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define wr_store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define wr_fetch_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define wr_fetch_add_acq_rel(p, v) atomic_fetch_add_explicit((p), (v), memory_order_acq_rel)
#define wr_exchange_acq_rel(p, v) atomic_exchange_explicit((p), (v), memory_order_acq_rel)
#define wr_cas_acq_rel(p, expected, desired)                                    \
	atomic_compare_exchange_strong_explicit((p), (expected), (desired),     \
						memory_order_acq_rel,           \
						memory_order_acquire)
#define wr_fence_acquire() atomic_thread_fence(memory_order_acquire)
#define wr_fence_release() atomic_thread_fence(memory_order_release)
#define wr_fence_seq_cst() atomic_thread_fence(memory_order_seq_cst)

/*
 * Single-writer add: a plain load and store (no locked instruction), for
 * counters that one thread writes and others only read.
 */
#define wr_add_single_writer(p, v)                                             \
	wr_store_relaxed((p), wr_load_relaxed(p) + (v))

/* Raise *p to v unless it is already there or above (any number of writers). */
static inline void
wr_raise_u64(_Atomic uint64_t *p, uint64_t v, memory_order success)
{
	uint64_t cur = atomic_load_explicit(p, memory_order_relaxed);
	while (cur < v &&
	       !atomic_compare_exchange_weak_explicit(p, &cur, v, success, memory_order_relaxed))
		;
}

static inline void
wr_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif
