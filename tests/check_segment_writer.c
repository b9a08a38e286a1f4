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
static struct wr_stage_metrics stage_metrics;
/* 64 buffers (1 MiB); flushed by the tests themselves unless a test starts its thread. */
static struct wr_stage stage;
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
	memset(&stage_metrics, 0, sizeof stage_metrics);
	ck_assert_int_eq(wr_stage_init(&stage, 64, NULL, NULL, NULL, &stage_metrics), 0);
	warnings = 0;
	errors = 0;
	walrec_log_set_handler(count_log, NULL, WALREC_LOG_DEBUG);
}

static void
teardown_dir(void)
{
	wr_sys_reset();
	wr_stage_fini(&stage);
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

/* open_new, then start on the test stage. */
static int
open_new(struct wr_segment_writer *w, const char *prefix, uint32_t index, uint32_t blocks,
	 struct wr_segment_writer_metrics *m)
{
	int rc = wr_segment_writer_open_new(w, dir, prefix, index, blocks, m, NULL);
	if (rc == 0)
		wr_segment_writer_start(w, &stage);
	return rc;
}

/* open_existing, then start on the test stage. */
static int
open_existing(struct wr_segment_writer *w, const char *path, struct wr_segment_writer_metrics *m,
	      struct wr_segment_recovery *rec)
{
	int rc = wr_segment_writer_open_existing(w, path, m, rec);
	if (rc == 0)
		wr_segment_writer_start(w, &stage);
	return rc;
}

/* Write every sealed block into its file now. */
static void
flush(void)
{
	ck_assert_int_ge(wr_stage_flush(&stage), 0);
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
	size_t off = wr_block_offset(i);
	while (off < len && buf[off] == 0)
		off++;
	ck_assert_msg(off == len, "non-zero byte at %zu after the data", off);
	*events = ev;
	*last_id = last;
	*last_chained = prev;
	return i;
}

/* ---- core ------------------------------------------------------------- */

START_TEST(test_segment_writer_roundtrip)
{
	struct wr_segment_writer w;
	ck_assert_int_eq(open_new(&w, NULL, 7, 16, &metrics), 0);
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
	ck_assert_uint_eq(w.sealed_last_id, 768);
	/* Sealed is not written: the file has nothing until the stage is flushed. */
	ck_assert_uint_eq(wr_load_acquire(&w.written_end), wr_block_offset(0));
	ck_assert_uint_eq(wr_segment_writer_written(&w, NULL), 0);
	flush();
	uint64_t end;
	ck_assert_uint_eq(wr_segment_writer_written(&w, &end), 768);
	ck_assert_uint_eq(end, wr_block_offset(3));
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
	ck_assert_int_eq(open_new(&w, "FS", 1, 16, NULL), 0);
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
		flush();
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
	ck_assert_int_eq(open_new(&w, NULL, 0, 16, &metrics), 0);
	ck_assert_int_eq(wr_segment_writer_seal(&w), 0); /* nothing to seal */
	append_range(&w, 1, 10);
	ck_assert_int_eq(wr_segment_writer_seal(&w), 1);
	ck_assert_int_eq(wr_segment_writer_seal(&w), 0);
	ck_assert_uint_eq(w.block_index, 1);
	flush();
	uint64_t end;
	ck_assert_uint_eq(wr_segment_writer_written(&w, &end), 10);
	ck_assert_uint_eq(end, wr_block_offset(1));
	ck_assert_int_eq(wr_segment_writer_sync_sealed(&w), 0);
	ck_assert_uint_eq(wr_load_relaxed(&w.synced_end), wr_block_offset(1));
	ck_assert_int_eq(wr_segment_writer_sync_sealed(&w), 0); /* nothing new */

	append_range(&w, 11, 15);
	flush();
	const struct wr_block *b0 = (const void *)(w.base + wr_block_offset(0));
	const struct wr_block *b1 = (const void *)(w.base + wr_block_offset(1));
	ck_assert_uint_eq(b0->header.event_count, 10);
	ck_assert_uint_eq(b0->events[10].event_id, 0); /* the free slots of a partial block are zero */
	/* Unsealed events stay in the stage buffer; the file's block 1 is still empty. */
	ck_assert_uint_eq(w.block->events[0].event_id, 11);
	ck_assert_uint_eq(w.block->events[4].event_id, 15);
	ck_assert_uint_eq(b1->events[0].event_id, 0);
	ck_assert_uint_eq(b1->header.checksum, 0);
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
	ck_assert_int_eq(open_new(&w, NULL, 0, 16, NULL), 0);
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
	ck_assert_uint_eq(w.block->events[1].event_id, 0); /* nothing written */

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
	ck_assert_int_eq(open_new(&w, NULL, 3, 16, NULL), 0);
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
	flush();
	ck_assert_uint_eq(wr_load_acquire(&w.written_end), wr_segment_size(16));

	uint8_t *before = malloc(w.size);
	memcpy(before, w.base, w.size);
	walrec_event_t e = make_event(id);
	ck_assert_int_eq(wr_segment_writer_append(&w, &e), -ENOSPC);
	ck_assert_int_eq(wr_segment_writer_append(&w, &e), -ENOSPC);
	flush();
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
	ck_assert_int_eq(open_new(&w, NULL, 0, 15, NULL), -EINVAL);
	ck_assert_int_eq(open_new(&w, NULL, 0, 524289, NULL), -EINVAL);
	ck_assert_int_eq(open_new(&w, NULL, 0, 0, NULL), -EINVAL);
	ck_assert_int_eq(open_new(&w, "a/b", 0, 16, NULL), -EINVAL);
	char path[4096];
	seg_path(path, sizeof path, 0);
	ck_assert_int_eq(wr_test_file_size(path), -1);
	ck_assert_int_eq(wr_segment_writer_close(&w, false), 0);
}
END_TEST

START_TEST(test_segment_writer_refuses_existing_file)
{
	struct wr_segment_writer w, w2;
	ck_assert_int_eq(open_new(&w, NULL, 9, 16, NULL), 0);
	append_range(&w, 1, 300);
	ck_assert_int_eq(open_new(&w2, NULL, 9, 16, NULL), -EEXIST);
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
	ck_assert_int_eq(open_new(&w, NULL, 4, 16, NULL), -EEXIST);
	ck_assert_int_eq(wr_test_file_size(target), -1);

	ck_assert_int_eq(wr_test_write_file(target, "keep", 4), 0); /* existing target */
	ck_assert_int_eq(open_new(&w, NULL, 4, 16, NULL), -EEXIST);
	ck_assert_int_eq(wr_test_file_size(target), 4);
	struct stat st;
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISLNK(st.st_mode)); /* not removed either */

	/* open_existing does not follow it. */
	ck_assert_int_lt(open_existing(&w, path, NULL, NULL), 0);
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
	ck_assert_int_eq(open_new(&w, NULL, 5, 16, &metrics), -ENOSPC);
	ck_assert_int_eq(wr_test_file_size(path), -1); /* nothing left behind */
	wr_sys_reset();
#ifdef WR_TELEMETRY
	ck_assert_uint_eq(metrics.open_new.samples, 1);
	ck_assert_uint_eq(metrics.open_new.successes, 0);
#endif

	ck_assert_int_eq(open_new(&w, NULL, 5, 16, NULL), 0);
	append_range(&w, 1, 300);
	flush();
	wr_sys.msync = msync_eio;
	ck_assert_int_eq(wr_segment_writer_sync_sealed(&w), -EIO);
	/* a failed sync does not count as done */
	ck_assert_uint_eq(wr_load_relaxed(&w.synced_end), 0);
	wr_sys_reset();
	ck_assert_int_eq(wr_segment_writer_sync_sealed(&w), 0);
	ck_assert_uint_eq(wr_load_relaxed(&w.synced_end), wr_block_offset(1));

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
	ck_assert_int_eq(open_new(&w, NULL, 2, 16, NULL), 0);
	append_range(&w, 1, 600); /* 2 full + partial of 88 */
	ck_assert_int_eq(wr_segment_writer_close(&w, true), 0);

	char path[4096];
	seg_path(path, sizeof path, 2);
	struct wr_segment_recovery rec;
	ck_assert_int_eq(open_existing(&w, path, &metrics, &rec), 0);
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

/*
 * A copy of the file taken while the writer is live is what a crash
 * leaves: the blocks the flusher wrote. With unsealed_too, the events of
 * the unsealed block are put into the copy as well, as a writer that
 * appends through a mapping of the file (the FlashStrike recorder) leaves
 * them.
 */
static void
snapshot(const struct wr_segment_writer *w, const char *to, bool unsealed_too)
{
	flush();
	ck_assert_int_eq(wr_test_write_file(to, w->base, w->size), 0);
	if (!unsealed_too)
		return;
	FILE *f = fopen(to, "r+");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, (long)wr_block_offset(w->block_index) + 64, SEEK_SET), 0);
	ck_assert_uint_eq(fwrite(w->block->events, 64, w->block_events, f), w->block_events);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_segment_writer_reopen_after_crash)
{
	struct wr_segment_writer w;
	ck_assert_int_eq(open_new(&w, NULL, 1, 16, NULL), 0);
	append_range(&w, 1, 512 + 10); /* 2 sealed blocks + 10 unsealed events */
	char crash0[4096], crash1[4096], crash2[4096];
	snprintf(crash0, sizeof crash0, "%s/00000010.wal", dir);
	snprintf(crash1, sizeof crash1, "%s/00000011.wal", dir);
	snprintf(crash2, sizeof crash2, "%s/00000012.wal", dir);
	snapshot(&w, crash0, false);
	snapshot(&w, crash1, true);
	ck_assert_int_eq(wr_segment_writer_seal(&w), 1);
	snapshot(&w, crash2, false); /* 3 sealed, nothing pending */
	ck_assert_int_eq(wr_segment_writer_close(&w, false), 0);

	struct wr_segment_recovery rec;
	ck_assert_int_eq(open_existing(&w, crash1, &metrics, &rec), 0);
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

	ck_assert_int_eq(open_existing(&w, crash2, NULL, &rec), 0);
	ck_assert_uint_eq(rec.blocks_valid, 3);
	ck_assert_uint_eq(rec.last_event_id, 522);
	ck_assert(!rec.tail_cut);
	ck_assert_uint_eq(w.segment_index, 1); /* from the header, not the name */
	ck_assert_int_eq(wr_segment_writer_close(&w, false), 0);

	/* What this writer leaves: the sealed blocks, nothing to cut. */
	ck_assert_int_eq(open_existing(&w, crash0, NULL, &rec), 0);
	ck_assert_uint_eq(rec.blocks_valid, 2);
	ck_assert_uint_eq(rec.last_event_id, 512);
	ck_assert(!rec.tail_cut);
	ck_assert_int_eq(wr_segment_writer_close(&w, false), 0);
#ifdef WR_TELEMETRY
	ck_assert_uint_eq(metrics.torn_tails_cut.value, 1);
#endif
}
END_TEST

