/* SPDX-License-Identifier: MIT */
/* Public reader: a WAL directory read in id order across hot and cold segments, or followed live. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <walrec/reader.h>

#include "lib/compiler.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "recorder/follow.h"
#include "recorder/preloader.h"
#include "recorder/segment_reader.h"
#include "recorder/wal_dir.h"

/* Blocks read after a seek before the preloader is asked to look ahead. */
#define WR_READER_SEEK_QUIET_BLOCKS 3u

/* Segments kept open after a seek left them, and their decompressed bytes. */
#define WR_READER_CACHE_SEGMENTS 32u
#define WR_READER_CACHE_BYTES (512ull << 20)

struct wr_reader_seg {
	char *path;
	uint32_t index;            /* from the header (follow: the name until read) */
	uint64_t first_event_id;   /* 0 while not known */
	uint64_t last_event_id;    /* UINT64_MAX while not known */
	bool live;                 /* follow: the recorder may still append to it */
	bool dead;                 /* tolerant: could not be opened, skipped */
	bool ahead;                /* job came from the preloader and was not entered yet */
	bool requested;            /* an open was asked of the preloader in generation req_gen */
	uint32_t req_gen;
	struct wr_pl_job *pending; /* that request, until it comes back */
	struct wr_pl_job *job;     /* its open reader (current, cached, preloaded) or failed open */
	uint64_t used;             /* last entered (for eviction) */
	uint32_t *skipped;         /* distinct blocks skipped, sorted (tolerant) */
	uint32_t nskipped, cap;
	uint32_t sr_seen;          /* job->sr.skipped_blocks already merged */
};

struct walrec_reader {
	/* the current block: next() copies from here without a call */
	const walrec_event_t *ev, *ev_end;
	uint64_t last_id;           /* last id returned (or below the seek target) */
	uint64_t floor;             /* ids below the last seek target are passed over silently */
	struct wr_segment_reader *sr; /* segs[cur].job->sr once entered */
	size_t cur;                 /* segment read next; nsegs at the end */
	int error;                  /* strict: sticky until the next seek */

	bool tolerant;
	bool follow;
	char dir[4096];
	struct wr_reader_seg *segs; /* in index order */
	size_t nsegs, cap;
	uint64_t tick;

	/*
	 * After a seek, preloading waits until the reader has read on past a
	 * couple of blocks: random access should not set off whole-segment
	 * verifications it will never use.
	 */
	uint32_t blocks_since_seek;
	/* preloader: segments before req_hi were asked for (or open) in generation gen */
	struct wr_preloader pl;
	struct wr_buf_pool pool;    /* cold decompression buffers, reused */
	bool pl_on;
	bool kick;                  /* jobs queued that the thread was not woken for */
	bool sr_fresh;              /* no block of the current segment read yet */
	bool request_due;           /* entered sequentially: ask for the next ones soon */
	uint32_t depth;
	uint32_t gen;
	size_t req_hi;

	/* follow */
	struct wr_follow fw;
	bool have_pos;
	struct wr_follow_pos pos;
	uint32_t last_index;        /* highest segment index looked at */
	bool any_index;

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
	opts->preload = WALREC_READER_DEFAULT_PRELOAD;
}

static unsigned
wr_reader_flags(const struct walrec_reader *r)
{
	return r->tolerant ? WR_SEGMENT_READER_TOLERANT : 0;
}

/* ---- the segment list ---------------------------------------------------- */

static struct wr_reader_seg *
wr_reader_push_seg(struct walrec_reader *r, const char *path, uint32_t index, uint64_t first,
		   uint64_t last)
{
	if (r->nsegs == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 16;
		struct wr_reader_seg *n = realloc(r->segs, ncap * sizeof *n);
		if (!n)
			return NULL;
		r->segs = n;
		r->cap = ncap;
	}
	struct wr_reader_seg *s = &r->segs[r->nsegs];
	memset(s, 0, sizeof *s);
	s->path = strdup(path);
	if (!s->path)
		return NULL;
	s->index = index;
	s->first_event_id = first;
	s->last_event_id = last;
	r->nsegs++;
	r->stats.segments = r->nsegs;
	return s;
}

/*
 * How a new segment fits after the previous one: gaps are counted, an
 * overlap is counted and, in strict mode, an error (returned).
 */
static int
wr_reader_fit(struct walrec_reader *r, size_t k)
{
	if (k == 0)
		return 0;
	const struct wr_reader_seg *p = &r->segs[k - 1], *s = &r->segs[k];
	if (p->last_event_id == UINT64_MAX || s->first_event_id == 0)
		return 0; /* not known yet: next() checks every id anyway */
	if (s->first_event_id <= p->last_event_id) {
		r->stats.id_overlaps++;
		wr_reader_note(r, !r->tolerant, -WALREC_ECORRUPT,
			       "%s: ids %llu..%llu overlap the previous segment (last id %llu)",
			       s->path, (unsigned long long)s->first_event_id,
			       (unsigned long long)s->last_event_id,
			       (unsigned long long)p->last_event_id);
		if (!r->tolerant)
			return -WALREC_ECORRUPT;
	} else if (s->first_event_id != p->last_event_id + 1) {
		r->stats.id_gaps++;
	}
	return 0;
}

