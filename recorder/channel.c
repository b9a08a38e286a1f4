/* SPDX-License-Identifier: MIT */
/* walrec channel, recorder side: rings drained fairly, release, durable acks, restart. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/atomics.h"
#include "lib/clock.h"
#include "lib/futex.h"
#include "lib/log.h"
#include "lib/membarrier.h"
#include "lib/sys.h"
#include "recorder/channel.h"

/*
 * Durable bookkeeping. A ring slot is released (reusable) once its event
 * is sealed, which is before it is durable, so durable_seq cannot be
 * computed by reading slots. Instead every release appends a mark
 * (pos, id) to a per-producer FIFO in this process's memory: pos is the
 * new tail, id the event id of slot pos-1.
 *
 * Claim: when last_durable_id >= id, positions [0, pos) are durable.
 * Proof: the recorder assigns ids in the order it takes slots and takes
 * each ring in position order, so ids increase with position within a
 * ring; slot pos-1 holds id, so every position below pos holds an id <= id
 * (released earlier, or in this batch). Durability is a prefix of the id
 * order (data before metadata), so every id <= last_durable_id is durable.
 *
 * publish_durable pops marks while mark.id <= D and publishes the last pos.
 * When the FIFO is full the newest mark is replaced by the new one (larger
 * pos, larger id): still a true statement, just reported later. Liveness:
 * each mark's id is <= a sealed id at push time and the durable position
 * reaches every sealed id, so marks at the front are always popped; the
 * replaced newest mark stops growing once the front drains. After a
 * restart, resume pushes (tail, L): every position below the tail was
 * released, hence sealed, hence <= L in the recovered log.
 */
#define WR_CHAN_MARKS 64u

struct wr_chan_mark {
	uint64_t pos;
	uint64_t id;
};

/*
 * A run of taken slots: positions pos .. pos+n-1 got ids id .. id+n-1.
 * The drain thread's copy is the truth; the shared take log is written
 * for the next recorder only (a producer could scribble on it).
 */
struct wr_chan_run {
	uint64_t pos;
	uint64_t id;
	uint64_t n;
};

/* Drain-thread-private view of one producer: the shared cursors are
 * outputs only; these are the values the recorder trusts. */
struct wr_chan_consumer {
	uint64_t taken;            /* next position to take */
	uint64_t tail;             /* released count, as last stored */
	uint64_t head_seen;        /* last validated head (monotonic check) */
	uint64_t durable;          /* durable_seq as last stored */
	uint64_t runs_w;           /* runs recorded (== the shared take log's count) */
	uint64_t runs_r;           /* first run not wholly released */
	bool rejected;
	uint32_t mark_r, mark_w;
	struct wr_chan_mark marks[WR_CHAN_MARKS];
	struct wr_chan_run *runs;  /* takes_per_producer of them, a ring */
};

struct wr_channel {
	struct wr_chan_map map;
	int fd; /* holds the recorder flock */
	char name[WR_CHAN_NAME_MAX + 1];
	struct wr_channel_options opt;
	uint64_t mask;
	uint32_t takes_n;        /* take records per producer */
	uint32_t rr;             /* first ring of the next poll */
	uint32_t polls;
	bool need_resume;
	uint64_t applied_durable; /* last durable id published */
	uint64_t last_reclaim_ns;
	WR_ALIGNED_LINE _Atomic uint64_t posted_durable; /* written by any thread */
	struct wr_channel_metrics metrics;
	struct wr_chan_consumer *cons; /* producers_max entries */
};

void
wr_channel_options_default(struct wr_channel_options *o)
{
	memset(o, 0, sizeof *o);
	o->producers_max = WR_CHANNEL_DEFAULT_PRODUCERS;
	o->ring_capacity = WR_CHANNEL_DEFAULT_CAPACITY;
	o->group_access = false;
	o->reclaim_interval_ns = WR_CHANNEL_DEFAULT_RECLAIM_NS;
	o->park_timeout_ns = WR_CHANNEL_DEFAULT_PARK_NS;
}

int
wr_channel_name_check(const char *name)
{
	if (name == NULL) {
		wr_log_error("channel name: missing");
		return -EINVAL;
	}
	size_t n = strnlen(name, WR_CHAN_NAME_MAX + 1);
	if (n == 0 || n > WR_CHAN_NAME_MAX) {
		wr_log_error("channel name '%.80s': must be 1..%u characters", name,
			     WR_CHAN_NAME_MAX);
		return -EINVAL;
	}
	if (name[0] == '.') {
		wr_log_error("channel name '%s': must not start with '.'", name);
		return -EINVAL;
	}
	if (strstr(name, "..") != NULL) {
		wr_log_error("channel name '%s': must not contain '..'", name);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (!ok) {
			wr_log_error("channel name '%s': character %zu is not one of "
				     "[A-Za-z0-9._-]", name, i + 1);
			return -EINVAL;
		}
	}
	return 0;
}

static void
chan_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s%s", WR_CHAN_PREFIX, name);
}

static void
chan_map_pointers(struct wr_chan_map *m)
{
	uint8_t *b = m->base;
	const struct wr_chan_region *r = m->layout.regions;
	m->control = (struct wr_chan_control *)b;
	m->table = (struct wr_chan_entry *)(b + r[WR_CHAN_R_TABLE].off);
	m->cursors = (struct wr_chan_cursor *)(b + r[WR_CHAN_R_CURSORS].off);
	m->durable = (struct wr_chan_durable *)(b + r[WR_CHAN_R_DURABLE].off);
	m->meta = (struct wr_chan_meta *)(b + r[WR_CHAN_R_META].off);
	m->wake = (struct wr_chan_wake *)(b + r[WR_CHAN_R_WAKE].off);
	m->telemetry = b + r[WR_CHAN_R_TELEMETRY].off;
	m->rings = (walrec_event_t *)(b + r[WR_CHAN_R_RINGS].off);
	m->takes = b + r[WR_CHAN_R_TAKES].off;
}

