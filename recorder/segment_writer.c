/* SPDX-License-Identifier: MIT */
/* SegmentWriter: one segment, appended to by one owner thread through the stage. */
#include <config.h>

/*
 * Inline xxHash here (before segment_writer.h pulls in the plain header) so
 * that XXH64_update on a constant 64-byte event compiles into the append
 * path instead of a call into the shared library.
 */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/atomics.h"
#include "lib/clock.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/sys.h"
#include "recorder/segment_writer.h"

/*
 * Feed one 64-byte event to both payload hashes. Every update is exactly 64
 * bytes, a whole number of 32-byte stripes, so a state's partial-input
 * buffer is always empty and XXH64_update reduces to two rounds on each of
 * the four lanes. Doing that here for both states at once gives eight
 * independent multiply chains instead of two dependent library calls.
 * Bit-identical to XXH64_update (the tests compare every block with
 * wr_block_finalize's one-shot XXH64); other xxHash versions, whose state
 * layout may differ, use XXH64_update.
 */
#if XXH_VERSION_NUMBER >= 800 && XXH_VERSION_NUMBER < 900
#define SW_PRIME64_1 0x9E3779B185EBCA87ull
#define SW_PRIME64_2 0xC2B2AE3D27D4EB4Full

static inline uint64_t
sw_round(uint64_t acc, uint64_t input)
{
	acc += input * SW_PRIME64_2;
	acc = (acc << 31) | (acc >> 33);
	return acc * SW_PRIME64_1;
}

#define SW_ROUND2(x, y, in)                                                    \
	do {                                                                   \
		x = sw_round(x, in);                                           \
		y = sw_round(y, in);                                           \
	} while (0)

static inline __attribute__((always_inline)) void
sw_hash_event(XXH64_state_t *a, XXH64_state_t *b, const uint64_t in[8])
{
	uint64_t a0 = a->v[0], a1 = a->v[1], a2 = a->v[2], a3 = a->v[3];
	uint64_t b0 = b->v[0], b1 = b->v[1], b2 = b->v[2], b3 = b->v[3];
	SW_ROUND2(a0, b0, in[0]);
	SW_ROUND2(a1, b1, in[1]);
	SW_ROUND2(a2, b2, in[2]);
	SW_ROUND2(a3, b3, in[3]);
	SW_ROUND2(a0, b0, in[4]);
	SW_ROUND2(a1, b1, in[5]);
	SW_ROUND2(a2, b2, in[6]);
	SW_ROUND2(a3, b3, in[7]);
	a->v[0] = a0, a->v[1] = a1, a->v[2] = a2, a->v[3] = a3;
	b->v[0] = b0, b->v[1] = b1, b->v[2] = b2, b->v[3] = b3;
	a->total_len += WR_EVENT_SIZE;
	b->total_len += WR_EVENT_SIZE;
}
#else
static inline void
sw_hash_event(XXH64_state_t *a, XXH64_state_t *b, const uint64_t in[8])
{
	XXH64_update(a, in, WR_EVENT_SIZE);
	XXH64_update(b, in, WR_EVENT_SIZE);
}
#endif

/*
 * Unrolled by hand, each word pinned in a register by an empty asm: GCC
 * otherwise merges the loads into 16-byte ones or routes them via the stack.
 */
#define SW_LOAD1(e, i, src)                                                    \
	do {                                                                   \
		memcpy(&e[i], src + 8 * i, 8);                                 \
		__asm__("" : "+r"(e[i]));                                      \
	} while (0)
#define SW_LOAD8(e, src)                                                       \
	do {                                                                   \
		SW_LOAD1(e, 0, src); SW_LOAD1(e, 1, src);                      \
		SW_LOAD1(e, 2, src); SW_LOAD1(e, 3, src);                      \
		SW_LOAD1(e, 4, src); SW_LOAD1(e, 5, src);                      \
		SW_LOAD1(e, 6, src); SW_LOAD1(e, 7, src);                      \
	} while (0)
