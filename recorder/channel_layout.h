/* SPDX-License-Identifier: MIT */
/*
 * walrec channel: the byte layout of the shared-memory object /walrec.<name>
 * (layout version 1). Shared by the recorder (recorder/channel.c) and the
 * producers (recorder/producer.c). Protocol: docs/channel.md.
 *
 * Host byte order (little-endian, see lib/compiler.h); every region starts
 * on a 64-byte line; P = producers_max, C = ring_capacity (slots, power of 2).
 *
 * Regions, in order:
 *   region     offset                              size
 *   control    0                                   4096
 *   table      4096                                P * 64    producer entries
 *   cursors    table_off + table_size              P * 128   head line, tail line
 *   durable    cursors_off + cursors_size          P * 64    durable sequences
 *   meta       durable_off + durable_size          64        MetaState mirror
 *   wake       meta_off + 64                       64        recorder wake-up
 *   telemetry  round_up(wake_off + 64, 4096)       65536     snapshots (recorder/telemetry_layout.h)
 *   rings      round_up(tel_off + 65536, 4096)     P * C * 64
 *   takes      rings_off + rings_size              P * (64 + T * 32)  take logs
 *   total      takes_off + takes_size (the object's size, checked with fstat)
 * T = wr_chan_takes_per_producer(C) = min(max(C / 16, 16), 4096) records per producer.
 *
 * Control page (offset 0, 4096 bytes; lines 0-2 written once at creation):
 *   off size field
 *     0    8 magic = the bytes "WALRECCH" (0x48434345524c4157 as a u64)
 *     8    4 layout_version = 1
 *    12    4 control_size = 4096
 *    16    8 total_size
 *    24    4 producers_max      1..WR_CHAN_MAX_PRODUCERS
 *    28    4 ring_capacity      power of two, WR_CHAN_MIN_CAPACITY..WR_CHAN_MAX_CAPACITY
 *    32    4 slot_size = 64
 *    36    4 entry_size = 64
 *    40    4 cursor_size = 128
 *    44    4 durable_entry_size = 64
 *    48    8 created_ns         CLOCK_REALTIME at creation
 *    56    8 reserved (0)
 *    64  128 region table: (offset, size) u64 pairs for table, cursors,
 *            durable, meta, wake, telemetry, rings, takes, in that order
 *   192    4 state              WR_CHAN_STARTING/RUNNING/STOPPING/STOPPED
 *   196    4 recorder_pid
 *   200    8 recorder_epoch     +1 every time a recorder creates or opens it
 *   256    8 attach_count       producers fetch_add it for their entry tag
 *   264..4096 reserved (0)
 *
 * Producer entry (table, 64 bytes each):
 *     0    8 owner       (pid << 32) | state; state WR_CHAN_ENTRY_*; CAS only
 *     8    8 tag         attach number (control.attach_count + 1); 0 = never
 *    16    8 attach_ns   CLOCK_REALTIME at attach
 *    24    4 reject_reason  WR_CHAN_REJECT_* set when the recorder rejects it
 *    28   36 reserved
 *
 * Cursors (128 bytes each): two lines so producer and recorder never write
 * the same line on the hot path.
 *     0    8 head           producer: count of published slots (monotonic)
 *     8    4 space_waiters  producer threads sleeping for the tail to move
 *    12    4 reserved (0)
 *    16    8 attach_head    producer: head when this attachment began
 *    24    8 full_waits     producer: appends that found the ring full
 *    32    8 recorder_wakes producer: FUTEX_WAKEs of a parked recorder
 *    64    8 tail           recorder: count of released slots (monotonic)
 *    72    4 tail_futex     recorder: +1 after every tail store (futex word)
 * attach_head, full_waits and recorder_wakes are telemetry: the appending
 * thread sets them at attach (before the release CAS to ACTIVE) and bumps
 * the counters on its slow paths, on the line it writes anyway; only the
 * telemetry aggregator reads them.
 *
 * Durable entry (64 bytes each):
 *     0    8 durable_seq      recorder: count of durable slots (monotonic)
 *     8    4 durable_futex    recorder: +1 after every durable_seq store
 *    12    4 durable_waiters  threads sleeping in wait_durable
 *
 * Meta mirror (64 bytes; seqlock over 0..40, one writer):
 *     0    8 seq              odd while an update is in progress; 0: never published
 *     8    8 packed           (segment_index << 32) | offset, the MetaState (wal.meta) position
 *    16    8 last_sealed_id
 *    24    8 last_durable_id
 *    32    8 sealed_pos       (segment_index << 32) | blocks: the sealed blocks written
 *                             to that segment file, the last holding last_sealed_id
 *    40    4 sealed_futex     +1 after every publish (futex word for followers)
 *    44    4 followers        followers sleeping on sealed_futex (each adds itself)
 *
 * Wake (64 bytes):
 *     0    4 wake_futex       producers +1 before waking a parked recorder
 *     4    4 sleeping         recorder: 1 while parked (or about to park)
 *
 * Ring slot (64 bytes) = walrec_event_t: event_id (0, the recorder ignores
 * it), timestamp_ns, payload[48]. Producer p's slot for position pos is
 * rings_off + (p * C + (pos & (C-1))) * 64. Only the producer writes slots.
 *
 * Take log (per producer, 64 + T * 32 bytes; written by the recorder only,
 * read back by the next recorder after a crash):
 *     0    8 count            records ever written; record k is at 64 + (k % T) * 32
 *     8    8 base             records below base are void (a resume set it)
 *   record (32 bytes): pos u64 at 0 (first ring position of a run of
 *     taken slots), id u64 at 8 (the event id given to it; the run's slots
 *     have ids id, id + 1, ...), n u32 at 16 (slots in the run: stored
 *     before their events are appended, corrected if fewer were).
 *
 * Validity (checked by everyone who maps an existing object, before use):
 * magic, version, control_size, slot/entry/cursor/durable sizes, limits on
 * producers_max and ring_capacity, and every region (offset, size) equal to
 * the layout computed from (producers_max, ring_capacity), total_size equal
 * to that layout's total and to the object's size. Once mapped, each side
 * keeps its own copy of the layout and never re-reads it, so later scribbles
 * on the control page cannot move a pointer. Cursors are untrusted: the
 * recorder checks head/tail arithmetic before every read of a ring.
 */
