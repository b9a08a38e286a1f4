/* SPDX-License-Identifier: MIT */
/*
 * SegmentReader: reads and verifies one segment file, hot or cold.
 *
 * A hot segment (NNNNNNNN.wal) is mapped read-only (shared, so blocks a
 * live recorder writes later are seen). A cold segment (NNNNNNNN.wal.lz4,
 * a standard LZ4 frame of the whole .wal file) is decompressed once, as a
 * stream, into a private buffer that then serves every read and seek (the
 * verified block cache); a cold segment whose data is larger than
 * WR_COLD_CACHE_MAX is instead streamed with bounded memory and decoded
 * again when read. Both get exactly the same checks.
 *
 * Verification is a walk over the blocks in order (wr_block_verify with
 * the chained checksum and the last id carried from block to block) that
 * builds a block index (first/last id of each valid block) for seek(). The
 * walk stops at the first never-written block (all-zero header): the end
 * of the data. A closed header (closed_ts_ns != 0) must agree with the
 * blocks; an active header (crashed recorder, or a live one) is accepted
 * whatever its counts say, because only the blocks are authoritative then.
 *
 * By default open() walks the whole segment before anything is read.
 * With WR_SEGMENT_READER_LAZY (hot segments only) open() checks only the
 * header and the walk advances as reading does, one block ahead of the
 * events returned; seek() then finds its block from the (checksummed)
 * block headers and verifies from there on: the block it lands in must
 * chain to the header of the block before it, so every event returned
 * has passed every check. A segment opened lazily and read from its start
 * gets exactly the checks of a full open. A limit (set_limit) keeps the
 * walk below a block number: a follower never looks at a block that the
 * recorder has not published as sealed.
 *
 * Strict mode (the default) stops at the first fault. The blocks before
 * it stay readable: next() returns their events, then the fault as
 * -WALREC_ECORRUPT. The report says which segment, block and why.
 *
 * Tolerant mode (WR_SEGMENT_READER_TOLERANT) skips a block that fails
 * verification, counts it (skipped_blocks, each block once) and goes on:
 *   - id order: the next block must still start above the last id of the
 *     last block that verified (the skipped block contributes nothing);
 *   - chained checksum: the block after a skip can not be checked against
 *     the chain (the skipped block's true chained value is unknown). It
 *     must pass every other check, including its own block checksum over
 *     its events; its stored chained_checksum is then taken as the chain's
 *     new start and the following blocks are chained from it as usual;
 *   - the walk still ends at the first never-written block; faults that
 *     prevent reading further (a corrupt LZ4 frame, a read error) end it
 *     too, and are left in the report;
 *   - a closed header is compared only when nothing was skipped.
 * The report keeps the first fault; next() returns 0 (not the fault) at
 * the end. Without any fault both modes give the same result.
 *
 * Safety: whatever the file holds (truncated anywhere, flipped bytes,
 * zeros, random bytes, a huge size, an LZ4 frame that lies about its size
 * or expands to garbage or to more than the largest segment) the reader
 * never reads outside the mapping or its buffers. Events are returned
 * only from blocks that verified, using the counts recorded when they
 * verified. One exception is outside its control: a hot file truncated by
 * another process while mapped raises SIGBUS on access, as with any mmap.
 *
 * Concurrency: one reader object is used by one thread at a time (it may
 * be handed to another thread with a release/acquire pair). Any number of
 * readers may read the same file, also while a recorder appends to it.
 */
#ifndef WR_SEGMENT_READER_H
#define WR_SEGMENT_READER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <walrec/common.h>

#include "recorder/format.h"

/* Flags of wr_segment_reader_open(). */
enum {
	/* Treat the file as cold (LZ4) or hot regardless of its name. */
	WR_SEGMENT_READER_COLD = 1u << 0,
	WR_SEGMENT_READER_HOT = 1u << 1,
	/* Skip a block that fails verification, count it, go on (see above). */
	WR_SEGMENT_READER_TOLERANT = 1u << 2,
	/* Hot: verify as reading goes instead of at open (see above). Cold: no effect. */
	WR_SEGMENT_READER_LAZY = 1u << 3,
};

