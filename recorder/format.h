/* SPDX-License-Identifier: MIT */
/*
 * walrec on-disk format, version 1 (byte-compatible with FlashStrike WAL v1).
 *
 * All integers little-endian. XXH64 is libxxhash's XXH64(ptr, len, seed).
 *
 * Segment file NNNNNNNN.wal = segment header (64) + num_blocks blocks;
 * block i starts at 64 + i * 16448; 16 <= num_blocks <= 524288.
 *
 * Segment header:
 *   off size field
 *     0    2 magic = 0x4653 ("FS")
 *     2    1 version = 1
 *     3    1 header_size = 64
 *     4    4 segment_index
 *     8    4 block_count            blocks written (0 while active)
 *    12    4 event_count            (0 while active)
 *    16    8 first_event_id         (0 while active)
 *    24    8 last_event_id          (0 while active)
 *    32    8 created_ts_ns
 *    40    8 closed_ts_ns           0 while the segment is active
 *    48    8 checksum = XXH64(bytes[56..64), seed = XXH64(bytes[0..48), 0))
 *    56    8 last_chained_checksum  chained checksum of the last block (at close)
 *
 * Block = block header (64) + 256 event slots of 64 bytes (16,448 bytes):
 *   off size field
 *     0    8 first_event_id
 *     8    8 last_event_id
 *    16    8 block_checksum   = XXH64(events, count * 64, 0)
 *    24    8 chained_checksum = XXH64(events, count * 64, prev_chained)
 *    32    8 checksum = XXH64(bytes[40..64), seed = XXH64(bytes[0..32), 0))
 *    40    4 block_index
 *    44    2 event_count, 1..256
 *    46   18 zero padding
 * prev_chained is 0 for block 0 of every segment, then the previous block's
 * chained_checksum.
 *
 * A block is valid when: its header checksum matches, 1 <= count <= 256,
 * block_index is its position, padding is zero, event ids are non-zero and
 * strictly increase inside the block and across blocks, first/last match
 * the first and last event, both payload checksums match, and the slots
 * past count are zero. A block whose 64 header bytes are all zero was
 * never written (the end of the data), which is not corruption.
 *
 * wal.meta (16 bytes): u64 (segment_index << 32) | offset, u64 last_event_id.
 * offset is the end of the last sealed block in that segment.
 */
#ifndef WR_FORMAT_H
#define WR_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <walrec/common.h>

#include "lib/compiler.h"

#define WR_SEGMENT_MAGIC 0x4653u
#define WR_FORMAT_VERSION 1u
#define WR_SEGMENT_HEADER_SIZE 64u
#define WR_BLOCK_HEADER_SIZE 64u
#define WR_EVENT_SIZE 64u
#define WR_EVENTS_PER_BLOCK 256u
#define WR_BLOCK_SIZE (WR_BLOCK_HEADER_SIZE + WR_EVENTS_PER_BLOCK * WR_EVENT_SIZE)
#define WR_MIN_BLOCKS 16u
#define WR_MAX_BLOCKS 524288u
#define WR_META_SIZE 16u
#define WR_META_NAME "wal.meta"
#define WR_SEGMENT_SUFFIX ".wal"
#define WR_COLD_SUFFIX ".wal.lz4"

struct wr_segment_header {
	uint16_t magic;
	uint8_t version;
	uint8_t header_size;
	uint32_t segment_index;
	uint32_t block_count;
	uint32_t event_count;
	uint64_t first_event_id;
	uint64_t last_event_id;
	uint64_t created_ts_ns;
	uint64_t closed_ts_ns;
	uint64_t checksum;
	uint64_t last_chained_checksum;
};

struct wr_block_header {
	uint64_t first_event_id;
	uint64_t last_event_id;
	uint64_t block_checksum;
	uint64_t chained_checksum;
	uint64_t checksum;
	uint32_t block_index;
	uint16_t event_count;
	uint8_t padding[18];
};

struct wr_block {
	struct wr_block_header header;
	walrec_event_t events[WR_EVENTS_PER_BLOCK];
};