/* Open a segment here and now (a lazy walk for hot files). */
static struct wr_pl_job *
wr_reader_open_now(struct walrec_reader *r, const char *path, unsigned extra)
{
	struct wr_pl_job *job =
		wr_pl_job_new(WR_PL_OPEN, path, wr_reader_flags(r) | extra, &r->pool);
	if (job)
		wr_pl_job_open(job);
	return job;
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
	struct wr_segment_header ch;
	if (!f->header_ok && f->report.error == -ENOENT && !f->cold && strlen(path) + 5 <= sizeof path) {
		/*
		 * Listed, then compressed by a live recorder before its header was
		 * read: read the .wal.lz4 (complete before the .wal is removed).
		 */
		strcat(path, ".lz4");
		struct wr_segment_report rep;
		if (wr_segment_peek_header(path, true, &ch, NULL, &rep) == 0) {
			bool closed = ch.closed_ts_ns != 0;
			first = closed ? ch.first_event_id : 0;
			last = closed ? ch.last_event_id : 0;
			if (!closed) {
				struct wr_pl_job *job = wr_reader_open_now(r, path, 0);
				if (!job)
					return -ENOMEM;
				first = job->rc == 0 ? job->sr.first_event_id : 0;
				last = job->sr.last_event_id;
				wr_pl_job_free(job);
			}
			if (first == 0)
				return 1;
			return wr_reader_push_seg(r, path, ch.segment_index, first, last) ? 0 : -ENOMEM;
		}
		path[strlen(path) - 4] = '\0';
	}
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
		struct wr_pl_job *job = wr_reader_open_now(r, path, 0);
		if (!job)
			return -ENOMEM;
		rc = job->rc;
		first = job->sr.first_event_id;
		last = job->sr.last_event_id;
		if (rc < 0) {
			wr_reader_note_report(r, !r->tolerant, path, &job->sr.report, rc);
			wr_pl_job_free(job);
			if (!r->tolerant)
				return rc;
			r->stats.skipped_segments++;
			return 1;
		}
		wr_pl_job_free(job);
	}
	if (first == 0)
		return 1; /* no events */
	return wr_reader_push_seg(r, path, f->header.segment_index, first, last) ? 0 : -ENOMEM;
}

/* ---- skipped blocks and problems ------------------------------------------ */

/* Merge the current reader's skipped blocks into its segment's set (each block once). */
static int
wr_reader_absorb(struct walrec_reader *r, struct wr_reader_seg *s)
{
	if (!s->job || s->job->rc < 0)
		return 0;
	const struct wr_segment_reader *sr = &s->job->sr;
	/* Tolerant: the first problem met is the one last_error names. */
	if (r->tolerant && sr->report.error != 0)
		wr_reader_note_report(r, false, s->path, &sr->report, sr->report.error);
	if (sr->skipped_blocks == s->sr_seen)
		return 0;
	for (uint32_t k = 0; k < sr->skipped_blocks; k++) {
		uint32_t b = sr->skipped[k];
		uint32_t lo = 0, hi = s->nskipped;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (s->skipped[mid] < b)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < s->nskipped && s->skipped[lo] == b)
			continue;
		if (s->nskipped == s->cap) {
			uint32_t ncap = s->cap ? s->cap * 2 : 8;
			uint32_t *n = realloc(s->skipped, ncap * sizeof *n);
			if (!n)
				return -ENOMEM;
			s->skipped = n;
			s->cap = ncap;
		}
		memmove(&s->skipped[lo + 1], &s->skipped[lo], (s->nskipped - lo) * sizeof *s->skipped);
		s->skipped[lo] = b;
		s->nskipped++;
		r->stats.skipped_blocks++;
	}
	s->sr_seen = sr->skipped_blocks;
	return 0;
}

/* After the segment reader moved: count new skips, keep the first problem. */
static inline void
wr_reader_after_walk(struct walrec_reader *r)
{
	struct wr_reader_seg *s = &r->segs[r->cur];
	if (WR_UNLIKELY(r->sr->skipped_blocks != s->sr_seen) ||
	    WR_UNLIKELY(r->tolerant && r->problem == 0 && r->sr->report.error != 0))
		wr_reader_absorb(r, s);
}

/* ---- jobs: the preloader, the cache -------------------------------------- */

/* Wake the thread once for everything queued since the last time. */
static inline void
wr_reader_kick(struct walrec_reader *r)
{
	if (r->kick) {
		r->kick = false;
		wr_preloader_flush(&r->pl);
	}
}

