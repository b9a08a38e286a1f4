/* SPDX-License-Identifier: MIT */
/* lib/: clock, stats, fs helpers and the swappable system-call table. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/fs.h"
#include "lib/membarrier.h"
#include "lib/spsc.h"
#include "lib/stats.h"
#include "lib/sys.h"
#include "tests/testutil.h"

START_TEST(test_lib_clock_monotonic)
{
	uint64_t a = wr_clock_now_ns();
	usleep(2000);
	uint64_t b = wr_clock_now_ns();
	ck_assert_uint_ge(b - a, 2000000);
	ck_assert_uint_gt(wr_clock_realtime_ns(), 1600000000ull * 1000000000ull);
}
END_TEST

START_TEST(test_lib_stats_duration_and_operation)
{
	static wr_duration_t d;
	static wr_operation_t o;
	memset(&d, 0, sizeof d);
	memset(&o, 0, sizeof o);
	wr_duration_record(&d, 100, 150);
	wr_duration_record(&d, 100, 130);
	wr_duration_record(&d, 100, 400);
	wr_duration_record(&d, 200, 100); /* clock went backwards: counts as 0 */
	wr_operation_record(&o, true, 0, 10);
	wr_operation_record(&o, false, 0, 30);
#ifdef WR_TELEMETRY
	ck_assert_uint_eq(d.count, 4);
	ck_assert_uint_eq(d.total_ns, 50 + 30 + 300);
	ck_assert_uint_eq(d.min_ns, 0);
	ck_assert_uint_eq(d.max_ns, 300);
	ck_assert_uint_eq(o.samples, 2);
	ck_assert_uint_eq(o.successes, 1);
	ck_assert_uint_eq(o.min_ns, 10);
	ck_assert_uint_eq(o.max_ns, 30);
#else
	ck_assert_uint_eq(d.count, 0);
#endif
}
END_TEST

START_TEST(test_lib_stats_histogram_quantiles)
{
	static wr_histogram_t h;
	memset(&h, 0, sizeof h);
	ck_assert_uint_eq(wr_histogram_quantile(&h, 0.5), 0);
	ck_assert_uint_eq(wr_histogram_bucket(0), 0);
	ck_assert_uint_eq(wr_histogram_bucket(1), 1);
	ck_assert_uint_eq(wr_histogram_bucket(1023), 10);
	ck_assert_uint_eq(wr_histogram_bucket(1024), 11);
	ck_assert_uint_eq(wr_histogram_bucket(UINT64_MAX), 64);
#ifdef WR_TELEMETRY
	/* 990 values in [16,32), 10 values of 5000 (bucket [4096,8192)). */
	for (int i = 0; i < 990; i++)
		wr_histogram_record(&h, 20);
	for (int i = 0; i < 10; i++)
		wr_histogram_record(&h, 5000);
	ck_assert_uint_eq(h.count, 1000);
	uint64_t p50 = wr_histogram_quantile(&h, 0.50);
	ck_assert_uint_ge(p50, 16);
	ck_assert_uint_lt(p50, 32);
	uint64_t p999 = wr_histogram_quantile(&h, 0.999);
	ck_assert_uint_ge(p999, 4096);
	ck_assert_uint_le(p999, 5000); /* capped at max */
	ck_assert_uint_eq(wr_histogram_quantile(&h, 1.0), 5000);
#endif
}
END_TEST

static char *dir;

static void
setup_dir(void)
{
	dir = wr_test_mkdtemp();
}

static void
teardown_dir(void)
{
	wr_sys_reset();
	wr_test_rmtree(dir);
	free(dir);
}

static int
read_meta(const char *name, char *out, size_t n)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	size_t len;
	char *buf = wr_test_read_file(path, &len);
	if (!buf)
		return -1;
	if (len >= n)
		len = n - 1;
	memcpy(out, buf, len);
	out[len] = 0;
	free(buf);
	return (int)len;
}

START_TEST(test_lib_fs_durable_replace)
{
	char buf[64];
	ck_assert_int_eq(wr_fs_durable_replace(dir, "f", "first", 5), 0);
	ck_assert_int_eq(read_meta("f", buf, sizeof buf), 5);
	ck_assert_str_eq(buf, "first");
	ck_assert_int_eq(wr_fs_durable_replace(dir, "f", "second!", 7), 0);
	ck_assert_str_eq((read_meta("f", buf, sizeof buf), buf), "second!");
	ck_assert_int_eq(read_meta("f.tmp", buf, sizeof buf), -1);
}
END_TEST

