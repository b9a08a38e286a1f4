/* SPDX-License-Identifier: MIT */
/* The embedded recorder: rotation, retention, recovery, crashes, faults and idleness. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <walrec.h>

#include "lib/clock.h"
#include "lib/sys.h"
#include "recorder/format.h"
#include "recorder/recorder_impl.h"
#include "recorder/segment_reader.h"
#include "tests/testutil.h"

static char *dir;

static void
setup_dir(void)
{
	dir = wr_test_mkdtemp();
}

static void
teardown_dir(void)
{
	wr_sys_reset();
	walrec_log_set_handler(NULL, NULL, -1);
	wr_test_rmtree(dir);
	free(dir);
	dir = NULL;
}

/* ---- log capture ---------------------------------------------------------- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[1 << 16];
static size_t log_len;

/* Lines kept as "<level letter>: message" (E, W, I, D). */
static void
log_capture(void *arg, int level, const char *msg)
{
	(void)arg;
	pthread_mutex_lock(&log_lock);
	int n = snprintf(log_buf + log_len, sizeof log_buf - log_len, "%c: %s\n",
			 "EWID"[level >= 0 && level <= 3 ? level : 3], msg);
	if (n > 0 && log_len + (size_t)n < sizeof log_buf)
		log_len += (size_t)n;
	pthread_mutex_unlock(&log_lock);
}

static void
log_start(void)
{
	pthread_mutex_lock(&log_lock);
	log_len = 0;
	log_buf[0] = '\0';
	pthread_mutex_unlock(&log_lock);
	walrec_log_set_handler(log_capture, NULL, WALREC_LOG_DEBUG);
}

/*
 * True when a captured line holds needle. A needle that is a level prefix
 * ("W: ") matches only at the start of a line: the temporary directory's
 * name can end in that letter ("...KW: continuing").
 */
static bool
log_has(const char *needle)
{
	bool level = strlen(needle) == 3 && strchr("EWID", needle[0]) && needle[1] == ':' &&
		     needle[2] == ' ';
	pthread_mutex_lock(&log_lock);
	bool r;
	if (level) {
		char line_start[5] = { '\n', needle[0], ':', ' ', '\0' };
		r = strncmp(log_buf, needle, 3) == 0 || strstr(log_buf, line_start) != NULL;
	} else {
		r = strstr(log_buf, needle) != NULL;
	}
	pthread_mutex_unlock(&log_lock);
	return r;
}

/* The captured line that holds needle ("" if none). */
static const char *
log_line(const char *needle)
{
	static char line[1024];
	pthread_mutex_lock(&log_lock);
	const char *p = strstr(log_buf, needle);
	line[0] = '\0';
	if (p) {
		const char *a = p, *b = strchr(p, '\n');
		while (a > log_buf && a[-1] != '\n')
			a--;
		size_t n = b ? (size_t)(b - a) : strlen(a);
		snprintf(line, sizeof line, "%.*s", (int)n, a);
	}
	pthread_mutex_unlock(&log_lock);
	return line;
}

/* ---- log verification ------------------------------------------------------ */

struct seg_info {
	uint32_t index;
	bool cold;
	uint64_t first, last, events;
};

struct dir_info {
	struct seg_info seg[512];
	size_t n, hot, cold, other, quarantined;
};

/*
 * Verify one segment image: valid header, then valid blocks up to the
 * first never-written one, and nothing but zeros after that.
 */
static void
verify_image(const uint8_t *p, size_t len, const char *what, struct seg_info *si)
{
	struct wr_segment_header h;
	ck_assert_msg(wr_segment_header_check(p, len, &h) == WR_FAULT_NONE, "%s: header", what);
	uint32_t nb = wr_segment_blocks_for_size(len);
	ck_assert_msg(nb != 0, "%s: size %zu", what, len);
	si->index = h.segment_index;
	uint64_t prev = 0, last = 0, first = 0, events = 0;
	uint32_t i = 0;
	for (; i < nb; i++) {
		const struct wr_block *b = (const struct wr_block *)(p + wr_block_offset(i));
		uint64_t chained;
		enum wr_format_fault f = wr_block_verify(b, i, prev, last, &chained);
		if (f == WR_FAULT_EMPTY)
			break;
		ck_assert_msg(f == WR_FAULT_NONE, "%s: block %u: %s", what, i, wr_format_fault_str(f));
		if (i == 0)
			first = b->header.first_event_id;
		last = b->header.last_event_id;
		events += b->header.event_count;
		prev = chained;
		/* every id inside the block is contiguous (ids are last + 1) */
		ck_assert_uint_eq(b->header.last_event_id - b->header.first_event_id + 1,
				  b->header.event_count);
	}
	for (uint64_t off = wr_block_offset(i); off < len; off++)
		ck_assert_msg(p[off] == 0, "%s: byte %" PRIu64 " after the data is not zero", what, off);
	if (h.closed_ts_ns != 0) {
		ck_assert_uint_eq(h.block_count, i);
		ck_assert_uint_eq(h.event_count, events);
		ck_assert_uint_eq(h.last_event_id, last);
	}
	si->first = first;
	si->last = last;
	si->events = events;
}

static int
seg_cmp(const void *a, const void *b)
{
	const struct seg_info *x = a, *y = b;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Decompress path with the lz4 command-line tool into out. */
static void
lz4_decompress(const char *path, const char *out)
{
	char cmd[9000];
	snprintf(cmd, sizeof cmd, "lz4 -d -q -f '%s' '%s'", path, out);
	ck_assert_msg(system(cmd) == 0, "lz4 -d %s failed", path);
}

/*
 * Verify every segment of d (cold ones through the lz4 tool) and that ids
 * are contiguous across consecutive segments. Returns the info.
 */
static void
verify_dir(const char *d, struct dir_info *di)
{
	memset(di, 0, sizeof *di);
	DIR *dd = opendir(d);
	ck_assert_ptr_nonnull(dd);
	struct dirent *de;
	char path[4200], tmp[4300];
	while ((de = readdir(dd)) != NULL) {
		uint32_t index;
		bool cold;
		if (de->d_name[0] == '.')
			continue;
		if (strstr(de->d_name, ".quarantine-") != NULL)
			di->quarantined++;
		if (wr_segment_name_parse(de->d_name, &index, &cold) != 1) {
			di->other++;
			continue;
		}
		ck_assert_uint_lt(di->n, WR_ARRAY_SIZE(di->seg));
		snprintf(path, sizeof path, "%s/%s", d, de->d_name);
		const char *img = path;
		if (cold) {
			snprintf(tmp, sizeof tmp, "%s.check", path);
			lz4_decompress(path, tmp);
			img = tmp;
		}
		size_t len = 0;
		uint8_t *p = wr_test_read_file(img, &len);
		ck_assert_ptr_nonnull(p);
		struct seg_info *si = &di->seg[di->n++];
		verify_image(p, len, path, si);
		ck_assert_uint_eq(si->index, index);
		si->cold = cold;
		free(p);
		/* and the reader reads it back, hot or cold, fully verified */
		struct wr_segment_reader rd;
		ck_assert_int_eq(wr_segment_reader_open(&rd, path, 0), 0);
		ck_assert_msg(wr_segment_reader_status(&rd) == 0, "reader: %s", path);
		walrec_event_t ev;
		uint64_t count = 0, expect = si->first;
		int rr;
		while ((rr = wr_segment_reader_next(&rd, &ev)) == 1) {
			ck_assert_uint_eq(ev.event_id, expect);
			expect++;
			count++;
		}
		ck_assert_int_eq(rr, 0);
		ck_assert_uint_eq(count, si->events);
		wr_segment_reader_close(&rd);
		if (cold) {
			unlink(tmp);
			di->cold++;
		} else {
			di->hot++;
		}
	}
	closedir(dd);
	qsort(di->seg, di->n, sizeof di->seg[0], seg_cmp);
	for (size_t i = 1; i < di->n; i++) {
		const struct seg_info *a = &di->seg[i - 1], *b = &di->seg[i];
		ck_assert_msg(a->index != b->index, "segment %u is both hot and cold", a->index);
		if (b->events == 0 || a->events == 0)
			continue;
		ck_assert_msg(b->first == a->last + 1, "segment %u starts at %" PRIu64
			      " after segment %u ended at %" PRIu64, b->index, b->first, a->index,
			      a->last);
	}
}

static uint64_t
dir_last_id(const struct dir_info *di)
{
	uint64_t last = 0;
	for (size_t i = 0; i < di->n; i++)
		if (di->seg[i].last > last)
			last = di->seg[i].last;
	return last;
}

static walrec_recorder_config_t
small_config(void)
{
	walrec_recorder_config_t cfg;
	walrec_recorder_config_init(&cfg);
	cfg.num_blocks = 16;
	return cfg;
}

static void
fill_event(walrec_event_t *ev, uint64_t n)
{
	memset(ev, 0, sizeof *ev);
	ev->timestamp_ns = 1700000000000000000ull + n;
	memcpy(ev->payload, &n, sizeof n);
	ev->payload[47] = (uint8_t)n;
}

/* Append n events; ids must continue from *next (updated). */
static void
append_n(walrec_recorder_t *rec, uint64_t n, uint64_t *next)
{
	walrec_event_t ev;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t id = 0;
		fill_event(&ev, *next);
		int rc = walrec_recorder_append(rec, &ev, &id);
		ck_assert_msg(rc == 0, "append %" PRIu64 ": %s", *next, walrec_strerror(rc));
		ck_assert_uint_eq(id, *next);
		(*next)++;
	}
}

