/* SPDX-License-Identifier: MIT */
/* Tests of the public reader on a real log (hot and cold segments) written by the recorder. */
#include <config.h>

#include <dirent.h>
#include <lz4frame.h>
#include <errno.h>
#include <fcntl.h>
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
#include "lib/sys.h"
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

/* Byte-identical to what was appended (asserted only on a mismatch: Check records each assertion). */
static void
check_event(const walrec_event_t *got, uint64_t id)
{
	walrec_event_t want;
	expected_event(id, &want);
	if (got->event_id != id || memcmp(got, &want, sizeof want) != 0)
		ck_abort_msg("event %llu differs (got id %llu)", (unsigned long long)id,
			     (unsigned long long)got->event_id);
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

	/*
	 * Every block boundary of every segment, cold and hot; for one cold and
	 * one hot segment also each from a freshly opened reader (the first
	 * seek into a segment finds its block from the headers).
	 */
	struct wr_wal_dir d;
	ck_assert_int_eq(wr_wal_dir_scan(&d, g_dir, 0, NULL, NULL), 0);
	bool saw_cold = false, saw_hot = false;
	size_t fresh_cold = SIZE_MAX, fresh_hot = SIZE_MAX;
	for (size_t p = 0; p < d.nsegments; p++) {
		char path[4096];
		ck_assert_int_eq(wr_wal_dir_file_path(&d, p, path, sizeof path), 0);
		struct wr_segment_reader sr;
		ck_assert_int_eq(wr_segment_reader_open(&sr, path, 0), 0);
		saw_cold |= sr.cold;
		saw_hot |= !sr.cold;
		if (sr.cold && fresh_cold == SIZE_MAX && p > 0)
			fresh_cold = p;
		if (!sr.cold && p + 1 < d.nsegments)
			fresh_hot = p;
		bool fresh = p == fresh_cold || p == fresh_hot;
		for (uint32_t b = 0; b < sr.valid_blocks; b++) {
			const struct wr_block_entry *e = &sr.blocks[b];
			uint64_t ids[3] = { e->first_event_id, e->last_event_id, e->last_event_id + 1 };
			for (int k = 0; k < 3; k++) {
				uint64_t want = ids[k] <= g_n ? ids[k] : 0;
				seek_expect(r, ids[k], want);
				if (!fresh)
					continue;
				walrec_reader_options_t o;
				walrec_reader_options_init(&o);
				o.preload = 0;
				walrec_reader_t *f;
				ck_assert_int_eq(walrec_reader_open(&f, g_dir, &o), 0);
				seek_expect(f, ids[k], want);
				walrec_reader_close(f);
			}
		}
		wr_segment_reader_close(&sr);
	}
	ck_assert(saw_cold && saw_hot);
	ck_assert(fresh_cold != SIZE_MAX && fresh_hot != SIZE_MAX);
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


/* wr_sys.open that compresses one hot segment just before it would be opened, as a live recorder may. */
static int (*g_real_open)(const char *, int, mode_t);
static char g_race_name[300];
static int g_races;

static int
open_compressing(const char *path, int flags, mode_t mode)
{
	size_t lp = strlen(path), ln = strlen(g_race_name);
	if (g_races == 0 && lp >= ln && strcmp(path + lp - ln, g_race_name) == 0) {
		g_races++;
		compress_segment(path);
		errno = ENOENT;
		return -1;
	}
	return g_real_open(path, flags, mode);
}

START_TEST(test_reader_compressed_while_scanned)
{
	/*
	 * A hot segment listed by the directory scan and compressed before its
	 * header is read (its .wal gone, the .wal.lz4 complete): the reader
	 * reads the .wal.lz4, at open and when a follower looks for new segments.
	 */
	struct wr_wal_dir d;
	ck_assert_int_eq(wr_wal_dir_scan(&d, g_dir, 0, NULL, NULL), 0);
	size_t k = d.nsegments - 2;
	ck_assert(!d.segments[k].cold);
	snprintf(g_race_name, sizeof g_race_name, "/%s", d.segments[k].name);
	uint32_t last_index = d.segments[d.nsegments - 1].segment_index;
	wr_wal_dir_free(&d);
	/* A recorder's position past every segment: they are all finished. */
	char chan[64];
	snprintf(chan, sizeof chan, "rdc.%d", (int)getpid());
	wr_channel_unlink(chan);
	struct wr_channel *ch;
	ck_assert_int_eq(wr_channel_create(&ch, chan, NULL), 0);
	struct wr_channel_meta m = { .last_sealed_id = g_n, .sealed_segment_index = last_index + 1 };
	wr_channel_publish_meta(ch, &m);
	for (int follow = 0; follow < 2; follow++) {
		char *dir = copy_log(NULL);
		g_real_open = wr_sys.open;
		g_races = 0;
		wr_sys.open = open_compressing;
		walrec_reader_options_t o;
		walrec_reader_options_init(&o);
		o.follow = follow;
		o.channel = follow ? chan : NULL;
		walrec_reader_t *r;
		int orc = walrec_reader_open(&r, dir, &o);
		wr_sys.open = g_real_open;
		ck_assert_int_eq(orc, 0);
		ck_assert_int_eq(g_races, 1);
		walrec_event_t ev;
		uint64_t id = 0;
		int rc;
		while ((rc = walrec_reader_next(r, &ev)) == 1)
			check_event(&ev, ++id);
		ck_assert_int_eq(rc, 0);
		ck_assert_uint_eq(id, g_n);
		walrec_reader_close(r);
		wr_test_rmtree(dir);
		free(dir);
	}
	wr_channel_close(ch);
	wr_channel_unlink(chan);
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


/* ---- a flipped byte anywhere -------------------------------------------------- */

struct flip_file {
	char name[256];
	bool cold;
	uint64_t data_end;    /* hot: end of the valid blocks; cold: file size */
	uint32_t valid_blocks;
	struct wr_block_entry *blocks; /* hot: the blocks, for the expected ids */
};

static size_t
flip_files(const char *dir, struct flip_file *ff, size_t max)
{
	struct wr_wal_dir d;
	ck_assert_int_eq(wr_wal_dir_scan(&d, dir, 0, NULL, NULL), 0);
	size_t n = 0;
	for (size_t i = 0; i < d.nsegments && n < max; i++) {
		char path[4096];
		ck_assert_int_eq(wr_wal_dir_file_path(&d, i, path, sizeof path), 0);
		struct wr_segment_reader sr;
		ck_assert_int_eq(wr_segment_reader_open(&sr, path, 0), 0);
		struct flip_file *f = &ff[n++];
		snprintf(f->name, sizeof f->name, "%s", d.segments[i].name);
		f->cold = sr.cold;
		f->valid_blocks = sr.valid_blocks;
		f->data_end = sr.cold ? sr.file_size : wr_block_offset(sr.valid_blocks);
		f->blocks = malloc(sr.valid_blocks * sizeof *f->blocks);
		memcpy(f->blocks, sr.blocks, sr.valid_blocks * sizeof *f->blocks);
		wr_segment_reader_close(&sr);
	}
	wr_wal_dir_free(&d);
	return n;
}

/* Flip the bits of one byte in place (twice restores it). */
static void
flip_byte(const char *dir, const char *name, uint64_t off, uint8_t mask)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	uint8_t b;
	ck_assert_int_eq(pread(fd, &b, 1, (off_t)off), 1);
	b ^= mask;
	ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

/* Decode a whole LZ4 frame file into memory (content checksum checked); NULL if it does not decode. */
static uint8_t *
decode_file(const char *path, size_t *out_len)
{
	size_t zlen;
	uint8_t *z = wr_test_read_file(path, &zlen);
	ck_assert_ptr_nonnull(z);
	LZ4F_dctx *dctx;
	ck_assert(!LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)));
	size_t cap = 1u << 20, len = 0, pos = 0;
	uint8_t *out = malloc(cap);
	size_t hint = 1;
	while (pos < zlen && hint != 0) {
		if (cap - len < (1u << 20))
			out = realloc(out, cap *= 2);
		size_t dst = cap - len, src = zlen - pos;
		hint = LZ4F_decompress(dctx, out + len, &dst, z + pos, &src, NULL);
		if (LZ4F_isError(hint) || (dst == 0 && src == 0)) {
			free(out);
			out = NULL;
			break;
		}
		len += dst;
		pos += src;
	}
	if (out && hint != 0) {
		free(out);
		out = NULL;
	}
	LZ4F_freeDecompressionContext(dctx);
	free(z);
	*out_len = len;
	return out;
}

