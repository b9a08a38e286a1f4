/* SPDX-License-Identifier: MIT */
/* WAL directory scanner: listing, header order, duplicates, gaps, wal.meta. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recorder/wal_dir.h"
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

/* Segment `index` with `blocks` full blocks starting at first_id; returns the last id. */
static uint64_t
mkseg(const char *name, uint32_t index, uint32_t blocks, uint64_t first_id,
      enum wr_segfile_header header)
{
	struct wr_segfile_spec s = { .segment_index = index, .blocks = blocks,
				     .first_id = first_id, .header = header };
	struct wr_segfile_info info;
	ck_assert_int_eq(wr_segfile_write(tpath(name), &s, &info), 0);
	return info.last_id;
}

static size_t
count_kind(const struct wr_wal_dir *d, enum wr_wal_dir_problem_kind kind, bool error)
{
	size_t n = 0;
	for (size_t i = 0; i < d->nproblems; i++)
		n += d->problems[i].kind == kind && d->problems[i].error == error;
	return n;
}

static void
write_meta(uint32_t index, uint32_t offset, uint64_t last_id)
{
	struct wr_meta_state m = { .segment_index = index, .offset = offset,
				   .last_event_id = last_id };
	uint8_t buf[WR_META_SIZE];
	wr_meta_encode(buf, &m);
	ck_assert_int_eq(wr_test_write_file(tpath("wal.meta"), buf, sizeof buf), 0);
}

START_TEST(test_wal_dir_lists_and_orders_by_header)
{
	uint64_t last = mkseg("00000001.wal", 1, 2, 1, WR_SEGFILE_CLOSED);
	/* Named 9 but its header says 2: ordered as 2, reported as a name mismatch. */
	last = mkseg("00000009.wal", 2, 1, last + 1, WR_SEGFILE_CLOSED);
	last = mkseg("00000003.wal", 3, 1, last + 1, WR_SEGFILE_CLOSED);
	ck_assert_int_eq(wr_segfile_compress(tpath("00000003.wal"), tpath("00000003.wal.lz4")), 0);
	ck_assert_int_eq(unlink(tpath("00000003.wal")), 0);
	mkseg("FS.00000004.wal", 4, 1, last + 1, WR_SEGFILE_ACTIVE);
	write_meta(4, (uint32_t)wr_block_offset(1), last + 256);
	ck_assert_int_eq(wr_test_write_file(tpath("notes.txt"), "x", 1), 0);
	ck_assert_int_eq(wr_test_write_file(tpath("00000005.wal.tmp"), "x", 1), 0);
	ck_assert_int_eq(mkdir(tpath("sub"), 0700), 0);

	struct wr_wal_dir d;
	ck_assert_int_eq(wr_wal_dir_scan(&d, tmp, 0, NULL, NULL), 0);
	ck_assert_uint_eq(d.nsegments, 4);
	const uint32_t want[] = { 1, 2, 3, 4 };
	const char *names[] = { "00000001.wal", "00000009.wal", "00000003.wal.lz4",
				"FS.00000004.wal" };
	for (size_t i = 0; i < 4; i++) {
		ck_assert_uint_eq(d.segments[i].segment_index, want[i]);
		ck_assert_str_eq(d.segments[i].name, names[i]);
		ck_assert(d.segments[i].header_ok);
	}
	ck_assert(d.segments[2].cold);
	ck_assert(d.segments[0].ids_known);
	ck_assert(!d.segments[3].ids_known); /* active header, not verified */
	ck_assert(d.has_meta);
	ck_assert_uint_eq(d.meta_size, 16);
	ck_assert_uint_eq(d.nforeign, 3);
	ck_assert_str_eq(d.foreign[0], "00000005.wal.tmp");
	ck_assert_str_eq(d.foreign[1], "notes.txt");
	ck_assert_str_eq(d.foreign[2], "sub");
	ck_assert_uint_eq(d.nproblems, 1);
	ck_assert_int_eq(d.problems[0].kind, WR_WAL_DIR_NAME_MISMATCH);
	ck_assert(!d.problems[0].error);
	ck_assert_uint_eq(wr_wal_dir_errors(&d), 0);

	char msg[256];
	struct wr_meta_state m;
	ck_assert_int_eq(wr_wal_dir_check_meta(&d, &m, msg, sizeof msg), 0);
	ck_assert_uint_eq(m.segment_index, 4);
	wr_wal_dir_free(&d);
	wr_wal_dir_free(&d);
}
END_TEST

