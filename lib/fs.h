/* SPDX-License-Identifier: MIT */
/* File-system helpers: whole writes, durable replace, directory sync, preallocation. */
#ifndef WR_FS_H
#define WR_FS_H

#include <stddef.h>
#include <sys/types.h>

/* Write all len bytes at off, retrying short writes and EINTR. 0 or -errno. */
int wr_fs_pwrite_all(int fd, const void *buf, size_t len, off_t off);

/*
 * fsync a directory so that names created, renamed or removed in it are
 * durable. A symbolic link in its place is refused (O_NOFOLLOW).
 */
int wr_fs_sync_dir(const char *dir);

/*
 * Replace dir/name with exactly len bytes, crash-atomically: write
 * dir/name.tmp (O_NOFOLLOW), fdatasync it, rename over dir/name, fsync dir.
 * After a crash the file holds either the old or the new bytes.
 * Returns 0 or -errno; on failure the old file is untouched.
 */
int wr_fs_durable_replace(const char *dir, const char *name, const void *data,
			  size_t len);

/*
 * Reserve len bytes of disk for fd so later writes through a mapping can
 * not fail for lack of space. Uses fallocate; where the file system does
 * not support it, writes zeros. 0 or -errno (-ENOSPC when the disk is full).
 */
int wr_fs_preallocate(int fd, off_t len);

/* Join dir and name into out (size n). 0, or -ENAMETOOLONG. */
int wr_fs_join(char *out, size_t n, const char *dir, const char *name);

/*
 * Create dir (mode 0750) if missing, fsyncing its parent so that the new
 * name is durable, then check that dir is a directory and not a symbolic
 * link to one. 0 or -errno: -ELOOP for a symbolic link (logged), -ENOTDIR
 * if not a directory.
 */
int wr_fs_mkdir(const char *dir);

#endif
