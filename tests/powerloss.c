/* SPDX-License-Identifier: MIT */
/* Power-loss simulator over the system-call table (see powerloss.h). */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/sys.h"
#include "recorder/format.h"
#include "tests/powerloss.h"
#include "tests/testutil.h"

#define PL_PAGE 4096u
#define PL_SECTOR 512u
#define PL_NAME 256

struct pl_buf {
	uint8_t *p;
	size_t n;
};

struct pl_obj {
	bool used;       /* slot in use */
	bool live;       /* reachable under a current name */
	dev_t dev;
	ino_t ino;
	char name[PL_NAME]; /* current name while live; the last one after */
	struct pl_buf dur;  /* what stable storage holds */
	struct pl_buf final; /* content when it lost its last name */
	bool has_final;
};

struct pl_entry {
	char name[PL_NAME];
	int obj;
};

struct pl_names {
	struct pl_entry *v;
	size_t n, cap;
};

enum pl_op_kind { PL_CREATE, PL_RENAME, PL_UNLINK };

struct pl_op {
	enum pl_op_kind kind;
	char a[PL_NAME], b[PL_NAME];
	int obj;
};

enum pl_mode { PL_PESSIMISTIC, PL_OPTIMISTIC, PL_RANDOM };

static struct {
	pthread_mutex_t lock;
	bool on;
	char dir[4096];
	size_t dirlen;
	dev_t dev;
	ino_t ino;
	char scratch[4096];
	uint64_t rng;
	struct pl_obj *objs;
	size_t nobjs;
	struct pl_names cur, dur;
	struct pl_op *ops;
	size_t nops, capops;
	double p;
	unsigned max_queued;
	struct wr_pl_crash *queue;
	size_t nq;
	wr_pl_durable_fn dfn;
	void *darg;
	uint64_t calls, crashes, dropped, seq;
	char errors[16384];
	size_t errlen;
	unsigned nerr;
} pl = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void pl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
pl_error(const char *fmt, ...)
{
	pl.nerr++;
	if (pl.errlen + 2 >= sizeof pl.errors)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(pl.errors + pl.errlen, sizeof pl.errors - pl.errlen - 1, fmt, ap);
	va_end(ap);
	if (n > 0) {
		pl.errlen += (size_t)n < sizeof pl.errors - pl.errlen - 1 ? (size_t)n
									: sizeof pl.errors - pl.errlen - 2;
		pl.errors[pl.errlen++] = '\n';
		pl.errors[pl.errlen] = '\0';
	}
}

static bool pl_trace;

#define PL_TRACE(...)                                                                  \
	do {                                                                           \
		if (pl_trace)                                                          \
			fprintf(stderr, "pl: " __VA_ARGS__);                           \
	} while (0)

static uint64_t
pl_rand(void)
{
	return wr_test_rand(&pl.rng);
}

static void
buf_free(struct pl_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->n = 0;
}

