#!/bin/sh
# SPDX-License-Identifier: MIT
# 'make bench', step 1: run every benchmark scenario this walrec has with
# --json into a results directory, with a description of the machine.
# A scenario the program does not list ('walrec bench --help') is skipped
# with a message, so scenarios added later are picked up as they land.
#
# usage: bench/run.sh WALREC RESULTS DATA
#   WALREC   the walrec program to measure
#   RESULTS  directory for the JSON results (emptied first)
#   DATA     directory the benchmarks write their logs and stores in: the
#            disk being measured
# Environment: BENCH_RUNS (runs of each scenario, default 3), BENCH_QUICK=1
# (tiny counts: checks the pipeline, not the machine), CC and CFLAGS (the
# build's, for the record).
set -u

if [ $# -ne 3 ]; then
	echo "usage: $0 WALREC RESULTS DATA" >&2
	exit 2
fi
walrec=$1
results=$2
data=$3
runs=${BENCH_RUNS:-3}
quick=${BENCH_QUICK:-0}

[ -x "$walrec" ] || { echo "bench: $walrec is not a program" >&2; exit 2; }
mkdir -p "$results" "$data" || exit 2
rm -f "$results"/*.json "$results"/*.skipped "$results"/*.err
status=0

# ---- the machine ----
json_escape() {
	printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr -d '\n\r\t'
}
kv() { # key value: one "key":"value" member
	printf '"%s":"%s"' "$1" "$(json_escape "$2")"
}
src=$(findmnt -n -o SOURCE -T "$data" 2>/dev/null)
fstype=$(findmnt -n -o FSTYPE -T "$data" 2>/dev/null)
[ -n "$fstype" ] || fstype=$(stat -f -c %T "$data" 2>/dev/null)
fsopts=$(findmnt -n -o OPTIONS -T "$data" 2>/dev/null)
disk=
if [ -n "$src" ] && command -v lsblk >/dev/null 2>&1; then
	parent=$(lsblk -n -o PKNAME "$src" 2>/dev/null | head -n 1)
	dev=${parent:-$(basename "$src")}
	model=$(lsblk -d -n -o MODEL "/dev/$dev" 2>/dev/null | sed 's/ *$//')
	rota=$(lsblk -d -n -o ROTA "/dev/$dev" 2>/dev/null | tr -d ' ')
	size=$(lsblk -d -n -o SIZE "/dev/$dev" 2>/dev/null | tr -d ' ')
	drv=$(basename "$(readlink -f "/sys/block/$dev/device/driver" 2>/dev/null)" 2>/dev/null)
	disk="/dev/$dev ${model:+$model }${drv:+($drv) }$size, rotational=$rota"
fi
{
	printf '{'
	kv nproc "$(nproc)"; printf ','
	kv cpu "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"; printf ','
	kv kernel "$(uname -sr)"; printf ','
	kv memory "$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"; printf ','
	kv filesystem "$fstype${fsopts:+ ($fsopts)}"; printf ','
	kv disk "${disk:-unknown}"; printf ','
	kv data_dir "$data"; printf ','
	kv compiler "$(${CC:-cc} --version 2>/dev/null | head -n 1)"; printf ','
	kv cflags "${CFLAGS:-}"; printf ','
	kv walrec "$("$walrec" --version)"; printf ','
	kv commit "$(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null)"; printf ','
	kv date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"; printf ','
	kv loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"; printf ','
	kv runs "$runs"; printf ','
	kv quick "$quick"
	printf '}\n'
} >"$results/machine.json"

# ---- the scenarios ----
scenarios=$("$walrec" bench --help | awk '$0 == "scenarios:" { on = 1; next } on && /^  [a-z]/ { print $1; next } on && !/^  / { on = 0 }')
has() {
	for s in $scenarios; do [ "$s" = "$1" ] && return 0; done
	return 1
}
# run NAME OUTFILE ARGS...: one scenario run, JSON to OUTFILE.
run() {
	name=$1
	out=$2
	shift 2
	printf 'bench: walrec bench %s %s\n' "$name" "$*" >&2
	if ! "$walrec" bench "$name" "$@" --json >"$out.tmp" 2>"$out.err"; then
		echo "bench: walrec bench $name failed:" >&2
		sed 's/^/  | /' "$out.err" >&2
		rm -f "$out.tmp"
		status=1
		return 1
	fi
	mv "$out.tmp" "$out"
	[ -s "$out.err" ] || rm -f "$out.err"
	return 0
}
skip() {
	echo "bench: skipped $1: $2" >&2
	echo "$2" >"$results/$1.skipped"
}
help_has() { # SCENARIO OPTION: does its --help name the option?
	"$walrec" bench "$1" --help 2>&1 | grep -q -- "$2"
}

if [ "$quick" = 1 ]; then
	n_append=200k n_recorder=200k n_durable=300 n_ipc=100k n_ipc_durable=200 n_ipc_rate=20k
	n_peers=5k n_syncs=50 idle_s=1
else
	n_append=10M n_recorder=4M n_durable=3000 n_ipc=2M n_ipc_durable=3000 n_ipc_rate=1M
	n_peers=100k n_syncs=2000 idle_s=10
fi

i=1
while [ "$i" -le "$runs" ]; do
	if has append; then
		run append "$results/append.$i.json" --dir "$data/append" --events "$n_append" --blocks 4096
	fi
	if has recorder; then
		run recorder "$results/recorder.$i.json" --dir "$data/recorder" --events "$n_recorder" --blocks 256
	fi
	if has durable; then
		run durable "$results/durable.$i.json" --dir "$data/durable" --events "$n_durable"
	fi
	if has ipc; then
		# --events is per producer.
		for p in 1 2 4; do
			set -- --producers "$p" --events "$n_ipc"
			help_has ipc --dir && set -- "$@" --dir "$data/ipc"
			run ipc "$results/ipc.p$p.$i.json" "$@"
		done
		# Latency at a given load (1 M events/s), the drain thread busy-polling.
		if help_has ipc --rate; then
			set -- --producers 1 --events "$n_ipc_rate" --rate 1M --dir "$data/ipc"
			run ipc "$results/ipc-rate.$i.json" "$@"
		fi
		if help_has ipc --durable-every; then
			set -- --producers 1 --events "$n_ipc_durable" --durable-every 1
			help_has ipc --dir && set -- "$@" --dir "$data/ipc"
			run ipc "$results/ipc-durable.$i.json" "$@"
		fi
	fi
	if has replay; then
		run replay "$results/replay.$i.json" --dir "$data/replay"
	fi
	i=$((i + 1))
done
has append || skip append "'walrec bench append' is not in this build"
has recorder || skip recorder "'walrec bench recorder' is not in this build"
has durable || skip durable "'walrec bench durable' is not in this build"
has ipc || skip ipc "'walrec bench ipc' is not in this build"
has replay || skip replay "'walrec bench replay' is not in this build"

# These take their medians inside (telemetry, peers) or measure a long window (idle).
if has telemetry; then
	if [ "$quick" = 1 ]; then
		run telemetry "$results/telemetry.json" --dir "$data/telemetry" --events 200k --pairs 1
	else
		# Runs of 5M events last a quarter of a second: 9 pairs, or one
		# unlucky pair moves the median by 10-15%.
		run telemetry "$results/telemetry.json" --dir "$data/telemetry" --pairs 9
	fi
else
	skip telemetry "'walrec bench telemetry' is not in this build"
fi
if has idle; then
	run idle "$results/idle.json" --dir "$data/idle" --seconds "$idle_s"
else
	skip idle "'walrec bench idle' is not in this build"
fi
if has peers; then
	run peers "$results/peers.json" --dir "$data/peers" --events "$n_peers" --syncs "$n_syncs" --runs "$runs"
else
	skip peers "'walrec bench peers' is not in this build"
fi

# The load at the end, beside the one at the start: how busy the machine was.
sed -i "s/}\$/,\"loadavg_end\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}/" "$results/machine.json"
rmdir "$data"/* "$data" 2>/dev/null
exit $status
