/* SPDX-License-Identifier: MIT */
/* recorder/telemetry: snapshot layout and validation, torn reads, producer counters, live readers. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <walrec.h>

#include "lib/clock.h"
#include "lib/lag.h"
#include "recorder/drain.h"
#include "recorder/telemetry.h"
#include "tests/testutil.h"

static const char *
chan_name(char *buf, size_t len, const char *tag)
{
	static int n;
	snprintf(buf, len, "tt%d-%s-%d", (int)getpid(), tag, n++);
	return buf;
}

static void *
xaligned(size_t n)
{
	void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
	ck_assert_ptr_nonnull(p);
	memset(p, 0, n);
	return p;
}

/* A telemetry region in memory shared with forked children. */
static void *
shared_area(void)
{
	void *a = mmap(NULL, WR_TEL_AREA_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);
	ck_assert_ptr_ne(a, MAP_FAILED);
	return a;
}

static walrec_recorder_t *
open_recorder(const char *dir)
{
	walrec_recorder_config_t cfg;
	walrec_recorder_config_init(&cfg);
	cfg.num_blocks = 64;
	walrec_recorder_t *rec = NULL;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	return rec;
}

/* A recorder in a fresh directory and a running channel it could drain. */
struct fixture {
	char name[64];
	char *dir;
	walrec_recorder_t *rec;
	struct wr_channel *ch;
};

static void
fixture_open(struct fixture *fx, const char *tag, uint32_t producers, uint32_t capacity)
{
	chan_name(fx->name, sizeof fx->name, tag);
	fx->dir = wr_test_mkdtemp();
	fx->rec = open_recorder(fx->dir);
	struct wr_channel_options co;
	wr_channel_options_default(&co);
	co.producers_max = producers;
	co.ring_capacity = capacity;
	ck_assert_int_eq(wr_channel_create(&fx->ch, fx->name, &co), 0);
	ck_assert_int_eq(wr_channel_set_state(fx->ch, WR_CHAN_RUNNING), 0);
}

static void
fixture_close(struct fixture *fx)
{
	wr_channel_close(fx->ch);
	wr_channel_unlink(fx->name);
	walrec_recorder_destroy(fx->rec);
	wr_test_rmtree(fx->dir);
	free(fx->dir);
}

static char *
render(const struct wr_tel_view *v, enum wr_out_format fmt)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(f);
	wr_tel_render(f, fmt, "chan", v, NULL);
	fclose(f);
	return buf;
}

/* ---- core ------------------------------------------------------------------- */

START_TEST(test_telemetry_publish_read_roundtrip)
{
	void *area = shared_area();
	struct wr_tel_snapshot *s = xaligned(sizeof *s), *r = xaligned(sizeof *r);
	/* Nothing there yet: zeros, then an identity without a publication. */
	ck_assert_int_eq(wr_tel_read(area, r, NULL), -ENODATA);
	wr_tel_area_init(area, 10000000);
	ck_assert_int_eq(wr_tel_read(area, r, NULL), -ENODATA);

	s->header.writer_pid = 4242;
	s->header.producer_count = 2;
	s->log.last_event_id = 77;
	s->producers[1].head = 99;
	s->producers[2].head = 12345; /* past producer_count: never published */
	wr_store_relaxed(&s->recorder.writer.blocks_sealed.value, 5);
	wr_tel_publish(area, s);
	struct wr_tel_pub_info pub;
	ck_assert_int_eq(wr_tel_read(area, r, &pub), 0);
	ck_assert_uint_eq(r->header.number, 1);
	ck_assert_uint_eq(r->trailer.number, 1);
	ck_assert_uint_eq(r->header.writer_pid, 4242);
	ck_assert_uint_eq(r->log.last_event_id, 77);
	ck_assert_uint_eq(r->producers[1].head, 99);
	ck_assert_uint_eq(r->producers[2].head, 0);
	ck_assert_uint_eq(wr_load_relaxed(&r->recorder.writer.blocks_sealed.value), 5);
	ck_assert_uint_eq(pub.published, 1);
	ck_assert_uint_eq(pub.interval_ns, 10000000);
	ck_assert_uint_eq(pub.writer_pid, 4242);
	const struct wr_tel_area *a = area;
	uint32_t first = wr_load_relaxed(&a->pub.current);

	/* The next publication goes to the other buffer and flips. */
	s->log.last_event_id = 78;
	wr_tel_publish(area, s);
	ck_assert_uint_ne(wr_load_relaxed(&a->pub.current), first);
	ck_assert_int_eq(wr_tel_read(area, r, NULL), 0);
	ck_assert_uint_eq(r->header.number, 2);
	ck_assert_uint_eq(r->log.last_event_id, 78);

	/* A new aggregator on the same region: numbers continue, last one readable. */
	wr_tel_area_init(area, 20000000);
	ck_assert_int_eq(wr_tel_read(area, r, &pub), 0);
	ck_assert_uint_eq(r->header.number, 2);
	ck_assert_uint_eq(pub.interval_ns, 20000000);
	wr_tel_publish(area, s);
	ck_assert_int_eq(wr_tel_read(area, r, NULL), 0);
	ck_assert_uint_eq(r->header.number, 3);
	free(s);
	free(r);
	munmap(area, WR_TEL_AREA_SIZE);
}
END_TEST

