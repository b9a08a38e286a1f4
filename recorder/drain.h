/* SPDX-License-Identifier: MIT */
/*
 * The drain loop: connects the shared-memory channel /walrec.<name> to an
 * embedded recorder. It runs on the recorder's owner thread, takes events
 * from the producer rings fairly, stores each assigned id into its slot
 * before appending the event, releases sealed slots and publishes durable
 * positions to producers (protocol: docs/channel.md).
 */
#ifndef WR_DRAIN_H
#define WR_DRAIN_H

#include <signal.h>
#include <stdint.h>

#include <walrec/recorder.h>

#include "recorder/channel.h"

#define WR_DRAIN_NO_TELEMETRY UINT64_MAX

struct wr_drain_options {
	struct wr_channel_options channel; /* used when the channel is created */
	uint32_t batch;                    /* slots per poll; default 4096 */
	/*
	 * Never yield or park when idle: spin, for the lowest latency from a
	 * producer's append to the log, at the price of a CPU kept busy.
	 */
	bool busy_poll;
	/* Telemetry snapshots into the channel (recorder/telemetry.h): every
	 * telemetry_interval_ns (0: 1 s; 10 ms..1 h), or none with
	 * WR_DRAIN_NO_TELEMETRY. */
	uint64_t telemetry_interval_ns;
	/* Called once the channel is running (e.g. to announce readiness); may be NULL. */
	void (*on_running)(void *arg, const struct wr_channel *ch, uint64_t resumed_from);
	/*
	 * Called after each event is appended, with its ring slot (shared
	 * memory, still the producer's content) and the id it got
	 * (measurements); may be NULL.
	 */
	void (*on_appended)(void *arg, const walrec_event_t *slot, uint64_t id);
	void *arg;
};

struct wr_drain_stats {
	uint64_t events;       /* events appended to the log */
	uint64_t resumed_from; /* last sealed id the channel was resumed with (0: created) */
	int created;           /* 1 when this run created the channel */
};

void wr_drain_options_default(struct wr_drain_options *o);

/*
 * Create (or reopen and resume) /walrec.<name> and drain it into rec until
 * *stop becomes non-zero (set it from a signal handler, or from another
 * thread with __atomic_store_n) or the recorder fails; then stop the channel:
 * refuse new appends, drain every ring, seal and sync, publish the last
 * durable position and mark it stopped. *stop is set by a signal handler, or
 * by another thread with an atomic store (__atomic_store_n). Owner thread of rec only; rec stays
 * open (the caller closes it). Returns 0; -EBUSY (another recorder owns the
 * channel); -EINVAL (bad name or options); -WALREC_EFORMAT (not a channel of
 * this layout); the recorder's error (-ENOSPC persisting, latched -EIO...);
 * or -errno.
 */
int wr_drain_run(walrec_recorder_t *rec, const char *name, const struct wr_drain_options *o,
		 volatile sig_atomic_t *stop, struct wr_drain_stats *stats);

#endif
