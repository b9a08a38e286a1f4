/* SPDX-License-Identifier: MIT */
/*
 * Power loss: the embedded recorder runs under the power-loss simulator
 * (tests/powerloss.h); at seeded crash points - before and after every
 * sync, rename, unlink, create and write of the WAL directory, and between
 * appends - the directory a machine could find after losing power is
 * built, recovered, and checked. Successive power losses (including during
 * recovery) are chained by continuing in a crash image.
 *
 * WALREC_TEST_SEED replays a run's choices (thread timing still varies);
 * WALREC_POWERLOSS_CRASHES sets how many crash points are checked.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <walrec.h>

#include "lib/fs.h"
#include "lib/sys.h"
#include "recorder/format.h"
#include "recorder/recorder_impl.h"
#include "recorder/wal_dir.h"
#include "tests/logcheck.h"
#include "tests/powerloss.h"
#include "tests/testutil.h"

static char *base;

static void
setup_dir(void)
{
	base = wr_test_mkdtemp();
	/* Quiet: recovery logs every cut and every scan, by design. */
	walrec_log_set_handler(wr_test_log_discard, NULL, WALREC_LOG_ERROR);
}

static void
teardown_dir(void)
{
	wr_pl_stop();
	walrec_log_set_handler(NULL, NULL, -1);
	wr_test_rmtree(base);
	free(base);
	base = NULL;
}

/* ---- expected events ---------------------------------------------------------- */

/*
 * Which epoch wrote which id: epoch e wrote ids from starts[e] on (ids an
 * earlier epoch wrote above a later start were lost in a power loss and
 * written again).
 */
static struct {
	uint64_t starts[64];
	unsigned n;
	uint64_t salt;
} expect;

static void
payload_make(uint8_t out[WALREC_PAYLOAD_SIZE], uint64_t id, uint64_t epoch)
{
	/* Compressible on purpose: cold segments stay small, images stay cheap. */
	uint64_t w[6] = { id, epoch, expect.salt, id * 0x9E3779B97F4A7C15ull, ~id, epoch ^ id };
	memcpy(out, w, sizeof w);
}

static unsigned
epoch_of(uint64_t id)
{
	unsigned e = 0;
	for (unsigned i = 0; i < expect.n; i++)
		if (expect.starts[i] <= id)
			e = i;
	return e;
}

struct event_check {
	uint64_t durable; /* every id up to this must be present */
	uint64_t below;   /* ids <= durable seen */
	uint64_t upto;    /* ids <= upto go into digest */
	uint64_t digest_state;
	uint64_t digest;
};

static int
event_ok(void *arg, const walrec_event_t *ev, char *why, size_t n)
{
	struct event_check *c = arg;
	uint8_t want[WALREC_PAYLOAD_SIZE];
	payload_make(want, ev->event_id, epoch_of(ev->event_id));
	if (memcmp(want, ev->payload, sizeof want) != 0) {
		snprintf(why, n, "payload is not the one appended with this id (epoch %u)",
			 epoch_of(ev->event_id));
		return -1;
	}
	if (ev->event_id <= c->durable)
		c->below++;
	if (ev->event_id <= c->upto)
		c->digest = wr_test_rand(&c->digest_state) ^ c->digest ^ ev->event_id ^
			    ev->timestamp_ns;
	return 0;
}

/* ---- the run ---------------------------------------------------------------- */

struct run {
	uint64_t seed;
	walrec_recorder_config_t cfg;
	char dir[4400];
	walrec_recorder_t *rec;    /* the recorder under the simulator, or NULL */
	_Atomic uint64_t reported; /* durable as told to the application */
	uint64_t next_id;          /* the id the next append gets */
	uint64_t epoch;
	/* totals */
	uint64_t crashes_checked, events_checked;
};

/* Called by the simulator under its lock: what has been reported durable. */
static uint64_t
reported_durable(void *arg)
{
	struct run *r = arg;
	uint64_t d = atomic_load(&r->reported);
	if (r->rec) {
		uint64_t c = wr_meta_coordinator_durable(&r->rec->coordinator);
		if (c > d)
			d = c;
	}
	return d;
}

static void
note_durable(struct run *r, uint64_t id)
{
	uint64_t cur = atomic_load(&r->reported);
	while (id > cur && !atomic_compare_exchange_weak(&r->reported, &cur, id))
		;
}