#ifndef WR_CHANNEL_LAYOUT_H
#define WR_CHANNEL_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <walrec/common.h>

#include "lib/compiler.h"

/* "WALRECCH" read as a little-endian u64. */
#define WR_CHAN_MAGIC                                                          \
	((uint64_t)'W' | (uint64_t)'A' << 8 | (uint64_t)'L' << 16 |            \
	 (uint64_t)'R' << 24 | (uint64_t)'E' << 32 | (uint64_t)'C' << 40 |     \
	 (uint64_t)'C' << 48 | (uint64_t)'H' << 56)
#define WR_CHAN_LAYOUT_VERSION 1u
#define WR_CHAN_CONTROL_SIZE 4096u
#define WR_CHAN_PAGE 4096u
#define WR_CHAN_SLOT_SIZE 64u
#define WR_CHAN_ENTRY_SIZE 64u
#define WR_CHAN_CURSOR_SIZE 128u
#define WR_CHAN_DURABLE_SIZE 64u
#define WR_CHAN_META_SIZE 64u
#define WR_CHAN_WAKE_SIZE 64u
#define WR_CHAN_TELEMETRY_SIZE 65536u

#define WR_CHAN_MAX_PRODUCERS 1024u
#define WR_CHAN_MIN_CAPACITY 2u
#define WR_CHAN_MAX_CAPACITY (1u << 22) /* 256 MiB per ring */
#define WR_CHAN_NAME_MAX 64u
#define WR_CHAN_PREFIX "/walrec."

