/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the shared-memory channel as an untrusted mapping. The
 * input becomes a channel object: its first bytes are the control page,
 * table, cursors, durable, meta and wake regions (as many as the input
 * has), and any bytes after the wake region go to the start of the rings
 * and on into the take logs that follow them.
 * When the control page's limits are valid the object has the size their
 * layout needs (so validation can pass), else 4096 bytes. Then everyone who
 * maps a channel goes over it: a producer (attach, try_append,
 * wait_durable, detach), an observer (map and read the meta mirror) and a
 * recorder (open, resume, poll, release, publish, reclaim, stop). ASan
 * finds any access outside the mapping; nothing may hang or crash.
 */
#include <config.h>

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <walrec/producer.h>

#include "recorder/channel.h"
#include "tests/fuzz/fuzz.h"

#define OBJ_MAX (4u << 20)

struct take {
	uint64_t expect; /* the id the next take must be given */
	uint64_t taken;
};

static int
take(void *arg, uint32_t producer, const walrec_event_t *slot, uint64_t event_id)
{
	(void)producer;
	struct take *t = arg;
	walrec_event_t ev;
	memcpy(&ev, slot, sizeof ev);
	/* Ids are consecutive from the caller's last one, whatever the mapping holds. */
	WR_FUZZ_ASSERT(event_id == t->expect);
	t->expect++;
	t->taken++;
	return 0;
}

/* Stop the channel as a recorder would, so a producer's detach does not wait. */
static void
stop_channel(const char *name)
{
	struct wr_chan_map m;
	int fd;
	if (wr_chan_map_open(&m, name, &fd, false) != 0)
		return;
	atomic_store_explicit(&m.control->state, WR_CHAN_STOPPED, memory_order_release);
	wr_chan_map_close(&m);
	close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wr_fuzz_quiet();
	char name[64], path[96];
	snprintf(name, sizeof name, "fuzz.%d", (int)getpid());
	snprintf(path, sizeof path, "%s%s", WR_CHAN_PREFIX, name);
	shm_unlink(path);

	size_t obj = WR_CHAN_CONTROL_SIZE, split = size;
	struct wr_chan_layout l;
	memset(&l, 0, sizeof l);
	if (size >= 32) {
		uint32_t p, c;
		memcpy(&p, data + 24, 4);
		memcpy(&c, data + 28, 4);
		if (wr_chan_limits_ok(p, c)) {
			wr_chan_layout_compute(&l, p, c);
			if (l.total_size <= OBJ_MAX) {
				obj = (size_t)l.total_size;
				split = (size_t)(l.regions[WR_CHAN_R_WAKE].off + WR_CHAN_WAKE_SIZE);
			}
		}
	}
	uint8_t *buf = calloc(1, obj);
	if (!buf)
		return 0;
	memcpy(buf, data, size < split ? (size < obj ? size : obj) : (split < obj ? split : obj));
	if (size > split && obj > WR_CHAN_CONTROL_SIZE) {
		size_t room = obj - (size_t)l.regions[WR_CHAN_R_RINGS].off, n = size - split;
		memcpy(buf + l.regions[WR_CHAN_R_RINGS].off, data + split, n < room ? n : room);
	}
	int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(buf);
		return 0;
	}
	if (ftruncate(fd, (off_t)obj) != 0 || pwrite(fd, buf, obj, 0) != (ssize_t)obj) {
		close(fd);
		shm_unlink(path);
		free(buf);
		return 0;
	}
	close(fd);
	free(buf);

	/* A producer. */
	walrec_producer_t *p = NULL;
	if (walrec_producer_attach(&p, name) == 0) {
		uint8_t payload[WALREC_PAYLOAD_SIZE] = { 1, 2, 3 };
		for (int i = 0; i < 3; i++) {
			int64_t seq = walrec_producer_try_append(p, payload);
			if (seq > 0)
				walrec_producer_wait_durable(p, (uint64_t)seq, 0);
		}
		walrec_producer_last_sequence(p);
		stop_channel(name);
		walrec_producer_detach(p);
	}

	/* An observer. */
	struct wr_chan_map m;
	if (wr_chan_map_open(&m, name, &fd, false) == 0) {
		struct wr_channel_meta cm;
		wr_channel_read_meta(&m, &cm);
		wr_chan_map_close(&m);
		close(fd);
	}

	/* A recorder resuming it. */
	struct wr_channel *ch = NULL;
	if (wr_channel_open(&ch, name, NULL) == 0) {
		uint64_t sealed = 0;
		if (size >= 8)
			memcpy(&sealed, data + size - 8, 8);
		sealed %= 1u << 20;
		if (wr_channel_resume(ch, sealed) == 0) {
			uint64_t last = sealed;
			struct take t = { .expect = sealed + 1 };
			for (int i = 0; i < 4; i++) {
				ssize_t n = wr_channel_poll(ch, 64, &last, take, &t);
				if (n < 0)
					break;
				WR_FUZZ_ASSERT(last == t.expect - 1);
				wr_channel_durable_wanted(ch);
				wr_channel_release_sealed(ch, last);
				wr_channel_publish_durable(ch, last);
				struct wr_channel_meta pm = { .segment_index = 1, .offset = 64,
							      .last_sealed_id = last,
							      .last_durable_id = last,
							      .sealed_segment_index = 1,
							      .sealed_blocks = 1 };
				wr_channel_publish_meta(ch, &pm);
			}
			WR_FUZZ_ASSERT(t.taken <= 4 * 64);
			wr_channel_reclaim(ch);
			wr_channel_set_state(ch, WR_CHAN_STOPPED);
		}
		wr_channel_close(ch);
	}
	shm_unlink(path);
	return 0;
}