static void
set_rec(struct run *r, walrec_recorder_t *rec)
{
	/* Under the simulator's lock, so no crash point reads a recorder being freed. */
	wr_pl_set_durable_fn(NULL, NULL);
	r->rec = rec;
	wr_pl_set_durable_fn(reported_durable, r);
}

#define RUN_FAIL(r, c, ...)                                                                  \
	ck_abort_msg("seed %" PRIu64 " epoch %" PRIu64 " crash %" PRIu64 " (%s, durable %" PRIu64 \
		     ", %u/%u dir ops, %u dirty pages, %u new, %u torn, %u new sizes): %s",         \
		     (r)->seed, (r)->epoch, (c)->seq, (c)->where, (c)->durable_id,                  \
		     (c)->dirops_applied, (c)->dirops_pending, (c)->pages_dirty, (c)->pages_new,   \
		     (c)->pages_torn, (c)->sizes_new, wr_test_fmt(__VA_ARGS__))

/*
 * Recover one crash image and check it:
 *  - wal.meta, when present, names data that is in the image (data before metadata);
 *  - recovery opens it; every event reported durable is there, each the one
 *    appended with its id, and the log verifies;
 *  - recovering again gives the same state, and ids continue.
 */
static void
check_crash(struct run *r, const struct wr_pl_crash *c)
{
	struct wr_wal_dir d;
	memset(&d, 0, sizeof d);
	ck_assert_int_eq(wr_wal_dir_scan(&d, c->dir, 0, NULL, NULL), 0);
	if (d.has_meta) {
		char msg[512];
		int m = wr_wal_dir_check_meta(&d, NULL, msg, sizeof msg);
		if (m != 0) {
			wr_wal_dir_free(&d);
			RUN_FAIL(r, c, "wal.meta before recovery: %s", m < 0 ? strerror(-m) : msg);
		}
	}
	wr_wal_dir_free(&d);

	walrec_recorder_t *rec = NULL;
	int rc = walrec_recorder_open(&rec, c->dir, &r->cfg);
	if (rc != 0)
		RUN_FAIL(r, c, "recovery failed: %s", walrec_strerror(rc));
	walrec_recorder_state_t st;
	walrec_recorder_meta_state(rec, &st);
	uint64_t l1 = st.last_event_id;
	if (l1 < c->durable_id)
		RUN_FAIL(r, c, "recovered up to event %" PRIu64, l1);
	rc = walrec_recorder_close(rec);
	walrec_recorder_destroy(rec);
	if (rc != 0)
		RUN_FAIL(r, c, "close after recovery: %s", walrec_strerror(rc));

	struct event_check ec = { .durable = c->durable_id, .upto = l1, .digest_state = 1 };
	struct wr_lc_result res;
	if (wr_lc_verify(c->dir, WR_LC_META, event_ok, &ec, &res) != 0)
		RUN_FAIL(r, c, "after recovery: %s", res.error);
	if (res.last_id != l1 || ec.below != c->durable_id)
		RUN_FAIL(r, c, "after recovery the log ends at %" PRIu64 " (recorder said %" PRIu64
			 ") and holds %" PRIu64 " of the %" PRIu64 " durable events",
			 res.last_id, l1, ec.below, c->durable_id);
	uint64_t digest1 = ec.digest;

	/* Again: the same state, and the next id is the one after it. */
	rc = walrec_recorder_open(&rec, c->dir, &r->cfg);
	if (rc != 0)
		RUN_FAIL(r, c, "second recovery failed: %s", walrec_strerror(rc));
	walrec_recorder_meta_state(rec, &st);
	if (st.last_event_id != l1)
		RUN_FAIL(r, c, "second recovery ends at %" PRIu64 ", the first at %" PRIu64,
			 st.last_event_id, l1);
	walrec_event_t ev;
	memset(&ev, 0, sizeof ev);
	payload_make(ev.payload, l1 + 1, epoch_of(l1 + 1));
	uint64_t id = 0;
	rc = walrec_recorder_append(rec, &ev, &id);
	int rc2 = walrec_recorder_close(rec);
	walrec_recorder_destroy(rec);
	if (rc != 0 || id != l1 + 1 || rc2 != 0)
		RUN_FAIL(r, c, "append after recovery: %s, id %" PRIu64 ", close %s",
			 walrec_strerror(rc), id, walrec_strerror(rc2));
	struct event_check ec2 = { .durable = c->durable_id, .upto = l1, .digest_state = 1 };
	if (wr_lc_verify(c->dir, WR_LC_META, event_ok, &ec2, &res) != 0)
		RUN_FAIL(r, c, "after the second recovery: %s", res.error);
	if (res.last_id != l1 + 1 || ec2.digest != digest1)
		RUN_FAIL(r, c, "the second recovery changed the log (ends at %" PRIu64 ")",
			 res.last_id);
	r->crashes_checked++;
	r->events_checked += res.events;
	wr_test_rmtree(c->dir);
}

