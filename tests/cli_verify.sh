#!/bin/sh
# SPDX-License-Identifier: MIT
# walrec verify / dump from the outside: exit codes, messages, JSON, --from/--count.
# Run by 'make check' from the top build directory (also in VPATH/distcheck builds).
set -u

top_builddir=${top_builddir:-.}
walrec=$top_builddir/walrec
mkseg=$top_builddir/tests/mksegment
for p in "$walrec" "$mkseg"; do
	if [ ! -x "$p" ]; then
		echo "cli_verify: $p not built" >&2
		exit 99
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/walrec-cli.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
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

has_python=no
command -v python3 >/dev/null 2>&1 && has_python=yes

json_ok() {
	[ "$has_python" = yes ] || return 0
	python3 -c 'import json,sys; json.load(sys.stdin)' <"$1" || fail "$2: not JSON"
}

# A directory: 3 full blocks, a cold segment with a partial block, and a
# crash-style active segment with a torn (unsealed) tail.
d=$tmp/wal
mkdir "$d"
"$mkseg" "$d/00000001.wal" --index 1 --blocks 3 >/dev/null || exit 99
"$mkseg" "$d/00000002.wal" --index 2 --blocks 2 --first-id 769 --last 10 \
	--lz4 "$d/00000002.wal.lz4" >/dev/null || exit 99
rm -f "$d/00000002.wal"
"$mkseg" "$d/00000003.wal" --index 3 --blocks 2 --first-id 1035 --active --torn 5 \
	>/dev/null || exit 99
total=1546

# ---- verify: valid ----
expect 0 "valid directory" -- "$walrec" verify "$d"
grep -q ": ok$" "$tmp/out" || fail "valid directory: no ok line"
grep -q "1546 events" "$tmp/out" || fail "valid directory: event count"
expect 0 "valid directory, quiet" -- "$walrec" verify --quiet "$d"
[ -s "$tmp/out" ] && fail "quiet printed something"
expect 0 "valid directory, json" -- "$walrec" verify "$d" --json
json_ok "$tmp/out" "verify --json"
grep -q '"ok":true' "$tmp/out" || fail "json: ok true"
grep -q '"events":1546' "$tmp/out" || fail "json: events"
expect 0 "single hot file" -- "$walrec" verify "$d/00000001.wal"
expect 0 "single cold file" -- "$walrec" verify "$d/00000002.wal.lz4"
if command -v lz4 >/dev/null 2>&1; then
	lz4 -q -f "$d/00000001.wal" "$tmp/cli.00000001.wal.lz4" &&
		expect 0 "lz4 tool's frame" -- "$walrec" verify "$tmp/cli.00000001.wal.lz4"
fi

# ---- wal.meta: agreeing is silent, disagreeing is a warning (exit stays 0) ----
# segment 1, offset 64 + 3 * 16448 = 49408 (0xc100), last id 768 (0x300)
printf '\000\301\000\000\001\000\000\000\000\003\000\000\000\000\000\000' >"$d/wal.meta"
expect 0 "good wal.meta" -- "$walrec" verify "$d"
grep -q "^warning" "$tmp/out" && fail "good wal.meta: warning"
printf '\000\301\000\000\001\000\000\000\377\002\000\000\000\000\000\000' >"$d/wal.meta"
expect 0 "wal.meta last id wrong" -- "$walrec" verify "$d"
grep -q "^warning: wal.meta last_event_id 767" "$tmp/out" || fail "wal.meta warning missing"
printf 'short' >"$d/wal.meta"
expect 0 "wal.meta short" -- "$walrec" verify "$d"
grep -q "^warning: wal.meta is" "$tmp/out" || fail "short wal.meta warning missing"
rm -f "$d/wal.meta"

# ---- dump ----
expect 0 "dump all" -- "$walrec" dump "$d"
[ "$(wc -l <"$tmp/out")" -eq "$total" ] || fail "dump all: $(wc -l <"$tmp/out") lines"
head -n 1 "$tmp/out" | grep -Eq '^id=1 ts=[0-9]+ payload=[0-9a-f]{96}$' || fail "dump text format"
expect 0 "dump --from --count" -- "$walrec" dump "$d" --from 1030 --count 10
[ "$(wc -l <"$tmp/out")" -eq 10 ] || fail "dump --count 10: $(wc -l <"$tmp/out") lines"
head -n 1 "$tmp/out" | grep -q '^id=1030 ' || fail "dump --from 1030 starts at $(head -c 20 "$tmp/out")"
expect 0 "dump --from past a cold segment" -- "$walrec" dump "$d" --from=770 --count=1
grep -q '^id=770 ' "$tmp/out" || fail "dump --from=770"
expect 0 "dump --from to the end" -- "$walrec" dump "$d" --from 1500
[ "$(wc -l <"$tmp/out")" -eq 47 ] || fail "dump --from 1500: $(wc -l <"$tmp/out") lines"
expect 0 "dump --from past the end" -- "$walrec" dump "$d" --from 1k
[ -s "$tmp/out" ] || fail "dump --from 1k printed nothing"
expect 0 "dump --count 0" -- "$walrec" dump "$d" --count 0
[ -s "$tmp/out" ] && fail "dump --count 0 printed something"
expect 0 "dump --json" -- "$walrec" dump "$d/00000002.wal.lz4" --json --count 5
[ "$(wc -l <"$tmp/out")" -eq 5 ] || fail "dump --json --count 5"
if [ "$has_python" = yes ]; then
	python3 -c 'import json,sys
