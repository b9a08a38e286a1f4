#!/bin/sh
# SPDX-License-Identifier: MIT
# The examples of examples/ (built by 'make check' against the public
# headers and libwalrec) run and do what they print: the embedded one
# writes a log that verifies and continues it on a second run; the producer
# appends through 'walrec record' and every sequence is in the log once.
# README.md shows exactly these files.
# Run by 'make check' from the top build directory (also in VPATH/distcheck builds).
set -u

top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-${srcdir:-.}}
walrec=$top_builddir/walrec
emb=$top_builddir/examples/embedded
prod=$top_builddir/examples/producer
for p in "$walrec" "$emb" "$prod"; do
	if [ ! -x "$p" ]; then
		echo "examples: $p not built" >&2
		exit 99
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/walrec-ex.XXXXXX") || exit 99
chan=example.$$
rpid=
cleanup() {
	[ -n "$rpid" ] && kill -TERM "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
	rm -rf "$tmp"
	rm -f "/dev/shm/walrec.$chan"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fails=0
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

# ---- README.md shows the example files, without their two header lines ----
awk -v dir="$tmp" '
	/^```c$/ { n++; f = dir "/readme." n ".c"; inblock = 1; next }
	/^```$/ { inblock = 0; next }
	inblock { print > f }
' "$top_srcdir/README.md"
for ex in embedded producer; do
	tail -n +3 "$top_srcdir/examples/$ex.c" >"$tmp/$ex.body"
	found=no
	for b in "$tmp"/readme.*.c; do
		[ -f "$b" ] && cmp -s "$b" "$tmp/$ex.body" && found=yes
	done
	[ "$found" = yes ] || fail "README.md has no code block equal to examples/$ex.c (after line 2)"
done

# ---- embedded: 1000 events, durable, a log that verifies; a second run continues it ----
"$emb" >"$tmp/out" 2>&1 && fail "embedded without a directory: exit 0"
"$emb" "$tmp/wal" >"$tmp/out" 2>&1 || fail "embedded: exit $?: $(cat "$tmp/out")"
[ "$(cat "$tmp/out")" = "event 1000: durable" ] || fail "embedded printed: $(cat "$tmp/out")"
"$emb" "$tmp/wal" >"$tmp/out" 2>&1 || fail "embedded (2nd run): exit $?: $(cat "$tmp/out")"
[ "$(cat "$tmp/out")" = "event 2000: durable" ] || fail "embedded (2nd run) printed: $(cat "$tmp/out")"
"$walrec" verify "$tmp/wal" >"$tmp/out" 2>&1 || fail "verify after embedded: $(cat "$tmp/out")"
grep -q "2000 events, ids 1..2000: ok" "$tmp/out" || fail "verify after embedded: $(cat "$tmp/out")"
# The payload is the loop counter: the 1000th event of each run carries 1000.
last=$("$walrec" dump "$tmp/wal" --from 2000 --count 1)
case $last in
"id=2000 "*"payload=e803000000000000"*) ;;
*) fail "event 2000: $last" ;;
esac

# ---- producer: through 'walrec record', 1000 sequences of one tag, each once ----
"$prod" "$chan" >"$tmp/out" 2>&1 && fail "producer without a recorder: exit 0"
"$walrec" record "$tmp/rec" --channel "$chan" --blocks 16 >/dev/null 2>"$tmp/rec.err" &
rpid=$!
i=0
until grep -qs running "$tmp/rec.err"; do
	i=$((i + 1))
	[ "$i" -ge 200 ] && { fail "recorder did not start: $(cat "$tmp/rec.err")"; break; }
	sleep 0.05
done
"$prod" "$chan" >"$tmp/out" 2>&1 || fail "producer: exit $?: $(cat "$tmp/out")"
[ "$(cat "$tmp/out")" = "sequence 1000: durable" ] || fail "producer printed: $(cat "$tmp/out")"
kill -TERM "$rpid"
wait "$rpid" || fail "recorder exit $?: $(cat "$tmp/rec.err")"
rpid=
"$walrec" verify "$tmp/rec" --sequences >"$tmp/out" 2>&1 || fail "verify --sequences: $(cat "$tmp/out")"
grep -q "sequences: 1 producer tag, 1000 events: ok" "$tmp/out" || fail "verify: $(cat "$tmp/out")"

if [ "$fails" -ne 0 ]; then
	echo "examples: $fails failure(s)" >&2
	exit 1
fi
exit 0
