/* SPDX-License-Identifier: MIT */
/* SegmentReader: verified reading of one hot (mmap) or cold (LZ4 stream) segment. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <lz4frame.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/sys.h"
#include "recorder/segment_reader.h"

uint64_t wr_cold_cache_max = WR_COLD_CACHE_MAX;

/* Compressed bytes read per pread; LZ4F buffers internally up to its block size. */
#define WR_LZ4_IN_CHUNK (256u * 1024u)

struct wr_lz4_stream {
	LZ4F_dctx *dctx;
	uint8_t *in;          /* pread buffer */
	const uint8_t *src;   /* or the whole file, mapped (src_len bytes) */
	size_t src_len;
	const uint8_t *inp;   /* the input window: in, or src */
	size_t in_len;        /* bytes at inp */
	size_t in_pos;        /* bytes of inp consumed */
	uint64_t in_off;      /* file offset of the next pread */
	uint64_t out_total;   /* decompressed bytes produced since the start */
	uint32_t next_block;  /* block the next full read returns (after the header) */
	bool at_frame_end;    /* the last LZ4F call finished a frame */
	bool eof;             /* pread returned 0 */
	bool started;         /* positioned after the header, in sync with next_block */
	size_t lz4_error;     /* the LZ4F error code when a call failed */
};

/* ---- report ----------------------------------------------------------- */

static void wr_segment_reader_fault(struct wr_segment_reader *r, int64_t block,
				    enum wr_format_fault fault, uint64_t offset, int error,
				    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Record the first fault only: strict mode reports where reading stopped. */
static void
wr_segment_reader_fault(struct wr_segment_reader *r, int64_t block, enum wr_format_fault fault,
			uint64_t offset, int error, const char *fmt, ...)
{
	struct wr_segment_report *rep = &r->report;
	if (rep->error != 0)
		return;
	rep->block_index = block;
	rep->fault = fault;
	rep->offset = offset;
	rep->error = error;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(rep->message, sizeof rep->message, fmt, ap);
		va_end(ap);
	} else {
		snprintf(rep->message, sizeof rep->message, "%s", wr_format_fault_str(fault));
	}
}

/* ---- cold: LZ4 frame stream -------------------------------------------- */

static void
wr_lz4_stream_free(struct wr_lz4_stream *s)
{
	if (!s)
		return;
	LZ4F_freeDecompressionContext(s->dctx);
	free(s->in);
	free(s);
}

static int
wr_lz4_stream_create(struct wr_lz4_stream **out)
{
	struct wr_lz4_stream *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	if (LZ4F_isError(LZ4F_createDecompressionContext(&s->dctx, LZ4F_VERSION))) {
		wr_lz4_stream_free(s);
		return -ENOMEM;
	}
	s->at_frame_end = true;
	*out = s;
	return 0;
}

static void
wr_lz4_stream_rewind(struct wr_lz4_stream *s)
{
	LZ4F_resetDecompressionContext(s->dctx);
	s->in_len = s->in_pos = 0;
	s->inp = NULL;
	s->in_off = 0;
	s->out_total = 0;
	s->next_block = 0;
	s->at_frame_end = true;
	s->eof = false;
	s->started = false;
	s->lz4_error = 0;
}

/*
 * A stream for a new file: a kept one (its LZ4F context has its buffers
 * already, so a small segment does not pay for fresh memory) or a new one.
 */
static int
wr_lz4_stream_new(struct wr_lz4_stream **out, struct wr_buf_pool *pool)
{
	if (pool) {
		pthread_mutex_lock(&pool->lock);
		struct wr_lz4_stream *s = pool->nstreams ? pool->streams[--pool->nstreams] : NULL;
		pthread_mutex_unlock(&pool->lock);
		if (s) {
			wr_lz4_stream_rewind(s);
			s->src = NULL;
			s->src_len = 0;
			*out = s;
			return 0;
		}
	}
	return wr_lz4_stream_create(out);
}

static void
wr_lz4_stream_release(struct wr_lz4_stream *s, struct wr_buf_pool *pool)
{
	if (!s)
		return;
	if (pool) {
		pthread_mutex_lock(&pool->lock);
		bool kept = pool->nstreams < WR_BUF_POOL_MAX;
		if (kept)
			pool->streams[pool->nstreams++] = s;
		pthread_mutex_unlock(&pool->lock);
		if (kept)
			return;
	}
	wr_lz4_stream_free(s);
}

/*
 * Decompress up to want bytes into dst. Returns the bytes produced (less
 * than want only at the end of the input), -WALREC_ECORRUPT when LZ4F
 * rejects the stream (s->lz4_error says why), or -errno from pread.
 * Concatenated frames decode to their concatenation, as `lz4 -d` does.
 */
static ssize_t
wr_lz4_stream_read(struct wr_lz4_stream *s, int fd, void *dst, size_t want)
{
	uint8_t *d = dst;
	size_t got = 0;
	while (got < want) {
		if (s->in_pos == s->in_len) {
			if (s->eof)
				break;
			if (s->src) {
				/* Mapped: all of it at once, so LZ4F never copies a block it straddles. */
				s->inp = s->src;
				s->in_len = s->src_len;
				s->in_pos = 0;
				s->eof = true;
				if (s->in_len == 0)
					break;
			} else {
				if (!s->in && !(s->in = malloc(WR_LZ4_IN_CHUNK)))
					return -ENOMEM;
				ssize_t n;
				do
					n = pread(fd, s->in, WR_LZ4_IN_CHUNK, (off_t)s->in_off);
				while (n < 0 && errno == EINTR);
				if (n < 0)
					return -errno;
				if (n == 0) {
					s->eof = true;
					break;
				}
				s->inp = s->in;
				s->in_len = (size_t)n;
				s->in_pos = 0;
				s->in_off += (uint64_t)n;
			}
		}
		size_t dst_len = want - got;
		size_t src_len = s->in_len - s->in_pos;
		size_t hint = LZ4F_decompress(s->dctx, d + got, &dst_len, s->inp + s->in_pos,
					      &src_len, NULL);
		if (LZ4F_isError(hint)) {
			s->lz4_error = hint;
			return -WALREC_ECORRUPT;
		}
		/* LZ4F never reports more than the sizes it was given. */
		s->in_pos += src_len;
		got += dst_len;
		s->out_total += dst_len;
		s->at_frame_end = hint == 0;
		if (dst_len == 0 && src_len == 0 && s->in_pos < s->in_len) {
			/* No progress with input and room left: a broken frame. */
			s->lz4_error = (size_t)-1;
			return -WALREC_ECORRUPT;
		}
	}
	return (ssize_t)got;
}

