/* SPDX-License-Identifier: MIT */
/* Tests of the public reader on a real log (hot and cold segments) written by the recorder. */
#include <config.h>

#include <dirent.h>
#include <lz4frame.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <walrec.h>

#include "lib/atomics.h"
#include "lib/clock.h"
#include "recorder/channel.h"
#include "recorder/drain.h"
#include "recorder/follow.h"
#include "recorder/format.h"
#include "recorder/segment_reader.h"
#include "recorder/wal_dir.h"
#include "tests/testutil.h"

/* One log shared by the tests (written once per test case, read only). */
static char *g_dir;
static uint64_t g_n; /* events appended: ids 1..g_n */

#define READER_EVENTS 100000u /* 16-block segments hold 4096: ~25 segments */

/* The event with this id, as appended: everything derived from the id. */
static void
expected_event(uint64_t id, walrec_event_t *ev)
{
	uint64_t st = id * 0x9E3779B97F4A7C15ull;
	ev->event_id = id;
	ev->timestamp_ns = 1000000000ull + id * 1000u;
	for (size_t k = 0; k < WALREC_PAYLOAD_SIZE; k += 8) {
		uint64_t v = wr_test_rand(&st);
		memcpy(ev->payload + k, &v, 8);
	}
}

static void
write_log(void)
{
	g_dir = wr_test_mkdtemp();
	walrec_recorder_config_t cfg;
	walrec_recorder_config_init(&cfg);
	cfg.num_blocks = 16;
	cfg.max_hot_segments = 2;
	cfg.compression = true;
	cfg.sync_interval_us = 0;
	walrec_recorder_t *rec;
	ck_assert_int_eq(walrec_recorder_open(&rec, g_dir, &cfg), 0);
	for (uint64_t id = 1; id <= READER_EVENTS; id++) {
		walrec_event_t ev;
		expected_event(id, &ev);
		uint64_t got = 0;
		ck_assert_int_eq(walrec_recorder_append(rec, &ev, &got), 0);
		ck_assert_uint_eq(got, id);
	}
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
	g_n = READER_EVENTS;
}

static void
remove_log(void)
{
	wr_test_rmtree(g_dir);
	free(g_dir);
	g_dir = NULL;
}

static void
check_event(const walrec_event_t *got, uint64_t id)
{
	walrec_event_t want;
	expected_event(id, &want);
	ck_assert_uint_eq(got->event_id, id);
	ck_assert_msg(memcmp(got, &want, sizeof want) == 0, "event %llu differs",
		      (unsigned long long)id);
}

/* Copy the log into a new directory, leaving out the file named skip (may be NULL). */
static char *
copy_log(const char *skip)
{
	char *dst = wr_test_mkdtemp();
	DIR *d = opendir(g_dir);
	ck_assert_ptr_nonnull(d);
	struct dirent *e;
	char a[4096], b[4096];
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || (skip && strcmp(e->d_name, skip) == 0))
			continue;
		snprintf(a, sizeof a, "%s/%s", g_dir, e->d_name);
		snprintf(b, sizeof b, "%s/%s", dst, e->d_name);
		size_t len;
		void *buf = wr_test_read_file(a, &len);
		ck_assert_ptr_nonnull(buf);
		ck_assert_int_eq(wr_test_write_file(b, buf, len), 0);
		free(buf);
	}
	closedir(d);
	return dst;
}

static walrec_reader_t *
open_reader(const char *dir, bool tolerant)
{
	walrec_reader_options_t o;
	walrec_reader_options_init(&o);
	o.tolerant = tolerant;
	walrec_reader_t *r = NULL;
	ck_assert_int_eq(walrec_reader_open(&r, dir, &o), 0);
	return r;
}

/* Seek to id and check that next() returns want (0: the end). */
static void
seek_expect(walrec_reader_t *r, uint64_t id, uint64_t want)
{
	ck_assert_int_eq(walrec_reader_seek(r, id), 0);
	walrec_event_t ev;
	int rc = walrec_reader_next(r, &ev);
	if (want == 0) {
		ck_assert_int_eq(rc, 0);
		return;
	}
	ck_assert_int_eq(rc, 1);
	check_event(&ev, want);
}

