# bench/: benchmark programs (run through 'walrec bench').
walrec_SOURCES += bench/harness.c bench/harness.h bench/bench_append.c
walrec_SOURCES += bench/bench_recorder.c bench/bench_ipc.c bench/bench_replay.c
walrec_SOURCES += bench/bench_telemetry.c
EXTRA_DIST += bench/telemetry_overhead.sh
