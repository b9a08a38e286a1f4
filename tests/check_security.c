/* SPDX-License-Identifier: MIT */
/*
 * Hostile surroundings: a WAL directory that is a symbolic link, symbolic
 * links planted under every name the recorder creates (segments, wal.meta
 * and its temporary, compressed segments' temporaries), and the modes of
 * what it creates. A planted link is never followed: the file it points
 * to is never written.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <walrec.h>

#include "lib/clock.h"
#include "tests/testutil.h"

static char *base;
static char dir[4200];    /* the WAL directory */
static char victim[4200]; /* what planted links point to */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[1 << 15];
static size_t log_len;

static void
log_capture(void *arg, int level, const char *msg)
{
	(void)arg, (void)level;
	pthread_mutex_lock(&log_lock);
	int n = snprintf(log_buf + log_len, sizeof log_buf - log_len, "%s\n", msg);
	if (n > 0 && log_len + (size_t)n < sizeof log_buf)
		log_len += (size_t)n;
	pthread_mutex_unlock(&log_lock);
}

static bool
log_has(const char *needle)
{
	pthread_mutex_lock(&log_lock);
	bool r = strstr(log_buf, needle) != NULL;
	pthread_mutex_unlock(&log_lock);
	return r;
}

static void
setup(void)
{
	base = wr_test_mkdtemp();
	snprintf(dir, sizeof dir, "%s/wal", base);
	snprintf(victim, sizeof victim, "%s/victim", base);
	ck_assert_int_eq(wr_test_write_file(victim, "precious", 8), 0);
	log_len = 0;
	log_buf[0] = '\0';
	walrec_log_set_handler(log_capture, NULL, WALREC_LOG_DEBUG);
}

static void
teardown(void)
{
	walrec_log_set_handler(NULL, NULL, -1);
	wr_test_rmtree(base);
	free(base);
}

/* The victim still holds exactly what it held. */
static void
victim_untouched(void)
{
	size_t len = 0;
	char *p = wr_test_read_file(victim, &len);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(len, 8);
	ck_assert_int_eq(memcmp(p, "precious", 8), 0);
	free(p);
}

static void
plant(const char *name)
{
	char path[4400];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	ck_assert_int_eq(symlink(victim, path), 0);
}

static walrec_recorder_config_t
config(uint32_t max_hot)
{
	walrec_recorder_config_t cfg;
	walrec_recorder_config_init(&cfg);
	cfg.num_blocks = 16;
	cfg.max_hot_segments = max_hot;
	return cfg;
}

static void
append_n(walrec_recorder_t *rec, uint64_t n)
{
	walrec_event_t ev;
	memset(&ev, 0, sizeof ev);
	for (uint64_t i = 0; i < n; i++)
		ck_assert_int_eq(walrec_recorder_append(rec, &ev, NULL), 0);
}

START_TEST(test_security_wal_dir_symlink_refused)
{
	char real[4300];
	snprintf(real, sizeof real, "%s/real", base);
	ck_assert_int_eq(mkdir(real, 0750), 0);
	ck_assert_int_eq(symlink(real, dir), 0);
	walrec_recorder_config_t cfg = config(4);
	walrec_recorder_t *rec = NULL;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), -ELOOP);
	ck_assert_ptr_null(rec);
	ck_assert(log_has("is a symbolic link"));
	/* nothing was written through the link */
	ck_assert_int_eq(rmdir(real), 0);
	/* a regular file in its place */
	ck_assert_int_eq(unlink(dir), 0);
	ck_assert_int_eq(wr_test_write_file(dir, "x", 1), 0);
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), -ENOTDIR);
}
END_TEST

START_TEST(test_security_planted_segment_refused)
{
	/* In the log already: recovery refuses to open it rather than follow it. */
	ck_assert_int_eq(mkdir(dir, 0750), 0);
	plant("00000001.wal");
	walrec_recorder_config_t cfg = config(4);
	walrec_recorder_t *rec = NULL;
	ck_assert_int_lt(walrec_recorder_open(&rec, dir, &cfg), 0);
	ck_assert(log_has("can not be reopened"));
	victim_untouched();

	/* Under a name the preparer will create: O_EXCL refuses it, the index is skipped. */
	char path[4400];
	snprintf(path, sizeof path, "%s/00000001.wal", dir);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	plant("00000009.wal");
	append_n(rec, 4096 * 10);
	ck_assert_int_eq(walrec_recorder_sync(rec), 0);
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
	ck_assert(log_has("segment 9 already exists"));
	victim_untouched();
	struct stat st;
	snprintf(path, sizeof path, "%s/00000009.wal", dir);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISLNK(st.st_mode)); /* left as it was */
	/* The next index took its place (hot, or compressed by now). */
	snprintf(path, sizeof path, "%s/00000010.wal", dir);
	char cold[4400];
	snprintf(cold, sizeof cold, "%s/00000010.wal.lz4", dir);
	ck_assert(lstat(path, &st) == 0 || lstat(cold, &st) == 0);
	ck_assert(S_ISREG(st.st_mode));
}
END_TEST