START_TEST(test_wal_dir_verify_reads_every_block)
{
	uint64_t last = mkseg("00000001.wal", 1, 2, 1, WR_SEGFILE_ACTIVE);
	mkseg("00000002.wal", 2, 3, last + 1, WR_SEGFILE_ACTIVE);
	/* Corrupt block 1 of segment 2. */
	size_t len;
	uint8_t *buf = wr_test_read_file(tpath("00000002.wal"), &len);
	buf[wr_block_offset(1) + 500] ^= 0x40;
	ck_assert_int_eq(wr_test_write_file(tpath("00000002.wal"), buf, len), 0);
	free(buf);

	struct wr_wal_dir d;
	ck_assert_int_eq(wr_wal_dir_scan(&d, tmp, WR_WAL_DIR_VERIFY, NULL, NULL), 0);
	ck_assert_uint_eq(d.nsegments, 2);
	ck_assert(d.segments[0].verified);
	ck_assert(d.segments[0].ids_known);
	ck_assert_uint_eq(d.segments[0].first_event_id, 1);
	ck_assert_uint_eq(d.segments[0].last_event_id, 512);
	ck_assert_uint_eq(d.segments[0].event_count, 512);
	ck_assert_int_eq(d.segments[0].report.error, 0);
	ck_assert_int_eq(d.segments[1].report.error, -WALREC_ECORRUPT);
	ck_assert_int_eq(d.segments[1].report.block_index, 1);
	ck_assert_uint_eq(d.segments[1].valid_blocks, 1);
	ck_assert_uint_eq(d.nproblems, 0);
	wr_wal_dir_free(&d);
}
END_TEST

static void
count_progress(void *arg, size_t done, size_t total, uint64_t bytes_done, uint64_t bytes_total)
{
	size_t *calls = arg;
	ck_assert_uint_le(done, total);
	ck_assert_uint_le(bytes_done, bytes_total);
	(*calls)++;
}

START_TEST(test_wal_dir_progress_callback)
{
	uint64_t last = mkseg("00000001.wal", 1, 1, 1, WR_SEGFILE_CLOSED);
	mkseg("00000002.wal", 2, 1, last + 1, WR_SEGFILE_CLOSED);
	struct wr_wal_dir d;
	size_t calls = 0;
	ck_assert_int_eq(wr_wal_dir_scan(&d, tmp, WR_WAL_DIR_VERIFY, count_progress, &calls), 0);
	ck_assert_uint_eq(calls, 2);
	wr_wal_dir_free(&d);
}
END_TEST

START_TEST(test_wal_dir_duplicates)
{
	uint64_t last = mkseg("00000001.wal", 1, 1, 1, WR_SEGFILE_CLOSED);
	ck_assert_int_eq(wr_segfile_compress(tpath("00000001.wal"), tpath("00000001.wal.lz4")), 0);
	mkseg("00000002.wal", 2, 1, last + 1, WR_SEGFILE_CLOSED);
	mkseg("X.00000002.wal", 2, 1, last + 1, WR_SEGFILE_CLOSED);

	struct wr_wal_dir d;
	ck_assert_int_eq(wr_wal_dir_scan(&d, tmp, 0, NULL, NULL), 0);
	ck_assert_uint_eq(d.nsegments, 4);
	/* Hot and cold of one index: a warning, the hot file is used. */
	ck_assert_uint_eq(count_kind(&d, WR_WAL_DIR_DUPLICATE, false), 1);
	ck_assert(!d.segments[0].cold && !d.segments[0].duplicate);
	ck_assert(d.segments[1].cold && d.segments[1].duplicate);
	/* Two hot files of one index: an error. */
	ck_assert_uint_eq(count_kind(&d, WR_WAL_DIR_DUPLICATE, true), 1);
	ck_assert_uint_eq(wr_wal_dir_errors(&d), 1);
	ck_assert_uint_eq(count_kind(&d, WR_WAL_DIR_ID_OVERLAP, true), 0);
	wr_wal_dir_free(&d);

	/* A hot file that fails verification loses to its good cold twin. */
	size_t len;
	uint8_t *buf = wr_test_read_file(tpath("00000001.wal"), &len);
	buf[wr_block_offset(0) + 200] ^= 1;
	ck_assert_int_eq(wr_test_write_file(tpath("00000001.wal"), buf, len), 0);
	free(buf);
	ck_assert_int_eq(wr_wal_dir_scan(&d, tmp, WR_WAL_DIR_VERIFY, NULL, NULL), 0);
	ck_assert(d.segments[0].duplicate && !d.segments[0].cold);
	ck_assert(!d.segments[1].duplicate && d.segments[1].cold);
	wr_wal_dir_free(&d);
}
END_TEST

