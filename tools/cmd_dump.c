/* SPDX-License-Identifier: MIT */
/* walrec dump: events in id order, as text or JSON lines, from a WAL directory or one file. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "recorder/segment_reader.h"
#include "recorder/wal_dir.h"
#include "tools/cmd.h"

static void
dump_usage(FILE *out)
{
	fprintf(out,
		"usage: walrec dump PATH [--from ID] [--count N] [--json]\n"
		"\n"
		"Print the events of the WAL directory PATH (every segment, hot and cold, in\n"
		"event id order) or of the single segment file PATH. Each segment is\n"
		"verified before its events are printed.\n"
		"\n"
		"  --from ID    start at the first event whose id is >= ID\n"
		"  --count N    stop after N events\n"
		"  --json       JSON lines {\"event_id\":..,\"timestamp_ns\":..,\"payload\":\"hex\"}\n"
		"               instead of 'id=ID ts=NS payload=HEX'\n"
		"  --help       this text\n"
		"\n"
		"Numbers accept k/M/G suffixes (powers of 1000). A corrupt block stops the\n"
		"dump after the events before it, with a message on stderr.\n"
		"\n"
		"exit: 0 done, 1 corruption found, 2 usage or I/O error\n");
}

struct dump_opts {
	const char *path;
	uint64_t from;
	uint64_t count;
	bool has_count;
	bool json;
};

struct dump_state {
	const struct dump_opts *o;
	uint64_t printed;
	uint64_t last_id;
	char *buf; /* output staging: one fwrite per many lines */
	size_t len;
};

#define DUMP_BUF (1u << 16)
#define DUMP_LINE_MAX 256

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

/*
 * Print the events of one segment file from s->o->from on. Returns
 * WR_EXIT_OK to go on, or the exit code to stop with (after a message).
 */
static int
dump_file(struct dump_state *s, const char *path, unsigned flags)
{
	struct wr_segment_reader r;
	int rc = wr_segment_reader_open(&r, path, flags);
	if (rc < 0) {
		dump_flush(s);
		fflush(stdout);
		if (rc == -WALREC_EFORMAT) {
			fprintf(stderr, "segment %s: %s\n", path, r.report.message);
			return WR_EXIT_FAIL;
		}
		wr_tool_error("dump", "%s: %s", path, r.report.message);
		return WR_EXIT_USAGE;
	}
	if (s->o->from > 1 && (rc = wr_segment_reader_seek(&r, s->o->from)) < 0)
		goto read_error;
	walrec_event_t ev;
	while (!dump_done(s) && (rc = wr_segment_reader_next(&r, &ev)) == 1) {
		if (ev.event_id <= s->last_id) {
			dump_flush(s);
			fflush(stdout);
			fprintf(stderr,
				"segment %s: event id %llu is not after the previous event %llu "
				"(segments overlap)\n",
				path, (unsigned long long)ev.event_id,
				(unsigned long long)s->last_id);
			wr_segment_reader_close(&r);
			return WR_EXIT_FAIL;
		}
		s->last_id = ev.event_id;
		dump_event(s, &ev);
		s->printed++;
	}
	if (rc >= 0 || dump_done(s)) {
		wr_segment_reader_close(&r);
		return WR_EXIT_OK;
	}
read_error:
	dump_flush(s);
	fflush(stdout);
	if (rc == -WALREC_ECORRUPT && r.report.error != 0) {
		if (r.report.block_index == WR_REPORT_SEGMENT)
			fprintf(stderr, "segment %s: %s\n", path, r.report.message);
		else
			fprintf(stderr, "segment %s: block %lld: %s\n", path,
				(long long)r.report.block_index, r.report.message);
		rc = WR_EXIT_FAIL;
	} else {
		wr_tool_error("dump", "%s: %s", path, walrec_strerror(rc));
		rc = rc == -WALREC_ECORRUPT ? WR_EXIT_FAIL : WR_EXIT_USAGE;
	}
	wr_segment_reader_close(&r);
	return rc;
}

static int
dump_dir(struct dump_state *s)
{
	struct wr_wal_dir d;
	int rc = wr_wal_dir_scan(&d, s->o->path, 0, NULL, NULL);
	if (rc < 0) {
		wr_tool_error("dump", "%s: %s", s->o->path, strerror(-rc));
		wr_wal_dir_free(&d);
		return WR_EXIT_USAGE;
	}
	rc = WR_EXIT_OK;
	for (size_t i = 0; i < d.nsegments && rc == WR_EXIT_OK && !dump_done(s); i++) {
		const struct wr_wal_file *f = &d.segments[i];
		if (f->duplicate)
			continue;
		/* A closed header tells where a segment ends: skip it unopened. */
		if (f->header_ok && f->ids_known && f->last_event_id < s->o->from &&
		    f->header.closed_ts_ns != 0)
			continue;
		char path[4096 + 256];
		if (wr_wal_dir_file_path(&d, i, path, sizeof path) < 0) {
			wr_tool_error("dump", "%s: path too long", f->name);
			rc = WR_EXIT_USAGE;
			break;
		}
		rc = dump_file(s, path, f->cold ? WR_SEGMENT_READER_COLD : WR_SEGMENT_READER_HOT);
	}
	wr_wal_dir_free(&d);
	return rc;
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
				wr_tool_error("dump", "--follow is not implemented yet");
				return WR_EXIT_USAGE;
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
	struct stat st;
	if (stat(o.path, &st) != 0) {
		wr_tool_error("dump", "%s: %s", o.path, strerror(errno));
		return WR_EXIT_USAGE;
	}

	struct dump_state s = { .o = &o, .buf = wr_xmalloc(DUMP_BUF) };
	int rc;
	if (S_ISDIR(st.st_mode)) {
		rc = dump_dir(&s);
	} else if (S_ISREG(st.st_mode)) {
		rc = dump_file(&s, o.path, 0);
	} else {
		wr_tool_error("dump", "%s: not a directory or a regular file", o.path);
		rc = WR_EXIT_USAGE;
	}
	dump_flush(&s);
	free(s.buf);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		wr_tool_error("dump", "writing events: %s", strerror(errno));
		if (rc == WR_EXIT_OK)
			rc = WR_EXIT_USAGE;
	}
	return rc;
}
