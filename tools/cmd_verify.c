/* SPDX-License-Identifier: MIT */
/* walrec verify: check every segment (hot and cold) of a WAL directory, or one file. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <walrec/reader.h>

#include "lib/fs.h"
#include "recorder/segment_reader.h"
#include "recorder/wal_dir.h"
#include "tools/cmd.h"

/* Show progress for directories at least this large (when stderr is a terminal). */
#define VERIFY_PROGRESS_BYTES (256ull << 20)

static void
verify_usage(FILE *out)
{
	fprintf(out,
		"usage: walrec verify PATH [--json] [--quiet] [--sequences]\n"
		"\n"
		"Check every segment of the WAL directory PATH (hot .wal and cold .wal.lz4),\n"
		"or the single segment file PATH: header, size, every block's checksums and\n"
		"id order, closed-header counts; across segments: duplicates, index gaps,\n"
		"event id overlaps and gaps; and wal.meta against the segment it names.\n"
		"\n"
		"  --json     one JSON object on stdout instead of text\n"
		"  --quiet    print only errors\n"
		"  --sequences  also check the payloads written by 'walrec produce': for every\n"
		"             producer tag (bytes 0..7) the sequence numbers (bytes 8..15) must\n"
		"             be 1..n, in order, without gaps or duplicates (not with --json)\n"
		"  --help     this text\n"
		"\n"
		"Each problem is one line: 'segment FILE: block I: REASON' (or 'segment FILE:\n"
		"REASON' for the header or file size). After a bad segment the next one is\n"
		"checked. Index gaps, id gaps, a hot+cold pair of one segment and a wal.meta\n"
		"that disagrees are warnings: they do not change the exit code.\n"
		"\n"
		"exit: 0 all segments valid, 1 corruption found, 2 usage or I/O error\n");
}

struct verify_opts {
	const char *path;
	bool json;
	bool quiet;
	bool sequences;
};

/* An error found in a file or between files. */
struct verify_error {
	char segment[4096 + 256];
	int64_t block; /* WR_REPORT_SEGMENT: not about one block */
	char reason[400];
};

struct verify_result {
	size_t segments, hot, cold, foreign;
	uint64_t blocks, events, first_id, last_id;
	struct verify_error *errors;
	size_t nerrors;
	char **warnings;
	size_t nwarnings;
	bool io_error;
	bool has_meta, meta_ok;
	struct wr_meta_state meta;
};

static void
verify_add_error(struct verify_result *res, const char *segment, int64_t block,
		 const char *reason)
{
	struct verify_error *n = realloc(res->errors, (res->nerrors + 1) * sizeof *n);
	if (!n) {
		fprintf(stderr, "%s: out of memory\n", wr_prog);
		exit(WR_EXIT_USAGE);
	}
	res->errors = n;
	struct verify_error *e = &n[res->nerrors++];
	snprintf(e->segment, sizeof e->segment, "%s", segment);
	e->block = block;
	snprintf(e->reason, sizeof e->reason, "%s", reason);
}

static void
verify_add_warning(struct verify_result *res, const char *msg)
{
	char **n = realloc(res->warnings, (res->nwarnings + 1) * sizeof *n);
	char *s = strdup(msg);
	if (!n || !s) {
		fprintf(stderr, "%s: out of memory\n", wr_prog);
		exit(WR_EXIT_USAGE);
	}
	res->warnings = n;
	n[res->nwarnings++] = s;
}

/* A failure that is the file's content (exit 1) rather than reading it (exit 2). */
static bool
verify_is_content_error(int err)
{
	return err == -WALREC_ECORRUPT || err == -WALREC_EFORMAT || err == -EISDIR ||
	       err == -EINVAL;
}

/* Fold one file's outcome into the totals and the error list. */
static void
verify_file(struct verify_result *res, const char *path, bool cold, bool counted,
	    const struct wr_segment_report *rep, uint32_t blocks, uint64_t events,
	    uint64_t first, uint64_t last)
{
	res->segments++;
	if (cold)
		res->cold++;
	else
		res->hot++;
	if (counted) {
		res->blocks += blocks;
		res->events += events;
		if (first && (res->first_id == 0 || first < res->first_id))
			res->first_id = first;
		if (last > res->last_id)
			res->last_id = last;
	}
	if (rep->error == 0)
		return;
	if (!verify_is_content_error(rep->error))
		res->io_error = true;
	verify_add_error(res, path, rep->block_index, rep->message);
}

struct verify_progress {
	bool shown;
};

static void
verify_progress_cb(void *arg, size_t done, size_t total, uint64_t bytes_done,
		   uint64_t bytes_total)
{
	struct verify_progress *p = arg;
	if (bytes_total < VERIFY_PROGRESS_BYTES)
		return;
	fprintf(stderr, "\rverify: %zu/%zu segments, %llu/%llu MB", done, total,
		(unsigned long long)(bytes_done >> 20), (unsigned long long)(bytes_total >> 20));
	p->shown = true;
}

