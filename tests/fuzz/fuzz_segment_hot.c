/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: a hot segment file (.wal). The input is the file, once as
 * it is and once padded with zeros to the next segment size (so short
 * inputs reach block verification). Every reader the code has goes over
 * it: the SegmentReader (strict and tolerant, next and seek), the public
 * reader and the directory scanner over a directory holding it, and
 * recovery's walk, cut and quarantine copy (open_existing), followed by
 * one append. Invariants checked: events come out in strictly increasing
 * id order, never more than the verified count, and recovery leaves a
 * segment the strict reader accepts whole.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recorder/format.h"
#include "recorder/segment_reader.h"
#include "recorder/segment_writer.h"
#include "recorder/stage.h"
#include "tests/fuzz/fuzz.h"

/* Read every event; returns how many, or -1 when the reader did not open. */
static long
read_segment(const char *path, unsigned flags)
{
	struct wr_segment_reader r;
	long n = -1;
	if (wr_segment_reader_open(&r, path, flags) == 0) {
		walrec_event_t ev;
		uint64_t last = 0;
		n = 0;
		while (wr_segment_reader_next(&r, &ev) == 1) {
			WR_FUZZ_ASSERT(ev.event_id > last);
			last = ev.event_id;
			n++;
		}
		WR_FUZZ_ASSERT((uint64_t)n <= r.event_count);
		if (r.event_count > 0) {
			/* seek to the first, the middle and past the end */
			uint64_t mid = r.first_event_id + (r.last_event_id - r.first_event_id) / 2;
			uint64_t probe[3] = { r.first_event_id, mid, r.last_event_id + 1 };
			for (int i = 0; i < 3; i++) {
				int s = wr_segment_reader_seek(&r, probe[i]);
				if (s == 1 && wr_segment_reader_next(&r, &ev) == 1)
					WR_FUZZ_ASSERT(ev.event_id >= probe[i]);
			}
		}
	}
	wr_segment_reader_close(&r);
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wr_fuzz_quiet();
	const char *dir = wr_fuzz_scratch();
	char path[512];
	snprintf(path, sizeof path, "%s/00000001.wal", dir);
	wr_fuzz_clear(dir);

	wr_fuzz_write(path, data, size);
	read_segment(path, WR_SEGMENT_READER_HOT);

	if (size > WR_SEGMENT_HEADER_SIZE + 64u * WR_BLOCK_SIZE)
		return 0;
	uint32_t nb = size <= WR_SEGMENT_HEADER_SIZE
			      ? WR_MIN_BLOCKS
			      : (uint32_t)((size - WR_SEGMENT_HEADER_SIZE + WR_BLOCK_SIZE - 1) /
					   WR_BLOCK_SIZE);
	if (nb < WR_MIN_BLOCKS)
		nb = WR_MIN_BLOCKS;
	size_t full = (size_t)wr_segment_size(nb);
	uint8_t *img = calloc(1, full);
	if (!img)
		return 0;
	memcpy(img, data, size);
	wr_fuzz_write(path, img, full);
	free(img);
	long strict = read_segment(path, WR_SEGMENT_READER_HOT);
	long tolerant = read_segment(path, WR_SEGMENT_READER_HOT | WR_SEGMENT_READER_TOLERANT);
	WR_FUZZ_ASSERT(tolerant >= strict);
	wr_fuzz_read_dir(dir);

	/* Recovery: walk, cut (maybe copying aside first), then append one and seal it. */
	static struct wr_stage stage;
	static bool stage_ready;
	if (!stage_ready && wr_stage_init(&stage, WR_STAGE_MIN_SLOTS, NULL, NULL, NULL, NULL) != 0)
		return 0;
	stage_ready = true;
	struct wr_segment_writer w;
	struct wr_segment_recovery rec;
	if (wr_segment_writer_open_existing(&w, path, NULL, &rec) == 0) {
		wr_segment_writer_start(&w, &stage);
		walrec_event_t ev;
		memset(&ev, 0, sizeof ev);
		ev.event_id = w.last_event_id + 1;
		int arc = wr_segment_writer_append(&w, &ev);
		WR_FUZZ_ASSERT(arc == 0 || arc == -ENOSPC);
		wr_segment_writer_seal(&w);
		WR_FUZZ_ASSERT(wr_stage_flush(&stage) >= 0);
		wr_segment_writer_close(&w, true);
		/* What recovery leaves verifies whole, and keeps what verified before. */
		struct wr_segment_reader r;
		WR_FUZZ_ASSERT(wr_segment_reader_open(&r, path, WR_SEGMENT_READER_HOT) == 0);
		WR_FUZZ_ASSERT(wr_segment_reader_status(&r) == 0);
		WR_FUZZ_ASSERT(strict < 0 || r.event_count >= (uint64_t)strict);
		wr_segment_reader_close(&r);
	}
	return 0;
}