/* Check the control page of a mapping of `size` bytes; fill m->layout. */
static int
chan_validate(struct wr_chan_map *m, const char *path)
{
	const struct wr_chan_control *c = m->base;
	/* Acquire pairs with the creator's release store of magic, which it
	 * makes after every other field of the control page. */
	uint64_t magic = __atomic_load_n(&c->magic, __ATOMIC_ACQUIRE);
	if (magic != WR_CHAN_MAGIC) {
		wr_log_error("channel %s: bad magic 0x%016llx (not a walrec channel, "
			     "or still being created)", path, (unsigned long long)magic);
		return -WALREC_EFORMAT;
	}
	if (c->layout_version != WR_CHAN_LAYOUT_VERSION) {
		wr_log_error("channel %s: layout version %u, this library reads %u", path,
			     c->layout_version, WR_CHAN_LAYOUT_VERSION);
		return -WALREC_EFORMAT;
	}
	if (c->control_size != WR_CHAN_CONTROL_SIZE || c->slot_size != WR_CHAN_SLOT_SIZE ||
	    c->entry_size != WR_CHAN_ENTRY_SIZE || c->cursor_size != WR_CHAN_CURSOR_SIZE ||
	    c->durable_entry_size != WR_CHAN_DURABLE_SIZE) {
		wr_log_error("channel %s: record sizes %u/%u/%u/%u/%u differ from %u/%u/%u/%u/%u",
			     path, c->control_size, c->slot_size, c->entry_size, c->cursor_size,
			     c->durable_entry_size, WR_CHAN_CONTROL_SIZE, WR_CHAN_SLOT_SIZE,
			     WR_CHAN_ENTRY_SIZE, WR_CHAN_CURSOR_SIZE, WR_CHAN_DURABLE_SIZE);
		return -WALREC_EFORMAT;
	}
	uint32_t p = c->producers_max, cap = c->ring_capacity;
	if (!wr_chan_limits_ok(p, cap)) {
		wr_log_error("channel %s: producers_max %u / ring_capacity %u out of range", path,
			     p, cap);
		return -WALREC_EFORMAT;
	}
	struct wr_chan_layout l;
	wr_chan_layout_compute(&l, p, cap);
	static const char *const names[WR_CHAN_R_COUNT] = { "table",     "cursors", "durable",
							     "meta",      "wake",    "telemetry",
							     "rings",     "takes" };
	for (int i = 0; i < WR_CHAN_R_COUNT; i++) {
		if (c->regions[i].off != l.regions[i].off || c->regions[i].size != l.regions[i].size) {
			wr_log_error("channel %s: region %s at %llu+%llu, expected %llu+%llu", path,
				     names[i], (unsigned long long)c->regions[i].off,
				     (unsigned long long)c->regions[i].size,
				     (unsigned long long)l.regions[i].off,
				     (unsigned long long)l.regions[i].size);
			return -WALREC_EFORMAT;
		}
	}
	if (c->total_size != l.total_size || (uint64_t)m->size != l.total_size) {
		wr_log_error("channel %s: total size %llu, object %zu bytes, layout needs %llu",
			     path, (unsigned long long)c->total_size, m->size,
			     (unsigned long long)l.total_size);
		return -WALREC_EFORMAT;
	}
	m->layout = l;
	chan_map_pointers(m);
	return 0;
}

static int
chan_map_open(struct wr_chan_map *m, const char *name, int *fdp, bool populate, bool readonly)
{
	char path[WR_CHAN_NAME_MAX + 16];
	memset(m, 0, sizeof *m);
	*fdp = -1;
	int rc = wr_channel_name_check(name);
	if (rc < 0)
		return rc;
	chan_path(path, sizeof path, name);
	int fd = shm_open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		/* A missing channel is an answer, not a failure, for observers. */
		if (!(readonly && errno == ENOENT))
			wr_log_syscall("shm_open", path, errno);
		return rc;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		wr_log_syscall("fstat", path, errno);
		close(fd);
		return rc;
	}
	if (st.st_size < (off_t)WR_CHAN_CONTROL_SIZE) {
		wr_log_error("channel %s: %lld bytes, smaller than its control page", path,
			     (long long)st.st_size);
		close(fd);
		return -WALREC_EFORMAT;
	}
	void *base = mmap(NULL, (size_t)st.st_size, readonly ? PROT_READ : PROT_READ | PROT_WRITE,
			  MAP_SHARED | (populate ? MAP_POPULATE : 0), fd, 0);
	if (base == MAP_FAILED) {
		rc = -errno;
		wr_log_syscall("mmap", path, errno);
		close(fd);
		return rc;
	}
	m->base = base;
	m->size = (size_t)st.st_size;
	rc = chan_validate(m, path);
	if (rc < 0) {
		munmap(base, m->size);
		memset(m, 0, sizeof *m);
		close(fd);
		return rc;
	}
	*fdp = fd;
	return 0;
}

int
wr_chan_map_open(struct wr_chan_map *m, const char *name, int *fdp, bool populate)
{
	return chan_map_open(m, name, fdp, populate, false);
}

int
wr_chan_map_open_readonly(struct wr_chan_map *m, const char *name)
{
	int fd;
	int rc = chan_map_open(m, name, &fd, false, true);
	if (rc == 0)
		close(fd); /* the mapping keeps the object */
	return rc;
}

void
wr_chan_map_close(struct wr_chan_map *m)
{
	if (m && m->base) {
		munmap(m->base, m->size);
		memset(m, 0, sizeof *m);
	}
}

static struct wr_channel *
chan_alloc(const char *name, const struct wr_channel_options *opt)
{
	struct wr_channel *ch = aligned_alloc(WR_CACHELINE,
					      wr_chan_round_up(sizeof *ch, WR_CACHELINE));
	if (!ch)
		return NULL;
	memset(ch, 0, sizeof *ch);
	ch->fd = -1;
	snprintf(ch->name, sizeof ch->name, "%s", name);
	if (opt)
		ch->opt = *opt;
	else
		wr_channel_options_default(&ch->opt);
	if (ch->opt.reclaim_interval_ns == 0)
		ch->opt.reclaim_interval_ns = WR_CHANNEL_DEFAULT_RECLAIM_NS;
	if (ch->opt.park_timeout_ns == 0)
		ch->opt.park_timeout_ns = WR_CHANNEL_DEFAULT_PARK_NS;
	return ch;
}

