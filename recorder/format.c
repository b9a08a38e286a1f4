/* SPDX-License-Identifier: MIT */
/* walrec on-disk format v1: encode, finalize, verify (layout in format.h). */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "recorder/format.h"

uint32_t
wr_segment_blocks_for_size(uint64_t file_size)
{
	if (file_size < wr_segment_size(WR_MIN_BLOCKS) ||
	    file_size > wr_segment_size(WR_MAX_BLOCKS))
		return 0;
	uint64_t body = file_size - WR_SEGMENT_HEADER_SIZE;
	if (body % WR_BLOCK_SIZE != 0)
		return 0;
	return (uint32_t)(body / WR_BLOCK_SIZE);
}

const char *
wr_format_fault_str(enum wr_format_fault f)
{
	switch (f) {
	case WR_FAULT_NONE: return "valid";
	case WR_FAULT_SHORT: return "truncated";
	case WR_FAULT_MAGIC: return "bad magic (not a walrec segment)";
	case WR_FAULT_VERSION: return "unsupported version or header size";
	case WR_FAULT_HEADER_CHECKSUM: return "header checksum mismatch";
	case WR_FAULT_EMPTY: return "block never written";
	case WR_FAULT_COUNT: return "event count out of range";
	case WR_FAULT_INDEX: return "block index does not match its position";
	case WR_FAULT_PADDING: return "header padding not zero";
	case WR_FAULT_EVENT_ID: return "event id zero or block id range wrong";
	case WR_FAULT_ORDER: return "event ids not strictly increasing";
	case WR_FAULT_BLOCK_CHECKSUM: return "block checksum mismatch";
	case WR_FAULT_CHAINED_CHECKSUM: return "chained checksum mismatch";
	case WR_FAULT_TAIL: return "slot past event count not zero";
	case WR_FAULT_SEGMENT_INDEX: return "unexpected segment index";
	case WR_FAULT_COUNTS: return "header counts disagree with the blocks";
	case WR_FAULT_FILE_SIZE: return "file size is not a valid segment size";
	}
	return "unknown fault";
}

uint64_t
wr_segment_header_checksum(const struct wr_segment_header *h)
{
	const uint8_t *p = (const uint8_t *)h;
	return XXH64(p + 56, 8, XXH64(p, 48, 0));
}

void
wr_segment_header_init(struct wr_segment_header *h, uint32_t segment_index,
		       uint64_t created_ts_ns)
{
	memset(h, 0, sizeof *h);
	h->magic = WR_SEGMENT_MAGIC;
	h->version = WR_FORMAT_VERSION;
	h->header_size = WR_SEGMENT_HEADER_SIZE;
	h->segment_index = segment_index;
	h->created_ts_ns = created_ts_ns;
	wr_segment_header_finalize(h);
}

void
wr_segment_header_finalize(struct wr_segment_header *h)
{
	h->checksum = wr_segment_header_checksum(h);
}

enum wr_format_fault
wr_segment_header_check(const void *buf, size_t len, struct wr_segment_header *out)
{
	struct wr_segment_header h;
	if (len < sizeof h)
		return WR_FAULT_SHORT;
	memcpy(&h, buf, sizeof h);
	if (out)
		*out = h;
	if (h.magic != WR_SEGMENT_MAGIC)
		return WR_FAULT_MAGIC;
	if (h.version != WR_FORMAT_VERSION || h.header_size != WR_SEGMENT_HEADER_SIZE)
		return WR_FAULT_VERSION;
	if (h.checksum != wr_segment_header_checksum(&h))
		return WR_FAULT_HEADER_CHECKSUM;
	return WR_FAULT_NONE;
}

uint64_t
wr_block_header_checksum(const struct wr_block_header *h)
{
	const uint8_t *p = (const uint8_t *)h;
	return XXH64(p + 40, 24, XXH64(p, 32, 0));
}

uint64_t
wr_block_finalize(struct wr_block *b, uint32_t block_index, uint16_t count,
		  uint64_t prev_chained)
{
	struct wr_block_header *h = &b->header;
	size_t len = (size_t)count * WR_EVENT_SIZE;
	memset(h, 0, sizeof *h);
	h->first_event_id = b->events[0].event_id;
	h->last_event_id = b->events[count - 1].event_id;
	h->block_checksum = XXH64(b->events, len, 0);
	h->chained_checksum = XXH64(b->events, len, prev_chained);
	h->block_index = block_index;
	h->event_count = count;
	h->checksum = wr_block_header_checksum(h);
	return h->chained_checksum;
}

