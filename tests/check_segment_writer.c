/* SPDX-License-Identifier: MIT */
/* SegmentWriter: create, append, seal, finish, recovery, limits and faults. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/sys.h"
#include "recorder/format.h"
#include "recorder/segment_writer.h"
#include "tests/testutil.h"

static char *dir;
static uint64_t rng = 42;
static struct wr_segment_writer_metrics metrics;
static int warnings;
static int errors;

/* Faults are expected here: count the log lines instead of printing them. */
static void
count_log(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)msg;
	if (level == WALREC_LOG_WARN)
		warnings++;
	else if (level == WALREC_LOG_ERROR)
		errors++;
}

static void
setup_dir(void)
{
	dir = wr_test_mkdtemp();
	memset(&metrics, 0, sizeof metrics);
	warnings = 0;
	errors = 0;
	walrec_log_set_handler(count_log, NULL, WALREC_LOG_DEBUG);
}

static void
teardown_dir(void)
{
	wr_sys_reset();
	wr_test_rmtree(dir);
	free(dir);
	dir = NULL;
}

static walrec_event_t
make_event(uint64_t id)
{
	walrec_event_t e;
	e.event_id = id;
	e.timestamp_ns = 1700000000000000000ull + id;
	for (size_t i = 0; i < sizeof e.payload; i += 8) {
		uint64_t r = wr_test_rand(&rng);
		memcpy(e.payload + i, &r, 8);
	}
	return e;
}

static void
seg_path(char *out, size_t n, uint32_t index)
{
	snprintf(out, n, "%s/%08u.wal", dir, index);
}

/* Append ids first..last (inclusive), each must succeed. */
static void
append_range(struct wr_segment_writer *w, uint64_t first, uint64_t last)
{
	for (uint64_t id = first; id <= last; id++) {
		walrec_event_t e = make_event(id);
		ck_assert_int_eq(wr_segment_writer_append(w, &e), 0);
	}
}

/*
 * Walk the blocks of a segment image: every block before the first empty
 * one must verify; returns the number of valid blocks and their totals.
 */
static uint32_t
walk_blocks(const uint8_t *buf, size_t len, uint64_t *events, uint64_t *last_id,
	    uint64_t *last_chained)
{
	uint32_t n = wr_segment_blocks_for_size(len);
	ck_assert_uint_gt(n, 0);
	uint64_t prev = 0, last = 0, ev = 0;
	uint32_t i;
	for (i = 0; i < n; i++) {
		const struct wr_block *b = (const void *)(buf + wr_block_offset(i));
		uint64_t chained;
		enum wr_format_fault f = wr_block_verify(b, i, prev, last, &chained);
		if (f == WR_FAULT_EMPTY)
			break;
		ck_assert_msg(f == WR_FAULT_NONE, "block %u: %s", i, wr_format_fault_str(f));
		last = b->header.last_event_id;
		ev += b->header.event_count;
		prev = chained;
	}
	/* Everything after the data is zero. */
	for (size_t off = wr_block_offset(i); off < len; off++)
		ck_assert_msg(buf[off] == 0, "non-zero byte at %zu after the data", off);
	*events = ev;
	*last_id = last;
	*last_chained = prev;
	return i;
}

/* ---- core ------------------------------------------------------------- */

START_TEST(test_segment_writer_roundtrip)
{
	struct wr_segment_writer w;
	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, NULL, 7, 16, &metrics), 0);
	char path[4096];
	seg_path(path, sizeof path, 7);
	ck_assert_str_eq(w.path, path);
	ck_assert_int_eq(wr_test_file_size(path), (long long)wr_segment_size(16));
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0640);

	/* An active header is valid from the start. */
	struct wr_segment_header h;
	ck_assert_int_eq(wr_segment_header_check(w.base, 64, &h), WR_FAULT_NONE);
	ck_assert_uint_eq(h.segment_index, 7);
	ck_assert_uint_eq(h.closed_ts_ns, 0);
	ck_assert_uint_gt(h.created_ts_ns, 0);

	append_range(&w, 1, 1000); /* 3 full blocks + 232 events */
	ck_assert_uint_eq(w.blocks_sealed, 3);
	ck_assert_uint_eq(wr_load_acquire(&w.sealed_end), wr_block_offset(3));
	ck_assert_uint_eq(wr_load_acquire(&w.sealed_last_id), 768);
	ck_assert_int_eq(wr_segment_writer_sync_sealed(&w), 0);
	wr_segment_writer_finish(&w);
	ck_assert_int_eq(wr_segment_writer_close(&w, true), 0);
	ck_assert_ptr_null(w.base);
	ck_assert_int_eq(wr_segment_writer_close(&w, true), 0); /* second close harmless */

	size_t len;
	uint8_t *buf = wr_test_read_file(path, &len);
	ck_assert_ptr_nonnull(buf);
	uint64_t events, last, chained;
	ck_assert_uint_eq(walk_blocks(buf, len, &events, &last, &chained), 4);
	ck_assert_uint_eq(events, 1000);
	ck_assert_uint_eq(last, 1000);
	const struct wr_block *b3 = (const void *)(buf + wr_block_offset(3));
	ck_assert_uint_eq(b3->header.event_count, 232);
	ck_assert_uint_eq(b3->header.first_event_id, 769);

	ck_assert_int_eq(wr_segment_header_check(buf, len, &h), WR_FAULT_NONE);
	ck_assert_uint_eq(h.segment_index, 7);
	ck_assert_uint_eq(h.block_count, 4);
	ck_assert_uint_eq(h.event_count, 1000);
	ck_assert_uint_eq(h.first_event_id, 1);
	ck_assert_uint_eq(h.last_event_id, 1000);
	ck_assert_uint_ge(h.closed_ts_ns, h.created_ts_ns);
	ck_assert_uint_eq(h.last_chained_checksum, chained);

	/* The stored events are the appended ones. */
	rng = 42;
	for (uint64_t id = 1; id <= 1000; id++) {
		walrec_event_t e = make_event(id);
		uint32_t bi = (uint32_t)((id - 1) / 256), si = (uint32_t)((id - 1) % 256);
		const struct wr_block *b = (const void *)(buf + wr_block_offset(bi));
		ck_assert_int_eq(memcmp(&b->events[si], &e, sizeof e), 0);
	}
	free(buf);

