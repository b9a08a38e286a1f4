/* SPDX-License-Identifier: MIT */
/* The walrec program's subcommands and the helpers they share. */
#ifndef WR_TOOLS_CMD_H
#define WR_TOOLS_CMD_H

#include <stdbool.h>
#include <stdint.h>

/* Exit codes of every subcommand (documented in walrec.1). */
enum {
	WR_EXIT_OK = 0,
	WR_EXIT_FAIL = 1,  /* the check failed: corruption found, target missed */
	WR_EXIT_USAGE = 2, /* bad flags or values, or an I/O error */
};

struct wr_cmd {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
};

extern const char *wr_prog;

/* Print "walrec <cmd>: <message>" to stderr. */
void wr_tool_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse a non-negative integer with optional k/M/G suffix (powers of 1000). */
bool wr_tool_parse_u64(const char *s, uint64_t *out);

/* Parse a duration like "10ms", "1s", "250us", "5" (seconds). */
bool wr_tool_parse_duration_ns(const char *s, uint64_t *out);

/* Parse a CPU list like "0", "1,3" or "0-2,5" (CPUs 0..63) into a bit mask. */
bool wr_tool_parse_cpu_list(const char *s, uint64_t *mask);

/*
 * Run handler on SIGINT and SIGTERM, without SA_RESTART: a sleep, futex
 * wait or waitpid in progress returns at once (EINTR) and the caller sees
 * its stop flag.
 */
void wr_tool_catch_stop(void (*handler)(int));

/* Abort the program on allocation failure (tools only, never the library). */
void *wr_xmalloc(size_t n);

int wr_cmd_bench(int argc, char **argv);
int wr_cmd_verify(int argc, char **argv);
int wr_cmd_dump(int argc, char **argv);
int wr_cmd_demo(int argc, char **argv);
int wr_cmd_record(int argc, char **argv);
int wr_cmd_produce(int argc, char **argv);
int wr_cmd_stat(int argc, char **argv);

#endif
