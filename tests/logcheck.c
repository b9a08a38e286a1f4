/* SPDX-License-Identifier: MIT */
/* Test helper: verify a WAL directory and walk every event in id order. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include <walrec/reader.h>

#include "recorder/wal_dir.h"
#include "tests/logcheck.h"

int
wr_lc_verify(const char *dir, unsigned flags, wr_lc_event_fn fn, void *arg,
	     struct wr_lc_result *res)
{
	memset(res, 0, sizeof *res);
	struct wr_wal_dir d;
	memset(&d, 0, sizeof d);
	int rc = wr_wal_dir_scan(&d, dir, WR_WAL_DIR_VERIFY, NULL, NULL);
	if (rc != 0) {
		snprintf(res->error, sizeof res->error, "scan %s: %s", dir, walrec_strerror(rc));
		wr_wal_dir_free(&d);
		return -1;
	}
	for (size_t i = 0; i < d.nsegments; i++) {
		const struct wr_wal_file *f = &d.segments[i];
		if (f->cold)
			res->cold++;
		else
			res->hot++;
		if (f->report.error != 0 && rc == 0) {
			snprintf(res->error, sizeof res->error, "%s: %s", f->name, f->report.message);
			rc = -1;
		}
	}
	res->other = d.nforeign + (d.has_meta ? 1 : 0);
	/* A log without events has no wal.meta: there is nothing it could name. */
	bool has_events = false;
	for (size_t i = 0; i < d.nsegments; i++)
		has_events |= d.segments[i].event_count > 0;
	for (size_t i = 0; i < d.nproblems && rc == 0; i++) {
		if (d.problems[i].error) {
			snprintf(res->error, sizeof res->error, "%s", d.problems[i].message);
			rc = -1;
		}
	}
	if (rc == 0 && (flags & WR_LC_META) && (d.has_meta || has_events)) {
		char msg[512];
		int m = wr_wal_dir_check_meta(&d, NULL, msg, sizeof msg);
		if (m != 0) {
			snprintf(res->error, sizeof res->error, "wal.meta: %s",
				 m < 0 ? walrec_strerror(m) : msg);
			rc = -1;
		}
	}
	wr_wal_dir_free(&d);
	if (rc != 0)
		return -1;

	walrec_reader_t *r = NULL;
	rc = walrec_reader_open(&r, dir, NULL);
	if (rc != 0) {
		snprintf(res->error, sizeof res->error, "reader open %s: %s", dir,
			 walrec_strerror(rc));
		return -1;
	}
	XXH64_state_t *h = XXH64_createState();
	XXH64_reset(h, 0);
	walrec_event_t ev;
	while ((rc = walrec_reader_next(r, &ev)) == 1) {
		if (res->events == 0)
			res->first_id = ev.event_id;
		else if (ev.event_id != res->last_id + 1)
			res->id_gaps++;
		res->last_id = ev.event_id;
		res->events++;
		XXH64_update(h, &ev, sizeof ev);
		char why[512];
		if (fn && fn(arg, &ev, why, sizeof why) != 0) {
			snprintf(res->error, sizeof res->error, "event %" PRIu64 ": %s", ev.event_id,
				 why);
			rc = -2;
			break;
		}
	}
	if (rc < 0 && rc != -2) {
		char why[512];
		walrec_reader_last_error(r, why, sizeof why);
		snprintf(res->error, sizeof res->error, "reading %s after event %" PRIu64 ": %s",
			 dir, res->last_id, why);
	}
	res->digest = XXH64_digest(h);
	XXH64_freeState(h);
	walrec_reader_close(r);
	return rc < 0 ? -1 : 0;
}

int
wr_lc_copy_dir(const char *src, const char *dst)
{
	if (mkdir(dst, 0750) != 0 && errno != EEXIST)
		return -errno;
	DIR *d = opendir(src);
	if (!d)
		return -errno;
	int rc = 0;
	struct dirent *de;
	char buf[1 << 16];
	while (rc == 0 && (de = readdir(d)) != NULL) {
		char a[4096 + 256], b[4096 + 256];
		snprintf(a, sizeof a, "%s/%s", src, de->d_name);
		snprintf(b, sizeof b, "%s/%s", dst, de->d_name);
		struct stat st;
		if (lstat(a, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		int in = open(a, O_RDONLY | O_CLOEXEC);
		int out = open(b, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
		if (in < 0 || out < 0)
			rc = -errno;
		ssize_t n;
		while (rc == 0 && (n = read(in, buf, sizeof buf)) > 0)
			if (write(out, buf, (size_t)n) != n)
				rc = -EIO;
		if (in >= 0)
			close(in);
		if (out >= 0)
			close(out);
	}
	closedir(d);
	return rc;
}