#define SW_STORE8(dst, e)                                                      \
	do {                                                                   \
		memcpy(dst + 0, &e[0], 8), memcpy(dst + 8, &e[1], 8);          \
		memcpy(dst + 16, &e[2], 8), memcpy(dst + 24, &e[3], 8);        \
		memcpy(dst + 32, &e[4], 8), memcpy(dst + 40, &e[5], 8);        \
		memcpy(dst + 48, &e[6], 8), memcpy(dst + 56, &e[7], 8);        \
	} while (0)

static inline uint64_t
sw_now_if(const struct wr_segment_writer_metrics *m)
{
	return (WR_STATS_ON && m) ? wr_clock_now_ns() : 0;
}

static const struct wr_block *
sw_block_at(const struct wr_segment_writer *w, uint32_t i)
{
	return (const struct wr_block *)(w->base + wr_block_offset(i));
}

/*
 * Point the hot state at block i: a free stage buffer, or NULL when every
 * block is used, before start, or while the stage is full (the next
 * append claims one).
 */
static void
sw_start_block(struct wr_segment_writer *w, uint32_t i)
{
	w->block_index = i;
	w->block_events = 0;
	w->block = (i < w->num_blocks && w->stage && !w->finished) ? wr_stage_claim(w->stage) : NULL;
	XXH64_reset(&w->hash_block, 0);
	XXH64_reset(&w->hash_chained, w->prev_chained);
}

/* A writer that owns nothing: close() on it is a no-op. */
static void
sw_clear(struct wr_segment_writer *w)
{
	memset(w, 0, sizeof *w);
	w->fd = -1;
}

static int
sw_map(struct wr_segment_writer *w, const char *what)
{
	/* Read-only: writeback never has to write-protect a page mapped here. */
	void *p = mmap(NULL, (size_t)w->size, PROT_READ, MAP_SHARED, w->fd, 0);
	if (p == MAP_FAILED) {
		int err = errno;
		wr_log_syscall(what, w->path, err);
		return -err;
	}
	w->base = p;
	return 0;
}

int
wr_segment_writer_open_new(struct wr_segment_writer *w, const char *dir,
			   const char *prefix, uint32_t segment_index,
			   uint32_t num_blocks, struct wr_segment_writer_metrics *metrics,
			   struct wr_name_sync *ns)
{
	uint64_t t0 = sw_now_if(metrics);
	sw_clear(w);
	int rc;
	bool created = false;

	if (num_blocks < WR_MIN_BLOCKS || num_blocks > WR_MAX_BLOCKS) {
		wr_log_error("segment writer: num_blocks %u out of range %u..%u", num_blocks,
			     WR_MIN_BLOCKS, WR_MAX_BLOCKS);
		rc = -EINVAL;
		goto out;
	}
	if (prefix && strchr(prefix, '/')) {
		wr_log_error("segment writer: prefix '%s' must not contain '/'", prefix);
		rc = -EINVAL;
		goto out;
	}
	char name[256];
	rc = wr_segment_name(name, sizeof name, prefix, segment_index, false);
	if (rc == 0)
		rc = wr_fs_join(w->path, sizeof w->path, dir, name);
	if (rc != 0) {
		wr_log_error("segment writer: path for segment %u in %s is too long",
			     segment_index, dir);
		goto out;
	}