START_TEST(test_lib_fs_replace_faults_keep_old_file)
{
	char buf[64];
	ck_assert_int_eq(wr_fs_durable_replace(dir, "f", "old", 3), 0);

	wr_sys.rename = wr_test_rename_exdev;
	ck_assert_int_eq(wr_fs_durable_replace(dir, "f", "new", 3), -EXDEV);
	ck_assert_str_eq((read_meta("f", buf, sizeof buf), buf), "old");
	ck_assert_int_eq(read_meta("f.tmp", buf, sizeof buf), -1);
	wr_sys_reset();

	wr_sys.fdatasync = wr_test_fdatasync_eio;
	ck_assert_int_eq(wr_fs_durable_replace(dir, "f", "new", 3), -EIO);
	ck_assert_str_eq((read_meta("f", buf, sizeof buf), buf), "old");
	wr_sys_reset();

	wr_test_pwrite_calls = 0;
	wr_sys.pwrite = wr_test_pwrite_short;
	ck_assert_int_eq(wr_fs_durable_replace(dir, "f", "0123456789", 10), 0);
	ck_assert_int_eq(wr_test_pwrite_calls, 4);
	ck_assert_str_eq((read_meta("f", buf, sizeof buf), buf), "0123456789");
}
END_TEST

static int
no_fallocate(int fd, int mode, off_t off, off_t len)
{
	(void)fd;
	(void)mode;
	(void)off;
	(void)len;
	errno = EOPNOTSUPP;
	return -1;
}

static int
full_fallocate(int fd, int mode, off_t off, off_t len)
{
	(void)fd;
	(void)mode;
	(void)off;
	(void)len;
	errno = ENOSPC;
	return -1;
}

START_TEST(test_lib_fs_preallocate)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/p", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(wr_fs_preallocate(fd, 100000), 0);
	ck_assert_int_eq(wr_test_file_size(path), 100000);

	wr_sys.fallocate = no_fallocate;
	ck_assert_int_eq(wr_fs_preallocate(fd, 200000), 0);
	ck_assert_int_eq(wr_test_file_size(path), 200000);

	wr_sys.fallocate = full_fallocate;
	ck_assert_int_eq(wr_fs_preallocate(fd, 300000), -ENOSPC);
	close(fd);
}
END_TEST

/* Inodes of the directories fsynced through the table. */
static ino_t synced_dirs[8];
static int n_synced_dirs;

static int
fsync_noting_dirs(int fd)
{
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && n_synced_dirs < 8)
		synced_dirs[n_synced_dirs++] = st.st_ino;
	return fsync(fd);
}

START_TEST(test_lib_fs_mkdir_and_join)
{
	char path[4096];
	ck_assert_int_eq(wr_fs_join(path, sizeof path, dir, "sub"), 0);
	/* Creating it makes its name durable: the parent is fsynced (once, not again). */
	wr_sys.fsync = fsync_noting_dirs;
	n_synced_dirs = 0;
	ck_assert_int_eq(wr_fs_mkdir(path), 0);
	struct stat parent;
	ck_assert_int_eq(stat(dir, &parent), 0);
	ck_assert_int_eq(n_synced_dirs, 1);
	ck_assert(synced_dirs[0] == parent.st_ino);
	ck_assert_int_eq(wr_fs_mkdir(path), 0);
	ck_assert_int_eq(n_synced_dirs, 1);
	wr_sys_reset();
	char file[4096];
	ck_assert_int_eq(wr_fs_join(file, sizeof file, dir, "plain"), 0);
	ck_assert_int_eq(wr_test_write_file(file, "x", 1), 0);
	ck_assert_int_eq(wr_fs_mkdir(file), -ENOTDIR);
	ck_assert_int_eq(wr_fs_join(path, 5, dir, "sub"), -ENAMETOOLONG);
	ck_assert_int_eq(wr_fs_sync_dir(dir), 0);
	ck_assert_int_lt(wr_fs_sync_dir(file), 0);
}
END_TEST