static void
chan_free_consumers(struct wr_channel *ch)
{
	if (!ch->cons)
		return;
	for (uint32_t i = 0; i < ch->map.layout.producers_max; i++)
		free(ch->cons[i].runs);
	free(ch->cons);
	ch->cons = NULL;
}

static int
chan_alloc_consumers(struct wr_channel *ch)
{
	uint32_t p = ch->map.layout.producers_max;
	ch->takes_n = wr_chan_takes_per_producer(ch->map.layout.ring_capacity);
	ch->cons = calloc(p, sizeof *ch->cons);
	if (!ch->cons)
		return -ENOMEM;
	for (uint32_t i = 0; i < p; i++) {
		ch->cons[i].runs = calloc(ch->takes_n, sizeof *ch->cons[i].runs);
		if (!ch->cons[i].runs) {
			chan_free_consumers(ch);
			return -ENOMEM;
		}
	}
	ch->mask = ch->map.layout.ring_capacity - 1;
	return 0;
}

static int
chan_lock(int fd, const char *name)
{
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno == EWOULDBLOCK) {
		wr_log_error("channel %s: another recorder holds it", name);
		return -EBUSY;
	}
	int rc = -errno;
	wr_log_syscall("flock", name, errno);
	return rc;
}

/* True when the name path still refers to the object open as fd. */
static bool
chan_names(const char *path, int fd)
{
	struct stat a, b;
	int fd2 = shm_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd2 < 0)
		return false;
	bool same = fstat(fd, &a) == 0 && fstat(fd2, &b) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino;
	close(fd2);
	return same;
}

/*
 * A recorder killed while creating the channel leaves an object without
 * its magic, which every later open refuses. Remove it when nobody holds
 * the recorder lock (its creator is gone: a live one takes the lock right
 * after creating it, see below) and no producer ever attached (producers
 * attach only once the magic is set, and count themselves in
 * attach_count first), so no accepted event can be in it. Returns true
 * if it was removed.
 */
static bool
chan_remove_unfinished(const char *path)
{
	int fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool removed = false;
	struct stat st;
	uint64_t magic = 0, attached = 0;
	const off_t attach_off = (off_t)offsetof(struct wr_chan_control, attach_count);
	if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &st) == 0) {
		bool unfinished = st.st_size < attach_off + (off_t)sizeof attached ||
				  (pread(fd, &magic, sizeof magic, 0) == (ssize_t)sizeof magic &&
				   pread(fd, &attached, sizeof attached, attach_off) ==
					   (ssize_t)sizeof attached &&
				   magic != WR_CHAN_MAGIC && attached == 0);
		if (unfinished && chan_names(path, fd) && shm_unlink(path) == 0) {
			wr_log_warn("channel %s: removed an unfinished object left by a recorder that "
				    "died while creating it", path);
			removed = true;
		}
	}
	close(fd); /* releases the lock */
	return removed;
}

int
wr_channel_create(struct wr_channel **out, const char *name, const struct wr_channel_options *opt)
{
	char path[WR_CHAN_NAME_MAX + 16];
	*out = NULL;
	int rc = wr_channel_name_check(name);
	if (rc < 0)
		return rc;
	struct wr_channel *ch = chan_alloc(name, opt);
	if (!ch)
		return -ENOMEM;
	if (!wr_chan_limits_ok(ch->opt.producers_max, ch->opt.ring_capacity)) {
		wr_log_error("channel %s: producers_max %u must be 1..%u and ring_capacity %u a "
			     "power of two in %u..%u", name, ch->opt.producers_max,
			     WR_CHAN_MAX_PRODUCERS, ch->opt.ring_capacity, WR_CHAN_MIN_CAPACITY,
			     WR_CHAN_MAX_CAPACITY);
		free(ch);
		return -EINVAL;
	}
	struct wr_chan_layout l;
	wr_chan_layout_compute(&l, ch->opt.producers_max, ch->opt.ring_capacity);
	mode_t mode = ch->opt.group_access ? 0660 : 0600;
	chan_path(path, sizeof path, name);
	int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0 && errno == EEXIST) {
		if (chan_remove_unfinished(path))
			fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
		else
			errno = EEXIST;
	}
	if (fd < 0) {
		rc = -errno;
		if (errno != EEXIST)
			wr_log_syscall("shm_open", path, errno);
		free(ch);
		return rc;
	}
	ch->fd = fd;
	/* The umask may have cleared bits of mode; the option is the contract. */
	if (fchmod(fd, mode) < 0) {
		rc = -errno;
		wr_log_syscall("fchmod", path, errno);
		goto fail_unlink;
	}
	if ((rc = chan_lock(fd, path)) < 0)
		goto fail_unlink;
	/* Between our shm_open and our lock another recorder may have taken
	 * the object for an unfinished one and replaced it: it is theirs. */
	if (!chan_names(path, fd)) {
		wr_log_error("channel %s: another recorder created it meanwhile", path);
		rc = -EBUSY;
		goto fail_unlink;
	}
	if (ftruncate(fd, (off_t)l.total_size) < 0) {
		rc = -errno;
		wr_log_syscall("ftruncate", path, errno);
		goto fail_unlink;
	}
	/* Allocate every page now: a sparse object would make the first
	 * write to a page allocate it on the append path, and a full
	 * /dev/shm would then kill the producer with SIGBUS instead of
	 * failing here. */
	if (wr_sys.fallocate(fd, 0, 0, (off_t)l.total_size) < 0) {
		rc = -errno;
		wr_log_syscall("fallocate", path, errno);
		goto fail_unlink;
	}
	/* MAP_POPULATE: the drain thread's page tables are built now too. */
	void *base = mmap(NULL, l.total_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			  fd, 0);
	if (base == MAP_FAILED) {
		rc = -errno;
		wr_log_syscall("mmap", path, errno);
		goto fail_unlink;
	}
	ch->map.base = base;
	ch->map.size = l.total_size;
	ch->map.layout = l;
	chan_map_pointers(&ch->map);

	struct wr_chan_control *c = ch->map.control;
	c->layout_version = WR_CHAN_LAYOUT_VERSION;
	c->control_size = WR_CHAN_CONTROL_SIZE;
	c->total_size = l.total_size;
	c->producers_max = l.producers_max;
	c->ring_capacity = l.ring_capacity;
	c->slot_size = WR_CHAN_SLOT_SIZE;
	c->entry_size = WR_CHAN_ENTRY_SIZE;
	c->cursor_size = WR_CHAN_CURSOR_SIZE;
	c->durable_entry_size = WR_CHAN_DURABLE_SIZE;
	c->created_ns = wr_clock_realtime_ns();
	memcpy(c->regions, l.regions, sizeof c->regions);
	wr_store_relaxed(&c->state, WR_CHAN_STARTING);
	wr_store_relaxed(&c->recorder_pid, (uint32_t)getpid());
	wr_store_relaxed(&c->recorder_epoch, 1);
	/* Release pairs with the acquire load of magic in chan_validate: a
	 * process that sees the magic sees every field above. */
	__atomic_store_n(&c->magic, WR_CHAN_MAGIC, __ATOMIC_RELEASE);

	if ((rc = chan_alloc_consumers(ch)) < 0)
		goto fail_unlink;
	*out = ch;
	return 0;