START_TEST(test_telemetry_lag_tracker)
{
	struct wr_lag_tracker t;
	memset(&t, 0, sizeof t);
	ck_assert_uint_eq(wr_lag_age_ns(&t, 1000), 0);
	wr_lag_observe(&t, 10, 100); /* events 1..10 appended by t=100 */
	wr_lag_observe(&t, 10, 150); /* nothing new: no mark */
	wr_lag_observe(&t, 20, 200);
	ck_assert_uint_eq(wr_lag_age_ns(&t, 1000), 900);
	wr_lag_durable(&t, 5); /* event 6 still waits: appended by t=100 */
	ck_assert_uint_eq(wr_lag_age_ns(&t, 1000), 900);
	wr_lag_durable(&t, 10); /* event 11 appended by t=200 */
	ck_assert_uint_eq(wr_lag_age_ns(&t, 1000), 800);
	wr_lag_durable(&t, 20); /* all observed events durable */
	ck_assert_uint_eq(wr_lag_age_ns(&t, 1000), 0);
	/* A full FIFO replaces its newest mark: still a bound, never a crash. */
	for (uint64_t i = 1; i <= 3 * WR_LAG_MARKS; i++)
		wr_lag_observe(&t, 20 + i, 1000 + i);
	ck_assert_uint_eq(wr_lag_age_ns(&t, 5000), 5000 - 1001);
	wr_lag_durable(&t, 20 + WR_LAG_MARKS - 1);
	ck_assert_uint_eq(wr_lag_age_ns(&t, 5000), 5000 - (1000 + 3 * WR_LAG_MARKS));
	wr_lag_durable(&t, 20 + 3 * WR_LAG_MARKS);
	ck_assert_uint_eq(wr_lag_age_ns(&t, 5000), 0);
}
END_TEST

/*
 * Producer-side counters live on each producer's own head line; the
 * aggregator copies them with the entry. A ring of 4 with nobody draining:
 * 4 appends fit, 3 more find it full.
 */
