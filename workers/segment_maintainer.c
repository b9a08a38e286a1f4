/* SPDX-License-Identifier: MIT */
/* SegmentMaintainer: closes finished segments with sync, compresses and retires old ones. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lz4frame.h>

#include "lib/clock.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/metrics_out.h"
#include "lib/sys.h"
#include "lib/thread.h"
#include "recorder/manager.h"
#include "workers/meta_coordinator.h"
#include "workers/segment_maintainer.h"

/* Idle sleep: 1 ms doubling to 1 s while there is nothing to do. */
#define MAINT_IDLE_MIN_NS 1000000ull
#define MAINT_IDLE_MAX_NS 1000000000ull
/* After a failed compression, wait this long before trying again. */
#define MAINT_RETRY_NS 1000000000ull
#define MAINT_CHUNK (1u << 20)

static int
list_push(struct wr_index_list *l, uint32_t x)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		uint32_t *v = realloc(l->v, cap * sizeof *v);
		if (v == NULL)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	/* Keep the list sorted (oldest first); appends are almost always at the end. */
	size_t i = l->n;
	while (i > 0 && l->v[i - 1] > x)
		i--;
	if (i > 0 && l->v[i - 1] == x)
		return 0; /* already listed */
	if (l->n > i)
		memmove(&l->v[i + 1], &l->v[i], (l->n - i) * sizeof *l->v);
	l->v[i] = x;
	l->n++;
	return 0;
}

static void
list_pop_front(struct wr_index_list *l)
{
	memmove(&l->v[0], &l->v[1], (l->n - 1) * sizeof *l->v);
	l->n--;
}

static bool
list_has(const struct wr_index_list *l, uint32_t x)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] == x)
			return true;
	return false;
}

int
wr_segment_maintainer_init(struct wr_segment_maintainer *mt, const char *dir,
			   const char *prefix, uint32_t max_hot, uint32_t max_cold,
			   bool compression, struct wr_manager *manager,
			   struct wr_meta_coordinator *coordinator,
			   struct wr_segment_maintainer_metrics *metrics,
			   wr_gauge_t *hot_gauge, wr_gauge_t *cold_gauge)
{
	memset(mt, 0, sizeof *mt);
	if (strlen(dir) >= sizeof mt->dir - 64 || (prefix && strlen(prefix) >= sizeof mt->prefix))
		return -ENAMETOOLONG;
	strcpy(mt->dir, dir);
	if (prefix)
		strcpy(mt->prefix, prefix);
	mt->max_hot = max_hot;
	mt->max_cold = max_cold;
	mt->compression = compression;
	mt->manager = manager;
	mt->coordinator = coordinator;
	mt->metrics = metrics;
	mt->hot_gauge = hot_gauge;
	mt->cold_gauge = cold_gauge;
	wr_gauge_set(&metrics->max_hot_segments, max_hot);
	wr_gauge_set(&metrics->max_cold_segments, max_cold);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&mt->lock, NULL);
	pthread_cond_init(&mt->wake, &ca);
	pthread_condattr_destroy(&ca);
	return 0;
}

static const char *
maint_prefix(const struct wr_segment_maintainer *mt)
{
	return mt->prefix[0] ? mt->prefix : NULL;
}

static int
maint_name(const struct wr_segment_maintainer *mt, char *out, size_t n, uint32_t index, bool cold)
{
	return wr_segment_name(out, n, maint_prefix(mt), index, cold);
}

static int
maint_path(const struct wr_segment_maintainer *mt, char *out, size_t n, uint32_t index, bool cold)
{
	char name[256];
	int rc = maint_name(mt, name, sizeof name, index, cold);
	return rc != 0 ? rc : wr_fs_join(out, n, mt->dir, name);
}

static void
maint_gauges(struct wr_segment_maintainer *mt)
{
	wr_gauge_set(mt->hot_gauge, (int64_t)mt->hot.n);
	wr_gauge_set(mt->cold_gauge, (int64_t)mt->cold.n);
}

/* ---- compression ---------------------------------------------------------- */

