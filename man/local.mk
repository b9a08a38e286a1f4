# man/: the manual pages, installed by 'make install'; tests/man_*.sh keep
# them well-formed and in step with 'walrec --help' and the public headers.
dist_man_MANS += man/walrec.1 man/walrec.3
TESTS += tests/man_lint.sh tests/man_coverage.sh
EXTRA_DIST += tests/man_lint.sh tests/man_coverage.sh
