#!/bin/sh
# SPDX-License-Identifier: MIT
# Prepare a git checkout for ./configure: install missing Debian build
# dependencies (when run as root on Debian), then generate the build files.
set -e
cd "$(dirname "$0")"

WALREC_DEBIAN_DEPS="autoconf automake libtool autoconf-archive pkg-config make gcc \
liblz4-dev libxxhash-dev libbsd-dev check lz4"

if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
	missing=
	for p in $WALREC_DEBIAN_DEPS $WALREC_EXTRA_DEPS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		if [ "$(id -u)" = 0 ]; then
			echo "autogen.sh: installing:$missing"
			export DEBIAN_FRONTEND=noninteractive
			apt-get update -qq
			# shellcheck disable=SC2086
			apt-get install -y -qq --no-install-recommends $missing >/dev/null
		else
			echo "autogen.sh: missing Debian packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
			exit 1
		fi
	fi
fi

autoreconf -fi