static const char *
wr_lz4_stream_error(const struct wr_lz4_stream *s)
{
	if (s->lz4_error == (size_t)-1)
		return "decoder made no progress";
	return LZ4F_getErrorName(s->lz4_error);
}

/* ---- block index and the walk ---------------------------------------------- */

static int
wr_segment_reader_add_block(struct wr_segment_reader *r, const struct wr_block_header *h,
			    uint32_t block, bool resync)
{
	if (r->valid_blocks == r->blocks_cap) {
		uint32_t ncap = r->blocks_cap ? r->blocks_cap * 2 : 64;
		struct wr_block_entry *n = realloc(r->blocks, (size_t)ncap * sizeof *n);
		if (!n)
			return -ENOMEM;
		r->blocks = n;
		r->blocks_cap = ncap;
	}
	struct wr_block_entry *e = &r->blocks[r->valid_blocks++];
	e->first_event_id = h->first_event_id;
	e->last_event_id = h->last_event_id;
	e->chained_checksum = h->chained_checksum;
	e->event_count = h->event_count;
	e->block = block;
	e->resync = resync;
	if (r->first_event_id == 0)
		r->first_event_id = h->first_event_id;
	r->last_event_id = h->last_event_id;
	r->event_count += h->event_count;
	return 0;
}

/*
 * Remember a skipped block once: a seek can make the walk meet the same
 * damage again. The list stays sorted; walks go forward, so the new
 * number is nearly always the largest.
 */
static int
wr_segment_reader_note_skip(struct wr_segment_reader *r, uint32_t block)
{
	uint32_t lo = 0, hi = r->skipped_blocks;
	if (hi == 0 || r->skipped[hi - 1] < block) {
		lo = hi;
	} else {
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (r->skipped[mid] < block)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < r->skipped_blocks && r->skipped[lo] == block)
			return 0;
	}
	if (r->skipped_blocks == r->skipped_cap) {
		uint32_t ncap = r->skipped_cap ? r->skipped_cap * 2 : 16;
		uint32_t *n = realloc(r->skipped, (size_t)ncap * sizeof *n);
		if (!n)
			return -ENOMEM;
		r->skipped = n;
		r->skipped_cap = ncap;
	}
	memmove(&r->skipped[lo + 1], &r->skipped[lo],
		(size_t)(r->skipped_blocks - lo) * sizeof *r->skipped);
	r->skipped[lo] = block;
	r->skipped_blocks++;
	return 1;
}

/*
 * wr_block_verify, except that a resync block (the first after a skip in
 * tolerant mode) is not checked against the chain: its stored chained
 * checksum starts the chain again. Every other check still applies.
 */
static enum wr_format_fault
wr_verify_block(const struct wr_block *b, uint32_t i, uint64_t prev_chained,
		uint64_t prev_last_id, bool resync, uint64_t *chained)
{
	enum wr_format_fault f = wr_block_verify(b, i, prev_chained, prev_last_id, chained);
	if (f != WR_FAULT_CHAINED_CHECKSUM || !resync)
		return f;
	/* wr_block_verify stops before the tail check; do it here. */
	size_t len = (size_t)b->header.event_count * WR_EVENT_SIZE;
	const uint8_t *tail = (const uint8_t *)&b->events[0] + len;
	for (size_t k = 0; k < WR_BLOCK_SIZE - WR_BLOCK_HEADER_SIZE - len; k++)
		if (tail[k])
			return WR_FAULT_TAIL;
	*chained = b->header.chained_checksum;
	return WR_FAULT_NONE;
}

/* What examining one block did. */
enum {
	WR_WALK_EMPTY = 0, /* never written: the end of the data (or not written yet) */
	WR_WALK_NEXT = 1,  /* indexed, or skipped (tolerant): go on */
	WR_WALK_STOP = 2,  /* strict: a fault, the walk ends here */
};

/*
 * A live recorder writes sealed blocks into the file with pwrite, a run of
 * them at a time; a reader without a sealed position to stop at (not
 * following) can meet the last block written so far in an active segment
 * half copied. Such a block is complete microseconds later: look again a
 * few times before calling it damaged.
 */
#define WR_INFLIGHT_TRIES 10
#define WR_INFLIGHT_WAIT_NS 1000000L /* 10 ms in all: a preempted flusher gets there too */

static void
wr_inflight_nap(void)
{
	struct timespec ts = { 0, WR_INFLIGHT_WAIT_NS };
	nanosleep(&ts, NULL);
}

void (*wr_segment_reader_settle_wait)(void) = wr_inflight_nap;

/* Block i of a hot active segment is the last one with data so far (nothing after it). */
static bool
wr_walk_at_data_end(const struct wr_segment_reader *r, uint32_t i)
{
	if (r->cold || r->limit != UINT32_MAX || r->header.closed_ts_ns != 0)
		return false;
	if (i + 1 >= r->whole)
		return true;
	const uint8_t *next = r->map + wr_block_offset(i + 1);
	for (unsigned k = 0; k < WR_BLOCK_HEADER_SIZE; k++)
		if (next[k])
			return false;
	return true;
}

/* Examine block r->walk_next, whose WR_BLOCK_SIZE bytes are at b. A WR_WALK_* or -ENOMEM. */
static int
wr_walk_block(struct wr_segment_reader *r, const struct wr_block *b)
{
	uint32_t i = r->walk_next;
	uint64_t chained = 0;
	enum wr_format_fault f =
		wr_verify_block(b, i, r->prev_chained, r->prev_last_id, r->resync, &chained);
	bool settle = f != WR_FAULT_NONE && f != WR_FAULT_EMPTY && wr_walk_at_data_end(r, i);
	for (int t = 0; settle && f != WR_FAULT_NONE && f != WR_FAULT_EMPTY && t < WR_INFLIGHT_TRIES;
	     t++) {
		wr_segment_reader_settle_wait();
		f = wr_verify_block(b, i, r->prev_chained, r->prev_last_id, r->resync, &chained);
	}
	if (f == WR_FAULT_EMPTY)
		return WR_WALK_EMPTY;
	if (f != WR_FAULT_NONE) {
		wr_segment_reader_fault(r, i, f, wr_block_offset(i), -WALREC_ECORRUPT, NULL);
		if (!r->tolerant)
			return WR_WALK_STOP;
		int rc = wr_segment_reader_note_skip(r, i);
		if (rc < 0)
			return rc;
		r->resync = true;
		r->walk_next++;
		return WR_WALK_NEXT;
	}
	struct wr_block_header h;
	memcpy(&h, &b->header, sizeof h);
	int rc = wr_segment_reader_add_block(r, &h, i, r->resync);
	if (rc < 0)
		return rc;
	r->prev_chained = chained;
	r->prev_last_id = h.last_event_id;
	r->resync = false;
	r->walk_next++;
	return WR_WALK_NEXT;
}

