/* SPDX-License-Identifier: MIT */
/*
 * The system calls that can fail in ways walrec must survive, behind a
 * table that tests swap to inject ENOSPC, EIO, short writes and rename
 * failures. Entries keep libc's convention: -1 and errno on failure.
 * Production code calls wr_sys.<name>(...) and never the libc function
 * directly for these operations.
 */
#ifndef WR_SYS_H
#define WR_SYS_H

#include <stddef.h>
#include <sys/types.h>

struct wr_sys {
	int (*open)(const char *path, int flags, mode_t mode);
	int (*openat)(int dirfd, const char *path, int flags, mode_t mode);
	int (*close)(int fd);
	int (*ftruncate)(int fd, off_t len);
	int (*fallocate)(int fd, int mode, off_t off, off_t len);
	int (*msync)(void *addr, size_t len, int flags);
	int (*fdatasync)(int fd);
	int (*fsync)(int fd);
	int (*rename)(const char *from, const char *to);
	int (*renameat)(int fromfd, const char *from, int tofd, const char *to);
	int (*unlink)(const char *path);
	int (*unlinkat)(int dirfd, const char *path, int flags);
	ssize_t (*write)(int fd, const void *buf, size_t len);
	ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t off);
	/* Starts or waits for writeback only: never a durability point. */
	int (*sync_file_range)(int fd, off_t off, off_t len, unsigned int flags);
};

/* The table in force. Tests may overwrite entries; restore with wr_sys_reset. */
extern struct wr_sys wr_sys;

/* The libc implementations, for tests that wrap them. */
extern const struct wr_sys wr_sys_libc;

void wr_sys_reset(void);

#endif
