/* SPDX-License-Identifier: MIT */
/* The embedded recorder: public API over the Manager and its workers. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <walrec/recorder.h>

#include "lib/log.h"
#include "lib/metrics_out.h"
#include "lib/thread.h"
#include "recorder/recorder_impl.h"

void
walrec_recorder_config_init(walrec_recorder_config_t *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->num_blocks = 4096;
	cfg->max_hot_segments = 4;
	cfg->max_cold_segments = 0;
	cfg->sync_interval_us = 1000;
	cfg->compression = true;
	cfg->prefix = NULL;
}

int
wr_recorder_config_check(const walrec_recorder_config_t *cfg)
{
	if (cfg->num_blocks < WALREC_RECORDER_MIN_BLOCKS ||
	    cfg->num_blocks > WALREC_RECORDER_MAX_BLOCKS) {
		wr_log_error("recorder config: num_blocks %u is outside %u..%u", cfg->num_blocks,
			     WALREC_RECORDER_MIN_BLOCKS, WALREC_RECORDER_MAX_BLOCKS);
		return -EINVAL;
	}
	if (cfg->max_hot_segments > WALREC_RECORDER_MAX_SEGMENTS) {
		wr_log_error("recorder config: max_hot_segments %u is outside 0..%u (0: no limit)",
			     cfg->max_hot_segments, WALREC_RECORDER_MAX_SEGMENTS);
		return -EINVAL;
	}
	if (cfg->max_cold_segments > WALREC_RECORDER_MAX_SEGMENTS) {
		wr_log_error("recorder config: max_cold_segments %u is outside 0..%u (0: no limit)",
			     cfg->max_cold_segments, WALREC_RECORDER_MAX_SEGMENTS);
		return -EINVAL;
	}
	if (cfg->sync_interval_us > WALREC_RECORDER_MAX_SYNC_INTERVAL_US) {
		wr_log_error("recorder config: sync_interval_us %u is outside 0..%u",
			     cfg->sync_interval_us, WALREC_RECORDER_MAX_SYNC_INTERVAL_US);
		return -EINVAL;
	}
	if (wr_thread_check_mask(cfg->worker_cpus) != 0) {
		wr_log_error("recorder config: worker_cpus 0x%llx names a CPU this machine does "
			     "not have (bit n is CPU n; 0 for no pinning)",
			     (unsigned long long)cfg->worker_cpus);
		return -EINVAL;
	}
	if (cfg->stage_blocks != 0 &&
	    (cfg->stage_blocks < WALREC_RECORDER_MIN_STAGE_BLOCKS ||
	     cfg->stage_blocks > WALREC_RECORDER_MAX_STAGE_BLOCKS ||
	     (cfg->stage_blocks & (cfg->stage_blocks - 1)) != 0)) {
		wr_log_error("recorder config: stage_blocks %u is not a power of two in %u..%u "
			     "(0: the default %u)",
			     cfg->stage_blocks, WALREC_RECORDER_MIN_STAGE_BLOCKS,
			     WALREC_RECORDER_MAX_STAGE_BLOCKS, WR_STAGE_DEFAULT_SLOTS);
		return -EINVAL;
	}
	if (cfg->prefix && (strlen(cfg->prefix) > WALREC_RECORDER_MAX_PREFIX ||
			    strchr(cfg->prefix, '/') != NULL)) {
		wr_log_error("recorder config: prefix must be at most %u bytes without '/'",
			     WALREC_RECORDER_MAX_PREFIX);
		return -EINVAL;
	}
	return 0;
}

static void
recorder_free(struct walrec_recorder *r, int stage)
{
	if (stage >= 4)
		wr_meta_coordinator_fini(&r->coordinator);
	if (stage >= 3)
		wr_segment_maintainer_fini(&r->maintainer);
	if (stage >= 2)
		wr_segment_preparer_fini(&r->preparer);
	if (stage >= 1)
		wr_manager_fini(&r->manager);
	free(r);
}

int
walrec_recorder_open(walrec_recorder_t **out, const char *dir,
		     const walrec_recorder_config_t *config)
{
	if (out == NULL || dir == NULL || dir[0] == '\0')
		return -EINVAL;
	*out = NULL;
	walrec_recorder_config_t cfg;
	if (config)
		cfg = *config;
	else
		walrec_recorder_config_init(&cfg);
	int rc = wr_recorder_config_check(&cfg);
	if (rc != 0)
		return rc;

	struct walrec_recorder *r = aligned_alloc(WR_CACHELINE,
						  (sizeof *r + WR_CACHELINE - 1) & ~(size_t)(WR_CACHELINE - 1));
	if (r == NULL)
		return -ENOMEM;
	memset(r, 0, sizeof *r);
	if (cfg.prefix && cfg.prefix[0]) {
		strcpy(r->prefix, cfg.prefix);
		cfg.prefix = r->prefix;
	} else {
		cfg.prefix = NULL;
	}
	r->config = cfg;
	struct wr_recorder_metrics *mx = &r->metrics;

	rc = wr_meta_store_init(&r->meta, dir, NULL);
	if (rc != 0) {
		free(r);
		return rc;
	}
	struct wr_manager_config mc = { .num_blocks = cfg.num_blocks, .prefix = cfg.prefix,
					.stage_slots = cfg.stage_blocks,
					.stage_metrics = &mx->flusher };
	rc = wr_manager_init(&r->manager, dir, &mc, &r->meta, &mx->manager, &mx->writer);
	if (rc != 0) {
		free(r);
		return rc;
	}
	int stage = 1;
	struct wr_manager *m = &r->manager;
	rc = wr_manager_recover(m, &mx->writer);
	if (rc != 0)
		goto fail;

	rc = wr_segment_preparer_init(&r->preparer, dir, cfg.prefix, m->next_index, cfg.num_blocks,
				      &mx->writer, &mx->preparer);
	if (rc != 0)
		goto fail;
	stage = 2;
	rc = wr_segment_maintainer_init(&r->maintainer, dir, cfg.prefix, cfg.max_hot_segments,
					cfg.max_cold_segments, cfg.compression, m, &r->coordinator,
					&mx->maintainer, &mx->manager.hot_segments,
					&mx->manager.cold_segments);
	if (rc != 0)
		goto fail;
	stage = 3;
	rc = wr_meta_coordinator_init(&r->coordinator, dir, cfg.sync_interval_us, m->last_id, m,
				      &r->maintainer, &mx->meta_store, &mx->durability);
	if (rc != 0)
		goto fail;
	stage = 4;
	wr_manager_attach(m, &r->preparer, &r->maintainer, &r->coordinator);

	/* Recovery synced what it found: name it in wal.meta now. */
	struct wr_sealed_pos sp = wr_manager_sealed_pos(m);
	if (!wr_meta_coordinator_flush_meta(&r->coordinator, sp.segment_index, sp.end, sp.last_id)) {
		rc = -EIO;
		goto fail;
	}

	uint64_t cpus = cfg.worker_cpus;
	rc = wr_stage_start(&m->stage, cpus);
	if (rc == 0)
		rc = wr_segment_preparer_start(&r->preparer, cpus);
	if (rc == 0)
		rc = wr_segment_maintainer_start(&r->maintainer, m->active_index_at_open, cpus);
	if (rc == 0)
		rc = wr_meta_coordinator_start(&r->coordinator, cpus);
	if (rc != 0) {
		wr_meta_coordinator_stop(&r->coordinator);
		wr_segment_preparer_stop(&r->preparer);
		wr_segment_maintainer_stop(&r->maintainer, UINT32_MAX);
		wr_stage_stop(&m->stage);
		goto fail;
	}
	r->owner = pthread_self();
	r->open = true;
	*out = r;
	return 0;
