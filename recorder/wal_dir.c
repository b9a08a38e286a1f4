/* SPDX-License-Identifier: MIT */
/* WAL directory scanner: segments by header index, duplicates, gaps, id overlaps. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fs.h"
#include "lib/sys.h"
#include "recorder/wal_dir.h"

static int
wr_wal_dir_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Header index, then valid headers first, then hot before cold, then name:
 * the valid files of one index end up adjacent.
 */
static int
wr_wal_dir_file_cmp(const void *pa, const void *pb)
{
	const struct wr_wal_file *a = pa, *b = pb;
	if (a->segment_index != b->segment_index)
		return a->segment_index < b->segment_index ? -1 : 1;
	if (a->header_ok != b->header_ok)
		return a->header_ok ? -1 : 1;
	if (a->cold != b->cold)
		return a->cold ? 1 : -1;
	return strcmp(a->name, b->name);
}

static int wr_wal_dir_problem(struct wr_wal_dir *d, enum wr_wal_dir_problem_kind kind, bool error,
			      size_t file, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
wr_wal_dir_problem(struct wr_wal_dir *d, enum wr_wal_dir_problem_kind kind, bool error,
		   size_t file, const char *fmt, ...)
{
	struct wr_wal_dir_problem *n = realloc(d->problems, (d->nproblems + 1) * sizeof *n);
	if (!n)
		return -ENOMEM;
	d->problems = n;
	struct wr_wal_dir_problem *p = &n[d->nproblems++];
	p->kind = kind;
	p->error = error;
	p->file = file;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->message, sizeof p->message, fmt, ap);
	va_end(ap);
	return 0;
}

int
wr_wal_dir_file_path(const struct wr_wal_dir *d, size_t i, char *out, size_t n)
{
	return wr_fs_join(out, n, d->path, d->segments[i].name);
}

/* Read one segment's header, or all of it with WR_WAL_DIR_VERIFY. */
static int
wr_wal_dir_read_file(struct wr_wal_dir *d, size_t i, unsigned flags)
{
	struct wr_wal_file *f = &d->segments[i];
	char path[4096 + 256];
	if (wr_wal_dir_file_path(d, i, path, sizeof path) < 0) {
		f->report.error = -ENAMETOOLONG;
		snprintf(f->report.message, sizeof f->report.message, "path too long");
		return 0;
	}
	f->segment_index = f->name_index;
	if (!(flags & WR_WAL_DIR_VERIFY)) {
		int rc = wr_segment_peek_header(path, f->cold, &f->header, &f->file_size, &f->report);
		if (rc == -ENOMEM)
			return rc;
		if (rc == 0) {
			f->header_ok = true;
			f->segment_index = f->header.segment_index;
			if (f->header.closed_ts_ns != 0) {
				f->ids_known = true;
				f->first_event_id = f->header.first_event_id;
				f->last_event_id = f->header.last_event_id;
			}
		}
		return 0;
	}
	struct wr_segment_reader r;
	int rc = wr_segment_reader_open(&r, path, f->cold ? WR_SEGMENT_READER_COLD
							  : WR_SEGMENT_READER_HOT);
	f->report = r.report;
	if (rc == -ENOMEM)
		return rc;
	if (rc == 0) {
		f->header_ok = true;
		f->header = r.header;
		f->segment_index = r.header.segment_index;
		f->file_size = r.file_size;
		f->verified = true;
		f->data_size = r.data_size;
		f->valid_blocks = r.valid_blocks;
		f->event_count = r.event_count;
		f->ids_known = true;
		f->first_event_id = r.first_event_id;
		f->last_event_id = r.last_event_id;
	} else {
		struct stat st;
		if (stat(path, &st) == 0)
			f->file_size = (uint64_t)st.st_size;
	}
	wr_segment_reader_close(&r);
	return 0;
}

