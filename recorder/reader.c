/* SPDX-License-Identifier: MIT */
/* Public reader: a WAL directory read in id order across hot and cold segments. */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <walrec/reader.h>

#include "lib/log.h"
#include "recorder/segment_reader.h"
#include "recorder/wal_dir.h"

struct wr_reader_seg {
	char *path;
	uint64_t first_event_id;
	uint64_t last_event_id;
	bool counted;  /* its skipped blocks are in the stats already */
	bool dead;     /* tolerant: could not be opened, skipped */
};

struct walrec_reader {
	bool tolerant;
	struct wr_reader_seg *segs; /* with events, in index order */
	size_t nsegs;
	size_t cur;                 /* segment read next; nsegs at the end */
	bool open;                  /* sr holds segs[cur] */
	struct wr_segment_reader sr;
	uint64_t last_id;           /* last id returned (or below the seek target) */
	int error;                  /* strict: sticky until the next seek */
	int problem;                /* code of msg: the error, or the first skip */
	char msg[512];
	walrec_reader_stats_t stats;
};

static void wr_reader_note(struct walrec_reader *r, bool force, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Keep the first problem in tolerant mode; an error always replaces it. */
static void
wr_reader_note(struct walrec_reader *r, bool force, int code, const char *fmt, ...)
{
	if (r->problem != 0 && !force)
		return;
	r->problem = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
	va_end(ap);
}

static void
wr_reader_note_report(struct walrec_reader *r, bool force, const char *path,
		      const struct wr_segment_report *rep, int code)
{
	if (rep->block_index == WR_REPORT_SEGMENT)
		wr_reader_note(r, force, code, "%s: %s", path, rep->message);
	else
		wr_reader_note(r, force, code, "%s: block %lld: %s", path,
			       (long long)rep->block_index, rep->message);
}

void
walrec_reader_options_init(walrec_reader_options_t *opts)
{
	memset(opts, 0, sizeof *opts);
}

static unsigned
wr_reader_flags(const struct walrec_reader *r)
{
	return r->tolerant ? WR_SEGMENT_READER_TOLERANT : 0;
}

/* Add one scanned file. 0, 1 when skipped (tolerant), or a negative error (strict). */
static int
wr_reader_add(struct walrec_reader *r, const struct wr_wal_dir *d, size_t i)
{
	const struct wr_wal_file *f = &d->segments[i];
	char path[4096];
	int rc = wr_wal_dir_file_path(d, i, path, sizeof path);
	if (rc < 0)
		return rc;
	uint64_t first = f->first_event_id, last = f->last_event_id;
	if (!f->header_ok) {
		int code = f->report.error ? f->report.error : -WALREC_EFORMAT;
		wr_reader_note_report(r, !r->tolerant, path, &f->report, code);
		if (!r->tolerant)
			return code;
		r->stats.skipped_segments++;
		return 1;
	}
	if (!f->ids_known) {
		/* Left active (crash, or a live recorder): only the blocks know. */
		struct wr_segment_reader sr;
		rc = wr_segment_reader_open(&sr, path, wr_reader_flags(r));
		first = sr.first_event_id;
		last = sr.last_event_id;
		wr_segment_reader_close(&sr);
		if (rc < 0) {
			wr_reader_note_report(r, !r->tolerant, path, &sr.report, rc);
			if (!r->tolerant)
				return rc;
			r->stats.skipped_segments++;
			return 1;
		}
	}
	if (first == 0)
		return 1; /* no events */
	struct wr_reader_seg *s = &r->segs[r->nsegs];
	s->path = strdup(path);
	if (!s->path)
		return -ENOMEM;
	s->first_event_id = first;
	s->last_event_id = last;
	r->nsegs++;
	return 0;
}

int
walrec_reader_open(walrec_reader_t **out, const char *dir, const walrec_reader_options_t *opts)
{
	*out = NULL;
	struct walrec_reader *r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	r->tolerant = opts && opts->tolerant;
	r->sr.fd = -1;

	struct wr_wal_dir d;
	memset(&d, 0, sizeof d);
	int rc = wr_wal_dir_scan(&d, dir, 0, NULL, NULL);
	if (rc < 0) {
		wr_reader_note(r, true, rc, "%s: %s", dir, strerror(-rc));
		goto fail;
	}
	r->segs = calloc(d.nsegments ? d.nsegments : 1, sizeof *r->segs);
	if (!r->segs) {
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < d.nproblems; i++) {
		const struct wr_wal_dir_problem *p = &d.problems[i];
		if (p->kind == WR_WAL_DIR_DUPLICATE && p->error && !r->tolerant) {
			rc = -WALREC_ECORRUPT;
			wr_reader_note(r, true, rc, "%s: %s", dir, p->message);
			goto fail;
		}
	}
	for (size_t i = 0; i < d.nsegments; i++) {
		if (d.segments[i].duplicate)
			continue; /* the other file of this index is read */
		rc = wr_reader_add(r, &d, i);
		if (rc < 0)
			goto fail;
	}
	/* How the segments fit: ids from the headers, or the blocks when active. */
	for (size_t k = 1; k < r->nsegs; k++) {
		const struct wr_reader_seg *p = &r->segs[k - 1], *s = &r->segs[k];
		if (s->first_event_id <= p->last_event_id) {
			r->stats.id_overlaps++;
			rc = -WALREC_ECORRUPT;
			wr_reader_note(r, !r->tolerant, rc,
				       "%s: ids %llu..%llu overlap the previous segment "
				       "(last id %llu)",
				       s->path, (unsigned long long)s->first_event_id,
				       (unsigned long long)s->last_event_id,
				       (unsigned long long)p->last_event_id);
			if (!r->tolerant)
				goto fail;
		} else if (s->first_event_id != p->last_event_id + 1) {
			r->stats.id_gaps++;
		}
	}
	r->stats.segments = r->nsegs;
	wr_wal_dir_free(&d);
	*out = r;
	return 0;

fail:
	/* The handle is gone: the reason goes to the log. */
	wr_log_error("reader: %s", r->msg[0] ? r->msg : strerror(-rc));
	wr_wal_dir_free(&d);
	walrec_reader_close(r);
	return rc;
}

static void
wr_reader_leave(struct walrec_reader *r)
{
	if (r->open)
		wr_segment_reader_close(&r->sr);
	r->open = false;
}

/* Open segs[cur]. 0, 1 when it was skipped (tolerant), or a negative error. */
static int
wr_reader_enter(struct walrec_reader *r)
{
	if (r->open)
		return 0;
	struct wr_reader_seg *s = &r->segs[r->cur];
	if (s->dead)
		return 1;
	int rc = wr_segment_reader_open(&r->sr, s->path, wr_reader_flags(r));
	size_t len = strlen(s->path);
	if (rc == -ENOENT && len > 4 && strcmp(s->path + len - 4, ".wal") == 0) {
		/*
		 * A live recorder compressed it since open (the .lz4 is
		 * complete before the .wal is removed): read the cold file.
		 */
		char *cold = malloc(len + 5);
		if (!cold)
			return -ENOMEM;
		memcpy(cold, s->path, len);
		memcpy(cold + len, ".lz4", 5);
		rc = wr_segment_reader_open(&r->sr, cold, wr_reader_flags(r));
		if (rc != -ENOENT) {
			free(s->path);
			s->path = cold;
		} else {
			free(cold);
		}
	}
	if (rc < 0) {
		wr_reader_note_report(r, !r->tolerant, s->path, &r->sr.report, rc);
		if (!r->tolerant)
			return rc;
		s->dead = true;
		r->stats.skipped_segments++;
		return 1;
	}
	r->open = true;
	if (!s->counted) {
		s->counted = true;
		r->stats.skipped_blocks += r->sr.skipped_blocks;
		if (r->tolerant && r->sr.report.error != 0)
			wr_reader_note_report(r, false, s->path, &r->sr.report, r->sr.report.error);
	}
	return 0;
}

int
walrec_reader_seek(walrec_reader_t *r, uint64_t event_id)
{
	r->error = 0;
	if (!r->tolerant)
		r->problem = 0, r->msg[0] = '\0';
	r->last_id = event_id ? event_id - 1 : 0;
	/* First segment whose last id is >= event_id (ids increase across segments). */
	size_t lo = 0, hi = r->nsegs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->segs[mid].last_event_id < event_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!r->open || r->cur != lo)
		wr_reader_leave(r);
	r->cur = lo;
	for (; r->cur < r->nsegs; r->cur++) {
		int rc = wr_reader_enter(r);
		if (rc == 1)
			continue;
		if (rc < 0)
			return r->error = rc;
		/*
		 * 0 (nothing >= event_id among the verified blocks) leaves the
		 * segment at its end: next() reports its fault or moves on.
		 */
		rc = wr_segment_reader_seek(&r->sr, event_id);
		if (rc < 0) {
			wr_reader_note(r, !r->tolerant, rc, "%s: seek: %s", r->segs[r->cur].path,
				       walrec_strerror(rc));
			if (!r->tolerant)
				return r->error = rc;
			wr_reader_leave(r);
			continue;
		}
		break;
	}
	return 0;
}