static void
check_sim_errors(struct run *r)
{
	char buf[4096];
	if (wr_pl_errors(buf, sizeof buf) != 0)
		ck_abort_msg("seed %" PRIu64 " epoch %" PRIu64 ": the simulator found:\n%s",
			     r->seed, r->epoch, buf);
}

static void
drain_crashes(struct run *r)
{
	struct wr_pl_crash c;
	while (wr_pl_next_crash(&c))
		check_crash(r, &c);
	check_sim_errors(r);
}

static void
open_main(struct run *r, uint64_t durable_before)
{
	walrec_recorder_t *rec = NULL;
	int rc = walrec_recorder_open(&rec, r->dir, &r->cfg);
	ck_assert_msg(rc == 0, "seed %" PRIu64 " epoch %" PRIu64 ": open: %s", r->seed, r->epoch,
		      walrec_strerror(rc));
	walrec_recorder_state_t st;
	walrec_recorder_meta_state(rec, &st);
	ck_assert_msg(st.last_event_id >= durable_before,
		      "seed %" PRIu64 " epoch %" PRIu64 ": recovered to %" PRIu64 ", %" PRIu64
		      " was durable", r->seed, r->epoch, st.last_event_id, durable_before);
	/* Crash points taken during this recovery belong to the old epochs. */
	drain_crashes(r);
	note_durable(r, st.durable_event_id);
	r->next_id = st.last_event_id + 1;
	ck_assert_uint_lt(expect.n, 64);
	expect.starts[expect.n++] = r->next_id;
	set_rec(r, rec);
}

static void
append_batch(struct run *r, uint64_t n)
{
	walrec_event_t ev;
	memset(&ev, 0, sizeof ev);
	for (uint64_t i = 0; i < n; i++) {
		payload_make(ev.payload, r->next_id, expect.n - 1);
		uint64_t id = 0;
		int rc = walrec_recorder_append(r->rec, &ev, &id);
		ck_assert_msg(rc == 0, "seed %" PRIu64 ": append: %s", r->seed, walrec_strerror(rc));
		ck_assert_uint_eq(id, r->next_id);
		r->next_id++;
	}
}