static char g_log[1024];

static void
capture_log(void *arg, int level, const char *msg)
{
	(void)arg;
	if (level == WALREC_LOG_ERROR)
		snprintf(g_log, sizeof g_log, "%s", msg);
}

/*
 * Read the whole log from the start. Returns next()'s final code; *n counts
 * the events (each checked against what was written), msg the last error.
 * open_rc gets walrec_reader_open's result (the log has what it said).
 */
static int
read_all(const char *dir, bool tolerant, uint32_t preload, uint64_t *n, uint64_t *skipped,
	 char *msg, size_t len, int *open_rc)
{
	walrec_reader_options_t o;
	walrec_reader_options_init(&o);
	o.tolerant = tolerant;
	o.preload = preload;
	walrec_reader_t *r = NULL;
	g_log[0] = '\0';
	*open_rc = walrec_reader_open(&r, dir, &o);
	*n = 0;
	if (*open_rc < 0) {
		snprintf(msg, len, "%s", g_log);
		return *open_rc;
	}
	walrec_event_t ev;
	int rc;
	while ((rc = walrec_reader_next(r, &ev)) == 1) {
		check_event(&ev, ev.event_id);
		(*n)++;
	}
	walrec_reader_last_error(r, msg, len);
	if (skipped)
		*skipped = walrec_reader_skipped(r);
	walrec_reader_close(r);
	return rc;
}

