/* SPDX-License-Identifier: MIT */
/* File-system helpers (see fs.h). All fallible calls go through wr_sys. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fs.h"
#include "lib/log.h"
#include "lib/sys.h"

int
wr_fs_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = wr_sys.pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

int
wr_fs_sync_dir(const char *dir)
{
	/* The directory checked at open: a link put in its place later is not followed. */
	int fd = wr_sys.open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd < 0) {
		int err = errno;
		wr_log_syscall("open", dir, err);
		return -err;
	}
	int rc = 0;
	if (wr_sys.fsync(fd) != 0) {
		rc = -errno;
		wr_log_syscall("fsync", dir, -rc);
	}
	wr_sys.close(fd);
	return rc;
}

int
wr_fs_join(char *out, size_t n, const char *dir, const char *name)
{
	int len = snprintf(out, n, "%s/%s", dir, name);
	return (len < 0 || (size_t)len >= n) ? -ENAMETOOLONG : 0;
}

int
wr_fs_durable_replace(const char *dir, const char *name, const void *data,
		      size_t len)
{
	char tmp[4096], dst[4096];
	if (wr_fs_join(dst, sizeof dst, dir, name) != 0 ||
	    snprintf(tmp, sizeof tmp, "%s.tmp", dst) >= (int)sizeof tmp)
		return -ENAMETOOLONG;

	int fd = wr_sys.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			     0640);
	if (fd < 0) {
		int err = errno;
		wr_log_syscall("open", tmp, err);
		return -err;
	}
	int rc = wr_fs_pwrite_all(fd, data, len, 0);
	if (rc != 0)
		wr_log_syscall("write", tmp, -rc);
	if (rc == 0 && wr_sys.fdatasync(fd) != 0) {
		rc = -errno;
		wr_log_syscall("fdatasync", tmp, -rc);
	}
	if (wr_sys.close(fd) != 0 && rc == 0) {
		rc = -errno;
		wr_log_syscall("close", tmp, -rc);
	}
	if (rc == 0 && wr_sys.rename(tmp, dst) != 0) {
		rc = -errno;
		wr_log_syscall("rename", tmp, -rc);
	}
	if (rc != 0) {
		wr_sys.unlink(tmp);
		return rc;
	}
	return wr_fs_sync_dir(dir);
}

int
wr_fs_preallocate(int fd, off_t len)
{
	if (wr_sys.fallocate(fd, 0, 0, len) == 0)
		return 0;
	int err = errno;
	if (err != EOPNOTSUPP && err != ENOSYS)
		return -err;
	/* No fallocate here: write zeros so the blocks exist before use. */
	static const char zeros[65536];
	for (off_t off = 0; off < len; off += (off_t)sizeof zeros) {
		size_t n = (size_t)(len - off) < sizeof zeros ? (size_t)(len - off)
							      : sizeof zeros;
		int rc = wr_fs_pwrite_all(fd, zeros, n, off);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* fsync the directory that holds path (its last component's parent). 0 or -errno. */
static int
fs_sync_parent(const char *path)
{
	char parent[4096];
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--; /* "a/b/" names b */
	if (n >= sizeof parent)
		return -ENAMETOOLONG;
	memcpy(parent, path, n);
	parent[n] = '\0';
	char *slash = strrchr(parent, '/');
	if (slash == NULL)
		strcpy(parent, ".");
	else if (slash == parent)
		parent[1] = '\0';
	else
		*slash = '\0';
	return wr_fs_sync_dir(parent);
}

int
wr_fs_mkdir(const char *dir)
{
	if (mkdir(dir, 0750) == 0) {
		/* A new directory's own name must be durable before anything in it is. */
		int rc = fs_sync_parent(dir);
		if (rc != 0)
			return rc;
	} else if (errno != EEXIST) {
		return -errno;
	}
	/* O_NOFOLLOW: a symbolic link in the directory's place is refused, not followed. */
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	int err = errno;
	struct stat st;
	if (lstat(dir, &st) == 0 && S_ISLNK(st.st_mode)) {
		wr_log_error("%s is a symbolic link: give the WAL directory itself, not a link to it",
			     dir);
		return -ELOOP;
	}
	return -err;
}
