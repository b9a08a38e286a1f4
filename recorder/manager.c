/* SPDX-License-Identifier: MIT */
/* Manager: the active segment, the append hot path, rotation and startup recovery. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lz4frame.h>

#include "lib/fs.h"
#include "lib/log.h"
#include "lib/metrics_out.h"
#include "lib/sys.h"
#include "recorder/manager.h"
#include "recorder/segment_reader.h"
#include "workers/meta_coordinator.h"
#include "workers/segment_maintainer.h"

static void manager_written(void *arg, struct wr_segment_writer *w, uint64_t end, uint64_t last_id);
static void manager_stage_failed(void *arg, int err);

int
wr_manager_init(struct wr_manager *m, const char *dir, const struct wr_manager_config *cfg,
		struct wr_meta_store *meta, struct wr_manager_metrics *metrics,
		struct wr_segment_writer_metrics *writer_metrics)
{
	memset(m, 0, sizeof *m);
	if (strlen(dir) >= sizeof m->dir - 64)
		return -ENAMETOOLONG;
	strcpy(m->dir, dir);
	if (cfg->prefix) {
		if (strlen(cfg->prefix) >= sizeof m->prefix)
			return -ENAMETOOLONG;
		strcpy(m->prefix, cfg->prefix);
	}
	m->num_blocks = cfg->num_blocks;
	m->meta = meta;
	m->metrics = metrics;
	(void)writer_metrics;
	int rc = wr_stage_init(&m->stage, cfg->stage_slots ? cfg->stage_slots : WR_STAGE_DEFAULT_SLOTS,
			       manager_written, manager_stage_failed, m, cfg->stage_metrics);
	if (rc != 0)
		return rc;
	pthread_mutex_init(&m->sync_lock, NULL);
	return 0;
}

void
wr_manager_attach(struct wr_manager *m, struct wr_segment_preparer *p,
		  struct wr_segment_maintainer *mt, struct wr_meta_coordinator *c)
{
	m->preparer = p;
	m->maintainer = mt;
	m->coordinator = c;
}

static const char *
manager_prefix(const struct wr_manager *m)
{
	return m->prefix[0] ? m->prefix : NULL;
}

/* dir/[prefix.]NNNNNNNN.wal[.lz4] */
static int
manager_segment_path(const struct wr_manager *m, char *out, size_t n, uint32_t index, bool cold)
{
	char name[256];
	int rc = wr_segment_name(name, sizeof name, manager_prefix(m), index, cold);
	return rc != 0 ? rc : wr_fs_join(out, n, m->dir, name);
}

/* ---- sealed position (seqlock, one writer: the owner) ------------------- */

static void
manager_publish_sealed(struct wr_manager *m, uint32_t segment, uint64_t end, uint64_t last_id)
{
	uint64_t s = wr_load_relaxed(&m->sealed_seq);
	wr_store_relaxed(&m->sealed_seq, s + 1);
	/* Orders the odd sequence before the field stores; pairs with the
	 * acquire fence in wr_manager_sealed_pos. */
	wr_fence_release();
	wr_store_relaxed(&m->sealed_segment, segment);
	wr_store_relaxed(&m->sealed_end, end);
	wr_store_relaxed(&m->sealed_last_id, last_id);
	/* Pairs with the acquire load of sealed_seq in wr_manager_sealed_pos;
	 * it also carries the writer's sealed_end/sealed_last_id stores made
	 * before it, so a reader's later sync_sealed covers `end`. */
	wr_store_release(&m->sealed_seq, s + 2);
}

struct wr_sealed_pos
wr_manager_sealed_pos(const struct wr_manager *m)
{
	struct wr_sealed_pos p;
	for (;;) {
		/* Pairs with the final release store in manager_publish_sealed. */
		uint64_t s1 = wr_load_acquire(&m->sealed_seq);
		p.segment_index = wr_load_relaxed(&m->sealed_segment);
		p.end = wr_load_relaxed(&m->sealed_end);
		p.last_id = wr_load_relaxed(&m->sealed_last_id);
		/* Pairs with the release fence in manager_publish_sealed. */
		wr_fence_acquire();
		uint64_t s2 = wr_load_relaxed(&m->sealed_seq);
		if (s1 == s2 && (s1 & 1) == 0)
			return p;
		wr_cpu_relax();
	}
}

