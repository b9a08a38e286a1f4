/* SPDX-License-Identifier: MIT */
/* walrec dump: events in id order, as text or JSON lines, from a WAL directory or one file. */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <walrec/reader.h>

#include "recorder/channel.h"
#include "tools/cmd.h"

static void
dump_usage(FILE *out)
{
	fprintf(out,
		"usage: walrec dump PATH [--from ID] [--count N] [--json] [--follow [--channel NAME]]\n"
		"\n"
		"Print the events of the WAL directory PATH (every segment, hot and cold, in\n"
		"event id order) or of the single segment file PATH. Every event printed has\n"
		"passed every check of the format; the reader verifies the next segments ahead\n"
		"of the output.\n"
		"\n"
		"  --from ID       start at the first event whose id is >= ID\n"
		"  --count N       stop after N events\n"
		"  --json          JSON lines {\"event_id\":..,\"timestamp_ns\":..,\"payload\":\"hex\"}\n"
		"                  instead of 'id=ID ts=NS payload=HEX'\n"
		"  --follow, -f    then keep printing events as the recorder seals them, across\n"
		"                  rotations, compression and recorder restarts, until\n"
		"                  interrupted (SIGINT/SIGTERM: exit 0) or N events with --count\n"
		"  --channel NAME  the recorder's channel, for --follow; default: the name in\n"
		"                  PATH/walrec.channel (written by 'walrec record')\n"
		"  --help          this text\n"
		"\n"
		"Numbers accept k/M/G suffixes (powers of 1000). A corrupt block stops the\n"
		"dump after the events before it, with a message on stderr naming the file,\n"
		"the block and the reason.\n"
		"\n"
		"exit: 0 done, 1 corruption found, 2 usage or I/O error\n");
}

struct dump_opts {
	const char *path;
	const char *channel;
	uint64_t from;
	uint64_t count;
	bool has_count;
	bool json;
	bool follow;
};

struct dump_state {
	const struct dump_opts *o;
	uint64_t printed;
	char *buf; /* output staging: one fwrite per many lines */
	size_t len;
};

#define DUMP_BUF (1u << 16)
#define DUMP_LINE_MAX 256
/* --follow: longest sleep between looks at the stop flag (signals also wake it). */
#define DUMP_FOLLOW_WAIT_NS 500000000ull

static volatile sig_atomic_t dump_stop;

static void
dump_on_signal(int sig)
{
	(void)sig;
	dump_stop = 1;
}

