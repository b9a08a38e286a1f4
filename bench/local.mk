# bench/: benchmark programs (run through 'walrec bench').
walrec_SOURCES += bench/harness.c bench/harness.h bench/bench_append.c
walrec_SOURCES += bench/bench_recorder.c bench/bench_ipc.c bench/bench_replay.c
walrec_SOURCES += bench/bench_telemetry.c
EXTRA_DIST += bench/telemetry_overhead.sh
walrec_SOURCES += bench/bench_idle.c
# Peer baselines: write()/fdatasync always, the others when configure found them.
walrec_SOURCES += bench/bench_peers.c bench/peers.h bench/peer_basic.c
EXTRA_DIST += bench/peer_kv.h bench/peer_sqlite.c bench/peer_leveldb.c bench/peer_rocksdb.c
walrec_CPPFLAGS = $(AM_CPPFLAGS) $(SQLITE3_CFLAGS)
if HAVE_SQLITE3
walrec_SOURCES += bench/peer_sqlite.c
walrec_LDADD += $(SQLITE3_LIBS)
endif
if HAVE_LEVELDB
walrec_SOURCES += bench/peer_leveldb.c
walrec_LDADD += $(LEVELDB_LIBS)
endif
if HAVE_ROCKSDB
walrec_SOURCES += bench/peer_rocksdb.c
walrec_LDADD += $(ROCKSDB_LIBS)
endif
TESTS += tests/bench_smoke.sh
EXTRA_DIST += tests/bench_smoke.sh

# 'make bench' (not part of 'make check'): run every scenario of this build
# with --json into $(BENCH_RESULTS), writing data in $(BENCH_WORKDIR), then
# regenerate docs/performance.md and docs/plots/ in the source tree.
# 'make bench-doc' regenerates the document from the results already there.
# Needs python3 and gnuplot; BENCH_QUICK=1 uses tiny counts (a pipeline check).
BENCH_RESULTS = bench-results
BENCH_WORKDIR = $(abs_builddir)/bench-data
BENCH_RUNS = 3
EXTRA_DIST += bench/run.sh bench/perfdoc.py bench/performance.md.tmpl
bench: walrec$(EXEEXT)
	@command -v python3 >/dev/null 2>&1 || { echo "make bench needs python3 (apt-get install python3)" >&2; exit 1; }
	@command -v gnuplot >/dev/null 2>&1 || { echo "make bench needs gnuplot (apt-get install gnuplot-nox)" >&2; exit 1; }
	BENCH_RUNS='$(BENCH_RUNS)' CC='$(CC)' CFLAGS='$(CFLAGS)' \
	  $(SHELL) $(srcdir)/bench/run.sh ./walrec$(EXEEXT) '$(BENCH_RESULTS)' '$(BENCH_WORKDIR)'
	$(MAKE) $(AM_MAKEFLAGS) bench-doc
bench-doc:
	python3 $(srcdir)/bench/perfdoc.py '$(BENCH_RESULTS)' $(srcdir)/bench/performance.md.tmpl \
	  $(srcdir)/docs/performance.md $(srcdir)/docs/plots
.PHONY: bench bench-doc
