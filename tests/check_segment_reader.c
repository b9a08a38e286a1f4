/* SPDX-License-Identifier: MIT */
/* SegmentReader: round trips hot and cold, seek, header rules, hostile input. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "recorder/segment_reader.h"
#include "tests/segfile.h"
#include "tests/testutil.h"

static char *tmp;

static void
setup(void)
{
	tmp = wr_test_mkdtemp();
}

static void
teardown(void)
{
	wr_test_rmtree(tmp);
	free(tmp);
	tmp = NULL;
}

static char *
tpath(const char *name)
{
	static char buf[8][4200];
	static int n;
	char *p = buf[n++ % 8];
	snprintf(p, sizeof buf[0], "%s/%s", tmp, name);
	return p;
}

/* Read every event; check each is the expected one for its id and ids follow the spec. */
static int
read_all(struct wr_segment_reader *r, uint64_t first_id, uint64_t step, uint64_t *count)
{
	walrec_event_t ev, want;
	uint64_t n = 0;
	int rc;
	while ((rc = wr_segment_reader_next(r, &ev)) == 1) {
		/* ck_assert costs a write(2) each; only fail through it. */
		if (ev.event_id != first_id + n * step)
			ck_abort_msg("event %llu has id %llu", (unsigned long long)n,
				     (unsigned long long)ev.event_id);
		wr_segfile_event(ev.event_id, &want);
		if (memcmp(&ev, &want, sizeof ev) != 0)
			ck_abort_msg("event %llu differs", (unsigned long long)ev.event_id);
		n++;
	}
	*count = n;
	return rc;
}

static void
check_round_trip(const char *path, const struct wr_segfile_info *info, uint64_t step)
{
	struct wr_segment_reader r;
	ck_assert_int_eq(wr_segment_reader_open(&r, path, 0), 0);
	ck_assert_int_eq(wr_segment_reader_status(&r), 0);
	ck_assert_int_eq(r.report.fault, WR_FAULT_NONE);
	ck_assert_uint_eq(r.valid_blocks, info->blocks);
	ck_assert_uint_eq(r.event_count, info->events);
	ck_assert_uint_eq(r.first_event_id, info->first_id);
	ck_assert_uint_eq(r.last_event_id, info->last_id);
	ck_assert_uint_eq(r.data_size, info->size);
	uint64_t n;
	ck_assert_int_eq(read_all(&r, info->first_id, step, &n), 0);
	ck_assert_uint_eq(n, info->events);
	walrec_event_t ev;
	ck_assert_int_eq(wr_segment_reader_next(&r, &ev), 0); /* the end repeats */
	wr_segment_reader_close(&r);
	wr_segment_reader_close(&r); /* twice is harmless */
}

START_TEST(test_segment_reader_round_trip_hot)
{
	static const uint16_t counts[] = { 256, 1, 100, 256, 255, 7 };
	struct wr_segfile_spec s = { .segment_index = 4, .blocks = 6, .counts = counts,
				     .first_id = 1000 };
	struct wr_segfile_info info;
	ck_assert_int_eq(wr_segfile_write(tpath("00000004.wal"), &s, &info), 0);
	check_round_trip(tpath("00000004.wal"), &info, 1);

	struct wr_segment_reader r;
	ck_assert_int_eq(wr_segment_reader_open(&r, tpath("00000004.wal"), 0), 0);
	ck_assert(!r.cold);
	ck_assert_uint_eq(r.header.segment_index, 4);
	ck_assert_uint_eq(r.report.segment_index, 4);
	ck_assert_uint_eq(r.num_blocks, 16);
	for (uint32_t i = 0; i < 6; i++) {
		ck_assert_uint_eq(r.blocks[i].event_count, counts[i]);
		ck_assert_uint_eq(r.blocks[i].first_event_id, info.block_first[i]);
		ck_assert_uint_eq(r.blocks[i].last_event_id, info.block_last[i]);
	}
	wr_segment_reader_close(&r);
}
END_TEST

START_TEST(test_segment_reader_round_trip_cold)
{
	struct wr_segfile_spec s = { .segment_index = 9, .blocks = 20, .num_blocks = 24,
				     .last_block_events = 3, .first_id = 77, .id_step = 3 };
	struct wr_segfile_info info;
	ck_assert_int_eq(wr_segfile_write(tpath("00000009.wal"), &s, &info), 0);
	/* The library frame (content size declared, content checksum). */
	ck_assert_int_eq(wr_segfile_compress(tpath("00000009.wal"), tpath("00000009.wal.lz4")), 0);
	check_round_trip(tpath("00000009.wal.lz4"), &info, 3);

	/* The lz4 command-line tool's frame (no content size) reads the same. */
	char cmd[9000];
	snprintf(cmd, sizeof cmd, "lz4 -q -f '%s' '%s' 2>/dev/null", tpath("00000009.wal"),
		 tpath("x.00000009.wal.lz4"));
	if (system(cmd) == 0)
		check_round_trip(tpath("x.00000009.wal.lz4"), &info, 3);

	/* Name decides unless a flag says otherwise. */
	struct wr_segment_reader r;
	ck_assert_int_eq(rename(tpath("00000009.wal.lz4"), tpath("renamed.bin")), 0);
	ck_assert_int_eq(wr_segment_reader_open(&r, tpath("renamed.bin"), 0), -WALREC_EFORMAT);
	ck_assert_int_eq(r.report.fault, WR_FAULT_MAGIC);
	ck_assert_int_eq(wr_segment_reader_open(&r, tpath("renamed.bin"), WR_SEGMENT_READER_COLD),
			 0);
	ck_assert(r.cold);
	ck_assert_uint_eq(r.event_count, info.events);
	wr_segment_reader_close(&r);
}
END_TEST

