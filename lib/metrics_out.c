/* SPDX-License-Identifier: MIT */
/* The metric emitter: text, Prometheus text exposition 0.0.4 and JSON (see metrics_out.h). */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lib/metrics_out.h"

/* Text lines: two spaces, the name padded to this width, then the values. */
#define OUT_TEXT_NAME_WIDTH 30

/* Histogram quantiles in every format, with their Prometheus and JSON names. */
static const struct {
	double q;
	const char *label;   /* Prometheus quantile label */
	const char *json_ns; /* JSON key, duration histograms */
	const char *json;    /* JSON key, count histograms */
} out_quantiles[] = {
	{ 0.5, "quantile=\"0.5\"", "p50_ns", "p50" },
	{ 0.9, "quantile=\"0.9\"", "p90_ns", "p90" },
	{ 0.99, "quantile=\"0.99\"", "p99_ns", "p99" },
	{ 0.999, "quantile=\"0.999\"", "p999_ns", "p999" },
	{ 0.9999, "quantile=\"0.9999\"", "p9999_ns", "p9999" },
};
static const char *const out_quantile_text[] = { "p50", "p90", "p99", "p99.9", "p99.99" };

/* A snapshot of a duration or the duration part of an operation. */
struct out_dur {
	uint64_t count, total_ns, min_ns, max_ns;
};

/* ---- number formatting ------------------------------------------------------ */

/*
 * Nanoseconds with an auto-scaled unit: "850ns", "1.50us", "12.35ms",
 * "2.000s". The unit steps up before the printed value would read 1000.00.
 */
void
wr_out_fmt_ns(char *buf, size_t n, uint64_t ns)
{
	double v = (double)ns;
	if (ns < 1000)
		snprintf(buf, n, "%" PRIu64 "ns", ns);
	else if (v < 999995.0)
		snprintf(buf, n, "%.2fus", v / 1e3);
	else if (v < 999995000.0)
		snprintf(buf, n, "%.2fms", v / 1e6);
	else
		snprintf(buf, n, "%.3fs", v / 1e9);
}

/* Nanoseconds as exact decimal seconds, trailing zeros dropped: 1500 -> "0.0000015". */
void
wr_out_fmt_seconds(char *buf, size_t n, uint64_t ns)
{
	uint64_t sec = ns / 1000000000u, frac = ns % 1000000000u;
	if (frac == 0) {
		snprintf(buf, n, "%" PRIu64, sec);
		return;
	}
	int digits = 9;
	while (frac % 10 == 0) {
		frac /= 10;
		digits--;
	}
	snprintf(buf, n, "%" PRIu64 ".%0*" PRIu64, sec, digits, frac);
}

/* ---- JSON ----------------------------------------------------------------- */

static void
out_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* Comma if needed, then "name": (name NULL: an array element, the comma only). */
static void
out_json_key(struct wr_out *o, const char *name)
{
	if (o->json_need_comma)
		fputc(',', o->f);
	if (name) {
		out_json_string(o->f, name);
		fputc(':', o->f);
	}
	o->json_need_comma = true;
}

/* Open an object ('{') or an array ('['); the closer is remembered per depth. */
static void
out_json_open_kind(struct wr_out *o, const char *name, char kind)
{
	if (name || o->json_depth > 0)
		out_json_key(o, name);
	fputc(kind, o->f);
	if (o->json_depth < WR_OUT_JSON_MAX_DEPTH)
		o->json_closers[o->json_depth] = kind == '[' ? ']' : '}';
	o->json_depth++;
	o->json_need_comma = false;
}

static void
out_json_open(struct wr_out *o, const char *name)
{
	out_json_open_kind(o, name, '{');
}

static void
out_json_close(struct wr_out *o)
{
	if (o->json_depth <= 0)
		return;
	o->json_depth--;
	fputc(o->json_depth < WR_OUT_JSON_MAX_DEPTH ? o->json_closers[o->json_depth] : '}', o->f);
	o->json_need_comma = true;
}