static void
wr_reader_release_job(struct walrec_reader *r, struct wr_pl_job *job)
{
	if (!job)
		return;
	if (r->pl_on && job->rc == 0) {
		/* munmap of a large mapping is slow: the thread does it (woken with the next request). */
		job->kind = WR_PL_CLOSE;
		if (wr_preloader_queue(&r->pl, job)) {
			r->kick = true;
			return;
		}
	}
	wr_pl_job_free(job);
}

/* Attach the preloader's finished jobs to their segments; drop stale ones. */
static void
wr_reader_collect(struct walrec_reader *r)
{
	if (!r->pl_on)
		return;
	struct wr_pl_job *job;
	while ((job = wr_preloader_take(&r->pl)) != NULL) {
		struct wr_reader_seg *s = job->pos < r->nsegs ? &r->segs[job->pos] : NULL;
		if (s && s->pending == job) {
			s->pending = NULL;
			s->requested = false;
		}
		if (job->gen != r->gen || job->rc == -ECANCELED || !s || s->job || s->dead) {
			/* Of no use (a seek moved on): closed with the next wake-up. */
			wr_reader_release_job(r, job);
			continue;
		}
		s->job = job;
		s->ahead = true;
		s->sr_seen = 0;
	}
}

/*
 * Ask the preloader for segments from req_hi on, up to last (inclusive),
 * that are not open yet; a live segment (still growing) and what follows
 * it are read by the reader itself.
 */
static void
wr_reader_request_upto(struct walrec_reader *r, size_t last)
{
	while (r->req_hi < r->nsegs && r->req_hi <= last) {
		struct wr_reader_seg *s = &r->segs[r->req_hi];
		if (s->live)
			break;
		if (!s->job && !s->dead && !(s->requested && s->req_gen == r->gen)) {
			struct wr_pl_job *job =
				wr_pl_job_new(WR_PL_OPEN, s->path, wr_reader_flags(r), &r->pool);
			if (!job)
				break;
			job->gen = r->gen;
			job->pos = r->req_hi;
			if (!wr_preloader_queue(&r->pl, job)) {
				wr_pl_job_free(job);
				break;
			}
			r->kick = true;
			s->requested = true;
			s->req_gen = r->gen;
			s->pending = job;
		}
		r->req_hi++;
	}
}

/*
 * A hot segment entered by a seek is mapped without page tables: have the
 * thread build them, so the following seeks into it take no page fault.
 * Its CLOSE, queued later through the same ring, runs after this.
 */
static void
wr_reader_warm(struct walrec_reader *r, const struct wr_segment_reader *sr)
{
	struct wr_pl_job *job = wr_pl_job_new(WR_PL_WARM, NULL, 0, NULL);
	if (!job)
		return;
	job->warm_addr = sr->map;
	job->warm_len = (size_t)sr->map_len;
	if (!wr_preloader_queue(&r->pl, job)) {
		wr_pl_job_free(job);
		return;
	}
	r->kick = true;
}

/* Keep the preloader depth segments ahead of cur. */
static void
wr_reader_request(struct walrec_reader *r)
{
	r->request_due = false;
	if (!r->pl_on)
		return;
	if (r->req_hi <= r->cur)
		r->req_hi = r->cur + 1;
	wr_reader_request_upto(r, r->cur + r->depth);
	wr_reader_kick(r);
}

/* A new generation: what the preloader still has in flight is of no use. */
static void
wr_reader_new_gen(struct walrec_reader *r, size_t from)
{
	r->gen++;
	if (r->pl_on)
		wr_preloader_set_gen(&r->pl, r->gen);
	for (size_t i = 0; i < r->nsegs; i++)
		r->segs[i].ahead = false; /* what was preloaded stays, as cache */
	r->req_hi = from;
}

/* Close cached segments (not the current one, not preloaded ones) beyond the limits. */
static void
wr_reader_evict(struct walrec_reader *r)
{
	for (;;) {
		size_t n = 0, victim = SIZE_MAX;
		uint64_t bytes = 0, oldest = UINT64_MAX;
		for (size_t i = 0; i < r->nsegs; i++) {
			struct wr_reader_seg *s = &r->segs[i];
			if (!s->job || s->job->rc < 0 || (i == r->cur && r->sr) || s->ahead)
				continue;
			n++;
			if (s->job->sr.cold)
				bytes += s->job->sr.map_len; /* decoded bytes: the rest was never touched */
			if (s->used < oldest)
				oldest = s->used, victim = i;
		}
		if (victim == SIZE_MAX ||
		    (n <= WR_READER_CACHE_SEGMENTS && bytes <= WR_READER_CACHE_BYTES))
			return;
		struct wr_reader_seg *s = &r->segs[victim];
		wr_reader_absorb(r, s);
		wr_reader_release_job(r, s->job);
		s->job = NULL;
		wr_reader_kick(r);
	}
}

