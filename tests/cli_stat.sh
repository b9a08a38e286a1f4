#!/bin/sh
# SPDX-License-Identifier: MIT
# walrec stat end to end: flags and errors, exact counters after a scripted
# run (events, rotations, compressions, deletions, a forced checksum
# failure), --watch without a terminal and its stop on SIGINT, a dead
# recorder, corrupt snapshots, --metrics-file, and 'walrec stat DIR'.
# Run by 'make check' from the top build directory (also in VPATH/distcheck builds).
set -u

top_builddir=${top_builddir:-.}
. "$(dirname "$0")/cli_lib.sh"
walrec=$top_builddir/walrec
if [ ! -x "$walrec" ]; then
	echo "cli_stat: $walrec not built" >&2
	exit 99
fi
if [ ! -d /dev/shm ]; then
	echo "cli_stat: no /dev/shm" >&2
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/walrec-stat.XXXXXX") || exit 99
chan=clistat.$$
rpid=
cleanup() {
	[ -n "$rpid" ] && kill -KILL "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
	rm -rf "$tmp"
	rm -f "/dev/shm/walrec.$chan" "/dev/shm/walrec.$chan.d" "/dev/shm/walrec.$chan.m"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# prom_value FILE METRIC: the value of the sample METRIC{channel="..."} in FILE.
prom_value() {
	sed -n "s/^$2{[^}]*} //p" "$1" | head -1
}

# ---- flags and errors ----
expect 0 "stat --help" -- "$walrec" stat --help
grep -q -- "--prometheus" "$tmp/out" || fail "stat --help does not list --prometheus"
expect 2 "stat without a target" -- "$walrec" stat
expect 2 "stat bad flag" -- "$walrec" stat "$chan" --bogus
expect 2 "stat --json --prometheus" -- "$walrec" stat "$chan" --json --prometheus
expect 2 "stat --watch too short" -- "$walrec" stat --watch 5ms "$chan"
expect 2 "stat --watch not a duration" -- "$walrec" stat --watch=soon "$chan"
expect 2 "stat --count without --watch" -- "$walrec" stat --count 2 "$chan"
expect 2 "stat --watch --prometheus" -- "$walrec" stat --watch --prometheus "$chan"
expect 2 "stat two targets" -- "$walrec" stat a b
expect 2 "stat bad channel name" -- "$walrec" stat 'bad name!'
grep -q "bad channel name" "$tmp/err" || fail "bad name: no clear message"
expect 2 "stat --channel with a slash" -- "$walrec" stat --channel a/b
grep -q "bad channel name" "$tmp/err" || fail "slash in --channel: no clear message"
expect 2 "stat missing channel" -- "$walrec" stat "$chan.none"
grep -q "no channel /walrec.$chan.none" "$tmp/err" || fail "missing channel: $(cat "$tmp/err")"
expect 2 "stat missing directory" -- "$walrec" stat "$tmp/nodir/"
expect 2 "stat --dir on a file" -- "$walrec" stat --dir "$tmp/err"
grep -q "not a directory" "$tmp/err" || fail "--dir on a file: $(cat "$tmp/err")"
expect 2 "stat --prometheus on a directory" -- "$walrec" stat --prometheus "$tmp"
expect 2 "record --telemetry-interval too short" -- \
	"$walrec" record "$tmp/x" --channel "$chan" --telemetry-interval 1ms
expect 2 "record --metrics-interval without --metrics-file" -- \
	"$walrec" record "$tmp/x" --channel "$chan" --metrics-interval 1s
expect 2 "record --metrics-file in a missing directory" -- \
	"$walrec" record "$tmp/x" --channel "$chan" --metrics-file "$tmp/no/such/m.prom"
grep -q "cannot create" "$tmp/err" || fail "bad --metrics-file: $(cat "$tmp/err")"
[ -e "/dev/shm/walrec.$chan" ] && fail "a refused recorder created its channel"

# ---- the scripted run ----
# Phase 1: 5000 events in segments of 16 blocks (4096 events); no sync
# interval, so blocks fill completely: segment 1 holds 1..4096, segment 2
# three full blocks and a partial fourth (136 events), sealed at stop.
wal=$tmp/wal
"$walrec" record "$wal" --channel "$chan" --blocks 16 --max-hot 100 --sync-interval-us 0 \
	--telemetry-interval 10ms >/dev/null 2>"$tmp/r1.err" &
rpid=$!
wait_for grep -qs running "$tmp/r1.err" || fail "recorder (phase 1) did not start"
expect 0 "produce 5000" -- "$walrec" produce "$chan" --events 5000
kill -TERM "$rpid"
wait "$rpid" || fail "recorder (phase 1) exit $?"
rpid=
# Damage the payload of segment 2's last block (block 3): at restart the
# writer finds one block checksum failure, cuts the block (a torn tail) and
# finds the closed header's counts disagreeing (a validation failure).
printf '\377' | dd of="$wal/00000002.wal" bs=1 seek=$((64 + 3 * 16448 + 64 + 20)) \
	conv=notrunc 2>/dev/null || exit 99

# Phase 2: 39936 events (whole blocks only, so everything gets sealed).
# Segment 2 continues after its 3 valid blocks (room for 13 blocks = 3328
# events); the other 36608 need 9 rotations (8 full segments, and 15 blocks
# = 3840 events in segment 11). Closed hot segments: 1 and 2..10; keeping 1
# hot compresses 9, keeping 3 cold deletes 6. Every block is full, so every
# event is sealed and released at once (durability, with no sync interval,
# depends on when segments close: not counted here).
"$walrec" record "$wal" --channel "$chan" --blocks 16 --max-hot 1 --max-cold 3 \
	--sync-interval-us 0 --telemetry-interval 10ms >/dev/null 2>"$tmp/r2.err" &
rpid=$!
wait_for grep -qs running "$tmp/r2.err" || fail "recorder (phase 2) did not start"
expect 0 "produce 39936" -- "$walrec" produce "$chan" --events 39936
settled() {
	"$walrec" stat "$chan" --prometheus >"$tmp/p.txt" 2>/dev/null || return 1
	[ "$(prom_value "$tmp/p.txt" walrec_segment_maintainer_deletion_successes_total)" = 6 ] &&
		[ "$(prom_value "$tmp/p.txt" walrec_manager_cold_segments)" = 3 ] &&
		[ "$(prom_value "$tmp/p.txt" walrec_channel_released_total)" = 39936 ] &&
		[ "$(prom_value "$tmp/p.txt" walrec_channel_producers_active)" = 0 ]
}
wait_for settled || fail "counters did not settle"
if grep -q '^walrec_telemetry_snapshots_total' "$tmp/p.txt" &&
	[ "$("$walrec" stat "$chan" --json | grep -c '"metrics_recorded":true')" -eq 1 ]; then
	for kv in \
		walrec_recorder_up=1 \
		walrec_manager_events_appended_total=39936 \
		walrec_channel_taken_total=39936 \
		walrec_channel_released_total=39936 \
		walrec_channel_attaches_total=2 \
		walrec_channel_producers_active=0 \
		walrec_channel_rejected_total=0 \
		walrec_channel_dead_total=0 \
		walrec_manager_segment_rotation_seconds_count=9 \
		walrec_manager_torn_tails_total=1 \
		walrec_manager_hot_segments=1 \
		walrec_manager_cold_segments=3 \
		walrec_segment_writer_block_checksum_failures_total=1 \
		walrec_segment_writer_header_checksum_failures_total=0 \
		walrec_segment_writer_chained_checksum_failures_total=0 \
		walrec_segment_writer_validation_failures_total=1 \
		walrec_segment_writer_torn_tails_cut_total=1 \
		walrec_segment_writer_quarantine_copies_total=0 \
		walrec_segment_writer_open_existing_successes_total=1 \
		walrec_segment_maintainer_compression_total=9 \
		walrec_segment_maintainer_compression_successes_total=9 \
		walrec_segment_maintainer_deletion_total=6 \
		walrec_segment_maintainer_deletion_successes_total=6 \
		walrec_segment_maintainer_max_hot_segments=1 \
		walrec_segment_maintainer_max_cold_segments=3 \
		walrec_segment_writer_blocks_sealed_total=156 \
		walrec_segment_writer_partial_blocks_sealed_total=0; do
		m=${kv%=*}
		want=${kv#*=}
		got=$(prom_value "$tmp/p.txt" "$m")
		[ "$got" = "$want" ] || fail "$m: $got, expected $want"
	done
	# Bytes in: 9 segments of 64 + 16 * 16448 bytes each.
	got=$(prom_value "$tmp/p.txt" walrec_segment_maintainer_compression_in_bytes_total)
	[ "$got" = $((9 * (64 + 16 * 16448))) ] || fail "compression_in_bytes: $got"
else
	echo "cli_stat: metrics are not recorded in this build; exact counters skipped" >&2
fi

# The human view of the live recorder.
expect 0 "stat NAME (live)" -- "$walrec" stat "$chan"
grep -q "^channel $chan: live; recorder pid $rpid alive (running" "$tmp/out" ||
	fail "stat text: $(head -3 "$tmp/out")"
for section in log manager segment_writer segment_preparer segment_maintainer durability \
	meta_store flusher channel producers; do
	grep -q "^$section" "$tmp/out" || fail "stat text: no $section section"
done
grep -q "p99.99=" "$tmp/out" || fail "stat text: no percentiles"

# --watch without a terminal: views one after the other, with rates; --count ends it.
expect 0 "stat --watch --count 3" -- "$walrec" stat --watch 20ms --count 3 "$chan"
n=$(grep -c "^channel $chan: " "$tmp/out")
[ "$n" -eq 3 ] || fail "--watch --count 3 printed $n views"
grep -q "^rates (per second" "$tmp/out" || fail "--watch: no rates section"
grep -q "$(printf '\033')" "$tmp/out" && fail "--watch without a terminal wrote escape sequences"
# SIGINT ends a watch cleanly, exit 0.
"$walrec" stat --watch 50ms "$chan" >"$tmp/w.out" 2>"$tmp/w.err" &
wpid=$!
wait_for grep -qs "^rates" "$tmp/w.out" || fail "--watch printed nothing"
kill -INT "$wpid"
wait "$wpid"
rc=$?
[ "$rc" -eq 0 ] || fail "--watch after SIGINT: exit $rc: $(cat "$tmp/w.err")"

# ---- a clean stop: final snapshot, marked stopped ----
kill -TERM "$rpid"
wait "$rpid" || fail "recorder (phase 2) exit $?"
rpid=
expect 1 "stat after a clean stop" -- "$walrec" stat "$chan"
grep -q "^channel $chan: stopped;" "$tmp/out" || fail "stopped: $(head -2 "$tmp/out")"
grep -q "final" "$tmp/out" || fail "stopped: snapshot not marked final"
grep -q "recorder stopped" "$tmp/err" || fail "stopped: no note on stderr"

# ---- stat DIR: what the files say ----
expect 0 "stat DIR" -- "$walrec" stat "$wal"
grep -q "^directory $wal: 4 segments (1 hot" "$tmp/out" || fail "stat DIR: $(head -1 "$tmp/out")"
grep -q "3 cold" "$tmp/out" || fail "stat DIR: cold count"
grep -q "^wal.meta: segment 11, .*agrees" "$tmp/out" || fail "stat DIR: wal.meta line"
grep -q "00000011.wal .* 3840$" "$tmp/out" || fail "stat DIR: segment 11 events"
grep -q "^recorder: none" "$tmp/out" || fail "stat DIR: recorder line"
expect 0 "stat --dir" -- "$walrec" stat --dir "$wal"
# A directory named like an existing channel: the name means the channel,
# a path the directory.
mkdir "$tmp/$chan"
abs=$(cd "$(dirname "$walrec")" && pwd)/walrec
expect 1 "stat NAME beside a directory NAME" -- sh -c "cd '$tmp' && '$abs' stat '$chan'"
grep -q "^channel $chan: stopped" "$tmp/out" || fail "NAME beside a directory: $(head -1 "$tmp/out")"
expect 0 "stat ./NAME" -- sh -c "cd '$tmp' && '$abs' stat './$chan'"
grep -q "^directory ./$chan: 0 segments" "$tmp/out" || fail "./NAME: $(head -1 "$tmp/out")"
expect 0 "stat DIR that is no channel" -- sh -c "cd '$tmp' && '$abs' stat wal"
grep -q "^directory wal: 4 segments" "$tmp/out" || fail "DIR without slash: $(head -1 "$tmp/out")"

# ---- a dead recorder: its last snapshot, marked, exit 1 ----
"$walrec" record "$tmp/wal.d" --channel "$chan.d" --telemetry-interval 10ms \
	>/dev/null 2>"$tmp/rd.err" &
rpid=$!
wait_for grep -qs running "$tmp/rd.err" || fail "recorder (dead test) did not start"
expect 0 "produce (dead test)" -- "$walrec" produce "$chan.d" --events 1000
kill -KILL "$rpid"
wait "$rpid" 2>/dev/null
dead=$rpid
rpid=
expect 1 "stat of a dead recorder" -- "$walrec" stat "$chan.d"
grep -q "^channel $chan.d: dead; recorder pid $dead gone" "$tmp/out" ||
	fail "dead: $(head -2 "$tmp/out")"
grep -q "is gone" "$tmp/err" || fail "dead: no note on stderr"
grep -q "stale" "$tmp/err" || fail "dead: snapshot not called stale"
expect 1 "stat --prometheus of a dead recorder" -- "$walrec" stat --prometheus "$chan.d"
[ "$(prom_value "$tmp/out" walrec_recorder_up)" = 0 ] || fail "dead: walrec_recorder_up not 0"
expect 1 "stat --json of a dead recorder" -- "$walrec" stat --json "$chan.d"
grep -q '"status":"dead"' "$tmp/out" || fail "dead: JSON status"

# ---- corrupt snapshots (shared memory is untrusted) ----
shm=/dev/shm/walrec.$chan.d
tel=$(od -An -tu8 -j144 -N8 "$shm" | tr -d ' ')
[ -n "$tel" ] && [ "$tel" -gt 0 ] || { echo "cli_stat: cannot find the telemetry region" >&2; exit 99; }
cp "$shm" "$tmp/shm.bak"
# The buffer index (publication line, offset 64) out of range.
printf '\007' | dd of="$shm" bs=1 seek=$((tel + 64)) conv=notrunc 2>/dev/null
expect 3 "stat of a corrupt snapshot" -- "$walrec" stat "$chan.d"
grep -q "corrupt" "$tmp/err" || fail "corrupt: $(cat "$tmp/err")"
cp "$tmp/shm.bak" "$shm"
# Another layout's identity (the version word).
printf '\011' | dd of="$shm" bs=1 seek=$((tel + 8)) conv=notrunc 2>/dev/null
expect 3 "stat of another snapshot layout" -- "$walrec" stat "$chan.d"
grep -q "another layout" "$tmp/err" || fail "other layout: $(cat "$tmp/err")"
cp "$tmp/shm.bak" "$shm"
# No snapshot at all (the region as a recorder without snapshots leaves it).
dd if=/dev/zero of="$shm" bs=1 seek="$tel" count=128 conv=notrunc 2>/dev/null
expect 3 "stat without a snapshot" -- "$walrec" stat "$chan.d"
grep -q "no telemetry snapshot" "$tmp/err" || fail "no snapshot: $(cat "$tmp/err")"

# ---- --metrics-file: Prometheus text, replaced by rename, final at exit ----
mf=$tmp/metrics/walrec.prom
mkdir -p "$tmp/metrics"
"$walrec" record "$tmp/wal.m" --channel "$chan.m" --metrics-file "$mf" --metrics-interval 20ms \
	>/dev/null 2>"$tmp/rm.err" &
rpid=$!
wait_for grep -qs running "$tmp/rm.err" || fail "recorder (metrics file) did not start"
wait_for grep -qs "^walrec_recorder_up{channel=\"$chan.m\"} 1" "$mf" || fail "metrics file: not up"
expect 0 "produce (metrics file)" -- "$walrec" produce "$chan.m" --events 3000
has_taken() { grep -qs "^walrec_channel_taken_total{channel=\"$chan.m\"} 3000$" "$mf"; }
wait_for has_taken || fail "metrics file: taken not 3000"
kill -TERM "$rpid"
wait "$rpid" || fail "recorder (metrics file) exit $?: $(cat "$tmp/rm.err")"
rpid=
grep -q "^walrec_recorder_up{channel=\"$chan.m\"} 0" "$mf" || fail "metrics file: last write not down"
left=$(ls "$tmp/metrics" | grep -v '^walrec.prom$')
[ -z "$left" ] || fail "metrics file: temporary files left: $left"
grep -q "metrics file" "$tmp/rm.err" && fail "metrics file: errors: $(cat "$tmp/rm.err")"

if [ "$fails" -ne 0 ]; then
	echo "cli_stat: $fails failure(s)" >&2
	exit 1
fi
exit 0
