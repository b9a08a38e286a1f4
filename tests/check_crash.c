/* SPDX-License-Identifier: MIT */
/*
 * Crash loops over the channel: a recorder process (the drain loop of
 * recorder/drain.c, as `walrec record` runs it) and producer processes
 * (walrec_producer_*), SIGKILLed at seeded random instants and restarted.
 * Producers write what their appends accepted and what wait_durable
 * reported into shared memory that survives them; after each iteration
 * the log must hold every accepted event exactly once, in each producer's
 * order, every durable one, verify, and recover twice to the same state.
 *
 * WALREC_TEST_SEED replays a run's choices (process timing still varies);
 * WALREC_CRASH_ITERATIONS sets the number of iterations.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <walrec.h>

#include "lib/clock.h"
#include "recorder/channel.h"
#include "recorder/drain.h"
#include "tests/logcheck.h"
#include "tests/testutil.h"

#define MAXP 16                 /* producer processes per iteration, replacements included */
#define TAG_MAGIC 0x43524153484c4f4full /* "CRASHLOO": marks a harness payload */

static char *base;
static char cur_chan[64]; /* the iteration's channel, removed even after a failure */

static void
setup_dir(void)
{
	base = wr_test_mkdtemp();
}

static void
teardown_dir(void)
{
	if (cur_chan[0])
		wr_channel_unlink(cur_chan);
	wr_test_rmtree(base);
	free(base);
	base = NULL;
}

/* ---- what the children leave for the harness (shared, survives SIGKILL) ---- */

struct shared_prod {
	uint64_t tag;          /* written by the harness before fork */
	uint64_t target;       /* events to append */
	uint64_t durable_every;
	_Atomic uint64_t accepted; /* last k whose append returned a sequence */
	_Atomic uint64_t durable;  /* last k that wait_durable reported durable */
	_Atomic int state;         /* 0 starting, 1 attached, 2 finished, < 0 failed */
};

struct shared {
	_Atomic uint64_t recorder_runs; /* +1 each time a recorder has the channel running */
	struct shared_prod prod[MAXP];
};

static struct shared *sh;

/* ---- the recorder child ------------------------------------------------------ */

static volatile sig_atomic_t rec_stop;

static void
rec_on_term(int sig)
{
	(void)sig;
	rec_stop = 1;
}

static void
rec_on_running(void *arg, const struct wr_channel *ch, uint64_t resumed_from)
{
	(void)arg, (void)ch, (void)resumed_from;
	atomic_fetch_add(&sh->recorder_runs, 1);
}

static walrec_recorder_config_t
crash_config(void)
{
	walrec_recorder_config_t cfg;
	walrec_recorder_config_init(&cfg);
	cfg.num_blocks = 16;       /* 4096 events a segment: rotations in every iteration */
	cfg.max_hot_segments = 2;  /* and compression */
	cfg.max_cold_segments = 0; /* nothing deleted: every event stays checkable */
	return cfg;
}

static void
recorder_child(const char *dir, const char *chan, const sigset_t *old_mask)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = rec_on_term;
	sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: a parked drain wakes at once */
	/* SIGTERM was blocked across fork: until here the test runner's handler
	 * (which signals the whole process group) was still installed. */
	sigprocmask(SIG_SETMASK, old_mask, NULL);
	walrec_log_set_handler(NULL, NULL, WALREC_LOG_ERROR);
	walrec_recorder_config_t cfg = crash_config();
	walrec_recorder_t *rec = NULL;
	int rc = walrec_recorder_open(&rec, dir, &cfg);
	if (rc != 0)
		_exit(10);
	struct wr_drain_options o;
	wr_drain_options_default(&o);
	o.channel.producers_max = 8;
	o.channel.ring_capacity = 1024; /* small: rings fill while no recorder runs */
	o.channel.park_timeout_ns = 20000000;
	o.on_running = rec_on_running;
	rc = wr_drain_run(rec, chan, &o, &rec_stop, NULL);
	int crc = walrec_recorder_close(rec);
	walrec_recorder_destroy(rec);
	_exit(rc != 0 ? 11 : crc != 0 ? 12 : 0);
}

/* ---- the producer child -------------------------------------------------------- */

static void
payload_make(uint64_t w[6], uint64_t tag, uint64_t k)
{
	w[0] = TAG_MAGIC;
	w[1] = tag;
	w[2] = k;
	w[3] = tag * 0x9E3779B97F4A7C15ull ^ k;
	w[4] = ~k;
	w[5] = TAG_MAGIC ^ tag;
}

