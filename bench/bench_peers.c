/* SPDX-License-Identifier: MIT */
/*
 * 'walrec bench peers': walrec beside what a user would otherwise write
 * records with (write()/fdatasync, SQLite, LevelDB, RocksDB), in one run:
 * the same 64-byte records, the same counts, the same directory, runs
 * interleaved across systems, medians of the runs and ratios walrec/peer.
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <walrec/common.h>

#include "bench/harness.h"
#include "bench/peers.h"
#include "lib/fs.h"
#include "tools/cmd.h"

#define CMD "bench peers"

/* The systems in output order; a missing table means "not built". */
static const struct peer_system {
	const char *name;
	const struct wr_peer_case *cases;
	const char *missing; /* why it is not built */
} systems[] = {
	{ "walrec", wr_peer_walrec_cases, NULL },
	{ "write", wr_peer_write_cases, NULL },
#ifdef HAVE_SQLITE3
	{ "sqlite", wr_peer_sqlite_cases, NULL },
#else
	{ "sqlite", NULL, "not built: configure did not find libsqlite3-dev (sqlite3.pc)" },
#endif
#ifdef HAVE_LEVELDB
	{ "leveldb", wr_peer_leveldb_cases, NULL },
#else
	{ "leveldb", NULL, "not built: configure did not find libleveldb-dev (leveldb/c.h)" },
#endif
#ifdef HAVE_ROCKSDB
	{ "rocksdb", wr_peer_rocksdb_cases, NULL },
#else
	{ "rocksdb", NULL, "not built: configure did not find librocksdb-dev (rocksdb/c.h)" },
#endif
};
#define N_SYSTEMS (sizeof systems / sizeof systems[0])

struct peers_opts {
	const char *dir;
	uint64_t events;  /* records per pass, no-sync cases */
	uint64_t syncs;   /* acknowledgements per pass, durable cases */
	unsigned runs;
	bool selected[N_SYSTEMS];
	bool json;
};

/* What a child reports for one case in one run (fits one pipe write). */
struct peer_result {
	int rc;
	char error[240];
	uint64_t records;
	double events_per_s;
	double p50_ns, p99_ns, p999_ns, p9999_ns, max_ns;
};

/* A case across the runs. */
struct peer_row {
	const struct wr_peer_case *c;
	unsigned ok;
	char error[240];
	uint64_t records;
	double *eps, *p50, *p99, *p999, *p9999, *max;
	/* medians */
	double m_eps, m_p50, m_p99, m_p999, m_p9999, m_max;
};

static void
peers_usage(FILE *out)
{
	fprintf(out,
		"usage: walrec bench peers --dir DIR [--events N] [--syncs S] [--runs R]\n"
		"                          [--systems LIST] [--json]\n"
		"\n"
		"Write 64-byte records with walrec and with the systems it is compared with,\n"
		"in the same run and the same directory: write() per record (no sync,\n"
		"fdatasync every 1, 16, 256 records), SQLite in WAL mode (synchronous OFF,\n"
		"NORMAL, FULL; 1 or 256 records per transaction, FULL also 16), LevelDB and\n"
		"RocksDB (sync=false; sync=true per record, per WriteBatch of 16 and 256) -\n"
		"those three when configure found their development packages. walrec's\n"
		"side is the embedded recorder: append (no sync), and append + \n"
		"walrec_recorder_sync every 1, 16, 256 records.\n"
		"\n"
		"Every case runs R times, the runs interleaved across cases (run 1 of every\n"
		"case, then run 2...), each in a fresh store in a child process; the medians\n"
		"are reported with the ratios walrec/peer for the same acknowledgement\n"
		"(no sync, or durable with the same records per sync). Latency is per write\n"
		"call: one record, or one batch when records are grouped per sync or\n"
		"transaction (tick clock, its overhead subtracted).\n"
		"\n"
		"  --dir DIR        where the stores are created (and removed); same disk for all\n"
		"  --events N       records per pass of a no-sync case (default 100k); a no-sync\n"
		"                   case runs an untimed throughput pass, then a timed pass\n"
		"  --syncs S        durable cases do S syncs per pass: S x batch records, at\n"
		"                   most N (default 2000)\n"
		"  --runs R         runs of every case (default 3)\n"
		"  --systems LIST   comma-separated subset of walrec,write,sqlite,leveldb,rocksdb\n"
		"  --json           exactly one JSON object on stdout\n"
		"\n"
		"exit: 0 done, 2 usage error or a case failed\n");
}

