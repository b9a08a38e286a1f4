/* SPDX-License-Identifier: MIT */
/* The swappable system-call table (see sys.h). */
#include <config.h>

#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/sys.h"

static int
sys_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags, mode);
}

static int
sys_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	return openat(dirfd, path, flags, mode);
}

#define WR_SYS_LIBC                                                              \
	{                                                                       \
		.open = sys_open, .openat = sys_openat, .close = close,         \
		.ftruncate = ftruncate, .fallocate = fallocate, .msync = msync, \
		.fdatasync = fdatasync, .fsync = fsync, .rename = rename,       \
		.renameat = renameat, .unlink = unlink, .unlinkat = unlinkat,   \
		.write = write, .pwrite = pwrite,                               \
		.sync_file_range = sync_file_range,                             \
	}

const struct wr_sys wr_sys_libc = WR_SYS_LIBC;
struct wr_sys wr_sys = WR_SYS_LIBC;

void
wr_sys_reset(void)
{
	wr_sys = wr_sys_libc;
}