/* A data size that is not a segment size: name the block it cuts, if any. */
static void
wr_segment_reader_size_fault(struct wr_segment_reader *r, uint64_t size, const char *what)
{
	uint64_t body = size - WR_SEGMENT_HEADER_SIZE;
	int64_t block = body % WR_BLOCK_SIZE ? (int64_t)(body / WR_BLOCK_SIZE) : WR_REPORT_SEGMENT;
	wr_segment_reader_fault(r, block, WR_FAULT_FILE_SIZE, size, -WALREC_ECORRUPT,
				"%s (%s of %llu bytes; a segment is 64 + n * 16448 bytes, "
				"16 <= n <= 524288)",
				wr_format_fault_str(WR_FAULT_FILE_SIZE), what,
				(unsigned long long)size);
}

/* A closed header must describe exactly the blocks that verified (a walk from block 0). */
static void
wr_segment_reader_check_closed(struct wr_segment_reader *r)
{
	const struct wr_segment_header *h = &r->header;
	if (h->closed_ts_ns == 0 || r->report.error != 0 || r->skipped_blocks != 0 ||
	    r->run_start != 0)
		return;
	uint64_t last_chained = r->valid_blocks ? r->blocks[r->valid_blocks - 1].chained_checksum : 0;
	const char *field = NULL;
	unsigned long long hv = 0, bv = 0;
	if (h->block_count != r->valid_blocks)
		field = "block_count", hv = h->block_count, bv = r->valid_blocks;
	else if (h->event_count != r->event_count)
		field = "event_count", hv = h->event_count, bv = r->event_count;
	else if (h->first_event_id != r->first_event_id)
		field = "first_event_id", hv = h->first_event_id, bv = r->first_event_id;
	else if (h->last_event_id != r->last_event_id)
		field = "last_event_id", hv = h->last_event_id, bv = r->last_event_id;
	else if (h->last_chained_checksum != last_chained)
		field = "last_chained_checksum", hv = h->last_chained_checksum, bv = last_chained;
	if (field)
		wr_segment_reader_fault(r, WR_REPORT_SEGMENT, WR_FAULT_COUNTS, 0, -WALREC_ECORRUPT,
					"%s: closed header %s %llu, blocks give %llu",
					wr_format_fault_str(WR_FAULT_COUNTS), field, hv, bv);
}

/*
 * A hot walk reached its end. The file size must be a segment size, and a
 * segment closed since open (a live recorder finished it) gets its closed
 * header checked too; a header caught mid-rewrite is left for later.
 */
static void
wr_segment_reader_hot_done(struct wr_segment_reader *r)
{
	r->walk_done = true;
	if (r->num_blocks == 0)
		wr_segment_reader_size_fault(r, r->data_size, "file");
	/*
	 * The header as it is now: a live recorder closes a segment (closed
	 * header), and a restarted one reopens its last segment for appending
	 * (active header again).
	 */
	struct wr_segment_header h;
	if (wr_segment_header_check(r->map, WR_SEGMENT_HEADER_SIZE, &h) == WR_FAULT_NONE &&
	    h.segment_index == r->header.segment_index)
		r->header = h;
	wr_segment_reader_check_closed(r);
}

/*
 * One step of a walk over the mapping (hot, or the cold cache). Returns 1
 * when a block was consumed, 0 when the walk can not go on now (the end,
 * a strict fault, the limit, or a block not written yet under a limit),
 * or -ENOMEM.
 */
static int
wr_walk_mapped(struct wr_segment_reader *r)
{
	if (r->walk_done)
		return 0;
	if (r->walk_next >= r->whole) {
		if (r->decoding)
			return 0; /* cold, at open: the decoder has not produced more yet */
		if (!r->cold)
			wr_segment_reader_hot_done(r);
		else
			r->walk_done = true;
		return 0;
	}
	if (r->walk_next >= r->limit)
		return 0;
	int rc = wr_walk_block(r, (const struct wr_block *)(r->map + wr_block_offset(r->walk_next)));
	if (rc == WR_WALK_NEXT || rc < 0)
		return rc;
	/*
	 * Under a limit the recorder said this block is sealed; an empty one
	 * means its bytes are not visible yet: look again when asked.
	 */
	if (rc == WR_WALK_EMPTY && r->limit != UINT32_MAX)
		return 0;
	if (!r->cold)
		wr_segment_reader_hot_done(r);
	else
		r->walk_done = true;
	return 0;
}

static int
wr_segment_reader_header(struct wr_segment_reader *r, const void *buf, size_t len)
{
	enum wr_format_fault f = wr_segment_header_check(buf, len, &r->header);
	if (f != WR_FAULT_NONE) {
		wr_segment_reader_fault(r, WR_REPORT_SEGMENT, f, 0, -WALREC_EFORMAT,
					"segment header: %s", wr_format_fault_str(f));
		return -WALREC_EFORMAT;
	}
	r->report.segment_index = r->header.segment_index;
	return 0;
}

/* ---- open --------------------------------------------------------------- */

static int
wr_segment_reader_open_hot(struct wr_segment_reader *r)
{
	uint64_t size = r->file_size;
	if (size < WR_SEGMENT_HEADER_SIZE) {
		wr_segment_reader_fault(r, WR_REPORT_SEGMENT, WR_FAULT_SHORT, size, -WALREC_EFORMAT,
					"segment header: truncated (file of %llu bytes)",
					(unsigned long long)size);
		return -WALREC_EFORMAT;
	}
	if (size > wr_segment_size(WR_MAX_BLOCKS)) {
		wr_segment_reader_fault(r, WR_REPORT_SEGMENT, WR_FAULT_FILE_SIZE, size,
					-WALREC_EFORMAT,
					"%s (file of %llu bytes, larger than the largest segment)",
					wr_format_fault_str(WR_FAULT_FILE_SIZE),
					(unsigned long long)size);
		return -WALREC_EFORMAT;
	}
	/*
	 * Shared, so blocks that a live recorder seals after this point are
	 * seen. A full walk touches every page: build the page tables at once.
	 */
	void *map = mmap(NULL, size, PROT_READ, MAP_SHARED | (r->lazy ? 0 : MAP_POPULATE), r->fd,
			 0);
	if (map == MAP_FAILED) {
		int err = -errno;
		wr_log_syscall("mmap", r->path, -err);
		wr_segment_reader_fault(r, WR_REPORT_SEGMENT, WR_FAULT_NONE, 0, err, "mmap: %s",
					strerror(-err));
		return err;
	}
	r->map = map;
	r->map_len = size;
	r->data_size = size;

	/*
	 * A recorder rewrites the header once, when it closes the segment; a
	 * copy taken in the middle of that fails its checksum. Look again
	 * before calling the file bad.
	 */
	int rc;
	for (int tries = 0;; tries++) {
		struct wr_segment_report rep = r->report;
		rc = wr_segment_reader_header(r, map, size);
		if (rc == 0 || r->report.fault != WR_FAULT_HEADER_CHECKSUM || tries == 3)
			break;
		r->report = rep;
		struct timespec ts = { 0, 100000 };
		nanosleep(&ts, NULL);
	}
	if (rc < 0)
		return rc;

	/* Only whole blocks inside the mapping are ever looked at. */
	r->whole = (uint32_t)((size - WR_SEGMENT_HEADER_SIZE) / WR_BLOCK_SIZE);
	r->num_blocks = wr_segment_blocks_for_size(size);
	if (r->lazy)
		return 0;
	while ((rc = wr_walk_mapped(r)) > 0)
		;
	return rc;
}

