/* SPDX-License-Identifier: MIT */
/* recorder/channel + producer API: layout, protocol, restart, dead and bad producers. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <walrec.h>

#include "lib/clock.h"
#include "recorder/channel.h"
#include "tests/testutil.h"

#define MAXP 8

/* A unique channel name per test process. */
static const char *
chan_name(char *buf, size_t len, const char *tag)
{
	static int n;
	snprintf(buf, len, "t%d-%s-%d", (int)getpid(), tag, n++);
	return buf;
}

static struct wr_channel *
chan_create(const char *name, uint32_t producers, uint32_t capacity)
{
	struct wr_channel_options o;
	wr_channel_options_default(&o);
	o.producers_max = producers;
	o.ring_capacity = capacity;
	o.reclaim_interval_ns = 5000000; /* 5 ms: dead producers found quickly */
	o.park_timeout_ns = 100000000;
	struct wr_channel *ch;
	ck_assert_int_eq(wr_channel_create(&ch, name, &o), 0);
	ck_assert_int_eq(wr_channel_set_state(ch, WR_CHAN_RUNNING), 0);
	return ch;
}

static void
chan_destroy(struct wr_channel *ch, const char *name)
{
	wr_channel_close(ch);
	wr_channel_unlink(name);
}

/* Payload: source number, per-source count, and 4 words derived from both,
 * so a torn slot (half of one event, half of another) is detected. */
static void
payload_make(uint64_t w[6], uint64_t src, uint64_t count)
{
	w[0] = src;
	w[1] = count;
	for (int j = 2; j < 6; j++)
		w[j] = (count * 0x9E3779B97F4A7C15ull) ^ (src << 56) ^ (uint64_t)j;
}

static bool
payload_ok(const uint64_t w[6])
{
	uint64_t x[6];
	payload_make(x, w[0], w[1]);
	return memcmp(x, w, sizeof x) == 0;
}

/* The test's stand-in for the Manager: assigns ids, checks order. */
struct sink {
	uint64_t next_id;
	uint64_t count;
	uint64_t last[MAXP]; /* last count seen per source */
	uint64_t bad;        /* torn or out-of-order events */
	uint64_t only_entry; /* UINT64_MAX: take from every producer */
	uint64_t log_src[256], log_cnt[256], log_id[256];
	size_t logged;
};

/* next_id is the last id given (the channel's *last_id): the channel gives next_id + 1. */
static int
sink_take(void *arg, uint32_t producer, const walrec_event_t *slot, uint64_t id)
{
	struct sink *s = arg;
	if (s->only_entry != UINT64_MAX && producer != s->only_entry)
		return -EAGAIN;
	ck_assert_uint_eq(id, s->next_id + 1);
	uint64_t w[6];
	memcpy(w, slot->payload, sizeof w);
	if (!payload_ok(w) || w[0] >= MAXP || w[1] != s->last[w[0]] + 1)
		s->bad++;
	else
		s->last[w[0]] = w[1];
	if (s->logged < 256) {
		s->log_src[s->logged] = w[0];
		s->log_cnt[s->logged] = w[1];
		s->log_id[s->logged] = id;
		s->logged++;
	}
	s->count++;
	return 0;
}

static void
sink_init(struct sink *s)
{
	memset(s, 0, sizeof *s);
	s->only_entry = UINT64_MAX;
}

static int64_t
append_n(walrec_producer_t *p, uint64_t src, uint64_t from, uint64_t n)
{
	int64_t seq = 0;
	for (uint64_t k = from; k < from + n; k++) {
		uint64_t w[6];
		payload_make(w, src, k);
		seq = walrec_producer_try_append(p, w);
		if (seq <= 0)
			return seq;
	}
	return seq;
}

static uint64_t
entry_owner(struct wr_channel *ch, uint32_t i)
{
	return atomic_load(&wr_channel_map(ch)->table[i].owner);
}

START_TEST(test_channel_layout)
{
	struct wr_chan_layout l;
	wr_chan_layout_compute(&l, 16, 65536);
	uint64_t end = WR_CHAN_CONTROL_SIZE;
	for (int i = 0; i < WR_CHAN_R_COUNT; i++) {
		ck_assert_uint_eq(l.regions[i].off % WR_CACHELINE, 0);
		ck_assert_uint_eq(l.regions[i].size % WR_CACHELINE, 0);
		ck_assert_uint_ge(l.regions[i].off, end); /* ascending, no overlap */
		end = l.regions[i].off + l.regions[i].size;
	}
	ck_assert_uint_eq(l.total_size, end);
	ck_assert_uint_eq(l.regions[WR_CHAN_R_TABLE].off, 4096);
	ck_assert_uint_eq(l.regions[WR_CHAN_R_TABLE].size, 16 * 64);
	ck_assert_uint_eq(l.regions[WR_CHAN_R_CURSORS].size, 16 * 128);
	ck_assert_uint_eq(l.regions[WR_CHAN_R_TELEMETRY].off % 4096, 0);
	ck_assert_uint_eq(l.regions[WR_CHAN_R_TELEMETRY].size, WR_CHAN_TELEMETRY_SIZE);
	ck_assert_uint_eq(l.regions[WR_CHAN_R_RINGS].off % 4096, 0);
	ck_assert_uint_eq(l.regions[WR_CHAN_R_RINGS].size, 16ull * 65536 * 64);
	ck_assert(!wr_chan_limits_ok(0, 64));
	ck_assert(!wr_chan_limits_ok(4, 100));
	ck_assert(!wr_chan_limits_ok(4, 1));
	ck_assert(!wr_chan_limits_ok(WR_CHAN_MAX_PRODUCERS + 1, 64));
	ck_assert(wr_chan_limits_ok(1, 2));

	/* The created object carries the same numbers, and "WALRECCH" first. */
	char name[96];
	chan_name(name, sizeof name, "layout");
	struct wr_channel *ch = chan_create(name, 3, 32);
	const struct wr_chan_map *m = wr_channel_map(ch);
	ck_assert_int_eq(memcmp(m->base, "WALRECCH", 8), 0);
	ck_assert_uint_eq(m->control->layout_version, 1);
	ck_assert_uint_eq(m->control->producers_max, 3);
	ck_assert_uint_eq(m->control->ring_capacity, 32);
	ck_assert_uint_eq(atomic_load(&m->control->recorder_pid), (uint32_t)getpid());
	wr_chan_layout_compute(&l, 3, 32);
	ck_assert_uint_eq(m->control->total_size, l.total_size);
	ck_assert_int_eq(memcmp(m->control->regions, l.regions, sizeof l.regions), 0);
	struct stat st;
	char path[160];
	snprintf(path, sizeof path, "/dev/shm/walrec.%s", name);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, l.total_size);
	chan_destroy(ch, name);
}
END_TEST

