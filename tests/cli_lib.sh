# SPDX-License-Identifier: MIT
# Helpers shared by the walrec shell tests; sourced, not run. The
# caller sets $tmp (a scratch directory) before using expect.

fails=0

# fail MESSAGE: count a failure and say what it was.
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

# wait_for COND...: until COND succeeds, up to 60 s (sanitizer builds on a
# busy machine need tens of seconds for what takes milliseconds otherwise);
# 1 if it never did.
wait_for() {
	i=0
	while ! "$@"; do
		i=$((i + 1))
		[ "$i" -ge 1200 ] && return 1
		sleep 0.05
	done
	return 0
}
