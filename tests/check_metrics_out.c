/* SPDX-License-Identifier: MIT */
/* lib/metrics_out: exact text, Prometheus and JSON renderings of known metrics. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/metrics_out.h"
#include "tests/testutil.h"

/* Known values, set by hand so the test does not depend on --disable-telemetry. */
static wr_counter_t events;
static wr_gauge_t hot;
static wr_duration_t flush, idle;
static wr_operation_t open_op;
static wr_histogram_t append;

static void
setup_metrics(void)
{
	memset(&events, 0, sizeof events);
	memset(&hot, 0, sizeof hot);
	memset(&flush, 0, sizeof flush);
	memset(&idle, 0, sizeof idle);
	memset(&open_op, 0, sizeof open_op);
	memset(&append, 0, sizeof append);
	wr_store_relaxed(&events.value, 42);
	wr_store_relaxed(&hot.value, -3);
	/* 1000, 1100, 1500 ns */
	wr_store_relaxed(&flush.count, 3);
	wr_store_relaxed(&flush.total_ns, 3600);
	wr_store_relaxed(&flush.min_ns, 1000);
	wr_store_relaxed(&flush.max_ns, 1500);
	/* 4 attempts, 3 succeeded, 10 ms in all */
	wr_store_relaxed(&open_op.samples, 4);
	wr_store_relaxed(&open_op.successes, 3);
	wr_store_relaxed(&open_op.count, 4);
	wr_store_relaxed(&open_op.total_ns, 10000000);
	wr_store_relaxed(&open_op.min_ns, 1000000);
	wr_store_relaxed(&open_op.max_ns, 5000000);
	/*
	 * 100 samples of 1000 ns, all in bucket [512, 1024): quantile q
	 * interpolates to 512 + 512 q, capped at max 1000, so p50 = 768,
	 * p90 = 972 and the higher ones 1000.
	 */
	wr_store_relaxed(&append.count, 100);
	wr_store_relaxed(&append.sum_ns, 100000);
	wr_store_relaxed(&append.max_ns, 1000);
	wr_store_relaxed(&append.buckets[wr_histogram_bucket(1000)], 100);
}

static char *
render(enum wr_out_format format, const char *labels)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(f);
	struct wr_out o;
	wr_out_begin(&o, f, format);
	o.labels = labels;
	wr_out_component_begin(&o, "test");
	wr_out_counter(&o, "events", "Events seen.", &events);
	wr_out_gauge(&o, "hot_segments", "Hot segments on disk.", &hot);
	wr_out_duration(&o, "flush", "Flush time.", &flush);
	wr_out_duration(&o, "idle", "Idle time.", &idle);
	wr_out_operation(&o, "open", "Segment opens.", &open_op);
	wr_out_histogram(&o, "append", "Append latency.", &append);
	wr_out_value(&o, "max_hot", "Configured hot limit.", false, 8);
	wr_out_value(&o, "rotations", "Rotations.", true, 7);
	wr_out_component_end(&o);
	wr_out_component_begin(&o, "other");
	wr_out_value(&o, "x", "X.", true, 1);
	wr_out_component_end(&o);
	wr_out_end(&o);
	fclose(f);
	return buf;
}

static const char expected_text[] =
	"test\n"
	"  events                         42\n"
	"  hot_segments                   -3\n"
	"  flush                          count=3 mean=1.20us min=1.00us max=1.50us total=3.60us\n"
	"  idle                           count=0\n"
	"  open                           samples=4 successes=3 count=4 mean=2.50ms min=1.00ms "
	"max=5.00ms total=10.00ms\n"
	"  append                         count=100 mean=1.00us p50=768ns p90=972ns p99=1.00us "
	"p99.9=1.00us p99.99=1.00us max=1.00us\n"
	"  max_hot                        8\n"
	"  rotations                      7\n"
	"other\n"
	"  x                              1\n";

