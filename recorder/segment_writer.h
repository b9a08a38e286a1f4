/* SPDX-License-Identifier: MIT */
/*
 * SegmentWriter: appends events into one segment file through the stage
 * (recorder/stage.h): events are written into a block buffer in anonymous
 * memory, a sealed block is handed to the flusher, which pwrites it into
 * the file. The owner never writes through a mapping of the file.
 *
 * Life cycle: open_new (create O_EXCL, preallocate, write a valid active
 * header: the whole "prepare" step, done off the hot path) or
 * open_existing (recovery: walk blocks to the append point, cut a torn
 * tail); start (attach the stage: appending may begin); then append /
 * seal from ONE owner thread; finish (seal, final header computed, no
 * I/O); close (write out what is staged and the final header, optionally
 * fdatasync, then close).
 *
 * Positions: a block is "sealed" when the owner committed it to the stage
 * (owner-private: sealed_last_id), "written" when the flusher wrote it
 * into the file (written_end / written_last_id, published with release:
 * readers of the file and a restarted process see it), "synced" when an
 * fdatasync after that returned (synced_end).
 *
 * Concurrency: append, seal and finish are called only by the owner
 * thread. sync_sealed and written may be called from any thread
 * concurrently with append.
 */
#ifndef WR_SEGMENT_WRITER_H
#define WR_SEGMENT_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include <walrec/common.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "lib/stats.h"
#include "recorder/format.h"
#include "recorder/stage.h"

/* Telemetry of every writer of one recorder (fields as DESIGN.md §7). */
struct wr_segment_writer_metrics {
	wr_operation_t open_new;
	wr_operation_t open_existing;
	wr_operation_t close;
	wr_duration_t write_block; /* time to seal one block */
	wr_counter_t blocks_sealed;
	wr_counter_t partial_blocks_sealed;
	wr_counter_t header_checksum_failures;
	wr_counter_t block_checksum_failures;
	wr_counter_t chained_checksum_failures;
	wr_counter_t validation_failures;
	wr_counter_t torn_tails_cut;
	wr_counter_t quarantine_copies; /* originals saved aside before a cut */
};

/* What open_existing found. */
struct wr_segment_recovery {
	uint32_t blocks_valid;     /* valid blocks kept */
	uint64_t last_event_id;    /* last event kept (0 if none) */
	uint64_t append_offset;    /* end of the last valid block */
	bool tail_cut;             /* a torn or invalid tail was cut off */
	uint32_t cut_block;        /* first block cut, when tail_cut */
	enum wr_format_fault cut_reason;
	uint32_t blocks_after_cut; /* non-empty blocks (header not zero) after cut_block */
	bool quarantined;          /* the original was copied to quarantine_path first */
	char quarantine_path[4160];
};

/*
 * Names of new segments made durable in batches. The preparer hands a
 * segment out before the directory fsync that covers its name; whatever
 * syncs the segment's data first (wr_segment_writer_sync_sealed, a closing
 * sync) also makes sure of the name, with its own directory fsync if the
 * preparer's has not covered it yet. Names are numbered as they are made.
 */
struct wr_name_sync {
	const char *dir;
	uint64_t created;        /* names made so far: the creating thread only */
	_Atomic uint64_t synced; /* names numbered up to this one are durable */
};

/* fsync ns->dir if a name made so far is not known durable. 0 or -errno. */
int wr_name_sync_run(struct wr_name_sync *ns);

/*
 * One writer. Fields above "cold" are touched on every append; keep them
 * together. Payload hashing is incremental (two XXH64 states fed one event
 * at a time) so sealing a full block costs a header, not a 16 KiB hash.
 */
struct wr_segment_writer {
	/* hot: owner thread only */
	struct wr_block *block;       /* current block: a stage buffer, or NULL (claim one first) */
	uint32_t block_index;         /* index of the current block */
	uint32_t block_events;        /* events in the current block */
	uint32_t num_blocks;
	uint32_t segment_index;
	uint64_t last_event_id;       /* last appended (0 if none ever) */
	uint64_t prev_chained;        /* chained checksum of the previous block */
	XXH64_state_t hash_block;     /* seed 0, over the current block's events */
	XXH64_state_t hash_chained;   /* seed prev_chained */
	struct wr_stage *stage;       /* NULL until start */

	/* written by the flusher (release), read by any thread */
	_Atomic uint64_t written_end;     /* file offset after the last block in the file */
	_Atomic uint64_t written_last_id; /* last event id in a block in the file */
	/* syncing threads: end of the range the last fdatasync covered */
	_Atomic uint64_t synced_end;

	/* cold */
	uint8_t *base;                /* read-only mapping of the file (recovery, inspection) */
	uint64_t size;
	int fd;
	uint32_t blocks_sealed;       /* == block_index when the current block is empty */
	uint32_t event_count;         /* events sealed */
	uint64_t first_event_id;      /* first event in this segment (0 if none) */
	uint64_t sealed_last_id;      /* owner: last event id in a sealed block */
	uint64_t stage_end;           /* stage position after this writer's last block (finish) */
	uint64_t cond_end;            /* flusher: zeros written ahead up to here (stage.c) */
	struct wr_segment_header final_header; /* finish: written by close */
	bool finished;                /* final header computed; no more appends */
	struct wr_segment_writer_metrics *metrics; /* may be NULL */
	struct wr_name_sync *name_sync; /* NULL: the name was synced at open */
	uint64_t name_seq;              /* this segment's number in name_sync */
	char path[4096];
};

