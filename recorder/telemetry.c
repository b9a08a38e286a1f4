/* SPDX-License-Identifier: MIT */
/* Telemetry: the snapshot aggregator, the cross-process readers and the renderings. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/atomics.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/thread.h"
#include "recorder/telemetry.h"

/* Reader: copies attempted before giving up on a buffer that keeps changing. */
#define TEL_READ_TRIES 200

/* ---- word copies ------------------------------------------------------------ */

/*
 * The shared buffers are accessed only as 64-bit atomic words, relaxed:
 * the seqlock's fences order them. The private side is plain memory,
 * read and written through memcpy so no type is aliased.
 */
static inline _Atomic uint64_t *
tel_buffer(void *area, uint32_t b)
{
	return (_Atomic uint64_t *)((uint8_t *)area + WR_TEL_BUFFER_OFF +
				    (size_t)b * WR_TEL_BUFFER_SIZE);
}

static void
tel_store_words(_Atomic uint64_t *dst, const void *src, size_t off, size_t len)
{
	const uint8_t *s = (const uint8_t *)src + off;
	for (size_t i = 0; i < len / 8; i++) {
		uint64_t w;
		memcpy(&w, s + 8 * i, 8);
		wr_store_relaxed(&dst[off / 8 + i], w);
	}
}

static void
tel_load_words(void *dst, const _Atomic uint64_t *src, size_t off, size_t len)
{
	uint8_t *d = (uint8_t *)dst + off;
	for (size_t i = 0; i < len / 8; i++) {
		uint64_t w = wr_load_relaxed(&src[off / 8 + i]);
		memcpy(d + 8 * i, &w, 8);
	}
}

/* ---- the region ------------------------------------------------------------- */

static void
tel_identity(struct wr_tel_identity *id)
{
	memset(id, 0, sizeof *id);
	id->magic = WR_TEL_MAGIC;
	id->version = WR_TEL_VERSION;
	id->area_size = WR_TEL_AREA_SIZE;
	id->buffer_off = WR_TEL_BUFFER_OFF;
	id->buffer_size = WR_TEL_BUFFER_SIZE;
	id->buffer_count = WR_TEL_BUFFERS;
	id->log_size = sizeof(struct wr_tel_log);
	id->channel_size = sizeof(struct wr_tel_channel);
	id->recorder_size = sizeof(struct wr_recorder_metrics);
	id->producer_size = sizeof(struct wr_tel_producer);
	id->max_producers = WR_TEL_MAX_PRODUCERS;
}

/* The identity in shared memory, compared field by field (words, relaxed). */
static bool
tel_identity_ok(const void *area)
{
	struct wr_tel_identity want, got;
	tel_identity(&want);
	tel_load_words(&got, area, 0, sizeof got);
	return memcmp(&want, &got, sizeof want) == 0;
}

void
wr_tel_area_init(void *area, uint64_t interval_ns)
{
	struct wr_tel_area *a = area;
	/* Acquire pairs with the release store of magic below (an earlier writer's). */
	if (__atomic_load_n(&a->identity.magic, __ATOMIC_ACQUIRE) != WR_TEL_MAGIC ||
	    !tel_identity_ok(area)) {
		_Atomic uint64_t *w = area;
		for (size_t i = 0; i < WR_TEL_AREA_SIZE / 8; i++)
			wr_store_relaxed(&w[i], 0);
		struct wr_tel_identity id;
		tel_identity(&id);
		tel_store_words(w, &id, 8, sizeof id - 8);
		/* Release pairs with the reader's acquire load of magic: a reader
		 * that sees it sees the identity and the zeroed buffers. */
		__atomic_store_n(&a->identity.magic, WR_TEL_MAGIC, __ATOMIC_RELEASE);
	}
	wr_store_relaxed(&a->pub.interval_ns, interval_ns);
	wr_store_relaxed(&a->pub.started_ns, wr_clock_realtime_ns());
}

void
wr_tel_publish(void *area, struct wr_tel_snapshot *s)
{
	struct wr_tel_area *a = area;
	uint32_t cur = wr_load_relaxed(&a->pub.current);
	uint32_t b = cur == 0 ? 1 : 0;
	uint64_t number = wr_load_relaxed(&a->pub.published) + 1;
	uint32_t n = s->header.producer_count;
	if (n > WR_TEL_MAX_PRODUCERS)
		n = s->header.producer_count = WR_TEL_MAX_PRODUCERS;
	s->header.number = number;
	memset(&s->trailer, 0, sizeof s->trailer);
	s->trailer.number = number;

	_Atomic uint64_t *buf = tel_buffer(area, b);
	uint64_t seq = wr_load_relaxed(&buf[0]);
	if (seq & 1)
		seq++; /* a previous writer died mid-update */
	wr_store_relaxed(&buf[0], seq + 1);
	/* Orders the odd seq before the data stores (pairs with the reader's
	 * acquire fence before its second load of seq). */
	wr_fence_release();
	tel_store_words(buf, s, 8, WR_TEL_PRODUCERS_OFF - 8 + (size_t)n * sizeof s->producers[0]);
	tel_store_words(buf, s, WR_TEL_TRAILER_OFF, sizeof s->trailer);
	/* Release pairs with the reader's acquire load of seq: the data is
	 * complete before the even value. */
	wr_store_release(&buf[0], seq + 2);
	/* Release pairs with the reader's acquire load of current. */
	wr_store_release(&a->pub.current, b);
	wr_store_relaxed(&a->pub.writer_pid, s->header.writer_pid);
	/* Release pairs with the reader's acquire load of published. */
	wr_store_release(&a->pub.published, number);
}

