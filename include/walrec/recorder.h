/* SPDX-License-Identifier: MIT */
/* walrec: the embedded recorder (append from your own thread into a WAL directory). */
#ifndef WALREC_RECORDER_H
#define WALREC_RECORDER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <walrec/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * An embedded recorder owns one WAL directory. One thread, the owner,
 * appends; background threads prepare the next segments, sync sealed data
 * and wal.meta, and compress or delete old segments.
 *
 * The owner thread is the thread that calls walrec_recorder_open(); only it
 * may call append, sync, poll, close and destroy. wait_durable, meta_state
 * and dump_metrics may be called from any thread until destroy.
 */
typedef struct walrec_recorder walrec_recorder_t;

/* Limits checked by walrec_recorder_open() (-EINVAL and a log line naming the field). */
#define WALREC_RECORDER_MIN_BLOCKS 16u
#define WALREC_RECORDER_MAX_BLOCKS 524288u
#define WALREC_RECORDER_MAX_SEGMENTS 1000000u      /* max_hot_segments, max_cold_segments */
#define WALREC_RECORDER_MAX_SYNC_INTERVAL_US 60000000u /* one minute */
#define WALREC_RECORDER_MAX_PREFIX 64u             /* bytes, without the terminating NUL */
#define WALREC_RECORDER_MIN_STAGE_BLOCKS 4u
#define WALREC_RECORDER_MAX_STAGE_BLOCKS 65536u

typedef struct walrec_recorder_config {
	/* Blocks per segment, 16..524288 (256 events each). Default 4096 (64 MiB segments). */
	uint32_t num_blocks;
	/*
	 * Closed uncompressed segments to keep (the active segment and the
	 * prepared ones are not counted), 1..1000000, or 0 for no limit.
	 * Beyond it the oldest is compressed to .wal.lz4 (compression on) or
	 * deleted (compression off). Default 4.
	 */
	uint32_t max_hot_segments;
	/* Compressed segments to keep, 1..1000000, or 0 for no limit; beyond it the oldest is deleted. Default 0. */
	uint32_t max_cold_segments;
	/*
	 * How long appended events may wait before the recorder seals the
	 * partial block and syncs it, in microseconds, 0..60000000. 0 syncs
	 * only when a segment is closed or when sync/wait_durable asks.
	 * Default 1000.
	 */
	uint32_t sync_interval_us;
	/* Compress closed segments beyond max_hot_segments (LZ4 frame). Default true. */
	bool compression;
	/*
	 * File name prefix: segments are named "PREFIX.NNNNNNNN.wal". NULL or
	 * "" for none (default). At most 64 bytes, no '/'. Copied at open.
	 */
	const char *prefix;
	/*
	 * Sealed blocks held in memory on their way into the segment file
	 * (16 KiB each): a power of two, 4..65536, or 0 for the default 1024
	 * (16 MiB). When all are waiting to be written, append waits for the
	 * flusher thread (back-pressure).
	 */
	uint32_t stage_blocks;
	/*
	 * CPUs the background threads (flusher, coordinator, preparer,
	 * maintainer) may run on: bit n is CPU n. 0 (default): wherever the
	 * thread calling open may run (threads inherit its affinity). Pin the
	 * appending thread to a CPU outside this set to keep them from ever
	 * preempting it.
	 */
	uint64_t worker_cpus;
} walrec_recorder_config_t;

/* Fill cfg with the defaults documented above. */
void walrec_recorder_config_init(walrec_recorder_config_t *cfg);

/*
 * Open (creating if missing) the WAL directory dir and recover it: the
 * last segment is reopened at its append point (a torn tail is cut and
 * logged), unreadable segments are renamed aside to
 * "<name>.quarantine-<timestamp>" and logged, and event ids continue after
 * the last sealed event. Starts the background threads. config NULL means
 * the defaults. The calling thread becomes the owner.
 * Returns 0 and *rec, -EINVAL for a bad config (logged), -ENOSPC,
 * -WALREC_ECORRUPT when the log can not be continued, -ELOOP when dir is a
 * symbolic link (the directory itself is required), -ENOTDIR, or another
 * -errno.
 */