/* Read a whole file (libc calls: never the hooks). 0 or -errno. */
static int
pl_slurp(const char *path, struct pl_buf *out)
{
	out->p = NULL;
	out->n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	size_t cap = (size_t)st.st_size + 1;
	uint8_t *p = malloc(cap);
	size_t n = 0;
	while (p) {
		if (n == cap) {
			uint8_t *q = realloc(p, cap * 2);
			if (!q)
				break;
			p = q;
			cap *= 2;
		}
		ssize_t got = read(fd, p + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	if (!p)
		return -ENOMEM;
	out->p = p;
	out->n = n;
	return 0;
}

/* dir/name with name a single component: the name, else false. */
static bool
pl_name_of(const char *path, char name[PL_NAME])
{
	if (!pl.on || path == NULL || strncmp(path, pl.dir, pl.dirlen) != 0 ||
	    path[pl.dirlen] != '/')
		return false;
	const char *n = path + pl.dirlen + 1;
	if (*n == '\0' || strchr(n, '/') != NULL || strlen(n) >= PL_NAME)
		return false;
	strcpy(name, n);
	return true;
}

/* ---- names and objects ------------------------------------------------------ */

static int
names_find(const struct pl_names *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int
names_get(const struct pl_names *l, const char *name)
{
	int i = names_find(l, name);
	return i < 0 ? -1 : l->v[i].obj;
}

static void
names_set(struct pl_names *l, const char *name, int obj)
{
	int i = names_find(l, name);
	if (i >= 0) {
		l->v[i].obj = obj;
		return;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct pl_entry *v = realloc(l->v, cap * sizeof *v);
		if (!v) {
			pl_error("out of memory");
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	snprintf(l->v[l->n].name, PL_NAME, "%s", name);
	l->v[l->n].obj = obj;
	l->n++;
}

static int
names_del(struct pl_names *l, const char *name)
{
	int i = names_find(l, name);
	if (i < 0)
		return -1;
	int obj = l->v[i].obj;
	l->v[i] = l->v[l->n - 1];
	l->n--;
	return obj;
}

static void
names_copy(struct pl_names *dst, const struct pl_names *src)
{
	dst->n = 0;
	for (size_t i = 0; i < src->n; i++)
		names_set(dst, src->v[i].name, src->v[i].obj);
}

static void
names_apply(struct pl_names *l, const struct pl_op *op)
{
	switch (op->kind) {
	case PL_CREATE:
		names_set(l, op->a, op->obj);
		break;
	case PL_RENAME: {
		int o = names_del(l, op->a);
		if (o >= 0)
			names_set(l, op->b, o);
		break;
	}
	case PL_UNLINK:
		names_del(l, op->a);
		break;
	}
}

static int
obj_new(dev_t dev, ino_t ino, const char *name)
{
	size_t i = 0;
	for (; i < pl.nobjs && pl.objs[i].used; i++)
		;
	if (i == pl.nobjs) {
		struct pl_obj *v = realloc(pl.objs, (pl.nobjs + 64) * sizeof *v);
		if (!v) {
			pl_error("out of memory");
			return -1;
		}
		memset(v + pl.nobjs, 0, 64 * sizeof *v);
		pl.objs = v;
		pl.nobjs += 64;
	}
	struct pl_obj *o = &pl.objs[i];
	memset(o, 0, sizeof *o);
	o->used = true;
	o->live = true;
	o->dev = dev;
	o->ino = ino;
	snprintf(o->name, PL_NAME, "%s", name);
	return (int)i;
}

/*
 * The live object for an open file. A file that lost its last name here is
 * never synced by walrec; its inode number may already belong to a file
 * elsewhere, so only live objects match.
 */
static int
obj_by_inode(dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < pl.nobjs; i++) {
		const struct pl_obj *o = &pl.objs[i];
		if (o->used && o->live && o->dev == dev && o->ino == ino)
			return (int)i;
	}
	return -1;
}

static int
obj_by_fd(int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return -1;
	return obj_by_inode(st.st_dev, st.st_ino);
}

/* Keep what an object holds now: it is about to lose its last name. */
static void
obj_keep_final(int obj)
{
	struct pl_obj *o = &pl.objs[obj];
	char path[4096 + PL_NAME];
	snprintf(path, sizeof path, "%s/%s", pl.dir, o->name);
	buf_free(&o->final);
	if (pl_slurp(path, &o->final) == 0)
		o->has_final = true;
}

/* The object's current content. */
static int
obj_current(int obj, struct pl_buf *out)
{
	struct pl_obj *o = &pl.objs[obj];
	if (o->live) {
		char path[4096 + PL_NAME];
		snprintf(path, sizeof path, "%s/%s", pl.dir, o->name);
		return pl_slurp(path, out);
	}
	const struct pl_buf *src = o->has_final ? &o->final : &o->dur;
	out->p = malloc(src->n ? src->n : 1);
	if (!out->p)
		return -ENOMEM;
	if (src->n > 0)
		memcpy(out->p, src->p, src->n);
	out->n = src->n;
	return 0;
}

static void
op_push(enum pl_op_kind k, const char *a, const char *b, int obj)
{
	if (pl.nops == pl.capops) {
		size_t cap = pl.capops ? pl.capops * 2 : 64;
		struct pl_op *v = realloc(pl.ops, cap * sizeof *v);
		if (!v) {
			pl_error("out of memory");
			return;
		}
		pl.ops = v;
		pl.capops = cap;
	}
	struct pl_op *op = &pl.ops[pl.nops++];
	op->kind = k;
	snprintf(op->a, PL_NAME, "%s", a);
	snprintf(op->b, PL_NAME, "%s", b ? b : "");
	op->obj = obj;
}

/* fsync of the directory: every pending operation is durable. */
static void
pl_commit_dir(void)
{
	names_copy(&pl.dur, &pl.cur);
	pl.nops = 0;
	/* Objects that no name reaches any more are gone for good. */
	for (size_t i = 0; i < pl.nobjs; i++) {
		struct pl_obj *o = &pl.objs[i];
		if (o->used && !o->live) {
			bool ref = false;
			for (size_t k = 0; k < pl.dur.n && !ref; k++)
				ref = pl.dur.v[k].obj == (int)i;
			if (!ref) {
				buf_free(&o->dur);
				buf_free(&o->final);
				o->used = false;
			}
		}
	}
}

/* ---- the sealed-blocks check ---------------------------------------------------- */

static bool
pl_is_hot_segment(const char *name)
{
	size_t n = strlen(name);
	return n > 4 && strcmp(name + n - 4, WR_SEGMENT_SUFFIX) == 0;
}

/* Blocks that verified in the old durable image must be unchanged in the new one. */
static void
pl_check_sealed(const struct pl_obj *o, const struct pl_buf *old, const struct pl_buf *neu,
		const char *by)
{
	if (!pl_is_hot_segment(o->name))
		return;
	uint32_t nb = wr_segment_blocks_for_size(old->n);
	struct wr_segment_header h;
	if (nb == 0 || wr_segment_header_check(old->p, old->n, &h) != WR_FAULT_NONE)
		return;
	uint64_t prev = 0, last = 0;
	for (uint32_t i = 0; i < nb; i++) {
		uint64_t off = wr_block_offset(i), chained;
		const struct wr_block *b = (const struct wr_block *)(old->p + off);
		if (wr_block_verify(b, i, prev, last, &chained) != WR_FAULT_NONE)
			break;
		if (neu->n < off + WR_BLOCK_SIZE ||
		    memcmp(old->p + off, neu->p + off, WR_BLOCK_SIZE) != 0) {
			size_t at = 0;
			while (neu->n >= off + WR_BLOCK_SIZE && at < WR_BLOCK_SIZE &&
			       old->p[off + at] == neu->p[off + at])
				at++;
			pl_error("%s: block %u (events %" PRIu64 "..%" PRIu64 ") was sealed and "
				 "synced, and the %s holds different bytes for it (at byte %zu of "
				 "the block; file %zu bytes, was %zu)",
				 o->name, i, b->header.first_event_id, b->header.last_event_id, by,
				 at, neu->n, old->n);
			return;
		}
		prev = chained;
		last = b->header.last_event_id;
	}
}

/* Replace an object's durable image, checking sealed blocks. Takes ownership of neu. */
static void
pl_set_durable(struct pl_obj *o, struct pl_buf *neu, const char *by)
{
	pl_check_sealed(o, &o->dur, neu, by);
	buf_free(&o->dur);
	o->dur = *neu;
	neu->p = NULL;
	neu->n = 0;
}

/* ---- building a crash image --------------------------------------------------------- */

/* Every entry of the directory is a name the hooks saw, and the other way round. */
static void
pl_check_untracked(void)
{
	DIR *d = opendir(pl.dir);
	if (!d) {
		pl_error("opendir %s: %s", pl.dir, strerror(errno));
		return;
	}
	size_t seen = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		seen++;
		if (names_find(&pl.cur, de->d_name) < 0)
			pl_error("%s appeared in the directory without a watched call", de->d_name);
	}
	closedir(d);
	if (seen != pl.cur.n)
		pl_error("the directory holds %zu entries, the watched calls account for %zu", seen,
			 pl.cur.n);
}

/* One file of the image: old (synced) and new content mixed page by page. */
static void
pl_mix(const struct pl_buf *old, const struct pl_buf *cur, enum pl_mode mode, struct pl_buf *out,
       struct wr_pl_crash *info)
{
	size_t size;
	if (mode == PL_PESSIMISTIC)
		size = old->n;
	else if (mode == PL_OPTIMISTIC)
		size = cur->n;
	else
		size = (pl_rand() & 1) ? cur->n : old->n;
	if (size != old->n)
		info->sizes_new++;
	out->n = size;
	out->p = malloc(size ? size : 1);
	if (!out->p) {
		out->n = 0;
		pl_error("out of memory");
		return;
	}
	static const uint8_t zeros[PL_PAGE];
	for (size_t off = 0; off < size; off += PL_PAGE) {
		size_t len = size - off < PL_PAGE ? size - off : PL_PAGE;
		uint8_t o[PL_PAGE], c[PL_PAGE];
		memcpy(o, zeros, len);
		memcpy(c, zeros, len);
		if (off < old->n)
			memcpy(o, old->p + off, old->n - off < len ? old->n - off : len);
		if (off < cur->n)
			memcpy(c, cur->p + off, cur->n - off < len ? cur->n - off : len);
		if (memcmp(o, c, len) == 0) {
			memcpy(out->p + off, o, len);
			continue;
		}
		info->pages_dirty++;
		/* 0: the synced version, 1: the new one, 2: torn sector by sector. */
		unsigned pick = 0;
		if (mode == PL_OPTIMISTIC) {
			pick = 1;
		} else if (mode == PL_RANDOM) {
			unsigned r = (unsigned)(pl_rand() % 5);
			pick = r < 2 ? 0 : r < 4 ? 1 : 2;
		}
		if (pick == 0) {
			memcpy(out->p + off, o, len);
		} else if (pick == 1) {
			info->pages_new++;
			memcpy(out->p + off, c, len);
		} else {
			info->pages_torn++;
			for (size_t s = 0; s < len; s += PL_SECTOR) {
				size_t sl = len - s < PL_SECTOR ? len - s : PL_SECTOR;
				memcpy(out->p + off + s, (pl_rand() & 1) ? c + s : o + s, sl);
			}
		}
	}
}

static int
pl_write_file(const char *path, const struct pl_buf *b)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	size_t done = 0;
	while (done < b->n) {
		ssize_t n = write(fd, b->p + done, b->n - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? -errno : -EIO;
			close(fd);
			return err;
		}
		done += (size_t)n;
	}
	return close(fd) == 0 ? 0 : -errno;
}

static int
pl_build(const char *where, struct wr_pl_crash *info)
{
	memset(info, 0, sizeof *info);
	info->seq = ++pl.seq;
	snprintf(info->where, sizeof info->where, "%s", where);
	snprintf(info->dir, sizeof info->dir, "%s/crash-%06" PRIu64, pl.scratch, info->seq);
	if (mkdir(info->dir, 0750) != 0)
		return -errno;
	pl_check_untracked();

	uint64_t r = pl_rand() % 10;
	enum pl_mode mode = r < 2 ? PL_PESSIMISTIC : r < 3 ? PL_OPTIMISTIC : PL_RANDOM;
	size_t k = mode == PL_PESSIMISTIC ? 0
		 : mode == PL_OPTIMISTIC ? pl.nops
					 : (size_t)(pl_rand() % (pl.nops + 1));
	info->dirops_pending = (unsigned)pl.nops;
	info->dirops_applied = (unsigned)k;
	struct pl_names img = { 0 };
	names_copy(&img, &pl.dur);
	for (size_t i = 0; i < k; i++)
		names_apply(&img, &pl.ops[i]);

	int rc = 0;
	for (size_t i = 0; i < img.n && rc == 0; i++) {
		struct pl_obj *o = &pl.objs[img.v[i].obj];
		struct pl_buf cur, out;
		rc = obj_current(img.v[i].obj, &cur);
		if (rc != 0) {
			pl_error("%s: current content unreadable: %s", o->name, strerror(-rc));
			break;
		}
		pl_mix(&o->dur, &cur, mode, &out, info);
		if (strcmp(img.v[i].name, WR_META_NAME) == 0 &&
		    (out.n != WR_META_SIZE || o->dur.n != WR_META_SIZE ||
		     memcmp(out.p, o->dur.p, WR_META_SIZE) != 0))
			pl_error("crash %" PRIu64 " (%s): wal.meta would be %zu bytes (%zu synced), "
				 "not one of the 16-byte files written and synced",
				 info->seq, where, out.n, o->dur.n);
		char path[4096 + PL_NAME + 2];
		snprintf(path, sizeof path, "%s/%s", info->dir, img.v[i].name);
		rc = pl_write_file(path, &out);
		info->files++;
		buf_free(&cur);
		buf_free(&out);
	}
	free(img.v);
	info->durable_id = pl.dfn ? pl.dfn(pl.darg) : 0;
	pl.crashes++;
	return rc;
}

/* A crash point at a watched call, taken with the configured probability. */
static void
pl_point(const char *what, const char *name)
{
	pl.calls++;
	if (pl.p <= 0 || (double)(pl_rand() % 1000000) >= pl.p * 1e6)
		return;
	if (pl.nq >= pl.max_queued) {
		pl.dropped++;
		return;
	}
	char where[160];
	snprintf(where, sizeof where, "%s %s", what, name);
	struct wr_pl_crash c;
	if (pl_build(where, &c) != 0) {
		pl_error("building crash image at %s failed", where);
		return;
	}
	pl.queue[pl.nq++] = c;
}

/* ---- the hooks --------------------------------------------------------------- */

static int
pl_open(const char *path, int flags, mode_t mode)
{
	char name[PL_NAME];
	pthread_mutex_lock(&pl.lock);
	if (!pl_name_of(path, name)) {
		pthread_mutex_unlock(&pl.lock);
		return open(path, flags, mode);
	}
	bool creating = (flags & O_CREAT) != 0;
	struct stat st;
	bool existed = lstat(path, &st) == 0;
	if (creating && !existed)
		pl_point("before create", name);
	int fd = open(path, flags, mode);
	int err = errno;
	if (fd >= 0 && creating && !existed) {
		if (fstat(fd, &st) == 0) {
			int prev = obj_by_inode(st.st_dev, st.st_ino);
			if (prev >= 0)
				pl_error("%s created with the inode of %s, which the watched calls never "
					 "removed", name, pl.objs[prev].name);
			int obj = obj_new(st.st_dev, st.st_ino, name);
			PL_TRACE("create %s obj %d ino %lu\n", name, obj, (unsigned long)st.st_ino);
			names_set(&pl.cur, name, obj);
			op_push(PL_CREATE, name, NULL, obj);
		}
		pl_point("after create", name);
	} else if (fd >= 0 && names_find(&pl.cur, name) < 0) {
		pl_error("%s opened, but no watched call created it", name);
	}
	pthread_mutex_unlock(&pl.lock);
	errno = err;
	return fd;
}

/* The at-variants are not used by walrec; a watched file reached through one is an error. */
static int
pl_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	if (dirfd != AT_FDCWD || path[0] != '/') {
		pthread_mutex_lock(&pl.lock);
		pl_error("openat(%d, %s): relative opens are not modelled", dirfd, path);
		pthread_mutex_unlock(&pl.lock);
	}
	return pl_open(path, flags, mode);
}

/* After a call that changed a watched file's content (pwrite, write, ftruncate, fallocate). */
static void
pl_after_write(int fd, const char *what)
{
	pthread_mutex_lock(&pl.lock);
	int obj = obj_by_fd(fd);
	if (obj >= 0)
		pl_point(what, pl.objs[obj].name);
	pthread_mutex_unlock(&pl.lock);
}

static ssize_t
pl_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t n = pwrite(fd, buf, len, off);
	int err = errno;
	pl_after_write(fd, "after pwrite");
	errno = err;
	return n;
}