START_TEST(test_reader_round_trip)
{
	/* The log really has cold segments and rotated many times. */
	struct wr_wal_dir d;
	ck_assert_int_eq(wr_wal_dir_scan(&d, g_dir, 0, NULL, NULL), 0);
	size_t cold = 0;
	for (size_t i = 0; i < d.nsegments; i++)
		cold += d.segments[i].cold;
	ck_assert_uint_ge(d.nsegments, 21);
	ck_assert_uint_ge(cold, 10);
	wr_wal_dir_free(&d);

	walrec_reader_t *r = open_reader(g_dir, false);
	walrec_event_t ev;
	uint64_t id = 0;
	int rc;
	while ((rc = walrec_reader_next(r, &ev)) == 1)
		check_event(&ev, ++id);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(id, g_n);
	ck_assert_int_eq(walrec_reader_next(r, &ev), 0);
	walrec_reader_stats_t st;
	walrec_reader_stats(r, &st);
	ck_assert_uint_eq(st.id_gaps, 0);
	ck_assert_uint_eq(st.id_overlaps, 0);
	ck_assert_uint_eq(walrec_reader_skipped(r), 0);
	char msg[256];
	ck_assert_int_eq(walrec_reader_last_error(r, msg, sizeof msg), 0);
	walrec_reader_close(r);
	walrec_reader_close(NULL);
}
END_TEST

START_TEST(test_reader_seek)
{
	walrec_reader_t *r = open_reader(g_dir, false);
	seek_expect(r, 0, 1);
	seek_expect(r, 1, 1);
	seek_expect(r, g_n, g_n);
	seek_expect(r, g_n + 1, 0);
	seek_expect(r, UINT64_MAX, 0);
	seek_expect(r, g_n / 2, g_n / 2);

	/* Every block boundary of a few segments, cold and hot. */
	struct wr_wal_dir d;
	ck_assert_int_eq(wr_wal_dir_scan(&d, g_dir, 0, NULL, NULL), 0);
	size_t picks[] = { 0, 1, d.nsegments / 2, d.nsegments - 2, d.nsegments - 1 };
	bool saw_cold = false, saw_hot = false;
	for (size_t p = 0; p < sizeof picks / sizeof picks[0]; p++) {
		char path[4096];
		ck_assert_int_eq(wr_wal_dir_file_path(&d, picks[p], path, sizeof path), 0);
		struct wr_segment_reader sr;
		ck_assert_int_eq(wr_segment_reader_open(&sr, path, 0), 0);
		saw_cold |= sr.cold;
		saw_hot |= !sr.cold;
		for (uint32_t b = 0; b < sr.valid_blocks; b++) {
			const struct wr_block_entry *e = &sr.blocks[b];
			seek_expect(r, e->first_event_id, e->first_event_id);
			seek_expect(r, e->last_event_id, e->last_event_id);
			seek_expect(r, e->last_event_id + 1,
				    e->last_event_id < g_n ? e->last_event_id + 1 : 0);
		}
		wr_segment_reader_close(&sr);
	}
	ck_assert(saw_cold && saw_hot);
	wr_wal_dir_free(&d);

	/* After a seek, reading goes on across segments to the end. */
	seek_expect(r, g_n - 5000, g_n - 5000);
	walrec_event_t ev;
	uint64_t id = g_n - 5000;
	while (walrec_reader_next(r, &ev) == 1)
		check_event(&ev, ++id);
	ck_assert_uint_eq(id, g_n);
	walrec_reader_close(r);
}
END_TEST

START_TEST(test_reader_gap)
{
	/* Remove a middle (cold) segment: a gap, allowed and counted. */
	struct wr_wal_dir d;
	ck_assert_int_eq(wr_wal_dir_scan(&d, g_dir, 0, NULL, NULL), 0);
	size_t mid = 3;
	ck_assert(d.segments[mid].cold);
	uint64_t gap_first = d.segments[mid].first_event_id;
	uint64_t gap_last = d.segments[mid].last_event_id;
	char *dir = copy_log(d.segments[mid].name);
	wr_wal_dir_free(&d);
	ck_assert_uint_gt(gap_first, 1);

	walrec_reader_t *r = open_reader(dir, false);
	walrec_reader_stats_t st;
	walrec_reader_stats(r, &st);
	ck_assert_uint_eq(st.id_gaps, 1);
	ck_assert_uint_eq(st.id_overlaps, 0);
	seek_expect(r, gap_first, gap_last + 1);
	seek_expect(r, (gap_first + gap_last) / 2, gap_last + 1);
	seek_expect(r, gap_first - 1, gap_first - 1);
	walrec_event_t ev;
	ck_assert_int_eq(walrec_reader_next(r, &ev), 1);
	check_event(&ev, gap_last + 1);

	ck_assert_int_eq(walrec_reader_seek(r, 0), 0);
	uint64_t n = 0, prev = 0;
	while (walrec_reader_next(r, &ev) == 1) {
		check_event(&ev, ev.event_id);
		ck_assert_uint_gt(ev.event_id, prev);
		ck_assert(ev.event_id < gap_first || ev.event_id > gap_last);
		prev = ev.event_id;
		n++;
	}
	ck_assert_uint_eq(n, g_n - (gap_last - gap_first + 1));
	walrec_reader_close(r);
	wr_test_rmtree(dir);
	free(dir);
}
END_TEST