START_TEST(test_telemetry_producer_counters)
{
	struct fixture fx;
	fixture_open(&fx, "pc", 4, 4);
	const char *name = fx.name;
	walrec_recorder_t *rec = fx.rec;
	struct wr_channel *ch = fx.ch;
	walrec_producer_t *p;
	ck_assert_int_eq(walrec_producer_attach(&p, name), 0);
	uint8_t payload[WALREC_PAYLOAD_SIZE] = { 0 };
	/* The recorder looks parked: each append wakes it once. */
	const struct wr_chan_map *m = wr_channel_map(ch);
	wr_store_relaxed(&m->wake->sleeping, 1);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(walrec_producer_try_append(p, payload), i + 1);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(walrec_producer_try_append(p, payload), -EAGAIN);
	wr_store_relaxed(&m->wake->sleeping, 0);

	struct wr_lag_tracker lag;
	memset(&lag, 0, sizeof lag);
	struct wr_tel_view *v = xaligned(sizeof *v);
	wr_tel_collect(&v->snap, rec, ch, &lag);
	const struct wr_tel_snapshot *s = &v->snap;
	ck_assert_uint_eq(s->header.producer_count, 1);
	ck_assert_uint_eq(s->header.producers_max, 4);
	ck_assert_uint_eq(s->channel.producers_active, 1);
	ck_assert_uint_eq(s->channel.attach_count, 1);
	const struct wr_tel_producer *pr = &s->producers[0];
	ck_assert_uint_eq(pr->entry, 0);
	ck_assert_uint_eq(pr->pid, (uint32_t)getpid());
	ck_assert_uint_eq(pr->state, WR_CHAN_ENTRY_ACTIVE);
	ck_assert_uint_eq(pr->head, 4);
	ck_assert_uint_eq(pr->tail, 0);
	ck_assert_uint_eq(pr->attach_head, 0);
	ck_assert_uint_eq(pr->full_waits, WR_STATS_ON ? 3 : 0);
	ck_assert_uint_eq(pr->recorder_wakes, WR_STATS_ON ? 4 : 0);
	ck_assert_uint_eq(s->channel.full_waits, pr->full_waits);

	/* Rendered: per-producer series with their labels, JSON keys. */
	v->status = WR_TEL_LIVE;
	char *prom = render(v, WR_OUT_PROMETHEUS);
	char want[160];
	snprintf(want, sizeof want,
		 "walrec_producer_full_waits_total{channel=\"chan\",producer=\"0\",pid=\"%d\"} %d\n",
		 (int)getpid(), WR_STATS_ON ? 3 : 0);
	ck_assert_msg(strstr(prom, want), "missing %s in\n%s", want, prom);
	snprintf(want, sizeof want,
		 "walrec_producer_ring_used{channel=\"chan\",producer=\"0\",pid=\"%d\"} 4\n",
		 (int)getpid());
	ck_assert_msg(strstr(prom, want), "missing %s", want);
	ck_assert(strstr(prom, "walrec_channel_producers_active{channel=\"chan\"} 1\n"));
	free(prom);
	char *json = render(v, WR_OUT_JSON);
	ck_assert(strstr(json, "\"appends\":4,\"released\":0,\"durable\":0,\"ring_used\":4"));
	free(json);

	/* Released (by hand: nobody drains), detached: the next tenant starts from 0. */
	wr_store_relaxed(&m->cursors[0].tail, 4);
	walrec_producer_detach(p);
	ck_assert_int_eq(walrec_producer_attach(&p, name), 0);
	ck_assert_int_eq(walrec_producer_try_append(p, payload), 5);
	wr_tel_collect(&v->snap, rec, ch, &lag);
	ck_assert_uint_eq(s->header.producer_count, 1);
	ck_assert_uint_eq(s->producers[0].attach_head, 4);
	ck_assert_uint_eq(s->producers[0].full_waits, 0);
	ck_assert_uint_eq(s->channel.attach_count, 2);
	json = render(v, WR_OUT_JSON);
	ck_assert_msg(strstr(json, "\"appends\":1,\"released\":0"), "%s", json);
	free(json);
	walrec_producer_detach(p);

	free(v);
	fixture_close(&fx);
}
END_TEST

/*
 * The aggregator publishes at once, then every interval; stop publishes a
 * final snapshot. Observers classify: live, stopped, dead (pid gone),
 * stale (old, or written by another process) - and read only the control
 * page and the telemetry region (everything else is made unreadable).
 */