/* Decompressed bytes of one cold segment kept in memory; beyond, it is streamed. */
#define WR_COLD_CACHE_MAX (1024ull << 20)
/* The limit in force (WR_COLD_CACHE_MAX; tests lower it before opening anything). */
extern uint64_t wr_cold_cache_max;

/*
 * The pause before looking again at the last block of an active hot
 * segment that did not verify (a pwrite may be copying it in): a short
 * sleep; tests replace it.
 */
extern void (*wr_segment_reader_settle_wait)(void);

/* block_index of a report about the file or its header, not a block. */
#define WR_REPORT_SEGMENT (-1)

/* Why a segment failed verification, filled by open() (and next/seek). */
struct wr_segment_report {
	uint32_t segment_index;    /* from the header; 0 if it is unreadable */
	int64_t block_index;       /* the block at fault, or WR_REPORT_SEGMENT */
	enum wr_format_fault fault;
	uint64_t offset;           /* byte offset in the segment (decompressed for cold) */
	int error;                 /* 0, -WALREC_ECORRUPT, -WALREC_EFORMAT or -errno */
	char message[200];         /* one line: the reason and its details */
};

/* One valid block, as recorded when it verified. */
struct wr_block_entry {
	uint64_t first_event_id;
	uint64_t last_event_id;
	uint64_t chained_checksum;
	uint32_t event_count;
	uint32_t block;            /* its block number in the segment */
	bool resync;               /* first block after a skip: chain restarts here */
};

struct wr_lz4_stream; /* cold segments only; defined in segment_reader.c */

/*
 * Decompression buffers and LZ4F contexts kept between cold segments:
 * fresh memory costs a page fault and a page of zeroing per 4 KiB (or
 * 2 MiB) before it is used.
 * Any thread (a mutex guards it).
 */
#define WR_BUF_POOL_MAX 3u
struct wr_buf_pool {
	pthread_mutex_t lock;
	unsigned n;
	void *buf[WR_BUF_POOL_MAX];
	uint64_t cap[WR_BUF_POOL_MAX];
	unsigned nstreams;         /* LZ4F contexts (with their buffers) */
	struct wr_lz4_stream *streams[WR_BUF_POOL_MAX];
};

void wr_buf_pool_init(struct wr_buf_pool *p);
/* Unmap every kept buffer. No reader may still use the pool. */
void wr_buf_pool_fini(struct wr_buf_pool *p);

struct wr_segment_reader {
	/* what open() found */
	struct wr_segment_header header; /* copy, valid when open succeeded */
	struct wr_segment_report report; /* fault == WR_FAULT_NONE when all verified */
	bool cold;
	uint64_t file_size;        /* bytes of the file on disk */
	uint64_t data_size;        /* segment bytes (decompressed size for cold) */
	uint32_t num_blocks;       /* from data_size; 0 when it is not a segment size */
	/*
	 * The verified run: valid_blocks entries for the blocks the walk
	 * verified, from block run_start on (0 unless a lazy seek jumped).
	 */
	uint32_t valid_blocks;
	struct wr_block_entry *blocks;
	uint32_t blocks_cap;
	uint64_t event_count;      /* events in the valid blocks */
	uint64_t first_event_id;   /* 0 when there are none */
	uint64_t last_event_id;
	bool tolerant;
	bool lazy;
	uint32_t skipped_blocks;   /* tolerant: distinct blocks that failed and were skipped */
	uint32_t *skipped;         /* their block numbers, skipped_blocks of them */
	uint32_t skipped_cap;

	/* the walk: block walk_next is examined next, never one >= limit */
	uint32_t run_start;
	uint64_t run_floor;        /* last id before block run_start (0 for a run from block 0) */
	uint32_t walk_next;
	uint32_t whole;            /* whole blocks in the data that may be examined */
	uint32_t limit;            /* UINT32_MAX unless set_limit */
	uint64_t prev_chained;
	uint64_t prev_last_id;
	bool resync;               /* tolerant: the previous block was skipped */
	bool walk_done;            /* reached the end of the data, or stopped at a fault */
	bool decoding;             /* cold, inside open: more blocks are being decoded */

	/* read position: next() returns event cur_slot of indexed block cur_block */
	uint32_t cur_block;
	uint32_t cur_slot;
	const struct wr_block *cur; /* the loaded cur_block, or NULL */