static int
verify_dir(const struct verify_opts *o, struct verify_result *res)
{
	struct wr_wal_dir d;
	struct verify_progress prog = { 0 };
	bool tty = isatty(STDERR_FILENO);
	int rc = wr_wal_dir_scan(&d, o->path, WR_WAL_DIR_VERIFY, tty ? verify_progress_cb : NULL,
				 &prog);
	if (prog.shown)
		fprintf(stderr, "\r%60s\r", "");
	if (rc < 0) {
		wr_tool_error("verify", "%s: %s", o->path, strerror(-rc));
		wr_wal_dir_free(&d);
		return WR_EXIT_USAGE;
	}
	for (size_t i = 0; i < d.nsegments; i++) {
		const struct wr_wal_file *f = &d.segments[i];
		char path[4096 + 256];
		if (wr_wal_dir_file_path(&d, i, path, sizeof path) < 0)
			snprintf(path, sizeof path, "%s", f->name);
		verify_file(res, path, f->cold, f->verified && !f->duplicate, &f->report,
			    f->valid_blocks, f->event_count, f->first_event_id, f->last_event_id);
	}
	for (size_t i = 0; i < d.nproblems; i++) {
		const struct wr_wal_dir_problem *p = &d.problems[i];
		if (p->error) {
			char path[4096 + 256];
			if (wr_wal_dir_file_path(&d, p->file, path, sizeof path) < 0)
				snprintf(path, sizeof path, "%s", d.segments[p->file].name);
			verify_add_error(res, path, WR_REPORT_SEGMENT, p->message);
		} else {
			verify_add_warning(res, p->message);
		}
	}
	res->foreign = d.nforeign;

	char msg[400];
	rc = wr_wal_dir_check_meta(&d, &res->meta, msg, sizeof msg);
	res->has_meta = rc != -ENOENT;
	res->meta_ok = rc == 0;
	if (rc == 1) {
		verify_add_warning(res, msg);
	} else if (rc < 0 && rc != -ENOENT) {
		snprintf(msg, sizeof msg, "wal.meta: %s", strerror(-rc));
		verify_add_warning(res, msg);
	}
	wr_wal_dir_free(&d);
	return WR_EXIT_OK;
}

static int
verify_one(const struct verify_opts *o, struct verify_result *res)
{
	struct wr_segment_reader r;
	int rc = wr_segment_reader_open(&r, o->path, 0);
	if (rc < 0 && !verify_is_content_error(rc)) {
		wr_tool_error("verify", "%s: %s", o->path, r.report.message);
		return WR_EXIT_USAGE;
	}
	verify_file(res, o->path, r.cold, rc == 0, &r.report, r.valid_blocks, r.event_count,
		    r.first_event_id, r.last_event_id);
	wr_segment_reader_close(&r);
	return WR_EXIT_OK;
}

static void
json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void
verify_print_json(const struct verify_opts *o, const struct verify_result *res, bool ok)
{
	FILE *out = stdout;
	fputs("{\"path\":", out);
	json_string(out, o->path);
	fprintf(out,
		",\"segments\":%zu,\"hot\":%zu,\"cold\":%zu,\"blocks\":%llu,\"events\":%llu,"
		"\"first_event_id\":%llu,\"last_event_id\":%llu,\"errors\":[",
		res->segments, res->hot, res->cold, (unsigned long long)res->blocks,
		(unsigned long long)res->events, (unsigned long long)res->first_id,
		(unsigned long long)res->last_id);
	for (size_t i = 0; i < res->nerrors; i++) {
		const struct verify_error *e = &res->errors[i];
		fputs(i ? ",{\"segment\":" : "{\"segment\":", out);
		json_string(out, e->segment);
		if (e->block == WR_REPORT_SEGMENT)
			fputs(",\"block\":null,\"reason\":", out);
		else
			fprintf(out, ",\"block\":%lld,\"reason\":", (long long)e->block);
		json_string(out, e->reason);
		fputc('}', out);
	}
	fputs("],\"warnings\":[", out);
	for (size_t i = 0; i < res->nwarnings; i++) {
		if (i)
			fputc(',', out);
		json_string(out, res->warnings[i]);
	}
	fputs("],\"meta\":", out);
	if (res->has_meta)
		fprintf(out, "{\"segment_index\":%u,\"offset\":%u,\"last_event_id\":%llu,\"ok\":%s}",
			res->meta.segment_index, res->meta.offset,
			(unsigned long long)res->meta.last_event_id, res->meta_ok ? "true" : "false");
	else
		fputs("null", out);
	fprintf(out, ",\"foreign_files\":%zu,\"ok\":%s}\n", res->foreign, ok ? "true" : "false");
}