/* A flush wrote blocks of w up to end (the stage's callback; one flusher at a time). */
static void
manager_written(void *arg, struct wr_segment_writer *w, uint64_t end, uint64_t last_id)
{
	struct wr_manager *m = arg;
	manager_publish_sealed(m, w->segment_index, end, last_id);
	/* wal.meta holds a 32-bit offset: past 4 GiB into a segment it keeps
	 * the last position that fits (a true, older sealed point). */
	if (end <= UINT32_MAX)
		wr_meta_store_update(m->meta, w->segment_index, (uint32_t)end, last_id);
}

/* A flush failed: the blocks from there on never reach the file. */
static void
manager_stage_failed(void *arg, int err)
{
	wr_manager_latch(arg, err);
}

int
wr_manager_flush(struct wr_manager *m)
{
	int rc = wr_stage_flush(&m->stage);
	return rc < 0 ? rc : 0;
}

int
wr_manager_seal_now(struct wr_manager *m)
{
	if (m->active == NULL)
		return 0;
	return wr_segment_writer_seal(&m->active->writer);
}

void
wr_manager_latch(struct wr_manager *m, int err)
{
	int expected = 0;
	if (err == 0)
		err = -EIO;
	/* Release: pairs with the acquire in wr_manager_latched. First error wins. */
	if (atomic_compare_exchange_strong_explicit(&m->latched_err, &expected, err,
						    memory_order_release, memory_order_relaxed))
		wr_log_error("recorder %s stopped after a failed write or sync: %s", m->dir,
			     walrec_strerror(err));
	atomic_fetch_or_explicit(&m->attention, WR_ATTN_LATCHED, memory_order_release);
	/* Waiters must learn now that their events will never be durable. */
	if (m->coordinator)
		wr_meta_coordinator_wake_waiters(m->coordinator);
}

/* ---- append slow path and rotation -------------------------------------- */

/*
 * Rotation: the full writer is finished (final header, no I/O), the next
 * prepared one becomes active, and the old one goes to the maintainer,
 * which syncs and closes it. handled_last_id is published before the new
 * active pointer so that a coordinator that sees the new writer also sees
 * that an older segment may still await its sync (meta_coordinator.c).
 */
static int
manager_rotate(struct wr_manager *m)
{
	uint64_t t0 = wr_clock_now_ns();
	struct wr_segment_slot *next = NULL;
	bool waited = false;
	int rc = wr_segment_preparer_take(m->preparer, &next, &waited);
	if (waited)
		wr_counter_inc(&m->metrics->rotation_waits);
	if (rc != 0) {
		wr_counter_inc(&m->metrics->backpressure);
		return rc;
	}
	struct wr_segment_slot *old = m->active;
	wr_segment_writer_finish(&old->writer);
	wr_segment_writer_start(&next->writer, &m->stage);
	uint64_t old_last = old->writer.last_event_id;
	if (old_last > wr_load_relaxed(&m->handed_last_id))
		/* Pairs with the acquire load in the coordinator's round. */
		wr_store_release(&m->handed_last_id, old_last);
	m->active = next;
	/* Pairs with the acquire load of active_pub under sync_lock in the coordinator. */
	wr_store_release(&m->active_pub, next);
	uint64_t t1 = wr_clock_now_ns();
	wr_segment_maintainer_push(m->maintainer, old);
	uint64_t t2 = wr_clock_now_ns();
	wr_duration_record(&m->metrics->work_planning, t1, t2);
	wr_duration_record(&m->metrics->segment_rotation, t0, t2);
	return 0;
}

int
wr_manager_handle_attention(struct wr_manager *m, uint32_t attn)
{
	if (attn & WR_ATTN_LATCHED)
		return -WALREC_ELATCHED;
	if (attn & WR_ATTN_CLOSED)
		return -WALREC_ECLOSED;
	int sealed = 0;
	if (attn & WR_ATTN_SEAL) {
		/* Acquire: pairs with the coordinator's release fetch_or; clearing
		 * before sealing means a request that arrives later is not lost. */
		uint32_t a = atomic_fetch_and_explicit(&m->attention, ~(WR_ATTN_SEAL | WR_ATTN_WAKE),
						       memory_order_acq_rel);
		sealed = wr_manager_seal_now(m);
		if (sealed > 0)
			wr_counter_inc(&m->metrics->partial_seals);
		if (a & WR_ATTN_WAKE)
			wr_meta_coordinator_kick(m->coordinator);
	}
	return sealed;
}