/*
 * Create dir/[prefix.]NNNNNNNN.wal for segment_index with num_blocks blocks
 * (16..524288): O_CREAT|O_EXCL|O_NOFOLLOW, mode 0640; reserve the space
 * (wr_fs_preallocate: a full disk is reported here, never by a later
 * write of a sealed block); write a valid active header; map the file
 * read-only. The directory is fsynced before it returns when ns is NULL;
 * otherwise the name is numbered in ns and made durable later
 * (wr_name_sync_run, or the segment's first data sync).
 * Returns 0, -EEXIST if the file exists, -EINVAL for
 * a bad num_blocks, -ENOSPC, or another -errno; on failure nothing is left
 * behind (the partly made file is removed).
 */
int wr_segment_writer_open_new(struct wr_segment_writer *w, const char *dir,
			       const char *prefix, uint32_t segment_index,
			       uint32_t num_blocks, struct wr_segment_writer_metrics *metrics,
			       struct wr_name_sync *ns);

/*
 * Reopen an existing segment for appending (recovery). Checks the header
 * (-WALREC_EFORMAT if it is not a valid v1 header or the file size is not
 * a segment size), walks the blocks from block 0, and positions the writer
 * after the last valid block. An invalid or torn block after valid ones is
 * cut off: its bytes and everything after it are zeroed (pwrite) and
 * synced, and
 * rec->tail_cut says where and why. When any block after the first bad one
 * is non-empty (its header is not all zero: damage in the middle, not a
 * torn tail), the untouched file is first copied to
 * <path>.quarantine-<realtime ns> (O_EXCL, fdatasync'd, directory synced;
 * rec->quarantined, rec->quarantine_path) and an error is logged; if that
 * copy fails, nothing is cut and the copy's -errno is returned (the file is
 * left as it was). rec may be NULL.
 * A segment whose header says it was closed (closed_ts_ns != 0) is opened
 * too; appending to it reopens it (closed_ts_ns is reset).
 */
int wr_segment_writer_open_existing(struct wr_segment_writer *w, const char *path,
				    struct wr_segment_writer_metrics *metrics,
				    struct wr_segment_recovery *rec);

/*
 * Attach the stage: appends may start (in the block after the last valid
 * one). Claims a buffer when one is free. Owner thread.
 */
void wr_segment_writer_start(struct wr_segment_writer *w, struct wr_stage *stage);

/*
 * Append one event; ev->event_id must be greater than every id appended
 * before (in this writer and, via last_event_id set by the caller, before it).
 * No system call, no lock, no allocation. Seals the block when it fills.
 * Returns 0; -ENOSPC when the segment is full (the caller rotates and
 * retries in the next segment; nothing was written); -EAGAIN when every
 * stage buffer still waits to be written (wait with wr_stage_wait_space
 * and retry); -WALREC_EORDER for a non-increasing or zero id;
 * -WALREC_ECLOSED after finish or before start.
 */
int wr_segment_writer_append(struct wr_segment_writer *w, const walrec_event_t *ev);

/*
 * Seal the current block if it holds events (a partial block, count < 256,
 * is allowed: its free slots are zeroed; later events go into the next
 * block) and commit it to the stage. Returns 1 if a block was sealed, 0 if
 * there was nothing to seal. Owner thread; no system call (but the
 * stage's wake of a parked flusher).
 */
int wr_segment_writer_seal(struct wr_segment_writer *w);

/* True when no further block can be started (every block used). */
bool wr_segment_writer_full(const struct wr_segment_writer *w);

/*
 * Make every written block durable: a data sync (msync MS_SYNC of the
 * read-only mapping) of the range written since the last sync. Any
 * thread, concurrently with append and with other syncs (reads
 * written_end with acquire, pairing with the flusher's release). Returns
 * 0 or -errno (the caller latches the error: a failed sync is never
 * retried as if it had worked).
 */
int wr_segment_writer_sync_sealed(struct wr_segment_writer *w);

/* The writer's written position (any thread): end offset and last id. */
static inline uint64_t
wr_segment_writer_written(const struct wr_segment_writer *w, uint64_t *end)
{
	/* Acquire: pairs with the flusher's release stores (last id after end). */
	uint64_t last = wr_load_acquire(&w->written_last_id);
	if (end)
		*end = wr_load_acquire(&w->written_end);
	return last;
}

/*
 * Seal, then compute the final header (counts, ids, closed_ts_ns,
 * last_chained_checksum, checksum) that close writes. No system call.
 * Owner thread only.
 */
void wr_segment_writer_finish(struct wr_segment_writer *w);

/*
 * Finish if not finished, wait until the stage wrote this writer's blocks
 * (flushing them here if needed), write the final header, fdatasync if
 * sync, then unmap and close. Returns 0 or -errno (the resources are
 * released in either case). Safe on a zeroed writer. Any one thread, once
 * the owner is done with the writer.
 */
int wr_segment_writer_close(struct wr_segment_writer *w, bool sync);

#endif
