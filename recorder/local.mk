# recorder/: the WAL itself.
libwalrec_internal_la_SOURCES += \
	recorder/format.c recorder/format.h
libwalrec_internal_la_SOURCES += \
	recorder/segment_reader.c recorder/segment_reader.h \
	recorder/wal_dir.c recorder/wal_dir.h