static bool
wr_bytes_zero(const void *p, size_t len)
{
	const uint8_t *b = p;
	/* Compare against itself shifted: zero iff first byte is 0 and all equal. */
	return len == 0 || (b[0] == 0 && memcmp(b, b + 1, len - 1) == 0);
}

enum wr_format_fault
wr_block_verify(const struct wr_block *b, uint32_t block_index, uint64_t prev_chained,
		uint64_t prev_last_id, uint64_t *chained_out)
{
	struct wr_block_header h;
	memcpy(&h, &b->header, sizeof h);
	if (h.checksum != wr_block_header_checksum(&h))
		return wr_bytes_zero(&h, sizeof h) ? WR_FAULT_EMPTY : WR_FAULT_HEADER_CHECKSUM;
	if (h.event_count < 1 || h.event_count > WR_EVENTS_PER_BLOCK)
		return WR_FAULT_COUNT;
	if (h.block_index != block_index)
		return WR_FAULT_INDEX;
	if (!wr_bytes_zero(h.padding, sizeof h.padding))
		return WR_FAULT_PADDING;
	if (h.first_event_id == 0 || h.first_event_id > h.last_event_id)
		return WR_FAULT_EVENT_ID;
	if (h.first_event_id <= prev_last_id)
		return WR_FAULT_ORDER;

	uint64_t prev = prev_last_id;
	for (unsigned i = 0; i < h.event_count; i++) {
		uint64_t id = b->events[i].event_id;
		if (id <= prev)
			return id == 0 ? WR_FAULT_EVENT_ID : WR_FAULT_ORDER;
		prev = id;
	}
	if (b->events[0].event_id != h.first_event_id || prev != h.last_event_id)
		return WR_FAULT_EVENT_ID;

	size_t len = (size_t)h.event_count * WR_EVENT_SIZE;
	if (XXH64(b->events, len, 0) != h.block_checksum)
		return WR_FAULT_BLOCK_CHECKSUM;
	if (XXH64(b->events, len, prev_chained) != h.chained_checksum)
		return WR_FAULT_CHAINED_CHECKSUM;
	if (!wr_bytes_zero(&b->events[h.event_count], WR_BLOCK_SIZE - WR_BLOCK_HEADER_SIZE - len))
		return WR_FAULT_TAIL;
	if (chained_out)
		*chained_out = h.chained_checksum;
	return WR_FAULT_NONE;
}

void
wr_meta_encode(uint8_t out[WR_META_SIZE], const struct wr_meta_state *s)
{
	uint64_t packed = ((uint64_t)s->segment_index << 32) | s->offset;
	memcpy(out, &packed, 8);
	memcpy(out + 8, &s->last_event_id, 8);
}

void
wr_meta_decode(const uint8_t in[WR_META_SIZE], struct wr_meta_state *s)
{
	uint64_t packed;
	memcpy(&packed, in, 8);
	memcpy(&s->last_event_id, in + 8, 8);
	s->segment_index = (uint32_t)(packed >> 32);
	s->offset = (uint32_t)packed;
}

int
wr_segment_name_parse(const char *name, uint32_t *index, bool *cold)
{
	size_t len = strlen(name);
	bool is_cold;
	size_t suffix;
	if (len > 8 && strcmp(name + len - 8, WR_COLD_SUFFIX) == 0) {
		is_cold = true;
		suffix = 8;
	} else if (len > 4 && strcmp(name + len - 4, WR_SEGMENT_SUFFIX) == 0) {
		is_cold = false;
		suffix = 4;
	} else {
		return 0;
	}
	if (len < suffix + 8)
		return 0;
	const char *digits = name + len - suffix - 8;
	if (digits != name && digits[-1] != '.')
		return 0;
	if (strchr(name, '/'))
		return 0;
	uint32_t v = 0;
	for (int i = 0; i < 8; i++) {
		if (digits[i] < '0' || digits[i] > '9')
			return 0;
		v = v * 10 + (uint32_t)(digits[i] - '0');
	}
	*index = v;
	*cold = is_cold;
	return 1;
}

int
wr_segment_name(char *out, size_t n, const char *prefix, uint32_t index, bool cold)
{
	int len = snprintf(out, n, "%s%s%08u%s", prefix && *prefix ? prefix : "",
			   prefix && *prefix ? "." : "", index,
			   cold ? WR_COLD_SUFFIX : WR_SEGMENT_SUFFIX);
	return (len < 0 || (size_t)len >= n) ? -ENAMETOOLONG : 0;
}