START_TEST(test_reader_flip_anywhere)
{
	/*
	 * Seeded positions over every byte of the data of the hot segments
	 * and every byte of the cold files: strict reading fails and names
	 * the file (and, in a hot block, the block); tolerant reading of a hot
	 * file skips exactly the damaged block, counted once.
	 */
	char *dir = copy_log(NULL);
	struct flip_file ff[64];
	size_t nf = flip_files(dir, ff, 64);
	uint64_t hot_bytes = 0, cold_bytes = 0;
	for (size_t i = 0; i < nf; i++)
		*(ff[i].cold ? &cold_bytes : &hot_bytes) += ff[i].data_end;
	ck_assert_uint_gt(hot_bytes, 0);
	ck_assert_uint_gt(cold_bytes, 0);
	walrec_log_set_handler(capture_log, NULL, WALREC_LOG_ERROR);
	uint64_t seed = wr_test_env_u64("WALREC_TEST_SEED", 0x5eedf11bull);
	const uint64_t seed0 = seed;
	for (int k = 0; k < 48; k++) {
		bool cold = k % 3 == 2;
		uint64_t at = wr_test_rand(&seed) % (cold ? cold_bytes : hot_bytes);
		size_t fi = 0;
		for (; fi < nf; fi++) {
			if (ff[fi].cold != cold)
				continue;
			if (at < ff[fi].data_end)
				break;
			at -= ff[fi].data_end;
		}
		ck_assert_uint_lt(fi, nf);
		const struct flip_file *f = &ff[fi];
		uint8_t mask = (uint8_t)(1u << (wr_test_rand(&seed) % 8));
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, f->name);
		size_t before_len = 0;
		uint8_t *before = cold ? decode_file(path, &before_len) : NULL;
		flip_byte(dir, f->name, at, mask);

		uint64_t n, skipped;
		int orc;
		char msg[512];
		int rc = read_all(dir, false, WALREC_READER_DEFAULT_PRELOAD, &n, NULL, msg,
				  sizeof msg, &orc);
		if (cold && rc == 0) {
			/*
			 * LZ4 can carry one content in more than one way (a match
			 * offset into a run of zeros): the flip is harmless only if
			 * the file still decodes, checksum and all, to the same bytes.
			 */
			size_t after_len = 0;
			uint8_t *after = decode_file(path, &after_len);
			ck_assert_msg(after && after_len == before_len &&
					      memcmp(after, before, before_len) == 0,
				      "%s+%llu: content changed, strict read did not fail",
				      f->name, (unsigned long long)at);
			free(after);
			free(before);
			flip_byte(dir, f->name, at, mask);
			continue;
		}
		free(before);
		ck_assert_msg(rc < 0, "seed %llx: %s+%llu: strict read gave %d after %llu events",
			      (unsigned long long)seed0, f->name, (unsigned long long)at, rc,
			      (unsigned long long)n);
		ck_assert_msg(strstr(msg, f->name), "%s+%llu: '%s'", f->name,
			      (unsigned long long)at, msg);
		if (!cold && at >= WR_SEGMENT_HEADER_SIZE) {
			uint32_t b = (uint32_t)((at - WR_SEGMENT_HEADER_SIZE) / WR_BLOCK_SIZE);
			char want[32];
			snprintf(want, sizeof want, "block %u:", b);
			ck_assert_msg(strstr(msg, want), "%s+%llu: '%s'", f->name,
				      (unsigned long long)at, msg);
			/* Everything before the damaged block, nothing after it. */
			ck_assert_uint_eq(n, f->blocks[b].first_event_id - 1);

			rc = read_all(dir, true, WALREC_READER_DEFAULT_PRELOAD, &n, &skipped, msg,
				      sizeof msg, &orc);
			ck_assert_int_eq(rc, 0);
			ck_assert_uint_eq(skipped, 1);
			ck_assert_uint_eq(n, g_n - f->blocks[b].event_count);
			ck_assert_msg(strstr(msg, f->name) && strstr(msg, want), "%s", msg);
		}
		flip_byte(dir, f->name, at, mask);
	}
	walrec_log_set_handler(NULL, NULL, WALREC_LOG_WARN);
	for (size_t i = 0; i < nf; i++)
		free(ff[i].blocks);
	wr_test_rmtree(dir);
	free(dir);
}
END_TEST