START_TEST(test_channel_name_validation)
{
	char long65[66], long64[65];
	memset(long65, 'a', 65);
	long65[65] = 0;
	memset(long64, 'b', 64);
	long64[64] = 0;
	const char *bad[] = { "", "a/b", "/x", "..", "a..b", ".hidden", long65, "sp ace",
			      "semi;colon", "tab\t" };
	struct wr_channel *ch = (struct wr_channel *)1;
	walrec_producer_t *p = (walrec_producer_t *)1;
	for (size_t i = 0; i < WR_ARRAY_SIZE(bad); i++) {
		ck_assert_int_eq(wr_channel_name_check(bad[i]), -EINVAL);
		ck_assert_int_eq(wr_channel_create(&ch, bad[i], NULL), -EINVAL);
		ck_assert_ptr_null(ch);
		ck_assert_int_eq(walrec_producer_attach(&p, bad[i]), -EINVAL);
		ck_assert_ptr_null(p);
	}
	ck_assert_int_eq(wr_channel_name_check(NULL), -EINVAL);
	ck_assert_int_eq(walrec_producer_attach(&p, NULL), -EINVAL);
	ck_assert_int_eq(walrec_producer_attach(NULL, "x"), -EINVAL);
	ck_assert_int_eq(wr_channel_name_check("a.b_c-D9"), 0);
	ck_assert_int_eq(wr_channel_name_check(long64), 0);

	/* Longest valid name works end to end; a missing channel is ENOENT. */
	char name[96];
	snprintf(name, sizeof name, "%.*s%d", 50, long64, (int)getpid());
	struct wr_channel_options o;
	wr_channel_options_default(&o);
	o.producers_max = 1;
	o.ring_capacity = 2;
	ck_assert_int_eq(wr_channel_create(&ch, name, &o), 0);
	struct wr_channel *again;
	ck_assert_int_eq(wr_channel_create(&again, name, &o), -EEXIST);
	ck_assert_ptr_null(again);
	ck_assert_int_eq(walrec_producer_attach(&p, name), 0);
	walrec_producer_detach(p);
	chan_destroy(ch, name);
	ck_assert_int_eq(walrec_producer_attach(&p, name), -ENOENT);
	o.ring_capacity = 48;
	ck_assert_int_eq(wr_channel_create(&ch, name, &o), -EINVAL);
}
END_TEST

static unsigned
shm_mode(const char *name)
{
	char path[160];
	struct stat st;
	snprintf(path, sizeof path, "/dev/shm/walrec.%s", name);
	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_mode & 0777;
}

START_TEST(test_channel_create_mode)
{
	mode_t old = umask(077); /* would strip the group bits without fchmod */
	char a[96], b[96];
	chan_name(a, sizeof a, "mode");
	chan_name(b, sizeof b, "mode");
	struct wr_channel_options o;
	wr_channel_options_default(&o);
	o.producers_max = 1;
	o.ring_capacity = 2;
	struct wr_channel *ch1, *ch2;
	ck_assert_int_eq(wr_channel_create(&ch1, a, &o), 0);
	o.group_access = true;
	ck_assert_int_eq(wr_channel_create(&ch2, b, &o), 0);
	umask(old);
	ck_assert_uint_eq(shm_mode(a), 0600);
	ck_assert_uint_eq(shm_mode(b), 0660);
	chan_destroy(ch1, a);
	chan_destroy(ch2, b);
}
END_TEST

/* An object under the channel's name as a recorder killed while creating it leaves it. */
static int
unfinished_object(const char *name, off_t size, uint64_t attach_count)
{
	char path[128];
	snprintf(path, sizeof path, "/walrec.%s", name);
	int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, size), 0);
	if (size >= 4096)
		ck_assert_int_eq(pwrite(fd, &attach_count, sizeof attach_count, 256), 8);
	return fd;
}

START_TEST(test_channel_create_replaces_unfinished_object)
{
	char name[96];
	struct wr_channel *ch;
	struct wr_channel_options o;
	wr_channel_options_default(&o);
	o.producers_max = 2;
	o.ring_capacity = 8;
	walrec_log_set_handler(NULL, NULL, WALREC_LOG_ERROR);
	/* Killed before ftruncate, and after it: replaced, and usable. */
	for (int i = 0; i < 2; i++) {
		chan_name(name, sizeof name, "unfinished");
		close(unfinished_object(name, i == 0 ? 0 : 1 << 20, 0));
		ck_assert_int_eq(wr_channel_create(&ch, name, &o), 0);
		walrec_producer_t *p;
		ck_assert_int_eq(walrec_producer_attach(&p, name), 0);
		walrec_producer_detach(p);
		chan_destroy(ch, name);
	}
	/* A producer once attached to it: it may hold accepted events; left alone. */
	chan_name(name, sizeof name, "unfinished");
	close(unfinished_object(name, 1 << 20, 1));
	ck_assert_int_eq(wr_channel_create(&ch, name, &o), -EEXIST);
	/* Its creator is alive (holds the lock): left alone too. */
	wr_channel_unlink(name);
	int fd = unfinished_object(name, 1 << 20, 0);
	ck_assert_int_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
	ck_assert_int_eq(wr_channel_create(&ch, name, &o), -EEXIST);
	close(fd);
	ck_assert_int_eq(wr_channel_create(&ch, name, &o), 0); /* and once it is gone */
	chan_destroy(ch, name);
	walrec_log_set_handler(NULL, NULL, -1);
}
END_TEST

START_TEST(test_channel_attach_detach_reuse)
{
	char name[96];
	chan_name(name, sizeof name, "reuse");
	struct wr_channel *ch = chan_create(name, 2, 8);
	walrec_producer_t *p1, *p2, *p3;
	ck_assert_int_eq(walrec_producer_attach(&p1, name), 0);
	ck_assert_int_eq(walrec_producer_attach(&p2, name), 0);
	ck_assert_int_eq(walrec_producer_attach(&p3, name), -EBUSY);
	uint32_t pid = (uint32_t)getpid();
	ck_assert_uint_eq(entry_owner(ch, 0), WR_CHAN_OWNER(pid, WR_CHAN_ENTRY_ACTIVE));
	ck_assert_uint_eq(entry_owner(ch, 1), WR_CHAN_OWNER(pid, WR_CHAN_ENTRY_ACTIVE));

	/* Events in p1's ring: detach waits for the release (up to 1 s),
	 * which a drained and sealed ring satisfies at once. */
	ck_assert_int_eq(append_n(p1, 0, 1, 3), 3);
	struct sink s;
	sink_init(&s);
	ck_assert_int_eq(wr_channel_poll(ch, 100, &s.next_id, sink_take, &s), 3);
	wr_channel_release_sealed(ch, s.next_id);
	walrec_producer_detach(p1);
	ck_assert_uint_eq(entry_owner(ch, 0), 0);

	/* The freed entry is reused; sequences continue after the old tenant. */
	ck_assert_int_eq(walrec_producer_attach(&p3, name), 0);
	ck_assert_uint_eq(entry_owner(ch, 0), WR_CHAN_OWNER(pid, WR_CHAN_ENTRY_ACTIVE));
	ck_assert_uint_eq(walrec_producer_last_sequence(p3), 3);
	ck_assert_int_eq(append_n(p3, 3, 1, 1), 4);
	ck_assert_uint_eq(atomic_load(&wr_channel_map(ch)->table[0].tag), 3);

	/* Detach with an undrained ring (no 1 s wait: the channel is
	 * stopping): the entry is handed to the recorder as DEAD, drained,
	 * released, then freed. */
	ck_assert_int_eq(wr_channel_set_state(ch, WR_CHAN_STOPPING), 0);
	walrec_producer_detach(p3);
	ck_assert_uint_eq(WR_CHAN_OWNER_STATE(entry_owner(ch, 0)), WR_CHAN_ENTRY_DEAD);
	ck_assert_int_eq(wr_channel_poll(ch, 100, &s.next_id, sink_take, &s), 1);
	ck_assert_uint_eq(s.last[3], 1);
	ck_assert_uint_eq(WR_CHAN_OWNER_STATE(entry_owner(ch, 0)), WR_CHAN_ENTRY_DEAD);
	wr_channel_release_sealed(ch, s.next_id);
	ck_assert_uint_eq(entry_owner(ch, 0), 0);
	ck_assert_uint_eq(wr_channel_metrics(ch)->freed.value, 1);
	walrec_producer_detach(p2);
	walrec_producer_detach(NULL);
	chan_destroy(ch, name);
}
END_TEST