#ifdef WR_TELEMETRY
	ck_assert_uint_eq(metrics.open_new.successes, 1);
	ck_assert_uint_eq(metrics.blocks_sealed.value, 4);
	ck_assert_uint_eq(metrics.partial_blocks_sealed.value, 1);
	ck_assert_uint_eq(metrics.write_block.count, 4);
	ck_assert_uint_eq(metrics.close.successes, 1);
#endif
}
END_TEST

/* The incremental hashes give exactly wr_block_finalize's one-shot header. */
START_TEST(test_segment_writer_incremental_checksums_match_one_shot)
{
	static const uint16_t counts[] = { 256, 1, 255, 256, 17 };
	struct wr_segment_writer w;
	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, "FS", 1, 16, NULL), 0);
	ck_assert_ptr_nonnull(strstr(w.path, "/FS.00000001.wal"));
	struct wr_block *ref = calloc(1, sizeof *ref);
	uint64_t id = 100, prev_chained = 0;
	for (size_t k = 0; k < WR_ARRAY_SIZE(counts); k++) {
		memset(ref, 0, sizeof *ref);
		for (unsigned i = 0; i < counts[k]; i++) {
			ref->events[i] = make_event(id += 3);
			ck_assert_int_eq(wr_segment_writer_append(&w, &ref->events[i]), 0);
		}
		if (counts[k] < WR_EVENTS_PER_BLOCK)
			ck_assert_int_eq(wr_segment_writer_seal(&w), 1);
		prev_chained = wr_block_finalize(ref, (uint32_t)k, counts[k], prev_chained);
		const struct wr_block *got = (const void *)(w.base + wr_block_offset((uint32_t)k));
		ck_assert_int_eq(memcmp(got, ref, sizeof *ref), 0);
		ck_assert_uint_eq(w.prev_chained, prev_chained);
	}
	free(ref);
	ck_assert_int_eq(wr_segment_writer_close(&w, false), 0);
}
END_TEST

START_TEST(test_segment_writer_partial_seal_continues_in_next_block)
{
	struct wr_segment_writer w;
	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, NULL, 0, 16, &metrics), 0);
	ck_assert_int_eq(wr_segment_writer_seal(&w), 0); /* nothing to seal */
	append_range(&w, 1, 10);
	ck_assert_int_eq(wr_segment_writer_seal(&w), 1);
	ck_assert_int_eq(wr_segment_writer_seal(&w), 0);
	ck_assert_uint_eq(w.block_index, 1);
	ck_assert_uint_eq(wr_load_acquire(&w.sealed_end), wr_block_offset(1));
	ck_assert_uint_eq(wr_load_acquire(&w.sealed_last_id), 10);
	ck_assert_int_eq(wr_segment_writer_sync_sealed(&w), 0);
	ck_assert_uint_eq(w.synced_end, wr_block_offset(1));
	ck_assert_int_eq(wr_segment_writer_sync_sealed(&w), 0); /* nothing new */

	append_range(&w, 11, 15);
	const struct wr_block *b0 = (const void *)(w.base + wr_block_offset(0));
	const struct wr_block *b1 = (const void *)(w.base + wr_block_offset(1));
	ck_assert_uint_eq(b0->header.event_count, 10);
	ck_assert_uint_eq(b0->events[10].event_id, 0); /* sealed block untouched */
	ck_assert_uint_eq(b1->events[0].event_id, 11);
	ck_assert_uint_eq(b1->events[4].event_id, 15);
	ck_assert_uint_eq(b1->header.checksum, 0); /* not sealed yet */
	ck_assert_int_eq(wr_segment_writer_close(&w, true), 0);

	char path[4096];
	seg_path(path, sizeof path, 0);
	size_t len;
	uint8_t *buf = wr_test_read_file(path, &len);
	uint64_t events, last, chained;
	ck_assert_uint_eq(walk_blocks(buf, len, &events, &last, &chained), 2);
	ck_assert_uint_eq(events, 15);
	ck_assert_uint_eq(last, 15);
	free(buf);
#ifdef WR_TELEMETRY
	ck_assert_uint_eq(metrics.partial_blocks_sealed.value, 2);
#endif
}
END_TEST