int
wr_manager_append_slow(struct wr_manager *m, const walrec_event_t *ev, uint64_t *assigned_id)
{
	uint32_t attn = wr_load_relaxed(&m->attention);
	if (attn != 0) {
		int rc = wr_manager_handle_attention(m, attn);
		if (rc < 0)
			return rc;
	}
	bool timed = WR_STATS_ON && (m->sample & 1023u) == 0;
	uint64_t t0 = timed ? wr_clock_now_ns() : 0;
	walrec_event_t e = *ev;
	e.event_id = m->last_id + 1;
	if (e.timestamp_ns == 0)
		e.timestamp_ns = wr_clock_realtime_ns();
	for (;;) {
		int rc = wr_segment_writer_append(&m->active->writer, &e);
		if (rc == 0)
			break;
		if (rc == -EAGAIN) {
			/* Every stage buffer waits for the flusher: back-pressure. */
			wr_counter_inc(&m->metrics->stage_waits);
			if (wr_stage_wait_space(&m->stage) != 0)
				return -WALREC_ELATCHED; /* the flusher's failure latched */
			continue;
		}
		if (rc != -ENOSPC || !wr_segment_writer_full(&m->active->writer))
			return rc;
		rc = manager_rotate(m);
		if (rc != 0)
			return rc;
	}
	m->last_id = e.event_id;
	wr_store_relaxed(&m->appended_id, e.event_id); /* relaxed: a hint, see fast path */
	if (assigned_id)
		*assigned_id = e.event_id;
	/* The coordinator parked with nothing pending: there is now. Done after
	 * the append so that the woken coordinator sees the new appended_id. */
	if (attn & WR_ATTN_SLEEPING) {
		atomic_fetch_and_explicit(&m->attention, ~WR_ATTN_SLEEPING, memory_order_relaxed);
		wr_meta_coordinator_kick(m->coordinator);
	}
	if (timed)
		wr_histogram_record(&m->metrics->append_event, wr_clock_now_ns() - t0);
	return 0;
}

int
wr_manager_close_active(struct wr_manager *m)
{
	if (m->active == NULL)
		return 0;
	wr_manager_seal_now(m);
	uint64_t t0 = wr_clock_now_ns();
	/* Writes out everything staged (older segments' blocks first), the
	 * final header, then fdatasync. */
	int rc = wr_segment_writer_close(&m->active->writer, true);
	wr_duration_record(&m->metrics->persist_current_segment, t0, wr_clock_now_ns());
	if (rc != 0)
		wr_manager_latch(m, rc);
	wr_store_release(&m->active_pub, NULL);
	wr_segment_slot_free(m->active);
	m->active = NULL;
	return rc;
}

void
wr_manager_fini(struct wr_manager *m)
{
	if (m->active) {
		wr_segment_writer_close(&m->active->writer, false);
		wr_segment_slot_free(m->active);
		m->active = NULL;
	}
	wr_stage_fini(&m->stage);
	pthread_mutex_destroy(&m->sync_lock);
}

/* ---- recovery ------------------------------------------------------------ */

struct manager_seglist {
	uint32_t *v;
	size_t n, cap;
};

static int
seglist_push(struct manager_seglist *l, uint32_t x)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		uint32_t *v = realloc(l->v, cap * sizeof *v);
		if (v == NULL)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = x;
	return 0;
}

