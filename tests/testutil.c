/* SPDX-License-Identifier: MIT */
/* Shared helpers for the Check suites. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/sys.h"
#include "tests/testutil.h"

char *
wr_test_mkdtemp(void)
{
	const char *base = getenv("TMPDIR");
	char tmpl[4096];
	snprintf(tmpl, sizeof tmpl, "%s/walrec-test-XXXXXX", base ? base : "/tmp");
	char *dir = mkdtemp(tmpl);
	ck_assert_msg(dir != NULL, "mkdtemp failed");
	return strdup(dir);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void
wr_test_rmtree(const char *path)
{
	if (path)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

uint64_t
wr_test_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

uint64_t
wr_test_env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);
	return v && *v ? strtoull(v, NULL, 0) : def;
}

long long
wr_test_file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

void *
wr_test_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	void *buf = malloc(n > 0 ? (size_t)n : 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf)
		*len = (size_t)n;
	return buf;
}

int
wr_test_write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t n = fwrite(data, 1, len, f);
	return (fclose(f) == 0 && n == len) ? 0 : -1;
}

int
wr_test_rename_exdev(const char *from, const char *to)
{
	(void)from;
	(void)to;
	errno = EXDEV;
	return -1;
}

int
wr_test_fdatasync_eio(int fd)
{
	(void)fd;
	errno = EIO;
	return -1;
}

ssize_t
wr_test_pwrite_enospc(int fd, const void *buf, size_t len, off_t off)
{
	(void)fd, (void)buf, (void)len, (void)off;
	errno = ENOSPC;
	return -1;
}

int wr_test_pwrite_calls;

ssize_t
wr_test_pwrite_short(int fd, const void *buf, size_t len, off_t off)
{
	wr_test_pwrite_calls++;
	return wr_sys_libc.pwrite(fd, buf, len > 3 ? 3 : len, off);
}

const char *
wr_test_fmt(const char *fmt, ...)
{
	static char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return buf;
}

void
wr_test_log_discard(void *arg, int level, const char *msg)
{
	(void)arg, (void)level, (void)msg;
}
