/* SPDX-License-Identifier: MIT */
/* Stage: sealed blocks in anonymous memory, written to their segments by a flusher. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "lib/clock.h"
#include "lib/fs.h"
#include "lib/futex.h"
#include "lib/log.h"
#include "lib/metrics_out.h"
#include "lib/sys.h"
#include "lib/thread.h"
#include "recorder/segment_writer.h"
#include "recorder/stage.h"

/* Blocks in one pwrite at most (1 MiB): tail advances in steps the owner can use. */
#define STAGE_MAX_RUN 64u
/*
 * Flusher thread idle strategy: spin briefly (it shares CPUs with
 * producers and the other workers), then nap, then park.
 */
#define STAGE_SPIN 64u
#define STAGE_NAP_NS 200000ull
#define STAGE_PARK_AFTER_NS 50000000ull
#define STAGE_PARK_NS 1000000000ull
/* Owner waiting for a free buffer: spin, yield, then sleep this long between checks. */
#define STAGE_WAIT_SLEEP_NS 50000l
/*
 * Conditioning: keep zeros written this far ahead of the active
 * segment's last block, in chunks of this size, at most one chunk per
 * interval (bounding the extra writes to 256 MiB/s; at higher rates the
 * flusher is never idle and conditions nothing).
 */
#define STAGE_COND_LEAD (4u << 20)
#define STAGE_COND_CHUNK (256u << 10)
#define STAGE_COND_EVERY_NS 1000000ull

int
wr_stage_init(struct wr_stage *st, uint32_t slots, wr_stage_written_fn written,
	      wr_stage_failed_fn failed, void *arg, struct wr_stage_metrics *metrics)
{
	memset(st, 0, sizeof *st);
	if (slots < WR_STAGE_MIN_SLOTS || slots > WR_STAGE_MAX_SLOTS || (slots & (slots - 1)) != 0) {
		wr_log_error("stage: %u slots is not a power of two in %u..%u", slots,
			     WR_STAGE_MIN_SLOTS, WR_STAGE_MAX_SLOTS);
		return -EINVAL;
	}
	size_t len = (size_t)slots * WR_BLOCK_SIZE;
	/* MAP_POPULATE: every buffer page exists before the first append. */
	void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (mem == MAP_FAILED) {
		wr_log_syscall("mmap", "stage", errno);
		return -ENOMEM;
	}
	st->entries = calloc(slots, sizeof *st->entries);
	if (st->entries == NULL) {
		munmap(mem, len);
		return -ENOMEM;
	}
	st->mem = mem;
	st->slots = slots;
	st->mask = slots - 1;
	st->written = written;
	st->failed = failed;
	st->cb_arg = arg;
	st->metrics = metrics;
	pthread_mutex_init(&st->lock, NULL);
	if (metrics)
		wr_gauge_set(&metrics->slots, slots);
	return 0;
}

void
wr_stage_fini(struct wr_stage *st)
{
	if (st->mem == NULL)
		return;
	wr_stage_stop(st);
	munmap(st->mem, (size_t)st->slots * WR_BLOCK_SIZE);
	free(st->entries);
	pthread_mutex_destroy(&st->lock);
	st->mem = NULL;
}

void
wr_stage_commit(struct wr_stage *st, const struct wr_stage_entry *e)
{
	st->entries[st->head & st->mask] = *e;
	st->head++;
	/* Release: the block bytes and the entry are visible to a flusher that
	 * loads ready with acquire (wr_stage_flush). */
	wr_store_release(&st->ready, st->head);
	/*
	 * Dekker with the flusher's park (stage_park: store sleeping, fence,
	 * load ready): one of the two sees the other's store, so a parked
	 * flusher is always woken for this block.
	 */
	wr_fence_seq_cst();
	if (WR_UNLIKELY(wr_load_relaxed(&st->sleeping) != 0)) {
		wr_store_relaxed(&st->sleeping, 0);
		atomic_fetch_add_explicit(&st->wake, 1, memory_order_relaxed);
		wr_futex_wake(&st->wake, 1);
		if (st->metrics)
			wr_counter_inc(&st->metrics->wakeups);
	}
}