/* One recorder run on dir: open with cfg, append n events from *next, close. */
static void
record_run(const walrec_recorder_config_t *cfg, uint64_t n, uint64_t *next)
{
	walrec_recorder_t *rec = NULL;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, cfg), 0);
	append_n(rec, n, next);
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
}

/* ---- core ------------------------------------------------------------------ */

START_TEST(test_recorder_config_limits)
{
	walrec_recorder_config_t cfg;
	walrec_recorder_config_init(&cfg);
	ck_assert_uint_eq(cfg.num_blocks, 4096);
	ck_assert_uint_eq(cfg.sync_interval_us, 1000);
	ck_assert(cfg.compression);
	walrec_recorder_t *rec = NULL;
	log_start();
	cfg.num_blocks = 15;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), -EINVAL);
	ck_assert(log_has("num_blocks 15 is outside 16..524288"));
	cfg.num_blocks = 524289;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), -EINVAL);
	walrec_recorder_config_init(&cfg);
	cfg.sync_interval_us = 60000001;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), -EINVAL);
	ck_assert(log_has("sync_interval_us"));
	walrec_recorder_config_init(&cfg);
	cfg.max_hot_segments = 1000001;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), -EINVAL);
	ck_assert(log_has("max_hot_segments"));
	walrec_recorder_config_init(&cfg);
	cfg.prefix = "a/b";
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), -EINVAL);
	ck_assert(log_has("prefix"));
	static const uint32_t bad_stage[] = { 2, 3, 1000, 131072 };
	for (size_t i = 0; i < WR_ARRAY_SIZE(bad_stage); i++) {
		walrec_recorder_config_init(&cfg);
		cfg.stage_blocks = bad_stage[i];
		ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), -EINVAL);
		ck_assert(log_has("stage_blocks"));
	}
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	if (ncpu > 0 && ncpu < 64) {
		walrec_recorder_config_init(&cfg);
		cfg.worker_cpus = (uint64_t)1 << ncpu; /* a CPU that does not exist */
		ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), -EINVAL);
		ck_assert(log_has("worker_cpus"));
	}
	ck_assert_ptr_null(rec);
	ck_assert_int_eq(walrec_recorder_close(NULL), 0);
	walrec_recorder_destroy(NULL);
}
END_TEST

/* The background threads carry their names and stay on worker_cpus. */
START_TEST(test_recorder_worker_threads_named_and_pinned)
{
	walrec_recorder_config_t cfg = small_config();
	cfg.worker_cpus = 1; /* CPU 0 */
	walrec_recorder_t *rec = NULL;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	static const char *names[] = { "walrec-flush", "walrec-coord", "walrec-prep",
				       "walrec-maint" };
	int found = 0;
	DIR *d = opendir("/proc/self/task");
	ck_assert_ptr_nonnull(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char path[300], comm[64] = "";
		snprintf(path, sizeof path, "/proc/self/task/%s/comm", de->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fgets(comm, sizeof comm, f) == NULL)
			comm[0] = '\0';
		fclose(f);
		comm[strcspn(comm, "\n")] = '\0';
		for (size_t i = 0; i < WR_ARRAY_SIZE(names); i++) {
			if (strcmp(comm, names[i]) != 0)
				continue;
			found |= 1 << i;
			cpu_set_t set;
			ck_assert_int_eq(sched_getaffinity((pid_t)atoi(de->d_name), sizeof set, &set), 0);
			ck_assert_int_eq(CPU_COUNT(&set), 1);
			ck_assert(CPU_ISSET(0, &set));
		}
	}
	closedir(d);
	ck_assert_int_eq(found, 15);
	uint64_t next = 1;
	append_n(rec, 1000, &next);
	ck_assert_int_eq(walrec_recorder_sync(rec), 0);
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
}
END_TEST

/* unlink hook: keep a copy of every .wal the maintainer removes after compressing it. */
static char saved_dir[4096];

static int
unlink_saving(const char *path)
{
	size_t n = strlen(path);
	if (n > 4 && strcmp(path + n - 4, ".wal") == 0) {
		const char *base = strrchr(path, '/');
		char dst[8300], cmd[17000];
		snprintf(dst, sizeof dst, "%s/%s", saved_dir, base ? base + 1 : path);
		snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path, dst);
		if (system(cmd) != 0)
			return -1;
	}
	return unlink(path);
}

START_TEST(test_recorder_rotation_compression_retention)
{
	snprintf(saved_dir, sizeof saved_dir, "%s/saved", dir);
	char wal[4200];
	snprintf(wal, sizeof wal, "%s/wal", dir);
	ck_assert_int_eq(mkdir(saved_dir, 0700), 0);
	wr_sys.unlink = unlink_saving;

	walrec_recorder_config_t cfg = small_config();
	cfg.max_hot_segments = 3;
	cfg.max_cold_segments = 20;
	walrec_recorder_t *rec = NULL;
	ck_assert_int_eq(walrec_recorder_open(&rec, wal, &cfg), 0);
	uint64_t next = 1;
	const uint64_t per_seg = 16 * 256;
	const uint64_t total = per_seg * 60 + 1234; /* more than 50 rotations */
	append_n(rec, total, &next);
	ck_assert_int_eq(walrec_recorder_sync(rec), 0);
	walrec_recorder_state_t st;
	ck_assert_int_eq(walrec_recorder_meta_state(rec, &st), 0);
	ck_assert_uint_eq(st.durable_event_id, total);
	ck_assert_uint_eq(st.last_event_id, total);
	ck_assert_uint_le(st.meta_last_event_id, total); /* wal.meta may lag, never lead */
	uint64_t rec_rotations = rec->metrics.manager.segment_rotation.count;
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	ck_assert_int_eq(walrec_recorder_close(rec), 0); /* second close: harmless */
	walrec_recorder_destroy(rec);
	wr_sys_reset();
	char meta[4300];
	snprintf(meta, sizeof meta, "%s/wal.meta", wal);
	size_t mlen = 0;
	uint8_t *mb = wr_test_read_file(meta, &mlen);
	ck_assert_ptr_nonnull(mb);
	ck_assert_uint_eq(mlen, 16);
	struct wr_meta_state ms;
	wr_meta_decode(mb, &ms);
	free(mb);
	ck_assert_uint_eq(ms.last_event_id, total); /* close writes the final position */

	/* Partial seals (the sync interval) leave slots unused, so count the
	 * segments made: 3 hot kept, up to 20 cold, the oldest deleted. */
	struct dir_info di;
	verify_dir(wal, &di);
	uint32_t made = di.seg[di.n - 1].index;
	ck_assert_uint_ge(made, 51); /* >= 50 rotations */
	ck_assert_uint_eq(di.hot, 3);
	ck_assert_uint_eq(di.cold, 20);
	ck_assert_uint_eq(di.other, 1); /* wal.meta */
	ck_assert_uint_eq(dir_last_id(&di), total);
	ck_assert_uint_eq(di.seg[0].index, made - 22);
	ck_assert_uint_eq(di.seg[di.n - 1].index - di.seg[0].index + 1, 23);
	for (size_t i = 0; i < di.n; i++)
		ck_assert_msg(di.seg[i].cold == (i < 20), "segment %u", di.seg[i].index);
	ck_assert_uint_eq(rec_rotations, made - 1);

	/* Every .wal.lz4 decompresses to exactly the .wal it replaced. */
	char name[64], cpath[4400], opath[4400], spath[8400];
	for (size_t i = 0; i < di.n; i++) {
		if (!di.seg[i].cold)
			continue;
		wr_segment_name(name, sizeof name, NULL, di.seg[i].index, true);
		snprintf(cpath, sizeof cpath, "%s/%s", wal, name);
		snprintf(opath, sizeof opath, "%s/%s.out", dir, name);
		lz4_decompress(cpath, opath);
		wr_segment_name(name, sizeof name, NULL, di.seg[i].index, false);
		snprintf(spath, sizeof spath, "%s/%s", saved_dir, name);
		size_t la = 0, lb = 0;
		uint8_t *a = wr_test_read_file(opath, &la);
		uint8_t *b = wr_test_read_file(spath, &lb);
		ck_assert_ptr_nonnull(a);
		ck_assert_msg(b != NULL, "no saved copy of %s", name);
		ck_assert_uint_eq(la, lb);
		ck_assert_msg(memcmp(a, b, la) == 0, "%s differs from the segment it replaced", cpath);
		free(a);
		free(b);
		unlink(opath);
	}
}
END_TEST

