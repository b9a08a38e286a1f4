/* SPDX-License-Identifier: MIT */
/* recorder/meta_store: seqlock state, dirty tracking, wal.meta flush and load. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/metrics_out.h"
#include "lib/sys.h"
#include "recorder/meta_store.h"
#include "tests/testutil.h"

static char *dir;
static struct wr_meta_store store;
static struct wr_meta_store_metrics metrics;

static void
setup_store(void)
{
	dir = wr_test_mkdtemp();
	memset(&metrics, 0, sizeof metrics);
	ck_assert_int_eq(wr_meta_store_init(&store, dir, &metrics), 0);
}

static void
teardown_store(void)
{
	wr_sys_reset();
	wr_test_rmtree(dir);
	free(dir);
}

static void
meta_path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

/* Assert dir/wal.meta holds exactly the encoding of s. */
static void
assert_file_holds(uint32_t seg, uint32_t off, uint64_t id)
{
	struct wr_meta_state s = { .segment_index = seg, .offset = off, .last_event_id = id };
	uint8_t want[WR_META_SIZE];
	wr_meta_encode(want, &s);
	size_t len = 0;
	uint8_t *got = wr_test_read_file(wr_meta_store_filepath(&store), &len);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(len, WR_META_SIZE);
	ck_assert_mem_eq(got, want, WR_META_SIZE);
	free(got);
}

START_TEST(test_meta_store_update_and_get_state)
{
	struct wr_meta_state s = wr_meta_store_get_state(&store);
	ck_assert_uint_eq(s.segment_index, 0);
	ck_assert_uint_eq(s.offset, 0);
	ck_assert_uint_eq(s.last_event_id, 0);

	wr_meta_store_update(&store, 7, 16512, 1234);
	s = wr_meta_store_get_state(&store);
	ck_assert_uint_eq(s.segment_index, 7);
	ck_assert_uint_eq(s.offset, 16512);
	ck_assert_uint_eq(s.last_event_id, 1234);

	wr_meta_store_update(&store, UINT32_MAX, UINT32_MAX, UINT64_MAX);
	s = wr_meta_store_get_state(&store);
	ck_assert_uint_eq(s.segment_index, UINT32_MAX);
	ck_assert_uint_eq(s.offset, UINT32_MAX);
	ck_assert_uint_eq(s.last_event_id, UINT64_MAX);

	char want[4096];
	meta_path(want, sizeof want, "wal.meta");
	ck_assert_str_eq(wr_meta_store_filepath(&store), want);
	/* update never touches the disk */
	ck_assert_int_eq(wr_test_file_size(want), -1);
}
END_TEST

START_TEST(test_meta_store_dirty_transitions)
{
	ck_assert(!wr_meta_store_is_dirty(&store));
	wr_meta_store_update(&store, 1, 64, 10);
	ck_assert(wr_meta_store_is_dirty(&store));
	wr_meta_store_update(&store, 1, 16512, 20);
	ck_assert(wr_meta_store_is_dirty(&store));
	ck_assert(wr_meta_store_flush_to_disk(&store));
	ck_assert(!wr_meta_store_is_dirty(&store));
	/* a flush of a clean store is harmless and keeps it clean */
	ck_assert(wr_meta_store_flush_to_disk(&store));
	ck_assert(!wr_meta_store_is_dirty(&store));
	/* the same values again are still a new update */
	wr_meta_store_update(&store, 1, 16512, 20);
	ck_assert(wr_meta_store_is_dirty(&store));
	ck_assert(wr_meta_store_flush_to_disk(&store));
	ck_assert(!wr_meta_store_is_dirty(&store));
#ifdef WR_TELEMETRY
	ck_assert_uint_eq(metrics.maintenance_meta_flush.count, 3);
	ck_assert_uint_eq(metrics.flush_failures.value, 0);
#endif
}
END_TEST

