/* SPDX-License-Identifier: MIT */
/* Following a live log: the channel's sealed position and a futex to sleep on. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/atomics.h"
#include "lib/clock.h"
#include "lib/fs.h"
#include "lib/futex.h"
#include "lib/log.h"
#include "recorder/follow.h"
#include "recorder/format.h"

int
wr_follow_init(struct wr_follow *f, const char *dir, const char *name)
{
	memset(f, 0, sizeof *f);
	if (strlen(dir) >= sizeof f->dir)
		return -ENAMETOOLONG;
	strcpy(f->dir, dir);
	if (name) {
		int rc = wr_channel_name_check(name);
		if (rc < 0)
			return rc;
		snprintf(f->name, sizeof f->name, "%s", name);
		f->fixed_name = true;
	}
	return 0;
}

static void
wr_follow_detach(struct wr_follow *f)
{
	if (f->attached)
		wr_chan_map_close(&f->map);
	f->attached = false;
}

void
wr_follow_fini(struct wr_follow *f)
{
	wr_follow_detach(f);
}

int
wr_follow_read_name(const char *dir, char *name, size_t n)
{
	char path[4096 + 64];
	if (wr_fs_join(path, sizeof path, dir, WR_FOLLOW_NAME_FILE) < 0)
		return -ENAMETOOLONG;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ELOOP ? -EINVAL : -errno;
	struct stat st;
	char buf[WR_CHAN_NAME_MAX + 2];
	ssize_t got = -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		got = pread(fd, buf, sizeof buf, 0);
	close(fd);
	/* One name and its newline, nothing else. */
	if (got < 2 || (size_t)got > WR_CHAN_NAME_MAX + 1 || buf[got - 1] != '\n')
		return -EINVAL;
	buf[got - 1] = '\0';
	if (memchr(buf, '\0', (size_t)got - 1) || (size_t)got > n)
		return -EINVAL;
	/* Checked quietly: the caller says what is wrong with the file. */
	for (ssize_t i = 0; i < got - 1; i++) {
		char c = buf[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '.' || c == '_' || c == '-';
		if (!ok)
			return -EINVAL;
	}
	if (buf[0] == '.' || strstr(buf, ".."))
		return -EINVAL;
	memcpy(name, buf, (size_t)got);
	return 0;
}

int
wr_follow_announce(const char *dir, const char *name)
{
	char buf[WR_CHAN_NAME_MAX + 2];
	int len = snprintf(buf, sizeof buf, "%s\n", name);
	if (len < 0 || (size_t)len >= sizeof buf)
		return -EINVAL;
	char now[WR_CHAN_NAME_MAX + 1];
	if (wr_follow_read_name(dir, now, sizeof now) == 0 && strcmp(now, name) == 0)
		return 0; /* already says so: no write, no sync */
	return wr_fs_durable_replace(dir, WR_FOLLOW_NAME_FILE, buf, (size_t)len);
}

/*
 * The identity (dev, inode) of /walrec.<name> now. 0, or -errno (-ENOENT:
 * none, or one still being created: its magic is stored last).
 */
static int
wr_follow_identity(const char *name, dev_t *dev, ino_t *ino)
{
	char path[WR_CHAN_NAME_MAX + 16];
	snprintf(path, sizeof path, "%s%s", WR_CHAN_PREFIX, name);
	int fd = shm_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct stat st;
	uint64_t magic = 0;
	int rc = fstat(fd, &st) == 0 ? 0 : -errno;
	if (rc == 0 && pread(fd, &magic, sizeof magic, 0) != (ssize_t)sizeof magic)
		magic = 0;
	close(fd);
	if (rc == 0 && magic != WR_CHAN_MAGIC)
		rc = -ENOENT;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return rc;
}

/* Map the channel: the given name, or the one the directory names. 0 or -errno. */
static int
wr_follow_attach(struct wr_follow *f)
{
	if (!f->fixed_name) {
		char name[sizeof f->name];
		int rc = wr_follow_read_name(f->dir, name, sizeof name);
		if (rc < 0)
			return rc;
		memcpy(f->name, name, sizeof name);
	}
	/* A quiet look first: a channel that does not exist yet is not an error. */
	dev_t dev;
	ino_t ino;
	int rc = wr_follow_identity(f->name, &dev, &ino);
	if (rc < 0)
		return rc;
	int fd;
	rc = wr_chan_map_open(&f->map, f->name, &fd, false);
	if (rc < 0)
		return rc;
	struct stat st;
	if (fstat(fd, &st) == 0) {
		dev = st.st_dev;
		ino = st.st_ino;
	}
	close(fd);
	f->dev = dev;
	f->ino = ino;
	f->attached = true;
	f->attaches++;
	return 0;
}