START_TEST(test_segment_writer_order_rejected)
{
	struct wr_segment_writer w;
	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, NULL, 0, 16, NULL), 0);
	walrec_event_t e = make_event(0);
	ck_assert_int_eq(wr_segment_writer_append(&w, &e), -WALREC_EORDER);
	e = make_event(5);
	ck_assert_int_eq(wr_segment_writer_append(&w, &e), 0);
	ck_assert_int_eq(wr_segment_writer_append(&w, &e), -WALREC_EORDER);
	e = make_event(4);
	ck_assert_int_eq(wr_segment_writer_append(&w, &e), -WALREC_EORDER);
	e = make_event(0);
	ck_assert_int_eq(wr_segment_writer_append(&w, &e), -WALREC_EORDER);
	ck_assert_uint_eq(w.block_events, 1);
	const struct wr_block *b0 = (const void *)(w.base + wr_block_offset(0));
	ck_assert_uint_eq(b0->events[1].event_id, 0); /* nothing written */

	/* A caller continuing ids from before sets last_event_id. */
	w.last_event_id = 1000;
	e = make_event(1000);
	ck_assert_int_eq(wr_segment_writer_append(&w, &e), -WALREC_EORDER);
	e = make_event(1001);
	ck_assert_int_eq(wr_segment_writer_append(&w, &e), 0);

	wr_segment_writer_finish(&w);
	e = make_event(2000);
	ck_assert_int_eq(wr_segment_writer_append(&w, &e), -WALREC_ECLOSED);
	ck_assert_int_eq(wr_segment_writer_seal(&w), 0);
	ck_assert_int_eq(wr_segment_writer_close(&w, false), 0);

	struct wr_segment_writer zero;
	memset(&zero, 0, sizeof zero);
	ck_assert_int_eq(wr_segment_writer_close(&zero, true), 0);
}
END_TEST

/* ---- limits ------------------------------------------------------------ */

START_TEST(test_segment_writer_full_segment_enospc)
{
	struct wr_segment_writer w;
	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, NULL, 3, 16, NULL), 0);
	/* 15 partial blocks of one event, then one full block. */
	uint64_t id = 1;
	for (int i = 0; i < 15; i++) {
		append_range(&w, id, id);
		id++;
		ck_assert_int_eq(wr_segment_writer_seal(&w), 1);
	}
	ck_assert(!wr_segment_writer_full(&w));
	append_range(&w, id, id + 255);
	id += 256;
	ck_assert(wr_segment_writer_full(&w));
	ck_assert_uint_eq(wr_load_acquire(&w.sealed_end), wr_segment_size(16));

	uint8_t *before = malloc(w.size);
	memcpy(before, w.base, w.size);
	walrec_event_t e = make_event(id);
	ck_assert_int_eq(wr_segment_writer_append(&w, &e), -ENOSPC);
	ck_assert_int_eq(wr_segment_writer_append(&w, &e), -ENOSPC);
	ck_assert_int_eq(memcmp(before, w.base, w.size), 0);
	ck_assert_int_eq(wr_segment_writer_seal(&w), 0);
	free(before);
	ck_assert_uint_eq(w.last_event_id, id - 1);
	ck_assert_int_eq(wr_segment_writer_close(&w, true), 0);

	char path[4096];
	seg_path(path, sizeof path, 3);
	size_t len;
	uint8_t *buf = wr_test_read_file(path, &len);
	uint64_t events, last, chained;
	ck_assert_uint_eq(walk_blocks(buf, len, &events, &last, &chained), 16);
	ck_assert_uint_eq(events, 15 + 256);
	struct wr_segment_header h;
	ck_assert_int_eq(wr_segment_header_check(buf, len, &h), WR_FAULT_NONE);
	ck_assert_uint_eq(h.block_count, 16);
	ck_assert_uint_eq(h.event_count, 15 + 256);
	free(buf);
}
END_TEST

START_TEST(test_segment_writer_bad_num_blocks)
{
	struct wr_segment_writer w;
	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, NULL, 0, 15, NULL), -EINVAL);
	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, NULL, 0, 524289, NULL), -EINVAL);
	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, NULL, 0, 0, NULL), -EINVAL);
	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, "a/b", 0, 16, NULL), -EINVAL);
	char path[4096];
	seg_path(path, sizeof path, 0);
	ck_assert_int_eq(wr_test_file_size(path), -1);
	ck_assert_int_eq(wr_segment_writer_close(&w, false), 0);
}
END_TEST

START_TEST(test_segment_writer_refuses_existing_file)
{
	struct wr_segment_writer w, w2;
	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, NULL, 9, 16, NULL), 0);
	append_range(&w, 1, 300);
	ck_assert_int_eq(wr_segment_writer_open_new(&w2, dir, NULL, 9, 16, NULL), -EEXIST);
	ck_assert_int_eq(wr_segment_writer_close(&w2, false), 0);
	ck_assert_int_eq(wr_segment_writer_close(&w, true), 0);
	/* The refused open left the first file whole. */
	char path[4096];
	seg_path(path, sizeof path, 9);
	size_t len;
	uint8_t *buf = wr_test_read_file(path, &len);
	uint64_t events, last, chained;
	ck_assert_uint_eq(walk_blocks(buf, len, &events, &last, &chained), 2);
	ck_assert_uint_eq(events, 300);
	free(buf);
}
END_TEST

START_TEST(test_segment_writer_refuses_symlink)
{
	char path[4096], target[4096];
	seg_path(path, sizeof path, 4);
	snprintf(target, sizeof target, "%s/victim", dir);
	ck_assert_int_eq(symlink(target, path), 0); /* dangling */
	struct wr_segment_writer w;
	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, NULL, 4, 16, NULL), -EEXIST);
	ck_assert_int_eq(wr_test_file_size(target), -1);

	ck_assert_int_eq(wr_test_write_file(target, "keep", 4), 0); /* existing target */
	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, NULL, 4, 16, NULL), -EEXIST);
	ck_assert_int_eq(wr_test_file_size(target), 4);
	struct stat st;
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISLNK(st.st_mode)); /* not removed either */

	/* open_existing does not follow it. */
	ck_assert_int_lt(wr_segment_writer_open_existing(&w, path, NULL, NULL), 0);
}
END_TEST

static int
fallocate_enospc(int fd, int mode, off_t off, off_t len)
{
	errno = ENOSPC;
	return -1;
}