	w->num_blocks = num_blocks;
	w->segment_index = segment_index;
	w->size = wr_segment_size(num_blocks);
	/* O_EXCL also refuses a symlink planted at the path (even a dangling one). */
	w->fd = wr_sys.open(w->path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (w->fd < 0) {
		rc = -errno;
		wr_log_syscall("open", w->path, -rc);
		goto out;
	}
	created = true;
	rc = wr_fs_preallocate(w->fd, (off_t)w->size);
	if (rc != 0) {
		wr_log_syscall("fallocate", w->path, -rc);
		goto out;
	}
	/* Preallocation extends the file; make the size exact whatever path it took. */
	if (wr_sys.ftruncate(w->fd, (off_t)w->size) != 0) {
		rc = -errno;
		wr_log_syscall("ftruncate", w->path, -rc);
		goto out;
	}
	struct wr_segment_header h;
	wr_segment_header_init(&h, segment_index, wr_clock_realtime_ns());
	rc = wr_fs_pwrite_all(w->fd, &h, sizeof h, 0);
	if (rc != 0) {
		wr_log_syscall("pwrite", w->path, -rc);
		goto out;
	}
	rc = sw_map(w, "mmap");
	if (rc != 0)
		goto out;
	/*
	 * The new name must be on stable storage before any event in the
	 * file is reported durable: syncing the file's data does not make
	 * its directory entry durable, and a power loss could otherwise drop
	 * the whole segment with acknowledged events in it.
	 */
	if (ns != NULL) {
		w->name_sync = ns;
		w->name_seq = ++ns->created;
	} else {
		rc = wr_fs_sync_dir(dir);
		if (rc != 0)
			goto out;
	}

	w->prev_chained = 0;
	sw_start_block(w, 0);
	/* The first sync covers the header too (synced_end 0 < written_end). */
	wr_store_relaxed(&w->synced_end, 0);
	wr_store_relaxed(&w->written_last_id, 0);
	wr_store_relaxed(&w->written_end, wr_block_offset(0));
	w->metrics = metrics;
	rc = 0;
out:
	if (rc != 0) {
		if (w->base)
			munmap(w->base, (size_t)w->size);
		if (w->fd >= 0)
			wr_sys.close(w->fd);
		/* Never remove a file someone else made (EEXIST comes from open). */
		if (created && wr_sys.unlink(w->path) != 0)
			wr_log_syscall("unlink", w->path, errno);
		sw_clear(w);
	}
	if (WR_STATS_ON && metrics)
		wr_operation_record(&metrics->open_new, rc == 0, t0, wr_clock_now_ns());
	return rc;
}

void
wr_segment_writer_start(struct wr_segment_writer *w, struct wr_stage *stage)
{
	w->stage = stage;
	w->cond_end = wr_load_relaxed(&w->written_end);
	if (w->block == NULL && w->block_events == 0)
		sw_start_block(w, w->block_index);
	wr_stage_set_active(stage, w);
}

/* No current block: say why, or claim a stage buffer for it. */
static __attribute__((noinline)) int
sw_claim(struct wr_segment_writer *w)
{
	if (w->finished || w->base == NULL || w->stage == NULL)
		return -WALREC_ECLOSED;
	if (w->block_index >= w->num_blocks)
		return -ENOSPC;
	w->block = wr_stage_claim(w->stage);
	return w->block ? 0 : -EAGAIN;
}

int
wr_segment_writer_append(struct wr_segment_writer *w, const walrec_event_t *ev)
{
	if (WR_UNLIKELY(w->block == NULL)) {
		int rc = sw_claim(w);
		if (rc != 0)
			return rc;
	}
	/*
	 * Copy first, then check and hash the copy: ev may live in memory a
	 * producer can still write (a ring slot), and the id that is checked
	 * and the bytes that are hashed must be the bytes that are stored.
	 */
	/*
	 * Eight 8-byte loads into registers: an event just built field by
	 * field forwards from the store buffer (16-byte loads spanning two
	 * stores would stall), and the id checked, the bytes stored and the
	 * bytes hashed are one copy even if *ev changes meanwhile (a ring slot
	 * a producer can still write).
	 */
	const uint8_t *src = (const uint8_t *)ev;
	uint64_t e[8];
	SW_LOAD8(e, src);
	/* last_event_id >= 0, so this also rejects id 0. */
	if (WR_UNLIKELY(e[0] <= w->last_event_id))
		return -WALREC_EORDER;
	uint8_t *dst = (uint8_t *)&w->block->events[w->block_events];
	SW_STORE8(dst, e);
	sw_hash_event(&w->hash_block, &w->hash_chained, e);
	w->last_event_id = e[0];
	if (WR_UNLIKELY(++w->block_events == WR_EVENTS_PER_BLOCK))
		wr_segment_writer_seal(w);
	return 0;
}

int
wr_segment_writer_seal(struct wr_segment_writer *w)
{
	if (w->block == NULL || w->block_events == 0)
		return 0;
	uint64_t t0 = sw_now_if(w->metrics);
	struct wr_block *b = w->block;
	uint32_t count = w->block_events;

	/*
	 * The payload hashes were fed event by event; finishing them is a few
	 * rounds of mixing, so sealing a full block never rereads its 16 KiB.
	 */
	struct wr_block_header h;
	memset(&h, 0, sizeof h);
	h.first_event_id = b->events[0].event_id;
	h.last_event_id = w->last_event_id;
	h.block_checksum = XXH64_digest(&w->hash_block);
	h.chained_checksum = XXH64_digest(&w->hash_chained);
	h.block_index = w->block_index;
	h.event_count = (uint16_t)count;
	h.checksum = wr_block_header_checksum(&h);
	memcpy(&b->header, &h, sizeof h);
	/* Slots past the count are zero on disk; the buffer held an older block. */
	if (count < WR_EVENTS_PER_BLOCK)
		memset(&b->events[count], 0, (WR_EVENTS_PER_BLOCK - count) * sizeof b->events[0]);

	struct wr_stage_entry e = { .writer = w, .block_index = w->block_index,
				    .event_count = count, .last_id = h.last_event_id };
	wr_stage_commit(w->stage, &e);

	if (w->blocks_sealed == 0 && w->event_count == 0)
		w->first_event_id = h.first_event_id;
	w->blocks_sealed++;
	w->event_count += count;
	w->prev_chained = h.chained_checksum;
	w->sealed_last_id = h.last_event_id;
	sw_start_block(w, w->block_index + 1);

	struct wr_segment_writer_metrics *m = w->metrics;
	if (WR_STATS_ON && m) {
		wr_duration_record(&m->write_block, t0, wr_clock_now_ns());
		wr_counter_inc(&m->blocks_sealed);
		if (count < WR_EVENTS_PER_BLOCK)
			wr_counter_inc(&m->partial_blocks_sealed);
	}
	return 1;
}

bool
wr_segment_writer_full(const struct wr_segment_writer *w)
{
	return w->block_index >= w->num_blocks;
}

/* Make names numbered up to upto durable, unless they are known to be. */
static int
ns_sync_upto(struct wr_name_sync *ns, uint64_t upto)
{
	if (upto <= wr_load_acquire(&ns->synced))
		return 0;
	/* Every name numbered up to upto was made before this fsync starts. */
	int rc = wr_fs_sync_dir(ns->dir);
	if (rc != 0)
		return rc;
	/* Release: pairs with the acquire load above. Several threads may
	 * sync: keep the largest number any of them covered. */
	wr_raise_u64(&ns->synced, upto, memory_order_release);
	return 0;
}

int
wr_name_sync_run(struct wr_name_sync *ns)
{
	return ns_sync_upto(ns, ns->created);
}

/* Before a data sync that may make events of w durable: its name. */
static int
sw_sync_name(struct wr_segment_writer *w)
{
	return w->name_sync ? ns_sync_upto(w->name_sync, w->name_seq) : 0;
}

int
wr_segment_writer_sync_sealed(struct wr_segment_writer *w)
{
	if (w->base == NULL)
		return -WALREC_ECLOSED;
	/* Acquire: pairs with the flusher's release store of written_end:
	 * the pwrite of every block before end returned before this load. */
	uint64_t end = wr_load_acquire(&w->written_end);
	uint64_t from = wr_load_relaxed(&w->synced_end);
	if (end <= from)
		return 0;
	int rc = sw_sync_name(w);
	if (rc != 0)
		return rc;
	/*
	 * msync of the read-only mapping is a data sync of exactly this range
	 * (vfs_fsync_range): unlike fdatasync it does not also wait for the
	 * zeros written ahead by conditioning (stage.c).
	 */
	uint64_t start = from & ~(uint64_t)4095;
	if (wr_sys.msync(w->base + start, (size_t)(end - start), MS_SYNC) != 0) {
		int err = errno;
		wr_log_syscall("msync", w->path, err);
		return -err;
	}
	/* Several threads may sync: keep the largest end any of them covered. */
	wr_raise_u64(&w->synced_end, end, memory_order_relaxed);
	return 0;
}

void
wr_segment_writer_finish(struct wr_segment_writer *w)
{
	if (w->base == NULL || w->finished)
		return;
	if (w->stage)
		wr_segment_writer_seal(w);

	struct wr_segment_header h;
	memcpy(&h, w->base, sizeof h); /* the active header: index, creation time */
	h.block_count = w->blocks_sealed;
	h.event_count = w->event_count;
	h.first_event_id = w->first_event_id;
	h.last_event_id = w->blocks_sealed ? w->sealed_last_id : 0;
	h.closed_ts_ns = wr_clock_realtime_ns();
	h.last_chained_checksum = w->prev_chained;
	wr_segment_header_finalize(&h);
	w->final_header = h;
	w->stage_end = w->stage ? wr_stage_position(w->stage) : 0;

	w->finished = true;
	w->block = NULL;
}

int
wr_segment_writer_close(struct wr_segment_writer *w, bool sync)
{
	if (w->base == NULL) {
		sw_clear(w);
		return 0;
	}
	struct wr_segment_writer_metrics *m = w->metrics;
	uint64_t t0 = sw_now_if(m);
	wr_segment_writer_finish(w);

	/* Every block first, then the header that counts them. */
	int rc = 0;
	if (w->stage) {
		rc = wr_stage_flush_to(w->stage, w->stage_end);
		wr_stage_forget(w->stage, w);
	}
	if (rc == 0) {
		rc = wr_fs_pwrite_all(w->fd, &w->final_header, sizeof w->final_header, 0);
		if (rc != 0)
			wr_log_syscall("pwrite", w->path, -rc);
	}
	if (rc == 0 && sync)
		rc = sw_sync_name(w);
	if (rc == 0 && sync && wr_sys.fdatasync(w->fd) != 0) {
		rc = -errno;
		wr_log_syscall("fdatasync", w->path, -rc);
	}
	if (munmap(w->base, (size_t)w->size) != 0 && rc == 0) {
		rc = -errno;
		wr_log_syscall("munmap", w->path, -rc);
	}
	if (wr_sys.close(w->fd) != 0 && rc == 0) {
		rc = -errno;
		wr_log_syscall("close", w->path, -rc);
	}
	sw_clear(w);
	if (WR_STATS_ON && m)
		wr_operation_record(&m->close, rc == 0, t0, wr_clock_now_ns());
	return rc;
}

/* ---- recovery ------------------------------------------------------------ */

static bool
sw_zero(const uint8_t *p, size_t len)
{
	const uint64_t *q = (const uint64_t *)p; /* blocks are 8-byte aligned in the map */
	size_t n = len / 8;
	uint64_t acc = 0;
	for (size_t i = 0; i < n; i++) {
		acc |= q[i];
		if ((i & 511) == 511 && acc)
			return false;
	}
	for (size_t i = n * 8; i < len; i++)
		acc |= p[i];
	return acc == 0;
}

static void
sw_count_fault(struct wr_segment_writer_metrics *m, enum wr_format_fault f)
{
	if (!WR_STATS_ON || !m)
		return;
	switch (f) {
	case WR_FAULT_HEADER_CHECKSUM: wr_counter_inc(&m->header_checksum_failures); break;
	case WR_FAULT_BLOCK_CHECKSUM: wr_counter_inc(&m->block_checksum_failures); break;
	case WR_FAULT_CHAINED_CHECKSUM: wr_counter_inc(&m->chained_checksum_failures); break;
	default: wr_counter_inc(&m->validation_failures); break;
	}
}

/*
 * Zero every block from first on that holds any byte (pwrite of zeros),
 * then sync them. Returns 1 if something was zeroed, 0 if all was already
 * zero, or -errno.
 */
static int
sw_cut_from(struct wr_segment_writer *w, uint32_t first)
{
	static const uint8_t zeros[WR_BLOCK_SIZE];
	bool any = false;
	for (uint32_t i = first; i < w->num_blocks; i++) {
		if (sw_zero((const uint8_t *)sw_block_at(w, i), WR_BLOCK_SIZE))
			continue;
		int rc = wr_fs_pwrite_all(w->fd, zeros, sizeof zeros, (off_t)wr_block_offset(i));
		if (rc != 0) {
			wr_log_syscall("pwrite", w->path, -rc);
			return rc;
		}
		any = true;
	}
	if (!any)
		return 0;
	if (wr_sys.fdatasync(w->fd) != 0) {
		int err = errno;
		wr_log_syscall("fdatasync", w->path, err);
		return -err;
	}
	return 1;
}

/* Non-empty blocks after block first: any whose 64-byte header is not zero. */
static uint32_t
sw_blocks_after(const struct wr_segment_writer *w, uint32_t first)
{
	uint32_t n = 0;
	for (uint32_t i = first + 1; i < w->num_blocks; i++)
		if (!sw_zero((const uint8_t *)sw_block_at(w, i), sizeof(struct wr_block_header)))
			n++;
	return n;
}

/*
 * Copy the whole segment, as it is on disk now, to a new file
 * <path>.quarantine-<realtime ns> beside it: O_EXCL|O_NOFOLLOW, written
 * fully, fdatasync'd, directory fsync'd. Reads go through the fd, not the
 * mapping, so an unreadable sector is -EIO here rather than SIGBUS.
 * Returns 0 with the name in out, or -errno with no copy left behind.
 */
static int
sw_quarantine_copy(const struct wr_segment_writer *w, char *out, size_t n)
{
	char dir[sizeof w->path];
	const char *slash = strrchr(w->path, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == w->path)
		strcpy(dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - w->path), w->path);