START_TEST(test_telemetry_aggregator_and_status)
{
	struct fixture fx;
	fixture_open(&fx, "ag", WR_CHANNEL_DEFAULT_PRODUCERS, WR_CHANNEL_DEFAULT_CAPACITY);
	const char *name = fx.name;
	walrec_recorder_t *rec = fx.rec;
	struct wr_channel *ch = fx.ch;

	struct wr_telemetry *t;
	ck_assert_int_eq(wr_telemetry_start(&t, rec, ch, 1000), -EINVAL);
	ck_assert_int_eq(wr_telemetry_start(&t, rec, ch, 7200000000000ull), -EINVAL);
	ck_assert_int_eq(wr_telemetry_start(&t, rec, ch, WR_TEL_MIN_INTERVAL_NS), 0);

	struct wr_chan_map m;
	ck_assert_int_eq(wr_chan_map_open_readonly(&m, name), 0);
	/* Observers need nothing but the control page and the telemetry region. */
	const struct wr_chan_region *r = m.layout.regions;
	uint8_t *b = m.base;
	ck_assert_int_eq(mprotect(b + r[WR_CHAN_R_TABLE].off,
				  r[WR_CHAN_R_TELEMETRY].off - r[WR_CHAN_R_TABLE].off, PROT_NONE), 0);
	ck_assert_int_eq(mprotect(b + r[WR_CHAN_R_RINGS].off, m.size - r[WR_CHAN_R_RINGS].off,
				  PROT_NONE), 0); /* rings and take logs */

	struct wr_tel_view *v = xaligned(sizeof *v);
	ck_assert_int_eq(wr_tel_observe(&m, v), 0);
	ck_assert_uint_ge(v->snap.header.number, 1);
	ck_assert_int_eq(v->status, WR_TEL_LIVE);
	ck_assert_uint_eq(v->snap.header.interval_ns, WR_TEL_MIN_INTERVAL_NS);
	ck_assert_uint_eq(v->snap.header.writer_pid, (uint32_t)getpid());
	ck_assert(!(v->snap.header.flags & WR_TEL_F_FINAL));
	/* More snapshots follow (bounded wait for an eventual state). */
	uint64_t n0 = v->snap.header.number;
	for (int i = 0; i < 500 && v->snap.header.number < n0 + 3; i++) {
		usleep(10000);
		ck_assert_int_eq(wr_tel_observe(&m, v), 0);
	}
	ck_assert_uint_ge(v->snap.header.number, n0 + 3);

	ck_assert_int_eq(wr_channel_set_state(ch, WR_CHAN_STOPPED), 0);
	wr_telemetry_stop(t);
	ck_assert_int_eq(wr_tel_observe(&m, v), 0);
	ck_assert(v->snap.header.flags & WR_TEL_F_FINAL);
	ck_assert_uint_eq(v->snap.channel.state, WR_CHAN_STOPPED);
	ck_assert_int_eq(v->status, WR_TEL_STOPPED);

	/* A recorder that died without stopping: its pid is gone. */
	pid_t gone = fork();
	if (gone == 0)
		_exit(0);
	waitpid(gone, NULL, 0);
	struct wr_chan_control *c = wr_channel_map(ch)->control;
	wr_store_relaxed(&c->state, WR_CHAN_RUNNING);
	wr_store_relaxed(&c->recorder_pid, (uint32_t)gone);
	ck_assert_int_eq(wr_tel_observe(&m, v), 0);
	ck_assert_int_eq(v->status, WR_TEL_DEAD);
	ck_assert(!v->recorder_alive);
	char *text = render(v, WR_OUT_TEXT);
	ck_assert_msg(strstr(text, "channel chan: dead;"), "%s", text);
	free(text);
	char *prom = render(v, WR_OUT_PROMETHEUS);
	ck_assert(strstr(prom, "walrec_recorder_up{channel=\"chan\"} 0\n"));
	free(prom);

	/* Alive, but the snapshot is another process's: stale. */
	wr_store_relaxed(&c->recorder_pid, (uint32_t)getppid());
	ck_assert_int_eq(wr_tel_observe(&m, v), 0);
	ck_assert_int_eq(v->status, WR_TEL_STALE);
	/* Alive and its own, but old: stale; fresh: live. */
	wr_store_relaxed(&c->recorder_pid, (uint32_t)getpid());
	struct wr_lag_tracker lag;
	memset(&lag, 0, sizeof lag);
	struct wr_tel_snapshot *s = xaligned(sizeof *s);
	wr_tel_collect(s, rec, ch, &lag);
	s->header.interval_ns = WR_TEL_MIN_INTERVAL_NS;
	s->header.taken_mono_ns = wr_clock_now_ns() - 5000000000ull;
	wr_tel_publish(wr_channel_map(ch)->telemetry, s);
	ck_assert_int_eq(wr_tel_observe(&m, v), 0);
	ck_assert_int_eq(v->status, WR_TEL_STALE);
	ck_assert_uint_ge(v->age_ns, 5000000000ull);
	wr_tel_collect(s, rec, ch, &lag);
	s->header.interval_ns = WR_TEL_MIN_INTERVAL_NS;
	wr_tel_publish(wr_channel_map(ch)->telemetry, s);
	ck_assert_int_eq(wr_tel_observe(&m, v), 0);
	ck_assert_int_eq(v->status, WR_TEL_LIVE);

	free(s);
	free(v);
	wr_chan_map_close(&m);
	fixture_close(&fx);
}
END_TEST

/* ---- limits: the region is untrusted ----------------------------------------- */

static void
publish_one(void *area)
{
	struct wr_tel_snapshot *s = xaligned(sizeof *s);
	s->header.producer_count = 3;
	wr_tel_area_init(area, WR_TEL_MIN_INTERVAL_NS);
	wr_tel_publish(area, s);
	free(s);
}

