/* SPDX-License-Identifier: MIT */
/* Helpers shared by the walrec subcommands. */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cmd.h"

void
wr_tool_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s %s: ", wr_prog, cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

bool
wr_tool_parse_u64(const char *s, uint64_t *out)
{
	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || end == s)
		return false;
	uint64_t mul = 1;
	if (*end == 'k' || *end == 'K')
		mul = 1000, end++;
	else if (*end == 'M')
		mul = 1000000, end++;
	else if (*end == 'G')
		mul = 1000000000, end++;
	if (*end != '\0' || (mul > 1 && v > UINT64_MAX / mul))
		return false;
	*out = (uint64_t)v * mul;
	return true;
}

bool
wr_tool_parse_cpu_list(const char *s, uint64_t *mask)
{
	uint64_t m = 0;
	if (!s || !*s)
		return false;
	while (*s) {
		char *end;
		if (*s < '0' || *s > '9')
			return false;
		unsigned long a = strtoul(s, &end, 10), b = a;
		if (*end == '-') {
			if (end[1] < '0' || end[1] > '9')
				return false;
			b = strtoul(end + 1, &end, 10);
		}
		if (a > 63 || b > 63 || b < a)
			return false;
		for (unsigned long c = a; c <= b; c++)
			m |= (uint64_t)1 << c;
		if (*end == ',' && end[1] != '\0')
			end++;
		else if (*end != '\0')
			return false;
		s = end;
	}
	*mask = m;
	return true;
}

bool
wr_tool_parse_duration_ns(const char *s, uint64_t *out)
{
	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	char *end;
	double v = strtod(s, &end);
	if (errno != 0 || end == s || v < 0)
		return false;
	double mul;
	if (strcmp(end, "ns") == 0)
		mul = 1;
	else if (strcmp(end, "us") == 0)
		mul = 1e3;
	else if (strcmp(end, "ms") == 0)
		mul = 1e6;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		mul = 1e9;
	else
		return false;
	if (v * mul > 1e18)
		return false;
	*out = (uint64_t)(v * mul);
	return true;
}

void *
wr_xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p) {
		fprintf(stderr, "%s: out of memory\n", wr_prog);
		exit(WR_EXIT_USAGE);
	}
	return p;
}

void
wr_tool_catch_stop(void (*handler)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}