static ssize_t
pl_write(int fd, const void *buf, size_t len)
{
	ssize_t n = write(fd, buf, len);
	int err = errno;
	pl_after_write(fd, "after write");
	errno = err;
	return n;
}

static int
pl_ftruncate(int fd, off_t len)
{
	int rc = ftruncate(fd, len);
	int err = errno;
	pl_after_write(fd, "after ftruncate");
	errno = err;
	return rc;
}

static int
pl_fallocate(int fd, int mode, off_t off, off_t len)
{
	int rc = fallocate(fd, mode, off, len);
	int err = errno;
	pl_after_write(fd, "after fallocate");
	errno = err;
	return rc;
}

/* fdatasync/fsync: a watched file's content as of now is durable; the directory's names. */
static int
pl_sync(int fd, const char *before, const char *after)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -1; /* EBADF, as the real call */
	pthread_mutex_lock(&pl.lock);
	if (S_ISDIR(st.st_mode) && st.st_dev == pl.dev && st.st_ino == pl.ino) {
		pl_point(before, "(directory)");
		pl_commit_dir();
		pl_point(after, "(directory)");
	} else if (S_ISREG(st.st_mode)) {
		int obj = obj_by_inode(st.st_dev, st.st_ino);
		PL_TRACE("%s fd %d ino %lu obj %d %s\n", before, fd, (unsigned long)st.st_ino, obj,
			 obj >= 0 ? pl.objs[obj].name : "-");
		if (obj >= 0) {
			struct pl_obj *o = &pl.objs[obj];
			pl_point(before, o->name);
			/* Through /proc: the fd may be write-only. */
			char path[64];
			snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
			struct pl_buf now;
			if (pl_slurp(path, &now) == 0)
				pl_set_durable(o, &now, before + 7);
			else
				pl_error("%s: can not read it back at %s", o->name, before);
			pl_point(after, o->name);
		}
	}
	pthread_mutex_unlock(&pl.lock);
	return 0;
}

