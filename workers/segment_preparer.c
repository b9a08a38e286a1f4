/* SPDX-License-Identifier: MIT */
/* SegmentPreparer: creates the next segments ahead of the owner thread (see segment_preparer.h). */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/metrics_out.h"
#include "lib/sys.h"
#include "lib/thread.h"
#include "workers/segment_preparer.h"

/* Retry delays while preparation fails (a full disk): 1 ms doubling to 256 ms. */
#define PREPARER_BACKOFF_MIN_NS 1000000ull
#define PREPARER_BACKOFF_MAX_NS 256000000ull

struct wr_segment_slot *
wr_segment_slot_alloc(void)
{
	/* aligned_alloc wants a size that is a multiple of the alignment */
	size_t size = (sizeof(struct wr_segment_slot) + WR_CACHELINE - 1) &
		      ~(size_t)(WR_CACHELINE - 1);
	struct wr_segment_slot *s = aligned_alloc(WR_CACHELINE, size);
	if (s != NULL) {
		memset(s, 0, sizeof *s);
		s->writer.fd = -1;
	}
	return s;
}

void
wr_segment_slot_free(struct wr_segment_slot *s)
{
	free(s);
}

int
wr_segment_preparer_init(struct wr_segment_preparer *p, const char *dir,
			 const char *prefix, uint32_t next_index, uint32_t num_blocks,
			 struct wr_segment_writer_metrics *writer_metrics,
			 struct wr_segment_preparer_metrics *metrics)
{
	memset(p, 0, sizeof *p);
	if (strlen(dir) >= sizeof p->dir || (prefix && strlen(prefix) >= sizeof p->prefix))
		return -ENAMETOOLONG;
	strcpy(p->dir, dir);
	p->names.dir = p->dir;
	if (prefix)
		strcpy(p->prefix, prefix);
	p->next_index = next_index;
	p->num_blocks = num_blocks;
	p->writer_metrics = writer_metrics;
	p->metrics = metrics;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->space, &ca);
	pthread_cond_init(&p->ready, &ca);
	pthread_condattr_destroy(&ca);
	return 0;
}

/* Create one segment. 0, or -errno (nothing left behind on failure). */
static int
preparer_make(struct wr_segment_preparer *p, struct wr_segment_slot **out)
{
	struct wr_segment_slot *s = wr_segment_slot_alloc();
	if (s == NULL)
		return -ENOMEM;
	uint64_t t0 = wr_clock_now_ns();
	const char *prefix = p->prefix[0] ? p->prefix : NULL;
	int rc;
	for (;;) {
		rc = wr_segment_writer_open_new(&s->writer, p->dir, prefix, p->next_index,
						p->num_blocks, p->writer_metrics, &p->names);
		if (rc != -EEXIST)
			break;
		/* Recovery starts us after every segment it saw; a file appearing
		 * under our next name is not ours to touch: skip the index. */
		wr_log_warn("segment %u already exists in %s; skipping that index",
			    p->next_index, p->dir);
		p->next_index++;
	}
	wr_operation_record(&p->metrics->prepare, rc == 0, t0, wr_clock_now_ns());
	if (rc != 0) {
		wr_segment_slot_free(s);
		return rc;
	}
	p->next_index++;
	*out = s;
	return 0;
}