int
wr_tel_read(const void *area, struct wr_tel_snapshot *out, struct wr_tel_pub_info *pub)
{
	const struct wr_tel_area *a = area;
	/* Acquire pairs with the release store of magic in wr_tel_area_init. */
	uint64_t magic = __atomic_load_n(&a->identity.magic, __ATOMIC_ACQUIRE);
	if (magic == 0)
		return -ENODATA; /* never initialised: no aggregator has run */
	if (magic != WR_TEL_MAGIC || !tel_identity_ok(area))
		return -WALREC_EFORMAT;
	/* Acquire pairs with the release store of published in wr_tel_publish. */
	uint64_t published = wr_load_acquire(&a->pub.published);
	if (published == 0)
		return -ENODATA;
	for (int tries = 0; tries < TEL_READ_TRIES; tries++) {
		/* Acquire pairs with the writer's release store of current. */
		uint32_t cur = wr_load_acquire(&a->pub.current);
		if (cur >= WR_TEL_BUFFERS)
			return -WALREC_ECORRUPT;
		const _Atomic uint64_t *buf = tel_buffer((void *)area, cur);
		/* Acquire pairs with the writer's final release store of seq. */
		uint64_t s1 = wr_load_acquire(&buf[0]);
		if (s1 & 1) {
			sched_yield();
			continue;
		}
		tel_load_words(out, buf, 8, sizeof out->header - 8);
		uint32_t n = out->header.producer_count;
		if (n > WR_TEL_MAX_PRODUCERS)
			n = WR_TEL_MAX_PRODUCERS; /* judged below, once the copy is coherent */
		tel_load_words(out, buf, 64, WR_TEL_PRODUCERS_OFF - 64 + (size_t)n * sizeof out->producers[0]);
		tel_load_words(out, buf, WR_TEL_TRAILER_OFF, sizeof out->trailer);
		/* Pairs with the writer's release fence after its odd seq: if any
		 * word above came from a later write, this load sees seq moved. */
		wr_fence_acquire();
		if (wr_load_relaxed(&buf[0]) != s1)
			continue;
		out->header.seq = s1;
		/* The writer counts published after the flip: a coherent copy may be
		 * one ahead of it, never more. Acquire pairs with its release store. */
		published = wr_load_acquire(&a->pub.published);
		if (out->header.producer_count > WR_TEL_MAX_PRODUCERS || out->header.number == 0 ||
		    out->header.number > published + 1 || out->trailer.number != out->header.number)
			return -WALREC_ECORRUPT;
		if (pub) {
			pub->writer_pid = wr_load_relaxed(&a->pub.writer_pid);
			pub->published = published;
			pub->interval_ns = wr_load_relaxed(&a->pub.interval_ns);
			pub->started_ns = wr_load_relaxed(&a->pub.started_ns);
		}
		return 0;
	}
	return -EAGAIN;
}

/* ---- collecting ------------------------------------------------------------- */

static void
tel_channel_metrics_copy(struct wr_channel_metrics *d, const struct wr_channel_metrics *s)
{
	wr_counter_copy(&d->taken, &s->taken);
	wr_counter_copy(&d->released, &s->released);
	wr_counter_copy(&d->durable_acks, &s->durable_acks);
	wr_counter_copy(&d->rejected, &s->rejected);
	wr_counter_copy(&d->dead, &s->dead);
	wr_counter_copy(&d->freed, &s->freed);
	wr_counter_copy(&d->resumed_released, &s->resumed_released);
	wr_counter_copy(&d->resumed_retaken, &s->resumed_retaken);
	wr_counter_copy(&d->parks, &s->parks);
	wr_counter_copy(&d->take_log_full, &s->take_log_full);
	wr_counter_copy(&d->producer_wakes, &s->producer_wakes);
}

