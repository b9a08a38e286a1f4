/* SPDX-License-Identifier: MIT */
/* Format v1: golden vectors, limits, fault detection. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "recorder/format.h"
#include "tests/testutil.h"

static uint64_t
load_u64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

START_TEST(test_format_xxh64_reference_vectors)
{
	/* Published XXH64 vectors: the library in use computes the standard hash. */
	ck_assert_uint_eq(XXH64("", 0, 0), 0xEF46DB3751D8E999ull);
	ck_assert_uint_eq(XXH64("abc", 3, 0), 0x44BC2CF5AD770999ull);
}
END_TEST

START_TEST(test_format_segment_header_golden)
{
	struct wr_segment_header h;
	wr_segment_header_init(&h, 7, 1700000000000000000ull);
	h.block_count = 2;
	h.event_count = 300;
	h.first_event_id = 1;
	h.last_event_id = 300;
	h.closed_ts_ns = 1700000001000000000ull;
	h.last_chained_checksum = 0x1122334455667788ull;
	wr_segment_header_finalize(&h);

	const uint8_t *b = (const uint8_t *)&h;
	static const uint8_t expect_head[16] = { 0x53, 0x46, 0x01, 0x40, 0x07, 0, 0, 0,
						 0x02, 0, 0, 0, 0x2c, 0x01, 0, 0 };
	ck_assert_mem_eq(b, expect_head, 16);
	ck_assert_uint_eq(load_u64(b + 16), 1);
	ck_assert_uint_eq(load_u64(b + 24), 300);
	ck_assert_uint_eq(load_u64(b + 32), 1700000000000000000ull);
	ck_assert_uint_eq(load_u64(b + 40), 1700000001000000000ull);
	ck_assert_uint_eq(load_u64(b + 48), 0x9f8112526b03eda6ull);
	ck_assert_uint_eq(load_u64(b + 56), 0x1122334455667788ull);

	struct wr_segment_header out;
	ck_assert_int_eq(wr_segment_header_check(&h, sizeof h, &out), WR_FAULT_NONE);
	ck_assert_uint_eq(out.segment_index, 7);
}
END_TEST

START_TEST(test_format_segment_header_faults)
{
	struct wr_segment_header h;
	wr_segment_header_init(&h, 3, 42);
	ck_assert_int_eq(wr_segment_header_check(&h, 63, NULL), WR_FAULT_SHORT);
	for (size_t i = 0; i < sizeof h; i++) {
		uint8_t buf[64];
		memcpy(buf, &h, 64);
		buf[i] ^= 0x10;
		enum wr_format_fault f = wr_segment_header_check(buf, 64, NULL);
		ck_assert_msg(f != WR_FAULT_NONE, "flip at byte %zu accepted", i);
	}
	uint8_t zeros[64] = { 0 };
	ck_assert_int_eq(wr_segment_header_check(zeros, 64, NULL), WR_FAULT_MAGIC);
}
END_TEST

static struct wr_block *
golden_block(void)
{
	struct wr_block *b = calloc(1, sizeof *b);
	for (int i = 0; i < 3; i++) {
		uint64_t id = 10 + (uint64_t)i;
		b->events[i].event_id = id;
		b->events[i].timestamp_ns = id * 1000;
		for (int j = 0; j < 48; j++)
			b->events[i].payload[j] = (uint8_t)(id + (uint64_t)j);
	}
	return b;
}

START_TEST(test_format_block_golden)
{
	struct wr_block *b = golden_block();
	uint64_t chained = wr_block_finalize(b, 5, 3, 0xABCDEF);
	const uint8_t *h = (const uint8_t *)&b->header;
	ck_assert_uint_eq(load_u64(h + 0), 10);
	ck_assert_uint_eq(load_u64(h + 8), 12);
	ck_assert_uint_eq(load_u64(h + 16), 0x0434068f1a5ffe07ull);
	ck_assert_uint_eq(load_u64(h + 24), 0x323135c7ff696993ull);
	ck_assert_uint_eq(chained, 0x323135c7ff696993ull);
	ck_assert_uint_eq(load_u64(h + 32), 0x5a90a704ca01bfc0ull);
	ck_assert_uint_eq(h[40], 5);
	ck_assert_uint_eq(h[44], 3);
	for (int i = 46; i < 64; i++)
		ck_assert_uint_eq(h[i], 0);

	uint64_t out = 0;
	ck_assert_int_eq(wr_block_verify(b, 5, 0xABCDEF, 9, &out), WR_FAULT_NONE);
	ck_assert_uint_eq(out, 0x323135c7ff696993ull);
	free(b);
}
END_TEST

START_TEST(test_format_block_verify_faults)
{
	struct wr_block *b = golden_block();
	wr_block_finalize(b, 5, 3, 0xABCDEF);

	ck_assert_int_eq(wr_block_verify(b, 6, 0xABCDEF, 9, NULL), WR_FAULT_INDEX);
	ck_assert_int_eq(wr_block_verify(b, 5, 0xABCDEE, 9, NULL), WR_FAULT_CHAINED_CHECKSUM);
	ck_assert_int_eq(wr_block_verify(b, 5, 0xABCDEF, 10, NULL), WR_FAULT_ORDER);

	/* Every byte of header and written events matters. */
	uint8_t *raw = (uint8_t *)b;
	for (size_t i = 0; i < 64 + 3 * 64; i++) {
		raw[i] ^= 0x01;
		ck_assert_msg(wr_block_verify(b, 5, 0xABCDEF, 9, NULL) != WR_FAULT_NONE,
			      "flip at byte %zu accepted", i);
		raw[i] ^= 0x01;
	}
	raw[64 + 3 * 64 + 7] = 1;
	ck_assert_int_eq(wr_block_verify(b, 5, 0xABCDEF, 9, NULL), WR_FAULT_TAIL);
	raw[64 + 3 * 64 + 7] = 0;

	b->events[1].payload[0] ^= 0xff;
	ck_assert_int_eq(wr_block_verify(b, 5, 0xABCDEF, 9, NULL), WR_FAULT_BLOCK_CHECKSUM);

	memset(b, 0, sizeof *b);
	ck_assert_int_eq(wr_block_verify(b, 0, 0, 0, NULL), WR_FAULT_EMPTY);
	free(b);
}
END_TEST

