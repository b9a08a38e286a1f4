/* SPDX-License-Identifier: MIT */
/* Minimal embedded recorder: append 1000 events to the WAL directory argv[1], wait until durable. */
#include <stdio.h>
#include <string.h>
#include <walrec.h>

int
main(int argc, char **argv)
{
	walrec_recorder_config_t cfg;
	walrec_recorder_config_init(&cfg);    /* the documented defaults, but */
	cfg.num_blocks = 16;                  /* small segments: 4096 events each */
	walrec_recorder_t *rec;
	if (argc != 2 || walrec_recorder_open(&rec, argv[1], &cfg) != 0)
		return 1;
	walrec_event_t ev = { 0 };            /* 48 payload bytes are yours */
	uint64_t id = 0;
	int rc = 0;
	for (uint64_t i = 1; i <= 1000 && rc == 0; i++) {
		memcpy(ev.payload, &i, sizeof i);
		rc = walrec_recorder_append(rec, &ev, &id); /* no system call, no lock */
	}
	if (rc == 0)
		rc = walrec_recorder_wait_durable(rec, id, 1000000000); /* on stable storage */
	printf("event %llu: %s\n", (unsigned long long)id, rc == 0 ? "durable" : walrec_strerror(rc));
	walrec_recorder_destroy(rec);         /* seals, syncs, writes wal.meta, frees */
	return rc != 0;
}