/* Streamed cold segment (larger than the cache): verify now, decode again to read. */
static int
wr_segment_reader_open_cold_stream(struct wr_segment_reader *r)
{
	struct wr_lz4_stream *s = r->lz4;
	if (!r->buf && !(r->buf = malloc(sizeof *r->buf)))
		return -ENOMEM;
	ssize_t n;
	uint32_t i = 0;
	bool too_big = false, walking = true;
	for (;;) {
		n = wr_lz4_stream_read(s, r->fd, r->buf, WR_BLOCK_SIZE);
		if (n < 0)
			break;
		if ((size_t)n < WR_BLOCK_SIZE)
			break; /* end of input, possibly inside a block */
		if (i >= WR_MAX_BLOCKS) {
			too_big = true;
			break;
		}
		if (walking) {
			int rc = wr_walk_block(r, r->buf);
			if (rc < 0)
				return rc;
			walking = rc == WR_WALK_NEXT;
		}
		i++;
	}
	r->walk_done = true;
	r->data_size = s->out_total;
	if (n == -WALREC_ECORRUPT) {
		wr_segment_reader_fault(r, i, WR_FAULT_SHORT, s->out_total, -WALREC_ECORRUPT,
					"LZ4 frame corrupt: %s", wr_lz4_stream_error(s));
	} else if (n < 0) {
		wr_log_syscall("pread", r->path, (int)-n);
		wr_segment_reader_fault(r, i, WR_FAULT_NONE, s->out_total, (int)n, "read: %s",
					strerror((int)-n));
	} else if (too_big) {
		wr_segment_reader_fault(r, WR_REPORT_SEGMENT, WR_FAULT_FILE_SIZE, s->out_total,
					-WALREC_ECORRUPT,
					"%s (LZ4 frame expands beyond the largest segment)",
					wr_format_fault_str(WR_FAULT_FILE_SIZE));
	} else if (!s->at_frame_end) {
		wr_segment_reader_fault(r, i, WR_FAULT_SHORT, s->out_total, -WALREC_ECORRUPT,
					"truncated: LZ4 frame ends early");
	} else {
		r->num_blocks = wr_segment_blocks_for_size(s->out_total);
		if (r->num_blocks == 0)
			wr_segment_reader_size_fault(r, s->out_total, "decompresses to a segment");
	}
	wr_segment_reader_check_closed(r);
	s->started = false; /* next block load rewinds the stream */
	return 0;
}

/* Decompressed bytes asked of LZ4F per call: whole blocks, so the buffer stays block-aligned. */
#define WR_COLD_CHUNK (64u * WR_BLOCK_SIZE)
/* LZ4 blocks asked for per call in the cache: enough to keep the walk close behind. */
#define WR_COLD_LZ4_BLOCKS 1u

/*
 * The frame's block size (decoded bytes per LZ4 block). LZ4F decodes
 * straight into the caller's buffer only when a whole block fits there;
 * asking for pieces that end on block boundaries keeps it from decoding
 * into its own buffer and copying.
 */
static uint64_t
wr_lz4_stream_block_size(struct wr_lz4_stream *s)
{
	LZ4F_frameInfo_t info;
	size_t zero = 0;
	if (LZ4F_isError(LZ4F_getFrameInfo(s->dctx, &info, NULL, &zero)))
		return 4u << 20;
	switch (info.blockSizeID) {
	case LZ4F_max64KB:
		return 64u << 10;
	case LZ4F_max256KB:
		return 256u << 10;
	case LZ4F_max1MB:
		return 1u << 20;
	default:
		return 4u << 20;
	}
}
/* Scratch for the never-written tail, decoded only to check the frame and the size. */
#define WR_COLD_SCRATCH (64u * WR_BLOCK_SIZE)

static bool
wr_header_all_zero(const uint8_t *p)
{
	for (unsigned k = 0; k < WR_BLOCK_HEADER_SIZE; k++)
		if (p[k])
			return false;
	return true;
}

void
wr_buf_pool_init(struct wr_buf_pool *p)
{
	memset(p, 0, sizeof *p);
	pthread_mutex_init(&p->lock, NULL);
}

void
wr_buf_pool_fini(struct wr_buf_pool *p)
{
	for (unsigned i = 0; i < p->n; i++)
		munmap(p->buf[i], p->cap[i]);
	p->n = 0;
	for (unsigned i = 0; i < p->nstreams; i++)
		wr_lz4_stream_free(p->streams[i]);
	p->nstreams = 0;
	pthread_mutex_destroy(&p->lock);
}

/* A kept buffer of at least need bytes (else the largest one), or NULL. */
static void *
wr_buf_pool_take(struct wr_buf_pool *p, uint64_t need, uint64_t *cap)
{
	pthread_mutex_lock(&p->lock);
	int best = -1;
	for (unsigned i = 0; i < p->n; i++)
		if (best < 0 || (p->cap[best] < need ? p->cap[i] > p->cap[best]
						     : p->cap[i] >= need && p->cap[i] < p->cap[best]))
			best = (int)i;
	void *b = NULL;
	if (best >= 0) {
		b = p->buf[best];
		*cap = p->cap[best];
		p->buf[best] = p->buf[p->n - 1];
		p->cap[best] = p->cap[p->n - 1];
		p->n--;
	}
	pthread_mutex_unlock(&p->lock);
	return b;
}

/* Keep a buffer for the next segment; false when the pool is full (the caller frees it). */
static bool
wr_buf_pool_put(struct wr_buf_pool *p, void *b, uint64_t cap)
{
	pthread_mutex_lock(&p->lock);
	bool kept = p->n < WR_BUF_POOL_MAX;
	if (kept) {
		p->buf[p->n] = b;
		p->cap[p->n] = cap;
		p->n++;
	}
	pthread_mutex_unlock(&p->lock);
	return kept;
}