START_TEST(test_telemetry_read_rejects_bad_region)
{
	void *area = shared_area();
	struct wr_tel_snapshot *r = xaligned(sizeof *r);
	struct wr_tel_area *a = area;
	_Atomic uint64_t *w = area;
	/* Every identity word changed on its own: another layout. */
	for (size_t i = 0; i < 6; i++) {
		publish_one(area);
		ck_assert_int_eq(wr_tel_read(area, r, NULL), 0);
		wr_store_relaxed(&w[i], wr_load_relaxed(&w[i]) ^ 0x10);
		ck_assert_int_eq(wr_tel_read(area, r, NULL), -WALREC_EFORMAT);
		memset(area, 0, WR_TEL_AREA_SIZE);
	}
	/* An impossible buffer index. */
	publish_one(area);
	wr_store_relaxed(&a->pub.current, 7);
	ck_assert_int_eq(wr_tel_read(area, r, NULL), -WALREC_ECORRUPT);
	memset(area, 0, WR_TEL_AREA_SIZE);
	/* An impossible producer count, in a buffer that is stable. */
	publish_one(area);
	uint32_t cur = wr_load_relaxed(&a->pub.current);
	struct wr_tel_header *h = (struct wr_tel_header *)((uint8_t *)area + WR_TEL_BUFFER_OFF +
							    cur * WR_TEL_BUFFER_SIZE);
	h->producer_count = WR_TEL_MAX_PRODUCERS + 1;
	ck_assert_int_eq(wr_tel_read(area, r, NULL), -WALREC_ECORRUPT);
	h->producer_count = 3;
	ck_assert_int_eq(wr_tel_read(area, r, NULL), 0);
	/* The trailer does not match the header: not one snapshot. */
	uint64_t *trailer = (uint64_t *)((uint8_t *)h + WR_TEL_TRAILER_OFF);
	(*trailer)++;
	ck_assert_int_eq(wr_tel_read(area, r, NULL), -WALREC_ECORRUPT);
	(*trailer)--;
	/* A writer that died mid-update of the current buffer: retried, then EAGAIN. */
	h->seq |= 1;
	ck_assert_int_eq(wr_tel_read(area, r, NULL), -EAGAIN);
	/* The next writer recovers the buffer. */
	publish_one(area);
	publish_one(area);
	ck_assert_int_eq(wr_tel_read(area, r, NULL), 0);
	ck_assert_uint_eq(r->header.number, 3);
	free(r);
	munmap(area, WR_TEL_AREA_SIZE);
}
END_TEST

/* Random bytes anywhere: every read returns a code, and what it accepts renders. */
START_TEST(test_telemetry_random_scribbles)
{
	void *area = shared_area();
	struct wr_tel_view *v = xaligned(sizeof *v);
	uint64_t seed = 0x7e1e;
	FILE *null = fopen("/dev/null", "w");
	ck_assert_ptr_nonnull(null);
	int accepted = 0;
	for (int round = 0; round < 300; round++) {
		memset(area, 0, WR_TEL_AREA_SIZE);
		publish_one(area);
		uint8_t *bytes = area;
		int n = 1 + (int)(wr_test_rand(&seed) % 64);
		for (int k = 0; k < n; k++) {
			/* Mostly in the header page and the buffer headers, where it matters. */
			uint64_t x = wr_test_rand(&seed);
			size_t off = (x & 1) ? (size_t)(x >> 8) % WR_TEL_AREA_SIZE
					     : WR_TEL_BUFFER_OFF * ((x >> 1) & 1) +
						       WR_TEL_BUFFER_SIZE * ((x >> 2) & 1) +
						       (size_t)(x >> 16) % 128;
			bytes[off] = (uint8_t)(x >> 40);
		}
		int rc = wr_tel_read(area, &v->snap, &v->pub);
		ck_assert(rc == 0 || rc == -ENODATA || rc == -WALREC_EFORMAT ||
			  rc == -WALREC_ECORRUPT || rc == -EAGAIN);
		if (rc != 0)
			continue;
		accepted++;
		ck_assert_uint_le(v->snap.header.producer_count, WR_TEL_MAX_PRODUCERS);
		v->status = WR_TEL_LIVE;
		for (int f = 0; f < 3; f++)
			wr_tel_render(null, (enum wr_out_format)f, "x", v, v);
	}
	ck_assert_int_gt(accepted, 0);
	fclose(null);
	free(v);
	munmap(area, WR_TEL_AREA_SIZE);
}
END_TEST

