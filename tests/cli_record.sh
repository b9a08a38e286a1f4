#!/bin/sh
# SPDX-License-Identifier: MIT
# walrec record / produce / verify --sequences end to end: two producer
# processes through the shared-memory channel into a WAL directory; a second
# recorder on the same channel or directory is refused.
# Run by 'make check' from the top build directory (also in VPATH/distcheck builds).
set -u

top_builddir=${top_builddir:-.}
walrec=$top_builddir/walrec
mkseg=$top_builddir/tests/mksegment
for p in "$walrec" "$mkseg"; do
	if [ ! -x "$p" ]; then
		echo "cli_record: $p not built" >&2
		exit 99
	fi
done
if [ ! -d /dev/shm ]; then
	echo "cli_record: no /dev/shm" >&2
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/walrec-rec.XXXXXX") || exit 99
chan=clirec.$$
rpid=
cleanup() {
	[ -n "$rpid" ] && kill -TERM "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
	rm -rf "$tmp"
	rm -f "/dev/shm/walrec.$chan" "/dev/shm/walrec.$chan.b" "/dev/shm/walrec.$chan.k"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fails=0

fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

# expect CODE DESCRIPTION -- command...: run it, keep output in $tmp/out, $tmp/err.
expect() {
	want=$1
	what=$2
	shift 3
	"$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	if [ "$got" -ne "$want" ]; then
		fail "$what: exit $got, expected $want ($*)"
		sed 's/^/  | /' "$tmp/out" "$tmp/err" >&2
	fi
}

# wait_for COND...: up to 10 s.
wait_for() {
	i=0
	while ! "$@"; do
		i=$((i + 1))
		[ "$i" -ge 200 ] && return 1
		sleep 0.05
	done
	return 0
}

# ---- flags ----
expect 0 "record --help" -- "$walrec" record --help
expect 2 "record without --channel" -- "$walrec" record "$tmp/x"
expect 2 "record bad flag" -- "$walrec" record "$tmp/x" --channel c --bogus
expect 2 "record bad number" -- "$walrec" record "$tmp/x" --channel c --blocks zz
expect 2 "record bad channel name" -- "$walrec" record "$tmp/x" --channel ../x
expect 2 "record --cpu out of range" -- "$walrec" record "$tmp/x" --channel c --cpu 64
grep -q -- "--cpu needs a CPU number" "$tmp/err" || fail "--cpu 64: no clear message"
expect 2 "record --worker-cpus backwards" -- "$walrec" record "$tmp/x" --channel c --worker-cpus 1-0
expect 2 "record --worker-cpus garbage" -- "$walrec" record "$tmp/x" --channel c --worker-cpus 0,x
grep -q "CPU list" "$tmp/err" || fail "--worker-cpus: no clear message"
expect 2 "record --stage-blocks not a power of two" -- \
	"$walrec" record "$tmp/x" --channel "$chan.s" --stage-blocks 1000 --pidfile "$tmp/s.pid"
grep -q "stage_blocks" "$tmp/err" || fail "--stage-blocks 1000: no clear message"
expect 0 "produce --help" -- "$walrec" produce --help
expect 2 "produce without --events" -- "$walrec" produce "$chan"
expect 2 "produce bad flag" -- "$walrec" produce "$chan" --events 1 --nope
expect 2 "produce to a missing channel" -- "$walrec" produce "$chan.none" --events 1
grep -q "cannot attach" "$tmp/err" || fail "missing channel: no clear message"

# ---- two producers, 100000 events each ----
wal=$tmp/wal
"$walrec" record "$wal" --channel "$chan" --blocks 64 --max-hot 2 --cpu 0 \
	--stage-blocks 16 --pidfile "$tmp/rec.pid" >"$tmp/rec.out" 2>"$tmp/rec.err" &
rpid=$!
wait_for grep -qs running "$tmp/rec.err" || fail "recorder did not start"

# A second recorder: same channel (other directory), then same directory (other channel).
expect 2 "second recorder on the channel" -- "$walrec" record "$tmp/wal2" --channel "$chan"
grep -q "owned by another recorder" "$tmp/err" || fail "busy channel: no clear message"
expect 2 "second recorder on the pid file" -- \
	"$walrec" record "$wal" --channel "$chan.b" --pidfile "$tmp/rec.pid"
grep -q "owned by another recorder" "$tmp/err" || fail "busy pid file: no clear message"
[ -e "/dev/shm/walrec.$chan.b" ] && fail "refused recorder created a channel"

"$walrec" produce "$chan" --events 100000 >"$tmp/p1" 2>&1 &
p1=$!
"$walrec" produce "$chan" --events 100000 --durable-every 5000 --json >"$tmp/p2" 2>&1 &
p2=$!
wait "$p1" || fail "producer 1: exit $?"
wait "$p2" || fail "producer 2: exit $?"
grep -q '"ok":true' "$tmp/p2" || fail "producer 2: $(cat "$tmp/p2")"
grep -q "ack_p99_us" "$tmp/p2" || fail "producer 2: no ack latency"

kill -TERM "$rpid"
wait "$rpid"
rc=$?
rpid=
[ "$rc" -eq 0 ] || { fail "recorder exit $rc"; sed 's/^/  | /' "$tmp/rec.err" >&2; }
grep -q "200000 events recorded" "$tmp/rec.err" || fail "recorder: $(cat "$tmp/rec.err")"
[ -e "$tmp/rec.pid" ] && fail "pid file left behind"

expect 0 "verify --sequences" -- "$walrec" verify "$wal" --sequences
grep -q "sequences: 2 producer tags, 200000 events: ok" "$tmp/out" || fail "verify: $(cat "$tmp/out")"
n=$("$walrec" dump "$wal" | wc -l)
[ "$n" -eq 200000 ] || fail "dump: $n events, expected 200000"

# ---- restart on the existing channel: ids continue, still no gap ----
# A fresh stderr file: the old one already says "running".
"$walrec" record "$wal" --channel "$chan" >"$tmp/rec.out" 2>"$tmp/rec2.err" &
rpid=$!
wait_for grep -qs running "$tmp/rec2.err" || fail "restarted recorder did not start"
expect 0 "produce after restart" -- "$walrec" produce "$chan" --events 1000 --durable-every 1000
kill -TERM "$rpid"
wait "$rpid" || fail "restarted recorder exit $?"
rpid=
expect 0 "verify --sequences after restart" -- "$walrec" verify "$wal" --sequences
grep -q "3 producer tags, 201000 events: ok" "$tmp/out" || fail "after restart: $(cat "$tmp/out")"

# ---- recorder killed (SIGKILL) mid-stream, restarted: exactly once ----
wal3=$tmp/wal3
"$walrec" record "$wal3" --channel "$chan.k" --no-compress --max-hot 0 >/dev/null 2>"$tmp/k.err" &
rpid=$!
wait_for grep -qs running "$tmp/k.err" || fail "recorder (kill test) did not start"
"$walrec" produce "$chan.k" --events 400000 --rate 1000000 >"$tmp/pk" 2>&1 &
pk=$!
sleep 0.15
kill -KILL "$rpid"
wait "$rpid" 2>/dev/null
"$walrec" record "$wal3" --channel "$chan.k" --no-compress --max-hot 0 \
	--pidfile "$tmp/k2.pid" >/dev/null 2>"$tmp/k2.err" &
rpid=$!
wait "$pk" || fail "producer (kill test): exit $?: $(cat "$tmp/pk")"
kill -TERM "$rpid"
wait "$rpid" || fail "restarted recorder (kill test) exit $?"
rpid=
expect 0 "verify --sequences after SIGKILL" -- "$walrec" verify "$wal3" --sequences
grep -q "1 producer tag, 400000 events: ok" "$tmp/out" || fail "after SIGKILL: $(cat "$tmp/out")"

# ---- verify --sequences finds problems ----
"$mkseg" "$tmp/bad.wal" --index 1 --blocks 1 >/dev/null || exit 99
expect 1 "verify --sequences on foreign payloads" -- "$walrec" verify "$tmp/bad.wal" --sequences
grep -q "gap" "$tmp/out" || fail "no gap reported"
expect 2 "--sequences with --json" -- "$walrec" verify "$wal" --sequences --json

# ---- the demo: recorder + two producers, verified, temporary files removed ----
expect 2 "demo bad flag" -- "$walrec" demo --nope
expect 2 "demo bad seconds" -- "$walrec" demo --seconds 0
expect 0 "demo" -- env TMPDIR="$tmp" "$walrec" demo --seconds 1
grep -q "demo ok: 2 producers, 2000000 events" "$tmp/out" || fail "demo: $(cat "$tmp/out")"
ls -d "$tmp"/walrec-demo-* >/dev/null 2>&1 && fail "demo left its temporary directory"
dchan=$(sed -n 's/^recorder running: .*, channel \(demo-[0-9]*\)$/\1/p' "$tmp/out")
[ -n "$dchan" ] || fail "demo did not name its channel: $(head -n 1 "$tmp/out")"
[ -e "/dev/shm/walrec.$dchan" ] && fail "demo left its channel /dev/shm/walrec.$dchan"
# SIGTERM mid-run: producers and recorder stopped, everything removed, exit 1.
mkdir "$tmp/dint"
TMPDIR="$tmp/dint" "$walrec" demo --seconds 30 >"$tmp/dint.out" 2>&1 &
dpid=$!
wait_for grep -qs "producers started" "$tmp/dint.out" || fail "interrupted demo did not start"
kill -TERM "$dpid"
wait "$dpid"
drc=$?
[ "$drc" -eq 1 ] || fail "interrupted demo: exit $drc, expected 1"
grep -q "interrupted" "$tmp/dint.out" || fail "interrupted demo said: $(cat "$tmp/dint.out")"
[ -z "$(ls "$tmp/dint")" ] || fail "interrupted demo left $(ls "$tmp/dint")"
[ -e "/dev/shm/walrec.demo-$dpid" ] && fail "interrupted demo left its channel"
command -v pgrep >/dev/null && pgrep -f "produce demo-$dpid " >/dev/null &&
	fail "interrupted demo left producers running"

if [ "$fails" -ne 0 ]; then
	echo "cli_record: $fails failure(s)" >&2
	exit 1
fi
exit 0