/* Grow the cold cache to hold at least need bytes. 0, -E2BIG past the cache limit, -ENOMEM. */
static int
wr_cold_cache_reserve(struct wr_segment_reader *r, uint64_t need)
{
	if (need <= r->map_cap)
		return 0;
	if (need > wr_cold_cache_max)
		return -E2BIG;
	if (!r->map && r->pool) {
		uint64_t cap = 0;
		void *b = wr_buf_pool_take(r->pool, need, &cap);
		if (b) {
			r->map = b;
			r->map_cap = cap;
			if (need <= cap)
				return 0;
		}
	}
	/* Exactly what is asked the first time (a closed header says how much); then doubling. */
	uint64_t cap = r->map_cap ? r->map_cap : need;
	while (cap < need)
		cap = WR_SEGMENT_HEADER_SIZE + 2 * (cap - WR_SEGMENT_HEADER_SIZE);
	if (cap > wr_cold_cache_max)
		cap = wr_cold_cache_max;
	void *p = r->map ? mremap((void *)r->map, r->map_cap, cap, MREMAP_MAYMOVE)
			 : mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	/* Tens of MiB written once: 2 MiB pages save thousands of page faults. */
	madvise(p, cap, MADV_HUGEPAGE);
	r->map = p;
	r->map_cap = cap;
	return 0;
}

/*
 * Cold segment, decoded once into the cache: the blocks are verified as
 * they come out of the decoder, and reads are then served from memory.
 * Stores the data up to its first never-written block; the rest of the
 * frame is decoded into a scratch buffer only to check its end and size.
 * Returns 0, -E2BIG (the data outgrows the cache: stream it instead), or
 * another negative code.
 */
static int
wr_segment_reader_open_cold_cached(struct wr_segment_reader *r, const uint8_t *hdr)
{
	struct wr_lz4_stream *s = r->lz4;
	/* Room for the blocks a closed header counts and the never-written one after them. */
	uint64_t first = WR_SEGMENT_HEADER_SIZE + 64ull * WR_BLOCK_SIZE;
	if (r->header.closed_ts_ns != 0 && r->header.block_count <= WR_MAX_BLOCKS)
		first = wr_segment_size(r->header.block_count) + WR_BLOCK_SIZE;
	if (first > wr_cold_cache_max && r->header.closed_ts_ns != 0)
		return -E2BIG;
	int rc = wr_cold_cache_reserve(r, first);
	if (rc < 0)
		return rc;
	uint8_t *m = (uint8_t *)r->map;
	memcpy(m, hdr, WR_SEGMENT_HEADER_SIZE);
	uint64_t used = WR_SEGMENT_HEADER_SIZE;
	uint8_t *scratch = NULL;
	bool storing = true, walking = true;
	uint32_t keep = 0, scan = 0; /* blocks stored; where to look for the end after a fault */
	ssize_t n = 0;
	uint64_t bsz = wr_lz4_stream_block_size(s);
	r->decoding = true;
	while (s->out_total <= wr_segment_size(WR_MAX_BLOCKS)) {
		if (storing) {
			if (used == r->map_cap) {
				rc = wr_cold_cache_reserve(r, used + WR_COLD_CHUNK);
				if (rc < 0)
					goto out;
				m = (uint8_t *)r->map;
			}
			size_t want = (size_t)(r->map_cap - used);
			uint64_t upto = (s->out_total / bsz + WR_COLD_LZ4_BLOCKS) * bsz;
			if (want > upto - s->out_total)
				want = (size_t)(upto - s->out_total);
			n = wr_lz4_stream_read(s, r->fd, m + used, want);
			if (n < 0)
				break;
			used += (uint64_t)n;
			r->map_len = used;
			r->whole = (uint32_t)((used - WR_SEGMENT_HEADER_SIZE) / WR_BLOCK_SIZE);
			keep = r->whole;
			while (walking && (rc = wr_walk_mapped(r)) > 0)
				;
			if (rc < 0)
				goto out;
			if (walking && r->walk_done) {
				/* The walk ended inside the data. */
				walking = false;
				if (r->tolerant || r->report.error == 0)
					storing = false; /* at a never-written block: the end */
				else
					scan = r->walk_next + 1; /* strict fault: keep what follows */
			}
			/* After a strict fault keep the data (a seek may jump past it) up to its end. */
			for (; storing && !walking && scan < r->whole; scan++) {
				if (wr_header_all_zero(m + wr_block_offset(scan))) {
					storing = false;
					break;
				}
			}
			if (!storing)
				keep = walking ? r->whole : (r->report.error == 0 || r->tolerant)
								? r->walk_next
								: scan;
			if ((size_t)n < want)
				break; /* end of input */
		} else {
			if (!scratch && !(scratch = malloc(WR_COLD_SCRATCH))) {
				rc = -ENOMEM;
				goto out;
			}
			n = wr_lz4_stream_read(s, r->fd, scratch, WR_COLD_SCRATCH);
			if (n < 0 || (size_t)n < WR_COLD_SCRATCH)
				break;
		}
	}
	r->decoding = false;
	rc = 0;
	r->walk_done = true;
	r->data_size = s->out_total;
	uint32_t at = (uint32_t)((s->out_total - WR_SEGMENT_HEADER_SIZE) / WR_BLOCK_SIZE);
	if (n == -WALREC_ECORRUPT) {
		wr_segment_reader_fault(r, at, WR_FAULT_SHORT, s->out_total, -WALREC_ECORRUPT,
					"LZ4 frame corrupt: %s", wr_lz4_stream_error(s));
	} else if (n < 0) {
		wr_log_syscall("pread", r->path, (int)-n);
		wr_segment_reader_fault(r, at, WR_FAULT_NONE, s->out_total, (int)n, "read: %s",
					strerror((int)-n));
	} else if (s->out_total > wr_segment_size(WR_MAX_BLOCKS)) {
		wr_segment_reader_fault(r, WR_REPORT_SEGMENT, WR_FAULT_FILE_SIZE, s->out_total,
					-WALREC_ECORRUPT,
					"%s (LZ4 frame expands beyond the largest segment)",
					wr_format_fault_str(WR_FAULT_FILE_SIZE));
	} else if (!s->at_frame_end) {
		wr_segment_reader_fault(r, at, WR_FAULT_SHORT, s->out_total, -WALREC_ECORRUPT,
					"truncated: LZ4 frame ends early");
	} else {
		r->num_blocks = wr_segment_blocks_for_size(s->out_total);
		if (r->num_blocks == 0)
			wr_segment_reader_size_fault(r, s->out_total, "decompresses to a segment");
	}
	if (keep > r->whole)
		keep = r->whole;
	r->whole = keep;
	r->map_len = wr_block_offset(keep);
	wr_segment_reader_check_closed(r);
out:
	r->decoding = false;
	free(scratch);
	return rc;
}

