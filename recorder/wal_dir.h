/* SPDX-License-Identifier: MIT */
/*
 * WAL directory scanner: what a directory holds and how its segments fit.
 *
 * Lists the segment files ([PREFIX.]NNNNNNNN.wal and .wal.lz4), wal.meta
 * and every other (foreign) entry; reads each segment's header and orders
 * the segments by the index IN THE HEADER (a name can be wrong, a header
 * has a checksum). Then it looks at how they fit together:
 *
 *   problem          severity  meaning
 *   DUPLICATE        warning   one index hot and cold (a compression that
 *                              was interrupted; the hot file is used)
 *   DUPLICATE        error     one index in two hot or two cold files
 *   NAME_MISMATCH    warning   the name's index is not the header's
 *   INDEX_GAP        warning   indices missing between two segments
 *   ID_OVERLAP       error     a segment's first id <= the previous last id
 *   ID_GAP           warning   first id != previous last id + 1
 *
 * Event ids of a segment come from a closed header, or, with
 * WR_WAL_DIR_VERIFY, from reading every block (needed for segments left
 * active by a crash). Segments whose ids are unknown or that hold no
 * events are skipped by the id checks.
 *
 * Not thread-safe on one object; the directory may change while it is
 * scanned (entries that vanish are reported as I/O problems of the file).
 */
#ifndef WR_WAL_DIR_H
#define WR_WAL_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "recorder/format.h"
#include "recorder/segment_reader.h"

enum {
	/* Open every segment with the SegmentReader: full verification. */
	WR_WAL_DIR_VERIFY = 1u << 0,
};

struct wr_wal_file {
	char name[256];
	uint32_t name_index;          /* from the name */
	bool cold;
	bool header_ok;               /* header read and valid */
	bool duplicate;               /* another file is used for this index */
	uint32_t segment_index;       /* the header's; name_index if !header_ok */
	uint64_t file_size;
	struct wr_segment_header header;
	/* first problem of this file (error == 0: none); header only, or full */
	struct wr_segment_report report;

	bool ids_known;
	uint64_t first_event_id;      /* 0 when the segment holds no event */
	uint64_t last_event_id;

	/* filled with WR_WAL_DIR_VERIFY */
	bool verified;
	uint64_t data_size;           /* decompressed size for cold */
	uint32_t valid_blocks;
	uint64_t event_count;
};

enum wr_wal_dir_problem_kind {
	WR_WAL_DIR_DUPLICATE,
	WR_WAL_DIR_NAME_MISMATCH,
	WR_WAL_DIR_INDEX_GAP,
	WR_WAL_DIR_ID_OVERLAP,
	WR_WAL_DIR_ID_GAP,
};

struct wr_wal_dir_problem {
	enum wr_wal_dir_problem_kind kind;
	bool error;                   /* false: a warning */
	size_t file;                  /* position in segments[] it is about */
	char message[320];
};

struct wr_wal_dir {
	char path[4096];
	struct wr_wal_file *segments; /* by segment_index, then hot before cold */
	size_t nsegments;
	bool has_meta;
	uint64_t meta_size;
	char **foreign;               /* other entry names, sorted */
	size_t nforeign;
	struct wr_wal_dir_problem *problems;
	size_t nproblems;
};

/* Called after each segment is scanned, with the bytes of the files done. */
typedef void (*wr_wal_dir_progress_fn)(void *arg, size_t done, size_t total,
				       uint64_t bytes_done, uint64_t bytes_total);

/*
 * Scan the directory at path into d (caller's memory). flags: 0 or
 * WR_WAL_DIR_VERIFY. progress may be NULL. Returns 0 (problems with files
 * are in d, not in the return value), -ENOTDIR, -ENOMEM or -errno from
 * opendir/readdir. Release d with wr_wal_dir_free in every case.
 */
int wr_wal_dir_scan(struct wr_wal_dir *d, const char *path, unsigned flags,
		    wr_wal_dir_progress_fn progress, void *progress_arg);

/* Free what scan allocated; d may be zeroed. */
void wr_wal_dir_free(struct wr_wal_dir *d);

/* Full path of segments[i] into out. 0 or -ENAMETOOLONG. */
int wr_wal_dir_file_path(const struct wr_wal_dir *d, size_t i, char *out, size_t n);

/* Number of problems that are errors (not warnings). */
size_t wr_wal_dir_errors(const struct wr_wal_dir *d);

/*
 * Check wal.meta against the segments: exactly 16 bytes; names a segment
 * present (by header index); its offset is a block boundary inside that
 * segment, not past its valid blocks; last_event_id is the last id of the
 * block before the offset (for offset 64, any id below the segment's
 * first). Opens the named segment with the SegmentReader.
 * Returns 0 when it agrees, 1 when it does not (msg says how), -ENOENT
 * when there is no wal.meta, -errno when it can not be read.
 */
int wr_wal_dir_check_meta(const struct wr_wal_dir *d, struct wr_meta_state *state,
			  char *msg, size_t msg_len);

#endif
