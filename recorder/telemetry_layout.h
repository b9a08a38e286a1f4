/* SPDX-License-Identifier: MIT */
/*
 * walrec telemetry snapshots: the byte layout of the channel's telemetry
 * region (WR_CHAN_TELEMETRY_SIZE = 65536 bytes, recorder/channel_layout.h),
 * snapshot layout version 1. One writer, the recorder's aggregator thread
 * (recorder/telemetry.c); any number of readers in any process (walrec
 * stat). Protocol and every field's meaning: docs/telemetry.md.
 *
 * Host byte order (little-endian, lib/compiler.h). Every region and
 * section starts on a 64-byte line.
 *
 * Area:
 *   off    size   region
 *   0      64     identity, written before the first publication
 *   64     64     publication line, written at every publication
 *   128    3968   reserved (0)
 *   4096   30720  buffer 0
 *   34816  30720  buffer 1
 *
 * Identity (offset 0):
 *   off size field
 *     0    8 magic = the bytes "WALRECTM" (0x4d544345524c4157 as a u64)
 *     8    4 version = 1
 *    12    4 area_size = 65536
 *    16    4 buffer_off = 4096
 *    20    4 buffer_size = 30720
 *    24    4 buffer_count = 2
 *    28    4 log_size = 64              struct wr_tel_log
 *    32    4 channel_size               struct wr_tel_channel
 *    36    4 recorder_size              struct wr_recorder_metrics
 *    40    4 producer_size = 128        struct wr_tel_producer
 *    44    4 max_producers = 128        entries a snapshot can hold
 *    48   16 reserved (0)
 *
 * Publication line (offset 64):
 *     0    4 current       buffer (0 or 1) holding the newest complete snapshot
 *     4    4 writer_pid    the aggregator's process
 *     8    8 published     snapshots published so far; 0: none yet
 *    16    8 interval_ns   the aggregator's interval
 *    24    8 started_ns    CLOCK_REALTIME when this aggregator started
 *
 * Buffer (one snapshot; struct wr_tel_snapshot):
 *   off                size
 *   0                  64   header (struct wr_tel_header)
 *   64                 64   log (struct wr_tel_log)
 *   128                C    channel (struct wr_tel_channel)
 *   128 + C            R    recorder metrics (struct wr_recorder_metrics, raw)
 *   128 + C + R        128 * max_producers   producers (producer_count used)
 *   buffer_size - 64   64   trailer: number again (struct wr_tel_trailer)
 *
 * Header (buffer offset 0):
 *     0    8 seq             seqlock word: odd while the writer fills this buffer
 *     8    8 number          this snapshot's number (1, 2, ...)
 *    16    8 taken_realtime_ns
 *    24    8 taken_mono_ns   CLOCK_MONOTONIC (system-wide: any process computes the age)
 *    32    8 interval_ns
 *    40    4 writer_pid
 *    44    4 flags           WR_TEL_F_*
 *    48    4 producer_count  producers[] entries written, <= max_producers
 *    52    4 producers_omitted  non-free producer entries that did not fit
 *    56    4 producers_max   the channel's
 *    60    4 ring_capacity   the channel's
 *
 * The raw recorder section is the aggregator's private metric structs
 * copied field by field: its size is in the identity so a reader from
 * another build refuses it instead of misreading it, and every metric in
 * it is a plain number (a wrong value renders wrong, never out of bounds).
 *
 * Protocol. Writer (one thread): buffer b = 1 - current; seq = odd
 * (relaxed), release fence, store the snapshot word by word (relaxed),
 * seq = even (release), then current = b (release), published = number.
 * Reader: current (acquire); seq s1 (acquire), s1 even; copy word by word
 * (relaxed); acquire fence; seq again == s1, else retry (the writer got
 * round to this buffer again). Readers touch only this region and the
 * channel's control page: never a ring, cursor or durable line.
 *
 * Validity (checked by every reader, the area is untrusted): the identity
 * equal to the constants above (else -WALREC_EFORMAT: not written by this
 * layout); current 0 or 1, producer_count <= max_producers, number > 0,
 * the trailer equal to the header's number (else -WALREC_ECORRUPT); a
 * buffer that stays odd or keeps changing gives -EAGAIN.
 */
#ifndef WR_TELEMETRY_LAYOUT_H
#define WR_TELEMETRY_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/compiler.h"
#include "recorder/channel.h"
#include "recorder/channel_layout.h"
#include "recorder/recorder_impl.h"

