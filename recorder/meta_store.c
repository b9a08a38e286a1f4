/* SPDX-License-Identifier: MIT */
/* MetaStore: seqlock-published progress checkpoint and its wal.meta file. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/atomics.h"
#include "lib/clock.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/metrics_out.h"
#include "lib/sys.h"
#include "recorder/meta_store.h"

/*
 * Sequence numbers: seq counts update() halves (odd while one is in
 * progress), so every completed update leaves a distinct even value.
 * dirty_seq is the even seq of the newest completed update; flushed_seq
 * the even seq of the state the last successful flush wrote. The store
 * is dirty exactly while they differ. Because flushed_seq names the
 * snapshot that was written (not "the newest update" at the end of the
 * flush), an update that lands while a flush is in progress leaves
 * dirty_seq ahead of flushed_seq: the store stays dirty.
 */

int
wr_meta_store_init(struct wr_meta_store *m, const char *dir,
		   struct wr_meta_store_metrics *metrics)
{
	if (!m || !dir || !*dir)
		return -EINVAL;
	size_t n = strlen(dir);
	if (n >= sizeof m->dir)
		return -ENAMETOOLONG;
	int rc = wr_fs_join(m->path, sizeof m->path, dir, WR_META_NAME);
	if (rc != 0)
		return rc;
	memcpy(m->dir, dir, n + 1);
	atomic_init(&m->seq, 0);
	atomic_init(&m->packed, 0);
	atomic_init(&m->last_event_id, 0);
	atomic_init(&m->dirty_seq, 0);
	atomic_init(&m->flushed_seq, 0);
	m->metrics = metrics;
	return 0;
}

/* The seqlock write; returns the even seq that now names the new state. */
static uint64_t
meta_store_publish(struct wr_meta_store *m, uint32_t segment_index, uint32_t offset,
		   uint64_t last_event_id)
{
	/* Only this thread writes seq, so a relaxed load sees our own last store. */
	uint64_t s = wr_load_relaxed(&m->seq);
	wr_store_relaxed(&m->seq, s + 1);
	/*
	 * Orders the odd seq before the data stores below. Pairs with the
	 * acquire fence in meta_store_read: a reader that saw any of the new
	 * data then re-reads seq as at least s + 1 and retries.
	 */
	wr_fence_release();
	wr_store_relaxed(&m->packed, ((uint64_t)segment_index << 32) | offset);
	wr_store_relaxed(&m->last_event_id, last_event_id);
	/*
	 * Publishes the data stores. Pairs with the acquire load of seq at
	 * the start of meta_store_read: a reader that sees s + 2 sees this
	 * update's data (or a later one's, and then retries).
	 */
	wr_store_release(&m->seq, s + 2);
	return s + 2;
}

/* The seqlock read: a consistent state and the even seq it belongs to. */
static struct wr_meta_state
meta_store_read(const struct wr_meta_store *m, uint64_t *seq_out)
{
	for (;;) {
		/* Pairs with the release store of the even seq in meta_store_publish. */
		uint64_t s1 = wr_load_acquire(&m->seq);
		if (s1 & 1) {
			wr_cpu_relax();
			continue;
		}
		uint64_t packed = wr_load_relaxed(&m->packed);
		uint64_t id = wr_load_relaxed(&m->last_event_id);
		/*
		 * Keeps the data loads above before the seq re-read below.
		 * Pairs with the release fence after the odd seq store in
		 * meta_store_publish: if either load saw a store of an update
		 * that began after s1, the re-read sees its odd (or later) seq.
		 */
		wr_fence_acquire();
		uint64_t s2 = wr_load_relaxed(&m->seq);
		if (s1 != s2) {
			wr_cpu_relax();
			continue;
		}
		if (seq_out)
			*seq_out = s1;
		return (struct wr_meta_state){ .segment_index = (uint32_t)(packed >> 32),
					       .offset = (uint32_t)packed,
					       .last_event_id = id };
	}
}

void
wr_meta_store_update(struct wr_meta_store *m, uint32_t segment_index, uint32_t offset,
		     uint64_t last_event_id)
{
	uint64_t s = meta_store_publish(m, segment_index, offset, last_event_id);
	/*
	 * The dirty marker. Release so that a thread that sees it dirty and
	 * then reads the state sees this update (pairs with the acquire load
	 * in wr_meta_store_is_dirty); the flusher does not rely on it, since
	 * it takes its snapshot through the seqlock.
	 */
	wr_store_release(&m->dirty_seq, s);
}

struct wr_meta_state
wr_meta_store_get_state(const struct wr_meta_store *m)
{
	return meta_store_read(m, NULL);
}