/* Channel state word (control.state). */
enum {
	WR_CHAN_STARTING = 0, /* created or reopened; appends accepted */
	WR_CHAN_RUNNING = 1,  /* a recorder drains the rings */
	WR_CHAN_STOPPING = 2, /* shutting down: appends refused, rings draining */
	WR_CHAN_STOPPED = 3,  /* final: appends and durable waits end with ECLOSED */
};

/* Producer entry states (low 32 bits of entry.owner). */
enum {
	WR_CHAN_ENTRY_FREE = 0,
	WR_CHAN_ENTRY_ATTACHING = 1,
	WR_CHAN_ENTRY_ACTIVE = 2,
	WR_CHAN_ENTRY_DEAD = 3,     /* owner gone: drain, release, then free */
	WR_CHAN_ENTRY_REJECTED = 4, /* impossible cursors: never read again */
};

/* Why the recorder rejected a producer entry (entry.reject_reason). */
enum {
	WR_CHAN_REJECT_NONE = 0,
	WR_CHAN_REJECT_STATE = 1,    /* owner word holds no valid state */
	WR_CHAN_REJECT_HEAD = 2,     /* head went backwards or past capacity */
	WR_CHAN_REJECT_TAIL = 3,     /* tail differs from what the recorder stored */
	WR_CHAN_REJECT_TAKES = 4,    /* take log inconsistent (found at resume) */
	WR_CHAN_REJECT_DURABLE = 5,  /* durable_seq past tail (found at resume) */
};

#define WR_CHAN_OWNER(pid, state) (((uint64_t)(uint32_t)(pid) << 32) | (uint32_t)(state))
#define WR_CHAN_OWNER_STATE(o) ((uint32_t)(o))
#define WR_CHAN_OWNER_PID(o) ((uint32_t)((o) >> 32))

struct wr_chan_region {
	uint64_t off;
	uint64_t size;
};

/* Index of each region in wr_chan_control.regions. */
enum {
	WR_CHAN_R_TABLE = 0,
	WR_CHAN_R_CURSORS,
	WR_CHAN_R_DURABLE,
	WR_CHAN_R_META,
	WR_CHAN_R_WAKE,
	WR_CHAN_R_TELEMETRY,
	WR_CHAN_R_RINGS,
	WR_CHAN_R_TAKES,
	WR_CHAN_R_COUNT
};

struct wr_chan_control {
	/* line 0: identity, written once before magic is published */
	uint64_t magic;
	uint32_t layout_version;
	uint32_t control_size;
	uint64_t total_size;
	uint32_t producers_max;
	uint32_t ring_capacity;
	uint32_t slot_size;
	uint32_t entry_size;
	uint32_t cursor_size;
	uint32_t durable_entry_size;
	uint64_t created_ns;
	uint64_t reserved0;
	/* lines 1-2: region table */
	struct wr_chan_region regions[WR_CHAN_R_COUNT];
	/* line 3: recorder state, read by producers on every append */
	WR_ALIGNED_LINE _Atomic uint32_t state;
	_Atomic uint32_t recorder_pid;
	_Atomic uint64_t recorder_epoch;
	/* line 4: written by producers at attach only */
	WR_ALIGNED_LINE _Atomic uint64_t attach_count;
	uint8_t reserved2[WR_CHAN_CONTROL_SIZE - 264];
};

struct wr_chan_entry {
	_Atomic uint64_t owner;
	_Atomic uint64_t tag;
	_Atomic uint64_t attach_ns;
	_Atomic uint32_t reject_reason;
	uint8_t reserved[36];
};

struct wr_chan_cursor {
	/* head line: written by the producer */
	WR_ALIGNED_LINE _Atomic uint64_t head;
	_Atomic uint32_t space_waiters;
	uint32_t reserved;
	_Atomic uint64_t attach_head;
	_Atomic uint64_t full_waits;
	_Atomic uint64_t recorder_wakes;
	/* tail line: written by the recorder */
	WR_ALIGNED_LINE _Atomic uint64_t tail;
	_Atomic uint32_t tail_futex;
};

