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
#include <stdio.h>

#include "lib/stats.h"

enum wr_out_format { WR_OUT_TEXT, WR_OUT_PROMETHEUS, WR_OUT_JSON };

struct wr_out {
	FILE *f;
	enum wr_out_format format;
	const char *component; /* "manager", "segment_writer", ... */
	const char *labels;    /* extra Prometheus labels, e.g. "channel=\"x\"", or NULL */
	int json_depth;        /* internal */
	bool json_need_comma;  /* internal */
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

#endif