/*
 * The reader would wait for the preloader: take over the next request the
 * thread has not started and verify that segment here meanwhile. Returns
 * true when it did (something else to do than wait).
 */
static bool
wr_reader_help(struct walrec_reader *r)
{
	for (size_t p = r->cur + 1; p < r->req_hi && p < r->nsegs; p++) {
		struct wr_reader_seg *s = &r->segs[p];
		if (s->job || !s->requested || s->req_gen != r->gen || !s->pending)
			continue;
		if (!wr_pl_job_steal(s->pending))
			continue;
		s->requested = false;
		s->job = wr_reader_open_now(r, s->path, 0);
		s->ahead = s->job != NULL;
		s->sr_seen = 0;
		return true;
	}
	return false;
}

/* ---- follow: limits and new segments ------------------------------------- */

/*
 * The blocks of a live segment the reader may look at: those the recorder
 * published as sealed; without a published position (no recorder), the
 * whole file as it is, a never-written block stopping the walk for now.
 */
static void
wr_reader_apply_limit(struct walrec_reader *r, struct wr_reader_seg *s)
{
	struct wr_segment_reader *sr = &s->job->sr;
	uint32_t lim;
	if (!s->live)
		lim = UINT32_MAX;
	else if (!r->have_pos)
		lim = sr->whole;
	else if (s->index < r->pos.segment_index)
		lim = UINT32_MAX, s->live = false; /* the recorder moved on: finished */
	else if (s->index == r->pos.segment_index)
		lim = r->pos.blocks;
	else
		lim = 0;
	/* Never lower a limit: blocks read stay read (a new channel starts at 0). */
	if (lim == UINT32_MAX || sr->limit == UINT32_MAX || lim > sr->limit)
		wr_segment_reader_set_limit(sr, lim);
}

/*
 * The recorder's sealed position. Once there was one, it stays the bound
 * while the channel is gone or not published yet (a recorder restarting,
 * a channel being created anew): reading on without a bound could meet a
 * block still being written.
 */
static void
wr_reader_refresh_pos(struct walrec_reader *r)
{
	struct wr_follow_pos p;
	int rc = wr_follow_position(&r->fw, &p);
	if (rc == 1) {
		r->have_pos = true;
		r->pos = p;
	}
	r->stats.attaches = r->fw.attaches;
}

struct wr_reader_cand {
	uint32_t index;
	bool cold;
	char name[256];
};

static int
wr_reader_cand_cmp(const void *a, const void *b)
{
	const struct wr_reader_cand *x = a, *y = b;
	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	return (int)x->cold - (int)y->cold; /* hot first */
}

/* First event id of a live segment from its block 0 header, 0 when none is written. */
static uint64_t
wr_reader_probe_first(struct walrec_reader *r, const char *path)
{
	struct wr_pl_job *job = wr_reader_open_now(r, path, WR_SEGMENT_READER_LAZY);
	uint64_t first = 0;
	if (job && job->rc == 0 && !job->sr.cold && job->sr.whole > 0) {
		struct wr_block_header h;
		memcpy(&h, job->sr.map + wr_block_offset(0), sizeof h);
		if (h.checksum == wr_block_header_checksum(&h) && h.event_count > 0)
			first = h.first_event_id;
	}
	wr_pl_job_free(job);
	return first;
}

/*
 * Follow: add the segments that appeared after the last one looked at,
 * up to the one the recorder seals into (later ones are prepared and not
 * used yet). Returns how many were added, or a negative error (strict).
 */
