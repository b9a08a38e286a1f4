/* SPDX-License-Identifier: MIT */
/* walrec produce: attach to a channel as a producer and append numbered test events. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <walrec/producer.h>

#include "lib/clock.h"
#include "tools/cmd.h"

#define PRODUCE_DURABLE_TIMEOUT_NS 30000000000ull /* 30 s */

static void
produce_usage(FILE *out)
{
	fprintf(out,
		"usage: walrec produce NAME --events N [--rate R] [--durable-every K] [--json]\n"
		"\n"
		"Attach to the channel /walrec.NAME as a producer and append N events. Payload:\n"
		"bytes 0..7 producer tag (u64, the pid), 8..15 sequence number 1..N (u64), rest\n"
		"zero ('walrec verify DIR --sequences' checks them).\n"
		"\n"
		"  --events N          events to append (required, >= 1)\n"
		"  --rate R            at most R events per second (default: as fast as possible)\n"
		"  --durable-every K   wait until durable after every K events (and at the end)\n"
		"  --json              print the result as one JSON object\n"
		"\n"
		"exit: 0 done, 1 the channel closed or an append failed, 2 usage error or no channel\n");
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int
wr_cmd_produce(int argc, char **argv)
{
	const char *name = NULL;
	uint64_t events = 0, rate = 0, every = 0;
	bool json = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t *num = NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			produce_usage(stdout);
			return WR_EXIT_OK;
		} else if (strcmp(a, "--json") == 0) {
			json = true;
			continue;
		} else if (strcmp(a, "--events") == 0) {
			num = &events;
		} else if (strcmp(a, "--rate") == 0) {
			num = &rate;
		} else if (strcmp(a, "--durable-every") == 0) {
			num = &every;
		} else if (a[0] == '-') {
			wr_tool_error("produce", "unknown option '%s' (see 'walrec produce --help')", a);
			return WR_EXIT_USAGE;
		} else if (name) {
			wr_tool_error("produce", "one NAME only ('%s' and '%s')", name, a);
			return WR_EXIT_USAGE;
		} else {
			name = a;
			continue;
		}
		if (!v || !wr_tool_parse_u64(v, num)) {
			wr_tool_error("produce", "%s needs a number, got '%s'", a, v ? v : "");
			return WR_EXIT_USAGE;
		}
		i++;
	}
	if (!name || events == 0) {
		wr_tool_error("produce", "NAME and --events N (N >= 1) are required "
					 "(see 'walrec produce --help')");
		return WR_EXIT_USAGE;
	}
	walrec_producer_t *p = NULL;
	int rc = walrec_producer_attach(&p, name);
	if (rc < 0) {
		wr_tool_error("produce", "cannot attach to channel %s: %s", name,
			      rc == -EBUSY ? "every producer entry is taken" : walrec_strerror(rc));
		return WR_EXIT_USAGE;
	}
	size_t nlat = every ? (size_t)(events / every + 1) : 0;
	uint64_t *lat = nlat ? wr_xmalloc(nlat * sizeof *lat) : NULL;
	size_t lat_n = 0;
	unsigned char payload[48];
	memset(payload, 0, sizeof payload);
	uint64_t tag = (uint64_t)getpid();
	memcpy(payload, &tag, 8);

	int exit_code = WR_EXIT_OK;
	uint64_t t0 = wr_clock_now_ns();
	uint64_t done = 0;
	int64_t last_seq = 0;
	for (uint64_t n = 1; n <= events; n++) {
		if (rate) {
			uint64_t due = t0 + (n - 1) * 1000000000ull / rate;
			uint64_t now = wr_clock_now_ns();
			if (due > now) {
				struct timespec ts = { (time_t)((due - now) / 1000000000ull),
						       (long)((due - now) % 1000000000ull) };
				nanosleep(&ts, NULL);
			}
		}
		memcpy(payload + 8, &n, 8);
		int64_t seq = walrec_producer_append(p, payload);
		if (seq < 0) {
			wr_tool_error("produce", "append %" PRIu64 ": %s", n,
				      walrec_strerror((int)seq));
			exit_code = WR_EXIT_FAIL;
			break;
		}
		last_seq = seq;
		done = n;
		if (every && (n % every == 0 || n == events)) {
			uint64_t w0 = wr_clock_now_ns();
			rc = walrec_producer_wait_durable(p, (uint64_t)seq, PRODUCE_DURABLE_TIMEOUT_NS);
			if (rc < 0) {
				wr_tool_error("produce", "waiting for event %" PRIu64 " to be durable: %s",
					      n, walrec_strerror(rc));
				exit_code = WR_EXIT_FAIL;
				break;
			}
			if (lat_n < nlat)
				lat[lat_n++] = wr_clock_now_ns() - w0;
		}
	}
	uint64_t el = wr_clock_now_ns() - t0;
	walrec_producer_detach(p);
	(void)last_seq;

	double secs = (double)el / 1e9;
	double eps = secs > 0 ? (double)done / secs : 0;
	double p50 = 0, p99 = 0;
	if (lat_n) {
		qsort(lat, lat_n, sizeof *lat, cmp_u64);
		p50 = (double)lat[(lat_n - 1) / 2] / 1e3;
		p99 = (double)lat[(lat_n - 1) * 99 / 100] / 1e3;
	}
	if (json) {
		printf("{\"channel\":\"%s\",\"tag\":%" PRIu64 ",\"events\":%" PRIu64
		       ",\"seconds\":%.6f,\"events_per_s\":%.0f",
		       name, tag, done, secs, eps);
		if (lat_n)
			printf(",\"durable_waits\":%zu,\"ack_p50_us\":%.1f,\"ack_p99_us\":%.1f", lat_n,
			       p50, p99);
		printf(",\"ok\":%s}\n", exit_code == WR_EXIT_OK ? "true" : "false");
	} else {
		printf("%s: tag %" PRIu64 ", %" PRIu64 " events in %.3f s, %.0f events/s", name, tag,
		       done, secs, eps);
		if (lat_n)
			printf(", durable ack p50 %.1f us, p99 %.1f us (%zu waits)", p50, p99, lat_n);
		printf("\n");
	}
	free(lat);
	if (fflush(stdout) != 0 && exit_code == WR_EXIT_OK)
		exit_code = WR_EXIT_USAGE;
	return exit_code;
}