/* One seeded run: a few epochs, each ended by a clean close or a power loss. */
static void
run_one(struct run *r, uint64_t seed, uint64_t *crash_budget)
{
	memset(r, 0, sizeof *r);
	r->seed = seed;
	uint64_t rng = seed;
	memset(&expect, 0, sizeof expect);
	expect.salt = wr_test_rand(&rng);
	walrec_recorder_config_init(&r->cfg);
	r->cfg.num_blocks = 16;
	r->cfg.max_hot_segments = 1 + (uint32_t)(wr_test_rand(&rng) % 3);
	static const uint32_t intervals[] = { 0, 200, 1000, 5000 };
	r->cfg.sync_interval_us = intervals[wr_test_rand(&rng) % 4];
	char scratch[4200];
	snprintf(scratch, sizeof scratch, "%s/run-%016" PRIx64, base, seed);
	ck_assert_int_eq(mkdir(scratch, 0750), 0);
	snprintf(r->dir, sizeof r->dir, "%s/wal", scratch);
	ck_assert_int_eq(mkdir(r->dir, 0750), 0);
	ck_assert_int_eq(wr_pl_start(r->dir, scratch, wr_test_rand(&rng)), 0);
	wr_pl_set_durable_fn(reported_durable, r);
	wr_pl_set_capture(0.02, 4);

	uint64_t durable_carry = 0;
	unsigned epochs = 2 + (unsigned)(wr_test_rand(&rng) % 3);
	for (unsigned e = 0; e < epochs && *crash_budget > r->crashes_checked; e++) {
		r->epoch = e;
		open_main(r, durable_carry);
		uint64_t events = 5000 + wr_test_rand(&rng) % 40000;
		uint64_t done = 0;
		while (done < events) {
			uint64_t n = 1 + wr_test_rand(&rng) % 1500;
			if (n > events - done)
				n = events - done;
			append_batch(r, n);
			done += n;
			uint64_t act = wr_test_rand(&rng) % 8;
			if (act == 0) {
				uint64_t last = r->next_id - 1;
				int rc = walrec_recorder_sync(r->rec);
				ck_assert_msg(rc == 0, "sync: %s", walrec_strerror(rc));
				note_durable(r, last);
			} else if (act == 1) {
				uint64_t id = r->next_id - 1 - wr_test_rand(&rng) % 100;
				if (walrec_recorder_wait_durable(r->rec, id, 2000000) == 0)
					note_durable(r, id);
			} else if (act == 2) {
				walrec_recorder_poll(r->rec);
			} else if (act == 3) {
				struct wr_pl_crash c;
				ck_assert_int_eq(wr_pl_crash_now("between appends", &c), 0);
				check_crash(r, &c);
			}
			drain_crashes(r);
		}
		if (wr_test_rand(&rng) % 2 == 0) {
			/* A clean close (its own calls are crash points too). */
			walrec_recorder_t *rec = r->rec;
			set_rec(r, NULL);
			uint64_t last = r->next_id - 1;
			ck_assert_int_eq(walrec_recorder_close(rec), 0);
			walrec_recorder_destroy(rec);
			note_durable(r, last);
			drain_crashes(r);
			durable_carry = last;
		} else {
			/* Power loss: continue in the crash image (its recovery is
			 * the next epoch's open, with crash points of its own). */
			struct wr_pl_crash c;
			ck_assert_int_eq(wr_pl_crash_now("power loss", &c), 0);
			wr_pl_set_capture(0, 4);
			drain_crashes(r);
			walrec_recorder_t *rec = r->rec;
			set_rec(r, NULL);
			walrec_recorder_destroy(rec);
			check_sim_errors(r);
			wr_pl_stop();
			wr_test_rmtree(r->dir);
			ck_assert_int_eq(rename(c.dir, r->dir), 0);
			ck_assert_int_eq(wr_pl_start(r->dir, scratch, wr_test_rand(&rng)), 0);
			wr_pl_set_durable_fn(reported_durable, r);
			wr_pl_set_capture(0.02, 4);
			durable_carry = c.durable_id;
			atomic_store(&r->reported, durable_carry);
		}
	}
	if (r->rec) {
		walrec_recorder_t *rec = r->rec;
		set_rec(r, NULL);
		ck_assert_int_eq(walrec_recorder_close(rec), 0);
		walrec_recorder_destroy(rec);
		durable_carry = r->next_id - 1;
	}
	wr_pl_set_capture(0, 4);
	drain_crashes(r);
	check_sim_errors(r);
	wr_pl_stop();
	/* The log of the run itself: recovered if it ended in a power loss. */
	walrec_recorder_t *rec = NULL;
	ck_assert_int_eq(walrec_recorder_open(&rec, r->dir, &r->cfg), 0);
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
	struct event_check ec = { .durable = durable_carry, .digest_state = 1 };
	struct wr_lc_result res;
	ck_assert_msg(wr_lc_verify(r->dir, WR_LC_META, event_ok, &ec, &res) == 0,
		      "seed %" PRIu64 ": final log: %s", seed, res.error);
	ck_assert_uint_eq(ec.below, durable_carry);
	wr_test_rmtree(scratch);
}

START_TEST(test_powerloss_crash_points_recover)
{
	uint64_t seed = wr_test_env_u64("WALREC_TEST_SEED", (uint64_t)time(NULL));
	uint64_t want = wr_test_env_u64("WALREC_POWERLOSS_CRASHES", 300);
	printf("test_powerloss_crash_points_recover: seed %" PRIu64 ", %" PRIu64
	       " crash points (replay: WALREC_TEST_SEED=%" PRIu64 ")\n",
	       seed, want, seed);
	fflush(stdout);
	struct run *r = calloc(1, sizeof *r);
	uint64_t crashes = 0, events = 0, runs = 0, rng = seed;
	while (crashes < want) {
		uint64_t budget = want - crashes;
		run_one(r, wr_test_rand(&rng), &budget);
		crashes += r->crashes_checked;
		events += r->events_checked;
		runs++;
	}
	uint64_t calls, taken, dropped;
	wr_pl_counts(&calls, &taken, &dropped);
	printf("test_powerloss_crash_points_recover: %" PRIu64 " runs, %" PRIu64
	       " crash points recovered and checked, %" PRIu64 " events checked, failures 0\n",
	       runs, crashes, events);
	free(r);
}
END_TEST