static int
wr_reader_rescan(struct walrec_reader *r)
{
	DIR *d = opendir(r->dir);
	if (!d) {
		int err = -errno;
		wr_reader_note(r, !r->tolerant, err, "%s: %s", r->dir, strerror(-err));
		return r->tolerant ? 0 : err;
	}
	struct wr_reader_cand *c = NULL;
	size_t nc = 0, cc = 0;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) != NULL) {
		uint32_t index;
		bool cold;
		if (wr_segment_name_parse(de->d_name, &index, &cold) != 1 ||
		    strlen(de->d_name) >= sizeof c->name)
			continue;
		if (r->any_index && index <= r->last_index)
			continue;
		if (nc == cc) {
			size_t ncap = cc ? cc * 2 : 16;
			struct wr_reader_cand *n = realloc(c, ncap * sizeof *n);
			if (!n) {
				rc = -ENOMEM;
				break;
			}
			c = n;
			cc = ncap;
		}
		c[nc].index = index;
		c[nc].cold = cold;
		strcpy(c[nc].name, de->d_name);
		nc++;
	}
	closedir(d);
	if (rc < 0) {
		free(c);
		return rc;
	}
	if (nc > 1)
		qsort(c, nc, sizeof *c, wr_reader_cand_cmp);
	int added = 0;
	for (size_t i = 0; i < nc && rc == 0; i++) {
		if (i > 0 && c[i].index == c[i - 1].index)
			continue; /* the cold copy of a segment being compressed: the hot one is read */
		if (r->have_pos && c[i].index > r->pos.segment_index)
			break; /* prepared, not used yet */
		char path[4096 + 256];
		if (wr_fs_join(path, sizeof path, r->dir, c[i].name) < 0)
			continue;
		bool finished = r->have_pos && c[i].index < r->pos.segment_index;
		struct wr_segment_header h;
		struct wr_segment_report rep;
		int prc = wr_segment_peek_header(path, c[i].cold, &h, NULL, &rep);
		if (prc == -ENOENT && !c[i].cold && strlen(path) + 5 <= sizeof path) {
			/* Compressed since the listing: the .wal.lz4 is complete before the .wal goes. */
			strcat(path, ".lz4");
			c[i].cold = true;
			prc = wr_segment_peek_header(path, true, &h, NULL, &rep);
		}
		if (prc < 0) {
			if (!finished)
				break; /* may be in the making: look again later */
			wr_reader_note_report(r, !r->tolerant, path, &rep, prc);
			if (!r->tolerant) {
				rc = prc;
				break;
			}
			r->stats.skipped_segments++;
			r->last_index = c[i].index, r->any_index = true;
			continue;
		}
		/*
		 * Only the recorder's current segment can still grow, closed
		 * header or not: a restarted recorder reopens its last segment
		 * and appends to it.
		 */
		uint64_t first = h.first_event_id, last = h.last_event_id;
		bool live = !finished;
		if (h.closed_ts_ns == 0 && finished) {
			/* Left active by a crash, finished since: the blocks tell. */
			struct wr_pl_job *job = wr_reader_open_now(r, path, 0);
			if (!job) {
				rc = -ENOMEM;
				break;
			}
			first = job->sr.first_event_id;
			last = job->sr.last_event_id;
			if (job->rc < 0) {
				wr_reader_note_report(r, !r->tolerant, path, &job->sr.report, job->rc);
				if (!r->tolerant) {
					rc = job->rc;
					wr_pl_job_free(job);
					break;
				}
				r->stats.skipped_segments++;
				first = 0;
			}
			wr_pl_job_free(job);
		} else if (live) {
			if (h.closed_ts_ns == 0)
				first = wr_reader_probe_first(r, path);
			last = UINT64_MAX;
			/* Without a recorder, an empty file is one prepared for later. */
			if (!r->have_pos && first == 0)
				break;
		}
		r->last_index = c[i].index, r->any_index = true;
		if (first == 0 && !live)
			continue; /* no events */
		/* A newer segment with events: the recorder moved on from the previous one. */
		if (r->nsegs > 0 && r->segs[r->nsegs - 1].live && (first != 0 || !live)) {
			r->segs[r->nsegs - 1].live = false;
		}
		struct wr_reader_seg *s = wr_reader_push_seg(r, path, h.segment_index, first, last);
		if (!s) {
			rc = -ENOMEM;
			break;
		}
		s->live = live;
		if (!live)
			rc = wr_reader_fit(r, r->nsegs - 1);
		added++;
	}
	free(c);
	return rc < 0 ? rc : added;
}

/*
 * Follow: the reader has nothing more to return. Look at the published
 * position and the directory. Returns 1 when something changed that may
 * let it go on, 0 when not, or a negative error.
 */
static int
wr_reader_follow_more(struct walrec_reader *r)
{
	wr_reader_refresh_pos(r);
	if (r->sr && r->cur < r->nsegs) {
		struct wr_reader_seg *s = &r->segs[r->cur];
		if (!s->live)
			return 0;
		uint32_t before = r->sr->limit;
		wr_reader_apply_limit(r, s);
		return r->sr->limit != before;
	}
	if (r->cur < r->nsegs)
		return 1;
	int rc = wr_reader_rescan(r);
	return rc < 0 ? rc : rc > 0;
}

/* ---- entering and leaving segments ------------------------------------------ */

static void
wr_reader_leave(struct walrec_reader *r, bool keep)
{
	r->ev = r->ev_end = NULL;
	if (!r->sr)
		return;
	struct wr_reader_seg *s = &r->segs[r->cur];
	wr_reader_absorb(r, s);
	if (s->last_event_id == UINT64_MAX && !s->live && wr_segment_reader_at_end(r->sr) &&
	    r->sr->run_start == 0) {
		s->first_event_id = r->sr->first_event_id;
		s->last_event_id = r->sr->last_event_id;
	}
	r->sr = NULL;
	if (keep) {
		wr_reader_evict(r);
	} else {
		wr_reader_release_job(r, s->job);
		s->job = NULL;
	}
}

/*
 * Make segs[cur] the current segment. Sequentially, its preloaded reader
 * is taken (waiting for the preloader if it is on the way); for a seek,
 * or when nothing is on the way, it is opened here, lazily. Returns 0, 1
 * when it was skipped (tolerant), or a negative error.
 */