/* "WALRECTM" read as a little-endian u64. */
#define WR_TEL_MAGIC                                                           \
	((uint64_t)'W' | (uint64_t)'A' << 8 | (uint64_t)'L' << 16 |            \
	 (uint64_t)'R' << 24 | (uint64_t)'E' << 32 | (uint64_t)'C' << 40 |     \
	 (uint64_t)'T' << 48 | (uint64_t)'M' << 56)
#define WR_TEL_VERSION 1u
#define WR_TEL_AREA_SIZE WR_CHAN_TELEMETRY_SIZE
#define WR_TEL_BUFFER_OFF 4096u
#define WR_TEL_BUFFER_SIZE 30720u
#define WR_TEL_BUFFERS 2u
#define WR_TEL_MAX_PRODUCERS 128u

/* Header flags. */
enum {
	WR_TEL_F_RECORDING = 1u << 0, /* metrics are recorded (not --disable-telemetry) */
	WR_TEL_F_FINAL = 1u << 1,     /* the last snapshot of an aggregator that stopped */
};

struct wr_tel_identity {
	uint64_t magic;
	uint32_t version;
	uint32_t area_size;
	uint32_t buffer_off;
	uint32_t buffer_size;
	uint32_t buffer_count;
	uint32_t log_size;
	uint32_t channel_size;
	uint32_t recorder_size;
	uint32_t producer_size;
	uint32_t max_producers;
	uint8_t reserved[16];
};

struct wr_tel_publication {
	_Atomic uint32_t current;
	_Atomic uint32_t writer_pid;
	_Atomic uint64_t published;
	_Atomic uint64_t interval_ns;
	_Atomic uint64_t started_ns;
	uint8_t reserved[32];
};

struct wr_tel_area {
	struct wr_tel_identity identity;
	struct wr_tel_publication pub;
	uint8_t reserved[WR_TEL_BUFFER_OFF - 128];
	/* buffers follow: WR_TEL_BUFFERS * WR_TEL_BUFFER_SIZE bytes */
};

struct wr_tel_header {
	uint64_t seq;
	uint64_t number;
	uint64_t taken_realtime_ns;
	uint64_t taken_mono_ns;
	uint64_t interval_ns;
	uint32_t writer_pid;
	uint32_t flags;
	uint32_t producer_count;
	uint32_t producers_omitted;
	uint32_t producers_max;
	uint32_t ring_capacity;
};

/* The recorder's progress (walrec_recorder_meta_state) and the durable lag. */
struct wr_tel_log {
	uint64_t last_event_id;
	uint64_t sealed_event_id;
	uint64_t durable_event_id;
	uint32_t segment_index;
	uint32_t meta_segment_index;
	uint32_t meta_offset;
	int32_t latched_error;
	uint64_t meta_last_event_id;
	uint64_t durable_lag_events; /* last_event_id - durable_event_id */
	uint64_t durable_lag_ns;     /* wait of the oldest event not durable (lower bound) */
};

/* The channel: its control words, entry counts, and the drain thread's counters. */
struct wr_tel_channel {
	WR_ALIGNED_LINE uint32_t state;   /* WR_CHAN_STARTING..STOPPED */
	uint32_t recorder_pid;
	uint64_t recorder_epoch;
	uint64_t attach_count;            /* attaches since the channel was created */
	uint64_t created_ns;              /* CLOCK_REALTIME */
	uint32_t producers_active;        /* entries ACTIVE */
	uint32_t producers_attaching;
	uint32_t producers_dead;          /* found dead, not yet drained and freed */
	uint32_t producers_rejected;
	uint64_t full_waits;              /* sum over the listed producers */
	uint64_t recorder_wakes;          /* sum over the listed producers */
	struct wr_channel_metrics metrics;
};

/* One non-free producer entry; positions are the entry's monotonic counts. */
struct wr_tel_producer {
	uint32_t entry;          /* index in the producer table */
	uint32_t pid;
	uint32_t state;          /* WR_CHAN_ENTRY_*, as read (may be invalid) */
	uint32_t reject_reason;  /* WR_CHAN_REJECT_* */
	uint64_t tag;            /* attach number */
	uint64_t attach_ns;      /* CLOCK_REALTIME */
	uint64_t head;           /* published by the producer */
	uint64_t tail;           /* released by the recorder (sealed) */
	uint64_t durable_seq;    /* durable, as acknowledged */
	uint64_t attach_head;    /* head when this attachment began */
	uint64_t full_waits;
	uint64_t recorder_wakes;
	uint8_t reserved[48];
};