START_TEST(test_format_full_block_and_order)
{
	struct wr_block *b = calloc(1, sizeof *b);
	for (unsigned i = 0; i < WR_EVENTS_PER_BLOCK; i++)
		b->events[i].event_id = 100 + i;
	wr_block_finalize(b, 0, WR_EVENTS_PER_BLOCK, 0);
	ck_assert_int_eq(wr_block_verify(b, 0, 0, 0, NULL), WR_FAULT_NONE);

	/* Swap two ids and re-finalize: checksums fine, order is not. */
	b->events[3].event_id = 105;
	b->events[5].event_id = 103;
	wr_block_finalize(b, 0, WR_EVENTS_PER_BLOCK, 0);
	ck_assert_int_eq(wr_block_verify(b, 0, 0, 0, NULL), WR_FAULT_ORDER);
	free(b);
}
END_TEST

START_TEST(test_format_segment_size_limits)
{
	ck_assert_uint_eq(wr_segment_size(16), 64 + 16 * 16448);
	ck_assert_uint_eq(wr_block_offset(3), 64 + 3 * 16448);
	ck_assert_uint_eq(wr_segment_blocks_for_size(wr_segment_size(16)), 16);
	ck_assert_uint_eq(wr_segment_blocks_for_size(wr_segment_size(524288)), 524288);
	ck_assert_uint_eq(wr_segment_blocks_for_size(wr_segment_size(15)), 0);
	ck_assert_uint_eq(wr_segment_blocks_for_size(wr_segment_size(524289)), 0);
	ck_assert_uint_eq(wr_segment_blocks_for_size(wr_segment_size(20) + 1), 0);
	ck_assert_uint_eq(wr_segment_blocks_for_size(0), 0);
}
END_TEST

START_TEST(test_format_meta_golden)
{
	struct wr_meta_state s = { .segment_index = 3, .offset = 0x4048, .last_event_id = 77 };
	uint8_t buf[16];
	wr_meta_encode(buf, &s);
	static const uint8_t expect[16] = { 0x48, 0x40, 0, 0, 3, 0, 0, 0, 77, 0, 0, 0, 0, 0, 0, 0 };
	ck_assert_mem_eq(buf, expect, 16);
	struct wr_meta_state d;
	wr_meta_decode(buf, &d);
	ck_assert_uint_eq(d.segment_index, 3);
	ck_assert_uint_eq(d.offset, 0x4048);
	ck_assert_uint_eq(d.last_event_id, 77);
}
END_TEST

START_TEST(test_format_segment_names)
{
	uint32_t idx;
	bool cold;
	ck_assert_int_eq(wr_segment_name_parse("00000012.wal", &idx, &cold), 1);
	ck_assert_uint_eq(idx, 12);
	ck_assert(!cold);
	ck_assert_int_eq(wr_segment_name_parse("FS.00000003.wal.lz4", &idx, &cold), 1);
	ck_assert_uint_eq(idx, 3);
	ck_assert(cold);
	ck_assert_int_eq(wr_segment_name_parse("0000012.wal", &idx, &cold), 0);
	ck_assert_int_eq(wr_segment_name_parse("x00000012.wal", &idx, &cold), 0);
	ck_assert_int_eq(wr_segment_name_parse("0000001a.wal", &idx, &cold), 0);
	ck_assert_int_eq(wr_segment_name_parse("00000012.wal.tmp", &idx, &cold), 0);
	ck_assert_int_eq(wr_segment_name_parse("wal.meta", &idx, &cold), 0);

	char name[64];
	ck_assert_int_eq(wr_segment_name(name, sizeof name, NULL, 42, false), 0);
	ck_assert_str_eq(name, "00000042.wal");
	ck_assert_int_eq(wr_segment_name(name, sizeof name, "FS", 42, true), 0);
	ck_assert_str_eq(name, "FS.00000042.wal.lz4");
	ck_assert_int_eq(wr_segment_name(name, 8, NULL, 42, false), -ENAMETOOLONG);
}
END_TEST

static Suite *
format_suite(void)
{
	Suite *s = suite_create("format");
	TCase *core = tcase_create("core");
	tcase_add_test(core, test_format_xxh64_reference_vectors);
	tcase_add_test(core, test_format_segment_header_golden);
	tcase_add_test(core, test_format_block_golden);
	tcase_add_test(core, test_format_full_block_and_order);
	tcase_add_test(core, test_format_meta_golden);
	tcase_add_test(core, test_format_segment_names);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, test_format_segment_header_faults);
	tcase_add_test(limits, test_format_block_verify_faults);
	tcase_add_test(limits, test_format_segment_size_limits);
	suite_add_tcase(s, limits);
	return s;
}

WR_CHECK_MAIN(format_suite)
