# bench/: benchmark programs (run through 'walrec bench').
walrec_SOURCES += bench/harness.c bench/harness.h bench/bench_append.c
walrec_SOURCES += bench/bench_recorder.c
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
# Producer try_append cost against a draining recorder process.
noinst_PROGRAMS += bench/bench_channel_append
bench_bench_channel_append_SOURCES = bench/channel_append.c
bench_bench_channel_append_LDADD = libwalrec-internal.la
TESTS += tests/bench_smoke.sh
EXTRA_DIST += tests/bench_smoke.sh