START_TEST(test_channel_try_append_full_then_release)
{
	char name[96];
	chan_name(name, sizeof name, "full");
	struct wr_channel *ch = chan_create(name, 1, 8);
	walrec_producer_t *p;
	ck_assert_int_eq(walrec_producer_attach(&p, name), 0);
	uint64_t w[6];
	for (uint64_t k = 1; k <= 8; k++) {
		payload_make(w, 0, k);
		ck_assert_int_eq(walrec_producer_try_append(p, w), (int64_t)k);
	}
	payload_make(w, 0, 9);
	ck_assert_int_eq(walrec_producer_try_append(p, w), -EAGAIN);
	ck_assert_int_eq(walrec_producer_try_append(p, NULL), -EINVAL);
	ck_assert_int_eq(walrec_producer_try_append(NULL, w), -EINVAL);

	/* Taken but not sealed: still full (slots are reused only once sealed). */
	struct sink s;
	sink_init(&s);
	ck_assert_int_eq(wr_channel_poll(ch, 100, &s.next_id, sink_take, &s), 8);
	ck_assert_int_eq(walrec_producer_try_append(p, w), -EAGAIN);
	wr_channel_release_sealed(ch, 3); /* ids 1..3 sealed */
	ck_assert_int_eq(walrec_producer_try_append(p, w), 9);
	payload_make(w, 0, 10);
	ck_assert_int_eq(walrec_producer_try_append(p, w), 10);
	payload_make(w, 0, 11);
	ck_assert_int_eq(walrec_producer_try_append(p, w), 11);
	payload_make(w, 0, 12);
	ck_assert_int_eq(walrec_producer_try_append(p, w), -EAGAIN);
	ck_assert_uint_eq(atomic_load(&wr_channel_map(ch)->cursors[0].tail), 3);

	/* Timestamps: supplied one kept; default is the realtime clock. */
	wr_channel_release_sealed(ch, 8);
	ck_assert_int_eq(walrec_producer_try_append_ts(p, w, 12345), 12);
	walrec_event_t *ring = wr_chan_ring(wr_channel_map(ch), 0);
	ck_assert_uint_eq(ring[11 & 7].timestamp_ns, 12345);
	ck_assert_uint_eq(ring[11 & 7].event_id, 0);
	ck_assert_uint_gt(ring[10 & 7].timestamp_ns, 1600000000ull * 1000000000ull);
	ck_assert_int_eq(wr_channel_poll(ch, 100, &s.next_id, sink_take, &s), 4);
	ck_assert_uint_eq(s.bad, 0);
	ck_assert_uint_eq(s.last[0], 12);

	/* STOPPING refuses appends; the blocking variant too. */
	ck_assert_int_eq(wr_channel_set_state(ch, WR_CHAN_STOPPING), 0);
	ck_assert_int_eq(walrec_producer_try_append(p, w), -WALREC_ECLOSED);
	ck_assert_int_eq(walrec_producer_append(p, w), -WALREC_ECLOSED);
	ck_assert_int_eq(wr_channel_set_state(ch, 77), -EINVAL);
	walrec_producer_detach(p);
	chan_destroy(ch, name);
}
END_TEST

START_TEST(test_channel_durable_marks)
{
	/* Two producers, interleaved ids, durable positions at every id. */
	char name[96];
	chan_name(name, sizeof name, "marks");
	struct wr_channel *ch = chan_create(name, 2, 64);
	walrec_producer_t *a, *b;
	ck_assert_int_eq(walrec_producer_attach(&a, name), 0);
	ck_assert_int_eq(walrec_producer_attach(&b, name), 0);
	struct sink s;
	sink_init(&s);
	/* Rounds of one event each, sealed one id at a time: a gets odd ids,
	 * b even ones (poll takes both rings each round). */
	for (uint64_t k = 1; k <= 10; k++) {
		ck_assert_int_gt(append_n(a, 0, k, 1), 0);
		ck_assert_int_gt(append_n(b, 1, k, 1), 0);
		ck_assert_int_eq(wr_channel_poll(ch, 100, &s.next_id, sink_take, &s), 2);
		wr_channel_release_sealed(ch, s.next_id - 1);
		wr_channel_release_sealed(ch, s.next_id);
	}
	const struct wr_chan_map *m = wr_channel_map(ch);
	/* For durable id D, each producer's durable_seq is the count of its
	 * events with id <= D. */
	for (uint64_t d = 1; d <= 20; d++) {
		wr_channel_publish_durable(ch, d);
		uint64_t want[2] = { 0, 0 };
		for (size_t i = 0; i < s.logged; i++)
			if (s.log_id[i] <= d)
				want[s.log_src[i]]++;
		ck_assert_uint_eq(atomic_load(&m->durable[0].durable_seq), want[0]);
		ck_assert_uint_eq(atomic_load(&m->durable[1].durable_seq), want[1]);
	}
	ck_assert_int_eq(walrec_producer_wait_durable(a, 10, 0), 0);
	ck_assert_int_eq(walrec_producer_wait_durable(a, 11, 0), -EINVAL); /* never appended */

	/* More releases than the mark FIFO holds before one durable publish:
	 * coalesced marks stay correct (never ahead) and catch up. */
	for (uint64_t k = 11; k <= 200; k++) {
		ck_assert_int_gt(append_n(a, 0, k, 1), 0);
		ck_assert_int_eq(wr_channel_poll(ch, 100, &s.next_id, sink_take, &s), 1);
		wr_channel_release_sealed(ch, s.next_id);
	}
	ck_assert_uint_eq(s.next_id, 210);
	wr_channel_publish_durable(ch, 100); /* a's events with id <= 100: 10 + 90 */
	uint64_t got = atomic_load(&m->durable[0].durable_seq);
	ck_assert_uint_le(got, 100);
	ck_assert_uint_ge(got, 20);
	wr_channel_publish_durable(ch, 210);
	ck_assert_uint_eq(atomic_load(&m->durable[0].durable_seq), 200);
	ck_assert_uint_eq(atomic_load(&m->durable[1].durable_seq), 10);
	ck_assert_uint_eq(s.bad, 0);
	walrec_producer_detach(a);
	walrec_producer_detach(b);
	chan_destroy(ch, name);
}
END_TEST

