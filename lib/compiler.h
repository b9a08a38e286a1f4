/* SPDX-License-Identifier: MIT */
/* Compiler helpers shared by every module. */
#ifndef WR_COMPILER_H
#define WR_COMPILER_H

#include <stdatomic.h>

#define WR_CACHELINE 64
#define WR_ALIGNED_LINE _Alignas(WR_CACHELINE)
#define WR_LIKELY(x) __builtin_expect(!!(x), 1)
#define WR_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define WR_INLINE static inline __attribute__((always_inline))
#define WR_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Shared memory and cross-thread counters rely on lock-free 64-bit atomics. */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "the v1 format code reads little-endian integers in place");

#endif