static int
peers_parse(int argc, char **argv, struct peers_opts *o)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "events", required_argument, NULL, 'n' },
		{ "syncs", required_argument, NULL, 's' },
		{ "runs", required_argument, NULL, 'r' },
		{ "systems", required_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int opt;
	bool any = false;
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			o->dir = optarg;
			break;
		case 'n':
		case 's':
		case 'r':
			if (!wr_tool_parse_u64(optarg, &v) || v == 0 ||
			    (opt == 'r' && v > 1000) || v > 1000000000) {
				wr_tool_error(CMD, "%s: '%s' is not a positive count%s",
					      argv[optind - 1], optarg,
					      opt == 'r' ? " (at most 1000)" : "");
				return WR_EXIT_USAGE;
			}
			if (opt == 'n')
				o->events = v;
			else if (opt == 's')
				o->syncs = v;
			else
				o->runs = (unsigned)v;
			break;
		case 'S': {
			char *list = strdup(optarg), *save = NULL;
			if (!list)
				return WR_EXIT_USAGE;
			for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				size_t i = 0;
				while (i < N_SYSTEMS && strcmp(systems[i].name, t) != 0)
					i++;
				if (i == N_SYSTEMS) {
					wr_tool_error(CMD, "--systems: '%s' is not one of walrec, write, "
						      "sqlite, leveldb, rocksdb", t);
					free(list);
					return WR_EXIT_USAGE;
				}
				o->selected[i] = any = true;
			}
			free(list);
			if (!any) {
				wr_tool_error(CMD, "--systems: empty list");
				return WR_EXIT_USAGE;
			}
			break;
		}
		case 'j':
			o->json = true;
			break;
		case 'h':
			peers_usage(stdout);
			return -1;
		default:
			return wr_bench_bad_option(CMD, argv, peers_usage);
		}
	}
	int arc = wr_bench_args_end(CMD, argc, argv, o->dir, peers_usage);
	if (arc != 0)
		return arc;
	if (!any)
		for (size_t i = 0; i < N_SYSTEMS; i++)
			o->selected[i] = true;
	return 0;
}

/* ---- one case, in a child process ---------------------------------------- */

/* Records a case writes per pass: whole batches, durable cases S syncs at most. */
static uint64_t
case_records(const struct peers_opts *o, const struct wr_peer_case *c)
{
	uint64_t n = o->events;
	if (c->durable && o->syncs * c->batch < n)
		n = o->syncs * c->batch;
	n -= n % c->batch;
	return n ? n : c->batch;
}

/*
 * One pass into a fresh store in dir: open (not timed), records/batch write
 * calls, close (not timed). With hist, every call is timed.
 */
static int
case_pass(const struct wr_peer_case *c, const char *dir, uint64_t records, uint8_t *buf,
	  struct wr_bench_hist *hist, const struct wr_bench_clock *clk, uint64_t *ns,
	  char *msg, size_t n)
{
	wr_bench_remove_tree(dir);
	if (mkdir(dir, 0700) != 0) {
		snprintf(msg, n, "mkdir %s: %s", dir, strerror(errno));
		return -errno;
	}
	void *st = NULL;
	int rc = c->open(&st, dir, c, msg, n);
	if (rc != 0)
		return rc;
	uint64_t ts = wr_clock_realtime_ns();
	uint64_t overhead = clk->overhead_ticks;
	uint64_t seq = 1;
	uint64_t t0 = wr_clock_now_ns();
	while (seq <= records && rc == 0) {
		for (unsigned i = 0; i < c->batch; i++) {
			uint64_t id = seq + i, t = ts + id;
			memcpy(buf + (size_t)i * WR_PEER_RECORD, &id, sizeof id);
			memcpy(buf + (size_t)i * WR_PEER_RECORD + 8, &t, sizeof t);
		}
		if (!hist) {
			rc = c->write(st, buf, c->batch, seq);
		} else {
			uint64_t a = wr_bench_ticks();
			rc = c->write(st, buf, c->batch, seq);
			uint64_t b = wr_bench_ticks();
			uint64_t d = b - a;
			wr_bench_hist_record(hist, d > overhead ? d - overhead : 0);
		}
		seq += c->batch;
	}
	*ns = wr_clock_now_ns() - t0;
	if (rc != 0)
		snprintf(msg, n, "write of record %llu: %s", (unsigned long long)seq - c->batch,
			 walrec_strerror(rc));
	int crc = c->close(st);
	if (rc == 0 && crc != 0) {
		snprintf(msg, n, "close: %s", walrec_strerror(crc));
		rc = crc;
	}
	return rc;
}

