# recorder/: the WAL itself.
libwalrec_internal_la_SOURCES += \
	recorder/format.c recorder/format.h
libwalrec_internal_la_SOURCES += \
	recorder/segment_writer.c recorder/segment_writer.h recorder/stage.c recorder/stage.h
libwalrec_internal_la_SOURCES += \
	recorder/segment_reader.c recorder/segment_reader.h \
	recorder/wal_dir.c recorder/wal_dir.h
libwalrec_internal_la_SOURCES += recorder/meta_store.c recorder/meta_store.h
walrecinclude_HEADERS += include/walrec/recorder.h
libwalrec_internal_la_SOURCES += \
	recorder/manager.c recorder/manager.h \
	recorder/recorder.c recorder/recorder_impl.h
# recorder/: the shared-memory channel (recorder side) and the producer API.
libwalrec_internal_la_SOURCES += \
	recorder/channel.c recorder/channel.h recorder/channel_layout.h \
	recorder/producer.c
walrecinclude_HEADERS += include/walrec/producer.h
# recorder/: the drain loop connecting the channel to the embedded recorder.
libwalrec_internal_la_SOURCES += recorder/drain.c recorder/drain.h
# recorder/: the public reader (a WAL directory in id order, seek, tolerant mode).
libwalrec_internal_la_SOURCES += recorder/reader.c \
	recorder/preloader.c recorder/preloader.h \
	recorder/follow.c recorder/follow.h
walrecinclude_HEADERS += include/walrec/reader.h
# recorder/: telemetry snapshots in the channel (aggregator, readers, renderings).
libwalrec_internal_la_SOURCES += \
	recorder/telemetry.c recorder/telemetry.h recorder/telemetry_layout.h