static int
wr_reader_enter(struct walrec_reader *r, bool seeking)
{
	struct wr_reader_seg *s = &r->segs[r->cur];
	if (s->dead)
		return 1;
	wr_reader_collect(r);
	if (!s->job && s->requested && s->req_gen == r->gen && s->pending) {
		if (wr_pl_job_steal(s->pending)) {
			/* Not started yet: read it here, verifying as it goes. */
			s->requested = false;
		} else if (!seeking) {
			/* Being verified by the thread: rather than only wait, verify one after it. */
			r->stats.preload_waits++;
			/* Ask for the ones after it too: one of them is verified here meanwhile. */
			if (r->req_hi <= r->cur)
				r->req_hi = r->cur + 1;
			wr_reader_request_upto(r, r->cur + r->depth);
			wr_reader_kick(r);
			while (!s->job) {
				if (!wr_reader_help(r))
					wr_preloader_wait(&r->pl);
				wr_reader_collect(r);
			}
		}
	}
	if (!s->job) {
		s->job = wr_reader_open_now(r, s->path, WR_SEGMENT_READER_LAZY);
		if (!s->job)
			return -ENOMEM;
		s->sr_seen = 0;
	} else if (s->ahead) {
		r->stats.preloaded++;
	}
	s->ahead = false;
	struct wr_pl_job *job = s->job;
	if (job->rc < 0) {
		int rc = job->rc;
		wr_reader_note_report(r, !r->tolerant, s->path, &job->sr.report, rc);
		wr_pl_job_free(job);
		s->job = NULL;
		if (!r->tolerant)
			return rc;
		s->dead = true;
		r->stats.skipped_segments++;
		return 1;
	}
	if (job->sr.path[0] && strcmp(job->sr.path, s->path) != 0) {
		/* A live recorder compressed it since open: it was read from its .wal.lz4. */
		char *p = strdup(job->sr.path);
		if (p) {
			free(s->path);
			s->path = p;
		}
	}
	r->sr = &job->sr;
	r->sr_fresh = true;
	s->used = ++r->tick;
	if (r->follow)
		wr_reader_apply_limit(r, s);
	wr_reader_absorb(r, s);
	/*
	 * The next requests go out after the first block of this segment: a
	 * job allocation and a wake-up inside the crossing would make it
	 * slower (the woken thread may even take this core).
	 */
	r->request_due = !seeking && r->pl_on;
	if (seeking && r->pl_on && r->sr->lazy && r->sr->map)
		wr_reader_warm(r, r->sr);
	return 0;
}

/* ---- open / close ------------------------------------------------------------ */

static int
wr_reader_scan(struct walrec_reader *r, const char *dir)
{
	struct wr_wal_dir d;
	memset(&d, 0, sizeof d);
	int rc = wr_wal_dir_scan(&d, dir, 0, NULL, NULL);
	if (rc < 0) {
		wr_reader_note(r, true, rc, "%s: %s", dir, strerror(-rc));
		goto out;
	}
	for (size_t i = 0; i < d.nproblems; i++) {
		const struct wr_wal_dir_problem *p = &d.problems[i];
		if (p->kind == WR_WAL_DIR_DUPLICATE && p->error && !r->tolerant) {
			rc = -WALREC_ECORRUPT;
			wr_reader_note(r, true, rc, "%s: %s", dir, p->message);
			goto out;
		}
	}
	for (size_t i = 0; i < d.nsegments; i++) {
		if (d.segments[i].duplicate)
			continue; /* the other file of this index is read */
		rc = wr_reader_add(r, &d, i);
		if (rc < 0)
			goto out;
	}
	rc = 0;
	/* How the segments fit: ids from the headers, or the blocks when active. */
	for (size_t k = 1; k < r->nsegs && rc == 0; k++)
		rc = wr_reader_fit(r, k);
out:
	wr_wal_dir_free(&d);
	return rc;
}

