/* SPDX-License-Identifier: MIT */
/*
 * Asymmetric fences across processes with membarrier(2). A producer's
 * append must not let its load of the recorder's "sleeping" flag pass its
 * store of head (Dekker). Instead of a full fence on every append, a
 * producer process registers once; the recorder, on the rare way into a
 * park, runs a global expedited membarrier, which makes every thread of
 * every registered process execute a full barrier. Either side falls back
 * to plain fences when the kernel lacks the commands (Linux < 4.16).
 */
#ifndef WR_MEMBARRIER_H
#define WR_MEMBARRIER_H

#include <errno.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * Register this process for global expedited membarriers. 0 when it is
 * registered (its threads may then skip the fence the recorder pairs with
 * wr_membarrier_global), or -errno.
 */
static inline int
wr_membarrier_register(void)
{
#ifdef MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED
	long q = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	if (q < 0 || !(q & MEMBARRIER_CMD_GLOBAL_EXPEDITED))
		return -ENOSYS;
	return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0 ? 0
												 : -errno;
#else
	return -ENOSYS;
#endif
}

/*
 * A full barrier on every CPU running a thread of a registered process,
 * done before this returns 0; -errno when not possible (the caller must
 * then not rely on it).
 */
static inline int
wr_membarrier_global(void)
{
#ifdef MEMBARRIER_CMD_GLOBAL_EXPEDITED
	return syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0 ? 0 : -errno;
#else
	return -ENOSYS;
#endif
}

#endif