fail_unlink:
	/* Only our own object: the name may be another recorder's by now. */
	if (chan_names(path, fd))
		shm_unlink(path);
	wr_chan_map_close(&ch->map);
	close(fd);
	free(ch);
	return rc;
}

int
wr_channel_open(struct wr_channel **out, const char *name, const struct wr_channel_options *opt)
{
	*out = NULL;
	int rc = wr_channel_name_check(name);
	if (rc < 0)
		return rc;
	struct wr_channel *ch = chan_alloc(name, opt);
	if (!ch)
		return -ENOMEM;
	if ((rc = wr_chan_map_open(&ch->map, name, &ch->fd, true)) < 0) {
		free(ch);
		return rc;
	}
	if ((rc = chan_lock(ch->fd, name)) < 0 || (rc = chan_alloc_consumers(ch)) < 0) {
		wr_chan_map_close(&ch->map);
		close(ch->fd);
		free(ch);
		return rc;
	}
	ch->opt.producers_max = ch->map.layout.producers_max;
	ch->opt.ring_capacity = ch->map.layout.ring_capacity;
	struct wr_chan_control *c = ch->map.control;
	wr_store_relaxed(&c->recorder_pid, (uint32_t)getpid());
	wr_fetch_add_relaxed(&c->recorder_epoch, 1);
	/* Release pairs with the producers' acquire load of state. */
	wr_store_release(&c->state, WR_CHAN_STARTING);
	ch->need_resume = true;
	*out = ch;
	return 0;
}

static inline walrec_event_t *
chan_slot(const struct wr_channel *ch, uint32_t i, uint64_t pos)
{
	return wr_chan_ring(&ch->map, i) + (pos & ch->mask);
}

/* Wake every thread sleeping on a producer's tail or durable futex. */
static void
chan_wake_producer(struct wr_channel *ch, uint32_t i, bool space, bool durable)
{
	if (space) {
		_Atomic uint32_t *w = &ch->map.cursors[i].tail_futex;
		wr_store_release(w, wr_load_relaxed(w) + 1);
		wr_futex_wake(w, INT_MAX);
	}
	if (durable) {
		_Atomic uint32_t *w = &ch->map.durable[i].durable_futex;
		wr_store_release(w, wr_load_relaxed(w) + 1);
		wr_futex_wake(w, INT_MAX);
	}
	wr_counter_inc(&ch->metrics.producer_wakes);
}

static void
chan_reject(struct wr_channel *ch, uint32_t i, uint32_t reason, uint64_t a, uint64_t b)
{
	static const char *const why[] = { "", "invalid state word", "impossible head",
					   "tail changed behind the recorder",
					   "take log inconsistent at resume",
					   "durable sequence past the tail" };
	struct wr_chan_consumer *c = &ch->cons[i];
	struct wr_chan_entry *e = &ch->map.table[i];
	if (c->rejected)
		return;
	c->rejected = true;
	uint64_t o = wr_load_relaxed(&e->owner);
	/* CAS so a concurrent detach or attach cannot be overwritten blindly;
	 * whatever it did, the entry ends REJECTED. */
	while (!wr_cas_acq_rel(&e->owner, &o,
			       WR_CHAN_OWNER(WR_CHAN_OWNER_PID(o), WR_CHAN_ENTRY_REJECTED)))
		;
	wr_store_relaxed(&e->reject_reason, reason);
	wr_counter_inc(&ch->metrics.rejected);
	wr_log_warn("channel %s: producer %u (pid %u) rejected: %s (%llu, %llu); its ring "
		    "is no longer read", ch->name, i, WR_CHAN_OWNER_PID(o),
		    reason < WR_ARRAY_SIZE(why) ? why[reason] : "?", (unsigned long long)a,
		    (unsigned long long)b);
	/* Its waiters see the owner word change and return ECLOSED. */
	chan_wake_producer(ch, i, true, true);
}

/* Free a DEAD entry whose published slots are all taken and released. */
static void
chan_try_free(struct wr_channel *ch, uint32_t i, uint64_t owner)
{
	struct wr_chan_consumer *c = &ch->cons[i];
	if (c->rejected || c->tail != c->taken)
		return;
	/* Acquire pairs with the (dead) producer's last release store of head. */
	uint64_t h = wr_load_acquire(&ch->map.cursors[i].head);
	if (h != c->taken)
		return;
	/* Release pairs with the acquire CAS of the next attach: it sees our
	 * final tail store. */
	if (wr_cas_acq_rel(&ch->map.table[i].owner, &owner, WR_CHAN_OWNER(0, WR_CHAN_ENTRY_FREE))) {
		wr_counter_inc(&ch->metrics.freed);
		wr_log_info("channel %s: producer entry %u freed", ch->name, i);
	}
}

static void
chan_push_mark(struct wr_chan_consumer *c, uint64_t pos, uint64_t id)
{
	if (c->mark_w - c->mark_r == WR_CHAN_MARKS) {
		c->marks[(c->mark_w - 1) % WR_CHAN_MARKS] = (struct wr_chan_mark){ pos, id };
		return;
	}
	c->marks[c->mark_w % WR_CHAN_MARKS] = (struct wr_chan_mark){ pos, id };
	c->mark_w++;
}

