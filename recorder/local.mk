# recorder/: the WAL itself.
libwalrec_internal_la_SOURCES += \
	recorder/format.c recorder/format.h
# recorder/: the shared-memory channel (recorder side) and the producer API.
libwalrec_internal_la_SOURCES += \
	recorder/channel.c recorder/channel.h recorder/channel_layout.h \
	recorder/producer.c
nobase_include_HEADERS += include/walrec/common.h include/walrec/producer.h