static const char expected_json[] =
	"{\"test\":{"
	"\"events\":42,"
	"\"hot_segments\":-3,"
	"\"flush\":{\"count\":3,\"total_ns\":3600,\"min_ns\":1000,\"max_ns\":1500},"
	"\"idle\":{\"count\":0,\"total_ns\":0,\"min_ns\":0,\"max_ns\":0},"
	"\"open\":{\"samples\":4,\"successes\":3,\"count\":4,\"total_ns\":10000000,"
	"\"min_ns\":1000000,\"max_ns\":5000000},"
	"\"append\":{\"count\":100,\"sum_ns\":100000,\"max_ns\":1000,\"p50_ns\":768,"
	"\"p90_ns\":972,\"p99_ns\":1000,\"p999_ns\":1000,\"p9999_ns\":1000},"
	"\"max_hot\":8,"
	"\"rotations\":7},"
	"\"other\":{\"x\":1}}\n";

#define L "{channel=\"c1\"}"
#define LQ(q) "{channel=\"c1\",quantile=\"" q "\"}"

static const char expected_prom[] =
	"# HELP walrec_test_events_total Events seen.\n"
	"# TYPE walrec_test_events_total counter\n"
	"walrec_test_events_total" L " 42\n"
	"# HELP walrec_test_hot_segments Hot segments on disk.\n"
	"# TYPE walrec_test_hot_segments gauge\n"
	"walrec_test_hot_segments" L " -3\n"
	"# HELP walrec_test_flush_seconds Flush time.\n"
	"# TYPE walrec_test_flush_seconds summary\n"
	"walrec_test_flush_seconds_sum" L " 0.0000036\n"
	"walrec_test_flush_seconds_count" L " 3\n"
	"# HELP walrec_test_flush_seconds_min Flush time. (shortest)\n"
	"# TYPE walrec_test_flush_seconds_min gauge\n"
	"walrec_test_flush_seconds_min" L " 0.000001\n"
	"# HELP walrec_test_flush_seconds_max Flush time. (longest)\n"
	"# TYPE walrec_test_flush_seconds_max gauge\n"
	"walrec_test_flush_seconds_max" L " 0.0000015\n"
	"# HELP walrec_test_idle_seconds Idle time.\n"
	"# TYPE walrec_test_idle_seconds summary\n"
	"walrec_test_idle_seconds_sum" L " 0\n"
	"walrec_test_idle_seconds_count" L " 0\n"
	"# HELP walrec_test_idle_seconds_min Idle time. (shortest)\n"
	"# TYPE walrec_test_idle_seconds_min gauge\n"
	"walrec_test_idle_seconds_min" L " 0\n"
	"# HELP walrec_test_idle_seconds_max Idle time. (longest)\n"
	"# TYPE walrec_test_idle_seconds_max gauge\n"
	"walrec_test_idle_seconds_max" L " 0\n"
	"# HELP walrec_test_open_total Segment opens. (attempts)\n"
	"# TYPE walrec_test_open_total counter\n"
	"walrec_test_open_total" L " 4\n"
	"# HELP walrec_test_open_successes_total Segment opens. (successes)\n"
	"# TYPE walrec_test_open_successes_total counter\n"
	"walrec_test_open_successes_total" L " 3\n"
	"# HELP walrec_test_open_seconds Segment opens.\n"
	"# TYPE walrec_test_open_seconds summary\n"
	"walrec_test_open_seconds_sum" L " 0.01\n"
	"walrec_test_open_seconds_count" L " 4\n"
	"# HELP walrec_test_open_seconds_min Segment opens. (shortest)\n"
	"# TYPE walrec_test_open_seconds_min gauge\n"
	"walrec_test_open_seconds_min" L " 0.001\n"
	"# HELP walrec_test_open_seconds_max Segment opens. (longest)\n"
	"# TYPE walrec_test_open_seconds_max gauge\n"
	"walrec_test_open_seconds_max" L " 0.005\n"
	"# HELP walrec_test_append_seconds Append latency.\n"
	"# TYPE walrec_test_append_seconds summary\n"
	"walrec_test_append_seconds" LQ("0.5") " 0.000000768\n"
	"walrec_test_append_seconds" LQ("0.9") " 0.000000972\n"
	"walrec_test_append_seconds" LQ("0.99") " 0.000001\n"
	"walrec_test_append_seconds" LQ("0.999") " 0.000001\n"
	"walrec_test_append_seconds" LQ("0.9999") " 0.000001\n"
	"walrec_test_append_seconds_sum" L " 0.0001\n"
	"walrec_test_append_seconds_count" L " 100\n"
	"# HELP walrec_test_append_seconds_max Append latency. (longest)\n"
	"# TYPE walrec_test_append_seconds_max gauge\n"
	"walrec_test_append_seconds_max" L " 0.000001\n"
	"# HELP walrec_test_max_hot Configured hot limit.\n"
	"# TYPE walrec_test_max_hot gauge\n"
	"walrec_test_max_hot" L " 8\n"
	"# HELP walrec_test_rotations_total Rotations.\n"
	"# TYPE walrec_test_rotations_total counter\n"
	"walrec_test_rotations_total" L " 7\n"
	"# HELP walrec_other_x_total X.\n"
	"# TYPE walrec_other_x_total counter\n"
	"walrec_other_x_total" L " 1\n";