static void
check_seek(const char *path, const struct wr_segfile_info *info, uint64_t step)
{
	struct wr_segment_reader r;
	walrec_event_t ev;
	ck_assert_int_eq(wr_segment_reader_open(&r, path, 0), 0);

	/* Before the first: lands on the first. */
	ck_assert_int_eq(wr_segment_reader_seek(&r, 0), 1);
	ck_assert_int_eq(wr_segment_reader_next(&r, &ev), 1);
	ck_assert_uint_eq(ev.event_id, info->first_id);

	/* Every block boundary, forwards and then backwards (cold rewinds). */
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t k = 0; k < info->blocks; k++) {
			uint32_t i = pass ? info->blocks - 1 - k : k;
			ck_assert_int_eq(wr_segment_reader_seek(&r, info->block_first[i]), 1);
			ck_assert_int_eq(wr_segment_reader_next(&r, &ev), 1);
			ck_assert_uint_eq(ev.event_id, info->block_first[i]);
			ck_assert_int_eq(wr_segment_reader_seek(&r, info->block_last[i]), 1);
			ck_assert_int_eq(wr_segment_reader_next(&r, &ev), 1);
			ck_assert_uint_eq(ev.event_id, info->block_last[i]);
			walrec_event_t want;
			wr_segfile_event(ev.event_id, &want);
			ck_assert_mem_eq(&ev, &want, sizeof ev);
			/* The next event crosses into the next block. */
			int rc = wr_segment_reader_next(&r, &ev);
			if (i + 1 < info->blocks) {
				ck_assert_int_eq(rc, 1);
				ck_assert_uint_eq(ev.event_id, info->block_first[i + 1]);
			} else {
				ck_assert_int_eq(rc, 0);
			}
		}
	}

	/* In a gap between ids: the next id after it. */
	if (step > 1) {
		ck_assert_int_eq(wr_segment_reader_seek(&r, info->first_id + 1), 1);
		ck_assert_int_eq(wr_segment_reader_next(&r, &ev), 1);
		ck_assert_uint_eq(ev.event_id, info->first_id + step);
	}

	/* The last, then past the end. */
	ck_assert_int_eq(wr_segment_reader_seek(&r, info->last_id), 1);
	ck_assert_int_eq(wr_segment_reader_next(&r, &ev), 1);
	ck_assert_uint_eq(ev.event_id, info->last_id);
	ck_assert_int_eq(wr_segment_reader_next(&r, &ev), 0);
	ck_assert_int_eq(wr_segment_reader_seek(&r, info->last_id + 1), 0);
	ck_assert_int_eq(wr_segment_reader_next(&r, &ev), 0);
	ck_assert_int_eq(wr_segment_reader_seek(&r, UINT64_MAX), 0);
	ck_assert_int_eq(wr_segment_reader_next(&r, &ev), 0);

	/* Seek back to the start and count everything again. */
	ck_assert_int_eq(wr_segment_reader_seek(&r, 1), 1);
	uint64_t n;
	ck_assert_int_eq(read_all(&r, info->first_id, step, &n), 0);
	ck_assert_uint_eq(n, info->events);
	wr_segment_reader_close(&r);
}

START_TEST(test_segment_reader_seek_hot_and_cold)
{
	static const uint16_t counts[] = { 256, 3, 256, 1, 128, 256, 200 };
	struct wr_segfile_spec s = { .segment_index = 1, .blocks = 7, .counts = counts,
				     .first_id = 10, .id_step = 2 };
	struct wr_segfile_info info;
	ck_assert_int_eq(wr_segfile_write(tpath("00000001.wal"), &s, &info), 0);
	check_seek(tpath("00000001.wal"), &info, 2);
	ck_assert_int_eq(wr_segfile_compress(tpath("00000001.wal"), tpath("00000001.wal.lz4")), 0);
	check_seek(tpath("00000001.wal.lz4"), &info, 2);
}
END_TEST

START_TEST(test_segment_reader_empty_segment)
{
	/* A fresh segment (header only) and a closed empty one: no events, valid. */
	for (int closed = 0; closed < 2; closed++) {
		struct wr_segfile_spec s = { .segment_index = 2,
					     .header = closed ? WR_SEGFILE_CLOSED : WR_SEGFILE_ACTIVE };
		ck_assert_int_eq(wr_segfile_write(tpath("00000002.wal"), &s, NULL), 0);
		struct wr_segment_reader r;
		walrec_event_t ev;
		ck_assert_int_eq(wr_segment_reader_open(&r, tpath("00000002.wal"), 0), 0);
		ck_assert_int_eq(wr_segment_reader_status(&r), 0);
		ck_assert_uint_eq(r.valid_blocks, 0);
		ck_assert_int_eq(wr_segment_reader_next(&r, &ev), 0);
		ck_assert_int_eq(wr_segment_reader_seek(&r, 5), 0);
		wr_segment_reader_close(&r);
	}
}
END_TEST

START_TEST(test_segment_reader_closed_partial_last_block)
{
	struct wr_segfile_spec s = { .segment_index = 3, .blocks = 4, .last_block_events = 17 };
	struct wr_segfile_info info;
	ck_assert_int_eq(wr_segfile_write(tpath("00000003.wal"), &s, &info), 0);
	ck_assert_uint_eq(info.events, 3 * 256 + 17);
	check_round_trip(tpath("00000003.wal"), &info, 1);
}
END_TEST

