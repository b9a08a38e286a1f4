/* SPDX-License-Identifier: MIT */
/*
 * SegmentWriter: appends events into one memory-mapped segment file.
 *
 * Life cycle: open_new (create O_EXCL, preallocate, map, prefault, write a
 * valid active header: the whole "prepare" step, done off the hot path) or
 * open_existing (recovery: walk blocks to the append point, cut a torn
 * tail); then append / seal from ONE owner thread; finish (seal, final
 * header, no I/O); close (optionally msync, then unmap and close).
 *
 * Concurrency: append, seal and finish are called only by the owner
 * thread. sync_sealed may be called by another thread concurrently with
 * append: it reads only sealed_end, published with release ordering.
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
 * One writer. Fields above "cold" are touched on every append; keep them
 * together. Payload hashing is incremental (two XXH64 states fed one event
 * at a time) so sealing a full block costs a header, not a 16 KiB hash.
 */
struct wr_segment_writer {
	/* hot: owner thread only */
	struct wr_block *block;       /* current block (in the mapping) */
	uint32_t block_index;         /* index of the current block */
	uint32_t block_events;        /* events in the current block */
	uint32_t num_blocks;
	uint32_t segment_index;
	uint64_t last_event_id;       /* last appended (0 if none ever) */
	uint64_t prev_chained;        /* chained checksum of the previous block */
	XXH64_state_t hash_block;     /* seed 0, over the current block's events */
	XXH64_state_t hash_chained;   /* seed prev_chained */

	/* sealed position: written by the owner, read by sync_sealed */
	_Atomic uint64_t sealed_end;  /* file offset of the end of the last sealed block */
	_Atomic uint64_t sealed_last_id; /* last event id in a sealed block */

	/* cold */
	uint8_t *base;                /* mapping of the whole file */
	uint64_t size;
	int fd;
	uint32_t blocks_sealed;       /* == block_index when the current block is empty */
	uint32_t event_count;         /* events sealed */
	uint64_t first_event_id;      /* first event in this segment (0 if none) */
	uint64_t synced_end;          /* end of the range the last sync covered */
	bool finished;                /* final header written; no more appends */
	struct wr_segment_writer_metrics *metrics; /* may be NULL */
	char path[4096];
};

/*
 * Create dir/[prefix.]NNNNNNNN.wal for segment_index with num_blocks blocks
 * (16..524288): O_CREAT|O_EXCL|O_NOFOLLOW, mode 0640; reserve the space
 * (wr_fs_preallocate: a full disk is reported here, never as SIGBUS on the
 * hot path); map it shared; prefault every page for writing
 * (MADV_POPULATE_WRITE, or touching each page where unsupported); write a
 * valid active header. Returns 0, -EEXIST if the file exists, -EINVAL for
 * a bad num_blocks, -ENOSPC, or another -errno; on failure nothing is left
 * behind (the partly made file is removed).
 */
int wr_segment_writer_open_new(struct wr_segment_writer *w, const char *dir,
			       const char *prefix, uint32_t segment_index,
			       uint32_t num_blocks, struct wr_segment_writer_metrics *metrics);

/*
 * Reopen an existing segment for appending (recovery). Checks the header
 * (-WALREC_EFORMAT if it is not a valid v1 header or the file size is not
 * a segment size), walks the blocks from block 0, and positions the writer
 * after the last valid block. An invalid or torn block after valid ones is
 * cut off: its bytes and everything after it are zeroed and synced, and
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
 * Append one event; ev->event_id must be greater than every id appended
 * before (in this writer and, via min_next_id set by the caller, before it).
 * No system call, no lock, no allocation. Seals the block when it fills.
 * Returns 0; -ENOSPC when the segment is full (the caller rotates and
 * retries in the next segment; nothing was written); -WALREC_EORDER for a
 * non-increasing or zero id; -WALREC_ECLOSED after finish.
 */
int wr_segment_writer_append(struct wr_segment_writer *w, const walrec_event_t *ev);

/*
 * Seal the current block if it holds events (a partial block, count < 256,
 * is allowed; later events go into the next block). Publishes sealed_end
 * and sealed_last_id with release ordering. Returns 1 if a block was
 * sealed, 0 if there was nothing to seal.
 */
int wr_segment_writer_seal(struct wr_segment_writer *w);

/* True when no further block can be started (every block used). */
bool wr_segment_writer_full(const struct wr_segment_writer *w);

/*
 * Make every sealed block durable: msync(MS_SYNC) of the range sealed since
 * the last call. May run on another thread than append (reads sealed_end
 * with acquire, pairing with the release in seal). Returns 0 or -errno
 * (the caller latches the error: a failed sync is never retried as if it
 * had worked).
 */
int wr_segment_writer_sync_sealed(struct wr_segment_writer *w);

/*
 * Seal, then write the final header (counts, ids, closed_ts_ns,
 * last_chained_checksum, checksum). No system call. Owner thread only.
 */
void wr_segment_writer_finish(struct wr_segment_writer *w);

/*
 * If sync: msync the whole file and fdatasync. Then unmap and close.
 * Calls finish first if it was not called. Returns 0 or -errno (the
 * resources are released in either case). Safe on a zeroed writer.
 */
int wr_segment_writer_close(struct wr_segment_writer *w, bool sync);

#endif