struct wr_chan_durable {
	WR_ALIGNED_LINE _Atomic uint64_t durable_seq;
	_Atomic uint32_t durable_futex;
	_Atomic uint32_t durable_waiters;
};

struct wr_chan_meta {
	WR_ALIGNED_LINE _Atomic uint64_t seq;
	_Atomic uint64_t packed;
	_Atomic uint64_t last_sealed_id;
	_Atomic uint64_t last_durable_id;
	_Atomic uint64_t sealed_pos;
	_Atomic uint32_t sealed_futex;
	_Atomic uint32_t followers;
};

struct wr_chan_wake {
	WR_ALIGNED_LINE _Atomic uint32_t wake_futex;
	_Atomic uint32_t sleeping;
};

#define WR_CHAN_TAKE_SIZE 32u
#define WR_CHAN_TAKES_HEADER 64u

struct wr_chan_take {
	_Atomic uint64_t pos;
	_Atomic uint64_t id;
	_Atomic uint32_t n;
	uint32_t reserved0;
	uint64_t reserved1;
};

struct wr_chan_takes {
	WR_ALIGNED_LINE _Atomic uint64_t count;
	_Atomic uint64_t base;
	uint8_t reserved[48];
	struct wr_chan_take rec[]; /* WR_CHAN_TAKES(C) of them */
};

_Static_assert(WR_CHAN_MAGIC == 0x48434345524c4157ull, "magic spells WALRECCH");
_Static_assert(sizeof(struct wr_chan_control) == WR_CHAN_CONTROL_SIZE, "control page");
_Static_assert(offsetof(struct wr_chan_control, magic) == 0, "magic");
_Static_assert(offsetof(struct wr_chan_control, layout_version) == 8, "layout_version");
_Static_assert(offsetof(struct wr_chan_control, control_size) == 12, "control_size");
_Static_assert(offsetof(struct wr_chan_control, total_size) == 16, "total_size");
_Static_assert(offsetof(struct wr_chan_control, producers_max) == 24, "producers_max");
_Static_assert(offsetof(struct wr_chan_control, ring_capacity) == 28, "ring_capacity");
_Static_assert(offsetof(struct wr_chan_control, slot_size) == 32, "slot_size");
_Static_assert(offsetof(struct wr_chan_control, entry_size) == 36, "entry_size");
_Static_assert(offsetof(struct wr_chan_control, cursor_size) == 40, "cursor_size");
_Static_assert(offsetof(struct wr_chan_control, durable_entry_size) == 44, "durable_entry_size");
_Static_assert(offsetof(struct wr_chan_control, created_ns) == 48, "created_ns");
_Static_assert(offsetof(struct wr_chan_control, regions) == 64, "regions");
_Static_assert(sizeof(struct wr_chan_region) == 16, "region pair");
_Static_assert(WR_CHAN_R_COUNT * sizeof(struct wr_chan_region) == 128, "region table 64..191");
_Static_assert(offsetof(struct wr_chan_control, state) == 192, "state");
_Static_assert(offsetof(struct wr_chan_control, recorder_pid) == 196, "recorder_pid");
_Static_assert(offsetof(struct wr_chan_control, recorder_epoch) == 200, "recorder_epoch");
_Static_assert(offsetof(struct wr_chan_control, attach_count) == 256, "attach_count");

_Static_assert(sizeof(struct wr_chan_entry) == WR_CHAN_ENTRY_SIZE, "entry");
_Static_assert(offsetof(struct wr_chan_entry, owner) == 0, "owner");
_Static_assert(offsetof(struct wr_chan_entry, tag) == 8, "tag");
_Static_assert(offsetof(struct wr_chan_entry, attach_ns) == 16, "attach_ns");
_Static_assert(offsetof(struct wr_chan_entry, reject_reason) == 24, "reject_reason");