bool
wr_meta_store_is_dirty(const struct wr_meta_store *m)
{
	/* Pairs with the release store of dirty_seq in wr_meta_store_update. */
	uint64_t d = wr_load_acquire(&m->dirty_seq);
	/* Pairs with the release store of flushed_seq after a successful flush. */
	uint64_t f = wr_load_acquire(&m->flushed_seq);
	/*
	 * d may briefly trail f: the flusher can snapshot an update whose
	 * dirty marker is not stored yet. Reporting dirty then only costs one
	 * redundant flush; the marker store makes them equal right after.
	 */
	return d != f;
}

bool
wr_meta_store_flush_to_disk(struct wr_meta_store *m)
{
	uint64_t start = wr_clock_now_ns();
	uint64_t seq;
	struct wr_meta_state st = meta_store_read(m, &seq);
	uint8_t buf[WR_META_SIZE];
	wr_meta_encode(buf, &st);
	int rc = wr_fs_durable_replace(m->dir, WR_META_NAME, buf, sizeof buf);
	if (m->metrics) {
		wr_duration_record(&m->metrics->maintenance_meta_flush, start,
				   wr_clock_now_ns());
		if (rc != 0)
			wr_counter_inc(&m->metrics->flush_failures);
	}
	if (rc != 0)
		return false; /* durable_replace logged the failing call */
	/*
	 * The file now holds the state of update seq. Release so that a
	 * thread that sees the store clean (acquire load in is_dirty) also
	 * sees everything this flush did.
	 */
	wr_store_release(&m->flushed_seq, seq);
	return true;
}

int
wr_meta_store_load(struct wr_meta_store *m)
{
	/*
	 * O_NOFOLLOW: a symlink planted as wal.meta is refused (ELOOP), not
	 * followed. O_NONBLOCK: a FIFO in its place must not hang startup.
	 */
	int fd = wr_sys.open(m->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
	if (fd < 0) {
		int err = errno;
		if (err != ENOENT)
			wr_log_syscall("open", m->path, err);
		return -err;
	}
	int rc = 0;
	struct stat sb;
	uint8_t buf[WR_META_SIZE + 1];
	ssize_t got = 0;
	if (fstat(fd, &sb) != 0) {
		rc = -errno;
		wr_log_syscall("fstat", m->path, -rc);
		goto out;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size != WR_META_SIZE) {
		wr_log_error("%s: not a %u-byte regular file", m->path, WR_META_SIZE);
		rc = -WALREC_EFORMAT;
		goto out;
	}
	/* Ask for one byte more: a file that grew since fstat is still rejected. */
	while ((size_t)got < sizeof buf) {
		ssize_t n = pread(fd, buf + got, sizeof buf - (size_t)got, got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			wr_log_syscall("read", m->path, -rc);
			goto out;
		}
		if (n == 0)
			break;
		got += n;
	}
	if (got != WR_META_SIZE) {
		wr_log_error("%s: not a %u-byte regular file", m->path, WR_META_SIZE);
		rc = -WALREC_EFORMAT;
		goto out;
	}
	struct wr_meta_state st;
	wr_meta_decode(buf, &st);
	uint64_t s = meta_store_publish(m, st.segment_index, st.offset, st.last_event_id);
	/* The state equals the file: clean. Same pairings as update and flush. */
	wr_store_release(&m->dirty_seq, s);
	wr_store_release(&m->flushed_seq, s);
out:
	wr_sys.close(fd);
	return rc;
}

const char *
wr_meta_store_filepath(const struct wr_meta_store *m)
{
	return m->path;
}

/* ---- telemetry ------------------------------------------------------------ */

void
wr_meta_store_metrics_copy(struct wr_meta_store_metrics *dst,
			   const struct wr_meta_store_metrics *src)
{
	wr_duration_copy(&dst->maintenance_meta_flush, &src->maintenance_meta_flush);
	wr_counter_copy(&dst->flush_failures, &src->flush_failures);
}

void
wr_meta_store_metrics_emit(const struct wr_meta_store_metrics *m, struct wr_out *o)
{
	wr_out_component_begin(o, "meta_store");
	wr_out_duration(o, "maintenance_meta_flush",
			"Time to write wal.meta durably (every attempt).",
			&m->maintenance_meta_flush);
	wr_out_counter(o, "flush_failures", "wal.meta flushes that failed.",
		       &m->flush_failures);
	wr_out_component_end(o);
}

void
wr_meta_store_metrics_dump(const struct wr_meta_store_metrics *m, const char *label,
			   FILE *f)
{
	struct wr_out o;
	wr_out_begin(&o, f, WR_OUT_TEXT);
	if (label)
		fprintf(f, "%s\n", label);
	wr_meta_store_metrics_emit(m, &o);
	wr_out_end(&o);
}

void
wr_meta_store_metrics_collect(const struct wr_meta_store_metrics *m, const char *labels,
			      FILE *f)
{
	struct wr_out o;
	wr_out_begin(&o, f, WR_OUT_PROMETHEUS);
	o.labels = labels;
	wr_meta_store_metrics_emit(m, &o);
	wr_out_end(&o);
}