/* Back to the state right after the header was read, for a second attempt. */
static void
wr_segment_reader_reset_walk(struct wr_segment_reader *r)
{
	if (r->map && (!r->pool || !wr_buf_pool_put(r->pool, (void *)r->map, r->map_cap)))
		munmap((void *)r->map, r->map_cap);
	r->map = NULL;
	r->map_len = r->map_cap = 0;
	r->valid_blocks = 0;
	r->event_count = 0;
	r->first_event_id = r->last_event_id = 0;
	r->skipped_blocks = 0;
	r->run_start = r->walk_next = r->whole = 0;
	r->run_floor = 0;
	r->prev_chained = r->prev_last_id = 0;
	r->resync = false;
	r->walk_done = false;
	struct wr_segment_report rep = { .segment_index = r->header.segment_index,
					 .block_index = WR_REPORT_SEGMENT };
	r->report = rep;
}

static int
wr_segment_reader_open_cold(struct wr_segment_reader *r)
{
	int rc = wr_lz4_stream_new(&r->lz4, r->pool);
	if (rc < 0)
		return rc;
	struct wr_lz4_stream *s = r->lz4;
	/*
	 * Feed the decoder the whole compressed file, mapped: no copy out of
	 * the page cache, no LZ4 block split between two reads (which LZ4F
	 * would copy aside). pread when it can not be mapped.
	 */
	void *src = MAP_FAILED;
	if (r->file_size > 0 && r->file_size <= SIZE_MAX)
		src = mmap(NULL, (size_t)r->file_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, r->fd, 0);
	if (src != MAP_FAILED) {
		s->src = src;
		s->src_len = (size_t)r->file_size;
	}

	uint8_t hdr[WR_SEGMENT_HEADER_SIZE];
	ssize_t n = wr_lz4_stream_read(s, r->fd, hdr, sizeof hdr);
	if (n == -WALREC_ECORRUPT) {
		wr_segment_reader_fault(r, WR_REPORT_SEGMENT, WR_FAULT_MAGIC, s->out_total,
					-WALREC_EFORMAT, "not an LZ4 frame of a segment: %s",
					wr_lz4_stream_error(s));
		rc = -WALREC_EFORMAT;
	} else if (n < 0) {
		wr_log_syscall("pread", r->path, (int)-n);
		wr_segment_reader_fault(r, WR_REPORT_SEGMENT, WR_FAULT_NONE, 0, (int)n,
					"read: %s", strerror((int)-n));
		rc = (int)n;
	} else if ((size_t)n < sizeof hdr) {
		wr_segment_reader_fault(r, WR_REPORT_SEGMENT, WR_FAULT_SHORT, (uint64_t)n,
					-WALREC_EFORMAT,
					"segment header: truncated (decompresses to %zd bytes)", n);
		rc = -WALREC_EFORMAT;
	} else {
		rc = wr_segment_reader_header(r, hdr, sizeof hdr);
	}
	if (rc == 0)
		rc = wr_segment_reader_open_cold_cached(r, hdr);
	/* Decoded into the cache (or failed): reads never go back to the file. */
	if (src != MAP_FAILED)
		munmap(src, (size_t)r->file_size);
	s->src = NULL;
	s->src_len = 0;
	if (rc != -E2BIG)
		return rc;
	/* Too large to keep in memory: verify as a stream, decode again to read. */
	wr_segment_reader_reset_walk(r);
	wr_lz4_stream_rewind(s);
	n = wr_lz4_stream_read(s, r->fd, hdr, sizeof hdr);
	if (n != (ssize_t)sizeof hdr)
		return n < 0 ? (int)n : -WALREC_ECORRUPT;
	return wr_segment_reader_open_cold_stream(r);
}

static bool
wr_ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

int
wr_segment_reader_open(struct wr_segment_reader *r, const char *path, unsigned flags)
{
	return wr_segment_reader_open_pool(r, path, flags, NULL);
}

int
wr_segment_reader_open_pool(struct wr_segment_reader *r, const char *path, unsigned flags,
			    struct wr_buf_pool *pool)
{
	memset(r, 0, sizeof *r);
	r->pool = pool;
	r->fd = -1;
	r->limit = UINT32_MAX;
	r->report.block_index = WR_REPORT_SEGMENT;
	if ((flags & ~(unsigned)(WR_SEGMENT_READER_COLD | WR_SEGMENT_READER_HOT |
				 WR_SEGMENT_READER_TOLERANT | WR_SEGMENT_READER_LAZY)) ||
	    (flags & WR_SEGMENT_READER_COLD && flags & WR_SEGMENT_READER_HOT)) {
		wr_segment_reader_fault(r, WR_REPORT_SEGMENT, WR_FAULT_NONE, 0, -EINVAL,
					"unsupported reader flags 0x%x", flags);
		return -EINVAL;
	}
	if (strlen(path) >= sizeof r->path) {
		wr_segment_reader_fault(r, WR_REPORT_SEGMENT, WR_FAULT_NONE, 0, -ENAMETOOLONG,
					"path too long");
		return -ENAMETOOLONG;
	}
	strcpy(r->path, path);
	r->tolerant = (flags & WR_SEGMENT_READER_TOLERANT) != 0;
	if (flags & WR_SEGMENT_READER_COLD)
		r->cold = true;
	else if (!(flags & WR_SEGMENT_READER_HOT))
		r->cold = wr_ends_with(path, ".lz4");
	r->lazy = !r->cold && (flags & WR_SEGMENT_READER_LAZY) != 0;

	int rc;
	r->fd = wr_sys.open(path, O_RDONLY | O_CLOEXEC, 0);
	if (r->fd < 0) {
		rc = -errno;
		wr_segment_reader_fault(r, WR_REPORT_SEGMENT, WR_FAULT_NONE, 0, rc, "open: %s",
					strerror(-rc));
		goto fail;
	}
	struct stat st;
	if (fstat(r->fd, &st) != 0) {
		rc = -errno;
		wr_segment_reader_fault(r, WR_REPORT_SEGMENT, WR_FAULT_NONE, 0, rc, "fstat: %s",
					strerror(-rc));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		wr_segment_reader_fault(r, WR_REPORT_SEGMENT, WR_FAULT_NONE, 0, rc,
					"not a regular file");
		goto fail;
	}
	r->file_size = (uint64_t)st.st_size;

