/* SPDX-License-Identifier: MIT */
/* Shared helpers for the Check suites. */
#ifndef WR_TESTUTIL_H
#define WR_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Define main() for a test program that runs one suite (CK_FORK as set by env). */
#define WR_CHECK_MAIN(suite_fn)                                                 \
	int main(void)                                                          \
	{                                                                       \
		SRunner *sr = srunner_create(suite_fn());                       \
		srunner_run_all(sr, CK_NORMAL);                                 \
		int failed = srunner_ntests_failed(sr);                         \
		srunner_free(sr);                                               \
		return failed == 0 ? 0 : 1;                                     \
	}

/* Create a fresh temporary directory; the path lives until wr_test_rmdir. */
char *wr_test_mkdtemp(void);

/* Remove a directory tree (test cleanup only). */
void wr_test_rmtree(const char *path);

/* Deterministic pseudo-random numbers (splitmix64) for reproducible tests. */
uint64_t wr_test_rand(uint64_t *state);

/* The number in environment variable name (strtoull, base 0), or def when unset or empty. */
uint64_t wr_test_env_u64(const char *name, uint64_t def);

/* Size of a file, or -1. */
long long wr_test_file_size(const char *path);

/* Read a whole file into a malloc'd buffer; *len set. NULL on error. */
void *wr_test_read_file(const char *path, size_t *len);

/* Write a whole file (create or truncate). 0 on success. */
int wr_test_write_file(const char *path, const void *data, size_t len);

/*
 * Fault stubs for wr_sys entries (lib/sys.h): each fails the way its name
 * says, or, for the short write, writes at most 3 bytes per call and
 * counts the calls in wr_test_pwrite_calls (reset it before use).
 */
int wr_test_rename_exdev(const char *from, const char *to);
int wr_test_fdatasync_eio(int fd);
ssize_t wr_test_pwrite_enospc(int fd, const void *buf, size_t len, off_t off);
extern int wr_test_pwrite_calls;
ssize_t wr_test_pwrite_short(int fd, const void *buf, size_t len, off_t off);

/* printf into a static buffer, for failure messages built in several steps. */
const char *wr_test_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A log handler that drops every line (walrec_log_set_handler), for tests of bad input. */
void wr_test_log_discard(void *arg, int level, const char *msg);

#endif