START_TEST(test_reader_duplicate)
{
	/* A segment file present twice under two names: one index, the same ids. */
	struct wr_wal_dir d;
	ck_assert_int_eq(wr_wal_dir_scan(&d, g_dir, 0, NULL, NULL), 0);
	char *dir = copy_log(NULL);
	char a[4096], b[4096];
	size_t last = d.nsegments - 1;
	snprintf(a, sizeof a, "%s/%s", dir, d.segments[last - 1].name);
	/* A copy of the segment before the last, under another name. */
	snprintf(b, sizeof b, "%s/%08u.wal", dir, d.segments[last].segment_index + 5);
	wr_wal_dir_free(&d);
	size_t len;
	uint8_t *buf = wr_test_read_file(a, &len);
	ck_assert_ptr_nonnull(buf);
	struct wr_segment_header h;
	ck_assert_int_eq(wr_segment_header_check(buf, len, &h), WR_FAULT_NONE);
	ck_assert_int_eq(wr_test_write_file(b, buf, len), 0);
	free(buf);

	walrec_reader_options_t o;
	walrec_reader_options_init(&o);
	walrec_reader_t *r = (walrec_reader_t *)1;
	/* Same header index twice: the duplicate or the overlap is an error in strict mode. */
	ck_assert_int_lt(walrec_reader_open(&r, dir, &o), 0);
	ck_assert_ptr_null(r);

	/* Tolerant: one of the two files is read; every id once, in order. */
	r = open_reader(dir, true);
	walrec_event_t ev;
	uint64_t id = 0;
	while (walrec_reader_next(r, &ev) == 1)
		check_event(&ev, ++id);
	ck_assert_uint_eq(id, g_n);
	walrec_reader_close(r);
	wr_test_rmtree(dir);
	free(dir);
}
END_TEST

/* Copy the log and flip one byte in an event of block blk of the closed hot segment before the last. */
static char *
damaged_log(uint32_t blk, char *name, size_t name_len, uint32_t *damaged_count,
	    uint64_t *damaged_first)
{
	struct wr_wal_dir d;
	ck_assert_int_eq(wr_wal_dir_scan(&d, g_dir, 0, NULL, NULL), 0);
	size_t k = d.nsegments - 2;
	ck_assert(!d.segments[k].cold);
	snprintf(name, name_len, "%s", d.segments[k].name);
	wr_wal_dir_free(&d);
	char *dir = copy_log(NULL);
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	struct wr_segment_reader sr;
	ck_assert_int_eq(wr_segment_reader_open(&sr, path, 0), 0);
	ck_assert_uint_gt(sr.valid_blocks, blk + 1);
	*damaged_count = sr.blocks[blk].event_count;
	*damaged_first = sr.blocks[blk].first_event_id;
	wr_segment_reader_close(&sr);
	size_t len;
	uint8_t *buf = wr_test_read_file(path, &len);
	ck_assert_ptr_nonnull(buf);
	buf[wr_block_offset(blk) + WR_BLOCK_HEADER_SIZE + 3 * WR_EVENT_SIZE + 20] ^= 0x10;
	ck_assert_int_eq(wr_test_write_file(path, buf, len), 0);
	free(buf);
	return dir;
}

START_TEST(test_reader_strict_corrupt)
{
	char name[256];
	uint32_t count;
	uint64_t first;
	char *dir = damaged_log(7, name, sizeof name, &count, &first);
	walrec_reader_t *r = open_reader(dir, false);
	walrec_event_t ev;
	uint64_t id = 0;
	int rc;
	while ((rc = walrec_reader_next(r, &ev)) == 1)
		check_event(&ev, ++id);
	ck_assert_int_eq(rc, -WALREC_ECORRUPT);
	ck_assert_uint_eq(id, first - 1); /* everything before the bad block */
	ck_assert_int_eq(walrec_reader_next(r, &ev), -WALREC_ECORRUPT);
	char msg[512];
	ck_assert_int_eq(walrec_reader_last_error(r, msg, sizeof msg), -WALREC_ECORRUPT);
	ck_assert_msg(strstr(msg, name) != NULL, "%s", msg);
	ck_assert_msg(strstr(msg, "block 7:") != NULL, "%s", msg);
	ck_assert_uint_eq(walrec_reader_skipped(r), 0);

	/* A seek into the damaged block fails there again, naming it. */
	ck_assert_int_eq(walrec_reader_seek(r, first + 1), 0);
	ck_assert_int_eq(walrec_reader_next(r, &ev), -WALREC_ECORRUPT);
	ck_assert_int_eq(walrec_reader_last_error(r, msg, sizeof msg), -WALREC_ECORRUPT);
	ck_assert_msg(strstr(msg, name) && strstr(msg, "block 7:"), "%s", msg);
	/*
	 * A seek verifies from the block it lands in: past the damage, in the
	 * same segment, it reads on to the end.
	 */
	seek_expect(r, first + count, first + count);
	id = first + count;
	while ((rc = walrec_reader_next(r, &ev)) == 1)
		check_event(&ev, ++id);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(id, g_n);
	seek_expect(r, g_n, g_n);
	seek_expect(r, 1, 1);
	walrec_reader_close(r);
	wr_test_rmtree(dir);
	free(dir);
}
END_TEST

