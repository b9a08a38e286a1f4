#!/bin/sh
# SPDX-License-Identifier: MIT
# The manual pages cannot drift from the program and the headers: every
# command of 'walrec --help' has its section in walrec.1, every scenario of
# 'walrec bench --help' its entry, every option of every command's and
# scenario's --help is documented there, and every function declared in
# include/walrec/*.h is documented in walrec.3.
set -u

top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-${srcdir:-.}}
walrec=$top_builddir/walrec
man1=$top_srcdir/man/walrec.1
man3=$top_srcdir/man/walrec.3
if [ ! -x "$walrec" ]; then
	echo "man_coverage: $walrec not built" >&2
	exit 99
fi
fails=0
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

# "  name   summary" lines after a "commands:" or "scenarios:" heading.
list_after() { # $1: heading; stdin: help text
	awk -v h="$1" '$0 == h { on = 1; next } on && /^  [a-z]/ { print $1; next } on && !/^  / { on = 0 }'
}
check_options() { # $1: what, $2: its help text
	for o in $(printf '%s\n' "$2" | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
		[ "$o" = --help ] && continue
		grep -qE -- "Fl -${o#--}( |$)" "$man1" || fail "walrec.1 does not document $o of $1"
	done
}

cmds=$("$walrec" --help | list_after "commands:")
[ -n "$cmds" ] || fail "'walrec --help' lists no command"
for c in $cmds; do
	grep -qE "^\.Ss walrec $c( |$)" "$man1" || fail "walrec.1 has no section for 'walrec $c'"
	[ "$c" = bench ] && continue
	check_options "walrec $c" "$("$walrec" "$c" --help 2>&1)"
done

scen=$("$walrec" bench --help | list_after "scenarios:")
[ -n "$scen" ] || fail "'walrec bench --help' lists no scenario"
for s in $scen; do
	grep -qE "^\.It Cm $s( |$)" "$man1" || fail "walrec.1 has no entry for 'walrec bench $s'"
	check_options "walrec bench $s" "$("$walrec" bench "$s" --help 2>&1)"
done

funcs=$(grep -hoE '^[A-Za-z_].*[ *]walrec_[a-z0-9_]+\(' "$top_srcdir"/include/walrec/*.h |
	grep -oE 'walrec_[a-z0-9_]+\($' | tr -d '(' | sort -u)
[ -n "$funcs" ] || fail "no function found in include/walrec/*.h"
for f in $funcs; do
	grep -qE "^\.Fn $f( |$)" "$man3" || fail "walrec.3 does not document $f()"
done

if [ "$fails" -ne 0 ]; then
	echo "man_coverage: $fails failure(s)" >&2
	exit 1
fi
echo "man_coverage: $(echo $cmds | wc -w) commands, $(echo $scen | wc -w) scenarios, $(echo $funcs | wc -w) functions"
exit 0