_Static_assert(sizeof(walrec_event_t) == WR_EVENT_SIZE, "event is 64 bytes");
_Static_assert(offsetof(walrec_event_t, event_id) == 0, "event_id at 0");
_Static_assert(offsetof(walrec_event_t, timestamp_ns) == 8, "timestamp at 8");
_Static_assert(offsetof(walrec_event_t, payload) == 16, "payload at 16");

_Static_assert(sizeof(struct wr_segment_header) == WR_SEGMENT_HEADER_SIZE, "segment header size");
_Static_assert(offsetof(struct wr_segment_header, magic) == 0, "magic");
_Static_assert(offsetof(struct wr_segment_header, version) == 2, "version");
_Static_assert(offsetof(struct wr_segment_header, header_size) == 3, "header_size");
_Static_assert(offsetof(struct wr_segment_header, segment_index) == 4, "segment_index");
_Static_assert(offsetof(struct wr_segment_header, block_count) == 8, "block_count");
_Static_assert(offsetof(struct wr_segment_header, event_count) == 12, "event_count");
_Static_assert(offsetof(struct wr_segment_header, first_event_id) == 16, "first_event_id");
_Static_assert(offsetof(struct wr_segment_header, last_event_id) == 24, "last_event_id");
_Static_assert(offsetof(struct wr_segment_header, created_ts_ns) == 32, "created_ts_ns");
_Static_assert(offsetof(struct wr_segment_header, closed_ts_ns) == 40, "closed_ts_ns");
_Static_assert(offsetof(struct wr_segment_header, checksum) == 48, "checksum");
_Static_assert(offsetof(struct wr_segment_header, last_chained_checksum) == 56, "last_chained");

_Static_assert(sizeof(struct wr_block_header) == WR_BLOCK_HEADER_SIZE, "block header size");
_Static_assert(offsetof(struct wr_block_header, first_event_id) == 0, "first_event_id");
_Static_assert(offsetof(struct wr_block_header, last_event_id) == 8, "last_event_id");
_Static_assert(offsetof(struct wr_block_header, block_checksum) == 16, "block_checksum");
_Static_assert(offsetof(struct wr_block_header, chained_checksum) == 24, "chained_checksum");
_Static_assert(offsetof(struct wr_block_header, checksum) == 32, "checksum");
_Static_assert(offsetof(struct wr_block_header, block_index) == 40, "block_index");
_Static_assert(offsetof(struct wr_block_header, event_count) == 44, "event_count");
_Static_assert(offsetof(struct wr_block_header, padding) == 46, "padding");
_Static_assert(sizeof(struct wr_block) == WR_BLOCK_SIZE && WR_BLOCK_SIZE == 16448, "block size");
_Static_assert(offsetof(struct wr_block, events) == 64, "events follow the header");

/* Bytes of a segment file with num_blocks blocks. */
static inline uint64_t
wr_segment_size(uint32_t num_blocks)
{
	return WR_SEGMENT_HEADER_SIZE + (uint64_t)num_blocks * WR_BLOCK_SIZE;
}

/* File offset of block i. */
static inline uint64_t
wr_block_offset(uint32_t i)
{
	return WR_SEGMENT_HEADER_SIZE + (uint64_t)i * WR_BLOCK_SIZE;
}

/*
 * num_blocks of a segment file of file_size bytes, or 0 when the size is
 * not 64 + n * 16448 with n in [16, 524288].
 */
uint32_t wr_segment_blocks_for_size(uint64_t file_size);