START_TEST(test_meta_store_flush_load_round_trip)
{
	wr_meta_store_update(&store, 42, 64 + 3 * 16448, 0x0102030405060708ull);
	ck_assert(wr_meta_store_flush_to_disk(&store));
	assert_file_holds(42, 64 + 3 * 16448, 0x0102030405060708ull);
	char tmp[4096];
	meta_path(tmp, sizeof tmp, "wal.meta.tmp");
	ck_assert_int_eq(wr_test_file_size(tmp), -1);

	struct wr_meta_store other;
	ck_assert_int_eq(wr_meta_store_init(&other, dir, NULL), 0);
	ck_assert_int_eq(wr_meta_store_load(&other), 0);
	ck_assert(!wr_meta_store_is_dirty(&other));
	struct wr_meta_state s = wr_meta_store_get_state(&other);
	ck_assert_uint_eq(s.segment_index, 42);
	ck_assert_uint_eq(s.offset, 64 + 3 * 16448);
	ck_assert_uint_eq(s.last_event_id, 0x0102030405060708ull);
	/* a loaded store that is updated is dirty again; NULL metrics are fine */
	wr_meta_store_update(&other, 43, 64, 0x0102030405060709ull);
	ck_assert(wr_meta_store_is_dirty(&other));
	ck_assert(wr_meta_store_flush_to_disk(&other));
	assert_file_holds(43, 64, 0x0102030405060709ull);
}
END_TEST

START_TEST(test_meta_store_load_missing)
{
	wr_meta_store_update(&store, 3, 64, 5);
	ck_assert_int_eq(wr_meta_store_load(&store), -ENOENT);
	/* a failed load leaves the state alone */
	struct wr_meta_state s = wr_meta_store_get_state(&store);
	ck_assert_uint_eq(s.segment_index, 3);
	ck_assert_uint_eq(s.last_event_id, 5);
	ck_assert(wr_meta_store_is_dirty(&store));
}
END_TEST

START_TEST(test_meta_store_load_rejects_wrong_sizes)
{
	static const size_t sizes[] = { 0, 7, 15, 17, 4096 };
	static uint8_t bytes[4096];
	memset(bytes, 0xab, sizeof bytes);
	char path[4096];
	meta_path(path, sizeof path, "wal.meta");
	for (size_t i = 0; i < WR_ARRAY_SIZE(sizes); i++) {
		ck_assert_int_eq(wr_test_write_file(path, bytes, sizes[i]), 0);
		ck_assert_msg(wr_meta_store_load(&store) == -WALREC_EFORMAT,
			      "a %zu-byte wal.meta was accepted", sizes[i]);
		struct wr_meta_state s = wr_meta_store_get_state(&store);
		ck_assert_uint_eq(s.last_event_id, 0);
	}
	ck_assert_int_eq(wr_test_write_file(path, bytes, 16), 0);
	ck_assert_int_eq(wr_meta_store_load(&store), 0);
	ck_assert_uint_eq(wr_meta_store_get_state(&store).last_event_id, 0xababababababababull);
}
END_TEST

START_TEST(test_meta_store_load_refuses_symlink_and_non_files)
{
	char path[4096], target[4096];
	meta_path(path, sizeof path, "wal.meta");
	meta_path(target, sizeof target, "elsewhere");
	static const uint8_t good[16] = { 1 };
	ck_assert_int_eq(wr_test_write_file(target, good, sizeof good), 0);
	ck_assert_int_eq(symlink(target, path), 0);
	ck_assert_int_eq(wr_meta_store_load(&store), -ELOOP);
	ck_assert_uint_eq(wr_meta_store_get_state(&store).offset, 0);
	/* a flush replaces the link itself; the target stays untouched */
	wr_meta_store_update(&store, 9, 64, 99);
	ck_assert(wr_meta_store_flush_to_disk(&store));
	assert_file_holds(9, 64, 99);
	size_t len;
	uint8_t *t = wr_test_read_file(target, &len);
	ck_assert_ptr_nonnull(t);
	ck_assert_mem_eq(t, good, sizeof good);
	free(t);

	/* a directory or a FIFO in its place: format error, never a hang */
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(wr_meta_store_load(&store), -WALREC_EFORMAT);
	ck_assert_int_eq(rmdir(path), 0);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(wr_meta_store_load(&store), -WALREC_EFORMAT);
}
END_TEST

/* The first call writes 3 bytes, the second fails as a full disk would. */
static ssize_t
short_then_enospc_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	if (wr_test_pwrite_calls++ == 0)
		return wr_sys_libc.pwrite(fd, buf, len > 3 ? 3 : len, off);
	errno = ENOSPC;
	return -1;
}

