/* SPDX-License-Identifier: MIT */
/* The reader's preloader thread: segments opened and verified ahead, closed behind. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lib/atomics.h"
#include "lib/clock.h"
#include "lib/futex.h"
#include "lib/log.h"
#include "lib/thread.h"
#include "recorder/preloader.h"

struct wr_pl_job *
wr_pl_job_new(int kind, const char *path, unsigned flags, struct wr_buf_pool *pool)
{
	struct wr_pl_job *j = malloc(sizeof *j);
	if (!j)
		return NULL;
	j->kind = kind;
	atomic_init(&j->state, WR_PL_QUEUED);
	j->warm_addr = NULL;
	j->warm_len = 0;
	j->pool = pool;
	j->gen = 0;
	j->pos = 0;
	j->flags = flags;
	j->rc = 0;
	j->open_ns = 0;
	j->path[0] = '\0';
	if (path && strlen(path) >= sizeof j->path) {
		free(j);
		return NULL;
	}
	if (path)
		strcpy(j->path, path);
	memset(&j->sr, 0, sizeof j->sr);
	j->sr.fd = -1;
	return j;
}

void
wr_pl_job_open(struct wr_pl_job *job)
{
	uint64_t t0 = wr_clock_now_ns();
	unsigned flags = job->flags;
	int rc = wr_segment_reader_open_pool(&job->sr, job->path, flags, job->pool);
	size_t len = strlen(job->path);
	if (rc == -ENOENT && len > 4 && len + 5 <= sizeof job->path &&
	    strcmp(job->path + len - 4, ".wal") == 0) {
		char cold[sizeof job->path];
		memcpy(cold, job->path, len);
		memcpy(cold + len, ".lz4", 5);
		flags &= ~(unsigned)(WR_SEGMENT_READER_HOT | WR_SEGMENT_READER_LAZY);
		struct wr_segment_report first = job->sr.report;
		rc = wr_segment_reader_open_pool(&job->sr, cold, flags | WR_SEGMENT_READER_COLD,
						 job->pool);
		if (rc == -ENOENT)
			job->sr.report = first; /* neither exists: say so of the name asked for */
	}
	job->rc = rc;
	job->open_ns = wr_clock_now_ns() - t0;
}

bool
wr_pl_job_steal(struct wr_pl_job *job)
{
	int expected = WR_PL_QUEUED;
	/* Pairs with the thread's CAS in wr_preloader_main: exactly one side wins. */
	return atomic_compare_exchange_strong_explicit(&job->state, &expected, WR_PL_STOLEN,
						       memory_order_acq_rel, memory_order_acquire);
}

void
wr_pl_job_free(struct wr_pl_job *job)
{
	if (!job)
		return;
	wr_segment_reader_close(&job->sr);
	free(job);
}

/* The side that sleeps set *sleeps and re-checked its ring after a seq_cst fence. */
static void
wr_preloader_kick(_Atomic uint32_t *word, _Atomic uint32_t *sleeps)
{
	wr_fetch_add_acq_rel(word, 1);
	/* Pairs with the fence the sleeper makes after raising *sleeps and
	 * before its last look at the ring: one of the two sees the other. */
	wr_fence_seq_cst();
	if (wr_load_relaxed(sleeps))
		wr_futex_wake(word, 1);
}

/* Close what the reader finished with. */
static void
wr_preloader_close_all(struct wr_preloader *p, struct wr_pl_job **closing, unsigned *n)
{
	for (unsigned i = 0; i < *n; i++)
		wr_pl_job_free(closing[i]);
	wr_fetch_add_relaxed(&p->closed, *n);
	*n = 0;
}

/* Closes wait a little: the reader is crossing into a segment right then. */
#define WR_PL_CLOSE_BATCH 4u