int
walrec_reader_open(walrec_reader_t **out, const char *dir, const walrec_reader_options_t *opts)
{
	*out = NULL;
	walrec_reader_options_t def;
	if (!opts) {
		walrec_reader_options_init(&def);
		opts = &def;
	}
	if (opts->preload > WALREC_READER_MAX_PRELOAD) {
		wr_log_error("reader: preload %u is above %u", opts->preload,
			     WALREC_READER_MAX_PRELOAD);
		return -EINVAL;
	}
	if (strlen(dir) >= sizeof ((struct walrec_reader *)0)->dir)
		return -ENAMETOOLONG;
	struct walrec_reader *r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	r->tolerant = opts->tolerant;
	r->follow = opts->follow;
	r->depth = opts->preload;
	r->blocks_since_seek = WR_READER_SEEK_QUIET_BLOCKS; /* from the start: read on */
	strcpy(r->dir, dir);
	wr_buf_pool_init(&r->pool);

	int rc;
	struct stat st;
	if (stat(dir, &st) == 0 && S_ISREG(st.st_mode)) {
		/* One segment file: read it alone (no directory, nothing to follow). */
		rc = -EINVAL;
		if (r->follow) {
			wr_reader_note(r, true, rc, "%s: follow mode reads a directory", dir);
			goto fail;
		}
		size_t len = strlen(dir);
		struct wr_segment_header h;
		struct wr_segment_report rep;
		bool cold = len > 4 && strcmp(dir + len - 4, ".lz4") == 0;
		rc = wr_segment_peek_header(dir, cold, &h, NULL, &rep);
		if (rc < 0) {
			wr_reader_note_report(r, !r->tolerant, dir, &rep, rc);
			if (!r->tolerant)
				goto fail;
			r->stats.skipped_segments++;
		} else {
			bool closed = h.closed_ts_ns != 0;
			if (!wr_reader_push_seg(r, dir, h.segment_index,
						closed ? h.first_event_id : 0,
						closed ? h.last_event_id : UINT64_MAX)) {
				rc = -ENOMEM;
				goto fail;
			}
		}
		rc = 0;
	} else if (r->follow) {
		rc = wr_follow_init(&r->fw, dir, opts->channel);
		if (rc < 0) {
			wr_reader_note(r, true, rc, "channel '%s': not a valid name", opts->channel);
			goto fail;
		}
		if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
			rc = stat(dir, &st) != 0 ? -errno : -ENOTDIR;
			wr_reader_note(r, true, rc, "%s: %s", dir, strerror(-rc));
			goto fail;
		}
		wr_reader_refresh_pos(r);
		rc = wr_reader_rescan(r);
	} else {
		rc = wr_reader_scan(r, dir);
	}
	if (rc < 0)
		goto fail;
	/*
	 * Nothing is asked of the thread yet: the first next() reads the first
	 * segment itself and asks for the following ones after its first
	 * block; a first seek asks for nothing.
	 */
	if (r->depth > 0 && wr_preloader_start(&r->pl) == 0)
		r->pl_on = true;
	*out = r;
	return 0;

fail:
	/* The handle is gone: the reason goes to the log. */
	wr_log_error("reader: %s", r->msg[0] ? r->msg : strerror(-rc));
	walrec_reader_close(r);
	return rc;
}

void
walrec_reader_close(walrec_reader_t *r)
{
	if (!r)
		return;
	r->sr = NULL;
	/* Stop the thread first: it may still be opening a job's segment. */
	if (r->pl_on)
		wr_preloader_stop(&r->pl);
	r->pl_on = false;
	for (size_t i = 0; i < r->nsegs; i++) {
		wr_pl_job_free(r->segs[i].job);
		free(r->segs[i].path);
		free(r->segs[i].skipped);
	}
	free(r->segs);
	if (r->follow)
		wr_follow_fini(&r->fw);
	wr_buf_pool_fini(&r->pool);
	free(r);
}

/* ---- seek and next ------------------------------------------------------------ */

int
walrec_reader_seek(walrec_reader_t *r, uint64_t event_id)
{
	r->error = 0;
	if (!r->tolerant)
		r->problem = 0, r->msg[0] = '\0';
	r->last_id = event_id ? event_id - 1 : 0;
	r->floor = event_id;
	r->ev = r->ev_end = NULL;
	r->blocks_since_seek = 0;
	r->request_due = false;
	/* First segment whose last id is >= event_id (ids increase across segments). */
	size_t lo = 0, hi = r->nsegs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->segs[mid].last_event_id < event_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (r->cur != lo || !r->sr) {
		wr_reader_leave(r, true);
		if (r->cur != lo)
			wr_reader_new_gen(r, lo + 1);
	}
	r->cur = lo;
	for (; r->cur < r->nsegs; r->cur++) {
		if (!r->sr) {
			int rc = wr_reader_enter(r, true);
			if (rc == 1)
				continue;
			if (rc < 0)
				return r->error = rc;
		}
		/*
		 * 0 (nothing >= event_id among the blocks verified or reachable)
		 * leaves the segment at its end: next() reports its fault or moves on.
		 */
		int rc = wr_segment_reader_seek(r->sr, event_id);
		wr_reader_after_walk(r);
		if (rc < 0) {
			wr_reader_note(r, !r->tolerant, rc, "%s: seek: %s", r->segs[r->cur].path,
				       walrec_strerror(rc));
			if (!r->tolerant)
				return r->error = rc;
			wr_reader_leave(r, false);
			continue;
		}
		break;
	}
	if (r->pl_on)
		wr_reader_kick(r);
	return 0;
}