struct wr_tel_trailer {
	uint64_t number;
	uint8_t reserved[56];
};

/* One buffer. Only producers[0..producer_count) and the trailer are written. */
struct wr_tel_snapshot {
	WR_ALIGNED_LINE struct wr_tel_header header;
	WR_ALIGNED_LINE struct wr_tel_log log;
	WR_ALIGNED_LINE struct wr_tel_channel channel;
	WR_ALIGNED_LINE struct wr_recorder_metrics recorder;
	WR_ALIGNED_LINE struct wr_tel_producer producers[WR_TEL_MAX_PRODUCERS];
	uint8_t pad[WR_TEL_BUFFER_SIZE - 64 - 128 - sizeof(struct wr_tel_channel) -
		    sizeof(struct wr_recorder_metrics) -
		    WR_TEL_MAX_PRODUCERS * sizeof(struct wr_tel_producer)];
	WR_ALIGNED_LINE struct wr_tel_trailer trailer;
};

#define WR_TEL_CHANNEL_OFF 128u
#define WR_TEL_RECORDER_OFF (WR_TEL_CHANNEL_OFF + sizeof(struct wr_tel_channel))
#define WR_TEL_PRODUCERS_OFF (WR_TEL_RECORDER_OFF + sizeof(struct wr_recorder_metrics))
#define WR_TEL_TRAILER_OFF (WR_TEL_BUFFER_SIZE - 64u)

_Static_assert(WR_TEL_MAGIC == 0x4d544345524c4157ull, "magic spells WALRECTM");
_Static_assert(sizeof(struct wr_tel_identity) == 64, "identity line");
_Static_assert(offsetof(struct wr_tel_identity, version) == 8, "version");
_Static_assert(offsetof(struct wr_tel_identity, area_size) == 12, "area_size");
_Static_assert(offsetof(struct wr_tel_identity, buffer_off) == 16, "buffer_off");
_Static_assert(offsetof(struct wr_tel_identity, buffer_size) == 20, "buffer_size");
_Static_assert(offsetof(struct wr_tel_identity, buffer_count) == 24, "buffer_count");
_Static_assert(offsetof(struct wr_tel_identity, log_size) == 28, "log_size");
_Static_assert(offsetof(struct wr_tel_identity, channel_size) == 32, "channel_size");
_Static_assert(offsetof(struct wr_tel_identity, recorder_size) == 36, "recorder_size");
_Static_assert(offsetof(struct wr_tel_identity, producer_size) == 40, "producer_size");
_Static_assert(offsetof(struct wr_tel_identity, max_producers) == 44, "max_producers");
_Static_assert(sizeof(struct wr_tel_publication) == 64, "publication line");
_Static_assert(offsetof(struct wr_tel_publication, writer_pid) == 4, "writer_pid");
_Static_assert(offsetof(struct wr_tel_publication, published) == 8, "published");
_Static_assert(offsetof(struct wr_tel_publication, interval_ns) == 16, "interval_ns");
_Static_assert(offsetof(struct wr_tel_publication, started_ns) == 24, "started_ns");
_Static_assert(sizeof(struct wr_tel_area) == WR_TEL_BUFFER_OFF, "area header is one page");
_Static_assert(WR_TEL_BUFFER_OFF + WR_TEL_BUFFERS * WR_TEL_BUFFER_SIZE == WR_TEL_AREA_SIZE,
	       "two buffers fill the telemetry region");

_Static_assert(sizeof(struct wr_tel_header) == 64, "header line");
_Static_assert(offsetof(struct wr_tel_header, number) == 8, "number");
_Static_assert(offsetof(struct wr_tel_header, taken_realtime_ns) == 16, "taken_realtime_ns");
_Static_assert(offsetof(struct wr_tel_header, taken_mono_ns) == 24, "taken_mono_ns");
_Static_assert(offsetof(struct wr_tel_header, interval_ns) == 32, "interval_ns");
_Static_assert(offsetof(struct wr_tel_header, writer_pid) == 40, "writer_pid");
_Static_assert(offsetof(struct wr_tel_header, flags) == 44, "flags");
_Static_assert(offsetof(struct wr_tel_header, producer_count) == 48, "producer_count");
_Static_assert(offsetof(struct wr_tel_header, producers_omitted) == 52, "producers_omitted");
_Static_assert(offsetof(struct wr_tel_header, producers_max) == 56, "producers_max");
_Static_assert(offsetof(struct wr_tel_header, ring_capacity) == 60, "ring_capacity");