/* Starts writeback only: never a durability point (lib/sys.h), so nothing to record. */
static int
pl_sync_file_range(int fd, off_t off, off_t len, unsigned int flags)
{
	(void)off, (void)len, (void)flags;
	struct stat st;
	return fstat(fd, &st); /* EBADF as the real call; no I/O */
}

static int
pl_fdatasync(int fd)
{
	return pl_sync(fd, "before fdatasync", "after fdatasync");
}

static int
pl_fsync(int fd)
{
	return pl_sync(fd, "before fsync", "after fsync");
}

/* The file mapped at addr: (dev, inode, file offset of addr, end of that mapping). */
static bool
pl_mapping(const void *addr, dev_t *dev, ino_t *ino, uint64_t *off, uintptr_t *end)
{
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return false;
	char line[4608];
	bool found = false;
	uintptr_t a = (uintptr_t)addr;
	while (!found && fgets(line, sizeof line, f)) {
		unsigned long lo, hi, moff, maj, min, inode;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s %lx %lx:%lx %lu", &lo, &hi, perms, &moff, &maj, &min,
			   &inode) != 7)
			continue;
		if (a < lo || a >= hi || inode == 0)
			continue;
		*dev = makedev(maj, min);
		*ino = (ino_t)inode;
		*off = moff + (a - lo);
		*end = hi;
		found = true;
	}
	fclose(f);
	return found;
}

