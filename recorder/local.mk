# recorder/: the WAL itself.
libwalrec_internal_la_SOURCES += \
	recorder/format.c recorder/format.h