static void
tel_collect_channel(struct wr_tel_snapshot *s, const struct wr_channel *ch)
{
	const struct wr_chan_map *m = wr_channel_map(ch);
	struct wr_tel_channel *c = &s->channel;
	struct wr_chan_control *ctl = m->control;
	s->header.producers_max = m->layout.producers_max;
	s->header.ring_capacity = m->layout.ring_capacity;
	c->state = wr_load_relaxed(&ctl->state);
	c->recorder_pid = wr_load_relaxed(&ctl->recorder_pid);
	c->recorder_epoch = wr_load_relaxed(&ctl->recorder_epoch);
	c->attach_count = wr_load_relaxed(&ctl->attach_count);
	c->created_ns = ctl->created_ns;
	tel_channel_metrics_copy(&c->metrics, wr_channel_metrics(ch));

	uint32_t n = 0;
	for (uint32_t i = 0; i < m->layout.producers_max; i++) {
		struct wr_chan_entry *e = &m->table[i];
		/* Acquire pairs with the producer's release CAS to ACTIVE: the
		 * attach fields and the cursor's telemetry words are visible. */
		uint64_t o = wr_load_acquire(&e->owner);
		uint32_t st = WR_CHAN_OWNER_STATE(o);
		if (st == WR_CHAN_ENTRY_FREE)
			continue;
		if (st == WR_CHAN_ENTRY_ACTIVE)
			c->producers_active++;
		else if (st == WR_CHAN_ENTRY_ATTACHING)
			c->producers_attaching++;
		else if (st == WR_CHAN_ENTRY_DEAD)
			c->producers_dead++;
		else
			c->producers_rejected++;
		if (n == WR_TEL_MAX_PRODUCERS) {
			s->header.producers_omitted++;
			continue;
		}
		struct wr_tel_producer *p = &s->producers[n++];
		struct wr_chan_cursor *cur = &m->cursors[i];
		memset(p, 0, sizeof *p);
		p->entry = i;
		p->pid = WR_CHAN_OWNER_PID(o);
		p->state = st;
		p->reject_reason = wr_load_relaxed(&e->reject_reason);
		p->tag = wr_load_relaxed(&e->tag);
		p->attach_ns = wr_load_relaxed(&e->attach_ns);
		/*
		 * durable_seq, then tail, then head, each acquire: the recorder
		 * stores a durable_seq only after the tail reached it, and a tail
		 * only after it read a head that far (release/acquire chains), so
		 * the copy has durable_seq <= tail <= head whatever runs meanwhile.
		 */
		p->durable_seq = wr_load_acquire(&m->durable[i].durable_seq);
		p->tail = wr_load_acquire(&cur->tail);
		p->head = wr_load_acquire(&cur->head);
		p->attach_head = wr_load_relaxed(&cur->attach_head);
		p->full_waits = wr_load_relaxed(&cur->full_waits);
		p->recorder_wakes = wr_load_relaxed(&cur->recorder_wakes);
		c->full_waits += p->full_waits;
		c->recorder_wakes += p->recorder_wakes;
	}
	s->header.producer_count = n;
}

void
wr_tel_collect(struct wr_tel_snapshot *s, struct walrec_recorder *rec, const struct wr_channel *ch,
	       struct wr_lag_tracker *lag)
{
	memset(&s->header, 0, sizeof s->header);
	memset(&s->log, 0, sizeof s->log);
	memset(&s->channel, 0, sizeof s->channel);
	s->header.taken_realtime_ns = wr_clock_realtime_ns();
	s->header.writer_pid = (uint32_t)getpid();
	s->header.flags = WR_STATS_ON ? WR_TEL_F_RECORDING : 0;

	walrec_recorder_state_t st;
	walrec_recorder_meta_state(rec, &st);
	uint64_t now = wr_clock_now_ns();
	s->header.taken_mono_ns = now;
	struct wr_tel_log *l = &s->log;
	l->last_event_id = st.last_event_id;
	l->sealed_event_id = st.sealed_event_id;
	l->durable_event_id = st.durable_event_id;
	l->segment_index = st.segment_index;
	l->meta_segment_index = st.meta_segment_index;
	l->meta_offset = st.meta_offset;
	l->meta_last_event_id = st.meta_last_event_id;
	l->latched_error = st.latched_error;
	if (st.last_event_id > st.durable_event_id) {
		l->durable_lag_events = st.last_event_id - st.durable_event_id;
		wr_lag_observe(lag, st.last_event_id, now);
		wr_lag_durable(lag, st.durable_event_id);
		uint64_t mine = wr_lag_age_ns(lag, now);
		uint64_t coord = wr_lag_age_ns(&rec->coordinator.lag, now);
		l->durable_lag_ns = mine > coord ? mine : coord;
	} else {
		wr_lag_durable(lag, st.durable_event_id);
	}
	wr_recorder_metrics_copy(rec, &s->recorder);
	if (ch)
		tel_collect_channel(s, ch);
}

/* ---- the aggregator thread ------------------------------------------------ */

struct wr_telemetry {
	struct walrec_recorder *rec;
	struct wr_channel *ch;
	void *area;
	uint64_t interval_ns;
	struct wr_lag_tracker lag; /* the aggregator thread's (or stop's) */
	struct wr_tel_snapshot *snap;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop; /* under lock */
	pthread_t thread;
};

static void
tel_snapshot_now(struct wr_telemetry *t, uint32_t extra_flags)
{
	wr_tel_collect(t->snap, t->rec, t->ch, &t->lag);
	t->snap->header.interval_ns = t->interval_ns;
	t->snap->header.flags |= extra_flags;
	wr_tel_publish(t->area, t->snap);
}