START_TEST(test_meta_store_flush_failure_keeps_old_file)
{
	wr_meta_store_update(&store, 1, 64, 100);
	ck_assert(wr_meta_store_flush_to_disk(&store));
	assert_file_holds(1, 64, 100);
	wr_meta_store_update(&store, 2, 16512, 200);

	static const char *const cases[] = { "rename EXDEV", "fdatasync EIO",
					     "short write then ENOSPC" };
	for (size_t i = 0; i < WR_ARRAY_SIZE(cases); i++) {
		wr_sys_reset();
		wr_test_pwrite_calls = 0;
		if (i == 0)
			wr_sys.rename = wr_test_rename_exdev;
		else if (i == 1)
			wr_sys.fdatasync = wr_test_fdatasync_eio;
		else
			wr_sys.pwrite = short_then_enospc_pwrite;
		ck_assert_msg(!wr_meta_store_flush_to_disk(&store), "%s: flush succeeded",
			      cases[i]);
		ck_assert_msg(wr_meta_store_is_dirty(&store), "%s: clean after failure",
			      cases[i]);
		assert_file_holds(1, 64, 100);
		char tmp[4096];
		meta_path(tmp, sizeof tmp, "wal.meta.tmp");
		ck_assert_int_eq(wr_test_file_size(tmp), -1);
	}
	ck_assert_int_eq(wr_test_pwrite_calls, 2);

	/* short writes alone are retried to completion */
	wr_sys_reset();
	wr_test_pwrite_calls = 0;
	wr_sys.pwrite = wr_test_pwrite_short;
	ck_assert(wr_meta_store_flush_to_disk(&store));
	ck_assert_int_eq(wr_test_pwrite_calls, 6); /* 16 bytes, 3 at a time */
	ck_assert(!wr_meta_store_is_dirty(&store));
	assert_file_holds(2, 16512, 200);
#ifdef WR_TELEMETRY
	ck_assert_uint_eq(metrics.flush_failures.value, 3);
	ck_assert_uint_eq(metrics.maintenance_meta_flush.count, 5);
#else
	ck_assert_uint_eq(metrics.flush_failures.value, 0);
#endif
}
END_TEST

/* An update that lands in the middle of the flush (here: before its fdatasync). */
static int
fdatasync_with_racing_update(int fd)
{
	wr_meta_store_update(&store, 5, 64 + 16448, 555);
	return wr_sys_libc.fdatasync(fd);
}

START_TEST(test_meta_store_update_racing_flush_stays_dirty)
{
	wr_meta_store_update(&store, 4, 64, 444);
	wr_sys.fdatasync = fdatasync_with_racing_update;
	ck_assert(wr_meta_store_flush_to_disk(&store));
	wr_sys_reset();
	/* the file holds the state taken at the start of the flush ... */
	assert_file_holds(4, 64, 444);
	/* ... so the update that raced it still needs a flush */
	ck_assert(wr_meta_store_is_dirty(&store));
	ck_assert(wr_meta_store_flush_to_disk(&store));
	ck_assert(!wr_meta_store_is_dirty(&store));
	assert_file_holds(5, 64 + 16448, 555);
}
END_TEST

START_TEST(test_meta_store_metrics_emit)
{
	struct wr_meta_store_metrics src, m;
	memset(&src, 0, sizeof src);
	wr_store_relaxed(&src.maintenance_meta_flush.count, 2);
	wr_store_relaxed(&src.maintenance_meta_flush.total_ns, 3000000);
	wr_store_relaxed(&src.maintenance_meta_flush.min_ns, 1000000);
	wr_store_relaxed(&src.maintenance_meta_flush.max_ns, 2000000);
	wr_store_relaxed(&src.flush_failures.value, 1);
	memset(&m, 0xff, sizeof m);
	wr_meta_store_metrics_copy(&m, &src);

	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct wr_out o;
	wr_out_begin(&o, f, WR_OUT_JSON);
	wr_meta_store_metrics_emit(&m, &o);
	wr_out_end(&o);
	fclose(f);
	ck_assert_str_eq(buf, "{\"meta_store\":{\"maintenance_meta_flush\":{\"count\":2,"
			      "\"total_ns\":3000000,\"min_ns\":1000000,\"max_ns\":2000000},"
			      "\"flush_failures\":1}}\n");
	free(buf);

	f = open_memstream(&buf, &len);
	wr_meta_store_metrics_dump(&m, "snapshot 1", f);
	fclose(f);
	ck_assert_str_eq(buf, "snapshot 1\n"
			      "meta_store\n"
			      "  maintenance_meta_flush         count=2 mean=1.50ms min=1.00ms "
			      "max=2.00ms total=3.00ms\n"
			      "  flush_failures                 1\n");
	free(buf);

	f = open_memstream(&buf, &len);
	wr_meta_store_metrics_collect(&m, NULL, f);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(buf, "\nwalrec_meta_store_flush_failures_total 1\n"));
	ck_assert_ptr_nonnull(
		strstr(buf, "\nwalrec_meta_store_maintenance_meta_flush_seconds_sum 0.003\n"));
	free(buf);
}
END_TEST