	rc = r->cold ? wr_segment_reader_open_cold(r) : wr_segment_reader_open_hot(r);
	if (rc < 0) {
		if (r->report.error == 0)
			wr_segment_reader_fault(r, WR_REPORT_SEGMENT, WR_FAULT_NONE, 0, rc, "%s",
						strerror(-rc));
		goto fail;
	}
	if (r->cold && r->map) {
		/* Decoded: the file is no longer needed. */
		wr_sys.close(r->fd);
		r->fd = -1;
	}
	return 0;

fail:;
	struct wr_segment_report rep = r->report;
	wr_segment_reader_close(r);
	r->report = rep;
	return rc;
}

int
wr_segment_reader_status(const struct wr_segment_reader *r)
{
	return r->report.error;
}

void
wr_segment_reader_close(struct wr_segment_reader *r)
{
	if (r->map && r->cold) {
		if (!r->pool || !wr_buf_pool_put(r->pool, (void *)r->map, r->map_cap))
			munmap((void *)r->map, r->map_cap);
	} else if (r->map) {
		munmap((void *)r->map, r->map_len);
	}
	if (r->fd >= 0)
		wr_sys.close(r->fd);
	wr_lz4_stream_release(r->lz4, r->pool);
	free(r->buf);
	free(r->blocks);
	free(r->skipped);
	struct wr_segment_report rep = r->report;
	memset(r, 0, sizeof *r);
	r->report = rep;
	r->fd = -1;
	r->limit = UINT32_MAX;
}

void
wr_segment_reader_set_limit(struct wr_segment_reader *r, uint32_t blocks)
{
	r->limit = blocks;
}

bool
wr_segment_reader_at_end(const struct wr_segment_reader *r)
{
	return r->walk_done;
}

/* ---- reading ------------------------------------------------------------ */

/* Bring the streamed cold file to block i (rewinding if it is past it) and read it. */
static int
wr_segment_reader_load_cold(struct wr_segment_reader *r, uint32_t ei)
{
	struct wr_lz4_stream *s = r->lz4;
	uint32_t i = r->blocks[ei].block;
	if (!s->started || s->next_block > i) {
		wr_lz4_stream_rewind(s);
		uint8_t hdr[WR_SEGMENT_HEADER_SIZE];
		ssize_t n = wr_lz4_stream_read(s, r->fd, hdr, sizeof hdr);
		if (n < 0)
			return (int)n;
		if ((size_t)n < sizeof hdr)
			return -WALREC_ECORRUPT;
		s->started = true;
	}
	while (s->next_block <= i) {
		ssize_t n = wr_lz4_stream_read(s, r->fd, r->buf, WR_BLOCK_SIZE);
		if (n < 0) {
			s->started = false;
			return (int)n;
		}
		if ((size_t)n < WR_BLOCK_SIZE) {
			s->started = false;
			return -WALREC_ECORRUPT; /* the file shrank since open */
		}
		s->next_block++;
	}
	/* The file may have changed since open: the block must be the one indexed. */
	const struct wr_block_entry *e = &r->blocks[ei];
	uint64_t prev_chained = ei ? r->blocks[ei - 1].chained_checksum : 0;
	uint64_t prev_last = ei ? r->blocks[ei - 1].last_event_id : 0;
	uint64_t chained;
	if (wr_verify_block(r->buf, i, prev_chained, prev_last, e->resync, &chained) !=
		    WR_FAULT_NONE ||
	    chained != e->chained_checksum || r->buf->header.event_count != e->event_count ||
	    r->buf->header.first_event_id != e->first_event_id) {
		s->started = false;
		return -WALREC_ECORRUPT;
	}
	return 0;
}

const struct wr_block *
wr_segment_reader_block(struct wr_segment_reader *r, uint32_t i, int *err)
{
	*err = 0;
	if (i >= r->valid_blocks) {
		*err = -ERANGE;
		return NULL;
	}
	if (r->map)
		return (const struct wr_block *)(r->map + wr_block_offset(r->blocks[i].block));
	int rc = wr_segment_reader_load_cold(r, i);
	if (rc < 0) {
		*err = rc;
		return NULL;
	}
	return r->buf;
}

/*
 * The read position is past the indexed blocks: walk on (a lazy or
 * limited reader) until a block is indexed. Returns 1 when one was, 0
 * when the walk can not go on now, or -ENOMEM.
 */
static int
wr_segment_reader_extend(struct wr_segment_reader *r)
{
	uint32_t had = r->valid_blocks;
	int rc = 0;
	while (r->valid_blocks == had && r->map && (rc = wr_walk_mapped(r)) > 0)
		;
	return rc < 0 ? rc : r->valid_blocks > had;
}

/* After the last indexed block: 0 when more may come or at a clean end, else the fault. */
static int
wr_segment_reader_end_result(const struct wr_segment_reader *r)
{
	if (!r->walk_done || r->tolerant)
		return 0;
	return r->report.error;
}

/*
 * Bring the read position to an unread event of an indexed block (walking
 * on when needed). Returns 1 when r->cur holds it at cur_slot, else 0 or a
 * negative code as next().
 */
static int
wr_segment_reader_position(struct wr_segment_reader *r)
{
	for (;;) {
		if (r->cur_block < r->valid_blocks) {
			if (!r->cur) {
				int err;
				r->cur = wr_segment_reader_block(r, r->cur_block, &err);
				if (!r->cur)
					return err;
			}
			if (r->cur_slot < r->blocks[r->cur_block].event_count)
				return 1;
			r->cur_block++;
			r->cur_slot = 0;
			r->cur = NULL;
			continue;
		}
		int rc = wr_segment_reader_extend(r);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return wr_segment_reader_end_result(r);
	}
}

int
wr_segment_reader_read_block(struct wr_segment_reader *r, const walrec_event_t **ev,
			     uint32_t *n)
{
	int rc = wr_segment_reader_position(r);
	if (rc != 1)
		return rc;
	uint32_t count = r->blocks[r->cur_block].event_count;
	*ev = &r->cur->events[r->cur_slot];
	*n = count - r->cur_slot;
	r->cur_slot = count;
	return 1;
}

int
wr_segment_reader_next(struct wr_segment_reader *r, walrec_event_t *out)
{
	int rc = wr_segment_reader_position(r);
	if (rc != 1)
		return rc;
	memcpy(out, &r->cur->events[r->cur_slot++], sizeof *out);
	return 1;
}

/*
 * Read block m's header from the mapping: 1 when it is well-formed (its
 * checksum, index, count and ids check out; the events are not looked
 * at), 0 when it was never written, -1 when it is damaged.
 */