/*
 * Where the kernel offers global expedited membarriers (asked with the raw
 * system call and the ABI values: QUERY 0, GLOBAL_EXPEDITED 1 << 1), the
 * wrappers must use them: producers then skip the per-append fence and a
 * parked recorder sleeps its full timeout instead of 1 ms at a time.
 */
START_TEST(test_lib_membarrier_used_when_available)
{
#ifdef SYS_membarrier
	long q = syscall(SYS_membarrier, 0, 0, 0);
	if (q < 0 || !(q & (1 << 1)))
		return; /* not offered here: the wrappers must fail, which is fine */
	ck_assert_int_eq(wr_membarrier_register(), 0);
	ck_assert_int_eq(wr_membarrier_global(), 0);
#endif
}
END_TEST

START_TEST(test_lib_spsc_limits)
{
	struct wr_spsc q;
	ck_assert_int_eq(wr_spsc_init(&q, 3), -EINVAL);
	ck_assert_int_eq(wr_spsc_init(&q, 1), -EINVAL);
	ck_assert_int_eq(wr_spsc_init(&q, 4), 0);
	int v[5];
	ck_assert_ptr_null(wr_spsc_try_pop(&q));
	for (int i = 0; i < 4; i++)
		ck_assert(wr_spsc_try_push(&q, &v[i]));
	ck_assert(!wr_spsc_try_push(&q, &v[4])); /* full */
	ck_assert_uint_eq(wr_spsc_size(&q), 4);
	ck_assert_ptr_eq(wr_spsc_try_pop(&q), &v[0]);
	ck_assert(wr_spsc_try_push(&q, &v[4])); /* room again, wrapping */
	for (int i = 1; i < 5; i++)
		ck_assert_ptr_eq(wr_spsc_try_pop(&q), &v[i]);
	ck_assert_ptr_null(wr_spsc_try_pop(&q));
	ck_assert_uint_eq(wr_spsc_size(&q), 0);
	wr_spsc_fini(&q);
}
END_TEST

#define SPSC_ITEMS 200000u

static void *
spsc_producer(void *arg)
{
	struct wr_spsc *q = arg;
	for (uintptr_t i = 1; i <= SPSC_ITEMS; i++)
		while (!wr_spsc_try_push(q, (void *)i))
			sched_yield();
	return NULL;
}

START_TEST(test_lib_spsc_two_threads)
{
	/* Every pointer arrives once, in order, through a small ring. */
	struct wr_spsc q;
	ck_assert_int_eq(wr_spsc_init(&q, 8), 0);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, spsc_producer, &q), 0);
	uintptr_t want = 1;
	while (want <= SPSC_ITEMS) {
		void *p = wr_spsc_try_pop(&q);
		if (!p) {
			sched_yield();
			continue;
		}
		if ((uintptr_t)p != want)
			ck_abort_msg("got %zu, expected %zu", (size_t)(uintptr_t)p, (size_t)want);
		want++;
	}
	pthread_join(t, NULL);
	ck_assert_ptr_null(wr_spsc_try_pop(&q));
	wr_spsc_fini(&q);
}
END_TEST

static Suite *
lib_suite(void)
{
	Suite *s = suite_create("lib");
	TCase *core = tcase_create("core");
	tcase_add_test(core, test_lib_clock_monotonic);
	tcase_add_test(core, test_lib_stats_duration_and_operation);
	tcase_add_test(core, test_lib_stats_histogram_quantiles);
	tcase_add_test(core, test_lib_membarrier_used_when_available);
	tcase_add_test(core, test_lib_spsc_limits);
	tcase_add_test(core, test_lib_spsc_two_threads);
	suite_add_tcase(s, core);
	TCase *fs = tcase_create("fs");
	tcase_add_checked_fixture(fs, setup_dir, teardown_dir);
	tcase_add_test(fs, test_lib_fs_durable_replace);
	tcase_add_test(fs, test_lib_fs_replace_faults_keep_old_file);
	tcase_add_test(fs, test_lib_fs_preallocate);
	tcase_add_test(fs, test_lib_fs_mkdir_and_join);
	suite_add_tcase(s, fs);
	return s;
}

WR_CHECK_MAIN(lib_suite)
