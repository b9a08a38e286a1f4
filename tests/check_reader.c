/* SPDX-License-Identifier: MIT */
/* Tests of the public reader on a real log (hot and cold segments) written by the recorder. */
#include <config.h>

#include <dirent.h>
#include <lz4frame.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <walrec.h>

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

	TCase *lim = tcase_create("limits");
	tcase_add_test(lim, test_reader_open_errors);
	suite_add_tcase(s, lim);
	return s;
}

WR_CHECK_MAIN(reader_suite)