int walrec_recorder_open(walrec_recorder_t **rec, const char *dir,
			 const walrec_recorder_config_t *config);

/*
 * Append one event. ev supplies the payload and, when its timestamp_ns is
 * not 0, the timestamp (otherwise the current CLOCK_REALTIME is used);
 * ev->event_id is ignored. The assigned id (last id + 1) is stored in
 * *assigned_id when assigned_id is not NULL. No system call, no lock and no
 * allocation except at a segment rotation when no prepared segment is ready.
 * Returns 0; -ENOSPC when the next segment can not be prepared (disk full:
 * back-pressure, the event was not taken, retry later); -WALREC_ELATCHED
 * after a failed sync; -WALREC_ECLOSED after close started.
 * Owner thread only.
 */
int walrec_recorder_append(walrec_recorder_t *rec, const walrec_event_t *ev,
			   uint64_t *assigned_id);

/*
 * Seal the partial block and wait until every event appended so far is
 * durable (on stable storage and reported in the durable position).
 * Returns 0, the latched error (-EIO...) when a sync failed, or
 * -WALREC_ECLOSED. Owner thread only.
 */
int walrec_recorder_sync(walrec_recorder_t *rec);

/*
 * Wait until event_id is durable or timeout_ns passes (0: just check).
 * Called by the owner (the thread that opened the recorder and appends),
 * it first seals the partial block holding event_id. Another thread's
 * wait relies on the owner appending or calling walrec_recorder_poll()
 * for a partial block to be sealed. Returns 0 when durable, -ETIMEDOUT,
 * the latched error when a sync failed (no event is reported durable after
 * a failed sync), or -WALREC_ECLOSED. Any thread.
 */
int walrec_recorder_wait_durable(walrec_recorder_t *rec, uint64_t event_id,
				 uint64_t timeout_ns);

/*
 * For an owner with nothing to append: seals the partial block when the
 * background sync asked for it (the sync interval passed or a waiter is
 * waiting). Cheap (one load) when nothing was asked. Returns 1 if a block
 * was sealed, 0 otherwise, or a negative code as append. Owner thread only.
 */
int walrec_recorder_poll(walrec_recorder_t *rec);

/* Progress as seen by the recorder. */
typedef struct walrec_recorder_state {
	uint64_t last_event_id;    /* last id assigned (0 if none ever) */
	uint64_t sealed_event_id;  /* last id in a sealed block */
	uint64_t durable_event_id; /* last id known to be on stable storage */
	uint32_t segment_index;    /* active segment */
	uint32_t meta_segment_index; /* wal.meta state: segment */
	uint32_t meta_offset;        /* end of the last sealed block there */
	uint64_t meta_last_event_id; /* last event in that block */
	int latched_error;           /* 0, or the error that stopped the recorder */
} walrec_recorder_state_t;

/* Fill *st. Returns 0 or -EINVAL. Any thread (fields read individually). */
int walrec_recorder_meta_state(walrec_recorder_t *rec, walrec_recorder_state_t *st);

/* Output formats for walrec_recorder_dump_metrics(). */
enum walrec_metrics_format {
	WALREC_METRICS_TEXT = 0,
	WALREC_METRICS_PROMETHEUS = 1,
	WALREC_METRICS_JSON = 2
};

/*
 * Snapshot every component's telemetry and write it to f. Returns 0 or
 * -EINVAL. Any thread.
 */
int walrec_recorder_dump_metrics(walrec_recorder_t *rec, FILE *f, int format);

/*
 * Stop accepting, seal the partial block, close the active segment with
 * sync, let the workers finish their queues, flush wal.meta, and release
 * the files, mappings and threads. Idempotent: a second close (or a close
 * after a failed one) does nothing and returns 0; NULL is accepted. The
 * handle stays valid for meta_state and dump_metrics until
 * walrec_recorder_destroy(). Returns 0 or the first error met (latched
 * sync error, close or meta flush failure); everything is released in any
 * case. Owner thread only.
 */
int walrec_recorder_close(walrec_recorder_t *rec);

/* Close rec if still open, then free the handle. NULL is accepted. Owner thread only. */
void walrec_recorder_destroy(walrec_recorder_t *rec);

#ifdef __cplusplus
}
#endif

#endif
