# tests/: Check suites, run by 'make check' through Automake's parallel harness.
if HAVE_CHECK
noinst_LTLIBRARIES += libwrtest.la
libwrtest_la_SOURCES = tests/testutil.c tests/testutil.h \
	tests/logcheck.c tests/logcheck.h tests/powerloss.c tests/powerloss.h
libwrtest_la_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)

WR_TEST_LDADD = libwrtest.la libwalrec-internal.la $(CHECK_LIBS)
WR_TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)

WR_CHECKS = \
	tests/check_format \
	tests/check_lib \
	tests/check_segment_writer

WR_CHECKS += tests/check_channel

check_PROGRAMS += $(WR_CHECKS)
TESTS += $(WR_CHECKS)

tests_check_format_SOURCES = tests/check_format.c
tests_check_format_CFLAGS = $(WR_TEST_CFLAGS)
tests_check_format_LDADD = $(WR_TEST_LDADD)

tests_check_lib_SOURCES = tests/check_lib.c
tests_check_lib_CFLAGS = $(WR_TEST_CFLAGS)
tests_check_lib_LDADD = $(WR_TEST_LDADD)

tests_check_segment_writer_SOURCES = tests/check_segment_writer.c
tests_check_segment_writer_CFLAGS = $(WR_TEST_CFLAGS)
tests_check_segment_writer_LDADD = $(WR_TEST_LDADD)
tests_check_channel_SOURCES = tests/check_channel.c
tests_check_channel_CFLAGS = $(WR_TEST_CFLAGS)
tests_check_channel_LDADD = $(WR_TEST_LDADD)
endif

if HAVE_CHECK
WR_CHECKS += tests/check_meta_store tests/check_metrics_out
tests_check_meta_store_SOURCES = tests/check_meta_store.c
tests_check_meta_store_CFLAGS = $(WR_TEST_CFLAGS)
tests_check_meta_store_LDADD = $(WR_TEST_LDADD)
tests_check_metrics_out_SOURCES = tests/check_metrics_out.c
tests_check_metrics_out_CFLAGS = $(WR_TEST_CFLAGS)
tests_check_metrics_out_LDADD = $(WR_TEST_LDADD)
endif

if HAVE_CHECK
WR_CHECKS += tests/check_recorder
tests_check_recorder_SOURCES = tests/check_recorder.c
tests_check_recorder_CFLAGS = $(WR_TEST_CFLAGS)
tests_check_recorder_LDADD = $(WR_TEST_LDADD)
endif

# The read side: SegmentReader, directory scanner, walrec verify/dump.
if HAVE_CHECK
WR_CHECKS += tests/check_segment_reader tests/check_wal_dir

tests_check_segment_reader_SOURCES = tests/check_segment_reader.c tests/segfile.c tests/segfile.h
tests_check_segment_reader_CFLAGS = $(WR_TEST_CFLAGS)
tests_check_segment_reader_LDADD = $(WR_TEST_LDADD)

tests_check_wal_dir_SOURCES = tests/check_wal_dir.c tests/segfile.c tests/segfile.h
tests_check_wal_dir_CFLAGS = $(WR_TEST_CFLAGS)
tests_check_wal_dir_LDADD = $(WR_TEST_LDADD)
endif

check_PROGRAMS += tests/mksegment
tests_mksegment_SOURCES = tests/mksegment.c tests/segfile.c tests/segfile.h
tests_mksegment_LDADD = libwalrec-internal.la
TESTS += tests/cli_verify.sh
EXTRA_DIST += tests/cli_verify.sh
TESTS += tests/cli_record.sh
EXTRA_DIST += tests/cli_record.sh

# The public reader over a real log.
if HAVE_CHECK
WR_CHECKS += tests/check_reader
tests_check_reader_SOURCES = tests/check_reader.c
tests_check_reader_CFLAGS = $(WR_TEST_CFLAGS)
tests_check_reader_LDADD = $(WR_TEST_LDADD)
endif
TESTS += tests/cli_bench.sh
EXTRA_DIST += tests/cli_bench.sh