static void
out_json_u64(struct wr_out *o, const char *name, uint64_t v)
{
	out_json_key(o, name);
	fprintf(o->f, "%" PRIu64, v);
}

static void
out_json_dur_fields(struct wr_out *o, const struct out_dur *d)
{
	out_json_u64(o, "count", d->count);
	out_json_u64(o, "total_ns", d->total_ns);
	out_json_u64(o, "min_ns", d->count ? d->min_ns : 0);
	out_json_u64(o, "max_ns", d->max_ns);
}

/* ---- Prometheus ------------------------------------------------------------- */

/* walrec_<component>_<name><suffix> */
static void
out_prom_name(struct wr_out *o, const char *name, const char *suffix)
{
	if (o->component)
		fprintf(o->f, "walrec_%s_%s%s", o->component, name, suffix);
	else
		fprintf(o->f, "walrec_%s%s", name, suffix);
}

/* HELP text escapes backslash and newline (exposition format 0.0.4). */
static void
out_prom_help_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void
out_prom_header(struct wr_out *o, const char *name, const char *suffix, const char *help,
		const char *help_extra, const char *type)
{
	fputs("# HELP ", o->f);
	out_prom_name(o, name, suffix);
	fputc(' ', o->f);
	out_prom_help_text(o->f, help ? help : name);
	if (help_extra)
		out_prom_help_text(o->f, help_extra);
	fputs("\n# TYPE ", o->f);
	out_prom_name(o, name, suffix);
	fprintf(o->f, " %s\n", type);
}

/* One sample line: name{labels,extra} value */
static void
out_prom_sample(struct wr_out *o, const char *name, const char *suffix, const char *extra,
		const char *value)
{
	out_prom_name(o, name, suffix);
	bool labels = o->labels && *o->labels;
	bool more = extra && *extra;
	if (labels || more) {
		fputc('{', o->f);
		if (labels)
			fputs(o->labels, o->f);
		if (more)
			fprintf(o->f, "%s%s", labels ? "," : "", extra);
		fputc('}', o->f);
	}
	fprintf(o->f, " %s\n", value);
}

static void
out_prom_u64_labels(struct wr_out *o, const char *name, const char *suffix, const char *extra,
		    uint64_t v)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%" PRIu64, v);
	out_prom_sample(o, name, suffix, extra, buf);
}

static void
out_prom_u64(struct wr_out *o, const char *name, const char *suffix, uint64_t v)
{
	out_prom_u64_labels(o, name, suffix, NULL, v);
}

static void
out_prom_secs(struct wr_out *o, const char *name, const char *suffix, const char *extra,
	      uint64_t ns)
{
	char buf[40];
	wr_out_fmt_seconds(buf, sizeof buf, ns);
	out_prom_sample(o, name, suffix, extra, buf);
}

static void
out_prom_counter(struct wr_out *o, const char *name, const char *suffix, const char *help,
		 const char *help_extra, uint64_t v)
{
	out_prom_header(o, name, suffix, help, help_extra, "counter");
	out_prom_u64(o, name, suffix, v);
}

/* A duration: summary <name>_seconds (sum, count) plus gauges _seconds_min/_max. */
static void
out_prom_duration(struct wr_out *o, const char *name, const char *help,
		  const struct out_dur *d)
{
	out_prom_header(o, name, "_seconds", help, NULL, "summary");
	out_prom_secs(o, name, "_seconds_sum", NULL, d->total_ns);
	out_prom_u64(o, name, "_seconds_count", d->count);
	out_prom_header(o, name, "_seconds_min", help, " (shortest)", "gauge");
	out_prom_secs(o, name, "_seconds_min", NULL, d->count ? d->min_ns : 0);
	out_prom_header(o, name, "_seconds_max", help, " (longest)", "gauge");
	out_prom_secs(o, name, "_seconds_max", NULL, d->max_ns);
}

/* ---- text ----------------------------------------------------------------- */

static void
out_text_name(struct wr_out *o, const char *name)
{
	fprintf(o->f, "  %-*s ", OUT_TEXT_NAME_WIDTH, name);
}

