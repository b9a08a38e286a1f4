#!/bin/sh
# SPDX-License-Identifier: MIT
# 'make install DESTDIR=...' installs the library, the headers, walrec.pc,
# the program and the manual pages; the examples build against that tree
# with nothing but 'pkg-config --cflags --libs walrec' and run against the
# installed library and program.
# Run by 'make check' from the top build directory (also in VPATH/distcheck builds).
set -u

top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-${srcdir:-.}}
MAKE=${MAKE:-make}
CC=${CC:-cc}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
if ! command -v "$PKG_CONFIG" >/dev/null 2>&1; then
	echo "install_tree: no pkg-config" >&2
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/walrec-inst.XXXXXX") || exit 99
dest=$tmp/root
chan=insttree.$$
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

# A make of its own: not the jobserver of the 'make check' that runs this.
if ! (cd "$top_builddir" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	"$MAKE" install DESTDIR="$dest") >"$tmp/install.log" 2>&1; then
	cat "$tmp/install.log" >&2
	echo "install_tree: make install failed" >&2
	exit 1
fi

libdir=$("$PKG_CONFIG" --variable=libdir "$top_builddir/walrec.pc")
includedir=$("$PKG_CONFIG" --variable=includedir "$top_builddir/walrec.pc")
for f in "$libdir/libwalrec.so" "$libdir/pkgconfig/walrec.pc" "$includedir/walrec.h" \
	"$includedir/walrec/common.h" "$includedir/walrec/recorder.h" \
	"$includedir/walrec/producer.h" "$includedir/walrec/reader.h"; do
	[ -e "$dest$f" ] || fail "not installed: $f"
done
for f in bin/walrec man1/walrec.1 man3/walrec.3; do
	[ -n "$(find "$dest" -path "*/$f" -print)" ] || fail "not installed: .../$f"
done
walrec=$(find "$dest" -path '*/bin/walrec' -print | head -n 1)
# Every header installed is one the umbrella header includes (no internal one leaked).
for h in "$dest$includedir"/walrec/*.h; do
	grep -q "<walrec/$(basename "$h")>" "$dest$includedir/walrec.h" ||
		fail "installed $(basename "$h") is not part of walrec.h"
done

# ---- the examples, built against the installed tree only ----
export PKG_CONFIG_SYSROOT_DIR="$dest"
export PKG_CONFIG_LIBDIR="$dest$libdir/pkgconfig"
unset PKG_CONFIG_PATH
flags=$("$PKG_CONFIG" --cflags --libs walrec) || fail "pkg-config --cflags --libs walrec"
case $flags in
*"-I$dest"*"-L$dest"*) ;;
*) fail "pkg-config flags do not point into DESTDIR: $flags" ;;
esac
for ex in embedded producer; do
	# shellcheck disable=SC2086
	$CC -std=c11 ${WR_SAN_CFLAGS:-} -o "$tmp/$ex" "$top_srcdir/examples/$ex.c" $flags \
		>"$tmp/cc.log" 2>&1 || { fail "building examples/$ex.c: $(cat "$tmp/cc.log")"; }
done
export LD_LIBRARY_PATH="$dest$libdir"
if [ -x "$tmp/embedded" ]; then
	ldd "$tmp/embedded" | grep -q "$dest$libdir/libwalrec.so" ||
		fail "embedded does not use the installed libwalrec: $(ldd "$tmp/embedded")"
	"$tmp/embedded" "$tmp/wal" >"$tmp/out" 2>&1 || fail "embedded: exit $?: $(cat "$tmp/out")"
	[ "$(cat "$tmp/out")" = "event 1000: durable" ] || fail "embedded printed: $(cat "$tmp/out")"
	"$walrec" verify "$tmp/wal" >"$tmp/out" 2>&1 || fail "installed walrec verify: $(cat "$tmp/out")"
	grep -q "1000 events, ids 1..1000: ok" "$tmp/out" || fail "verify: $(cat "$tmp/out")"
fi
if [ -x "$tmp/producer" ]; then
	"$walrec" record "$tmp/rec" --channel "$chan" --blocks 16 >/dev/null 2>"$tmp/rec.err" &
	rpid=$!
	i=0
	until grep -qs running "$tmp/rec.err"; do
		i=$((i + 1))
		[ "$i" -ge 200 ] && { fail "installed recorder did not start: $(cat "$tmp/rec.err")"; break; }
		sleep 0.05
	done
	"$tmp/producer" "$chan" >"$tmp/out" 2>&1 || fail "producer: exit $?: $(cat "$tmp/out")"
	[ "$(cat "$tmp/out")" = "sequence 1000: durable" ] || fail "producer printed: $(cat "$tmp/out")"
	kill -TERM "$rpid"
	wait "$rpid" || fail "installed recorder exit $?: $(cat "$tmp/rec.err")"
	rpid=
	"$walrec" verify "$tmp/rec" --sequences >"$tmp/out" 2>&1 ||
		fail "verify --sequences: $(cat "$tmp/out")"
fi

if [ "$fails" -ne 0 ]; then
	echo "install_tree: $fails failure(s)" >&2
	exit 1
fi
exit 0