_Static_assert(sizeof(struct wr_tel_log) == 64, "log line");
_Static_assert(offsetof(struct wr_tel_log, sealed_event_id) == 8, "sealed_event_id");
_Static_assert(offsetof(struct wr_tel_log, durable_event_id) == 16, "durable_event_id");
_Static_assert(offsetof(struct wr_tel_log, segment_index) == 24, "segment_index");
_Static_assert(offsetof(struct wr_tel_log, meta_segment_index) == 28, "meta_segment_index");
_Static_assert(offsetof(struct wr_tel_log, meta_offset) == 32, "meta_offset");
_Static_assert(offsetof(struct wr_tel_log, latched_error) == 36, "latched_error");
_Static_assert(offsetof(struct wr_tel_log, meta_last_event_id) == 40, "meta_last_event_id");
_Static_assert(offsetof(struct wr_tel_log, durable_lag_events) == 48, "durable_lag_events");
_Static_assert(offsetof(struct wr_tel_log, durable_lag_ns) == 56, "durable_lag_ns");

_Static_assert(offsetof(struct wr_tel_channel, recorder_pid) == 4, "recorder_pid");
_Static_assert(offsetof(struct wr_tel_channel, recorder_epoch) == 8, "recorder_epoch");
_Static_assert(offsetof(struct wr_tel_channel, attach_count) == 16, "attach_count");
_Static_assert(offsetof(struct wr_tel_channel, created_ns) == 24, "created_ns");
_Static_assert(offsetof(struct wr_tel_channel, producers_active) == 32, "producers_active");
_Static_assert(offsetof(struct wr_tel_channel, producers_attaching) == 36, "producers_attaching");
_Static_assert(offsetof(struct wr_tel_channel, producers_dead) == 40, "producers_dead");
_Static_assert(offsetof(struct wr_tel_channel, producers_rejected) == 44, "producers_rejected");
_Static_assert(offsetof(struct wr_tel_channel, full_waits) == 48, "full_waits");
_Static_assert(offsetof(struct wr_tel_channel, recorder_wakes) == 56, "recorder_wakes");
_Static_assert(offsetof(struct wr_tel_channel, metrics) == 64, "channel metrics");
_Static_assert(sizeof(struct wr_tel_channel) % 64 == 0, "channel section is whole lines");
_Static_assert(sizeof(struct wr_recorder_metrics) % 64 == 0, "recorder section is whole lines");

_Static_assert(sizeof(struct wr_tel_producer) == 128, "producer entry is two lines");
_Static_assert(offsetof(struct wr_tel_producer, pid) == 4, "pid");
_Static_assert(offsetof(struct wr_tel_producer, state) == 8, "state");
_Static_assert(offsetof(struct wr_tel_producer, reject_reason) == 12, "reject_reason");
_Static_assert(offsetof(struct wr_tel_producer, tag) == 16, "tag");
_Static_assert(offsetof(struct wr_tel_producer, attach_ns) == 24, "attach_ns");
_Static_assert(offsetof(struct wr_tel_producer, head) == 32, "head");
_Static_assert(offsetof(struct wr_tel_producer, tail) == 40, "tail");
_Static_assert(offsetof(struct wr_tel_producer, durable_seq) == 48, "durable_seq");
_Static_assert(offsetof(struct wr_tel_producer, attach_head) == 56, "attach_head");
_Static_assert(offsetof(struct wr_tel_producer, full_waits) == 64, "full_waits");
_Static_assert(offsetof(struct wr_tel_producer, recorder_wakes) == 72, "recorder_wakes");

_Static_assert(offsetof(struct wr_tel_snapshot, log) == 64, "log section");
_Static_assert(offsetof(struct wr_tel_snapshot, channel) == WR_TEL_CHANNEL_OFF, "channel section");
_Static_assert(offsetof(struct wr_tel_snapshot, recorder) == WR_TEL_RECORDER_OFF, "recorder section");
_Static_assert(offsetof(struct wr_tel_snapshot, producers) == WR_TEL_PRODUCERS_OFF, "producers");
_Static_assert(offsetof(struct wr_tel_snapshot, trailer) == WR_TEL_TRAILER_OFF, "trailer");
_Static_assert(sizeof(struct wr_tel_snapshot) == WR_TEL_BUFFER_SIZE, "a snapshot fills a buffer");
_Static_assert(WR_TEL_BUFFER_SIZE % 64 == 0 && WR_TEL_BUFFER_OFF % 64 == 0, "buffers are line aligned");

#endif