static void
verify_print_text(const struct verify_opts *o, const struct verify_result *res, bool ok)
{
	for (size_t i = 0; i < res->nerrors; i++) {
		const struct verify_error *e = &res->errors[i];
		if (e->block == WR_REPORT_SEGMENT)
			printf("segment %s: %s\n", e->segment, e->reason);
		else
			printf("segment %s: block %lld: %s\n", e->segment, (long long)e->block,
			       e->reason);
	}
	if (o->quiet)
		return;
	for (size_t i = 0; i < res->nwarnings; i++)
		printf("warning: %s\n", res->warnings[i]);
	printf("%s: %zu segment%s (%zu hot, %zu cold), %llu blocks, %llu events", o->path,
	       res->segments, res->segments == 1 ? "" : "s", res->hot, res->cold,
	       (unsigned long long)res->blocks, (unsigned long long)res->events);
	if (res->events)
		printf(", ids %llu..%llu", (unsigned long long)res->first_id,
		       (unsigned long long)res->last_id);
	if (res->foreign)
		printf(", %zu other file%s", res->foreign, res->foreign == 1 ? "" : "s");
	if (ok)
		printf(": ok\n");
	else
		printf(": %zu error%s\n", res->nerrors, res->nerrors == 1 ? "" : "s");
}

/*
 * --sequences: per producer tag (payload bytes 0..7), the sequence numbers
 * (bytes 8..15) must run 1, 2, 3... in log order. Tags live in an open
 * addressing table that doubles when half full.
 */
struct seq_tag {
	uint64_t tag;
	uint64_t last;     /* highest sequence seen */
	uint64_t events;
	uint64_t problems;
	bool used;
};

struct seq_state {
	struct seq_tag *tags;
	size_t cap, ntags;
	uint64_t events, problems, bad_tags;
	bool quiet;
};

/* Tags whose first problem is printed; the rest are only counted. */
#define SEQ_REPORT_TAGS 100u

static struct seq_tag *
seq_find(struct seq_state *s, uint64_t tag)
{
	if (2 * (s->ntags + 1) > s->cap) {
		size_t ncap = s->cap ? 2 * s->cap : 64;
		struct seq_tag *nt = wr_xmalloc(ncap * sizeof *nt);
		memset(nt, 0, ncap * sizeof *nt);
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->tags[i].used)
				continue;
			size_t j = (size_t)(s->tags[i].tag * 0x9e3779b97f4a7c15ull) & (ncap - 1);
			while (nt[j].used)
				j = (j + 1) & (ncap - 1);
			nt[j] = s->tags[i];
		}
		free(s->tags);
		s->tags = nt;
		s->cap = ncap;
	}
	size_t j = (size_t)(tag * 0x9e3779b97f4a7c15ull) & (s->cap - 1);
	while (s->tags[j].used && s->tags[j].tag != tag)
		j = (j + 1) & (s->cap - 1);
	if (!s->tags[j].used) {
		s->tags[j].used = true;
		s->tags[j].tag = tag;
		s->ntags++;
	}
	return &s->tags[j];
}

static void
seq_event(struct seq_state *s, const walrec_event_t *ev)
{
	uint64_t tag, n;
	memcpy(&tag, ev->payload, 8);
	memcpy(&n, ev->payload + 8, 8);
	struct seq_tag *t = seq_find(s, tag);
	s->events++;
	t->events++;
	if (n == t->last + 1) {
		t->last = n;
		return;
	}
	if (t->problems++ == 0 && s->bad_tags++ < SEQ_REPORT_TAGS && !s->quiet) {
		if (n > t->last + 1)
			printf("tag %llu: gap: sequence %llu follows %llu (missing %llu..%llu), "
			       "event id %llu\n",
			       (unsigned long long)tag, (unsigned long long)n,
			       (unsigned long long)t->last, (unsigned long long)t->last + 1,
			       (unsigned long long)n - 1, (unsigned long long)ev->event_id);
		else
			printf("tag %llu: duplicate or out of order: sequence %llu after %llu, "
			       "event id %llu\n",
			       (unsigned long long)tag, (unsigned long long)n,
			       (unsigned long long)t->last, (unsigned long long)ev->event_id);
	}
	s->problems++;
	if (n > t->last)
		t->last = n;
}

/*
 * Read the directory (or the one file) in id order through the public
 * reader, strict: the sequence check sees exactly what a replay would.
 * Returns 0, or an exit code when it could not be read to the end (reported).
 */
