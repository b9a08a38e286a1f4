#!/bin/sh
# SPDX-License-Identifier: MIT
# 'walrec bench peers' and 'walrec bench idle' run end to end on tiny
# counts and print the documented JSON: a row per case of every system
# built (the others listed as skipped), ratios against walrec, two idle
# processes measured. Figures are not judged here: speed belongs to
# 'make bench'.
# Run by 'make check' from the top build directory (also in VPATH/distcheck builds).
set -u

top_builddir=${top_builddir:-.}
walrec=$top_builddir/walrec
if [ ! -x "$walrec" ]; then
	echo "bench_smoke: $walrec not built" >&2
	exit 99
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/walrec-bs.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM
fails=0
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}
expect() { # CODE WHAT -- command...
	want=$1
	what=$2
	shift 3
	"$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	[ "$got" -eq "$want" ] || { fail "$what: exit $got, expected $want"; cat "$tmp/err" >&2; }
}
# count STRING FILE: occurrences of STRING in FILE
count() {
	grep -o -- "$1" "$2" | wc -l
}

expect 2 "peers without --dir" -- "$walrec" bench peers
expect 2 "peers --systems nope" -- "$walrec" bench peers --dir "$tmp/p" --systems nope
expect 2 "peers --runs 0" -- "$walrec" bench peers --dir "$tmp/p" --runs 0
expect 2 "idle --seconds 0" -- "$walrec" bench idle --dir "$tmp/i" --seconds 0
expect 0 "bench --help" -- "$walrec" bench --help
grep -q "^  peers " "$tmp/out" || fail "bench --help does not list peers"
grep -q "^  idle " "$tmp/out" || fail "bench --help does not list idle"

# ---- peers: every case of every built system, skipped ones named ----
expect 0 "bench peers" -- "$walrec" bench peers --dir "$tmp/p" --events 3000 --syncs 8 --runs 2 --json
out=$tmp/out
[ "$(wc -l <"$out")" -eq 1 ] || fail "peers --json: not exactly one line"
[ "$(count '"system":"walrec"' "$out")" -eq 4 ] || fail "peers: not 4 walrec rows: $(cat "$out")"
[ "$(count '"system":"write"' "$out")" -ge 4 ] || fail "peers: no write() rows"
[ "$(count '"runs_ok":2' "$out")" -eq "$(count '"latency_unit"' "$out")" ] ||
	fail "peers: a case did not run twice: $(cat "$out")"
for s in sqlite leveldb rocksdb; do
	if grep -q "\"system\":\"$s\",\"reason\"" "$out"; then
		grep -q "\"system\":\"$s\",\"mode\"" "$out" && fail "peers: $s both skipped and run"
	else
		grep -q "\"system\":\"$s\",\"mode\"" "$out" || fail "peers: $s neither run nor skipped"
	fi
done
# One ratio per peer row; durable rows of batch K are compared with walrec sync-K.
rows=$(count '"latency_unit"' "$out")
ratios=$(count '"throughput_ratio"' "$out")
[ "$ratios" -eq $((rows - 4)) ] || fail "peers: $ratios ratios for $((rows - 4)) peer rows"
grep -q '"mode":"fdatasync-256","walrec_mode":"sync-256"' "$out" ||
	fail "peers: fdatasync-256 not compared with walrec sync-256"
# Durable cases write at most --syncs acknowledgements: 8 x 16 records.
grep -q '"mode":"sync-16","about":"[^"]*","durable":true,"batch":16,"latency_unit":"batch","records":128,' "$out" ||
	fail "peers: walrec sync-16 did not write 8 batches of 16"
if command -v python3 >/dev/null 2>&1; then
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["scenario"]=="peers"; assert all(r["events_per_s"]>0 for r in d["results"])' "$out" ||
		fail "peers: JSON does not parse or has a zero rate"
fi
ls "$tmp/p" | grep -q . && fail "peers left files in --dir: $(ls "$tmp/p")"

# ---- idle: the embedded recorder and a 'walrec record' process ----
# In the background, for its pid: the channel it must remove is named after it.
"$walrec" bench idle --dir "$tmp/i" --seconds 0.2 --settle 0 --json >"$tmp/out" 2>"$tmp/err" &
ipid=$!
wait "$ipid"
got=$?
[ "$got" -eq 0 ] || { fail "bench idle: exit $got, expected 0"; cat "$tmp/err" >&2; }
grep -q '"process":"embedded","ok":true' "$tmp/out" || fail "idle embedded: $(cat "$tmp/out")"
grep -q '"process":"record","ok":true' "$tmp/out" || fail "idle record: $(cat "$tmp/out")"
grep -q '"threads":0' "$tmp/out" && fail "idle: no thread counted: $(cat "$tmp/out")"
ls "$tmp/i" | grep -q . && fail "idle left files in --dir: $(ls "$tmp/i")"
[ -e "/dev/shm/walrec.walrec-bench-idle.$ipid" ] && fail "idle left its channel in /dev/shm"

if [ "$fails" -ne 0 ]; then
	echo "bench_smoke: $fails failure(s)" >&2
	exit 1
fi
exit 0