static void
producer_child(const char *chan, int j)
{
	struct shared_prod *sp = &sh->prod[j];
	walrec_log_set_handler(wr_test_log_discard, NULL, WALREC_LOG_ERROR); /* attach retries are expected */
	walrec_producer_t *p = NULL;
	uint64_t deadline = wr_clock_now_ns() + 30000000000ull;
	int rc;
	/* The channel may not exist yet, or be half made by a recorder killed while creating it. */
	while ((rc = walrec_producer_attach(&p, chan)) != 0) {
		if ((rc != -ENOENT && rc != -WALREC_EFORMAT) || wr_clock_now_ns() > deadline) {
			atomic_store(&sp->state, -1);
			_exit(1);
		}
		usleep(1000);
	}
	atomic_store(&sp->state, 1);
	int64_t seq = 0;
	for (uint64_t k = 1; k <= sp->target; k++) {
		uint64_t w[6];
		payload_make(w, sp->tag, k);
		seq = walrec_producer_append(p, w);
		if (seq <= 0) {
			atomic_store(&sp->state, -2);
			_exit(2);
		}
		atomic_store_explicit(&sp->accepted, k, memory_order_relaxed);
		if (k % sp->durable_every == 0 || k == sp->target) {
			rc = walrec_producer_wait_durable(p, (uint64_t)seq, 30000000000ull);
			if (rc != 0) {
				atomic_store(&sp->state, -3);
				_exit(3);
			}
			atomic_store_explicit(&sp->durable, k, memory_order_relaxed);
		}
	}
	walrec_producer_detach(p);
	atomic_store(&sp->state, 2);
	_exit(0);
}

/* ---- the harness ---------------------------------------------------------------- */

struct iter {
	uint64_t seed;
	int n;
	char dir[4200];
	char chan[64];
	pid_t recorder;
	pid_t pids[MAXP];
	bool killed[MAXP];
	int nprod;
	uint64_t kills_recorder, kills_producer;
	bool empty_log; /* every producer was killed before its first append */
};

/* A failing iteration leaves no process and no channel behind. */
static void
iter_abandon(struct iter *it)
{
	if (it->recorder > 0)
		kill(it->recorder, SIGKILL);
	for (int j = 0; j < it->nprod; j++)
		if (it->pids[j] > 0 && !it->killed[j])
			kill(it->pids[j], SIGKILL);
	wr_channel_unlink(it->chan);
}

#define ITER_FAIL(it, ...)                                                                 \
	do {                                                                               \
		const char *why_ = wr_test_fmt(__VA_ARGS__);                               \
		iter_abandon(it);                                                          \
		ck_abort_msg("iteration %d (seed %" PRIu64 ", replay one: WALREC_TEST_SEED=%" \
			     PRIu64 " WALREC_CRASH_ITERATIONS=1): %s",                      \
			     (it)->n, (it)->seed, (it)->seed, why_);                        \
	} while (0)

static pid_t
start_recorder(struct iter *it)
{
	sigset_t term, old;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, &old);
	pid_t pid = fork();
	if (pid == 0)
		recorder_child(it->dir, it->chan, &old);
	sigprocmask(SIG_SETMASK, &old, NULL);
	ck_assert_int_ge(pid, 0);
	return pid;
}

static void
start_producer(struct iter *it, uint64_t *rng)
{
	ck_assert_int_lt(it->nprod, MAXP);
	int j = it->nprod++;
	struct shared_prod *sp = &sh->prod[j];
	memset(sp, 0, sizeof *sp);
	sp->tag = (uint64_t)it->n * 100 + (uint64_t)j + 1;
	sp->target = 2000 + wr_test_rand(rng) % 30000;
	sp->durable_every = 50 + wr_test_rand(rng) % 1000;
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		producer_child(it->chan, j);
	it->pids[j] = pid;
}

static int
reap(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return status;
}

static void
kill_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	reap(pid);
}

/* Per producer tag: events seen and whether they came in order. */
struct seen {
	struct iter *it;
	uint64_t count[MAXP];
	uint64_t bad;
	char first_bad[256];
};