static void *
tel_main(void *arg)
{
	struct wr_telemetry *t = arg;
	uint64_t next = wr_clock_now_ns() + t->interval_ns;
	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		uint64_t now = wr_clock_now_ns();
		if (now < next) {
			struct timespec dl = wr_clock_deadline(next - now);
			pthread_cond_timedwait(&t->wake, &t->lock, &dl);
			continue;
		}
		pthread_mutex_unlock(&t->lock);
		tel_snapshot_now(t, 0);
		/* A late round does not make the next ones early: one interval on. */
		next += t->interval_ns;
		now = wr_clock_now_ns();
		if (next <= now)
			next = now + t->interval_ns;
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int
wr_telemetry_start(struct wr_telemetry **out, struct walrec_recorder *rec, struct wr_channel *ch,
		   uint64_t interval_ns)
{
	*out = NULL;
	if (interval_ns == 0)
		interval_ns = WR_TEL_DEFAULT_INTERVAL_NS;
	if (interval_ns < WR_TEL_MIN_INTERVAL_NS || interval_ns > WR_TEL_MAX_INTERVAL_NS) {
		wr_log_error("telemetry: interval %llu ns is outside 10 ms..1 h",
			     (unsigned long long)interval_ns);
		return -EINVAL;
	}
	if (rec == NULL || ch == NULL)
		return -EINVAL;
	struct wr_telemetry *t = aligned_alloc(WR_CACHELINE,
					       wr_chan_round_up(sizeof *t, WR_CACHELINE));
	if (t == NULL)
		return -ENOMEM;
	memset(t, 0, sizeof *t);
	t->snap = aligned_alloc(WR_CACHELINE, sizeof *t->snap);
	if (t->snap == NULL) {
		free(t);
		return -ENOMEM;
	}
	memset(t->snap, 0, sizeof *t->snap);
	t->rec = rec;
	t->ch = ch;
	t->area = wr_channel_map(ch)->telemetry;
	t->interval_ns = interval_ns;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->wake, &ca);
	pthread_condattr_destroy(&ca);

	wr_tel_area_init(t->area, interval_ns);
	tel_snapshot_now(t, 0);
	/* A background thread like the recorder's others: on its worker CPUs. */
	int rc = wr_thread_start(&t->thread, "walrec-telem", rec->config.worker_cpus, tel_main, t);
	if (rc != 0) {
		wr_log_error("telemetry: cannot start the aggregator thread: %s", strerror(-rc));
		pthread_mutex_destroy(&t->lock);
		pthread_cond_destroy(&t->wake);
		free(t->snap);
		free(t);
		return rc;
	}
	*out = t;
	return 0;
}

void
wr_telemetry_stop(struct wr_telemetry *t)
{
	if (t == NULL)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_signal(&t->wake);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	tel_snapshot_now(t, WR_TEL_F_FINAL);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->wake);
	free(t->snap);
	free(t);
}

/* ---- observing -------------------------------------------------------------- */

const char *
wr_tel_status_name(enum wr_tel_status s)
{
	switch (s) {
	case WR_TEL_LIVE: return "live";
	case WR_TEL_STALE: return "stale";
	case WR_TEL_DEAD: return "dead";
	case WR_TEL_STOPPED: return "stopped";
	}
	return "unknown";
}

const char *
wr_tel_chan_state_name(uint32_t state)
{
	switch (state) {
	case WR_CHAN_STARTING: return "starting";
	case WR_CHAN_RUNNING: return "running";
	case WR_CHAN_STOPPING: return "stopping";
	case WR_CHAN_STOPPED: return "stopped";
	}
	return "invalid";
}