START_TEST(test_segment_reader_crash_active_header)
{
	/* Active header with zero counts, sealed blocks, then an unsealed torn block. */
	struct wr_segfile_spec s = { .segment_index = 5, .blocks = 3, .last_block_events = 40,
				     .header = WR_SEGFILE_ACTIVE, .torn_events = 90 };
	struct wr_segfile_info info;
	ck_assert_int_eq(wr_segfile_write(tpath("00000005.wal"), &s, &info), 0);
	check_round_trip(tpath("00000005.wal"), &info, 1);
	ck_assert_int_eq(wr_segfile_compress(tpath("00000005.wal"), tpath("00000005.wal.lz4")), 0);
	check_round_trip(tpath("00000005.wal.lz4"), &info, 1);
}
END_TEST

/* Rewrite the header of path with one field changed, checksum fixed. */
static void
patch_header(const char *path, int field, uint64_t value)
{
	size_t len;
	uint8_t *buf = wr_test_read_file(path, &len);
	ck_assert_ptr_nonnull(buf);
	struct wr_segment_header h;
	memcpy(&h, buf, sizeof h);
	switch (field) {
	case 0: h.block_count = (uint32_t)value; break;
	case 1: h.event_count = (uint32_t)value; break;
	case 2: h.first_event_id = value; break;
	case 3: h.last_event_id = value; break;
	case 4: h.last_chained_checksum = value; break;
	case 5: h.closed_ts_ns = value; break;
	case 6: h.segment_index = (uint32_t)value; break;
	}
	wr_segment_header_finalize(&h);
	memcpy(buf, &h, sizeof h);
	ck_assert_int_eq(wr_test_write_file(path, buf, len), 0);
	free(buf);
}

START_TEST(test_segment_reader_closed_counts_disagree)
{
	const char *p = tpath("00000006.wal");
	for (int field = 0; field < 5; field++) {
		struct wr_segfile_spec s = { .segment_index = 6, .blocks = 3, .last_block_events = 9 };
		struct wr_segfile_info info;
		ck_assert_int_eq(wr_segfile_write(p, &s, &info), 0);
		patch_header(p, field, field == 0 ? 2 : 12345);
		struct wr_segment_reader r;
		ck_assert_int_eq(wr_segment_reader_open(&r, p, 0), 0);
		ck_assert_int_eq(wr_segment_reader_status(&r), -WALREC_ECORRUPT);
		ck_assert_int_eq(r.report.fault, WR_FAULT_COUNTS);
		ck_assert_int_eq(r.report.block_index, WR_REPORT_SEGMENT);
		ck_assert_uint_eq(r.report.segment_index, 6);
		ck_assert_ptr_nonnull(strstr(r.report.message, "disagree"));
		/* The blocks are fine: their events come first, then the fault. */
		uint64_t n;
		ck_assert_int_eq(read_all(&r, 1, 1, &n), -WALREC_ECORRUPT);
		ck_assert_uint_eq(n, info.events);
		wr_segment_reader_close(&r);
	}
	/* An active header's counts are not trusted, so they are not checked. */
	struct wr_segfile_spec s = { .segment_index = 6, .blocks = 3, .header = WR_SEGFILE_ACTIVE };
	ck_assert_int_eq(wr_segfile_write(p, &s, NULL), 0);
	patch_header(p, 0, 99);
	struct wr_segment_reader r;
	ck_assert_int_eq(wr_segment_reader_open(&r, p, 0), 0);
	ck_assert_int_eq(wr_segment_reader_status(&r), 0);
	wr_segment_reader_close(&r);
}
END_TEST

START_TEST(test_segment_reader_bad_block_strict)
{
	const char *p = tpath("00000007.wal");
	struct wr_segfile_spec s = { .segment_index = 7, .blocks = 5 };
	struct wr_segfile_info info;
	ck_assert_int_eq(wr_segfile_write(p, &s, &info), 0);
	size_t len;
	uint8_t *buf = wr_test_read_file(p, &len);
	buf[wr_block_offset(2) + 64 + 100] ^= 1; /* a payload byte of block 2 */
	ck_assert_int_eq(wr_test_write_file(p, buf, len), 0);
	ck_assert_int_eq(wr_segfile_compress(p, tpath("00000007.wal.lz4")), 0);
	free(buf);

	const char *paths[] = { p, tpath("00000007.wal.lz4") };
	for (int k = 0; k < 2; k++) {
		struct wr_segment_reader r;
		ck_assert_int_eq(wr_segment_reader_open(&r, paths[k], 0), 0);
		ck_assert_int_eq(wr_segment_reader_status(&r), -WALREC_ECORRUPT);
		ck_assert_int_eq(r.report.block_index, 2);
		ck_assert_int_eq(r.report.fault, WR_FAULT_BLOCK_CHECKSUM);
		ck_assert_uint_eq(r.report.offset, wr_block_offset(2));
		ck_assert_uint_eq(r.valid_blocks, 2);
		uint64_t n;
		ck_assert_int_eq(read_all(&r, 1, 1, &n), -WALREC_ECORRUPT);
		ck_assert_uint_eq(n, 512);
		walrec_event_t ev;
		ck_assert_int_eq(wr_segment_reader_next(&r, &ev), -WALREC_ECORRUPT);
		/* Seeking into the bad part ends at the fault too. */
		ck_assert_int_eq(wr_segment_reader_seek(&r, 600), 0);
		ck_assert_int_eq(wr_segment_reader_next(&r, &ev), -WALREC_ECORRUPT);
		wr_segment_reader_close(&r);
	}
}
END_TEST

START_TEST(test_segment_reader_truncated_names_block)
{
	const char *p = tpath("00000008.wal");
	struct wr_segfile_spec s = { .segment_index = 8, .blocks = 6 };
	ck_assert_int_eq(wr_segfile_write(p, &s, NULL), 0);
	ck_assert_int_eq(truncate(p, (off_t)(wr_block_offset(3) + 5000)), 0);
	struct wr_segment_reader r;
	ck_assert_int_eq(wr_segment_reader_open(&r, p, 0), 0);
	ck_assert_int_eq(r.report.fault, WR_FAULT_FILE_SIZE);
	ck_assert_int_eq(r.report.block_index, 3);
	uint64_t n;
	ck_assert_int_eq(read_all(&r, 1, 1, &n), -WALREC_ECORRUPT);
	ck_assert_uint_eq(n, 3 * 256);
	wr_segment_reader_close(&r);
}
END_TEST