/* Store a new tail for producer i and wake its space waiters. */
static void
chan_store_tail(struct wr_channel *ch, uint32_t i, uint64_t tail)
{
	struct wr_chan_cursor *cur = &ch->map.cursors[i];
	ch->cons[i].tail = tail;
	/* Release pairs with the producer's acquire load of tail before it
	 * overwrites slots: our reads of the released slots happen before. */
	wr_store_release(&cur->tail, tail);
	wr_store_release(&cur->tail_futex, wr_load_relaxed(&cur->tail_futex) + 1);
	/* seq_cst fence pairs with the producer's fence between raising
	 * space_waiters and re-reading tail: either it sees our tail or we see
	 * its waiter count (no lost wake-up). */
	wr_fence_seq_cst();
	if (wr_load_relaxed(&cur->space_waiters) != 0) {
		wr_futex_wake(&cur->tail_futex, INT_MAX);
		wr_counter_inc(&ch->metrics.producer_wakes);
	}
}

/*
 * Record the run about to be taken from producer i: positions from
 * c->taken, ids from first_id, n slots. Extends the newest run when it
 * continues it (same positions, same ids: nothing was taken elsewhere in
 * between); otherwise opens a new one. The shared take log is complete
 * before any of the run's events is appended (compiler barriers: a killed
 * recorder leaves every store it made). Returns false when the log is
 * full of runs not yet released (the ring waits).
 */
static bool
chan_run_begin(struct wr_channel *ch, uint32_t i, uint64_t first_id, uint64_t n)
{
	struct wr_chan_consumer *c = &ch->cons[i];
	struct wr_chan_takes *tl = wr_chan_takes(&ch->map, i);
	uint32_t mask = ch->takes_n - 1;
	if (c->runs_w > c->runs_r) {
		struct wr_chan_run *last = &c->runs[(c->runs_w - 1) & mask];
		if (last->pos + last->n == c->taken && last->id + last->n == first_id &&
		    last->n + n <= UINT32_MAX) {
			last->n += n;
			wr_store_relaxed(&tl->rec[(c->runs_w - 1) & mask].n, (uint32_t)last->n);
			atomic_signal_fence(memory_order_seq_cst);
			return true;
		}
	}
	/* One record slot stays free: the one being written, which a resume
	 * after a crash mid-write must not read as an old record. */
	if (c->runs_w - c->runs_r >= ch->takes_n - 1) {
		wr_counter_inc(&ch->metrics.take_log_full);
		return false;
	}
	struct wr_chan_run *r = &c->runs[c->runs_w & mask];
	*r = (struct wr_chan_run){ c->taken, first_id, n };
	struct wr_chan_take *t = &tl->rec[c->runs_w & mask];
	wr_store_relaxed(&t->pos, r->pos);
	wr_store_relaxed(&t->id, r->id);
	wr_store_relaxed(&t->n, (uint32_t)n);
	/* The record is whole before the count covers it. */
	atomic_signal_fence(memory_order_seq_cst);
	c->runs_w++;
	wr_store_relaxed(&tl->count, c->runs_w);
	atomic_signal_fence(memory_order_seq_cst);
	return true;
}

/* The run ended after `taken` of its planned `planned` slots: say so before any other append. */
static void
chan_run_short(struct wr_channel *ch, uint32_t i, uint64_t planned, uint64_t taken)
{
	struct wr_chan_consumer *c = &ch->cons[i];
	uint32_t mask = ch->takes_n - 1;
	struct wr_chan_run *last = &c->runs[(c->runs_w - 1) & mask];
	last->n -= planned - taken;
	wr_store_relaxed(&wr_chan_takes(&ch->map, i)->rec[(c->runs_w - 1) & mask].n,
			 (uint32_t)last->n);
	atomic_signal_fence(memory_order_seq_cst);
}

/* Take up to quota slots from producer i, ids from *last_id + 1. */
static size_t
chan_take_one(struct wr_channel *ch, uint32_t i, size_t quota, uint64_t *last_id,
	      wr_channel_take_fn fn, void *arg, int *err)
{
	struct wr_chan_consumer *c = &ch->cons[i];
	if (c->rejected)
		return 0;
	/* Acquire pairs with the producer's release CAS to ACTIVE. */
	uint64_t o = wr_load_acquire(&ch->map.table[i].owner);
	uint32_t st = WR_CHAN_OWNER_STATE(o);
	if (st == WR_CHAN_ENTRY_FREE || st == WR_CHAN_ENTRY_ATTACHING)
		return 0;
	if (st == WR_CHAN_ENTRY_REJECTED) {
		c->rejected = true;
		return 0;
	}
	if (st != WR_CHAN_ENTRY_ACTIVE && st != WR_CHAN_ENTRY_DEAD) {
		chan_reject(ch, i, WR_CHAN_REJECT_STATE, st, 0);
		return 0;
	}
	struct wr_chan_cursor *cur = &ch->map.cursors[i];
	uint64_t t = wr_load_relaxed(&cur->tail);
	if (t != c->tail) {
		chan_reject(ch, i, WR_CHAN_REJECT_TAIL, t, c->tail);
		return 0;
	}
	/* Acquire pairs with the producer's release store of head: the slots
	 * below h are completely written. */
	uint64_t h = wr_load_acquire(&cur->head);
	if (h < c->head_seen || h - c->tail > ch->map.layout.ring_capacity) {
		chan_reject(ch, i, WR_CHAN_REJECT_HEAD, h, c->head_seen);
		return 0;
	}
	c->head_seen = h;
	uint64_t want = h - c->taken < quota ? h - c->taken : quota;
	if (want == 0 || !chan_run_begin(ch, i, *last_id + 1, want))
		return 0;
	size_t n = 0;
	while (n < want) {
		int rc = fn(arg, i, chan_slot(ch, i, c->taken), *last_id + 1);
		if (rc < 0) {
			*err = rc;
			break;
		}
		c->taken++;
		(*last_id)++;
		n++;
	}
	if (n < want)
		chan_run_short(ch, i, want, n);
	wr_counter_add(&ch->metrics.taken, n);
	return n;
}