for l in sys.stdin:
    e = json.loads(l); assert len(e["payload"]) == 96 and e["event_id"] >= 769' \
		<"$tmp/out" || fail "dump --json lines"
fi

# ---- corruption: exit 1, the block named, the next segment still checked ----
cp "$d/00000001.wal" "$tmp/good.wal"
# flip a byte in block 1's events: offset 64 + 16448 + 64 + 100
printf 'X' | dd of="$d/00000001.wal" bs=1 seek=16676 conv=notrunc 2>/dev/null
expect 1 "corrupt directory" -- "$walrec" verify "$d"
grep -q "^segment .*00000001.wal: block 1: block checksum mismatch$" "$tmp/out" ||
	fail "corrupt: no 'segment ...: block 1:' line"
grep -q "3 segments" "$tmp/out" || fail "corrupt: did not go on with the other segments"
expect 1 "corrupt directory, json" -- "$walrec" verify --json "$d"
json_ok "$tmp/out" "verify --json corrupt"
grep -q '"ok":false' "$tmp/out" || fail "json: ok false"
grep -q '"block":1' "$tmp/out" || fail "json: block 1"
expect 1 "corrupt single file" -- "$walrec" verify "$d/00000001.wal"
expect 1 "dump stops at the corrupt block" -- "$walrec" dump "$d"
[ "$(wc -l <"$tmp/out")" -eq 256 ] || fail "dump corrupt: $(wc -l <"$tmp/out") lines before the fault"
grep -q "block 1: block checksum mismatch" "$tmp/err" || fail "dump corrupt: message"
cp "$tmp/good.wal" "$d/00000001.wal"
: >"$tmp/empty.wal"
expect 1 "empty segment file" -- "$walrec" verify "$tmp/empty.wal"
head -c 100000 /dev/zero >"$tmp/zeros.wal"
expect 1 "zero segment file" -- "$walrec" verify "$tmp/zeros.wal"

# ---- usage and I/O errors: exit 2 ----
expect 2 "missing path" -- "$walrec" verify "$tmp/does-not-exist"
expect 2 "no path" -- "$walrec" verify
expect 2 "two paths" -- "$walrec" verify "$d" "$d"
expect 2 "unknown flag" -- "$walrec" verify --bogus "$d"
grep -q "unknown option '--bogus'" "$tmp/err" || fail "unknown flag message"
expect 1 "--sequences on foreign payloads" -- "$walrec" verify --sequences "$d"
expect 2 "dump missing path" -- "$walrec" dump "$tmp/does-not-exist"
expect 2 "dump bad count" -- "$walrec" dump "$d" --count -3
expect 2 "dump bad from" -- "$walrec" dump "$d" --from abc
expect 2 "dump from without value" -- "$walrec" dump "$d" --from
expect 2 "dump unknown flag" -- "$walrec" dump "$d" --nope
expect 2 "dump --follow on one file" -- "$walrec" dump "$d/00000001.wal" --follow
expect 2 "dump --channel without --follow" -- "$walrec" dump "$d" --channel x
expect 2 "dump --follow, bad channel name" -- "$walrec" dump "$d" --follow --channel ../x
expect 2 "dump --follow, --channel without a name" -- "$walrec" dump "$d" --follow --channel
# --follow without any recorder: what is there, then it waits; --count ends it.
expect 0 "dump --follow --count" -- "$walrec" dump "$d" --follow --from 1540 --count 7
[ "$(wc -l <"$tmp/out")" -eq 7 ] || fail "dump --follow --count 7: $(wc -l <"$tmp/out") lines"
tail -n 1 "$tmp/out" | grep -q '^id=1546 ' || fail "dump --follow: last line $(tail -n 1 "$tmp/out")"
# ... and SIGTERM ends it with exit 0 after everything sealed was printed.
"$walrec" dump "$d" --follow --from 1545 >"$tmp/fout" 2>"$tmp/ferr" &
fpid=$!
i=0
while [ "$(wc -l <"$tmp/fout")" -lt 2 ] && [ "$i" -lt 100 ]; do
	sleep 0.05
	i=$((i + 1))
done
sleep 0.2
kill -0 "$fpid" 2>/dev/null || fail "dump --follow ended by itself at the end of the log"
kill -TERM "$fpid"
wait "$fpid"
frc=$?
[ "$frc" -eq 0 ] || fail "dump --follow after SIGTERM: exit $frc ($(cat "$tmp/ferr"))"
[ "$(wc -l <"$tmp/fout")" -eq 2 ] || fail "dump --follow: $(wc -l <"$tmp/fout") lines, expected 2"
expect 2 "unknown command" -- "$walrec" frobnicate
expect 0 "verify --help" -- "$walrec" verify --help
grep -q "^usage: walrec verify" "$tmp/out" || fail "verify --help text"
expect 0 "dump --help" -- "$walrec" dump --help
grep -q "^usage: walrec dump" "$tmp/out" || fail "dump --help text"

if [ "$fails" -ne 0 ]; then
	echo "cli_verify: $fails failure(s)" >&2
	exit 1
fi
echo "cli_verify: all passed"
exit 0
