#!/bin/sh
# SPDX-License-Identifier: MIT
# walrec stat output formats on a live recorder: --prometheus and the
# --metrics-file pass 'promtool check metrics'; --json (live, --watch and
# DIR) parses as JSON and holds every documented key. Needs promtool
# (Debian package prometheus) and jq or python3: skipped (77) without them.
# Run by 'make check' from the top build directory (also in VPATH/distcheck builds).
set -u

top_builddir=${top_builddir:-.}
. "$(dirname "$0")/cli_lib.sh"
walrec=$top_builddir/walrec
if [ ! -x "$walrec" ]; then
	echo "cli_stat_formats: $walrec not built" >&2
	exit 99
fi
promtool=$(command -v promtool)
jq=$(command -v jq)
python=$(command -v python3)
if [ -z "$promtool" ] && [ -z "$jq" ] && [ -z "$python" ]; then
	echo "cli_stat_formats: neither promtool nor jq/python3 installed: skipped" >&2
	exit 77
fi
if [ ! -d /dev/shm ]; then
	echo "cli_stat_formats: no /dev/shm" >&2
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/walrec-statf.XXXXXX") || exit 99
chan=clistatf.$$
rpid=
ppid_=
cleanup() {
	[ -n "$ppid_" ] && kill -KILL "$ppid_" 2>/dev/null && wait "$ppid_" 2>/dev/null
	[ -n "$rpid" ] && kill -KILL "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
	rm -rf "$tmp"
	rm -f "/dev/shm/walrec.$chan"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
skipped=0

# json_check FILE KEY...: FILE is one JSON object holding every KEY (a.b.0.c paths).
json_check() {
	f=$1
	shift
	if [ -n "$jq" ]; then
		"$jq" -e . "$f" >/dev/null 2>"$tmp/jq.err" || {
			fail "$f is not JSON: $(cat "$tmp/jq.err")"
			return
		}
		missing=$("$jq" -r '. as $d | $ARGS.positional[] |
			select(. as $p | $d | getpath($p | split(".") | map(tonumber? // .)) == null)' \
			--args "$@" <"$f")
		[ -z "$missing" ] || fail "$f: no key $(echo $missing)"
	else
		"$python" - "$f" "$@" <<'EOF' || fail "$f: JSON check failed"
import json, sys
doc = json.load(open(sys.argv[1]))
bad = 0
for key in sys.argv[2:]:
    v = doc
    for part in key.split("."):
        try:
            v = v[int(part)] if isinstance(v, list) else v[part]
        except (KeyError, IndexError, ValueError, TypeError):
            print("no key " + key, file=sys.stderr)
            bad = 1
            break
sys.exit(bad)
EOF
	fi
}

# A live recorder with a producer attached and appending.
"$walrec" record "$tmp/wal" --channel "$chan" --blocks 16 --max-hot 1 --max-cold 2 \
	--telemetry-interval 20ms --metrics-file "$tmp/m.prom" --metrics-interval 20ms \
	>/dev/null 2>"$tmp/rec.err" &
rpid=$!
wait_for grep -qs running "$tmp/rec.err" || fail "recorder did not start"
"$walrec" produce "$chan" --events 20000000 --rate 200000 >/dev/null 2>&1 &
ppid_=$!
attached() {
	"$walrec" stat --json "$chan" >"$tmp/live.json" 2>/dev/null &&
		grep -q '"producers":\[{' "$tmp/live.json" &&
		grep -q '"rotation_waits"' "$tmp/live.json"
}
wait_for attached || fail "no producer in the snapshot"
# Some rotations, compressions and deletions, so every metric has values.
busy() {
	"$walrec" stat --prometheus "$chan" >"$tmp/live.prom" 2>/dev/null &&
		grep -q '^walrec_segment_maintainer_deletion_successes_total{[^}]*} [1-9]' "$tmp/live.prom"
}
wait_for busy || fail "no deletion happened"
"$walrec" stat --json "$chan" >"$tmp/live.json" || fail "stat --json exit $?"
"$walrec" stat --watch 30ms --count 3 --json "$chan" >"$tmp/watch.json" || fail "stat --watch --json exit $?"

if [ -n "$promtool" ]; then
	for f in "$tmp/live.prom" "$tmp/m.prom"; do
		"$promtool" check metrics <"$f" >"$tmp/promtool.out" 2>&1 ||
			fail "promtool check metrics $f: $(cat "$tmp/promtool.out")"
		[ -s "$tmp/promtool.out" ] && fail "promtool has remarks on $f: $(cat "$tmp/promtool.out")"
		grep -q '^walrec_producer_appends_total{channel="'"$chan"'",producer="0",pid="'"$ppid_"'"} ' \
			"$f" || fail "$f: no per-producer series"
		grep -q '^walrec_manager_append_event_seconds{channel="'"$chan"'",quantile="0.9999"} ' \
			"$f" || fail "$f: no quantile series"
	done
else
	echo "cli_stat_formats: promtool not installed (Debian package prometheus): its check skipped" >&2
	skipped=$((skipped + 1))
fi

if [ -n "$jq" ] || [ -n "$python" ]; then
	# The documented keys (docs/telemetry.md, "walrec stat --json").
	json_check "$tmp/live.json" \
		source.kind source.name status \
		recorder.pid recorder.alive recorder.state recorder.epoch \
		snapshot.number snapshot.writer_pid snapshot.taken_realtime_ns snapshot.age_ns \
		snapshot.interval_ns snapshot.metrics_recorded snapshot.final \
		log.last_event_id log.sealed_event_id log.durable_event_id log.segment_index \
		log.meta_segment_index log.meta_offset log.meta_last_event_id log.latched_error \
		log.durable_lag_events log.durable_lag_ns \
		manager.init_active_segment.samples manager.events_appended \
		manager.append_event.count manager.append_event.p50_ns manager.append_event.p9999_ns \
		manager.append_event.max_ns manager.segment_rotation.count manager.rotation_waits \
		manager.work_planning.total_ns manager.persist_current_segment.count \
		manager.partial_seals manager.backpressure manager.stage_waits manager.quarantined \
		manager.torn_tails \
		manager.hot_segments manager.cold_segments \
		segment_writer.open_new.successes segment_writer.open_existing.samples \
		segment_writer.close.count segment_writer.write_block.max_ns \
		segment_writer.blocks_sealed segment_writer.partial_blocks_sealed \
		segment_writer.torn_tails_cut segment_writer.quarantine_copies \
		segment_writer.header_checksum_failures segment_writer.block_checksum_failures \
		segment_writer.chained_checksum_failures segment_writer.validation_failures \
		segment_preparer.get_next_segment_wait.count segment_preparer.get_next_segment_ready \
		segment_preparer.prepare.samples segment_preparer.prepare_failures \
		segment_preparer.queue_depth segment_preparer.last_error \
		segment_maintainer.loop_active segment_maintainer.loop_idle \
		segment_maintainer.close_segment.samples segment_maintainer.retention.count \
		segment_maintainer.compression.successes segment_maintainer.compression_in_bytes \
		segment_maintainer.compression_out_bytes segment_maintainer.deletion.successes \
		segment_maintainer.max_hot_segments segment_maintainer.max_cold_segments \
		segment_maintainer.queue_depth \
		durability.sync.samples durability.sync.max_ns durability.owner_sync.samples \
		durability.meta_flush.successes \
		durability.rounds durability.seal_requests durability.waits \
		durability.round_lag_events.p99 durability.round_lag_events.max \
		durability.durable_event_id durability.sync_interval_ns \
		meta_store.maintenance_meta_flush.count meta_store.flush_failures \
		flusher.write.samples flusher.write.max_ns flusher.blocks_written \
		flusher.written_bytes flusher.full_waits.count flusher.wakeups \
		flusher.conditioned_bytes flusher.stage_slots \
		channel.producers_max channel.ring_capacity channel.attaches \
		channel.producers_active channel.producers_attaching channel.producers_dead \
		channel.producers_rejected channel.taken channel.released channel.durable_acks \
		channel.rejected channel.dead channel.reclaimed channel.resumed_released \
		channel.resumed_retaken channel.recorder_parks channel.take_log_full \
		channel.producer_wakes \
		channel.producer_full_waits channel.producer_recorder_wakes channel.producers_omitted \
		producers.0.entry producers.0.pid producers.0.state producers.0.reject_reason \
		producers.0.tag producers.0.attach_realtime_ns producers.0.appends \
		producers.0.released producers.0.durable producers.0.ring_used \
		producers.0.full_waits producers.0.recorder_wakes
	grep -q '"status":"live"' "$tmp/live.json" || fail "live JSON: status is not live"
	grep -q '"pid":'"$ppid_"',' "$tmp/live.json" || fail "live JSON: producer pid missing"
	# --watch --json: one object per line, each with the rates.
	n=$(wc -l <"$tmp/watch.json")
	[ "$n" -eq 3 ] || fail "--watch --json --count 3 printed $n lines"
	i=0
	while IFS= read -r line; do
		i=$((i + 1))
		printf '%s\n' "$line" >"$tmp/w$i.json"
		json_check "$tmp/w$i.json" status snapshot.number rates.window_ns \
			rates.events_appended rates.blocks_sealed rates.syncs rates.meta_flushes \
			rates.rotations rates.compressions rates.compression_in_bytes rates.deletions \
			rates.channel_taken rates.durable_acks rates.recorder_parks rates.full_waits \
			rates.recorder_wakes rates.written_bytes rates.producers.0.appends \
			rates.producers.0.entry
	done <"$tmp/watch.json"
	# The last view of a watch at 30 ms over 20 ms snapshots has a rate window.
	grep -q '"window_ns":0,' "$tmp/w3.json" && fail "--watch: no rates in the third view"
fi

kill -KILL "$ppid_" 2>/dev/null
wait "$ppid_" 2>/dev/null
ppid_=
kill -TERM "$rpid"
wait "$rpid" || fail "recorder exit $?"
rpid=

if [ -n "$jq" ] || [ -n "$python" ]; then
	"$walrec" stat --json "$tmp/wal" >"$tmp/dir.json" || fail "stat --json DIR exit $?"
	json_check "$tmp/dir.json" source.kind source.path recorder.pid recorder.alive \
		totals.segments totals.hot totals.cold totals.hot_bytes totals.cold_bytes \
		totals.first_event_id totals.last_event_id totals.events \
		meta.present meta.agrees meta.segment_index meta.offset meta.last_event_id \
		meta.message segments.0.index segments.0.name segments.0.state \
		segments.0.duplicate segments.0.size_bytes segments.0.ids_known \
		segments.0.first_event_id segments.0.last_event_id segments.0.events \
		segments.0.problem problems other_files
	grep -q '"agrees":true' "$tmp/dir.json" || fail "DIR JSON: wal.meta does not agree"
else
	echo "cli_stat_formats: neither jq nor python3 installed: JSON checks skipped" >&2
	skipped=$((skipped + 1))
fi

if [ "$fails" -ne 0 ]; then
	echo "cli_stat_formats: $fails failure(s)" >&2
	exit 1
fi
[ "$skipped" -ne 0 ] && exit 77
exit 0
