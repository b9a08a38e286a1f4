/* SPDX-License-Identifier: MIT */
/* walrec: the event type, error codes and library-wide settings. */
#ifndef WALREC_COMMON_H
#define WALREC_COMMON_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WALREC_VERSION_STRING "0.1.0"

/* Size of one event, in memory, in a ring slot and on disk. */
#define WALREC_EVENT_SIZE 64
/* Bytes of an event that belong to the user. */
#define WALREC_PAYLOAD_SIZE 48

/*
 * One event. event_id is assigned by the recorder (strictly increasing,
 * never 0); timestamp_ns is the recorder's CLOCK_REALTIME at append unless
 * the appender supplies one. The layout is the on-disk slot layout.
 */
typedef struct walrec_event {
	uint64_t event_id;
	uint64_t timestamp_ns;
	uint8_t payload[WALREC_PAYLOAD_SIZE];
} walrec_event_t;

/*
 * Error codes. Every function returns 0 (or a count) on success and a
 * negative code on failure: either -errno (ENOSPC, EIO, EINVAL, EAGAIN...)
 * or one of these walrec-specific codes, also negated.
 */
enum {
	WALREC_ECORRUPT = 1000, /* data failed an integrity check */
	WALREC_EFORMAT,         /* not a walrec v1 file (magic, version, size) */
	WALREC_EORDER,          /* event id not strictly increasing */
	WALREC_ELATCHED,        /* an earlier write or sync failed; stopped */
	WALREC_ECLOSED,         /* the recorder or channel is shut down */
	WALREC_ECODE_END
};

/* Human text for any code this library returns (negative or positive). */
const char *walrec_strerror(int code);

/* Log severities passed to a log handler. */
enum walrec_log_level {
	WALREC_LOG_ERROR = 0,
	WALREC_LOG_WARN = 1,
	WALREC_LOG_INFO = 2,
	WALREC_LOG_DEBUG = 3
};

typedef void (*walrec_log_fn)(void *arg, int level, const char *msg);

/*
 * Route the library's log lines (one line each, no newline) to fn; NULL
 * restores the default (stderr, levels up to WARN, or up to the level in
 * the WALREC_LOG_LEVEL environment variable). Call before opening anything.
 */
void walrec_log_set_handler(walrec_log_fn fn, void *arg, int max_level);

#ifdef __cplusplus
}
#endif

#endif