/* ---- concurrency ------------------------------------------------------------ */

/*
 * Tearing. A writer thread publishes as fast as it can, each snapshot k
 * filling related counters all over the buffer with k (header, log,
 * channel, recorder metrics, every producer entry, trailer). A reader
 * process polls at 1 kHz: every copy it gets must be one snapshot.
 */
static _Atomic int stress_stop;

static void
stress_fill(struct wr_tel_snapshot *s, uint64_t k)
{
	s->header.producer_count = WR_TEL_MAX_PRODUCERS;
	s->log.last_event_id = k;
	s->log.durable_lag_ns = k;
	s->channel.attach_count = k;
	wr_store_relaxed(&s->channel.metrics.taken.value, k);
	s->recorder.events_appended = k;
	wr_store_relaxed(&s->recorder.manager.segment_rotation.count, k);
	wr_store_relaxed(&s->recorder.writer.blocks_sealed.value, k);
	wr_store_relaxed(&s->recorder.meta_store.flush_failures.value, k);
	for (uint32_t i = 0; i < WR_TEL_MAX_PRODUCERS; i++) {
		s->producers[i].entry = i;
		s->producers[i].head = k;
		s->producers[i].recorder_wakes = k;
	}
}

/* 0 when every stamped counter equals the snapshot's number. */
static int
stress_check(const struct wr_tel_snapshot *s)
{
	uint64_t k = s->header.number;
	int bad = s->log.last_event_id != k || s->log.durable_lag_ns != k ||
		  s->channel.attach_count != k ||
		  wr_load_relaxed(&s->channel.metrics.taken.value) != k ||
		  s->recorder.events_appended != k ||
		  wr_load_relaxed(&s->recorder.manager.segment_rotation.count) != k ||
		  wr_load_relaxed(&s->recorder.writer.blocks_sealed.value) != k ||
		  wr_load_relaxed(&s->recorder.meta_store.flush_failures.value) != k ||
		  s->header.producer_count != WR_TEL_MAX_PRODUCERS;
	for (uint32_t i = 0; i < WR_TEL_MAX_PRODUCERS && !bad; i++)
		bad = s->producers[i].head != k || s->producers[i].recorder_wakes != k;
	return bad;
}

static void *
stress_writer(void *arg)
{
	void *area = arg;
	struct wr_tel_snapshot *s = aligned_alloc(64, sizeof *s);
	memset(s, 0, sizeof *s);
	uint64_t k = 0;
	while (!atomic_load(&stress_stop)) {
		stress_fill(s, ++k);
		wr_tel_publish(area, s);
	}
	free(s);
	return (void *)(uintptr_t)k;
}

struct reader_counts {
	uint64_t reads, ok, torn, busy, distinct;
};

START_TEST(test_telemetry_no_torn_snapshot_under_fast_writer)
{
	void *area = shared_area();
	wr_tel_area_init(area, WR_TEL_MIN_INTERVAL_NS);
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t rd = fork();
	ck_assert_int_ge(rd, 0);
	if (rd == 0) {
		close(fds[0]);
		struct reader_counts c = { 0 };
		struct wr_tel_snapshot *r = aligned_alloc(64, sizeof *r);
		uint64_t last = 0;
		for (int i = 0; i < 1000; i++) {
			int rc = wr_tel_read(area, r, NULL);
			c.reads++;
			if (rc == 0) {
				c.ok++;
				if (stress_check(r))
					c.torn++;
				if (r->header.number != last)
					c.distinct++;
				last = r->header.number;
			} else if (rc == -EAGAIN || rc == -ENODATA) {
				c.busy++;
			} else {
				c.torn++; /* a torn copy caught by the trailer check */
			}
			usleep(1000); /* 1 kHz */
		}
		_exit(write(fds[1], &c, sizeof c) == (ssize_t)sizeof c ? 0 : 99);
	}
	close(fds[1]);
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, stress_writer, area), 0);
	struct reader_counts c = { 0 };
	ssize_t got = read(fds[0], &c, sizeof c);
	atomic_store(&stress_stop, 1);
	void *published;
	pthread_join(th, &published);
	int st;
	waitpid(rd, &st, 0);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_int_eq(got, (ssize_t)sizeof c);
	fprintf(stderr, "fast writer: %lu snapshots; reader: %lu reads, %lu coherent (%lu distinct), "
			"%lu busy, %lu torn\n",
		(unsigned long)(uintptr_t)published, (unsigned long)c.reads, (unsigned long)c.ok,
		(unsigned long)c.distinct, (unsigned long)c.busy, (unsigned long)c.torn);
	ck_assert_uint_eq(c.torn, 0);
	ck_assert_uint_gt(c.ok, 0);
	close(fds[0]);
	munmap(area, WR_TEL_AREA_SIZE);
}
END_TEST

