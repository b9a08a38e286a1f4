#!/bin/sh
# SPDX-License-Identifier: MIT
# walrec bench: every scenario runs at a tiny size, prints one JSON object
# with the keys its documentation promises, and rejects bad flags. Nothing
# here judges speed: that is what the benchmarks report.
set -u

top_builddir=${top_builddir:-.}
. "$(dirname "$0")/cli_lib.sh"
walrec=$top_builddir/walrec
if [ ! -x "$walrec" ]; then
	echo "cli_bench: $walrec not built" >&2
	exit 99
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/walrec-bench.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

# run NAME KEYS -- command...: exit 0, exactly one line of output, every key present.
run() {
	name=$1
	keys=$2
	shift 3
	if ! "$@" >"$tmp/out" 2>"$tmp/err"; then
		fail "$name: exit $? ($*)"
		sed 's/^/  | /' "$tmp/err" >&2
		return
	fi
	[ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "$name: not one line of JSON"
	case "$(cat "$tmp/out")" in
	"{"*"}") ;;
	*) fail "$name: not a JSON object: $(head -c 200 "$tmp/out")" ;;
	esac
	for k in $keys; do
		grep -q "\"$k\":" "$tmp/out" || fail "$name: no \"$k\" in $(head -c 300 "$tmp/out")"
	done
}

common="scenario events seconds events_per_s p50_ns p99_ns p999_ns p9999_ns max_ns"
run append "$common rotations" -- "$walrec" bench append --dir "$tmp/a" --events 100k --blocks 16 --json
run recorder "$common rotations machine_max_gap_ns" -- \
	"$walrec" bench recorder --dir "$tmp/r" --events 100k --blocks 16 --json
run durable "baseline_fdatasync_p50_ns results k ack_p50_ns ack_p99_ns" -- \
	"$walrec" bench durable --dir "$tmp/d" --events 200 --json
run ipc "$common producers producer_p50_ns producer_p999_ns e2e_p50_ns" -- \
	"$walrec" bench ipc --dir "$tmp/i" --producers 2 --events 20k --json
run "ipc durable" "producers ack_p50_ns baseline_fdatasync_p50_ns baseline_drain_cpu_fdatasync_p50_ns" -- \
	"$walrec" bench ipc --dir "$tmp/i" --events 300 --durable-every 1 --park --json
[ -z "$(ls "$tmp/i" 2>/dev/null)" ] || fail "bench ipc left files behind: $(ls "$tmp/i")"
# interrupted NAME MARK DIR -- command...: the command in the background,
# SIGTERMed once the file MARK<its pid> exists, exits 1 saying "interrupted",
# prints no result and leaves DIR empty. Sets bpid.
interrupted() {
	name=$1
	mark=$2
	dir=$3
	shift 4
	"$@" >"$tmp/int.out" 2>"$tmp/int.err" &
	bpid=$!
	wait_for test -e "$mark$bpid"
	kill -TERM "$bpid"
	wait "$bpid"
	brc=$?
	[ "$brc" -eq 1 ] || fail "$name after SIGTERM: exit $brc, expected 1"
	grep -q "interrupted" "$tmp/int.err" || fail "$name after SIGTERM said: $(cat "$tmp/int.err")"
	[ -s "$tmp/int.out" ] && fail "$name after SIGTERM printed a result"
	[ -z "$(ls "$dir")" ] || fail "$name after SIGTERM left $(ls "$dir")"
}
# bench ipc mid-run: its channel and log removed, no producer left running.
mkdir "$tmp/int"
interrupted "bench ipc" /dev/shm/walrec.bench-ipc- "$tmp/int" -- \
	"$walrec" bench ipc --dir "$tmp/int" --events 1G --json
[ -e "/dev/shm/walrec.bench-ipc-$bpid" ] && fail "bench ipc after SIGTERM left its channel"
command -v pgrep >/dev/null && pgrep -f "bench ipc --dir $tmp/int" >/dev/null &&
	fail "bench ipc after SIGTERM left producers running"
# bench idle in its first window: it ends at once.
interrupted "bench idle" "$tmp/idl/idle-embedded." "$tmp/idl" -- \
	"$walrec" bench idle --dir "$tmp/idl" --seconds 60 --settle 0 --json
# replay: writes a small log (some segments compressed) into an empty DIR, then reads it.
run replay "$common hot_events_per_s cold_events_per_s seek_p99_ns boundary_p99_ns" -- \
	"$walrec" bench replay --dir "$tmp/p" --size 4M --blocks 16 --seeks 200 --passes 1 --json
ls "$tmp/p"/*.wal.lz4 >/dev/null 2>&1 || fail "bench replay: no compressed segment in its log"
ls -a "$tmp/p" | grep -q '^\.walrec-replay' && fail "bench replay left its views behind"
# ... and reads an existing log as it is.
run "replay, existing log" "hot_events_per_s cold_events_per_s" -- \
	"$walrec" bench replay --dir "$tmp/p" --seeks 50 --passes 1 --json
"$walrec" bench replay --dir "$tmp/p" --cold-pct 101 >/dev/null 2>&1
[ $? -eq 2 ] || fail "bench replay --cold-pct 101: not exit 2"

"$walrec" bench ipc --dir "$tmp/i" --producers 0 >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] || fail "bench ipc --producers 0: not exit 2"
grep -q "producers" "$tmp/err" || fail "bench ipc --producers 0: no clear message"
"$walrec" bench ipc --events 1 >/dev/null 2>&1
[ $? -eq 2 ] || fail "bench ipc without --dir: not exit 2"
"$walrec" bench nosuch >/dev/null 2>&1
[ $? -eq 2 ] || fail "bench nosuch: not exit 2"

[ "$fails" -eq 0 ] || { echo "cli_bench: $fails failure(s)" >&2; exit 1; }
exit 0