static int
msync_eio(void *addr, size_t len, int flags)
{
	errno = EIO;
	return -1;
}

START_TEST(test_segment_writer_fault_injection)
{
	struct wr_segment_writer w;
	char path[4096];
	seg_path(path, sizeof path, 5);

	wr_sys.fallocate = fallocate_enospc;
	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, NULL, 5, 16, &metrics), -ENOSPC);
	ck_assert_int_eq(wr_test_file_size(path), -1); /* nothing left behind */
	wr_sys_reset();
#ifdef WR_TELEMETRY
	ck_assert_uint_eq(metrics.open_new.samples, 1);
	ck_assert_uint_eq(metrics.open_new.successes, 0);
#endif

	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, NULL, 5, 16, NULL), 0);
	append_range(&w, 1, 300);
	wr_sys.msync = msync_eio;
	ck_assert_int_eq(wr_segment_writer_sync_sealed(&w), -EIO);
	ck_assert_uint_eq(w.synced_end, 0); /* a failed sync does not count as done */
	wr_sys_reset();
	ck_assert_int_eq(wr_segment_writer_sync_sealed(&w), 0);
	ck_assert_uint_eq(w.synced_end, wr_block_offset(1));

	wr_sys.fdatasync = wr_test_fdatasync_eio;
	ck_assert_int_eq(wr_segment_writer_close(&w, true), -EIO);
	ck_assert_ptr_null(w.base); /* released anyway */
	wr_sys_reset();
}
END_TEST

/* ---- recovery ------------------------------------------------------------ */

START_TEST(test_segment_writer_reopen_after_clean_close)
{
	struct wr_segment_writer w;
	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, NULL, 2, 16, NULL), 0);
	append_range(&w, 1, 600); /* 2 full + partial of 88 */
	ck_assert_int_eq(wr_segment_writer_close(&w, true), 0);

	char path[4096];
	seg_path(path, sizeof path, 2);
	struct wr_segment_recovery rec;
	ck_assert_int_eq(wr_segment_writer_open_existing(&w, path, &metrics, &rec), 0);
	ck_assert_uint_eq(rec.blocks_valid, 3);
	ck_assert_uint_eq(rec.last_event_id, 600);
	ck_assert_uint_eq(rec.append_offset, wr_block_offset(3));
	ck_assert(!rec.tail_cut);
	ck_assert_uint_eq(w.segment_index, 2);
	ck_assert_uint_eq(w.last_event_id, 600);
	/* Reopened for append: the header is active again. */
	struct wr_segment_header h;
	ck_assert_int_eq(wr_segment_header_check(w.base, 64, &h), WR_FAULT_NONE);
	ck_assert_uint_eq(h.closed_ts_ns, 0);
	ck_assert_uint_eq(h.block_count, 0);

	walrec_event_t e = make_event(600);
	ck_assert_int_eq(wr_segment_writer_append(&w, &e), -WALREC_EORDER);
	append_range(&w, 601, 700); /* continues in block 3, never in sealed block 2 */
	ck_assert_uint_eq(w.block_index, 3);
	ck_assert_int_eq(wr_segment_writer_close(&w, true), 0);

	size_t len;
	uint8_t *buf = wr_test_read_file(path, &len);
	uint64_t events, last, chained;
	ck_assert_uint_eq(walk_blocks(buf, len, &events, &last, &chained), 4);
	ck_assert_uint_eq(events, 700);
	ck_assert_int_eq(wr_segment_header_check(buf, len, &h), WR_FAULT_NONE);
	ck_assert_uint_eq(h.block_count, 4);
	ck_assert_uint_eq(h.event_count, 700);
	ck_assert_uint_eq(h.first_event_id, 1);
	ck_assert_uint_eq(h.last_event_id, 700);
	ck_assert_uint_ne(h.closed_ts_ns, 0);
	ck_assert_uint_eq(h.last_chained_checksum, chained);
	free(buf);
#ifdef WR_TELEMETRY
	ck_assert_uint_eq(metrics.open_existing.successes, 1);
	ck_assert_uint_eq(metrics.torn_tails_cut.value, 0);
	ck_assert_uint_eq(metrics.validation_failures.value, 0);
#endif
}
END_TEST

/* A copy of the file taken while the writer is live is what a crash leaves. */
static void
snapshot(const struct wr_segment_writer *w, const char *to)
{
	ck_assert_int_eq(wr_test_write_file(to, w->base, w->size), 0);
}

START_TEST(test_segment_writer_reopen_after_crash)
{
	struct wr_segment_writer w;
	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, NULL, 1, 16, NULL), 0);
	append_range(&w, 1, 512 + 10); /* 2 sealed blocks + 10 unsealed events */
	char crash1[4096], crash2[4096];
	snprintf(crash1, sizeof crash1, "%s/00000011.wal", dir);
	snprintf(crash2, sizeof crash2, "%s/00000012.wal", dir);
	snapshot(&w, crash1);
	ck_assert_int_eq(wr_segment_writer_seal(&w), 1);
	snapshot(&w, crash2); /* 3 sealed, nothing pending */
	ck_assert_int_eq(wr_segment_writer_close(&w, false), 0);

	struct wr_segment_recovery rec;
	ck_assert_int_eq(wr_segment_writer_open_existing(&w, crash1, &metrics, &rec), 0);
	ck_assert_uint_eq(rec.blocks_valid, 2);
	ck_assert_uint_eq(rec.last_event_id, 512);
	ck_assert(rec.tail_cut); /* unsealed events are dropped, and said so */
	ck_assert_uint_eq(rec.cut_block, 2);
	ck_assert_int_eq(rec.cut_reason, WR_FAULT_TAIL);
	const struct wr_block *b2 = (const void *)(w.base + wr_block_offset(2));
	ck_assert_uint_eq(b2->events[0].event_id, 0);
	append_range(&w, 513, 520);
	ck_assert_int_eq(wr_segment_writer_close(&w, true), 0);

	size_t len;
	uint8_t *buf = wr_test_read_file(crash1, &len);
	uint64_t events, last, chained;
	ck_assert_uint_eq(walk_blocks(buf, len, &events, &last, &chained), 3);
	ck_assert_uint_eq(events, 520);
	ck_assert_uint_eq(last, 520);
	free(buf);

	ck_assert_int_eq(wr_segment_writer_open_existing(&w, crash2, NULL, &rec), 0);
	ck_assert_uint_eq(rec.blocks_valid, 3);
	ck_assert_uint_eq(rec.last_event_id, 522);
	ck_assert(!rec.tail_cut);
	ck_assert_uint_eq(w.segment_index, 1); /* from the header, not the name */
	ck_assert_int_eq(wr_segment_writer_close(&w, false), 0);