START_TEST(test_security_planted_meta_links_refused)
{
	/* wal.meta.tmp: the replace refuses the link (and is retried, not latched). */
	ck_assert_int_eq(mkdir(dir, 0750), 0);
	plant("wal.meta.tmp");
	walrec_recorder_config_t cfg = config(4);
	walrec_recorder_t *rec = NULL;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	append_n(rec, 1000);
	ck_assert_int_eq(walrec_recorder_sync(rec), 0);
	ck_assert_int_ne(walrec_recorder_close(rec), 0); /* its last replace failed: reported */
	walrec_recorder_destroy(rec);
	ck_assert(log_has("wal.meta.tmp"));
	victim_untouched();

	/* wal.meta itself a link: not read, and replaced by a regular file. */
	char tmp[4400], meta[4400];
	snprintf(tmp, sizeof tmp, "%s/wal.meta.tmp", dir);
	snprintf(meta, sizeof meta, "%s/wal.meta", dir);
	ck_assert_int_eq(unlink(tmp), 0);
	unlink(meta);
	plant("wal.meta");
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	ck_assert(log_has("recovering by scanning"));
	append_n(rec, 10);
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
	victim_untouched();
	struct stat st;
	ck_assert_int_eq(lstat(meta, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_size, 16);
}
END_TEST

START_TEST(test_security_planted_compression_tmp_refused)
{
	/* Found at open beside no segment: renamed aside, not followed. */
	ck_assert_int_eq(mkdir(dir, 0750), 0);
	plant("00000007.wal.lz4.tmp");
	walrec_recorder_config_t cfg = config(1);
	walrec_recorder_t *rec = NULL;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	ck_assert(log_has("quarantined"));
	/* Planted while running, where compression will write: O_EXCL refuses it. */
	plant("00000002.wal.lz4.tmp");
	append_n(rec, 4096 * 3);
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
	victim_untouched();
	ck_assert(log_has("compressing"));
	/* Segment 1 compressed; segment 2 stays uncompressed (every retry meets the link). */
	char path[4400];
	snprintf(path, sizeof path, "%s/00000001.wal.lz4", dir);
	ck_assert_int_eq(access(path, F_OK), 0);
	snprintf(path, sizeof path, "%s/00000002.wal", dir);
	ck_assert_int_eq(access(path, F_OK), 0);
}
END_TEST

START_TEST(test_security_modes)
{
	/* Whatever the umask allows, nothing is writable by others or readable by the world. */
	mode_t old = umask(0);
	walrec_recorder_config_t cfg = config(1);
	walrec_recorder_t *rec = NULL;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	append_n(rec, 4096 * 3);
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
	umask(old);
	struct stat st;
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0750);
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	struct dirent *de;
	unsigned hot = 0, cold = 0, meta = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char path[4500];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		ck_assert_int_eq(lstat(path, &st), 0);
		ck_assert_msg((st.st_mode & 07777) == 0640, "%s: mode %o", de->d_name,
			      st.st_mode & 07777);
		size_t n = strlen(de->d_name);
		hot += n > 4 && strcmp(de->d_name + n - 4, ".wal") == 0;
		cold += n > 8 && strcmp(de->d_name + n - 8, ".wal.lz4") == 0;
		meta += strcmp(de->d_name, "wal.meta") == 0;
	}
	closedir(d);
	ck_assert_uint_ge(hot, 1);
	ck_assert_uint_ge(cold, 1);
	ck_assert_uint_eq(meta, 1);
}
END_TEST

static Suite *
security_suite(void)
{
	Suite *s = suite_create("security");
	TCase *tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_security_wal_dir_symlink_refused);
	tcase_add_test(tc, test_security_planted_segment_refused);
	tcase_add_test(tc, test_security_planted_meta_links_refused);
	tcase_add_test(tc, test_security_planted_compression_tmp_refused);
	tcase_add_test(tc, test_security_modes);
	suite_add_tcase(s, tc);
	return s;
}

WR_CHECK_MAIN(security_suite)