START_TEST(test_recorder_reopen_continues_ids)
{
	walrec_recorder_config_t cfg = small_config();
	cfg.max_hot_segments = 0; /* keep everything */
	uint64_t next = 1;
	record_run(&cfg, 4096 * 2 + 300, &next);
	walrec_recorder_t *rec = NULL;
	struct dir_info a;
	verify_dir(dir, &a);
	ck_assert_uint_ge(a.hot, 3);
	ck_assert_uint_eq(dir_last_id(&a), next - 1);

	log_start();
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	ck_assert(!log_has("wal.meta")); /* a clean shutdown leaves a correct wal.meta */
	append_n(rec, 5000, &next); /* continues in the partial segment, then rotates */
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
	struct dir_info b;
	verify_dir(dir, &b);
	ck_assert_uint_eq(dir_last_id(&b), next - 1);
	ck_assert_uint_eq(b.seg[0].first, 1);
	/* nothing deleted: every segment of the first run is still there */
	ck_assert_uint_gt(b.hot, a.hot);
	for (size_t i = 0; i < a.n; i++) {
		ck_assert_uint_eq(b.seg[i].index, a.seg[i].index);
		ck_assert_uint_eq(b.seg[i].first, a.seg[i].first);
	}
	uint64_t sum = 0;
	for (size_t i = 0; i < b.n; i++)
		sum += b.seg[i].events;
	ck_assert_uint_eq(sum, next - 1);
}
END_TEST

/*
 * Many hot segments found at open, listed in directory order (not index
 * order): retention compresses every one beyond the limit, oldest first,
 * and never loses or repeats one.
 */
START_TEST(test_recorder_retention_of_segments_found_at_open)
{
	walrec_recorder_config_t cfg = small_config();
	cfg.max_hot_segments = 0; /* keep everything hot */
	uint64_t next = 1;
	record_run(&cfg, 4096 * 12 + 100, &next);
	walrec_recorder_t *rec = NULL;
	struct dir_info a;
	verify_dir(dir, &a);
	ck_assert_uint_ge(a.hot, 13);
	ck_assert_uint_eq(a.cold, 0);

	log_start();
	cfg.max_hot_segments = 1;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
	ck_assert_msg(!log_has("failed"), "retention: %s", log_line("failed"));
	struct dir_info b;
	verify_dir(dir, &b);
	/* The one hot segment kept is the newest; every other one is cold. */
	ck_assert_uint_eq(b.hot, 1);
	ck_assert_uint_eq(b.cold, a.hot - 1);
	ck_assert_uint_eq(b.seg[b.n - 1].index, a.seg[a.n - 1].index);
	ck_assert(!b.seg[b.n - 1].cold);
	ck_assert_uint_eq(dir_last_id(&b), next - 1);
}
END_TEST

struct waiter_arg {
	walrec_recorder_t *rec;
	uint64_t id;
	uint64_t timeout_ns;
	int rc;
};

static void *
waiter_thread(void *p)
{
	struct waiter_arg *w = p;
	w->rc = walrec_recorder_wait_durable(w->rec, w->id, w->timeout_ns);
	return NULL;
}

START_TEST(test_recorder_wait_durable_and_poll)
{
	walrec_recorder_config_t cfg = small_config();
	cfg.sync_interval_us = 0; /* sync only when asked */
	walrec_recorder_t *rec = NULL;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	uint64_t next = 1;
	append_n(rec, 10, &next);
	/* A waiter on another thread: the owner neither appends nor polls, so
	 * the partial block stays unsealed and the wait times out. */
	struct waiter_arg w = { .rec = rec, .id = 10, .timeout_ns = 20000000 };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, waiter_thread, &w), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(w.rc, -ETIMEDOUT);
	/* poll seals it now that the coordinator asked */
	int sealed = 0;
	for (int i = 0; i < 1000 && sealed == 0; i++) {
		sealed = walrec_recorder_poll(rec);
		usleep(1000);
	}
	ck_assert_int_eq(sealed, 1);
	ck_assert_int_eq(walrec_recorder_wait_durable(rec, 10, 5000000000ull), 0);
	/* The owner waiting seals its own partial block. */
	append_n(rec, 5, &next);
	ck_assert_int_eq(walrec_recorder_wait_durable(rec, 15, 5000000000ull), 0);
	append_n(rec, 5, &next);
	ck_assert_int_eq(walrec_recorder_sync(rec), 0);
	ck_assert_int_eq(walrec_recorder_wait_durable(rec, 20, 0), 0);
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_event_t ev;
	fill_event(&ev, 1);
	ck_assert_int_eq(walrec_recorder_append(rec, &ev, NULL), -WALREC_ECLOSED);
	ck_assert_int_eq(walrec_recorder_wait_durable(rec, 20, 0), 0);
	ck_assert_int_eq(walrec_recorder_wait_durable(rec, 21, 1000), -WALREC_ECLOSED);
	char *text = NULL;
	size_t tlen = 0;
	FILE *f = open_memstream(&text, &tlen);
	ck_assert_int_eq(walrec_recorder_dump_metrics(rec, f, WALREC_METRICS_PROMETHEUS), 0);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(text, "walrec_manager_partial_seals_total"));
	ck_assert_ptr_nonnull(strstr(text, "walrec_durability_sync"));
	free(text);
	walrec_recorder_destroy(rec);
}
END_TEST

/* With the interval on, an owner that keeps appending gets its events durable unasked. */
START_TEST(test_recorder_interval_makes_durable)
{
	walrec_recorder_config_t cfg = small_config();
	cfg.sync_interval_us = 1000;
	walrec_recorder_t *rec = NULL;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	uint64_t next = 1;
	uint64_t deadline = wr_clock_now_ns() + 5000000000ull;
	while (walrec_recorder_wait_durable(rec, 100, 0) != 0 && wr_clock_now_ns() < deadline) {
		if (next <= 100)
			append_n(rec, 1, &next);
		walrec_recorder_poll(rec);
		usleep(200);
	}
	ck_assert_int_eq(walrec_recorder_wait_durable(rec, 100, 0), 0);
	walrec_recorder_destroy(rec);
}
END_TEST

/* ---- limits: damaged input ---------------------------------------------------- */

static uint64_t
make_log(uint64_t events)
{
	walrec_recorder_config_t cfg = small_config();
	/* Full blocks only (the last one sealed at close): the damage tests
	 * name blocks by number, and a slow run (TSan, a busy machine) would
	 * otherwise seal partial blocks at every sync interval on the way. */
	cfg.sync_interval_us = 0;
	uint64_t next = 1;
	record_run(&cfg, events, &next);
	return next;
}

