/* SPDX-License-Identifier: MIT */
/* Minimal producer: append 1000 events to the channel argv[1] ('walrec record DIR --channel NAME'). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <walrec.h>

int
main(int argc, char **argv)
{
	walrec_producer_t *p;
	if (argc != 2 || walrec_producer_attach(&p, argv[1]) != 0) /* /dev/shm/walrec.NAME */
		return 1;
	uint64_t payload[WALREC_PAYLOAD_SIZE / 8] = { (uint64_t)getpid() }; /* tag, sequence */
	int64_t seq = 0;
	for (uint64_t i = 1; i <= 1000 && seq >= 0; i++) {
		payload[1] = i;                                 /* as 'walrec produce' does */
		seq = walrec_producer_append(p, payload);       /* > 0: accepted */
	}
	int rc = seq < 0 ? (int)seq : walrec_producer_wait_durable(p, (uint64_t)seq, 1000000000);
	printf("sequence %lld: %s\n", (long long)seq, rc == 0 ? "durable" : walrec_strerror(rc));
	walrec_producer_detach(p);
	return rc != 0;
}