/* ---- concurrency ---------------------------------------------------------- */

/*
 * The writer makes at least RACE_UPDATES updates and then goes on until
 * each reader has seen the state change RACE_SEEN times, so the readers
 * surely overlapped it however the threads are scheduled; RACE_MAX bounds
 * the run.
 */
#define RACE_UPDATES 4000000u
#define RACE_SEEN 1000u
#define RACE_MAX 200000000u

struct race {
	struct wr_meta_store *m;
	atomic_int readers_ready;
	atomic_bool done;
	uint64_t last_written;
	/* per reader: */
	_Atomic uint64_t changes[2]; /* reads that saw a state other than the previous read */
	uint64_t reads[2];
	uint64_t torn[2];
	uint64_t backwards[2];
	uint64_t bad_seg[2], bad_off[2], bad_id[2];
};

static void *
race_writer(void *arg)
{
	struct race *r = arg;
	while (atomic_load(&r->readers_ready) < 2)
		sched_yield();
	uint64_t i;
	for (i = 1; i < RACE_MAX; i++) {
		wr_meta_store_update(r->m, (uint32_t)(i >> 20), (uint32_t)(i & 0xfffff), i);
		if (i >= RACE_UPDATES && (i & 0xffff) == 0 &&
		    atomic_load_explicit(&r->changes[0], memory_order_relaxed) >= RACE_SEEN &&
		    atomic_load_explicit(&r->changes[1], memory_order_relaxed) >= RACE_SEEN)
			break;
	}
	r->last_written = i < RACE_MAX ? i : i - 1;
	atomic_store(&r->done, true);
	return NULL;
}

struct reader_arg {
	struct race *r;
	int idx;
};

static void *
race_reader(void *arg)
{
	struct reader_arg *ra = arg;
	struct race *r = ra->r;
	int k = ra->idx;
	uint64_t last = 0;
	atomic_fetch_add(&r->readers_ready, 1);
	for (;;) {
		bool finished = atomic_load(&r->done);
		struct wr_meta_state s = wr_meta_store_get_state(r->m);
		r->reads[k]++;
		uint64_t from_pos = ((uint64_t)s.segment_index << 20) | s.offset;
		if (from_pos != s.last_event_id && r->torn[k]++ == 0) {
			r->bad_seg[k] = s.segment_index;
			r->bad_off[k] = s.offset;
			r->bad_id[k] = s.last_event_id;
		}
		if (s.last_event_id < last)
			r->backwards[k]++;
		if (s.last_event_id != last)
			atomic_store_explicit(&r->changes[k],
					      atomic_load_explicit(&r->changes[k],
								   memory_order_relaxed) + 1,
					      memory_order_relaxed);
		last = s.last_event_id;
		if (finished)
			break;
	}
	return NULL;
}

START_TEST(test_meta_store_get_state_never_torn)
{
	static struct race r;
	memset(&r, 0, sizeof r);
	r.m = &store;
	pthread_t w, rd[2];
	struct reader_arg ra[2] = { { &r, 0 }, { &r, 1 } };
	for (int k = 0; k < 2; k++)
		ck_assert_int_eq(pthread_create(&rd[k], NULL, race_reader, &ra[k]), 0);
	ck_assert_int_eq(pthread_create(&w, NULL, race_writer, &r), 0);
	pthread_join(w, NULL);
	for (int k = 0; k < 2; k++)
		pthread_join(rd[k], NULL);

	for (int k = 0; k < 2; k++) {
		ck_assert_msg(r.torn[k] == 0,
			      "reader %d: %llu torn reads of %llu, first (%llu, %llu, %llu)", k,
			      (unsigned long long)r.torn[k], (unsigned long long)r.reads[k],
			      (unsigned long long)r.bad_seg[k], (unsigned long long)r.bad_off[k],
			      (unsigned long long)r.bad_id[k]);
		ck_assert_uint_eq(r.backwards[k], 0);
		/* the test only means something if this reader overlapped the writer */
		ck_assert_uint_ge(atomic_load(&r.changes[k]), 2);
	}
	struct wr_meta_state s = wr_meta_store_get_state(&store);
	ck_assert_uint_eq(s.last_event_id, r.last_written);
	ck_assert(wr_meta_store_is_dirty(&store));
}
END_TEST

/*
 * A flusher thread racing the writer: whenever is_dirty says so it flushes.
 * After the writer stops and at most one more flush, the store is clean
 * and the file holds the final state: no update is lost to a race.
 */