/* Reopen after damage: recovery works, ids continue, the log verifies. */
static void
reopen_and_check(uint64_t next, const char *expect_log)
{
	walrec_recorder_config_t cfg = small_config();
	walrec_recorder_t *rec = NULL;
	log_start();
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	if (expect_log)
		ck_assert_msg(log_has(expect_log), "log lacks \"%s\":\n%s", expect_log, log_buf);
	append_n(rec, 10, &next);
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
	struct dir_info di;
	verify_dir(dir, &di);
	ck_assert_uint_eq(dir_last_id(&di), next - 1);
}

START_TEST(test_recorder_damaged_meta_recovers_by_scan)
{
	uint64_t next = make_log(5000);
	char meta[4200];
	snprintf(meta, sizeof meta, "%s/wal.meta", dir);

	ck_assert_int_eq(unlink(meta), 0);
	reopen_and_check(next, "wal.meta is missing; recovering by scanning");
	next += 10;

	ck_assert_int_eq(wr_test_write_file(meta, "1234567", 7), 0);
	reopen_and_check(next, "is not a 16-byte wal.meta file");
	next += 10;

	uint8_t garbage[16];
	memset(garbage, 0xA5, sizeof garbage);
	ck_assert_int_eq(wr_test_write_file(meta, garbage, sizeof garbage), 0);
	reopen_and_check(next, "recovering by scanning");
	next += 10;

	uint8_t buf[16];
	struct wr_meta_state ms = { .segment_index = 999, .offset = 64 + 16448, .last_event_id = 5 };
	wr_meta_encode(buf, &ms);
	ck_assert_int_eq(wr_test_write_file(meta, buf, sizeof buf), 0);
	reopen_and_check(next, "W: ");
	ck_assert(log_has("names segment 999, which does not exist"));
	next += 10;

	/* What a crash leaves: the segment it names was compressed since. Said,
	 * but not as a warning. */
	struct dir_info d0;
	verify_dir(dir, &d0);
	/* The oldest hot one: how many the maintainer compressed already
	 * depends on how often the sync interval sealed a partial block. */
	size_t h0 = 0;
	while (h0 + 1 < d0.n && d0.seg[h0].cold)
		h0++;
	ck_assert(!d0.seg[h0].cold && h0 + 1 < d0.n);
	char name[64], hot[4200];
	snprintf(name, sizeof name, "%08u.wal", d0.seg[h0].index);
	snprintf(hot, sizeof hot, "%s/%s", dir, name);
	ms.segment_index = d0.seg[h0].index;
	ms.offset = 64 + 16448;
	ms.last_event_id = d0.seg[h0].first + 255;
	wr_meta_encode(buf, &ms);
	ck_assert_int_eq(wr_test_write_file(meta, buf, sizeof buf), 0);
	uint64_t in, out;
	char coldname[80];
	snprintf(coldname, sizeof coldname, "%s.lz4", name);
	ck_assert_int_eq(wr_segment_compress_file(dir, name, coldname, &in, &out), 0);
	ck_assert_int_eq(unlink(hot), 0);
	reopen_and_check(next, "I: ");
	ck_assert_msg(log_has("compressed since then"), "%s", log_buf);
	ck_assert_msg(!log_has("W: "), "%s", log_buf);
	next += 10;

	/* the real segment, an offset past its end */
	struct dir_info di;
	verify_dir(dir, &di);
	ms.segment_index = di.seg[di.n - 1].index;
	ms.offset = 64 + 16448u * 1000;
	ms.last_event_id = next - 1;
	wr_meta_encode(buf, &ms);
	ck_assert_int_eq(wr_test_write_file(meta, buf, sizeof buf), 0);
	reopen_and_check(next, "is past the end of segment");
	next += 10;

	/* a block boundary inside, but the wrong last event id */
	ms.offset = 64 + 16448;
	ms.last_event_id = 7;
	wr_meta_encode(buf, &ms);
	ck_assert_int_eq(wr_test_write_file(meta, buf, sizeof buf), 0);
	reopen_and_check(next, "not 7");
}
END_TEST

START_TEST(test_recorder_damaged_segment_quarantined)
{
	uint64_t next = make_log(5000); /* segments 1 (full) and 2 */
	char path[4200];
	/* garbage under a newer segment name, and a zeroed header on a right-sized file */
	snprintf(path, sizeof path, "%s/00000007.wal", dir);
	ck_assert_int_eq(wr_test_write_file(path, "garbage!", 8), 0);
	snprintf(path, sizeof path, "%s/00000006.wal", dir);
	size_t sz = (size_t)wr_segment_size(16);
	uint8_t *zero = calloc(1, sz);
	memset(zero + 100, 0x5A, 50);
	ck_assert_int_eq(wr_test_write_file(path, zero, sz), 0);
	free(zero);

	walrec_recorder_config_t cfg = small_config();
	walrec_recorder_t *rec = NULL;
	log_start();
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	ck_assert(log_has("00000007.wal can not be opened"));
	ck_assert(log_has("00000006.wal can not be opened"));
	ck_assert(log_has("quarantined as"));
	append_n(rec, 10, &next);
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);

	/* both files are still there, renamed aside, bytes intact */
	DIR *d = opendir(dir);
	struct dirent *de;
	int quarantined = 0;
	while ((de = readdir(d)) != NULL) {
		if (strstr(de->d_name, ".quarantine-") == NULL)
			continue;
		quarantined++;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (strncmp(de->d_name, "00000007.wal", 12) == 0)
			ck_assert_int_eq(wr_test_file_size(path), 8);
		else
			ck_assert_int_eq(wr_test_file_size(path), (long long)sz);
	}
	closedir(d);
	ck_assert_int_eq(quarantined, 2);
	struct dir_info di;
	verify_dir(dir, &di);
	ck_assert_uint_eq(dir_last_id(&di), next - 1);
}
END_TEST

/* A torn tail in the last segment is cut and reported; ids continue after the last sealed event. */
START_TEST(test_recorder_torn_tail_cut)
{
	uint64_t next = make_log(1000); /* 3 full blocks + a partial one in segment 1 */
	char path[4200];
	snprintf(path, sizeof path, "%s/00000001.wal", dir);
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	struct wr_block_header b2;
	ck_assert_int_eq(pread(fd, &b2, sizeof b2, (off_t)wr_block_offset(2)), (ssize_t)sizeof b2);
	/* damage the payload of the last (4th) block: it becomes a torn tail */
	uint8_t x = 0xFF;
	ck_assert_int_eq(pwrite(fd, &x, 1, (off_t)(wr_block_offset(3) + 64 + 5)), 1);
	close(fd);
	/* An unsynced tail is never named by wal.meta: remove it, as after a crash. */
	snprintf(path, sizeof path, "%s/wal.meta", dir);
	ck_assert_int_eq(unlink(path), 0);
	walrec_recorder_config_t cfg = small_config();
	walrec_recorder_t *rec = NULL;
	log_start();
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	ck_assert(log_has("cut from block 3"));
	ck_assert(log_has("wal.meta is missing"));
	uint64_t id = 0;
	walrec_event_t ev;
	fill_event(&ev, 1);
	ck_assert_int_eq(walrec_recorder_append(rec, &ev, &id), 0);
	ck_assert_uint_eq(id, b2.last_event_id + 1); /* after the last sealed event kept */
	ck_assert_uint_lt(id, next);
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
	struct dir_info di;
	verify_dir(dir, &di);
	ck_assert_uint_eq(dir_last_id(&di), id);
}
END_TEST

static int
count_quarantined(void)
{
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d)) != NULL)
		n += strstr(de->d_name, ".quarantine-") != NULL;
	closedir(d);
	return n;
}

/*
 * Damage in the middle of the last segment (valid blocks after the bad
 * one): recovery refuses to open while the original can not be saved, and
 * cuts only after a copy of it is kept.
 */