static void *
preparer_main(void *arg)
{
	struct wr_segment_preparer *p = arg;
	uint64_t backoff = 0;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stop && p->count == WR_PREPARER_DEPTH)
			pthread_cond_wait(&p->space, &p->lock);
		if (p->stop)
			break;
		pthread_mutex_unlock(&p->lock);

		struct wr_segment_slot *s = NULL;
		int rc = preparer_make(p, &s);

		pthread_mutex_lock(&p->lock);
		if (rc == 0) {
			if (p->error != 0)
				wr_log_info("segment preparation in %s works again", p->dir);
			p->error = 0;
			backoff = 0;
			p->queue[(p->head + p->count) % WR_PREPARER_DEPTH] = s;
			p->count++;
			wr_gauge_set(&p->metrics->queue_depth, p->count);
			wr_gauge_set(&p->metrics->last_error, 0);
			pthread_cond_signal(&p->ready);
			/*
			 * The segment is out before its name is durable (its first
			 * data sync sees to that). Fill the queue first; then one
			 * directory fsync covers every name made since the last.
			 * Under load an fsync takes milliseconds, longer than a
			 * small segment lasts: done per segment before it is handed
			 * out, it left rotations waiting.
			 */
			if (p->count < WR_PREPARER_DEPTH)
				continue;
			pthread_mutex_unlock(&p->lock);
			rc = wr_name_sync_run(&p->names);
			if (rc != 0 && !p->names_failing)
				wr_log_warn("directory fsync of new segments in %s failed: %s; "
					    "the first sync of each tries again",
					    p->dir, walrec_strerror(rc));
			p->names_failing = rc != 0;
			pthread_mutex_lock(&p->lock);
			continue;
		}
		/* Expose the failure so appends get back-pressure, then retry. */
		if (p->error != rc)
			wr_log_error("preparing segment %u in %s failed: %s; retrying",
				     p->next_index, p->dir, walrec_strerror(rc));
		p->error = rc;
		wr_counter_inc(&p->metrics->prepare_failures);
		wr_gauge_set(&p->metrics->last_error, rc);
		pthread_cond_broadcast(&p->ready);
		backoff = backoff == 0 ? PREPARER_BACKOFF_MIN_NS : backoff * 2;
		if (backoff > PREPARER_BACKOFF_MAX_NS)
			backoff = PREPARER_BACKOFF_MAX_NS;
		struct timespec dl = wr_clock_deadline(backoff);
		while (!p->stop && pthread_cond_timedwait(&p->space, &p->lock, &dl) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int
wr_segment_preparer_start(struct wr_segment_preparer *p, uint64_t cpu_mask)
{
	int rc = wr_thread_start(&p->thread, "walrec-prep", cpu_mask, preparer_main, p);
	if (rc != 0)
		return rc;
	p->started = true;
	return 0;
}

int
wr_segment_preparer_take(struct wr_segment_preparer *p, struct wr_segment_slot **out,
			 bool *waited)
{
	int rc = 0;
	if (waited)
		*waited = false;
	pthread_mutex_lock(&p->lock);
	if (p->count == 0 && p->error == 0 && !p->stop) {
		uint64_t t0 = wr_clock_now_ns();
		if (waited)
			*waited = true;
		while (p->count == 0 && p->error == 0 && !p->stop)
			pthread_cond_wait(&p->ready, &p->lock);
		wr_duration_record(&p->metrics->get_next_segment_wait, t0, wr_clock_now_ns());
	} else if (p->count > 0) {
		wr_counter_inc(&p->metrics->get_next_segment_ready);
	}
	if (p->count > 0) {
		*out = p->queue[p->head];
		p->head = (p->head + 1) % WR_PREPARER_DEPTH;
		p->count--;
		wr_gauge_set(&p->metrics->queue_depth, p->count);
		pthread_cond_signal(&p->space);
	} else {
		rc = p->stop ? -WALREC_ECLOSED : p->error;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void
wr_segment_preparer_stop(struct wr_segment_preparer *p)
{
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->space);
	pthread_cond_broadcast(&p->ready);
	pthread_mutex_unlock(&p->lock);
	if (p->started) {
		pthread_join(p->thread, NULL);
		p->started = false;
	}
	/* Unused prepared segments hold no event: remove them so the next
	 * open continues in the last segment that has data. */
	while (p->count > 0) {
		struct wr_segment_slot *s = p->queue[p->head];
		p->head = (p->head + 1) % WR_PREPARER_DEPTH;
		p->count--;
		char path[sizeof s->writer.path];
		strcpy(path, s->writer.path);
		wr_segment_writer_close(&s->writer, false);
		if (wr_sys.unlink(path) != 0)
			wr_log_syscall("unlink", path, errno);
		wr_segment_slot_free(s);
	}
	wr_gauge_set(&p->metrics->queue_depth, 0);
}

void
wr_segment_preparer_fini(struct wr_segment_preparer *p)
{
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->space);
	pthread_cond_destroy(&p->ready);
}

void
wr_segment_preparer_metrics_copy(struct wr_segment_preparer_metrics *dst,
				 const struct wr_segment_preparer_metrics *src)
{
	wr_duration_copy(&dst->get_next_segment_wait, &src->get_next_segment_wait);
	wr_counter_copy(&dst->get_next_segment_ready, &src->get_next_segment_ready);
	wr_operation_copy(&dst->prepare, &src->prepare);
	wr_counter_copy(&dst->prepare_failures, &src->prepare_failures);
	wr_gauge_copy(&dst->queue_depth, &src->queue_depth);
	wr_gauge_copy(&dst->last_error, &src->last_error);
}

void
wr_segment_preparer_metrics_emit(const struct wr_segment_preparer_metrics *m, struct wr_out *o)
{
	wr_out_component_begin(o, "segment_preparer");
	wr_out_duration(o, "get_next_segment_wait",
			"Time a rotation waited because no prepared segment was ready.",
			&m->get_next_segment_wait);
	wr_out_counter(o, "get_next_segment_ready", "Rotations that found a segment ready.",
		       &m->get_next_segment_ready);
	wr_out_operation(o, "prepare", "Creating, preallocating, mapping and writing out a segment.",
			 &m->prepare);
	wr_out_counter(o, "prepare_failures", "Failed preparations (retried with backoff).",
		       &m->prepare_failures);
	wr_out_gauge(o, "queue_depth", "Prepared segments ready.", &m->queue_depth);
	wr_out_gauge(o, "last_error", "-errno of the last failure, 0 once one succeeded.",
		     &m->last_error);
	wr_out_component_end(o);
}