/* ---- the preloader: damaged segments ahead of the reader ---------------------- */

/* Wait (at most 5 s) until the preloader has a segment ready after the current one. */
static void
wait_ready(walrec_reader_t *r)
{
	walrec_reader_stats_t st;
	for (int i = 0; i < 5000; i++) {
		walrec_reader_stats(r, &st);
		if (st.ready_ahead > 0)
			return;
		usleep(1000);
	}
}

/* What a whole read gives: events, final code, message, skips. */
struct read_result {
	uint64_t n, skipped, first_missing;
	int rc, open_rc;
	char msg[512];
	walrec_reader_stats_t st;
};

/* Last id of each segment of the shared log, for pacing at the crossings. */
static uint64_t *
segment_lasts(size_t *n)
{
	struct wr_wal_dir d;
	ck_assert_int_eq(wr_wal_dir_scan(&d, g_dir, 0, NULL, NULL), 0);
	uint64_t *v = calloc(d.nsegments + 1, sizeof *v);
	for (size_t i = 0; i < d.nsegments; i++)
		v[i] = d.segments[i].last_event_id;
	*n = d.nsegments;
	wr_wal_dir_free(&d);
	return v;
}

/*
 * A whole read of dir. With preload, the reader waits at the end of each
 * segment until the preloader has the next one ready (a consumer slower
 * than the preloader), so the next segments come from the thread.
 */
static void
read_result(const char *dir, bool tolerant, uint32_t preload, struct read_result *out)
{
	size_t nlast;
	uint64_t *lasts = segment_lasts(&nlast);
	size_t seg = 0;
	memset(out, 0, sizeof *out);
	walrec_reader_options_t o;
	walrec_reader_options_init(&o);
	o.tolerant = tolerant;
	o.preload = preload;
	walrec_reader_t *r = NULL;
	out->open_rc = walrec_reader_open(&r, dir, &o);
	ck_assert_int_eq(out->open_rc, 0);
	walrec_event_t ev;
	uint64_t want = 1;
	while ((out->rc = walrec_reader_next(r, &ev)) == 1) {
		check_event(&ev, ev.event_id);
		if (ev.event_id != want && out->first_missing == 0)
			out->first_missing = want;
		want = ev.event_id + 1;
		out->n++;
		while (seg < nlast && ev.event_id >= lasts[seg])
			seg++;
		if (preload && seg > 0 && seg < nlast && ev.event_id == lasts[seg - 1])
			wait_ready(r);
	}
	free(lasts);
	walrec_reader_last_error(r, out->msg, sizeof out->msg);
	out->skipped = walrec_reader_skipped(r);
	walrec_reader_stats(r, &out->st);
	walrec_reader_close(r);
}