static void
out_text_dur(struct wr_out *o, const struct out_dur *d)
{
	fprintf(o->f, "count=%" PRIu64, d->count);
	if (d->count == 0)
		return;
	char mean[32], min[32], max[32], total[32];
	wr_out_fmt_ns(mean, sizeof mean, d->total_ns / d->count);
	wr_out_fmt_ns(min, sizeof min, d->min_ns);
	wr_out_fmt_ns(max, sizeof max, d->max_ns);
	wr_out_fmt_ns(total, sizeof total, d->total_ns);
	fprintf(o->f, " mean=%s min=%s max=%s total=%s", mean, min, max, total);
}

/* ---- public --------------------------------------------------------------- */

void
wr_out_begin(struct wr_out *o, FILE *f, enum wr_out_format format)
{
	memset(o, 0, sizeof *o);
	o->f = f;
	o->format = format;
	if (format == WR_OUT_JSON)
		out_json_open(o, NULL);
}

void
wr_out_end(struct wr_out *o)
{
	if (o->format == WR_OUT_JSON) {
		while (o->json_depth > 0)
			out_json_close(o);
		fputc('\n', o->f);
	}
	fflush(o->f);
}

void
wr_out_component_begin(struct wr_out *o, const char *component)
{
	o->component = component;
	switch (o->format) {
	case WR_OUT_TEXT:
		if (o->labels && *o->labels)
			fprintf(o->f, "%s {%s}\n", component, o->labels);
		else
			fprintf(o->f, "%s\n", component);
		break;
	case WR_OUT_JSON:
		out_json_open(o, component);
		break;
	case WR_OUT_PROMETHEUS:
		break;
	}
}

void
wr_out_component_end(struct wr_out *o)
{
	if (o->format == WR_OUT_JSON && o->json_depth > 1)
		out_json_close(o);
	o->component = NULL;
}

void
wr_out_value(struct wr_out *o, const char *name, const char *help, bool is_counter, uint64_t v)
{
	switch (o->format) {
	case WR_OUT_TEXT:
		out_text_name(o, name);
		fprintf(o->f, "%" PRIu64 "\n", v);
		break;
	case WR_OUT_JSON:
		out_json_u64(o, name, v);
		break;
	case WR_OUT_PROMETHEUS:
		if (is_counter) {
			out_prom_counter(o, name, "_total", help, NULL, v);
		} else {
			out_prom_header(o, name, "", help, NULL, "gauge");
			out_prom_u64(o, name, "", v);
		}
		break;
	}
}

void
wr_out_counter(struct wr_out *o, const char *name, const char *help, const wr_counter_t *c)
{
	wr_out_value(o, name, help, true, wr_load_relaxed(&c->value));
}

void
wr_out_gauge(struct wr_out *o, const char *name, const char *help, const wr_gauge_t *g)
{
	wr_out_gauge_value(o, name, help, wr_load_relaxed(&g->value));
}

void
wr_out_duration(struct wr_out *o, const char *name, const char *help, const wr_duration_t *d)
{
	struct out_dur s = {
		.count = wr_load_relaxed(&d->count),
		.total_ns = wr_load_relaxed(&d->total_ns),
		.min_ns = wr_load_relaxed(&d->min_ns),
		.max_ns = wr_load_relaxed(&d->max_ns),
	};
	switch (o->format) {
	case WR_OUT_TEXT:
		out_text_name(o, name);
		out_text_dur(o, &s);
		fputc('\n', o->f);
		break;
	case WR_OUT_JSON:
		out_json_open(o, name);
		out_json_dur_fields(o, &s);
		out_json_close(o);
		break;
	case WR_OUT_PROMETHEUS:
		out_prom_duration(o, name, help, &s);
		break;
	}
}

