# tests/: Check suites, run by 'make check' through Automake's parallel harness.
if HAVE_CHECK
noinst_LTLIBRARIES += libwrtest.la
libwrtest_la_SOURCES = tests/testutil.c tests/testutil.h
libwrtest_la_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)

WR_TEST_LDADD = libwrtest.la libwalrec-internal.la $(CHECK_LIBS)
WR_TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)

WR_CHECKS = \
	tests/check_format \
	tests/check_lib

WR_CHECKS += tests/check_channel

check_PROGRAMS += $(WR_CHECKS)
TESTS += $(WR_CHECKS)

tests_check_format_SOURCES = tests/check_format.c
tests_check_format_CFLAGS = $(WR_TEST_CFLAGS)
tests_check_format_LDADD = $(WR_TEST_LDADD)

tests_check_lib_SOURCES = tests/check_lib.c
tests_check_lib_CFLAGS = $(WR_TEST_CFLAGS)
tests_check_lib_LDADD = $(WR_TEST_LDADD)

tests_check_channel_SOURCES = tests/check_channel.c
tests_check_channel_CFLAGS = $(WR_TEST_CFLAGS)
tests_check_channel_LDADD = $(WR_TEST_LDADD)
endif