#ifdef WR_TELEMETRY
	ck_assert_uint_eq(metrics.torn_tails_cut.value, 1);
#endif
}
END_TEST

START_TEST(test_segment_writer_torn_tail_cut)
{
	struct wr_segment_writer w;
	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, NULL, 6, 16, NULL), 0);
	append_range(&w, 1, 700); /* blocks 0, 1 full; block 2 has 188 */
	ck_assert_int_eq(wr_segment_writer_close(&w, true), 0);

	char path[4096];
	seg_path(path, sizeof path, 6);
	size_t len;
	uint8_t *buf = wr_test_read_file(path, &len);
	buf[wr_block_offset(2) + 64 + 100 * 64 + 20] ^= 0x10; /* a payload byte */
	memset(buf + wr_block_offset(9) + 300, 0xAB, 40);    /* garbage further on */
	ck_assert_int_eq(wr_test_write_file(path, buf, len), 0);
	free(buf);

	struct wr_segment_recovery rec;
	ck_assert_int_eq(wr_segment_writer_open_existing(&w, path, &metrics, &rec), 0);
	ck_assert(rec.tail_cut);
	ck_assert_uint_eq(rec.cut_block, 2);
	ck_assert_int_eq(rec.cut_reason, WR_FAULT_BLOCK_CHECKSUM);
	ck_assert_int_ge(warnings, 1);
	ck_assert_uint_eq(rec.blocks_valid, 2);
	ck_assert_uint_eq(rec.last_event_id, 512);
	ck_assert_uint_eq(w.event_count, 512);
	ck_assert_int_eq(wr_segment_writer_close(&w, false), 0);

	/* The cut is on disk: bytes from block 2 on are zero, 0 and 1 kept. */
	buf = wr_test_read_file(path, &len);
	uint64_t events, last, chained;
	ck_assert_uint_eq(walk_blocks(buf, len, &events, &last, &chained), 2);
	ck_assert_uint_eq(events, 512);
	free(buf);
#ifdef WR_TELEMETRY
	ck_assert_uint_eq(metrics.torn_tails_cut.value, 1);
	ck_assert_uint_eq(metrics.block_checksum_failures.value, 1);
	/* The closed header said 3 blocks / 700 events: blocks win, and it is counted. */
	ck_assert_uint_eq(metrics.validation_failures.value, 1);
#endif
}
END_TEST

/*
 * Close a segment with 6 full blocks (ids 1..1536), damage one payload byte
 * of block `bad`, and return the damaged image (caller frees).
 */
static uint8_t *
six_blocks_damaged(const char *path, uint32_t index, uint32_t bad, size_t *len)
{
	struct wr_segment_writer w;
	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, NULL, index, 16, NULL), 0);
	append_range(&w, 1, 6 * 256);
	ck_assert_int_eq(wr_segment_writer_close(&w, true), 0);
	uint8_t *buf = wr_test_read_file(path, len);
	buf[wr_block_offset(bad) + 64 + 7 * 64 + 30] ^= 0x04;
	ck_assert_int_eq(wr_test_write_file(path, buf, *len), 0);
	return buf;
}

/* Files in dir whose name contains ".quarantine-"; the last one's path in out. */
static int
count_quarantined(char *out, size_t n)
{
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	int count = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strstr(de->d_name, ".quarantine-") == NULL)
			continue;
		count++;
		if (out)
			snprintf(out, n, "%s/%s", dir, de->d_name);
	}
	closedir(d);
	return count;
}