START_TEST(test_reader_tolerant_skips_block)
{
	char name[256];
	uint32_t count;
	uint64_t first;
	char *dir = damaged_log(7, name, sizeof name, &count, &first);
	walrec_reader_t *r = open_reader(dir, true);
	walrec_event_t ev;
	uint64_t n = 0, want = 1;
	int rc;
	while ((rc = walrec_reader_next(r, &ev)) == 1) {
		if (want == first)
			want += count; /* the damaged block's events are gone */
		check_event(&ev, want++);
		n++;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(want - 1, g_n);
	ck_assert_uint_eq(n, g_n - count);
	ck_assert_uint_eq(walrec_reader_skipped(r), 1);
	char msg[512];
	ck_assert_int_eq(walrec_reader_last_error(r, msg, sizeof msg), -WALREC_ECORRUPT);
	ck_assert_msg(strstr(msg, name) && strstr(msg, "block 7:"), "%s", msg);

	/* Seeking into the damaged block lands on the next good event. */
	seek_expect(r, first + 1, first + count);
	/* Re-entering the segment does not count the block again. */
	seek_expect(r, 1, 1);
	seek_expect(r, first - 1, first - 1);
	ck_assert_uint_eq(walrec_reader_skipped(r), 1);
	walrec_reader_close(r);
	wr_test_rmtree(dir);
	free(dir);
}
END_TEST

/* Replace the hot file at path by its .wal.lz4, as the recorder's compression does. */
static void
compress_segment(const char *path)
{
	char cpath[4200];
	snprintf(cpath, sizeof cpath, "%s.lz4", path);
	size_t len;
	uint8_t *buf = wr_test_read_file(path, &len);
	ck_assert_ptr_nonnull(buf);
	size_t cap = LZ4F_compressFrameBound(len, NULL);
	void *z = malloc(cap);
	ck_assert_ptr_nonnull(z);
	size_t zlen = LZ4F_compressFrame(z, cap, buf, len, NULL);
	ck_assert(!LZ4F_isError(zlen));
	ck_assert_int_eq(wr_test_write_file(cpath, z, zlen), 0);
	ck_assert_int_eq(unlink(path), 0);
	free(z);
	free(buf);
}

START_TEST(test_reader_compressed_while_open)
{
	/* A hot segment compressed after open (a live recorder): read from the .lz4. */
	struct wr_wal_dir d;
	ck_assert_int_eq(wr_wal_dir_scan(&d, g_dir, 0, NULL, NULL), 0);
	size_t k = d.nsegments - 2;
	ck_assert(!d.segments[k].cold);
	char name[256];
	snprintf(name, sizeof name, "%s", d.segments[k].name);
	uint64_t first = d.segments[k].first_event_id;
	wr_wal_dir_free(&d);
	char *dir = copy_log(NULL);
	walrec_reader_t *r = open_reader(dir, false);
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	compress_segment(path);
	seek_expect(r, first + 10, first + 10);
	walrec_event_t ev;
	uint64_t id = first + 10;
	int rc;
	while ((rc = walrec_reader_next(r, &ev)) == 1)
		check_event(&ev, ++id);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(id, g_n);
	walrec_reader_close(r);
	wr_test_rmtree(dir);
	free(dir);
}
END_TEST

START_TEST(test_reader_tolerant_cold)
{
	/* The same damage (two blocks) in a segment compressed afterwards: the cold path. */
	char name[256];
	uint32_t count;
	uint64_t first;
	char *dir = damaged_log(7, name, sizeof name, &count, &first);
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	size_t len;
	uint8_t *buf = wr_test_read_file(path, &len);
	ck_assert_ptr_nonnull(buf);
	/* Damage block 8 too: two skips in a row, the chain restarts at block 9. */
	struct wr_block_header h8;
	memcpy(&h8, buf + wr_block_offset(8), sizeof h8);
	buf[wr_block_offset(8) + WR_BLOCK_HEADER_SIZE + 7] ^= 0x01;
	ck_assert_int_eq(wr_test_write_file(path, buf, len), 0);
	free(buf);
	compress_segment(path);

	walrec_reader_t *r = open_reader(dir, true);
	walrec_event_t ev;
	uint64_t n = 0, want = 1;
	while (walrec_reader_next(r, &ev) == 1) {
		if (want == first)
			want += count + h8.event_count;
		check_event(&ev, want++);
		n++;
	}
	ck_assert_uint_eq(want - 1, g_n);
	ck_assert_uint_eq(n, g_n - count - h8.event_count);
	ck_assert_uint_eq(walrec_reader_skipped(r), 2);
	/* Seeks into and after the damage in the cold segment (re-reads the stream). */
	seek_expect(r, first, first + count + h8.event_count);
	seek_expect(r, h8.last_event_id + 300, h8.last_event_id + 300);
	seek_expect(r, first - 1, first - 1);
	walrec_reader_close(r);

	/* Strict stops at block 7 of the cold file. */
	r = open_reader(dir, false);
	n = 0;
	int rc;
	while ((rc = walrec_reader_next(r, &ev)) == 1)
		n++;
	ck_assert_int_eq(rc, -WALREC_ECORRUPT);
	ck_assert_uint_eq(n, first - 1);
	char msg[512];
	walrec_reader_last_error(r, msg, sizeof msg);
	ck_assert_msg(strstr(msg, ".wal.lz4") && strstr(msg, "block 7:"), "%s", msg);
	walrec_reader_close(r);
	wr_test_rmtree(dir);
	free(dir);
}
END_TEST

START_TEST(test_reader_open_errors)
{
	walrec_reader_t *r = NULL;
	char *dir = wr_test_mkdtemp();
	char path[4096];
	snprintf(path, sizeof path, "%s/missing", dir);
	ck_assert_int_lt(walrec_reader_open(&r, path, NULL), 0);
	ck_assert_ptr_null(r);

	/* An empty directory: open, and at the end at once. */
	r = open_reader(dir, false);
	walrec_event_t ev;
	ck_assert_int_eq(walrec_reader_next(r, &ev), 0);
	ck_assert_int_eq(walrec_reader_seek(r, 5), 0);
	ck_assert_int_eq(walrec_reader_next(r, &ev), 0);
	walrec_reader_close(r);

	/* A file that is not a segment: strict refuses, tolerant skips and counts it. */
	snprintf(path, sizeof path, "%s/00000001.wal", dir);
	ck_assert_int_eq(wr_test_write_file(path, "garbage", 7), 0);
	ck_assert_int_eq(walrec_reader_open(&r, dir, NULL), -WALREC_EFORMAT);
	r = open_reader(dir, true);
	walrec_reader_stats_t st;
	walrec_reader_stats(r, &st);
	ck_assert_uint_eq(st.skipped_segments, 1);
	ck_assert_int_eq(walrec_reader_next(r, &ev), 0);
	char msg[512];
	ck_assert_int_eq(walrec_reader_last_error(r, msg, sizeof msg), -WALREC_EFORMAT);
	ck_assert_ptr_nonnull(strstr(msg, "00000001.wal"));
	walrec_reader_close(r);
	wr_test_rmtree(dir);
	free(dir);
}
END_TEST


/* ---- follow: a live log, other processes ------------------------------------ */

#define FOLLOW_PER_TAG 20000u
#define FOLLOW_TAGS 4u

static volatile sig_atomic_t g_rec_stop;

static void
rec_on_term(int sig)
{
	(void)sig;
	g_rec_stop = 1;
}

/* A recorder process: the embedded recorder draining the channel until SIGTERM. */
static pid_t
spawn_recorder(const char *dir, const char *chan)
{
	/* SIGTERM stays blocked until the child has its own handler (not the runner's). */
	sigset_t term, old;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, &old);
	pid_t pid = fork();
	if (pid != 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		ck_assert_int_gt(pid, 0);
		return pid;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = rec_on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigprocmask(SIG_SETMASK, &old, NULL);
	walrec_recorder_config_t cfg;
	walrec_recorder_config_init(&cfg);
	cfg.num_blocks = 16; /* a rotation every 4096 events */
	cfg.max_hot_segments = 2;
	cfg.compression = true;
	cfg.sync_interval_us = 500;
	walrec_recorder_t *rec;
	if (walrec_recorder_open(&rec, dir, &cfg) != 0)
		_exit(3);
	struct wr_drain_options o;
	wr_drain_options_default(&o);
	o.channel.park_timeout_ns = 20000000;
	int rc = wr_drain_run(rec, chan, &o, &g_rec_stop, NULL);
	int crc = walrec_recorder_close(rec);
	walrec_recorder_destroy(rec);
	_exit(rc == 0 && crc == 0 ? 0 : 4);
}

/* Payload: u64 tag, u64 sequence 1..n (as walrec produce writes them). */
static pid_t
spawn_producer(const char *chan, uint64_t tag, uint64_t n)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid > 0)
		return pid;
	walrec_producer_t *p = NULL;
	for (int i = 0; i < 500 && walrec_producer_attach(&p, chan) != 0; i++)
		usleep(10000);
	if (!p)
		_exit(3);
	uint8_t payload[WALREC_PAYLOAD_SIZE] = { 0 };
	memcpy(payload, &tag, 8);
	for (uint64_t seq = 1; seq <= n; seq++) {
		memcpy(payload + 8, &seq, 8);
		if (walrec_producer_append(p, payload) < 0)
			_exit(4);
	}
	walrec_producer_detach(p);
	_exit(0);
}