START_TEST(test_segment_writer_torn_tail_cut)
{
	struct wr_segment_writer w;
	ck_assert_int_eq(open_new(&w, NULL, 6, 16, NULL), 0);
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
	ck_assert_int_eq(open_existing(&w, path, &metrics, &rec), 0);
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
	ck_assert_int_eq(open_new(&w, NULL, index, 16, NULL), 0);
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
	ck_assert_int_eq(open_existing(&w, path, &metrics, &rec), 0);
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
	ck_assert_int_eq(open_existing(&w, path, &metrics, &rec), 0);
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
		ck_assert_int_eq(open_existing(&w, path, &metrics, &rec),
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
	ck_assert_int_eq(open_existing(&w, path, NULL, &rec), 0);
	ck_assert(rec.quarantined);
	ck_assert_int_eq(count_quarantined(NULL, 0), 1);
	ck_assert_int_eq(wr_segment_writer_close(&w, false), 0);
	free(orig);
}
END_TEST

START_TEST(test_segment_writer_header_counts_disagree)
{
	struct wr_segment_writer w;
	ck_assert_int_eq(open_new(&w, NULL, 8, 16, NULL), 0);
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
	ck_assert_int_eq(open_existing(&w, path, &metrics, &rec), 0);
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
	ck_assert_int_eq(open_existing(&w, path, &metrics, &rec),
			 -WALREC_EFORMAT);
	ck_assert_ptr_null(w.base);

	/* Random bytes, right size. */
	for (size_t i = 0; i < size; i++)
		buf[i] = (uint8_t)wr_test_rand(&rng);
	ck_assert_int_eq(wr_test_write_file(path, buf, size), 0);
	ck_assert_int_eq(open_existing(&w, path, NULL, NULL),
			 -WALREC_EFORMAT);

	/* A valid header followed by random blocks: opens, everything cut. */
	struct wr_segment_header h;
	wr_segment_header_init(&h, 3, 1);
	memcpy(buf, &h, sizeof h);
	ck_assert_int_eq(wr_test_write_file(path, buf, size), 0);
	ck_assert_int_eq(open_existing(&w, path, NULL, &rec), 0);
	ck_assert_uint_eq(rec.blocks_valid, 0);
	ck_assert(rec.tail_cut);
	ck_assert_uint_eq(rec.cut_block, 0);
	walrec_event_t e = make_event(1);
	ck_assert_int_eq(wr_segment_writer_append(&w, &e), 0);
	ck_assert_int_eq(wr_segment_writer_close(&w, true), 0);

	/* Wrong sizes: one byte more, a valid count of too few blocks, tiny, empty. */
	ck_assert_int_eq(wr_test_write_file(path, buf, size + 1), 0);
	ck_assert_int_eq(open_existing(&w, path, NULL, NULL),
			 -WALREC_EFORMAT);
	ck_assert_int_eq(wr_test_write_file(path, buf, (size_t)wr_segment_size(15)), 0);
	ck_assert_int_eq(open_existing(&w, path, NULL, NULL),
			 -WALREC_EFORMAT);
	ck_assert_int_eq(wr_test_write_file(path, buf, 64), 0);
	ck_assert_int_eq(open_existing(&w, path, NULL, NULL),
			 -WALREC_EFORMAT);
	ck_assert_int_eq(wr_test_write_file(path, buf, 0), 0);
	ck_assert_int_eq(open_existing(&w, path, NULL, NULL),
			 -WALREC_EFORMAT);

	/* Not a file at all. */
	ck_assert_int_lt(open_existing(&w, dir, NULL, NULL), 0);
	snprintf(path, sizeof path, "%s/missing.wal", dir);
	ck_assert_int_eq(open_existing(&w, path, NULL, NULL), -ENOENT);
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
	ck_assert_int_eq(open_new(&w, NULL, 1, 16, NULL), 0);
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
		ck_assert_int_eq(open_existing(&w, copy, NULL, &rec), 0);
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
		if (wr_stage_flush(&stage) < 0 || wr_segment_writer_sync_sealed(s->w) != 0)
			s->errors++;
		s->calls++;
	}
	return NULL;
}