START_TEST(test_segment_writer_damage_in_middle_quarantined)
{
	char path[4096], q[4200];
	seg_path(path, sizeof path, 20);
	size_t len;
	uint8_t *orig = six_blocks_damaged(path, 20, 2, &len);

	struct wr_segment_writer w;
	struct wr_segment_recovery rec;
	ck_assert_int_eq(wr_segment_writer_open_existing(&w, path, &metrics, &rec), 0);
	ck_assert(rec.tail_cut);
	ck_assert_uint_eq(rec.cut_block, 2);
	ck_assert_int_eq(rec.cut_reason, WR_FAULT_BLOCK_CHECKSUM);
	ck_assert_uint_eq(rec.blocks_after_cut, 3); /* blocks 3, 4, 5 */
	ck_assert(rec.quarantined);
	ck_assert_uint_eq(rec.blocks_valid, 2);
	ck_assert_uint_eq(rec.last_event_id, 512);
	ck_assert_uint_eq(rec.append_offset, wr_block_offset(2));
	ck_assert_int_ge(errors, 1);

	/* The copy is the damaged original, byte for byte, named after the segment. */
	ck_assert_int_eq(count_quarantined(q, sizeof q), 1);
	ck_assert_str_eq(q, rec.quarantine_path);
	ck_assert(strncmp(q, path, strlen(path)) == 0);
	size_t qlen;
	uint8_t *copy = wr_test_read_file(q, &qlen);
	ck_assert_uint_eq(qlen, len);
	ck_assert(memcmp(copy, orig, len) == 0);
	free(copy);

	/* The writer continues after block 1. */
	walrec_event_t e = make_event(100);
	ck_assert_int_eq(wr_segment_writer_append(&w, &e), -WALREC_EORDER);
	append_range(&w, 513, 600);
	ck_assert_int_eq(wr_segment_writer_close(&w, true), 0);
	size_t nlen;
	uint8_t *buf = wr_test_read_file(path, &nlen);
	uint64_t events, last, chained;
	ck_assert_uint_eq(walk_blocks(buf, nlen, &events, &last, &chained), 3);
	ck_assert_uint_eq(events, 600);
	ck_assert_uint_eq(last, 600);
	free(buf);
	free(orig);
#ifdef WR_TELEMETRY
	ck_assert_uint_eq(metrics.quarantine_copies.value, 1);
	ck_assert_uint_eq(metrics.torn_tails_cut.value, 1);
	ck_assert_uint_eq(metrics.block_checksum_failures.value, 1);
#endif
}
END_TEST

START_TEST(test_segment_writer_torn_last_block_not_quarantined)
{
	char path[4096];
	seg_path(path, sizeof path, 21);
	size_t len;
	uint8_t *orig = six_blocks_damaged(path, 21, 5, &len);
	free(orig);

	struct wr_segment_writer w;
	struct wr_segment_recovery rec;
	ck_assert_int_eq(wr_segment_writer_open_existing(&w, path, &metrics, &rec), 0);
	ck_assert(rec.tail_cut);
	ck_assert_uint_eq(rec.cut_block, 5);
	ck_assert_uint_eq(rec.blocks_after_cut, 0);
	ck_assert(!rec.quarantined);
	ck_assert_str_eq(rec.quarantine_path, "");
	ck_assert_uint_eq(rec.blocks_valid, 5);
	ck_assert_uint_eq(rec.last_event_id, 5 * 256);
	ck_assert_int_eq(wr_segment_writer_close(&w, false), 0);
	ck_assert_int_eq(count_quarantined(NULL, 0), 0);

	uint8_t *buf = wr_test_read_file(path, &len);
	uint64_t events, last, chained;
	ck_assert_uint_eq(walk_blocks(buf, len, &events, &last, &chained), 5);
	free(buf);
#ifdef WR_TELEMETRY
	ck_assert_uint_eq(metrics.quarantine_copies.value, 0);
	ck_assert_uint_eq(metrics.torn_tails_cut.value, 1);
#endif
}
END_TEST

/* Half of the first write lands, then the disk is full. */
static ssize_t
pwrite_short_then_enospc(int fd, const void *buf, size_t len, off_t off)
{
	if (off == 0 && len > 1)
		return wr_sys_libc.pwrite(fd, buf, len / 2, off);
	errno = ENOSPC;
	return -1;
}

static int
open_quarantine_eacces(const char *path, int flags, mode_t mode)
{
	if (strstr(path, ".quarantine-")) {
		errno = EACCES;
		return -1;
	}
	return wr_sys_libc.open(path, flags, mode);
}

static int
fsync_eio(int fd)
{
	(void)fd;
	errno = EIO;
	return -1;
}

START_TEST(test_segment_writer_quarantine_copy_failure_cuts_nothing)
{
	char path[4096];
	seg_path(path, sizeof path, 22);
	size_t len;
	uint8_t *orig = six_blocks_damaged(path, 22, 2, &len);

	/* Each way the copy can fail: every write, a later write, the open, the dir sync. */
	static const int expect[] = { -ENOSPC, -ENOSPC, -EACCES, -EIO };
	for (int k = 0; k < 4; k++) {
		wr_sys_reset();
		if (k == 0)
			wr_sys.pwrite = wr_test_pwrite_enospc;
		else if (k == 1)
			wr_sys.pwrite = pwrite_short_then_enospc;
		else if (k == 2)
			wr_sys.open = open_quarantine_eacces;
		else
			wr_sys.fsync = fsync_eio; /* the directory sync */
		struct wr_segment_writer w;
		struct wr_segment_recovery rec;
		ck_assert_int_eq(wr_segment_writer_open_existing(&w, path, &metrics, &rec),
				 expect[k]);
		ck_assert_ptr_null(w.base);
		ck_assert_int_eq(w.fd, -1);
		ck_assert(!rec.quarantined);
		ck_assert_uint_eq(rec.blocks_after_cut, 3);
		wr_sys_reset();

		/* Nothing was cut, and no partial copy is left behind. */
		size_t nlen;
		uint8_t *now = wr_test_read_file(path, &nlen);
		ck_assert_uint_eq(nlen, len);
		ck_assert_msg(memcmp(now, orig, len) == 0, "case %d changed the file", k);
		free(now);
		ck_assert_int_eq(count_quarantined(NULL, 0), 0);
	}
#ifdef WR_TELEMETRY
	ck_assert_uint_eq(metrics.quarantine_copies.value, 0);
	ck_assert_uint_eq(metrics.torn_tails_cut.value, 0);
	ck_assert_uint_eq(metrics.open_existing.successes, 0);
#endif

	/* Once the copy can be made, recovery proceeds. */
	struct wr_segment_writer w;
	struct wr_segment_recovery rec;
	ck_assert_int_eq(wr_segment_writer_open_existing(&w, path, NULL, &rec), 0);
	ck_assert(rec.quarantined);
	ck_assert_int_eq(count_quarantined(NULL, 0), 1);
	ck_assert_int_eq(wr_segment_writer_close(&w, false), 0);
	free(orig);
}
END_TEST