/* Write one run of blocks [t, t + k) of one writer. 0 or -errno. */
static int
stage_write_run(struct wr_stage *st, uint64_t t, uint32_t k)
{
	const struct wr_stage_entry *first = &st->entries[t & st->mask];
	const struct wr_stage_entry *last = &st->entries[(t + k - 1) & st->mask];
	struct wr_segment_writer *w = first->writer;
	const uint8_t *buf = st->mem + (size_t)(t & st->mask) * WR_BLOCK_SIZE;
	size_t len = (size_t)k * WR_BLOCK_SIZE;
	/*
	 * The free slots at the end of a partial last block are zero in the
	 * buffer and already zero in the file (never written: preallocated,
	 * conditioned or cut at recovery; a block is written once), so they
	 * are left out: a sync after one event then writes one page, not five.
	 */
	if (last->event_count < WR_EVENTS_PER_BLOCK)
		len -= (size_t)(WR_EVENTS_PER_BLOCK - last->event_count) * WR_EVENT_SIZE;
	uint64_t t0 = wr_clock_now_ns();
	int rc = wr_fs_pwrite_all(w->fd, buf, len, (off_t)wr_block_offset(first->block_index));
	if (st->metrics) {
		wr_operation_record(&st->metrics->write, rc == 0, t0, wr_clock_now_ns());
		if (rc == 0) {
			wr_counter_add(&st->metrics->blocks_written, k);
			wr_counter_add(&st->metrics->bytes_written, len);
		}
	}
	if (rc != 0) {
		wr_log_syscall("pwrite", w->path, -rc);
		return rc;
	}
	uint64_t end = wr_block_offset(last->block_index + 1);
	/* Release, end first: pairs with the acquire loads in
	 * wr_segment_writer_sync_sealed and wr_segment_writer_written, so a
	 * thread that sees last_id also sees an end that covers it. */
	wr_store_release(&w->written_end, end);
	wr_store_release(&w->written_last_id, last->last_id);
	if (st->written)
		st->written(st->cb_arg, w, end, last->last_id);
	return 0;
}

/* Write up to max_blocks of what is committed; the caller holds the lock. */
static int
stage_flush_locked(struct wr_stage *st, uint32_t max_blocks)
{
	int err = wr_load_relaxed(&st->error);
	uint64_t t = wr_load_relaxed(&st->tail); /* only flushers store it, under the lock */
	/* Acquire: pairs with the release store in wr_stage_commit. */
	uint64_t r = wr_load_acquire(&st->ready);
	if (r - t > max_blocks)
		r = t + max_blocks;
	int n = 0;
	while (err == 0 && t < r) {
		const struct wr_stage_entry *e = &st->entries[t & st->mask];
		uint32_t k = 1;
		/* A run: the same writer, consecutive blocks, contiguous buffers. */
		while (k < STAGE_MAX_RUN && t + k < r && ((t + k) & st->mask) != 0) {
			const struct wr_stage_entry *x = &st->entries[(t + k) & st->mask];
			if (x->writer != e->writer || x->block_index != e->block_index + k)
				break;
			k++;
		}
		err = stage_write_run(st, t, k);
		if (err != 0) {
			/* First error wins; the blocks from t on are never written. */
			wr_store_relaxed(&st->error, err);
			if (st->failed)
				st->failed(st->cb_arg, err);
			break;
		}
		t += k;
		n += (int)k;
		/* Release: our reads of the buffers (the pwrite) are done before
		 * the owner, which loads tail with acquire, reuses them. */
		wr_store_release(&st->tail, t);
	}
	return err != 0 ? err : n;
}