/* ---- limits: hostile input --------------------------------------------- */

static void
expect_format_error(const char *path, unsigned flags, enum wr_format_fault fault)
{
	struct wr_segment_reader r;
	ck_assert_int_eq(wr_segment_reader_open(&r, path, flags), -WALREC_EFORMAT);
	ck_assert_int_eq(r.report.error, -WALREC_EFORMAT);
	ck_assert_int_eq(r.report.fault, fault);
	ck_assert_int_eq(r.report.block_index, WR_REPORT_SEGMENT);
	ck_assert(r.report.message[0] != '\0');
	wr_segment_reader_close(&r);
}

START_TEST(test_segment_reader_zeros_random_empty)
{
	size_t len = (size_t)wr_segment_size(16);
	uint8_t *buf = calloc(1, len);
	ck_assert_int_eq(wr_test_write_file(tpath("00000001.wal"), buf, len), 0);
	expect_format_error(tpath("00000001.wal"), 0, WR_FAULT_MAGIC);
	ck_assert_int_eq(wr_segfile_compress_buf(buf, len, tpath("00000001.wal.lz4"), 0), 0);
	expect_format_error(tpath("00000001.wal.lz4"), 0, WR_FAULT_MAGIC);
	ck_assert_int_eq(wr_test_write_file(tpath("z.wal.lz4"), buf, len), 0);
	expect_format_error(tpath("z.wal.lz4"), 0, WR_FAULT_MAGIC); /* zeros: no LZ4 frame */

	uint64_t seed = 42;
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)wr_test_rand(&seed);
	ck_assert_int_eq(wr_test_write_file(tpath("00000002.wal"), buf, len), 0);
	expect_format_error(tpath("00000002.wal"), 0, WR_FAULT_MAGIC);
	ck_assert_int_eq(wr_test_write_file(tpath("00000002.wal.lz4"), buf, len), 0);
	expect_format_error(tpath("00000002.wal.lz4"), 0, WR_FAULT_MAGIC);
	ck_assert_int_eq(wr_segfile_compress_buf(buf, len, tpath("r.wal.lz4"), 0), 0);
	expect_format_error(tpath("r.wal.lz4"), 0, WR_FAULT_MAGIC); /* garbage inside a good frame */

	ck_assert_int_eq(wr_test_write_file(tpath("00000003.wal"), "", 0), 0);
	expect_format_error(tpath("00000003.wal"), 0, WR_FAULT_SHORT);
	ck_assert_int_eq(wr_test_write_file(tpath("00000003.wal.lz4"), "", 0), 0);
	expect_format_error(tpath("00000003.wal.lz4"), 0, WR_FAULT_SHORT);
	free(buf);

	struct wr_segment_reader r;
	ck_assert_int_eq(wr_segment_reader_open(&r, tmp, 0), -EISDIR);
	ck_assert_int_eq(wr_segment_reader_open(&r, tpath("missing.wal"), 0), -ENOENT);
	ck_assert_ptr_nonnull(strstr(r.report.message, "open"));
	ck_assert_int_eq(wr_segment_reader_open(&r, tpath("00000003.wal"),
						WR_SEGMENT_READER_COLD | WR_SEGMENT_READER_HOT),
			 -EINVAL);
	ck_assert_int_eq(wr_segment_reader_open(&r, tpath("00000003.wal"), 1u << 7), -EINVAL);
}
END_TEST

START_TEST(test_segment_reader_huge_size)
{
	/* A sparse file larger than the largest segment, with a valid header. */
	const char *p = tpath("00000001.wal");
	struct wr_segfile_spec s = { .segment_index = 1, .blocks = 1 };
	ck_assert_int_eq(wr_segfile_write(p, &s, NULL), 0);
	if (truncate(p, (off_t)wr_segment_size(WR_MAX_BLOCKS) + 1) != 0)
		return; /* file system without sparse files of that size */
	expect_format_error(p, 0, WR_FAULT_FILE_SIZE);
}
END_TEST