static int
seglist_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Our segment files (the configured prefix only), sorted by index. */
static int
manager_scan(struct wr_manager *m, struct manager_seglist *hot, struct manager_seglist *cold)
{
	DIR *d = opendir(m->dir);
	if (d == NULL) {
		int err = errno;
		wr_log_syscall("opendir", m->dir, err);
		return -err;
	}
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		uint32_t index;
		bool is_cold;
		char expect[256];
		if (wr_segment_name_parse(de->d_name, &index, &is_cold) != 1)
			continue;
		if (wr_segment_name(expect, sizeof expect, manager_prefix(m), index, is_cold) != 0 ||
		    strcmp(expect, de->d_name) != 0)
			continue; /* another prefix: not ours */
		rc = seglist_push(is_cold ? cold : hot, index);
	}
	closedir(d);
	if (hot->n > 1)
		qsort(hot->v, hot->n, sizeof *hot->v, seglist_cmp);
	if (cold->n > 1)
		qsort(cold->v, cold->n, sizeof *cold->v, seglist_cmp);
	return rc;
}

/*
 * True when path holds no byte but zeros (or nothing): a segment the
 * preparer was creating when the process died, before its header was
 * written. Removing it loses nothing; anything else is quarantined.
 */
static bool
manager_file_is_blank(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	static const uint8_t zeros[65536];
	uint8_t buf[65536];
	bool blank = true;
	ssize_t n;
	while (blank && (n = read(fd, buf, sizeof buf)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			blank = false;
			break;
		}
		blank = memcmp(buf, zeros, (size_t)n) == 0;
	}
	close(fd);
	return blank;
}

/* Rename an unreadable segment aside; never delete it. 0 or -errno. */
static int
manager_quarantine(struct wr_manager *m, const char *path, const char *why)
{
	char dst[4200];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char stamp[64];
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
	for (int n = 0; n < 1000; n++) {
		int len = n == 0 ? snprintf(dst, sizeof dst, "%s.quarantine-%s.%09ldZ", path, stamp,
					    ts.tv_nsec)
				 : snprintf(dst, sizeof dst, "%s.quarantine-%s.%09ldZ-%d", path,
					    stamp, ts.tv_nsec, n);
		if (len < 0 || (size_t)len >= sizeof dst)
			return -ENAMETOOLONG;
		if (access(dst, F_OK) != 0)
			break;
	}
	if (wr_sys.rename(path, dst) != 0) {
		int err = errno;
		wr_log_syscall("rename", path, err);
		return -err;
	}
	wr_counter_inc(&m->metrics->quarantined);
	wr_log_warn("segment %s can not be opened (%s): quarantined as %s", path, why, dst);
	return 0;
}

/*
 * Check wal.meta's state against the segment it names: the file exists
 * with a segment size, the offset is a block boundary inside it, and the
 * block before the offset is a valid block ending at last_event_id.
 * Returns true, or false with the reason in why; *expected says the
 * disagreement is what a crash normally leaves (the segment was compressed
 * after the last wal.meta update), not damage.
 */
static bool
manager_meta_check(struct wr_manager *m, const struct wr_meta_state *st, char *why, size_t n,
		   bool *expected)
{
	*expected = false;
	char path[4200];
	if (manager_segment_path(m, path, sizeof path, st->segment_index, false) != 0) {
		snprintf(why, n, "names segment %u, whose path is too long", st->segment_index);
		return false;
	}
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		char cold[4200];
		if (err == ENOENT &&
		    manager_segment_path(m, cold, sizeof cold, st->segment_index, true) == 0 &&
		    access(cold, F_OK) == 0) {
			*expected = true;
			snprintf(why, n, "names segment %u, compressed since then", st->segment_index);
		} else {
			snprintf(why, n, "names segment %u, which does not exist (%s)",
				 st->segment_index, strerror(err));
		}
		return false;
	}
	bool ok = false;
	struct stat sb;
	struct wr_block_header h;
	uint64_t off = st->offset;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    wr_segment_blocks_for_size((uint64_t)sb.st_size) == 0) {
		snprintf(why, n, "names segment %u, which is not a segment file", st->segment_index);
	} else if (off < wr_block_offset(1) || (off - WR_SEGMENT_HEADER_SIZE) % WR_BLOCK_SIZE != 0) {
		snprintf(why, n, "offset %" PRIu64 " is not the end of a block", off);
	} else if (off > (uint64_t)sb.st_size) {
		snprintf(why, n, "offset %" PRIu64 " is past the end of segment %u (%lld bytes)", off,
			 st->segment_index, (long long)sb.st_size);
	} else if (pread(fd, &h, sizeof h, (off_t)(off - WR_BLOCK_SIZE)) != (ssize_t)sizeof h) {
		snprintf(why, n, "the block before offset %" PRIu64 " can not be read", off);
	} else if (h.checksum != wr_block_header_checksum(&h) ||
		   h.block_index != (off - WR_SEGMENT_HEADER_SIZE) / WR_BLOCK_SIZE - 1 ||
		   h.event_count == 0 || h.event_count > WR_EVENTS_PER_BLOCK) {
		snprintf(why, n, "the block before offset %" PRIu64 " in segment %u is not valid",
			 off, st->segment_index);
	} else if (h.last_event_id != st->last_event_id) {
		snprintf(why, n, "the block before offset %" PRIu64 " ends at event %" PRIu64
			 ", not %" PRIu64, off, h.last_event_id, st->last_event_id);
	} else {
		ok = true;
	}
	close(fd);
	return ok;
}