/*
 * A follower process: opens the directory in follow mode (the channel from
 * DIR/walrec.channel), says so on ready_fd, then checks that every tag's
 * sequence arrives as 1, 2, 3... exactly once, until all are in. Exit 0,
 * or 1 with the reason on stderr.
 */
static pid_t
spawn_follower(const char *dir, int ready_fd, uint64_t timeout_s, uint64_t ntags,
	       uint64_t per_tag, uint64_t min_attaches)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid > 0)
		return pid;
	walrec_reader_options_t o;
	walrec_reader_options_init(&o);
	o.follow = true;
	walrec_reader_t *r;
	if (walrec_reader_open(&r, dir, &o) != 0)
		_exit(3);
	if (write(ready_fd, "r", 1) != 1)
		_exit(3);
	uint64_t last[FOLLOW_TAGS + 1] = { 0 }, total = 0, last_id = 0;
	uint64_t deadline = wr_clock_now_ns() + timeout_s * 1000000000ull;
	walrec_event_t ev;
	while (total < ntags * per_tag) {
		int rc = walrec_reader_next(r, &ev);
		if (rc == 1) {
			uint64_t tag, seq;
			memcpy(&tag, ev.payload, 8);
			memcpy(&seq, ev.payload + 8, 8);
			if (tag < 1 || tag > ntags || seq != last[tag] + 1 || ev.event_id <= last_id) {
				fprintf(stderr, "follower: event %llu: tag %llu seq %llu after %llu\n",
					(unsigned long long)ev.event_id, (unsigned long long)tag,
					(unsigned long long)seq,
					(unsigned long long)(tag <= FOLLOW_TAGS ? last[tag] : 0));
				_exit(1);
			}
			last[tag] = seq;
			last_id = ev.event_id;
			total++;
			continue;
		}
		if (rc < 0) {
			char msg[512];
			walrec_reader_last_error(r, msg, sizeof msg);
			fprintf(stderr, "follower: next: %d %s\n", rc, msg);
			_exit(1);
		}
		if (wr_clock_now_ns() > deadline) {
			fprintf(stderr, "follower: timed out with %llu events\n",
				(unsigned long long)total);
			_exit(1);
		}
		if (walrec_reader_wait(r, 200000000) < 0) {
			fprintf(stderr, "follower: wait failed\n");
			_exit(1);
		}
	}
	/* Nothing more may come: a duplicate would show up here. */
	walrec_reader_wait(r, 300000000);
	int rc = walrec_reader_next(r, &ev);
	if (rc != 0) {
		fprintf(stderr, "follower: an extra event (%d, id %llu)\n", rc,
			(unsigned long long)ev.event_id);
		_exit(1);
	}
	walrec_reader_stats_t st;
	walrec_reader_stats(r, &st);
	walrec_reader_close(r);
	if (st.attaches < min_attaches) {
		fprintf(stderr, "follower: attached %llu times\n", (unsigned long long)st.attaches);
		_exit(1);
	}
	_exit(0);
}

