/* SPDX-License-Identifier: MIT */
/* Segment files for tests, built with the format module alone (no writer). */
#ifndef WR_TEST_SEGFILE_H
#define WR_TEST_SEGFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <walrec/common.h>

enum wr_segfile_header {
	WR_SEGFILE_CLOSED = 0, /* final header: counts, ids, closed_ts, last chained */
	WR_SEGFILE_ACTIVE,     /* header as a crashed recorder leaves it: zero counts */
};

struct wr_segfile_spec {
	uint32_t segment_index;
	uint32_t num_blocks;        /* blocks in the file; 0 means 16 */
	uint32_t blocks;            /* blocks written (<= num_blocks) */
	uint32_t events_per_block;  /* 1..256; 0 means 256 */
	const uint16_t *counts;     /* per written block, overrides events_per_block */
	uint32_t last_block_events; /* events of the last written block; 0: as the others */
	uint64_t first_id;          /* id of the first event; 0 means 1 */
	uint64_t id_step;           /* id difference of consecutive events; 0 means 1 */
	enum wr_segfile_header header;
	/*
	 * Slots of the never-sealed block after the last one written (a torn
	 * tail: events in place, header still zero), for crash-style files.
	 */
	uint32_t torn_events;
};

struct wr_segfile_info {
	uint64_t size;
	uint32_t blocks;
	uint64_t events;
	uint64_t first_id;
	uint64_t last_id;
	uint64_t last_chained;
	uint64_t block_first[64];   /* first id of each of the first 64 blocks */
	uint64_t block_last[64];
	uint32_t block_events[64];
};

/* The deterministic event with this id (timestamp and payload derive from it). */
void wr_segfile_event(uint64_t id, walrec_event_t *ev);

/* Write the segment file described by s. 0 or -errno; info may be NULL. */
int wr_segfile_write(const char *path, const struct wr_segfile_spec *s,
		     struct wr_segfile_info *info);

/* Compress src into dst as one LZ4 frame (what the maintainer does). 0 or -1. */
int wr_segfile_compress(const char *src, const char *dst);

/* Compress len bytes at data into dst as one LZ4 frame; content_size as declared (0: none). */
int wr_segfile_compress_buf(const void *data, size_t len, const char *dst,
			    unsigned long long content_size);

#endif