int
wr_segment_compress_file(const char *dir, const char *src, const char *dst,
			 uint64_t *in_bytes, uint64_t *out_bytes)
{
	char spath[4200], dpath[4200], tpath[4300];
	if (wr_fs_join(spath, sizeof spath, dir, src) != 0 ||
	    wr_fs_join(dpath, sizeof dpath, dir, dst) != 0 ||
	    snprintf(tpath, sizeof tpath, "%s.tmp", dpath) >= (int)sizeof tpath)
		return -ENAMETOOLONG;
	*in_bytes = *out_bytes = 0;

	int in = wr_sys.open(spath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (in < 0) {
		int err = errno;
		wr_log_syscall("open", spath, err);
		return -err;
	}
	int out = wr_sys.open(tpath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (out < 0) {
		int err = errno;
		wr_log_syscall("open", tpath, err);
		wr_sys.close(in);
		return -err;
	}
	int rc = 0;
	LZ4F_cctx *cctx = NULL;
	LZ4F_preferences_t prefs;
	memset(&prefs, 0, sizeof prefs);
	prefs.frameInfo.blockSizeID = LZ4F_max1MB;
	prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
	size_t cap = LZ4F_compressBound(MAINT_CHUNK, &prefs) + LZ4F_HEADER_SIZE_MAX;
	uint8_t *ibuf = malloc(MAINT_CHUNK);
	uint8_t *obuf = malloc(cap);
	off_t opos = 0;
	if (ibuf == NULL || obuf == NULL ||
	    LZ4F_isError(LZ4F_createCompressionContext(&cctx, LZ4F_VERSION))) {
		rc = -ENOMEM;
		goto out;
	}
	size_t n = LZ4F_compressBegin(cctx, obuf, cap, &prefs);
	if (LZ4F_isError(n)) {
		rc = -EIO;
		goto out;
	}
	for (;;) {
		if (n > 0) {
			rc = wr_fs_pwrite_all(out, obuf, n, opos);
			if (rc != 0) {
				wr_log_syscall("write", tpath, -rc);
				goto out;
			}
			opos += (off_t)n;
		}
		ssize_t got = read(in, ibuf, MAINT_CHUNK);
		if (got < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (got < 0) {
			rc = -errno;
			wr_log_syscall("read", spath, -rc);
			goto out;
		}
		if (got == 0)
			break;
		*in_bytes += (uint64_t)got;
		n = LZ4F_compressUpdate(cctx, obuf, cap, ibuf, (size_t)got, NULL);
		if (LZ4F_isError(n)) {
			rc = -EIO;
			goto out;
		}
	}
	n = LZ4F_compressEnd(cctx, obuf, cap, NULL);
	if (LZ4F_isError(n)) {
		rc = -EIO;
		goto out;
	}
	rc = wr_fs_pwrite_all(out, obuf, n, opos);
	if (rc != 0) {
		wr_log_syscall("write", tpath, -rc);
		goto out;
	}
	opos += (off_t)n;
	*out_bytes = (uint64_t)opos;
	if (wr_sys.fdatasync(out) != 0) {
		rc = -errno;
		wr_log_syscall("fdatasync", tpath, -rc);
	}
out:
	LZ4F_freeCompressionContext(cctx);
	free(ibuf);
	free(obuf);
	wr_sys.close(in);
	if (wr_sys.close(out) != 0 && rc == 0) {
		rc = -errno;
		wr_log_syscall("close", tpath, -rc);
	}
	if (rc == 0 && wr_sys.rename(tpath, dpath) != 0) {
		rc = -errno;
		wr_log_syscall("rename", tpath, -rc);
	}
	if (rc != 0) {
		wr_sys.unlink(tpath);
		return rc;
	}
	return wr_fs_sync_dir(dir);
}

/* Unlink dir/name and make the removal durable. 0 or -errno. */
static int
maint_unlink(struct wr_segment_maintainer *mt, const char *path)
{
	if (wr_sys.unlink(path) != 0) {
		int err = errno;
		wr_log_syscall("unlink", path, err);
		return -err;
	}
	return wr_fs_sync_dir(mt->dir);
}

/*
 * One retention step, if the limits ask for one. Returns true when it did
 * something (the caller loops), false when within limits or backing off.
 */
static bool
maint_retention_step(struct wr_segment_maintainer *mt)
{
	uint64_t now = wr_clock_now_ns();
	/*
	 * Deletion first: it is cheap, and if compression falls behind the
	 * appends (or keeps failing), hot stays above its limit for good and
	 * max_cold must still hold.
	 */
	if (mt->max_cold != 0 && mt->cold.n > mt->max_cold && now >= mt->retry_at_ns) {
		char path[4200];
		if (maint_path(mt, path, sizeof path, mt->cold.v[0], true) != 0)
			return false;
		int rc = maint_unlink(mt, path);
		wr_operation_record(&mt->metrics->deletion, rc == 0, now, wr_clock_now_ns());
		if (rc != 0) {
			mt->retry_at_ns = wr_clock_now_ns() + MAINT_RETRY_NS;
			return false;
		}
		wr_log_debug("retention: deleted %s (max_cold_segments %u)", path, mt->max_cold);
		list_pop_front(&mt->cold);
		wr_duration_record(&mt->metrics->retention, now, wr_clock_now_ns());
		maint_gauges(mt);
		return true;
	}
	if (mt->max_hot != 0 && mt->hot.n > mt->max_hot && now >= mt->retry_at_ns) {
		uint32_t idx = mt->hot.v[0];
		char src[256], dst[256], spath[4200];
		if (maint_name(mt, src, sizeof src, idx, false) != 0 ||
		    maint_name(mt, dst, sizeof dst, idx, true) != 0 ||
		    maint_path(mt, spath, sizeof spath, idx, false) != 0)
			return false;
		if (mt->compression) {
			uint64_t in = 0, out = 0;
			int rc = wr_segment_compress_file(mt->dir, src, dst, &in, &out);
			if (rc == 0)
				rc = maint_unlink(mt, spath);
			wr_operation_record(&mt->metrics->compression, rc == 0, now, wr_clock_now_ns());
			if (rc != 0) {
				wr_log_error("compressing %s/%s failed: %s; the segment stays uncompressed "
					     "(retrying later)", mt->dir, src, walrec_strerror(rc));
				mt->retry_at_ns = wr_clock_now_ns() + MAINT_RETRY_NS;
				return false;
			}
			wr_counter_add(&mt->metrics->compression_bytes_in, in);
			wr_counter_add(&mt->metrics->compression_bytes_out, out);
			list_pop_front(&mt->hot);
			list_push(&mt->cold, idx);
		} else {
			int rc = maint_unlink(mt, spath);
			wr_operation_record(&mt->metrics->deletion, rc == 0, now, wr_clock_now_ns());
			if (rc != 0) {
				mt->retry_at_ns = wr_clock_now_ns() + MAINT_RETRY_NS;
				return false;
			}
			wr_log_debug("retention: deleted %s (max_hot_segments %u, no compression)", spath,
				     mt->max_hot);
			list_pop_front(&mt->hot);
		}
		wr_duration_record(&mt->metrics->retention, now, wr_clock_now_ns());
		maint_gauges(mt);
		return true;
	}
	return false;
}

/*
 * Close a finished writer with a full sync. The grace period on sync_lock
 * first: the coordinator syncs the active writer while holding it, and
 * this writer stopped being active before it was queued, so once the lock
 * was free once no coordinator round can still be using its mapping.
 */
static void
maint_close_finished(struct wr_segment_maintainer *mt, struct wr_segment_slot *s)
{
	struct wr_manager *m = mt->manager;
	pthread_mutex_lock(&m->sync_lock);
	pthread_mutex_unlock(&m->sync_lock);

	uint32_t idx = s->writer.segment_index;
	uint64_t last = s->writer.last_event_id;
	uint64_t t0 = wr_clock_now_ns();
	int rc = wr_segment_writer_close(&s->writer, true);
	wr_operation_record(&mt->metrics->close_segment, rc == 0, t0, wr_clock_now_ns());
	wr_segment_slot_free(s);
	if (rc != 0) {
		/* The segment's tail may not be on disk: stop, never report it durable. */
		wr_manager_latch(m, rc);
		wr_meta_coordinator_kick(mt->coordinator);
		return;
	}
	/* Segments are closed in rotation order, so every segment up to this
	 * one is synced. Release: pairs with the acquire in the coordinator. */
	if (last > wr_load_relaxed(&mt->synced_last_id))
		wr_store_release(&mt->synced_last_id, last);
	list_push(&mt->hot, idx);
	maint_gauges(mt);
	wr_meta_coordinator_kick(mt->coordinator);
}

static void *
maint_main(void *arg)
{
	struct wr_segment_maintainer *mt = arg;
	uint64_t idle = MAINT_IDLE_MIN_NS;
	pthread_mutex_lock(&mt->lock);
	for (;;) {
		if (mt->head != NULL) {
			struct wr_segment_slot *s = mt->head;
			mt->head = s->next;
			if (mt->head == NULL)
				mt->tail = NULL;
			mt->queued--;
			wr_gauge_set(&mt->metrics->queue_depth, (int64_t)mt->queued);
			pthread_mutex_unlock(&mt->lock);
			maint_close_finished(mt, s);
			wr_counter_inc(&mt->metrics->loop_active);
			idle = MAINT_IDLE_MIN_NS;
			pthread_mutex_lock(&mt->lock);
			continue;
		}
		/* Retention only while running: at stop the caller closes the
		 * active segment first, then retention runs once more. */
		if (!mt->stop) {
			pthread_mutex_unlock(&mt->lock);
			bool did = maint_retention_step(mt);
			pthread_mutex_lock(&mt->lock);
			if (did) {
				wr_counter_inc(&mt->metrics->loop_active);
				idle = MAINT_IDLE_MIN_NS;
				continue;
			}
		}
		if (mt->stop)
			break;
		if (mt->head != NULL)
			continue;
		wr_counter_inc(&mt->metrics->loop_idle);
		struct timespec dl = wr_clock_deadline(idle);
		pthread_cond_timedwait(&mt->wake, &mt->lock, &dl);
		if (idle < MAINT_IDLE_MAX_NS)
			idle *= 2;
	}
	pthread_mutex_unlock(&mt->lock);
	return NULL;
}

/*
 * Build the hot and cold lists from the directory, and finish what a crash
 * interrupted: a .wal next to its complete .wal.lz4 (the rename happened
 * only after the sync) is removed; a .wal.lz4.tmp is removed when its .wal
 * still exists (it is a partial copy), quarantined otherwise.
 */
static int
maint_scan(struct wr_segment_maintainer *mt, uint32_t active_index)
{
	DIR *d = opendir(mt->dir);
	if (d == NULL) {
		int err = errno;
		wr_log_syscall("opendir", mt->dir, err);
		return -err;
	}
	struct wr_index_list tmps = { 0 };
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		uint32_t index;
		bool cold;
		char expect[256];
		size_t len = strlen(de->d_name);
		if (len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0) {
			char base[256];
			if (len - 4 >= sizeof base)
				continue;
			memcpy(base, de->d_name, len - 4);
			base[len - 4] = '\0';
			if (wr_segment_name_parse(base, &index, &cold) == 1 && cold &&
			    maint_name(mt, expect, sizeof expect, index, true) == 0 &&
			    strcmp(expect, base) == 0)
				rc = list_push(&tmps, index);
			continue;
		}
		if (wr_segment_name_parse(de->d_name, &index, &cold) != 1)
			continue;
		if (maint_name(mt, expect, sizeof expect, index, cold) != 0 ||
		    strcmp(expect, de->d_name) != 0)
			continue;
		if (cold)
			rc = list_push(&mt->cold, index);
		else if (index < active_index)
			rc = list_push(&mt->hot, index);
	}
	closedir(d);
	if (rc != 0)
		goto out;

	char hpath[4200], cpath[4200], tpath[4300];
	for (size_t i = 0; i < tmps.n; i++) {
		if (maint_path(mt, hpath, sizeof hpath, tmps.v[i], false) != 0 ||
		    maint_path(mt, cpath, sizeof cpath, tmps.v[i], true) != 0)
			continue;
		snprintf(tpath, sizeof tpath, "%s.tmp", cpath);
		if (access(hpath, F_OK) == 0) {
			if (wr_sys.unlink(tpath) == 0)
				wr_log_info("removed %s: an interrupted compression of %s", tpath, hpath);
		} else {
			char q[4400];
			snprintf(q, sizeof q, "%s.quarantine-%llu", tpath,
				 (unsigned long long)wr_clock_realtime_ns());
			if (wr_sys.rename(tpath, q) == 0)
				wr_log_warn("%s has no source segment: quarantined as %s", tpath, q);
		}
	}
	for (size_t i = 0; i < mt->hot.n;) {
		uint32_t idx = mt->hot.v[i];
		if (!list_has(&mt->cold, idx)) {
			i++;
			continue;
		}
		if (maint_path(mt, hpath, sizeof hpath, idx, false) == 0 &&
		    wr_sys.unlink(hpath) == 0) {
			wr_log_info("removed %s: its compressed copy was complete", hpath);
			memmove(&mt->hot.v[i], &mt->hot.v[i + 1], (mt->hot.n - i - 1) * sizeof *mt->hot.v);
			mt->hot.n--;
		} else {
			i++;
		}
	}
	rc = wr_fs_sync_dir(mt->dir);
out:
	free(tmps.v);
	maint_gauges(mt);
	return rc;
}

int
wr_segment_maintainer_start(struct wr_segment_maintainer *mt, uint32_t active_index,
			    uint64_t cpu_mask)
{
	int rc = maint_scan(mt, active_index);
	if (rc != 0)
		return rc;
	rc = wr_thread_start(&mt->thread, "walrec-maint", cpu_mask, maint_main, mt);
	if (rc != 0)
		return rc;
	mt->started = true;
	return 0;
}

void
wr_segment_maintainer_push(struct wr_segment_maintainer *mt, struct wr_segment_slot *s)
{
	s->next = NULL;
	pthread_mutex_lock(&mt->lock);
	if (mt->tail)
		mt->tail->next = s;
	else
		mt->head = s;
	mt->tail = s;
	mt->queued++;
	pthread_cond_signal(&mt->wake);
	pthread_mutex_unlock(&mt->lock);
}

int
wr_segment_maintainer_stop(struct wr_segment_maintainer *mt, uint32_t extra_hot_index)
{
	if (!mt->started)
		return 0;
	pthread_mutex_lock(&mt->lock);
	mt->stop = true;
	pthread_cond_signal(&mt->wake);
	pthread_mutex_unlock(&mt->lock);
	pthread_join(mt->thread, NULL);
	mt->started = false;
	/* The thread drained its queue; one last retention pass, here, with the
	 * just-closed active segment counted. */
	if (extra_hot_index != UINT32_MAX) {
		list_push(&mt->hot, extra_hot_index);
		maint_gauges(mt);
	}
	mt->retry_at_ns = 0;
	while (wr_manager_latched(mt->manager) == 0 && maint_retention_step(mt))
		;
	return wr_manager_latched(mt->manager);
}

void
wr_segment_maintainer_fini(struct wr_segment_maintainer *mt)
{
	while (mt->head) {
		struct wr_segment_slot *s = mt->head;
		mt->head = s->next;
		wr_segment_writer_close(&s->writer, false);
		wr_segment_slot_free(s);
	}
	free(mt->hot.v);
	free(mt->cold.v);
	pthread_mutex_destroy(&mt->lock);
	pthread_cond_destroy(&mt->wake);
}

void
wr_segment_maintainer_metrics_copy(struct wr_segment_maintainer_metrics *dst,
				   const struct wr_segment_maintainer_metrics *src)
{
	wr_counter_copy(&dst->loop_active, &src->loop_active);
	wr_counter_copy(&dst->loop_idle, &src->loop_idle);
	wr_operation_copy(&dst->close_segment, &src->close_segment);
	wr_duration_copy(&dst->retention, &src->retention);
	wr_operation_copy(&dst->compression, &src->compression);
	wr_counter_copy(&dst->compression_bytes_in, &src->compression_bytes_in);
	wr_counter_copy(&dst->compression_bytes_out, &src->compression_bytes_out);
	wr_operation_copy(&dst->deletion, &src->deletion);
	wr_gauge_copy(&dst->max_hot_segments, &src->max_hot_segments);
	wr_gauge_copy(&dst->max_cold_segments, &src->max_cold_segments);
	wr_gauge_copy(&dst->queue_depth, &src->queue_depth);
}

void
wr_segment_maintainer_metrics_emit(const struct wr_segment_maintainer_metrics *m,
				   struct wr_out *o)
{
	wr_out_component_begin(o, "segment_maintainer");
	wr_out_counter(o, "loop_active", "Maintainer rounds that found work.", &m->loop_active);
	wr_out_counter(o, "loop_idle", "Maintainer rounds that slept.", &m->loop_idle);
	wr_out_operation(o, "close_segment", "Full sync and close of a finished segment.",
			 &m->close_segment);
	wr_out_duration(o, "retention", "One retention action (compress or delete).", &m->retention);
	wr_out_operation(o, "compression", "Compressing a segment to .wal.lz4.", &m->compression);
	wr_out_counter(o, "compression_in_bytes", "Bytes read by compression.",
		       &m->compression_bytes_in);
	wr_out_counter(o, "compression_out_bytes", "Bytes written by compression.",
		       &m->compression_bytes_out);
	wr_out_operation(o, "deletion", "Segments deleted by retention.", &m->deletion);
	wr_out_gauge(o, "max_hot_segments", "Configured limit (0: none).", &m->max_hot_segments);
	wr_out_gauge(o, "max_cold_segments", "Configured limit (0: none).", &m->max_cold_segments);
	wr_out_gauge(o, "queue_depth", "Finished segments waiting to be closed.", &m->queue_depth);
	wr_out_component_end(o);
}