static int
pl_msync(void *addr, size_t len, int flags)
{
	(void)flags;
	pthread_mutex_lock(&pl.lock);
	dev_t dev;
	ino_t ino;
	uint64_t off;
	uintptr_t end;
	int obj = -1;
	if (pl_mapping(addr, &dev, &ino, &off, &end))
		obj = obj_by_inode(dev, ino);
	if (obj >= 0) {
		struct pl_obj *o = &pl.objs[obj];
		PL_TRACE("msync %s obj %d off %lu len %zu\n", o->name, obj, (unsigned long)off, len);
		pl_point("before msync", o->name);
		char path[4096 + PL_NAME];
		snprintf(path, sizeof path, "%s/%s", pl.dir, o->name);
		struct stat st;
		if (stat(path, &st) == 0) {
			size_t size = (size_t)st.st_size;
			size_t n = len;
			if ((uintptr_t)addr + n > end)
				n = end - (uintptr_t)addr;
			if (off >= size)
				n = 0;
			else if (off + n > size)
				n = size - off;
			struct pl_buf neu = { malloc(size ? size : 1), size };
			if (neu.p) {
				memset(neu.p, 0, size);
				if (o->dur.n > 0)
					memcpy(neu.p, o->dur.p, o->dur.n < size ? o->dur.n : size);
				if (n > 0)
					memcpy(neu.p + off, addr, n);
				pl_set_durable(o, &neu, "msync");
			}
		}
		pl_point("after msync", o->name);
	}
	pthread_mutex_unlock(&pl.lock);
	/* MS_ASYNC checks the arguments as the real call would, and writes nothing. */
	return msync(addr, len, MS_ASYNC);
}

