/* SPDX-License-Identifier: MIT */
/* Segment files for tests, built with the format module alone (no writer). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <lz4frame.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recorder/format.h"
#include "tests/segfile.h"

void
wr_segfile_event(uint64_t id, walrec_event_t *ev)
{
	memset(ev, 0, sizeof *ev);
	ev->event_id = id;
	ev->timestamp_ns = 1700000000000000000ull + id * 1000u;
	uint64_t x = id * 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < sizeof ev->payload; i++) {
		x ^= x >> 29;
		x *= 0xBF58476D1CE4E5B9ull;
		ev->payload[i] = (uint8_t)(x >> 56);
	}
}

static int
wr_segfile_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

int
wr_segfile_write(const char *path, const struct wr_segfile_spec *s, struct wr_segfile_info *info)
{
	uint32_t num_blocks = s->num_blocks ? s->num_blocks : WR_MIN_BLOCKS;
	uint32_t per = s->events_per_block ? s->events_per_block : WR_EVENTS_PER_BLOCK;
	uint64_t id = s->first_id ? s->first_id : 1;
	uint64_t step = s->id_step ? s->id_step : 1;
	if (s->blocks > num_blocks || per > WR_EVENTS_PER_BLOCK ||
	    s->last_block_events > WR_EVENTS_PER_BLOCK || s->torn_events > WR_EVENTS_PER_BLOCK ||
	    (s->torn_events && s->blocks >= num_blocks))
		return -EINVAL;

	struct wr_segfile_info in;
	memset(&in, 0, sizeof in);
	in.size = wr_segment_size(num_blocks);
	struct wr_block *b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(b);
		return -errno;
	}
	int rc = ftruncate(fd, (off_t)in.size) == 0 ? 0 : -errno;
	uint64_t chained = 0;
	for (uint32_t i = 0; i < s->blocks && rc == 0; i++) {
		uint32_t count = s->counts ? s->counts[i] : per;
		if (i + 1 == s->blocks && s->last_block_events)
			count = s->last_block_events;
		if (count < 1 || count > WR_EVENTS_PER_BLOCK) {
			rc = -EINVAL;
			break;
		}
		memset(b, 0, sizeof *b);
		for (uint32_t k = 0; k < count; k++, id += step)
			wr_segfile_event(id, &b->events[k]);
		chained = wr_block_finalize(b, i, (uint16_t)count, chained);
		if (i < 64) {
			in.block_first[i] = b->header.first_event_id;
			in.block_last[i] = b->header.last_event_id;
			in.block_events[i] = count;
		}
		if (in.first_id == 0)
			in.first_id = b->header.first_event_id;
		in.last_id = b->header.last_event_id;
		in.events += count;
		in.blocks++;
		rc = wr_segfile_pwrite(fd, b, sizeof *b, (off_t)wr_block_offset(i));
	}
	in.last_chained = chained;
	if (rc == 0 && s->torn_events) {
		/* Events copied in, block never sealed: the header stays zero. */
		memset(b, 0, sizeof *b);
		for (uint32_t k = 0; k < s->torn_events; k++, id += step)
			wr_segfile_event(id, &b->events[k]);
		rc = wr_segfile_pwrite(fd, b, sizeof *b, (off_t)wr_block_offset(s->blocks));
	}
	if (rc == 0) {
		struct wr_segment_header h;
		wr_segment_header_init(&h, s->segment_index, 1700000000000000000ull);
		if (s->header == WR_SEGFILE_CLOSED) {
			h.block_count = in.blocks;
			h.event_count = (uint32_t)in.events;
			h.first_event_id = in.first_id;
			h.last_event_id = in.last_id;
			h.closed_ts_ns = 1700000001000000000ull;
			h.last_chained_checksum = chained;
			wr_segment_header_finalize(&h);
		}
		rc = wr_segfile_pwrite(fd, &h, sizeof h, 0);
	}
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	free(b);
	if (rc < 0)
		unlink(path);
	else if (info)
		*info = in;
	return rc;
}

int
wr_segfile_compress_buf(const void *data, size_t len, const char *dst,
			unsigned long long content_size)
{
	LZ4F_preferences_t prefs;
	memset(&prefs, 0, sizeof prefs);
	prefs.frameInfo.contentSize = content_size;
	prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
	size_t cap = LZ4F_compressFrameBound(len, &prefs);
	void *out = malloc(cap);
	if (!out)
		return -1;
	size_t n = LZ4F_compressFrame(out, cap, data, len, &prefs);
	int rc = LZ4F_isError(n) ? -1 : 0;
	if (rc == 0) {
		FILE *f = fopen(dst, "wb");
		rc = f && fwrite(out, 1, n, f) == n ? 0 : -1;
		if (f && fclose(f) != 0)
			rc = -1;
	}
	free(out);
	return rc;
}

int
wr_segfile_compress(const char *src, const char *dst)
{
	FILE *f = fopen(src, "rb");
	if (!f)
		return -1;
	if (fseek(f, 0, SEEK_END) != 0) {
		fclose(f);
		return -1;
	}
	long len = ftell(f);
	rewind(f);
	void *buf = malloc(len > 0 ? (size_t)len : 1);
	int rc = buf && fread(buf, 1, (size_t)len, f) == (size_t)len ? 0 : -1;
	fclose(f);
	if (rc == 0)
		rc = wr_segfile_compress_buf(buf, (size_t)len, dst, (unsigned long long)len);
	free(buf);
	return rc;
}