START_TEST(test_wal_dir_index_and_id_gaps)
{
	uint64_t last = mkseg("00000001.wal", 1, 1, 1, WR_SEGFILE_CLOSED);
	last = mkseg("00000002.wal", 2, 1, last + 1, WR_SEGFILE_CLOSED);
	/* Index 3 and 4 missing; ids jump by 10. */
	last = mkseg("00000005.wal", 5, 1, last + 11, WR_SEGFILE_CLOSED);
	/* Ids go backwards: overlap. */
	mkseg("00000006.wal", 6, 1, last - 5, WR_SEGFILE_CLOSED);

	struct wr_wal_dir d;
	ck_assert_int_eq(wr_wal_dir_scan(&d, tmp, 0, NULL, NULL), 0);
	ck_assert_uint_eq(count_kind(&d, WR_WAL_DIR_INDEX_GAP, false), 1);
	ck_assert_uint_eq(count_kind(&d, WR_WAL_DIR_ID_GAP, false), 1);
	ck_assert_uint_eq(count_kind(&d, WR_WAL_DIR_ID_OVERLAP, true), 1);
	ck_assert_uint_eq(wr_wal_dir_errors(&d), 1);
	for (size_t i = 0; i < d.nproblems; i++) {
		if (d.problems[i].kind == WR_WAL_DIR_INDEX_GAP)
			ck_assert_ptr_nonnull(strstr(d.problems[i].message, "segments 3..4 missing"));
		if (d.problems[i].kind == WR_WAL_DIR_ID_OVERLAP)
			ck_assert_uint_eq(d.problems[i].file, 3);
	}
	wr_wal_dir_free(&d);
}
END_TEST

START_TEST(test_wal_dir_bad_headers_and_foreign_only)
{
	for (int i = 0; i < 20; i++) {
		char name[32];
		snprintf(name, sizeof name, "file%02d.dat", i);
		ck_assert_int_eq(wr_test_write_file(tpath(name), "hello", 5), 0);
	}
	struct wr_wal_dir d;
	ck_assert_int_eq(wr_wal_dir_scan(&d, tmp, WR_WAL_DIR_VERIFY, NULL, NULL), 0);
	ck_assert_uint_eq(d.nsegments, 0);
	ck_assert_uint_eq(d.nforeign, 20);
	ck_assert(!d.has_meta);
	char msg[256];
	ck_assert_int_eq(wr_wal_dir_check_meta(&d, NULL, msg, sizeof msg), -ENOENT);
	wr_wal_dir_free(&d);

	/* Segment names holding garbage: listed, header not ok, no cross-file problem. */
	ck_assert_int_eq(wr_test_write_file(tpath("00000001.wal"), "garbage", 7), 0);
	ck_assert_int_eq(wr_test_write_file(tpath("00000002.wal.lz4"), "garbage", 7), 0);
	ck_assert_int_eq(mkdir(tpath("00000003.wal"), 0700), 0);
	for (unsigned flags = 0; flags < 2; flags++) {
		ck_assert_int_eq(wr_wal_dir_scan(&d, tmp, flags, NULL, NULL), 0);
		ck_assert_uint_eq(d.nsegments, 3);
		for (size_t i = 0; i < 3; i++) {
			ck_assert(!d.segments[i].header_ok);
			ck_assert_int_ne(d.segments[i].report.error, 0);
			ck_assert(d.segments[i].report.message[0] != '\0');
		}
		ck_assert_int_eq(d.segments[2].report.error, -EISDIR);
		ck_assert_uint_eq(d.nproblems, 0);
		wr_wal_dir_free(&d);
	}

	ck_assert_int_eq(wr_wal_dir_scan(&d, tpath("00000001.wal"), 0, NULL, NULL), -ENOTDIR);
	wr_wal_dir_free(&d);
	ck_assert_int_eq(wr_wal_dir_scan(&d, tpath("nope"), 0, NULL, NULL), -ENOENT);
	wr_wal_dir_free(&d);
}
END_TEST

