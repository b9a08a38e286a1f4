/* SPDX-License-Identifier: MIT */
/*
 * The reader's preloader: a thread that opens, maps or decompresses, and
 * fully verifies the segments a reader will enter next, and closes the ones
 * it has finished, so that crossing a segment boundary costs a pointer
 * hand-over instead of an open and a verification walk.
 *
 * The reader and the thread talk through two SPSC rings of job pointers
 * (lib/spsc.h): requests (open this segment, close this reader) go to the
 * thread, opened segments come back. Each side sleeps on a futex word of
 * its own when its ring is empty, and is woken only when it announced that
 * it sleeps. A job carries the open segment reader itself, so one
 * allocation follows a segment from the request to its close.
 *
 * Bounds: the reader asks for at most a few segments ahead (its choice);
 * a seek moves the generation, and open requests of an older generation
 * still queued come back unopened (-ECANCELED) instead of being verified.
 * A reader that would have to wait may instead take over a request the
 * thread has not started (wr_pl_job_steal), so that two threads verify.
 *
 * Concurrency: one reader thread calls everything here except the thread
 * itself; the job's segment reader belongs to whoever holds the job.
 */
#ifndef WR_PRELOADER_H
#define WR_PRELOADER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/compiler.h"
#include "lib/spsc.h"
#include "recorder/segment_reader.h"

enum {
	WR_PL_OPEN = 1,  /* open and verify path; comes back with rc and sr */
	WR_PL_CLOSE = 2, /* close sr and free the job; never comes back */
	WR_PL_WARM = 3,  /* build the page tables of warm_addr/warm_len; freed, never comes back */
};

/* An open job's state: the reader may take over one the thread has not started. */
enum {
	WR_PL_QUEUED = 0,
	WR_PL_STARTED = 1,
	WR_PL_STOLEN = 2, /* the reader opens the segment itself; comes back unopened */
};

struct wr_pl_job {
	int kind;
	_Atomic int state;
	uint32_t gen;      /* the reader's generation when it asked */
	size_t pos;        /* the reader's number for the segment */
	unsigned flags;    /* wr_segment_reader_open flags */
	struct wr_buf_pool *pool; /* for cold segments; may be NULL */
	int rc;            /* of the open: 0, or a negative code (sr.report says why) */
	uint64_t open_ns;  /* time the open took */
	const void *warm_addr; /* WR_PL_WARM: a mapping the reader keeps until a later CLOSE */
	size_t warm_len;
	char path[4096];   /* asked for; sr.path is the file actually opened */
	struct wr_segment_reader sr;
};

/* A job with its path set; NULL when out of memory or the path is too long. */
struct wr_pl_job *wr_pl_job_new(int kind, const char *path, unsigned flags,
				struct wr_buf_pool *pool);

/*
 * Reader: take over an open job the thread has not started (it then comes
 * back unopened, -ECANCELED). Returns true when it was taken over.
 */
bool wr_pl_job_steal(struct wr_pl_job *job);

/*
 * Open job->path into job->sr with job->flags, and set job->rc. A hot
 * segment compressed meanwhile (the .wal gone, its .wal.lz4 complete since
 * the .wal is removed only after the rename) is opened from the .wal.lz4.
 * Any thread.
 */
void wr_pl_job_open(struct wr_pl_job *job);

/* Close the segment reader and free the job. NULL is accepted. */
void wr_pl_job_free(struct wr_pl_job *job);

#define WR_PL_RING 64u

struct wr_preloader {
	struct wr_spsc req;            /* reader -> thread */
	struct wr_spsc res;            /* thread -> reader */
	WR_ALIGNED_LINE _Atomic uint32_t req_futex; /* +1 per request (thread sleeps on it) */
	_Atomic uint32_t thread_sleeps;
	_Atomic uint32_t gen;          /* the reader's current generation */
	_Atomic uint32_t stop;
	WR_ALIGNED_LINE _Atomic uint32_t res_futex; /* +1 per result (reader sleeps on it) */
	_Atomic uint32_t reader_sleeps;
	WR_ALIGNED_LINE _Atomic uint64_t opened;    /* statistics (relaxed) */
	_Atomic uint64_t cancelled;
	_Atomic uint64_t closed;
	pthread_t thread;
	bool running;
};

/* Set up the rings and start the thread. 0 or -errno (nothing to stop then). */
int wr_preloader_start(struct wr_preloader *p);

/* Stop the thread and free every job still in either ring. Safe when not running. */
void wr_preloader_stop(struct wr_preloader *p);

/* Queue a job for the thread. Returns false when the ring is full (the job is still the caller's). */
bool wr_preloader_submit(struct wr_preloader *p, struct wr_pl_job *job);

/* The same without waking the thread: several jobs, then one wr_preloader_flush. */
bool wr_preloader_queue(struct wr_preloader *p, struct wr_pl_job *job);
void wr_preloader_flush(struct wr_preloader *p);

/* An open job done by the thread, or NULL when none is ready. */
struct wr_pl_job *wr_preloader_take(struct wr_preloader *p);

/* Sleep until a result is ready (returns at once if one is). */
void wr_preloader_wait(struct wr_preloader *p);

/* Open requests of older generations come back unopened from now on. */
void wr_preloader_set_gen(struct wr_preloader *p, uint32_t gen);

#endif