void
wr_channel_publish_durable(struct wr_channel *ch, uint64_t last_durable_id)
{
	if (last_durable_id > ch->applied_durable)
		ch->applied_durable = last_durable_id;
	for (uint32_t i = 0; i < ch->map.layout.producers_max; i++) {
		struct wr_chan_consumer *c = &ch->cons[i];
		uint64_t pos = c->durable;
		while (c->mark_r != c->mark_w &&
		       c->marks[c->mark_r % WR_CHAN_MARKS].id <= last_durable_id) {
			uint64_t p = c->marks[c->mark_r % WR_CHAN_MARKS].pos;
			if (p > pos)
				pos = p;
			c->mark_r++;
		}
		if (pos == c->durable)
			continue;
		c->durable = pos;
		struct wr_chan_durable *d = &ch->map.durable[i];
		/* Release pairs with the acquire load of durable_seq in
		 * walrec_producer_wait_durable. */
		wr_store_release(&d->durable_seq, pos);
		wr_store_release(&d->durable_futex, wr_load_relaxed(&d->durable_futex) + 1);
		wr_counter_inc(&ch->metrics.durable_acks);
		/* seq_cst fence pairs with the waiter's fence between raising
		 * durable_waiters and re-reading durable_seq. */
		wr_fence_seq_cst();
		if (wr_load_relaxed(&d->durable_waiters) != 0) {
			wr_futex_wake(&d->durable_futex, INT_MAX);
			wr_counter_inc(&ch->metrics.producer_wakes);
		}
	}
}

bool
wr_channel_durable_wanted(const struct wr_channel *ch)
{
	for (uint32_t i = 0; i < ch->map.layout.producers_max; i++) {
		const struct wr_chan_consumer *c = &ch->cons[i];
		/* Relaxed: a hint; a missed waiter is served by the next interval sync. */
		if (!c->rejected && c->durable < c->taken &&
		    wr_load_relaxed(&ch->map.durable[i].durable_waiters) != 0)
			return true;
	}
	return false;
}

void
wr_channel_post_durable(struct wr_channel *ch, uint64_t last_durable_id)
{
	wr_raise_u64(&ch->posted_durable, last_durable_id, memory_order_seq_cst);
	/* The seq_cst CAS above orders the post before the load of sleeping
	 * in wr_channel_wake (pairs with the fence in wr_channel_park). */
	wr_fence_seq_cst();
	if (wr_load_relaxed(&ch->map.wake->sleeping))
		wr_channel_wake(ch);
}

static void
chan_apply_posted(struct wr_channel *ch)
{
	uint64_t d = wr_load_relaxed(&ch->posted_durable);
	if (d > ch->applied_durable)
		wr_channel_publish_durable(ch, d);
}

ssize_t
wr_channel_poll(struct wr_channel *ch, size_t max, uint64_t *last_id, wr_channel_take_fn fn,
		void *arg)
{
	if (ch->need_resume)
		return -EINVAL;
	chan_apply_posted(ch);
	uint32_t p = ch->map.layout.producers_max;
	size_t total = 0;
	int err = 0;
	bool progress = true;
	while (total < max && progress && err == 0) {
		progress = false;
		for (uint32_t k = 0; k < p && total < max && err == 0; k++) {
			uint32_t i = (ch->rr + k) % p;
			size_t quota = max - total < WR_CHANNEL_QUANTUM ? max - total
									: WR_CHANNEL_QUANTUM;
			size_t n = chan_take_one(ch, i, quota, last_id, fn, arg, &err);
			total += n;
			progress |= n > 0;
		}
	}
	ch->rr = (ch->rr + 1) % p;
	if (err < 0)
		return err;
	/* Liveness checks at a bounded rate, busy or idle: a clock read on
	 * idle polls and on every 64th busy one. */
	if (total == 0 || (++ch->polls & 63) == 0) {
		uint64_t now = wr_clock_now_ns();
		if (now - ch->last_reclaim_ns >= ch->opt.reclaim_interval_ns) {
			ch->last_reclaim_ns = now;
			wr_channel_reclaim(ch);
		}
	}
	return (ssize_t)total;
}

void
wr_channel_release_sealed(struct wr_channel *ch, uint64_t last_sealed_id)
{
	uint32_t mask = ch->takes_n - 1;
	for (uint32_t i = 0; i < ch->map.layout.producers_max; i++) {
		struct wr_chan_consumer *c = &ch->cons[i];
		if (c->rejected || c->tail == c->taken)
			continue;
		/* Ids grow with positions: release the prefix of the runs whose
		 * ids are sealed. */
		uint64_t pos = c->tail, last = 0;
		while (c->runs_r < c->runs_w) {
			const struct wr_chan_run *r = &c->runs[c->runs_r & mask];
			if (r->id > last_sealed_id)
				break;
			uint64_t k = last_sealed_id - r->id + 1;
			if (k < r->n) {
				pos = r->pos + k;
				last = r->id + k - 1;
				break;
			}
			pos = r->pos + r->n;
			last = r->id + r->n - 1;
			/* The newest run may still grow: keep it while it is open. */
			if (c->runs_r + 1 == c->runs_w)
				break;
			c->runs_r++;
		}
		if (pos <= c->tail)
			continue;
		wr_counter_add(&ch->metrics.released, pos - c->tail);
		chan_push_mark(c, pos, last);
		chan_store_tail(ch, i, pos);
		uint64_t o = wr_load_acquire(&ch->map.table[i].owner);
		if (WR_CHAN_OWNER_STATE(o) == WR_CHAN_ENTRY_DEAD)
			chan_try_free(ch, i, o);
	}
}

static bool
chan_pid_gone(uint32_t pid)
{
	if (pid == 0 || pid > INT_MAX)
		return false;
	return kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}

