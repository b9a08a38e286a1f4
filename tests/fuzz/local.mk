# tests/fuzz/: fuzz targets. Their corpus (tests/fuzz/<target>/, seeds and
# regression inputs of crashes found) runs in make check through
# tests/fuzz/driver.c, with any compiler; ./configure CC=clang
# --enable-fuzzing builds the libFuzzer binaries (tests/fuzz/run.sh runs them).
WR_FUZZ_COMMON = tests/fuzz/fuzz.h tests/fuzz/fuzz_util.c

WR_FUZZ_REGRESS = \
	tests/fuzz/regress_segment_hot \
	tests/fuzz/regress_segment_cold \
	tests/fuzz/regress_meta \
	tests/fuzz/regress_channel
check_PROGRAMS += $(WR_FUZZ_REGRESS)
TESTS += $(WR_FUZZ_REGRESS)

tests_fuzz_regress_segment_hot_SOURCES = tests/fuzz/fuzz_segment_hot.c tests/fuzz/driver.c $(WR_FUZZ_COMMON)
tests_fuzz_regress_segment_hot_CPPFLAGS = $(AM_CPPFLAGS) -DWR_FUZZ_CORPUS='"$(abs_top_srcdir)/tests/fuzz/segment_hot"'
tests_fuzz_regress_segment_hot_LDADD = libwalrec-internal.la
tests_fuzz_regress_segment_cold_SOURCES = tests/fuzz/fuzz_segment_cold.c tests/fuzz/driver.c $(WR_FUZZ_COMMON)
tests_fuzz_regress_segment_cold_CPPFLAGS = $(AM_CPPFLAGS) -DWR_FUZZ_CORPUS='"$(abs_top_srcdir)/tests/fuzz/segment_cold"'
tests_fuzz_regress_segment_cold_LDADD = libwalrec-internal.la
tests_fuzz_regress_meta_SOURCES = tests/fuzz/fuzz_meta.c tests/fuzz/driver.c tests/segfile.c tests/segfile.h $(WR_FUZZ_COMMON)
tests_fuzz_regress_meta_CPPFLAGS = $(AM_CPPFLAGS) -DWR_FUZZ_CORPUS='"$(abs_top_srcdir)/tests/fuzz/meta"'
tests_fuzz_regress_meta_LDADD = libwalrec-internal.la
tests_fuzz_regress_channel_SOURCES = tests/fuzz/fuzz_channel.c tests/fuzz/driver.c $(WR_FUZZ_COMMON)
tests_fuzz_regress_channel_CPPFLAGS = $(AM_CPPFLAGS) -DWR_FUZZ_CORPUS='"$(abs_top_srcdir)/tests/fuzz/channel"'
tests_fuzz_regress_channel_LDADD = libwalrec-internal.la

# Writes the seed corpus (run by hand when the formats change; see tests/fuzz/README).
check_PROGRAMS += tests/fuzz/mkseeds
tests_fuzz_mkseeds_SOURCES = tests/fuzz/mkseeds.c tests/segfile.c tests/segfile.h
tests_fuzz_mkseeds_LDADD = libwalrec-internal.la

EXTRA_DIST += tests/fuzz/run.sh tests/fuzz/README \
	tests/fuzz/segment_hot tests/fuzz/segment_cold tests/fuzz/meta tests/fuzz/channel

if WR_FUZZING
noinst_PROGRAMS += \
	tests/fuzz/fuzz_segment_hot \
	tests/fuzz/fuzz_segment_cold \
	tests/fuzz/fuzz_meta \
	tests/fuzz/fuzz_channel
tests_fuzz_fuzz_segment_hot_SOURCES = tests/fuzz/fuzz_segment_hot.c $(WR_FUZZ_COMMON)
tests_fuzz_fuzz_segment_hot_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_segment_hot_LDADD = libwalrec-internal.la
tests_fuzz_fuzz_segment_cold_SOURCES = tests/fuzz/fuzz_segment_cold.c $(WR_FUZZ_COMMON)
tests_fuzz_fuzz_segment_cold_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_segment_cold_LDADD = libwalrec-internal.la
tests_fuzz_fuzz_meta_SOURCES = tests/fuzz/fuzz_meta.c tests/segfile.c tests/segfile.h $(WR_FUZZ_COMMON)
tests_fuzz_fuzz_meta_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_meta_LDADD = libwalrec-internal.la
tests_fuzz_fuzz_channel_SOURCES = tests/fuzz/fuzz_channel.c $(WR_FUZZ_COMMON)
tests_fuzz_fuzz_channel_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_channel_LDADD = libwalrec-internal.la
endif
