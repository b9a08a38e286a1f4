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
 * NNNNNNNN.wal.lz4 decompressed once into memory) in event id order. Every
 * event returned has passed every check of the format (block and header
 * checksums, the chained checksum against the block before it, id order).
 * Reading from the start verifies each segment whole: a preloader thread
 * opens and verifies the next segments ahead of the reader and closes the
 * finished ones, so crossing into the next segment costs a hand-over. A
 * seek verifies from the block it lands in on (see docs/reader.md).
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
 * Follow mode: the reader also tails a live log. next() returns 0 when it
 * has returned everything sealed so far; walrec_reader_wait() sleeps
 * (futex on the channel's published sealed position) until the recorder
 * seals more. It never reads past what the recorder published as sealed,
 * and goes on across rotations, compression of old segments and recorder
 * restarts. The channel is opts.channel or the one named in
 * DIR/walrec.channel (written by walrec record).
 *
 * One reader is used by one thread at a time; readers are independent.
 * Without follow mode a reader sees the segments present at open (a
 * recorder may be appending). A hot segment compressed meanwhile is read
 * from its .wal.lz4; one deleted meanwhile ends reading with an error in
 * strict mode (skipped and counted in tolerant mode).
 */
typedef struct walrec_reader walrec_reader_t;

#define WALREC_READER_DEFAULT_PRELOAD 2u
#define WALREC_READER_MAX_PRELOAD 8u

typedef struct walrec_reader_options {
	bool tolerant;        /* default false: strict */
	bool follow;          /* default false: read what is there at open */
	const char *channel;  /* follow: channel name; NULL: the one DIR/walrec.channel names */
	/*
	 * Segments verified ahead by the preloader thread, 0..8; 0 runs no
	 * thread (everything happens in next()). Default 2.
	 */
	uint32_t preload;
} walrec_reader_options_t;

/* Fill opts with the defaults (strict, no follow, preload 2). */
void walrec_reader_options_init(walrec_reader_options_t *opts);

/*
 * Open the WAL directory dir, positioned at its first event (dir may also
 * be one segment file, .wal or .wal.lz4, read alone; not in follow mode).
 * opts NULL means the defaults. Returns 0 and *r; -ENOTDIR, -ENOENT, -ENOMEM;
 * -EINVAL for a bad option (a channel name that is not valid, preload
 * above 8); strict only: -WALREC_ECORRUPT when the segments overlap or an
 * index is present twice, -WALREC_EFORMAT when a segment header is
 * unreadable (the reason, naming the file, is logged).
 */
int walrec_reader_open(walrec_reader_t **r, const char *dir, const walrec_reader_options_t *opts);

/*
 * Position so that next() returns the first event whose id is >= event_id.
 * Past the last event the reader is at the end (next returns 0; in follow
 * mode the first such event once it is sealed). Returns 0, or a negative
 * code as next().
 */
int walrec_reader_seek(walrec_reader_t *r, uint64_t event_id);

/* Copy the next event to *out. Returns 1, 0 at the end (follow: for now), or a negative code. */
int walrec_reader_next(walrec_reader_t *r, walrec_event_t *out);

/*
 * Follow mode: after next() returned 0, sleep until the recorder seals
 * more events (or a recorder appears, or the channel is recreated), at
 * most timeout_ns. Returns 1 when there may be more to read (call next;
 * it may still return 0), 0 on timeout, -EINTR when a signal arrived,
 * -EINVAL when the reader does not follow.
 */
int walrec_reader_wait(walrec_reader_t *r, uint64_t timeout_ns);

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
	uint64_t segments;         /* segments known to the reader (follow: grows) */
	uint64_t preloaded;        /* segments entered ready, verified by the preloader */
	uint64_t preload_waits;    /* crossings that waited for the preloader */
	uint64_t ready_ahead;      /* segments opened (or failed to) ahead and waiting, now */
	uint64_t attaches;         /* follow: times a channel was mapped */
} walrec_reader_stats_t;

/* Fill *st. Counters of skipped blocks grow as blocks are verified. */
void walrec_reader_stats(const walrec_reader_t *r, walrec_reader_stats_t *st);

/* Release everything (stops the preloader). NULL is accepted. */
void walrec_reader_close(walrec_reader_t *r);

#ifdef __cplusplus
}
#endif

#endif