static bool
tel_pid_alive(uint32_t pid)
{
	if (pid == 0 || pid > INT32_MAX)
		return false;
	/* EPERM: it exists, owned by someone else. */
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

int
wr_tel_observe(const struct wr_chan_map *m, struct wr_tel_view *v)
{
	const struct wr_chan_control *c = m->control;
	v->chan_state = wr_load_acquire(&c->state);
	v->recorder_pid = wr_load_relaxed(&c->recorder_pid);
	v->recorder_epoch = wr_load_relaxed(&c->recorder_epoch);
	v->recorder_alive = tel_pid_alive(v->recorder_pid);
	int rc = wr_tel_read(m->telemetry, &v->snap, &v->pub);
	if (rc < 0)
		return rc;
	uint64_t now = wr_clock_now_ns();
	const struct wr_tel_header *h = &v->snap.header;
	v->age_ns = now > h->taken_mono_ns ? now - h->taken_mono_ns : 0;
	uint64_t iv = h->interval_ns ? h->interval_ns : WR_TEL_DEFAULT_INTERVAL_NS;
	uint64_t limit = WR_TEL_STALE_INTERVALS * iv + 1000000000ull;
	if (v->chan_state == WR_CHAN_STOPPED)
		v->status = WR_TEL_STOPPED;
	else if (!v->recorder_alive)
		v->status = WR_TEL_DEAD;
	else if (v->age_ns > limit || h->writer_pid != v->recorder_pid ||
		 (h->flags & WR_TEL_F_FINAL))
		v->status = WR_TEL_STALE;
	else
		v->status = WR_TEL_LIVE;
	return 0;
}

/* ---- rendering -------------------------------------------------------------- */

static const char *
tel_entry_state_name(uint32_t st)
{
	switch (st) {
	case WR_CHAN_ENTRY_FREE: return "free";
	case WR_CHAN_ENTRY_ATTACHING: return "attaching";
	case WR_CHAN_ENTRY_ACTIVE: return "active";
	case WR_CHAN_ENTRY_DEAD: return "dead";
	case WR_CHAN_ENTRY_REJECTED: return "rejected";
	}
	return "invalid";
}

static const char *
tel_reject_name(uint32_t r)
{
	switch (r) {
	case WR_CHAN_REJECT_NONE: return "none";
	case WR_CHAN_REJECT_STATE: return "state";
	case WR_CHAN_REJECT_HEAD: return "head";
	case WR_CHAN_REJECT_TAIL: return "tail";
	case WR_CHAN_REJECT_TAKES: return "take_log";
	case WR_CHAN_REJECT_DURABLE: return "durable";
	}
	return "invalid";
}

/* a - b, or 0 when the untrusted positions are out of order. */
static inline uint64_t
tel_sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/* Per-producer figures derived from the raw positions. */
struct tel_prod_figures {
	uint64_t appends, released, durable, ring_used;
};

static struct tel_prod_figures
tel_prod(const struct wr_tel_producer *p)
{
	struct tel_prod_figures f = {
		.appends = tel_sub(p->head, p->attach_head),
		.released = tel_sub(p->tail, p->attach_head),
		.durable = tel_sub(p->durable_seq, p->attach_head),
		.ring_used = tel_sub(p->head, p->tail),
	};
	return f;
}

static void
tel_render_status(struct wr_out *o, const char *channel, const struct wr_tel_view *v)
{
	const struct wr_tel_header *h = &v->snap.header;
	bool up = v->status == WR_TEL_LIVE;
	char age[32], iv[32];
	wr_out_fmt_ns(age, sizeof age, v->age_ns);
	wr_out_fmt_ns(iv, sizeof iv, h->interval_ns);
	switch (o->format) {
	case WR_OUT_TEXT:
		fprintf(o->f, "channel %s: %s; recorder pid %u %s (%s, epoch %" PRIu64 ")\n",
			channel, wr_tel_status_name(v->status), v->recorder_pid,
			v->recorder_alive ? "alive" : "gone", wr_tel_chan_state_name(v->chan_state),
			v->recorder_epoch);
		fprintf(o->f, "snapshot #%" PRIu64 " by pid %u, %s old (every %s)%s%s\n", h->number,
			h->writer_pid, age, iv, (h->flags & WR_TEL_F_FINAL) ? ", final" : "",
			(h->flags & WR_TEL_F_RECORDING)
				? ""
				: "; metrics not recorded (recorder built with --disable-telemetry)");
		break;
	case WR_OUT_JSON:
		wr_out_json_object_begin(o, "source");
		wr_out_json_str(o, "kind", "channel");
		wr_out_json_str(o, "name", channel);
		wr_out_json_object_end(o);
		wr_out_json_str(o, "status", wr_tel_status_name(v->status));
		wr_out_json_object_begin(o, "recorder");
		wr_out_json_u64(o, "pid", v->recorder_pid);
		wr_out_json_bool(o, "alive", v->recorder_alive);
		wr_out_json_str(o, "state", wr_tel_chan_state_name(v->chan_state));
		wr_out_json_u64(o, "epoch", v->recorder_epoch);
		wr_out_json_object_end(o);
		wr_out_json_object_begin(o, "snapshot");
		wr_out_json_u64(o, "number", h->number);
		wr_out_json_u64(o, "writer_pid", h->writer_pid);
		wr_out_json_u64(o, "taken_realtime_ns", h->taken_realtime_ns);
		wr_out_json_u64(o, "age_ns", v->age_ns);
		wr_out_json_u64(o, "interval_ns", h->interval_ns);
		wr_out_json_bool(o, "metrics_recorded", (h->flags & WR_TEL_F_RECORDING) != 0);
		wr_out_json_bool(o, "final", (h->flags & WR_TEL_F_FINAL) != 0);
		wr_out_json_object_end(o);
		break;
	case WR_OUT_PROMETHEUS:
		wr_out_component_begin(o, "recorder");
		wr_out_value(o, "up", "1 when the recorder is alive and its snapshot is fresh.", false,
			     up);
		wr_out_value(o, "pid", "Process id of the recorder that owns the channel.", false,
			     v->recorder_pid);
		wr_out_value(o, "epoch", "Recorders that have created or resumed the channel.", false,
			     v->recorder_epoch);
		wr_out_component_end(o);
		wr_out_component_begin(o, "telemetry");
		wr_out_gauge_ns(o, "snapshot_age", "Age of the snapshot these values come from.",
				v->age_ns);
		wr_out_gauge_ns(o, "interval", "Interval between snapshots.", h->interval_ns);
		wr_out_value(o, "snapshots", "Snapshots published on this channel.", true, h->number);
		wr_out_component_end(o);
		break;
	}
}

static void
tel_render_log(struct wr_out *o, const struct wr_tel_log *l)
{
	wr_out_component_begin(o, "log");
	wr_out_value(o, "last_event_id", "Last event id assigned.", false, l->last_event_id);
	wr_out_value(o, "sealed_event_id", "Last event id in a sealed block.", false,
		     l->sealed_event_id);
	wr_out_value(o, "durable_event_id", "Last event id on stable storage.", false,
		     l->durable_event_id);
	wr_out_value(o, "segment_index", "Index of the active segment.", false, l->segment_index);
	wr_out_value(o, "meta_segment_index", "Segment named by wal.meta.", false,
		     l->meta_segment_index);
	wr_out_value(o, "meta_offset", "End of the last sealed block named by wal.meta.", false,
		     l->meta_offset);
	wr_out_value(o, "meta_last_event_id", "Last event id named by wal.meta.", false,
		     l->meta_last_event_id);
	wr_out_gauge_value(o, "latched_error", "-errno that stopped the recorder, 0 when none.",
			   l->latched_error);
	wr_out_value(o, "durable_lag_events", "Events appended but not yet durable.", false,
		     l->durable_lag_events);
	wr_out_gauge_ns(o, "durable_lag", "How long the oldest event not durable has waited.",
			l->durable_lag_ns);
	wr_out_component_end(o);
}

static void
tel_render_channel(struct wr_out *o, const struct wr_tel_snapshot *s)
{
	const struct wr_tel_channel *c = &s->channel;
	const struct wr_channel_metrics *m = &c->metrics;
	wr_out_component_begin(o, "channel");
	wr_out_value(o, "producers_max", "Entries in the producer table.", false,
		     s->header.producers_max);
	wr_out_value(o, "ring_capacity", "Slots per producer ring.", false, s->header.ring_capacity);
	wr_out_value(o, "attaches", "Producer attaches since the channel was created.", true,
		     c->attach_count);
	wr_out_value(o, "producers_active", "Producers attached.", false, c->producers_active);
	wr_out_value(o, "producers_attaching", "Producer entries being claimed.", false,
		     c->producers_attaching);
	wr_out_value(o, "producers_dead", "Dead producers whose rings are still being drained.",
		     false, c->producers_dead);
	wr_out_value(o, "producers_rejected", "Producer entries rejected for impossible cursors.",
		     false, c->producers_rejected);
	wr_out_counter(o, "taken", "Ring slots taken by the recorder.", &m->taken);
	wr_out_counter(o, "released", "Ring slots released after their events were sealed.",
		       &m->released);
	wr_out_counter(o, "durable_acks", "Durable sequence advances published to producers.",
		       &m->durable_acks);
	wr_out_counter(o, "rejected", "Producers rejected for impossible cursors or take logs.",
		       &m->rejected);
	wr_out_counter(o, "dead", "Producers found dead (pid gone).", &m->dead);
	wr_out_counter(o, "reclaimed", "Dead producer entries drained and freed.", &m->freed);
	wr_out_counter(o, "resumed_released", "Ring slots found sealed at a resume.",
		       &m->resumed_released);
	wr_out_counter(o, "resumed_retaken", "Ring slots taken again at a resume.",
		       &m->resumed_retaken);
	wr_out_counter(o, "recorder_parks", "Times the idle recorder parked on its futex.",
		       &m->parks);
	wr_out_counter(o, "take_log_full", "Polls that skipped a ring because its take log was full.",
		       &m->take_log_full);
	wr_out_counter(o, "producer_wakes", "FUTEX_WAKE calls for waiting producers.",
		       &m->producer_wakes);
	wr_out_value(o, "producer_full_waits",
		     "Appends that found a ring full, summed over the producers listed.", false,
		     c->full_waits);
	wr_out_value(o, "producer_recorder_wakes",
		     "Wake-ups of the parked recorder by producers, summed over those listed.",
		     false, c->recorder_wakes);
	wr_out_value(o, "producers_omitted", "Producer entries in use that a snapshot cannot hold.",
		     false, s->header.producers_omitted);
	wr_out_component_end(o);
}

/* The per-second rate of a counter between two snapshots (0 if it went back). */
static uint64_t
tel_rate(uint64_t cur, uint64_t prev, uint64_t window_ns)
{
	if (window_ns == 0 || cur <= prev)
		return 0;
	return (uint64_t)((double)(cur - prev) * 1e9 / (double)window_ns + 0.5);
}

/* The same producer (entry and attachment) in an earlier snapshot, or NULL. */
static const struct wr_tel_producer *
tel_prev_producer(const struct wr_tel_view *prev, const struct wr_tel_producer *p)
{
	if (!prev)
		return NULL;
	for (uint32_t i = 0; i < prev->snap.header.producer_count; i++) {
		const struct wr_tel_producer *q = &prev->snap.producers[i];
		if (q->entry == p->entry && q->tag == p->tag && q->pid == p->pid)
			return q;
	}
	return NULL;
}

static uint64_t
tel_window(const struct wr_tel_view *v, const struct wr_tel_view *prev)
{
	if (!prev || prev->snap.header.writer_pid != v->snap.header.writer_pid ||
	    prev->snap.header.number >= v->snap.header.number ||
	    prev->snap.header.taken_mono_ns >= v->snap.header.taken_mono_ns)
		return 0;
	return v->snap.header.taken_mono_ns - prev->snap.header.taken_mono_ns;
}

static void
tel_render_producers(struct wr_out *o, const struct wr_tel_view *v, const struct wr_tel_view *prev)
{
	const struct wr_tel_snapshot *s = &v->snap;
	uint32_t n = s->header.producer_count;
	uint64_t window = tel_window(v, prev);
	char labels[64], val[32];
	switch (o->format) {
	case WR_OUT_TEXT:
		fprintf(o->f, "producers (%u of %u entries in use)\n", n + s->header.producers_omitted,
			s->header.producers_max);
		if (n == 0)
			break;
		fprintf(o->f, "  %5s %8s %-9s %12s %10s %9s %11s %10s %8s\n", "entry", "pid", "state",
			"appends", "appends/s", "ring_used", "not_durable", "full_waits", "wakes");
		for (uint32_t i = 0; i < n; i++) {
			const struct wr_tel_producer *p = &s->producers[i];
			struct tel_prod_figures f = tel_prod(p);
			const struct wr_tel_producer *q = window ? tel_prev_producer(prev, p) : NULL;
			char rate[24] = "-";
			if (q)
				snprintf(rate, sizeof rate, "%" PRIu64,
					 tel_rate(f.appends, tel_prod(q).appends, window));
			fprintf(o->f, "  %5u %8u %-9s %12" PRIu64 " %10s %9" PRIu64 " %11" PRIu64
				" %10" PRIu64 " %8" PRIu64 "%s%s\n",
				p->entry, p->pid, tel_entry_state_name(p->state), f.appends, rate,
				f.ring_used, tel_sub(f.appends, f.durable), p->full_waits,
				p->recorder_wakes, p->reject_reason ? " rejected: " : "",
				p->reject_reason ? tel_reject_name(p->reject_reason) : "");
		}
		break;
	case WR_OUT_JSON:
		wr_out_json_array_begin(o, "producers");
		for (uint32_t i = 0; i < n; i++) {
			const struct wr_tel_producer *p = &s->producers[i];
			struct tel_prod_figures f = tel_prod(p);
			wr_out_json_object_begin(o, NULL);
			wr_out_json_u64(o, "entry", p->entry);
			wr_out_json_u64(o, "pid", p->pid);
			wr_out_json_str(o, "state", tel_entry_state_name(p->state));
			wr_out_json_str(o, "reject_reason", tel_reject_name(p->reject_reason));
			wr_out_json_u64(o, "tag", p->tag);
			wr_out_json_u64(o, "attach_realtime_ns", p->attach_ns);
			wr_out_json_u64(o, "appends", f.appends);
			wr_out_json_u64(o, "released", f.released);
			wr_out_json_u64(o, "durable", f.durable);
			wr_out_json_u64(o, "ring_used", f.ring_used);
			wr_out_json_u64(o, "full_waits", p->full_waits);
			wr_out_json_u64(o, "recorder_wakes", p->recorder_wakes);
			wr_out_json_object_end(o);
		}
		wr_out_json_array_end(o);
		break;
	case WR_OUT_PROMETHEUS: {
		if (n == 0)
			break;
		static const struct {
			const char *name, *suffix, *type, *help;
		} fam[] = {
			{ "appends", "_total", "counter", "Events this attachment appended." },
			{ "released", "_total", "counter", "Of those, released (sealed in the log)." },
			{ "durable", "_total", "counter", "Of those, acknowledged durable." },
			{ "ring_used", "", "gauge", "Ring slots not yet released." },
			{ "full_waits", "_total", "counter", "Appends that found the ring full." },
			{ "recorder_wakes", "_total", "counter", "Wake-ups of the parked recorder." },
		};
		wr_out_component_begin(o, "producer");
		for (size_t k = 0; k < WR_ARRAY_SIZE(fam); k++) {
			wr_out_prom_family(o, fam[k].name, fam[k].suffix, fam[k].help, fam[k].type);
			for (uint32_t i = 0; i < n; i++) {
				const struct wr_tel_producer *p = &s->producers[i];
				struct tel_prod_figures f = tel_prod(p);
				uint64_t x = k == 0 ? f.appends : k == 1 ? f.released : k == 2 ? f.durable
					     : k == 3 ? f.ring_used : k == 4 ? p->full_waits
									: p->recorder_wakes;
				snprintf(labels, sizeof labels, "producer=\"%u\",pid=\"%u\"", p->entry,
					 p->pid);
				snprintf(val, sizeof val, "%" PRIu64, x);
				wr_out_prom_sample(o, fam[k].name, fam[k].suffix, labels, val);
			}
		}
		wr_out_component_end(o);
		break;
	}
	}
}

/* Counters shown with rates by --watch: name, and where each lives in a snapshot. */
static uint64_t
tel_rate_value(const struct wr_tel_snapshot *s, size_t k)
{
	const struct wr_recorder_metrics *r = &s->recorder;
	switch (k) {
	case 0: return r->events_appended;
	case 1: return wr_load_relaxed(&r->writer.blocks_sealed.value);
	case 2:
		return wr_load_relaxed(&r->durability.sync.samples) +
		       wr_load_relaxed(&r->durability.owner_sync.samples);
	case 3: return wr_load_relaxed(&r->durability.meta_flush.samples);
	case 4: return wr_load_relaxed(&r->manager.segment_rotation.count);
	case 5: return wr_load_relaxed(&r->maintainer.compression.samples);
	case 6: return wr_load_relaxed(&r->maintainer.compression_bytes_in.value);
	case 7: return wr_load_relaxed(&r->maintainer.deletion.samples);
	case 8: return wr_load_relaxed(&s->channel.metrics.taken.value);
	case 9: return wr_load_relaxed(&s->channel.metrics.durable_acks.value);
	case 10: return wr_load_relaxed(&s->channel.metrics.parks.value);
	case 11: return s->channel.full_waits;
	case 12: return s->channel.recorder_wakes;
	default: return wr_load_relaxed(&r->flusher.bytes_written.value);
	}
}

static const char *const tel_rate_names[] = {
	"events_appended", "blocks_sealed",  "syncs",          "meta_flushes",  "rotations",
	"compressions",    "compression_in_bytes", "deletions", "channel_taken", "durable_acks",
	"recorder_parks",  "full_waits",     "recorder_wakes", "written_bytes",
};

static void
tel_render_rates(struct wr_out *o, const struct wr_tel_view *v, const struct wr_tel_view *prev)
{
	uint64_t window = tel_window(v, prev);
	char w[32];
	wr_out_fmt_ns(w, sizeof w, window);
	if (o->format == WR_OUT_TEXT)
		fprintf(o->f, "rates (per second, over %s between snapshots)\n",
			window ? w : "nothing yet");
	wr_out_json_object_begin(o, "rates");
	wr_out_json_u64(o, "window_ns", window);
	for (size_t k = 0; k < WR_ARRAY_SIZE(tel_rate_names); k++) {
		uint64_t r = window ? tel_rate(tel_rate_value(&v->snap, k),
					      tel_rate_value(&prev->snap, k), window)
				    : 0;
		if (o->format == WR_OUT_TEXT)
			fprintf(o->f, "  %-30s %" PRIu64 "/s\n", tel_rate_names[k], r);
		wr_out_json_u64(o, tel_rate_names[k], r);
	}
	wr_out_json_array_begin(o, "producers");
	for (uint32_t i = 0; i < v->snap.header.producer_count; i++) {
		const struct wr_tel_producer *p = &v->snap.producers[i];
		const struct wr_tel_producer *q = window ? tel_prev_producer(prev, p) : NULL;
		wr_out_json_object_begin(o, NULL);
		wr_out_json_u64(o, "entry", p->entry);
		wr_out_json_u64(o, "pid", p->pid);
		wr_out_json_u64(o, "appends", q ? tel_rate(tel_prod(p).appends, tel_prod(q).appends,
							    window)
						: 0);
		wr_out_json_object_end(o);
	}
	wr_out_json_array_end(o);
	wr_out_json_object_end(o);
}

void
wr_tel_render(FILE *f, enum wr_out_format fmt, const char *channel, const struct wr_tel_view *v,
	      const struct wr_tel_view *prev)
{
	struct wr_out o;
	char labels[WR_CHAN_NAME_MAX + 16];
	wr_out_begin(&o, f, fmt);
	/* Channel names are [A-Za-z0-9._-]: nothing to escape in a label value. */
	if (fmt == WR_OUT_PROMETHEUS) {
		snprintf(labels, sizeof labels, "channel=\"%s\"", channel);
		o.labels = labels;
	}
	tel_render_status(&o, channel, v);
	tel_render_log(&o, &v->snap.log);
	wr_recorder_metrics_emit_sections(&v->snap.recorder, &o);
	tel_render_channel(&o, &v->snap);
	tel_render_producers(&o, v, prev);
	if (prev && fmt != WR_OUT_PROMETHEUS)
		tel_render_rates(&o, v, prev);
	wr_out_end(&o);
}