void
wr_out_operation(struct wr_out *o, const char *name, const char *help,
		 const wr_operation_t *op)
{
	uint64_t samples = wr_load_relaxed(&op->samples);
	uint64_t successes = wr_load_relaxed(&op->successes);
	struct out_dur s = {
		.count = wr_load_relaxed(&op->count),
		.total_ns = wr_load_relaxed(&op->total_ns),
		.min_ns = wr_load_relaxed(&op->min_ns),
		.max_ns = wr_load_relaxed(&op->max_ns),
	};
	switch (o->format) {
	case WR_OUT_TEXT:
		out_text_name(o, name);
		fprintf(o->f, "samples=%" PRIu64 " successes=%" PRIu64 " ", samples, successes);
		out_text_dur(o, &s);
		fputc('\n', o->f);
		break;
	case WR_OUT_JSON:
		out_json_open(o, name);
		out_json_u64(o, "samples", samples);
		out_json_u64(o, "successes", successes);
		out_json_dur_fields(o, &s);
		out_json_close(o);
		break;
	case WR_OUT_PROMETHEUS:
		out_prom_counter(o, name, "_total", help, " (attempts)", samples);
		out_prom_counter(o, name, "_successes_total", help, " (successes)", successes);
		out_prom_duration(o, name, help, &s);
		break;
	}
}

/* A histogram of durations (ns) or of plain counts (!ns). */
static void
out_histogram(struct wr_out *o, const char *name, const char *help, const wr_histogram_t *h,
	      bool ns)
{
	uint64_t count = wr_load_relaxed(&h->count);
	uint64_t sum = wr_load_relaxed(&h->sum_ns);
	uint64_t max = wr_load_relaxed(&h->max_ns);
	uint64_t q[WR_ARRAY_SIZE(out_quantiles)];
	for (size_t i = 0; i < WR_ARRAY_SIZE(out_quantiles); i++)
		q[i] = wr_histogram_quantile(h, out_quantiles[i].q);
	char buf[40];

	switch (o->format) {
	case WR_OUT_TEXT:
		out_text_name(o, name);
		fprintf(o->f, "count=%" PRIu64, count);
		if (count > 0) {
			for (size_t i = 0; i <= WR_ARRAY_SIZE(out_quantiles) + 1; i++) {
				uint64_t v = i == 0 ? sum / count
					     : i <= WR_ARRAY_SIZE(out_quantiles) ? q[i - 1] : max;
				const char *label = i == 0 ? "mean"
						    : i <= WR_ARRAY_SIZE(out_quantiles)
							    ? out_quantile_text[i - 1]
							    : "max";
				if (ns)
					wr_out_fmt_ns(buf, sizeof buf, v);
				else
					snprintf(buf, sizeof buf, "%" PRIu64, v);
				fprintf(o->f, " %s=%s", label, buf);
			}
		}
		fputc('\n', o->f);
		break;
	case WR_OUT_JSON:
		out_json_open(o, name);
		out_json_u64(o, "count", count);
		out_json_u64(o, ns ? "sum_ns" : "sum", sum);
		out_json_u64(o, ns ? "max_ns" : "max", max);
		for (size_t i = 0; i < WR_ARRAY_SIZE(out_quantiles); i++)
			out_json_u64(o, ns ? out_quantiles[i].json_ns : out_quantiles[i].json, q[i]);
		out_json_close(o);
		break;
	case WR_OUT_PROMETHEUS: {
		const char *base = ns ? "_seconds" : "";
		char sum_sfx[24], count_sfx[24], max_sfx[24];
		snprintf(sum_sfx, sizeof sum_sfx, "%s_sum", base);
		snprintf(count_sfx, sizeof count_sfx, "%s_count", base);
		snprintf(max_sfx, sizeof max_sfx, "%s_max", base);
		out_prom_header(o, name, base, help, NULL, "summary");
		for (size_t i = 0; i < WR_ARRAY_SIZE(out_quantiles); i++) {
			if (ns)
				out_prom_secs(o, name, base, out_quantiles[i].label, q[i]);
			else
				out_prom_u64_labels(o, name, base, out_quantiles[i].label, q[i]);
		}
		if (ns)
			out_prom_secs(o, name, sum_sfx, NULL, sum);
		else
			out_prom_u64(o, name, sum_sfx, sum);
		out_prom_u64(o, name, count_sfx, count);
		out_prom_header(o, name, max_sfx, help, ns ? " (longest)" : " (largest)", "gauge");
		if (ns)
			out_prom_secs(o, name, max_sfx, NULL, max);
		else
			out_prom_u64(o, name, max_sfx, max);
		break;
	}
	}
}