	int fd = -1, rc = 0;
	/* A clash (two recoveries in one nanosecond, a leftover) takes the next name. */
	for (int tries = 0; fd < 0 && tries < 16; tries++) {
		int len = snprintf(out, n, "%s.quarantine-%llu", w->path,
				   (unsigned long long)wr_clock_realtime_ns() + (unsigned)tries);
		if (len < 0 || (size_t)len >= n)
			return -ENAMETOOLONG;
		fd = wr_sys.open(out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
		if (fd < 0 && errno != EEXIST) {
			rc = -errno;
			wr_log_syscall("open", out, -rc);
			return rc;
		}
	}
	if (fd < 0) {
		wr_log_syscall("open", out, EEXIST);
		return -EEXIST;
	}
	const size_t chunk = (size_t)1 << 20;
	uint8_t *buf = malloc(chunk);
	if (buf == NULL)
		rc = -ENOMEM;
	for (uint64_t off = 0; rc == 0 && off < w->size;) {
		size_t len = w->size - off < chunk ? (size_t)(w->size - off) : chunk;
		ssize_t got = pread(w->fd, buf, len, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			rc = got < 0 ? -errno : -EIO;
			wr_log_syscall("read", w->path, -rc);
			break;
		}
		rc = wr_fs_pwrite_all(fd, buf, (size_t)got, (off_t)off);
		if (rc != 0)
			wr_log_syscall("write", out, -rc);
		off += (uint64_t)got;
	}
	free(buf);
	if (rc == 0 && wr_sys.fdatasync(fd) != 0) {
		rc = -errno;
		wr_log_syscall("fdatasync", out, -rc);
	}
	if (wr_sys.close(fd) != 0 && rc == 0) {
		rc = -errno;
		wr_log_syscall("close", out, -rc);
	}
	if (rc == 0)
		rc = wr_fs_sync_dir(dir);
	if (rc != 0 && wr_sys.unlink(out) != 0)
		wr_log_syscall("unlink", out, errno);
	return rc;
}

int
wr_segment_writer_open_existing(struct wr_segment_writer *w, const char *path,
				struct wr_segment_writer_metrics *metrics,
				struct wr_segment_recovery *rec)
{
	uint64_t t0 = sw_now_if(metrics);
	struct wr_segment_recovery r = { 0 };
	sw_clear(w);
	int rc;
	if (strlen(path) >= sizeof w->path) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	strcpy(w->path, path);