/*
 * The real pipeline: a recorder draining a channel with its aggregator at
 * the shortest interval, two producer processes appending, and a reader
 * process polling the snapshot at 1 kHz until the final one. Every copy
 * must be coherent: the channel's sums equal the sums over its producer
 * rows (written together by the aggregator), durable <= tail <= head per
 * producer, and counters never go back between snapshots.
 */
#define LIVE_EVENTS 300000u

static int
live_producer(const char *name)
{
	walrec_producer_t *p = NULL;
	char path[128];
	snprintf(path, sizeof path, "/dev/shm/walrec.%s", name);
	for (int i = 0; i < 2000 && access(path, F_OK) != 0; i++)
		usleep(5000);
	for (int i = 0; i < 2000 && walrec_producer_attach(&p, name) != 0; i++)
		usleep(5000);
	if (!p)
		return 10;
	uint64_t payload[6] = { (uint64_t)getpid(), 0 };
	int64_t seq = 0;
	for (uint32_t k = 1; k <= LIVE_EVENTS; k++) {
		payload[1] = k;
		seq = walrec_producer_append(p, payload);
		if (seq < 0)
			return 11;
		if (k % 2000 == 0)
			usleep(1000);
	}
	int rc = walrec_producer_wait_durable(p, (uint64_t)seq, 30000000000ull);
	walrec_producer_detach(p);
	return rc == 0 ? 0 : 12;
}

static int
live_reader(const char *name, int out_fd)
{
	struct wr_chan_map m;
	int rc = -1;
	for (int i = 0; i < 2000 && (rc = wr_chan_map_open_readonly(&m, name)) != 0; i++)
		usleep(5000);
	if (rc != 0)
		return 20;
	struct wr_tel_snapshot *r = aligned_alloc(64, sizeof *r);
	struct wr_tel_snapshot *prev = aligned_alloc(64, sizeof *prev);
	memset(prev, 0, sizeof *prev);
	struct reader_counts c = { 0 };
	int bad = 0;
	for (int i = 0; i < 60000; i++) { /* at most a minute */
		rc = wr_tel_read(m.telemetry, r, NULL);
		c.reads++;
		if (rc == -ENODATA || rc == -EAGAIN) {
			c.busy++;
			usleep(1000);
			continue;
		}
		if (rc != 0) {
			c.torn++;
			break;
		}
		c.ok++;
		const struct wr_tel_channel *ch = &r->channel;
		uint64_t fw = 0, wk = 0;
		for (uint32_t k = 0; k < r->header.producer_count; k++) {
			const struct wr_tel_producer *p = &r->producers[k];
			fw += p->full_waits;
			wk += p->recorder_wakes;
			if (p->durable_seq > p->tail || p->tail > p->head ||
			    p->head - p->attach_head > LIVE_EVENTS)
				bad++;
			for (uint32_t j = 0; j < prev->header.producer_count; j++) {
				const struct wr_tel_producer *q = &prev->producers[j];
				if (q->entry == p->entry && q->tag == p->tag &&
				    (p->head < q->head || p->tail < q->tail ||
				     p->durable_seq < q->durable_seq))
					bad++;
			}
		}
		if (fw != ch->full_waits || wk != ch->recorder_wakes)
			bad++;
		if (r->header.number < prev->header.number ||
		    r->log.last_event_id < prev->log.last_event_id ||
		    r->log.durable_event_id < prev->log.durable_event_id ||
		    r->recorder.events_appended < prev->recorder.events_appended ||
		    wr_load_relaxed(&ch->metrics.taken.value) <
			    wr_load_relaxed(&prev->channel.metrics.taken.value))
			bad++;
		if (r->header.number != prev->header.number)
			c.distinct++;
		if (bad) {
			c.torn += (uint64_t)bad;
			break;
		}
		memcpy(prev, r, sizeof *r);
		if (r->header.flags & WR_TEL_F_FINAL)
			break;
		usleep(1000); /* 1 kHz */
	}
	if (write(out_fd, &c, sizeof c) != (ssize_t)sizeof c)
		return 21;
	return 0;
}

