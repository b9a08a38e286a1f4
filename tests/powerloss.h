/* SPDX-License-Identifier: MIT */
/*
 * Power-loss simulator for tests: keeps a "durable image" of one WAL
 * directory by watching the system-call table (lib/sys.h), and builds the
 * directory a machine could find after losing power at any instant.
 *
 * Model (what stable storage holds at a crash):
 *   - a file's data as of its last fdatasync/fsync (read through the fd at
 *     the moment of the sync), or, for an msync, the synced range of the
 *     mapping as it was at that moment; the size as of the last sync;
 *   - the directory's names as of its last fsync; creates (open O_CREAT),
 *     renames and unlinks since then are "pending", in call order;
 *   - a crash keeps the durable image, plus a random subset of the 4 KiB
 *     pages that changed since their last sync (each page old, new, or torn
 *     sector by sector at 512 bytes), either the old (synced) or the new
 *     size of each file, and a prefix of the pending directory operations
 *     (a journaling file system commits them in order).
 *
 * While the simulator runs, every sync call returns success at once
 * without reaching the disk (the simulator is the disk); sync_file_range,
 * which is never a durability point, does nothing; other calls run.
 * Data written through a shared mapping or pwrite/write is picked up when
 * the crash image is built, by reading the files. Calls that name a file
 * outside the watched directory pass through (and their syncs are free too).
 *
 * Crash points: wr_pl_crash_now() builds an image at once; with
 * wr_pl_set_capture(p), each watched call also builds one, with
 * probability p, just before or just after the call, into a queue that the
 * test drains with wr_pl_next_crash(). Building holds the simulator's
 * lock, so no watched call (in particular no sync) runs meanwhile.
 *
 * Checks made while running (failures are collected, see wr_pl_errors):
 *   - a block of a segment file that verified in its durable image must be
 *     byte-identical in every later durable image (sealed means immutable);
 *   - at a crash, wal.meta (if present) is exactly one of the 16-byte files
 *     that were fully written and synced (old or new, never torn, never
 *     empty);
 *   - every change to the directory went through the watched calls.
 *
 * Thread-safe (one lock); one simulator per process.
 */
#ifndef WR_TEST_POWERLOSS_H
#define WR_TEST_POWERLOSS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What one crash image holds and how it was built. */
struct wr_pl_crash {
	char dir[4200];          /* the crash directory (the caller removes it) */
	char where[160];         /* the crash point: "before fdatasync 00000003.wal", ... */
	uint64_t durable_id;     /* the durable position reported when it was taken */
	uint64_t seq;            /* crash number, from 1 */
	unsigned files;          /* files in the image */
	unsigned dirops_applied; /* pending directory operations kept */
	unsigned dirops_pending;
	unsigned pages_dirty;    /* pages that differed from their synced version */
	unsigned pages_new;      /* ... of which the new version was kept */
	unsigned pages_torn;     /* ... of which sectors were mixed */
	unsigned sizes_new;      /* files whose new (unsynced) size was kept */
};

/* Returns the durable position reported so far (called under the simulator's lock). */
typedef uint64_t (*wr_pl_durable_fn)(void *arg);

/*
 * Watch dir (an existing directory): its current content is taken as
 * durable. Crash directories go under scratch (existing). Installs the
 * hooks into wr_sys and clears the errors of an earlier watch (read them
 * with wr_pl_errors before). Returns 0 or -errno.
 */
int wr_pl_start(const char *dir, const char *scratch, uint64_t seed);

/* Remove the hooks (wr_sys_reset) and free everything; queued crash directories are removed. */
void wr_pl_stop(void);

/* The function that says what has been reported durable (NULL: 0). */
void wr_pl_set_durable_fn(wr_pl_durable_fn fn, void *arg);

/* Probability (0..1) that a watched call takes a crash point; queue depth limit. */
void wr_pl_set_capture(double probability, unsigned max_queued);

/* Build a crash image now (where names the point). 0 or -errno. */
int wr_pl_crash_now(const char *where, struct wr_pl_crash *out);

/* Take the oldest queued crash image. true if there was one. */
bool wr_pl_next_crash(struct wr_pl_crash *out);

/* Watched calls seen and crash points taken (captured, including dropped because the queue was full). */
void wr_pl_counts(uint64_t *calls, uint64_t *crashes, uint64_t *dropped);

/*
 * Errors the simulator found (model checks above), one per line, in buf.
 * Returns how many (0: none).
 */
unsigned wr_pl_errors(char *buf, size_t n);

#endif