# Telemetry snapshots: layout, validation, torn reads, live readers.
if HAVE_CHECK
WR_CHECKS += tests/check_telemetry
tests_check_telemetry_SOURCES = tests/check_telemetry.c
tests_check_telemetry_CFLAGS = $(WR_TEST_CFLAGS)
tests_check_telemetry_LDADD = $(WR_TEST_LDADD)
endif
TESTS += tests/cli_stat.sh tests/cli_stat_formats.sh
EXTRA_DIST += tests/cli_stat.sh tests/cli_stat_formats.sh tests/cli_lib.sh
# Power loss: crash images built from what was synced, recovered and checked.
if HAVE_CHECK
WR_CHECKS += tests/check_powerloss
tests_check_powerloss_SOURCES = tests/check_powerloss.c
tests_check_powerloss_CFLAGS = $(WR_TEST_CFLAGS)
tests_check_powerloss_LDADD = $(WR_TEST_LDADD)
endif

# Crash loops: recorder and producer processes SIGKILLed at random instants.
if HAVE_CHECK
WR_CHECKS += tests/check_crash
tests_check_crash_SOURCES = tests/check_crash.c
tests_check_crash_CFLAGS = $(WR_TEST_CFLAGS)
tests_check_crash_LDADD = $(WR_TEST_LDADD)
endif

# make check-soak ITERATIONS=N: the crash loop for N iterations and the
# power-loss suite for 10*N crash points (default N = 200); replay a failure
# with the seed it prints (WALREC_TEST_SEED). No test-runner timeout.
ITERATIONS = 200
check-soak: tests/check_crash tests/check_powerloss
	CK_FORK=no WALREC_CRASH_ITERATIONS=$(ITERATIONS) $(builddir)/tests/check_crash
	CK_FORK=no WALREC_POWERLOSS_CRASHES=`expr $(ITERATIONS) \* 10` $(builddir)/tests/check_powerloss

# make check-valgrind: the unit suites under valgrind memcheck, no error
# allowed (definite leaks included). The crash, power-loss and recorder
# suites are left out: their worth is in timing and process kills, which
# valgrind's serialised threads slow down 20-50 times.
WR_VALGRIND_CHECKS = tests/check_format tests/check_lib tests/check_segment_writer \
	tests/check_segment_reader tests/check_wal_dir tests/check_meta_store \
	tests/check_metrics_out tests/check_reader tests/check_channel
VALGRIND = valgrind
check-valgrind: $(WR_VALGRIND_CHECKS)
	@fails=0; for t in $(WR_VALGRIND_CHECKS); do \
		echo "valgrind $$t"; \
		CK_FORK=no CK_DEFAULT_TIMEOUT=600 $(VALGRIND) -q --error-exitcode=9 \
			--leak-check=full --errors-for-leak-kinds=definite \
			--suppressions=$(srcdir)/tests/valgrind.supp $(builddir)/$$t \
			>$$t.valgrind.log 2>&1 || { echo "FAIL: $$t (see $$t.valgrind.log)"; \
			tail -30 $$t.valgrind.log; fails=1; }; \
	done; exit $$fails
EXTRA_DIST += tests/valgrind.supp
.PHONY: check-soak check-valgrind

# Hostile surroundings: symbolic links planted under the recorder's names, modes.
if HAVE_CHECK
WR_CHECKS += tests/check_security
tests_check_security_SOURCES = tests/check_security.c
tests_check_security_CFLAGS = $(WR_TEST_CFLAGS)
tests_check_security_LDADD = $(WR_TEST_LDADD)
endif

# The append hot path: no system call (ptrace), lock or allocation (interposed).
check_PROGRAMS += tests/check_hotpath
TESTS += tests/check_hotpath
tests_check_hotpath_SOURCES = tests/check_hotpath.c
tests_check_hotpath_LDADD = libwalrec-internal.la