static int
seen_event(void *arg, const walrec_event_t *ev, char *why, size_t n)
{
	struct seen *s = arg;
	uint64_t w[6];
	memcpy(w, ev->payload, sizeof w);
	uint64_t j = w[1] % 100 - 1;
	if (w[0] != TAG_MAGIC || w[1] / 100 != (uint64_t)s->it->n || j >= MAXP) {
		snprintf(why, n, "not an event of this iteration's producers");
		return -1;
	}
	uint64_t want[6];
	payload_make(want, w[1], w[2]);
	if (memcmp(want, w, sizeof w) != 0) {
		snprintf(why, n, "payload of producer %" PRIu64 " sequence %" PRIu64 " damaged", j,
			 w[2]);
		return -1;
	}
	if (w[2] != s->count[j] + 1) {
		snprintf(why, n, "producer %" PRIu64 ": sequence %" PRIu64 " after %" PRIu64
			 " (a %s)", j, w[2], s->count[j], w[2] <= s->count[j] ? "duplicate" : "gap");
		return -1;
	}
	s->count[j]++;
	return 0;
}

/* Recover a copy of dir twice: the same events (byte for byte) and the same last id each time. */
static void
check_recovery_idempotent(struct iter *it, const char *dir, const char *what,
			  const uint64_t *durable_at_kill)
{
	char copy[4400];
	snprintf(copy, sizeof copy, "%s.copy", dir);
	struct stat sb;
	if (stat(dir, &sb) != 0) {
		/* Killed before its recovery made the directory: nothing was accepted as durable. */
		for (int j = 0; durable_at_kill && j < it->nprod; j++)
			if (durable_at_kill[j] != 0)
				ITER_FAIL(it, "%s: no directory, and producer %d had %" PRIu64
					  " durable events", what, j, durable_at_kill[j]);
		return;
	}
	ck_assert_int_eq(wr_lc_copy_dir(dir, copy), 0);
	walrec_recorder_config_t cfg = crash_config();
	uint64_t last[2] = { 0, 0 }, digest[2] = { 0, 0 };
	walrec_log_set_handler(NULL, NULL, WALREC_LOG_ERROR);
	for (int pass = 0; pass < 2; pass++) {
		walrec_recorder_t *rec = NULL;
		int rc = walrec_recorder_open(&rec, copy, &cfg);
		if (rc != 0)
			ITER_FAIL(it, "%s: recovery %d failed: %s", what, pass + 1, walrec_strerror(rc));
		walrec_recorder_state_t st;
		walrec_recorder_meta_state(rec, &st);
		last[pass] = st.last_event_id;
		rc = walrec_recorder_close(rec);
		walrec_recorder_destroy(rec);
		if (rc != 0)
			ITER_FAIL(it, "%s: close after recovery %d: %s", what, pass + 1,
				  walrec_strerror(rc));
		struct seen s = { .it = it };
		struct wr_lc_result res;
		if (wr_lc_verify(copy, last[pass] ? WR_LC_META : 0, seen_event, &s, &res) != 0)
			ITER_FAIL(it, "%s: after recovery %d: %s", what, pass + 1, res.error);
		if (res.last_id != last[pass] || res.id_gaps != 0 ||
		    (res.events && res.first_id != 1))
			ITER_FAIL(it, "%s: recovery %d: ids %" PRIu64 "..%" PRIu64 " with %" PRIu64
				  " gaps, recorder at %" PRIu64, what, pass + 1, res.first_id,
				  res.last_id, res.id_gaps, last[pass]);
		for (int j = 0; durable_at_kill && j < it->nprod; j++)
			if (s.count[j] < durable_at_kill[j])
				ITER_FAIL(it, "%s: producer %d: %" PRIu64 " events in the log, %" PRIu64
					  " were reported durable", what, j, s.count[j],
					  durable_at_kill[j]);
		digest[pass] = res.digest;
	}
	if (last[0] != last[1] || digest[0] != digest[1])
		ITER_FAIL(it, "%s: recovering twice differs: %" PRIu64 " then %" PRIu64, what, last[0],
			  last[1]);
	wr_test_rmtree(copy);
}

static bool
producers_done(struct iter *it)
{
	for (int j = 0; j < it->nprod; j++) {
		if (it->killed[j])
			continue;
		int st = atomic_load(&sh->prod[j].state);
		if (st < 0)
			ITER_FAIL(it, "producer %d failed (state %d)", j, st);
		if (st != 2)
			return false;
	}
	return true;
}