static int
seq_check_events(struct seq_state *s, const char *path)
{
	walrec_reader_t *r = NULL;
	int rc = walrec_reader_open(&r, path, NULL);
	if (rc < 0) {
		wr_tool_error("verify", "--sequences: %s: %s", path, walrec_strerror(rc));
		return rc == -WALREC_ECORRUPT || rc == -WALREC_EFORMAT ? WR_EXIT_FAIL : WR_EXIT_USAGE;
	}
	walrec_event_t ev;
	while ((rc = walrec_reader_next(r, &ev)) == 1)
		seq_event(s, &ev);
	if (rc < 0) {
		char msg[512];
		walrec_reader_last_error(r, msg, sizeof msg);
		wr_tool_error("verify", "--sequences: %s", msg[0] ? msg : walrec_strerror(rc));
		rc = rc == -WALREC_ECORRUPT || rc == -WALREC_EFORMAT ? WR_EXIT_FAIL : WR_EXIT_USAGE;
	}
	walrec_reader_close(r);
	return rc;
}

static int
seq_check(const struct verify_opts *o)
{
	struct seq_state s = { .quiet = false };
	int rc = seq_check_events(&s, o->path);
	if (rc == WR_EXIT_OK && (!o->quiet || s.problems))
		printf("sequences: %zu producer tag%s, %llu events: %s\n", s.ntags,
		       s.ntags == 1 ? "" : "s", (unsigned long long)s.events,
		       s.problems ? "FAILED" : "ok");
	if (s.bad_tags > SEQ_REPORT_TAGS)
		printf("(%llu more tags with problems not shown)\n",
		       (unsigned long long)(s.bad_tags - SEQ_REPORT_TAGS));
	if (s.problems && s.bad_tags <= SEQ_REPORT_TAGS) {
		for (size_t i = 0; i < s.cap; i++)
			if (s.tags[i].used && s.tags[i].problems)
				printf("tag %llu: %llu events, %llu problem%s\n",
				       (unsigned long long)s.tags[i].tag,
				       (unsigned long long)s.tags[i].events,
				       (unsigned long long)s.tags[i].problems,
				       s.tags[i].problems == 1 ? "" : "s");
	}
	free(s.tags);
	if (rc == WR_EXIT_OK && s.problems)
		rc = WR_EXIT_FAIL;
	return rc;
}

int
wr_cmd_verify(int argc, char **argv)
{
	struct verify_opts o = { 0 };
	bool only_paths = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!only_paths && a[0] == '-' && a[1] != '\0') {
			if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
				verify_usage(stdout);
				return WR_EXIT_OK;
			} else if (strcmp(a, "--json") == 0) {
				o.json = true;
			} else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
				o.quiet = true;
			} else if (strcmp(a, "--sequences") == 0) {
				o.sequences = true;
			} else if (strcmp(a, "--") == 0) {
				only_paths = true;
			} else {
				wr_tool_error("verify", "unknown option '%s' (see 'walrec verify --help')",
					      a);
				return WR_EXIT_USAGE;
			}
			continue;
		}
		if (o.path) {
			wr_tool_error("verify", "one PATH only ('%s' and '%s')", o.path, a);
			return WR_EXIT_USAGE;
		}
		o.path = a;
	}
	if (!o.path) {
		wr_tool_error("verify", "missing PATH (see 'walrec verify --help')");
		return WR_EXIT_USAGE;
	}
	if (o.sequences && o.json) {
		wr_tool_error("verify", "--sequences does not combine with --json");
		return WR_EXIT_USAGE;
	}
	struct stat st;
	if (stat(o.path, &st) != 0) {
		wr_tool_error("verify", "%s: %s", o.path, strerror(errno));
		return WR_EXIT_USAGE;
	}

	struct verify_result res;
	memset(&res, 0, sizeof res);
	int rc;
	if (S_ISDIR(st.st_mode)) {
		rc = verify_dir(&o, &res);
	} else if (S_ISREG(st.st_mode)) {
		rc = verify_one(&o, &res);
	} else {
		wr_tool_error("verify", "%s: not a directory or a regular file", o.path);
		rc = WR_EXIT_USAGE;
	}
	if (rc == WR_EXIT_OK) {
		bool ok = res.nerrors == 0;
		if (o.json)
			verify_print_json(&o, &res, ok);
		else
			verify_print_text(&o, &res, ok);
		rc = res.io_error ? WR_EXIT_USAGE : ok ? WR_EXIT_OK : WR_EXIT_FAIL;
	}
	if (o.sequences && rc != WR_EXIT_USAGE) {
		int src = seq_check(&o);
		if (src > rc)
			rc = src;
	}
	if (fflush(stdout) != 0 && rc == WR_EXIT_OK) {
		wr_tool_error("verify", "writing the report: %s", strerror(errno));
		rc = WR_EXIT_USAGE;
	}
	free(res.errors);
	for (size_t i = 0; i < res.nwarnings; i++)
		free(res.warnings[i]);
	free(res.warnings);
	return rc;
}