int
walrec_reader_next(walrec_reader_t *r, walrec_event_t *out)
{
	if (r->error)
		return r->error;
	while (r->cur < r->nsegs) {
		int rc = wr_reader_enter(r);
		if (rc == 1) {
			r->cur++;
			continue;
		}
		if (rc < 0)
			return r->error = rc;
		rc = wr_segment_reader_next(&r->sr, out);
		if (rc == 1) {
			if (out->event_id <= r->last_id) {
				if (r->tolerant) {
					r->stats.dropped_events++;
					continue;
				}
				wr_reader_note(r, true, -WALREC_ECORRUPT,
					       "%s: event id %llu is not above %llu",
					       r->segs[r->cur].path,
					       (unsigned long long)out->event_id,
					       (unsigned long long)r->last_id);
				return r->error = -WALREC_ECORRUPT;
			}
			r->last_id = out->event_id;
			return 1;
		}
		if (rc < 0) {
			const struct wr_segment_report *rep = &r->sr.report;
			if (rep->error == rc)
				wr_reader_note_report(r, !r->tolerant, r->segs[r->cur].path, rep, rc);
			else
				wr_reader_note(r, !r->tolerant, rc, "%s: read: %s",
					       r->segs[r->cur].path, walrec_strerror(rc));
			if (!r->tolerant)
				return r->error = rc;
		}
		wr_reader_leave(r);
		r->cur++;
	}
	return 0;
}

int
walrec_reader_last_error(const walrec_reader_t *r, char *buf, size_t n)
{
	if (n > 0)
		snprintf(buf, n, "%s", r->msg);
	return r->problem;
}

uint64_t
walrec_reader_skipped(const walrec_reader_t *r)
{
	return r->stats.skipped_blocks;
}

void
walrec_reader_stats(const walrec_reader_t *r, walrec_reader_stats_t *st)
{
	*st = r->stats;
}

void
walrec_reader_close(walrec_reader_t *r)
{
	if (!r)
		return;
	wr_reader_leave(r);
	for (size_t i = 0; i < r->nsegs; i++)
		free(r->segs[i].path);
	free(r->segs);
	free(r);
}