int
wr_channel_reclaim(struct wr_channel *ch)
{
	int found = 0;
	for (uint32_t i = 0; i < ch->map.layout.producers_max; i++) {
		struct wr_chan_entry *e = &ch->map.table[i];
		uint64_t o = wr_load_acquire(&e->owner);
		uint32_t st = WR_CHAN_OWNER_STATE(o);
		if ((st == WR_CHAN_ENTRY_ACTIVE || st == WR_CHAN_ENTRY_ATTACHING) &&
		    chan_pid_gone(WR_CHAN_OWNER_PID(o))) {
			uint64_t dead = WR_CHAN_OWNER(WR_CHAN_OWNER_PID(o), WR_CHAN_ENTRY_DEAD);
			if (wr_cas_acq_rel(&e->owner, &o, dead)) {
				found++;
				wr_counter_inc(&ch->metrics.dead);
				wr_log_info("channel %s: producer %u (pid %u) is gone; draining "
					    "its ring", ch->name, i, WR_CHAN_OWNER_PID(o));
				o = dead;
				st = WR_CHAN_ENTRY_DEAD;
			}
		}
		if (st == WR_CHAN_ENTRY_DEAD)
			chan_try_free(ch, i, o);
	}
	return found;
}

/*
 * The previous recorder's take log of producer i (untrusted: validated as
 * it is read): find the end of the prefix of [t, h) whose ids are <= L,
 * in *end. Then void the log (base = count) so that no later resume can
 * take one of those old ids for a sealed one, once the new incarnation
 * reuses the numbers. false when the log is impossible.
 */
static bool
chan_resume_takes(struct wr_channel *ch, uint32_t i, uint64_t t, uint64_t h, uint64_t L,
		  uint64_t *end)
{
	struct wr_chan_consumer *c = &ch->cons[i];
	struct wr_chan_takes *tl = wr_chan_takes(&ch->map, i);
	uint64_t count = wr_load_relaxed(&tl->count), base = wr_load_relaxed(&tl->base);
	uint32_t mask = ch->takes_n - 1;
	*end = t;
	if (base > count)
		return false;
	/* The newest takes_n - 1 records: the slot after them may be half rewritten. */
	uint64_t first = count - base > ch->takes_n - 1 ? count - (ch->takes_n - 1) : base;
	uint64_t prev_end = 0, prev_id_end = 0;
	for (uint64_t k = first; k < count; k++) {
		const struct wr_chan_take *r = &tl->rec[k & mask];
		uint64_t pos = wr_load_relaxed(&r->pos), id = wr_load_relaxed(&r->id);
		uint64_t n = wr_load_relaxed(&r->n);
		/* Runs follow each other in ring order and end at or below the
		 * head; ids grow. (A run may span more than the ring: its older
		 * slots were released and reused.) */
		if (pos + n < pos || pos + n > h || pos < prev_end || id == 0 || id < prev_id_end ||
		    id + n < id)
			return false;
		prev_end = pos + n;
		prev_id_end = id + n;
		if (pos + n <= *end || n == 0)
			continue; /* released before (or empty) */
		if (pos > *end)
			break; /* a gap: what follows was not taken after *end */
		uint64_t from = *end - pos; /* first slot of the run not yet counted */
		if (id + from > L)
			break;
		uint64_t k_sealed = L - (id + from) + 1;
		if (k_sealed < n - from) {
			*end += k_sealed;
			break;
		}
		*end = pos + n;
	}
	c->runs_w = c->runs_r = count;
	wr_store_relaxed(&tl->base, count);
	return true;
}

int
wr_channel_resume(struct wr_channel *ch, uint64_t last_sealed_id)
{
	if (!ch->need_resume)
		return -EINVAL;
	uint64_t cap = ch->map.layout.ring_capacity;
	for (uint32_t i = 0; i < ch->map.layout.producers_max; i++) {
		struct wr_chan_consumer *c = &ch->cons[i];
		struct wr_chan_cursor *cur = &ch->map.cursors[i];
		uint64_t o = wr_load_acquire(&ch->map.table[i].owner);
		uint32_t st = WR_CHAN_OWNER_STATE(o);
		/* Acquire pairs with the producer's release store of head. */
		uint64_t h = wr_load_acquire(&cur->head);
		uint64_t t = wr_load_relaxed(&cur->tail);
		uint64_t d = wr_load_relaxed(&ch->map.durable[i].durable_seq);
		c->taken = c->tail = c->head_seen = t;
		c->durable = d;
		if (st == WR_CHAN_ENTRY_REJECTED) {
			c->rejected = true;
			continue;
		}
		if (st > WR_CHAN_ENTRY_REJECTED) {
			chan_reject(ch, i, WR_CHAN_REJECT_STATE, st, 0);
			continue;
		}
		if (t > h || h - t > cap || (st == WR_CHAN_ENTRY_FREE && h != t)) {
			chan_reject(ch, i, WR_CHAN_REJECT_HEAD, h, t);
			continue;
		}
		if (d > t) {
			chan_reject(ch, i, WR_CHAN_REJECT_DURABLE, d, t);
			continue;
		}
		/* Slots [t, h): a prefix was taken and sealed by the previous
		 * recorder (ids <= L in its take log) - release it; the rest are
		 * taken again in order, with new ids. */
		uint64_t pos;
		if (!chan_resume_takes(ch, i, t, h, last_sealed_id, &pos)) {
			chan_reject(ch, i, WR_CHAN_REJECT_TAKES, t, h);
			continue;
		}
		wr_counter_add(&ch->metrics.resumed_released, pos - t);
		wr_counter_add(&ch->metrics.resumed_retaken, h - pos);
		c->taken = c->head_seen = pos;
		if (pos > d)
			chan_push_mark(c, pos, last_sealed_id);
		if (pos != t)
			chan_store_tail(ch, i, pos);
	}
	/* The voided take logs reach the shared object before any new id is
	 * assigned (a later resume reads them after this process is gone). */
	atomic_signal_fence(memory_order_seq_cst);
	ch->need_resume = false;
	return 0;
}

static bool
chan_has_work(struct wr_channel *ch)
{
	if (wr_load_relaxed(&ch->posted_durable) > ch->applied_durable)
		return true;
	for (uint32_t i = 0; i < ch->map.layout.producers_max; i++) {
		struct wr_chan_consumer *c = &ch->cons[i];
		if (c->rejected)
			continue;
		uint32_t st = WR_CHAN_OWNER_STATE(wr_load_acquire(&ch->map.table[i].owner));
		if (st != WR_CHAN_ENTRY_ACTIVE && st != WR_CHAN_ENTRY_DEAD)
			continue;
		if (wr_load_acquire(&ch->map.cursors[i].head) != c->taken)
			return true;
	}
	return false;
}