void
wr_out_histogram(struct wr_out *o, const char *name, const char *help,
		 const wr_histogram_t *h)
{
	out_histogram(o, name, help, h, true);
}

void
wr_out_histogram_count(struct wr_out *o, const char *name, const char *help,
		       const wr_histogram_t *h)
{
	out_histogram(o, name, help, h, false);
}

void
wr_out_gauge_value(struct wr_out *o, const char *name, const char *help, int64_t v)
{
	switch (o->format) {
	case WR_OUT_TEXT:
		out_text_name(o, name);
		fprintf(o->f, "%" PRId64 "\n", v);
		break;
	case WR_OUT_JSON:
		out_json_key(o, name);
		fprintf(o->f, "%" PRId64, v);
		break;
	case WR_OUT_PROMETHEUS: {
		char buf[32];
		snprintf(buf, sizeof buf, "%" PRId64, v);
		out_prom_header(o, name, "", help, NULL, "gauge");
		out_prom_sample(o, name, "", NULL, buf);
		break;
	}
	}
}

void
wr_out_gauge_ns(struct wr_out *o, const char *name, const char *help, uint64_t ns)
{
	char buf[40];
	switch (o->format) {
	case WR_OUT_TEXT:
		out_text_name(o, name);
		wr_out_fmt_ns(buf, sizeof buf, ns);
		fprintf(o->f, "%s\n", buf);
		break;
	case WR_OUT_JSON:
		snprintf(buf, sizeof buf, "%s_ns", name);
		out_json_u64(o, buf, ns);
		break;
	case WR_OUT_PROMETHEUS:
		out_prom_header(o, name, "_seconds", help, NULL, "gauge");
		out_prom_secs(o, name, "_seconds", NULL, ns);
		break;
	}
}

/* ---- building blocks ------------------------------------------------------ */

void
wr_out_json_object_begin(struct wr_out *o, const char *key)
{
	if (o->format == WR_OUT_JSON)
		out_json_open_kind(o, key, '{');
}

void
wr_out_json_object_end(struct wr_out *o)
{
	if (o->format == WR_OUT_JSON)
		out_json_close(o);
}

void
wr_out_json_array_begin(struct wr_out *o, const char *key)
{
	if (o->format == WR_OUT_JSON)
		out_json_open_kind(o, key, '[');
}

void
wr_out_json_array_end(struct wr_out *o)
{
	if (o->format == WR_OUT_JSON)
		out_json_close(o);
}

void
wr_out_json_str(struct wr_out *o, const char *key, const char *v)
{
	if (o->format != WR_OUT_JSON)
		return;
	out_json_key(o, key);
	out_json_string(o->f, v);
}

void
wr_out_json_u64(struct wr_out *o, const char *key, uint64_t v)
{
	if (o->format == WR_OUT_JSON)
		out_json_u64(o, key, v);
}

void
wr_out_json_i64(struct wr_out *o, const char *key, int64_t v)
{
	if (o->format != WR_OUT_JSON)
		return;
	out_json_key(o, key);
	fprintf(o->f, "%" PRId64, v);
}

void
wr_out_json_bool(struct wr_out *o, const char *key, bool v)
{
	if (o->format != WR_OUT_JSON)
		return;
	out_json_key(o, key);
	fputs(v ? "true" : "false", o->f);
}

void
wr_out_prom_family(struct wr_out *o, const char *name, const char *suffix, const char *help,
		   const char *type)
{
	if (o->format == WR_OUT_PROMETHEUS)
		out_prom_header(o, name, suffix, help, NULL, type);
}

void
wr_out_prom_sample(struct wr_out *o, const char *name, const char *suffix,
		   const char *extra_labels, const char *value)
{
	if (o->format == WR_OUT_PROMETHEUS)
		out_prom_sample(o, name, suffix, extra_labels, value);
}