START_TEST(test_metrics_out_text_exact)
{
	char *out = render(WR_OUT_TEXT, NULL);
	ck_assert_str_eq(out, expected_text);
	free(out);
	/* labels show up in the heading */
	out = render(WR_OUT_TEXT, "channel=\"c1\"");
	ck_assert(strncmp(out, "test {channel=\"c1\"}\n  events ", 29) == 0);
	free(out);
}
END_TEST

START_TEST(test_metrics_out_json_exact)
{
	char *out = render(WR_OUT_JSON, "channel=\"c1\"");
	ck_assert_str_eq(out, expected_json);
	free(out);
}
END_TEST

START_TEST(test_metrics_out_prometheus_exact)
{
	char *out = render(WR_OUT_PROMETHEUS, "channel=\"c1\"");
	ck_assert_str_eq(out, expected_prom);
	free(out);
	/* without labels: no braces at all, except the quantile label */
	out = render(WR_OUT_PROMETHEUS, NULL);
	ck_assert_ptr_nonnull(strstr(out, "\nwalrec_test_events_total 42\n"));
	ck_assert_ptr_nonnull(
		strstr(out, "\nwalrec_test_append_seconds{quantile=\"0.5\"} 0.000000768\n"));
	ck_assert_ptr_null(strstr(out, "{}"));
	free(out);
}
END_TEST

START_TEST(test_metrics_out_duration_units)
{
	static const struct {
		uint64_t ns;
		const char *text;
		const char *seconds;
	} cases[] = {
		{ 0, "0ns", "0" },
		{ 999, "999ns", "0.000000999" },
		{ 1000, "1.00us", "0.000001" },
		{ 999994, "999.99us", "0.000999994" },
		{ 999995, "1.00ms", "0.000999995" },
		{ 1234567, "1.23ms", "0.001234567" },
		{ 999995000, "1.000s", "0.999995" },
		{ 3000000000u, "3.000s", "3" },
		{ 86400123456789ull, "86400.123s", "86400.123456789" },
	};
	for (size_t i = 0; i < WR_ARRAY_SIZE(cases); i++) {
		wr_duration_t d;
		memset(&d, 0, sizeof d);
		wr_store_relaxed(&d.count, 1);
		wr_store_relaxed(&d.total_ns, cases[i].ns);
		wr_store_relaxed(&d.min_ns, cases[i].ns);
		wr_store_relaxed(&d.max_ns, cases[i].ns);
		char *buf = NULL, want[256];
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		struct wr_out o;
		wr_out_begin(&o, f, WR_OUT_TEXT);
		wr_out_duration(&o, "d", "D.", &d);
		wr_out_end(&o);
		wr_out_begin(&o, f, WR_OUT_PROMETHEUS);
		wr_out_duration(&o, "d", "D.", &d);
		wr_out_end(&o);
		fclose(f);
		snprintf(want, sizeof want, "count=1 mean=%s min=%s max=%s total=%s\n",
			 cases[i].text, cases[i].text, cases[i].text, cases[i].text);
		ck_assert_msg(strstr(buf, want) != NULL, "%llu ns: got %s",
			      (unsigned long long)cases[i].ns, buf);
		snprintf(want, sizeof want, "\nwalrec_d_seconds_sum %s\n", cases[i].seconds);
		ck_assert_msg(strstr(buf, want) != NULL, "%llu ns: got %s",
			      (unsigned long long)cases[i].ns, buf);
		free(buf);
	}
}
END_TEST