fail:
	recorder_free(r, stage);
	return rc;
}

int
walrec_recorder_append(walrec_recorder_t *rec, const walrec_event_t *ev, uint64_t *assigned_id)
{
	return wr_manager_append(&rec->manager, ev, assigned_id);
}

int
walrec_recorder_poll(walrec_recorder_t *rec)
{
	struct wr_manager *m = &rec->manager;
	/* Relaxed: as on the append path. SLEEPING alone is not acted on:
	 * without an append there is nothing to wake the coordinator for. */
	uint32_t a = wr_load_relaxed(&m->attention);
	if ((a & ~(uint32_t)WR_ATTN_SLEEPING) == 0)
		return 0;
	return wr_manager_handle_attention(m, a & ~(uint32_t)WR_ATTN_SLEEPING);
}

/*
 * The owner waits: nobody else can seal its partial block, and the thread
 * has nothing better to do than the sync itself. Seal, write out what is
 * staged and fdatasync here, which saves the two thread hand-offs of
 * asking the coordinator.
 */
static void
recorder_owner_sync(struct walrec_recorder *rec, uint64_t event_id)
{
	struct wr_manager *m = &rec->manager;
	if (wr_meta_coordinator_durable(&rec->coordinator) >= event_id)
		return;
	if (wr_manager_seal_now(m) > 0)
		wr_counter_inc(&m->metrics->partial_seals);
	wr_meta_coordinator_sync_now(&rec->coordinator);
}