static int
pl_rename(const char *from, const char *to)
{
	char a[PL_NAME], b[PL_NAME];
	pthread_mutex_lock(&pl.lock);
	bool ta = pl_name_of(from, a), tb = pl_name_of(to, b);
	if (!ta && !tb) {
		pthread_mutex_unlock(&pl.lock);
		return rename(from, to);
	}
	if (ta != tb) {
		pl_error("rename %s -> %s crosses the watched directory", from, to);
		pthread_mutex_unlock(&pl.lock);
		return rename(from, to);
	}
	char what[PL_NAME * 2 + 8];
	snprintf(what, sizeof what, "%s -> %s", a, b);
	pl_point("before rename", what);
	int victim = names_get(&pl.cur, b);
	if (victim >= 0)
		obj_keep_final(victim);
	int rc = rename(from, to);
	int err = errno;
	PL_TRACE("rename %s -> %s rc %d victim %d\n", a, b, rc, victim);
	if (rc == 0) {
		int obj = names_del(&pl.cur, a);
		if (obj < 0) {
			pl_error("%s renamed, but no watched call created it", a);
		} else {
			if (victim >= 0 && victim != obj)
				pl.objs[victim].live = false;
			names_set(&pl.cur, b, obj);
			snprintf(pl.objs[obj].name, PL_NAME, "%s", b);
			op_push(PL_RENAME, a, b, obj);
		}
		pl_point("after rename", what);
	}
	pthread_mutex_unlock(&pl.lock);
	errno = err;
	return rc;
}