/* Among files of one header index [a, b), pick the one to read; mark the rest. */
static int
wr_wal_dir_duplicates(struct wr_wal_dir *d, size_t a, size_t b)
{
	size_t use = a;
	for (size_t i = a; i < b; i++) {
		/* A file that verified beats one that did not; hot beats cold (order). */
		if (d->segments[i].report.error == 0 && d->segments[use].report.error != 0)
			use = i;
	}
	for (size_t i = a; i < b; i++) {
		if (i == use)
			continue;
		struct wr_wal_file *f = &d->segments[i];
		const struct wr_wal_file *u = &d->segments[use];
		f->duplicate = true;
		bool pair = f->cold != u->cold;
		int rc = wr_wal_dir_problem(d, WR_WAL_DIR_DUPLICATE, !pair, i,
					    pair ? "segment %u: both %s and %s exist (an interrupted "
						   "compression?); using %s"
						 : "segment %u: %s and %s hold the same segment "
						   "index; using %s",
					    f->segment_index, u->name, f->name, u->name);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int
wr_wal_dir_analyse(struct wr_wal_dir *d)
{
	int rc = 0;
	for (size_t i = 0; i < d->nsegments; i++) {
		const struct wr_wal_file *f = &d->segments[i];
		if (f->header_ok && f->name_index != f->segment_index) {
			rc = wr_wal_dir_problem(d, WR_WAL_DIR_NAME_MISMATCH, false, i,
						"%s: name says segment %u, header says %u", f->name,
						f->name_index, f->segment_index);
			if (rc < 0)
				return rc;
		}
	}
	for (size_t a = 0; a < d->nsegments;) {
		size_t b = a + 1;
		if (!d->segments[a].header_ok) {
			a = b;
			continue;
		}
		while (b < d->nsegments && d->segments[b].header_ok &&
		       d->segments[b].segment_index == d->segments[a].segment_index)
			b++;
		if (b - a > 1 && (rc = wr_wal_dir_duplicates(d, a, b)) < 0)
			return rc;
		a = b;
	}

	/* Walk the files in use, in index order. */
	const struct wr_wal_file *prev = NULL, *prev_ids = NULL;
	for (size_t i = 0; i < d->nsegments; i++) {
		const struct wr_wal_file *f = &d->segments[i];
		if (!f->header_ok || f->duplicate)
			continue;
		if (prev && f->segment_index > prev->segment_index + 1) {
			rc = wr_wal_dir_problem(d, WR_WAL_DIR_INDEX_GAP, false, i,
						"segments %u..%u missing (between %s and %s)",
						prev->segment_index + 1, f->segment_index - 1,
						prev->name, f->name);
			if (rc < 0)
				return rc;
		}
		prev = f;
		if (f->report.error != 0) {
			/* Its last id is only that of the readable prefix: no gap to report. */
			prev_ids = NULL;
			continue;
		}
		if (!f->ids_known || f->first_event_id == 0)
			continue;
		rc = 0;
		if (prev_ids && f->first_event_id <= prev_ids->last_event_id) {
			rc = wr_wal_dir_problem(d, WR_WAL_DIR_ID_OVERLAP, true, i,
						"%s: first event id %llu <= last id %llu of %s",
						f->name, (unsigned long long)f->first_event_id,
						(unsigned long long)prev_ids->last_event_id,
						prev_ids->name);
		} else if (prev_ids && f->first_event_id != prev_ids->last_event_id + 1) {
			rc = wr_wal_dir_problem(d, WR_WAL_DIR_ID_GAP, false, i,
						"event ids %llu..%llu missing (between %s and %s)",
						(unsigned long long)prev_ids->last_event_id + 1,
						(unsigned long long)f->first_event_id - 1,
						prev_ids->name, f->name);
		}
		if (rc < 0)
			return rc;
		prev_ids = f;
	}
	return 0;
}

int
wr_wal_dir_scan(struct wr_wal_dir *d, const char *path, unsigned flags,
		wr_wal_dir_progress_fn progress, void *progress_arg)
{
	memset(d, 0, sizeof *d);
	if (strlen(path) >= sizeof d->path)
		return -ENAMETOOLONG;
	strcpy(d->path, path);
	DIR *dir = opendir(path);
	if (!dir)
		return -errno;

	int rc = 0;
	size_t cap = 0, fcap = 0;
	for (;;) {
		errno = 0;
		struct dirent *e = readdir(dir);
		if (!e) {
			rc = -errno;
			break;
		}
		const char *name = e->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		uint32_t index;
		bool cold;
		if (strlen(name) < sizeof d->segments[0].name &&
		    wr_segment_name_parse(name, &index, &cold)) {
			if (d->nsegments == cap) {
				cap = cap ? cap * 2 : 16;
				struct wr_wal_file *n = realloc(d->segments, cap * sizeof *n);
				if (!n) {
					rc = -ENOMEM;
					break;
				}
				d->segments = n;
			}
			struct wr_wal_file *f = &d->segments[d->nsegments++];
			memset(f, 0, sizeof *f);
			strcpy(f->name, name);
			f->name_index = index;
			f->cold = cold;
			continue;
		}
		if (strcmp(name, WR_META_NAME) == 0) {
			d->has_meta = true;
			continue;
		}
		if (d->nforeign == fcap) {
			fcap = fcap ? fcap * 2 : 16;
			char **n = realloc(d->foreign, fcap * sizeof *n);
			if (!n) {
				rc = -ENOMEM;
				break;
			}
			d->foreign = n;
		}
		if (!(d->foreign[d->nforeign] = strdup(name))) {
			rc = -ENOMEM;
			break;
		}
		d->nforeign++;
	}
	closedir(dir);
	if (rc < 0)
		return rc;
	if (d->nforeign)
		qsort(d->foreign, d->nforeign, sizeof *d->foreign, wr_wal_dir_strcmp);

	if (d->has_meta) {
		char mpath[4096 + 16];
		struct stat st;
		if (wr_fs_join(mpath, sizeof mpath, d->path, WR_META_NAME) == 0 &&
		    stat(mpath, &st) == 0)
			d->meta_size = (uint64_t)st.st_size;
	}

	/* Names first so that progress and reading go in a stable order. */
	if (d->nsegments > 1)
		qsort(d->segments, d->nsegments, sizeof *d->segments, wr_wal_dir_file_cmp);
	uint64_t bytes_total = 0, bytes_done = 0;
	if (progress) {
		for (size_t i = 0; i < d->nsegments; i++) {
			char p[4096 + 256];
			struct stat st;
			if (wr_wal_dir_file_path(d, i, p, sizeof p) == 0 && stat(p, &st) == 0)
				bytes_total += (uint64_t)st.st_size;
		}
	}
	for (size_t i = 0; i < d->nsegments; i++) {
		rc = wr_wal_dir_read_file(d, i, flags);
		if (rc < 0)
			return rc;
		bytes_done += d->segments[i].file_size;
		if (progress)
			progress(progress_arg, i + 1, d->nsegments, bytes_done, bytes_total);
	}
	if (d->nsegments > 1)
		qsort(d->segments, d->nsegments, sizeof *d->segments, wr_wal_dir_file_cmp);
	return wr_wal_dir_analyse(d);
}

void
wr_wal_dir_free(struct wr_wal_dir *d)
{
	for (size_t i = 0; i < d->nforeign; i++)
		free(d->foreign[i]);
	free(d->foreign);
	free(d->segments);
	free(d->problems);
	memset(d, 0, sizeof *d);
}

size_t
wr_wal_dir_errors(const struct wr_wal_dir *d)
{
	size_t n = 0;
	for (size_t i = 0; i < d->nproblems; i++)
		n += d->problems[i].error;
	return n;
}

int
wr_wal_dir_check_meta(const struct wr_wal_dir *d, struct wr_meta_state *state, char *msg,
		      size_t msg_len)
{
	msg[0] = '\0';
	if (!d->has_meta)
		return -ENOENT;
	char path[4096 + 256];
	if (wr_fs_join(path, sizeof path, d->path, WR_META_NAME) < 0)
		return -ENAMETOOLONG;
	int fd = wr_sys.open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	uint8_t buf[WR_META_SIZE + 1];
	ssize_t n;
	do
		n = pread(fd, buf, sizeof buf, 0);
	while (n < 0 && errno == EINTR);
	int err = n < 0 ? -errno : 0;
	wr_sys.close(fd);
	if (err < 0)
		return err;
	if (n != WR_META_SIZE) {
		snprintf(msg, msg_len, "wal.meta is %s bytes, expected %u",
			 n > (ssize_t)WR_META_SIZE ? "more than 16" : (n == 0 ? "0" : "fewer than 16"),
			 WR_META_SIZE);
		return 1;
	}
	struct wr_meta_state m;
	wr_meta_decode(buf, &m);
	if (state)
		*state = m;

	const struct wr_wal_file *f = NULL;
	size_t fi = 0;
	for (size_t i = 0; i < d->nsegments && !f; i++) {
		if (d->segments[i].header_ok && !d->segments[i].duplicate &&
		    d->segments[i].segment_index == m.segment_index)
			f = &d->segments[fi = i];
	}
	if (!f) {
		snprintf(msg, msg_len, "wal.meta names segment %u, which is not in the directory",
			 m.segment_index);
		return 1;
	}
	if (m.offset < WR_SEGMENT_HEADER_SIZE ||
	    (m.offset - WR_SEGMENT_HEADER_SIZE) % WR_BLOCK_SIZE != 0) {
		snprintf(msg, msg_len, "wal.meta offset %u in %s is not a block boundary", m.offset,
			 f->name);
		return 1;
	}
	uint32_t k = (m.offset - WR_SEGMENT_HEADER_SIZE) / WR_BLOCK_SIZE;

	char spath[4096 + 256];
	if (wr_wal_dir_file_path(d, fi, spath, sizeof spath) < 0)
		return -ENAMETOOLONG;
	struct wr_segment_reader r;
	int rc = wr_segment_reader_open(&r, spath, f->cold ? WR_SEGMENT_READER_COLD
							  : WR_SEGMENT_READER_HOT);
	if (rc < 0) {
		snprintf(msg, msg_len, "wal.meta names %s, which can not be read: %s", f->name,
			 r.report.message);
		return rc == -WALREC_EFORMAT ? 1 : rc;
	}
	rc = 0;
	if (r.num_blocks && k > r.num_blocks) {
		snprintf(msg, msg_len, "wal.meta offset %u is past the end of %s (%u blocks)",
			 m.offset, f->name, r.num_blocks);
		rc = 1;
	} else if (k > r.valid_blocks) {
		snprintf(msg, msg_len,
			 "wal.meta offset %u (block %u) is past the %u valid blocks of %s", m.offset,
			 k, r.valid_blocks, f->name);
		rc = 1;
	} else if (k > 0 && r.blocks[k - 1].last_event_id != m.last_event_id) {
		snprintf(msg, msg_len,
			 "wal.meta last_event_id %llu, but block %u of %s ends at id %llu",
			 (unsigned long long)m.last_event_id, k - 1, f->name,
			 (unsigned long long)r.blocks[k - 1].last_event_id);
		rc = 1;
	} else if (k == 0 && r.first_event_id != 0 && m.last_event_id >= r.first_event_id) {
		snprintf(msg, msg_len,
			 "wal.meta last_event_id %llu at the start of %s, whose first id is %llu",
			 (unsigned long long)m.last_event_id, f->name,
			 (unsigned long long)r.first_event_id);
		rc = 1;
	}
	wr_segment_reader_close(&r);
	return rc;
}
