# docs/: documentation shipped in the tarball.
EXTRA_DIST += \
	docs/decisions.md
EXTRA_DIST += docs/telemetry.md
EXTRA_DIST += docs/architecture.md
EXTRA_DIST += docs/performance.md
EXTRA_DIST += docs/format.md
EXTRA_DIST += docs/channel.md
EXTRA_DIST += docs/reader.md
EXTRA_DIST += docs/reliability.md
EXTRA_DIST += docs/plots
EXTRA_DIST += docs/operations.md