/* Child: attach, append one event, wait for it with timeout_ns; exit code
 * 0 durable, 2 closed, 3 timed out, 1 anything else. */
static void
child_wait_durable(const char *name, uint64_t timeout_ns)
{
	alarm(10);
	walrec_producer_t *p;
	if (walrec_producer_attach(&p, name) != 0)
		_exit(1);
	int64_t seq = append_n(p, 0, 1, 1);
	if (seq <= 0)
		_exit(1);
	int rc = walrec_producer_wait_durable(p, (uint64_t)seq, timeout_ns);
	walrec_producer_detach(p);
	_exit(rc == 0 ? 0 : rc == -WALREC_ECLOSED ? 2 : rc == -ETIMEDOUT ? 3 : 1);
}

static int
wait_child(pid_t pid)
{
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* Poll until n events were taken (5 s bound: failure detection only). */
static void
take_until(struct wr_channel *ch, struct sink *s, uint64_t n)
{
	uint64_t deadline = wr_clock_now_ns() + 5000000000ull;
	while (s->count < n) {
		ck_assert_int_ge(wr_channel_poll(ch, 1024, &s->next_id, sink_take, s), 0);
		ck_assert_msg(wr_clock_now_ns() < deadline, "events did not arrive");
		usleep(100);
	}
}

START_TEST(test_channel_wait_durable)
{
	char name[96];
	chan_name(name, sizeof name, "durable");
	struct wr_channel *ch = chan_create(name, 2, 16);

	/* In-process: times out until published. */
	walrec_producer_t *p;
	ck_assert_int_eq(walrec_producer_attach(&p, name), 0);
	int64_t seq = append_n(p, 1, 1, 2);
	ck_assert_int_eq(seq, 2);
	ck_assert_int_eq(walrec_producer_wait_durable(p, 0, 0), 0);
	ck_assert_int_eq(walrec_producer_wait_durable(p, 1, 0), -ETIMEDOUT);
	ck_assert_int_eq(walrec_producer_wait_durable(p, 1, 2000000), -ETIMEDOUT);
	ck_assert_int_eq(walrec_producer_wait_durable(NULL, 1, 0), -EINVAL);
	struct sink s;
	sink_init(&s);
	take_until(ch, &s, 2);
	wr_channel_release_sealed(ch, 1); /* the recorder releases at each seal */
	wr_channel_release_sealed(ch, 2);
	wr_channel_publish_durable(ch, 1);
	ck_assert_int_eq(walrec_producer_wait_durable(p, 1, 0), 0);
	ck_assert_int_eq(walrec_producer_wait_durable(p, 2, 0), -ETIMEDOUT);
	/* A durable position posted from another thread is applied by poll. */
	wr_channel_post_durable(ch, 2);
	ck_assert_int_eq(wr_channel_poll(ch, 10, &s.next_id, sink_take, &s), 0);
	ck_assert_int_eq(walrec_producer_wait_durable(p, 2, 0), 0);
	walrec_producer_detach(p);

	/* Cross-process: a child sleeping in wait_durable wakes on publish; the
	 * drain thread sees that somebody waits (durable_wanted) until then. */
	ck_assert(!wr_channel_durable_wanted(ch));
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		child_wait_durable(name, 5000000000ull);
	take_until(ch, &s, 3);
	wr_channel_release_sealed(ch, s.next_id);
	uint64_t deadline = wr_clock_now_ns() + 5000000000ull;
	while (!wr_channel_durable_wanted(ch) && wr_clock_now_ns() < deadline)
		usleep(1000);
	ck_assert(wr_channel_durable_wanted(ch));
	wr_channel_publish_durable(ch, s.next_id);
	ck_assert_int_eq(wait_child(pid), 0);
	ck_assert(!wr_channel_durable_wanted(ch));

	/* Stopping the channel ends a wait on an event that is not durable. */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		child_wait_durable(name, 5000000000ull);
	take_until(ch, &s, 4);
	wr_channel_release_sealed(ch, s.next_id);
	usleep(20000);
	ck_assert_int_eq(wr_channel_set_state(ch, WR_CHAN_STOPPED), 0);
	ck_assert_int_eq(wait_child(pid), 2);
	chan_destroy(ch, name);
}
END_TEST

START_TEST(test_channel_meta_mirror)
{
	char name[96];
	chan_name(name, sizeof name, "meta");
	struct wr_channel *ch = chan_create(name, 1, 2);
	struct wr_channel_meta m;
	/* Never published: 0, fields zero. */
	ck_assert_int_eq(wr_channel_read_meta(wr_channel_map(ch), &m), 0);
	ck_assert_uint_eq(m.last_sealed_id, 0);
	ck_assert_uint_eq(m.change, 0);
	struct wr_channel_meta v = { .segment_index = 7, .offset = 16512, .last_sealed_id = 300,
				     .last_durable_id = 256, .sealed_segment_index = 8,
				     .sealed_blocks = 2 };
	wr_channel_publish_meta(ch, &v);
	/* A second mapping (an observer) reads the same values. */
	struct wr_chan_map obs;
	int fd;
	ck_assert_int_eq(wr_chan_map_open(&obs, name, &fd, false), 0);
	close(fd);
	ck_assert_int_eq(wr_channel_read_meta(&obs, &m), 1);
	ck_assert_uint_eq(m.segment_index, 7);
	ck_assert_uint_eq(m.offset, 16512);
	ck_assert_uint_eq(m.last_sealed_id, 300);
	ck_assert_uint_eq(m.last_durable_id, 256);
	ck_assert_uint_eq(m.sealed_segment_index, 8);
	ck_assert_uint_eq(m.sealed_blocks, 2);
	/* Every publish moves the futex word followers sleep on. */
	ck_assert_uint_eq(m.change, 1);
	ck_assert_uint_eq(atomic_load(&obs.meta->sealed_futex), 1);
	/* A writer killed mid-update leaves seq odd: bounded retry, -EAGAIN. */
	atomic_fetch_add(&obs.meta->seq, 1);
	ck_assert_int_eq(wr_channel_read_meta(&obs, &m), -EAGAIN);
	/* The next recorder's publish repairs it. */
	v.last_sealed_id = 400;
	wr_channel_publish_meta(ch, &v);
	ck_assert_int_eq(wr_channel_read_meta(&obs, &m), 1);
	ck_assert_uint_eq(m.last_sealed_id, 400);
	ck_assert_uint_eq(m.change, 2);
	wr_chan_map_close(&obs);
	chan_destroy(ch, name);
}
END_TEST

/* Simulated recorder death: drop the channel object without stopping it. */
static struct wr_channel *
recorder_restart(struct wr_channel *ch, const char *name, uint64_t last_sealed)
{
	wr_channel_close(ch);
	struct wr_channel *nch;
	ck_assert_int_eq(wr_channel_open(&nch, name, NULL), 0);
	struct sink dummy;
	sink_init(&dummy);
	ck_assert_int_eq(wr_channel_poll(nch, 1, &dummy.next_id, sink_take, &dummy), -EINVAL); /* resume first */
	ck_assert_int_eq(wr_channel_resume(nch, last_sealed), 0);
	ck_assert_int_eq(wr_channel_resume(nch, last_sealed), -EINVAL);
	ck_assert_int_eq(wr_channel_set_state(nch, WR_CHAN_RUNNING), 0);
	return nch;
}

START_TEST(test_channel_resume_exactly_once)
{
	char name[96];
	chan_name(name, sizeof name, "resume");
	struct wr_channel *ch = chan_create(name, 2, 16);
	walrec_producer_t *a, *b;
	ck_assert_int_eq(walrec_producer_attach(&a, name), 0);
	ck_assert_int_eq(walrec_producer_attach(&b, name), 0);
	ck_assert_int_eq(append_n(a, 0, 1, 5), 5);
	ck_assert_int_eq(append_n(b, 1, 1, 5), 5);
	struct sink s;
	sink_init(&s);
	ck_assert_int_eq(wr_channel_poll(ch, 100, &s.next_id, sink_take, &s), 10);
	ck_assert_uint_eq(s.bad, 0);
	/* The recorder released ids 1..4, then sealed 5 and 6 and died
	 * before releasing them; 7..10 were assigned, never sealed. */
	wr_channel_release_sealed(ch, 4);
	wr_channel_publish_durable(ch, 2);
	uint64_t sealed_src[2] = { 0, 0 };
	for (size_t i = 0; i < s.logged; i++)
		if (s.log_id[i] <= 6)
			sealed_src[s.log_src[i]]++;
	ck_assert_uint_eq(sealed_src[0], 5);
	ck_assert_uint_eq(sealed_src[1], 1);
	/* A producer keeps appending while no recorder runs. */
	ck_assert_int_eq(append_n(a, 0, 6, 1), 6);

	/* A second incarnation (log recovered to id 6) takes only a's slot
	 * again, seals it as id 7 and dies before taking any of b's: the
	 * first incarnation's take log for b (ids 7..10) must be void, or
	 * the third incarnation would take b's id 7 as sealed. */
	ch = recorder_restart(ch, name, 6);
	const struct wr_chan_map *m = wr_channel_map(ch);
	ck_assert_uint_eq(wr_channel_metrics(ch)->resumed_released.value, 2);
	ck_assert_uint_eq(wr_channel_metrics(ch)->resumed_retaken.value, 5);
	ck_assert_uint_eq(atomic_load(&m->cursors[0].tail), 5);
	ck_assert_uint_eq(atomic_load(&m->cursors[1].tail), 1);
	/* The first incarnation's take logs are void now. */
	for (uint32_t i = 0; i < 2; i++) {
		struct wr_chan_takes *tl = wr_chan_takes(m, i);
		ck_assert_uint_gt(atomic_load(&tl->count), 0);
		ck_assert_uint_eq(atomic_load(&tl->base), atomic_load(&tl->count));
	}
	struct sink s2;
	sink_init(&s2);
	s2.next_id = 6;
	s2.last[0] = sealed_src[0];
	s2.last[1] = sealed_src[1];
	s2.only_entry = 0;
	for (int k = 0; k < 4 && s2.count == 0; k++)
		wr_channel_poll(ch, 1, &s2.next_id, sink_take, &s2);
	ck_assert_uint_eq(s2.count, 1);
	ck_assert_uint_eq(s2.last[0], 6);
	ck_assert_uint_eq(s2.bad, 0);
	uint64_t a_sealed = s2.last[0];

	/* Third incarnation: exactly the unsealed events come back, in order. */
	ch = recorder_restart(ch, name, 7);
	struct sink s3;
	sink_init(&s3);
	s3.next_id = 7;
	s3.last[0] = a_sealed;
	s3.last[1] = sealed_src[1];
	ck_assert_int_eq(wr_channel_poll(ch, 100, &s3.next_id, sink_take, &s3), (6 - a_sealed) + (5 - sealed_src[1]));
	ck_assert_uint_eq(s3.bad, 0);
	ck_assert_uint_eq(s3.last[0], 6);
	ck_assert_uint_eq(s3.last[1], 5);
	/* Durable bookkeeping survives: sealed-before-restart slots count. */
	wr_channel_release_sealed(ch, s3.next_id);
	wr_channel_publish_durable(ch, s3.next_id);
	ck_assert_int_eq(walrec_producer_wait_durable(a, 6, 0), 0);
	ck_assert_int_eq(walrec_producer_wait_durable(b, 5, 0), 0);

	/* A second recorder on the same channel is refused. */
	struct wr_channel *other;
	ck_assert_int_eq(wr_channel_open(&other, name, NULL), -EBUSY);
	ck_assert_int_eq(wr_channel_resume(ch, 1), -EINVAL);
	walrec_producer_detach(a);
	walrec_producer_detach(b);
	chan_destroy(ch, name);
}
END_TEST

static void
log_count(void *arg, int level, const char *msg)
{
	(void)level;
	(void)msg;
	(*(unsigned *)arg)++;
}

/* One producer for many laps of a small ring (one long run in the take log), then a restart. */
START_TEST(test_channel_resume_after_many_laps)
{
	char name[96];
	chan_name(name, sizeof name, "laps");
	struct wr_channel *ch = chan_create(name, 1, 16);
	walrec_producer_t *p;
	ck_assert_int_eq(walrec_producer_attach(&p, name), 0);
	struct sink s;
	sink_init(&s);
	uint64_t sent = 0;
	for (int lap = 0; lap < 50; lap++) {
		ck_assert_int_eq(append_n(p, 0, sent + 1, 10), (int64_t)(sent + 10));
		sent += 10;
		ck_assert_int_eq(wr_channel_poll(ch, 100, &s.next_id, sink_take, &s), 10);
		wr_channel_release_sealed(ch, s.next_id - 3); /* the last 3 stay unsealed */
	}
	ck_assert_uint_eq(s.bad, 0);
	/* 500 slots taken in one run, 497 sealed, 3 not: those come back. */
	ch = recorder_restart(ch, name, s.next_id - 3);
	const struct wr_chan_map *m = wr_channel_map(ch);
	ck_assert_uint_eq(WR_CHAN_OWNER_STATE(entry_owner(ch, 0)), WR_CHAN_ENTRY_ACTIVE);
	ck_assert_uint_eq(atomic_load(&m->cursors[0].tail), 497);
	struct sink s2;
	sink_init(&s2);
	s2.next_id = 497;
	s2.last[0] = 497;
	ck_assert_int_eq(wr_channel_poll(ch, 100, &s2.next_id, sink_take, &s2), 3);
	ck_assert_uint_eq(s2.bad, 0);
	ck_assert_uint_eq(s2.last[0], 500);
	walrec_producer_detach(p);
	chan_destroy(ch, name);
}
END_TEST

/* A take log scribbled on while no recorder ran: that producer is rejected at resume, the others resume. */
START_TEST(test_channel_resume_rejects_damaged_take_log)
{
	char name[96];
	chan_name(name, sizeof name, "takes");
	struct wr_channel *ch = chan_create(name, 3, 16);
	walrec_producer_t *p[3];
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(walrec_producer_attach(&p[i], name), 0);
		ck_assert_int_eq(append_n(p[i], (uint64_t)i, 1, 6), 6);
	}
	struct sink s;
	sink_init(&s);
	ck_assert_int_eq(wr_channel_poll(ch, 100, &s.next_id, sink_take, &s), 18);
	const struct wr_chan_map *m = wr_channel_map(ch);
	/* 0: a run past the head; 1: a count below the base; 2: untouched. */
	struct wr_chan_takes *t0 = wr_chan_takes(m, 0), *t1 = wr_chan_takes(m, 1);
	atomic_store(&t0->rec[0].n, 1000);
	atomic_store(&t1->base, atomic_load(&t1->count) + 5);
	unsigned lines = 0;
	walrec_log_set_handler(log_count, &lines, WALREC_LOG_WARN);
	ch = recorder_restart(ch, name, 18);
	walrec_log_set_handler(NULL, NULL, 0);
	m = wr_channel_map(ch);
	ck_assert_uint_eq(WR_CHAN_OWNER_STATE(entry_owner(ch, 0)), WR_CHAN_ENTRY_REJECTED);
	ck_assert_uint_eq(WR_CHAN_OWNER_STATE(entry_owner(ch, 1)), WR_CHAN_ENTRY_REJECTED);
	ck_assert_uint_eq(atomic_load(&m->table[0].reject_reason), WR_CHAN_REJECT_TAKES);
	ck_assert_uint_eq(atomic_load(&m->table[1].reject_reason), WR_CHAN_REJECT_TAKES);
	ck_assert_uint_ge(lines, 2);
	/* The intact one: its 6 events were sealed (L = 18), all released. */
	ck_assert_uint_eq(atomic_load(&m->cursors[2].tail), 6);
	ck_assert_int_eq(append_n(p[2], 2, 7, 2), 8);
	struct sink s2;
	sink_init(&s2);
	s2.next_id = 18;
	s2.last[2] = 6;
	ck_assert_int_eq(wr_channel_poll(ch, 100, &s2.next_id, sink_take, &s2), 2);
	ck_assert_uint_eq(s2.bad, 0);
	for (int i = 0; i < 3; i++)
		walrec_producer_detach(p[i]);
	chan_destroy(ch, name);
}
END_TEST