/* Flushes and syncs on another thread while the owner appends and seals. */
START_TEST(test_segment_writer_sync_concurrent_with_append)
{
	struct wr_segment_writer w;
	ck_assert_int_eq(open_new(&w, NULL, 1, 64, NULL), 0);
	struct syncer s = { .w = &w };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, sync_loop, &s), 0);
	uint64_t id = 1;
	for (int b = 0; b < 63; b++) {
		uint64_t n = 1 + wr_test_rand(&rng) % 256;
		for (uint64_t k = id; k < id + n; k++) {
			walrec_event_t e = make_event(k);
			int rc;
			/* 64 buffers for 63 blocks: the stage may be full for a moment. */
			while ((rc = wr_segment_writer_append(&w, &e)) == -EAGAIN)
				ck_assert_int_eq(wr_stage_wait_space(&stage), 0);
			ck_assert_int_eq(rc, 0);
		}
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
	ck_assert_uint_le(wr_load_relaxed(&w.synced_end), wr_load_acquire(&w.written_end));
	flush();
	ck_assert_int_eq(wr_segment_writer_sync_sealed(&w), 0);
	ck_assert_uint_eq(wr_load_relaxed(&w.synced_end), wr_block_offset(63));
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


/* ---- stage ------------------------------------------------------------------ */

/* Append ids first..last, waiting for stage space when needed (a flusher or a flush here). */
static void
append_waiting(struct wr_segment_writer *w, uint64_t first, uint64_t last)
{
	for (uint64_t id = first; id <= last; id++) {
		walrec_event_t e = make_event(id);
		int rc;
		while ((rc = wr_segment_writer_append(w, &e)) == -EAGAIN)
			ck_assert_int_eq(wr_stage_wait_space(&stage), 0);
		ck_assert_int_eq(rc, 0);
	}
}

/* Check a closed segment file holds exactly the events first..last. */
static void
check_file_events(const char *path, uint64_t first, uint64_t last, uint32_t blocks)
{
	size_t len;
	uint8_t *buf = wr_test_read_file(path, &len);
	ck_assert_ptr_nonnull(buf);
	uint64_t events, last_id, chained;
	ck_assert_uint_eq(walk_blocks(buf, len, &events, &last_id, &chained), blocks);
	ck_assert_uint_eq(events, last - first + 1);
	ck_assert_uint_eq(last_id, last);
	struct wr_segment_header h;
	ck_assert_int_eq(wr_segment_header_check(buf, len, &h), WR_FAULT_NONE);
	ck_assert_uint_eq(h.block_count, blocks);
	ck_assert_uint_eq(h.first_event_id, first);
	ck_assert_uint_eq(h.last_event_id, last);
	free(buf);
}

/* A full stage refuses the next block (-EAGAIN) until a flush frees a buffer. */
START_TEST(test_segment_writer_stage_full_is_backpressure)
{
	struct wr_segment_writer w;
	ck_assert_int_eq(open_new(&w, NULL, 1, 128, NULL), 0);
	append_range(&w, 1, 64 * 256); /* fills the 64 buffers */
	walrec_event_t e = make_event(64 * 256 + 1);
	ck_assert_int_eq(wr_segment_writer_append(&w, &e), -EAGAIN);
	ck_assert_int_eq(wr_segment_writer_append(&w, &e), -EAGAIN);
	ck_assert_uint_eq(wr_load_acquire(&w.written_end), wr_block_offset(0)); /* nothing yet */
	ck_assert_int_eq(wr_stage_flush(&stage), 64);
	ck_assert_uint_eq(wr_segment_writer_written(&w, NULL), 64 * 256);
	ck_assert_int_eq(wr_segment_writer_append(&w, &e), 0);
	ck_assert_int_eq(wr_segment_writer_close(&w, true), 0);
	char path[4096];
	seg_path(path, sizeof path, 1);
	check_file_events(path, 1, 64 * 256 + 1, 65);
#ifdef WR_TELEMETRY
	/* Consecutive blocks go out in runs, not one write each. */
	ck_assert_uint_eq(stage_metrics.blocks_written.value, 65);
	ck_assert_uint_lt(stage_metrics.write.samples, 65);
#endif
}
END_TEST

/* Around the ring many times, partial blocks and flushes at random points. */
START_TEST(test_segment_writer_stage_wraps)
{
	struct wr_segment_writer w;
	ck_assert_int_eq(open_new(&w, NULL, 2, 256, NULL), 0);
	uint64_t id = 1;
	for (int b = 0; b < 240; b++) { /* the 64 buffers, almost four times over */
		uint64_t n = 1 + wr_test_rand(&rng) % 256;
		append_waiting(&w, id, id + n - 1);
		id += n;
		if (n < 256 && wr_test_rand(&rng) % 2)
			ck_assert_int_eq(wr_segment_writer_seal(&w), 1);
		if (wr_test_rand(&rng) % 7 == 0)
			flush();
	}
	uint32_t blocks = w.blocks_sealed + (w.block_events ? 1 : 0);
	ck_assert_int_eq(wr_segment_writer_close(&w, true), 0);
	char path[4096];
	seg_path(path, sizeof path, 2);
	check_file_events(path, 1, id - 1, blocks);
	/* Every id, in order, whatever the block boundaries. */
	size_t len;
	uint8_t *buf = wr_test_read_file(path, &len);
	uint64_t next = 1;
	for (uint32_t i = 0; i < blocks; i++) {
		const struct wr_block *blk = (const void *)(buf + wr_block_offset(i));
		for (unsigned k = 0; k < blk->header.event_count; k++, next++)
			ck_assert_uint_eq(blk->events[k].event_id, next);
	}
	ck_assert_uint_eq(next, id);
	free(buf);
}
END_TEST

/* The flusher thread writes everything, across two writers sharing the stage. */
START_TEST(test_segment_writer_stage_flusher_thread)
{
	ck_assert_int_eq(wr_stage_start(&stage, 0), 0);
	struct wr_segment_writer a, b;
	ck_assert_int_eq(open_new(&a, NULL, 1, 100, NULL), 0);
	append_waiting(&a, 1, 100 * 256); /* a full segment, more blocks than buffers */
	ck_assert(wr_segment_writer_full(&a));
	wr_segment_writer_finish(&a);
	ck_assert_int_eq(open_new(&b, NULL, 2, 100, NULL), 0);
	b.last_event_id = 100 * 256;
	append_waiting(&b, 100 * 256 + 1, 100 * 256 + 5000);
	/* Closing a waits for its blocks only; b keeps going meanwhile. */
	ck_assert_int_eq(wr_segment_writer_close(&a, true), 0);
	append_waiting(&b, 100 * 256 + 5001, 100 * 256 + 6000);
	ck_assert_int_eq(wr_segment_writer_close(&b, true), 0);
	wr_stage_stop(&stage);

	char path[4096];
	seg_path(path, sizeof path, 1);
	check_file_events(path, 1, 100 * 256, 100);
	seg_path(path, sizeof path, 2);
	check_file_events(path, 100 * 256 + 1, 100 * 256 + 6000, (6000 + 255) / 256);
}
END_TEST

/* Condition until nothing is left to do now (the rate limit paces it: 1 chunk a ms). */
static int64_t
condition_all(void)
{
	int64_t total = 0;
	for (int idle = 0; idle < 5;) {
		int64_t n = wr_stage_condition(&stage);
		ck_assert_int_ge(n, 0);
		total += n;
		if (n == 0) {
			idle++;
			usleep(1500);
		} else {
			idle = 0;
		}
	}
	return total;
}

/* Zeros go in ahead of the written blocks, never over one, and stop at the lead. */
START_TEST(test_segment_writer_stage_conditions_ahead)
{
	struct wr_segment_writer w;
	ck_assert_int_eq(open_new(&w, NULL, 4, 512, NULL), 0); /* 8 MiB */
	int64_t first = condition_all();
	ck_assert_int_eq(first, 4 << 20); /* the lead, from the start */
	ck_assert_uint_eq(w.cond_end, 4096 + (4u << 20));
	uint64_t id = 1;
	for (int round = 0; round < 20; round++) {
		uint64_t n = 1 + wr_test_rand(&rng) % 5000;
		append_waiting(&w, id, id + n - 1);
		id += n;
		if (wr_test_rand(&rng) % 2)
			wr_segment_writer_seal(&w);
		flush();
		condition_all();
		uint64_t end;
		wr_segment_writer_written(&w, &end);
		uint64_t want = ((end + 4095) & ~4095ull) + (4u << 20);
		ck_assert_uint_ge(w.cond_end, want < w.size ? want : w.size);
	}
	/* A closed writer is forgotten: nothing is written into it any more. */
	uint32_t blocks = w.blocks_sealed + (w.block_events ? 1 : 0);
	ck_assert_int_eq(wr_segment_writer_close(&w, true), 0);
	ck_assert_int_eq(wr_stage_condition(&stage), 0);
	char path[4096];
	seg_path(path, sizeof path, 4);
	check_file_events(path, 1, id - 1, blocks);
#ifdef WR_TELEMETRY
	ck_assert_uint_ge(stage_metrics.cond_bytes.value, 4u << 20);
#endif
}
END_TEST

static int failed_calls, failed_err;

static void
record_failure(void *arg, int err)
{
	(void)arg;
	failed_calls++;
	failed_err = err;
}

/* A failed write latches: nothing after it is ever written, every later flush says so. */
START_TEST(test_segment_writer_stage_write_error_latched)
{
	wr_stage_fini(&stage);
	failed_calls = 0;
	ck_assert_int_eq(wr_stage_init(&stage, 64, NULL, record_failure, NULL, NULL), 0);
	struct wr_segment_writer w;
	ck_assert_int_eq(open_new(&w, NULL, 3, 16, NULL), 0);
	append_range(&w, 1, 2 * 256);
	flush();
	append_range(&w, 2 * 256 + 1, 4 * 256);
	wr_sys.pwrite = wr_test_pwrite_enospc;
	ck_assert_int_eq(wr_stage_flush(&stage), -ENOSPC);
	wr_sys_reset();
	ck_assert_int_eq(failed_calls, 1);
	ck_assert_int_eq(failed_err, -ENOSPC);
	ck_assert_int_eq(wr_stage_flush(&stage), -ENOSPC); /* no retry that pretends */
	ck_assert_int_eq(failed_calls, 1);
	ck_assert_uint_eq(wr_segment_writer_written(&w, NULL), 2 * 256);
	/* An owner waiting for space gets the error instead of waiting forever. */
	ck_assert_int_eq(wr_stage_wait_space(&stage), -ENOSPC);
	ck_assert_int_eq(wr_segment_writer_close(&w, true), -ENOSPC);
	ck_assert_int_eq(w.fd, -1); /* released anyway */

	char path[4096];
	seg_path(path, sizeof path, 3);
	size_t len;
	uint8_t *buf = wr_test_read_file(path, &len);
	uint64_t events, last, chained;
	ck_assert_uint_eq(walk_blocks(buf, len, &events, &last, &chained), 2);
	ck_assert_uint_eq(last, 2 * 256);
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

	TCase *st = tcase_create("stage");
	tcase_add_checked_fixture(st, setup_dir, teardown_dir);
	tcase_add_test(st, test_segment_writer_stage_full_is_backpressure);
	tcase_add_test(st, test_segment_writer_stage_wraps);
	tcase_add_test(st, test_segment_writer_stage_flusher_thread);
	tcase_add_test(st, test_segment_writer_stage_write_error_latched);
	tcase_add_test(st, test_segment_writer_stage_conditions_ahead);
	suite_add_tcase(s, st);
	return s;
}

WR_CHECK_MAIN(segment_writer_suite)