START_TEST(test_segment_reader_lz4_lies)
{
	struct wr_segfile_spec s = { .segment_index = 1, .blocks = 3 };
	struct wr_segfile_info info;
	ck_assert_int_eq(wr_segfile_write(tpath("00000001.wal"), &s, &info), 0);
	size_t len;
	uint8_t *buf = wr_test_read_file(tpath("00000001.wal"), &len);

	/*
	 * Declared content size wrong (smaller, larger, huge): LZ4F refuses at
	 * the end. The frame header is patched by hand (the library always
	 * declares the true size): magic(4) FLG BD size(8) HC=XXH32(FLG..size)>>8.
	 */
	ck_assert_int_eq(wr_segfile_compress_buf(buf, len, tpath("t.lz4"), len), 0);
	size_t flen;
	uint8_t *frame = wr_test_read_file(tpath("t.lz4"), &flen);
	ck_assert_int_eq(frame[4] & 0x08, 0x08); /* content size present */
	unsigned long long lies[] = { len - 1, len + 16448, 1ull << 40 };
	for (int i = 0; i < 3; i++) {
		memcpy(frame + 6, &lies[i], 8);
		frame[14] = (uint8_t)(XXH32(frame + 4, 10, 0) >> 8);
		ck_assert_int_eq(wr_test_write_file(tpath("l.wal.lz4"), frame, flen), 0);
		struct wr_segment_reader r;
		ck_assert_int_eq(wr_segment_reader_open(&r, tpath("l.wal.lz4"), 0), 0);
		ck_assert_int_eq(wr_segment_reader_status(&r), -WALREC_ECORRUPT);
		ck_assert(r.report.block_index >= 0);
		ck_assert_ptr_nonnull(strstr(r.report.message, "LZ4"));
		wr_segment_reader_close(&r);
	}

	/* Decompresses to a segment plus some bytes, or a segment minus a block. */
	uint8_t *more = calloc(1, len + 100);
	memcpy(more, buf, len);
	ck_assert_int_eq(wr_segfile_compress_buf(more, len + 100, tpath("m.wal.lz4"), 0), 0);
	ck_assert_int_eq(wr_segfile_compress_buf(buf, len - WR_BLOCK_SIZE, tpath("f.wal.lz4"), 0), 0);
	const char *bad[] = { tpath("m.wal.lz4"), tpath("f.wal.lz4") };
	int64_t block[] = { 16, WR_REPORT_SEGMENT };
	for (int i = 0; i < 2; i++) {
		struct wr_segment_reader r;
		ck_assert_int_eq(wr_segment_reader_open(&r, bad[i], 0), 0);
		ck_assert_int_eq(r.report.fault, WR_FAULT_FILE_SIZE);
		ck_assert_int_eq(r.report.block_index, block[i]);
		uint64_t n;
		ck_assert_int_eq(read_all(&r, 1, 1, &n), -WALREC_ECORRUPT);
		ck_assert_uint_eq(n, info.events);
		wr_segment_reader_close(&r);
	}

	/* Two concatenated frames decode to their concatenation, as lz4 -d does. */
	ck_assert_int_eq(wr_segfile_compress_buf(buf, 1000, tpath("a.lz4"), 0), 0);
	ck_assert_int_eq(wr_segfile_compress_buf(buf + 1000, len - 1000, tpath("b.lz4"), 0), 0);
	size_t la, lb;
	uint8_t *fa = wr_test_read_file(tpath("a.lz4"), &la);
	uint8_t *fb = wr_test_read_file(tpath("b.lz4"), &lb);
	uint8_t *cat = malloc(la + lb);
	memcpy(cat, fa, la);
	memcpy(cat + la, fb, lb);
	ck_assert_int_eq(wr_test_write_file(tpath("c.wal.lz4"), cat, la + lb), 0);
	check_round_trip(tpath("c.wal.lz4"), &info, 1);
	free(fa);
	free(fb);
	free(cat);
	free(more);
	free(frame);
	free(buf);
}
END_TEST

/*
 * One corrupted copy of a segment: the reader must either verify it with
 * exactly the original events, or stop with a fault that names a block (or
 * the header/file) after returning only original events, all of them from
 * blocks before the fault.
 */
enum { OUTCOME_FORMAT, OUTCOME_VALID, OUTCOME_FAULT };

static int
check_corrupted(const char *path, unsigned flags, const struct wr_segfile_info *info,
		bool closed, int iter)
{
	struct wr_segment_reader r;
	int rc = wr_segment_reader_open(&r, path, flags);
	if (rc < 0) {
		ck_assert_msg(rc == -WALREC_EFORMAT, "iter %d: open %d", iter, rc);
		ck_assert_int_eq(r.report.block_index, WR_REPORT_SEGMENT);
		ck_assert(r.report.message[0] != '\0');
		return OUTCOME_FORMAT;
	}
	ck_assert_msg(r.report.block_index >= WR_REPORT_SEGMENT &&
			      r.report.block_index <= (int64_t)WR_MAX_BLOCKS,
		      "iter %d: block %lld", iter, (long long)r.report.block_index);
	ck_assert_uint_le(r.valid_blocks, info->blocks);
	uint64_t n;
	int end = read_all(&r, info->first_id, 1, &n);
	uint64_t prefix = 0;
	for (uint32_t i = 0; i < r.valid_blocks; i++)
		prefix += info->block_events[i];
	ck_assert_uint_eq(n, prefix);
	if (r.report.error == 0) {
		ck_assert_int_eq(end, 0);
		/* A closed header vouches for every block; a crash-style one can end early. */
		if (closed)
			ck_assert_msg(n == info->events, "iter %d: %llu of %llu events", iter,
				      (unsigned long long)n, (unsigned long long)info->events);
	} else {
		ck_assert_int_eq(end, -WALREC_ECORRUPT);
		ck_assert(r.report.message[0] != '\0');
		/*
		 * A bad block is the one after the valid ones; a cut (file size,
		 * LZ4 stream) names the block it cuts, which may lie past the
		 * end of the data.
		 */
		if (r.report.fault == WR_FAULT_FILE_SIZE || r.report.fault == WR_FAULT_SHORT)
			ck_assert(r.report.block_index == WR_REPORT_SEGMENT ||
				  r.report.block_index >= (int64_t)r.valid_blocks);
		else if (r.report.fault != WR_FAULT_COUNTS)
			ck_assert_msg(r.report.block_index == (int64_t)r.valid_blocks,
				      "iter %d: fault at block %lld, %u valid", iter,
				      (long long)r.report.block_index, r.valid_blocks);
	}
	int outcome = r.report.error == 0 ? OUTCOME_VALID : OUTCOME_FAULT;
	wr_segment_reader_close(&r);
	return outcome;
}

