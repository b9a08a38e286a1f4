/* SPDX-License-Identifier: MIT */
/* 'walrec bench <scenario>': dispatch to the benchmark scenarios in bench/. */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "bench/harness.h"
#include "tools/cmd.h"

/* One line per scenario. */
static const struct wr_bench_scenario scenarios[] = {
	{ "append", "SegmentWriter append: throughput and per-append latency", wr_bench_append },
	{ "recorder", "embedded recorder append with rotations: throughput and latency", wr_bench_recorder },
	{ "durable", "durable acknowledgement for K = 1, 16, 256 vs fdatasync", wr_bench_durable },
	{ "ipc", "producer processes through the channel to the log", wr_bench_ipc },
	{ "replay", "reader: hot and cold replay, seek, segment crossings", wr_bench_replay },
	{ "telemetry", "producer throughput with and without a 1 kHz snapshot reader", wr_bench_telemetry },
	{ "idle", "CPU used by an idle recorder, embedded and 'walrec record'", wr_bench_idle },
	{ "peers", "walrec beside write()/fdatasync, SQLite, LevelDB, RocksDB", wr_bench_peers },
};

static void
usage(FILE *out)
{
	fprintf(out, "usage: walrec bench <scenario> [<options>] [--json]\n\nscenarios:\n");
	for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
		fprintf(out, "  %-10s %s\n", scenarios[i].name, scenarios[i].summary);
	fprintf(out, "\n'walrec bench <scenario> --help' lists its options. Output is a\n"
		     "human table, or with --json exactly one JSON object on stdout.\n");
}

int
wr_cmd_bench(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return WR_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return WR_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
		if (strcmp(argv[1], scenarios[i].name) == 0)
			return scenarios[i].run(argc - 1, argv + 1);
	wr_tool_error("bench", "'%s' is not a scenario (see 'walrec bench --help')", argv[1]);
	return WR_EXIT_USAGE;
}