/*
 * The preparer hands segments out before the directory fsync that covers
 * their names. Here every fsync it makes fails, so only the first data
 * sync of each segment can make its name durable: after each sync, a
 * power loss must still find every segment that holds a durable event.
 */
static int (*prep_fsync_next)(int);
static _Atomic unsigned prep_fsyncs_refused;

static int
prep_fsync_fails(int fd)
{
	char name[16] = "";
	pthread_getname_np(pthread_self(), name, sizeof name);
	if (strcmp(name, "walrec-prep") == 0) {
		atomic_fetch_add(&prep_fsyncs_refused, 1);
		errno = EIO;
		return -1;
	}
	return prep_fsync_next(fd);
}

START_TEST(test_powerloss_segment_names_synced_by_their_first_sync)
{
	struct run *r = calloc(1, sizeof *r);
	r->seed = 7;
	memset(&expect, 0, sizeof expect);
	walrec_recorder_config_init(&r->cfg);
	r->cfg.num_blocks = 16; /* 4096 events a segment */
	r->cfg.max_hot_segments = 0;
	r->cfg.sync_interval_us = 0;
	char scratch[4200];
	snprintf(scratch, sizeof scratch, "%s/names", base);
	ck_assert_int_eq(mkdir(scratch, 0750), 0);
	snprintf(r->dir, sizeof r->dir, "%s/wal", scratch);
	ck_assert_int_eq(mkdir(r->dir, 0750), 0);
	ck_assert_int_eq(wr_pl_start(r->dir, scratch, 7), 0);
	prep_fsync_next = wr_sys.fsync;
	wr_sys.fsync = prep_fsync_fails;
	atomic_store(&prep_fsyncs_refused, 0);
	wr_pl_set_durable_fn(reported_durable, r);
	open_main(r, 0);
	for (int i = 0; i < 12; i++) {
		append_batch(r, 3000); /* a rotation every one or two batches */
		uint64_t last = r->next_id - 1;
		ck_assert_int_eq(walrec_recorder_sync(r->rec), 0);
		note_durable(r, last);
		struct wr_pl_crash c;
		ck_assert_int_eq(wr_pl_crash_now("after sync", &c), 0);
		check_crash(r, &c);
	}
	walrec_recorder_state_t st;
	walrec_recorder_meta_state(r->rec, &st);
	ck_assert_uint_ge(st.segment_index, 8);
	ck_assert_uint_gt(atomic_load(&prep_fsyncs_refused), 0);
	walrec_recorder_t *rec = r->rec;
	set_rec(r, NULL);
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
	check_sim_errors(r);
	wr_pl_stop();
	free(r);
}
END_TEST

/* ---- the simulator's own model ---------------------------------------------------- */

/* A file written with the system-call table, synced or not. */
static void
model_write(const char *path, const char *data, bool sync)
{
	int fd = wr_sys.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(wr_fs_pwrite_all(fd, data, strlen(data), 0), 0);
	if (sync)
		ck_assert_int_eq(wr_sys.fdatasync(fd), 0);
	wr_sys.close(fd);
}

/* wal.meta replaced without fdatasync before the rename: torn or empty after a crash. */
static int
replace_unsynced(const char *dir, const void *data, size_t len)
{
	char tmp[4300], dst[4300];
	snprintf(tmp, sizeof tmp, "%s/wal.meta.tmp", dir);
	snprintf(dst, sizeof dst, "%s/wal.meta", dir);
	int fd = wr_sys.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(wr_fs_pwrite_all(fd, data, len, 0), 0);
	wr_sys.close(fd);
	ck_assert_int_eq(wr_sys.rename(tmp, dst), 0);
	return wr_fs_sync_dir(dir);
}