START_TEST(test_reader_preload_damaged_next)
{
	/*
	 * Damage in the segments the preloader verifies ahead (a block in a
	 * hot one, the LZ4 stream of a cold one, a file removed after open):
	 * the error surfaces at the same event, with the same message, as
	 * when the reader opens each segment itself.
	 */
	struct wr_wal_dir d;
	ck_assert_int_eq(wr_wal_dir_scan(&d, g_dir, 0, NULL, NULL), 0);
	size_t nseg = d.nsegments;
	char hot_name[256], cold_name[256], gone_name[256];
	snprintf(cold_name, sizeof cold_name, "%s", d.segments[2].name);
	snprintf(gone_name, sizeof gone_name, "%s", d.segments[5].name);
	snprintf(hot_name, sizeof hot_name, "%s", d.segments[nseg - 2].name);
	ck_assert(d.segments[2].cold && d.segments[5].cold && !d.segments[nseg - 2].cold);
	uint64_t gone_first = d.segments[5].first_event_id;
	uint64_t gone_last = d.segments[5].last_event_id;
	wr_wal_dir_free(&d);

	for (int kind = 0; kind < 3; kind++) {
		char *dir = copy_log(NULL);
		char path[4096];
		if (kind == 0) {
			/* A hot segment, block 3: an event byte. */
			snprintf(path, sizeof path, "%s/%s", dir, hot_name);
			flip_byte(dir, hot_name,
				  wr_block_offset(3) + WR_BLOCK_HEADER_SIZE + 5 * WR_EVENT_SIZE + 9, 0x40);
		} else if (kind == 1) {
			/* A cold segment: a byte in the middle of the compressed stream. */
			snprintf(path, sizeof path, "%s/%s", dir, cold_name);
			long long size = wr_test_file_size(path);
			flip_byte(dir, cold_name, (uint64_t)size / 2, 0x08);
		}
		struct read_result a[2], b[2];
		for (int tol = 0; tol < 2; tol++) {
			if (kind == 2) {
				/* Removed after open: the reader was told it exists. */
				walrec_reader_options_t o;
				walrec_reader_options_init(&o);
				o.tolerant = tol;
				for (int pre = 0; pre < 2; pre++) {
					o.preload = pre ? 2 : 0;
					walrec_reader_t *r;
					char *dd = copy_log(NULL);
					ck_assert_int_eq(walrec_reader_open(&r, dd, &o), 0);
					snprintf(path, sizeof path, "%s/%s", dd, gone_name);
					ck_assert_int_eq(unlink(path), 0);
					struct read_result *res = pre ? &b[tol] : &a[tol];
					memset(res, 0, sizeof *res);
					walrec_event_t ev;
					size_t nlast, seg = 0;
					uint64_t *lasts = segment_lasts(&nlast);
					while ((res->rc = walrec_reader_next(r, &ev)) == 1) {
						res->n++;
						while (seg < nlast && ev.event_id >= lasts[seg])
							seg++;
						if (pre && seg > 0 && seg < nlast &&
						    ev.event_id == lasts[seg - 1])
							wait_ready(r);
					}
					free(lasts);
					walrec_reader_last_error(r, res->msg, sizeof res->msg);
					walrec_reader_stats(r, &res->st);
					walrec_reader_close(r);
					wr_test_rmtree(dd);
					free(dd);
				}
				continue;
			}
			read_result(dir, tol, 0, &a[tol]);
			read_result(dir, tol, 2, &b[tol]);
		}
		for (int tol = 0; tol < 2; tol++) {
			ck_assert_int_eq(a[tol].rc, b[tol].rc);
			ck_assert_uint_eq(a[tol].n, b[tol].n);
			/* The same message, up to the directory (each run had its own copy). */
			const char *ma = strrchr(a[tol].msg, '/'), *mb = strrchr(b[tol].msg, '/');
			ck_assert_ptr_nonnull(ma);
			ck_assert_ptr_nonnull(mb);
			ck_assert_str_eq(ma, mb);
			ck_assert_uint_eq(a[tol].st.skipped_blocks, b[tol].st.skipped_blocks);
			ck_assert_uint_eq(a[tol].st.skipped_segments, b[tol].st.skipped_segments);
			ck_assert_uint_eq(a[tol].st.preloaded, 0);
		}
		const char *name = kind == 0 ? hot_name : kind == 1 ? cold_name : gone_name;
		/* Strict: an error naming the file; tolerant: read to the end. */
		ck_assert_int_lt(a[0].rc, 0);
		ck_assert_msg(strstr(a[0].msg, name), "%s", a[0].msg);
		ck_assert_int_eq(a[1].rc, 0);
		ck_assert_msg(strstr(a[1].msg, name), "%s", a[1].msg);
		/* The damaged segment was verified ahead by the thread, not by the reader. */
		ck_assert_msg(b[0].st.preloaded > 0, "kind %d: nothing came preloaded", kind);
		if (kind == 0) {
			ck_assert_msg(strstr(a[0].msg, "block 3:"), "%s", a[0].msg);
			ck_assert_uint_eq(a[1].st.skipped_blocks, 1);
			ck_assert_uint_eq(a[1].n, g_n - WR_EVENTS_PER_BLOCK);
		} else if (kind == 2) {
			ck_assert_int_eq(a[0].rc, -ENOENT);
			ck_assert_uint_eq(a[0].n, gone_first - 1);
			ck_assert_uint_eq(a[1].st.skipped_segments, 1);
			ck_assert_uint_eq(a[1].n, g_n - (gone_last - gone_first + 1));
		}
		wr_test_rmtree(dir);
		free(dir);
	}
}
END_TEST

