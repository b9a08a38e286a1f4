/* SPDX-License-Identifier: MIT */
/* 'walrec bench peers': walrec's embedded recorder and plain write()/fdatasync, the two always built. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <walrec/recorder.h>

#include "bench/harness.h"
#include "bench/peers.h"

/* ---- walrec: the embedded recorder ---------------------------------------- */

static int
walrec_open(void **st, const char *dir, const struct wr_peer_case *c, char *msg, size_t n)
{
	walrec_recorder_config_t cfg;
	walrec_recorder_config_init(&cfg);
	/* As 'walrec bench recorder': 4 MiB segments, rotations on the clock. */
	cfg.num_blocks = 256;
	cfg.compression = false;
	cfg.max_hot_segments = 4;
	walrec_recorder_t *rec = NULL;
	int rc = walrec_recorder_open(&rec, dir, &cfg);
	if (rc != 0) {
		snprintf(msg, n, "walrec_recorder_open %s: %s", dir, walrec_strerror(rc));
		return rc;
	}
	wr_bench_recorder_settle(rec);
	*st = rec;
	return 0;
}

static int
walrec_write(void *st, const uint8_t *recs, unsigned n, uint64_t first_seq)
{
	walrec_recorder_t *rec = st;
	/* recs is 64-byte aligned and laid out as events (id, timestamp, payload). */
	const walrec_event_t *ev = (const walrec_event_t *)(const void *)recs;
	for (unsigned i = 0; i < n; i++) {
		int rc = walrec_recorder_append(rec, &ev[i], NULL);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int
walrec_write_sync(void *st, const uint8_t *recs, unsigned n, uint64_t first_seq)
{
	int rc = walrec_write(st, recs, n, first_seq);
	return rc != 0 ? rc : walrec_recorder_sync(st);
}

static int
walrec_close(void *st)
{
	int rc = walrec_recorder_close(st);
	walrec_recorder_destroy(st);
	return rc;
}

const struct wr_peer_case wr_peer_walrec_cases[] = {
	{ "walrec", "nosync", "walrec_recorder_append (background sync every 1 ms)", false, 1, 0,
	  walrec_open, walrec_write, walrec_close },
	{ "walrec", "sync-1", "append, walrec_recorder_sync after every record", true, 1, 0,
	  walrec_open, walrec_write_sync, walrec_close },
	{ "walrec", "sync-16", "16 appends, then walrec_recorder_sync", true, 16, 0, walrec_open,
	  walrec_write_sync, walrec_close },
	{ "walrec", "sync-256", "256 appends, then walrec_recorder_sync", true, 256, 0, walrec_open,
	  walrec_write_sync, walrec_close },
	{ NULL, NULL, NULL, false, 0, 0, NULL, NULL, NULL },
};

/* ---- write(): one system call per record ---------------------------------- */

struct file_peer {
	int fd;
	bool sync;
};

static int
file_open(void **st, const char *dir, const struct wr_peer_case *c, char *msg, size_t n)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/records.bin", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		snprintf(msg, n, "open %s: %s", path, strerror(e));
		return -e;
	}
	struct file_peer *f = calloc(1, sizeof *f);
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	f->fd = fd;
	f->sync = c->durable;
	*st = f;
	return 0;
}

static int
file_write(void *st, const uint8_t *recs, unsigned n, uint64_t first_seq)
{
	struct file_peer *f = st;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *r = recs + (size_t)i * WR_PEER_RECORD;
		ssize_t w = write(f->fd, r, WR_PEER_RECORD);
		if (w != (ssize_t)WR_PEER_RECORD)
			return w < 0 ? -errno : -EIO;
	}
	if (f->sync && fdatasync(f->fd) != 0)
		return -errno;
	return 0;
}

static int
file_close(void *st)
{
	struct file_peer *f = st;
	int rc = close(f->fd) == 0 ? 0 : -errno;
	free(f);
	return rc;
}

const struct wr_peer_case wr_peer_write_cases[] = {
	{ "write", "nosync", "write() of each record, no sync", false, 1, 0, file_open, file_write,
	  file_close },
	{ "write", "fdatasync-1", "write(), fdatasync after every record", true, 1, 0, file_open,
	  file_write, file_close },
	{ "write", "fdatasync-16", "16 write()s, then fdatasync", true, 16, 0, file_open,
	  file_write, file_close },
	{ "write", "fdatasync-256", "256 write()s, then fdatasync", true, 256, 0, file_open,
	  file_write, file_close },
	{ NULL, NULL, NULL, false, 0, 0, NULL, NULL, NULL },
};
