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
#include <unistd.h>

#include "lib/log.h"
#include "lib/sys.h"
#include "recorder/segment_reader.h"

/* Compressed bytes read per pread; LZ4F buffers internally up to its block size. */
#define WR_LZ4_IN_CHUNK (256u * 1024u)

struct wr_lz4_stream {
	LZ4F_dctx *dctx;
	uint8_t *in;
	size_t in_len;        /* bytes in in[] */
	size_t in_pos;        /* bytes of in[] consumed */
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
wr_lz4_stream_new(struct wr_lz4_stream **out)
{
	struct wr_lz4_stream *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->in = malloc(WR_LZ4_IN_CHUNK);
	if (!s->in || LZ4F_isError(LZ4F_createDecompressionContext(&s->dctx, LZ4F_VERSION))) {
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
	s->in_off = 0;
	s->out_total = 0;
	s->next_block = 0;
	s->at_frame_end = true;
	s->eof = false;
	s->started = false;
	s->lz4_error = 0;
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
			s->in_len = (size_t)n;
			s->in_pos = 0;
			s->in_off += (uint64_t)n;
		}
		size_t dst_len = want - got;
		size_t src_len = s->in_len - s->in_pos;
		size_t hint = LZ4F_decompress(s->dctx, d + got, &dst_len, s->in + s->in_pos,
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

/* ---- block index -------------------------------------------------------- */

static int
wr_segment_reader_add_block(struct wr_segment_reader *r, uint32_t *cap,
			    const struct wr_block_header *h)
{
	if (r->valid_blocks == *cap) {
		uint32_t ncap = *cap ? *cap * 2 : 64;
		struct wr_block_entry *n = realloc(r->blocks, (size_t)ncap * sizeof *n);
		if (!n)
			return -ENOMEM;
		r->blocks = n;
		*cap = ncap;
	}
	struct wr_block_entry *e = &r->blocks[r->valid_blocks++];
	e->first_event_id = h->first_event_id;
	e->last_event_id = h->last_event_id;
	e->chained_checksum = h->chained_checksum;
	e->event_count = h->event_count;
	if (r->first_event_id == 0)
		r->first_event_id = h->first_event_id;
	r->last_event_id = h->last_event_id;
	r->event_count += h->event_count;
	return 0;
}

/* State of the verification walk over blocks 0, 1, ... */
struct wr_walk {
	uint32_t cap;           /* entries allocated in r->blocks */
	uint64_t prev_chained;
	uint64_t prev_last_id;
	bool done;              /* reached the end of data or a fault */
	bool resync;            /* tolerant: the previous block was skipped */
};

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

/* Verify block i (WR_BLOCK_SIZE readable bytes at b). 0 or -ENOMEM. */
static int
wr_walk_block(struct wr_segment_reader *r, struct wr_walk *w, const struct wr_block *b,
	      uint32_t i)
{
	if (w->done)
		return 0;
	uint64_t chained = 0;
	enum wr_format_fault f =
		wr_verify_block(b, i, w->prev_chained, w->prev_last_id, w->resync, &chained);
	if (f == WR_FAULT_EMPTY) {
		w->done = true; /* never written: the end of the data */
		return 0;
	}
	if (f != WR_FAULT_NONE) {
		wr_segment_reader_fault(r, i, f, wr_block_offset(i), -WALREC_ECORRUPT, NULL);
		if (r->tolerant) {
			r->skipped_blocks++;
			w->resync = true;
			return 0;
		}
		w->done = true;
		return 0;
	}
	struct wr_block_header h;
	memcpy(&h, &b->header, sizeof h);
	w->prev_chained = chained;
	w->prev_last_id = h.last_event_id;
	int rc = wr_segment_reader_add_block(r, &w->cap, &h);
	if (rc == 0) {
		r->blocks[r->valid_blocks - 1].block = i;
		r->blocks[r->valid_blocks - 1].resync = w->resync;
	}
	w->resync = false;
	return rc;
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

/* A closed header must describe exactly the blocks that verified. */
static void
wr_segment_reader_check_closed(struct wr_segment_reader *r)
{
	const struct wr_segment_header *h = &r->header;
	if (h->closed_ts_ns == 0 || r->report.error != 0 || r->skipped_blocks != 0)
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
	void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, r->fd, 0);
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

	int rc = wr_segment_reader_header(r, map, size);
	if (rc < 0)
		return rc;

	/* Only whole blocks inside the mapping are ever looked at. */
	uint32_t whole = (uint32_t)((size - WR_SEGMENT_HEADER_SIZE) / WR_BLOCK_SIZE);
	struct wr_walk w = { 0 };
	for (uint32_t i = 0; i < whole && !w.done; i++) {
		rc = wr_walk_block(r, &w, (const struct wr_block *)(r->map + wr_block_offset(i)), i);
		if (rc < 0)
			return rc;
	}
	r->num_blocks = wr_segment_blocks_for_size(size);
	if (r->num_blocks == 0)
		wr_segment_reader_size_fault(r, size, "file");
	wr_segment_reader_check_closed(r);
	return 0;
}

static int
wr_segment_reader_open_cold(struct wr_segment_reader *r)
{
	int rc = wr_lz4_stream_new(&r->lz4);
	if (rc < 0)
		return rc;
	r->buf = malloc(sizeof *r->buf);
	if (!r->buf)
		return -ENOMEM;
	struct wr_lz4_stream *s = r->lz4;

	uint8_t hdr[WR_SEGMENT_HEADER_SIZE];
	ssize_t n = wr_lz4_stream_read(s, r->fd, hdr, sizeof hdr);
	if (n == -WALREC_ECORRUPT) {
		wr_segment_reader_fault(r, WR_REPORT_SEGMENT, WR_FAULT_MAGIC, s->out_total,
					-WALREC_EFORMAT, "not an LZ4 frame of a segment: %s",
					wr_lz4_stream_error(s));
		return -WALREC_EFORMAT;
	}
	if (n < 0) {
		wr_log_syscall("pread", r->path, (int)-n);
		wr_segment_reader_fault(r, WR_REPORT_SEGMENT, WR_FAULT_NONE, 0, (int)n,
					"read: %s", strerror((int)-n));
		return (int)n;
	}
	if ((size_t)n < sizeof hdr) {
		wr_segment_reader_fault(r, WR_REPORT_SEGMENT, WR_FAULT_SHORT, (uint64_t)n,
					-WALREC_EFORMAT,
					"segment header: truncated (decompresses to %zd bytes)", n);
		return -WALREC_EFORMAT;
	}
	rc = wr_segment_reader_header(r, hdr, sizeof hdr);
	if (rc < 0)
		return rc;

	/*
	 * Decompress block by block into one buffer; keep going past the end
	 * of the data to learn the decompressed size, but never beyond the
	 * largest segment (an LZ4 frame can expand to anything).
	 */
	struct wr_walk w = { 0 };
	uint32_t i = 0;
	bool too_big = false;
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
		rc = wr_walk_block(r, &w, r->buf, i);
		if (rc < 0)
			return rc;
		i++;
	}
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

static bool
wr_ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

int
wr_segment_reader_open(struct wr_segment_reader *r, const char *path, unsigned flags)
{
	memset(r, 0, sizeof *r);
	r->fd = -1;
	r->report.block_index = WR_REPORT_SEGMENT;
	if ((flags & ~(unsigned)(WR_SEGMENT_READER_COLD | WR_SEGMENT_READER_HOT |
				 WR_SEGMENT_READER_TOLERANT)) ||
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
	if (r->map)
		munmap((void *)r->map, r->map_len);
	if (r->fd >= 0)
		wr_sys.close(r->fd);
	wr_lz4_stream_free(r->lz4);
	free(r->buf);
	free(r->blocks);
	struct wr_segment_report rep = r->report;
	memset(r, 0, sizeof *r);
	r->report = rep;
	r->fd = -1;
}

/* ---- reading ------------------------------------------------------------ */

/* Bring the cold stream to block i (rewinding if it is past it) and read it. */
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
	if (!r->cold)
		return (const struct wr_block *)(r->map + wr_block_offset(r->blocks[i].block));
	int rc = wr_segment_reader_load_cold(r, i);
	if (rc < 0) {
		*err = rc;
		return NULL;
	}
	return r->buf;
}

int
wr_segment_reader_next(struct wr_segment_reader *r, walrec_event_t *out)
{
	for (;;) {
		if (r->cur_block >= r->valid_blocks)
			return r->tolerant ? 0 : r->report.error;
		if (!r->cur) {
			int err;
			r->cur = wr_segment_reader_block(r, r->cur_block, &err);
			if (!r->cur)
				return err;
		}
		if (r->cur_slot < r->blocks[r->cur_block].event_count) {
			memcpy(out, &r->cur->events[r->cur_slot++], sizeof *out);
			return 1;
		}
		r->cur_block++;
		r->cur_slot = 0;
		r->cur = NULL;
	}
}

int
wr_segment_reader_seek(struct wr_segment_reader *r, uint64_t id)
{
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
		rc = wr_lz4_stream_new(&r.lz4);
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
