/* SPDX-License-Identifier: MIT */
/*
 * Following a live log: how a reader in any process learns what the
 * recorder has sealed, and sleeps until it seals more.
 *
 * The recorder publishes its sealed position in the channel's meta mirror
 * (recorder/channel_layout.h): the segment and the number of its blocks
 * that are sealed and written to the segment file, then bumps the mirror's
 * sealed_futex and wakes the followers sleeping on it. A follower maps the
 * channel, reads the mirror (seqlock) and reads files only up to that
 * position; it sleeps in FUTEX_WAIT on sealed_futex, having added itself
 * to the mirror's followers count so the recorder knows to wake it.
 *
 * The channel of a directory: the name given by the caller, or else the
 * one in DIR/walrec.channel, which the drain loop (walrec record) writes
 * when it starts. Neither the channel nor the file need exist yet: the
 * follower looks for them again every WR_FOLLOW_ATTACH_NS while it has
 * none, and while attached it checks once every WR_FOLLOW_CHECK_NS of
 * sleep that the name still refers to the object it mapped (a recorder
 * may have removed and created the channel again). A recorder restarted on
 * the existing channel (the usual case) wakes the follower through the same
 * futex.
 *
 * Everything read from the channel is untrusted: the mirror is read under
 * its seqlock with a bounded retry, and the position only bounds which
 * blocks of the files may be looked at; the blocks themselves are verified.
 *
 * Concurrency: one wr_follow object belongs to one thread.
 */
#ifndef WR_FOLLOW_H
#define WR_FOLLOW_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "recorder/channel.h"

#define WR_FOLLOW_NAME_FILE "walrec.channel"
#define WR_FOLLOW_ATTACH_NS 100000000ull /* 100 ms between looks for a missing channel */
#define WR_FOLLOW_CHECK_NS 1000000000ull /* 1 s of sleep between identity checks */

struct wr_follow_pos {
	uint32_t segment_index; /* segment of the last sealed block */
	uint32_t blocks;        /* sealed blocks written to that segment */
	uint64_t last_sealed_id;
};

struct wr_follow {
	char dir[4096];
	char name[WR_CHAN_NAME_MAX + 1];
	bool fixed_name;        /* given by the caller, not read from the file */
	bool attached;
	struct wr_chan_map map;
	dev_t dev;              /* identity of the mapped object */
	ino_t ino;
	uint32_t seen;          /* sealed_futex when the mirror was last read */
	uint64_t next_attach_ns;
	uint64_t attaches;      /* times a channel was mapped (1 + reattachments) */
};

/*
 * Prepare to follow the WAL directory dir through channel name (NULL: the
 * name in dir/walrec.channel). Nothing is mapped yet. Returns 0, -EINVAL
 * (bad name) or -ENAMETOOLONG.
 */
int wr_follow_init(struct wr_follow *f, const char *dir, const char *name);

/* Unmap. Safe on a zeroed object and twice. */
void wr_follow_fini(struct wr_follow *f);

/*
 * The recorder's published sealed position. Maps the channel first if
 * needed (at most every WR_FOLLOW_ATTACH_NS while it is missing). Returns
 * 1 and *pos; 0 when there is no position (no channel, or no recorder has
 * published into it yet); -EAGAIN when the mirror is stuck mid-update
 * (treat as 0).
 */
int wr_follow_position(struct wr_follow *f, struct wr_follow_pos *pos);

/*
 * Sleep until the recorder publishes after the last wr_follow_position,
 * the channel is (re)attached, or timeout_ns passes. Returns 1 (something
 * may have changed: read again), 0 on timeout, or -EINTR (a signal).
 */
int wr_follow_wait(struct wr_follow *f, uint64_t timeout_ns);

/*
 * Recorder side: name the channel that serves dir in dir/walrec.channel
 * (written by durable replace). Returns 0 or -errno.
 */
int wr_follow_announce(const char *dir, const char *name);

/*
 * Read dir/walrec.channel (a regular file holding one valid channel name
 * and a newline, no symlink) into name. Returns 0, -ENOENT, or -EINVAL
 * when it does not hold a valid name.
 */
int wr_follow_read_name(const char *dir, char *name, size_t n);

#endif