_Static_assert(sizeof(struct wr_chan_cursor) == WR_CHAN_CURSOR_SIZE, "cursor");
_Static_assert(offsetof(struct wr_chan_cursor, head) == 0, "head");
_Static_assert(offsetof(struct wr_chan_cursor, space_waiters) == 8, "space_waiters");
_Static_assert(offsetof(struct wr_chan_cursor, attach_head) == 16, "attach_head");
_Static_assert(offsetof(struct wr_chan_cursor, full_waits) == 24, "full_waits");
_Static_assert(offsetof(struct wr_chan_cursor, recorder_wakes) == 32, "recorder_wakes");
_Static_assert(offsetof(struct wr_chan_cursor, tail) == 64, "tail");
_Static_assert(offsetof(struct wr_chan_cursor, tail_futex) == 72, "tail_futex");

_Static_assert(sizeof(struct wr_chan_durable) == WR_CHAN_DURABLE_SIZE, "durable");
_Static_assert(offsetof(struct wr_chan_durable, durable_seq) == 0, "durable_seq");
_Static_assert(offsetof(struct wr_chan_durable, durable_futex) == 8, "durable_futex");
_Static_assert(offsetof(struct wr_chan_durable, durable_waiters) == 12, "durable_waiters");

_Static_assert(sizeof(struct wr_chan_meta) == WR_CHAN_META_SIZE, "meta");
_Static_assert(offsetof(struct wr_chan_meta, seq) == 0, "meta seq");
_Static_assert(offsetof(struct wr_chan_meta, packed) == 8, "meta packed");
_Static_assert(offsetof(struct wr_chan_meta, last_sealed_id) == 16, "meta last_sealed_id");
_Static_assert(offsetof(struct wr_chan_meta, last_durable_id) == 24, "meta last_durable_id");
_Static_assert(offsetof(struct wr_chan_meta, sealed_pos) == 32, "meta sealed_pos");
_Static_assert(offsetof(struct wr_chan_meta, sealed_futex) == 40, "meta sealed_futex");
_Static_assert(offsetof(struct wr_chan_meta, followers) == 44, "meta followers");

_Static_assert(sizeof(struct wr_chan_wake) == WR_CHAN_WAKE_SIZE, "wake");
_Static_assert(offsetof(struct wr_chan_wake, wake_futex) == 0, "wake_futex");
_Static_assert(offsetof(struct wr_chan_wake, sleeping) == 4, "sleeping");

_Static_assert(sizeof(struct wr_chan_take) == WR_CHAN_TAKE_SIZE, "take record");
_Static_assert(offsetof(struct wr_chan_take, pos) == 0, "take pos");
_Static_assert(offsetof(struct wr_chan_take, id) == 8, "take id");
_Static_assert(offsetof(struct wr_chan_take, n) == 16, "take n");
_Static_assert(offsetof(struct wr_chan_takes, count) == 0, "takes count");
_Static_assert(offsetof(struct wr_chan_takes, base) == 8, "takes base");
_Static_assert(offsetof(struct wr_chan_takes, rec) == WR_CHAN_TAKES_HEADER, "takes records");

_Static_assert(sizeof(walrec_event_t) == WR_CHAN_SLOT_SIZE, "ring slot is one event");
_Static_assert(WR_CHAN_TELEMETRY_SIZE % WR_CHAN_PAGE == 0, "telemetry is whole pages");
_Static_assert(WR_CHAN_CONTROL_SIZE % WR_CACHELINE == 0 && WR_CHAN_ENTRY_SIZE % WR_CACHELINE == 0 &&
		       WR_CHAN_CURSOR_SIZE % WR_CACHELINE == 0 && WR_CHAN_DURABLE_SIZE % WR_CACHELINE == 0,
	       "every per-producer record is whole lines, so every region stays line aligned");

/* The layout computed from (producers_max, ring_capacity). */
struct wr_chan_layout {
	uint32_t producers_max;
	uint32_t ring_capacity;
	struct wr_chan_region regions[WR_CHAN_R_COUNT];
	uint64_t total_size;
};