START_TEST(test_recorder_damage_in_middle_kept_aside)
{
	make_log(1000); /* 3 full blocks + a partial one in segment 1 */
	char path[4200];
	snprintf(path, sizeof path, "%s/00000001.wal", dir);
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	uint8_t x = 0xFF;
	ck_assert_int_eq(pwrite(fd, &x, 1, (off_t)(wr_block_offset(1) + 64 + 5)), 1);
	close(fd);
	size_t len;
	uint8_t *orig = wr_test_read_file(path, &len);

	walrec_recorder_config_t cfg = small_config();
	walrec_recorder_t *rec = NULL;
	log_start();
	wr_sys.pwrite = wr_test_pwrite_enospc;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), -ENOSPC);
	wr_sys_reset();
	ck_assert_ptr_null(rec);
	ck_assert_msg(log_has("can not be reopened"), "%s", log_buf);
	ck_assert(log_has("nothing is cut"));
	size_t nlen;
	uint8_t *now = wr_test_read_file(path, &nlen);
	ck_assert_uint_eq(nlen, len);
	ck_assert(memcmp(now, orig, len) == 0);
	free(now);
	ck_assert_int_eq(count_quarantined(), 0);

	log_start();
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	ck_assert_msg(log_has("the original is kept as"), "%s", log_buf);
	ck_assert_int_eq(count_quarantined(), 1);
	uint64_t id = 0;
	walrec_event_t ev;
	fill_event(&ev, 1);
	ck_assert_int_eq(walrec_recorder_append(rec, &ev, &id), 0);
	ck_assert_uint_gt(id, 1000); /* wal.meta said 1000 was durable: never reused */
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);

	DIR *d = opendir(dir);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strstr(de->d_name, ".quarantine-") == NULL)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		now = wr_test_read_file(path, &nlen);
		ck_assert_uint_eq(nlen, len);
		ck_assert(memcmp(now, orig, len) == 0);
		free(now);
	}
	closedir(d);
	free(orig);
}
END_TEST

/* ---- crash ---------------------------------------------------------------------- */

/* Child: append forever, sync every so often and report the durable id. */
static void
crash_child(int wfd, uint64_t seed)
{
	walrec_log_set_handler(NULL, NULL, WALREC_LOG_ERROR);
	walrec_recorder_config_t cfg = small_config();
	cfg.max_hot_segments = 0;
	walrec_recorder_t *rec = NULL;
	if (walrec_recorder_open(&rec, dir, &cfg) != 0)
		_exit(3);
	walrec_event_t ev;
	uint64_t n = 0, id = 0;
	for (;;) {
		uint64_t burst = 1 + wr_test_rand(&seed) % 3000;
		for (uint64_t i = 0; i < burst; i++) {
			fill_event(&ev, ++n);
			if (walrec_recorder_append(rec, &ev, &id) != 0)
				_exit(4);
		}
		if (wr_test_rand(&seed) % 2 == 0) {
			if (walrec_recorder_sync(rec) != 0)
				_exit(5);
			if (write(wfd, &id, sizeof id) != sizeof id)
				_exit(6);
		}
	}
}

START_TEST(test_recorder_crash_loses_nothing_durable)
{
	uint64_t seed = wr_test_env_u64("WALREC_TEST_SEED", (uint64_t)time(NULL));
	printf("test_recorder_crash_loses_nothing_durable: seed %" PRIu64 "\n", seed);
	fflush(stdout);
	const int rounds = 30;
	uint64_t durable_max = 0;
	for (int round = 0; round < rounds; round++) {
		int p[2];
		ck_assert_int_eq(pipe(p), 0);
		uint64_t child_seed = wr_test_rand(&seed);
		uint64_t delay_us = 2000 + wr_test_rand(&seed) % 40000;
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(p[0]);
			crash_child(p[1], child_seed);
		}
		close(p[1]);
		usleep((useconds_t)delay_us);
		kill(pid, SIGKILL);
		int status;
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFSIGNALED(status), "round %d: child exited with %d", round,
			      WEXITSTATUS(status));
		uint64_t v;
		while (read(p[0], &v, sizeof v) == (ssize_t)sizeof v)
			if (v > durable_max)
				durable_max = v;
		close(p[0]);

		/* Reopen: everything reported durable is there, ids continue. */
		walrec_log_set_handler(NULL, NULL, WALREC_LOG_ERROR);
		walrec_recorder_config_t cfg = small_config();
		cfg.max_hot_segments = 0;
		walrec_recorder_t *rec = NULL;
		ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
		walrec_recorder_state_t st;
		walrec_recorder_meta_state(rec, &st);
		ck_assert_msg(st.last_event_id >= durable_max,
			      "round %d (seed %" PRIu64 "): recovered to %" PRIu64
			      " but %" PRIu64 " was durable", round, seed, st.last_event_id, durable_max);
		uint64_t id = 0;
		walrec_event_t ev;
		fill_event(&ev, 0);
		ck_assert_int_eq(walrec_recorder_append(rec, &ev, &id), 0);
		ck_assert_uint_eq(id, st.last_event_id + 1);
		ck_assert_int_eq(walrec_recorder_close(rec), 0);
		walrec_recorder_destroy(rec);
		struct dir_info di;
		verify_dir(dir, &di);
		ck_assert_uint_eq(dir_last_id(&di), id);
		ck_assert_uint_eq(di.seg[0].first, 1);
		uint64_t sum = 0;
		for (size_t i = 0; i < di.n; i++)
			sum += di.seg[i].events;
		ck_assert_uint_eq(sum, id); /* contiguous 1..id, exactly once */
		/* a segment the child was still preparing is blank: removed, not quarantined */
		ck_assert_uint_eq(di.quarantined, 0);
		durable_max = id;
	}
}
END_TEST

/* ---- faults ------------------------------------------------------------------------ */

static _Atomic int fault_fallocate;
static _Atomic int fault_msync;
static _Atomic int fault_fdatasync;
static _Atomic int fault_pwrite;

static int
fallocate_faulty(int fd, int mode, off_t off, off_t len)
{
	if (atomic_load(&fault_fallocate)) {
		errno = ENOSPC;
		return -1;
	}
	return fallocate(fd, mode, off, len);
}

static int
msync_faulty(void *addr, size_t len, int flags)
{
	if (atomic_load(&fault_msync)) {
		errno = EIO;
		return -1;
	}
	return wr_sys_libc.msync(addr, len, flags);
}

/* EIO from writes into segment files (a sealed block on its way to the file). */
static ssize_t
pwrite_faulty(int fd, const void *buf, size_t len, off_t off)
{
	if (atomic_load(&fault_pwrite)) {
		char link[64], target[4096];
		snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, target, sizeof target - 1);
		if (n > 4 && memcmp(target + n - 4, ".wal", 4) == 0) {
			errno = EIO;
			return -1;
		}
	}
	return wr_sys_libc.pwrite(fd, buf, len, off);
}

/* EIO from fdatasync of segment files only (not wal.meta, not the directory). */
static int
fdatasync_faulty(int fd)
{
	if (atomic_load(&fault_fdatasync)) {
		char link[64], target[4096];
		snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, target, sizeof target - 1);
		if (n > 4 && memcmp(target + n - 4, ".wal", 4) == 0) {
			errno = EIO;
			return -1;
		}
	}
	return fdatasync(fd);
}

START_TEST(test_recorder_enospc_backpressure_then_resume)
{
	walrec_recorder_config_t cfg = small_config();
	cfg.max_hot_segments = 0;
	walrec_recorder_t *rec = NULL;
	/* Swapped before the threads start; the flag toggles the fault. */
	wr_sys.fallocate = fallocate_faulty;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	walrec_log_set_handler(NULL, NULL, WALREC_LOG_ERROR - 1); /* quiet */
	atomic_store(&fault_fallocate, 1);
	uint64_t next = 1;
	walrec_event_t ev;
	int rc = 0;
	/* The four prepared segments carry us for a while, then back-pressure. */
	while (next < 4096 * 20) {
		fill_event(&ev, next);
		uint64_t id;
		rc = walrec_recorder_append(rec, &ev, &id);
		if (rc != 0)
			break;
		ck_assert_uint_eq(id, next);
		next++;
	}
	ck_assert_msg(rc == -ENOSPC || rc == -EAGAIN, "got %s", walrec_strerror(rc));
	/* How many events the active and prepared segments took depends on how
	 * many partial blocks the sync interval sealed: only that some were. */
	ck_assert_uint_gt(next, 1);
	/* Still refused while the disk is full; nothing was taken. */
	ck_assert_int_eq(walrec_recorder_append(rec, &ev, NULL), rc);
	ck_assert_int_eq(walrec_recorder_sync(rec), 0); /* what was accepted is durable */
	atomic_store(&fault_fallocate, 0);
	uint64_t deadline = wr_clock_now_ns() + 10000000000ull;
	uint64_t id = 0;
	do {
		rc = walrec_recorder_append(rec, &ev, &id);
		if (rc != 0)
			usleep(1000);
	} while (rc != 0 && wr_clock_now_ns() < deadline);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(id, next);
	next++;
	append_n(rec, 10000, &next);
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
	wr_sys_reset();
	struct dir_info di;
	verify_dir(dir, &di);
	ck_assert_uint_eq(dir_last_id(&di), next - 1);
	uint64_t sum = 0;
	for (size_t i = 0; i < di.n; i++)
		sum += di.seg[i].events;
	ck_assert_uint_eq(sum, next - 1);
}
END_TEST

