/* SPDX-License-Identifier: MIT */
/* mksegment: write a test segment file (for the shell tests). */
#include <config.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/segfile.h"

static void
usage(void)
{
	fprintf(stderr, "usage: mksegment PATH [--index N] [--num-blocks N] [--blocks N]\n"
			"       [--events-per-block N] [--last N] [--first-id ID] [--step N]\n"
			"       [--active] [--torn N] [--lz4 COLD_PATH]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "index", required_argument, NULL, 'i' },
		{ "num-blocks", required_argument, NULL, 'n' },
		{ "blocks", required_argument, NULL, 'b' },
		{ "events-per-block", required_argument, NULL, 'e' },
		{ "last", required_argument, NULL, 'l' },
		{ "first-id", required_argument, NULL, 'f' },
		{ "step", required_argument, NULL, 's' },
		{ "active", no_argument, NULL, 'a' },
		{ "torn", required_argument, NULL, 't' },
		{ "lz4", required_argument, NULL, 'z' },
		{ NULL, 0, NULL, 0 },
	};
	struct wr_segfile_spec s = { .blocks = 1 };
	const char *cold = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		unsigned long long v = optarg ? strtoull(optarg, NULL, 10) : 0;
		switch (c) {
		case 'i': s.segment_index = (uint32_t)v; break;
		case 'n': s.num_blocks = (uint32_t)v; break;
		case 'b': s.blocks = (uint32_t)v; break;
		case 'e': s.events_per_block = (uint32_t)v; break;
		case 'l': s.last_block_events = (uint32_t)v; break;
		case 'f': s.first_id = v; break;
		case 's': s.id_step = v; break;
		case 'a': s.header = WR_SEGFILE_ACTIVE; break;
		case 't': s.torn_events = (uint32_t)v; break;
		case 'z': cold = optarg; break;
		default: usage();
		}
	}
	if (optind + 1 != argc)
		usage();
	struct wr_segfile_info info;
	int rc = wr_segfile_write(argv[optind], &s, &info);
	if (rc < 0) {
		fprintf(stderr, "mksegment: %s: %s\n", argv[optind], strerror(-rc));
		return 1;
	}
	if (cold && wr_segfile_compress(argv[optind], cold) != 0) {
		fprintf(stderr, "mksegment: compressing to %s failed\n", cold);
		return 1;
	}
	printf("%llu %llu %llu\n", (unsigned long long)info.events,
	       (unsigned long long)info.first_id, (unsigned long long)info.last_id);
	return 0;
}
