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
#include <sys/syscall.h>
#include <unistd.h>

/*
 * The commands are enum constants in <linux/membarrier.h>, which #ifdef
 * can not see; their values are kernel ABI (Linux 4.16), so they are named
 * here and the system call number decides.
 */
#define WR_MEMBARRIER_CMD_QUERY 0
#define WR_MEMBARRIER_CMD_GLOBAL_EXPEDITED (1 << 1)
#define WR_MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED (1 << 2)

/*
 * Register this process for global expedited membarriers. 0 when it is
 * registered (its threads may then skip the fence the recorder pairs with
 * wr_membarrier_global), or -errno.
 */
static inline int
wr_membarrier_register(void)
{
#ifdef SYS_membarrier
	long q = syscall(SYS_membarrier, WR_MEMBARRIER_CMD_QUERY, 0, 0);
	if (q < 0 || !(q & WR_MEMBARRIER_CMD_GLOBAL_EXPEDITED))
		return -ENOSYS;
	return syscall(SYS_membarrier, WR_MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0
		       ? 0
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
#ifdef SYS_membarrier
	return syscall(SYS_membarrier, WR_MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0 ? 0 : -errno;
#else
	return -ENOSYS;
#endif
}

#endif