START_TEST(test_wal_dir_meta_mismatches)
{
	uint64_t last = mkseg("00000001.wal", 1, 2, 1, WR_SEGFILE_CLOSED);
	struct {
		uint32_t index, offset;
		uint64_t last_id;
		int want;
		const char *phrase;
	} cases[] = {
		{ 1, (uint32_t)wr_block_offset(2), last, 0, NULL },
		{ 1, (uint32_t)wr_block_offset(1), 256, 0, NULL },   /* meta lags: fine */
		{ 1, (uint32_t)wr_block_offset(0), 0, 0, NULL },
		{ 1, (uint32_t)wr_block_offset(1), 255, 1, "ends at id 256" },
		{ 1, (uint32_t)wr_block_offset(1) + 8, 256, 1, "not a block boundary" },
		{ 1, 10, 0, 1, "not a block boundary" },
		{ 1, (uint32_t)wr_block_offset(3), 999, 1, "past the 2 valid blocks" },
		{ 1, (uint32_t)wr_block_offset(17), 999, 1, "past the end" },
		{ 7, (uint32_t)wr_block_offset(1), 256, 1, "segment 7" },
		{ 1, (uint32_t)wr_block_offset(0), 5, 1, "first id is 1" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		write_meta(cases[i].index, cases[i].offset, cases[i].last_id);
		struct wr_wal_dir d;
		ck_assert_int_eq(wr_wal_dir_scan(&d, tmp, 0, NULL, NULL), 0);
		char msg[256];
		int rc = wr_wal_dir_check_meta(&d, NULL, msg, sizeof msg);
		ck_assert_msg(rc == cases[i].want, "case %zu: %d (%s)", i, rc, msg);
		if (cases[i].phrase)
			ck_assert_msg(strstr(msg, cases[i].phrase), "case %zu: %s", i, msg);
		wr_wal_dir_free(&d);
	}
	ck_assert_int_eq(wr_test_write_file(tpath("wal.meta"), "0123456789abcde", 15), 0);
	struct wr_wal_dir d;
	ck_assert_int_eq(wr_wal_dir_scan(&d, tmp, 0, NULL, NULL), 0);
	char msg[256];
	ck_assert_int_eq(wr_wal_dir_check_meta(&d, NULL, msg, sizeof msg), 1);
	ck_assert_ptr_nonnull(strstr(msg, "expected 16"));
	wr_wal_dir_free(&d);
}
END_TEST

static Suite *
wal_dir_suite(void)
{
	Suite *s = suite_create("wal_dir");
	TCase *core = tcase_create("core");
	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_test(core, test_wal_dir_lists_and_orders_by_header);
	tcase_add_test(core, test_wal_dir_verify_reads_every_block);
	tcase_add_test(core, test_wal_dir_progress_callback);
	tcase_add_test(core, test_wal_dir_duplicates);
	tcase_add_test(core, test_wal_dir_index_and_id_gaps);
	tcase_add_test(core, test_wal_dir_meta_mismatches);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_checked_fixture(limits, setup, teardown);
	tcase_add_test(limits, test_wal_dir_bad_headers_and_foreign_only);
	suite_add_tcase(s, limits);
	return s;
}

WR_CHECK_MAIN(wal_dir_suite)
