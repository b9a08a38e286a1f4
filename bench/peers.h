/* SPDX-License-Identifier: MIT */
/*
 * 'walrec bench peers': the systems walrec is compared with, behind one
 * small interface, so that every system writes the same 64-byte records
 * through the same timing loop.
 */
#ifndef WR_BENCH_PEERS_H
#define WR_BENCH_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WR_PEER_RECORD 64u      /* bytes per record, every system */
#define WR_PEER_MAX_BATCH 256u  /* largest records-per-acknowledgement */

struct wr_peer_case;

/*
 * One system in one mode. A write call takes n == batch records (n * 64
 * bytes, first_seq is the 1-based number of the first) and returns once the
 * system acknowledges them in this mode: accepted (class "nosync") or on
 * stable storage ("durable"). Each call is one timed operation.
 */
struct wr_peer_case {
	const char *system;  /* "walrec", "write", "sqlite", "leveldb", "rocksdb" */
	const char *mode;    /* system-specific, e.g. "wal-full-txn256" */
	const char *about;   /* one line for the human table's notes */
	bool durable;        /* the acknowledgement means on stable storage */
	unsigned batch;      /* records per write call (and per sync/commit) */
	int arg;             /* a mode parameter for the implementation */
	/* Create the store in the empty directory dir. 0 or -errno; msg filled on error. */
	int (*open)(void **st, const char *dir, const struct wr_peer_case *c, char *msg, size_t n);
	int (*write)(void *st, const uint8_t *recs, unsigned n, uint64_t first_seq);
	/* Close and free st. 0 or -errno. */
	int (*close)(void *st);
};

/* A system's case table (NULL-terminated by system == NULL). */
extern const struct wr_peer_case wr_peer_walrec_cases[];
extern const struct wr_peer_case wr_peer_write_cases[];
#ifdef HAVE_SQLITE3
extern const struct wr_peer_case wr_peer_sqlite_cases[];
#endif
#ifdef HAVE_LEVELDB
extern const struct wr_peer_case wr_peer_leveldb_cases[];
#endif
#ifdef HAVE_ROCKSDB
extern const struct wr_peer_case wr_peer_rocksdb_cases[];
#endif

#endif