START_TEST(test_powerloss_model_keeps_synced_loses_unsynced)
{
	char dir[4200];
	snprintf(dir, sizeof dir, "%s/m", base);
	ck_assert_int_eq(mkdir(dir, 0750), 0);
	ck_assert_int_eq(wr_pl_start(dir, base, 42), 0);
	char a[4300], b[4300];
	snprintf(a, sizeof a, "%s/synced", dir);
	snprintf(b, sizeof b, "%s/unsynced", dir);
	model_write(a, "durable bytes", true);
	ck_assert_int_eq(wr_fs_sync_dir(dir), 0);
	model_write(b, "volatile bytes", false);
	uint8_t meta[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	ck_assert_int_eq(wr_fs_durable_replace(dir, "wal.meta", meta, sizeof meta), 0);
	meta[0] = 99;
	/* Replaced again; the rename not yet durable. */
	char tmp[4300], dst[4300];
	snprintf(tmp, sizeof tmp, "%s/wal.meta.tmp", dir);
	snprintf(dst, sizeof dst, "%s/wal.meta", dir);
	int fd = wr_sys.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	ck_assert_int_eq(wr_fs_pwrite_all(fd, meta, sizeof meta, 0), 0);
	ck_assert_int_eq(wr_sys.fdatasync(fd), 0);
	wr_sys.close(fd);
	ck_assert_int_eq(wr_sys.rename(tmp, dst), 0);

	unsigned lost = 0, kept = 0, meta_old = 0, meta_new = 0;
	for (int i = 0; i < 200; i++) {
		struct wr_pl_crash c;
		ck_assert_int_eq(wr_pl_crash_now("model", &c), 0);
		char p[4400];
		size_t len = 0;
		snprintf(p, sizeof p, "%s/synced", c.dir);
		uint8_t *s = wr_test_read_file(p, &len);
		ck_assert_ptr_nonnull(s);
		ck_assert_uint_eq(len, strlen("durable bytes"));
		ck_assert_int_eq(memcmp(s, "durable bytes", len), 0);
		free(s);
		snprintf(p, sizeof p, "%s/unsynced", c.dir);
		s = wr_test_read_file(p, &len);
		if (s == NULL || len == 0)
			lost++;
		else if (len == strlen("volatile bytes") && memcmp(s, "volatile bytes", len) == 0)
			kept++;
		free(s);
		snprintf(p, sizeof p, "%s/wal.meta", c.dir);
		s = wr_test_read_file(p, &len);
		ck_assert_ptr_nonnull(s);
		ck_assert_uint_eq(len, 16);
		if (s[0] == 1)
			meta_old++;
		else if (s[0] == 99)
			meta_new++;
		free(s);
		wr_test_rmtree(c.dir);
	}
	/* Both outcomes occur for what was not synced; only one for what was. */
	ck_assert_uint_gt(lost, 0);
	ck_assert_uint_gt(kept, 0);
	ck_assert_uint_gt(meta_old, 0);
	ck_assert_uint_gt(meta_new, 0);
	ck_assert_uint_eq(meta_old + meta_new, 200);
	char buf[2048];
	ck_assert_msg(wr_pl_errors(buf, sizeof buf) == 0, "%s", buf);

	/* A replace that skips the data sync is caught: wal.meta could be empty. */
	for (int i = 0; i < 20 && wr_pl_errors(NULL, 0) == 0; i++) {
		ck_assert_int_eq(replace_unsynced(dir, meta, sizeof meta), 0);
		struct wr_pl_crash c;
		ck_assert_int_eq(wr_pl_crash_now("model", &c), 0);
		wr_test_rmtree(c.dir);
	}
	ck_assert_uint_gt(wr_pl_errors(buf, sizeof buf), 0);
	ck_assert_msg(strstr(buf, "wal.meta would be") != NULL, "%s", buf);
	wr_pl_stop();
}
END_TEST

static Suite *
powerloss_suite(void)
{
	Suite *s = suite_create("powerloss");
	TCase *core = tcase_create("core");
	tcase_add_checked_fixture(core, setup_dir, teardown_dir);
	tcase_add_test(core, test_powerloss_model_keeps_synced_loses_unsynced);
	tcase_add_test(core, test_powerloss_segment_names_synced_by_their_first_sync);
	suite_add_tcase(s, core);
	TCase *conc = tcase_create("concurrency");
	tcase_add_checked_fixture(conc, setup_dir, teardown_dir);
	tcase_set_timeout(conc, 1800);
	tcase_add_test(conc, test_powerloss_crash_points_recover);
	suite_add_tcase(s, conc);
	return s;
}

WR_CHECK_MAIN(powerloss_suite)
