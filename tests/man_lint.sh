#!/bin/sh
# SPDX-License-Identifier: MIT
# walrec.1 and walrec.3 render without a warning: mandoc -Tlint (warnings
# and worse; its style notes are left out) and groff with every warning on.
# Skips (77) when neither formatter is installed.
set -u

top_srcdir=${top_srcdir:-${srcdir:-.}}
pages="$top_srcdir/man/walrec.1 $top_srcdir/man/walrec.3"
ran=0
fails=0
if command -v mandoc >/dev/null 2>&1; then
	ran=1
	# shellcheck disable=SC2086
	out=$(mandoc -Tlint -Wwarning $pages 2>&1)
	if [ $? -ne 0 ] || [ -n "$out" ]; then
		echo "FAIL: mandoc -Tlint:" >&2
		echo "$out" >&2
		fails=$((fails + 1))
	fi
fi
if command -v groff >/dev/null 2>&1; then
	ran=1
	for p in $pages; do
		out=$(groff -mandoc -Tutf8 -ww -z "$p" 2>&1)
		if [ $? -ne 0 ] || [ -n "$out" ]; then
			echo "FAIL: groff -ww $p:" >&2
			echo "$out" >&2
			fails=$((fails + 1))
		fi
	done
fi
if [ "$ran" -eq 0 ]; then
	echo "man_lint: neither mandoc nor groff is installed" >&2
	exit 77
fi
[ "$fails" -eq 0 ] || exit 1
exit 0