int
walrec_recorder_sync(walrec_recorder_t *rec)
{
	struct wr_manager *m = &rec->manager;
	if (!rec->open)
		return -WALREC_ECLOSED;
	int err = wr_manager_latched(m);
	if (err != 0)
		return err;
	if (m->last_id == 0)
		return 0;
	recorder_owner_sync(rec, m->last_id);
	return wr_meta_coordinator_wait(&rec->coordinator, m->last_id, UINT64_MAX);
}

int
walrec_recorder_wait_durable(walrec_recorder_t *rec, uint64_t event_id, uint64_t timeout_ns)
{
	if (rec == NULL)
		return -EINVAL;
	if (rec->open && pthread_equal(pthread_self(), rec->owner) && event_id <= rec->manager.last_id &&
	    wr_manager_latched(&rec->manager) == 0)
		recorder_owner_sync(rec, event_id);
	return wr_meta_coordinator_wait(&rec->coordinator, event_id, timeout_ns);
}

int
walrec_recorder_meta_state(walrec_recorder_t *rec, walrec_recorder_state_t *st)
{
	if (rec == NULL || st == NULL)
		return -EINVAL;
	struct wr_manager *m = &rec->manager;
	memset(st, 0, sizeof *st);
	struct wr_sealed_pos sp = wr_manager_sealed_pos(m);
	struct wr_meta_state ms = wr_meta_store_get_state(&rec->coordinator.durable_meta);
	st->last_event_id = wr_load_relaxed(&m->appended_id);
	st->sealed_event_id = sp.last_id;
	st->durable_event_id = wr_meta_coordinator_durable(&rec->coordinator);
	st->segment_index = sp.segment_index;
	st->meta_segment_index = ms.segment_index;
	st->meta_offset = ms.offset;
	st->meta_last_event_id = ms.last_event_id;
	st->latched_error = wr_manager_latched(m);
	return 0;
}

int
walrec_recorder_close(walrec_recorder_t *rec)
{
	if (rec == NULL || !rec->open)
		return 0;
	struct wr_manager *m = &rec->manager;
	rec->open = false;
	/* Stop accepting: appends from now on return -WALREC_ECLOSED. */
	atomic_fetch_or_explicit(&m->attention, WR_ATTN_CLOSED, memory_order_relaxed);
	uint32_t active_index = m->active ? m->active->writer.segment_index : UINT32_MAX;

	/* The coordinator first, so nobody syncs the active writer while it is
	 * closed here; the preparer removes the segments it made and nobody used. */
	wr_meta_coordinator_stop(&rec->coordinator);
	wr_segment_preparer_stop(&rec->preparer);
	int rc = wr_manager_close_active(m); /* seal, write out, final header, fdatasync */
	wr_stage_stop(&m->stage);
	int rc2 = wr_segment_maintainer_stop(&rec->maintainer, rc == 0 ? active_index : UINT32_MAX);
	if (rc == 0)
		rc = rc2;

	/* Every segment is synced and closed: the whole log is durable. */
	if (rc == 0 && wr_manager_latched(m) == 0) {
		struct wr_sealed_pos sp = wr_manager_sealed_pos(m);
		wr_meta_coordinator_publish(&rec->coordinator, m->last_id);
		if (!wr_meta_coordinator_flush_meta(&rec->coordinator, sp.segment_index, sp.end,
						    sp.last_id))
			rc = -EIO;
	}
	if (rc == 0)
		rc = wr_manager_latched(m);
	wr_meta_coordinator_mark_closed(&rec->coordinator);
	rec->close_rc = rc;
	return rc;
}

void
walrec_recorder_destroy(walrec_recorder_t *rec)
{
	if (rec == NULL)
		return;
	walrec_recorder_close(rec);
	recorder_free(rec, 4);
}

/* ---- telemetry ------------------------------------------------------------ */

static void
writer_metrics_copy(struct wr_segment_writer_metrics *d, const struct wr_segment_writer_metrics *s)
{
	wr_operation_copy(&d->open_new, &s->open_new);
	wr_operation_copy(&d->open_existing, &s->open_existing);
	wr_operation_copy(&d->close, &s->close);
	wr_duration_copy(&d->write_block, &s->write_block);
	wr_counter_copy(&d->blocks_sealed, &s->blocks_sealed);
	wr_counter_copy(&d->partial_blocks_sealed, &s->partial_blocks_sealed);
	wr_counter_copy(&d->header_checksum_failures, &s->header_checksum_failures);
	wr_counter_copy(&d->block_checksum_failures, &s->block_checksum_failures);
	wr_counter_copy(&d->chained_checksum_failures, &s->chained_checksum_failures);
	wr_counter_copy(&d->validation_failures, &s->validation_failures);
	wr_counter_copy(&d->torn_tails_cut, &s->torn_tails_cut);
	wr_counter_copy(&d->quarantine_copies, &s->quarantine_copies);
}