static char *
dump_u64(char *p, uint64_t v)
{
	char tmp[20];
	int n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static void
dump_flush(struct dump_state *s)
{
	if (s->len)
		fwrite(s->buf, 1, s->len, stdout);
	s->len = 0;
}

static void
dump_event(struct dump_state *s, const walrec_event_t *ev)
{
	static const char hex[] = "0123456789abcdef";
	if (s->len + DUMP_LINE_MAX > DUMP_BUF)
		dump_flush(s);
	char *p = s->buf + s->len;
	if (s->o->json) {
		memcpy(p, "{\"event_id\":", 12), p += 12;
		p = dump_u64(p, ev->event_id);
		memcpy(p, ",\"timestamp_ns\":", 16), p += 16;
		p = dump_u64(p, ev->timestamp_ns);
		memcpy(p, ",\"payload\":\"", 12), p += 12;
	} else {
		memcpy(p, "id=", 3), p += 3;
		p = dump_u64(p, ev->event_id);
		memcpy(p, " ts=", 4), p += 4;
		p = dump_u64(p, ev->timestamp_ns);
		memcpy(p, " payload=", 9), p += 9;
	}
	for (size_t i = 0; i < WALREC_PAYLOAD_SIZE; i++) {
		*p++ = hex[ev->payload[i] >> 4];
		*p++ = hex[ev->payload[i] & 15];
	}
	if (s->o->json)
		*p++ = '"', *p++ = '}';
	*p++ = '\n';
	s->len = (size_t)(p - s->buf);
}

static bool
dump_done(const struct dump_state *s)
{
	return s->o->has_count && s->printed >= s->o->count;
}

/* Exit code for a reader error: the content (1) or reading it (2). */
static int
dump_error_exit(int rc)
{
	return rc == -WALREC_ECORRUPT || rc == -WALREC_EFORMAT ? WR_EXIT_FAIL : WR_EXIT_USAGE;
}

/* Print the events from --from on (and, with --follow, as they are sealed). */
static int
dump_run(struct dump_state *s)
{
	const struct dump_opts *o = s->o;
	walrec_reader_options_t ro;
	walrec_reader_options_init(&ro);
	ro.follow = o->follow;
	ro.channel = o->channel;
	walrec_reader_t *r = NULL;
	int rc = walrec_reader_open(&r, o->path, &ro);
	if (rc < 0) {
		/* The reason, naming the file, was logged. */
		wr_tool_error("dump", "%s: %s", o->path, walrec_strerror(rc));
		return dump_error_exit(rc);
	}
	if (o->from > 1)
		rc = walrec_reader_seek(r, o->from);
	walrec_event_t ev;
	while (rc >= 0 && !dump_done(s) && !dump_stop) {
		rc = walrec_reader_next(r, &ev);
		if (rc == 1) {
			dump_event(s, &ev);
			s->printed++;
			continue;
		}
		if (rc < 0 || !o->follow)
			break;
		/* Everything sealed is out: show it now, then sleep until more is. */
		dump_flush(s);
		if (fflush(stdout) != 0)
			break;
		int w = walrec_reader_wait(r, DUMP_FOLLOW_WAIT_NS);
		if (w < 0 && w != -EINTR)
			rc = w;
	}
	dump_flush(s);
	int ret = WR_EXIT_OK;
	if (rc < 0) {
		fflush(stdout);
		char msg[512];
		if (walrec_reader_last_error(r, msg, sizeof msg) == rc && msg[0])
			fprintf(stderr, "segment %s\n", msg);
		else
			wr_tool_error("dump", "%s: %s", o->path, walrec_strerror(rc));
		ret = dump_error_exit(rc);
	}
	walrec_reader_close(r);
	return ret;
}

static bool
dump_number(const char *opt, const char *val, uint64_t *out)
{
	if (!val) {
		wr_tool_error("dump", "%s needs a value", opt);
		return false;
	}
	if (!wr_tool_parse_u64(val, out)) {
		wr_tool_error("dump", "%s: '%s' is not a non-negative integer", opt, val);
		return false;
	}
	return true;
}

int
wr_cmd_dump(int argc, char **argv)
{
	struct dump_opts o = { 0 };
	bool only_paths = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!only_paths && a[0] == '-' && a[1] != '\0') {
			const char *eq = strchr(a, '=');
			size_t name_len = eq ? (size_t)(eq - a) : strlen(a);
			bool is_from = strncmp(a, "--from", name_len) == 0 && name_len == 6;
			bool is_count = strncmp(a, "--count", name_len) == 0 && name_len == 7;
			if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
				dump_usage(stdout);
				return WR_EXIT_OK;
			} else if (strcmp(a, "--json") == 0) {
				o.json = true;
			} else if (is_from || is_count) {
				const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
				if (!dump_number(is_from ? "--from" : "--count", val,
						 is_from ? &o.from : &o.count))
					return WR_EXIT_USAGE;
				o.has_count |= is_count;
			} else if (strcmp(a, "--follow") == 0 || strcmp(a, "-f") == 0) {
				o.follow = true;
			} else if (strncmp(a, "--channel", name_len) == 0 && name_len == 9) {
				o.channel = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
				if (!o.channel || !*o.channel) {
					wr_tool_error("dump", "--channel needs a NAME");
					return WR_EXIT_USAGE;
				}
			} else if (strcmp(a, "--") == 0) {
				only_paths = true;
			} else {
				wr_tool_error("dump", "unknown option '%s' (see 'walrec dump --help')", a);
				return WR_EXIT_USAGE;
			}
			continue;
		}
		if (o.path) {
			wr_tool_error("dump", "one PATH only ('%s' and '%s')", o.path, a);
			return WR_EXIT_USAGE;
		}
		o.path = a;
	}
	if (!o.path) {
		wr_tool_error("dump", "missing PATH (see 'walrec dump --help')");
		return WR_EXIT_USAGE;
	}
	if (o.channel && !o.follow) {
		wr_tool_error("dump", "--channel goes with --follow");
		return WR_EXIT_USAGE;
	}
	if (o.channel && wr_channel_name_check(o.channel) < 0) {
		wr_tool_error("dump", "bad channel name '%s': 1..64 characters of [A-Za-z0-9._-], "
				      "not starting with '.'",
			      o.channel);
		return WR_EXIT_USAGE;
	}
	struct stat st;
	if (stat(o.path, &st) != 0) {
		wr_tool_error("dump", "%s: %s", o.path, strerror(errno));
		return WR_EXIT_USAGE;
	}
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
		wr_tool_error("dump", "%s: not a directory or a regular file", o.path);
		return WR_EXIT_USAGE;
	}
	if (o.follow && !S_ISDIR(st.st_mode)) {
		wr_tool_error("dump", "%s: --follow reads a WAL directory, not one file", o.path);
		return WR_EXIT_USAGE;
	}
	if (o.follow)
		wr_tool_catch_stop(dump_on_signal); /* ends the futex sleep at once */

	struct dump_state s = { .o = &o, .buf = wr_xmalloc(DUMP_BUF) };
	int rc = dump_run(&s);
	dump_flush(&s);
	free(s.buf);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		wr_tool_error("dump", "writing events: %s", strerror(errno));
		if (rc == WR_EXIT_OK)
			rc = WR_EXIT_USAGE;
	}
	return rc;
}
