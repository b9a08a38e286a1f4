/* SPDX-License-Identifier: MIT */
/* Test helper: verify a WAL directory and walk every event in id order. */
#ifndef WR_TEST_LOGCHECK_H
#define WR_TEST_LOGCHECK_H

#include <stddef.h>
#include <stdint.h>

#include <walrec/common.h>

/* What wr_lc_verify found. */
struct wr_lc_result {
	uint64_t events;   /* events read */
	uint64_t first_id; /* 0 when there are none */
	uint64_t last_id;
	uint64_t id_gaps;  /* places where the next id is not last + 1 */
	uint64_t digest;   /* XXH64 over every event's 64 bytes, in order */
	size_t hot, cold;  /* segment files */
	size_t other;      /* every other entry (wal.meta, quarantined files...) */
	char error[1024];  /* the first problem, when wr_lc_verify returned -1 */
};

/*
 * Called for each event in id order; returns 0, or -1 with the reason in
 * why (the walk stops and wr_lc_verify returns -1).
 */
typedef int (*wr_lc_event_fn)(void *arg, const walrec_event_t *ev, char *why, size_t n);

enum {
	/* wal.meta must be present and agree with the segments; a log without
	 * events has none (nothing to name), and one found there must agree too */
	WR_LC_META = 1u << 0,
};

/*
 * Verify dir as `walrec verify` does (every segment, hot and cold, fully;
 * the directory scanner finds no error: no duplicate index, no id
 * overlap), then read every event with the strict reader. fn may be NULL.
 * Returns 0, or -1 with res->error saying what is wrong.
 */
int wr_lc_verify(const char *dir, unsigned flags, wr_lc_event_fn fn, void *arg,
		 struct wr_lc_result *res);

/* Copy the regular files of src into dst (created). 0 or -errno. */
int wr_lc_copy_dir(const char *src, const char *dst);

#endif