static int
wr_segment_reader_probe(const struct wr_segment_reader *r, uint32_t m, struct wr_block_header *h)
{
	memcpy(h, r->map + wr_block_offset(m), sizeof *h);
	if (h->checksum != wr_block_header_checksum(h))
		return wr_header_all_zero((const uint8_t *)h) ? 0 : -1;
	if (h->event_count < 1 || h->event_count > WR_EVENTS_PER_BLOCK || h->block_index != m ||
	    h->first_event_id == 0 || h->first_event_id > h->last_event_id)
		return -1;
	for (unsigned k = 0; k < sizeof h->padding; k++)
		if (h->padding[k])
			return -1;
	return 1;
}

/* Start a new verified run at block k (the walk goes on from there). */
static void
wr_segment_reader_restart(struct wr_segment_reader *r, uint32_t k, uint64_t prev_chained,
			  uint64_t prev_last_id)
{
	r->valid_blocks = 0;
	r->event_count = 0;
	r->first_event_id = r->last_event_id = 0;
	r->run_start = r->walk_next = k;
	r->run_floor = prev_last_id;
	r->prev_chained = prev_chained;
	r->prev_last_id = prev_last_id;
	r->resync = false;
	r->walk_done = false;
	r->cur_block = 0;
	r->cur_slot = 0;
	r->cur = NULL;
	if (!r->tolerant) {
		/* Strict: a fault belongs to the run that met it. */
		struct wr_segment_report rep = { .segment_index = r->header.segment_index,
						 .block_index = WR_REPORT_SEGMENT };
		r->report = rep;
	}
}

/*
 * Move the walk to the block that holds the first event >= id, found by a
 * binary search over the block headers. The block before it supplies the
 * chain and the last id, so the landing block gets every check. Any
 * damaged header on the way, or before the landing block, makes the walk
 * start over at block 0 instead (the full checks, in order).
 */
static void
wr_segment_reader_jump(struct wr_segment_reader *r, uint64_t id)
{
	uint32_t end = r->whole < r->limit ? r->whole : r->limit;
	uint32_t lo = r->run_start == 0 && !r->walk_done ? r->walk_next : 0, hi = end;
	struct wr_block_header h;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int p = wr_segment_reader_probe(r, mid, &h);
		if (p < 0)
			goto from_start;
		if (p == 0 || h.last_event_id >= id)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (lo == r->walk_next && !r->walk_done)
		return; /* the walk is there already */
	if (lo == 0) {
		wr_segment_reader_restart(r, 0, 0, 0);
		return;
	}
	if (wr_segment_reader_probe(r, lo - 1, &h) != 1)
		goto from_start;
	wr_segment_reader_restart(r, lo, h.chained_checksum, h.last_event_id);
	return;
from_start:
	wr_segment_reader_restart(r, 0, 0, 0);
}

/* The run holds every event of the segment >= id up to its last block. */
static bool
wr_segment_reader_covers(const struct wr_segment_reader *r, uint64_t id)
{
	if (r->valid_blocks == 0 || r->blocks[r->valid_blocks - 1].last_event_id < id)
		return false;
	/* A run that did not start at block 0 holds only ids above its predecessor's last. */
	return r->run_start == 0 || id > r->run_floor;
}

int
wr_segment_reader_seek(struct wr_segment_reader *r, uint64_t id)
{
	if (!wr_segment_reader_covers(r, id) && r->map) {
		/* Mapped (hot, or the cold cache): verify from the landing block on. */
		wr_segment_reader_jump(r, id);
		while (!wr_segment_reader_covers(r, id)) {
			int rc = wr_walk_mapped(r);
			if (rc < 0)
				return rc;
			if (rc == 0)
				break;
		}
	}
	/* First block whose last id is >= id (ids increase across blocks). */
	uint32_t lo = 0, hi = r->valid_blocks;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (r->blocks[mid].last_event_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	r->cur_block = lo;
	r->cur_slot = 0;
	r->cur = NULL;
	if (lo == r->valid_blocks)
		return 0;
	int err;
	const struct wr_block *b = wr_segment_reader_block(r, lo, &err);
	if (!b)
		return err;
	r->cur = b;
	/* First slot whose id is >= id; the block's last id is, so one exists. */
	uint32_t s_lo = 0, s_hi = r->blocks[lo].event_count;
	while (s_lo < s_hi) {
		uint32_t mid = s_lo + (s_hi - s_lo) / 2;
		if (b->events[mid].event_id < id)
			s_lo = mid + 1;
		else
			s_hi = mid;
	}
	r->cur_slot = s_lo;
	return 1;
}

int
wr_segment_peek_header(const char *path, bool cold, struct wr_segment_header *h,
		       uint64_t *file_size, struct wr_segment_report *rep)
{
	struct wr_segment_reader r;
	memset(&r, 0, sizeof r);
	r.report.block_index = WR_REPORT_SEGMENT;
	r.fd = wr_sys.open(path, O_RDONLY | O_CLOEXEC, 0);
	int rc = 0;
	struct stat st;
	if (r.fd < 0 || fstat(r.fd, &st) != 0) {
		rc = -errno;
		wr_segment_reader_fault(&r, WR_REPORT_SEGMENT, WR_FAULT_NONE, 0, rc, "%s: %s",
					r.fd < 0 ? "open" : "fstat", strerror(-rc));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		wr_segment_reader_fault(&r, WR_REPORT_SEGMENT, WR_FAULT_NONE, 0, rc,
					"not a regular file");
		goto out;
	}
	if (file_size)
		*file_size = (uint64_t)st.st_size;
	uint8_t hdr[WR_SEGMENT_HEADER_SIZE];
	ssize_t n;
	if (cold) {
		rc = wr_lz4_stream_new(&r.lz4, NULL);
		if (rc < 0)
			goto out;
		n = wr_lz4_stream_read(r.lz4, r.fd, hdr, sizeof hdr);
		if (n == -WALREC_ECORRUPT) {
			rc = -WALREC_EFORMAT;
			wr_segment_reader_fault(&r, WR_REPORT_SEGMENT, WR_FAULT_MAGIC, 0, rc,
						"not an LZ4 frame of a segment: %s",
						wr_lz4_stream_error(r.lz4));
			goto out;
		}
	} else {
		do
			n = pread(r.fd, hdr, sizeof hdr, 0);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			n = -errno;
	}
	if (n < 0) {
		rc = (int)n;
		wr_segment_reader_fault(&r, WR_REPORT_SEGMENT, WR_FAULT_NONE, 0, rc, "read: %s",
					strerror(-rc));
		goto out;
	}
	rc = wr_segment_reader_header(&r, hdr, (size_t)n);
	if (rc == 0 && h)
		*h = r.header;
out:
	if (r.fd >= 0)
		wr_sys.close(r.fd);
	wr_lz4_stream_free(r.lz4);
	if (rep)
		*rep = r.report;
	return rc;
}
