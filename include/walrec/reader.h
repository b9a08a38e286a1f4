/* SPDX-License-Identifier: MIT */
/* walrec: read a WAL directory back (hot and cold segments), in id order, with seek. */
#ifndef WALREC_READER_H
#define WALREC_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <walrec/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A reader walks the segments of one WAL directory (NNNNNNNN.wal mapped,
 * NNNNNNNN.wal.lz4 decompressed as a stream) in event id order. Every
 * segment is fully verified when the reader first enters it.
 *
 * Strict mode (default): any integrity failure is an error. next()
 * returns the events before the fault, then -WALREC_ECORRUPT (or
 * -WALREC_EFORMAT for a file that is not a segment);
 * walrec_reader_last_error() names the file, block and reason. A
 * directory whose segments overlap in ids (or holds one index twice)
 * fails at open.
 *
 * Tolerant mode: a block that fails verification is skipped and counted
 * (walrec_reader_skipped), a segment that can not be read at all is
 * skipped and counted, and an event whose id is not above the last one
 * returned (overlapping segments) is dropped and counted. Reading goes
 * on with the next block or segment; see docs/reader.md for the rules.
 *
 * Gaps in ids between segments are allowed in both modes and counted.
 *
 * One reader is used by one thread at a time; readers are independent.
 * A reader sees the segments present at open (a recorder may be
 * appending). A hot segment compressed meanwhile is read from its
 * .wal.lz4; one deleted meanwhile ends reading with an error in strict
 * mode (skipped and counted in tolerant mode).
 */
typedef struct walrec_reader walrec_reader_t;

typedef struct walrec_reader_options {
	bool tolerant; /* default false: strict */
} walrec_reader_options_t;

/* Fill opts with the defaults (strict). */
void walrec_reader_options_init(walrec_reader_options_t *opts);

/*
 * Open the WAL directory dir, positioned at its first event. opts NULL
 * means the defaults. Returns 0 and *r; -ENOTDIR, -ENOENT, -ENOMEM;
 * strict only: -WALREC_ECORRUPT when the segments overlap or an index is
 * present twice, -WALREC_EFORMAT when a segment header is unreadable
 * (the reason, naming the file, is logged).
 */
int walrec_reader_open(walrec_reader_t **r, const char *dir, const walrec_reader_options_t *opts);

/*
 * Position so that next() returns the first event whose id is >= event_id.
 * Past the last event the reader is at the end (next returns 0).
 * Returns 0, or a negative code as next().
 */
int walrec_reader_seek(walrec_reader_t *r, uint64_t event_id);

/* Copy the next event to *out. Returns 1, 0 at the end, or a negative code. */
int walrec_reader_next(walrec_reader_t *r, walrec_event_t *out);

/*
 * The last error or, in tolerant mode, the first problem skipped, as one
 * line ("FILE: block N: reason"), into buf (always terminated when n > 0).
 * Returns the code (0 when there was none).
 */
int walrec_reader_last_error(const walrec_reader_t *r, char *buf, size_t n);

/* Blocks skipped so far (tolerant mode; 0 in strict mode). */
uint64_t walrec_reader_skipped(const walrec_reader_t *r);

typedef struct walrec_reader_stats {
	uint64_t skipped_blocks;   /* tolerant: blocks that failed verification */
	uint64_t skipped_segments; /* tolerant: segments that could not be read */
	uint64_t dropped_events;   /* tolerant: events not above the last id (overlap) */
	uint64_t id_gaps;          /* places where ids jump between segments */
	uint64_t id_overlaps;      /* segments starting at or below the previous last id */
	uint64_t segments;         /* segments in the directory that are read */
} walrec_reader_stats_t;

/* Fill *st. Counters of skipped blocks grow as segments are entered. */
void walrec_reader_stats(const walrec_reader_t *r, walrec_reader_stats_t *st);

/* Release everything. NULL is accepted. */
void walrec_reader_close(walrec_reader_t *r);

#ifdef __cplusplus
}
#endif

#endif