START_TEST(test_channel_open_rejects_bad_control)
{
	char name[96];
	chan_name(name, sizeof name, "format");
	struct wr_channel *ch = chan_create(name, 2, 8);
	wr_channel_close(ch); /* drops the recorder lock; the object stays */
	char path[160];
	snprintf(path, sizeof path, "/dev/shm/walrec.%s", name);
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	uint8_t *raw = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(raw, MAP_FAILED);
	/* Each field corrupted in turn: open and attach both refuse it. */
	const size_t offs[] = { 0, 8, 12, 16, 24, 28, 32, 40, 64, 72, 96, 160, 168 };
	for (size_t i = 0; i < WR_ARRAY_SIZE(offs); i++) {
		uint32_t saved;
		memcpy(&saved, raw + offs[i], 4);
		uint32_t bad = saved ^ 0x40;
		memcpy(raw + offs[i], &bad, 4);
		struct wr_channel *x;
		walrec_producer_t *p;
		ck_assert_int_eq(wr_channel_open(&x, name, NULL), -WALREC_EFORMAT);
		ck_assert_int_eq(walrec_producer_attach(&p, name), -WALREC_EFORMAT);
		memcpy(raw + offs[i], &saved, 4);
	}
	/* A huge capacity that would put the rings past the object. */
	uint32_t cap = 1u << 21;
	memcpy(raw + 28, &cap, 4);
	walrec_producer_t *p;
	ck_assert_int_eq(walrec_producer_attach(&p, name), -WALREC_EFORMAT);
	cap = 8;
	memcpy(raw + 28, &cap, 4);
	ck_assert_int_eq(walrec_producer_attach(&p, name), 0);
	walrec_producer_detach(p);
	/* A cut object. */
	ck_assert_int_eq(ftruncate(fd, st.st_size - 4096), 0);
	ck_assert_int_eq(walrec_producer_attach(&p, name), -WALREC_EFORMAT);
	ck_assert_int_eq(ftruncate(fd, 100), 0);
	ck_assert_int_eq(walrec_producer_attach(&p, name), -WALREC_EFORMAT);
	munmap(raw, (size_t)st.st_size);
	close(fd);
	wr_channel_unlink(name);
}
END_TEST

