# docs/: documentation shipped in the tarball.
EXTRA_DIST += \
	docs/decisions.md