struct flush_race {
	struct wr_meta_store *m;
	atomic_bool done;
	atomic_uint_fast64_t flushes;
	atomic_uint_fast64_t failures;
};

static void *
flush_race_flusher(void *arg)
{
	struct flush_race *fr = arg;
	while (!atomic_load(&fr->done)) {
		if (!wr_meta_store_is_dirty(fr->m))
			continue;
		if (wr_meta_store_flush_to_disk(fr->m))
			atomic_fetch_add(&fr->flushes, 1);
		else
			atomic_fetch_add(&fr->failures, 1);
	}
	return NULL;
}

START_TEST(test_meta_store_flush_races_updates)
{
	static struct flush_race fr;
	memset(&fr, 0, sizeof fr);
	fr.m = &store;
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, flush_race_flusher, &fr), 0);
	/* update until the flusher has written a few times (bounded either way) */
	uint64_t i;
	for (i = 1; i < 20000000u; i++) {
		wr_meta_store_update(&store, (uint32_t)(i >> 20), (uint32_t)(i & 0xfffff), i);
		if ((i & 0xfff) == 0 && atomic_load(&fr.flushes) >= 5)
			break;
	}
	uint64_t last = i < 20000000u ? i : i - 1;
	atomic_store(&fr.done, true);
	pthread_join(t, NULL);
	ck_assert_uint_eq(atomic_load(&fr.failures), 0);
	/* the last updates may have raced the last flush: dirty until flushed */
	if (wr_meta_store_is_dirty(&store))
		ck_assert(wr_meta_store_flush_to_disk(&store));
	ck_assert(!wr_meta_store_is_dirty(&store));
	assert_file_holds((uint32_t)(last >> 20), (uint32_t)(last & 0xfffff), last);
}
END_TEST

START_TEST(test_meta_store_init_limits)
{
	struct wr_meta_store m;
	static char longdir[5000];
	memset(longdir, 'a', sizeof longdir - 1);
	ck_assert_int_eq(wr_meta_store_init(&m, longdir, NULL), -ENAMETOOLONG);
	longdir[4090] = 0; /* fits dir, but not dir + "/wal.meta" */
	ck_assert_int_eq(wr_meta_store_init(&m, longdir, NULL), -ENAMETOOLONG);
	ck_assert_int_eq(wr_meta_store_init(&m, "", NULL), -EINVAL);
	ck_assert_int_eq(wr_meta_store_init(&m, NULL, NULL), -EINVAL);

	/* a directory that does not exist: flush fails, store stays dirty */
	char missing[4096];
	meta_path(missing, sizeof missing, "no/such/dir");
	ck_assert_int_eq(wr_meta_store_init(&m, missing, &metrics), 0);
	wr_meta_store_update(&m, 1, 2, 3);
	ck_assert(!wr_meta_store_flush_to_disk(&m));
	ck_assert(wr_meta_store_is_dirty(&m));
	ck_assert_int_eq(wr_meta_store_load(&m), -ENOENT);
}
END_TEST

static Suite *
meta_store_suite(void)
{
	Suite *s = suite_create("meta_store");
	TCase *core = tcase_create("core");
	tcase_add_checked_fixture(core, setup_store, teardown_store);
	tcase_add_test(core, test_meta_store_update_and_get_state);
	tcase_add_test(core, test_meta_store_dirty_transitions);
	tcase_add_test(core, test_meta_store_flush_load_round_trip);
	tcase_add_test(core, test_meta_store_load_missing);
	tcase_add_test(core, test_meta_store_update_racing_flush_stays_dirty);
	tcase_add_test(core, test_meta_store_metrics_emit);
	suite_add_tcase(s, core);

	TCase *limits = tcase_create("limits");
	tcase_add_checked_fixture(limits, setup_store, teardown_store);
	tcase_add_test(limits, test_meta_store_load_rejects_wrong_sizes);
	tcase_add_test(limits, test_meta_store_load_refuses_symlink_and_non_files);
	tcase_add_test(limits, test_meta_store_flush_failure_keeps_old_file);
	tcase_add_test(limits, test_meta_store_init_limits);
	suite_add_tcase(s, limits);

	TCase *conc = tcase_create("concurrency");
	tcase_add_checked_fixture(conc, setup_store, teardown_store);
	tcase_set_timeout(conc, 60);
	tcase_add_test(conc, test_meta_store_get_state_never_torn);
	tcase_add_test(conc, test_meta_store_flush_races_updates);
	suite_add_tcase(s, conc);
	return s;
}

WR_CHECK_MAIN(meta_store_suite)