START_TEST(test_channel_garbage_cursors_rejected)
{
	char name[96];
	chan_name(name, sizeof name, "garbage");
	struct wr_channel *ch = chan_create(name, 4, 16);
	const struct wr_chan_map *m = wr_channel_map(ch);
	walrec_producer_t *p[4];
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(walrec_producer_attach(&p[i], name), 0);
		ck_assert_int_eq(append_n(p[i], (uint64_t)i, 1, 4), 4);
	}
	struct sink s;
	sink_init(&s);
	ck_assert_int_eq(wr_channel_poll(ch, 100, &s.next_id, sink_take, &s), 16);
	wr_channel_release_sealed(ch, s.next_id);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(append_n(p[i], (uint64_t)i, 5, 2), 6);

	/* 0: head far ahead; 1: tail moved; 2: owner word with no valid
	 * state; 3: untouched. */
	atomic_store(&m->cursors[0].head, 0xdeadbeefcafeull);
	atomic_store(&m->cursors[1].tail, 3);
	atomic_store(&m->table[2].owner, WR_CHAN_OWNER(getpid(), 0x5a5a));
	ck_assert_int_eq(wr_channel_poll(ch, 100, &s.next_id, sink_take, &s), 2);
	ck_assert_uint_eq(s.last[3], 6);
	ck_assert_uint_eq(s.bad, 0);
	ck_assert_uint_eq(wr_channel_metrics(ch)->rejected.value, 3);
	ck_assert_uint_eq(atomic_load(&m->table[0].reject_reason), WR_CHAN_REJECT_HEAD);
	ck_assert_uint_eq(atomic_load(&m->table[1].reject_reason), WR_CHAN_REJECT_TAIL);
	ck_assert_uint_eq(atomic_load(&m->table[2].reject_reason), WR_CHAN_REJECT_STATE);
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(WR_CHAN_OWNER_STATE(entry_owner(ch, (uint32_t)i)),
				  WR_CHAN_ENTRY_REJECTED);
	/* Rejected producers learn it; the good one goes on. */
	ck_assert_int_eq(append_n(p[1], 1, 7, 1), -WALREC_ECLOSED);
	ck_assert_int_eq(append_n(p[3], 3, 7, 1), 7);
	ck_assert_int_eq(wr_channel_poll(ch, 100, &s.next_id, sink_take, &s), 1);
	wr_channel_release_sealed(ch, s.next_id);
	ck_assert_uint_eq(wr_channel_metrics(ch)->rejected.value, 3);

	/* Rejected entries stay out of use; the drained one is reused. */
	walrec_producer_detach(p[3]);
	ck_assert_int_eq(walrec_producer_attach(&p[3], name), 0);
	ck_assert_uint_eq(WR_CHAN_OWNER_STATE(entry_owner(ch, 3)), WR_CHAN_ENTRY_ACTIVE);

	/* A head that goes backwards. */
	ck_assert_int_eq(append_n(p[3], 3, 8, 2), 9);
	ck_assert_int_eq(wr_channel_poll(ch, 100, &s.next_id, sink_take, &s), 2);
	atomic_store(&m->cursors[3].head, 8);
	ck_assert_int_eq(wr_channel_poll(ch, 100, &s.next_id, sink_take, &s), 0);
	ck_assert_uint_eq(atomic_load(&m->table[3].reject_reason), WR_CHAN_REJECT_HEAD);
	ck_assert_uint_eq(wr_channel_metrics(ch)->rejected.value, 4);
	walrec_producer_t *extra;
	ck_assert_int_eq(walrec_producer_attach(&extra, name), -EBUSY);
	ck_assert_int_eq(walrec_producer_wait_durable(p[3], 8, 1000000000ull), -WALREC_ECLOSED);
	walrec_producer_detach(p[3]);
	chan_destroy(ch, name);
	for (int i = 0; i < 3; i++)
		walrec_producer_detach(p[i]);
}
END_TEST