static void
corrupt(uint8_t *buf, size_t *len, uint64_t *seed)
{
	uint64_t what = wr_test_rand(seed) % 4;
	size_t at = (size_t)(wr_test_rand(seed) % *len);
	if (what == 0) {
		buf[at] ^= (uint8_t)(1u << (wr_test_rand(seed) % 8));
	} else if (what == 1) {
		*len = at;
	} else {
		size_t n = 1 + (size_t)(wr_test_rand(seed) % 20000);
		if (n > *len - at)
			n = *len - at;
		for (size_t i = 0; i < n; i++)
			buf[at + i] = what == 2 ? 0 : (uint8_t)wr_test_rand(seed);
	}
}

START_TEST(test_segment_reader_hostile_random_corruptions)
{
	/* Real multi-block segments: 6 of 16 blocks used, partial blocks inside. */
	static const uint16_t counts[] = { 256, 100, 256, 3, 256, 77 };
	const char *orig = tpath("orig.wal");
	const char *work = tpath("00000001.wal");
	const char *cold = tpath("00000001.wal.lz4");
	uint64_t seed = 0x5eedf00dull;
	int iter = 0;
	int outcomes[3] = { 0 };
	for (int closed = 0; closed < 2; closed++) {
		struct wr_segfile_spec s = { .segment_index = 1, .blocks = 6, .counts = counts,
					     .header = closed ? WR_SEGFILE_CLOSED : WR_SEGFILE_ACTIVE };
		struct wr_segfile_info info;
		ck_assert_int_eq(wr_segfile_write(orig, &s, &info), 0);
		size_t olen;
		uint8_t *obuf = wr_test_read_file(orig, &olen);
		uint8_t *buf = malloc(olen);

		/* Hot: corrupt the segment bytes. */
		for (int k = 0; k < 600; k++, iter++) {
			size_t len = olen;
			memcpy(buf, obuf, olen);
			int times = 1 + (int)(wr_test_rand(&seed) % 3);
			for (int t = 0; t < times && len > 0; t++)
				corrupt(buf, &len, &seed);
			ck_assert_int_eq(wr_test_write_file(work, buf, len), 0);
			outcomes[check_corrupted(work, 0, &info, closed, iter)]++;
		}

		/* Cold: corrupt the segment before compressing, or the frame itself. */
		ck_assert_int_eq(wr_segfile_compress(orig, cold), 0);
		size_t clen;
		uint8_t *cbuf = wr_test_read_file(cold, &clen);
		uint8_t *cwork = malloc(clen);
		for (int k = 0; k < 200; k++, iter++) {
			if (k % 2 == 0) {
				size_t len = olen;
				memcpy(buf, obuf, olen);
				corrupt(buf, &len, &seed);
				ck_assert_int_eq(wr_segfile_compress_buf(buf, len, cold, 0), 0);
			} else {
				size_t len = clen;
				memcpy(cwork, cbuf, clen);
				corrupt(cwork, &len, &seed);
				ck_assert_int_eq(wr_test_write_file(cold, cwork, len), 0);
			}
			outcomes[check_corrupted(cold, 0, &info, closed, iter)]++;
		}
		free(cwork);
		free(cbuf);
		free(buf);
		free(obuf);
	}
	ck_assert_int_ge(iter, 1000);
	/* The corruptions hit headers, blocks and unused space alike. */
	ck_assert_int_gt(outcomes[OUTCOME_FORMAT], 10);
	ck_assert_int_gt(outcomes[OUTCOME_VALID], 10);
	ck_assert_int_gt(outcomes[OUTCOME_FAULT], 100);
}
END_TEST

START_TEST(test_segment_reader_every_truncation_point)
{
	/* Cut a hot file at every 61st byte and at each block edge +-1. */
	struct wr_segfile_spec s = { .segment_index = 1, .blocks = 3 };
	struct wr_segfile_info info;
	ck_assert_int_eq(wr_segfile_write(tpath("o.wal"), &s, &info), 0);
	size_t len;
	uint8_t *buf = wr_test_read_file(tpath("o.wal"), &len);
	for (size_t cut = 0; cut < wr_block_offset(5); cut += 61) {
		ck_assert_int_eq(wr_test_write_file(tpath("00000001.wal"), buf, cut), 0);
		check_corrupted(tpath("00000001.wal"), 0, &info, true, (int)cut);
	}
	for (uint32_t b = 0; b < 5; b++) {
		for (int d = -1; d <= 1; d++) {
			size_t cut = (size_t)wr_block_offset(b) + (size_t)d;
			ck_assert_int_eq(wr_test_write_file(tpath("00000001.wal"), buf, cut), 0);
			check_corrupted(tpath("00000001.wal"), 0, &info, true, (int)cut);
		}
	}
	free(buf);
}
END_TEST


START_TEST(test_segment_reader_cold_streamed)
{
	/* A cold segment larger than the cache limit: verified as a stream, decoded again to read. */
	static const uint16_t counts[] = { 256, 3, 256, 1, 128, 256, 200 };
	struct wr_segfile_spec s = { .segment_index = 1, .blocks = 7, .counts = counts,
				     .first_id = 10, .id_step = 2 };
	struct wr_segfile_info info;
	ck_assert_int_eq(wr_segfile_write(tpath("00000001.wal"), &s, &info), 0);
	ck_assert_int_eq(wr_segfile_compress(tpath("00000001.wal"), tpath("00000001.wal.lz4")), 0);
	struct wr_segment_reader r;
	ck_assert_int_eq(wr_segment_reader_open(&r, tpath("00000001.wal.lz4"), 0), 0);
	ck_assert_ptr_nonnull(r.map); /* small: decoded into the cache */
	wr_segment_reader_close(&r);
	uint64_t saved = wr_cold_cache_max;
	wr_cold_cache_max = 3 * WR_BLOCK_SIZE;
	ck_assert_int_eq(wr_segment_reader_open(&r, tpath("00000001.wal.lz4"), 0), 0);
	ck_assert_ptr_null(r.map);
	ck_assert_uint_eq(r.valid_blocks, 7);
	wr_segment_reader_close(&r);
	check_round_trip(tpath("00000001.wal.lz4"), &info, 2);
	check_seek(tpath("00000001.wal.lz4"), &info, 2);
	wr_cold_cache_max = saved;
}
END_TEST