START_TEST(test_metrics_out_escaping)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct wr_out o;
	wr_out_begin(&o, f, WR_OUT_PROMETHEUS);
	wr_out_value(&o, "v", "a\\b\nc", false, 1);
	wr_out_value(&o, "w", NULL, false, 2); /* no help: the name stands in */
	wr_out_end(&o);
	wr_out_begin(&o, f, WR_OUT_JSON);
	wr_out_value(&o, "q\"\\\n", NULL, false, 1);
	wr_out_end(&o);
	fclose(f);
	ck_assert_str_eq(buf, "# HELP walrec_v a\\\\b\\nc\n"
			      "# TYPE walrec_v gauge\n"
			      "walrec_v 1\n"
			      "# HELP walrec_w w\n"
			      "# TYPE walrec_w gauge\n"
			      "walrec_w 2\n"
			      "{\"q\\\"\\\\\\u000a\":1}\n");
	free(buf);
}
END_TEST

/* 1 if cmd is on PATH. */
static int
have_command(const char *cmd)
{
	char sh[256];
	snprintf(sh, sizeof sh, "command -v %s >/dev/null 2>&1", cmd);
	return system(sh) == 0;
}

/* Feed text to a shell command's stdin; its exit status. */
static int
pipe_to(const char *cmd, const char *text)
{
	FILE *p = popen(cmd, "w");
	ck_assert_ptr_nonnull(p);
	fputs(text, p);
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

START_TEST(test_metrics_out_json_parses)
{
	if (!have_command("python3")) {
		/* nothing to parse with: the exact-string test still holds */
		fprintf(stderr, "python3 not on PATH: JSON parse check skipped\n");
		return;
	}
	char *out = render(WR_OUT_JSON, NULL);
	ck_assert_int_eq(pipe_to("python3 -c 'import json,sys; d=json.load(sys.stdin); "
				 "assert d[\"test\"][\"append\"][\"p50_ns\"] == 768'",
				 out),
			 0);
	/* and a broken document is rejected, so the check can fail */
	out[strlen(out) - 2] = ' ';
	ck_assert_int_ne(pipe_to("python3 -c 'import json,sys; json.load(sys.stdin)' "
				 "2>/dev/null",
				 out),
			 0);
	free(out);
}
END_TEST

/* promtool prints lint problems on stdout; an accepted document prints nothing. */
static void
assert_promtool_clean(const char *text)
{
	char path[] = "/tmp/walrec-prom-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	char cmd[512];
	snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	char said[4096];
	size_t n = fread(said, 1, sizeof said - 1, p);
	said[n] = 0;
	int st = pclose(p);
	unlink(path);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 && n == 0,
		      "promtool check metrics: status %d: %s", st, said);
}

START_TEST(test_metrics_out_promtool_accepts)
{
	if (!have_command("promtool")) {
		/* CI installs it (Debian package prometheus) */
		fprintf(stderr, "promtool not on PATH: exposition lint skipped\n");
		return;
	}
	char *out = render(WR_OUT_PROMETHEUS, "channel=\"c1\"");
	assert_promtool_clean(out);
	free(out);
	out = render(WR_OUT_PROMETHEUS, NULL);
	assert_promtool_clean(out);
	free(out);
}
END_TEST

static Suite *
metrics_out_suite(void)
{
	Suite *s = suite_create("metrics_out");
	TCase *core = tcase_create("core");
	tcase_add_checked_fixture(core, setup_metrics, NULL);
	tcase_add_test(core, test_metrics_out_text_exact);
	tcase_add_test(core, test_metrics_out_json_exact);
	tcase_add_test(core, test_metrics_out_prometheus_exact);
	tcase_add_test(core, test_metrics_out_duration_units);
	tcase_add_test(core, test_metrics_out_escaping);
	tcase_add_test(core, test_metrics_out_json_parses);
	tcase_add_test(core, test_metrics_out_promtool_accepts);
	suite_add_tcase(s, core);
	return s;
}

WR_CHECK_MAIN(metrics_out_suite)