START_TEST(test_channel_random_scribbles_stay_in_bounds)
{
	/* Random values in every shared word a producer can write, with
	 * appends, polls, releases and reclaims in between: nothing may be
	 * read or written outside the object (ASan build), every call
	 * returns, and the bad entries are counted. A fresh channel whenever
	 * every entry is rejected. */
	unsigned lines = 0;
	walrec_log_set_handler(log_count, &lines, WALREC_LOG_WARN);
	uint64_t seed = 12345, rejected = 0;
	for (int chan = 0; chan < 20; chan++) {
		char name[96];
		chan_name(name, sizeof name, "scribble");
		struct wr_channel *ch = chan_create(name, 2, 8);
		const struct wr_chan_map *m = wr_channel_map(ch);
		struct sink s;
		sink_init(&s);
		walrec_producer_t *hp[2] = { NULL, NULL };
		for (int round = 0; round < 40; round++) {
			for (int j = 0; j < 2; j++) {
				if (!hp[j] && walrec_producer_attach(&hp[j], name) != 0)
					continue;
				int64_t r = append_n(hp[j], 0, 1, wr_test_rand(&seed) % 10);
				ck_assert(r >= 0 || r == -EAGAIN || r == -WALREC_ECLOSED ||
					  r == -WALREC_ECORRUPT);
				if (r == -WALREC_ECLOSED) {
					walrec_producer_detach(hp[j]);
					hp[j] = NULL;
				}
			}
			uint32_t i = (uint32_t)(wr_test_rand(&seed) % 2);
			uint64_t v = wr_test_rand(&seed);
			switch (wr_test_rand(&seed) % 8) {
			case 0: atomic_store(&m->cursors[i].head, v % 3 ? v % 64 : v); break;
			case 1: atomic_store(&m->cursors[i].tail, v % 16); break;
			case 2: atomic_store(&m->table[i].owner, WR_CHAN_OWNER(getpid(), v % 7)); break;
			case 3: { /* the take log: read only by a resume, never trusted */
				struct wr_chan_takes *tl = wr_chan_takes(m, i);
				uint32_t k = (uint32_t)(v % wr_chan_takes_per_producer(8));
				atomic_store(&tl->rec[k].pos, wr_test_rand(&seed));
				atomic_store(&tl->rec[k].n, (uint32_t)wr_test_rand(&seed));
				atomic_store(&tl->count, v % 5 ? atomic_load(&tl->count) : v);
				break;
			}
			case 4: atomic_store(&m->durable[i].durable_seq, v); break;
			default: break; /* rounds without damage */
			}
			ck_assert_int_ge(wr_channel_poll(ch, 64, &s.next_id, sink_take, &s), 0);
			wr_channel_release_sealed(ch, s.next_id);
			wr_channel_publish_durable(ch, s.next_id);
			wr_channel_reclaim(ch);
		}
		for (int j = 0; j < 2; j++)
			walrec_producer_detach(hp[j]);
		rejected += wr_channel_metrics(ch)->rejected.value;
		chan_destroy(ch, name);
	}
	walrec_log_set_handler(NULL, NULL, 0);
	ck_assert_uint_gt(rejected, 0);
	ck_assert_uint_gt(lines, 0);
}
END_TEST

/* Child producer: M events of source src with blocking append, then wait
 * until the last one is durable. */
static void
child_produce(const char *name, uint64_t src, uint64_t m)
{
	alarm(20);
	walrec_producer_t *p;
	if (walrec_producer_attach(&p, name) != 0)
		_exit(1);
	int64_t seq = 0;
	for (uint64_t k = 1; k <= m; k++) {
		uint64_t w[6];
		payload_make(w, src, k);
		seq = walrec_producer_append(p, w);
		if (seq <= 0)
			_exit(2);
	}
	if (walrec_producer_wait_durable(p, (uint64_t)seq, 10000000000ull) != 0)
		_exit(3);
	walrec_producer_detach(p);
	_exit(0);
}

START_TEST(test_channel_multiprocess_exactly_once)
{
	enum { N = 3, M = 20000 };
	char name[96];
	chan_name(name, sizeof name, "mp");
	struct wr_channel *ch = chan_create(name, 4, 256);
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0)
			child_produce(name, (uint64_t)i, M);
	}
	struct sink s;
	sink_init(&s);
	uint32_t rounds = 0;
	uint64_t deadline = wr_clock_now_ns() + 20000000000ull;
	while (s.count < (uint64_t)N * M) {
		ssize_t n = wr_channel_poll(ch, 512, &s.next_id, sink_take, &s);
		ck_assert_int_ge(n, 0);
		if (n > 0) {
			/* Seal and make durable in batches. */
			wr_channel_release_sealed(ch, s.next_id);
			wr_channel_publish_durable(ch, s.next_id);
			rounds = 0;
		} else {
			wr_channel_idle(ch, &rounds);
		}
		ck_assert_msg(wr_clock_now_ns() < deadline, "stalled at %llu events",
			      (unsigned long long)s.count);
	}
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(wait_child(pids[i]), 0);
	ck_assert_uint_eq(s.count, (uint64_t)N * M);
	ck_assert_uint_eq(s.bad, 0);
	for (int i = 0; i < N; i++)
		ck_assert_uint_eq(s.last[i], M);
	/* Nothing more arrives; every entry is back to free. */
	ck_assert_int_eq(wr_channel_poll(ch, 512, &s.next_id, sink_take, &s), 0);
	for (uint32_t i = 0; i < 4; i++)
		ck_assert_uint_eq(entry_owner(ch, i), 0);
	chan_destroy(ch, name);
}
END_TEST

/* Child producer that appends until killed. */
static void
child_produce_forever(const char *name, uint64_t src)
{
	alarm(20);
	walrec_producer_t *p;
	if (walrec_producer_attach(&p, name) != 0)
		_exit(1);
	for (uint64_t k = 1;; k++) {
		uint64_t w[6];
		payload_make(w, src, k);
		if (walrec_producer_append(p, w) <= 0)
			_exit(2);
	}
}