/*
 * 100 events durable, then *fault is raised (an EIO on the way to the
 * disk) and 100 more appended: sync reports the error, it is latched, no
 * event after 100 is ever reported durable, even once the fault is gone.
 */
static void
check_latched_after_fault(_Atomic int *fault)
{
	walrec_recorder_config_t cfg = small_config();
	walrec_recorder_t *rec = NULL;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	uint64_t next = 1;
	append_n(rec, 100, &next);
	ck_assert_int_eq(walrec_recorder_sync(rec), 0);
	walrec_log_set_handler(NULL, NULL, WALREC_LOG_ERROR - 1);
	atomic_store(fault, 1);
	/* The flusher or an interval sync may meet the fault while we append:
	 * then appends stop with ELATCHED, as they should. */
	walrec_event_t ev;
	for (int i = 0; i < 100; i++, next++) {
		fill_event(&ev, next);
		int rc = walrec_recorder_append(rec, &ev, NULL);
		if (rc == -WALREC_ELATCHED)
			break;
		ck_assert_int_eq(rc, 0);
	}
	ck_assert_int_eq(walrec_recorder_sync(rec), -EIO);
	walrec_recorder_state_t st;
	walrec_recorder_meta_state(rec, &st);
	ck_assert_int_eq(st.latched_error, -EIO);
	ck_assert_uint_eq(st.durable_event_id, 100);
	ck_assert_uint_le(st.meta_last_event_id, 100);
	fill_event(&ev, 1);
	ck_assert_int_eq(walrec_recorder_append(rec, &ev, NULL), -WALREC_ELATCHED);
	ck_assert_int_eq(walrec_recorder_wait_durable(rec, 150, 1000000), -EIO);
	ck_assert_int_eq(walrec_recorder_wait_durable(rec, 100, 0), 0);
	/* the fault goes away: still latched, nothing more reported durable */
	atomic_store(fault, 0);
	ck_assert_int_eq(walrec_recorder_sync(rec), -EIO);
	ck_assert_int_ne(walrec_recorder_close(rec), 0);
	walrec_recorder_meta_state(rec, &st);
	ck_assert_uint_eq(st.durable_event_id, 100);
	walrec_recorder_destroy(rec);
}

/* The sync of written blocks fails. */
START_TEST(test_recorder_sync_eio_latched)
{
	wr_sys.msync = msync_faulty;
	check_latched_after_fault(&fault_msync);
}
END_TEST

/* Writing a sealed block into its segment fails. */
START_TEST(test_recorder_block_write_eio_latched)
{
	wr_sys.pwrite = pwrite_faulty;
	check_latched_after_fault(&fault_pwrite);
}
END_TEST

START_TEST(test_recorder_fdatasync_eio_at_segment_close_latched)
{
	walrec_recorder_config_t cfg = small_config();
	walrec_recorder_t *rec = NULL;
	/* Swapped before the threads start; the flag toggles the fault. */
	wr_sys.fdatasync = fdatasync_faulty;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	walrec_log_set_handler(NULL, NULL, WALREC_LOG_ERROR - 1);
	/* Let the preparer fill its queue first: the rotation must not wait. */
	for (int i = 0; i < 500; i++) {
		pthread_mutex_lock(&rec->preparer.lock);
		unsigned c = rec->preparer.count;
		pthread_mutex_unlock(&rec->preparer.lock);
		if (c == WR_PREPARER_DEPTH)
			break;
		usleep(2000);
	}
	atomic_store(&fault_fdatasync, 1);
	/* One rotation: the maintainer's close of segment 1 fails. */
	walrec_event_t ev;
	uint64_t next = 1;
	int arc = 0;
	while (next <= 4096 + 10 && arc == 0) {
		fill_event(&ev, next);
		arc = walrec_recorder_append(rec, &ev, NULL);
		if (arc == 0)
			next++;
	}
	ck_assert_msg(arc == 0 || arc == -WALREC_ELATCHED, "%s", walrec_strerror(arc));
	ck_assert_uint_gt(next, 4096 / 2);
	int rc = walrec_recorder_sync(rec);
	ck_assert_int_eq(rc, -EIO);
	walrec_recorder_state_t st;
	walrec_recorder_meta_state(rec, &st);
	ck_assert_uint_lt(st.durable_event_id, 4096); /* segment 1's tail never reported */
	ck_assert_int_eq(walrec_recorder_wait_durable(rec, 4096, 0), -EIO);
	atomic_store(&fault_fdatasync, 0);
	ck_assert_int_ne(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
}
END_TEST

/* ---- faults in the background work ------------------------------------------------ */

static _Atomic int fault_lz4_enospc;  /* pwrite of a .wal.lz4.tmp: ENOSPC */
/*
 * A full disk: ENOSPC from fallocate, and from pwrite/write of any file in
 * dir but a segment's preallocated space (writing there needs no new
 * blocks: the reservation is what fallocate is for).
 */
static _Atomic int fault_full_disk;
static _Atomic int fault_meta_rename; /* rename of wal.meta.tmp: EIO */
static _Atomic int fault_meta_short;  /* pwrite of wal.meta.tmp: at most 3 bytes a call */
static _Atomic int fault_unlink_seg;  /* unlink of a .wal or .wal.lz4: EACCES */
static _Atomic int fault_cold_rename; /* rename to a .wal.lz4 (compression): EIO */
static _Atomic int meta_short_calls;

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The path of fd, when it is a file in the test directory. */
static bool
fd_in_dir(int fd, char *out, size_t n)
{
	char link[64];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t len = readlink(link, out, n - 1);
	if (len <= 0)
		return false;
	out[len] = '\0';
	size_t dl = strlen(dir);
	return strncmp(out, dir, dl) == 0 && out[dl] == '/';
}

static ssize_t
pwrite_faults(int fd, const void *buf, size_t len, off_t off)
{
	char path[4096];
	if (fd_in_dir(fd, path, sizeof path)) {
		if ((atomic_load(&fault_full_disk) && !ends_with(path, WR_SEGMENT_SUFFIX)) ||
		    (atomic_load(&fault_lz4_enospc) && ends_with(path, ".wal.lz4.tmp"))) {
			errno = ENOSPC;
			return -1;
		}
		if (atomic_load(&fault_meta_short) && ends_with(path, "/wal.meta.tmp")) {
			atomic_fetch_add(&meta_short_calls, 1);
			return pwrite(fd, buf, len > 3 ? 3 : len, off);
		}
	}
	return pwrite(fd, buf, len, off);
}

static ssize_t
write_faults(int fd, const void *buf, size_t len)
{
	char path[4096];
	if (atomic_load(&fault_full_disk) && fd_in_dir(fd, path, sizeof path) &&
	    !ends_with(path, WR_SEGMENT_SUFFIX)) {
		errno = ENOSPC;
		return -1;
	}
	return write(fd, buf, len);
}

static int
fallocate_faults(int fd, int mode, off_t off, off_t len)
{
	char path[4096];
	if (atomic_load(&fault_full_disk) && fd_in_dir(fd, path, sizeof path)) {
		errno = ENOSPC;
		return -1;
	}
	return fallocate(fd, mode, off, len);
}

static int
rename_faults(const char *from, const char *to)
{
	if ((atomic_load(&fault_meta_rename) && ends_with(from, "/wal.meta.tmp")) ||
	    (atomic_load(&fault_cold_rename) && ends_with(to, WR_COLD_SUFFIX))) {
		errno = EIO;
		return -1;
	}
	return rename(from, to);
}

static int
unlink_faults(const char *path)
{
	if (atomic_load(&fault_unlink_seg) &&
	    (ends_with(path, WR_SEGMENT_SUFFIX) || ends_with(path, WR_COLD_SUFFIX))) {
		errno = EACCES;
		return -1;
	}
	return unlink(path);
}

static void
install_faults(void)
{
	wr_sys.pwrite = pwrite_faults;
	wr_sys.write = write_faults;
	wr_sys.fallocate = fallocate_faults;
	wr_sys.rename = rename_faults;
	wr_sys.unlink = unlink_faults;
}

/* Wait (at most 10 s) for a log line holding needle. */
static void
wait_log(const char *needle)
{
	uint64_t deadline = wr_clock_now_ns() + 10000000000ull;
	while (!log_has(needle) && wr_clock_now_ns() < deadline)
		usleep(5000);
}

/* Files in dir whose name ends with suffix. */
static unsigned
count_suffix(const char *suffix)
{
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	unsigned n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		n += ends_with(de->d_name, suffix);
	closedir(d);
	return n;
}

/* Wait (at most 15 s) until cond() holds. */
static bool
eventually(bool (*cond)(void))
{
	uint64_t deadline = wr_clock_now_ns() + 15000000000ull;
	while (!cond()) {
		if (wr_clock_now_ns() > deadline)
			return false;
		usleep(5000);
	}
	return true;
}

static bool
two_cold(void)
{
	return count_suffix(WR_COLD_SUFFIX) >= 2;
}

/* The last event id named by the wal.meta on disk (0 if unreadable). */
static uint64_t
meta_on_disk(void)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/wal.meta", dir);
	size_t len = 0;
	uint8_t *p = wr_test_read_file(path, &len);
	struct wr_meta_state st = { 0 };
	if (p && len == WR_META_SIZE)
		wr_meta_decode(p, &st);
	free(p);
	return st.last_event_id;
}