	w->fd = wr_sys.open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0);
	if (w->fd < 0) {
		rc = -errno;
		wr_log_syscall("open", path, -rc);
		goto out;
	}
	struct stat st;
	if (fstat(w->fd, &st) != 0) {
		rc = -errno;
		wr_log_syscall("fstat", path, -rc);
		goto out;
	}
	w->num_blocks = S_ISREG(st.st_mode) ? wr_segment_blocks_for_size((uint64_t)st.st_size) : 0;
	if (w->num_blocks == 0) {
		wr_log_error("segment %s: %s (%lld bytes)", path,
			     wr_format_fault_str(WR_FAULT_FILE_SIZE), (long long)st.st_size);
		sw_count_fault(metrics, WR_FAULT_FILE_SIZE);
		rc = -WALREC_EFORMAT;
		goto out;
	}
	w->size = (uint64_t)st.st_size;
	rc = sw_map(w, "mmap");
	if (rc != 0)
		goto out;

	struct wr_segment_header h;
	enum wr_format_fault f = wr_segment_header_check(w->base, (size_t)w->size, &h);
	if (f != WR_FAULT_NONE) {
		wr_log_error("segment %s: %s", path, wr_format_fault_str(f));
		sw_count_fault(metrics, f);
		rc = -WALREC_EFORMAT;
		goto out;
	}
	w->segment_index = h.segment_index;