/* Every entry of the producer table free: dead producers reclaimed, live ones detached. */
static bool
entries_free(struct iter *it)
{
	struct wr_chan_map m;
	int fd;
	walrec_log_set_handler(wr_test_log_discard, NULL, WALREC_LOG_ERROR);
	int rc = wr_chan_map_open(&m, it->chan, &fd, false);
	walrec_log_set_handler(NULL, NULL, WALREC_LOG_ERROR);
	if (rc != 0)
		return false;
	bool free_all = true;
	for (uint32_t i = 0; i < m.layout.producers_max; i++)
		if (atomic_load(&m.table[i].owner) != 0)
			free_all = false;
	wr_chan_map_close(&m);
	close(fd);
	return free_all;
}

static void
wait_for(struct iter *it, bool (*cond)(struct iter *), const char *what, uint64_t seconds)
{
	uint64_t deadline = wr_clock_now_ns() + seconds * 1000000000ull;
	while (!cond(it)) {
		if (wr_clock_now_ns() > deadline)
			ITER_FAIL(it, "%s did not happen within %" PRIu64 " s", what, seconds);
		int st;
		pid_t r = waitpid(it->recorder, &st, WNOHANG);
		if (r == it->recorder)
			ITER_FAIL(it, "the recorder exited (status 0x%x) while waiting for %s", st,
				  what);
		usleep(2000);
	}
}

static void
run_iteration(struct iter *it, uint64_t seed, int n)
{
	memset(it, 0, sizeof *it);
	it->seed = seed;
	it->n = n;
	uint64_t rng = seed;
	memset(sh, 0, sizeof *sh);
	snprintf(it->dir, sizeof it->dir, "%s/it-%d", base, n);
	snprintf(it->chan, sizeof it->chan, "crash.%d.%d", (int)getpid(), n);
	snprintf(cur_chan, sizeof cur_chan, "%s", it->chan);
	wr_channel_unlink(it->chan);

	it->recorder = start_recorder(it);
	int nprod = 2 + (int)(wr_test_rand(&rng) % 3);
	for (int j = 0; j < nprod; j++)
		start_producer(it, &rng);

	int kills = 1 + (int)(wr_test_rand(&rng) % 3);
	for (int k = 0; k < kills; k++) {
		usleep((useconds_t)(wr_test_rand(&rng) % 40000));
		if (wr_test_rand(&rng) % 2 == 0) {
			/* The recorder, wherever it is: recovery, draining, rotating, syncing. */
			uint64_t durable[MAXP];
			for (int j = 0; j < it->nprod; j++)
				durable[j] = atomic_load(&sh->prod[j].durable);
			kill_reap(it->recorder);
			it->kills_recorder++;
			check_recovery_idempotent(it, it->dir, "after SIGKILL of the recorder", durable);
			usleep((useconds_t)(wr_test_rand(&rng) % 20000)); /* producers keep appending */
			it->recorder = start_recorder(it);
		} else {
			int j = (int)(wr_test_rand(&rng) % (uint64_t)it->nprod);
			if (it->killed[j] || atomic_load(&sh->prod[j].state) == 2)
				continue;
			kill_reap(it->pids[j]);
			it->killed[j] = true;
			it->kills_producer++;
			if (wr_test_rand(&rng) % 2 == 0 && it->nprod < MAXP)
				start_producer(it, &rng);
		}
	}
	/* The survivors finish every event; dead producers' entries are reclaimed. */
	wait_for(it, producers_done, "every surviving producer finishing", 120);
	for (int j = 0; j < it->nprod; j++)
		if (!it->killed[j] && (reap(it->pids[j]) & 0xffff) != 0)
			ITER_FAIL(it, "producer %d exited badly", j);
	wait_for(it, entries_free, "every producer entry free (dead ones reclaimed)", 30);

	/* Stop; sometimes kill the recorder during its clean shutdown too. */
	kill(it->recorder, SIGTERM);
	if (wr_test_rand(&rng) % 4 == 0) {
		usleep((useconds_t)(wr_test_rand(&rng) % 5000));
		kill_reap(it->recorder);
		it->kills_recorder++;
		it->recorder = start_recorder(it);
		uint64_t runs = atomic_load(&sh->recorder_runs);
		uint64_t deadline = wr_clock_now_ns() + 30000000000ull;
		while (atomic_load(&sh->recorder_runs) == runs && wr_clock_now_ns() < deadline)
			usleep(1000);
		kill(it->recorder, SIGTERM);
	}
	int st = reap(it->recorder);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		ITER_FAIL(it, "the recorder's clean stop failed (status 0x%x)", st);
	wr_channel_unlink(it->chan);

	/*
	 * Exactly once, in order, nothing accepted missing. Every producer may
	 * have been killed before its first append: the log is then empty (and
	 * has no wal.meta). The per-producer counts below catch an empty log
	 * that should not be.
	 */
	struct seen s = { .it = it };
	struct wr_lc_result res;
	if (wr_lc_verify(it->dir, WR_LC_META, seen_event, &s, &res) != 0)
		ITER_FAIL(it, "the log: %s", res.error);
	it->empty_log = res.events == 0;
	if (!it->empty_log && (res.id_gaps != 0 || res.first_id != 1))
		ITER_FAIL(it, "ids %" PRIu64 "..%" PRIu64 " with %" PRIu64 " gaps", res.first_id,
			  res.last_id, res.id_gaps);
	uint64_t total = 0;
	for (int j = 0; j < it->nprod; j++) {
		struct shared_prod *sp = &sh->prod[j];
		uint64_t acc = atomic_load(&sp->accepted), dur = atomic_load(&sp->durable);
		uint64_t got = s.count[j];
		total += got;
		if (!it->killed[j] && got != sp->target)
			ITER_FAIL(it, "producer %d: %" PRIu64 " of %" PRIu64 " events in the log", j,
				  got, sp->target);
		/* Killed between its append returning and noting it: one more. */
		if (it->killed[j] && (got < acc || got > acc + 1))
			ITER_FAIL(it, "killed producer %d: %" PRIu64 " events in the log, %" PRIu64
				  " accepted", j, got, acc);
		if (got < dur)
			ITER_FAIL(it, "producer %d: %" PRIu64 " events in the log, %" PRIu64
				  " reported durable", j, got, dur);
	}
	if (total != res.events)
		ITER_FAIL(it, "%" PRIu64 " events in the log, %" PRIu64 " from the producers",
			  res.events, total);
	check_recovery_idempotent(it, it->dir, "after the clean stop", NULL);
	/* The clean stop left nothing for recovery to change. */
	struct wr_lc_result again;
	ck_assert_int_eq(wr_lc_verify(it->dir, WR_LC_META, NULL, NULL, &again), 0);
	ck_assert_uint_eq(again.digest, res.digest);
	wr_test_rmtree(it->dir);
}