static int
pl_renameat(int fromfd, const char *from, int tofd, const char *to)
{
	if (fromfd != AT_FDCWD || tofd != AT_FDCWD) {
		pthread_mutex_lock(&pl.lock);
		pl_error("renameat(%s, %s): relative renames are not modelled", from, to);
		pthread_mutex_unlock(&pl.lock);
	}
	return pl_rename(from, to);
}

static int
pl_unlink(const char *path)
{
	char a[PL_NAME];
	pthread_mutex_lock(&pl.lock);
	if (!pl_name_of(path, a)) {
		pthread_mutex_unlock(&pl.lock);
		return unlink(path);
	}
	pl_point("before unlink", a);
	int obj = names_get(&pl.cur, a);
	if (obj >= 0)
		obj_keep_final(obj);
	int rc = unlink(path);
	int err = errno;
	PL_TRACE("unlink %s rc %d obj %d\n", a, rc, obj);
	if (rc == 0) {
		if (obj < 0) {
			pl_error("%s unlinked, but no watched call created it", a);
		} else {
			names_del(&pl.cur, a);
			pl.objs[obj].live = false;
			op_push(PL_UNLINK, a, NULL, obj);
		}
		pl_point("after unlink", a);
	}
	pthread_mutex_unlock(&pl.lock);
	errno = err;
	return rc;
}

static int
pl_unlinkat(int dirfd, const char *path, int flags)
{
	if (dirfd != AT_FDCWD || flags != 0) {
		pthread_mutex_lock(&pl.lock);
		pl_error("unlinkat(%d, %s, %d) is not modelled", dirfd, path, flags);
		pthread_mutex_unlock(&pl.lock);
		return unlinkat(dirfd, path, flags);
	}
	return pl_unlink(path);
}

/* ---- public ------------------------------------------------------------------- */

