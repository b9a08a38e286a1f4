#!/bin/sh
# SPDX-License-Identifier: MIT
# The cost of telemetry on the append path: build walrec twice out of tree
# (default, and ./configure --disable-telemetry), then run
# 'walrec bench recorder' from the two builds alternately, PAIRS times (the
# build that goes first alternating too), and print each run, the medians,
# the best runs and the ratios (telemetry on / off; the target is >= 0.95),
# by wall clock and per second of the appending thread's CPU time. On a
# machine shared with other work the CPU time and the best runs are the
# steadier estimates; quote them all. Run from anywhere inside a walrec
# source tree:
#
#   bench/telemetry_overhead.sh [PAIRS [EVENTS [BLOCKS]]]
#
# Defaults: 5 pairs, 20M events, 256 blocks per segment (the scenario's
# own defaults). WORK=dir keeps the builds there (default: a temporary
# directory, removed at the end). The source is copied (tracked files,
# as they are in the working tree), so an in-tree build does not get in
# the way. Needs what the build needs (autogen.sh, configure, make).
set -eu

pairs=${1:-5}
events=${2:-20M}
blocks=${3:-256}
src=$(cd "$(dirname "$0")/.." && pwd)
keep=${WORK:+yes}
work=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/walrec-teloh.XXXXXX")}
mkdir -p "$work"
cleanup() { [ -n "$keep" ] || rm -rf "$work"; }
trap cleanup EXIT

if [ ! -x "$work/on/walrec" ] || [ ! -x "$work/off/walrec" ]; then
	echo "copying the source to $work/src" >&2
	rm -rf "$work/src"
	mkdir -p "$work/src"
	(cd "$src" && git ls-files -z | tar --null -T - -cf -) | tar -C "$work/src" -xf -
	(cd "$work/src" && ./autogen.sh >/dev/null 2>&1)
	for cfg in on off; do
		echo "building with telemetry $cfg" >&2
		mkdir -p "$work/$cfg"
		flag=
		[ "$cfg" = off ] && flag=--disable-telemetry
		(cd "$work/$cfg" && "$work/src/configure" -q $flag >/dev/null &&
			make -j2 walrec >/dev/null 2>&1)
	done
fi
grep -q 'define WR_TELEMETRY 1' "$work/on/config.h" || { echo "the 'on' build lacks telemetry" >&2; exit 1; }
grep -q 'define WR_TELEMETRY 1' "$work/off/config.h" && { echo "the 'off' build has telemetry" >&2; exit 1; }

dir=$work/data
mkdir -p "$dir"
: >"$work/on.txt"
: >"$work/off.txt"
: >"$work/on.cpu.txt"
: >"$work/off.cpu.txt"
i=0
while [ "$i" -lt "$pairs" ]; do
	i=$((i + 1))
	# Alternate which build goes first, so neither always runs after the other.
	order="on off"
	[ $((i % 2)) -eq 0 ] && order="off on"
	for cfg in $order; do
		rm -rf "$dir"/*
		"$work/$cfg/walrec" bench recorder --dir "$dir" --events "$events" --blocks "$blocks" \
			--json >"$work/run.json"
		eps=$(sed -n 's/.*"events_per_s":\([0-9.]*\).*/\1/p' "$work/run.json")
		cpu=$(sed -n 's/.*"events_per_cpu_s":\([0-9.]*\).*/\1/p' "$work/run.json")
		echo "$eps" >>"$work/$cfg.txt"
		echo "$cpu" >>"$work/$cfg.cpu.txt"
		echo "pair $i: telemetry $cfg: $eps events/s, $cpu per CPU second"
	done
done
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
on=$(median "$work/on.txt")
off=$(median "$work/off.txt")
best() { sort -n "$1" | tail -1; }
bon=$(best "$work/on.txt")
boff=$(best "$work/off.txt")
echo "median telemetry on:  $on events/s (best $bon)"
echo "median telemetry off: $off events/s (best $boff)"
awk -v a="$on" -v b="$off" -v c="$bon" -v d="$boff" \
	'BEGIN { printf "ratio on/off: %.3f of the medians, %.3f of the best runs (target >= 0.95)\n", a / b, c / d }'
con=$(median "$work/on.cpu.txt")
coff=$(median "$work/off.cpu.txt")
echo "median per CPU second of the appending thread: on $con, off $coff"
awk -v a="$con" -v b="$coff" 'BEGIN { printf "ratio on/off per CPU second: %.3f\n", a / b }'