START_TEST(test_segment_reader_lazy_limit)
{
	/*
	 * A live segment (active header, 10 blocks sealed so far): a lazy
	 * reader verifies as it reads, never looks at a block at or past the
	 * limit, and takes a never-written block under a limit as "not yet".
	 */
	struct wr_segfile_spec s = { .segment_index = 4, .blocks = 10, .first_id = 1,
				     .header = WR_SEGFILE_ACTIVE };
	struct wr_segfile_info info;
	ck_assert_int_eq(wr_segfile_write(tpath("00000004.wal"), &s, &info), 0);
	struct wr_segment_reader r;
	ck_assert_int_eq(wr_segment_reader_open(&r, tpath("00000004.wal"), WR_SEGMENT_READER_LAZY),
			 0);
	ck_assert_uint_eq(r.valid_blocks, 0); /* nothing walked at open */
	wr_segment_reader_set_limit(&r, 3);
	uint64_t n;
	ck_assert_int_eq(read_all(&r, 1, 1, &n), 0);
	ck_assert_uint_eq(n, 3 * 256);
	ck_assert(!wr_segment_reader_at_end(&r));
	ck_assert_uint_eq(r.walk_next, 3);
	/* Raising the limit lets the walk go on from where it stopped. */
	wr_segment_reader_set_limit(&r, 12);
	walrec_event_t ev;
	for (uint32_t i = 0; i < 7 * 256; i++) {
		ck_assert_int_eq(wr_segment_reader_next(&r, &ev), 1);
		if (ev.event_id != 3 * 256 + 1 + i)
			ck_abort_msg("id %llu", (unsigned long long)ev.event_id);
	}
	/* Block 10 is not written: under a limit that is "not yet", not the end. */
	ck_assert_int_eq(wr_segment_reader_next(&r, &ev), 0);
	ck_assert(!wr_segment_reader_at_end(&r));
	ck_assert_uint_eq(r.walk_next, 10);
	/* Without a limit the never-written block ends the data. */
	wr_segment_reader_set_limit(&r, UINT32_MAX);
	ck_assert_int_eq(wr_segment_reader_next(&r, &ev), 0);
	ck_assert(wr_segment_reader_at_end(&r));
	ck_assert_int_eq(wr_segment_reader_status(&r), 0);
	wr_segment_reader_close(&r);
}
END_TEST

START_TEST(test_segment_reader_lazy_seek_damaged_header)
{
	/*
	 * A seek finds its block from the headers. A damaged header it meets
	 * on the way makes it walk from block 0 instead: strict then reports
	 * that block, tolerant skips it. One it does not meet is not read.
	 */
	struct wr_segfile_spec s = { .segment_index = 2, .blocks = 16, .first_id = 1 };
	struct wr_segfile_info info;
	ck_assert_int_eq(wr_segfile_write(tpath("00000002.wal"), &s, &info), 0);
	size_t len;
	uint8_t *buf = wr_test_read_file(tpath("00000002.wal"), &len);
	ck_assert_ptr_nonnull(buf);
	buf[wr_block_offset(5) + 33] ^= 0x01; /* block 5's header checksum */
	ck_assert_int_eq(wr_test_write_file(tpath("00000002.wal"), buf, len), 0);
	free(buf);
	struct wr_segment_reader r;
	walrec_event_t ev;

	/* Into block 9: the search never looks at block 5. */
	ck_assert_int_eq(wr_segment_reader_open(&r, tpath("00000002.wal"), WR_SEGMENT_READER_LAZY),
			 0);
	ck_assert_int_eq(wr_segment_reader_seek(&r, info.block_first[9] + 7), 1);
	ck_assert_int_eq(wr_segment_reader_next(&r, &ev), 1);
	ck_assert_uint_eq(ev.event_id, info.block_first[9] + 7);
	ck_assert_uint_eq(r.run_start, 9);
	/* Back into block 3: a new run, verified from its own predecessor. */
	ck_assert_int_eq(wr_segment_reader_seek(&r, info.block_first[3]), 1);
	ck_assert_int_eq(wr_segment_reader_next(&r, &ev), 1);
	ck_assert_uint_eq(ev.event_id, info.block_first[3]);
	/* Reading on from there meets block 5. */
	int rc;
	while ((rc = wr_segment_reader_next(&r, &ev)) == 1)
		;
	ck_assert_int_eq(rc, -WALREC_ECORRUPT);
	ck_assert_int_eq(r.report.block_index, 5);
	wr_segment_reader_close(&r);

	/* Into block 6: the search probes block 5 and falls back to the walk from 0. */
	ck_assert_int_eq(wr_segment_reader_open(&r, tpath("00000002.wal"), WR_SEGMENT_READER_LAZY),
			 0);
	ck_assert_int_eq(wr_segment_reader_seek(&r, info.block_first[6]), 0);
	ck_assert_int_eq(wr_segment_reader_next(&r, &ev), -WALREC_ECORRUPT);
	ck_assert_int_eq(r.report.block_index, 5);
	ck_assert_int_eq(r.report.fault, WR_FAULT_HEADER_CHECKSUM);
	wr_segment_reader_close(&r);
	ck_assert_int_eq(wr_segment_reader_open(&r, tpath("00000002.wal"),
						WR_SEGMENT_READER_LAZY | WR_SEGMENT_READER_TOLERANT),
			 0);
	ck_assert_int_eq(wr_segment_reader_seek(&r, info.block_first[6]), 1);
	ck_assert_int_eq(wr_segment_reader_next(&r, &ev), 1);
	ck_assert_uint_eq(ev.event_id, info.block_first[6]);
	ck_assert_uint_eq(r.skipped_blocks, 1);
	ck_assert_uint_eq(r.run_start, 0);
	wr_segment_reader_close(&r);
}
END_TEST