START_TEST(test_channel_producer_killed_midstream)
{
	enum { M = 20000 };
	char name[96];
	chan_name(name, sizeof name, "kill");
	struct wr_channel *ch = chan_create(name, 3, 64);
	uint64_t seed = (uint64_t)getpid();
	pid_t good[2];
	for (int i = 0; i < 2; i++) {
		good[i] = fork();
		ck_assert_int_ge(good[i], 0);
		if (good[i] == 0)
			child_produce(name, (uint64_t)i, M);
	}
	struct sink s;
	sink_init(&s);
	uint64_t deadline = wr_clock_now_ns() + 20000000000ull;
	/* Three victims in turn, each killed at a random instant. */
	for (int v = 0; v < 3; v++) {
		uint64_t src = 2 + (uint64_t)v;
		pid_t victim = fork();
		ck_assert_int_ge(victim, 0);
		if (victim == 0)
			child_produce_forever(name, src);
		/* Killed at a random instant after its first event arrived (so it
		 * did attach): anywhere in append, including mid-slot-write. */
		uint64_t kill_at = UINT64_MAX;
		bool killed = false;
		uint64_t freed_before = wr_channel_metrics(ch)->freed.value;
		uint32_t rounds = 0;
		/* Until the victim is dead and its entry drained and freed. */
		while (!killed || wr_channel_metrics(ch)->freed.value == freed_before) {
			ssize_t n = wr_channel_poll(ch, 256, &s.next_id, sink_take, &s);
			ck_assert_int_ge(n, 0);
			if (n > 0) {
				wr_channel_release_sealed(ch, s.next_id);
				wr_channel_publish_durable(ch, s.next_id);
				rounds = 0;
			} else {
				wr_channel_idle(ch, &rounds);
			}
			if (kill_at == UINT64_MAX && s.last[src] > 0)
				kill_at = wr_clock_now_ns() + wr_test_rand(&seed) % 20000000;
			if (!killed && wr_clock_now_ns() >= kill_at) {
				ck_assert_int_eq(kill(victim, SIGKILL), 0);
				int status;
				ck_assert_int_eq(waitpid(victim, &status, 0), victim);
				ck_assert(WIFSIGNALED(status));
				killed = true;
			}
			ck_assert_msg(wr_clock_now_ns() < deadline, "victim %d not reclaimed", v);
		}
		ck_assert_uint_ge(wr_channel_metrics(ch)->dead.value, (uint64_t)v + 1);
	}
	/* The survivors finish: all of their events, in order. */
	while (s.last[0] < M || s.last[1] < M) {
		ssize_t n = wr_channel_poll(ch, 256, &s.next_id, sink_take, &s);
		ck_assert_int_ge(n, 0);
		wr_channel_release_sealed(ch, s.next_id);
		wr_channel_publish_durable(ch, s.next_id);
		if (n == 0)
			usleep(50);
		ck_assert_msg(wr_clock_now_ns() < deadline, "survivors stalled");
	}
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(wait_child(good[i]), 0);
	/* No torn or reordered event from anyone, victims included (their
	 * counts are contiguous up to the kill). */
	ck_assert_uint_eq(s.bad, 0);
	ck_assert_uint_eq(s.last[0], M);
	ck_assert_uint_eq(s.last[1], M);
	ck_assert_uint_eq(wr_channel_metrics(ch)->rejected.value, 0);
	/* Every entry ends free: victims' by the recorder, survivors' by detach. */
	wr_channel_release_sealed(ch, s.next_id);
	wr_channel_reclaim(ch);
	for (uint32_t i = 0; i < 3; i++)
		ck_assert_uint_eq(entry_owner(ch, i), 0);
	chan_destroy(ch, name);
}
END_TEST

START_TEST(test_channel_park_woken_by_append)
{
	char name[96];
	chan_name(name, sizeof name, "park");
	struct wr_channel *ch = chan_create(name, 1, 8);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		alarm(10);
		walrec_producer_t *p;
		if (walrec_producer_attach(&p, name) != 0)
			_exit(1);
		/* Wait until the recorder announced its sleep, then append once. */
		struct wr_chan_map view;
		int fd;
		if (wr_chan_map_open(&view, name, &fd, false) != 0)
			_exit(1);
		close(fd);
		while (atomic_load(&view.wake->sleeping) == 0)
			usleep(1000);
		usleep(20000);
		if (append_n(p, 0, 1, 1) != 1)
			_exit(2);
		wr_chan_map_close(&view);
		walrec_producer_detach(p);
		_exit(0);
	}
	/* Park with a 10 s timeout; a lost wake-up would show as no event
	 * after 5 s (failure detection only, not a timing measurement). */
	struct sink s;
	sink_init(&s);
	uint64_t start = wr_clock_now_ns();
	while (s.count == 0) {
		wr_channel_park(ch, 10000000000ull);
		ck_assert_int_ge(wr_channel_poll(ch, 8, &s.next_id, sink_take, &s), 0);
		ck_assert_msg(wr_clock_now_ns() - start < 5000000000ull, "parked recorder not woken");
	}
	ck_assert_uint_ge(wr_channel_metrics(ch)->parks.value, 1);
	ck_assert_uint_eq(atomic_load(&wr_channel_map(ch)->wake->sleeping), 0);
	wr_channel_release_sealed(ch, s.next_id);
	ck_assert_int_eq(wait_child(pid), 0);
	chan_destroy(ch, name);
}
END_TEST

static Suite *
channel_suite(void)
{
	if (access("/dev/shm", W_OK) != 0) {
		fprintf(stderr, "check_channel: /dev/shm is not writable; skipping\n");
		exit(77);
	}
	Suite *s = suite_create("channel");
	TCase *core = tcase_create("core");
	tcase_add_test(core, test_channel_layout);
	tcase_add_test(core, test_channel_create_mode);
	tcase_add_test(core, test_channel_create_replaces_unfinished_object);
	tcase_add_test(core, test_channel_attach_detach_reuse);
	tcase_add_test(core, test_channel_try_append_full_then_release);
	tcase_add_test(core, test_channel_durable_marks);
	tcase_add_test(core, test_channel_wait_durable);
	tcase_add_test(core, test_channel_meta_mirror);
	tcase_add_test(core, test_channel_resume_exactly_once);
	tcase_add_test(core, test_channel_resume_rejects_damaged_take_log);
	tcase_add_test(core, test_channel_resume_after_many_laps);
	suite_add_tcase(s, core);

	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, test_channel_name_validation);
	tcase_add_test(limits, test_channel_open_rejects_bad_control);
	tcase_add_test(limits, test_channel_garbage_cursors_rejected);
	tcase_add_test(limits, test_channel_random_scribbles_stay_in_bounds);
	suite_add_tcase(s, limits);

	TCase *conc = tcase_create("concurrency");
	tcase_set_timeout(conc, 30);
	tcase_add_test(conc, test_channel_multiprocess_exactly_once);
	tcase_add_test(conc, test_channel_producer_killed_midstream);
	tcase_add_test(conc, test_channel_park_woken_by_append);
	suite_add_tcase(s, conc);
	return s;
}

WR_CHECK_MAIN(channel_suite)