bool
wr_channel_park(struct wr_channel *ch, uint64_t timeout_ns)
{
	struct wr_chan_wake *w = ch->map.wake;
	uint32_t seen = wr_load_acquire(&w->wake_futex);
	wr_store_relaxed(&w->sleeping, 1);
	/*
	 * Pairs with the producer's barrier between its head store and its
	 * load of sleeping (and with post_durable's fence): either it sees
	 * sleeping == 1 and wakes us, or we see its head here. Producers of
	 * registered processes have only a compiler barrier there: the
	 * membarrier makes each of them run a full barrier, so a head stored
	 * before it is visible below. Without it, sleep briefly only.
	 */
	wr_fence_seq_cst();
	if (wr_membarrier_global() != 0 && timeout_ns > WR_CHANNEL_UNSURE_PARK_NS)
		timeout_ns = WR_CHANNEL_UNSURE_PARK_NS;
	if (chan_has_work(ch)) {
		wr_store_relaxed(&w->sleeping, 0);
		return false;
	}
	wr_counter_inc(&ch->metrics.parks);
	wr_futex_wait(&w->wake_futex, seen, timeout_ns);
	wr_store_relaxed(&w->sleeping, 0);
	return true;
}

void
wr_channel_idle(struct wr_channel *ch, uint32_t *rounds)
{
	uint32_t r = (*rounds)++;
	if (r < 64)
		wr_cpu_relax();
	else if (r < 128)
		sched_yield();
	else
		wr_channel_park(ch, ch->opt.park_timeout_ns);
}

void
wr_channel_wake(struct wr_channel *ch)
{
	/* The increment makes a park that read the old value return at once. */
	wr_fetch_add_acq_rel(&ch->map.wake->wake_futex, 1);
	wr_futex_wake(&ch->map.wake->wake_futex, 1);
}

int
wr_channel_set_state(struct wr_channel *ch, uint32_t state)
{
	if (state != WR_CHAN_RUNNING && state != WR_CHAN_STOPPING && state != WR_CHAN_STOPPED)
		return -EINVAL;
	/* Release pairs with the producers' and waiters' acquire loads of state. */
	wr_store_release(&ch->map.control->state, state);
	if (state == WR_CHAN_STOPPED) {
		wr_fence_seq_cst();
		for (uint32_t i = 0; i < ch->map.layout.producers_max; i++)
			chan_wake_producer(ch, i, true, true);
		wr_channel_wake(ch);
	}
	return 0;
}

int
wr_channel_publish_meta(struct wr_channel *ch, const struct wr_channel_meta *v)
{
	struct wr_chan_meta *m = ch->map.meta;
	uint64_t s = wr_load_relaxed(&m->seq);
	/* Odd at rest: a writer (an earlier recorder) was killed mid-update.
	 * Start from the next even value so the parity means what it says. */
	s += s & 1;
	wr_store_relaxed(&m->seq, s + 1);
	/* Orders the odd seq before the field stores (pairs with the reader's
	 * acquire fence before its second seq load). */
	wr_fence_release();
	wr_store_relaxed(&m->packed, ((uint64_t)v->segment_index << 32) | v->offset);
	wr_store_relaxed(&m->last_sealed_id, v->last_sealed_id);
	wr_store_relaxed(&m->last_durable_id, v->last_durable_id);
	wr_store_relaxed(&m->sealed_pos,
			 ((uint64_t)v->sealed_segment_index << 32) | v->sealed_blocks);
	/* Pairs with the reader's acquire load of seq. */
	wr_store_release(&m->seq, s + 2);
	/* Release pairs with a follower's acquire load of sealed_futex before
	 * it reads the mirror: a new count means these fields are visible. */
	wr_fetch_add_acq_rel(&m->sealed_futex, 1);
	/* Pairs with the fence a follower makes between adding itself to
	 * followers and its last look at sealed_futex: either it sees the new
	 * count and does not sleep, or this load sees it and wakes it. */
	wr_fence_seq_cst();
	if (wr_load_relaxed(&m->followers) == 0)
		return 0;
	int woken = wr_futex_wake(&m->sealed_futex, INT_MAX);
	return woken > 0 ? woken : 0;
}

int
wr_channel_read_meta(const struct wr_chan_map *map, struct wr_channel_meta *out)
{
	struct wr_chan_meta *m = map->meta;
	/* Acquire pairs with the release add in wr_channel_publish_meta. */
	uint32_t change = wr_load_acquire(&m->sealed_futex);
	for (int tries = 0; tries < 1000; tries++) {
		/* Acquire pairs with the writer's final release store of seq. */
		uint64_t s1 = wr_load_acquire(&m->seq);
		if (s1 & 1) {
			sched_yield();
			continue;
		}
		uint64_t packed = wr_load_relaxed(&m->packed);
		out->last_sealed_id = wr_load_relaxed(&m->last_sealed_id);
		out->last_durable_id = wr_load_relaxed(&m->last_durable_id);
		uint64_t sealed = wr_load_relaxed(&m->sealed_pos);
		/* Pairs with the writer's release fence after its odd seq. */
		wr_fence_acquire();
		if (wr_load_relaxed(&m->seq) == s1) {
			out->segment_index = (uint32_t)(packed >> 32);
			out->offset = (uint32_t)packed;
			out->sealed_segment_index = (uint32_t)(sealed >> 32);
			out->sealed_blocks = (uint32_t)sealed;
			out->change = change;
			return s1 != 0;
		}
	}
	return -EAGAIN;
}

void
wr_channel_close(struct wr_channel *ch)
{
	if (!ch)
		return;
	chan_free_consumers(ch);
	wr_chan_map_close(&ch->map);
	if (ch->fd >= 0)
		close(ch->fd);
	free(ch);
}

int
wr_channel_unlink(const char *name)
{
	char path[WR_CHAN_NAME_MAX + 16];
	int rc = wr_channel_name_check(name);
	if (rc < 0)
		return rc;
	chan_path(path, sizeof path, name);
	return shm_unlink(path) == 0 ? 0 : -errno;
}

const struct wr_channel_metrics *
wr_channel_metrics(const struct wr_channel *ch)
{
	return &ch->metrics;
}

const struct wr_chan_map *
wr_channel_map(const struct wr_channel *ch)
{
	return &ch->map;
}