static void
case_run(const struct peers_opts *o, const struct wr_peer_case *c, struct wr_bench_clock *clk,
	 struct peer_result *out)
{
	char dir[4200];
	snprintf(dir, sizeof dir, "%s/peer.%s.%s.%ld", o->dir, c->system, c->mode, (long)getpid());
	memset(out, 0, sizeof *out);
	out->records = case_records(o, c);
	uint8_t *buf = aligned_alloc(64, WR_PEER_MAX_BATCH * WR_PEER_RECORD);
	struct wr_bench_hist *hist = calloc(1, sizeof *hist);
	if (!buf || !hist) {
		out->rc = -ENOMEM;
		snprintf(out->error, sizeof out->error, "out of memory");
		free(buf);
		free(hist);
		return;
	}
	memset(buf, 0, WR_PEER_MAX_BATCH * WR_PEER_RECORD);
	for (unsigned i = 0; i < WR_PEER_MAX_BATCH * WR_PEER_RECORD; i++)
		if (i % WR_PEER_RECORD >= 16)
			buf[i] = (uint8_t)(i * 37 + 11);
	uint64_t ns_tput = 0, ns_lat = 0;
	int rc = 0;
	/* A sync costs far more than the timer: durable cases need no untimed pass. */
	if (!c->durable)
		rc = case_pass(c, dir, out->records, buf, NULL, clk, &ns_tput, out->error,
			       sizeof out->error);
	if (rc == 0)
		rc = case_pass(c, dir, out->records, buf, hist, clk, &ns_lat, out->error,
			       sizeof out->error);
	if (c->durable)
		ns_tput = ns_lat;
	wr_bench_remove_tree(dir);
	out->rc = rc;
	if (rc == 0) {
		wr_bench_clock_finish(clk);
		struct wr_bench_result r = { .scenario = "peers" };
		wr_bench_result_latency(&r, hist, clk);
		out->events_per_s = ns_tput ? (double)out->records * 1e9 / (double)ns_tput : 0;
		out->p50_ns = r.p50_ns;
		out->p99_ns = r.p99_ns;
		out->p999_ns = r.p999_ns;
		out->p9999_ns = r.p9999_ns;
		out->max_ns = r.max_ns;
	}
	free(buf);
	free(hist);
}

/*
 * Run a case in a child: a store's threads, caches and allocator state do
 * not outlive its run, and a crash in a peer library is reported, not fatal.
 */
