/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: a cold segment file (.wal.lz4, an LZ4 frame of a segment).
 * The SegmentReader decompresses it as a stream (strict and tolerant, next
 * and seek), the header peek reads its first 64 bytes, and the public
 * reader and the directory scanner go over a directory holding it.
 * Invariants: strictly increasing ids, never more events than verified.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "recorder/segment_reader.h"
#include "tests/fuzz/fuzz.h"

static void
read_cold(const char *path, unsigned flags)
{
	struct wr_segment_reader r;
	if (wr_segment_reader_open(&r, path, flags) == 0) {
		walrec_event_t ev;
		uint64_t last = 0, n = 0;
		int rc;
		while ((rc = wr_segment_reader_next(&r, &ev)) == 1) {
			WR_FUZZ_ASSERT(ev.event_id > last);
			last = ev.event_id;
			n++;
		}
		WR_FUZZ_ASSERT(n <= r.event_count);
		if (r.event_count > 0 && wr_segment_reader_seek(&r, r.last_event_id) == 1 &&
		    wr_segment_reader_next(&r, &ev) == 1)
			WR_FUZZ_ASSERT(ev.event_id >= r.last_event_id);
	}
	wr_segment_reader_close(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wr_fuzz_quiet();
	const char *dir = wr_fuzz_scratch();
	char path[512];
	snprintf(path, sizeof path, "%s/00000001.wal.lz4", dir);
	wr_fuzz_clear(dir);
	wr_fuzz_write(path, data, size);
	read_cold(path, WR_SEGMENT_READER_COLD);
	read_cold(path, WR_SEGMENT_READER_COLD | WR_SEGMENT_READER_TOLERANT);
	struct wr_segment_header h;
	struct wr_segment_report rep;
	uint64_t fs;
	wr_segment_peek_header(path, true, &h, &fs, &rep);
	wr_fuzz_read_dir(dir);
	return 0;
}