/*
 * The last event id in a cold segment: its first 64 decompressed bytes are
 * the closed segment header. 0 when it can not be read.
 */
static uint64_t
manager_cold_last_id(const char *path)
{
	uint64_t last = 0;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	LZ4F_dctx *dctx = NULL;
	if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION))) {
		close(fd);
		return 0;
	}
	uint8_t in[65536], out[WR_SEGMENT_HEADER_SIZE];
	size_t have = 0;
	ssize_t got;
	while (have < sizeof out && (got = read(fd, in, sizeof in)) > 0) {
		size_t pos = 0;
		while (pos < (size_t)got && have < sizeof out) {
			size_t src = (size_t)got - pos, dst = sizeof out - have;
			size_t r = LZ4F_decompress(dctx, out + have, &dst, in + pos, &src, NULL);
			if (LZ4F_isError(r))
				goto done;
			pos += src;
			have += dst;
			if (r == 0)
				break;
		}
	}
	struct wr_segment_header h;
	if (have == sizeof out && wr_segment_header_check(out, sizeof out, &h) == WR_FAULT_NONE)
		last = h.last_event_id;
done:
	LZ4F_freeDecompressionContext(dctx);
	close(fd);
	return last;
}

/* fsync a closed segment a crashed process may have left in the page cache only. */
static int
manager_sync_file(const char *path)
{
	int fd = wr_sys.open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd < 0) {
		int err = errno;
		wr_log_syscall("open", path, err);
		return -err;
	}
	int rc = 0;
	if (wr_sys.fdatasync(fd) != 0) {
		rc = -errno;
		wr_log_syscall("fdatasync", path, -rc);
	}
	wr_sys.close(fd);
	return rc;
}

/*
 * A segment older than the one appending resumes in, that wal.meta does not
 * vouch for. After a power loss (not after a process crash) its tail may be
 * torn while a newer segment's blocks reached the disk: pages are written
 * back in any order until a sync. Verify it fully; a segment that verifies
 * and was closed is synced as it is; one that does not is cut after its
 * last valid block like the last segment (the original copied aside first
 * when valid blocks follow the damage) and closed again with a correct
 * header; one without a valid header is removed if blank, else
 * quarantined. Events past a cut were never reported durable: every
 * durable event is in a segment wal.meta vouches for or before one that
 * was synced, so what is cut here had not reached stable storage whole.
 */
static int
manager_repair_older(struct wr_manager *m, const char *path, struct wr_segment_writer_metrics *wm)
{
	struct wr_segment_reader rd;
	int rc = wr_segment_reader_open(&rd, path, WR_SEGMENT_READER_HOT);
	bool sound = rc == 0 && wr_segment_reader_status(&rd) == 0 && rd.header.closed_ts_ns != 0;
	wr_segment_reader_close(&rd);
	if (rc == -WALREC_EFORMAT) {
		if (manager_file_is_blank(path) && wr_sys.unlink(path) == 0) {
			wr_log_info("removed %s: all zero", path);
			return 0;
		}
		return manager_quarantine(m, path, "no valid segment header or size");
	}
	if (rc != 0)
		return rc;
	if (sound)
		return manager_sync_file(path);
	struct wr_segment_slot *s = wr_segment_slot_alloc();
	if (s == NULL)
		return -ENOMEM;
	struct wr_segment_recovery r;
	rc = wr_segment_writer_open_existing(&s->writer, path, wm, &r);
	if (rc == 0) {
		if (r.tail_cut)
			wr_counter_inc(&m->metrics->torn_tails);
		wr_log_warn("recovery: segment %s was not whole (a torn tail after a power loss); "
			    "%u valid blocks kept, closed again", path, r.blocks_valid);
		rc = wr_segment_writer_close(&s->writer, true);
	}
	wr_segment_slot_free(s);
	return rc;
}