	/* Walk the blocks; their checksums, not the header's counts, are the truth. */
	uint64_t prev_chained = 0, last_id = 0, first_id = 0, events = 0;
	uint32_t i = 0;
	f = WR_FAULT_EMPTY;
	for (; i < w->num_blocks; i++) {
		const struct wr_block *b = sw_block_at(w, i);
		uint64_t chained;
		f = wr_block_verify(b, i, prev_chained, last_id, &chained);
		if (f != WR_FAULT_NONE)
			break;
		if (i == 0)
			first_id = b->header.first_event_id;
		last_id = b->header.last_event_id;
		events += b->header.event_count;
		prev_chained = chained;
	}
	r.blocks_valid = i;
	r.last_event_id = last_id;
	r.append_offset = wr_block_offset(i);

	/*
	 * Cut whatever follows the last valid block: a faulty block, or events
	 * written into a block that was never sealed (its header still zero).
	 * Appending resumes in block i, which must be all zero for the slots
	 * past a future partial seal to be zero.
	 */
	if (i < w->num_blocks) {
		/*
		 * Valid-looking blocks after the bad one mean damage in the middle
		 * (bit rot, a bad sector), not a torn tail: those events may be
		 * durable and acknowledged. Save the untouched file before the
		 * cut destroys them; if it can not be saved, cut nothing.
		 */
		r.blocks_after_cut = sw_blocks_after(w, i);
		if (r.blocks_after_cut > 0) {
			rc = sw_quarantine_copy(w, r.quarantine_path, sizeof r.quarantine_path);
			if (rc != 0) {
				r.quarantine_path[0] = '\0';
				wr_log_error("segment %s: block %u is invalid (%s) and %u non-empty "
					     "blocks follow it; the original can not be saved (%s), so "
					     "nothing is cut and the segment is not opened",
					     path, i, wr_format_fault_str(f), r.blocks_after_cut,
					     walrec_strerror(rc));
				if (f != WR_FAULT_EMPTY)
					sw_count_fault(metrics, f);
				goto out;
			}
			r.quarantined = true;
			if (WR_STATS_ON && metrics)
				wr_counter_inc(&metrics->quarantine_copies);
			wr_log_error("segment %s: block %u is invalid (%s) and %u non-empty blocks "
				     "follow it; the original is saved as %s before the cut",
				     path, i, wr_format_fault_str(f), r.blocks_after_cut,
				     r.quarantine_path);
		}
		int cut = sw_cut_from(w, i);
		if (cut < 0) {
			rc = cut;
			goto out;
		}
		if (f != WR_FAULT_EMPTY || cut > 0) {
			r.tail_cut = true;
			r.cut_block = i;
			r.cut_reason = f != WR_FAULT_EMPTY ? f : WR_FAULT_TAIL;
			if (f != WR_FAULT_EMPTY)
				sw_count_fault(metrics, f);
			if (WR_STATS_ON && metrics)
				wr_counter_inc(&metrics->torn_tails_cut);
			wr_log_warn("segment %s: cut from block %u on (%s); %u valid blocks kept, "
				    "last event %llu",
				    path, i,
				    f != WR_FAULT_EMPTY ? wr_format_fault_str(f)
							: "unsealed events in an unsealed block",
				    i, (unsigned long long)last_id);
		}
	}