/* One more event, a sync, and time for the 100 ms wal.meta cadence. */
static void
append_sync_pause(walrec_recorder_t *rec, uint64_t *next, useconds_t pause)
{
	append_n(rec, 1, next);
	ck_assert_int_eq(walrec_recorder_sync(rec), 0);
	usleep(pause);
}

START_TEST(test_recorder_enospc_in_compression_retried)
{
	walrec_recorder_config_t cfg = small_config();
	cfg.max_hot_segments = 1;
	log_start();
	install_faults();
	atomic_store(&fault_lz4_enospc, 1);
	walrec_recorder_t *rec = NULL;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	uint64_t next = 1;
	append_n(rec, 4096 * 4, &next);
	ck_assert_int_eq(walrec_recorder_sync(rec), 0);
	wait_log("compressing");
	ck_assert_msg(log_has("No space left on device; the segment stays uncompressed"), "%s",
		      log_line("compressing"));
	/* The recorder goes on; nothing is lost. */
	append_n(rec, 1000, &next);
	ck_assert_int_eq(walrec_recorder_sync(rec), 0);
	walrec_recorder_state_t st;
	walrec_recorder_meta_state(rec, &st);
	ck_assert_int_eq(st.latched_error, 0);
	ck_assert_uint_eq(st.durable_event_id, next - 1);
	/* Closed while still full (its last retention pass fails too): nothing half-made left. */
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
	ck_assert_uint_eq(count_suffix(WR_COLD_SUFFIX), 0);
	ck_assert_uint_eq(count_suffix(".wal.lz4.tmp"), 0);
	struct dir_info di;
	verify_dir(dir, &di);
	ck_assert_uint_eq(dir_last_id(&di), next - 1);
	/* Space again: compression catches up. */
	atomic_store(&fault_lz4_enospc, 0);
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	ck_assert_msg(eventually(two_cold), "no compression after the disk freed up");
	append_n(rec, 4096, &next);
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
	wr_sys_reset();
	verify_dir(dir, &di); /* cold ones through the lz4 tool: identical to the .wal */
	ck_assert_uint_ge(di.cold, 2);
	ck_assert_uint_eq(dir_last_id(&di), next - 1);
	ck_assert_uint_eq(di.seg[0].first, 1);
}
END_TEST

static uint64_t meta_want;

static bool
meta_caught_up(void)
{
	return meta_on_disk() >= meta_want;
}

START_TEST(test_recorder_wal_meta_short_write_and_rename_failure)
{
	walrec_recorder_config_t cfg = small_config();
	log_start();
	install_faults();
	walrec_recorder_t *rec = NULL;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	uint64_t next = 1;
	/* Short writes: completed by the retry loop, wal.meta is right. */
	atomic_store(&fault_meta_short, 1);
	append_n(rec, 1000, &next);
	for (int i = 0; i < 100 && meta_on_disk() != next - 1; i++)
		append_sync_pause(rec, &next, 120000);
	ck_assert_uint_eq(meta_on_disk(), next - 1);
	ck_assert_int_gt(atomic_load(&meta_short_calls), 5); /* 16 bytes, 3 at a time */
	atomic_store(&fault_meta_short, 0);

	/* The rename fails: wal.meta keeps its old 16 bytes; nothing is latched. */
	uint64_t before = meta_on_disk();
	atomic_store(&fault_meta_rename, 1);
	for (int i = 0; i < 10; i++)
		append_sync_pause(rec, &next, 60000);
	ck_assert(log_has("wal.meta can not be replaced"));
	ck_assert_uint_eq(meta_on_disk(), before);
	walrec_recorder_state_t st;
	walrec_recorder_meta_state(rec, &st);
	ck_assert_int_eq(st.latched_error, 0);
	ck_assert_uint_eq(st.durable_event_id, next - 1);
	ck_assert_uint_gt(rec->metrics.meta_store.flush_failures.value, 0);
	/* Renames work again: it catches up within the retry interval. */
	atomic_store(&fault_meta_rename, 0);
	append_n(rec, 10, &next);
	ck_assert_int_eq(walrec_recorder_sync(rec), 0);
	meta_want = next - 1;
	uint64_t deadline = wr_clock_now_ns() + 10000000000ull;
	while (!meta_caught_up() && wr_clock_now_ns() < deadline)
		append_sync_pause(rec, &next, 50000);
	ck_assert(meta_caught_up());
	ck_assert(log_has("wal.meta is replaced again"));
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
	ck_assert_uint_eq(meta_on_disk(), next - 1);
	ck_assert_uint_eq(count_suffix("wal.meta.tmp"), 0); /* failed attempts left nothing */
}
END_TEST

static bool
retention_caught_up(void)
{
	/* At most one cold segment, and no .wal left beside its .wal.lz4. */
	if (count_suffix(WR_COLD_SUFFIX) > 1)
		return false;
	DIR *d = opendir(dir);
	struct dirent *de;
	bool twin = false;
	while (!twin && (de = readdir(d)) != NULL) {
		uint32_t idx;
		bool cold;
		if (wr_segment_name_parse(de->d_name, &idx, &cold) == 1 && cold) {
			char hot[4200];
			snprintf(hot, sizeof hot, "%s/%08u.wal", dir, idx);
			twin = access(hot, F_OK) == 0;
		}
	}
	closedir(d);
	return !twin;
}

START_TEST(test_recorder_retention_unlink_failure_retried)
{
	walrec_recorder_config_t cfg = small_config();
	cfg.max_hot_segments = 1;
	cfg.max_cold_segments = 1;
	log_start();
	install_faults();
	atomic_store(&fault_unlink_seg, 1);
	walrec_recorder_t *rec = NULL;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	uint64_t next = 1;
	append_n(rec, 4096 * 5, &next);
	ck_assert_int_eq(walrec_recorder_sync(rec), 0);
	wait_log("unlink");
	ck_assert_msg(log_has("Permission denied"), "%s", log_line("unlink"));
	/* Reported and left: the recorder goes on, everything stays readable. */
	append_n(rec, 2000, &next);
	ck_assert_int_eq(walrec_recorder_sync(rec), 0);
	walrec_recorder_state_t st;
	walrec_recorder_meta_state(rec, &st);
	ck_assert_int_eq(st.latched_error, 0);
	ck_assert(!retention_caught_up());
	/* Retried once unlink works. */
	atomic_store(&fault_unlink_seg, 0);
	ck_assert_msg(eventually(retention_caught_up), "retention did not catch up");
	append_n(rec, 100, &next);
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
	wr_sys_reset();
	struct dir_info di;
	verify_dir(dir, &di);
	ck_assert_uint_le(di.cold, 1);
	ck_assert_uint_le(di.hot, 1);
	ck_assert_uint_eq(dir_last_id(&di), next - 1);
}
END_TEST

