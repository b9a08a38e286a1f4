# docs/: documentation shipped in the tarball.
EXTRA_DIST += \
	docs/decisions.md
EXTRA_DIST += docs/channel.md
