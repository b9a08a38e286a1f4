/* SPDX-License-Identifier: MIT */
/* Producer try_append cost with a recorder process draining the channel. */
#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <walrec/producer.h>

#include "lib/clock.h"
#include "recorder/channel.h"

/*
 * Usage: bench_channel_append [EVENTS [RUNS [RING_CAPACITY [after]]]]
 * Each run: this process creates a channel and drains it (take, copy the
 * 64 bytes, assign an id, release after every poll batch); a forked
 * producer calls walrec_producer_try_append EVENTS times in a tight loop
 * (a -EAGAIN is retried and counted). Prints ns per accepted append of
 * each run and the median. With "after", the drain starts only once the
 * producer is done (EVENTS <= RING_CAPACITY): the append cost alone,
 * without a concurrent reader pulling the lines away.
 */

struct drain {
	uint64_t next_id;
	uint8_t copy[64];
};

static int
drain_take(void *arg, uint32_t producer, const walrec_event_t *slot, uint64_t id)
{
	struct drain *d = arg;
	(void)producer;
	(void)id;
	memcpy(d->copy, slot, sizeof d->copy);
	return 0;
}

static double
one_run(uint64_t events, int run, uint32_t capacity, bool after)
{
	char name[64];
	snprintf(name, sizeof name, "bench%d-%d", (int)getpid(), run);
	struct wr_channel_options o;
	wr_channel_options_default(&o);
	o.producers_max = 2;
	o.ring_capacity = capacity;
	struct wr_channel *ch;
	if (wr_channel_create(&ch, name, &o) != 0)
		exit(99);
	wr_channel_set_state(ch, WR_CHAN_RUNNING);
	int pipefd[2];
	if (pipe(pipefd) != 0)
		exit(99);
	pid_t pid = fork();
	if (pid == 0) {
		walrec_producer_t *p;
		if (walrec_producer_attach(&p, name) != 0)
			_exit(1);
		uint64_t payload[6] = { 0 };
		uint64_t eagain = 0;
		uint64_t t0 = wr_clock_now_ns();
		for (uint64_t k = 0; k < events; k++) {
			payload[0] = k;
			while (walrec_producer_try_append(p, payload) == -EAGAIN)
				eagain++;
		}
		uint64_t t1 = wr_clock_now_ns();
		double r[2] = { (double)(t1 - t0) / (double)events, (double)eagain };
		if (write(pipefd[1], r, sizeof r) != (ssize_t)sizeof r)
			_exit(1);
		walrec_producer_detach(p);
		_exit(0);
	}
	close(pipefd[1]);
	double r[2] = { -1, 0 };
	if (after && read(pipefd[0], r, sizeof r) != (ssize_t)sizeof r)
		r[0] = -1;
	struct drain d = { 0 };
	uint32_t rounds = 0;
	while (d.next_id < events) {
		ssize_t n = wr_channel_poll(ch, 4096, &d.next_id, drain_take, &d);
		if (n > 0) {
			wr_channel_release_sealed(ch, d.next_id);
			rounds = 0;
		} else {
			wr_channel_idle(ch, &rounds);
		}
	}
	if (!after && read(pipefd[0], r, sizeof r) != (ssize_t)sizeof r)
		r[0] = -1;
	close(pipefd[0]);
	waitpid(pid, NULL, 0);
	wr_channel_set_state(ch, WR_CHAN_STOPPED);
	wr_channel_close(ch);
	wr_channel_unlink(name);
	printf("run %d: %.1f ns/append (%llu events, %.0f EAGAIN retries)\n", run, r[0],
	       (unsigned long long)events, r[1]);
	return r[0];
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
	uint64_t events = argc > 1 ? strtoull(argv[1], NULL, 10) : 5000000;
	int runs = argc > 2 ? atoi(argv[2]) : 3;
	uint32_t capacity = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 65536;
	bool after = argc > 4 && strcmp(argv[4], "after") == 0;
	if (after && events > capacity)
		return 2;
	if (runs < 1 || runs > 99 || events == 0)
		return 2;
	double v[99];
	for (int i = 0; i < runs; i++)
		v[i] = one_run(events, i, capacity, after);
	qsort(v, (size_t)runs, sizeof v[0], cmp_double);
	printf("median: %.1f ns/append\n", v[runs / 2]);
	return 0;
}