/* Why a header or block is not valid. */
enum wr_format_fault {
	WR_FAULT_NONE = 0,
	WR_FAULT_SHORT,            /* fewer bytes than the structure needs */
	WR_FAULT_MAGIC,            /* segment magic is not "FS" */
	WR_FAULT_VERSION,          /* version or header_size not 1 / 64 */
	WR_FAULT_HEADER_CHECKSUM,  /* header checksum mismatch */
	WR_FAULT_EMPTY,            /* block never written (all-zero header) */
	WR_FAULT_COUNT,            /* event_count outside 1..256 */
	WR_FAULT_INDEX,            /* block_index is not the block's position */
	WR_FAULT_PADDING,          /* header padding not zero */
	WR_FAULT_EVENT_ID,         /* an event id is 0, or first/last disagree */
	WR_FAULT_ORDER,            /* ids not strictly increasing */
	WR_FAULT_BLOCK_CHECKSUM,   /* block_checksum mismatch */
	WR_FAULT_CHAINED_CHECKSUM, /* chained_checksum mismatch */
	WR_FAULT_TAIL,             /* a slot past event_count is not zero */
	WR_FAULT_SEGMENT_INDEX,    /* header index disagrees with expectations */
	WR_FAULT_COUNTS,           /* closed header counts disagree with blocks */
	WR_FAULT_FILE_SIZE,        /* file size is not a valid segment size */
};

/* A short phrase for a fault ("header checksum mismatch", ...). */
const char *wr_format_fault_str(enum wr_format_fault f);

/* ---- segment header ---------------------------------------------------- */

uint64_t wr_segment_header_checksum(const struct wr_segment_header *h);

/* A fresh active header (counts 0, closed_ts 0) with its checksum set. */
void wr_segment_header_init(struct wr_segment_header *h, uint32_t segment_index,
			    uint64_t created_ts_ns);

/* Recompute and store h->checksum after changing fields. */
void wr_segment_header_finalize(struct wr_segment_header *h);

/*
 * Check magic, version, header_size and checksum of the len bytes at buf
 * (which need not be aligned). Returns WR_FAULT_NONE or the fault; copies
 * the header to out (may be NULL) when len >= 64.
 */
enum wr_format_fault wr_segment_header_check(const void *buf, size_t len,
					     struct wr_segment_header *out);

/* ---- block ---------------------------------------------------------------- */

uint64_t wr_block_header_checksum(const struct wr_block_header *h);

/*
 * Fill the header of a block whose first count events are written (slots
 * past count must already be zero): ids, both payload checksums, index,
 * count, header checksum. Returns the block's chained checksum.
 * One-shot hashing; the writer's hot path hashes incrementally instead.
 */
uint64_t wr_block_finalize(struct wr_block *b, uint32_t block_index, uint16_t count,
			   uint64_t prev_chained);

/*
 * Verify the block at b (WR_BLOCK_SIZE readable bytes) as block number
 * block_index, following a block whose chained checksum is prev_chained
 * (0 for block 0) and whose last event id is prev_last_id (0 if none).
 * Returns WR_FAULT_NONE (then *chained_out, if not NULL, is this block's
 * chained checksum), WR_FAULT_EMPTY for a never-written block, or the fault.
 */
enum wr_format_fault wr_block_verify(const struct wr_block *b, uint32_t block_index,
				     uint64_t prev_chained, uint64_t prev_last_id,
				     uint64_t *chained_out);

/* ---- wal.meta ------------------------------------------------------------- */

struct wr_meta_state {
	uint32_t segment_index;
	uint32_t offset;
	uint64_t last_event_id;
};

void wr_meta_encode(uint8_t out[WR_META_SIZE], const struct wr_meta_state *s);
void wr_meta_decode(const uint8_t in[WR_META_SIZE], struct wr_meta_state *s);

/* ---- names -------------------------------------------------------------- */

/*
 * Parse a segment file name "[PREFIX.]NNNNNNNN.wal" or "...wal.lz4".
 * Returns 1 and sets *index and *cold for a segment name, 0 otherwise.
 * The prefix, if any, must not itself contain a '/'.
 */
int wr_segment_name_parse(const char *name, uint32_t *index, bool *cold);

/* Format "[prefix.]NNNNNNNN.wal" (cold adds ".lz4") into out. 0 or -ENAMETOOLONG. */
int wr_segment_name(char *out, size_t n, const char *prefix, uint32_t index, bool cold);

#endif
