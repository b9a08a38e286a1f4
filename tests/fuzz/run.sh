#!/bin/sh
# SPDX-License-Identifier: MIT
# Run every libFuzzer target of a --enable-fuzzing build for a bounded time.
#
#   tests/fuzz/run.sh BUILD_DIR [SECONDS]
#
# SECONDS per target (default 60), two targets at a time. Each starts from
# its corpus (tests/fuzz/<target>/, read only) and keeps what it finds in
# BUILD_DIR/tests/fuzz/corpus-<target>/. A crash, a broken invariant, a
# leak or a timeout leaves the reproducer as BUILD_DIR/tests/fuzz/crash-<target>-*;
# once fixed, add it to tests/fuzz/<target>/ so make check replays it.
# Exit 0 when no target found anything, 1 otherwise, 99 when not built.
set -u
build=${1:?usage: run.sh BUILD_DIR [SECONDS]}
secs=${2:-60}
src=$(cd "$(dirname "$0")" && pwd)
out=$build/tests/fuzz

run_one() { # target max_len
	t=$1
	bin=$out/fuzz_$t
	if [ ! -x "$bin" ]; then
		echo "run.sh: $bin is not built (./configure CC=clang --enable-fuzzing)" >&2
		return 99
	fi
	mkdir -p "$out/corpus-$t"
	"$bin" -max_total_time="$secs" -max_len="$2" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$out/crash-$t-" \
		"$out/corpus-$t" "$src/$t" >"$out/fuzz-$t.log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz-$t.log")
	cov=$(grep -o 'cov: [0-9]*' "$out/fuzz-$t.log" | tail -1)
	if [ "$rc" -eq 0 ]; then
		echo "fuzz $t: ${secs} s, ${runs:-?} inputs, $cov, nothing found"
	else
		echo "fuzz $t: FAILED (exit $rc): reproducer in $out/crash-$t-*"
		tail -40 "$out/fuzz-$t.log"
	fi
	return "$rc"
}

status=0
pair() {
	run_one "$1" "$2" &
	a=$!
	run_one "$3" "$4" &
	b=$!
	wait "$a" || status=1
	wait "$b" || status=1
}
pair segment_hot 300000 segment_cold 131072
pair meta 64 channel 16384
exit $status