/* The block being copied in: its last byte arrives while the reader waits to look again. */
static char g_heal_path[4200];
static off_t g_heal_off;
static uint8_t g_heal_byte;
static int g_heal_waits;

static void
heal_wait(void)
{
	if (g_heal_waits++ == 1) {
		int fd = open(g_heal_path, O_WRONLY);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(pwrite(fd, &g_heal_byte, 1, g_heal_off), 1);
		close(fd);
	}
}

START_TEST(test_segment_reader_inflight_block)
{
	/*
	 * The last block of an active segment, still being copied in by the
	 * recorder's pwrite (here: its last byte arrives during the second
	 * wait), is looked at again and read once complete, instead of being
	 * reported damaged.
	 */
	struct wr_segfile_spec s = { .segment_index = 3, .blocks = 5, .first_id = 1,
				     .header = WR_SEGFILE_ACTIVE };
	struct wr_segfile_info info;
	ck_assert_int_eq(wr_segfile_write(tpath("00000003.wal"), &s, &info), 0);
	snprintf(g_heal_path, sizeof g_heal_path, "%s", tpath("00000003.wal"));
	g_heal_off = (off_t)(wr_block_offset(4) + WR_BLOCK_SIZE - 1);
	int fd = open(g_heal_path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &g_heal_byte, 1, g_heal_off), 1);
	uint8_t torn = (uint8_t)(g_heal_byte ^ 0xff);
	ck_assert_int_eq(pwrite(fd, &torn, 1, g_heal_off), 1);
	close(fd);
	void (*saved)(void) = wr_segment_reader_settle_wait;
	wr_segment_reader_settle_wait = heal_wait;
	g_heal_waits = 0;
	struct wr_segment_reader r;
	ck_assert_int_eq(wr_segment_reader_open(&r, g_heal_path, 0), 0);
	ck_assert_int_eq(g_heal_waits, 2);
	ck_assert_int_eq(wr_segment_reader_status(&r), 0);
	ck_assert_uint_eq(r.valid_blocks, 5);
	ck_assert_uint_eq(r.event_count, info.events);
	wr_segment_reader_close(&r);

	/* Damage that stays is still damage, after the few looks. */
	fd = open(g_heal_path, O_RDWR);
	ck_assert_int_eq(pwrite(fd, &torn, 1, g_heal_off), 1);
	close(fd);
	g_heal_waits = 2; /* no more healing */
	ck_assert_int_eq(wr_segment_reader_open(&r, g_heal_path, 0), 0);
	ck_assert_int_eq(wr_segment_reader_status(&r), -WALREC_ECORRUPT);
	ck_assert_int_eq(r.report.block_index, 4);
	ck_assert_uint_eq(r.valid_blocks, 4);
	wr_segment_reader_close(&r);
	/* Damage before the end is not waited for: the block after it is written. */
	g_heal_waits = 2;
	fd = open(g_heal_path, O_RDWR);
	ck_assert_int_eq(pwrite(fd, &g_heal_byte, 1, g_heal_off), 1);
	off_t mid = (off_t)(wr_block_offset(2) + WR_BLOCK_SIZE - 1);
	uint8_t b;
	ck_assert_int_eq(pread(fd, &b, 1, mid), 1);
	b ^= 0xff;
	ck_assert_int_eq(pwrite(fd, &b, 1, mid), 1);
	close(fd);
	ck_assert_int_eq(wr_segment_reader_open(&r, g_heal_path, 0), 0);
	ck_assert_int_eq(g_heal_waits, 2);
	ck_assert_int_eq(r.report.block_index, 2);
	wr_segment_reader_close(&r);
	wr_segment_reader_settle_wait = saved;
}
END_TEST

static Suite *
segment_reader_suite(void)
{
	Suite *s = suite_create("segment_reader");
	TCase *core = tcase_create("core");
	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_test(core, test_segment_reader_round_trip_hot);
	tcase_add_test(core, test_segment_reader_round_trip_cold);
	tcase_add_test(core, test_segment_reader_seek_hot_and_cold);
	tcase_add_test(core, test_segment_reader_cold_streamed);
	tcase_add_test(core, test_segment_reader_lazy_limit);
	tcase_add_test(core, test_segment_reader_lazy_seek_damaged_header);
	tcase_add_test(core, test_segment_reader_inflight_block);
	tcase_add_test(core, test_segment_reader_empty_segment);
	tcase_add_test(core, test_segment_reader_closed_partial_last_block);
	tcase_add_test(core, test_segment_reader_crash_active_header);
	tcase_add_test(core, test_segment_reader_closed_counts_disagree);
	tcase_add_test(core, test_segment_reader_bad_block_strict);
	tcase_add_test(core, test_segment_reader_truncated_names_block);
	suite_add_tcase(s, core);

	TCase *limits = tcase_create("limits");
	tcase_add_checked_fixture(limits, setup, teardown);
	tcase_set_timeout(limits, 120);
	tcase_add_test(limits, test_segment_reader_zeros_random_empty);
	tcase_add_test(limits, test_segment_reader_huge_size);
	tcase_add_test(limits, test_segment_reader_lz4_lies);
	tcase_add_test(limits, test_segment_reader_hostile_random_corruptions);
	tcase_add_test(limits, test_segment_reader_every_truncation_point);
	suite_add_tcase(s, limits);
	return s;
}

WR_CHECK_MAIN(segment_reader_suite)