/* A block's events were used up: the next block, segment, or (follow) sealed data. */
static int
wr_reader_next_slow(struct walrec_reader *r, walrec_event_t *out)
{
	if (r->error)
		return r->error;
	for (;;) {
		while (r->ev < r->ev_end) {
			const walrec_event_t *e = r->ev++;
			if (e->event_id > r->last_id) {
				memcpy(out, e, sizeof *out);
				r->last_id = e->event_id;
				return 1;
			}
			if (e->event_id < r->floor)
				continue; /* before the seek target (a follower waiting past the end) */
			if (r->tolerant) {
				r->stats.dropped_events++;
				continue;
			}
			r->ev = r->ev_end = NULL;
			wr_reader_note(r, true, -WALREC_ECORRUPT, "%s: event id %llu is not above %llu",
				       r->segs[r->cur].path, (unsigned long long)e->event_id,
				       (unsigned long long)r->last_id);
			return r->error = -WALREC_ECORRUPT;
		}
		if (!r->sr) {
			if (r->cur >= r->nsegs) {
				wr_reader_kick(r); /* the last segment's close */
				if (!r->follow)
					return 0;
				int rc = wr_reader_follow_more(r);
				if (rc <= 0) {
					if (rc < 0)
						r->error = rc;
					return rc;
				}
				continue;
			}
			int rc = wr_reader_enter(r, false);
			if (rc == 1) {
				r->cur++;
				continue;
			}
			if (rc < 0)
				return r->error = rc;
			struct wr_segment_reader *sr = r->sr;
			if (sr->cur_block != 0 || sr->cur_slot != 0 || sr->run_start != 0) {
				/* Entered before (a seek): read it from its start now. */
				rc = wr_segment_reader_seek(sr, 0);
				wr_reader_after_walk(r);
				if (rc < 0) {
					wr_reader_note(r, !r->tolerant, rc, "%s: read: %s",
						       r->segs[r->cur].path, walrec_strerror(rc));
					if (!r->tolerant)
						return r->error = rc;
					wr_reader_leave(r, false);
					r->cur++;
					continue;
				}
			}
		}
		uint32_t n = 0;
		const walrec_event_t *ev = NULL;
		int rc = wr_segment_reader_read_block(r->sr, &ev, &n);
		wr_reader_after_walk(r);
		if (rc == 1) {
			r->ev = ev;
			r->ev_end = ev + n;
			if (r->blocks_since_seek < WR_READER_SEEK_QUIET_BLOCKS &&
			    ++r->blocks_since_seek == WR_READER_SEEK_QUIET_BLOCKS)
				wr_reader_request(r); /* reading on after a seek: look ahead now */
			else if (r->request_due && !r->sr_fresh)
				wr_reader_request(r);
			else if (r->kick && !r->sr_fresh)
				wr_reader_kick(r);
			r->sr_fresh = false;
			continue;
		}
		if (rc < 0) {
			const struct wr_segment_report *rep = &r->sr->report;
			if (rep->error == rc)
				wr_reader_note_report(r, !r->tolerant, r->segs[r->cur].path, rep, rc);
			else
				wr_reader_note(r, !r->tolerant, rc, "%s: read: %s",
					       r->segs[r->cur].path, walrec_strerror(rc));
			if (!r->tolerant)
				return r->error = rc;
		} else if (r->follow && !wr_segment_reader_at_end(r->sr)) {
			/* At the sealed end of the live segment. */
			rc = wr_reader_follow_more(r);
			if (rc <= 0) {
				if (rc < 0)
					r->error = rc;
				return rc;
			}
			continue;
		}
		wr_reader_leave(r, false);
		r->cur++;
	}
}

int
walrec_reader_next(walrec_reader_t *r, walrec_event_t *out)
{
	const walrec_event_t *e = r->ev;
	/* Inside a verified block ids increase: only the first of a block can fail this. */
	if (WR_LIKELY(e < r->ev_end) && WR_LIKELY(e->event_id > r->last_id)) {
		r->ev = e + 1;
		r->last_id = e->event_id;
		memcpy(out, e, sizeof *out);
		return 1;
	}
	return wr_reader_next_slow(r, out);
}

int
walrec_reader_wait(walrec_reader_t *r, uint64_t timeout_ns)
{
	if (!r->follow)
		return -EINVAL;
	if (r->ev < r->ev_end)
		return 1;
	int rc = wr_follow_wait(&r->fw, timeout_ns);
	r->stats.attaches = r->fw.attaches;
	return rc;
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
walrec_reader_stats(const walrec_reader_t *cr, walrec_reader_stats_t *st)
{
	/*
	 * Taking the preloader's finished jobs changes nothing a caller can
	 * see but this count; the reader's one thread is the caller.
	 */
	struct walrec_reader *r = (struct walrec_reader *)cr;
	wr_reader_collect(r);
	*st = r->stats;
	uint64_t ready = 0;
	for (size_t i = r->cur + 1; i < r->nsegs && i <= r->cur + WALREC_READER_MAX_PRELOAD; i++)
		ready += r->segs[i].job && r->segs[i].ahead;
	st->ready_ahead = ready;
}
