# bench/: benchmark programs (run through 'walrec bench').
walrec_SOURCES += bench/harness.c bench/harness.h bench/bench_append.c
walrec_SOURCES += bench/bench_recorder.c bench/bench_replay.c
# Producer try_append cost against a draining recorder process.
noinst_PROGRAMS += bench/bench_channel_append
bench_bench_channel_append_SOURCES = bench/channel_append.c
bench_bench_channel_append_LDADD = libwalrec-internal.la