/* The drain loop's stop flag is a signal handler's: the stopper thread signals. */
static volatile sig_atomic_t live_stop_flag;

static void
live_on_usr1(int sig)
{
	(void)sig;
	live_stop_flag = 1;
}

struct live_stop {
	pid_t producers[2];
	int status[2];
	pthread_t drain_thread;
};

static void *
live_stopper(void *arg)
{
	struct live_stop *ls = arg;
	for (int i = 0; i < 2; i++)
		waitpid(ls->producers[i], &ls->status[i], 0);
	pthread_kill(ls->drain_thread, SIGUSR1);
	return NULL;
}

START_TEST(test_telemetry_live_reader_sees_coherent_snapshots)
{
	char name[64];
	chan_name(name, sizeof name, "live");
	char *dir = wr_test_mkdtemp();
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	/* Children first, while this process has no thread yet. */
	pid_t rd = fork();
	if (rd == 0) {
		close(fds[0]);
		_exit(live_reader(name, fds[1]));
	}
	close(fds[1]);
	struct live_stop ls = { .drain_thread = pthread_self() };
	for (int i = 0; i < 2; i++) {
		ls.producers[i] = fork();
		if (ls.producers[i] == 0)
			_exit(live_producer(name));
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = live_on_usr1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART: a parked drain loop wakes */
	live_stop_flag = 0;
	walrec_recorder_t *rec = open_recorder(dir);
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, live_stopper, &ls), 0);
	struct wr_drain_options o;
	wr_drain_options_default(&o);
	o.channel.producers_max = 4;
	o.channel.ring_capacity = 4096;
	o.telemetry_interval_ns = WR_TEL_MIN_INTERVAL_NS;
	struct wr_drain_stats stats;
	ck_assert_int_eq(wr_drain_run(rec, name, &o, &live_stop_flag, &stats), 0);
	pthread_join(th, NULL);
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
	for (int i = 0; i < 2; i++)
		ck_assert_msg(WIFEXITED(ls.status[i]) && WEXITSTATUS(ls.status[i]) == 0,
			      "producer %d: status %d", i, ls.status[i]);
	ck_assert_uint_eq(stats.events, 2 * LIVE_EVENTS);
	struct reader_counts c = { 0 };
	ssize_t got = read(fds[0], &c, sizeof c);
	int st;
	waitpid(rd, &st, 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "reader status %d", st);
	ck_assert_int_eq(got, (ssize_t)sizeof c);
	fprintf(stderr, "live reader: %lu reads, %lu coherent, %lu distinct snapshots, %lu busy, "
			"%lu bad\n",
		(unsigned long)c.reads, (unsigned long)c.ok, (unsigned long)c.distinct,
		(unsigned long)c.busy, (unsigned long)c.torn);
	ck_assert_uint_eq(c.torn, 0);
	ck_assert_uint_ge(c.distinct, 2);
	close(fds[0]);
	wr_channel_unlink(name);
	wr_test_rmtree(dir);
	free(dir);
}
END_TEST

static Suite *
telemetry_suite(void)
{
	Suite *s = suite_create("telemetry");
	TCase *core = tcase_create("core");
	tcase_set_timeout(core, 30);
	tcase_add_test(core, test_telemetry_publish_read_roundtrip);
	tcase_add_test(core, test_telemetry_lag_tracker);
	tcase_add_test(core, test_telemetry_producer_counters);
	tcase_add_test(core, test_telemetry_aggregator_and_status);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, test_telemetry_read_rejects_bad_region);
	tcase_add_test(limits, test_telemetry_random_scribbles);
	suite_add_tcase(s, limits);
	TCase *conc = tcase_create("concurrency");
	tcase_set_timeout(conc, 120);
	tcase_add_test(conc, test_telemetry_no_torn_snapshot_under_fast_writer);
	tcase_add_test(conc, test_telemetry_live_reader_sees_coherent_snapshots);
	suite_add_tcase(s, conc);
	return s;
}

WR_CHECK_MAIN(telemetry_suite)