int
wr_pl_start(const char *dir, const char *scratch, uint64_t seed)
{
	pthread_mutex_lock(&pl.lock);
	struct stat st;
	if (strlen(dir) >= sizeof pl.dir || strlen(scratch) >= sizeof pl.scratch ||
	    stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		pthread_mutex_unlock(&pl.lock);
		return -EINVAL;
	}
	strcpy(pl.dir, dir);
	pl.dirlen = strlen(dir);
	strcpy(pl.scratch, scratch);
	pl.dev = st.st_dev;
	pl.ino = st.st_ino;
	pl.rng = seed;
	pl.p = 0;
	pl.max_queued = 0;
	/* A new watch: what an earlier one found was reported by wr_pl_errors. */
	pl.errlen = 0;
	pl.errors[0] = '\0';
	pl.nerr = 0;
	pl.on = true;
	pl_trace = getenv("WALREC_PL_TRACE") != NULL;
	/* What is there now is taken as durable. */
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char path[4096 + PL_NAME];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
			pl_error("%s is not a regular file", path);
			continue;
		}
		int obj = obj_new(st.st_dev, st.st_ino, de->d_name);
		if (obj < 0)
			continue;
		pl_slurp(path, &pl.objs[obj].dur);
		names_set(&pl.cur, de->d_name, obj);
	}
	if (d)
		closedir(d);
	names_copy(&pl.dur, &pl.cur);
	wr_sys.open = pl_open;
	wr_sys.openat = pl_openat;
	wr_sys.ftruncate = pl_ftruncate;
	wr_sys.fallocate = pl_fallocate;
	wr_sys.msync = pl_msync;
	wr_sys.fdatasync = pl_fdatasync;
	wr_sys.fsync = pl_fsync;
	wr_sys.rename = pl_rename;
	wr_sys.renameat = pl_renameat;
	wr_sys.unlink = pl_unlink;
	wr_sys.unlinkat = pl_unlinkat;
	wr_sys.write = pl_write;
	wr_sys.pwrite = pl_pwrite;
	wr_sys.sync_file_range = pl_sync_file_range;
	pthread_mutex_unlock(&pl.lock);
	return 0;
}

void
wr_pl_stop(void)
{
	pthread_mutex_lock(&pl.lock);
	wr_sys_reset();
	pl.on = false;
	for (size_t i = 0; i < pl.nq; i++)
		wr_test_rmtree(pl.queue[i].dir);
	free(pl.queue);
	pl.queue = NULL;
	pl.nq = 0;
	for (size_t i = 0; i < pl.nobjs; i++) {
		buf_free(&pl.objs[i].dur);
		buf_free(&pl.objs[i].final);
	}
	free(pl.objs);
	pl.objs = NULL;
	pl.nobjs = 0;
	free(pl.cur.v);
	free(pl.dur.v);
	memset(&pl.cur, 0, sizeof pl.cur);
	memset(&pl.dur, 0, sizeof pl.dur);
	free(pl.ops);
	pl.ops = NULL;
	pl.nops = pl.capops = 0;
	pl.dfn = NULL;
	pl.darg = NULL;
	pthread_mutex_unlock(&pl.lock);
}

void
wr_pl_set_durable_fn(wr_pl_durable_fn fn, void *arg)
{
	pthread_mutex_lock(&pl.lock);
	pl.dfn = fn;
	pl.darg = arg;
	pthread_mutex_unlock(&pl.lock);
}

void
wr_pl_set_capture(double probability, unsigned max_queued)
{
	pthread_mutex_lock(&pl.lock);
	struct wr_pl_crash *q = realloc(pl.queue, (max_queued ? max_queued : 1) * sizeof *q);
	if (q) {
		pl.queue = q;
		pl.p = probability;
		pl.max_queued = max_queued < pl.nq ? (unsigned)pl.nq : max_queued;
	}
	pthread_mutex_unlock(&pl.lock);
}

int
wr_pl_crash_now(const char *where, struct wr_pl_crash *out)
{
	pthread_mutex_lock(&pl.lock);
	int rc = pl_build(where, out);
	pthread_mutex_unlock(&pl.lock);
	return rc;
}

bool
wr_pl_next_crash(struct wr_pl_crash *out)
{
	pthread_mutex_lock(&pl.lock);
	bool got = pl.nq > 0;
	if (got) {
		*out = pl.queue[0];
		memmove(&pl.queue[0], &pl.queue[1], (pl.nq - 1) * sizeof *pl.queue);
		pl.nq--;
	}
	pthread_mutex_unlock(&pl.lock);
	return got;
}

void
wr_pl_counts(uint64_t *calls, uint64_t *crashes, uint64_t *dropped)
{
	pthread_mutex_lock(&pl.lock);
	if (calls)
		*calls = pl.calls;
	if (crashes)
		*crashes = pl.crashes;
	if (dropped)
		*dropped = pl.dropped;
	pthread_mutex_unlock(&pl.lock);
}

unsigned
wr_pl_errors(char *buf, size_t n)
{
	pthread_mutex_lock(&pl.lock);
	if (n > 0)
		snprintf(buf, n, "%s", pl.errors);
	unsigned e = pl.nerr;
	pthread_mutex_unlock(&pl.lock);
	return e;
}