START_TEST(test_segment_writer_header_counts_disagree)
{
	struct wr_segment_writer w;
	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, NULL, 8, 16, NULL), 0);
	append_range(&w, 1, 300);
	ck_assert_int_eq(wr_segment_writer_close(&w, true), 0);
	char path[4096];
	seg_path(path, sizeof path, 8);
	size_t len;
	uint8_t *buf = wr_test_read_file(path, &len);
	struct wr_segment_header h;
	memcpy(&h, buf, sizeof h);
	h.event_count = 5000; /* a valid checksum over a lie */
	h.block_count = 1;
	wr_segment_header_finalize(&h);
	memcpy(buf, &h, sizeof h);
	ck_assert_int_eq(wr_test_write_file(path, buf, len), 0);
	free(buf);

	struct wr_segment_recovery rec;
	ck_assert_int_eq(wr_segment_writer_open_existing(&w, path, &metrics, &rec), 0);
	ck_assert_uint_eq(rec.blocks_valid, 2);
	ck_assert_uint_eq(rec.last_event_id, 300);
	ck_assert(!rec.tail_cut);
	ck_assert_uint_eq(w.event_count, 300);
	ck_assert_int_eq(wr_segment_writer_close(&w, true), 0);
	buf = wr_test_read_file(path, &len);
	ck_assert_int_eq(wr_segment_header_check(buf, len, &h), WR_FAULT_NONE);
	ck_assert_uint_eq(h.event_count, 300);
	ck_assert_uint_eq(h.block_count, 2);
	free(buf);
#ifdef WR_TELEMETRY
	ck_assert_uint_eq(metrics.validation_failures.value, 1);
#endif
}
END_TEST

START_TEST(test_segment_writer_garbage_files_rejected)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/garbage.wal", dir);
	size_t size = (size_t)wr_segment_size(16);
	uint8_t *buf = calloc(1, size + 1);
	struct wr_segment_writer w;
	struct wr_segment_recovery rec;

	/* All zeros, right size. */
	ck_assert_int_eq(wr_test_write_file(path, buf, size), 0);
	ck_assert_int_eq(wr_segment_writer_open_existing(&w, path, &metrics, &rec),
			 -WALREC_EFORMAT);
	ck_assert_ptr_null(w.base);

	/* Random bytes, right size. */
	for (size_t i = 0; i < size; i++)
		buf[i] = (uint8_t)wr_test_rand(&rng);
	ck_assert_int_eq(wr_test_write_file(path, buf, size), 0);
	ck_assert_int_eq(wr_segment_writer_open_existing(&w, path, NULL, NULL),
			 -WALREC_EFORMAT);

	/* A valid header followed by random blocks: opens, everything cut. */
	struct wr_segment_header h;
	wr_segment_header_init(&h, 3, 1);
	memcpy(buf, &h, sizeof h);
	ck_assert_int_eq(wr_test_write_file(path, buf, size), 0);
	ck_assert_int_eq(wr_segment_writer_open_existing(&w, path, NULL, &rec), 0);
	ck_assert_uint_eq(rec.blocks_valid, 0);
	ck_assert(rec.tail_cut);
	ck_assert_uint_eq(rec.cut_block, 0);
	walrec_event_t e = make_event(1);
	ck_assert_int_eq(wr_segment_writer_append(&w, &e), 0);
	ck_assert_int_eq(wr_segment_writer_close(&w, true), 0);

	/* Wrong sizes: one byte more, a valid count of too few blocks, tiny, empty. */
	ck_assert_int_eq(wr_test_write_file(path, buf, size + 1), 0);
	ck_assert_int_eq(wr_segment_writer_open_existing(&w, path, NULL, NULL),
			 -WALREC_EFORMAT);
	ck_assert_int_eq(wr_test_write_file(path, buf, (size_t)wr_segment_size(15)), 0);
	ck_assert_int_eq(wr_segment_writer_open_existing(&w, path, NULL, NULL),
			 -WALREC_EFORMAT);
	ck_assert_int_eq(wr_test_write_file(path, buf, 64), 0);
	ck_assert_int_eq(wr_segment_writer_open_existing(&w, path, NULL, NULL),
			 -WALREC_EFORMAT);
	ck_assert_int_eq(wr_test_write_file(path, buf, 0), 0);
	ck_assert_int_eq(wr_segment_writer_open_existing(&w, path, NULL, NULL),
			 -WALREC_EFORMAT);

	/* Not a file at all. */
	ck_assert_int_lt(wr_segment_writer_open_existing(&w, dir, NULL, NULL), 0);
	snprintf(path, sizeof path, "%s/missing.wal", dir);
	ck_assert_int_eq(wr_segment_writer_open_existing(&w, path, NULL, NULL), -ENOENT);
	free(buf);
#ifdef WR_TELEMETRY
	ck_assert_uint_eq(metrics.open_existing.samples, 1);
	ck_assert_uint_eq(metrics.open_existing.successes, 0);
	ck_assert_uint_eq(metrics.validation_failures.value, 1); /* bad magic */
#endif
}
END_TEST

