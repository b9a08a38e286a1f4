/* SPDX-License-Identifier: MIT */
/*
 * One emitter for every metric, three renderings: human text (dump),
 * Prometheus text exposition 0.0.4 (collect), and JSON. Each component
 * writes its metrics once, through these calls, and gets all three.
 *
 * Names: the component's prefix and the metric name are joined as
 * walrec_<component>_<metric>; the emitter adds base units and suffixes
 * for Prometheus (_total for counters, _seconds for durations, histograms
 * as summaries with quantile labels) and keeps nanoseconds in text/JSON.
 */
#ifndef WR_METRICS_OUT_H
#define WR_METRICS_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/stats.h"

enum wr_out_format { WR_OUT_TEXT, WR_OUT_PROMETHEUS, WR_OUT_JSON };

#define WR_OUT_JSON_MAX_DEPTH 16

struct wr_out {
	FILE *f;
	enum wr_out_format format;
	const char *component; /* "manager", "segment_writer", ... */
	const char *labels;    /* extra Prometheus labels, e.g. "channel=\"x\"", or NULL */
	int json_depth;        /* internal */
	bool json_need_comma;  /* internal */
	char json_closers[WR_OUT_JSON_MAX_DEPTH]; /* internal: '}' or ']' per open level */
};

/* Start/end the whole document (JSON braces; nothing for the others). */
void wr_out_begin(struct wr_out *o, FILE *f, enum wr_out_format format);
void wr_out_end(struct wr_out *o);

/* Start/end one component's section ("manager": { ... } in JSON, a heading in text). */
void wr_out_component_begin(struct wr_out *o, const char *component);
void wr_out_component_end(struct wr_out *o);

void wr_out_counter(struct wr_out *o, const char *name, const char *help, const wr_counter_t *c);
void wr_out_gauge(struct wr_out *o, const char *name, const char *help, const wr_gauge_t *g);
void wr_out_duration(struct wr_out *o, const char *name, const char *help, const wr_duration_t *d);
void wr_out_operation(struct wr_out *o, const char *name, const char *help, const wr_operation_t *op);
void wr_out_histogram(struct wr_out *o, const char *name, const char *help, const wr_histogram_t *h);
/* A plain value that is not a metric struct (configured limits, sizes). */
void wr_out_value(struct wr_out *o, const char *name, const char *help, bool is_counter, uint64_t v);
/* A signed gauge value (an error code, a difference). */
void wr_out_gauge_value(struct wr_out *o, const char *name, const char *help, int64_t v);
/*
 * A gauge that is a duration in nanoseconds: text "name 1.50ms", JSON
 * "<name>_ns": N, Prometheus <name>_seconds (gauge).
 */
void wr_out_gauge_ns(struct wr_out *o, const char *name, const char *help, uint64_t ns);
/*
 * A log2 histogram of counts, not durations (e.g. events behind): the same
 * quantiles without units - text numbers, JSON keys without "_ns",
 * Prometheus summary <name> (no _seconds) and gauge <name>_max.
 */
void wr_out_histogram_count(struct wr_out *o, const char *name, const char *help,
			    const wr_histogram_t *h);

/*
 * Building blocks for sections that are not a list of metrics (status
 * lines, per-producer tables); each call does nothing in the formats it
 * is not for.
 *
 * JSON: key NULL inside an array. Objects and arrays nest; wr_out_end
 * closes whatever is still open.
 */
void wr_out_json_object_begin(struct wr_out *o, const char *key);
void wr_out_json_object_end(struct wr_out *o);
void wr_out_json_array_begin(struct wr_out *o, const char *key);
void wr_out_json_array_end(struct wr_out *o);
void wr_out_json_str(struct wr_out *o, const char *key, const char *v);
void wr_out_json_u64(struct wr_out *o, const char *key, uint64_t v);
void wr_out_json_i64(struct wr_out *o, const char *key, int64_t v);
void wr_out_json_bool(struct wr_out *o, const char *key, bool v);

/*
 * Prometheus: the HELP and TYPE lines of walrec_<component>_<name><suffix>
 * (component as set by wr_out_component_begin, or none), then its samples,
 * each with o->labels followed by extra_labels (may be NULL; written as
 * given, the caller escapes values).
 */
void wr_out_prom_family(struct wr_out *o, const char *name, const char *suffix, const char *help,
			const char *type);
void wr_out_prom_sample(struct wr_out *o, const char *name, const char *suffix,
			const char *extra_labels, const char *value);

/* Nanoseconds as text with an auto-scaled unit ("850ns", "1.50us", "12.35ms", "2.000s"). */
void wr_out_fmt_ns(char *buf, size_t n, uint64_t ns);
/* Nanoseconds as exact decimal seconds ("0.0000015"). */
void wr_out_fmt_seconds(char *buf, size_t n, uint64_t ns);

#endif
