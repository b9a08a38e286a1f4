/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: wal.meta. The input is the file, beside a fixed segment of
 * three blocks (events 1..612). It is loaded by the MetaStore, checked by
 * the directory scanner against the segment, and trusted or not by
 * recovery (wr_manager_recover), which must always succeed here and never
 * continue below the segment's last event.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "recorder/format.h"
#include "recorder/manager.h"
#include "recorder/meta_store.h"
#include "recorder/wal_dir.h"
#include "tests/fuzz/fuzz.h"
#include "tests/segfile.h"

#define FIXTURE_LAST 612u

static uint8_t *fixture;
static size_t fixture_len;

static void
fixture_make(const char *scratch)
{
	char path[512];
	snprintf(path, sizeof path, "%s/fixture.wal", scratch);
	static const uint16_t counts[3] = { 256, 256, 100 };
	struct wr_segfile_spec spec = { .segment_index = 1, .blocks = 3, .counts = counts,
					.header = WR_SEGFILE_ACTIVE };
	if (wr_segfile_write(path, &spec, NULL) != 0)
		abort();
	FILE *f = fopen(path, "rb");
	if (!f)
		abort();
	fseek(f, 0, SEEK_END);
	fixture_len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	fixture = malloc(fixture_len);
	if (!fixture || fread(fixture, 1, fixture_len, f) != fixture_len)
		abort();
	fclose(f);
	remove(path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wr_fuzz_quiet();
	const char *scratch = wr_fuzz_scratch();
	if (!fixture)
		fixture_make(scratch);
	char dir[512], path[600];
	snprintf(dir, sizeof dir, "%s/w", scratch);
	mkdir(dir, 0700);
	wr_fuzz_clear(dir);
	snprintf(path, sizeof path, "%s/00000001.wal", dir);
	wr_fuzz_write(path, fixture, fixture_len);
	snprintf(path, sizeof path, "%s/wal.meta", dir);
	wr_fuzz_write(path, data, size);

	/* The store: only exactly 16 bytes load, and they load as written. */
	struct wr_meta_store ms;
	WR_FUZZ_ASSERT(wr_meta_store_init(&ms, dir, NULL) == 0);
	if (wr_meta_store_load(&ms) == 0) {
		WR_FUZZ_ASSERT(size == WR_META_SIZE);
		struct wr_meta_state st = wr_meta_store_get_state(&ms), want;
		wr_meta_decode(data, &want);
		WR_FUZZ_ASSERT(st.segment_index == want.segment_index && st.offset == want.offset &&
			       st.last_event_id == want.last_event_id);
	} else {
		WR_FUZZ_ASSERT(size != WR_META_SIZE);
	}

	/* The checker of walrec verify. */
	struct wr_wal_dir d;
	memset(&d, 0, sizeof d);
	if (wr_wal_dir_scan(&d, dir, 0, NULL, NULL) == 0) {
		struct wr_meta_state st;
		char msg[320];
		int c = wr_wal_dir_check_meta(&d, &st, msg, sizeof msg);
		WR_FUZZ_ASSERT(c == 0 || c == 1);
		/* Agreement is only possible for a triple that names a block end of the fixture. */
		if (c == 0)
			WR_FUZZ_ASSERT(st.segment_index == 1 && st.last_event_id <= FIXTURE_LAST);
	}
	wr_wal_dir_free(&d);

	/* Recovery with it. */
	static struct wr_manager_metrics mm;
	static struct wr_segment_writer_metrics wm;
	struct wr_meta_store meta;
	WR_FUZZ_ASSERT(wr_meta_store_init(&meta, dir, NULL) == 0);
	size_t msize = (sizeof(struct wr_manager) + 63) & ~(size_t)63;
	struct wr_manager *m = aligned_alloc(64, msize);
	if (!m)
		return 0;
	struct wr_manager_config mc = { .num_blocks = WR_MIN_BLOCKS, .prefix = NULL };
	WR_FUZZ_ASSERT(wr_manager_init(m, dir, &mc, &meta, &mm, &wm) == 0);
	int rc = wr_manager_recover(m, &wm);
	WR_FUZZ_ASSERT(rc == 0);
	WR_FUZZ_ASSERT(m->last_id >= FIXTURE_LAST);
	wr_manager_fini(m);
	free(m);
	return 0;
}