/* Byte flips anywhere in a block region never crash recovery or write out of bounds. */
START_TEST(test_segment_writer_recovery_survives_random_flips)
{
	struct wr_segment_writer w;
	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, NULL, 1, 16, NULL), 0);
	append_range(&w, 1, 1000);
	ck_assert_int_eq(wr_segment_writer_close(&w, true), 0);
	char path[4096], copy[4096];
	seg_path(path, sizeof path, 1);
	snprintf(copy, sizeof copy, "%s/copy.wal", dir);
	size_t len;
	uint8_t *orig = wr_test_read_file(path, &len);
	uint8_t *buf = malloc(len);
	for (int round = 0; round < 24; round++) {
		memcpy(buf, orig, len);
		size_t off = 64 + wr_test_rand(&rng) % (wr_block_offset(4) - 64);
		buf[off] ^= (uint8_t)(1u << (wr_test_rand(&rng) % 8));
		ck_assert_int_eq(wr_test_write_file(copy, buf, len), 0);
		struct wr_segment_recovery rec;
		ck_assert_int_eq(wr_segment_writer_open_existing(&w, copy, NULL, &rec), 0);
		uint32_t hit = (uint32_t)((off - 64) / WR_BLOCK_SIZE);
		ck_assert(rec.tail_cut);
		ck_assert_uint_eq(rec.cut_block, hit);
		ck_assert_uint_eq(rec.blocks_valid, hit);
		ck_assert_int_eq(wr_segment_writer_close(&w, false), 0);
	}
	free(buf);
	free(orig);
}
END_TEST

/* ---- concurrency ----------------------------------------------------------- */

struct syncer {
	struct wr_segment_writer *w;
	_Atomic bool stop;
	_Atomic int errors, calls;
};

static void *
sync_loop(void *arg)
{
	struct syncer *s = arg;
	while (!atomic_load(&s->stop)) {
		if (wr_segment_writer_sync_sealed(s->w) != 0)
			s->errors++;
		s->calls++;
	}
	return NULL;
}

/* sync_sealed on another thread while the owner appends and seals. */
START_TEST(test_segment_writer_sync_concurrent_with_append)
{
	struct wr_segment_writer w;
	ck_assert_int_eq(wr_segment_writer_open_new(&w, dir, NULL, 1, 64, NULL), 0);
	struct syncer s = { .w = &w };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, sync_loop, &s), 0);
	uint64_t id = 1;
	for (int b = 0; b < 63; b++) {
		uint64_t n = 1 + wr_test_rand(&rng) % 256;
		append_range(&w, id, id + n - 1);
		id += n;
		wr_segment_writer_seal(&w);
	}
	/* On a busy machine the syncer may not have run yet: let it, at least once. */
	while (atomic_load(&s.calls) == 0)
		sched_yield();
	atomic_store(&s.stop, true);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(s.errors, 0);
	ck_assert_int_gt(s.calls, 0);
	ck_assert_uint_le(w.synced_end, wr_load_acquire(&w.sealed_end));
	ck_assert_int_eq(wr_segment_writer_sync_sealed(&w), 0);
	ck_assert_uint_eq(w.synced_end, wr_block_offset(63));
	ck_assert_int_eq(wr_segment_writer_close(&w, false), 0);

	char path[4096];
	seg_path(path, sizeof path, 1);
	size_t len;
	uint8_t *buf = wr_test_read_file(path, &len);
	uint64_t events, last, chained;
	ck_assert_uint_eq(walk_blocks(buf, len, &events, &last, &chained), 63);
	ck_assert_uint_eq(events, id - 1);
	free(buf);
}
END_TEST

static Suite *
segment_writer_suite(void)
{
	Suite *s = suite_create("segment_writer");
	TCase *core = tcase_create("core");
	tcase_add_checked_fixture(core, setup_dir, teardown_dir);
	tcase_add_test(core, test_segment_writer_roundtrip);
	tcase_add_test(core, test_segment_writer_incremental_checksums_match_one_shot);
	tcase_add_test(core, test_segment_writer_partial_seal_continues_in_next_block);
	tcase_add_test(core, test_segment_writer_order_rejected);
	tcase_add_test(core, test_segment_writer_reopen_after_clean_close);
	tcase_add_test(core, test_segment_writer_reopen_after_crash);
	tcase_add_test(core, test_segment_writer_torn_tail_cut);
	tcase_add_test(core, test_segment_writer_header_counts_disagree);
	tcase_add_test(core, test_segment_writer_damage_in_middle_quarantined);
	tcase_add_test(core, test_segment_writer_torn_last_block_not_quarantined);
	suite_add_tcase(s, core);

	TCase *limits = tcase_create("limits");
	tcase_add_checked_fixture(limits, setup_dir, teardown_dir);
	tcase_add_test(limits, test_segment_writer_full_segment_enospc);
	tcase_add_test(limits, test_segment_writer_bad_num_blocks);
	tcase_add_test(limits, test_segment_writer_refuses_existing_file);
	tcase_add_test(limits, test_segment_writer_refuses_symlink);
	tcase_add_test(limits, test_segment_writer_fault_injection);
	tcase_add_test(limits, test_segment_writer_quarantine_copy_failure_cuts_nothing);
	tcase_add_test(limits, test_segment_writer_garbage_files_rejected);
	tcase_add_test(limits, test_segment_writer_recovery_survives_random_flips);
	suite_add_tcase(s, limits);

	TCase *conc = tcase_create("concurrency");
	tcase_add_checked_fixture(conc, setup_dir, teardown_dir);
	tcase_add_test(conc, test_segment_writer_sync_concurrent_with_append);
	suite_add_tcase(s, conc);
	return s;
}

WR_CHECK_MAIN(segment_writer_suite)