static int
wait_exit(pid_t pid)
{
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Wait until a recorder with this pid runs the channel (at most 10 s). */
static void
wait_running(const char *chan, pid_t pid)
{
	char path[WR_CHAN_NAME_MAX + 16];
	snprintf(path, sizeof path, "/dev/shm/walrec.%s", chan);
	for (int i = 0; i < 1000; i++) {
		struct wr_chan_map m;
		int fd;
		struct stat st;
		/* Mapped only once it has its size (being created otherwise). */
		if (stat(path, &st) == 0 && st.st_size > 0 &&
		    wr_chan_map_open(&m, chan, &fd, false) == 0) {
			close(fd);
			bool up = wr_load_acquire(&m.control->state) == WR_CHAN_RUNNING &&
				  wr_load_acquire(&m.control->recorder_pid) == (uint32_t)pid;
			wr_chan_map_close(&m);
			if (up)
				return;
		}
		usleep(10000);
	}
	ck_abort_msg("recorder %d did not start", (int)pid);
}

static size_t
count_cold(const char *dir)
{
	struct wr_wal_dir d;
	ck_assert_int_eq(wr_wal_dir_scan(&d, dir, 0, NULL, NULL), 0);
	size_t n = 0;
	for (size_t i = 0; i < d.nsegments; i++)
		n += d.segments[i].cold;
	wr_wal_dir_free(&d);
	return n;
}

START_TEST(test_reader_follow_live)
{
	char *dir = wr_test_mkdtemp();
	char chan[64];
	snprintf(chan, sizeof chan, "rdf.%d", (int)getpid());
	wr_channel_unlink(chan);
	int pfd[2];
	ck_assert_int_eq(pipe(pfd), 0);

	pid_t rec = spawn_recorder(dir, chan);
	wait_running(chan, rec);
	/* The recorder names its channel in the directory: that is how followers find it. */
	char name[WR_CHAN_NAME_MAX + 1];
	ck_assert_int_eq(wr_follow_read_name(dir, name, sizeof name), 0);
	ck_assert_str_eq(name, chan);

	/* Started before any producer. */
	pid_t f1 = spawn_follower(dir, pfd[1], 40, FOLLOW_TAGS, FOLLOW_PER_TAG, 1);
	char c;
	ck_assert_int_eq(read(pfd[0], &c, 1), 1);

	pid_t a1 = spawn_producer(chan, 1, FOLLOW_PER_TAG);
	pid_t a2 = spawn_producer(chan, 2, FOLLOW_PER_TAG);
	ck_assert_int_eq(wait_exit(a1), 0);
	ck_assert_int_eq(wait_exit(a2), 0);

	/* A clean restart: the channel is reopened and resumed. */
	kill(rec, SIGTERM);
	ck_assert_int_eq(wait_exit(rec), 0);
	/* Another follower, started late: most of the log is cold by now. */
	pid_t f2 = spawn_follower(dir, pfd[1], 40, FOLLOW_TAGS, FOLLOW_PER_TAG, 1);
	ck_assert_int_eq(read(pfd[0], &c, 1), 1);
	rec = spawn_recorder(dir, chan);
	wait_running(chan, rec);

	/* A crash mid-stream: producers keep writing into their rings meanwhile. */
	pid_t b1 = spawn_producer(chan, 3, FOLLOW_PER_TAG);
	pid_t b2 = spawn_producer(chan, 4, FOLLOW_PER_TAG);
	usleep(30000);
	kill(rec, SIGKILL);
	ck_assert_int_eq(wait_exit(rec), 128 + SIGKILL);
	usleep(50000);
	rec = spawn_recorder(dir, chan);
	wait_running(chan, rec);
	ck_assert_int_eq(wait_exit(b1), 0);
	ck_assert_int_eq(wait_exit(b2), 0);

	ck_assert_int_eq(wait_exit(f1), 0);
	ck_assert_int_eq(wait_exit(f2), 0);
	kill(rec, SIGTERM);
	ck_assert_int_eq(wait_exit(rec), 0);
	/* It rotated and compressed under the followers. */
	ck_assert_uint_ge(count_cold(dir), 10);
	close(pfd[0]);
	close(pfd[1]);
	wr_channel_unlink(chan);
	wr_test_rmtree(dir);
	free(dir);
}
END_TEST

START_TEST(test_reader_follow_recreated_channel)
{
	/* The channel removed and created anew between two recorders: the follower maps the new one. */
	char *dir = wr_test_mkdtemp();
	char chan[64];
	snprintf(chan, sizeof chan, "rdr.%d", (int)getpid());
	wr_channel_unlink(chan);
	int pfd[2];
	ck_assert_int_eq(pipe(pfd), 0);
	pid_t rec = spawn_recorder(dir, chan);
	wait_running(chan, rec);
	pid_t f = spawn_follower(dir, pfd[1], 30, 2, 5000, 2);
	char c;
	ck_assert_int_eq(read(pfd[0], &c, 1), 1);
	pid_t p = spawn_producer(chan, 1, 5000);
	ck_assert_int_eq(wait_exit(p), 0);
	kill(rec, SIGTERM);
	ck_assert_int_eq(wait_exit(rec), 0);
	ck_assert_int_eq(wr_channel_unlink(chan), 0);
	rec = spawn_recorder(dir, chan);
	wait_running(chan, rec);
	p = spawn_producer(chan, 2, 5000);
	ck_assert_int_eq(wait_exit(p), 0);
	ck_assert_int_eq(wait_exit(f), 0);
	kill(rec, SIGTERM);
	ck_assert_int_eq(wait_exit(rec), 0);
	close(pfd[0]);
	close(pfd[1]);
	wr_channel_unlink(chan);
	wr_test_rmtree(dir);
	free(dir);
}
END_TEST

struct publish_later {
	struct wr_channel *ch;
	pid_t sleeper;  /* thread id of the follower */
	struct wr_channel_meta m;
	int woken;
};

/* State letter of a thread of this process from /proc ('S': asleep), or 0. */
static char
thread_state(pid_t tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/* Publish once the follower sleeps in the kernel: it must be woken, not time out. */
static void *
publish_later_main(void *arg)
{
	struct publish_later *pl = arg;
	const struct wr_chan_map *m = wr_channel_map(pl->ch);
	for (int i = 0; i < 50000; i++) {
		if (atomic_load(&m->meta->followers) == 1 && thread_state(pl->sleeper) == 'S')
			break;
		usleep(100);
	}
	pl->woken = wr_channel_publish_meta(pl->ch, &pl->m);
	return NULL;
}

START_TEST(test_reader_follow_wakes)
{
	/* wait() sleeps on the mirror's futex and the recorder's publish wakes it. */
	char *dir = wr_test_mkdtemp();
	char chan[64];
	snprintf(chan, sizeof chan, "rdw.%d", (int)getpid());
	wr_channel_unlink(chan);
	struct wr_channel *ch;
	ck_assert_int_eq(wr_channel_create(&ch, chan, NULL), 0);
	walrec_reader_options_t o;
	walrec_reader_options_init(&o);
	o.follow = true;
	o.channel = chan;
	walrec_reader_t *r;
	ck_assert_int_eq(walrec_reader_open(&r, dir, &o), 0);
	walrec_event_t ev;
	ck_assert_int_eq(walrec_reader_next(r, &ev), 0);
	/* Nothing published: a wait times out. */
	ck_assert_int_eq(walrec_reader_wait(r, 50000000), 0);
	/* A publish while it sleeps (10 s allowed) ends the sleep: 1. */
	struct publish_later pl = { .ch = ch, .sleeper = (pid_t)syscall(SYS_gettid),
				    .m = { .last_sealed_id = 5, .sealed_segment_index = 1,
					   .sealed_blocks = 1 } };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, publish_later_main, &pl), 0);
	ck_assert_int_eq(walrec_reader_wait(r, 10000000000ull), 1);
	pthread_join(t, NULL);
	ck_assert_int_eq(pl.woken, 1);
	/* The follower took itself off the sleepers' count. */
	ck_assert_uint_eq(atomic_load(&wr_channel_map(ch)->meta->followers), 0);
	walrec_reader_stats_t st;
	walrec_reader_stats(r, &st);
	ck_assert_uint_eq(st.attaches, 1);
	/* Read again (nothing in the directory): the next wait sleeps anew. */
	ck_assert_int_eq(walrec_reader_next(r, &ev), 0);
	ck_assert_int_eq(walrec_reader_wait(r, 50000000), 0);
	walrec_reader_close(r);
	/* wait() belongs to follow mode. */
	ck_assert_int_eq(walrec_reader_open(&r, dir, NULL), 0);
	ck_assert_int_eq(walrec_reader_wait(r, 0), -EINVAL);
	walrec_reader_close(r);
	wr_channel_close(ch);
	wr_channel_unlink(chan);
	wr_test_rmtree(dir);
	free(dir);
}
END_TEST

static Suite *
reader_suite(void)
{
	Suite *s = suite_create("reader");
	TCase *tc = tcase_create("core");
	tcase_add_unchecked_fixture(tc, write_log, remove_log);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_reader_round_trip);
	tcase_add_test(tc, test_reader_seek);
	tcase_add_test(tc, test_reader_gap);
	tcase_add_test(tc, test_reader_duplicate);
	tcase_add_test(tc, test_reader_strict_corrupt);
	tcase_add_test(tc, test_reader_tolerant_skips_block);
	tcase_add_test(tc, test_reader_tolerant_cold);
	tcase_add_test(tc, test_reader_compressed_while_open);
	suite_add_tcase(s, tc);

	TCase *fol = tcase_create("follow");
	tcase_set_timeout(fol, 90);
	tcase_add_test(fol, test_reader_follow_live);
	tcase_add_test(fol, test_reader_follow_recreated_channel);
	tcase_add_test(fol, test_reader_follow_wakes);
	suite_add_tcase(s, fol);

	TCase *lim = tcase_create("limits");
	tcase_add_test(lim, test_reader_open_errors);
	suite_add_tcase(s, lim);
	return s;
}

WR_CHECK_MAIN(reader_suite)