START_TEST(test_crash_kill_recorder_and_producers)
{
	uint64_t seed = wr_test_env_u64("WALREC_TEST_SEED", (uint64_t)time(NULL));
	uint64_t iterations = wr_test_env_u64("WALREC_CRASH_ITERATIONS", 12);
	printf("test_crash_kill_recorder_and_producers: seed %" PRIu64 ", %" PRIu64
	       " iterations (replay: WALREC_TEST_SEED=%" PRIu64 ")\n",
	       seed, iterations, seed);
	fflush(stdout);
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(sh, MAP_FAILED);
	struct iter it;
	uint64_t rng = seed, kr = 0, kp = 0, events = 0;
	for (uint64_t i = 0; i < iterations; i++) {
		/* The first iteration uses the seed itself, so a printed seed replays it. */
		uint64_t s = i == 0 ? seed : wr_test_rand(&rng);
		run_iteration(&it, s, (int)i);
		printf("iteration %" PRIu64 " (seed %" PRIu64 "): %d producers, %" PRIu64
		       " recorder kills, %" PRIu64 " producer kills%s\n",
		       i, s, it.nprod, it.kills_recorder, it.kills_producer,
		       it.empty_log ? ", every producer killed before appending: empty log" : "");
		fflush(stdout);
		kr += it.kills_recorder;
		kp += it.kills_producer;
		for (int j = 0; j < it.nprod; j++)
			events += atomic_load(&sh->prod[j].accepted);
	}
	printf("test_crash_kill_recorder_and_producers: %" PRIu64 " iterations, %" PRIu64
	       " recorder kills, %" PRIu64 " producer kills, %" PRIu64
	       " accepted events checked, failures 0\n",
	       iterations, kr, kp, events);
	munmap(sh, sizeof *sh);
}
END_TEST

static Suite *
crash_suite(void)
{
	Suite *s = suite_create("crash");
	TCase *conc = tcase_create("concurrency");
	tcase_add_checked_fixture(conc, setup_dir, teardown_dir);
	tcase_set_timeout(conc, 3600);
	tcase_add_test(conc, test_crash_kill_recorder_and_producers);
	suite_add_tcase(s, conc);
	return s;
}

WR_CHECK_MAIN(crash_suite)