static void *
wr_preloader_main(void *arg)
{
	struct wr_preloader *p = arg;
	/*
	 * An unmap interrupts the reader's core (TLB shootdown): done after
	 * the next open, or before sleeping, rather than in the microseconds
	 * the reader spends crossing into the next segment.
	 */
	struct wr_pl_job *closing[WR_PL_CLOSE_BATCH];
	unsigned nclosing = 0;
	for (;;) {
		struct wr_pl_job *job = wr_spsc_try_pop(&p->req);
		if (job) {
			if (job->kind == WR_PL_CLOSE) {
				if (nclosing == WR_PL_CLOSE_BATCH)
					wr_preloader_close_all(p, closing, &nclosing);
				closing[nclosing++] = job;
				continue;
			}
			if (job->kind == WR_PL_WARM) {
				/*
				 * A segment a seek landed in: fault its pages in here, so the
				 * reader's later seeks into it find them mapped. The mapping
				 * stays until a CLOSE the reader queues after this job.
				 */
#ifdef MADV_POPULATE_READ
				madvise((void *)job->warm_addr, job->warm_len, MADV_POPULATE_READ);
#else
				madvise((void *)job->warm_addr, job->warm_len, MADV_WILLNEED);
#endif
				wr_pl_job_free(job);
				continue;
			}
			int expected = WR_PL_QUEUED;
			/* Acquire pairs with the release store in wr_preloader_set_gen;
			 * the CAS pairs with the one in wr_pl_job_steal. */
			if (job->gen != wr_load_acquire(&p->gen) ||
			    !atomic_compare_exchange_strong_explicit(&job->state, &expected,
								     WR_PL_STARTED, memory_order_acq_rel,
								     memory_order_acquire)) {
				job->rc = -ECANCELED;
				wr_fetch_add_relaxed(&p->cancelled, 1);
			} else {
				wr_pl_job_open(job);
				wr_fetch_add_relaxed(&p->opened, 1);
			}
			/* The result ring holds as many jobs as the request ring, and
			 * the reader takes results whenever it submits: never full for
			 * long. */
			while (!wr_spsc_try_push(&p->res, job)) {
				if (wr_load_acquire(&p->stop)) {
					wr_pl_job_free(job);
					break;
				}
				wr_futex_wait(&p->req_futex, wr_load_acquire(&p->req_futex), 1000000);
			}
			wr_preloader_kick(&p->res_futex, &p->reader_sleeps);
			wr_preloader_close_all(p, closing, &nclosing);
			continue;
		}
		wr_preloader_close_all(p, closing, &nclosing);
		/* Acquire pairs with the release store in wr_preloader_stop. */
		if (wr_load_acquire(&p->stop))
			break;
		uint32_t seen = wr_load_acquire(&p->req_futex);
		wr_store_relaxed(&p->thread_sleeps, 1);
		/* Pairs with the fence in wr_preloader_kick (reader side). */
		wr_fence_seq_cst();
		if (wr_spsc_size(&p->req) == 0 && !wr_load_relaxed(&p->stop))
			wr_futex_wait(&p->req_futex, seen, UINT64_MAX);
		wr_store_relaxed(&p->thread_sleeps, 0);
	}
	return NULL;
}

int
wr_preloader_start(struct wr_preloader *p)
{
	memset(p, 0, sizeof *p);
	int rc = wr_spsc_init(&p->req, WR_PL_RING);
	if (rc < 0)
		return rc;
	rc = wr_spsc_init(&p->res, WR_PL_RING);
	if (rc < 0) {
		wr_spsc_fini(&p->req);
		return rc;
	}
	rc = wr_thread_start(&p->thread, "walrec-preload", 0, wr_preloader_main, p);
	if (rc != 0) {
		wr_log_error("reader: cannot start the preloader thread: %s", strerror(-rc));
		wr_spsc_fini(&p->req);
		wr_spsc_fini(&p->res);
		return rc;
	}
	p->running = true;
	return 0;
}

void
wr_preloader_stop(struct wr_preloader *p)
{
	if (!p->running)
		return;
	/* Release pairs with the thread's acquire loads of stop. */
	wr_store_release(&p->stop, 1);
	wr_preloader_kick(&p->req_futex, &p->thread_sleeps);
	pthread_join(p->thread, NULL);
	struct wr_pl_job *j;
	while ((j = wr_spsc_try_pop(&p->req)) != NULL)
		wr_pl_job_free(j);
	while ((j = wr_spsc_try_pop(&p->res)) != NULL)
		wr_pl_job_free(j);
	wr_spsc_fini(&p->req);
	wr_spsc_fini(&p->res);
	p->running = false;
}

bool
wr_preloader_submit(struct wr_preloader *p, struct wr_pl_job *job)
{
	if (!wr_preloader_queue(p, job))
		return false;
	wr_preloader_flush(p);
	return true;
}

bool
wr_preloader_queue(struct wr_preloader *p, struct wr_pl_job *job)
{
	return wr_spsc_try_push(&p->req, job);
}

void
wr_preloader_flush(struct wr_preloader *p)
{
	wr_preloader_kick(&p->req_futex, &p->thread_sleeps);
}

struct wr_pl_job *
wr_preloader_take(struct wr_preloader *p)
{
	struct wr_pl_job *j = wr_spsc_try_pop(&p->res);
	if (j)
		/* Room in the result ring: a thread waiting to push may go on. */
		wr_fetch_add_acq_rel(&p->req_futex, 1);
	return j;
}

void
wr_preloader_wait(struct wr_preloader *p)
{
	for (;;) {
		if (wr_spsc_size(&p->res) != 0)
			return;
		uint32_t seen = wr_load_acquire(&p->res_futex);
		wr_store_relaxed(&p->reader_sleeps, 1);
		/* Pairs with the fence in wr_preloader_kick (thread side). */
		wr_fence_seq_cst();
		if (wr_spsc_size(&p->res) == 0)
			wr_futex_wait(&p->res_futex, seen, UINT64_MAX);
		wr_store_relaxed(&p->reader_sleeps, 0);
	}
}

void
wr_preloader_set_gen(struct wr_preloader *p, uint32_t gen)
{
	/* Pairs with the thread's acquire load of gen before each open. */
	wr_store_release(&p->gen, gen);
}