static inline uint64_t
wr_chan_round_up(uint64_t v, uint64_t align)
{
	return (v + align - 1) & ~(align - 1);
}

/* Take records per producer for a ring of capacity slots (a power of two). */
static inline uint32_t
wr_chan_takes_per_producer(uint32_t capacity)
{
	uint32_t t = capacity / 16;
	return t < 16 ? 16 : t > 4096 ? 4096 : t;
}

/* Bytes of one producer's take log. */
static inline uint64_t
wr_chan_takes_size(uint32_t capacity)
{
	return WR_CHAN_TAKES_HEADER + (uint64_t)wr_chan_takes_per_producer(capacity) * WR_CHAN_TAKE_SIZE;
}

static inline bool
wr_chan_limits_ok(uint32_t producers_max, uint32_t ring_capacity)
{
	return producers_max >= 1 && producers_max <= WR_CHAN_MAX_PRODUCERS &&
	       ring_capacity >= WR_CHAN_MIN_CAPACITY && ring_capacity <= WR_CHAN_MAX_CAPACITY &&
	       (ring_capacity & (ring_capacity - 1)) == 0;
}

/* Fill l for the given limits (which the caller checked with wr_chan_limits_ok). */
static inline void
wr_chan_layout_compute(struct wr_chan_layout *l, uint32_t producers_max, uint32_t ring_capacity)
{
	uint64_t p = producers_max;
	struct wr_chan_region *r = l->regions;
	l->producers_max = producers_max;
	l->ring_capacity = ring_capacity;
	r[WR_CHAN_R_TABLE] = (struct wr_chan_region){ WR_CHAN_CONTROL_SIZE, p * WR_CHAN_ENTRY_SIZE };
	r[WR_CHAN_R_CURSORS] = (struct wr_chan_region){ r[0].off + r[0].size, p * WR_CHAN_CURSOR_SIZE };
	r[WR_CHAN_R_DURABLE] = (struct wr_chan_region){ r[1].off + r[1].size, p * WR_CHAN_DURABLE_SIZE };
	r[WR_CHAN_R_META] = (struct wr_chan_region){ r[2].off + r[2].size, WR_CHAN_META_SIZE };
	r[WR_CHAN_R_WAKE] = (struct wr_chan_region){ r[3].off + r[3].size, WR_CHAN_WAKE_SIZE };
	r[WR_CHAN_R_TELEMETRY] = (struct wr_chan_region){
		wr_chan_round_up(r[4].off + r[4].size, WR_CHAN_PAGE), WR_CHAN_TELEMETRY_SIZE
	};
	r[WR_CHAN_R_RINGS] = (struct wr_chan_region){
		wr_chan_round_up(r[5].off + r[5].size, WR_CHAN_PAGE),
		p * (uint64_t)ring_capacity * WR_CHAN_SLOT_SIZE
	};
	r[WR_CHAN_R_TAKES] = (struct wr_chan_region){ r[6].off + r[6].size,
						      p * wr_chan_takes_size(ring_capacity) };
	l->total_size = r[7].off + r[7].size;
}

/* A validated mapping of a channel, as each side keeps it privately. */
struct wr_chan_map {
	void *base;
	size_t size;
	struct wr_chan_layout layout;
	struct wr_chan_control *control;
	struct wr_chan_entry *table;
	struct wr_chan_cursor *cursors;
	struct wr_chan_durable *durable;
	struct wr_chan_meta *meta;
	struct wr_chan_wake *wake;
	void *telemetry;
	walrec_event_t *rings;
	uint8_t *takes;
};

static inline walrec_event_t *
wr_chan_ring(const struct wr_chan_map *m, uint32_t producer)
{
	return m->rings + (uint64_t)producer * m->layout.ring_capacity;
}

static inline struct wr_chan_takes *
wr_chan_takes(const struct wr_chan_map *m, uint32_t producer)
{
	return (struct wr_chan_takes *)(m->takes +
					(uint64_t)producer * wr_chan_takes_size(m->layout.ring_capacity));
}

#endif