int
wr_stage_flush(struct wr_stage *st)
{
	pthread_mutex_lock(&st->lock);
	int rc = stage_flush_locked(st, UINT32_MAX);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int
wr_stage_try_flush(struct wr_stage *st, uint32_t max_blocks)
{
	if (pthread_mutex_trylock(&st->lock) != 0)
		return wr_load_relaxed(&st->error); /* another thread is at it */
	int rc = stage_flush_locked(st, max_blocks);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int
wr_stage_flush_to(struct wr_stage *st, uint64_t pos)
{
	/* Acquire: pairs with the release store of tail in wr_stage_flush. */
	while (wr_load_acquire(&st->tail) < pos) {
		int rc = wr_stage_flush(st);
		if (rc < 0)
			return rc;
		if (rc == 0 && wr_load_acquire(&st->tail) < pos)
			return -EINVAL; /* pos was never committed */
	}
	return 0;
}

int
wr_stage_wait_space(struct wr_stage *st)
{
	uint64_t t0 = wr_clock_now_ns();
	for (unsigned i = 0;; i++) {
		int err = wr_load_relaxed(&st->error);
		if (err != 0)
			return err;
		if (wr_stage_claim(st) != NULL)
			break;
		if (!st->started) {
			int rc = wr_stage_flush(st);
			if (rc < 0)
				return rc;
		} else if (i < 1000) {
			wr_cpu_relax();
		} else if (i < 1100) {
			sched_yield();
		} else {
			struct timespec ts = { 0, STAGE_WAIT_SLEEP_NS };
			nanosleep(&ts, NULL);
		}
	}
	if (st->metrics)
		wr_duration_record(&st->metrics->full_waits, t0, wr_clock_now_ns());
	return 0;
}

void
wr_stage_set_active(struct wr_stage *st, struct wr_segment_writer *w)
{
	/* Release: w's fields are set up before a flusher that loads it uses them. */
	wr_store_release(&st->active, w);
}

void
wr_stage_forget(struct wr_stage *st, struct wr_segment_writer *w)
{
	pthread_mutex_lock(&st->lock);
	struct wr_segment_writer *expect = w;
	/* Only if it is still the one: the owner may have started the next. */
	atomic_compare_exchange_strong(&st->active, &expect, NULL);
	pthread_mutex_unlock(&st->lock);
}

int64_t
wr_stage_condition(struct wr_stage *st)
{
	static const uint8_t zeros[STAGE_COND_CHUNK];
	int64_t done = 0;
	pthread_mutex_lock(&st->lock);
	uint64_t now = wr_clock_now_ns();
	/* Acquire: pairs with wr_stage_set_active. Under the lock, a writer
	 * being closed has been forgotten, so w is open. */
	struct wr_segment_writer *w = wr_load_acquire(&st->active);
	if (w == NULL || wr_load_relaxed(&st->error) != 0 || now - st->cond_at_ns < STAGE_COND_EVERY_NS)
		goto out;
	/* Blocks are written only under this lock, so nothing lands in the
	 * range while the zeros go in; the blocks later overwrite them. */
	uint64_t front = (wr_load_relaxed(&w->written_end) + 4095) & ~(uint64_t)4095;
	if (w->cond_end < front)
		w->cond_end = front;
	if (w->cond_end >= w->size || w->cond_end >= front + STAGE_COND_LEAD)
		goto out;
	size_t len = STAGE_COND_CHUNK;
	if (w->size - w->cond_end < len)
		len = (size_t)(w->size - w->cond_end);
	int rc = wr_fs_pwrite_all(w->fd, zeros, len, (off_t)w->cond_end);
	if (rc == 0 && wr_sys.sync_file_range(w->fd, (off_t)w->cond_end, (off_t)len,
					      SYNC_FILE_RANGE_WRITE) != 0)
		rc = -errno;
	st->cond_at_ns = now;
	if (rc != 0) {
		/* Only an optimisation: say so once and stop conditioning this segment. */
		wr_log_warn("conditioning %s ahead of its blocks failed: %s", w->path,
			    walrec_strerror(rc));
		w->cond_end = w->size;
		goto out;
	}
	w->cond_end += len;
	done = (int64_t)len;
	if (st->metrics)
		wr_counter_add(&st->metrics->cond_bytes, len);
out:
	pthread_mutex_unlock(&st->lock);
	return done;
}

static bool
stage_has_work(struct wr_stage *st)
{
	return wr_load_acquire(&st->ready) != wr_load_relaxed(&st->tail);
}

static bool
stage_stopping(struct wr_stage *st)
{
	pthread_mutex_lock(&st->lock);
	bool s = st->stop;
	pthread_mutex_unlock(&st->lock);
	return s;
}

/* Park until woken (a commit after this, or stop) or STAGE_PARK_NS passes. */
static void
stage_park(struct wr_stage *st)
{
	uint32_t seen = wr_load_relaxed(&st->wake);
	wr_store_relaxed(&st->sleeping, 1);
	/* Dekker with wr_stage_commit (store ready, fence, load sleeping). */
	wr_fence_seq_cst();
	if (!stage_has_work(st) && !stage_stopping(st))
		wr_futex_wait(&st->wake, seen, STAGE_PARK_NS);
	wr_store_relaxed(&st->sleeping, 0);
}

static void *
stage_main(void *arg)
{
	struct wr_stage *st = arg;
	uint64_t idle_since = 0;
	for (;;) {
		/* Never wait for the lock: whoever holds it is writing blocks. */
		int n = wr_stage_try_flush(st, UINT32_MAX);
		if (n > 0) {
			idle_since = 0;
			continue;
		}
		if (stage_stopping(st) && (n < 0 || !stage_has_work(st)))
			break;
		if (n < 0) {
			/* Latched: nothing more will be written; wait for stop. */
			stage_park(st);
			continue;
		}
		for (unsigned i = 0; i < STAGE_SPIN && !stage_has_work(st); i++)
			wr_cpu_relax();
		if (stage_has_work(st))
			continue;
		if (wr_stage_condition(st) > 0) {
			idle_since = 0;
			continue;
		}
		uint64_t now = wr_clock_now_ns();
		if (idle_since == 0)
			idle_since = now;
		if (now - idle_since < STAGE_PARK_AFTER_NS) {
			/* Recently busy: nap briefly rather than ask the owner to wake us. */
			uint32_t seen = wr_load_relaxed(&st->wake);
			wr_futex_wait(&st->wake, seen, STAGE_NAP_NS);
			continue;
		}
		stage_park(st);
	}
	return NULL;
}

int
wr_stage_start(struct wr_stage *st, uint64_t cpu_mask)
{
	st->stop = false;
	int rc = wr_thread_start(&st->thread, "walrec-flush", cpu_mask, stage_main, st);
	if (rc != 0)
		return rc;
	st->started = true;
	return 0;
}

void
wr_stage_stop(struct wr_stage *st)
{
	if (!st->started)
		return;
	pthread_mutex_lock(&st->lock);
	st->stop = true;
	pthread_mutex_unlock(&st->lock);
	atomic_fetch_add_explicit(&st->wake, 1, memory_order_relaxed);
	wr_futex_wake(&st->wake, 1);
	pthread_join(st->thread, NULL);
	st->started = false;
}

void
wr_stage_metrics_copy(struct wr_stage_metrics *dst, const struct wr_stage_metrics *src)
{
	wr_operation_copy(&dst->write, &src->write);
	wr_counter_copy(&dst->blocks_written, &src->blocks_written);
	wr_counter_copy(&dst->bytes_written, &src->bytes_written);
	wr_duration_copy(&dst->full_waits, &src->full_waits);
	wr_counter_copy(&dst->wakeups, &src->wakeups);
	wr_counter_copy(&dst->cond_bytes, &src->cond_bytes);
	wr_gauge_copy(&dst->slots, &src->slots);
}

void
wr_stage_metrics_emit(const struct wr_stage_metrics *m, struct wr_out *o)
{
	wr_out_component_begin(o, "flusher");
	wr_out_operation(o, "write", "pwrite of a run of sealed blocks into a segment.", &m->write);
	wr_out_counter(o, "blocks_written", "Sealed blocks written into segment files.",
		       &m->blocks_written);
	wr_out_counter(o, "written_bytes", "Bytes written into segment files.", &m->bytes_written);
	wr_out_duration(o, "full_waits", "Owner waits for a free stage buffer (back-pressure).",
			&m->full_waits);
	wr_out_counter(o, "wakeups", "Times the owner woke the parked flusher.", &m->wakeups);
	wr_out_counter(o, "conditioned_bytes",
		       "Zeros written ahead of the active segment's blocks (extent conversion).",
		       &m->cond_bytes);
	wr_out_gauge(o, "stage_slots", "Block buffers in the stage.", &m->slots);
	wr_out_component_end(o);
}