static void
case_fork(const struct peers_opts *o, const struct wr_peer_case *c, struct wr_bench_clock *clk,
	  struct peer_result *out)
{
	memset(out, 0, sizeof *out);
	int fds[2];
	if (pipe(fds) != 0) {
		out->rc = -errno;
		snprintf(out->error, sizeof out->error, "pipe: %s", strerror(errno));
		return;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		out->rc = -errno;
		snprintf(out->error, sizeof out->error, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return;
	}
	if (pid == 0) {
		close(fds[0]);
		struct peer_result r;
		case_run(o, c, clk, &r);
		ssize_t w = write(fds[1], &r, sizeof r);
		_exit(w == (ssize_t)sizeof r ? 0 : 1);
	}
	close(fds[1]);
	size_t got = 0;
	while (got < sizeof *out) {
		ssize_t n = read(fds[0], (char *)out + got, sizeof *out - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fds[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (got != sizeof *out) {
		memset(out, 0, sizeof *out);
		out->rc = -EIO;
		if (WIFSIGNALED(status))
			snprintf(out->error, sizeof out->error, "the run died of signal %d",
				 WTERMSIG(status));
		else
			snprintf(out->error, sizeof out->error, "the run exited (%d) without a result",
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
}

/* ---- medians, ratios, output ---------------------------------------------- */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double
median(const double *v, unsigned n)
{
	if (n == 0)
		return 0;
	double *s = wr_xmalloc(n * sizeof *s);
	memcpy(s, v, n * sizeof *s);
	qsort(s, n, sizeof *s, cmp_double);
	double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	free(s);
	return m;
}

/* The walrec row a peer row is compared with: same acknowledgement and batch. */
static const struct peer_row *
walrec_match(const struct peer_row *rows, size_t n, const struct peer_row *p)
{
	for (size_t i = 0; i < n; i++) {
		const struct wr_peer_case *c = rows[i].c;
		if (strcmp(c->system, "walrec") != 0 || rows[i].ok == 0 ||
		    c->durable != p->c->durable)
			continue;
		if (!c->durable || c->batch == p->c->batch)
			return &rows[i];
	}
	return NULL;
}

static const char *
fmt_ns(char *buf, size_t n, double ns)
{
	if (ns < 1e3)
		snprintf(buf, n, "%.0f ns", ns);
	else if (ns < 1e6)
		snprintf(buf, n, "%.1f us", ns / 1e3);
	else
		snprintf(buf, n, "%.2f ms", ns / 1e6);
	return buf;
}

static const char *
fmt_rate(char *buf, size_t n, double v)
{
	if (v >= 1e6)
		snprintf(buf, n, "%.2f M", v / 1e6);
	else if (v >= 1e3)
		snprintf(buf, n, "%.1f k", v / 1e3);
	else
		snprintf(buf, n, "%.0f", v);
	return buf;
}

static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void
json_num(FILE *f, const char *key, double v, bool comma)
{
	if (!isfinite(v))
		v = 0;
	if (v == floor(v) && fabs(v) < 1e15)
		fprintf(f, "%s\"%s\":%.0f", comma ? "," : "", key, v);
	else
		fprintf(f, "%s\"%s\":%.3f", comma ? "," : "", key, v);
}

static const char *
fs_type(const char *dir)
{
	struct statfs s;
	if (statfs(dir, &s) != 0)
		return "unknown";
	switch ((unsigned long)s.f_type) {
	case 0xEF53: return "ext4";
	case 0x58465342: return "xfs";
	case 0x9123683E: return "btrfs";
	case 0x01021994: return "tmpfs";
	case 0x794c7630: return "overlayfs";
	case 0x2011BAB0: return "exfat";
	case 0xF2F52010: return "f2fs";
	default: return "other";
	}
}

static void
print_json(const struct peers_opts *o, const struct peer_row *rows, size_t n,
	   const struct wr_bench_clock *clk)
{
	FILE *f = stdout;
	fprintf(f, "{\"scenario\":\"peers\",\"record_bytes\":%u", WR_PEER_RECORD);
	json_num(f, "runs", o->runs, true);
	json_num(f, "events", (double)o->events, true);
	json_num(f, "syncs", (double)o->syncs, true);
	json_num(f, "timer_overhead_ns", (double)clk->overhead_ticks * clk->ns_per_tick, true);
	fputs(",\"dir\":", f);
	json_str(f, o->dir);
	fputs(",\"filesystem\":", f);
	json_str(f, fs_type(o->dir));
	fputs(",\"results\":[", f);
	for (size_t i = 0; i < n; i++) {
		const struct peer_row *r = &rows[i];
		fprintf(f, "%s{\"system\":", i ? "," : "");
		json_str(f, r->c->system);
		fputs(",\"mode\":", f);
		json_str(f, r->c->mode);
		fputs(",\"about\":", f);
		json_str(f, r->c->about);
		fprintf(f, ",\"durable\":%s", r->c->durable ? "true" : "false");
		json_num(f, "batch", r->c->batch, true);
		fprintf(f, ",\"latency_unit\":\"%s\"", r->c->batch > 1 ? "batch" : "record");
		json_num(f, "records", (double)r->records, true);
		json_num(f, "runs_ok", r->ok, true);
		if (r->ok == 0) {
			fputs(",\"error\":", f);
			json_str(f, r->error);
			fputc('}', f);
			continue;
		}
		json_num(f, "events_per_s", round(r->m_eps), true);
		json_num(f, "p50_ns", r->m_p50, true);
		json_num(f, "p99_ns", r->m_p99, true);
		json_num(f, "p999_ns", r->m_p999, true);
		json_num(f, "p9999_ns", r->m_p9999, true);
		json_num(f, "max_ns", r->m_max, true);
		fputs(",\"events_per_s_runs\":[", f);
		for (unsigned k = 0; k < r->ok; k++)
			fprintf(f, "%s%.0f", k ? "," : "", r->eps[k]);
		fputs("]}", f);
	}
	fputs("],\"ratios\":[", f);
	bool first = true;
	for (size_t i = 0; i < n; i++) {
		const struct peer_row *r = &rows[i];
		const struct peer_row *w = walrec_match(rows, n, r);
		if (strcmp(r->c->system, "walrec") == 0 || r->ok == 0 || !w)
			continue;
		fprintf(f, "%s{\"system\":", first ? "" : ",");
		first = false;
		json_str(f, r->c->system);
		fputs(",\"mode\":", f);
		json_str(f, r->c->mode);
		fputs(",\"walrec_mode\":", f);
		json_str(f, w->c->mode);
		json_num(f, "throughput_ratio", r->m_eps > 0 ? w->m_eps / r->m_eps : 0, true);
		if (w->c->batch == r->c->batch)
			json_num(f, "p50_ratio", r->m_p50 > 0 ? w->m_p50 / r->m_p50 : 0, true);
		fputc('}', f);
	}
	fputs("],\"skipped\":[", f);
	first = true;
	for (size_t i = 0; i < N_SYSTEMS; i++) {
		if (!o->selected[i] || systems[i].cases)
			continue;
		fprintf(f, "%s{\"system\":\"%s\",\"reason\":", first ? "" : ",", systems[i].name);
		json_str(f, systems[i].missing);
		fputc('}', f);
		first = false;
	}
	fputs("]}\n", f);
}

static void
print_table(const struct peers_opts *o, const struct peer_row *rows, size_t n)
{
	char a[32], b[32], c[32], d[32];
	printf("peers: %u-byte records, medians of %u interleaved runs, in %s (%s)\n",
	       WR_PEER_RECORD, o->runs, o->dir, fs_type(o->dir));
	printf("no-sync cases: %llu records per pass (untimed pass + timed pass); durable cases:\n"
	       "%llu syncs per pass (batch x %llu records, at most %llu), one timed pass\n\n",
	       (unsigned long long)o->events, (unsigned long long)o->syncs,
	       (unsigned long long)o->syncs, (unsigned long long)o->events);
	printf("%-8s %-19s %-8s %5s %8s %10s %10s %10s %10s %9s %8s\n", "system", "mode", "ack",
	       "batch", "records", "events/s", "p50", "p99", "p99.9", "walrec/x", "p50 w/x");
	for (size_t i = 0; i < n; i++) {
		const struct peer_row *r = &rows[i];
		printf("%-8s %-19s %-8s %5u %8llu ", r->c->system, r->c->mode,
		       r->c->durable ? "durable" : "accepted", r->c->batch,
		       (unsigned long long)r->records);
		if (r->ok == 0) {
			printf("FAILED: %s\n", r->error);
			continue;
		}
		printf("%10s %10s %10s %10s", fmt_rate(a, sizeof a, r->m_eps),
		       fmt_ns(b, sizeof b, r->m_p50), fmt_ns(c, sizeof c, r->m_p99),
		       fmt_ns(d, sizeof d, r->m_p999));
		const struct peer_row *w = walrec_match(rows, n, r);
		if (w && w != r && strcmp(r->c->system, "walrec") != 0) {
			printf(" %8.2fx", r->m_eps > 0 ? w->m_eps / r->m_eps : 0);
			if (w->c->batch == r->c->batch)
				printf(" %7.3fx", r->m_p50 > 0 ? w->m_p50 / r->m_p50 : 0);
		}
		putchar('\n');
	}
	printf("\nwalrec/x: walrec's events/s over the peer's, for the same acknowledgement\n"
	       "(accepted: walrec nosync; durable: walrec sync-K with the same K); p50 w/x:\n"
	       "walrec's p50 over the peer's (same unit). Latency is per write call: one\n"
	       "record, or one batch (K records + the sync or commit) when batch > 1.\n"
	       "walrec nosync still syncs in the background every 1 ms; SQLite NORMAL in WAL\n"
	       "mode does not sync at commit (only at checkpoints).\n");
	for (size_t i = 0; i < N_SYSTEMS; i++)
		if (o->selected[i] && !systems[i].cases)
			printf("skipped %s: %s\n", systems[i].name, systems[i].missing);
}

int
wr_bench_peers(int argc, char **argv)
{
	struct peers_opts o = { .events = 100000, .syncs = 2000, .runs = 3 };
	int rc = peers_parse(argc, argv, &o);
	if (rc != 0)
		return rc < 0 ? WR_EXIT_OK : rc;
	rc = wr_fs_mkdir(o.dir);
	if (rc != 0) {
		wr_tool_error(CMD, "cannot use directory %s: %s", o.dir, walrec_strerror(rc));
		return WR_EXIT_USAGE;
	}
	size_t n = 0;
	for (size_t s = 0; s < N_SYSTEMS; s++)
		if (o.selected[s] && systems[s].cases)
			for (const struct wr_peer_case *c = systems[s].cases; c->system; c++)
				n++;
	struct peer_row *rows = wr_xmalloc((n ? n : 1) * sizeof *rows);
	size_t k = 0;
	for (size_t s = 0; s < N_SYSTEMS; s++)
		if (o.selected[s] && systems[s].cases)
			for (const struct wr_peer_case *c = systems[s].cases; c->system; c++) {
				struct peer_row *r = &rows[k++];
				r->c = c;
				r->eps = wr_xmalloc(o.runs * sizeof(double));
				r->p50 = wr_xmalloc(o.runs * sizeof(double));
				r->p99 = wr_xmalloc(o.runs * sizeof(double));
				r->p999 = wr_xmalloc(o.runs * sizeof(double));
				r->p9999 = wr_xmalloc(o.runs * sizeof(double));
				r->max = wr_xmalloc(o.runs * sizeof(double));
			}
	struct wr_bench_clock clk;
	wr_bench_clock_init(&clk);
	bool failed = false;
	bool progress = !o.json && isatty(STDERR_FILENO);
	for (unsigned run = 0; run < o.runs; run++) {
		/* Start each run at a different case, so no system always goes first. */
		for (size_t j = 0; j < n; j++) {
			struct peer_row *r = &rows[(j + run) % n];
			if (progress)
				fprintf(stderr, "\rrun %u/%u: %-8s %-19s", run + 1, o.runs,
					r->c->system, r->c->mode);
			struct peer_result res;
			case_fork(&o, r->c, &clk, &res);
			r->records = res.records;
			if (res.rc != 0) {
				failed = true;
				snprintf(r->error, sizeof r->error, "%s", res.error);
				wr_tool_error(CMD, "%s %s, run %u: %s", r->c->system, r->c->mode,
					      run + 1, res.error);
				continue;
			}
			unsigned i = r->ok++;
			r->eps[i] = res.events_per_s;
			r->p50[i] = res.p50_ns;
			r->p99[i] = res.p99_ns;
			r->p999[i] = res.p999_ns;
			r->p9999[i] = res.p9999_ns;
			r->max[i] = res.max_ns;
		}
	}
	if (progress)
		fprintf(stderr, "\r%60s\r", "");
	wr_bench_clock_finish(&clk);
	for (size_t i = 0; i < n; i++) {
		struct peer_row *r = &rows[i];
		r->m_eps = median(r->eps, r->ok);
		r->m_p50 = median(r->p50, r->ok);
		r->m_p99 = median(r->p99, r->ok);
		r->m_p999 = median(r->p999, r->ok);
		r->m_p9999 = median(r->p9999, r->ok);
		r->m_max = median(r->max, r->ok);
	}
	if (o.json)
		print_json(&o, rows, n, &clk);
	else
		print_table(&o, rows, n);
	for (size_t i = 0; i < n; i++) {
		free(rows[i].eps);
		free(rows[i].p50);
		free(rows[i].p99);
		free(rows[i].p999);
		free(rows[i].p9999);
		free(rows[i].max);
	}
	free(rows);
	return failed ? WR_EXIT_USAGE : WR_EXIT_OK;
}