/*
 * Compression that can not keep up (here: it fails every time) leaves hot
 * above its limit for good; max_cold still holds. Before the fix the
 * maintainer retried the compression first at every step and never got
 * to the deletions: cold segments piled up without bound.
 */
START_TEST(test_recorder_cold_limit_holds_while_compression_fails)
{
	/* First 5 cold segments and 1 hot, then 4 more hot (no hot limit). */
	walrec_recorder_config_t cfg = small_config();
	cfg.max_hot_segments = 1;
	uint64_t next = 1;
	record_run(&cfg, 4096 * 7, &next);
	cfg.max_hot_segments = 0;
	record_run(&cfg, 4096 * 4, &next);
	struct dir_info di;
	verify_dir(dir, &di);
	ck_assert_uint_ge(di.cold, 4);
	ck_assert_uint_ge(di.hot, 4);

	/* Both limits at 1, every compression failing. */
	log_start();
	install_faults();
	atomic_store(&fault_cold_rename, 1);
	cfg.max_hot_segments = 1;
	cfg.max_cold_segments = 1;
	record_run(&cfg, 4096, &next);
	atomic_store(&fault_cold_rename, 0);
	wr_sys_reset();
	ck_assert_msg(log_has("compressing"), "no compression failed:\n%s", log_buf);
	verify_dir(dir, &di);
	ck_assert_msg(di.cold <= 1, "%zu cold segments, limit 1:\n%s", di.cold, log_buf);
	ck_assert_uint_ge(di.hot, 4);
	ck_assert_uint_eq(dir_last_id(&di), next - 1);
}
END_TEST

START_TEST(test_recorder_full_disk_then_frees)
{
	walrec_recorder_config_t cfg = small_config();
	cfg.max_hot_segments = 1;
	log_start();
	install_faults();
	walrec_recorder_t *rec = NULL;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	uint64_t next = 1;
	append_n(rec, 500, &next);
	ck_assert_int_eq(walrec_recorder_sync(rec), 0);

	/* Full: no new block can be allocated anywhere in the directory. */
	atomic_store(&fault_full_disk, 1);
	for (int i = 0; i < 5; i++)
		append_sync_pause(rec, &next, 150000); /* wal.meta replaces fail meanwhile */
	ck_assert(log_has("wal.meta can not be replaced"));
	walrec_event_t ev;
	int rc = 0;
	while (next < 4096 * 20) {
		fill_event(&ev, next);
		uint64_t id;
		rc = walrec_recorder_append(rec, &ev, &id);
		if (rc != 0)
			break;
		next++;
	}
	ck_assert_msg(rc == -ENOSPC, "%s", walrec_strerror(rc)); /* back-pressure, not an error */
	ck_assert_int_eq(walrec_recorder_sync(rec), 0);     /* what was accepted is durable */
	walrec_recorder_state_t st;
	walrec_recorder_meta_state(rec, &st);
	ck_assert_int_eq(st.latched_error, 0);
	ck_assert_uint_eq(st.durable_event_id, next - 1);

	/* Space again: appends, compression and wal.meta resume. */
	atomic_store(&fault_full_disk, 0);
	uint64_t deadline = wr_clock_now_ns() + 10000000000ull;
	uint64_t id = 0;
	do {
		fill_event(&ev, next);
		rc = walrec_recorder_append(rec, &ev, &id);
		if (rc != 0)
			usleep(1000);
	} while (rc != 0 && wr_clock_now_ns() < deadline);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(id, next);
	next++;
	append_n(rec, 4096 * 2, &next);
	ck_assert_int_eq(walrec_recorder_sync(rec), 0);
	ck_assert_msg(eventually(two_cold), "no compression after the disk freed up");
	ck_assert_int_eq(walrec_recorder_close(rec), 0);
	walrec_recorder_destroy(rec);
	wr_sys_reset();
	ck_assert_uint_eq(meta_on_disk(), next - 1);
	struct dir_info di;
	verify_dir(dir, &di);
	ck_assert_uint_eq(dir_last_id(&di), next - 1);
	ck_assert_uint_eq(di.seg[0].first, 1);
	uint64_t sum = 0;
	for (size_t i = 0; i < di.n; i++)
		sum += di.seg[i].events;
	ck_assert_uint_eq(sum, next - 1);
}
END_TEST

/* ---- idle ---------------------------------------------------------------------------- */

static uint64_t
cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ull +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ull;
}

START_TEST(test_recorder_idle_uses_no_cpu)
{
	walrec_recorder_config_t cfg = small_config();
	walrec_recorder_t *rec = NULL;
	ck_assert_int_eq(walrec_recorder_open(&rec, dir, &cfg), 0);
	uint64_t next = 1;
	append_n(rec, 1000, &next);
	ck_assert_int_eq(walrec_recorder_sync(rec), 0);
	usleep(300000); /* let the workers settle */
	uint64_t c0 = cpu_ns(), t0 = wr_clock_now_ns();
	usleep(2000000);
	uint64_t c1 = cpu_ns(), t1 = wr_clock_now_ns();
	double pct = 100.0 * (double)(c1 - c0) / (double)(t1 - t0);
	printf("test_recorder_idle_uses_no_cpu: %.3f%% CPU over %.2f s\n", pct,
	       (double)(t1 - t0) / 1e9);
	ck_assert_msg(pct < 5.0, "idle recorder used %.2f%% CPU", pct);
	walrec_recorder_destroy(rec);
}
END_TEST

static Suite *
recorder_suite(void)
{
	Suite *s = suite_create("recorder");
	TCase *core = tcase_create("core");
	tcase_add_checked_fixture(core, setup_dir, teardown_dir);
	tcase_set_timeout(core, 60);
	tcase_add_test(core, test_recorder_config_limits);
	tcase_add_test(core, test_recorder_worker_threads_named_and_pinned);
	tcase_add_test(core, test_recorder_rotation_compression_retention);
	tcase_add_test(core, test_recorder_reopen_continues_ids);
	tcase_add_test(core, test_recorder_retention_of_segments_found_at_open);
	tcase_add_test(core, test_recorder_wait_durable_and_poll);
	tcase_add_test(core, test_recorder_interval_makes_durable);
	tcase_add_test(core, test_recorder_idle_uses_no_cpu);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_checked_fixture(limits, setup_dir, teardown_dir);
	tcase_set_timeout(limits, 60);
	tcase_add_test(limits, test_recorder_damaged_meta_recovers_by_scan);
	tcase_add_test(limits, test_recorder_damaged_segment_quarantined);
	tcase_add_test(limits, test_recorder_torn_tail_cut);
	tcase_add_test(limits, test_recorder_damage_in_middle_kept_aside);
	tcase_add_test(limits, test_recorder_enospc_backpressure_then_resume);
	tcase_add_test(limits, test_recorder_sync_eio_latched);
	tcase_add_test(limits, test_recorder_block_write_eio_latched);
	tcase_add_test(limits, test_recorder_fdatasync_eio_at_segment_close_latched);
	tcase_add_test(limits, test_recorder_enospc_in_compression_retried);
	tcase_add_test(limits, test_recorder_wal_meta_short_write_and_rename_failure);
	tcase_add_test(limits, test_recorder_retention_unlink_failure_retried);
	tcase_add_test(limits, test_recorder_cold_limit_holds_while_compression_fails);
	tcase_add_test(limits, test_recorder_full_disk_then_frees);
	suite_add_tcase(s, limits);
	TCase *conc = tcase_create("concurrency");
	tcase_add_checked_fixture(conc, setup_dir, teardown_dir);
	tcase_set_timeout(conc, 120);
	tcase_add_test(conc, test_recorder_crash_loses_nothing_durable);
	suite_add_tcase(s, conc);
	return s;
}

WR_CHECK_MAIN(recorder_suite)