int
wr_manager_recover(struct wr_manager *m, struct wr_segment_writer_metrics *wm)
{
	uint64_t t0 = wr_clock_now_ns();
	struct manager_seglist hot = { 0 }, cold = { 0 };
	struct wr_segment_slot **empties = NULL;
	size_t n_empty = 0;
	struct wr_segment_slot *found = NULL;
	char path[4200];

	int rc = wr_fs_mkdir(m->dir);
	if (rc != 0) {
		wr_log_syscall("mkdir", m->dir, -rc);
		goto out;
	}
	rc = manager_scan(m, &hot, &cold);
	if (rc != 0)
		goto out;
	uint32_t max_index = 0;
	if (hot.n)
		max_index = hot.v[hot.n - 1];
	if (cold.n && cold.v[cold.n - 1] > max_index)
		max_index = cold.v[cold.n - 1];

	/* wal.meta: trusted only after it agrees with the segment it names. */
	struct wr_meta_state ms = { 0 };
	bool meta_ok = false, expected = false;
	char why[512] = "";
	int lrc = wr_meta_store_load(m->meta);
	if (lrc == -ENOENT)
		snprintf(why, sizeof why, "is missing");
	else if (lrc == -WALREC_EFORMAT)
		snprintf(why, sizeof why, "is not a 16-byte wal.meta file");
	else if (lrc < 0)
		snprintf(why, sizeof why, "can not be read (%s)", walrec_strerror(lrc));
	else {
		ms = wr_meta_store_get_state(m->meta);
		meta_ok = manager_meta_check(m, &ms, why, sizeof why, &expected);
	}
	bool fresh = hot.n == 0 && cold.n == 0;
	if (!meta_ok && expected)
		wr_log_info("%s/wal.meta %s; finding the last segment by scanning", m->dir, why);
	else if (!meta_ok && !(fresh && lrc == -ENOENT))
		wr_log_warn("%s/wal.meta %s; recovering by scanning the segments", m->dir, why);

	/* The last segment: newest first, the first with a valid header and data. */
	empties = calloc(hot.n + 1, sizeof *empties);
	if (empties == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t k = hot.n; k-- > 0 && found == NULL;) {
		uint32_t idx = hot.v[k];
		rc = manager_segment_path(m, path, sizeof path, idx, false);
		if (rc != 0)
			goto out;
		struct wr_segment_slot *s = wr_segment_slot_alloc();
		if (s == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		struct wr_segment_recovery r;
		rc = wr_segment_writer_open_existing(&s->writer, path, wm, &r);
		if (rc == -WALREC_EFORMAT) {
			wr_segment_slot_free(s);
			if (manager_file_is_blank(path) && wr_sys.unlink(path) == 0) {
				wr_log_info("removed %s: an unfinished prepared segment (all zero)", path);
				continue;
			}
			rc = manager_quarantine(m, path, "no valid segment header or size");
			if (rc != 0)
				goto out;
			continue;
		}
		if (rc != 0) {
			/*
			 * Not a format problem: an I/O error, or damage in the middle
			 * whose original could not be saved before a cut. Refuse to
			 * open rather than cut (or skip past) events that may be
			 * durable; the file is left as it was.
			 */
			wr_log_error("recovery: segment %s can not be reopened (%s); the recorder "
				     "does not open and the file is left as it was",
				     path, walrec_strerror(rc));
			wr_segment_slot_free(s);
			goto out;
		}
		if (r.quarantined)
			wr_log_warn("recovery: segment %s was damaged before its end; the original "
				    "is kept as %s", path, r.quarantine_path);
		if (s->writer.segment_index != idx)
			wr_log_warn("segment %s: header says index %u", path, s->writer.segment_index);
		if (r.tail_cut)
			wr_counter_inc(&m->metrics->torn_tails);
		if (r.blocks_valid == 0)
			empties[n_empty++] = s;
		else
			found = s;
	}
	rc = 0;

	uint64_t last_id = meta_ok ? ms.last_event_id : 0;
	if (found) {
		/* Segments newer than the last one with data were prepared and never
		 * used: no event is in them. */
		for (size_t k = 0; k < n_empty; k++) {
			struct wr_segment_slot *s = empties[k];
			char p[sizeof s->writer.path];
			strcpy(p, s->writer.path);
			wr_segment_writer_close(&s->writer, false);
			wr_segment_slot_free(s);
			empties[k] = NULL;
			if (wr_sys.unlink(p) == 0)
				wr_log_info("removed %s: a prepared segment that holds no event", p);
			else
				wr_log_syscall("unlink", p, errno);
		}
		n_empty = 0;
		if (found->writer.last_event_id > last_id)
			last_id = found->writer.last_event_id;
	} else {
		/* No hot data: continue in the oldest empty segment (if any), after
		 * the newest cold segment's last event. */
		if (n_empty > 0) {
			found = empties[n_empty - 1];
			empties[--n_empty] = NULL;
			for (size_t k = 0; k < n_empty; k++) {
				struct wr_segment_slot *s = empties[k];
				char p[sizeof s->writer.path];
				strcpy(p, s->writer.path);
				wr_segment_writer_close(&s->writer, false);
				wr_segment_slot_free(s);
				empties[k] = NULL;
				if (wr_sys.unlink(p) != 0)
					wr_log_syscall("unlink", p, errno);
			}
			n_empty = 0;
		}
		if (cold.n > 0 && manager_segment_path(m, path, sizeof path, cold.v[cold.n - 1],
						       true) == 0) {
			uint64_t c = manager_cold_last_id(path);
			if (c > last_id)
				last_id = c;
		}
		if (found == NULL) {
			found = wr_segment_slot_alloc();
			if (found == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			rc = wr_segment_writer_open_new(&found->writer, m->dir, manager_prefix(m),
							max_index + 1, m->num_blocks, wm, NULL);
			if (rc != 0) {
				wr_segment_slot_free(found);
				found = NULL;
				goto out;
			}
			max_index++;
		}
		/* ids continue after the last sealed event, even in an empty segment */
		found->writer.last_event_id = last_id;
	}
	if (meta_ok && ms.segment_index != found->writer.segment_index)
		wr_log_info("%s/wal.meta names segment %u; continuing in newer segment %u", m->dir,
			    ms.segment_index, found->writer.segment_index);

	/*
	 * A crashed process may have left closed segments and the active one
	 * in the page cache only: make them durable before anything reports
	 * them durable or wal.meta names them. Segments before the one a
	 * checked wal.meta names were whole on disk when it was written; the
	 * others are verified and repaired if a power loss tore them.
	 */
	for (size_t k = 0; k < hot.n; k++) {
		if (hot.v[k] >= found->writer.segment_index)
			break;
		if (manager_segment_path(m, path, sizeof path, hot.v[k], false) != 0 ||
		    access(path, F_OK) != 0)
			continue;
		if (meta_ok && hot.v[k] < ms.segment_index)
			rc = manager_sync_file(path);
		else
			rc = manager_repair_older(m, path, wm);
		if (rc != 0)
			goto out;
	}
	rc = wr_segment_writer_sync_sealed(&found->writer);
	/* The names too: a crashed process may have written into segments
	 * whose names no fsync had covered yet (segment_preparer.c). */
	if (rc == 0)
		rc = wr_fs_sync_dir(m->dir);
	if (rc != 0)
		goto out;

	m->active = found;
	found = NULL;
	m->last_id = last_id;
	m->first_id_at_open = last_id;
	wr_store_relaxed(&m->appended_id, last_id);
	struct wr_segment_writer *w = &m->active->writer;
	if (w->blocks_sealed > 0) {
		uint64_t end;
		uint64_t last = wr_segment_writer_written(w, &end);
		manager_written(m, w, end, last);
	} else {
		/* Nothing sealed here yet: the sealed position is "everything up to
		 * last_id", with no block to name in wal.meta. */
		manager_publish_sealed(m, w->segment_index, WR_SEGMENT_HEADER_SIZE, last_id);
	}
	wr_segment_writer_start(w, &m->stage);
	wr_store_release(&m->active_pub, m->active);
	m->active_index_at_open = w->segment_index;
	m->next_index = (max_index > w->segment_index ? max_index : w->segment_index) + 1;
	wr_log_info("recorder %s: continuing in segment %u after event %" PRIu64 " (next segment %u)",
		    m->dir, w->segment_index, last_id, m->next_index);
out:
	if (found) {
		wr_segment_writer_close(&found->writer, false);
		wr_segment_slot_free(found);
	}
	for (size_t k = 0; empties && k < n_empty; k++) {
		if (empties[k]) {
			wr_segment_writer_close(&empties[k]->writer, false);
			wr_segment_slot_free(empties[k]);
		}
	}
	free(empties);
	free(hot.v);
	free(cold.v);
	wr_operation_record(&m->metrics->init_active_segment, rc == 0, t0, wr_clock_now_ns());
	return rc;
}

/* ---- telemetry ------------------------------------------------------------ */

void
wr_manager_metrics_copy(struct wr_manager_metrics *dst, const struct wr_manager_metrics *src)
{
	wr_operation_copy(&dst->init_active_segment, &src->init_active_segment);
	wr_histogram_copy(&dst->append_event, &src->append_event);
	wr_duration_copy(&dst->segment_rotation, &src->segment_rotation);
	wr_counter_copy(&dst->rotation_waits, &src->rotation_waits);
	wr_duration_copy(&dst->work_planning, &src->work_planning);
	wr_duration_copy(&dst->persist_current_segment, &src->persist_current_segment);
	wr_counter_copy(&dst->partial_seals, &src->partial_seals);
	wr_counter_copy(&dst->backpressure, &src->backpressure);
	wr_counter_copy(&dst->stage_waits, &src->stage_waits);
	wr_counter_copy(&dst->quarantined, &src->quarantined);
	wr_counter_copy(&dst->torn_tails, &src->torn_tails);
	wr_gauge_copy(&dst->hot_segments, &src->hot_segments);
	wr_gauge_copy(&dst->cold_segments, &src->cold_segments);
}

void
wr_manager_metrics_emit(const struct wr_manager_metrics *m, uint64_t events_appended,
			struct wr_out *o)
{
	wr_out_component_begin(o, "manager");
	wr_out_operation(o, "init_active_segment", "Recovery and opening of the active segment.",
			 &m->init_active_segment);
	wr_out_value(o, "events_appended", "Events appended since open.", true, events_appended);
	wr_out_histogram(o, "append_event", "Append latency, one append in 1024 timed.",
			 &m->append_event);
	wr_out_duration(o, "segment_rotation", "Finishing a segment and switching to the next.",
			&m->segment_rotation);
	wr_out_counter(o, "rotation_waits", "Rotations that waited for a prepared segment.",
		       &m->rotation_waits);
	wr_out_duration(o, "work_planning", "Handing a finished segment to the maintainer.",
			&m->work_planning);
	wr_out_duration(o, "persist_current_segment", "Closing the active segment with sync.",
			&m->persist_current_segment);
	wr_out_counter(o, "partial_seals", "Partial blocks sealed on request.", &m->partial_seals);
	wr_out_counter(o, "backpressure", "Appends refused because no next segment could be made.",
		       &m->backpressure);
	wr_out_counter(o, "stage_waits", "Appends that waited for the flusher to free a buffer.",
		       &m->stage_waits);
	wr_out_counter(o, "quarantined", "Segments renamed aside at recovery.", &m->quarantined);
	wr_out_counter(o, "torn_tails", "Torn tails cut at recovery.", &m->torn_tails);
	wr_out_gauge(o, "hot_segments", "Closed uncompressed segments.", &m->hot_segments);
	wr_out_gauge(o, "cold_segments", "Compressed segments.", &m->cold_segments);
	wr_out_component_end(o);
}