static void
writer_metrics_emit(const struct wr_segment_writer_metrics *m, struct wr_out *o)
{
	wr_out_component_begin(o, "segment_writer");
	wr_out_operation(o, "open_new", "Segments created.", &m->open_new);
	wr_out_operation(o, "open_existing", "Segments reopened by recovery.", &m->open_existing);
	wr_out_operation(o, "close", "Segments closed.", &m->close);
	wr_out_duration(o, "write_block", "Sealing one block.", &m->write_block);
	wr_out_counter(o, "blocks_sealed", "Blocks sealed.", &m->blocks_sealed);
	wr_out_counter(o, "partial_blocks_sealed", "Blocks sealed with fewer than 256 events.",
		       &m->partial_blocks_sealed);
	wr_out_counter(o, "torn_tails_cut", "Torn tails cut at reopen.", &m->torn_tails_cut);
	wr_out_counter(o, "quarantine_copies",
		       "Segments copied aside before a cut that had non-empty blocks after it.",
		       &m->quarantine_copies);
	wr_out_counter(o, "header_checksum_failures", "Segment or block headers whose checksum failed.",
		       &m->header_checksum_failures);
	wr_out_counter(o, "block_checksum_failures",
		       "Blocks whose payload checksum failed.",
		       &m->block_checksum_failures);
	wr_out_counter(o, "chained_checksum_failures",
		       "Blocks whose chained checksum did not follow the previous block.",
		       &m->chained_checksum_failures);
	wr_out_counter(o, "validation_failures",
		       "Blocks or headers that failed another validity rule.",
		       &m->validation_failures);
	wr_out_component_end(o);
}

void
wr_recorder_metrics_copy(const struct walrec_recorder *rec, struct wr_recorder_metrics *dst)
{
	const struct wr_recorder_metrics *s = &rec->metrics;
	wr_manager_metrics_copy(&dst->manager, &s->manager);
	writer_metrics_copy(&dst->writer, &s->writer);
	wr_segment_preparer_metrics_copy(&dst->preparer, &s->preparer);
	wr_segment_maintainer_metrics_copy(&dst->maintainer, &s->maintainer);
	wr_meta_coordinator_metrics_copy(&dst->durability, &s->durability);
	wr_meta_store_metrics_copy(&dst->meta_store, &s->meta_store);
	wr_stage_metrics_copy(&dst->flusher, &s->flusher);
	uint64_t a = wr_load_relaxed(&rec->manager.appended_id);
	dst->events_appended = a - rec->manager.first_id_at_open;
}

void
wr_recorder_metrics_emit_sections(const struct wr_recorder_metrics *snap, struct wr_out *o)
{
	wr_manager_metrics_emit(&snap->manager, snap->events_appended, o);
	writer_metrics_emit(&snap->writer, o);
	wr_segment_preparer_metrics_emit(&snap->preparer, o);
	wr_segment_maintainer_metrics_emit(&snap->maintainer, o);
	wr_meta_coordinator_metrics_emit(&snap->durability, o);
	wr_meta_store_metrics_emit(&snap->meta_store, o);
	wr_stage_metrics_emit(&snap->flusher, o);
}

void
wr_recorder_metrics_emit(const struct wr_recorder_metrics *snap, FILE *f, int format)
{
	struct wr_out o;
	wr_out_begin(&o, f, format == WALREC_METRICS_PROMETHEUS ? WR_OUT_PROMETHEUS
			    : format == WALREC_METRICS_JSON     ? WR_OUT_JSON
								: WR_OUT_TEXT);
	wr_recorder_metrics_emit_sections(snap, &o);
	wr_out_end(&o);
}

int
walrec_recorder_dump_metrics(walrec_recorder_t *rec, FILE *f, int format)
{
	if (rec == NULL || f == NULL || format < WALREC_METRICS_TEXT || format > WALREC_METRICS_JSON)
		return -EINVAL;
	struct wr_recorder_metrics *snap = aligned_alloc(WR_CACHELINE, sizeof *snap);
	if (snap == NULL)
		return -ENOMEM;
	memset(snap, 0, sizeof *snap);
	wr_recorder_metrics_copy(rec, snap);
	wr_recorder_metrics_emit(snap, f, format);
	free(snap);
	return 0;
}