	/* hot: the mapping; cold with the cache: the decompressed bytes */
	const uint8_t *map;
	uint64_t map_len;          /* bytes readable at map */
	uint64_t map_cap;          /* cold cache: bytes reserved */

	/* cold without the cache (larger than WR_COLD_CACHE_MAX) */
	struct wr_lz4_stream *lz4;
	struct wr_block *buf;      /* holds the current cold block */

	struct wr_buf_pool *pool;  /* where the cold cache comes from and goes back to; may be NULL */
	int fd;
	char path[4096];
};

/*
 * Open the segment at path; flags as above (0: strict, a full walk at
 * open, cold when the name ends in ".lz4"). Returns:
 *   0                the header is valid and the reader is open; check
 *                    r->report.fault (or wr_segment_reader_status) to
 *                    learn whether every block verified. The valid prefix
 *                    is readable either way.
 *   -WALREC_EFORMAT  not a segment: shorter than a header, bad magic,
 *                    version or header checksum, a size beyond the largest
 *                    segment, or an LZ4 stream that is not a frame;
 *   -EINVAL          bad flags; -errno when the file can not be read.
 * On failure r->report says why and nothing needs closing (close is
 * harmless). r is the caller's memory.
 */
int wr_segment_reader_open(struct wr_segment_reader *r, const char *path, unsigned flags);

/* The same, taking the cold cache from pool and giving it back there at close. */
int wr_segment_reader_open_pool(struct wr_segment_reader *r, const char *path, unsigned flags,
				struct wr_buf_pool *pool);

/* 0 when the whole segment verified (so far, for a lazy reader), else the error in r->report. */
int wr_segment_reader_status(const struct wr_segment_reader *r);

/*
 * Copy the next event to *out. Returns 1, 0 at the clean end of the data
 * (or at the limit), or a negative code: -WALREC_ECORRUPT after the last
 * event before a fault (strict mode), -errno on a read error (cold).
 * Repeats the same result at the end.
 */
int wr_segment_reader_next(struct wr_segment_reader *r, walrec_event_t *out);

/*
 * The events from the read position to the end of their block: *ev points
 * at *n >= 1 events (valid until the next call that moves the reader) and
 * the position moves past them. Returns 1, or 0 / negative as next().
 */
int wr_segment_reader_read_block(struct wr_segment_reader *r, const walrec_event_t **ev,
				 uint32_t *n);

/*
 * Position so that next() returns the first event whose id is >= id.
 * Returns 1 when such an event exists (among the blocks the walk may
 * reach), 0 when every event is < id (next() then returns the end
 * result), or -errno on a read error (cold).
 */
int wr_segment_reader_seek(struct wr_segment_reader *r, uint64_t id);

/*
 * Let the walk examine blocks below `blocks` only (a follower's sealed
 * position); UINT32_MAX removes the limit. Raising it lets a walk that
 * stopped at the limit, or at a block that was not written yet, go on.
 */
void wr_segment_reader_set_limit(struct wr_segment_reader *r, uint32_t blocks);

/* True when the walk reached the end of the data (or stopped at a fault for good). */
bool wr_segment_reader_at_end(const struct wr_segment_reader *r);

/*
 * Read and check only the header of a segment (cold: decompress its first
 * 64 bytes), without walking the blocks: for directory scans. cold as for
 * open's name rule. Returns 0, -WALREC_EFORMAT (rep says why) or -errno.
 * *file_size gets the size on disk (may be NULL).
 */
int wr_segment_peek_header(const char *path, bool cold, struct wr_segment_header *h,
			   uint64_t *file_size, struct wr_segment_report *rep);

/* Unmap, free, close. Safe on a zeroed or failed reader and twice. */
void wr_segment_reader_close(struct wr_segment_reader *r);

/*
 * Load indexed block i (< valid_blocks; blocks[i].block in the file, the
 * same number unless blocks were skipped) and return it, or NULL with *err set
 * (-errno, or -WALREC_ECORRUPT if a streamed cold file changed since open).
 * For readers that work a block at a time. The pointer is valid until the
 * next call that moves the reader.
 */
const struct wr_block *wr_segment_reader_block(struct wr_segment_reader *r, uint32_t i,
					       int *err);

#endif