	bool closed = h.closed_ts_ns != 0;
	bool counts_ok = closed ? (h.block_count == i && h.event_count == events &&
				   h.first_event_id == first_id && h.last_event_id == last_id &&
				   h.last_chained_checksum == prev_chained)
				: (h.block_count == 0 && h.event_count == 0 &&
				   h.first_event_id == 0 && h.last_event_id == 0);
	if (!counts_ok) {
		wr_log_warn("segment %s: %s (header: %u blocks, %u events; found: %u blocks, "
			    "%llu events); the blocks are kept",
			    path, wr_format_fault_str(WR_FAULT_COUNTS), h.block_count,
			    h.event_count, i, (unsigned long long)events);
		sw_count_fault(metrics, WR_FAULT_COUNTS);
	}
	/*
	 * Opening for append is where appending resumes: make the header the
	 * active form again (counts 0, closed_ts_ns 0, same index and creation
	 * time) so a crash from here on leaves an active segment that recovery
	 * walks, never a "closed" header that understates the blocks. finish()
	 * writes the final header again. The first sync_sealed covers it.
	 */
	if (closed || !counts_ok) {
		struct wr_segment_header active;
		wr_segment_header_init(&active, h.segment_index, h.created_ts_ns);
		rc = wr_fs_pwrite_all(w->fd, &active, sizeof active, 0);
		if (rc != 0) {
			wr_log_syscall("pwrite", path, -rc);
			goto out;
		}
	}

	w->prev_chained = prev_chained;
	w->last_event_id = last_id;
	w->first_event_id = first_id;
	w->blocks_sealed = i;
	w->event_count = (uint32_t)events;
	w->sealed_last_id = last_id;
	sw_start_block(w, i);
	/* Recovered blocks may never have reached the disk: the first sync covers them. */
	wr_store_relaxed(&w->synced_end, 0);
	wr_store_relaxed(&w->written_last_id, last_id);
	wr_store_relaxed(&w->written_end, wr_block_offset(i));
	w->metrics = metrics;
	rc = 0;
out:
	if (rc != 0) {
		if (w->base)
			munmap(w->base, (size_t)w->size);
		if (w->fd >= 0)
			wr_sys.close(w->fd);
		sw_clear(w);
	}
	if (rec)
		*rec = r;
	if (WR_STATS_ON && metrics)
		wr_operation_record(&metrics->open_existing, rc == 0, t0, wr_clock_now_ns());
	return rc;
}