/* Still the object the name refers to? Else drop it (the next look maps the new one). */
static bool
wr_follow_still_current(struct wr_follow *f)
{
	dev_t dev;
	ino_t ino;
	if (!f->fixed_name) {
		char name[sizeof f->name];
		if (wr_follow_read_name(f->dir, name, sizeof name) == 0 && strcmp(name, f->name) != 0) {
			wr_follow_detach(f);
			return false;
		}
	}
	int rc = wr_follow_identity(f->name, &dev, &ino);
	if (rc == 0 && dev == f->dev && ino == f->ino)
		return true;
	if (rc < 0 && rc != -ENOENT)
		return true; /* can not tell: keep what works */
	wr_follow_detach(f);
	return false;
}

int
wr_follow_position(struct wr_follow *f, struct wr_follow_pos *pos)
{
	if (!f->attached) {
		uint64_t now = wr_clock_now_ns();
		if (now < f->next_attach_ns)
			return 0;
		int rc = wr_follow_attach(f);
		if (rc < 0) {
			/* A channel that is there but unusable is logged by the mapping:
			 * look at it less often. */
			uint64_t wait = rc == -ENOENT ? WR_FOLLOW_ATTACH_NS : 10 * WR_FOLLOW_CHECK_NS;
			f->next_attach_ns = now + wait;
			return 0;
		}
	}
	struct wr_channel_meta m;
	int rc = wr_channel_read_meta(&f->map, &m);
	if (rc < 0)
		return rc;
	f->seen = m.change;
	if (rc == 0)
		return 0;
	/* Untrusted: no segment has more blocks than the format allows. */
	pos->segment_index = m.sealed_segment_index;
	pos->blocks = m.sealed_blocks <= WR_MAX_BLOCKS ? m.sealed_blocks : WR_MAX_BLOCKS;
	pos->last_sealed_id = m.last_sealed_id;
	return 1;
}

/* Sleep for ns (or until a signal). 0 or -EINTR. */
static int
wr_follow_nap(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
			       .tv_nsec = (long)(ns % 1000000000u) };
	return nanosleep(&ts, NULL) == 0 ? 0 : -errno;
}

int
wr_follow_wait(struct wr_follow *f, uint64_t timeout_ns)
{
	uint64_t start = wr_clock_now_ns();
	for (;;) {
		uint64_t now = wr_clock_now_ns();
		uint64_t left = now - start >= timeout_ns ? 0 : timeout_ns - (now - start);
		if (!f->attached) {
			if (now >= f->next_attach_ns) {
				struct wr_follow_pos pos;
				wr_follow_position(f, &pos);
				if (f->attached)
					return 1;
			}
			if (left == 0)
				return 0;
			uint64_t nap = f->next_attach_ns > now ? f->next_attach_ns - now : 0;
			if (nap > left)
				nap = left;
			if (nap && wr_follow_nap(nap) < 0)
				return -EINTR;
			continue;
		}
		struct wr_chan_meta *m = f->map.meta;
		/* Acquire pairs with the release add in wr_channel_publish_meta. */
		if (wr_load_acquire(&m->sealed_futex) != f->seen)
			return 1;
		if (left == 0)
			return 0;
		uint64_t slice = left < WR_FOLLOW_CHECK_NS ? left : WR_FOLLOW_CHECK_NS;
		wr_fetch_add_acq_rel(&m->followers, 1);
		/* Pairs with the publisher's fence between its add to sealed_futex
		 * and its look at followers (recorder/channel.c). */
		wr_fence_seq_cst();
		int rc = 0;
		if (wr_load_relaxed(&m->sealed_futex) == f->seen)
			rc = wr_futex_wait(&m->sealed_futex, f->seen, slice);
		wr_fetch_add_acq_rel(&m->followers, (uint32_t)-1);
		if (rc == -EINTR)
			return -EINTR;
		if (wr_load_acquire(&m->sealed_futex) != f->seen)
			return 1;
		if (rc == -ETIMEDOUT && !wr_follow_still_current(f)) {
			/* Recreated or renamed: map the new one at once. */
			f->next_attach_ns = 0;
			struct wr_follow_pos pos;
			wr_follow_position(f, &pos);
			return 1;
		}
	}
}