START_TEST(test_reader_round_trip_preload)
{
	/* Every preload depth, and a follower on a finished log, return the same bytes. */
	for (uint32_t pre = 0; pre <= WALREC_READER_MAX_PRELOAD + 1; pre++) {
		walrec_reader_options_t o;
		walrec_reader_options_init(&o);
		o.preload = pre;
		o.follow = pre == WALREC_READER_MAX_PRELOAD;
		if (pre == WALREC_READER_MAX_PRELOAD + 1) {
			walrec_reader_t *r = (walrec_reader_t *)1;
			ck_assert_int_eq(walrec_reader_open(&r, g_dir, &o), -EINVAL);
			ck_assert_ptr_null(r);
			break;
		}
		walrec_reader_t *r;
		ck_assert_int_eq(walrec_reader_open(&r, g_dir, &o), 0);
		walrec_event_t ev;
		uint64_t id = 0;
		int rc;
		size_t nlast, seg = 0;
		uint64_t *lasts = segment_lasts(&nlast);
		while ((rc = walrec_reader_next(r, &ev)) == 1) {
			check_event(&ev, ++id);
			/* Half the depths wait at the crossings: the next segment comes preloaded. */
			while (seg < nlast && ev.event_id >= lasts[seg])
				seg++;
			if (pre % 2 && seg > 0 && seg < nlast && ev.event_id == lasts[seg - 1])
				wait_ready(r);
		}
		free(lasts);
		ck_assert_int_eq(rc, 0);
		ck_assert_uint_eq(id, g_n);
		walrec_reader_stats_t st;
		walrec_reader_stats(r, &st);
		if (pre == 0)
			ck_assert_uint_eq(st.preloaded, 0);
		else if (pre % 2)
			ck_assert_uint_gt(st.preloaded, 0);
		walrec_reader_close(r);
	}
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
/* The lowest-numbered hot segment file in dir ("" when none). */
static void
lowest_hot(const char *dir, char *name, size_t n)
{
	name[0] = '\0';
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	uint32_t best = UINT32_MAX;
	while ((e = readdir(d)) != NULL) {
		uint32_t idx;
		bool cold;
		if (wr_segment_name_parse(e->d_name, &idx, &cold) == 1 && !cold && idx < best) {
			best = idx;
			snprintf(name, n, "%s", e->d_name);
		}
	}
	closedir(d);
}

/*
 * stall_at > 0: after that many events, wait until the hot segment being
 * read has been compressed and removed under the follower, then go on.
 */
static pid_t
spawn_follower(const char *dir, int ready_fd, uint64_t timeout_s, uint64_t ntags,
	       uint64_t per_tag, uint64_t min_attaches, uint64_t stall_at)
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
			if (total == stall_at) {
				char held[256], now[256];
				lowest_hot(dir, held, sizeof held);
				/* Up to 60 s: under valgrind on a busy machine the
				 * recorder needs tens of seconds to get there. */
				for (int i = 0; i < 6000 && held[0]; i++) {
					lowest_hot(dir, now, sizeof now);
					if (strcmp(now, held) != 0)
						break;
					usleep(10000);
				}
				lowest_hot(dir, now, sizeof now);
				if (!held[0] || strcmp(now, held) == 0) {
					fprintf(stderr, "follower: %s was not compressed under it\n", held);
					_exit(1);
				}
			}
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

/*
 * A follower that seeks past the end of what is sealed, to id `from`: it
 * must return nothing before that id and then `count` consecutive ids as
 * they are sealed. Exit 0, or 1 with the reason on stderr.
 */
static pid_t
spawn_seeker(const char *dir, int ready_fd, uint64_t from, uint64_t count)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid > 0)
		return pid;
	walrec_reader_options_t o;
	walrec_reader_options_init(&o);
	o.follow = true;
	walrec_reader_t *r;
	if (walrec_reader_open(&r, dir, &o) != 0 || walrec_reader_seek(r, from) != 0)
		_exit(3);
	walrec_event_t ev;
	if (walrec_reader_next(r, &ev) != 0) {
		fprintf(stderr, "seeker: an event before it was sealed (%llu)\n",
			(unsigned long long)ev.event_id);
		_exit(1);
	}
	if (write(ready_fd, "s", 1) != 1)
		_exit(3);
	uint64_t want = from, deadline = wr_clock_now_ns() + 30000000000ull;
	while (want < from + count) {
		int rc = walrec_reader_next(r, &ev);
		if (rc == 1) {
			if (ev.event_id != want) {
				fprintf(stderr, "seeker: id %llu, expected %llu\n",
					(unsigned long long)ev.event_id, (unsigned long long)want);
				_exit(1);
			}
			want++;
			continue;
		}
		if (rc < 0 || wr_clock_now_ns() > deadline) {
			fprintf(stderr, "seeker: %d at %llu\n", rc, (unsigned long long)want);
			_exit(1);
		}
		walrec_reader_wait(r, 200000000);
	}
	walrec_reader_close(r);
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
		/* Mapped only once its magic is there (it is stored last at creation). */
		uint64_t magic = 0;
		int pfd = open(path, O_RDONLY);
		if (pfd >= 0) {
			if (pread(pfd, &magic, sizeof magic, 0) != (ssize_t)sizeof magic)
				magic = 0;
			close(pfd);
		}
		if (magic == WR_CHAN_MAGIC && wr_chan_map_open(&m, chan, &fd, false) == 0) {
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

	/* Started before any producer; the segment it reads turns cold under it. */
	pid_t f1 = spawn_follower(dir, pfd[1], 80, FOLLOW_TAGS, FOLLOW_PER_TAG, 1, 1000);
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
	pid_t f2 = spawn_follower(dir, pfd[1], 80, FOLLOW_TAGS, FOLLOW_PER_TAG, 1, 0);
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
	pid_t f = spawn_follower(dir, pfd[1], 30, 2, 5000, 2, 0);
	char c;
	ck_assert_int_eq(read(pfd[0], &c, 1), 1);
	pid_t p = spawn_producer(chan, 1, 5000);
	ck_assert_int_eq(wait_exit(p), 0);
	/* Ids 1..5000 are in; a follower seeks to 7501, past the end, and waits there. */
	pid_t sk = spawn_seeker(dir, pfd[1], 7501, 2500);
	ck_assert_int_eq(read(pfd[0], &c, 1), 1);
	kill(rec, SIGTERM);
	ck_assert_int_eq(wait_exit(rec), 0);
	ck_assert_int_eq(wr_channel_unlink(chan), 0);
	rec = spawn_recorder(dir, chan);
	wait_running(chan, rec);
	p = spawn_producer(chan, 2, 5000);
	ck_assert_int_eq(wait_exit(p), 0);
	ck_assert_int_eq(wait_exit(f), 0);
	ck_assert_int_eq(wait_exit(sk), 0);
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
	tcase_add_test(tc, test_reader_compressed_while_scanned);
	tcase_add_test(tc, test_reader_round_trip_preload);
	tcase_add_test(tc, test_reader_preload_damaged_next);
	tcase_add_test(tc, test_reader_flip_anywhere);
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
