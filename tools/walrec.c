/* SPDX-License-Identifier: MIT */
/* walrec: the command-line program (git-style subcommands). */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include <walrec.h>

#include "tools/cmd.h"

const char *wr_prog = "walrec";

static const struct wr_cmd commands[] = {
	{ "bench", "run a benchmark scenario", wr_cmd_bench },
	{ "verify", "check every segment of a WAL directory or one segment file", wr_cmd_verify },
	{ "dump", "print events as text or JSON lines", wr_cmd_dump },
	{ "demo", "run a recorder and two producers for a few seconds, then verify", wr_cmd_demo },
	{ "record", "drain the channel /walrec.NAME into a WAL directory", wr_cmd_record },
	{ "produce", "append numbered test events to a channel", wr_cmd_produce },
	{ "stat", "live telemetry of a recorder, or what a WAL directory holds", wr_cmd_stat },
};

static void
usage(FILE *out)
{
	fprintf(out, "usage: walrec [--version] [--help] <command> [<args>]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n'walrec <command> --help' describes a command.\n"
		     "exit codes: 0 success, 1 check failed (corruption, target missed),\n"
		     "            2 usage or I/O error\n");
}

int
main(int argc, char **argv)
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
	if (strcmp(argv[1], "--version") == 0) {
		printf("walrec %s\n", WALREC_VERSION_STRING);
		return WR_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "walrec: '%s' is not a walrec command (see 'walrec --help')\n", argv[1]);
	return WR_EXIT_USAGE;
}
